//! `--changed-since`: which tenants' desired objects differ between two desired fleets.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{DesiredFleet, DesiredModel};
use crate::resources::{KINDS, KindScope};
use crate::state::Attributes;

type ByAddress = BTreeMap<String, Attributes>;

/// Tenants whose desired objects differ between two fleets, of any kind and in any
/// attribute, including tenants present in only one. Exact by construction: a label change
/// that moves a tenant in or out of a selector changes that tenant's guests, so it counts.
/// Compared tenant by tenant, so only two tenants' objects are held at a time.
pub fn changed_tenants(
    base: &DesiredFleet,
    head: &DesiredFleet,
) -> std::io::Result<BTreeSet<String>> {
    let (before, after) = (fleet_records(base)?, fleet_records(head)?);
    let tenants: BTreeSet<&str> = before
        .keys()
        .chain(after.keys())
        .map(String::as_str)
        .chain(base.tenants_with_objects())
        .chain(head.tenants_with_objects())
        .collect();
    let mut changed = BTreeSet::new();
    for tenant in tenants {
        if before.get(tenant) != after.get(tenant)
            || tenant_objects(base, tenant)? != tenant_objects(head, tenant)?
        {
            changed.insert(tenant.to_string());
        }
    }
    Ok(changed)
}

/// The fleet kinds' objects (tenant records, organizations) by tenant, and every declared
/// tenant (so one present in only one fleet differs).
fn fleet_records(fleet: &DesiredFleet) -> std::io::Result<BTreeMap<String, ByAddress>> {
    let mut catalog = fleet.catalog.clone();
    for tenant in fleet.catalog.tenants.keys() {
        for o in fleet.organizations_of(tenant)? {
            catalog.organizations.insert(o.name.clone(), o);
        }
    }
    let mut out: BTreeMap<String, ByAddress> = BTreeMap::new();
    for k in KINDS.iter().filter(|k| k.scope == KindScope::Fleet) {
        for d in (k.desired)(&catalog) {
            out.entry(d.tenant)
                .or_default()
                .insert(d.address, d.attributes);
        }
    }
    for name in fleet.catalog.tenants.keys() {
        out.entry(name.clone()).or_default();
    }
    Ok(out)
}

/// One tenant's objects of the other kinds, from its slice.
fn tenant_objects(fleet: &DesiredFleet, tenant: &str) -> std::io::Result<ByAddress> {
    let slice: DesiredModel = fleet.slice(tenant)?;
    let mut out = ByAddress::new();
    for k in KINDS.iter().filter(|k| k.scope != KindScope::Fleet) {
        for d in (k.desired)(&slice) {
            if d.tenant == tenant {
                out.insert(d.address, d.attributes);
            }
        }
    }
    Ok(out)
}
