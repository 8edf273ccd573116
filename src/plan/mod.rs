//! The plan: a pure three-way diff of (desired model, stored state, live Entra) into ordered
//! actions, each with an address, an operation, a reason and attribute-level before/after.
//! Nothing here does I/O.
//! The work is split by concern: `options` (what a plan is asked for), `action` and `document`
//! (what it produces), `compute` (the diff itself), `live` (readability, replication, unowned
//! assignments), `dependencies`, `diff` (attributes and ordering), `outcomes`, `hints`,
//! `catalog` (the catalog's part a group of tenants at a time), `changed` (`--changed-since`), `saved` (plan files) and `stream` (planning tenant by
//! tenant). Everything is re-exported here, so
//! `crate::plan::X` is the path to use.

mod action;
mod catalog;
mod changed;
mod compute;
pub mod contacts;
mod dependencies;
mod diff;
mod document;
mod hints;
mod live;
mod options;
mod outcomes;
mod saved;
mod stream;

#[cfg(test)]
pub(crate) use action::test_action;
pub use action::{Action, AttributeChange, Op, Reason};
pub use catalog::{
    CatalogGroups, CatalogPlanner, CatalogSource, TENANTS_PER_GROUP, TenantAt, plan_catalog,
    tenant_record,
};
pub use changed::changed_tenants;
pub use compute::{header, plan, plan_part};
pub use diff::diff;
pub use document::{
    PLAN_FORMAT_VERSION, PLAN_MARKER, Part, Plan, PlanHeader, PlanPart, StateRef, Summary,
    SyncPositionUpdate, TenantNotRead, Unmanaged,
};
pub use options::{DEFAULT_REPLICATION_WINDOW_SECS, PlanInput, PlanOptions};
pub use saved::{SavedPlan, manifests_digest, partition_staleness, partitions_written, staleness};
pub use stream::{TenantJob, plan_by_tenant, tenant_jobs, tenant_state};
