//! Role assignments: directory role names or template ids, principals, target tenants, and
//! the rule that a guest's roles only target tenants the guest is invited to.

use std::collections::HashMap;

use super::guests::{GuestFacts, read_line};
use super::keys::{AssignmentKeys, FactsKeys, Partitions};
use super::resolve::{PendingAssignment, PendingPrincipal, Resolver};
use super::spill::Spill;
use super::unique::{Key, duplicate};
use super::{DirectoryRole, Principal, RoleAssignment};
use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::format::check_guid;
use crate::roles::RoleCatalog;
use crate::source::{Loc, Located};

impl Resolver {
    pub(super) fn resolve_roles(&mut self, names: &[Located<String>]) -> Vec<DirectoryRole> {
        let catalog = RoleCatalog::builtin();
        let mut roles: Vec<DirectoryRole> = Vec::new();
        let mut seen: HashMap<String, Loc> = HashMap::new();
        for name in names {
            let role = if check_guid(&name.value).is_ok() {
                let id = name.value.to_lowercase();
                DirectoryRole {
                    display_name: catalog.by_template_id(&id).map(|r| r.name.to_string()),
                    template_id: id,
                }
            } else if let Some(builtin) = catalog.by_name(&name.value) {
                DirectoryRole {
                    template_id: builtin.template_id.to_string(),
                    display_name: Some(builtin.name.to_string()),
                }
            } else {
                let suggestions = nearest(&name.value, catalog.all().iter().map(|r| r.name));
                let help = did_you_mean(&suggestions).unwrap_or_else(|| {
                    "use an Entra built-in role's display name (see `tenantform roles`) or a role template id".to_string()
                });
                self.diags.push(
                    Diagnostic::error(
                        Code::UnknownRole,
                        name.loc,
                        format!("unknown directory role `{}`", name.value),
                    )
                    .with_label("not an Entra built-in role")
                    .with_help(help),
                );
                continue;
            };
            if let Some(first) = seen.get(&role.template_id) {
                self.diags.push(
                    Diagnostic::warning(
                        Code::DuplicateRole,
                        name.loc,
                        format!("directory role `{}` is listed twice", name.value),
                    )
                    .with_label("listed again here")
                    .with_secondary(*first, "first listed here"),
                );
                continue;
            }
            seen.insert(role.template_id.clone(), name.loc);
            roles.push(role);
        }
        roles.sort();
        roles
    }

    /// Pass two, before resolving: which role assignments repeat an earlier one's name, one
    /// partition of keys at a time.
    pub(super) fn judge_assignments(
        &mut self,
        keys: &Spill,
        pending: &Spill,
    ) -> std::io::Result<Vec<bool>> {
        let count = (keys.len() / AssignmentKeys::SIZE as u64) as usize;
        let mut duplicates = vec![false; count];
        let partitions = Partitions::for_count(count);
        for part in partitions.iter() {
            let mut first: HashMap<Key, Loc> = HashMap::new();
            keys.for_each_record(AssignmentKeys::SIZE, |seq, bytes| {
                let a = AssignmentKeys::decode(bytes);
                if partitions.of(a.name) != part {
                    return Ok(());
                }
                match first.get(&a.name) {
                    Some(&first_loc) => {
                        let this: PendingAssignment = read_line(pending, a.pending)?;
                        let name = Located::new(this.name, a.name_loc);
                        self.diags
                            .push(duplicate("RoleAssignment", &name, first_loc));
                        duplicates[seq] = true;
                    }
                    None => {
                        first.insert(a.name, a.name_loc);
                    }
                }
                Ok(())
            })?;
        }
        Ok(duplicates)
    }

    /// The facts of the guest each role assignment names (by name, else by email), as
    /// offsets into the facts spill (`NO_GUEST` when none), a partition of keys at a time.
    pub(super) fn find_guests(
        &self,
        keys: &Spill,
        duplicates: &[bool],
        facts_keys: &Spill,
    ) -> std::io::Result<Vec<u64>> {
        let mut found = vec![NO_GUEST; duplicates.len()];
        let guests = (facts_keys.len() / FactsKeys::SIZE as u64) as usize;
        let partitions = Partitions::for_count(guests);
        for by_email in [false, true] {
            for part in partitions.iter() {
                let mut table: HashMap<Key, u64> = HashMap::new();
                facts_keys.for_each_record(FactsKeys::SIZE, |_, bytes| {
                    let f = FactsKeys::decode(bytes);
                    let k = if by_email { f.email } else { f.name };
                    if partitions.of(k) == part {
                        table.entry(k).or_insert(f.facts);
                    }
                    Ok(())
                })?;
                keys.for_each_record(AssignmentKeys::SIZE, |seq, bytes| {
                    if duplicates[seq] || found[seq] != NO_GUEST {
                        return Ok(());
                    }
                    let Some((exact, lower)) = AssignmentKeys::decode(bytes).guest else {
                        return Ok(());
                    };
                    let k = if by_email { lower } else { exact };
                    if partitions.of(k) == part
                        && let Some(&facts) = table.get(&k)
                    {
                        found[seq] = facts;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(found)
    }

    /// Pass two: resolves the roles, principal and tenants, checks a guest's roles only target
    /// tenants it is invited to, and stores the assignment. `guest` is where the named
    /// guest's facts are in `facts`; `pending_guests` gives suggestions for an unknown one.
    pub(super) fn add_role_assignment(
        &mut self,
        pending: PendingAssignment,
        guest: u64,
        facts: &Spill,
        pending_guests: &Spill,
    ) -> std::io::Result<()> {
        let from = format!("role assignment `{}`", pending.name);
        let need_mapped = !pending.directory_roles.is_empty();
        let names: Vec<Located<String>> = pending
            .directory_roles
            .into_iter()
            .map(|(name, loc)| Located::new(name, loc))
            .collect();
        let directory_roles = self.resolve_roles(&names);
        let (principal, guest) = match pending.principal {
            PendingPrincipal::Guest(reference, loc) => {
                if guest == NO_GUEST {
                    return self.unknown_guest(&Located::new(reference, loc), pending_guests);
                }
                let facts: GuestFacts = read_line(facts, guest)?;
                (Principal::Guest(facts.name.clone()), Some(facts))
            }
            PendingPrincipal::UserId(id) => (Principal::UserId(id), None),
            PendingPrincipal::GroupId(id) => (Principal::GroupId(id), None),
        };
        let tenants: Vec<(String, Loc)> = match (pending.targets, &guest) {
            (Some(targets), _) => {
                let (targets, ok) =
                    self.resolve_targets(&targets.into_targets(), &from, need_mapped);
                if !ok {
                    return Ok(());
                }
                targets
            }
            (None, Some(facts)) => self
                .guests
                .tenants_of(facts)
                .iter()
                .map(|t| (t.clone(), pending.name_loc))
                .collect(),
            (None, None) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::MissingField,
                        pending.name_loc,
                        format!("{from} names a principal by object id, so it needs `tenants`"),
                    )
                    .with_label("no `tenants`")
                    .with_help("object ids belong to one tenant: add `tenants: [<tenant name>]`"),
                );
                return Ok(());
            }
        };
        if let Some(facts) = &guest {
            if facts.errors {
                return Ok(());
            }
            let missing: Vec<&(String, Loc)> = tenants
                .iter()
                .filter(|(t, _)| !self.guests.is_invited(facts, t))
                .collect();
            if let Some((_, loc)) = missing.first() {
                let names: Vec<&str> = missing.iter().map(|(t, _)| t.as_str()).collect();
                let shown = if names.len() > 5 {
                    format!("{} and {} more", names[..5].join(", "), names.len() - 5)
                } else {
                    names.join(", ")
                };
                let guest = &facts.name;
                let d = Diagnostic::error(
                    Code::GuestNotInTenant,
                    *loc,
                    format!("{from} targets tenant(s) {shown} where guest `{guest}` is not invited"),
                )
                .with_label("guest is not declared in these tenants")
                .with_help(format!("add the tenant(s) to GuestUser `{guest}`'s `tenants`, or narrow this assignment's `tenants`"))
                .with_secondary(facts.loc, "guest defined here");
                self.diags.push(d);
                return Ok(());
            }
        } else if tenants.len() != 1 {
            let loc = tenants.first().map_or(pending.name_loc, |(_, l)| *l);
            self.diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    loc,
                    format!(
                        "{from} names a principal by object id but targets {} tenants",
                        tenants.len()
                    ),
                )
                .with_label("needs exactly one tenant")
                .with_help("object ids belong to one tenant: target exactly one tenant by name"),
            );
            return Ok(());
        }
        self.store_role_assignment(RoleAssignment {
            name: pending.name,
            principal,
            directory_roles,
            scope: pending.scope,
            tenants: tenants.into_iter().map(|(t, _)| t).collect(),
            msp_roles: pending.msp_roles,
        })
    }
}

/// No guest found for a role assignment.
const NO_GUEST: u64 = u64::MAX;
