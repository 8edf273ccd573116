//! One tenant's part of the desired model, built in time proportional to that tenant: a
//! streaming plan plans each tenant from its slice, never scanning the fleet per tenant.

use std::collections::HashMap;

use super::{DesiredModel, Principal, TenantSet};

/// Which guests, role assignments and drift exceptions name each tenant.
pub struct TenantIndex<'m> {
    model: &'m DesiredModel,
    guests: HashMap<&'m str, Vec<&'m str>>,
    role_assignments: HashMap<&'m str, Vec<&'m str>>,
    exceptions: HashMap<&'m str, Vec<&'m str>>,
}

impl<'m> TenantIndex<'m> {
    pub fn new(model: &'m DesiredModel) -> Self {
        let mut guests: HashMap<&str, Vec<&str>> = HashMap::new();
        for g in model.guests.values() {
            for t in &g.tenants {
                guests.entry(t).or_default().push(&g.name);
            }
        }
        let mut role_assignments: HashMap<&str, Vec<&str>> = HashMap::new();
        for ra in model.role_assignments.values() {
            for t in &ra.tenants {
                role_assignments.entry(t).or_default().push(&ra.name);
            }
        }
        let mut exceptions: HashMap<&str, Vec<&str>> = HashMap::new();
        for (name, e) in &model.drift_exceptions {
            exceptions.entry(&e.tenant).or_default().push(name);
        }
        TenantIndex {
            model,
            guests,
            role_assignments,
            exceptions,
        }
    }

    pub fn model(&self) -> &'m DesiredModel {
        self.model
    }

    /// The model as far as `tenant` is concerned: its tenant record, the guests and role
    /// assignments that target it (narrowed to it), the guests those assignments name (for
    /// their email, even when not targeted at it) and its drift exceptions. Organizations are
    /// fleet records, planned with the catalog, so they are left out.
    pub fn slice(&self, tenant: &str) -> DesiredModel {
        let model = self.model;
        let only = TenantSet::one(tenant);
        let mut slice = DesiredModel::default();
        if let Some(t) = model.tenants.get(tenant) {
            slice.tenants.insert(t.name.clone(), t.clone());
        }
        for name in self.guests.get(tenant).into_iter().flatten() {
            let g = &model.guests[*name];
            slice
                .guests
                .insert(g.name.clone(), narrowed_guest(g, only.clone()));
        }
        for name in self.role_assignments.get(tenant).into_iter().flatten() {
            let ra = &model.role_assignments[*name];
            if let Principal::Guest(guest) = &ra.principal
                && !slice.guests.contains_key(guest)
                && let Some(g) = model.guests.get(guest)
            {
                slice
                    .guests
                    .insert(g.name.clone(), narrowed_guest(g, TenantSet::default()));
            }
            slice.role_assignments.insert(
                ra.name.clone(),
                super::RoleAssignment {
                    name: ra.name.clone(),
                    principal: ra.principal.clone(),
                    directory_roles: ra.directory_roles.clone(),
                    scope: ra.scope.clone(),
                    tenants: only.clone(),
                    msp_roles: ra.msp_roles.clone(),
                },
            );
        }
        for name in self.exceptions.get(tenant).into_iter().flatten() {
            slice
                .drift_exceptions
                .insert((*name).to_string(), model.drift_exceptions[*name].clone());
        }
        slice
    }
}

fn narrowed_guest(g: &super::Guest, tenants: TenantSet) -> super::Guest {
    super::Guest {
        name: g.name.clone(),
        email: g.email.clone(),
        display_name: g.display_name.clone(),
        tenants,
        invitation: g.invitation.clone(),
    }
}
