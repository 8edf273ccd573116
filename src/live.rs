//! What Entra holds right now, per tenant, as plain data: the planner's third input.
//!
//! Read by `graph::read` (one `$batch` per tenant); kept free of I/O so plans stay pure.
//!
//! A tenant's directory is read from named **sources** (one request or a few each: see
//! `graph::sources`), and each has its own [`SourceStatus`]: a source that failed leaves only
//! the kinds that need it unplanned (`resources::LiveRules::sources`), not the whole tenant.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::outcome::{Cause, Failure};

/// The names of the live sources (what a kind declares it needs, and keys of
/// [`LiveDirectory::sources`]).
pub mod source {
    /// The tenant's guest users (`GET /users?$filter=userType eq 'Guest'`).
    pub const GUESTS: &str = "guests";
    /// Directory role assignments with their principals (`$expand=principal`).
    pub const ROLE_ASSIGNMENTS: &str = "roleAssignments";
    /// PIM-eligible role assignments (report-only: needs Entra ID P2).
    pub const ROLE_ELIGIBILITY: &str = "roleEligibility";
    /// Transitive members of groups holding privileged roles (report-only follow-up).
    pub const GROUP_MEMBERS: &str = "groupMembers";
    /// The users the end-user sync reads (`/users/delta` and the groups its rules name).
    pub const USERS: &str = "users";
    /// The partner's GDAP relationships with this customer (read once per run in the
    /// partner tenant, `graph::gdap`, and handed to each customer's directory).
    pub const GDAP: &str = "gdapRelationships";
}

/// How one source of a tenant's directory was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum SourceStatus {
    /// Read completely (every page).
    Read,
    /// Not read: the kinds that need it are not planned, and the tenant is a failure of the
    /// run.
    Failed(Box<Failure>),
    /// A report-only source that Graph refused (no Entra ID P2, permission missing): the
    /// report says what was not checked; never a failure.
    NotChecked { reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveSnapshot {
    /// By tenant (stable) name.
    pub tenants: BTreeMap<String, LiveTenant>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum LiveTenant {
    Read(LiveDirectory),
    /// Not read (consent missing, token refused, permission missing, Graph error); the other
    /// tenants still plan, and this one is a failure of the run.
    Failed(crate::outcome::Failure),
}

impl LiveTenant {
    /// Whether anything a kind needs could not be read (the whole tenant, or a source).
    pub fn is_failed(&self) -> bool {
        match self {
            LiveTenant::Read(dir) => dir.failed_sources().next().is_some(),
            LiveTenant::Failed(_) => true,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveDirectory {
    pub guests: Vec<LiveGuest>,
    pub role_assignments: Vec<LiveRoleAssignment>,
    /// Who holds privileged roles (active or eligible), by lowercase object id, from
    /// `$expand=principal`; only principals of privileged roles are kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principals: BTreeMap<String, LivePrincipal>,
    /// PIM-eligible role assignments (`roleEligibilitySchedules`), when they could be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eligible_assignments: Vec<LiveEligibleAssignment>,
    /// Transitive members of the groups that hold privileged roles, by lowercase group id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_members: BTreeMap<String, Vec<LivePrincipal>>,
    /// The users the end-user sync read (source `users`), for tenants that sync end users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Box<LiveUsers>>,
    /// The partner's GDAP relationships whose customer is this tenant (source `gdap`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gdap_relationships: Vec<crate::gdap::LiveRelationship>,
    /// When the partner's relationships were read (RFC 3339): what expiry is judged against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gdap_read_at: Option<String>,
    /// How each source was read, by source name ([`source`]). A source that is not listed
    /// was not read: its data above is empty, not known to be empty.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceStatus>,
}

/// What one end-user sync read of a tenant found: the whole directory, or what changed since
/// the stored delta link, and who is in the groups the rules name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveUsers {
    /// Why the whole directory was read (a first sync, rules that changed, an expired or
    /// reset delta link), when it was: then a user not listed is gone. Otherwise `users` are
    /// only those changed since the stored position (and those fetched because their
    /// membership of a named group changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<String>,
    pub users: Vec<crate::end_users::EntraUser>,
    /// Users deleted since the stored position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<RemovedUser>,
    /// The groups the rules name, as resolved in this read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<LiveGroup>,
    /// Where the next read starts (Graph's delta link: opaque, kept in state).
    pub delta_link: String,
}

/// A user `/users/delta` reported as `@removed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedUser {
    /// Lowercase object id.
    pub id: String,
    /// `@removed.reason` was `changed`: soft-deleted, restorable for 30 days.
    pub soft: bool,
}

/// A group a rule names, and its transitive user members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveGroup {
    pub reference: crate::end_users::GroupRef,
    /// Lowercase object id.
    pub id: String,
    pub display_name: String,
    /// Lowercase user object ids, sorted.
    pub members: Vec<String>,
}

/// What a directory object is, as far as privileged access goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    User,
    Guest,
    Group,
    ServicePrincipal,
    /// Anything else (a device, a contact, or a type Graph did not name).
    Other,
}

impl PrincipalKind {
    pub fn describe(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Guest => "guest",
            PrincipalKind::Group => "group",
            PrincipalKind::ServicePrincipal => "service principal",
            PrincipalKind::Other => "directory object",
        }
    }
}

/// A directory object as Graph describes it (untrusted text: escape before showing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePrincipal {
    pub id: String,
    pub kind: PrincipalKind,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
}

impl LivePrincipal {
    /// From a directory object's JSON (`@odata.type`, `userType`, names); `None` without an id.
    pub fn from_graph(v: &serde_json::Value) -> Option<LivePrincipal> {
        let text = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
        let id = text("id")?.to_lowercase();
        let upn = text("userPrincipalName");
        let kind = match v["@odata.type"].as_str().unwrap_or_default() {
            "#microsoft.graph.user" => {
                let guest = v["userType"].as_str() == Some("Guest")
                    || upn.as_deref().is_some_and(|u| u.contains("#EXT#"));
                if guest {
                    PrincipalKind::Guest
                } else {
                    PrincipalKind::User
                }
            }
            "#microsoft.graph.group" => PrincipalKind::Group,
            "#microsoft.graph.servicePrincipal" => PrincipalKind::ServicePrincipal,
            _ => PrincipalKind::Other,
        };
        Some(LivePrincipal {
            id,
            kind,
            display_name: text("displayName"),
            user_principal_name: upn,
            mail: text("mail"),
        })
    }
}

/// A PIM eligibility: the principal may activate the role (v1.0 `unifiedRoleEligibilitySchedule`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveEligibleAssignment {
    pub id: String,
    pub principal_id: String,
    pub role_definition_id: String,
    pub directory_scope_id: String,
    /// `scheduleInfo.startDateTime`, else `createdDateTime`.
    pub since: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveGuest {
    pub id: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub other_mails: Vec<String>,
    pub external_user_state: Option<String>,
    pub external_user_state_change: Option<String>,
}

impl LiveGuest {
    /// Found by email: `mail` first, then `otherMails` (case-insensitive).
    pub fn has_email(&self, email: &str) -> bool {
        let email = email.to_lowercase();
        self.mail
            .as_deref()
            .is_some_and(|m| m.to_lowercase() == email)
            || self.other_mails.iter().any(|m| m.to_lowercase() == email)
    }

    /// "PendingAcceptance since 2026-11-20T10:00:00Z", for plans and drift reports.
    pub fn acceptance(&self) -> Option<String> {
        let state = self.external_user_state.as_deref()?;
        Some(match &self.external_user_state_change {
            Some(since) => format!("{state} since {since}"),
            None => state.to_string(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRoleAssignment {
    pub id: String,
    pub principal_id: String,
    pub role_definition_id: String,
    pub directory_scope_id: String,
}

impl LiveDirectory {
    /// Records how source `name` was read.
    pub fn set_source(&mut self, name: &str, status: SourceStatus) {
        self.sources.insert(name.to_string(), status);
    }

    /// Marks `names` read: for directories built from data rather than by `graph::read`
    /// (export, tests).
    pub fn with_read(mut self, names: &[&str]) -> LiveDirectory {
        for name in names {
            self.set_source(name, SourceStatus::Read);
        }
        self
    }

    /// Whether source `name` was read completely.
    pub fn is_read(&self, name: &str) -> bool {
        matches!(self.sources.get(name), Some(SourceStatus::Read))
    }

    /// Why source `name` cannot be used (`None` when it was read). A report-only refusal and
    /// a source that was never asked for are failures too, for whoever needs the source.
    pub fn unread(&self, name: &str) -> Option<Failure> {
        match self.sources.get(name) {
            Some(SourceStatus::Read) => None,
            Some(SourceStatus::Failed(f)) => Some(Failure::clone(f)),
            Some(SourceStatus::NotChecked { reason }) => {
                Some(Failure::new(Cause::NotRead, reason.clone()).with_source(name))
            }
            None => {
                Some(Failure::new(Cause::NotRead, "Entra was not asked for it").with_source(name))
            }
        }
    }

    /// The sources that failed (not the report-only ones Graph refused).
    pub fn failed_sources(&self) -> impl Iterator<Item = (&str, &Failure)> {
        self.sources
            .iter()
            .filter_map(|(name, status)| match status {
                SourceStatus::Failed(f) => Some((name.as_str(), &**f)),
                _ => None,
            })
    }

    /// Why a report-only source was not checked (refused, or not read at all).
    fn not_checked(&self, name: &str) -> Option<String> {
        match self.sources.get(name) {
            Some(SourceStatus::Read) => None,
            Some(SourceStatus::NotChecked { reason }) => Some(reason.clone()),
            Some(SourceStatus::Failed(f)) => Some(f.describe()),
            None => Some("not read".into()),
        }
    }

    /// Why eligible assignments were not read (no Entra ID P2, permission missing, ...).
    pub fn eligible_not_checked(&self) -> Option<String> {
        self.not_checked(source::ROLE_ELIGIBILITY)
    }

    /// Why some members of groups that hold privileged roles could not be read.
    pub fn group_members_not_checked(&self) -> Option<String> {
        self.not_checked(source::GROUP_MEMBERS)
    }

    pub fn guest_by_email(&self, email: &str) -> Option<&LiveGuest> {
        let exact = self.guests.iter().find(|g| {
            g.mail
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(email))
        });
        exact.or_else(|| self.guests.iter().find(|g| g.has_email(email)))
    }

    pub fn guest_by_id(&self, id: &str) -> Option<&LiveGuest> {
        self.guests.iter().find(|g| g.id.eq_ignore_ascii_case(id))
    }
}
