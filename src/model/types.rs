//! The desired model's types: tenants, organizations, guests, role assignments and drift
//! exceptions as plain data, keyed by stable name (what the planner and resources read).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::MspRole;

/// Where a guest lands after redeeming an invitation when the manifest does not say.
pub const DEFAULT_REDIRECT_URL: &str = "https://myapps.microsoft.com";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DesiredModel {
    pub tenants: BTreeMap<String, Tenant>,
    pub organizations: BTreeMap<String, Organization>,
    pub guests: BTreeMap<String, Guest>,
    pub role_assignments: BTreeMap<String, RoleAssignment>,
    /// Accepted deviations (they change no plan; drift reports list them apart).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub drift_exceptions: BTreeMap<String, DriftException>,
    /// Each tenant's end-user sync, by tenant (one at most).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub end_user_syncs: BTreeMap<String, crate::end_users::TenantSync>,
    /// Each tenant's policy (`TenantPolicy`), by tenant (one at most): what `drift` checks
    /// live. It changes no plan.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tenant_policies: BTreeMap<String, crate::policy::TenantPolicy>,
    /// Each customer tenant's GDAP relationships (`GdapRelationship`), by tenant, in document
    /// order.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gdap_relationships: BTreeMap<String, Vec<crate::gdap::DesiredRelationship>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftException {
    pub name: String,
    pub tenant: String,
    /// An address, or a prefix ending in `*`.
    pub address: String,
    pub reason: String,
    /// Last day it applies (YYYY-MM-DD).
    pub expires: String,
}

impl DriftException {
    pub fn matches(&self, tenant: &str, address: &str) -> bool {
        tenant == self.tenant
            && match self.address.strip_suffix('*') {
                Some(prefix) => address.starts_with(prefix),
                None => address == self.address,
            }
    }

    /// Still in force on `today` (YYYY-MM-DD compare as dates).
    pub fn active_on(&self, today: &str) -> bool {
        self.expires.as_str() >= today
    }
}

/// A tenant's labels, by key: a sorted vector, not a B-tree (a run keeps every tenant, and a
/// B-tree node of labels is about 0.5 KB), of texts shared between tenants.
pub type Labels = litemap::LiteMap<LabelText, LabelText>;

/// A label's key or value: the loader keeps each distinct text once (a fleet's labels are a
/// few words repeated on thousands of tenants).
pub type LabelText = std::sync::Arc<str>;

/// Labels as a JSON object, empty ones too (`LiteMap` writes an empty map as an array).
pub fn labels_as_object<S: serde::Serializer>(labels: &Labels, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(labels.iter().map(|(k, v)| (&**k, &**v)))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub name: String,
    pub display_name: String,
    pub microsoft_tenant_id: Option<String>,
    #[serde(serialize_with = "labels_as_object")]
    pub labels: Labels,
    /// Created for an Organization without `tenant:` (1:1), not written as a Tenant document.
    pub implicit: bool,
    /// Earlier stable names: a plan moves a stored tenant of such a name to this one.
    pub former_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub name: String,
    pub display_name: String,
    pub tenant: String,
    /// Earlier stable names: a plan moves a stored organization of such a name to this one.
    pub former_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guest {
    pub name: String,
    /// As written; compare with [`Guest::email_key`].
    pub email: String,
    pub display_name: String,
    pub tenants: TenantSet,
    pub invitation: Invitation,
}

impl Guest {
    /// Email addresses compare case-insensitively in Entra.
    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub send_email: bool,
    pub redirect_url: String,
    pub message: Option<String>,
    pub message_language: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Principal {
    /// A GuestUser by its stable name.
    Guest(String),
    UserId(String),
    GroupId(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRole {
    /// Lowercase role template id (the same in every tenant).
    pub template_id: String,
    /// The built-in display name, or `None` for a role given by an id not in the built-in table.
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub name: String,
    pub principal: Principal,
    pub directory_roles: Vec<DirectoryRole>,
    pub scope: String,
    pub tenants: TenantSet,
    pub msp_roles: BTreeSet<MspRole>,
}

/// The tenants a guest or role assignment targets: a sorted, deduplicated list. Most target
/// one tenant, and a B-tree set spends a ~280-byte node on each: at 10,000 tenants x 20 guests
/// x 2 roles that was about 100 MB of a plan's model. Serializes as the set did (a sorted
/// array), so manifests digests do not change.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantSet(Vec<String>);

impl TenantSet {
    pub fn contains(&self, tenant: &str) -> bool {
        self.0.binary_search_by(|t| t.as_str().cmp(tenant)).is_ok()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn retain(&mut self, keep: impl FnMut(&String) -> bool) {
        self.0.retain(keep);
    }

    /// Just `tenant`.
    pub fn one(tenant: &str) -> TenantSet {
        TenantSet(vec![tenant.to_string()])
    }
}

impl FromIterator<String> for TenantSet {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let mut tenants: Vec<String> = iter.into_iter().collect();
        tenants.sort_unstable();
        tenants.dedup();
        tenants.shrink_to_fit();
        TenantSet(tenants)
    }
}

impl<'a> IntoIterator for &'a TenantSet {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for TenantSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TenantSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<String>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels count in the manifests digest and show in plans as a JSON object, empty or not.
    #[test]
    fn labels_serialize_as_an_object_even_when_empty() {
        let mut tenant = Tenant {
            name: "t".into(),
            display_name: "T".into(),
            microsoft_tenant_id: None,
            labels: Labels::new(),
            implicit: false,
            former_names: Vec::new(),
        };
        let labels = |t: &Tenant| serde_json::to_value(t).unwrap()["labels"].clone();
        assert_eq!(labels(&tenant), serde_json::json!({}));
        tenant.labels.insert("tier".into(), "gold".into());
        tenant.labels.insert("region".into(), "eu".into());
        assert_eq!(
            serde_json::to_string(&serde_json::to_value(&tenant).unwrap()["labels"]).unwrap(),
            r#"{"region":"eu","tier":"gold"}"#
        );
    }
}
