//! Licences as a terminal table (a block per tenant, its findings under it) and CSV (a row
//! per tenant and SKU, for invoicing). Product names are Microsoft's; user names come from
//! customers' directories: each medium escapes them its own way.

use crate::licences::Finding;
use crate::ops::licences::TenantLicences;
use crate::render::contacts::{cell, csv_field};

const TABLE_COLUMNS: [&str; 9] = [
    "PRODUCT",
    "STATUS",
    "PURCHASED",
    "IN GRACE",
    "SUSPENDED",
    "ASSIGNED",
    "AVAILABLE",
    "UNASSIGNED PAID",
    "NEXT DATE",
];

/// The CSV columns, in order (stable: spreadsheets and scripts read them by position).
pub const CSV_COLUMNS: [&str; 16] = [
    "tenant",
    "microsoftTenantId",
    "skuId",
    "partNumber",
    "product",
    "status",
    "purchased",
    "inGrace",
    "suspended",
    "consumed",
    "available",
    "unassignedPaid",
    "paid",
    "trial",
    "nextLifecycle",
    "trialEnds",
];

/// One tenant: a heading, its SKUs aligned, then its findings.
pub fn table_block(t: &TenantLicences) -> String {
    let mut out = format!("{} ({})\n", cell(&t.tenant), cell(&t.microsoft_tenant_id));
    if t.skus.is_empty() {
        out.push_str("  no subscriptions\n");
    } else {
        let rows: Vec<[String; 9]> = t
            .skus
            .iter()
            .map(|s| {
                let trial = if s.trial { " (trial)" } else { "" };
                let next = s.next_lifecycle.as_ref().or(s.trial_ends.as_ref());
                [
                    cell(&format!("{}{trial}", s.name)),
                    cell(&s.status),
                    s.purchased.to_string(),
                    s.in_grace.to_string(),
                    s.suspended.to_string(),
                    s.consumed.to_string(),
                    s.available.to_string(),
                    s.unassigned_paid_seats().to_string(),
                    next.map_or(String::new(), |d| cell(d.split('T').next().unwrap_or(d))),
                ]
            })
            .collect();
        for line in crate::render::aligned(&TABLE_COLUMNS, &rows).lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    for f in &t.findings {
        out.push_str(&format!("  ! {}\n", cell(&finding_text(f))));
    }
    out
}

/// A finding in a sentence.
pub fn finding_text(f: &Finding) -> String {
    match f {
        Finding::PaidLicenceOnDisabledUser { user, sku } => {
            format!("{sku} on disabled user {} ({})", user.name, user.id)
        }
        Finding::PaidLicenceOnDeletedUser { user, sku } => {
            format!("{sku} on deleted user {} ({})", user.name, user.id)
        }
        Finding::UnassignedPaidSeats { sku, seats } => {
            format!("{sku}: {seats} paid seats unassigned")
        }
        Finding::OverAssigned { sku, by } => format!("{sku}: over-assigned by {by}"),
        Finding::AssignedSeatsInGrace { sku, seats } => format!(
            "{sku}: {seats} assigned seats exist only in an expired subscription's grace period"
        ),
        Finding::AssignmentError { user, sku, error } => {
            format!(
                "{sku} could not be assigned to {} ({}): {error}",
                user.name, user.id
            )
        }
        Finding::SubscriptionEnding { sku, on, days } => {
            format!("{sku}: subscription renews or ends on {on} (in {days} days)")
        }
        Finding::TrialEnding { sku, on, days } => {
            format!("{sku}: trial ends on {on} (in {days} days)")
        }
        Finding::SkuNotEnabled {
            sku,
            status,
            consumed,
        } => format!("{sku}: {status} with {consumed} seats assigned"),
    }
}

/// The CSV header line.
pub fn csv_header() -> String {
    format!("{}\r\n", CSV_COLUMNS.join(","))
}

/// One tenant's rows, a SKU each (RFC 4180; cells a spreadsheet would run are defused).
pub fn csv_rows(t: &TenantLicences) -> String {
    let mut out = String::new();
    for s in &t.skus {
        let fields = [
            t.tenant.clone(),
            t.microsoft_tenant_id.clone(),
            s.sku_id.clone(),
            s.part_number.clone(),
            s.name.clone(),
            s.status.clone(),
            s.purchased.to_string(),
            s.in_grace.to_string(),
            s.suspended.to_string(),
            s.consumed.to_string(),
            s.available.to_string(),
            s.unassigned_paid_seats().to_string(),
            s.paid.to_string(),
            s.trial.to_string(),
            s.next_lifecycle.clone().unwrap_or_default(),
            s.trial_ends.clone().unwrap_or_default(),
        ];
        let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The CSV columns of `licenses --by organization` (stable, for invoicing).
pub const ORGANIZATION_CSV_COLUMNS: [&str; 8] = [
    "tenant",
    "organization",
    "skuId",
    "partNumber",
    "product",
    "seats",
    "paid",
    "routed",
];

/// The per-organization CSV header line.
pub fn organization_csv_header() -> String {
    format!("{}\r\n", ORGANIZATION_CSV_COLUMNS.join(","))
}

/// One tenant's seats per organization and SKU; holders that are no contact have an empty
/// organization and `routed` false, so a tenant's rows still add up to its assigned seats.
pub fn organization_csv_rows(t: &TenantLicences) -> String {
    let mut out = String::new();
    for r in &t.by_organization {
        let fields = [
            t.tenant.clone(),
            r.organization.clone().unwrap_or_default(),
            r.sku_id.clone(),
            r.part_number.clone(),
            r.product.clone(),
            r.seats.to_string(),
            r.paid.to_string(),
            r.organization.is_some().to_string(),
        ];
        let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One tenant's seats per organization, aligned.
pub fn organization_table_block(t: &TenantLicences) -> String {
    let mut out = format!("{} ({})\n", cell(&t.tenant), cell(&t.microsoft_tenant_id));
    if t.by_organization.is_empty() {
        out.push_str("  no assigned seats\n");
        return out;
    }
    let rows: Vec<[String; 3]> = t
        .by_organization
        .iter()
        .map(|r| {
            [
                r.organization
                    .as_deref()
                    .map_or_else(|| "(no contact)".to_string(), cell),
                cell(&r.product),
                r.seats.to_string(),
            ]
        })
        .collect();
    for line in crate::render::aligned(&["ORGANIZATION", "PRODUCT", "SEATS"], &rows).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licences::{
        FindingOptions, PrepaidUnits, SubscribedSku, UserRef, findings, summarize,
    };

    fn tenant(name: &str, part: &str) -> TenantLicences {
        let skus = summarize(
            &[SubscribedSku {
                sku_id: "00000000-0000-0000-0000-0000000000aa".into(),
                sku_part_number: Some(part.into()),
                applies_to: Some("User".into()),
                capability_status: Some("Enabled".into()),
                consumed_units: 3,
                prepaid_units: PrepaidUnits {
                    enabled: 5,
                    ..PrepaidUnits::default()
                },
            }],
            &[],
        );
        let options = FindingOptions {
            today: jiff::civil::date(2026, 12, 7),
            ending_within_days: 30,
            trial_within_days: 14,
        };
        TenantLicences {
            tenant: name.into(),
            microsoft_tenant_id: "t-1".into(),
            findings: findings(&skus, &[], &options),
            skus,
            users: Vec::new(),
            by_organization: Vec::new(),
        }
    }

    #[test]
    fn untrusted_text_is_escaped_in_the_table_and_defused_in_csv() {
        let t = tenant("foggy-it", "=HYPERLINK(\"http://x\")\u{1b}[31m");
        let table = table_block(&t);
        assert!(!table.contains('\u{1b}'), "{table}");
        assert!(table.contains("2 paid seats unassigned"), "{table}");
        let csv = csv_rows(&t);
        assert!(csv.contains(",\"'=HYPERLINK(\"\"http://x\"\")"), "{csv}");
        assert_eq!(csv.lines().count(), 1);
        let text = format!("{}{csv}", csv_header());
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        assert_eq!(header.len(), CSV_COLUMNS.len());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(row.len(), CSV_COLUMNS.len());
        assert_eq!(&row[11], "2", "unassigned paid seats");
        let finding = finding_text(&Finding::PaidLicenceOnDisabledUser {
            user: UserRef {
                name: "Eve\u{7}".into(),
                id: "u-1".into(),
            },
            sku: "E3".into(),
        });
        assert_eq!(finding, "E3 on disabled user Eve\u{7} (u-1)");
        assert!(!cell(&finding).contains('\u{7}'));
    }
}
