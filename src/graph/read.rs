//! Reading the live state of many tenants: one `$batch` per tenant (guests and role
//! assignments together), bounded concurrency across tenants, and "consent needed" for a
//! tenant whose token fails that way while the others carry on.

use futures_util::StreamExt;
use serde_json::Value;

use super::client::{BatchRequest, GraphClient};
use crate::live::{LiveDirectory, LiveGuest, LiveRoleAssignment, LiveSnapshot, LiveTenant};
use crate::outcome::Cause;

const GUEST_FIELDS: &str =
    "id,displayName,mail,otherMails,userType,externalUserState,externalUserStateChangeDateTime";

/// A tenant to read: its stable name and Microsoft tenant id.
pub struct TenantToRead {
    pub name: String,
    pub microsoft_tenant_id: String,
}

/// Told about each tenant as soon as it is read (for progress).
pub type OnTenantRead = std::sync::Arc<dyn Fn(&str, &LiveTenant) + Send + Sync>;

/// Reads every tenant, at most `parallelism` at a time.
pub async fn read_tenants(
    client: &GraphClient,
    tenants: Vec<TenantToRead>,
    parallelism: usize,
    consent_redirect: &str,
    on_read: Option<OnTenantRead>,
) -> LiveSnapshot {
    let on_read = &on_read;
    let results: Vec<(String, LiveTenant)> = futures_util::stream::iter(tenants)
        .map(|t| async move {
            let started = std::time::Instant::now();
            let live = read_tenant(client, &t.microsoft_tenant_id, consent_redirect).await;
            let ms = started.elapsed().as_millis() as u64;
            match &live {
                LiveTenant::Read(dir) => tracing::info!(
                    tenant = %t.name,
                    guests = dir.guests.len(),
                    role_assignments = dir.role_assignments.len(),
                    ms,
                    "read Entra"
                ),
                LiveTenant::Failed(f) => {
                    tracing::info!(tenant = %t.name, ms, "not read: {}", f.describe())
                }
            }
            if let Some(on_read) = on_read {
                on_read(&t.name, &live);
            }
            (t.name, live)
        })
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    LiveSnapshot {
        tenants: results.into_iter().collect(),
    }
}

fn items(body: &Value) -> Vec<Value> {
    body["value"].as_array().cloned().unwrap_or_default()
}

async fn read_tenant(client: &GraphClient, tenant_id: &str, consent_redirect: &str) -> LiveTenant {
    let requests = vec![guests_request("guests"), roles_request("roles")];
    let failed = |e: super::GraphClientError| {
        let mut failure = e.failure();
        if failure.cause == Cause::ConsentMissing {
            failure.consent_url = Some(client.config().consent_url(
                tenant_id,
                consent_redirect,
                tenant_id,
            ));
        }
        LiveTenant::Failed(failure)
    };
    // The token says what was granted: a tenant that cannot be read is named with the
    // permissions it lacks, and the read is not sent.
    match client.token(tenant_id).await {
        Ok(token) => {
            if let Some(roles) = super::permissions::token_roles(&token) {
                let missing =
                    super::permissions::missing(&super::permissions::needs_for_read(), &roles);
                if !missing.is_empty() {
                    return LiveTenant::Failed(crate::outcome::Failure::new(
                        Cause::PermissionMissing,
                        super::permissions::missing_message(&missing, tenant_id, &roles),
                    ));
                }
            }
        }
        Err(e) => return failed(e),
    }
    let answers = match client.batch(tenant_id, requests).await {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let mut guests = Vec::new();
    let mut roles = Vec::new();
    for answer in answers {
        if let Err(e) = answer.ok(tenant_id) {
            return failed(e);
        }
        // Large directories page: follow the rest outside the batch.
        let all = match all_items(client, tenant_id, &answer.body).await {
            Ok(all) => all,
            Err(e) => return failed(e),
        };
        if answer.id == "guests" {
            guests = all;
        } else {
            roles = all;
        }
    }
    LiveTenant::Read(parse_directory(&guests, &roles))
}

/// Guests and role assignments as Graph returns them -> the live directory.
pub fn parse_directory(guests: &[Value], roles: &[Value]) -> LiveDirectory {
    let str_of = |v: &Value, k: &str| v[k].as_str().map(str::to_string);
    LiveDirectory {
        guests: guests
            .iter()
            .map(|g| LiveGuest {
                id: str_of(g, "id").unwrap_or_default(),
                display_name: str_of(g, "displayName").unwrap_or_default(),
                mail: str_of(g, "mail"),
                other_mails: g["otherMails"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|m| m.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                external_user_state: str_of(g, "externalUserState"),
                external_user_state_change: str_of(g, "externalUserStateChangeDateTime"),
            })
            .collect(),
        role_assignments: roles
            .iter()
            .map(|r| LiveRoleAssignment {
                id: str_of(r, "id").unwrap_or_default(),
                principal_id: str_of(r, "principalId").unwrap_or_default().to_lowercase(),
                role_definition_id: str_of(r, "roleDefinitionId")
                    .unwrap_or_default()
                    .to_lowercase(),
                directory_scope_id: str_of(r, "directoryScopeId").unwrap_or_else(|| "/".into()),
            })
            .collect(),
    }
}

/// The request that lists a tenant's guests (shared by planning and export).
pub fn guests_request(id: &str) -> BatchRequest {
    BatchRequest {
        id: id.into(),
        method: "GET".into(),
        url: format!("/users?$filter=userType eq 'Guest'&$select={GUEST_FIELDS}&$top=999"),
        body: None,
        depends_on: Vec::new(),
    }
}

/// The request that lists a tenant's directory role assignments.
pub fn roles_request(id: &str) -> BatchRequest {
    BatchRequest {
        id: id.into(),
        method: "GET".into(),
        url: "/roleManagement/directory/roleAssignments?$top=999".into(),
        body: None,
        depends_on: Vec::new(),
    }
}

/// Every item of a batch answer, following its next link outside the batch.
pub async fn all_items(
    client: &GraphClient,
    tenant_id: &str,
    body: &Value,
) -> Result<Vec<Value>, super::GraphClientError> {
    let mut all = items(body);
    if let Some(next) = body["@odata.nextLink"].as_str() {
        all.extend(client.get_all(tenant_id, next).await?);
    }
    Ok(all)
}
