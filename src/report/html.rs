//! The fleet report as one self-contained HTML page: styles, script and charts inline, no
//! request to anywhere (a Content-Security-Policy says so to the browser, and allows only the
//! page's own script by its hash, so markup smuggled into a name could not run even if it
//! escaped). Readable without JavaScript; the script only sorts and filters tables.

use std::fmt::Write;

use base64::Engine;
use sha2::Digest;

use super::{FleetReport, TenantReport, cause_name, svg, worst_scores_first};
use crate::drift::Cause;
use crate::render::licences::finding_text;

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// Escapes text for HTML content and attribute values; control characters (terminal escapes
/// from a customer's directory) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The page.
pub fn render(report: &FleetReport) -> String {
    let script_hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SCRIPT));
    let mut page = String::with_capacity(64 * 1024 + report.tenants.len() * 4096);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Fleet report {}</title><style>{STYLE}</style></head><body>",
        escape(&report.date)
    );
    let _ = write!(
        page,
        "<header><h1>Fleet report</h1><p class=\"meta\">Made {} for {}{}. <span class=\"js-only\">Click a column heading to sort; type in a box to filter.</span></p>\
<nav><a href=\"#overview\">Overview</a> <a href=\"#secure-score\">Secure Score</a> <a href=\"#licences\">Licences</a> <a href=\"#sign-in\">Sign-in security</a> <a href=\"#access\">Access</a> <a href=\"#tenants\">Tenants</a></nav></header><main>",
        escape(&report.generated_at),
        escape(&report.date),
        report
            .commit
            .as_deref()
            .map(|c| format!(", manifests at commit <code>{}</code>", escape(c)))
            .unwrap_or_default()
    );
    overview(&mut page, report);
    secure_score(&mut page, report);
    licences(&mut page, report);
    sign_in(&mut page, report);
    access(&mut page, report);
    tenants(&mut page, report);
    let _ = writeln!(page, "</main><script>{SCRIPT}</script></body></html>");
    page
}

fn overview(page: &mut String, r: &FleetReport) {
    let o = &r.overview;
    let drift_total: usize = o.drift_by_cause.values().sum();
    let licence_total: usize = o.licence_findings_by_kind.values().sum();
    let score = o
        .secure_score
        .map_or_else(|| "none".to_string(), |s| format!("{s:.1}%"));
    let change = o
        .secure_score_change_7
        .map(|c| {
            format!(
                " <span class=\"{}\">{}</span> in 7 days",
                if c < 0.0 { "down" } else { "up" },
                signed(c)
            )
        })
        .unwrap_or_default();
    let _ = write!(
        page,
        "<section id=\"overview\"><h2>Overview</h2><div class=\"cards\">\
<div class=\"card\"><b>{}</b> tenants</div>\
<div class=\"card{}\"><b>{}</b> read, <b>{}</b> not read, <b>{}</b> unmapped</div>\
<div class=\"card\">Secure Score <b>{score}</b>{change}</div>\
<div class=\"card{}\"><b>{drift_total}</b> drift findings</div>\
<div class=\"card{}\"><b>{licence_total}</b> licence findings, <b>{}</b> paid seats unassigned</div></div>",
        o.tenants,
        if o.not_read > 0 { " bad" } else { "" },
        o.read,
        o.not_read,
        o.unmapped,
        if drift_total > 0 { " warn" } else { "" },
        if licence_total > 0 { " warn" } else { "" },
        o.unassigned_paid_seats,
    );
    if !o.drift_by_cause.is_empty() || !o.licence_findings_by_kind.is_empty() {
        page.push_str("<div class=\"pair\">");
        let rows: Vec<Vec<Cell>> = o
            .drift_by_cause
            .iter()
            .map(|(k, n)| vec![Cell::text(k), Cell::num(*n as f64, n.to_string())])
            .collect();
        table(
            page,
            "drift-by-cause",
            "Drift findings by cause",
            &["Cause", "Findings"],
            &rows,
        );
        let rows: Vec<Vec<Cell>> = o
            .licence_findings_by_kind
            .iter()
            .map(|(k, n)| vec![Cell::text(k), Cell::num(*n as f64, n.to_string())])
            .collect();
        table(
            page,
            "licence-findings-by-kind",
            "Licence findings by kind",
            &["Finding", "Count"],
            &rows,
        );
        page.push_str("</div>");
    }
    page.push_str("</section>");
}

fn secure_score(page: &mut String, r: &FleetReport) {
    page.push_str("<section id=\"secure-score\"><h2>Secure Score</h2>");
    let fleet: Vec<(String, f64)> = r
        .fleet_score
        .iter()
        .map(|d| (d.date.clone(), d.percentage))
        .collect();
    page.push_str("<figure>");
    page.push_str(&svg::line_chart(
        "The fleet's mean Secure Score per day",
        &[("Fleet mean", "fleet", &fleet)],
        720,
        220,
    ));
    page.push_str("<figcaption>The fleet's mean Secure Score per day (percent of each tenant's maximum), every day kept.</figcaption></figure>");
    let rows: Vec<Vec<Cell>> = worst_scores_first(&r.tenants)
        .into_iter()
        .map(|t| {
            let s = t.secure_score.as_ref().expect("scored");
            let change = |c: Option<f64>| match c {
                Some(c) => Cell::num(c, signed(c)),
                None => Cell::blank(),
            };
            let top = s
                .top_open_controls
                .first()
                .map(|c| format!("{} (+{:.0})", c.title, c.available))
                .unwrap_or_default();
            vec![
                tenant_link(t),
                Cell::num(
                    s.trend.percentage.unwrap_or(0.0),
                    format!("{:.1}%", s.trend.percentage.unwrap_or(0.0)),
                ),
                change(s.trend.change_7),
                change(s.trend.change_30),
                change(s.trend.change_90),
                Cell::html(svg::sparkline(&s.history), String::new()),
                Cell::text(&top),
            ]
        })
        .collect();
    table(
        page,
        "scores",
        "Tenants by Secure Score, lowest and falling first",
        &[
            "Tenant",
            "Score",
            "7 days",
            "30 days",
            "90 days",
            "Trend",
            "Top open control",
        ],
        &rows,
    );
    page.push_str("</section>");
}

fn licences(page: &mut String, r: &FleetReport) {
    page.push_str("<section id=\"licences\"><h2>Licences</h2>");
    let mut skus = Vec::new();
    let mut findings = Vec::new();
    let mut seats = Vec::new();
    for t in &r.tenants {
        let Some(l) = &t.licences else { continue };
        for s in &l.skus {
            let next = s
                .next_lifecycle
                .as_deref()
                .or(s.trial_ends.as_deref())
                .map(|d| d.split('T').next().unwrap_or(d).to_string())
                .unwrap_or_default();
            skus.push(vec![
                tenant_link(t),
                Cell::text(&format!(
                    "{}{}",
                    s.name,
                    if s.trial { " (trial)" } else { "" }
                )),
                Cell::text(&s.status),
                Cell::count(s.purchased),
                Cell::count(s.in_grace),
                Cell::count(s.consumed),
                Cell::count(s.available).flag(s.available < 0),
                Cell::count(s.unassigned_paid_seats()).flag(s.unassigned_paid_seats() > 0),
                Cell::text(&next),
            ]);
        }
        for f in &l.findings {
            findings.push(vec![
                tenant_link(t),
                Cell::text(f.kind()),
                Cell::text(&finding_text(f)),
            ]);
        }
        for o in &l.by_organization {
            seats.push(vec![
                tenant_link(t),
                Cell::text(o.organization.as_deref().unwrap_or("(no contact)")),
                Cell::text(&o.product),
                Cell::count(o.seats),
            ]);
        }
    }
    table(
        page,
        "skus",
        "Seats by SKU",
        &[
            "Tenant",
            "Product",
            "Status",
            "Purchased",
            "In grace",
            "Assigned",
            "Available",
            "Unassigned paid",
            "Next date",
        ],
        &skus,
    );
    table(
        page,
        "licence-findings",
        "Waste, over-assignment and expiries",
        &["Tenant", "Finding", "Detail"],
        &findings,
    );
    table(
        page,
        "seats-by-organization",
        "Seats by organization (for invoicing)",
        &["Tenant", "Organization", "Product", "Seats"],
        &seats,
    );
    page.push_str("</section>");
}

fn sign_in(page: &mut String, r: &FleetReport) {
    use crate::posture::MfaPosture;
    page.push_str("<section id=\"sign-in\"><h2>Sign-in security</h2>");
    let mut rows = Vec::new();
    let mut admins = Vec::new();
    for t in &r.tenants {
        let Some(p) = &t.posture else { continue };
        let defaults = match p.security_defaults {
            Some(true) => Cell::text("on"),
            Some(false) => Cell::text("off"),
            None => Cell::text("unknown"),
        };
        let (mfa, without) = match &p.mfa {
            MfaPosture::Available {
                users,
                registered,
                share,
                admins_without_mfa,
                ..
            } => {
                for a in admins_without_mfa {
                    admins.push(vec![
                        tenant_link(t),
                        Cell::text(&a.display_name),
                        Cell::text(&a.user_principal_name),
                    ]);
                }
                (
                    share.map_or_else(Cell::blank, |s| {
                        Cell::num(s, format!("{s:.0}% ({registered}/{users})"))
                    }),
                    Cell::count(admins_without_mfa.len() as i64)
                        .flag(!admins_without_mfa.is_empty()),
                )
            }
            MfaPosture::NotAvailable { .. } => (Cell::text("not available"), Cell::blank()),
        };
        rows.push(vec![tenant_link(t), mfa, without, defaults]);
    }
    table(
        page,
        "sign-in-posture",
        "MFA registration and security defaults (MFA figures need Microsoft Entra ID P1 or P2)",
        &[
            "Tenant",
            "Members registered for MFA",
            "Admins without MFA",
            "Security defaults",
        ],
        &rows,
    );
    table(
        page,
        "admins-without-mfa",
        "Admins without MFA",
        &["Tenant", "Name", "User principal name"],
        &admins,
    );
    page.push_str("</section>");
}

fn access(page: &mut String, r: &FleetReport) {
    page.push_str("<section id=\"access\"><h2>Access</h2>");
    let by_name: std::collections::BTreeMap<&str, &TenantReport> =
        r.tenants.iter().map(|t| (t.name.as_str(), t)).collect();
    let link = |name: &str| match by_name.get(name) {
        Some(t) => tenant_link(t),
        None => Cell::text(name),
    };
    let grants: Vec<Vec<Cell>> = r
        .access
        .iter()
        .map(|g| {
            vec![
                Cell::text(g.principal_email.as_deref().unwrap_or(&g.principal)),
                link(&g.tenant),
                Cell::text(&g.role),
            ]
        })
        .collect();
    table(
        page,
        "grants",
        "Who can switch into which tenant (MSP roles applied)",
        &["Engineer", "Tenant", "MSP role"],
        &grants,
    );
    let mut pending = Vec::new();
    let mut privileged = Vec::new();
    for t in &r.tenants {
        let Some(d) = &t.drift else { continue };
        for f in &d.findings {
            match f.cause {
                Cause::InvitationPending => pending.push(vec![
                    tenant_link(t),
                    Cell::text(&f.address),
                    Cell::text(&f.detail),
                ]),
                Cause::PrivilegedAccessUndeclared => {
                    let (who, role, how) = match &f.privileged {
                        Some(p) => (
                            p.principal
                                .display_name
                                .clone()
                                .or_else(|| p.principal.user_principal_name.clone())
                                .unwrap_or_else(|| p.principal.id.clone()),
                            p.role.clone(),
                            p.assignment.clone(),
                        ),
                        None => (f.address.clone(), String::new(), String::new()),
                    };
                    privileged.push(vec![
                        tenant_link(t),
                        Cell::text(&who),
                        Cell::text(&role),
                        Cell::text(&how),
                        Cell::text(&f.detail),
                    ]);
                }
                _ => {}
            }
        }
    }
    table(
        page,
        "pending-invitations",
        "Guest invitations still pending",
        &["Tenant", "Guest", "Detail"],
        &pending,
    );
    table(
        page,
        "undeclared-privileged",
        "Privileged access nobody declared",
        &["Tenant", "Who", "Role", "How", "Detail"],
        &privileged,
    );
    page.push_str("</section>");
}

fn tenants(page: &mut String, r: &FleetReport) {
    page.push_str("<section id=\"tenants\"><h2>Tenants</h2>");
    let rows: Vec<Vec<Cell>> = r
        .tenants
        .iter()
        .map(|t| {
            let drift = t.drift.as_ref().map_or(0, |d| d.findings.len());
            let score = t.secure_score.as_ref().and_then(|s| s.trend.percentage);
            let waste = t.licences.as_ref().map_or(0, |l| l.findings.len());
            vec![
                tenant_link(t),
                Cell::text(t.display_name.as_deref().unwrap_or("")),
                Cell::text(t.status).flag(t.status != "read"),
                Cell::text(t.last_apply.as_deref().unwrap_or("never")),
                Cell::count(drift as i64).flag(drift > 0),
                score.map_or_else(Cell::blank, |s| Cell::num(s, format!("{s:.1}%"))),
                Cell::count(waste as i64).flag(waste > 0),
            ]
        })
        .collect();
    table(
        page,
        "tenant-list",
        "Every tenant",
        &[
            "Tenant",
            "Customer",
            "Status",
            "Last apply",
            "Drift",
            "Secure Score",
            "Licence findings",
        ],
        &rows,
    );
    for t in &r.tenants {
        tenant_detail(page, t);
    }
    page.push_str("</section>");
}

fn tenant_detail(page: &mut String, t: &TenantReport) {
    let _ = write!(
        page,
        "<article class=\"tenant\" id=\"tenant-{}\"><h3>{}</h3><p>{} &middot; <span class=\"status {}\">{}</span>{}</p>",
        escape(&t.name),
        escape(&t.name),
        escape(t.display_name.as_deref().unwrap_or("")),
        escape(t.status),
        escape(t.status),
        t.microsoft_tenant_id
            .as_deref()
            .map(|id| format!(" &middot; Microsoft tenant <code>{}</code>", escape(id)))
            .unwrap_or_default()
    );
    if !t.problems.is_empty() {
        page.push_str("<ul class=\"problems\">");
        for p in &t.problems {
            let _ = write!(page, "<li>{}</li>", escape(p));
        }
        page.push_str("</ul>");
    }
    if let Some(url) = &t.consent_url {
        let _ = write!(
            page,
            "<p>Consent needed: send the customer's admin <a href=\"{}\" rel=\"noreferrer\">the consent link</a>.</p>",
            escape(url)
        );
    }
    if let Some(s) = &t.secure_score {
        page.push_str(&svg::line_chart(
            &format!("Secure Score of {}", t.name),
            &[(&t.name, "tenant", &s.history)],
            480,
            160,
        ));
    }
    if let Some(d) = t.drift.as_ref().filter(|d| !d.findings.is_empty()) {
        page.push_str("<ul class=\"findings\">");
        for f in &d.findings {
            let _ = write!(
                page,
                "<li><span class=\"cause\">{}</span> <code>{}</code>: {}</li>",
                escape(&cause_name(f.cause)),
                escape(&f.address),
                escape(&f.detail)
            );
        }
        page.push_str("</ul>");
    }
    page.push_str("</article>");
}

/// A table cell: its HTML and the value it sorts by.
struct Cell {
    html: String,
    sort: String,
    flagged: bool,
}

impl Cell {
    fn text(text: &str) -> Cell {
        Cell {
            html: escape(text),
            sort: escape(text),
            flagged: false,
        }
    }
    fn num(value: f64, shown: String) -> Cell {
        Cell {
            html: escape(&shown),
            sort: format!("{value}"),
            flagged: false,
        }
    }
    fn count(n: i64) -> Cell {
        Cell::num(n as f64, n.to_string())
    }
    fn blank() -> Cell {
        Cell {
            html: String::new(),
            sort: String::new(),
            flagged: false,
        }
    }
    /// Already-escaped HTML (a chart) and a sort value.
    fn html(html: String, sort: String) -> Cell {
        Cell {
            html,
            sort: escape(&sort),
            flagged: false,
        }
    }
    fn flag(mut self, on: bool) -> Cell {
        self.flagged = on;
        self
    }
}

fn tenant_link(t: &TenantReport) -> Cell {
    Cell {
        html: format!(
            "<a href=\"#tenant-{}\">{}</a>",
            escape(&t.name),
            escape(&t.name)
        ),
        sort: escape(&t.name),
        flagged: false,
    }
}

fn table(page: &mut String, id: &str, caption: &str, headings: &[&str], rows: &[Vec<Cell>]) {
    let _ = write!(
        page,
        "<div class=\"table\"><label class=\"js-only filter\">Filter <input type=\"search\" data-filter=\"{id}\" aria-controls=\"{id}\"></label>\
<table class=\"sortable\" id=\"{id}\"><caption>{} <span class=\"count\">({})</span></caption><thead><tr>",
        escape(caption),
        rows.len()
    );
    for h in headings {
        let _ = write!(page, "<th scope=\"col\">{}</th>", escape(h));
    }
    page.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            page,
            "<tr class=\"empty\"><td colspan=\"{}\">None.</td></tr>",
            headings.len()
        );
    }
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let _ = write!(
                page,
                "<td data-sort=\"{}\"{}>{}</td>",
                cell.sort,
                if cell.flagged { " class=\"flag\"" } else { "" },
                cell.html
            );
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table></div>");
}

fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{x:.1}")
    } else {
        format!("{x:.1}")
    }
}
