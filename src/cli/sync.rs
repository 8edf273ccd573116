//! `tenantform sync`: the end-user sync as a scheduled job, once or as a service.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::common::{CliReporter, GraphArgs, Location, LockArgs, TenantSelection, settings};
use crate::cli::notify::{Notifier, NotifyArgs};
use crate::cli::{CliError, Context, exit};
use crate::ops::Workspace;
use crate::ops::sync::{SyncRequest, SyncSummary, sync};
use crate::render;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    graph: GraphArgs,
    #[command(flatten)]
    selection: TenantSelection,
    #[command(flatten)]
    lock: LockArgs,
    /// Archive contacts even when a round would archive more than 10% (and at least 5) of a
    /// tenant's; without it such a tenant is held back and the round fails, with the numbers.
    #[arg(long)]
    allow_mass_removal: bool,
    /// Keep running, a round every DURATION (e.g. 1h, 15m), until SIGTERM or Ctrl-C: the
    /// round in progress stops between changes (nothing half-written), and the process ends
    /// with that round's exit code. A round that outlasts DURATION is followed at once by the
    /// next (rounds never overlap); a failed tenant is simply tried again next round.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::common::parse_duration)]
    every: Option<Duration>,
    /// Also keep which contact holds which licence (shown by `contacts`): a tenant whose
    /// licences were last read more than DURATION ago (e.g. 24h) has its users read again in
    /// full, since users/delta does not track licences. Needs Organization.Read.All (or
    /// LicenseAssignment.Read.All) and User.Read.All; a tenant that cannot be read fails the
    /// round by name.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::common::parse_duration)]
    licences_every: Option<Duration>,
    /// `text`: a line per round; `json`: one JSON object per round (for schedulers and PSAs).
    #[arg(long, short, value_enum, default_value_t = SyncFormat::Text)]
    output: SyncFormat,
    // With --every, one notification per round.
    #[command(flatten)]
    notify: NotifyArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncFormat {
    Text,
    Json,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    // A bad --notify stops the command before it does anything.
    let notifier = args.notify.notifier()?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once (journals keep what was done).
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone());
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    let mut code;
    loop {
        let started = Instant::now();
        code = round(cx, &args, &stop, &notifier)?;
        let Some(every) = args.every else {
            return Ok(code);
        };
        // Sleep until the next round, waking for a stop.
        while started.elapsed() < every {
            if stop.load(Ordering::SeqCst) {
                return Ok(code);
            }
            std::thread::sleep(Duration::from_millis(200).min(every));
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(code);
        }
    }
}

/// One round: manifests loaded afresh (a service picks up what was merged since), contacts
/// planned and applied, the summary printed (and posted with `--notify`).
fn round(
    cx: &Context,
    args: &Args,
    stop: &AtomicBool,
    notifier: &Notifier,
) -> Result<u8, CliError> {
    let started_at = crate::state::now_rfc3339();
    let mut settings = settings(&args.location, &args.graph, false);
    settings.lock_timeout = args.lock.lock_timeout;
    let reporter = CliReporter::new(cx);
    let result = (|| {
        let mut ws = Workspace::open(settings, &reporter)?;
        let run = sync(
            &mut ws,
            SyncRequest {
                selection: &args.selection.to_ops(),
                allow_mass_removal: args.allow_mass_removal,
                licences_every: args.licences_every,
            },
            stop,
            &reporter,
        )?;
        ws.close()?;
        Ok::<_, crate::ops::OpsError>(run)
    })();
    let run = match result {
        Ok(run) => run,
        // A service keeps going: the error is this round's, said on stderr and in the
        // summary; the next round tries again.
        Err(e) if args.every.is_some() => {
            let e = CliError::from(e);
            eprintln!("error: {}", render::terminal_safe(&e.to_string()));
            if args.output == SyncFormat::Json {
                let line = serde_json::json!({
                    "startedAt": started_at,
                    "finishedAt": crate::state::now_rfc3339(),
                    "error": e.to_string(),
                    "exitCode": exit::ERROR,
                });
                println!("{line}");
            }
            let summary = serde_json::json!({ "error": e.to_string() });
            notifier.send("sync", &started_at, exit::ERROR, &summary);
            return Ok(exit::ERROR);
        }
        Err(e) => return notifier.finish("sync", &started_at, Err(e.into())),
    };
    let summary = SyncSummary::of(&run, started_at, crate::state::now_rfc3339());
    let mut stdout = std::io::stdout().lock();
    match args.output {
        SyncFormat::Json => {
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string(&summary).expect("a summary serializes")
            );
        }
        SyncFormat::Text => {
            let _ = writeln!(
                stdout,
                "Sync {}: {} tenants; {} contacts created, {} updated, {} archived{}{}; {} failed.",
                if summary.interrupted {
                    "interrupted"
                } else if summary.failed.is_empty() {
                    "complete"
                } else {
                    "finished with failures"
                },
                summary.tenants,
                summary.created,
                summary.updated,
                summary.archived,
                if summary.blocked > 0 {
                    format!(", {} held back", summary.blocked)
                } else {
                    String::new()
                },
                if summary.licences_refreshed > 0 {
                    format!("; licences read for {} tenants", summary.licences_refreshed)
                } else {
                    String::new()
                },
                summary.failed.len()
            );
        }
    }
    let _ = stdout.flush();
    for f in &summary.failed {
        eprintln!(
            "error: {}: {}",
            render::terminal_safe(&f.tenant),
            render::terminal_safe(&f.message)
        );
    }
    if notifier.is_enabled() {
        let json = serde_json::to_value(&summary).expect("a summary serializes");
        notifier.send("sync", &summary.started_at, summary.exit_code, &json);
    }
    Ok(summary.exit_code)
}
