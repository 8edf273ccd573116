//! `tenantform state ...`: inspect and edit stored state without touching anything it stands for.

use std::path::PathBuf;

use clap::Subcommand;

use crate::cli::common::{LockArgs, default_state_path};
use crate::cli::{CliError, Context, OutputFormat, exit};
use crate::render::terminal_safe;
use crate::state::file::FileStateStore;
use crate::state::ops::{move_address, remove_addresses};
use crate::state::{LockInfo, StateChange, StateStore, UnlockOutcome};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// State file [default: ./.tenantform/state.json].
    #[arg(long, value_name = "FILE", env = "TENANTFORM_STATE", global = true)]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Subcommand, Debug)]
enum StateCommand {
    /// List the addresses of every object in state.
    List {
        #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show one object: attributes as last applied, ids, source and time.
    Show {
        /// e.g. tenant.foggy-it
        address: String,
        #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Rename an address (a stable name changed) without re-creating anything.
    #[command(
        after_help = "Moving a tenant also moves its MSP roles and updates the organizations under it.\n\nExample:\n  tenantform state mv tenant.foggy-boston tenant.foggy-it"
    )]
    Mv {
        from: String,
        to: String,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Forget objects: they stay as they are in the world, tenantform stops managing them.
    Rm {
        #[arg(required = true)]
        addresses: Vec<String>,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Clear a stale lock record by its id (refused while the process holding it runs).
    Unlock { id: String },
}

fn store(path: Option<PathBuf>) -> FileStateStore {
    FileStateStore::new(path.unwrap_or_else(|| default_state_path(std::path::Path::new("."))))
}

pub fn run(_cx: &Context, args: Args) -> Result<u8, CliError> {
    let store = store(args.state);
    match args.command {
        StateCommand::List { output } => {
            let state = store.load()?;
            match output {
                OutputFormat::Json => {
                    let rows: Vec<serde_json::Value> = state
                        .objects
                        .iter()
                        .map(|(address, o)| serde_json::json!({"address": address, "kind": o.kind}))
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&rows).expect("rows serialize")
                    );
                }
                OutputFormat::Text => {
                    for address in state.objects.keys() {
                        println!("{}", terminal_safe(address));
                    }
                }
            }
            Ok(exit::OK)
        }
        StateCommand::Show { address, output } => {
            let state = store.load()?;
            let object = state
                .objects
                .get(&address)
                .ok_or_else(|| crate::state::StateError::NoSuchAddress(address.clone()))?;
            let json = serde_json::to_string_pretty(
                &serde_json::json!({"address": address, "object": object}),
            )
            .expect("object serializes");
            match output {
                OutputFormat::Json => println!("{json}"),
                OutputFormat::Text => {
                    let mut rows: Vec<(String, String)> =
                        vec![("kind".into(), object.kind.clone())];
                    rows.extend(
                        object
                            .ids
                            .iter()
                            .map(|(k, v)| (format!("ids.{k}"), v.clone())),
                    );
                    rows.extend(
                        object
                            .attributes
                            .iter()
                            .map(|(k, v)| (k.clone(), crate::render::show_value(v))),
                    );
                    rows.push(("source".into(), object.source.digest.clone()));
                    if let Some(commit) = &object.source.commit {
                        rows.push(("commit".into(), commit.clone()));
                    }
                    rows.push(("appliedAt".into(), object.applied_at.clone()));
                    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                    println!("# {}", terminal_safe(&address));
                    for (k, v) in rows {
                        println!("{:width$} = {}", terminal_safe(&k), terminal_safe(&v));
                    }
                }
            }
            Ok(exit::OK)
        }
        StateCommand::Mv { from, to, lock } => {
            edit(&store, &lock, "state mv", |state| {
                move_address(state, &from, &to)
            })?;
            println!("Moved {} to {}.", terminal_safe(&from), terminal_safe(&to));
            Ok(exit::OK)
        }
        StateCommand::Rm { addresses, lock } => {
            let n = edit(&store, &lock, "state rm", |state| {
                remove_addresses(state, &addresses)
            })?;
            println!("Removed {n} object(s) from state; nothing outside state was changed.");
            Ok(exit::OK)
        }
        StateCommand::Unlock { id } => {
            match store.unlock(&id)? {
                UnlockOutcome::Cleared => println!("Cleared lock {id}."),
                UnlockOutcome::NotLocked => println!("State is not locked."),
            }
            Ok(exit::OK)
        }
    }
}

/// Locks, loads, applies `changes` and writes state once; returns how many changes.
fn edit(
    store: &FileStateStore,
    lock_args: &LockArgs,
    command: &str,
    changes: impl FnOnce(&crate::state::State) -> Result<Vec<StateChange>, crate::state::StateError>,
) -> Result<usize, CliError> {
    let lock = store.lock(
        LockInfo::for_command(format!("tenantform {command}")),
        lock_args.lock_timeout,
    )?;
    let mut state = store.load()?;
    let changes = changes(&state)?;
    for change in &changes {
        state.apply_change(change);
    }
    state.serial += 1;
    state.ensure_lineage();
    store.write(&state, &lock)?;
    Ok(changes.len())
}
