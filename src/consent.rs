//! Consent as plain data (issue 17, "Consent through GDAP"): what tenantform's app needs in a
//! tenant (from the manifests' kinds there), Microsoft Graph's app role ids for those
//! permissions (embedded from `data/graph_app_roles.tsv`), and the pure plan of what a person
//! signed in with the Azure CLI creates to consent for a customer: the app's service principal
//! (`consent.<tenant>`) and one app role assignment per missing permission
//! (`consent.<tenant>.<Permission>`).
//!
//! Consent is not a manifest kind: nothing declares it. It is derived from the other kinds'
//! needs and from what the tenant has granted, and lives only in Entra (no state): a re-run
//! reads what exists and plans only what is missing, so a crash between two grants costs
//! nothing but the next run's reads.

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::graph::permissions as p;

/// Microsoft Graph's application id, the same in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

const TABLE: &str = include_str!("../data/graph_app_roles.tsv");

/// (permission, app role id) for Microsoft Graph's application permissions, from Microsoft's
/// permissions reference (see data/README.md).
pub fn app_roles() -> &'static [(&'static str, &'static str)] {
    static ROLES: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    ROLES.get_or_init(|| {
        TABLE
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once('\t'))
            .map(|(name, id)| (name.trim(), id.trim()))
            .filter(|(name, id)| !name.is_empty() && !id.is_empty())
            .collect()
    })
}

/// The app role id of an application permission of Microsoft Graph.
pub fn app_role_id(permission: &str) -> Option<&'static str> {
    app_roles()
        .iter()
        .find(|(name, _)| *name == permission)
        .map(|(_, id)| *id)
}

/// The permission an app role id of Microsoft Graph stands for.
pub fn app_role_name(id: &str) -> Option<&'static str> {
    app_roles()
        .iter()
        .find(|(_, known)| known.eq_ignore_ascii_case(id))
        .map(|(name, _)| *name)
}

/// One thing the manifests need in a tenant: any one of `any_of`, for `purpose`.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Need {
    /// What the manifests manage there that needs it: `guests`, `directory roles`, `reading`,
    /// `end users`, `policy` (a `TenantPolicy`'s reads), `reports` (with `--reports`).
    #[serde(rename = "for")]
    pub purpose: &'static str,
    /// Any one of these (least privileged first).
    pub any_of: Vec<&'static str>,
    /// What a person's (delegated) token needs instead: a scope and maybe a role.
    pub delegated: p::DelegatedNeed,
}

impl Need {
    pub fn new(purpose: &'static str, any_of: &'static [&'static str]) -> Need {
        Need {
            purpose,
            any_of: any_of.to_vec(),
            delegated: p::delegated_for(any_of),
        }
    }

    /// Reading deleted users: the same application list as reading users (so it cannot be
    /// told apart by value), but a person needs a role for it.
    fn deleted_users(purpose: &'static str) -> Need {
        Need {
            delegated: p::DELETED_READ_DELEGATED,
            ..Need::new(purpose, p::DELETED_READ)
        }
    }
}

/// What the manifests' kinds need in `tenant` (`model` is its slice): reading (guests and
/// role assignments, for any tenant with Entra objects), inviting guests, assigning directory
/// roles, reading users for end-user sync, and what its `TenantPolicy` (from the catalog: a
/// slice has none) reads.
pub fn tenant_needs(
    model: &crate::model::DesiredModel,
    tenant: &str,
    policy: Option<&crate::policy::TenantPolicy>,
) -> Vec<Need> {
    let guests = model.guests.values().any(|g| g.tenants.contains(tenant));
    let roles = model
        .role_assignments
        .values()
        .any(|r| !r.directory_roles.is_empty() && r.tenants.contains(tenant));
    let mut out = Vec::new();
    let mut add = |purpose, list: Vec<&'static [&'static str]>| {
        for any_of in list {
            out.push(Need::new(purpose, any_of));
        }
    };
    if guests || roles {
        add("reading", p::needs_for_read());
    }
    if guests {
        add("guests", vec![p::INVITE]);
    }
    if roles {
        add("directory roles", p::needs_for_directory_roles());
    }
    if let Some(sync) = model.end_user_syncs.get(tenant) {
        add("end users", vec![crate::graph::users::USERS_READ]);
        if !sync.rules.groups().is_empty() {
            add("end users", vec![crate::graph::users::GROUPS_READ]);
        }
    }
    if let Some(policy) = policy {
        out.extend(policy_needs(policy));
    }
    out
}

/// What `drift` reads for a tenant's `TenantPolicy`: its licences, its Secure Score, or both.
pub fn policy_needs(policy: &crate::policy::TenantPolicy) -> Vec<Need> {
    let mut lists: Vec<&'static [&'static str]> = Vec::new();
    if policy.needs_licences() {
        lists.extend([
            p::SUBSCRIBED_SKUS_READ,
            p::SUBSCRIPTIONS_READ,
            p::USERS_READ,
        ]);
    }
    if policy.needs_secure_score() {
        lists.push(p::SECURE_SCORE_READ);
    }
    let mut out: Vec<Need> = lists
        .into_iter()
        .map(|any_of| Need::new("policy", any_of))
        .collect();
    if policy.needs_licences() {
        out.insert(3, Need::deleted_users("policy"));
    }
    out
}

/// What `licenses`, `secure-score` and `report` read in every tenant.
pub fn report_needs() -> Vec<Need> {
    let mut out: Vec<Need> = [
        p::SUBSCRIBED_SKUS_READ,
        p::SUBSCRIPTIONS_READ,
        p::USERS_READ,
        p::SECURE_SCORE_READ,
        p::REGISTRATION_DETAILS_READ,
        p::SECURITY_DEFAULTS_READ,
    ]
    .into_iter()
    .map(|any_of| Need::new("reports", any_of))
    .collect();
    out.insert(3, Need::deleted_users("reports"));
    out
}

/// What a tenant has of tenantform's consent, as read from Graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveConsent {
    /// The object id of tenantform's app's service principal, when it exists.
    pub app_service_principal: Option<String>,
    /// Microsoft Graph's service principal (the resource of every grant).
    pub graph_service_principal: Option<String>,
    /// Microsoft Graph application permissions granted to the app (names; an app role id the
    /// table does not know is kept as the id).
    pub granted: Vec<String>,
}

/// One change of consent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum ConsentOp {
    /// Create tenantform's app's service principal (`POST /servicePrincipals {appId}`).
    ServicePrincipal,
    /// Grant an application permission of Microsoft Graph (an app role assignment).
    #[serde(rename_all = "camelCase")]
    Grant {
        permission: String,
        app_role_id: String,
    },
}

/// A planned consent change, with why it is needed: made in the customer's Entra by a person
/// signed in with the Azure CLI, never recorded in state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentChange {
    /// `consent.<tenant>` or `consent.<tenant>.<Permission>`.
    pub address: String,
    pub tenant: String,
    #[serde(flatten)]
    pub op: ConsentOp,
    /// The purposes that need it (`guests`, `reading`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needed_for: Vec<String>,
    /// Why, in words.
    pub why: String,
}

/// Why a service principal is planned.
const PRINCIPAL_WHY: &str =
    "tenantform's app is not in this tenant: its service principal holds the grants";

impl ConsentChange {
    /// "needed for guests, reading".
    pub fn why(&self) -> String {
        self.why.clone()
    }
}

/// The consent changes `tenant` needs for `needs`, given what it has (`live`): the service
/// principal when missing, then for each need its least privileged permission Microsoft's
/// table has an id for, unless one of its alternatives is granted (or planned already for an
/// earlier need). In the order of the needs, each permission once.
pub fn plan_tenant(tenant: &str, needs: &[Need], live: &LiveConsent) -> Vec<ConsentChange> {
    let mut out = Vec::new();
    if live.app_service_principal.is_none() {
        out.push(ConsentChange {
            address: format!("consent.{tenant}"),
            tenant: tenant.to_string(),
            op: ConsentOp::ServicePrincipal,
            needed_for: Vec::new(),
            why: PRINCIPAL_WHY.to_string(),
        });
    }
    let mut grants: Vec<ConsentChange> = Vec::new();
    for need in needs {
        if need
            .any_of
            .iter()
            .any(|a| live.granted.iter().any(|g| g == a))
        {
            continue;
        }
        let planned = grants.iter_mut().find(|c| match &c.op {
            ConsentOp::Grant { permission, .. } => need.any_of.contains(&permission.as_str()),
            ConsentOp::ServicePrincipal => false,
        });
        if let Some(change) = planned {
            if !change.needed_for.iter().any(|p| p == need.purpose) {
                change.needed_for.push(need.purpose.to_string());
                change.why = format!("needed for {}", change.needed_for.join(", "));
            }
            continue;
        }
        let Some((permission, app_role_id)) = need
            .any_of
            .iter()
            .find_map(|a| app_role_id(a).map(|id| (*a, id)))
        else {
            continue;
        };
        grants.push(ConsentChange {
            address: format!("consent.{tenant}.{permission}"),
            tenant: tenant.to_string(),
            op: ConsentOp::Grant {
                permission: permission.to_string(),
                app_role_id: app_role_id.to_string(),
            },
            needed_for: vec![need.purpose.to_string()],
            why: format!("needed for {}", need.purpose),
        });
    }
    out.extend(grants);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_permission_tenantform_asks_for_or_an_alternative() {
        assert_eq!(
            app_role_id("User.Read.All"),
            Some("df021288-bdef-4463-88db-98f22de89214")
        );
        assert_eq!(
            app_role_name("09850681-111B-4a89-9bed-3f2cae46d706"),
            Some("User.Invite.All")
        );
        for list in [
            p::INVITE,
            p::USERS_READ,
            p::GROUPS_READ,
            p::USERS_WRITE,
            p::USERS_DELETE,
            p::DELETED_READ,
            p::ROLES_READ,
            p::ROLES_WRITE,
            p::CONTRACTS_READ,
            p::ORGANIZATION_READ,
            p::SUBSCRIBED_SKUS_READ,
            p::SUBSCRIPTIONS_READ,
            p::SECURE_SCORE_READ,
            p::REGISTRATION_DETAILS_READ,
            p::SECURITY_DEFAULTS_READ,
        ] {
            assert!(
                list.iter().any(|p| app_role_id(p).is_some()),
                "{list:?} has no known app role id"
            );
        }
        let ids: std::collections::BTreeSet<_> = app_roles().iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), app_roles().len(), "ids are unique");
    }

    #[test]
    fn a_tenant_without_consent_plans_the_principal_and_the_least_privileged_grants() {
        let needs = vec![
            Need::new("reading", p::USERS_READ),
            Need::new("reading", p::ROLES_READ),
            Need::new("guests", p::INVITE),
            Need::new("end users", p::USERS_READ),
            // LicenseAssignment.Read.All has no id in Microsoft's table: the next one.
            Need::new("policy", p::SUBSCRIBED_SKUS_READ),
        ];
        let plan = plan_tenant("acme", &needs, &LiveConsent::default());
        let shown: Vec<(String, String)> =
            plan.iter().map(|c| (c.address.clone(), c.why())).collect();
        assert_eq!(
            shown,
            vec![
                ("consent.acme".to_string(), "tenantform's app is not in this tenant: its service principal holds the grants".to_string()),
                ("consent.acme.User.Read.All".into(), "needed for reading, end users".into()),
                ("consent.acme.RoleManagement.Read.Directory".into(), "needed for reading".into()),
                ("consent.acme.User.Invite.All".into(), "needed for guests".into()),
                ("consent.acme.Organization.Read.All".into(), "needed for policy".into()),
            ]
        );
        // Granted alternatives satisfy a need; nothing is planned twice.
        let live = LiveConsent {
            app_service_principal: Some("sp".into()),
            graph_service_principal: Some("graph".into()),
            granted: vec![
                "User.Read.All".into(),
                "RoleManagement.Read.Directory".into(),
                "Organization.Read.All".into(),
            ],
        };
        let plan = plan_tenant("acme", &needs, &live);
        let addresses: Vec<&str> = plan.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(addresses, vec!["consent.acme.User.Invite.All"]);
        assert!(plan_tenant("acme", &needs[..2], &live).is_empty());
    }
}
