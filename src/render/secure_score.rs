//! Secure Scores as a terminal table (a row per tenant with its sign-in posture, then each
//! tenant's top open controls and admins without MFA) and CSV (a row per tenant). Control
//! titles and people's names come from Microsoft; tenant names from the manifests; all are
//! escaped for the medium anyway.

use crate::ops::secure_score::TenantScore;
use crate::posture::{MfaPosture, Posture};
use crate::render::contacts::{cell, csv_field};

const TABLE_COLUMNS: [&str; 10] = [
    "TENANT",
    "DATE",
    "SCORE",
    "PERCENT",
    "7 DAYS",
    "30 DAYS",
    "90 DAYS",
    "MFA REGISTERED",
    "ADMINS W/O MFA",
    "SECURITY DEFAULTS",
];

/// The CSV columns, in order (stable; new ones are added at the end).
pub const CSV_COLUMNS: [&str; 16] = [
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
    "mfaStatus",
    "mfaUsers",
    "mfaRegistered",
    "mfaRegisteredPercent",
    "adminsWithoutMfa",
    "securityDefaults",
];

fn points(change: Option<f64>) -> String {
    change.map_or("-".into(), |c| format!("{c:+.1}"))
}

fn number(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| format!("{v:.2}"))
}

/// Every tenant a row, then each tenant's top open controls, and the fleet's mean.
pub fn table(tenants: &[TenantScore], fleet: Option<f64>) -> String {
    let rows: Vec<[String; 10]> = tenants
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
                mfa_cell(&t.posture),
                admins_cell(&t.posture),
                security_defaults_cell(&t.posture).into(),
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
    out.push_str(&admins_without_mfa(tenants));
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
    let cells: Vec<String> = fields
        .iter()
        .cloned()
        .chain(posture_fields(&t.posture))
        .map(|f| csv_field(&f))
        .collect();
    format!("{}\r\n", cells.join(","))
}

/// "82% (41/50)", "no users", or "not available" (no Entra ID P1 or P2).
fn mfa_cell(p: &Posture) -> String {
    match &p.mfa {
        MfaPosture::Available {
            share: Some(share),
            users,
            registered,
            ..
        } => format!("{share:.0}% ({registered}/{users})"),
        MfaPosture::Available { share: None, .. } => "no users".into(),
        MfaPosture::NotAvailable { .. } => "not available".into(),
    }
}

/// "1 of 2" admins without MFA, or "-" when the report is not available.
fn admins_cell(p: &Posture) -> String {
    match &p.mfa {
        MfaPosture::Available {
            admins,
            admins_without_mfa,
            ..
        } => format!("{} of {admins}", admins_without_mfa.len()),
        MfaPosture::NotAvailable { .. } => "-".into(),
    }
}

fn security_defaults_cell(p: &Posture) -> &'static str {
    match p.security_defaults {
        Some(true) => "on",
        Some(false) => "off",
        None => "unknown",
    }
}

/// Each tenant's admins without MFA by name, then the tenants whose licences do not include
/// the MFA registration report.
fn admins_without_mfa(tenants: &[TenantScore]) -> String {
    let mut out = String::new();
    for t in tenants {
        if let MfaPosture::Available {
            admins_without_mfa, ..
        } = &t.posture.mfa
            && !admins_without_mfa.is_empty()
        {
            out.push_str(&format!("\n{}: admins without MFA\n", cell(&t.tenant)));
            for a in admins_without_mfa {
                out.push_str(&format!(
                    "  {} ({})\n",
                    cell(&a.display_name),
                    cell(&a.user_principal_name)
                ));
            }
        }
    }
    let unavailable: Vec<String> = tenants
        .iter()
        .filter(|t| matches!(t.posture.mfa, MfaPosture::NotAvailable { .. }))
        .map(|t| cell(&t.tenant))
        .collect();
    if !unavailable.is_empty() {
        out.push_str(&format!(
            "\nMFA registration not available (no Microsoft Entra ID P1 or P2): {}\n",
            unavailable.join(", ")
        ));
    }
    out
}

/// The posture's CSV cells, as [`CSV_COLUMNS`] names them after `topOpenControls`.
fn posture_fields(p: &Posture) -> [String; 6] {
    let defaults = p
        .security_defaults
        .map_or(String::new(), |on| on.to_string());
    match &p.mfa {
        MfaPosture::Available {
            users,
            registered,
            share,
            admins_without_mfa,
            ..
        } => [
            "available".into(),
            users.to_string(),
            registered.to_string(),
            number(*share),
            admins_without_mfa
                .iter()
                .map(|a| format!("{} <{}>", a.display_name, a.user_principal_name))
                .collect::<Vec<_>>()
                .join("; "),
            defaults,
        ],
        MfaPosture::NotAvailable { .. } => [
            "notAvailable".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            defaults,
        ],
    }
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
                since: None,
                change_all: None,
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
            posture: posture(),
            days_kept: 1,
        };
        let text = table(std::slice::from_ref(&t), Some(50.0));
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("50.0%") && text.contains("-1.2") && text.contains("Fleet: 50.0%"));
        let row = csv_row(&t);
        assert!(row.contains(",'=cmd|"), "{row}");
        assert!(!row.contains("<script>"), "remediation is not in the CSV");
    }

    /// Foggy IT's posture: 3 of 4 registered, one admin without MFA whose name is hostile.
    fn posture() -> Posture {
        Posture {
            mfa: MfaPosture::Available {
                users: 4,
                registered: 3,
                share: Some(75.0),
                admins: 2,
                admins_without_mfa: vec![crate::posture::AdminWithoutMfa {
                    display_name: "=HYPERLINK(\"x\")\u{1b}[2J<b>".into(),
                    user_principal_name: "wanda@foggyit.example".into(),
                }],
            },
            security_defaults: Some(false),
            security_defaults_unknown: None,
        }
    }

    #[test]
    fn the_posture_shows_as_columns_names_escaped_and_not_available_said() {
        let t = |tenant: &str, posture: Posture| TenantScore {
            tenant: tenant.into(),
            microsoft_tenant_id: "t-1".into(),
            trend: crate::secure_score::trend(&[]),
            current: None,
            max: None,
            comparative: Vec::new(),
            top_open_controls: Vec::new(),
            posture,
            days_kept: 0,
        };
        let unlicensed = Posture {
            mfa: MfaPosture::not_available(crate::posture::PREMIUM_REQUIRED, "no premium"),
            security_defaults: None,
            security_defaults_unknown: Some("not said".into()),
        };
        let tenants = [t("foggy-it", posture()), t("birchwood", unlicensed)];
        let text = table(&tenants, None);
        assert!(!text.contains('\u{1b}'), "{text}");
        let header = text.lines().next().unwrap();
        assert!(
            header.contains("MFA REGISTERED")
                && header.contains("ADMINS W/O MFA")
                && header.contains("SECURITY DEFAULTS"),
            "{text}"
        );
        let foggy = text.lines().find(|l| l.starts_with("foggy-it ")).unwrap();
        assert!(
            foggy.contains("75% (3/4)")
                && foggy.contains("1 of 2")
                && foggy.trim_end().ends_with("off"),
            "{foggy}"
        );
        let birchwood = text.lines().find(|l| l.starts_with("birchwood ")).unwrap();
        assert!(
            birchwood.contains("not available") && birchwood.trim_end().ends_with("unknown"),
            "{birchwood}"
        );
        assert!(text.contains("foggy-it: admins without MFA\n"), "{text}");
        assert!(text.contains("(wanda@foggyit.example)"), "{text}");
        assert!(
            text.contains(
                "MFA registration not available (no Microsoft Entra ID P1 or P2): birchwood"
            ),
            "{text}"
        );

        assert_eq!(
            csv_header().trim_end().split(',').count(),
            CSV_COLUMNS.len()
        );
        let row = csv_row(&tenants[0]);
        assert!(
            row.trim_end().ends_with(
                ",available,4,3,75.00,\"'=HYPERLINK(\"\"x\"\")\u{fffd}[2J<b> <wanda@foggyit.example>\",false"
            ),
            "{row}"
        );
        let row = csv_row(&tenants[1]);
        assert!(row.trim_end().ends_with(",notAvailable,,,,,"), "{row}");
    }
}
