//! Everything the sandbox holds: apps, tenant directories, issued tokens, faults, budgets and
//! the log of requests served. One lock around it; every operation is short.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde::Serialize;

use super::directory::{Directory, GraphError};
use super::faults::{Budgets, Faults, Rng};
use super::fixture::{Fixture, FixtureApp};

/// How long issued tokens live (Entra's are about an hour).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

#[derive(Clone, Debug)]
pub struct Token {
    pub tenant_id: String,
    pub client_id: String,
    pub expires: Instant,
    /// Application permissions in the token's `roles` claim (granted when it was issued).
    pub roles: Vec<String>,
    /// A person's token (the Azure CLI): delegated scopes and directory roles instead of
    /// `roles`.
    pub delegated: Option<Delegation>,
}

/// What a delegated token carries: the signed-in user, the delegated permissions (`scp`) and
/// the user's directory role template ids in the token's tenant (`wids`).
#[derive(Clone, Debug)]
pub struct Delegation {
    pub user_id: String,
    pub scopes: Vec<String>,
    pub wids: Vec<String>,
}

/// One request as served, for tests and benchmarks to count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query, e.g. `/v1.0/users` or `/{tenant}/oauth2/v2.0/token`.
    pub path: String,
    /// The tenant the request acted in, when known.
    pub tenant: Option<String>,
    pub status: u16,
    /// An inner request of a `$batch` (the batch itself is recorded too).
    pub in_batch: bool,
}

pub struct World {
    pub apps: Vec<FixtureApp>,
    pub tenants: IndexMap<String, Directory>,
    domains: HashMap<String, String>,
    pub tokens: HashMap<String, Token>,
    pub faults: Faults,
    pub rng: Rng,
    pub budgets: Budgets,
    pub requests: Vec<RecordedRequest>,
    /// Seconds a token lives; tests shorten it to exercise refresh.
    pub token_lifetime: Duration,
    /// The secretless credentials' endpoints (`/_emulators/...`).
    pub emulators: super::emulators::Emulators,
}

impl World {
    pub fn new(fixture: &Fixture, faults: Faults) -> World {
        let mut tenants = IndexMap::new();
        let mut domains = HashMap::new();
        for t in &fixture.tenants {
            let dir = Directory::from_fixture(t);
            domains.insert(dir.domain.to_lowercase(), dir.id.clone());
            tenants.insert(dir.id.clone(), dir);
        }
        World {
            apps: fixture.apps.clone(),
            tenants,
            domains,
            tokens: HashMap::new(),
            rng: Rng::new(faults.seed),
            faults,
            budgets: Budgets::default(),
            requests: Vec::new(),
            token_lifetime: TOKEN_LIFETIME,
            emulators: Default::default(),
        }
    }

    /// The world as a fixture: apps, tenants, users, guests, contracts, role assignments.
    pub fn to_fixture(&self) -> Fixture {
        Fixture {
            apps: self.apps.clone(),
            tenants: self.tenants.values().map(Directory::to_fixture).collect(),
        }
    }

    /// A tenant by id (any case) or verified domain.
    pub fn resolve_tenant(&self, key: &str) -> Option<String> {
        let key = key.to_lowercase();
        if self.tenants.contains_key(&key) {
            return Some(key);
        }
        self.domains.get(&key).cloned()
    }

    pub fn directory(&mut self, key: &str) -> Result<&mut Directory, GraphError> {
        let id = self
            .resolve_tenant(key)
            .ok_or_else(|| GraphError::not_found(key))?;
        Ok(self.tenants.get_mut(&id).expect("resolved"))
    }

    /// The token's tenant and app, if the token is known and not expired.
    pub fn check_token(&self, token: &str) -> Option<&Token> {
        self.tokens
            .get(token)
            .filter(|t| t.expires > Instant::now())
    }
}
