//! Every tenant in the plan's scope ends in exactly one outcome (changes, nothing to do,
//! failed): computed here from the actions and the tenants that could not be read.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Action, PlanInput, TenantNotRead};
use crate::outcome::{Cause, Outcome, TenantOutcome};

/// Every tenant in scope, with how it stands.
pub(super) fn tenant_outcomes(
    input: &PlanInput,
    actions: &[Action],
    not_read: &BTreeMap<String, TenantNotRead>,
) -> Vec<TenantOutcome> {
    let in_scope = |tenant: &str| input.options.in_scope(tenant);
    let mut names: BTreeSet<&str> = input
        .desired
        .tenants
        .keys()
        .map(String::as_str)
        .filter(|t| in_scope(t))
        .collect();
    names.extend(
        actions
            .iter()
            .map(|a| a.tenant.as_str())
            .filter(|t| !t.is_empty()),
    );
    names.extend(not_read.keys().map(String::as_str));
    let changing: BTreeSet<&str> = actions
        .iter()
        .filter(|a| a.is_change())
        .map(|a| a.tenant.as_str())
        .collect();
    names
        .into_iter()
        .map(|name| {
            let desired = input.desired.tenants.get(name);
            let stored = input.state.objects.get(&format!("tenant.{name}"));
            let stored_attr = |k: &str| {
                stored
                    .and_then(|o| o.attributes.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let outcome = match not_read.get(name) {
                Some(n) if !input.options.offline || n.failure.cause != Cause::NotRead => {
                    Outcome::Failed(n.failure.clone())
                }
                _ if changing.contains(name) => Outcome::Changes,
                _ => Outcome::NothingToDo,
            };
            TenantOutcome {
                tenant: name.to_string(),
                display_name: desired
                    .map(|t| t.display_name.clone())
                    .or_else(|| stored_attr("displayName")),
                microsoft_tenant_id: desired
                    .and_then(|t| t.microsoft_tenant_id.clone())
                    .or_else(|| stored_attr("microsoftTenantId")),
                outcome,
            }
        })
        .collect()
}
