//! Service principals and app role assignments (issue 17, "Consent through GDAP"): every
//! tenant has Microsoft Graph's service principal with its app roles (the application
//! permissions of `data/graph_app_roles.tsv`), and each fixture app's service principal
//! exactly when the tenant has consented (`Directory::consent`), its app role assignments
//! on Graph's principal being the permissions granted there (`Directory::permissions`, or
//! the app's own roles when the fixture says nothing). Those two fields stay the one source
//! of truth: tokens' `roles` and `appRoleAssignedTo` are both read from them, so a grant
//! made here is in the next token, as in Entra.
//!
//! Shapes from Microsoft Learn: serviceprincipal-list.md, serviceprincipal-get.md (also by
//! `servicePrincipals(appId='...')`), serviceprincipal-post-serviceprincipals.md,
//! serviceprincipal-list-approleassignedto.md, serviceprincipal-post-approleassignedto.md,
//! serviceprincipal-delete-approleassignedto.md.

use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::directory::GraphError;
use super::graph::{Call, Query, Reply};
use super::odata::project;
use super::world::World;
use crate::consent::{GRAPH_APP_ID, app_role_id, app_role_name, app_roles};

/// A stable GUID-shaped id for `what` in `tenant` (the same every run, so a saved world and a
/// later process agree on it without storing it).
fn derived_guid(tenant: &str, what: &str) -> String {
    let hash = sha2::Sha256::digest(format!("{tenant}/{what}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Microsoft Graph's service principal id in `tenant`.
pub fn graph_principal_id(tenant: &str) -> String {
    derived_guid(tenant, GRAPH_APP_ID)
}

/// The service principal id of the app `client_id` in `tenant` (it exists when consented).
pub fn app_principal_id(tenant: &str, client_id: &str) -> String {
    derived_guid(tenant, &client_id.to_lowercase())
}

/// An app role assignment's id: Graph's are 43-character base64url strings.
fn assignment_id(tenant: &str, principal: &str, app_role: &str) -> String {
    let hash = sha2::Sha256::digest(format!("{tenant}/{principal}/{app_role}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
}

fn graph_principal_json(tenant: &str) -> Value {
    let roles: Vec<Value> = app_roles()
        .iter()
        .map(|(name, id)| {
            json!({
                "id": id,
                "value": name,
                "displayName": name,
                "description": name,
                "allowedMemberTypes": ["Application"],
                "isEnabled": true,
                "origin": "Application",
            })
        })
        .collect();
    json!({
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": graph_principal_id(tenant),
        "appId": GRAPH_APP_ID,
        "displayName": "Microsoft Graph",
        "appDisplayName": "Microsoft Graph",
        "accountEnabled": true,
        "servicePrincipalType": "Application",
        "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        "appRoles": roles,
    })
}

fn app_principal_json(tenant: &str, client_id: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": app_principal_id(tenant, client_id),
        "appId": client_id,
        "displayName": "tenantform",
        "appDisplayName": "tenantform",
        "accountEnabled": true,
        "servicePrincipalType": "Application",
        "appRoles": [],
    })
}

/// Every service principal of the tenant: Graph's, the consented apps', the fixture's own.
fn principals(world: &World, tenant: &str) -> Vec<Value> {
    let dir = &world.tenants[tenant];
    let mut out = vec![graph_principal_json(tenant)];
    if dir.consent {
        out.extend(
            world
                .apps
                .iter()
                .map(|a| app_principal_json(tenant, &a.client_id)),
        );
    }
    out.extend(dir.service_principals.values().map(|sp| {
        json!({
            "@odata.type": "#microsoft.graph.servicePrincipal",
            "id": sp.id,
            "appId": sp.app_id,
            "displayName": sp.display_name,
            "accountEnabled": true,
            "servicePrincipalType": "Application",
            "appRoles": [],
        })
    }));
    out
}

/// The permissions granted to the apps in `tenant` (the one source of truth, see the module).
fn granted(world: &World, tenant: &str, client_id: &str) -> Vec<String> {
    let dir = &world.tenants[tenant];
    match &dir.permissions {
        Some(list) => list.clone(),
        None => world
            .apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .map(|a| a.roles.clone())
            .unwrap_or_default(),
    }
}

/// The app role assignments made to Graph's principal in `tenant`: each consented app's
/// granted permissions that Graph's app roles define.
fn assignments(world: &World, tenant: &str) -> Vec<Value> {
    let dir = &world.tenants[tenant];
    if !dir.consent {
        return Vec::new();
    }
    let graph = graph_principal_id(tenant);
    let mut out = Vec::new();
    for app in &world.apps {
        let principal = app_principal_id(tenant, &app.client_id);
        for permission in granted(world, tenant, &app.client_id) {
            let Some(role) = app_role_id(&permission) else {
                continue;
            };
            out.push(json!({
                "id": assignment_id(tenant, &principal, role),
                "appRoleId": role,
                "principalId": principal,
                "principalType": "ServicePrincipal",
                "principalDisplayName": "tenantform",
                "resourceId": graph,
                "resourceDisplayName": "Microsoft Graph",
                "createdDateTime": super::now(),
                "deletedDateTime": null,
            }));
        }
    }
    out
}

/// `servicePrincipals(appId='...')`: the app id inside the key, if the segment is one.
fn alternate_key(segment: &str) -> Option<String> {
    let inner = segment
        .strip_prefix("servicePrincipals(appId=")?
        .strip_suffix(')')?;
    let inner = inner.trim_matches('\'');
    Some(inner.replace("''", "'"))
}

/// The service principal a path's first segments name: `servicePrincipals/{id}` or
/// `servicePrincipals(appId='...')`; the rest of the segments.
fn find<'a>(
    world: &World,
    tenant: &str,
    segments: &'a [&'a str],
) -> Result<(Value, &'a [&'a str]), GraphError> {
    let all = principals(world, tenant);
    let (found, rest) = match segments {
        [first, rest @ ..] if alternate_key(first).is_some() => {
            let app_id = alternate_key(first).expect("checked");
            (
                all.into_iter().find(|sp| {
                    sp["appId"]
                        .as_str()
                        .is_some_and(|a| a.eq_ignore_ascii_case(&app_id))
                }),
                rest,
            )
        }
        ["servicePrincipals", id, rest @ ..] => (
            all.into_iter().find(|sp| {
                sp["id"]
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case(id))
            }),
            rest,
        ),
        _ => {
            return Err(GraphError::bad_request(
                "Unsupported service principal path.",
            ));
        }
    };
    let key = segments.first().copied().unwrap_or_default();
    let name = match segments {
        ["servicePrincipals", id, ..] => *id,
        _ => key,
    };
    found
        .map(|sp| (sp, rest))
        .ok_or_else(|| GraphError::not_found(name))
}

/// Serves `/servicePrincipals...` for `call` (already authorized).
pub fn serve(world: &mut World, call: &Call, segments: &[&str]) -> Result<Reply, GraphError> {
    let tenant = world
        .resolve_tenant(call.tenant)
        .ok_or_else(|| GraphError::not_found(call.tenant))?;
    let query = Query::parse(call.query)?;
    match (call.method, segments) {
        ("GET", ["servicePrincipals"]) => {
            let filter = query
                .filter
                .as_deref()
                .map(super::odata::Filter::parse)
                .transpose()?;
            let items: Vec<Value> = principals(world, &tenant)
                .into_iter()
                .filter(|sp| filter.as_ref().is_none_or(|f| f.matches(sp)))
                .map(|sp| project(sp, query.select.as_deref(), None))
                .collect();
            Ok(super::graph::collection(
                items,
                &query,
                call,
                "servicePrincipals",
            ))
        }
        ("POST", ["servicePrincipals"]) => create(world, &tenant, call),
        ("GET", _) => {
            let (sp, rest) = find(world, &tenant, segments)?;
            match rest {
                [] => Ok(Reply::json(200, project(sp, query.select.as_deref(), None))),
                ["appRoleAssignedTo"] => {
                    let items = if sp["appId"] == GRAPH_APP_ID {
                        assignments(world, &tenant)
                    } else {
                        Vec::new()
                    };
                    let filter = query
                        .filter
                        .as_deref()
                        .map(super::odata::Filter::parse)
                        .transpose()?;
                    let items = items
                        .into_iter()
                        .filter(|a| filter.as_ref().is_none_or(|f| f.matches(a)))
                        .map(|a| project(a, query.select.as_deref(), None))
                        .collect();
                    Ok(super::graph::collection(
                        items,
                        &query,
                        call,
                        &format!("servicePrincipals('{}')/appRoleAssignedTo", sp["id"]),
                    ))
                }
                _ => Err(GraphError::bad_request(
                    "Unsupported service principal path.",
                )),
            }
        }
        ("POST", _) => {
            let (sp, rest) = find(world, &tenant, segments)?;
            if rest != ["appRoleAssignedTo"] {
                return Err(GraphError::bad_request(
                    "Unsupported service principal path.",
                ));
            }
            grant(world, &tenant, &sp, call)
        }
        ("DELETE", _) => {
            let (sp, rest) = find(world, &tenant, segments)?;
            let ["appRoleAssignedTo", id] = rest else {
                return Err(GraphError::bad_request(
                    "Unsupported service principal path.",
                ));
            };
            let found = assignments(world, &tenant)
                .into_iter()
                .filter(|_| sp["appId"] == GRAPH_APP_ID)
                .find(|a| a["id"] == *id)
                .ok_or_else(|| GraphError::not_found(id))?;
            let permission = app_role_name(found["appRoleId"].as_str().unwrap_or(""))
                .expect("listed assignments have known roles");
            let app = app_of(world, &tenant, found["principalId"].as_str().unwrap_or(""));
            let mut list = granted(world, &tenant, &app);
            list.retain(|p| p != permission);
            world.tenants[&tenant].permissions = Some(list);
            Ok(Reply::empty(204))
        }
        _ => Err(GraphError::new(
            405,
            "Request_BadRequest",
            "The HTTP method is not supported on this resource.",
        )),
    }
}

/// The client id of the app whose principal is `principal_id` in `tenant` (empty if none).
fn app_of(world: &World, tenant: &str, principal_id: &str) -> String {
    world
        .apps
        .iter()
        .find(|a| app_principal_id(tenant, &a.client_id).eq_ignore_ascii_case(principal_id))
        .map(|a| a.client_id.clone())
        .unwrap_or_default()
}

/// `POST /servicePrincipals {appId}`: the app's principal, with no permission granted yet.
fn create(world: &mut World, tenant: &str, call: &Call) -> Result<Reply, GraphError> {
    let body = call.body.filter(|b| b.is_object()).ok_or_else(|| {
        GraphError::bad_request("Write requests must contain a JSON object body.")
    })?;
    let app_id = body["appId"].as_str().ok_or_else(|| {
        GraphError::bad_request("Property 'appId' is required when creating a service principal.")
    })?;
    let known = world
        .apps
        .iter()
        .any(|a| a.client_id.eq_ignore_ascii_case(app_id));
    let exists =
        app_id.eq_ignore_ascii_case(GRAPH_APP_ID) || (known && world.tenants[tenant].consent);
    if exists {
        // *Unconfirmed* status and wording for a second principal of the same app.
        return Err(GraphError::new(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "Another object with the same value for property servicePrincipalNames already exists.",
        ));
    }
    if !known {
        return Err(GraphError::bad_request(format!(
            "The appId '{app_id}' of the service principal does not reference a valid application object."
        )));
    }
    let dir = &mut world.tenants[tenant];
    dir.consent = true;
    // A new principal holds no grant: consent is the app role assignments that follow.
    dir.permissions = Some(Vec::new());
    Ok(Reply::json(201, app_principal_json(tenant, app_id)))
}

/// `POST /servicePrincipals/{resource}/appRoleAssignedTo {principalId, resourceId, appRoleId}`.
fn grant(
    world: &mut World,
    tenant: &str,
    resource: &Value,
    call: &Call,
) -> Result<Reply, GraphError> {
    let body = call.body.filter(|b| b.is_object()).ok_or_else(|| {
        GraphError::bad_request("Write requests must contain a JSON object body.")
    })?;
    let field = |name: &str| {
        body[name]
            .as_str()
            .map(str::to_lowercase)
            .ok_or_else(|| GraphError::bad_request(format!("Property '{name}' is required.")))
    };
    let (principal, resource_id, role) = (
        field("principalId")?,
        field("resourceId")?,
        field("appRoleId")?,
    );
    if resource["id"].as_str() != Some(resource_id.as_str()) {
        return Err(GraphError::bad_request(
            "The resourceId in the request body does not match the service principal of the request URL.",
        ));
    }
    let defined = resource["appRoles"]
        .as_array()
        .is_some_and(|roles| roles.iter().any(|r| r["id"] == role.as_str()));
    let permission = app_role_name(&role).filter(|_| defined).ok_or_else(|| {
        GraphError::bad_request("Permission being assigned was not found on application")
    })?;
    let app = app_of(world, tenant, &principal);
    if app.is_empty() || !world.tenants[tenant].consent {
        return Err(GraphError::not_found(&principal));
    }
    let mut list = granted(world, tenant, &app);
    if list.iter().any(|p| p == permission) {
        // Graph's answer to a repeated grant (reported in microsoft-graph-docs issues).
        return Err(GraphError::bad_request(
            "Permission being assigned already exists on the object",
        ));
    }
    list.push(permission.to_string());
    world.tenants[tenant].permissions = Some(list);
    let made = assignments(world, tenant)
        .into_iter()
        .find(|a| a["appRoleId"] == role.as_str() && a["principalId"] == principal.as_str())
        .expect("just granted");
    Ok(Reply::json(201, made))
}

/// Whether a request is a grant or removal of one of Microsoft Graph's app roles in `tenant`
/// (only Privileged Role Administrator or Global Administrator may, in a person's name).
pub fn is_graph_grant(tenant: &str, method: &str, segments: &[&str]) -> bool {
    let graph = graph_principal_id(tenant);
    match (method, segments) {
        ("POST" | "DELETE", ["servicePrincipals", id, "appRoleAssignedTo", ..]) => {
            id.eq_ignore_ascii_case(&graph)
        }
        ("POST" | "DELETE", [key, "appRoleAssignedTo", ..]) => {
            alternate_key(key).is_some_and(|a| a.eq_ignore_ascii_case(GRAPH_APP_ID))
        }
        _ => false,
    }
}
