//! The resolved desired state: what the manifests ask for, as plain data with no I/O.
//!
//! [`resolve`] checks everything that needs more than one document (duplicates, references,
//! implicit tenants, selectors, role names) and returns the model with every problem found.
//! Keys are stable names; display names are attributes, so renames are updates.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::format::check_guid;
use crate::manifest::{
    Document, GuestUserDoc, Manifest, MspRole, OrganizationDoc, PrincipalDoc, RoleAssignmentDoc,
    TenantDoc, TenantTargets,
};
use crate::roles::RoleCatalog;
use crate::source::{Loc, Located};

/// Where a guest lands after redeeming an invitation when the manifest does not say.
pub const DEFAULT_REDIRECT_URL: &str = "https://myapps.microsoft.com";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DesiredModel {
    pub tenants: BTreeMap<String, Tenant>,
    pub organizations: BTreeMap<String, Organization>,
    pub guests: BTreeMap<String, Guest>,
    pub role_assignments: BTreeMap<String, RoleAssignment>,
    /// Accepted deviations (they change no plan; drift reports list them apart).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub drift_exceptions: BTreeMap<String, DriftException>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftException {
    pub name: String,
    pub tenant: String,
    /// An address, or a prefix ending in `*`.
    pub address: String,
    pub reason: String,
    /// Last day it applies (YYYY-MM-DD).
    pub expires: String,
}

impl DriftException {
    pub fn matches(&self, tenant: &str, address: &str) -> bool {
        tenant == self.tenant
            && match self.address.strip_suffix('*') {
                Some(prefix) => address.starts_with(prefix),
                None => address == self.address,
            }
    }

    /// Still in force on `today` (YYYY-MM-DD compare as dates).
    pub fn active_on(&self, today: &str) -> bool {
        self.expires.as_str() >= today
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub name: String,
    pub display_name: String,
    pub microsoft_tenant_id: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Created for an Organization without `tenant:` (1:1), not written as a Tenant document.
    pub implicit: bool,
    /// Earlier stable names: a plan moves a stored tenant of such a name to this one.
    pub former_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub name: String,
    pub display_name: String,
    pub tenant: String,
    /// Earlier stable names: a plan moves a stored organization of such a name to this one.
    pub former_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Guest {
    pub name: String,
    /// As written; compare with [`Guest::email_key`].
    pub email: String,
    pub display_name: String,
    pub tenants: BTreeSet<String>,
    pub invitation: Invitation,
}

impl Guest {
    /// Email addresses compare case-insensitively in Entra.
    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub send_email: bool,
    pub redirect_url: String,
    pub message: Option<String>,
    pub message_language: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Principal {
    /// A GuestUser by its stable name.
    Guest(String),
    UserId(String),
    GroupId(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryRole {
    /// Lowercase role template id (the same in every tenant).
    pub template_id: String,
    /// The built-in display name, or `None` for a role given by an id not in the built-in table.
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub name: String,
    pub principal: Principal,
    pub directory_roles: Vec<DirectoryRole>,
    pub scope: String,
    pub tenants: BTreeSet<String>,
    pub msp_roles: BTreeSet<MspRole>,
}

/// Builds the desired model from decoded documents, reporting cross-document problems.
pub fn resolve(documents: &[Document]) -> (DesiredModel, Vec<Diagnostic>) {
    let mut r = Resolver::default();
    let mut organizations = Vec::new();
    let mut guests = Vec::new();
    let mut assignments = Vec::new();
    let mut exceptions = Vec::new();
    for doc in documents {
        match &doc.manifest {
            Manifest::Tenant(t) => r.add_tenant(t),
            Manifest::Organization(o) => organizations.push(o),
            Manifest::GuestUser(g) => guests.push((g, doc.clean)),
            Manifest::RoleAssignment(a) => assignments.push(a),
            Manifest::DriftException(e) => exceptions.push(e),
        }
    }
    r.check_microsoft_ids();
    for org in &organizations {
        r.add_implicit_tenant(org);
    }
    for org in &organizations {
        r.add_organization(org);
    }
    r.check_former_names();
    for (guest, clean) in &guests {
        r.add_guest(guest);
        if !clean {
            r.guests_with_errors.insert(guest.name.value.clone());
        }
    }
    for assignment in &assignments {
        r.add_role_assignment(assignment);
    }
    let mut exception_locs = HashMap::new();
    for e in &exceptions {
        if !check_unique(&mut r.diags, &mut exception_locs, "DriftException", &e.name)
            || !r.check_tenant_exists(&e.tenant, "drift exception")
        {
            continue;
        }
        r.model.drift_exceptions.insert(
            e.name.value.clone(),
            DriftException {
                name: e.name.value.clone(),
                tenant: e.tenant.value.clone(),
                address: e.address.value.clone(),
                reason: e.reason.value.clone(),
                expires: e.expires.value.clone(),
            },
        );
    }
    (r.model, r.diags)
}

#[derive(Default)]
struct Resolver {
    model: DesiredModel,
    diags: Vec<Diagnostic>,
    /// Where each tenant's name was written (for explicit ones and for implicit ones: the org).
    tenant_locs: HashMap<String, Loc>,
    org_locs: HashMap<String, Loc>,
    guest_locs: HashMap<String, Loc>,
    guest_by_email: HashMap<String, (String, Loc)>,
    assignment_locs: HashMap<String, Loc>,
    /// Guests whose targets had errors; their role assignments skip follow-on checks.
    guests_with_errors: BTreeSet<String>,
    /// (kind, owner, former names), checked once every current name is known.
    former_names: Vec<(&'static str, String, Vec<Located<String>>)>,
}

/// Reports a second definition of a name, pointing at both; returns false when it is one.
fn check_unique(
    diags: &mut Vec<Diagnostic>,
    seen: &mut HashMap<String, Loc>,
    kind: &str,
    name: &Located<String>,
) -> bool {
    if let Some(first) = seen.get(&name.value) {
        diags.push(
            Diagnostic::error(
                Code::DuplicateName,
                name.loc,
                format!("duplicate {kind} name `{}`", name.value),
            )
            .with_label("defined again here")
            .with_secondary(*first, "first defined here")
            .with_help(format!(
                "{kind} names must be unique across all manifests; rename or remove one"
            )),
        );
        return false;
    }
    seen.insert(name.value.clone(), name.loc);
    true
}

impl Resolver {
    fn add_tenant(&mut self, doc: &TenantDoc) {
        if !check_unique(&mut self.diags, &mut self.tenant_locs, "Tenant", &doc.name) {
            return;
        }
        let name = doc.name.value.clone();
        self.model.tenants.insert(
            name.clone(),
            Tenant {
                display_name: doc
                    .display_name
                    .as_ref()
                    .map_or_else(|| name.clone(), |d| d.value.clone()),
                microsoft_tenant_id: doc
                    .microsoft_tenant_id
                    .as_ref()
                    .map(|id| id.value.to_lowercase()),
                labels: doc
                    .labels
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.clone()))
                    .collect(),
                implicit: false,
                former_names: doc.former_names.iter().map(|n| n.value.clone()).collect(),
                name,
            },
        );
        self.former_names
            .push(("Tenant", doc.name.value.clone(), doc.former_names.clone()));
    }

    fn check_microsoft_ids(&mut self) {
        let mut seen: HashMap<String, (String, Loc)> = HashMap::new();
        let mut ids: Vec<(&String, &Tenant)> = self.model.tenants.iter().collect();
        ids.sort_by_key(|(name, _)| self.tenant_locs.get(*name).copied());
        for (name, tenant) in ids {
            let Some(id) = &tenant.microsoft_tenant_id else {
                continue;
            };
            let loc = self.tenant_locs[name];
            if let Some((first_name, first_loc)) = seen.get(id) {
                self.diags.push(
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
                seen.insert(id.clone(), (name.clone(), loc));
            }
        }
    }

    fn add_implicit_tenant(&mut self, org: &OrganizationDoc) {
        if org.tenant.is_some() || self.org_locs.contains_key(&org.name.value) {
            return;
        }
        if let Some(&explicit) = self.tenant_locs.get(&org.name.value) {
            self.diags.push(
                Diagnostic::error(
                    Code::ImplicitTenantCollision,
                    org.name.loc,
                    format!(
                        "organization `{}` has no `tenant`, so it would get an implicit tenant `{}`, but a Tenant of that name already exists",
                        org.name.value, org.name.value
                    ),
                )
                .with_label("implicit tenant collides")
                .with_secondary(explicit, "explicit Tenant defined here")
                .with_help(format!(
                    "add `tenant: {}` to put the organization under the existing tenant, or rename one of them",
                    org.name.value
                )),
            );
            return;
        }
        // Remember the org's name location now so a duplicate org does not create two tenants.
        self.org_locs.insert(org.name.value.clone(), org.name.loc);
        self.tenant_locs
            .insert(org.name.value.clone(), org.name.loc);
        let display_name = org
            .display_name
            .as_ref()
            .map_or_else(|| org.name.value.clone(), |d| d.value.clone());
        self.model.tenants.insert(
            org.name.value.clone(),
            Tenant {
                name: org.name.value.clone(),
                display_name,
                microsoft_tenant_id: None,
                labels: BTreeMap::new(),
                implicit: true,
                former_names: Vec::new(),
            },
        );
    }

    fn add_organization(&mut self, org: &OrganizationDoc) {
        let is_first = match self.org_locs.get(&org.name.value) {
            // Implicit-tenant pass already registered this exact document.
            Some(loc) if *loc == org.name.loc => true,
            _ => check_unique(
                &mut self.diags,
                &mut self.org_locs,
                "Organization",
                &org.name,
            ),
        };
        if !is_first {
            return;
        }
        let tenant = match &org.tenant {
            None => {
                if !self
                    .model
                    .tenants
                    .get(&org.name.value)
                    .is_some_and(|t| t.implicit)
                {
                    return; // collision already reported
                }
                org.name.value.clone()
            }
            Some(reference) => {
                if !self.check_tenant_exists(reference, "organization") {
                    return;
                }
                reference.value.clone()
            }
        };
        self.model.organizations.insert(
            org.name.value.clone(),
            Organization {
                name: org.name.value.clone(),
                display_name: org
                    .display_name
                    .as_ref()
                    .map_or_else(|| org.name.value.clone(), |d| d.value.clone()),
                tenant,
                former_names: org.former_names.iter().map(|n| n.value.clone()).collect(),
            },
        );
        self.former_names.push((
            "Organization",
            org.name.value.clone(),
            org.former_names.clone(),
        ));
    }

    /// A former name must not be a current name of the same kind, nor claimed twice.
    fn check_former_names(&mut self) {
        let mut claimed: HashMap<(&str, String), (String, Loc)> = HashMap::new();
        for (kind, owner, names) in std::mem::take(&mut self.former_names) {
            for former in names {
                let current = match kind {
                    "Tenant" => self.model.tenants.contains_key(&former.value),
                    _ => self.model.organizations.contains_key(&former.value),
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

    fn check_tenant_exists(&mut self, reference: &Located<String>, from: &str) -> bool {
        if self.model.tenants.contains_key(&reference.value) {
            return true;
        }
        let suggestions = nearest(
            &reference.value,
            self.model.tenants.keys().map(String::as_str),
        );
        self.diags.push(
            Diagnostic::error(
                Code::UnknownTenant,
                reference.loc,
                format!("{from} refers to unknown tenant `{}`", reference.value),
            )
            .with_label("no Tenant (or implicit tenant) has this name")
            .with_help(did_you_mean(&suggestions).unwrap_or_else(|| {
                "declare it with `kind: Tenant` or refer to an existing tenant's `name`".to_string()
            })),
        );
        false
    }

    /// Resolves targets to tenant names with the location that selected each. Tenants that need
    /// Entra (`need_mapped`) must have a `microsoftTenantId`; selectors skip those that do not.
    fn resolve_targets(
        &mut self,
        targets: &TenantTargets,
        from: &str,
        need_mapped: bool,
    ) -> (Vec<(String, Loc)>, bool) {
        let mut out: Vec<(String, Loc)> = Vec::new();
        let mut ok = true;
        match targets {
            TenantTargets::Names(names) => {
                for name in names {
                    if !self.check_tenant_exists(name, from) {
                        ok = false;
                        continue;
                    }
                    if need_mapped
                        && self.model.tenants[&name.value]
                            .microsoft_tenant_id
                            .is_none()
                    {
                        ok = false;
                        let mut d = Diagnostic::error(
                            Code::TenantNotMapped,
                            name.loc,
                            format!("{from} targets tenant `{}`, which has no `microsoftTenantId`", name.value),
                        )
                        .with_label("not mapped to a Microsoft tenant")
                        .with_help("add `microsoftTenantId: <GUID>` to the Tenant, or remove it from this list");
                        if let Some(&loc) = self.tenant_locs.get(&name.value) {
                            d = d.with_secondary(loc, "tenant defined here");
                        }
                        self.diags.push(d);
                        continue;
                    }
                    if !out.iter().any(|(n, _)| *n == name.value) {
                        out.push((name.value.clone(), name.loc));
                    }
                }
            }
            TenantTargets::Selector { selector } => {
                for tenant in self.model.tenants.values() {
                    if (!need_mapped || tenant.microsoft_tenant_id.is_some())
                        && selector.value.matches(&tenant.labels)
                    {
                        out.push((tenant.name.clone(), selector.loc));
                    }
                }
                if out.is_empty() {
                    let mapped = if need_mapped { "mapped " } else { "" };
                    self.diags.push(
                        Diagnostic::warning(
                            Code::SelectorMatchesNothing,
                            selector.loc,
                            format!("{from}: selector `{}` matches no {mapped}tenant", selector.value),
                        )
                        .with_label("matches nothing")
                        .with_help("check the label keys and values on your Tenant documents; run with --strict to make this an error"),
                    );
                }
            }
        }
        (out, ok)
    }

    fn add_guest(&mut self, doc: &GuestUserDoc) {
        if !check_unique(
            &mut self.diags,
            &mut self.guest_locs,
            "GuestUser",
            &doc.name,
        ) {
            return;
        }
        let email_key = doc.email.value.to_lowercase();
        if let Some((first, first_loc)) = self.guest_by_email.get(&email_key) {
            self.diags.push(
                Diagnostic::error(
                    Code::DuplicateEmail,
                    doc.email.loc,
                    format!(
                        "guests `{first}` and `{}` have the same email {}",
                        doc.name.value, doc.email.value
                    ),
                )
                .with_label("same email as another GuestUser")
                .with_secondary(*first_loc, format!("`{first}` uses it here"))
                .with_help("one person is one GuestUser; list all their tenants in one document"),
            );
            return;
        }
        self.guest_by_email
            .insert(email_key, (doc.name.value.clone(), doc.email.loc));
        let from = format!("guest `{}`", doc.name.value);
        let (targets, ok) = self.resolve_targets(&doc.tenants, &from, true);
        if !ok {
            self.guests_with_errors.insert(doc.name.value.clone());
        }
        let invitation = doc.invitation.as_ref();
        self.model.guests.insert(
            doc.name.value.clone(),
            Guest {
                name: doc.name.value.clone(),
                email: doc.email.value.clone(),
                display_name: doc
                    .display_name
                    .as_ref()
                    .map_or_else(|| doc.email.value.clone(), |d| d.value.clone()),
                tenants: targets.into_iter().map(|(n, _)| n).collect(),
                invitation: Invitation {
                    send_email: invitation
                        .and_then(|i| i.send_email.as_ref())
                        .is_none_or(|s| s.value),
                    redirect_url: invitation
                        .and_then(|i| i.redirect_url.as_ref())
                        .map_or_else(|| DEFAULT_REDIRECT_URL.to_string(), |u| u.value.clone()),
                    message: invitation
                        .and_then(|i| i.message.as_ref())
                        .map(|m| m.value.clone()),
                    message_language: invitation
                        .and_then(|i| i.message_language.as_ref())
                        .map(|m| m.value.clone()),
                },
            },
        );
    }

    fn resolve_guest(&mut self, reference: &Located<String>) -> Option<String> {
        if self.model.guests.contains_key(&reference.value) {
            return Some(reference.value.clone());
        }
        if let Some((name, _)) = self.guest_by_email.get(&reference.value.to_lowercase()) {
            return Some(name.clone());
        }
        let candidates: Vec<&str> = self
            .model
            .guests
            .values()
            .flat_map(|g| [g.name.as_str(), g.email.as_str()])
            .collect();
        let suggestions = nearest(&reference.value, candidates);
        self.diags.push(
            Diagnostic::error(
                Code::UnknownGuest,
                reference.loc,
                format!(
                    "role assignment refers to unknown guest `{}`",
                    reference.value
                ),
            )
            .with_label("no GuestUser has this name or email")
            .with_help(did_you_mean(&suggestions).unwrap_or_else(|| {
                "declare the person with `kind: GuestUser`, then refer to its `name` or `email`"
                    .to_string()
            })),
        );
        None
    }

    fn resolve_roles(&mut self, names: &[Located<String>]) -> Vec<DirectoryRole> {
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

    fn add_role_assignment(&mut self, doc: &RoleAssignmentDoc) {
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
        self.model.role_assignments.insert(
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
        );
    }
}
