//! Refreshing which contact holds which licence (`licence_holdings.<tenant>`) on its own
//! schedule: `users/delta` does not track `licenseAssignmentStates`, so a tenant whose
//! holdings are older than the interval (or missing) has its users read in full with
//! `$select` (the `licenses` read: one `$batch`), and the holdings are written beside the
//! tenant's partition (no lock, no serial) as each tenant's read ends, so a round holds what
//! `--parallelism` tenants hold, never the fleet's users.

use std::sync::Arc;
use std::time::Duration;

use crate::graph::licences::read_licences;
use crate::licences::{holdings, holdings_read_at, holdings_value, summarize};
use crate::ops::fleet_read::read_each;
use crate::ops::{OpsError, Reporter, Workspace};
use crate::outcome::Failure;
use crate::state::StateStore;

/// The observation's name.
pub const LICENCE_HOLDINGS: &str = "licence_holdings";

/// What a refresh did.
#[derive(Debug, Default)]
pub struct Refreshed {
    /// Tenants whose holdings were read and stored.
    pub refreshed: usize,
    /// Tenants whose holdings were fresh enough.
    pub fresh: usize,
    /// Tenants whose licences could not be read or stored, with why.
    pub failures: Vec<(String, Failure)>,
}

/// Refreshes the holdings of those of `tenants` last read more than `every` before `now`.
pub fn refresh_holdings(
    ws: &mut Workspace,
    tenants: &[String],
    every: Duration,
    now: jiff::Timestamp,
    reporter: &dyn Reporter,
) -> Result<Refreshed, OpsError> {
    let mut done = Refreshed::default();
    let mut due = Vec::new();
    for tenant in tenants {
        let read_at = ws
            .store
            .read_observation(tenant, LICENCE_HOLDINGS)?
            .and_then(|v| holdings_read_at(&v));
        let fresh = read_at.is_some_and(|at| is_fresh(at, now, every));
        if fresh {
            done.fresh += 1;
        } else {
            due.push(tenant.clone());
        }
    }
    if due.is_empty() {
        return Ok(done);
    }
    let store: Arc<dyn StateStore + Send + Sync> = ws.store.clone();
    let names: std::collections::HashMap<String, String> = ws
        .manifests
        .fleet
        .catalog
        .tenants
        .values()
        .filter_map(|t| Some((t.microsoft_tenant_id.clone()?, t.name.clone())))
        .collect();
    let fleet = read_each(ws, &due, "sync", reporter, |client, tid| {
        let store = store.clone();
        let tenant = names.get(&tid).cloned().unwrap_or_default();
        async move {
            let read = read_licences(&client, &tid).await?;
            let skus = summarize(&read.skus, &read.subscriptions);
            let held = holdings(&skus, &read.users);
            let read_at = jiff::Timestamp::now();
            let value = holdings_value(&read_at.to_string(), &held);
            // Written as the read ends, off the runtime: the users go with this task.
            Ok(tokio::task::spawn_blocking(move || {
                store
                    .write_observation(&tenant, LICENCE_HOLDINGS, &value)
                    .map_err(|e| {
                        Box::new(crate::ops::score_history::state_failure(
                            "licence holdings",
                            &e,
                        ))
                    })
            })
            .await
            .expect("a holdings write does not panic"))
        }
    })?;
    done.failures = fleet.failures;
    for (tenant, _, written) in fleet.read {
        match written {
            Ok(()) => done.refreshed += 1,
            Err(failure) => done.failures.push((tenant, *failure)),
        }
    }
    done.failures.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(done)
}

/// Whether holdings read at `read_at` are younger than `every` at `now`; a read stamped after
/// `now` (another run's, or a clock stepped back) is fresh too.
fn is_fresh(read_at: jiff::Timestamp, now: jiff::Timestamp, every: Duration) -> bool {
    let every = jiff::SignedDuration::try_from(every).unwrap_or(jiff::SignedDuration::MAX);
    now.duration_since(read_at) < every
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_are_fresh_for_the_interval_and_when_stamped_later_than_now() {
        let at: jiff::Timestamp = "2026-12-07T08:00:00Z".parse().unwrap();
        let day = Duration::from_secs(24 * 3600);
        let later = |secs: i64| {
            at.checked_add(jiff::SignedDuration::from_secs(secs))
                .unwrap()
        };
        assert!(is_fresh(at, later(3600), day));
        assert!(!is_fresh(at, later(24 * 3600), day), "a day old: due");
        assert!(is_fresh(at, later(-1), day), "stamped a moment after now");
        assert!(!is_fresh(at, later(1), Duration::ZERO), "0s: always due");
    }
}
