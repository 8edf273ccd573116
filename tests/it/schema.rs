//! The committed JSON Schema is current, and the manifests we ship conform to it.

use crate::support::{repo_root, run};

#[test]
fn committed_schema_is_current() {
    let printed = run(&["schema"]);
    assert_eq!(printed.code, 0);
    let path = repo_root().join(tenantform::schema::MANIFEST_SCHEMA_PATH);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::var_os("TENANTFORM_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &printed.stdout).unwrap();
        return;
    }
    assert!(
        committed == printed.stdout,
        "{} is stale: run `TENANTFORM_UPDATE_SCHEMAS=1 cargo test schema` and commit it",
        path.display()
    );
}

#[test]
fn decoders_accept_exactly_the_schema_fields() {
    use tenantform::manifest::ManifestKind;
    let schema = tenantform::schema::manifest_schema();
    let variants = schema["oneOf"].as_array().unwrap();
    let fields = |kind: &str| -> Vec<String> {
        let variant = variants
            .iter()
            .find(|v| v["properties"]["kind"]["const"] == kind)
            .unwrap_or_else(|| panic!("{kind} in schema"));
        let mut names: Vec<String> = variant["properties"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "kind")
            .cloned()
            .collect();
        names.sort();
        names
    };
    let sorted = |f: &[&str]| {
        let mut v: Vec<String> = f.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    use tenantform::manifest::*;
    assert_eq!(fields("Tenant"), sorted(TenantDoc::FIELDS));
    assert_eq!(fields("Organization"), sorted(OrganizationDoc::FIELDS));
    assert_eq!(fields("GuestUser"), sorted(GuestUserDoc::FIELDS));
    assert_eq!(fields("RoleAssignment"), sorted(RoleAssignmentDoc::FIELDS));
    assert_eq!(fields("DriftException"), sorted(DriftExceptionDoc::FIELDS));
    assert_eq!(fields("EndUserSync"), sorted(EndUserSyncDoc::FIELDS));
    assert_eq!(fields("TenantPolicy"), sorted(TenantPolicyDoc::FIELDS));
    assert_eq!(variants.len(), KINDS.len());
}

#[test]
fn examples_point_editors_at_the_schema() {
    for dir in ["examples/foggy-it", "examples/msp-fleet"] {
        let mut seen = 0;
        for path in manifest_files(&repo_root().join(dir)) {
            let text = std::fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap();
            let reference = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| panic!("{} starts with the schema line", path.display()));
            let target = path.parent().unwrap().join(reference);
            assert!(
                target.is_file(),
                "{}: {} exists",
                path.display(),
                target.display()
            );
            seen += 1;
        }
        assert!(seen > 0);
    }
}

/// The manifest files under `dir` as tenantform reads them: `*.yaml` / `*.yml`, hidden entries
/// skipped (such as the `.tenantform/` state directory a local `apply` leaves in an example).
fn manifest_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every YAML document under `dir`, as JSON values, with the file it came from.
fn documents_under(dir: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for path in manifest_files(dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&text).unwrap();
        out.extend(docs.into_iter().map(|d| (path.display().to_string(), d)));
    }
    out
}

#[test]
fn shipped_manifests_conform_to_the_schema_and_bad_ones_do_not() {
    let validator =
        jsonschema::validator_for(&tenantform::schema::manifest_schema()).expect("schema compiles");
    let mut checked = 0;
    for dir in ["examples/foggy-it", "examples/msp-fleet"] {
        for (file, doc) in documents_under(&repo_root().join(dir)) {
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{file}: {errors:?}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "checked {checked} documents");
    for case in [
        "tf203-unknown-field",
        "tf204-missing-field",
        "tf202-unknown-kind",
        "tf205-wrong-type",
    ] {
        let docs = documents_under(&repo_root().join("tests/cases/validate").join(case));
        assert!(
            docs.iter().any(|(_, doc)| !validator.is_valid(doc)),
            "{case}: the schema should reject it too"
        );
    }
}
