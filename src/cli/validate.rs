//! `tenantform validate`: load manifests, report every problem, summarize the model.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::{CliError, Context, OutputFormat, exit, render};
use crate::diagnostic::ResolvedDiagnostic;
use crate::load::load_path;
use crate::render::plural;
use crate::{Validation, validate_sources};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A manifest directory (searched recursively), a single file, or - for stdin.
    #[arg(value_name = "PATH", default_value = ".")]
    path: PathBuf,
    /// Treat warnings (e.g. a selector that matches no tenant) as errors.
    #[arg(long)]
    strict: bool,
    /// text: diagnostics on stderr and a summary on stdout; json: one JSON object on stdout.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

/// Counts of what the manifests declare.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Summary {
    files: usize,
    documents: usize,
    tenants: usize,
    implicit_tenants: usize,
    organizations: usize,
    guests: usize,
    role_assignments: usize,
    /// Tenants whose end users an EndUserSync syncs.
    end_user_sync_tenants: usize,
    /// Tenants a TenantPolicy holds to its expectations.
    policy_tenants: usize,
    /// GDAP relationships declared (one per targeted tenant).
    #[serde(skip_serializing_if = "is_zero")]
    gdap_relationships: usize,
    errors: usize,
    warnings: usize,
}

/// `--output json`: versioned so CI scripts can rely on it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport {
    format_version: u32,
    valid: bool,
    summary: Summary,
    diagnostics: Vec<ResolvedDiagnostic>,
}

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let (mut sources, load_diagnostics) = load_path(&args.path)?;
    let mut validation =
        validate_sources(&mut sources, load_diagnostics).map_err(|source| CliError::Io {
            path: crate::model::STORE_PATH.to_string(),
            source,
        })?;
    crate::load::restore_texts(&mut sources, &mut validation.diagnostics);
    let valid = validation.errors() == 0 && (!args.strict || validation.warnings() == 0);
    let summary = summarize(sources.len(), &validation);
    match args.output {
        OutputFormat::Json => {
            let report = JsonReport {
                format_version: 1,
                valid,
                diagnostics: validation
                    .diagnostics
                    .iter()
                    .map(|d| d.resolve(&sources))
                    .collect(),
                summary,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("report serializes")
            );
        }
        OutputFormat::Text => {
            eprint!(
                "{}",
                render::render_diagnostics(&sources, &validation.diagnostics, cx.color)
            );
            let mut counts = format!(
                "{}, {}: {} ({} implicit), {}, {}, {}",
                plural(summary.files, "file"),
                plural(summary.documents, "document"),
                plural(summary.tenants, "tenant"),
                summary.implicit_tenants,
                plural(summary.organizations, "organization"),
                plural(summary.guests, "guest"),
                plural(summary.role_assignments, "role assignment"),
            );
            if summary.end_user_sync_tenants > 0 {
                counts.push_str(&format!(
                    ", end users synced in {}",
                    plural(summary.end_user_sync_tenants, "tenant")
                ));
            }
            if summary.policy_tenants > 0 {
                counts.push_str(&format!(
                    ", policies for {}",
                    plural(summary.policy_tenants, "tenant")
                ));
            }
            if summary.gdap_relationships > 0 {
                counts.push_str(&format!(
                    ", {}",
                    plural(summary.gdap_relationships, "GDAP relationship")
                ));
            }
            if valid {
                let warnings = match summary.warnings {
                    0 => String::new(),
                    n => format!(" ({})", plural(n, "warning")),
                };
                println!("valid: {counts}{warnings}");
            } else {
                let strict = if validation.errors() == 0 {
                    " (--strict)"
                } else {
                    ""
                };
                eprintln!(
                    "invalid: {}, {}{strict} in {counts}",
                    plural(summary.errors, "error"),
                    plural(summary.warnings, "warning")
                );
            }
        }
    }
    Ok(if valid { exit::OK } else { exit::ERROR })
}

fn summarize(files: usize, v: &Validation) -> Summary {
    Summary {
        files,
        documents: v.documents,
        tenants: v.fleet.catalog.tenants.len(),
        implicit_tenants: v
            .fleet
            .catalog
            .tenants
            .values()
            .filter(|t| t.implicit)
            .count(),
        organizations: v.fleet.organization_count(),
        guests: v.fleet.guest_count(),
        role_assignments: v.fleet.role_assignment_count(),
        end_user_sync_tenants: v.fleet.catalog.end_user_syncs.len(),
        policy_tenants: v.fleet.catalog.tenant_policies.len(),
        gdap_relationships: v
            .fleet
            .catalog
            .gdap_relationships
            .values()
            .map(Vec::len)
            .sum(),
        errors: v.errors(),
        warnings: v.warnings(),
    }
}

/// JSON keeps its shape for fleets without GDAP relationships.
fn is_zero(n: &usize) -> bool {
    *n == 0
}
