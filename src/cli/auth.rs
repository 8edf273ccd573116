//! `tenantform auth check`: a token and a Graph read for every tenant, with a tick each.

use clap::Subcommand;
use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::common::{GraphArgs, Location, connect_required, load_manifests};
use crate::cli::{CliError, Context, OutputFormat, exit};
use crate::manifest::selector::Selector;
use crate::render::terminal_safe;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: AuthCommand,
}

#[derive(Subcommand, Debug)]
enum AuthCommand {
    /// Get a token for every mapped tenant and read its `/organization`; exit 1 if any fails.
    #[command(
        after_help = "Examples:\n  tenantform auth check customers/\n  tenantform auth check customers/ --tenants 'tier in (gold)' --output json\n  tenantform auth check customers/ --reports   # also what licenses, secure-score and report need\n  tenantform auth check customers/ --auth azure-cli   # your own (delegated) access, via `az login`\n\nThe first lines say which credential source was used and why each other one was not\n(e.g. `client-secret: AZURE_CLIENT_SECRET not set`). With a person's token (azure-cli) the\ntable shows its delegated scopes and the person's directory roles in each tenant, and a\nmissing permission is a missing scope or a missing role."
    )]
    Check {
        #[command(flatten)]
        location: Location,
        #[command(flatten)]
        graph: GraphArgs,
        /// Only tenants matching this label selector, e.g. `tier=gold` or `!legacy`.
        #[arg(long, value_name = "SELECTOR")]
        tenants: Option<String>,
        #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Also check what the report commands need in every tenant (`licenses`,
        /// `secure-score`, `report`): licences and subscriptions, users and deleted users,
        /// Secure Score, the MFA registration report and the security defaults policy.
        #[arg(long)]
        reports: bool,
    },
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Row {
    tenant: String,
    microsoft_tenant_id: String,
    name_in_entra: Option<String>,
    token_ok: bool,
    graph_ok: bool,
    /// `application` (the app's token) or `delegated` (a person's, from the Azure CLI).
    #[serde(skip_serializing_if = "Option::is_none")]
    token_kind: Option<&'static str>,
    /// Application permissions in the token (`roles` claim).
    roles: Vec<String>,
    /// A delegated token's scopes (`scp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    /// A delegated token's person's directory roles in this tenant (`wids`, by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    directory_roles: Option<Vec<String>>,
    /// What the manifests' kinds need here (each satisfied by any one permission).
    permissions_needed: Vec<Need>,
    /// The needs the token satisfies none of, e.g. `User.Invite.All (or User.ReadWrite.All,
    /// Directory.ReadWrite.All)`.
    permissions_missing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consent_url: Option<String>,
    /// Which credential source was used, why, and why each other one was not.
    credential: crate::graph::credentials::CredentialChoice,
}

use crate::consent::{Need, report_needs, tenant_needs};

/// The row of the MSP's own tenant, checked when the selection declares GDAP relationships
/// (not a tenant name manifests can use: names never hold parentheses).
const PARTNER_ROW: &str = "(partner tenant)";

pub fn run(cx: &Context, args: Args) -> Result<u8, CliError> {
    let AuthCommand::Check {
        location,
        graph,
        tenants,
        output,
        reports,
    } = args.command;
    let fleet = load_manifests(cx, &location.path, location.reference.as_deref(), false)?.fleet;
    let model = &fleet.catalog;
    let selector = tenants
        .as_deref()
        .map(Selector::parse)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--tenants: {}", e.message)))?;
    let connection = connect_required(&graph, model, &location.state_path(), "auth check")?;
    let mut targets: Vec<(String, String, Vec<Need>)> = Vec::new();
    for t in model
        .tenants
        .values()
        .filter(|t| selector.as_ref().is_none_or(|s| s.matches(&t.labels)))
    {
        if let Some(id) = t.microsoft_tenant_id.clone() {
            let slice = fleet
                .slice(&t.name)
                .map_err(crate::ops::OpsError::io(crate::model::STORE_PATH))?;
            let mut needed = tenant_needs(&slice, &t.name, model.tenant_policies.get(&t.name));
            if reports {
                needed.extend(report_needs());
            }
            targets.push((t.name.clone(), id, needed));
        }
    }
    // GDAP relationships are read and written in the partner tenant (AZURE_TENANT_ID), with a
    // permission of their own there: checked like a customer's when any selected tenant has one.
    let gdap = targets
        .iter()
        .any(|(tenant, _, _)| model.gdap_relationships.contains_key(tenant));
    let mut partner_missing = false;
    if gdap {
        use crate::graph::permissions as p;
        let needed = vec![
            Need::new("gdap", p::GDAP_READ),
            Need::new("gdap", p::GDAP_WRITE),
        ];
        match connection.partner_tenant.clone() {
            Some(id) => targets.push((PARTNER_ROW.to_string(), id, needed)),
            None => partner_missing = true,
        }
    }
    let client = connection.client.clone();
    let choice = client.config().choice.clone();
    let redirect = graph.consent_redirect_uri.clone();
    let mut rows: Vec<Row> = connection.runtime.block_on(
        futures_util::stream::iter(targets)
            .map(|(tenant, id, needed)| {
                let client = client.clone();
                let redirect = redirect.clone();
                let choice = choice.clone();
                async move {
                    let mut row = Row {
                        tenant,
                        microsoft_tenant_id: id.clone(),
                        name_in_entra: None,
                        token_ok: false,
                        graph_ok: false,
                        token_kind: None,
                        roles: Vec::new(),
                        scopes: None,
                        directory_roles: None,
                        permissions_needed: needed,
                        permissions_missing: Vec::new(),
                        error: None,
                        consent_url: None,
                        credential: choice,
                    };
                    match client.token(&id).await {
                        Ok(token) => {
                            use crate::graph::permissions as p;
                            row.token_ok = true;
                            if let Some(person) = p::token_delegation(&token) {
                                // A person's token: what it may do is its scopes AND the
                                // person's directory roles, never app permissions.
                                row.token_kind = Some("delegated");
                                row.permissions_missing = row
                                    .permissions_needed
                                    .iter()
                                    .filter_map(|n| person.missing(&n.delegated))
                                    .collect();
                                row.directory_roles = Some(person.role_names());
                                row.scopes = Some(person.scopes);
                            } else {
                                row.token_kind = Some("application");
                                row.roles = p::token_roles(&token).unwrap_or_default();
                                row.permissions_missing = row
                                    .permissions_needed
                                    .iter()
                                    .filter(|n| !p::satisfied(&n.any_of, &row.roles))
                                    .map(|n| p::describe_any_of(&n.any_of))
                                    .collect();
                            }
                            let mut seen = std::collections::HashSet::new();
                            row.permissions_missing.retain(|m| seen.insert(m.clone()));
                        }
                        Err(e) => {
                            if e.is_consent_needed() {
                                row.consent_url =
                                    Some(client.config().consent_url(&id, &redirect, &row.tenant));
                            }
                            row.error = Some(e.to_string());
                            return row;
                        }
                    }
                    match client
                        .get(&id, "/organization?$select=id,displayName")
                        .await
                    {
                        Ok(org) => {
                            row.graph_ok = true;
                            row.name_in_entra =
                                org["value"][0]["displayName"].as_str().map(str::to_string);
                        }
                        Err(e) => row.error = Some(e.to_string()),
                    }
                    row
                }
            })
            .buffer_unordered(graph.parallelism.max(1))
            .collect(),
    );
    if partner_missing {
        rows.push(Row {
            tenant: PARTNER_ROW.to_string(),
            microsoft_tenant_id: String::new(),
            name_in_entra: None,
            token_ok: false,
            graph_ok: false,
            token_kind: None,
            roles: Vec::new(),
            scopes: None,
            directory_roles: None,
            permissions_needed: Vec::new(),
            permissions_missing: Vec::new(),
            error: Some(
                "AZURE_TENANT_ID is not set: GDAP relationships are managed in the MSP's own (partner) tenant"
                    .to_string(),
            ),
            consent_url: None,
            credential: choice.clone(),
        });
    }
    rows.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    let failed = rows
        .iter()
        .filter(|r| !r.token_ok || !r.graph_ok || !r.permissions_missing.is_empty())
        .count();
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialize")
        ),
        OutputFormat::Text => {
            println!(
                "Credential: {} ({})",
                terminal_safe(&choice.source),
                terminal_safe(&choice.reason)
            );
            for other in &choice.not_used {
                println!(
                    "  not used: {}: {}",
                    terminal_safe(&other.source),
                    terminal_safe(&other.why)
                );
            }
            println!();
            let tick = |ok: bool| if ok { "✓" } else { "✗" };
            println!(
                "{:<24} {:<36} {:<28} {:<5} {:<5} {:<5} ROLES / ERROR",
                "TENANT", "MICROSOFT TENANT ID", "NAME IN ENTRA", "TOKEN", "GRAPH", "PERMS"
            );
            for r in &rows {
                let tail = match (&r.error, &r.scopes) {
                    (Some(e), _) => terminal_safe(e),
                    (None, Some(scopes)) => terminal_safe(&format!(
                        "delegated: {}; directory roles: {}",
                        scopes.join(" "),
                        match r.directory_roles.as_deref() {
                            Some([]) | None => "none".to_string(),
                            Some(roles) => roles.join(", "),
                        }
                    )),
                    (None, None) => r.roles.join(", "),
                };
                println!(
                    "{:<24} {:<36} {:<28} {:<5} {:<5} {:<5} {}",
                    terminal_safe(&r.tenant),
                    r.microsoft_tenant_id,
                    terminal_safe(r.name_in_entra.as_deref().unwrap_or("-")),
                    tick(r.token_ok),
                    tick(r.graph_ok),
                    if r.token_ok {
                        tick(r.permissions_missing.is_empty())
                    } else {
                        "-"
                    },
                    tail
                );
                for missing in &r.permissions_missing {
                    println!("{:<24} permission missing: {}", "", terminal_safe(missing));
                }
                if let Some(url) = &r.consent_url {
                    println!("{:<24} consent needed: {}", "", terminal_safe(url));
                }
            }
            println!("\n{} of {} tenants OK.", rows.len() - failed, rows.len());
        }
    }
    connection.close()?;
    Ok(if failed > 0 { exit::ERROR } else { exit::OK })
}
