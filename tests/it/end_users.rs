//! End users synced as contacts, end to end: the binary against a sandbox in its own process
//! (one continuous directory, changed through its controls as an admin would in the portal),
//! with real state files. Routing by office, moves, disables, deletions through users/delta,
//! a no-change sync costing one request, 410 Gone falling back to a whole read, the
//! mass-removal guard, and an unreadable tenant keeping its contacts (exit 1).

use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use tenantform::sandbox::fixture::{Fixture, FixtureTenant, FixtureUser, UserProfile};

use crate::standalone::StandaloneSandbox;
use crate::support::{Run, run_against, write_tree};

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;

fn uid(n: u32) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02}")
}

fn user(n: u32, name: &str, office: &str, department: &str) -> FixtureUser {
    let first = name.split(' ').next().unwrap().to_lowercase();
    FixtureUser {
        profile: UserProfile {
            office_location: Some(office.into()),
            department: Some(department.into()),
            ..UserProfile::default()
        },
        ..FixtureUser::member(&uid(n), name, &format!("{first}@foggyit.example"))
    }
}

/// Foggy IT's people: three offices, a service account, a guest, a disabled account, and a
/// name with markup in it.
fn foggy_users() -> Vec<FixtureUser> {
    let mut guest = user(5, "Ben Guest", "", "");
    guest.user_type = "Guest".into();
    guest.mail = Some("ben@previous-msp.example".into());
    let mut dora = user(6, "Dora Disabled", "Boston HQ", "Sales");
    dora.account_enabled = false;
    vec![
        user(1, "Ada Lovelace", "Boston HQ", "Engineering"),
        user(2, "Walt Ham", "Waltham 2", "Finance"),
        user(3, "Burl Ington", "Remote - Burlington", "Sales"),
        user(4, "Svc Backup", "Boston HQ", "Service Accounts"),
        guest,
        dora,
        user(7, "Eve <script>alert(1)</script>", "Boston HQ", "Sales"),
    ]
}

/// A sandbox whose Foggy IT tenant has `users`, and a work directory with Foggy IT's tenant
/// (three organizations) and its end-user sync.
fn start(users: Vec<FixtureUser>) -> (StandaloneSandbox, tempfile::TempDir) {
    let mut fixture = Fixture::generated(0, 0);
    fixture.tenants.push(FixtureTenant {
        users,
        ..FixtureTenant::new(FOGGY, "Foggy IT Services", "foggyit.onmicrosoft.com")
    });
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world.json");
    std::fs::write(&world, serde_json::to_vec(&fixture).unwrap()).unwrap();
    let sandbox = StandaloneSandbox::serve(&["--fixture", world.to_str().unwrap()], Stdio::null());
    let root = crate::support::repo_root().join("examples/foggy-it");
    write_tree(
        &dir.path().join("manifests"),
        &[
            (
                "tenant.yaml",
                &std::fs::read_to_string(root.join("tenant.yaml")).unwrap(),
            ),
            (
                "end-users.yaml",
                &std::fs::read_to_string(root.join("end-users.yaml")).unwrap(),
            ),
        ],
    );
    (sandbox, dir)
}

fn tf(sandbox: &StandaloneSandbox, dir: &Path, args: &[&str]) -> Run {
    let state = dir.join("state.json");
    let mut all = args.to_vec();
    all.extend(["--state", state.to_str().unwrap(), "manifests"]);
    run_against(sandbox, dir, &all, &[])
}

/// The tenant's contacts in state, by user id: (organization, name, archived reason).
fn contacts(dir: &Path) -> Vec<(String, String, String, Option<String>)> {
    let path = dir.join("state.d/tenants/foggy-it.json");
    let state: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut out: Vec<_> = state["objects"]
        .as_object()
        .unwrap()
        .values()
        .filter(|o| o["kind"] == "contact")
        .map(|o| {
            let a = &o["attributes"];
            (
                a["entra"]["id"].as_str().unwrap().to_string(),
                a["organization"].as_str().unwrap_or("").to_string(),
                a["name"].as_str().unwrap_or("").to_string(),
                a["archived"]["reason"].as_str().map(str::to_string),
            )
        })
        .collect();
    out.sort();
    out
}

fn control(sandbox: &StandaloneSandbox, method: &str, path: &str, body: Option<Value>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(
            method.parse().unwrap(),
            format!("{}/_sandbox/tenants/{FOGGY}{path}", sandbox.base),
        );
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        assert!(
            answer.status().is_success(),
            "{method} {path}: {}",
            answer.text().await.unwrap()
        );
    });
}

fn clear_requests(sandbox: &StandaloneSandbox) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .delete(format!("{}/_sandbox/requests", sandbox.base))
            .send()
            .await
            .unwrap();
    });
}

/// Graph requests (not tokens) the sandbox answered since the last clear: (method, path).
fn graph_requests(sandbox: &StandaloneSandbox) -> Vec<(String, String)> {
    sandbox
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").contains("/v1.0/"))
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn users_are_routed_by_office_and_moves_disables_and_deletions_follow_through_delta() {
    let (sandbox, dir) = start(foggy_users());
    let dir = dir.path();
    let first = tf(&sandbox, dir, &["apply", "--auto-approve"]);
    ok(&first);
    assert_eq!(
        contacts(dir),
        vec![
            (uid(1), "foggy-boston".into(), "Ada Lovelace".into(), None),
            (uid(2), "foggy-waltham".into(), "Walt Ham".into(), None),
            (
                uid(3),
                "foggy-burlington".into(),
                "Burl Ington".into(),
                None
            ),
            (
                uid(7),
                "foggy-boston".into(),
                "Eve <script>alert(1)</script>".into(),
                None
            ),
        ],
        "members only, minus the excluded department and the disabled account"
    );

    // Nothing changed: one users/delta request, no changes (exit 0 with --detailed-exitcode).
    clear_requests(&sandbox);
    let quiet = tf(&sandbox, dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(quiet.code, 0, "{}", quiet.transcript());
    let requests = graph_requests(&sandbox);
    assert_eq!(requests.len(), 1, "one request: {requests:?}");
    assert!(requests[0].1.contains("/users/delta"), "{requests:?}");

    // The portal: Ada moves to Waltham, Walt is disabled, Burl is deleted, a new hire.
    control(
        &sandbox,
        "PATCH",
        &format!("/users/{}", uid(1)),
        Some(json!({"officeLocation": "Waltham 1"})),
    );
    control(
        &sandbox,
        "PATCH",
        &format!("/users/{}", uid(2)),
        Some(json!({"accountEnabled": false})),
    );
    control(&sandbox, "DELETE", &format!("/users/{}", uid(3)), None);
    control(
        &sandbox,
        "POST",
        "/users",
        Some(
            json!({"id": uid(8), "displayName": "Hal New", "mail": "hal@foggyit.example",
                     "userPrincipalName": "hal@foggyit.example",
                     "profile": {"officeLocation": "Burlington 1", "department": "IT"}}),
        ),
    );
    let plan = tf(&sandbox, dir, &["plan", "--output", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let action = |id: &str| -> Value {
        plan["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["address"] == format!("contact.foggy-it.{id}"))
            .cloned()
            .unwrap_or_else(|| panic!("no action for {id}"))
    };
    assert_eq!(action(&uid(1))["op"], "update");
    assert!(
        action(&uid(1))["note"]
            .as_str()
            .unwrap()
            .contains("moves from organization foggy-boston to foggy-waltham"),
        "{}",
        action(&uid(1))
    );
    assert_eq!(action(&uid(2))["op"], "archive");
    assert_eq!(action(&uid(2))["note"], "disabled in Entra");
    assert_eq!(action(&uid(3))["op"], "archive");
    assert_eq!(
        action(&uid(3))["note"],
        "deleted in Entra (restorable for 30 days)"
    );
    assert_eq!(action(&uid(8))["op"], "create");
    assert_eq!(action(&uid(7))["op"], "no-op");

    ok(&tf(&sandbox, dir, &["apply", "--auto-approve"]));
    let after = contacts(dir);
    assert_eq!(
        after[0],
        (uid(1), "foggy-waltham".into(), "Ada Lovelace".into(), None)
    );
    assert_eq!(after[1].3.as_deref(), Some("disabled in Entra"));
    assert_eq!(
        after[2].3.as_deref(),
        Some("deleted in Entra (restorable for 30 days)")
    );
    assert_eq!(
        after[4],
        (uid(8), "foggy-burlington".into(), "Hal New".into(), None)
    );
    // Converged: the next plan has nothing to do.
    let again = tf(&sandbox, dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn a_410_gone_falls_back_to_a_whole_read() {
    let (sandbox, dir) = start(foggy_users());
    let dir = dir.path();
    ok(&tf(&sandbox, dir, &["apply", "--auto-approve"]));
    control(&sandbox, "PUT", "/delta/reset", None);
    control(
        &sandbox,
        "PATCH",
        &format!("/users/{}", uid(7)),
        Some(json!({"displayName": "Eve Adams"})),
    );
    clear_requests(&sandbox);
    let plan = tf(&sandbox, dir, &["plan", "--output", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    let requests = graph_requests(&sandbox);
    assert_eq!(
        requests.len(),
        2,
        "the stored link, then a whole read: {requests:?}"
    );
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let changed: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] != "no-op")
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        changed,
        vec![format!("contact.foggy-it.{}", uid(7)).as_str()]
    );
}

#[test]
fn an_expired_delta_link_falls_back_to_a_whole_read() {
    let (sandbox, dir) = start(foggy_users());
    let dir = dir.path();
    ok(&tf(&sandbox, dir, &["apply", "--auto-approve"]));
    // Seven days later: Graph answers the stored link 400 syncStateNotFound.
    control(&sandbox, "POST", "/delta/expire", None);
    control(
        &sandbox,
        "PATCH",
        &format!("/users/{}", uid(1)),
        Some(json!({"jobTitle": "CTO"})),
    );
    clear_requests(&sandbox);
    let run = tf(&sandbox, dir, &["apply", "--auto-approve"]);
    ok(&run);
    let requests = graph_requests(&sandbox);
    assert_eq!(
        requests.len(),
        2,
        "the expired link, then a whole read: {requests:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("contact.foggy-it.{}: updating... done", uid(1))),
        "{}",
        run.stdout
    );
    // The new link is stored: the next round is one quiet request again.
    clear_requests(&sandbox);
    let again = tf(&sandbox, dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(graph_requests(&sandbox).len(), 1);
}

#[test]
fn the_mass_removal_guard_holds_back_and_fails_until_allowed() {
    let users: Vec<FixtureUser> = (10..22)
        .map(|n| user(n, &format!("Person{n} Staff"), "Boston HQ", "Sales"))
        .collect();
    let (sandbox, dir) = start(users);
    let dir = dir.path();
    ok(&tf(&sandbox, dir, &["apply", "--auto-approve"]));
    assert_eq!(contacts(dir).len(), 12);
    for n in 10..16 {
        control(&sandbox, "DELETE", &format!("/users/{}", uid(n)), None);
    }
    let held = tf(&sandbox, dir, &["apply", "--auto-approve"]);
    assert_eq!(held.code, 1, "{}", held.transcript());
    assert!(
        held.transcript().contains("mass removal"),
        "{}",
        held.transcript()
    );
    assert!(
        held.transcript().contains("foggy-it"),
        "{}",
        held.transcript()
    );
    assert!(
        contacts(dir).iter().all(|c| c.3.is_none()),
        "nothing archived while held back"
    );
    // The removals are not lost: they are planned again until someone decides.
    let allowed = tf(
        &sandbox,
        dir,
        &["apply", "--auto-approve", "--allow-mass-removal"],
    );
    ok(&allowed);
    assert_eq!(contacts(dir).iter().filter(|c| c.3.is_some()).count(), 6);
}

#[test]
fn a_tenant_whose_users_cannot_be_read_keeps_its_contacts_and_fails() {
    let (sandbox, dir) = start(foggy_users());
    let dir = dir.path();
    ok(&tf(&sandbox, dir, &["apply", "--auto-approve"]));
    let before = std::fs::read(dir.join("state.d/tenants/foggy-it.json")).unwrap();
    control(
        &sandbox,
        "PUT",
        "/permissions",
        Some(json!({"permissions": ["RoleManagement.ReadWrite.Directory"]})),
    );
    let run = tf(&sandbox, dir, &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let text = run.transcript();
    assert!(text.contains("foggy-it"), "{text}");
    assert!(text.to_lowercase().contains("permission"), "{text}");
    assert_eq!(
        std::fs::read(dir.join("state.d/tenants/foggy-it.json")).unwrap(),
        before,
        "contacts untouched: an unreadable tenant is never 'all users gone'"
    );
}

#[test]
fn sync_applies_contacts_only_and_then_costs_one_request_a_round() {
    let (sandbox, dir) = start(foggy_users());
    let dir = dir.path();
    // Guests are declared too: sync leaves them alone (apply invites them).
    std::fs::copy(
        crate::support::repo_root().join("examples/foggy-it/support.yaml"),
        dir.join("manifests/support.yaml"),
    )
    .unwrap();
    let first = tf(&sandbox, dir, &["sync", "--output", "json"]);
    ok(&first);
    let summary: Value = serde_json::from_str(first.stdout.trim()).unwrap();
    assert_eq!(summary["tenants"], 1, "{summary}");
    assert_eq!(summary["created"], 4, "{summary}");
    assert_eq!(summary["exitCode"], 0, "{summary}");
    assert_eq!(sandbox.invitations(), 0, "sync invites nobody");
    assert_eq!(contacts(dir).len(), 4);

    clear_requests(&sandbox);
    let second = tf(&sandbox, dir, &["sync", "--output", "json"]);
    ok(&second);
    let summary: Value = serde_json::from_str(second.stdout.trim()).unwrap();
    assert_eq!(summary["created"], 0, "{summary}");
    let requests = graph_requests(&sandbox);
    assert_eq!(requests.len(), 1, "{requests:?}");
    // A quiet round reads only the position; a round with a change loads the contacts.
    control(
        &sandbox,
        "PATCH",
        &format!("/users/{}", uid(2)),
        Some(json!({"jobTitle": "CFO"})),
    );
    let third = tf(&sandbox, dir, &["sync", "--output", "json"]);
    ok(&third);
    let summary: Value = serde_json::from_str(third.stdout.trim()).unwrap();
    assert_eq!(
        (summary["updated"].as_u64(), summary["created"].as_u64()),
        (Some(1), Some(0)),
        "{summary}"
    );

    // What a PSA imports: routed by office, markup kept as data.
    let csv = tf(&sandbox, dir, &["contacts", "--output", "csv"]);
    ok(&csv);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", csv.stdout);
    let row = |id: &str| -> &str { lines.iter().find(|l| l.contains(id)).unwrap() };
    assert!(
        row(&uid(1)).starts_with("foggy-it,foggy-boston,"),
        "{}",
        row(&uid(1))
    );
    assert!(
        row(&uid(2)).starts_with("foggy-it,foggy-waltham,"),
        "{}",
        row(&uid(2))
    );
    assert!(
        row(&uid(3)).starts_with("foggy-it,foggy-burlington,"),
        "{}",
        row(&uid(3))
    );
    assert!(
        row(&uid(7)).contains("Eve <script>alert(1)</script>"),
        "{}",
        row(&uid(7))
    );
}

#[test]
fn sync_every_keeps_running_and_stops_between_rounds_on_sigterm() {
    let (sandbox, dir) = start(foggy_users());
    let dir = dir.path();
    let state = dir.join("state.json");
    let mut child = std::process::Command::new(crate::support::binary())
        .args([
            "sync",
            "manifests",
            "--every",
            "1s",
            "--output",
            "json",
            "--state",
        ])
        .arg(&state)
        .envs(sandbox.env())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["created"], 4, "{first}");
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["created"], 0, "{second}");
    assert_eq!(second["exitCode"], 0, "{second}");
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "still running after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "a clean stop after a clean round");
}

#[test]
fn a_group_that_does_not_resolve_fails_the_tenant_naming_the_group_and_where_it_is_named() {
    let (sandbox, dir) = start(foggy_users());
    let dir = dir.path();
    std::fs::write(
        dir.join("manifests/end-users.yaml"),
        "kind: EndUserSync\nname: foggy-sales\ntenants: [foggy-it]\ninclude:\n  - group: Sales Team\ndefaultOrganization: foggy-boston\n",
    )
    .unwrap();
    let run = tf(&sandbox, dir, &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let text = run.transcript();
    // It points at where the group is named, as a manifest diagnostic would.
    assert!(
        text.contains("group `Sales Team` named by EndUserSync foggy-sales (")
            && text.contains("end-users.yaml:5:12) does not exist in this tenant"),
        "{text}"
    );
    assert!(text.contains("foggy-it"), "{text}");
    assert!(!dir.join("state.d/tenants/foggy-it.json").exists() || contacts(dir).is_empty());
}
