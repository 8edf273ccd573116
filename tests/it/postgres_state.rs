//! State in PostgreSQL (`--state postgres://...`), end to end through the binary: the same
//! plan and apply as with a state file, passwords never shown, and two applies on disjoint
//! tenants of one database at once. Runs against `TENANTFORM_TEST_DATABASE_URL`; skipped
//! (loudly) without one.

use std::path::Path;

use crate::support::{Run, StandaloneSandbox, command, run_in, write_tree};

/// The test database with a fresh schema (dropped at the end) and a password in the URL that
/// must never be printed (the test server's trust authentication ignores it).
fn database() -> Option<(String, crate::support::DropSchema)> {
    if !crate::support::test_database_available() {
        return None;
    }
    let url = crate::support::test_database_url().unwrap();
    let schema = format!(
        "e2e{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let with_password = url.replacen("://postgres@", "://postgres:Hunter2-not-shown@", 1);
    let separator = if url.contains('?') { "&" } else { "?" };
    Some((
        format!("{with_password}{separator}schema={schema}"),
        crate::support::DropSchema { url, schema },
    ))
}

fn assert_no_password(run: &Run) {
    assert!(
        !run.stdout.contains("Hunter2") && !run.stderr.contains("Hunter2"),
        "the database password was printed:\n{}",
        run.transcript()
    );
}

#[test]
fn plan_and_apply_keep_state_in_postgres() {
    let Some((url, _schema)) = database() else {
        return;
    };
    let dir = crate::support::foggy_it();
    let d = dir.path().to_str().unwrap();
    let applied = run_in(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--sandbox",
            "--replication-window",
            "0s",
            "--state",
            &url,
            d,
        ],
        None,
    );
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains("postgres://postgres@127.0.0.1"),
        "the summary names the database: {}",
        applied.stdout
    );
    assert_no_password(&applied);
    assert!(
        !dir.path().join(".tenantform/state.json").exists(),
        "no state file is written"
    );
    let plan = run_in(
        dir.path(),
        &[
            "plan",
            "--detailed-exitcode",
            "--sandbox",
            "--replication-window",
            "0s",
            "--state",
            &url,
            d,
        ],
        None,
    );
    assert_eq!(plan.code, 0, "nothing left to do:\n{}", plan.transcript());
    assert_no_password(&plan);
    let access = run_in(
        dir.path(),
        &[
            "access",
            "--user",
            "dana.whitfield@contoso-msp.example",
            "--state",
            &url,
            d,
        ],
        None,
    );
    assert_eq!(access.code, 0, "{}", access.transcript());
    assert!(access.stdout.contains("foggy-it"), "{}", access.stdout);
}

#[test]
fn a_database_that_cannot_be_reached_fails_without_showing_the_password() {
    let dir = crate::support::foggy_it();
    let d = dir.path().to_str().unwrap();
    let run = run_in(
        dir.path(),
        &[
            "plan",
            "--offline",
            "--state",
            "postgres://someone:Hunter2-not-shown@127.0.0.1:1/nowhere",
            d,
        ],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
    assert_no_password(&run);
}

fn manifests(guests: &[&str]) -> String {
    let mut text = format!(
        "kind: Tenant\nname: a\nmicrosoftTenantId: {}\n---\nkind: Tenant\nname: b\nmicrosoftTenantId: {}\n",
        tenantform::synthetic::synthetic_guid(0),
        tenantform::synthetic::synthetic_guid(1)
    );
    for g in guests {
        text.push_str(&format!(
            "---\nkind: GuestUser\nname: {g}\nemail: {g}@msp.example\ntenants: [a, b]\n---\n\
             kind: RoleAssignment\nname: {g}-admin\nprincipal: {{ guest: {g} }}\n\
             directoryRoles: [Helpdesk Administrator]\nmspRoles: [TenantAdmin]\n"
        ));
    }
    text
}

fn run(sandbox: &StandaloneSandbox, cwd: &Path, args: &[&str]) -> Run {
    let out = command()
        .envs(sandbox.env())
        .env("TENANTFORM_TEST_APPLY_STEP_DELAY_MS", "300")
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn two_applies_on_disjoint_tenants_of_one_database_both_succeed() {
    let Some((url, _schema)) = database() else {
        return;
    };
    let sandbox = StandaloneSandbox::start(2);
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana"]))]);
    let dir = tree.to_str().unwrap();
    let first = run(
        &sandbox,
        root.path(),
        &["apply", "--auto-approve", "--state", &url, dir],
    );
    assert_eq!(first.code, 0, "{}", first.transcript());
    write_tree(
        &tree,
        &[("fleet.yaml", &manifests(&["dana", "erin", "finn"]))],
    );
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            run(
                &sandbox,
                root.path(),
                &[
                    "apply",
                    "--auto-approve",
                    "--tenant",
                    "a",
                    "--state",
                    &url,
                    dir,
                ],
            )
        });
        let b = scope.spawn(|| {
            run(
                &sandbox,
                root.path(),
                &[
                    "apply",
                    "--auto-approve",
                    "--tenant",
                    "b",
                    "--state",
                    &url,
                    dir,
                ],
            )
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.code, 0, "{}", a.transcript());
    assert_eq!(b.code, 0, "{}", b.transcript());
    assert_no_password(&a);
    let plan = run(
        &sandbox,
        root.path(),
        &["plan", "--detailed-exitcode", "--state", &url, dir],
    );
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    let invitations = sandbox
        .requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/invitations"))
        .count();
    assert_eq!(invitations, 6, "dana, erin and finn, once per tenant");
}

/// A SIGKILLed apply leaves the database consistent: the next apply records what the killed
/// one did (its journal rows), finishes the rest, and invites nobody twice.
#[test]
fn an_apply_killed_mid_way_leaves_postgres_state_that_the_next_run_completes() {
    let Some((url, _schema)) = database() else {
        return;
    };
    let sandbox = StandaloneSandbox::start(2);
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana"]))]);
    let dir = tree.to_str().unwrap();
    let first = run(
        &sandbox,
        root.path(),
        &["apply", "--auto-approve", "--state", &url, dir],
    );
    assert_eq!(first.code, 0, "{}", first.transcript());
    write_tree(
        &tree,
        &[("fleet.yaml", &manifests(&["dana", "erin", "finn"]))],
    );
    let invitations = || {
        sandbox
            .requests()
            .iter()
            .filter(|r| {
                r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/invitations")
            })
            .count()
    };
    let before = invitations();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tenantform"));
    for var in crate::support::HERMETIC_VARS {
        cmd.env_remove(var);
    }
    let mut slow = cmd
        .envs(sandbox.env())
        .env("TENANTFORM_TEST_APPLY_STEP_DELAY_MS", "1500")
        .current_dir(root.path())
        .args([
            "apply",
            "--auto-approve",
            "--parallelism",
            "1",
            "--state",
            &url,
            dir,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while invitations() == before {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the apply never invited anyone"
        );
        assert!(slow.try_wait().unwrap().is_none(), "the apply ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Killed right after its first invitation: no chance to write anything else.
    slow.kill().unwrap();
    slow.wait().unwrap();
    let killed_at = invitations();
    assert!(killed_at < before + 4, "killed before the end");

    let again = run(
        &sandbox,
        root.path(),
        &["apply", "--auto-approve", "--state", &url, dir],
    );
    assert_eq!(again.code, 0, "{}", again.transcript());
    let plan = run(
        &sandbox,
        root.path(),
        &["plan", "--detailed-exitcode", "--state", &url, dir],
    );
    assert_eq!(plan.code, 0, "converged:\n{}", plan.transcript());
    assert_eq!(
        invitations(),
        before + 4,
        "erin and finn invited once per tenant, the killed run's invitation not repeated"
    );
}

/// `state migrate` moves a team from a state file to PostgreSQL and back, verified: plans
/// against the copy find nothing to do, a non-empty target is refused, and the password is
/// never shown.
#[test]
fn state_migrates_from_a_file_to_postgres_and_back() {
    let Some((url, _schema)) = database() else {
        return;
    };
    let dir = crate::support::foggy_it_applied();
    let d = dir.path().to_str().unwrap();
    let file = dir.path().join("state.json");
    let file = file.to_str().unwrap();
    let plan_against = |state: &str| {
        run_in(
            dir.path(),
            &[
                "plan",
                "--detailed-exitcode",
                "--sandbox",
                "--replication-window",
                "0s",
                "--state",
                state,
                d,
            ],
            None,
        )
    };
    // `tf` keeps the sandbox world beside the state file; a database state keeps it beside the
    // manifests: give both the same world.
    std::fs::create_dir_all(dir.path().join(".tenantform")).unwrap();
    std::fs::copy(
        dir.path().join("sandbox-world.json"),
        dir.path().join(".tenantform/sandbox-world.json"),
    )
    .unwrap();

    let to_db = run_in(
        dir.path(),
        &["state", "migrate", "--state", file, "--to", &url],
        None,
    );
    assert_eq!(to_db.code, 0, "{}", to_db.transcript());
    assert!(
        to_db.stdout.contains("read back and compared"),
        "{}",
        to_db.stdout
    );
    assert_no_password(&to_db);
    let plan = plan_against(&url);
    assert_eq!(
        plan.code,
        0,
        "nothing to do against the copy:\n{}",
        plan.transcript()
    );

    let again = run_in(
        dir.path(),
        &["state", "migrate", "--state", file, "--to", &url],
        None,
    );
    assert_eq!(again.code, 1, "{}", again.transcript());
    assert!(
        again.stderr.contains("already holds state"),
        "{}",
        again.stderr
    );
    assert_no_password(&again);

    let back = dir.path().join("back/state.json");
    let back = back.to_str().unwrap();
    let to_file = run_in(
        dir.path(),
        &["state", "migrate", "--state", &url, "--to", back],
        None,
    );
    assert_eq!(to_file.code, 0, "{}", to_file.transcript());
    let original = run_in(dir.path(), &["state", "list", "--state", file], None);
    let copied = run_in(dir.path(), &["state", "list", "--state", back], None);
    assert_eq!(original.stdout, copied.stdout);
    assert!(
        original.stdout.contains("guest.foggy-it.dana-support"),
        "{}",
        original.stdout
    );
}

/// A TCP relay to the test database that can be cut, to play a database going away.
struct Relay {
    port: u16,
    streams: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn to(target: String) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let streams = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, c) = (streams.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                s.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, streams, cut }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The database goes away in the middle of an apply: the run fails (exit 1) naming the
/// database, and once it is back the next run completes without doing anything twice.
#[test]
fn a_database_that_goes_away_mid_apply_fails_the_run_and_the_next_one_converges() {
    let Some((url, _schema)) = database() else {
        return;
    };
    let hostport = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    let relay = Relay::to(hostport.clone());
    let relayed = url.replacen(&hostport, &format!("127.0.0.1:{}", relay.port), 1);
    let sandbox = StandaloneSandbox::start(2);
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana"]))]);
    let dir = tree.to_str().unwrap();
    let first = run(
        &sandbox,
        root.path(),
        &["apply", "--auto-approve", "--state", &relayed, dir],
    );
    assert_eq!(first.code, 0, "{}", first.transcript());
    write_tree(
        &tree,
        &[("fleet.yaml", &manifests(&["dana", "erin", "finn"]))],
    );
    let invitations = || {
        sandbox
            .requests()
            .iter()
            .filter(|r| {
                r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/invitations")
            })
            .count()
    };
    let before = invitations();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tenantform"));
    for var in crate::support::HERMETIC_VARS {
        cmd.env_remove(var);
    }
    let slow = cmd
        .envs(sandbox.env())
        .env("TENANTFORM_TEST_APPLY_STEP_DELAY_MS", "1500")
        .current_dir(root.path())
        .args([
            "apply",
            "--auto-approve",
            "--parallelism",
            "1",
            "--state",
            &relayed,
            dir,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while invitations() == before {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the apply never invited anyone"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    relay.cut();
    let output = slow.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot "),
        "the database error is named:\n{stderr}"
    );
    assert!(!stderr.contains("Hunter2"), "{stderr}");

    // The database is back (reached directly now): the next run finishes the job, once.
    let again = run(
        &sandbox,
        root.path(),
        &["apply", "--auto-approve", "--state", &url, dir],
    );
    assert_eq!(again.code, 0, "{}", again.transcript());
    let plan = run(
        &sandbox,
        root.path(),
        &["plan", "--detailed-exitcode", "--state", &url, dir],
    );
    assert_eq!(plan.code, 0, "converged:\n{}", plan.transcript());
    assert_eq!(invitations(), before + 4, "each new invitation once");
}
