//! Which partition of state an object lives in.
//!
//! State is partitioned: one small fleet **catalog** (tenant records and organizations: the
//! MSP-side records that cross tenants, and what renames move) and **one partition per
//! tenant** (its guests, directory roles and MSP roles). Each partition has its own serial,
//! journal and lock; the lineage is the whole state's. Which partition a kind's objects belong
//! to is the kind registry's word ([`crate::resources::ResourceKind::scope`]), never a string
//! match on addresses.
//!
//! An object records its tenant through its partition, not through a field of its own: the
//! tenant is already in the object (`tenant_of`, from its `tenant` attribute), so a second copy
//! could only disagree with it. The partition key is what a backend stores (the file name here,
//! a `tenant` column in a database), and every load checks that each object is where
//! [`partition_of`] says it belongs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{StateError, StateObject};

/// Where a kind's stored objects live: the catalog for fleet records, else its tenant's
/// partition.
fn in_tenant_partition(k: &crate::resources::ResourceKind) -> bool {
    k.scope != crate::resources::KindScope::Fleet
}

/// One partition of state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Partition {
    Catalog,
    /// Always a valid tenant name when made by [`Partition::tenant`] or [`partition_of`].
    Tenant(String),
}

impl Partition {
    /// The partition of tenant `name`, refused unless `name` is a valid tenant name.
    pub fn tenant(name: &str) -> Result<Partition, StateError> {
        if is_tenant_name(name) {
            Ok(Partition::Tenant(name.to_string()))
        } else {
            Err(StateError::BadTenantName(name.to_string()))
        }
    }

    pub fn tenant_name(&self) -> Option<&str> {
        match self {
            Partition::Catalog => None,
            Partition::Tenant(name) => Some(name),
        }
    }

    /// `catalog` or `tenant:<name>`: the key in journals and serial maps.
    pub fn key(&self) -> String {
        match self {
            Partition::Catalog => "catalog".into(),
            Partition::Tenant(name) => format!("tenant:{name}"),
        }
    }

    /// The inverse of [`Partition::key`]; `None` for anything else (or an unsafe name).
    pub fn parse(key: &str) -> Option<Partition> {
        match key {
            "catalog" => Some(Partition::Catalog),
            _ => key
                .strip_prefix("tenant:")
                .filter(|name| is_tenant_name(name))
                .map(|name| Partition::Tenant(name.to_string())),
        }
    }

    /// Refuses a tenant partition whose name is not a valid tenant name (e.g. built by hand
    /// with `Partition::Tenant("../x")`): backends make paths and keys from it.
    pub fn check(&self) -> Result<(), StateError> {
        match self {
            Partition::Catalog => Ok(()),
            Partition::Tenant(name) => Partition::tenant(name).map(|_| ()),
        }
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Partition::Catalog => f.write_str("the catalog"),
            Partition::Tenant(name) => write!(f, "tenant {name}"),
        }
    }
}

impl Serialize for Partition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

impl<'de> Deserialize<'de> for Partition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        Partition::parse(&key)
            .ok_or_else(|| serde::de::Error::custom(format!("`{key}` is not a state partition")))
    }
}

/// Whether `name` may name a tenant partition. Manifests only allow DNS-label-like names
/// (`format::check_name`: `a-z`, `0-9`, `-`, at most 63), and that is also what makes a name
/// safe as a file name: no `/`, no `.`, never `..`, never empty, so a partition can never
/// reach outside the state directory whatever a state file or journal says.
pub fn is_tenant_name(name: &str) -> bool {
    crate::manifest::format::check_name(name).is_ok()
}

/// The partition a stored object belongs to, from the kind registry: catalog kinds go to the
/// catalog, tenant kinds to the partition of the tenant their `tenant_of` names. An object of
/// an unknown kind, or of a tenant kind whose tenant is not a valid name, stays in the catalog:
/// never lost, never a path.
pub fn partition_of(address: &str, object: &StateObject) -> Partition {
    match crate::resources::kind(&object.kind) {
        Some(k) if in_tenant_partition(k) => {
            let tenant = (k.tenant_of)(address, object);
            if is_tenant_name(&tenant) {
                Partition::Tenant(tenant)
            } else {
                Partition::Catalog
            }
        }
        _ => Partition::Catalog,
    }
}

/// Objects grouped by partition (each group in address order).
pub fn split_by_partition(
    objects: &BTreeMap<String, StateObject>,
) -> BTreeMap<Partition, Vec<(&String, &StateObject)>> {
    let mut parts: BTreeMap<Partition, Vec<(&String, &StateObject)>> = BTreeMap::new();
    for (address, object) in objects {
        parts
            .entry(partition_of(address, object))
            .or_default()
            .push((address, object));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, tenant: Option<&str>) -> StateObject {
        crate::state::test_object(kind, tenant)
    }

    #[test]
    fn catalog_kinds_go_to_the_catalog_and_tenant_kinds_to_their_tenant() {
        let catalog = Partition::Catalog;
        let foggy = Partition::Tenant("foggy-it".into());
        assert_eq!(
            partition_of("tenant.foggy-it", &object("tenant", None)),
            catalog
        );
        // An organization names its tenant but crosses tenants (billing): catalog.
        assert_eq!(
            partition_of(
                "organization.foggy-boston",
                &object("organization", Some("foggy-it"))
            ),
            catalog
        );
        for (kind, address) in [
            ("guest", "guest.foggy-it.dana"),
            ("directory_role", "directory_role.foggy-it.dana.x.root"),
            ("msp_role", "msp_role.foggy-it.dana.helpdesk"),
            (
                "contact",
                "contact.foggy-it.00000000-0000-4000-8000-000000000001",
            ),
            ("user_sync", "user_sync.foggy-it"),
        ] {
            assert_eq!(
                partition_of(address, &object(kind, Some("foggy-it"))),
                foggy,
                "{kind}"
            );
        }
    }

    #[test]
    fn every_kind_has_a_scope_and_tenant_kinds_name_their_tenant() {
        // Driven by the registry: a new kind must say where it lives.
        let tenant_kinds: Vec<&str> = crate::resources::KINDS
            .iter()
            .filter(|k| in_tenant_partition(k))
            .map(|k| k.name)
            .collect();
        assert_eq!(
            tenant_kinds,
            [
                "guest",
                "directory_role",
                "msp_role",
                "contact",
                "user_sync",
                "gdap_relationship"
            ]
        );
    }

    #[test]
    fn unsafe_or_missing_tenants_and_unknown_kinds_stay_in_the_catalog() {
        for tenant in ["", "..", "../etc", "a/b", "Foggy", ".hidden", "-x"] {
            assert_eq!(
                partition_of("guest.x.y", &object("guest", Some(tenant))),
                Partition::Catalog,
                "{tenant:?}"
            );
            assert!(Partition::tenant(tenant).is_err(), "{tenant:?}");
            assert!(Partition::Tenant(tenant.into()).check().is_err());
        }
        assert_eq!(
            partition_of("future.x", &object("future_kind", Some("foggy-it"))),
            Partition::Catalog
        );
    }

    #[test]
    fn keys_round_trip_and_refuse_unsafe_names() {
        for p in [Partition::Catalog, Partition::Tenant("foggy-it".into())] {
            assert_eq!(Partition::parse(&p.key()), Some(p.clone()));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Partition>(&json).unwrap(), p);
        }
        assert_eq!(Partition::parse("tenant:../x"), None);
        assert_eq!(Partition::parse("tenant:"), None);
        assert_eq!(Partition::parse("fleet"), None);
        let map: BTreeMap<Partition, u64> = [
            (Partition::Catalog, 1),
            (Partition::tenant("a").unwrap(), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"catalog":1,"tenant:a":2}"#
        );
    }
}
