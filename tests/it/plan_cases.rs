//! Data-driven plans: each directory `tests/cases/plan/<case>/` holds the planner's inputs and
//! the plan it must make, and runs through the library (no binary, no sandbox, no clock):
//!
//! - `manifests/`: the manifests (loaded with `load::load_path`, validated without errors);
//! - `state.json` (optional): a state file as the file backend writes it (none: no state yet);
//! - `live.json` (optional): a `live::LiveSnapshot`, what Entra holds per tenant (none: Entra
//!   was not read, so only MSP-side kinds are planned);
//! - `options.json` (optional): `plan::PlanOptions` fields that differ from the defaults, and
//!   `now` (RFC 3339; default [`DEFAULT_NOW`]), the time the plan is made;
//! - `expected.json`: the plan, `serde_json::to_string_pretty(&plan)`, compared exactly.
//!
//! Each case is also planned tenant by tenant (`plan::plan_by_tenant`, the steps a streaming
//! run takes) and must give the same plan.
//!
//! Nothing needs normalising: every id and time in a plan comes from the inputs (state lineage,
//! live ids, `appliedAt`, `now`), and the manifests digest is a function of the model. Each case
//! is planned twice to keep it that way.
//!
//! `UPDATE_EXPECT=1 cargo test --test it plan_cases` rewrites the expected files; review the
//! diff like any other change. A new case is a directory plus a line in [`cases!`] below (a
//! test fails for a directory that is not listed, so no case is silently skipped).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tenantform::live::LiveSnapshot;
use tenantform::plan::{PlanInput, PlanOptions, plan, plan_by_tenant};
use tenantform::state::{State, StateStore, file::FileStateStore};

use crate::support::repo_root;

/// The time a case is planned at unless its `options.json` says `now`.
pub const DEFAULT_NOW: &str = "2026-12-01T12:00:00Z";

/// The files a case may hold (other `*.json` names are refused: a typo would drop an input).
const CASE_FILES: &[&str] = &["state.json", "live.json", "options.json", "expected.json"];

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_case(&stringify!($name).replace('_', "-"));
            }
        )*
        /// Every case directory, as named by the tests above.
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

cases!(
    create_from_nothing,
    no_op_when_nothing_changed,
    update_attributes_with_change_paths,
    remap_microsoft_tenant_warns,
    foggy_it_migration,
    tenant_rename_moves_its_objects,
    tenant_rename_offline_moves_entra_objects_in_state,
    rename_without_former_names_hints,
    organization_moves_between_tenants,
    delete_blocked_without_allow_delete,
    delete_allowed_in_reverse_order,
    guest_in_entra_not_owned_is_blocked,
    guest_in_entra_adopted_with_adopt,
    guest_in_state_missing_in_entra,
    drift_changed_in_entra,
    changed_in_manifests_for_entra_kinds,
    pending_replication_within_window,
    missing_after_replication_window,
    roles_wait_for_an_unread_tenant,
    one_tenant_not_read_others_plan,
    only_tenants_scope,
    import_only,
    offline,
    unmanaged_role_assignment_reported,
    resend_invitations,
    interrupted_create_recovered,
    contacts_first_sync_routes_by_office,
    contacts_delta_moves_disables_deletes,
    contacts_group_rules,
    contacts_group_rules_with_position,
    contacts_mass_removal_guard,
    contacts_mass_removal_allowed,
    contacts_unreadable_tenant_kept,
    contacts_sync_removed_archives,
    gdap_relationships,
);

fn cases_dir() -> PathBuf {
    repo_root().join("tests/cases/plan")
}

#[test]
fn every_case_directory_is_listed() {
    let listed: Vec<String> = LISTED.iter().map(|n| n.replace('_', "-")).collect();
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(cases_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !listed.contains(&name) {
            unlisted.push(name);
        }
    }
    assert!(
        unlisted.is_empty(),
        "case directories not listed in cases!(...) in tests/it/plan_cases.rs (they would never run): {unlisted:?}"
    );
    assert!(listed.len() >= 12, "the full set of cases");
}

/// What `options.json` may hold: plan options (camelCase, as in a plan's `options`) and `now`.
struct CaseOptions {
    options: PlanOptions,
    now: jiff::Timestamp,
}

fn read_options(path: &Path) -> CaseOptions {
    let mut merged = serde_json::to_value(PlanOptions::default()).unwrap();
    let mut now = DEFAULT_NOW.to_string();
    if path.exists() {
        let given: Value = read_json(path);
        let Value::Object(given) = given else {
            panic!("{}: a JSON object", path.display())
        };
        for (key, value) in given {
            if key == "now" {
                now = value
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: now is an RFC 3339 string", path.display()))
                    .to_string();
            } else {
                merged[key] = value;
            }
        }
    }
    let options: PlanOptions = serde_json::from_value(merged.clone())
        .unwrap_or_else(|e| panic!("{}: not plan options: {e}", path.display()));
    refuse_unknown_fields(path, &merged, &serde_json::to_value(&options).unwrap());
    CaseOptions {
        options,
        now: now
            .parse()
            .unwrap_or_else(|e| panic!("{}: now {now:?}: {e}", path.display())),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails for a field of `given` that deserializing dropped (serde ignores unknown fields, so a
/// misspelt one would silently change nothing). Omitted defaults are fine.
fn refuse_unknown_fields(path: &Path, given: &Value, kept: &Value) {
    fn walk(given: &Value, kept: &Value, at: &str, unknown: &mut Vec<String>) {
        match (given, kept) {
            (Value::Object(g), Value::Object(k)) => {
                for (key, value) in g {
                    match k.get(key) {
                        Some(kv) => walk(value, kv, &format!("{at}/{key}"), unknown),
                        None if value.is_null() => {}
                        None if value.as_array().is_some_and(Vec::is_empty) => {}
                        None if value.as_object().is_some_and(|o| o.is_empty()) => {}
                        None => unknown.push(format!("{at}/{key}")),
                    }
                }
            }
            (Value::Array(g), Value::Array(k)) => {
                for (i, (gv, kv)) in g.iter().zip(k).enumerate() {
                    walk(gv, kv, &format!("{at}/{i}"), unknown);
                }
            }
            _ => {}
        }
    }
    let mut unknown = Vec::new();
    walk(given, kept, "", &mut unknown);
    assert!(
        unknown.is_empty(),
        "{}: unknown fields (misspelt?): {unknown:?}",
        path.display()
    );
}

fn run_case(name: &str) {
    let dir = cases_dir().join(name);
    assert!(dir.is_dir(), "no case directory {}", dir.display());
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !file.ends_with(".json") || CASE_FILES.contains(&file.as_str()),
            "{name}: unknown case file {file} (a case holds {CASE_FILES:?} and manifests/)"
        );
    }

    let (mut sources, load_diagnostics) = tenantform::load::load_path(&dir.join("manifests"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let validation = tenantform::validate_sources(&mut sources, load_diagnostics)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        validation.errors(),
        0,
        "{name}: the manifests do not validate: {:#?}",
        validation.diagnostics
    );
    let model = validation.model().unwrap_or_else(|e| panic!("{name}: {e}"));

    let state_path = dir.join("state.json");
    let state = if state_path.exists() {
        FileStateStore::new(&state_path)
            .load()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    } else {
        State::new()
    };
    let live_path = dir.join("live.json");
    let live: Option<LiveSnapshot> = live_path.exists().then(|| {
        let given: Value = read_json(&live_path);
        let live: LiveSnapshot = serde_json::from_value(given.clone())
            .unwrap_or_else(|e| panic!("{}: not a live snapshot: {e}", live_path.display()));
        refuse_unknown_fields(&live_path, &given, &serde_json::to_value(&live).unwrap());
        live
    });
    let CaseOptions { options, now } = read_options(&dir.join("options.json"));

    let make = || {
        plan(&PlanInput {
            desired: &model,
            state: &state,
            live: live.as_ref(),
            options: options.clone(),
            now,
        })
    };
    let made = make();
    assert_eq!(made, make(), "{name}: the same inputs make the same plan");
    // A streaming run plans the catalog, then each tenant from its own slice of the model,
    // state and live reads: it must come to the same plan.
    let by_tenant = plan_by_tenant(&PlanInput {
        desired: &model,
        state: &state,
        live: live.as_ref(),
        options: options.clone(),
        now,
    });
    if by_tenant != made {
        let a = serde_json::to_string_pretty(&made).unwrap();
        let b = serde_json::to_string_pretty(&by_tenant).unwrap();
        let diff = similar::TextDiff::from_lines(&a, &b)
            .unified_diff()
            .context_radius(3)
            .header("whole plan", "planned tenant by tenant")
            .to_string();
        panic!("{name}: planning tenant by tenant differs from the whole plan:\n{diff}");
    }
    let actual = serde_json::to_string_pretty(&made).unwrap() + "\n";
    let reread: tenantform::plan::Plan = serde_json::from_str(&actual).unwrap();
    assert_eq!(
        reread, made,
        "{name}: the plan's JSON reads back as the plan"
    );
    conforms_to_plan_schema(name, &actual);

    let expected_path = dir.join("expected.json");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
        return;
    }
    let Ok(expected) = std::fs::read_to_string(&expected_path) else {
        panic!(
            "{name}: no {}; create it with `UPDATE_EXPECT=1 cargo test --test it plan_cases::{}`, then read it and check it is the plan you mean",
            expected_path.display(),
            name.replace('-', "_")
        );
    };
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .context_radius(4)
            .header("expected.json", "planned")
            .to_string();
        panic!(
            "{name}: the plan differs from {}:\n{diff}\nIf the change is intended, run `UPDATE_EXPECT=1 cargo test --test it plan_cases::{}` and commit the new expected.json.",
            expected_path.display(),
            name.replace('-', "_")
        );
    }
}

/// Every case's plan is also a valid `schemas/plan.schema.json` document.
fn conforms_to_plan_schema(name: &str, plan: &str) {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let schema: Value = read_json(&repo_root().join(tenantform::schema::PLAN_SCHEMA_PATH));
        jsonschema::validator_for(&schema).unwrap()
    });
    let plan: Value = serde_json::from_str(plan).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&plan)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: not a schema-valid plan: {errors:?}"
    );
}
