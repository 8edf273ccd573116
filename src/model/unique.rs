//! Uniqueness across documents: names per kind, Microsoft tenant ids, former names.

use std::collections::HashMap;

use super::Tenant;
use super::resolve::Resolver;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{Loc, Located};

/// A name's compact key: the first 128 bits of its SHA-256. Large fleets check hundreds of
/// thousands of names for uniqueness; keys cost 16 bytes each instead of the name, and two
/// names sharing one is out of reach (about 2^-90 for a million names).
pub type Key = u128;

pub fn key(name: &str) -> Key {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(name.as_bytes());
    u128::from_le_bytes(hash[..16].try_into().expect("16 bytes"))
}

/// "Duplicate name", pointing at the first definition.
pub(super) fn duplicate(kind: &str, name: &Located<String>, first: Loc) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateName,
        name.loc,
        format!("duplicate {kind} name `{}`", name.value),
    )
    .with_label("defined again here")
    .with_secondary(first, "first defined here")
    .with_help(format!(
        "{kind} names must be unique across all manifests; rename or remove one"
    ))
}

/// Reports a second definition of a name, pointing at both; returns false when it is one.
/// Names seen are kept by [`Key`], not as text (a run keeps every tenant's).
pub(super) fn check_unique(
    diags: &mut Vec<Diagnostic>,
    seen: &mut HashMap<Key, Loc>,
    kind: &str,
    name: &Located<String>,
) -> bool {
    match seen.entry(key(&name.value)) {
        std::collections::hash_map::Entry::Occupied(first) => {
            diags.push(duplicate(kind, name, *first.get()));
            false
        }
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(name.loc);
            true
        }
    }
}

impl Resolver {
    pub(super) fn check_microsoft_ids(&mut self) {
        // Borrowed, not cloned: every tenant is looked at.
        let mut seen: HashMap<&str, (&str, Loc)> = HashMap::new();
        let mut ids: Vec<(&String, &Tenant, Loc)> = self
            .model
            .tenants
            .iter()
            .filter_map(|(name, tenant)| Some((name, tenant, *self.tenant_locs.get(&key(name))?)))
            .collect();
        ids.sort_by_key(|(_, _, loc)| *loc);
        let mut diags = Vec::new();
        for (name, tenant, loc) in ids {
            let Some(id) = &tenant.microsoft_tenant_id else {
                continue;
            };
            if let Some((first_name, first_loc)) = seen.get(id.as_str()) {
                diags.push(
                    Diagnostic::error(
                        Code::DuplicateMicrosoftTenantId,
                        loc,
                        format!("tenants `{first_name}` and `{name}` map to the same Microsoft tenant {id}"),
                    )
                    .with_label("same microsoftTenantId as another tenant")
                    .with_secondary(*first_loc, format!("`{first_name}` is mapped here"))
                    .with_help("one Microsoft tenant is one MSP tenant; put several billing organizations under one Tenant instead"),
                );
            } else {
                seen.insert(id, (name, loc));
            }
        }
        self.diags.extend(diags);
    }

    /// A former name must not be a current name of the same kind, nor claimed twice.
    pub(super) fn check_former_names(&mut self) {
        let mut claimed: HashMap<(&str, String), (String, Loc)> = HashMap::new();
        for (kind, owner, names) in std::mem::take(&mut self.former_names) {
            for former in names {
                let current = match kind {
                    "Tenant" => self.model.tenants.contains_key(&former.value),
                    _ => self.organization_keys.contains(&key(&former.value)),
                };
                let key = (kind, former.value.clone());
                let message = if current {
                    Some(format!(
                        "{kind} `{owner}` lists `{}` as a former name, but a {kind} of that name still exists",
                        former.value
                    ))
                } else if let Some((other, _)) = claimed.get(&key) {
                    Some(format!(
                        "`{}` is a former name of both {kind} `{other}` and `{owner}`",
                        former.value
                    ))
                } else {
                    None
                };
                match message {
                    Some(message) => {
                        let mut d = Diagnostic::error(Code::FormerNameConflict, former.loc, message)
                            .with_label("conflicting former name")
                            .with_help("a former name says which stored object this one continues; it must be unique and no longer in use");
                        if let Some((_, loc)) = claimed.get(&key) {
                            d = d.with_secondary(*loc, "also claimed here");
                        }
                        self.diags.push(d);
                    }
                    None => {
                        claimed.insert(key, (owner.clone(), former.loc));
                    }
                }
            }
        }
    }
}
