//! `tenantform customers`: the partner's customers (`/contracts`) and which are mapped.

use std::path::PathBuf;

use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::common::{GraphArgs, connect_required, default_state_path, load_manifests};
use crate::cli::{CliError, Context, OutputFormat, exit};
use crate::render::terminal_safe;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Manifests to match customers against (optional: without them, customers are listed
    /// with their consent, unmatched).
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,
    /// Read the manifests as they are at this git commit, branch or tag.
    #[arg(long = "ref", value_name = "REF", requires = "path")]
    reference: Option<String>,
    #[command(flatten)]
    graph: GraphArgs,
    /// Do not ask each customer tenant for a token to tell whether the app is consented there.
    #[arg(long)]
    no_consent_check: bool,
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
    /// `consented`, `consent-missing`, `not-checked`, or `failed` (the token request failed
    /// for another reason, in `error`).
    consent: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    consent_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let model = match &args.path {
        Some(path) => {
            load_manifests(cx, path, args.reference.as_deref(), false)?
                .fleet
                .catalog
        }
        None => crate::model::DesiredModel::default(),
    };
    let manifests = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let connection = connect_required(
        &args.graph,
        &model,
        &default_state_path(&manifests),
        "customers",
    )?;
    let home = connection
        .client
        .config()
        .home_tenant_id
        .clone()
        .ok_or_else(|| crate::ops::OpsError::NoPartnerTenant {
            command: "customers".into(),
        })?;
    let contracts = connection
        .runtime
        .block_on(connection.client.get_all(&home, "/contracts"))
        .map_err(|error| crate::ops::OpsError::Graph {
            context: "reading the partner's customers",
            error,
        })?;
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
                consent: "not-checked",
                consent_url: None,
                error: None,
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
    if !args.no_consent_check {
        // A token from each customer tenant says whether the app is consented there.
        let client = connection.client.clone();
        let redirect = args.graph.consent_redirect_uri.clone();
        let mut progress =
            crate::cli::progress::Progress::new("Checking consent", customers.len(), cx.verbosity);
        let progress_ref = &progress;
        let answers: Vec<Option<crate::graph::GraphClientError>> = connection.runtime.block_on(
            futures_util::stream::iter(customers.iter().map(|c| c.customer_id.clone()))
                .map(|id| {
                    let client = client.clone();
                    async move { client.token(&id).await.err() }
                })
                .buffered(args.graph.parallelism.max(1))
                .inspect(|e| progress_ref.tenant_done(e.is_some()))
                .collect(),
        );
        progress.finish();
        for (c, error) in customers.iter_mut().zip(answers) {
            match error {
                None => c.consent = "consented",
                Some(e) if e.is_consent_needed() => {
                    c.consent = "consent-missing";
                    c.consent_url = Some(client.config().consent_url(
                        &c.customer_id,
                        &redirect,
                        c.tenant.as_deref().unwrap_or(&c.customer_id),
                    ));
                }
                Some(e) => {
                    c.consent = "failed";
                    c.error = Some(e.failure().describe());
                }
            }
        }
    }
    let unchecked = customers.iter().filter(|c| c.consent == "failed").count();
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&customers).expect("customers serialize")
        ),
        OutputFormat::Text => {
            println!(
                "{:<36} {:<32} {:<32} {:<16} MAPPED TO",
                "CUSTOMER ID", "NAME", "DOMAIN", "CONSENT"
            );
            let unmapped = if args.path.is_some() {
                "- (not mapped)"
            } else {
                "-"
            };
            for c in &customers {
                println!(
                    "{:<36} {:<32} {:<32} {:<16} {}",
                    c.customer_id,
                    terminal_safe(&c.display_name),
                    terminal_safe(&c.default_domain_name),
                    c.consent,
                    c.tenant.as_deref().unwrap_or(unmapped)
                );
                if let Some(url) = &c.consent_url {
                    println!("{:<36} consent link: {}", "", terminal_safe(url));
                }
                if let Some(error) = &c.error {
                    println!("{:<36} {}", "", terminal_safe(error));
                }
            }
            let count = |state: &str| customers.iter().filter(|c| c.consent == state).count();
            let consent = if args.no_consent_check {
                String::new()
            } else {
                format!(
                    "; {} consented, {} consent missing",
                    count("consented"),
                    count("consent-missing")
                )
            };
            let mapped = customers.iter().filter(|c| c.tenant.is_some()).count();
            let mapping = if args.path.is_some() {
                format!(", {mapped} mapped, {} not mapped", customers.len() - mapped)
            } else {
                String::new()
            };
            println!("\n{} customers{mapping}{consent}.", customers.len());
        }
    }
    connection.close()?;
    if unchecked > 0 {
        eprintln!("error: consent could not be checked for {unchecked} customers (above)");
        return Ok(exit::ERROR);
    }
    Ok(exit::OK)
}
