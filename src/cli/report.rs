//! `tenantform report`: the fleet report, one self-contained HTML page (or its data as JSON).

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use crate::cli::common::{
    CliReporter, GraphArgs, Location, TenantSelection, parse_duration, settings,
};
use crate::cli::notify::{Notifier, NotifyArgs};
use crate::cli::{CliError, Context, exit};
use crate::licences::FindingOptions;
use crate::ops::Workspace;
use crate::ops::report::{ReportRequest, fleet_report};
use crate::render::terminal_safe;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportOutput {
    /// One HTML file: styles, script and charts inline, nothing fetched from anywhere.
    #[default]
    Html,
    /// The same data, for dashboards.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    graph: GraphArgs,
    #[command(flatten)]
    selection: TenantSelection,
    /// Where to write the report (`-`: standard output). Written whole or not at all (a
    /// failed run leaves an earlier report as it was), readable by its owner only.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[arg(long, short, value_enum, default_value_t = ReportOutput::Html)]
    output: ReportOutput,
    /// Report invitations still pending after this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    pending_days: i64,
    /// An object applied less than this long ago that Entra does not show yet is pending
    /// (replication), not missing.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    replication_window: std::time::Duration,
    /// Report paid subscriptions renewing or ending within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    ending_within: i64,
    /// Report trials ending within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    trial_within: i64,
    /// How many open Secure Score controls to list per tenant.
    #[arg(long, value_name = "N", default_value_t = 3)]
    top: usize,
    /// The day to judge dates on (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", hide = true)]
    today: Option<jiff::civil::Date>,
    #[command(flatten)]
    notify: NotifyArgs,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let notifier = args.notify.notifier()?;
    let started_at = crate::state::now_rfc3339();
    let result = make(cx, &args, &notifier);
    notifier.finish("report", &started_at, result)
}

fn make(
    cx: &Context,
    args: &Args,
    notifier: &Notifier,
) -> Result<(u8, serde_json::Value), CliError> {
    let today = crate::cli::common::today_or(args.today);
    let reporter = CliReporter::new(cx);
    let mut ws = Workspace::open(settings(&args.location, &args.graph, false), &reporter)?;
    let run = fleet_report(
        &mut ws,
        ReportRequest {
            selection: &args.selection.to_ops(),
            today,
            pending_days: args.pending_days,
            replication_window_secs: args.replication_window.as_secs(),
            licence_options: FindingOptions {
                today,
                ending_within_days: args.ending_within,
                trial_within_days: args.trial_within,
            },
            top_controls: args.top,
        },
        &reporter,
    )?;
    ws.close()?;
    let bytes = match args.output {
        ReportOutput::Html => crate::report::html::render(&run.report).into_bytes(),
        ReportOutput::Json => {
            let mut json = serde_json::to_vec_pretty(&run.report).expect("a report serializes");
            json.push(b'\n');
            json
        }
    };
    if args.out.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)
            .and_then(|_| out.flush())
            .map_err(|source| CliError::Io {
                path: "stdout".into(),
                source,
            })?;
    } else {
        write_whole(&args.out, &bytes)?;
        eprintln!(
            "Wrote {} ({} tenants, {} KiB).",
            terminal_safe(&args.out.display().to_string()),
            run.report.tenants.len(),
            bytes.len().div_ceil(1024)
        );
    }
    for (tenant, why) in &run.unread {
        eprintln!("error: {}: {}", terminal_safe(tenant), terminal_safe(why));
    }
    let code = if run.unread.is_empty() {
        exit::OK
    } else {
        eprintln!(
            "error: {} of {} tenants could not be read; the report shows them as not read.",
            run.unread.len(),
            run.report.tenants.len()
        );
        exit::ERROR
    };
    let summary = if notifier.is_enabled() {
        serde_json::json!({
            "overview": run.report.overview,
            "unread": run.unread.iter().map(|(t, why)| serde_json::json!({"tenant": t, "message": why})).collect::<Vec<_>>(),
            "out": args.out.display().to_string(),
        })
    } else {
        serde_json::Value::Null
    };
    Ok((code, summary))
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so a reader never
/// sees half a report. Owner-only, as state is: the page names admins without MFA and who
/// holds privileged roles (share it on purpose: chmod, or publish it somewhere with access
/// control).
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
