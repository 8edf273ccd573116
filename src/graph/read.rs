//! Reading the live state of many tenants: one `$batch` per tenant (guests, role assignments
//! with their principals, PIM-eligible assignments), bounded concurrency across tenants, and
//! "consent needed" for a tenant whose token fails that way while the others carry on. Only a
//! tenant where a group holds a privileged role costs a second round trip (its members).

use futures_util::StreamExt;
use serde_json::Value;

use super::client::{BatchRequest, GraphClient};
use crate::live::{
    LiveDirectory, LiveEligibleAssignment, LiveGuest, LivePrincipal, LiveRoleAssignment,
    LiveSnapshot, LiveTenant, PrincipalKind,
};
use crate::outcome::Cause;

/// What names a member of a group that holds a privileged role.
const MEMBER_FIELDS: &str = "id,displayName,userPrincipalName,mail,userType";

const GUEST_FIELDS: &str =
    "id,displayName,mail,otherMails,userType,externalUserState,externalUserStateChangeDateTime";

/// A tenant to read: its stable name and Microsoft tenant id.
pub struct TenantToRead {
    pub name: String,
    pub microsoft_tenant_id: String,
}

/// Told about each tenant as soon as it is read (for progress).
pub type OnTenantRead<'a> = &'a (dyn Fn(&str, &LiveTenant) + Sync);

/// Reads every tenant, at most `parallelism` at a time.
pub async fn read_tenants(
    client: &GraphClient,
    tenants: Vec<TenantToRead>,
    parallelism: usize,
    consent_redirect: &str,
    on_read: Option<OnTenantRead<'_>>,
) -> LiveSnapshot {
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
    let requests = vec![
        guests_request("guests"),
        roles_request("roles"),
        eligible_request("eligible"),
    ];
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
    let mut eligible: Result<Vec<Value>, String> = Err("not read".into());
    for answer in answers {
        if answer.id == "eligible" {
            // PIM needs Entra ID P2 and a permission of its own: without them the tenant is
            // still read, and the report says eligible assignments were not checked.
            eligible = match answer.ok(tenant_id) {
                Ok(_) => all_items(client, tenant_id, &answer.body)
                    .await
                    .map_err(|e| e.to_string()),
                Err(_) => Err(eligible_refusal(answer.status, &answer.body)),
            };
            continue;
        }
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
    let mut dir = parse_directory(&guests, &roles);
    match eligible {
        Ok(items) => add_eligible(&mut dir, &items),
        Err(why) => dir.eligible_not_checked = Some(why),
    }
    read_group_members(client, tenant_id, &mut dir).await;
    LiveTenant::Read(dir)
}

/// Why Graph refused the eligibility list, for the report (untrusted text; escaped on output).
fn eligible_refusal(status: u16, body: &Value) -> String {
    let code = body["error"]["code"].as_str().unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let why = match (status, code) {
        (403, _) => "permission missing (RoleManagement.Read.Directory)".to_string(),
        (_, "AadPremiumLicenseRequired") => "the tenant has no Entra ID P2 (PIM)".to_string(),
        _ if message.to_lowercase().contains("premium") || message.contains("PIM") => {
            "the tenant has no Entra ID P2 (PIM)".to_string()
        }
        _ => format!("Graph answered {status} {code}"),
    };
    if message.is_empty() {
        why
    } else {
        format!("{why}: {status} {code}: {message}")
    }
}

/// PIM-eligible assignments of privileged roles, and their principals.
pub fn add_eligible(dir: &mut LiveDirectory, items: &[Value]) {
    let str_of = |v: &Value, k: &str| v[k].as_str().map(str::to_string);
    for e in items {
        let role = str_of(e, "roleDefinitionId")
            .unwrap_or_default()
            .to_lowercase();
        if !crate::roles::is_privileged(&role) {
            continue;
        }
        let principal_id = str_of(e, "principalId").unwrap_or_default().to_lowercase();
        if let Some(p) = LivePrincipal::from_graph(&e["principal"]) {
            dir.principals.insert(p.id.clone(), p);
        }
        dir.eligible_assignments.push(LiveEligibleAssignment {
            id: str_of(e, "id").unwrap_or_default(),
            principal_id,
            role_definition_id: role,
            directory_scope_id: str_of(e, "directoryScopeId").unwrap_or_else(|| "/".into()),
            since: e["scheduleInfo"]["startDateTime"]
                .as_str()
                .or(e["createdDateTime"].as_str())
                .map(str::to_string),
        });
    }
}

/// The members of each group that holds a privileged role (rare: one more `$batch`).
async fn read_group_members(client: &GraphClient, tenant_id: &str, dir: &mut LiveDirectory) {
    let groups: Vec<String> = dir
        .principals
        .values()
        .filter(|p| p.kind == PrincipalKind::Group)
        .map(|p| p.id.clone())
        .collect();
    if groups.is_empty() {
        return;
    }
    let requests = groups
        .iter()
        .map(|id| members_request(id, id))
        .collect::<Vec<_>>();
    let answers = match client.batch(tenant_id, requests).await {
        Ok(a) => a,
        Err(e) => {
            dir.group_members_not_checked = Some(e.to_string());
            return;
        }
    };
    for answer in answers {
        let members = match answer.ok(tenant_id) {
            Ok(_) => all_items(client, tenant_id, &answer.body).await,
            Err(e) => Err(e),
        };
        match members {
            Ok(members) => {
                dir.group_members.insert(
                    answer.id.clone(),
                    members
                        .iter()
                        .filter_map(LivePrincipal::from_graph)
                        .collect(),
                );
            }
            Err(e) => dir.group_members_not_checked = Some(e.to_string()),
        }
    }
}

/// Guests and role assignments as Graph returns them -> the live directory (with the
/// principals of privileged roles, when the assignments came with `$expand=principal`).
pub fn parse_directory(guests: &[Value], roles: &[Value]) -> LiveDirectory {
    let str_of = |v: &Value, k: &str| v[k].as_str().map(str::to_string);
    let principals = roles
        .iter()
        .filter(|r| crate::roles::is_privileged(r["roleDefinitionId"].as_str().unwrap_or("")))
        .filter_map(|r| LivePrincipal::from_graph(&r["principal"]))
        .map(|p| (p.id.clone(), p))
        .collect();
    LiveDirectory {
        principals,
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
        ..LiveDirectory::default()
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
        // The list documents $filter, $expand and $select only (no $top): pages are followed.
        url: "/roleManagement/directory/roleAssignments?$expand=principal".into(),
        body: None,
        depends_on: Vec::new(),
    }
}

/// The request that lists a tenant's PIM-eligible role assignments (v1.0; needs Entra ID P2).
pub fn eligible_request(id: &str) -> BatchRequest {
    BatchRequest {
        id: id.into(),
        method: "GET".into(),
        url: "/roleManagement/directory/roleEligibilitySchedules?$expand=principal".into(),
        body: None,
        depends_on: Vec::new(),
    }
}

/// The request that lists a group's transitive members (no cast: no advanced query needed).
pub fn members_request(id: &str, group_id: &str) -> BatchRequest {
    BatchRequest {
        id: id.into(),
        method: "GET".into(),
        url: format!("/groups/{group_id}/transitiveMembers?$select={MEMBER_FIELDS}&$top=999"),
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
