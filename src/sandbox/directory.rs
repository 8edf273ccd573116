//! One tenant's directory in the sandbox: users (members and guests), deleted users, role
//! assignments, contracts and the organization. Plain data and operations; no HTTP here.

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::fixture::{
    FixtureContract, FixtureDeletedUser, FixtureGroup, FixtureRoleEligibility,
    FixtureServicePrincipal, FixtureTenant, FixtureUser,
};

/// A Graph error: HTTP status, Graph error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl GraphError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn not_found(what: &str) -> Self {
        GraphError::new(
            404,
            "Request_ResourceNotFound",
            format!(
                "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        GraphError::new(400, "Request_BadRequest", message)
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub other_mails: Vec<String>,
    pub user_type: String,
    pub creation_type: Option<String>,
    pub external_user_state: Option<String>,
    pub external_user_state_change_date_time: Option<String>,
    pub user_principal_name: String,
    pub account_enabled: bool,
    pub created_date_time: String,
    /// When it was created in this process: replication delay counts from here.
    pub created_at: Instant,
    pub profile: super::fixture::UserProfile,
}

impl User {
    /// Replicated: old enough to show in reads (Entra is eventually consistent).
    pub fn visible(&self, replication_delay: Duration) -> bool {
        replication_delay.is_zero() || self.created_at.elapsed() >= replication_delay
    }
}

impl User {
    /// The user as the saved world keeps it.
    pub fn to_fixture(&self) -> FixtureUser {
        FixtureUser {
            id: Some(self.id.clone()),
            display_name: self.display_name.clone(),
            mail: self.mail.clone(),
            other_mails: self.other_mails.clone(),
            user_type: self.user_type.clone(),
            external_user_state: self.external_user_state.clone(),
            user_principal_name: Some(self.user_principal_name.clone()),
            account_enabled: self.account_enabled,
            profile: self.profile.clone(),
        }
    }
}

/// A user's fingerprint ([`super::changes::fingerprint`]) taken from its saved form with the
/// profile flattened, so the fingerprint's properties are Graph's. Taken from the loaded user,
/// not the file's text, so defaults filled in at load (a guest's UPN) are no edit.
fn user_fingerprint(u: &User) -> String {
    let mut saved = serde_json::to_value(u.to_fixture()).expect("a user serializes");
    if let Some(fields) = saved.as_object_mut() {
        fields.remove("id");
        if let Some(Value::Object(mut profile)) = fields.remove("profile") {
            // MFA registration is no user property: users/delta does not see it change.
            profile.remove("mfaRegistered");
            fields.extend(profile);
        }
    }
    super::changes::fingerprint(&saved)
}

impl User {
    /// Every property the sandbox knows, as Graph names them.
    pub fn to_json(&self) -> Value {
        Value::Object(
            USER_PROPERTIES
                .iter()
                .map(|name| (name.to_string(), self.property(name)))
                .collect(),
        )
    }

    /// One property of [`User::to_json`] (null when unknown or unset): a delta page builds
    /// only the properties it selects.
    pub fn property(&self, name: &str) -> Value {
        let p = &self.profile;
        match name {
            "id" => json!(self.id),
            "displayName" => json!(self.display_name),
            "mail" => json!(self.mail),
            "otherMails" => json!(self.other_mails),
            "userType" => json!(self.user_type),
            "creationType" => json!(self.creation_type),
            "externalUserState" => json!(self.external_user_state),
            "externalUserStateChangeDateTime" => json!(self.external_user_state_change_date_time),
            "userPrincipalName" => json!(self.user_principal_name),
            "accountEnabled" => json!(self.account_enabled),
            "createdDateTime" => json!(self.created_date_time),
            "businessPhones" => json!(p.business_phones),
            "givenName" => json!(p.given_name),
            "surname" => json!(p.surname),
            "jobTitle" => json!(p.job_title),
            "mobilePhone" => json!(p.mobile_phone),
            "officeLocation" => json!(p.office_location),
            "department" => json!(p.department),
            "companyName" => json!(p.company_name),
            "onPremisesSyncEnabled" => json!(p.on_premises_sync_enabled),
            "assignedLicenses" => json!(p.assigned_licenses),
            "licenseAssignmentStates" => json!(p.license_assignment_states),
            _ => Value::Null,
        }
    }
}

/// Every user property the sandbox serves (`preferredLanguage` is always null).
pub const USER_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "mail",
    "otherMails",
    "userType",
    "creationType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "userPrincipalName",
    "accountEnabled",
    "createdDateTime",
    "businessPhones",
    "givenName",
    "surname",
    "jobTitle",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "department",
    "companyName",
    "onPremisesSyncEnabled",
    "assignedLicenses",
    "licenseAssignmentStates",
];

/// Properties returned without `$select` (Graph's default set for users).
pub const DEFAULT_USER_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

#[derive(Clone, Debug)]
pub struct RoleAssignment {
    pub id: String,
    pub principal_id: String,
    pub role_definition_id: String,
    pub directory_scope_id: String,
}

impl RoleAssignment {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "principalId": self.principal_id,
            "roleDefinitionId": self.role_definition_id,
            "directoryScopeId": self.directory_scope_id,
        })
    }
}

pub struct Directory {
    pub id: String,
    pub display_name: String,
    pub domain: String,
    pub consent: bool,
    pub users: IndexMap<String, User>,
    /// Soft-deleted users (30 days in Entra; until restored or purged here).
    pub deleted_users: IndexMap<String, (User, String)>,
    pub role_assignments: IndexMap<String, RoleAssignment>,
    pub contracts: Vec<FixtureContract>,
    /// Commercial subscriptions (`directory/subscriptions`, summed in `subscribedSkus`).
    pub subscriptions: Vec<super::fixture::FixtureSubscription>,
    pub secure_score: Option<super::fixture::FixtureSecureScore>,
    /// Permissions granted to the app here (`None`: all the app's roles).
    pub permissions: Option<Vec<String>>,
    /// Directory roles the app itself holds here (for sensitive actions).
    pub app_directory_roles: Vec<String>,
    /// B2B invitations allowed in the tenant.
    pub b2b_invitations: bool,
    pub groups: IndexMap<String, FixtureGroup>,
    pub service_principals: IndexMap<String, FixtureServicePrincipal>,
    /// Entra ID P2 (PIM): without it eligibility schedules are refused.
    pub entra_id_p2: bool,
    pub role_eligibilities: Vec<RoleEligibility>,
    /// Security defaults on (`policies/identitySecurityDefaultsEnforcementPolicy`).
    pub security_defaults: bool,
    /// Every write to a user, for `GET /users/delta`.
    pub changes: super::changes::ChangeLog,
    /// A partner tenant's delegated admin relationships (GDAP).
    pub gdap: super::gdap::GdapStore,
}

#[derive(Clone, Debug)]
pub struct RoleEligibility {
    pub id: String,
    pub principal_id: String,
    pub role_definition_id: String,
    pub directory_scope_id: String,
    pub start_date_time: String,
}

impl RoleEligibility {
    /// A v1.0 `unifiedRoleEligibilitySchedule`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "principalId": self.principal_id,
            "roleDefinitionId": self.role_definition_id,
            "directoryScopeId": self.directory_scope_id,
            "appScopeId": null,
            "createdUsing": self.id,
            "createdDateTime": self.start_date_time,
            "modifiedDateTime": null,
            "status": "Provisioned",
            "memberType": "Direct",
            "scheduleInfo": {
                "startDateTime": self.start_date_time,
                "recurrence": null,
                "expiration": {"type": "noExpiration", "endDateTime": null, "duration": null},
            },
        })
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Local part of a guest UPN: `bob@contoso.com` -> `bob_contoso.com#EXT#`.
fn guest_upn(email: &str, domain: &str) -> String {
    format!("{}#EXT#@{domain}", email.replace('@', "_"))
}

impl Directory {
    pub fn from_fixture(t: &FixtureTenant) -> Directory {
        let now = super::now();
        let mut dir = Directory {
            id: t.id.to_lowercase(),
            display_name: t.display_name.clone(),
            domain: t.domain.clone(),
            consent: t.consent,
            users: IndexMap::new(),
            deleted_users: IndexMap::new(),
            role_assignments: IndexMap::new(),
            contracts: t.contracts.clone(),
            subscriptions: t.subscriptions.clone(),
            secure_score: t.secure_score.clone(),
            permissions: t.permissions.clone(),
            app_directory_roles: t.app_directory_roles.clone(),
            b2b_invitations: t.b2b_invitations,
            groups: t
                .groups
                .iter()
                .map(|g| {
                    let mut g = g.clone();
                    g.id = g.id.to_lowercase();
                    g.members = g.members.iter().map(|m| m.to_lowercase()).collect();
                    (g.id.clone(), g)
                })
                .collect(),
            service_principals: t
                .service_principals
                .iter()
                .map(|sp| {
                    let mut sp = sp.clone();
                    sp.id = sp.id.to_lowercase();
                    (sp.id.clone(), sp)
                })
                .collect(),
            entra_id_p2: t.entra_id_p2,
            security_defaults: t.security_defaults,
            role_eligibilities: t
                .role_eligibilities
                .iter()
                .map(|e| RoleEligibility {
                    id: e.id.clone().unwrap_or_else(new_id),
                    principal_id: e.principal_id.to_lowercase(),
                    role_definition_id: e.role_definition_id.to_lowercase(),
                    directory_scope_id: e.directory_scope_id.clone(),
                    start_date_time: e.start_date_time.clone().unwrap_or_else(|| now.clone()),
                })
                .collect(),
            changes: Default::default(),
            gdap: super::gdap::GdapStore::from_fixture(&t.delegated_admin_relationships),
        };
        let replicated = Instant::now() - Duration::from_secs(3600);
        for u in &t.users {
            let user = dir.user_from_fixture(u, &now, replicated);
            dir.users.insert(user.id.clone(), user);
        }
        for d in &t.deleted_users {
            let user = dir.user_from_fixture(&d.user, &now, replicated);
            let deleted = d.deleted_date_time.clone().unwrap_or_else(|| now.clone());
            dir.deleted_users.insert(user.id.clone(), (user, deleted));
        }
        // Users are hashed only when a log was saved: a written or generated world loads as
        // fast as ever.
        if let Some(saved) = &t.change_log {
            dir.changes = super::changes::ChangeLog::load(saved);
            let users: Vec<(String, String)> = dir
                .users
                .values()
                .map(|u| (u.id.clone(), user_fingerprint(u)))
                .collect();
            let deleted = &dir.deleted_users;
            dir.changes
                .edited(&saved.fingerprints, &users, &|id| deleted.contains_key(id));
        }
        for ra in &t.role_assignments {
            let ra = RoleAssignment {
                id: ra.id.clone().unwrap_or_else(new_id),
                principal_id: ra.principal_id.to_lowercase(),
                role_definition_id: ra.role_definition_id.to_lowercase(),
                directory_scope_id: ra.directory_scope_id.clone(),
            };
            dir.role_assignments.insert(ra.id.clone(), ra);
        }
        dir
    }

    fn user_from_fixture(&self, u: &FixtureUser, now: &str, created_at: Instant) -> User {
        let id = u.id.as_deref().map_or_else(new_id, str::to_lowercase);
        let guest = u.user_type == "Guest";
        let upn = u
            .user_principal_name
            .clone()
            .unwrap_or_else(|| match (&u.mail, guest) {
                (Some(mail), true) => guest_upn(mail, &self.domain),
                (Some(mail), false) => {
                    format!(
                        "{}@{}",
                        mail.split('@').next().unwrap_or("user"),
                        self.domain
                    )
                }
                (None, _) => format!("{id}@{}", self.domain),
            });
        User {
            id,
            display_name: u.display_name.clone(),
            mail: u.mail.clone(),
            other_mails: u.other_mails.clone(),
            user_type: u.user_type.clone(),
            creation_type: guest.then(|| "Invitation".to_string()),
            external_user_state: u
                .external_user_state
                .clone()
                .or_else(|| guest.then(|| "Accepted".into())),
            external_user_state_change_date_time: guest.then(|| now.to_string()),
            user_principal_name: upn,
            account_enabled: u.account_enabled,
            created_date_time: now.to_string(),
            created_at,
            profile: u.profile.clone(),
        }
    }

    /// A user created in the directory out of band (the portal, Entra Connect): a fixture
    /// user, visible at once. Refused when its id is taken (by a user or a deleted one).
    pub fn add_user(&mut self, u: &FixtureUser) -> Result<Value, GraphError> {
        let user =
            self.user_from_fixture(u, &super::now(), Instant::now() - Duration::from_secs(3600));
        if self.users.contains_key(&user.id) || self.deleted_users.contains_key(&user.id) {
            return Err(GraphError::bad_request(
                "Another object with the same value for property id already exists.",
            ));
        }
        let json = user.to_json();
        self.changes.created(&user.id);
        self.users.insert(user.id.clone(), user);
        Ok(json)
    }

    /// Runs `write` on a user and records what it changed in the change log.
    fn write_user<R>(
        &mut self,
        user_id: &str,
        write: impl FnOnce(&mut User) -> Result<R, GraphError>,
    ) -> Result<R, GraphError> {
        let user = self
            .users
            .get_mut(user_id)
            .ok_or_else(|| GraphError::not_found(user_id))?;
        let before = user.to_json();
        let result = write(user);
        // A write that failed half-way still changed what it changed.
        let after = user.to_json();
        self.changes.changed(user_id, &before, &after);
        result
    }

    /// This directory as a fixture (to keep a sandbox's world between runs).
    pub fn to_fixture(&self) -> FixtureTenant {
        use super::fixture::FixtureRoleAssignment;
        FixtureTenant {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            domain: self.domain.clone(),
            consent: self.consent,
            users: self.users.values().map(User::to_fixture).collect(),
            contracts: self.contracts.clone(),
            role_assignments: self
                .role_assignments
                .values()
                .map(|r| FixtureRoleAssignment {
                    id: Some(r.id.clone()),
                    principal_id: r.principal_id.clone(),
                    role_definition_id: r.role_definition_id.clone(),
                    directory_scope_id: r.directory_scope_id.clone(),
                })
                .collect(),
            permissions: self.permissions.clone(),
            app_directory_roles: self.app_directory_roles.clone(),
            b2b_invitations: self.b2b_invitations,
            groups: self.groups.values().cloned().collect(),
            service_principals: self.service_principals.values().cloned().collect(),
            entra_id_p2: self.entra_id_p2,
            role_eligibilities: self
                .role_eligibilities
                .iter()
                .map(|e| FixtureRoleEligibility {
                    id: Some(e.id.clone()),
                    principal_id: e.principal_id.clone(),
                    role_definition_id: e.role_definition_id.clone(),
                    directory_scope_id: e.directory_scope_id.clone(),
                    start_date_time: Some(e.start_date_time.clone()),
                })
                .collect(),
            deleted_users: self
                .deleted_users
                .values()
                .map(|(u, deleted)| FixtureDeletedUser {
                    user: u.to_fixture(),
                    deleted_date_time: Some(deleted.clone()),
                })
                .collect(),
            change_log: self.changes.save(|| {
                self.users
                    .values()
                    .map(|u| (u.id.clone(), user_fingerprint(u)))
                    .collect()
            }),
            subscriptions: self.subscriptions.clone(),
            secure_score: self.secure_score.clone(),
            security_defaults: self.security_defaults,
            delegated_admin_relationships: self.gdap.to_fixture(),
        }
    }

    /// A user, group or service principal as a `directoryObject` (with `@odata.type`), as
    /// `$expand=principal` and member lists return it.
    pub fn directory_object(&self, id: &str) -> Option<Value> {
        let id = id.to_lowercase();
        if let Some(u) = self.users.get(&id) {
            let mut v = super::odata::project(u.to_json(), None, Some(DEFAULT_USER_PROPERTIES));
            v["userType"] = json!(u.user_type);
            v["@odata.type"] = json!("#microsoft.graph.user");
            return Some(v);
        }
        if let Some(g) = self.groups.get(&id) {
            return Some(json!({
                "@odata.type": "#microsoft.graph.group",
                "id": g.id,
                "displayName": g.display_name,
                "description": null,
                "mail": g.mail,
                "mailEnabled": g.mail.is_some(),
                "securityEnabled": true,
                "groupTypes": [],
                "isAssignableToRole": g.is_assignable_to_role,
            }));
        }
        self.service_principals.get(&id).map(|sp| {
            json!({
                "@odata.type": "#microsoft.graph.servicePrincipal",
                "id": sp.id,
                "displayName": sp.display_name,
                "appId": sp.app_id,
                "accountEnabled": true,
                "servicePrincipalType": "Application",
            })
        })
    }

    /// Every member of a group, nested groups flattened (the groups themselves included), as
    /// `transitiveMembers` lists them; `None` when there is no such group.
    pub fn transitive_members(&self, group_id: &str) -> Option<Vec<Value>> {
        let root = self.groups.get(&group_id.to_lowercase())?;
        let mut seen = std::collections::BTreeSet::new();
        let mut queue: std::collections::VecDeque<&String> = root.members.iter().collect();
        let mut out = Vec::new();
        while let Some(id) = queue.pop_front() {
            if id == &root.id || !seen.insert(id.clone()) {
                continue;
            }
            if let Some(g) = self.groups.get(id) {
                queue.extend(g.members.iter());
            }
            if let Some(v) = self.directory_object(id) {
                out.push(v);
            }
        }
        Some(out)
    }

    pub fn organization_json(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.display_name,
            "verifiedDomains": [{
                "name": self.domain,
                "isDefault": true,
                "isInitial": true,
                "type": "Managed",
                "capabilities": "Email, OfficeCommunicationsOnline",
            }],
        })
    }

    /// `POST /invitations`: a guest in PendingAcceptance. Inviting an address that already
    /// has a guest returns that guest (as Entra appears to), never a second one.
    pub fn invite(&mut self, body: &Value, redeem_base: &str) -> Result<Value, GraphError> {
        let email = body
            .get("invitedUserEmailAddress")
            .and_then(Value::as_str)
            .filter(|s| s.contains('@'))
            .ok_or_else(|| {
                GraphError::bad_request(
                    "Property invitedUserEmailAddress is required and must be an email address.",
                )
            })?;
        let redirect = body
            .get("inviteRedirectUrl")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::bad_request("Property inviteRedirectUrl is required."))?;
        let display_name = body
            .get("invitedUserDisplayName")
            .and_then(Value::as_str)
            .unwrap_or(email)
            .to_string();
        let reset = body
            .get("resetRedemption")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let existing = self.find_by_email(email).map(|u| u.id.clone());
        let user_id = match existing {
            Some(id) => {
                if reset {
                    self.write_user(&id, |user| {
                        user.external_user_state = Some("PendingAcceptance".into());
                        user.external_user_state_change_date_time = Some(super::now());
                        Ok(())
                    })?;
                }
                id
            }
            None => {
                let id = new_id();
                self.users.insert(
                    id.clone(),
                    User {
                        id: id.clone(),
                        display_name,
                        mail: Some(email.to_string()),
                        other_mails: vec![email.to_string()],
                        user_type: body
                            .get("invitedUserType")
                            .and_then(Value::as_str)
                            .unwrap_or("Guest")
                            .to_string(),
                        creation_type: Some("Invitation".into()),
                        external_user_state: Some("PendingAcceptance".into()),
                        external_user_state_change_date_time: Some(super::now()),
                        user_principal_name: guest_upn(email, &self.domain),
                        account_enabled: true,
                        created_date_time: super::now(),
                        created_at: Instant::now(),
                        profile: Default::default(),
                    },
                );
                self.changes.created(&id);
                id
            }
        };
        let invitation_id = new_id();
        Ok(json!({
            "id": invitation_id,
            "invitedUserDisplayName": self.users[&user_id].display_name,
            "invitedUserEmailAddress": email,
            "invitedUserType": self.users[&user_id].user_type,
            "inviteRedirectUrl": redirect,
            "inviteRedeemUrl": format!("{redeem_base}/redeem?tenant={}&invitation={invitation_id}&user={user_id}", self.id),
            "sendInvitationMessage": body.get("sendInvitationMessage").and_then(Value::as_bool).unwrap_or(false),
            "resetRedemption": reset,
            "status": "PendingAcceptance",
            "invitedUserMessageInfo": body.get("invitedUserMessageInfo").cloned().unwrap_or(json!({
                "messageLanguage": null, "customizedMessageBody": null, "ccRecipients": []
            })),
            "invitedUser": {"id": user_id},
        }))
    }

    /// A user's id from its id or any of its email addresses.
    pub fn user_id(&self, id_or_email: &str) -> Option<String> {
        self.users
            .get(&id_or_email.to_lowercase())
            .or_else(|| self.find_by_email(id_or_email))
            .map(|u| u.id.clone())
    }

    pub fn find_by_email(&self, email: &str) -> Option<&User> {
        let email = email.to_lowercase();
        self.users.values().find(|u| {
            u.mail.as_deref().is_some_and(|m| m.to_lowercase() == email)
                || u.other_mails.iter().any(|m| m.to_lowercase() == email)
        })
    }

    /// The redemption a real guest does by following the invitation link.
    pub fn accept(&mut self, user_id: &str) -> Result<(), GraphError> {
        self.write_user(user_id, |user| {
            user.external_user_state = Some("Accepted".into());
            user.external_user_state_change_date_time = Some(super::now());
            Ok(())
        })
    }

    /// `PATCH /users/{id}` (user-update.md): names, mail, account state and the profile fields
    /// end-user sync reads. Checked whole before anything is written, so a refused patch
    /// changes nothing.
    pub fn patch_user(&mut self, user_id: &str, patch: &Value) -> Result<(), GraphError> {
        if !self.users.contains_key(user_id) {
            return Err(GraphError::not_found(user_id));
        }
        let mut copy = self.users[user_id].clone();
        apply_user_patch(&mut copy, patch)?;
        self.write_user(user_id, |user| {
            *user = copy;
            Ok(())
        })
    }
}

/// A nullable string property's new value: a string, or null to clear it.
fn optional_string(key: &str, value: &Value) -> Result<Option<String>, GraphError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(invalid_value(key)),
    }
}

fn invalid_value(key: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Invalid value specified for property '{key}' of resource 'User'."
    ))
}

fn apply_user_patch(user: &mut User, patch: &Value) -> Result<(), GraphError> {
    let Some(fields) = patch.as_object() else {
        return Err(GraphError::bad_request(
            "Request body must be a JSON object.",
        ));
    };
    for (key, value) in fields {
        match key.as_str() {
            "displayName" => user.display_name = value
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    GraphError::bad_request(
                        "Invalid value specified for property 'displayName' of resource 'User'.",
                    )
                })?
                .to_string(),
            "mail" => user.mail = value.as_str().map(str::to_string),
            "otherMails" => {
                user.other_mails = value
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            "accountEnabled" => {
                user.account_enabled = value.as_bool().ok_or_else(|| invalid_value(key))?
            }
            "userPrincipalName" => {
                user.user_principal_name = value
                    .as_str()
                    .filter(|s| s.contains('@') && !s.starts_with('@'))
                    .ok_or_else(|| invalid_value(key))?
                    .to_string()
            }
            "givenName" => user.profile.given_name = optional_string(key, value)?,
            "surname" => user.profile.surname = optional_string(key, value)?,
            "department" => user.profile.department = optional_string(key, value)?,
            "officeLocation" => user.profile.office_location = optional_string(key, value)?,
            "companyName" => user.profile.company_name = optional_string(key, value)?,
            "jobTitle" => user.profile.job_title = optional_string(key, value)?,
            "mobilePhone" => user.profile.mobile_phone = optional_string(key, value)?,
            // A collection: Graph takes the whole new list (null clears it).
            "businessPhones" => {
                user.profile.business_phones = match value {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| invalid_value(key))
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(invalid_value(key)),
                }
            }
            "userType" => user.user_type = value.as_str().unwrap_or("Guest").to_string(),
            "externalUserState" => {
                user.external_user_state = value.as_str().map(str::to_string);
                user.external_user_state_change_date_time = Some(super::now());
            }
            // The Graph SDKs send the entity's type in every typed body; Graph accepts it
            // when it names the entity's own type (OData JSON format 4.01, "Control
            // Information: type", docs.oasis-open.org/odata/odata-json-format/v4.01) and
            // refuses another type.
            "@odata.type" if is_odata_type(value, "user") => {}
            other => {
                return Err(GraphError::bad_request(format!(
                    "Property '{other}' does not exist on type 'microsoft.graph.user' or cannot be updated."
                )));
            }
        }
    }
    Ok(())
}

impl Directory {
    /// Soft delete: the user moves to deleted items and loses its role assignments.
    pub fn delete_user(&mut self, user_id: &str) -> Result<(), GraphError> {
        let user = self
            .users
            .shift_remove(user_id)
            .ok_or_else(|| GraphError::not_found(user_id))?;
        self.role_assignments
            .retain(|_, ra| ra.principal_id != user_id);
        self.changes
            .removed(&user.id, super::changes::Removal::Changed);
        self.deleted_users
            .insert(user.id.clone(), (user, super::now()));
        Ok(())
    }

    pub fn restore_user(&mut self, id: &str) -> Result<Value, GraphError> {
        let (user, _) = self
            .deleted_users
            .shift_remove(id)
            .ok_or_else(|| GraphError::not_found(id))?;
        let json = user.to_json();
        self.changes.created(&user.id);
        self.users.insert(user.id.clone(), user);
        Ok(json)
    }

    /// `DELETE /directory/deletedItems/{id}`: the user is gone for good.
    pub fn purge_user(&mut self, id: &str) -> Result<(), GraphError> {
        self.deleted_users
            .shift_remove(id)
            .ok_or_else(|| GraphError::not_found(id))?;
        self.changes.removed(id, super::changes::Removal::Deleted);
        Ok(())
    }

    /// Adds `member` (any object id) to a group's direct members; group membership is not a
    /// change to the user (users/delta does not track it: GRAPH.md).
    pub fn add_member(&mut self, group_id: &str, member: &str) -> Result<(), GraphError> {
        let group = self
            .groups
            .get_mut(&group_id.to_lowercase())
            .ok_or_else(|| GraphError::not_found(group_id))?;
        let member = member.to_lowercase();
        if group.members.contains(&member) {
            return Err(GraphError::bad_request(
                "One or more added object references already exist for the following modified properties: 'members'.",
            ));
        }
        group.members.push(member);
        Ok(())
    }

    pub fn remove_member(&mut self, group_id: &str, member: &str) -> Result<(), GraphError> {
        let group = self
            .groups
            .get_mut(&group_id.to_lowercase())
            .ok_or_else(|| GraphError::not_found(group_id))?;
        let member = member.to_lowercase();
        let before = group.members.len();
        group.members.retain(|m| *m != member);
        if group.members.len() == before {
            return Err(GraphError::not_found(&member));
        }
        Ok(())
    }

    /// The users among a group's transitive members, in the order `transitive_members`
    /// finds them; `None` when there is no such group.
    pub fn transitive_users(&self, group_id: &str) -> Option<Vec<&User>> {
        let members = self.transitive_members(group_id)?;
        Some(
            members
                .iter()
                .filter_map(|m| m["id"].as_str())
                .filter_map(|id| self.users.get(id))
                .collect(),
        )
    }

    /// `POST roleAssignments`. A principal created less than `replication_delay` ago is not
    /// visible yet (404), as with Entra's replication; a duplicate is the real conflict error.
    pub fn assign_role(
        &mut self,
        body: &Value,
        replication_delay: Duration,
        shape: crate::sandbox::faults::ReplicationShape,
        role_exists: impl Fn(&str) -> bool,
    ) -> Result<Value, GraphError> {
        use crate::sandbox::faults::ReplicationShape;
        let field = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .map(str::to_lowercase)
                .ok_or_else(|| GraphError::bad_request(format!("Property '{name}' is required.")))
        };
        let principal_id = field("principalId")?;
        let role_definition_id = field("roleDefinitionId")?;
        let directory_scope_id = body
            .get("directoryScopeId")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_string();
        if !directory_scope_id.starts_with('/') {
            return Err(GraphError::bad_request("Invalid directoryScopeId."));
        }
        match self.users.get(&principal_id) {
            Some(user) if user.created_at.elapsed() >= replication_delay => {}
            Some(_) => {
                return Err(match shape {
                    ReplicationShape::Template => GraphError::not_found(&role_definition_id),
                    ReplicationShape::Reference => {
                        GraphError::bad_request("Not a valid reference update.")
                    }
                    _ => GraphError::not_found(&principal_id),
                });
            }
            None => return Err(GraphError::not_found(&principal_id)),
        }
        if !role_exists(&role_definition_id) {
            return Err(GraphError::not_found(&role_definition_id));
        }
        if self.role_assignments.values().any(|ra| {
            ra.principal_id == principal_id
                && ra.role_definition_id == role_definition_id
                && ra.directory_scope_id == directory_scope_id
        }) {
            return Err(GraphError::bad_request(
                "A conflicting object with one or more of the specified property values is present in the directory.",
            ));
        }
        let ra = RoleAssignment {
            id: new_id(),
            principal_id,
            role_definition_id,
            directory_scope_id,
        };
        let json = ra.to_json();
        self.role_assignments.insert(ra.id.clone(), ra);
        Ok(json)
    }
}

/// Whether a request body's `@odata.type` names `microsoft.graph.{entity}` (with or without the
/// leading `#`, or with the namespace alias `graph`, as the metadata declares it).
pub fn is_odata_type(value: &Value, entity: &str) -> bool {
    value.as_str().is_some_and(|t| {
        let t = t.strip_prefix('#').unwrap_or(t);
        t.strip_prefix("microsoft.graph.")
            .or_else(|| t.strip_prefix("graph."))
            .is_some_and(|e| e.eq_ignore_ascii_case(entity))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::fixture::{AssignedLicense, FixtureUser, UserProfile};

    /// `PATCH /users/{id}` takes the profile fields, refuses a bad value without writing any
    /// of the patch, and every write lands in the change log once.
    #[test]
    fn user_writes_are_whole_and_logged() {
        let mut tenant = FixtureTenant::new(
            "00000000-0000-4000-8000-0000000000aa",
            "Foggy",
            "foggy.onmicrosoft.com",
        );
        let id = "00000000-0000-4000-8000-000000000001";
        tenant
            .users
            .push(FixtureUser::member(id, "Ana", "ana@foggy.example"));
        let mut dir = Directory::from_fixture(&tenant);
        let refused = dir.patch_user(id, &json!({"department": "IT", "accountEnabled": "no"}));
        assert_eq!(refused.unwrap_err().status, 400);
        assert_eq!(dir.users[id].profile.department, None, "nothing written");
        assert_eq!(dir.changes.seq, 0);
        dir.patch_user(
            id,
            &json!({"department": "IT", "businessPhones": ["+1 617 555 0100"], "jobTitle": null,
                    "officeLocation": "Chicago", "userPrincipalName": "ana@foggy.onmicrosoft.com"}),
        )
        .unwrap();
        assert_eq!(
            dir.users[id].profile.office_location.as_deref(),
            Some("Chicago")
        );
        assert_eq!(dir.changes.seq, 1, "one write, one change");
        let changes = dir.changes.user(id).unwrap();
        assert!(changes.changed_after("businessPhones", 0));
        assert!(
            !changes.changed_after("jobTitle", 0),
            "null to null is no change"
        );
        dir.delete_user(id).unwrap();
        dir.purge_user(id).unwrap();
        let removed: Vec<_> = dir.changes.removed_since(1).collect();
        assert_eq!(
            removed,
            [(&id.to_string(), crate::sandbox::changes::Removal::Deleted)]
        );
        assert_eq!(dir.restore_user(id).unwrap_err().status, 404);
    }

    /// A world kept between runs keeps each user's profile and whether the account is on.
    #[test]
    fn a_users_profile_survives_the_fixture_round_trip() {
        let mut tenant = FixtureTenant::new(
            "00000000-0000-4000-8000-0000000000aa",
            "Foggy",
            "foggy.onmicrosoft.com",
        );
        tenant.users.push(FixtureUser {
            account_enabled: false,
            profile: UserProfile {
                department: Some("Finance".into()),
                office_location: Some("Boston 2".into()),
                assigned_licenses: vec![AssignedLicense {
                    sku_id: "6fd2c87f-b296-42f0-b197-1e91e994b900".into(),
                    disabled_plans: Vec::new(),
                }],
                ..UserProfile::default()
            },
            ..FixtureUser::member(
                "00000000-0000-4000-8000-000000000001",
                "Ana",
                "ana@foggy.example",
            )
        });
        let again = Directory::from_fixture(&tenant).to_fixture();
        let (before, after) = (&tenant.users[0], &again.users[0]);
        assert!(!after.account_enabled);
        assert_eq!(after.profile, before.profile);
        // Written without the fields it does not have, read back the same.
        let text = serde_json::to_string(after).unwrap();
        assert!(
            !text.contains("surname") && text.contains("officeLocation"),
            "{text}"
        );
        let read: FixtureUser = serde_json::from_str(&text).unwrap();
        assert_eq!(read.profile, before.profile);
        // A misspelt field is refused, not ignored.
        let typo = text.replace("officeLocation", "officeLocaton");
        assert!(serde_json::from_str::<FixtureUser>(&typo).is_err());
    }
}

/// The change log kept in the saved world: what one run logged, the next goes on from, and
/// what was edited in the file in between is logged at load.
#[cfg(test)]
mod saved_log_tests {
    use super::*;
    use crate::sandbox::changes::Removal;

    const ANA: &str = "00000000-0000-4000-8000-000000000001";
    const BEN: &str = "00000000-0000-4000-8000-000000000002";
    const CHLOE: &str = "00000000-0000-4000-8000-000000000003";

    fn directory() -> Directory {
        let mut tenant = FixtureTenant::new(
            "00000000-0000-4000-8000-0000000000aa",
            "Foggy",
            "foggy.onmicrosoft.com",
        );
        for (id, name) in [(ANA, "Ana"), (BEN, "Ben"), (CHLOE, "Chloe")] {
            let mail = format!("{}@foggy.example", name.to_lowercase());
            let mut user = FixtureUser::member(id, name, &mail);
            user.profile.department = Some("Sales".into());
            tenant.users.push(user);
        }
        Directory::from_fixture(&tenant)
    }

    /// Saved as the workspace saves it (JSON text), edited by `edit`, loaded again.
    fn reload(dir: &Directory, edit: impl FnOnce(&mut Value)) -> Directory {
        let mut saved = serde_json::to_value(dir.to_fixture()).unwrap();
        edit(&mut saved);
        let text = serde_json::to_string_pretty(&saved).unwrap();
        Directory::from_fixture(&serde_json::from_str(&text).unwrap())
    }

    fn users(tenant: &mut Value) -> &mut Vec<Value> {
        tenant["users"].as_array_mut().unwrap()
    }

    #[test]
    fn an_untouched_directory_saves_no_log_and_a_written_one_loads_at_zero() {
        let dir = directory();
        let saved = dir.to_fixture();
        assert!(saved.change_log.is_none() && saved.deleted_users.is_empty());
        let text = serde_json::to_string(&saved).unwrap();
        assert!(
            !text.contains("changeLog") && !text.contains("deletedUsers"),
            "{text}"
        );
        // Edited without a log (a hand-written fixture): no changes, as before.
        let again = reload(&dir, |t| {
            users(t).remove(0);
        });
        assert_eq!(again.changes.seq, 0);
        assert_eq!(again.changes.removed_since(0).count(), 0);
    }

    #[test]
    fn the_log_round_trips_through_the_saved_world() {
        let mut dir = directory();
        dir.patch_user(ANA, &json!({"department": "IT"})).unwrap();
        dir.delete_user(BEN).unwrap();
        dir.delete_user(CHLOE).unwrap();
        dir.purge_user(CHLOE).unwrap();
        dir.changes.issued = 7;
        dir.changes.expired_through = 3;
        dir.changes.epoch = 1;
        let before = dir.to_fixture().change_log.unwrap();
        assert_eq!(before.seq, 4);
        assert_eq!(before.fingerprints.len(), 1, "only users in `users`");
        let again = reload(&dir, |_| {});
        assert_eq!(again.to_fixture().change_log.unwrap(), before);
        assert_eq!(again.changes.seq, 4, "an unedited file logs nothing");
        assert!(
            again
                .changes
                .user(ANA)
                .unwrap()
                .changed_after("department", 0)
        );
        assert!(
            !again
                .changes
                .user(ANA)
                .unwrap()
                .changed_after("jobTitle", 0)
        );
        let mut removed: Vec<_> = again.changes.removed_since(0).collect();
        removed.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(
            removed,
            [
                (&BEN.to_string(), Removal::Changed),
                (&CHLOE.to_string(), Removal::Deleted)
            ]
        );
        // The soft-deleted user is kept, and can still be restored in the next run.
        assert_eq!(again.deleted_users.len(), 1);
        let mut again = again;
        again.restore_user(BEN).unwrap();
        assert_eq!(again.changes.created_at(BEN), 5);
        // The compact form: counters, one user's changes, removals, fingerprints.
        let text = serde_json::to_string(&before).unwrap();
        assert!(text.len() < 400, "{text}");
    }

    #[test]
    fn an_edit_to_a_saved_user_is_logged_at_load_with_the_properties_it_changed() {
        let mut dir = directory();
        dir.changes.issued = 1; // a delta link was given out: the log is kept
        let again = reload(&dir, |t| {
            users(t)[1]["profile"]["department"] = json!("Finance");
            users(t)[2]["profile"]["jobTitle"] = json!("Controller");
        });
        assert_eq!(again.changes.seq, 2, "one change per edited user");
        assert_eq!(
            again.users[BEN].profile.department.as_deref(),
            Some("Finance")
        );
        let ben = again.changes.user(BEN).unwrap();
        assert!(ben.changed_after("department", 0));
        assert!(!ben.changed_after("displayName", 0) && !ben.changed_after("jobTitle", 0));
        let chloe = again.changes.user(CHLOE).unwrap();
        assert!(chloe.changed_after("jobTitle", 1) && !chloe.changed_after("department", 0));
        assert!(again.changes.user(ANA).is_none());
        // Logged once: saved and loaded again, nothing more.
        assert_eq!(reload(&again, |_| {}).changes.seq, 2);
    }

    #[test]
    fn a_removed_a_soft_deleted_and_a_new_user_are_logged_at_load() {
        let mut dir = directory();
        dir.patch_user(ANA, &json!({"jobTitle": "Rep"})).unwrap();
        let again = reload(&dir, |t| {
            let list = users(t);
            let ben = list.remove(1);
            list.remove(1); // Chloe, gone for good
            list.push(json!({"id": "00000000-0000-4000-8000-000000000004",
                             "displayName": "Dev", "mail": "dev@foggy.example"}));
            t["deletedUsers"] = json!([{"user": ben}]);
        });
        assert_eq!(again.changes.seq, 4);
        let new = again
            .changes
            .user("00000000-0000-4000-8000-000000000004")
            .unwrap();
        assert_eq!(new.created, 2, "created, whole");
        let mut removed: Vec<_> = again.changes.removed_since(1).collect();
        removed.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(
            removed,
            [
                (&BEN.to_string(), Removal::Changed),
                (&CHLOE.to_string(), Removal::Deleted)
            ]
        );
        // Purged from the deleted users in the file later: gone for good.
        let later = reload(&again, |t| t["deletedUsers"] = json!([]));
        assert_eq!(
            later.changes.removed_since(4).collect::<Vec<_>>(),
            [(&BEN.to_string(), Removal::Deleted)]
        );
    }
}
