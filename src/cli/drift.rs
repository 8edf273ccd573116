//! `tenantform drift`: report every difference between the manifests and what state and
//! Entra hold, with its cause, changing nothing.

use clap::ValueEnum;

use crate::cli::common::{CliReporter, GraphArgs, Location, parse_duration, settings};
use crate::cli::notify::{Notifier, NotifyArgs};
use crate::cli::{CliError, Context, exit};
use crate::ops::Workspace;
use crate::ops::drift::{DriftRequest, DriftRun};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum DriftFormat {
    #[default]
    Text,
    Markdown,
    /// Versioned JSON (schemas/drift.schema.json).
    Json,
    /// JUnit XML: one test case per tenant, one failure per drifted object.
    Junit,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    graph: GraphArgs,
    #[command(flatten)]
    selection: crate::cli::common::TenantSelection,
    #[arg(long, short, value_enum, default_value_t = DriftFormat::Text)]
    output: DriftFormat,
    /// Report invitations still pending after this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    pending_days: i64,
    /// An object applied less than this long ago that Entra does not show yet is pending
    /// (replication), not missing.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    replication_window: std::time::Duration,
    /// The day to evaluate exception expiry and pending invitations on (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", hide = true)]
    today: Option<jiff::civil::Date>,
    #[command(flatten)]
    notify: NotifyArgs,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    // A bad --notify stops the command before it does anything.
    let notifier = args.notify.notifier()?;
    let started_at = crate::state::now_rfc3339();
    let result = check(cx, &args, &notifier);
    notifier.finish("drift", &started_at, result)
}

/// The drift check: its exit code, and for `--notify` its summary (the report as `--output
/// json` prints it, with the tenants that could not be checked as `failedTenants`).
fn check(
    cx: &Context,
    args: &Args,
    notifier: &Notifier,
) -> Result<(u8, serde_json::Value), CliError> {
    let today = crate::cli::common::today_or(args.today);
    let reporter = CliReporter::new(cx);
    let mut ws = Workspace::open(settings(&args.location, &args.graph, false), &reporter)?;
    let DriftRun { plan, report } = crate::ops::drift::drift(
        &mut ws,
        DriftRequest {
            selection: &args.selection.to_ops(),
            replication_window_secs: args.replication_window.as_secs(),
            today,
            pending_days: args.pending_days,
        },
        &reporter,
    )?;
    ws.close()?;
    match args.output {
        DriftFormat::Text => print!("{}", crate::drift::render_text(&report)),
        DriftFormat::Markdown => print!(
            "{}",
            crate::drift::render_markdown(&report, crate::render::markdown::GITHUB_COMMENT_LIMIT)
        ),
        DriftFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        ),
        DriftFormat::Junit => print!("{}", crate::drift::junit::render(&report)),
    }
    crate::cli::plan::report_failed_tenants(&plan, "checked");
    let code = if plan.failed_tenants().next().is_some() {
        exit::ERROR
    } else if report.has_drift() {
        exit::CHANGES
    } else {
        exit::OK
    };
    let summary = if notifier.is_enabled() {
        let mut summary = serde_json::to_value(&report).expect("report serializes");
        summary["failedTenants"] = plan
            .failed_tenants()
            .map(|t| {
                let message = match &t.outcome {
                    crate::outcome::Outcome::Failed(f) => f.describe(),
                    _ => String::new(),
                };
                serde_json::json!({ "tenant": t.label(), "message": message })
            })
            .collect();
        summary
    } else {
        serde_json::Value::Null
    };
    Ok((code, summary))
}
