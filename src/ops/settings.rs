//! Everything a run depends on, resolved once from flags and the environment into plain data
//! before any work starts: no layer below reads the environment or the command line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::graph::GraphConfig;
use crate::graph::config::ConfigError;
use crate::model::DesiredModel;
use crate::ops::OpsError;
use crate::state::file::FileStateStore;

/// Where the manifests come from.
#[derive(Clone, Debug)]
pub struct ManifestSource {
    /// A directory (searched recursively), one file, or `-` for stdin.
    pub path: PathBuf,
    /// A git commit, branch or tag to read them at (the work tree is not touched).
    pub reference: Option<String>,
}

/// Which Graph a run talks to.
pub enum GraphTarget {
    /// The embedded sandbox, with its directory kept beside the state between runs.
    Sandbox { faults: crate::sandbox::Faults },
    /// Microsoft Graph (or a proxy) with the credentials from the environment.
    Graph(Box<GraphConfig>),
    /// No `AZURE_CLIENT_ID`: only commands that need nothing from Entra can run.
    NotConfigured,
    /// Credentials are set but incomplete or wrong; any connection is an error naming why.
    Misconfigured(ConfigError),
}

impl GraphTarget {
    /// From `--sandbox` and the `AZURE_*` / `TENANTFORM_*` environment.
    pub fn resolve(
        sandbox: Option<crate::sandbox::Faults>,
        env: impl Fn(&str) -> Option<String>,
    ) -> GraphTarget {
        if let Some(faults) = sandbox {
            return GraphTarget::Sandbox { faults };
        }
        match GraphConfig::from_env(env) {
            Ok(config) => GraphTarget::Graph(Box::new(config)),
            Err(ConfigError::NoClientId) => GraphTarget::NotConfigured,
            Err(e) => GraphTarget::Misconfigured(e),
        }
    }

    pub fn is_sandbox(&self) -> bool {
        matches!(self, GraphTarget::Sandbox { .. })
    }
}

/// How Entra is reached.
pub struct GraphSettings {
    pub target: GraphTarget,
    /// How many tenants are read (and applied) at once.
    pub parallelism: usize,
    /// Admin-consent redirect URI shown in "consent needed" links.
    pub consent_redirect_uri: String,
}

pub struct Settings {
    pub manifests: ManifestSource,
    /// The state file.
    pub state_path: PathBuf,
    pub graph: GraphSettings,
    /// Manifest warnings are errors.
    pub strict: bool,
    /// How long to wait for another writer's state lock.
    pub lock_timeout: Duration,
    /// Test hook: pause after each applied change, so a test can kill an apply between two.
    pub apply_step_delay: Option<Duration>,
    /// Recorded in the state lock, so whoever finds it locked knows what holds it.
    pub command_line: String,
}

impl Settings {
    pub fn store(&self) -> FileStateStore {
        FileStateStore::new(&self.state_path)
    }

    /// Where `--sandbox` keeps its directory between runs.
    pub fn sandbox_world_path(&self) -> PathBuf {
        self.state_path.with_file_name("sandbox-world.json")
    }
}

/// The default state file for a manifest path: `.tenantform/state.json` beside the manifests.
pub fn default_state_path(manifests: &Path) -> PathBuf {
    let dir = if manifests == Path::new("-") {
        PathBuf::from(".")
    } else if manifests.is_file() {
        manifests
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    } else {
        manifests.to_path_buf()
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    dir.join(".tenantform").join("state.json")
}

/// Which tenants a run works on (like Terraform's `-target`, but by customer).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Stable tenant names; empty means all.
    pub tenants: Vec<String>,
    /// A label selector, e.g. `tier in (gold, silver), !legacy`.
    pub selector: Option<String>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.selector.is_none()
    }

    /// The selected tenants of `model`, or `None` when nothing narrows the selection. An
    /// unknown name or a bad selector is an error: a typo must not select nothing silently.
    pub fn resolve(&self, model: &DesiredModel) -> Result<Option<BTreeSet<String>>, OpsError> {
        if self.is_empty() {
            return Ok(None);
        }
        let selector = self
            .selector
            .as_deref()
            .map(crate::manifest::selector::Selector::parse)
            .transpose()
            .map_err(|e| OpsError::BadSelector(e.message))?;
        for name in &self.tenants {
            if !model.tenants.contains_key(name) {
                let near =
                    crate::diagnostic::nearest(name, model.tenants.keys().map(String::as_str));
                return Err(OpsError::UnknownTenant {
                    name: name.clone(),
                    suggestion: crate::diagnostic::did_you_mean(&near),
                });
            }
        }
        Ok(Some(
            model
                .tenants
                .values()
                .filter(|t| self.tenants.is_empty() || self.tenants.contains(&t.name))
                .filter(|t| selector.as_ref().is_none_or(|s| s.matches(&t.labels)))
                .map(|t| t.name.clone())
                .collect(),
        ))
    }
}

/// Narrows `only` (e.g. from `--changed-since`) to `selected`.
pub fn narrow(
    only: Option<BTreeSet<String>>,
    selected: Option<BTreeSet<String>>,
) -> Option<BTreeSet<String>> {
    match (only, selected) {
        (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
        (a, b) => a.or(b),
    }
}
