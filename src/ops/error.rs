//! Typed errors of the pipeline: each says what failed and keeps its cause (a Graph status
//! and code, a state lock holder, a missing credential), so the CLI can render it and callers
//! can tell them apart.

use crate::graph::GraphClientError;
use crate::graph::config::ConfigError;

/// What to tell someone who ran a command that needs Entra without credentials.
pub const CREDENTIALS_HELP: &str = "set AZURE_CLIENT_ID (the MSP's multi-tenant app) and AZURE_TENANT_ID (the partner tenant) with one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE, or run where a secretless source is present (GitHub Actions with `id-token: write`, an Azure DevOps workload identity service connection, a managed identity with --auth managed-identity, or `az login` with --auth azure-cli)";

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    #[error(
        "{errors} error(s) and {warnings} warning(s) in the manifests; nothing was planned or changed"
    )]
    InvalidManifests { errors: usize, warnings: usize },
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    #[error("--tenant {name}: no tenant of that name in the manifests{}", suggestion.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    UnknownTenant {
        name: String,
        suggestion: Option<String>,
    },
    #[error("--selector: {0}")]
    BadSelector(String),
    #[error(
        "`tenantform {command}` needs to read Entra and no Graph credentials are configured: {CREDENTIALS_HELP}.\nOr use --sandbox to run against the embedded Graph sandbox, or --offline to plan only the MSP-side records (tenants, organizations, MSP roles) without reading Entra."
    )]
    NoCredentials { command: String },
    #[error("{0} (Graph credentials: {CREDENTIALS_HELP})")]
    Credentials(#[source] ConfigError),
    #[error("`tenantform {command}` needs the partner tenant: set AZURE_TENANT_ID")]
    NoPartnerTenant { command: String },
    #[error("{context}: {error}")]
    Graph {
        context: &'static str,
        #[source]
        error: GraphClientError,
    },
    #[error("saved plan is stale: {0}")]
    StalePlan(String),
    #[error("{path}: {message} (delete it to start the sandbox afresh)")]
    SandboxWorld { path: String, message: String },
    #[error("{0} already exists; export into an empty directory")]
    OutputExists(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl OpsError {
    pub fn io(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> OpsError {
        let path = path.to_string();
        move |source| OpsError::Io { path, source }
    }
}
