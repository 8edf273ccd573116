//! Pieces several commands share: where manifests and state are, loading and checking them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::progress::Progress;
use crate::cli::{CliError, Context, render};
use crate::load::load_path;
use crate::model::DesiredModel;
use crate::state::file::FileStateStore;
use crate::{Validation, validate_sources};

/// Where the manifests and the state are.
#[derive(clap::Args, Debug, Clone)]
pub struct Location {
    /// Manifest directory (searched recursively), a single file, or - for stdin.
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// State file [default: PATH/.tenantform/state.json].
    #[arg(long, value_name = "FILE", env = "TENANTFORM_STATE")]
    pub state: Option<PathBuf>,
    /// Read the manifests as they are at this git commit, branch or tag (the work tree is not
    /// touched).
    #[arg(long = "ref", value_name = "REF")]
    pub reference: Option<String>,
}

/// Which tenants a command works on (like Terraform's `-target`, but by customer).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TenantSelection {
    /// Only this tenant (its stable name; repeat for several). Others are left as they are.
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    /// Only tenants whose labels match, e.g. 'tier in (gold, silver), !legacy'.
    #[arg(long, value_name = "SELECTOR")]
    pub selector: Option<String>,
}

impl TenantSelection {
    /// The selected tenants of `model`, or `None` when nothing narrows the selection. An
    /// unknown name or a bad selector is an error: a typo must not select nothing silently.
    pub fn resolve(
        &self,
        model: &DesiredModel,
    ) -> Result<Option<std::collections::BTreeSet<String>>, CliError> {
        if self.tenants.is_empty() && self.selector.is_none() {
            return Ok(None);
        }
        let selector = self
            .selector
            .as_deref()
            .map(crate::manifest::selector::Selector::parse)
            .transpose()
            .map_err(|e| CliError::Usage(format!("--selector: {}", e.message)))?;
        for name in &self.tenants {
            if !model.tenants.contains_key(name) {
                let near =
                    crate::diagnostic::nearest(name, model.tenants.keys().map(String::as_str));
                let hint = crate::diagnostic::did_you_mean(&near)
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                return Err(CliError::Usage(format!(
                    "--tenant {name}: no tenant of that name in the manifests{hint}"
                )));
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
    only: Option<std::collections::BTreeSet<String>>,
    selected: Option<std::collections::BTreeSet<String>>,
) -> Option<std::collections::BTreeSet<String>> {
    match (only, selected) {
        (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
        (a, b) => a.or(b),
    }
}

/// How long to wait for another writer's state lock.
#[derive(clap::Args, Debug, Clone)]
pub struct LockArgs {
    /// Wait this long for the state lock (e.g. 30s, 2m) before giving up.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("`{text}` is not a duration like 30s, 2m or 1h30m: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("`{text}` is negative"))
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

impl Location {
    pub fn state_path(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| default_state_path(&self.path))
    }

    pub fn store(&self) -> FileStateStore {
        FileStateStore::new(self.state_path())
    }
}

/// Manifests that loaded: the model and the git commit they came from (the checked-out
/// commit for a work tree inside a repository).
pub struct LoadedManifests {
    pub model: DesiredModel,
    pub commit: Option<String>,
}

/// Loads and validates manifests (from the work tree, or at `reference` in git); diagnostics
/// go to stderr, errors stop the command.
pub fn load_manifests(
    cx: &Context,
    path: &Path,
    reference: Option<&str>,
    strict: bool,
) -> Result<LoadedManifests, CliError> {
    let (sources, load_diagnostics, commit) = match reference {
        Some(reference) => {
            let (sources, diags, commit) = crate::git::load_at(path, reference)?;
            (sources, diags, Some(commit))
        }
        None => {
            let (sources, diags) = load_path(path)?;
            let commit = if path == Path::new("-") {
                None
            } else {
                crate::git::head_commit(path)
            };
            (sources, diags, commit)
        }
    };
    let Validation {
        model, diagnostics, ..
    } = validate_sources(&sources, load_diagnostics);
    // Quiet runs show errors only.
    let shown: Vec<crate::diagnostic::Diagnostic> = diagnostics
        .iter()
        .filter(|d| cx.verbosity > crate::cli::progress::Verbosity::Quiet || d.is_error())
        .cloned()
        .collect();
    eprint!("{}", render::render_diagnostics(&sources, &shown, cx.color));
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if errors > 0 || (strict && warnings > 0) {
        return Err(CliError::InvalidManifests { errors, warnings });
    }
    Ok(LoadedManifests { model, commit })
}

/// Writes a file atomically with owner-only permissions.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// How to reach Entra.
#[derive(clap::Args, Debug, Clone)]
pub struct GraphArgs {
    /// Use an embedded Graph sandbox instead of Microsoft Graph (no Azure account needed). Its
    /// directory is kept in `sandbox-world.json` beside the state file between runs.
    #[arg(long)]
    pub sandbox: bool,
    /// Faults for the sandbox, e.g. latency=50ms,throttle=0.1,replication=2s (see `sandbox serve --help`).
    #[arg(long, value_name = "SPEC", requires = "sandbox", value_parser = crate::sandbox::Faults::parse)]
    pub sandbox_faults: Option<crate::sandbox::Faults>,
    /// How many tenants are read (and applied) at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub parallelism: usize,
    /// Admin-consent redirect URI shown in "consent needed" links.
    #[arg(
        long,
        value_name = "URL",
        env = "TENANTFORM_CONSENT_REDIRECT_URI",
        default_value = "https://localhost/consent-done"
    )]
    pub consent_redirect_uri: String,
}

/// How Entra is taken into a plan.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanningArgs {
    /// Do not read Entra: plan only the MSP-side records (tenants, organizations, MSP roles).
    /// Guests and directory roles are neither planned nor checked, and the output says so.
    #[arg(long, conflicts_with = "sandbox")]
    pub offline: bool,
    /// An object applied less than this long ago that Entra does not show yet is pending
    /// (replication), not missing; after it, it is missing and created again.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub replication_window: Duration,
}

/// A Graph client, the runtime it runs on, and the sandbox behind it (if any).
pub struct Connection {
    pub client: std::sync::Arc<crate::graph::GraphClient>,
    pub runtime: tokio::runtime::Runtime,
    sandbox: Option<(crate::sandbox::SandboxHandle, PathBuf)>,
}

impl Connection {
    /// Saves the sandbox's directory for the next run (no-op against real Graph).
    pub fn close(self) -> Result<(), CliError> {
        if let Some((sandbox, path)) = &self.sandbox {
            let fixture = sandbox.with_world(|w| w.to_fixture());
            let text = serde_json::to_vec_pretty(&fixture).expect("fixture serializes");
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            write_private_file(path, &text)?;
        }
        Ok(())
    }
}

/// The sandbox's world: the saved one, plus a consented tenant for every mapped tenant.
fn sandbox_fixture(
    model: &DesiredModel,
    saved: &Path,
) -> Result<crate::sandbox::Fixture, CliError> {
    use crate::sandbox::fixture::{
        FixtureApp, FixtureTenant, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET,
    };
    let mut fixture = if saved.exists() {
        crate::sandbox::Fixture::load(saved)
            .map_err(|e| CliError::Usage(format!("{e} (delete it to start the sandbox afresh)")))?
    } else {
        crate::sandbox::Fixture::default()
    };
    if fixture.apps.is_empty() {
        fixture.apps.push(FixtureApp {
            client_id: SANDBOX_CLIENT_ID.into(),
            client_secret: SANDBOX_CLIENT_SECRET.into(),
            roles: crate::sandbox::fixture::default_app_roles(),
        });
    }
    for tenant in model.tenants.values() {
        let Some(id) = &tenant.microsoft_tenant_id else {
            continue;
        };
        if fixture
            .tenants
            .iter()
            .any(|t| t.id.eq_ignore_ascii_case(id))
        {
            continue;
        }
        fixture.tenants.push(FixtureTenant::new(
            id,
            &tenant.display_name,
            &format!("{}.onmicrosoft.com", tenant.name.replace('-', "")),
        ));
    }
    Ok(fixture)
}

/// The runtime Graph calls run on (two workers: the machine has two cores).
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "tokio runtime".into(),
            source,
        })
}

/// Whether a command can do without Entra.
#[derive(Clone, Copy, Debug)]
pub enum Need<'a> {
    /// Plans: Entra is read when the manifests have objects there, unless `--offline`.
    Plan { command: &'a str, offline: bool },
    /// Commands that only talk to Entra (drift, export, auth check, customers, consent-url).
    Always { command: &'a str },
}

/// Connects for a command that cannot do anything without Entra.
pub fn connect_required(
    args: &GraphArgs,
    model: &DesiredModel,
    state_path: &Path,
    command: &str,
) -> Result<Connection, CliError> {
    connect(args, model, state_path, Need::Always { command })?.ok_or_else(|| {
        CliError::NoCredentials {
            command: command.to_string(),
        }
    })
}

/// What to tell someone who ran a command that needs Entra without credentials.
pub const CREDENTIALS_HELP: &str = "set AZURE_CLIENT_ID (the MSP's multi-tenant app) and AZURE_TENANT_ID (the partner tenant) with one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE";

/// Connects to Graph: the sandbox with `--sandbox`, Microsoft Graph when AZURE_CLIENT_ID is
/// set; nothing with `--offline`. Without credentials, a command whose manifests have Entra
/// objects fails (naming the variables to set) instead of reporting a fleet it never read.
/// No network request is made before credentials are known.
pub fn connect(
    args: &GraphArgs,
    model: &DesiredModel,
    state_path: &Path,
    need: Need<'_>,
) -> Result<Option<Connection>, CliError> {
    use crate::graph::{Credential, GraphClient, GraphConfig, RetryPolicy, Secret};
    if let Need::Plan { offline: true, .. } = need {
        return Ok(None);
    }
    let runtime = runtime()?;
    let graph_error = |e: crate::graph::GraphClientError| CliError::Usage(e.to_string());
    if args.sandbox {
        let saved = state_path.with_file_name("sandbox-world.json");
        let fixture = sandbox_fixture(model, &saved)?;
        let faults = args.sandbox_faults.clone().unwrap_or_default();
        let handle = crate::sandbox::SandboxHandle::start(&fixture, faults).map_err(|source| {
            CliError::Io {
                path: "127.0.0.1".into(),
                source,
            }
        })?;
        let config = GraphConfig {
            client_id: crate::sandbox::fixture::SANDBOX_CLIENT_ID.into(),
            home_tenant_id: None,
            credential: Credential::ClientSecret(Secret::new(
                crate::sandbox::fixture::SANDBOX_CLIENT_SECRET,
            )),
            login_url: handle.base_url().to_string(),
            graph_url: handle.graph_url(),
        };
        let client = GraphClient::new(config, RetryPolicy::default()).map_err(graph_error)?;
        return Ok(Some(Connection {
            client: client.into(),
            runtime,
            sandbox: Some((handle, saved)),
        }));
    }
    match GraphConfig::from_env(|k| std::env::var(k).ok()) {
        Ok(config) => {
            let client = GraphClient::new(config, RetryPolicy::default()).map_err(graph_error)?;
            Ok(Some(Connection {
                client: client.into(),
                runtime,
                sandbox: None,
            }))
        }
        Err(crate::graph::config::ConfigError::NoClientId) => match need {
            // Nothing in the manifests lives in Entra: there is nothing to read.
            Need::Plan { .. } if desired_live_tenants(model).is_empty() => Ok(None),
            Need::Plan { command, .. } | Need::Always { command } => Err(CliError::NoCredentials {
                command: command.to_string(),
            }),
        },
        Err(e) => Err(CliError::Usage(format!(
            "{e} (Graph credentials: {CREDENTIALS_HELP})"
        ))),
    }
}

/// The tenants with Entra objects (guests, directory roles) the manifests ask for.
fn desired_live_tenants(model: &DesiredModel) -> std::collections::BTreeMap<String, String> {
    let mut tenants = std::collections::BTreeMap::new();
    for k in crate::resources::KINDS.iter().filter(|k| k.live.is_some()) {
        for d in (k.desired)(model) {
            if let Some(id) = model
                .tenants
                .get(&d.tenant)
                .and_then(|t| t.microsoft_tenant_id.clone())
            {
                tenants.insert(d.tenant, id);
            }
        }
    }
    tenants
}

/// The tenants of Entra objects recorded in state (they may no longer be desired).
fn stored_live_tenants(
    model: &DesiredModel,
    state: &crate::state::State,
) -> std::collections::BTreeMap<String, String> {
    let mut tenants = std::collections::BTreeMap::new();
    for k in crate::resources::KINDS.iter().filter(|k| k.live.is_some()) {
        for (address, object) in state.objects_of_kind(k.name) {
            let tenant = (k.tenant_of)(address, object);
            let id = model
                .tenants
                .get(&tenant)
                .and_then(|t| t.microsoft_tenant_id.clone())
                .or_else(|| {
                    state
                        .objects
                        .get(&format!("tenant.{tenant}"))
                        .and_then(|t| t.attributes.get("microsoftTenantId"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                });
            if let Some(id) = id {
                tenants.insert(tenant, id);
            }
        }
    }
    tenants
}

fn to_read(
    tenants: std::collections::BTreeMap<String, String>,
) -> Vec<crate::graph::read::TenantToRead> {
    tenants
        .into_iter()
        .map(
            |(name, microsoft_tenant_id)| crate::graph::read::TenantToRead {
                name,
                microsoft_tenant_id,
            },
        )
        .collect()
}

/// Reading live Entra in the background while the rest of the plan's inputs load.
pub struct LiveRead {
    handle: tokio::task::JoinHandle<crate::live::LiveSnapshot>,
    started: std::collections::BTreeSet<String>,
    progress: std::sync::Arc<Progress>,
    /// The tenants in the plan's scope (`None`: all).
    scope: Option<std::collections::BTreeSet<String>>,
}

fn on_read(progress: &std::sync::Arc<Progress>) -> crate::graph::read::OnTenantRead {
    let progress = progress.clone();
    std::sync::Arc::new(move |_, live| progress.tenant_done(live.is_failed()))
}

/// The live sources plans and drift read: those every live kind needs, and the report-only
/// ones.
fn live_sources() -> Vec<&'static crate::graph::sources::Source> {
    crate::graph::sources::for_kinds(crate::resources::KINDS)
}

/// Starts reading the tenants the manifests need (with `every_mapped`, every tenant mapped to
/// a Microsoft tenant: drift checks privileged access even where nothing is declared).
pub fn start_live_read(
    cx: &Context,
    connection: &Connection,
    args: &GraphArgs,
    model: &DesiredModel,
    every_mapped: bool,
    scope: Option<&std::collections::BTreeSet<String>>,
) -> LiveRead {
    let in_scope = |name: &str| scope.is_none_or(|s| s.contains(name));
    let mut tenants = desired_live_tenants(model);
    tenants.retain(|name, _| in_scope(name));
    if every_mapped {
        for t in model.tenants.values().filter(|t| in_scope(&t.name)) {
            if let Some(id) = &t.microsoft_tenant_id {
                tenants.insert(t.name.clone(), id.clone());
            }
        }
    }
    let started = tenants.keys().cloned().collect();
    let progress = std::sync::Arc::new(Progress::new("Reading Entra", tenants.len(), cx.verbosity));
    let client = connection.client.clone();
    let (parallelism, redirect) = (args.parallelism, args.consent_redirect_uri.clone());
    let report = on_read(&progress);
    let handle = connection.runtime.spawn(async move {
        crate::graph::read::read_tenants(
            &client,
            to_read(tenants),
            &live_sources(),
            parallelism,
            &redirect,
            Some(report),
        )
        .await
    });
    LiveRead {
        handle,
        started,
        progress,
        scope: scope.cloned(),
    }
}

/// Waits for the background read, then reads the tenants only state knows about.
pub fn finish_live_read(
    connection: &Connection,
    args: &GraphArgs,
    read: LiveRead,
    model: &DesiredModel,
    state: &crate::state::State,
) -> crate::live::LiveSnapshot {
    let mut snapshot = connection
        .runtime
        .block_on(read.handle)
        .expect("live read task");
    let mut rest = stored_live_tenants(model, state);
    rest.retain(|name, _| {
        !read.started.contains(name) && read.scope.as_ref().is_none_or(|s| s.contains(name))
    });
    if !rest.is_empty() {
        read.progress.add_total(rest.len());
        let more = connection
            .runtime
            .block_on(crate::graph::read::read_tenants(
                &connection.client,
                to_read(rest),
                &live_sources(),
                args.parallelism,
                &args.consent_redirect_uri,
                Some(on_read(&read.progress)),
            ));
        snapshot.tenants.extend(more.tenants);
    }
    snapshot
}
