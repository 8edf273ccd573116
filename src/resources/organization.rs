//! `organization.<name>`: a billing organization and the tenant it is parented under.

use serde_json::json;

use super::{DesiredObject, ResourceKind, address};
use crate::model::DesiredModel;
use crate::state::Attributes;

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::Fleet,
    id: super::KindId::Organization,
    name: "organization",
    order: 1,
    desired,
    former_names,
    tenant_of: super::tenant_attribute,
    after_tenant_rename: super::unmoved,
    rename_tenant_reference: super::rename_tenant_attribute,
    update_warnings: super::no_warnings,
    depends_on: super::no_dependency,
    new_ids: super::record_id,
    live: None,
    synced: None,
};

fn desired(model: &DesiredModel) -> Vec<DesiredObject> {
    model
        .organizations
        .values()
        .map(|o| DesiredObject {
            address: address("organization", &o.name),
            kind: "organization",
            tenant: o.tenant.clone(),
            attributes: [
                ("displayName".into(), json!(o.display_name)),
                ("tenant".into(), json!(o.tenant)),
            ]
            .into_iter()
            .collect::<Attributes>(),
        })
        .collect()
}

fn former_names(model: &DesiredModel) -> Vec<super::FormerNames> {
    model
        .organizations
        .values()
        .filter(|o| !o.former_names.is_empty())
        .map(|o| (o.name.clone(), o.former_names.clone()))
        .collect()
}
