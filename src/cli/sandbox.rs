//! `tenantform sandbox serve`: the Graph emulator on its own, for demos and manual testing.

use std::path::PathBuf;

use clap::Subcommand;

use crate::cli::{CliError, Context, exit};
use crate::sandbox::{Faults, Fixture};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: SandboxCommand,
}

#[derive(Subcommand, Debug)]
enum SandboxCommand {
    /// Serve Graph and a token endpoint on 127.0.0.1 until interrupted.
    #[command(
        long_about = "Serve Graph and a token endpoint on 127.0.0.1 until interrupted (Ctrl-C, or kill).\n\n\
It prints the URLs and the environment a second shell needs to point tenantform at it: \
AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (the fixture's app: sandbox-only credentials, accepted by \
this sandbox and nowhere else), AZURE_TENANT_ID (the MSP's own tenant: the fixture's partner \
tenant, the one with contracts), TENANTFORM_GRAPH_URL and TENANTFORM_LOGIN_URL.",
        after_help = "A second shell:\n  \
Without --print-env, the banner shows the variables as `export` lines to paste. With --print-env,\n  \
stdout carries only those lines, each written once the sandbox accepts connections, then a\n  \
`# ready: ...` line naming its pid; the banner goes to stderr and the sandbox keeps serving.\n  \
`eval \"$(tenantform sandbox serve --print-env ...)\"` would never return: write a file instead.\n\n    \
tenantform sandbox serve --tenants 3 --print-env > sandbox.env & sandbox=$!\n    \
until grep -q '^# ready' sandbox.env 2>/dev/null; do sleep 0.1; done\n    \
. ./sandbox.env\n    \
tenantform customers manifests/ && tenantform auth check manifests/\n    \
kill $sandbox\n\n\
Faults (comma-separated): latency=50ms, throttle=0.1 (share answered 429), retry-after=2.128,\n\
5xx=0.05, drop=0.01 (connection dropped before the change), drop-after=0.01 (change made, answer\n\
lost), replication=2s (new users unlisted and unreadable, role assignments to them fail),\n\
replication-shape=mixed|principal|template|reference (404 naming the principal, 404 naming the\n\
role template, 400 \"Not a valid reference update\"), budgets (Graph's throttling limits per app\n\
and tenant), seed=7 (same seed, same faults), fail=503:/roleManagement/directory/roleAssignments@T\n\
(every request under that path, in tenant T or in all without @T, answers that status).\n\n\
Controls (no auth; 127.0.0.1 only):\n  \
GET|DELETE /_sandbox/requests          the request log\n  \
GET|PUT    /_sandbox/faults            faults as JSON\n  \
POST  /_sandbox/tenants/T/users/U/accept    redeem an invitation (U: id or email)\n  \
PATCH|DELETE /_sandbox/tenants/T/users/U    out-of-band edit or delete\n  \
DELETE /_sandbox/tenants/T/roleAssignments/ID\n  \
PUT   /_sandbox/tenants/T/consent {\"consent\": false}\n  \
POST  /_sandbox/tenants/T/users             create a user (a fixture user as JSON)\n  \
POST|DELETE /_sandbox/tenants/T/groups/G/members/U   change a group's members\n  \
POST  /_sandbox/tenants/T/delta/expire      every delta link issued counts as older than 7 days\n  \
PUT   /_sandbox/tenants/T/delta/reset       old delta links answer 410 Gone\n  \
POST  /_sandbox/tenants/P/delegatedAdminRelationships/R/approve|terminate|expire   the customer, or the end\n  \
POST  /_sandbox/tenants/P/delegatedAdminRelationships/R/age {\"days\": N}   N days pass for it\n  \
PUT   /_sandbox/tenants/P/delegatedAdminRelationships/R/accessAssignments/A/status {\"status\": \"error\"}\n  \
POST  /_sandbox/tenants/T/delegated-token {\"user\": UPN} a person's token, as `az account get-access-token` prints it\n  \
      (+ {\"partnerTenant\": ID, \"roles\": [\"Cloud Application Administrator\"]}: a partner's engineer through GDAP)\n  \
GET|PUT    /_sandbox/emulators         what the emulators below issue (githubSubject, adoSubject,\n  \
                                       managedIdentityObjectId, lifetimeSecs)\n\n\
Secretless credentials' endpoints (the fixture's app trusts their issuer and subject):\n  \
ACTIONS_ID_TOKEN_REQUEST_URL=BASE/_emulators/github/token?api-version=2.0\n  \
ACTIONS_ID_TOKEN_REQUEST_TOKEN=sandbox-actions-request-token\n  \
SYSTEM_OIDCREQUESTURI=BASE/_emulators/azure-devops/oidctoken  SYSTEM_ACCESSTOKEN=sandbox-system-accesstoken\n  \
AZURESUBSCRIPTION_SERVICE_CONNECTION_ID=6f5e4d3c-0000-4000-8000-00000000c0ee\n  \
TENANTFORM_IMDS_ENDPOINT=BASE/_emulators/imds  (IMDS), or IDENTITY_ENDPOINT=BASE/_emulators/app-service/msi/token\n  \
with IDENTITY_HEADER=sandbox-identity-header; TENANTFORM_MANAGED_IDENTITY_CLIENT_ID=7a6b5c4d-0000-4000-8000-0000000000c1\n\n\
Examples:\n  \
tenantform sandbox serve --fixture examples/sandbox/fixture.yaml --port 8080\n  \
tenantform sandbox serve --tenants 50 --users 20 --faults latency=50ms,throttle=0.05\n  \
tenantform sandbox serve --tenants 3 --print-env > sandbox.env &"
    )]
    Serve {
        /// The starting world (YAML or JSON: apps, tenants, users, contracts, consent).
        #[arg(long, value_name = "FILE", conflicts_with = "tenants")]
        fixture: Option<PathBuf>,
        /// Instead of a fixture: this many generated customer tenants (plus a partner tenant).
        #[arg(long, value_name = "N")]
        tenants: Option<usize>,
        /// Members per generated tenant.
        #[arg(long, value_name = "N", default_value_t = 10)]
        users: usize,
        /// Give generated users profiles (departments, offices, companies, phones, a few
        /// disabled accounts and guests) and each tenant nested groups: a world for end-user
        /// sync.
        #[arg(long, requires = "tenants")]
        profiles: bool,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Faults to inject, e.g. latency=50ms,throttle=0.1,seed=7.
        #[arg(long, value_name = "SPEC", value_parser = Faults::parse, default_value = "")]
        faults: Faults,
        /// Print only `export NAME=value` lines on stdout, then `# ready: ...` (for a file a
        /// second shell sources); the banner goes to stderr. The sandbox keeps serving.
        #[arg(long)]
        print_env: bool,
    },
    /// Play the customer (or time) for a GDAP relationship in a saved sandbox world.
    #[command(
        long_about = "Play the customer, or time, for a GDAP relationship in the world `--sandbox` keeps (sandbox-world.json beside the state): the customer's admin approves it (approvalPending -> active, ending its duration from now) or terminates it; `expire` ends it now; `age --days N` moves its dates N days into the past (it may expire, or auto-extend by 180 days). The next plan, apply or drift sees the change. The same controls exist over HTTP for `sandbox serve` (POST /_sandbox/tenants/P/delegatedAdminRelationships/R/approve|terminate|expire|age).",
        after_help = "Examples:\n  \
tenantform apply --sandbox examples/msp-fleet       # creates and locks each relationship\n  \
tenantform sandbox gdap approve --world examples/msp-fleet/.tenantform/sandbox-world.json 'Contoso MSP support - alder-dental'\n  \
tenantform apply --sandbox examples/msp-fleet       # now creates its access assignments\n  \
tenantform sandbox gdap terminate --world examples/msp-fleet/.tenantform/sandbox-world.json 'Contoso MSP support - alder-dental'\n  \
tenantform drift --sandbox examples/msp-fleet       # terminated by the customer"
    )]
    Gdap {
        /// approve, terminate, expire or age.
        #[arg(value_parser = ["approve", "terminate", "expire", "age"])]
        action: String,
        /// The relationship: its id or its display name.
        relationship: String,
        /// The saved world (sandbox-world.json).
        #[arg(long, value_name = "FILE")]
        world: PathBuf,
        /// For `age`: how many days pass.
        #[arg(long, value_name = "N", required_if_eq("action", "age"))]
        days: Option<i64>,
    },
}

/// One line of the environment block: a variable, or a comment explaining a choice.
enum EnvLine {
    Export(&'static str, String),
    Comment(String),
}

/// `value` as one shell word: bare when it is plainly safe, otherwise single-quoted.
fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '%' | '+' | ',')
        });
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Text from the fixture, safe inside a one-line `#` comment.
fn comment_safe(text: &str) -> String {
    crate::render::terminal_safe(text).replace(['\n', '\r', '\t'], " ")
}

/// The variables a second shell needs to reach this sandbox, with comments where the fixture
/// leaves a choice.
fn environment(fixture: &Fixture, base: &str, graph: &str) -> Result<Vec<EnvLine>, CliError> {
    let mut lines = Vec::new();
    match fixture.apps.split_first() {
        Some((app, others)) => {
            lines.push(EnvLine::Export("AZURE_CLIENT_ID", app.client_id.clone()));
            lines.push(EnvLine::Export(
                "AZURE_CLIENT_SECRET",
                app.client_secret.clone(),
            ));
            if !others.is_empty() {
                let ids: Vec<String> = others.iter().map(|a| comment_safe(&a.client_id)).collect();
                lines.push(EnvLine::Comment(format!(
                    "the fixture has more apps (secrets in the fixture): {}",
                    ids.join(", ")
                )));
            }
        }
        None => lines.push(EnvLine::Comment(
            "the fixture has no apps: the token endpoint accepts no client, so nothing can sign in"
                .into(),
        )),
    }
    let partners: Vec<_> = fixture
        .tenants
        .iter()
        .filter(|t| !t.contracts.is_empty())
        .collect();
    match (partners.split_first(), fixture.tenants.first()) {
        (Some((partner, others)), _) => {
            if !others.is_empty() {
                let rest: Vec<String> = others.iter().map(|t| comment_safe(&t.id)).collect();
                lines.push(EnvLine::Comment(format!(
                    "more than one tenant has contracts; AZURE_TENANT_ID is the first, {} (others: {})",
                    comment_safe(&partner.display_name),
                    rest.join(", ")
                )));
            }
            lines.push(EnvLine::Export("AZURE_TENANT_ID", partner.id.clone()));
        }
        (None, Some(first)) => {
            lines.push(EnvLine::Comment(format!(
                "no tenant in the fixture has contracts (no partner tenant): AZURE_TENANT_ID is its first tenant, {}",
                comment_safe(&first.display_name)
            )));
            lines.push(EnvLine::Export("AZURE_TENANT_ID", first.id.clone()));
        }
        (None, None) => lines.push(EnvLine::Comment(
            "the fixture has no tenants: AZURE_TENANT_ID is left as it is".into(),
        )),
    }
    lines.push(EnvLine::Export("TENANTFORM_GRAPH_URL", graph.to_string()));
    lines.push(EnvLine::Export("TENANTFORM_LOGIN_URL", base.to_string()));
    for line in &lines {
        if let EnvLine::Export(name, value) = line
            && value.chars().any(char::is_control)
        {
            return Err(CliError::Usage(format!(
                "the fixture's value for {name} contains a control character (such as a line \
                 break), which a shell variable line cannot carry: fix the fixture"
            )));
        }
    }
    Ok(lines)
}

impl std::fmt::Display for EnvLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvLine::Export(name, value) => write!(f, "export {name}={}", shell_quote(value)),
            EnvLine::Comment(text) => write!(f, "# {text}"),
        }
    }
}

/// Writes `lines` to stdout one at a time, each flushed before the next.
fn print_flushed(lines: impl IntoIterator<Item = String>) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|source| CliError::Io {
                path: "stdout".into(),
                source,
            })?;
    }
    Ok(())
}

/// `sandbox gdap`: loads the saved world, acts on the relationship, writes the world back.
fn gdap(
    action: &str,
    relationship: &str,
    world: &std::path::Path,
    days: Option<i64>,
) -> Result<u8, CliError> {
    let fixture = Fixture::load(world).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut loaded = crate::sandbox::World::new(&fixture, Faults::default());
    let answer = crate::sandbox::gdap::control(&mut loaded, relationship, action, days)
        .map_err(|e| CliError::Usage(format!("sandbox gdap {action}: {}", e.message)))?;
    let text = serde_json::to_vec_pretty(&loaded.to_fixture()).expect("fixture serializes");
    crate::ops::workspace::write_private_file(world, &text)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    println!(
        "{}: {} (ends {})",
        crate::render::terminal_safe(answer["displayName"].as_str().unwrap_or_default()),
        answer["status"].as_str().unwrap_or_default(),
        answer["endDateTime"].as_str().unwrap_or("-")
    );
    Ok(exit::OK)
}

pub fn run(_cx: &Context, args: Args) -> Result<u8, CliError> {
    let (fixture, tenants, users, profiles, port, faults, print_env) = match args.command {
        SandboxCommand::Gdap {
            action,
            relationship,
            world,
            days,
        } => return gdap(&action, &relationship, &world, days),
        SandboxCommand::Serve {
            fixture,
            tenants,
            users,
            profiles,
            port,
            faults,
            print_env,
        } => (fixture, tenants, users, profiles, port, faults, print_env),
    };
    let fixture = match (fixture, tenants) {
        (Some(path), _) => Fixture::load(&path).map_err(|e| CliError::Usage(e.to_string()))?,
        (None, Some(n)) if profiles => Fixture::generated_with_profiles(n, users),
        (None, Some(n)) => Fixture::generated(n, users),
        (None, None) => {
            return Err(CliError::Usage(
                "give --fixture FILE or --tenants N (see `tenantform sandbox serve --help`)".into(),
            ));
        }
    };
    let handle =
        crate::sandbox::SandboxHandle::start_on(&fixture, faults, port).map_err(|source| {
            CliError::Io {
                path: format!("127.0.0.1:{port}"),
                source,
            }
        })?;
    let base = handle.base_url().to_string();
    let env = environment(&fixture, &base, &handle.graph_url())?;

    // The banner: on stdout, or on stderr when stdout carries only the environment.
    let mut banner = vec![
        format!("Graph sandbox listening on {base}"),
        format!("  Graph API:   {}", handle.graph_url()),
        format!("  Token URL:   {base}/{{tenant-id-or-domain}}/oauth2/v2.0/token"),
        format!("  Controls:    {base}/_sandbox/requests, {base}/_sandbox/faults (see --help)"),
        String::new(),
    ];
    if print_env {
        banner.push("Environment for a second shell: on stdout (--print-env).".into());
    } else {
        banner.push(
            "In a second shell (sandbox-only credentials: accepted by this sandbox, nowhere else):"
                .into(),
        );
        banner.extend(env.iter().map(|line| format!("  {line}")));
        banner.push("  (--print-env prints just these lines, for a file to source)".into());
    }
    banner.push(String::new());
    banner.push(format!("Tenants ({}):", fixture.tenants.len()));
    for t in fixture.tenants.iter().take(20) {
        banner.push(format!(
            "  {}  {:<32} {} users{}{}",
            crate::render::terminal_safe(&t.id),
            crate::render::terminal_safe(&t.display_name),
            t.users.len(),
            if t.contracts.is_empty() {
                String::new()
            } else {
                format!(", partner of {}", t.contracts.len())
            },
            if t.consent { "" } else { ", NO CONSENT" }
        ));
    }
    if fixture.tenants.len() > 20 {
        banner.push(format!("  ... and {} more", fixture.tenants.len() - 20));
    }
    banner.push(String::new());
    banner.push("Press Ctrl-C to stop.".into());
    if print_env {
        for line in &banner {
            eprintln!("{line}");
        }
        let pid = std::process::id();
        print_flushed(env.iter().map(ToString::to_string).chain([format!(
            "# ready: sandbox pid {pid} is serving on {base}; stop it with: kill {pid}"
        )]))?;
    } else {
        print_flushed(banner)?;
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(handle);
    Ok(exit::OK)
}
