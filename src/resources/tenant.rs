//! `tenant.<name>`: the MSP-side tenant record and its mapping to a Microsoft tenant.

use serde_json::{Value, json};

use super::{DesiredObject, ResourceKind, address};
use crate::model::DesiredModel;
use crate::state::{Attributes, StateObject};

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::Fleet,
    id: super::KindId::Tenant,
    name: "tenant",
    order: 0,
    desired,
    former_names,
    tenant_of,
    after_tenant_rename,
    rename_tenant_reference: super::no_tenant_reference,
    update_warnings,
    depends_on: super::no_dependency,
    new_ids: super::record_id,
    live: None,
    synced: None,
};

fn desired(model: &DesiredModel) -> Vec<DesiredObject> {
    model
        .tenants
        .values()
        .map(|t| DesiredObject {
            address: address("tenant", &t.name),
            kind: "tenant",
            tenant: t.name.clone(),
            attributes: [
                ("displayName".into(), json!(t.display_name)),
                ("microsoftTenantId".into(), json!(t.microsoft_tenant_id)),
                (
                    "labels".into(),
                    serde_json::Value::Object(
                        t.labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), json!(&**v)))
                            .collect(),
                    ),
                ),
                ("implicit".into(), json!(t.implicit)),
            ]
            .into_iter()
            .collect::<Attributes>(),
        })
        .collect()
}

fn former_names(model: &DesiredModel) -> Vec<super::FormerNames> {
    model
        .tenants
        .values()
        .filter(|t| !t.former_names.is_empty())
        .map(|t| (t.name.clone(), t.former_names.clone()))
        .collect()
}

fn tenant_of(address: &str, _: &StateObject) -> String {
    address
        .strip_prefix("tenant.")
        .unwrap_or(address)
        .to_string()
}

fn after_tenant_rename(address: &str, from: &str, to: &str) -> Option<String> {
    (address.strip_prefix("tenant.") == Some(from)).then(|| super::address("tenant", to))
}

fn update_warnings(address: &str, before: &Attributes, after: &Attributes) -> Vec<String> {
    match (
        before.get("microsoftTenantId"),
        after.get("microsoftTenantId"),
    ) {
        (Some(Value::String(old)), new) if new != before.get("microsoftTenantId") => {
            let new = new.and_then(Value::as_str).unwrap_or("nothing");
            vec![format!(
                "{address} is remapped from Microsoft tenant {old} to {new}: guests and roles tenantform created in {old} are no longer managed through this tenant; check this is the same customer"
            )]
        }
        _ => Vec::new(),
    }
}
