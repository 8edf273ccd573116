//! How each selected tenant ended: the one thing a CI job's exit code is computed from.
//!
//! Every command that works per tenant (plan, apply, drift, export, auth check, customers,
//! consent-url) gives every selected tenant exactly one [`Outcome`]. Any failed tenant makes
//! the exit code 1, whatever the others did: a green job means the fleet is as declared.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a tenant could not be read, planned or applied.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Entra was not read for it (no connection, or not attempted).
    NotRead,
    /// The token endpoint refused the credentials for this tenant.
    TokenRefused,
    /// The app is not consented in the tenant (send its admin the consent URL).
    ConsentMissing,
    /// The token was issued but Graph refused a request (403): a permission is not granted.
    PermissionMissing,
    /// Graph answered with an error (code and request-id given), or the connection failed.
    GraphError,
    /// The run was stopped (Ctrl-C, SIGTERM) before the tenant was finished.
    Interrupted,
    /// A change it needs (e.g. the guest of a role) was not planned or did not happen.
    DependencyFailed,
    /// State could not be written for it.
    StateError,
    /// Another run holds its state (past `--lock-timeout`): the message names the holder.
    Locked,
    /// Its state changed after the plan was made (another apply): plan again.
    Stale,
    /// The run would archive too many of its contacts at once: held back until someone
    /// checks and passes `--allow-mass-removal`.
    MassRemoval,
}

impl Cause {
    pub fn describe(self) -> &'static str {
        match self {
            Cause::NotRead => "not read",
            Cause::TokenRefused => "token refused",
            Cause::ConsentMissing => "consent missing",
            Cause::PermissionMissing => "permission missing",
            Cause::GraphError => "Graph error",
            Cause::Interrupted => "interrupted",
            Cause::DependencyFailed => "dependency not met",
            Cause::StateError => "state not written",
            Cause::Locked => "state locked",
            Cause::Stale => "changed since the plan",
            Cause::MassRemoval => "mass removal held back",
        }
    }
}

/// A tenant's failure with what is needed to act on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub cause: Cause,
    pub message: String,
    /// Graph's error code or the AADSTS code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Admin consent URL, when consent is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_url: Option<String>,
    /// The live source that could not be read (e.g. `roleAssignments`), when the rest of the
    /// tenant was: only the kinds that need it were not planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Failure {
    pub fn new(cause: Cause, message: impl Into<String>) -> Failure {
        Failure {
            cause,
            message: message.into(),
            code: None,
            request_id: None,
            consent_url: None,
            source: None,
        }
    }

    /// The same failure, as the failure of live source `source` only.
    pub fn with_source(mut self, source: &str) -> Failure {
        self.source = Some(source.to_string());
        self
    }

    /// "consent missing: <message> (AADSTS700016, request-id …)"; a source's failure starts
    /// with the source: "roleAssignments: permission missing: …".
    pub fn describe(&self) -> String {
        let mut extra = Vec::new();
        if let Some(code) = &self.code
            && !self.message.contains(code.as_str())
        {
            extra.push(code.clone());
        }
        if let Some(id) = &self.request_id
            && !self.message.contains(id.as_str())
        {
            extra.push(format!("request-id {id}"));
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        };
        let source = self
            .source
            .as_ref()
            .map_or_else(String::new, |s| format!("{s}: "));
        format!("{source}{}: {}{extra}", self.cause.describe(), self.message)
    }
}

/// How one tenant ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Outcome {
    /// Changes were made (apply).
    Done,
    /// Changes are planned, or drift was found (plan, drift).
    Changes,
    /// Already as declared.
    NothingToDo,
    // Boxed: a plan keeps every tenant's outcome, nearly all of them not failed.
    Failed(Box<Failure>),
}

impl Outcome {
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

/// One tenant's outcome, named as the manifests name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantOutcome {
    /// The tenant's stable name in the manifests.
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft_tenant_id: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How each live source of the tenant was read (`guests`, `roleAssignments`, ...), when
    /// Entra was read for it: a failed one says why its kinds were not planned.
    // A sorted vector, not a B-tree: a plan keeps every tenant's outcome, and a B-tree node
    // of these is about 2 KB (20 MB of a 10,000-tenant plan).
    #[serde(default, skip_serializing_if = "litemap::LiteMap::is_empty")]
    #[schemars(with = "std::collections::BTreeMap<String, crate::live::SourceStatus>")]
    pub sources: litemap::LiteMap<String, crate::live::SourceStatus>,
}

impl TenantOutcome {
    /// `foggy-it (Foggy IT Services)`: how people recognise a tenant.
    pub fn label(&self) -> String {
        tenant_label(&self.tenant, self.display_name.as_deref())
    }
}

/// `name (Display Name)`, or the name alone when they say the same.
pub fn tenant_label(name: &str, display_name: Option<&str>) -> String {
    match display_name.filter(|d| !d.is_empty() && *d != name) {
        Some(d) => format!("{name} ({d})"),
        None => name.to_string(),
    }
}

/// What the exit code is computed from: 1 if anything failed; with `detailed`, 2 if there
/// were changes (or drift) and nothing failed; otherwise 0.
pub fn exit_code(outcomes: &[TenantOutcome], changes: bool, detailed: bool) -> u8 {
    if outcomes.iter().any(|o| o.outcome.is_failed()) {
        1
    } else if detailed && changes {
        2
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan keeps every tenant's outcome: what one costs when nothing failed is what a
    /// 10,000-tenant plan holds 10,000 times.
    #[test]
    fn an_outcome_that_did_not_fail_is_small() {
        assert!(std::mem::size_of::<Outcome>() <= 16);
        assert!(std::mem::size_of::<crate::live::SourceStatus>() <= 32);
        assert!(std::mem::size_of::<TenantOutcome>() <= 128);
    }
}
