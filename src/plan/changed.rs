//! `--changed-since`: which tenants' desired objects differ between two desired models.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::DesiredModel;
use crate::resources::KINDS;
use crate::state::Attributes;

/// Tenants whose desired objects differ between two models, of any kind and in any
/// attribute, including tenants present in only one. Exact by construction: a label change
/// that moves a tenant in or out of a selector changes that tenant's guests, so it counts.
pub fn changed_tenants(base: &DesiredModel, head: &DesiredModel) -> BTreeSet<String> {
    fn by_tenant(model: &DesiredModel) -> BTreeMap<String, BTreeMap<String, Attributes>> {
        let mut out: BTreeMap<String, BTreeMap<String, Attributes>> = BTreeMap::new();
        for k in KINDS {
            for d in (k.desired)(model) {
                out.entry(d.tenant)
                    .or_default()
                    .insert(d.address, d.attributes);
            }
        }
        for name in model.tenants.keys() {
            out.entry(name.clone()).or_default();
        }
        out
    }
    let (before, after) = (by_tenant(base), by_tenant(head));
    before
        .keys()
        .chain(after.keys())
        .filter(|t| before.get(*t) != after.get(*t))
        .cloned()
        .collect()
}
