//! State in PostgreSQL (`--state postgres://...`), end to end through the binary: the same
//! plan and apply as with a state file, passwords never shown, and two applies on disjoint
//! tenants of one database at once. Runs against `TENANTFORM_TEST_DATABASE_URL`; skipped
//! (loudly) without one.

use std::path::Path;

use crate::support::{Run, StandaloneSandbox, run_in, write_tree};

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

use crate::support::two_tenant_fleet as manifests;

/// Each change pauses 300 ms, so two applies started together overlap.
fn run(sandbox: &StandaloneSandbox, cwd: &Path, args: &[&str]) -> Run {
    crate::support::run_against(
        sandbox,
        cwd,
        args,
        &[("TENANTFORM_TEST_APPLY_STEP_DELAY_MS", "300")],
    )
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
    assert_eq!(
        sandbox.invitations(),
        6,
        "dana, erin and finn, once per tenant"
    );
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
    let (mut slow, before) = slow_apply_after_its_first_invitation(&sandbox, root.path(), &url);
    // Killed right after its first invitation: no chance to write anything else.
    slow.kill().unwrap();
    slow.wait().unwrap();
    assert!(sandbox.invitations() < before + 4, "killed before the end");
    converges_once(&sandbox, root.path(), &url, before);
}

/// Tenants a and b with dana applied; then erin and finn are added and a fleet-wide apply (one
/// tenant at a time, 1.5 s after each change) starts against `state`. Returns it once it has
/// sent its first invitation, with the number of invitations before it.
fn slow_apply_after_its_first_invitation(
    sandbox: &StandaloneSandbox,
    root: &Path,
    state: &str,
) -> (std::process::Child, usize) {
    let tree = root.join("tree");
    write_tree(&tree, &[("fleet.yaml", &manifests(&["dana"]))]);
    let dir = tree.to_str().unwrap();
    let first = run(
        sandbox,
        root,
        &["apply", "--auto-approve", "--state", state, dir],
    );
    assert_eq!(first.code, 0, "{}", first.transcript());
    write_tree(
        &tree,
        &[("fleet.yaml", &manifests(&["dana", "erin", "finn"]))],
    );
    let before = sandbox.invitations();
    let args = [
        "apply",
        "--auto-approve",
        "--parallelism",
        "1",
        "--state",
        state,
        dir,
    ];
    let mut slow = crate::support::spawn_slow(sandbox, root, &args, 1500);
    crate::support::wait_while_running(&mut slow, "the apply's first invitation", || {
        sandbox.invitations() > before
    });
    (slow, before)
}

/// The next apply (against `state`) finishes the job, a plan finds nothing left, and every
/// new invitation (erin and finn into a and b) was sent once.
fn converges_once(sandbox: &StandaloneSandbox, root: &Path, state: &str, before: usize) {
    let dir = root.join("tree");
    let dir = dir.to_str().unwrap();
    let again = run(
        sandbox,
        root,
        &["apply", "--auto-approve", "--state", state, dir],
    );
    assert_eq!(again.code, 0, "{}", again.transcript());
    let plan = run(
        sandbox,
        root,
        &["plan", "--detailed-exitcode", "--state", state, dir],
    );
    assert_eq!(plan.code, 0, "converged:\n{}", plan.transcript());
    assert_eq!(
        sandbox.invitations(),
        before + 4,
        "each new invitation once"
    );
    // History has every guest: made (create) or, when the kill came between the invitation
    // and its entry, found again (adopt); never two applied creates of one guest.
    let history = run(
        sandbox,
        root,
        &["state", "history", "--state", state, "--output", "json"],
    );
    assert_eq!(history.code, 0, "{}", history.transcript());
    let entries: Vec<serde_json::Value> = serde_json::from_str(&history.stdout).unwrap();
    for tenant in ["a", "b"] {
        for guest in ["dana", "erin", "finn"] {
            let address = format!("guest.{tenant}.{guest}");
            let ops: Vec<&str> = entries
                .iter()
                .filter(|e| e["address"] == address.as_str() && e["outcome"]["status"] == "applied")
                .map(|e| e["op"].as_str().unwrap())
                .collect();
            assert!(
                ops == ["create"] || ops == ["adopt"] || ops == ["create", "adopt"],
                "{address}: {ops:?}"
            );
        }
    }
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
    let (slow, before) = slow_apply_after_its_first_invitation(&sandbox, root.path(), &relayed);
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
    converges_once(&sandbox, root.path(), &url, before);
}

/// `state migrate` copies state and its apply history from a file to PostgreSQL and back,
/// verified; the state commands (list, show, history) read either backend the same way; a
/// target that already holds state is refused.
#[test]
fn state_and_history_migrate_from_a_file_to_postgres_and_back() {
    let Some((url, schema)) = database() else {
        return;
    };
    let dir = crate::support::foggy_it();
    let d = dir.path().to_str().unwrap();
    let file = dir.path().join("state.json");
    let file = file.to_str().unwrap();
    let applied = crate::support::tf(dir.path(), &["apply", d, "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let state = |location: &str, args: &[&str]| {
        let mut all = vec!["state"];
        all.extend(args);
        all.extend(["--state", location]);
        let run = run_in(dir.path(), &all, None);
        assert_no_password(&run);
        run
    };
    let to_db = state(file, &["migrate", "--to", &url]);
    assert_eq!(to_db.code, 0, "{}", to_db.transcript());
    assert!(
        to_db.stdout.contains("7 objects") && to_db.stdout.contains("7 history entries"),
        "{}",
        to_db.stdout
    );
    // The copy leaves statistics behind (ANALYZE), so the first plan against it is not
    // planned blind: `reltuples` is -1 for a table never analyzed.
    let analyzed: f32 = postgres::Client::connect(&schema.url, postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = 'partitions'",
            &[&schema.schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        analyzed, 2.0,
        "the catalog and one tenant's partition, counted"
    );
    for args in [
        &["list", "--output", "json"][..],
        &["show", "guest.foggy-it.dana-support", "--output", "json"],
        &["history", "--output", "json"],
        &["history", "--tenant", "foggy-it", "--output", "json"],
    ] {
        let (from_file, from_db) = (state(file, args), state(&url, args));
        assert_eq!(from_file.code, 0, "{}", from_file.transcript());
        assert_eq!(from_db.code, 0, "{}", from_db.transcript());
        assert_eq!(from_db.stdout, from_file.stdout, "state {args:?}");
    }
    // Into a target that holds state: refused, nothing changed.
    let again = state(file, &["migrate", "--to", &url]);
    assert_eq!(again.code, 1, "{}", again.transcript());
    assert!(
        again.stderr.contains("already holds state"),
        "{}",
        again.stderr
    );

    // A state edit on PostgreSQL is recorded there, then everything comes back to a file.
    let moved = state(
        &url,
        &[
            "mv",
            "organization.foggy-waltham",
            "organization.foggy-north",
        ],
    );
    assert_eq!(moved.code, 0, "{}", moved.transcript());
    let back = dir.path().join("back/state.json");
    let back = back.to_str().unwrap();
    let to_file = state(&url, &["migrate", "--to", back]);
    assert_eq!(to_file.code, 0, "{}", to_file.transcript());
    let history = state(
        back,
        &[
            "history",
            "--address",
            "organization.foggy-north",
            "--output",
            "json",
        ],
    );
    let entries: Vec<serde_json::Value> = serde_json::from_str(&history.stdout).unwrap();
    let ops: Vec<&str> = entries.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["create", "move"], "{entries:#?}");
}

/// TLS as the URL asks: `sslmode=verify-full` with the server's CA (`sslrootcert`) works
/// against a server that accepts TLS only; a plain connection there is refused, and
/// `sslmode=require` without the CA fails on the certificate (tenantform verifies it always),
/// each with exit 1 and the reason, never the password.
#[test]
fn tls_to_postgres_is_used_and_verified_as_the_url_asks() {
    let Some((port, ca)) = crate::support::tls_cluster() else {
        if std::env::var_os("TENANTFORM_REQUIRE_DATABASE_TESTS").is_some() {
            panic!(
                "TENANTFORM_REQUIRE_DATABASE_TESTS is set, but no TLS PostgreSQL cluster could be started (PostgreSQL binaries and openssl)"
            );
        }
        eprintln!("SKIPPED: TLS PostgreSQL test: no PostgreSQL binaries or openssl");
        return;
    };
    let dir = crate::support::foggy_it();
    let d = dir.path().to_str().unwrap();
    let base = format!("postgres://postgres:Hunter2-not-shown@localhost:{port}/postgres");
    let apply = |url: &str| {
        let run = run_in(
            dir.path(),
            &[
                "apply",
                "--auto-approve",
                "--sandbox",
                "--replication-window",
                "0s",
                "--state",
                url,
                d,
            ],
            None,
        );
        assert_no_password(&run);
        run
    };
    let verified = format!(
        "{base}?sslmode=verify-full&sslrootcert={}&schema=over_tls",
        ca.display()
    );
    let ok = apply(&verified);
    assert_eq!(ok.code, 0, "{}", ok.transcript());
    let again = apply(&verified);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    let plain = apply(&format!("{base}?schema=plain"));
    assert_eq!(plain.code, 1, "{}", plain.transcript());
    assert!(
        plain.stderr.contains("no encryption") || plain.stderr.contains("pg_hba.conf"),
        "the server's refusal is shown:\n{}",
        plain.stderr
    );
    let unverified = apply(&format!("{base}?sslmode=require&schema=unverified"));
    assert_eq!(unverified.code, 1, "{}", unverified.transcript());
    assert!(
        unverified.stderr.to_lowercase().contains("certificate"),
        "an unknown CA is a certificate error:\n{}",
        unverified.stderr
    );
    let unknown = apply(&format!("{base}?sslmode=sometimes"));
    assert_eq!(unknown.code, 1, "{}", unknown.transcript());
    assert!(
        unknown.stderr.contains("sslmode=sometimes is not one of"),
        "{}",
        unknown.stderr
    );
}

/// Observations (Secure Score days kept, licence holdings) on both backends: read back as
/// written, replaced whole, no serial changed, bad names refused.
#[test]
fn observations_round_trip_beside_the_partitions_on_both_backends() {
    use tenantform::state::StateStore;
    let check = |store: &dyn StateStore| {
        let before = store.serials().unwrap();
        assert_eq!(
            store.read_observation("foggy-it", "secure_score").unwrap(),
            None
        );
        let days =
            serde_json::json!({"days": [{"date": "2026-12-07", "current": 34.0, "max": 68.0}]});
        store
            .write_observation("foggy-it", "secure_score", &days)
            .unwrap();
        assert_eq!(
            store.read_observation("foggy-it", "secure_score").unwrap(),
            Some(days)
        );
        let more = serde_json::json!({"days": []});
        store
            .write_observation("foggy-it", "secure_score", &more)
            .unwrap();
        assert_eq!(
            store.read_observation("foggy-it", "secure_score").unwrap(),
            Some(more)
        );
        assert_eq!(
            store.read_observation("other", "secure_score").unwrap(),
            None
        );
        assert_eq!(store.serials().unwrap(), before, "no serial changes");
        assert!(
            store
                .write_observation("../etc", "secure_score", &serde_json::json!({}))
                .is_err()
        );
        assert!(
            store
                .write_observation("foggy-it", "../x", &serde_json::json!({}))
                .is_err()
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let file = tenantform::ops::settings::open_store(&dir.path().join("state.json")).unwrap();
    check(file.as_ref());
    let Some((url, _drop)) = database() else {
        return;
    };
    let postgres = tenantform::ops::settings::open_store(std::path::Path::new(&url)).unwrap();
    check(postgres.as_ref());
}
