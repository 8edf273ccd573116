//! The Graph client: per-tenant tokens (cached until near expiry), retries that honour
//! Graph's throttling, paging and `$batch`. Errors name the tenant, the Graph error code, the
//! message and the request id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::{Value, json};

use super::config::{Credential, GraphConfig};

/// Bounds on retrying one request.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_total: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_total: Duration::from_secs(120),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphClientError {
    /// The token request failed; `consent_needed` when the app is not consented there.
    #[error("tenant {tenant}: cannot get a token: {message}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Token {
        tenant: String,
        code: Option<String>,
        message: String,
        consent_needed: bool,
    },
    #[error(transparent)]
    Api(Box<ApiError>),
    #[error("tenant {tenant}: {method} {path}: {message}")]
    Transport {
        tenant: String,
        method: String,
        path: String,
        message: String,
    },
}

impl GraphClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphClientError::Api(e) => Some(e.status),
            _ => None,
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphClientError::Api(e) => Some(&e.code),
            GraphClientError::Token { code, .. } => code.as_deref(),
            _ => None,
        }
    }
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphClientError::Api(e) => Some(e.request_id.as_str()).filter(|id| *id != "none"),
            _ => None,
        }
    }

    /// What this error means for the tenant, with its code and request id.
    pub fn failure(&self) -> crate::outcome::Failure {
        use crate::outcome::Cause;
        let cause = match self {
            GraphClientError::Token {
                consent_needed: true,
                ..
            } => Cause::ConsentMissing,
            GraphClientError::Token { .. } => Cause::TokenRefused,
            // A 403 is "permission missing" when the token lacks every permission the request
            // accepts; when it holds one (a sensitive action, a tenant policy), it is Graph's
            // error as sent. Unknown roles or an unknown request: permission missing.
            GraphClientError::Api(e) if e.status == 403 => match &e.permission {
                Some(gap) if gap.granted_one => Cause::GraphError,
                _ => Cause::PermissionMissing,
            },
            GraphClientError::Api(_) | GraphClientError::Transport { .. } => Cause::GraphError,
        };
        let message = match self {
            GraphClientError::Api(e) if cause == Cause::PermissionMissing => match &e.permission {
                Some(PermissionGap {
                    person: Some(person),
                    ..
                }) => format!(
                    "{} in tenant {} ({} {}): the signed-in person's token there has {} and directory roles {}",
                    person.missing,
                    e.tenant,
                    e.method,
                    e.path,
                    if person.scopes.is_empty() {
                        "no scopes".to_string()
                    } else {
                        format!("scopes {}", person.scopes.join(" "))
                    },
                    if person.roles.is_empty() {
                        "none".to_string()
                    } else {
                        person.roles.join(", ")
                    }
                ),
                Some(gap) => format!(
                    "{} in tenant {} ({} {}): {}",
                    super::permissions::describe_any_of(&gap.any_of),
                    e.tenant,
                    e.method,
                    e.path,
                    super::permissions::describe_granted(&gap.granted)
                ),
                None => self.to_string(),
            },
            _ => self.to_string(),
        };
        crate::outcome::Failure {
            cause,
            message,
            code: self.code().map(str::to_string),
            request_id: self.request_id().map(str::to_string),
            consent_url: None,
            source: None,
        }
    }

    pub fn is_consent_needed(&self) -> bool {
        matches!(
            self,
            GraphClientError::Token {
                consent_needed: true,
                ..
            }
        )
    }
}

/// A Graph error answer, with everything needed to report it.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "tenant {tenant}: {method} {path} failed: HTTP {status} {code}: {message} (request-id {request_id})"
)]
pub struct ApiError {
    pub tenant: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: String,
    /// For a 403: what the request needed and what the token had.
    pub permission: Option<PermissionGap>,
}

/// The permissions a refused request accepts and the ones the token carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionGap {
    pub any_of: Vec<&'static str>,
    pub granted: Vec<String>,
    /// The token holds one of `any_of`: the refusal is not about the permission.
    pub granted_one: bool,
    /// A person's token: the scope or directory role they lack (`None`: they have both, so
    /// the refusal is about something else).
    pub person: Option<PersonGap>,
}

/// What a person's (delegated) token lacked for a refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonGap {
    /// `directory role Privileged Role Administrator (or ...) for the signed-in person`.
    pub missing: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
}

impl PermissionGap {
    /// For a 403 on `method path` with a token holding `grants`; `None` when the request or
    /// the grants are unknown.
    pub fn of(
        method: &str,
        path: &str,
        grants: Option<&super::permissions::Grants>,
    ) -> Option<PermissionGap> {
        use super::permissions::{Grants, delegated_for, satisfied};
        let any_of = super::permissions::needed(method, path)?;
        Some(match grants? {
            Grants::App(roles) => PermissionGap {
                any_of: any_of.to_vec(),
                granted: roles.to_vec(),
                granted_one: satisfied(any_of, roles),
                person: None,
            },
            Grants::Person(person) => {
                let missing = person.missing(&delegated_for(any_of));
                PermissionGap {
                    any_of: any_of.to_vec(),
                    granted: Vec::new(),
                    granted_one: missing.is_none(),
                    person: missing.map(|missing| PersonGap {
                        missing,
                        scopes: person.scopes.clone(),
                        roles: person.role_names(),
                    }),
                }
            }
        })
    }
}

/// A successful (2xx) response.
#[derive(Clone, Debug)]
pub struct GraphResponse {
    pub status: u16,
    pub body: Value,
}

/// An answer's body as JSON (`Null` when empty or not JSON: an error then says what it can).
fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or(Value::Null)
    }
}

/// One request inside a `$batch`.
#[derive(Clone, Debug)]
pub struct BatchRequest {
    pub id: String,
    pub method: String,
    /// Relative to the version, e.g. `/users?$filter=...`.
    pub url: String,
    pub body: Option<Value>,
    pub depends_on: Vec<String>,
}

/// One answer inside a `$batch`, any status.
#[derive(Clone, Debug)]
pub struct BatchResponse {
    pub id: String,
    pub status: u16,
    pub body: Value,
    /// The request's method and URL, for error messages.
    pub method: String,
    pub url: String,
    /// What the token the batch was sent with was granted (to explain a 403).
    pub grants: Option<super::permissions::Grants>,
}

impl BatchResponse {
    /// A 2xx answer, or the error it carries (as if the request had been sent alone).
    pub fn ok(&self, tenant: &str) -> Result<&Value, GraphClientError> {
        if (200..300).contains(&self.status) {
            Ok(&self.body)
        } else {
            Err(api_error(
                tenant,
                &self.method,
                &self.url,
                self.status,
                &self.body,
                None,
                self.grants.as_ref(),
            ))
        }
    }
}

struct CachedToken {
    value: String,
    refresh_after: Instant,
}

/// A tenant's place in the token cache.
#[derive(Default)]
struct TokenSlot {
    token: tokio::sync::Mutex<Option<CachedToken>>,
    /// When it was last asked for (see [`GraphClient::uses`]).
    last_used: AtomicU64,
}

/// Tokens the client keeps. A run works on `--parallelism` tenants at a time and uses a
/// tenant's token while it works on that tenant; keeping every tenant's token (about 2 KB
/// each) made a plan's memory grow with the fleet. A token dropped is fetched again if the
/// tenant is worked on again (an apply after its plan): one token request.
const TOKENS_KEPT: usize = 1024;

/// Drops the least recently used tokens nobody is using until half of [`TOKENS_KEPT`] are
/// left (or only tokens in use are).
fn drop_least_recently_used(tokens: &mut HashMap<String, std::sync::Arc<TokenSlot>>) {
    let mut idle: Vec<(u64, String)> = tokens
        .iter()
        .filter(|(_, slot)| std::sync::Arc::strong_count(slot) == 1)
        .map(|(tenant, slot)| (slot.last_used.load(Ordering::Relaxed), tenant.clone()))
        .collect();
    idle.sort_unstable();
    let excess = tokens.len().saturating_sub(TOKENS_KEPT / 2);
    for (_, tenant) in idle.into_iter().take(excess) {
        tokens.remove(&tenant);
    }
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct HttpError(#[from] reqwest::Error);

pub struct GraphClient {
    http: reqwest::Client,
    config: GraphConfig,
    retry: RetryPolicy,
    /// One slot per tenant, so tenants fetch their tokens in parallel and a tenant never
    /// fetches twice at once; at most [`TOKENS_KEPT`], the least recently used dropped first.
    tokens: std::sync::Mutex<HashMap<String, std::sync::Arc<TokenSlot>>>,
    /// Orders token uses, for dropping the least recently used.
    uses: AtomicU64,
    requests: AtomicU64,
    token_requests: AtomicU64,
    /// The federated assertion (GitHub Actions, Azure DevOps, managed identity) shared by
    /// every tenant's token request, with its expiry (epoch seconds): fetched again when
    /// less than a minute of it is left.
    assertion: tokio::sync::Mutex<Option<(String, i64)>>,
    assertion_requests: AtomicU64,
}

/// Runs `command` (stdin closed, stdout and stderr captured), killing it after `timeout`.
fn run_with_timeout(
    mut command: std::process::Command,
    timeout: Duration,
) -> Result<std::process::Output, String> {
    use std::io::Read;
    use std::process::Stdio;
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{program} account get-access-token` did not answer within {}s",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// AADSTS codes that mean "the app is not consented in this tenant".
const CONSENT_CODES: &[&str] = &["AADSTS700016", "AADSTS7000229", "AADSTS65001"];

impl GraphClient {
    pub fn new(config: GraphConfig, retry: RetryPolicy) -> Result<GraphClient, GraphClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .user_agent(concat!("tenantform/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphClientError::Transport {
                tenant: String::new(),
                method: String::new(),
                path: String::new(),
                message: e.to_string(),
            })?;
        Ok(GraphClient {
            http,
            config,
            retry,
            tokens: std::sync::Mutex::new(HashMap::new()),
            uses: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
            assertion: tokio::sync::Mutex::new(None),
            assertion_requests: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    /// Graph requests sent (retries and batches counted once per HTTP request).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn token_request_count(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }

    /// Federated assertions fetched from the pipeline's or the managed identity's endpoint.
    pub fn assertion_request_count(&self) -> u64 {
        self.assertion_requests.load(Ordering::Relaxed)
    }

    /// The federated assertion, from the cache unless less than a minute of it is left.
    async fn federated_assertion(&self, tenant: &str) -> Result<String, GraphClientError> {
        use super::credentials as c;
        let mut cached = self.assertion.lock().await;
        let now = jiff::Timestamp::now().as_second();
        if let Some((jwt, exp)) = cached.as_ref()
            && exp - now > c::ASSERTION_MARGIN_SECS
        {
            return Ok(jwt.clone());
        }
        let source = self.config.choice.source.clone();
        let fail = |message: String| GraphClientError::Token {
            tenant: tenant.to_string(),
            code: None,
            message: format!("{source}: cannot get the federated token: {message}"),
            consent_needed: false,
        };
        let request = c::assertion_request(&self.config.credential)
            .ok_or_else(|| fail("the endpoint's URL is not a URL".into()))?;
        self.assertion_requests.fetch_add(1, Ordering::Relaxed);
        let mut builder = match request.method {
            "POST" => self.http.post(&request.url),
            _ => self.http.get(&request.url),
        };
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.expose());
        }
        let response = builder
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let body = body_value(&bytes);
        if !(200..300).contains(&status) {
            // The error's own words (never the whole body: a success holds the token).
            let said = ["error_description", "message", "error"]
                .iter()
                .find_map(|k| body[*k].as_str())
                .map(|m| m.chars().take(300).collect::<String>())
                .unwrap_or_default();
            return Err(fail(format!("HTTP {status} {said}").trim_end().to_string()));
        }
        let jwt = body[request.field]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail(format!("the answer has no `{}`", request.field)))?
            .to_string();
        let exp = c::assertion_expiry(&jwt, &body, now);
        *cached = Some((jwt.clone(), exp));
        Ok(jwt)
    }

    /// A person's token for `tenant` from `az account get-access-token` (stopped after
    /// `timeout`); its stderr is shown on failure (it holds no secret), never its stdout.
    async fn azure_cli_token(
        &self,
        tenant: &str,
        program: &std::path::Path,
        timeout: Duration,
    ) -> Result<(String, Duration), GraphClientError> {
        let fail = |message: String| GraphClientError::Token {
            tenant: tenant.to_string(),
            code: message
                .split(|c: char| !c.is_ascii_alphanumeric())
                .find(|w| w.starts_with("AADSTS"))
                .map(str::to_string),
            message: format!("azure-cli: {message}"),
            consent_needed: false,
        };
        if tenant.starts_with('-') {
            return Err(fail(format!("`{tenant}` is not a tenant id")));
        }
        let mut command = std::process::Command::new(program);
        command
            .args([
                "account",
                "get-access-token",
                "--tenant",
                tenant,
                "--resource",
            ])
            .arg(self.config.resource())
            .args(["--output", "json"]);
        let output = tokio::task::spawn_blocking(move || run_with_timeout(command, timeout))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(fail)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            // Entra's trace and correlation ids are noise here, as in token errors.
            let stderr = stderr.split(" Trace ID:").next().unwrap_or("").trim();
            let tail: String = stderr
                .chars()
                .rev()
                .take(600)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(fail(format!(
                "`az account get-access-token` failed ({}): {}",
                output.status,
                if tail.is_empty() { "no message" } else { &tail }
            )));
        }
        let now = jiff::Timestamp::now().as_second();
        let (token, expires) =
            super::credentials::parse_az_token(&output.stdout, now).map_err(fail)?;
        Ok((
            token,
            Duration::from_secs(expires.saturating_sub(now).max(1) as u64),
        ))
    }

    /// A token for `tenant`, from the cache unless it expires within five minutes.
    pub async fn token(&self, tenant: &str) -> Result<String, GraphClientError> {
        let slot = {
            let mut tokens = self.tokens.lock().expect("token cache lock");
            if tokens.len() >= TOKENS_KEPT && !tokens.contains_key(tenant) {
                drop_least_recently_used(&mut tokens);
            }
            tokens.entry(tenant.to_string()).or_default().clone()
        };
        slot.last_used
            .store(self.uses.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let mut cached = slot.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.refresh_after > Instant::now()) {
            return Ok(t.value.clone());
        }
        let (value, lifetime) = self.fetch_token(tenant).await?;
        let margin = Duration::from_secs(300).min(lifetime / 2);
        *cached = Some(CachedToken {
            value: value.clone(),
            refresh_after: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(value)
    }

    async fn fetch_token(&self, tenant: &str) -> Result<(String, Duration), GraphClientError> {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.request_token(tenant).await;
        match &result {
            Ok(_) => tracing::debug!(
                tenant,
                ms = started.elapsed().as_millis() as u64,
                "token issued"
            ),
            Err(e) => tracing::debug!(
                tenant,
                ms = started.elapsed().as_millis() as u64,
                code = e.code().unwrap_or("-"),
                "token refused"
            ),
        }
        result
    }

    async fn request_token(&self, tenant: &str) -> Result<(String, Duration), GraphClientError> {
        let token_error = |code: Option<String>, message: String| GraphClientError::Token {
            tenant: tenant.to_string(),
            consent_needed: code.as_deref().is_some_and(|c| CONSENT_CODES.contains(&c)),
            code,
            message,
        };
        if let Credential::AzureCli { program, timeout } = &self.config.credential {
            return self.azure_cli_token(tenant, program, *timeout).await;
        }
        let token_url = TokenUrl::new(self.config.token_url(tenant))
            .map_err(|e| token_error(None, e.to_string()))?;
        let mut client = BasicClient::new(ClientId::new(self.config.client_id.clone()))
            .set_token_uri(token_url)
            .set_auth_type(AuthType::RequestBody);
        let assertion = match &self.config.credential {
            Credential::ClientSecret(secret) => {
                client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
                None
            }
            Credential::FederatedTokenFile(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        token_error(
                            None,
                            format!(
                                "cannot read AZURE_FEDERATED_TOKEN_FILE {}: {e}",
                                path.display()
                            ),
                        )
                    })?
                    .trim()
                    .to_string(),
            ),
            Credential::Certificate(path) => Some(
                super::assertion::certificate_assertion(
                    path,
                    &self.config.client_id,
                    &self.config.token_url(tenant),
                )
                .map_err(|e| token_error(None, e))?,
            ),
            Credential::GithubActions { .. }
            | Credential::AzurePipelines { .. }
            | Credential::ManagedIdentity { .. } => Some(self.federated_assertion(tenant).await?),
            Credential::AzureCli { .. } => unreachable!("answered above"),
        };
        let http = self.http.clone();
        let send = move |request: oauth2::HttpRequest| {
            let http = http.clone();
            async move {
                let request = reqwest::Request::try_from(request)?;
                let response = http.execute(request).await?;
                let mut builder = http::Response::builder().status(response.status());
                for (name, value) in response.headers() {
                    builder = builder.header(name, value);
                }
                let body = response.bytes().await?.to_vec();
                Ok::<_, HttpError>(builder.body(body).expect("response parts are valid"))
            }
        };
        let mut request = client
            .exchange_client_credentials()
            .add_scope(Scope::new(self.config.scope()));
        if let Some(assertion) = &assertion {
            request = request
                .add_extra_param(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .add_extra_param("client_assertion", assertion.clone());
        }
        match request.request_async(&send).await {
            Ok(token) => Ok((
                token.access_token().secret().clone(),
                token.expires_in().unwrap_or(Duration::from_secs(3600)),
            )),
            Err(oauth2::RequestTokenError::ServerResponse(err)) => {
                let description = err
                    .error_description()
                    .cloned()
                    .unwrap_or_else(|| err.error().to_string());
                let code = description
                    .split(':')
                    .next()
                    .filter(|c| c.starts_with("AADSTS"))
                    .map(str::to_string);
                let message = description
                    .split(" Trace ID:")
                    .next()
                    .unwrap_or(&description)
                    .to_string();
                Err(token_error(code, message))
            }
            Err(other) => Err(token_error(None, other.to_string())),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.config.graph_url)
        }
    }

    /// One Graph request with retries (429, 503, 504, connection errors; 500/502 for GETs), honouring
    /// Retry-After and backing off with jitter otherwise. Non-2xx answers become errors.
    pub async fn send(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<GraphResponse, GraphClientError> {
        self.send_request(tenant, method, path, body, method == "GET")
            .await
    }

    /// [`Self::send`] with `If-Match: etag`, which GDAP's updates and deletes require
    /// (delegatedadminrelationship-update.md, -delete.md). Not repeated on 500/502: a write.
    pub async fn send_if_match(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        etag: &str,
    ) -> Result<GraphResponse, GraphClientError> {
        let (status, bytes) = self
            .send_raw_with(tenant, method, path, body, false, Some(etag))
            .await?;
        Ok(GraphResponse {
            status,
            body: body_value(&bytes),
        })
    }

    /// [`Self::send`], saying whether the request only reads (so a server error may be
    /// repeated): a `$batch` of GETs is a read although it is POSTed.
    async fn send_request(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        read_only: bool,
    ) -> Result<GraphResponse, GraphClientError> {
        let (status, bytes) = self.send_raw(tenant, method, path, body, read_only).await?;
        Ok(GraphResponse {
            status,
            body: body_value(&bytes),
        })
    }

    /// A GET whose answer is read into `T` directly, not through a [`Value`]: a users/delta
    /// page of 200 users is most of what a first sync reads. An answer that is not a `T` is
    /// an error naming the path.
    pub async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &str,
        path: &str,
    ) -> Result<T, GraphClientError> {
        let (_, bytes) = self.send_raw(tenant, "GET", path, None, true).await?;
        serde_json::from_slice(&bytes).map_err(|e| GraphClientError::Transport {
            tenant: tenant.to_string(),
            method: "GET".into(),
            path: path.to_string(),
            message: format!("the answer is not what Graph documents: {e}"),
        })
    }

    /// [`Self::send_request`] with a 2xx answer's body as it came.
    async fn send_raw(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        read_only: bool,
    ) -> Result<(u16, bytes::Bytes), GraphClientError> {
        self.send_raw_with(tenant, method, path, body, read_only, None)
            .await
    }

    /// [`Self::send_raw`] with an optional `If-Match` header.
    async fn send_raw_with(
        &self,
        tenant: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        read_only: bool,
        if_match: Option<&str>,
    ) -> Result<(u16, bytes::Bytes), GraphClientError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token(tenant).await?;
            let grants = || super::permissions::token_grants(&token);
            let mut request = self
                .http
                .request(method.parse().expect("HTTP method"), self.url(path))
                .bearer_auth(&token)
                .header("client-request-id", uuid::Uuid::new_v4().to_string());
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(etag) = if_match {
                request = request.header("If-Match", etag);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let transport = |message: String| GraphClientError::Transport {
                tenant: tenant.to_string(),
                method: method.to_string(),
                path: path.to_string(),
                message,
            };
            let sent = Instant::now();
            let outcome: Result<std::convert::Infallible, (GraphClientError, Option<Duration>)> =
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        tracing::debug!(
                            tenant,
                            method,
                            path = %self.url(path).trim_start_matches(&self.config.graph_url),
                            status,
                            ms = sent.elapsed().as_millis() as u64,
                            request_id = response
                                .headers()
                                .get("request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-"),
                            attempt,
                            "graph"
                        );
                        let retry_after = response
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<f64>().ok())
                            .filter(|s| s.is_finite() && *s >= 0.0)
                            .map(Duration::from_secs_f64);
                        let header_request_id = response
                            .headers()
                            .get("request-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        match response.bytes().await {
                            Ok(bytes) => {
                                if (200..300).contains(&status) {
                                    return Ok((status, bytes));
                                }
                                let body = body_value(&bytes);
                                let err = api_error(
                                    tenant,
                                    method,
                                    path,
                                    status,
                                    &body,
                                    header_request_id,
                                    (status == 403).then(grants).flatten().as_ref(),
                                );
                                // 500/502 are transient too, but only reads are safe to repeat.
                                let transient = matches!(status, 429 | 503 | 504)
                                    || (read_only && matches!(status, 500 | 502));
                                if transient {
                                    Err((err, retry_after))
                                } else {
                                    return Err(err);
                                }
                            }
                            Err(e) => Err((
                                transport(format!(
                                    "connection failed while reading the response: {e}"
                                )),
                                None,
                            )),
                        }
                    }
                    Err(e) => {
                        tracing::debug!(tenant, method, path, attempt, error = %e, "graph: connection failed");
                        Err((transport(format!("connection failed: {e}")), None))
                    }
                };
            let Err((err, retry_after)) = outcome;
            let delay = retry_after.unwrap_or_else(|| backoff(&self.retry, attempt));
            if attempt >= self.retry.max_attempts
                || started.elapsed() + delay > self.retry.max_total
            {
                return Err(err);
            }
            tokio::time::sleep(delay).await;
        }
    }

    pub async fn get(&self, tenant: &str, path: &str) -> Result<Value, GraphClientError> {
        Ok(self.send(tenant, "GET", path, None).await?.body)
    }

    /// Every item of a collection, following `@odata.nextLink` whole.
    pub async fn get_all(&self, tenant: &str, path: &str) -> Result<Vec<Value>, GraphClientError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(link) = next {
            let mut page = self.get(tenant, &link).await?;
            next = page["@odata.nextLink"].as_str().map(str::to_string);
            if let Value::Array(values) = page["value"].take() {
                items.extend(values);
            }
        }
        Ok(items)
    }

    /// Runs requests as `$batch`es of at most 20. Inner 429/503/504 answers are retried (in a
    /// later batch, after the longest Retry-After), other statuses are returned as they are.
    pub async fn batch(
        &self,
        tenant: &str,
        requests: Vec<BatchRequest>,
    ) -> Result<Vec<BatchResponse>, GraphClientError> {
        let mut done: HashMap<String, BatchResponse> = HashMap::new();
        let order: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
        let mut pending = requests;
        let started = Instant::now();
        let mut round = 0;
        while !pending.is_empty() {
            round += 1;
            let mut wait: Option<Duration> = None;
            let mut retry = Vec::new();
            for chunk in pending.chunks(20) {
                let body = json!({"requests": chunk.iter().map(|r| {
                    let mut v = json!({"id": r.id, "method": r.method, "url": r.url});
                    if let Some(b) = &r.body {
                        v["body"] = b.clone();
                        v["headers"] = json!({"Content-Type": "application/json"});
                    }
                    if !r.depends_on.is_empty() {
                        v["dependsOn"] = json!(r.depends_on);
                    }
                    v
                }).collect::<Vec<_>>()});
                let read_only = chunk.iter().all(|r| r.method == "GET");
                let mut answer = self
                    .send_request(tenant, "POST", "/$batch", Some(&body), read_only)
                    .await?;
                // The token just used (cached): its roles explain an inner 403.
                let grants = match self.token(tenant).await {
                    Ok(token) => super::permissions::token_grants(&token),
                    Err(_) => None,
                };
                let responses = match answer.body["responses"].take() {
                    Value::Array(responses) => responses,
                    _ => Vec::new(),
                };
                for mut response in responses {
                    let id = response["id"].as_str().unwrap_or_default().to_string();
                    let status = response["status"].as_u64().unwrap_or(0) as u16;
                    let Some(request) = chunk.iter().find(|r| r.id == id) else {
                        continue;
                    };
                    // Throttling and gateway errors are transient for any request; server
                    // errors (500/502) only for reads, which are safe to repeat.
                    let transient = matches!(status, 429 | 503 | 504)
                        || (request.method == "GET" && matches!(status, 500 | 502));
                    if transient && round < self.retry.max_attempts as usize {
                        let after = response["headers"]
                            .as_object()
                            .and_then(|h| {
                                h.iter()
                                    .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                            })
                            .and_then(|(_, v)| v.as_str().and_then(|s| s.parse::<f64>().ok()))
                            .map(Duration::from_secs_f64)
                            .unwrap_or_else(|| backoff(&self.retry, round as u32));
                        wait = Some(wait.map_or(after, |w| w.max(after)));
                        retry.push(request.clone());
                    }
                    // A transient answer is kept until its retry answers: if time runs out,
                    // it is the answer.
                    done.insert(
                        id.clone(),
                        BatchResponse {
                            id,
                            status,
                            body: response
                                .get_mut("body")
                                .map(Value::take)
                                .unwrap_or(Value::Null),
                            method: request.method.clone(),
                            url: request.url.clone(),
                            grants: grants.clone(),
                        },
                    );
                }
            }
            // Out of time: the transient answers kept in `done` are the answers.
            let Some(wait) = wait.filter(|w| started.elapsed() + *w <= self.retry.max_total) else {
                break;
            };
            // A dependency retried means its dependents (answered 424) are retried too.
            let retried: Vec<String> = retry.iter().map(|r| r.id.clone()).collect();
            for id in &retried {
                done.remove(id);
            }
            let dependents: Vec<String> = done
                .values()
                .filter(|r| r.status == 424)
                .map(|r| r.id.clone())
                .filter(|id| {
                    pending
                        .iter()
                        .find(|p| &p.id == id)
                        .is_some_and(|p| p.depends_on.iter().any(|d| retried.contains(d)))
                })
                .collect();
            for id in dependents {
                done.remove(&id);
                if let Some(p) = pending.iter().find(|p| p.id == id) {
                    retry.push(p.clone());
                }
            }
            pending = retry;
            tokio::time::sleep(wait).await;
        }
        // Every request gets an answer: one Graph left out is an error, never "nothing".
        order
            .into_iter()
            .map(|id| {
                done.remove(&id).ok_or_else(|| GraphClientError::Transport {
                    tenant: tenant.to_string(),
                    method: "POST".into(),
                    path: "/$batch".into(),
                    message: format!("the batch answer has no response for request `{id}`"),
                })
            })
            .collect()
    }
}

/// Exponential backoff with full jitter.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.min(16))
        .min(policy.max_delay);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
    exp.mul_f64(0.5 + jitter / 2.0)
}

fn api_error(
    tenant: &str,
    method: &str,
    path: &str,
    status: u16,
    body: &Value,
    header_request_id: Option<String>,
    grants: Option<&super::permissions::Grants>,
) -> GraphClientError {
    let error = &body["error"];
    let permission = if status == 403 {
        PermissionGap::of(method, path, grants)
    } else {
        None
    };
    GraphClientError::Api(Box::new(ApiError {
        tenant: tenant.to_string(),
        method: method.to_string(),
        path: path.split('?').next().unwrap_or(path).to_string(),
        status,
        code: error["code"].as_str().unwrap_or("unknown").to_string(),
        message: error["message"]
            .as_str()
            .unwrap_or("no error message")
            .to_string(),
        request_id: error["innerError"]["request-id"]
            .as_str()
            .map(str::to_string)
            .or(header_request_id)
            .unwrap_or_else(|| "none".into()),
        permission,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_cache_drops_the_least_recently_used_tokens_nobody_holds() {
        let mut tokens: HashMap<String, std::sync::Arc<TokenSlot>> = HashMap::new();
        for i in 0..TOKENS_KEPT as u64 {
            let slot = TokenSlot::default();
            slot.last_used.store(i, Ordering::Relaxed);
            tokens.insert(format!("t{i}"), std::sync::Arc::new(slot));
        }
        // The oldest is in use (a request holds its slot): it stays.
        let held = tokens["t0"].clone();
        drop_least_recently_used(&mut tokens);
        assert_eq!(tokens.len(), TOKENS_KEPT / 2);
        assert!(tokens.contains_key("t0"), "in use");
        assert!(!tokens.contains_key("t1"), "least recently used");
        assert!(
            tokens.contains_key(&format!("t{}", TOKENS_KEPT - 1)),
            "most recent"
        );
        drop(held);
    }
}
