//! The sandbox's starting world, from a YAML or JSON file: apps, tenants, users, contracts.

use serde::{Deserialize, Serialize};

/// A multi-tenant app registration (the MSP's app) the token endpoint knows.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureApp {
    pub client_id: String,
    /// Accepted secret for client-credentials requests (sandbox only: never a real secret).
    pub client_secret: String,
    /// Application permissions granted to the app (the `roles` claim of its tokens).
    #[serde(default = "default_app_roles")]
    pub roles: Vec<String>,
    /// Federated identity credentials: the external tokens (a pipeline's OIDC token, a
    /// managed identity's) the app accepts as client assertions. Absent: the ones the
    /// sandbox's own emulators issue (`/_emulators/...`), see [`default_federated_credentials`].
    #[serde(default = "default_federated_credentials")]
    pub federated_credentials: Vec<FederatedCredential>,
}

/// A federated identity credential on the app (Graph's `federatedIdentityCredential`): an
/// assertion is accepted when its `iss` and `sub` equal these exactly (case-sensitive, as
/// Entra matches since 2025) and its `aud` is one of `audiences`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub issuer: String,
    pub subject: String,
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
}

fn default_audiences() -> Vec<String> {
    vec![crate::graph::credentials::FEDERATED_AUDIENCE.to_string()]
}

/// What the sandbox's emulators issue by default: GitHub Actions for `msp/tenants` on main,
/// an Azure DevOps service connection, and the MSP's user-assigned managed identity (issuer:
/// its home tenant's v2.0 authority, subject: its object id; GRAPH.md).
pub fn default_federated_credentials() -> Vec<FederatedCredential> {
    use super::emulators as e;
    [
        (
            "github-main",
            e::GITHUB_ISSUER.to_string(),
            e::GITHUB_SUBJECT,
        ),
        ("azure-devops", e::ado_issuer(), e::ADO_SUBJECT),
        ("managed-identity", e::mi_issuer(), e::MI_OBJECT_ID),
    ]
    .into_iter()
    .map(|(name, issuer, subject)| FederatedCredential {
        name: Some(name.to_string()),
        issuer,
        subject: subject.to_string(),
        audiences: default_audiences(),
    })
    .collect()
}

/// What tenantform's app asks for: guests and directory roles, organization and (in the
/// partner tenant) contracts and GDAP relationships, Secure Score, and the sign-in posture
/// (the MFA registration report, AuditLog.Read.All; security defaults, Policy.Read.All).
pub fn default_app_roles() -> Vec<String> {
    [
        "User.ReadWrite.All",
        "RoleManagement.ReadWrite.Directory",
        "Organization.Read.All",
        "Directory.Read.All",
        "SecurityEvents.Read.All",
        "AuditLog.Read.All",
        "Policy.Read.All",
        "DelegatedAdminRelationship.ReadWrite.All",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureTenant {
    /// The Entra tenant id (GUID).
    pub id: String,
    pub display_name: String,
    /// Default verified domain, e.g. `foggyit.onmicrosoft.com`.
    pub domain: String,
    /// Whether the apps are consented here (a service principal exists). Without consent the
    /// token endpoint answers AADSTS700016, as Entra does.
    #[serde(default = "yes")]
    pub consent: bool,
    #[serde(default)]
    pub users: Vec<FixtureUser>,
    /// Customers of this tenant as a partner (`GET /contracts`).
    #[serde(default)]
    pub contracts: Vec<FixtureContract>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_assignments: Vec<FixtureRoleAssignment>,
    /// Application permissions granted to the app here (admin consent can grant fewer than the
    /// app asks for). Absent: every permission of the app (its `roles`). Tokens for this tenant
    /// carry these in their `roles` claim, and every Graph endpoint checks them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// Directory roles the app's service principal holds here (names or template ids). Deleting
    /// a user with an administrative role, or changing such a user's sensitive properties, needs
    /// Global Administrator or Privileged Authentication Administrator in app-only mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_directory_roles: Vec<String>,
    /// Whether B2B invitations are allowed (false: app-only `POST /invitations` fails).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub b2b_invitations: bool,
    /// Groups (role-assignable ones can hold directory roles); members are object ids of
    /// users, groups or service principals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<FixtureGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_principals: Vec<FixtureServicePrincipal>,
    /// Whether the tenant has Entra ID P2 (PIM). Without it `roleEligibilitySchedules`
    /// answers 400 `AadPremiumLicenseRequired`, as Graph does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub entra_id_p2: bool,
    /// PIM-eligible role assignments (`roleEligibilitySchedules`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_eligibilities: Vec<FixtureRoleEligibility>,
    /// Soft-deleted users (`directory/deletedItems`), kept so a later run can still restore
    /// them and so a user moved here from `users` between runs reads as soft-deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_users: Vec<FixtureDeletedUser>,
    /// The `users/delta` change log as the sandbox saved it, so delta links go on across runs
    /// and edits to `users` since are logged at load. Absent (a written fixture): the
    /// directory starts at sequence 0 with no changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_log: Option<super::changes::SavedLog>,
    /// Commercial subscriptions (`directory/subscriptions`); `subscribedSkus` sums them by SKU,
    /// with its consumed units counted from the users' `assignedLicenses`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<FixtureSubscription>,
    /// How its Secure Score goes (`security/secureScores`, generated day by day up to today).
    /// Absent: the tenant has no Secure Score records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_score: Option<FixtureSecureScore>,
    /// Whether security defaults are on (`policies/identitySecurityDefaultsEnforcementPolicy`).
    /// Absent: on, as Microsoft turns them on in new tenants.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub security_defaults: bool,
    /// In a partner tenant: its delegated admin relationships (GDAP) with their access
    /// assignments (`sandbox::gdap::Relationship`; roles by name or template id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegated_admin_relationships: Vec<super::gdap::Relationship>,
}

/// A tenant's Secure Score over its last `days` days: `startPercent` of the maximum on the
/// first day, `dailyChange` points a day since (negative: falling).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureSecureScore {
    pub start_percent: f64,
    #[serde(default)]
    pub daily_change: f64,
    /// Records kept (Microsoft keeps about 90 days).
    #[serde(default = "ninety")]
    pub days: usize,
}

fn ninety() -> usize {
    90
}

/// A commercial subscription of the tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureSubscription {
    /// Absent: derived from the tenant, SKU and position (stable across loads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub sku_id: String,
    /// Absent: from Microsoft's product table (`crate::licences::products`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_part_number: Option<String>,
    /// `Enabled`, `Warning` (expired, in its grace period), `Suspended`, `Deleted`, `LockedOut`.
    #[serde(default = "enabled")]
    pub status: String,
    pub total_licenses: i64,
    #[serde(default)]
    pub is_trial: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_lifecycle_date_time: Option<String>,
    /// `User` (assignable to people) or `Company`.
    #[serde(default = "user_target")]
    pub applies_to: String,
}

fn enabled() -> String {
    "Enabled".into()
}

fn user_target() -> String {
    "User".into()
}

/// A soft-deleted user and when it was deleted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureDeletedUser {
    pub user: FixtureUser,
    /// Absent: deleted when the world loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_date_time: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureGroup {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default = "yes")]
    pub is_assignable_to_role: bool,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureServicePrincipal {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub app_id: Option<String>,
}

impl FixtureServicePrincipal {
    /// The "Partner Customer Delegated Administration" app's service principal, which a
    /// partner tenant needs for app-only GDAP calls (`sandbox::gdap`).
    pub fn partner_customer_delegated_admin() -> FixtureServicePrincipal {
        FixtureServicePrincipal {
            id: "6a1c0d2e-0000-4000-8000-00000000d0a9".into(),
            display_name: "Partner Customer Delegated Administration".into(),
            app_id: Some(super::gdap::PARTNER_ADMIN_APP_ID.into()),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureRoleEligibility {
    #[serde(default)]
    pub id: Option<String>,
    pub principal_id: String,
    pub role_definition_id: String,
    #[serde(default = "root_scope")]
    pub directory_scope_id: String,
    /// When the eligibility starts (and was created), e.g. `2025-03-01T09:00:00Z`.
    #[serde(default)]
    pub start_date_time: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureRoleAssignment {
    #[serde(default)]
    pub id: Option<String>,
    pub principal_id: String,
    pub role_definition_id: String,
    #[serde(default = "root_scope")]
    pub directory_scope_id: String,
}

fn root_scope() -> String {
    "/".into()
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureUser {
    #[serde(default)]
    pub id: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub other_mails: Vec<String>,
    /// `Member` (default) or `Guest`.
    #[serde(default = "member")]
    pub user_type: String,
    /// For guests: `PendingAcceptance` or `Accepted`.
    #[serde(default)]
    pub external_user_state: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// `accountEnabled`: a disabled account is still listed.
    #[serde(default = "yes")]
    pub account_enabled: bool,
    /// What the directory says of the person (department, office, licences): what end-user
    /// sync routes and copies.
    #[serde(default, skip_serializing_if = "UserProfile::is_empty")]
    pub profile: UserProfile,
}

impl FixtureUser {
    /// A member of the directory (an end user), signing in as `mail`, with no profile yet.
    pub fn member(id: &str, display_name: &str, mail: &str) -> FixtureUser {
        FixtureUser {
            id: Some(id.into()),
            display_name: display_name.into(),
            mail: Some(mail.into()),
            other_mails: Vec::new(),
            user_type: "Member".into(),
            external_user_state: None,
            user_principal_name: Some(mail.into()),
            account_enabled: true,
            profile: UserProfile::default(),
        }
    }
}

/// A user's profile fields as Graph names them (user resource type, v1.0): all optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub business_phones: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    /// True for a user synced from on-premises AD; absent (null) for a cloud-only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises_sync_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assigned_licenses: Vec<AssignedLicense>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub license_assignment_states: Vec<LicenseAssignmentState>,
    /// Registered a strong authentication method for MFA (`isMfaRegistered` in
    /// `reports/authenticationMethods/userRegistrationDetails`; not a property of the user
    /// resource, so no users read shows it). Absent: not registered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_registered: bool,
}

impl UserProfile {
    pub fn is_empty(&self) -> bool {
        *self == UserProfile::default()
    }
}

/// `assignedLicense`: a SKU assigned to the user, with the service plans turned off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignedLicense {
    pub sku_id: String,
    #[serde(default)]
    pub disabled_plans: Vec<String>,
}

/// `licenseAssignmentState`: how a SKU came to the user (directly, or by the group named in
/// `assignedByGroup`), and whether it took (`state` `Active` or `Error`, with `error`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseAssignmentState {
    pub sku_id: String,
    #[serde(default)]
    pub assigned_by_group: Option<String>,
    #[serde(default)]
    pub disabled_plans: Vec<String>,
    #[serde(default = "active")]
    pub state: String,
    /// `None`, or `CountViolation`, `MutuallyExclusiveViolation`, `DependencyViolation`, ...
    #[serde(default = "no_error")]
    pub error: String,
    #[serde(default)]
    pub last_updated_date_time: Option<String>,
}

fn active() -> String {
    "Active".into()
}

fn no_error() -> String {
    "None".into()
}

fn member() -> String {
    "Member".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureContract {
    pub customer_id: String,
    pub display_name: String,
    pub default_domain_name: String,
    #[serde(default = "reseller")]
    pub contract_type: String,
}

fn reseller() -> String {
    "ResellerPartner".into()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub apps: Vec<FixtureApp>,
    #[serde(default)]
    pub tenants: Vec<FixtureTenant>,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read fixture {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fixture {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

impl Fixture {
    /// Reads a YAML (or JSON, which is YAML) fixture file.
    pub fn load(path: &std::path::Path) -> Result<Fixture, FixtureError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
            path: shown.clone(),
            source,
        })?;
        Fixture::parse(&text).map_err(|message| FixtureError::Invalid {
            path: shown,
            message,
        })
    }

    /// JSON (as the sandbox saves its world) or YAML (as people write fixtures).
    pub fn parse(text: &str) -> Result<Fixture, String> {
        if text.trim_start().starts_with('{') {
            return serde_json::from_str(text).map_err(|e| e.to_string());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// A world of `tenants` customer tenants with `users` members each, plus the MSP's own
    /// (partner) tenant with a contract per customer: for tests, demos and benchmarks.
    pub fn generated(tenants: usize, users: usize) -> Fixture {
        let app = FixtureApp {
            client_id: SANDBOX_CLIENT_ID.into(),
            client_secret: SANDBOX_CLIENT_SECRET.into(),
            roles: default_app_roles(),
            federated_credentials: default_federated_credentials(),
        };
        let mut customers: Vec<FixtureTenant> = (0..tenants)
            .map(|i| FixtureTenant {
                users: (0..users)
                    .map(|u| FixtureUser {
                        id: None,
                        display_name: format!("User {u} of customer {i}"),
                        mail: Some(format!("user{u}@customer{i:05}.example")),
                        other_mails: Vec::new(),
                        user_type: "Member".into(),
                        external_user_state: None,
                        user_principal_name: None,
                        account_enabled: true,
                        profile: UserProfile::default(),
                    })
                    .collect(),
                ..FixtureTenant::new(
                    &crate::synthetic::synthetic_guid(i as u64),
                    &format!("Customer {i} Holdings"),
                    &format!("customer{i:05}.onmicrosoft.com"),
                )
            })
            .collect();
        let partner = FixtureTenant {
            contracts: customers
                .iter()
                .map(|c| FixtureContract {
                    customer_id: c.id.clone(),
                    display_name: c.display_name.clone(),
                    default_domain_name: c.domain.clone(),
                    contract_type: "ResellerPartner".into(),
                })
                .collect(),
            service_principals: vec![FixtureServicePrincipal::partner_customer_delegated_admin()],
            ..FixtureTenant::new(
                SANDBOX_PARTNER_TENANT_ID,
                "Contoso MSP (partner)",
                "contoso-msp.onmicrosoft.com",
            )
        };
        customers.insert(0, partner);
        Fixture {
            apps: vec![app],
            tenants: customers,
        }
    }
}

const DEPARTMENTS: &[(&str, &[&str])] = &[
    (
        "Sales",
        &["Account Executive", "Sales Manager", "Sales Engineer"],
    ),
    (
        "Finance",
        &["Accountant", "Controller", "Financial Analyst"],
    ),
    (
        "IT",
        &["Systems Engineer", "Help Desk Technician", "IT Manager"],
    ),
    (
        "Operations",
        &[
            "Operations Analyst",
            "Logistics Coordinator",
            "Operations Manager",
        ],
    ),
    ("HR", &["HR Partner", "Recruiter", "HR Manager"]),
];
const OFFICES: &[&str] = &["Boston 1", "Boston 2", "Chicago", "Denver"];
const GIVEN_NAMES: &[&str] = &[
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
];
const SURNAMES: &[&str] = &[
    "Ortiz", "Nakamura", "Okafor", "Larsen", "Singh", "Moreau", "Kowalski", "Haddad", "Silva",
];

impl FixtureUser {
    /// Whether the user is assigned the SKU `sku_id` (any case).
    pub fn holds(&self, sku_id: &str) -> bool {
        self.profile
            .assigned_licenses
            .iter()
            .any(|l| l.sku_id.eq_ignore_ascii_case(sku_id))
    }
}

/// Microsoft 365 E3 (`SPE_E3`), the SKU generated staff hold (but see
/// [`generated_staff_sku`]).
pub const GENERATED_E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
/// Microsoft 365 Business Standard (`O365_BUSINESS_PREMIUM`, which despite its part number
/// carries no Microsoft Entra ID P1 service plan), what the staff of every eighth generated
/// tenant hold instead of E3: their sign-in posture (MFA registration) is "not available".
pub const GENERATED_BUSINESS_STANDARD: &str = "f245ecc8-75af-4f8e-b61f-27d8114de5f3";

/// The SKU customer `tenant`'s staff hold: Business Standard for customers 3, 11, 19, ...,
/// E3 for the others.
pub fn generated_staff_sku(tenant: usize) -> &'static str {
    if tenant % 8 == 3 {
        GENERATED_BUSINESS_STANDARD
    } else {
        GENERATED_E3
    }
}

/// Global Administrator and Billing Administrator (built-in role template ids): the admins of
/// generated tenants (users 0 and 1).
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const BILLING_ADMINISTRATOR: &str = "b0f54661-2d74-4c50-afa3-1ec803f12efe";
/// Microsoft Teams Trial (`MS_TEAMS_IW`), a trial every tenth generated tenant has.
pub const GENERATED_TEAMS_TRIAL: &str = "74fbf1bb-47c6-4796-9623-77dc7371723b";

/// Customer `tenant`'s subscriptions: seats of its staff's SKU (E3, or Business Standard:
/// [`generated_staff_sku`]) for those who hold it, give or take (from two seats short,
/// over-assigned, to four to spare), renewing on a date spread over the year from 2027-01-15;
/// every thirteenth tenant five more seats expired and in their grace period, every tenth a
/// Teams trial ending 2027-01-10.
fn generated_subscriptions(tenant: usize, users: &[FixtureUser]) -> Vec<FixtureSubscription> {
    let sku = generated_staff_sku(tenant);
    let holders = users.iter().filter(|u| u.holds(sku)).count() as i64;
    let renewal = jiff::civil::date(2027, 1, 15)
        .checked_add(jiff::Span::new().days((tenant * 11 % 365) as i64))
        .expect("a date in 2027 or 2028");
    let subscription =
        |sku: &str, status: &str, seats: i64, trial: bool, next: String| FixtureSubscription {
            id: None,
            sku_id: sku.into(),
            sku_part_number: None,
            status: status.into(),
            total_licenses: seats,
            is_trial: trial,
            created_date_time: Some("2025-01-15T00:00:00Z".into()),
            next_lifecycle_date_time: Some(next),
            applies_to: "User".into(),
        };
    let mut subscriptions = vec![subscription(
        sku,
        "Enabled",
        (holders + (tenant % 7) as i64 - 2).max(0),
        false,
        format!("{renewal}T00:00:00Z"),
    )];
    if tenant % 13 == 12 {
        subscriptions.push(subscription(
            sku,
            "Warning",
            5,
            false,
            "2027-01-05T00:00:00Z".into(),
        ));
    }
    if tenant % 10 == 9 {
        subscriptions.push(subscription(
            GENERATED_TEAMS_TRIAL,
            "Enabled",
            100,
            true,
            "2027-01-10T00:00:00Z".into(),
        ));
    }
    subscriptions
}

/// A generated user's id: customer `tenant`, user `user` (deterministic, so fixtures of the
/// same size name the same users).
pub fn generated_user_id(tenant: usize, user: usize) -> String {
    format!("{tenant:08x}-0000-4000-a000-{user:012x}")
}

/// A generated group's id in customer `tenant`.
pub fn generated_group_id(tenant: usize, group: usize) -> String {
    format!("{tenant:08x}-0000-4000-b000-{group:012x}")
}

impl Fixture {
    /// `generated`, with each customer's users as end-user sync sees a real directory: a spread
    /// of departments, offices, companies, job titles and phones, every 25th account disabled,
    /// every 50th a guest, deterministic ids (`generated_user_id`), and per tenant nested groups:
    /// "All Staff" holds the IT users and the groups "Sales" and "Finance"; "Finance" holds the
    /// Finance users and "Finance Approvers" (three of them again). For the sign-in posture:
    /// user 0 a Global Administrator and user 1 a Billing Administrator, five staff in six
    /// registered for MFA (user 1 not in every third tenant), and every eighth tenant's staff on
    /// Business Standard, without Entra ID P1 ([`generated_staff_sku`]). No randomness: the
    /// same sizes give the same world.
    pub fn generated_with_profiles(tenants: usize, users: usize) -> Fixture {
        let mut fixture = Fixture::generated(tenants, users);
        // The partner tenant comes first; customer `i` is tenant `i + 1`.
        for (i, tenant) in fixture.tenants.iter_mut().skip(1).enumerate() {
            let company = tenant.display_name.clone();
            let mut by_department: Vec<Vec<String>> = vec![Vec::new(); DEPARTMENTS.len()];
            for (u, user) in tenant.users.iter_mut().enumerate() {
                let id = generated_user_id(i, u);
                let d = (u * 7 + i) % DEPARTMENTS.len();
                let (department, titles) = DEPARTMENTS[d];
                let given = GIVEN_NAMES[(u + i) % GIVEN_NAMES.len()];
                let surname = SURNAMES[(u / GIVEN_NAMES.len() + i) % SURNAMES.len()];
                user.id = Some(id.clone());
                user.display_name = format!("{given} {surname} {u}");
                user.account_enabled = u % 25 != 24;
                if u % 50 == 49 {
                    user.user_type = "Guest".into();
                    user.mail = Some(format!(
                        "{}.{u}@partner{i:05}.example",
                        given.to_lowercase()
                    ));
                    user.external_user_state = Some("Accepted".into());
                    user.profile = UserProfile {
                        given_name: Some(given.into()),
                        surname: Some(surname.into()),
                        company_name: Some(format!("Partner {i} LLC")),
                        ..UserProfile::default()
                    };
                    continue;
                }
                by_department[d].push(id);
                // Four staff in five hold Microsoft 365 E3 (or Business Standard), assigned
                // directly; one a tenant was to get it through "All Staff" and did not, for
                // want of seats (group licensing reports the error; the licence is not
                // assigned).
                let sku = generated_staff_sku(i);
                let state = |group: Option<String>, error: &str| LicenseAssignmentState {
                    sku_id: sku.into(),
                    assigned_by_group: group,
                    disabled_plans: Vec::new(),
                    state: if error == "None" { "Active" } else { "Error" }.into(),
                    error: error.into(),
                    last_updated_date_time: None,
                };
                let (assigned_licenses, license_assignment_states) = if u == 3 {
                    (
                        Vec::new(),
                        vec![state(Some(generated_group_id(i, 0)), "CountViolation")],
                    )
                } else if u % 5 == 4 {
                    (Vec::new(), Vec::new())
                } else {
                    (
                        vec![AssignedLicense {
                            sku_id: sku.into(),
                            disabled_plans: Vec::new(),
                        }],
                        vec![state(None, "None")],
                    )
                };
                user.profile = UserProfile {
                    assigned_licenses,
                    license_assignment_states,
                    given_name: Some(given.into()),
                    surname: Some(surname.into()),
                    department: Some(department.into()),
                    office_location: Some(OFFICES[(u + i / 3) % OFFICES.len()].into()),
                    // A tenth of the staff are contractors of another company.
                    company_name: Some(if u % 10 == 3 {
                        "Contoso Staffing".into()
                    } else {
                        company.clone()
                    }),
                    job_title: Some(titles[u % titles.len()].into()),
                    business_phones: vec![format!("+1 617 555 {:04}", u % 10_000)],
                    mobile_phone: (u % 2 == 0).then(|| format!("+1 857 555 {:04}", u % 10_000)),
                    // Five staff in six registered for MFA; user 1, an admin, not in every
                    // third tenant (customers 1, 4, 7, ...).
                    mfa_registered: u % 6 != 5 && !(u == 1 && i % 3 == 1),
                    ..UserProfile::default()
                };
            }
            // User 0 is a Global Administrator, user 1 a Billing Administrator.
            tenant.role_assignments = [(0, GLOBAL_ADMINISTRATOR), (1, BILLING_ADMINISTRATOR)]
                .into_iter()
                .filter(|(u, _)| *u < tenant.users.len())
                .map(|(u, role)| FixtureRoleAssignment {
                    id: Some(format!("{i:08x}-0000-4000-c000-{u:012x}")),
                    principal_id: generated_user_id(i, u),
                    role_definition_id: role.into(),
                    directory_scope_id: "/".into(),
                })
                .collect();
            let group = |g: usize, name: &str, members: Vec<String>| FixtureGroup {
                id: generated_group_id(i, g),
                display_name: name.into(),
                mail: None,
                is_assignable_to_role: false,
                members,
            };
            let [sales, finance, it, ..] = &by_department[..] else {
                unreachable!("five departments")
            };
            let approvers: Vec<String> = finance.iter().take(3).cloned().collect();
            let mut all_staff = vec![generated_group_id(i, 1), generated_group_id(i, 2)];
            all_staff.extend(it.iter().cloned());
            // User 3's licence comes through "All Staff" (and failed): a direct member.
            let third = generated_user_id(i, 3);
            if tenant.users.len() > 3 && !all_staff.contains(&third) {
                all_staff.push(third);
            }
            let mut finance_members = finance.clone();
            finance_members.push(generated_group_id(i, 3));
            tenant.subscriptions = generated_subscriptions(i, &tenant.users);
            // Scores from 30% to 75% of the maximum, most rising, every seventh falling.
            tenant.secure_score = Some(FixtureSecureScore {
                start_percent: 30.0 + (i * 17 % 46) as f64,
                daily_change: if i % 7 == 6 {
                    -0.2
                } else {
                    0.05 * (i % 4) as f64
                },
                days: 90,
            });
            tenant.groups = vec![
                group(0, "All Staff", all_staff),
                group(1, "Sales", sales.clone()),
                group(2, "Finance", finance_members),
                group(3, "Finance Approvers", approvers),
            ];
        }
        fixture
    }
}

/// Client id of the app in generated fixtures (not a real app).
pub const SANDBOX_CLIENT_ID: &str = "5a3d1c2e-0000-4000-8000-00000000a11c";
/// Its secret in the sandbox (not a real secret; only ever accepted by the sandbox).
pub const SANDBOX_CLIENT_SECRET: &str = "sandbox-only-secret";
/// The MSP's own tenant in generated fixtures.
pub const SANDBOX_PARTNER_TENANT_ID: &str = "0c0a7f1e-0000-4000-8000-0000000c0a7f";

impl FixtureTenant {
    /// A consented tenant with an empty directory, every permission of the app, no PIM.
    pub fn new(id: &str, display_name: &str, domain: &str) -> FixtureTenant {
        FixtureTenant {
            id: id.to_string(),
            display_name: display_name.to_string(),
            domain: domain.to_string(),
            consent: true,
            users: Vec::new(),
            contracts: Vec::new(),
            role_assignments: Vec::new(),
            permissions: None,
            app_directory_roles: Vec::new(),
            b2b_invitations: true,
            groups: Vec::new(),
            service_principals: Vec::new(),
            entra_id_p2: false,
            role_eligibilities: Vec::new(),
            deleted_users: Vec::new(),
            change_log: None,
            subscriptions: Vec::new(),
            secure_score: None,
            security_defaults: true,
            delegated_admin_relationships: Vec::new(),
        }
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_profiles_are_spread_deterministic_and_nested() {
        let a = Fixture::generated_with_profiles(2, 100);
        let b = Fixture::generated_with_profiles(2, 100);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let customer = &a.tenants[1];
        let departments: std::collections::BTreeSet<_> = customer
            .users
            .iter()
            .filter_map(|u| u.profile.department.as_deref())
            .collect();
        assert_eq!(departments.len(), 5, "{departments:?}");
        let offices: std::collections::BTreeSet<_> = customer
            .users
            .iter()
            .filter_map(|u| u.profile.office_location.as_deref())
            .collect();
        assert_eq!(offices.len(), 4, "{offices:?}");
        assert_eq!(
            customer.users.iter().filter(|u| !u.account_enabled).count(),
            4
        );
        assert_eq!(
            customer
                .users
                .iter()
                .filter(|u| u.user_type == "Guest")
                .count(),
            2
        );
        // "All Staff" holds "Finance", which holds "Finance Approvers": nested twice.
        let dir = super::super::directory::Directory::from_fixture(customer);
        let all = dir.transitive_users(&generated_group_id(0, 0)).unwrap();
        let finance = dir.transitive_users(&generated_group_id(0, 2)).unwrap();
        assert!(all.len() > finance.len() && !finance.is_empty());
        assert!(
            all.iter()
                .any(|u| u.profile.department.as_deref() == Some("Finance"))
        );
        assert!(
            all.iter()
                .all(|u| u.profile.department.as_deref() != Some("HR"))
        );
    }

    /// The fleet-size world: 1,000 customers of 500 users. `cargo test --release --lib
    /// fleet_size -- --ignored --nocapture` prints the time and the process's memory.
    #[test]
    #[ignore = "fleet-size measurement; run explicitly"]
    fn fleet_size_world_builds_in_seconds() {
        fn rss_kib() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0)
        }
        let before = rss_kib();
        let started = std::time::Instant::now();
        let fixture = Fixture::generated_with_profiles(1000, 500);
        let generated = started.elapsed();
        let world = super::super::World::new(&fixture, Default::default());
        let built = started.elapsed();
        let peak = rss_kib();
        drop(fixture);
        let after = rss_kib();
        let users: usize = world.tenants.values().map(|d| d.users.len()).sum();
        assert_eq!(users, 500_000);
        println!(
            "fixture {generated:?}, world {built:?}; RSS before {before} KiB, with fixture and world {peak} KiB, world alone {after} KiB"
        );
    }
}
