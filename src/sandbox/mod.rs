//! An embedded Microsoft Graph emulator served over real HTTP on 127.0.0.1.
//!
//! Many tenants in one process, a token endpoint shaped like Entra's, the Graph v1.0 paths
//! tenantform uses (invitations, users, deleted items, role definitions and assignments,
//! contracts, organization, `$batch`), faults on demand, and a log of every request. It is the
//! peer for the Graph client's tests, the README's demo and the benchmarks. Start it in-process
//! with [`SandboxHandle::start`] or standalone with `tenantform sandbox serve`.

pub mod auth;
pub mod changes;
pub mod consent;
pub mod delta;
pub mod directory;
pub mod emulators;
pub mod faults;
pub mod fixture;
pub mod gdap;
pub mod graph;
pub mod licences;
pub mod odata;
pub mod permissions;
pub mod posture;
pub mod secure_score;
pub mod server;
pub mod world;

use std::sync::{Arc, Mutex};

use serde_json::Value;

pub use directory::GraphError;
pub use faults::Faults;
pub use fixture::Fixture;
pub use world::{RecordedRequest, World};

/// The current time as Graph prints it (RFC 3339, UTC, seconds).
pub fn now() -> String {
    crate::state::now_rfc3339()
}

/// A running sandbox on an ephemeral port; stops when dropped.
pub struct SandboxHandle {
    base_url: String,
    world: Arc<Mutex<World>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SandboxHandle {
    /// Starts a sandbox on `127.0.0.1` with an ephemeral port, served by its own threads.
    pub fn start(fixture: &Fixture, faults: Faults) -> std::io::Result<SandboxHandle> {
        Self::start_on(fixture, faults, 0)
    }

    pub fn start_on(
        fixture: &Fixture,
        faults: Faults,
        port: u16,
    ) -> std::io::Result<SandboxHandle> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        std_listener.set_nonblocking(true)?;
        let base_url = format!("http://{}", std_listener.local_addr()?);
        let world = Arc::new(Mutex::new(World::new(fixture, faults)));
        let shared = server::Shared {
            world: world.clone(),
            base_url: base_url.clone().into(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("graph-sandbox".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("graph-sandbox-worker")
                    .enable_all()
                    .build()
                    .expect("sandbox runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("listener");
                    server::serve(listener, shared, rx).await;
                });
            })?;
        Ok(SandboxHandle {
            base_url,
            world,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`: the login base (token URL is `{base}/{tenant}/oauth2/v2.0/token`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://127.0.0.1:PORT/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }

    /// Graph settings that sign in to this sandbox as its own app (client secret, no partner
    /// tenant): what `--sandbox`, benchmarks and tests connect with.
    pub fn graph_config(&self) -> crate::graph::GraphConfig {
        use crate::graph::{Credential, GraphConfig, Secret};
        GraphConfig {
            client_id: fixture::SANDBOX_CLIENT_ID.into(),
            home_tenant_id: None,
            credential: Credential::ClientSecret(Secret::new(fixture::SANDBOX_CLIENT_SECRET)),
            choice: crate::graph::credentials::CredentialChoice {
                source: "client-secret".into(),
                reason: "the sandbox's own app (--sandbox)".into(),
                not_used: Vec::new(),
            },
            login_url: self.base_url.clone(),
            graph_url: self.graph_url(),
        }
    }

    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url)
    }

    /// Runs `f` with the sandbox's world locked (for inspection and out-of-band changes).
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut world = self.world.lock().expect("sandbox lock");
        f(&mut world)
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.with_world(|w| w.requests.clone())
    }

    pub fn clear_requests(&self) {
        self.with_world(|w| w.requests.clear());
    }

    pub fn set_faults(&self, faults: Faults) {
        self.with_world(|w| {
            w.rng = faults::Rng::new(faults.seed);
            w.faults = faults;
        });
    }

    fn user_id(world: &mut World, tenant: &str, user: &str) -> Result<String, GraphError> {
        world
            .directory(tenant)?
            .user_id(user)
            .ok_or_else(|| GraphError::not_found(user))
    }

    /// The guest redeems their invitation (by user id or email).
    pub fn accept_invitation(&self, tenant: &str, user: &str) -> Result<(), GraphError> {
        self.with_world(|w| {
            let id = Self::user_id(w, tenant, user)?;
            w.directory(tenant)?.accept(&id)
        })
    }

    /// Someone edits a user in the portal (out of band).
    pub fn edit_user(&self, tenant: &str, user: &str, patch: &Value) -> Result<(), GraphError> {
        self.with_world(|w| {
            let id = Self::user_id(w, tenant, user)?;
            w.directory(tenant)?.patch_user(&id, patch)
        })
    }

    /// Someone deletes a user in the portal (out of band).
    pub fn delete_user(&self, tenant: &str, user: &str) -> Result<(), GraphError> {
        self.with_world(|w| {
            let id = Self::user_id(w, tenant, user)?;
            w.directory(tenant)?.delete_user(&id)
        })
    }

    /// Someone removes a role assignment in the portal (out of band).
    pub fn remove_role_assignment(&self, tenant: &str, id: &str) -> Result<(), GraphError> {
        self.with_world(|w| {
            w.directory(tenant)?
                .role_assignments
                .shift_remove(id)
                .map(|_| ())
                .ok_or_else(|| GraphError::not_found(id))
        })
    }

    /// Grants or revokes the app's consent in a tenant.
    pub fn set_consent(&self, tenant: &str, consent: bool) -> Result<(), GraphError> {
        self.with_world(|w| {
            w.directory(tenant)?.consent = consent;
            Ok(())
        })
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
