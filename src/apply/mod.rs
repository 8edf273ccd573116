//! Carrying out a plan: in its order, each change journaled as soon as it is made.
//!
//! The world outside state is reached only through an [`Executor`]; MSP-side kinds have no
//! outside world (the state record is the change), so they use [`StateOnlyExecutor`]. An
//! interrupted apply leaves a journal from which the next run resumes: nothing done is
//! forgotten, nothing is done twice.

pub mod entra;
mod gdap;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use crate::outcome::{Cause, Failure, Outcome, TenantOutcome};
use crate::plan::{Action, Op, Plan};
use crate::resources::{KindScope, kind};
use crate::state::history::{HistoryOp, HistoryOutcome};
use crate::state::{
    HistoryRecord, Journal, Provenance, Source, State, StateChange, StateError, StateObject,
    now_rfc3339,
};

pub use crate::state::PENDING_ID;

/// What carrying out one action produced.
#[derive(Debug, Default)]
pub struct Executed {
    /// Outside-world ids to record (merged over the stored ones).
    pub ids: crate::state::Ids,
    /// Whether something outside tenantform changed (then the journal entry is fsynced).
    pub external: bool,
}

/// Makes a change happen outside tenantform's state.
pub trait Executor: Sync {
    /// Carries out `action`; `stored` is its object as recorded, `state` everything recorded
    /// so far in this apply (e.g. the object id of a guest invited a moment ago). Async: many
    /// tenants' changes wait on Graph at once on one runtime, without a thread each.
    fn execute<'a>(
        &'a self,
        action: &'a Action,
        stored: Option<&'a StateObject>,
        state: &'a State,
    ) -> BoxFuture<'a, Result<Executed, ApplyError>>;
}

/// For kinds that live only in state (tenant records, organizations, MSP roles).
pub struct StateOnlyExecutor;

impl Executor for StateOnlyExecutor {
    fn execute<'a>(
        &'a self,
        action: &'a Action,
        _stored: Option<&'a StateObject>,
        _state: &'a State,
    ) -> BoxFuture<'a, Result<Executed, ApplyError>> {
        let ids = match action.op {
            Op::Create => kind(&action.kind)
                .map(|k| (k.new_ids)())
                .unwrap_or_default(),
            _ => crate::state::Ids::new(),
        };
        Box::pin(std::future::ready(Ok(Executed {
            ids,
            external: false,
        })))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{address}: {}", failure.message)]
    Failed {
        address: String,
        failure: Box<Failure>,
    },
    /// The tenant's state changed between the plan and its lock.
    #[error("{0}")]
    Stale(String),
}

impl ApplyError {
    /// What it means for the tenant.
    pub fn failure(&self) -> Failure {
        match self {
            ApplyError::State(
                e @ (StateError::Locked { .. }
                | StateError::LockedUnknown
                | StateError::LockHeld { .. }),
            ) => Failure::new(Cause::Locked, e.to_string()),
            ApplyError::State(e) => Failure::new(Cause::StateError, e.to_string()),
            ApplyError::Stale(why) => Failure::new(Cause::Stale, why.clone()),
            ApplyError::Failed { failure, .. } => (**failure).clone(),
        }
    }
}

/// Progress, for the CLI to show.
pub enum ApplyEvent<'a> {
    Started(&'a Action),
    Done(&'a Action),
    Skipped(&'a Action),
    Failed(&'a Action, &'a ApplyError),
    /// Every change of a tenant's Entra and MSP-role work was attempted (or it stopped).
    TenantFinished {
        tenant: &'a str,
        failed: bool,
    },
}

/// Tenant and organization records: applied before and deleted after every tenant's work.
fn is_fleet_record(action: &Action) -> bool {
    kind(&action.kind).is_some_and(|k| k.scope == crate::resources::KindScope::Fleet)
}

/// How many tenants report [`ApplyEvent::TenantFinished`] (for a progress bar's total).
pub fn tenants_to_apply(plan: &Plan) -> usize {
    plan.actions
        .iter()
        .filter(|a| a.op != Op::NoOp && !is_fleet_record(a))
        .map(|a| a.tenant.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub adopted: usize,
    pub archived: usize,
    pub blocked: usize,
    /// Actions that failed, with their tenant; that tenant's later actions were not
    /// attempted. Other tenants carried on: one customer's problem does not hold up the rest.
    pub errors: Vec<(String, ApplyError)>,
    /// Addresses of the actions carried out and recorded.
    pub done: BTreeSet<String>,
    /// Stopped by a signal before every change was attempted.
    pub interrupted: bool,
}

impl ApplyReport {
    /// Every tenant of the plan and how its apply ended. A tenant is done only when every
    /// change planned for it was carried out; otherwise it failed, with the cause.
    pub fn outcomes(&self, plan: &Plan) -> Vec<TenantOutcome> {
        let mut first_error: BTreeMap<&str, Failure> = BTreeMap::new();
        for (tenant, e) in &self.errors {
            first_error
                .entry(tenant.as_str())
                .or_insert_with(|| e.failure());
        }
        let mut planned: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for a in plan.actions.iter().filter(|a| a.is_change()) {
            let entry = planned.entry(a.tenant.as_str()).or_default();
            entry.0 += 1;
            if self.done.contains(&a.address) {
                entry.1 += 1;
            }
        }
        plan.tenants
            .iter()
            .map(|t| {
                let (changes, done) = planned.get(t.tenant.as_str()).copied().unwrap_or_default();
                let outcome = if let Outcome::Failed(f) = &t.outcome {
                    Outcome::Failed(f.clone())
                } else if let Some(f) = first_error.get(t.tenant.as_str()) {
                    Outcome::Failed(Box::new(f.clone()))
                } else if done < changes {
                    let why = if self.interrupted {
                        Failure::new(
                            Cause::Interrupted,
                            format!("stopped before {} of {changes} changes", changes - done),
                        )
                    } else {
                        Failure::new(
                            Cause::DependencyFailed,
                            format!(
                                "{} of {changes} changes not applied: an earlier failure stopped them",
                                changes - done
                            ),
                        )
                    };
                    Outcome::Failed(Box::new(why))
                } else if changes > 0 {
                    Outcome::Done
                } else {
                    Outcome::NothingToDo
                };
                TenantOutcome {
                    outcome,
                    ..t.clone()
                }
            })
            .collect()
    }
}

/// The state change that records a carried-out action.
fn record_of(
    action: &mut impl ActionSlot,
    stored: Option<StateObject>,
    executed: Executed,
    source: &Source,
) -> Option<StateChange> {
    match action.op {
        Op::Create | Op::Update | Op::Adopt | Op::Archive => {
            let mut ids = stored.map(|s| s.ids).unwrap_or_default();
            ids.remove(PENDING_ID);
            for (k, v) in action.live_ids.iter().flatten().chain(executed.ids.iter()) {
                ids.insert(k.clone(), v.clone());
            }
            let object = StateObject {
                kind: action.kind.clone(),
                ids,
                attributes: action.attributes(),
                source: source.clone(),
                applied_at: now_rfc3339(),
            };
            Some(match &action.moved_from {
                Some(from) => StateChange::Move {
                    from: from.clone(),
                    address: action.address.clone(),
                    object,
                },
                None => StateChange::Put {
                    address: action.address.clone(),
                    object,
                },
            })
        }
        Op::Delete => Some(StateChange::Delete {
            address: action.address.clone(),
        }),
        Op::NoOp => None,
    }
}

/// An action as the engine holds it: borrowed from a plan the caller keeps (its attributes
/// are copied into state), or borrowed mutably from a plan the caller drops after (they are
/// moved: a first sync's contacts are not copied a third time).
pub trait ActionSlot: std::ops::Deref<Target = Action> + Send + Sync {
    /// The attributes to record (called once, after the action is carried out).
    fn attributes(&mut self) -> crate::state::Attributes;
}

impl ActionSlot for &Action {
    fn attributes(&mut self) -> crate::state::Attributes {
        self.after.clone().unwrap_or_default()
    }
}

impl ActionSlot for &mut Action {
    fn attributes(&mut self) -> crate::state::Attributes {
        self.after.take().unwrap_or_default()
    }
}

/// What one worker works on: what it sees of state, and where its changes go.
pub struct Session<'a> {
    /// The objects the worker's changes are made against: for a tenant, its tenant record
    /// and its own objects; for the fleet records, the catalog.
    pub view: State,
    pub journal: Box<dyn Journal + Send + 'a>,
    /// What the ledger needs back when the session closes (e.g. the partition's lock).
    pub held: Option<Box<dyn std::any::Any + Send>>,
    /// Addresses whose one change so far exists only in state and is in the view but not in
    /// the journal yet, in the order of their changes (see [`Session::record`]), and the same
    /// as a set.
    held_back: Vec<String>,
    held_back_set: std::collections::HashSet<String>,
    /// Whether state-only changes may be held back: not where the journal is how the ledger
    /// learns them (a whole-state ledger's sessions).
    holds_back: bool,
}

impl<'a> Session<'a> {
    pub fn new(
        view: State,
        journal: Box<dyn Journal + Send + 'a>,
        held: Option<Box<dyn std::any::Any + Send>>,
    ) -> Self {
        Session {
            view,
            journal,
            held,
            held_back: Vec::new(),
            held_back_set: Default::default(),
            holds_back: true,
        }
    }

    /// A session whose every change goes to its journal as it is recorded.
    pub fn journaled(
        view: State,
        journal: Box<dyn Journal + Send + 'a>,
        held: Option<Box<dyn std::any::Any + Send>>,
    ) -> Self {
        Session {
            holds_back: false,
            ..Session::new(view, journal, held)
        }
    }

    /// Records a change made, after its history entry (when it has one), and applies it to
    /// the view. A change made in Entra (`durable`) is journaled at once, after every change
    /// held back. A change that exists only in state is held back (the view has it, the
    /// journal does not), unless it is a move or its address already has one: the ledger's
    /// write at close records the view, so a first sync's contacts are never serialised into
    /// a journal deleted a moment later. A crash loses at most the state-only changes after
    /// the last Entra change, each on its own (no address has two held back), as if it had
    /// come first; the next plan makes them again.
    pub fn record(
        &mut self,
        change: StateChange,
        entry: Option<&HistoryRecord<'_>>,
        durable: bool,
    ) -> Result<(), StateError> {
        let address = match &change {
            StateChange::Put { address, .. } | StateChange::Delete { address } => Some(address),
            StateChange::Move { .. } => None,
        };
        match address {
            Some(address)
                if self.holds_back && !durable && !self.held_back_set.contains(address) =>
            {
                self.journal.check(&change)?;
                if let Some(entry) = entry {
                    self.journal.history(entry, false)?;
                }
                self.held_back_set.insert(address.clone());
                self.held_back.push(address.clone());
            }
            _ => {
                self.write_out_held_back()?;
                match entry {
                    Some(entry) => self.journal.record_with_history(&change, entry, durable)?,
                    None => self.journal.record(&change, durable)?,
                }
            }
        }
        self.view.apply_owned(change);
        Ok(())
    }

    /// Gives the journal every change held back, as the view has it: before a change that
    /// must follow them, and when a ledger's close needs them journaled (a whole-state
    /// ledger learns its changes from its sessions' journals; a failed write).
    pub fn write_out_held_back(&mut self) -> Result<(), StateError> {
        self.held_back_set.clear();
        // In the order the changes were made: a sync position after the contacts it covers.
        for address in std::mem::take(&mut self.held_back) {
            let change = match self.view.objects.get(&address) {
                Some(object) => StateChange::Put {
                    address,
                    object: object.clone(),
                },
                None => StateChange::Delete { address },
            };
            self.journal.record(&change, false)?;
        }
        Ok(())
    }

    /// Closes a session whose view its ledger has just written: the changes held back are
    /// recorded by that write, and the journal is told so.
    pub fn written(self) {
        self.journal.after_write();
    }
}

/// Where an apply's changes are recorded, a session at a time: the whole state under one lock,
/// or one partition per session under that partition's own lock, taken when its tenant starts
/// and released when it is recorded, so an apply holds at most `parallelism` tenant locks.
/// Blocking (locks wait, writes fsync): the engine calls it off the async executor's hot path.
pub trait Ledger: Sync {
    /// The fleet records (tenant and organization records), for the records applied first
    /// and the deletes applied last. Opened only when the plan changes fleet records.
    fn open_catalog(&self) -> Result<Session<'_>, ApplyError>;
    /// Records the fleet records' session (its view with every change applied).
    fn close_catalog(&self, session: Session<'_>) -> Result<(), ApplyError>;
    /// A tenant's record as stored, for a tenant whose records this apply does not change.
    fn tenant_record(&self, tenant: &str) -> Option<StateObject>;
    /// Starts `tenant`'s work: its view holds `record` (its tenant record, as this apply left
    /// it) and its own objects. Fails when its state is locked past the timeout or changed
    /// since the plan was made.
    fn open_tenant(
        &self,
        tenant: &str,
        record: Option<StateObject>,
    ) -> Result<Session<'_>, ApplyError>;
    /// Records `tenant`'s work (the session's view with every change applied) and ends it.
    fn close_tenant(&self, tenant: &str, session: Session<'_>) -> Result<(), ApplyError>;
}

/// Runs blocking store work (a lock that waits, a database round trip) without stalling the
/// runtime's other tasks: on a multi-threaded runtime the worker hands its tasks to another
/// thread meanwhile.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The whole state as one ledger: every session sees the shared state and records into one
/// journal; the caller writes the state once at the end. For applies that need the whole
/// fleet (renames, the first apply, recovering an interrupted whole-fleet apply).
pub struct WholeLedger<'a> {
    state: std::sync::Mutex<&'a mut State>,
    journal: std::sync::Mutex<&'a mut (dyn Journal + Send)>,
    /// Each tenant's objects, grouped once.
    views: std::sync::Mutex<BTreeMap<String, State>>,
}

impl<'a> WholeLedger<'a> {
    pub fn new(plan: &Plan, state: &'a mut State, journal: &'a mut (dyn Journal + Send)) -> Self {
        let tenants: BTreeSet<&str> = plan
            .actions
            .iter()
            .filter(|a| a.op != Op::NoOp && !is_fleet_record(a))
            .map(|a| a.tenant.as_str())
            .collect();
        let mut views: BTreeMap<String, State> = tenants
            .iter()
            .map(|t| (t.to_string(), state.clone_header()))
            .collect();
        for (address, object) in state.objects.iter() {
            let Some(k) = kind(&object.kind).filter(|k| k.scope != KindScope::Fleet) else {
                continue;
            };
            if let Some(view) = views.get_mut((k.tenant_of)(address, object).as_str()) {
                view.objects.insert(address.clone(), object.clone());
            }
        }
        WholeLedger {
            state: std::sync::Mutex::new(state),
            journal: std::sync::Mutex::new(journal),
            views: std::sync::Mutex::new(views),
        }
    }

    fn forwarding(&self) -> Box<dyn Journal + Send + '_> {
        Box::new(SharedJournal {
            state: &self.state,
            journal: &self.journal,
        })
    }
}

/// A session's journal in a [`WholeLedger`]: each change goes to the one journal and into the
/// shared state (what the caller writes at the end).
struct SharedJournal<'l, 'a> {
    state: &'l std::sync::Mutex<&'a mut State>,
    journal: &'l std::sync::Mutex<&'a mut (dyn Journal + Send)>,
}

impl Journal for SharedJournal<'_, '_> {
    fn flush(&mut self) -> Result<(), StateError> {
        self.journal.lock().expect("journal").flush()
    }

    fn record(&mut self, change: &StateChange, durable: bool) -> Result<(), StateError> {
        self.journal
            .lock()
            .expect("journal")
            .record(change, durable)?;
        self.state.lock().expect("state").apply_change(change);
        Ok(())
    }

    fn history(&mut self, entry: &HistoryRecord<'_>, durable: bool) -> Result<(), StateError> {
        self.journal
            .lock()
            .expect("journal")
            .history(entry, durable)
    }

    fn record_with_history(
        &mut self,
        change: &StateChange,
        entry: &HistoryRecord<'_>,
        durable: bool,
    ) -> Result<(), StateError> {
        self.journal
            .lock()
            .expect("journal")
            .record_with_history(change, entry, durable)?;
        self.state.lock().expect("state").apply_change(change);
        Ok(())
    }
}

impl Ledger for WholeLedger<'_> {
    fn open_catalog(&self) -> Result<Session<'_>, ApplyError> {
        let view = {
            let state = self.state.lock().expect("state");
            let mut view = state.clone_header();
            view.objects = state
                .objects
                .iter()
                .filter(|(_, o)| kind(&o.kind).is_some_and(|k| k.scope == KindScope::Fleet))
                .map(|(a, o)| (a.clone(), o.clone()))
                .collect();
            view
        };
        Ok(Session::journaled(view, self.forwarding(), None))
    }

    fn close_catalog(&self, mut session: Session<'_>) -> Result<(), ApplyError> {
        // The shared state learns a session's changes from its journal.
        Ok(session.write_out_held_back()?)
    }

    fn tenant_record(&self, tenant: &str) -> Option<StateObject> {
        let state = self.state.lock().expect("state");
        state
            .objects
            .get(&crate::resources::address("tenant", tenant))
            .cloned()
    }

    fn open_tenant(
        &self,
        tenant: &str,
        record: Option<StateObject>,
    ) -> Result<Session<'_>, ApplyError> {
        let mut view = self
            .views
            .lock()
            .expect("views")
            .remove(tenant)
            .unwrap_or_default();
        if let Some(record) = record {
            view.objects
                .insert(crate::resources::address("tenant", tenant), record);
        }
        Ok(Session::journaled(view, self.forwarding(), None))
    }

    fn close_tenant(&self, _tenant: &str, mut session: Session<'_>) -> Result<(), ApplyError> {
        Ok(session.write_out_held_back()?)
    }
}

/// What the tenants' workers share.
struct Shared<'a> {
    report: std::sync::Mutex<ApplyReport>,
    on_event: &'a (dyn Fn(ApplyEvent) + Sync),
    /// Set by Ctrl-C / SIGTERM: no new change starts.
    stop: &'a AtomicBool,
    provenance: &'a Provenance,
}

/// The history entry of `action` ending in `outcome`.
fn history_entry<'a>(
    provenance: &Provenance,
    action: &'a Action,
    outcome: HistoryOutcome,
) -> HistoryRecord<'a> {
    let op = match action.op {
        Op::Create => HistoryOp::Create,
        Op::Delete => HistoryOp::Delete,
        Op::Adopt => HistoryOp::Adopt,
        Op::Archive => HistoryOp::Archive,
        Op::Update | Op::NoOp => HistoryOp::Update,
    };
    let changes: std::borrow::Cow<'a, [_]> = if action.changes.is_empty() && action.op == Op::Delete
    {
        // What the delete removed.
        action
            .before
            .iter()
            .flat_map(|b| b.iter())
            .map(|(path, value)| crate::plan::AttributeChange {
                path: path.clone(),
                before: Some(value.clone()),
                after: None,
            })
            .collect::<Vec<_>>()
            .into()
    } else {
        action.changes.as_slice().into()
    };
    provenance.entry(
        &action.tenant,
        &action.kind,
        &action.address,
        action.moved_from.as_deref(),
        op,
        changes,
        outcome,
    )
}

impl Shared<'_> {
    /// Carries out one action against the session's view, then records it in the session's
    /// journal and view.
    async fn run(
        &self,
        slot: &mut impl ActionSlot,
        session: &mut Session<'_>,
        executor: &(dyn Executor + Sync),
        source: &Source,
    ) -> Result<(), ApplyError> {
        let action: &Action = slot;
        if action.blocked.is_some() {
            self.report.lock().expect("report").blocked += 1;
            (self.on_event)(ApplyEvent::Skipped(action));
            return Ok(());
        }
        (self.on_event)(ApplyEvent::Started(action));
        let stored_at = action.moved_from.as_deref().unwrap_or(&action.address);
        let stored = session.view.objects.get(stored_at).cloned();
        // Write-ahead: before creating something in Entra, journal the intent. If the process
        // dies before the result is recorded, the next plan knows the object it finds in Entra
        // is ours (and records it) rather than someone else's.
        let in_entra = crate::resources::kind(&action.kind).is_some_and(|k| k.live.is_some());
        let intent =
            (in_entra && action.op == Op::Create && stored.is_none()).then(|| StateChange::Put {
                address: action.address.clone(),
                object: StateObject {
                    kind: action.kind.clone(),
                    ids: [(PENDING_ID.to_string(), "create".to_string())]
                        .into_iter()
                        .collect(),
                    attributes: action.after.clone().unwrap_or_default(),
                    source: source.clone(),
                    applied_at: now_rfc3339(),
                },
            });
        // Before a change in Entra, what the session held back goes to the journal, so
        // the durable line after the call is one line, not a tenant's worth of contacts.
        if in_entra {
            session.write_out_held_back()?;
        }
        if let Some(intent) = &intent {
            session.journal.record(intent, true)?;
        }
        let executed = match executor
            .execute(action, stored.as_ref(), &session.view)
            .await
        {
            Ok(executed) => executed,
            Err(e) => {
                // The tenant stops here; what it records keeps the intent.
                if let Some(intent) = &intent {
                    session.view.apply_change(intent);
                }
                let failure = e.failure();
                let failed = HistoryOutcome::Failed {
                    cause: failure.cause,
                    message: failure.message,
                };
                // Best effort: the failure is reported (and the run fails) whether or not
                // history could take it.
                let _ = session
                    .journal
                    .history(&history_entry(self.provenance, action, failed), true);
                return Err(e);
            }
        };
        let done_address = action.address.clone();
        let external = executed.external;
        let Some(change) = record_of(slot, stored, executed, source) else {
            return Ok(());
        };
        let action: &Action = slot;
        // With its history entry, written first (or at once): the change is made, so its
        // entry must exist even if the process dies before the journal line.
        session.record(
            change,
            Some(&history_entry(
                self.provenance,
                action,
                HistoryOutcome::Applied,
            )),
            external,
        )?;
        let mut report = self.report.lock().expect("report");
        report.done.insert(done_address);
        match action.op {
            Op::Create => report.created += 1,
            Op::Update => report.updated += 1,
            Op::Delete => report.deleted += 1,
            Op::Adopt => report.adopted += 1,
            Op::Archive => report.archived += 1,
            Op::NoOp => {}
        }
        drop(report);
        (self.on_event)(ApplyEvent::Done(action));
        Ok(())
    }

    fn failed(&self, action: &Action, error: ApplyError) {
        (self.on_event)(ApplyEvent::Failed(action, &error));
        self.failed_tenant(&action.tenant, error);
    }

    fn failed_tenant(&self, tenant: &str, error: ApplyError) {
        self.report
            .lock()
            .expect("report")
            .errors
            .push((tenant.to_string(), error));
    }

    /// Whether to start another change (false once a stop was asked for).
    fn may_start(&self) -> bool {
        if self.stop.load(Ordering::SeqCst) {
            self.report.lock().expect("report").interrupted = true;
            false
        } else {
            true
        }
    }

    fn into_report(self) -> ApplyReport {
        self.report.into_inner().expect("report")
    }
}

/// Records `tenant`'s end-user sync position in its session: bookkeeping (no history entry;
/// a crash before it is written means the next read starts from the position before, and
/// replays what it already applied, which changes nothing).
pub fn record_position(
    session: &mut Session<'_>,
    tenant: &str,
    position: &crate::end_users::SyncPosition,
    source: &Source,
) -> Result<(), ApplyError> {
    session.record(position_change(tenant, position, source), None, false)?;
    Ok(())
}

/// The state change that stores `tenant`'s position (`user_sync.<tenant>`).
pub fn position_change(
    tenant: &str,
    position: &crate::end_users::SyncPosition,
    source: &Source,
) -> StateChange {
    StateChange::Put {
        address: crate::resources::address(crate::plan::contacts::USER_SYNC, tenant),
        object: StateObject {
            kind: crate::plan::contacts::USER_SYNC.into(),
            ids: Default::default(),
            attributes: position.to_attributes(),
            source: source.clone(),
            applied_at: now_rfc3339(),
        },
    }
}

/// How an apply runs: how many tenants at once, who hears about progress, and the flag that
/// stops it between changes (Ctrl-C, SIGTERM).
#[derive(Clone, Copy)]
pub struct Control<'a> {
    pub parallelism: usize,
    pub on_event: &'a (dyn Fn(ApplyEvent) + Sync),
    pub stop: &'a AtomicBool,
    /// Who applies, from which commit and plan: what every history entry says.
    pub provenance: &'a Provenance,
}

/// Applies `plan`, recording every change through `ledger` as it is made.
///
/// Tenant and organization records go first (they are only state), then every tenant's
/// guests, roles and MSP roles in dependency order, `parallelism` tenants at a time, each in
/// its own ledger session (opened when the tenant starts, recorded when it ends), then
/// organization and tenant deletes. A failure stops its own tenant only.
pub async fn apply(
    plan: &Plan,
    ledger: &dyn Ledger,
    executor: &(dyn Executor + Sync),
    source: &Source,
    control: &Control<'_>,
) -> ApplyReport {
    let planning_failed = plan.failed_tenants().map(|t| t.tenant.clone()).collect();
    let actions = plan.actions.iter().collect();
    apply_actions(
        actions,
        &plan.positions,
        planning_failed,
        ledger,
        executor,
        source,
        control,
    )
    .await
}

/// [`apply`] for a caller that drops the plan once applied (the end-user sync): each record's
/// attributes are moved out of its action instead of copied.
pub async fn apply_consuming(
    plan: &mut Plan,
    ledger: &dyn Ledger,
    executor: &(dyn Executor + Sync),
    source: &Source,
    control: &Control<'_>,
) -> ApplyReport {
    let planning_failed = plan.failed_tenants().map(|t| t.tenant.clone()).collect();
    let actions = plan.actions.iter_mut().collect();
    apply_actions(
        actions,
        &plan.positions,
        planning_failed,
        ledger,
        executor,
        source,
        control,
    )
    .await
}

async fn apply_actions<A: ActionSlot>(
    actions: Vec<A>,
    positions: &[crate::plan::SyncPositionUpdate],
    planning_failed: BTreeSet<String>,
    ledger: &dyn Ledger,
    executor: &(dyn Executor + Sync),
    source: &Source,
    control: &Control<'_>,
) -> ApplyReport {
    let Control {
        parallelism,
        on_event,
        stop,
        provenance,
    } = *control;
    let mut first: Vec<A> = Vec::new();
    let mut last: Vec<A> = Vec::new();
    let mut per_tenant: BTreeMap<String, Vec<A>> = BTreeMap::new();
    for a in actions.into_iter().filter(|a| a.op != Op::NoOp) {
        if !is_fleet_record(&a) {
            match per_tenant.get_mut(a.tenant.as_str()) {
                Some(list) => list.push(a),
                None => {
                    per_tenant.insert(a.tenant.clone(), vec![a]);
                }
            }
        } else if a.op == Op::Delete {
            last.push(a);
        } else {
            first.push(a);
        }
    }
    let positions: BTreeMap<&str, &crate::end_users::SyncPosition> = positions
        .iter()
        .map(|p| (p.tenant.as_str(), &p.position))
        .collect();
    let positions = &positions;
    let shared = Shared {
        report: std::sync::Mutex::new(ApplyReport::default()),
        on_event,
        stop,
        provenance,
    };
    // A failure of the fleet records' session is their first tenant's.
    let records_tenant = first
        .iter()
        .chain(&last)
        .next()
        .map_or(String::new(), |a| a.tenant.clone());
    // Records first, in order; a failure here stops everything (later work depends on it).
    let mut catalog = None;
    if !first.is_empty() || !last.is_empty() {
        match blocking(|| ledger.open_catalog()) {
            Ok(session) => catalog = Some(session),
            Err(e) => {
                shared.failed_tenant(&records_tenant, e);
                return shared.into_report();
            }
        }
    }
    let close_catalog = |shared: &Shared, catalog: Option<Session<'_>>| {
        if let Some(session) = catalog
            && let Err(e) = blocking(|| ledger.close_catalog(session))
        {
            shared.failed_tenant(&records_tenant, e);
        }
    };
    for action in first.iter_mut() {
        if !shared.may_start() {
            close_catalog(&shared, catalog);
            return shared.into_report();
        }
        let session = catalog.as_mut().expect("opened for fleet records");
        if let Err(e) = shared.run(action, session, executor, source).await {
            shared.failed(action, e);
            close_catalog(&shared, catalog);
            return shared.into_report();
        }
    }
    // The records go to the catalog's journal now (a kill while tenants are applied finds
    // them, as it finds the tenants' own changes), not only when the catalog is written last.
    if let Some(session) = catalog.as_mut()
        && let Err(e) = session
            .write_out_held_back()
            .and_then(|_| session.journal.flush())
    {
        shared.failed_tenant(&records_tenant, e.into());
        close_catalog(&shared, catalog);
        return shared.into_report();
    }
    // Each tenant's worker sees its tenant record as the records above left it.
    let work: Vec<(String, Vec<A>, Option<StateObject>)> = per_tenant
        .into_iter()
        .map(|(tenant, actions)| {
            let address = crate::resources::address("tenant", &tenant);
            let record = match &catalog {
                Some(session) => session.view.objects.get(&address).cloned(),
                None => ledger.tenant_record(&tenant),
            };
            (tenant, actions, record)
        })
        .collect();
    let shared = &shared;
    futures_util::stream::iter(work)
        .for_each_concurrent(
            parallelism.max(1),
            |(tenant, mut actions, record)| async move {
                let tenant = tenant.as_str();
                let failed = if !shared.may_start() {
                    true
                } else {
                    match blocking(|| ledger.open_tenant(tenant, record)) {
                        Err(e) => {
                            shared.failed_tenant(tenant, e);
                            true
                        }
                        Ok(mut session) => {
                            let mut failed = false;
                            for action in actions.iter_mut() {
                                if !shared.may_start() {
                                    failed = true;
                                    break;
                                }
                                if let Err(e) =
                                    shared.run(action, &mut session, executor, source).await
                                {
                                    shared.failed(action, e);
                                    failed = true;
                                    break;
                                }
                            }
                            // Where the tenant's end-user sync stands, once all of it is applied
                            // (never past a change that was not carried out).
                            if !failed
                                && let Some(position) = positions.get(tenant)
                                && let Err(e) =
                                    record_position(&mut session, tenant, position, source)
                            {
                                shared.failed_tenant(tenant, e);
                                failed = true;
                            }
                            // Whatever happened, what was done is recorded.
                            if let Err(e) = blocking(|| ledger.close_tenant(tenant, session)) {
                                shared.failed_tenant(tenant, e);
                                failed = true;
                            }
                            failed
                        }
                    }
                };
                (shared.on_event)(ApplyEvent::TenantFinished { tenant, failed });
            },
        )
        .await;
    let failed_tenants: BTreeSet<String> = shared
        .report
        .lock()
        .expect("report")
        .errors
        .iter()
        .map(|(tenant, _)| tenant.clone())
        .chain(planning_failed)
        .collect();
    // Deletes of organizations and tenants last; never for a tenant whose work failed.
    for mut action in last {
        if failed_tenants.contains(&action.tenant) {
            continue;
        }
        if !shared.may_start() {
            break;
        }
        let session = catalog.as_mut().expect("opened for fleet records");
        if let Err(e) = shared.run(&mut action, session, executor, source).await {
            shared.failed(&action, e);
            break;
        }
    }
    close_catalog(shared, catalog);
    std::mem::take(&mut *shared.report.lock().expect("report"))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A journal that keeps what it is given, in order (the ordering is what is tested; the
    /// file and PostgreSQL journals are tested against real files and a real database).
    struct Kept(Arc<Mutex<Vec<String>>>);

    impl Journal for Kept {
        fn record(&mut self, change: &StateChange, durable: bool) -> Result<(), StateError> {
            let line = match change {
                StateChange::Put { address, object } => {
                    format!("put {address}={}", object.attributes.get("v").unwrap())
                }
                StateChange::Move { from, address, .. } => format!("move {from}->{address}"),
                StateChange::Delete { address } => format!("delete {address}"),
            };
            let line = if durable {
                format!("{line} (durable)")
            } else {
                line
            };
            self.0.lock().unwrap().push(line);
            Ok(())
        }

        fn history(&mut self, _: &HistoryRecord<'_>, _: bool) -> Result<(), StateError> {
            Ok(())
        }
    }

    fn put(address: &str, v: u32) -> StateChange {
        StateChange::Put {
            address: address.into(),
            object: StateObject {
                kind: "contact".into(),
                ids: Default::default(),
                attributes: [("v".to_string(), serde_json::json!(v))]
                    .into_iter()
                    .collect(),
                source: Source {
                    digest: "sha256:0".into(),
                    commit: None,
                },
                applied_at: String::new(),
            },
        }
    }

    #[test]
    fn held_back_changes_reach_the_journal_in_order_and_before_what_must_follow_them() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut session = Session::new(State::new(), Box::new(Kept(log.clone())), None);
        let taken = || std::mem::take(&mut *log.lock().unwrap());
        // State-only changes are held back: in the view, not in the journal.
        for (address, v) in [("contact.t.c", 1), ("contact.t.a", 1), ("user_sync.t", 1)] {
            session.record(put(address, v), None, false).unwrap();
        }
        assert!(taken().is_empty());
        assert_eq!(session.view.objects.len(), 3);
        // An Entra change follows every held-back change, in the order they were made (the
        // sync position after the contacts it covers).
        session.record(put("guest.t.g", 1), None, true).unwrap();
        assert_eq!(
            taken(),
            [
                "put contact.t.c=1",
                "put contact.t.a=1",
                "put user_sync.t=1",
                "put guest.t.g=1 (durable)"
            ]
        );
        // A second change of an address held back writes out what was held back (as it was:
        // the journal gets the changes as they were made), then itself.
        session.record(put("contact.t.b", 1), None, false).unwrap();
        session
            .record(
                StateChange::Delete {
                    address: "contact.t.d".into(),
                },
                None,
                false,
            )
            .unwrap();
        session.record(put("contact.t.b", 2), None, false).unwrap();
        assert_eq!(
            taken(),
            [
                "put contact.t.b=1",
                "delete contact.t.d",
                "put contact.t.b=2"
            ]
        );
        // A move is never held back.
        session.record(put("contact.t.e", 1), None, false).unwrap();
        let StateChange::Put { object, .. } = put("contact.t.f", 3) else {
            unreachable!()
        };
        session
            .record(
                StateChange::Move {
                    from: "contact.t.e".into(),
                    address: "contact.t.f".into(),
                    object,
                },
                None,
                false,
            )
            .unwrap();
        assert_eq!(
            taken(),
            ["put contact.t.e=1", "move contact.t.e->contact.t.f"]
        );
        // A session that journals (a whole-state ledger's) holds nothing back.
        let mut journaled = Session::journaled(State::new(), Box::new(Kept(log.clone())), None);
        journaled
            .record(put("contact.t.a", 1), None, false)
            .unwrap();
        assert_eq!(taken(), ["put contact.t.a=1"]);
    }
}
