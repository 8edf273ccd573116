//! Desired-model semantics through the library API (pure: text in, model out).

use tenantform::diagnostic::Code;
use tenantform::source::{SourceFile, SourceSet};
use tenantform::validate_sources;

/// Diagnostics and the whole model read back from the fleet's store.
struct Validated {
    diagnostics: Vec<tenantform::diagnostic::Diagnostic>,
    model: tenantform::model::DesiredModel,
}

fn validate(files: &[(&str, &str)]) -> Validated {
    let mut sources = SourceSet::new();
    for (path, text) in files {
        sources.add(SourceFile::new(*path, *text));
    }
    let v = validate_sources(&mut sources, Vec::new()).expect("the object store works");
    Validated {
        model: v.model().expect("the object store reads back"),
        diagnostics: v.diagnostics,
    }
}

fn codes(v: &Validated) -> Vec<&'static str> {
    v.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

#[test]
fn organizations_without_tenant_get_their_own_and_can_share_one() {
    let v = validate(&[(
        "a.yaml",
        "kind: Organization\nname: boston\ndisplayName: Foggy - Boston\n---\n\
         kind: Organization\nname: waltham\ntenant: boston\n",
    )]);
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
    let tenant = &v.model.tenants["boston"];
    assert!(tenant.implicit);
    assert_eq!(tenant.display_name, "Foggy - Boston");
    assert_eq!(v.model.organizations["waltham"].tenant, "boston");
}

#[test]
fn every_problem_is_reported_in_one_run_across_files() {
    let v = validate(&[
        ("a.yaml", "kind: Tenant\nname: x\nbogus: 1\n"),
        (
            "b.yaml",
            "kind: Tenant\nname: x\n---\nkind: Organization\nname: o\ntenant: y\n",
        ),
        ("c.yaml", "kind: Tenant\nname: [\n"),
    ]);
    assert_eq!(codes(&v), ["TF203", "TF400", "TF401", "TF103"]);
    // Sorted by file, then position.
    let files: Vec<u32> = v.diagnostics.iter().map(|d| d.primary().file.0).collect();
    assert_eq!(files, [0, 1, 1, 2]);
}

#[test]
fn values_yaml_would_retype_are_read_as_written() {
    let v = validate(&[(
        "a.yaml",
        "kind: Tenant\nname: t1\ndisplayName: 1.10\nlabels: { tier: 1, n: no, zip: 02134 }\n",
    )]);
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
    let t = &v.model.tenants["t1"];
    assert_eq!(t.display_name, "1.10");
    assert_eq!(t.labels.get("tier").map(|v| &**v), Some("1"));
    assert_eq!(t.labels.get("n").map(|v| &**v), Some("no"));
    assert_eq!(t.labels.get("zip").map(|v| &**v), Some("02134"));
}

/// A tree is parsed 512 files a round and each round's tenants join the model at its end: a
/// tree of several rounds, its tenants in no particular order across files, keeps every
/// tenant with its record, and a name declared again in a later round is a duplicate.
#[test]
fn tenants_of_every_round_of_files_are_kept() {
    let texts: Vec<(String, String)> = (0..1100)
        .map(|i| {
            // File order is not name order: names interleave across rounds.
            let tenant = format!("t{:04}", (i * 7919) % 1100);
            (
                format!("f{i:04}.yaml"),
                format!("kind: Tenant\nname: {tenant}\ndisplayName: Tenant {i}\nlabels: {{ file: f{i} }}\n"),
            )
        })
        .chain(std::iter::once((
            "zz.yaml".to_string(),
            "kind: Tenant\nname: t0001\n".to_string(),
        )))
        .collect();
    let files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let v = validate(&files);
    assert_eq!(codes(&v), ["TF400"], "{:?}", v.diagnostics);
    assert_eq!(v.model.tenants.len(), 1100);
    for i in 0..1100 {
        let tenant = &v.model.tenants[&format!("t{:04}", (i * 7919) % 1100)];
        assert_eq!(tenant.display_name, format!("Tenant {i}"));
        let file = format!("f{i}");
        assert_eq!(tenant.labels.get("file").map(|v| &**v), Some(file.as_str()));
    }
}

/// Names are unique per kind whatever the kind: a tenant, an organization and a drift
/// exception declared twice each point at their first definition; one name in three kinds is
/// no clash.
#[test]
fn a_name_declared_twice_in_a_kind_points_at_the_first() {
    let exception = "kind: DriftException\nname: same\ntenant: same\naddress: guest.same.*\nreason: r\nexpires: 2099-01-01\n";
    let v = validate(&[
        (
            "a.yaml",
            "kind: Tenant\nname: same\n---\nkind: Organization\nname: same-org\ntenant: same\n",
        ),
        ("b.yaml", exception),
        (
            "c.yaml",
            "kind: Tenant\nname: same\n---\nkind: Organization\nname: same-org\ntenant: same\n",
        ),
        ("d.yaml", exception),
    ]);
    assert_eq!(
        codes(&v),
        ["TF400", "TF400", "TF400"],
        "{:?}",
        v.diagnostics
    );
    let pointing: Vec<(u32, u32)> = v
        .diagnostics
        .iter()
        .map(|d| (d.primary().file.0, d.labels[1].loc.file.0))
        .collect();
    assert_eq!(pointing, [(2, 0), (2, 0), (3, 1)]);
    assert_eq!(v.model.drift_exceptions.len(), 1);
}

/// Every tenant is kept for the whole run: a label's key or value written on many tenants is
/// one text in memory, and each tenant still has its own labels.
#[test]
fn label_texts_are_shared_between_tenants() {
    let v = validate(&[(
        "a.yaml",
        "kind: Tenant\nname: t1\nlabels: { tier: gold, region: eu }\n---\nkind: Tenant\nname: t2\nlabels: { tier: gold, region: us }\n",
    )]);
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
    let (t1, t2) = (&v.model.tenants["t1"].labels, &v.model.tenants["t2"].labels);
    let tier = |labels: &tenantform::model::Labels| {
        let (key, value) = labels.iter().find(|(k, _)| &***k == "tier").unwrap();
        (key.clone(), value.clone())
    };
    let ((k1, v1), (k2, v2)) = (tier(t1), tier(t2));
    assert!(std::sync::Arc::ptr_eq(&k1, &k2) && std::sync::Arc::ptr_eq(&v1, &v2));
    assert_eq!(t1.get("region").map(|v| &**v), Some("eu"));
    assert_eq!(t2.get("region").map(|v| &**v), Some("us"));
}

#[test]
fn role_names_are_case_insensitive_and_ids_accepted() {
    let v = validate(&[(
        "a.yaml",
        "kind: Tenant\nname: t\nmicrosoftTenantId: 3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b\n---\n\
         kind: GuestUser\nname: g\nemail: g@msp.example\ntenants: [t]\n---\n\
         kind: RoleAssignment\nname: r\nprincipal: {guest: G@MSP.example}\n\
         directoryRoles: [gLoBaL rEaDeR, 11111111-2222-4333-8444-555555555555]\nscope: /\n",
    )]);
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
    let roles = &v.model.role_assignments["r"].directory_roles;
    let names: Vec<Option<&str>> = roles.iter().map(|r| r.display_name.as_deref()).collect();
    assert_eq!(
        names,
        [None, Some("Global Reader")],
        "custom role id kept without a name"
    );
}

#[test]
fn object_id_principals_need_exactly_one_tenant() {
    let tenants = "kind: Tenant\nname: a\nmicrosoftTenantId: 3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b\n---\n\
                   kind: Tenant\nname: b\nmicrosoftTenantId: 4f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b\n---\n";
    let none = validate(&[(
        "a.yaml",
        &format!(
            "{tenants}kind: RoleAssignment\nname: r\nprincipal: {{userId: 5f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b}}\ndirectoryRoles: [Global Reader]\n"
        ),
    )]);
    assert_eq!(codes(&none), ["TF204"]);
    let two = validate(&[(
        "a.yaml",
        &format!(
            "{tenants}kind: RoleAssignment\nname: r\nprincipal: {{groupId: 5f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b}}\ndirectoryRoles: [Global Reader]\ntenants: [a, b]\n"
        ),
    )]);
    assert_eq!(codes(&two), ["TF208"]);
    let one = validate(&[(
        "a.yaml",
        &format!(
            "{tenants}kind: RoleAssignment\nname: r\nprincipal: {{groupId: 5f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b}}\ndirectoryRoles: [Global Reader]\ntenants: [b]\n"
        ),
    )]);
    assert!(one.diagnostics.is_empty(), "{:?}", one.diagnostics);
}

#[test]
fn msp_only_roles_do_not_need_a_microsoft_tenant() {
    let v = validate(&[(
        "a.yaml",
        "kind: Organization\nname: vista\n---\n\
         kind: RoleAssignment\nname: r\nprincipal: {userId: 5f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b}\n\
         mspRoles: [TenantViewer]\ntenants: [vista]\n",
    )]);
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
}

#[test]
fn every_code_is_unique() {
    let mut seen = std::collections::HashSet::new();
    for code in Code::ALL {
        assert!(seen.insert(code.as_str()), "{} reused", code.as_str());
    }
}
