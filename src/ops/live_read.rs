//! Reading live Entra for a plan: the tenants the manifests need, read while state loads, then
//! the tenants only state knows about (objects no longer desired).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use crate::graph::read::{TenantToRead, read_tenants};
use crate::live::{LiveSnapshot, LiveTenant};
use crate::model::DesiredModel;
use crate::ops::settings::GraphSettings;
use crate::ops::workspace::{Connection, desired_live_tenants};
use crate::ops::{OpsError, Phase, Reporter};
use crate::state::State;

/// What to read.
pub struct LiveScope<'a> {
    pub model: &'a DesiredModel,
    /// Every tenant mapped to a Microsoft tenant, not only those with desired Entra objects
    /// (drift checks privileged access even where nothing is declared).
    pub every_mapped: bool,
    /// The tenants in the plan's scope (`None`: all).
    pub only: Option<&'a BTreeSet<String>>,
}

/// Loads state (with `load`, on another thread) while the manifests' tenants are read, then
/// reads the tenants only that state has Entra objects in.
pub fn read_live<T: Borrow<State> + Send>(
    connection: &Connection,
    graph: &GraphSettings,
    scope: &LiveScope<'_>,
    reporter: &dyn Reporter,
    load: impl FnOnce() -> Result<T, OpsError> + Send,
) -> Result<(T, LiveSnapshot), OpsError> {
    let in_scope = |name: &str| scope.only.is_none_or(|s| s.contains(name));
    let mut tenants = desired_live_tenants(scope.model);
    tenants.retain(|name, _| in_scope(name));
    if scope.every_mapped {
        for t in scope.model.tenants.values().filter(|t| in_scope(&t.name)) {
            if let Some(id) = &t.microsoft_tenant_id {
                tenants.insert(t.name.clone(), id.clone());
            }
        }
    }
    let started: BTreeSet<String> = tenants.keys().cloned().collect();
    reporter.phase_started(Phase::ReadingEntra, tenants.len());
    let on_read =
        |_: &str, live: &LiveTenant| reporter.tenant_done(Phase::ReadingEntra, live.is_failed());
    // The sources every live kind needs, and the report-only ones.
    let sources = crate::graph::sources::for_kinds(crate::resources::KINDS);
    let read = |tenants| {
        connection.runtime.block_on(read_tenants(
            &connection.client,
            to_read(tenants),
            &sources,
            graph.parallelism,
            &graph.consent_redirect_uri,
            Some(&on_read),
        ))
    };
    let (loaded, mut snapshot) = std::thread::scope(|s| {
        let loading = s.spawn(load);
        let snapshot = read(tenants);
        (loading.join().expect("state loading thread"), snapshot)
    });
    let loaded = loaded?;
    let mut rest = stored_live_tenants(scope.model, loaded.borrow());
    rest.retain(|name, _| !started.contains(name) && in_scope(name));
    if !rest.is_empty() {
        reporter.phase_grew(Phase::ReadingEntra, rest.len());
        snapshot.tenants.extend(read(rest).tenants);
    }
    reporter.phase_finished(Phase::ReadingEntra);
    Ok((loaded, snapshot))
}

/// The tenants of Entra objects recorded in state (they may no longer be desired).
fn stored_live_tenants(model: &DesiredModel, state: &State) -> BTreeMap<String, String> {
    let mut tenants = BTreeMap::new();
    for k in crate::resources::KINDS.iter().filter(|k| k.live.is_some()) {
        for (address, object) in state.objects_of_kind(k.name) {
            let tenant = (k.tenant_of)(address, object);
            let id = model
                .tenants
                .get(&tenant)
                .and_then(|t| t.microsoft_tenant_id.clone())
                .or_else(|| {
                    state
                        .objects
                        .get(&format!("tenant.{tenant}"))
                        .and_then(|t| t.attributes.get("microsoftTenantId"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                });
            if let Some(id) = id {
                tenants.insert(tenant, id);
            }
        }
    }
    tenants
}

fn to_read(tenants: BTreeMap<String, String>) -> Vec<TenantToRead> {
    tenants
        .into_iter()
        .map(|(name, microsoft_tenant_id)| TenantToRead {
            name,
            microsoft_tenant_id,
        })
        .collect()
}
