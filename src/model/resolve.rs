//! `resolve()`: the order in which documents are resolved, and the resolver's state (where
//! each name was defined, for diagnostics pointing at both sides).

use std::collections::{BTreeSet, HashMap};

use super::unique::check_unique;
use super::{DesiredModel, DriftException};
use crate::diagnostic::Diagnostic;
use crate::manifest::{Document, Manifest};
use crate::source::{Loc, Located};

/// Builds the desired model from decoded documents, reporting cross-document problems. Takes
/// the documents by value and drops each guest and role assignment once it is in the model, so
/// a large fleet never holds both in full.
pub fn resolve(documents: Vec<Document>) -> (DesiredModel, Vec<Diagnostic>) {
    let mut r = Resolver::default();
    let mut organizations = Vec::new();
    let mut guests = Vec::new();
    let mut assignments = Vec::new();
    let mut exceptions = Vec::new();
    for doc in documents {
        match doc.manifest {
            Manifest::Tenant(t) => r.add_tenant(&t),
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
    drop(organizations);
    r.check_former_names();
    for (guest, clean) in guests {
        r.add_guest(&guest);
        if !clean {
            r.guests_with_errors.insert(guest.name.value.clone());
        }
    }
    for assignment in assignments {
        r.add_role_assignment(&assignment);
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
    r.finish()
}

impl Resolver {
    /// The model, with its large maps built densely, and the diagnostics. Inserting in name
    /// order leaves B-tree nodes about half full; `collect` bulk-builds full ones, which at
    /// 10,000 tenants x 20 guests x 2 roles saves about a third of the model for the rest of
    /// the run. The lookup tables are freed first.
    fn finish(self) -> (DesiredModel, Vec<Diagnostic>) {
        // `this` ends with the block, and the lookup tables with it.
        let (mut model, diags, role_assignments) = {
            let this = self;
            (this.model, this.diags, this.role_assignments)
        };
        model.role_assignments = role_assignments.into_iter().collect();
        model.guests = std::mem::take(&mut model.guests).into_iter().collect();
        model.organizations = std::mem::take(&mut model.organizations)
            .into_iter()
            .collect();
        (model, diags)
    }
}

#[derive(Default)]
pub(super) struct Resolver {
    pub(super) model: DesiredModel,
    pub(super) diags: Vec<Diagnostic>,
    /// Where each tenant's name was written (for explicit ones and for implicit ones: the org).
    pub(super) tenant_locs: HashMap<String, Loc>,
    pub(super) org_locs: HashMap<String, Loc>,
    pub(super) guest_locs: HashMap<String, Loc>,
    pub(super) guest_by_email: HashMap<String, (String, Loc)>,
    pub(super) assignment_locs: HashMap<String, Loc>,
    /// Guests whose targets had errors; their role assignments skip follow-on checks.
    pub(super) guests_with_errors: BTreeSet<String>,
    /// Resolved role assignments (names already checked unique), made a map once at the end:
    /// nothing looks them up while resolving, and a map built at once is dense.
    pub(super) role_assignments: Vec<(String, super::RoleAssignment)>,
    /// (kind, owner, former names), checked once every current name is known.
    pub(super) former_names: Vec<(&'static str, String, Vec<Located<String>>)>,
}
