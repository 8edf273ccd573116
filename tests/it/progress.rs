//! Progress and verbosity: a bar on a terminal, a line every few seconds in CI, `-v`/`-vv`
//! steps and Graph requests on stderr (never a secret), `-q` errors and the summary only.

use std::process::{Command, Stdio};

use crate::support::{binary, run_in, write_fleet};

/// A fleet of `n` tenants whose Entra answers slowly (`latency` per request).
fn slow_fleet(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path(), n);
    dir
}

fn plan_args(dir: &std::path::Path, latency: &str) -> Vec<String> {
    [
        "plan",
        dir.to_str().unwrap(),
        "--sandbox",
        "--sandbox-faults",
        latency,
        "--parallelism",
        "2",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn without_a_terminal_progress_is_a_short_line_every_few_seconds() {
    let dir = slow_fleet(20);
    let args = plan_args(dir.path(), "latency=300ms");
    let started = std::time::Instant::now();
    let run = run_in(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    let elapsed = started.elapsed().as_secs();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("Reading Entra: "))
        .collect();
    assert!(
        !lines.is_empty(),
        "{elapsed} s and no progress: {}",
        run.stderr
    );
    assert!(
        lines.len() as u64 <= elapsed / 5 + 1,
        "one line per 5 s at most: {lines:?}"
    );
    assert!(
        lines[0].contains("/20 tenants") && lines[0].contains("/s"),
        "{lines:?}"
    );
}

#[test]
fn on_a_terminal_a_bar_shows_tenants_done_rate_and_eta() {
    let dir = slow_fleet(20);
    let command = format!(
        "{} --color never {}",
        binary().display(),
        plan_args(dir.path(), "latency=300ms").join(" ")
    );
    // util-linux `script` gives the process a terminal; the bar is drawn on it.
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .output()
        .expect("util-linux `script` provides a terminal");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Reading Entra ["), "{text}");
    assert!(text.contains("/20 tenants"), "{text}");
    assert!(text.contains("ETA"), "{text}");
    assert!(text.contains("Plan: "), "{text}");
}

#[test]
fn verbose_shows_steps_and_requests_but_never_a_secret() {
    let dir = slow_fleet(2);
    let d = dir.path().to_str().unwrap();
    let steps = run_in(
        dir.path(),
        &["-v", "apply", d, "--sandbox", "--auto-approve"],
        None,
    );
    assert_eq!(steps.code, 0, "{}", steps.stderr);
    assert!(
        steps.stderr.contains("read Entra tenant=customer-00000"),
        "{}",
        steps.stderr
    );
    assert!(!steps.stderr.contains("POST"), "-v is steps, not requests");
    let requests = run_in(dir.path(), &["-vv", "plan", d, "--sandbox"], None);
    assert_eq!(requests.code, 0, "{}", requests.stderr);
    for expected in [
        "method=\"POST\"",
        "path=/$batch",
        "status=200",
        "ms=",
        "token issued",
    ] {
        assert!(
            requests.stderr.contains(expected),
            "{expected}: {}",
            requests.stderr
        );
    }
    for secret in [
        tenantform::sandbox::fixture::SANDBOX_CLIENT_SECRET,
        "Bearer",
        "eyJ",
        "access_token",
    ] {
        assert!(!requests.stderr.contains(secret), "{secret} in the log");
    }
}

#[test]
fn quiet_prints_only_the_summary_and_errors() {
    let dir = slow_fleet(2);
    let d = dir.path().to_str().unwrap();
    let applied = run_in(
        dir.path(),
        &["-q", "apply", d, "--sandbox", "--auto-approve"],
        None,
    );
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(applied.stderr, "", "nothing but errors on stderr");
    let lines: Vec<&str> = applied.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", applied.stdout);
    assert!(
        lines[0].starts_with("Apply complete: "),
        "{}",
        applied.stdout
    );
    let plan = run_in(dir.path(), &["-q", "plan", d, "--sandbox"], None);
    assert_eq!(plan.stdout.lines().count(), 1, "{}", plan.stdout);
    assert!(
        plan.stdout
            .starts_with("Plan: 0 to create, 0 to update, 0 to delete"),
        "{}",
        plan.stdout
    );
}
