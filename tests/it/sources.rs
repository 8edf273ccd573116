//! Live reads per source: a source a tenant's app may not read, or that Graph fails, blocks
//! only the kinds that need it in that tenant; the rest of the tenant and the other tenants
//! are planned and applied, and the run still exits 1 naming the tenant, source and cause.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tenantform::graph::sources::for_kinds;
use tenantform::graph::{GraphClient, RetryPolicy};
use tenantform::live::{LiveTenant, SourceStatus, source};
use tenantform::outcome::Cause;
use tenantform::sandbox::faults::PathFault;
use tenantform::sandbox::fixture::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET};
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};

use crate::support::{FLEET_IDS, guests_in_world, run_in, three_tenant_fleet};

fn run(dir: &Path, args: &[&str]) -> crate::support::Run {
    run_in(dir, args, None)
}

/// The role definition id of every role assignment of `tenant` in the sandbox world
/// kept under `dir/.tenantform`.
fn roles_in_world(dir: &Path, tenant: &str) -> Vec<String> {
    crate::support::world_items(dir, tenant, "roleAssignments", |a| {
        Some(
            a["roleDefinitionId"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    })
}

fn addresses(plan: &Value, tenant: &str) -> Vec<String> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["tenant"] == tenant)
        .map(|a| a["address"].as_str().unwrap().to_string())
        .collect()
}

const HELPDESK_ADMIN: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

#[test]
fn a_tenant_without_role_read_gets_its_guests_applied_and_only_its_directory_roles_blocked() {
    // t1's app may list and invite users, but not read (or write) role assignments.
    let dir = three_tenant_fleet(|i, t| {
        if i == 1 {
            t["permissions"] = json!(["User.Read.All", "User.Invite.All"]);
        }
    });
    let d = dir.path().to_str().unwrap();
    let plan = run(dir.path(), &["plan", d, "--sandbox", "-o", "json"]);
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    let json: Value = serde_json::from_str(&plan.stdout).unwrap();
    let t1 = &json["tenants"][1];
    assert_eq!(
        (&t1["tenant"], &t1["status"], &t1["cause"], &t1["source"]),
        (
            &json!("t1"),
            &json!("failed"),
            &json!("permission-missing"),
            &json!("roleAssignments")
        ),
        "{t1}"
    );
    let message = t1["message"].as_str().unwrap();
    assert!(
        message.starts_with("RoleManagement.Read.Directory (or")
            && message.contains(FLEET_IDS[1])
            && message.contains("the app's token there has User.Read.All, User.Invite.All"),
        "{message}"
    );
    assert_eq!(t1["sources"]["guests"]["status"], "read", "{t1}");
    assert_eq!(t1["sources"]["roleAssignments"]["status"], "failed");
    // The guest is planned there; its directory role is not (neither created nor deleted).
    let t1_actions = addresses(&json, "t1");
    assert!(
        t1_actions.contains(&"guest.t1.dana".to_string()),
        "{t1_actions:?}"
    );
    assert!(
        !t1_actions.iter().any(|a| a.starts_with("directory_role.")),
        "{t1_actions:?}"
    );
    let not_read = json["notRead"].as_array().unwrap();
    assert_eq!(not_read.len(), 1, "{not_read:?}");
    assert_eq!(not_read[0]["tenant"], "t1");
    assert_eq!(not_read[0]["source"], "roleAssignments");
    assert_eq!(not_read[0]["kinds"], json!(["directory_role"]));
    // The other tenants plan everything.
    for t in ["t0", "t2"] {
        let actions = addresses(&json, t);
        assert!(
            actions.iter().any(|a| a.starts_with("directory_role.")),
            "{t}: {actions:?}"
        );
    }
    assert!(
        plan.stderr.contains(
            "t1 (Customer 1 Ltd): roleAssignments: permission missing: RoleManagement.Read.Directory (or"
        ),
        "{}",
        plan.stderr
    );
    let text = run(dir.path(), &["--color", "never", "plan", d, "--sandbox"]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("Partly planned (1 tenant):")
            && text.stdout.contains(
                "t1 (Customer 1 Ltd): directory_role not planned: roleAssignments: permission missing"
            ),
        "{}",
        text.stdout
    );

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
                .contains("t1 (Customer 1 Ltd): roleAssignments: permission missing"),
        "{}",
        apply.stderr
    );
    // Dana is invited everywhere; the role is given only where it could be planned.
    for id in FLEET_IDS {
        assert_eq!(
            guests_in_world(dir.path(), id),
            ["dana@msp.example"],
            "{id}"
        );
    }
    for id in [FLEET_IDS[0], FLEET_IDS[2]] {
        assert!(roles_in_world(dir.path(), id).contains(&HELPDESK_ADMIN.to_string()));
    }
    assert!(!roles_in_world(dir.path(), FLEET_IDS[1]).contains(&HELPDESK_ADMIN.to_string()));

    // Nothing else is left to do, but t1's roles are still not planned: still 1.
    let again = run(dir.path(), &["plan", d, "--sandbox", "-o", "json"]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    let json: Value = serde_json::from_str(&again.stdout).unwrap();
    let changing: Vec<&str> = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] != "no-op" && a["blocked"].is_null())
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert!(changing.is_empty(), "{changing:?}");
    assert_eq!(json["tenants"][1]["status"], "failed");

    // Drift says the same: t1 failed (its roles could not be checked), exit 1.
    let drift = run(dir.path(), &["drift", d, "--sandbox", "-o", "json"]);
    assert_eq!(drift.code, 1, "{}", drift.stderr);
    let report: Value = serde_json::from_str(&drift.stdout).unwrap();
    let t1 = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "t1")
        .unwrap();
    assert_eq!(t1["outcome"]["status"], "failed", "{t1}");
    assert_eq!(t1["outcome"]["source"], "roleAssignments");
}

#[test]
fn a_source_graph_fails_in_one_tenant_leaves_other_tenants_and_kinds_planned() {
    let dir = three_tenant_fleet(|_, _| {});
    let d = dir.path().to_str().unwrap();
    // Inside the tenants' batches: t1's role assignments answer 403 (the token does hold the
    // permission: Graph's error), t2's guests answer 501.
    let faults = format!(
        "fail=403:/roleManagement/directory/roleAssignments@{},fail=501:/users@{}",
        FLEET_IDS[1], FLEET_IDS[2]
    );
    let plan = run(
        dir.path(),
        &[
            "plan",
            d,
            "--sandbox",
            "--sandbox-faults",
            &faults,
            "--detailed-exitcode",
            "-o",
            "json",
        ],
    );
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    let json: Value = serde_json::from_str(&plan.stdout).unwrap();
    let outcome = |i: usize| &json["tenants"][i];
    assert_eq!(outcome(0)["status"], "changes");
    assert_eq!(
        outcome(0)["sources"],
        json!({
            "guests": {"status": "read"},
            "roleAssignments": {"status": "read"},
            "roleEligibility": {"status": "not-checked",
                "reason": outcome(0)["sources"]["roleEligibility"]["reason"]},
            "groupMembers": {"status": "read"},
        })
    );
    // t1: the 403 is Graph's error (the token has the permission), guests are planned.
    assert_eq!(outcome(1)["status"], "failed");
    assert_eq!(outcome(1)["cause"], "graph-error");
    assert_eq!(outcome(1)["source"], "roleAssignments");
    assert_eq!(outcome(1)["code"], "Authorization_RequestDenied");
    assert_eq!(outcome(1)["sources"]["guests"]["status"], "read");
    let failed = &outcome(1)["sources"]["roleAssignments"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["cause"], "graph-error");
    assert!(failed["requestId"].is_string(), "{failed}");
    let t1 = addresses(&json, "t1");
    assert!(t1.contains(&"guest.t1.dana".to_string()), "{t1:?}");
    assert!(
        !t1.iter().any(|a| a.starts_with("directory_role.")),
        "{t1:?}"
    );
    // t2: no guests, so neither guests nor directory roles (found by the guest's object id)
    // are planned; the MSP role waits for its guest.
    assert_eq!(outcome(2)["status"], "failed");
    assert_eq!(outcome(2)["source"], "guests");
    assert!(
        outcome(2)["message"].as_str().unwrap().contains("501"),
        "{}",
        outcome(2)
    );
    assert_eq!(outcome(2)["sources"]["roleAssignments"]["status"], "read");
    let t2 = addresses(&json, "t2");
    assert!(
        !t2.iter()
            .any(|a| a.starts_with("guest.") || a.starts_with("directory_role.")),
        "{t2:?}"
    );
    let msp = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"].as_str().unwrap().starts_with("msp_role.t2."))
        .unwrap();
    assert_eq!(msp["reason"], "waits-for-dependency", "{msp}");
    let kinds: Vec<(&str, &str, &Value)> = json["notRead"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["tenant"].as_str().unwrap(),
                n["source"].as_str().unwrap(),
                &n["kinds"],
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("t1", "roleAssignments", &json!(["directory_role"])),
            ("t2", "guests", &json!(["guest", "directory_role"])),
        ]
    );
    // t0 is planned completely.
    let t0 = addresses(&json, "t0");
    assert!(
        t0.contains(&"guest.t0.dana".to_string())
            && t0.iter().any(|a| a.starts_with("directory_role.t0.")),
        "{t0:?}"
    );
}

/// Through tenantform's reader (real HTTP to the sandbox): an inner 503 that stays a 503 after
/// the client's retries fails that source only; a whole tenant fails only when nothing a kind
/// needs can be read (no permission for any, or every request failed).
#[test]
fn the_reader_gives_each_source_its_own_status() {
    const T0: &str = "11111111-1111-4111-8111-111111111111";
    const T1: &str = "22222222-2222-4222-8222-222222222222";
    const T2: &str = "33333333-3333-4333-8333-333333333333";
    let fixture = Fixture::parse(
        &json!({
            "apps": [{"clientId": SANDBOX_CLIENT_ID, "clientSecret": SANDBOX_CLIENT_SECRET}],
            "tenants": [
                {"id": T0, "displayName": "C0", "domain": "c0.onmicrosoft.com",
                 "users": [{"id": "aaaaaaaa-0000-4000-8000-000000000001", "displayName": "Ada",
                            "mail": "ada@c0.example"}]},
                {"id": T1, "displayName": "C1", "domain": "c1.onmicrosoft.com",
                 "permissions": ["Organization.Read.All"]},
                {"id": T2, "displayName": "C2", "domain": "c2.onmicrosoft.com"},
            ],
        })
        .to_string(),
    )
    .unwrap();
    let fail = |status: u16, path: &str, tenant: &str| PathFault {
        status,
        path: path.into(),
        tenant: Some(tenant.into()),
    };
    let faults = Faults {
        fail: vec![
            fail(503, "/roleManagement/directory/roleAssignments", T0),
            fail(501, "/roleManagement/directory/roleAssignments", T2),
            fail(501, "/users", T2),
        ],
        ..Faults::default()
    };
    let sandbox = SandboxHandle::start(&fixture, faults).unwrap();
    let config = sandbox.graph_config();
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    let client = GraphClient::new(config, retry).unwrap();
    let tenants = [("t0", T0), ("t1", T1), ("t2", T2)]
        .into_iter()
        .map(|(name, id)| tenantform::graph::read::TenantToRead {
            name: name.into(),
            microsoft_tenant_id: id.into(),
        })
        .collect();
    let snapshot = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(tenantform::graph::read::read_tenants(
            &client,
            tenants,
            &for_kinds(tenantform::resources::KINDS),
            3,
            "https://localhost",
            None,
        ));
    let LiveTenant::Read(dir) = &snapshot.tenants["t0"] else {
        panic!("t0 is read: {:?}", snapshot.tenants["t0"]);
    };
    assert!(dir.is_read(source::GUESTS));
    assert_eq!(dir.guests.len(), 0, "Ada is a member, not a guest");
    let Some(SourceStatus::Failed(f)) = dir.sources.get(source::ROLE_ASSIGNMENTS) else {
        panic!("{:?}", dir.sources);
    };
    assert_eq!(f.cause, Cause::GraphError);
    assert_eq!(f.source.as_deref(), Some(source::ROLE_ASSIGNMENTS));
    assert_eq!(f.code.as_deref(), Some("serviceNotAvailable"));
    assert!(snapshot.tenants["t0"].is_failed());
    // Report-only sources never fail a tenant: no P2 is "not checked".
    assert!(matches!(
        dir.sources.get(source::ROLE_ELIGIBILITY),
        Some(SourceStatus::NotChecked { .. })
    ));
    assert_eq!(
        dir.failed_sources().map(|(n, _)| n).collect::<Vec<_>>(),
        [source::ROLE_ASSIGNMENTS]
    );
    // The 503 was retried inside later batches before it counted.
    let tries = sandbox
        .requests()
        .iter()
        .filter(|r| r.in_batch && r.path.contains("roleAssignments") && r.status == 503)
        .count();
    assert_eq!(tries, 2);
    // t1 may read neither guests nor role assignments: the tenant is not read, as before.
    let LiveTenant::Failed(f) = &snapshot.tenants["t1"] else {
        panic!("t1 fails: {:?}", snapshot.tenants["t1"]);
    };
    assert_eq!(f.cause, Cause::PermissionMissing);
    assert_eq!(f.source, None);
    assert!(
        f.message.starts_with("User.Read.All (or")
            && f.message.contains("RoleManagement.Read.Directory (or"),
        "{}",
        f.message
    );
}
