//! `tenantform licenses`: each tenant's licences read live, summed up by SKU, with the
//! findings an MSP acts on; a table, CSV for invoicing, or JSON.

use std::io::Write;

use clap::ValueEnum;

use crate::cli::common::{CliReporter, GraphArgs, Location, report_unread, settings};
use crate::cli::{CliError, Context};
use crate::licences::FindingOptions;
use crate::ops::Workspace;
use crate::render::licences::{
    csv_header, csv_rows, organization_csv_header, organization_csv_rows, organization_table_block,
    table_block,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum LicencesOutput {
    /// A block per tenant: its SKUs aligned, its findings under them.
    #[default]
    Table,
    /// A row per tenant and SKU (RFC 4180, stable columns; cells a spreadsheet would run
    /// as formulas are defused).
    Csv,
    /// Every tenant with its SKUs, findings and licensed users.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum LicencesBy {
    #[default]
    Sku,
    Organization,
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
    #[arg(long, short, value_enum, default_value_t = LicencesOutput::Table)]
    output: LicencesOutput,
    /// `sku`: each tenant's SKUs and findings. `organization`: seats per organization, from
    /// the contacts each licensed user is synced to (EndUserSync); licensed users who are no
    /// contact are counted apart (`routed` false), so a tenant's rows add up to its assigned
    /// seats but those of soft-deleted users (a finding of their own). With
    /// `--output csv`: one row per tenant, organization and SKU, for invoicing.
    #[arg(long, value_enum, default_value_t = LicencesBy::Sku)]
    by: LicencesBy,
    /// Report paid subscriptions renewing or ending within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    ending_within: i64,
    /// Report trials ending within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    trial_within: i64,
    /// The day to judge dates on (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", hide = true)]
    today: Option<jiff::civil::Date>,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let options = FindingOptions {
        today: crate::cli::common::today_or(args.today),
        ending_within_days: args.ending_within,
        trial_within_days: args.trial_within,
    };
    let reporter = CliReporter::new(cx);
    let mut ws = Workspace::open(settings(&args.location, &args.graph, false), &reporter)?;
    let run = crate::ops::licences::licences(
        &mut ws,
        &args.tenants,
        &options,
        args.by == LicencesBy::Organization,
        &reporter,
    )?;
    ws.close()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let by_organization = args.by == LicencesBy::Organization;
    let written = match args.output {
        LicencesOutput::Table if by_organization => {
            run.tenants.iter().enumerate().try_for_each(|(i, t)| {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                out.write_all(organization_table_block(t).as_bytes())
            })
        }
        LicencesOutput::Csv if by_organization => out
            .write_all(organization_csv_header().as_bytes())
            .and_then(|_| {
                run.tenants
                    .iter()
                    .try_for_each(|t| out.write_all(organization_csv_rows(t).as_bytes()))
            }),
        LicencesOutput::Table => run.tenants.iter().enumerate().try_for_each(|(i, t)| {
            if i > 0 {
                out.write_all(b"\n")?;
            }
            out.write_all(table_block(t).as_bytes())
        }),
        LicencesOutput::Csv => out.write_all(csv_header().as_bytes()).and_then(|_| {
            run.tenants
                .iter()
                .try_for_each(|t| out.write_all(csv_rows(t).as_bytes()))
        }),
        LicencesOutput::Json => {
            let json = serde_json::to_string_pretty(&run.tenants).expect("licences serialize");
            writeln!(out, "{json}")
        }
    };
    written
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
