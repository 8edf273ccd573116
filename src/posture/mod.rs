//! A tenant's sign-in security posture as plain data: the share of its users registered for
//! multifactor authentication, its admins without MFA, and whether security defaults are on.
//! Pure: Graph's answers in, figures out (`graph::posture` reads them).
//!
//! Sources (Microsoft Learn, microsoft-graph-docs-contrib, v1.0):
//! - `resources/userregistrationdetails.md`: `isAdmin` ("has an admin role in the tenant"),
//!   `isMfaRegistered` ("has registered a strong authentication method for multifactor
//!   authentication", whether or not the authentication methods policy allows it),
//!   `isMfaCapable` (registered *and* allowed by that policy), `userPrincipalName`,
//!   `userDisplayName`, `userType` (`member`, `guest`).
//! - `api/authenticationmethodsroot-list-userregistrationdetails.md`: "This method doesn't work
//!   for disabled users", and `resources/authenticationmethods-usage-insights-overview.md`:
//!   "A Microsoft Entra ID P1 or P2 license is required to access authentication methods usage
//!   and insights reports". A tenant without it is answered 403
//!   `Authentication_RequestFromNonPremiumTenantOrB2CTenant`, "Neither tenant is B2C or tenant
//!   doesn't have premium license" (microsoft-graph-docs-contrib#3808, #7276; the Entra
//!   reporting docs' "Common errors").
//! - `resources/identitysecuritydefaultsenforcementpolicy.md`: `isEnabled`, "If set to true,
//!   Microsoft Entra security defaults are enabled for the tenant".
//!
//! What is counted: **enabled member users**. The report leaves disabled users out (the list
//! "doesn't work for disabled users"; it carries no `accountEnabled` to filter on), and guests
//! are not counted: a guest registers its methods in its home tenant, so this tenant's report
//! says nothing of it (and an MSP's own engineers are guests in every customer). A user counts
//! as registered when `isMfaRegistered` is true (registered, as the column says; `isMfaCapable`
//! also depends on the methods policy). An admin is a member whose `isAdmin` is true.

use serde::Serialize;
use serde_json::Value;

/// Graph's error code for a report a tenant's licences do not include (403).
pub const PREMIUM_REQUIRED: &str = "Authentication_RequestFromNonPremiumTenantOrB2CTenant";

/// A tenant's sign-in security posture.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Posture {
    pub mfa: MfaPosture,
    /// Whether security defaults are on; none when the policy's answer does not say (then
    /// `securityDefaultsUnknown` says why).
    pub security_defaults: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_defaults_unknown: Option<String>,
}

/// MFA registration, where the tenant's licences allow reading it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum MfaPosture {
    /// Read from the registration report.
    #[serde(rename_all = "camelCase")]
    Available {
        /// Enabled member users in the report.
        users: usize,
        /// Of them, those registered for MFA.
        registered: usize,
        /// `registered` as a share of `users`, in percent (0 to 100); none without users.
        share: Option<f64>,
        /// Members holding an admin role.
        admins: usize,
        /// Of them, those not registered for MFA, by display name.
        admins_without_mfa: Vec<AdminWithoutMfa>,
    },
    /// The tenant's licences do not include the report (no Microsoft Entra ID P1 or P2).
    #[serde(rename_all = "camelCase")]
    NotAvailable { reason: String },
}

/// An admin not registered for MFA (names as Graph gives them: untrusted text).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminWithoutMfa {
    pub display_name: String,
    pub user_principal_name: String,
}

impl MfaPosture {
    /// The report refused for the tenant's licences: Graph's 403 `code` and `message`.
    pub fn not_available(code: &str, message: &str) -> MfaPosture {
        MfaPosture::NotAvailable {
            reason: format!(
                "the tenant has no Microsoft Entra ID P1 or P2 licence (Graph answered 403 {code}: {message})"
            ),
        }
    }

    /// The MFA posture of the entries of `userRegistrationDetails` (all pages).
    pub fn from_registrations(entries: &[Value]) -> MfaPosture {
        let flag = |e: &Value, k: &str| e.get(k).and_then(Value::as_bool).unwrap_or(false);
        let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let members = entries.iter().filter(|e| {
            // Only an explicit guest is left out: an entry without a type is counted.
            !e.get("userType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
        });
        let (mut users, mut registered, mut admins) = (0, 0, 0);
        let mut admins_without_mfa = Vec::new();
        for e in members {
            users += 1;
            let mfa = flag(e, "isMfaRegistered");
            registered += usize::from(mfa);
            if flag(e, "isAdmin") {
                admins += 1;
                if !mfa {
                    admins_without_mfa.push(AdminWithoutMfa {
                        display_name: text(e, "userDisplayName"),
                        user_principal_name: text(e, "userPrincipalName"),
                    });
                }
            }
        }
        admins_without_mfa.sort();
        MfaPosture::Available {
            users,
            registered,
            share: (users > 0).then(|| 100.0 * registered as f64 / users as f64),
            admins,
            admins_without_mfa,
        }
    }
}

impl Posture {
    /// The posture of a tenant from its MFA posture and its
    /// `identitySecurityDefaultsEnforcementPolicy` as Graph answered it.
    pub fn new(mfa: MfaPosture, security_defaults_policy: &Value) -> Posture {
        let enabled = security_defaults_policy
            .get("isEnabled")
            .and_then(Value::as_bool);
        Posture {
            mfa,
            security_defaults: enabled,
            security_defaults_unknown: enabled
                .is_none()
                .then(|| "the security defaults policy did not say whether it is enabled".into()),
        }
    }
}

/// Whether a Graph error is the report refused for the tenant's licences.
pub fn is_premium_required(status: u16, code: &str) -> bool {
    status == 403 && code == PREMIUM_REQUIRED
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(name: &str, kind: &str, admin: bool, mfa: bool) -> Value {
        json!({
            "id": format!("id-{name}"),
            "userDisplayName": name,
            "userPrincipalName": format!("{}@contoso.example", name.to_lowercase()),
            "userType": kind,
            "isAdmin": admin,
            "isMfaRegistered": mfa,
            "isMfaCapable": mfa,
        })
    }

    #[test]
    fn members_are_counted_and_admins_without_mfa_named() {
        let entries = [
            entry("Ada", "member", true, true),
            entry("Zed", "member", true, false),
            entry("Bob", "member", true, false),
            entry("Cy", "member", false, true),
            entry("Di", "member", false, false),
            // A guest admin (an MSP engineer) registers at home: not counted, not named.
            entry("Eng", "guest", true, false),
            entry("Gus", "Guest", false, true),
        ];
        let MfaPosture::Available {
            users,
            registered,
            share,
            admins,
            admins_without_mfa,
        } = MfaPosture::from_registrations(&entries)
        else {
            panic!("available")
        };
        assert_eq!((users, registered, admins), (5, 2, 3));
        assert_eq!(share, Some(40.0));
        let names: Vec<&str> = admins_without_mfa
            .iter()
            .map(|a| a.display_name.as_str())
            .collect();
        assert_eq!(names, ["Bob", "Zed"], "sorted by display name");
        assert_eq!(
            admins_without_mfa[0].user_principal_name,
            "bob@contoso.example"
        );
    }

    #[test]
    fn no_users_is_no_share_and_missing_flags_are_false() {
        assert_eq!(
            MfaPosture::from_registrations(&[]),
            MfaPosture::Available {
                users: 0,
                registered: 0,
                share: None,
                admins: 0,
                admins_without_mfa: Vec::new(),
            }
        );
        let bare = [json!({"id": "x", "userDisplayName": "X"})];
        let MfaPosture::Available {
            users, registered, ..
        } = MfaPosture::from_registrations(&bare)
        else {
            panic!("available")
        };
        assert_eq!(
            (users, registered),
            (1, 0),
            "no type: counted; no flag: not registered"
        );
    }

    #[test]
    fn security_defaults_come_from_is_enabled() {
        let mfa = MfaPosture::not_available(PREMIUM_REQUIRED, "no premium");
        let on = Posture::new(
            mfa.clone(),
            &json!({"id": "00000000-0000-0000-0000-000000000005", "isEnabled": true}),
        );
        assert_eq!(on.security_defaults, Some(true));
        assert_eq!(on.security_defaults_unknown, None);
        let off = Posture::new(mfa.clone(), &json!({"isEnabled": false}));
        assert_eq!(off.security_defaults, Some(false));
        let unknown = Posture::new(mfa, &json!({"displayName": "Security Defaults"}));
        assert_eq!(unknown.security_defaults, None);
        assert!(unknown.security_defaults_unknown.is_some());
    }

    #[test]
    fn the_premium_refusal_is_recognised_and_serialized_as_not_available() {
        assert!(is_premium_required(403, PREMIUM_REQUIRED));
        assert!(!is_premium_required(403, "Authorization_RequestDenied"));
        assert!(!is_premium_required(400, PREMIUM_REQUIRED));
        let posture = Posture::new(
            MfaPosture::not_available(
                PREMIUM_REQUIRED,
                "Neither tenant is B2C or tenant doesn't have premium license",
            ),
            &json!({"isEnabled": true}),
        );
        let value = serde_json::to_value(&posture).unwrap();
        assert_eq!(value["mfa"]["status"], "notAvailable");
        assert!(
            value["mfa"]["reason"]
                .as_str()
                .unwrap()
                .contains("Entra ID P1 or P2")
        );
        assert_eq!(value["securityDefaults"], true);
        assert!(value.get("securityDefaultsUnknown").is_none());
        let available = serde_json::to_value(MfaPosture::from_registrations(&[entry(
            "Zed", "member", true, false,
        )]))
        .unwrap();
        assert_eq!(
            available,
            json!({"status": "available", "users": 1, "registered": 0, "share": 0.0, "admins": 1,
                   "adminsWithoutMfa": [{"displayName": "Zed", "userPrincipalName": "zed@contoso.example"}]})
        );
    }
}
