//! GDAP over Graph: the partner tenant's delegated admin relationships and their access
//! assignments, read into [`crate::gdap::LiveRelationship`] and written with the etags Graph
//! requires. Every call acts in the partner tenant (the MSP's own): relationships live there,
//! not in the customer's tenant.
//!
//! Requests (microsoft-graph-docs-contrib, api-reference/v1.0):
//! `GET/POST /tenantRelationships/delegatedAdminRelationships`
//! (tenantrelationship-list-/-post-delegatedadminrelationships.md), `PATCH`/`DELETE .../{id}`
//! with `If-Match` (delegatedadminrelationship-update.md, -delete.md), `POST .../{id}/requests`
//! `{action}` (delegatedadminrelationship-post-requests.md: Authorization and Content-Type
//! only), `GET/POST .../{id}/accessAssignments` and `PATCH`/`DELETE
//! .../accessAssignments/{id}` with `If-Match` (delegatedadminaccessassignment-*.md).

use serde_json::{Value, json};

use super::read::all_items;
use super::{BatchRequest, GraphClient, GraphClientError};
use crate::gdap::{LiveAccessAssignment, LiveRelationship};

pub const RELATIONSHIPS: &str = "/tenantRelationships/delegatedAdminRelationships";

/// What a new relationship asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRelationship {
    pub display_name: String,
    pub customer_tenant_id: String,
    pub customer_display_name: String,
    /// Role template ids.
    pub roles: Vec<String>,
    pub duration: String,
    pub auto_extend_duration: String,
}

fn unreadable(tenant: &str, method: &str, path: &str, what: &str) -> GraphClientError {
    GraphClientError::Transport {
        tenant: tenant.to_string(),
        method: method.to_string(),
        path: path.to_string(),
        message: format!("the answer is not what Graph documents: {what}"),
    }
}

fn relationship(
    partner: &str,
    method: &str,
    path: &str,
    v: &Value,
) -> Result<LiveRelationship, GraphClientError> {
    LiveRelationship::from_graph(v).ok_or_else(|| {
        unreadable(
            partner,
            method,
            path,
            "a relationship without id, name, roles or status",
        )
    })
}

fn assignment(
    partner: &str,
    method: &str,
    path: &str,
    v: &Value,
) -> Result<LiveAccessAssignment, GraphClientError> {
    LiveAccessAssignment::from_graph(v).ok_or_else(|| {
        unreadable(
            partner,
            method,
            path,
            "an access assignment without id, group, roles or status",
        )
    })
}

fn access_details(roles: &[String]) -> Value {
    json!({
        "unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>(),
    })
}

/// Every relationship of the partner, with the access assignments of the active ones (read
/// in `$batch`es of 20: the others have none Graph would manage).
pub async fn list(
    client: &GraphClient,
    partner: &str,
) -> Result<Vec<LiveRelationship>, GraphClientError> {
    let items = client.get_all(partner, RELATIONSHIPS).await?;
    let mut relationships = items
        .iter()
        .map(|v| relationship(partner, "GET", RELATIONSHIPS, v))
        .collect::<Result<Vec<_>, _>>()?;
    let requests: Vec<BatchRequest> = relationships
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == crate::gdap::status::ACTIVE)
        .map(|(i, r)| BatchRequest {
            id: i.to_string(),
            method: "GET".into(),
            url: format!("{RELATIONSHIPS}/{}/accessAssignments", r.id),
            body: None,
            depends_on: Vec::new(),
        })
        .collect();
    if requests.is_empty() {
        return Ok(relationships);
    }
    for answer in client.batch(partner, requests).await? {
        answer.ok(partner)?;
        // Ids are the positions the requests were made with; anything else is not our answer.
        let Some(index) = answer
            .id
            .parse::<usize>()
            .ok()
            .filter(|i| *i < relationships.len())
        else {
            return Err(unreadable(
                partner,
                "POST",
                "/$batch",
                "an answer to a request that was not sent",
            ));
        };
        let items = all_items(client, partner, answer.body.clone()).await?;
        relationships[index].access_assignments = items
            .iter()
            .map(|v| assignment(partner, "GET", &answer.url, v))
            .collect::<Result<_, _>>()?;
    }
    Ok(relationships)
}

/// The partner's relationships with this display name (`$filter`, which the list page
/// documents; without their access assignments): Graph keeps names unique, so a repeated
/// create finds the first one instead of making a second, without listing every relationship.
pub async fn with_name(
    client: &GraphClient,
    partner: &str,
    display_name: &str,
) -> Result<Vec<LiveRelationship>, GraphClientError> {
    let filter = format!(
        "displayName eq '{}'",
        display_name.trim().replace('\'', "''")
    );
    let path = format!(
        "{RELATIONSHIPS}?$filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    );
    client
        .get_all(partner, &path)
        .await?
        .iter()
        .map(|v| relationship(partner, "GET", RELATIONSHIPS, v))
        .collect()
}

/// The partner's relationships with one customer (`$filter=customer/tenantId eq '...'`; the
/// list page documents `$filter`, the property path is *unconfirmed*): where a replacement an
/// earlier run made is found whatever name it was given.
pub async fn for_customer(
    client: &GraphClient,
    partner: &str,
    customer_tenant_id: &str,
) -> Result<Vec<LiveRelationship>, GraphClientError> {
    let filter = format!(
        "customer/tenantId eq '{}'",
        customer_tenant_id.trim().replace('\'', "''")
    );
    let path = format!(
        "{RELATIONSHIPS}?$filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    );
    let items = match client.get_all(partner, &path).await {
        Ok(items) => items,
        // Should Graph refuse the filter's property path, the whole list filtered here: the
        // same answer, one read longer.
        Err(e) if e.status() == Some(400) => client.get_all(partner, RELATIONSHIPS).await?,
        Err(e) => return Err(e),
    };
    let customer = customer_tenant_id.trim();
    items
        .iter()
        .map(|v| relationship(partner, "GET", RELATIONSHIPS, v))
        .filter(|r| {
            r.as_ref().map_or(true, |r| {
                r.customer_tenant_id
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(customer))
            })
        })
        .collect()
}

/// The partner's relationship with this display name, if any.
pub async fn find_by_name(
    client: &GraphClient,
    partner: &str,
    display_name: &str,
) -> Result<Option<LiveRelationship>, GraphClientError> {
    Ok(with_name(client, partner, display_name)
        .await?
        .into_iter()
        .find(|r| r.display_name.eq_ignore_ascii_case(display_name.trim())))
}

/// One relationship with its access assignments when it is active; `None` when Graph no
/// longer has it (404).
pub async fn read_one(
    client: &GraphClient,
    partner: &str,
    id: &str,
) -> Result<Option<LiveRelationship>, GraphClientError> {
    let mut r = match get(client, partner, id).await {
        Ok(r) => r,
        Err(e) if e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(e),
    };
    if r.status == crate::gdap::status::ACTIVE {
        let path = format!("{RELATIONSHIPS}/{id}/accessAssignments");
        r.access_assignments = client
            .get_all(partner, &path)
            .await?
            .iter()
            .map(|v| assignment(partner, "GET", &path, v))
            .collect::<Result<_, _>>()?;
    }
    Ok(Some(r))
}

/// Reads one relationship (without its access assignments).
pub async fn get(
    client: &GraphClient,
    partner: &str,
    id: &str,
) -> Result<LiveRelationship, GraphClientError> {
    let path = format!("{RELATIONSHIPS}/{id}");
    let v = client.get(partner, &path).await?;
    relationship(partner, "GET", &path, &v)
}

/// Creates a relationship (status `created`).
pub async fn create(
    client: &GraphClient,
    partner: &str,
    new: &NewRelationship,
) -> Result<LiveRelationship, GraphClientError> {
    let body = json!({
        "displayName": new.display_name,
        "duration": new.duration,
        "customer": {
            "tenantId": new.customer_tenant_id,
            "displayName": new.customer_display_name,
        },
        "accessDetails": access_details(&new.roles),
        "autoExtendDuration": new.auto_extend_duration,
    });
    let answer = client
        .send(partner, "POST", RELATIONSHIPS, Some(&body))
        .await?;
    relationship(partner, "POST", RELATIONSHIPS, &answer.body)
}

/// `POST .../{id}/requests {action}`: `lockForApproval` (created -> approvalPending) or
/// `terminate`.
pub async fn request(
    client: &GraphClient,
    partner: &str,
    id: &str,
    action: &str,
) -> Result<(), GraphClientError> {
    let path = format!("{RELATIONSHIPS}/{id}/requests");
    client
        .send(partner, "POST", &path, Some(&json!({"action": action})))
        .await?;
    Ok(())
}

/// Updates a relationship with the etag last read; a stale etag answers 412. Removing Global
/// Administrator from an active relationship is a long-running operation
/// (delegatedadminrelationship-update.md): Graph may answer `202 Accepted` without the
/// relationship, which is then read again (it may not show the change yet; the next plan
/// converges).
pub async fn update(
    client: &GraphClient,
    partner: &str,
    id: &str,
    etag: &str,
    patch: &Value,
) -> Result<LiveRelationship, GraphClientError> {
    let path = format!("{RELATIONSHIPS}/{id}");
    let answer = client
        .send_if_match(partner, "PATCH", &path, Some(patch), etag)
        .await?;
    if answer.status == 202 {
        return get(client, partner, id).await;
    }
    relationship(partner, "PATCH", &path, &answer.body)
}

/// `{"accessDetails": ...}` for [`update`]: the roles a relationship keeps.
pub fn roles_patch(roles: &[String]) -> Value {
    json!({ "accessDetails": access_details(roles) })
}

/// Deletes a relationship that is still `created`.
pub async fn delete(
    client: &GraphClient,
    partner: &str,
    id: &str,
    etag: &str,
) -> Result<(), GraphClientError> {
    let path = format!("{RELATIONSHIPS}/{id}");
    client
        .send_if_match(partner, "DELETE", &path, None, etag)
        .await?;
    Ok(())
}

/// Gives a partner security group some of an active relationship's roles.
pub async fn create_assignment(
    client: &GraphClient,
    partner: &str,
    relationship_id: &str,
    group_id: &str,
    roles: &[String],
) -> Result<LiveAccessAssignment, GraphClientError> {
    let path = format!("{RELATIONSHIPS}/{relationship_id}/accessAssignments");
    let body = json!({
        "accessContainer": {
            "accessContainerId": group_id,
            "accessContainerType": "securityGroup",
        },
        "accessDetails": access_details(roles),
    });
    let answer = client.send(partner, "POST", &path, Some(&body)).await?;
    assignment(partner, "POST", &path, &answer.body)
}

/// Changes the roles an access assignment gives.
pub async fn update_assignment(
    client: &GraphClient,
    partner: &str,
    relationship_id: &str,
    assignment_id: &str,
    etag: &str,
    roles: &[String],
) -> Result<LiveAccessAssignment, GraphClientError> {
    let path = format!("{RELATIONSHIPS}/{relationship_id}/accessAssignments/{assignment_id}");
    let body = json!({ "accessDetails": access_details(roles) });
    let answer = client
        .send_if_match(partner, "PATCH", &path, Some(&body), etag)
        .await?;
    assignment(partner, "PATCH", &path, &answer.body)
}

/// Removes an access assignment (it goes through `deleting` to `deleted`).
pub async fn delete_assignment(
    client: &GraphClient,
    partner: &str,
    relationship_id: &str,
    assignment_id: &str,
    etag: &str,
) -> Result<(), GraphClientError> {
    let path = format!("{RELATIONSHIPS}/{relationship_id}/accessAssignments/{assignment_id}");
    client
        .send_if_match(partner, "DELETE", &path, None, etag)
        .await?;
    Ok(())
}
