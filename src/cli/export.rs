//! `tenantform export`: write manifests from live tenants (onboarding).

use std::path::PathBuf;

use crate::cli::common::CliReporter;
use crate::cli::{CliError, Context, exit};
use crate::ops::export::{ExportTenants, export};
use crate::ops::{GraphSettings, GraphTarget, ManifestSource, Settings};
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

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let settings = Settings {
        manifests: ManifestSource {
            path: PathBuf::from("."),
            reference: None,
        },
        state_path: args.out.join(".tenantform").join("state.json"),
        graph: GraphSettings {
            target: GraphTarget::resolve(None, |k| std::env::var(k).ok()),
            parallelism: args.parallelism,
            consent_redirect_uri: args.consent_redirect_uri.clone(),
        },
        strict: false,
        lock_timeout: std::time::Duration::ZERO,
        apply_step_delay: None,
        command_line: String::new(),
        actor: crate::state::Actor::current(),
    };
    let which = if args.all_customers {
        ExportTenants::AllCustomers
    } else {
        ExportTenants::Ids(args.tenant_id.clone())
    };
    let run = export(&settings, which, &args.out, &CliReporter::new(cx))?;
    println!(
        "Exported {} tenants and {} guests to {} ({} Graph requests, {} token requests).",
        run.exported,
        run.guests,
        args.out.display(),
        run.requests,
        run.token_requests
    );
    println!(
        "Next: `tenantform import {}` records them as owned without changing Entra.",
        args.out.display()
    );
    let failures = &run.failures;
    if failures.is_empty() {
        return Ok(exit::OK);
    }
    eprintln!(
        "\nNot exported ({} of {} tenants):",
        failures.len(),
        failures.len() + run.exported
    );
    for (tid, failure) in failures {
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
