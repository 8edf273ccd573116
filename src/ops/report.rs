//! `report`: the fleet report's reads. Drift first (the plan's live reads of every selected
//! tenant: read status, consent, drift findings, pending invitations, undeclared privileged
//! access), then, on the same connection, each tenant's licences, Secure Score and sign-in
//! posture, reduced to what the report shows as each tenant's read ends (a tenant's users are
//! never all held at once with another's), its Secure Score history kept in state, MSP role
//! grants and last applies from state. The pure `report::assemble` makes the report.

use std::sync::Arc;

use crate::graph::licences::read_licences;
use crate::graph::posture::read_posture;
use crate::graph::secure_score::read_secure_score;
use crate::licences::{FindingOptions, findings, seats_by_organization, summarize};
use crate::ops::drift::{DriftRequest, DriftRun, drift};
use crate::ops::fleet_read::read_each;
use crate::ops::{OpsError, Reporter, Selection, Workspace};
use crate::outcome::Failure;
use crate::posture::Posture;
use crate::report::{FleetReport, LicenceView, ScoreView, TenantParts, assemble};
use crate::state::{Partition, State, StateStore};

pub struct ReportRequest<'a> {
    pub selection: &'a Selection,
    pub today: jiff::civil::Date,
    /// Invitations pending longer than this are drift.
    pub pending_days: i64,
    pub replication_window_secs: u64,
    pub licence_options: FindingOptions,
    /// Open controls listed per tenant.
    pub top_controls: usize,
}

pub struct ReportRun {
    pub report: FleetReport,
    /// Tenants not (wholly) read, by name, with why: the run fails.
    pub unread: Vec<(String, String)>,
}

/// What one tenant's live reads gave, already reduced.
struct TenantLive {
    licences: Result<LicenceView, Failure>,
    score: Result<crate::ops::score_history::ScoreReduced, Failure>,
    posture: Result<Posture, Failure>,
}

pub fn fleet_report(
    ws: &mut Workspace,
    request: ReportRequest<'_>,
    reporter: &dyn Reporter,
) -> Result<ReportRun, OpsError> {
    let DriftRun {
        plan: _,
        report: drift_report,
    } = drift(
        ws,
        DriftRequest {
            selection: request.selection,
            replication_window_secs: request.replication_window_secs,
            today: request.today,
            pending_days: request.pending_days,
        },
        reporter,
    )?;
    // The drift report lists every tenant it knows (the manifests' and state's); the report
    // covers the selected ones, each whether or not the manifests still declare it.
    let catalog = &ws.manifests.fleet.catalog;
    let only = request.selection.resolve(catalog)?;
    let selected: Vec<String> = drift_report
        .tenants
        .iter()
        .map(|t| t.tenant.clone())
        .filter(|t| only.as_ref().is_none_or(|only| only.contains(t)))
        .collect();
    let mut parts: std::collections::BTreeMap<String, TenantParts> = selected
        .iter()
        .map(|name| {
            let declared = catalog.tenants.get(name);
            // A tenant no longer declared shows with its drift (what removing it would do).
            let part = TenantParts {
                name: name.clone(),
                display_name: declared.map(|t| t.display_name.clone()),
                microsoft_tenant_id: declared.and_then(|t| t.microsoft_tenant_id.clone()),
                ..TenantParts::default()
            };
            (name.clone(), part)
        })
        .collect();
    let mapped: Vec<String> = parts
        .values()
        .filter(|p| p.microsoft_tenant_id.is_some())
        .map(|p| p.name.clone())
        .collect();
    let store: Arc<dyn StateStore + Send + Sync> = ws.store.clone();
    let options = request.licence_options.clone();
    let top_controls = request.top_controls;
    let names: std::collections::HashMap<String, String> = parts
        .values()
        .filter_map(|p| Some((p.microsoft_tenant_id.clone()?, p.name.clone())))
        .collect();
    let fleet = if mapped.is_empty() {
        None
    } else {
        Some(read_each(
            ws,
            &mapped,
            "report",
            reporter,
            |client, tid| {
                let store = store.clone();
                let options = options.clone();
                let tenant = names.get(&tid).cloned().unwrap_or_default();
                async move {
                    let (licences, score, posture) = futures_util::future::join3(
                        read_licences(&client, &tid),
                        read_secure_score(&client, &tid),
                        read_posture(&client, &tid),
                    )
                    .await;
                    let licences = match licences {
                        Ok(read) => {
                            // The contacts' organizations, a tenant at a time, off the runtime.
                            let organizations = tokio::task::spawn_blocking(move || {
                                crate::ops::contacts::organizations_by_user(store.as_ref(), &tenant)
                            })
                            .await
                            .expect("the contacts' read does not panic");
                            let skus = summarize(&read.skus, &read.subscriptions);
                            match organizations {
                                Ok(organizations) => Ok(LicenceView {
                                    findings: findings(&skus, &read.users, &options),
                                    by_organization: seats_by_organization(
                                        &skus,
                                        &read.users,
                                        &|id| organizations.get(id).cloned(),
                                    ),
                                    skus,
                                }),
                                Err(e) => Err(Failure::new(
                                    crate::outcome::Cause::StateError,
                                    format!("its contacts could not be read: {e}"),
                                )),
                            }
                        }
                        Err(e) => Err(e.failure()),
                    };
                    Ok(TenantLive {
                        licences,
                        score: score
                            .map(|read| {
                                crate::ops::score_history::ScoreReduced::of(read, top_controls)
                            })
                            .map_err(|e| e.failure()),
                        posture: posture.map_err(|e| e.failure()),
                    })
                }
            },
        )?)
    };
    let mut reads = Vec::new();
    let mut latest = std::collections::HashMap::new();
    if let Some(fleet) = fleet {
        for (name, failure) in fleet.failures {
            if let Some(p) = parts.get_mut(&name) {
                p.problems.push(failure.describe());
            }
        }
        for (name, _, live) in fleet.read {
            let Some(p) = parts.get_mut(&name) else {
                continue;
            };
            match live.licences {
                Ok(view) => p.licences = Some(view),
                Err(f) => p.problems.push(format!("licences: {}", f.describe())),
            }
            match live.posture {
                Ok(posture) => p.posture = Some(posture),
                Err(f) => p
                    .problems
                    .push(format!("sign-in posture: {}", f.describe())),
            }
            match live.score {
                Ok(read) => {
                    latest.insert(name.clone(), (read.latest, read.top));
                    reads.push((name, read.days));
                }
                Err(f) => {
                    p.problems.push(format!("Secure Score: {}", f.describe()));
                    // The days kept still show, as of their last day.
                    if let Ok(history) = crate::ops::score_history::stored_history(
                        ws.store.as_ref(),
                        &name,
                        &crate::ops::score_history::former_names(ws, &name),
                    ) && !history.is_empty()
                    {
                        p.secure_score = Some(ScoreView::of(&history, None, Vec::new()));
                    }
                }
            }
        }
    }
    for (name, recorded) in crate::ops::score_history::record_histories(ws, reads)? {
        let history = match recorded {
            Ok(r) => r.history,
            Err((days, failure)) => {
                if let Some(p) = parts.get_mut(&name) {
                    p.problems.push(failure.describe());
                }
                days
            }
        };
        let (last, top) = latest.remove(&name).unwrap_or_default();
        if let Some(p) = parts.get_mut(&name) {
            p.secure_score = Some(ScoreView::of(&history, last.as_ref(), top));
        }
    }
    let stored = stored_records(ws.store.as_ref(), &selected)?;
    for (name, p) in parts.iter_mut() {
        p.last_apply = stored
            .objects
            .get(&crate::resources::address("tenant", name))
            .map(|o| o.applied_at.clone());
    }
    let access = crate::access::grants(&stored);
    let parts: Vec<TenantParts> = parts.into_values().collect();
    let report = assemble(
        crate::state::now_rfc3339(),
        request.today.to_string(),
        ws.manifests.commit.clone(),
        parts,
        Some(&drift_report),
        access,
    );
    let unread = report
        .tenants
        .iter()
        .filter(|t| t.status == "not-read" || t.status == "consent-needed")
        .map(|t| {
            (
                t.name.clone(),
                if t.problems.is_empty() {
                    t.status.replace('-', " ")
                } else {
                    t.problems.join("; ")
                },
            )
        })
        .collect();
    Ok(ReportRun { report, unread })
}

/// Tenant records (catalog) and the selected tenants' MSP roles: what the access section and
/// last applies need, without anyone's contacts.
fn stored_records(store: &dyn StateStore, tenants: &[String]) -> Result<State, OpsError> {
    let mut state =
        store.load_partition_only(&Partition::Catalog, &|a| a.starts_with("tenant."))?;
    for tenant in tenants {
        let roles = store
            .load_partition_only(&Partition::tenant(tenant)?, &|a| a.starts_with("msp_role."))?;
        state.objects.extend(roles.objects);
    }
    Ok(state)
}
