//! Plan-wide hints about likely mistakes (a rename written as delete + create).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Action, Op};
use crate::state::State;

/// Plan-wide hints: a likely rename planned as delete + create.
pub(super) fn hints(actions: &[Action], state: &State) -> Vec<String> {
    let mut hints = Vec::new();
    let deleted_tenants: BTreeMap<&str, &Action> = actions
        .iter()
        .filter(|a| a.op == Op::Delete && a.kind == "tenant")
        .map(|a| (a.address.as_str(), a))
        .collect();
    for created in actions
        .iter()
        .filter(|a| a.op == Op::Create && a.kind == "tenant")
    {
        let new_name = created.address.trim_start_matches("tenant.");
        let new_id = created
            .after
            .as_ref()
            .and_then(|a| a.get("microsoftTenantId"))
            .filter(|v| !v.is_null());
        // Organizations now under the new tenant whose old implicit tenant is being deleted.
        let mut candidates: Vec<&str> = actions
            .iter()
            .filter(|a| a.kind == "organization" && a.tenant == new_name)
            .filter_map(|a| a.address.strip_prefix("organization."))
            .filter(|org| {
                let old = format!("tenant.{org}");
                deleted_tenants.contains_key(old.as_str())
                    && state
                        .objects
                        .get(&old)
                        .and_then(|o| o.attributes.get("implicit"))
                        == Some(&Value::Bool(true))
            })
            .collect();
        for (old, action) in &deleted_tenants {
            if new_id.is_some()
                && action
                    .before
                    .as_ref()
                    .and_then(|b| b.get("microsoftTenantId"))
                    == new_id
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
