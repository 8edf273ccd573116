//! Terminal rendering of a plan, in the `+ ~ -` style of Terraform.

use std::fmt::Write;

use serde_json::Value;

use super::{plural, show_value, terminal_safe};
use crate::plan::{Action, AttributeChange, Op, Plan};

/// ANSI styling, or none.
struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn op(&self, op: Op, text: &str) -> String {
        match op {
            Op::Create => self.paint("32", text),
            Op::Update => self.paint("33", text),
            Op::Delete => self.paint("31", text),
            Op::Adopt => self.paint("36", text),
            Op::Archive => self.paint("35", text),
            Op::NoOp => text.to_string(),
        }
    }
}

fn symbol(op: Op) -> &'static str {
    match op {
        Op::Create => "+",
        Op::Update => "~",
        Op::Delete => "-",
        Op::Adopt => "=",
        Op::Archive => "_",
        Op::NoOp => " ",
    }
}

fn verb(op: Op) -> &'static str {
    match op {
        Op::Create => "will be created",
        Op::Update => "will be updated in place",
        Op::Delete => "will be deleted",
        Op::Adopt => "will be adopted (recorded as owned, unchanged)",
        Op::Archive => "will be archived (kept, marked with when and why)",
        Op::NoOp => "is unchanged",
    }
}

/// The consent a person's apply makes first (empty when none): each change with its address,
/// what it is and why.
pub fn consent_section(changes: &[crate::consent::ConsentChange], color: bool) -> String {
    use crate::consent::ConsentOp;
    let style = Style { color };
    let mut out = String::new();
    if changes.is_empty() {
        return out;
    }
    out.push_str(
        "Consent (signed in as a person: tenantform's app consented in the customer's Entra):\n",
    );
    for c in changes {
        let what = match &c.op {
            ConsentOp::ServicePrincipal => "service principal".to_string(),
            ConsentOp::Grant { permission, .. } => format!("app role assignment {permission}"),
        };
        let _ = writeln!(
            out,
            "  {}  ({}; {})",
            style.op(Op::Create, &format!("+ {}", terminal_safe(&c.address))),
            terminal_safe(&what),
            terminal_safe(&c.why)
        );
    }
    let tenants: std::collections::BTreeSet<&str> =
        changes.iter().map(|c| c.tenant.as_str()).collect();
    let _ = writeln!(
        out,
        "Consent: {} to add in {}.\n",
        changes.len(),
        plural(tenants.len(), "tenant")
    );
    out
}

/// Strings longer than this (or with line breaks) are shown as a diff, not old -> new.
const LONG_VALUE: usize = 72;

fn change_lines(out: &mut String, style: &Style, change: &AttributeChange, width: usize) {
    let path = terminal_safe(&change.path);
    match (&change.before, &change.after) {
        (None, Some(after)) => {
            let _ = writeln!(
                out,
                "      {} {path:width$} = {}",
                style.op(Op::Create, "+"),
                show_value(after)
            );
        }
        (Some(before), None) => {
            let _ = writeln!(
                out,
                "      {} {path:width$} = {}",
                style.op(Op::Delete, "-"),
                show_value(before)
            );
        }
        (Some(Value::String(b)), Some(Value::String(a)))
            if b.len() > LONG_VALUE
                || a.len() > LONG_VALUE
                || b.contains('\n')
                || a.contains('\n') =>
        {
            let _ = writeln!(out, "      {} {path}:", style.op(Op::Update, "~"));
            long_string_diff(out, style, b, a);
        }
        (Some(before), Some(after)) => {
            let _ = writeln!(
                out,
                "      {} {path:width$} = {} -> {}",
                style.op(Op::Update, "~"),
                show_value(before),
                show_value(after)
            );
        }
        (None, None) => {}
    }
}

/// Line diff for multi-line values, word diff (`[-old-]{+new+}`) for long single lines.
fn long_string_diff(out: &mut String, style: &Style, before: &str, after: &str) {
    if before.contains('\n') || after.contains('\n') {
        let diff = similar::TextDiff::from_lines(before, after);
        for change in diff.iter_all_changes() {
            let line = terminal_safe(change.value().trim_end_matches('\n'));
            let marked = match change.tag() {
                similar::ChangeTag::Delete => style.op(Op::Delete, &format!("- {line}")),
                similar::ChangeTag::Insert => style.op(Op::Create, &format!("+ {line}")),
                similar::ChangeTag::Equal => format!("  {line}"),
            };
            let _ = writeln!(out, "          {marked}");
        }
    } else {
        let diff = similar::TextDiff::from_words(before, after);
        let mut line = String::new();
        for change in diff.iter_all_changes() {
            let word = terminal_safe(change.value());
            match change.tag() {
                similar::ChangeTag::Delete => {
                    line.push_str(&style.op(Op::Delete, &format!("[-{word}-]")))
                }
                similar::ChangeTag::Insert => {
                    line.push_str(&style.op(Op::Create, &format!("{{+{word}+}}")))
                }
                similar::ChangeTag::Equal => line.push_str(&word),
            }
        }
        let _ = writeln!(out, "          {line}");
    }
}

fn action_block(out: &mut String, style: &Style, action: &Action) {
    let address = terminal_safe(&action.address);
    let mut header = format!("  # {address} {}", verb(action.op));
    if let Some(reason) = action.reason {
        let _ = write!(header, " ({}", reason.describe());
        if let Some(from) = &action.moved_from {
            let _ = write!(header, ", from {}", terminal_safe(from));
        }
        header.push(')');
    }
    let _ = writeln!(out, "{header}");
    if let Some(blocked) = &action.blocked {
        let _ = writeln!(
            out,
            "  {}",
            style.paint("1;31", &format!("# blocked: {}", terminal_safe(blocked)))
        );
    }
    let _ = writeln!(
        out,
        "  {} {address}",
        style.op(action.op, symbol(action.op))
    );
    let width = action
        .changes
        .iter()
        .map(|c| c.path.chars().count())
        .max()
        .unwrap_or(0);
    for change in &action.changes {
        change_lines(out, style, change, width);
    }
    for warning in &action.warnings {
        let _ = writeln!(
            out,
            "  {}",
            style.paint("1;33", &format!("! warning: {}", terminal_safe(warning)))
        );
    }
    out.push('\n');
}

/// The summary line, e.g. `Plan: 1 to create, 2 to update, 0 to delete, 4 unchanged.`
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let blocked = if s.blocked > 0 {
        format!(" ({} blocked)", s.blocked)
    } else {
        String::new()
    };
    format!(
        "Plan: {} to create, {} to update, {} to delete{blocked}, {}{} unchanged.",
        s.create,
        s.update,
        s.delete,
        [(s.adopt, "adopt"), (s.archive, "archive")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} to {what}, "))
            .collect::<String>(),
        s.no_op
    )
}

/// A titled list of objects with their live notes (skipped when empty).
fn note_list<'a>(out: &mut String, title: &str, actions: impl Iterator<Item = &'a Action>) {
    let mut actions = actions.peekable();
    if actions.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "{title}");
    for a in actions {
        let _ = writeln!(
            out,
            "  {}  {}",
            terminal_safe(&a.address),
            terminal_safe(a.note.as_deref().unwrap_or(""))
        );
    }
    out.push('\n');
}

/// The whole plan for a terminal.
pub fn render(plan: &Plan, color: bool) -> String {
    let style = Style { color };
    let mut out = consent_section(&plan.consent, color);
    let changed: Vec<&Action> = plan.actions.iter().filter(|a| a.op != Op::NoOp).collect();
    let failed = plan.failed_tenants().count();
    let blocked_only = !changed.is_empty() && !changed.iter().any(|a| a.is_change());
    if blocked_only {
        let _ = writeln!(
            out,
            "No changes to apply; {} blocked, listed below.\n",
            plural(changed.len(), "change")
        );
        for action in changed {
            action_block(&mut out, &style, action);
        }
    } else if changed.is_empty() && failed > 0 {
        let _ = writeln!(
            out,
            "No changes for the tenants that were read ({}), but {} could not be planned (below).\n",
            plural(plan.summary.no_op, "object"),
            plural(failed, "tenant")
        );
    } else if changed.is_empty() {
        let _ = writeln!(
            out,
            "No changes. State matches the manifests ({}).\n",
            plural(plan.summary.no_op, "object")
        );
    } else {
        let _ = writeln!(
            out,
            "tenantform will perform these actions ({} create, {} update in place, {} delete):\n",
            style.op(Op::Create, "+"),
            style.op(Op::Update, "~"),
            style.op(Op::Delete, "-"),
        );
        for action in changed {
            action_block(&mut out, &style, action);
        }
    }
    note_list(
        &mut out,
        "Applied, not visible in Entra yet (replication):",
        plan.actions
            .iter()
            .filter(|a| a.reason == Some(crate::plan::Reason::PendingReplication)),
    );
    note_list(
        &mut out,
        "Invitations not yet accepted:",
        plan.actions.iter().filter(|a| {
            a.op == Op::NoOp
                && a.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("PendingAcceptance"))
        }),
    );
    // GDAP: what waits for the customer (approval, with the URL to send their admin) or will
    // end (expiry without auto-extend, terminated, expired).
    note_list(
        &mut out,
        "GDAP relationships:",
        plan.actions.iter().filter(|a| {
            a.kind == crate::resources::gdap_relationship::KIND.name && a.note.is_some()
        }),
    );
    if plan.notes_omitted > 0 {
        let _ = writeln!(
            out,
            "... {} not listed here (pending replication or invitation); `tenantform plan --output json` lists every object.\n",
            plural(plan.notes_omitted, "more unchanged object")
        );
    }
    // One pass over what was not read (every tenant, offline): never tenants x not-read.
    let unread: std::collections::BTreeSet<&str> = plan
        .not_read
        .iter()
        .filter(|n| plan.options.offline && n.failure.cause == crate::outcome::Cause::NotRead)
        .map(|n| n.tenant.as_str())
        .collect();
    if !unread.is_empty() {
        let _ = writeln!(
            out,
            "{} Entra was not read (--offline): guests and directory roles of {} were not planned or checked.\n",
            style.paint("1;33", "Offline:"),
            plural(unread.len(), "tenant")
        );
    }
    // Tenants not read at all, then tenants read but for a source some kinds need.
    let not_planned = plan.kinds_not_planned_by_tenant();
    let kinds_not_planned = |tenant: &str| not_planned.get(tenant).map_or(&[][..], Vec::as_slice);
    let (partly, failed): (Vec<&crate::outcome::TenantOutcome>, Vec<_>) = plan
        .failed_tenants()
        .partition(|t| !kinds_not_planned(&t.tenant).is_empty());
    for (heading, tenants) in [("Not planned", failed), ("Partly planned", partly)] {
        if tenants.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "1;31",
                &format!("{heading} ({}):", plural(tenants.len(), "tenant"))
            )
        );
        for t in tenants {
            let crate::outcome::Outcome::Failed(failure) = &t.outcome else {
                continue;
            };
            let kinds = kinds_not_planned(&t.tenant);
            let not_planned = if kinds.is_empty() {
                String::new()
            } else {
                format!("{} not planned: ", kinds.join(", "))
            };
            let _ = writeln!(
                out,
                "  {}: {not_planned}{}",
                terminal_safe(&t.label()),
                terminal_safe(&failure.describe())
            );
            if let Some(url) = &failure.consent_url {
                let _ = writeln!(
                    out,
                    "    send the customer's admin the consent link: {}",
                    terminal_safe(url)
                );
            }
        }
        out.push('\n');
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "{}", style.paint("1;33", "Warnings:"));
        for w in &plan.warnings {
            let _ = writeln!(out, "  - {}", terminal_safe(w));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary_line(plan));
    if !plan.id.is_empty() && plan.has_changes() {
        // What apply history records, so a change traces back to the plan reviewed.
        let _ = writeln!(out, "Plan id: {}", terminal_safe(&plan.id));
    }
    out
}
