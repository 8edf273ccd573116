//! Every tenant in the plan's scope ends in exactly one outcome (changes, nothing to do,
//! failed): computed here from the actions and the tenants that could not be read.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::live::NotRead;
use super::{Action, PlanInput, TenantNotRead};
use crate::live::LiveTenant;
use crate::outcome::{Cause, Failure, Outcome, TenantOutcome};

/// Every tenant in scope, with how it stands.
pub(super) fn tenant_outcomes(
    input: &PlanInput,
    actions: &[Action],
    not_read: &NotRead,
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
    // Per tenant: what was not read (the whole tenant first, then sources by name).
    let mut unread: BTreeMap<&str, Vec<&TenantNotRead>> = BTreeMap::new();
    for ((tenant, _), n) in not_read {
        unread.entry(tenant.as_str()).or_default().push(n);
    }
    names.extend(unread.keys().copied());
    // A tenant whose archives the mass-removal guard held back is not as declared: it fails
    // (with the guard's numbers) until someone looks.
    let held_back: BTreeMap<&str, &str> = actions
        .iter()
        .filter(|a| a.op == super::Op::Archive)
        .filter_map(|a| Some((a.tenant.as_str(), a.blocked.as_deref()?)))
        .collect();
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
            let unread = unread.get(name).map_or(&[][..], Vec::as_slice);
            let outcome = match unread {
                [n, ..]
                    if n.failure.source.is_some()
                        || !input.options.offline
                        || n.failure.cause != Cause::NotRead =>
                {
                    Outcome::Failed(Box::new(combined(unread)))
                }
                _ if held_back.contains_key(name) => Outcome::Failed(Box::new(Failure::new(
                    Cause::MassRemoval,
                    held_back[name].to_string(),
                ))),
                _ if changing.contains(name) => Outcome::Changes,
                _ => Outcome::NothingToDo,
            };
            let sources = match input.live.and_then(|l| l.tenants.get(name)) {
                Some(LiveTenant::Read(dir)) => dir
                    .sources
                    .iter()
                    .map(|(name, status)| (name.clone(), status.clone()))
                    .collect(),
                _ => litemap::LiteMap::new(),
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
                sources,
            }
        })
        .collect()
}

/// A tenant's failure from what was not read: the whole tenant's, or its first failed
/// source's naming the others too.
fn combined(unread: &[&TenantNotRead]) -> Failure {
    let Some((first, rest)) = unread.split_first() else {
        return Failure::new(Cause::NotRead, "not read");
    };
    let mut failure = first.failure.clone();
    if first.failure.source.is_some() && !rest.is_empty() {
        let others: Vec<String> = rest.iter().map(|n| n.failure.describe()).collect();
        failure.message = format!("{}; also {}", failure.message, others.join("; "));
    }
    failure
}
