//! `secure-score`: each selected tenant's Secure Score read live, its trend over 7, 30 and 90
//! days and the open controls worth the most points (pure: `crate::secure_score`), and the
//! fleet's mean; beside it, in the same per-tenant read, the tenant's sign-in security posture
//! (`crate::posture`: MFA registration, admins without MFA, security defaults).

use crate::graph::posture::read_posture;
use crate::graph::secure_score::read_secure_score;
use crate::ops::fleet_read::read_each;
use crate::ops::score_history::ScoreReduced;
use crate::ops::{OpsError, Reporter, Workspace};
use crate::outcome::Failure;
use crate::posture::Posture;
use crate::secure_score::{ComparativeScore, OpenControl, Trend, trend};

/// One tenant's score.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantScore {
    pub tenant: String,
    pub microsoft_tenant_id: String,
    pub trend: Trend,
    /// The latest day's points and maximum (none: the tenant has no Secure Score records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub comparative: Vec<ComparativeScore>,
    pub top_open_controls: Vec<OpenControl>,
    /// The tenant's sign-in security posture, read beside the score.
    pub posture: Posture,
    /// Days of history kept in state for the tenant (the trend's base).
    pub days_kept: usize,
}

pub struct ScoresRun {
    pub tenants: Vec<TenantScore>,
    /// The mean of the tenants' latest percentages (none when no tenant has a score).
    pub fleet_percentage: Option<f64>,
    pub failures: Vec<(String, Failure)>,
    pub unmapped: Vec<String>,
}

/// Reads the Secure Score of the tenants named in `tenants` (every mapped tenant when empty),
/// with each tenant's `top` open controls.
pub fn secure_scores(
    ws: &mut Workspace,
    tenants: &[String],
    top: usize,
    reporter: &dyn Reporter,
) -> Result<ScoresRun, OpsError> {
    let fleet = read_each(
        ws,
        tenants,
        "secure-score",
        reporter,
        |client, tid| async move {
            // Two `$batch`es at once: the score's and the posture's.
            let (score, posture) = futures_util::future::join(
                read_secure_score(&client, &tid),
                read_posture(&client, &tid),
            )
            .await;
            // Reduced as the read ends: the fleet's control points are never held at once.
            Ok((ScoreReduced::of(score?, top), posture?))
        },
    )?;
    let mut postures = std::collections::HashMap::new();
    let fleet = crate::ops::fleet_read::FleetRead {
        read: (fleet.read.into_iter())
            .map(|(tenant, tid, (score, posture))| {
                postures.insert(tenant.clone(), posture);
                (tenant, tid, score)
            })
            .collect(),
        failures: fleet.failures,
        unmapped: fleet.unmapped,
        requests: fleet.requests,
        token_requests: fleet.token_requests,
    };
    let mut failures = fleet.failures;
    let mut others = Vec::with_capacity(fleet.read.len());
    let mut reads = Vec::with_capacity(fleet.read.len());
    for (tenant, tid, read) in fleet.read {
        // The latest day's top controls come from the read: the history keeps no points.
        others.push((tid, read.latest, read.top));
        reads.push((tenant, read.days));
    }
    let recorded = crate::ops::score_history::record_histories(ws, reads)?;
    let mut tenants = Vec::with_capacity(recorded.len());
    for ((tenant, recorded), (microsoft_tenant_id, latest, top_open_controls)) in
        recorded.into_iter().zip(others)
    {
        let history = match recorded {
            Ok(r) => r.history,
            Err((days, failure)) => {
                failures.push((tenant.clone(), failure));
                days
            }
        };
        let latest = latest.as_ref();
        tenants.push(TenantScore {
            trend: trend(&history),
            current: latest.map(|d| d.current),
            max: latest.map(|d| d.max),
            comparative: latest.map(|d| d.comparative.clone()).unwrap_or_default(),
            top_open_controls,
            posture: postures
                .remove(&tenant)
                .expect("every tenant read has its posture"),
            days_kept: history.len(),
            tenant,
            microsoft_tenant_id,
        });
    }
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    let scored: Vec<f64> = tenants.iter().filter_map(|t| t.trend.percentage).collect();
    Ok(ScoresRun {
        fleet_percentage: (!scored.is_empty())
            .then(|| scored.iter().sum::<f64>() / scored.len() as f64),
        tenants,
        failures,
        unmapped: fleet.unmapped,
    })
}
