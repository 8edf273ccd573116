//! Privileged access nobody declared: every principal holding a role Microsoft labels
//! PRIVILEGED (`data/entra_privileged_roles.tsv`), actively or as a PIM eligibility, that no
//! RoleAssignment in the manifests gives it in that tenant. Pure: live snapshot and desired
//! model in, findings out.
//!
//! Addresses are stable so a `DriftException` can accept one:
//! `privileged.<tenant>.<principal object id>.<role template id>`, plus `.au-<id>` for an
//! administrative-unit scope and `.eligible` for an eligibility.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cause, Finding};
use crate::live::{LiveDirectory, LivePrincipal, LiveSnapshot, LiveTenant, PrincipalKind, source};
use crate::model::DesiredModel;
use crate::resources::directory_role;

/// Who holds the role, which role, how, and since when (where Graph says).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivilegedAccess {
    pub principal: PrincipalInfo,
    /// The role's display name (from the built-in role table).
    pub role: String,
    pub role_template_id: String,
    /// `/` (the whole tenant) or `/administrativeUnits/<id>`.
    pub scope: String,
    /// `active` (a role assignment) or `eligible` (PIM: can be activated).
    pub assignment: String,
    /// When the eligibility started (PIM schedules only; active v1.0 assignments carry no
    /// date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// For a group: its transitive members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<PrincipalInfo>,
    /// For a group whose members could not be read: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_not_checked: Option<String>,
}

/// A directory object as Entra names it (untrusted text).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalInfo {
    pub id: String,
    /// `user`, `guest`, `group`, `service-principal` or `other`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
}

impl PrincipalInfo {
    fn of(id: &str, p: Option<&LivePrincipal>) -> PrincipalInfo {
        let kind = p.map_or(PrincipalKind::Other, |p| p.kind);
        PrincipalInfo {
            id: id.to_string(),
            kind: serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            display_name: p.and_then(|p| p.display_name.clone()),
            user_principal_name: p.and_then(|p| p.user_principal_name.clone()),
            mail: p.and_then(|p| p.mail.clone()),
        }
    }

    fn kind_text(&self) -> &'static str {
        match self.kind.as_str() {
            "user" => PrincipalKind::User.describe(),
            "guest" => PrincipalKind::Guest.describe(),
            "group" => PrincipalKind::Group.describe(),
            "service-principal" => PrincipalKind::ServicePrincipal.describe(),
            _ => PrincipalKind::Other.describe(),
        }
    }

    /// `guest "Dana" <dana_x#EXT#@y>`: one line (control characters become spaces); still
    /// untrusted, so renderers escape it.
    pub fn describe(&self) -> String {
        let name = self.display_name.as_deref().unwrap_or(&self.id);
        let mut out = format!("{} \"{}\"", self.kind_text(), one_line(name));
        // A guest is known by its home address; a member by its sign-in name.
        let address = if self.kind == "guest" {
            self.mail.as_ref().or(self.user_principal_name.as_ref())
        } else {
            self.user_principal_name.as_ref().or(self.mail.as_ref())
        };
        if let Some(address) = address {
            out.push_str(&format!(" <{}>", one_line(address)));
        }
        if self.display_name.is_none() {
            return out;
        }
        out.push_str(&format!(" ({})", self.id));
        out
    }
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The (principal object id, role template id, scope) triples the manifests declare in a
/// tenant, as far as they can be resolved against what Entra holds.
fn declared(
    model: &DesiredModel,
    tenant: &str,
    dir: &LiveDirectory,
) -> BTreeSet<(String, String, String)> {
    (directory_role::KIND.desired)(model)
        .into_iter()
        .filter(|d| d.tenant == tenant)
        .filter_map(|d| {
            let principal = directory_role::principal_object_id(dir, &d.attributes)?;
            let text = |k: &str| {
                d.attributes
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            Some((
                principal,
                text("roleDefinitionId").to_lowercase(),
                text("directoryScopeId"),
            ))
        })
        .collect()
}

/// A privileged finding and, for an active one, the assignment id it stands for.
pub struct Found {
    pub tenant: String,
    pub finding: Finding,
    pub assignment_id: Option<String>,
}

/// Every undeclared holder of a privileged role in every tenant read.
pub fn findings(model: &DesiredModel, live: &LiveSnapshot) -> Vec<Found> {
    let mut out = Vec::new();
    for (tenant, status) in &live.tenants {
        if let LiveTenant::Read(dir) = status {
            out.extend(tenant_findings(model, tenant, dir));
        }
    }
    out
}

/// The undeclared holders of privileged roles in one tenant (`model` may be that tenant's
/// slice: only its directory roles are compared).
pub fn tenant_findings(model: &DesiredModel, tenant: &str, dir: &LiveDirectory) -> Vec<Found> {
    let catalog = crate::roles::RoleCatalog::builtin();
    let mut out = Vec::new();
    {
        // Holders come from the assignments and declared guests from the guests: without
        // both, nothing is claimed (the tenant fails as not read instead).
        if !dir.is_read(source::ROLE_ASSIGNMENTS) || !dir.is_read(source::GUESTS) {
            return out;
        }
        let declared = declared(model, tenant, dir);
        let active = dir.role_assignments.iter().map(|r| {
            (
                &r.principal_id,
                &r.role_definition_id,
                &r.directory_scope_id,
                None,
                Some(&r.id),
            )
        });
        let eligible = dir.eligible_assignments.iter().map(|e| {
            (
                &e.principal_id,
                &e.role_definition_id,
                &e.directory_scope_id,
                e.since.as_ref(),
                None,
            )
        });
        for (i, (principal, role, scope, since, assignment_id)) in
            active.chain(eligible).enumerate()
        {
            let is_eligible = i >= dir.role_assignments.len();
            if !crate::roles::is_privileged(role)
                || declared.contains(&(principal.clone(), role.clone(), scope.clone()))
            {
                continue;
            }
            let info = PrincipalInfo::of(principal, dir.principals.get(principal));
            let is_group = info.kind == "group";
            let members: Vec<PrincipalInfo> = dir
                .group_members
                .get(principal)
                .map(|m| {
                    m.iter()
                        .map(|p| PrincipalInfo::of(&p.id, Some(p)))
                        .collect()
                })
                .unwrap_or_default();
            let members_not_checked = (is_group && !dir.group_members.contains_key(principal))
                .then(|| {
                    dir.group_members_not_checked()
                        .unwrap_or_else(|| "not read".into())
                });
            let role_name = catalog
                .by_template_id(role)
                .map_or(role.to_string(), |r| r.name.to_string());
            let mut address = format!("privileged.{tenant}.{principal}.{role}");
            if scope != "/" {
                address.push('.');
                address.push_str(&directory_role::scope_key(scope));
            }
            if is_eligible {
                address.push_str(".eligible");
            }
            let how = if is_eligible { "eligible" } else { "active" };
            let mut detail = format!(
                "{} holds {role_name} ({how}, {})",
                info.describe(),
                if scope == "/" {
                    "whole tenant".to_string()
                } else {
                    format!("scope {}", one_line(scope))
                }
            );
            if let Some(since) = since {
                detail.push_str(&format!(" since {}", one_line(since)));
            }
            detail.push_str("; no manifest declares it");
            if is_group {
                match &members_not_checked {
                    Some(why) => {
                        detail.push_str(&format!("; members not checked: {}", one_line(why)))
                    }
                    None => detail.push_str(&format!("; {} member(s)", members.len())),
                }
            }
            out.push(Found {
                tenant: tenant.to_string(),
                assignment_id: assignment_id.cloned(),
                finding: Finding {
                    address,
                    cause: Cause::PrivilegedAccessUndeclared,
                    detail,
                    changes: Vec::new(),
                    exception: None,
                    privileged: Some(PrivilegedAccess {
                        principal: info,
                        role: role_name,
                        role_template_id: role.clone(),
                        scope: scope.clone(),
                        assignment: how.to_string(),
                        since: since.cloned(),
                        members,
                        members_not_checked,
                    }),
                },
            });
        }
    }
    out
}
