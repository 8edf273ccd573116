//! The Graph client against the sandbox over real HTTP: tokens and their cache, retries under
//! throttling, server errors and dropped connections, paging, batches, and its errors.

use std::time::Duration;

use serde_json::json;
use tenantform::graph::{BatchRequest, Credential, GraphClient, GraphConfig, RetryPolicy};
use tenantform::sandbox::fixture::SANDBOX_CLIENT_ID;
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
const BIRCHWOOD: &str = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

fn sandbox(faults: Faults) -> SandboxHandle {
    let mut f =
        Fixture::load(&crate::support::repo_root().join("examples/sandbox/fixture.yaml")).unwrap();
    let mut big = Fixture::generated(1, 450).tenants.remove(1);
    big.id = "11111111-1111-4111-8111-111111111111".into();
    big.domain = "big.onmicrosoft.com".into();
    f.tenants.push(big);
    SandboxHandle::start(&f, faults).unwrap()
}

fn client(sandbox: &SandboxHandle) -> GraphClient {
    let config = sandbox.graph_config();
    let retry = RetryPolicy {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    GraphClient::new(config, retry).unwrap()
}

use crate::support::block_on as run;

#[test]
fn tokens_are_cached_per_tenant() {
    let sandbox = sandbox(Faults::default());
    let graph = client(&sandbox);
    run(async {
        for _ in 0..3 {
            graph.get(FOGGY, "/organization").await.unwrap();
        }
        graph
            .get("big.onmicrosoft.com", "/organization")
            .await
            .unwrap();
    });
    assert_eq!(graph.token_request_count(), 2, "one token per tenant");
    let tokens = sandbox
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/token"))
        .count();
    assert_eq!(tokens, 2);
}

#[test]
fn missing_consent_is_recognised_with_its_aadsts_code() {
    let sandbox = sandbox(Faults::default());
    let graph = client(&sandbox);
    let err = run(graph.get(BIRCHWOOD, "/organization")).unwrap_err();
    assert!(err.is_consent_needed(), "{err}");
    assert_eq!(err.code(), Some("AADSTS700016"));
    let text = err.to_string();
    assert!(
        text.contains(BIRCHWOOD) && text.contains("AADSTS700016"),
        "{text}"
    );
    assert!(!text.contains("Trace ID"), "trace noise trimmed: {text}");
}

#[test]
fn api_errors_carry_tenant_code_message_and_request_id() {
    let sandbox = sandbox(Faults::default());
    let graph = client(&sandbox);
    let err = run(graph.get(FOGGY, "/users/no-such-user")).unwrap_err();
    assert_eq!(err.status(), Some(404));
    let text = err.to_string();
    for part in [
        FOGGY,
        "Request_ResourceNotFound",
        "request-id",
        "GET /users/no-such-user",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
}

#[test]
fn retries_through_throttling_server_errors_and_dropped_connections() {
    let faults = Faults {
        seed: 3,
        throttle_rate: 0.3,
        retry_after_seconds: 0.01,
        server_error_rate: 0.15,
        drop_rate: 0.1,
        ..Faults::default()
    };
    let sandbox = sandbox(faults);
    let graph = client(&sandbox);
    run(async {
        for i in 0..40 {
            let org = graph
                .get(FOGGY, "/organization")
                .await
                .unwrap_or_else(|e| panic!("request {i}: {e}"));
            assert_eq!(org["value"][0]["id"], FOGGY);
        }
    });
    let log = sandbox.requests();
    let graph_calls: Vec<_> = log
        .iter()
        .filter(|r| r.path == "/v1.0/organization")
        .collect();
    assert!(
        graph_calls.len() > 40,
        "faults forced retries: {}",
        graph_calls.len()
    );
    assert!(graph_calls.iter().any(|r| r.status == 429));
    assert!(
        graph_calls.iter().any(|r| r.status == 0),
        "a dropped connection was retried"
    );
    assert_eq!(graph_calls.iter().filter(|r| r.status == 200).count(), 40);
}

#[test]
fn honours_decimal_retry_after_and_gives_up_within_bounds() {
    let sandbox = sandbox(Faults {
        throttle_rate: 1.0,
        retry_after_seconds: 0.2,
        ..Faults::default()
    });
    let mut config_graph = client(&sandbox);
    drop(config_graph);
    let config = sandbox.graph_config();
    config_graph = GraphClient::new(
        config,
        RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        },
    )
    .unwrap();
    let start = std::time::Instant::now();
    let err = run(config_graph.get(FOGGY, "/organization")).unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(err.status(), Some(429));
    assert!(
        elapsed >= Duration::from_millis(400),
        "waited Retry-After twice: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(config_graph.request_count(), 3);
}

#[test]
fn pages_and_batches() {
    let sandbox = sandbox(Faults::default());
    let graph = client(&sandbox);
    run(async {
        let users = graph
            .get_all("big.onmicrosoft.com", "/users?$select=id&$top=200")
            .await
            .unwrap();
        assert_eq!(users.len(), 450);
        let requests: Vec<BatchRequest> = (0..25)
            .map(|i| BatchRequest {
                id: format!("r{i}"),
                method: "GET".into(),
                url: if i == 7 {
                    "/users/missing".into()
                } else {
                    "/organization".into()
                },
                body: None,
                depends_on: Vec::new(),
            })
            .collect();
        let answers = graph.batch(FOGGY, requests).await.unwrap();
        assert_eq!(answers.len(), 25);
        assert_eq!(answers[7].status, 404);
        assert!(
            answers
                .iter()
                .enumerate()
                .all(|(i, a)| i == 7 || a.status == 200)
        );
    });
    let batches = sandbox
        .requests()
        .iter()
        .filter(|r| r.path == "/v1.0/$batch")
        .count();
    assert_eq!(batches, 2, "25 requests in batches of 20");
}

#[test]
fn throttled_inner_batch_requests_are_retried() {
    let sandbox = sandbox(Faults {
        seed: 11,
        throttle_rate: 0.4,
        retry_after_seconds: 0.01,
        ..Faults::default()
    });
    let graph = client(&sandbox);
    let answers = run(async {
        let requests: Vec<BatchRequest> = (0..10)
            .map(|i| BatchRequest {
                id: i.to_string(),
                method: "POST".into(),
                url: "/invitations".into(),
                body: Some(json!({"invitedUserEmailAddress": format!("g{i}@msp.example"), "inviteRedirectUrl": "https://myapps.microsoft.com"})),
                depends_on: Vec::new(),
            })
            .collect();
        graph.batch(FOGGY, requests).await.unwrap()
    });
    assert!(
        answers.iter().all(|a| a.status == 201),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let guests = sandbox.with_world(|w| {
        w.tenants[FOGGY]
            .users
            .values()
            .filter(|u| {
                u.mail
                    .as_deref()
                    .is_some_and(|m| m.ends_with("@msp.example"))
            })
            .count()
    });
    assert_eq!(guests, 10, "each invited exactly once");
}

fn with_credential(sandbox: &SandboxHandle, credential: Credential) -> GraphClient {
    let config = GraphConfig {
        client_id: SANDBOX_CLIENT_ID.into(),
        home_tenant_id: None,
        credential,
        choice: Default::default(),
        login_url: sandbox.base_url().into(),
        graph_url: sandbox.graph_url(),
    };
    GraphClient::new(config, RetryPolicy::default()).unwrap()
}

#[test]
fn certificate_client_assertions_get_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=tenantform-test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    let bundle = dir.path().join("bundle.pem");
    let text = std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap();
    std::fs::write(&bundle, text).unwrap();

    let sandbox = sandbox(Faults::default());
    let graph = with_credential(&sandbox, Credential::Certificate(bundle));
    let org = run(graph.get(FOGGY, "/organization")).unwrap();
    assert_eq!(org["value"][0]["id"], FOGGY);

    // The assertion the client sent: RS256 with x5t#S256, aud = token URL, iss = sub = client.
    let jwt = tenantform::graph::assertion::certificate_assertion(
        &dir.path().join("bundle.pem"),
        SANDBOX_CLIENT_ID,
        &sandbox.token_url(FOGGY),
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert!(header.x5t_s256.is_some());
}

#[test]
fn federated_token_files_are_read_for_every_token() {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"aud": "api://AzureADTokenExchange", "iss": "https://token.actions.githubusercontent.com", "sub": "repo:msp/tenants:ref:refs/heads/main", "nbf": now, "exp": now + 600});
    let jwt = format!(
        "{}.{}.{}",
        e.encode(br#"{"alg":"RS256"}"#),
        e.encode(claims.to_string()),
        e.encode(b"sig")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oidc-token");
    std::fs::write(&file, format!("{jwt}\n")).unwrap();
    let sandbox = sandbox(Faults::default());
    let graph = with_credential(&sandbox, Credential::FederatedTokenFile(file.clone()));
    assert!(run(graph.get(FOGGY, "/organization")).is_ok());
    std::fs::remove_file(&file).unwrap();
    let err = run(graph.get("big.onmicrosoft.com", "/organization")).unwrap_err();
    assert!(
        err.to_string().contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{err}"
    );
}

#[test]
fn tokens_are_refreshed_before_they_expire() {
    let sandbox = sandbox(Faults::default());
    sandbox.with_world(|w| w.token_lifetime = Duration::from_secs(2));
    let graph = client(&sandbox);
    run(async {
        graph.get(FOGGY, "/organization").await.unwrap();
        graph.get(FOGGY, "/organization").await.unwrap();
        assert_eq!(graph.token_request_count(), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        graph.get(FOGGY, "/organization").await.unwrap();
        assert_eq!(
            graph.token_request_count(),
            2,
            "refreshed with time to spare"
        );
    });
}
