//! The shipped examples are valid and mean what their READMEs say.

use tenantform::model::{DesiredModel, Principal};
use tenantform::{load::load_path, validate_sources};

use crate::support::{repo_root, run, run_in, workspace};

fn load(dir: &str) -> DesiredModel {
    let (mut sources, diags) = load_path(&repo_root().join(dir)).unwrap();
    let v = validate_sources(&mut sources, diags).unwrap();
    assert!(v.diagnostics.is_empty(), "{dir}: {:?}", v.diagnostics);
    v.model().unwrap()
}

fn set(items: &[&str]) -> tenantform::model::TenantSet {
    items.iter().map(|s| s.to_string()).collect()
}

/// README's set-up, step 1, in a copy of the repository's example: state and the sandbox's
/// directory land in `examples/foggy-it/.tenantform/`, a second run has nothing to do, and the
/// example still validates the same (the state directory is not a manifest).
#[test]
fn readme_first_command_keeps_state_beside_the_example_and_converges() {
    let ws = workspace(&["examples/foggy-it", "examples/sandbox/fixture.yaml"]);
    let readme = [
        "apply",
        "--sandbox",
        "--sandbox-world",
        "examples/sandbox/fixture.yaml",
        "--auto-approve",
        "examples/foggy-it",
    ];
    let first = run_in(ws.path(), &readme, None);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("Apply complete: 12 created"),
        "{}",
        first.stdout
    );
    let kept = ws.path().join("examples/foggy-it/.tenantform");
    assert!(kept.join("state.json").is_file() && kept.join("sandbox-world.json").is_file());

    let again = run_in(ws.path(), &readme, None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);
    let plan = run_in(
        ws.path(),
        &["--color", "never", "plan", "--sandbox", "examples/foggy-it"],
        None,
    );
    assert!(
        plan.stdout.contains("Invitations not yet accepted:"),
        "{}",
        plan.stdout
    );
    // The example's TenantPolicy promises no paid licence on a disabled user; Dora Departed
    // (disabled) still holds E3, so drift reports that breach, and only that.
    let drift = run_in(
        ws.path(),
        &[
            "--color",
            "never",
            "drift",
            "--sandbox",
            "examples/foggy-it",
        ],
        None,
    );
    assert_eq!(drift.code, 2, "{}", drift.transcript());
    assert!(
        drift.stdout.contains(
            "  ! policy.foggy-it.paid-licence-on-disabled-users  [policy not kept] 1 paid licence on disabled or deleted users: Microsoft 365 E3 on disabled user Dora Departed ("
        ),
        "{}",
        drift.stdout
    );
    assert!(
        drift
            .stdout
            .contains("Drift: 1 finding(s) in 1 of 1 tenant(s)"),
        "{}",
        drift.stdout
    );
    // Foggy IT's people, each under the organization of the office that bills them.
    let csv = run_in(
        ws.path(),
        &["contacts", "examples/foggy-it", "--output", "csv"],
        None,
    );
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let routed: Vec<(String, String)> = csv
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[1].to_string(), cells[3].to_string())
        })
        .collect();
    assert_eq!(
        routed,
        [
            ("foggy-boston", "Frances Fog"),
            ("foggy-burlington", "Bea Burke"),
            ("foggy-burlington", "Rob Ramos"),
            ("foggy-waltham", "Walter Reyes"),
            ("foggy-waltham", "Wanda Whitlock"),
        ]
        .map(|(o, n)| (o.to_string(), n.to_string()))
    );
    let validate = run_in(ws.path(), &["validate", "examples/foggy-it"], None);
    assert_eq!(
        validate.stdout,
        run(&["validate", "examples/foggy-it"]).stdout
    );
}

#[test]
fn foggy_it_is_one_tenant_with_three_billed_organizations() {
    let run = run(&["validate", "examples/foggy-it"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "valid: 4 files, 8 documents: 1 tenant (0 implicit), 3 organizations, 1 guest, 1 role assignment, end users synced in 1 tenant, policies for 1 tenant\n"
    );

    let model = load("examples/foggy-it");
    let tenant = &model.tenants["foggy-it"];
    assert_eq!(tenant.display_name, "Foggy IT Services");
    assert!(!tenant.implicit);
    let orgs: Vec<(&str, &str)> = model
        .organizations
        .values()
        .map(|o| (o.display_name.as_str(), o.tenant.as_str()))
        .collect();
    assert_eq!(
        orgs,
        [
            ("Foggy IT Services - Boston", "foggy-it"),
            ("Foggy IT Services - Burlington", "foggy-it"),
            ("Foggy IT Services - Waltham", "foggy-it"),
        ]
    );
    let guest = &model.guests["dana-support"];
    assert_eq!(guest.tenants, set(&["foggy-it"]));
    let ra = &model.role_assignments["dana-foggy-helpdesk"];
    assert_eq!(ra.principal, Principal::Guest("dana-support".into()));
    assert_eq!(ra.directory_roles.len(), 1);
    assert_eq!(
        ra.directory_roles[0].template_id,
        "729827e3-9c14-49f7-bb1b-9608f156bbb8"
    );
    assert_eq!(
        ra.directory_roles[0].display_name.as_deref(),
        Some("Helpdesk Administrator")
    );
    assert_eq!(ra.scope, "/");
    assert_eq!(ra.tenants, set(&["foggy-it"]));
    assert_eq!(
        ra.msp_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["TenantAdmin"]
    );
}

#[test]
fn msp_fleet_selectors_pick_the_right_tenants() {
    let model = load("examples/msp-fleet");
    assert_eq!(model.tenants.len(), 21);
    // GDAP: one relationship with each gold tenant, each under its own display name.
    let gdap: Vec<(&str, &str)> = model
        .gdap_relationships
        .iter()
        .flat_map(|(t, rs)| {
            rs.iter()
                .map(move |r| (t.as_str(), r.display_name.as_str()))
        })
        .collect();
    assert_eq!(gdap.len(), 7, "{gdap:?}");
    assert!(gdap.contains(&("alder-dental", "Contoso MSP support - alder-dental")));
    assert!(gdap.iter().all(|(_, name)| name.chars().count() <= 50));
    assert!(
        model.tenants["vista-bakery"].implicit,
        "organization without tenant gets a 1:1 tenant"
    );
    assert_eq!(model.organizations["vista-bakery"].tenant, "vista-bakery");

    // tier in (gold, silver), !legacy  — granite-cpa is silver but legacy.
    assert_eq!(
        model.guests["alice-tier1"].tenants,
        set(&[
            "alder-dental",
            "birchwood-law",
            "cedar-logistics",
            "dover-clinic",
            "fjord-shipping",
            "iris-biotech",
            "juniper-schools",
            "kestrel-aero",
            "maple-foods",
            "northwind-retail",
            "oak-insurance",
            "rowan-nonprofit",
            "tamarack-energy",
        ])
    );
    // Mapping form {region: eu-west}.
    assert_eq!(
        model.guests["dmitri-eu"].tenants,
        set(&[
            "fjord-shipping",
            "iris-biotech",
            "juniper-schools",
            "pine-hospitality",
            "spruce-media"
        ])
    );
    // Principal by email resolves to the guest's name; default targets are the guest's tenants.
    let reader = &model.role_assignments["carol-security-reader"];
    assert_eq!(reader.principal, Principal::Guest("carol-security".into()));
    assert_eq!(reader.tenants, model.guests["carol-security"].tenants);
    assert_eq!(
        model.role_assignments["carol-security-admin-gold"].tenants,
        set(&["alder-dental", "birchwood-law", "northwind-retail"])
    );
    // A role by template id and one by name that are different roles both stay.
    assert_eq!(
        model.role_assignments["dmitri-eu-exchange"]
            .directory_roles
            .len(),
        2
    );
    assert!(!model.guests["carol-security"].invitation.send_email);
    assert!(
        model.guests["alice-tier1"].invitation.send_email,
        "sendEmail defaults to true"
    );
}

#[test]
fn synthetic_fleet_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    for f in tenantform::synthetic::fleet(50) {
        let path = dir.path().join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, f.text).unwrap();
    }
    let (mut sources, diags) = load_path(dir.path()).unwrap();
    let v = validate_sources(&mut sources, diags).unwrap();
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
    let model = v.model().unwrap();
    assert_eq!(v.documents, 50 * 10 + 4);
    assert_eq!(model.tenants.len(), 50);
    assert_eq!(model.organizations.len(), 150);
    assert_eq!(model.guests.len(), 152);
    // customer i: tier = TIERS[i % 3], region = REGIONS[(i / 3) % 3], legacy when i % 10 == 7.
    let tier1: usize = (0..50).filter(|i| i % 3 != 2 && i % 10 != 7).count();
    assert_eq!(model.guests["fleet-tier1"].tenants.len(), tier1);
}
