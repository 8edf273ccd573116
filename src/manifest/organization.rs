//! `kind: Organization`: a billing organization parented under a tenant.

use schemars::JsonSchema;
use serde::Serialize;

use crate::manifest::decode::{Cx, Fields};
use crate::manifest::{ManifestKind, decode_former_names, decode_name, decode_reference, optional};
use crate::source::Located;

/// A billing organization. Without `tenant` it gets its own tenant of the same name (1:1);
/// several organizations may name the same tenant. Moving one is an update in place.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationDoc {
    /// Stable id: lowercase letters, digits and '-', at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Located<String>,
    /// Human-readable name; defaults to `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Located<String>>,
    /// The `name` of the Tenant this organization belongs to. Omit it for an implicit tenant
    /// named after the organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Located<String>>,
    /// Names this organization had before, so a rename is an update in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_names: Vec<Located<String>>,
}

impl ManifestKind for OrganizationDoc {
    const KIND: &'static str = "Organization";
    const FIELDS: &'static [&'static str] = &["name", "displayName", "tenant", "formerNames"];

    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self> {
        let name = decode_name(cx, fields, Self::KIND);
        let display_name = optional(fields, "displayName", |n| {
            cx.non_empty_string(n, "`displayName`")
        });
        let tenant = optional(fields, "tenant", |n| decode_reference(cx, n, "`tenant`"));
        let former_names = decode_former_names(cx, fields, Self::KIND);
        Some(OrganizationDoc {
            name: name?,
            display_name,
            tenant,
            former_names,
        })
    }
}
