//! The fleet report as plain data: what a service manager reads on a Monday (overview, Secure
//! Score and its trend, licences and their waste, who can reach which customer), assembled by
//! pure functions from what the commands already read (a drift report, each tenant's licences
//! and Secure Score history, MSP role grants in state). `html` draws it; `--output json`
//! gives the same data.

pub mod html;
pub mod svg;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::drift::{Cause, DriftReport, TenantDrift};
use crate::licences::{Finding as LicenceFinding, OrganizationSeats, SkuSummary};
use crate::secure_score::{DailyScore, OpenControl, Trend, trend};

/// The whole report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport {
    /// Always `tenantform-fleet-report`.
    pub kind: &'static str,
    pub format_version: u32,
    /// When it was made (RFC 3339) and the day findings are judged on.
    pub generated_at: String,
    pub date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub overview: Overview,
    /// The fleet's mean Secure Score per day (the tenants with a record that day).
    pub fleet_score: Vec<FleetDay>,
    /// Every tenant, by name.
    pub tenants: Vec<TenantReport>,
    /// Who may switch into which customer (MSP roles in state).
    pub access: Vec<crate::access::Grant>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub tenants: usize,
    /// Tenants whose Entra, licences and Secure Score were all read.
    pub read: usize,
    /// Tenants that could not be read (each says why): the run fails.
    pub not_read: usize,
    /// Tenants with no Microsoft tenant id (nothing to read).
    pub unmapped: usize,
    /// Drift findings that count, by cause (`changed-in-entra`: 3).
    pub drift_by_cause: BTreeMap<String, usize>,
    /// Licence findings by kind (`paid-licence-on-disabled-user`: 2).
    pub licence_findings_by_kind: BTreeMap<String, usize>,
    pub unassigned_paid_seats: i64,
    /// The fleet's mean Secure Score now and 7 days before (percent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_score_change_7: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetDay {
    pub date: String,
    pub percentage: f64,
    pub tenants: usize,
}

/// One tenant, as every section shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantReport {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub microsoft_tenant_id: Option<String>,
    /// `read`, `not-read`, `consent-needed` or `unmapped`.
    pub status: &'static str,
    /// Why it was not read, per part (`licences: permission missing: ...`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_url: Option<String>,
    /// When tenantform last applied its record (from state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_apply: Option<String>,
    /// Its drift report part (findings, accepted ones), when drift was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<TenantDrift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_score: Option<ScoreView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licences: Option<LicenceView>,
    /// Sign-in security: MFA registration, admins without MFA, security defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posture: Option<crate::posture::Posture>,
}

/// A tenant's Secure Score: its trend, the history kept, the open controls worth most.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreView {
    pub trend: Trend,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// (day, percent), oldest first: every day kept.
    pub history: Vec<(String, f64)>,
    pub top_open_controls: Vec<OpenControl>,
}

impl ScoreView {
    pub fn of(history: &[DailyScore], latest: Option<&DailyScore>, top: Vec<OpenControl>) -> Self {
        ScoreView {
            trend: trend(history),
            current: latest.map(|d| d.current),
            max: latest.map(|d| d.max),
            history: history
                .iter()
                .map(|d| (d.date.clone(), round2(d.percentage())))
                .collect(),
            top_open_controls: top,
        }
    }
}

/// A tenant's licences: SKUs, findings, seats per organization.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenceView {
    pub skus: Vec<SkuSummary>,
    pub findings: Vec<LicenceFinding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_organization: Vec<OrganizationSeats>,
}

/// What was read for one tenant, as the report's assembly takes it.
#[derive(Clone, Debug, Default)]
pub struct TenantParts {
    pub name: String,
    pub display_name: Option<String>,
    pub microsoft_tenant_id: Option<String>,
    pub last_apply: Option<String>,
    pub secure_score: Option<ScoreView>,
    pub licences: Option<LicenceView>,
    pub posture: Option<crate::posture::Posture>,
    /// Parts that could not be read, with why.
    pub problems: Vec<String>,
}

/// Puts the report together: `tenants` in any order; `drift` when it was checked.
pub fn assemble(
    generated_at: String,
    date: String,
    commit: Option<String>,
    mut tenants: Vec<TenantParts>,
    drift: Option<&DriftReport>,
    access: Vec<crate::access::Grant>,
) -> FleetReport {
    tenants.sort_by(|a, b| a.name.cmp(&b.name));
    let drifts: BTreeMap<&str, &TenantDrift> = drift
        .map(|d| d.tenants.iter().map(|t| (t.tenant.as_str(), t)).collect())
        .unwrap_or_default();
    let mut overview = Overview {
        tenants: tenants.len(),
        ..Overview::default()
    };
    let mut reports = Vec::with_capacity(tenants.len());
    for t in tenants {
        let drift = drifts.get(t.name.as_str()).map(|d| (*d).clone());
        let mut problems = t.problems;
        let drift_failed = drift
            .as_ref()
            .and_then(|d| d.outcome.as_ref())
            .and_then(|o| match o {
                crate::outcome::Outcome::Failed(f) => Some(f.describe()),
                _ => None,
            });
        let consent_url = drift.as_ref().and_then(|d| d.consent_url.clone());
        if let Some(why) = drift_failed {
            problems.insert(0, format!("directory: {why}"));
        }
        let status = if t.microsoft_tenant_id.is_none() {
            overview.unmapped += 1;
            "unmapped"
        } else if consent_url.is_some() {
            overview.not_read += 1;
            "consent-needed"
        } else if !problems.is_empty() {
            overview.not_read += 1;
            "not-read"
        } else {
            overview.read += 1;
            "read"
        };
        if let Some(d) = &drift {
            for f in &d.findings {
                *overview
                    .drift_by_cause
                    .entry(cause_name(f.cause))
                    .or_default() += 1;
            }
        }
        if let Some(l) = &t.licences {
            for f in &l.findings {
                *overview
                    .licence_findings_by_kind
                    .entry(f.kind().to_string())
                    .or_default() += 1;
            }
            overview.unassigned_paid_seats += l
                .skus
                .iter()
                .map(SkuSummary::unassigned_paid_seats)
                .sum::<i64>();
        }
        reports.push(TenantReport {
            name: t.name,
            display_name: t.display_name,
            microsoft_tenant_id: t.microsoft_tenant_id,
            status,
            problems,
            consent_url,
            last_apply: t.last_apply,
            drift,
            secure_score: t.secure_score,
            licences: t.licences,
            posture: t.posture,
        });
    }
    let fleet_score: Vec<FleetDay> = fleet_days(&reports);
    // Now: the mean of each tenant's latest score (Microsoft makes each tenant's daily record
    // at its own time, so today's day alone would be the few already made); the change: the
    // mean of the tenants' own 7-day changes.
    let trends: Vec<&Trend> = reports
        .iter()
        .filter_map(|t| t.secure_score.as_ref().map(|s| &s.trend))
        .collect();
    let mean = |values: Vec<f64>| {
        (!values.is_empty()).then(|| round2(values.iter().sum::<f64>() / values.len() as f64))
    };
    overview.secure_score = mean(trends.iter().filter_map(|t| t.percentage).collect());
    overview.secure_score_change_7 = mean(trends.iter().filter_map(|t| t.change_7).collect());
    FleetReport {
        kind: "tenantform-fleet-report",
        format_version: 1,
        generated_at,
        date,
        commit,
        overview,
        fleet_score,
        tenants: reports,
        access,
    }
}

/// The fleet's mean per day, from the tenants' kept histories: each tenant counts from its
/// first day kept, with its last score carried forward over days it has no record for (a day
/// of a few early records, or a gap, does not make the fleet jump).
fn fleet_days(tenants: &[TenantReport]) -> Vec<FleetDay> {
    let histories: Vec<&[(String, f64)]> = tenants
        .iter()
        .filter_map(|t| t.secure_score.as_ref())
        .map(|s| s.history.as_slice())
        .filter(|h| !h.is_empty())
        .collect();
    let mut days: Vec<&str> = histories
        .iter()
        .flat_map(|h| h.iter().map(|(d, _)| d.as_str()))
        .collect();
    days.sort_unstable();
    days.dedup();
    let mut next = vec![0usize; histories.len()];
    let mut last: Vec<Option<f64>> = vec![None; histories.len()];
    days.into_iter()
        .map(|day| {
            let (mut sum, mut n) = (0.0, 0usize);
            for (i, history) in histories.iter().enumerate() {
                while next[i] < history.len() && history[next[i]].0.as_str() <= day {
                    last[i] = Some(history[next[i]].1);
                    next[i] += 1;
                }
                if let Some(pct) = last[i] {
                    sum += pct;
                    n += 1;
                }
            }
            FleetDay {
                date: day.to_string(),
                percentage: round2(sum / n as f64),
                tenants: n,
            }
        })
        .collect()
}

/// A fall over 7 days that lists a tenant before all the steady ones (percentage points).
pub const FALLING: f64 = 5.0;

/// The order the Secure Score section lists tenants in: those that fell by [`FALLING`] points
/// or more in 7 days first, steepest first; then the rest, lowest first; tenants without a
/// score are left out.
pub fn worst_scores_first(tenants: &[TenantReport]) -> Vec<&TenantReport> {
    let mut scored: Vec<&TenantReport> = tenants
        .iter()
        .filter(|t| {
            t.secure_score
                .as_ref()
                .is_some_and(|s| s.trend.percentage.is_some())
        })
        .collect();
    let key = |t: &TenantReport| {
        let trend = &t.secure_score.as_ref().expect("scored").trend;
        let change = trend.change_7.unwrap_or(0.0);
        if change <= -FALLING {
            (0, change)
        } else {
            (1, trend.percentage.unwrap_or(0.0))
        }
    };
    scored.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.partial_cmp(&kb.1).unwrap_or(std::cmp::Ordering::Equal))
            .then_with(|| a.name.cmp(&b.name))
    });
    scored
}

/// A drift cause as the report names it (its kebab-case name).
pub fn cause_name(cause: Cause) -> String {
    serde_json::to_value(cause)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
