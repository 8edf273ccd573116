//! `tenantform export`: write manifests from live tenants (onboarding).

use std::path::PathBuf;

use futures_util::StreamExt;

use crate::cli::{CliError, Context, exit};
use crate::export::{ExportedTenant, manifests};
use crate::graph::read::{all_items, guests_request, parse_directory, roles_request};
use crate::graph::{BatchRequest, GraphClient, GraphConfig, RetryPolicy};
use crate::outcome::Failure;
use crate::render::terminal_safe;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["tenant_id", "all_customers"])))]
pub struct Args {
    /// A customer tenant to export (repeat for several).
    #[arg(long, value_name = "GUID")]
    tenant_id: Vec<String>,
    /// Every customer of the partner tenant (AZURE_TENANT_ID), from `/contracts`.
    #[arg(long)]
    all_customers: bool,
    /// Directory to write the manifests into (must not contain files of the same names).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How many tenants are read at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    parallelism: usize,
    /// Admin-consent redirect URI shown in "consent missing" links.
    #[arg(
        long,
        value_name = "URL",
        env = "TENANTFORM_CONSENT_REDIRECT_URI",
        default_value = "https://localhost/consent-done"
    )]
    consent_redirect_uri: String,
}

fn graph_error(e: crate::graph::GraphClientError) -> CliError {
    CliError::Usage(e.to_string())
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let config = GraphConfig::from_env(|k| std::env::var(k).ok()).map_err(|e| match e {
        crate::graph::config::ConfigError::NoClientId => CliError::NoCredentials {
            command: "export".into(),
        },
        e => CliError::Usage(format!(
            "{e} (Graph credentials: {})",
            crate::cli::common::CREDENTIALS_HELP
        )),
    })?;
    let home = config.home_tenant_id.clone();
    let client = GraphClient::new(config, RetryPolicy::default()).map_err(graph_error)?;
    let runtime = crate::cli::common::runtime()?;
    let tenant_ids: Vec<String> = if args.all_customers {
        let home = home.ok_or_else(|| {
            CliError::Usage("--all-customers needs AZURE_TENANT_ID (the partner tenant)".into())
        })?;
        let contracts = runtime
            .block_on(client.get_all(
                &home,
                "/contracts?$select=customerId,displayName,defaultDomainName",
            ))
            .map_err(graph_error)?;
        contracts
            .iter()
            .filter_map(|c| c["customerId"].as_str().map(str::to_lowercase))
            .collect()
    } else {
        args.tenant_id.iter().map(|t| t.to_lowercase()).collect()
    };
    let client = &client;
    let redirect = args.consent_redirect_uri.as_str();
    let mut progress =
        crate::cli::progress::Progress::new("Exporting", tenant_ids.len(), cx.verbosity);
    let progress_ref = &progress;
    let results: Vec<Result<ExportedTenant, (String, Failure)>> = runtime.block_on(
        futures_util::stream::iter(tenant_ids)
            .map(|tid| async move {
                let org = BatchRequest {
                    id: "org".into(),
                    method: "GET".into(),
                    url: "/organization?$select=id,displayName".into(),
                    body: None,
                    depends_on: Vec::new(),
                };
                let failed = |e: crate::graph::GraphClientError| {
                    let mut failure = e.failure();
                    if failure.cause == crate::outcome::Cause::ConsentMissing {
                        failure.consent_url =
                            Some(client.config().consent_url(&tid, redirect, &tid));
                    }
                    (tid.clone(), failure)
                };
                let answers = client
                    .batch(
                        &tid,
                        vec![org, guests_request("guests"), roles_request("roles")],
                    )
                    .await
                    .map_err(failed)?;
                let mut display_name = tid.clone();
                let (mut guests, mut roles) = (Vec::new(), Vec::new());
                for a in answers {
                    a.ok(&tid).map_err(failed)?;
                    match a.id.as_str() {
                        "org" => {
                            if let Some(name) = a.body["value"][0]["displayName"].as_str() {
                                display_name = name.to_string();
                            }
                        }
                        "guests" => {
                            guests = all_items(client, &tid, &a.body).await.map_err(failed)?
                        }
                        _ => roles = all_items(client, &tid, &a.body).await.map_err(failed)?,
                    }
                }
                Ok(ExportedTenant {
                    microsoft_tenant_id: tid,
                    display_name,
                    directory: parse_directory(&guests, &roles),
                })
            })
            .buffer_unordered(args.parallelism.max(1))
            .inspect(|r| progress_ref.tenant_done(r.is_err()))
            .collect(),
    );
    progress.finish();
    // The tenants that were read are exported; the others are listed and fail the command.
    let mut tenants: Vec<ExportedTenant> = Vec::new();
    let mut failures: Vec<(String, Failure)> = Vec::new();
    for result in results {
        match result {
            Ok(t) => tenants.push(t),
            Err(f) => failures.push(f),
        }
    }
    tenants.sort_by(|a, b| a.microsoft_tenant_id.cmp(&b.microsoft_tenant_id));
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    let files = manifests(&tenants);
    // Nothing is overwritten: fail before writing anything.
    for f in &files {
        let path = args.out.join(&f.path);
        if path.exists() && !f.path.starts_with("schemas/") {
            return Err(CliError::Usage(format!(
                "{} already exists; export into an empty directory",
                path.display()
            )));
        }
    }
    for f in &files {
        let path = args.out.join(&f.path);
        let io = |source| CliError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("relative paths have parents")).map_err(io)?;
        std::fs::write(&path, &f.text).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    let guests: usize = files
        .iter()
        .filter(|f| f.path.starts_with("people/"))
        .count();
    println!(
        "Exported {} tenants and {guests} guests to {} ({} Graph requests, {} token requests).",
        tenants.len(),
        args.out.display(),
        client.request_count(),
        client.token_request_count()
    );
    println!(
        "Next: `tenantform import {}` records them as owned without changing Entra.",
        args.out.display()
    );
    if failures.is_empty() {
        return Ok(exit::OK);
    }
    eprintln!(
        "\nNot exported ({} of {} tenants):",
        failures.len(),
        failures.len() + tenants.len()
    );
    for (tid, failure) in &failures {
        eprintln!("  {tid}: {}", terminal_safe(&failure.describe()));
        if let Some(url) = &failure.consent_url {
            eprintln!("    send the customer's admin the consent link: {url}");
        }
    }
    eprintln!(
        "Export them again once fixed: tenantform export --out NEWDIR{}",
        failures
            .iter()
            .map(|(t, _)| format!(" --tenant-id {t}"))
            .collect::<String>()
    );
    Ok(exit::ERROR)
}
