//! `tenantform apply`: carry out a plan (computed now, or saved by `plan --out`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::entra::EntraExecutor;
use crate::apply::{ApplyEvent, Control, StateOnlyExecutor, apply, tenants_to_apply};
use crate::cli::common::{
    GraphArgs, Location, LockArgs, Need, PlanningArgs, connect, finish_live_read, load_manifests,
    start_live_read,
};
use crate::cli::progress::{Progress, Verbosity};
use crate::cli::{CliError, Context, exit};
use crate::outcome::{Outcome, TenantOutcome};
use crate::plan::{
    PLAN_MARKER, Plan, PlanInput, PlanOptions, SavedPlan, manifests_digest, plan, staleness,
};
use crate::render;
use crate::state::file::FileStateStore;
use crate::state::{LockInfo, Source, StateStore};
use std::sync::atomic::{AtomicBool, Ordering};

/// Test hook: pause this long after each change, so tests can kill an apply between changes.
const STEP_DELAY_ENV: &str = "TENANTFORM_TEST_APPLY_STEP_DELAY_MS";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Manifests (directory, file, or -) or a plan file saved by `tenantform plan --out`.
    #[arg(value_name = "PATH|PLANFILE", default_value = ".")]
    path: PathBuf,
    /// State file [default: PATH/.tenantform/state.json; for a plan file, the one it names].
    #[arg(long, value_name = "FILE", env = "TENANTFORM_STATE")]
    state: Option<PathBuf>,
    /// Apply without asking (for CI). Without a terminal, apply refuses unless this is given.
    #[arg(long)]
    auto_approve: bool,
    /// Carry out deletes (without it they are listed as blocked and skipped).
    #[arg(long)]
    allow_delete: bool,
    /// Take over guests and role assignments that exist in Entra but tenantform does not own.
    #[arg(long)]
    adopt: bool,
    /// Send pending invitations again (their redemption links are reset).
    #[arg(long)]
    resend_invitations: bool,
    #[command(flatten)]
    graph: GraphArgs,
    #[command(flatten)]
    planning: PlanningArgs,
    #[command(flatten)]
    selection: crate::cli::common::TenantSelection,
    /// Apply the manifests as they are at this git commit, branch or tag.
    #[arg(long = "ref", value_name = "REF")]
    reference: Option<String>,
    /// Treat manifest warnings as errors.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    lock: LockArgs,
}

fn read_saved_plan(path: &Path) -> Option<Result<SavedPlan, CliError>> {
    if !path.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    if value.get("kind")?.as_str()? != PLAN_MARKER {
        return None;
    }
    Some(serde_json::from_value(value).map_err(|e| {
        CliError::Usage(format!(
            "{} is a tenantform plan this version cannot read: {e}",
            path.display()
        ))
    }))
}

fn confirm(cx: &Context) -> Result<bool, CliError> {
    eprint!("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|source| CliError::Io {
            path: "<stdin>".into(),
            source,
        })?;
    let _ = cx;
    Ok(answer.trim() == "yes")
}

/// `tenantform import`: apply in import mode (adopt what exists, change nothing in Entra).
pub fn run_import(cx: &Context, mut args: Args) -> Result<u8, CliError> {
    args.adopt = true;
    args.auto_approve = true;
    run_mode(cx, args, true)
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    run_mode(cx, args, false)
}

fn run_mode(cx: &Context, args: Args, import_only: bool) -> Result<u8, CliError> {
    let saved = read_saved_plan(&args.path).transpose()?;
    if import_only && saved.is_some() {
        return Err(CliError::Usage(
            "import plans for itself: give it the manifests, not a saved plan".into(),
        ));
    }
    let (location, mut options) = match &saved {
        Some(saved) => {
            if args.allow_delete
                || args.adopt
                || args.resend_invitations
                || !args.selection.tenants.is_empty()
                || args.selection.selector.is_some()
            {
                return Err(CliError::Usage(
                    "--allow-delete, --adopt, --resend-invitations, --tenant and --selector are decided when the plan is made: run `tenantform plan --allow-delete --out FILE` (with the flags you need)".into(),
                ));
            }
            let state = args
                .state
                .clone()
                .unwrap_or_else(|| PathBuf::from(&saved.state_path));
            let manifests = PathBuf::from(&saved.manifests);
            // A plan made from a work tree applies only on the same checkout; one made from
            // git (`--ref`) reads exactly its commit again.
            if let Some(planned) = saved.commit.as_ref().filter(|_| !saved.from_git) {
                let checked_out = crate::git::head_commit(&manifests);
                if checked_out.as_deref() != Some(planned.as_str()) {
                    return Err(CliError::StalePlan(format!(
                        "the plan was made at commit {planned}, but {} is at {}; plan again on this commit",
                        manifests.display(),
                        checked_out.as_deref().unwrap_or("no commit")
                    )));
                }
            }
            (
                Location {
                    path: manifests,
                    state: Some(state),
                    reference: saved.commit.clone().filter(|_| saved.from_git),
                },
                saved.plan.options.clone(),
            )
        }
        None => (
            Location {
                path: args.path.clone(),
                state: args.state.clone(),
                reference: args.reference.clone(),
            },
            PlanOptions {
                allow_delete: args.allow_delete,
                adopt: args.adopt,
                resend_invitations: args.resend_invitations,
                only_tenants: None,
                import_only,
                offline: args.planning.offline,
                replication_window_secs: args.planning.replication_window.as_secs(),
            },
        ),
    };

    let loaded = load_manifests(
        cx,
        &location.path,
        location.reference.as_deref(),
        args.strict,
    )?;
    let model = loaded.model;
    if saved.is_none() {
        options.only_tenants = args.selection.resolve(&model)?;
    }
    let digest = manifests_digest(&model);
    let store: FileStateStore = location.store();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let lock = store.lock(LockInfo::for_command(command), args.lock.lock_timeout)?;
    let mut state = store.load()?;
    if state.recovered_changes > 0 {
        eprintln!(
            "Recovered {} changes from an interrupted apply; recording them in {} first.",
            state.recovered_changes,
            store.describe()
        );
        state.ensure_lineage();
        store.write(&state, &lock)?;
        state.recovered_changes = 0;
    }

    let mut graph = args.graph.clone();
    graph.sandbox |= saved.as_ref().is_some_and(|s| s.sandbox);
    let need = Need::Plan {
        command: if import_only { "import" } else { "apply" },
        offline: options.offline,
    };
    let connection = connect(&graph, &model, &location.state_path(), need)?;
    let plan: Plan = match saved {
        Some(saved) => {
            if let Some(why) = staleness(&saved.plan, &digest, &state) {
                return Err(CliError::StalePlan(format!(
                    "{why}; make a new plan with `tenantform plan --out FILE`"
                )));
            }
            saved.plan
        }
        None => {
            let live = connection.as_ref().map(|c| {
                let reading =
                    start_live_read(cx, c, &graph, &model, false, options.only_tenants.as_ref());
                finish_live_read(c, &graph, reading, &model, &state)
            });
            plan(&PlanInput {
                desired: &model,
                state: &state,
                live: live.as_ref(),
                options,
                now: jiff::Timestamp::now(),
            })
        }
    };
    // Stop asked for (Ctrl-C, SIGTERM, stdout closed): no new change starts; a second
    // Ctrl-C ends the process at once (the journal keeps what was done).
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone());
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    let out = Out::new(stop.clone());
    let quiet = cx.verbosity == Verbosity::Quiet;
    if !quiet {
        out.print(&render::text::render(&plan, cx.color));
    }
    if !plan.has_changes() {
        if let Some(connection) = connection {
            connection.close()?;
        }
        crate::cli::plan::report_failed_tenants(&plan.tenants, "planned");
        return Ok(plan.exit_code(false));
    }
    if !args.auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Refused(
                "not applying without confirmation: no terminal to ask on. Pass --auto-approve (e.g. in CI, after reviewing a saved plan)".into(),
            ));
        }
        if !confirm(cx)? {
            eprintln!("Apply cancelled; nothing was changed.");
            return Ok(exit::ERROR);
        }
    }

    let step_delay = std::env::var(STEP_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let source = Source {
        digest,
        commit: loaded.commit.clone(),
    };
    state.ensure_lineage();
    let mut journal = store.journal(&state, &lock)?;
    let mut progress = Progress::new("Applying", tenants_to_apply(&plan), cx.verbosity);
    // One whole line per event: tenants are applied in parallel.
    let say = |line: String| {
        if !quiet {
            progress.suspend(|| out.line(&line));
        }
    };
    let on_event = |event: ApplyEvent| match event {
        ApplyEvent::Started(_) => {}
        ApplyEvent::Done(a) => {
            say(format!(
                "{}: {}... done",
                render::terminal_safe(&a.address),
                verb(a.op)
            ));
            if let Some(delay) = step_delay {
                std::thread::sleep(delay);
            }
        }
        ApplyEvent::Skipped(a) => say(format!(
            "{}: skipped ({})",
            render::terminal_safe(&a.address),
            render::terminal_safe(a.blocked.as_deref().unwrap_or("blocked"))
        )),
        ApplyEvent::Failed(a, e) => {
            let line = format!(
                "{}: {}... failed: {}",
                render::terminal_safe(&a.address),
                verb(a.op),
                render::terminal_safe(&e.failure().describe())
            );
            if quiet {
                progress.suspend(|| eprintln!("{line}"));
            } else {
                say(line);
            }
        }
        ApplyEvent::TenantFinished { failed, .. } => progress.tenant_done(failed),
    };
    let control = Control {
        parallelism: graph.parallelism,
        on_event: &on_event,
        stop: &stop,
    };
    let report = match &connection {
        Some(c) => {
            let executor = EntraExecutor {
                client: c.client.as_ref(),
                runtime: &c.runtime,
                replication_wait: Duration::from_secs(120),
                stop: &stop,
            };
            apply(
                &plan,
                &mut state,
                journal.as_mut(),
                &executor,
                &source,
                &control,
            )
        }
        None => apply(
            &plan,
            &mut state,
            journal.as_mut(),
            &StateOnlyExecutor,
            &source,
            &control,
        ),
    };
    progress.finish();
    // Whatever happened, record what was done (the store gives the new serial).
    state.serial = store.write(&state, &lock)?;
    drop(lock);
    if let Some(connection) = connection {
        connection.close()?;
    }
    let outcomes = report.outcomes(&plan);
    let failed: Vec<&TenantOutcome> = outcomes.iter().filter(|t| t.outcome.is_failed()).collect();
    let done = outcomes
        .iter()
        .filter(|t| t.outcome == Outcome::Done)
        .count();
    let headline = if report.interrupted {
        "Apply interrupted"
    } else if failed.is_empty() {
        "Apply complete"
    } else {
        "Apply finished with failures"
    };
    out.line(&format!(
        "\n{headline}: {} created, {} updated, {} deleted, {} adopted{}; {} of {} tenants done, {} failed. State: {} (serial {}).",
        report.created,
        report.updated,
        report.deleted,
        report.adopted,
        if report.blocked > 0 {
            format!(", {} blocked", report.blocked)
        } else {
            String::new()
        },
        done,
        outcomes.len(),
        failed.len(),
        store.describe(),
        state.serial
    ));
    if !failed.is_empty() {
        eprintln!(
            "error: {} of {} tenants are not as declared:",
            failed.len(),
            outcomes.len()
        );
        for t in &failed {
            if let Outcome::Failed(f) = &t.outcome {
                eprintln!(
                    "  {}: {}",
                    render::terminal_safe(&t.label()),
                    render::terminal_safe(&f.describe())
                );
            }
        }
        if report.interrupted {
            eprintln!("Run the same apply again to finish: nothing done is repeated.");
        }
        return Ok(exit::ERROR);
    }
    if out.is_broken() {
        return Ok(exit::ERROR);
    }
    Ok(exit::OK)
}

/// Apply's standard output: a closed pipe (`tenantform apply | head`) asks apply to stop
/// like Ctrl-C does, instead of panicking or killing it between a change and its record.
struct Out {
    stop: std::sync::Arc<AtomicBool>,
    broken: AtomicBool,
}

impl Out {
    fn new(stop: std::sync::Arc<AtomicBool>) -> Out {
        Out {
            stop,
            broken: AtomicBool::new(false),
        }
    }

    fn print(&self, text: &str) {
        if self.broken.load(Ordering::SeqCst) {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush())
            .is_err()
        {
            self.broken.store(true, Ordering::SeqCst);
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    fn line(&self, text: &str) {
        self.print(&format!("{text}\n"));
    }

    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }
}

fn verb(op: crate::plan::Op) -> &'static str {
    match op {
        crate::plan::Op::Create => "creating",
        crate::plan::Op::Update => "updating",
        crate::plan::Op::Delete => "deleting",
        crate::plan::Op::Adopt => "adopting",
        crate::plan::Op::NoOp => "checking",
    }
}
