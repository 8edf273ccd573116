//! The pipeline every command runs, as library functions: the CLI parses flags into
//! [`Settings`], calls one function here, renders what it returns and maps the outcomes to an
//! exit code; benchmarks and tests call the same functions.
//!
//! Layering: `cli -> ops -> {apply executors, graph, state} -> pure core (manifest, model,
//! plan, render, drift)`. Nothing here prints or exits: problems are typed ([`OpsError`]),
//! per-tenant results are [`crate::outcome::TenantOutcome`]s, and progress goes to a
//! [`Reporter`].

pub mod apply;
pub mod catalog;
pub mod consent;
pub mod contacts;
pub mod drift;
pub mod error;
pub mod export;
pub mod fleet_read;
pub mod licence_holdings;
pub mod licences;
pub mod notify;
pub mod plan;
pub mod plan_file;
pub mod reorder;
pub mod report;
pub mod reporter;
pub mod score_history;
pub mod secure_score;
pub mod settings;
pub mod sync;
pub mod workspace;

pub use error::OpsError;
pub use reporter::{Note, Phase, Reporter, Silent};
pub use settings::{GraphSettings, GraphTarget, ManifestSource, Selection, Settings, Shard};
pub use workspace::{Connection, Manifests, Need, Workspace};
