//! `tenantform state ...`: inspect and edit stored state without touching anything it stands for.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::cli::common::{LockArgs, default_state_path};
use crate::cli::{CliError, Context, OutputFormat, exit};
use crate::render::terminal_safe;
use crate::state::file::FileStateStore;
use crate::state::ops::{move_address, remove_addresses};
use crate::state::{LockInfo, StateChange, StateStore, UnlockOutcome};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "State is kept where plan and apply keep it: .tenantform/state.json \
beside the manifests. Name the manifest directory as those commands take it: `state list PATH`, \
or -C PATH with any state command (before or after its name). --state FILE (or \
TENANTFORM_STATE) names the file itself and wins over both. With neither: \
./.tenantform/state.json.\n\n\
Examples:\n  \
tenantform state list examples/foggy-it\n  \
tenantform state show -C examples/foggy-it tenant.foggy-it --output json\n  \
tenantform state -C examples/foggy-it mv tenant.foggy-boston tenant.foggy-it\n  \
tenantform state rm -C customers/ guest.foggy-it.ben    # Entra is not touched\n  \
tenantform state list --state /srv/tenantform/state.json"
)]
pub struct Args {
    /// Manifest directory (or file) whose state to use: PATH/.tenantform/state.json, as plan and
    /// apply use it.
    #[arg(short = 'C', long = "manifests", value_name = "PATH", global = true)]
    manifests: Option<PathBuf>,
    /// State file [default: PATH/.tenantform/state.json, or ./.tenantform/state.json].
    #[arg(long, value_name = "FILE", env = "TENANTFORM_STATE", global = true)]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Subcommand, Debug)]
enum StateCommand {
    /// List the addresses of every object in state.
    #[command(
        after_help = "Examples:\n  tenantform state list examples/foggy-it\n  tenantform state list --output json -C customers/"
    )]
    List {
        /// Manifest directory (or file) whose state to list, as `plan PATH` takes it (same as
        /// -C PATH).
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
        #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show one object: attributes as last applied, ids, source and time.
    #[command(
        after_help = "Example:\n  tenantform state show -C examples/foggy-it tenant.foggy-it"
    )]
    Show {
        /// e.g. tenant.foggy-it (see `state list`)
        address: String,
        #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Rename an address (a stable name changed) without re-creating anything.
    #[command(
        after_help = "Moving a tenant also moves its MSP roles and updates the organizations under it.\n\nExample:\n  tenantform state mv -C examples/foggy-it tenant.foggy-boston tenant.foggy-it"
    )]
    Mv {
        from: String,
        to: String,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Forget objects: they stay as they are in the world, tenantform stops managing them.
    #[command(
        after_help = "Example:\n  tenantform state rm -C customers/ guest.foggy-it.ben organization.foggy-waltham"
    )]
    Rm {
        #[arg(required = true)]
        addresses: Vec<String>,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Clear a stale lock record by its id (refused while the process holding it runs).
    #[command(after_help = "Example:\n  tenantform state unlock -C customers/ 3f9c2a71")]
    Unlock { id: String },
    /// Copy the whole state to another backend (a file or a postgres:// database, either way),
    /// verified by reading it back. The original is left as it was.
    #[command(
        after_help = "Both sides are locked while copying; the target must be empty. Point plan and apply \
at the new location afterwards (--state or TENANTFORM_STATE); plans saved before the move are stale there.\n\n\
Examples:\n  \
tenantform state migrate -C customers/ --to 'postgres://tenantform@db.example/tenantform'\n  \
tenantform state migrate --state 'postgres://tenantform@db.example/tenantform' --to backup/state.json"
    )]
    Migrate {
        /// Where to copy the state: a state file path or a postgres:// URL.
        #[arg(long, value_name = "FILE|URL")]
        to: PathBuf,
        #[command(flatten)]
        lock: LockArgs,
    },
}

/// The state file: --state FILE, else beside the manifest directory named by `state list PATH`
/// or -C PATH (where `default_state_path` puts it for plan and apply), else ./.tenantform.
fn state_path(
    state: Option<PathBuf>,
    manifests: Option<PathBuf>,
    list_path: Option<PathBuf>,
) -> Result<PathBuf, CliError> {
    let manifests = match (list_path, manifests) {
        (Some(a), Some(b)) if a != b => {
            return Err(CliError::Usage(format!(
                "two manifest paths ({} and -C {}): give one",
                a.display(),
                b.display()
            )));
        }
        (a, b) => a.or(b),
    };
    if let Some(path) = &manifests {
        if path == Path::new("-") {
            return Err(CliError::Usage(
                "state commands need the manifest directory, not stdin (-)".into(),
            ));
        }
        if !path.exists() {
            return Err(CliError::Usage(format!(
                "manifest path {} does not exist",
                path.display()
            )));
        }
    }
    Ok(state.unwrap_or_else(|| default_state_path(manifests.as_deref().unwrap_or(Path::new(".")))))
}

/// Whether anything was ever stored at `store` (a snapshot, or the journal of an apply that
/// was interrupted before its first snapshot).
fn stored(store: &FileStateStore) -> bool {
    store.path().exists() || store.journal_path().exists()
}

/// Why there is nothing at `store`, and, when no location was given, how to name one.
fn nothing_stored(store: &FileStateStore, named: bool) -> String {
    let mut text = format!(
        "no state at {}: nothing has been applied there yet",
        store.path().display()
    );
    if !named {
        text.push_str(
            " (for the state of a manifest directory, name it: `tenantform state list PATH`, or \
             -C PATH with any state command)",
        );
    }
    text
}

pub fn run(_cx: &Context, args: Args) -> Result<u8, CliError> {
    let list_path = match &args.command {
        StateCommand::List { path, .. } => path.clone(),
        _ => None,
    };
    let named = args.state.is_some() || args.manifests.is_some() || list_path.is_some();
    let location = state_path(args.state, args.manifests, list_path)?;
    if let StateCommand::Migrate { to, lock } = &args.command {
        return migrate(&location, to, lock);
    }
    if crate::ops::settings::is_database_url(&location) {
        return Err(CliError::Usage(
            "`tenantform state` works on state files only so far; PostgreSQL state is read and written by plan, apply, drift and access".into(),
        ));
    }
    let store = FileStateStore::new(location);
    let must_exist = |store: &FileStateStore| {
        if stored(store) {
            Ok(())
        } else {
            Err(CliError::Usage(nothing_stored(store, named)))
        }
    };
    match args.command {
        StateCommand::List { output, .. } => {
            if !stored(&store) {
                eprintln!("note: {}.", nothing_stored(&store, named));
            }
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
            must_exist(&store)?;
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
            must_exist(&store)?;
            edit(&store, &lock, "state mv", |state| {
                move_address(state, &from, &to)
            })?;
            println!("Moved {} to {}.", terminal_safe(&from), terminal_safe(&to));
            Ok(exit::OK)
        }
        StateCommand::Rm { addresses, lock } => {
            must_exist(&store)?;
            let n = edit(&store, &lock, "state rm", |state| {
                remove_addresses(state, &addresses)
            })?;
            println!("Removed {n} object(s) from state; nothing outside state was changed.");
            Ok(exit::OK)
        }
        StateCommand::Migrate { .. } => unreachable!("migrate returned above"),
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

/// `state migrate`: copies the state at `from` to `to`, verified.
fn migrate(from: &Path, to: &Path, lock: &LockArgs) -> Result<u8, CliError> {
    use crate::ops::settings::open_store;
    if from == to {
        return Err(CliError::Usage(
            "--to names the state being migrated: give another location".into(),
        ));
    }
    let source = open_store(from)?;
    let target = open_store(to)?;
    let info = LockInfo::for_command(format!(
        "tenantform state migrate --to {}",
        target.describe()
    ));
    match crate::state::ops::migrate(source.as_ref(), target.as_ref(), info, lock.lock_timeout) {
        Ok(done) => {
            println!(
                "Copied {} objects in {} partitions from {} to {} (read back and compared).",
                done.objects,
                done.partitions,
                source.describe(),
                target.describe()
            );
            println!(
                "Next: use it with --state (or TENANTFORM_STATE); {} is unchanged.",
                source.describe()
            );
            Ok(exit::OK)
        }
        Err(crate::state::ops::MigrateError::State(e)) => Err(e.into()),
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}
