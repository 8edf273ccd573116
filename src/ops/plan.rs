//! `plan`: manifests, state and live Entra in, a plan out (the planner itself is pure).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;

use crate::live::{LiveSnapshot, LiveTenant};
use crate::model::{DesiredFleet, DesiredModel, STORE_PATH};
use crate::ops::catalog::StoredCatalog;
use crate::ops::reorder::Reorder;
use crate::ops::settings::narrow;
use crate::ops::{Need, Note, OpsError, Phase, Reporter, Selection, Workspace};
use crate::plan::{
    CatalogGroups, CatalogPlanner, Part, Plan, PlanHeader, PlanInput, PlanOptions, PlanPart,
    StateRef, TENANTS_PER_GROUP, TenantJob, plan_part, tenant_jobs, tenant_state,
};
use crate::state::{Partition, State, StateError, StateObject};

/// What a plan is asked for.
pub struct PlanRequest<'a> {
    pub options: PlanOptions,
    /// Plan only tenants whose desired objects differ from the manifests at this git ref.
    pub changed_since: Option<&'a str>,
    pub selection: &'a Selection,
    pub need: Need<'a>,
}

/// A computed plan, with what Entra held when it was made (drift reads privileged access
/// from it).
pub struct PlanRun {
    pub plan: Plan,
    pub live: Option<LiveSnapshot>,
}

/// The tenants a run covers: `--tenant`/`--selector`, narrowed by `--changed-since`.
pub fn scope(
    ws: &Workspace,
    selection: &Selection,
    changed_since: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Option<BTreeSet<String>>, OpsError> {
    let fleet = &ws.manifests.fleet;
    let selected = selection.resolve(&fleet.catalog)?;
    let mut only = None;
    if let Some(base) = changed_since {
        // The base may not validate (it is history); its model is still what was wanted then.
        let (mut sources, diags, _) = crate::git::load_at(&ws.settings.manifests.path, base)?;
        let base_fleet = crate::validate_sources(&mut sources, diags)
            .map_err(OpsError::io(STORE_PATH))?
            .fleet;
        let changed =
            crate::plan::changed_tenants(&base_fleet, fleet).map_err(OpsError::io(STORE_PATH))?;
        reporter.note(&Note::ChangedSince {
            base: base.to_string(),
            changed: changed.len(),
            total: fleet.catalog.tenants.len(),
        });
        only = Some(changed);
    }
    Ok(narrow(only, selected))
}

/// Computes the whole plan and keeps the live reads (drift reads privileged access from them).
pub fn plan(
    ws: &mut Workspace,
    request: PlanRequest<'_>,
    reporter: &dyn Reporter,
) -> Result<PlanRun, OpsError> {
    let mut collect = PlanCollector::everything();
    plan_into(ws, request, &mut collect, reporter)?;
    Ok(collect.into_run(ws.connection.is_some()))
}

/// The plan's changes only (what apply carries out; unchanged objects are counted), and what
/// it was made against.
pub fn plan_changes(
    ws: &mut Workspace,
    request: PlanRequest<'_>,
    reporter: &dyn Reporter,
) -> Result<(Plan, PlanMade), OpsError> {
    let mut collect = PlanCollector::changes();
    let made = plan_into(ws, request, &mut collect, reporter)?;
    Ok((collect.into_run(false).plan, made))
}

/// What a plan was made against.
pub struct PlanMade {
    /// The state's serials read before any of it was loaded.
    pub serials: crate::state::Serials,
    /// Changes of interrupted applies found in journals (replayed, not yet recorded).
    pub recovered: usize,
}

/// Receives a plan as it is computed: its header, the catalog's part, each tenant's part (in
/// tenant order as far as the reorder buffer allows), and at the end the state partitions it
/// writes. What a sink keeps is what the run holds in memory.
pub trait PlanSink {
    fn begin(&mut self, header: PlanHeader) -> Result<(), OpsError>;
    /// One part; for a tenant's part, its live read when Entra was read.
    fn part(&mut self, part: PlanPart, read: Option<TenantRead>) -> Result<(), OpsError>;
    /// The serials of the partitions the plan's changes write (empty: the whole state).
    fn finish(&mut self, partitions: BTreeMap<Partition, u64>) -> Result<(), OpsError>;
}

/// One tenant's live read, with the slice of the model it was planned from (what a sink needs
/// to draw conclusions from the read before it is dropped).
pub struct TenantRead {
    pub tenant: String,
    pub live: LiveTenant,
    pub desired: DesiredModel,
}

/// A sink that builds the plan in memory: all of it (`everything`, for apply, drift and JSON),
/// or (`changes`) without unchanged objects that carry no note, counted in the summary only:
/// what a terminal or a pull-request comment shows, so a no-change plan of any fleet size
/// holds only the tenants in flight.
pub struct PlanCollector {
    plan: Option<Plan>,
    live: LiveSnapshot,
    everything: bool,
    /// Unchanged objects with a note kept so far (at most `Plan::MAX_NOTED_KEPT`).
    noted_kept: usize,
    /// How many warnings the catalog's parts (always the first) brought.
    catalog_warnings: usize,
}

impl PlanCollector {
    pub fn everything() -> Self {
        PlanCollector {
            plan: None,
            live: LiveSnapshot::default(),
            everything: true,
            noted_kept: 0,
            catalog_warnings: 0,
        }
    }

    pub fn changes() -> Self {
        PlanCollector {
            everything: false,
            ..PlanCollector::everything()
        }
    }

    /// The plan, and what Entra held when `connected` (the workspace read Graph).
    pub fn into_run(self, connected: bool) -> PlanRun {
        PlanRun {
            plan: self.plan.expect("plan_into began the plan"),
            live: connected.then_some(self.live),
        }
    }
}

impl PlanSink for PlanCollector {
    fn begin(&mut self, header: PlanHeader) -> Result<(), OpsError> {
        self.plan = Some(Plan::new(header));
        Ok(())
    }

    fn part(&mut self, mut part: PlanPart, read: Option<TenantRead>) -> Result<(), OpsError> {
        let plan = self.plan.as_mut().expect("begun");
        if part.part == crate::plan::Part::Catalog {
            self.catalog_warnings += part.warnings.len();
        }
        if !self.everything {
            // Tenants with nothing to do are counted, not listed (what their sources said is
            // for JSON: a terminal shows failures, and a failed source fails the tenant).
            // Every tenant of a catalog part has a part of its own later (it is a job), so
            // only tenant parts count them; one the plan already lists (changes in the
            // catalog) is merged, not counted. A tenant with actions in the part (blocked
            // ones too) is listed: its section is headed with its display name.
            let catalog = part.part == crate::plan::Part::Catalog;
            let with_actions: BTreeSet<&str> = part
                .actions
                .iter()
                .filter(|a| a.op != crate::plan::Op::NoOp)
                .map(|a| a.tenant.as_str())
                .collect();
            part.tenants.retain(|t| {
                let listed = t.outcome != crate::outcome::Outcome::NothingToDo
                    || with_actions.contains(t.tenant.as_str())
                    || plan.lists_tenant(&t.tenant);
                if !listed && !catalog {
                    plan.tenants_unlisted += 1;
                }
                listed
            });
            let room = Plan::MAX_NOTED_KEPT.saturating_sub(self.noted_kept);
            let omitted = part.drop_silent_no_ops(room);
            plan.notes_omitted += omitted;
            self.noted_kept += part
                .actions
                .iter()
                .filter(|a| a.op == crate::plan::Op::NoOp)
                .count();
        }
        if let Some(read) = read
            && self.everything
        {
            self.live.tenants.insert(read.tenant, read.live);
        }
        plan.add_part(part);
        Ok(())
    }

    fn finish(&mut self, partitions: BTreeMap<Partition, u64>) -> Result<(), OpsError> {
        let plan = self.plan.as_mut().expect("begun");
        plan.state.partitions = partitions;
        restore_tenant_order(plan, self.catalog_warnings);
        Ok(())
    }
}

/// Puts a collected plan back in tenant order where the reorder buffer let a tenant through
/// out of turn, so a collected plan is the same whatever Entra's latency: each tenant's part
/// is contiguous and in order, so a stable sort by tenant restores the whole. (A plan file
/// written as it goes keeps the order it was written in.)
fn restore_tenant_order(plan: &mut Plan, catalog_warnings: usize) {
    fn tenant_key(a: &crate::plan::Action) -> Option<&str> {
        crate::resources::kind(&a.kind)
            .filter(|k| k.scope != crate::resources::KindScope::Fleet)
            .map(|_| a.tenant.as_str())
    }
    if !plan
        .actions
        .is_sorted_by(|a, b| tenant_key(a) <= tenant_key(b))
    {
        plan.actions
            .sort_by(|a, b| tenant_key(a).cmp(&tenant_key(b)));
    }
    plan.not_read.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    plan.unmanaged.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    // A tenant's warnings start with its name (`tenant: ...`); the catalog's come first.
    let split = catalog_warnings.min(plan.warnings.len());
    plan.warnings[split..].sort_by(|a, b| {
        let tenant = |w: &String| w.split(": ").next().unwrap_or_default().to_string();
        tenant(a).cmp(&tenant(b))
    });
}

/// Computes the plan into `sink`: the catalog (tenant and organization records, the whole
/// fleet at once, from the catalog partition), then tenant by tenant on a pool of
/// `--parallelism`: load the tenant's partition, read its Entra, plan it, hand it on, drop it.
/// Memory grows with the parallelism and with what the sink keeps, not with the fleet.
/// A new plan's id: short enough to quote in a review, random so two plans never share one.
fn new_plan_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Carries out a tenant's part as soon as it is planned, inside the tenant's task (`sync`):
/// nothing of a tenant (its users, its actions) outlives the task, so memory follows
/// `--parallelism`, not the fleet. Returns the part as the sink should see it (its outcomes
/// as applied).
pub trait TenantApplier: Sync {
    fn apply<'a>(
        &'a self,
        store: &'a (dyn crate::state::StateStore + Send + Sync),
        part: PlanPart,
        planned_serial: u64,
    ) -> futures_util::future::BoxFuture<'a, PlanPart>;
}

pub fn plan_into(
    ws: &mut Workspace,
    request: PlanRequest<'_>,
    sink: &mut dyn PlanSink,
    reporter: &dyn Reporter,
) -> Result<PlanMade, OpsError> {
    plan_into_applying(ws, request, sink, reporter, None)
}

/// [`plan_into`], each tenant's part applied by `applier` (when given) before the sink gets it.
pub fn plan_into_applying(
    ws: &mut Workspace,
    request: PlanRequest<'_>,
    sink: &mut dyn PlanSink,
    reporter: &dyn Reporter,
    applier: Option<&dyn TenantApplier>,
) -> Result<PlanMade, OpsError> {
    let PlanRequest {
        mut options,
        changed_since,
        selection,
        need,
    } = request;
    options.only_tenants = scope(ws, selection, changed_since, reporter)?;
    if ws.connection.is_none() {
        ws.connection = crate::ops::workspace::connect_fleet(
            &ws.settings,
            &ws.manifests.fleet,
            options.only_tenants.as_ref(),
            need,
        )?;
    }
    let every_mapped = matches!(need, Need::Always { .. });
    // Serials before state: if a write slips in between, the plan looks older than it is
    // (stale at apply), never newer.
    let serials = ws.store.serials()?;
    let source = PartitionSource::open(ws.store.as_ref())?;
    let fleet = &ws.manifests.fleet;
    let groups = CatalogGroups::new(fleet, TENANTS_PER_GROUP);
    let catalog = StoredCatalog::load(&groups, |each| source.load_each(&Partition::Catalog, each))?;
    let stored_tenants = source.tenants()?;
    let now = jiff::Timestamp::now();
    sink.begin(PlanHeader {
        id: new_plan_id(),
        manifests_digest: fleet.digest(),
        state: StateRef {
            lineage: serials.lineage.clone(),
            serial: serials.whole(),
            partitions: BTreeMap::new(),
        },
        options: options.clone(),
    })?;
    // The catalog a group of tenants at a time; its deletes and hints last.
    let mut written = Written::new(&serials.lineage);
    let mut planner = CatalogPlanner::default();
    for group in 0..groups.len() {
        let state = State {
            lineage: catalog.meta.lineage.clone(),
            serial: catalog.meta.serial,
            objects: catalog.group(group)?,
            ..State::new()
        };
        let desired = groups.desired(group).map_err(OpsError::io(STORE_PATH))?;
        let part = planner.plan_group(&PlanInput {
            desired: &desired,
            state: &state,
            live: None,
            options: options.clone(),
            now,
        });
        written.add(&part.actions);
        sink.part(part, None)?;
    }
    let part = planner.finish();
    written.add(&part.actions);
    sink.part(part, None)?;
    drop(groups);

    // Tenants are planned with their own records in the catalog (renames, Microsoft tenant
    // ids), each read from disk when its tenant is planned.
    let jobs = tenant_jobs(
        &fleet.catalog,
        |name| catalog.has_tenant(name),
        stored_tenants,
        &options,
    );
    let offline_runtime;
    let (runtime, connection) = match &ws.connection {
        Some(c) => (&c.runtime, Some(c)),
        None => {
            offline_runtime = crate::ops::workspace::runtime()?;
            (&offline_runtime, None)
        }
    };
    let phase = if connection.is_some() {
        Phase::ReadingEntra
    } else {
        Phase::Planning
    };
    reporter.phase_started(phase, jobs.len());
    let cx = TenantPlanning {
        source: &source,
        fleet,
        catalog: &catalog,
        connection,
        sources: crate::graph::sources::for_kinds(
            crate::resources::KINDS
                .iter()
                .filter(|k| options.plans_kind(k.name)),
        ),
        consent_redirect: &ws.settings.graph.consent_redirect_uri,
        every_mapped,
        applier,
        store: ws.store.as_ref(),
        plans_gdap: options.plans_kind(crate::resources::gdap_relationship::KIND.name),
        gdap: tokio::sync::OnceCell::new(),
        options: PlanOptions {
            only_tenants: None,
            ..options.clone()
        },
        now,
    };
    let parallelism = ws.settings.graph.parallelism.max(1);
    let mut recovered = catalog.meta.recovered_changes;
    let mut reorder = Reorder::new(parallelism);
    let mut sink_part = |t: TenantPlanned| -> Result<(), OpsError> {
        written.add(&t.part.actions);
        sink.part(t.part, t.read)
    };
    drive_tenants(runtime, &cx, jobs, parallelism, |i, result| {
        let tenant = result?;
        reporter.tenant_done(phase, tenant.failed);
        recovered += tenant.recovered;
        for t in reorder.push(i, tenant) {
            sink_part(t)?;
        }
        Ok(())
    })?;
    for t in reorder.finish() {
        sink_part(t)?;
    }
    reporter.phase_finished(phase);
    if recovered > 0 {
        reporter.note(&Note::RecoveredChanges {
            changes: recovered,
            store: ws.store.describe(),
        });
    }
    let partitions = written
        .partitions
        .map(|set| {
            set.into_iter()
                .map(|p| {
                    let serial = serials.of(&p);
                    (p, serial)
                })
                .collect()
        })
        .unwrap_or_default();
    sink.finish(partitions)?;
    Ok(PlanMade { serials, recovered })
}

/// Plans (and, with an applier, applies) every job, at most `parallelism` at once, handing
/// each result to `each` on the calling thread as it comes. Several threads drive the
/// tenants' futures (two a core, each with its share of `parallelism`): planning and
/// recording a tenant with thousands of contacts is CPU work, which one thread polling every
/// future would serialise. The first error `each` returns stops the drivers taking new jobs;
/// tenants already started finish, and their results are dropped.
fn drive_tenants(
    runtime: &tokio::runtime::Runtime,
    cx: &TenantPlanning<'_>,
    jobs: Vec<TenantJob>,
    parallelism: usize,
    mut each: impl FnMut(usize, Result<TenantPlanned, OpsError>) -> Result<(), OpsError>,
) -> Result<(), OpsError> {
    let drivers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_mul(DRIVERS_PER_CORE)
        .clamp(1, MAX_DRIVERS)
        .min(parallelism)
        .min(jobs.len().max(1));
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate());
    let stopped = std::sync::atomic::AtomicBool::new(false);
    let (send, receive) = std::sync::mpsc::sync_channel(parallelism);
    std::thread::scope(|scope| {
        for driver in 0..drivers {
            let share = parallelism / drivers + usize::from(driver < parallelism % drivers);
            let send = send.clone();
            let (queue, stopped) = (&queue, &stopped);
            scope.spawn(move || {
                let next = std::iter::from_fn(|| {
                    if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                        return None;
                    }
                    queue.lock().expect("job queue").next()
                });
                runtime.block_on(async {
                    let mut planned = futures_util::stream::iter(next)
                        .map(|(i, job)| async move { (i, cx.plan(job).await) })
                        .buffer_unordered(share);
                    // Once the receiver is gone (an error), tenants already started still
                    // finish (an applier may be between two changes); their results go nowhere.
                    let mut receiving = true;
                    while let Some(result) = planned.next().await {
                        receiving = receiving && send.send(result).is_ok();
                    }
                })
            });
        }
        drop(send);
        let outcome = receive.iter().try_for_each(|(i, result)| each(i, result));
        if outcome.is_err() {
            stopped.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // Dropping the receiver fails the drivers' next send, so none waits on a full channel.
        drop(receive);
        outcome
    })
}

/// Threads driving tenants a core: a driver writing a tenant's state (a file synced to disk,
/// a database round trip) blocks every tenant it drives meanwhile, so one a core leaves cores
/// idle while there is planning to do (a first sync of 1,000 tenants x 500 users on disk ran
/// about 12% faster with two a core, for about 15 MB more at the peak).
const DRIVERS_PER_CORE: usize = 2;
/// At most this many threads drive tenants (from four cores up, the rest go to the runtime's
/// I/O).
const MAX_DRIVERS: usize = 8;

/// The partitions a plan's changes write, gathered part by part (`None`: the whole state).
struct Written<'a> {
    lineage: &'a str,
    partitions: Option<BTreeSet<Partition>>,
}

impl<'a> Written<'a> {
    fn new(lineage: &'a str) -> Self {
        Written {
            lineage,
            partitions: Some(BTreeSet::new()),
        }
    }

    fn add(&mut self, actions: &[crate::plan::Action]) {
        if let Some(set) = &mut self.partitions {
            match crate::plan::partitions_written(actions, self.lineage) {
                Some(more) => set.extend(more),
                None => self.partitions = None,
            }
        }
    }
}

/// Where a streaming plan reads partitions from: the store, one at a time, or (when each read
/// would read the whole fleet: a state not upgraded yet, a whole-fleet journal to replay) the
/// whole state loaded once, each partition handed out once.
enum PartitionSource<'a> {
    Store(&'a (dyn crate::state::StateStore + Send + Sync)),
    Loaded(std::sync::Mutex<BTreeMap<Partition, State>>),
}

impl<'a> PartitionSource<'a> {
    fn open(store: &'a (dyn crate::state::StateStore + Send + Sync)) -> Result<Self, OpsError> {
        if !store.partition_reads_whole_fleet()? {
            return Ok(PartitionSource::Store(store));
        }
        let whole = store.load()?;
        let mut parts: BTreeMap<Partition, State> = BTreeMap::new();
        for (address, object) in whole.objects {
            parts
                .entry(crate::state::partition_of(&address, &object))
                .or_insert_with(|| State {
                    lineage: whole.lineage.clone(),
                    ..State::new()
                })
                .objects
                .insert(address, object);
        }
        // The recovered changes are counted once, with the catalog.
        let catalog = parts.entry(Partition::Catalog).or_insert_with(|| State {
            lineage: whole.lineage.clone(),
            ..State::new()
        });
        catalog.recovered_changes = whole.recovered_changes;
        Ok(PartitionSource::Loaded(std::sync::Mutex::new(parts)))
    }

    /// The tenants that have a partition.
    fn tenants(&self) -> Result<Vec<String>, OpsError> {
        match self {
            PartitionSource::Store(store) => Ok(store.list_tenants()?),
            PartitionSource::Loaded(parts) => Ok(parts
                .lock()
                .expect("partitions")
                .keys()
                .filter_map(|p| p.tenant_name().map(str::to_string))
                .collect()),
        }
    }

    /// [`PartitionSource::load`] an object at a time (see
    /// [`crate::state::StateStore::load_partition_each`]).
    fn load_each(
        &self,
        partition: &Partition,
        each: &mut dyn FnMut(String, StateObject) -> Result<(), StateError>,
    ) -> Result<State, OpsError> {
        if let PartitionSource::Store(store) = self {
            return Ok(store.load_partition_each(partition, each)?);
        }
        Ok(crate::state::hand_on(self.load(partition)?, each)?)
    }

    fn load(&self, partition: &Partition) -> Result<State, OpsError> {
        match self {
            PartitionSource::Store(store) => Ok(store.load_partition(partition)?),
            PartitionSource::Loaded(parts) => Ok(parts
                .lock()
                .expect("partitions")
                .remove(partition)
                .unwrap_or_default()),
        }
    }
}

/// What planning one tenant needs, shared by the tenants in flight.
struct TenantPlanning<'a> {
    source: &'a PartitionSource<'a>,
    fleet: &'a DesiredFleet,
    catalog: &'a StoredCatalog,
    connection: Option<&'a crate::ops::Connection>,
    sources: Vec<&'static crate::graph::sources::Source>,
    consent_redirect: &'a str,
    every_mapped: bool,
    applier: Option<&'a dyn TenantApplier>,
    /// Where an applier writes (the store partitions are read from).
    store: &'a (dyn crate::state::StateStore + Send + Sync),
    options: PlanOptions,
    now: jiff::Timestamp,
    /// Whether this plan plans GDAP relationships (`--only` may leave them out).
    plans_gdap: bool,
    /// The partner's GDAP relationships, read once on first need (`with_gdap`).
    gdap: tokio::sync::OnceCell<GdapRead>,
}

/// The partner's relationships as read, with when, or why they could not be.
type GdapRead = Result<(Vec<crate::gdap::LiveRelationship>, String), crate::outcome::Failure>;

/// Reads the partner's relationships (and the active ones' access assignments).
async fn read_gdap(connection: &crate::ops::Connection) -> GdapRead {
    let Some(partner) = connection.partner_tenant.as_deref() else {
        return Err(crate::outcome::Failure::new(
            crate::outcome::Cause::NotRead,
            "GDAP relationships live in the partner tenant: set AZURE_TENANT_ID to the MSP's own tenant",
        )
        .with_source(crate::live::source::GDAP));
    };
    let at = crate::state::now_rfc3339();
    crate::graph::gdap::list(&connection.client, partner)
        .await
        .map(|all| (all, at))
        .map_err(|e| e.failure().with_source(crate::live::source::GDAP))
}

/// Whether tenant `name` has GDAP relationships to plan: declared, or recorded.
fn needs_gdap(desired: &DesiredModel, state: &State, name: &str) -> bool {
    desired.gdap_relationships.contains_key(name)
        || state
            .objects_of_kind(crate::resources::gdap_relationship::KIND.name)
            .next()
            .is_some()
}

/// The Microsoft tenant id state records for tenant `name`.
fn microsoft_id_in_state(state: &State, name: &str) -> Option<String> {
    state
        .objects
        .get(&format!("tenant.{name}"))
        .and_then(|t| t.attributes.get("microsoftTenantId"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// A tenant's live read with the partner's relationships with it added (source `gdap`): a
/// read that failed fails only that source.
fn with_gdap(live: Option<LiveTenant>, read: GdapRead, customer: Option<&str>) -> LiveTenant {
    let mut dir = match live {
        Some(LiveTenant::Read(dir)) => dir,
        Some(failed @ LiveTenant::Failed(_)) => return failed,
        None => crate::live::LiveDirectory::default(),
    };
    match read {
        Ok((all, at)) => {
            dir.gdap_relationships = all
                .into_iter()
                .filter(|r| {
                    customer.is_some_and(|c| {
                        r.customer_tenant_id
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(c))
                    })
                })
                .collect();
            dir.gdap_read_at = Some(at);
            dir.set_source(crate::live::source::GDAP, crate::live::SourceStatus::Read);
        }
        Err(failure) => dir.set_source(
            crate::live::source::GDAP,
            crate::live::SourceStatus::Failed(Box::new(failure)),
        ),
    }
    LiveTenant::Read(dir)
}

/// One tenant planned.
struct TenantPlanned {
    part: PlanPart,
    read: Option<TenantRead>,
    recovered: usize,
    failed: bool,
}

impl TenantPlanning<'_> {
    async fn plan(&self, job: TenantJob) -> Result<TenantPlanned, OpsError> {
        let desired = self
            .fleet
            .slice(&job.name)
            .map_err(OpsError::io(STORE_PATH))?;
        // When the manifests alone say the tenant is read (nearly always), the read starts
        // before its state partition loads, so the load (a file, or a database round trip
        // that waits its turn among the tenants in flight) hides behind Graph's latency
        // instead of adding to it.
        // The tenant's `$batch` reads what the kinds planned need (none when only contacts are
        // planned: their read is the users read below).
        let batch = self.sources.iter().any(|s| !s.report_only);
        let early = self.connection.filter(|_| batch).and_then(|connection| {
            let id = self.to_read_from_manifests(&desired, &job.name)?;
            Some(self.start_read(connection, &job.name, id))
        });
        // `sync` reads a synced tenant's position alone first: when its read turns out quiet,
        // its contacts (the bulk of its partition) are never loaded.
        let peek = self.applier.is_some()
            && !batch
            && job.partitions == [job.name.clone()]
            && desired.end_user_syncs.contains_key(&job.name)
            && matches!(self.source, PartitionSource::Store(_));
        let (mut state, mut own_serial, mut recovered) = if peek {
            self.load_position(&job.name)?
        } else {
            self.load_tenant(&job)?
        };
        let read = early.or_else(|| {
            let connection = self.connection.filter(|_| batch)?;
            let id = self.to_read(&desired, &state, &job.name)?;
            Some(self.start_read(connection, &job.name, id))
        });
        // The end-user sync's read starts from the position stored in the partition.
        let users = self
            .connection
            .and_then(|connection| self.start_users_read(connection, &desired, &state, &job.name));
        let mut live = match read {
            Some(read) => Some(read.join().await),
            None => None,
        };
        if let Some(users) = users {
            let users = users.join().await;
            if peek {
                let quiet = users.as_ref().is_ok_and(|read| {
                    let sync = &desired.end_user_syncs[&job.name];
                    let previous = position_of(&state, &job.name);
                    let now = self.now.round(jiff::Unit::Second).unwrap_or(self.now);
                    crate::plan::contacts::quiet_read(
                        previous.as_ref(),
                        read,
                        sync,
                        &now.to_string(),
                    )
                });
                if !quiet {
                    (state, own_serial, recovered) = self.load_tenant(&job)?;
                }
            }
            live = Some(with_users(live, users));
        }
        // GDAP relationships live in the partner tenant: read there once a run, each
        // customer's handed to its directory.
        // Drift of a fleet that manages GDAP checks every mapped tenant for relationships
        // nobody declared; a fleet without GDAP manifests never reads them.
        let drift_gdap = self.every_mapped && !self.fleet.catalog.gdap_relationships.is_empty();
        if let Some(connection) = self.connection
            && self.plans_gdap
            && (drift_gdap || needs_gdap(&desired, &state, &job.name))
        {
            let customer = desired
                .tenants
                .get(&job.name)
                .and_then(|t| t.microsoft_tenant_id.clone())
                .or_else(|| microsoft_id_in_state(&state, &job.name));
            let read = self
                .gdap
                .get_or_init(|| read_gdap(connection))
                .await
                .clone();
            live = Some(with_gdap(live, read, customer.as_deref()));
        }
        let failed = live.as_ref().is_some_and(LiveTenant::is_failed);
        let snapshot = self.connection.map(|_| LiveSnapshot {
            tenants: live.into_iter().map(|l| (job.name.clone(), l)).collect(),
        });
        let part = plan_part(
            &PlanInput {
                desired: &desired,
                state: &state,
                live: snapshot.as_ref(),
                options: self.options.clone(),
                now: self.now,
            },
            Part::Tenants,
        );
        let part = match self.applier {
            Some(applier) => applier.apply(self.store, part, own_serial).await,
            None => part,
        };
        let read = snapshot
            .and_then(|s| s.tenants.into_iter().next())
            .map(|(tenant, live)| TenantRead {
                tenant,
                live,
                desired,
            });
        Ok(TenantPlanned {
            part,
            read,
            recovered,
            failed,
        })
    }

    /// The tenant's partitions (its own, and a former name's) with the catalog records naming
    /// them: its state, its own partition's serial, and the changes replayed from journals.
    fn load_tenant(&self, job: &TenantJob) -> Result<(State, u64, usize), OpsError> {
        let mut recovered = 0;
        let mut own_serial = 0;
        let mut partitions = Vec::with_capacity(job.partitions.len());
        let mut records = Vec::with_capacity(job.partitions.len());
        for name in &job.partitions {
            let partition = Partition::tenant(name)?;
            let (partition, record) = crate::apply::blocking(|| {
                Ok::<_, OpsError>((self.source.load(&partition)?, self.catalog.tenant(name)?))
            })?;
            recovered += partition.recovered_changes;
            if *name == job.name {
                own_serial = partition.serial;
            }
            partitions.push(partition.objects);
            records.extend(record);
        }
        let state = tenant_state(&self.catalog.meta.lineage, records, partitions);
        Ok((state, own_serial, recovered))
    }

    /// Tenant `name`'s state with only its sync position (and its catalog record), read
    /// without parsing its contacts.
    fn load_position(&self, name: &str) -> Result<(State, u64, usize), OpsError> {
        let address = crate::resources::address(crate::plan::contacts::USER_SYNC, name);
        let partition = Partition::tenant(name)?;
        let (partition, record) = crate::apply::blocking(|| {
            Ok::<_, OpsError>((
                self.store
                    .load_partition_only(&partition, &|a: &str| a == address)?,
                self.catalog.tenant(name)?,
            ))
        })?;
        let serial = partition.serial;
        let recovered = partition.recovered_changes;
        let state = tenant_state(
            &self.catalog.meta.lineage,
            record.into_iter().collect::<Vec<_>>(),
            vec![partition.objects],
        );
        Ok((state, serial, recovered))
    }

    /// Reads tenant `name` (Microsoft tenant `id`) from Graph in a task of its own.
    fn start_read(
        &self,
        connection: &crate::ops::Connection,
        name: &str,
        id: String,
    ) -> AbortOnDrop {
        let client = connection.client.clone();
        let sources = self.sources.clone();
        let consent_redirect = self.consent_redirect.to_string();
        let to_read = crate::graph::read::TenantToRead {
            name: name.to_string(),
            microsoft_tenant_id: id,
        };
        AbortOnDrop(tokio::spawn(async move {
            crate::graph::read::read_one(&client, &to_read, &sources, &consent_redirect).await
        }))
    }

    /// Starts the end-user sync's read of tenant `name` when it has a sync and a Microsoft
    /// tenant id, from the position its partition holds.
    fn start_users_read(
        &self,
        connection: &crate::ops::Connection,
        desired: &DesiredModel,
        state: &State,
        name: &str,
    ) -> Option<AbortOnDrop<Result<crate::live::LiveUsers, crate::outcome::Failure>>> {
        let sync = desired.end_user_syncs.get(name)?;
        let id = desired.tenants.get(name)?.microsoft_tenant_id.clone()?;
        let position = state
            .objects
            .get(&crate::resources::address(
                crate::plan::contacts::USER_SYNC,
                name,
            ))
            .and_then(|o| crate::end_users::SyncPosition::from_attributes(&o.attributes));
        let request = crate::graph::users::UsersToRead {
            sync_name: sync.rules.name.clone(),
            rules_digest: crate::end_users::rules_digest(&sync.rules),
            groups: sync.rules.groups().into_iter().cloned().collect(),
            group_sources: sync.rules.group_sources.clone(),
            position,
        };
        let client = connection.client.clone();
        let redirect = self.consent_redirect.to_string();
        Some(AbortOnDrop(tokio::spawn(async move {
            crate::graph::users::read_users(&client, &id, &request)
                .await
                .map_err(|mut failure| {
                    // Consent is missing: the link to send the customer's admin.
                    if failure.cause == crate::outcome::Cause::ConsentMissing {
                        failure.consent_url =
                            Some(client.config().consent_url(&id, &redirect, &id));
                    }
                    failure
                })
        })))
    }

    /// [`TenantPlanning::to_read`] when the manifests alone decide it: the tenant is declared
    /// with a Microsoft tenant id and has desired Entra objects (or drift checks every mapped
    /// tenant). Then state cannot change the answer: its id comes second, and its objects only
    /// add reasons to read.
    fn to_read_from_manifests(&self, desired: &DesiredModel, name: &str) -> Option<String> {
        let id = desired.tenants.get(name)?.microsoft_tenant_id.clone()?;
        let wanted = self.every_mapped || needs_customer_read(desired);
        wanted.then_some(id)
    }

    /// The tenant's Microsoft tenant id when it has Entra objects to plan: desired ones, ones
    /// state records (no longer desired), or any mapped tenant when drift checks them all.
    fn to_read(&self, desired: &DesiredModel, state: &State, name: &str) -> Option<String> {
        let declared = desired.tenants.get(name);
        let id = declared
            .and_then(|t| t.microsoft_tenant_id.clone())
            .or_else(|| {
                state
                    .objects
                    .get(&format!("tenant.{name}"))
                    .and_then(|t| t.attributes.get("microsoftTenantId"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })?;
        let wanted = needs_customer_read(desired)
            || (self.every_mapped && declared.is_some())
            || crate::resources::KINDS
                .iter()
                .filter(|k| k.live.is_some() && !read_in_partner(k))
                .any(|k| state.objects_of_kind(k.name).next().is_some());
        wanted.then_some(id)
    }
}

/// Kinds read in the partner tenant, not in the customer's `$batch` (GDAP relationships).
fn read_in_partner(kind: &crate::resources::ResourceKind) -> bool {
    kind.sources() == [crate::live::source::GDAP]
}

/// Whether the manifests ask for objects read in the customer's own tenant. A tenant with
/// only GDAP relationships needs no token of its own: GDAP is how a partner gets access
/// before (or instead of) the app's consent there.
fn needs_customer_read(desired: &DesiredModel) -> bool {
    crate::resources::KINDS
        .iter()
        .filter(|k| !read_in_partner(k))
        .filter_map(|k| k.live.as_ref())
        .any(|rules| {
            (rules.tenants)(desired).iter().any(|t| {
                desired
                    .tenants
                    .get(t)
                    .is_some_and(|t| t.microsoft_tenant_id.is_some())
            })
        })
}

/// Tenant `name`'s stored sync position.
fn position_of(state: &State, name: &str) -> Option<crate::end_users::SyncPosition> {
    state
        .objects
        .get(&crate::resources::address(
            crate::plan::contacts::USER_SYNC,
            name,
        ))
        .and_then(|o| crate::end_users::SyncPosition::from_attributes(&o.attributes))
}

/// A tenant's live read with its users read added (source `users`): a token the tenant
/// refuses fails the tenant as a whole, anything else only the source.
fn with_users(
    live: Option<LiveTenant>,
    users: Result<crate::live::LiveUsers, crate::outcome::Failure>,
) -> LiveTenant {
    use crate::outcome::Cause;
    let mut dir = match live {
        Some(LiveTenant::Read(dir)) => dir,
        Some(failed @ LiveTenant::Failed(_)) => return failed,
        None => crate::live::LiveDirectory::default(),
    };
    match users {
        Ok(users) => {
            dir.users = Some(Box::new(users));
            dir.set_source(crate::live::source::USERS, crate::live::SourceStatus::Read);
        }
        Err(failure) if matches!(failure.cause, Cause::ConsentMissing | Cause::TokenRefused) => {
            return LiveTenant::Failed(crate::outcome::Failure {
                source: None,
                ..failure
            });
        }
        Err(failure) => dir.set_source(
            crate::live::source::USERS,
            crate::live::SourceStatus::Failed(Box::new(failure)),
        ),
    }
    LiveTenant::Read(dir)
}

/// A tenant's read started ahead of its partition load: aborted if the load fails, so an
/// error never leaves a read running on its own.
struct AbortOnDrop<T = LiveTenant>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// The read's result; a panic in it goes on unwinding here, as it would have inline.
    async fn join(mut self) -> T {
        match (&mut self.0).await {
            Ok(live) => live,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => unreachable!("a read is only cancelled by dropping its handle: {e}"),
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, TenantNotRead};

    fn action(kind: &str, tenant: &str, name: &str) -> Action {
        crate::plan::test_action(kind, &format!("{kind}.{tenant}.{name}"), tenant)
    }

    fn tenant_part(tenant: &str) -> PlanPart {
        PlanPart {
            actions: vec![
                action("guest", tenant, "a"),
                action("directory_role", tenant, "a"),
            ],
            warnings: vec![format!("{tenant}: holds a role nobody owns")],
            not_read: vec![TenantNotRead {
                tenant: tenant.into(),
                failure: crate::outcome::Failure::new(crate::outcome::Cause::NotRead, "x"),
                kinds: Vec::new(),
            }],
            ..PlanPart::default()
        }
    }

    fn header() -> PlanHeader {
        PlanHeader {
            id: String::new(),
            manifests_digest: String::new(),
            state: StateRef {
                lineage: String::new(),
                serial: 0,
                partitions: BTreeMap::new(),
            },
            options: PlanOptions::default(),
        }
    }

    fn collect(order: &[&str]) -> Plan {
        let mut c = PlanCollector::everything();
        c.begin(header()).unwrap();
        let catalog = PlanPart {
            part: crate::plan::Part::Catalog,
            actions: vec![action("tenant", "b", "b"), action("tenant", "a", "a")],
            warnings: vec!["tenant.z is created while tenant.y is deleted".into()],
            ..PlanPart::default()
        };
        c.part(catalog, None).unwrap();
        for t in order {
            c.part(tenant_part(t), None).unwrap();
        }
        c.finish(BTreeMap::new()).unwrap();
        c.into_run(false).plan
    }

    #[test]
    fn a_collected_plan_is_in_tenant_order_whatever_order_tenants_arrived_in() {
        let in_order = collect(&["a", "b", "c"]);
        let shuffled = collect(&["b", "c", "a"]);
        assert_eq!(shuffled, in_order);
        let addresses: Vec<&str> = shuffled
            .actions
            .iter()
            .map(|a| a.address.as_str())
            .collect();
        assert_eq!(
            addresses,
            [
                "tenant.b.b",
                "tenant.a.a",
                "guest.a.a",
                "directory_role.a.a",
                "guest.b.a",
                "directory_role.b.a",
                "guest.c.a",
                "directory_role.c.a"
            ]
        );
        assert_eq!(
            shuffled.warnings[0],
            "tenant.z is created while tenant.y is deleted"
        );
    }

    fn outcome(tenant: &str, outcome: crate::outcome::Outcome) -> crate::outcome::TenantOutcome {
        crate::outcome::TenantOutcome {
            tenant: tenant.into(),
            display_name: Some(format!("{tenant} Ltd")),
            microsoft_tenant_id: None,
            outcome,
            sources: [("guests".to_string(), crate::live::SourceStatus::Read)]
                .into_iter()
                .collect(),
        }
    }

    /// A plan for a terminal lists the tenants a reader needs to see (changes, failures,
    /// blocked actions) and only counts the rest, however the catalog's and the tenants' parts
    /// say it; the plan for JSON lists them all.
    #[test]
    fn a_plan_for_a_terminal_counts_tenants_with_nothing_to_do_without_listing_them() {
        use crate::outcome::{Cause, Failure, Outcome};
        let failed = || Outcome::Failed(Box::new(Failure::new(Cause::GraphError, "503")));
        let mut not_checked = outcome("e", Outcome::NothingToDo);
        not_checked.sources.insert(
            "roleAssignments".into(),
            crate::live::SourceStatus::NotChecked {
                reason: "not needed".into(),
            },
        );
        // The catalog renames `a` (changes there, nothing in its tenant part) and has nothing
        // for the others; the tenants' parts: `b` changes, `c` failed, `d` nothing to do, `e`
        // nothing to do with a source not checked (no P2 licence).
        let parts = || {
            let catalog = PlanPart {
                part: crate::plan::Part::Catalog,
                tenants: ["a", "b", "c", "d", "e"]
                    .map(|t| {
                        let o = if t == "a" {
                            Outcome::Changes
                        } else {
                            Outcome::NothingToDo
                        };
                        outcome(t, o)
                    })
                    .to_vec(),
                ..PlanPart::default()
            };
            let tenants = [
                outcome("a", Outcome::NothingToDo),
                outcome("b", Outcome::Changes),
                outcome("c", failed()),
                outcome("d", Outcome::NothingToDo),
                not_checked.clone(),
                outcome("f", Outcome::NothingToDo),
            ]
            .map(|o| PlanPart {
                // `f`'s only action is blocked (a delete without --allow-delete): nothing to
                // do, but it is listed to head its section.
                actions: (o.tenant == "f")
                    .then(|| {
                        let mut a = action("guest", "f", "old");
                        a.op = crate::plan::Op::Delete;
                        a.blocked = Some("deletes need --allow-delete".into());
                        a
                    })
                    .into_iter()
                    .collect(),
                tenants: vec![o],
                ..PlanPart::default()
            });
            std::iter::once(catalog).chain(tenants)
        };
        let mut terminal = PlanCollector::changes();
        let mut json = PlanCollector::everything();
        for c in [&mut terminal, &mut json] {
            c.begin(header()).unwrap();
            for part in parts() {
                c.part(part, None).unwrap();
            }
            c.finish(BTreeMap::new()).unwrap();
        }
        let (terminal, json) = (terminal.into_run(false).plan, json.into_run(false).plan);
        let names = |p: &Plan| {
            p.tenants
                .iter()
                .map(|t| t.tenant.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&terminal), ["a", "b", "c", "f"]);
        assert_eq!((terminal.tenants_unlisted, terminal.tenant_count()), (2, 6));
        assert_eq!(terminal.tenants[0].outcome, Outcome::Changes);
        assert_eq!(names(&json), ["a", "b", "c", "d", "e", "f"]);
        assert_eq!((json.tenants_unlisted, json.tenant_count()), (0, 6));
        assert_eq!(terminal.exit_code(false), 1);
        assert_eq!(json.exit_code(false), 1);
    }
}
