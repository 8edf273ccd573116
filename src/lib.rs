//! tenantform: declarative GitOps for MSPs managing many Microsoft 365 / Entra ID tenants.
//!
//! The core (`manifest`, `model`, `plan`) is pure but for one thing: it turns manifest text into
//! a validated desired fleet and diagnostics, and keeps the fleet's guests and role
//! assignments in unlinked temporary files (`model::DesiredFleet`) so a large fleet is never
//! held whole. `load` reads files at the edge; `cli` is the only place that prints or exits.
//! See ARCHITECTURE.md.

pub mod access;
pub mod allocator;
pub mod apply;
pub mod cli;
pub mod consent;
pub mod diagnostic;
pub mod drift;
pub mod end_users;
pub mod export;
pub mod gdap;
pub mod git;
pub mod graph;
pub mod licences;
pub mod live;
pub mod load;
pub mod manifest;
pub mod model;
pub mod notify;
pub mod ops;
pub mod outcome;
pub mod plan;
pub mod policy;
pub mod posture;
pub mod render;
pub mod report;
pub mod resources;
pub mod roles;
pub mod sandbox;
pub mod schema;
pub mod secure_score;
pub mod source;
pub mod state;
pub mod synthetic;

use diagnostic::Diagnostic;
use model::{DesiredFleet, DesiredModel};
use source::SourceSet;

/// The outcome of loading manifests: the desired fleet and every problem found.
#[derive(Debug)]
pub struct Validation {
    pub fleet: DesiredFleet,
    pub documents: usize,
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// The whole desired model in memory (see [`DesiredFleet::to_model`]).
    pub fn model(&self) -> std::io::Result<DesiredModel> {
        self.fleet.to_model()
    }
}

/// Reads, parses, decodes and resolves manifests, a round of files at a time (see
/// `manifest::parse_in_rounds` and `model::Resolver`), so neither the texts nor the documents
/// of a large tree are ever held whole. `load_diagnostics` are the problems found while
/// listing the files. Texts that can be read again are let go once parsed: before showing the
/// diagnostics, `load::restore_texts` reads back the files they point into. Fails only when
/// the temporary store of resolved objects cannot be written or read.
pub fn validate_sources(
    sources: &mut SourceSet,
    load_diagnostics: Vec<Diagnostic>,
) -> std::io::Result<Validation> {
    let mut resolver = model::Resolver::default();
    let mut diagnostics = load_diagnostics;
    let documents =
        manifest::parse_in_rounds(sources, &mut diagnostics, load::read_texts, |round| {
            resolver.take(round)
        });
    let (fleet, resolve_diagnostics) = resolver.finish()?;
    diagnostics.extend(resolve_diagnostics);
    diagnostic::sort(&mut diagnostics);
    Ok(Validation {
        fleet,
        documents,
        diagnostics,
    })
}
