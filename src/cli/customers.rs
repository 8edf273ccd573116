//! `tenantform customers`: the partner's customers (`/contracts`) and which are mapped.

use serde::Serialize;

use crate::cli::common::{GraphArgs, Location, connect_required, load_manifests};
use crate::cli::{CliError, Context, OutputFormat, exit};
use crate::render::terminal_safe;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    graph: GraphArgs,
    /// Only customers whose name or domain contains this text (any case).
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Only customers not mapped to a tenant in the manifests.
    #[arg(long)]
    unmapped: bool,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Customer {
    customer_id: String,
    display_name: String,
    default_domain_name: String,
    contract_type: String,
    /// The manifests' tenant mapped to it, if any.
    tenant: Option<String>,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let model = load_manifests(
        cx,
        &args.location.path,
        args.location.reference.as_deref(),
        false,
    )?
    .model;
    let connection = connect_required(
        &args.graph,
        &model,
        &args.location.state_path(),
        "customers",
    )?;
    let home = connection
        .client
        .config()
        .home_tenant_id
        .clone()
        .ok_or_else(|| {
            CliError::Usage(
                "set AZURE_TENANT_ID to the partner tenant whose customers to list".into(),
            )
        })?;
    let contracts = connection
        .runtime
        .block_on(connection.client.get_all(&home, "/contracts"))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let by_id: std::collections::BTreeMap<String, String> = model
        .tenants
        .values()
        .filter_map(|t| t.microsoft_tenant_id.clone().map(|id| (id, t.name.clone())))
        .collect();
    let needle = args.search.as_deref().map(str::to_lowercase);
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let mut customers: Vec<Customer> = contracts
        .iter()
        .map(|c| {
            let id = text(c, "customerId").to_lowercase();
            Customer {
                tenant: by_id.get(&id).cloned(),
                customer_id: id,
                display_name: text(c, "displayName"),
                default_domain_name: text(c, "defaultDomainName"),
                contract_type: text(c, "contractType"),
            }
        })
        .filter(|c| {
            needle.as_ref().is_none_or(|n| {
                c.display_name.to_lowercase().contains(n)
                    || c.default_domain_name.to_lowercase().contains(n)
            })
        })
        .filter(|c| !args.unmapped || c.tenant.is_none())
        .collect();
    customers.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&customers).expect("customers serialize")
        ),
        OutputFormat::Text => {
            println!(
                "{:<36} {:<32} {:<32} MAPPED TO",
                "CUSTOMER ID", "NAME", "DOMAIN"
            );
            for c in &customers {
                println!(
                    "{:<36} {:<32} {:<32} {}",
                    c.customer_id,
                    terminal_safe(&c.display_name),
                    terminal_safe(&c.default_domain_name),
                    c.tenant.as_deref().unwrap_or("- (not mapped)")
                );
            }
            let mapped = customers.iter().filter(|c| c.tenant.is_some()).count();
            println!(
                "\n{} customers, {mapped} mapped, {} not mapped.",
                customers.len(),
                customers.len() - mapped
            );
        }
    }
    connection.close()?;
    Ok(exit::OK)
}
