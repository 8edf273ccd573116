//! Which application permissions tenantform's own Graph requests need, and the permissions an
//! access token carries (its `roles` claim).
//!
//! With these, a 403 becomes "permission missing: User.Invite.All (or ...)" when the token
//! lacks every permission the request accepts, whatever error code the service behind the
//! endpoint uses; a 403 while the token holds one of them is something else (a sensitive
//! action, a tenant policy) and is reported as Graph's error.
//!
//! The lists are Microsoft Learn's "Permissions" tables (application row: least privileged
//! first, then the higher ones), one per API page: invitation-post, user-list, user-update,
//! user-delete, rbacapplication-list-roleassignments, rbacapplication-post-roleassignments,
//! unifiedroleassignment-delete, directory-deleteditems-list, contract-list, organization-list.

/// `POST /invitations` (invitation-post.md).
pub const INVITE: &[&str] = &[
    "User.Invite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// `GET /users` (user-list.md).
pub const USERS_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// `GET /groups`, `GET /groups/{id}/transitiveMembers` (group-list.md,
/// group-list-transitivemembers.md).
pub const GROUPS_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// `PATCH /users/{id}` (user-update.md; the narrower permissions cover only `identities` and
/// `accountEnabled`).
pub const USERS_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
/// `DELETE /users/{id}` (user-delete.md: no higher permission).
pub const USERS_DELETE: &[&str] = &["User.ReadWrite.All"];
/// `GET /directory/deletedItems/microsoft.graph.user` (directory-deleteditems-list.md).
pub const DELETED_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// `GET roleManagement/directory/roleAssignments` and `roleDefinitions`
/// (rbacapplication-list-roleassignments.md, directory provider).
pub const ROLES_READ: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "Directory.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
];
/// `POST`/`DELETE roleManagement/directory/roleAssignments`
/// (rbacapplication-post-roleassignments.md, unifiedroleassignment-delete.md).
pub const ROLES_WRITE: &[&str] = &["RoleManagement.ReadWrite.Directory"];
/// `GET /contracts` (contract-list.md).
pub const CONTRACTS_READ: &[&str] = &["Directory.Read.All", "Directory.ReadWrite.All"];
/// `GET /organization` (organization-list.md).
pub const ORGANIZATION_READ: &[&str] = &[
    "Organization.Read.All",
    "Directory.Read.All",
    "Organization.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// `GET /subscribedSkus` (subscribedsku-list.md; newer pages name LicenseAssignment.Read.All
/// least privileged).
pub const SUBSCRIBED_SKUS_READ: &[&str] = &[
    "LicenseAssignment.Read.All",
    "Organization.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Organization.ReadWrite.All",
];
/// `GET /directory/subscriptions` (directory-list-subscriptions.md).
pub const SUBSCRIPTIONS_READ: &[&str] = &[
    "Organization.Read.All",
    "Directory.Read.All",
    "Organization.ReadWrite.All",
];
/// `GET /security/secureScores`, `/security/secureScoreControlProfiles`.
pub const SECURE_SCORE_READ: &[&str] = &["SecurityEvents.Read.All", "SecurityEvents.ReadWrite.All"];

/// `GET /reports/authenticationMethods/userRegistrationDetails`
/// (authenticationmethodsroot-list-userregistrationdetails.md): AuditLog.Read.All, "Not
/// available" as higher on the live page. A later include names
/// UserAuthenticationMethod.Read.All as higher, but Graph refuses a token holding only that
/// with 403 `Authentication_MSGraphPermissionMissing` naming AuditLog.Read.All
/// (microsoft-graph-docs-contrib#1852), so only AuditLog.Read.All is believed.
pub const REGISTRATION_DETAILS_READ: &[&str] = &["AuditLog.Read.All"];
/// `GET /policies/identitySecurityDefaultsEnforcementPolicy`
/// (identitysecuritydefaultsenforcementpolicy-get.md): Policy.Read.All; higher
/// Policy.ReadWrite.SecurityDefaults.
pub const SECURITY_DEFAULTS_READ: &[&str] =
    &["Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"];

/// `GET tenantRelationships/delegatedAdminRelationships[/{id}[/accessAssignments]]`
/// (tenantrelationship-list-delegatedadminrelationships.md, delegatedadminrelationship-get.md,
/// delegatedadminrelationship-list-accessassignments.md).
pub const GDAP_READ: &[&str] = &[
    "DelegatedAdminRelationship.Read.All",
    "DelegatedAdminRelationship.ReadWrite.All",
];
/// Creating, updating, deleting relationships and access assignments, and their `requests`
/// (tenantrelationship-post-delegatedadminrelationships.md and the pages beside it: "Not
/// available" as higher). App-only also needs the Partner Customer Delegated Administration
/// service principal in the partner tenant.
pub const GDAP_WRITE: &[&str] = &["DelegatedAdminRelationship.ReadWrite.All"];
/// `GET /servicePrincipals` (by `$filter` or `(appId='...')`), `GET /servicePrincipals/{id}`
/// and its `appRoleAssignedTo` (serviceprincipal-list.md, serviceprincipal-get.md,
/// serviceprincipal-list-approleassignedto.md): Application.Read.All; higher
/// Application.ReadWrite.All, Directory.Read.All, Directory.ReadWrite.All.
pub const SERVICE_PRINCIPALS_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// `POST /servicePrincipals` (serviceprincipal-post-serviceprincipals.md): application
/// Application.ReadWrite.OwnedBy; higher Application.ReadWrite.All, Directory.ReadWrite.All.
pub const SERVICE_PRINCIPALS_CREATE: &[&str] = &[
    "Application.ReadWrite.OwnedBy",
    "Application.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// `POST`/`DELETE /servicePrincipals/{id}/appRoleAssignedTo`
/// (serviceprincipal-post-approleassignedto.md, serviceprincipal-delete-approleassignedto.md):
/// AppRoleAssignment.ReadWrite.All, together with Application.Read.All (or Directory.Read.All)
/// to read the resource: only the first half is listed here, the part a grant is about.
pub const APP_ROLE_GRANT: &[&str] = &["AppRoleAssignment.ReadWrite.All"];

/// The permissions (any one of them) a request tenantform sends needs, from its method and
/// path (query and version prefix ignored); `None` for a request this table does not know.
pub fn needed(method: &str, path: &str) -> Option<&'static [&'static str]> {
    let path = path.split('?').next().unwrap_or(path);
    // Next links are absolute: keep the path after the host and the version.
    let path = match path
        .strip_prefix("https://")
        .or_else(|| path.strip_prefix("http://"))
    {
        Some(rest) => rest.find('/').map_or("", |i| &rest[i..]),
        None => path,
    };
    let path = path
        .strip_prefix("/v1.0")
        .or_else(|| path.strip_prefix("/beta"))
        .unwrap_or(path);
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    Some(
        match (method.to_ascii_uppercase().as_str(), segments.as_slice()) {
            ("POST", ["invitations"]) => INVITE,
            ("GET", ["users", ..]) => USERS_READ,
            ("PATCH", ["users", _]) => USERS_WRITE,
            ("DELETE", ["users", _]) => USERS_DELETE,
            ("GET", ["directory", "deletedItems", ..]) => DELETED_READ,
            ("GET", ["directory", "subscriptions", ..]) => SUBSCRIPTIONS_READ,
            ("GET", ["subscribedSkus", ..]) => SUBSCRIBED_SKUS_READ,
            (
                "GET",
                [
                    "security",
                    "secureScores" | "secureScoreControlProfiles",
                    ..,
                ],
            ) => SECURE_SCORE_READ,
            ("GET", ["roleManagement", "directory", ..]) => ROLES_READ,
            ("POST" | "DELETE", ["roleManagement", "directory", "roleAssignments", ..]) => {
                ROLES_WRITE
            }
            ("GET", ["contracts", ..]) => CONTRACTS_READ,
            ("GET", ["organization", ..]) => ORGANIZATION_READ,
            ("GET", [sp, ..]) if sp.starts_with("servicePrincipals") => SERVICE_PRINCIPALS_READ,
            ("POST", ["servicePrincipals"]) => SERVICE_PRINCIPALS_CREATE,
            ("POST" | "DELETE", [sp, _, "appRoleAssignedTo", ..])
                if sp.starts_with("servicePrincipals") =>
            {
                APP_ROLE_GRANT
            }
            (
                "GET",
                [
                    "reports",
                    "authenticationMethods",
                    "userRegistrationDetails",
                    ..,
                ],
            ) => REGISTRATION_DETAILS_READ,
            ("GET", ["policies", "identitySecurityDefaultsEnforcementPolicy"]) => {
                SECURITY_DEFAULTS_READ
            }
            ("GET", ["tenantRelationships", "delegatedAdminRelationships", ..]) => GDAP_READ,
            (
                "POST" | "PATCH" | "DELETE",
                ["tenantRelationships", "delegatedAdminRelationships", ..],
            ) => GDAP_WRITE,
            _ => return None,
        },
    )
}

/// "User.Invite.All (or ...) and RoleManagement.ReadWrite.Directory in tenant T: the app's
/// token there has ...": the message of a permission-missing failure found from the token.
pub fn missing_message(missing: &[&[&str]], tenant: &str, roles: &[String]) -> String {
    let names: Vec<String> = missing.iter().map(|m| describe_any_of(m)).collect();
    format!(
        "{} in tenant {tenant}: {}",
        names.join(" and "),
        describe_granted(roles)
    )
}

/// Whether `roles` holds any of `any_of`.
pub fn satisfied(any_of: &[&str], roles: &[String]) -> bool {
    any_of.iter().any(|p| roles.iter().any(|r| r == p))
}

/// `User.Invite.All (or User.ReadWrite.All, Directory.ReadWrite.All)`.
pub fn describe_any_of(any_of: &[&str]) -> String {
    match any_of {
        [] => String::new(),
        [one] => (*one).to_string(),
        [first, rest @ ..] => format!("{first} (or {})", rest.join(", ")),
    }
}

/// "the app's token there has A, B" / "the app's token there has no application permissions".
pub fn describe_granted(roles: &[String]) -> String {
    if roles.is_empty() {
        "the app's token there has no application permissions".into()
    } else {
        format!("the app's token there has {}", roles.join(", "))
    }
}

/// What a kind of managed object needs in a tenant: each entry is satisfied by any one of its
/// permissions. Guests are listed and invited; directory roles are listed and assigned.
pub fn needs_for_guests() -> Vec<&'static [&'static str]> {
    vec![USERS_READ, INVITE]
}

pub fn needs_for_directory_roles() -> Vec<&'static [&'static str]> {
    vec![ROLES_WRITE]
}

/// What reading a tenant for a plan needs: the permissions of its required sources (its
/// guests and its role assignments; see `graph::sources`).
pub fn needs_for_read() -> Vec<&'static [&'static str]> {
    super::sources::SOURCES
        .iter()
        .filter(|s| !s.report_only)
        .map(|s| s.permissions)
        .collect()
}

/// The entries of `needs` the token's roles satisfy none of.
pub fn missing(
    needs: &[&'static [&'static str]],
    roles: &[String],
) -> Vec<&'static [&'static str]> {
    let mut out: Vec<&'static [&'static str]> = Vec::new();
    for need in needs {
        if !satisfied(need, roles) && !out.contains(need) {
            out.push(need);
        }
    }
    out
}

/// What a person's (delegated) token needs for one of the application-permission lists
/// above: a delegated permission (any one) and, where the operation is not open to every
/// member, a directory role of the person's (any one; Global Administrator always does).
/// From the "Delegated (work or school account)" rows of the same Learn pages and their
/// `rbac-for-apis` notes ("the signed-in user must be assigned a supported Microsoft Entra
/// role"). Kept apart from the sandbox's table on purpose, like the application one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DelegatedNeed {
    pub scopes: &'static [&'static str],
    /// A second permission the request needs as well (any one of these); empty: none. A grant
    /// of an app role needs AppRoleAssignment.ReadWrite.All *and* a read of the resource
    /// service principal (serviceprincipal-post-approleassignedto.md).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub and_one_of: &'static [&'static str],
    /// Whether [`ACCESS_AS_USER`] also covers it (the directory's own objects).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub as_user: bool,
    /// `None`: any member may.
    pub roles: Option<&'static [&'static str]>,
}

/// "Access directory as the signed in user": what the Azure CLI's token for Graph carries
/// instead of the least privileged scopes (Azure/azure-powershell#24334 shows it in such a
/// token). Learn lists it as a higher privileged delegated permission on the directory's
/// pages, and Graph's permission metadata describes it as "the same access to information in
/// the directory as the signed-in user": it covers a need whose `as_user` is set (the
/// directory's own objects), not security, reports or policies (#24334: refused reading a
/// policy). Which pages list it is *unconfirmed* page by page; a person's reads are sent
/// anyway and Graph's 403 decides (`read::read_tenant`).
pub const ACCESS_AS_USER: &str = "Directory.AccessAsUser.All";

/// `GET /directory/deletedItems/microsoft.graph.user` for a person: the same list as
/// reading users (so it cannot be told from [`USERS_READ`] by value), and User
/// Administrator or Global Reader.
pub const DELETED_READ_DELEGATED: DelegatedNeed = DelegatedNeed {
    scopes: DELETED_READ,
    and_one_of: &[],
    as_user: true,
    roles: Some(&["User Administrator", "Global Reader"]),
};

/// The delegated need matching an application-permission list (by its permissions).
pub fn delegated_for(any_of: &[&str]) -> DelegatedNeed {
    let open = |scopes| DelegatedNeed {
        scopes,
        and_one_of: &[],
        as_user: true,
        roles: None,
    };
    let with = |scopes, roles| DelegatedNeed {
        scopes,
        and_one_of: &[],
        as_user: true,
        roles: Some(roles),
    };
    // Other services than the directory: Directory.AccessAsUser.All does not cover them.
    let not_as_user = |need: DelegatedNeed| DelegatedNeed {
        as_user: false,
        ..need
    };
    const READERS: &[&str] = &["Security Reader", "Security Administrator", "Global Reader"];
    match any_of {
        a if a == USERS_READ => open(&[
            "User.ReadBasic.All",
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ]),
        a if a == INVITE => open(INVITE),
        a if a == GROUPS_READ => open(GROUPS_READ),
        a if a == ROLES_READ => open(ROLES_READ),
        a if a == CONTRACTS_READ => open(CONTRACTS_READ),
        a if a == ORGANIZATION_READ => open(&[
            "User.Read",
            "Organization.Read.All",
            "Directory.Read.All",
            "Organization.ReadWrite.All",
            "Directory.ReadWrite.All",
        ]),
        a if a == USERS_WRITE => with(USERS_WRITE, &["User Administrator"]),
        a if a == USERS_DELETE => with(
            USERS_DELETE,
            &[
                "User Administrator",
                "Privileged Authentication Administrator",
            ],
        ),
        a if a == ROLES_WRITE => with(ROLES_WRITE, &["Privileged Role Administrator"]),
        a if a == SUBSCRIBED_SKUS_READ || a == SUBSCRIPTIONS_READ => with(
            SUBSCRIBED_SKUS_READ,
            &[
                "Global Reader",
                "Directory Readers",
                "License Administrator",
                "Billing Administrator",
            ],
        ),
        a if a == SECURE_SCORE_READ => not_as_user(with(SECURE_SCORE_READ, READERS)),
        // Reading service principals is a default member permission.
        a if a == SERVICE_PRINCIPALS_READ => open(SERVICE_PRINCIPALS_READ),
        // serviceprincipal-post-serviceprincipals.md: for a multi-tenant app the caller must
        // be Application Administrator or Cloud Application Administrator.
        a if a == SERVICE_PRINCIPALS_CREATE => with(
            &["Application.ReadWrite.All", "Directory.ReadWrite.All"],
            &[
                "Cloud Application Administrator",
                "Application Administrator",
            ],
        ),
        // Granting an app role of Microsoft Graph: Privileged Role Administrator. The page
        // lists application administrators too, but Entra's built-in roles reference says
        // they may grant "application permissions excluding ... Microsoft Graph"; tenantform
        // grants only Microsoft Graph's.
        // The page's delegated row, like its application row, is "AppRoleAssignment.ReadWrite.All
        // and Application.Read.All" (higher: "... and Directory.Read.All"): both halves.
        a if a == APP_ROLE_GRANT => DelegatedNeed {
            and_one_of: SERVICE_PRINCIPALS_READ,
            ..with(APP_ROLE_GRANT, &["Privileged Role Administrator"])
        },
        a if a == REGISTRATION_DETAILS_READ => not_as_user(with(
            REGISTRATION_DETAILS_READ,
            &[
                "Reports Reader",
                "Security Reader",
                "Security Administrator",
                "Global Reader",
            ],
        )),
        a if a == SECURITY_DEFAULTS_READ => not_as_user(with(
            SECURITY_DEFAULTS_READ,
            &[
                "Security Reader",
                "Security Administrator",
                "Global Reader",
                "Conditional Access Administrator",
            ],
        )),
        // Unknown: the same permissions, any member (Graph's 403 will say otherwise).
        _ => DelegatedNeed {
            scopes: &[],
            and_one_of: &[],
            as_user: false,
            roles: None,
        },
    }
}

/// A person's token: its delegated permissions (`scp`) and directory role template ids in
/// the token's tenant (`wids`). `None` for an app-only token or an opaque one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delegation {
    pub scopes: Vec<String>,
    pub wids: Vec<String>,
}

/// For a partner engineer signed in to a customer through GDAP, whether `wids` holds the
/// relationship's roles is *unconfirmed* (no source found): the roles only explain a refusal.
pub fn token_delegation(token: &str) -> Option<Delegation> {
    let claims = super::credentials::jwt_claims(token)?;
    let scp = claims["scp"].as_str()?;
    Some(Delegation {
        scopes: scp.split_whitespace().map(str::to_string).collect(),
        wids: claims["wids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_lowercase))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// What a token was granted: application permissions (`roles`) or a person's delegation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grants {
    App(Vec<String>),
    Person(Delegation),
}

/// A token's grants, read from its payload (not verified); `None` for an opaque token.
pub fn token_grants(token: &str) -> Option<Grants> {
    match token_delegation(token) {
        Some(person) => Some(Grants::Person(person)),
        None => token_roles(token).map(Grants::App),
    }
}

impl Delegation {
    /// The person's directory roles by name (template ids the role table does not know
    /// stay ids).
    pub fn role_names(&self) -> Vec<String> {
        let catalog = crate::roles::RoleCatalog::builtin();
        self.wids
            .iter()
            .map(|id| catalog.name_or_id(id).to_string())
            .collect()
    }

    /// What this person's token lacks for `need`: `None` when a scope covers it and a role
    /// of the person's allows it; else the missing scope or role, described.
    pub fn missing(&self, need: &DelegatedNeed) -> Option<String> {
        let as_user = need.as_user && self.scopes.iter().any(|s| s == ACCESS_AS_USER);
        if !as_user
            && !need.scopes.is_empty()
            && !need
                .scopes
                .iter()
                .any(|p| self.scopes.iter().any(|s| s == p))
        {
            return Some(format!("{} (delegated)", describe_any_of(need.scopes)));
        }
        if !as_user
            && !need.and_one_of.is_empty()
            && !need
                .and_one_of
                .iter()
                .any(|p| self.scopes.iter().any(|s| s == p))
        {
            return Some(format!("{} (delegated)", describe_any_of(need.and_one_of)));
        }
        let roles = need.roles?;
        let names = self.role_names();
        let held = roles
            .iter()
            .chain(&["Global Administrator"])
            .any(|r| names.iter().any(|n| n.eq_ignore_ascii_case(r)));
        if held {
            None
        } else {
            let mut any_of: Vec<&str> = roles.to_vec();
            any_of.push("Global Administrator");
            Some(format!(
                "directory role {} for the signed-in person",
                describe_any_of(&any_of)
            ))
        }
    }
}

/// The `roles` claim of a JWT access token (the payload is read, not verified: tenantform only
/// uses it to explain a refusal). Not a JWT, or no claim: `None`.
/// A person's (delegated) token has no `roles`: `None`, so what it may read is not judged
/// from application permissions (see [`token_delegation`]).
pub fn token_roles(token: &str) -> Option<Vec<String>> {
    let claims = super::credentials::jwt_claims(token)?;
    if claims.get("scp").is_some() && claims.get("roles").is_none() {
        return None;
    }
    Some(
        claims["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_their_permissions() {
        assert_eq!(needed("POST", "/invitations"), Some(INVITE));
        assert_eq!(
            needed("GET", "/users?$filter=userType eq 'Guest'"),
            Some(USERS_READ)
        );
        assert_eq!(
            needed(
                "GET",
                "http://127.0.0.1:1/v1.0/roleManagement/directory/roleAssignments?$skiptoken=1"
            ),
            Some(ROLES_READ)
        );
        assert_eq!(
            needed("DELETE", "/roleManagement/directory/roleAssignments/x"),
            Some(ROLES_WRITE)
        );
        assert_eq!(needed("POST", "/$batch"), None);
        assert_eq!(
            needed("GET", "/servicePrincipals(appId='x')?$select=id"),
            Some(SERVICE_PRINCIPALS_READ)
        );
        assert_eq!(
            needed("POST", "/servicePrincipals"),
            Some(SERVICE_PRINCIPALS_CREATE)
        );
        assert_eq!(
            needed("POST", "/servicePrincipals/g/appRoleAssignedTo"),
            Some(APP_ROLE_GRANT)
        );
        assert_eq!(
            needed(
                "GET",
                "http://127.0.0.1:1/v1.0/reports/authenticationMethods/userRegistrationDetails?$skiptoken=100"
            ),
            Some(REGISTRATION_DETAILS_READ)
        );
        assert_eq!(
            needed(
                "GET",
                "/policies/identitySecurityDefaultsEnforcementPolicy?$select=id,isEnabled"
            ),
            Some(SECURITY_DEFAULTS_READ)
        );
    }

    #[test]
    fn messages_name_the_alternatives() {
        assert_eq!(
            describe_any_of(INVITE),
            "User.Invite.All (or User.ReadWrite.All, Directory.ReadWrite.All)"
        );
        let roles = vec!["User.Read.All".to_string()];
        assert_eq!(missing(&needs_for_guests(), &roles), vec![INVITE]);
    }

    #[test]
    fn reading_needs_what_the_required_sources_need() {
        assert_eq!(needs_for_read(), vec![USERS_READ, ROLES_READ]);
    }

    #[test]
    fn directory_access_as_user_covers_directory_needs_only() {
        let cli = Delegation {
            scopes: [
                "AuditLog.Read.All",
                "Directory.AccessAsUser.All",
                "email",
                "Group.ReadWrite.All",
                "openid",
                "profile",
                "User.ReadWrite.All",
            ]
            .map(String::from)
            .to_vec(),
            // Global Administrator.
            wids: vec!["62e90394-69f5-4237-9190-012177145e10".into()],
        };
        for need in [
            USERS_READ,
            ROLES_READ,
            ROLES_WRITE,
            SERVICE_PRINCIPALS_CREATE,
            APP_ROLE_GRANT,
            SUBSCRIBED_SKUS_READ,
        ] {
            assert_eq!(cli.missing(&delegated_for(need)), None, "{need:?}");
        }
        assert_eq!(cli.missing(&DELETED_READ_DELEGATED), None);
        assert_eq!(
            cli.missing(&delegated_for(SECURE_SCORE_READ)).as_deref(),
            Some("SecurityEvents.Read.All (or SecurityEvents.ReadWrite.All) (delegated)")
        );
        assert!(
            cli.missing(&delegated_for(SECURITY_DEFAULTS_READ))
                .is_some()
        );
        assert_eq!(cli.missing(&delegated_for(REGISTRATION_DETAILS_READ)), None);
    }

    #[test]
    fn a_persons_grant_needs_a_read_of_the_resource_too() {
        let pra = "e8611ab8-c189-46e8-94e1-60213ab1f814".to_string();
        let only_grant = Delegation {
            scopes: vec!["AppRoleAssignment.ReadWrite.All".into()],
            wids: vec![pra.clone()],
        };
        assert_eq!(
            only_grant
                .missing(&delegated_for(APP_ROLE_GRANT))
                .as_deref(),
            Some(
                "Application.Read.All (or Application.ReadWrite.All, Directory.Read.All, Directory.ReadWrite.All) (delegated)"
            )
        );
        let both = Delegation {
            scopes: vec![
                "AppRoleAssignment.ReadWrite.All".into(),
                "Directory.Read.All".into(),
            ],
            wids: vec![pra],
        };
        assert_eq!(both.missing(&delegated_for(APP_ROLE_GRANT)), None);
    }

    #[test]
    fn roles_come_from_the_payload() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!(
            "{}.{}.sig",
            b64.encode(b"{}"),
            b64.encode(br#"{"roles":["User.Read.All"]}"#)
        );
        assert_eq!(token_roles(&token), Some(vec!["User.Read.All".to_string()]));
        assert_eq!(token_roles("opaque"), None);
        // A person's token: no roles to judge by, its scopes and roles instead.
        let person = format!(
            "{}.{}.x",
            b64.encode(b"{}"),
            b64.encode(br#"{"scp":"User.Read.All RoleManagement.ReadWrite.Directory","wids":["E8611AB8-C189-46E8-94E1-60213AB1F814"]}"#)
        );
        assert_eq!(token_roles(&person), None);
        let d = token_delegation(&person).unwrap();
        assert_eq!(d.role_names(), vec!["Privileged Role Administrator"]);
        assert_eq!(d.missing(&delegated_for(ROLES_WRITE)), None);
        assert_eq!(
            d.missing(&delegated_for(INVITE)).as_deref(),
            Some("User.Invite.All (or User.ReadWrite.All, Directory.ReadWrite.All) (delegated)")
        );
        assert_eq!(
            d.missing(&delegated_for(SECURE_SCORE_READ)).as_deref(),
            Some("SecurityEvents.Read.All (or SecurityEvents.ReadWrite.All) (delegated)")
        );
        let reader = Delegation {
            scopes: vec!["SecurityEvents.Read.All".into()],
            wids: Vec::new(),
        };
        assert_eq!(
            reader.missing(&delegated_for(SECURE_SCORE_READ)).as_deref(),
            Some(
                "directory role Security Reader (or Security Administrator, Global Reader, Global Administrator) for the signed-in person"
            )
        );
    }
}
