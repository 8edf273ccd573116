//! Plan-wide hints about likely mistakes (a rename written as delete + create).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Action, Op};

/// What the hints need of a tenant record the plan creates: gathered group by group, since
/// the record it may replace can be deleted in any group.
pub(super) struct CreatedTenant {
    pub address: String,
    pub microsoft_tenant_id: Option<Value>,
    /// Organizations planned under it.
    pub organizations: Vec<String>,
}

/// Plan-wide hints: a likely rename planned as delete + create.
pub(super) fn hints(created: &[CreatedTenant], deletes: &[Action]) -> Vec<String> {
    let mut hints = Vec::new();
    let deleted_tenants: BTreeMap<&str, &Action> = deletes
        .iter()
        .filter(|a| a.op == Op::Delete && a.kind == "tenant")
        .map(|a| (a.address.as_str(), a))
        .collect();
    let before =
        |a: &&Action, attribute: &str| a.before.as_ref().and_then(|b| b.get(attribute)).cloned();
    for created in created {
        let new_name = created.address.trim_start_matches("tenant.");
        // Organizations now under the new tenant whose old implicit tenant is being deleted.
        let mut candidates: Vec<&str> = created
            .organizations
            .iter()
            .map(String::as_str)
            .filter(|org| {
                deleted_tenants
                    .get(format!("tenant.{org}").as_str())
                    .is_some_and(|a| before(a, "implicit") == Some(Value::Bool(true)))
            })
            .collect();
        for (old, action) in &deleted_tenants {
            if created.microsoft_tenant_id.is_some()
                && before(action, "microsoftTenantId") == created.microsoft_tenant_id
            {
                candidates.push(old.trim_start_matches("tenant."));
            }
        }
        candidates.sort();
        candidates.dedup();
        if let Some(first) = candidates.first() {
            hints.push(format!(
                "{} is created while tenant.{first} is deleted; if it is the same customer, add `formerNames: [{first}]` to Tenant `{new_name}` to keep the existing tenant record (an update instead of delete + create)",
                created.address
            ));
        }
    }
    hints
}
