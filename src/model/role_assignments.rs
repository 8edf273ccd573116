//! Role assignments: directory role names or template ids, principals, target tenants, and
//! the rule that a guest's roles only target tenants the guest is invited to.

use std::collections::HashMap;

use super::resolve::Resolver;
use super::unique::check_unique;
use super::{DirectoryRole, Principal, RoleAssignment};
use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::format::check_guid;
use crate::manifest::{PrincipalDoc, RoleAssignmentDoc};
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

    pub(super) fn add_role_assignment(&mut self, doc: &RoleAssignmentDoc) {
        if !check_unique(
            &mut self.diags,
            &mut self.assignment_locs,
            "RoleAssignment",
            &doc.name,
        ) {
            return;
        }
        let from = format!("role assignment `{}`", doc.name.value);
        let directory_roles = self.resolve_roles(&doc.directory_roles);
        let need_mapped = !doc.directory_roles.is_empty();
        let (principal, guest) = match &doc.principal {
            PrincipalDoc::Guest(reference) => match self.resolve_guest(reference) {
                Some(name) => (Principal::Guest(name.clone()), Some(name)),
                None => return,
            },
            PrincipalDoc::UserId(id) => (Principal::UserId(id.value.to_lowercase()), None),
            PrincipalDoc::GroupId(id) => (Principal::GroupId(id.value.to_lowercase()), None),
        };
        let tenants: Vec<(String, Loc)> = match (&doc.tenants, &guest) {
            (Some(targets), _) => {
                let (targets, ok) = self.resolve_targets(targets, &from, need_mapped);
                if !ok {
                    return;
                }
                targets
            }
            (None, Some(guest)) => self.model.guests[guest]
                .tenants
                .iter()
                .map(|t| (t.clone(), doc.name.loc))
                .collect(),
            (None, None) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::MissingField,
                        doc.name.loc,
                        format!("{from} names a principal by object id, so it needs `tenants`"),
                    )
                    .with_label("no `tenants`")
                    .with_help("object ids belong to one tenant: add `tenants: [<tenant name>]`"),
                );
                return;
            }
        };
        if let Some(guest) = &guest {
            if self.guests_with_errors.contains(guest) {
                return;
            }
            let invited = &self.model.guests[guest].tenants;
            let missing: Vec<&(String, Loc)> = tenants
                .iter()
                .filter(|(t, _)| !invited.contains(t))
                .collect();
            if let Some((_, loc)) = missing.first() {
                let names: Vec<&str> = missing.iter().map(|(t, _)| t.as_str()).collect();
                let shown = if names.len() > 5 {
                    format!("{} and {} more", names[..5].join(", "), names.len() - 5)
                } else {
                    names.join(", ")
                };
                let mut d = Diagnostic::error(
                    Code::GuestNotInTenant,
                    *loc,
                    format!("{from} targets tenant(s) {shown} where guest `{guest}` is not invited"),
                )
                .with_label("guest is not declared in these tenants")
                .with_help(format!("add the tenant(s) to GuestUser `{guest}`'s `tenants`, or narrow this assignment's `tenants`"));
                if let Some(&gloc) = self.guest_locs.get(guest) {
                    d = d.with_secondary(gloc, "guest defined here");
                }
                self.diags.push(d);
                return;
            }
        } else if tenants.len() != 1 {
            let loc = tenants.first().map_or(doc.name.loc, |(_, l)| *l);
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
            return;
        }
        self.role_assignments.push((
            doc.name.value.clone(),
            RoleAssignment {
                name: doc.name.value.clone(),
                principal,
                directory_roles,
                scope: doc
                    .scope
                    .as_ref()
                    .map_or_else(|| "/".to_string(), |s| s.value.clone()),
                tenants: tenants.into_iter().map(|(t, _)| t).collect(),
                msp_roles: doc.msp_roles.iter().map(|r| r.value).collect(),
            },
        ));
    }
}
