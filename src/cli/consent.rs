//! `tenantform consent-url`: admin-consent links to send each customer's administrator.

use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::common::{GraphArgs, Location, connect_required, load_manifests};
use crate::cli::{CliError, Context, OutputFormat, exit};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["tenant", "all_unconsented"])))]
pub struct Args {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    graph: GraphArgs,
    /// A tenant (its stable name) to print the link for; repeat for several.
    #[arg(long, value_name = "NAME")]
    tenant: Vec<String>,
    /// Every mapped tenant where the app is not consented yet (found by asking for a token).
    #[arg(long)]
    all_unconsented: bool,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Link {
    tenant: String,
    microsoft_tenant_id: String,
    consent_url: String,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let model = load_manifests(
        cx,
        &args.location.path,
        args.location.reference.as_deref(),
        false,
    )?
    .fleet
    .catalog;
    let connection = connect_required(
        &args.graph,
        &model,
        &args.location.state_path(),
        "consent-url",
    )?;
    let mapped = |name: &str| -> Result<(String, String), CliError> {
        let t = model
            .tenants
            .get(name)
            .ok_or_else(|| CliError::Usage(format!("no tenant `{name}` in the manifests")))?;
        let id = t
            .microsoft_tenant_id
            .clone()
            .ok_or_else(|| CliError::Usage(format!("tenant `{name}` has no microsoftTenantId")))?;
        Ok((name.to_string(), id))
    };
    // Tenants whose token failed for another reason: neither consented nor not, as far as we
    // know; listed, and the command fails.
    let mut unchecked: Vec<(String, crate::outcome::Failure)> = Vec::new();
    let targets: Vec<(String, String)> = if args.all_unconsented {
        let client = connection.client.clone();
        let all: Vec<(String, String)> = model
            .tenants
            .values()
            .filter_map(|t| t.microsoft_tenant_id.clone().map(|id| (t.name.clone(), id)))
            .collect();
        let probed: Vec<(String, String, Option<crate::graph::GraphClientError>)> =
            connection.runtime.block_on(
                futures_util::stream::iter(all)
                    .map(|(name, id)| {
                        let client = client.clone();
                        async move {
                            let error = client.token(&id).await.err();
                            (name, id, error)
                        }
                    })
                    .buffer_unordered(args.graph.parallelism.max(1))
                    .collect(),
            );
        let mut unconsented = Vec::new();
        for (name, id, error) in probed {
            match error {
                Some(e) if e.is_consent_needed() => unconsented.push((name, id)),
                Some(e) => unchecked.push((name, e.failure())),
                None => {}
            }
        }
        unchecked.sort_by(|a, b| a.0.cmp(&b.0));
        unconsented
    } else {
        args.tenant
            .iter()
            .map(|n| mapped(n))
            .collect::<Result<_, _>>()?
    };
    let mut links: Vec<Link> = targets
        .into_iter()
        .map(|(tenant, id)| Link {
            consent_url: connection.client.config().consent_url(
                &id,
                &args.graph.consent_redirect_uri,
                &tenant,
            ),
            tenant,
            microsoft_tenant_id: id,
        })
        .collect();
    links.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&links).expect("links serialize")
        ),
        OutputFormat::Text if links.is_empty() && unchecked.is_empty() => {
            println!("Every mapped tenant has consented.")
        }
        OutputFormat::Text => {
            for l in &links {
                println!(
                    "{}  {}\n  {}",
                    crate::render::terminal_safe(&l.tenant),
                    l.microsoft_tenant_id,
                    l.consent_url
                );
            }
        }
    }
    connection.close()?;
    if unchecked.is_empty() {
        return Ok(exit::OK);
    }
    eprintln!(
        "error: {} tenants could not be checked for consent:",
        unchecked.len()
    );
    for (tenant, failure) in &unchecked {
        eprintln!(
            "  {}: {}",
            crate::render::terminal_safe(tenant),
            crate::render::terminal_safe(&failure.describe())
        );
    }
    Ok(exit::ERROR)
}

/// The consent a person's apply would make, as a plan section (empty when none).
pub fn render_plan(plan: &crate::ops::consent::ConsentPlan, color: bool) -> String {
    let changes: Vec<crate::consent::ConsentChange> = plan.changes().cloned().collect();
    crate::render::text::consent_section(&changes, color)
}

/// stderr lines for tenants whose consent could not be read or made; whether there were any.
pub fn report_failures(
    plan: &crate::ops::consent::ConsentPlan,
    done: &[crate::ops::consent::ConsentDone],
) -> bool {
    use crate::render::terminal_safe;
    let mut lines = Vec::new();
    for t in plan.failed() {
        if let Some(f) = &t.failure {
            lines.push(format!("  {}: consent: {}", t.label(), f.describe()));
        }
    }
    for d in done {
        if let Some(f) = &d.failure {
            lines.push(format!(
                "  {} ({}): consent: {}",
                d.tenant,
                d.display_name,
                f.describe()
            ));
        }
    }
    if lines.is_empty() {
        return false;
    }
    eprintln!(
        "error: {} tenant(s) without the consent they need:",
        lines.len()
    );
    for l in lines {
        eprintln!("{}", terminal_safe(&l));
    }
    true
}
