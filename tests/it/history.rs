//! Apply history end to end through the binary: who made each change (the local user, or the
//! CI run and actor), from which commit and plan, and how it ended; followed through renames
//! and state edits; kept by `state migrate`.

use serde_json::Value;

use crate::support::{foggy_it, git_commit, run_in, run_with_env, tf};

const ROLE: &str = "directory_role.foggy-it.dana-support.729827e3-9c14-49f7-bb1b-9608f156bbb8.root";

const GITHUB_RUN: &[(&str, &str)] = &[
    ("GITHUB_ACTIONS", "true"),
    ("GITHUB_ACTOR", "octocat"),
    ("GITHUB_SERVER_URL", "https://github.com"),
    ("GITHUB_REPOSITORY", "contoso/fleet"),
    ("GITHUB_RUN_ID", "4242"),
    ("GITHUB_RUN_ATTEMPT", "1"),
    ("GITHUB_WORKFLOW", "apply"),
];

fn history(dir: &std::path::Path, args: &[&str]) -> Vec<Value> {
    history_of(dir, &dir.join("state.json"), args)
}

fn history_of(dir: &std::path::Path, state: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["state", "history", "--state", state.to_str().unwrap()];
    all.extend(args);
    all.extend(["--output", "json"]);
    let run = run_in(dir, &all, None);
    assert_eq!(run.code, 0, "{}", run.transcript());
    serde_json::from_str(&run.stdout).unwrap()
}

fn addresses(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["address"].as_str().unwrap())
        .collect()
}

#[test]
fn history_says_who_gave_a_role_from_which_commit_and_plan() {
    let dir = foggy_it();
    let d = dir.path().to_str().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    let commit = git_commit(&repo, "foggy-it: Dana gets Helpdesk Administrator");
    let planned = tf(dir.path(), &["plan", d, "--out", "plan.tfp"]);
    assert_eq!(planned.code, 0, "{}", planned.transcript());
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.tfp")).unwrap())
            .unwrap();
    let plan_id = saved["id"].as_str().unwrap().to_string();
    assert_eq!(plan_id.len(), 12, "{saved}");
    assert!(
        planned.stdout.contains(&format!("Plan id: {plan_id}")),
        "the reviewer sees the id history will name:\n{}",
        planned.stdout
    );

    let state = dir.path().join("state.json");
    let applied = run_with_env(
        dir.path(),
        &[
            "apply",
            "plan.tfp",
            "--auto-approve",
            "--state",
            state.to_str().unwrap(),
        ],
        None,
        GITHUB_RUN,
    );
    assert_eq!(applied.code, 0, "{}", applied.transcript());

    let entries = history(dir.path(), &["--address", ROLE]);
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let e = &entries[0];
    assert_eq!(e["op"], "create");
    assert_eq!(e["outcome"]["status"], "applied");
    assert_eq!(e["who"]["name"], "octocat");
    assert_eq!(
        e["who"]["ci"]["url"],
        "https://github.com/contoso/fleet/actions/runs/4242/attempts/1"
    );
    assert_eq!(e["commit"], commit.as_str());
    assert_eq!(e["plan"], plan_id.as_str());
    assert_eq!(e["command"], "apply");
    assert!(
        e["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "roleName" && c["after"] == "Helpdesk Administrator"),
        "{e}"
    );

    // Every change of the apply is there, once, from the same run.
    let all = history(dir.path(), &[]);
    assert_eq!(all.len(), 7, "{all:#?}");
    assert!(all.iter().all(|x| x["run"] == e["run"]));
    let mut seen = addresses(&all);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);

    // The text form answers the question in one block.
    let text = run_in(
        dir.path(),
        &[
            "state",
            "history",
            "--state",
            state.to_str().unwrap(),
            "--address",
            ROLE,
        ],
        None,
    );
    assert_eq!(text.code, 0, "{}", text.transcript());
    for needle in [
        "create  directory_role.foggy-it.dana-support",
        "by octocat (github-actions https://github.com/contoso/fleet/actions/runs/4242/attempts/1)",
        &format!("commit {commit}, plan {plan_id}"),
        "roleName = \"Helpdesk Administrator\"",
    ] {
        assert!(text.stdout.contains(needle), "{needle}:\n{}", text.stdout);
    }

    // Nothing to do: nothing more recorded.
    let again = tf(dir.path(), &["apply", d, "--auto-approve"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(history(dir.path(), &[]).len(), 7);
    // Filters: since a time after everything, an unknown tenant.
    assert!(history(dir.path(), &["--since", "2999-01-01"]).is_empty());
    assert!(history(dir.path(), &["--tenant", "nobody"]).is_empty());
    assert_eq!(history(dir.path(), &["--since", "1d"]).len(), 7);
    let bad = run_in(
        dir.path(),
        &[
            "state",
            "history",
            "--state",
            state.to_str().unwrap(),
            "--since",
            "yesterday",
        ],
        None,
    );
    assert_eq!(bad.code, 1, "{}", bad.transcript());
    assert!(
        bad.stderr.contains("--since yesterday: not a date"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_local_apply_names_the_user_and_a_failed_change_is_recorded_with_its_cause() {
    let dir = crate::support::three_tenant_fleet(|i, t| {
        if i == 1 {
            t["permissions"] =
                serde_json::json!(["User.Read.All", "RoleManagement.ReadWrite.Directory"]);
        }
    });
    let d = dir.path().to_str().unwrap();
    // The fleet's world is beside the default state (.tenantform/).
    let apply = run_in(
        dir.path(),
        &["apply", d, "--sandbox", "--auto-approve"],
        None,
    );
    assert_eq!(apply.code, 1, "{}", apply.transcript());
    let state = dir.path().join(".tenantform/state.json");
    let failed: Vec<Value> = history_of(dir.path(), &state, &[])
        .into_iter()
        .filter(|e| e["outcome"]["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let f = &failed[0];
    assert_eq!(f["tenant"], "t1");
    assert_eq!(f["kind"], "guest");
    assert_eq!(f["outcome"]["cause"], "permission-missing");
    assert!(
        f["outcome"]["message"]
            .as_str()
            .unwrap()
            .contains("User.Invite.All"),
        "{f}"
    );
    // Not in CI: the local user@host, and no CI run.
    assert!(f["who"]["name"].as_str().unwrap().contains('@'), "{f}");
    assert!(f["who"].get("ci").is_none(), "{f}");
    // The other tenants' changes are recorded as applied.
    let t0 = history_of(dir.path(), &state, &["--tenant", "t0"]);
    assert!(!t0.is_empty());
    assert!(t0.iter().all(|e| e["outcome"]["status"] == "applied"));
}

#[test]
fn history_follows_a_tenant_moved_in_state_and_records_state_edits() {
    let dir = foggy_it();
    let d = dir.path().to_str().unwrap();
    let applied = tf(dir.path(), &["apply", d, "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let state = dir.path().join("state.json");
    let s = state.to_str().unwrap();
    let moved = run_in(
        dir.path(),
        &[
            "state",
            "mv",
            "--state",
            s,
            "tenant.foggy-it",
            "tenant.foggy",
        ],
        None,
    );
    assert_eq!(moved.code, 0, "{}", moved.transcript());

    // The guest's trail under its new address starts with its create under the old one.
    let guest = history(dir.path(), &["--address", "guest.foggy.dana-support"]);
    assert_eq!(
        addresses(&guest),
        ["guest.foggy-it.dana-support", "guest.foggy.dana-support"],
        "{guest:#?}"
    );
    assert_eq!(guest[0]["op"], "create");
    assert_eq!(guest[1]["op"], "move");
    assert_eq!(guest[1]["from"], "guest.foggy-it.dana-support");
    assert_eq!(guest[1]["command"], "state mv");
    // The tenant under its new name includes what was done under the old one.
    let tenant = history(dir.path(), &["--tenant", "foggy"]);
    let under_old = tenant.iter().filter(|e| e["tenant"] == "foggy-it").count();
    assert_eq!(under_old, 7, "{tenant:#?}");
    assert!(
        tenant
            .iter()
            .any(|e| e["address"] == "tenant.foggy" && e["op"] == "move")
    );

    let removed = run_in(
        dir.path(),
        &["state", "rm", "--state", s, "organization.foggy-waltham"],
        None,
    );
    assert_eq!(removed.code, 0, "{}", removed.transcript());
    let org = history(dir.path(), &["--address", "organization.foggy-waltham"]);
    assert_eq!(org.last().unwrap()["op"], "forget", "{org:#?}");
    assert_eq!(org.last().unwrap()["command"], "state rm");
}
