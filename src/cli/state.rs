//! `tenantform state ...`: inspect and edit stored state without touching anything it stands for.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::cli::common::{LockArgs, default_state_path};
use crate::cli::{CliError, Context, OutputFormat, exit};
use crate::render::terminal_safe;
use crate::state::history::HistoryFilter;
use crate::state::ops::{move_address, remove_addresses};
use crate::state::{
    Actor, HistoryEntry, HistoryRead, LockInfo, Provenance, StateChange, StateStore, UnlockOutcome,
};

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
tenantform state history -C customers/ --tenant foggy-it --since 30d\n  \
tenantform state list --state /srv/tenantform/state.json\n  \
tenantform state list --state 'postgres://tenantform@db.example/tenantform'"
)]
pub struct Args {
    /// Manifest directory (or file) whose state to use: PATH/.tenantform/state.json, as plan and
    /// apply use it.
    #[arg(short = 'C', long = "manifests", value_name = "PATH", global = true)]
    manifests: Option<PathBuf>,
    /// State file or postgres:// URL [default: PATH/.tenantform/state.json, or
    /// ./.tenantform/state.json].
    #[arg(long, value_name = "FILE|URL", env = "TENANTFORM_STATE", global = true)]
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
    /// Every change tenantform made: when, who (person or CI run), from which commit and
    /// plan, and how it ended. Follows renames.
    #[command(
        after_help = "Each apply records every change it makes (and each one that failed) \
with the time, the actor (the local user@host, or the GitHub Actions / Azure DevOps run and who \
started it), the manifests' commit, the plan id (shown by `plan`) and the outcome; `state mv` \
and `state rm` are recorded too. History is kept for good, moves with `state migrate`, and an \
address or tenant is followed back through its former names.\n\n\
Examples:\n  \
tenantform state history -C customers/ --address directory_role.foggy-it.dana-support.62e90394-69f5-4237-9190-012177145e10.root\n  \
tenantform state history -C customers/ --tenant foggy-it --since 2026-11-01\n  \
tenantform state history -C customers/ --since 7d --output json"
    )]
    History {
        /// Manifest directory (or file) whose state to read, as `plan PATH` takes it (same as
        /// -C PATH).
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
        /// Only this tenant (and what it was called before a rename).
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Only this address (and its former addresses), e.g. guest.foggy-it.dana-support.
        #[arg(long, value_name = "ADDRESS")]
        address: Option<String>,
        /// Only changes at or after this: a date (2026-11-01), an RFC 3339 time, or an age
        /// (90d, 12h, 30m).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
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
fn stored(store: &dyn StateStore) -> Result<bool, CliError> {
    Ok(!store.serials()?.partitions.is_empty() || !store.load()?.objects.is_empty())
}

/// Why there is nothing at `store`, and, when no location was given, how to name one.
fn nothing_stored(store: &dyn StateStore, named: bool) -> String {
    let mut text = format!(
        "no state at {}: nothing has been applied there yet",
        store.describe()
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
        StateCommand::List { path, .. } | StateCommand::History { path, .. } => path.clone(),
        _ => None,
    };
    let named = args.state.is_some() || args.manifests.is_some() || list_path.is_some();
    let location = state_path(args.state, args.manifests, list_path)?;
    if let StateCommand::Migrate { to, lock } = &args.command {
        return migrate(&location, to, lock);
    }
    let store = crate::ops::settings::open_store(&location)?;
    let store = store.as_ref();
    let must_exist = |store: &dyn StateStore| {
        if stored(store)? {
            Ok(())
        } else {
            Err(CliError::Usage(nothing_stored(store, named)))
        }
    };
    match args.command {
        StateCommand::History {
            tenant,
            address,
            since,
            output,
            ..
        } => {
            let since = since
                .map(|s| {
                    crate::state::history::parse_since(&s, jiff::Timestamp::now())
                        .map_err(|e| CliError::Usage(format!("--since {s}: {e}")))
                })
                .transpose()?;
            let filter = HistoryFilter {
                tenant,
                address,
                since,
            };
            let entries = read_history(store, &filter)?;
            match output {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&entries).expect("history serializes")
                ),
                OutputFormat::Text => {
                    if entries.is_empty() {
                        println!("No changes recorded{}.", describe_filter(&filter));
                    }
                    for entry in &entries {
                        print!("{}", show_entry(entry));
                    }
                }
            }
            Ok(exit::OK)
        }
        StateCommand::List { output, .. } => {
            if !stored(store)? {
                eprintln!("note: {}.", nothing_stored(store, named));
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
            must_exist(store)?;
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
            must_exist(store)?;
            edit(store, &lock, "state mv", |state| {
                move_address(state, &from, &to)
            })?;
            println!("Moved {} to {}.", terminal_safe(&from), terminal_safe(&to));
            Ok(exit::OK)
        }
        StateCommand::Rm { addresses, lock } => {
            must_exist(store)?;
            let n = edit(store, &lock, "state rm", |state| {
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

/// Locks, loads, applies `changes` and writes state once, then records them in history
/// (after the write: these change nothing outside state, so history never claims an edit that
/// did not happen); returns how many changes.
fn edit(
    store: &dyn StateStore,
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
    let provenance = Provenance::new(command, None, None, Actor::current());
    let entries: Vec<HistoryEntry> = changes
        .iter()
        .map(|change| crate::state::history::edit_entry(&provenance, &state, change))
        .collect();
    for change in &changes {
        state.apply_change(change);
    }
    state.serial += 1;
    state.ensure_lineage();
    store.write(&state, &lock)?;
    store.append_history(&entries, &lock).map_err(|e| {
        CliError::Usage(format!(
            "state was changed, but its history could not be recorded: {e}"
        ))
    })?;
    Ok(changes.len())
}

/// The entries `filter` asks for: the catalog's history first (it holds tenant renames), then
/// the tenants it names under every name they had.
fn read_history(
    store: &dyn StateStore,
    filter: &HistoryFilter,
) -> Result<Vec<HistoryEntry>, CliError> {
    let tenants = match &filter.tenant {
        None => None,
        Some(_) => {
            let catalog = store.read_history(&HistoryRead::default().only_catalog())?;
            crate::state::history::tenants_to_read(filter, &catalog)
        }
    };
    // Entries since the time asked for are all a former name needs: its entries after it
    // come before its move, so the move is after it too.
    let entries = store.read_history(&HistoryRead {
        tenants,
        since: filter.since,
        catalog_only: false,
    })?;
    Ok(crate::state::history::select(entries, filter))
}

fn describe_filter(filter: &HistoryFilter) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &filter.tenant {
        parts.push(format!("tenant {}", terminal_safe(t)));
    }
    if let Some(a) = &filter.address {
        parts.push(format!("address {}", terminal_safe(a)));
    }
    if let Some(s) = &filter.since {
        parts.push(format!("since {s}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" for {}", parts.join(", "))
    }
}

/// One entry as a block of text: the change, who and where from, then its attributes.
fn show_entry(entry: &HistoryEntry) -> String {
    use crate::state::history::HistoryOutcome;
    let mut text = format!(
        "{}  {:<7} {}",
        terminal_safe(&entry.at),
        entry.op.as_str(),
        terminal_safe(&entry.address)
    );
    if let Some(from) = &entry.from {
        text.push_str(&format!(" (from {})", terminal_safe(from)));
    }
    if let HistoryOutcome::Failed { cause, message } = &entry.outcome {
        text.push_str(&format!(
            "  FAILED ({}): {}",
            cause.describe(),
            terminal_safe(message)
        ));
    }
    text.push('\n');
    text.push_str(&format!(
        "    by {} with `tenantform {}`\n",
        terminal_safe(&entry.who.to_string()),
        terminal_safe(&entry.command)
    ));
    let mut origin = Vec::new();
    if let Some(commit) = &entry.commit {
        origin.push(format!("commit {}", terminal_safe(commit)));
    }
    if let Some(plan) = &entry.plan {
        origin.push(format!("plan {}", terminal_safe(plan)));
    }
    origin.push(format!("run {}", terminal_safe(&entry.run)));
    text.push_str(&format!("    {}\n", origin.join(", ")));
    for change in entry.changes.iter() {
        let show = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map_or_else(|| "(none)".to_string(), crate::render::show_value)
        };
        let line = match entry.op {
            crate::state::history::HistoryOp::Create | crate::state::history::HistoryOp::Adopt => {
                format!("{} = {}", change.path, show(&change.after))
            }
            crate::state::history::HistoryOp::Delete => {
                format!("{} = {} (removed)", change.path, show(&change.before))
            }
            _ => format!(
                "{}: {} -> {}",
                change.path,
                show(&change.before),
                show(&change.after)
            ),
        };
        text.push_str(&format!("    {}\n", terminal_safe(&line)));
    }
    text
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
                "Copied {} objects in {} partitions and {} history entries from {} to {} (read back and compared).",
                done.objects,
                done.partitions,
                done.history,
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
