//! `tenantform contacts`: the contacts in state, as a table, CSV or JSON, written tenant by
//! tenant as they are read.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use crate::cli::common::Location;
use crate::cli::{CliError, Context, exit};
use crate::ops::contacts::{ContactQuery, ContactsError, StatusFilter, list_contacts};
use crate::render::contacts::{JsonArray, csv_header, csv_row, table_block};
use crate::render::{plural, terminal_safe};

/// How `contacts` prints (CSV is for spreadsheets, which the shared text/json choice lacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ContactsOutput {
    /// Aligned columns for people, a block per tenant.
    #[default]
    Table,
    /// RFC 4180 with a header row; cells a spreadsheet would run as formulas are defused.
    Csv,
    /// A JSON array of objects (camelCase fields, the same as the CSV columns).
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Manifest directory whose state to read: PATH/.tenantform/state.json, as plan and apply
    /// keep it.
    #[arg(value_name = "PATH", default_value = ".")]
    path: PathBuf,
    /// State file or postgres:// URL [default: PATH/.tenantform/state.json].
    #[arg(long, value_name = "FILE|URL", env = "TENANTFORM_STATE")]
    state: Option<PathBuf>,
    /// Only this tenant's contacts (its stable name; repeat for several).
    #[arg(long = "tenant", value_name = "NAME")]
    tenants: Vec<String>,
    /// Only contacts of this organization (its stable name; repeat for several).
    #[arg(long = "organization", value_name = "NAME")]
    organizations: Vec<String>,
    /// Only archived contacts (users who left the sync rules, were disabled or deleted).
    #[arg(long, conflicts_with = "all")]
    archived: bool,
    /// Active and archived contacts.
    #[arg(long)]
    all: bool,
    #[arg(long, short, value_enum, default_value_t = ContactsOutput::Table)]
    output: ContactsOutput,
}

pub fn run(_cx: &Context, args: Args) -> Result<u8, CliError> {
    let location = Location {
        path: args.path,
        state: args.state,
        reference: None,
    };
    let store = location.store()?;
    let query = ContactQuery {
        tenants: args.tenants,
        organizations: args.organizations,
        status: match (args.archived, args.all) {
            (true, _) => StatusFilter::Archived,
            (_, true) => StatusFilter::All,
            _ => StatusFilter::Active,
        },
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut json = JsonArray::default();
    let mut first = true;
    let listed = list_contacts(store.as_ref(), &query, &mut |rows| {
        match args.output {
            ContactsOutput::Table => {
                if !first {
                    out.write_all(b"\n")?;
                }
                out.write_all(table_block(rows).as_bytes())?;
            }
            ContactsOutput::Csv => {
                if first {
                    out.write_all(csv_header().as_bytes())?;
                }
                for row in rows {
                    out.write_all(csv_row(row).as_bytes())?;
                }
            }
            ContactsOutput::Json => {
                for row in rows {
                    out.write_all(json.element(row).as_bytes())?;
                }
            }
        }
        first = false;
        Ok(())
    })
    .map_err(|e| match e {
        ContactsError::State(e) => CliError::from(e),
        ContactsError::Output(source) => stdout_error(source),
        other => CliError::Usage(other.to_string()),
    })?;
    match args.output {
        ContactsOutput::Table if listed.contacts == 0 => {
            eprintln!(
                "No {} in {}.",
                describe(&query),
                terminal_safe(&store.describe())
            );
        }
        ContactsOutput::Table => writeln!(
            out,
            "\n{} in {}.",
            plural(listed.contacts, "contact"),
            plural(listed.tenants, "tenant")
        )
        .map_err(stdout_error)?,
        // A header even when empty: a script reading columns by name still finds them.
        ContactsOutput::Csv if first => out
            .write_all(csv_header().as_bytes())
            .map_err(stdout_error)?,
        ContactsOutput::Csv => {}
        ContactsOutput::Json => out.write_all(json.end().as_bytes()).map_err(stdout_error)?,
    }
    out.flush().map_err(stdout_error)?;
    Ok(exit::OK)
}

fn stdout_error(source: std::io::Error) -> CliError {
    CliError::Io {
        path: "stdout".into(),
        source,
    }
}

/// "active contacts of tenant foggy-it, organization foggy-boston" for the empty note.
fn describe(query: &ContactQuery) -> String {
    let mut text = match query.status {
        StatusFilter::Active => "active contacts",
        StatusFilter::Archived => "archived contacts",
        StatusFilter::All => "contacts",
    }
    .to_string();
    let mut parts = Vec::new();
    if !query.tenants.is_empty() {
        parts.push(format!("tenant {}", query.tenants.join(", ")));
    }
    if !query.organizations.is_empty() {
        parts.push(format!("organization {}", query.organizations.join(", ")));
    }
    if !parts.is_empty() {
        text.push_str(&format!(" of {}", terminal_safe(&parts.join("; "))));
    }
    text
}
