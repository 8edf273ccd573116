//! Every credential source against the sandbox over real HTTP: the binary signs in with a
//! client secret, a certificate, a federated token file, GitHub Actions' and Azure DevOps'
//! OIDC tokens, a managed identity (IMDS, App Service, older App Service) and a person's Azure
//! CLI, each endpoint emulated by the sandbox (`/_emulators/...`) or a stub `az` first on
//! PATH. Only loopback addresses are ever contacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tenantform::sandbox::emulators as emu;
use tenantform::sandbox::fixture::{
    SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_PARTNER_TENANT_ID,
};
use tenantform::sandbox::{Fixture, SandboxHandle};

use crate::support::{FLEET_IDS, Run, write_tree};

fn role_id(name: &str) -> &'static str {
    tenantform::roles::RoleCatalog::builtin()
        .by_name(name)
        .unwrap()
        .template_id
}

/// The MSP's technician in every customer: Privileged Role Administrator in t0, no role in
/// t1, Global Administrator in t2.
const TECH: &str = "tech@msp.example";

fn fixture() -> Fixture {
    let roles = [
        Some("Privileged Role Administrator"),
        None,
        Some("Global Administrator"),
    ];
    let mut tenants = vec![
        json!({"id": SANDBOX_PARTNER_TENANT_ID, "displayName": "Contoso MSP", "domain": "contoso-msp.onmicrosoft.com"}),
    ];
    for (i, id) in FLEET_IDS.iter().enumerate() {
        let tech_id = format!("{:08x}-0000-4000-8000-0000000000ee", i + 1);
        let mut t = json!({
            "id": id,
            "displayName": format!("Customer {i} Ltd"),
            "domain": format!("c{i}.onmicrosoft.com"),
            "users": [{"id": tech_id, "displayName": "MSP Technician", "mail": TECH,
                       "userPrincipalName": format!("tech_msp.example#EXT#@c{i}.onmicrosoft.com"),
                       "userType": "Guest", "externalUserState": "Accepted"}],
        });
        if let Some(role) = roles[i] {
            t["roleAssignments"] =
                json!([{"principalId": tech_id, "roleDefinitionId": role_id(role)}]);
        }
        tenants.push(t);
    }
    let mut f = Fixture::parse(&json!({"tenants": tenants}).to_string()).unwrap();
    f.apps = Fixture::generated(0, 0).apps;
    f
}

const MANIFESTS: &str = "kind: GuestUser\nname: dana\nemail: dana@msp.example\ntenants: [t0, t1, t2]\n---\n\
kind: RoleAssignment\nname: dana-admin\nprincipal: { guest: dana }\n\
directoryRoles: [Helpdesk Administrator]\nmspRoles: [TenantAdmin]\n";

/// A manifests directory (three customers, Dana invited with a directory role) where state,
/// plans and history go too.
fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for (i, id) in FLEET_IDS.iter().enumerate() {
        text.push_str(&format!(
            "kind: Tenant\nname: t{i}\ndisplayName: Customer {i} Ltd\nmicrosoftTenantId: {id}\n---\n"
        ));
    }
    text.push_str(MANIFESTS);
    write_tree(dir.path(), &[("fleet.yaml", &text)]);
    dir
}

/// A stub `az` (first on PATH) that asks the sandbox for a person's token, logging the
/// tenant and resource of each call; a failure prints Entra's message on stderr as `az`
/// does.
fn stub_az(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = r#"#!/bin/sh
tenant=""; resource=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tenant) tenant="$2"; shift 2;;
    --resource) resource="$2"; shift 2;;
    *) shift;;
  esac
done
echo "$tenant $resource" >> "$SANDBOX_AZ_LOG"
if [ -n "$SANDBOX_AZ_SLEEP" ]; then sleep "$SANDBOX_AZ_SLEEP"; fi
scopes=""
if [ -n "$SANDBOX_AZ_SCOPES" ]; then scopes=$(printf '"%s",' $SANDBOX_AZ_SCOPES | sed 's/,$//'); fi
out=$(curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d "{\"user\":\"$SANDBOX_AZ_USER\",\"scopes\":[$scopes]}" "$SANDBOX_AZ_BASE/_sandbox/tenants/$tenant/delegated-token")
code=$(printf '%s' "$out" | tail -n1)
body=$(printf '%s' "$out" | sed '$d')
if [ "$code" != 200 ]; then
  echo "ERROR: $(printf '%s' "$body" | sed -n 's/.*"error_description":"\([^"]*\)".*/\1/p')" >&2
  exit 1
fi
printf '%s\n' "$body"
"#;
    let path = bin.join("az");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// A certificate and its key in one PEM file (openssl).
fn certificate(dir: &Path) -> PathBuf {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    let bundle = dir.join("bundle.pem");
    std::fs::write(
        &bundle,
        std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap(),
    )
    .unwrap();
    bundle
}

/// A token from GitHub's emulated endpoint, as a CI step would write to a token file.
fn github_jwt(sandbox: &SandboxHandle) -> String {
    crate::support::block_on(async {
        let answer: Value = reqwest::Client::new()
            .get(format!(
                "{}/_emulators/github/token?api-version=2.0&audience=api://AzureADTokenExchange",
                sandbox.base_url()
            ))
            .header(
                "Authorization",
                format!("bearer {}", emu::GITHUB_REQUEST_TOKEN),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["value"].as_str().unwrap().to_string()
    })
}

/// One way of signing in: its `--auth` name and its environment.
struct Source {
    name: &'static str,
    env: Vec<(String, String)>,
}

/// Every source (the managed identity three ways), each pointed at `sandbox`.
fn sources(sandbox: &SandboxHandle, scratch: &Path) -> Vec<Source> {
    let base = sandbox.base_url();
    let app = |extra: &[(&str, String)]| {
        let mut env = vec![("AZURE_CLIENT_ID".to_string(), SANDBOX_CLIENT_ID.to_string())];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    };
    let token_file = scratch.join("oidc-token");
    std::fs::write(&token_file, github_jwt(sandbox)).unwrap();
    let az_bin = stub_az(scratch);
    let path = format!("{}:{}", az_bin.display(), std::env::var("PATH").unwrap());
    let mi = (
        "TENANTFORM_MANAGED_IDENTITY_CLIENT_ID",
        emu::MI_CLIENT_ID.to_string(),
    );
    vec![
        Source {
            name: "client-secret",
            env: app(&[("AZURE_CLIENT_SECRET", SANDBOX_CLIENT_SECRET.into())]),
        },
        Source {
            name: "certificate",
            env: app(&[(
                "AZURE_CLIENT_CERTIFICATE_PATH",
                certificate(scratch).display().to_string(),
            )]),
        },
        Source {
            name: "federated-token-file",
            env: app(&[(
                "AZURE_FEDERATED_TOKEN_FILE",
                token_file.display().to_string(),
            )]),
        },
        Source {
            name: "github-actions",
            env: app(&[
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    format!("{base}/_emulators/github/token?api-version=2.0"),
                ),
                (
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                    emu::GITHUB_REQUEST_TOKEN.into(),
                ),
            ]),
        },
        Source {
            name: "azure-pipelines",
            env: app(&[
                (
                    "SYSTEM_OIDCREQUESTURI",
                    format!("{base}/_emulators/azure-devops/oidctoken"),
                ),
                ("SYSTEM_ACCESSTOKEN", emu::ADO_ACCESS_TOKEN.into()),
                (
                    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
                    emu::ADO_SERVICE_CONNECTION_ID.into(),
                ),
            ]),
        },
        Source {
            name: "managed-identity",
            env: app(&[
                mi.clone(),
                (
                    "TENANTFORM_IMDS_ENDPOINT",
                    format!("{base}/_emulators/imds"),
                ),
            ]),
        },
        Source {
            name: "managed-identity",
            env: app(&[
                mi.clone(),
                (
                    "IDENTITY_ENDPOINT",
                    format!("{base}/_emulators/app-service/msi/token"),
                ),
                ("IDENTITY_HEADER", emu::IDENTITY_HEADER.into()),
            ]),
        },
        Source {
            name: "managed-identity",
            env: app(&[
                mi,
                (
                    "MSI_ENDPOINT",
                    format!("{base}/_emulators/app-service/msi/token"),
                ),
                ("MSI_SECRET", emu::MSI_SECRET.into()),
            ]),
        },
        Source {
            name: "azure-cli",
            env: vec![
                ("PATH".into(), path),
                ("SANDBOX_AZ_BASE".into(), base.to_string()),
                ("SANDBOX_AZ_USER".into(), TECH.into()),
                (
                    "SANDBOX_AZ_LOG".into(),
                    scratch.join("az.log").display().to_string(),
                ),
            ],
        },
    ]
}

fn tf(sandbox: &SandboxHandle, dir: &Path, args: &[&str], env: &[(String, String)]) -> Run {
    crate::support::tf_against(sandbox, dir, args, env)
}

fn json_rows(run: &Run) -> Vec<Value> {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr))
}

#[test]
fn every_source_signs_in_to_every_tenant_and_auth_check_names_it() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = manifests();
    for source in sources(&sandbox, scratch.path()) {
        let mut args = vec!["auth", "check", ".", "--output", "json"];
        // The application sources are found by the default chain; the Azure CLI is picked.
        if source.name == "azure-cli" {
            args.extend(["--auth", "azure-cli"]);
        }
        let run = tf(&sandbox, dir.path(), &args, &source.env);
        let rows = json_rows(&run);
        assert_eq!(rows.len(), 3, "{}", source.name);
        for row in &rows {
            assert_eq!(row["tokenOk"], true, "{}: {row}", source.name);
            assert_eq!(row["graphOk"], true, "{}: {row}", source.name);
            assert_eq!(row["credential"]["source"], source.name, "{row}");
        }
        if source.name != "azure-cli" {
            assert_eq!(run.code, 0, "{}: {}{}", source.name, run.stdout, run.stderr);
            assert_eq!(rows[0]["tokenKind"], "application");
        }
    }
    // The managed identity asked for the app's exchange audience with its own client id, the
    // stub `az` for Graph in each tenant.
    let asked: Vec<String> = sandbox
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/_emulators/"))
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    for path in [
        "GET /_emulators/github/token 200",
        "POST /_emulators/azure-devops/oidctoken 200",
        "GET /_emulators/imds/metadata/identity/oauth2/token 200",
        "GET /_emulators/app-service/msi/token 200",
    ] {
        assert!(asked.iter().any(|a| a == path), "{path} in {asked:?}");
    }
    let az_log = std::fs::read_to_string(scratch.path().join("az.log")).unwrap();
    for id in FLEET_IDS {
        assert!(
            az_log.contains(&format!("{id} https://graph.microsoft.com")),
            "{az_log}"
        );
    }
}

#[test]
fn the_default_chain_and_a_picked_source_explain_themselves() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = manifests();
    let all = sources(&sandbox, scratch.path());
    let github = &all.iter().find(|s| s.name == "github-actions").unwrap().env;
    let ado = &all
        .iter()
        .find(|s| s.name == "azure-pipelines")
        .unwrap()
        .env;
    let both: Vec<(String, String)> = github.iter().chain(ado).cloned().collect();
    let run = tf(&sandbox, dir.path(), &["auth", "check", "."], &both);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("Credential: github-actions (the first source in the default chain"),
        "{}",
        run.stdout
    );
    for line in [
        "  not used: client-secret: AZURE_CLIENT_SECRET not set",
        "  not used: certificate: AZURE_CLIENT_CERTIFICATE_PATH not set",
        "  not used: federated-token-file: AZURE_FEDERATED_TOKEN_FILE not set",
        "  not used: azure-pipelines: present, but an earlier source in the chain is used",
        "  not used: azure-cli: `az` ",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    assert!(run.stdout.contains("  not used: managed-identity: TENANTFORM_MANAGED_IDENTITY_CLIENT_ID not set; no IDENTITY_ENDPOINT"), "{}", run.stdout);

    // Picked: the pipeline's source, then one whose variables are missing.
    let run = tf(
        &sandbox,
        dir.path(),
        &[
            "auth",
            "check",
            ".",
            "--auth",
            "azure-pipelines",
            "-o",
            "json",
        ],
        &both,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json_rows(&run);
    assert_eq!(rows[0]["credential"]["source"], "azure-pipelines");
    assert_eq!(
        rows[0]["credential"]["notUsed"][3],
        json!({"source": "github-actions", "why": "not picked (--auth azure-pipelines)"})
    );
    let run = tf(
        &sandbox,
        dir.path(),
        &["plan", "."],
        &[
            ("AZURE_CLIENT_ID".into(), SANDBOX_CLIENT_ID.into()),
            ("TENANTFORM_AUTH".into(), "github-actions".into()),
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("--auth github-actions: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN not set"),
        "{}",
        run.stderr
    );
    // Nothing was asked of any endpoint for the failed run.
    sandbox.clear_requests();
    let run = tf(
        &sandbox,
        dir.path(),
        &["auth", "check", ".", "--auth", "managed-identity"],
        &[("AZURE_CLIENT_ID".into(), SANDBOX_CLIENT_ID.into())],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("--auth managed-identity: TENANTFORM_MANAGED_IDENTITY_CLIENT_ID not set"),
        "{}",
        run.stderr
    );
    assert!(sandbox.requests().is_empty());
}

#[test]
fn an_untrusted_subject_fails_every_tenant_with_aadsts70021() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = manifests();
    let github = sources(&sandbox, scratch.path())
        .into_iter()
        .find(|s| s.name == "github-actions")
        .unwrap()
        .env;
    sandbox.with_world(|w| w.emulators.github_subject = "repo:someone/else:pull_request".into());
    let run = tf(&sandbox, dir.path(), &["plan", "."], &github);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let shown = format!("{}{}", run.stdout, run.stderr);
    for (i, id) in FLEET_IDS.iter().enumerate() {
        let line = shown
            .lines()
            .find(|l| l.contains(id) && l.contains("AADSTS70021"))
            .unwrap_or_else(|| panic!("t{i} {id}:\n{shown}"));
        assert!(
            line.contains("Assertion Subject: 'repo:someone/else:pull_request'"),
            "{line}"
        );
    }
    let tokens = sandbox
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token") && r.status == 400)
        .count();
    assert_eq!(tokens, 3);
}

#[test]
fn oidc_tokens_are_fetched_again_only_near_their_expiry() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = manifests();
    let github = sources(&sandbox, scratch.path())
        .into_iter()
        .find(|s| s.name == "github-actions")
        .unwrap()
        .env;
    let fetched = |sandbox: &SandboxHandle| {
        sandbox
            .requests()
            .iter()
            .filter(|r| r.path == "/_emulators/github/token")
            .count()
    };
    sandbox.clear_requests();
    let run = tf(
        &sandbox,
        dir.path(),
        &["auth", "check", ".", "--parallelism", "1"],
        &github,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(fetched(&sandbox), 1, "one OIDC token for three tenants");
    // Tokens that live 30 s are within the minute's margin at once: a fresh one each time.
    sandbox.with_world(|w| w.emulators.lifetime_secs = 30);
    sandbox.clear_requests();
    let run = tf(
        &sandbox,
        dir.path(),
        &["auth", "check", ".", "--parallelism", "1"],
        &github,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(fetched(&sandbox), 3);
}

#[test]
fn a_persons_token_is_judged_by_its_scopes_and_the_persons_roles() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = manifests();
    let cli = sources(&sandbox, scratch.path())
        .into_iter()
        .find(|s| s.name == "azure-cli")
        .unwrap()
        .env;
    let mut signed_in = cli.clone();
    // A profile on disk: the default chain takes the Azure CLI without --auth.
    let config = scratch.path().join("azure");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("azureProfile.json"), "{}").unwrap();
    signed_in.push(("AZURE_CONFIG_DIR".into(), config.display().to_string()));

    let run = tf(
        &sandbox,
        dir.path(),
        &["auth", "check", ".", "-o", "json"],
        &signed_in,
    );
    assert_eq!(
        run.code, 1,
        "t1's person lacks the role: {}{}",
        run.stdout, run.stderr
    );
    let rows = json_rows(&run);
    let by: BTreeMap<&str, &Value> = rows
        .iter()
        .map(|r| (r["tenant"].as_str().unwrap(), r))
        .collect();
    assert_eq!(by["t0"]["tokenKind"], "delegated");
    assert_eq!(by["t0"]["credential"]["source"], "azure-cli");
    assert_eq!(by["t0"]["roles"], json!([]));
    assert_eq!(
        by["t0"]["directoryRoles"],
        json!(["Privileged Role Administrator"])
    );
    assert!(
        by["t0"]["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "Directory.AccessAsUser.All"),
        "the Azure CLI's own scopes, not tenantform's least privileged ones"
    );
    assert_eq!(by["t0"]["permissionsMissing"], json!([]));
    assert_eq!(
        by["t1"]["permissionsMissing"],
        json!([
            "directory role Privileged Role Administrator (or Global Administrator) for the signed-in person"
        ])
    );
    assert_eq!(by["t2"]["directoryRoles"], json!(["Global Administrator"]));
    assert_eq!(by["t2"]["permissionsMissing"], json!([]));
    let text = tf(&sandbox, dir.path(), &["auth", "check", "."], &signed_in);
    assert!(
        text.stdout.contains("Credential: azure-cli"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("directory roles: Privileged Role Administrator"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("directory roles: none"),
        "{}",
        text.stdout
    );

    // Apply as that person: Graph refuses t1's role assignment (no role there); t0 and t2
    // are applied, and the run fails naming t1.
    let run = tf(
        &sandbox,
        dir.path(),
        &["apply", ".", "--auto-approve"],
        &signed_in,
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let shown = format!("{}{}", run.stdout, run.stderr);
    let t1 = shown
        .lines()
        .find(|l| l.starts_with("  t1 (Customer 1 Ltd): permission missing: "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        t1.contains(&format!("directory role Privileged Role Administrator (or Global Administrator) for the signed-in person in tenant {} (POST /roleManagement/directory/roleAssignments): the signed-in person's token there has scopes AuditLog.Read.All Directory.AccessAsUser.All email Group.ReadWrite.All openid profile User.ReadWrite.All and directory roles none", FLEET_IDS[1])),
        "{t1}"
    );
    let assigned = |tenant: &str| {
        sandbox.with_world(|w| {
            w.tenants[tenant]
                .role_assignments
                .values()
                .filter(|ra| ra.role_definition_id == role_id("Helpdesk Administrator"))
                .count()
        })
    };
    assert_eq!(
        (
            assigned(FLEET_IDS[0]),
            assigned(FLEET_IDS[1]),
            assigned(FLEET_IDS[2])
        ),
        (1, 0, 1)
    );

    // A plan as that person: t1's PIM eligibility needs a role they do not hold there, so
    // Graph refuses it and it is "not checked" (report-only); with a token scoped to the
    // organization only, every read is still sent (Graph decides, not tenantform's reading
    // of the scopes) and Graph refuses what a kind needs: exit 1 naming the missing scopes.
    let run = tf(
        &sandbox,
        dir.path(),
        &["plan", ".", "--output", "json"],
        &signed_in,
    );
    let plan: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}{}", run.stderr));
    let t1 = plan["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "t1")
        .unwrap();
    assert_eq!(
        t1["sources"]["roleEligibility"]["status"], "not-checked",
        "{t1}"
    );
    assert!(
        t1["sources"]["roleEligibility"]["reason"]
            .as_str()
            .unwrap()
            .contains("403 Authorization_RequestDenied"),
        "{t1}"
    );
    assert_eq!(t1["sources"]["guests"]["status"], "read");
    // The CLI's token names none of tenantform's role-reading scopes, only
    // Directory.AccessAsUser.All: the role assignments are read all the same, as Graph would.
    for t in plan["tenants"].as_array().unwrap() {
        assert_eq!(t["sources"]["roleAssignments"]["status"], "read", "{t}");
    }
    let mut narrow = signed_in.clone();
    narrow.push(("SANDBOX_AZ_SCOPES".into(), "Organization.Read.All".into()));
    sandbox.clear_requests();
    let run = tf(&sandbox, dir.path(), &["plan", "."], &narrow);
    assert_eq!(run.code, 1);
    for tenant in ["t0", "t1", "t2"] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{tenant} (")))
            .unwrap_or_else(|| panic!("{tenant}: {}", run.stderr));
        assert!(
            line.contains("permission missing: User.ReadBasic.All (or User.Read.All, User.ReadWrite.All, Directory.Read.All, Directory.ReadWrite.All) (delegated)")
                && line.contains("(GET /users)")
                && line.contains("RoleManagement.Read.Directory")
                && line.contains("scopes Organization.Read.All")
                && line.contains("Authorization_RequestDenied"),
            "{line}"
        );
    }
    let refused = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1.0/users" && r.status == 403)
        .count();
    assert_eq!(refused, 3, "Graph was asked (and refused) in each tenant");

    // Someone not in the tenants: `az`'s own message (stderr) is shown, per tenant.
    let mut stranger = signed_in.clone();
    stranger.retain(|(k, _)| k != "SANDBOX_AZ_USER");
    stranger.push(("SANDBOX_AZ_USER".into(), "nobody@elsewhere.example".into()));
    let run = tf(&sandbox, dir.path(), &["auth", "check", "."], &stranger);
    assert_eq!(run.code, 1);
    let refused = run
        .stdout
        .lines()
        .filter(|l| {
            l.contains(
                "ERROR: AADSTS50034: The user account nobody@elsewhere.example does not exist",
            )
        })
        .count();
    assert_eq!(refused, 3, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("azure-cli: `az account get-access-token` failed"),
        "{}",
        run.stdout
    );

    // An `az` that hangs is stopped.
    let mut slow = signed_in.clone();
    slow.push(("SANDBOX_AZ_SLEEP".into(), "5".into()));
    slow.push(("TENANTFORM_AZ_TIMEOUT_SECS".into(), "1".into()));
    let started = std::time::Instant::now();
    let run = tf(
        &sandbox,
        dir.path(),
        &["auth", "check", ".", "--tenants", "!nothing"],
        &slow,
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("did not answer within 1s"),
        "{}",
        run.stdout
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Every file under `dir`, as text (binary parts replaced).
fn files_under(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            out.push((path, text));
        }
    }
}

#[test]
fn no_secret_assertion_or_token_is_written_or_printed() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let all = sources(&sandbox, scratch.path());
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut dirs = Vec::new();
    for source in &all {
        let dir = manifests();
        let mut env = source.env.clone();
        env.push(("TENANTFORM_AUTH".into(), source.name.into()));
        let commands: [&[&str]; 7] = [
            &["plan", ".", "--out", "plan.tfp", "-vv"],
            &["apply", "plan.tfp", "--auto-approve"],
            &["auth", "check", "."],
            &["auth", "check", ".", "--output", "json"],
            &["drift", ".", "--output", "json"],
            &["drift", ".", "--output", "markdown"],
            &["state", "history", "--state", ".tenantform/state.json"],
        ];
        for args in commands {
            let run = tf(&sandbox, dir.path(), args, &env);
            if args[0] == "apply" && source.name != "azure-cli" {
                assert_eq!(
                    run.code, 0,
                    "{} {args:?}: {}{}",
                    source.name, run.stdout, run.stderr
                );
            }
            outputs.push((format!("{} {args:?} stdout", source.name), run.stdout));
            outputs.push((format!("{} {args:?} stderr", source.name), run.stderr));
        }
        assert!(dir.path().join("plan.tfp").is_file(), "{}", source.name);
        dirs.push(dir);
    }
    for dir in &dirs {
        let mut files = Vec::new();
        files_under(dir.path(), &mut files);
        assert!(
            files.iter().any(|(p, _)| p.ends_with("state.json")),
            "{files:?}"
        );
        outputs.extend(files.into_iter().map(|(p, t)| (p.display().to_string(), t)));
    }
    // Everything secret: the sources' secrets, every assertion the emulators issued (and the
    // token file's), every access token the sandbox issued, each also by its claims alone.
    let (issued, tokens) = sandbox.with_world(|w| {
        (
            w.emulators.issued.clone(),
            w.tokens.keys().cloned().collect::<Vec<_>>(),
        )
    });
    assert!(
        issued.len() >= 5 && tokens.len() >= 9 * 3,
        "{} {}",
        issued.len(),
        tokens.len()
    );
    let key = std::fs::read_to_string(scratch.path().join("key.pem")).unwrap();
    let key_line = key.lines().nth(2).unwrap().to_string();
    let mut secrets: Vec<String> = vec![
        SANDBOX_CLIENT_SECRET.into(),
        emu::GITHUB_REQUEST_TOKEN.into(),
        emu::ADO_ACCESS_TOKEN.into(),
        emu::IDENTITY_HEADER.into(),
        emu::MSI_SECRET.into(),
        key_line,
    ];
    for jwt in issued.iter().chain(&tokens) {
        secrets.push(jwt.clone());
        secrets.push(jwt.split('.').nth(1).unwrap().to_string());
    }
    for (what, text) in &outputs {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} holds a secret ({}...)",
                &secret[..12.min(secret.len())]
            );
        }
    }
}

#[test]
fn the_emulators_check_what_the_real_endpoints_check() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let base = sandbox.base_url().to_string();
    let status = |method: &str, path: &str, headers: &[(&str, &str)]| {
        crate::support::block_on(async {
            let http = reqwest::Client::new();
            let mut request = match method {
                "POST" => http.post(format!("{base}{path}")),
                _ => http.get(format!("{base}{path}")),
            };
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            let answer = request.send().await.unwrap();
            let code = answer.status().as_u16();
            (code, answer.json::<Value>().await.unwrap())
        })
    };
    let gh = "/_emulators/github/token?api-version=2.0&audience=api://AzureADTokenExchange";
    assert_eq!(status("GET", gh, &[]).0, 401);
    assert_eq!(
        status("GET", gh, &[("Authorization", "bearer wrong")]).0,
        401
    );
    let ado = format!(
        "/_emulators/azure-devops/oidctoken?api-version=7.1&serviceConnectionId={}",
        emu::ADO_SERVICE_CONNECTION_ID
    );
    let bearer = format!("Bearer {}", emu::ADO_ACCESS_TOKEN);
    assert_eq!(status("POST", &ado, &[]).0, 401);
    assert_eq!(
        status(
            "POST",
            &ado.replace("7.1", "5.0"),
            &[("Authorization", &bearer)]
        )
        .0,
        400
    );
    assert_eq!(
        status(
            "POST",
            &ado.replace(emu::ADO_SERVICE_CONNECTION_ID, "other"),
            &[("Authorization", &bearer)]
        )
        .0,
        404
    );
    let (code, answer) = status("POST", &ado, &[("Authorization", &bearer)]);
    assert_eq!(code, 200);
    let claims =
        tenantform::graph::credentials::jwt_claims(answer["oidcToken"].as_str().unwrap()).unwrap();
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some(emu::ado_issuer().as_str()), Some(emu::ADO_SUBJECT))
    );
    let imds = format!(
        "/_emulators/imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api://AzureADTokenExchange&client_id={}",
        emu::MI_CLIENT_ID
    );
    let (code, answer) = status("GET", &imds, &[]);
    assert_eq!(
        (code, answer["error_description"].as_str()),
        (400, Some("Required metadata header not specified"))
    );
    let (code, answer) = status(
        "GET",
        &imds.replace(emu::MI_CLIENT_ID, "someone-else"),
        &[("Metadata", "true")],
    );
    assert_eq!(
        (code, answer["error_description"].as_str()),
        (400, Some("Identity not found"))
    );
    let (code, answer) = status("GET", &imds, &[("Metadata", "true")]);
    assert_eq!(code, 200);
    assert!(
        answer["expires_on"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok(),
        "{answer}"
    );
    let claims =
        tenantform::graph::credentials::jwt_claims(answer["access_token"].as_str().unwrap())
            .unwrap();
    assert_eq!(claims["aud"], "api://AzureADTokenExchange");
    assert_eq!(claims["sub"], emu::MI_OBJECT_ID);
    let app = format!(
        "/_emulators/app-service/msi/token?api-version=2019-08-01&resource=api://AzureADTokenExchange&client_id={}",
        emu::MI_CLIENT_ID
    );
    assert_eq!(
        status("GET", &app, &[("X-IDENTITY-HEADER", "wrong")]).0,
        401
    );
    assert_eq!(
        status("GET", &app, &[("X-IDENTITY-HEADER", emu::IDENTITY_HEADER)]).0,
        200
    );
    let legacy = format!(
        "/_emulators/app-service/msi/token?api-version=2017-09-01&resource=api://AzureADTokenExchange&clientid={}",
        emu::MI_CLIENT_ID
    );
    let (code, answer) = status("GET", &legacy, &[("Secret", emu::MSI_SECRET)]);
    assert_eq!(code, 200);
    assert!(
        answer["expires_on"].as_str().unwrap().contains('/'),
        "2017-09-01 wrote a date: {answer}"
    );

    // Refused by the endpoint: every tenant fails naming the source and the endpoint's words,
    // never the request token.
    let dir = manifests();
    let env: Vec<(String, String)> = vec![
        ("AZURE_CLIENT_ID".into(), SANDBOX_CLIENT_ID.into()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
            format!("{base}/_emulators/github/token?api-version=2.0"),
        ),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
            "not-the-runners-token".into(),
        ),
    ];
    let run = tf(&sandbox, dir.path(), &["auth", "check", "."], &env);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout
            .matches("github-actions: cannot get the federated token: HTTP 401 Unauthorized")
            .count(),
        3,
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("not-the-runners-token")
            && !run.stderr.contains("not-the-runners-token")
    );
}
