//! The resolved desired state: what the manifests ask for.
//!
//! [`Resolver`] checks everything that needs more than one document (duplicates, references,
//! implicit tenants, selectors, role names) and returns a [`DesiredFleet`] with every problem
//! found: the catalog as plain data, the guests and role assignments in an object store on
//! disk (`fleet`, `spill`: the one I/O here, unlinked temporary files), read back a tenant at
//! a time. Keys are stable names; display names are attributes, so renames are updates.
//! The model's types are in `types`; the resolver is split by concern: `resolve` (the two
//! passes and the resolver's state), `keys` (fixed-size key records, checked a partition at a
//! time), `unique` (duplicate names and ids), `tenants` (tenants, organizations, targets),
//! `guests` and `role_assignments`. Everything is re-exported here.

mod end_users;
mod fleet;
mod gdap;
mod guests;
mod keys;
mod policies;
mod resolve;
mod role_assignments;
pub mod spill;
mod tenants;
mod types;
mod unique;

pub use fleet::{DesiredFleet, ObjectStore, STORE_PATH, model_digest};
pub use resolve::Resolver;
pub use types::{
    DEFAULT_REDIRECT_URL, DesiredModel, DirectoryRole, DriftException, Guest, Invitation,
    LabelText, Labels, Organization, Principal, RoleAssignment, Tenant, TenantSet,
};
