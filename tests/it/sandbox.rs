//! The Graph sandbox over real HTTP: tokens, every path, paging, filters, batches, faults and
//! the request log; every response body is checked against the OpenAPI subset.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenantform::sandbox::fixture::{
    SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_PARTNER_TENANT_ID,
};
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

fn fixture() -> Fixture {
    let mut f =
        Fixture::load(&crate::support::repo_root().join("examples/sandbox/fixture.yaml")).unwrap();
    // A tenant big enough to page through.
    let mut big = Fixture::generated(1, 250).tenants.remove(1);
    big.id = "11111111-1111-4111-8111-111111111111".into();
    big.domain = "big.onmicrosoft.com".into();
    f.tenants.push(big);
    f
}

/// Every (method, path, status, body) the tests saw, for the OpenAPI conformance check.
static SEEN: Mutex<Vec<(String, String, u16, Value)>> = Mutex::new(Vec::new());

struct Graph {
    http: reqwest::Client,
    base: String,
    token: String,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Graph {
    async fn connect(sandbox: &SandboxHandle, tenant: &str) -> Graph {
        let http = reqwest::Client::new();
        let token = token(
            &http,
            sandbox,
            tenant,
            &[("client_secret", SANDBOX_CLIENT_SECRET)],
        )
        .await;
        assert_eq!(token.0, 200, "{}", token.1);
        Graph {
            http,
            base: sandbox.base_url().to_string(),
            token: token.1["access_token"].as_str().unwrap().to_string(),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/v1.0{path}", self.base)
        };
        let mut request = self
            .http
            .request(method.parse().unwrap(), &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("sandbox answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        let plain = url.split_once("/v1.0").map_or(url.as_str(), |(_, p)| p);
        SEEN.lock().unwrap().push((
            method.into(),
            plain.split('?').next().unwrap().into(),
            status,
            body.clone(),
        ));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None).await
    }
}

async fn token(
    http: &reqwest::Client,
    sandbox: &SandboxHandle,
    tenant: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("client_id", SANDBOX_CLIENT_ID),
        ("grant_type", "client_credentials"),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    form.extend_from_slice(extra);
    let response = http
        .post(sandbox.token_url(tenant))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn jwt(claims: Value) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        e.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        e.encode(claims.to_string()),
        e.encode(b"sig")
    )
}

#[test]
fn token_endpoint_answers_like_entra() {
    let sandbox = SandboxHandle::start(&fixture(), Faults::default()).unwrap();
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let ok = token(&http, &sandbox, "foggyit.onmicrosoft.com", &[("client_secret", SANDBOX_CLIENT_SECRET)]).await;
        assert_eq!(ok.0, 200);
        assert_eq!(ok.1["token_type"], "Bearer");
        assert!(ok.1["expires_in"].as_u64().unwrap() > 3000);

        let wrong = token(&http, &sandbox, FOGGY, &[("client_secret", "nope")]).await;
        assert_eq!(wrong.0, 401);
        assert_eq!(wrong.1["error"], "invalid_client");
        assert!(wrong.1["error_description"].as_str().unwrap().starts_with("AADSTS7000215"));
        for key in ["error_codes", "trace_id", "correlation_id", "timestamp"] {
            assert!(wrong.1.get(key).is_some(), "{key} in {}", wrong.1);
        }

        let unknown = token(&http, &sandbox, "nowhere.example", &[("client_secret", SANDBOX_CLIENT_SECRET)]).await;
        assert_eq!((unknown.0, unknown.1["error_codes"][0].as_u64()), (400, Some(90002)));

        let no_consent = token(&http, &sandbox, "birchwoodlaw.onmicrosoft.com", &[("client_secret", SANDBOX_CLIENT_SECRET)]).await;
        assert_eq!((no_consent.0, no_consent.1["error_codes"][0].as_u64()), (400, Some(700016)));

        let now = jiff::Timestamp::now().as_second();
        let token_url = sandbox.token_url(FOGGY);
        let good = jwt(json!({"aud": token_url, "iss": SANDBOX_CLIENT_ID, "sub": SANDBOX_CLIENT_ID, "jti": "1", "nbf": now, "exp": now + 600}));
        let assertion = [("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", good.as_str())];
        assert_eq!(token(&http, &sandbox, FOGGY, &assertion).await.0, 200);
        let expired = jwt(json!({"aud": token_url, "iss": SANDBOX_CLIENT_ID, "sub": SANDBOX_CLIENT_ID, "nbf": now - 900, "exp": now - 300}));
        let bad = token(&http, &sandbox, FOGGY, &[assertion[0], ("client_assertion", expired.as_str())]).await;
        assert_eq!(bad.1["error_codes"][0], 700024);
        let federated = jwt(json!({"aud": "api://AzureADTokenExchange", "iss": "https://token.actions.githubusercontent.com", "sub": "repo:msp/tenants:ref:refs/heads/main", "nbf": now, "exp": now + 600}));
        assert_eq!(token(&http, &sandbox, FOGGY, &[assertion[0], ("client_assertion", federated.as_str())]).await.0, 200);
        // Federated assertions must match one of the app's federated identity credentials
        // exactly (issuer, subject, audience); otherwise AADSTS70021, naming them.
        for (aud, sub) in [("api://AzureADTokenExchange", "repo:msp/tenants:pull_request"), ("api://other", "repo:msp/tenants:ref:refs/heads/main"), ("api://AzureADTokenExchange", "repo:MSP/tenants:ref:refs/heads/main")] {
            let untrusted = jwt(json!({"aud": aud, "iss": "https://token.actions.githubusercontent.com", "sub": sub, "nbf": now, "exp": now + 600}));
            let refused = token(&http, &sandbox, FOGGY, &[assertion[0], ("client_assertion", untrusted.as_str())]).await;
            assert_eq!((refused.0, refused.1["error"].as_str(), refused.1["error_codes"][0].as_u64()), (400, Some("invalid_request"), Some(70021)));
            let description = refused.1["error_description"].as_str().unwrap();
            assert!(description.starts_with("AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://token.actions.githubusercontent.com'."), "{description}");
            assert!(description.contains(&format!("Assertion Subject: '{sub}'. Assertion Audience: '{aud}'.")), "{description}");
        }

        // Graph without a token, or with a made-up one.
        let anonymous = http.get(sandbox.graph_url() + "/users").send().await.unwrap();
        assert_eq!(anonymous.status().as_u16(), 401);
        let body: Value = anonymous.json().await.unwrap();
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
        let forged = http.get(sandbox.graph_url() + "/users").bearer_auth("sandbox.forged").send().await.unwrap();
        assert_eq!(forged.status().as_u16(), 401);
    });
}

#[test]
fn invitations_guests_and_redemption() {
    let sandbox = SandboxHandle::start(&fixture(), Faults::default()).unwrap();
    runtime().block_on(async {
        let g = Graph::connect(&sandbox, FOGGY).await;
        let invite = json!({
            "invitedUserEmailAddress": "Dana.Whitfield@contoso-msp.example",
            "invitedUserDisplayName": "Dana Whitfield (Contoso MSP)",
            "inviteRedirectUrl": "https://myapps.microsoft.com",
            "sendInvitationMessage": true,
        });
        let created = g.send("POST", "/invitations", Some(invite.clone())).await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["status"], "PendingAcceptance");
        let user_id = created.body["invitedUser"]["id"].as_str().unwrap().to_string();
        let redeem = created.body["inviteRedeemUrl"].as_str().unwrap().to_string();

        let filter = "/users?$filter=mail%20eq%20'dana.whitfield@contoso-msp.example'&$select=id,displayName,mail,userType,externalUserState,externalUserStateChangeDateTime";
        let found = g.get(filter).await;
        assert_eq!(found.status, 200);
        let guest = &found.body["value"][0];
        assert_eq!(guest["id"], user_id.as_str());
        assert_eq!(guest["userType"], "Guest");
        assert_eq!(guest["externalUserState"], "PendingAcceptance");
        assert!(guest.get("accountEnabled").is_none(), "$select limits properties");
        // Without $select, externalUserState is not returned.
        let plain = g.get(&format!("/users/{user_id}")).await;
        assert!(plain.body.get("externalUserState").is_none());
        assert!(plain.body["userPrincipalName"].as_str().unwrap().contains("#EXT#@foggyit.onmicrosoft.com"));

        // Inviting the same address again never makes a second guest.
        let again = g.send("POST", "/invitations", Some(invite)).await;
        assert_eq!(again.body["invitedUser"]["id"], user_id.as_str());
        let by_other_mail = g.get("/users?$filter=otherMails/any(m:m%20eq%20'dana.whitfield@contoso-msp.example')").await;
        assert_eq!(by_other_mail.body["value"].as_array().unwrap().len(), 1);

        // The guest follows the link: accepted.
        reqwest::get(&redeem).await.unwrap().error_for_status().unwrap();
        let accepted = g.get(&format!("/users/{user_id}?$select=externalUserState")).await;
        assert_eq!(accepted.body["externalUserState"], "Accepted");

        // Missing field: Graph's error body with a request id.
        let bad = g.send("POST", "/invitations", Some(json!({"inviteRedirectUrl": "https://x.example"}))).await;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.body["error"]["code"], "Request_BadRequest");
        assert!(bad.body["error"]["innerError"]["request-id"].is_string());
        assert!(bad.headers.get("request-id").is_some());
    });
}

#[test]
fn users_page_filter_patch_delete_and_restore() {
    let sandbox = SandboxHandle::start(&fixture(), Faults::default()).unwrap();
    runtime().block_on(async {
        let g = Graph::connect(&sandbox, "big.onmicrosoft.com").await;
        let mut next = Some("/users?$top=100&$select=id,mail".to_string());
        let mut seen = Vec::new();
        let mut pages = 0;
        while let Some(link) = next {
            let page = g.get(&link).await;
            assert_eq!(page.status, 200, "{}", page.body);
            pages += 1;
            seen.extend(page.body["value"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()));
            next = page.body["@odata.nextLink"].as_str().map(str::to_string);
        }
        assert_eq!((pages, seen.len()), (3, 250));
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 250, "no user twice across pages");
        assert_eq!(g.get("/users?$top=1000").await.status, 400);

        let some = g.get("/users?$filter=mail%20eq%20'user7@customer00000.example'%20or%20startswith(displayName,'User%2012%20')").await;
        assert_eq!(some.body["value"].as_array().unwrap().len(), 2);
        let bad_filter = g.get("/users?$filter=mail%20gt%20'a'").await;
        assert_eq!(bad_filter.status, 400);

        let id = some.body["value"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(g.send("PATCH", &format!("/users/{id}"), Some(json!({"displayName": "Renamed"}))).await.status, 204);
        assert_eq!(g.get(&format!("/users/{id}")).await.body["displayName"], "Renamed");
        assert_eq!(g.send("DELETE", &format!("/users/{id}"), None).await.status, 204);
        assert_eq!(g.get(&format!("/users/{id}")).await.status, 404);
        let deleted = g.get("/directory/deletedItems/microsoft.graph.user").await;
        assert_eq!(deleted.body["value"][0]["id"], id.as_str());
        assert_eq!(g.get(&format!("/directory/deletedItems/{id}")).await.status, 200);
        let restored = g.send("POST", &format!("/directory/deletedItems/{id}/restore"), None).await;
        assert_eq!(restored.status, 200);
        assert_eq!(g.get(&format!("/users/{id}")).await.status, 200);
        assert_eq!(g.send("DELETE", &format!("/users/{id}"), None).await.status, 204);
        assert_eq!(g.send("DELETE", &format!("/directory/deletedItems/{id}"), None).await.status, 204);
        assert_eq!(g.get(&format!("/directory/deletedItems/{id}")).await.status, 404);
    });
}

#[test]
fn role_definitions_and_assignments_with_replication_delay() {
    let faults = Faults {
        replication_delay_ms: 300,
        ..Faults::default()
    };
    let sandbox = SandboxHandle::start(&fixture(), faults).unwrap();
    runtime().block_on(async {
        let g = Graph::connect(&sandbox, FOGGY).await;
        let first = g.get("/roleManagement/directory/roleDefinitions").await;
        let second = g.get(first.body["@odata.nextLink"].as_str().unwrap()).await;
        assert_eq!(first.body["value"].as_array().unwrap().len() + second.body["value"].as_array().unwrap().len(), 123);
        let helpdesk = g.get(&format!("/roleManagement/directory/roleDefinitions/{HELPDESK}")).await;
        assert_eq!(helpdesk.body["displayName"], "Helpdesk Administrator");

        let invited = g
            .send("POST", "/invitations", Some(json!({"invitedUserEmailAddress": "new@msp.example", "inviteRedirectUrl": "https://myapps.microsoft.com"})))
            .await;
        let principal = invited.body["invitedUser"]["id"].as_str().unwrap().to_string();
        let assignment = json!({"principalId": principal, "roleDefinitionId": HELPDESK, "directoryScopeId": "/"});
        let early = g.send("POST", "/roleManagement/directory/roleAssignments", Some(assignment.clone())).await;
        assert_eq!((early.status, early.body["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")), "not replicated yet");
        tokio::time::sleep(Duration::from_millis(350)).await;
        let created = g.send("POST", "/roleManagement/directory/roleAssignments", Some(assignment.clone())).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let duplicate = g.send("POST", "/roleManagement/directory/roleAssignments", Some(assignment)).await;
        assert_eq!(duplicate.status, 400);
        assert_eq!(
            duplicate.body["error"]["message"],
            "A conflicting object with one or more of the specified property values is present in the directory."
        );
        let listed = g
            .get(&format!("/roleManagement/directory/roleAssignments?$filter=principalId%20eq%20'{principal}'&$expand=principal"))
            .await;
        let items = listed.body["value"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["principal"]["id"], principal.as_str());
        let id = items[0]["id"].as_str().unwrap();
        assert_eq!(g.get(&format!("/roleManagement/directory/roleAssignments/{id}")).await.status, 200);
        assert_eq!(g.send("DELETE", &format!("/roleManagement/directory/roleAssignments/{id}"), None).await.status, 204);
        assert_eq!(g.get(&format!("/roleManagement/directory/roleAssignments/{id}")).await.status, 404);
        let unknown_role = g
            .send("POST", "/roleManagement/directory/roleAssignments", Some(json!({"principalId": principal, "roleDefinitionId": "00000000-0000-4000-8000-000000000000", "directoryScopeId": "/"})))
            .await;
        assert_eq!(unknown_role.status, 404);
    });
}

#[test]
fn partner_contracts_organization_and_out_of_band_changes() {
    let sandbox = SandboxHandle::start(&fixture(), Faults::default()).unwrap();
    runtime().block_on(async {
        let partner = Graph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        let contracts = partner.get("/contracts").await;
        let customers: Vec<&str> = contracts.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["customerId"].as_str().unwrap())
            .collect();
        assert_eq!(customers, [FOGGY, "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"]);
        let one = contracts.body["value"][0]["id"].as_str().unwrap();
        assert_eq!(
            partner.get(&format!("/contracts/{one}")).await.body["displayName"],
            "Foggy IT Services"
        );

        let g = Graph::connect(&sandbox, FOGGY).await;
        let org = g.get("/organization").await;
        assert_eq!(org.body["value"][0]["id"], FOGGY);
        assert_eq!(
            org.body["value"][0]["verifiedDomains"][0]["name"],
            "foggyit.onmicrosoft.com"
        );
        assert_eq!(g.get(&format!("/organization/{FOGGY}")).await.status, 200);

        // Someone edits and then deletes a guest in the portal.
        sandbox
            .edit_user(
                FOGGY,
                "ben@previous-msp.example",
                &json!({"displayName": "Ben (edited)"}),
            )
            .unwrap();
        let ben = g
            .get("/users?$filter=mail%20eq%20'ben@previous-msp.example'")
            .await;
        assert_eq!(ben.body["value"][0]["displayName"], "Ben (edited)");
        sandbox
            .delete_user(FOGGY, "ben@previous-msp.example")
            .unwrap();
        assert!(
            g.get("/users?$filter=mail%20eq%20'ben@previous-msp.example'")
                .await
                .body["value"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        // Consent revoked after the token was issued: 403.
        sandbox.set_consent(FOGGY, false).unwrap();
        let denied = g.get("/users").await;
        assert_eq!(
            (denied.status, denied.body["error"]["code"].as_str()),
            (403, Some("Authorization_RequestDenied"))
        );
    });
}

#[test]
fn batches_run_in_order_with_dependencies() {
    let sandbox = SandboxHandle::start(&fixture(), Faults::default()).unwrap();
    runtime().block_on(async {
        let g = Graph::connect(&sandbox, FOGGY).await;
        let batch = json!({"requests": [
            {"id": "1", "method": "POST", "url": "/invitations", "headers": {"Content-Type": "application/json"},
             "body": {"invitedUserEmailAddress": "b1@msp.example", "inviteRedirectUrl": "https://myapps.microsoft.com"}},
            {"id": "2", "method": "GET", "url": "/users?$filter=mail eq 'b1@msp.example'&$select=id,externalUserState", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": "/users/no-such-user"},
            {"id": "4", "method": "GET", "url": "/organization", "dependsOn": ["3"]},
        ]});
        let answer = g.send("POST", "/$batch", Some(batch)).await;
        assert_eq!(answer.status, 200);
        let by_id = |id: &str| answer.body["responses"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
        assert_eq!(by_id("1")["status"], 201);
        assert_eq!(by_id("2")["body"]["value"][0]["externalUserState"], "PendingAcceptance");
        assert_eq!(by_id("3")["status"], 404);
        assert_eq!(by_id("4")["status"], 424, "its dependency failed");

        let too_many = json!({"requests": (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/organization"})).collect::<Vec<_>>()});
        assert_eq!(g.send("POST", "/$batch", Some(too_many)).await.status, 400);

        // Inner requests can be throttled on their own.
        sandbox.set_faults(Faults { throttle_rate: 1.0, retry_after_seconds: 2.128, ..Faults::default() });
        let throttled = g.send("POST", "/$batch", Some(json!({"requests": [{"id": "a", "method": "GET", "url": "/organization"}]}))).await;
        // The batch itself was throttled too (every request is): 429 on the wire.
        assert_eq!(throttled.status, 200, "the $batch envelope is not throttled");
        let inner = &throttled.body["responses"][0];
        assert_eq!(inner["status"], 429);
        assert_eq!(inner["headers"]["Retry-After"], "2.128");

        let requests = sandbox.requests();
        let batched = requests.iter().filter(|r| r.in_batch).count();
        assert_eq!(batched, 3 + 1, "inner requests are recorded (the 424 never ran)");
        assert!(requests.iter().all(|r| r.tenant.as_deref().is_none_or(|t| t == FOGGY)));
    });
}

#[test]
fn faults_are_deterministic_and_do_what_they_say() {
    let sandbox = SandboxHandle::start(&fixture(), Faults::default()).unwrap();
    runtime().block_on(async {
        let g = Graph::connect(&sandbox, FOGGY).await;
        sandbox.set_faults(Faults {
            throttle_rate: 1.0,
            retry_after_seconds: 2.128,
            ..Faults::default()
        });
        let throttled = g.get("/organization").await;
        assert_eq!(throttled.status, 429);
        assert_eq!(throttled.headers["retry-after"], "2.128");
        assert_eq!(throttled.body["error"]["code"], "TooManyRequests");

        sandbox.set_faults(Faults {
            server_error_rate: 1.0,
            ..Faults::default()
        });
        assert!([500, 503, 504].contains(&g.get("/organization").await.status));

        sandbox.set_faults(Faults {
            drop_rate: 1.0,
            ..Faults::default()
        });
        let dropped = g
            .http
            .get(format!("{}/v1.0/organization", g.base))
            .bearer_auth(&g.token)
            .send()
            .await;
        assert!(dropped.is_err(), "connection dropped without a response");

        sandbox.set_faults(Faults {
            latency_ms: 120,
            ..Faults::default()
        });
        let start = Instant::now();
        assert_eq!(g.get("/organization").await.status, 200);
        assert!(start.elapsed() >= Duration::from_millis(120));

        // Same seed, same sequence of statuses.
        let mixed = Faults {
            seed: 9,
            throttle_rate: 0.3,
            server_error_rate: 0.2,
            retry_after_seconds: 1.0,
            ..Faults::default()
        };
        let mut runs = Vec::new();
        for _ in 0..2 {
            sandbox.set_faults(mixed.clone());
            let mut statuses = Vec::new();
            for _ in 0..30 {
                statuses.push(g.get("/organization").await.status);
            }
            runs.push(statuses);
        }
        assert_eq!(runs[0], runs[1]);
        assert!(runs[0].contains(&429) && runs[0].contains(&200));

        // Graph's budgets: a small tenant gets 3,500 resource units per 10 s; GET users costs 2.
        sandbox.set_faults(Faults {
            enforce_budgets: true,
            ..Faults::default()
        });
        let mut first_throttle = None;
        for i in 0..1_800 {
            let r = g.get("/users").await;
            if r.status == 429 {
                first_throttle = Some((
                    i,
                    r.headers["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse::<f64>()
                        .unwrap(),
                ));
                break;
            }
        }
        let (at, wait) = first_throttle.expect("budget enforced");
        assert_eq!(at, 1_750);
        assert!(wait > 0.0 && wait <= 10.0);
    });
}

#[test]
fn the_request_log_counts_what_was_served() {
    let sandbox = SandboxHandle::start(&fixture(), Faults::default()).unwrap();
    runtime().block_on(async {
        let g = Graph::connect(&sandbox, FOGGY).await;
        g.get("/organization").await;
        g.get("/users").await;
        let log = sandbox.requests();
        let shown: Vec<(String, String, Option<String>, u16)> = log
            .iter()
            .map(|r| (r.method.clone(), r.path.clone(), r.tenant.clone(), r.status))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "POST".into(),
                    format!("/{FOGGY}/oauth2/v2.0/token"),
                    Some(FOGGY.into()),
                    200
                ),
                (
                    "GET".into(),
                    "/v1.0/organization".into(),
                    Some(FOGGY.into()),
                    200
                ),
                ("GET".into(), "/v1.0/users".into(), Some(FOGGY.into()), 200),
            ]
        );
        let over_http: Value = reqwest::get(format!("{}/_sandbox/requests", sandbox.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(over_http.as_array().unwrap().len(), 3);
        sandbox.clear_requests();
        assert!(sandbox.requests().is_empty());
    });
}

/// The OpenAPI subset as JSON, with OpenAPI 3.0's `nullable` turned into JSON Schema types and
/// the open-type marker `additionalProperties` dropped (with `allOf` used as inheritance, JSON
/// Schema would apply a base type's `additionalProperties` to the derived type's properties).
fn openapi() -> Value {
    fn fix(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map
                    .get("additionalProperties")
                    .is_some_and(|a| a == &json!({"type": "object"}))
                {
                    map.remove("additionalProperties");
                }
                if map.remove("nullable") == Some(Value::Bool(true)) {
                    match map.get("type").cloned() {
                        Some(Value::String(t)) => {
                            map.insert("type".into(), json!([t, "null"]));
                        }
                        _ => {
                            let inner = Value::Object(std::mem::take(map));
                            map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                        }
                    }
                }
                map.values_mut().for_each(fix);
            }
            Value::Array(items) => items.iter_mut().for_each(fix),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(
        crate::support::repo_root().join("data/graph-v1.0-subset.openapi.yaml"),
    )
    .unwrap();
    let mut doc: Value = serde_saphyr::from_str(&text).unwrap();
    fix(&mut doc);
    doc
}

/// The response schema for a concrete request, from the OpenAPI paths.
fn response_schema(doc: &Value, method: &str, path: &str, status: u16) -> Option<(String, Value)> {
    let paths = doc["paths"].as_object()?;
    let concrete: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (template, item) = paths.iter().find(|(template, _)| {
        let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
        parts.len() == concrete.len()
            && parts
                .iter()
                .zip(&concrete)
                .all(|(t, c)| t.starts_with('{') || t == c)
    })?;
    let responses = &item[method.to_lowercase()]["responses"];
    let class = format!("{}XX", status / 100);
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get(&class))?;
    let response = match response["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#'))?,
        None => response,
    };
    Some((
        template.clone(),
        response["content"]["application/json"]["schema"].clone(),
    ))
}

#[test]
fn every_response_conforms_to_the_openapi_subset() {
    // Run the scenario tests' traffic first (they fill SEEN), in this process.
    token_endpoint_answers_like_entra();
    invitations_guests_and_redemption();
    users_page_filter_patch_delete_and_restore();
    role_definitions_and_assignments_with_replication_delay();
    partner_contracts_organization_and_out_of_band_changes();
    batches_run_in_order_with_dependencies();

    let doc = openapi();
    let seen = SEEN.lock().unwrap().clone();
    let mut covered = std::collections::BTreeSet::new();
    let mut checked = 0;
    for (method, path, status, body) in &seen {
        if body.is_null() {
            continue; // 204 No Content
        }
        let Some((template, schema)) = response_schema(&doc, method, path, *status) else {
            panic!("no OpenAPI response for {method} {path} {status}");
        };
        let mut root = schema.clone();
        root["components"] = doc["components"].clone();
        let validator =
            jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{template}: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} ({status}) does not match {template}: {errors:?}\n{body}"
        );
        covered.insert(format!("{method} {template}"));
        checked += 1;
    }
    for expected in [
        "POST /invitations",
        "GET /users",
        "GET /users/{user-id}",
        "GET /directory/deletedItems/microsoft.graph.user",
        "GET /directory/deletedItems/{directoryObject-id}",
        "POST /directory/deletedItems/{directoryObject-id}/restore",
        "GET /roleManagement/directory/roleDefinitions",
        "GET /roleManagement/directory/roleDefinitions/{unifiedRoleDefinition-id}",
        "GET /roleManagement/directory/roleAssignments",
        "POST /roleManagement/directory/roleAssignments",
        "GET /roleManagement/directory/roleAssignments/{unifiedRoleAssignment-id}",
        "GET /contracts",
        "GET /contracts/{contract-id}",
        "GET /organization",
        "GET /organization/{organization-id}",
        "POST /$batch",
    ] {
        assert!(
            covered.contains(expected),
            "{expected} was not exercised; covered: {covered:?}"
        );
    }
    assert!(checked > 40, "{checked} responses checked");
}

#[test]
fn http_controls_drive_the_sandbox_from_outside() {
    let sandbox = SandboxHandle::start(&fixture(), Faults::default()).unwrap();
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let control = |path: &str| format!("{}/_sandbox{path}", sandbox.base_url());
        let g = Graph::connect(&sandbox, FOGGY).await;
        let invited = g
            .send("POST", "/invitations", Some(json!({"invitedUserEmailAddress": "ctl@msp.example", "inviteRedirectUrl": "https://myapps.microsoft.com"})))
            .await;
        let id = invited.body["invitedUser"]["id"].as_str().unwrap().to_string();

        let accept = http.post(control(&format!("/tenants/{FOGGY}/users/ctl@msp.example/accept"))).send().await.unwrap();
        assert_eq!(accept.status().as_u16(), 204);
        assert_eq!(g.get(&format!("/users/{id}?$select=externalUserState")).await.body["externalUserState"], "Accepted");

        let edit = http
            .patch(control(&format!("/tenants/foggyit.onmicrosoft.com/users/{id}")))
            .json(&json!({"displayName": "Edited in the portal"}))
            .send()
            .await
            .unwrap();
        assert_eq!(edit.status().as_u16(), 204);
        assert_eq!(g.get(&format!("/users/{id}")).await.body["displayName"], "Edited in the portal");

        sandbox.with_world(|w| w.faults.replication_delay_ms = 0);
        let ra = g
            .send("POST", "/roleManagement/directory/roleAssignments", Some(json!({"principalId": id, "roleDefinitionId": HELPDESK, "directoryScopeId": "/"})))
            .await;
        let ra_id = ra.body["id"].as_str().unwrap();
        let removed = http.delete(control(&format!("/tenants/{FOGGY}/roleAssignments/{ra_id}"))).send().await.unwrap();
        assert_eq!(removed.status().as_u16(), 204);
        assert_eq!(g.get(&format!("/roleManagement/directory/roleAssignments/{ra_id}")).await.status, 404);

        let faults = http.put(control("/faults")).json(&json!({"throttleRate": 1.0, "retryAfterSeconds": 3.5})).send().await.unwrap();
        assert_eq!(faults.status().as_u16(), 200);
        let throttled = g.get("/organization").await;
        assert_eq!((throttled.status, throttled.headers["retry-after"].to_str().unwrap()), (429, "3.5"));
        http.put(control("/faults")).json(&json!({})).send().await.unwrap();

        let consent = http.put(control(&format!("/tenants/{FOGGY}/consent"))).json(&json!({"consent": false})).send().await.unwrap();
        assert_eq!(consent.status().as_u16(), 204);
        let (status, body) = token(&http, &sandbox, FOGGY, &[("client_secret", SANDBOX_CLIENT_SECRET)]).await;
        assert_eq!((status, body["error_codes"][0].as_u64()), (400, Some(700016)));

        let deleted = http.delete(control(&format!("/tenants/{FOGGY}/users/{id}"))).send().await.unwrap();
        assert_eq!(deleted.status().as_u16(), 204);
        assert_eq!(http.delete(control("/requests")).send().await.unwrap().status().as_u16(), 204);
        assert!(sandbox.requests().is_empty());
    });
}

#[test]
fn licences_are_summed_by_sku_from_subscriptions_and_users_with_their_permissions() {
    use tenantform::sandbox::fixture::{GENERATED_E3, GENERATED_TEAMS_TRIAL};
    let mut fixture = Fixture::generated_with_profiles(13, 60);
    // Customer 12 has E3 seats enabled and five in grace; customer 9 a Teams trial.
    let (grace, trial) = (
        fixture.tenants[13].id.clone(),
        fixture.tenants[10].id.clone(),
    );
    let holders = fixture.tenants[13]
        .users
        .iter()
        .filter(|u| u.holds(GENERATED_E3))
        .count() as i64;
    assert!(holders > 30, "most staff hold E3");
    // Customer 0 granted only what reading users needs; customer 1 only the newer licence
    // permission, which covers subscribedSkus but not directory/subscriptions.
    fixture.tenants[1].permissions = Some(vec!["User.Read.All".into()]);
    fixture.tenants[2].permissions = Some(vec!["LicenseAssignment.Read.All".into()]);
    let (users_only, licence_only) = (fixture.tenants[1].id.clone(), fixture.tenants[2].id.clone());
    fixture.apps[0]
        .roles
        .push("LicenseAssignment.Read.All".into());
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    runtime().block_on(async {
        let g = Graph::connect(&sandbox, &grace).await;
        let skus = g.get("/subscribedSkus").await;
        assert_eq!(skus.status, 200, "{}", skus.body);
        let value = skus.body["value"].as_array().unwrap();
        assert_eq!(value.len(), 1, "two subscriptions of one SKU are one SKU");
        let e3 = &value[0];
        assert_eq!(e3["skuId"], GENERATED_E3);
        assert_eq!(e3["skuPartNumber"], "SPE_E3", "from Microsoft's table");
        assert_eq!(e3["id"], format!("{grace}_{GENERATED_E3}"));
        assert_eq!(e3["capabilityStatus"], "Enabled");
        assert_eq!(e3["appliesTo"], "User");
        assert_eq!(e3["consumedUnits"], holders);
        assert_eq!(
            e3["prepaidUnits"],
            json!({"enabled": holders + 12 % 7 - 2, "warning": 5, "suspended": 0, "lockedOut": 0})
        );
        let subscriptions = g.get("/directory/subscriptions").await;
        assert_eq!(subscriptions.status, 200, "{}", subscriptions.body);
        let subs = subscriptions.body["value"].as_array().unwrap();
        let statuses: Vec<&str> = subs.iter().map(|s| s["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["Enabled", "Warning"]);
        let ids: Vec<&Value> = subs.iter().map(|s| &s["id"]).collect();
        assert_eq!(
            e3["subscriptionIds"],
            json!(ids),
            "the SKU names its subscriptions"
        );
        let again = g.get("/directory/subscriptions").await;
        assert_eq!(
            again.body["value"][0]["id"], subs[0]["id"],
            "ids are stable"
        );
        // subscribedsku-list.md: only $select; no $filter.
        let filtered = g
            .get("/subscribedSkus?$filter=capabilityStatus%20eq%20'Enabled'")
            .await;
        assert_eq!(filtered.status, 400);
        let selected = g.get("/subscribedSkus?$select=skuId,consumedUnits").await;
        assert_eq!(
            selected.body["value"][0],
            json!({"skuId": GENERATED_E3, "consumedUnits": holders})
        );

        let g = Graph::connect(&sandbox, &trial).await;
        let skus = g.get("/subscribedSkus").await;
        let parts: Vec<&str> = skus.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["skuPartNumber"].as_str().unwrap())
            .collect();
        assert_eq!(parts, ["SPE_E3", "MS_TEAMS_IW"]);
        let subs = g.get("/directory/subscriptions").await;
        let teams = subs.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["skuId"] == GENERATED_TEAMS_TRIAL)
            .unwrap();
        assert_eq!(teams["isTrial"], true);
        assert_eq!(teams["nextLifecycleDateTime"], "2027-01-10T00:00:00Z");

        let g = Graph::connect(&sandbox, &users_only).await;
        for path in ["/subscribedSkus", "/directory/subscriptions"] {
            let denied = g.get(path).await;
            assert_eq!(denied.status, 403, "{path}: {}", denied.body);
            assert_eq!(denied.body["error"]["code"], "Authorization_RequestDenied");
        }
        let g = Graph::connect(&sandbox, &licence_only).await;
        assert_eq!(g.get("/subscribedSkus").await.status, 200);
        assert_eq!(g.get("/directory/subscriptions").await.status, 403);
    });
}

#[test]
fn secure_score_answers_150_requests_a_minute_per_tenant_then_429_with_retry_after() {
    let fixture = Fixture::generated_with_profiles(2, 3);
    let (first, second) = (fixture.tenants[1].id.clone(), fixture.tenants[2].id.clone());
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    runtime().block_on(async {
        let g = Graph::connect(&sandbox, &first).await;
        for i in 0..150 {
            let path = if i % 2 == 0 {
                "/security/secureScores?$top=1"
            } else {
                "/security/secureScoreControlProfiles"
            };
            assert_eq!(g.get(path).await.status, 200, "request {i}");
        }
        let limited = g.get("/security/secureScores?$top=1").await;
        assert_eq!(limited.status, 429, "{}", limited.body);
        assert_eq!(limited.body["error"]["code"], "TooManyRequests");
        let wait: f64 = limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(wait > 0.0 && wait <= 60.0, "{wait}");
        // Other endpoints of the tenant, and other tenants, are not held back.
        assert_eq!(g.get("/organization").await.status, 200);
        let other = Graph::connect(&sandbox, &second).await;
        assert_eq!(other.get("/security/secureScores?$top=1").await.status, 200);
    });
}
