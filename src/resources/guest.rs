//! `guest.<tenant>.<guest>`: an MSP engineer invited as a B2B guest into a customer tenant.
//!
//! Found in Entra by email (mail, then otherMails). Only guests tenantform invited or adopted
//! (recorded in state) are ever changed or removed.

use serde_json::json;

use super::{DesiredObject, LiveObject, LiveRules, ResourceKind, address, attr_str};
use crate::live::{LiveDirectory, source};
use crate::model::DesiredModel;
use crate::state::{Attributes, StateObject};

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::CustomerTenant,
    id: super::KindId::Guest,
    name: "guest",
    order: 2,
    desired,
    former_names: super::no_former_names,
    tenant_of: super::tenant_attribute,
    after_tenant_rename: super::rename_tenant_segment,
    rename_tenant_reference: super::rename_tenant_attribute,
    update_warnings: super::no_warnings,
    depends_on: super::no_dependency,
    new_ids: super::no_ids,
    live: Some(LiveRules {
        find,
        compared: &["displayName"],
        tenants,
        sources: &[source::GUESTS],
    }),
    synced: None,
};

fn desired(model: &DesiredModel) -> Vec<DesiredObject> {
    let mut out = Vec::new();
    for guest in model.guests.values() {
        for tenant in &guest.tenants {
            let inv = &guest.invitation;
            out.push(DesiredObject {
                address: address("guest", &format!("{tenant}.{}", guest.name)),
                kind: "guest",
                tenant: tenant.clone(),
                attributes: [
                    ("tenant".to_string(), json!(tenant)),
                    ("email".to_string(), json!(guest.email)),
                    ("displayName".to_string(), json!(guest.display_name)),
                    ("sendInvitationEmail".to_string(), json!(inv.send_email)),
                    ("redirectUrl".to_string(), json!(inv.redirect_url)),
                    ("invitationMessage".to_string(), json!(inv.message)),
                    ("messageLanguage".to_string(), json!(inv.message_language)),
                ]
                .into_iter()
                .collect::<Attributes>(),
            });
        }
    }
    out
}

fn tenants(model: &DesiredModel) -> std::collections::BTreeSet<String> {
    model
        .guests
        .values()
        .flat_map(|g| g.tenants.iter().cloned())
        .collect()
}

fn find(
    dir: &LiveDirectory,
    attributes: &Attributes,
    stored: Option<&StateObject>,
) -> Option<LiveObject> {
    let by_id = stored
        .and_then(|s| s.ids.get("objectId"))
        .and_then(|id| dir.guest_by_id(id));
    let guest = by_id.or_else(|| dir.guest_by_email(attr_str(attributes, "email")))?;
    Some(LiveObject {
        ids: [("objectId".to_string(), guest.id.clone())]
            .into_iter()
            .collect(),
        attributes: [("displayName".to_string(), json!(guest.display_name))]
            .into_iter()
            .collect(),
        note: guest.acceptance(),
        pending_invitation: guest.external_user_state.as_deref() == Some("PendingAcceptance"),
    })
}
