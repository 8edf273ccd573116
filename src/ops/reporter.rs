//! How the pipeline tells its caller what it is doing, without printing: the CLI shows a
//! progress bar and lines, a benchmark or test passes [`Silent`].

use crate::apply::ApplyEvent;
use crate::diagnostic::Diagnostic;
use crate::source::SourceSet;

/// A long step with a count of tenants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    ReadingEntra,
    /// Planning tenant by tenant without reading Entra (`--offline`).
    Planning,
    Applying,
    Exporting,
}

/// Things worth telling a person, that are not errors.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// A plan found the journal of an interrupted apply; the next apply records it.
    RecoveredChanges { changes: usize, store: String },
    /// An apply is recording the changes of an interrupted one first.
    RecordingRecovered { changes: usize, store: String },
    /// Tenants changed by another apply between this one's plan and their locks: planned
    /// again (and shown for approval again when they still have changes).
    Replanning { tenants: Vec<String> },
    /// `--changed-since` narrowed the plan.
    ChangedSince {
        base: String,
        changed: usize,
        total: usize,
    },
}

pub trait Reporter: Sync {
    /// Manifest diagnostics (errors and warnings), with the sources they point into.
    fn diagnostics(&self, _sources: &SourceSet, _diagnostics: &[Diagnostic]) {}
    fn note(&self, _note: &Note) {}
    fn phase_started(&self, _phase: Phase, _tenants: usize) {}
    /// More tenants joined a running phase (tenants only state knows about).
    fn phase_grew(&self, _phase: Phase, _more: usize) {}
    fn tenant_done(&self, _phase: Phase, _failed: bool) {}
    fn phase_finished(&self, _phase: Phase) {}
    /// Each step of an apply, as it happens (tenants run in parallel).
    fn apply_event(&self, _event: &ApplyEvent<'_>) {}
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {}
