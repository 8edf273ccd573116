//! `kind: GuestUser`: an MSP engineer invited as a B2B guest into customer tenants.

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::decode::{Cx, Fields};
use crate::manifest::format::{check_email, check_url};
use crate::manifest::targets::TenantTargets;
use crate::manifest::{ManifestKind, decode_name, optional};
use crate::source::Located;

/// A guest invited (Microsoft Graph invitation) into every targeted tenant.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestUserDoc {
    /// Stable id: lowercase letters, digits and '-', at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Located<String>,
    /// The address the invitation goes to; the guest is found in each tenant by it.
    #[schemars(email)]
    pub email: Located<String>,
    /// Display name in the customer's directory; defaults to the email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Located<String>>,
    /// The tenants to invite into.
    pub tenants: TenantTargets,
    /// How the invitation is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation: Option<InvitationDoc>,
}

/// Invitation settings (Graph `POST /invitations`).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvitationDoc {
    /// Send Microsoft's invitation email (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_email: Option<Located<bool>>,
    /// Where the guest lands after redeeming (default https://myapps.microsoft.com).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub redirect_url: Option<Located<String>>,
    /// A personal message added to the invitation email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Located<String>>,
    /// Language of the invitation email, e.g. `en-US` (default: the guest's browser language).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_language: Option<Located<String>>,
}

impl InvitationDoc {
    const FIELDS: &'static [&'static str] =
        &["sendEmail", "redirectUrl", "message", "messageLanguage"];
}

impl ManifestKind for GuestUserDoc {
    const KIND: &'static str = "GuestUser";
    const FIELDS: &'static [&'static str] =
        &["name", "email", "displayName", "tenants", "invitation"];

    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self> {
        let name = decode_name(cx, fields, Self::KIND);
        let email = fields.required(cx, "email").and_then(|n| {
            let email = cx.string(n, "`email`")?;
            if let Err(reason) = check_email(&email.value) {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidEmail,
                        email.loc,
                        format!("`email` is not a valid address: {reason}"),
                    )
                    .with_label("invalid email")
                    .with_help("write a bare address such as alice@msp.example"),
                );
                // Keep the document (it is already marked unclean) so references to it still
                // resolve and do not produce follow-on errors.
            }
            Some(email)
        });
        let display_name = optional(fields, "displayName", |n| {
            cx.non_empty_string(n, "`displayName`")
        });
        let tenants = fields
            .required(cx, "tenants")
            .and_then(|n| TenantTargets::decode(cx, n))
            .unwrap_or(TenantTargets::Names(Vec::new()));
        let invitation = optional(fields, "invitation", |n| decode_invitation(cx, n));
        Some(GuestUserDoc {
            name: name?,
            email: email?,
            display_name,
            tenants,
            invitation,
        })
    }
}

fn decode_invitation(cx: &mut Cx, node: &crate::manifest::yaml::Node) -> Option<InvitationDoc> {
    let fields = cx.fields(node, "`invitation`", InvitationDoc::FIELDS)?;
    let send_email = optional(&fields, "sendEmail", |n| cx.bool(n, "`sendEmail`"));
    let redirect_url = optional(&fields, "redirectUrl", |n| {
        let url = cx.string(n, "`redirectUrl`")?;
        if let Err(reason) = check_url(&url.value) {
            cx.report(
                Diagnostic::error(
                    Code::InvalidUrl,
                    url.loc,
                    format!("`redirectUrl` is not a valid URL: {reason}"),
                )
                .with_label("invalid URL")
                .with_help("use an absolute https URL, e.g. https://myapps.microsoft.com"),
            );
            return None;
        }
        Some(url)
    });
    let message = optional(&fields, "message", |n| cx.non_empty_string(n, "`message`"));
    let message_language = optional(&fields, "messageLanguage", |n| {
        cx.non_empty_string(n, "`messageLanguage`")
    });
    Some(InvitationDoc {
        send_email,
        redirect_url,
        message,
        message_language,
    })
}
