//! Plan and apply through the real binary over real state files.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    assert_hermetic, binary, repo_root, run_in, tf, workspace, write_fleet, write_tree,
};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn state_file(dir: &Path) -> std::path::PathBuf {
    dir.join("state.json")
}

const BEFORE: &str = "tests/cases/plan/foggy-it-migration/before";

/// A temporary directory with copies of the manifests these tests name by their paths in the
/// repository (`examples/foggy-it`, ...): state, plans and the sandbox's directory are written
/// there, never into the repository.
fn workdir() -> tempfile::TempDir {
    workspace(&[
        "examples/foggy-it",
        "examples/msp-fleet",
        BEFORE,
        "tests/cases/validate/tf203-unknown-field",
        "tests/cases/validate/many-problems-at-once",
    ])
}

#[test]
fn foggy_it_migration_plans_updates_not_delete_and_create() {
    let dir = workdir();
    let first = tf(
        dir.path(),
        &["apply", "--offline", BEFORE, "--auto-approve"],
    );
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert!(first.stdout.contains("6 created"), "{}", first.stdout);

    let plan = tf(
        dir.path(),
        &["plan", "examples/foggy-it", "--sandbox", "--output", "json"],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan = json(&plan.stdout);
    let ops: Vec<(String, String, Option<String>)> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["op"].as_str().unwrap().to_string(),
                a["address"].as_str().unwrap().to_string(),
                a["movedFrom"].as_str().map(str::to_string),
            )
        })
        .collect();
    let expect = |op: &str, address: &str, from: Option<&str>| {
        (
            op.to_string(),
            address.to_string(),
            from.map(str::to_string),
        )
    };
    assert_eq!(
        ops,
        [
            expect("update", "tenant.foggy-it", Some("tenant.foggy-boston")),
            expect("update", "organization.foggy-boston", None),
            expect("update", "organization.foggy-burlington", None),
            expect("update", "organization.foggy-waltham", None),
            // The catalog first (its deletes too), then tenant by tenant.
            expect("delete", "tenant.foggy-burlington", None),
            expect("delete", "tenant.foggy-waltham", None),
            expect("create", "guest.foggy-it.dana-support", None),
            expect(
                "create",
                "directory_role.foggy-it.dana-support.729827e3-9c14-49f7-bb1b-9608f156bbb8.root",
                None
            ),
            expect("create", "msp_role.foggy-it.dana-support.TenantAdmin", None),
        ]
    );
    assert!(
        !ops.iter().any(|(op, a, _)| op == "create"
            && (a.starts_with("tenant.") || a.starts_with("organization."))),
        "no tenant or organization is re-created"
    );
    let org = &plan["actions"][2];
    assert_eq!(
        org["changes"],
        serde_json::json!([{"path": "tenant", "before": "foggy-burlington", "after": "foggy-it"}])
    );

    // Apply it all: the tenant keeps the record id the Boston tenant had.
    let before_id = json(
        &tf(
            dir.path(),
            &["state", "show", "tenant.foggy-boston", "--output", "json"],
        )
        .stdout,
    )["object"]["ids"]["record"]
        .clone();
    let applied = tf(
        dir.path(),
        &[
            "apply",
            "examples/foggy-it",
            "--sandbox",
            "--auto-approve",
            "--allow-delete",
        ],
    );
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let after = json(
        &tf(
            dir.path(),
            &["state", "show", "tenant.foggy-it", "--output", "json"],
        )
        .stdout,
    );
    assert_eq!(after["object"]["ids"]["record"], before_id);
    assert_eq!(
        after["object"]["attributes"]["displayName"],
        "Foggy IT Services"
    );

    let again = tf(
        dir.path(),
        &[
            "plan",
            "examples/foggy-it",
            "--sandbox",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(again.code, 0, "converged: {}", again.stdout);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);
}

#[test]
fn migration_plan_text_and_markdown_render_as_reviewed() {
    let dir = workdir();
    assert_eq!(
        tf(
            dir.path(),
            &["apply", "--offline", BEFORE, "--auto-approve"]
        )
        .code,
        0
    );
    let text = tf(
        dir.path(),
        &["--color", "never", "plan", "examples/foggy-it", "--sandbox"],
    );
    let markdown = tf(
        dir.path(),
        &[
            "plan",
            "examples/foggy-it",
            "--sandbox",
            "--output",
            "markdown",
        ],
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("tests/cases/plan/foggy-it-migration"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    // Each plan gets a new id: the snapshots show where it goes, not which it was.
    let without_id = |out: &str| {
        out.lines()
            .map(|l| match l.strip_prefix("Plan id: ") {
                Some(id) if id.len() == 12 => "Plan id: [id]",
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    settings.bind(|| {
        insta::assert_snapshot!("plan-text", without_id(&text.stdout));
        insta::assert_snapshot!("plan-markdown", without_id(&markdown.stdout));
    });
}

#[test]
fn detailed_exit_codes() {
    let dir = workdir();
    let changes = tf(
        dir.path(),
        &[
            "plan",
            "examples/foggy-it",
            "--sandbox",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(changes.code, 2, "{}", changes.stderr);
    let without_flag = tf(dir.path(), &["plan", "examples/foggy-it", "--sandbox"]);
    assert_eq!(without_flag.code, 0);
    assert_eq!(
        tf(
            dir.path(),
            &["apply", "examples/foggy-it", "--sandbox", "--auto-approve"]
        )
        .code,
        0
    );
    assert_eq!(
        tf(
            dir.path(),
            &[
                "plan",
                "examples/foggy-it",
                "--sandbox",
                "--detailed-exitcode"
            ]
        )
        .code,
        0
    );
    let invalid = tf(
        dir.path(),
        &[
            "plan",
            "--offline",
            "tests/cases/validate/tf203-unknown-field",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(invalid.code, 1);
    assert!(invalid.stderr.contains("[TF203]"));
}

#[test]
fn apply_refuses_without_a_terminal_or_approval_and_changes_nothing() {
    let dir = workdir();
    let run = tf(dir.path(), &["apply", "examples/foggy-it", "--sandbox"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    assert!(!state_file(dir.path()).exists(), "no state written");
}

#[test]
fn invalid_manifests_change_nothing() {
    let dir = workdir();
    assert_eq!(
        tf(
            dir.path(),
            &["apply", "examples/foggy-it", "--sandbox", "--auto-approve"]
        )
        .code,
        0
    );
    let before = std::fs::read(state_file(dir.path())).unwrap();
    let run = tf(
        dir.path(),
        &[
            "apply",
            "--offline",
            "tests/cases/validate/many-problems-at-once",
            "--auto-approve",
            "--allow-delete",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("nothing was planned or changed"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(state_file(dir.path())).unwrap(), before);
}

#[test]
fn a_saved_plan_is_written_whole_or_not_at_all() {
    // The plan file is streamed to a temporary file and renamed only when complete: a run that
    // fails part-way (here a tenant's state partition is unreadable) leaves the previous plan
    // file as it was and no temporary file behind.
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    write_tree(
        manifests.path(),
        &[
            ("a.yaml", "kind: Tenant\nname: acme\ndisplayName: Acme\n"),
            ("b.yaml", "kind: Tenant\nname: birch\ndisplayName: Birch\n"),
        ],
    );
    let m = manifests.path().to_str().unwrap();
    let applied = tf(dir.path(), &["apply", "--offline", "--auto-approve", m]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let plan_file = dir.path().join("plan.tfp");
    let p = plan_file.to_str().unwrap();
    let first = tf(dir.path(), &["plan", "--offline", m, "--out", p]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["kind"], "tenantform-plan");
    assert_eq!(saved["summary"]["noOp"], 2, "{saved}");
    assert_eq!(saved["actions"].as_array().unwrap().len(), 2);
    let before = std::fs::read(&plan_file).unwrap();

    let partitions = dir.path().join("state.d/tenants");
    std::fs::create_dir_all(&partitions).unwrap();
    std::fs::write(partitions.join("birch.json"), "{ not json").unwrap();
    let failed = tf(dir.path(), &["plan", "--offline", m, "--out", p]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains("birch.json"), "{}", failed.stderr);
    assert_eq!(
        std::fs::read(&plan_file).unwrap(),
        before,
        "the old plan is untouched"
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn saved_plans_apply_exactly_and_refuse_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let tenant = "kind: Tenant\nname: acme\ndisplayName: Acme\n";
    write_tree(manifests.path(), &[("t.yaml", tenant)]);
    let m = manifests.path().to_str().unwrap();
    let plan_file = dir.path().join("plan.tfp");
    let p = plan_file.to_str().unwrap();

    assert_eq!(
        tf(dir.path(), &["plan", "--offline", m, "--out", p]).code,
        0
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&plan_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Manifests changed since: refused.
    write_tree(
        manifests.path(),
        &[(
            "t.yaml",
            "kind: Tenant\nname: acme\ndisplayName: Acme Corp\n",
        )],
    );
    let stale = tf(dir.path(), &["apply", p, "--auto-approve"]);
    assert_eq!(stale.code, 1);
    assert!(
        stale.stderr.contains("manifests have changed"),
        "{}",
        stale.stderr
    );
    assert!(!state_file(dir.path()).exists());

    // Fresh plan applies exactly.
    assert_eq!(
        tf(dir.path(), &["plan", "--offline", m, "--out", p]).code,
        0
    );
    let applied = tf(dir.path(), &["apply", p, "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(applied.stdout.contains("1 created"));
    // Applying the same plan again: state moved on since.
    let again = tf(dir.path(), &["apply", p, "--auto-approve"]);
    assert_eq!(again.code, 1);
    assert!(
        again
            .stderr
            .contains("state has changed since the plan was made"),
        "{}",
        again.stderr
    );
    // Planning flags belong to the plan.
    let flag = tf(
        dir.path(),
        &["apply", p, "--auto-approve", "--allow-delete"],
    );
    assert_eq!(flag.code, 1);
    assert!(flag.stderr.contains("decided when the plan is made"));
}

#[test]
fn deletes_are_blocked_without_allow_delete() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let m = manifests.path().to_str().unwrap();
    write_tree(
        manifests.path(),
        &[(
            "a.yaml",
            "kind: Tenant\nname: a\n---\nkind: Tenant\nname: b\n",
        )],
    );
    assert_eq!(
        tf(dir.path(), &["apply", "--offline", m, "--auto-approve"]).code,
        0
    );
    write_tree(manifests.path(), &[("a.yaml", "kind: Tenant\nname: a\n")]);
    let blocked = tf(
        dir.path(),
        &[
            "--color",
            "never",
            "apply",
            "--offline",
            m,
            "--auto-approve",
        ],
    );
    assert_eq!(blocked.code, 0);
    assert!(
        blocked
            .stdout
            .contains("# blocked: deletes need --allow-delete"),
        "{}",
        blocked.stdout
    );
    assert!(
        blocked.stdout.contains("1 to delete (1 blocked)"),
        "{}",
        blocked.stdout
    );
    assert!(
        json(&tf(dir.path(), &["state", "list", "--output", "json"]).stdout)
            .to_string()
            .contains("tenant.b")
    );
    let allowed = tf(
        dir.path(),
        &["apply", "--offline", m, "--auto-approve", "--allow-delete"],
    );
    assert!(allowed.stdout.contains("1 deleted"), "{}", allowed.stdout);
}

#[test]
fn remapping_a_microsoft_tenant_is_a_loud_update() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let m = manifests.path().to_str().unwrap();
    let tenant = |id: &str| format!("kind: Tenant\nname: acme\nmicrosoftTenantId: {id}\n");
    write_tree(
        manifests.path(),
        &[("a.yaml", &tenant("3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b"))],
    );
    assert_eq!(
        tf(dir.path(), &["apply", "--offline", m, "--auto-approve"]).code,
        0
    );
    write_tree(
        manifests.path(),
        &[("a.yaml", &tenant("7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"))],
    );
    let plan = tf(dir.path(), &["--color", "never", "plan", "--offline", m]);
    assert!(
        plan.stdout
            .contains("! warning: tenant.acme is remapped from Microsoft tenant 3f2a9c4e"),
        "{}",
        plan.stdout
    );
    let json_plan = json(&tf(dir.path(), &["plan", "--offline", m, "--output", "json"]).stdout);
    assert_eq!(
        json_plan["actions"][0]["warnings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn state_commands_list_show_move_and_forget() {
    let dir = workdir();
    assert_eq!(
        tf(
            dir.path(),
            &["apply", "examples/foggy-it", "--sandbox", "--auto-approve"]
        )
        .code,
        0
    );
    let list = tf(dir.path(), &["state", "list"]);
    assert_eq!(
        list.stdout,
        "directory_role.foggy-it.dana-support.729827e3-9c14-49f7-bb1b-9608f156bbb8.root\n\
         guest.foggy-it.dana-support\n\
         msp_role.foggy-it.dana-support.TenantAdmin\n\
         organization.foggy-boston\n\
         organization.foggy-burlington\n\
         organization.foggy-waltham\n\
         tenant.foggy-it\n\
         user_sync.foggy-it\n"
    );
    let show = tf(dir.path(), &["state", "show", "tenant.foggy-it"]);
    assert!(
        show.stdout
            .contains("displayName       = \"Foggy IT Services\""),
        "{}",
        show.stdout
    );

    // mv renames without re-creating: the tenant's roles and organizations follow.
    let mv = tf(
        dir.path(),
        &["state", "mv", "tenant.foggy-it", "tenant.foggy"],
    );
    assert_eq!(mv.code, 0, "{}", mv.stderr);
    let list = tf(dir.path(), &["state", "list"]).stdout;
    assert!(
        list.contains("msp_role.foggy.dana-support.TenantAdmin") && list.contains("tenant.foggy\n"),
        "{list}"
    );
    let org = json(
        &tf(
            dir.path(),
            &[
                "state",
                "show",
                "organization.foggy-boston",
                "--output",
                "json",
            ],
        )
        .stdout,
    );
    assert_eq!(org["object"]["attributes"]["tenant"], "foggy");
    assert_eq!(
        tf(
            dir.path(),
            &["state", "mv", "tenant.foggy", "tenant.foggy-it"]
        )
        .code,
        0
    );
    assert_eq!(
        tf(
            dir.path(),
            &[
                "plan",
                "examples/foggy-it",
                "--sandbox",
                "--detailed-exitcode"
            ]
        )
        .code,
        0,
        "moved back: no changes"
    );

    let missing = tf(dir.path(), &["state", "mv", "tenant.nope", "tenant.x"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("no object at address tenant.nope"));

    // rm forgets: the next plan wants to create it again.
    assert_eq!(
        tf(dir.path(), &["state", "rm", "organization.foggy-waltham"]).code,
        0
    );
    let plan = json(
        &tf(
            dir.path(),
            &["plan", "examples/foggy-it", "--sandbox", "--output", "json"],
        )
        .stdout,
    );
    assert_eq!(plan["summary"]["create"], 1);

    let unlock = tf(dir.path(), &["state", "unlock", "0000"]);
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    assert!(unlock.stdout.contains("not locked"));
}

#[test]
fn state_commands_take_the_manifest_directory_like_plan_and_apply() {
    let ws = workspace(&["examples/foggy-it"]);
    let m = "examples/foggy-it";
    let run = |args: &[&str]| run_in(ws.path(), args, None);
    let applied = run(&["apply", "--sandbox", "--auto-approve", m]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);

    // `state list PATH`, `-C PATH` after or before the subcommand, and the file itself agree.
    let listed = run(&["state", "list", m]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(
        listed.stdout.contains("guest.foggy-it.dana-support\n")
            && listed.stdout.contains("tenant.foggy-it\n"),
        "{}",
        listed.stdout
    );
    assert!(listed.stderr.is_empty(), "{}", listed.stderr);
    let file = ws.path().join(m).join(".tenantform/state.json");
    for other in [
        &["state", "list", "-C", m][..],
        &["state", "-C", m, "list"][..],
        &["state", "--manifests", m, "list"][..],
        &["state", "list", "examples/foggy-it/tenant.yaml"][..],
        &["state", "list", "--state", file.to_str().unwrap()][..],
    ] {
        assert_eq!(run(other).stdout, listed.stdout, "{other:?}");
    }
    let inside = run_in(&ws.path().join(m), &["state", "list"], None);
    assert_eq!(
        inside.stdout, listed.stdout,
        "no path needed beside the state"
    );

    let show = run(&[
        "state",
        "show",
        "-C",
        m,
        "tenant.foggy-it",
        "--output",
        "json",
    ]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert_eq!(
        json(&show.stdout)["object"]["attributes"]["displayName"],
        "Foggy IT Services"
    );
    let mv = run(&["state", "mv", "-C", m, "tenant.foggy-it", "tenant.foggy"]);
    assert_eq!(mv.code, 0, "{}", mv.stderr);
    assert!(run(&["state", "list", m]).stdout.contains("tenant.foggy\n"));
    assert_eq!(
        run(&["state", "-C", m, "mv", "tenant.foggy", "tenant.foggy-it"]).code,
        0
    );
    let plan = run(&["plan", "--sandbox", "--detailed-exitcode", m]);
    assert_eq!(plan.code, 0, "moved back: no changes\n{}", plan.stdout);
    let rm = run(&["state", "rm", "-C", m, "organization.foggy-waltham"]);
    assert_eq!(rm.code, 0, "{}", rm.stderr);
    let plan = json(&run(&["plan", "--sandbox", "--output", "json", m]).stdout);
    assert_eq!(plan["summary"]["create"], 1, "forgotten: created again");
    let unlock = run(&["state", "unlock", "-C", m, "0000"]);
    assert!(unlock.stdout.contains("not locked"), "{}", unlock.stdout);

    // Mistakes say what happened and how to name the state meant.
    let nowhere = run(&["state", "list"]);
    assert_eq!(nowhere.code, 0);
    assert!(nowhere.stdout.is_empty());
    assert!(
        nowhere
            .stderr
            .contains("no state at ./.tenantform/state.json: nothing has been applied there yet")
            && nowhere.stderr.contains("`tenantform state list PATH`"),
        "{}",
        nowhere.stderr
    );
    let show_nothing = run(&["state", "show", "tenant.foggy-it"]);
    assert_eq!(show_nothing.code, 1);
    assert!(
        show_nothing.stderr.contains("no state at"),
        "{}",
        show_nothing.stderr
    );
    let missing = run(&["state", "list", "no/such/dir"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("manifest path no/such/dir does not exist"),
        "{}",
        missing.stderr
    );
    let twice = run(&["state", "list", m, "-C", "."]);
    assert_eq!(twice.code, 1);
    assert!(twice.stderr.contains("give one"), "{}", twice.stderr);
    // rm where nothing was applied is refused and leaves no lock or state behind.
    std::fs::create_dir(ws.path().join("empty")).unwrap();
    let rm_nothing = run(&["state", "rm", "-C", "empty", "tenant.foggy-it"]);
    assert_eq!(rm_nothing.code, 1);
    assert!(
        rm_nothing
            .stderr
            .contains("no state at empty/.tenantform/state.json")
    );
    assert!(!ws.path().join("empty/.tenantform").exists());
}

#[test]
fn access_lists_who_can_switch_into_what() {
    let dir = workdir();
    assert_eq!(
        tf(
            dir.path(),
            &["apply", "examples/msp-fleet", "--sandbox", "--auto-approve"]
        )
        .code,
        0
    );
    let user = tf(
        dir.path(),
        &[
            "access",
            "examples/msp-fleet",
            "--user",
            "ALICE.nguyen@contoso-msp.example",
            "--output",
            "json",
        ],
    );
    let grants = json(&user.stdout);
    let tenants: Vec<&str> = grants
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants.len(), 13, "{tenants:?}");
    assert!(tenants.contains(&"alder-dental") && !tenants.contains(&"granite-cpa"));
    assert!(
        grants
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["role"] == "TenantAdmin")
    );

    let tenant = tf(
        dir.path(),
        &[
            "access",
            "examples/msp-fleet",
            "--tenant",
            "northwind-retail",
        ],
    );
    assert_eq!(
        tenant.stdout,
        "TENANT            NAME              WHO                               ROLE\n\
         northwind-retail  Northwind Retail  alice.nguyen@contoso-msp.example  TenantAdmin\n\
         northwind-retail  Northwind Retail  erin.walsh@contoso-msp.example    TenantAdmin\n"
    );
    let needs_one = tf(dir.path(), &["access", "examples/msp-fleet"]);
    assert_eq!(needs_one.code, 1);
}

/// Waits until `predicate` holds or `timeout` passes.
fn wait_for(timeout: Duration, mut predicate: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if predicate() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Whether an apply holds the state's lock (the lock file names its holder while held).
fn lock_held(dir: &Path) -> bool {
    std::fs::metadata(dir.join("state.json.lock")).is_ok_and(|m| m.len() > 0)
}

/// A killed apply of MSP-side records only, killed while it makes the tenant and
/// organization records: what it held back dies with it (nothing in Entra depended on it),
/// nothing half-written is left behind, and the next apply makes each change once.
#[test]
fn a_killed_offline_apply_is_made_again_once_and_converges() {
    let manifests = tempfile::tempdir().unwrap();
    write_fleet(manifests.path(), 6);
    let dir = tempfile::tempdir().unwrap();
    let state = state_file(dir.path());
    let args = [
        "apply",
        "--auto-approve",
        "--offline",
        "--state",
        state.to_str().unwrap(),
    ];
    assert_hermetic(dir.path(), &args);
    let mut child = Command::new(binary())
        .current_dir(dir.path())
        .args(args)
        .arg(manifests.path())
        .env("TENANTFORM_TEST_APPLY_STEP_DELAY_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL: no cleanup) once it holds the lock: at 100 ms a record, the records
    // (more than 10) are still being made 300 ms later.
    assert!(
        wait_for(Duration::from_secs(20), || lock_held(dir.path())),
        "apply started"
    );
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!state.exists(), "the state file is only written at the end");
    assert!(
        !dir.path().join("state.json.journal").exists(),
        "records are journaled once made, before the tenants are applied"
    );

    // Nothing to recover: the next plan is the whole plan again, and apply makes it once.
    let plan = tf(
        dir.path(),
        &[
            "plan",
            "--offline",
            manifests.path().to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert!(!plan.stderr.contains("recovered"), "{}", plan.stderr);
    let plan = json(&plan.stdout);
    let total = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["blocked"].is_null())
        .count();
    assert_eq!(plan["summary"]["noOp"].as_u64().unwrap(), 0);
    let rerun = tf(
        dir.path(),
        &[
            "apply",
            "--offline",
            manifests.path().to_str().unwrap(),
            "--auto-approve",
        ],
    );
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert!(
        rerun.stdout.contains(&format!("{total} created")),
        "{}",
        rerun.stdout
    );

    let converged = tf(
        dir.path(),
        &[
            "plan",
            "--offline",
            manifests.path().to_str().unwrap(),
            "--detailed-exitcode",
        ],
    );
    assert_eq!(converged.code, 0, "{}", converged.stdout);
    // Same objects as an apply that was never interrupted, each once.
    let clean = tempfile::tempdir().unwrap();
    assert_eq!(
        tf(
            clean.path(),
            &[
                "apply",
                "--offline",
                manifests.path().to_str().unwrap(),
                "--auto-approve"
            ]
        )
        .code,
        0
    );
    let addresses = |d: &Path| tf(d, &["state", "list"]).stdout;
    assert_eq!(addresses(dir.path()), addresses(clean.path()));
    let state: serde_json::Value = crate::support::stored_state(&state);
    let mut records: Vec<&str> = state["objects"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|o| o["ids"]["record"].as_str())
        .collect();
    let n = records.len();
    records.sort();
    records.dedup();
    assert_eq!(records.len(), n, "no record created twice");
}

#[test]
fn two_applies_at_once_one_waits_or_fails_clearly() {
    let manifests = tempfile::tempdir().unwrap();
    write_fleet(manifests.path(), 2);
    let m = manifests.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = state_file(dir.path());
    let args = [
        "apply",
        "--auto-approve",
        "--offline",
        "--state",
        state.to_str().unwrap(),
        m,
    ];
    assert_hermetic(dir.path(), &args);
    let mut first = Command::new(binary())
        .current_dir(dir.path())
        .args(args)
        // Slow enough (8 changes, about 12 s) that the second apply reaches the lock while
        // the first holds it, even on a loaded machine: at 40 ms (and 300 ms) a step the first
        // could finish while the second was still starting and planning, which then rightly
        // found nothing to do.
        .env("TENANTFORM_TEST_APPLY_STEP_DELAY_MS", "1500")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || lock_held(dir.path())));
    let blocked = tf(dir.path(), &["apply", "--offline", m, "--auto-approve"]);
    assert_eq!(blocked.code, 1);
    assert!(
        blocked.stderr.contains("state is locked: lock"),
        "{}",
        blocked.stderr
    );
    assert!(
        blocked.stderr.contains("tenantform apply")
            || blocked.stderr.contains("apply --auto-approve"),
        "{}",
        blocked.stderr
    );
    // With a timeout it waits for the first to finish, then finds nothing left to do.
    let waited = tf(
        dir.path(),
        &[
            "apply",
            "--offline",
            m,
            "--auto-approve",
            "--lock-timeout",
            "60s",
        ],
    );
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    assert!(waited.stdout.starts_with("No changes"), "{}", waited.stdout);
    assert!(first.wait().unwrap().success());
}

#[test]
fn corrupt_state_stops_plan_and_apply_and_is_not_overwritten() {
    let dir = workdir();
    std::fs::write(state_file(dir.path()), "{ not json").unwrap();
    for args in [
        &["plan", "examples/foggy-it", "--sandbox"][..],
        &["apply", "examples/foggy-it", "--sandbox", "--auto-approve"][..],
    ] {
        let run = tf(dir.path(), args);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("is corrupt"), "{}", run.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(state_file(dir.path())).unwrap(),
        "{ not json"
    );
}

#[test]
fn committed_plan_schema_is_current_and_plans_conform() {
    let printed = crate::support::run(&["schema", "plan"]);
    let path = repo_root().join(tenantform::schema::PLAN_SCHEMA_PATH);
    if std::env::var_os("TENANTFORM_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &printed.stdout).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        printed.stdout,
        "{} is stale: run `TENANTFORM_UPDATE_SCHEMAS=1 cargo test schema` and commit it",
        path.display()
    );
    let validator = jsonschema::validator_for(&json(&printed.stdout)).unwrap();
    let dir = workdir();
    assert_eq!(
        tf(
            dir.path(),
            &["apply", "--offline", BEFORE, "--auto-approve"]
        )
        .code,
        0
    );
    let plan = json(
        &tf(
            dir.path(),
            &["plan", "examples/foggy-it", "--sandbox", "--output", "json"],
        )
        .stdout,
    );
    let errors: Vec<String> = validator
        .iter_errors(&plan)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Runs `tenantform ARGS` in `dir` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_terminal(dir: &Path, args: &str, answer: &str) -> String {
    assert_hermetic(dir, &args.split(' ').collect::<Vec<_>>());
    let command = format!("{} --color never {args}", binary().display());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux `script` provides a terminal");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn on_a_terminal_apply_asks_and_only_yes_applies() {
    let dir = workdir();
    let state = state_file(dir.path());
    let args = format!(
        "apply examples/foggy-it --sandbox --state {}",
        state.display()
    );
    let declined = on_terminal(dir.path(), &args, "no\n");
    assert!(
        declined.contains("Only 'yes' will be accepted"),
        "{declined}"
    );
    assert!(declined.contains("Apply cancelled"), "{declined}");
    assert!(!state.exists());
    let accepted = on_terminal(dir.path(), &args, "yes\n");
    assert!(accepted.contains("Apply complete: 7 created"), "{accepted}");
    assert!(state.exists());
}

#[test]
fn tenant_and_selector_narrow_plan_and_apply_to_chosen_customers() {
    let manifests = tempfile::tempdir().unwrap();
    write_fleet(manifests.path(), 3);
    let m = manifests.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tenants_of = |run: &crate::support::Run| -> std::collections::BTreeSet<String> {
        json(&run.stdout)["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["tenant"].as_str().unwrap().to_string())
            .collect()
    };
    let one = tf(
        dir.path(),
        &[
            "plan",
            "--offline",
            m,
            "--tenant",
            "customer-00001",
            "-o",
            "json",
        ],
    );
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert_eq!(
        tenants_of(&one).into_iter().collect::<Vec<_>>(),
        ["customer-00001"]
    );
    // customer 0 is gold, 1 silver, 2 bronze (synthetic tiers rotate).
    let gold_or_bronze = tf(
        dir.path(),
        &[
            "plan",
            "--offline",
            m,
            "--selector",
            "tier in (gold, bronze)",
            "-o",
            "json",
        ],
    );
    assert_eq!(
        tenants_of(&gold_or_bronze).into_iter().collect::<Vec<_>>(),
        ["customer-00000", "customer-00002"]
    );
    let typo = tf(
        dir.path(),
        &["plan", "--offline", m, "--tenant", "customer-0001"],
    );
    assert_eq!(typo.code, 1);
    assert!(
        typo.stderr.contains("no tenant of that name")
            && typo.stderr.contains("did you mean `customer-00001`"),
        "{}",
        typo.stderr
    );
    let bad = tf(
        dir.path(),
        &["plan", "--offline", m, "--selector", "tier in gold"],
    );
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    // Apply one customer; the others are untouched and still to do.
    let applied = tf(
        dir.path(),
        &[
            "apply",
            "--offline",
            m,
            "--tenant",
            "customer-00002",
            "--auto-approve",
        ],
    );
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let listed = tf(dir.path(), &["state", "list"]).stdout;
    assert!(listed.contains("tenant.customer-00002"), "{listed}");
    assert!(!listed.contains("tenant.customer-00000"), "{listed}");
    let rest = tf(dir.path(), &["plan", "--offline", m, "-o", "json"]);
    assert_eq!(
        tenants_of(&rest)
            .into_iter()
            .filter(|t| {
                json(&rest.stdout)["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| {
                        a["tenant"] == t.as_str() && a["op"] == "create" && a["blocked"].is_null()
                    })
            })
            .collect::<Vec<_>>(),
        ["customer-00000", "customer-00001"]
    );
}

/// `--shard K/N` splits the selected tenants among N CI jobs: the shards' plans cover every
/// tenant exactly once, compose with `--selector`, match the documented hash (so another
/// tool can tell which job owns a tenant), and applying every shard leaves nothing to do.
#[test]
fn shards_split_the_fleet_among_ci_jobs_without_overlap_or_gap() {
    let manifests = tempfile::tempdir().unwrap();
    write_fleet(manifests.path(), 24);
    let m = manifests.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tenants_of = |stdout: &str| -> std::collections::BTreeSet<String> {
        json(stdout)["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tenant"].as_str().unwrap().to_string())
            .collect()
    };
    let all = tf(dir.path(), &["plan", "--offline", m, "-o", "json"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let all = tenants_of(&all.stdout);
    assert_eq!(all.len(), 24);
    let mut seen = std::collections::BTreeSet::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let run = tf(
            dir.path(),
            &["plan", "--offline", m, "--shard", &shard, "-o", "json"],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let mine = tenants_of(&run.stdout);
        assert!(!mine.is_empty() && mine.len() < 24, "{shard}: {mine:?}");
        for t in &mine {
            assert_eq!(tenantform::ops::Shard::of(t, 3), k, "{t} in shard {shard}");
            assert!(seen.insert(t.clone()), "{t} is in two shards");
        }
    }
    assert_eq!(seen, all, "every tenant is in some shard");

    // With a selector: the shard of the gold tenants only.
    let gold = tf(
        dir.path(),
        &[
            "plan",
            "--offline",
            m,
            "--selector",
            "tier=gold",
            "--shard",
            "1/2",
            "-o",
            "json",
        ],
    );
    assert_eq!(gold.code, 0, "{}", gold.stderr);
    let gold = tenants_of(&gold.stdout);
    assert!(!gold.is_empty());
    for t in &gold {
        let i: usize = t.trim_start_matches("customer-").parse().unwrap();
        assert_eq!(i % 3, 0, "{t} is gold (synthetic tiers rotate)");
        assert_eq!(tenantform::ops::Shard::of(t, 2), 1);
    }

    // Every shard applied (one job each): nothing left to do.
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let applied = tf(
            dir.path(),
            &["apply", "--offline", m, "--shard", &shard, "--auto-approve"],
        );
        assert_eq!(applied.code, 0, "{shard}: {}", applied.stderr);
    }
    let rest = tf(dir.path(), &["plan", "--offline", "--detailed-exitcode", m]);
    assert_eq!(rest.code, 0, "{}", rest.stdout);

    for bad in ["0/3", "4/3", "3", "x/y"] {
        let run = tf(dir.path(), &["plan", "--offline", m, "--shard", bad]);
        assert_eq!(run.code, 1, "{bad}: {}", run.stderr);
        assert!(
            run.stderr.contains("is not a shard: write K/N"),
            "{}",
            run.stderr
        );
    }
}

/// A catalog larger than one planning group (256 tenants): a rename into another group, an
/// organization moved across groups, a tenant and its organization removed, one added. The plan
/// says exactly that (deletes last, organizations first), the apply converges, and the renamed
/// tenant keeps its record.
#[test]
fn a_catalog_of_several_groups_plans_and_applies_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let catalog = |edit: &dyn Fn(usize) -> Option<String>| {
        let mut text = String::new();
        for i in 0..600 {
            let doc = edit(i).unwrap_or_else(|| {
                format!(
                    "kind: Tenant\nname: t{i:03}\n---\nkind: Organization\nname: o{i:03}\ntenant: t{i:03}\n---\n"
                )
            });
            text.push_str(&doc);
        }
        text
    };
    write_tree(manifests.path(), &[("fleet.yaml", &catalog(&|_| None))]);
    let m = manifests.path().to_str().unwrap();
    let applied = tf(dir.path(), &["apply", "--offline", "--auto-approve", m]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let again = tf(dir.path(), &["plan", "--offline", "--detailed-exitcode", m]);
    assert_eq!(again.code, 0, "no changes:\n{}", again.stdout);
    let record = |address: &str| {
        crate::support::stored_state(&state_file(dir.path()))["objects"][address]["ids"].clone()
    };
    let t550 = record("tenant.t550");
    assert!(t550.is_object(), "{t550}");

    let edited = catalog(&|i| {
        match i {
        10 => Some("kind: Tenant\nname: t010\n---\nkind: Organization\nname: o010\ntenant: t500\n---\n".into()),
        300 => Some(String::new()),
        550 => Some("kind: Tenant\nname: u550\nformerNames: [t550]\n---\nkind: Organization\nname: o550\ntenant: u550\n---\n".into()),
        599 => Some("kind: Tenant\nname: t599\n---\nkind: Organization\nname: o599\ntenant: t599\n---\nkind: Tenant\nname: t600\n---\n".into()),
        _ => None,
    }
    });
    write_tree(manifests.path(), &[("fleet.yaml", &edited)]);
    let planned = tf(
        dir.path(),
        &["plan", "--offline", "--allow-delete", "--output", "json", m],
    );
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let plan = json(&planned.stdout);
    let changes: Vec<(&str, &str)> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] != "no-op")
        .map(|a| (a["address"].as_str().unwrap(), a["op"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [
            ("organization.o010", "update"),
            ("tenant.t600", "create"),
            ("tenant.u550", "update"),
            ("organization.o550", "update"),
            ("organization.o300", "delete"),
            ("tenant.t300", "delete"),
        ],
        "{}",
        planned.stdout
    );
    let applied = tf(
        dir.path(),
        &["apply", "--offline", "--allow-delete", "--auto-approve", m],
    );
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let again = tf(dir.path(), &["plan", "--offline", "--detailed-exitcode", m]);
    assert_eq!(again.code, 0, "converged:\n{}", again.stdout);
    assert_eq!(record("tenant.u550"), t550, "a rename keeps the record");
    assert!(record("tenant.t300").is_null());
}
