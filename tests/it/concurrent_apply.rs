//! Two people applying two customers at once: an apply locks a tenant's partition only while
//! it applies that tenant, so disjoint tenants run side by side, an apply to the same tenant
//! waits (up to `--lock-timeout`) and fails naming the holder, and a tenant changed under an
//! apply is planned again (computed plan) or fails as stale (saved plan).

use std::path::Path;
use std::process::{Child, Command};

use crate::support::{Run, StandaloneSandbox, command, write_tree};

use crate::support::two_tenant_fleet as manifests;

fn apply_args<'a>(dir: &'a str, state: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["apply", "--auto-approve", "--state", state];
    args.extend_from_slice(extra);
    args.push(dir);
    args
}

fn run(sandbox: &StandaloneSandbox, cwd: &Path, args: &[&str]) -> Run {
    crate::support::run_against(sandbox, cwd, args, &[])
}

/// An apply of tenant `a` that pauses two seconds after each change, in the background.
fn slow_apply(sandbox: &StandaloneSandbox, cwd: &Path, dir: &str, state: &str) -> Child {
    crate::support::spawn_slow(
        sandbox,
        cwd,
        &apply_args(dir, state, &["--tenant", "a"]),
        2000,
    )
}

#[test]
fn applies_to_different_tenants_run_at_once_and_the_same_tenant_waits_for_its_holder() {
    let sandbox = StandaloneSandbox::start(2);
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana"]))]);
    let state_path = root.path().join("state.json");
    let (dir, state) = (tree.to_str().unwrap(), state_path.to_str().unwrap());
    let first = run(&sandbox, root.path(), &apply_args(dir, state, &[]));
    assert_eq!(first.code, 0, "{}", first.transcript());

    // A second engineer joins both customers; two people apply one customer each.
    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana", "erin"]))]);
    let mut slow = slow_apply(&sandbox, root.path(), dir, state);
    // Wait until the slow apply holds tenant a (its journal exists while it applies).
    let journal = root.path().join("state.d/tenants/a.json.journal");
    crate::support::wait_while_running(&mut slow, "the slow apply holds tenant a", || {
        journal.exists()
    });

    let other = run(
        &sandbox,
        root.path(),
        &apply_args(dir, state, &["--tenant", "b", "--lock-timeout", "0s"]),
    );
    assert_eq!(other.code, 0, "{}", other.transcript());
    assert!(other.stdout.contains("Apply complete"), "{}", other.stdout);
    assert!(
        slow.try_wait().unwrap().is_none(),
        "tenant b's apply had to wait for tenant a's: they should run at once"
    );

    let same = run(
        &sandbox,
        root.path(),
        &apply_args(dir, state, &["--tenant", "a", "--lock-timeout", "0s"]),
    );
    assert_eq!(same.code, 1, "{}", same.transcript());
    assert!(
        same.stderr.contains("locked") && same.stderr.contains("held by"),
        "the error names the holder:\n{}",
        same.stderr
    );
    assert!(
        same.stderr.contains("--tenant a"),
        "the holder's command is shown:\n{}",
        same.stderr
    );

    let status = slow.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(slow.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");

    // Both applies are recorded: nothing is left to do, and nothing was invited twice.
    let plan = run(
        &sandbox,
        root.path(),
        &["plan", "--detailed-exitcode", "--state", state, dir],
    );
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    let stored = crate::support::stored_state(&state_path);
    for tenant in ["a", "b"] {
        assert!(
            stored["objects"][format!("guest.{tenant}.erin")]["ids"]["objectId"].is_string(),
            "guest.{tenant}.erin is recorded"
        );
    }
}

/// Someone applies tenant b while a fleet-wide apply (one tenant at a time, `extra` picks a
/// computed or a saved plan) is still on tenant a: b must not be locked by it. Returns the
/// fleet-wide apply's output, with the sandbox and directory it ran in.
fn apply_b_while_a_fleet_wide_apply_is_on_a(
    slow_args: &dyn Fn(&StandaloneSandbox, &str, &str, &Path) -> Vec<String>,
) -> (std::process::Output, StandaloneSandbox, tempfile::TempDir) {
    let sandbox = StandaloneSandbox::start(2);
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana"]))]);
    let state_path = root.path().join("state.json");
    let (dir, state) = (tree.to_str().unwrap(), state_path.to_str().unwrap());
    let first = run(&sandbox, root.path(), &apply_args(dir, state, &[]));
    assert_eq!(first.code, 0, "{}", first.transcript());

    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana", "erin"]))]);
    let args = slow_args(&sandbox, dir, state, root.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The whole fleet, one tenant at a time (a, then b), two seconds per change.
    let mut slow = crate::support::spawn_slow(&sandbox, root.path(), &args, 2000);
    let journal = root.path().join("state.d/tenants/a.json.journal");
    crate::support::wait_while_running(&mut slow, "the slow apply holds tenant a", || {
        journal.exists()
    });
    let b = run(
        &sandbox,
        root.path(),
        &apply_args(dir, state, &["--tenant", "b", "--lock-timeout", "0s"]),
    );
    assert_eq!(
        b.code,
        0,
        "tenant b is not locked while the fleet-wide apply works on a:\n{}",
        b.transcript()
    );
    assert!(
        slow.try_wait().unwrap().is_none(),
        "the fleet-wide apply was still on tenant a"
    );
    let output = slow.wait_with_output().unwrap();

    // Both are recorded once: nothing to do, and erin was invited into b once.
    let plan = run(
        &sandbox,
        root.path(),
        &["plan", "--detailed-exitcode", "--state", state, dir],
    );
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    assert_eq!(sandbox.invitations(), 4, "dana and erin, once per tenant");
    (output, sandbox, root)
}

/// An apply holds a tenant's lock only while it applies that tenant. When a computed plan
/// reaches a tenant someone changed meanwhile, that tenant is planned again under its lock
/// (here: nothing left to do), so overlapping applies converge.
#[test]
fn an_apply_locks_a_tenant_only_while_applying_it_and_plans_again_one_changed_meanwhile() {
    let (output, _sandbox, _root) =
        apply_b_while_a_fleet_wide_apply_is_on_a(&|_, dir, state, _| {
            [
                "apply",
                "--auto-approve",
                "--parallelism",
                "1",
                "--state",
                state,
                dir,
            ]
            .map(String::from)
            .to_vec()
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("b changed while this apply waited for its lock; planning it again."),
        "{stderr}"
    );
    assert!(stdout.contains("Apply complete"), "{stdout}");
}

/// A saved plan is exactly what was reviewed: a tenant changed between its plan and its lock
/// fails as stale (exit 1), the others are applied.
#[test]
fn a_saved_plan_fails_a_tenant_changed_before_its_lock_and_applies_the_rest() {
    let (output, _sandbox, _root) =
        apply_b_while_a_fleet_wide_apply_is_on_a(&|sandbox, dir, state, root| {
            let saved = root.join("fleet.tfp");
            let saved = saved.to_str().unwrap();
            let out = command()
                .envs(sandbox.env())
                .current_dir(root)
                .args(["plan", "--out", saved, "--state", state, dir])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            ["apply", "--auto-approve", "--parallelism", "1", saved]
                .map(String::from)
                .to_vec()
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("b: changed since the plan: tenant b has changed since the plan was made"),
        "{stderr}"
    );
    assert!(stdout.contains("1 of 2 tenants done, 1 failed"), "{stdout}");
}

#[test]
fn a_saved_plan_stays_valid_when_another_tenant_is_applied_meanwhile() {
    let sandbox = StandaloneSandbox::start(2);
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana"]))]);
    let state_path = root.path().join("state.json");
    let plan_path = root.path().join("a.tfp");
    let (dir, state, saved) = (
        tree.to_str().unwrap(),
        state_path.to_str().unwrap(),
        plan_path.to_str().unwrap(),
    );
    assert_eq!(
        run(&sandbox, root.path(), &apply_args(dir, state, &[])).code,
        0
    );
    // New manifests for these guests, and a reviewed plan for tenant a saved from them.
    let save_plan_for_a = |guests: &[&str]| {
        write_tree(&tree, &[("fleet.yaml", &manifests(guests))]);
        let planned = run(
            &sandbox,
            root.path(),
            &[
                "plan", "--tenant", "a", "--out", saved, "--state", state, dir,
            ],
        );
        assert_eq!(planned.code, 0, "{}", planned.transcript());
    };
    save_plan_for_a(&["dana", "erin"]);
    // Someone applies tenant b before the reviewed plan for a is applied.
    let b = run(
        &sandbox,
        root.path(),
        &apply_args(dir, state, &["--tenant", "b"]),
    );
    assert_eq!(b.code, 0, "{}", b.transcript());
    let a = run(&sandbox, root.path(), &["apply", "--auto-approve", saved]);
    assert_eq!(a.code, 0, "{}", a.transcript());
    // But an apply to tenant a itself since makes a plan for it stale.
    save_plan_for_a(&["dana", "erin", "finn"]);
    let meanwhile = run(
        &sandbox,
        root.path(),
        &apply_args(dir, state, &["--tenant", "a"]),
    );
    assert_eq!(meanwhile.code, 0, "{}", meanwhile.transcript());
    let stale = run(&sandbox, root.path(), &["apply", "--auto-approve", saved]);
    assert_eq!(stale.code, 1, "{}", stale.transcript());
    assert!(
        stale
            .stderr
            .contains("tenant a has changed since the plan was made"),
        "{}",
        stale.stderr
    );
}

/// A fleet-wide rollout changes hundreds of partitions at once. Each partition's lock and
/// journal holds files open, so locking every one would run out of file descriptors (1,024 by
/// default on Linux): past a bound, an apply takes the whole-state lock instead. Run with a
/// limit of 128 open files, which a lock per partition would exceed many times over.
#[test]
fn a_fleet_wide_apply_stays_within_a_small_open_file_limit() {
    use std::os::unix::process::CommandExt;
    let manifests = tempfile::tempdir().unwrap();
    crate::support::write_fleet(manifests.path(), 300);
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("state.json");
    let apply = |limit: Option<u64>| {
        let mut cmd = Command::new(crate::support::binary());
        cmd.args([
            "apply",
            "--auto-approve",
            "--sandbox",
            "--replication-window",
            "0s",
        ])
        .arg("--state")
        .arg(&state)
        .arg(manifests.path())
        .current_dir(scratch.path());
        for var in crate::support::HERMETIC_VARS {
            cmd.env_remove(var);
        }
        if let Some(limit) = limit {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.output().unwrap()
    };
    let first = apply(None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Every tenant the fleet-wide engineer reaches gets a new MSP role: ~160 partitions.
    let people = manifests.path().join("people/fleet-engineers.yaml");
    let text = std::fs::read_to_string(&people).unwrap();
    std::fs::write(
        &people,
        text.replace(
            "mspRoles: [TenantViewer]",
            "mspRoles: [TenantViewer, TenantAdmin]",
        ),
    )
    .unwrap();
    let rollout = apply(Some(128));
    let stderr = String::from_utf8_lossy(&rollout.stderr);
    assert!(rollout.status.success(), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    let stdout = String::from_utf8_lossy(&rollout.stdout);
    let created: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Apply complete: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(created >= 150, "expected a fleet-wide change:\n{stdout}");
    // And nothing is left to do.
    let again = apply(None);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("No changes"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}
