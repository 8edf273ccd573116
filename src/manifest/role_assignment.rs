//! `kind: RoleAssignment`: Entra directory roles and MSP-side roles for one principal.

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::decode::{Cx, Fields};
use crate::manifest::format::{check_guid, check_scope};
use crate::manifest::targets::TenantTargets;
use crate::manifest::yaml::Node;
use crate::manifest::{ManifestKind, decode_name, decode_reference, optional};
use crate::source::Located;

/// Roles given to one principal in every targeted tenant.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentDoc {
    /// Stable id: lowercase letters, digits and '-', at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Located<String>,
    /// Who gets the roles.
    pub principal: PrincipalDoc,
    /// Entra built-in role display names (any case) or role template ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_roles: Vec<Located<String>>,
    /// `/` (the whole directory, default) or `/administrativeUnits/<GUID>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Located<String>>,
    /// Where to assign; defaults to every tenant the guest is invited into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants: Option<TenantTargets>,
    /// MSP-side permissions, kept in tenantform's state (who may switch into which tenant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msp_roles: Vec<Located<MspRole>>,
}

/// The principal of a role assignment.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PrincipalDoc {
    /// A GuestUser, by its `name` or its email.
    Guest(Located<String>),
    /// An existing user in the (single) targeted tenant, by object id.
    UserId(Located<String>),
    /// An existing group in the (single) targeted tenant, by object id.
    GroupId(Located<String>),
}

/// MSP-side permissions on a tenant.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    JsonSchema,
)]
pub enum MspRole {
    /// May switch into the tenant and administer it in the MSP tool.
    TenantAdmin,
    /// May switch into the tenant read-only.
    TenantViewer,
}

impl MspRole {
    pub const ALL: &'static [(&'static str, MspRole)] = &[
        ("TenantAdmin", MspRole::TenantAdmin),
        ("TenantViewer", MspRole::TenantViewer),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MspRole::TenantAdmin => "TenantAdmin",
            MspRole::TenantViewer => "TenantViewer",
        }
    }
}

impl ManifestKind for RoleAssignmentDoc {
    const KIND: &'static str = "RoleAssignment";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "principal",
        "directoryRoles",
        "scope",
        "tenants",
        "mspRoles",
    ];

    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self> {
        let name = decode_name(cx, fields, Self::KIND);
        let principal = fields
            .required(cx, "principal")
            .and_then(|n| decode_principal(cx, n));
        let directory_roles = optional(fields, "directoryRoles", |n| {
            cx.string_list(n, "`directoryRoles`")
        });
        let scope = optional(fields, "scope", |n| {
            let scope = cx.string(n, "`scope`")?;
            if let Err(reason) = check_scope(&scope.value) {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidScope,
                        scope.loc,
                        format!("invalid `scope`: {reason}"),
                    )
                    .with_label("invalid scope"),
                );
                return None;
            }
            Some(scope)
        });
        let tenants = optional(fields, "tenants", |n| TenantTargets::decode(cx, n));
        let msp_roles = optional(fields, "mspRoles", |n| {
            let names = cx.string_list(n, "`mspRoles`")?;
            Some(
                names
                    .into_iter()
                    .filter_map(|r| decode_msp_role(cx, r))
                    .collect(),
            )
        });
        if directory_roles.is_none()
            && msp_roles.is_none()
            && fields.get("directoryRoles").is_none()
            && fields.get("mspRoles").is_none()
        {
            let loc = fields.loc(cx);
            cx.report(
                Diagnostic::error(
                    Code::MissingField,
                    loc,
                    "a RoleAssignment needs `directoryRoles`, `mspRoles` or both",
                )
                .with_label("assigns nothing")
                .with_help(
                    "add `directoryRoles: [Helpdesk Administrator]` or `mspRoles: [TenantAdmin]`",
                ),
            );
        }
        Some(RoleAssignmentDoc {
            name: name?,
            principal: principal?,
            directory_roles: directory_roles.unwrap_or_default(),
            scope,
            tenants,
            msp_roles: msp_roles.unwrap_or_default(),
        })
    }
}

fn decode_principal(cx: &mut Cx, node: &Node) -> Option<PrincipalDoc> {
    const FIELDS: &[&str] = &["guest", "userId", "groupId"];
    let fields = cx.fields(node, "`principal`", FIELDS)?;
    let present: Vec<&str> = FIELDS
        .iter()
        .copied()
        .filter(|f| fields.get(f).is_some())
        .collect();
    if present.len() != 1 {
        let loc = fields.loc(cx);
        cx.report(
            Diagnostic::error(
                Code::InvalidValue,
                loc,
                "`principal` needs exactly one of `guest`, `userId` or `groupId`",
            )
            .with_label(if present.is_empty() {
                "none given".to_string()
            } else {
                format!("{} given", present.join(" and "))
            })
            .with_help("e.g. `principal: {guest: alice}`"),
        );
        return None;
    }
    let node = fields.get(present[0])?;
    match present[0] {
        "guest" => decode_reference(cx, node, "`guest`").map(PrincipalDoc::Guest),
        field => {
            let id = cx.string(node, &format!("`{field}`"))?;
            if let Err(reason) = check_guid(&id.value) {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidGuid,
                        id.loc,
                        format!("`{field}` is not a GUID: {reason}"),
                    )
                    .with_label("not a GUID")
                    .with_help("use the object id shown in the Entra admin center"),
                );
                return None;
            }
            Some(if field == "userId" {
                PrincipalDoc::UserId(id)
            } else {
                PrincipalDoc::GroupId(id)
            })
        }
    }
}

fn decode_msp_role(cx: &mut Cx, name: Located<String>) -> Option<Located<MspRole>> {
    if let Some((_, role)) = MspRole::ALL.iter().find(|(n, _)| *n == name.value) {
        return Some(Located::new(*role, name.loc));
    }
    let known = MspRole::ALL.iter().map(|(n, _)| *n);
    let help = did_you_mean(&nearest(&name.value, known.clone()))
        .unwrap_or_else(|| format!("MSP roles are: {}", known.collect::<Vec<_>>().join(", ")));
    cx.report(
        Diagnostic::error(
            Code::InvalidValue,
            name.loc,
            format!("unknown MSP role `{}`", name.value),
        )
        .with_label("unknown MSP role")
        .with_help(help),
    );
    None
}
