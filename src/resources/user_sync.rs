//! `user_sync.<tenant>`: where a tenant's end-user sync stands (the delta link and the named
//! groups' members at the last applied read: `end_users::SyncPosition`). Bookkeeping, not a
//! managed object: no plan shows it; apply records it once the tenant's contacts are applied.

use super::ResourceKind;

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::MspTenant,
    id: super::KindId::UserSync,
    name: crate::plan::contacts::USER_SYNC,
    order: 6,
    desired: |_| Vec::new(),
    former_names: super::no_former_names,
    tenant_of: super::tenant_of_key,
    after_tenant_rename: super::rename_whole_key,
    rename_tenant_reference: super::no_tenant_reference,
    update_warnings: super::no_warnings,
    depends_on: super::no_dependency,
    new_ids: super::no_ids,
    live: None,
    // Not a synced kind itself: the contacts' step reads and records it.
    synced: None,
};
