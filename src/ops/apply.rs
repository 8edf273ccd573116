//! `apply` and `import`: hold the state lock, plan (or take a saved plan that is still
//! current), let the caller approve, carry the plan out through the right executor, and
//! record every change.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::apply::entra::EntraExecutor;
use crate::apply::{ApplyEvent, ApplyReport, Control, StateOnlyExecutor};
use crate::ops::live_read::{LiveScope, read_live};
use crate::ops::plan::{scope, scoped_model};
use crate::ops::{Need, Note, OpsError, Phase, Reporter, Selection, Workspace};
use crate::outcome::TenantOutcome;
use crate::plan::{Plan, PlanInput, PlanOptions, SavedPlan, manifests_digest, staleness};
use crate::state::{LockInfo, Source};

/// Which plan to carry out.
pub enum PlanSource<'a> {
    /// Plan now, under the lock.
    Compute {
        options: PlanOptions,
        selection: &'a Selection,
        changed_since: Option<&'a str>,
    },
    /// Exactly a plan saved by `plan --out` (refused when stale).
    Saved(Box<SavedPlan>),
}

/// What the caller decided after seeing the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    Apply,
    /// Declined; nothing is changed.
    Cancelled,
    /// Could not be asked (no terminal and no `--auto-approve`); nothing is changed.
    Refused(String),
}

pub struct ApplyRun {
    pub plan: Plan,
    pub approval: Approval,
    /// What was carried out (`None` when nothing was to do or it was not approved).
    pub report: Option<ApplyReport>,
    /// Every tenant of the plan and how its apply ended.
    pub outcomes: Vec<TenantOutcome>,
    /// The state written, for the summary line.
    pub store: String,
    pub serial: u64,
}

/// A plan made from a work tree applies only on the same checkout; one made from git
/// (`--ref`) reads exactly its commit again.
pub fn check_saved_commit(saved: &SavedPlan) -> Result<(), OpsError> {
    if let Some(planned) = saved.commit.as_ref().filter(|_| !saved.from_git) {
        let manifests = std::path::Path::new(&saved.manifests);
        let checked_out = crate::git::head_commit(manifests);
        if checked_out.as_deref() != Some(planned.as_str()) {
            return Err(OpsError::StalePlan(format!(
                "the plan was made at commit {planned}, but {} is at {}; plan again on this commit",
                manifests.display(),
                checked_out.as_deref().unwrap_or("no commit")
            )));
        }
    }
    Ok(())
}

/// Applies `source` (`command` is `apply` or `import`, for messages). `approve` sees the plan
/// when it has changes; `stop` (Ctrl-C, SIGTERM, a closed stdout) stops before the next
/// change. Whatever happens after approval, what was done is recorded.
pub fn apply(
    ws: &mut Workspace,
    source: PlanSource<'_>,
    command: &str,
    approve: &mut dyn FnMut(&Plan) -> Approval,
    stop: &AtomicBool,
    reporter: &dyn Reporter,
) -> Result<ApplyRun, OpsError> {
    let digest = manifests_digest(&ws.manifests.model);
    let lock = ws.store.lock(
        LockInfo::for_command(ws.settings.command_line.clone()),
        ws.settings.lock_timeout,
    )?;
    let mut state = ws.store.load()?;
    if state.recovered_changes > 0 {
        reporter.note(&Note::RecordingRecovered {
            changes: state.recovered_changes,
            store: ws.store.describe(),
        });
        state.ensure_lineage();
        state.serial = ws.store.write(&state, &lock)?;
        state.recovered_changes = 0;
    }
    let offline = match &source {
        PlanSource::Compute { options, .. } => options.offline,
        PlanSource::Saved(saved) => saved.plan.options.offline,
    };
    let plan = match source {
        PlanSource::Saved(saved) => {
            if let Some(why) = staleness(&saved.plan, &digest, &state) {
                return Err(OpsError::StalePlan(format!(
                    "{why}; make a new plan with `tenantform plan --out FILE`"
                )));
            }
            if ws.connection.is_none() {
                let need = Need::Plan { command, offline };
                ws.connection =
                    crate::ops::workspace::connect(&ws.settings, &ws.manifests.model, need)?;
            }
            saved.plan
        }
        PlanSource::Compute {
            mut options,
            selection,
            changed_since,
        } => {
            options.only_tenants = scope(ws, selection, changed_since, reporter)?;
            let graph_model = scoped_model(&ws.manifests.model, options.only_tenants.as_ref());
            let need = Need::Plan { command, offline };
            if ws.connection.is_none() {
                ws.connection = crate::ops::workspace::connect(&ws.settings, &graph_model, need)?;
            }
            let live = match &ws.connection {
                Some(connection) => {
                    let live_scope = LiveScope {
                        model: &graph_model,
                        every_mapped: false,
                        only: options.only_tenants.as_ref(),
                    };
                    let (loaded, live) = read_live(
                        connection,
                        &ws.settings.graph,
                        &live_scope,
                        reporter,
                        move || Ok(state),
                    )?;
                    state = loaded;
                    Some(live)
                }
                None => None,
            };
            crate::plan::plan(&PlanInput {
                desired: &ws.manifests.model,
                state: &state,
                live: live.as_ref(),
                options,
                now: jiff::Timestamp::now(),
            })
        }
    };
    let unapplied = |plan: Plan, approval: Approval, serial: u64| ApplyRun {
        outcomes: plan.tenants.clone(),
        plan,
        approval,
        report: None,
        store: ws.store.describe(),
        serial,
    };
    if !plan.has_changes() {
        return Ok(unapplied(plan, Approval::Apply, state.serial));
    }
    match approve(&plan) {
        Approval::Apply => {}
        other => return Ok(unapplied(plan, other, state.serial)),
    }

    let source = Source {
        digest,
        commit: ws.manifests.commit.clone(),
    };
    state.ensure_lineage();
    let mut journal = ws.store.journal(&state, &lock)?;
    reporter.phase_started(Phase::Applying, crate::apply::tenants_to_apply(&plan));
    let step_delay = ws.settings.apply_step_delay;
    let on_event = |event: ApplyEvent| {
        reporter.apply_event(&event);
        match event {
            ApplyEvent::Done(_) => {
                if let Some(delay) = step_delay {
                    std::thread::sleep(delay);
                }
            }
            ApplyEvent::TenantFinished { failed, .. } => {
                reporter.tenant_done(Phase::Applying, failed)
            }
            _ => {}
        }
    };
    let control = Control {
        parallelism: ws.settings.graph.parallelism,
        on_event: &on_event,
        stop,
    };
    let report = match &ws.connection {
        Some(c) => {
            let executor = EntraExecutor {
                client: c.client.as_ref(),
                replication_wait: Duration::from_secs(120),
                stop,
            };
            c.runtime.block_on(crate::apply::apply(
                &plan,
                &mut state,
                journal.as_mut(),
                &executor,
                &source,
                &control,
            ))
        }
        // MSP-side records only: nothing waits on the network.
        None => tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(OpsError::io("tokio runtime"))?
            .block_on(crate::apply::apply(
                &plan,
                &mut state,
                journal.as_mut(),
                &StateOnlyExecutor,
                &source,
                &control,
            )),
    };
    reporter.phase_finished(Phase::Applying);
    // Whatever happened, record what was done (the store gives the new serial).
    state.serial = ws.store.write(&state, &lock)?;
    drop(lock);
    let outcomes = report.outcomes(&plan);
    Ok(ApplyRun {
        outcomes,
        plan,
        approval: Approval::Apply,
        report: Some(report),
        store: ws.store.describe(),
        serial: state.serial,
    })
}
