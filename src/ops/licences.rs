//! `licenses`: each selected tenant's licences read live (SKUs, subscriptions, who holds
//! what), summed up and checked by the pure core (`crate::licences`). A tenant that cannot be
//! read is listed with why and fails the command: none is reported on half its licences.

use crate::graph::licences::read_licences;
use crate::licences::{Finding, FindingOptions, LicensedUser, SkuSummary, findings, summarize};
use crate::ops::fleet_read::read_each;
use crate::ops::{OpsError, Reporter, Workspace};
use crate::outcome::Failure;

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
    let fleet = read_each(
        ws,
        tenants,
        "licenses",
        reporter,
        |client, tid| async move { read_licences(&client, &tid).await },
    )?;
    Ok(LicencesRun {
        tenants: fleet
            .read
            .into_iter()
            .map(|(tenant, microsoft_tenant_id, read)| {
                let skus = summarize(&read.skus, &read.subscriptions);
                TenantLicences {
                    findings: findings(&skus, &read.users, options),
                    tenant,
                    microsoft_tenant_id,
                    skus,
                    users: read.users,
                }
            })
            .collect(),
        failures: fleet.failures,
        unmapped: fleet.unmapped,
        requests: fleet.requests,
        token_requests: fleet.token_requests,
    })
}
