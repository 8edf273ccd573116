//! Reading a tenant's sign-in security posture (`crate::posture`) in one `$batch` of two
//! requests: the MFA registration report and the security defaults policy (pages of the
//! report followed outside it).
//!
//! - `GET /reports/authenticationMethods/userRegistrationDetails`
//!   (authenticationmethodsroot-list-userregistrationdetails.md): application permission
//!   AuditLog.Read.All; the page documents `$filter` (and, in older versions, `$orderby`), no
//!   `$select` and no page size, so nothing is sent but the path and every next link is
//!   followed. It needs Microsoft Entra ID P1 or P2: a tenant without it is answered 403
//!   `Authentication_RequestFromNonPremiumTenantOrB2CTenant`, which is the posture's "not
//!   available", never a failed tenant (Graph has given it on a later page too,
//!   microsoft-graph-docs-contrib#3759, so a refused next link counts the same).
//! - `GET /policies/identitySecurityDefaultsEnforcementPolicy`
//!   (identitysecuritydefaultsenforcementpolicy-get.md): Policy.Read.All; `$select` documented.
//!
//! A refusal for a missing permission is an error as any other (the run fails naming the
//! permission, `graph::permissions`): a premium refusal while the token lacks every permission
//! the report accepts is a missing permission too, decided from the token as everywhere.

use serde_json::Value;

use super::read::all_items;
use super::{BatchRequest, GraphClient, GraphClientError};
use crate::posture::{MfaPosture, Posture, is_premium_required};

/// The registration report, as sent (no query: see the module's comment).
pub const REGISTRATIONS: &str = "/reports/authenticationMethods/userRegistrationDetails";
/// The security defaults policy, its one property selected.
pub const SECURITY_DEFAULTS: &str =
    "/policies/identitySecurityDefaultsEnforcementPolicy?$select=id,isEnabled";

fn get(id: &str, url: &str) -> BatchRequest {
    BatchRequest {
        id: id.into(),
        method: "GET".into(),
        url: url.into(),
        body: None,
        depends_on: Vec::new(),
    }
}

/// The premium refusal as "not available"; `None` for any other error (among them a 403 to a
/// token that holds none of the permissions the report accepts: that is a missing permission).
fn premium_refusal(error: &GraphClientError) -> Option<MfaPosture> {
    let GraphClientError::Api(e) = error else {
        return None;
    };
    let permission_missing = e.permission.as_ref().is_some_and(|gap| !gap.granted_one);
    (is_premium_required(e.status, &e.code) && !permission_missing)
        .then(|| MfaPosture::not_available(&e.code, &e.message))
}

/// Reads `tenant_id`'s sign-in security posture. The report refused for the tenant's licences
/// gives `MfaPosture::NotAvailable`; any other failed request, or an answer that does not read,
/// fails the read (a tenant is never reported on half its posture).
pub async fn read_posture(
    client: &GraphClient,
    tenant_id: &str,
) -> Result<Posture, GraphClientError> {
    let requests = vec![
        get("registrations", REGISTRATIONS),
        get("defaults", SECURITY_DEFAULTS),
    ];
    let mut mfa = None;
    let mut policy = None;
    for answer in client.batch(tenant_id, requests).await? {
        if answer.id == "registrations" {
            let read = match answer.ok(tenant_id) {
                Ok(_) => all_items(client, tenant_id, answer.body.clone()).await,
                Err(e) => Err(e),
            };
            mfa = Some(match read {
                Ok(entries) => MfaPosture::from_registrations(&entries),
                Err(e) => premium_refusal(&e).ok_or(e)?,
            });
        } else {
            let body = answer.ok(tenant_id)?;
            if !body.is_object() {
                return Err(GraphClientError::Transport {
                    tenant: tenant_id.to_string(),
                    method: answer.method.clone(),
                    path: answer.url.clone(),
                    message: "unreadable answer: not a policy object".into(),
                });
            }
            policy = Some(body.clone());
        }
    }
    let missing = |path: &str| GraphClientError::Transport {
        tenant: tenant_id.to_string(),
        method: "GET".into(),
        path: path.into(),
        message: "no answer in the $batch".into(),
    };
    let mfa = mfa.ok_or_else(|| missing(REGISTRATIONS))?;
    let policy: Value = policy.ok_or_else(|| missing(SECURITY_DEFAULTS))?;
    Ok(Posture::new(mfa, &policy))
}
