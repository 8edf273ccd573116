//! `licenses`: each selected tenant's licences read live (SKUs, subscriptions, who holds
//! what), summed up and checked by the pure core (`crate::licences`). A tenant that cannot be
//! read is listed with why and fails the command: none is reported on half its licences.

use futures_util::StreamExt;

use crate::graph::licences::read_licences;
use crate::licences::{Finding, FindingOptions, LicensedUser, SkuSummary, findings, summarize};
use crate::ops::workspace::connect_required;
use crate::ops::{OpsError, Phase, Reporter, Workspace};
use crate::outcome::{Cause, Failure};

/// One tenant's licences.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantLicences {
    /// The tenant's stable name in the manifests.
    pub tenant: String,
    pub microsoft_tenant_id: String,
    pub skus: Vec<SkuSummary>,
    pub findings: Vec<Finding>,
    /// Users holding licences (not printed by default; JSON keeps them).
    pub users: Vec<LicensedUser>,
}

pub struct LicencesRun {
    /// Tenants read, in name order.
    pub tenants: Vec<TenantLicences>,
    /// Tenants not read, by name, with why.
    pub failures: Vec<(String, Failure)>,
    /// Selected tenants with no Microsoft tenant id (nothing to read).
    pub unmapped: Vec<String>,
    pub requests: u64,
    pub token_requests: u64,
}

/// Reads the licences of the tenants named in `tenants` (every mapped tenant when empty).
pub fn licences(
    ws: &mut Workspace,
    tenants: &[String],
    options: &FindingOptions,
    reporter: &dyn Reporter,
) -> Result<LicencesRun, OpsError> {
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
    let connection = connect_required(&ws.settings, catalog, "licenses")?;
    let client = connection.client.as_ref();
    let redirect = ws.settings.graph.consent_redirect_uri.as_str();
    reporter.phase_started(Phase::ReadingEntra, mapped.len());
    let results: Vec<Result<TenantLicences, (String, Failure)>> = connection.runtime.block_on(
        futures_util::stream::iter(mapped)
            .map(|(name, tid)| async move {
                match read_licences(client, &tid).await {
                    Ok(read) => {
                        let skus = summarize(&read.skus, &read.subscriptions);
                        let findings = findings(&skus, &read.users, options);
                        Ok(TenantLicences {
                            tenant: name,
                            microsoft_tenant_id: tid,
                            skus,
                            findings,
                            users: read.users,
                        })
                    }
                    Err(e) => {
                        let mut failure = e.failure();
                        if failure.cause == Cause::ConsentMissing {
                            failure.consent_url =
                                Some(client.config().consent_url(&tid, redirect, &tid));
                        }
                        Err((name, failure))
                    }
                }
            })
            .buffer_unordered(ws.settings.graph.parallelism.max(1))
            .inspect(|r| reporter.tenant_done(Phase::ReadingEntra, r.is_err()))
            .collect(),
    );
    reporter.phase_finished(Phase::ReadingEntra);
    let mut run = LicencesRun {
        tenants: Vec::new(),
        failures: Vec::new(),
        unmapped,
        requests: client.request_count(),
        token_requests: client.token_request_count(),
    };
    for result in results {
        match result {
            Ok(t) => run.tenants.push(t),
            Err(f) => run.failures.push(f),
        }
    }
    run.tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    run.failures.sort_by(|a, b| a.0.cmp(&b.0));
    ws.connection = Some(connection);
    Ok(run)
}
