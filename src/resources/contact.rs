//! `contact.<tenant>.<user object id>`: an end user of a customer, synced from its Entra users
//! by the tenant's `EndUserSync` rules and kept in state (MSP-side). Planned by
//! `plan::contacts` from the users read, never from the manifests alone; archived (kept)
//! rather than deleted when its user leaves.

use std::collections::BTreeSet;

use super::{ResourceKind, SyncedRules};
use crate::model::DesiredModel;

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::MspTenant,
    id: super::KindId::Contact,
    name: crate::plan::contacts::CONTACT,
    order: 5,
    desired: |_| Vec::new(),
    former_names: super::no_former_names,
    tenant_of: super::tenant_attribute,
    after_tenant_rename: super::rename_tenant_segment,
    rename_tenant_reference: super::rename_tenant_attribute,
    update_warnings: super::no_warnings,
    depends_on: super::no_dependency,
    new_ids: super::record_id,
    live: None,
    synced: Some(SyncedRules {
        sources: &[crate::live::source::USERS],
        tenants: synced_tenants,
    }),
};

/// The tenants whose end users are synced.
pub fn synced_tenants(model: &DesiredModel) -> BTreeSet<String> {
    model.end_user_syncs.keys().cloned().collect()
}
