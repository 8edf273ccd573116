//! `secure_score.<tenant>`: a tenant's Secure Score history as kept by tenantform (Microsoft
//! keeps about 90 days; this keeps every day read, `secure_score::History`). An observation,
//! not a managed object: no manifest declares it, no plan shows or deletes it; the commands
//! that read Secure Score add the days not stored yet.

use super::ResourceKind;

/// The kind's name, and the prefix of its address.
pub const SECURE_SCORE: &str = "secure_score";

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::MspTenant,
    id: super::KindId::SecureScoreHistory,
    name: SECURE_SCORE,
    order: 7,
    desired: |_| Vec::new(),
    former_names: super::no_former_names,
    tenant_of: super::tenant_of_key,
    after_tenant_rename: super::rename_whole_key,
    rename_tenant_reference: super::no_tenant_reference,
    update_warnings: super::no_warnings,
    depends_on: super::no_dependency,
    new_ids: super::no_ids,
    live: None,
    synced: None,
};
