//! `tenantform apply`: carry out a plan (computed now, or saved by `plan --out`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::ApplyEvent;
use crate::cli::common::{CliReporter, GraphArgs, Location, LockArgs, PlanningArgs, settings};
use crate::cli::progress::Verbosity;
use crate::cli::{CliError, Context, exit};
use crate::ops::apply::{Approval, PlanSource, check_saved_commit};
use crate::ops::{Phase, Reporter, Workspace};
use crate::outcome::{Outcome, TenantOutcome};
use crate::plan::{PLAN_MARKER, Plan, PlanOptions, SavedPlan};
use crate::render;
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

fn confirm() -> Result<bool, CliError> {
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
    let command = if import_only { "import" } else { "apply" };
    let saved = read_saved_plan(&args.path).transpose()?;
    if import_only && saved.is_some() {
        return Err(CliError::Usage(
            "import plans for itself: give it the manifests, not a saved plan".into(),
        ));
    }
    let mut graph = args.graph.clone();
    let location = match &saved {
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
            check_saved_commit(saved)?;
            graph.sandbox |= saved.sandbox;
            Location {
                path: PathBuf::from(&saved.manifests),
                state: Some(
                    args.state
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(&saved.state_path)),
                ),
                reference: saved.commit.clone().filter(|_| saved.from_git),
            }
        }
        None => Location {
            path: args.path.clone(),
            state: args.state.clone(),
            reference: args.reference.clone(),
        },
    };
    let mut settings = settings(&location, &graph, args.strict);
    settings.lock_timeout = args.lock.lock_timeout;
    settings.apply_step_delay = std::env::var(STEP_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let selection = args.selection.to_ops();
    let source = match saved {
        Some(saved) => PlanSource::Saved(Box::new(saved)),
        None => PlanSource::Compute {
            options: PlanOptions {
                allow_delete: args.allow_delete,
                adopt: args.adopt,
                resend_invitations: args.resend_invitations,
                only_tenants: None,
                import_only,
                offline: args.planning.offline,
                replication_window_secs: args.planning.replication_window.as_secs(),
                allow_mass_removal: args.planning.allow_mass_removal,
                only_kinds: None,
            },
            selection: &selection,
            changed_since: None,
        },
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
    let reporter = ApplyReporter {
        inner: CliReporter::new(cx),
        out: &out,
        quiet,
    };
    let mut ws = Workspace::open(settings, &reporter.inner)?;
    // Signed in as a person (azure-cli) with AZURE_CLIENT_ID set: first the consent each
    // tenant needs (tenantform's app's service principal and its Microsoft Graph grants).
    let consent_failed = if args.planning.offline {
        false
    } else {
        consent_first(
            &mut ws,
            &selection,
            command,
            args.auto_approve,
            &out,
            cx,
            &stop,
        )?
    };
    let mut approve = |plan: &Plan| {
        if !quiet {
            out.print(&render::text::render(plan, cx.color));
        }
        if args.auto_approve {
            return Approval::Apply;
        }
        if !std::io::stdin().is_terminal() {
            return Approval::Refused(
                "not applying without confirmation: no terminal to ask on. Pass --auto-approve (e.g. in CI, after reviewing a saved plan)".into(),
            );
        }
        match confirm() {
            Ok(true) => Approval::Apply,
            _ => Approval::Cancelled,
        }
    };
    let run = crate::ops::apply::apply(&mut ws, source, command, &mut approve, &stop, &reporter)?;
    ws.close()?;
    let code = finish(cx, &run, &out, quiet)?;
    Ok(if consent_failed { exit::ERROR } else { code })
}

/// Plans and makes the consent a person's apply needs; whether a tenant's consent failed
/// (named on stderr). The person's other changes do not depend on the app's consent, so they
/// are applied all the same.
fn consent_first(
    ws: &mut Workspace,
    selection: &crate::ops::Selection,
    command: &str,
    auto_approve: bool,
    out: &Out,
    cx: &Context,
    stop: &std::sync::Arc<AtomicBool>,
) -> Result<bool, CliError> {
    let quiet = cx.verbosity == Verbosity::Quiet;
    let need = crate::ops::Need::Plan {
        command,
        offline: false,
    };
    let Some(plan) = crate::ops::consent::plan(ws, selection, need)? else {
        return Ok(false);
    };
    if !plan.has_changes() {
        return Ok(crate::cli::consent::report_failures(&plan, &[]));
    }
    if !quiet {
        out.print(&crate::cli::consent::render_plan(&plan, cx.color));
    }
    if !auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Refused(
                "not consenting without confirmation: no terminal to ask on. Pass --auto-approve"
                    .into(),
            ));
        }
        if !matches!(confirm(), Ok(true)) {
            return Err(CliError::Refused(
                "consent cancelled; nothing was changed".into(),
            ));
        }
    }
    let done = crate::ops::consent::apply(ws, &plan, stop);
    for made in done.iter().flat_map(|d| &d.made).filter(|_| !quiet) {
        out.line(&format!("{}: created", render::terminal_safe(made)));
    }
    Ok(crate::cli::consent::report_failures(&plan, &done))
}

/// The apply's summary and exit code.
fn finish(
    cx: &Context,
    run: &crate::ops::apply::ApplyRun,
    out: &Out,
    quiet: bool,
) -> Result<u8, CliError> {
    let Some(report) = &run.report else {
        return match &run.approval {
            Approval::Refused(why) => Err(CliError::Refused(why.clone())),
            Approval::Cancelled => {
                eprintln!("Apply cancelled; nothing was changed.");
                Ok(exit::ERROR)
            }
            Approval::Apply => {
                // Nothing to do: the plan was shown only if it had changes, so show it now.
                if !quiet {
                    out.print(&render::text::render(&run.plan, cx.color));
                }
                crate::cli::plan::report_failed_tenants(&run.plan, "planned");
                Ok(run.plan.exit_code(false))
            }
        };
    };
    let outcomes = &run.outcomes;
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
        "\n{headline}: {} created, {} updated, {} deleted, {} adopted{}{}; {} of {} tenants done, {} failed. State: {} (serial {}).",
        report.created,
        report.updated,
        report.deleted,
        report.adopted,
        if report.archived > 0 {
            format!(", {} archived", report.archived)
        } else {
            String::new()
        },
        if report.blocked > 0 {
            format!(", {} blocked", report.blocked)
        } else {
            String::new()
        },
        done,
        run.tenant_count(),
        failed.len(),
        run.store,
        run.serial
    ));
    if !failed.is_empty() {
        eprintln!(
            "error: {} of {} tenants are not as declared:",
            failed.len(),
            run.tenant_count()
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

/// Apply's terminal reporting: the progress bar and notes, plus one whole line per change
/// (tenants are applied in parallel).
struct ApplyReporter<'a> {
    inner: CliReporter<'a>,
    out: &'a Out,
    quiet: bool,
}

impl ApplyReporter<'_> {
    fn say(&self, line: String) {
        if !self.quiet {
            self.inner.suspend(|| self.out.line(&line));
        }
    }
}

impl Reporter for ApplyReporter<'_> {
    fn diagnostics(
        &self,
        sources: &crate::source::SourceSet,
        diagnostics: &[crate::diagnostic::Diagnostic],
    ) {
        self.inner.diagnostics(sources, diagnostics)
    }
    fn note(&self, note: &crate::ops::Note) {
        self.inner.note(note)
    }
    fn phase_started(&self, phase: Phase, tenants: usize) {
        self.inner.phase_started(phase, tenants)
    }
    fn phase_grew(&self, phase: Phase, more: usize) {
        self.inner.phase_grew(phase, more)
    }
    fn tenant_done(&self, phase: Phase, failed: bool) {
        self.inner.tenant_done(phase, failed)
    }
    fn phase_finished(&self, phase: Phase) {
        self.inner.phase_finished(phase)
    }
    fn apply_event(&self, event: &ApplyEvent<'_>) {
        match event {
            ApplyEvent::Started(_) | ApplyEvent::TenantFinished { .. } => {}
            ApplyEvent::Done(a) => self.say(format!(
                "{}: {}... done",
                render::terminal_safe(&a.address),
                verb(a.op)
            )),
            ApplyEvent::Skipped(a) => self.say(format!(
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
                if self.quiet {
                    self.inner.suspend(|| eprintln!("{line}"));
                } else {
                    self.say(line);
                }
            }
        }
    }
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
        crate::plan::Op::Archive => "archiving",
        crate::plan::Op::NoOp => "checking",
    }
}
