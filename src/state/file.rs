//! The local JSON state files: `.tenantform/state.json` and `.tenantform/state.d/` by default.
//!
//! Layout (for `--state DIR/state.json`):
//!
//! ```text
//! DIR/state.json                  the catalog (format 2): lineage, its serial, tenant.* and
//!                                 organization.*; format 1 is the old single-file state
//! DIR/state.json.lock             whole-fleet lock: exclusive for whole-fleet writers (and
//!                                 tenantform before partitions), shared under partition locks
//! DIR/state.json.journal          whole-fleet journal: an apply's changes, or a write's intent
//! DIR/state.json.backup           the previous catalog
//! DIR/state.json.v1-backup        the single-file state as it was before the upgrade
//! DIR/state.d/catalog.lock        catalog partition lock (and .journal)
//! DIR/state.d/tenants/T.json      tenant T's partition: lineage, its serial, its objects
//! DIR/state.d/tenants/T.json.lock        .journal  .backup
//! DIR/state.d/history/catalog.jsonl      apply history of tenant and organization records
//! DIR/state.d/history/tenants/T.jsonl    apply history of tenant T (one JSON line each,
//!                                        appended, never rewritten)
//! ```
//!
//! - Writes are atomic: a temporary file in the same directory (mode 0600), fsync, rename over
//!   the old file, fsync of the directory; the previous file is kept as `.backup`. A
//!   whole-fleet write that changes several partitions first puts their new content in the
//!   journal (an intent, fsynced and renamed into place), so a crash between partitions
//!   leaves a state that loads as either before or after.
//! - An apply journals each change (one JSON line, fsynced when it changed the outside world)
//!   and writes once at the end; a killed apply is recovered on the next load.
//! - Writers hold OS locks (`File::lock`; released by the kernel if the process dies); lock
//!   files record who holds them.
//! - A corrupt or newer-format file is an error naming the file and is never overwritten.
//! - Tenant names become file names only after [`Partition::check`] (DNS-label-like names, as
//!   manifests require), so no state file, journal or caller can reach outside `state.d/`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::buffers::Buffer;
use super::history::{HistoryEntry, HistoryRead, HistoryRecord};
use super::partition::{Partition, partition_of, split_by_partition};
use super::replay::{
    FleetJournal, JOURNAL_FORMAT, JournalHeader, Part, PartitionJournal, View, WRITE_INTENT,
    parse_fleet_journal, parse_partition_journal,
};
use super::{
    Journal, LockInfo, LockScope, STATE_FORMAT_V1, STATE_FORMAT_VERSION, Serials, State,
    StateChange, StateError, StateLock, StateObject, StateStore, UnlockOutcome,
};

pub struct FileStateStore {
    path: PathBuf,
    crash_at: Option<CrashPoint>,
}

/// Test hook: where a simulated crash stops an upgrade or a whole-fleet write (the files stay
/// as they are at that point and the call fails). Not for use outside tests.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// The v1 file has been copied to `state.json.v1-backup`.
    UpgradeAfterBackup,
    /// Every tenant partition is written in the staging directory.
    UpgradeAfterStaging,
    /// The staging directory is `state.d`; `state.json` is still format 1.
    UpgradeAfterRename,
    /// `state.json` is the format-2 catalog; the v1 journal is not removed yet.
    UpgradeAfterCommit,
    /// A whole-fleet write's intent is in place; no partition is written yet.
    WriteAfterIntent,
    /// A whole-fleet write has written this many partitions.
    WriteAfterPartitions(usize),
}

/// A catalog or tenant file as stored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PartitionFile {
    format_version: u32,
    lineage: String,
    serial: u64,
    /// Tenant partitions name their tenant; the catalog has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    objects: BTreeMap<String, StateObject>,
}

/// Objects to store, in address order, without copying them.
struct ObjectsRef<'a>(&'a [(&'a String, &'a StateObject)]);

impl Serialize for ObjectsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, *v)))
    }
}

/// [`PartitionFile`] to write. Header fields come first, so [`read_header`] finds them in the
/// first bytes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartitionFileRef<'a> {
    format_version: u32,
    lineage: &'a str,
    serial: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    objects: ObjectsRef<'a>,
}

/// A write intent's line (see [`super::replay::Replacement`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplacementRef<'a> {
    partition: &'a Partition,
    base: u64,
    serial: u64,
    objects: ObjectsRef<'a>,
}

/// The header fields of a state file.
#[derive(Default, Debug)]
struct Header {
    format_version: Option<u32>,
    lineage: Option<String>,
    serial: Option<u64>,
    tenant: Option<String>,
    done: bool,
}

/// Reads the header fields and stops at `objects` once it has them (so a prefix of the file
/// is enough).
struct HeaderVisitor<'a>(&'a mut Header);

impl<'de> Visitor<'de> for HeaderVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a state file")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "formatVersion" => self.0.format_version = Some(map.next_value()?),
                "lineage" => self.0.lineage = Some(map.next_value()?),
                "serial" => self.0.serial = Some(map.next_value()?),
                "tenant" => self.0.tenant = Some(map.next_value()?),
                "objects"
                    if self.0.format_version.is_some()
                        && self.0.lineage.is_some()
                        && self.0.serial.is_some() =>
                {
                    self.0.done = true;
                    return Err(serde::de::Error::custom("header read"));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.0.done = true;
        Ok(())
    }
}

/// What `state.json` says the layout is.
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    /// Nothing stored yet.
    Fresh,
    /// The single-file state (or the journal of a single-file apply that never wrote it).
    V1,
    Partitioned,
}

/// The files under `state.d/tenants/`.
#[derive(Default)]
struct Listing {
    tenants: BTreeSet<String>,
    journals: BTreeSet<Partition>,
    locks: Vec<PathBuf>,
}

/// A stored partition's file content.
struct Raw {
    serial: u64,
    lineage: String,
    objects: BTreeMap<String, StateObject>,
}

impl FileStateStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStateStore {
            path: path.into(),
            crash_at: None,
        }
    }

    /// Test hook: stop an upgrade or a whole-fleet write at `point` as a crash would.
    #[doc(hidden)]
    pub fn simulate_crash_at(mut self, point: CrashPoint) -> Self {
        self.crash_at = Some(point);
        self
    }

    /// The catalog file (`state.json`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    /// The whole-fleet journal.
    pub fn journal_path(&self) -> PathBuf {
        self.sibling(".journal")
    }

    /// The whole-fleet lock.
    pub fn lock_path(&self) -> PathBuf {
        self.sibling(".lock")
    }

    /// The previous catalog.
    pub fn backup_path(&self) -> PathBuf {
        self.sibling(".backup")
    }

    /// The single-file state as it was before the upgrade to partitions.
    pub fn v1_backup_path(&self) -> PathBuf {
        self.sibling(".v1-backup")
    }

    /// `state.d` beside `state.json`: the partitions' directory.
    pub fn partitions_dir(&self) -> PathBuf {
        let stem = self
            .path
            .file_stem()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.path.file_name().unwrap_or_default())
            .to_os_string();
        let mut name = stem;
        name.push(".d");
        let dir = self.path.with_file_name(&name);
        if dir == self.path {
            self.sibling(".d")
        } else {
            dir
        }
    }

    /// Where an upgrade builds `state.d` before moving it into place.
    fn staging_dir(&self) -> PathBuf {
        let mut name = self.partitions_dir().into_os_string();
        name.push(".upgrading");
        PathBuf::from(name)
    }

    /// `state.d/observations/T/NAME.json`: what was observed of tenant T (outside its
    /// partition: no lock, no serial).
    pub fn observation_path(&self, tenant: &str, name: &str) -> Result<PathBuf, StateError> {
        // Checked: a DNS-label-like tenant name and an identifier, never `..` or a path.
        Partition::tenant(tenant)?;
        super::check_observation_name(name)?;
        Ok(self
            .partitions_dir()
            .join("observations")
            .join(tenant)
            .join(format!("{name}.json")))
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.partitions_dir().join("tenants")
    }

    fn history_dir(&self) -> PathBuf {
        self.partitions_dir().join("history")
    }

    /// A partition's history file.
    pub fn history_path(&self, partition: &Partition) -> Result<PathBuf, StateError> {
        partition.check()?;
        Ok(match partition {
            Partition::Catalog => self.history_dir().join("catalog.jsonl"),
            // Checked above: a DNS-label-like name, never `..` or a path.
            Partition::Tenant(name) => self
                .history_dir()
                .join("tenants")
                .join(format!("{name}.jsonl")),
        })
    }

    /// A partition's file (the catalog is `state.json`).
    pub fn partition_path(&self, partition: &Partition) -> Result<PathBuf, StateError> {
        partition.check()?;
        Ok(match partition {
            Partition::Catalog => self.path.clone(),
            // Checked above: a DNS-label-like name, never `..` or a path.
            Partition::Tenant(name) => self.tenants_dir().join(format!("{name}.json")),
        })
    }

    pub fn partition_journal_path(&self, partition: &Partition) -> Result<PathBuf, StateError> {
        Ok(match partition {
            Partition::Catalog => self.partitions_dir().join("catalog.journal"),
            Partition::Tenant(_) => with_suffix(&self.partition_path(partition)?, ".journal"),
        })
    }

    pub fn partition_lock_path(&self, partition: &Partition) -> Result<PathBuf, StateError> {
        Ok(match partition {
            Partition::Catalog => self.partitions_dir().join("catalog.lock"),
            Partition::Tenant(_) => with_suffix(&self.partition_path(partition)?, ".lock"),
        })
    }

    fn partition_backup_path(&self, partition: &Partition) -> Result<PathBuf, StateError> {
        Ok(match partition {
            Partition::Catalog => self.backup_path(),
            Partition::Tenant(_) => with_suffix(&self.partition_path(partition)?, ".backup"),
        })
    }

    fn crash_point(&self, point: CrashPoint) -> Result<(), StateError> {
        if self.crash_at == Some(point) {
            return Err(StateError::SimulatedCrash(format!("{point:?}")));
        }
        Ok(())
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        }
    }

    fn ensure_dir(&self) -> Result<(), StateError> {
        make_dir(&self.dir())
    }

    fn ensure_partition_dirs(&self) -> Result<(), StateError> {
        self.ensure_dir()?;
        make_dir(&self.partitions_dir())?;
        make_dir(&self.tenants_dir())
    }

    // ---- Reading -----------------------------------------------------------------------

    fn layout(&self) -> Result<Layout, StateError> {
        match read_header(&self.path)? {
            Some(h) => Ok(match h.format_version {
                Some(STATE_FORMAT_V1) => Layout::V1,
                _ => Layout::Partitioned,
            }),
            None => {
                // No file: a v1 journal means a single-file apply died before its first write.
                let text = read_text(&self.journal_path(), "cannot read state journal")?;
                let v1 = text.as_deref().is_some_and(|t| {
                    t.lines()
                        .next()
                        .and_then(|l| serde_json::from_str::<JournalHeader>(l).ok())
                        .is_some_and(|h| h.journal_format.is_none())
                });
                Ok(if v1 { Layout::V1 } else { Layout::Fresh })
            }
        }
    }

    /// The whole-fleet journal, if any. Under partitions a v1 journal is ignored: the upgrade
    /// folded it in before making the catalog format 2.
    fn fleet_journal(&self, layout: &Layout) -> Result<Option<FleetJournal>, StateError> {
        let path = self.journal_path();
        let Some(text) = read_text(&path, "cannot read state journal")? else {
            return Ok(None);
        };
        let journal = parse_fleet_journal(&text, &path.display().to_string())?;
        Ok(match (layout, journal) {
            (Layout::V1, Some(j @ FleetJournal::V1 { .. })) => Some(j),
            (Layout::V1, _) | (_, Some(FleetJournal::V1 { .. })) => None,
            (_, j) => j,
        })
    }

    /// The v1 file (format 1: the whole fleet).
    fn read_v1(&self) -> Result<Option<State>, StateError> {
        let Some(bytes) = read_bytes(&self.path, "cannot read state file")? else {
            return Ok(None);
        };
        let shown = self.path.display().to_string();
        check_version(&bytes, &shown, &self.backup_path())?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path: shown,
                detail: e.to_string(),
            })
    }

    /// A partition file, checked: format, that it is this partition's, that every object in
    /// it belongs here.
    fn read_partition_file(&self, partition: &Partition) -> Result<Option<Raw>, StateError> {
        let path = self.partition_path(partition)?;
        let Some(bytes) = read_bytes(&path, "cannot read state file")? else {
            return Ok(None);
        };
        let shown = path.display().to_string();
        let backup = self.partition_backup_path(partition)?;
        let corrupt = |detail: String| StateError::Corrupt {
            path: shown.clone(),
            detail,
        };
        // One parse on the way every plan takes; the version is checked on its own only to
        // explain a file that does not parse (a newer format, or no format at all).
        let file: PartitionFile = match serde_json::from_slice(&bytes) {
            Ok(file) => file,
            Err(e) => {
                let version = check_version(&bytes, &shown, &backup)?;
                if version != STATE_FORMAT_VERSION {
                    return Err(corrupt(format!(
                        "format version {version} is not a partition (expected {STATE_FORMAT_VERSION})"
                    )));
                }
                return Err(corrupt(format!(
                    "{e} (restore {} or fix the file by hand)",
                    backup.display()
                )));
            }
        };
        check_partition_header(
            partition,
            file.format_version,
            file.tenant.as_deref(),
            &shown,
        )?;
        for (address, object) in &file.objects {
            check_belongs(partition, address, object, &shown)?;
        }
        Ok(Some(Raw {
            serial: file.serial,
            lineage: file.lineage,
            objects: file.objects,
        }))
    }

    /// [`FileStateStore::read_partition_file`] an object at a time, parsed as the file is
    /// read: the objects go to `each` (checked), the [`Raw`] returned has none. A file that
    /// does not parse is then read whole to say why.
    /// A partition an object at a time (only those `wanted` accepts parsed, when given), as
    /// [`StateStore::load_partition_each`] and [`StateStore::load_partition_only`] read it. A
    /// journal to replay (or a single-file state) is loaded whole: replay needs it.
    fn load_each_wanted(
        &self,
        partition: &Partition,
        each: &mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
        wanted: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<State, StateError> {
        partition.check()?;
        let layout = self.layout()?;
        let fleet = match layout {
            Layout::V1 => None,
            _ => self.fleet_journal(&layout)?,
        };
        if layout == Layout::V1 || fleet.is_some() || self.partition_journal(partition)?.is_some() {
            return super::hand_on(self.load_partition(partition)?, each);
        }
        let catalog = read_header(&self.path)?;
        let lineage = catalog
            .as_ref()
            .and_then(|h| h.lineage.clone())
            .unwrap_or_default();
        let raw = self.read_partition_file_each(partition, each, wanted)?;
        let serial = match &raw {
            Some(raw) => {
                if catalog.is_none() {
                    return Err(self.catalog_missing());
                }
                self.check_lineage(partition, raw, &lineage)?;
                raw.serial
            }
            None => 0,
        };
        Ok(State {
            lineage,
            serial,
            ..State::new()
        })
    }

    fn read_partition_file_each(
        &self,
        partition: &Partition,
        each: &mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
        wanted: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Option<Raw>, StateError> {
        let path = self.partition_path(partition)?;
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot read state file", &path)(e)),
        };
        let shown = path.display().to_string();
        let mut stopped = None;
        let mut checked = |address: String, object: StateObject| {
            check_belongs(partition, &address, &object, &shown)?;
            each(address, object)
        };
        let visitor = PartitionFileVisitor {
            each: &mut checked,
            stopped: &mut stopped,
            wanted,
        };
        let parsed = if wanted.is_some() {
            // Skipping most of it: the file is read at once and scanned from memory (one
            // tenant's partition; a reader would cost a call per byte it skips).
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut &file, &mut bytes)
                .map_err(io_error("cannot read state file", &path))?;
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            serde::Deserializer::deserialize_map(&mut de, visitor)
                .and_then(|header| de.end().map(|()| header))
        } else {
            let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
                256 * 1024,
                file,
            ));
            serde::Deserializer::deserialize_map(&mut de, visitor)
                .and_then(|header| de.end().map(|()| header))
        };
        if let Some(error) = stopped {
            return Err(error);
        }
        let header = match parsed {
            Ok(header) => header,
            Err(_) => {
                // The one way to explain it: the whole file, as the ordinary read does.
                return self.read_partition_file(partition).map(|raw| {
                    raw.map(|r| Raw {
                        objects: BTreeMap::new(),
                        ..r
                    })
                });
            }
        };
        check_partition_header(
            partition,
            header.format_version,
            header.tenant.as_deref(),
            &shown,
        )?;
        Ok(Some(Raw {
            serial: header.serial,
            lineage: header.lineage,
            objects: BTreeMap::new(),
        }))
    }

    /// A partition file for replay and writes: one that cannot be read while a write intent
    /// holds its new content (a power loss after the intent was synced but before the
    /// partition files were) is taken from the intent.
    fn read_raw(
        &self,
        partition: &Partition,
        fleet: Option<&FleetJournal>,
    ) -> Result<Option<Raw>, StateError> {
        let replacement = fleet.and_then(|j| j.replacement(partition).map(|r| (j, r)));
        match (self.read_partition_file(partition), replacement) {
            (Err(StateError::Corrupt { .. }), Some((journal, r))) => Ok(Some(Raw {
                serial: r.base,
                lineage: journal.lineage().to_string(),
                objects: BTreeMap::new(),
            })),
            (other, _) => other,
        }
    }

    fn listing(&self) -> Result<Listing, StateError> {
        let dir = self.tenants_dir();
        let mut listing = Listing::default();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(io_error("cannot list state partitions", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_error("cannot list state partitions", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let tenant = |suffix: &str| {
                name.strip_suffix(suffix)
                    .filter(|t| super::partition::is_tenant_name(t))
                    .map(str::to_string)
            };
            if let Some(t) = tenant(".json") {
                listing.tenants.insert(t);
            } else if let Some(t) = tenant(".json.journal") {
                listing.journals.insert(Partition::Tenant(t));
            } else if tenant(".json.lock").is_some() {
                listing.locks.push(entry.path());
            }
        }
        if self.partitions_dir().join("catalog.journal").exists() {
            listing.journals.insert(Partition::Catalog);
        }
        Ok(listing)
    }

    fn partition_journal(
        &self,
        partition: &Partition,
    ) -> Result<Option<PartitionJournal>, StateError> {
        let path = self.partition_journal_path(partition)?;
        let Some(text) = read_text(&path, "cannot read state journal")? else {
            return Ok(None);
        };
        parse_partition_journal(&text, &path.display().to_string(), partition)
    }

    /// A partition journal's lineage and base serial, from its first line only (a writer
    /// closing its session need not replay what it has just written).
    fn partition_journal_header(
        &self,
        partition: &Partition,
    ) -> Result<Option<(String, u64)>, StateError> {
        let path = self.partition_journal_path(partition)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot read state journal", &path)(e)),
        };
        let mut first = Vec::new();
        std::io::BufReader::new(file)
            .read_until(b'\n', &mut first)
            .map_err(io_error("cannot read state journal", &path))?;
        let torn = !first.ends_with(b"\n");
        let shown = path.display().to_string();
        let Ok(line) = std::str::from_utf8(&first) else {
            return Err(StateError::Corrupt {
                path: shown,
                detail: "not UTF-8".into(),
            });
        };
        if line.is_empty() {
            return Ok(None);
        }
        super::replay::parse_partition_journal_header(line.trim_end(), torn, &shown, partition)
    }

    /// The single-file state as partitions: the catalog keeps the v1 serial, tenants start at
    /// 0 (so the whole serial is the v1 serial, and a plan made before the upgrade still
    /// applies after it); a v1 journal is replayed as today.
    fn v1_view(&self) -> Result<View, StateError> {
        let file = self.read_v1()?;
        let fleet = self.fleet_journal(&Layout::V1)?;
        let mut view = View {
            lineage: file.as_ref().map(|f| f.lineage.clone()).unwrap_or_default(),
            parts: BTreeMap::new(),
            recovered: 0,
        };
        match file {
            Some(file) => {
                let mut split: BTreeMap<Partition, BTreeMap<String, StateObject>> = BTreeMap::new();
                for (address, object) in file.objects {
                    split
                        .entry(partition_of(&address, &object))
                        .or_default()
                        .insert(address, object);
                }
                view.parts.insert(
                    Partition::Catalog,
                    Part::stored(file.serial, BTreeMap::new()),
                );
                for (p, objects) in split {
                    let serial = if p == Partition::Catalog {
                        file.serial
                    } else {
                        0
                    };
                    view.parts.insert(p, Part::stored(serial, objects));
                }
            }
            None => {
                view.parts.insert(Partition::Catalog, Part::absent());
            }
        }
        view.replay(Vec::new(), fleet.as_ref(), true);
        Ok(view)
    }

    /// Every partition, journals replayed.
    fn whole_view(&self) -> Result<View, StateError> {
        // The journal first: a writer that finishes meanwhile leaves partitions that the
        // journal no longer applies to, never a journal without its partitions.
        let layout = self.layout()?;
        if layout == Layout::V1 {
            return self.v1_view();
        }
        let fleet = self.fleet_journal(&layout)?;
        let catalog = self.read_raw(&Partition::Catalog, fleet.as_ref())?;
        let listing = self.listing()?;
        if catalog.is_none() && fleet.is_none() && !listing.tenants.is_empty() {
            return Err(self.catalog_missing());
        }
        let mut view = View {
            lineage: catalog
                .as_ref()
                .map(|c| c.lineage.clone())
                .unwrap_or_default(),
            parts: BTreeMap::new(),
            recovered: 0,
        };
        view.parts.insert(
            Partition::Catalog,
            catalog.map_or_else(Part::absent, |c| Part::stored(c.serial, c.objects)),
        );
        for tenant in &listing.tenants {
            let p = Partition::Tenant(tenant.clone());
            if let Some(raw) = self.read_raw(&p, fleet.as_ref())? {
                self.check_lineage(&p, &raw, &view.lineage)?;
                view.parts.insert(p, Part::stored(raw.serial, raw.objects));
            }
        }
        let mut journals = Vec::new();
        for p in &listing.journals {
            if let Some(j) = self.partition_journal(p)? {
                journals.push((p.clone(), j));
            }
        }
        view.replay(journals, fleet.as_ref(), true);
        Ok(view)
    }

    fn catalog_missing(&self) -> StateError {
        StateError::Corrupt {
            path: self.path.display().to_string(),
            detail: format!(
                "missing, while {} holds tenant partitions: restore it from {} or {}",
                self.tenants_dir().display(),
                self.backup_path().display(),
                self.v1_backup_path().display()
            ),
        }
    }

    fn check_lineage(&self, p: &Partition, raw: &Raw, lineage: &str) -> Result<(), StateError> {
        if !lineage.is_empty() && raw.lineage != lineage {
            return Err(StateError::Corrupt {
                path: self.partition_path(p)?.display().to_string(),
                detail: format!(
                    "lineage {} is not this state's ({lineage}): a partition of another state",
                    raw.lineage
                ),
            });
        }
        Ok(())
    }

    /// Stored serials (journals not replayed) of every partition that exists.
    fn raw_serials(&self) -> Result<BTreeMap<Partition, u64>, StateError> {
        let mut serials = BTreeMap::new();
        if let Some(h) = read_header(&self.path)? {
            serials.insert(Partition::Catalog, h.serial.unwrap_or(0));
        }
        for tenant in self.listing()?.tenants {
            let p = Partition::Tenant(tenant);
            if let Some(h) = read_header(&self.partition_path(&p)?)? {
                serials.insert(p, h.serial.unwrap_or(0));
            }
        }
        Ok(serials)
    }

    /// The catalog's lineage, checked against a writer's.
    fn check_catalog_lineage(&self, lineage: &str, need_catalog: bool) -> Result<(), StateError> {
        match read_header(&self.path)? {
            Some(h) if h.lineage.as_deref() != Some(lineage) => Err(StateError::LineageMismatch {
                ours: lineage.to_string(),
                stored: h.lineage.unwrap_or_default(),
            }),
            None if need_catalog => Err(StateError::NoCatalog),
            _ => Ok(()),
        }
    }

    // ---- Locks ---------------------------------------------------------------------------

    fn open_lock_file(&self, path: &Path) -> Result<File, StateError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_error("cannot open state lock", path))
    }

    /// The exclusive whole-fleet lock, its record written.
    fn lock_fleet_exclusive(
        &self,
        info: &LockInfo,
        deadline: Instant,
    ) -> Result<HeldFileLock, StateError> {
        self.ensure_dir()?;
        let path = self.lock_path();
        let mut file = self.open_lock_file(&path)?;
        if !wait_for_lock(&file, false, deadline).map_err(io_error("cannot lock state", &path))? {
            return Err(match read_lock_info(&mut file) {
                Some(info) => StateError::Locked {
                    info: Box::new(info),
                },
                // Held shared: partition writers are at work; name one.
                None => match self.partition_holder() {
                    Some(info) => StateError::Locked {
                        info: Box::new(info),
                    },
                    None => StateError::LockedUnknown,
                },
            });
        }
        write_lock_info(&mut file, info, &path)?;
        Ok(HeldFileLock { file })
    }

    /// Someone holding a partition lock, if any.
    fn partition_holder(&self) -> Option<LockInfo> {
        let mut paths = vec![self.partitions_dir().join("catalog.lock")];
        paths.extend(self.listing().ok()?.locks);
        paths.into_iter().find_map(|path| {
            let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
            match file.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) => read_lock_info(&mut file),
                _ => None,
            }
        })
    }

    /// Whether partition writers must wait for a whole-fleet step first: an upgrade, or the
    /// journal of a whole-fleet writer that died.
    fn needs_settling(&self) -> Result<bool, StateError> {
        Ok(self.layout()? == Layout::V1 || self.journal_path().exists())
    }

    /// Upgrades, or records a whole-fleet writer's journal, under the whole-fleet lock.
    fn settle(&self, info: &LockInfo, deadline: Instant) -> Result<(), StateError> {
        if !self.needs_settling()? {
            return Ok(());
        }
        let held = self.lock_fleet_exclusive(info, deadline)?;
        let lock = StateLock::new(Box::new(held), info.clone(), LockScope::Fleet);
        if self.layout()? == Layout::V1 {
            self.upgrade(&lock)?;
        }
        if self.journal_path().exists() {
            let state = self.load()?;
            self.write(&state, &lock)?;
        }
        Ok(())
    }

    // ---- Upgrade ---------------------------------------------------------------------------

    /// Splits a single-file (v1) state into partitions; the caller holds the whole-fleet lock.
    ///
    /// 1. copy `state.json` (and a v1 journal) to `.v1-backup`;
    /// 2. write every tenant partition into `state.d.upgrading/` (leftovers of an earlier
    ///    attempt removed first) and sync them;
    /// 3. move it to `state.d` (a `state.d` left by an earlier attempt is removed: while
    ///    `state.json` is format 1 nothing reads it);
    /// 4. replace `state.json` with the format-2 catalog (the commit point);
    /// 5. remove the v1 journal.
    ///
    /// Before step 4 every reader still reads the v1 file (and its journal), which is
    /// untouched; after it, `state.d` is complete and the v1 journal is ignored (its changes
    /// are in the partitions). A crash at any point leaves one of the two, and the next writer
    /// starts again from step 1.
    fn upgrade(&self, lock: &StateLock) -> Result<(), StateError> {
        lock.check_fleet()?;
        let view = self.v1_view()?;
        if view.lineage.is_empty() {
            return Ok(());
        }
        let dir = self.dir();
        // 1. Backups.
        if self.path.exists() {
            copy_atomic(&self.path, &self.v1_backup_path())?;
        }
        let journal = self.journal_path();
        if journal.exists() {
            copy_atomic(&journal, &with_suffix(&journal, ".v1-backup"))?;
        }
        sync_dir(&dir)?;
        self.crash_point(CrashPoint::UpgradeAfterBackup)?;
        // 2. Staging. A partition the v1 journal changed gets a new serial (readers saw it
        // at its stored serial + 1 while the journal was live); the others keep theirs.
        let staging = self.staging_dir();
        remove_dir_if_exists(&staging)?;
        make_dir(&staging)?;
        let staged_tenants = staging.join("tenants");
        make_dir(&staged_tenants)?;
        let serial_of = |part: &Part| part.serial() + u64::from(part.effects > 0);
        let mut written = Vec::new();
        for (p, part) in &view.parts {
            let Partition::Tenant(name) = p else { continue };
            let path = staged_tenants.join(format!("{name}.json"));
            let objects: Vec<(&String, &StateObject)> = part.objects.iter().collect();
            let bytes = partition_bytes(&view.lineage, serial_of(part), p, &objects);
            write_new(&path, &bytes, false)?;
            written.push(path);
        }
        flush_all(&staging, &written)?;
        sync_dir(&staged_tenants)?;
        sync_dir(&staging)?;
        self.crash_point(CrashPoint::UpgradeAfterStaging)?;
        // 3. Into place.
        let live = self.partitions_dir();
        remove_dir_if_exists(&live)?;
        std::fs::rename(&staging, &live)
            .map_err(io_error("cannot move state partitions", &live))?;
        sync_dir(&dir)?;
        self.crash_point(CrashPoint::UpgradeAfterRename)?;
        // 4. Commit.
        let catalog = view.parts.get(&Partition::Catalog);
        let objects: Vec<(&String, &StateObject)> = catalog
            .map(|c| c.objects.iter().collect())
            .unwrap_or_default();
        let bytes = partition_bytes(
            &view.lineage,
            catalog.map_or(0, serial_of),
            &Partition::Catalog,
            &objects,
        );
        write_file(&self.path, &bytes, None, true)?;
        sync_dir(&dir)?;
        self.crash_point(CrashPoint::UpgradeAfterCommit)?;
        // 5. The v1 journal is folded in.
        remove_if_exists(&journal)?;
        sync_dir(&dir)
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn io_error(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.display().to_string();
    move |source| StateError::Io {
        context,
        path,
        source,
    }
}

fn make_dir(dir: &Path) -> Result<(), StateError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error("cannot create state directory", dir))
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("cannot sync state directory", dir)(e)),
    }
}

fn remove_if_exists(path: &Path) -> Result<(), StateError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("cannot remove", path)(e)),
    }
}

fn remove_dir_if_exists(path: &Path) -> Result<(), StateError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("cannot remove", path)(e)),
    }
}

fn read_bytes(path: &Path, context: &'static str) -> Result<Option<Vec<u8>>, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(context, path)(e)),
    }
}

fn read_text(path: &Path, context: &'static str) -> Result<Option<String>, StateError> {
    let Some(bytes) = read_bytes(path, context)? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| StateError::Corrupt {
            path: path.display().to_string(),
            detail: "not UTF-8".into(),
        })
}

/// The format version, read first so a newer format is reported as such, not as corrupt.
fn check_version(bytes: &[u8], shown: &str, backup: &Path) -> Result<u32, StateError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Version {
        format_version: Option<u32>,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
        path: shown.to_string(),
        detail: format!("{e} (restore {} or fix the file by hand)", backup.display()),
    })?;
    match version.format_version {
        Some(v) if v > STATE_FORMAT_VERSION => Err(StateError::NewerFormat {
            path: shown.to_string(),
            found: v,
            supported: STATE_FORMAT_VERSION,
        }),
        None => Err(StateError::Corrupt {
            path: shown.to_string(),
            detail: "no formatVersion: not a tenantform state file".into(),
        }),
        Some(v) => Ok(v),
    }
}

/// A state file's header from its first bytes (the whole file only when they do not hold
/// it). Checks the format version; the objects are not read.
/// A partition file's format version and tenant, checked against the partition it is read as.
fn check_partition_header(
    partition: &Partition,
    version: u32,
    tenant: Option<&str>,
    shown: &str,
) -> Result<(), StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        path: shown.to_string(),
        detail,
    };
    if version > STATE_FORMAT_VERSION {
        return Err(StateError::NewerFormat {
            path: shown.to_string(),
            found: version,
            supported: STATE_FORMAT_VERSION,
        });
    }
    if version != STATE_FORMAT_VERSION {
        return Err(corrupt(format!(
            "format version {version} is not a partition (expected {STATE_FORMAT_VERSION})"
        )));
    }
    if tenant != partition.tenant_name() {
        return Err(corrupt(format!(
            "it says it is {}, but it is the file of {partition}",
            match tenant {
                Some(t) => format!("tenant {t}'s partition"),
                None => "the catalog".to_string(),
            }
        )));
    }
    Ok(())
}

/// Refuses an object stored in a partition it does not belong to.
fn check_belongs(
    partition: &Partition,
    address: &str,
    object: &StateObject,
    shown: &str,
) -> Result<(), StateError> {
    let belongs = partition_of(address, object);
    if belongs != *partition {
        return Err(StateError::Corrupt {
            path: shown.to_string(),
            detail: format!("{address} belongs to {belongs}, not to {partition}"),
        });
    }
    Ok(())
}

/// A partition file's fields but its objects.
struct PartitionFileHeader {
    format_version: u32,
    lineage: String,
    serial: u64,
    tenant: Option<String>,
}

/// Parses a partition file ([`PartitionFile`]'s fields, unknown ones refused) handing each
/// object to `each` as it is parsed; an error of `each` stops the parse and is left in
/// `stopped`.
struct PartitionFileVisitor<'a> {
    each: &'a mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
    stopped: &'a mut Option<StateError>,
    wanted: Option<&'a dyn Fn(&str) -> bool>,
}

impl<'de> Visitor<'de> for PartitionFileVisitor<'_> {
    type Value = PartitionFileHeader;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a state partition file")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        const FIELDS: &[&str] = &["formatVersion", "lineage", "serial", "tenant", "objects"];
        let (mut format_version, mut lineage, mut serial, mut tenant) = (None, None, None, None);
        let mut objects = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "formatVersion" => format_version = Some(map.next_value()?),
                "lineage" => lineage = Some(map.next_value()?),
                "serial" => serial = Some(map.next_value()?),
                "tenant" => tenant = map.next_value()?,
                "objects" => {
                    map.next_value_seed(ObjectsSeed {
                        each: &mut *self.each,
                        stopped: &mut *self.stopped,
                        wanted: self.wanted,
                    })?;
                    objects = true;
                }
                other => return Err(A::Error::unknown_field(other, FIELDS)),
            }
        }
        if !objects {
            return Err(A::Error::missing_field("objects"));
        }
        Ok(PartitionFileHeader {
            format_version: format_version
                .ok_or_else(|| A::Error::missing_field("formatVersion"))?,
            lineage: lineage.ok_or_else(|| A::Error::missing_field("lineage"))?,
            serial: serial.ok_or_else(|| A::Error::missing_field("serial"))?,
            tenant,
        })
    }
}

/// The `objects` map of a partition (a file's field, a database row's column), an entry at a
/// time: each goes to `each`; an error of `each` stops the parse and is left in `stopped`.
pub(super) struct ObjectsSeed<'a> {
    pub each: &'a mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
    pub stopped: &'a mut Option<StateError>,
    /// Only objects whose address it accepts are parsed; the others are skipped unparsed.
    pub wanted: Option<&'a dyn Fn(&str) -> bool>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ObjectsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of objects by address")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(address) = map.next_key::<String>()? {
            if self.wanted.is_some_and(|wanted| !wanted(&address)) {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let object = map.next_value::<StateObject>()?;
            if let Err(e) = (self.each)(address, object) {
                *self.stopped = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

fn read_header(path: &Path) -> Result<Option<Header>, StateError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read state file", path)(e)),
    };
    let mut prefix = vec![0u8; 4096];
    let mut filled = 0;
    while filled < prefix.len() {
        match file.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error("cannot read state file", path)(e)),
        }
    }
    prefix.truncate(filled);
    let mut header = Header::default();
    let mut de = serde_json::Deserializer::from_slice(&prefix);
    let _ = serde::Deserializer::deserialize_map(&mut de, HeaderVisitor(&mut header));
    if !(header.done && header.format_version.is_some()) {
        // Not in the first bytes (or not JSON): read it all, and say what is wrong.
        let bytes = read_bytes(path, "cannot read state file")?.unwrap_or_default();
        let shown = path.display().to_string();
        check_version(&bytes, &shown, &with_suffix(path, ".backup"))?;
        header = Header::default();
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let _ = serde::Deserializer::deserialize_map(&mut de, HeaderVisitor(&mut header));
        if !header.done {
            return Err(StateError::Corrupt {
                path: shown,
                detail: "no lineage or serial".into(),
            });
        }
    }
    match header.format_version {
        Some(v) if v > STATE_FORMAT_VERSION => Err(StateError::NewerFormat {
            path: path.display().to_string(),
            found: v,
            supported: STATE_FORMAT_VERSION,
        }),
        _ => Ok(Some(header)),
    }
}

fn partition_bytes(
    lineage: &str,
    serial: u64,
    partition: &Partition,
    objects: &[(&String, &StateObject)],
) -> Buffer {
    let mut bytes = Buffer::take();
    let mut writer = serde_json::Serializer::with_formatter(&mut *bytes, ObjectPerLine::default());
    serde::Serialize::serialize(
        &PartitionFileRef {
            format_version: STATE_FORMAT_VERSION,
            lineage,
            serial,
            tenant: partition.tenant_name(),
            objects: ObjectsRef(objects),
        },
        &mut writer,
    )
    .expect("state serializes");
    bytes.push(b'\n');
    bytes
}

/// JSON indented two levels deep and compact below: a partition file shows one object per
/// line (readable, and a diff of two versions shows the objects that changed), without
/// indenting every attribute of thousands of contacts (a third of the bytes, and of the time
/// to write them).
#[derive(Default)]
struct ObjectPerLine {
    /// Objects and arrays open.
    open: usize,
    /// Whether the innermost open container has a member yet.
    has_value: bool,
}

/// Levels laid out one member per line: the file's fields, then its objects.
const INDENTED_LEVELS: usize = 2;

impl ObjectPerLine {
    fn indented(&self) -> bool {
        self.open <= INDENTED_LEVELS
    }

    fn member<W: ?Sized + Write>(&self, writer: &mut W, first: bool) -> std::io::Result<()> {
        if self.indented() {
            writer.write_all(if first { b"\n" } else { b",\n" })?;
            (0..self.open).try_for_each(|_| writer.write_all(b"  "))
        } else if first {
            Ok(())
        } else {
            writer.write_all(b",")
        }
    }

    fn close<W: ?Sized + Write>(&mut self, writer: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.open -= 1;
        if self.open < INDENTED_LEVELS && self.has_value {
            writer.write_all(b"\n")?;
            (0..self.open).try_for_each(|_| writer.write_all(b"  "))?;
        }
        writer.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for ObjectPerLine {
    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open += 1;
        self.has_value = false;
        writer.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.member(writer, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(if self.indented() { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _writer: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open += 1;
        self.has_value = false;
        writer.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.member(writer, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _writer: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

fn temp_path(path: &Path) -> PathBuf {
    with_suffix(path, &format!(".tmp-{}", std::process::id()))
}

/// Creates `path` with `bytes` (mode 0600).
fn write_new(path: &Path, bytes: &[u8], fsync: bool) -> Result<(), StateError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("cannot write state file", path))?;
    file.write_all(bytes)
        .and_then(|_| if fsync { file.sync_all() } else { Ok(()) })
        .map_err(io_error("cannot write state file", path))
}

/// Replaces `path` atomically: a temporary file beside it, fsync (unless a synced intent
/// covers it), the old file kept as `backup`, rename. The caller syncs the directory.
fn write_file(
    path: &Path,
    bytes: &[u8],
    backup: Option<&Path>,
    fsync: bool,
) -> Result<(), StateError> {
    let tmp = temp_path(path);
    let result = (|| {
        write_new(&tmp, bytes, fsync)?;
        if let Some(backup) = backup
            && path.exists()
        {
            remove_if_exists(backup)?;
            // A hard link is the old content at no cost; copy where links are not allowed.
            if std::fs::hard_link(path, backup).is_err() {
                std::fs::copy(path, backup).map_err(io_error("cannot back up", path))?;
            }
        }
        std::fs::rename(&tmp, path).map_err(io_error("cannot write state file", path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn copy_atomic(from: &Path, to: &Path) -> Result<(), StateError> {
    let bytes = read_bytes(from, "cannot read state file")?.unwrap_or_default();
    write_file(to, &bytes, None, true)
}

/// Makes files written without fsync durable: one `syncfs` of their file system on Linux
/// (one call instead of one fsync per partition), an fsync each elsewhere.
fn flush_all(dir: &Path, files: &[PathBuf]) -> Result<(), StateError> {
    #[cfg(target_os = "linux")]
    {
        let _ = files;
        use std::os::fd::AsRawFd;
        let d = File::open(dir).map_err(io_error("cannot sync state directory", dir))?;
        // SAFETY: syncfs(2) on a descriptor we own; it only flushes.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(io_error("cannot sync state", dir)(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        for f in files {
            File::open(f)
                .and_then(|f| f.sync_all())
                .map_err(io_error("cannot sync state file", f))?;
        }
        Ok(())
    }
}

/// Waits until `deadline` for the lock; whether it was taken.
fn wait_for_lock(file: &File, shared: bool, deadline: Instant) -> std::io::Result<bool> {
    loop {
        let attempt = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match attempt {
            Ok(()) => return Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(50).min(deadline - now));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Not synced: the record is read only while its writer holds the lock (another process
/// waiting names it), from the page cache; after a crash the lock is free and a record left
/// behind is stale and cleared, so it never needs to outlive the process.
fn write_lock_info(file: &mut File, info: &LockInfo, path: &Path) -> Result<(), StateError> {
    let record = serde_json::to_vec_pretty(info).expect("lock info serializes");
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(&record))
        .map_err(io_error("cannot write state lock", path))
}

fn read_lock_info(file: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// An exclusive lock whose file records its holder; the record is cleared on release.
struct HeldFileLock {
    file: File,
}

impl Drop for HeldFileLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The whole-fleet lock held shared (by a partition writer).
struct HeldShared {
    file: File,
}

impl Drop for HeldShared {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// A partition lock: the partition's own, then the shared whole-fleet one (released in that
/// order).
struct HeldPartition {
    _partition: HeldFileLock,
    _fleet: HeldShared,
}

struct FileJournal {
    /// Created at the first line written out: a session whose changes exist only in state
    /// (a first sync's contacts) never creates one, its partition write records them.
    file: Option<File>,
    path: PathBuf,
    /// The header line the file starts with.
    header: Vec<u8>,
    /// A partition journal takes only changes that belong to its partition.
    partition: Option<Partition>,
    history: HistoryFiles,
    /// Change lines held back: changes that exist only in state (`durable: false`). Written
    /// out before the next durable change, so the file is always a prefix of the session's
    /// changes and a crash loses at most state-only changes after the last Entra change
    /// (as if it had come earlier; the next plan makes them again); also when they outgrow
    /// [`HELD_BACK_LIMIT`], and when the journal is dropped without its session's write.
    /// Dropped unwritten once that write has recorded them.
    held_back: Vec<u8>,
}

/// At most this many bytes of change lines (and as many of history lines) a journal holds
/// back: memory grows with the sessions open at once, never with a tenant's size.
const HELD_BACK_LIMIT: usize = 256 * 1024;

/// History files opened for appending, by partition (a whole-fleet journal writes many).
struct HistoryFiles {
    store: FileStateStore,
    open: BTreeMap<Partition, HistoryFile>,
    /// Bytes held back across all partitions.
    held_back: usize,
}

struct HistoryFile {
    file: File,
    path: PathBuf,
    /// Lines of entries written with `durable: false`, not yet written out.
    held_back: Buffer,
}

/// Cuts a torn last line (a process killed while writing it) before appending after it; held
/// under the partition's lock, so nobody else is writing. Reads only the file's end unless
/// it is torn.
fn drop_torn_line(file: &File, path: &Path) -> Result<(), StateError> {
    let len = file
        .metadata()
        .map_err(io_error("cannot read apply history", path))?
        .len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8];
    std::os::unix::fs::FileExt::read_exact_at(file, &mut last, len - 1)
        .map_err(io_error("cannot read apply history", path))?;
    if last[0] == b'\n' {
        return Ok(());
    }
    let bytes = read_bytes(path, "cannot read apply history")?.unwrap_or_default();
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    file.set_len(keep as u64)
        .and_then(|_| file.sync_data())
        .map_err(io_error("cannot repair apply history", path))
}

impl HistoryFiles {
    fn new(store: &FileStateStore) -> Self {
        HistoryFiles {
            store: FileStateStore::new(store.path.clone()),
            open: BTreeMap::new(),
            held_back: 0,
        }
    }

    /// Appends one line to `partition`'s history. A durable entry is written out with every
    /// line held back before it and synced; others are held back (see [`FileJournal`]).
    /// Each write ends at a line's end, so a killed process leaves whole lines (at worst a
    /// torn last one, which readers skip).
    fn append(
        &mut self,
        partition: &Partition,
        entry: &HistoryRecord<'_>,
        durable: bool,
    ) -> Result<(), StateError> {
        if !self.open.contains_key(partition) {
            let path = self.store.history_path(partition)?;
            let dir = path.parent().expect("history files are in a directory");
            make_dir(&self.store.history_dir())?;
            make_dir(dir)?;
            let existed = path.exists();
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&path)
                .map_err(io_error("cannot open apply history", &path))?;
            if existed {
                drop_torn_line(&file, &path)?;
            } else {
                sync_dir(dir)?;
            }
            self.open.insert(
                partition.clone(),
                HistoryFile {
                    file,
                    path,
                    held_back: Buffer::take(),
                },
            );
        }
        let history = self.open.get_mut(partition).expect("opened above");
        let before = history.held_back.len();
        serde_json::to_writer(&mut *history.held_back, entry).expect("history entries serialize");
        history.held_back.push(b'\n');
        self.held_back += history.held_back.len() - before;
        if durable {
            self.write_out()?;
            let history = &self.open[partition];
            history
                .file
                .sync_data()
                .map_err(io_error("cannot write apply history", &history.path))
        } else if self.held_back > HELD_BACK_LIMIT {
            self.write_out()
        } else {
            Ok(())
        }
    }

    /// Writes out every line held back (without syncing).
    fn write_out(&mut self) -> Result<(), StateError> {
        for history in self.open.values_mut() {
            if !history.held_back.is_empty() {
                history
                    .file
                    .write_all(&history.held_back)
                    .map_err(io_error("cannot write apply history", &history.path))?;
                history.held_back.clear();
            }
        }
        self.held_back = 0;
        Ok(())
    }
}

impl Drop for HistoryFiles {
    /// History is never held back past the journal's end: what a dropped journal had
    /// (a failed session, a test's "killed" writer) is written out, best effort.
    fn drop(&mut self) {
        let _ = self.write_out();
    }
}

impl FileJournal {
    /// Writes the change lines held back, after the history held back (an entry is always
    /// on disk before the change it describes), creating the file first if needed.
    fn write_out(&mut self, line: &[u8], durable: bool) -> Result<(), StateError> {
        self.history.write_out()?;
        if self.file.is_none() {
            self.file = Some(create_journal(&self.path, &self.header)?);
        }
        let file = self.file.as_mut().expect("created above");
        let result = if self.held_back.is_empty() {
            file.write_all(line)
        } else {
            self.held_back.extend_from_slice(line);
            let written = file.write_all(&self.held_back);
            self.held_back.clear();
            written
        };
        result
            .and_then(|_| if durable { file.sync_data() } else { Ok(()) })
            .map_err(io_error("cannot write state journal", &self.path))
    }
}

impl Drop for FileJournal {
    /// Dropped without [`Journal::after_write`] (the session failed, or a test plays a
    /// killed writer): the changes held back go into the file, as a live writer's would. A
    /// partition journal is created for them if it was not; the fleet journal is not (a
    /// whole-state write that failed may have put its write intent in its place).
    fn drop(&mut self) {
        let _ = self.history.write_out();
        if self.held_back.is_empty() {
            return;
        }
        if self.file.is_some() || self.partition.is_some() {
            let _ = self.write_out(&[], false);
        }
    }
}

impl Journal for FileJournal {
    fn record(&mut self, change: &StateChange, durable: bool) -> Result<(), StateError> {
        if let Some(p) = &self.partition {
            super::check_change_belongs(p, change)?;
        }
        if durable {
            let mut line = serde_json::to_vec(change).expect("change serializes");
            line.push(b'\n');
            return self.write_out(&line, true);
        }
        serde_json::to_writer(&mut self.held_back, change).expect("change serializes");
        self.held_back.push(b'\n');
        if self.held_back.len() > HELD_BACK_LIMIT {
            self.write_out(&[], false)?;
        }
        Ok(())
    }

    fn history(&mut self, entry: &HistoryRecord<'_>, durable: bool) -> Result<(), StateError> {
        let partition = match &self.partition {
            Some(p) => {
                super::history::check_entry_partition(p, entry)?;
                p.clone()
            }
            None => entry.partition()?,
        };
        self.history.append(&partition, entry, durable)
    }

    fn check(&self, change: &StateChange) -> Result<(), StateError> {
        match &self.partition {
            Some(p) => super::check_change_belongs(p, change),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), StateError> {
        if self.held_back.is_empty() {
            return self.history.write_out();
        }
        self.write_out(&[], false)
    }

    fn before_write(&mut self) -> Result<(), StateError> {
        self.history.write_out()
    }

    fn after_write(mut self: Box<Self>) {
        self.held_back.clear();
    }
}

/// Creates a journal file holding `header`: written to a temporary file, synced and renamed
/// into place (an older journal is replaced whole, never truncated in place).
fn create_journal(path: &Path, header: &[u8]) -> Result<File, StateError> {
    let tmp = temp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error("cannot create state journal", path))?;
    file.write_all(header)
        .and_then(|_| file.sync_data())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(io_error("cannot write state journal", path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(file)
}

impl FileStateStore {
    /// A journal that starts with `header` once it writes anything (see [`FileJournal`]).
    fn start_journal(
        &self,
        path: &Path,
        header: &JournalHeader,
        partition: Option<Partition>,
    ) -> Result<Box<dyn Journal + Send>, StateError> {
        let mut line = serde_json::to_vec(header).expect("header serializes");
        line.push(b'\n');
        Ok(Box::new(FileJournal {
            file: None,
            path: path.to_path_buf(),
            header: line,
            partition,
            history: HistoryFiles::new(self),
            held_back: Vec::new(),
        }))
    }

    fn refuse_pending(&self, what: &'static str) -> Result<(), StateError> {
        match self.layout()? {
            Layout::V1 => Err(StateError::NotUpgraded { what }),
            _ if self.journal_path().exists() => Err(StateError::FleetJournalPending {
                what,
                journal: self.journal_path().display().to_string(),
            }),
            _ => Ok(()),
        }
    }
}

impl StateStore for FileStateStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn serials(&self) -> Result<Serials, StateError> {
        let layout = self.layout()?;
        let journals = self.journal_path().exists() || !self.listing()?.journals.is_empty();
        if layout == Layout::V1 || journals {
            let view = self.whole_view()?;
            return Ok(Serials {
                partitions: view.serials(),
                lineage: view.lineage,
            });
        }
        let catalog = read_header(&self.path)?;
        let partitions = self.raw_serials()?;
        if catalog.is_none() && !partitions.is_empty() {
            return Err(self.catalog_missing());
        }
        Ok(Serials {
            lineage: catalog.and_then(|h| h.lineage).unwrap_or_default(),
            partitions,
        })
    }

    fn partition_reads_whole_fleet(&self) -> Result<bool, StateError> {
        Ok(self.layout()? == Layout::V1 || self.journal_path().exists())
    }

    fn list_tenants(&self) -> Result<Vec<String>, StateError> {
        if self.layout()? == Layout::V1 || self.journal_path().exists() {
            return Ok(self
                .whole_view()?
                .serials()
                .into_keys()
                .filter_map(|p| p.tenant_name().map(str::to_string))
                .collect());
        }
        Ok(self.listing()?.tenants.into_iter().collect())
    }

    fn load_partition(&self, partition: &Partition) -> Result<State, StateError> {
        partition.check()?;
        let layout = self.layout()?;
        if layout == Layout::V1 {
            let view = self.v1_view()?;
            return Ok(project(view, partition));
        }
        let fleet = self.fleet_journal(&layout)?;
        let catalog = read_header(&self.path)?;
        let lineage = catalog
            .as_ref()
            .and_then(|h| h.lineage.clone())
            .unwrap_or_default();
        let raw = self.read_raw(partition, fleet.as_ref())?;
        if let Some(raw) = &raw {
            if catalog.is_none() && fleet.is_none() {
                return Err(self.catalog_missing());
            }
            self.check_lineage(partition, raw, &lineage)?;
        }
        let mut view = View {
            lineage,
            parts: [(
                partition.clone(),
                raw.map_or_else(Part::absent, |r| Part::stored(r.serial, r.objects)),
            )]
            .into_iter()
            .collect(),
            recovered: 0,
        };
        let journals: Vec<(Partition, PartitionJournal)> = self
            .partition_journal(partition)?
            .map(|j| (partition.clone(), j))
            .into_iter()
            .collect();
        view.replay(journals, fleet.as_ref(), false);
        Ok(view.into_partition(partition))
    }

    fn load_partition_only(
        &self,
        partition: &Partition,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<State, StateError> {
        let mut objects = BTreeMap::new();
        let mut keep = |address: String, object: StateObject| {
            if wanted(&address) {
                objects.insert(address, object);
            }
            Ok(())
        };
        let state = self.load_each_wanted(partition, &mut keep, Some(wanted))?;
        Ok(State { objects, ..state })
    }

    fn load_partition_each(
        &self,
        partition: &Partition,
        each: &mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
    ) -> Result<State, StateError> {
        self.load_each_wanted(partition, each, None)
    }

    fn lock_partition(
        &self,
        partition: &Partition,
        info: LockInfo,
        timeout: Duration,
    ) -> Result<StateLock, StateError> {
        partition.check()?;
        let deadline = Instant::now() + timeout;
        self.ensure_partition_dirs()?;
        let fleet_path = self.lock_path();
        let shared = loop {
            self.settle(&info, deadline)?;
            let mut file = self.open_lock_file(&fleet_path)?;
            if !wait_for_lock(&file, true, deadline)
                .map_err(io_error("cannot lock state", &fleet_path))?
            {
                return Err(match read_lock_info(&mut file) {
                    Some(info) => StateError::Locked {
                        info: Box::new(info),
                    },
                    None => StateError::LockedUnknown,
                });
            }
            // A record here is stale (its exclusive holder died): nobody holds it exclusively
            // while we hold it shared.
            if file.metadata().map(|m| m.len() > 0).unwrap_or(false) {
                let _ = file.set_len(0);
            }
            let shared = HeldShared { file };
            if self.needs_settling()? {
                drop(shared);
                continue;
            }
            break shared;
        };
        let path = self.partition_lock_path(partition)?;
        let mut file = self.open_lock_file(&path)?;
        if !wait_for_lock(&file, false, deadline).map_err(io_error("cannot lock state", &path))? {
            return Err(match read_lock_info(&mut file) {
                Some(info) => StateError::Locked {
                    info: Box::new(info),
                },
                None => StateError::LockedUnknown,
            });
        }
        write_lock_info(&mut file, &info, &path)?;
        let held = HeldPartition {
            _partition: HeldFileLock { file },
            _fleet: shared,
        };
        Ok(StateLock::new(
            Box::new(held),
            info,
            LockScope::Partition(partition.clone()),
        ))
    }

    fn journal_partition(
        &self,
        partition: &Partition,
        base: &State,
        lock: &StateLock,
    ) -> Result<Box<dyn Journal + Send>, StateError> {
        lock.check_covers(partition)?;
        partition.check()?;
        super::check_journal_base(partition, base)?;
        self.refuse_pending("cannot journal a partition")?;
        self.check_catalog_lineage(&base.lineage, partition != &Partition::Catalog)?;
        let stored = read_header(&self.partition_path(partition)?)?
            .and_then(|h| h.serial)
            .unwrap_or(0);
        if stored != base.serial {
            return Err(StateError::SerialMismatch {
                partition: partition.to_string(),
                stored,
                given: base.serial,
            });
        }
        self.ensure_partition_dirs()?;
        let header = JournalHeader {
            journal_for_lineage: base.lineage.clone(),
            journal_for_serial: Some(stored),
            journal_format: Some(JOURNAL_FORMAT),
            partition: Some(partition.clone()),
            ..Default::default()
        };
        self.start_journal(
            &self.partition_journal_path(partition)?,
            &header,
            Some(partition.clone()),
        )
    }

    fn write_partition(
        &self,
        partition: &Partition,
        state: &State,
        lock: &StateLock,
    ) -> Result<u64, StateError> {
        super::check_partition_write(partition, state, lock)?;
        self.refuse_pending("cannot write a partition")?;
        self.check_catalog_lineage(&state.lineage, partition != &Partition::Catalog)?;
        self.ensure_partition_dirs()?;
        // Refuses a corrupt or newer file rather than overwriting it.
        let raw = self.read_partition_file(partition)?;
        let raw_serial = raw.as_ref().map_or(0, |r| r.serial);
        let journal = self.partition_journal_header(partition)?;
        let journal_live = journal
            .as_ref()
            .is_some_and(|(lineage, base)| *lineage == state.lineage && *base == raw_serial);
        let serial = raw_serial + u64::from(journal_live) + 1;
        let objects: Vec<(&String, &StateObject)> = state.objects.iter().collect();
        let path = self.partition_path(partition)?;
        let bytes = partition_bytes(&state.lineage, serial, partition, &objects);
        write_file(
            &path,
            &bytes,
            Some(&self.partition_backup_path(partition)?),
            true,
        )?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        sync_dir(&dir)?;
        let journal_path = self.partition_journal_path(partition)?;
        if journal_path.exists() {
            remove_if_exists(&journal_path)?;
            sync_dir(journal_path.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(serial)
    }

    fn load(&self) -> Result<State, StateError> {
        self.whole_view()?.into_state(&self.describe())
    }

    fn read_observation(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>, StateError> {
        let path = self.observation_path(tenant, name)?;
        match read_bytes(&path, "cannot read an observation")? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StateError::Corrupt {
                        path: path.display().to_string(),
                        detail: e.to_string(),
                    })
            }
        }
    }

    fn write_observation(
        &self,
        tenant: &str,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<(), StateError> {
        let path = self.observation_path(tenant, name)?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        make_dir(&dir)?;
        let bytes = serde_json::to_vec(value).expect("an observation serializes");
        write_file(&path, &bytes, None, true)?;
        sync_dir(&dir)
    }

    fn lock(&self, info: LockInfo, timeout: Duration) -> Result<StateLock, StateError> {
        let held = self.lock_fleet_exclusive(&info, Instant::now() + timeout)?;
        let lock = StateLock::new(Box::new(held), info, LockScope::Fleet);
        if self.layout()? == Layout::V1 {
            self.upgrade(&lock)?;
        }
        Ok(lock)
    }

    fn unlock(&self, id: &str) -> Result<UnlockOutcome, StateError> {
        let mut paths = vec![self.lock_path(), self.partitions_dir().join("catalog.lock")];
        paths.extend(self.listing()?.locks);
        let mut other = None;
        for path in paths {
            let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("cannot open state lock", &path)(e)),
            };
            let Some(info) = read_lock_info(&mut file) else {
                continue;
            };
            if info.id != id {
                other.get_or_insert(info.id);
                continue;
            }
            return match file.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) => Err(StateError::LockHeld {
                    id: id.into(),
                    info: Box::new(info),
                }),
                Err(std::fs::TryLockError::Error(e)) => {
                    Err(io_error("cannot lock state", &path)(e))
                }
                Ok(()) => {
                    file.set_len(0)
                        .map_err(io_error("cannot clear state lock", &path))?;
                    Ok(UnlockOutcome::Cleared)
                }
            };
        }
        match other {
            Some(current) => Err(StateError::LockIdMismatch {
                requested: id.into(),
                current,
            }),
            None => Ok(UnlockOutcome::NotLocked),
        }
    }

    fn journal(
        &self,
        base: &State,
        lock: &StateLock,
    ) -> Result<Box<dyn Journal + Send>, StateError> {
        lock.check_fleet()?;
        if base.lineage.is_empty() {
            return Err(StateError::NoLineage { what: "journal" });
        }
        if base.recovered_changes > 0 {
            return Err(StateError::RecoveredNotWritten {
                partition: "state".into(),
            });
        }
        self.ensure_dir()?;
        if self.layout()? == Layout::V1 {
            self.upgrade(lock)?;
        }
        self.check_catalog_lineage(&base.lineage, false)?;
        let header = JournalHeader {
            journal_for_lineage: base.lineage.clone(),
            journal_format: Some(JOURNAL_FORMAT),
            bases: Some(self.raw_serials()?),
            ..Default::default()
        };
        self.start_journal(&self.journal_path(), &header, None)
    }

    /// Only the partitions whose content changed are written, each with its serial as
    /// readers last saw it plus one. With more than one, or over a journal, their new
    /// content first goes into a write intent (synced and renamed over the journal), then
    /// the partition files are written without an fsync each and synced at once, and the
    /// intent is removed: a crash before the intent is in place leaves the state as it was
    /// (with its journal); after, every partition not yet written is read from the intent.
    fn write(&self, state: &State, lock: &StateLock) -> Result<u64, StateError> {
        lock.check_fleet()?;
        if state.lineage.is_empty() {
            return Err(StateError::NoLineage { what: "write" });
        }
        self.ensure_dir()?;
        if self.layout()? == Layout::V1 {
            self.upgrade(lock)?;
        }
        let layout = self.layout()?;
        let fleet = self.fleet_journal(&layout)?;
        let journal_file = self.journal_path().exists();
        let listing = self.listing()?;
        let split = split_by_partition(&state.objects);
        let mut all: BTreeSet<Partition> = split.keys().cloned().collect();
        all.insert(Partition::Catalog);
        all.extend(listing.tenants.iter().cloned().map(Partition::Tenant));
        // What an apply's journal touched (readers saw those partitions at serial + 1).
        let (touched_parts, touched_addresses) = match &fleet {
            Some(FleetJournal::Changes { changes, .. }) => touched(changes),
            _ => Default::default(),
        };
        let mut writes: Vec<(Partition, u64, u64)> = Vec::new();
        let mut whole = 0;
        for p in &all {
            let raw = self.read_raw(p, fleet.as_ref())?;
            let raw_serial = raw.as_ref().map_or(0, |r| r.serial);
            let journal_live = listing.journals.contains(p)
                && self
                    .partition_journal(p)?
                    .is_some_and(|j| j.lineage == state.lineage && j.base == raw_serial);
            let seen = match &fleet {
                Some(FleetJournal::Write { replacements, .. }) => replacements
                    .get(p)
                    .filter(|r| r.base == raw_serial)
                    .map_or(raw_serial, |r| r.serial),
                Some(FleetJournal::Changes { bases, .. })
                    if bases.get(p).copied().unwrap_or(0) == raw_serial
                        && (touched_parts.contains(p)
                            || raw.as_ref().is_some_and(|r| {
                                r.objects
                                    .keys()
                                    .any(|k| touched_addresses.contains(k.as_str()))
                            })) =>
                {
                    raw_serial + 1
                }
                _ => raw_serial,
            }
            .max(raw_serial + u64::from(journal_live));
            let desired: &[(&String, &StateObject)] =
                split.get(p).map(Vec::as_slice).unwrap_or(&[]);
            let differs = match &raw {
                Some(r) => {
                    r.lineage != state.lineage
                        || r.objects.len() != desired.len()
                        || r.objects
                            .iter()
                            .zip(desired)
                            .any(|((ka, va), (kb, vb))| ka != *kb || va != *vb)
                }
                // A new partition (the catalog always exists once written: it holds the
                // lineage).
                None => !desired.is_empty() || *p == Partition::Catalog,
            };
            if differs || journal_live {
                writes.push((p.clone(), raw_serial, seen + 1));
                whole += seen + 1;
            } else {
                whole += raw_serial;
            }
        }
        drop(fleet);
        if writes.is_empty() {
            if journal_file {
                remove_if_exists(&self.journal_path())?;
                sync_dir(&self.dir())?;
            }
            return Ok(whole);
        }
        if writes.iter().any(|(p, _, _)| *p != Partition::Catalog) {
            self.ensure_partition_dirs()?;
        }
        let intent = writes.len() > 1 || journal_file;
        if intent {
            let mut text = serde_json::to_vec(&JournalHeader {
                journal_for_lineage: state.lineage.clone(),
                journal_format: Some(JOURNAL_FORMAT),
                intent: Some(WRITE_INTENT.into()),
                ..Default::default()
            })
            .expect("header serializes");
            text.push(b'\n');
            for (p, base, serial) in &writes {
                let objects = split.get(p).map(Vec::as_slice).unwrap_or(&[]);
                serde_json::to_writer(
                    &mut text,
                    &ReplacementRef {
                        partition: p,
                        base: *base,
                        serial: *serial,
                        objects: ObjectsRef(objects),
                    },
                )
                .expect("state serializes");
                text.push(b'\n');
            }
            write_file(&self.journal_path(), &text, None, true)?;
            sync_dir(&self.dir())?;
        }
        self.crash_point(CrashPoint::WriteAfterIntent)?;
        let mut written = Vec::new();
        for (i, (p, _, serial)) in writes.iter().enumerate() {
            let objects = split.get(p).map(Vec::as_slice).unwrap_or(&[]);
            let path = self.partition_path(p)?;
            let bytes = partition_bytes(&state.lineage, *serial, p, objects);
            write_file(
                &path,
                &bytes,
                Some(&self.partition_backup_path(p)?),
                !intent,
            )?;
            written.push(path);
            self.crash_point(CrashPoint::WriteAfterPartitions(i + 1))?;
        }
        if intent {
            flush_all(&self.dir(), &written)?;
        }
        let tenants_written = writes.iter().any(|(p, _, _)| *p != Partition::Catalog);
        if tenants_written {
            sync_dir(&self.tenants_dir())?;
        }
        sync_dir(&self.dir())?;
        // The intent (or the apply's journal) and the written partitions' journals are done.
        remove_if_exists(&self.journal_path())?;
        for (p, _, _) in &writes {
            if listing.journals.contains(p) {
                remove_if_exists(&self.partition_journal_path(p)?)?;
            }
        }
        if tenants_written {
            sync_dir(&self.tenants_dir())?;
            sync_dir(&self.partitions_dir())?;
        }
        sync_dir(&self.dir())?;
        Ok(whole)
    }

    fn read_history(&self, read: &HistoryRead) -> Result<Vec<HistoryEntry>, StateError> {
        let mut files = vec![self.history_path(&Partition::Catalog)?];
        match &read.tenants {
            _ if read.catalog_only => {}
            Some(tenants) => {
                for tenant in tenants {
                    if let Ok(p) = Partition::tenant(tenant) {
                        files.push(self.history_path(&p)?);
                    }
                }
            }
            None => {
                let dir = self.history_dir().join("tenants");
                match std::fs::read_dir(&dir) {
                    Ok(listing) => {
                        let mut names = Vec::new();
                        for entry in listing {
                            let entry =
                                entry.map_err(io_error("cannot list apply history", &dir))?;
                            let name = entry.file_name();
                            if let Some(tenant) = name
                                .to_str()
                                .and_then(|n| n.strip_suffix(".jsonl"))
                                .filter(|t| super::partition::is_tenant_name(t))
                            {
                                names.push(tenant.to_string());
                            }
                        }
                        names.sort();
                        for name in names {
                            files.push(self.history_path(&Partition::Tenant(name))?);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("cannot list apply history", &dir)(e)),
                }
            }
        }
        let mut entries = Vec::new();
        for path in files {
            let Some(bytes) = read_bytes(&path, "cannot read apply history")? else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for (i, line) in lines.iter().enumerate() {
                let complete = line.ends_with('\n');
                let line = line.trim_end();
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_str::<HistoryEntry>(line) {
                    Ok(entry) => {
                        if read.wants(&entry) {
                            entries.push(entry);
                        }
                    }
                    // A torn last line: the process was killed while writing it.
                    Err(_) if !complete && i + 1 == lines.len() => {}
                    Err(e) => {
                        return Err(StateError::Corrupt {
                            path: path.display().to_string(),
                            detail: format!("line {}: {e}", i + 1),
                        });
                    }
                }
            }
        }
        super::history::sort_by_time(&mut entries);
        Ok(entries)
    }

    fn append_history(&self, entries: &[HistoryEntry], lock: &StateLock) -> Result<(), StateError> {
        let mut files = HistoryFiles::new(self);
        for entry in entries {
            let partition = entry.partition()?;
            lock.check_covers(&partition)?;
            files.append(&partition, entry, false)?;
        }
        files.write_out()?;
        for history in files.open.values() {
            history
                .file
                .sync_data()
                .map_err(io_error("cannot write apply history", &history.path))?;
        }
        Ok(())
    }
}

/// One partition of a whole view.
fn project(mut view: View, partition: &Partition) -> State {
    view.parts.retain(|p, _| p == partition);
    view.into_partition(partition)
}

/// The partitions a change journal puts objects into, and every address it names.
fn touched(changes: &[StateChange]) -> (HashSet<Partition>, HashSet<&str>) {
    let mut parts = HashSet::new();
    let mut addresses = HashSet::new();
    for change in changes {
        match change {
            StateChange::Put { address, object } => {
                parts.insert(partition_of(address, object));
                addresses.insert(address.as_str());
            }
            StateChange::Move {
                from,
                address,
                object,
            } => {
                parts.insert(partition_of(address, object));
                addresses.insert(address.as_str());
                addresses.insert(from.as_str());
            }
            StateChange::Delete { address } => {
                addresses.insert(address.as_str());
            }
        }
    }
    (parts, addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_file_has_one_object_a_line_and_reads_back_the_same() {
        let object = |name: &str| StateObject {
            kind: "contact".into(),
            ids: [("id".to_string(), name.to_string())].into_iter().collect(),
            attributes: [
                (
                    "displayName".to_string(),
                    serde_json::json!(format!("{name}\n\"x\"")),
                ),
                (
                    "entra".to_string(),
                    serde_json::json!({"businessPhones": ["1", "2"], "empty": {}, "none": []}),
                ),
            ]
            .into_iter()
            .collect(),
            source: crate::state::Source {
                digest: "sha256:0".into(),
                commit: None,
            },
            applied_at: "2026-12-07T00:00:00Z".into(),
        };
        let (a, b) = (object("a"), object("b"));
        let (ka, kb) = ("contact.t.a".to_string(), "contact.t.b".to_string());
        let bytes = partition_bytes(
            "lin",
            3,
            &Partition::tenant("t").unwrap(),
            &[(&ka, &a), (&kb, &b)],
        );
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let object_lines: Vec<&&str> = lines.iter().filter(|l| l.starts_with("    \"")).collect();
        assert_eq!(object_lines.len(), 2, "{text}");
        assert!(object_lines[0].starts_with("    \"contact.t.a\": {\"kind\":\"contact\""));
        assert!(lines[0] == "{" && lines.last() == Some(&"}"), "{text}");
        let compact: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let pretty: serde_json::Value = serde_json::from_slice(
            &serde_json::to_vec_pretty(&PartitionFileRef {
                format_version: STATE_FORMAT_VERSION,
                lineage: "lin",
                serial: 3,
                tenant: Some("t"),
                objects: ObjectsRef(&[(&ka, &a), (&kb, &b)]),
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(compact, pretty);
    }
}
