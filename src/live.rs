//! What Entra holds right now, per tenant, as plain data: the planner's third input.
//!
//! Read by `graph::read` (one `$batch` per tenant); kept free of I/O so plans stay pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveDirectory {
    pub guests: Vec<LiveGuest>,
    pub role_assignments: Vec<LiveRoleAssignment>,
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
