//! Markdown for pull-request comments: a summary table and one collapsible section per tenant.
//!
//! Names and values may come from customer directories, so everything outside code blocks is
//! escaped (no HTML, links, emphasis or @-mentions), and code fences are longer than any run of
//! backticks inside them. Output stays under `max_len` characters, cutting whole sections.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{plural, show_value};
use crate::plan::{Action, Op, Plan};

/// GitHub's limit for one comment.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Escapes text for Markdown (and the HTML it may sit in): no tags, links, emphasis, tables
/// or mentions survive.
pub fn escape_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '@' => out.push_str("&#64;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    super::terminal_safe(&out)
}

/// A fence longer than any backtick run in `body`.
fn fence_for(body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

fn diff_lines(action: &Action) -> String {
    let mut body = String::new();
    let marker = match action.op {
        Op::Create => "+",
        Op::Delete => "-",
        _ => "!",
    };
    let note = action
        .note
        .as_deref()
        .map(|n| format!("  # {n}"))
        .unwrap_or_default();
    let mut header = format!("{marker} {}", action.address);
    if let Some(reason) = action.reason {
        let _ = write!(header, "  ({}", reason.describe());
        if let Some(from) = &action.moved_from {
            let _ = write!(header, ", from {from}");
        }
        header.push(')');
    }
    if let Some(blocked) = &action.blocked {
        let _ = write!(header, "  [blocked: {blocked}]");
    }
    header.push_str(&super::terminal_safe(&note));
    let _ = writeln!(body, "{header}");
    for change in &action.changes {
        if let Some(before) = &change.before {
            let _ = writeln!(body, "-     {} = {}", change.path, show_value(before));
        }
        if let Some(after) = &change.after {
            let _ = writeln!(body, "+     {} = {}", change.path, show_value(after));
        }
    }
    for warning in &action.warnings {
        let _ = writeln!(body, "!     warning: {warning}");
    }
    body
}

/// Counts per operation for a set of actions, e.g. "2 to update, 1 to delete".
fn counts(actions: &[&Action]) -> String {
    let n = |op: Op| actions.iter().filter(|a| a.op == op).count();
    let mut parts = Vec::new();
    for (op, word) in [
        (Op::Create, "to create"),
        (Op::Update, "to update"),
        (Op::Delete, "to delete"),
        (Op::Adopt, "to adopt"),
        (Op::Archive, "to archive"),
    ] {
        if n(op) > 0 {
            parts.push(format!("{} {word}", n(op)));
        }
    }
    let blocked = actions.iter().filter(|a| a.blocked.is_some()).count();
    if blocked > 0 {
        parts.push(format!("{blocked} blocked"));
    }
    parts.join(", ")
}

/// The plan as a pull-request comment of at most `max_len` characters.
pub fn render(plan: &Plan, max_len: usize) -> String {
    let s = &plan.summary;
    let mut head = String::from("### tenantform plan\n\n");
    let _ = writeln!(head, "| create | update | delete | unchanged | blocked |");
    let _ = writeln!(head, "| ---: | ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        head,
        "| {} | {} | {} | {} | {} |\n",
        s.create, s.update, s.delete, s.no_op, s.blocked
    );
    if !plan.has_changes() && s.blocked == 0 {
        let _ = writeln!(head, "No changes: state matches the manifests.");
    }
    if !plan.id.is_empty() && plan.has_changes() {
        // What apply history records, so a change traces back to the plan reviewed.
        let _ = writeln!(head, "Plan id: {}\n", escape_inline(&plan.id));
    }
    // Notes are bounded too: a fleet can have a note per tenant.
    const MAX_NOTES: usize = 10;
    for w in plan.warnings.iter().take(MAX_NOTES) {
        let _ = writeln!(head, "> **Warning:** {}\n", escape_inline(w));
    }
    if plan.warnings.len() > MAX_NOTES {
        let more = plan.warnings.len() - MAX_NOTES;
        let _ = writeln!(head, "> _{more} more warnings: see `tenantform plan`._\n");
    }
    if plan.options.offline && !plan.not_read.is_empty() {
        let _ = writeln!(
            head,
            "> **Offline:** Entra was not read (`--offline`): guests and directory roles of {} were not planned or checked.\n",
            crate::render::plural(plan.not_read.len(), "tenant")
        );
    }
    let failed: Vec<&crate::outcome::TenantOutcome> = plan.failed_tenants().collect();
    for t in failed.iter().take(MAX_NOTES) {
        let crate::outcome::Outcome::Failed(failure) = &t.outcome else {
            continue;
        };
        let kinds = plan.kinds_not_planned(&t.tenant);
        if kinds.is_empty() {
            let _ = writeln!(
                head,
                "> **Not planned:** {}: {}\n",
                escape_inline(&t.label()),
                escape_inline(&failure.describe())
            );
        } else {
            let _ = writeln!(
                head,
                "> **Partly planned:** {}: {} not planned: {}\n",
                escape_inline(&t.label()),
                escape_inline(&kinds.join(", ")),
                escape_inline(&failure.describe())
            );
        }
    }
    if failed.len() > MAX_NOTES {
        let more = failed.len() - MAX_NOTES;
        let _ = writeln!(head, "> _{more} more tenants not planned._\n");
    }
    // GDAP: what waits for a customer's admin (with the URL to send them) or will end.
    let gdap: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| a.kind == crate::resources::gdap_relationship::KIND.name && a.note.is_some())
        .collect();
    for a in gdap.iter().take(MAX_NOTES) {
        let _ = writeln!(
            head,
            "> **GDAP:** {}: {}\n",
            escape_inline(&a.address),
            escape_inline(a.note.as_deref().unwrap_or(""))
        );
    }
    if gdap.len() > MAX_NOTES {
        let more = gdap.len() - MAX_NOTES;
        let _ = writeln!(head, "> _{more} more GDAP notes: see `tenantform plan`._\n");
    }
    // Consent a person's apply makes first (bounded like the notes: one line a grant).
    if !plan.consent.is_empty() {
        let _ = writeln!(
            head,
            "**Consent** (signed in as a person; made in the customers' Entra first):\n"
        );
        const MAX_CONSENT: usize = 50;
        for c in plan.consent.iter().take(MAX_CONSENT) {
            let _ = writeln!(
                head,
                "- `{}`: {}",
                c.address.replace('`', "'"),
                escape_inline(&c.why)
            );
        }
        if plan.consent.len() > MAX_CONSENT {
            let more = plan.consent.len() - MAX_CONSENT;
            let _ = writeln!(head, "- _{more} more: see `tenantform plan`._");
        }
        head.push('\n');
    }

    let mut by_tenant: BTreeMap<&str, Vec<&Action>> = BTreeMap::new();
    for action in plan.actions.iter().filter(|a| a.op != Op::NoOp) {
        by_tenant
            .entry(action.tenant.as_str())
            .or_default()
            .push(action);
    }
    let footer_reserve = 200;
    let mut out = head;
    let mut omitted = 0;
    let total = by_tenant.len();
    for (i, (tenant, actions)) in by_tenant.iter().enumerate() {
        let body: String = actions.iter().map(|a| diff_lines(a)).collect();
        let fence = fence_for(&body);
        // Reviewers know customers by name: `foggy-it (Foggy IT Services)`.
        let label = plan
            .tenants
            .iter()
            .find(|t| t.tenant == *tenant)
            .map_or_else(|| tenant.to_string(), |t| t.label());
        let mut section = format!(
            "<details><summary><b>{}</b>: {}</summary>\n\n",
            escape_inline(&label),
            escape_inline(&counts(actions))
        );
        let _ = write!(section, "{fence}diff\n{body}{fence}\n\n</details>\n\n");
        if out.len() + section.len() + footer_reserve > max_len {
            omitted = total - i;
            break;
        }
        out.push_str(&section);
    }
    if omitted > 0 {
        let _ = writeln!(
            out,
            "_{} not shown: the comment would exceed {max_len} characters. Run `tenantform plan` for the full plan._",
            plural(omitted, "tenant section")
        );
    }
    let _ = writeln!(
        out,
        "<sub>{}</sub>",
        escape_inline(&super::text::summary_line(plan))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_mentions() {
        let hostile = "<img src=x onerror=alert(1)> @channel [click](http://x) **bold** `code`";
        let escaped = escape_inline(hostile);
        assert!(!escaped.contains('<'));
        assert!(!escaped.contains('@'));
        assert!(!escaped.contains("]("));
        assert!(escaped.contains("&#64;channel"));
    }

    #[test]
    fn fences_outlast_backticks_in_the_body() {
        assert_eq!(fence_for("no ticks"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }
}
