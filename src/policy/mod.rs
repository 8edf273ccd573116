//! Tenant policies: what an MSP promises a customer about its Secure Score and licences
//! (`kind: TenantPolicy`), and whether a tenant keeps those promises. Pure: the policy, the
//! tenant's licences (summed up and their findings, `crate::licences`) and its Secure Score
//! history (`crate::secure_score`) in; breaches, each with its numbers, and notes on what could
//! not be checked out. `drift` reports each breach as a finding addressed
//! `policy.<tenant>.<expectation>`, so a `DriftException` can accept it.

use serde::{Deserialize, Serialize};

use crate::licences::{Finding, FindingOptions, SkuSummary};
use crate::secure_score::DailyScore;

/// One tenant's policy, as resolved from the `TenantPolicy` that names it. Every expectation is
/// optional; an absent one is not checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantPolicy {
    /// The `TenantPolicy` document's name.
    pub name: String,
    /// `secureScore.minimumPercent`: the latest Secure Score is at least this share of the
    /// maximum (0-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_percent: Option<f64>,
    /// `secureScore.maxDrop7Days`: the score falls by at most this many percentage points
    /// over 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_drop_7_days: Option<f64>,
    /// `licences.noPaidLicenceOnDisabledUsers`: no paid licence on a disabled or soft-deleted
    /// user.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_paid_licence_on_disabled_users: bool,
    /// `licences.maxUnassignedPaidSeats`: at most this many paid seats nobody holds, summed
    /// over the tenant's paid SKUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unassigned_paid_seats: Option<i64>,
    /// `licences.subscriptionEndingWithinDays`: a paid subscription that renews or ends within
    /// this many days is a breach until an exception says someone has seen to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_ending_within_days: Option<i64>,
}

// The numbers are finite: manifests are checked for ranges before a policy is made.
impl Eq for TenantPolicy {}

impl TenantPolicy {
    /// Whether checking it needs the tenant's licences read.
    pub fn needs_licences(&self) -> bool {
        self.no_paid_licence_on_disabled_users
            || self.max_unassigned_paid_seats.is_some()
            || self.subscription_ending_within_days.is_some()
    }

    /// Whether checking it needs the tenant's Secure Score read.
    pub fn needs_secure_score(&self) -> bool {
        self.minimum_percent.is_some() || self.max_drop_7_days.is_some()
    }

    /// The expectations it declares, in [`Expectation`] order.
    pub fn expectations(&self) -> Vec<Expectation> {
        [
            (
                Expectation::SecureScoreMinimum,
                self.minimum_percent.is_some(),
            ),
            (Expectation::SecureScoreDrop, self.max_drop_7_days.is_some()),
            (
                Expectation::PaidLicenceOnDisabledUsers,
                self.no_paid_licence_on_disabled_users,
            ),
            (
                Expectation::UnassignedPaidSeats,
                self.max_unassigned_paid_seats.is_some(),
            ),
            (
                Expectation::SubscriptionEnding,
                self.subscription_ending_within_days.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(e, declared)| declared.then_some(e))
        .collect()
    }

    /// How far ahead the licence findings [`check`] is given must look: at least the days
    /// the policy watches for ending subscriptions.
    pub fn finding_options(&self, today: jiff::civil::Date) -> FindingOptions {
        FindingOptions {
            today,
            ending_within_days: self.subscription_ending_within_days.unwrap_or(0).max(0),
            trial_within_days: 0,
        }
    }
}

/// One promise a policy can make; its slug ends the address of its breach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    SecureScoreMinimum,
    SecureScoreDrop,
    PaidLicenceOnDisabledUsers,
    UnassignedPaidSeats,
    SubscriptionEnding,
}

impl Expectation {
    pub const ALL: [Expectation; 5] = [
        Expectation::SecureScoreMinimum,
        Expectation::SecureScoreDrop,
        Expectation::PaidLicenceOnDisabledUsers,
        Expectation::UnassignedPaidSeats,
        Expectation::SubscriptionEnding,
    ];

    /// `secure-score-minimum`: the last part of the breach's address.
    pub fn slug(self) -> &'static str {
        match self {
            Expectation::SecureScoreMinimum => "secure-score-minimum",
            Expectation::SecureScoreDrop => "secure-score-drop",
            Expectation::PaidLicenceOnDisabledUsers => "paid-licence-on-disabled-users",
            Expectation::UnassignedPaidSeats => "unassigned-paid-seats",
            Expectation::SubscriptionEnding => "subscription-ending",
        }
    }

    /// The manifest field that declares it.
    pub fn field(self) -> &'static str {
        match self {
            Expectation::SecureScoreMinimum => "secureScore.minimumPercent",
            Expectation::SecureScoreDrop => "secureScore.maxDrop7Days",
            Expectation::PaidLicenceOnDisabledUsers => "licences.noPaidLicenceOnDisabledUsers",
            Expectation::UnassignedPaidSeats => "licences.maxUnassignedPaidSeats",
            Expectation::SubscriptionEnding => "licences.subscriptionEndingWithinDays",
        }
    }

    /// `policy.<tenant>.<slug>`: what drift reports and a `DriftException` names.
    pub fn address(self, tenant: &str) -> String {
        format!("policy.{tenant}.{}", self.slug())
    }
}

/// A promise not kept, with the numbers that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breach {
    pub expectation: Expectation,
    /// e.g. "Secure Score 41.2% on 2026-12-08 is under the 50% minimum".
    pub detail: String,
}

/// An expectation that could not be checked, and why (no Secure Score records yet, too short
/// a history): neither a breach nor a pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub expectation: Expectation,
    pub detail: String,
}

/// What checking one tenant's policy found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    /// In [`Expectation`] order.
    pub breaches: Vec<Breach>,
    pub notes: Vec<Note>,
}

/// Checks `policy` against a tenant's SKUs (`licences::summarize`), its licence findings
/// (`licences::findings`, made with at least [`TenantPolicy::finding_options`]) and its
/// Secure Score history, oldest first (the days kept in state and read). Expectations the
/// policy does not declare are not looked at, so their inputs may be empty.
pub fn check(
    policy: &TenantPolicy,
    skus: &[SkuSummary],
    licence_findings: &[Finding],
    score_history: &[DailyScore],
) -> Checked {
    let mut checked = Checked::default();
    let latest = score_history.last();
    if let Some(minimum) = policy.minimum_percent {
        let expectation = Expectation::SecureScoreMinimum;
        match latest {
            None => checked.notes.push(Note {
                expectation,
                detail: format!(
                    "the {}% minimum is not checked: the tenant has no Secure Score records yet",
                    number(minimum)
                ),
            }),
            Some(day) if day.percentage() < minimum => checked.breaches.push(Breach {
                expectation,
                detail: format!(
                    "Secure Score {}% on {} is under the {}% minimum",
                    beside(day.percentage(), minimum),
                    day.date,
                    number(minimum)
                ),
            }),
            Some(_) => {}
        }
    }
    if let Some(max_drop) = policy.max_drop_7_days {
        let expectation = Expectation::SecureScoreDrop;
        match latest {
            None => checked.notes.push(Note {
                expectation,
                detail: format!(
                    "the 7-day drop (max {}) is not checked: the tenant has no Secure Score records yet",
                    number(max_drop)
                ),
            }),
            Some(day) => match week_before(score_history, day) {
                None => checked.notes.push(Note {
                    expectation,
                    detail: format!(
                        "the 7-day drop (max {}) is not checked yet: the Secure Score history starts on {}, less than 7 days before its latest record ({})",
                        number(max_drop),
                        score_history[0].date,
                        day.date
                    ),
                }),
                Some((earlier, days)) => {
                    let drop = earlier.percentage() - day.percentage();
                    if drop > max_drop {
                        checked.breaches.push(Breach {
                            expectation,
                            detail: format!(
                                "Secure Score dropped {} points in {days} days (max {}): {}% on {}, {}% on {}",
                                beside(drop, max_drop),
                                number(max_drop),
                                number1(earlier.percentage()),
                                earlier.date,
                                number1(day.percentage()),
                                day.date
                            ),
                        });
                    }
                }
            },
        }
    }
    if policy.no_paid_licence_on_disabled_users {
        let wasted: Vec<String> = licence_findings
            .iter()
            .filter(|f| {
                matches!(
                    f,
                    Finding::PaidLicenceOnDisabledUser { .. }
                        | Finding::PaidLicenceOnDeletedUser { .. }
                )
            })
            .map(crate::render::licences::finding_text)
            .collect();
        if !wasted.is_empty() {
            checked.breaches.push(Breach {
                expectation: Expectation::PaidLicenceOnDisabledUsers,
                detail: format!(
                    "{} on disabled or deleted users: {}",
                    count(wasted.len() as i64, "paid licence", "paid licences"),
                    wasted.join("; ")
                ),
            });
        }
    }
    if let Some(max) = policy.max_unassigned_paid_seats {
        let unassigned: Vec<(&str, i64)> = skus
            .iter()
            .map(|s| (s.name.as_str(), s.unassigned_paid_seats()))
            .filter(|(_, seats)| *seats > 0)
            .collect();
        let total: i64 = unassigned.iter().map(|(_, seats)| seats).sum();
        if total > max {
            let by_sku: Vec<String> = unassigned
                .iter()
                .map(|(name, seats)| format!("{name} {seats}"))
                .collect();
            checked.breaches.push(Breach {
                expectation: Expectation::UnassignedPaidSeats,
                detail: format!(
                    "{} unassigned (max {max}): {}",
                    count(total, "paid seat", "paid seats"),
                    by_sku.join(", ")
                ),
            });
        }
    }
    if let Some(within) = policy.subscription_ending_within_days {
        let ending: Vec<String> = licence_findings
            .iter()
            .filter_map(|f| match f {
                Finding::SubscriptionEnding { sku, on, days } if *days <= within => Some(format!(
                    "{sku} on {on} (in {})",
                    count(*days, "day", "days")
                )),
                _ => None,
            })
            .collect();
        if !ending.is_empty() {
            checked.breaches.push(Breach {
                expectation: Expectation::SubscriptionEnding,
                detail: format!(
                    "{} within {}: {}",
                    count(
                        ending.len() as i64,
                        "paid subscription renews or ends",
                        "paid subscriptions renew or end"
                    ),
                    count(within, "day", "days"),
                    ending.join("; ")
                ),
            });
        }
    }
    checked
}

/// The day kept 7 days before `latest` (the nearest at or before it), with how many days
/// before `latest` it is; none when the history is not that old.
fn week_before<'a>(
    history: &'a [DailyScore],
    latest: &DailyScore,
) -> Option<(&'a DailyScore, i64)> {
    let day = |d: &DailyScore| d.date.parse::<jiff::civil::Date>().ok();
    let last = day(latest)?;
    let then = last.checked_sub(jiff::Span::new().days(7)).ok()?;
    history.iter().rev().find_map(|d| {
        let date = day(d)?;
        (date <= then).then(|| (d, i64::from((last - date).get_days())))
    })
}

/// `50`, `5.5`: a limit as written.
fn number(x: f64) -> String {
    let text = format!("{x:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One decimal: `41.2`.
fn number1(x: f64) -> String {
    format!("{x:.1}")
}

/// `x` with one decimal, or more when one would show it equal to `limit` (49.96 under a 50
/// minimum is "49.96", not "50.0").
fn beside(x: f64, limit: f64) -> String {
    for decimals in 1..=4 {
        let text = format!("{x:.decimals$}");
        if text.parse::<f64>().ok() != Some(limit) {
            return text;
        }
    }
    format!("{x}")
}

fn count(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests;
