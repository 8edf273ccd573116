//! Reading the live state of many tenants: one `$batch` per tenant with a request per source
//! (`graph::sources`: guests, role assignments with their principals, PIM-eligible
//! assignments), bounded concurrency across tenants, and "consent needed" for a tenant whose
//! token fails that way while the others carry on. Each source gets its own status, so a
//! refused or failing source blocks only the kinds that need it. Only a tenant where a group
//! holds a privileged role costs a second round trip (its members).

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt;
use serde_json::Value;

use super::client::{BatchRequest, GraphClient};
use super::sources::{Round, Source};
use crate::live::{
    LiveDirectory, LiveEligibleAssignment, LiveGuest, LivePrincipal, LiveRoleAssignment,
    LiveSnapshot, LiveTenant, SourceStatus, source,
};
use crate::outcome::{Cause, Failure};

/// What names a member of a group that holds a privileged role.
pub const MEMBER_FIELDS: &str = "id,displayName,userPrincipalName,mail,userType";

const GUEST_FIELDS: &str =
    "id,displayName,mail,otherMails,userType,externalUserState,externalUserStateChangeDateTime";

/// A tenant to read: its stable name and Microsoft tenant id.
pub struct TenantToRead {
    pub name: String,
    pub microsoft_tenant_id: String,
}

/// Told about each tenant as soon as it is read (for progress).
pub type OnTenantRead<'a> = &'a (dyn Fn(&str, &LiveTenant) + Sync);

/// Reads `sources` (`graph::sources::for_kinds`) of every tenant, at most `parallelism`
/// tenants at a time.
pub async fn read_tenants(
    client: &GraphClient,
    tenants: Vec<TenantToRead>,
    sources: &[&'static Source],
    parallelism: usize,
    consent_redirect: &str,
    on_read: Option<OnTenantRead<'_>>,
) -> LiveSnapshot {
    let results: Vec<(String, LiveTenant)> = futures_util::stream::iter(tenants)
        .map(|t| async move {
            let live = read_one(client, &t, sources, consent_redirect).await;
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

/// Reads `sources` of one tenant (logged at `-v`): what a streaming plan calls per tenant.
pub async fn read_one(
    client: &GraphClient,
    t: &TenantToRead,
    sources: &[&'static Source],
    consent_redirect: &str,
) -> LiveTenant {
    let started = std::time::Instant::now();
    let live = read_tenant(client, &t.microsoft_tenant_id, consent_redirect, sources).await;
    let ms = started.elapsed().as_millis() as u64;
    match &live {
        LiveTenant::Read(dir) => {
            tracing::info!(
                tenant = %t.name,
                guests = dir.guests.len(),
                role_assignments = dir.role_assignments.len(),
                ms,
                "read Entra"
            );
            for (name, f) in dir.failed_sources() {
                tracing::info!(tenant = %t.name, source = name, "not read: {}", f.describe());
            }
        }
        LiveTenant::Failed(f) => {
            tracing::info!(tenant = %t.name, ms, "not read: {}", f.describe())
        }
    }
    live
}

/// Reads one tenant: its token, then each source (see `graph::sources`) with its own status.
/// The tenant as a whole fails only when its token is refused, the `$batch` itself fails, or
/// no required source could be read (no permission for any, or every one failed).
async fn read_tenant(
    client: &GraphClient,
    tenant_id: &str,
    consent_redirect: &str,
    sources: &[&'static Source],
) -> LiveTenant {
    let failed = |e: super::GraphClientError| {
        let mut failure = e.failure();
        if failure.cause == Cause::ConsentMissing {
            failure.consent_url = Some(client.config().consent_url(
                tenant_id,
                consent_redirect,
                tenant_id,
            ));
        }
        failure
    };
    let mut dir = LiveDirectory::default();
    // The token says what was granted: a source the app may not read is named with the
    // permission it lacks, and its request is not sent.
    let (roles, person) = match client.token(tenant_id).await {
        Ok(token) => (
            super::permissions::token_roles(&token),
            super::permissions::token_delegation(&token),
        ),
        Err(e) => return LiveTenant::Failed(failed(e)),
    };
    let mut to_read: Vec<&'static Source> = Vec::new();
    let mut missing: Vec<&'static [&'static str]> = Vec::new();
    for s in sources {
        // A person's token: every source is sent and Graph's 403 decides. What its scopes
        // and roles are judged to lack only explains a refusal (`PermissionGap`): the Azure
        // CLI's token carries the scopes its app was pre-authorized for (e.g.
        // Directory.AccessAsUser.All), not the ones tenantform's table names, so judging up
        // front would refuse reads Graph serves.
        if person.is_some() {
            to_read.push(s);
            continue;
        }
        match &roles {
            Some(roles)
                if !s.permissions.is_empty()
                    && !super::permissions::satisfied(s.permissions, roles) =>
            {
                if !missing.contains(&s.permissions) {
                    missing.push(s.permissions);
                }
                let message =
                    super::permissions::missing_message(&[s.permissions], tenant_id, roles);
                let failure = Failure::new(Cause::PermissionMissing, message).with_source(s.name);
                dir.set_source(s.name, unread_status(s, failure));
            }
            _ => to_read.push(s),
        }
    }
    if !missing.is_empty() && !to_read.iter().any(|s| !s.report_only) {
        // Nothing a kind needs can be read: the tenant is not read, as one failure.
        let roles = roles.unwrap_or_default();
        return LiveTenant::Failed(Failure::new(
            Cause::PermissionMissing,
            super::permissions::missing_message(&missing, tenant_id, &roles),
        ));
    }
    for round in [Round::First, Round::FollowUp] {
        let mut requests = Vec::new();
        let mut owner: HashMap<String, &'static Source> = HashMap::new();
        let mut asked: Vec<&'static Source> = Vec::new();
        for s in to_read.iter().copied().filter(|s| s.round == round) {
            let mine = (s.requests)(&dir);
            if mine.is_empty() {
                dir.set_source(s.name, SourceStatus::Read);
                continue;
            }
            asked.push(s);
            for r in mine {
                owner.insert(r.id.clone(), s);
                requests.push(r);
            }
        }
        if requests.is_empty() {
            continue;
        }
        let answers = match client.batch(tenant_id, requests).await {
            Ok(a) => a,
            // The tenant's own batch: nothing was read. A follow-up: only its sources.
            Err(e) if round == Round::First => return LiveTenant::Failed(failed(e)),
            Err(e) => {
                let failure = failed(e);
                for s in &asked {
                    let why = failure.clone().with_source(s.name);
                    dir.set_source(s.name, unread_status(s, why));
                }
                continue;
            }
        };
        // A source is read when every one of its requests was (all pages).
        let mut statuses: BTreeMap<&'static str, SourceStatus> = BTreeMap::new();
        for answer in answers {
            let Some(s) = owner.get(&answer.id).copied() else {
                continue;
            };
            // Large directories page: follow the rest outside the batch.
            let all = match answer.ok(tenant_id).map(|_| ()) {
                Ok(()) => all_items(client, tenant_id, answer.body)
                    .await
                    .map_err(|e| {
                        let why = e.to_string();
                        (failed(e), why)
                    }),
                Err(e) => {
                    let why = (s.refusal)(answer.status, &answer.body, &e);
                    Err((failed(e), why))
                }
            };
            match all {
                Ok(items) => {
                    (s.parse)(&mut dir, &answer.id, &items);
                    statuses.entry(s.name).or_insert(SourceStatus::Read);
                }
                Err((failure, why)) => {
                    let status = if s.report_only {
                        SourceStatus::NotChecked { reason: why }
                    } else {
                        SourceStatus::Failed(Box::new(failure.with_source(s.name)))
                    };
                    // The first failure of a source is kept (a report-only one: the last,
                    // as the report always said).
                    match statuses.get(s.name) {
                        Some(SourceStatus::Failed(_)) => {}
                        _ => {
                            statuses.insert(s.name, status);
                        }
                    }
                }
            }
        }
        for s in asked {
            let status = statuses.remove(s.name).unwrap_or_else(|| {
                // A request left without an answer is an error, never an empty list.
                let failure =
                    Failure::new(Cause::GraphError, "Graph sent no answer to its request")
                        .with_source(s.name);
                unread_status(s, failure)
            });
            dir.set_source(s.name, status);
        }
    }
    // Nothing a kind needs was read (every request failed): the tenant is not read.
    let required: Vec<&str> = sources
        .iter()
        .filter(|s| !s.report_only)
        .map(|s| s.name)
        .collect();
    let failed: Vec<&Failure> = dir
        .failed_sources()
        .filter(|(name, _)| required.contains(name))
        .map(|(_, f)| f)
        .collect();
    if let Some((first, rest)) = failed.split_first()
        && failed.len() == required.len()
    {
        let mut whole = (*first).clone();
        whole.source = None;
        if !rest.is_empty() {
            let others: Vec<String> = rest.iter().map(|f| f.describe()).collect();
            whole.message = format!("{}; also {}", whole.message, others.join("; "));
        }
        return LiveTenant::Failed(whole);
    }
    LiveTenant::Read(dir)
}

/// What a source that could not be read is: failed, or (report-only) not checked.
fn unread_status(s: &Source, failure: Failure) -> SourceStatus {
    if s.report_only {
        SourceStatus::NotChecked {
            reason: match failure.cause {
                Cause::PermissionMissing => format!("permission missing: {}", failure.message),
                _ => failure.message,
            },
        }
    } else {
        SourceStatus::Failed(Box::new(failure))
    }
}

/// Why Graph refused the eligibility list, for the report (untrusted text; escaped on output).
pub fn eligible_refusal(status: u16, body: &Value) -> String {
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

/// Guests and role assignments as Graph returns them -> the live directory (with the
/// principals of privileged roles, when the assignments came with `$expand=principal`), both
/// sources marked read.
pub fn parse_directory(guests: &[Value], roles: &[Value]) -> LiveDirectory {
    let mut dir = LiveDirectory::default();
    parse_guests(&mut dir, guests);
    parse_role_assignments(&mut dir, roles);
    dir.with_read(&[source::GUESTS, source::ROLE_ASSIGNMENTS])
}

/// The `guests` source: guest users as Graph returns them.
pub fn parse_guests(dir: &mut LiveDirectory, guests: &[Value]) {
    let str_of = |v: &Value, k: &str| v[k].as_str().map(str::to_string);
    dir.guests.extend(guests.iter().map(|g| {
        LiveGuest {
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
        }
    }));
}

/// The `roleAssignments` source: assignments, and the principals of privileged roles.
pub fn parse_role_assignments(dir: &mut LiveDirectory, roles: &[Value]) {
    let str_of = |v: &Value, k: &str| v[k].as_str().map(str::to_string);
    dir.principals.extend(
        roles
            .iter()
            .filter(|r| crate::roles::is_privileged(r["roleDefinitionId"].as_str().unwrap_or("")))
            .filter_map(|r| LivePrincipal::from_graph(&r["principal"]))
            .map(|p| (p.id.clone(), p)),
    );
    dir.role_assignments.extend(roles.iter().map(|r| {
        LiveRoleAssignment {
            id: str_of(r, "id").unwrap_or_default(),
            principal_id: str_of(r, "principalId").unwrap_or_default().to_lowercase(),
            role_definition_id: str_of(r, "roleDefinitionId")
                .unwrap_or_default()
                .to_lowercase(),
            directory_scope_id: str_of(r, "directoryScopeId").unwrap_or_else(|| "/".into()),
        }
    }));
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

/// Every item of a batch answer, following its next link outside the batch.
pub async fn all_items(
    client: &GraphClient,
    tenant_id: &str,
    mut body: Value,
) -> Result<Vec<Value>, super::GraphClientError> {
    let mut all = match body["value"].take() {
        Value::Array(values) => values,
        _ => Vec::new(),
    };
    if let Some(next) = body["@odata.nextLink"].as_str() {
        all.extend(client.get_all(tenant_id, next).await?);
    }
    Ok(all)
}
