//! `tenantform drift` against the sandbox (`--sandbox`, whose directory these tests edit to
//! play "changed in the portal"): causes, exceptions, formats, exit codes.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{edit_world_tenant, foggy_it_applied, repo_root, tf_on, write_tree};

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
const DANA: &str = "dana.whitfield@contoso-msp.example";
const GUEST: &str = "guest.foggy-it.dana-support";

fn drift_json(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["drift", "--output", "json"];
    args.extend_from_slice(extra);
    let run = tf_on(dir, dir, &args);
    assert!(
        run.code == 0 || run.code == 2 || run.stderr.contains("could not be checked"),
        "{}",
        run.stderr
    );
    (run.code, serde_json::from_str(&run.stdout).unwrap())
}

fn causes(report: &Value) -> Vec<(String, String)> {
    report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["findings"].as_array().unwrap().iter())
        .map(|f| {
            (
                f["address"].as_str().unwrap().to_string(),
                f["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn no_drift_exits_zero() {
    let dir = foggy_it_applied();
    let (code, report) = drift_json(dir.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["findings"], 0);
    assert_eq!(report["summary"]["tenants"], 1);
}

#[test]
fn every_cause_is_reported_and_nothing_changes() {
    let dir = foggy_it_applied();
    edit_world_tenant(dir.path(), FOGGY, |t| {
        let dana_id = {
            let users = t["users"].as_array_mut().unwrap();
            let dana = users.iter_mut().find(|u| u["mail"] == DANA).unwrap();
            dana["displayName"] = json!("Dana <script>alert(1)</script> @everyone");
            dana["id"].clone()
        };
        t["roleAssignments"] = json!([{"principalId": dana_id, "roleDefinitionId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451"}]);
    });
    // A manifest change not applied yet.
    let tenant = std::fs::read_to_string(dir.path().join("tenant.yaml"))
        .unwrap()
        .replace("Foggy IT Services - Waltham", "Foggy IT - Waltham");
    std::fs::write(dir.path().join("tenant.yaml"), tenant).unwrap();
    let world = |dir: &Path| -> (Vec<Value>, usize) {
        let w = crate::support::world(dir);
        let t = w["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == FOGGY)
            .unwrap()
            .clone();
        (
            t["users"].as_array().unwrap().clone(),
            t["roleAssignments"].as_array().map_or(0, Vec::len),
        )
    };
    let world_before = world(dir.path());
    let state_before = std::fs::read(dir.path().join("state.json")).unwrap();

    let (code, report) = drift_json(dir.path(), &[]);
    assert_eq!(code, 2);
    let mut found = causes(&report);
    found.sort();
    let role = "directory_role.foggy-it.dana-support.729827e3-9c14-49f7-bb1b-9608f156bbb8.root";
    // Dana's undeclared Global Reader is privileged: reported as that (not also as unmanaged).
    let privileged = found
        .iter()
        .find(|(_, c)| c == "privileged-access-undeclared")
        .map(|(a, _)| a.clone())
        .expect("privileged");
    assert!(
        privileged.starts_with("privileged.foggy-it.")
            && privileged.ends_with(".f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
        "{privileged}"
    );
    let mut expected = vec![
        (role.to_string(), "missing-in-entra".to_string()),
        (GUEST.to_string(), "changed-in-entra".to_string()),
        (
            "organization.foggy-waltham".to_string(),
            "not-applied".to_string(),
        ),
        (privileged, "privileged-access-undeclared".to_string()),
    ];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(
        std::fs::read(dir.path().join("state.json")).unwrap(),
        state_before,
        "drift changes no state"
    );
    assert_eq!(
        world(dir.path()),
        world_before,
        "drift changes nothing in Entra"
    );

    // JUnit: one test case per tenant, one failure per drifted object, escaped.
    let junit = tf_on(dir.path(), dir.path(), &["drift", "--output", "junit"]);
    assert_eq!(junit.code, 2);
    assert!(junit.stdout.starts_with("<?xml"));
    assert_eq!(junit.stdout.matches("<testcase ").count(), 1);
    assert_eq!(junit.stdout.matches("<failure ").count(), 4);
    assert!(!junit.stdout.contains("<script>"));

    // Markdown: the name from Entra cannot inject HTML or mention anyone.
    let md = tf_on(dir.path(), dir.path(), &["drift", "--output", "markdown"]);
    assert!(md.stdout.contains("### tenantform drift"));
    assert!(
        !md.stdout.contains("<script>") && !md.stdout.contains("@everyone"),
        "{}",
        md.stdout
    );
}

#[test]
fn pending_invitations_count_after_the_allowed_days() {
    let dir = foggy_it_applied();
    assert_eq!(drift_json(dir.path(), &["--pending-days", "14"]).0, 0);
    let (code, report) = drift_json(
        dir.path(),
        &["--pending-days", "14", "--today", "2099-01-01"],
    );
    assert_eq!(code, 2);
    assert_eq!(
        causes(&report),
        [(GUEST.to_string(), "invitation-pending".to_string())]
    );
}

#[test]
fn exceptions_accept_drift_until_they_expire() {
    let dir = foggy_it_applied();
    write_tree(
        dir.path(),
        &[(
            "exceptions.yaml",
            "kind: DriftException\nname: dana-pending\ntenant: foggy-it\naddress: guest.foggy-it.*\nreason: Dana is on leave until March\nexpires: 2099-03-31\n",
        )],
    );
    let (code, report) = drift_json(dir.path(), &["--today", "2099-01-01"]);
    assert_eq!(code, 0, "accepted drift does not count");
    assert_eq!(report["summary"]["accepted"], 1);
    let accepted = &report["tenants"][0]["accepted"][0];
    assert_eq!(
        accepted["exception"]["reason"],
        "Dana is on leave until March"
    );
    let text = tf_on(dir.path(), dir.path(), &["drift", "--today", "2099-01-01"]);
    assert!(
        text.stdout
            .contains("accepted by `dana-pending` until 2099-03-31"),
        "{}",
        text.stdout
    );

    let (code, report) = drift_json(dir.path(), &["--today", "2099-04-01"]);
    assert_eq!(code, 2, "expired exceptions stop accepting");
    assert_eq!(
        report["tenants"][0]["findings"][0]["exception"]["expired"],
        true
    );
}

#[test]
fn a_tenant_without_consent_is_drift_with_its_consent_url() {
    let dir = foggy_it_applied();
    edit_world_tenant(dir.path(), FOGGY, |t| t["consent"] = json!(false));
    let (code, report) = drift_json(dir.path(), &[]);
    assert_eq!(
        code, 1,
        "a tenant that could not be checked is an error, not drift"
    );
    assert_eq!(
        causes(&report),
        [("tenant.foggy-it".to_string(), "consent-needed".to_string())]
    );
    assert!(
        report["tenants"][0]["consentUrl"]
            .as_str()
            .unwrap()
            .contains("adminconsent")
    );
}

#[test]
fn committed_drift_schema_is_current_and_reports_conform() {
    let printed = crate::support::run(&["schema", "drift"]);
    let path = repo_root().join(tenantform::schema::DRIFT_SCHEMA_PATH);
    if std::env::var_os("TENANTFORM_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &printed.stdout).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        printed.stdout,
        "{} is stale",
        path.display()
    );
    let validator =
        jsonschema::validator_for(&serde_json::from_str(&printed.stdout).unwrap()).unwrap();
    let dir = foggy_it_applied();
    edit_world_tenant(dir.path(), FOGGY, |t| t["roleAssignments"] = json!([]));
    let (_, report) = drift_json(dir.path(), &[]);
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
