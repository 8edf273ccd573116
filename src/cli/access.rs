//! `tenantform access`: who may switch into which customer (MSP roles in state).

use clap::ArgGroup;

use crate::access::{Grant, for_tenant, for_user};
use crate::cli::common::Location;
use crate::cli::{CliError, Context, OutputFormat, exit};
use crate::render::terminal_safe;

#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("who").required(true).args(["user", "tenant"])))]
pub struct Args {
    /// List the tenants this person (email) can switch into.
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// List who can switch into this tenant (its stable name).
    #[arg(long, value_name = "NAME")]
    tenant: Option<String>,
    #[command(flatten)]
    location: Location,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

pub fn run(_cx: &Context, args: Args) -> Result<u8, CliError> {
    let state = args.location.store()?.load()?;
    let grants: Vec<Grant> = match (&args.user, &args.tenant) {
        (Some(email), _) => for_user(&state, email),
        (_, Some(tenant)) => for_tenant(&state, tenant),
        _ => unreachable!("clap requires --user or --tenant"),
    };
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&grants).expect("grants serialize")
        ),
        OutputFormat::Text if grants.is_empty() => println!(
            "No MSP roles recorded for that {}.",
            if args.user.is_some() {
                "user"
            } else {
                "tenant"
            }
        ),
        OutputFormat::Text => {
            let rows: Vec<[String; 4]> = grants
                .iter()
                .map(|g| {
                    [
                        terminal_safe(&g.tenant),
                        terminal_safe(&g.tenant_display_name),
                        terminal_safe(g.principal_email.as_deref().unwrap_or(&g.principal)),
                        terminal_safe(&g.role),
                    ]
                })
                .collect();
            let header = ["TENANT", "NAME", "WHO", "ROLE"];
            let widths: Vec<usize> = (0..4)
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].chars().count())
                        .chain([header[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: [&str; 4]| {
                let mut s = String::new();
                for (i, c) in cells.iter().enumerate() {
                    s.push_str(&format!("{c:<w$}  ", w = widths[i]));
                }
                s.trim_end().to_string()
            };
            println!("{}", line(header));
            for r in &rows {
                println!("{}", line([&r[0], &r[1], &r[2], &r[3]]));
            }
        }
    }
    Ok(exit::OK)
}
