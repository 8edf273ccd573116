//! HTTP for the sandbox: hyper connections (so a fault can drop one), an axum router for the
//! token endpoint, Graph under `/v1.0`, `$batch`, and `/_sandbox` controls for tests and demos.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::directory::GraphError;
use super::faults::{Faults, Injected, draw, request_cost};
use super::graph::{Call, Reply, dispatch};
use super::world::{RecordedRequest, Token, World};

/// Shared by every connection.
#[derive(Clone)]
pub struct Shared {
    pub world: Arc<Mutex<World>>,
    /// `http://127.0.0.1:PORT`, for links in responses.
    pub base_url: Arc<str>,
}

/// Marks a response whose connection must be dropped instead of answered.
#[derive(Clone, Copy)]
struct DropConnection;

const MAX_BATCH: usize = 20;

fn json_response(status: u16, body: Option<&Value>, headers: &[(String, String)]) -> Response {
    let mut response = match body {
        Some(body) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(
                "content-type",
                "application/json; odata.metadata=minimal; charset=utf-8",
            )],
            serde_json::to_vec(body).expect("JSON serializes"),
        )
            .into_response(),
        None => StatusCode::from_u16(status)
            .unwrap_or(StatusCode::NO_CONTENT)
            .into_response(),
    };
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn reply_response(reply: &Reply) -> Response {
    json_response(reply.status, reply.body.as_ref(), &reply.headers)
}

fn record(
    world: &mut World,
    method: &str,
    path: &str,
    tenant: Option<&str>,
    status: u16,
    in_batch: bool,
) {
    world.requests.push(RecordedRequest {
        method: method.to_string(),
        path: path.to_string(),
        tenant: tenant.map(str::to_string),
        status,
        in_batch,
    });
}

fn throttled(retry_after: f64) -> Reply {
    let mut reply = Reply::error(&GraphError::new(
        429,
        "TooManyRequests",
        "Too many requests. Please try again later.",
    ));
    // Graph sends decimal seconds (e.g. "2.128"); keep a short fraction.
    let text = format!("{retry_after:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    reply.headers.push(("Retry-After".into(), text));
    reply
}

fn server_error(status: u16) -> Reply {
    let (code, message) = match status {
        503 => (
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        ),
        504 => (
            "gatewayTimeout",
            "The gateway did not receive a timely response.",
        ),
        _ => ("generalException", "An unexpected error occurred."),
    };
    let mut reply = Reply::error(&GraphError::new(status, code, message));
    if status == 503 {
        reply.headers.push(("Retry-After".into(), "1".into()));
    }
    reply
}

/// Faults and budgets for one Graph request (outer or inside a batch), then the call itself.
fn handle_call(
    world: &mut World,
    token: &Token,
    call: &Call,
    allow_drop: bool,
) -> Result<Reply, DropConnection> {
    let app = token.client_id.as_str();
    let faults = world.faults.clone();
    // A request that always fails (no draw: the seeded faults of the others stay the same).
    if let Some(f) = faults
        .fail
        .iter()
        .find(|f| f.matches(call.tenant, call.path))
    {
        return Ok(match f.status {
            403 => Reply::error(&super::permissions::denied()),
            429 => throttled(faults.retry_after_seconds.max(0.01)),
            status => server_error(status),
        });
    }
    match draw(&faults, &mut world.rng) {
        Injected::Drop if allow_drop => return Err(DropConnection),
        Injected::Drop => return Ok(server_error(503)),
        Injected::Throttle { retry_after } => return Ok(throttled(retry_after)),
        Injected::ServerError { status } => return Ok(server_error(status)),
        Injected::None => {}
    }
    if faults.enforce_budgets {
        let users = world.tenants.get(call.tenant).map_or(0, |d| d.users.len());
        let has_select = call.query.contains("%24select") || call.query.contains("$select");
        let has_expand = call.query.contains("%24expand") || call.query.contains("$expand");
        let cost = request_cost(call.method, call.path, has_select, has_expand);
        let is_write = call.method != "GET";
        if let Some(wait) =
            world
                .budgets
                .charge(app, call.tenant, users, cost, is_write, Instant::now())
        {
            return Ok(throttled(wait));
        }
    }
    if call.path.trim_start_matches('/').starts_with("security/")
        && let Some(wait) = world
            .budgets
            .charge_security(app, call.tenant, Instant::now())
    {
        return Ok(throttled(wait));
    }
    // After authentication (the token is valid), as Graph does: the token's roles must hold
    // one of the permissions the endpoint accepts, and sensitive actions need more.
    if let Err(denied) = super::permissions::authorize_token(world, call, token) {
        return Ok(Reply::error(&denied));
    }
    let reply = dispatch(world, call);
    // The change was made, but the answer never arrives (a real network can do this too).
    if allow_drop && faults.drop_after_rate > 0.0 && world.rng.next_f64() < faults.drop_after_rate {
        return Err(DropConnection);
    }
    Ok(reply)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// `/v1.0/...`: authenticate, inject faults, serve (or run a batch).
async fn graph(
    state: State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Every Graph answer carries a request-id, and echoes the client's client-request-id.
    let client_request_id = headers.get("client-request-id").cloned();
    let mut response = graph_call(state, method, uri, headers, body).await;
    let answer = response.headers_mut();
    if !answer.contains_key("request-id")
        && let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
    {
        answer.insert("request-id", id);
    }
    if let Some(id) = client_request_id {
        answer.insert("client-request-id", id);
    }
    response
}

async fn graph_call(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path()
        .strip_prefix("/v1.0")
        .unwrap_or(uri.path())
        .to_string();
    let query = uri.query().unwrap_or("").to_string();
    let latency = {
        let world = shared.world.lock().expect("sandbox lock");
        Duration::from_millis(world.faults.latency_ms)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut world = shared.world.lock().expect("sandbox lock");
    let full_path = uri.path().to_string();
    let auth = bearer(&headers)
        .ok_or(("Access token is empty.", 401))
        .and_then(|token| {
            world
                .check_token(&token)
                .cloned()
                .ok_or(("Access token has expired or is not yet valid.", 401))
        });
    let token = match auth {
        Ok(token) => token,
        Err((message, status)) => {
            let reply = Reply::error(&GraphError::new(
                status,
                "InvalidAuthenticationToken",
                message,
            ));
            record(&mut world, method.as_str(), &full_path, None, status, false);
            return reply_response(&reply);
        }
    };
    let tenant = token.tenant_id.clone();
    // Consent is the MSP app's; a person's token (the Azure CLI, a first-party app) needs none.
    if token.delegated.is_none() && !world.tenants.get(&tenant).is_some_and(|d| d.consent) {
        let reply = Reply::error(&GraphError::new(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
        record(
            &mut world,
            method.as_str(),
            &full_path,
            Some(&tenant),
            403,
            false,
        );
        return reply_response(&reply);
    }
    let parsed_body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                let reply = Reply::error(&GraphError::bad_request(format!(
                    "Unable to read JSON request payload: {e}"
                )));
                record(
                    &mut world,
                    method.as_str(),
                    &full_path,
                    Some(&tenant),
                    400,
                    false,
                );
                return reply_response(&reply);
            }
        }
    };
    if path == "/$batch" && method == Method::POST {
        let reply = batch(
            &mut world,
            &shared.base_url,
            &tenant,
            &token,
            parsed_body.as_ref(),
        );
        record(
            &mut world,
            "POST",
            &full_path,
            Some(&tenant),
            reply.status,
            false,
        );
        return reply_response(&reply);
    }
    let if_match = headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let call = Call {
        tenant: &tenant,
        base_url: &shared.base_url,
        method: method.as_str(),
        path: &path,
        query: &query,
        body: parsed_body.as_ref(),
        eventual: headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
        prefer_minimal: headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(super::graph::prefers_minimal),
        if_match: if_match.as_deref(),
    };
    match handle_call(&mut world, &token, &call, true) {
        Ok(reply) => {
            record(
                &mut world,
                method.as_str(),
                &full_path,
                Some(&tenant),
                reply.status,
                false,
            );
            reply_response(&reply)
        }
        Err(drop) => {
            record(
                &mut world,
                method.as_str(),
                &full_path,
                Some(&tenant),
                0,
                false,
            );
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(drop);
            response
        }
    }
}

/// `POST /$batch`: up to 20 requests in order, `dependsOn` honoured (424 when a dependency
/// failed), each with its own faults and budget.
fn batch(
    world: &mut World,
    base_url: &str,
    tenant: &str,
    token: &Token,
    body: Option<&Value>,
) -> Reply {
    let Some(requests) = body
        .and_then(|b| b.get("requests"))
        .and_then(Value::as_array)
    else {
        return Reply::error(&GraphError::bad_request(
            "Batch request must contain a 'requests' array.",
        ));
    };
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return Reply::error(&GraphError::bad_request(format!(
            "Number of batch request steps exceeds the maximum value of {MAX_BATCH}."
        )));
    }
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::with_capacity(requests.len());
    for request in requests {
        let id = match &request["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Reply::error(&GraphError::bad_request(
                    "Every batch request needs an 'id'.",
                ));
            }
        };
        let depends: Vec<String> = request["dependsOn"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let failed_dependency = depends
            .iter()
            .any(|d| statuses.get(d).is_none_or(|s| *s >= 400));
        let reply = if failed_dependency {
            Reply::error(&GraphError::new(
                424,
                "FailedDependency",
                "The request could not be processed because a request it depends on failed.",
            ))
        } else {
            let method = request["method"].as_str().unwrap_or("GET").to_uppercase();
            let url = request["url"].as_str().unwrap_or("");
            let url = url.trim_start_matches("/v1.0").trim_start_matches("v1.0/");
            let url = if url.starts_with('/') {
                url.to_string()
            } else {
                format!("/{url}")
            };
            let (path, query) = url.split_once('?').unwrap_or((&url, ""));
            // Headers of a `$batch` request are its own: the outer request's do not count.
            let header = |name: &str, matches: &dyn Fn(&str) -> bool| {
                request["headers"].as_object().is_some_and(|h| {
                    h.iter().any(|(k, v)| {
                        k.eq_ignore_ascii_case(name) && v.as_str().is_some_and(matches)
                    })
                })
            };
            let eventual = header("consistencylevel", &|v| v.eq_ignore_ascii_case("eventual"));
            let prefer_minimal = header("prefer", &super::graph::prefers_minimal);
            let if_match = request["headers"].as_object().and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("if-match"))
                    .and_then(|(_, v)| v.as_str())
            });
            let call = Call {
                tenant,
                base_url,
                method: &method,
                path,
                query,
                body: request.get("body"),
                eventual,
                prefer_minimal,
                if_match,
            };
            let reply =
                handle_call(world, token, &call, false).unwrap_or_else(|_| server_error(503));
            record(
                world,
                &method,
                &format!("/v1.0{path}"),
                Some(tenant),
                reply.status,
                true,
            );
            reply
        };
        statuses.insert(id.clone(), reply.status);
        let headers: serde_json::Map<String, Value> = reply
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .chain(
                reply
                    .body
                    .is_some()
                    .then(|| ("Content-Type".to_string(), json!("application/json"))),
            )
            .collect();
        let mut entry = json!({"id": id, "status": reply.status, "headers": headers});
        if let Some(body) = reply.body {
            entry["body"] = body;
        }
        responses.push(entry);
    }
    Reply::json(200, json!({"responses": responses}))
}

async fn token(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    uri: Uri,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let token_url = format!("{}{}", shared.base_url, uri.path());
    let latency = {
        let world = shared.world.lock().expect("sandbox lock");
        Duration::from_millis(world.faults.latency_ms)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut world = shared.world.lock().expect("sandbox lock");
    let (status, body, resolved) = super::auth::token(&mut world, &tenant, &form, &token_url);
    let path = uri.path().to_string();
    record(
        &mut world,
        "POST",
        &path,
        resolved.as_deref(),
        status,
        false,
    );
    json_response(status, Some(&body), &[])
}

/// Where a guest lands when following an invitation link: redeems it.
async fn redeem(
    State(shared): State<Shared>,
    QueryParams(q): QueryParams<HashMap<String, String>>,
) -> Response {
    let mut world = shared.world.lock().expect("sandbox lock");
    let (Some(tenant), Some(user)) = (q.get("tenant"), q.get("user")) else {
        return (StatusCode::BAD_REQUEST, "missing tenant or user").into_response();
    };
    match world.directory(tenant).and_then(|d| d.accept(user)) {
        Ok(()) => (StatusCode::OK, "Invitation accepted (sandbox).").into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.message).into_response(),
    }
}

type ControlResult = Result<Response, (StatusCode, String)>;

fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// `/_emulators/{github,azure-devops,imds,app-service}`: the secretless credentials'
/// endpoints (see `emulators`), each request logged like Graph's.
async fn emulator(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    QueryParams(q): QueryParams<HashMap<String, String>>,
) -> Response {
    use super::emulators as e;
    let mut world = shared.world.lock().expect("sandbox lock");
    let headers = header_map(&headers);
    let path = uri.path().to_string();
    let (status, body) = match (method.as_str(), path.as_str()) {
        ("GET", "/_emulators/github/token") => e::github(&mut world.emulators, &q, &headers),
        ("POST", "/_emulators/azure-devops/oidctoken") => {
            e::azure_devops(&mut world.emulators, &q, &headers)
        }
        ("GET", "/_emulators/imds/metadata/identity/oauth2/token") => {
            e::managed_identity(&mut world.emulators, false, &q, &headers)
        }
        ("GET", "/_emulators/app-service/msi/token") => {
            e::managed_identity(&mut world.emulators, true, &q, &headers)
        }
        _ => (404, json!({"message": "no such emulator endpoint"})),
    };
    record(&mut world, method.as_str(), &path, None, status, false);
    json_response(status, Some(&body), &[])
}

/// `GET|PUT /_sandbox/emulators`: what the emulators issue (`githubSubject`, `adoSubject`,
/// `managedIdentityObjectId`, `lifetimeSecs`); PUT replaces the fields given.
async fn control_emulators(
    State(shared): State<Shared>,
    method: Method,
    body: Bytes,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    if method == Method::PUT {
        let patch: Value =
            serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        world
            .emulators
            .update(&patch)
            .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    }
    let mut shown = serde_json::to_value(&world.emulators).expect("serializes");
    shown["issued"] = json!(world.emulators.issued.len());
    Ok(json_response(200, Some(&shown), &[]))
}

/// `POST /_sandbox/tenants/T/delegated-token` with `{"user": UPN|mail|id, "scopes": [...]}`
/// (and, for a partner's engineer through GDAP, `"partnerTenant"` and `"roles"`):
/// a person's token in T, answered as `az account get-access-token` prints it (what the
/// tests' stub `az` calls).
async fn control_delegated_token(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let mut world = shared.world.lock().expect("sandbox lock");
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let user = request["user"].as_str().unwrap_or("").to_string();
    let scopes: Vec<String> = request["scopes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // GDAP: `{"partnerTenant": id, "roles": [names]}` signs a partner's engineer in to the
    // customer tenant with the relationship's roles.
    let gdap = request["partnerTenant"]
        .as_str()
        .map(|partner| super::auth::Gdap {
            partner_tenant: partner.to_string(),
            roles: request["roles"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        });
    let (status, body) =
        super::auth::delegated_token(&mut world, &tenant, &user, &scopes, gdap.as_ref());
    json_response(status, Some(&body), &[])
}

fn control_error(e: GraphError) -> (StatusCode, String) {
    (
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.message,
    )
}

async fn requests(State(shared): State<Shared>, method: Method) -> Response {
    let mut world = shared.world.lock().expect("sandbox lock");
    if method == Method::DELETE {
        world.requests.clear();
        return StatusCode::NO_CONTENT.into_response();
    }
    axum::Json(world.requests.clone()).into_response()
}

async fn faults(State(shared): State<Shared>, method: Method, body: Bytes) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    if method == Method::PUT {
        let faults: Faults =
            serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        world.rng = super::faults::Rng::new(faults.seed);
        world.faults = faults;
    }
    Ok(axum::Json(world.faults.clone()).into_response())
}

async fn control_user(
    State(shared): State<Shared>,
    Path((tenant, user)): Path<(String, String)>,
    method: Method,
    body: Bytes,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    let dir = world.directory(&tenant).map_err(control_error)?;
    let id = dir
        .user_id(&user)
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no user {user}")))?;
    match method {
        Method::DELETE => dir.delete_user(&id).map_err(control_error)?,
        _ => {
            let patch: Value = serde_json::from_slice(&body)
                .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
            dir.patch_user(&id, &patch).map_err(control_error)?;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /_sandbox/tenants/T/users` with a fixture user (`{"displayName": .., "mail": ..,
/// "profile": {..}}`, as in fixture files): someone creates a user out of band. Answers 201
/// with the user as Graph shows it.
async fn control_create_user(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ControlResult {
    let user: super::fixture::FixtureUser =
        serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut world = shared.world.lock().expect("sandbox lock");
    let dir = world.directory(&tenant).map_err(control_error)?;
    let created = dir.add_user(&user).map_err(control_error)?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// `POST|DELETE /_sandbox/tenants/T/groups/G/members/M`: someone adds or removes a direct
/// member (a user, group or service principal id) out of band.
async fn control_group_member(
    State(shared): State<Shared>,
    Path((tenant, group, member)): Path<(String, String, String)>,
    method: Method,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    let dir = world.directory(&tenant).map_err(control_error)?;
    match method {
        Method::DELETE => dir.remove_member(&group, &member),
        _ => dir.add_member(&group, &member),
    }
    .map_err(control_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /_sandbox/tenants/T/delta/expire`: every delta and skip token issued in the tenant so
/// far counts as older than seven days (the next call with one answers 400
/// `syncStateNotFound`); tokens issued afterwards are fresh.
async fn control_delta_expire(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    let dir = world.directory(&tenant).map_err(control_error)?;
    dir.changes.expired_through = dir.changes.issued;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /_sandbox/tenants/T/delta/reset`: Graph's "synchronization reset" (maintenance or
/// migration of the tenant): every token issued so far answers 410 Gone with a Location to
/// start over from.
async fn control_delta_reset(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    let dir = world.directory(&tenant).map_err(control_error)?;
    dir.changes.epoch += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn control_accept(
    State(shared): State<Shared>,
    Path((tenant, user)): Path<(String, String)>,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    let dir = world.directory(&tenant).map_err(control_error)?;
    let id = dir
        .user_id(&user)
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no user {user}")))?;
    dir.accept(&id).map_err(control_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn control_role_assignment(
    State(shared): State<Shared>,
    Path((tenant, id)): Path<(String, String)>,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    let dir = world.directory(&tenant).map_err(control_error)?;
    dir.role_assignments
        .shift_remove(&id)
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no role assignment {id}")))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn control_consent(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    let consent: Value =
        serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let dir = world.directory(&tenant).map_err(control_error)?;
    dir.consent = consent["consent"].as_bool().unwrap_or(true);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /_sandbox/tenants/T/permissions` with `{"permissions": [...]}` (or `null`: all of the
/// app's) sets what admin consent granted there; tokens issued afterwards carry it. Optional
/// `b2bInvitations` (bool) and `appDirectoryRoles` (names or template ids) set the tenant's
/// other access settings. `GET` shows them.
async fn control_permissions(
    State(shared): State<Shared>,
    Path(tenant): Path<String>,
    method: Method,
    body: Bytes,
) -> ControlResult {
    let mut world = shared.world.lock().expect("sandbox lock");
    let app_roles = world
        .apps
        .first()
        .map(|a| a.roles.clone())
        .unwrap_or_default();
    let dir = world.directory(&tenant).map_err(control_error)?;
    if method == Method::PUT {
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let permissions = match value.get("permissions") {
            None => dir.permissions.clone(),
            Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|p| {
                        p.as_str().map(str::to_string).ok_or((
                            StatusCode::BAD_REQUEST,
                            "permissions must be strings".to_string(),
                        ))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "expected {\"permissions\": [..]} or {\"permissions\": null}".into(),
                ));
            }
        };
        dir.permissions = permissions;
        if let Some(b2b) = value["b2bInvitations"].as_bool() {
            dir.b2b_invitations = b2b;
        }
        if let Some(roles) = value["appDirectoryRoles"].as_array() {
            dir.app_directory_roles = roles
                .iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
        }
    }
    Ok(axum::Json(serde_json::json!({
        "permissions": dir.permissions.clone().unwrap_or(app_roles),
        "b2bInvitations": dir.b2b_invitations,
        "appDirectoryRoles": dir.app_directory_roles,
    }))
    .into_response())
}

/// `POST /_sandbox/tenants/P/delegatedAdminRelationships/R/{approve|terminate|expire|age}`,
/// in partner tenant P: the customer's admin approves (`{"customerTenantId": ..}` when the
/// relationship names no customer) or terminates relationship R; `expire` ends it now
/// without auto-extension; `age` with `{"days": N}` moves its dates N days into the past
/// (time passing: it may expire or auto-extend, and expiry comes N days closer). Answers
/// the relationship as Graph shows it.
async fn control_gdap(
    State(shared): State<Shared>,
    Path((tenant, id, action)): Path<(String, String, String)>,
    body: Bytes,
) -> ControlResult {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?
    };
    let mut world = shared.world.lock().expect("sandbox lock");
    let customer = body["customerTenantId"].as_str().map(|t| {
        let name = world
            .directory(t)
            .map(|d| d.display_name.clone())
            .unwrap_or_default();
        (t.to_string(), name)
    });
    let dir = world.directory(&tenant).map_err(control_error)?;
    let store = &mut dir.gdap;
    let answer = match action.as_str() {
        "approve" => {
            let customer = customer.as_ref().map(|(t, n)| (t.as_str(), n.as_str()));
            store.approve(&id, customer)
        }
        "terminate" => store.terminate(&id),
        "expire" => store.expire(&id),
        "age" => {
            let days = body["days"].as_i64().ok_or((
                StatusCode::BAD_REQUEST,
                "expected {\"days\": N}".to_string(),
            ))?;
            store.age(&id, days)
        }
        other => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("no control '{other}' (approve, terminate, expire, age)"),
            ));
        }
    }
    .map_err(control_error)?;
    Ok(axum::Json(answer).into_response())
}

/// `PUT /_sandbox/tenants/P/delegatedAdminRelationships/R/accessAssignments/A/status` with
/// `{"status": "error"}` (or another status): what Graph's provisioning did to the assignment.
async fn control_gdap_assignment(
    State(shared): State<Shared>,
    Path((tenant, id, assignment)): Path<(String, String, String)>,
    body: Bytes,
) -> ControlResult {
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let to = body["status"].as_str().ok_or((
        StatusCode::BAD_REQUEST,
        "expected {\"status\": ..}".to_string(),
    ))?;
    let mut world = shared.world.lock().expect("sandbox lock");
    let dir = world.directory(&tenant).map_err(control_error)?;
    let answer = dir
        .gdap
        .set_assignment_status(&id, &assignment, to)
        .map_err(control_error)?;
    Ok(axum::Json(answer).into_response())
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/redeem", get(redeem))
        .route("/_sandbox/requests", get(requests).delete(requests))
        .route("/_sandbox/faults", get(faults).put(faults))
        .route(
            "/_sandbox/tenants/{tenant}/users/{user}",
            axum::routing::patch(control_user).delete(control_user),
        )
        .route(
            "/_sandbox/tenants/{tenant}/users",
            post(control_create_user),
        )
        .route(
            "/_sandbox/tenants/{tenant}/users/{user}/accept",
            post(control_accept),
        )
        .route(
            "/_sandbox/tenants/{tenant}/groups/{group}/members/{member}",
            post(control_group_member).delete(control_group_member),
        )
        .route(
            "/_sandbox/tenants/{tenant}/delta/expire",
            post(control_delta_expire),
        )
        .route(
            "/_sandbox/tenants/{tenant}/delta/reset",
            axum::routing::put(control_delta_reset),
        )
        .route(
            "/_sandbox/tenants/{tenant}/roleAssignments/{id}",
            axum::routing::delete(control_role_assignment),
        )
        .route(
            "/_sandbox/tenants/{tenant}/consent",
            axum::routing::put(control_consent),
        )
        .route(
            "/_sandbox/tenants/{tenant}/permissions",
            get(control_permissions).put(control_permissions),
        )
        .route("/_emulators/{*rest}", axum::routing::any(emulator))
        .route(
            "/_sandbox/emulators",
            get(control_emulators).put(control_emulators),
        )
        .route(
            "/_sandbox/tenants/{tenant}/delegated-token",
            post(control_delegated_token),
        )
        .route(
            "/_sandbox/tenants/{tenant}/delegatedAdminRelationships/{id}/{action}",
            post(control_gdap),
        )
        .route(
            "/_sandbox/tenants/{tenant}/delegatedAdminRelationships/{id}/accessAssignments/{assignment}/status",
            axum::routing::put(control_gdap_assignment),
        )
        .route("/v1.0/{*rest}", axum::routing::any(graph))
        .with_state(shared)
}

/// Accepts connections until `shutdown` resolves. Each connection is served by hyper with
/// keep-alive; a response marked [`DropConnection`] closes it without an answer.
pub async fn serve(
    listener: TcpListener,
    shared: Shared,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    use tower::ServiceExt;
    let app = router(shared);
    let mut shutdown = shutdown;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(_) => continue,
            },
            _ = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    async move {
                        let response = app
                            .oneshot(request.map(Body::new))
                            .await
                            .expect("router is infallible");
                        if response.extensions().get::<DropConnection>().is_some() {
                            Err(std::io::Error::other(
                                "connection dropped by fault injection",
                            ))
                        } else {
                            Ok(response)
                        }
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, service)
                .await;
        });
    }
}
