//! JUnit XML, so any CI shows drift natively: one test case per tenant, one failure per
//! drifted object; accepted deviations are reported as skipped output, not failures.

use std::fmt::Write;

use super::DriftReport;

/// Escapes text for XML attributes and content; control characters become spaces.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn failure(out: &mut String, f: &super::Finding) {
    let cause = escape(f.cause.describe());
    let mut body = f.detail.clone();
    for m in f.privileged.iter().flat_map(|p| &p.members) {
        body.push_str(&format!("\nmember: {}", m.describe()));
    }
    let _ = writeln!(
        out,
        "      <failure type=\"{cause}\" message=\"{}: {cause}\">{}</failure>",
        escape(&f.address),
        escape(&body)
    );
}

pub fn render(report: &DriftReport) -> String {
    let partner = usize::from(!report.unmapped_customers.is_empty());
    let tests = report.tenants.len() + partner;
    let failed = report
        .tenants
        .iter()
        .filter(|t| !t.findings.is_empty())
        .count()
        + partner;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"tenantform drift\" tests=\"{tests}\" failures=\"{failed}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"tenantform drift\" tests=\"{tests}\" failures=\"{failed}\" timestamp=\"{}\">",
        escape(&report.date)
    );
    for t in &report.tenants {
        let _ = write!(
            out,
            "    <testcase classname=\"tenantform.drift\" name=\"{}\"",
            escape(&t.tenant)
        );
        if t.findings.is_empty()
            && t.accepted.is_empty()
            && t.eligible_not_checked.is_none()
            && t.policy_notes.is_empty()
        {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        for f in &t.findings {
            failure(&mut out, f);
        }
        if !t.accepted.is_empty() || t.eligible_not_checked.is_some() || !t.policy_notes.is_empty()
        {
            let mut lines: Vec<String> = t
                .accepted
                .iter()
                .map(|f| {
                    let e = f.exception.as_ref().expect("named");
                    format!(
                        "accepted until {} by {}: {} ({})",
                        e.expires, e.name, f.address, e.reason
                    )
                })
                .collect();
            if let Some(why) = &t.eligible_not_checked {
                lines.push(format!("eligible assignments not checked: {why}"));
            }
            for note in &t.policy_notes {
                lines.push(format!("policy expectation not checked: {note}"));
            }
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&lines.join("\n"))
            );
        }
        out.push_str("    </testcase>\n");
    }
    if partner > 0 {
        out.push_str("    <testcase classname=\"tenantform.drift\" name=\"partner customers\">\n");
        for f in &report.unmapped_customers {
            failure(&mut out, f);
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
