//! The resolved desired state: what the manifests ask for, as plain data with no I/O.
//!
//! [`resolve`] checks everything that needs more than one document (duplicates, references,
//! implicit tenants, selectors, role names) and returns the model with every problem found.
//! Keys are stable names; display names are attributes, so renames are updates.
//! The model's types are in `types`; the resolver is split by concern: `resolve` (the entry
//! point and resolver state), `unique` (duplicate names and ids), `tenants` (tenants,
//! organizations, targets), `guests` and `role_assignments`; `slice` builds one tenant's part of the model for a
//! streaming plan. Everything is re-exported here.

mod fleet;
mod guests;
mod keys;
mod resolve;
mod role_assignments;
mod spill;
mod tenants;
mod types;
mod unique;

pub use fleet::{DesiredFleet, ObjectStore, STORE_PATH, model_digest};
pub use resolve::{Resolver, resolve};
pub use types::{
    DEFAULT_REDIRECT_URL, DesiredModel, DirectoryRole, DriftException, Guest, Invitation,
    Organization, Principal, RoleAssignment, Tenant, TenantSet,
};
