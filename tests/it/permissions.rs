//! Permissions per request: the sandbox refuses what the tenant did not grant (as Graph does,
//! inside `$batch` too), and tenantform names the missing permission for that tenant only.

use serde_json::{Value, json};
use tenantform::sandbox::fixture::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET};
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};

use crate::support::{guests_in_world, run_in, three_tenant_fleet, write_tree};

const T0: &str = "11111111-1111-4111-8111-111111111111";
const T1: &str = "22222222-2222-4222-8222-222222222222";
const T2: &str = "33333333-3333-4333-8333-333333333333";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const ADMIN_ID: &str = "aaaaaaaa-0000-4000-8000-000000000001";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A sandbox whose one tenant granted `permissions` (and the app holds `app_roles` there).
fn sandbox(permissions: Option<&[&str]>, app_roles: &[&str], b2b: bool) -> SandboxHandle {
    let fixture = Fixture::parse(
        &json!({
            "apps": [{"clientId": SANDBOX_CLIENT_ID, "clientSecret": SANDBOX_CLIENT_SECRET}],
            "tenants": [{
                "id": T0, "displayName": "Customer 0 Ltd", "domain": "c0.onmicrosoft.com",
                "permissions": permissions,
                "appDirectoryRoles": app_roles,
                "b2bInvitations": b2b,
                "users": [
                    {"id": ADMIN_ID, "displayName": "Ada Admin", "mail": "ada@c0.example"},
                    {"id": "bbbbbbbb-0000-4000-8000-000000000002", "displayName": "Bo", "mail": "bo@c0.example"},
                ],
                "roleAssignments": [{"principalId": ADMIN_ID, "roleDefinitionId": GLOBAL_ADMIN}],
            }],
        })
        .to_string(),
    )
    .unwrap();
    SandboxHandle::start(&fixture, Faults::default()).unwrap()
}

use crate::support::RawGraph as Graph;

fn invitation() -> Value {
    json!({"invitedUserEmailAddress": "dana@msp.example", "inviteRedirectUrl": "https://myapps.microsoft.com"})
}

/// Every endpoint, with a token that has only `User.Read.All`: reads of users pass, the rest
/// is 403 Authorization_RequestDenied in Graph's body shape, alone and inside `$batch`.
#[test]
fn every_endpoint_checks_the_granted_permission_also_inside_batch() {
    let sandbox = sandbox(Some(&["User.Read.All"]), &[], true);
    runtime().block_on(async {
        let graph = Graph::connect(&sandbox, T0).await;
        assert_eq!(graph.roles(), ["User.Read.All"]);
        let denied = [
            ("POST", "/invitations".to_string(), Some(invitation())),
            (
                "PATCH",
                format!("/users/{ADMIN_ID}"),
                Some(json!({"displayName": "X"})),
            ),
            ("DELETE", format!("/users/{ADMIN_ID}"), None),
            (
                "GET",
                "/roleManagement/directory/roleAssignments".to_string(),
                None,
            ),
            (
                "GET",
                "/roleManagement/directory/roleDefinitions".to_string(),
                None,
            ),
            (
                "POST",
                "/roleManagement/directory/roleAssignments".to_string(),
                Some(
                    json!({"principalId": ADMIN_ID, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"}),
                ),
            ),
            ("GET", "/contracts".to_string(), None),
            ("GET", "/organization".to_string(), None),
            ("POST", "/directory/deletedItems/x/restore".to_string(), None),
        ];
        for (method, path, body) in &denied {
            let (status, answer) = graph.send(method, path, body.clone()).await;
            assert_eq!(status, 403, "{method} {path}: {answer}");
            assert_eq!(answer["error"]["code"], "Authorization_RequestDenied");
            assert_eq!(
                answer["error"]["message"],
                "Insufficient privileges to complete the operation."
            );
            assert!(answer["error"]["innerError"]["request-id"].is_string());
        }
        for path in [
            "/users".to_string(),
            format!("/users/{ADMIN_ID}"),
            "/directory/deletedItems/microsoft.graph.user".to_string(),
        ] {
            let (status, answer) = graph.send("GET", &path, None).await;
            assert_eq!(status, 200, "GET {path}: {answer}");
        }
        // Inside $batch: each inner request on its own.
        let (status, answer) = graph
            .send(
                "POST",
                "/$batch",
                Some(json!({"requests": [
                    {"id": "1", "method": "GET", "url": "/users"},
                    {"id": "2", "method": "GET", "url": "/roleManagement/directory/roleAssignments"},
                    {"id": "3", "method": "POST", "url": "/invitations", "body": invitation(),
                     "headers": {"Content-Type": "application/json"}},
                ]})),
            )
            .await;
        assert_eq!(status, 200);
        let statuses: Vec<(String, u64)> = answer["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap().into(), r["status"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            statuses,
            [("1".into(), 200), ("2".into(), 403), ("3".into(), 403)]
        );
        assert_eq!(
            answer["responses"][1]["body"]["error"]["code"],
            "Authorization_RequestDenied"
        );
    });
    // Refused requests are in the request log too.
    let log = sandbox.requests();
    assert!(
        log.iter()
            .any(|r| r.path == "/v1.0/invitations" && r.status == 403 && !r.in_batch)
    );
    assert!(
        log.iter()
            .any(|r| r.path == "/v1.0/invitations" && r.status == 403 && r.in_batch)
    );
}

#[test]
fn a_higher_permission_is_accepted() {
    let sandbox = sandbox(Some(&["Directory.ReadWrite.All"]), &[], true);
    runtime().block_on(async {
        let graph = Graph::connect(&sandbox, T0).await;
        for (method, path, body, expected) in [
            ("POST", "/invitations", Some(invitation()), 201),
            ("GET", "/users", None, 200),
            (
                "GET",
                "/roleManagement/directory/roleAssignments",
                None,
                200,
            ),
            ("GET", "/contracts", None, 200),
            ("GET", "/organization", None, 200),
        ] {
            let (status, answer) = graph.send(method, path, body).await;
            assert_eq!(status, expected, "{method} {path}: {answer}");
        }
        // Directory.ReadWrite.All does not assign roles: RoleManagement.ReadWrite.Directory only.
        let (status, _) = graph
            .send(
                "POST",
                "/roleManagement/directory/roleAssignments",
                Some(json!({"principalId": ADMIN_ID, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"})),
            )
            .await;
        assert_eq!(status, 403);
    });
}

#[test]
fn deleting_a_global_administrator_needs_a_privileged_app_role() {
    let sandbox = sandbox(Some(&["User.ReadWrite.All"]), &[], true);
    runtime().block_on(async {
        let graph = Graph::connect(&sandbox, T0).await;
        let (status, answer) = graph
            .send("DELETE", &format!("/users/{ADMIN_ID}"), None)
            .await;
        assert_eq!(status, 403, "{answer}");
        assert_eq!(answer["error"]["code"], "Authorization_RequestDenied");
        let (status, answer) = graph
            .send(
                "PATCH",
                &format!("/users/{ADMIN_ID}"),
                Some(json!({"accountEnabled": false})),
            )
            .await;
        assert_eq!(status, 403, "{answer}");
        // A non-sensitive property, and a user without a role: fine.
        let (status, _) = graph
            .send(
                "PATCH",
                &format!("/users/{ADMIN_ID}"),
                Some(json!({"displayName": "Ada A."})),
            )
            .await;
        assert_eq!(status, 204);
        let (status, _) = graph
            .send(
                "DELETE",
                "/users/bbbbbbbb-0000-4000-8000-000000000002",
                None,
            )
            .await;
        assert_eq!(status, 204);
    });
    // With Privileged Authentication Administrator, the app may.
    let sandbox = self::sandbox(
        Some(&["User.ReadWrite.All"]),
        &["Privileged Authentication Administrator"],
        true,
    );
    runtime().block_on(async {
        let graph = Graph::connect(&sandbox, T0).await;
        let (status, answer) = graph
            .send("DELETE", &format!("/users/{ADMIN_ID}"), None)
            .await;
        assert_eq!(status, 204, "{answer}");
    });
}

#[test]
fn invitations_disabled_in_the_tenant_fail_app_only_invitations() {
    let sandbox = sandbox(None, &[], false);
    runtime().block_on(async {
        let graph = Graph::connect(&sandbox, T0).await;
        assert!(graph.roles().contains(&"User.ReadWrite.All".to_string()));
        let (status, answer) = graph.send("POST", "/invitations", Some(invitation())).await;
        assert_eq!(status, 403, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Guest invitations not allowed"),
            "{answer}"
        );
    });
}

#[test]
fn granted_permissions_survive_the_world_round_trip() {
    let text = json!({"tenants": [{"id": T0, "displayName": "C", "domain": "c.onmicrosoft.com",
        "permissions": ["User.Read.All"], "appDirectoryRoles": ["Global Administrator"],
        "b2bInvitations": false}]})
    .to_string();
    let world = tenantform::sandbox::World::new(&Fixture::parse(&text).unwrap(), Faults::default());
    let saved = serde_json::to_value(world.to_fixture()).unwrap();
    assert_eq!(saved["tenants"][0]["permissions"], json!(["User.Read.All"]));
    assert_eq!(
        saved["tenants"][0]["appDirectoryRoles"],
        json!(["Global Administrator"])
    );
    assert_eq!(saved["tenants"][0]["b2bInvitations"], false);
    // Without the field: every permission of the app, and nothing extra is written.
    let plain = json!({"tenants": [{"id": T0, "displayName": "C", "domain": "c.onmicrosoft.com"}]})
        .to_string();
    let world =
        tenantform::sandbox::World::new(&Fixture::parse(&plain).unwrap(), Faults::default());
    let saved = serde_json::to_value(world.to_fixture()).unwrap();
    assert!(saved["tenants"][0].get("permissions").is_none(), "{saved}");
}

const MISSING_INVITE: &str = "permission missing: User.Invite.All (or User.ReadWrite.All, Directory.ReadWrite.All) in tenant 22222222-2222-4222-8222-222222222222";

#[test]
fn a_tenant_without_user_invite_all_fails_alone_and_the_run_exits_1() {
    let dir = three_tenant_fleet(|i, t| {
        if i == 1 {
            t["permissions"] = json!(["User.Read.All", "RoleManagement.ReadWrite.Directory"]);
        }
    });
    let d = dir.path().to_str().unwrap();
    let apply = run_in(
        dir.path(),
        &[
            "--color",
            "never",
            "apply",
            d,
            "--sandbox",
            "--auto-approve",
        ],
        None,
    );
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains("1 of 3 tenants are not as declared")
            && apply
                .stderr
                .contains(&format!("t1 (Customer 1 Ltd): {MISSING_INVITE}"))
            && apply.stderr.contains(
                "the app's token there has User.Read.All, RoleManagement.ReadWrite.Directory"
            ),
        "{}",
        apply.stderr
    );
    assert!(
        !apply.stderr.contains("consent missing"),
        "{}",
        apply.stderr
    );
    assert!(
        apply.stdout.contains("2 of 3 tenants done, 1 failed"),
        "{}",
        apply.stdout
    );
    for id in [T0, T2] {
        assert_eq!(guests_in_world(dir.path(), id), ["dana@msp.example"]);
    }
    assert!(guests_in_world(dir.path(), T1).is_empty());
    // The world keeps the tenant's grant.
    let world: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".tenantform/sandbox-world.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        world["tenants"][1]["permissions"],
        json!(["User.Read.All", "RoleManagement.ReadWrite.Directory"])
    );

    // auth check names the missing permission for that tenant only, and exits 1.
    let check = run_in(
        dir.path(),
        &["auth", "check", d, "--sandbox", "--output", "json"],
        None,
    );
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    let rows: Vec<Value> = serde_json::from_str(&check.stdout).unwrap();
    let missing: Vec<Value> = rows
        .iter()
        .map(|r| r["permissionsMissing"].clone())
        .collect();
    assert_eq!(
        missing,
        [
            json!([]),
            json!(["User.Invite.All (or User.ReadWrite.All, Directory.ReadWrite.All)"]),
            json!([])
        ]
    );
    assert_eq!(rows[1]["tokenOk"], true);
    assert!(
        rows[1]["permissionsNeeded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["for"] == "guests" && n["anyOf"][0] == "User.Invite.All"),
        "{}",
        rows[1]
    );
    let text = run_in(dir.path(), &["auth", "check", d, "--sandbox"], None);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains(
            "permission missing: User.Invite.All (or User.ReadWrite.All, Directory.ReadWrite.All)"
        ),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("sandbox-only-secret"));
}

#[test]
fn plan_names_the_read_permissions_a_tenant_lacks_without_sending_the_read() {
    let sandbox = crate::support::StandaloneSandbox::start(2);
    let ids = [
        tenantform::synthetic::synthetic_guid(0),
        tenantform::synthetic::synthetic_guid(1),
    ];
    let http = reqwest::Client::new();
    let rt = runtime();
    let put: Value = rt.block_on(async {
        let answer = http
            .put(format!(
                "{}/_sandbox/tenants/{}/permissions",
                sandbox.base, ids[1]
            ))
            .json(&json!({"permissions": ["User.Invite.All"]}))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
        answer.json().await.unwrap()
    });
    assert_eq!(put["permissions"], json!(["User.Invite.All"]));
    let dir = tempfile::tempdir().unwrap();
    let mut manifests = String::new();
    for (i, id) in ids.iter().enumerate() {
        manifests.push_str(&format!(
            "kind: Tenant\nname: t{i}\ndisplayName: Customer {i} Ltd\nmicrosoftTenantId: {id}\n---\n"
        ));
    }
    manifests.push_str("kind: GuestUser\nname: dana\nemail: dana@msp.example\ntenants: [t0, t1]\n");
    write_tree(dir.path(), &[("fleet.yaml", &manifests)]);
    let mut cmd = crate::support::command();
    cmd.current_dir(dir.path())
        .args(["plan", ".", "-o", "json"]);
    cmd.envs(sandbox.partner_env());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["tenants"][0]["status"], "changes", "{plan}");
    assert_eq!(plan["tenants"][1]["status"], "failed");
    assert_eq!(plan["tenants"][1]["cause"], "permission-missing");
    let message = plan["tenants"][1]["message"].as_str().unwrap();
    assert!(
        message.starts_with("User.Read.All (or")
            && message.contains("RoleManagement.Read.Directory (or")
            && message.contains("the app's token there has User.Invite.All"),
        "{message}"
    );
    // The token was fetched, the read was not sent.
    let log: Vec<Value> = rt.block_on(async {
        http.get(format!("{}/_sandbox/requests", sandbox.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let t1 = ids[1].to_lowercase();
    let sent: Vec<&str> = log
        .iter()
        .filter(|r| r["tenant"] == t1.as_str())
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(sent.iter().all(|p| p.ends_with("/token")), "{sent:?}");
    assert!(!sent.is_empty());
}

/// GDAP relationships are managed in the partner tenant: `auth check` checks a token there and
/// the GDAP permission, and fails by name when the partner lacks it.
#[test]
fn auth_check_checks_the_partner_tenant_when_gdap_is_declared() {
    use crate::support::{FOGGY_TENANT_ID, tf};
    use tenantform::sandbox::fixture::SANDBOX_PARTNER_TENANT_ID;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_tree(
        d,
        &[(
            "m/fleet.yaml",
            &format!(
                "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY_TENANT_ID}\n---\n\
                 kind: GdapRelationship\nname: foggy-helpdesk\ntenants: [foggy-it]\n\
                 displayName: Foggy helpdesk\nroles: [Helpdesk Administrator]\n"
            ),
        )],
    );
    let m = d.join("m");
    let m = m.to_str().unwrap();
    assert_eq!(tf(d, &["plan", m]).code, 0, "the world is made");
    let check = |d| tf(d, &["auth", "check", "--sandbox", "--output", "json", m]);
    let ok = check(d);
    assert_eq!(ok.code, 0, "{}", ok.transcript());
    let rows: Vec<Value> = serde_json::from_str(&ok.stdout).unwrap();
    let partner = rows
        .iter()
        .find(|r| r["microsoftTenantId"] == SANDBOX_PARTNER_TENANT_ID)
        .unwrap_or_else(|| panic!("no partner row: {}", ok.stdout));
    assert_eq!(partner["tenant"], "(partner tenant)");
    assert_eq!(partner["permissionsNeeded"][0]["for"], "gdap", "{partner}");
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        t["permissions"] = json!(["Directory.Read.All"]);
    });
    let refused = tf(d, &["--color", "never", "auth", "check", "--sandbox", m]);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(
        refused.stdout.contains(
            "permission missing: DelegatedAdminRelationship.Read.All (or DelegatedAdminRelationship.ReadWrite.All)"
        ),
        "{}",
        refused.stdout
    );
    // Without GDAP in the selection, no partner row.
    write_tree(
        d,
        &[(
            "m/fleet.yaml",
            &format!("kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY_TENANT_ID}\n"),
        )],
    );
    let without = check(d);
    assert!(
        !without.stdout.contains("(partner tenant)"),
        "{}",
        without.stdout
    );
}
