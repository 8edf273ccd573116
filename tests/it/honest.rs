//! Honest results: exit codes that never report work that was not done, no network without
//! credentials, closed pipes and signals handled cleanly.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{binary, command, foggy_it, guests_in_world, run_in, three_tenant_fleet};

fn run(dir: &Path, args: &[&str]) -> crate::support::Run {
    run_in(dir, args, None)
}

#[test]
fn commands_that_need_entra_fail_without_credentials_and_send_nothing() {
    let dir = foggy_it();
    let d = dir.path().to_str().unwrap();
    // Anything sent would arrive here: TENANTFORM_GRAPH_URL / LOGIN_URL point at it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let out = dir.path().join("exported");
    let commands: Vec<Vec<&str>> = vec![
        vec!["plan", d],
        vec!["plan", d, "--detailed-exitcode", "--output", "json"],
        vec!["apply", d, "--auto-approve"],
        vec!["import", d],
        vec!["drift", d],
        vec!["drift", d, "--output", "junit"],
        vec!["export", "--all-customers", "--out", out.to_str().unwrap()],
        vec!["auth", "check", d],
        vec!["customers", d],
        vec!["consent-url", d, "--all-unconsented"],
    ];
    for args in commands {
        let output = command()
            .current_dir(dir.path())
            .args(&args)
            .env("TENANTFORM_GRAPH_URL", format!("{url}/v1.0"))
            .env("TENANTFORM_LOGIN_URL", &url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        for variable in [
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_CLIENT_CERTIFICATE_PATH",
            "AZURE_FEDERATED_TOKEN_FILE",
        ] {
            assert!(
                stderr.contains(variable),
                "{args:?} names {variable}: {stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            !dir.path().join(".tenantform/state.json").exists(),
            "{args:?} wrote state"
        );
    }
    listener.set_nonblocking(true).unwrap();
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no command may connect anywhere without credentials"
    );
}

#[test]
fn offline_plans_only_msp_side_records_and_says_entra_was_not_read() {
    let dir = foggy_it();
    let d = dir.path().to_str().unwrap();
    let plan = run(dir.path(), &["plan", d, "--offline", "--output", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["options"]["offline"], true);
    let kinds: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"guest") && !kinds.contains(&"directory_role"));
    // The MSP role would let Dana switch into a tenant she was never invited to: it waits.
    let msp_role = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "msp_role")
        .unwrap();
    assert_eq!(msp_role["reason"], "waits-for-dependency");
    assert!(
        msp_role["blocked"]
            .as_str()
            .unwrap()
            .contains("guest.foggy-it.dana-support"),
        "{msp_role}"
    );
    let text = run(dir.path(), &["--color", "never", "plan", d, "--offline"]);
    assert!(
        text.stdout
            .contains("Offline: Entra was not read (--offline)"),
        "{}",
        text.stdout
    );
    let applied = run(dir.path(), &["apply", d, "--offline", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let access = run(dir.path(), &["access", d, "--tenant", "foggy-it"]);
    assert!(
        !access.stdout.contains("dana"),
        "no MSP role without its guest: {}",
        access.stdout
    );
}

#[test]
fn one_failing_tenant_of_three_fails_the_run_after_the_other_two_are_applied() {
    let dir = three_tenant_fleet(|i, t| t["consent"] = json!(i != 1));
    let d = dir.path().to_str().unwrap();

    // Plan: changes for two tenants, one failure: 1 even with --detailed-exitcode.
    let plan = run(
        dir.path(),
        &["plan", d, "--sandbox", "--detailed-exitcode", "-o", "json"],
    );
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    let json: Value = serde_json::from_str(&plan.stdout).unwrap();
    let statuses: Vec<(String, String)> = json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().into(),
                t["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("t0".to_string(), "changes".to_string()),
            ("t1".to_string(), "failed".to_string()),
            ("t2".to_string(), "changes".to_string()),
        ]
    );
    assert_eq!(json["tenants"][1]["cause"], "consent-missing");
    assert_eq!(json["tenants"][1]["displayName"], "Customer 1 Ltd");

    let apply = run(
        dir.path(),
        &[
            "--color",
            "never",
            "apply",
            d,
            "--sandbox",
            "--auto-approve",
        ],
    );
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains("1 of 3 tenants are not as declared")
            && apply
                .stderr
                .contains("t1 (Customer 1 Ltd): consent missing"),
        "{}",
        apply.stderr
    );
    assert!(
        apply.stdout.contains("2 of 3 tenants done, 1 failed"),
        "{}",
        apply.stdout
    );
    // The other two were applied completely; the unconsented one got nothing, and no MSP
    // role says Dana may switch into it.
    for id in [
        "11111111-1111-4111-8111-111111111111",
        "33333333-3333-4333-8333-333333333333",
    ] {
        assert_eq!(guests_in_world(dir.path(), id), ["dana@msp.example"]);
    }
    assert!(guests_in_world(dir.path(), "22222222-2222-4222-8222-222222222222").is_empty());
    let access = run(
        dir.path(),
        &[
            "access",
            d,
            "--user",
            "dana@msp.example",
            "--output",
            "json",
        ],
    );
    let tenants: Vec<String> = serde_json::from_str::<Vec<Value>>(&access.stdout)
        .unwrap()
        .iter()
        .map(|g| g["tenant"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tenants, ["t0", "t2"]);

    // Everything that could be done was: only the failed tenant is left.
    let again = run(
        dir.path(),
        &["plan", d, "--sandbox", "--detailed-exitcode", "-o", "json"],
    );
    assert_eq!(again.code, 1);
    let json: Value = serde_json::from_str(&again.stdout).unwrap();
    let changing: Vec<&str> = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] != "no-op" && a["blocked"].is_null())
        .map(|a| a["tenant"].as_str().unwrap())
        .collect();
    assert!(changing.iter().all(|t| *t == "t1"), "{changing:?}");
}

#[test]
fn drift_of_a_tenant_that_cannot_be_read_is_an_error_not_a_clean_report() {
    let dir = three_tenant_fleet(|i, t| t["consent"] = json!(i != 1));
    let d = dir.path().to_str().unwrap();
    for format in ["text", "json", "junit", "markdown"] {
        let drift = run(dir.path(), &["drift", d, "--sandbox", "-o", format]);
        assert_eq!(drift.code, 1, "{format}: {}", drift.stderr);
        assert!(
            drift
                .stderr
                .contains("t1 (Customer 1 Ltd): consent missing")
        );
        if format == "json" {
            let report: Value = serde_json::from_str(&drift.stdout).unwrap();
            let outcomes: Vec<(&str, &str)> = report["tenants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["tenant"].as_str().unwrap(),
                        t["outcome"]["status"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                outcomes,
                [("t0", "changes"), ("t1", "failed"), ("t2", "changes")],
                "nothing applied yet: t0 and t2 drift from the manifests"
            );
            assert_eq!(report["tenants"][1]["outcome"]["cause"], "consent-missing");
        }
    }
}

/// Runs `tenantform ARGS` in `dir` with stdout a pipe whose reading end is already closed.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(binary())
        .current_dir(dir)
        .args(args)
        .env_remove("AZURE_CLIENT_ID")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = foggy_it();
    let d = dir.path().to_str().unwrap();
    assert_eq!(
        run(dir.path(), &["apply", d, "--sandbox", "--auto-approve"]).code,
        0
    );
    let printing: Vec<Vec<&str>> = vec![
        vec!["validate", d],
        vec!["validate", d, "--output", "json"],
        vec!["plan", d, "--sandbox"],
        vec!["plan", d, "--sandbox", "--output", "json"],
        vec!["plan", d, "--sandbox", "--output", "markdown"],
        vec!["plan", d, "--offline"],
        vec!["drift", d, "--sandbox"],
        vec!["drift", d, "--sandbox", "--output", "junit"],
        vec!["state", "list", "--state", ".tenantform/state.json"],
        vec![
            "state",
            "show",
            "tenant.foggy-it",
            "--state",
            ".tenantform/state.json",
        ],
        vec!["access", d, "--tenant", "foggy-it"],
        vec!["roles"],
        vec!["roles", "--output", "json"],
        vec!["schema"],
        vec!["--help"],
        vec!["plan", "--help"],
        vec!["--version"],
    ];
    for args in printing {
        let out = with_closed_stdout(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // Killed by SIGPIPE (the convention), or done before it printed anything that failed.
        assert!(
            out.status.signal() == Some(libc::SIGPIPE) || out.status.code().is_some(),
            "{args:?}: {:?}",
            out.status
        );
    }
    // Apply with nowhere to report to stops before its first change, releases the lock and
    // says so; the next apply does the work.
    std::fs::write(
        dir.path().join("tenant.yaml"),
        std::fs::read_to_string(dir.path().join("tenant.yaml"))
            .unwrap()
            .replace("displayName: Foggy IT Services", "displayName: Foggy IT"),
    )
    .unwrap();
    let out = with_closed_stdout(dir.path(), &["apply", d, "--sandbox", "--auto-approve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let rerun = run(dir.path(), &["apply", d, "--sandbox", "--auto-approve"]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert!(rerun.stdout.contains("4 updated"), "{}", rerun.stdout);
}

#[test]
fn partner_commands_with_a_closed_stdout_end_quietly_too() {
    use std::os::unix::process::ExitStatusExt;
    let sandbox = crate::support::StandaloneSandbox::start(2);
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_fleet(dir.path(), 2);
    let d = dir.path().to_str().unwrap();
    let env = sandbox.partner_env();
    let exported = dir.path().join("exported");
    let state = dir.path().join("state.json");
    let s = state.to_str().unwrap();
    let printing: Vec<Vec<&str>> = vec![
        vec!["customers", d],
        vec!["customers", d, "--output", "json"],
        vec!["auth", "check", d],
        vec!["consent-url", d, "--tenant", "customer-00000"],
        vec![
            "export",
            "--all-customers",
            "--out",
            exported.to_str().unwrap(),
        ],
        vec!["plan", d, "--state", s],
        vec!["drift", d, "--state", s, "--output", "json"],
        vec!["import", d, "--state", s],
    ];
    for args in printing {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(binary())
            .current_dir(dir.path())
            .args(&args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            out.status.signal() == Some(libc::SIGPIPE) || out.status.code().is_some(),
            "{args:?}: {:?}",
            out.status
        );
    }
}

#[test]
fn an_apply_against_a_graph_that_fails_every_request_exits_1() {
    let dir = foggy_it();
    let d = dir.path().to_str().unwrap();
    // Every Graph request (each inside a $batch too) is throttled, always.
    let faults = "throttle=1,retry-after=0.01";
    let apply = run(
        dir.path(),
        &[
            "apply",
            d,
            "--sandbox",
            "--sandbox-faults",
            faults,
            "--auto-approve",
        ],
    );
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    assert!(
        apply
            .stderr
            .contains("foggy-it (Foggy IT Services): Graph error")
            && apply.stderr.contains("429"),
        "{}",
        apply.stderr
    );
    let plan = run(
        dir.path(),
        &[
            "plan",
            d,
            "--sandbox",
            "--sandbox-faults",
            faults,
            "--detailed-exitcode",
        ],
    );
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    let drift = run(
        dir.path(),
        &["drift", d, "--sandbox", "--sandbox-faults", faults],
    );
    assert_eq!(drift.code, 1, "{}", drift.stderr);
    // Nothing was invited, and no MSP role says Dana may switch into the tenant.
    let access = run(
        dir.path(),
        &["access", d, "--user", "dana.whitfield@contoso-msp.example"],
    );
    assert!(!access.stdout.contains("foggy-it"), "{}", access.stdout);
}

fn journal_lines(state_dir: &Path) -> usize {
    std::fs::read_to_string(state_dir.join("state.json.journal")).map_or(0, |t| t.lines().count())
}

#[test]
fn sigint_and_sigterm_during_apply_stop_between_changes_and_the_rerun_converges() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let manifests = tempfile::tempdir().unwrap();
        crate::support::write_fleet(manifests.path(), 4);
        let m = manifests.path().to_str().unwrap();
        let state_dir = manifests.path().join(".tenantform");
        let child = Command::new(binary())
            .args([
                "apply",
                m,
                "--sandbox",
                "--auto-approve",
                "--parallelism",
                "2",
            ])
            .env_remove("AZURE_CLIENT_ID")
            .env("TENANTFORM_TEST_APPLY_STEP_DELAY_MS", "50")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while journal_lines(&state_dir) < 20 && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "signal {signal}: {stdout}{stderr}"
        );
        assert!(stdout.contains("Apply interrupted"), "{stdout}");
        assert!(stderr.contains("interrupted: stopped before"), "{stderr}");
        assert!(stderr.contains("Run the same apply again"), "{stderr}");
        // State was written whole (the journal folded in) and the lock released.
        let state: Value = crate::support::stored_state(&state_dir.join("state.json"));
        let recorded = state["objects"].as_object().unwrap().len();
        assert!(recorded >= 10, "what was done is recorded: {recorded}");
        let plan = run(
            manifests.path(),
            &["plan", m, "--sandbox", "--detailed-exitcode"],
        );
        assert_eq!(plan.code, 2, "work remains: {}", plan.stderr);
        let rerun = run(
            manifests.path(),
            &["apply", m, "--sandbox", "--auto-approve"],
        );
        assert_eq!(rerun.code, 0, "{}{}", rerun.stdout, rerun.stderr);
        let done = run(
            manifests.path(),
            &["plan", m, "--sandbox", "--detailed-exitcode"],
        );
        assert_eq!(done.code, 0, "{}", done.stdout);
        // Every guest once in every tenant.
        let world: Value = serde_json::from_str(
            &std::fs::read_to_string(state_dir.join("sandbox-world.json")).unwrap(),
        )
        .unwrap();
        for t in world["tenants"].as_array().unwrap() {
            let mut mails: Vec<&str> = t["users"]
                .as_array()
                .map(|u| u.iter().filter_map(|u| u["mail"].as_str()).collect())
                .unwrap_or_default();
            let n = mails.len();
            mails.sort();
            mails.dedup();
            assert_eq!(n, mails.len(), "a guest invited twice in {}", t["id"]);
        }
    }
}
