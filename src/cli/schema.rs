//! `tenantform schema`: print the manifest JSON Schema.

use crate::cli::{CliError, Context, exit};

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_cx: &Context, _args: Args) -> Result<u8, CliError> {
    print!("{}", crate::schema::manifest_schema_text());
    Ok(exit::OK)
}
