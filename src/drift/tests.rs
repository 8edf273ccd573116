use super::*;
use crate::model::{DriftException, Tenant};
use crate::policy::{Breach, Checked, Expectation, Note};

fn tenant(name: &str) -> Tenant {
    Tenant {
        name: name.into(),
        display_name: name.into(),
        microsoft_tenant_id: Some("3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b".into()),
        labels: Default::default(),
        implicit: false,
        former_names: Vec::new(),
    }
}

fn empty_plan() -> Plan {
    Plan::new(crate::plan::PlanHeader {
        id: String::new(),
        manifests_digest: String::new(),
        state: crate::plan::StateRef {
            lineage: String::new(),
            serial: 0,
            partitions: BTreeMap::new(),
        },
        options: crate::plan::PlanOptions::default(),
    })
}

/// Breaches are findings an exception can accept by address; notes are neither; a policy that
/// could not be checked is a read failure; every format shows them.
#[test]
fn policy_breaches_are_findings_exceptions_accept_and_every_format_shows() {
    let mut model = DesiredModel::default();
    for name in ["foggy-it", "birchwood"] {
        model.tenants.insert(name.into(), tenant(name));
    }
    model.drift_exceptions.insert(
        "score-plan".into(),
        DriftException {
            name: "score-plan".into(),
            tenant: "foggy-it".into(),
            address: "policy.foggy-it.secure-score-*".into(),
            reason: "remediation agreed for January".into(),
            expires: "2027-01-31".into(),
        },
    );
    let mut live = LiveFacts::default();
    live.policies.insert(
        "foggy-it".into(),
        PolicyFacts::Checked {
            policy: "gold-promises".into(),
            checked: Checked {
                breaches: vec![
                    Breach {
                        expectation: Expectation::SecureScoreMinimum,
                        detail: "Secure Score 41.2% on 2026-12-08 is under the 50% minimum".into(),
                    },
                    Breach {
                        expectation: Expectation::UnassignedPaidSeats,
                        detail: "3 paid seats unassigned (max 2): Microsoft 365 E3 3".into(),
                    },
                ],
                notes: vec![Note {
                    expectation: Expectation::SecureScoreDrop,
                    detail: "the 7-day drop (max 5) is not checked yet: <b>short</b>".into(),
                }],
            },
        },
    );
    live.policies.insert(
        "birchwood".into(),
        PolicyFacts::NotChecked {
            policy: "gold-promises".into(),
            failure: crate::outcome::Failure::new(
                crate::outcome::Cause::PermissionMissing,
                "SecurityEvents.Read.All is not granted",
            ),
        },
    );
    let report = report(
        &empty_plan(),
        &model,
        None,
        jiff::civil::date(2026, 12, 8),
        14,
        None,
        Some(&live),
    );
    let by_tenant = |name: &str| report.tenants.iter().find(|t| t.tenant == name).unwrap();
    let foggy = by_tenant("foggy-it");
    assert_eq!(
        foggy.findings,
        [Finding {
            address: "policy.foggy-it.unassigned-paid-seats".into(),
            cause: Cause::PolicyBreach,
            detail:
                "3 paid seats unassigned (max 2): Microsoft 365 E3 3 (TenantPolicy gold-promises)"
                    .into(),
            changes: Vec::new(),
            exception: None,
            privileged: None,
        }]
    );
    assert_eq!(foggy.accepted.len(), 1);
    assert_eq!(
        foggy.accepted[0].address,
        "policy.foggy-it.secure-score-minimum"
    );
    assert_eq!(
        foggy.policy_notes,
        ["secureScore.maxDrop7Days: the 7-day drop (max 5) is not checked yet: <b>short</b>"]
    );
    let birchwood = by_tenant("birchwood");
    assert_eq!(birchwood.findings[0].address, "policy.birchwood");
    assert_eq!(birchwood.findings[0].cause, Cause::ReadFailed);
    assert_eq!(
        birchwood.findings[0].detail,
        "TenantPolicy gold-promises not checked: permission missing: SecurityEvents.Read.All is not granted"
    );
    assert_eq!((report.summary.findings, report.summary.accepted), (2, 1));

    let text = render_text(&report);
    assert!(
        text.contains("  ! policy.foggy-it.unassigned-paid-seats  [policy not kept] 3 paid seats unassigned (max 2)"),
        "{text}"
    );
    assert!(
        text.contains("  ~ policy.foggy-it.secure-score-minimum  [policy not kept] accepted by `score-plan` until 2027-01-31"),
        "{text}"
    );
    assert!(
        text.contains("Policy expectations not checked (neither kept nor broken):\n  foggy-it: secureScore.maxDrop7Days: the 7-day drop"),
        "{text}"
    );
    let markdown = render_markdown(&report, 60_000);
    assert!(
        markdown
            .contains("unassigned\\-paid\\-seats` **policy not kept**: 3 paid seats unassigned"),
        "{markdown}"
    );
    assert!(
        markdown.contains("Policy expectations not checked in 1 tenant(s)"),
        "{markdown}"
    );
    assert!(markdown.contains("&lt;b&gt;short&lt;/b&gt;"), "{markdown}");
    let junit = junit::render(&report);
    assert!(
        junit.contains("<failure type=\"policy not kept\" message=\"policy.foggy-it.unassigned-paid-seats: policy not kept\">3 paid seats unassigned"),
        "{junit}"
    );
    assert!(
        junit.contains("policy expectation not checked: secureScore.maxDrop7Days: the 7-day drop (max 5) is not checked yet: &lt;b&gt;short&lt;/b&gt;"),
        "{junit}"
    );
}
