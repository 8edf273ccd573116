//! Onboarding a fleet configured by hand: export from live tenants, import into state without
//! changing Entra, and the next plan is empty.

use serde_json::Value;
use tenantform::sandbox::fixture::{
    FixtureRoleAssignment, FixtureUser, SANDBOX_CLIENT_ID, SANDBOX_PARTNER_TENANT_ID,
};
use tenantform::sandbox::{Fixture, SandboxHandle};

const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

/// Five customers set up by hand: Dana in all of them (Helpdesk), a local guest each, and in
/// one tenant a Global Reader scoped to an administrative unit.
fn hand_made_fleet() -> Fixture {
    let mut f = Fixture::generated(5, 2);
    for (i, t) in f.tenants.iter_mut().enumerate().skip(1) {
        let guest = |id: String, name: &str, mail: &str| FixtureUser {
            id: Some(id),
            display_name: name.into(),
            mail: Some(mail.into()),
            other_mails: vec![mail.into()],
            user_type: "Guest".into(),
            external_user_state: Some("Accepted".into()),
            user_principal_name: None,
            account_enabled: true,
            profile: Default::default(),
        };
        let dana = format!("00000000-0000-4000-8000-{i:012}");
        let local = format!("00000000-0000-4000-8001-{i:012}");
        t.users.push(guest(
            dana.clone(),
            "Dana Whitfield (MSP)",
            "dana@msp.example",
        ));
        t.users.push(guest(
            local.clone(),
            &format!("Ben O'Neil #{i}"),
            &format!("ben{i}@old-msp.example"),
        ));
        t.role_assignments.push(FixtureRoleAssignment {
            id: None,
            principal_id: dana,
            role_definition_id: HELPDESK.into(),
            directory_scope_id: "/".into(),
        });
        if i == 2 {
            t.role_assignments.push(FixtureRoleAssignment {
                id: None,
                principal_id: local,
                role_definition_id: GLOBAL_READER.into(),
                directory_scope_id: "/administrativeUnits/6f0d7a2e-1c3b-4d5e-8f90-a1b2c3d4e5f6"
                    .into(),
            });
        }
    }
    f
}

/// `tenantform ARGS` against `sandbox`, in a directory of its own (the tests name every path).
fn tenantform(sandbox: &SandboxHandle, args: &[&str]) -> std::process::Output {
    let cwd = tempfile::tempdir().unwrap();
    crate::support::assert_hermetic(cwd.path(), args);
    std::process::Command::new(crate::support::binary())
        .current_dir(cwd.path())
        .args(args)
        .envs(crate::support::partner_env(sandbox.base_url()))
        .env_remove("TENANTFORM_STATE")
        .output()
        .unwrap()
}

#[test]
fn export_then_import_then_plan_is_a_no_op() {
    let sandbox = SandboxHandle::start(&hand_made_fleet(), Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("customers");
    let state = dir.path().join("state.json");
    let (o, s) = (out.to_str().unwrap(), state.to_str().unwrap());

    let exported = tenantform(&sandbox, &["export", "--all-customers", "--out", o]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let said = String::from_utf8_lossy(&exported.stdout);
    assert!(said.contains("Exported 5 tenants and 6 guests"), "{said}");

    // Valid, formatted like hand-written manifests, and conforming to the schema.
    let valid = tenantform(&sandbox, &["validate", o]);
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );
    let dana = std::fs::read_to_string(out.join("people/dana-at-msp-example.yaml")).unwrap();
    assert!(dana.starts_with("# yaml-language-server: $schema=../schemas/manifest.schema.json\nkind: GuestUser\nname: dana-at-msp-example\n"), "{dana}");
    assert!(dana.contains("directoryRoles: [Helpdesk Administrator]"));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("schemas/manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for dir in ["tenants", "people"] {
        for entry in std::fs::read_dir(out.join(dir)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
            for doc in docs {
                assert!(validator.is_valid(&doc), "{doc}");
            }
        }
    }

    // Import records everything as owned and writes nothing to Entra.
    sandbox.clear_requests();
    let imported = tenantform(&sandbox, &["import", o, "--state", s]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let writes: Vec<_> = sandbox
        .requests()
        .into_iter()
        .filter(|r| {
            r.method != "GET" && !r.path.ends_with("/$batch") && !r.path.ends_with("/token")
        })
        .collect();
    assert!(writes.is_empty(), "import changed Entra: {writes:?}");
    let stdout = String::from_utf8_lossy(&imported.stdout);
    assert!(stdout.contains("adopted"), "{stdout}");

    let plan = tenantform(&sandbox, &["plan", o, "--state", s, "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // Exporting into the same directory again refuses rather than overwrite.
    let again = tenantform(&sandbox, &["export", "--all-customers", "--out", o]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

/// Four customers under the partner; the manifests map three; customer 2 has not consented.
fn partner_world() -> (SandboxHandle, tempfile::TempDir) {
    let mut fixture = Fixture::generated(4, 1);
    fixture.tenants[3].consent = false; // tenants[0] is the partner
    let sandbox = SandboxHandle::start(&fixture, Default::default()).unwrap();
    let manifests = tempfile::tempdir().unwrap();
    crate::support::write_fleet(manifests.path(), 3);
    (sandbox, manifests)
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn auth_check_ticks_every_tenant_and_names_the_failures() {
    let (sandbox, manifests) = partner_world();
    let m = manifests.path().to_str().unwrap();
    let out = tenantform(&sandbox, &["auth", "check", m, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "one tenant fails");
    let rows = json_of(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let ok = &rows[0];
    assert_eq!(
        (
            ok["tenant"].as_str(),
            ok["tokenOk"].as_bool(),
            ok["graphOk"].as_bool()
        ),
        (Some("customer-00000"), Some(true), Some(true))
    );
    assert_eq!(ok["nameInEntra"], "Customer 0 Holdings");
    assert!(
        ok["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "RoleManagement.ReadWrite.Directory")
    );
    let failed = &rows[2];
    assert_eq!(failed["tokenOk"], false);
    assert!(failed["error"].as_str().unwrap().contains("AADSTS700016"));
    assert!(
        failed["consentUrl"]
            .as_str()
            .unwrap()
            .contains("adminconsent")
    );

    let text = tenantform(&sandbox, &["auth", "check", m, "--tenants", "tier=gold"]);
    assert_eq!(
        text.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(
        shown.contains("✓") && shown.contains("1 of 1 tenants OK."),
        "{shown}"
    );
}

#[test]
fn consent_urls_for_named_and_unconsented_tenants() {
    let (sandbox, manifests) = partner_world();
    let m = manifests.path().to_str().unwrap();
    let out = tenantform(
        &sandbox,
        &[
            "consent-url",
            m,
            "--all-unconsented",
            "--output",
            "json",
            "--consent-redirect-uri",
            "https://msp.example/consent-done",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let links = json_of(&out);
    assert_eq!(links.as_array().unwrap().len(), 1);
    let url = url::Url::parse(links[0]["consentUrl"].as_str().unwrap()).unwrap();
    assert!(url.path().ends_with(&format!(
        "/{}/v2.0/adminconsent",
        tenantform::synthetic::synthetic_guid(2)
    )));
    let q: std::collections::BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], SANDBOX_CLIENT_ID);
    assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(q["redirect_uri"], "https://msp.example/consent-done");
    assert_eq!(q["state"], "customer-00002");

    let named = tenantform(&sandbox, &["consent-url", m, "--tenant", "customer-00000"]);
    assert!(String::from_utf8_lossy(&named.stdout).contains("adminconsent?client_id="));
}

#[test]
fn export_continues_past_a_tenant_it_cannot_read_and_exits_1() {
    let (sandbox, _manifests) = partner_world();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("customers");
    let exported = tenantform(
        &sandbox,
        &["export", "--all-customers", "--out", out.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert_eq!(exported.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Not exported (1 of 4 tenants)"), "{stderr}");
    assert!(stderr.contains("consent missing"), "{stderr}");
    assert!(stderr.contains("consent link: http"), "{stderr}");
    assert!(stderr.contains("--tenant-id"), "{stderr}");
    let tenants: Vec<String> = std::fs::read_dir(out.join("tenants"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        tenants.len(),
        3,
        "the other three are exported: {tenants:?}"
    );
}

#[test]
fn customers_without_manifests_lists_every_contract_with_its_consent() {
    let (sandbox, _manifests) = partner_world();
    let out = tenantform(&sandbox, &["customers", "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_of(&out);
    let consent: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["displayName"].as_str().unwrap(),
                c["consent"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        consent,
        [
            ("Customer 0 Holdings", "consented"),
            ("Customer 1 Holdings", "consented"),
            ("Customer 2 Holdings", "consent-missing"),
            ("Customer 3 Holdings", "consented"),
        ]
    );
    assert!(
        rows[2]["consentUrl"]
            .as_str()
            .unwrap()
            .contains("adminconsent")
    );
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|c| c["tenant"].is_null())
    );
    let text = tenantform(&sandbox, &["customers", "--search", "holdings"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("4 customers; 3 consented, 1 consent missing."),
        "{text}"
    );
    let unchecked = tenantform(&sandbox, &["customers", "--no-consent-check", "-o", "json"]);
    assert!(
        json_of(&unchecked)
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["consent"] == "not-checked")
    );
}

#[test]
fn customers_lists_contracts_and_what_is_mapped() {
    let (sandbox, manifests) = partner_world();
    let m = manifests.path().to_str().unwrap();
    let all = json_of(&tenantform(&sandbox, &["customers", m, "--output", "json"]));
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.iter().filter(|c| c["tenant"].is_string()).count(), 3);
    let unmapped = json_of(&tenantform(
        &sandbox,
        &["customers", m, "--unmapped", "--output", "json"],
    ));
    assert_eq!(unmapped[0]["displayName"], "Customer 3 Holdings");
    let search = json_of(&tenantform(
        &sandbox,
        &[
            "customers",
            m,
            "--search",
            "CUSTOMER00001",
            "--output",
            "json",
        ],
    ));
    assert_eq!(
        search.as_array().unwrap().len(),
        1,
        "matches the domain, any case"
    );
}

#[test]
fn drift_reports_unmapped_customers_and_former_customers() {
    let (sandbox, manifests) = partner_world();
    write_tree_at(
        manifests.path(),
        "tenants/gone.yaml",
        "kind: Tenant\nname: gone-customer\nmicrosoftTenantId: 99999999-9999-4999-8999-999999999999\n",
    );
    let m = manifests.path().to_str().unwrap();
    let state = tempfile::tempdir().unwrap();
    let s = state.path().join("state.json");
    let out = tenantform(
        &sandbox,
        &[
            "drift",
            m,
            "--output",
            "json",
            "--state",
            s.to_str().unwrap(),
        ],
    );
    // One customer has not consented: drift says so, and the run fails for it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("customer-00002 (Customer 2 Holdings): consent missing"),
        "{stderr}"
    );
    let report = json_of(&out);
    let unmapped = report["unmappedCustomers"].as_array().unwrap();
    assert_eq!(unmapped.len(), 1);
    assert_eq!(
        unmapped[0]["address"],
        tenantform::synthetic::synthetic_guid(3)
    );
    assert_eq!(unmapped[0]["cause"], "unmapped-customer");
    let gone = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "gone-customer")
        .unwrap();
    assert!(
        gone["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["cause"] == "no-longer-customer")
    );

    let junit = tenantform(
        &sandbox,
        &[
            "drift",
            m,
            "--output",
            "junit",
            "--state",
            s.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&junit.stdout).contains("name=\"partner customers\""));
}

fn write_tree_at(dir: &std::path::Path, name: &str, text: &str) {
    crate::support::write_tree(dir, &[(name, text)]);
}

/// `tenantform sandbox serve ARGS` in its own process (killed on drop).
struct Served {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Served {
    fn start(cwd: &std::path::Path, args: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = std::process::Command::new(crate::support::binary())
            .current_dir(cwd)
            .args(["sandbox", "serve"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Lines as the sandbox writes them, read while it keeps serving.
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                if send.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        Served { child, lines }
    }

    /// Lines up to and including the first that starts with `last`.
    fn read_until(&self, last: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("no line starting {last:?} ({e}); got {out:?}"));
            let done = line.starts_with(last);
            out.push(line);
            if done {
                return out;
            }
        }
    }

    fn still_serving(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stops it; returns what it wrote on stderr.
    fn stop(mut self) -> String {
        use std::io::Read;
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        err
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// NAME -> value of `export NAME=value` lines, as `sh` would read them (bare or single-quoted).
fn exports(lines: &[String]) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for line in lines {
        let Some(assignment) = line.trim_start().strip_prefix("export ") else {
            continue;
        };
        let (name, value) = assignment.split_once('=').unwrap();
        let value = if let Some(quoted) = value.strip_prefix('\'') {
            quoted.strip_suffix('\'').unwrap().replace(r"'\''", "'")
        } else {
            value.to_string()
        };
        out.insert(name.to_string(), value);
    }
    out
}

/// `tenantform ARGS` in `cwd` after `sh` sourced `env_file`, with none of the caller's Azure or
/// tenantform variables.
fn sourced(cwd: &std::path::Path, env_file: &str, args: &[&str]) -> std::process::Output {
    crate::support::assert_hermetic(cwd, args);
    let mut cmd = std::process::Command::new("sh");
    cmd.current_dir(cwd)
        .arg("-c")
        .arg(format!(". ./{env_file} && exec \"$0\" \"$@\""))
        .arg(crate::support::binary())
        .args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("AZURE_") || name.starts_with("TENANTFORM_") {
            cmd.env_remove(name);
        }
    }
    cmd.output().unwrap()
}

const SANDBOX_ENV: [&str; 5] = [
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "TENANTFORM_GRAPH_URL",
    "TENANTFORM_LOGIN_URL",
];

#[test]
fn sandbox_print_env_gives_a_second_shell_everything_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_fleet(&dir.path().join("manifests"), 3);
    let mut served = Served::start(
        dir.path(),
        &["--tenants", "3", "--users", "1", "--print-env"],
    );
    let lines = served.read_until("# ready");
    // Read while the sandbox serves: stdout is flushed line by line, not at exit.
    assert!(served.still_serving());
    let (ready, env_lines) = lines.split_last().unwrap();
    assert!(
        env_lines.iter().all(|l| l.starts_with("export ")),
        "only export lines: {lines:?}"
    );
    let pid = served.child.id();
    assert!(ready.contains(&format!("kill {pid}")), "{ready}");
    let env = exports(env_lines);
    assert_eq!(env.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut names = SANDBOX_ENV.to_vec();
        names.sort();
        names
    });
    assert_eq!(
        env["AZURE_TENANT_ID"], SANDBOX_PARTNER_TENANT_ID,
        "the partner tenant"
    );
    assert_eq!(env["AZURE_CLIENT_ID"], SANDBOX_CLIENT_ID);
    assert!(env["TENANTFORM_GRAPH_URL"].starts_with(&env["TENANTFORM_LOGIN_URL"]));

    // A second shell: source the lines, then list customers and check credentials.
    std::fs::write(dir.path().join("sandbox.env"), lines.join("\n") + "\n").unwrap();
    let customers = sourced(
        dir.path(),
        "sandbox.env",
        &["customers", "manifests", "--output", "json"],
    );
    let rows = json_of(&customers);
    assert_eq!(
        rows.as_array().unwrap().len(),
        3,
        "the partner's /contracts"
    );
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|c| c["tenant"].is_string())
    );
    let auth = sourced(
        dir.path(),
        "sandbox.env",
        &["auth", "check", "manifests", "--output", "json"],
    );
    assert_eq!(
        auth.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&auth.stdout)
    );
    let rows = json_of(&auth);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["tokenOk"] == true && r["graphOk"] == true),
        "{rows}"
    );
    // Without the file, the same command has no partner tenant to ask.
    std::fs::write(dir.path().join("empty.env"), "").unwrap();
    let without = sourced(dir.path(), "empty.env", &["customers", "manifests"]);
    assert_eq!(without.status.code(), Some(1));

    let banner = served.stop();
    assert!(
        banner.starts_with("Graph sandbox listening on "),
        "{banner}"
    );
    assert!(banner.contains("Tenants (4):"), "{banner}");
}

#[test]
fn sandbox_banner_shows_the_whole_environment_to_paste() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = crate::support::repo_root().join("examples/sandbox/fixture.yaml");
    let served = Served::start(dir.path(), &["--fixture", fixture.to_str().unwrap()]);
    let lines = served.read_until("Press Ctrl-C");
    assert!(lines[0].starts_with("Graph sandbox listening on http://127.0.0.1:"));
    let env = exports(&lines);
    assert_eq!(env.len(), SANDBOX_ENV.len(), "{lines:?}");
    assert_eq!(
        env["AZURE_TENANT_ID"],
        "0c0a7f1e-0000-4000-8000-0000000c0a7f"
    );
    let block: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("  export "))
        .collect();
    assert_eq!(
        block.len(),
        SANDBOX_ENV.len(),
        "one variable a line: {lines:?}"
    );
}

#[test]
fn sandbox_env_without_a_partner_tenant_says_so_and_quotes_what_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    // A secret a shell would mangle unquoted; no tenant with contracts.
    let secret = r#"it's $HOME `id` "q" \ & ;"#;
    let fixture = format!(
        "apps:\n  - clientId: 11111111-1111-4111-8111-111111111111\n    clientSecret: {}\n\
         tenants:\n  - id: 3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b\n    displayName: Foggy IT Services\n    \
         domain: foggyit.onmicrosoft.com\n",
        serde_json::to_string(secret).unwrap()
    );
    crate::support::write_tree(
        dir.path(),
        &[
            ("fixture.yaml", &fixture),
            (
                "manifests/foggy.yaml",
                "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: 3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b\n",
            ),
        ],
    );
    let served = Served::start(dir.path(), &["--fixture", "fixture.yaml", "--print-env"]);
    let lines = served.read_until("# ready");
    let tenant_line = lines
        .iter()
        .position(|l| l.starts_with("export AZURE_TENANT_ID="))
        .unwrap();
    assert!(
        lines[tenant_line - 1].starts_with("# no tenant in the fixture has contracts")
            && lines[tenant_line - 1].contains("Foggy IT Services"),
        "{lines:?}"
    );
    let env = exports(&lines);
    assert_eq!(
        env["AZURE_TENANT_ID"],
        "3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b"
    );
    assert_eq!(env["AZURE_CLIENT_SECRET"], secret);
    // The shell reads the secret back intact: the sandbox issues a token for it.
    std::fs::write(dir.path().join("sandbox.env"), lines.join("\n") + "\n").unwrap();
    let auth = sourced(dir.path(), "sandbox.env", &["auth", "check", "manifests"]);
    assert_eq!(
        auth.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&auth.stdout),
        String::from_utf8_lossy(&auth.stderr)
    );
    drop(served);

    // A value no shell line can carry is refused, not printed broken.
    crate::support::write_tree(
        dir.path(),
        &[("bad.yaml", &fixture.replace("it's", "it's\\nsecond line"))],
    );
    let bad = std::process::Command::new(crate::support::binary())
        .current_dir(dir.path())
        .args(["sandbox", "serve", "--fixture", "bad.yaml", "--print-env"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(bad.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("AZURE_CLIENT_SECRET contains a control character"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
