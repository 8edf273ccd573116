//! `apply` and `import`: hold the state lock, plan (or take a saved plan that is still
//! current), let the caller approve, carry the plan out through the right executor, and
//! record every change.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::apply::entra::EntraExecutor;
use crate::apply::{
    ApplyError, ApplyEvent, ApplyReport, Control, Ledger, Session, StateOnlyExecutor, WholeLedger,
};
use crate::ops::plan::{PlanRequest, plan_changes};
use crate::ops::{Need, Note, OpsError, Phase, Reporter, Selection, Workspace};
use crate::outcome::{Cause, Outcome, TenantOutcome};
use crate::plan::{Plan, PlanOptions, SavedPlan, partition_staleness, partitions_written};
use crate::state::{
    LockInfo, Partition, Provenance, Serials, Source, State, StateError, StateLock, StateObject,
    StateStore, partition_of,
};
use std::collections::BTreeMap;

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
    /// Every tenant the plan lists and how its apply ended (the tenants a computed plan only
    /// counted had nothing to do: [`Plan::tenants_unlisted`]).
    pub outcomes: Vec<TenantOutcome>,
    /// The state written, for the summary line.
    pub store: String,
    pub serial: u64,
}

impl ApplyRun {
    /// How many tenants the apply covered, listed in `outcomes` or only counted.
    pub fn tenant_count(&self) -> usize {
        self.outcomes.len() + self.plan.tenants_unlisted
    }
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

/// Applies `source` (`command` is `apply` or `import`, for messages). `approve` sees the plan
/// when it has changes; `stop` (Ctrl-C, SIGTERM, a closed stdout) stops before the next
/// change. Whatever happens after approval, what was done is recorded.
///
/// Most applies run partition by partition: the catalog's lock (when the plan changes tenant
/// or organization records) is taken before approval, and each tenant's lock only while that
/// tenant is applied, checked against the serial its plan was made from; a tenant that
/// changed meanwhile fails as stale, the others carry on. A plan that renames or moves
/// objects, the first apply, a store not upgraded yet and the recording of an interrupted
/// apply take the whole-state lock instead.
pub fn apply(
    ws: &mut Workspace,
    source: PlanSource<'_>,
    command: &str,
    approve: &mut dyn FnMut(&Plan) -> Approval,
    stop: &AtomicBool,
    reporter: &dyn Reporter,
) -> Result<ApplyRun, OpsError> {
    let digest = ws.manifests.fleet.digest();
    let offline = match &source {
        PlanSource::Compute { options, .. } => options.offline,
        PlanSource::Saved(saved) => saved.plan.options.offline,
    };
    let need = Need::Plan { command, offline };
    let (serials, plan, replan) = match source {
        PlanSource::Saved(saved) => {
            let serials = ws.store.serials()?;
            // Partition serials decide; the whole state is read only for a plan without them.
            let state = if saved.plan.state.partitions.is_empty()
                || saved.plan.state.lineage != serials.lineage
            {
                ws.store.load()?
            } else {
                header_only(&serials)
            };
            if let Some(why) = partition_staleness(&saved.plan, &digest, &state, &serials) {
                return Err(stale(why));
            }
            if ws.connection.is_none() {
                ws.connection = crate::ops::workspace::connect_fleet(
                    &ws.settings,
                    &ws.manifests.fleet,
                    None,
                    need,
                )?;
            }
            (serials, saved.plan, None)
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
            if !plan.has_changes() && made.recovered == 0 {
                record_positions(ws, &plan, &digest)?;
                return Ok(unapplied(ws, plan, Approval::Apply, made.serials.whole()));
            }
            (made.serials, plan, Some(replan))
        }
    };
    let mut run = Run {
        digest,
        need,
        info: LockInfo::for_command(ws.settings.command_line.clone()),
        approve,
        stop,
        reporter,
    };
    let mut result = apply_planned(ws, &mut run, serials, plan, replan.as_ref())?;
    if result.approval == Approval::Apply {
        record_positions(ws, &result.plan, &run.digest)?;
    }
    // A computed plan's tenants that another apply changed before their locks were taken are
    // planned again (a saved plan's are not: it is exactly what was reviewed).
    let Some(replan) = replan else {
        return Ok(result);
    };
    for _ in 0..MAX_REPLANS {
        let stale: Vec<String> = result
            .outcomes
            .iter()
            .filter(|t| matches!(&t.outcome, Outcome::Failed(f) if f.cause == Cause::Stale))
            .map(|t| t.tenant.clone())
            .collect();
        if stale.is_empty()
            || stop.load(std::sync::atomic::Ordering::SeqCst)
            || result.approval != Approval::Apply
        {
            break;
        }
        run.reporter.note(&Note::Replanning {
            tenants: stale.clone(),
        });
        let selection = Selection {
            tenants: stale.clone(),
            ..Selection::default()
        };
        let again = Replan {
            options: replan.options.clone(),
            selection: &selection,
            changed_since: None,
        };
        let (plan, made) = plan_changes(ws, again.request(run.need), run.reporter)?;
        let next = if plan.has_changes() || made.recovered > 0 {
            apply_planned(ws, &mut run, made.serials, plan, Some(&again))?
        } else {
            unapplied(ws, plan, Approval::Apply, made.serials.whole())
        };
        result = result.merge_replanned(next, &stale);
    }
    Ok(result)
}

/// Records the end-user sync positions of the plan's tenants that had nothing to change (the
/// others record theirs as their apply ends): bookkeeping, so no approval is asked for. Each
/// tenant's partition is locked only while its position is written. A tenant whose state
/// was never written waits for its first apply; a stored position newer than the plan's is
/// kept.
fn record_positions(ws: &Workspace, plan: &Plan, digest: &str) -> Result<(), OpsError> {
    let changing: std::collections::BTreeSet<&str> = plan
        .actions
        .iter()
        .filter(|a| a.op != crate::plan::Op::NoOp)
        .map(|a| a.tenant.as_str())
        .collect();
    let source = Source {
        digest: digest.to_string(),
        commit: ws.manifests.commit.clone(),
    };
    let info = LockInfo::for_command(ws.settings.command_line.clone());
    for p in plan
        .positions
        .iter()
        .filter(|p| !changing.contains(p.tenant.as_str()))
    {
        record_position_alone(
            ws.store.as_ref(),
            &info,
            ws.settings.lock_timeout,
            &p.tenant,
            &p.position,
            &source,
        )?;
    }
    Ok(())
}

/// Writes `tenant`'s sync position into its partition under the partition's lock (a tenant
/// with no change to apply). A tenant whose state was never written waits for its first
/// apply; a stored position newer than this one is kept.
pub(crate) fn record_position_alone(
    store: &dyn StateStore,
    info: &LockInfo,
    timeout: Duration,
    tenant: &str,
    position: &crate::end_users::SyncPosition,
    source: &Source,
) -> Result<(), OpsError> {
    let lock = store.lock_tenant(tenant, info.clone(), timeout)?;
    let mut state = store.load_tenant(tenant)?;
    if state.lineage.is_empty() {
        return Ok(());
    }
    let address = crate::resources::address(crate::plan::contacts::USER_SYNC, tenant);
    let stored = state
        .objects
        .get(&address)
        .and_then(|o| crate::end_users::SyncPosition::from_attributes(&o.attributes));
    if stored.is_some_and(|s| s.read_at > position.read_at) {
        return Ok(());
    }
    state.apply_change(&crate::apply::position_change(tenant, position, source));
    store.write_partition(&Partition::tenant(tenant)?, &state, &lock)?;
    Ok(())
}

/// How often an apply plans again the tenants that changed under it before it gives up on
/// them (each round is another apply's doing: in a busy pipeline, fail and let CI retry).
const MAX_REPLANS: usize = 3;

/// Applies a plan partition by partition when it can, else under the whole-state lock.
fn apply_planned(
    ws: &mut Workspace,
    run: &mut Run<'_, '_>,
    serials: Serials,
    plan: Plan,
    replan: Option<&Replan<'_>>,
) -> Result<ApplyRun, OpsError> {
    let partitioned = plan.has_changes()
        && !plan.state.partitions.is_empty()
        && partitions_written(&plan.actions, &serials.lineage).is_some()
        && !ws.store.partition_reads_whole_fleet()?;
    if partitioned {
        apply_by_partition(ws, run, serials, plan, replan)
    } else {
        apply_whole(ws, run, serials, plan, replan)
    }
}

impl ApplyRun {
    /// This run, with the tenants in `replanned` as a later round `next` left them.
    fn merge_replanned(mut self, next: ApplyRun, replanned: &[String]) -> ApplyRun {
        let again = |tenant: &str| replanned.iter().any(|t| t == tenant);
        for outcome in &mut self.outcomes {
            match next.outcomes.iter().find(|t| t.tenant == outcome.tenant) {
                Some(later) => *outcome = later.clone(),
                // Planned again and only counted: it had nothing left to do.
                None if again(&outcome.tenant) => outcome.outcome = Outcome::NothingToDo,
                None => {}
            }
        }
        if let Some(report) = &mut self.report {
            report.errors.retain(|(tenant, _)| !again(tenant));
            if let Some(more) = next.report {
                report.created += more.created;
                report.updated += more.updated;
                report.deleted += more.deleted;
                report.adopted += more.adopted;
                report.blocked += more.blocked;
                report.errors.extend(more.errors);
                report.done.extend(more.done);
                report.interrupted |= more.interrupted;
            }
        }
        self.serial = next.serial;
        self
    }
}

/// A plan is stale: what to say.
fn stale(why: String) -> OpsError {
    OpsError::StalePlan(format!(
        "{why}; make a new plan with `tenantform plan --out FILE`"
    ))
}

/// An empty state with the serials' lineage and whole serial.
fn header_only(serials: &Serials) -> State {
    State {
        lineage: serials.lineage.clone(),
        serial: serials.whole(),
        ..State::new()
    }
}

/// The result of an apply that changed nothing.
fn unapplied(ws: &Workspace, plan: Plan, approval: Approval, serial: u64) -> ApplyRun {
    ApplyRun {
        outcomes: plan.tenants.clone(),
        plan,
        approval,
        report: None,
        store: ws.store.describe(),
        serial,
    }
}

/// What both ways of applying share.
struct Run<'a, 'b> {
    digest: String,
    need: Need<'a>,
    info: LockInfo,
    approve: &'b mut dyn FnMut(&Plan) -> Approval,
    stop: &'b AtomicBool,
    reporter: &'b dyn Reporter,
}

impl Run<'_, '_> {
    /// Carries `plan` out through the executor it needs, recording through `ledger`.
    fn execute(
        &self,
        ws: &Workspace,
        plan: &Plan,
        ledger: &dyn Ledger,
    ) -> Result<ApplyReport, OpsError> {
        let source = Source {
            digest: self.digest.clone(),
            commit: ws.manifests.commit.clone(),
        };
        let reporter = self.reporter;
        reporter.phase_started(Phase::Applying, crate::apply::tenants_to_apply(plan));
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
        let command = match self.need {
            Need::Plan { command, .. } | Need::Always { command } => command,
        };
        let provenance = Provenance::new(
            command,
            Some(plan.id.clone()).filter(|id| !id.is_empty()),
            ws.manifests.commit.clone(),
            ws.settings.actor.clone(),
        );
        let control = Control {
            parallelism: ws.settings.graph.parallelism,
            on_event: &on_event,
            stop: self.stop,
            provenance: &provenance,
        };
        let report = match &ws.connection {
            Some(c) => {
                let executor = EntraExecutor {
                    client: c.client.as_ref(),
                    replication_wait: Duration::from_secs(120),
                    stop: self.stop,
                    partner_tenant: c.partner_tenant.as_deref(),
                };
                c.runtime.block_on(crate::apply::apply(
                    plan, ledger, &executor, &source, &control,
                ))
            }
            // MSP-side records only: nothing waits on the network (a multi-threaded runtime
            // all the same, so a tenant waiting for its lock does not hold up the others).
            None => crate::ops::workspace::runtime()?.block_on(crate::apply::apply(
                plan,
                ledger,
                &StateOnlyExecutor,
                &source,
                &control,
            )),
        };
        reporter.phase_finished(Phase::Applying);
        Ok(report)
    }
}

/// The whole state under the whole-state lock: planned again under it if anything changed
/// since the plan, applied, and written once at the end.
fn apply_whole(
    ws: &mut Workspace,
    run: &mut Run<'_, '_>,
    serials: Serials,
    mut plan: Plan,
    replan: Option<&Replan<'_>>,
) -> Result<ApplyRun, OpsError> {
    let lock = ws.store.lock(run.info.clone(), ws.settings.lock_timeout)?;
    let mut state = ws.store.load()?;
    let mut serials_now = ws.store.serials()?;
    let recovering = state.recovered_changes > 0;
    if recovering {
        run.reporter.note(&Note::RecordingRecovered {
            changes: state.recovered_changes,
            store: ws.store.describe(),
        });
        state.ensure_lineage();
        state.serial = ws.store.write(&state, &lock)?;
        state.recovered_changes = 0;
        serials_now = ws.store.serials()?;
    }
    if serials.lineage != serials_now.lineage
        || serials.partitions != serials_now.partitions
        || recovering
    {
        // Someone wrote state since the plan (or an apply was interrupted): plan again, now
        // that nobody else can write; Entra is read again too.
        plan = match replan {
            Some(replan) => plan_changes(ws, replan.request(run.need), run.reporter)?.0,
            None => match partition_staleness(&plan, &run.digest, &state, &serials_now) {
                Some(why) => return Err(stale(why)),
                None => plan,
            },
        };
    }
    if !plan.has_changes() {
        return Ok(unapplied(ws, plan, Approval::Apply, state.serial));
    }
    match (run.approve)(&plan) {
        Approval::Apply => {}
        other => return Ok(unapplied(ws, plan, other, state.serial)),
    }
    state.ensure_lineage();
    let mut journal = ws.store.journal(&state, &lock)?;
    let report = {
        let ledger = WholeLedger::new(&plan, &mut state, journal.as_mut());
        run.execute(ws, &plan, &ledger)
    };
    let report = report?;
    // Whatever happened, record what was done (the store gives the new serial).
    journal.before_write()?;
    state.serial = ws.store.write(&state, &lock)?;
    journal.after_write();
    drop(lock);
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

/// Partition by partition: the catalog's lock before approval when the plan changes tenant
/// or organization records (planned again under it if the catalog changed), each tenant's
/// lock only while that tenant is applied.
fn apply_by_partition(
    ws: &mut Workspace,
    run: &mut Run<'_, '_>,
    serials: Serials,
    mut plan: Plan,
    replan: Option<&Replan<'_>>,
) -> Result<ApplyRun, OpsError> {
    let lineage = serials.lineage.clone();
    let writes_catalog = |plan: &Plan| {
        partitions_written(&plan.actions, &lineage).is_some_and(|w| w.contains(&Partition::Catalog))
    };
    let catalog_lock = if writes_catalog(&plan) {
        Some(ws.store.lock_partition(
            &Partition::Catalog,
            run.info.clone(),
            ws.settings.lock_timeout,
        )?)
    } else {
        None
    };
    let mut catalog = ws.store.load_partition(&Partition::Catalog)?;
    if let Some(lock) = &catalog_lock {
        let recovered = catalog.recovered_changes > 0;
        let changed = catalog.serial != serials.of(&Partition::Catalog) || recovered;
        if recovered {
            run.reporter.note(&Note::RecordingRecovered {
                changes: catalog.recovered_changes,
                store: format!("{} ({})", ws.store.describe(), Partition::Catalog),
            });
            catalog.recovered_changes = 0;
            catalog.serial = ws
                .store
                .write_partition(&Partition::Catalog, &catalog, lock)?;
        }
        if changed {
            // Tenant or organization records changed since the plan: plan again under the
            // catalog's lock (tenants are checked one by one as they are applied).
            plan = match replan {
                Some(replan) => plan_changes(ws, replan.request(run.need), run.reporter)?.0,
                None => {
                    return Err(stale(format!(
                        "{} has changed since the plan was made",
                        Partition::Catalog
                    )));
                }
            };
            if plan.has_changes()
                && (plan.state.partitions.is_empty()
                    || partitions_written(&plan.actions, &lineage).is_none())
            {
                return Err(stale(
                    "state changed while this apply was planning and it now writes more than it locked: run it again".into(),
                ));
            }
        }
    }
    if !plan.has_changes() {
        return Ok(unapplied(
            ws,
            plan,
            Approval::Apply,
            ws.store.serials()?.whole(),
        ));
    }
    match (run.approve)(&plan) {
        Approval::Apply => {}
        other => {
            let serial = ws.store.serials()?.whole();
            return Ok(unapplied(ws, plan, other, serial));
        }
    }
    let report = {
        let ledger = PartitionLedger {
            store: ws.store.as_ref(),
            info: &run.info,
            timeout: ws.settings.lock_timeout,
            planned: &plan.state.partitions,
            catalog: std::sync::Mutex::new(Some(catalog)),
            catalog_lock: std::sync::Mutex::new(catalog_lock),
            reporter: run.reporter,
        };
        run.execute(ws, &plan, &ledger)?
    };
    let outcomes = report.outcomes(&plan);
    Ok(ApplyRun {
        outcomes,
        plan,
        approval: Approval::Apply,
        report: Some(report),
        store: ws.store.describe(),
        serial: ws.store.serials()?.whole(),
    })
}

/// Records an apply partition by partition: the catalog under the lock taken before approval,
/// each tenant under its own lock, taken when the tenant starts and released once its
/// partition is written.
pub(crate) struct PartitionLedger<'a> {
    store: &'a dyn StateStore,
    info: &'a LockInfo,
    timeout: Duration,
    /// The serial each partition had when the plan was made.
    planned: &'a BTreeMap<Partition, u64>,
    /// The catalog as loaded (until its session takes it).
    catalog: std::sync::Mutex<Option<State>>,
    /// Held from before approval until the apply ends.
    catalog_lock: std::sync::Mutex<Option<StateLock>>,
    reporter: &'a dyn Reporter,
}

impl<'a> PartitionLedger<'a> {
    /// A ledger for tenant partitions only (no catalog record is written): `planned` holds
    /// the serial each tenant's partition had when it was planned.
    pub(crate) fn tenants_only(
        store: &'a dyn StateStore,
        info: &'a LockInfo,
        timeout: Duration,
        planned: &'a BTreeMap<Partition, u64>,
        reporter: &'a dyn Reporter,
    ) -> Self {
        PartitionLedger {
            store,
            info,
            timeout,
            planned,
            catalog: std::sync::Mutex::new(None),
            catalog_lock: std::sync::Mutex::new(None),
            reporter,
        }
    }

    /// Runs `work` with the catalog's lock.
    fn with_catalog_lock<T>(
        &self,
        work: impl FnOnce(&StateLock) -> Result<T, ApplyError>,
    ) -> Result<T, ApplyError> {
        match self.catalog_lock.lock().expect("catalog lock").as_ref() {
            Some(lock) => work(lock),
            None => Err(ApplyError::State(StateError::Internal(
                "the plan changes tenant or organization records, but the catalog is not locked",
            ))),
        }
    }
}

impl Ledger for PartitionLedger<'_> {
    fn open_catalog(&self) -> Result<Session<'_>, ApplyError> {
        let view = self
            .catalog
            .lock()
            .expect("catalog")
            .take()
            .unwrap_or_default();
        let journal = self.with_catalog_lock(|lock| {
            Ok(self
                .store
                .journal_partition(&Partition::Catalog, &view.clone_header(), lock)?)
        })?;
        Ok(Session::new(view, journal, None))
    }

    fn close_catalog(&self, mut session: Session<'_>) -> Result<(), ApplyError> {
        session.journal.before_write()?;
        let written = self.with_catalog_lock(|lock| {
            Ok(self
                .store
                .write_partition(&Partition::Catalog, &session.view, lock)?)
        });
        close_written(session, written.map(|_| ()))
    }

    fn tenant_record(&self, tenant: &str) -> Option<StateObject> {
        self.catalog
            .lock()
            .expect("catalog")
            .as_ref()?
            .objects
            .get(&crate::resources::address("tenant", tenant))
            .cloned()
    }

    fn open_tenant(
        &self,
        tenant: &str,
        record: Option<StateObject>,
    ) -> Result<Session<'_>, ApplyError> {
        let partition = Partition::tenant(tenant)?;
        let lock = self
            .store
            .lock_partition(&partition, self.info.clone(), self.timeout)?;
        let mut view = self.store.load_partition(&partition)?;
        let planned = self.planned.get(&partition).copied().unwrap_or(0);
        if view.serial != planned {
            return Err(ApplyError::Stale(format!(
                "tenant {tenant} has changed since the plan was made (serial {planned} then, {} now): plan again",
                view.serial
            )));
        }
        if view.recovered_changes > 0 {
            // An interrupted apply's journal, replayed in the plan too: record it first.
            self.reporter.note(&Note::RecordingRecovered {
                changes: view.recovered_changes,
                store: format!("{} ({partition})", self.store.describe()),
            });
            view.recovered_changes = 0;
            view.serial = self.store.write_partition(&partition, &view, &lock)?;
        }
        let journal = self
            .store
            .journal_partition(&partition, &view.clone_header(), &lock)?;
        if let Some(record) = record {
            view.objects
                .insert(crate::resources::address("tenant", tenant), record);
        }
        Ok(Session::new(
            view,
            journal,
            Some(Box::new((partition, lock))),
        ))
    }

    fn close_tenant(&self, _tenant: &str, mut session: Session<'_>) -> Result<(), ApplyError> {
        let (partition, lock) = *session
            .held
            .take()
            .and_then(|h| h.downcast::<(Partition, StateLock)>().ok())
            .ok_or(ApplyError::State(StateError::Internal(
                "a tenant's session lost its lock",
            )))?;
        session.journal.before_write()?;
        // The tenant record is the catalog's; the partition holds the tenant's own objects.
        session
            .view
            .objects
            .retain(|address, object| partition_of(address, object) == partition);
        let written = self.store.write_partition(&partition, &session.view, &lock);
        close_written(session, written.map(|_| ()).map_err(ApplyError::from))
    }
}

/// Ends a session after its ledger wrote its view: on success the journal learns that the
/// write recorded what it held back; on failure what was held back goes into the journal (a
/// reader replays it) before the error is returned.
fn close_written(
    mut session: Session<'_>,
    written: Result<(), ApplyError>,
) -> Result<(), ApplyError> {
    match written {
        Ok(()) => {
            session.written();
            Ok(())
        }
        Err(e) => {
            let _ = session.write_out_held_back();
            Err(e)
        }
    }
}

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
