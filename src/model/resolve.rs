//! Resolution, in two passes so a large fleet is never held whole. Pass one takes the decoded
//! documents a round of files at a time: tenants, organizations and drift exceptions (the
//! catalog) stay in memory; names are checked unique against compact keys; each guest and
//! role assignment is checked as far as it can be alone and written to a [`Spill`]. Pass two,
//! once every tenant is known, reads the spills back in document order, resolves targets and
//! references, and stores each resolved object by tenant ([`ObjectStore`]).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::fleet::{DesiredFleet, ObjectStore};
use super::guests::GuestTable;
use super::spill::Spill;
use super::unique::{Key, check_unique, check_unique_key};
use super::{DesiredModel, DirectoryRole, DriftException, Guest, RoleAssignment};
use crate::diagnostic::Diagnostic;
use crate::manifest::selector::Selector;
use crate::manifest::{
    Document, DriftExceptionDoc, Manifest, MspRole, OrganizationDoc, PrincipalDoc,
    RoleAssignmentDoc, TenantTargets,
};
use crate::source::{Loc, Located};

/// Resolves documents given all at once (tests and small inputs; `validate_sources` streams).
pub fn resolve(documents: Vec<Document>) -> std::io::Result<(DesiredFleet, Vec<Diagnostic>)> {
    let mut resolver = Resolver::default();
    resolver.take(documents);
    resolver.finish()
}

/// Tenant targets as pass one keeps them for pass two.
#[derive(Serialize, Deserialize)]
pub(super) enum PendingTargets {
    Names(Vec<(String, Loc)>),
    Selector(Selector, Loc),
}

impl PendingTargets {
    pub(super) fn of(targets: &TenantTargets) -> PendingTargets {
        match targets {
            TenantTargets::Names(names) => {
                PendingTargets::Names(names.iter().map(|n| (n.value.clone(), n.loc)).collect())
            }
            TenantTargets::Selector { selector } => {
                PendingTargets::Selector(selector.value.clone(), selector.loc)
            }
        }
    }

    pub(super) fn into_targets(self) -> TenantTargets {
        match self {
            PendingTargets::Names(names) => TenantTargets::Names(
                names
                    .into_iter()
                    .map(|(n, loc)| Located::new(n, loc))
                    .collect(),
            ),
            PendingTargets::Selector(selector, loc) => TenantTargets::Selector {
                selector: Located::new(selector, loc),
            },
        }
    }
}

/// A guest after pass one: everything but its tenants.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingGuest {
    pub guest: Guest,
    pub targets: PendingTargets,
}

#[derive(Serialize, Deserialize)]
pub(super) enum PendingPrincipal {
    Guest(String, Loc),
    UserId(String),
    GroupId(String),
}

/// A role assignment after pass one: its name checked unique, its roles resolved.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingAssignment {
    pub name: String,
    pub name_loc: Loc,
    pub principal: PendingPrincipal,
    pub directory_roles: Vec<DirectoryRole>,
    pub need_mapped: bool,
    pub targets: Option<PendingTargets>,
    pub scope: String,
    pub msp_roles: BTreeSet<MspRole>,
}

impl Resolver {
    /// Pass one over a round of documents, in file order.
    pub fn take(&mut self, documents: Vec<Document>) {
        for doc in documents {
            match doc.manifest {
                Manifest::Tenant(t) => self.add_tenant(&t),
                Manifest::Organization(o) => self.organizations.push(*o),
                Manifest::GuestUser(g) => {
                    if let Some(pending) = self.take_guest(&g, doc.clean) {
                        self.spill_guest(&g.name, &pending);
                    }
                }
                Manifest::RoleAssignment(a) => self.take_role_assignment(&a),
                Manifest::DriftException(e) => self.exceptions.push(*e),
            }
        }
    }

    fn spill_guest(&mut self, name: &Located<String>, pending: &PendingGuest) {
        let line = serde_json::to_vec(pending).expect("a pending guest serializes");
        match self.pending_guests.append(&line) {
            Ok(offset) => self.guests.set_pending(&name.value, offset),
            Err(e) => self.fail(e),
        }
    }

    fn take_role_assignment(&mut self, doc: &RoleAssignmentDoc) {
        if !check_unique_key(
            &mut self.diags,
            &mut self.assignment_names,
            "RoleAssignment",
            &doc.name,
        ) {
            return;
        }
        let directory_roles = self.resolve_roles(&doc.directory_roles);
        let principal = match &doc.principal {
            PrincipalDoc::Guest(reference) => {
                PendingPrincipal::Guest(reference.value.clone(), reference.loc)
            }
            PrincipalDoc::UserId(id) => PendingPrincipal::UserId(id.value.to_lowercase()),
            PrincipalDoc::GroupId(id) => PendingPrincipal::GroupId(id.value.to_lowercase()),
        };
        let pending = PendingAssignment {
            name: doc.name.value.clone(),
            name_loc: doc.name.loc,
            principal,
            directory_roles,
            need_mapped: !doc.directory_roles.is_empty(),
            targets: doc.tenants.as_ref().map(PendingTargets::of),
            scope: doc
                .scope
                .as_ref()
                .map_or_else(|| "/".to_string(), |s| s.value.clone()),
            msp_roles: doc.msp_roles.iter().map(|r| r.value).collect(),
        };
        let line = serde_json::to_vec(&pending).expect("a pending assignment serializes");
        if let Err(e) = self.pending_assignments.append(&line) {
            self.fail(e);
        }
    }

    pub(super) fn fail(&mut self, error: std::io::Error) {
        self.io_error.get_or_insert(error);
    }

    /// Pass two: the catalog's cross-document checks, then guests and role assignments read
    /// back in document order. Fails only when the spills cannot be written or read.
    pub fn finish(mut self) -> std::io::Result<(DesiredFleet, Vec<Diagnostic>)> {
        if let Some(error) = self.io_error.take() {
            return Err(error);
        }
        self.check_microsoft_ids();
        let organizations = std::mem::take(&mut self.organizations);
        for org in &organizations {
            self.add_implicit_tenant(org);
        }
        for org in &organizations {
            self.add_organization(org);
        }
        drop(organizations);
        self.check_former_names();
        self.guests.index_tenants(&self.model);

        let mut guests = std::mem::take(&mut self.pending_guests);
        guests.finish()?;
        guests.for_each_line(|_, line| {
            let pending: PendingGuest =
                serde_json::from_slice(line).map_err(std::io::Error::other)?;
            self.add_guest(pending)
        })?;
        let mut assignments = std::mem::take(&mut self.pending_assignments);
        assignments.finish()?;
        assignments.for_each_line(|_, line| {
            let pending: PendingAssignment =
                serde_json::from_slice(line).map_err(std::io::Error::other)?;
            self.add_role_assignment(pending, &guests)
        })?;
        drop((guests, assignments));

        let mut exception_names = HashMap::new();
        for e in std::mem::take(&mut self.exceptions) {
            if !check_unique(
                &mut self.diags,
                &mut exception_names,
                "DriftException",
                &e.name,
            ) || !self.check_tenant_exists(&e.tenant, "drift exception")
            {
                continue;
            }
            self.model.drift_exceptions.insert(
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
        self.objects.finish()?;
        Ok((DesiredFleet::new(self.model, self.objects), self.diags))
    }

    pub(super) fn store_role_assignment(
        &mut self,
        assignment: RoleAssignment,
    ) -> std::io::Result<()> {
        self.objects.add_role_assignment(assignment)
    }
}

pub struct Resolver {
    /// The catalog (tenants, organizations, drift exceptions).
    pub(super) model: DesiredModel,
    pub(super) diags: Vec<Diagnostic>,
    /// Where each tenant's name was written (for explicit ones and for implicit ones: the org).
    pub(super) tenant_locs: HashMap<String, Loc>,
    pub(super) org_locs: HashMap<String, Loc>,
    pub(super) guests: GuestTable,
    pub(super) assignment_names: HashMap<Key, Loc>,
    /// (kind, owner, former names), checked once every current name is known.
    pub(super) former_names: Vec<(&'static str, String, Vec<Located<String>>)>,
    organizations: Vec<OrganizationDoc>,
    exceptions: Vec<DriftExceptionDoc>,
    pub(super) pending_guests: Spill,
    pending_assignments: Spill,
    pub(super) objects: ObjectStore,
    io_error: Option<std::io::Error>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver {
            model: DesiredModel::default(),
            diags: Vec::new(),
            tenant_locs: HashMap::new(),
            org_locs: HashMap::new(),
            guests: GuestTable::default(),
            assignment_names: HashMap::new(),
            former_names: Vec::new(),
            organizations: Vec::new(),
            exceptions: Vec::new(),
            pending_guests: Spill::new(),
            pending_assignments: Spill::new(),
            objects: ObjectStore::new(),
            io_error: None,
        }
    }
}
