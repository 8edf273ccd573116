//! The JSON Schema of the manifest format, generated from the manifest types.
//!
//! `schemas/manifest.schema.json` is a committed copy (editors use it through the
//! `# yaml-language-server: $schema=` line); a test fails when it is stale.

use crate::manifest::Manifest;

/// Where the committed schemas live, relative to the repository root.
pub const MANIFEST_SCHEMA_PATH: &str = "schemas/manifest.schema.json";
pub const PLAN_SCHEMA_PATH: &str = "schemas/plan.schema.json";
pub const DRIFT_SCHEMA_PATH: &str = "schemas/drift.schema.json";

/// The JSON Schema of `drift --output json`.
pub fn drift_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(crate::drift::DriftReport);
    schema.insert("title".into(), "tenantform drift report".into());
    schema.to_value()
}

pub fn manifest_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Manifest);
    schema.insert("title".into(), "tenantform manifest".into());
    schema.insert(
        "description".into(),
        "One YAML document of a tenantform manifest tree: a Tenant, Organization, GuestUser or RoleAssignment."
            .into(),
    );
    schema.to_value()
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn manifest_schema_text() -> String {
    pretty(&manifest_schema())
}

/// The JSON Schema of `plan --output json` and saved plans' plan part.
pub fn plan_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(crate::plan::Plan);
    schema.insert("title".into(), "tenantform plan".into());
    schema.to_value()
}

/// Pretty JSON with a trailing newline, as committed.
pub fn pretty(schema: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("schema serializes");
    text.push('\n');
    text
}
