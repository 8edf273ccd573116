//! `msp_role.<tenant>.<principal>.<role>`: an MSP-side permission (e.g. TenantAdmin: who may
//! switch into which customer), kept in state.
//!
//! The address is derived from what it grants, not from the RoleAssignment document, so
//! renaming or splitting documents changes nothing; two documents granting the same role to
//! the same person in the same tenant make one object.

use std::collections::BTreeMap;

use serde_json::json;

use super::{DesiredObject, ResourceKind, address};
use crate::model::{DesiredModel, Principal};
use crate::state::Attributes;

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::MspTenant,
    id: super::KindId::MspRole,
    name: "msp_role",
    order: 4,
    desired,
    former_names: super::no_former_names,
    tenant_of: super::tenant_attribute,
    after_tenant_rename: super::rename_tenant_segment,
    rename_tenant_reference: super::rename_tenant_attribute,
    update_warnings: super::no_warnings,
    depends_on: super::principal_guest,
    new_ids: super::no_ids,
    live: None,
    synced: None,
};

/// The address segment naming a principal: a guest's stable name, or `user-<id>`/`group-<id>`.
pub fn principal_key(principal: &Principal) -> String {
    match principal {
        Principal::Guest(name) => name.clone(),
        Principal::UserId(id) => format!("user-{id}"),
        Principal::GroupId(id) => format!("group-{id}"),
    }
}

fn principal_ref(principal: &Principal) -> String {
    match principal {
        Principal::Guest(name) => format!("guest:{name}"),
        Principal::UserId(id) => format!("user:{id}"),
        Principal::GroupId(id) => format!("group:{id}"),
    }
}

fn desired(model: &DesiredModel) -> Vec<DesiredObject> {
    let mut objects: BTreeMap<String, DesiredObject> = BTreeMap::new();
    for ra in model.role_assignments.values() {
        let email = match &ra.principal {
            Principal::Guest(name) => model.guests.get(name).map(|g| g.email.clone()),
            _ => None,
        };
        for tenant in &ra.tenants {
            for role in &ra.msp_roles {
                let key = format!(
                    "{tenant}.{}.{}",
                    principal_key(&ra.principal),
                    role.as_str()
                );
                let mut attributes = [
                    ("tenant".into(), json!(tenant)),
                    ("principal".into(), json!(principal_ref(&ra.principal))),
                    ("role".into(), json!(role.as_str())),
                ]
                .into_iter()
                .collect::<Attributes>();
                if let Some(email) = &email {
                    attributes.insert("principalEmail".into(), json!(email));
                }
                let address = address("msp_role", &key);
                objects.insert(
                    address.clone(),
                    DesiredObject {
                        address,
                        kind: "msp_role",
                        tenant: tenant.clone(),
                        attributes,
                    },
                );
            }
        }
    }
    objects.into_values().collect()
}
