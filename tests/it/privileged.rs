//! Privileged access nobody declared: `tenantform drift --sandbox` on examples/foggy-it,
//! with the sandbox's directory edited to hold a foreign guest with Global Administrator, a
//! role-assignable group, a service principal and PIM eligibilities.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{edit_world_tenant, foggy_it_applied, tf_on, write_tree};

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const PRIV_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const BILLING_ADMIN: &str = "b0f54661-2d74-4c50-afa3-1ec803f12efe";
const SECURITY_ADMIN: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
const OLD_GUEST: &str = "0ad00000-0000-4000-8000-00000000a001";
const ALICE: &str = "0ad00000-0000-4000-8000-00000000a002";
const BOB: &str = "0ad00000-0000-4000-8000-00000000a003";
const GROUP: &str = "0ad00000-0000-4000-8000-00000000a004";
const SP: &str = "0ad00000-0000-4000-8000-00000000a005";

/// examples/foggy-it applied (Dana, the MSP's guest, holds her declared Helpdesk
/// Administrator, a privileged role), then Entra edited as `edit` says.
fn world(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = foggy_it_applied();
    edit_world_tenant(dir.path(), FOGGY, edit);
    dir
}

fn add(tenant: &mut Value, key: &str, items: Value) {
    let list = tenant[key].as_array().cloned().unwrap_or_default();
    tenant[key] = json!([list, items.as_array().unwrap().clone()].concat());
}

/// A foreign guest (an old MSP's) with Global Administrator, whose name tries to inject.
fn old_msp_guest(t: &mut Value) {
    add(
        t,
        "users",
        json!([{
            "id": OLD_GUEST,
            "displayName": "Old MSP <script>alert(1)</script> @everyone\u{1b}[31m\nforged line",
            "mail": "admin@old-msp.example",
            "userType": "Guest",
        }]),
    );
    add(
        t,
        "roleAssignments",
        json!([{"principalId": OLD_GUEST, "roleDefinitionId": GLOBAL_ADMIN}]),
    );
}

fn json_drift(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["drift", "--output", "json"];
    args.extend_from_slice(extra);
    let run = tf_on(dir, dir, &args);
    (
        run.code,
        serde_json::from_str(&run.stdout).unwrap_or(Value::Null),
    )
}

fn privileged(report: &Value) -> Vec<Value> {
    report["tenants"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["cause"] == "privileged-access-undeclared")
        .cloned()
        .collect()
}

#[test]
fn a_declared_privileged_role_is_not_reported() {
    let dir = world(|_| {});
    let (code, report) = json_drift(dir.path(), &[]);
    assert_eq!(code, 0, "{report}");
    assert!(privileged(&report).is_empty());
}

#[test]
fn a_foreign_global_admin_is_reported_in_every_format_and_can_be_accepted() {
    let dir = world(old_msp_guest);
    let (code, report) = json_drift(dir.path(), &[]);
    assert_eq!(code, 2, "{report}");
    let found = privileged(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    let address = format!("privileged.foggy-it.{OLD_GUEST}.{GLOBAL_ADMIN}");
    assert_eq!(f["address"], address.as_str());
    let p = &f["privileged"];
    assert_eq!(p["principal"]["kind"], "guest");
    assert_eq!(p["principal"]["mail"], "admin@old-msp.example");
    assert!(
        p["principal"]["userPrincipalName"]
            .as_str()
            .unwrap()
            .contains("#EXT#")
    );
    assert_eq!(p["role"], "Global Administrator");
    assert_eq!(p["scope"], "/");
    assert_eq!(p["assignment"], "active");
    assert!(
        p.get("since").is_none(),
        "active v1.0 assignments carry no date"
    );

    // Text: named, with its role; the terminal sees no escape sequence and no forged line.
    let text = tf_on(dir.path(), dir.path(), &["drift"]);
    assert_eq!(text.code, 2);
    assert!(text.stdout.contains(&address), "{}", text.stdout);
    assert!(text.stdout.contains("privileged access nobody declared"));
    assert!(
        text.stdout
            .contains("holds Global Administrator (active, whole tenant)")
    );
    assert!(text.stdout.contains("admin@old-msp.example"));
    assert!(!text.stdout.contains('\u{1b}'), "{}", text.stdout);
    assert!(
        !text.stdout.lines().any(|l| l.starts_with("forged line")),
        "{}",
        text.stdout
    );

    // Markdown: the name cannot inject HTML or mention anyone.
    let md = tf_on(dir.path(), dir.path(), &["drift", "--output", "markdown"]);
    assert_eq!(md.code, 2);
    assert!(md.stdout.contains("Global Administrator"), "{}", md.stdout);
    assert!(
        !md.stdout.contains("<script>") && !md.stdout.contains("@everyone"),
        "{}",
        md.stdout
    );

    // JUnit: a failure naming it, escaped.
    let junit = tf_on(dir.path(), dir.path(), &["drift", "--output", "junit"]);
    assert_eq!(junit.code, 2);
    assert!(
        junit
            .stdout
            .contains("type=\"privileged access nobody declared\"")
    );
    assert!(junit.stdout.contains("Global Administrator"));
    assert!(!junit.stdout.contains("<script>"));

    // Accepted by an expiring exception naming its address; counted again after it.
    write_tree(
        dir.path(),
        &[(
            "exceptions.yaml",
            &format!(
                "kind: DriftException\nname: old-msp-handover\ntenant: foggy-it\naddress: {address}\nreason: Old MSP hands over until June\nexpires: 2099-06-30\n"
            ),
        )],
    );
    let (code, report) = json_drift(
        dir.path(),
        &["--today", "2099-06-30", "--pending-days", "100000"],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["summary"]["accepted"], 1);
    assert_eq!(
        report["tenants"][0]["accepted"][0]["address"],
        address.as_str()
    );
    let (code, report) = json_drift(
        dir.path(),
        &["--today", "2099-07-01", "--pending-days", "100000"],
    );
    assert_eq!(code, 2, "expired: counted again");
    assert_eq!(privileged(&report)[0]["exception"]["expired"], true);
}

#[test]
fn groups_list_their_members_service_principals_are_named_non_privileged_roles_are_not() {
    let dir = world(|t| {
        add(
            t,
            "users",
            json!([
                {"id": ALICE, "displayName": "Alice Admin", "mail": "alice@foggyit.example"},
                {"id": BOB, "displayName": "Bob Billing", "mail": "bob@foggyit.example"},
            ]),
        );
        t["groups"] =
            json!([{"id": GROUP, "displayName": "Break-glass admins", "members": [ALICE]}]);
        t["servicePrincipals"] = json!([{"id": SP, "displayName": "Legacy sync tool", "appId": "11111111-2222-4333-8444-555555555555"}]);
        add(
            t,
            "roleAssignments",
            json!([
                {"principalId": GROUP, "roleDefinitionId": PRIV_ROLE_ADMIN},
                {"principalId": SP, "roleDefinitionId": APP_ADMIN},
                {"principalId": BOB, "roleDefinitionId": BILLING_ADMIN},
            ]),
        );
    });
    let (code, report) = json_drift(dir.path(), &[]);
    assert_eq!(code, 2, "{report}");
    let found = privileged(&report);
    let by = |id: &str| {
        found
            .iter()
            .find(|f| f["privileged"]["principal"]["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {found:?}"))
    };
    let group = &by(GROUP)["privileged"];
    assert_eq!(group["principal"]["kind"], "group");
    assert_eq!(group["principal"]["displayName"], "Break-glass admins");
    assert_eq!(group["role"], "Privileged Role Administrator");
    assert_eq!(group["members"][0]["id"], ALICE);
    assert_eq!(group["members"][0]["displayName"], "Alice Admin");
    let sp = &by(SP)["privileged"];
    assert_eq!(sp["principal"]["kind"], "service-principal");
    assert_eq!(sp["principal"]["displayName"], "Legacy sync tool");
    assert_eq!(sp["role"], "Application Administrator");
    assert_eq!(
        found.len(),
        2,
        "Billing Administrator is not privileged: {found:?}"
    );
    let text = tf_on(dir.path(), dir.path(), &["drift"]);
    assert!(
        text.stdout.contains("member: user \"Alice Admin\""),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("service principal \"Legacy sync tool\"")
    );
}

#[test]
fn without_pim_eligible_assignments_are_not_checked_and_the_tenant_still_is() {
    let dir = world(old_msp_guest);
    let (code, report) = json_drift(dir.path(), &[]);
    assert_eq!(code, 2, "drift, not a failure: {report}");
    let why = report["tenants"][0]["eligibleNotChecked"].as_str().unwrap();
    assert!(why.contains("Entra ID P2"), "{why}");
    assert_eq!(report["tenants"][0]["outcome"]["status"], "changes");
    assert_eq!(
        privileged(&report).len(),
        1,
        "active ones are still checked"
    );
    let text = tf_on(dir.path(), dir.path(), &["drift"]);
    assert!(
        text.stdout
            .contains("foggy-it: eligible assignments not checked: the tenant has no Entra ID P2"),
        "{}",
        text.stdout
    );
}

#[test]
fn with_pim_eligible_assignments_are_reported_with_their_start() {
    let dir = world(|t| {
        old_msp_guest(t);
        t["entraIdP2"] = json!(true);
        t["roleEligibilities"] = json!([{
            "principalId": OLD_GUEST,
            "roleDefinitionId": SECURITY_ADMIN,
            "startDateTime": "2025-03-01T09:00:00Z",
        }]);
    });
    let (code, report) = json_drift(dir.path(), &[]);
    assert_eq!(code, 2, "{report}");
    assert!(report["tenants"][0].get("eligibleNotChecked").is_none());
    let found = privileged(&report);
    let eligible = found
        .iter()
        .find(|f| f["privileged"]["assignment"] == "eligible")
        .expect("eligible");
    assert_eq!(
        eligible["address"],
        format!("privileged.foggy-it.{OLD_GUEST}.{SECURITY_ADMIN}.eligible").as_str()
    );
    assert_eq!(eligible["privileged"]["role"], "Security Administrator");
    assert_eq!(eligible["privileged"]["since"], "2025-03-01T09:00:00Z");
    assert_eq!(eligible["privileged"]["principal"]["kind"], "guest");
    assert!(
        eligible["detail"]
            .as_str()
            .unwrap()
            .contains("since 2025-03-01")
    );
}

/// A mapped tenant where the manifests declare nothing in Entra is still checked: a foreign
/// Global Administrator there is drift, and a tenant that cannot be read fails the run.
#[test]
fn tenants_with_nothing_declared_in_entra_are_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[(
            "tenants.yaml",
            &format!(
                "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
                 kind: Tenant\nname: birchwood\nmicrosoftTenantId: 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f\n"
            ),
        )],
    );
    let mut foggy = json!({"id": FOGGY, "displayName": "Foggy IT Services",
                           "domain": "foggyit.onmicrosoft.com"});
    old_msp_guest(&mut foggy);
    let world = |birchwood_consents: bool| {
        json!({"tenants": [foggy.clone(), {
            "id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "displayName": "Birchwood Law",
            "domain": "birchwood.onmicrosoft.com", "consent": birchwood_consents}]})
    };
    let write = |w: Value| {
        std::fs::write(
            dir.path().join("sandbox-world.json"),
            serde_json::to_vec(&w).unwrap(),
        )
        .unwrap()
    };
    write(world(true));
    let drift = tf_on(dir.path(), dir.path(), &["drift", "--output", "json"]);
    assert_eq!(drift.code, 2, "{}", drift.stderr);
    assert!(
        drift.stdout.contains("admin@old-msp.example"),
        "{}",
        drift.stdout
    );
    write(world(false));
    let drift = tf_on(dir.path(), dir.path(), &["drift", "--output", "json"]);
    assert_eq!(drift.code, 1, "{}", drift.stderr);
    assert!(
        drift.stderr.contains("birchwood: consent missing"),
        "{}",
        drift.stderr
    );
}
