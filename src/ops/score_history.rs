//! Keeping each tenant's Secure Score history in state (`secure_score.<tenant>`) beyond the
//! 90 days Microsoft keeps: the days a read brings that are not stored yet are added under
//! the tenant's partition lock, so running twice adds nothing and a concurrent apply of the
//! same tenant waits its turn. Tenants are recorded a few at a time: each write is one small
//! atomic partition write.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ops::{OpsError, Workspace};
use crate::outcome::{Cause, Failure};
use crate::resources::score_history::SECURE_SCORE;
use crate::secure_score::{DailyScore, history_attributes, history_from_attributes, merge};
use crate::state::{LockInfo, Partition, StateChange, StateError, StateObject, StateStore};

/// What recording gave for one tenant.
pub struct Recorded {
    /// Every day kept (stored and read), oldest first.
    pub history: Vec<DailyScore>,
    /// How many of them this run added.
    pub added: usize,
}

/// Adds `read` to each tenant's stored history and returns the histories, in the order given;
/// a tenant whose state could not be written fails by name (its read is still returned, as
/// `Err` with the days read, so the caller can show them and fail the run honestly).
#[allow(clippy::type_complexity)]
pub fn record_histories(
    ws: &Workspace,
    reads: Vec<(String, Vec<DailyScore>)>,
) -> Result<Vec<(String, Result<Recorded, (Vec<DailyScore>, Failure)>)>, OpsError> {
    let store = ws.store.as_ref();
    let info = LockInfo::for_command(ws.settings.command_line.clone());
    let source = crate::state::Source {
        digest: ws.manifests.fleet.digest(),
        commit: ws.manifests.commit.clone(),
    };
    if !reads.is_empty() {
        ensure_lineage(store, &info, ws.settings.lock_timeout)?;
    }
    let slots: Vec<Mutex<Option<(String, Vec<DailyScore>)>>> =
        reads.into_iter().map(|r| Mutex::new(Some(r))).collect();
    let results: Vec<Mutex<Option<_>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = ws
        .settings
        .graph
        .parallelism
        .clamp(1, 8)
        .min(slots.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = slots.get(i) else { break };
                    let (tenant, days) = slot.lock().expect("slot").take().expect("taken once");
                    let result = record_one(
                        store,
                        &info,
                        ws.settings.lock_timeout,
                        &source,
                        &tenant,
                        &days,
                    )
                    .map_err(|e| (days, failure(&e)));
                    *results[i].lock().expect("result") = Some((tenant, result));
                }
            });
        }
    });
    Ok(results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("result")
                .expect("every tenant recorded")
        })
        .collect())
}

fn record_one(
    store: &(dyn StateStore + Send + Sync),
    info: &LockInfo,
    timeout: std::time::Duration,
    source: &crate::state::Source,
    tenant: &str,
    read: &[DailyScore],
) -> Result<Recorded, StateError> {
    let partition = Partition::tenant(tenant)?;
    let address = crate::resources::address(SECURE_SCORE, tenant);
    let stored = |state: &crate::state::State| {
        state
            .objects
            .get(&address)
            .map(|o| history_from_attributes(&o.attributes))
            .unwrap_or_default()
    };
    // Most runs add a day or nothing: look without the lock first.
    let mut history = stored(&store.load_partition_only(&partition, &|a| a == address)?);
    if merge(&mut history.clone(), read.to_vec()) == 0 {
        return Ok(Recorded { history, added: 0 });
    }
    let lock = store.lock_partition(&partition, info.clone(), timeout)?;
    let mut state = store.load_partition(&partition)?;
    history = stored(&state);
    let added = merge(&mut history, read.to_vec());
    if added > 0 {
        state.apply_owned(StateChange::Put {
            address: address.clone(),
            object: StateObject {
                kind: SECURE_SCORE.into(),
                ids: Default::default(),
                attributes: history_attributes(&history),
                source: source.clone(),
                applied_at: crate::state::now_rfc3339(),
            },
        });
        store.write_partition(&partition, &state, &lock)?;
    }
    Ok(Recorded { history, added })
}

/// Tenant partitions hang off the catalog's lineage: a store nothing was applied to yet gets
/// one (an empty catalog), as `sync` does.
fn ensure_lineage(
    store: &(dyn StateStore + Send + Sync),
    info: &LockInfo,
    timeout: std::time::Duration,
) -> Result<(), OpsError> {
    if !store.serials()?.lineage.is_empty() {
        return Ok(());
    }
    let lock = store.lock_partition(&Partition::Catalog, info.clone(), timeout)?;
    let mut catalog = store.load_partition(&Partition::Catalog)?;
    if catalog.lineage.is_empty() {
        catalog.ensure_lineage();
        store.write_partition(&Partition::Catalog, &catalog, &lock)?;
    }
    Ok(())
}

fn failure(e: &StateError) -> Failure {
    match e {
        StateError::Locked { .. } | StateError::LockedUnknown | StateError::LockHeld { .. } => {
            Failure::new(Cause::Locked, format!("Secure Score history not kept: {e}"))
        }
        _ => Failure::new(
            Cause::StateError,
            format!("Secure Score history not kept: {e}"),
        ),
    }
}
