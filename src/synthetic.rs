//! Synthetic manifest trees of N tenants, for tests and benchmarks.
//!
//! Deterministic: the same `n` always gives the same files. Each tenant file holds about ten
//! documents (a Tenant, three Organizations, three GuestUsers and three RoleAssignments), and
//! two fleet-wide engineers are targeted by label selectors, as in a real MSP tree.

/// One generated file: a path relative to the tree's root and its YAML text.
pub struct GeneratedFile {
    pub path: String,
    pub text: String,
}

const TIERS: [&str; 3] = ["gold", "silver", "bronze"];
const REGIONS: [&str; 3] = ["us-east", "us-west", "eu-west"];
const ROLES: [&str; 4] = [
    "Helpdesk Administrator",
    "Global Reader",
    "User Administrator",
    "Security Reader",
];

/// A stable, valid GUID derived from a number (not random: trees must be reproducible).
pub fn synthetic_guid(seed: u64) -> String {
    let a = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let b = seed.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) ^ 0x5851_f42d_4c95_7f2d;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a & 0xfff) as u16,
        (b >> 52) as u16 & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// The tenant name used for tenant `i`.
pub fn tenant_name(i: usize) -> String {
    format!("customer-{i:05}")
}

/// How many guests each tenant has and how many directory roles each guest holds.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub guests_per_tenant: usize,
    pub roles_per_guest: usize,
    /// Two engineers targeted at many tenants by label selectors.
    pub fleet_wide_guests: bool,
    /// An EndUserSync per tenant: offices routed to its three organizations, the group
    /// "Finance Approvers" (of `sandbox::Fixture::generated_with_profiles`) left out.
    pub end_user_sync: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            guests_per_tenant: 3,
            roles_per_guest: 1,
            fleet_wide_guests: true,
            end_user_sync: false,
        }
    }
}

/// Generates a fleet of `n` tenants.
pub fn fleet(n: usize) -> Vec<GeneratedFile> {
    fleet_shaped(n, Shape::default())
}

/// Generates a fleet of `n` tenants of the given shape.
pub fn fleet_shaped(n: usize, shape: Shape) -> Vec<GeneratedFile> {
    let mut files = Vec::with_capacity(n + 1);
    for i in 0..n {
        files.push(GeneratedFile {
            path: format!("tenants/{}.yaml", tenant_name(i)),
            text: tenant_file(i, shape),
        });
    }
    if !shape.fleet_wide_guests {
        return files;
    }
    files.push(GeneratedFile {
        path: "people/fleet-engineers.yaml".to_string(),
        text: "\
kind: GuestUser
name: fleet-tier1
email: tier1@fleet-msp.example
displayName: Fleet Tier 1
tenants: { selector: \"tier in (gold, silver), !legacy\" }
---
kind: RoleAssignment
name: fleet-tier1-reader
principal: { guest: fleet-tier1 }
directoryRoles: [Global Reader]
mspRoles: [TenantViewer]
---
kind: GuestUser
name: fleet-eu
email: eu@fleet-msp.example
tenants: { selector: { region: eu-west } }
---
kind: RoleAssignment
name: fleet-eu-helpdesk
principal: { guest: fleet-eu }
directoryRoles: [Helpdesk Administrator]
"
        .to_string(),
    });
    files
}

fn tenant_file(i: usize, shape: Shape) -> String {
    use std::fmt::Write;
    let name = tenant_name(i);
    let mut out = String::with_capacity(2048);
    let legacy = if i % 10 == 7 {
        "\n  legacy: \"true\""
    } else {
        ""
    };
    let _ = write!(
        out,
        "kind: Tenant\nname: {name}\ndisplayName: Customer {i} Holdings\nmicrosoftTenantId: {}\nlabels:\n  tier: {}\n  region: {}{legacy}\n",
        synthetic_guid(i as u64),
        TIERS[i % 3],
        REGIONS[(i / 3) % 3],
    );
    for site in ["north", "south", "east"] {
        let _ = write!(
            out,
            "---\nkind: Organization\nname: {name}-{site}\ndisplayName: Customer {i} Holdings - {site}\ntenant: {name}\n"
        );
    }
    for j in 0..shape.guests_per_tenant {
        let roles: Vec<&str> = (0..shape.roles_per_guest)
            .map(|r| ROLES[(i + j + r) % ROLES.len()])
            .collect();
        let _ = write!(
            out,
            "---\nkind: GuestUser\nname: {name}-eng{j}\nemail: eng{j}.c{i}@msp.example\ndisplayName: Engineer {j} for customer {i}\ntenants: [{name}]\n---\nkind: RoleAssignment\nname: {name}-eng{j}-roles\nprincipal: {{ guest: {name}-eng{j} }}\ndirectoryRoles: [{}]\nmspRoles: [TenantAdmin]\n",
            roles.join(", "),
        );
    }
    if shape.end_user_sync {
        let _ = write!(
            out,
            "---\nkind: EndUserSync\nname: {name}-end-users\ntenants: [{name}]\nexclude:\n  - group: Finance Approvers\nroutes:\n  - officeLocation: \"Boston*\"\n    organization: {name}-north\n  - officeLocation: Chicago\n    organization: {name}-south\ndefaultOrganization: {name}-east\n"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_valid_and_distinct() {
        let ids: std::collections::BTreeSet<String> = (0..10_000).map(synthetic_guid).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            crate::manifest::format::check_guid(id).unwrap();
        }
    }
}
