//! `TenantPolicy` checked by `drift` over real HTTP against the sandbox (the example fixture:
//! Foggy IT's E3 seats, two unused, Dora Departed disabled and holding one, Business Basic in
//! its grace period until 2027-01-20, a Secure Score climbing to about 51.4%): each breach is a
//! finding with its numbers (`policy.<tenant>.<expectation>`, exit 2) in every format, a
//! DriftException accepts it, too little Secure Score history is a note, the history kept in
//! state is what 7-day drops are measured on, and a tenant whose Secure Score cannot be read
//! fails by name (exit 1).

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Run, edit_world_tenant, example_fixture, foggy_it, tf_on, write_tree};

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;

/// Foggy IT (its tenant and support manifests) with `policy` beside them, applied through the
/// sandbox seeded with the example fixture; the fixture's own directory is kept alive with it.
struct Fleet {
    dir: tempfile::TempDir,
    _fixture_dir: tempfile::TempDir,
    fixture: String,
}

fn applied_with(policy: &str) -> Fleet {
    let dir = foggy_it();
    write_tree(dir.path(), &[("policy.yaml", policy)]);
    let (fixture_dir, fixture) = example_fixture();
    let fleet = Fleet {
        dir,
        _fixture_dir: fixture_dir,
        fixture: fixture.to_str().unwrap().to_string(),
    };
    let apply = fleet.run(&["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "apply is not drift: {}", apply.transcript());
    fleet
}

impl Fleet {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--sandbox-world", &self.fixture]);
        tf_on(self.path(), self.path(), &all)
    }

    /// `drift` on 2026-12-07 (the day subscriptions are counted from), in `output`.
    fn drift(&self, output: &str) -> Run {
        self.run(&["drift", "--today", "2026-12-07", "--output", output])
    }

    fn drift_json(&self) -> (i32, Value) {
        let run = self.drift("json");
        let report = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", run.transcript()));
        (run.code, report)
    }

    fn edit_secure_score(&self, edit: impl FnOnce(&mut Value)) {
        edit_world_tenant(self.path(), FOGGY, |t| edit(&mut t["secureScore"]));
    }
}

/// (address, cause, detail) of the tenant's findings, or of those accepted.
fn findings(report: &Value, which: &str) -> Vec<(String, String, String)> {
    report["tenants"][0][which]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap().to_string();
            (text("address"), text("cause"), text("detail"))
        })
        .collect()
}

const PROMISES: &str = "kind: TenantPolicy
name: foggy-it-promises
tenants: [foggy-it]
secureScore:
  minimumPercent: 60
  maxDrop7Days: 5
licences:
  noPaidLicenceOnDisabledUsers: true
  maxUnassignedPaidSeats: 1
  subscriptionEndingWithinDays: 60
";

#[test]
fn each_breach_is_drift_with_its_numbers_in_every_format_until_an_exception_accepts_it() {
    let fleet = applied_with(PROMISES);
    let (code, report) = fleet.drift_json();
    assert_eq!(code, 2, "breaches are drift: {report}");
    let found = findings(&report, "findings");
    let addresses: Vec<&str> = found.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        addresses,
        [
            "policy.foggy-it.secure-score-minimum",
            "policy.foggy-it.paid-licence-on-disabled-users",
            "policy.foggy-it.unassigned-paid-seats",
            "policy.foggy-it.subscription-ending",
        ],
        "the score climbs, so no 7-day drop: {report}"
    );
    assert!(found.iter().all(|(_, cause, _)| cause == "policy-breach"));
    let detail = |i: usize| found[i].2.as_str();
    assert!(
        detail(0).starts_with("Secure Score 51.4% on ")
            && detail(0).ends_with(" is under the 60% minimum (TenantPolicy foggy-it-promises)"),
        "{}",
        detail(0)
    );
    assert!(
        detail(1).starts_with(
            "1 paid licence on disabled or deleted users: Microsoft 365 E3 on disabled user Dora Departed ("
        ),
        "{}",
        detail(1)
    );
    assert_eq!(
        detail(2),
        "2 paid seats unassigned (max 1): Microsoft 365 E3 2 (TenantPolicy foggy-it-promises)"
    );
    assert_eq!(
        detail(3),
        "1 paid subscription renews or ends within 60 days: Microsoft 365 Business Basic on 2027-01-20 (in 44 days) (TenantPolicy foggy-it-promises)"
    );
    assert_eq!(report["tenants"][0]["outcome"]["status"], "changes");

    let text = fleet.drift("text");
    assert_eq!(text.code, 2);
    assert!(
        text.stdout.contains(
            "  ! policy.foggy-it.unassigned-paid-seats  [policy not kept] 2 paid seats unassigned (max 1): Microsoft 365 E3 2"
        ),
        "{}",
        text.stdout
    );
    let markdown = fleet.drift("markdown");
    assert_eq!(markdown.code, 2);
    assert!(
        markdown.stdout.contains(
            "- `policy\\.foggy\\-it\\.secure\\-score\\-minimum` **policy not kept**: Secure Score 51\\.4% on "
        ),
        "{}",
        markdown.stdout
    );
    let junit = fleet.drift("junit");
    assert_eq!(junit.code, 2);
    assert!(
        junit.stdout.contains(
            "<failure type=\"policy not kept\" message=\"policy.foggy-it.subscription-ending: policy not kept\">1 paid subscription renews or ends within 60 days: Microsoft 365 Business Basic on 2027-01-20 (in 44 days)"
        ),
        "{}",
        junit.stdout
    );
    assert!(junit.stdout.contains("failures=\"1\""), "{}", junit.stdout);

    // The renewal is booked: that one breach is accepted, the others still count.
    write_tree(
        fleet.path(),
        &[(
            "exceptions.yaml",
            "kind: DriftException\nname: basic-renewal\ntenant: foggy-it\naddress: policy.foggy-it.subscription-ending\nreason: renewal booked with the distributor\nexpires: 2027-01-31\n",
        )],
    );
    let (code, report) = fleet.drift_json();
    assert_eq!(code, 2);
    assert_eq!(findings(&report, "findings").len(), 3);
    let accepted = findings(&report, "accepted");
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].0, "policy.foggy-it.subscription-ending");
    assert_eq!(
        report["tenants"][0]["accepted"][0]["exception"]["reason"],
        "renewal booked with the distributor"
    );

    // Every promise of the tenant accepted by a prefix: no drift left.
    write_tree(
        fleet.path(),
        &[(
            "more-exceptions.yaml",
            "kind: DriftException\nname: foggy-it-onboarding\ntenant: foggy-it\naddress: policy.foggy-it.*\nreason: new customer, remediation plan agreed\nexpires: 2027-01-31\n",
        )],
    );
    let text = fleet.drift("text");
    assert_eq!(text.code, 0, "{}", text.transcript());
    assert!(
        text.stdout.contains(
            "  ~ policy.foggy-it.secure-score-minimum  [policy not kept] accepted by `foggy-it-onboarding` until 2027-01-31"
        ),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("Drift: 0 finding(s) in 0 of 1 tenant(s); 4 accepted by exceptions."),
        "{}",
        text.stdout
    );
    let junit = fleet.drift("junit");
    assert_eq!(junit.code, 0);
    assert!(junit.stdout.contains("failures=\"0\""), "{}", junit.stdout);
    assert!(
        junit.stdout.contains(
            "accepted until 2027-01-31 by basic-renewal: policy.foggy-it.subscription-ending (renewal booked with the distributor)"
        ),
        "{}",
        junit.stdout
    );
}

#[test]
fn a_tenant_whose_secure_score_cannot_be_read_fails_by_name_and_others_pay_nothing() {
    let fleet = applied_with(
        "kind: TenantPolicy\nname: foggy-it-promises\ntenants: [foggy-it]\nsecureScore:\n  minimumPercent: 40\n",
    );
    // Admin consent granted everything but SecurityEvents.Read.All.
    edit_world_tenant(fleet.path(), FOGGY, |t| {
        t["permissions"] = json!([
            "User.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
            "Organization.Read.All",
            "Directory.Read.All",
            "AuditLog.Read.All",
            "Policy.Read.All"
        ]);
    });
    let text = fleet.drift("text");
    assert_eq!(
        text.code,
        1,
        "a policy not checked is an error, never a pass: {}",
        text.transcript()
    );
    assert!(
        text.stderr
            .contains("error: 1 of 1 tenants could not be checked:\n  foggy-it (Foggy IT Services): permission missing: TenantPolicy foggy-it-promises not checked: "),
        "{}",
        text.transcript()
    );
    assert!(
        text.stderr.contains("SecurityEvents.Read.All"),
        "{}",
        text.stderr
    );
    let (code, report) = fleet.drift_json();
    assert_eq!(code, 1);
    let found = findings(&report, "findings");
    assert_eq!(found.len(), 1, "{report}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("policy.foggy-it", "read-failed")
    );
    assert!(
        found[0]
            .2
            .starts_with("TenantPolicy foggy-it-promises not checked: permission missing: "),
        "{}",
        found[0].2
    );
    assert_eq!(report["tenants"][0]["outcome"]["status"], "failed");

    // Without a policy, drift reads no Secure Score: the same tenant is checked as before.
    std::fs::remove_file(fleet.path().join("policy.yaml")).unwrap();
    let (code, report) = fleet.drift_json();
    assert_eq!(code, 0, "{report}");
}

#[test]
fn seven_day_drops_are_measured_on_the_kept_history_and_too_little_of_it_is_a_note() {
    const DROP: &str = "kind: TenantPolicy\nname: foggy-it-promises\ntenants: [foggy-it]\nsecureScore:\n  maxDrop7Days: 5\n";
    // A score falling a point a day: 18% a week ago, 11% today.
    let falling = applied_with(DROP);
    falling.edit_secure_score(|s| {
        s["startPercent"] = json!(100);
        s["dailyChange"] = json!(-1.0);
    });
    let (code, report) = falling.drift_json();
    assert_eq!(code, 2, "{report}");
    let found = findings(&report, "findings");
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let week_ago = today.checked_sub(jiff::Span::new().days(7)).unwrap();
    let drop = (
        "policy.foggy-it.secure-score-drop".to_string(),
        "policy-breach".to_string(),
        format!(
            "Secure Score dropped 7.0 points in 7 days (max 5): 18.0% on {week_ago}, 11.0% on {today} (TenantPolicy foggy-it-promises)"
        ),
    );
    assert_eq!(found, std::slice::from_ref(&drop));
    // Microsoft now lists today's record only: the week before comes from state.
    falling.edit_secure_score(|s| s["days"] = json!(1));
    let (code, report) = falling.drift_json();
    assert_eq!(code, 2, "{report}");
    assert_eq!(findings(&report, "findings"), [drop]);

    // A new tenant without records yet, then with three days of them: said, not passed.
    let new = applied_with(DROP);
    new.edit_secure_score(|s| s["days"] = json!(0));
    let text = new.drift("text");
    assert_eq!(text.code, 0, "a note is no drift: {}", text.transcript());
    assert!(
        text.stdout.contains(
            "Policy expectations not checked (neither kept nor broken):\n  foggy-it: secureScore.maxDrop7Days: the 7-day drop (max 5) is not checked: the tenant has no Secure Score records yet\n"
        ),
        "{}",
        text.stdout
    );
    new.edit_secure_score(|s| s["days"] = json!(3));
    let (code, report) = new.drift_json();
    assert_eq!(code, 0);
    let first = today.checked_sub(jiff::Span::new().days(2)).unwrap();
    assert_eq!(
        report["tenants"][0]["policyNotes"],
        json!([format!(
            "secureScore.maxDrop7Days: the 7-day drop (max 5) is not checked yet: the Secure Score history starts on {first}, less than 7 days before its latest record ({today})"
        )])
    );
    let junit = new.drift("junit");
    assert!(
        junit
            .stdout
            .contains("\npolicy expectation not checked: secureScore.maxDrop7Days: the 7-day drop (max 5) is not checked yet"),
        "{}",
        junit.stdout
    );
    let markdown = new.drift("markdown");
    assert!(
        markdown
            .stdout
            .contains("Policy expectations not checked in 1 tenant(s)"),
        "{}",
        markdown.stdout
    );
}
