//! Drift: every difference between the manifests and what state and Entra hold, with its
//! cause, computed from a plan (pure). Accepted deviations (`DriftException`) are listed
//! apart until they expire.

pub mod junit;
pub mod privileged;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::DesiredModel;
use crate::plan::{AttributeChange, Op, Plan, Reason};

pub const DRIFT_FORMAT_VERSION: u32 = 1;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Changed in Entra since the last apply (e.g. a name edited in the portal).
    ChangedInEntra,
    /// Recorded as applied, gone from Entra (e.g. a role removed in the portal).
    MissingInEntra,
    /// In Entra but not managed by tenantform (an extra role, an existing guest).
    UnmanagedInEntra,
    /// An invitation not accepted after the allowed number of days.
    InvitationPending,
    /// The manifests ask for a change that has not been applied.
    NotApplied,
    /// The app is not consented in the tenant, so it could not be checked.
    ConsentNeeded,
    /// The tenant could not be read.
    ReadFailed,
    /// Mapped to a Microsoft tenant that is no longer among the partner's customers.
    NoLongerCustomer,
    /// A customer of the partner that no tenant in the manifests maps.
    UnmappedCustomer,
    /// Someone holds a privileged directory role (active or PIM-eligible) that no manifest
    /// declares: an old MSP's guest, a leftover break-glass account, a service principal.
    PrivilegedAccessUndeclared,
    /// A promise of the tenant's `TenantPolicy` is not kept (Secure Score under its minimum
    /// or falling too fast, paid licences wasted, a subscription about to end), with the
    /// numbers. Addressed `policy.<tenant>.<expectation>`.
    PolicyBreach,
    /// A GDAP relationship waits for the customer's approval (the note has the URL).
    GdapApprovalPending,
    /// A GDAP relationship without auto-extension ends within 30 days (Microsoft's notices
    /// come 30, 7 and 1 days before).
    GdapExpiring,
    /// A GDAP relationship expired: access is gone until a new one is approved.
    GdapExpired,
    /// The customer terminated a GDAP relationship.
    GdapTerminated,
}

impl Cause {
    pub fn describe(self) -> &'static str {
        match self {
            Cause::ChangedInEntra => "changed in Entra",
            Cause::MissingInEntra => "missing in Entra",
            Cause::UnmanagedInEntra => "unmanaged object in Entra",
            Cause::InvitationPending => "invitation still pending",
            Cause::NotApplied => "manifests not applied",
            Cause::ConsentNeeded => "consent needed",
            Cause::ReadFailed => "could not read the tenant",
            Cause::NoLongerCustomer => "no longer a customer",
            Cause::UnmappedCustomer => "customer not mapped to a tenant",
            Cause::PrivilegedAccessUndeclared => "privileged access nobody declared",
            Cause::PolicyBreach => "policy not kept",
            Cause::GdapApprovalPending => "GDAP approval pending",
            Cause::GdapExpiring => "GDAP relationship expiring",
            Cause::GdapExpired => "GDAP relationship expired",
            Cause::GdapTerminated => "GDAP relationship terminated by the customer",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The object's address (or the Entra object id for unmanaged ones).
    pub address: String,
    pub cause: Cause,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AttributeChange>,
    /// The exception that accepts it (accepted findings only), or one that has expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionRef>,
    /// For `privileged-access-undeclared`: who holds which role, how, and since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<privileged::PrivilegedAccess>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionRef {
    pub name: String,
    pub reason: String,
    pub expires: String,
    pub expired: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantDrift {
    pub tenant: String,
    /// The tenant's display name in the manifests (what people call the customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// How the check ended: `changes` (drift found), `nothing-to-do`, or `failed` with the
    /// cause (the tenant could not be checked; the run exits 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::outcome::Outcome>,
    /// Drift that counts.
    pub findings: Vec<Finding>,
    /// Drift accepted by an unexpired `DriftException`.
    pub accepted: Vec<Finding>,
    /// Admin consent URL, when consent is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_url: Option<String>,
    /// Why PIM-eligible role assignments could not be checked (no Entra ID P2, permission
    /// missing); active assignments were still checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligible_not_checked: Option<String>,
    /// Expectations of the tenant's `TenantPolicy` that could not be checked, and why (no
    /// Secure Score records yet, less than 7 days of them): neither kept nor broken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    /// Always `tenantform-drift`.
    pub kind: String,
    pub format_version: u32,
    /// The day the report is for (exceptions expire by it).
    pub date: String,
    /// The git commit of the manifests compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Every tenant checked, sorted by name.
    pub tenants: Vec<TenantDrift>,
    /// Customers of the partner (from `/contracts`) no tenant maps; empty when not a partner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmapped_customers: Vec<Finding>,
    pub summary: DriftSummary,
}

/// A customer of the partner tenant (`GET /contracts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerCustomer {
    pub customer_id: String,
    pub display_name: String,
    pub domain: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftSummary {
    pub tenants: usize,
    pub tenants_with_drift: usize,
    pub findings: usize,
    pub accepted: usize,
}

impl DriftReport {
    pub fn has_drift(&self) -> bool {
        self.summary.findings > 0
    }
}

/// "PendingAcceptance since 2026-11-01T10:00:00Z" -> days pending on `today`.
/// Whether an unchanged object's note is a drift finding (an invitation pending longer than
/// allowed): a streaming drift run keeps only those of the unchanged objects.
pub fn note_is_finding(note: &str, today: jiff::civil::Date, max_pending_days: i64) -> bool {
    pending_days(note, today).is_some_and(|days| days > max_pending_days)
        || gdap_note_cause(note).is_some()
}

/// The GDAP finding a relationship's note is (`resources::gdap_relationship` writes them).
fn gdap_note_cause(note: &str) -> Option<Cause> {
    use crate::resources::gdap_relationship::Finding;
    Some(match Finding::of_note(note)? {
        Finding::ApprovalPending => Cause::GdapApprovalPending,
        Finding::Expiring => Cause::GdapExpiring,
        Finding::Expired => Cause::GdapExpired,
        Finding::Terminated => Cause::GdapTerminated,
    })
}

fn gdap_cause(a: &crate::plan::Action) -> Option<Cause> {
    if a.kind != crate::resources::gdap_relationship::KIND.name {
        return None;
    }
    gdap_note_cause(a.note.as_deref()?)
}

/// Which of Microsoft's notices (30, 7, 1 days before) an expiry note is within.
fn expiry_notice(note: &str) -> String {
    let days: Option<i64> = note
        .strip_prefix(crate::resources::gdap_relationship::Finding::Expiring.prefix())
        .and_then(|rest| rest.split(' ').next())
        .and_then(|d| d.parse().ok());
    match days {
        Some(d) if d <= 1 => " (within 1 day)".into(),
        Some(d) if d <= 7 => " (within 7 days)".into(),
        Some(_) => " (within 30 days)".into(),
        None => String::new(),
    }
}

fn pending_days(note: &str, today: jiff::civil::Date) -> Option<i64> {
    let since = note.strip_prefix("PendingAcceptance since ")?;
    let ts: jiff::Timestamp = since.parse().ok()?;
    let date = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    Some((today - date).get_days() as i64)
}

/// What drift needs from each tenant's live read, kept once the read itself is dropped (a
/// streaming drift run holds only the tenants in flight).
#[derive(Default)]
pub struct LiveFacts {
    pub privileged: Vec<privileged::Found>,
    /// Tenants whose PIM eligibility could not be checked, and why.
    pub eligible_not_checked: BTreeMap<String, String>,
    /// Each checked tenant's `TenantPolicy`, by tenant: what it found, or why it could not be
    /// checked (read live for these tenants only).
    pub policies: BTreeMap<String, PolicyFacts>,
}

/// A tenant's policy as drift checked it.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyFacts {
    Checked {
        /// The `TenantPolicy` document's name.
        policy: String,
        checked: crate::policy::Checked,
    },
    /// Its licences or Secure Score could not be read (the tenant fails the run).
    NotChecked {
        policy: String,
        failure: crate::outcome::Failure,
    },
}

impl LiveFacts {
    /// Adds one tenant's read (`model` may be that tenant's slice).
    pub fn add(&mut self, model: &DesiredModel, tenant: &str, live: &crate::live::LiveTenant) {
        if let crate::live::LiveTenant::Read(dir) = live {
            self.privileged
                .extend(privileged::tenant_findings(model, tenant, dir));
            if let Some(why) = dir.eligible_not_checked() {
                self.eligible_not_checked.insert(tenant.to_string(), why);
            }
        }
    }

    /// Every tenant of a snapshot.
    pub fn of(model: &DesiredModel, live: &crate::live::LiveSnapshot) -> Self {
        let mut facts = LiveFacts::default();
        for (tenant, status) in &live.tenants {
            facts.add(model, tenant, status);
        }
        facts
    }
}

/// Builds the report from a plan made against live Entra with deletes allowed.
pub fn report(
    plan: &Plan,
    model: &DesiredModel,
    commit: Option<String>,
    today: jiff::civil::Date,
    max_pending_days: i64,
    customers: Option<&[PartnerCustomer]>,
    live: Option<&LiveFacts>,
) -> DriftReport {
    let mut tenants: BTreeMap<String, TenantDrift> = BTreeMap::new();
    for name in model.tenants.keys() {
        tenants.entry(name.clone()).or_insert_with(|| TenantDrift {
            tenant: name.clone(),
            ..TenantDrift::default()
        });
    }
    let mut add = |tenant: &str, finding: Finding| {
        tenants
            .entry(tenant.to_string())
            .or_insert_with(|| TenantDrift {
                tenant: tenant.to_string(),
                ..TenantDrift::default()
            })
            .findings
            .push(finding);
    };
    for a in &plan.actions {
        if let Some(cause) = gdap_cause(a) {
            let note = a.note.as_deref().unwrap_or("");
            add(
                &a.tenant,
                Finding {
                    address: a.address.clone(),
                    cause,
                    detail: match cause {
                        Cause::GdapExpiring => format!("{note}{}", expiry_notice(note)),
                        _ => note.to_string(),
                    },
                    changes: a.changes.clone(),
                    exception: None,
                    privileged: None,
                },
            );
            continue;
        }
        let cause = match (a.op, a.reason) {
            (Op::NoOp, _) => {
                if let Some(days) = a.note.as_deref().and_then(|n| pending_days(n, today))
                    && days > max_pending_days
                {
                    add(
                        &a.tenant,
                        Finding {
                            address: a.address.clone(),
                            cause: Cause::InvitationPending,
                            detail: format!(
                                "{} ({days} days; allowed {max_pending_days})",
                                a.note.as_deref().unwrap_or("")
                            ),
                            changes: Vec::new(),
                            exception: None,
                            privileged: None,
                        },
                    );
                }
                continue;
            }
            (_, Some(Reason::DriftedInEntra)) => Cause::ChangedInEntra,
            (Op::Create, Some(Reason::MissingInEntra)) => Cause::MissingInEntra,
            (Op::Adopt, _) => Cause::UnmanagedInEntra,
            _ => Cause::NotApplied,
        };
        let mut detail = match a.reason {
            Some(reason) => format!("{} ({})", cause.describe(), reason.describe()),
            None => cause.describe().to_string(),
        };
        if let Some(note) = &a.note {
            detail.push_str(&format!("; {note}"));
        }
        add(
            &a.tenant,
            Finding {
                address: a.address.clone(),
                cause,
                detail,
                changes: a.changes.clone(),
                exception: None,
                privileged: None,
            },
        );
    }
    // Privileged access nobody declared; an unmanaged assignment it covers is reported once.
    let privileged = live.map_or(&[][..], |l| l.privileged.as_slice());
    let covered: std::collections::BTreeSet<&str> = privileged
        .iter()
        .filter_map(|p| p.assignment_id.as_deref())
        .collect();
    for u in plan
        .unmanaged
        .iter()
        .filter(|u| !covered.contains(u.id.as_str()))
    {
        add(
            &u.tenant,
            Finding {
                address: u.id.clone(),
                cause: Cause::UnmanagedInEntra,
                detail: u.description.clone(),
                changes: Vec::new(),
                exception: None,
                privileged: None,
            },
        );
    }
    for p in privileged {
        add(&p.tenant, p.finding.clone());
    }
    // Policies: each promise not kept, and tenants whose policy could not be checked.
    let mut policy_notes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (tenant, facts) in live.iter().flat_map(|l| &l.policies) {
        match facts {
            PolicyFacts::Checked { policy, checked } => {
                for breach in &checked.breaches {
                    add(
                        tenant,
                        Finding {
                            address: breach.expectation.address(tenant),
                            cause: Cause::PolicyBreach,
                            detail: format!("{} (TenantPolicy {policy})", breach.detail),
                            changes: Vec::new(),
                            exception: None,
                            privileged: None,
                        },
                    );
                }
                policy_notes.entry(tenant).or_default().extend(
                    checked
                        .notes
                        .iter()
                        .map(|n| format!("{}: {}", n.expectation.field(), n.detail)),
                );
            }
            PolicyFacts::NotChecked { policy, failure } => add(
                tenant,
                Finding {
                    address: format!("policy.{tenant}"),
                    cause: Cause::ReadFailed,
                    detail: format!("TenantPolicy {policy} not checked: {}", failure.describe()),
                    changes: Vec::new(),
                    exception: None,
                    privileged: None,
                },
            ),
        }
    }
    for t in &plan.not_read {
        let cause = if t.failure.cause == crate::outcome::Cause::ConsentMissing {
            Cause::ConsentNeeded
        } else {
            Cause::ReadFailed
        };
        let entry = tenants
            .entry(t.tenant.clone())
            .or_insert_with(|| TenantDrift {
                tenant: t.tenant.clone(),
                ..TenantDrift::default()
            });
        entry.consent_url = t.failure.consent_url.clone();
        entry.findings.push(Finding {
            address: format!("tenant.{}", t.tenant),
            cause,
            detail: t.failure.describe(),
            changes: Vec::new(),
            exception: None,
            privileged: None,
        });
    }
    // Partner relationships: mapped tenants that are no longer customers, and the reverse.
    let mut unmapped_customers = Vec::new();
    if let Some(customers) = customers {
        let ids: std::collections::BTreeSet<String> = customers
            .iter()
            .map(|c| c.customer_id.to_lowercase())
            .collect();
        for t in model.tenants.values() {
            if let Some(id) = t
                .microsoft_tenant_id
                .as_ref()
                .filter(|id| !ids.contains(*id))
            {
                tenants.entry(t.name.clone()).or_default().findings.push(Finding {
                    address: format!("tenant.{}", t.name),
                    cause: Cause::NoLongerCustomer,
                    detail: format!("Microsoft tenant {id} is not among the partner's customers (/contracts)"),
                    changes: Vec::new(),
                    exception: None,
                privileged: None,
                });
            }
        }
        let mapped: std::collections::BTreeSet<&str> = model
            .tenants
            .values()
            .filter_map(|t| t.microsoft_tenant_id.as_deref())
            .collect();
        for c in customers
            .iter()
            .filter(|c| !mapped.contains(c.customer_id.to_lowercase().as_str()))
        {
            unmapped_customers.push(Finding {
                address: c.customer_id.to_lowercase(),
                cause: Cause::UnmappedCustomer,
                detail: format!("{} ({})", c.display_name, c.domain),
                changes: Vec::new(),
                exception: None,
                privileged: None,
            });
        }
    }
    // Exceptions: accepted while in force; expired ones are named on the finding.
    let today_text = today.to_string();
    for drift in tenants.values_mut() {
        let findings = std::mem::take(&mut drift.findings);
        for mut f in findings {
            let exception = model
                .drift_exceptions
                .values()
                .find(|e| e.matches(&drift.tenant, &f.address));
            match exception {
                Some(e) => {
                    let expired = !e.active_on(&today_text);
                    f.exception = Some(ExceptionRef {
                        name: e.name.clone(),
                        reason: e.reason.clone(),
                        expires: e.expires.clone(),
                        expired,
                    });
                    if expired {
                        drift.findings.push(f)
                    } else {
                        drift.accepted.push(f)
                    }
                }
                None => drift.findings.push(f),
            }
        }
    }
    let tenants: Vec<TenantDrift> = tenants
        .into_values()
        .map(|mut t| {
            t.display_name = model.tenants.get(&t.tenant).map(|m| m.display_name.clone());
            t.eligible_not_checked =
                live.and_then(|l| l.eligible_not_checked.get(&t.tenant).cloned());
            t.policy_notes = policy_notes.remove(t.tenant.as_str()).unwrap_or_default();
            let failed = plan
                .tenants
                .iter()
                .find(|o| o.tenant == t.tenant)
                .map(|o| o.outcome.clone())
                .filter(|o| o.is_failed());
            t.outcome = Some(match failed {
                Some(failed) => failed,
                None if !t.findings.is_empty() => crate::outcome::Outcome::Changes,
                None => crate::outcome::Outcome::NothingToDo,
            });
            t
        })
        .collect();
    let summary = DriftSummary {
        tenants: tenants.len(),
        tenants_with_drift: tenants.iter().filter(|t| !t.findings.is_empty()).count(),
        findings: tenants.iter().map(|t| t.findings.len()).sum::<usize>()
            + unmapped_customers.len(),
        accepted: tenants.iter().map(|t| t.accepted.len()).sum(),
    };
    DriftReport {
        kind: "tenantform-drift".into(),
        format_version: DRIFT_FORMAT_VERSION,
        date: today_text,
        commit,
        tenants,
        unmapped_customers,
        summary,
    }
}

/// Text for a terminal.
pub fn render_text(report: &DriftReport) -> String {
    use crate::render::terminal_safe;
    use std::fmt::Write;
    let mut out = String::new();
    for t in report
        .tenants
        .iter()
        .filter(|t| !t.findings.is_empty() || !t.accepted.is_empty())
    {
        let _ = writeln!(
            out,
            "{}",
            terminal_safe(&crate::outcome::tenant_label(
                &t.tenant,
                t.display_name.as_deref()
            ))
        );
        for f in &t.findings {
            let _ = writeln!(
                out,
                "  ! {}  [{}] {}",
                terminal_safe(&f.address),
                f.cause.describe(),
                terminal_safe(&f.detail)
            );
            for c in &f.changes {
                let show = |v: &Option<serde_json::Value>| {
                    v.as_ref()
                        .map_or("(none)".to_string(), crate::render::show_value)
                };
                let _ = writeln!(
                    out,
                    "      {}: {} -> {}",
                    terminal_safe(&c.path),
                    show(&c.before),
                    show(&c.after)
                );
            }
            for m in f.privileged.iter().flat_map(|p| &p.members) {
                let _ = writeln!(out, "      member: {}", terminal_safe(&m.describe()));
            }
            if let Some(e) = f.exception.as_ref().filter(|e| e.expired) {
                let _ = writeln!(
                    out,
                    "      exception `{}` expired on {}",
                    terminal_safe(&e.name),
                    e.expires
                );
            }
        }
        if let Some(url) = &t.consent_url {
            let _ = writeln!(out, "      consent URL: {}", terminal_safe(url));
        }
        for f in &t.accepted {
            let e = f
                .exception
                .as_ref()
                .expect("accepted findings name their exception");
            let _ = writeln!(
                out,
                "  ~ {}  [{}] accepted by `{}` until {}: {}",
                terminal_safe(&f.address),
                f.cause.describe(),
                terminal_safe(&e.name),
                e.expires,
                terminal_safe(&e.reason)
            );
        }
    }
    let unchecked: Vec<&TenantDrift> = report
        .tenants
        .iter()
        .filter(|t| t.eligible_not_checked.is_some())
        .collect();
    if !unchecked.is_empty() {
        let _ = writeln!(
            out,
            "Eligible (PIM) role assignments not checked (active ones were):"
        );
        for t in unchecked {
            let _ = writeln!(
                out,
                "  {}: eligible assignments not checked: {}",
                terminal_safe(&t.tenant),
                terminal_safe(t.eligible_not_checked.as_deref().unwrap_or_default())
            );
        }
    }
    let noted: Vec<&TenantDrift> = report
        .tenants
        .iter()
        .filter(|t| !t.policy_notes.is_empty())
        .collect();
    if !noted.is_empty() {
        let _ = writeln!(
            out,
            "Policy expectations not checked (neither kept nor broken):"
        );
        for t in noted {
            for note in &t.policy_notes {
                let _ = writeln!(
                    out,
                    "  {}: {}",
                    terminal_safe(&t.tenant),
                    terminal_safe(note)
                );
            }
        }
    }
    if !report.unmapped_customers.is_empty() {
        let _ = writeln!(out, "Partner customers not mapped to a tenant:");
        for f in &report.unmapped_customers {
            let _ = writeln!(out, "  ! {}  {}", f.address, terminal_safe(&f.detail));
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "Drift: {} finding(s) in {} of {} tenant(s); {} accepted by exceptions.",
        s.findings, s.tenants_with_drift, s.tenants, s.accepted
    );
    out
}

/// Markdown for an issue or pull-request comment (escaped, bounded like plans).
pub fn render_markdown(report: &DriftReport, max_len: usize) -> String {
    use crate::render::markdown::escape_inline;
    use std::fmt::Write;
    let s = &report.summary;
    let mut out = String::from(
        "### tenantform drift\n\n| tenants | with drift | findings | accepted |\n| ---: | ---: | ---: | ---: |\n",
    );
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} |\n",
        s.tenants, s.tenants_with_drift, s.findings, s.accepted
    );
    for t in report
        .tenants
        .iter()
        .filter(|t| !t.findings.is_empty() || !t.accepted.is_empty())
    {
        let mut section = format!(
            "<details><summary><b>{}</b>: {} finding(s)</summary>\n\n",
            escape_inline(&crate::outcome::tenant_label(
                &t.tenant,
                t.display_name.as_deref()
            )),
            t.findings.len()
        );
        for f in &t.findings {
            let _ = writeln!(
                section,
                "- `{}` **{}**: {}",
                escape_inline(&f.address).replace('`', "'"),
                escape_inline(f.cause.describe()),
                escape_inline(&f.detail)
            );
            for m in f.privileged.iter().flat_map(|p| &p.members) {
                let _ = writeln!(section, "  - member: {}", escape_inline(&m.describe()));
            }
        }
        for f in &t.accepted {
            let e = f.exception.as_ref().expect("named");
            let _ = writeln!(
                section,
                "- accepted until {}: `{}` ({})",
                e.expires,
                escape_inline(&f.address).replace('`', "'"),
                escape_inline(&e.reason)
            );
        }
        section.push_str("\n</details>\n\n");
        if out.len() + section.len() + 200 > max_len {
            out.push_str("_More tenants not shown: the comment would be too long. See the JSON or JUnit report._\n");
            break;
        }
        out.push_str(&section);
    }
    let unchecked: Vec<&TenantDrift> = report
        .tenants
        .iter()
        .filter(|t| t.eligible_not_checked.is_some())
        .collect();
    if !unchecked.is_empty() {
        let mut section = format!(
            "<details><summary>Eligible (PIM) role assignments not checked in {} tenant(s)</summary>\n\n",
            unchecked.len()
        );
        for t in unchecked {
            let _ = writeln!(
                section,
                "- {}: {}",
                escape_inline(&t.tenant),
                escape_inline(t.eligible_not_checked.as_deref().unwrap_or_default())
            );
        }
        section.push_str("\n</details>\n");
        if out.len() + section.len() + 200 <= max_len {
            out.push_str(&section);
        }
    }
    let noted: Vec<&TenantDrift> = report
        .tenants
        .iter()
        .filter(|t| !t.policy_notes.is_empty())
        .collect();
    if !noted.is_empty() {
        let mut section = format!(
            "<details><summary>Policy expectations not checked in {} tenant(s)</summary>\n\n",
            noted.len()
        );
        for t in noted {
            for note in &t.policy_notes {
                let _ = writeln!(
                    section,
                    "- {}: {}",
                    escape_inline(&t.tenant),
                    escape_inline(note)
                );
            }
        }
        section.push_str("\n</details>\n");
        if out.len() + section.len() + 200 <= max_len {
            out.push_str(&section);
        }
    }
    out
}

#[cfg(test)]
mod tests;
