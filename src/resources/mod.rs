//! The kinds of object tenantform manages, one module each, registered in [`KINDS`].
//!
//! A kind says how to derive its desired objects from the model, what its address is, which
//! tenant an object belongs to, and how a tenant rename moves it. Plan, apply and the `state`
//! commands work on any kind through this table; adding a kind is adding a module and a line.

pub mod contact;
pub mod directory_role;
pub mod gdap_relationship;
pub mod guest;
pub mod msp_role;
pub mod organization;
pub mod tenant;
pub mod user_sync;

use crate::model::DesiredModel;
use crate::state::{Attributes, StateObject};

/// One object the manifests ask for.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub address: String,
    pub kind: &'static str,
    /// The tenant it belongs to (for grouping plans per customer).
    pub tenant: String,
    pub attributes: Attributes,
}

/// A current stable name and the names the same object had before.
pub type FormerNames = (String, Vec<String>);

/// Every kind, as a closed set: layers that must treat each kind (the Entra executor, reads,
/// export) match on it exhaustively, so a new kind is a compile error until each decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KindId {
    Tenant,
    Organization,
    Guest,
    DirectoryRole,
    MspRole,
    Contact,
    UserSync,
    GdapRelationship,
}

/// Where a kind's objects live, which decides how apply orders them and which state partition
/// holds them: fleet records are in the catalog, the others in the partition of the tenant
/// `tenant_of` names (see `state::partition_of`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindScope {
    /// MSP-side records that tie the fleet together (tenant records, organizations): applied
    /// first, deleted last, in order.
    Fleet,
    /// MSP-side, belonging to one customer tenant (MSP roles).
    MspTenant,
    /// In the customer's Entra tenant (guests, directory roles): planned from live reads.
    CustomerTenant,
}

pub struct ResourceKind {
    pub id: KindId,
    pub scope: KindScope,
    /// Address prefix and `kind` in state, e.g. `tenant`.
    pub name: &'static str,
    /// Apply order: lower first for creates and updates, reversed for deletes.
    pub order: u8,
    pub desired: fn(&DesiredModel) -> Vec<DesiredObject>,
    /// (current name, former names) for kinds that can be renamed in manifests.
    pub former_names: fn(&DesiredModel) -> Vec<FormerNames>,
    /// The tenant a stored object belongs to.
    pub tenant_of: fn(address: &str, object: &StateObject) -> String,
    /// The address a stored object moves to when tenant `from` becomes `to` (if it moves).
    pub after_tenant_rename: fn(address: &str, from: &str, to: &str) -> Option<String>,
    /// Rewrites references to tenant `from` inside a stored object (for `state mv`).
    pub rename_tenant_reference: fn(object: &mut StateObject, from: &str, to: &str),
    /// Loud notes about an update (e.g. remapping a tenant to another Microsoft tenant).
    pub update_warnings: fn(address: &str, before: &Attributes, after: &Attributes) -> Vec<String>,
    /// The address of the object this one cannot exist without (e.g. a role's guest), from
    /// its desired attributes and tenant: the plan blocks it while that one is blocked, being
    /// removed, or neither planned nor recorded.
    pub depends_on: fn(attributes: &Attributes, tenant: &str) -> Option<String>,
    /// Outside-world ids to record for a new object.
    pub new_ids: fn() -> crate::state::Ids,
    /// For kinds that live in Entra: how to find their live object. Planned only when Entra
    /// was read; otherwise listed as not read.
    pub live: Option<LiveRules>,
    /// For MSP-side kinds derived from live data by declared rules (contacts): planned by
    /// their own step (`plan::contacts`), only where their sources were read.
    pub synced: Option<SyncedRules>,
}

/// What a kind synced from Entra reads.
pub struct SyncedRules {
    /// The live sources it is derived from: when one could not be read in a tenant, the kind
    /// is not planned there (nothing is archived for a read that failed) and the tenant fails.
    pub sources: &'static [&'static str],
    /// The tenants that sync it.
    pub tenants: fn(&DesiredModel) -> std::collections::BTreeSet<String>,
}

impl ResourceKind {
    /// The live sources planning this kind needs (none for kinds kept only in state).
    pub fn sources(&self) -> &'static [&'static str] {
        match (&self.live, &self.synced) {
            (Some(live), _) => live.sources,
            (None, Some(synced)) => synced.sources,
            (None, None) => &[],
        }
    }
}

/// A live object found for a desired or stored one.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveObject {
    pub ids: crate::state::Ids,
    /// The live values of the compared attributes.
    pub attributes: Attributes,
    /// Shown beside the object (e.g. "PendingAcceptance since ...").
    pub note: Option<String>,
    /// An invitation not yet redeemed (guests only): `--resend-invitations` applies to it.
    pub pending_invitation: bool,
}

pub struct LiveRules {
    /// Finds the live object for `attributes` (desired, or stored when no longer desired).
    pub find: fn(
        dir: &crate::live::LiveDirectory,
        attributes: &Attributes,
        stored: Option<&StateObject>,
    ) -> Option<LiveObject>,
    /// Attributes compared with Entra (others are identity or only used on create).
    pub compared: &'static [&'static str],
    /// The tenants that have desired objects of this kind (cheaper than building them).
    pub tenants: fn(&DesiredModel) -> std::collections::BTreeSet<String>,
    /// The live sources `find` reads (`live::source`): when one of them could not be read in
    /// a tenant, this kind is not planned there (and the tenant fails); the others are.
    pub sources: &'static [&'static str],
}

pub const KINDS: &[ResourceKind] = &[
    tenant::KIND,
    organization::KIND,
    guest::KIND,
    directory_role::KIND,
    msp_role::KIND,
    contact::KIND,
    user_sync::KIND,
    gdap_relationship::KIND,
];

pub fn kind(name: &str) -> Option<&'static ResourceKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// `kind.key`, the address objects have in plans and state.
pub fn address(kind: &str, key: &str) -> String {
    format!("{kind}.{key}")
}

/// Splits `kind.key` (keys may contain dots; kinds do not).
pub fn split_address(address: &str) -> Option<(&str, &str)> {
    address
        .split_once('.')
        .filter(|(k, key)| !k.is_empty() && !key.is_empty())
}

fn no_former_names(_: &DesiredModel) -> Vec<FormerNames> {
    Vec::new()
}

fn no_warnings(_: &str, _: &Attributes, _: &Attributes) -> Vec<String> {
    Vec::new()
}

fn no_dependency(_: &Attributes, _: &str) -> Option<String> {
    None
}

/// For kinds granted to a principal: a `guest:<name>` principal is the guest of that name in
/// the same tenant.
fn principal_guest(attributes: &Attributes, tenant: &str) -> Option<String> {
    let name = attr_str(attributes, "principal").strip_prefix("guest:")?;
    Some(address("guest", &format!("{tenant}.{name}")))
}

fn no_ids() -> crate::state::Ids {
    crate::state::Ids::new()
}

fn unmoved(_: &str, _: &str, _: &str) -> Option<String> {
    None
}

fn no_tenant_reference(_: &mut StateObject, _: &str, _: &str) {}

/// The tenant of kinds addressed `<kind>.<tenant>`.
fn tenant_of_key(address: &str, _: &StateObject) -> String {
    split_address(address).map_or_else(String::new, |(_, key)| key.to_string())
}

/// For kinds addressed `<kind>.<tenant>`: the address once tenant `from` is `to`.
fn rename_whole_key(address: &str, from: &str, to: &str) -> Option<String> {
    let (kind, key) = split_address(address)?;
    (key == from).then(|| format!("{kind}.{to}"))
}

/// The tenant of kinds whose `tenant` attribute names it.
fn tenant_attribute(_: &str, object: &StateObject) -> String {
    attr_str(&object.attributes, "tenant").to_string()
}

/// For kinds addressed `<kind>.<tenant>.<rest>`: the address once tenant `from` is `to`.
fn rename_tenant_segment(address: &str, from: &str, to: &str) -> Option<String> {
    let (kind, key) = split_address(address)?;
    let rest = key.strip_prefix(from)?.strip_prefix('.')?;
    Some(format!("{kind}.{to}.{rest}"))
}

/// For kinds whose `tenant` attribute names the tenant they belong to.
fn rename_tenant_attribute(object: &mut StateObject, from: &str, to: &str) {
    if attr_str(&object.attributes, "tenant") == from {
        object
            .attributes
            .insert("tenant".into(), serde_json::Value::String(to.into()));
    }
}

/// A fresh MSP-side record id (the id the MSP tool would give the record).
fn record_id() -> crate::state::Ids {
    [("record".to_string(), uuid::Uuid::new_v4().to_string())]
        .into_iter()
        .collect()
}

/// A string attribute of a stored object ("" when absent).
pub fn attr_str<'a>(attributes: &'a Attributes, name: &str) -> &'a str {
    attributes.get(name).and_then(|v| v.as_str()).unwrap_or("")
}
