//! One value for a run's inputs: the manifests (validated), the state backend and, once
//! connected, Graph. Opening it is the only place manifests are loaded and Graph is reached.

use std::collections::BTreeMap;
use std::path::Path;

use crate::graph::{GraphClient, RetryPolicy};
use crate::model::{DesiredFleet, DesiredModel};
use crate::ops::settings::{GraphTarget, ManifestSource, Settings};
use crate::ops::{OpsError, Reporter};
use crate::state::StateStore;

/// Validated manifests and where they came from.
pub struct Manifests {
    pub fleet: DesiredFleet,
    /// The git commit they were read at (the checked-out commit for a work tree in git).
    pub commit: Option<String>,
}

/// Loads and validates manifests. Diagnostics go to the reporter; errors (or warnings with
/// `strict`) stop the run.
pub fn load_manifests(
    source: &ManifestSource,
    strict: bool,
    reporter: &dyn Reporter,
) -> Result<Manifests, OpsError> {
    let (mut sources, load_diagnostics, commit) = match &source.reference {
        Some(reference) => {
            let (sources, diags, commit) = crate::git::load_at(&source.path, reference)?;
            (sources, diags, Some(commit))
        }
        None => {
            let (sources, diags) = crate::load::load_path(&source.path)?;
            let commit = if source.path == Path::new("-") {
                None
            } else {
                crate::git::head_commit(&source.path)
            };
            (sources, diags, commit)
        }
    };
    let mut validation = crate::validate_sources(&mut sources, load_diagnostics)
        .map_err(OpsError::io(crate::model::STORE_PATH))?;
    crate::load::restore_texts(&mut sources, &mut validation.diagnostics);
    reporter.diagnostics(&sources, &validation.diagnostics);
    let (errors, warnings) = (validation.errors(), validation.warnings());
    if errors > 0 || (strict && warnings > 0) {
        return Err(OpsError::InvalidManifests { errors, warnings });
    }
    Ok(Manifests {
        fleet: validation.fleet,
        commit,
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

/// A Graph client, the runtime it runs on, and the sandbox behind it (if any).
pub struct Connection {
    pub client: std::sync::Arc<GraphClient>,
    pub runtime: tokio::runtime::Runtime,
    /// The partner (MSP) tenant, where GDAP relationships live: `AZURE_TENANT_ID` against
    /// Graph; in the sandbox, its tenant with customers (`contracts`).
    pub partner_tenant: Option<String>,
    sandbox: Option<(crate::sandbox::SandboxHandle, std::path::PathBuf)>,
}

impl Connection {
    /// Saves the sandbox's directory for the next run (no-op against real Graph).
    pub fn close(self) -> Result<(), OpsError> {
        if let Some((sandbox, path)) = &self.sandbox {
            let fixture = sandbox.with_world(|w| w.to_fixture());
            let text = serde_json::to_vec_pretty(&fixture).expect("fixture serializes");
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(OpsError::io(dir.display()))?;
            }
            write_private_file(path, &text)?;
        }
        Ok(())
    }
}

/// The runtime Graph calls run on (two workers: the machine has two cores).
pub fn runtime() -> Result<tokio::runtime::Runtime, OpsError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(OpsError::io("tokio runtime"))
}

/// Connects to Graph: the sandbox with `--sandbox`, Microsoft Graph when credentials are
/// configured; nothing for an offline plan. Without credentials, a command whose manifests
/// have Entra objects fails (naming the variables to set) instead of reporting a fleet it
/// never read. No network request is made here. `catalog` gives the sandbox its tenants;
/// `has_live_objects` is asked only without credentials.
pub fn connect(
    settings: &Settings,
    catalog: &DesiredModel,
    has_live_objects: &dyn Fn() -> Result<bool, OpsError>,
    need: Need<'_>,
) -> Result<Option<Connection>, OpsError> {
    if let Need::Plan { offline: true, .. } = need {
        return Ok(None);
    }
    let graph_error = |error| OpsError::Graph {
        context: "starting the Graph client",
        error,
    };
    match &settings.graph.target {
        GraphTarget::Sandbox { faults, seed } => {
            let saved = settings.sandbox_world_path();
            let fixture = sandbox_fixture(catalog, &saved, seed.as_deref())?;
            let handle = crate::sandbox::SandboxHandle::start(&fixture, faults.clone())
                .map_err(OpsError::io("127.0.0.1"))?;
            let client = GraphClient::new(handle.graph_config(), RetryPolicy::default())
                .map_err(graph_error)?;
            let partner_tenant = fixture
                .tenants
                .iter()
                .find(|t| !t.contracts.is_empty())
                .map(|t| t.id.to_lowercase());
            Ok(Some(Connection {
                client: client.into(),
                runtime: runtime()?,
                partner_tenant,
                sandbox: Some((handle, saved)),
            }))
        }
        GraphTarget::Graph(config) => {
            let client = GraphClient::new((**config).clone(), RetryPolicy::default())
                .map_err(graph_error)?;
            Ok(Some(Connection {
                client: client.into(),
                runtime: runtime()?,
                partner_tenant: config.home_tenant_id.clone(),
                sandbox: None,
            }))
        }
        GraphTarget::NotConfigured => match need {
            // Nothing in the manifests lives in Entra: there is nothing to read.
            Need::Plan { command, .. } if has_live_objects()? => Err(OpsError::NoCredentials {
                command: command.to_string(),
            }),
            Need::Plan { .. } => Ok(None),
            Need::Always { command } => Err(OpsError::NoCredentials {
                command: command.to_string(),
            }),
        },
        GraphTarget::Misconfigured(e) => Err(OpsError::Credentials(e.clone())),
    }
}

/// Connects for a command that cannot do anything without Entra.
pub fn connect_required(
    settings: &Settings,
    catalog: &DesiredModel,
    command: &str,
) -> Result<Connection, OpsError> {
    connect(settings, catalog, &|| Ok(true), Need::Always { command })?.ok_or_else(|| {
        OpsError::NoCredentials {
            command: command.to_string(),
        }
    })
}

/// The sandbox's world: the saved one, plus a consented tenant for every mapped tenant.
fn sandbox_fixture(
    model: &DesiredModel,
    saved: &Path,
    seed: Option<&Path>,
) -> Result<crate::sandbox::Fixture, OpsError> {
    use crate::sandbox::fixture::{
        FixtureApp, FixtureTenant, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET,
    };
    let mut fixture = if saved.exists() {
        crate::sandbox::Fixture::load(saved).map_err(|e| OpsError::SandboxWorld {
            path: saved.display().to_string(),
            message: e.to_string(),
        })?
    } else if let Some(seed) = seed {
        crate::sandbox::Fixture::load(seed).map_err(|e| OpsError::SandboxWorld {
            path: seed.display().to_string(),
            message: e.to_string(),
        })?
    } else {
        crate::sandbox::Fixture::default()
    };
    if fixture.apps.is_empty() {
        fixture.apps.push(FixtureApp {
            client_id: SANDBOX_CLIENT_ID.into(),
            client_secret: SANDBOX_CLIENT_SECRET.into(),
            roles: crate::sandbox::fixture::default_app_roles(),
            federated_credentials: crate::sandbox::fixture::default_federated_credentials(),
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
    add_sandbox_partner(&mut fixture, model);
    Ok(fixture)
}

/// GDAP relationships live in a partner tenant: when the manifests declare some and the
/// world has no partner (no tenant with customers), the sandbox plays the MSP's own tenant
/// as it plays each customer's: a partner with every mapped tenant as a customer, the
/// Partner Customer Delegated Administration service principal and the security groups the
/// access assignments name. A world that has a partner is left as it is (a fixture decides).
fn add_sandbox_partner(fixture: &mut crate::sandbox::Fixture, model: &DesiredModel) {
    use crate::sandbox::fixture::{
        FixtureContract, FixtureGroup, FixtureServicePrincipal, FixtureTenant,
        SANDBOX_PARTNER_TENANT_ID,
    };
    if model.gdap_relationships.is_empty()
        || fixture.tenants.iter().any(|t| {
            !t.contracts.is_empty() || t.id.eq_ignore_ascii_case(SANDBOX_PARTNER_TENANT_ID)
        })
    {
        return;
    }
    let mut groups: Vec<String> = model
        .gdap_relationships
        .values()
        .flatten()
        .flat_map(|r| r.access_assignments.iter().map(|a| a.group_id.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    let partner = FixtureTenant {
        contracts: fixture
            .tenants
            .iter()
            .map(|t| FixtureContract {
                customer_id: t.id.clone(),
                display_name: t.display_name.clone(),
                default_domain_name: t.domain.clone(),
                contract_type: "ResellerPartner".into(),
            })
            .collect(),
        service_principals: vec![FixtureServicePrincipal::partner_customer_delegated_admin()],
        groups: groups
            .into_iter()
            .map(|id| FixtureGroup {
                display_name: format!("Partner group {id}"),
                id,
                mail: None,
                is_assignable_to_role: false,
                members: Vec::new(),
            })
            .collect(),
        ..FixtureTenant::new(
            SANDBOX_PARTNER_TENANT_ID,
            "Contoso MSP (partner)",
            "contoso-msp.onmicrosoft.com",
        )
    };
    fixture.tenants.insert(0, partner);
}

/// The tenants with Entra objects (guests, directory roles) the manifests ask for, by name,
/// with their Microsoft tenant ids. From each kind's `LiveRules::tenants`, never by building
/// the fleet's desired objects (at 10,000 tenants that alone peaked at hundreds of MB).
/// [`connect`] for a plan of `fleet`'s tenants in scope (`only`, or every tenant).
pub fn connect_fleet(
    settings: &Settings,
    fleet: &DesiredFleet,
    only: Option<&std::collections::BTreeSet<String>>,
    need: Need<'_>,
) -> Result<Option<Connection>, OpsError> {
    connect(
        settings,
        &fleet.catalog,
        &|| fleet_has_live_objects(fleet, only),
        need,
    )
}

/// Whether any tenant in scope (`only`, or every tenant) has desired objects in Entra: read
/// tenant by tenant, stopping at the first.
pub fn fleet_has_live_objects(
    fleet: &DesiredFleet,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Result<bool, OpsError> {
    // A tenant whose end users are synced is read from Entra too.
    let in_scope = |t: &String| only.is_none_or(|only| only.contains(t));
    if fleet.catalog.end_user_syncs.keys().any(in_scope) {
        return Ok(true);
    }
    for tenant in fleet.tenants_with_objects() {
        if only.is_some_and(|only| !only.contains(tenant)) {
            continue;
        }
        let slice = fleet
            .slice(tenant)
            .map_err(OpsError::io(crate::model::STORE_PATH))?;
        if !desired_live_tenants(&slice).is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn desired_live_tenants(model: &DesiredModel) -> BTreeMap<String, String> {
    let mut tenants = BTreeMap::new();
    for rules in crate::resources::KINDS
        .iter()
        .filter_map(|k| k.live.as_ref())
    {
        for tenant in (rules.tenants)(model) {
            if let Some(id) = model
                .tenants
                .get(&tenant)
                .and_then(|t| t.microsoft_tenant_id.clone())
            {
                tenants.insert(tenant, id);
            }
        }
    }
    tenants
}

/// Creates the owner-only temporary file beside `path` that is renamed onto it once complete.
pub fn create_private_temp(path: &Path) -> Result<(std::fs::File, std::path::PathBuf), OpsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(OpsError::io(path.display()))?;
    Ok((file, tmp))
}

/// Writes a file atomically with owner-only permissions.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), OpsError> {
    use std::io::Write;
    let (mut file, tmp) = create_private_temp(path)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(OpsError::io(path.display()))?;
    std::fs::rename(&tmp, path).map_err(OpsError::io(path.display()))
}

/// A run's inputs: settings, validated manifests, the state store, and Graph once connected.
pub struct Workspace {
    pub settings: Settings,
    pub manifests: Manifests,
    /// Shared so a tenant's read can look at its stored records on a blocking thread.
    pub store: std::sync::Arc<dyn StateStore + Send + Sync>,
    pub connection: Option<Connection>,
}

impl Workspace {
    /// Loads and validates the manifests the settings name.
    pub fn open(settings: Settings, reporter: &dyn Reporter) -> Result<Workspace, OpsError> {
        let manifests = load_manifests(&settings.manifests, settings.strict, reporter)?;
        Workspace::with_manifests(settings, manifests)
    }

    /// A workspace over manifests already loaded (commands where they are optional).
    pub fn with_manifests(settings: Settings, manifests: Manifests) -> Result<Workspace, OpsError> {
        let store = settings.store()?.into();
        Ok(Workspace {
            settings,
            manifests,
            store,
            connection: None,
        })
    }

    /// Ends the run: saves the sandbox's directory for the next one.
    pub fn close(self) -> Result<(), OpsError> {
        match self.connection {
            Some(c) => c.close(),
            None => Ok(()),
        }
    }
}
