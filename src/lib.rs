//! tenantform: declarative GitOps for MSPs managing many Microsoft 365 / Entra ID tenants.
//!
//! The core (`manifest`, `model`) is pure: it turns manifest text into a validated desired model
//! and diagnostics, with no I/O. `load` reads files at the edge; `cli` is the only place that
//! prints or exits. See ARCHITECTURE.md.

pub mod diagnostic;
pub mod manifest;
pub mod roles;
pub mod source;
