//! One planned action: address, operation, reason, attribute changes and why it may be
//! blocked. Shared by the planner, the renderers, apply and drift.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::{Attributes, Ids};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    Create,
    Update,
    Delete,
    /// Record an existing Entra object as owned, without changing it.
    Adopt,
    /// Mark an MSP-side record as archived, with when and why (a contact whose user left):
    /// kept, never dropped.
    Archive,
    NoOp,
}

/// Why an action is planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// In the manifests, not in state.
    NewInManifests,
    /// Manifest attributes differ from the last applied ones.
    ChangedInManifests,
    /// The stable name changed (`formerNames` or a renamed tenant); the object is kept.
    RenamedInManifests,
    /// In state, no longer in the manifests.
    RemovedFromManifests,
    /// Changed in Entra since the last apply.
    DriftedInEntra,
    /// Recorded in state but gone from Entra.
    MissingInEntra,
    /// In Entra already, but not created or adopted by tenantform.
    ExistsInEntra,
    /// `--resend-invitations` for an invitation still pending.
    ResendRequested,
    /// An interrupted apply created it in Entra without recording it; recorded now.
    Recovered,
    /// Recorded in state a moment ago and not visible in Entra yet (replication).
    PendingReplication,
    /// Waits for another object that is not planned or blocked (e.g. the guest of a role).
    WaitsForDependency,
    /// An Entra user the end-user sync rules include (a new contact, or one restored).
    SyncedFromEntra,
    /// A contact whose user the rules no longer include, or who left Entra (the note says
    /// which).
    LeftSyncRules,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::NewInManifests => "new in manifests",
            Reason::ChangedInManifests => "changed in manifests",
            Reason::RenamedInManifests => "renamed in manifests",
            Reason::RemovedFromManifests => "removed from manifests",
            Reason::DriftedInEntra => "changed in Entra since last apply",
            Reason::MissingInEntra => "missing in Entra",
            Reason::ExistsInEntra => "exists in Entra, not owned by tenantform",
            Reason::ResendRequested => "invitation resend requested",
            Reason::Recovered => "created by an interrupted apply, recorded now",
            Reason::PendingReplication => "not visible in Entra yet (replication)",
            Reason::WaitsForDependency => "waits for an object that is not planned",
            Reason::SyncedFromEntra => "an end user in Entra",
            Reason::LeftSyncRules => "no longer an end user",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub address: String,
    pub kind: String,
    /// The tenant this object belongs to (plans are grouped per customer).
    pub tenant: String,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The address the object had in state, when it is renamed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// Attribute-level differences (`labels.tier` for nested values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AttributeChange>,
    /// Attributes as last applied (updates and deletes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, Value>>")]
    pub before: Option<Attributes>,
    /// Attributes to apply (creates and updates).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, Value>>")]
    pub after: Option<Attributes>,
    /// Why this action will not be carried out (e.g. a delete without `--allow-delete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Ids of the live Entra object (for updates, deletes and adoptions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub live_ids: Option<Ids>,
    /// Live information shown with the object, e.g. `PendingAcceptance since ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Action {
    /// Will apply do something for it?
    pub fn is_change(&self) -> bool {
        self.op != Op::NoOp && self.blocked.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributeChange {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// An action for unit tests: a create of `address` (of `kind`, in `tenant`) and nothing else.
#[cfg(test)]
pub(crate) fn test_action(kind: &str, address: &str, tenant: &str) -> Action {
    Action {
        address: address.into(),
        kind: kind.into(),
        tenant: tenant.into(),
        op: Op::Create,
        reason: None,
        moved_from: None,
        changes: Vec::new(),
        before: None,
        after: None,
        blocked: None,
        warnings: Vec::new(),
        live_ids: None,
        note: None,
    }
}
