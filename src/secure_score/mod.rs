//! Secure Score: a tenant's daily records (`security/secureScores`, newest first, about 90
//! days kept by Microsoft), kept by tenantform beyond that, their trend over 7, 30 and 90 days,
//! and the open controls worth the most points
//! (`security/secureScoreControlProfiles`). Pure: Graph answers in, figures out.
//! Sources: microsoft-graph-docs-contrib `resources/securescore.md`, `controlscore`,
//! `averagecomparativescore`, `securescorecontrolprofile`; GRAPH.md, "Secure Score".

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One day's score of a tenant (the properties kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailyScore {
    /// The day (UTC) the record was made, `YYYY-MM-DD`: one record a day.
    pub date: String,
    pub current: f64,
    pub max: f64,
    #[serde(default)]
    pub active_users: i64,
    #[serde(default)]
    pub licensed_users: i64,
    /// Averages to compare with: `AllTenants`, `TotalSeats`, `IndustryTypes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparative: Vec<ComparativeScore>,
    /// Points scored per control that day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<ControlScore>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparativeScore {
    pub basis: String,
    pub average: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlScore {
    pub name: String,
    #[serde(default)]
    pub category: String,
    pub score: f64,
}

impl DailyScore {
    /// The score as a share of the maximum, in percent (0 when there is no maximum).
    pub fn percentage(&self) -> f64 {
        if self.max > 0.0 {
            100.0 * self.current / self.max
        } else {
            0.0
        }
    }

    /// From a `secureScore` as Graph lists it; `None` without a date or score.
    pub fn from_graph(v: &Value) -> Option<DailyScore> {
        let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        let created: jiff::Timestamp = v.get("createdDateTime")?.as_str()?.parse().ok()?;
        let list = |k: &str| v.get(k).and_then(Value::as_array).into_iter().flatten();
        Some(DailyScore {
            date: created.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
            current: number(v, "currentScore")?,
            max: number(v, "maxScore").unwrap_or(0.0),
            active_users: number(v, "activeUserCount").unwrap_or(0.0) as i64,
            licensed_users: number(v, "licensedUserCount").unwrap_or(0.0) as i64,
            comparative: list("averageComparativeScores")
                .filter_map(|c| {
                    Some(ComparativeScore {
                        basis: c.get("basis")?.as_str()?.to_string(),
                        average: number(c, "averageScore")?,
                    })
                })
                .collect(),
            controls: list("controlScores")
                .filter_map(|c| {
                    Some(ControlScore {
                        name: c.get("controlName")?.as_str()?.to_string(),
                        category: c
                            .get("controlCategory")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        score: number(c, "score").unwrap_or(0.0),
                    })
                })
                .collect(),
        })
    }
}

/// A tenant's days as kept in state (the `secure_score` observation): the per-control points
/// are left out (only the latest day's matter, and they come from the live read), so a year
/// of history stays a few tens of kilobytes.
pub fn history_value(history: &[DailyScore]) -> Value {
    let days: Vec<Value> = history
        .iter()
        .map(|d| {
            serde_json::to_value(DailyScore {
                controls: Vec::new(),
                ..d.clone()
            })
            .expect("a day serializes")
        })
        .collect();
    serde_json::json!({ "days": days })
}

/// The days kept in a `secure_score` observation, oldest first; days that cannot be read
/// back (a hand-edited state) are skipped rather than failing the tenant.
pub fn history_from_value(value: &Value) -> Vec<DailyScore> {
    let mut days: Vec<DailyScore> = value
        .get("days")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| serde_json::from_value(d.clone()).ok())
        .collect();
    days.sort_by(|a, b| a.date.cmp(&b.date));
    days.dedup_by(|a, b| a.date == b.date);
    days
}

/// Adds the days `read` has that `history` lacks, keeping `history` oldest first; a day
/// already kept is kept as it was (running twice adds nothing). Returns the days added.
pub fn merge(history: &mut Vec<DailyScore>, read: Vec<DailyScore>) -> usize {
    let before = history.len();
    for day in read {
        if let Err(at) = history.binary_search_by(|d| d.date.cmp(&day.date)) {
            history.insert(at, day);
        }
    }
    history.len() - before
}

/// A tenant's score now and how it moved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trend {
    /// The latest day's percentage, and its day.
    pub percentage: Option<f64>,
    pub date: Option<String>,
    /// Change in percentage points since the day kept 7, 30 and 90 days before the latest
    /// (the nearest day kept at or before it; none when nothing is that old).
    pub change_7: Option<f64>,
    pub change_30: Option<f64>,
    pub change_90: Option<f64>,
    /// The first day kept, and the change since then (all the history kept).
    pub since: Option<String>,
    pub change_all: Option<f64>,
}

/// The trend of a history kept oldest first.
pub fn trend(history: &[DailyScore]) -> Trend {
    let Some(latest) = history.last() else {
        return Trend {
            percentage: None,
            date: None,
            change_7: None,
            change_30: None,
            change_90: None,
            since: None,
            change_all: None,
        };
    };
    let change = |days: i64| -> Option<f64> {
        let then = date(&latest.date)?
            .checked_sub(jiff::Span::new().days(days))
            .ok()?;
        let earlier = history
            .iter()
            .rev()
            .find(|d| date(&d.date).is_some_and(|day| day <= then))?;
        Some(latest.percentage() - earlier.percentage())
    };
    Trend {
        percentage: Some(latest.percentage()),
        date: Some(latest.date.clone()),
        change_7: change(7),
        change_30: change(30),
        change_90: change(90),
        since: history.first().map(|d| d.date.clone()),
        change_all: (history.len() > 1).then(|| latest.percentage() - history[0].percentage()),
    }
}

fn date(text: &str) -> Option<jiff::civil::Date> {
    text.parse().ok()
}

/// A control's profile (`secureScoreControlProfile`, the properties kept).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ControlProfile {
    /// The control's name, as `controlScores` name it.
    pub id: String,
    pub title: String,
    pub remediation: String,
    pub tier: String,
    pub max_score: f64,
    pub control_category: String,
    pub user_impact: String,
    pub implementation_cost: String,
    pub deprecated: bool,
}

/// A control not yet fully achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenControl {
    pub name: String,
    pub title: String,
    pub category: String,
    pub tier: String,
    pub score: f64,
    pub max_score: f64,
    /// Points still to gain.
    pub available: f64,
    pub remediation: String,
}

/// The `n` open controls of `day` worth the most points, from their profiles (deprecated
/// controls left out; ties by name).
pub fn top_open_controls(
    day: &DailyScore,
    profiles: &[ControlProfile],
    n: usize,
) -> Vec<OpenControl> {
    let mut open: Vec<OpenControl> = profiles
        .iter()
        .filter(|p| !p.deprecated && p.max_score > 0.0)
        .map(|p| {
            let score = day
                .controls
                .iter()
                .find(|c| c.name == p.id)
                .map_or(0.0, |c| c.score);
            OpenControl {
                name: p.id.clone(),
                title: p.title.clone(),
                category: p.control_category.clone(),
                tier: p.tier.clone(),
                score,
                max_score: p.max_score,
                available: (p.max_score - score).max(0.0),
                remediation: p.remediation.clone(),
            }
        })
        .filter(|c| c.available > 0.0)
        .collect();
    open.sort_by(|a, b| {
        b.available
            .total_cmp(&a.available)
            .then_with(|| a.name.cmp(&b.name))
    });
    open.truncate(n);
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day(date: &str, current: f64) -> DailyScore {
        DailyScore {
            date: date.into(),
            current,
            max: 200.0,
            active_users: 0,
            licensed_users: 0,
            comparative: Vec::new(),
            controls: Vec::new(),
        }
    }

    #[test]
    fn a_graph_record_is_read_as_its_utc_day() {
        let read = DailyScore::from_graph(&json!({
            "id": "t_2026-12-06",
            "createdDateTime": "2026-12-06T23:30:00-02:00",
            "currentScore": 61.5, "maxScore": 123.0,
            "activeUserCount": 40, "licensedUserCount": 38,
            "averageComparativeScores": [{"basis": "AllTenants", "averageScore": 55.2}],
            "controlScores": [{"controlName": "MFARegistrationV2", "controlCategory": "Identity", "score": 9.0}]
        }))
        .unwrap();
        assert_eq!(
            read.date, "2026-12-07",
            "23:30 at UTC-2 is the next UTC day"
        );
        assert_eq!(read.percentage(), 50.0);
        assert_eq!(read.comparative[0].average, 55.2);
        assert_eq!(read.controls[0].name, "MFARegistrationV2");
        assert!(DailyScore::from_graph(&json!({"currentScore": 1.0})).is_none());
    }

    #[test]
    fn merging_adds_only_days_not_kept_and_keeps_them_in_order() {
        let mut history = vec![day("2026-09-01", 100.0), day("2026-09-03", 110.0)];
        let added = merge(
            &mut history,
            vec![
                day("2026-09-03", 999.0),
                day("2026-09-02", 105.0),
                day("2026-09-04", 120.0),
            ],
        );
        assert_eq!(added, 2);
        let dates: Vec<&str> = history.iter().map(|d| d.date.as_str()).collect();
        assert_eq!(
            dates,
            ["2026-09-01", "2026-09-02", "2026-09-03", "2026-09-04"]
        );
        assert_eq!(history[2].current, 110.0, "a day kept is not overwritten");
        assert_eq!(merge(&mut history, vec![day("2026-09-04", 1.0)]), 0);
    }

    #[test]
    fn a_trend_compares_with_the_nearest_day_kept_at_or_before_each_span() {
        // 100 days, one point a day from 100 of 200 (50%), with a gap.
        let history: Vec<DailyScore> = (0..100)
            .filter(|i| !(60..70).contains(i))
            .map(|i| {
                let date = jiff::civil::date(2026, 9, 1)
                    .checked_add(jiff::Span::new().days(i))
                    .unwrap();
                day(&date.to_string(), 100.0 + i as f64)
            })
            .collect();
        let t = trend(&history);
        assert_eq!(t.date.as_deref(), Some("2026-12-09"));
        assert_eq!(t.percentage, Some(99.5));
        assert_eq!(t.change_7, Some(3.5), "7 points of 200");
        // 30 days before day 99 is day 69, in the gap: day 59 is the nearest before.
        assert_eq!(t.change_30, Some(20.0));
        assert_eq!(t.change_90, Some(45.0));
        let short = trend(&history[..5]);
        assert_eq!((short.change_7, short.change_90), (None, None));
        assert_eq!(trend(&[]).percentage, None);
    }

    #[test]
    fn a_history_round_trips_through_state_without_per_control_points() {
        let mut first = day("2026-12-01", 100.0);
        first.controls = vec![ControlScore {
            name: "MFA".into(),
            category: "Identity".into(),
            score: 9.0,
        }];
        first.comparative = vec![ComparativeScore {
            basis: "AllTenants".into(),
            average: 41.5,
        }];
        let history = vec![first.clone(), day("2026-12-02", 120.0)];
        let value = history_value(&history);
        let back = history_from_value(&value);
        assert_eq!(back.len(), 2);
        assert!(back[0].controls.is_empty(), "controls are not kept");
        assert_eq!(back[0].comparative, first.comparative);
        assert_eq!(back[1], history[1]);
        // Out of order, duplicated or unreadable days in a hand-edited state.
        let edited = json!({"days": [
            {"date": "2026-12-02", "current": 1.0, "max": 2.0},
            {"date": "2026-12-01", "current": 1.0, "max": 2.0},
            {"date": "2026-12-02", "current": 2.0, "max": 2.0},
            {"nonsense": true}
        ]});
        let dates: Vec<String> = history_from_value(&edited)
            .into_iter()
            .map(|d| d.date)
            .collect();
        assert_eq!(dates, ["2026-12-01", "2026-12-02"]);
        let t = trend(&back);
        assert_eq!(t.since.as_deref(), Some("2026-12-01"));
        assert_eq!(t.change_all, Some(10.0), "50% to 60%");
        assert_eq!(trend(&back[..1]).change_all, None);
    }

    #[test]
    fn the_top_open_controls_are_those_with_the_most_points_left() {
        let mut today = day("2026-12-07", 20.0);
        today.controls = vec![
            ControlScore {
                name: "MFA".into(),
                category: "Identity".into(),
                score: 9.0,
            },
            ControlScore {
                name: "Audit".into(),
                category: "Apps".into(),
                score: 3.0,
            },
        ];
        let profile = |id: &str, max: f64, deprecated: bool| ControlProfile {
            id: id.into(),
            title: format!("Do {id}"),
            max_score: max,
            deprecated,
            ..ControlProfile::default()
        };
        let profiles = [
            profile("MFA", 10.0, false),
            profile("Audit", 3.0, false),
            profile("Legacy", 8.0, false),
            profile("Old", 50.0, true),
            profile("Block", 8.0, false),
        ];
        let top = top_open_controls(&today, &profiles, 2);
        let names: Vec<(&str, f64)> = top.iter().map(|c| (c.name.as_str(), c.available)).collect();
        assert_eq!(names, [("Block", 8.0), ("Legacy", 8.0)]);
        let all = top_open_controls(&today, &profiles, 10);
        assert_eq!(
            all.len(),
            3,
            "achieved and deprecated controls are not open"
        );
        assert_eq!(all[2].available, 1.0);
    }
}
