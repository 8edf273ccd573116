//! `licenses`: each selected tenant's licences read live (SKUs, subscriptions, who holds
//! what), summed up and checked by the pure core (`crate::licences`). A tenant that cannot be
//! read is listed with why and fails the command: none is reported on half its licences.

use crate::graph::licences::read_licences;
use crate::licences::{
    Finding, FindingOptions, LicensedUser, OrganizationSeats, SkuSummary, findings,
    seats_by_organization, summarize,
};
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
    /// Seats per organization of the contacts holding them (asked for with `by_organization`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_organization: Vec<OrganizationSeats>,
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
    by_organization: bool,
    reporter: &dyn Reporter,
) -> Result<LicencesRun, OpsError> {
    let fleet = read_each(
        ws,
        tenants,
        "licenses",
        reporter,
        |client, tid| async move { read_licences(&client, &tid).await },
    )?;
    let mut failures = fleet.failures;
    let mut read = Vec::with_capacity(fleet.read.len());
    for (tenant, microsoft_tenant_id, licences) in fleet.read {
        let skus = summarize(&licences.skus, &licences.subscriptions);
        // Contacts are joined a tenant at a time, from state; a tenant whose contacts cannot
        // be read fails by name rather than billing everyone as "no contact".
        let by_organization = if by_organization {
            match crate::ops::contacts::organizations_by_user(ws.store.as_ref(), &tenant) {
                Ok(organizations) => seats_by_organization(&skus, &licences.users, &|id| {
                    organizations.get(id).cloned()
                }),
                Err(e) => {
                    failures.push((
                        tenant,
                        Failure::new(
                            crate::outcome::Cause::StateError,
                            format!("its contacts could not be read: {e}"),
                        ),
                    ));
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        read.push(TenantLicences {
            findings: findings(&skus, &licences.users, options),
            tenant,
            microsoft_tenant_id,
            skus,
            users: licences.users,
            by_organization,
        });
    }
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(LicencesRun {
        tenants: read,
        failures,
        unmapped: fleet.unmapped,
        requests: fleet.requests,
        token_requests: fleet.token_requests,
    })
}
