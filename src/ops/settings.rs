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
use crate::state::{StateError, StateStore};

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
    /// The embedded sandbox, with its directory kept beside the state between runs; `seed`:
    /// a fixture its directory starts from when none is kept yet.
    Sandbox {
        faults: crate::sandbox::Faults,
        seed: Option<std::path::PathBuf>,
    },
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
        sandbox: Option<(crate::sandbox::Faults, Option<std::path::PathBuf>)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> GraphTarget {
        if let Some((faults, seed)) = sandbox {
            return GraphTarget::Sandbox { faults, seed };
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
    /// Who runs it (the local user, or the CI run and actor): recorded in apply history.
    pub actor: crate::state::Actor,
}

impl Settings {
    /// The state backend `--state` names: a file, or a PostgreSQL database for a
    /// `postgres://` URL (connected and migrated here).
    pub fn store(&self) -> Result<Box<dyn StateStore + Send + Sync>, StateError> {
        open_store(&self.state_path)
    }

    /// Where `--sandbox` keeps its directory between runs (beside the manifests when state
    /// is in a database).
    pub fn sandbox_world_path(&self) -> PathBuf {
        if is_database_url(&self.state_path) {
            let dir = if self.manifests.path == Path::new("-") {
                PathBuf::from(".")
            } else {
                self.manifests.path.clone()
            };
            return dir.join(".tenantform").join("sandbox-world.json");
        }
        self.state_path.with_file_name("sandbox-world.json")
    }
}

/// Whether `--state` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_database_url(location: &Path) -> bool {
    location
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// Opens the state at `location`: a `postgres://` URL or a file path.
pub fn open_store(location: &Path) -> Result<Box<dyn StateStore + Send + Sync>, StateError> {
    if is_database_url(location) {
        let url = location.to_str().expect("checked above");
        Ok(Box::new(
            crate::state::postgres::PostgresStateStore::connect(url)?,
        ))
    } else {
        Ok(Box::new(FileStateStore::new(location)))
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
    /// `--shard K/N`: only this share of the tenants the rest selects.
    pub shard: Option<Shard>,
}

/// One of N stable shares of a fleet (`--shard K/N`), so N CI jobs split a fleet between
/// them with no overlap and no gap, and a tenant stays in its shard from run to run (it moves
/// only when N changes). A tenant belongs to shard `1 + h mod N`, where `h` is the first 8
/// bytes (big-endian) of the SHA-256 of its stable name: the same on every machine and
/// version, and reproducible by other tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based, at most `count`.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The most shards a fleet is split into (more would be a typo, not a CI matrix).
    pub const MAX_COUNT: u32 = 1024;

    /// Whether `tenant` (a stable name) is in this shard.
    pub fn contains(&self, tenant: &str) -> bool {
        Shard::of(tenant, self.count) == self.index
    }

    /// The shard (1-based) of `tenant` when a fleet is split `count` ways.
    pub fn of(tenant: &str, count: u32) -> u32 {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(tenant.as_bytes());
        let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        1 + (head % u64::from(count.max(1))) as u32
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "`{text}` is not a shard: write K/N with 1 <= K <= N <= {} (e.g. 2/4, the second of four shares)",
                Shard::MAX_COUNT
            )
        };
        let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count || count > Shard::MAX_COUNT {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.selector.is_none() && self.shard.is_none()
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
                .filter(|t| self.shard.is_none_or(|s| s.contains(&t.name)))
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

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shards_split_a_fleet_without_overlap_or_gap_and_evenly() {
        let tenants: Vec<String> = (0..4000).map(|i| format!("customer-{i}")).collect();
        let shards: Vec<Shard> = (1..=4).map(|k| format!("{k}/4").parse().unwrap()).collect();
        let mut sizes = [0usize; 4];
        for t in &tenants {
            let holders: Vec<usize> = (0..4).filter(|&i| shards[i].contains(t)).collect();
            assert_eq!(holders.len(), 1, "{t} is in exactly one shard");
            sizes[holders[0]] += 1;
        }
        for size in sizes {
            assert!((850..=1150).contains(&size), "uneven shards: {sizes:?}");
        }
    }

    #[test]
    fn a_tenants_shard_is_fixed_by_its_name() {
        // Pinned: a change here moves every fleet's tenants between CI jobs.
        assert_eq!(Shard::of("contoso", 4), Shard::of("contoso", 4));
        let pinned: Vec<u32> = ["a", "b", "contoso", "foggy-it"]
            .iter()
            .map(|t| Shard::of(t, 4))
            .collect();
        assert_eq!(pinned, PINNED);
        assert_eq!(Shard::of("anything", 1), 1);
    }

    // The same as `1 + int.from_bytes(sha256(name)[:8], "big") % 4` in Python.
    const PINNED: [u32; 4] = [3, 3, 4, 3];

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", "1/2000", ""] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("is not a shard: write K/N"), "{bad}: {err}");
        }
    }
}
