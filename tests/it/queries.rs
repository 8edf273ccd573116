//! Graph's query rules in the sandbox: advanced queries need `ConsistencyLevel: eventual`
//! (inside `$batch`, on each inner request), and fail without it as Graph fails.

use serde_json::{Value, json};

use crate::support::StandaloneSandbox;

/// A raw HTTP client on the sandbox, with a token for customer tenant 0: the rules are the
/// sandbox's, so the request is written by hand rather than by tenantform's client.
struct Raw {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Raw {
    fn new(sandbox: &StandaloneSandbox) -> Raw {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tenant = tenantform::synthetic::synthetic_guid(0);
        let token = rt.block_on(sandbox.graph_client().token(&tenant)).unwrap();
        Raw {
            rt,
            http: reqwest::Client::new(),
            base: format!("{}/v1.0", sandbox.base),
            token,
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        self.rt.block_on(async {
            let response = request.bearer_auth(&self.token).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    }

    fn get(&self, path: &str, eventual: bool) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if eventual {
            request = request.header("ConsistencyLevel", "eventual");
        }
        self.send(request)
    }
}

#[test]
fn advanced_queries_need_consistency_level_eventual_as_in_graph() {
    let sandbox = StandaloneSandbox::start(1);
    let raw = Raw::new(&sandbox);
    for (path, message) in [
        (
            "/users?$filter=userType ne 'Guest'&$count=true",
            "Unsupported property filter clause operator 'NotEqualsMatch'.",
        ),
        (
            "/users?$filter=endswith(mail,'@msp.example')&$count=true",
            "Unsupported property filter clause operator",
        ),
        (
            "/users?$search=\"displayName:dana\"",
            "only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
        ),
        (
            "/users?$filter=userType eq 'Member'&$orderby=displayName",
            "Sorting not supported for current query.",
        ),
        (
            "/users/$count",
            "'ConsistencyLevel:eventual' header is missing",
        ),
    ] {
        let (status, body) = raw.get(path, false);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "Request_UnsupportedQuery", "{path}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{path}: {body}"
        );
    }
    // With the header (and $count=true where Graph wants it) the same query answers.
    let (status, body) = raw.get("/users?$filter=userType ne 'Guest'&$count=true", true);
    assert_eq!(status, 200, "{body}");
    assert!(body["@odata.count"].is_u64(), "{body}");
    // `ne` with the header but without $count=true is still refused.
    assert_eq!(raw.get("/users?$filter=userType ne 'Guest'", true).0, 400);
    // Without the header, $count=true is silently ignored.
    let (status, body) = raw.get("/users?$filter=userType eq 'Guest'&$count=true", false);
    assert_eq!(status, 200);
    assert!(body.get("@odata.count").is_none(), "{body}");
}

#[test]
fn inside_a_batch_the_header_belongs_to_each_inner_request() {
    let sandbox = StandaloneSandbox::start(1);
    let raw = Raw::new(&sandbox);
    let query = "/users?$filter=userType ne 'Guest'&$count=true";
    let body = json!({"requests": [
        {"id": "plain", "method": "GET", "url": query},
        {"id": "eventual", "method": "GET", "url": query,
         "headers": {"ConsistencyLevel": "eventual"}},
    ]});
    // The outer request's header does not make the inner ones advanced queries.
    let (status, answer) = raw.send(
        raw.http
            .post(format!("{}/$batch", raw.base))
            .header("ConsistencyLevel", "eventual")
            .json(&body),
    );
    assert_eq!(status, 200, "{answer}");
    let inner = |id: &str| {
        answer["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["status"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(inner("plain"), 400);
    assert_eq!(inner("eventual"), 200);
}

#[test]
fn only_the_query_options_an_endpoint_documents_are_accepted() {
    let sandbox = StandaloneSandbox::start(1);
    let raw = Raw::new(&sandbox);
    // The role assignment list documents $filter, $expand and $select only.
    for refused in [
        "/roleManagement/directory/roleAssignments?$top=999",
        "/roleManagement/directory/roleAssignments?$orderby=id",
        "/users?$skip=10",
        "/organization?$top=1",
    ] {
        let (status, body) = raw.get(refused, false);
        assert_eq!(status, 400, "{refused}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("is not supported"),
            "{refused}: {body}"
        );
    }
    for accepted in [
        "/roleManagement/directory/roleAssignments?$expand=principal&$select=id",
        "/users?$top=999&$select=id,mail",
        "/organization?$select=id,displayName",
    ] {
        let (status, body) = raw.get(accepted, false);
        assert_eq!(status, 200, "{accepted}: {body}");
    }
    // $top limits: 1 to 999 on users.
    assert_eq!(raw.get("/users?$top=1000", false).0, 400);
}
