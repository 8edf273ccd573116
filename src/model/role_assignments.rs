//! Role assignments: directory role names or template ids, principals, target tenants, and
//! the rule that a guest's roles only target tenants the guest is invited to.

use std::collections::HashMap;

use super::resolve::{PendingAssignment, PendingPrincipal, Resolver};
use super::spill::Spill;
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

    /// Pass two: resolves the principal and tenants, checks a guest's roles only target
    /// tenants it is invited to, and stores the assignment.
    pub(super) fn add_role_assignment(
        &mut self,
        pending: PendingAssignment,
        guests: &Spill,
    ) -> std::io::Result<()> {
        let from = format!("role assignment `{}`", pending.name);
        let (principal, guest) = match pending.principal {
            PendingPrincipal::Guest(reference, loc) => {
                match self.resolve_guest(&Located::new(reference, loc), guests)? {
                    Some((name, key)) => (Principal::Guest(name.clone()), Some((name, key))),
                    None => return Ok(()),
                }
            }
            PendingPrincipal::UserId(id) => (Principal::UserId(id), None),
            PendingPrincipal::GroupId(id) => (Principal::GroupId(id), None),
        };
        let tenants: Vec<(String, Loc)> = match (pending.targets, &guest) {
            (Some(targets), _) => {
                let (targets, ok) =
                    self.resolve_targets(&targets.into_targets(), &from, pending.need_mapped);
                if !ok {
                    return Ok(());
                }
                targets
            }
            (None, Some((_, key))) => self
                .guests
                .tenants_of(&self.guests.by_name[key])
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
        if let Some((guest, key)) = &guest {
            let entry = &self.guests.by_name[key];
            if entry.errors {
                return Ok(());
            }
            let missing: Vec<&(String, Loc)> = tenants
                .iter()
                .filter(|(t, _)| !self.guests.is_invited(entry, t))
                .collect();
            if let Some((_, loc)) = missing.first() {
                let names: Vec<&str> = missing.iter().map(|(t, _)| t.as_str()).collect();
                let shown = if names.len() > 5 {
                    format!("{} and {} more", names[..5].join(", "), names.len() - 5)
                } else {
                    names.join(", ")
                };
                let d = Diagnostic::error(
                    Code::GuestNotInTenant,
                    *loc,
                    format!("{from} targets tenant(s) {shown} where guest `{guest}` is not invited"),
                )
                .with_label("guest is not declared in these tenants")
                .with_help(format!("add the tenant(s) to GuestUser `{guest}`'s `tenants`, or narrow this assignment's `tenants`"))
                .with_secondary(entry.loc, "guest defined here");
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
            directory_roles: pending.directory_roles,
            scope: pending.scope,
            tenants: tenants.into_iter().map(|(t, _)| t).collect(),
            msp_roles: pending.msp_roles,
        })
    }
}
