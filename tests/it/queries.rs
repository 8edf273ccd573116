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
        // Some properties are read by `$filter` only in an advanced query, whatever the
        // operator (GRAPH.md, "Users for end-user sync").
        (
            "/users?$filter=officeLocation eq 'Boston'&$count=true",
            "property 'officeLocation' of resource 'User'",
        ),
        (
            "/users?$filter=userType eq 'Member' and startswith(companyName,'Foggy')",
            "property 'companyName' of resource 'User'",
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
    let (status, body) = raw.get(
        "/users?$filter=officeLocation eq 'Boston'&$count=true",
        true,
    );
    assert_eq!(status, 200, "{body}");
    // A property a default query reads needs no header.
    let (status, body) = raw.get("/users?$filter=department eq 'Finance'", false);
    assert_eq!(status, 200, "{body}");
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

/// A user's profile (what end-user sync routes and copies) as Graph returns it: fields given
/// in the fixture come back under `$select` by their Graph names, licences with their shapes,
/// a disabled account is listed, and the default property set (no `$select`) leaves out what
/// Graph leaves out (`accountEnabled`, `department`, ...).
#[test]
fn users_carry_their_profile_fields_as_graph_names_them() {
    use tenantform::sandbox::fixture::{
        AssignedLicense, Fixture, FixtureUser, LicenseAssignmentState, UserProfile,
    };
    const E3: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
    let mut fixture = Fixture::generated(1, 0);
    // The partner tenant comes first; customer 0 is the one `Raw` reads.
    let customer = tenantform::synthetic::synthetic_guid(0);
    let tenant = fixture
        .tenants
        .iter_mut()
        .find(|t| t.id == customer)
        .unwrap();
    tenant.users.push(FixtureUser {
        account_enabled: false,
        profile: UserProfile {
            given_name: Some("Ana".into()),
            surname: Some("Ortiz".into()),
            department: Some("Finance".into()),
            office_location: Some("Boston 2".into()),
            company_name: Some("Foggy IT".into()),
            job_title: Some("Controller".into()),
            business_phones: vec!["+1 617 555 0100".into()],
            mobile_phone: Some("+1 617 555 0199".into()),
            on_premises_sync_enabled: Some(true),
            assigned_licenses: vec![AssignedLicense {
                sku_id: E3.into(),
                disabled_plans: Vec::new(),
            }],
            license_assignment_states: vec![LicenseAssignmentState {
                sku_id: E3.into(),
                assigned_by_group: Some("00000000-0000-4000-9000-000000000001".into()),
                disabled_plans: Vec::new(),
                state: "Error".into(),
                error: "CountViolation".into(),
                last_updated_date_time: None,
            }],
            ..UserProfile::default()
        },
        ..FixtureUser::member(
            "00000000-0000-4000-8000-000000000001",
            "Ana Ortiz",
            "ana@foggy.example",
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.json");
    std::fs::write(&path, serde_json::to_vec(&fixture).unwrap()).unwrap();
    let sandbox = StandaloneSandbox::serve(
        &["--fixture", path.to_str().unwrap()],
        std::process::Stdio::null(),
    );
    let raw = Raw::new(&sandbox);
    let select = "id,givenName,surname,department,officeLocation,companyName,jobTitle,businessPhones,mobilePhone,accountEnabled,onPremisesSyncEnabled,assignedLicenses,licenseAssignmentStates";
    let (status, body) = raw.get(&format!("/users?$select={select}"), false);
    assert_eq!(status, 200, "{body}");
    let ana = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "00000000-0000-4000-8000-000000000001")
        .unwrap_or_else(|| panic!("a disabled user is listed: {body}"))
        .clone();
    assert_eq!(
        ana,
        json!({
            "id": "00000000-0000-4000-8000-000000000001",
            "givenName": "Ana",
            "surname": "Ortiz",
            "department": "Finance",
            "officeLocation": "Boston 2",
            "companyName": "Foggy IT",
            "jobTitle": "Controller",
            "businessPhones": ["+1 617 555 0100"],
            "mobilePhone": "+1 617 555 0199",
            "accountEnabled": false,
            "onPremisesSyncEnabled": true,
            "assignedLicenses": [{"skuId": E3, "disabledPlans": []}],
            "licenseAssignmentStates": [{
                "skuId": E3,
                "assignedByGroup": "00000000-0000-4000-9000-000000000001",
                "disabledPlans": [],
                "state": "Error",
                "error": "CountViolation",
                "lastUpdatedDateTime": null,
            }],
        })
    );
    let (status, body) = raw.get("/users/00000000-0000-4000-8000-000000000001", false);
    assert_eq!(status, 200, "{body}");
    for absent in [
        "accountEnabled",
        "department",
        "companyName",
        "assignedLicenses",
    ] {
        assert!(
            body.get(absent).is_none(),
            "{absent} is not in the default set: {body}"
        );
    }
    assert_eq!(body["officeLocation"], "Boston 2");
    assert_eq!(body["jobTitle"], "Controller");
}
