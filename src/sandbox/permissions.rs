//! Which application permissions each sandbox endpoint accepts, as Microsoft's pages list
//! them, and the "sensitive actions" that need more than a permission in app-only mode.
//!
//! This is the sandbox playing Graph: it is deliberately separate from tenantform's own idea
//! of what its requests need (`crate::graph::permissions`), so a wrong belief there shows up as
//! a test failure instead of being mirrored here.
//!
//! Sources (Microsoft Learn, "Permissions" section of each API page, application row, least
//! privileged first, then the higher privileged ones):
//! - `POST /invitations` (invitation-post.md): User.Invite.All; higher Directory.ReadWrite.All,
//!   User.ReadWrite.All. "Application permissions (app-only) do not work if B2B invitations are
//!   disabled on the tenant or if B2B invitations are restricted to administrators."
//! - `GET /users`, `GET /users/{id}` (user-list.md, user-get.md): User.Read.All; higher
//!   Directory.Read.All, Directory.ReadWrite.All, User.ReadWrite.All.
//! - `GET /users/delta` (user-delta.md): User.Read.All, User.ReadWrite.All, Directory.Read.All,
//!   Directory.ReadWrite.All: the same four as `GET /users` (it matches `users/{id}` below).
//! - `PATCH /users/{id}` (user-update.md): the page lists User.ManageIdentities.All and
//!   User.EnableDisableAccount.All as least privileged, but they only cover `identities` and
//!   `accountEnabled`; for other properties User.ReadWrite.All (higher Directory.ReadWrite.All).
//! - `DELETE /users/{id}` (user-delete.md): User.ReadWrite.All; "Not available" as higher.
//! - `GET /directory/deletedItems/microsoft.graph.user`, `GET /directory/deletedItems/{id}`
//!   (directory-deleteditems-list.md, -get.md): User.Read.All; higher Directory.Read.All,
//!   User.ReadWrite.All, Directory.ReadWrite.All.
//! - `POST /directory/deletedItems/{id}/restore`, `DELETE /directory/deletedItems/{id}`
//!   (directory-deleteditems-restore.md, -delete.md), users: User.DeleteRestore.All; higher
//!   User.ReadWrite.All, Directory.ReadWrite.All. (Not in the search index; from the live pages.)
//! - `GET roleManagement/directory/roleDefinitions[/{id}]` (rbacapplication-list-roledefinitions.md)
//!   and `GET roleManagement/directory/roleAssignments[/{id}]`
//!   (rbacapplication-list-roleassignments.md, directory provider): RoleManagement.Read.Directory,
//!   RoleManagement.Read.All, Directory.Read.All, RoleManagement.ReadWrite.Directory,
//!   Directory.ReadWrite.All.
//! - `POST`/`DELETE roleManagement/directory/roleAssignments` (rbacapplication-post-roleassignments.md,
//!   unifiedroleassignment-delete.md, directory provider): RoleManagement.ReadWrite.Directory only.
//! - `GET /contracts[/{id}]` (contract-list.md, contract-get.md): Directory.Read.All; higher
//!   Directory.ReadWrite.All.
//! - `GET /organization[/{id}]` (organization-list.md, organization-get.md):
//!   Organization.Read.All; higher Directory.Read.All, Organization.ReadWrite.All,
//!   Directory.ReadWrite.All.
//! - `GET /reports/authenticationMethods/userRegistrationDetails`
//!   (authenticationmethodsroot-list-userregistrationdetails.md): AuditLog.Read.All; the live
//!   page says "Not available" for higher ones. A later include lists
//!   UserAuthenticationMethod.Read.All as higher, but Graph refused a token holding only that
//!   with 403 `Authentication_MSGraphPermissionMissing`, "Calling principal does not have
//!   required MSGraph permissions AuditLog.Read.All" (microsoft-graph-docs-contrib#1852): the
//!   sandbox answers the same.
//! - `tenantRelationships/delegatedAdminRelationships` and their `accessAssignments`
//!   (tenantrelationship-list-delegatedadminrelationships.md, delegatedadminrelationship-get.md,
//!   delegatedadminrelationship-list-accessassignments.md): reads
//!   DelegatedAdminRelationship.Read.All, higher DelegatedAdminRelationship.ReadWrite.All;
//!   writes (tenantrelationship-post-delegatedadminrelationships.md, -update.md, -delete.md,
//!   delegatedadminrelationship-post-requests.md, -post-accessassignments.md,
//!   delegatedadminaccessassignment-update.md, -delete.md): DelegatedAdminRelationship.ReadWrite.All,
//!   "Not available" as higher.
//! - `GET /policies/identitySecurityDefaultsEnforcementPolicy`
//!   (identitysecuritydefaultsenforcementpolicy-get.md): Policy.Read.All; higher
//!   Policy.ReadWrite.SecurityDefaults.

use std::sync::OnceLock;

use serde_json::Value;

use super::directory::{Directory, GraphError};

const USER_READ: &[&str] = &[
    "User.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "User.ReadWrite.All",
];
const USER_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
/// user-delete.md: User.ReadWrite.All, no higher permission.
const USER_DELETE: &[&str] = &["User.ReadWrite.All"];
const INVITE: &[&str] = &[
    "User.Invite.All",
    "Directory.ReadWrite.All",
    "User.ReadWrite.All",
];
const DELETED_READ: &[&str] = &[
    "User.Read.All",
    "Directory.Read.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const DELETED_WRITE: &[&str] = &[
    "User.DeleteRestore.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const ROLES_READ: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "Directory.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
];
const ROLES_WRITE: &[&str] = &["RoleManagement.ReadWrite.Directory"];
/// rbacapplication-list-roleeligibilityschedules.md (directory provider), from the live page
/// (*not in the search index*): RoleEligibilitySchedule.Read.Directory; higher
/// RoleManagement.Read.Directory, RoleManagement.Read.All, RoleEligibilitySchedule.ReadWrite.Directory,
/// RoleManagement.ReadWrite.Directory.
const ELIGIBILITY_READ: &[&str] = &[
    "RoleEligibilitySchedule.Read.Directory",
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleEligibilitySchedule.ReadWrite.Directory",
    "RoleManagement.ReadWrite.Directory",
];
/// group-list-transitivemembers.md: GroupMember.Read.All; higher Group.Read.All,
/// Directory.Read.All, GroupMember.ReadWrite.All, Group.ReadWrite.All, Directory.ReadWrite.All.
const GROUP_MEMBERS_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// group-list.md and group-get.md: GroupMember.Read.All; higher Group.Read.All,
/// Directory.Read.All, Group.ReadWrite.All, Directory.ReadWrite.All.
const GROUPS_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const CONTRACTS_READ: &[&str] = &["Directory.Read.All", "Directory.ReadWrite.All"];
const ORGANIZATION_READ: &[&str] = &[
    "Organization.Read.All",
    "Directory.Read.All",
    "Organization.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// subscribedsku-list.md: Organization.Read.All; higher Directory.Read.All,
/// Directory.ReadWrite.All, Organization.ReadWrite.All. Microsoft's current page (GRAPH.md,
/// "Application permissions") lists LicenseAssignment.Read.All as least privileged.
const SUBSCRIBED_SKUS_READ: &[&str] = &[
    "LicenseAssignment.Read.All",
    "Organization.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Organization.ReadWrite.All",
];
/// directory-list-subscriptions.md: Organization.Read.All; higher Directory.Read.All,
/// Organization.ReadWrite.All.
const SUBSCRIPTIONS_READ: &[&str] = &[
    "Organization.Read.All",
    "Directory.Read.All",
    "Organization.ReadWrite.All",
];

/// securescores-list.md and securescorecontrolprofiles-list.md: SecurityEvents.Read.All;
/// higher SecurityEvents.ReadWrite.All.
const SECURITY_READ: &[&str] = &["SecurityEvents.Read.All", "SecurityEvents.ReadWrite.All"];

/// authenticationmethodsroot-list-userregistrationdetails.md (see the sources above):
/// AuditLog.Read.All only.
const REGISTRATION_DETAILS_READ: &[&str] = &["AuditLog.Read.All"];
/// identitysecuritydefaultsenforcementpolicy-get.md: Policy.Read.All; higher
/// Policy.ReadWrite.SecurityDefaults.
const SECURITY_DEFAULTS_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"];

/// GDAP reads and writes (see the sources above).
const GDAP_READ: &[&str] = &[
    "DelegatedAdminRelationship.Read.All",
    "DelegatedAdminRelationship.ReadWrite.All",
];
const GDAP_WRITE: &[&str] = &["DelegatedAdminRelationship.ReadWrite.All"];

/// serviceprincipal-list.md, serviceprincipal-get.md, serviceprincipal-list-approleassignedto.md:
/// Application.Read.All; higher Application.ReadWrite.All, Directory.Read.All,
/// Directory.ReadWrite.All.
const SERVICE_PRINCIPALS_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// serviceprincipal-post-serviceprincipals.md: Application.ReadWrite.OwnedBy; higher
/// Application.ReadWrite.All, Directory.ReadWrite.All (delegated: Application.ReadWrite.All,
/// Directory.ReadWrite.All).
const SERVICE_PRINCIPALS_CREATE: &[&str] = &[
    "Application.ReadWrite.OwnedBy",
    "Application.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// serviceprincipal-post-approleassignedto.md, serviceprincipal-delete-approleassignedto.md:
/// "AppRoleAssignment.ReadWrite.All and Application.Read.All" (higher: "... and
/// Directory.Read.All"): both halves are checked ([`check`]).
const APP_ROLE_GRANT: &[&str] = &["AppRoleAssignment.ReadWrite.All"];

/// Whether the first segment is `servicePrincipals` or `servicePrincipals(appId='...')`.
fn is_service_principals(segment: &str) -> bool {
    segment == "servicePrincipals" || segment.starts_with("servicePrincipals(")
}

/// The application permissions any one of which lets a request through, or `None` for a path
/// this table does not know (the endpoint's own 400/405 answers it).
pub fn accepted(method: &str, segments: &[&str]) -> Option<&'static [&'static str]> {
    Some(match (method, segments) {
        ("POST", ["invitations"]) => INVITE,
        ("GET", ["users"] | ["users", _]) => USER_READ,
        ("PATCH", ["users", _]) => USER_WRITE,
        ("DELETE", ["users", _]) => USER_DELETE,
        ("GET", ["directory", "deletedItems", ..]) => DELETED_READ,
        ("GET", ["subscribedSkus", ..]) => SUBSCRIBED_SKUS_READ,
        (
            "GET",
            [
                "security",
                "secureScores" | "secureScoreControlProfiles",
                ..,
            ],
        ) => SECURITY_READ,
        ("GET", ["directory", "subscriptions", ..]) => SUBSCRIPTIONS_READ,
        ("DELETE", ["directory", "deletedItems", _])
        | ("POST", ["directory", "deletedItems", _, "restore"]) => DELETED_WRITE,
        (
            "GET",
            [
                "roleManagement",
                "directory",
                "roleDefinitions" | "roleAssignments",
                ..,
            ],
        ) => ROLES_READ,
        ("POST" | "DELETE", ["roleManagement", "directory", "roleAssignments", ..]) => ROLES_WRITE,
        (
            "GET",
            [
                "roleManagement",
                "directory",
                "roleEligibilitySchedules",
                ..,
            ],
        ) => ELIGIBILITY_READ,
        ("GET", ["groups", _, "transitiveMembers", ..]) => GROUP_MEMBERS_READ,
        ("GET", ["groups"] | ["groups", _]) => GROUPS_READ,
        ("GET", ["contracts", ..]) => CONTRACTS_READ,
        ("GET", ["organization", ..]) => ORGANIZATION_READ,
        ("GET", [sp, ..]) if is_service_principals(sp) => SERVICE_PRINCIPALS_READ,
        ("POST", ["servicePrincipals"]) => SERVICE_PRINCIPALS_CREATE,
        ("POST" | "DELETE", [sp, .., "appRoleAssignedTo"] | [sp, .., "appRoleAssignedTo", _])
            if is_service_principals(sp) =>
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
    })
}

/// Graph's answer to a token without the permission a directory endpoint needs.
pub fn denied() -> GraphError {
    GraphError::new(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// Checks the token's `roles` against the endpoint's list: `Err` is the 403 Graph sends.
pub fn check(method: &str, path: &str, roles: &[String]) -> Result<(), GraphError> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match accepted(method, &segments) {
        // Security endpoints are another service: GRAPH.md ("Application permissions") has
        // seen them answer `AccessDenied`, not the directory's code. *Unconfirmed* wording.
        Some(any_of) if !any_of.iter().any(|p| roles.iter().any(|r| r == p)) => {
            Err(if segments.first() == Some(&"security") {
                GraphError::new(
                    403,
                    "AccessDenied",
                    "The application does not have any of the required permissions to access this resource.",
                )
            } else if segments.first() == Some(&"reports") {
                // The reporting service's own code (microsoft-graph-docs-contrib#1852).
                GraphError::new(
                    403,
                    "Authentication_MSGraphPermissionMissing",
                    format!(
                        "Calling principal does not have required MSGraph permissions {}",
                        any_of[0]
                    ),
                )
            } else {
                denied()
            })
        }
        // A grant also reads the resource: "AppRoleAssignment.ReadWrite.All and
        // Application.Read.All" (or Directory.Read.All, or higher).
        Some(any_of)
            if any_of == APP_ROLE_GRANT
                && !SERVICE_PRINCIPALS_READ
                    .iter()
                    .any(|p| roles.iter().any(|r| r == p)) =>
        {
            Err(denied())
        }
        _ => Ok(()),
    }
}

/// Everything Graph checks before serving a call with the token's `roles`: the permission the
/// endpoint needs, then the sensitive-action rules of the tenant.
pub fn authorize(
    world: &mut super::World,
    call: &super::graph::Call,
    roles: &[String],
) -> Result<(), GraphError> {
    check(call.method, call.path, roles)?;
    let segments: Vec<&str> = call
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match world.tenants.get(call.tenant) {
        Some(dir) => check_sensitive(dir, call.method, &segments, call.body),
        None => Ok(()),
    }
}

/// What Graph checks for a token: a delegated one (a person's, `scp` + `wids`) against the
/// delegated table, an app-only one against [`authorize`].
pub fn authorize_token(
    world: &mut super::World,
    call: &super::graph::Call,
    token: &super::world::Token,
) -> Result<(), GraphError> {
    match &token.delegated {
        None => authorize(world, call, &token.roles),
        Some(d) => {
            let segments: Vec<&str> = call
                .path
                .trim_matches('/')
                .split('/')
                .filter(|s| !s.is_empty())
                .collect();
            let b2b = world
                .tenants
                .get(call.tenant)
                .is_none_or(|dir| dir.b2b_invitations);
            check_delegated(call.method, &segments, &d.scopes, &d.wids, b2b)?;
            // Microsoft Graph's app roles are granted only by Privileged Role Administrator
            // (or Global Administrator): Entra's built-in roles reference lets application
            // administrators grant "application permissions excluding ... Microsoft Graph".
            if super::consent::is_graph_grant(call.tenant, call.method, &segments)
                && !holds_any_role(&d.wids, &["Privileged Role Administrator"])
            {
                return Err(denied());
            }
            match world.tenants.get(call.tenant) {
                Some(dir) => {
                    check_sensitive_for_person(dir, call.method, &segments, call.body, &d.wids)
                }
                None => Ok(()),
            }
        }
    }
}

/// A delegated request's rule: the delegated permissions (any one) and, when the operation
/// is not open to every member, the directory roles (any one, by name) the signed-in user
/// must hold. In delegated scenarios Graph allows the intersection of what the app was
/// granted and what the user may do ("In delegated scenarios with work or school accounts,
/// the signed-in user must be assigned a supported Microsoft Entra role...", the
/// `rbac-for-apis` includes of each page).
pub struct DelegatedRule {
    pub scopes: &'static [&'static str],
    /// `None`: any member may (default user permissions).
    pub roles: Option<&'static [&'static str]>,
}

const GLOBAL_ADMIN: &str = "Global Administrator";

/// The delegated ("work or school account") rows of the same Learn pages as [`accepted`]:
/// - invitation-post-permissions.md: User.Invite.All; higher Directory.ReadWrite.All,
///   User.ReadWrite.All. Roles: none by default (the tenant's default guest invite setting
///   lets any member invite); when invitations are restricted (`b2bInvitations: false`),
///   Guest Inviter or User Administrator (*role list unconfirmed*).
/// - user-list / user-get: User.ReadBasic.All; higher User.Read.All, User.ReadWrite.All,
///   Directory.Read.All, Directory.ReadWrite.All; any member (default user permissions).
/// - user-update: User.ReadWrite.All, Directory.ReadWrite.All; User Administrator (or
///   higher) to update other users. user-delete: User.ReadWrite.All; User Administrator,
///   Privileged Authentication Administrator.
/// - directory deleted items: the application lists; User Administrator to list, restore or
///   delete users (rbac-directory-deleted-items-apis.md, *read roles unconfirmed*).
/// - roleDefinitions / roleAssignments GET: RoleManagement.Read.Directory and the same
///   higher ones; any member may read them (*unconfirmed*). POST/DELETE:
///   RoleManagement.ReadWrite.Directory (rbacapplication-post-roleassignments.md);
///   Privileged Role Administrator.
/// - roleEligibilitySchedules: the application list; Global Reader, Security Reader,
///   Security Administrator, Privileged Role Administrator (rbac-pim-entra-roles-apis.md).
/// - groups, transitiveMembers, contracts: the application lists (plus User.ReadBasic.All
///   where listed); any member.
/// - organization: User.Read; higher Organization.Read.All, Directory.Read.All, ...; the
///   roles include `User` (rbac-organization-apis-read.md): any member.
/// - subscribedSkus, directory/subscriptions: the application lists; Global Reader,
///   Directory Readers, License Administrator, Billing Administrator (*unconfirmed*).
/// - secureScores: SecurityEvents.Read.All; Security Reader, Security Administrator, Global
///   Reader. userRegistrationDetails: AuditLog.Read.All; Reports Reader, Security Reader,
///   Security Administrator, Global Reader. Security defaults: Policy.Read.All; Security
///   Reader, Security Administrator, Global Reader, Conditional Access Administrator.
///
/// Global Administrator holds every role permission and is accepted wherever roles are
/// required.
pub fn delegated_rule(method: &str, segments: &[&str], b2b_open: bool) -> Option<DelegatedRule> {
    const ANY: Option<&[&str]> = None;
    let rule = |scopes, roles| Some(DelegatedRule { scopes, roles });
    match (method, segments) {
        ("POST", ["invitations"]) => rule(
            INVITE,
            if b2b_open {
                ANY
            } else {
                Some(&["Guest Inviter", "User Administrator"])
            },
        ),
        ("GET", ["users"] | ["users", _]) => rule(
            &[
                "User.ReadBasic.All",
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            ANY,
        ),
        ("PATCH", ["users", _]) => rule(USER_WRITE, Some(&["User Administrator"])),
        ("DELETE", ["users", _]) => rule(
            USER_DELETE,
            Some(&[
                "User Administrator",
                "Privileged Authentication Administrator",
            ]),
        ),
        ("GET", ["directory", "deletedItems", ..]) => {
            rule(DELETED_READ, Some(&["User Administrator", "Global Reader"]))
        }
        ("DELETE", ["directory", "deletedItems", _])
        | ("POST", ["directory", "deletedItems", _, "restore"]) => {
            rule(DELETED_WRITE, Some(&["User Administrator"]))
        }
        (
            "GET",
            [
                "roleManagement",
                "directory",
                "roleDefinitions" | "roleAssignments",
                ..,
            ],
        ) => rule(ROLES_READ, ANY),
        ("POST" | "DELETE", ["roleManagement", "directory", "roleAssignments", ..]) => {
            rule(ROLES_WRITE, Some(&["Privileged Role Administrator"]))
        }
        (
            "GET",
            [
                "roleManagement",
                "directory",
                "roleEligibilitySchedules",
                ..,
            ],
        ) => rule(
            ELIGIBILITY_READ,
            Some(&[
                "Global Reader",
                "Security Reader",
                "Security Administrator",
                "Privileged Role Administrator",
            ]),
        ),
        ("GET", ["groups", _, "transitiveMembers", ..]) => rule(GROUP_MEMBERS_READ, ANY),
        ("GET", ["groups"] | ["groups", _]) => rule(GROUPS_READ, ANY),
        ("GET", ["contracts", ..]) => rule(CONTRACTS_READ, ANY),
        // Reading service principals is a default member permission.
        ("GET", [sp, ..]) if is_service_principals(sp) => rule(SERVICE_PRINCIPALS_READ, ANY),
        // serviceprincipal-post-serviceprincipals.md: for a multi-tenant app, Application
        // Administrator or Cloud Application Administrator.
        ("POST", ["servicePrincipals"]) => rule(
            &["Application.ReadWrite.All", "Directory.ReadWrite.All"],
            Some(&[
                "Cloud Application Administrator",
                "Application Administrator",
            ]),
        ),
        // serviceprincipal-post-approleassignedto.md's roles (Microsoft Graph's own app
        // roles need more: `authorize_token`).
        ("POST" | "DELETE", [sp, .., "appRoleAssignedTo"] | [sp, .., "appRoleAssignedTo", _])
            if is_service_principals(sp) =>
        {
            rule(
                APP_ROLE_GRANT,
                Some(&[
                    "Privileged Role Administrator",
                    "Cloud Application Administrator",
                    "Application Administrator",
                    "User Administrator",
                    "Directory Writers",
                    "Hybrid Identity Administrator",
                    "Identity Governance Administrator",
                ]),
            )
        }
        ("GET", ["organization", ..]) => rule(
            &[
                "User.Read",
                "Organization.Read.All",
                "Directory.Read.All",
                "Organization.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
            ANY,
        ),
        ("GET", ["subscribedSkus", ..]) | ("GET", ["directory", "subscriptions", ..]) => rule(
            SUBSCRIBED_SKUS_READ,
            Some(&[
                "Global Reader",
                "Directory Readers",
                "License Administrator",
                "Billing Administrator",
            ]),
        ),
        (
            "GET",
            [
                "security",
                "secureScores" | "secureScoreControlProfiles",
                ..,
            ],
        ) => rule(
            SECURITY_READ,
            Some(&["Security Reader", "Security Administrator", "Global Reader"]),
        ),
        (
            "GET",
            [
                "reports",
                "authenticationMethods",
                "userRegistrationDetails",
                ..,
            ],
        ) => rule(
            REGISTRATION_DETAILS_READ,
            Some(&[
                "Reports Reader",
                "Security Reader",
                "Security Administrator",
                "Global Reader",
            ]),
        ),
        ("GET", ["policies", "identitySecurityDefaultsEnforcementPolicy"]) => rule(
            SECURITY_DEFAULTS_READ,
            Some(&[
                "Security Reader",
                "Security Administrator",
                "Global Reader",
                "Conditional Access Administrator",
            ]),
        ),
        _ => None,
    }
}

/// "Access directory as the signed in user": the delegated permission the Azure CLI's token
/// for Graph carries (see `auth::DEFAULT_DELEGATED_SCOPES`). Learn lists it as a higher
/// privileged delegated permission on the directory pages; Graph's metadata describes it as
/// "the same access to information in the directory as the signed-in user"
/// (msgraph-metadata permissions.json). The person's roles still apply.
pub const ACCESS_AS_USER: &str = "Directory.AccessAsUser.All";

/// Whether [`ACCESS_AS_USER`] covers a request: the directory's own objects (users,
/// invitations, deleted items, role definitions and assignments, groups, contracts,
/// organization, subscriptions, service principals and their app role assignments). Not the
/// other services behind Graph: security (SecurityEvents.*), reports (AuditLog.*), policies
/// (Policy.*: Azure/azure-powershell#24334 shows such a token refused reading a policy),
/// PIM schedules (Azure/azure-cli#26471) and GDAP (DelegatedAdminRelationship.*).
/// Which directory pages list it is *unconfirmed* page by page (read from memory of Learn's
/// tables, not from a stored copy of each page).
pub fn access_as_user_applies(segments: &[&str]) -> bool {
    match segments {
        [
            "roleManagement",
            "directory",
            "roleEligibilitySchedules",
            ..,
        ] => false,
        [first, ..] => {
            matches!(
                *first,
                "users"
                    | "invitations"
                    | "directory"
                    | "roleManagement"
                    | "groups"
                    | "contracts"
                    | "organization"
                    | "subscribedSkus"
            ) || is_service_principals(first)
        }
        [] => false,
    }
}

/// Whether the template ids `wids` hold one of the roles `names` (or Global Administrator).
pub fn holds_any_role(wids: &[String], names: &[&str]) -> bool {
    let catalog = crate::roles::RoleCatalog::builtin();
    names.iter().chain([&GLOBAL_ADMIN]).any(|name| {
        catalog
            .by_name(name)
            .is_some_and(|r| wids.iter().any(|w| w.eq_ignore_ascii_case(r.template_id)))
    })
}

/// A delegated token's check: a scope that covers the request and, where needed, a role of
/// the person's that allows it; Graph's 403 otherwise (the same answer for both).
pub fn check_delegated(
    method: &str,
    segments: &[&str],
    scopes: &[String],
    wids: &[String],
    b2b_open: bool,
) -> Result<(), GraphError> {
    let Some(rule) = delegated_rule(method, segments, b2b_open) else {
        return Ok(());
    };
    let has = |any_of: &[&str]| any_of.iter().any(|p| scopes.iter().any(|s| s == p));
    // A grant also reads the resource, for a person as for an app: the delegated row is
    // "AppRoleAssignment.ReadWrite.All and Application.Read.All" (higher: "... and
    // Directory.Read.All"), serviceprincipal-post-approleassignedto.md.
    let scoped = (access_as_user_applies(segments) && has(&[ACCESS_AS_USER]))
        || (has(rule.scopes) && (rule.scopes != APP_ROLE_GRANT || has(SERVICE_PRINCIPALS_READ)));
    let role_ok = rule.roles.is_none_or(|names| holds_any_role(wids, names));
    if scoped && role_ok {
        Ok(())
    } else if segments.first() == Some(&"security") {
        Err(GraphError::new(
            403,
            "AccessDenied",
            "The user does not have any of the required permissions to access this resource.",
        ))
    } else {
        Err(denied())
    }
}

const PRIVILEGED_TABLE: &str = include_str!("../../data/entra_privileged_roles.tsv");

/// Template ids of the built-in roles Microsoft labels privileged.
fn privileged_role_ids() -> &'static Vec<String> {
    static IDS: OnceLock<Vec<String>> = OnceLock::new();
    IDS.get_or_init(|| {
        PRIVILEGED_TABLE
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next())
            .map(|id| id.trim().to_lowercase())
            .filter(|id| !id.is_empty())
            .collect()
    })
}

/// Global Administrator and Privileged Authentication Administrator: the roles Microsoft's
/// "who can perform sensitive actions" table lets delete, or change the sensitive properties
/// of, a user holding any administrative role.
const SENSITIVE_ACTION_ROLES: &[&str] = &[
    "62e90394-69f5-4237-9190-012177145e10", // Global Administrator
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13", // Privileged Authentication Administrator
];

/// User properties Microsoft calls sensitive (only privileged callers may change them on a
/// user who holds an administrative role).
pub const SENSITIVE_PROPERTIES: &[&str] = &[
    "accountEnabled",
    "businessPhones",
    "mobilePhone",
    "otherMails",
    "passwordProfile",
    "userPrincipalName",
    "onPremisesImmutableId",
];

fn holds_privileged_role(dir: &Directory, user_id: &str) -> bool {
    let privileged = privileged_role_ids();
    dir.role_assignments
        .values()
        .any(|ra| ra.principal_id == user_id && privileged.contains(&ra.role_definition_id))
}

fn app_may_act_on_admins(dir: &Directory) -> bool {
    let catalog = crate::roles::RoleCatalog::builtin();
    dir.app_directory_roles.iter().any(|role| {
        let id = catalog
            .by_name(role)
            .map(|r| r.template_id.to_string())
            .unwrap_or_else(|| role.to_lowercase());
        SENSITIVE_ACTION_ROLES.contains(&id.as_str())
    })
}

fn sensitive_denied(what: &str) -> GraphError {
    GraphError::new(
        403,
        "Authorization_RequestDenied",
        format!(
            "Insufficient privileges to complete the operation. {what} a user who holds an administrative role needs the app to hold a sufficiently privileged directory role (e.g. Privileged Authentication Administrator)."
        ),
    )
}

/// A person's sensitive actions: deleting a user who holds an administrative role, or changing
/// such a user's sensitive properties, needs the person to be Global Administrator or
/// Privileged Authentication Administrator (user-delete.md and user-update.md, "who can
/// perform sensitive actions"; a User Administrator may act only on non-admins).
pub fn check_sensitive_for_person(
    dir: &Directory,
    method: &str,
    segments: &[&str],
    body: Option<&Value>,
    wids: &[String],
) -> Result<(), GraphError> {
    let privileged_person = wids.iter().any(|w| {
        SENSITIVE_ACTION_ROLES
            .iter()
            .any(|r| w.eq_ignore_ascii_case(r))
    });
    match (method, segments) {
        ("DELETE", ["users", id])
            if holds_privileged_role(dir, &id.to_lowercase()) && !privileged_person =>
        {
            Err(sensitive_denied_person("Deleting"))
        }
        ("PATCH", ["users", id])
            if body
                .and_then(Value::as_object)
                .is_some_and(|b| b.keys().any(|k| SENSITIVE_PROPERTIES.contains(&k.as_str())))
                && holds_privileged_role(dir, &id.to_lowercase())
                && !privileged_person =>
        {
            Err(sensitive_denied_person("Changing sensitive properties of"))
        }
        _ => Ok(()),
    }
}

fn sensitive_denied_person(what: &str) -> GraphError {
    GraphError::new(
        403,
        "Authorization_RequestDenied",
        format!(
            "Insufficient privileges to complete the operation. {what} a user who holds an administrative role needs the signed-in user to hold a sufficiently privileged directory role (e.g. Privileged Authentication Administrator)."
        ),
    )
}

/// The checks beyond the permission: deleting a user holding an administrative role, or
/// changing such a user's sensitive properties, needs the app itself to hold a privileged
/// directory role in app-only mode (Microsoft Learn: user-delete.md and user-update.md,
/// "who can perform sensitive actions"); app-only invitations fail when B2B invitations are
/// disabled in the tenant (invitation-post.md).
pub fn check_sensitive(
    dir: &Directory,
    method: &str,
    segments: &[&str],
    body: Option<&Value>,
) -> Result<(), GraphError> {
    match (method, segments) {
        ("POST", ["invitations"]) if !dir.b2b_invitations => Err(GraphError::new(
            // Unconfirmed: the message is the one admins report; the status and code are our
            // choice (Graph's exact answer could not be confirmed).
            403,
            "Authorization_RequestDenied",
            "Guest invitations not allowed for your company. Contact your company administrator for more details.",
        )),
        ("DELETE", ["users", id]) => {
            let id = id.to_lowercase();
            if holds_privileged_role(dir, &id) && !app_may_act_on_admins(dir) {
                return Err(sensitive_denied("Deleting"));
            }
            Ok(())
        }
        ("PATCH", ["users", id]) => {
            let id = id.to_lowercase();
            let sensitive = body
                .and_then(Value::as_object)
                .is_some_and(|b| b.keys().any(|k| SENSITIVE_PROPERTIES.contains(&k.as_str())));
            if sensitive && holds_privileged_role(dir, &id) && !app_may_act_on_admins(dir) {
                return Err(sensitive_denied("Changing sensitive properties of"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_privileged_table_has_global_administrator() {
        assert!(privileged_role_ids().contains(&SENSITIVE_ACTION_ROLES[0].to_string()));
        assert!(privileged_role_ids().contains(&SENSITIVE_ACTION_ROLES[1].to_string()));
    }

    #[test]
    fn delegated_requests_need_a_scope_and_the_persons_role() {
        let catalog = crate::roles::RoleCatalog::builtin();
        let id = |n: &str| catalog.by_name(n).unwrap().template_id.to_string();
        let scopes = vec!["RoleManagement.ReadWrite.Directory".to_string()];
        let post = ["roleManagement", "directory", "roleAssignments"];
        assert!(check_delegated("POST", &post, &scopes, &[], true).is_err());
        assert!(
            check_delegated(
                "POST",
                &post,
                &scopes,
                &[id("Privileged Role Administrator")],
                true
            )
            .is_ok()
        );
        assert!(
            check_delegated("POST", &post, &scopes, &[id("Global Administrator")], true).is_ok()
        );
        assert!(check_delegated("POST", &post, &[], &[id("Global Administrator")], true).is_err());
        // Reading users needs no role; every role named in the table exists.
        let read = vec!["User.ReadBasic.All".to_string()];
        assert!(check_delegated("GET", &["users"], &read, &[], true).is_ok());
        for (m, p) in [
            ("POST", &["invitations"][..]),
            ("PATCH", &["users", "x"]),
            ("DELETE", &["users", "x"]),
            ("GET", &["directory", "deletedItems"]),
            ("GET", &["security", "secureScores"]),
            (
                "GET",
                &[
                    "reports",
                    "authenticationMethods",
                    "userRegistrationDetails",
                ],
            ),
            (
                "GET",
                &["policies", "identitySecurityDefaultsEnforcementPolicy"],
            ),
            ("GET", &["subscribedSkus"]),
            (
                "GET",
                &["roleManagement", "directory", "roleEligibilitySchedules"],
            ),
            ("POST", &["servicePrincipals"]),
            ("POST", &["servicePrincipals", "g", "appRoleAssignedTo"]),
            (
                "DELETE",
                &["servicePrincipals", "g", "appRoleAssignedTo", "a"],
            ),
        ] {
            for b2b in [true, false] {
                if let Some(roles) = delegated_rule(m, p, b2b).unwrap().roles {
                    for r in roles {
                        assert!(catalog.by_name(r).is_some(), "{r}");
                    }
                }
            }
        }
    }

    #[test]
    fn creating_a_principal_and_granting_graph_roles_need_their_roles() {
        let catalog = crate::roles::RoleCatalog::builtin();
        let id = |n: &str| catalog.by_name(n).unwrap().template_id.to_string();
        let scopes: Vec<String> = [
            "Application.ReadWrite.All",
            "AppRoleAssignment.ReadWrite.All",
        ]
        .map(String::from)
        .to_vec();
        let create = ["servicePrincipals"];
        assert!(check_delegated("POST", &create, &scopes, &[], true).is_err());
        for role in [
            "Cloud Application Administrator",
            "Application Administrator",
            "Global Administrator",
        ] {
            assert!(
                check_delegated("POST", &create, &scopes, &[id(role)], true).is_ok(),
                "{role}"
            );
        }
        // Application.Read.All alone creates nothing.
        let read = vec!["Application.Read.All".to_string()];
        assert!(
            check_delegated("POST", &create, &read, &[id("Global Administrator")], true).is_err()
        );
        // Graph's own app roles: the generic rule lets an application administrator through,
        // `authorize_token` does not (tested over HTTP in tests/it/consent.rs).
        let graph = super::super::consent::graph_principal_id("t");
        assert!(super::super::consent::is_graph_grant(
            "t",
            "POST",
            &["servicePrincipals", &graph, "appRoleAssignedTo"]
        ));
        assert!(!super::super::consent::is_graph_grant(
            "t",
            "POST",
            &["servicePrincipals", "other", "appRoleAssignedTo"]
        ));
        assert!(super::super::consent::is_graph_grant(
            "t",
            "DELETE",
            &[
                "servicePrincipals(appId='00000003-0000-0000-c000-000000000000')",
                "appRoleAssignedTo",
                "x"
            ]
        ));
        // App-only: a grant needs AppRoleAssignment.ReadWrite.All and a read of the resource.
        let grant = format!("/servicePrincipals/{graph}/appRoleAssignedTo");
        assert!(check("POST", &grant, &["AppRoleAssignment.ReadWrite.All".into()]).is_err());
        assert!(
            check(
                "POST",
                &grant,
                &[
                    "AppRoleAssignment.ReadWrite.All".into(),
                    "Application.Read.All".into()
                ]
            )
            .is_ok()
        );
        assert!(
            check(
                "GET",
                "/servicePrincipals(appId='x')",
                &["Directory.Read.All".into()]
            )
            .is_ok()
        );
        assert!(
            check(
                "POST",
                "/servicePrincipals",
                &["Application.Read.All".into()]
            )
            .is_err()
        );
    }

    #[test]
    fn the_azure_clis_scopes_reach_the_directory_but_not_other_services() {
        let catalog = crate::roles::RoleCatalog::builtin();
        let ga = vec![
            catalog
                .by_name("Global Administrator")
                .unwrap()
                .template_id
                .to_string(),
        ];
        let cli: Vec<String> = super::super::auth::DEFAULT_DELEGATED_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (method, segments) in [
            ("GET", &["users"][..]),
            (
                "POST",
                &["roleManagement", "directory", "roleAssignments"][..],
            ),
            ("POST", &["servicePrincipals"][..]),
            ("POST", &["servicePrincipals", "g", "appRoleAssignedTo"][..]),
            ("GET", &["subscribedSkus"][..]),
        ] {
            assert!(
                check_delegated(method, segments, &cli, &ga, true).is_ok(),
                "{method} {segments:?}"
            );
        }
        for (method, segments) in [
            ("GET", &["security", "secureScores"][..]),
            (
                "GET",
                &["policies", "identitySecurityDefaultsEnforcementPolicy"][..],
            ),
            (
                "GET",
                &["roleManagement", "directory", "roleEligibilitySchedules"][..],
            ),
        ] {
            assert!(
                check_delegated(method, segments, &cli, &ga, true).is_err(),
                "{method} {segments:?}"
            );
        }
        // The person's roles still apply.
        let post = ["roleManagement", "directory", "roleAssignments"];
        assert!(check_delegated("POST", &post, &cli, &[], true).is_err());
    }

    #[test]
    fn a_persons_grant_needs_both_halves_like_an_apps() {
        let catalog = crate::roles::RoleCatalog::builtin();
        let pra = vec![
            catalog
                .by_name("Privileged Role Administrator")
                .unwrap()
                .template_id
                .to_string(),
        ];
        let grant = ["servicePrincipals", "g", "appRoleAssignedTo"];
        let only_grant = vec!["AppRoleAssignment.ReadWrite.All".to_string()];
        assert!(check_delegated("POST", &grant, &only_grant, &pra, true).is_err());
        for read in ["Application.Read.All", "Directory.Read.All"] {
            let both = vec!["AppRoleAssignment.ReadWrite.All".to_string(), read.into()];
            assert!(
                check_delegated("POST", &grant, &both, &pra, true).is_ok(),
                "{read}"
            );
        }
        let revoke = ["servicePrincipals", "g", "appRoleAssignedTo", "a"];
        assert!(check_delegated("DELETE", &revoke, &only_grant, &pra, true).is_err());
    }

    #[test]
    fn a_person_acts_on_admins_only_with_a_privileged_role() {
        use crate::sandbox::fixture::{FixtureRoleAssignment, FixtureTenant};
        let mut t = FixtureTenant::new("t", "T", "t.onmicrosoft.com");
        t.role_assignments.push(FixtureRoleAssignment {
            id: None,
            principal_id: "admin-1".into(),
            role_definition_id: SENSITIVE_ACTION_ROLES[0].into(),
            directory_scope_id: "/".into(),
        });
        let dir = Directory::from_fixture(&t);
        let user_admin = vec!["fe930be7-5e62-47db-91af-98c3a49a38b1".to_string()];
        let global = vec![SENSITIVE_ACTION_ROLES[0].to_uppercase()];
        let delete = ["users", "admin-1"];
        assert!(check_sensitive_for_person(&dir, "DELETE", &delete, None, &user_admin).is_err());
        assert!(check_sensitive_for_person(&dir, "DELETE", &delete, None, &global).is_ok());
        assert!(
            check_sensitive_for_person(&dir, "DELETE", &["users", "someone"], None, &user_admin)
                .is_ok()
        );
        let phone = serde_json::json!({"mobilePhone": "1"});
        assert!(
            check_sensitive_for_person(&dir, "PATCH", &delete, Some(&phone), &user_admin).is_err()
        );
        let name = serde_json::json!({"displayName": "x"});
        assert!(
            check_sensitive_for_person(&dir, "PATCH", &delete, Some(&name), &user_admin).is_ok()
        );
    }

    #[test]
    fn a_higher_permission_is_accepted() {
        let roles = vec!["Directory.ReadWrite.All".to_string()];
        assert!(check("POST", "/invitations", &roles).is_ok());
        assert!(check("GET", "/users", &roles).is_ok());
        assert!(check("DELETE", "/users/x", &roles).is_err());
        let read = vec!["User.Read.All".to_string()];
        assert!(check("POST", "/invitations", &read).is_err());
    }
}
