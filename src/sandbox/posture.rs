//! `GET /reports/authenticationMethods/userRegistrationDetails` and
//! `GET /policies/identitySecurityDefaultsEnforcementPolicy`, from a tenant's directory: its
//! users' fixture `mfaRegistered`, its role assignments (who is an admin), its subscriptions
//! (whether it has Microsoft Entra ID P1 or P2) and its `securityDefaults`.
//!
//! Sources (microsoft-graph-docs-contrib, v1.0):
//! - `api/authenticationmethodsroot-list-userregistrationdetails.md`: "This method doesn't work
//!   for disabled users" (here: they are not listed); `$filter` on the properties of the table
//!   below (`eq`; `startswith` on the names), `$orderby` in the page's older version and on
//!   `userDisplayName` and `userPrincipalName` in the resource page. No `$select` is
//!   documented: refused, as every undocumented option is (`graph::documented_options`).
//!   `$top` is not on the Graph page but Microsoft's own Entra PowerShell
//!   (Get-EntraAuthenticationMethodUserRegistrationDetailReport `-Top`) sends it: accepted.
//!   The default page size is not documented; the sandbox pages by 100, as directory lists do
//!   (*unconfirmed*).
//! - `resources/userregistrationdetails.md`: the properties and which support `$filter`.
//! - `resources/authenticationmethods-usage-insights-overview.md`: "A Microsoft Entra ID P1 or
//!   P2 license is required"; without it Graph answers 403
//!   `Authentication_RequestFromNonPremiumTenantOrB2CTenant`, "Neither tenant is B2C or tenant
//!   doesn't have premium license" (microsoft-graph-docs-contrib#3808, #7276).
//! - `resources/identitysecuritydefaultsenforcementpolicy.md` and
//!   `api/identitysecuritydefaultsenforcementpolicy-get.md`: the policy's id
//!   `00000000-0000-0000-0000-000000000005`, `displayName` "Security Defaults", `isEnabled`;
//!   `$select` supported.
//! - Which SKUs carry Entra ID P1 (service plan `AAD_PREMIUM`, 41781fb2-bc02-4b7c-bd55-b576c07bb09d)
//!   or P2 (`AAD_PREMIUM_P2`): Entra's "Product names and service plan identifiers for
//!   licensing" (entra-docs, licensing-service-plan-reference.md), for the common SKUs below.
//!   Office 365 E5 (`ENTERPRISEPREMIUM`) and Microsoft 365 Business Standard
//!   (`O365_BUSINESS_PREMIUM`) carry neither.

use serde_json::{Value, json};

use super::directory::{Directory, GraphError};
use super::odata::Filter;

/// SKU ids whose service plans include `AAD_PREMIUM` or `AAD_PREMIUM_P2`: Entra ID P1
/// (`AAD_PREMIUM`), P2 (`AAD_PREMIUM_P2`), Enterprise Mobility + Security E3 and E5 (`EMS`,
/// `EMSPREMIUM`), Microsoft 365 E3 and E5 (`SPE_E3`, `SPE_E5`), Business Premium (`SPB`),
/// F3 (`SPE_F1`), F1 (`M365_F1`), E5 Security (`IDENTITY_THREAT_PROTECTION`).
pub const ENTRA_PREMIUM_SKUS: &[&str] = &[
    "078d2b04-f1bd-4111-bbd4-b4b1b354cef4",
    "84a661c4-e949-4bd2-a560-ed7766fcaf2b",
    "efccb6f7-5641-4e0e-bd10-b4976e1bf68e",
    "b05e124f-c7cc-45a0-a6aa-8cf78c946968",
    "05e9a617-0261-4cee-bb44-138d3ef5d965",
    "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
    "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
    "66b55226-6b4f-492c-910c-a3b7a3c9d993",
    "44575883-256e-4a79-9da4-ebe9acabe2b2",
    "26124093-3d78-432b-b5dc-48bf992543d5",
];

/// The properties the registration report filters on (userregistrationdetails.md: "Supports
/// `$filter`"), all with `eq` (collections with `any`), the names also with `startswith`.
const FILTERABLE: &[&str] = &[
    "isMfaCapable",
    "isMfaRegistered",
    "isPasswordlessCapable",
    "isSsprCapable",
    "isSsprEnabled",
    "isSsprRegistered",
    "isSystemPreferredAuthenticationMethodEnabled",
    "methodsRegistered",
    "systemPreferredAuthenticationMethods",
    "userPreferredMethodForSecondaryAuthentication",
    "userDisplayName",
    "userPrincipalName",
];

/// What the sandbox answers when a report filter is not one Graph supports (*unconfirmed*
/// wording; Graph's reports answer 400).
fn unsupported(message: String) -> GraphError {
    GraphError::new(400, "BadRequest", message)
}

/// Whether the tenant has Microsoft Entra ID P1 or P2: Entra ID P2 declared (`entraIdP2`), or
/// a usable subscription (Enabled, or Warning: expired, in its grace period, still working) of
/// a SKU that carries it.
pub fn has_entra_premium(dir: &Directory) -> bool {
    dir.entra_id_p2
        || dir.subscriptions.iter().any(|s| {
            (s.status.eq_ignore_ascii_case("Enabled") || s.status.eq_ignore_ascii_case("Warning"))
                && ENTRA_PREMIUM_SKUS
                    .iter()
                    .any(|sku| sku.eq_ignore_ascii_case(&s.sku_id))
        })
}

/// Graph's answer to the report in a tenant without Entra ID P1 or P2.
pub fn premium_required() -> GraphError {
    GraphError::new(
        403,
        crate::posture::PREMIUM_REQUIRED,
        "Neither tenant is B2C or tenant doesn't have premium license",
    )
}

/// Object ids of the users holding a directory role: assigned directly, or through a
/// role-assignable group they are a (transitive) member of.
fn admins(dir: &Directory) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    for ra in dir.role_assignments.values() {
        let principal = ra.principal_id.to_lowercase();
        if dir.users.contains_key(&principal) {
            ids.insert(principal);
        } else if let Some(members) = dir.transitive_users(&principal) {
            ids.extend(members.into_iter().map(|u| u.id.clone()));
        }
    }
    ids
}

/// Each enabled user's registration details, in directory order.
pub fn registration_details(dir: &Directory, replication: std::time::Duration) -> Vec<Value> {
    let admins = admins(dir);
    dir.users
        .values()
        .filter(|u| u.account_enabled && u.visible(replication))
        .map(|u| {
            let mfa = u.profile.mfa_registered;
            let methods: Vec<&str> = if mfa {
                vec!["microsoftAuthenticatorPush", "softwareOneTimePasscode"]
            } else {
                Vec::new()
            };
            json!({
                "id": u.id,
                "userPrincipalName": u.user_principal_name,
                "userDisplayName": u.display_name,
                "userType": if u.user_type.eq_ignore_ascii_case("Guest") { "guest" } else { "member" },
                "isAdmin": admins.contains(&u.id),
                "isSsprRegistered": mfa,
                "isSsprEnabled": false,
                "isSsprCapable": false,
                "isMfaRegistered": mfa,
                "isMfaCapable": mfa,
                "isPasswordlessCapable": false,
                "lastUpdatedDateTime": u.created_date_time,
                "methodsRegistered": methods,
                "isSystemPreferredAuthenticationMethodEnabled": true,
                "systemPreferredAuthenticationMethods": if mfa { vec!["push"] } else { Vec::new() },
                "userPreferredMethodForSecondaryAuthentication": if mfa { "push" } else { "none" },
            })
        })
        .collect()
}

/// The report's entries after `$filter` and `$orderby`, as Graph supports them there.
pub fn list_registrations(
    dir: &Directory,
    filter: Option<&str>,
    orderby: Option<&str>,
    replication: std::time::Duration,
) -> Result<Vec<Value>, GraphError> {
    let filter = filter.map(Filter::parse).transpose()?;
    if let Some(f) = &filter {
        if let Some(op) = f.advanced_operator() {
            return Err(unsupported(format!(
                "Unsupported filter operator '{op}' for userRegistrationDetails."
            )));
        }
        if let Some(p) = f
            .properties()
            .into_iter()
            .find(|p| !FILTERABLE.iter().any(|a| a.eq_ignore_ascii_case(p)))
        {
            return Err(unsupported(format!(
                "Filtering on property '{p}' is not supported for userRegistrationDetails."
            )));
        }
    }
    let mut items: Vec<Value> = registration_details(dir, replication)
        .into_iter()
        .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
        .collect();
    if let Some(order) = orderby {
        let mut words = order.split_whitespace();
        let property = words.next().unwrap_or_default();
        let descending = match words.next() {
            None => false,
            Some(d) if d.eq_ignore_ascii_case("asc") => false,
            Some(d) if d.eq_ignore_ascii_case("desc") => true,
            Some(other) => {
                return Err(unsupported(format!(
                    "Invalid $orderby direction '{other}'."
                )));
            }
        };
        let Some(property) = ["userDisplayName", "userPrincipalName"]
            .into_iter()
            .find(|p| p.eq_ignore_ascii_case(property))
        else {
            return Err(unsupported(format!(
                "Ordering by '{property}' is not supported for userRegistrationDetails."
            )));
        };
        let key = |v: &Value| v[property].as_str().unwrap_or_default().to_lowercase();
        items.sort_by_key(key);
        if descending {
            items.reverse();
        }
    }
    Ok(items)
}

/// The tenant's security defaults policy, as Graph answers it.
pub fn security_defaults_policy(dir: &Directory) -> Value {
    json!({
        "id": "00000000-0000-0000-0000-000000000005",
        "displayName": "Security Defaults",
        "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft. When enabled, these recommendations will be automatically enforced in your organization. Administrators and users will be better protected from common identity related attacks.",
        "isEnabled": dir.security_defaults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::fixture::{
        Fixture, FixtureSubscription, FixtureTenant, FixtureUser, GENERATED_BUSINESS_STANDARD,
        generated_staff_sku,
    };
    use std::time::Duration;

    fn subscription(sku: &str, status: &str) -> FixtureSubscription {
        FixtureSubscription {
            id: None,
            sku_id: sku.into(),
            sku_part_number: None,
            status: status.into(),
            total_licenses: 5,
            is_trial: false,
            created_date_time: None,
            next_lifecycle_date_time: None,
            applies_to: "User".into(),
        }
    }

    #[test]
    fn premium_comes_from_a_usable_subscription_carrying_entra_id_p1_or_p2() {
        let mut t = FixtureTenant::new("t", "T", "t.example");
        assert!(!has_entra_premium(&Directory::from_fixture(&t)));
        // Office 365 E5 and Business Standard carry no Entra ID P1.
        t.subscriptions = vec![
            subscription("c7df2760-2c81-4ef7-b578-5b5392b571df", "Enabled"),
            subscription(GENERATED_BUSINESS_STANDARD, "Enabled"),
            subscription("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "Suspended"),
        ];
        assert!(!has_entra_premium(&Directory::from_fixture(&t)));
        // Business Premium, expired and in its grace period: still working.
        t.subscriptions.push(subscription(
            "CBDC14AB-D96C-4C30-B9F4-6ADA7CDC1D46",
            "Warning",
        ));
        assert!(has_entra_premium(&Directory::from_fixture(&t)));
        let mut p2 = FixtureTenant::new("t", "T", "t.example");
        p2.entra_id_p2 = true;
        assert!(has_entra_premium(&Directory::from_fixture(&p2)));
    }

    #[test]
    fn enabled_users_are_listed_with_admins_from_role_assignments() {
        let mut t = FixtureTenant::new("t", "T", "t.example");
        let mut ada = FixtureUser::member(
            "00000000-0000-4000-8000-000000000001",
            "Ada",
            "ada@t.example",
        );
        ada.profile.mfa_registered = true;
        let bob = FixtureUser::member(
            "00000000-0000-4000-8000-000000000002",
            "Bob",
            "bob@t.example",
        );
        let mut gone = FixtureUser::member(
            "00000000-0000-4000-8000-000000000003",
            "Gone",
            "g@t.example",
        );
        gone.account_enabled = false;
        t.users = vec![ada, bob, gone];
        t.role_assignments
            .push(crate::sandbox::fixture::FixtureRoleAssignment {
                id: None,
                principal_id: "00000000-0000-4000-8000-000000000002".into(),
                role_definition_id: "62e90394-69f5-4237-9190-012177145e10".into(),
                directory_scope_id: "/".into(),
            });
        let dir = Directory::from_fixture(&t);
        let all = list_registrations(&dir, None, None, Duration::ZERO).unwrap();
        assert_eq!(all.len(), 2, "the disabled user is not listed");
        assert_eq!(all[1]["isAdmin"], true);
        assert_eq!(all[1]["isMfaRegistered"], false);
        assert_eq!(all[0]["userType"], "member");
        let registered =
            list_registrations(&dir, Some("isMfaRegistered eq true"), None, Duration::ZERO)
                .unwrap();
        assert_eq!(registered.len(), 1);
        let by_name = list_registrations(
            &dir,
            Some("startswith(userDisplayName,'b')"),
            Some("userPrincipalName desc"),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(by_name[0]["userDisplayName"], "Bob");
        let refused = list_registrations(&dir, Some("isAdmin eq true"), None, Duration::ZERO);
        assert_eq!(refused.unwrap_err().status, 400);
        let refused =
            list_registrations(&dir, Some("isMfaRegistered ne true"), None, Duration::ZERO);
        assert_eq!(refused.unwrap_err().status, 400);
        let refused = list_registrations(&dir, None, Some("id"), Duration::ZERO);
        assert_eq!(refused.unwrap_err().status, 400);
        assert_eq!(security_defaults_policy(&dir)["isEnabled"], true);
    }

    #[test]
    fn generated_fleets_mix_registered_users_admins_without_mfa_and_tenants_without_premium() {
        let fixture = Fixture::generated_with_profiles(8, 60);
        let mut without_premium = 0;
        let mut admins_without_mfa = 0;
        for (i, t) in fixture.tenants.iter().skip(1).enumerate() {
            let dir = Directory::from_fixture(t);
            if !has_entra_premium(&dir) {
                without_premium += 1;
                assert_eq!(generated_staff_sku(i), GENERATED_BUSINESS_STANDARD);
                continue;
            }
            let entries = registration_details(&dir, Duration::ZERO);
            let crate::posture::MfaPosture::Available {
                share,
                admins,
                admins_without_mfa: named,
                ..
            } = crate::posture::MfaPosture::from_registrations(&entries)
            else {
                unreachable!()
            };
            assert!(share.unwrap() > 75.0 && share.unwrap() < 90.0, "{share:?}");
            assert_eq!(admins, 2);
            admins_without_mfa += named.len();
        }
        assert_eq!(without_premium, 1, "customer 3");
        assert_eq!(admins_without_mfa, 3, "user 1 of customers 1, 4 and 7");
    }
}
