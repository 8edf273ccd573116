//! Eventual consistency as Graph has it: a new guest is not listed or readable for a while,
//! role assignments to it fail in each documented shape, and a connection can drop after the
//! change was made. The executor converges through all of it without duplicating anything.

use std::path::Path;

use serde_json::Value;

use crate::support::{StandaloneSandbox, run_in, write_fleet};

fn world(dir: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.join(".tenantform/sandbox-world.json")).unwrap(),
    )
    .unwrap()
}

/// No guest twice (by mail) and no role assignment twice in any tenant of the world file.
fn assert_no_duplicates(dir: &Path) {
    for t in world(dir)["tenants"].as_array().unwrap() {
        let mut mails: Vec<&str> = t["users"]
            .as_array()
            .map(|u| u.iter().filter_map(|u| u["mail"].as_str()).collect())
            .unwrap_or_default();
        let n = mails.len();
        mails.sort();
        mails.dedup();
        assert_eq!(mails.len(), n, "a guest invited twice in {}", t["id"]);
        let mut roles: Vec<String> = t["roleAssignments"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|r| {
                        format!(
                            "{}/{}/{}",
                            r["principalId"], r["roleDefinitionId"], r["directoryScopeId"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let n = roles.len();
        roles.sort();
        roles.dedup();
        assert_eq!(roles.len(), n, "a role assigned twice in {}", t["id"]);
    }
}

#[test]
fn every_replication_shape_converges_without_duplicates() {
    for shape in ["principal", "template", "reference", "mixed"] {
        let dir = tempfile::tempdir().unwrap();
        write_fleet(dir.path(), 2);
        let d = dir.path().to_str().unwrap();
        let faults = format!("replication=700ms,replication-shape={shape},seed=3");
        let apply = run_in(
            dir.path(),
            &[
                "apply",
                d,
                "--sandbox",
                "--sandbox-faults",
                &faults,
                "--auto-approve",
            ],
            None,
        );
        assert_eq!(apply.code, 0, "{shape}: {}{}", apply.stdout, apply.stderr);
        let plan = run_in(
            dir.path(),
            &["plan", d, "--sandbox", "--detailed-exitcode"],
            None,
        );
        assert_eq!(plan.code, 0, "{shape}: {}", plan.stdout);
        assert_no_duplicates(dir.path());
        let assigned: usize = world(dir.path())["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["roleAssignments"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(assigned >= 8, "{shape}: every role assigned ({assigned})");
    }
}

#[test]
fn the_sandbox_hides_a_new_guest_from_reads_until_it_replicates() {
    let sandbox = StandaloneSandbox::start_with_faults(1, "replication=1500ms");
    let graph = sandbox.graph_client();
    let tenant = tenantform::synthetic::synthetic_guid(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let invited = rt
        .block_on(graph.send(
            &tenant,
            "POST",
            "/invitations",
            Some(&serde_json::json!({
                "invitedUserEmailAddress": "new@msp.example",
                "inviteRedirectUrl": "https://myapps.microsoft.com"
            })),
        ))
        .unwrap();
    let id = invited.body["invitedUser"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = |rt: &tokio::runtime::Runtime| {
        rt.block_on(graph.get_all(&tenant, "/users?$select=id,mail"))
            .unwrap()
            .iter()
            .any(|u| u["id"] == id.as_str())
    };
    assert!(!listed(&rt), "not listed a moment after the invitation");
    let read = rt.block_on(graph.get(&tenant, &format!("/users/{id}")));
    assert_eq!(read.unwrap_err().status(), Some(404));
    // Assigning a role to it fails in one of the replication shapes.
    let assign = rt.block_on(graph.send(
        &tenant,
        "POST",
        "/roleManagement/directory/roleAssignments",
        Some(&serde_json::json!({
            "principalId": id,
            "roleDefinitionId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
            "directoryScopeId": "/"
        })),
    ));
    assert!(
        matches!(assign.unwrap_err().status(), Some(404 | 400)),
        "replication shape"
    );
    std::thread::sleep(std::time::Duration::from_millis(1600));
    assert!(listed(&rt), "listed once replicated");
    assert!(
        rt.block_on(graph.get(&tenant, &format!("/users/{id}")))
            .is_ok()
    );
}

#[test]
fn a_plan_right_after_apply_shows_unreplicated_guests_as_pending_not_missing() {
    let sandbox = StandaloneSandbox::start_with_faults(1, "replication=4s");
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_tree(
        dir.path(),
        &[(
            "fleet.yaml",
            &format!(
                "kind: Tenant\nname: t0\nmicrosoftTenantId: {}\n---\n\
                 kind: GuestUser\nname: g\nemail: g@msp.example\ntenants: [t0]\n",
                tenantform::synthetic::synthetic_guid(0)
            ),
        )],
    );
    let d = dir.path().to_str().unwrap();
    let state = dir.path().join("state.json");
    let s = state.to_str().unwrap();
    let tf = |args: &[&str]| {
        let mut cmd = crate::support::command();
        cmd.current_dir(dir.path()).args(args).envs(sandbox.env());
        cmd.output().unwrap()
    };
    let guest = |plan: &std::process::Output| -> (Option<i32>, Value) {
        let json: Value = serde_json::from_slice(&plan.stdout).unwrap();
        let g = json["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["address"] == "guest.t0.g")
            .cloned()
            .unwrap();
        (plan.status.code(), g)
    };
    let apply = tf(&["apply", d, "--state", s, "--auto-approve"]);
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    // Invited a moment ago: Graph does not list the guest yet. Pending, not a change.
    let (code, g) = guest(&tf(&[
        "plan",
        d,
        "--state",
        s,
        "--detailed-exitcode",
        "-o",
        "json",
    ]));
    assert_eq!((code, g["op"].as_str()), (Some(0), Some("no-op")), "{g}");
    assert_eq!(g["reason"], "pending-replication");
    let text = tf(&["--color", "never", "plan", d, "--state", s]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("not visible in Entra yet (replication)"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    // Without the window the same guest would look missing and be invited again.
    let (code, g) = guest(&tf(&[
        "plan",
        d,
        "--state",
        s,
        "--detailed-exitcode",
        "--replication-window",
        "0s",
        "-o",
        "json",
    ]));
    assert_eq!(
        (code, g["reason"].as_str()),
        (Some(2), Some("missing-in-entra"))
    );
    // Once replicated, it is simply there.
    std::thread::sleep(std::time::Duration::from_millis(4200));
    let (code, g) = guest(&tf(&[
        "plan",
        d,
        "--state",
        s,
        "--detailed-exitcode",
        "-o",
        "json",
    ]));
    assert_eq!((code, g["reason"].is_null()), (Some(0), true), "{g}");
}

#[test]
fn answers_lost_after_the_change_was_made_are_recognised_never_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path(), 3);
    let d = dir.path().to_str().unwrap();
    // A third of the writes are carried out and their answer dropped.
    let mut last = None;
    for seed in 1..=6 {
        let faults = format!("drop-after=0.3,seed={seed}");
        let apply = run_in(
            dir.path(),
            &[
                "apply",
                d,
                "--sandbox",
                "--sandbox-faults",
                &faults,
                "--auto-approve",
            ],
            None,
        );
        assert!(!apply.stderr.contains("panicked"), "{}", apply.stderr);
        assert_no_duplicates(dir.path());
        if apply.code == 0 {
            last = Some(seed);
            break;
        }
    }
    assert!(last.is_some(), "converged within a few runs");
    let plan = run_in(
        dir.path(),
        &["plan", d, "--sandbox", "--detailed-exitcode"],
        None,
    );
    assert_eq!(plan.code, 0, "{}", plan.stdout);
}
