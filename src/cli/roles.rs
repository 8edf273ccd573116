//! `tenantform roles`: the Entra built-in directory roles manifests may name.

use serde::Serialize;

use crate::cli::{CliError, Context, OutputFormat, exit};
use crate::roles::RoleCatalog;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only roles whose name contains this text (case-insensitive).
    #[arg(long)]
    search: Option<String>,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    name: &'a str,
    template_id: &'a str,
}

pub fn run(_cx: &Context, args: Args) -> Result<u8, CliError> {
    let needle = args.search.as_deref().map(str::to_lowercase);
    let rows: Vec<Row> = RoleCatalog::builtin()
        .all()
        .iter()
        .filter(|r| {
            needle
                .as_ref()
                .is_none_or(|n| r.name.to_lowercase().contains(n))
        })
        .map(|r| Row {
            name: r.name,
            template_id: r.template_id,
        })
        .collect();
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialize")
        ),
        OutputFormat::Text => {
            let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
            for row in &rows {
                println!("{:width$}  {}", row.name, row.template_id);
            }
        }
    }
    Ok(exit::OK)
}
