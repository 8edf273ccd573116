//! `apply` and `import`: hold the state lock, plan (or take a saved plan that is still
//! current), let the caller approve, carry the plan out through the right executor, and
//! record every change.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::apply::entra::EntraExecutor;
use crate::apply::{ApplyEvent, ApplyReport, Control, StateOnlyExecutor};
use crate::ops::plan::{PlanRequest, plan_changes};
use crate::ops::{Need, Note, OpsError, Phase, Reporter, Selection, Workspace};
use crate::outcome::TenantOutcome;
use crate::plan::{
    Plan, PlanOptions, SavedPlan, manifests_digest, partition_staleness, partitions_written,
};
use crate::state::{
    Journal, LockInfo, Partition, Serials, Source, StateChange, StateError, StateLock, StateStore,
    partition_of, split_by_partition,
};
use std::collections::{BTreeMap, BTreeSet};

/// Which plan to carry out.
pub enum PlanSource<'a> {
    /// Plan now, under the lock.
    Compute {
        options: PlanOptions,
        selection: &'a Selection,
        changed_since: Option<&'a str>,
    },
    /// Exactly a plan saved by `plan --out` (refused when stale).
    Saved(Box<SavedPlan>),
}

/// What the caller decided after seeing the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    Apply,
    /// Declined; nothing is changed.
    Cancelled,
    /// Could not be asked (no terminal and no `--auto-approve`); nothing is changed.
    Refused(String),
}

pub struct ApplyRun {
    pub plan: Plan,
    pub approval: Approval,
    /// What was carried out (`None` when nothing was to do or it was not approved).
    pub report: Option<ApplyReport>,
    /// Every tenant of the plan and how its apply ended.
    pub outcomes: Vec<TenantOutcome>,
    /// The state written, for the summary line.
    pub store: String,
    pub serial: u64,
}

/// A plan made from a work tree applies only on the same checkout; one made from git
/// (`--ref`) reads exactly its commit again.
pub fn check_saved_commit(saved: &SavedPlan) -> Result<(), OpsError> {
    if let Some(planned) = saved.commit.as_ref().filter(|_| !saved.from_git) {
        let manifests = std::path::Path::new(&saved.manifests);
        let checked_out = crate::git::head_commit(manifests);
        if checked_out.as_deref() != Some(planned.as_str()) {
            return Err(OpsError::StalePlan(format!(
                "the plan was made at commit {planned}, but {} is at {}; plan again on this commit",
                manifests.display(),
                checked_out.as_deref().unwrap_or("no commit")
            )));
        }
    }
    Ok(())
}

/// The locks an apply holds: the whole state, or only the partitions its plan writes (so
/// applies to different tenants run at once).
enum Locks {
    Fleet(StateLock),
    Partitions(Vec<(Partition, StateLock)>),
}

impl Locks {
    /// Takes them in a fixed order (catalog first, then tenants by name), so two applies never
    /// wait on each other in a cycle.
    fn take(
        store: &dyn StateStore,
        partitions: Option<&BTreeSet<Partition>>,
        info: &LockInfo,
        timeout: Duration,
    ) -> Result<Locks, OpsError> {
        match partitions {
            None => Ok(Locks::Fleet(store.lock(info.clone(), timeout)?)),
            Some(partitions) => {
                let started = std::time::Instant::now();
                let mut held = Vec::new();
                for p in partitions {
                    let left = timeout.saturating_sub(started.elapsed());
                    held.push((p.clone(), store.lock_partition(p, info.clone(), left)?));
                }
                Ok(Locks::Partitions(held))
            }
        }
    }

    fn covers(&self, partitions: Option<&BTreeSet<Partition>>) -> bool {
        match (self, partitions) {
            (Locks::Fleet(_), _) => true,
            (Locks::Partitions(_), None) => false,
            (Locks::Partitions(held), Some(wanted)) => {
                wanted.iter().all(|w| held.iter().any(|(p, _)| p == w))
            }
        }
    }

    /// Whether what was planned against changed before the locks were taken.
    fn changed_since(&self, before: &Serials, now: &Serials) -> bool {
        if before.lineage != now.lineage {
            return true;
        }
        match self {
            Locks::Fleet(_) => before.partitions != now.partitions,
            Locks::Partitions(held) => held.iter().any(|(p, _)| before.of(p) != now.of(p)),
        }
    }
}

/// One journal per locked partition; each change goes to the partition its object belongs to.
struct PartitionJournals {
    journals: BTreeMap<Partition, Box<dyn Journal + Send>>,
    /// Where the objects to delete live (a delete names only the address).
    deletes: BTreeMap<String, Partition>,
}

impl Journal for PartitionJournals {
    fn record(&mut self, change: &StateChange, durable: bool) -> Result<(), StateError> {
        let partition = match change {
            StateChange::Put { address, object }
            | StateChange::Move {
                address, object, ..
            } => partition_of(address, object),
            StateChange::Delete { address } => {
                self.deletes.get(address).cloned().ok_or_else(|| {
                    StateError::Invalid(format!("{address}: deleted, but not in state"))
                })?
            }
        };
        match self.journals.get_mut(&partition) {
            Some(journal) => journal.record(change, durable),
            None => Err(StateError::Invalid(format!(
                "{partition} is not locked by this apply"
            ))),
        }
    }
}

/// Applies `source` (`command` is `apply` or `import`, for messages). `approve` sees the plan
/// when it has changes; `stop` (Ctrl-C, SIGTERM, a closed stdout) stops before the next
/// change. Whatever happens after approval, what was done is recorded.
///
/// The plan is made against state as it is, then the partitions it writes are locked (the
/// whole state when it renames, recovers an interrupted apply, or is the first); if any of
/// them changed meanwhile, state is read again under the locks and the plan made again.
pub fn apply(
    ws: &mut Workspace,
    source: PlanSource<'_>,
    command: &str,
    approve: &mut dyn FnMut(&Plan) -> Approval,
    stop: &AtomicBool,
    reporter: &dyn Reporter,
) -> Result<ApplyRun, OpsError> {
    let digest = manifests_digest(&ws.manifests.model);
    let info = LockInfo::for_command(ws.settings.command_line.clone());
    let offline = match &source {
        PlanSource::Compute { options, .. } => options.offline,
        PlanSource::Saved(saved) => saved.plan.options.offline,
    };
    let need = Need::Plan { command, offline };
    let stale = |why: String| {
        OpsError::StalePlan(format!(
            "{why}; make a new plan with `tenantform plan --out FILE`"
        ))
    };
    // What to plan with again if state changes before the locks are taken.
    // `loaded`: the partitions `state` holds when it is not the whole state.
    let (serials, mut state, mut plan, replan, loaded) = match source {
        PlanSource::Saved(saved) => {
            let serials = ws.store.serials()?;
            let state = ws.store.load()?;
            if let Some(why) = partition_staleness(&saved.plan, &digest, &state, &serials) {
                return Err(stale(why));
            }
            if ws.connection.is_none() {
                ws.connection =
                    crate::ops::workspace::connect(&ws.settings, &ws.manifests.model, need)?;
            }
            (serials, state, saved.plan, None, None)
        }
        PlanSource::Compute {
            options,
            selection,
            changed_since,
        } => {
            let replan = Replan {
                options,
                selection,
                changed_since,
            };
            // Planned as `plan` streams it, keeping only the changes (apply carries out
            // nothing else), so a run with nothing to do never holds the fleet.
            let (plan, made) = plan_changes(ws, replan.request(need), reporter)?;
            // Only a plan with something to do (or an interrupted apply to record) needs
            // state loaded: the catalog and the partitions it writes, or (a rename, a rollout,
            // recovering) all of it.
            let mut loaded = None;
            let state = if plan.has_changes() && made.recovered == 0 {
                loaded = written_by(&plan, &made.serials.lineage);
                load_for(ws.store.as_ref(), loaded.as_ref(), made.serials.whole())?
            } else if made.recovered > 0 {
                ws.store.load()?
            } else {
                crate::state::State {
                    lineage: made.serials.lineage.clone(),
                    serial: made.serials.whole(),
                    ..crate::state::State::new()
                }
            };
            (made.serials, state, plan, Some(replan), loaded)
        }
    };
    let unapplied = |ws: &Workspace, plan: Plan, approval: Approval, serial: u64| ApplyRun {
        outcomes: plan.tenants.clone(),
        plan,
        approval,
        report: None,
        store: ws.store.describe(),
        serial,
    };
    if !plan.has_changes() && state.recovered_changes == 0 {
        return Ok(unapplied(ws, plan, Approval::Apply, state.serial));
    }

    // Nothing to change but an interrupted apply to record: that needs the whole state. So
    // does a rollout to many tenants: each partition's lock and journal hold files open.
    let written = if plan.has_changes() {
        written_by(&plan, &state.lineage)
    } else {
        None
    };
    // State holds at least what will be locked: a partial load made for other partitions
    // (the lineage changed meanwhile) is read again, as it will be locked.
    if loaded.is_some() && loaded != written {
        state = load_for(
            ws.store.as_ref(),
            written.as_ref(),
            ws.store.serials()?.whole(),
        )?;
    }
    let locks = Locks::take(
        ws.store.as_ref(),
        written.as_ref(),
        &info,
        ws.settings.lock_timeout,
    )?;
    if let Locks::Partitions(held) = &locks {
        // A journal left in a partition now locked is an interrupted apply's: record it first.
        // (Journals of other partitions may belong to applies running now: theirs to record.)
        for (p, lock) in held {
            let partition = ws.store.load_partition(p)?;
            if partition.recovered_changes > 0 {
                reporter.note(&Note::RecordingRecovered {
                    changes: partition.recovered_changes,
                    store: format!("{} ({p})", ws.store.describe()),
                });
                ws.store.write_partition(p, &partition, lock)?;
            }
        }
    }
    let mut serials_now = ws.store.serials()?;
    let recovering = matches!(locks, Locks::Fleet(_)) && state.recovered_changes > 0;
    if locks.changed_since(&serials, &serials_now) || recovering {
        // Someone wrote what this plan writes (or an apply was interrupted): read it again,
        // now that nobody else can.
        state = load_for(ws.store.as_ref(), written.as_ref(), serials_now.whole())?;
        match &locks {
            Locks::Fleet(lock) if state.recovered_changes > 0 => {
                reporter.note(&Note::RecordingRecovered {
                    changes: state.recovered_changes,
                    store: ws.store.describe(),
                });
                state.ensure_lineage();
                state.serial = ws.store.write(&state, lock)?;
                state.recovered_changes = 0;
                serials_now = ws.store.serials()?;
            }
            _ => {}
        }
        plan = match &replan {
            // Entra is read again too: what was read before the locks may be stale as well.
            Some(replan) => plan_changes(ws, replan.request(need), reporter)?.0,
            None => match partition_staleness(&plan, &digest, &state, &serials_now) {
                Some(why) => return Err(stale(why)),
                None => plan,
            },
        };
        if plan.has_changes()
            && !locks.covers(partitions_written(&plan.actions, &state.lineage).as_ref())
        {
            return Err(stale(
                "state changed while this apply was planning and it now writes more than it locked: run it again".into(),
            ));
        }
    }
    // Journals of partitions this apply does not hold are other applies' business.
    state.recovered_changes = 0;
    if !plan.has_changes() {
        return Ok(unapplied(ws, plan, Approval::Apply, state.serial));
    }
    match approve(&plan) {
        Approval::Apply => {}
        other => return Ok(unapplied(ws, plan, other, state.serial)),
    }

    let source = Source {
        digest,
        commit: ws.manifests.commit.clone(),
    };
    state.ensure_lineage();
    let mut journal: Box<dyn Journal + Send> = match &locks {
        Locks::Fleet(lock) => ws.store.journal(&state, lock)?,
        Locks::Partitions(held) => {
            let mut journals = BTreeMap::new();
            for (p, lock) in held {
                let mut base = state.clone_header();
                base.serial = serials_now.of(p);
                base.recovered_changes = 0;
                journals.insert(p.clone(), ws.store.journal_partition(p, &base, lock)?);
            }
            let deletes = plan
                .actions
                .iter()
                .filter(|a| a.is_change() && a.op == crate::plan::Op::Delete)
                .filter_map(|a| {
                    let object = state.objects.get(&a.address)?;
                    Some((a.address.clone(), partition_of(&a.address, object)))
                })
                .collect();
            Box::new(PartitionJournals { journals, deletes })
        }
    };
    reporter.phase_started(Phase::Applying, crate::apply::tenants_to_apply(&plan));
    let step_delay = ws.settings.apply_step_delay;
    let on_event = |event: ApplyEvent| {
        reporter.apply_event(&event);
        match event {
            ApplyEvent::Done(_) => {
                if let Some(delay) = step_delay {
                    std::thread::sleep(delay);
                }
            }
            ApplyEvent::TenantFinished { failed, .. } => {
                reporter.tenant_done(Phase::Applying, failed)
            }
            _ => {}
        }
    };
    let control = Control {
        parallelism: ws.settings.graph.parallelism,
        on_event: &on_event,
        stop,
    };
    let report = match &ws.connection {
        Some(c) => {
            let executor = EntraExecutor {
                client: c.client.as_ref(),
                replication_wait: Duration::from_secs(120),
                stop,
            };
            c.runtime.block_on(crate::apply::apply(
                &plan,
                &mut state,
                journal.as_mut(),
                &executor,
                &source,
                &control,
            ))
        }
        // MSP-side records only: nothing waits on the network.
        None => tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(OpsError::io("tokio runtime"))?
            .block_on(crate::apply::apply(
                &plan,
                &mut state,
                journal.as_mut(),
                &StateOnlyExecutor,
                &source,
                &control,
            )),
    };
    reporter.phase_finished(Phase::Applying);
    drop(journal);
    // Whatever happened, record what was done (the store gives the new serial).
    state.serial = match &locks {
        Locks::Fleet(lock) => ws.store.write(&state, lock)?,
        Locks::Partitions(held) => {
            let mut parts = split_by_partition(&state.objects);
            for (p, lock) in held {
                let mut partition = state.clone_header();
                partition.serial = serials_now.of(p);
                partition.recovered_changes = 0;
                partition.objects = parts
                    .remove(p)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(a, o)| (a.clone(), o.clone()))
                    .collect();
                ws.store.write_partition(p, &partition, lock)?;
            }
            ws.store.serials()?.whole()
        }
    };
    drop(locks);
    let outcomes = report.outcomes(&plan);
    Ok(ApplyRun {
        outcomes,
        plan,
        approval: Approval::Apply,
        report: Some(report),
        store: ws.store.describe(),
        serial: state.serial,
    })
}

/// The partitions `plan` writes when it can lock them one by one (see [`MAX_PARTITION_LOCKS`]);
/// `None` when it needs the whole state (a rename, the first apply, a rollout).
fn written_by(plan: &Plan, lineage: &str) -> Option<BTreeSet<Partition>> {
    partitions_written(&plan.actions, lineage).filter(|w| w.len() <= MAX_PARTITION_LOCKS)
}

/// The state an apply works on: with `written`, the catalog (every tenant's worker reads its
/// tenant record there) and those partitions, so applying two customers of a 10,000-tenant
/// fleet reads three files, not the fleet; without, the whole state. `serial` is the whole
/// state's (from the serials the caller read), so a partial load reads no other partition.
fn load_for(
    store: &dyn StateStore,
    written: Option<&BTreeSet<Partition>>,
    serial: u64,
) -> Result<crate::state::State, crate::state::StateError> {
    // A v1 state (one file) is read whole for every partition: read it once.
    let Some(written) = written.filter(|_| !store.partition_reads_whole_fleet().unwrap_or(true))
    else {
        return store.load();
    };
    let mut state = store.load_partition(&Partition::Catalog)?;
    for p in written.iter().filter(|p| **p != Partition::Catalog) {
        let part = store.load_partition(p)?;
        state.recovered_changes += part.recovered_changes;
        state.objects.extend(part.objects);
    }
    state.serial = serial;
    Ok(state)
}

/// The most partitions an apply locks one by one; past it, it takes the whole-state lock. A
/// partition's lock and journal keep files open for the whole apply, and Linux allows 1,024
/// open files by default: a fleet-wide change (a new engineer for every gold tenant) would run
/// out. Locking per partition is for people applying a few customers at once; a rollout to
/// hundreds of tenants waits for them, and they for it, as for any whole-state apply.
const MAX_PARTITION_LOCKS: usize = 64;

/// What a computed plan is asked for, kept to plan again under the locks.
struct Replan<'a> {
    options: PlanOptions,
    selection: &'a Selection,
    changed_since: Option<&'a str>,
}

impl<'a> Replan<'a> {
    fn request(&self, need: Need<'a>) -> PlanRequest<'a> {
        PlanRequest {
            options: self.options.clone(),
            changed_since: self.changed_since,
            selection: self.selection,
            need,
        }
    }
}
