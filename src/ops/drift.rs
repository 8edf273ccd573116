//! `drift`: a plan made with live Entra and deletes allowed, viewed as causes (pure), plus the
//! partner's customers nobody mapped, and each tenant's `TenantPolicy` checked against its
//! licences and Secure Score read live (for tenants with a policy only).

use crate::drift::{DriftReport, PartnerCustomer};
use std::collections::BTreeMap;

use crate::drift::{LiveFacts, PolicyFacts};
use crate::graph::licences::read_licences;
use crate::graph::secure_score::read_secure_score;
use crate::licences::{findings, summarize};
use crate::ops::fleet_read::read_each;
use crate::ops::plan::{PlanCollector, PlanRequest, PlanRun, PlanSink, TenantRead, plan_into};
use crate::ops::score_history::record_histories;
use crate::ops::{Need, OpsError, Reporter, Selection, Workspace};
use crate::outcome::{Failure, Outcome, TenantOutcome};
use crate::plan::{Plan, PlanOptions};
use crate::plan::{PlanHeader, PlanPart};
use crate::policy::TenantPolicy;
use crate::secure_score::DailyScore;
use crate::state::Partition;
use std::collections::HashMap;

pub struct DriftRequest<'a> {
    pub selection: &'a Selection,
    /// Replication window (seconds): newer objects Entra does not show yet are pending.
    pub replication_window_secs: u64,
    /// The day exception expiry and pending invitations are judged on.
    pub today: jiff::civil::Date,
    /// Invitations pending longer than this are drift.
    pub pending_days: i64,
}

pub struct DriftRun {
    pub plan: Plan,
    pub report: DriftReport,
}

pub fn drift(
    ws: &mut Workspace,
    request: DriftRequest<'_>,
    reporter: &dyn Reporter,
) -> Result<DriftRun, OpsError> {
    let options = PlanOptions {
        allow_delete: true,
        replication_window_secs: request.replication_window_secs,
        ..PlanOptions::default()
    };
    // Drift keeps what it reports (changes, notes, privileged findings), not the fleet: each
    // tenant's live read is turned into facts and dropped as the plan streams.
    let mut sink = DriftSink {
        plan: PlanCollector::everything(),
        facts: LiveFacts::default(),
        today: request.today,
        max_pending_days: request.pending_days,
    };
    plan_into(
        ws,
        PlanRequest {
            options,
            changed_since: None,
            selection: request.selection,
            need: Need::Always { command: "drift" },
        },
        &mut sink,
        reporter,
    )?;
    let connected = ws.connection.is_some();
    let PlanRun { mut plan, .. } = sink.plan.into_run(false);
    let mut facts = sink.facts;
    if connected {
        facts.policies = check_policies(ws, &mut plan, request.today, reporter)?;
    }
    let live = connected.then_some(facts);
    let customers = partner_customers(ws)?;
    let report = crate::drift::report(
        &plan,
        &ws.manifests.fleet.catalog,
        ws.manifests.commit.clone(),
        request.today,
        request.pending_days,
        customers.as_deref(),
        live.as_ref(),
    );
    Ok(DriftRun { plan, report })
}

/// What a tenant's policy needs of its reads, reduced as each read ends (the SKU summary and
/// findings, not the users; the days, not their per-control points), so checking a fleet
/// holds what `--parallelism` tenants' reads hold.
struct PolicyRead {
    licences: Option<(
        Vec<crate::licences::SkuSummary>,
        Vec<crate::licences::Finding>,
    )>,
    score: Option<Vec<DailyScore>>,
}

/// Checks the policy of each tenant in the plan's scope that has one: its licences and Secure
/// Score read live (only what its expectations need, both in one go), the Secure Score kept in
/// state's history (so 7-day drops see days Microsoft no longer lists), then the pure check. A
/// tenant whose reads fail, or whose history could not be kept, fails the run by name (its
/// outcome in `plan`), never passes silently.
fn check_policies(
    ws: &mut Workspace,
    plan: &mut Plan,
    today: jiff::civil::Date,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, PolicyFacts>, OpsError> {
    let catalog = &ws.manifests.fleet.catalog;
    let in_scope = |t: &String| {
        plan.options
            .only_tenants
            .as_ref()
            .is_none_or(|only| only.contains(t))
    };
    let policies: BTreeMap<String, TenantPolicy> = catalog
        .tenant_policies
        .iter()
        .filter(|(t, _)| in_scope(t))
        .map(|(t, p)| (t.clone(), p.clone()))
        .collect();
    if policies.is_empty() {
        return Ok(BTreeMap::new());
    }
    // By Microsoft tenant id, since that is what each read is given.
    let needs: HashMap<String, (bool, bool, crate::licences::FindingOptions)> = policies
        .iter()
        .filter_map(|(t, p)| {
            let id = catalog.tenants.get(t)?.microsoft_tenant_id.clone()?;
            Some((
                id,
                (
                    p.needs_licences(),
                    p.needs_secure_score(),
                    p.finding_options(today),
                ),
            ))
        })
        .collect();
    let needs = &needs;
    let tenants: Vec<String> = policies.keys().cloned().collect();
    let fleet = read_each(ws, &tenants, "drift", reporter, |client, tid| {
        let (licences, score, options) = needs
            .get(&tid)
            .cloned()
            .map_or((false, false, None), |(l, s, o)| (l, s, Some(o)));
        async move {
            let read_licences = async {
                match (licences, options) {
                    (true, Some(options)) => {
                        let read = read_licences(&client, &tid).await?;
                        let skus = summarize(&read.skus, &read.subscriptions);
                        let found = findings(&skus, &read.users, &options);
                        Ok(Some((skus, found)))
                    }
                    _ => Ok(None),
                }
            };
            let read_score = async {
                match score {
                    true => {
                        let mut days = read_secure_score(&client, &tid).await?.days;
                        for day in &mut days {
                            day.controls = Vec::new();
                        }
                        Ok(Some(days))
                    }
                    false => Ok(None),
                }
            };
            let (licences, score) = futures_util::future::join(read_licences, read_score).await;
            Ok(PolicyRead {
                licences: licences?,
                score: score?,
            })
        }
    })?;
    let mut facts = BTreeMap::new();
    let mut failed: Vec<(String, Failure)> = Vec::new();
    for (tenant, failure) in fleet.failures {
        let policy = policies[&tenant].name.clone();
        failed.push((tenant.clone(), not_checked(&policy, &failure)));
        facts.insert(tenant, PolicyFacts::NotChecked { policy, failure });
    }
    let mut score_reads = Vec::new();
    let mut licence_reads = BTreeMap::new();
    for (tenant, _, read) in fleet.read {
        if let Some(days) = read.score {
            score_reads.push((tenant.clone(), days));
        }
        licence_reads.insert(tenant, read.licences);
    }
    let mut histories: BTreeMap<String, Vec<DailyScore>> = BTreeMap::new();
    for (tenant, recorded) in record_histories(ws, score_reads)? {
        let history = match recorded {
            Ok(recorded) => recorded.history,
            // Checked on the days read; the tenant still fails: its history was not kept.
            Err((days, failure)) => {
                failed.push((
                    tenant.clone(),
                    not_checked(&policies[&tenant].name, &failure),
                ));
                days
            }
        };
        histories.insert(tenant, history);
    }
    for (tenant, licences) in licence_reads {
        let policy = &policies[&tenant];
        let (skus, findings) = licences.unwrap_or_default();
        let history = histories.remove(&tenant).unwrap_or_default();
        let checked = crate::policy::check(policy, &skus, &findings, &history);
        facts.insert(
            tenant,
            PolicyFacts::Checked {
                policy: policy.name.clone(),
                checked,
            },
        );
    }
    let catalog = &ws.manifests.fleet.catalog;
    for (tenant, failure) in failed {
        let known = catalog.tenants.get(&tenant);
        plan.add_part(PlanPart {
            tenants: vec![TenantOutcome {
                display_name: known.map(|t| t.display_name.clone()),
                microsoft_tenant_id: known.and_then(|t| t.microsoft_tenant_id.clone()),
                tenant,
                outcome: Outcome::Failed(Box::new(failure)),
                sources: Default::default(),
            }],
            ..PlanPart::default()
        });
    }
    Ok(facts)
}

/// The tenant's failure as the run names it: which policy could not be checked, and why.
fn not_checked(policy: &str, failure: &Failure) -> Failure {
    Failure {
        message: format!("TenantPolicy {policy} not checked: {}", failure.message),
        ..failure.clone()
    }
}

/// The partner's customers, when Graph is configured with a partner (home) tenant.
fn partner_customers(ws: &Workspace) -> Result<Option<Vec<PartnerCustomer>>, OpsError> {
    let Some(connection) = &ws.connection else {
        return Ok(None);
    };
    let Some(home) = connection.client.config().home_tenant_id.clone() else {
        return Ok(None);
    };
    let contracts = connection
        .runtime
        .block_on(connection.client.get_all(&home, "/contracts"))
        .map_err(|error| OpsError::Graph {
            context: "reading the partner's customers",
            error,
        })?;
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok(Some(
        contracts
            .iter()
            .map(|c| PartnerCustomer {
                customer_id: text(c, "customerId"),
                display_name: text(c, "displayName"),
                domain: text(c, "defaultDomainName"),
            })
            .collect(),
    ))
}

/// The plan's changes, and from each tenant's live read the facts drift reports.
struct DriftSink {
    plan: PlanCollector,
    facts: LiveFacts,
    today: jiff::civil::Date,
    max_pending_days: i64,
}

impl PlanSink for DriftSink {
    fn begin(&mut self, header: PlanHeader) -> Result<(), OpsError> {
        self.plan.begin(header)
    }

    fn part(&mut self, mut part: PlanPart, read: Option<TenantRead>) -> Result<(), OpsError> {
        if let Some(read) = &read {
            self.facts.add(&read.desired, &read.tenant, &read.live);
        }
        // Unchanged objects matter only when their note is a finding.
        part.actions.retain(|a| {
            a.op != crate::plan::Op::NoOp
                || a.note.as_deref().is_some_and(|n| {
                    crate::drift::note_is_finding(n, self.today, self.max_pending_days)
                })
        });
        self.plan.part(part, None)
    }

    fn finish(&mut self, partitions: BTreeMap<Partition, u64>) -> Result<(), OpsError> {
        self.plan.finish(partitions)
    }
}
