//! The token endpoint: `POST /{tenant}/oauth2/v2.0/token` with client credentials, a client
//! secret or a client assertion, answering like Entra (including its AADSTS errors).
//!
//! Assertions are checked for their claims (issuer, subject, audience, lifetime), not their
//! signature: the sandbox has no certificates to trust, and says so.

use std::collections::HashMap;
use std::time::Instant;

use base64::Engine;
use serde_json::{Value, json};

use super::world::{Delegation, Token, World};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub use crate::graph::credentials::FEDERATED_AUDIENCE;
use crate::graph::credentials::jwt_claims;

/// An AADSTS error in Entra's body shape.
pub fn aadsts(status: u16, error: &str, code: u32, message: &str) -> (u16, Value) {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    let now = super::now();
    (
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {now}"),
            "error_codes": [code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// Handles a token request for `tenant_key` (GUID or domain); returns status and body.
pub fn token(
    world: &mut World,
    tenant_key: &str,
    form: &HashMap<String, String>,
    token_url: &str,
) -> (u16, Value, Option<String>) {
    let with_tenant = |(s, v): (u16, Value)| (s, v, None);
    let Some(tenant_id) = world.resolve_tenant(tenant_key) else {
        return with_tenant(aadsts(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    };
    let some_tenant = |(s, v): (u16, Value)| (s, v, Some(tenant_id.clone()));
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return some_tenant(aadsts(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ));
    }
    if !form.get("scope").is_some_and(|s| s.ends_with("/.default")) {
        return some_tenant(aadsts(
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        ));
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let dir = &world.tenants[&tenant_id];
    let app = world
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(&client_id));
    let Some(app) = app.filter(|_| dir.consent) else {
        return some_tenant(aadsts(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                dir.display_name
            ),
        ));
    };
    match (
        form.get("client_secret"),
        form.get("client_assertion"),
        form.get("client_assertion_type"),
    ) {
        (Some(secret), None, _) => {
            if *secret != app.client_secret {
                return some_tenant(aadsts(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                ));
            }
        }
        (None, Some(assertion), Some(kind)) if kind == JWT_BEARER => {
            let Some(claims) = jwt_claims(assertion) else {
                return some_tenant(aadsts(
                    401,
                    "invalid_client",
                    50027,
                    "JWT token is invalid or malformed.",
                ));
            };
            let now = jiff::Timestamp::now().as_second();
            let exp = claims["exp"].as_i64().unwrap_or(0);
            let nbf = claims["nbf"].as_i64().unwrap_or(0);
            if exp < now || nbf > now + 300 {
                return some_tenant(aadsts(
                    401,
                    "invalid_client",
                    700024,
                    "Client assertion is not within its valid time range.",
                ));
            }
            let aud = claims["aud"].as_str().unwrap_or("");
            let iss = claims["iss"].as_str().unwrap_or("");
            let sub = claims["sub"].as_str().unwrap_or("");
            // The app's own assertion (a certificate): iss = sub = its client id.
            let own = iss == client_id && sub == client_id;
            if own && aud != token_url {
                return some_tenant(aadsts(
                    401,
                    "invalid_client",
                    700027,
                    "Client assertion failed signature validation or has the wrong audience, issuer or subject.",
                ));
            }
            // Anything else is a federated assertion: Entra accepts it only when a federated
            // identity credential of the app has its issuer and subject (exact match) and
            // its audience. Otherwise AADSTS70021, whose message names the three (as
            // reported in Azure/azure-workload-identity#340 and Azure DevOps' WIF
            // troubleshooting page).
            if !own
                && !app.federated_credentials.iter().any(|f| {
                    f.issuer == iss && f.subject == sub && f.audiences.iter().any(|a| a == aud)
                })
            {
                return some_tenant(aadsts(
                    400,
                    "invalid_request",
                    70021,
                    &format!(
                        "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
                    ),
                ));
            }
        }
        _ => {
            return some_tenant(aadsts(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
    }
    let lifetime = world.token_lifetime;
    // The roles claim holds what admin consent granted in this tenant, as Entra's does.
    let roles: Vec<String> = match &dir.permissions {
        Some(granted) => granted.clone(),
        None => app.roles.clone(),
    };
    let client_id = app.client_id.clone();
    // JWT-shaped like Entra's (unsigned): clients can read the tenant and the app's roles.
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{tenant_id}/"),
        "tid": tenant_id,
        "appid": client_id,
        "roles": roles,
        "exp": jiff::Timestamp::now().as_second() + lifetime.as_secs() as i64,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
    });
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let access_token = format!(
        "{}.{}.sandbox",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    world.tokens.insert(
        access_token.clone(),
        Token {
            tenant_id: tenant_id.clone(),
            client_id,
            expires: Instant::now() + lifetime,
            roles,
            delegated: None,
        },
    );
    (
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": access_token,
        }),
        Some(tenant_id),
    )
}

/// The Graph scopes a person's token gets when the caller names none: those the Azure CLI's
/// first-party app (04b07795-8ddb-461a-bbee-02f9e1bf7b46) is pre-authorized for on Microsoft
/// Graph, which is what `az account get-access-token --resource-type ms-graph` carries in
/// `scp`, not the scopes tenantform's requests list as least privileged.
/// Sources: the list is the one the review of issue 17 gave (a decoded CLI token); I found no
/// public copy of the whole list, so beyond the two facts below it is *unconfirmed*, and
/// Graph's 403 (not this list) decides what a person may read. Confirmed: such Graph tokens
/// carry `Directory.AccessAsUser.All` and still fail requests the person could make in the
/// portal, e.g. reading a policy (Azure/azure-powershell#24334, Az's own first-party token);
/// the CLI's token has no `RoleManagement.ReadWrite.Directory` (Graph answers
/// `PermissionScopeNotGranted` naming it for PIM requests: Azure/azure-cli#26471, #33778).
pub const DEFAULT_DELEGATED_SCOPES: &[&str] = &[
    "AuditLog.Read.All",
    "Directory.AccessAsUser.All",
    "email",
    "Group.ReadWrite.All",
    "openid",
    "profile",
    "User.ReadWrite.All",
];

/// A partner engineer's access to a customer tenant through GDAP: the partner tenant the
/// person belongs to and the relationship's roles they hold there (through its access
/// assignments).
#[derive(Clone, Debug)]
pub struct Gdap {
    pub partner_tenant: String,
    pub roles: Vec<String>,
}

/// A person's (delegated) token for `user` (UPN, mail or object id) in `tenant_key`, as the
/// Azure CLI would get it: `scp` holds `scopes`, `wids` the template ids of the directory
/// roles assigned to the user there (tenant-wide), no `roles`. Answered in the shape `az
/// account get-access-token --output json` prints. Unknown tenant or user: the AADSTS error
/// Entra gives at sign-in.
/// With `gdap`, the person is a partner engineer signing in to a customer tenant through a
/// GDAP relationship: looked up in the partner tenant, with `wids` the relationship's roles
/// (names or template ids) instead of roles assigned in the customer's directory (the
/// customer's `tid`, the partner user's `oid`). That Entra puts a partner user's GDAP roles
/// into `wids` of the customer tenant's token is *unconfirmed*: I found no source saying so
/// (the `wids` claim is documented for roles assigned in the tenant; GDAP roles come through
/// the relationship's security groups). tenantform only explains with `wids`; Graph's 403
/// decides.
pub fn delegated_token(
    world: &mut World,
    tenant_key: &str,
    user: &str,
    scopes: &[String],
    gdap: Option<&Gdap>,
) -> (u16, Value) {
    let Some(tenant_id) = world.resolve_tenant(tenant_key) else {
        return aadsts(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    };
    let home_id = match gdap {
        Some(g) => match world.resolve_tenant(&g.partner_tenant) {
            Some(id) => id,
            None => {
                return aadsts(
                    400,
                    "invalid_request",
                    90002,
                    &format!("Tenant '{}' not found.", g.partner_tenant),
                );
            }
        },
        None => tenant_id.clone(),
    };
    let dir = &world.tenants[&home_id];
    let wanted = user.to_lowercase();
    let Some(found) = dir.users.values().find(|u| {
        u.id.to_lowercase() == wanted
            || u.user_principal_name.to_lowercase() == wanted
            || u.mail
                .as_deref()
                .is_some_and(|m| m.to_lowercase() == wanted)
    }) else {
        return aadsts(
            400,
            "invalid_grant",
            50034,
            &format!(
                "The user account {user} does not exist in the {home_id} directory. To sign into this application, the account must be added to the directory."
            ),
        );
    };
    let mut wids: Vec<String> = match gdap {
        Some(g) => {
            let catalog = crate::roles::RoleCatalog::builtin();
            g.roles
                .iter()
                .map(|r| {
                    catalog
                        .by_name(r)
                        .map_or_else(|| r.to_lowercase(), |role| role.template_id.to_string())
                })
                .collect()
        }
        None => dir
            .role_assignments
            .values()
            .filter(|ra| ra.principal_id == found.id && ra.directory_scope_id == "/")
            .map(|ra| ra.role_definition_id.to_lowercase())
            .collect(),
    };
    wids.sort();
    wids.dedup();
    let scopes: Vec<String> = if scopes.is_empty() {
        DEFAULT_DELEGATED_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        scopes.to_vec()
    };
    let lifetime = world.token_lifetime;
    let now = jiff::Timestamp::now().as_second();
    let exp = now + lifetime.as_secs() as i64;
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{tenant_id}/"),
        "tid": tenant_id,
        "appid": crate::graph::credentials::AZURE_CLI_APP_ID,
        "oid": found.id,
        "upn": found.user_principal_name,
        "scp": scopes.join(" "),
        "wids": wids,
        "exp": exp,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
    });
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let access_token = format!(
        "{}.{}.sandbox",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    let user_id = found.id.clone();
    world.tokens.insert(
        access_token.clone(),
        Token {
            tenant_id: tenant_id.clone(),
            client_id: crate::graph::credentials::AZURE_CLI_APP_ID.to_string(),
            expires: Instant::now() + lifetime,
            roles: Vec::new(),
            delegated: Some(Delegation {
                user_id,
                scopes,
                wids,
            }),
        },
    );
    let local = jiff::Timestamp::from_second(exp)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S.000000")
                .to_string()
        })
        .unwrap_or_default();
    (
        200,
        json!({
            "accessToken": access_token,
            "expiresOn": local,
            "expires_on": exp,
            "subscription": "",
            "tenant": tenant_id,
            "tokenType": "Bearer",
        }),
    )
}
