//! Consent for customers in a person's name (issue 17): when tenantform runs with a
//! delegated credential (`--auth azure-cli`, e.g. an MSP engineer with GDAP roles in the
//! customer tenants), `plan` and `apply` plan per selected tenant the service principal of
//! tenantform's app and one Microsoft Graph app role assignment per permission the
//! manifests' kinds need there (`consent::plan_tenant`), and `apply` makes them. With the
//! app's own credential nothing about consent is planned: a tenant without consent is
//! "consent needed" with its URL, as before.
//!
//! Consent keeps nothing in state: each run reads what the tenant has, so it is convergent
//! (a re-run after a crash plans only what is still missing) and never duplicates.

use futures_util::StreamExt;

use crate::consent::{ConsentChange, ConsentOp, LiveConsent, plan_tenant, tenant_needs};
use crate::graph::client::GraphClient;
use crate::outcome::Failure;

use super::{Need, OpsError, Selection, Workspace};

/// One tenant's consent: what is planned there, or why it could not be read.
#[derive(Clone, Debug)]
pub struct TenantConsent {
    pub tenant: String,
    pub display_name: String,
    pub microsoft_tenant_id: String,
    pub changes: Vec<ConsentChange>,
    /// The read failed: nothing is planned for the tenant, and the run fails.
    pub failure: Option<Failure>,
}

impl TenantConsent {
    /// `acme (Acme Ltd)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.tenant, self.display_name)
    }
}

/// Consent planned for the selected tenants (in name order).
#[derive(Clone, Debug, Default)]
pub struct ConsentPlan {
    pub tenants: Vec<TenantConsent>,
}

impl ConsentPlan {
    pub fn has_changes(&self) -> bool {
        self.tenants.iter().any(|t| !t.changes.is_empty())
    }
    pub fn changes(&self) -> impl Iterator<Item = &ConsentChange> {
        self.tenants.iter().flat_map(|t| &t.changes)
    }
    pub fn failed(&self) -> impl Iterator<Item = &TenantConsent> {
        self.tenants.iter().filter(|t| t.failure.is_some())
    }
}

/// How one tenant's consent apply ended: the changes made, and the first failure (which
/// stops the tenant's other consent changes).
#[derive(Clone, Debug)]
pub struct ConsentDone {
    pub tenant: String,
    pub display_name: String,
    pub made: Vec<String>,
    pub failure: Option<Failure>,
}

/// The app consent is for: the configured client id, unless the Azure CLI's own (no
/// AZURE_CLIENT_ID: there is no app of tenantform's to consent to).
fn consented_app(client: &GraphClient) -> Option<String> {
    let config = client.config();
    (config.is_delegated() && config.client_id != crate::graph::credentials::AZURE_CLI_APP_ID)
        .then(|| config.client_id.clone())
}

/// Plans consent for the selected, mapped tenants when the credential is a person's with
/// AZURE_CLIENT_ID naming tenantform's app; `None` otherwise (nothing about consent is
/// planned). Connects if the workspace is not connected yet.
pub fn plan(
    ws: &mut Workspace,
    selection: &Selection,
    need: Need<'_>,
) -> Result<Option<ConsentPlan>, OpsError> {
    if ws.connection.is_none() {
        ws.connection =
            super::workspace::connect_fleet(&ws.settings, &ws.manifests.fleet, None, need)?;
    }
    let Some(connection) = &ws.connection else {
        return Ok(None);
    };
    let Some(client_id) = consented_app(&connection.client) else {
        return Ok(None);
    };
    let fleet = &ws.manifests.fleet;
    let model = &fleet.catalog;
    let only = selection.resolve(model)?;
    let mut targets = Vec::new();
    for t in model.tenants.values() {
        if only.as_ref().is_some_and(|only| !only.contains(&t.name)) {
            continue;
        }
        let Some(id) = t.microsoft_tenant_id.clone() else {
            continue;
        };
        let slice = fleet
            .slice(&t.name)
            .map_err(OpsError::io(crate::model::STORE_PATH))?;
        let needs = tenant_needs(&slice, &t.name, model.tenant_policies.get(&t.name));
        targets.push((t.name.clone(), t.display_name.clone(), id, needs));
    }
    let client = connection.client.clone();
    let parallelism = ws.settings.graph.parallelism.max(1);
    let mut tenants: Vec<TenantConsent> = connection.runtime.block_on(
        futures_util::stream::iter(targets)
            .map(|(tenant, display_name, id, needs)| {
                let client = client.clone();
                let client_id = client_id.clone();
                async move {
                    let (changes, failure) =
                        match crate::graph::consent::read(&client, &id, &client_id).await {
                            Ok(live) => (plan_tenant(&tenant, &needs, &live), None),
                            Err(e) => (Vec::new(), Some(e.failure())),
                        };
                    TenantConsent {
                        tenant,
                        display_name,
                        microsoft_tenant_id: id,
                        changes,
                        failure,
                    }
                }
            })
            .buffer_unordered(parallelism)
            .collect(),
    );
    tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    Ok(Some(ConsentPlan { tenants }))
}

/// Makes the planned consent, tenants concurrently, each tenant's changes in order (the
/// service principal first; its grants after reading the tenant again, so they name the
/// principal as it now is). A tenant stops at its first failure; `stop` is checked before
/// each change.
pub fn apply(
    ws: &Workspace,
    plan: &ConsentPlan,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<ConsentDone> {
    let Some(connection) = &ws.connection else {
        return Vec::new();
    };
    let Some(client_id) = consented_app(&connection.client) else {
        return Vec::new();
    };
    let client = connection.client.clone();
    let parallelism = ws.settings.graph.parallelism.max(1);
    let work = plan.tenants.iter().filter(|t| !t.changes.is_empty());
    let mut done: Vec<ConsentDone> = connection.runtime.block_on(
        futures_util::stream::iter(work)
            .map(|t| {
                let client = client.clone();
                let client_id = client_id.clone();
                async move { apply_tenant(&client, &client_id, t, stop).await }
            })
            .buffer_unordered(parallelism)
            .collect(),
    );
    done.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    done
}

async fn apply_tenant(
    client: &GraphClient,
    client_id: &str,
    t: &TenantConsent,
    stop: &std::sync::atomic::AtomicBool,
) -> ConsentDone {
    let mut out = ConsentDone {
        tenant: t.tenant.clone(),
        display_name: t.display_name.clone(),
        made: Vec::new(),
        failure: None,
    };
    let id = &t.microsoft_tenant_id;
    let mut live: Option<LiveConsent> = None;
    for change in &t.changes {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            out.failure = Some(Failure {
                cause: crate::outcome::Cause::Interrupted,
                message: "interrupted before consent was complete".into(),
                code: None,
                request_id: None,
                consent_url: None,
                source: None,
            });
            return out;
        }
        let result = match &change.op {
            ConsentOp::ServicePrincipal => {
                crate::graph::consent::create_principal(client, id, client_id).await
            }
            ConsentOp::Grant { app_role_id, .. } => {
                if live.is_none() {
                    match crate::graph::consent::read(client, id, client_id).await {
                        Ok(read) => live = Some(read),
                        Err(e) => {
                            out.failure = Some(e.failure());
                            return out;
                        }
                    }
                }
                let live = live.as_ref().expect("read above");
                crate::graph::consent::grant(client, id, live, client_id, app_role_id).await
            }
        };
        match result {
            Ok(()) => out.made.push(change.address.clone()),
            Err(e) => {
                let mut failure = e.failure();
                failure.message = format!("{}: {}", change.address, failure.message);
                out.failure = Some(failure);
                return out;
            }
        }
    }
    out
}
