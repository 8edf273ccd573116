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
        after_help = "Faults (comma-separated): latency=50ms, throttle=0.1 (share answered 429), retry-after=2.128,\n5xx=0.05, drop=0.01, replication=2s (new users 404 for role assignment), budgets (Graph's\nthrottling limits per app and tenant), seed=7 (same seed, same faults).\n\nControls (no auth; 127.0.0.1 only):\n  GET|DELETE /_sandbox/requests          the request log\n  GET|PUT    /_sandbox/faults            faults as JSON\n  POST  /_sandbox/tenants/T/users/U/accept    redeem an invitation (U: id or email)\n  PATCH|DELETE /_sandbox/tenants/T/users/U    out-of-band edit or delete\n  DELETE /_sandbox/tenants/T/roleAssignments/ID\n  PUT   /_sandbox/tenants/T/consent {\"consent\": false}\n\nExamples:\n  tenantform sandbox serve --fixture examples/sandbox/fixture.yaml --port 8080\n  tenantform sandbox serve --tenants 50 --users 20 --faults latency=50ms,throttle=0.05"
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
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Faults to inject, e.g. latency=50ms,throttle=0.1,seed=7.
        #[arg(long, value_name = "SPEC", value_parser = Faults::parse, default_value = "")]
        faults: Faults,
    },
}

pub fn run(_cx: &Context, args: Args) -> Result<u8, CliError> {
    let SandboxCommand::Serve {
        fixture,
        tenants,
        users,
        port,
        faults,
    } = args.command;
    let fixture = match (fixture, tenants) {
        (Some(path), _) => Fixture::load(&path).map_err(|e| CliError::Usage(e.to_string()))?,
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
    let base = handle.base_url();
    println!("Graph sandbox listening on {base}");
    println!("  Graph API:   {}", handle.graph_url());
    println!("  Token URL:   {base}/{{tenant-id-or-domain}}/oauth2/v2.0/token");
    println!("  Controls:    {base}/_sandbox/requests, {base}/_sandbox/faults (see --help)");
    println!();
    println!("Sandbox-only credentials (accepted by this sandbox, nowhere else):");
    for app in &fixture.apps {
        println!(
            "  export AZURE_CLIENT_ID={} AZURE_CLIENT_SECRET={}",
            app.client_id, app.client_secret
        );
    }
    println!(
        "  export TENANTFORM_GRAPH_URL={} TENANTFORM_LOGIN_URL={base}",
        handle.graph_url()
    );
    println!();
    println!("Tenants ({}):", fixture.tenants.len());
    for t in fixture.tenants.iter().take(20) {
        println!(
            "  {}  {:<32} {} users{}{}",
            t.id,
            crate::render::terminal_safe(&t.display_name),
            t.users.len(),
            if t.contracts.is_empty() {
                String::new()
            } else {
                format!(", partner of {}", t.contracts.len())
            },
            if t.consent { "" } else { ", NO CONSENT" }
        );
    }
    if fixture.tenants.len() > 20 {
        println!("  ... and {} more", fixture.tenants.len() - 20);
    }
    println!("\nPress Ctrl-C to stop.");
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
