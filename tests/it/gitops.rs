//! Manifests from git: `--ref`, `--changed-since`, commits recorded in state, and saved plans
//! refused on another commit. Repositories are built for real with git2.

use std::path::Path;

use serde_json::Value;

use crate::support::{run_in, tf, write_tree};

/// Commits the work tree of `repo` with `message`; returns the commit id.
fn commit(repo: &git2::Repository, message: &str) -> String {
    crate::support::git_commit(repo, message)
}

fn tenant(name: &str, id: &str, tier: &str, display: &str) -> String {
    format!(
        "kind: Tenant\nname: {name}\ndisplayName: {display}\nmicrosoftTenantId: {id}\nlabels: {{ tier: {tier} }}\n"
    )
}

const GUEST: &str = "kind: GuestUser\nname: gold-desk\nemail: desk@msp.example\ntenants: { selector: tier=gold }\n---\nkind: RoleAssignment\nname: gold-desk-admin\nprincipal: { guest: gold-desk }\nmspRoles: [TenantAdmin]\n";

fn fleet(dir: &Path, c_tier: &str, b_name: &str, a_tier: &str) {
    write_tree(
        dir,
        &[
            (
                "manifests/a.yaml",
                &tenant("a", "3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b", a_tier, "Alpha"),
            ),
            (
                "manifests/b.yaml",
                &tenant(
                    "b",
                    "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
                    "silver",
                    b_name,
                ),
            ),
            (
                "manifests/c.yaml",
                &tenant("c", "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", c_tier, "Gamma"),
            ),
            ("manifests/people.yaml", GUEST),
        ],
    );
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn addresses(plan: &Value) -> Vec<String> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn ref_reads_a_commit_without_touching_the_work_tree() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    fleet(dir.path(), "bronze", "Beta", "gold");
    let first = commit(&repo, "three customers");
    fleet(dir.path(), "gold", "Beta Renamed", "gold");
    let second = commit(&repo, "gamma upgraded to gold, beta renamed");
    // An uncommitted edit in the work tree: --ref must not see it.
    write_tree(
        dir.path(),
        &[("manifests/b.yaml", "kind: Tennant\nname: broken\n")],
    );

    let at_first = tf(
        dir.path(),
        &[
            "plan",
            "manifests",
            "--ref",
            &first[..10],
            "--output",
            "json",
        ],
    );
    assert_eq!(at_first.code, 0, "{}", at_first.stderr);
    let plan = json(&at_first.stdout);
    let roles: Vec<String> = addresses(&plan)
        .into_iter()
        .filter(|a| a.starts_with("msp_role."))
        .collect();
    assert_eq!(
        roles,
        ["msp_role.a.gold-desk.TenantAdmin"],
        "at the first commit only Alpha is gold"
    );

    let at_main = tf(
        dir.path(),
        &["plan", "manifests", "--ref", "HEAD", "--output", "json"],
    );
    let roles: Vec<String> = addresses(&json(&at_main.stdout))
        .into_iter()
        .filter(|a| a.starts_with("msp_role."))
        .collect();
    assert_eq!(
        roles,
        [
            "msp_role.a.gold-desk.TenantAdmin",
            "msp_role.c.gold-desk.TenantAdmin"
        ]
    );

    // The work tree is broken, and untouched.
    let work_tree = tf(dir.path(), &["plan", "manifests"]);
    assert_eq!(work_tree.code, 1);
    assert!(work_tree.stderr.contains("[TF202]"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("manifests/b.yaml")).unwrap(),
        "kind: Tennant\nname: broken\n"
    );

    // Applying at a ref records that commit in state.
    let applied = tf(
        dir.path(),
        &["apply", "manifests", "--ref", &second, "--auto-approve"],
    );
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let state = crate::support::stored_state(&dir.path().join("state.json"));
    assert!(
        state["objects"]
            .as_object()
            .unwrap()
            .values()
            .all(|o| o["source"]["commit"] == second.as_str())
    );

    let bad = tf(
        dir.path(),
        &["plan", "manifests", "--ref", "no-such-branch"],
    );
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("cannot resolve `no-such-branch`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn changed_since_plans_exactly_the_tenants_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    fleet(dir.path(), "bronze", "Beta", "gold");
    let base = commit(&repo, "base");
    assert_eq!(
        tf(dir.path(), &["apply", "manifests", "--auto-approve"]).code,
        0
    );

    // Beta is renamed; Gamma's label moves it INTO the gold selector. Alpha is untouched.
    fleet(dir.path(), "gold", "Beta Renamed", "gold");
    commit(&repo, "change");
    let plan = json(
        &tf(
            dir.path(),
            &[
                "plan",
                "manifests",
                "--changed-since",
                &base,
                "--output",
                "json",
            ],
        )
        .stdout,
    );
    assert_eq!(
        plan["options"]["onlyTenants"],
        serde_json::json!(["b", "c"])
    );
    let changed: Vec<String> = addresses(&plan);
    assert!(
        changed
            .iter()
            .all(|a| !a.ends_with(".a") && !a.contains(".a.")),
        "{changed:?}"
    );
    assert!(changed.contains(&"msp_role.c.gold-desk.TenantAdmin".to_string()));
    assert!(changed.contains(&"tenant.b".to_string()));

    // Alpha's label moves it OUT of the selector: Alpha counts as changed, nothing else.
    let moved_out = commit_change(&repo, dir.path(), "silver");
    let plan = json(
        &tf(
            dir.path(),
            &[
                "plan",
                "manifests",
                "--changed-since",
                &moved_out.0,
                "--output",
                "json",
            ],
        )
        .stdout,
    );
    assert_eq!(plan["options"]["onlyTenants"], serde_json::json!(["a"]));
    let deletes = crate::support::addresses_with_op(&plan, "delete");
    assert_eq!(
        deletes,
        ["msp_role.a.gold-desk.TenantAdmin", "guest.a.gold-desk"]
    );
}

/// Changes Alpha's tier on top of the current commit; returns (base, head).
fn commit_change(repo: &git2::Repository, dir: &Path, a_tier: &str) -> (String, String) {
    let base = repo
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string();
    fleet(dir, "gold", "Beta Renamed", a_tier);
    let head = commit(repo, "alpha leaves gold");
    (base, head)
}

#[test]
fn a_saved_plan_is_refused_on_another_commit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    fleet(dir.path(), "bronze", "Beta", "gold");
    let first = commit(&repo, "base");
    let plan_file = dir.path().join("plan.tfp");
    let made = tf(
        dir.path(),
        &["plan", "manifests", "--out", plan_file.to_str().unwrap()],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let saved = json(&std::fs::read_to_string(&plan_file).unwrap());
    assert_eq!(saved["commit"], first.as_str());

    // main moved on (a comment only: the manifests mean the same).
    write_tree(dir.path(), &[("README.md", "notes\n")]);
    let second = commit(&repo, "docs");
    let refused = tf(
        dir.path(),
        &["apply", plan_file.to_str().unwrap(), "--auto-approve"],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains(&format!("the plan was made at commit {first}")),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains(&second), "{}", refused.stderr);

    // Planned from git (--ref), the plan reads its commit again wherever HEAD is.
    let made = tf(
        dir.path(),
        &[
            "plan",
            "manifests",
            "--ref",
            &first,
            "--out",
            plan_file.to_str().unwrap(),
        ],
    );
    assert_eq!(made.code, 0);
    let applied = tf(
        dir.path(),
        &["apply", plan_file.to_str().unwrap(), "--auto-approve"],
    );
    assert_eq!(applied.code, 0, "{}", applied.stderr);
}

#[test]
fn pull_request_markdown_fits_one_comment_and_says_what_it_left_out() {
    let manifests = tempfile::tempdir().unwrap();
    crate::support::write_fleet(manifests.path(), 1500);
    let state = tempfile::tempdir().unwrap();
    let run = run_in(
        state.path(),
        &[
            "plan",
            manifests.path().to_str().unwrap(),
            "--output",
            "markdown",
            "--offline",
            "--state",
            state.path().join("state.json").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.chars().count() <= 65_536,
        "{} characters",
        run.stdout.chars().count()
    );
    assert!(
        run.stdout.contains("tenant sections not shown"),
        "truncation is announced"
    );
    assert!(
        run.stdout.starts_with("### tenantform plan\n\n| create |"),
        "summary table first"
    );
    assert_eq!(
        run.stdout.matches("<details>").count(),
        run.stdout.matches("</details>").count(),
        "no section cut in half"
    );
}

#[test]
fn changed_since_reads_only_the_changed_tenants_from_graph() {
    // Four customers whose tenant ids match the sandbox's generated tenants.
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    let fleet = tenantform::synthetic::fleet(4);
    for f in &fleet {
        write_tree(dir.path(), &[(&format!("manifests/{}", f.path), &f.text)]);
    }
    let base = commit(&repo, "four customers");
    let second = dir.path().join("manifests/tenants/customer-00002.yaml");
    let text = std::fs::read_to_string(&second)
        .unwrap()
        .replace("Customer 2 Holdings\n", "Customer 2 Holdings Ltd\n");
    std::fs::write(&second, text).unwrap();
    commit(&repo, "rename customer 2");

    let sandbox = tenantform::sandbox::SandboxHandle::start(
        &tenantform::sandbox::Fixture::generated(4, 0),
        Default::default(),
    )
    .unwrap();
    let out = std::process::Command::new(crate::support::binary())
        .current_dir(dir.path())
        .args([
            "plan",
            "manifests",
            "--changed-since",
            &base,
            "--state",
            "state.json",
            "--output",
            "json",
        ])
        .envs(crate::support::sandbox_env(sandbox.base_url()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        plan["options"]["onlyTenants"],
        serde_json::json!(["customer-00002"])
    );
    let read: std::collections::BTreeSet<String> = sandbox
        .requests()
        .into_iter()
        .filter_map(|r| r.tenant)
        .collect();
    assert_eq!(
        read.into_iter().collect::<Vec<_>>(),
        [tenantform::synthetic::synthetic_guid(2)],
        "one tenant's reads"
    );
    let wire = sandbox
        .requests()
        .into_iter()
        .filter(|r| !r.in_batch)
        .count();
    assert_eq!(wire, 2, "its token and one $batch");
}
