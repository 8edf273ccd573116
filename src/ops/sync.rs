//! `sync`: the end-user sync as one job: contacts only (no other kind is read, compared or
//! changed), no approval step (contacts are MSP-side records derived from Entra by rules
//! reviewed in git; the mass-removal guard stands in for a person), and a summary for
//! schedulers.
//!
//! It streams: each tenant is read, planned and applied in its own task (its partition locked
//! only while it is written), then let go, so a round over 1,000 tenants x 500 users holds
//! what `--parallelism` tenants hold, never the fleet's contacts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use super::apply::PartitionLedger;
use super::plan::{PlanCollector, PlanRequest, TenantApplier, plan_into_applying};
use super::{Need, OpsError, Reporter, Selection, Workspace};
use crate::apply::{ApplyEvent, Control, StateOnlyExecutor, blocking};
use crate::outcome::{Cause, Failure, Outcome, TenantOutcome};
use crate::plan::{Part, Plan, PlanHeader, PlanOptions, PlanPart, StateRef};
use crate::state::history::Provenance;
use crate::state::{LockInfo, Partition, Source, StateStore};

/// What one sync round is asked for.
pub struct SyncRequest<'a> {
    pub selection: &'a Selection,
    pub allow_mass_removal: bool,
    /// Also re-read which contact holds which licence where the holdings kept are older than
    /// this (`licence_holdings.<tenant>`; users/delta does not track licences).
    pub licences_every: Option<Duration>,
}

/// One round's result: each synced tenant's outcome (as applied) and what was done.
pub struct SyncRun {
    /// Tenants with changes or failures (the others are counted in `quiet`).
    pub outcomes: Vec<TenantOutcome>,
    /// Tenants synced with nothing to change.
    pub quiet: usize,
    pub totals: Totals,
    pub store: String,
    /// Tenants whose licence holdings were read again this round.
    pub licences_refreshed: usize,
}

/// What a round carried out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub created: usize,
    pub updated: usize,
    pub archived: usize,
    /// Changes held back (mass removal).
    pub blocked: usize,
    pub interrupted: bool,
}

/// Runs one round.
pub fn sync(
    ws: &mut Workspace,
    request: SyncRequest<'_>,
    stop: &AtomicBool,
    reporter: &dyn Reporter,
) -> Result<SyncRun, OpsError> {
    let options = PlanOptions {
        allow_mass_removal: request.allow_mass_removal,
        only_kinds: Some([crate::plan::contacts::CONTACT.to_string()].into()),
        ..PlanOptions::default()
    };
    let digest = ws.manifests.fleet.digest();
    let source = Source {
        digest: digest.clone(),
        commit: ws.manifests.commit.clone(),
    };
    let info = LockInfo::for_command(ws.settings.command_line.clone());
    // Tenant partitions hang off the catalog's lineage: a store nothing was ever applied to
    // gets one (an empty catalog; `apply` adds the tenant records).
    if ws.store.serials()?.lineage.is_empty() {
        let lock =
            ws.store
                .lock_partition(&Partition::Catalog, info.clone(), ws.settings.lock_timeout)?;
        let mut catalog = ws.store.load_partition(&Partition::Catalog)?;
        if catalog.lineage.is_empty() {
            catalog.ensure_lineage();
            ws.store
                .write_partition(&Partition::Catalog, &catalog, &lock)?;
        }
    }
    let provenance = Provenance::new(
        "sync",
        None,
        ws.manifests.commit.clone(),
        ws.settings.actor.clone(),
    );
    let header = PlanHeader {
        id: String::new(),
        manifests_digest: digest,
        state: StateRef {
            lineage: String::new(),
            serial: 0,
            partitions: BTreeMap::new(),
        },
        options: options.clone(),
    };
    let applier = SyncApplier {
        info: &info,
        timeout: ws.settings.lock_timeout,
        source: &source,
        provenance: &provenance,
        stop,
        header,
        reporter,
        totals: Mutex::new(Totals::default()),
    };
    let mut collect = PlanCollector::changes();
    plan_into_applying(
        ws,
        PlanRequest {
            options,
            changed_since: None,
            selection: request.selection,
            need: Need::Plan {
                command: "sync",
                offline: false,
            },
        },
        &mut collect,
        reporter,
        Some(&applier),
    )?;
    let plan = collect.into_run(false).plan;
    let totals = applier.totals.into_inner().expect("totals");
    let mut run = SyncRun {
        quiet: plan.tenants_unlisted,
        outcomes: plan.tenants,
        totals,
        store: ws.store.describe(),
        licences_refreshed: 0,
    };
    if let Some(every) = request.licences_every
        && !stop.load(std::sync::atomic::Ordering::SeqCst)
    {
        let selected = request.selection.resolve(&ws.manifests.fleet.catalog)?;
        let tenants: Vec<String> = ws
            .manifests
            .fleet
            .catalog
            .end_user_syncs
            .keys()
            .filter(|t| selected.as_ref().is_none_or(|s| s.contains(*t)))
            .filter(|t| {
                // A tenant whose users could not be read this round is failed already.
                !run.outcomes
                    .iter()
                    .any(|o| &o.tenant == *t && o.outcome.is_failed())
            })
            .cloned()
            .collect();
        let refreshed = crate::ops::licence_holdings::refresh_holdings(
            ws,
            &tenants,
            every,
            jiff::Timestamp::now(),
            reporter,
        )?;
        run.licences_refreshed = refreshed.refreshed;
        for (tenant, failure) in refreshed.failures {
            fail_tenant(&mut run, ws, &tenant, failure);
        }
    }
    Ok(run)
}

/// Applies each tenant's contacts as soon as they are planned.
struct SyncApplier<'a> {
    info: &'a LockInfo,
    timeout: Duration,
    source: &'a Source,
    provenance: &'a Provenance,
    stop: &'a AtomicBool,
    header: PlanHeader,
    reporter: &'a dyn Reporter,
    totals: Mutex<Totals>,
}

impl TenantApplier for SyncApplier<'_> {
    fn apply<'a>(
        &'a self,
        store: &'a (dyn StateStore + Send + Sync),
        part: PlanPart,
        planned_serial: u64,
    ) -> futures_util::future::BoxFuture<'a, PlanPart> {
        Box::pin(async move {
            let blocked = part.summary.blocked;
            let mut plan = Plan::new(self.header.clone());
            plan.add_part(part);
            let tenant = plan
                .tenants
                .first()
                .map(|t| t.tenant.clone())
                .unwrap_or_default();
            let outcomes = if plan.has_changes() {
                self.carry_out(store, &mut plan, &tenant, planned_serial)
                    .await
            } else {
                // Nothing to change: only a position to record, when the read moved it.
                let mut outcomes = plan.tenants.clone();
                for p in &plan.positions {
                    let recorded = blocking(|| {
                        super::apply::record_position_alone(
                            store,
                            self.info,
                            self.timeout,
                            &p.tenant,
                            &p.position,
                            self.source,
                        )
                    });
                    if let Err(e) = recorded {
                        for t in outcomes.iter_mut().filter(|t| t.tenant == p.tenant) {
                            t.outcome = Outcome::Failed(Box::new(Failure::new(
                                Cause::StateError,
                                e.to_string(),
                            )));
                        }
                    }
                }
                outcomes
            };
            self.totals.lock().expect("totals").blocked += blocked;
            PlanPart {
                part: Part::Tenants,
                positions: Vec::new(),
                // Carried out: what the sink keeps is the outcome, not the contacts.
                actions: Vec::new(),
                warnings: std::mem::take(&mut plan.warnings),
                not_read: std::mem::take(&mut plan.not_read),
                unmanaged: Vec::new(),
                tenants: outcomes,
                summary: Default::default(),
            }
        })
    }
}

impl SyncApplier<'_> {
    /// Applies one tenant's part under its partition's lock (stale if it changed since it was
    /// loaded for planning: the next round plans it again).
    async fn carry_out(
        &self,
        store: &(dyn StateStore + Send + Sync),
        plan: &mut Plan,
        tenant: &str,
        planned_serial: u64,
    ) -> Vec<TenantOutcome> {
        let planned: BTreeMap<Partition, u64> = match Partition::tenant(tenant) {
            Ok(p) => [(p, planned_serial)].into(),
            Err(e) => {
                return fail_all(plan, Failure::new(Cause::StateError, e.to_string()));
            }
        };
        let ledger =
            PartitionLedger::tenants_only(store, self.info, self.timeout, &planned, self.reporter);
        let on_event = |_: ApplyEvent| {};
        let control = Control {
            parallelism: 1,
            on_event: &on_event,
            stop: self.stop,
            provenance: self.provenance,
        };
        let report =
            crate::apply::apply_consuming(plan, &ledger, &StateOnlyExecutor, self.source, &control)
                .await;
        let mut totals = self.totals.lock().expect("totals");
        totals.created += report.created;
        totals.updated += report.updated;
        totals.archived += report.archived;
        totals.interrupted |= report.interrupted;
        drop(totals);
        report.outcomes(plan)
    }
}

/// Marks `tenant` failed in the round (its licences could not be refreshed): a quiet tenant
/// is listed now, a listed one keeps its place.
fn fail_tenant(run: &mut SyncRun, ws: &Workspace, tenant: &str, failure: Failure) {
    let failure = Failure {
        message: format!("licences: {}", failure.message),
        ..failure
    };
    if let Some(listed) = run.outcomes.iter_mut().find(|o| o.tenant == tenant) {
        listed.outcome = Outcome::Failed(Box::new(failure));
        return;
    }
    let record = ws.manifests.fleet.catalog.tenants.get(tenant);
    run.quiet = run.quiet.saturating_sub(1);
    run.outcomes.push(TenantOutcome {
        tenant: tenant.to_string(),
        display_name: record.map(|t| t.display_name.clone()),
        microsoft_tenant_id: record.and_then(|t| t.microsoft_tenant_id.clone()),
        outcome: Outcome::Failed(Box::new(failure)),
        sources: Default::default(),
    });
    run.outcomes.sort_by(|a, b| a.tenant.cmp(&b.tenant));
}

fn fail_all(plan: &Plan, failure: Failure) -> Vec<TenantOutcome> {
    plan.tenants
        .iter()
        .map(|t| TenantOutcome {
            outcome: Outcome::Failed(Box::new(failure.clone())),
            ..t.clone()
        })
        .collect()
}

/// One round as a scheduler or a PSA reads it (`sync --output json`, one line a round).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    pub started_at: String,
    pub finished_at: String,
    /// Tenants whose end users were synced (with or without changes), and failed ones.
    pub tenants: usize,
    pub created: usize,
    pub updated: usize,
    pub archived: usize,
    /// Changes held back (mass removal).
    pub blocked: usize,
    pub failed: Vec<FailedTenant>,
    /// Stopped (SIGTERM, Ctrl-C) before every change was made.
    pub interrupted: bool,
    /// Tenants whose licence holdings were read again (`--licences-every`).
    pub licences_refreshed: usize,
    pub exit_code: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedTenant {
    pub tenant: String,
    pub cause: Cause,
    /// Untrusted text (Graph's messages): escape before showing.
    pub message: String,
}

impl SyncSummary {
    /// The summary of `run`; its exit code by the rule every command uses.
    pub fn of(run: &SyncRun, started_at: String, finished_at: String) -> SyncSummary {
        let failed: Vec<FailedTenant> = run
            .outcomes
            .iter()
            .filter_map(|t| match &t.outcome {
                Outcome::Failed(f) => Some(FailedTenant {
                    tenant: t.tenant.clone(),
                    cause: f.cause,
                    message: f.describe(),
                }),
                _ => None,
            })
            .collect();
        SyncSummary {
            started_at,
            finished_at,
            tenants: run.outcomes.len() + run.quiet,
            created: run.totals.created,
            updated: run.totals.updated,
            archived: run.totals.archived,
            blocked: run.totals.blocked,
            interrupted: run.totals.interrupted,
            licences_refreshed: run.licences_refreshed,
            exit_code: crate::outcome::exit_code(&run.outcomes, false, false),
            failed,
        }
    }
}
