//! GDAP (issue 17): the sandbox's delegated admin relationships over real HTTP, as Graph
//! documents them (statuses, etags, validation, permissions), and the controls that play the
//! customer and time.

use serde_json::{Value, json};
use tenantform::sandbox::fixture::{FixtureGroup, SANDBOX_PARTNER_TENANT_ID};
use tenantform::sandbox::gdap::Relationship;
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};

use crate::support::{RawGraph, block_on as run};

const RELATIONSHIPS: &str = "/tenantRelationships/delegatedAdminRelationships";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const HELPDESK_ADMIN: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const SUPPORT_GROUP: &str = "5d1e0c2a-0000-4000-8000-0000000005a1";

/// A partner with two customers and a security group "Helpdesk agents".
fn partner_world() -> Fixture {
    let mut fixture = Fixture::generated(2, 1);
    fixture.tenants[0].groups.push(FixtureGroup {
        id: SUPPORT_GROUP.into(),
        display_name: "Helpdesk agents".into(),
        mail: None,
        is_assignable_to_role: false,
        members: Vec::new(),
    });
    fixture
}

fn customer(fixture: &Fixture) -> String {
    fixture.tenants[1].id.clone()
}

fn relationship_body(name: &str, customer: &str, roles: &[&str], auto_extend: &str) -> Value {
    json!({
        "displayName": name,
        "duration": "P730D",
        "customer": {"tenantId": customer, "displayName": "Customer 0 Holdings"},
        "accessDetails": {"unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()},
        "autoExtendDuration": auto_extend,
    })
}

async fn control(sandbox: &SandboxHandle, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/_sandbox/tenants/{SANDBOX_PARTNER_TENANT_ID}/delegatedAdminRelationships/{path}",
            sandbox.base_url()
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn a_relationship_is_created_locked_approved_and_given_access_assignments() {
    let fixture = partner_world();
    let customer = customer(&fixture);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        let graph = RawGraph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        let (status, created) = graph
            .send(
                "POST",
                RELATIONSHIPS,
                Some(relationship_body(
                    "Contoso helpdesk",
                    &customer,
                    &[GLOBAL_ADMIN, HELPDESK_ADMIN],
                    "PT0S",
                )),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["status"], "created");
        assert_eq!(created["endDateTime"], Value::Null, "not active yet");
        assert!(created["id"].as_str().unwrap().starts_with(&customer));
        let id = created["id"].as_str().unwrap().to_string();
        let etag = created["@odata.etag"].as_str().unwrap().to_string();
        assert!(etag.starts_with("W/\""), "{etag}");
        let path = format!("{RELATIONSHIPS}/{id}");

        // The display name is unique across the partner's relationships (any case).
        let (status, body) = graph
            .send(
                "POST",
                RELATIONSHIPS,
                Some(relationship_body(
                    "CONTOSO HELPDESK",
                    &customer,
                    &[HELPDESK_ADMIN],
                    "PT0S",
                )),
            )
            .await;
        assert_eq!((status, code(&body)), (409, "conflict"), "{body}");

        // Updates and deletes need the current etag.
        let patch = json!({"duration": "P365D"});
        let (status, body) = graph.send("PATCH", &path, Some(patch.clone())).await;
        assert_eq!(status, 400, "no If-Match: {body}");
        let (status, body) = graph
            .send_with(
                "PATCH",
                &path,
                &[("If-Match", "W/\"stale\"")],
                Some(patch.clone()),
            )
            .await;
        assert_eq!((status, code(&body)), (412, "preconditionFailed"));
        let (status, patched) = graph
            .send_with("PATCH", &path, &[("If-Match", &etag)], Some(patch.clone()))
            .await;
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["duration"], "P365D");
        assert_ne!(
            patched["@odata.etag"],
            etag.as_str(),
            "a change makes a new etag"
        );
        let (status, _) = graph
            .send_with("PATCH", &path, &[("If-Match", &etag)], Some(patch))
            .await;
        assert_eq!(status, 412, "the old etag is stale now");

        // Access assignments wait for an active relationship.
        let assignment = json!({
            "accessContainer": {"accessContainerId": SUPPORT_GROUP, "accessContainerType": "securityGroup"},
            "accessDetails": {"unifiedRoles": [{"roleDefinitionId": HELPDESK_ADMIN}]},
        });
        let assignments = format!("{path}/accessAssignments");
        let (status, body) = graph
            .send("POST", &assignments, Some(assignment.clone()))
            .await;
        assert_eq!(status, 400, "{body}");

        // Locked for approval: no If-Match (the requests page documents none).
        let (status, request) = graph
            .send(
                "POST",
                &format!("{path}/requests"),
                Some(json!({"action": "lockForApproval"})),
            )
            .await;
        assert_eq!(status, 201, "{request}");
        assert_eq!(request["action"], "lockForApproval");
        let (_, pending) = graph.send("GET", &path, None).await;
        assert_eq!(pending["status"], "approvalPending");
        let pending_etag = pending["@odata.etag"].as_str().unwrap().to_string();
        let (status, _) = graph
            .send_with(
                "PATCH",
                &path,
                &[("If-Match", &pending_etag)],
                Some(json!({"displayName": "Renamed"})),
            )
            .await;
        assert_eq!(status, 400, "editable only while created");
        let (status, _) = graph
            .send_with("DELETE", &path, &[("If-Match", &pending_etag)], None)
            .await;
        assert_eq!(status, 400, "deletable only while created");
        // Approving is the customer's action, not the partner's.
        let (status, body) = graph
            .send(
                "POST",
                &format!("{path}/requests"),
                Some(json!({"action": "approve"})),
            )
            .await;
        assert_eq!(status, 403, "{body}");

        // The customer approves: active for the duration from now.
        let (status, active) = control(&sandbox, &format!("{id}/approve"), json!({})).await;
        assert_eq!(status, 200, "{active}");
        assert_eq!(active["status"], "active");
        let activated: jiff::Timestamp = active["activatedDateTime"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let end: jiff::Timestamp = active["endDateTime"].as_str().unwrap().parse().unwrap();
        assert_eq!(end.duration_since(activated).as_hours(), 365 * 24);

        // Access assignments: a partner group, roles of the relationship only.
        let mut elsewhere = assignment.clone();
        elsewhere["accessContainer"]["accessContainerId"] =
            json!("00000000-0000-4000-8000-000000000bad");
        let (status, body) = graph.send("POST", &assignments, Some(elsewhere)).await;
        assert_eq!(status, 400, "not a group of the partner: {body}");
        let mut more = assignment.clone();
        more["accessDetails"]["unifiedRoles"] = json!([{"roleDefinitionId": USER_ADMIN}]);
        let (status, body) = graph.send("POST", &assignments, Some(more)).await;
        assert_eq!(status, 400, "a role the relationship lacks: {body}");
        let (status, made) = graph
            .send("POST", &assignments, Some(assignment.clone()))
            .await;
        assert_eq!(status, 201, "{made}");
        assert_eq!(made["status"], "pending");
        let (status, body) = graph.send("POST", &assignments, Some(assignment)).await;
        assert_eq!(status, 409, "one assignment a group: {body}");
        let (_, listed) = graph.send("GET", &assignments, None).await;
        assert_eq!(listed["value"][0]["status"], "active", "provisioned");

        // Active: Global Administrator can go, nothing else changes in place.
        let (_, current) = graph.send("GET", &path, None).await;
        let current_etag = current["@odata.etag"].as_str().unwrap().to_string();
        let (status, body) = graph
            .send_with(
                "PATCH",
                &path,
                &[("If-Match", &current_etag)],
                Some(json!({"accessDetails": {"unifiedRoles": [{"roleDefinitionId": HELPDESK_ADMIN}, {"roleDefinitionId": USER_ADMIN}]}})),
            )
            .await;
        assert_eq!(
            status, 400,
            "other role changes need a new relationship: {body}"
        );
        let (status, body) = graph
            .send_with(
                "PATCH",
                &path,
                &[("If-Match", &current_etag)],
                Some(json!({"accessDetails": {"unifiedRoles": [{"roleDefinitionId": HELPDESK_ADMIN}]}})),
            )
            .await;
        // A long-running operation (delegatedadminrelationship-update.md): 202, no body.
        assert_eq!(status, 202, "{body}");
        assert!(body.is_null() || body == "", "no body: {body}");
        let (_, body) = graph.send("GET", &path, None).await;
        assert_eq!(
            body["accessDetails"]["unifiedRoles"],
            json!([{"roleDefinitionId": HELPDESK_ADMIN}])
        );
        let (status, body) = graph
            .send_with(
                "PATCH",
                &path,
                &[("If-Match", body["@odata.etag"].as_str().unwrap())],
                Some(json!({"autoExtendDuration": "P180D"})),
            )
            .await;
        assert_eq!(status, 200, "auto-extend may change while active: {body}");
        assert_eq!(body["autoExtendDuration"], "P180D");

        // The customer terminates it.
        let (status, ended) = control(&sandbox, &format!("{id}/terminate"), json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(ended["status"], "terminated");
        let (_, listed) = graph.send("GET", RELATIONSHIPS, None).await;
        assert_eq!(listed["value"][0]["status"], "terminated");
    });
}

#[test]
fn graph_refuses_what_it_documents_as_invalid() {
    let fixture = partner_world();
    let customer = customer(&fixture);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        let graph = RawGraph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        let refused = |mut body: Value, edit: &dyn Fn(&mut Value)| {
            edit(&mut body);
            body
        };
        let base = relationship_body("Valid", &customer, &[HELPDESK_ADMIN], "PT0S");
        let cases: Vec<(&str, Value)> = vec![
            (
                "51 characters",
                refused(base.clone(), &|b| b["displayName"] = json!("x".repeat(51))),
            ),
            (
                "over two years",
                refused(base.clone(), &|b| b["duration"] = json!("P731D")),
            ),
            (
                "under a day",
                refused(base.clone(), &|b| b["duration"] = json!("PT1H")),
            ),
            (
                "no duration",
                refused(base.clone(), &|b| {
                    b.as_object_mut().unwrap().remove("duration");
                }),
            ),
            (
                "90 days' extension",
                refused(base.clone(), &|b| b["autoExtendDuration"] = json!("P90D")),
            ),
            (
                "auto-extend with Global Administrator",
                relationship_body("GA", &customer, &[GLOBAL_ADMIN], "P180D"),
            ),
            (
                "an unknown role",
                relationship_body(
                    "Unknown",
                    &customer,
                    &["00000000-0000-0000-0000-000000000000"],
                    "PT0S",
                ),
            ),
            (
                "no roles",
                relationship_body("None", &customer, &[], "PT0S"),
            ),
            (
                "a read-only property",
                refused(base.clone(), &|b| b["status"] = json!("active")),
            ),
            (
                "a customer that is no tenant id",
                refused(base.clone(), &|b| {
                    b["customer"]["tenantId"] = json!("contoso")
                }),
            ),
        ];
        for (why, body) in cases {
            let (status, answer) = graph.send("POST", RELATIONSHIPS, Some(body)).await;
            assert_eq!(status, 400, "{why}: {answer}");
            assert_eq!(code(&answer), "badRequest", "{why}");
            assert!(
                answer["error"]["innerError"]["request-id"].is_string(),
                "Graph's error shape"
            );
        }
        let (status, answer) = graph.send("GET", RELATIONSHIPS, None).await;
        assert_eq!(status, 200);
        assert_eq!(answer["value"], json!([]), "nothing was created");
        // Two years written as years, and exactly 50 characters, are fine.
        let mut ok = refused(base.clone(), &|b| b["duration"] = json!("P2Y"));
        ok["displayName"] = json!("y".repeat(50));
        let (status, answer) = graph.send("POST", RELATIONSHIPS, Some(ok)).await;
        assert_eq!(status, 201, "{answer}");
        // A created relationship can be deleted, with its etag.
        let path = format!("{RELATIONSHIPS}/{}", answer["id"].as_str().unwrap());
        let (status, _) = graph.send("DELETE", &path, None).await;
        assert_eq!(status, 400, "If-Match is required");
        let (status, _) = graph
            .send_with(
                "DELETE",
                &path,
                &[("If-Match", answer["@odata.etag"].as_str().unwrap())],
                None,
            )
            .await;
        assert_eq!(status, 204);
        let (status, answer) = graph.send("GET", &path, None).await;
        assert_eq!((status, code(&answer)), (404, "notFound"));
        // Options the sandbox does not serve are refused, not ignored.
        let (status, _) = graph
            .send(
                "GET",
                &format!("{RELATIONSHIPS}?$orderby=displayName"),
                None,
            )
            .await;
        assert_eq!(status, 400);
        let (status, _) = graph
            .send("GET", &format!("{RELATIONSHIPS}?$top=301"), None)
            .await;
        assert_eq!(status, 400, "$top supports up to 300");
    });
}

#[test]
fn only_a_partner_with_the_permission_and_the_service_principal_manages_relationships() {
    let mut fixture = partner_world();
    let customer = customer(&fixture);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        // A customer tenant is no partner.
        let graph = RawGraph::connect(&sandbox, &customer).await;
        let (status, body) = graph.send("GET", RELATIONSHIPS, None).await;
        assert_eq!(status, 403, "{body}");
    });
    drop(sandbox);

    // Read.All reads but does not write; without either, nothing.
    fixture.tenants[0].permissions = Some(vec!["DelegatedAdminRelationship.Read.All".into()]);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        let graph = RawGraph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        assert_eq!(graph.send("GET", RELATIONSHIPS, None).await.0, 200);
        let (status, body) = graph
            .send(
                "POST",
                RELATIONSHIPS,
                Some(relationship_body("R", &customer, &[HELPDESK_ADMIN], "PT0S")),
            )
            .await;
        assert_eq!((status, code(&body)), (403, "Authorization_RequestDenied"));
    });
    drop(sandbox);
    fixture.tenants[0].permissions = Some(vec!["Directory.Read.All".into()]);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        let graph = RawGraph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        assert_eq!(graph.send("GET", RELATIONSHIPS, None).await.0, 403);
    });
    drop(sandbox);

    // App-only calls need the Partner Customer Delegated Administration service principal.
    fixture.tenants[0].permissions = None;
    fixture.tenants[0].service_principals.clear();
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        let graph = RawGraph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        let (status, body) = graph.send("GET", RELATIONSHIPS, None).await;
        assert_eq!(status, 403);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("2832473f-ec63-45fb-976f-5d45a7d4bb91"),
            "{body}"
        );
    });
}

fn fixture_relationship(
    name: &str,
    customer: &str,
    roles: &[&str],
    auto_extend: &str,
) -> Relationship {
    serde_json::from_value(json!({
        "displayName": name,
        "customerTenantId": customer,
        "roles": roles,
        "autoExtendDuration": auto_extend,
        "accessAssignments": [{"groupId": SUPPORT_GROUP, "roles": ["Helpdesk Administrator"]}],
    }))
    .unwrap()
}

#[test]
fn time_passes_relationships_expire_or_extend_and_fixtures_hold_existing_ones() {
    let mut fixture = partner_world();
    let customer = customer(&fixture);
    fixture.tenants[0].delegated_admin_relationships = vec![
        fixture_relationship("Ends", &customer, &["Helpdesk Administrator"], "PT0S"),
        fixture_relationship("Extends", &customer, &["Helpdesk Administrator"], "P180D"),
    ];
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        let graph = RawGraph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        let (_, listed) = graph.send("GET", RELATIONSHIPS, None).await;
        let all = listed["value"].as_array().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|r| r["status"] == "active"), "{listed}");
        assert_eq!(
            all[0]["accessDetails"]["unifiedRoles"][0]["roleDefinitionId"], HELPDESK_ADMIN,
            "role names in fixtures become template ids"
        );
        let ends = all[0]["id"].as_str().unwrap().to_string();
        let extends = all[1]["id"].as_str().unwrap().to_string();
        let (_, assignments) = graph
            .send(
                "GET",
                &format!("{RELATIONSHIPS}/{ends}/accessAssignments"),
                None,
            )
            .await;
        assert_eq!(assignments["value"][0]["status"], "active");
        assert_eq!(
            assignments["value"][0]["accessContainer"]["accessContainerId"],
            SUPPORT_GROUP
        );

        // 725 days pass: five days left.
        let (status, aged) = control(&sandbox, &format!("{ends}/age"), json!({"days": 725})).await;
        assert_eq!(status, 200, "{aged}");
        let end: jiff::Timestamp = aged["endDateTime"].as_str().unwrap().parse().unwrap();
        let left = end.duration_since(jiff::Timestamp::now()).as_hours();
        assert!((4 * 24..=5 * 24).contains(&left), "{left} hours left");
        assert_eq!(aged["status"], "active");
        // Past the end: it expires; the auto-extending one gains 180 days.
        let (_, expired) = control(&sandbox, &format!("{ends}/age"), json!({"days": 6})).await;
        assert_eq!(expired["status"], "expired");
        let (_, extended) =
            control(&sandbox, &format!("{extends}/age"), json!({"days": 731})).await;
        assert_eq!(extended["status"], "active");
        let end: jiff::Timestamp = extended["endDateTime"].as_str().unwrap().parse().unwrap();
        let left = end.duration_since(jiff::Timestamp::now()).as_hours();
        assert!((178 * 24..=180 * 24).contains(&left), "{left} hours left");
        // An expired relationship cannot be terminated or expired again.
        let (status, _) = control(&sandbox, &format!("{ends}/expire"), json!({})).await;
        assert_eq!(status, 400);
        let (status, _) = control(&sandbox, &format!("{extends}/expire"), json!({})).await;
        assert_eq!(status, 200);

        // An access assignment in error, as provisioning can leave it.
        let assignment = assignments["value"][0]["id"].as_str().unwrap();
        let response = reqwest::Client::new()
            .put(format!(
                "{}/_sandbox/tenants/{SANDBOX_PARTNER_TENANT_ID}/delegatedAdminRelationships/{ends}/accessAssignments/{assignment}/status",
                sandbox.base_url()
            ))
            .json(&json!({"status": "error"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let (_, assignments) = graph
            .send(
                "GET",
                &format!("{RELATIONSHIPS}/{ends}/accessAssignments"),
                None,
            )
            .await;
        assert_eq!(assignments["value"][0]["status"], "error");
    });
    // The saved world keeps them.
    let saved = sandbox.with_world(|w| w.to_fixture());
    assert_eq!(saved.tenants[0].delegated_admin_relationships.len(), 2);
    let again = tenantform::sandbox::World::new(&saved, Faults::default());
    assert_eq!(
        again.tenants[SANDBOX_PARTNER_TENANT_ID]
            .gdap
            .relationships
            .len(),
        2
    );
}

#[test]
fn batched_writes_carry_their_own_if_match() {
    let fixture = partner_world();
    let customer = customer(&fixture);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        let graph = RawGraph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        let (_, created) = graph
            .send(
                "POST",
                RELATIONSHIPS,
                Some(relationship_body(
                    "Batched",
                    &customer,
                    &[HELPDESK_ADMIN],
                    "PT0S",
                )),
            )
            .await;
        let url = format!("{RELATIONSHIPS}/{}", created["id"].as_str().unwrap());
        let (status, answer) = graph
            .send(
                "POST",
                "/$batch",
                Some(json!({"requests": [
                    {"id": "1", "method": "PATCH", "url": url, "body": {"duration": "P30D"},
                     "headers": {"Content-Type": "application/json"}},
                    {"id": "2", "method": "PATCH", "url": url, "body": {"duration": "P30D"},
                     "headers": {"Content-Type": "application/json", "If-Match": created["@odata.etag"]}},
                ]})),
            )
            .await;
        assert_eq!(status, 200);
        let by_id = |id: &str| {
            answer["responses"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .unwrap()["status"]
                .clone()
        };
        assert_eq!(by_id("1"), 400);
        assert_eq!(by_id("2"), 200);
    });
}

/// The typed client (`tenantform::graph::gdap`) against the sandbox: what the executor uses.
#[test]
fn the_graph_client_creates_finds_and_updates_relationships_with_their_etags() {
    use tenantform::graph::gdap::{self, NewRelationship};
    use tenantform::graph::{GraphClient, RetryPolicy};
    let fixture = partner_world();
    let customer = customer(&fixture);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    let client = GraphClient::new(sandbox.graph_config(), RetryPolicy::default()).unwrap();
    let partner = SANDBOX_PARTNER_TENANT_ID;
    run(async {
        let new = NewRelationship {
            display_name: "Contoso helpdesk".into(),
            customer_tenant_id: customer.clone(),
            customer_display_name: "Customer 0 Holdings".into(),
            roles: vec![GLOBAL_ADMIN.into(), HELPDESK_ADMIN.into()],
            duration: "P2Y".into(),
            auto_extend_duration: "PT0S".into(),
        };
        assert_eq!(
            gdap::find_by_name(&client, partner, "contoso HELPDESK")
                .await
                .unwrap(),
            None
        );
        let made = gdap::create(&client, partner, &new).await.unwrap();
        assert_eq!(made.status, "created");
        assert_eq!(made.customer_tenant_id.as_deref(), Some(customer.as_str()));
        assert_eq!(
            made.roles,
            vec![GLOBAL_ADMIN.to_string(), HELPDESK_ADMIN.to_string()]
        );
        let again = gdap::create(&client, partner, &new).await.unwrap_err();
        assert_eq!(again.status(), Some(409), "names are unique: {again}");
        let found = gdap::find_by_name(&client, partner, "contoso HELPDESK")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, made.id);

        gdap::request(&client, partner, &made.id, "lockForApproval")
            .await
            .unwrap();
        assert_eq!(
            gdap::get(&client, partner, &made.id).await.unwrap().status,
            "approvalPending"
        );
        control(&sandbox, &format!("{}/approve", made.id), json!({})).await;

        let assignment = gdap::create_assignment(
            &client,
            partner,
            &made.id,
            SUPPORT_GROUP,
            &[HELPDESK_ADMIN.to_string()],
        )
        .await
        .unwrap();
        assert_eq!(assignment.status, "pending");
        let listed = gdap::list(&client, partner).await.unwrap();
        assert_eq!(listed.len(), 1);
        let active = &listed[0];
        assert_eq!(active.status, "active");
        assert!(active.end_date_time.is_some());
        assert_eq!(active.access_assignments.len(), 1);
        assert_eq!(active.access_assignments[0].status, "active");
        assert_eq!(active.access_assignments[0].group_id, SUPPORT_GROUP);

        // A stale etag is Graph's 412, never a silent overwrite.
        let stale = gdap::update(
            &client,
            partner,
            &made.id,
            &made.etag,
            &gdap::roles_patch(&[HELPDESK_ADMIN.into()]),
        )
        .await
        .unwrap_err();
        assert_eq!(stale.status(), Some(412), "{stale}");
        let without_ga = gdap::update(
            &client,
            partner,
            &made.id,
            &active.etag,
            &gdap::roles_patch(&[HELPDESK_ADMIN.into()]),
        )
        .await
        .unwrap();
        assert_eq!(without_ga.roles, vec![HELPDESK_ADMIN.to_string()]);

        let a = &active.access_assignments[0];
        gdap::delete_assignment(&client, partner, &made.id, &a.id, &a.etag)
            .await
            .unwrap();
        let listed = gdap::list(&client, partner).await.unwrap();
        assert_eq!(listed[0].access_assignments[0].status, "deleted");
        assert_eq!(listed[0].current_assignments().count(), 0);

        gdap::request(&client, partner, &made.id, "terminate")
            .await
            .unwrap();
        assert_eq!(
            gdap::get(&client, partner, &made.id).await.unwrap().status,
            "terminated"
        );
    });
}

#[test]
fn a_refused_gdap_request_names_the_missing_permission() {
    use tenantform::graph::{GraphClient, RetryPolicy};
    let mut fixture = partner_world();
    fixture.tenants[0].permissions = Some(vec!["Directory.Read.All".into()]);
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    let client = GraphClient::new(sandbox.graph_config(), RetryPolicy::default()).unwrap();
    let error = run(tenantform::graph::gdap::list(
        &client,
        SANDBOX_PARTNER_TENANT_ID,
    ))
    .unwrap_err();
    let failure = error.failure();
    assert_eq!(
        failure.cause,
        tenantform::outcome::Cause::PermissionMissing,
        "{failure:?}"
    );
    assert!(
        failure.message.contains(
            "DelegatedAdminRelationship.Read.All (or DelegatedAdminRelationship.ReadWrite.All)"
        ),
        "{}",
        failure.message
    );
}

/// A valid GdapRelationship resolves per tenant: `{tenant}` replaced, roles by template id,
/// the defaults filled in; `validate` counts it.
#[test]
fn a_gdap_relationship_validates_and_resolves_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_tree(
        dir.path(),
        &[(
            "fleet.yaml",
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: 3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b\nlabels: {tier: gold}\n---\n\
             kind: Tenant\nname: birchwood\nmicrosoftTenantId: 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f\nlabels: {tier: gold}\n---\n\
             kind: GdapRelationship\nname: gold-helpdesk\ntenants: {selector: {tier: gold}}\n\
             displayName: \"Contoso helpdesk {tenant}\"\nroles: [Helpdesk Administrator, fe930be7-5e62-47db-91af-98c3a49a38b1]\n\
             autoExtend: P180D\naccessAssignments:\n  - group: 5D1E0C2A-0000-4000-8000-0000000005A1\n    roles: [User Administrator]\n",
        )],
    );
    let run = crate::support::run_in(dir.path(), &["validate", "fleet.yaml"], None);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("2 GDAP relationships"),
        "{}",
        run.stdout
    );

    let (mut sources, diags) = tenantform::load::load_path(&dir.path().join("fleet.yaml")).unwrap();
    let validation = tenantform::validate_sources(&mut sources, diags).unwrap();
    assert_eq!(validation.errors(), 0);
    let model = validation.model().unwrap();
    let foggy = &model.gdap_relationships["foggy-it"][0];
    assert_eq!(foggy.display_name, "Contoso helpdesk foggy-it");
    assert_eq!(
        foggy.roles,
        vec![HELPDESK_ADMIN.to_string(), USER_ADMIN.to_string()]
    );
    assert_eq!(foggy.duration, "P730D");
    assert_eq!(foggy.auto_extend_duration(), "P180D");
    assert_eq!(foggy.access_assignments[0].group_id, SUPPORT_GROUP);
    assert_eq!(
        foggy.access_assignments[0].roles,
        vec![USER_ADMIN.to_string()]
    );
    assert_eq!(
        model.gdap_relationships["birchwood"][0].display_name,
        "Contoso helpdesk birchwood"
    );
}

// ---- the kind end to end: the binary against `--sandbox` ----------------------------------

const FOGGY: &str = crate::support::FOGGY_TENANT_ID;
const EXAMPLE: &str = "gdap_relationship.alder-dental.gold-support";
const ALDER: &str = "Contoso MSP support - alder-dental";

fn partner_relationships(dir: &std::path::Path) -> Vec<Value> {
    let world = crate::support::world(dir);
    world["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == SANDBOX_PARTNER_TENANT_ID)
        .map(|t| {
            t["delegatedAdminRelationships"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

fn sandbox_gdap(dir: &std::path::Path, args: &[&str]) -> crate::support::Run {
    let world = dir.join("sandbox-world.json");
    let mut all = vec!["sandbox", "gdap"];
    all.extend_from_slice(args);
    all.extend(["--world", world.to_str().unwrap()]);
    crate::support::run_in(dir, &all, None)
}

/// The "done when", on the msp-fleet example: each gold tenant's relationship is
/// created and locked, plan and drift show approval pending with the URL, a re-run creates no
/// second one; after the customer's approval the next apply creates the access assignments
/// and the plan is then empty.
#[test]
fn apply_creates_the_relationship_waits_for_approval_then_assigns_and_converges() {
    use crate::support::tf;
    let ws = crate::support::workspace(&["examples/msp-fleet"]);
    let d = ws.path();
    let manifests = d.join("examples/msp-fleet");
    let m = manifests.to_str().unwrap();
    let first = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    assert!(
        first
            .stdout
            .contains(&format!("{EXAMPLE}: creating... done")),
        "{}",
        first.stdout
    );
    let made = partner_relationships(d);
    assert_eq!(made.len(), 7, "one per gold tenant");
    assert!(
        made.iter().all(|r| r["status"] == "approvalPending"),
        "locked for approval"
    );
    let alder = made.iter().find(|r| r["displayName"] == ALDER).unwrap();
    assert_eq!(
        alder["customerTenantId"],
        "b6aafcfd-72d0-5e44-809c-389af099d100"
    );
    let id = alder["id"].as_str().unwrap().to_string();
    let url = format!(
        "https://admin.microsoft.com/AdminPortal/Home#/partners/invitation/granularAdminRelationships/{id}"
    );

    // Pending: shown with the URL, nothing to do; a re-run makes no second relationship.
    let plan = tf(d, &["--color", "never", "plan", "--detailed-exitcode", m]);
    assert_eq!(
        plan.code,
        0,
        "nothing the partner can do: {}",
        plan.transcript()
    );
    assert!(
        plan.stdout.contains(&format!(
            "{EXAMPLE}  approval pending: the customer's admin approves at {url}"
        )),
        "{}",
        plan.stdout
    );
    let again = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(
        partner_relationships(d).len(),
        7,
        "never a second relationship"
    );
    let drift = tf(d, &["--color", "never", "drift", m]);
    assert_eq!(drift.code, 2, "{}", drift.transcript());
    assert!(
        drift.stdout.contains(&format!(
            "! {EXAMPLE}  [GDAP approval pending] approval pending: the customer's admin approves at {url}"
        )),
        "{}",
        drift.stdout
    );

    // The customer approves: the next apply gives the partner's groups their roles.
    let approved = sandbox_gdap(d, &["approve", ALDER]);
    assert_eq!(approved.code, 0, "{}", approved.transcript());
    let assign = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(assign.code, 0, "{}", assign.transcript());
    assert!(assign.stdout.contains("1 updated"), "{}", assign.stdout);
    let live = partner_relationships(d);
    let alder = live.iter().find(|r| r["displayName"] == ALDER).unwrap();
    assert_eq!(alder["status"], "active");
    let assignments = alder["accessAssignments"].as_array().unwrap();
    assert_eq!(assignments.len(), 2, "{assignments:?}");
    let helpdesk = assignments
        .iter()
        .find(|a| a["groupId"] == SUPPORT_GROUP)
        .unwrap();
    assert_eq!(
        helpdesk["roles"],
        json!([HELPDESK_ADMIN, USER_ADMIN]),
        "the roles the manifest gives the helpdesk"
    );
    let settled = tf(d, &["--color", "never", "plan", "--detailed-exitcode", m]);
    assert_eq!(settled.code, 0, "{}", settled.transcript());
    assert!(
        settled.stdout.starts_with("No changes."),
        "{}",
        settled.stdout
    );
    assert!(
        !settled.stdout.contains(&format!("{EXAMPLE}  ")),
        "nothing to say about an active relationship: {}",
        settled.stdout
    );

    // An access assignment removed in the portal is drift, and apply puts it back.
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        for r in t["delegatedAdminRelationships"].as_array_mut().unwrap() {
            if r["displayName"] == ALDER {
                r["accessAssignments"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|a| a["groupId"] != SUPPORT_GROUP);
            }
        }
    });
    let drift = tf(d, &["--color", "never", "drift", m]);
    assert_eq!(drift.code, 2, "{}", drift.transcript());
    assert!(
        drift
            .stdout
            .contains(&format!("! {EXAMPLE}  [changed in Entra]")),
        "{}",
        drift.stdout
    );
    let repaired = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(repaired.code, 0, "{}", repaired.transcript());
    let settled = tf(d, &["--color", "never", "plan", "--detailed-exitcode", m]);
    assert_eq!(settled.code, 0, "{}", settled.transcript());
}

/// A relationship of its own (no auto-extension, 90 days) for expiry: 30/7/1-day notices,
/// expired, terminated by the customer, and a relationship nobody declared.
#[test]
fn expiry_termination_and_undeclared_relationships_show_in_drift() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_fleet(
        d,
        &format!(
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
                 kind: GdapRelationship\nname: foggy-helpdesk\ntenants: [foggy-it]\n\
                 displayName: Foggy helpdesk\nroles: [Helpdesk Administrator]\nduration: P90D\n\
                 accessAssignments:\n  - group: {SUPPORT_GROUP}\n    roles: [Helpdesk Administrator]\n"
        ),
    );
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let apply = || tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    let drift = || tf(d, &["--color", "never", "drift", m]);
    assert_eq!(apply().code, 0);
    assert_eq!(sandbox_gdap(d, &["approve", "Foggy helpdesk"]).code, 0);
    let assigned = apply();
    assert_eq!(assigned.code, 0, "{}", assigned.transcript());
    let clean = drift();
    assert_eq!(clean.code, 0, "{}", clean.transcript());

    // 60 days pass: 30 days left, Microsoft's first notice.
    assert_eq!(
        sandbox_gdap(d, &["age", "--days", "60", "Foggy helpdesk"]).code,
        0
    );
    let notice = drift();
    assert_eq!(notice.code, 2, "{}", notice.transcript());
    assert!(
        notice
            .stdout
            .contains("[GDAP relationship expiring] expires in 30 days (")
            && notice
                .stdout
                .contains("without auto-extend (within 30 days)"),
        "{}",
        notice.stdout
    );
    assert_eq!(
        sandbox_gdap(d, &["age", "--days", "25", "Foggy helpdesk"]).code,
        0
    );
    assert!(drift().stdout.contains("(within 7 days)"));
    assert_eq!(
        sandbox_gdap(d, &["age", "--days", "4", "Foggy helpdesk"]).code,
        0
    );
    assert!(
        drift().stdout.contains("expires in 1 day ("),
        "one day left"
    );
    assert!(drift().stdout.contains("(within 1 day)"));
    // Past its end: expired, and a plan replaces it (a new relationship to approve).
    assert_eq!(
        sandbox_gdap(d, &["age", "--days", "2", "Foggy helpdesk"]).code,
        0
    );
    let expired = drift();
    assert!(
        expired
            .stdout
            .contains("[GDAP relationship expired] expired on "),
        "{}",
        expired.stdout
    );
    let replaced = apply();
    assert_eq!(replaced.code, 0, "{}", replaced.transcript());
    let all = partner_relationships(d);
    assert_eq!(all.len(), 2, "a new one beside the expired one");
    let new = all
        .iter()
        .find(|r| r["status"] == "approvalPending")
        .unwrap();
    assert!(
        new["displayName"]
            .as_str()
            .unwrap()
            .starts_with("Foggy helpdesk 20"),
        "a new unique name: {new}"
    );
    assert!(drift().stdout.contains("[GDAP approval pending]"));

    // The customer approves the new one, then terminates it.
    assert_eq!(
        sandbox_gdap(d, &["approve", new["id"].as_str().unwrap()]).code,
        0
    );
    assert_eq!(apply().code, 0);
    assert_eq!(drift().code, 0);
    assert_eq!(
        sandbox_gdap(d, &["terminate", new["id"].as_str().unwrap()]).code,
        0
    );
    let terminated = drift();
    assert!(
        terminated
            .stdout
            .contains("[GDAP relationship terminated by the customer] terminated on "),
        "{}",
        terminated.stdout
    );

    // A relationship with Foggy IT that no manifest declares: reported as adoptable.
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        t["delegatedAdminRelationships"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "id": format!("{FOGGY}-0000"),
                "displayName": "Old MSP full access",
                "customerTenantId": FOGGY,
                "roles": [GLOBAL_ADMIN],
            }));
    });
    let undeclared = drift();
    assert!(
        undeclared.stdout.contains(&format!(
            "! {FOGGY}-0000  [unmanaged object in Entra] GDAP relationship \"Old MSP full access\" (active; Global Administrator) is declared by no manifest"
        )),
        "{}",
        undeclared.stdout
    );
}

/// On an active relationship Global Administrator goes in place; any other role change is a
/// new relationship (a new name, approved), and the old one ends once the new one is active.
#[test]
fn removing_global_administrator_is_in_place_other_role_changes_replace_the_relationship() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = |roles: &str| {
        format!(
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
             kind: GdapRelationship\nname: foggy-admin\ntenants: [foggy-it]\n\
             displayName: Foggy admin\nroles: [{roles}]\n\
             accessAssignments:\n  - group: {SUPPORT_GROUP}\n    roles: [Helpdesk Administrator]\n"
        )
    };
    write_fleet(d, &manifest("Global Administrator, Helpdesk Administrator"));
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let apply = || tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(apply().code, 0);
    assert_eq!(sandbox_gdap(d, &["approve", "Foggy admin"]).code, 0);
    assert_eq!(apply().code, 0);
    let first = partner_relationships(d)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Without Global Administrator: the same relationship, updated in place.
    write_fleet(d, &manifest("Helpdesk Administrator"));
    let plan = tf(d, &["--color", "never", "plan", m]);
    assert!(plan.stdout.contains("~ roles"), "{}", plan.stdout);
    let removed = apply();
    assert_eq!(removed.code, 0, "{}", removed.transcript());
    let all = partner_relationships(d);
    assert_eq!(all.len(), 1, "in place");
    assert_eq!(all[0]["roles"], json!([HELPDESK_ADMIN]));
    assert_eq!(all[0]["status"], "active");
    let plan = tf(d, &["--color", "never", "plan", "--detailed-exitcode", m]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());

    // Another role: a new relationship to approve; the first stays until then.
    write_fleet(d, &manifest("Helpdesk Administrator, User Administrator"));
    let plan = tf(d, &["--color", "never", "plan", m]);
    assert!(
        plan.stdout.contains("its roles or duration cannot change in place: a new relationship (approved by the customer) replaces it"),
        "{}",
        plan.stdout
    );
    let replaced = apply();
    assert_eq!(replaced.code, 0, "{}", replaced.transcript());
    let all = partner_relationships(d);
    assert_eq!(all.len(), 2);
    let old = all.iter().find(|r| r["id"] == first.as_str()).unwrap();
    assert_eq!(
        old["status"], "active",
        "access stays until the new one is approved"
    );
    let new = all.iter().find(|r| r["id"] != first.as_str()).unwrap();
    assert_eq!(new["status"], "approvalPending");
    assert_ne!(new["displayName"], "Foggy admin", "names are unique");
    assert_eq!(new["roles"], json!([HELPDESK_ADMIN, USER_ADMIN]));
    let plan = tf(d, &["--color", "never", "plan", m]);
    assert!(plan.stdout.contains("approval pending"), "{}", plan.stdout);
    assert_eq!(partner_relationships(d).len(), 2, "a plan changes nothing");
    let again = apply();
    assert_eq!(again.code, 0);
    assert_eq!(partner_relationships(d).len(), 2, "no third one");

    // Approved: the next apply assigns the new one and ends the old one.
    assert_eq!(
        sandbox_gdap(d, &["approve", new["id"].as_str().unwrap()]).code,
        0
    );
    let switched = apply();
    assert_eq!(switched.code, 0, "{}", switched.transcript());
    let all = partner_relationships(d);
    let old = all.iter().find(|r| r["id"] == first.as_str()).unwrap();
    // Graph finishes a termination in the background (terminationRequested, then terminated).
    assert!(
        old["status"] == "terminationRequested" || old["status"] == "terminated",
        "{old}"
    );
    let new = all.iter().find(|r| r["id"] != first.as_str()).unwrap();
    assert_eq!(new["status"], "active");
    assert_eq!(new["accessAssignments"].as_array().unwrap().len(), 1);
    let plan = tf(d, &["--color", "never", "plan", "--detailed-exitcode", m]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    let drift = tf(d, &["--color", "never", "drift", m]);
    assert_eq!(
        drift.code,
        0,
        "the old one is no undeclared relationship: {}",
        drift.transcript()
    );
}

/// Onboarding: `export` writes a GdapRelationship for each relationship still in force, and
/// importing the export records them as they are: the next plan is empty, nothing written.
#[test]
fn exported_relationships_adopt_into_an_empty_plan() {
    let mut fixture = partner_world();
    let first = fixture.tenants[1].id.clone();
    let second = fixture.tenants[2].id.clone();
    let mut pending = fixture_relationship(
        "Pending for customer 1",
        &second,
        &["Helpdesk Administrator"],
        "PT0S",
    );
    pending.status = "approvalPending".into();
    pending.access_assignments.clear();
    let mut ended = fixture_relationship(
        "Ended long ago",
        &first,
        &["Helpdesk Administrator"],
        "PT0S",
    );
    ended.status = "terminated".into();
    fixture.tenants[0].delegated_admin_relationships = vec![
        fixture_relationship(
            "Contoso \"support\": customer 0",
            &first,
            &["Helpdesk Administrator", "User Administrator"],
            "P180D",
        ),
        pending,
        ended,
    ];
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("customers");
    let state = dir.path().join("state.json");
    let (o, s) = (out.to_str().unwrap(), state.to_str().unwrap());
    let run = |args: &[&str]| {
        let output = std::process::Command::new(crate::support::binary())
            .current_dir(dir.path())
            .args(args)
            .envs(crate::support::partner_env(sandbox.base_url()))
            .env_remove("TENANTFORM_STATE")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) = run(&["export", "--all-customers", "--out", o]);
    assert_eq!(code, 0, "{said}");
    let customer0 = std::fs::read_to_string(out.join("tenants/customer-0-holdings.yaml")).unwrap();
    assert!(
        customer0.contains(
            "kind: GdapRelationship\nname: customer-0-holdings-contoso-support-customer-0\ntenants: [customer-0-holdings]\ndisplayName: \"Contoso \\\"support\\\": customer 0\"\nroles: [Helpdesk Administrator, User Administrator]\nduration: P730D\nautoExtend: P180D\naccessAssignments:\n  - group: 5d1e0c2a-0000-4000-8000-0000000005a1\n    roles: [Helpdesk Administrator]\n"
        ),
        "{customer0}"
    );
    assert!(
        !customer0.contains("Ended long ago"),
        "ended ones are history"
    );
    let (code, said) = run(&["validate", o]);
    assert_eq!(code, 0, "{said}");

    sandbox.clear_requests();
    let (code, said) = run(&["import", o, "--state", s]);
    assert_eq!(code, 0, "{said}");
    let writes: Vec<_> = sandbox
        .requests()
        .into_iter()
        .filter(|r| {
            r.method != "GET" && !r.path.ends_with("/$batch") && !r.path.ends_with("/token")
        })
        .collect();
    assert!(writes.is_empty(), "import changed Graph: {writes:?}");
    let (code, said) = run(&[
        "plan",
        o,
        "--state",
        s,
        "--detailed-exitcode",
        "--color",
        "never",
    ]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("approval pending"),
        "the pending one is shown: {said}"
    );
    let (code, said) = run(&["drift", o, "--state", s, "--color", "never"]);
    assert!(!said.contains("declared by no manifest"), "{said}");
    assert_eq!(code, 2, "approval pending is a finding: {said}");
}

/// GDAP is how a partner gets in before the app is consented in a customer: a tenant with
/// only a GDAP relationship is planned and applied from the partner tenant, without a token
/// of its own.
#[test]
fn a_tenant_without_consent_gets_its_gdap_relationship() {
    use crate::support::tf;
    let mut fixture = partner_world();
    fixture.tenants[1].consent = false;
    let customer = customer(&fixture);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let seed = d.join("fixture.json");
    std::fs::write(&seed, serde_json::to_vec(&fixture).unwrap()).unwrap();
    write_fleet(
        d,
        &format!(
            "kind: Tenant\nname: newco\nmicrosoftTenantId: {customer}\n---\n\
                 kind: GdapRelationship\nname: newco-onboarding\ntenants: [newco]\n\
                 displayName: NewCo onboarding\nroles: [Helpdesk Administrator]\n"
        ),
    );
    let m = d.join("m");
    let applied = tf(
        d,
        &[
            "--color",
            "never",
            "apply",
            "--auto-approve",
            "--sandbox-world",
            seed.to_str().unwrap(),
            m.to_str().unwrap(),
        ],
    );
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let made = partner_relationships(d);
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["status"], "approvalPending");
    let requests_to_customer = crate::support::world(d)["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == customer.as_str() && t["consent"] == true);
    assert!(!requests_to_customer, "still not consented");
}

/// A relationship nobody approves within 90 days expires (GRAPH.md: approval requests expire
/// after 90 days).
#[test]
fn an_unapproved_relationship_expires_after_90_days() {
    let mut fixture = partner_world();
    let customer = customer(&fixture);
    let mut waiting =
        fixture_relationship("Waiting", &customer, &["Helpdesk Administrator"], "PT0S");
    waiting.status = "approvalPending".into();
    waiting.access_assignments.clear();
    fixture.tenants[0].delegated_admin_relationships = vec![waiting];
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    run(async {
        let graph = RawGraph::connect(&sandbox, SANDBOX_PARTNER_TENANT_ID).await;
        let (_, listed) = graph.send("GET", RELATIONSHIPS, None).await;
        let id = listed["value"][0]["id"].as_str().unwrap().to_string();
        let (_, aged) = control(&sandbox, &format!("{id}/age"), json!({"days": 89})).await;
        assert_eq!(aged["status"], "approvalPending");
        let (_, aged) = control(&sandbox, &format!("{id}/age"), json!({"days": 1})).await;
        assert_eq!(aged["status"], "expired");
        let (status, _) = control(&sandbox, &format!("{id}/approve"), json!({})).await;
        assert_eq!(status, 400, "too late to approve");
    });
}

/// A relationship removed from the manifests is ended only with --allow-delete: terminated
/// when active (a created one would be deleted).
#[test]
fn a_relationship_no_longer_declared_is_terminated_only_with_allow_delete() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tenant = format!("kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n");
    write_fleet(
        d,
        &format!(
            "{tenant}---\nkind: GdapRelationship\nname: foggy-helpdesk\ntenants: [foggy-it]\n\
                 displayName: Foggy helpdesk\nroles: [Helpdesk Administrator]\n"
        ),
    );
    let m = d.join("m");
    let m = m.to_str().unwrap();
    assert_eq!(tf(d, &["apply", "--auto-approve", m]).code, 0);
    assert_eq!(sandbox_gdap(d, &["approve", "Foggy helpdesk"]).code, 0);
    assert_eq!(tf(d, &["apply", "--auto-approve", m]).code, 0);
    write_fleet(d, &tenant);
    let blocked = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert!(
        blocked.stdout.contains("allow-delete"),
        "{}",
        blocked.transcript()
    );
    assert_eq!(partner_relationships(d)[0]["status"], "active");
    let ended = tf(
        d,
        &[
            "--color",
            "never",
            "apply",
            "--auto-approve",
            "--allow-delete",
            m,
        ],
    );
    assert_eq!(ended.code, 0, "{}", ended.transcript());
    let status = partner_relationships(d)[0]["status"].clone();
    assert!(
        status == "terminationRequested" || status == "terminated",
        "{status}"
    );
    let state = std::fs::read_to_string(d.join("state.d/tenants/foggy-it.json")).unwrap();
    assert!(!state.contains("gdap_relationship"), "forgotten: {state}");
}

/// Without DelegatedAdminRelationship.Read.All in the partner tenant, the tenants with GDAP
/// relationships fail by name (exit 1) while their other kinds are planned.
#[test]
fn a_partner_without_the_gdap_permission_fails_the_tenants_that_need_it() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_fleet(
        d,
        &format!(
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
                 kind: GdapRelationship\nname: foggy-helpdesk\ntenants: [foggy-it]\n\
                 displayName: Foggy helpdesk\nroles: [Helpdesk Administrator]\n"
        ),
    );
    let m = d.join("m");
    let m = m.to_str().unwrap();
    assert_eq!(tf(d, &["plan", m]).code, 0, "the world is made");
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        t["permissions"] = json!(["Directory.Read.All"]);
    });
    let plan = tf(d, &["--color", "never", "plan", m]);
    assert_eq!(plan.code, 1, "{}", plan.transcript());
    assert!(
        plan.transcript().contains(
            "DelegatedAdminRelationship.Read.All (or DelegatedAdminRelationship.ReadWrite.All)"
        ),
        "{}",
        plan.transcript()
    );
    assert!(
        plan.transcript().contains("foggy-it"),
        "{}",
        plan.transcript()
    );
    assert!(partner_relationships(d).is_empty(), "nothing created");
}

/// An apply that dies between creating the relationship and locking it: the next apply finds
/// it by its name (recovered from the write-ahead intent), locks it, and never makes a second.
#[test]
fn an_interrupted_create_is_recovered_by_name_and_locked() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_fleet(
        d,
        &format!(
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
                 kind: GdapRelationship\nname: foggy-helpdesk\ntenants: [foggy-it]\n\
                 displayName: Foggy helpdesk\nroles: [Helpdesk Administrator]\n"
        ),
    );
    let m = d.join("m");
    let m = m.to_str().unwrap();
    // Every request about one relationship (its lock) fails; creating it does not.
    let faults = format!("fail=500:/tenantRelationships/delegatedAdminRelationships/{FOGGY}");
    let broken = tf(
        d,
        &[
            "--color",
            "never",
            "apply",
            "--auto-approve",
            "--sandbox-faults",
            &faults,
            m,
        ],
    );
    assert_eq!(broken.code, 1, "{}", broken.transcript());
    let made = partner_relationships(d);
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["status"], "created", "created, never locked");

    let recovered = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(recovered.code, 0, "{}", recovered.transcript());
    let made = partner_relationships(d);
    assert_eq!(made.len(), 1, "never a second relationship");
    assert_eq!(made[0]["status"], "approvalPending");
    let plan = tf(d, &["--color", "never", "plan", "--detailed-exitcode", m]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    assert!(plan.stdout.contains("approval pending"), "{}", plan.stdout);
}

/// An access assignment Graph left in `error` is drift, and apply makes it again.
#[test]
fn an_access_assignment_in_error_is_drift_and_made_again() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_fleet(
        d,
        &format!(
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
                 kind: GdapRelationship\nname: foggy-helpdesk\ntenants: [foggy-it]\n\
                 displayName: Foggy helpdesk\nroles: [Helpdesk Administrator]\n\
                 accessAssignments:\n  - group: {SUPPORT_GROUP}\n    roles: [Helpdesk Administrator]\n"
        ),
    );
    let m = d.join("m");
    let m = m.to_str().unwrap();
    assert_eq!(tf(d, &["apply", "--auto-approve", m]).code, 0);
    assert_eq!(sandbox_gdap(d, &["approve", "Foggy helpdesk"]).code, 0);
    assert_eq!(tf(d, &["apply", "--auto-approve", m]).code, 0);
    let before = partner_relationships(d)[0]["accessAssignments"][0]["id"].clone();
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        t["delegatedAdminRelationships"][0]["accessAssignments"][0]["status"] = json!("error");
    });
    let drift = tf(d, &["--color", "never", "drift", m]);
    assert_eq!(drift.code, 2, "{}", drift.transcript());
    assert!(
        drift
            .stdout
            .contains("gdap_relationship.foggy-it.foggy-helpdesk  [changed in Entra]")
            && drift.stdout.contains("\"status\":\"error\""),
        "{}",
        drift.stdout
    );
    let repaired = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(repaired.code, 0, "{}", repaired.transcript());
    let assignments = partner_relationships(d)[0]["accessAssignments"].clone();
    let current: Vec<&Value> = assignments
        .as_array()
        .unwrap()
        .iter()
        // Graph provisions it in the background: pending until the next read shows it active.
        .filter(|a| a["status"] == "active" || a["status"] == "pending")
        .collect();
    assert_eq!(current.len(), 1, "{assignments}");
    assert_ne!(current[0]["id"], before, "made again");
    let plan = tf(d, &["--color", "never", "plan", "--detailed-exitcode", m]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());
}

/// A pull-request comment (`plan --output markdown`) shows what waits for the customer.
#[test]
fn the_markdown_plan_shows_approval_pending() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_fleet(
        d,
        &format!(
            "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
                 kind: GdapRelationship\nname: foggy-helpdesk\ntenants: [foggy-it]\n\
                 displayName: Foggy helpdesk\nroles: [Helpdesk Administrator]\n"
        ),
    );
    let m = d.join("m");
    let m = m.to_str().unwrap();
    assert_eq!(tf(d, &["apply", "--auto-approve", m]).code, 0);
    let plan = tf(d, &["plan", "--output", "markdown", m]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    assert!(
        plan.stdout.contains(
            "> **GDAP:** gdap\\_relationship\\.foggy\\-it\\.foggy\\-helpdesk: approval pending: the customer's admin approves at https://admin\\.microsoft\\.com/"
        ),
        "{}",
        plan.stdout
    );
}

/// Drift of a fleet that manages GDAP reports relationships nobody declared in every mapped
/// tenant, also those that declare none; a fleet without GDAP manifests never reads them.
#[test]
fn drift_reports_undeclared_relationships_in_every_mapped_tenant() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let other = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
    let tenants = format!(
        "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
         kind: Tenant\nname: birchwood\nmicrosoftTenantId: {other}\n"
    );
    write_fleet(
        d,
        &format!(
            "{tenants}---\nkind: GdapRelationship\nname: foggy-helpdesk\ntenants: [foggy-it]\n\
                 displayName: Foggy helpdesk\nroles: [Helpdesk Administrator]\n"
        ),
    );
    let m = d.join("m");
    let m = m.to_str().unwrap();
    assert_eq!(tf(d, &["apply", "--auto-approve", m]).code, 0);
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        t["delegatedAdminRelationships"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "id": format!("{other}-0001"),
                "displayName": "Birchwood from the old MSP",
                "customerTenantId": other,
                "roles": ["Global Reader"],
            }));
    });
    let drift = tf(d, &["--color", "never", "drift", m]);
    assert_eq!(drift.code, 2, "{}", drift.transcript());
    assert!(
        drift.stdout.contains(&format!(
            "! {other}-0001  [unmanaged object in Entra] GDAP relationship \"Birchwood from the old MSP\" (active; Global Reader) is declared by no manifest"
        )),
        "{}",
        drift.stdout
    );
    // Without GDAP manifests, the partner's relationships are not read at all.
    write_fleet(d, &tenants);
    let drift = tf(d, &["--color", "never", "drift", m]);
    assert!(
        !drift.stdout.contains("GDAP relationship \"Birchwood"),
        "{}",
        drift.stdout
    );
}

/// Foggy IT's manifest with one relationship and these roles (by name).
/// Writes the manifests' one file, `m/fleet.yaml` under `d`.
fn write_fleet(d: &std::path::Path, text: &str) {
    crate::support::write_tree(d, &[("m/fleet.yaml", text)]);
}

fn foggy_admin(roles: &str) -> String {
    format!(
        "kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n---\n\
         kind: GdapRelationship\nname: foggy-admin\ntenants: [foggy-it]\n\
         displayName: Foggy admin\nroles: [{roles}]\n"
    )
}

fn state_ids(d: &std::path::Path) -> Value {
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("state.d/tenants/foggy-it.json")).unwrap(),
    )
    .unwrap();
    let found = state
        .pointer("/objects")
        .and_then(|o| o.as_object())
        .and_then(|o| o.get("gdap_relationship.foggy-it.foggy-admin"))
        .map(|o| o["ids"].clone());
    found.unwrap_or_else(|| panic!("no gdap_relationship in {state}"))
}

/// A display name another customer's relationship holds is never adopted: the create fails
/// naming that relationship, which stays as it was (names are unique across the partner, but
/// a relationship is only ever this customer's).
#[test]
fn a_display_name_held_by_another_customer_is_a_conflict_not_an_adoption() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_fleet(d, &foggy_admin("Helpdesk Administrator"));
    let m = d.join("m");
    let m = m.to_str().unwrap();
    assert_eq!(tf(d, &["plan", m]).code, 0);
    let other = "0b0b0b0b-1111-4222-8333-444455556666";
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        t["delegatedAdminRelationships"] = json!([{
            "id": format!("{other}-0000"),
            "displayName": "Foggy admin",
            "customerTenantId": other,
            "roles": [HELPDESK_ADMIN],
        }]);
    });
    let refused = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(
        refused.transcript().contains(&format!(
            "already used by relationship {other}-0000 with customer {other}"
        )),
        "{}",
        refused.transcript()
    );
    let all = partner_relationships(d);
    assert_eq!(all.len(), 1, "nothing made");
    let state =
        std::fs::read_to_string(d.join("state.d/tenants/foggy-it.json")).unwrap_or_default();
    assert!(
        !state.contains(&format!("{other}-0000")),
        "not recorded: {state}"
    );
}

/// Approved and active with Helpdesk Administrator; returns the relationship's id.
fn foggy_admin_active(d: &std::path::Path, m: &str) -> String {
    use crate::support::tf;
    write_fleet(d, &foggy_admin("Helpdesk Administrator"));
    assert_eq!(tf(d, &["apply", "--auto-approve", m]).code, 0);
    assert_eq!(sandbox_gdap(d, &["approve", "Foggy admin"]).code, 0);
    assert_eq!(tf(d, &["apply", "--auto-approve", m]).code, 0);
    partner_relationships(d)[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A crash between creating a replacement and recording it, with the next run on a later
/// day: the replacement is found by customer and roles, not by a name with today's date, so
/// the customer never gets a second approval request.
#[test]
fn a_replacement_made_on_an_earlier_day_before_a_crash_is_found_again() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let first = foggy_admin_active(d, m);
    let state = d.join("state.d/tenants/foggy-it.json");
    let before = std::fs::read(&state).unwrap();
    write_fleet(
        d,
        &foggy_admin("Helpdesk Administrator, User Administrator"),
    );
    let replaced = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(replaced.code, 0, "{}", replaced.transcript());
    assert_eq!(partner_relationships(d).len(), 2);
    // The crash: the state as before the apply, and the replacement named on another day.
    std::fs::write(&state, before).unwrap();
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        for r in t["delegatedAdminRelationships"].as_array_mut().unwrap() {
            if r["id"] != first.as_str() {
                r["displayName"] = json!("Foggy admin 2001-01-01");
            }
        }
    });
    let again = tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let all = partner_relationships(d);
    assert_eq!(all.len(), 2, "no second replacement: {all:?}");
    let ids = state_ids(d);
    assert_eq!(ids["previousRelationshipId"], first.as_str());
    assert_ne!(ids["relationshipId"], first.as_str());
}

/// A replacement that expires unapproved is replaced again, and the original relationship,
/// still in force, stays recorded and is ended once the new one is active.
#[test]
fn the_original_stays_recorded_when_its_replacement_expires_unapproved() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let first = foggy_admin_active(d, m);
    write_fleet(
        d,
        &foggy_admin("Helpdesk Administrator, User Administrator"),
    );
    let apply = || tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(apply().code, 0);
    let second = state_ids(d)["relationshipId"].as_str().unwrap().to_string();
    assert_eq!(sandbox_gdap(d, &["age", &second, "--days", "91"]).code, 0);
    let third = apply();
    assert_eq!(third.code, 0, "{}", third.transcript());
    let ids = state_ids(d);
    assert_eq!(ids["previousRelationshipId"], first.as_str(), "{ids}");
    let third = ids["relationshipId"].as_str().unwrap().to_string();
    assert!(third != first && third != second);
    assert_eq!(sandbox_gdap(d, &["approve", &third]).code, 0);
    let switched = apply();
    assert_eq!(switched.code, 0, "{}", switched.transcript());
    let all = partner_relationships(d);
    let old = all.iter().find(|r| r["id"] == first.as_str()).unwrap();
    assert!(
        old["status"] == "terminationRequested" || old["status"] == "terminated",
        "the original is ended: {old}"
    );
}

/// The recorded replacement vanished (404): the original is found by name again, changed in
/// place, and never terminated as "the relationship it replaced".
#[test]
fn a_vanished_replacement_never_ends_the_relationship_kept() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let first = foggy_admin_active(d, m);
    write_fleet(
        d,
        &foggy_admin("Helpdesk Administrator, User Administrator"),
    );
    let apply = || tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    assert_eq!(apply().code, 0);
    // The replacement is gone, and the manifest goes back to the original's roles.
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        t["delegatedAdminRelationships"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["id"] == first.as_str());
    });
    // ... and extends automatically (an in-place change).
    let back = format!(
        "{}autoExtend: P180D\n",
        foggy_admin("Helpdesk Administrator")
    );
    write_fleet(d, &back);
    let kept = apply();
    assert_eq!(kept.code, 0, "{}", kept.transcript());
    let all = partner_relationships(d);
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0]["status"],
        "active",
        "never terminated: {}",
        kept.transcript()
    );
    assert_eq!(all[0]["autoExtendDuration"], "P180D");
    let ids = state_ids(d);
    assert_eq!(ids["relationshipId"], first.as_str());
    assert_ne!(ids["previousRelationshipId"], first.as_str());
}

/// Renaming the document (its `name`) moves the relationship in state: never an adopt at the
/// new address plus a delete at the old one, which --allow-delete would turn into
/// terminating the relationship just adopted.
#[test]
fn renaming_the_document_moves_the_relationship_and_ends_nothing() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let first = foggy_admin_active(d, m);
    write_fleet(
        d,
        &foggy_admin("Helpdesk Administrator").replace("name: foggy-admin", "name: foggy-support"),
    );
    let plan = tf(d, &["--color", "never", "plan", "--allow-delete", m]);
    assert!(
        !plan.stdout.contains("will be deleted") && !plan.stdout.contains("- gdap_relationship"),
        "{}",
        plan.stdout
    );
    let applied = tf(
        d,
        &[
            "--color",
            "never",
            "apply",
            "--auto-approve",
            "--allow-delete",
            m,
        ],
    );
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let all = partner_relationships(d);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["status"], "active", "{}", applied.transcript());
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("state.d/tenants/foggy-it.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["objects"]["gdap_relationship.foggy-it.foggy-support"]["ids"]["relationshipId"],
        first.as_str()
    );
    assert!(state["objects"]["gdap_relationship.foggy-it.foggy-admin"].is_null());
    let again = tf(d, &["--color", "never", "plan", "--detailed-exitcode", m]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

/// A delete whose relationship another address of the same plan keeps (here the document
/// was renamed and the relationship's display name changed outside tenantform, so the
/// rename is not recognised) is held back, naming that address: never terminated.
#[test]
fn a_delete_never_ends_a_relationship_another_address_keeps() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let first = foggy_admin_active(d, m);
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        t["delegatedAdminRelationships"][0]["displayName"] = json!("Foggy team");
    });
    write_fleet(
        d,
        &foggy_admin("Helpdesk Administrator")
            .replace("name: foggy-admin", "name: foggy-team")
            .replace("displayName: Foggy admin", "displayName: Foggy team"),
    );
    let applied = tf(
        d,
        &[
            "--color",
            "never",
            "apply",
            "--auto-approve",
            "--allow-delete",
            m,
        ],
    );
    assert!(
        applied
            .transcript()
            .contains("its relationship is also gdap_relationship.foggy-it.foggy-team's"),
        "{}",
        applied.transcript()
    );
    let all = partner_relationships(d);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], first.as_str());
    assert_eq!(all[0]["status"], "active", "{}", applied.transcript());
}

/// A replacement still waiting for approval whose roles change again is replaced in turn:
/// the original, still in force, stays recorded and is ended only once the last one is active.
#[test]
fn a_pending_replacement_replaced_again_keeps_the_original_recorded() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let first = foggy_admin_active(d, m);
    let apply = || tf(d, &["--color", "never", "apply", "--auto-approve", m]);
    write_fleet(
        d,
        &foggy_admin("Helpdesk Administrator, User Administrator"),
    );
    assert_eq!(apply().code, 0);
    let second = state_ids(d)["relationshipId"].as_str().unwrap().to_string();
    write_fleet(
        d,
        &foggy_admin("Helpdesk Administrator, Password Administrator"),
    );
    let again = apply();
    assert_eq!(again.code, 0, "{}", again.transcript());
    let ids = state_ids(d);
    assert_eq!(ids["previousRelationshipId"], first.as_str(), "{ids}");
    let third = ids["relationshipId"].as_str().unwrap().to_string();
    assert!(third != first && third != second, "{ids}");
    assert_eq!(sandbox_gdap(d, &["approve", &third]).code, 0);
    let switched = apply();
    assert_eq!(switched.code, 0, "{}", switched.transcript());
    let all = partner_relationships(d);
    let old = all.iter().find(|r| r["id"] == first.as_str()).unwrap();
    assert!(
        old["status"] == "terminationRequested" || old["status"] == "terminated",
        "the original is ended: {old}"
    );
}

/// The recorded relationship turns out to be another customer's (an id reused, a state file
/// edited by hand): removing the document with --allow-delete ends nothing and says why.
#[test]
fn a_recorded_relationship_of_another_customer_is_never_ended() {
    use crate::support::tf;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = d.join("m");
    let m = m.to_str().unwrap();
    let first = foggy_admin_active(d, m);
    crate::support::edit_world_tenant(d, SANDBOX_PARTNER_TENANT_ID, |t| {
        for r in t["delegatedAdminRelationships"].as_array_mut().unwrap() {
            if r["id"] == first.as_str() {
                r["customerTenantId"] = json!("22222222-2222-4222-8222-222222222222");
            }
        }
    });
    write_fleet(
        d,
        &format!("kind: Tenant\nname: foggy-it\nmicrosoftTenantId: {FOGGY}\n"),
    );
    let apply = tf(
        d,
        &[
            "--color",
            "never",
            "apply",
            "--auto-approve",
            "--allow-delete",
            m,
        ],
    );
    assert_eq!(apply.code, 1, "{}", apply.transcript());
    assert!(
        apply.transcript().contains("not this customer's"),
        "{}",
        apply.transcript()
    );
    let all = partner_relationships(d);
    let kept = all.iter().find(|r| r["id"] == first.as_str()).unwrap();
    assert_eq!(kept["status"], "active", "never ended: {kept}");
}
