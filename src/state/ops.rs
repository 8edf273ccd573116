//! Edits of stored state that change nothing outside it (`state mv`, `state rm`).

use super::{State, StateChange, StateError};
use crate::resources::{kind, split_address};

/// Renames an object's address (a stable name changed) and everything that follows from it:
/// for a tenant, the objects whose address or `tenant` attribute names it.
pub fn move_address(state: &State, from: &str, to: &str) -> Result<Vec<StateChange>, StateError> {
    let object = state
        .objects
        .get(from)
        .ok_or_else(|| StateError::NoSuchAddress(from.to_string()))?;
    let (from_kind, from_key) =
        split_address(from).ok_or_else(|| StateError::BadAddress(from.to_string()))?;
    let (to_kind, to_key) =
        split_address(to).ok_or_else(|| StateError::BadAddress(to.to_string()))?;
    if from_kind != to_kind {
        return Err(StateError::KindMismatch {
            from: from_kind.to_string(),
            to: to_kind.to_string(),
        });
    }
    if state.objects.contains_key(to) {
        return Err(StateError::AddressTaken(to.to_string()));
    }
    if crate::manifest::format::check_name(to_key).is_err() && from_kind != "msp_role" {
        return Err(StateError::BadName(to_key.to_string()));
    }
    let mut changes = vec![StateChange::Move {
        from: from.to_string(),
        address: to.to_string(),
        object: object.clone(),
    }];
    if from_kind == "tenant" {
        for (address, other) in &state.objects {
            if address == from {
                continue;
            }
            let Some(k) = kind(&other.kind) else { continue };
            let mut updated = other.clone();
            (k.rename_tenant_reference)(&mut updated, from_key, to_key);
            let new_address = (k.after_tenant_rename)(address, from_key, to_key);
            match new_address {
                Some(new) if !state.objects.contains_key(&new) => changes.push(StateChange::Move {
                    from: address.clone(),
                    address: new,
                    object: updated,
                }),
                _ if updated != *other => changes.push(StateChange::Put {
                    address: address.clone(),
                    object: updated,
                }),
                _ => {}
            }
        }
    }
    Ok(changes)
}

/// Forgets objects without deleting anything they stand for.
pub fn remove_addresses(
    state: &State,
    addresses: &[String],
) -> Result<Vec<StateChange>, StateError> {
    addresses
        .iter()
        .map(|a| {
            if state.objects.contains_key(a) {
                Ok(StateChange::Delete { address: a.clone() })
            } else {
                Err(StateError::NoSuchAddress(a.clone()))
            }
        })
        .collect()
}

/// What `state migrate` copied.
#[derive(Debug, PartialEq, Eq)]
pub struct Migrated {
    pub partitions: usize,
    pub objects: usize,
    /// Apply history entries copied.
    pub history: usize,
}

/// Copies the whole state and its apply history from `from` to an empty `to` (another
/// backend: a file and a PostgreSQL database either way), holding both whole-state locks so nobody writes either
/// meanwhile, then reads it back from `to` and compares: the copy is verified, never assumed.
/// Refused when `to` already holds state, or when `from` has an interrupted apply's changes not
/// yet recorded (run an apply first: it records them).
pub fn migrate(
    from: &dyn super::StateStore,
    to: &dyn super::StateStore,
    info: super::LockInfo,
    timeout: std::time::Duration,
) -> Result<Migrated, MigrateError> {
    let from_lock = from.lock(info.clone(), timeout)?;
    let state = from.load()?;
    if state.recovered_changes > 0 {
        return Err(MigrateError::Unrecorded(state.recovered_changes));
    }
    if state.lineage.is_empty() {
        return Err(MigrateError::NothingStored(from.describe()));
    }
    let to_lock = to.lock(info, timeout)?;
    let existing = to.serials()?;
    if !existing.partitions.is_empty() {
        return Err(MigrateError::TargetNotEmpty(to.describe()));
    }
    to.write(&state, &to_lock)?;
    let history = from.read_history(&Default::default())?;
    to.append_history(&history, &to_lock)?;
    let copied = to.load()?;
    if copied.lineage != state.lineage || copied.objects != state.objects {
        return Err(MigrateError::Differs(to.describe()));
    }
    let copied_history = to.read_history(&Default::default())?;
    if canonical(&copied_history) != canonical(&history) {
        return Err(MigrateError::Differs(to.describe()));
    }
    drop(to_lock);
    drop(from_lock);
    Ok(Migrated {
        partitions: to.serials()?.partitions.len(),
        objects: copied.objects.len(),
        history: history.len(),
    })
}

/// History entries in an order both backends agree on (each keeps time order, but entries of
/// the same second may come back in another order).
fn canonical(entries: &[super::HistoryEntry]) -> Vec<String> {
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(e).expect("history entries serialize"))
        .collect();
    lines.sort();
    lines
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "{0} changes of an interrupted apply are not recorded yet: run `tenantform apply` first (it records them), then migrate"
    )]
    Unrecorded(usize),
    #[error("no state at {0}: nothing has been applied there yet")]
    NothingStored(String),
    #[error("{0} already holds state: migrate into an empty file or database schema")]
    TargetNotEmpty(String),
    #[error(
        "the copy at {0} reads back differently from the original: nothing should use it; the original is unchanged"
    )]
    Differs(String),
}
