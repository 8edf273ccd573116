//! `drift`: a plan made with live Entra and deletes allowed, viewed as causes (pure), plus the
//! partner's customers nobody mapped.

use crate::drift::{DriftReport, PartnerCustomer};
use std::collections::BTreeMap;

use crate::drift::LiveFacts;
use crate::ops::plan::{PlanCollector, PlanRequest, PlanRun, PlanSink, TenantRead, plan_into};
use crate::ops::{Need, OpsError, Reporter, Selection, Workspace};
use crate::plan::{Plan, PlanOptions};
use crate::plan::{PlanHeader, PlanPart};
use crate::state::Partition;

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
    let PlanRun { plan, .. } = sink.plan.into_run(false);
    let live = connected.then_some(sink.facts);
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
