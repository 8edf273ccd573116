//! `tenantform drift`: report every difference between the manifests and what state and
//! Entra hold, with its cause, changing nothing.

use clap::ValueEnum;

use crate::cli::common::{GraphArgs, Location, Need, parse_duration};
use crate::cli::plan::{MadePlan, PlanRequest, make_plan};
use crate::cli::{CliError, Context, exit};
use crate::plan::PlanOptions;

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
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let options = PlanOptions {
        allow_delete: true,
        replication_window_secs: args.replication_window.as_secs(),
        ..PlanOptions::default()
    };
    let MadePlan {
        plan,
        commit,
        model,
        connection,
        live,
    } = make_plan(
        cx,
        PlanRequest {
            location: &args.location,
            graph: &args.graph,
            options,
            strict: false,
            changed_since: None,
            need: Need::Always { command: "drift" },
            selection: &args.selection,
        },
    )?;
    let today = args.today.unwrap_or_else(|| {
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
    });
    let customers = partner_customers(connection.as_ref())?;
    if let Some(connection) = connection {
        connection.close()?;
    }
    let report = crate::drift::report(
        &plan,
        &model,
        commit,
        today,
        args.pending_days,
        customers.as_deref(),
        live.as_ref(),
    );
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
    crate::cli::plan::report_failed_tenants(&plan.tenants, "checked");
    Ok(if plan.failed_tenants().next().is_some() {
        exit::ERROR
    } else if report.has_drift() {
        exit::CHANGES
    } else {
        exit::OK
    })
}

/// The partner's customers, when Graph is configured with a partner (home) tenant.
fn partner_customers(
    connection: Option<&crate::cli::common::Connection>,
) -> Result<Option<Vec<crate::drift::PartnerCustomer>>, CliError> {
    let Some(connection) = connection else {
        return Ok(None);
    };
    let Some(home) = connection.client.config().home_tenant_id.clone() else {
        return Ok(None);
    };
    let contracts = connection
        .runtime
        .block_on(connection.client.get_all(&home, "/contracts"))
        .map_err(|e| CliError::Usage(format!("reading the partner's customers: {e}")))?;
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok(Some(
        contracts
            .iter()
            .map(|c| crate::drift::PartnerCustomer {
                customer_id: text(c, "customerId"),
                display_name: text(c, "displayName"),
                domain: text(c, "defaultDomainName"),
            })
            .collect(),
    ))
}
