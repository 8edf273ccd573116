//! Attribute-level differences between two attribute maps, and the dependency order of
//! actions (creates by kind order, deletes in reverse).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Action, AttributeChange, Op};
use crate::resources::kind;
use crate::state::Attributes;

/// Fleet records first, then tenant by tenant (by name); within each, creates, updates and
/// no-ops in dependency order, then deletes in reverse. A plan computed tenant by tenant is in
/// this order too.
pub(super) fn order(actions: &mut [Action]) {
    let rank = |a: &Action| kind(&a.kind).map_or(u8::MAX, |k| k.order);
    // The catalog's records (and objects of unknown kinds) sort before any tenant's objects.
    fn tenant_key(a: &Action) -> Option<&str> {
        kind(&a.kind)
            .filter(|k| k.scope != crate::resources::KindScope::Fleet)
            .map(|_| a.tenant.as_str())
    }
    actions.sort_by(|a, b| {
        let (a_del, b_del) = (a.op == Op::Delete, b.op == Op::Delete);
        tenant_key(a)
            .cmp(&tenant_key(b))
            .then_with(|| a_del.cmp(&b_del))
            .then_with(|| {
                if a_del {
                    rank(b)
                        .cmp(&rank(a))
                        .then_with(|| a.address.cmp(&b.address))
                } else {
                    rank(a)
                        .cmp(&rank(b))
                        .then_with(|| a.address.cmp(&b.address))
                }
            })
    });
}

/// Attribute differences, one level deep for nested objects (`labels.tier`).
pub fn diff(before: &Attributes, after: &Attributes) -> Vec<AttributeChange> {
    if before.is_empty() {
        // A create (every contact of a first sync): each attribute set, in key order.
        return after
            .iter()
            .filter(|(_, v)| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()))
            .map(|(key, v)| AttributeChange {
                path: key.clone(),
                before: None,
                after: Some(v.clone()),
            })
            .collect();
    }
    let mut changes = Vec::new();
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let (b, a) = (
            before.get(key).filter(|v| !v.is_null()),
            after.get(key).filter(|v| !v.is_null()),
        );
        match (b, a) {
            (Some(Value::Object(bm)), Some(Value::Object(am))) => {
                let sub: BTreeSet<&String> = bm.keys().chain(am.keys()).collect();
                for s in sub {
                    if bm.get(s) != am.get(s) {
                        changes.push(AttributeChange {
                            path: format!("{key}.{s}"),
                            before: bm.get(s).cloned(),
                            after: am.get(s).cloned(),
                        });
                    }
                }
            }
            (Some(Value::Object(m)), None) | (None, Some(Value::Object(m))) if m.is_empty() => {}
            (b, a) if b != a => changes.push(AttributeChange {
                path: key.clone(),
                before: b.cloned(),
                after: a.cloned(),
            }),
            _ => {}
        }
    }
    changes
}
