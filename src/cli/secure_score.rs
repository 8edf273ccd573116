//! `tenantform secure-score`: each tenant's Secure Score read live, how it moved over 7, 30
//! and 90 days, the open controls worth the most points, and the fleet's mean; beside it the
//! tenant's sign-in posture (MFA registration, admins without MFA, security defaults).

use std::io::Write;

use clap::ValueEnum;

use crate::cli::common::{CliReporter, GraphArgs, Location, report_unread, settings};
use crate::cli::{CliError, Context};
use crate::ops::Workspace;
use crate::render::secure_score::{csv_header, csv_row, table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ScoreOutput {
    /// A row per tenant with its sign-in posture, then each tenant's top open controls and
    /// admins without MFA.
    #[default]
    Table,
    /// A row per tenant (RFC 4180, stable columns).
    Csv,
    /// Every tenant with its trend, comparative averages, open controls (with remediation) and
    /// posture.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    graph: GraphArgs,
    /// Only this tenant (its stable name; repeat for several).
    #[arg(long = "tenant", value_name = "NAME")]
    tenants: Vec<String>,
    #[arg(long, short, value_enum, default_value_t = ScoreOutput::Table)]
    output: ScoreOutput,
    /// How many open controls to list per tenant.
    #[arg(long, value_name = "N", default_value_t = 3)]
    top: usize,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let reporter = CliReporter::new(cx);
    let mut ws = Workspace::open(settings(&args.location, &args.graph, false), &reporter)?;
    let run = crate::ops::secure_score::secure_scores(&mut ws, &args.tenants, args.top, &reporter)?;
    ws.close()?;
    let text = match args.output {
        ScoreOutput::Table => table(&run.tenants, run.fleet_percentage),
        ScoreOutput::Csv => {
            let mut text = csv_header();
            for t in &run.tenants {
                text.push_str(&csv_row(t));
            }
            text
        }
        ScoreOutput::Json => {
            let mut json = serde_json::to_string_pretty(&serde_json::json!({
                "tenants": run.tenants,
                "fleetPercentage": run.fleet_percentage,
            }))
            .expect("scores serialize");
            json.push('\n');
            json
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|source| CliError::Io {
            path: "stdout".into(),
            source,
        })?;
    Ok(report_unread(
        &run.unmapped,
        &run.failures,
        run.tenants.len(),
    ))
}
