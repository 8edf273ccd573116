//! `sync`: the end-user sync as one job: plan and apply contacts only (no other kind is read,
//! compared or changed), with no approval step (contacts are MSP-side records derived from
//! Entra by rules under review in git; the mass-removal guard stands in for a person), and a
//! summary for schedulers.

use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::apply::{ApplyRun, Approval, PlanSource};
use super::{OpsError, Reporter, Selection, Workspace};
use crate::outcome::{Outcome, TenantOutcome};
use crate::plan::PlanOptions;

/// What one sync round is asked for.
pub struct SyncRequest<'a> {
    pub selection: &'a Selection,
    pub allow_mass_removal: bool,
}

/// Runs one round: contacts planned from each synced tenant's users and applied at once.
pub fn sync(
    ws: &mut Workspace,
    request: SyncRequest<'_>,
    stop: &AtomicBool,
    reporter: &dyn Reporter,
) -> Result<ApplyRun, OpsError> {
    let options = PlanOptions {
        allow_mass_removal: request.allow_mass_removal,
        only_kinds: Some([crate::plan::contacts::CONTACT.to_string()].into()),
        ..PlanOptions::default()
    };
    super::apply::apply(
        ws,
        PlanSource::Compute {
            options,
            selection: request.selection,
            changed_since: None,
        },
        "sync",
        &mut |_| Approval::Apply,
        stop,
        reporter,
    )
}

/// One round as a scheduler or a PSA reads it (`sync --output json`, one line a round).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    pub started_at: String,
    pub finished_at: String,
    /// Tenants whose end users were synced (and those that failed).
    pub tenants: usize,
    pub created: usize,
    pub updated: usize,
    pub archived: usize,
    /// Changes held back (mass removal), counted in their operation too.
    pub blocked: usize,
    pub failed: Vec<FailedTenant>,
    /// Stopped (SIGTERM, Ctrl-C) before every change was made.
    pub interrupted: bool,
    pub exit_code: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedTenant {
    pub tenant: String,
    pub cause: crate::outcome::Cause,
    /// Untrusted text (Graph's messages): escape before showing.
    pub message: String,
}

impl SyncSummary {
    /// The summary of `run`; its exit code by the rule every command uses.
    pub fn of(run: &ApplyRun, started_at: String, finished_at: String) -> SyncSummary {
        // Tenants synced: those with a position, with contact actions, or failed.
        let synced: std::collections::BTreeSet<&str> = run
            .plan
            .positions
            .iter()
            .map(|p| p.tenant.as_str())
            .chain(
                run.plan
                    .actions
                    .iter()
                    .filter(|a| a.kind == crate::plan::contacts::CONTACT)
                    .map(|a| a.tenant.as_str()),
            )
            .chain(
                run.outcomes
                    .iter()
                    .filter(|t| t.outcome.is_failed())
                    .map(|t: &TenantOutcome| t.tenant.as_str()),
            )
            .collect();
        let failed: Vec<FailedTenant> = run
            .outcomes
            .iter()
            .filter_map(|t| match &t.outcome {
                Outcome::Failed(f) => Some(FailedTenant {
                    tenant: t.tenant.clone(),
                    cause: f.cause,
                    message: f.describe(),
                }),
                _ => None,
            })
            .collect();
        let report = run.report.as_ref();
        // What was carried out (no report: nothing was to do).
        let (created, updated, archived) =
            report.map_or((0, 0, 0), |r| (r.created, r.updated, r.archived));
        SyncSummary {
            started_at,
            finished_at,
            tenants: synced.len(),
            created,
            updated,
            archived,
            blocked: run.plan.summary.blocked,
            interrupted: report.is_some_and(|r| r.interrupted),
            exit_code: crate::outcome::exit_code(&run.outcomes, false, false),
            failed,
        }
    }
}
