//! `tenantform schema`: print the manifest JSON Schema.

use crate::cli::{CliError, Context, exit};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which schema: the manifest format, the JSON plan (`plan --output json`) or the drift report.
    #[arg(value_enum, default_value_t = Which::Manifest)]
    which: Which,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    Manifest,
    Plan,
    Drift,
}

pub fn run(_cx: &Context, args: Args) -> Result<u8, CliError> {
    let schema = match args.which {
        Which::Manifest => crate::schema::manifest_schema(),
        Which::Plan => crate::schema::plan_schema(),
        Which::Drift => crate::schema::drift_schema(),
    };
    print!("{}", crate::schema::pretty(&schema));
    Ok(exit::OK)
}
