//! End users: contacts synced from each customer's Entra users by declared rules.
//!
//! Pure: the rules as resolved from `EndUserSync` documents (`rules`), the users as Graph
//! describes them (`user`), and where a tenant's sync stands (`SyncPosition`: the delta link
//! and what the last read saw of the named groups). The plan step that turns a read into
//! contact actions is `plan::contacts`.

pub mod rules;
pub mod user;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use rules::{
    Condition, ContactField, Decision, GroupMembership, GroupRef, Pattern, Route, SyncRules,
    TenantSync, UserRule, Why,
};
pub use user::{EntraUser, UserProperty};

use crate::live::LiveGroup;

/// Where a tenant's end-user sync stands after an apply: kept in state as
/// `user_sync.<tenant>`, and the start of the next read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPosition {
    /// Graph's delta link: the next read asks only for what changed since.
    pub delta_link: String,
    /// [`rules_digest`] of the rules the position was read for: when the rules that choose
    /// users change, users they excluded before were never kept, so the next read is whole.
    pub rules_digest: String,
    /// A digest of the routes, field map and default organization the stored contacts were
    /// made with: while it holds, a contact whose user did not change is not worked out again.
    #[serde(default)]
    pub routing_digest: String,
    /// When the read was made (RFC 3339).
    pub read_at: String,
    /// The members of each named group at that read, by [`group_key`]: a user whose
    /// membership changed is read again even when users/delta does not report it (it does
    /// not track membership).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, StoredGroup>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredGroup {
    /// Lowercase object id (a group named by display name is not looked up again).
    #[serde(default)]
    pub id: String,
    pub display_name: String,
    /// Lowercase user ids, sorted.
    pub members: Vec<String>,
}

impl SyncPosition {
    /// As a stored object's attributes.
    pub fn to_attributes(&self) -> crate::state::Attributes {
        match serde_json::to_value(self).expect("a position serializes") {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => unreachable!("a struct serializes as an object"),
        }
    }

    pub fn from_attributes(attributes: &crate::state::Attributes) -> Option<SyncPosition> {
        let map: serde_json::Map<String, serde_json::Value> = attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).ok()
    }
}

/// The key of a group in a position: `id:<id>` or `name:<display name>`.
pub fn group_key(group: &GroupRef) -> String {
    match group {
        GroupRef::Id(id) => format!("id:{id}"),
        GroupRef::Name(name) => format!("name:{name}"),
    }
}

/// What decides which users are read: the include and exclude rules and whether disabled
/// accounts are kept, with the version of the properties the sync selects. Routes and field
/// maps are left out: they are applied again to the users kept with every contact.
pub fn rules_digest(rules: &SyncRules) -> String {
    /// Bumped when the properties the sync selects change.
    const SELECT_VERSION: u32 = 1;
    let chosen = serde_json::json!({
        "select": SELECT_VERSION,
        "include": rules.include,
        "exclude": rules.exclude,
        "keepDisabled": rules.keep_disabled,
    });
    let bytes = serde_json::to_vec(&chosen).expect("rules serialize");
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Group membership as one read found it.
pub struct ReadGroups<'a>(pub &'a [LiveGroup]);

impl GroupMembership for ReadGroups<'_> {
    fn is_member(&self, group: &GroupRef, user_id: &str) -> bool {
        self.0
            .iter()
            .find(|g| &g.reference == group)
            .is_some_and(|g| {
                g.members
                    .binary_search_by(|m| m.as_str().cmp(user_id))
                    .is_ok()
            })
    }

    fn display_name<'a>(&'a self, group: &'a GroupRef) -> &'a str {
        self.0
            .iter()
            .find(|g| &g.reference == group)
            .map_or(group.as_str(), |g| g.display_name.as_str())
    }
}

/// Group membership as the stored position recorded it (the last applied read).
pub struct StoredGroups<'a>(pub &'a BTreeMap<String, StoredGroup>);

impl GroupMembership for StoredGroups<'_> {
    fn is_member(&self, group: &GroupRef, user_id: &str) -> bool {
        self.0.get(&group_key(group)).is_some_and(|g| {
            g.members
                .binary_search_by(|m| m.as_str().cmp(user_id))
                .is_ok()
        })
    }

    fn display_name<'a>(&'a self, group: &'a GroupRef) -> &'a str {
        self.0
            .get(&group_key(group))
            .map_or(group.as_str(), |g| g.display_name.as_str())
    }
}
