//! Carrying out a plan: in its order, each change journaled as soon as it is made.
//!
//! The world outside state is reached only through an [`Executor`]; MSP-side kinds have no
//! outside world (the state record is the change), so they use [`StateOnlyExecutor`]. An
//! interrupted apply leaves a journal from which the next run resumes: nothing done is
//! forgotten, nothing is done twice.

pub mod entra;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use crate::outcome::{Cause, Failure, Outcome, TenantOutcome};
use crate::plan::{Action, Op, Plan};
use crate::resources::kind;
use crate::state::{Journal, Source, State, StateChange, StateError, StateObject, now_rfc3339};

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
}

impl ApplyError {
    /// What it means for the tenant.
    pub fn failure(&self) -> Failure {
        match self {
            ApplyError::State(e) => Failure::new(Cause::StateError, e.to_string()),
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
                    Outcome::Failed(f.clone())
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
                    Outcome::Failed(why)
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
    action: &Action,
    stored: Option<StateObject>,
    executed: Executed,
    source: &Source,
) -> Option<StateChange> {
    match action.op {
        Op::Create | Op::Update | Op::Adopt => {
            let mut ids = stored.map(|s| s.ids).unwrap_or_default();
            ids.remove(PENDING_ID);
            for (k, v) in action.live_ids.iter().flatten().chain(executed.ids.iter()) {
                ids.insert(k.clone(), v.clone());
            }
            let object = StateObject {
                kind: action.kind.clone(),
                ids,
                attributes: action.after.clone().unwrap_or_default(),
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

/// What the tenants' workers share.
struct Shared<'a> {
    state: std::sync::Mutex<&'a mut State>,
    journal: std::sync::Mutex<&'a mut (dyn Journal + Send)>,
    report: std::sync::Mutex<ApplyReport>,
    on_event: &'a (dyn Fn(ApplyEvent) + Sync),
    /// Set by Ctrl-C / SIGTERM: no new change starts.
    stop: &'a AtomicBool,
}

impl Shared<'_> {
    /// Carries out one action against `local` (what the worker sees), then records it in the
    /// journal and in the shared state.
    async fn run(
        &self,
        action: &Action,
        local: &mut State,
        executor: &(dyn Executor + Sync),
        source: &Source,
    ) -> Result<(), ApplyError> {
        if action.blocked.is_some() {
            self.report.lock().expect("report").blocked += 1;
            (self.on_event)(ApplyEvent::Skipped(action));
            return Ok(());
        }
        (self.on_event)(ApplyEvent::Started(action));
        let stored_at = action.moved_from.as_deref().unwrap_or(&action.address);
        let stored = local.objects.get(stored_at).cloned();
        // Write-ahead: before creating something in Entra, journal the intent. If the process
        // dies before the result is recorded, the next plan knows the object it finds in Entra
        // is ours (and records it) rather than someone else's.
        let in_entra = crate::resources::kind(&action.kind).is_some_and(|k| k.live.is_some());
        if in_entra && action.op == Op::Create && stored.is_none() {
            let intent = StateChange::Put {
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
            };
            self.journal
                .lock()
                .expect("journal")
                .record(&intent, true)?;
            self.state.lock().expect("state").apply_change(&intent);
        }
        let executed = executor.execute(action, stored.as_ref(), local).await?;
        let done_address = action.address.clone();
        let external = executed.external;
        let Some(change) = record_of(action, stored, executed, source) else {
            return Ok(());
        };
        self.journal
            .lock()
            .expect("journal")
            .record(&change, external)?;
        self.state.lock().expect("state").apply_change(&change);
        local.apply_change(&change);
        let mut report = self.report.lock().expect("report");
        report.done.insert(done_address);
        match action.op {
            Op::Create => report.created += 1,
            Op::Update => report.updated += 1,
            Op::Delete => report.deleted += 1,
            Op::Adopt => report.adopted += 1,
            Op::NoOp => {}
        }
        drop(report);
        (self.on_event)(ApplyEvent::Done(action));
        Ok(())
    }

    fn failed(&self, action: &Action, error: ApplyError) {
        (self.on_event)(ApplyEvent::Failed(action, &error));
        self.report
            .lock()
            .expect("report")
            .errors
            .push((action.tenant.clone(), error));
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
}

/// How an apply runs: how many tenants at once, who hears about progress, and the flag that
/// stops it between changes (Ctrl-C, SIGTERM).
#[derive(Clone, Copy)]
pub struct Control<'a> {
    pub parallelism: usize,
    pub on_event: &'a (dyn Fn(ApplyEvent) + Sync),
    pub stop: &'a AtomicBool,
}

/// Applies `plan` to `state`, recording every change in `journal` as it is made.
///
/// Tenant and organization records go first (they are only state), then every tenant's
/// guests, roles and MSP roles in dependency order, `parallelism` tenants at a time, then
/// organization and tenant deletes. A failure stops its own tenant only.
pub async fn apply(
    plan: &Plan,
    state: &mut State,
    journal: &mut (dyn Journal + Send),
    executor: &(dyn Executor + Sync),
    source: &Source,
    control: &Control<'_>,
) -> ApplyReport {
    let Control {
        parallelism,
        on_event,
        stop,
    } = *control;
    let records = |a: &&Action| is_fleet_record(a);
    let changing: Vec<&Action> = plan.actions.iter().filter(|a| a.op != Op::NoOp).collect();
    let first: Vec<&Action> = changing
        .iter()
        .copied()
        .filter(|a| records(a) && a.op != Op::Delete)
        .collect();
    let last: Vec<&Action> = changing
        .iter()
        .copied()
        .filter(|a| records(a) && a.op == Op::Delete)
        .collect();
    let mut per_tenant: std::collections::BTreeMap<&str, Vec<&Action>> =
        std::collections::BTreeMap::new();
    for a in changing.iter().copied().filter(|a| !records(a)) {
        per_tenant.entry(a.tenant.as_str()).or_default().push(a);
    }
    let shared = Shared {
        state: std::sync::Mutex::new(state),
        journal: std::sync::Mutex::new(journal),
        report: std::sync::Mutex::new(ApplyReport::default()),
        on_event,
        stop,
    };
    let full_copy = |shared: &Shared| -> State {
        let state = shared.state.lock().expect("state");
        let mut local = state.clone_header();
        local.objects = state.objects.clone();
        local
    };
    // Records first, in order; a failure here stops everything (later work depends on it).
    let mut local = full_copy(&shared);
    for action in &first {
        if !shared.may_start() {
            return shared.report.into_inner().expect("report");
        }
        if let Err(e) = shared.run(action, &mut local, executor, source).await {
            shared.failed(action, e);
            return shared.report.into_inner().expect("report");
        }
    }
    drop(local);
    // Each tenant's worker sees its tenant record and its own objects: grouped in one pass.
    let mut views: std::collections::BTreeMap<&str, State> = std::collections::BTreeMap::new();
    {
        let state = shared.state.lock().expect("state");
        for tenant in per_tenant.keys() {
            let mut view = state.clone_header();
            if let Some(record) = state.objects.get(&format!("tenant.{tenant}")) {
                view.objects
                    .insert(format!("tenant.{tenant}"), record.clone());
            }
            views.insert(tenant, view);
        }
        for (address, object) in state.objects.iter() {
            let Some(k) = crate::resources::kind(&object.kind).filter(|k| k.name != "tenant")
            else {
                continue;
            };
            if let Some(view) = views.get_mut((k.tenant_of)(address, object).as_str()) {
                view.objects.insert(address.clone(), object.clone());
            }
        }
    }
    let work: Vec<(Vec<&Action>, State)> = per_tenant
        .into_iter()
        .map(|(t, actions)| {
            let view = views.remove(t).unwrap_or_default();
            (actions, view)
        })
        .collect();
    let shared = &shared;
    futures_util::stream::iter(work)
        .for_each_concurrent(parallelism.max(1), |(actions, mut local)| async move {
            let tenant = actions.first().map_or("", |a| a.tenant.as_str());
            let mut failed = false;
            for action in actions.iter() {
                if !shared.may_start() {
                    failed = true;
                    break;
                }
                if let Err(e) = shared.run(action, &mut local, executor, source).await {
                    shared.failed(action, e);
                    failed = true;
                    break;
                }
            }
            (shared.on_event)(ApplyEvent::TenantFinished { tenant, failed });
        })
        .await;
    let failed_tenants: BTreeSet<String> = shared
        .report
        .lock()
        .expect("report")
        .errors
        .iter()
        .map(|(tenant, _)| tenant.clone())
        .chain(plan.failed_tenants().map(|t| t.tenant.clone()))
        .collect();
    // Deletes of organizations and tenants last; never for a tenant whose work failed.
    let mut local = full_copy(shared);
    for action in last {
        if failed_tenants.contains(&action.tenant) {
            continue;
        }
        if !shared.may_start() {
            break;
        }
        if let Err(e) = shared.run(action, &mut local, executor, source).await {
            shared.failed(action, e);
            break;
        }
    }
    std::mem::take(&mut *shared.report.lock().expect("report"))
}
