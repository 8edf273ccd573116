//! `kind: GdapRelationship` (issue 17): a GDAP relationship the partner keeps with a customer
//! tenant (or each tenant a selector picks): its display name, roles, duration,
//! auto-extension, and the partner security groups given some of its roles.
//!
//! What can be checked in one document is checked here (roles known, duration P1D..P2Y,
//! auto-extension P180D or none and never with Global Administrator, access assignment roles
//! among the relationship's); display names per tenant, their length and uniqueness, and the
//! tenants themselves are checked by the resolver (`model::gdap`). Rules: `crate::gdap`.

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::decode::{Cx, Fields};
use crate::manifest::targets::TenantTargets;
use crate::manifest::yaml::Value;
use crate::manifest::{ManifestKind, decode_name, format, optional};
use crate::roles::RoleCatalog;
use crate::source::Located;

/// A GDAP relationship for the targeted customer tenants.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GdapRelationshipDoc {
    /// Stable id: lowercase letters, digits and '-', at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Located<String>,
    /// The customer tenants (names, or `{selector: ...}` of mapped tenants); one relationship
    /// each.
    pub tenants: TenantTargets,
    /// The relationship's display name in Graph and the customer's admin center: unique
    /// across all the partner's relationships, at most 50 characters once `{tenant}` is
    /// replaced by the tenant's name (needed when several tenants are targeted).
    #[schemars(length(min = 1))]
    pub display_name: Located<String>,
    /// Entra built-in roles the partner asks for (display names or template ids).
    #[schemars(length(min = 1))]
    pub roles: Vec<Located<String>>,
    /// How long the relationship lasts once approved: an ISO 8601 duration from P1D to P2Y
    /// (730 days). Default P730D.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<Located<String>>,
    /// `P180D` (extended by 180 days when it ends) or `none` (the default). Not allowed with
    /// Global Administrator.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(P180D|none)$"))]
    pub auto_extend: Option<Located<String>>,
    /// Partner security groups and the roles (some of the relationship's) they get.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_assignments: Vec<AccessAssignmentDoc>,
}

/// One access assignment: a partner security group and roles of the relationship.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessAssignmentDoc {
    /// The partner security group's object id (a GUID, in the partner tenant).
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    pub group: Located<String>,
    /// Roles it gets: display names or template ids, each one of the relationship's.
    #[schemars(length(min = 1))]
    pub roles: Vec<Located<String>>,
}

const ASSIGNMENT_FIELDS: &[&str] = &["group", "roles"];

/// A role resolved from the table: template id and display name.
fn resolve_role(cx: &mut Cx, role: &Located<String>) -> Option<(String, String)> {
    let catalog = RoleCatalog::builtin();
    let found = if format::check_guid(&role.value).is_ok() {
        catalog.by_template_id(&role.value)
    } else {
        catalog.by_name(&role.value)
    };
    match found {
        Some(r) => Some((r.template_id.to_lowercase(), r.name.to_string())),
        None => {
            let help = did_you_mean(&nearest(&role.value, catalog.all().iter().map(|r| r.name)))
                .unwrap_or_else(|| {
                    "GDAP grants Entra built-in roles: use a display name (see `tenantform roles`) or a template id".into()
                });
            cx.report(
                Diagnostic::error(
                    Code::UnknownRole,
                    role.loc,
                    format!("unknown Entra built-in role `{}`", role.value),
                )
                .with_label("unknown role")
                .with_help(help),
            );
            None
        }
    }
}

/// Roles of a list, resolved, each once (a repeat is TF501).
fn resolve_roles(cx: &mut Cx, roles: &[Located<String>], what: &str) -> Vec<(String, String)> {
    let mut resolved: Vec<(String, String, crate::source::Loc)> = Vec::new();
    for role in roles {
        let Some((id, name)) = resolve_role(cx, role) else {
            continue;
        };
        if let Some((_, _, first)) = resolved.iter().find(|(i, _, _)| *i == id) {
            cx.report(
                Diagnostic::warning(
                    Code::DuplicateRole,
                    role.loc,
                    format!("role `{name}` is listed twice in {what}"),
                )
                .with_label("listed again")
                .with_secondary(*first, "first listed here"),
            );
            continue;
        }
        resolved.push((id, name, role.loc));
    }
    resolved.into_iter().map(|(i, n, _)| (i, n)).collect()
}

impl ManifestKind for GdapRelationshipDoc {
    const KIND: &'static str = "GdapRelationship";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "tenants",
        "displayName",
        "roles",
        "duration",
        "autoExtend",
        "accessAssignments",
    ];

    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self> {
        let name = decode_name(cx, fields, Self::KIND);
        let tenants = fields
            .required(cx, "tenants")
            .and_then(|n| TenantTargets::decode(cx, n));
        let display_name = fields
            .required(cx, "displayName")
            .and_then(|n| cx.non_empty_string(n, "`displayName`"));
        if let Some(d) = &display_name
            && !d.value.contains("{tenant}")
            && let Err(reason) = crate::gdap::check_display_name(&d.value)
        {
            cx.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    d.loc,
                    format!("invalid GDAP `displayName`: {reason}"),
                )
                .with_label("too long for Graph"),
            );
        }
        let roles = fields
            .required(cx, "roles")
            .and_then(|n| cx.string_list(n, "`roles`"));
        if let (Some(list), Some(node)) = (&roles, fields.get("roles"))
            && list.is_empty()
            && matches!(node.value, Value::Seq(_))
        {
            cx.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    cx.loc(node),
                    "`roles` must name at least one role",
                )
                .with_label("no roles"),
            );
        }
        let resolved = roles
            .as_deref()
            .map(|r| resolve_roles(cx, r, "`roles`"))
            .unwrap_or_default();
        let duration = optional(fields, "duration", |n| {
            let d = cx.string(n, "`duration`")?;
            if let Err(reason) = crate::gdap::check_duration(&d.value) {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidValue,
                        d.loc,
                        format!("invalid GDAP `duration`: {reason}"),
                    )
                    .with_label("P1D to P2Y")
                    .with_help("write an ISO 8601 duration such as P730D, P2Y, P1Y or P90D"),
                );
                return None;
            }
            Some(d)
        });
        let auto_extend = optional(fields, "autoExtend", |n| {
            let a = cx.string(n, "`autoExtend`")?;
            if a.value != "P180D" && a.value != "none" {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidValue,
                        a.loc,
                        format!("`autoExtend` must be P180D or none, found `{}`", a.value),
                    )
                    .with_label("P180D or none")
                    .with_help("Graph extends a relationship by 180 days, or not at all"),
                );
                return None;
            }
            Some(a)
        });
        if let Some(a) = &auto_extend
            && a.value == "P180D"
            && crate::gdap::has_global_administrator(resolved.iter().map(|(id, _)| id.as_str()))
        {
            let ga = roles.as_deref().and_then(|list| {
                list.iter().find(|r| {
                    resolve_quiet(&r.value).as_deref() == Some(crate::gdap::GLOBAL_ADMINISTRATOR)
                })
            });
            let mut d = Diagnostic::error(
                Code::AutoExtendGlobalAdministrator,
                a.loc,
                "a GDAP relationship with Global Administrator cannot auto-extend",
            )
            .with_label("auto-extension refused by Graph")
            .with_help(
                "set `autoExtend: none`, or move Global Administrator to a relationship of its own",
            );
            if let Some(ga) = ga {
                d = d.with_secondary(ga.loc, "Global Administrator is asked for here");
            }
            cx.report(d);
        }
        let access_assignments = optional(fields, "accessAssignments", |n| {
            let Value::Seq(items) = &n.value else {
                cx.wrong_type(n, "`accessAssignments`", "a list");
                return None;
            };
            let mut out: Vec<AccessAssignmentDoc> = Vec::new();
            for item in items {
                let Some(f) = cx.fields(item, "an access assignment", ASSIGNMENT_FIELDS) else {
                    continue;
                };
                let group = f.required(cx, "group").and_then(|g| {
                    let g = cx.string(g, "`group`")?;
                    if let Err(reason) = format::check_guid(&g.value) {
                        cx.report(
                            Diagnostic::error(
                                Code::InvalidGuid,
                                g.loc,
                                format!("`group` must be the partner security group's object id: {reason}"),
                            )
                            .with_label("not a GUID"),
                        );
                        return None;
                    }
                    Some(g)
                });
                let group_roles = f
                    .required(cx, "roles")
                    .and_then(|r| cx.string_list(r, "`roles` of an access assignment"));
                if let (Some(group), Some(first)) = (
                    &group,
                    group.as_ref().and_then(|g| {
                        out.iter()
                            .find(|o| o.group.value.eq_ignore_ascii_case(&g.value))
                    }),
                ) {
                    cx.report(
                        Diagnostic::error(
                            Code::InvalidValue,
                            group.loc,
                            format!("group `{}` has two access assignments", group.value),
                        )
                        .with_label("second assignment")
                        .with_secondary(first.group.loc, "first one here")
                        .with_help(
                            "Graph keeps one access assignment a group: list its roles together",
                        ),
                    );
                    continue;
                }
                if let Some(list) = &group_roles {
                    let granted = resolve_roles(cx, list, "the access assignment's `roles`");
                    for (id, role_name) in &granted {
                        if !resolved.iter().any(|(r, _)| r == id) && roles.is_some() {
                            let at = list
                                .iter()
                                .find(|r| resolve_quiet(&r.value).as_deref() == Some(id.as_str()))
                                .map(|r| r.loc)
                                .unwrap_or_else(|| cx.loc(item));
                            cx.report(
                                Diagnostic::error(
                                    Code::RoleNotInRelationship,
                                    at,
                                    format!(
                                        "role `{role_name}` is not among the relationship's `roles`"
                                    ),
                                )
                                .with_label("not in the relationship")
                                .with_help("an access assignment gives some of its relationship's roles: add it to `roles` or remove it here"),
                            );
                        }
                    }
                    if list.is_empty() {
                        cx.report(
                            Diagnostic::error(
                                Code::InvalidValue,
                                cx.loc(item),
                                "an access assignment must give at least one role",
                            )
                            .with_label("no roles"),
                        );
                    }
                }
                if let (Some(group), Some(roles)) = (group, group_roles) {
                    out.push(AccessAssignmentDoc { group, roles });
                }
            }
            Some(out)
        });
        Some(GdapRelationshipDoc {
            name: name?,
            tenants: tenants?,
            display_name: display_name?,
            roles: roles?,
            duration,
            auto_extend,
            access_assignments: access_assignments.unwrap_or_default(),
        })
    }
}

/// A role's template id without reporting anything (for pointing at the right entry).
fn resolve_quiet(role: &str) -> Option<String> {
    let catalog = RoleCatalog::builtin();
    catalog
        .by_template_id(role)
        .or_else(|| catalog.by_name(role))
        .map(|r| r.template_id.to_lowercase())
}

impl GdapRelationshipDoc {
    /// The display name for one tenant: `{tenant}` replaced by its name.
    pub fn display_name_for(&self, tenant: &str) -> String {
        self.display_name.value.replace("{tenant}", tenant)
    }

    /// The relationship as the model keeps it for `tenant` (a clean document: every role
    /// resolves).
    pub fn to_relationship(&self, tenant: &str) -> crate::gdap::DesiredRelationship {
        let role = |r: &Located<String>| resolve_quiet(&r.value).unwrap_or_default();
        let mut roles: Vec<String> = Vec::new();
        for r in &self.roles {
            let id = role(r);
            if !roles.contains(&id) {
                roles.push(id);
            }
        }
        crate::gdap::DesiredRelationship {
            name: self.name.value.clone(),
            tenant: tenant.to_string(),
            display_name: self.display_name_for(tenant),
            roles,
            duration: self
                .duration
                .as_ref()
                .map_or_else(|| "P730D".to_string(), |d| d.value.clone()),
            auto_extend: self
                .auto_extend
                .as_ref()
                .is_some_and(|a| a.value == "P180D"),
            access_assignments: self
                .access_assignments
                .iter()
                .map(|a| {
                    let mut roles: Vec<String> = Vec::new();
                    for r in &a.roles {
                        let id = role(r);
                        if !roles.contains(&id) {
                            roles.push(id);
                        }
                    }
                    crate::gdap::DesiredAssignment {
                        group_id: a.group.value.to_lowercase(),
                        roles,
                    }
                })
                .collect(),
        }
    }
}
