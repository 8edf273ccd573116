//! GDAP in the sandbox: the partner tenant's `tenantRelationships/delegatedAdminRelationships`,
//! their `requests` and `accessAssignments`, with Graph's statuses, etags and validation, and
//! what the customer does (approve, terminate) and time does (expiry) as controls.
//!
//! Sources (microsoft-graph-docs-contrib, api-reference/v1.0):
//! - tenantrelationship-post-delegatedadminrelationships.md: `201 Created` with a Location
//!   header and an `@odata.etag`; displayName unique across the partner's relationships and at
//!   most 50 characters; duration P1D..P2Y; autoExtendDuration `P0D`, `PT0S` or `P180D`
//!   (default `PT0S`); accessDetails required; customer optional.
//! - delegatedadminrelationship-update.md: "A relationship can only be updated if it's in the
//!   `created` status"; `If-Match` with the last known etag, required; `200 OK` with the
//!   relationship. GRAPH.md ("GDAP details", "GDAP, corrections"): autoExtendDuration may also
//!   change while active, and Global Administrator may be removed from an active one, which
//!   the current page calls a long-running operation: `202 Accepted` here (*unconfirmed*).
//! - delegatedadminrelationship-delete.md: only while `created`; `If-Match` required; 204.
//! - delegatedadminrelationship-post-requests.md: `{action}`, the partner's actions being
//!   `lockForApproval` and `terminate` (Authorization and Content-Type only: no If-Match);
//!   `201 Created` with the request (`status: created`). `approve` (and `reject`) are the
//!   customer's: the sandbox plays them with the `/_sandbox` approve control.
//! - delegatedadminaccessassignment.md, delegatedadminrelationship-post-accessassignments.md:
//!   `{accessContainer: {accessContainerId, accessContainerType: securityGroup},
//!   accessDetails}`, `201` with status `pending`, then `active`; deleting, deleted, error.
//!   GRAPH.md: only on an active relationship. Update and delete take `If-Match`
//!   (delegatedadminaccessassignment-update.md, -delete.md).
//! - delegatedadminrelationship.md: statuses; `endDateTime = activatedDateTime + duration`.
//!
//! Error codes and messages of this service are *unconfirmed* (Microsoft documents none):
//! the shape is Graph's error body; codes are `badRequest`, `conflict`, `notFound`,
//! `preconditionFailed` and `forbidden`. Status changes Graph makes in the background
//! (provisioning, deprovisioning, expiry) happen here the next time the partner's
//! relationships are served ([`GdapStore::settle`]).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::directory::GraphError;
use super::graph::{Call, Reply};
use crate::gdap::{self, status};
use crate::roles::RoleCatalog;

/// The "Partner Customer Delegated Administration" app: app-only calls need its service
/// principal in the partner tenant (tenantrelationship-post-delegatedadminrelationships.md,
/// "Important").
pub const PARTNER_ADMIN_APP_ID: &str = "2832473f-ec63-45fb-976f-5d45a7d4bb91";

/// Days the customer has to approve a relationship locked for approval.
pub const APPROVAL_WINDOW_DAYS: i64 = 90;

/// One delegated admin relationship, as the saved world and fixtures keep it. In fixtures,
/// roles may be names; everything but `displayName`, `customerTenantId` and `roles` has a
/// default (an active relationship of two years, activated now).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Relationship {
    #[serde(default)]
    pub id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_display_name: Option<String>,
    /// Role template ids (names in a fixture are turned into ids at load).
    pub roles: Vec<String>,
    #[serde(default = "two_years")]
    pub duration: String,
    #[serde(default = "no_extension")]
    pub auto_extend_duration: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    /// Bumped by every change: the etag is derived from it.
    #[serde(default)]
    pub version: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_assignments: Vec<AccessAssignment>,
}

/// A partner security group given some of the relationship's roles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessAssignment {
    #[serde(default)]
    pub id: String,
    /// The partner security group's object id.
    pub group_id: String,
    pub roles: Vec<String>,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_date_time: Option<String>,
    #[serde(default)]
    pub version: u64,
}

fn two_years() -> String {
    "P730D".into()
}
fn no_extension() -> String {
    "PT0S".into()
}
fn active() -> String {
    status::ACTIVE.into()
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
}

fn timestamp(text: &Option<String>) -> Option<jiff::Timestamp> {
    text.as_deref().and_then(|t| t.parse().ok())
}

fn days(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(24 * n)
}

fn etag(id: &str, version: u64) -> String {
    use base64::Engine;
    let inner = format!("'\"{id}:{version}\"'");
    format!(
        "W/\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(inner)
    )
}

fn bad_request(message: impl Into<String>) -> GraphError {
    GraphError::new(400, "badRequest", message)
}

fn not_found(what: &str, id: &str) -> GraphError {
    GraphError::new(404, "notFound", format!("The {what} '{id}' was not found."))
}

/// A role template id or, in fixtures, a built-in role's name.
fn role_id(role: &str) -> Option<String> {
    let catalog = RoleCatalog::builtin();
    catalog
        .by_template_id(role)
        .or_else(|| catalog.by_name(role))
        .map(|r| r.template_id.to_string())
}

impl Relationship {
    pub fn etag(&self) -> String {
        etag(&self.id, self.version)
    }

    fn touch(&mut self, at: jiff::Timestamp) {
        self.version += 1;
        self.last_modified_date_time = Some(at.to_string());
    }

    /// The relationship as Graph shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
            "@odata.etag": self.etag(),
            "id": self.id,
            "displayName": self.display_name,
            "duration": self.duration,
            "customer": self.customer_tenant_id.as_ref().map(|t| json!({
                "tenantId": t,
                "displayName": self.customer_display_name,
            })),
            "accessDetails": access_details(&self.roles),
            "status": self.status,
            "autoExtendDuration": self.auto_extend_duration,
            "createdDateTime": self.created_date_time,
            "lastModifiedDateTime": self.last_modified_date_time,
            "activatedDateTime": self.activated_date_time,
            "endDateTime": self.end_date_time,
        })
    }

    /// Activated now by the customer's approval: ends `duration` later.
    fn activate(&mut self, at: jiff::Timestamp) {
        let length = gdap::duration_days(&self.duration).unwrap_or(gdap::MAX_DAYS);
        self.status = status::ACTIVE.into();
        self.activated_date_time = Some(at.to_string());
        self.end_date_time = Some((at + days(length)).to_string());
        self.touch(at);
    }
}

fn access_details(roles: &[String]) -> Value {
    json!({
        "unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>(),
    })
}

impl AccessAssignment {
    pub fn etag(&self) -> String {
        etag(&self.id, self.version)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
            "@odata.etag": self.etag(),
            "id": self.id,
            "status": self.status,
            "createdDateTime": self.created_date_time,
            "lastModifiedDateTime": self.last_modified_date_time,
            "accessContainer": {
                "accessContainerId": self.group_id,
                "accessContainerType": "securityGroup",
            },
            "accessDetails": access_details(&self.roles),
        })
    }
}

/// A partner tenant's relationships.
#[derive(Clone, Debug, Default)]
pub struct GdapStore {
    pub relationships: IndexMap<String, Relationship>,
}

impl GdapStore {
    /// From a fixture: ids, role names and dates filled in.
    pub fn from_fixture(relationships: &[Relationship]) -> GdapStore {
        let at = now();
        let mut store = GdapStore::default();
        for r in relationships {
            let mut r = r.clone();
            if r.id.is_empty() {
                r.id = new_relationship_id(r.customer_tenant_id.as_deref());
            }
            r.roles = r
                .roles
                .iter()
                .map(|role| role_id(role).unwrap_or_else(|| role.clone()))
                .collect();
            r.created_date_time.get_or_insert_with(|| at.to_string());
            r.last_modified_date_time
                .get_or_insert_with(|| at.to_string());
            if r.status == status::ACTIVE && r.activated_date_time.is_none() {
                r.activated_date_time = Some(at.to_string());
            }
            if r.status == status::ACTIVE && r.end_date_time.is_none() {
                let length = gdap::duration_days(&r.duration).unwrap_or(gdap::MAX_DAYS);
                r.end_date_time = Some((at + days(length)).to_string());
            }
            for a in &mut r.access_assignments {
                if a.id.is_empty() {
                    a.id = uuid::Uuid::new_v4().to_string();
                }
                a.group_id = a.group_id.to_lowercase();
                a.roles = a
                    .roles
                    .iter()
                    .map(|role| role_id(role).unwrap_or_else(|| role.clone()))
                    .collect();
                a.created_date_time.get_or_insert_with(|| at.to_string());
                a.last_modified_date_time
                    .get_or_insert_with(|| at.to_string());
            }
            store.relationships.insert(r.id.clone(), r);
        }
        store
    }

    pub fn to_fixture(&self) -> Vec<Relationship> {
        self.relationships.values().cloned().collect()
    }

    /// What Graph does in the background by `at`: provisioning finishes (access assignments
    /// pending -> active, deleting -> deleted), a termination completes, and a relationship
    /// past its end is extended by 180 days when it auto-extends, or expires.
    pub fn settle(&mut self, at: jiff::Timestamp) {
        for r in self.relationships.values_mut() {
            let mut changed = false;
            if r.status == status::TERMINATION_REQUESTED || r.status == status::TERMINATING {
                r.status = status::TERMINATED.into();
                r.end_date_time = Some(at.to_string());
                changed = true;
            }
            if r.status == status::APPROVED || r.status == status::ACTIVATING {
                r.activate(at);
            }
            // GRAPH.md ("GDAP details"): approval requests expire after 90 days. What status
            // the relationship takes then is *unconfirmed*; the sandbox says `expired`.
            if r.status == status::APPROVAL_PENDING
                && timestamp(&r.last_modified_date_time)
                    .is_some_and(|locked| at.duration_since(locked) >= days(APPROVAL_WINDOW_DAYS))
            {
                r.status = status::EXPIRED.into();
                changed = true;
            }
            if r.status == status::ACTIVE
                && let Some(mut end) = timestamp(&r.end_date_time)
                && end <= at
            {
                if gdap::check_auto_extend(&r.auto_extend_duration) == Ok(true) {
                    while end <= at {
                        end += days(gdap::AUTO_EXTEND_DAYS);
                    }
                    r.end_date_time = Some(end.to_string());
                } else {
                    r.status = status::EXPIRED.into();
                }
                changed = true;
            }
            for a in &mut r.access_assignments {
                let next = match a.status.as_str() {
                    "pending" => "active",
                    "deleting" => "deleted",
                    _ => continue,
                };
                a.status = next.into();
                a.version += 1;
                a.last_modified_date_time = Some(at.to_string());
            }
            if changed {
                r.touch(at);
            }
        }
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Relationship, GraphError> {
        self.relationships
            .get_mut(id)
            .ok_or_else(|| not_found("delegatedAdminRelationship", id))
    }

    fn name_taken(&self, name: &str, except: Option<&str>) -> bool {
        self.relationships.values().any(|r| {
            Some(r.id.as_str()) != except && r.display_name.eq_ignore_ascii_case(name.trim())
        })
    }

    // ---- controls: what the customer does, and time -------------------------------------

    /// The customer's admin approves (approvalPending -> active, ending `duration` from
    /// now). `customer` names the approving tenant when the relationship named none.
    pub fn approve(
        &mut self,
        id: &str,
        customer: Option<(&str, &str)>,
    ) -> Result<Value, GraphError> {
        let at = now();
        let r = self.get_mut(id)?;
        if r.status != status::APPROVAL_PENDING {
            return Err(bad_request(format!(
                "The relationship is {}, not approvalPending.",
                r.status
            )));
        }
        if let Some((tenant, name)) = customer {
            match &r.customer_tenant_id {
                Some(t) if !t.eq_ignore_ascii_case(tenant) => {
                    return Err(bad_request(format!(
                        "The relationship is for customer {t}, not {tenant}."
                    )));
                }
                _ => {
                    r.customer_tenant_id = Some(tenant.to_lowercase());
                    r.customer_display_name.get_or_insert_with(|| name.into());
                }
            }
        }
        if r.customer_tenant_id.is_none() {
            return Err(bad_request("Name the approving customer's tenant id."));
        }
        r.activate(at);
        Ok(r.to_json())
    }

    /// The customer terminates the relationship (-> terminated, at once).
    pub fn terminate(&mut self, id: &str) -> Result<Value, GraphError> {
        let at = now();
        let r = self.get_mut(id)?;
        if status::is_ended(&r.status) {
            return Err(bad_request(format!("The relationship is {}.", r.status)));
        }
        r.status = status::TERMINATED.into();
        r.end_date_time = Some(at.to_string());
        r.touch(at);
        Ok(r.to_json())
    }

    /// Time passes for one relationship: its dates move `days` into the past, then what
    /// Graph would have done by now happens (it may expire or auto-extend).
    pub fn age(&mut self, id: &str, by_days: i64) -> Result<Value, GraphError> {
        let r = self.get_mut(id)?;
        let shift = |t: &mut Option<String>| {
            if let Some(ts) = timestamp(t) {
                *t = Some((ts - days(by_days)).to_string());
            }
        };
        shift(&mut r.created_date_time);
        shift(&mut r.last_modified_date_time);
        shift(&mut r.activated_date_time);
        shift(&mut r.end_date_time);
        self.settle(now());
        Ok(self.relationships[id].to_json())
    }

    /// The relationship reaches its end now without auto-extension (-> expired).
    pub fn expire(&mut self, id: &str) -> Result<Value, GraphError> {
        let at = now();
        let r = self.get_mut(id)?;
        if r.status != status::ACTIVE {
            return Err(bad_request(format!(
                "The relationship is {}, not active.",
                r.status
            )));
        }
        r.status = status::EXPIRED.into();
        r.end_date_time = Some(at.to_string());
        r.touch(at);
        Ok(r.to_json())
    }

    /// Sets an access assignment's status (e.g. `error`, as when provisioning fails).
    pub fn set_assignment_status(
        &mut self,
        id: &str,
        assignment: &str,
        to: &str,
    ) -> Result<Value, GraphError> {
        if !matches!(to, "pending" | "active" | "deleting" | "deleted" | "error") {
            return Err(bad_request(format!(
                "'{to}' is no access assignment status"
            )));
        }
        let at = now();
        let r = self.get_mut(id)?;
        let a = r
            .access_assignments
            .iter_mut()
            .find(|a| a.id == assignment)
            .ok_or_else(|| not_found("delegatedAdminAccessAssignment", assignment))?;
        a.status = to.into();
        a.version += 1;
        a.last_modified_date_time = Some(at.to_string());
        Ok(a.to_json())
    }
}

/// `{customerTenantId}-{guid}` is how Graph's ids look (the create example's
/// `5d027261-...-8777b240-...`); without a customer, two GUIDs as well.
fn new_relationship_id(customer: Option<&str>) -> String {
    let first = customer
        .map(str::to_lowercase)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    format!("{first}-{}", uuid::Uuid::new_v4())
}

// ---- the Graph endpoints --------------------------------------------------------------------

/// The parts of a write body this endpoint accepts; others are refused, as OData does for a
/// property the type does not have (the message is *unconfirmed*).
fn check_properties(body: &Value, allowed: &[&str], entity: &str) -> Result<(), GraphError> {
    if let Some(fields) = body.as_object() {
        for key in fields.keys() {
            if key == "@odata.type" {
                continue;
            }
            if !allowed.contains(&key.as_str()) {
                return Err(bad_request(format!(
                    "The property '{key}' does not exist on type 'microsoft.graph.{entity}' or cannot be set."
                )));
            }
        }
    }
    Ok(())
}

fn body_object<'a>(call: &Call<'a>) -> Result<&'a Value, GraphError> {
    call.body
        .filter(|b| b.is_object())
        .ok_or_else(|| bad_request("Write requests must contain a JSON object body."))
}

/// `accessDetails.unifiedRoles[].roleDefinitionId`, each a built-in role's template id, none
/// twice, at least one.
fn roles_of(body: &Value) -> Result<Vec<String>, GraphError> {
    let Some(items) = body["accessDetails"]["unifiedRoles"].as_array() else {
        return Err(bad_request(
            "accessDetails.unifiedRoles is required: the roles the partner asks for.",
        ));
    };
    let catalog = RoleCatalog::builtin();
    let mut roles: Vec<String> = Vec::new();
    for item in items {
        let Some(id) = item["roleDefinitionId"].as_str() else {
            return Err(bad_request(
                "Each unifiedRole needs a roleDefinitionId (a role template id).",
            ));
        };
        let Some(role) = catalog.by_template_id(id) else {
            return Err(bad_request(format!(
                "'{id}' is not the template id of a built-in Microsoft Entra role."
            )));
        };
        if roles.iter().any(|r| r == role.template_id) {
            return Err(bad_request(format!("The role '{id}' is listed twice.")));
        }
        roles.push(role.template_id.to_string());
    }
    if roles.is_empty() {
        return Err(bad_request("At least one role is required."));
    }
    Ok(roles)
}

fn string_field<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, GraphError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_request(format!("'{key}' must be a string."))),
    }
}

fn check_name(store: &GdapStore, name: &str, except: Option<&str>) -> Result<(), GraphError> {
    gdap::check_display_name(name).map_err(bad_request)?;
    if store.name_taken(name, except) {
        return Err(GraphError::new(
            409,
            "conflict",
            format!(
                "A delegated admin relationship named '{name}' already exists; display names are unique across the partner's relationships."
            ),
        ));
    }
    Ok(())
}

fn no_extension_with_global_admin(roles: &[String], auto_extend: &str) -> Result<(), GraphError> {
    if gdap::check_auto_extend(auto_extend) == Ok(true)
        && gdap::has_global_administrator(roles.iter().map(String::as_str))
    {
        return Err(bad_request(
            "A relationship that includes the Global Administrator role cannot be automatically extended: set autoExtendDuration to PT0S.",
        ));
    }
    Ok(())
}

/// The `If-Match` a write of the relationship or assignment needs: present and current.
fn check_if_match(call: &Call, current: &str) -> Result<(), GraphError> {
    match call.if_match {
        None => Err(bad_request(
            "The If-Match header is required: send the object's current @odata.etag.",
        )),
        Some(tag) if tag.trim() == current || tag.trim() == "*" => Ok(()),
        Some(_) => Err(GraphError::new(
            412,
            "preconditionFailed",
            "The If-Match etag does not match the object's current @odata.etag: read it again.",
        )),
    }
}

fn created(body: Value, location: String) -> Reply {
    let mut reply = Reply::json(201, body);
    reply.headers.push(("Location".into(), location));
    reply
}

/// Whether the tenant may use the partner APIs: a partner (it has customers, `contracts`)
/// with the Partner Customer Delegated Administration service principal.
fn check_partner(dir: &super::directory::Directory) -> Result<(), GraphError> {
    if dir.contracts.is_empty() && dir.gdap.relationships.is_empty() {
        return Err(GraphError::new(
            403,
            "forbidden",
            "The tenant is not a Microsoft partner tenant: delegated admin relationships are managed from the partner's tenant.",
        ));
    }
    let provisioned = dir.service_principals.values().any(|sp| {
        sp.app_id
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(PARTNER_ADMIN_APP_ID))
    });
    if !provisioned {
        return Err(GraphError::new(
            403,
            "forbidden",
            format!(
                "Application permissions need the Partner Customer Delegated Administration service principal (appId {PARTNER_ADMIN_APP_ID}) in the partner tenant."
            ),
        ));
    }
    Ok(())
}

/// Serves `tenantRelationships/delegatedAdminRelationships[...]` in `dir`, the caller's tenant.
pub fn serve(
    dir: &mut super::directory::Directory,
    call: &Call,
    segments: &[&str],
    collection: impl Fn(Vec<Value>, &str) -> Result<Reply, GraphError>,
) -> Result<Reply, GraphError> {
    check_partner(dir)?;
    let at = now();
    dir.gdap.settle(at);
    let base = format!(
        "{}/v1.0/tenantRelationships/delegatedAdminRelationships",
        call.base_url
    );
    let groups: Vec<String> = dir.groups.keys().cloned().collect();
    let store = &mut dir.gdap;
    match (call.method, segments) {
        ("GET", []) => collection(
            store
                .relationships
                .values()
                .map(Relationship::to_json)
                .collect(),
            "tenantRelationships/delegatedAdminRelationships",
        ),
        ("POST", []) => {
            let body = body_object(call)?;
            check_properties(
                body,
                &[
                    "displayName",
                    "duration",
                    "customer",
                    "accessDetails",
                    "autoExtendDuration",
                ],
                "delegatedAdminRelationship",
            )?;
            let name = string_field(body, "displayName")?
                .ok_or_else(|| bad_request("displayName is required."))?;
            check_name(store, name, None)?;
            let duration = string_field(body, "duration")?
                .ok_or_else(|| bad_request("duration is required (P1D to P2Y)."))?;
            gdap::check_duration(duration).map_err(bad_request)?;
            let auto_extend = string_field(body, "autoExtendDuration")?.unwrap_or("PT0S");
            gdap::check_auto_extend(auto_extend).map_err(bad_request)?;
            let roles = roles_of(body)?;
            no_extension_with_global_admin(&roles, auto_extend)?;
            let (customer, customer_name) = customer_of(body)?;
            let id = new_relationship_id(customer.as_deref());
            let relationship = Relationship {
                id: id.clone(),
                display_name: name.trim().to_string(),
                customer_tenant_id: customer,
                customer_display_name: customer_name,
                roles,
                duration: duration.trim().to_string(),
                auto_extend_duration: auto_extend.trim().to_string(),
                status: status::CREATED.into(),
                created_date_time: Some(at.to_string()),
                last_modified_date_time: Some(at.to_string()),
                activated_date_time: None,
                end_date_time: None,
                version: 1,
                access_assignments: Vec::new(),
            };
            let answer = relationship.to_json();
            store.relationships.insert(id.clone(), relationship);
            Ok(created(answer, format!("{base}/{id}")))
        }
        ("GET", [id]) => Ok(Reply::json(200, store.get_mut(id)?.to_json())),
        ("PATCH", [id]) => {
            let body = body_object(call)?;
            let current = store.get_mut(id)?.clone();
            check_if_match(call, &current.etag())?;
            check_properties(
                body,
                &[
                    "displayName",
                    "duration",
                    "customer",
                    "accessDetails",
                    "autoExtendDuration",
                ],
                "delegatedAdminRelationship",
            )?;
            let mut next = current.clone();
            if let Some(name) = string_field(body, "displayName")? {
                check_name(store, name, Some(id))?;
                next.display_name = name.trim().to_string();
            }
            if let Some(duration) = string_field(body, "duration")? {
                gdap::check_duration(duration).map_err(bad_request)?;
                next.duration = duration.trim().to_string();
            }
            if let Some(auto_extend) = string_field(body, "autoExtendDuration")? {
                gdap::check_auto_extend(auto_extend).map_err(bad_request)?;
                next.auto_extend_duration = auto_extend.trim().to_string();
            }
            if body.get("accessDetails").is_some() {
                next.roles = roles_of(body)?;
            }
            if body.get("customer").is_some() {
                let (customer, name) = customer_of(body)?;
                next.customer_tenant_id = customer;
                next.customer_display_name = name;
            }
            match current.status.as_str() {
                status::CREATED => {}
                status::ACTIVE => {
                    let editable = next.display_name == current.display_name
                        && next.duration == current.duration
                        && next.customer_tenant_id == current.customer_tenant_id
                        && next.customer_display_name == current.customer_display_name;
                    if !editable {
                        return Err(bad_request(
                            "An active relationship's displayName, duration and customer cannot change; only autoExtendDuration and removing Global Administrator can.",
                        ));
                    }
                    if next.roles != current.roles {
                        let without_ga: Vec<String> = current
                            .roles
                            .iter()
                            .filter(|r| !r.eq_ignore_ascii_case(gdap::GLOBAL_ADMINISTRATOR))
                            .cloned()
                            .collect();
                        let mut sorted = next.roles.clone();
                        sorted.sort();
                        let mut expected = without_ga.clone();
                        expected.sort();
                        if sorted != expected || without_ga.len() == current.roles.len() {
                            return Err(bad_request(
                                "The roles of an approved relationship cannot change, except removing Global Administrator: create a new relationship for other roles.",
                            ));
                        }
                        let held = current.access_assignments.iter().any(|a| {
                            a.status != "deleted"
                                && gdap::has_global_administrator(
                                    a.roles.iter().map(String::as_str),
                                )
                        });
                        if held {
                            return Err(bad_request(
                                "Global Administrator is still given by an access assignment: remove it from the access assignments first.",
                            ));
                        }
                    }
                }
                other => {
                    return Err(bad_request(format!(
                        "A relationship can only be updated while it is created (or its autoExtendDuration while active); it is {other}."
                    )));
                }
            }
            no_extension_with_global_admin(&next.roles, &next.auto_extend_duration)?;
            // Removing Global Administrator from an active relationship "indicates a
            // long-running operation" (delegatedadminrelationship-update.md; its operation type
            // is `delegatedAdminRelationshipUpdate`, delegatedadminrelationshipoperation.md):
            // answered `202 Accepted` with the operation's Location and no body. The 202 shape
            // is *unconfirmed* (the page shows only the 200); the sandbox finishes the
            // operation at once.
            let long_running = current.status == status::ACTIVE && next.roles != current.roles;
            next.touch(at);
            let answer = next.to_json();
            store.relationships.insert(id.to_string(), next);
            if long_running {
                let mut reply = Reply::empty(202);
                reply.headers.push((
                    "Location".into(),
                    format!("{base}/{id}/operations/{}", uuid::Uuid::new_v4()),
                ));
                return Ok(reply);
            }
            Ok(Reply::json(200, answer))
        }
        ("DELETE", [id]) => {
            let current = store.get_mut(id)?;
            check_if_match(call, &current.etag())?;
            if current.status != status::CREATED {
                return Err(bad_request(format!(
                    "A relationship can only be deleted while it is created; it is {}. Terminate it instead.",
                    current.status
                )));
            }
            store.relationships.shift_remove(*id);
            Ok(Reply::empty(204))
        }
        ("POST", [id, "requests"]) => {
            let body = body_object(call)?;
            check_properties(body, &["action"], "delegatedAdminRelationshipRequest")?;
            let action = string_field(body, "action")?
                .ok_or_else(|| bad_request("action is required (lockForApproval or terminate)."))?;
            let r = store.get_mut(id)?;
            match action {
                "lockForApproval" => {
                    if r.status != status::CREATED {
                        return Err(bad_request(format!(
                            "Only a created relationship can be locked for approval; it is {}.",
                            r.status
                        )));
                    }
                    r.status = status::APPROVAL_PENDING.into();
                }
                "terminate" => {
                    if !matches!(r.status.as_str(), status::ACTIVE | status::APPROVAL_PENDING) {
                        return Err(bad_request(format!(
                            "Only an active or pending relationship can be terminated; it is {}.",
                            r.status
                        )));
                    }
                    r.status = status::TERMINATION_REQUESTED.into();
                }
                "approve" | "reject" => {
                    return Err(GraphError::new(
                        403,
                        "forbidden",
                        format!(
                            "'{action}' is the customer's action: the customer's admin approves or rejects in the Microsoft 365 admin center."
                        ),
                    ));
                }
                other => {
                    return Err(bad_request(format!(
                        "'{other}' is not a delegatedAdminRelationshipRequestAction (lockForApproval, terminate)."
                    )));
                }
            }
            r.touch(at);
            let request_id = uuid::Uuid::new_v4().to_string();
            Ok(created(
                json!({
                    "@odata.type": "#microsoft.graph.delegatedAdminRelationshipRequest",
                    "id": request_id,
                    "action": action,
                    "status": "created",
                    "createdDateTime": at.to_string(),
                    "lastModifiedDateTime": at.to_string(),
                }),
                format!("{base}/{id}/requests/{request_id}"),
            ))
        }
        ("GET", [id, "accessAssignments"]) => {
            let r = store.get_mut(id)?;
            collection(
                r.access_assignments
                    .iter()
                    .map(AccessAssignment::to_json)
                    .collect(),
                "tenantRelationships/delegatedAdminRelationships/accessAssignments",
            )
        }
        ("POST", [id, "accessAssignments"]) => {
            let body = body_object(call)?;
            check_properties(
                body,
                &["accessContainer", "accessDetails"],
                "delegatedAdminAccessAssignment",
            )?;
            let r = store.get_mut(id)?;
            require_active(r)?;
            let group = container_of(body, &groups)?;
            let roles = roles_of(body)?;
            check_subset(&roles, &r.roles)?;
            if r.access_assignments.iter().any(|a| {
                a.group_id == group && !matches!(a.status.as_str(), "deleted" | "deleting")
            }) {
                return Err(GraphError::new(
                    409,
                    "conflict",
                    format!(
                        "The security group '{group}' already has an access assignment in this relationship."
                    ),
                ));
            }
            let assignment = AccessAssignment {
                id: uuid::Uuid::new_v4().to_string(),
                group_id: group,
                roles,
                status: "pending".into(),
                created_date_time: Some(at.to_string()),
                last_modified_date_time: Some(at.to_string()),
                version: 1,
            };
            let answer = assignment.to_json();
            let location = format!("{base}/{id}/accessAssignments/{}", assignment.id);
            r.access_assignments.push(assignment);
            Ok(created(answer, location))
        }
        ("GET", [id, "accessAssignments", aid]) => {
            let r = store.get_mut(id)?;
            let a = assignment(r, aid)?;
            Ok(Reply::json(200, a.to_json()))
        }
        ("PATCH", [id, "accessAssignments", aid]) => {
            let body = body_object(call)?;
            let r = store.get_mut(id)?;
            require_active(r)?;
            let relationship_roles = r.roles.clone();
            let a = assignment(r, aid)?;
            check_if_match(call, &a.etag())?;
            check_properties(body, &["accessDetails"], "delegatedAdminAccessAssignment")?;
            if a.status != "active" {
                return Err(bad_request(format!(
                    "Only an active access assignment can be updated; it is {}.",
                    a.status
                )));
            }
            let roles = roles_of(body)?;
            check_subset(&roles, &relationship_roles)?;
            a.roles = roles;
            a.status = "pending".into();
            a.version += 1;
            a.last_modified_date_time = Some(at.to_string());
            Ok(Reply::json(200, a.to_json()))
        }
        ("DELETE", [id, "accessAssignments", aid]) => {
            let r = store.get_mut(id)?;
            require_active(r)?;
            let a = assignment(r, aid)?;
            check_if_match(call, &a.etag())?;
            if matches!(a.status.as_str(), "deleting" | "deleted") {
                return Err(not_found("delegatedAdminAccessAssignment", aid));
            }
            a.status = "deleting".into();
            a.version += 1;
            a.last_modified_date_time = Some(at.to_string());
            Ok(Reply::empty(204))
        }
        _ => Err(GraphError::new(
            405,
            "badRequest",
            format!(
                "The sandbox does not support {} {}.",
                call.method, call.path
            ),
        )),
    }
}

fn assignment<'a>(
    r: &'a mut Relationship,
    id: &str,
) -> Result<&'a mut AccessAssignment, GraphError> {
    r.access_assignments
        .iter_mut()
        .find(|a| a.id == id)
        .ok_or_else(|| not_found("delegatedAdminAccessAssignment", id))
}

fn require_active(r: &Relationship) -> Result<(), GraphError> {
    if r.status != status::ACTIVE {
        return Err(bad_request(format!(
            "Access assignments can only be managed on an active relationship; it is {}.",
            r.status
        )));
    }
    Ok(())
}

fn check_subset(roles: &[String], of: &[String]) -> Result<(), GraphError> {
    if let Some(extra) = roles
        .iter()
        .find(|r| !of.iter().any(|o| o.eq_ignore_ascii_case(r)))
    {
        return Err(bad_request(format!(
            "The role '{extra}' is not among the relationship's roles: an access assignment can only give roles of its relationship."
        )));
    }
    Ok(())
}

fn container_of(body: &Value, groups: &[String]) -> Result<String, GraphError> {
    let container = &body["accessContainer"];
    let Some(id) = container["accessContainerId"].as_str() else {
        return Err(bad_request(
            "accessContainer.accessContainerId is required: the partner security group's id.",
        ));
    };
    if container["accessContainerType"].as_str() != Some("securityGroup") {
        return Err(bad_request(
            "accessContainer.accessContainerType must be securityGroup.",
        ));
    }
    let id = id.to_lowercase();
    if !groups.contains(&id) {
        return Err(bad_request(format!(
            "The security group '{id}' does not exist in the partner tenant."
        )));
    }
    Ok(id)
}

fn customer_of(body: &Value) -> Result<(Option<String>, Option<String>), GraphError> {
    match body.get("customer") {
        None | Some(Value::Null) => Ok((None, None)),
        Some(c) if c.is_object() => {
            let tenant = string_field(c, "tenantId")?;
            if let Some(t) = tenant {
                crate::manifest::format::check_guid(t)
                    .map_err(|e| bad_request(format!("customer.tenantId '{t}': {e}")))?;
            }
            Ok((
                tenant.map(str::to_lowercase),
                string_field(c, "displayName")?.map(str::to_string),
            ))
        }
        Some(_) => Err(bad_request(
            "customer must be an object {tenantId, displayName}.",
        )),
    }
}

/// A control on the relationship `key` (id or display name) in whichever partner tenant of
/// `world` holds it: `approve` (the customer named on it approves), `terminate`, `expire`,
/// `age` (`days`). What `tenantform sandbox gdap` and tests of saved worlds use.
pub fn control(
    world: &mut super::World,
    key: &str,
    action: &str,
    days: Option<i64>,
) -> Result<Value, GraphError> {
    let holder = world.tenants.iter_mut().find_map(|(_, dir)| {
        let id = dir
            .gdap
            .relationships
            .values()
            .find(|r| r.id == key || r.display_name.eq_ignore_ascii_case(key.trim()))
            .map(|r| r.id.clone())?;
        Some((dir, id))
    });
    let Some((dir, id)) = holder else {
        return Err(not_found("delegatedAdminRelationship", key));
    };
    let store = &mut dir.gdap;
    match action {
        "approve" => store.approve(&id, None),
        "terminate" => store.terminate(&id),
        "expire" => store.expire(&id),
        "age" => store.age(&id, days.unwrap_or(0)),
        other => Err(bad_request(format!(
            "no control '{other}' (approve, terminate, expire, age)"
        ))),
    }
}
