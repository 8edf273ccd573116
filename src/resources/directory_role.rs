//! `directory_role.<tenant>.<principal>.<role template id>.<scope>`: an Entra directory role
//! assignment. It has no updatable fields: a different role or scope is another address.

use serde_json::json;

use super::msp_role::principal_key;
use super::{DesiredObject, LiveObject, LiveRules, ResourceKind, address, attr_str};
use crate::live::{LiveDirectory, source};
use crate::model::{DesiredModel, Principal};
use crate::state::{Attributes, StateObject};

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::CustomerTenant,
    id: super::KindId::DirectoryRole,
    name: "directory_role",
    order: 3,
    desired,
    former_names: super::no_former_names,
    tenant_of: super::tenant_attribute,
    after_tenant_rename: super::rename_tenant_segment,
    rename_tenant_reference: super::rename_tenant_attribute,
    update_warnings: super::no_warnings,
    depends_on: super::principal_guest,
    new_ids: super::no_ids,
    live: Some(LiveRules {
        find,
        compared: &[],
        tenants,
        // Assignments by id or by (principal, role, scope); a guest's object id by its email.
        sources: &[source::ROLE_ASSIGNMENTS, source::GUESTS],
    }),
    synced: None,
};

/// Address segment for a scope: `root` for `/`, `au-<id>` for an administrative unit.
pub fn scope_key(scope: &str) -> String {
    match scope.strip_prefix("/administrativeUnits/") {
        Some(id) => format!("au-{}", id.to_lowercase()),
        None => "root".to_string(),
    }
}

fn desired(model: &DesiredModel) -> Vec<DesiredObject> {
    let mut out = Vec::new();
    for ra in model.role_assignments.values() {
        for tenant in &ra.tenants {
            for role in &ra.directory_roles {
                let (principal, email) = match &ra.principal {
                    Principal::Guest(name) => (
                        format!("guest:{name}"),
                        model.guests.get(name).map(|g| g.email.clone()),
                    ),
                    Principal::UserId(id) => (format!("user:{id}"), None),
                    Principal::GroupId(id) => (format!("group:{id}"), None),
                };
                let key = format!(
                    "{tenant}.{}.{}.{}",
                    principal_key(&ra.principal),
                    role.template_id,
                    scope_key(&ra.scope)
                );
                let mut attributes: Attributes = [
                    ("tenant".to_string(), json!(tenant)),
                    ("principal".to_string(), json!(principal)),
                    ("roleDefinitionId".to_string(), json!(role.template_id)),
                    ("roleName".to_string(), json!(role.display_name)),
                    ("directoryScopeId".to_string(), json!(ra.scope)),
                ]
                .into_iter()
                .collect();
                if let Some(email) = email {
                    attributes.insert("principalEmail".into(), json!(email));
                }
                out.push(DesiredObject {
                    address: address("directory_role", &key),
                    kind: "directory_role",
                    tenant: tenant.clone(),
                    attributes,
                });
            }
        }
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    out.dedup_by(|a, b| a.address == b.address);
    out
}

fn tenants(model: &DesiredModel) -> std::collections::BTreeSet<String> {
    model
        .role_assignments
        .values()
        .filter(|ra| !ra.directory_roles.is_empty())
        .flat_map(|ra| ra.tenants.iter().cloned())
        .collect()
}

/// The object id of the assignment's principal in this tenant, if it can be known.
pub fn principal_object_id(dir: &LiveDirectory, attributes: &Attributes) -> Option<String> {
    let principal = attr_str(attributes, "principal");
    if let Some(id) = principal
        .strip_prefix("user:")
        .or_else(|| principal.strip_prefix("group:"))
    {
        return Some(id.to_lowercase());
    }
    let email = attributes.get("principalEmail")?.as_str()?;
    dir.guest_by_email(email).map(|g| g.id.to_lowercase())
}

fn find(
    dir: &LiveDirectory,
    attributes: &Attributes,
    stored: Option<&StateObject>,
) -> Option<LiveObject> {
    let by_id = stored
        .and_then(|s| s.ids.get("assignmentId"))
        .and_then(|id| dir.role_assignments.iter().find(|r| &r.id == id));
    let found = by_id.or_else(|| {
        let principal = principal_object_id(dir, attributes)?;
        let role = attr_str(attributes, "roleDefinitionId").to_lowercase();
        let scope = attr_str(attributes, "directoryScopeId");
        dir.role_assignments.iter().find(|r| {
            r.principal_id == principal
                && r.role_definition_id == role
                && r.directory_scope_id == scope
        })
    })?;
    Some(LiveObject {
        ids: [
            ("assignmentId".to_string(), found.id.clone()),
            ("principalId".to_string(), found.principal_id.clone()),
        ]
        .into_iter()
        .collect(),
        attributes: Attributes::new(),
        note: None,
        pending_invitation: false,
    })
}
