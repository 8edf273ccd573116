//! `tenantform plan`: what apply would change, as text, Markdown or JSON.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::cli::common::{
    GraphArgs, Location, Need, PlanningArgs, TenantSelection, connect, finish_live_read,
    load_manifests, narrow, start_live_read, write_private_file,
};
use crate::cli::progress::Verbosity;
use crate::cli::{CliError, Context};
use crate::plan::{Plan, PlanInput, PlanOptions, SavedPlan, plan};
use crate::render;
use crate::state::StateStore;

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

/// A computed plan and the commit its manifests came from.
pub struct MadePlan {
    pub plan: Plan,
    pub commit: Option<String>,
    pub model: crate::model::DesiredModel,
    /// Still open, for callers that read more (drift reads the partner's customers); close it.
    pub connection: Option<crate::cli::common::Connection>,
    /// What Entra held when the plan was made (drift reads privileged access from it).
    pub live: Option<crate::live::LiveSnapshot>,
}

/// What a plan is asked for: where, against what, for which tenants.
pub struct PlanRequest<'a> {
    pub location: &'a Location,
    pub graph: &'a GraphArgs,
    pub options: PlanOptions,
    /// Manifest warnings are errors.
    pub strict: bool,
    pub changed_since: Option<&'a str>,
    pub need: Need<'a>,
    pub selection: &'a TenantSelection,
}

/// Loads manifests, state and (when connected) live Entra, and computes the plan.
pub fn make_plan(cx: &Context, request: PlanRequest<'_>) -> Result<MadePlan, CliError> {
    let PlanRequest {
        location,
        graph,
        mut options,
        strict,
        changed_since,
        need,
        selection,
    } = request;
    let loaded = load_manifests(cx, &location.path, location.reference.as_deref(), strict)?;
    let model = loaded.model;
    let selected = selection.resolve(&model)?;
    if let Some(base) = changed_since {
        // The base may not validate (it is history); its model is still what was wanted then.
        let (sources, diags, _) = crate::git::load_at(&location.path, base)?;
        let base_model = crate::validate_sources(&sources, diags).model;
        let changed = crate::plan::changed_tenants(&base_model, &model);
        if cx.verbosity > Verbosity::Quiet {
            eprintln!(
                "--changed-since {base}: {} of {} tenants changed",
                changed.len(),
                model.tenants.len()
            );
        }
        options.only_tenants = Some(changed);
    }
    options.only_tenants = narrow(options.only_tenants.take(), selected);
    let graph_model: std::borrow::Cow<crate::model::DesiredModel> = match &options.only_tenants {
        // Read only the tenants in scope.
        Some(only) => {
            let mut scoped = model.clone();
            for guest in scoped.guests.values_mut() {
                guest.tenants.retain(|t| only.contains(t));
            }
            for ra in scoped.role_assignments.values_mut() {
                ra.tenants.retain(|t| only.contains(t));
            }
            std::borrow::Cow::Owned(scoped)
        }
        None => std::borrow::Cow::Borrowed(&model),
    };
    let connection = connect(graph, &graph_model, &location.state_path(), need)?;
    // Entra is read in the background while state loads.
    let reading = connection.as_ref().map(|c| {
        let every_mapped = matches!(need, Need::Always { .. });
        start_live_read(
            cx,
            c,
            graph,
            &graph_model,
            every_mapped,
            options.only_tenants.as_ref(),
        )
    });
    let store = location.store();
    let state = store.load()?;
    let live = connection
        .as_ref()
        .zip(reading)
        .map(|(c, r)| finish_live_read(c, graph, r, &graph_model, &state));
    if state.recovered_changes > 0 && cx.verbosity > Verbosity::Quiet {
        eprintln!(
            "note: {} changes from an interrupted apply were recovered from {}; the next apply records them",
            state.recovered_changes,
            store.describe()
        );
    }
    let plan = plan(&PlanInput {
        desired: &model,
        state: &state,
        live: live.as_ref(),
        options,
        now: jiff::Timestamp::now(),
    });
    Ok(MadePlan {
        plan,
        commit: loaded.commit,
        model,
        connection,
        live,
    })
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let options = PlanOptions {
        allow_delete: args.allow_delete,
        adopt: args.adopt,
        resend_invitations: args.resend_invitations,
        offline: args.planning.offline,
        replication_window_secs: args.planning.replication_window.as_secs(),
        ..PlanOptions::default()
    };
    let MadePlan {
        plan,
        commit,
        connection,
        ..
    } = make_plan(
        cx,
        PlanRequest {
            location: &args.location,
            graph: &args.graph,
            options,
            strict: args.strict,
            changed_since: args.changed_since.as_deref(),
            need: Need::Plan {
                command: "plan",
                offline: args.planning.offline,
            },
            selection: &args.selection,
        },
    )?;
    if let Some(connection) = connection {
        connection.close()?;
    }
    if let Some(out) = &args.out {
        let absolute = |p: &std::path::Path| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        if args.location.path == std::path::Path::new("-") {
            return Err(CliError::Usage("--out needs manifests from a path, not stdin (apply re-reads them to check they did not change)".into()));
        }
        let saved = SavedPlan {
            manifests: absolute(&args.location.path),
            state_path: absolute(&args.location.state_path()),
            sandbox: args.graph.sandbox,
            commit: commit.clone(),
            from_git: args.location.reference.is_some(),
            plan: plan.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&saved).expect("plan serializes");
        write_private_file(out, &bytes)?;
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
    report_failed_tenants(&plan.tenants, "planned");
    Ok(plan.exit_code(args.detailed_exitcode))
}

/// One stderr line per tenant that did not succeed, whatever the output format: CI logs show
/// why the job is red.
pub fn report_failed_tenants(tenants: &[crate::outcome::TenantOutcome], what: &str) {
    let failed: Vec<_> = tenants.iter().filter(|t| t.outcome.is_failed()).collect();
    if failed.is_empty() {
        return;
    }
    eprintln!(
        "error: {} of {} tenants could not be {what}:",
        failed.len(),
        tenants.len()
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
