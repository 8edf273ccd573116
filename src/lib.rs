//! tenantform: declarative GitOps for MSPs managing many Microsoft 365 / Entra ID tenants.
//!
//! The core (`manifest`, `model`) is pure: it turns manifest text into a validated desired model
//! and diagnostics, with no I/O. `load` reads files at the edge; `cli` is the only place that
//! prints or exits. See ARCHITECTURE.md.

pub mod access;
pub mod allocator;
pub mod apply;
pub mod cli;
pub mod diagnostic;
pub mod drift;
pub mod export;
pub mod git;
pub mod graph;
pub mod live;
pub mod load;
pub mod manifest;
pub mod model;
pub mod ops;
pub mod outcome;
pub mod plan;
pub mod render;
pub mod resources;
pub mod roles;
pub mod sandbox;
pub mod schema;
pub mod source;
pub mod state;
pub mod synthetic;

use diagnostic::Diagnostic;
use model::DesiredModel;
use source::SourceSet;

/// The outcome of loading manifests: the desired model and every problem found.
#[derive(Debug)]
pub struct Validation {
    pub model: DesiredModel,
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
}

/// Parses, decodes and resolves manifests already in memory. Pure; `load_diagnostics` are the
/// problems found while reading (they come first in the result). The text of files that can be
/// read again is let go once parsed (see `SourceSet::release_texts`): before showing the
/// diagnostics, `load::restore_texts` reads back the files they point into.
pub fn validate_sources(sources: &mut SourceSet, load_diagnostics: Vec<Diagnostic>) -> Validation {
    let (documents, parse_diagnostics) = manifest::parse_sources(sources);
    sources.release_texts();
    let document_count = documents.len();
    let (model, resolve_diagnostics) = model::resolve(documents);
    let mut diagnostics = load_diagnostics;
    diagnostics.extend(parse_diagnostics);
    diagnostics.extend(resolve_diagnostics);
    diagnostic::sort(&mut diagnostics);
    Validation {
        model,
        documents: document_count,
        diagnostics,
    }
}
