//! Stored state: what tenantform owns, as last applied.
//!
//! State holds addresses, outside-world ids, last-applied attributes, where each object came
//! from and when; never tokens or secrets. Backends sit behind [`StateStore`]; the local JSON
//! files ([`file::FileStateStore`]) are the default.
//!
//! State is partitioned ([`partition`]): a fleet catalog and one partition per tenant, each
//! with its own serial, journal and lock, under one lineage. [`StateStore`] has both the
//! partition operations (load, lock, journal and write one partition) and the whole-fleet ones
//! that today's commands use (one `State` value for the fleet, one exclusive lock).

pub mod buffers;
pub mod file;
pub mod history;
pub mod ops;
pub mod partition;
pub mod postgres;
mod replay;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use history::{Actor, HistoryEntry, HistoryRead, HistoryRecord, Provenance};
pub use partition::{Partition, partition_of, split_by_partition};

/// The state format this build reads and writes: 2 is partitioned (a catalog and one
/// partition per tenant). A newer file is refused, never rewritten.
pub const STATE_FORMAT_VERSION: u32 = 2;

/// The single-file format (the whole fleet in one file), read as is and upgraded by the first
/// writer.
pub const STATE_FORMAT_V1: u32 = 1;

/// Attribute values as last applied (plain JSON, so every kind shares one diff). A sorted
/// vector map: objects have a handful of attributes, and a fleet has hundreds of thousands of
/// objects, where a B-tree node per object would triple the memory.
pub type Attributes = litemap::LiteMap<String, serde_json::Value>;

/// Outside-world ids by name (`record`, `objectId`, ...), small like [`Attributes`].
pub type Ids = litemap::LiteMap<String, String>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    pub format_version: u32,
    /// Identifies one history of state; a plan from another lineage never applies here.
    pub lineage: String,
    /// Changes with every write; a saved plan records it to detect staleness. For one
    /// partition, its own serial (increases by at least one with each write of it). For the
    /// whole fleet, the sum of the partitions' serials: every write of any partition makes it
    /// grow, so two different contents never show the same sum. Stores assign serials when
    /// they write; the value given to `write` is not stored.
    pub serial: u64,
    /// Owned objects by address (`tenant.foggy-it`, `organization.foggy-boston`, ...).
    pub objects: BTreeMap<String, StateObject>,
    /// Journal entries replayed on load (an apply was interrupted); not stored.
    #[serde(skip)]
    pub recovered_changes: usize,
}

impl State {
    /// The state before anything was ever written: no lineage yet (the first write gives it
    /// one), so a plan made against it still matches at apply time.
    pub fn new() -> Self {
        State {
            format_version: STATE_FORMAT_VERSION,
            lineage: String::new(),
            serial: 0,
            objects: BTreeMap::new(),
            recovered_changes: 0,
        }
    }

    /// The same lineage, serial and format without the objects.
    pub fn clone_header(&self) -> State {
        State {
            format_version: self.format_version,
            lineage: self.lineage.clone(),
            serial: self.serial,
            objects: BTreeMap::new(),
            recovered_changes: self.recovered_changes,
        }
    }

    /// Gives a state that was never written its lineage; writers call this before recording.
    pub fn ensure_lineage(&mut self) {
        if self.lineage.is_empty() {
            self.lineage = uuid::Uuid::new_v4().to_string();
        }
    }

    /// [`State::apply_change`] taking the change, so its object is moved, not copied.
    pub fn apply_owned(&mut self, change: StateChange) {
        match change {
            StateChange::Put { address, object } => {
                self.objects.insert(address, object);
            }
            StateChange::Move {
                from,
                address,
                object,
            } => {
                self.objects.remove(&from);
                self.objects.insert(address, object);
            }
            StateChange::Delete { address } => {
                self.objects.remove(&address);
            }
        }
    }

    pub fn apply_change(&mut self, change: &StateChange) {
        match change {
            StateChange::Put { address, object } => {
                self.objects.insert(address.clone(), object.clone());
            }
            StateChange::Move {
                from,
                address,
                object,
            } => {
                self.objects.remove(from);
                self.objects.insert(address.clone(), object.clone());
            }
            StateChange::Delete { address } => {
                self.objects.remove(address);
            }
        }
    }

    pub fn objects_of_kind<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a StateObject)> + 'a {
        self.objects.iter().filter(move |(_, o)| o.kind == kind)
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateObject {
    pub kind: String,
    /// Ids in the outside world (tenant record id, Entra object ids, ...).
    #[serde(default, skip_serializing_if = "Ids::is_empty")]
    pub ids: Ids,
    pub attributes: Attributes,
    pub source: Source,
    /// RFC 3339 time of the apply that last wrote this object.
    pub applied_at: String,
}

/// Which manifests an object was applied from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// `sha256:` digest of the resolved desired model.
    pub digest: String,
    /// Git commit, when manifests were read from a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// One recorded change; an apply journals these as it goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum StateChange {
    Put {
        address: String,
        object: StateObject,
    },
    /// A rename and its new content in one record, so a crash cannot lose the object.
    Move {
        from: String,
        address: String,
        object: StateObject,
    },
    Delete {
        address: String,
    },
}

/// Who holds the state lock, shown to anyone who finds it locked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    pub id: String,
    pub who: String,
    pub pid: u32,
    pub command: String,
    pub created: String,
}

impl LockInfo {
    /// Describes this process running `command`.
    pub fn for_command(command: impl Into<String>) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".into());
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            who: format!("{user}@{host}"),
            pid: std::process::id(),
            command: command.into(),
            created: now_rfc3339(),
        }
    }
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock {} held by {} (pid {}) since {}, running `{}`",
            self.id, self.who, self.pid, self.created, self.command
        )
    }
}

/// The current time, RFC 3339 in UTC with seconds.
/// The id recorded for an Entra create that was started but not known to have finished (a
/// write-ahead intent): plan and apply both read it, so it lives with the state.
pub const PENDING_ID: &str = "pending";

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path} is corrupt: {detail}")]
    Corrupt { path: String, detail: String },
    #[error(
        "state file {path} has format version {found}; this tenantform reads up to {supported}: upgrade tenantform (the file is left untouched)"
    )]
    NewerFormat {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("state is locked: {info}")]
    Locked { info: Box<LockInfo> },
    #[error("state is locked by another process (no lock details recorded)")]
    LockedUnknown,
    #[error("lock {id} is held by a running process: {info}; stop it or wait for it, then retry")]
    LockHeld { id: String, info: Box<LockInfo> },
    #[error("the state lock is {current}, not {requested}")]
    LockIdMismatch { requested: String, current: String },
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no object at address {0} in state")]
    NoSuchAddress(String),
    #[error("`{0}` is not an address (kind.name)")]
    BadAddress(String),
    #[error("`{0}` is not a valid name (lowercase letters, digits and '-')")]
    BadName(String),
    #[error("`{0}` is not a tenant name (lowercase letters, digits and '-', 1 to 63 characters)")]
    BadTenantName(String),
    #[error("cannot move a {from} to a {to} address")]
    KindMismatch { from: String, to: String },
    #[error("{0} already exists in state; remove it first with `tenantform state rm {0}`")]
    AddressTaken(String),
    #[error("refusing to write lineage {ours} into state of lineage {stored}")]
    LineageMismatch { ours: String, stored: String },
    #[error("no catalog yet: write the catalog first (it holds the state's lineage)")]
    NoCatalog,
    #[error("refusing to {what} a state without a lineage (call ensure_lineage first)")]
    NoLineage { what: &'static str },
    #[error("{what}: state is still a single file; take a lock first (it upgrades state)")]
    NotUpgraded { what: &'static str },
    #[error(
        "{what}: the journal of an interrupted whole-fleet apply is not recorded yet ({journal}); take the lock again (it records it)"
    )]
    FleetJournalPending { what: &'static str, journal: String },
    #[error("{partition} has recovered changes: write it before journaling on top of it")]
    RecoveredNotWritten { partition: String },
    #[error("{partition} is stored at serial {stored}, not {given} as given: load it again")]
    SerialMismatch {
        partition: String,
        stored: u64,
        given: u64,
    },
    /// An object given to a partition it does not belong to (a move across partitions needs
    /// the whole-fleet journal and write).
    #[error("{address} belongs to {belongs}, not to {partition}")]
    WrongPartition {
        address: String,
        belongs: String,
        partition: String,
    },
    #[error("the lock held ({held}) does not cover {partition}")]
    LockDoesNotCover { held: String, partition: String },
    #[error("a whole-fleet write needs the whole-fleet lock, not the lock of {0}")]
    NeedsFleetLock(String),
    /// A crash injected by a test at a named point.
    #[error("simulated crash at {0}")]
    SimulatedCrash(String),
    /// PostgreSQL refused or could not be reached (never shows the password).
    #[error("cannot {operation}: {message}")]
    Database {
        operation: &'static str,
        message: String,
    },
    /// The apply engine was used against its contract (a bug, never bad input).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// What `unlock` did.
#[derive(Debug, PartialEq, Eq)]
pub enum UnlockOutcome {
    /// A stale lock record was cleared.
    Cleared,
    /// There was no lock.
    NotLocked,
}

/// What a [`StateLock`] lets its holder write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockScope {
    /// Every partition (and nobody else writes any): the whole-fleet path, upgrades.
    Fleet,
    /// One partition; other partitions may be written by others at the same time.
    Partition(Partition),
}

/// Held while a process may write state; released on drop.
pub struct StateLock {
    _held: Box<dyn Send>,
    pub info: LockInfo,
    scope: LockScope,
}

impl StateLock {
    pub fn new(held: Box<dyn Send>, info: LockInfo, scope: LockScope) -> Self {
        StateLock {
            _held: held,
            info,
            scope,
        }
    }

    pub fn scope(&self) -> &LockScope {
        &self.scope
    }

    /// Whether it lets its holder write `partition`.
    pub fn covers(&self, partition: &Partition) -> bool {
        match &self.scope {
            LockScope::Fleet => true,
            LockScope::Partition(p) => p == partition,
        }
    }

    /// Refuses a write the lock does not cover (a programming error, not contention).
    pub fn check_covers(&self, partition: &Partition) -> Result<(), StateError> {
        if self.covers(partition) {
            Ok(())
        } else {
            Err(StateError::LockDoesNotCover {
                held: match &self.scope {
                    LockScope::Fleet => "the whole fleet".to_string(),
                    LockScope::Partition(p) => p.to_string(),
                },
                partition: partition.to_string(),
            })
        }
    }

    pub fn check_fleet(&self) -> Result<(), StateError> {
        match &self.scope {
            LockScope::Fleet => Ok(()),
            LockScope::Partition(p) => Err(StateError::NeedsFleetLock(p.to_string())),
        }
    }
}

/// Each partition's serial, read without loading objects: what a saved plan records for the
/// partitions it read, and what apply compares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serials {
    pub lineage: String,
    /// Every partition that exists (a tenant whose objects were all removed keeps an empty
    /// partition, so serials never go back).
    pub partitions: BTreeMap<Partition, u64>,
}

impl Serials {
    /// The whole fleet's serial (what `load().serial` is).
    pub fn whole(&self) -> u64 {
        self.partitions.values().sum()
    }

    /// A partition's serial; 0 for one that does not exist.
    pub fn of(&self, partition: &Partition) -> u64 {
        self.partitions.get(partition).copied().unwrap_or(0)
    }
}

/// What every backend checks before journaling on top of `base`: it has a lineage and no
/// recovered changes still to write.
pub(crate) fn check_journal_base(partition: &Partition, base: &State) -> Result<(), StateError> {
    if base.lineage.is_empty() {
        return Err(StateError::NoLineage { what: "journal" });
    }
    if base.recovered_changes > 0 {
        return Err(StateError::RecoveredNotWritten {
            partition: partition.to_string(),
        });
    }
    Ok(())
}

/// What every backend checks before writing `state` as `partition`: the lock covers it, it
/// has a lineage, and each object belongs there.
pub(crate) fn check_partition_write(
    partition: &Partition,
    state: &State,
    lock: &StateLock,
) -> Result<(), StateError> {
    lock.check_covers(partition)?;
    partition.check()?;
    if state.lineage.is_empty() {
        return Err(StateError::NoLineage { what: "write" });
    }
    for (address, object) in &state.objects {
        check_belongs(partition, address, object)?;
    }
    Ok(())
}

/// Refuses `object` at `address` in a partition it does not belong to (a write or a journal
/// line of another partition: a move across partitions needs the whole-fleet path).
pub(crate) fn check_belongs(
    partition: &Partition,
    address: &str,
    object: &StateObject,
) -> Result<(), StateError> {
    let belongs = partition_of(address, object);
    if belongs != *partition {
        return Err(StateError::WrongPartition {
            address: address.to_string(),
            belongs: belongs.to_string(),
            partition: partition.to_string(),
        });
    }
    Ok(())
}

/// [`check_belongs`] for the object a change puts (deletes name no object).
pub(crate) fn check_change_belongs(
    partition: &Partition,
    change: &StateChange,
) -> Result<(), StateError> {
    match change {
        StateChange::Put { address, object }
        | StateChange::Move {
            address, object, ..
        } => check_belongs(partition, address, object),
        StateChange::Delete { .. } => Ok(()),
    }
}

/// Appends changes as they happen, so an interrupted apply loses nothing it did.
pub trait Journal {
    /// Records a change. With `durable` it is on disk (fsynced) before this returns, with
    /// every change recorded before it: needed after every change made outside tenantform,
    /// so a power loss cannot forget it. Changes that exist only in state may be held back
    /// until the session's write records them (the file backend does): a crash loses at most
    /// those after the last durable change, as if it had come before them, and the next plan
    /// makes them again.
    fn record(&mut self, change: &StateChange, durable: bool) -> Result<(), StateError>;
    /// Adds `entry` to the apply history of its partition (kept for good, unlike the
    /// journal). Written before the change it describes is recorded, with the same
    /// durability, so no change made is ever missing from history.
    fn history(&mut self, entry: &HistoryRecord<'_>, durable: bool) -> Result<(), StateError>;
    /// Records a change made and its history entry: history first, or both at once where a
    /// backend can (PostgreSQL: one statement, one commit).
    fn record_with_history(
        &mut self,
        change: &StateChange,
        entry: &HistoryRecord<'_>,
        durable: bool,
    ) -> Result<(), StateError> {
        self.history(entry, durable)?;
        self.record(change, durable)
    }
    /// Refuses a change this journal may not take (another partition's object): what
    /// [`Journal::record`] checks first, for a change held back from it.
    fn check(&self, _change: &StateChange) -> Result<(), StateError> {
        Ok(())
    }
    /// Writes out what the journal holds back (without syncing), as if each line had been
    /// written when recorded: for records a crash should find even though nothing durable
    /// follows them (the catalog's, before the tenants that need them are applied).
    fn flush(&mut self) -> Result<(), StateError> {
        Ok(())
    }
    /// Called before the session's partition (or the whole state) is written: history the
    /// journal holds back is written out first (an entry is never missing for a change
    /// state records).
    fn before_write(&mut self) -> Result<(), StateError> {
        Ok(())
    }
    /// Called once that write succeeded: changes the journal held back are recorded by it and
    /// are dropped unwritten. A journal dropped without this writes them out.
    fn after_write(self: Box<Self>) {}
}

/// Where state lives. Writers hold a lock; readers never need one.
///
/// Partitions: the catalog and one per tenant, each with its own serial, journal and lock, so
/// two writers can work on two tenants at once and a reader can load one tenant at a time.
/// Whole fleet: `load`, `lock`, `journal` and `write` see state as one value, as today's
/// commands do; the whole-fleet lock excludes every partition writer and vice versa.
///
/// Locks are taken catalog first, then tenants in name order, so two writers never wait for
/// each other in a circle. A lock waits up to its timeout, then fails naming its holder
/// ([`StateError::Locked`]). Journals and writes need a lock that covers them.
pub trait StateStore: Send + Sync {
    /// Human-readable location for messages.
    fn describe(&self) -> String;

    // ---- Partitions -------------------------------------------------------------------

    /// Every partition's serial and the lineage, without loading objects.
    fn serials(&self) -> Result<Serials, StateError>;
    /// The tenants that have a partition, in name order.
    fn list_tenants(&self) -> Result<Vec<String>, StateError>;
    /// Whether reading one partition means reading the whole fleet (a state not upgraded to
    /// partitions yet, or an interrupted whole-fleet apply's journal to replay): a reader that
    /// wants many partitions then loads the whole state once instead.
    fn partition_reads_whole_fleet(&self) -> Result<bool, StateError> {
        Ok(false)
    }
    /// One partition: its objects, its serial, the state's lineage, and any journal of an
    /// interrupted writer replayed on top. A partition never written is empty with serial 0.
    fn load_partition(&self, partition: &Partition) -> Result<State, StateError>;
    /// [`StateStore::load_partition`] an object at a time, for a partition too large to hold
    /// at once (the catalog of a large fleet): `each` gets every object, in no set order, and
    /// the state returned has none. Backends stream where nothing needs replaying; this
    /// default loads the partition whole.
    fn load_partition_each(
        &self,
        partition: &Partition,
        each: &mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
    ) -> Result<State, StateError> {
        hand_on(self.load_partition(partition)?, each)
    }
    /// [`StateStore::load_partition`] with only the objects whose address `wanted` accepts:
    /// one bookkeeping object (a sync position) without building the thousands beside it.
    /// Backends skip the others unparsed where nothing needs replaying; this default loads
    /// the partition whole.
    fn load_partition_only(
        &self,
        partition: &Partition,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<State, StateError> {
        let mut state = self.load_partition(partition)?;
        state.objects.retain(|address, _| wanted(address));
        Ok(state)
    }
    fn load_catalog(&self) -> Result<State, StateError> {
        self.load_partition(&Partition::Catalog)
    }
    fn load_tenant(&self, tenant: &str) -> Result<State, StateError> {
        self.load_partition(&Partition::tenant(tenant)?)
    }
    /// Waits up to `timeout` for the lock of one partition (others stay free).
    fn lock_partition(
        &self,
        partition: &Partition,
        info: LockInfo,
        timeout: Duration,
    ) -> Result<StateLock, StateError>;
    fn lock_catalog(&self, info: LockInfo, timeout: Duration) -> Result<StateLock, StateError> {
        self.lock_partition(&Partition::Catalog, info, timeout)
    }
    fn lock_tenant(
        &self,
        tenant: &str,
        info: LockInfo,
        timeout: Duration,
    ) -> Result<StateLock, StateError> {
        self.lock_partition(&Partition::tenant(tenant)?, info, timeout)
    }
    /// Starts a journal of changes to `partition` made on top of `base` (that partition as
    /// stored, recovered changes written first). Each change must belong to the partition.
    fn journal_partition(
        &self,
        partition: &Partition,
        base: &State,
        lock: &StateLock,
    ) -> Result<Box<dyn Journal + Send>, StateError>;
    /// Writes one partition whole and atomically (every object must belong to it), then
    /// drops its journal. Returns its new serial. A tenant partition needs the catalog to
    /// exist: the catalog holds the lineage.
    fn write_partition(
        &self,
        partition: &Partition,
        state: &State,
        lock: &StateLock,
    ) -> Result<u64, StateError>;

    // ---- Whole fleet ------------------------------------------------------------------

    /// The whole state (catalog and every tenant), with any journal of an interrupted
    /// apply replayed on top; `serial` is the sum of the partitions' serials.
    fn load(&self) -> Result<State, StateError>;
    /// Waits up to `timeout` for the exclusive whole-fleet lock (no partition writer may
    /// hold a lock meanwhile). A store in an older format is upgraded once this is held.
    fn lock(&self, info: LockInfo, timeout: Duration) -> Result<StateLock, StateError>;
    /// Clears a stale lock record with this id (whole-fleet or partition lock); refuses
    /// while its holder runs.
    fn unlock(&self, id: &str) -> Result<UnlockOutcome, StateError>;
    /// Starts a journal of changes made on top of `base` (which must be stored as is, any
    /// recovered changes written first); changes may belong to any partition.
    fn journal(
        &self,
        base: &State,
        lock: &StateLock,
    ) -> Result<Box<dyn Journal + Send>, StateError>;
    /// Writes `state` as the whole fleet, atomically across partitions: only the partitions
    /// whose content changed get a new serial. Then drops the journal. Returns the new whole
    /// serial.
    fn write(&self, state: &State, lock: &StateLock) -> Result<u64, StateError>;

    // ---- History ----------------------------------------------------------------------

    /// The history entries `read` asks for, oldest first. Needs no lock.
    fn read_history(&self, read: &HistoryRead) -> Result<Vec<HistoryEntry>, StateError>;
    /// Appends entries to their partitions' history (`state migrate`, state edits); `lock`
    /// must cover each of them.
    fn append_history(&self, entries: &[HistoryEntry], lock: &StateLock) -> Result<(), StateError>;

    // ---- Observations -----------------------------------------------------------------

    /// What was last observed of `tenant` under `name` (`secure_score`: the Secure Score days
    /// kept; `licence_holdings`: who holds which licence), if anything. Observations live
    /// beside the partitions, not in them: no plan sees them, writing one takes no partition
    /// lock and changes no serial (a saved plan stays fresh, an apply is never in the way).
    fn read_observation(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>, StateError>;
    /// Replaces an observation whole, atomically. There is no lock: writers merge what they
    /// read with what they saw, so of two at once the later keeps the other's days too,
    /// except what only the earlier saw, which the next run sees again.
    fn write_observation(
        &self,
        tenant: &str,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<(), StateError>;
}

/// Checks an observation's name (a short lowercase identifier: it becomes a file name).
pub(crate) fn check_observation_name(name: &str) -> Result<(), StateError> {
    if !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(StateError::Corrupt {
            path: format!("observation {name:?}"),
            detail: "not a valid observation name".into(),
        })
    }
}

/// Gives a loaded partition's objects to `each`, as [`StateStore::load_partition_each`] does,
/// and returns the rest of it.
pub fn hand_on(
    mut state: State,
    each: &mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
) -> Result<State, StateError> {
    for (address, object) in std::mem::take(&mut state.objects) {
        each(address, object)?;
    }
    Ok(state)
}

/// A stored object of `kind` belonging to `tenant`, for the state modules' unit tests.
#[cfg(test)]
pub(crate) fn test_object(kind: &str, tenant: Option<&str>) -> StateObject {
    StateObject {
        kind: kind.into(),
        ids: Default::default(),
        attributes: tenant
            .map(|t| ("tenant".to_string(), serde_json::json!(t)))
            .into_iter()
            .collect::<Attributes>(),
        source: Source {
            digest: "sha256:00".into(),
            commit: None,
        },
        applied_at: "2026-01-01T00:00:00Z".into(),
    }
}
