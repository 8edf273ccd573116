//! Guests and directory roles end to end: the real binary with `--sandbox` (its directory is
//! kept in `sandbox-world.json`, which these tests edit to play "someone changed it in the
//! portal"), over real HTTP to the embedded Graph sandbox.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{assert_hermetic, edit_world, foggy_it, tf_on, workspace, world, write_tree};

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const DANA: &str = "dana.whitfield@contoso-msp.example";

fn tenant<'a>(w: &'a mut Value, id: &str) -> &'a mut Value {
    w["tenants"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["id"] == id)
        .unwrap()
}

fn users_with_email(w: &Value, id: &str, email: &str) -> usize {
    let t = w["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap();
    t["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["mail"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(email))
        })
        .count()
}

fn json_plan(dir: &Path, manifests: &str, extra: &[&str]) -> Value {
    let mut args = vec!["plan", "--output", "json"];
    args.extend_from_slice(extra);
    let run = tf_on(dir, manifests, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn ops(plan: &Value) -> Vec<(String, String, String)> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] != "no-op")
        .map(|a| {
            (
                a["op"].as_str().unwrap().to_string(),
                a["address"].as_str().unwrap().to_string(),
                a["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

const GUEST: &str = "guest.foggy-it.dana-support";
const ROLE: &str = "directory_role.foggy-it.dana-support.729827e3-9c14-49f7-bb1b-9608f156bbb8.root";

#[test]
fn invite_accept_drift_and_repair() {
    let dir = workspace(&["examples/foggy-it"]);
    let d = dir.path();
    let applied = tf_on(
        d,
        "examples/foggy-it",
        &["--color", "never", "apply", "--auto-approve"],
    );
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stdout
            .contains(&format!("{GUEST}: creating... done"))
    );
    assert!(
        applied
            .stdout
            .contains(&format!("{ROLE}: creating... done"))
    );

    // One guest, pending, with the role; state knows their ids.
    let w = world(d);
    assert_eq!(users_with_email(&w, FOGGY, DANA), 1);
    let foggy = w["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == FOGGY)
        .unwrap();
    let dana = foggy["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["mail"] == DANA)
        .unwrap();
    assert_eq!(dana["userType"], "Guest");
    assert_eq!(dana["externalUserState"], "PendingAcceptance");
    let roles = foggy["roleAssignments"].as_array().unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(
        (
            roles[0]["principalId"].as_str(),
            roles[0]["roleDefinitionId"].as_str()
        ),
        (dana["id"].as_str(), Some(HELPDESK))
    );
    let state: Value = crate::support::stored_state(&d.join("state.json"));
    assert_eq!(state["objects"][GUEST]["ids"]["objectId"], dana["id"]);
    assert_eq!(
        state["objects"][ROLE]["ids"]["assignmentId"],
        roles[0]["id"]
    );

    // Pending acceptance is visible in the plan; nothing to change.
    let pending = tf_on(
        d,
        "examples/foggy-it",
        &["--color", "never", "plan", "--detailed-exitcode"],
    );
    assert_eq!(pending.code, 0, "{}", pending.stdout);
    assert!(
        pending.stdout.contains("Invitations not yet accepted:"),
        "{}",
        pending.stdout
    );
    assert!(
        pending
            .stdout
            .contains(&format!("{GUEST}  PendingAcceptance since ")),
        "{}",
        pending.stdout
    );

    // Dana redeems the invitation; someone renames her in the portal and removes her role.
    edit_world(d, |w| {
        let t = tenant(w, FOGGY);
        let user = t["users"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|u| u["mail"] == DANA)
            .unwrap();
        user["externalUserState"] = json!("Accepted");
        user["displayName"] = json!("Dana W. (edited in portal)");
        t["roleAssignments"] = json!([]);
    });
    let drift = json_plan(d, "examples/foggy-it", &[]);
    assert_eq!(
        ops(&drift),
        [
            ("update".into(), GUEST.into(), "drifted-in-entra".into()),
            ("create".into(), ROLE.into(), "missing-in-entra".into()),
        ]
    );
    let guest = drift["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == GUEST)
        .unwrap();
    assert_eq!(
        guest["changes"],
        json!([{"path": "displayName", "before": "Dana W. (edited in portal)", "after": "Dana Whitfield (Contoso MSP Support)"}])
    );
    assert!(
        guest["note"]
            .as_str()
            .unwrap()
            .starts_with("Accepted since")
    );

    let repaired = tf_on(d, "examples/foggy-it", &["apply", "--auto-approve"]);
    assert_eq!(repaired.code, 0, "{}{}", repaired.stdout, repaired.stderr);
    let w = world(d);
    assert_eq!(users_with_email(&w, FOGGY, DANA), 1, "never invited twice");
    let foggy = w["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == FOGGY)
        .unwrap();
    assert_eq!(foggy["roleAssignments"].as_array().unwrap().len(), 1);
    assert_eq!(
        tf_on(d, "examples/foggy-it", &["plan", "--detailed-exitcode"]).code,
        0
    );
}

#[test]
fn a_guest_deleted_in_the_portal_is_invited_again_once() {
    let dir = workspace(&["examples/foggy-it"]);
    let d = dir.path();
    assert_eq!(
        tf_on(d, "examples/foggy-it", &["apply", "--auto-approve"]).code,
        0
    );
    edit_world(d, |w| {
        let t = tenant(w, FOGGY);
        t["users"]
            .as_array_mut()
            .unwrap()
            .retain(|u| u["mail"] != DANA);
        t["roleAssignments"] = json!([]);
    });
    let plan = json_plan(d, "examples/foggy-it", &[]);
    assert_eq!(
        ops(&plan),
        [
            ("create".into(), GUEST.into(), "missing-in-entra".into()),
            ("create".into(), ROLE.into(), "missing-in-entra".into()),
        ]
    );
    assert_eq!(
        tf_on(d, "examples/foggy-it", &["apply", "--auto-approve"]).code,
        0
    );
    assert_eq!(users_with_email(&world(d), FOGGY, DANA), 1);
    assert_eq!(
        tf_on(d, "examples/foggy-it", &["plan", "--detailed-exitcode"]).code,
        0
    );
}

#[test]
fn existing_guests_are_adopted_never_invited_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifests = tempfile::tempdir().unwrap();
    let m = manifests.path().to_str().unwrap();
    write_tree(
        manifests.path(),
        &[(
            "foggy.yaml",
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: 3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b\n---\n\
             kind: GuestUser\nname: ben\nemail: BEN@previous-msp.example\ndisplayName: Ben (old MSP)\ntenants: [foggy-it]\n",
        )],
    );
    // Ben was invited by hand before tenantform: seed the sandbox's directory with him.
    std::fs::write(
        d.join("sandbox-world.json"),
        serde_json::to_vec(&json!({"tenants": [{
            "id": FOGGY, "displayName": "Foggy IT Services", "domain": "foggyit.onmicrosoft.com",
            "users": [{"displayName": "Ben (old MSP)", "mail": "ben@previous-msp.example", "userType": "Guest", "externalUserState": "Accepted"}]
        }]}))
        .unwrap(),
    )
    .unwrap();
    let plan = json_plan(d, m, &[]);
    let adopt = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == "guest.foggy-it.ben")
        .unwrap();
    assert_eq!(adopt["op"], "adopt");
    assert_eq!(adopt["reason"], "exists-in-entra");
    assert!(adopt["blocked"].as_str().unwrap().contains("--adopt"));

    let blocked = tf_on(d, m, &["apply", "--auto-approve"]);
    assert_eq!(blocked.code, 0);
    assert_eq!(
        users_with_email(&world(d), FOGGY, "ben@previous-msp.example"),
        1,
        "not invited"
    );

    let adopted = tf_on(d, m, &["apply", "--auto-approve", "--adopt"]);
    assert_eq!(adopted.code, 0, "{}", adopted.stderr);
    assert!(adopted.stdout.contains("1 adopted"), "{}", adopted.stdout);
    let state: Value = crate::support::stored_state(&d.join("state.json"));
    assert!(state["objects"]["guest.foggy-it.ben"]["ids"]["objectId"].is_string());
    assert_eq!(
        users_with_email(&world(d), FOGGY, "ben@previous-msp.example"),
        1
    );
    assert_eq!(tf_on(d, m, &["plan", "--detailed-exitcode"]).code, 0);
}

#[test]
fn removing_a_guest_deletes_only_what_tenantform_owns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifests = foggy_it();
    let m = manifests.path().to_str().unwrap();
    assert_eq!(tf_on(d, m, &["apply", "--auto-approve"]).code, 0);
    // Someone also gave Dana Global Reader by hand: tenantform does not own that.
    edit_world(d, |w| {
        let t = tenant(w, FOGGY);
        let dana = t["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["mail"] == DANA)
            .unwrap()["id"]
            .clone();
        t["roleAssignments"].as_array_mut().unwrap().push(json!({"principalId": dana, "roleDefinitionId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451"}));
    });
    std::fs::remove_file(manifests.path().join("support.yaml")).unwrap();
    let plan = json_plan(d, m, &[]);
    let deletes: Vec<String> = ops(&plan)
        .into_iter()
        .filter(|(op, _, _)| op == "delete")
        .map(|(_, a, _)| a)
        .collect();
    // Reverse dependency order; the hand-made Global Reader assignment is not in the plan.
    assert_eq!(
        deletes,
        ["msp_role.foggy-it.dana-support.TenantAdmin", ROLE, GUEST]
    );
    // Global Reader is an administrative role: as in Entra, User.ReadWrite.All alone does not
    // delete its holder in app-only mode. That is Graph's refusal, not a missing permission.
    let refused = tf_on(d, m, &["apply", "--auto-approve", "--allow-delete"]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("Graph error")
            && refused.stderr.contains("holds an administrative role")
            && !refused.stderr.contains("permission missing"),
        "{}",
        refused.stderr
    );
    // With Privileged Authentication Administrator for the app there, it may.
    edit_world(d, |w| {
        tenant(w, FOGGY)["appDirectoryRoles"] = json!(["Privileged Authentication Administrator"]);
    });
    let removed = tf_on(d, m, &["apply", "--auto-approve", "--allow-delete"]);
    assert_eq!(removed.code, 0, "{}{}", removed.stdout, removed.stderr);
    let w = world(d);
    assert_eq!(
        users_with_email(&w, FOGGY, DANA),
        0,
        "the guest tenantform invited is removed"
    );
    let foggy = w["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == FOGGY)
        .unwrap();
    // Her deletion also removed the hand-made assignment in Entra (as Entra does), but
    // tenantform never deleted it itself: only its own assignment was in the plan.
    assert!(
        foggy["roleAssignments"]
            .as_array()
            .is_none_or(|r| r.is_empty())
    );
}

#[test]
fn a_tenant_without_consent_is_reported_and_others_still_plan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifests = tempfile::tempdir().unwrap();
    let m = manifests.path().to_str().unwrap();
    write_tree(
        manifests.path(),
        &[(
            "fleet.yaml",
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: 3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b\n---\n\
             kind: Tenant\nname: birchwood\nmicrosoftTenantId: 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f\n---\n\
             kind: GuestUser\nname: dana\nemail: dana@msp.example\ntenants: [foggy-it, birchwood]\n",
        )],
    );
    std::fs::write(
        d.join("sandbox-world.json"),
        serde_json::to_vec(&json!({"tenants": [
            {"id": FOGGY, "displayName": "Foggy IT Services", "domain": "foggyit.onmicrosoft.com"},
            {"id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "displayName": "Birchwood Law", "domain": "birchwood.onmicrosoft.com", "consent": false}
        ]}))
        .unwrap(),
    )
    .unwrap();
    let run = tf_on(d, m, &["plan", "--output", "json", "--detailed-exitcode"]);
    assert_eq!(
        run.code, 1,
        "a tenant not planned fails the run: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 of 2 tenants could not be planned")
            && run.stderr.contains("birchwood: consent missing"),
        "{}",
        run.stderr
    );
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    let not_read = plan["notRead"].as_array().unwrap();
    assert_eq!(not_read.len(), 1);
    assert_eq!(not_read[0]["tenant"], "birchwood");
    assert_eq!(not_read[0]["cause"], "consent-missing");
    let outcomes: Vec<(String, String)> = plan["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("birchwood".to_string(), "failed".to_string()),
            ("foggy-it".to_string(), "changes".to_string())
        ]
    );
    let url = not_read[0]["consentUrl"].as_str().unwrap();
    assert!(
        url.contains("/7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f/v2.0/adminconsent?client_id="),
        "{url}"
    );
    assert!(ops(&plan).contains(&(
        "create".into(),
        "guest.foggy-it.dana".into(),
        "new-in-manifests".into()
    )));
    let text = tf_on(d, m, &["--color", "never", "plan"]);
    assert!(
        text.stdout
            .contains("send the customer's admin the consent link: http"),
        "{}",
        text.stdout
    );
}

#[test]
fn throttling_server_errors_and_replication_delay_still_converge_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifests = tempfile::tempdir().unwrap();
    let m = manifests.path().to_str().unwrap();
    crate::support::write_fleet(manifests.path(), 4);
    let faults = "seed=5,throttle=0.25,retry-after=0.01,5xx=0.1,replication=300ms";
    let first = tf_on(
        d,
        m,
        &["apply", "--auto-approve", "--sandbox-faults", faults],
    );
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let again = tf_on(
        d,
        m,
        &["plan", "--detailed-exitcode", "--sandbox-faults", faults],
    );
    assert_eq!(again.code, 0, "converged: {}", again.stdout);
    let w = world(d);
    for t in w["tenants"].as_array().unwrap() {
        let mut mails: Vec<&str> = t["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["mail"].as_str())
            .collect();
        let n = mails.len();
        mails.sort();
        mails.dedup();
        assert_eq!(mails.len(), n, "no duplicate invitation in {}", t["id"]);
        let mut roles: Vec<(String, String)> = t["roleAssignments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["principalId"].to_string(),
                    r["roleDefinitionId"].to_string(),
                )
            })
            .collect();
        let n = roles.len();
        roles.sort();
        roles.dedup();
        assert_eq!(roles.len(), n, "no duplicate assignment in {}", t["id"]);
    }
}

#[test]
fn pending_invitations_can_be_sent_again() {
    let dir = workspace(&["examples/foggy-it"]);
    let d = dir.path();
    assert_eq!(
        tf_on(d, "examples/foggy-it", &["apply", "--auto-approve"]).code,
        0
    );
    let plan = json_plan(d, "examples/foggy-it", &["--resend-invitations"]);
    assert_eq!(
        ops(&plan),
        [("update".into(), GUEST.into(), "resend-requested".into())]
    );
    let resent = tf_on(
        d,
        "examples/foggy-it",
        &["apply", "--auto-approve", "--resend-invitations"],
    );
    assert_eq!(resent.code, 0, "{}{}", resent.stdout, resent.stderr);
    assert!(resent.stdout.contains("1 updated"), "{}", resent.stdout);
    assert_eq!(users_with_email(&world(d), FOGGY, DANA), 1);
    // Accepted invitations are never re-sent.
    edit_world(d, |w| {
        let t = tenant(w, FOGGY);
        let user = t["users"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|u| u["mail"] == DANA)
            .unwrap();
        user["externalUserState"] = json!("Accepted");
    });
    assert!(
        ops(&json_plan(
            d,
            "examples/foggy-it",
            &["--resend-invitations"]
        ))
        .is_empty()
    );
}

#[test]
fn a_killed_apply_against_graph_resumes_without_duplicates() {
    let sandbox = crate::support::StandaloneSandbox::start(3);
    let manifests = tempfile::tempdir().unwrap();
    crate::support::write_fleet(manifests.path(), 3);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let env = sandbox.env();
    let apply = |delay: &str| {
        let args = [
            "apply",
            "--auto-approve",
            "--state",
            state.to_str().unwrap(),
        ];
        assert_hermetic(dir.path(), &args);
        let mut cmd = std::process::Command::new(crate::support::binary());
        cmd.current_dir(dir.path())
            .args(args)
            .arg(manifests.path())
            .env("TENANTFORM_TEST_APPLY_STEP_DELAY_MS", delay)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd
    };
    // 3 tenants and 9 organizations come first; kill once some guests were invited.
    let mut child = apply("60").spawn().unwrap();
    let journal = dir.path().join("state.json.journal");
    let lines = || std::fs::read_to_string(&journal).map_or(0, |t| t.lines().count());
    let start = std::time::Instant::now();
    while lines() < 1 + 12 + 4 && start.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        lines() >= 17,
        "killed mid-way through the guests; apply printed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let rerun = apply("0").output().unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let again = std::process::Command::new(crate::support::binary())
        .current_dir(dir.path())
        .args([
            "plan",
            "--detailed-exitcode",
            "--state",
            state.to_str().unwrap(),
        ])
        .arg(manifests.path())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    // Count what Entra holds: each guest once, each assignment once.
    let graph = sandbox.graph_client();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for i in 0..3u64 {
        let tenant = tenantform::synthetic::synthetic_guid(i);
        let users = rt
            .block_on(graph.get_all(&tenant, "/users?$select=mail"))
            .unwrap();
        let mut mails: Vec<String> = users
            .iter()
            .filter_map(|u| u["mail"].as_str().map(str::to_lowercase))
            .collect();
        let n = mails.len();
        mails.sort();
        mails.dedup();
        assert_eq!(mails.len(), n, "tenant {i}: a guest was invited twice");
        assert!(n >= 3, "tenant {i} has its guests");
        let roles = rt
            .block_on(graph.get_all(&tenant, "/roleManagement/directory/roleAssignments"))
            .unwrap();
        let mut pairs: Vec<String> = roles
            .iter()
            .map(|r| format!("{}/{}", r["principalId"], r["roleDefinitionId"]))
            .collect();
        let n = pairs.len();
        pairs.sort();
        pairs.dedup();
        assert_eq!(pairs.len(), n, "tenant {i}: a role was assigned twice");
    }
}

#[test]
fn one_failing_tenant_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifests = tempfile::tempdir().unwrap();
    crate::support::write_fleet(manifests.path(), 4);
    // A custom role that does not exist in customer 1's directory: its assignment fails.
    write_tree(
        manifests.path(),
        &[(
            "people/custom.yaml",
            "kind: RoleAssignment\nname: bad-custom-role\nprincipal: { guest: customer-00001-eng0 }\n\
             directoryRoles: [11111111-2222-4333-8444-555555555555]\ntenants: [customer-00001]\n",
        )],
    );
    let m = manifests.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let run = tf_on(d, m, &["apply", "--auto-approve", "--parallelism", "4"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "a missing role fails fast"
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("bad-custom-role")
            || run.stdout.contains("11111111-2222-4333-8444-555555555555"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("Request_ResourceNotFound"),
        "{}",
        run.stderr
    );
    // Every other tenant was applied completely.
    let plan = json_plan(d, m, &[]);
    let pending: std::collections::BTreeSet<String> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] != "no-op")
        .map(|a| a["tenant"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pending.into_iter().collect::<Vec<_>>(), ["customer-00001"]);
}

#[test]
fn a_terminal_plan_lists_a_bounded_number_of_pending_invitations() {
    // 205 guests whose invitations are all pending: the terminal plan lists the first 200 and
    // counts the rest (a fleet of such guests would otherwise be listed, and held, whole);
    // the JSON plan lists every object.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut manifests = String::from(
        "kind: Tenant\nname: acme\ndisplayName: Acme\nmicrosoftTenantId: 6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f\n",
    );
    for i in 0..205 {
        manifests.push_str(&format!(
            "---\nkind: GuestUser\nname: eng{i}\nemail: eng{i}@msp.example\ntenants: [acme]\n"
        ));
    }
    write_tree(&d.join("m"), &[("acme.yaml", manifests.as_str())]);
    let applied = tf_on(d, d.join("m"), &["apply", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);

    let text = tf_on(
        d,
        d.join("m"),
        &["--color", "never", "plan", "--detailed-exitcode"],
    );
    assert_eq!(text.code, 0, "{}{}", text.stdout, text.stderr);
    let listed = text
        .stdout
        .lines()
        .filter(|l| l.contains("PendingAcceptance since "))
        .count();
    assert_eq!(listed, 200, "{}", text.stdout);
    assert!(
        text.stdout.contains(
            "... 5 more unchanged objects not listed here (pending replication or invitation)"
        ),
        "{}",
        text.stdout
    );
    let plan = json_plan(d, d.join("m").to_str().unwrap(), &[]);
    let noted = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] == "no-op" && a["note"].is_string())
        .count();
    assert_eq!(noted, 205);
}
