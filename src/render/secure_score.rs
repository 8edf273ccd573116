//! Secure Scores as a terminal table (a row per tenant, then each tenant's top open controls)
//! and CSV (a row per tenant). Control titles come from Microsoft; tenant names from the
//! manifests; both are escaped for the medium anyway.

use crate::ops::secure_score::TenantScore;
use crate::render::contacts::{cell, csv_field};

const TABLE_COLUMNS: [&str; 7] = [
    "TENANT", "DATE", "SCORE", "PERCENT", "7 DAYS", "30 DAYS", "90 DAYS",
];

/// The CSV columns, in order (stable).
pub const CSV_COLUMNS: [&str; 10] = [
    "tenant",
    "microsoftTenantId",
    "date",
    "current",
    "max",
    "percentage",
    "change7",
    "change30",
    "change90",
    "topOpenControls",
];

fn points(change: Option<f64>) -> String {
    change.map_or("-".into(), |c| format!("{c:+.1}"))
}

fn number(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| format!("{v:.2}"))
}

/// Every tenant a row, then each tenant's top open controls, and the fleet's mean.
pub fn table(tenants: &[TenantScore], fleet: Option<f64>) -> String {
    let rows: Vec<[String; 7]> = tenants
        .iter()
        .map(|t| {
            let score = match (t.current, t.max) {
                (Some(c), Some(m)) => format!("{c:.1}/{m:.0}"),
                _ => "no records".into(),
            };
            [
                cell(&t.tenant),
                cell(t.trend.date.as_deref().unwrap_or("")),
                score,
                t.trend
                    .percentage
                    .map_or(String::new(), |p| format!("{p:.1}%")),
                points(t.trend.change_7),
                points(t.trend.change_30),
                points(t.trend.change_90),
            ]
        })
        .collect();
    let mut out = crate::render::aligned(&TABLE_COLUMNS, &rows);
    for t in tenants.iter().filter(|t| !t.top_open_controls.is_empty()) {
        out.push_str(&format!("\n{}: top open controls\n", cell(&t.tenant)));
        for c in &t.top_open_controls {
            out.push_str(&format!(
                "  {:>5.1} pts  {} ({}, {})\n",
                c.available,
                cell(&c.title),
                cell(&c.category),
                cell(&c.tier)
            ));
        }
    }
    if let Some(p) = fleet {
        out.push_str(&format!(
            "\nFleet: {p:.1}% (mean of {} tenants with a score)\n",
            tenants
                .iter()
                .filter(|t| t.trend.percentage.is_some())
                .count()
        ));
    }
    out
}

/// The CSV header line.
pub fn csv_header() -> String {
    format!("{}\r\n", CSV_COLUMNS.join(","))
}

/// One tenant's row (RFC 4180; cells a spreadsheet would run are defused).
pub fn csv_row(t: &TenantScore) -> String {
    let fields = [
        t.tenant.clone(),
        t.microsoft_tenant_id.clone(),
        t.trend.date.clone().unwrap_or_default(),
        number(t.current),
        number(t.max),
        number(t.trend.percentage),
        number(t.trend.change_7),
        number(t.trend.change_30),
        number(t.trend.change_90),
        t.top_open_controls
            .iter()
            .map(|c| c.title.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    ];
    let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    format!("{}\r\n", cells.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure_score::{OpenControl, Trend};

    #[test]
    fn control_titles_are_escaped_in_the_table_and_defused_in_csv() {
        let t = TenantScore {
            tenant: "foggy-it".into(),
            microsoft_tenant_id: "t-1".into(),
            trend: Trend {
                percentage: Some(50.0),
                date: Some("2026-12-07".into()),
                change_7: Some(-1.25),
                change_30: None,
                change_90: None,
            },
            current: Some(34.0),
            max: Some(68.0),
            comparative: Vec::new(),
            top_open_controls: vec![OpenControl {
                name: "x".into(),
                title: "=cmd|' /C calc'!A0\u{1b}[31m".into(),
                category: "Apps".into(),
                tier: "Core".into(),
                score: 0.0,
                max_score: 5.0,
                available: 5.0,
                remediation: "<script>alert(1)</script>".into(),
            }],
        };
        let text = table(std::slice::from_ref(&t), Some(50.0));
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("50.0%") && text.contains("-1.2") && text.contains("Fleet: 50.0%"));
        let row = csv_row(&t);
        assert!(row.contains(",'=cmd|"), "{row}");
        assert!(!row.contains("<script>"), "remediation is not in the CSV");
    }
}
