//! The CI examples in examples/ci parse, and every `tenantform` call in them uses a command
//! and flags that exist (checked against the binary's own `--help`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{repo_root, run};

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("examples/ci").join(name)).unwrap();
    // YAML 1.2 booleans only: GitHub's `on:` key must stay a string.
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_str_with_options(&text, options).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every shell script in the file (`run`, `script`, `inlineScript`).
fn scripts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("run" | "script" | "inlineScript", Value::String(s)) => out.push(s.clone()),
                    _ => scripts(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| scripts(i, out)),
        _ => {}
    }
}

/// (subcommand, flags) of every `tenantform ...` call.
fn calls(scripts: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for script in scripts {
        let joined = script.replace("\\\n", " ");
        for line in joined.lines() {
            // `tenantform` as a command (first word, or after a shell separator), not an
            // argument (as in `cargo install tenantform`).
            let all: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = all.iter().enumerate().position(|(i, w)| {
                *w == "tenantform"
                    && (i == 0 || matches!(all[i - 1], "&&" | ";" | "||" | "|" | "then" | "do"))
            }) else {
                continue;
            };
            let mut words = all[at + 1..].iter().copied();
            let Some(sub) = words.next() else { continue };
            let mut flags = Vec::new();
            for w in words {
                if matches!(w, ">" | ">>" | "|" | "||" | "&&" | ";") {
                    break;
                }
                if let Some(flag) = w.strip_prefix("--") {
                    flags.push(format!("--{}", flag.split('=').next().unwrap()));
                }
            }
            out.push((sub.to_string(), flags));
        }
    }
    out
}

fn check_calls(file: &str) -> Vec<(String, Vec<String>)> {
    let mut all = Vec::new();
    scripts(&load(file), &mut all);
    let calls = calls(&all);
    assert!(!calls.is_empty(), "{file} calls tenantform");
    let mut help: BTreeMap<String, String> = BTreeMap::new();
    for (sub, flags) in &calls {
        let text = help.entry(sub.clone()).or_insert_with(|| {
            let h = run(&[sub, "--help"]);
            assert_eq!(h.code, 0, "{file}: `tenantform {sub}` is not a command");
            h.stdout
        });
        for flag in flags {
            assert!(
                text.contains(flag.as_str()),
                "{file}: `tenantform {sub}` has no {flag}"
            );
        }
    }
    calls
}

#[test]
fn github_actions_workflow_plans_applies_and_reports_drift() {
    let w = load("github-actions.yml");
    assert_eq!(
        w["permissions"]["id-token"], "write",
        "OIDC for workload identity federation"
    );
    for trigger in ["pull_request", "push", "schedule"] {
        assert!(w["on"].get(trigger).is_some(), "on.{trigger}");
    }
    assert_eq!(
        w["jobs"]["apply"]["environment"], "production",
        "apply waits for approval"
    );
    let calls = check_calls("github-actions.yml");
    let has = |sub: &str, flag: &str| {
        calls
            .iter()
            .any(|(s, f)| s == sub && f.iter().any(|x| x == flag))
    };
    assert!(
        has("plan", "--changed-since") && has("plan", "--out") && has("apply", "--auto-approve")
    );
    assert!(has("drift", "--output"));
    assert!(has("sync", "--output"), "an hourly end-user sync");
    assert_eq!(
        w["jobs"]["sync"]["if"], "github.event.schedule == '7 * * * *'",
        "the sync runs on the hourly schedule only"
    );
    let text = std::fs::read_to_string(repo_root().join("examples/ci/github-actions.yml")).unwrap();
    assert!(text.contains("--output junit") && text.contains("--output markdown"));
    // Secretless: tenantform asks GitHub for the job's OIDC token itself (fresh near its
    // expiry), so no step writes a token file and no secret names Entra.
    assert_secretless(&w, "github-actions");
    assert!(
        text.contains("issuer   https://token.actions.githubusercontent.com")
            && text.contains("repo:<org>/<repo>:environment:production")
            && text.contains("audience api://AzureADTokenExchange"),
        "the federated credentials the app needs"
    );
}

/// The file signs in with `source` (a real `--auth` value), and holds no secret for Entra and
/// no token file.
fn assert_secretless(file: &Value, source: &str) {
    let auth = file["env"]["TENANTFORM_AUTH"]
        .as_str()
        .or(file["variables"]["TENANTFORM_AUTH"].as_str());
    assert_eq!(auth, Some(source));
    let help = run(&["plan", "--help"]).stdout;
    assert!(help.contains(source), "`--auth {source}` exists");
    let text = file.to_string();
    for gone in [
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_CLIENT_SECRET",
        "idToken",
        "oidc-token",
    ] {
        assert!(!text.contains(gone), "{gone} in {text}");
    }
}

#[test]
fn azure_pipelines_plans_applies_and_reports_drift() {
    let p = load("azure-pipelines.yml");
    assert!(p.get("pr").is_some() && p.get("schedules").is_some() && p.get("trigger").is_some());
    let text =
        std::fs::read_to_string(repo_root().join("examples/ci/azure-pipelines.yml")).unwrap();
    assert!(text.contains("PublishTestResults@2") && text.contains("testResultsFormat: JUnit"));
    assert!(text.contains("environment: production"));
    let calls = check_calls("azure-pipelines.yml");
    assert!(calls.iter().any(|(s, _)| s == "drift"));
    // Workload identity federation through the service connection: every AzureCLI@2 task
    // that runs tenantform maps System.AccessToken (the OIDC token request needs it).
    assert_secretless(&p, "azure-pipelines");
    let tasks = text.matches("task: AzureCLI@2").count();
    assert!(tasks >= 4);
    assert_eq!(
        text.matches("SYSTEM_ACCESSTOKEN: $(System.AccessToken)")
            .count(),
        tasks
    );
    assert!(text.contains("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"));
    assert!(
        calls
            .iter()
            .any(|(s, f)| s == "apply" && f.contains(&"--auto-approve".to_string()))
    );
}

#[test]
fn the_sharded_workflow_splits_apply_and_drift_over_one_postgres_state() {
    let w = load("github-actions-sharded.yml");
    for job in ["apply", "drift"] {
        assert_eq!(
            w["jobs"][job]["strategy"]["matrix"]["shard"],
            serde_json::json!([1, 2, 3, 4]),
            "{job} runs as a matrix of four shards"
        );
        assert_eq!(w["jobs"][job]["strategy"]["fail-fast"], false);
    }
    assert_eq!(w["env"]["TENANTFORM_STATE"], "${{ vars.STATE_URL }}");
    assert_eq!(w["permissions"]["id-token"], "write");
    assert_secretless(&w, "github-actions");
    let calls = check_calls("github-actions-sharded.yml");
    for sub in ["apply", "drift"] {
        assert!(
            calls
                .iter()
                .any(|(s, f)| s == sub && f.iter().any(|x| x == "--shard")),
            "{sub} takes its shard"
        );
    }
    let text = std::fs::read_to_string(repo_root().join("examples/ci/github-actions-sharded.yml"))
        .unwrap();
    assert!(text.contains("--shard ${{ matrix.shard }}/4"));
    assert!(
        text.contains("state migrate"),
        "how to move a state file in"
    );
}
