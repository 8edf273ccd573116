//! Consent in Graph: reads what a tenant has of tenantform's app (its service principal and
//! the Microsoft Graph app roles granted to it) and makes what `consent::plan_tenant`
//! plans: the service principal (`POST /servicePrincipals`) and app role assignments on
//! Microsoft Graph's principal (`POST /servicePrincipals/{graph}/appRoleAssignedTo`).
//!
//! Every write is made safe to repeat by reading first: the apply reads the tenant again
//! before its grants, and an answer saying the object exists already (a principal created by
//! a run that crashed before recording anything; a grant made twice) counts as done once a
//! read shows it.

use serde_json::{Value, json};

use super::client::{GraphClient, GraphClientError};
use crate::consent::{GRAPH_APP_ID, LiveConsent, app_role_name};

/// The service principal of `app_id` (`servicePrincipals(appId='...')`), `None` on 404.
async fn principal(
    client: &GraphClient,
    tenant: &str,
    app_id: &str,
) -> Result<Option<String>, GraphClientError> {
    let path = format!(
        "/servicePrincipals(appId='{}')?$select=id,appId",
        app_id.replace('\'', "''")
    );
    match client.get(tenant, &path).await {
        Ok(sp) => Ok(sp["id"].as_str().map(str::to_string)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What `tenant` has: the app's principal, Graph's, and the Graph app roles granted to the
/// app (read from Graph's `appRoleAssignedTo`, filtered to the app's principal here).
pub async fn read(
    client: &GraphClient,
    tenant: &str,
    client_id: &str,
) -> Result<LiveConsent, GraphClientError> {
    let app = principal(client, tenant, client_id).await?;
    let graph = principal(client, tenant, GRAPH_APP_ID).await?;
    let mut granted = Vec::new();
    if let (Some(app), Some(graph)) = (&app, &graph) {
        let assignments = client
            .get_all(
                tenant,
                &format!(
                    "/servicePrincipals/{graph}/appRoleAssignedTo?$select=id,appRoleId,principalId"
                ),
            )
            .await?;
        for a in assignments {
            if a["principalId"]
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case(app))
            {
                let role = a["appRoleId"].as_str().unwrap_or_default();
                granted.push(app_role_name(role).map_or_else(|| role.to_string(), str::to_string));
            }
        }
    }
    Ok(LiveConsent {
        app_service_principal: app,
        graph_service_principal: graph,
        granted,
    })
}

/// Creates the app's service principal (consent's first step in a customer tenant).
pub async fn create_principal(
    client: &GraphClient,
    tenant: &str,
    client_id: &str,
) -> Result<(), GraphClientError> {
    let body = json!({ "appId": client_id });
    match client
        .send(tenant, "POST", "/servicePrincipals", Some(&body))
        .await
    {
        Ok(_) => Ok(()),
        // Made already (a repeated request): done when a read finds it.
        Err(e) if matches!(e.status(), Some(400 | 409)) => {
            match principal(client, tenant, client_id).await? {
                Some(_) => Ok(()),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Grants `app_role_id` of Microsoft Graph to the app's principal.
pub async fn grant(
    client: &GraphClient,
    tenant: &str,
    live: &LiveConsent,
    client_id: &str,
    app_role_id: &str,
) -> Result<(), GraphClientError> {
    let (Some(app), Some(graph)) = (&live.app_service_principal, &live.graph_service_principal)
    else {
        return Err(GraphClientError::Transport {
            tenant: tenant.to_string(),
            method: "POST".into(),
            path: "/servicePrincipals/{id}/appRoleAssignedTo".into(),
            message: "no service principal to grant to (tenantform's app or Microsoft Graph's)"
                .into(),
        });
    };
    let body: Value = json!({
        "principalId": app,
        "resourceId": graph,
        "appRoleId": app_role_id,
    });
    let path = format!("/servicePrincipals/{graph}/appRoleAssignedTo");
    match client.send(tenant, "POST", &path, Some(&body)).await {
        Ok(_) => Ok(()),
        // "Permission being assigned already exists on the object": done if a read shows it.
        Err(e) if e.status() == Some(400) => {
            let now = read(client, tenant, client_id).await?;
            let name = app_role_name(app_role_id).unwrap_or(app_role_id);
            if now.granted.iter().any(|g| g == name) {
                Ok(())
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}
