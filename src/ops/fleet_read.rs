//! Reading something from each selected tenant, concurrently, for the report commands
//! (`licenses`, `secure-score`): the tenants by name (every mapped one when none is named),
//! one read each with bounded concurrency, and the tenants that could not be read with why.
//! None is half-read: a read either gives its whole result or fails the tenant.

use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;

use crate::graph::{GraphClient, GraphClientError};
use crate::ops::workspace::connect_required;
use crate::ops::{OpsError, Phase, Reporter, Workspace};
use crate::outcome::{Cause, Failure};

/// A tenant read (name, Microsoft tenant id, result) or not (name, why).
type TenantResult<T> = Result<(String, String, T), (String, Failure)>;

/// What each tenant's read gave.
pub struct FleetRead<T> {
    /// Tenants read: (name, Microsoft tenant id, result), in name order.
    pub read: Vec<(String, String, T)>,
    /// Tenants not read, by name, with why.
    pub failures: Vec<(String, Failure)>,
    /// Selected tenants with no Microsoft tenant id (nothing to read).
    pub unmapped: Vec<String>,
    pub requests: u64,
    pub token_requests: u64,
}

/// Runs `read` for each tenant named in `tenants` (every tenant when empty) that is mapped to
/// a Microsoft tenant, on the workspace's connection (made when it has none); `command` names
/// the command in "no credentials" errors.
pub fn read_each<T, F, Fut>(
    ws: &mut Workspace,
    tenants: &[String],
    command: &str,
    reporter: &dyn Reporter,
    read: F,
) -> Result<FleetRead<T>, OpsError>
where
    F: Fn(Arc<GraphClient>, String) -> Fut,
    Fut: Future<Output = Result<T, GraphClientError>>,
{
    let catalog = &ws.manifests.fleet.catalog;
    for name in tenants {
        if !catalog.tenants.contains_key(name) {
            return Err(OpsError::UnknownTenant {
                name: name.clone(),
                suggestion: crate::diagnostic::did_you_mean(&crate::diagnostic::nearest(
                    name,
                    catalog.tenants.keys().map(String::as_str),
                )),
            });
        }
    }
    let selected: Vec<&crate::model::Tenant> = catalog
        .tenants
        .values()
        .filter(|t| tenants.is_empty() || tenants.contains(&t.name))
        .collect();
    let unmapped: Vec<String> = selected
        .iter()
        .filter(|t| t.microsoft_tenant_id.is_none())
        .map(|t| t.name.clone())
        .collect();
    let mapped: Vec<(String, String)> = selected
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.microsoft_tenant_id.clone()?)))
        .collect();
    // A command that is connected already (drift, after its plan) reads on that connection.
    let connection = match ws.connection.take() {
        Some(connection) => connection,
        None => connect_required(&ws.settings, catalog, command)?,
    };
    let client = connection.client.clone();
    let redirect = ws.settings.graph.consent_redirect_uri.clone();
    reporter.phase_started(Phase::ReadingEntra, mapped.len());
    let results: Vec<TenantResult<T>> = connection.runtime.block_on(
        futures_util::stream::iter(mapped)
            .map(|(name, tid)| {
                let future = read(client.clone(), tid.clone());
                let (client, redirect) = (client.clone(), redirect.clone());
                async move {
                    match future.await {
                        Ok(value) => Ok((name, tid, value)),
                        Err(e) => {
                            let mut failure = e.failure();
                            if failure.cause == Cause::ConsentMissing {
                                failure.consent_url =
                                    Some(client.config().consent_url(&tid, &redirect, &tid));
                            }
                            Err((name, failure))
                        }
                    }
                }
            })
            .buffer_unordered(ws.settings.graph.parallelism.max(1))
            .inspect(|r| reporter.tenant_done(Phase::ReadingEntra, r.is_err()))
            .collect(),
    );
    reporter.phase_finished(Phase::ReadingEntra);
    let mut run = FleetRead {
        read: Vec::new(),
        failures: Vec::new(),
        unmapped,
        requests: client.request_count(),
        token_requests: client.token_request_count(),
    };
    for result in results {
        match result {
            Ok(r) => run.read.push(r),
            Err(f) => run.failures.push(f),
        }
    }
    run.read.sort_by(|a, b| a.0.cmp(&b.0));
    run.failures.sort_by(|a, b| a.0.cmp(&b.0));
    ws.connection = Some(connection);
    Ok(run)
}
