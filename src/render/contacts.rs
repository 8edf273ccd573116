//! Contacts as a terminal table, CSV and streamed JSON. Every text in a contact comes from a
//! customer's directory, so each medium gets it escaped its own way.

use crate::ops::contacts::ContactRow;
use crate::render::terminal_safe;

/// The CSV columns, in order (stable: spreadsheets and scripts read them by position).
pub const CSV_COLUMNS: [&str; 19] = [
    "tenant",
    "organization",
    "userId",
    "name",
    "firstName",
    "lastName",
    "email",
    "phone",
    "mobile",
    "jobTitle",
    "department",
    "office",
    "company",
    "userPrincipalName",
    "status",
    "archivedAt",
    "archivedReason",
    "recordId",
    "licences",
];

/// The table's columns.
pub const TABLE_COLUMNS: [&str; 9] = [
    "TENANT",
    "ORGANIZATION",
    "NAME",
    "EMAIL",
    "PHONE",
    "JOB TITLE",
    "DEPARTMENT",
    "OFFICE",
    "STATUS",
];

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

/// `active`, or `archived <date>: <reason>`.
pub fn status_text(row: &ContactRow) -> String {
    if !row.is_archived() {
        return "active".into();
    }
    let at = text(&row.archived_at);
    let date = at.split('T').next().unwrap_or(at);
    match text(&row.archived_reason) {
        "" => format!("archived {date}"),
        reason => format!("archived {date}: {reason}"),
    }
}

/// A table cell: [`terminal_safe`], and line breaks and tabs shown as `?` too, so one contact
/// stays one line.
pub fn cell(text: &str) -> String {
    terminal_safe(text).replace(['\n', '\r', '\t'], "?")
}

/// One tenant's rows as an aligned block with its header: a table is aligned per tenant, so
/// only one tenant is ever held to measure it.
pub fn table_block(rows: &[ContactRow]) -> String {
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                cell(&r.tenant),
                cell(text(&r.organization)),
                cell(text(&r.name)),
                cell(text(&r.email)),
                cell(text(&r.phone)),
                cell(text(&r.job_title)),
                cell(text(&r.department)),
                cell(text(&r.office)),
                cell(&status_text(r)),
            ]
        })
        .collect();
    crate::render::aligned(&TABLE_COLUMNS, &cells)
}

/// The CSV header line.
pub fn csv_header() -> String {
    let mut line = CSV_COLUMNS.join(",");
    line.push_str("\r\n");
    line
}

/// One contact as a CSV record (RFC 4180, CRLF-terminated), columns as [`CSV_COLUMNS`].
pub fn csv_row(row: &ContactRow) -> String {
    let fields = [
        row.tenant.as_str(),
        text(&row.organization),
        &row.user_id,
        text(&row.name),
        text(&row.first_name),
        text(&row.last_name),
        text(&row.email),
        text(&row.phone),
        text(&row.mobile),
        text(&row.job_title),
        text(&row.department),
        text(&row.office),
        text(&row.company),
        text(&row.user_principal_name),
        row.status,
        text(&row.archived_at),
        text(&row.archived_reason),
        text(&row.record_id),
        text(&row.licences),
    ];
    let mut line = fields.map(csv_field).join(",");
    line.push_str("\r\n");
    line
}

/// One CSV field, defused then quoted.
///
/// Defused: a cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return) gets a leading `'`, as OWASP's "CSV Injection" guidance says
/// (<https://owasp.org/www-community/attacks/CSV_Injection>): a customer's user named
/// `=cmd|' /C calc'!A0` must not run anything on the MSP's desktop. A number written as a
/// phone number is (`+1 617 555 0101`, `-5`: a sign, then only digits, spaces and `()-./`):
/// it cannot call anything, and a PSA importing it needs it as it is.
///
/// Quoted (RFC 4180): a field with a comma, a double quote, CR or LF is put in double quotes,
/// with each double quote inside doubled.
pub fn csv_field(value: &str) -> String {
    let phone_like = value.starts_with(['+', '-'])
        && value[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || " ()-./".contains(c));
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) && !phone_like {
        format!("'{value}")
    } else {
        value.to_string()
    };
    // A CSV piped to a terminal must not carry its escape sequences (line breaks stay: they
    // are quoted below).
    let defused: String = defused
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if defused.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// A JSON array written an element at a time: `[`, elements, `]` (valid when empty: `[]`).
#[derive(Default)]
pub struct JsonArray {
    started: bool,
}

impl JsonArray {
    /// The text that puts `row` next in the array.
    pub fn element(&mut self, row: &ContactRow) -> String {
        let lead = if self.started { ",\n  " } else { "[\n  " };
        self.started = true;
        format!(
            "{lead}{}",
            serde_json::to_string(row).expect("a contact row serializes")
        )
    }

    /// The text that closes the array.
    pub fn end(self) -> &'static str {
        if self.started { "\n]\n" } else { "[]\n" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> ContactRow {
        ContactRow {
            tenant: "foggy-it".into(),
            organization: Some("foggy-boston".into()),
            user_id: "u1".into(),
            name: Some(name.into()),
            first_name: None,
            last_name: None,
            email: Some("eve@foggyit.example".into()),
            phone: Some("+1 617 555 0101".into()),
            mobile: None,
            job_title: None,
            department: None,
            office: None,
            company: None,
            user_principal_name: None,
            status: "archived",
            archived_at: Some("2026-11-30T12:00:00Z".into()),
            archived_reason: Some("user deleted in Entra".into()),
            record_id: Some("c1".into()),
            licences: None,
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("+1 617"), "+1 617");
        assert_eq!(csv_field("-2"), "-2");
        assert_eq!(csv_field("+"), "+");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(
            csv_field("=cmd|' /C calc'!A0,x"),
            "\"'=cmd|' /C calc'!A0,x\""
        );
        assert_eq!(csv_field(""), "");
        // Phone numbers stay as they are; a sign followed by anything else is defused.
        assert_eq!(csv_field("+1 (617) 555-0101"), "+1 (617) 555-0101");
        assert_eq!(csv_field("+1+cmd"), "'+1+cmd");
        assert_eq!(csv_field("-2+3"), "'-2+3");
    }

    #[test]
    fn a_csv_row_has_every_column() {
        let line = csv_row(&row("Eve"));
        assert!(line.ends_with("\r\n"));
        assert_eq!(line.trim_end().split(',').count(), CSV_COLUMNS.len());
        assert!(line.starts_with("foggy-it,foggy-boston,u1,Eve,,,eve@foggyit.example,+1 617"));
    }

    #[test]
    fn table_cells_never_carry_control_characters_and_stay_one_line() {
        let block = table_block(&[row("Eve\u{1b}[31m\nred")]);
        assert!(!block.contains('\u{1b}'));
        assert_eq!(block.lines().count(), 2);
        assert!(block.contains("Eve?[31m?red"));
        assert!(block.contains("archived 2026-11-30: user deleted in Entra"));
        assert!(block.starts_with("TENANT    ORGANIZATION  NAME"));
    }

    #[test]
    fn json_arrays_are_valid_empty_or_not() {
        assert_eq!(JsonArray::default().end(), "[]\n");
        let mut array = JsonArray::default();
        let mut text = array.element(&row("a"));
        text.push_str(&array.element(&row("b")));
        text.push_str(array.end());
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1]["name"], "b");
        assert_eq!(parsed[1]["userPrincipalName"], serde_json::Value::Null);
    }
}
