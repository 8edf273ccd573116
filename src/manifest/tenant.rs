//! `kind: Tenant`: an MSP-side tenant record, optionally mapped to a Microsoft (Entra) tenant.

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::decode::{Cx, Fields};
use crate::manifest::format::{check_guid, check_label_key, check_label_value};
use crate::manifest::{ManifestKind, decode_former_names, decode_name, optional};
use crate::source::Located;

/// A customer tenant. Its `name` is the stable id other documents refer to; `displayName` may
/// change freely (a rename is an update in place, never a re-creation).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantDoc {
    /// Stable id: lowercase letters, digits and '-', at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Located<String>,
    /// Human-readable name; defaults to `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Located<String>>,
    /// The Entra tenant id (GUID). Without it the tenant exists only on the MSP side and
    /// cannot receive guests or directory roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    pub microsoft_tenant_id: Option<Located<String>>,
    /// Labels for selecting tenants (`tier: gold`); keys and values as in Kubernetes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub labels: Vec<(Located<String>, Located<String>)>,
    /// Names this tenant had before (including the implicit tenant of an organization), so a
    /// rename keeps the existing tenant record instead of deleting and re-creating it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_names: Vec<Located<String>>,
}

impl ManifestKind for TenantDoc {
    const KIND: &'static str = "Tenant";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "displayName",
        "microsoftTenantId",
        "labels",
        "formerNames",
    ];

    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self> {
        let name = decode_name(cx, fields, Self::KIND);
        let display_name = optional(fields, "displayName", |n| {
            cx.non_empty_string(n, "`displayName`")
        });
        let microsoft_tenant_id = optional(fields, "microsoftTenantId", |n| {
            let id = cx.string(n, "`microsoftTenantId`")?;
            if let Err(reason) = check_guid(&id.value) {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidGuid,
                        id.loc,
                        format!("`microsoftTenantId` is not a GUID: {reason}"),
                    )
                    .with_label("not a GUID")
                    .with_help("use the tenant id shown in the Entra admin center (Overview > Tenant ID), e.g. 6f0d7a2e-1c3b-4d5e-8f90-a1b2c3d4e5f6"),
                );
                return None;
            }
            Some(id)
        });
        let labels = optional(fields, "labels", |n| {
            let labels = cx.string_map(n, "`labels`")?;
            for (key, value) in &labels {
                if let Err(reason) = check_label_key(&key.value) {
                    cx.report(
                        Diagnostic::error(
                            Code::InvalidLabel,
                            key.loc,
                            format!("invalid label key `{}`: {reason}", key.value),
                        )
                        .with_label("invalid label key"),
                    );
                }
                if let Err(reason) = check_label_value(&value.value) {
                    cx.report(
                        Diagnostic::error(
                            Code::InvalidLabel,
                            value.loc,
                            format!("invalid label value `{}`: {reason}", value.value),
                        )
                        .with_label("invalid label value"),
                    );
                }
            }
            Some(labels)
        })
        .unwrap_or_default();
        let former_names = decode_former_names(cx, fields, Self::KIND);
        Some(TenantDoc {
            name: name?,
            display_name,
            microsoft_tenant_id,
            labels,
            former_names,
        })
    }
}
