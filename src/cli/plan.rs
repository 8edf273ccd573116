//! `tenantform plan`: what apply would change, as text, Markdown or JSON.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::cli::common::{
    CliReporter, GraphArgs, Location, Need, PlanningArgs, TenantSelection, settings,
};
use crate::cli::progress::Verbosity;
use crate::cli::{CliError, Context, exit};
use crate::ops::Workspace;
use crate::ops::plan::{PlanCollector, PlanRequest, PlanRun};
use crate::ops::plan_file::{Both, SavedPlanOrigin, SavedPlanWriter};
use crate::plan::PlanOptions;
use crate::render;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum PlanFormat {
    /// For terminals: + create, ~ update, - delete, attribute by attribute.
    #[default]
    Text,
    /// For pull-request comments: summary table, one collapsible section per tenant.
    Markdown,
    /// Versioned JSON (schemas/plan.schema.json).
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    graph: GraphArgs,
    #[command(flatten)]
    planning: PlanningArgs,
    #[command(flatten)]
    selection: TenantSelection,
    /// Plan deletes to be carried out (without it they are listed as blocked).
    #[arg(long)]
    allow_delete: bool,
    /// Take over guests and role assignments that exist in Entra but tenantform does not own.
    #[arg(long)]
    adopt: bool,
    /// Send pending invitations again (their redemption links are reset).
    #[arg(long)]
    resend_invitations: bool,
    #[arg(long, short, value_enum, default_value_t = PlanFormat::Text)]
    output: PlanFormat,
    /// Save the plan to FILE; `tenantform apply FILE` applies exactly it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 when anything failed
    /// (even if other tenants have changes).
    #[arg(long)]
    detailed_exitcode: bool,
    /// Treat manifest warnings as errors.
    #[arg(long)]
    strict: bool,
    /// Plan only the tenants whose desired objects differ between BASE (a git commit, branch
    /// or tag) and the manifests planned; exact, including tenants a label change moves in or
    /// out of a selector. For pull requests: `--changed-since origin/main`.
    #[arg(long, value_name = "BASE")]
    changed_since: Option<String>,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let options = PlanOptions {
        allow_delete: args.allow_delete,
        adopt: args.adopt,
        resend_invitations: args.resend_invitations,
        offline: args.planning.offline,
        replication_window_secs: args.planning.replication_window.as_secs(),
        allow_mass_removal: args.planning.allow_mass_removal,
        ..PlanOptions::default()
    };
    let reporter = CliReporter::new(cx);
    let mut ws = Workspace::open(
        settings(&args.location, &args.graph, args.strict),
        &reporter,
    )?;
    // A terminal or a PR comment shows changes only: unchanged objects are counted, not kept,
    // so memory stays bounded by the tenants in flight. JSON lists them all; a saved plan is
    // written to its file as it is computed.
    let mut collect = if args.output == PlanFormat::Json {
        PlanCollector::everything()
    } else {
        PlanCollector::changes()
    };
    let mut saved = match &args.out {
        Some(out) => {
            if args.location.path == std::path::Path::new("-") {
                return Err(CliError::Usage("--out needs manifests from a path, not stdin (apply re-reads them to check they did not change)".into()));
            }
            let absolute = |p: &std::path::Path| {
                std::path::absolute(p)
                    .unwrap_or_else(|_| p.to_path_buf())
                    .display()
                    .to_string()
            };
            Some(SavedPlanWriter::create(
                out,
                SavedPlanOrigin {
                    manifests: absolute(&args.location.path),
                    state_path: absolute(&args.location.state_path()),
                    sandbox: args.graph.sandbox,
                    commit: ws.manifests.commit.clone(),
                    from_git: args.location.reference.is_some(),
                },
            )?)
        }
        None => None,
    };
    let selection = args.selection.to_ops();
    let request = PlanRequest {
        options,
        changed_since: args.changed_since.as_deref(),
        selection: &selection,
        need: Need::Plan {
            command: "plan",
            offline: args.planning.offline,
        },
    };
    match &mut saved {
        Some(saved) => crate::ops::plan::plan_into(
            &mut ws,
            request,
            &mut Both(saved, &mut collect),
            &reporter,
        )?,
        None => crate::ops::plan::plan_into(&mut ws, request, &mut collect, &reporter)?,
    };
    let PlanRun { mut plan, .. } = collect.into_run(false);
    // Signed in as a person (azure-cli): the consent each tenant still needs.
    let consent = if args.planning.offline {
        None
    } else {
        crate::ops::consent::plan(
            &mut ws,
            &selection,
            Need::Plan {
                command: "plan",
                offline: false,
            },
        )?
    };
    ws.close()?;
    if let Some(consent) = &consent {
        plan.consent = consent.changes().cloned().collect();
    }
    if let Some(out) = &args.out {
        eprintln!(
            "Saved the plan to {}; apply it with: tenantform apply {}",
            out.display(),
            out.display()
        );
    }
    match args.output {
        PlanFormat::Text if cx.verbosity == Verbosity::Quiet => {
            println!("{}", render::text::summary_line(&plan))
        }
        PlanFormat::Text => print!("{}", render::text::render(&plan, cx.color)),
        PlanFormat::Markdown => print!(
            "{}",
            render::markdown::render(&plan, render::markdown::GITHUB_COMMENT_LIMIT)
        ),
        PlanFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("plan serializes")
        ),
    }
    report_failed_tenants(&plan, "planned");
    let code = plan.exit_code(args.detailed_exitcode);
    Ok(match &consent {
        Some(c) if crate::cli::consent::report_failures(c, &[]) => exit::ERROR,
        Some(c) if c.has_changes() && args.detailed_exitcode && code == exit::OK => exit::CHANGES,
        _ => code,
    })
}

/// One stderr line per tenant that did not succeed, whatever the output format: CI logs show
/// why the job is red.
pub fn report_failed_tenants(plan: &crate::plan::Plan, what: &str) {
    let failed: Vec<_> = plan.failed_tenants().collect();
    if failed.is_empty() {
        return;
    }
    eprintln!(
        "error: {} of {} tenants could not be {what}:",
        failed.len(),
        plan.tenant_count()
    );
    for t in failed {
        if let crate::outcome::Outcome::Failed(f) = &t.outcome {
            eprintln!(
                "  {}: {}",
                render::terminal_safe(&t.label()),
                render::terminal_safe(&f.describe())
            );
        }
    }
}
