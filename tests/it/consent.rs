//! Consent through GDAP (issue 17) over real HTTP against the sandbox: an MSP engineer, signed
//! in with the Azure CLI (a stub `az` first on PATH asking the sandbox for a token in the
//! customer tenant with the GDAP relationship's roles), consents tenantform's app for a
//! customer with `apply --auth azure-cli`: the service principal and the Microsoft Graph app
//! role assignments the manifests' kinds need. Then the app's own credential reads the tenant.

use std::path::{Path, PathBuf};

use serde_json::json;
use tenantform::sandbox::fixture::{
    SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_PARTNER_TENANT_ID,
};
use tenantform::sandbox::{Fixture, SandboxHandle};

use crate::support::{FLEET_IDS, Run, write_tree};

/// The partner's engineer (a member of the MSP's own tenant, not of the customers').
const ENGINEER: &str = "eng@contoso-msp.onmicrosoft.com";
const CLOUD_APP_ADMIN: &str = "Cloud Application Administrator";
const PRIVILEGED_ROLE_ADMIN: &str = "Privileged Role Administrator";

/// The MSP's tenant (with its engineer) and two customers that never consented.
fn fixture() -> Fixture {
    let mut tenants = vec![json!({
        "id": SANDBOX_PARTNER_TENANT_ID, "displayName": "Contoso MSP",
        "domain": "contoso-msp.onmicrosoft.com",
        "users": [{"id": "e0000000-0000-4000-8000-0000000000e1", "displayName": "MSP Engineer",
                   "mail": ENGINEER, "userPrincipalName": ENGINEER, "userType": "Member"}],
    })];
    for (i, id) in FLEET_IDS.iter().take(2).enumerate() {
        tenants.push(json!({
            "id": id, "displayName": format!("Customer {i} Ltd"),
            "domain": format!("c{i}.onmicrosoft.com"), "consent": false,
        }));
    }
    let mut f = Fixture::parse(&json!({ "tenants": tenants }).to_string()).unwrap();
    f.apps = Fixture::generated(0, 0).apps;
    f
}

/// A stub `az` that asks the sandbox for the engineer's token in the customer tenant through
/// GDAP: the partner tenant, the relationship's roles (SANDBOX_AZ_ROLES, comma-separated) and
/// the CLI's scopes.
fn stub_az(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = r#"#!/bin/sh
tenant=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tenant) tenant="$2"; shift 2;;
    *) shift;;
  esac
done
roles=$(printf '%s' "$SANDBOX_AZ_ROLES" | sed 's/[^,][^,]*/"&"/g')
scopes=$(printf '%s' "$SANDBOX_AZ_SCOPES" | sed 's/[^ ][^ ]*/"&"/g; s/ /,/g')
out=$(curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d "{\"user\":\"$SANDBOX_AZ_USER\",\"partnerTenant\":\"$SANDBOX_AZ_PARTNER\",\"roles\":[$roles],\"scopes\":[$scopes]}" \
  "$SANDBOX_AZ_BASE/_sandbox/tenants/$tenant/delegated-token")
code=$(printf '%s' "$out" | tail -n1)
body=$(printf '%s' "$out" | sed '$d')
if [ "$code" != 200 ]; then echo "ERROR: $body" >&2; exit 1; fi
printf '%s\n' "$body"
"#;
    let path = bin.join("az");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// The engineer's environment: `az` signed in, tenantform's app named, GDAP `roles`.
fn engineer(sandbox: &SandboxHandle, scratch: &Path, roles: &[&str]) -> Vec<(String, String)> {
    let bin = stub_az(scratch);
    vec![
        (
            "PATH".into(),
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        ),
        ("AZURE_CLIENT_ID".into(), SANDBOX_CLIENT_ID.into()),
        ("SANDBOX_AZ_BASE".into(), sandbox.base_url().to_string()),
        ("SANDBOX_AZ_USER".into(), ENGINEER.into()),
        (
            "SANDBOX_AZ_PARTNER".into(),
            SANDBOX_PARTNER_TENANT_ID.into(),
        ),
        ("SANDBOX_AZ_ROLES".into(), roles.join(",")),
        // No scopes named: the sandbox issues the Azure CLI's own (Directory.AccessAsUser.All
        // and a fixed list, `sandbox::auth::DEFAULT_DELEGATED_SCOPES`), as a real `az` would.
    ]
}

/// The app's own credential (app-only).
fn app() -> Vec<(String, String)> {
    vec![
        ("AZURE_CLIENT_ID".into(), SANDBOX_CLIENT_ID.into()),
        ("AZURE_CLIENT_SECRET".into(), SANDBOX_CLIENT_SECRET.into()),
    ]
}

fn tf(sandbox: &SandboxHandle, dir: &Path, args: &[&str], env: &[(String, String)]) -> Run {
    crate::support::tf_against(sandbox, dir, args, env)
}

/// Two customers; Dana invited to t0; `extra` appended.
fn manifests(dir: &Path, extra: &str) {
    let mut text = String::new();
    for (i, id) in FLEET_IDS.iter().take(2).enumerate() {
        text.push_str(&format!(
            "kind: Tenant\nname: t{i}\ndisplayName: Customer {i} Ltd\nmicrosoftTenantId: {id}\n---\n"
        ));
    }
    text.push_str("kind: GuestUser\nname: dana\nemail: dana@msp.example\ntenants: [t0]\n");
    text.push_str(extra);
    write_tree(dir, &[("fleet.yaml", &text)]);
}

/// The consent lines of a plan: `+ consent.t0.User.Invite.All  (...)`.
fn consent_lines(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("+ consent."))
        .map(|l| l.trim().to_string())
        .collect()
}

fn granted(sandbox: &SandboxHandle, tenant: &str) -> (bool, Option<Vec<String>>) {
    sandbox.with_world(|w| {
        let dir = &w.tenants[tenant];
        (dir.consent, dir.permissions.clone())
    })
}

#[test]
fn a_partner_engineer_consents_for_a_customer_through_gdap() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "");
    let both = engineer(
        &sandbox,
        scratch.path(),
        &[CLOUD_APP_ADMIN, PRIVILEGED_ROLE_ADMIN],
    );
    let t0 = ["--tenant", "t0"];

    // Before: the app cannot get a token in t0 (no service principal): consent needed.
    let run = tf(
        &sandbox,
        dir.path(),
        &["plan", ".", "--tenant", "t0"],
        &app(),
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.transcript().contains(&format!(
            "{}/{}/v2.0/adminconsent?client_id={SANDBOX_CLIENT_ID}",
            sandbox.base_url(),
            FLEET_IDS[0]
        )),
        "consent needed, with its URL: {}",
        run.transcript()
    );
    assert!(!run.stdout.contains("+ consent."), "{}", run.stdout);

    // The engineer's plan shows the consent t0 needs, each grant with why.
    let args = [
        &["plan", ".", "--auth", "azure-cli", "--detailed-exitcode"][..],
        &t0,
    ]
    .concat();
    let run = tf(&sandbox, dir.path(), &args, &both);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert_eq!(
        consent_lines(&run),
        vec![
            "+ consent.t0  (service principal; tenantform's app is not in this tenant: its service principal holds the grants)",
            "+ consent.t0.User.Read.All  (app role assignment User.Read.All; needed for reading)",
            "+ consent.t0.RoleManagement.Read.Directory  (app role assignment RoleManagement.Read.Directory; needed for reading)",
            "+ consent.t0.User.Invite.All  (app role assignment User.Invite.All; needed for guests)",
        ],
        "{}",
        run.stdout
    );
    assert_eq!(
        granted(&sandbox, FLEET_IDS[0]),
        (false, None),
        "a plan changes nothing"
    );

    // Apply: the service principal and the three grants, then Dana's invitation.
    let args = [
        &["apply", ".", "--auth", "azure-cli", "--auto-approve"][..],
        &t0,
    ]
    .concat();
    let run = tf(&sandbox, dir.path(), &args, &both);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("consent.t0.User.Invite.All: created"),
        "{}",
        run.stdout
    );
    assert_eq!(
        granted(&sandbox, FLEET_IDS[0]),
        (
            true,
            Some(vec![
                "User.Read.All".to_string(),
                "RoleManagement.Read.Directory".into(),
                "User.Invite.All".into()
            ])
        )
    );
    // Graph lists them as app role assignments of tenantform's principal (read here in the
    // engineer's name: the app itself was not granted Application.Read.All).
    let assigned = crate::support::block_on(async {
        let http = reqwest::Client::new();
        let token: serde_json::Value = http
            .post(format!(
                "{}/_sandbox/tenants/{}/delegated-token",
                sandbox.base_url(),
                FLEET_IDS[0]
            ))
            .json(
                &json!({"user": ENGINEER, "partnerTenant": SANDBOX_PARTNER_TENANT_ID,
                          "roles": [CLOUD_APP_ADMIN], "scopes": ["Application.Read.All"]}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let get = |path: String| {
            http.get(format!("{}{path}", sandbox.graph_url()))
                .bearer_auth(token["accessToken"].as_str().unwrap())
                .send()
        };
        let graph: serde_json::Value = get(format!(
            "/servicePrincipals?$filter=appId eq '{}'&$select=id,appId",
            tenantform::consent::GRAPH_APP_ID
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let graph = graph["value"][0]["id"].as_str().unwrap().to_string();
        let app: serde_json::Value =
            get(format!("/servicePrincipals(appId='{SANDBOX_CLIENT_ID}')"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let list: serde_json::Value = get(format!("/servicePrincipals/{graph}/appRoleAssignedTo"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                assert_eq!(a["principalId"], app["id"]);
                assert_eq!(a["resourceId"], graph.as_str());
                a["appRoleId"].as_str().unwrap().to_string()
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(
        assigned,
        vec![
            "df021288-bdef-4463-88db-98f22de89214", // User.Read.All
            "483bed4a-2ad3-4361-a73b-c83ccdbdc53c", // RoleManagement.Read.Directory
            "09850681-111b-4a89-9bed-3f2cae46d706", // User.Invite.All
        ]
    );

    // The app's own credential now reads t0, and nothing is left to do; nothing about consent.
    let run = tf(
        &sandbox,
        dir.path(),
        &["plan", ".", "--tenant", "t0", "--detailed-exitcode"],
        &app(),
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(!run.stdout.contains("consent"), "{}", run.stdout);
    // The engineer's plan is empty too, and applying again creates nothing.
    let args = [
        &["plan", ".", "--auth", "azure-cli", "--detailed-exitcode"][..],
        &t0,
    ]
    .concat();
    let run = tf(&sandbox, dir.path(), &args, &both);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(consent_lines(&run).is_empty(), "{}", run.stdout);
    let args = [
        &["apply", ".", "--auth", "azure-cli", "--auto-approve"][..],
        &t0,
    ]
    .concat();
    let run = tf(&sandbox, dir.path(), &args, &both);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(!run.stdout.contains("created"), "{}", run.stdout);

    // A kind declared later needs a new permission: one new grant is planned, and made.
    manifests(
        dir.path(),
        "---\nkind: RoleAssignment\nname: dana-helpdesk\nprincipal: { guest: dana }\ndirectoryRoles: [Helpdesk Administrator]\n",
    );
    let args = [&["plan", ".", "--auth", "azure-cli"][..], &t0].concat();
    let run = tf(&sandbox, dir.path(), &args, &both);
    assert_eq!(
        consent_lines(&run),
        vec![
            "+ consent.t0.RoleManagement.ReadWrite.Directory  (app role assignment RoleManagement.ReadWrite.Directory; needed for directory roles)"
        ],
        "{}",
        run.transcript()
    );
    let args = [
        &["apply", ".", "--auth", "azure-cli", "--auto-approve"][..],
        &t0,
    ]
    .concat();
    let run = tf(&sandbox, dir.path(), &args, &both);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let run = tf(
        &sandbox,
        dir.path(),
        &["plan", ".", "--tenant", "t0", "--detailed-exitcode"],
        &app(),
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn an_application_administrator_cannot_grant_microsoft_graph_permissions() {
    let sandbox = SandboxHandle::start(&fixture(), Default::default()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    manifests(dir.path(), "");
    let only_apps = engineer(&sandbox, scratch.path(), &[CLOUD_APP_ADMIN]);
    let run = tf(
        &sandbox,
        dir.path(),
        &[
            "apply",
            ".",
            "--auth",
            "azure-cli",
            "--auto-approve",
            "--tenant",
            "t0",
        ],
        &only_apps,
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    // The service principal was created (Cloud Application Administrator may); the grants
    // were refused, naming the role the engineer lacks and the tenant.
    assert!(run.stdout.contains("consent.t0: created"), "{}", run.stdout);
    assert_eq!(granted(&sandbox, FLEET_IDS[0]), (true, Some(Vec::new())));
    let refused = run
        .stderr
        .lines()
        .find(|l| l.starts_with("  t0 (Customer 0 Ltd): consent: "))
        .unwrap_or_else(|| panic!("{}", run.transcript()));
    assert!(
        refused.contains("permission missing: consent.t0.User.Read.All: directory role Privileged Role Administrator (or Global Administrator) for the signed-in person"),
        "{refused}"
    );
    // Only the first grant was tried: the tenant stops at its first failure.
    let grants = sandbox.with_world(|w| {
        w.requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/appRoleAssignedTo"))
            .count()
    });
    assert_eq!(grants, 1);
    // Without any application role, not even the service principal is made.
    let none = engineer(&sandbox, scratch.path(), &["Helpdesk Administrator"]);
    let run = tf(
        &sandbox,
        dir.path(),
        &[
            "apply",
            ".",
            "--auth",
            "azure-cli",
            "--auto-approve",
            "--tenant",
            "t1",
        ],
        &none,
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("permission missing: consent.t1: directory role Cloud Application Administrator (or Application Administrator, Global Administrator) for the signed-in person"),
        "{}",
        run.transcript()
    );
    assert_eq!(granted(&sandbox, FLEET_IDS[1]), (false, None));

    // Someone with both roles finishes t0's consent later: the principal is found, not made
    // again; only the grants are planned and made, once each.
    let both = engineer(
        &sandbox,
        scratch.path(),
        &[CLOUD_APP_ADMIN, PRIVILEGED_ROLE_ADMIN],
    );
    let run = tf(
        &sandbox,
        dir.path(),
        &[
            "apply",
            ".",
            "--auth",
            "azure-cli",
            "--auto-approve",
            "--tenant",
            "t0",
        ],
        &both,
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        consent_lines(&run),
        vec![
            "+ consent.t0.User.Read.All  (app role assignment User.Read.All; needed for reading)",
            "+ consent.t0.RoleManagement.Read.Directory  (app role assignment RoleManagement.Read.Directory; needed for reading)",
            "+ consent.t0.User.Invite.All  (app role assignment User.Invite.All; needed for guests)",
        ],
        "{}",
        run.stdout
    );
    let posts = |suffix: &str| {
        sandbox.with_world(|w| {
            w.requests
                .iter()
                .filter(|r| r.method == "POST" && r.status < 300 && r.path.ends_with(suffix))
                .count()
        })
    };
    assert_eq!(
        (posts("/servicePrincipals"), posts("/appRoleAssignedTo")),
        (1, 3)
    );
}

/// An app-only token for `tenant` from the sandbox's token endpoint.
async fn app_token(sandbox: &SandboxHandle, tenant: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sandbox.base_url()))
        .form(&[
            ("client_id", SANDBOX_CLIENT_ID),
            ("client_secret", SANDBOX_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

#[test]
fn service_principal_endpoints_check_permissions_and_validate_like_graph() {
    let mut f = fixture();
    f.tenants[1].consent = true;
    f.tenants[1].permissions = Some(vec!["User.Read.All".into()]);
    f.tenants[2].consent = true;
    f.tenants[2].permissions = Some(vec![
        "Application.ReadWrite.All".into(),
        "AppRoleAssignment.ReadWrite.All".into(),
    ]);
    let sandbox = SandboxHandle::start(&f, Default::default()).unwrap();
    let graph_url = sandbox.graph_url().to_string();
    crate::support::block_on(async {
        let http = reqwest::Client::new();
        let call = |token: String,
                    method: reqwest::Method,
                    path: String,
                    body: Option<serde_json::Value>| {
            let mut request = http
                .request(method, format!("{graph_url}{path}"))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                (status, body)
            }
        };
        let get = reqwest::Method::GET;
        let post = reqwest::Method::POST;
        // Without Application.Read.All (or higher) service principals are not listed.
        let reader = app_token(&sandbox, FLEET_IDS[0]).await;
        let (status, body) = call(reader, get.clone(), "/servicePrincipals".into(), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("Authorization_RequestDenied"))
        );

        let admin = app_token(&sandbox, FLEET_IDS[1]).await;
        let (status, body) = call(
            admin.clone(),
            get.clone(),
            format!(
                "/servicePrincipals?$filter=appId eq '{}'",
                tenantform::consent::GRAPH_APP_ID
            ),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let graph = &body["value"][0];
        assert_eq!(body["value"].as_array().unwrap().len(), 1);
        assert!(
            graph["appRoles"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["value"] == "User.Read.All"
                    && r["id"] == "df021288-bdef-4463-88db-98f22de89214")
        );
        let graph_id = graph["id"].as_str().unwrap().to_string();
        let (status, app) = call(
            admin.clone(),
            get.clone(),
            format!("/servicePrincipals(appId='{SANDBOX_CLIENT_ID}')"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let grant = |role: &str| json!({"principalId": app["id"], "resourceId": graph_id, "appRoleId": role});
        let path = format!("/servicePrincipals/{graph_id}/appRoleAssignedTo");
        // An app role Graph does not define; a mismatched resource; a repeated grant.
        let (status, body) = call(
            admin.clone(),
            post.clone(),
            path.clone(),
            Some(grant("00000000-0000-4000-8000-000000000000")),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("Request_BadRequest"))
        );
        let mut wrong = grant("df021288-bdef-4463-88db-98f22de89214");
        wrong["resourceId"] = json!(app["id"]);
        let (status, _) = call(admin.clone(), post.clone(), path.clone(), Some(wrong)).await;
        assert_eq!(status, 400);
        let (status, made) = call(
            admin.clone(),
            post.clone(),
            path.clone(),
            Some(grant("df021288-bdef-4463-88db-98f22de89214")),
        )
        .await;
        assert_eq!(status, 201, "{made}");
        assert_eq!(made["principalType"], "ServicePrincipal");
        let (status, body) = call(
            admin.clone(),
            post.clone(),
            path.clone(),
            Some(grant("df021288-bdef-4463-88db-98f22de89214")),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already exists")
        );
        // The next token carries the grant in `roles`; removing it removes it from the next.
        let token = app_token(&sandbox, FLEET_IDS[1]).await;
        let (status, _) = call(token.clone(), get.clone(), "/users".into(), None).await;
        assert_eq!(status, 200);
        let (status, _) = call(
            admin.clone(),
            reqwest::Method::DELETE,
            format!("{path}/{}", made["id"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(status, 204);
        let token = app_token(&sandbox, FLEET_IDS[1]).await;
        let (status, _) = call(token, get.clone(), "/users".into(), None).await;
        assert_eq!(status, 403);
        // A principal that exists already; an app id no application has.
        let (status, _) = call(
            admin.clone(),
            post.clone(),
            "/servicePrincipals".into(),
            Some(json!({"appId": SANDBOX_CLIENT_ID})),
        )
        .await;
        assert_eq!(status, 409);
        let (status, body) = call(
            admin,
            post.clone(),
            "/servicePrincipals".into(),
            Some(json!({"appId": "9d0c0000-0000-4000-8000-000000000000"})),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("Request_BadRequest"))
        );
    });
}
