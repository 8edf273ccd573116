//! Keeping each tenant's Secure Score history in state beyond the 90 days Microsoft keeps
//! (the `secure_score` observation, beside the tenant's partition: no lock, no serial, so a
//! read-only command never waits for an apply nor makes a saved plan stale). The days a read
//! brings that are not stored yet are added; running twice adds nothing. Tenants are recorded
//! a few at a time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ops::{OpsError, Workspace};
use crate::outcome::{Cause, Failure};
use crate::secure_score::{DailyScore, history_from_value, history_value, merge};
use crate::state::{StateError, StateStore};

/// The observation's name.
pub const SECURE_SCORE: &str = "secure_score";

/// What recording gave for one tenant.
pub struct Recorded {
    /// Every day kept (stored and read), oldest first.
    pub history: Vec<DailyScore>,
    /// How many of them this run added.
    pub added: usize,
}

/// One tenant's result: its history, or the days read and why they could not be kept.
pub type RecordResult = Result<Recorded, (Vec<DailyScore>, Failure)>;

/// Adds `read` to each tenant's stored history and returns the histories, in the order given;
/// a tenant whose history could not be read or written fails by name (with the days read, so
/// the caller can still show them and fail the run honestly).
pub fn record_histories(
    ws: &Workspace,
    reads: Vec<(String, Vec<DailyScore>)>,
) -> Result<Vec<(String, RecordResult)>, OpsError> {
    let store = ws.store.as_ref();
    type Slot = Mutex<Option<(String, Vec<DailyScore>)>>;
    let slots: Vec<Slot> = reads.into_iter().map(|r| Mutex::new(Some(r))).collect();
    let results: Vec<Mutex<Option<(String, RecordResult)>>> =
        slots.iter().map(|_| Mutex::new(None)).collect();
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
                    let former = former_names(ws, &tenant);
                    let result = record_one(store, &tenant, &former, &days)
                        .map_err(|e| (days, state_failure("Secure Score history", &e)));
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

/// One tenant's history as kept, without reading anything live (a tenant whose read failed
/// still shows the days kept), with the days kept under its former names (`formerNames`: a
/// renamed tenant keeps its history; the next write keeps them under the new name).
pub fn stored_history(
    store: &(dyn StateStore + Send + Sync),
    tenant: &str,
    former_names: &[String],
) -> Result<Vec<DailyScore>, StateError> {
    let mut history: Vec<DailyScore> = store
        .read_observation(tenant, SECURE_SCORE)?
        .map(|v| history_from_value(&v))
        .unwrap_or_default();
    for former in former_names {
        // A former name that is no valid tenant name any more has nothing kept.
        if let Ok(Some(kept)) = store.read_observation(former, SECURE_SCORE) {
            merge(&mut history, history_from_value(&kept));
        }
    }
    Ok(history)
}

fn record_one(
    store: &(dyn StateStore + Send + Sync),
    tenant: &str,
    former_names: &[String],
    read: &[DailyScore],
) -> Result<Recorded, StateError> {
    let stored = store.read_observation(tenant, SECURE_SCORE)?;
    let mut history = stored_history(store, tenant, former_names)?;
    let added = merge(&mut history, read.to_vec());
    let kept_here = stored.map_or(0, |v| history_from_value(&v).len());
    // Written when this run adds a day, or the history came (partly) from a former name.
    if added > 0 || kept_here < history.len() {
        store.write_observation(tenant, SECURE_SCORE, &history_value(&history))?;
    }
    Ok(Recorded { history, added })
}

/// The tenant's former names in the manifests (none for a tenant no longer declared).
pub fn former_names(ws: &Workspace, tenant: &str) -> Vec<String> {
    ws.manifests
        .fleet
        .catalog
        .tenants
        .get(tenant)
        .map(|t| t.former_names.clone())
        .unwrap_or_default()
}

/// A state error as a tenant's failure: `what` was not kept.
pub(crate) fn state_failure(what: &str, e: &StateError) -> Failure {
    match e {
        StateError::Locked { .. } | StateError::LockedUnknown | StateError::LockHeld { .. } => {
            Failure::new(Cause::Locked, format!("{what} not kept: {e}"))
        }
        _ => Failure::new(Cause::StateError, format!("{what} not kept: {e}")),
    }
}

/// A Secure Score read as the commands keep it while the fleet is read: the days without their per-control points, the
/// latest day and its top open controls.
pub struct ScoreReduced {
    pub days: Vec<crate::secure_score::DailyScore>,
    pub latest: Option<crate::secure_score::DailyScore>,
    pub top: Vec<crate::secure_score::OpenControl>,
}

impl ScoreReduced {
    pub fn of(read: crate::graph::secure_score::ScoreRead, top: usize) -> ScoreReduced {
        let latest = read.days.last().cloned();
        let top = latest
            .as_ref()
            .map(|d| crate::secure_score::top_open_controls(d, &read.profiles, top))
            .unwrap_or_default();
        let mut days = read.days;
        for day in &mut days {
            day.controls = Vec::new();
        }
        ScoreReduced {
            days,
            latest: latest.map(|d| crate::secure_score::DailyScore {
                controls: Vec::new(),
                ..d
            }),
            top,
        }
    }
}
