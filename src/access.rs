//! Who may switch into which customer: MSP roles as recorded in state.

use serde::Serialize;

use crate::resources::attr_str;
use crate::state::State;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub tenant: String,
    pub tenant_display_name: String,
    pub microsoft_tenant_id: Option<String>,
    /// `guest:<name>`, `user:<id>` or `group:<id>`.
    pub principal: String,
    pub principal_email: Option<String>,
    pub role: String,
}

/// Every MSP role grant in state, sorted by tenant, principal and role.
pub fn grants(state: &State) -> Vec<Grant> {
    let mut grants: Vec<Grant> = state
        .objects_of_kind("msp_role")
        .map(|(_, role)| {
            let tenant = attr_str(&role.attributes, "tenant").to_string();
            let tenant_object = state.objects.get(&format!("tenant.{tenant}"));
            Grant {
                tenant_display_name: tenant_object
                    .map(|t| attr_str(&t.attributes, "displayName").to_string())
                    .unwrap_or_default(),
                microsoft_tenant_id: tenant_object
                    .and_then(|t| t.attributes.get("microsoftTenantId"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                tenant,
                principal: attr_str(&role.attributes, "principal").to_string(),
                principal_email: role
                    .attributes
                    .get("principalEmail")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                role: attr_str(&role.attributes, "role").to_string(),
            }
        })
        .collect();
    grants.sort();
    grants
}

/// The tenants a person (by email, any case) can switch into.
pub fn for_user(state: &State, email: &str) -> Vec<Grant> {
    let email = email.to_lowercase();
    grants(state)
        .into_iter()
        .filter(|g| {
            g.principal_email
                .as_deref()
                .is_some_and(|e| e.to_lowercase() == email)
        })
        .collect()
}

/// Who can switch into a tenant (by its stable name).
pub fn for_tenant(state: &State, tenant: &str) -> Vec<Grant> {
    grants(state)
        .into_iter()
        .filter(|g| g.tenant == tenant)
        .collect()
}
