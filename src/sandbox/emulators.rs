//! Local stand-ins for the endpoints secretless credentials come from, served by the sandbox
//! under `/_emulators/...`: GitHub Actions' OIDC token endpoint, Azure DevOps' service
//! connection OIDC endpoint, IMDS and App Service's managed identity endpoint. Each checks
//! what the real one checks (its header, its parameters) and issues an unsigned JWT whose
//! issuer and subject the sandbox app trusts by default (see
//! `fixture::default_federated_credentials`). Tests point tenantform's variables at them
//! (`ACTIONS_ID_TOKEN_REQUEST_URL=<base>/_emulators/github/token?api-version=2.0`, ...).
//!
//! Shapes: GRAPH.md, "Credentials without secrets (for pipelines and people)".

use std::collections::HashMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fixture::SANDBOX_PARTNER_TENANT_ID;

pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const GITHUB_SUBJECT: &str = "repo:msp/tenants:ref:refs/heads/main";
/// ACTIONS_ID_TOKEN_REQUEST_TOKEN's value for the emulator (sandbox only).
pub const GITHUB_REQUEST_TOKEN: &str = "sandbox-actions-request-token";

/// The Azure DevOps organization id in the issuer (`https://vstoken.dev.azure.com/<org id>`).
pub const ADO_ORGANIZATION_ID: &str = "5e4d3c2b-0000-4000-8000-00000000ad00";
/// A workload identity service connection's subject: `sc://<org>/<project>/<connection>`.
pub const ADO_SUBJECT: &str = "sc://msp/tenants/tenantform-wif";
pub const ADO_SERVICE_CONNECTION_ID: &str = "6f5e4d3c-0000-4000-8000-00000000c0ee";
/// SYSTEM_ACCESSTOKEN's value for the emulator (sandbox only).
pub const ADO_ACCESS_TOKEN: &str = "sandbox-system-accesstoken";

/// The MSP's user-assigned managed identity in the partner tenant.
pub const MI_CLIENT_ID: &str = "7a6b5c4d-0000-4000-8000-0000000000c1";
pub const MI_OBJECT_ID: &str = "7a6b5c4d-0000-4000-8000-0000000000b1";
/// IDENTITY_HEADER and MSI_SECRET values for the emulator (sandbox only).
pub const IDENTITY_HEADER: &str = "sandbox-identity-header";
pub const MSI_SECRET: &str = "sandbox-msi-secret";

pub fn ado_issuer() -> String {
    format!("https://vstoken.dev.azure.com/{ADO_ORGANIZATION_ID}")
}

/// A managed identity's tokens are issued by its home tenant's v2.0 authority.
pub fn mi_issuer() -> String {
    format!("https://login.microsoftonline.com/{SANDBOX_PARTNER_TENANT_ID}/v2.0")
}

/// What the emulators issue; tests change it with `PUT /_sandbox/emulators` (an untrusted
/// subject, a short lifetime).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Emulators {
    pub github_subject: String,
    pub ado_subject: String,
    pub managed_identity_object_id: String,
    /// Seconds an issued token lives (GitHub's live about 5 to 10 minutes).
    pub lifetime_secs: i64,
    /// Every token issued, so tests can look for them where they must not be.
    #[serde(skip_deserializing)]
    pub issued: Vec<String>,
}

impl Default for Emulators {
    fn default() -> Self {
        Emulators {
            github_subject: GITHUB_SUBJECT.into(),
            ado_subject: ADO_SUBJECT.into(),
            managed_identity_object_id: MI_OBJECT_ID.into(),
            lifetime_secs: 600,
            issued: Vec::new(),
        }
    }
}

impl Emulators {
    /// `PUT /_sandbox/emulators`: the fields given replace the current ones.
    pub fn update(&mut self, patch: &Value) -> Result<(), String> {
        let mut current = serde_json::to_value(&*self).map_err(|e| e.to_string())?;
        let Some(fields) = patch.as_object() else {
            return Err("expected a JSON object".into());
        };
        for (k, v) in fields {
            if current.get(k).is_none() || k == "issued" {
                return Err(format!("unknown field `{k}`"));
            }
            current[k] = v.clone();
        }
        let issued = std::mem::take(&mut self.issued);
        *self = serde_json::from_value(current).map_err(|e| e.to_string())?;
        self.issued = issued;
        Ok(())
    }

    fn mint(&mut self, claims: Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwt = format!(
            "{}.{}.{}",
            b64.encode(br#"{"alg":"RS256","typ":"JWT","kid":"sandbox"}"#),
            b64.encode(claims.to_string()),
            b64.encode(b"sandbox-unsigned")
        );
        self.issued.push(jwt.clone());
        jwt
    }

    fn times(&self) -> (i64, i64) {
        let now = jiff::Timestamp::now().as_second();
        (now, now + self.lifetime_secs)
    }
}

/// A header's value, case-insensitively by name.
fn header<'a>(headers: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `GET /_emulators/github/token?...&audience=A` with `Authorization: bearer <request token>`:
/// `{"count": 1, "value": <JWT>}` as GitHub's runtime answers.
pub fn github(
    e: &mut Emulators,
    query: &HashMap<String, String>,
    headers: &HashMap<String, String>,
) -> (u16, Value) {
    let authorized = header(headers, "authorization")
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token == GITHUB_REQUEST_TOKEN
        });
    if !authorized {
        return (401, json!({"message": "Unauthorized"}));
    }
    let (now, exp) = e.times();
    let audience = query
        .get("audience")
        .cloned()
        .unwrap_or_else(|| "https://github.com/msp".into());
    let jwt = e.mint(json!({
        "iss": GITHUB_ISSUER,
        "sub": e.github_subject,
        "aud": audience,
        "repository": "msp/tenants",
        "ref": "refs/heads/main",
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": exp,
    }));
    (200, json!({"count": 1, "value": jwt}))
}

/// `POST /_emulators/azure-devops/oidctoken?api-version=7.1&serviceConnectionId=ID` with
/// `Authorization: Bearer $SYSTEM_ACCESSTOKEN`: `{"oidcToken": <JWT>}`.
pub fn azure_devops(
    e: &mut Emulators,
    query: &HashMap<String, String>,
    headers: &HashMap<String, String>,
) -> (u16, Value) {
    let authorized = header(headers, "authorization")
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token == ADO_ACCESS_TOKEN
        });
    if !authorized {
        return (
            401,
            json!({"message": "TF400813: The user '' is not authorized to access this resource."}),
        );
    }
    if !query
        .get("api-version")
        .is_some_and(|v| v.starts_with("7.1"))
    {
        return (
            400,
            json!({"message": "The requested REST API version is not supported by this endpoint."}),
        );
    }
    if query.get("serviceConnectionId").map(String::as_str) != Some(ADO_SERVICE_CONNECTION_ID) {
        return (
            404,
            json!({"message": format!("Service connection '{}' was not found.", query.get("serviceConnectionId").map(String::as_str).unwrap_or(""))}),
        );
    }
    let (now, exp) = e.times();
    let jwt = e.mint(json!({
        "iss": ado_issuer(),
        "sub": e.ado_subject,
        "aud": crate::graph::credentials::FEDERATED_AUDIENCE,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": exp,
    }));
    (200, json!({"oidcToken": jwt}))
}

/// IMDS (`/_emulators/imds/metadata/identity/oauth2/token`) and App Service
/// (`/_emulators/app-service/msi/token`): a managed identity's token for `resource`.
pub fn managed_identity(
    e: &mut Emulators,
    app_service: bool,
    query: &HashMap<String, String>,
    headers: &HashMap<String, String>,
) -> (u16, Value) {
    let bad = |message: &str| {
        (
            400,
            json!({"error": "invalid_request", "error_description": message}),
        )
    };
    let version = query.get("api-version").map(String::as_str).unwrap_or("");
    let (ok_header, id_param) = match (app_service, version) {
        (false, "2018-02-01") => (
            header(headers, "metadata").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            "client_id",
        ),
        (true, "2019-08-01") => (
            header(headers, "x-identity-header") == Some(IDENTITY_HEADER),
            "client_id",
        ),
        (true, "2017-09-01") => (header(headers, "secret") == Some(MSI_SECRET), "clientid"),
        _ => return bad("The api-version is not supported."),
    };
    if !ok_header {
        return if app_service {
            (
                401,
                json!({"statusCode": 401, "message": "Unauthorized request. Please check the identity header."}),
            )
        } else {
            bad("Required metadata header not specified")
        };
    }
    let Some(resource) = query.get("resource") else {
        return bad("Required query variable 'resource' is missing");
    };
    if query.get(id_param).map(String::as_str) != Some(MI_CLIENT_ID) {
        return bad("Identity not found");
    }
    let (now, exp) = e.times();
    let jwt = e.mint(json!({
        "iss": mi_issuer(),
        "sub": e.managed_identity_object_id,
        "oid": e.managed_identity_object_id,
        "aud": resource,
        "appid": MI_CLIENT_ID,
        "tid": SANDBOX_PARTNER_TENANT_ID,
        "nbf": now,
        "iat": now,
        "exp": exp,
    }));
    let expires_on = if version == "2017-09-01" {
        // The 2017 API wrote a date, not a number.
        jiff::Timestamp::from_second(exp)
            .map(|t| t.strftime("%m/%d/%Y %I:%M:%S %p +00:00").to_string())
            .unwrap_or_default()
    } else {
        exp.to_string()
    };
    (
        200,
        json!({
            "access_token": jwt,
            "client_id": MI_CLIENT_ID,
            "expires_in": (exp - now).to_string(),
            "expires_on": expires_on,
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}
