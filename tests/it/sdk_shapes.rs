//! Shapes Microsoft's Graph SDKs send and expect, found by tools/graph-sdk-check (msgraph-sdk
//! for Python): `@odata.type` in typed request bodies, the `graph.` namespace alias in casts,
//! and a restored directory object that names its type.

use serde_json::json;
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};

use crate::support::RawGraph as Graph;

fn with_tenant(test: impl AsyncFnOnce(Graph)) {
    let fixture = Fixture::generated(1, 3);
    let tenant = fixture.tenants[1].id.clone();
    let sandbox = SandboxHandle::start(&fixture, Faults::default()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let graph = Graph::connect(&sandbox, &tenant).await;
            test(graph).await
        });
}

async fn first_user(g: &Graph) -> String {
    let (status, page) = g.send("GET", "/users?$select=id", None).await;
    assert_eq!(status, 200, "{page}");
    page["value"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn typed_bodies_may_name_their_own_type_and_no_other() {
    with_tenant(async |g| {
        let user = first_user(&g).await;
        let path = format!("/users/{user}");
        let (status, body) = g
            .send(
                "PATCH",
                &path,
                Some(json!({"@odata.type": "#microsoft.graph.user", "displayName": "Renamed"})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(g.send("GET", &path, None).await.1["displayName"], "Renamed");
        let (status, body) = g
            .send(
                "PATCH",
                &path,
                Some(json!({"@odata.type": "#microsoft.graph.group", "displayName": "x"})),
            )
            .await;
        assert_eq!(status, 400, "{body}");

        let invitation = |kind: &str| {
            json!({
                "@odata.type": kind,
                "invitedUserEmailAddress": "sdk@fabrikam.example",
                "inviteRedirectUrl": "https://myapps.microsoft.com",
            })
        };
        let (status, body) = g
            .send(
                "POST",
                "/invitations",
                Some(invitation("#microsoft.graph.user")),
            )
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("Request_BadRequest"))
        );
        let (status, made) = g
            .send(
                "POST",
                "/invitations",
                Some(invitation("#microsoft.graph.invitation")),
            )
            .await;
        assert_eq!(status, 201, "{made}");

        let (status, body) = g
            .send(
                "POST",
                "/roleManagement/directory/roleAssignments",
                Some(json!({
                    "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
                    "principalId": made["invitedUser"]["id"],
                    "roleDefinitionId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
                    "directoryScopeId": "/",
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    });
}

#[test]
fn deleted_users_by_alias_cast_and_restore_names_the_type() {
    with_tenant(async |g| {
        let user = first_user(&g).await;
        assert_eq!(
            g.send("DELETE", &format!("/users/{user}"), None).await.0,
            204
        );
        for cast in ["microsoft.graph.user", "graph.user"] {
            let (status, page) = g
                .send("GET", &format!("/directory/deletedItems/{cast}"), None)
                .await;
            assert_eq!(status, 200, "{cast}: {page}");
            assert_eq!(page["value"][0]["id"], json!(user), "{cast}");
        }
        let (status, _) = g
            .send("GET", "/directory/deletedItems/graph.group", None)
            .await;
        assert_eq!(status, 404, "no other cast is served as users");

        let (status, restored) = g
            .send(
                "POST",
                &format!("/directory/deletedItems/{user}/restore"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{restored}");
        assert_eq!(restored["@odata.type"], "#microsoft.graph.user");
        assert!(
            restored["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("/v1.0/$metadata#directoryObjects/$entity"),
            "{restored}"
        );
        assert_eq!(restored["id"], json!(user));
    });
}
