//! `gdap_relationship.<tenant>.<name>`: a GDAP relationship the partner keeps with a customer
//! tenant (issue 17), with its access assignments. It lives in the partner tenant (Graph's
//! `tenantRelationships/delegatedAdminRelationships`), is kept in the customer tenant's state
//! partition, and is found in the partner's relationships by its recorded id or its display
//! name (Graph keeps names unique).
//!
//! Its lifecycle is Graph's: created -> locked for approval -> approval pending (the
//! customer's admin approves at the admin center) -> active -> access assignments created.
//! What the partner cannot act on is shown, not planned: while approval is pending the live
//! object reads as desired, with the approval URL as its note, so a plan is a no-op until the
//! customer acts. `find` turns the live relationship into the compared attributes so the
//! generic three-way diff decides: `status` (`created`: lock it; `terminated`/`expired`:
//! replace it; `replacing`: end the old one), `roles` (removing Global Administrator is done
//! in place, any other change replaces the relationship), `accessAssignments` (only once
//! active; one in error reads as different), `autoExtendDuration`, `displayName` and
//! `duration` (in place while `created`, otherwise a replacement). The executor
//! (`apply::entra`) reads the relationship again before acting.

use serde_json::{Value, json};

use super::{DesiredObject, LiveObject, LiveRules, ResourceKind, address, attr_str};
use crate::gdap::{LiveRelationship, approval_url, status};
use crate::live::{LiveDirectory, source};
use crate::model::DesiredModel;
use crate::state::{Attributes, StateObject};

pub const KIND: ResourceKind = ResourceKind {
    scope: super::KindScope::CustomerTenant,
    id: super::KindId::GdapRelationship,
    name: "gdap_relationship",
    order: 7,
    desired,
    former_names: super::no_former_names,
    tenant_of: super::tenant_attribute,
    after_tenant_rename: super::rename_tenant_segment,
    rename_tenant_reference: super::rename_tenant_attribute,
    update_warnings: super::no_warnings,
    depends_on: super::no_dependency,
    new_ids: super::no_ids,
    live: Some(LiveRules {
        find,
        compared: COMPARED,
        tenants,
        sources: &[source::GDAP],
    }),
    synced: None,
};

const COMPARED: &[&str] = &[
    "status",
    "displayName",
    "roles",
    "duration",
    "autoExtendDuration",
    "accessAssignments",
];

/// What a relationship's note reports, for drift: each note starts with its finding's
/// prefix, written and read only here, so the two cannot drift apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    ApprovalPending,
    Expiring,
    Expired,
    Terminated,
}

impl Finding {
    const ALL: [Finding; 4] = [
        Finding::ApprovalPending,
        Finding::Expiring,
        Finding::Expired,
        Finding::Terminated,
    ];

    /// How a note reporting it starts.
    pub const fn prefix(self) -> &'static str {
        match self {
            Finding::ApprovalPending => "approval pending",
            Finding::Expiring => "expires in ",
            Finding::Expired => "expired",
            Finding::Terminated => "terminated",
        }
    }

    /// The finding a note of this kind reports, if any.
    pub fn of_note(note: &str) -> Option<Finding> {
        Finding::ALL
            .into_iter()
            .find(|f| note.starts_with(f.prefix()))
    }
}

/// Days before the end of a relationship without auto-extension from which it is reported
/// (Microsoft sends its notices 30, 7 and 1 days before: GRAPH.md, "GDAP details").
pub const EXPIRY_NOTICE_DAYS: i64 = 30;

fn sorted(mut roles: Vec<String>) -> Vec<String> {
    roles.sort();
    roles.dedup();
    roles
}

fn assignments_value(items: impl Iterator<Item = (String, Vec<String>, Option<String>)>) -> Value {
    let mut items: Vec<(String, Vec<String>, Option<String>)> = items.collect();
    items.sort();
    Value::Array(
        items
            .into_iter()
            .map(|(group, roles, status)| {
                let mut v = json!({"group": group, "roles": sorted(roles)});
                if let Some(status) = status {
                    v["status"] = json!(status);
                }
                v
            })
            .collect(),
    )
}

fn desired(model: &DesiredModel) -> Vec<DesiredObject> {
    let mut out = Vec::new();
    for (tenant, relationships) in &model.gdap_relationships {
        let customer = model
            .tenants
            .get(tenant)
            .and_then(|t| t.microsoft_tenant_id.clone())
            .unwrap_or_default();
        let customer_name = model
            .tenants
            .get(tenant)
            .map(|t| t.display_name.clone())
            .unwrap_or_default();
        for r in relationships {
            out.push(DesiredObject {
                address: address("gdap_relationship", &format!("{tenant}.{}", r.name)),
                kind: "gdap_relationship",
                tenant: tenant.clone(),
                attributes: [
                    ("tenant".to_string(), json!(tenant)),
                    ("customerTenantId".to_string(), json!(customer)),
                    ("customerDisplayName".to_string(), json!(customer_name)),
                    ("displayName".to_string(), json!(r.display_name)),
                    ("roles".to_string(), json!(sorted(r.roles.clone()))),
                    // For people reading a plan: the roles by name (not compared).
                    ("roleNames".to_string(), json!(role_names(&r.roles))),
                    ("duration".to_string(), json!(r.duration)),
                    (
                        "autoExtendDuration".to_string(),
                        json!(r.auto_extend_duration()),
                    ),
                    (
                        "accessAssignments".to_string(),
                        assignments_value(
                            r.access_assignments
                                .iter()
                                .map(|a| (a.group_id.clone(), a.roles.clone(), None)),
                        ),
                    ),
                    ("status".to_string(), json!(status::ACTIVE)),
                ]
                .into_iter()
                .collect::<Attributes>(),
            });
        }
    }
    out
}

/// Built-in role names for template ids, sorted (an unknown id as it is).
fn role_names(ids: &[String]) -> Vec<String> {
    let catalog = crate::roles::RoleCatalog::builtin();
    let mut names: Vec<String> = ids
        .iter()
        .map(|id| catalog.name_or_id(id).to_string())
        .collect();
    names.sort();
    names
}

fn tenants(model: &DesiredModel) -> std::collections::BTreeSet<String> {
    model.gdap_relationships.keys().cloned().collect()
}

/// The relationship `stored` recorded (by id), else the one with the desired display name.
pub fn find_relationship<'a>(
    dir: &'a LiveDirectory,
    attributes: &Attributes,
    stored: Option<&StateObject>,
) -> Option<&'a LiveRelationship> {
    let by_id = stored
        .and_then(|s| s.ids.get("relationshipId"))
        .filter(|id| !id.is_empty())
        .and_then(|id| dir.gdap_relationships.iter().find(|r| r.id == *id));
    by_id.or_else(|| {
        let name = attr_str(attributes, "displayName").trim();
        dir.gdap_relationships
            .iter()
            .find(|r| r.display_name.eq_ignore_ascii_case(name))
    })
}

/// `2026-12-08` from an RFC 3339 time.
fn day(text: &str) -> String {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_else(|_| text.to_string())
}

fn find(
    dir: &LiveDirectory,
    attributes: &Attributes,
    stored: Option<&StateObject>,
) -> Option<LiveObject> {
    let r = find_relationship(dir, attributes, stored)?;
    let desired_value = |name: &str| attributes.get(name).cloned().unwrap_or(Value::Null);
    // The name Graph has may be a replacement's (recorded with its id).
    let recorded_name = stored.and_then(|s| s.ids.get("displayName"));
    let display_name = if recorded_name.is_some_and(|n| n.eq_ignore_ascii_case(&r.display_name))
        || r.display_name
            .eq_ignore_ascii_case(attr_str(attributes, "displayName").trim())
    {
        desired_value("displayName")
    } else {
        json!(r.display_name)
    };
    let previous_active = stored
        .and_then(|s| s.ids.get("previousRelationshipId"))
        .filter(|id| !id.is_empty())
        .and_then(|id| dir.gdap_relationships.iter().find(|p| p.id == *id))
        // Never the relationship itself (a replacement that vanished leaves the old one).
        .filter(|p| p.id != r.id && !status::is_ended(&p.status));
    let pending = matches!(
        r.status.as_str(),
        status::APPROVAL_PENDING | status::APPROVED | status::ACTIVATING
    );
    let (state, note) = match r.status.as_str() {
        status::CREATED => (
            json!(status::CREATED),
            Some("created, not yet locked for approval".to_string()),
        ),
        _ if pending => (
            desired_value("status"),
            Some(format!(
                "{}: the customer's admin approves at {}",
                Finding::ApprovalPending.prefix(),
                approval_url(&r.id)
            )),
        ),
        status::ACTIVE if previous_active.is_some() => (
            json!("replacing"),
            Some(format!(
                "replaces relationship {}, which ends once this one is active",
                previous_active.map(|p| p.id.as_str()).unwrap_or_default()
            )),
        ),
        status::ACTIVE => (
            json!(status::ACTIVE),
            replacement_note(r, attributes).or_else(|| expiry_note(r, dir.gdap_read_at.as_deref())),
        ),
        ended => (
            json!(ended),
            Some(match ended {
                status::TERMINATED | status::TERMINATING | status::TERMINATION_REQUESTED => {
                    format!(
                        "{}{}: a new relationship is needed",
                        Finding::Terminated.prefix(),
                        r.end_date_time
                            .as_deref()
                            .map(|d| format!(" on {}", day(d)))
                            .unwrap_or_default()
                    )
                }
                // `expiring`: past its end date, its access being removed (src/gdap.rs).
                _ => format!(
                    "{}{}{}: a new relationship is needed",
                    Finding::Expired.prefix(),
                    r.end_date_time
                        .as_deref()
                        .map(|d| format!(" on {}", day(d)))
                        .unwrap_or_default(),
                    if ended == status::EXPIRING {
                        " (Graph is removing its access)"
                    } else {
                        ""
                    }
                ),
            }),
        ),
    };
    let same_length =
        |a: &str, b: &str| crate::gdap::duration_days(a).ok() == crate::gdap::duration_days(b).ok();
    let duration = if same_length(&r.duration, attr_str(attributes, "duration")) {
        desired_value("duration")
    } else {
        json!(r.duration)
    };
    let assignments = if r.status == status::ACTIVE {
        assignments_value(r.current_assignments().map(|a| {
            let status =
                (!matches!(a.status.as_str(), "active" | "pending")).then(|| a.status.clone());
            (a.group_id.clone(), a.roles.clone(), status)
        }))
    } else {
        // Graph manages access assignments only on an active relationship.
        desired_value("accessAssignments")
    };
    let mut ids: crate::state::Ids = [
        ("relationshipId".to_string(), r.id.clone()),
        ("displayName".to_string(), r.display_name.clone()),
    ]
    .into_iter()
    .collect();
    if let Some(previous) = stored.and_then(|s| s.ids.get("previousRelationshipId")) {
        ids.insert("previousRelationshipId".into(), previous.clone());
    }
    Some(LiveObject {
        ids,
        attributes: [
            ("status".to_string(), state),
            ("displayName".to_string(), display_name),
            ("roles".to_string(), json!(sorted(r.roles.clone()))),
            ("duration".to_string(), duration),
            (
                "autoExtendDuration".to_string(),
                json!(if r.auto_extends() { "P180D" } else { "PT0S" }),
            ),
            ("accessAssignments".to_string(), assignments),
        ]
        .into_iter()
        .collect(),
        note,
        pending_invitation: false,
    })
}

/// Why an active relationship cannot become what the manifests ask in place (Graph changes
/// only the auto-extension and removes Global Administrator): a new one replaces it.
fn replacement_note(r: &LiveRelationship, attributes: &Attributes) -> Option<String> {
    let desired: Vec<String> = attributes
        .get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let in_place = crate::gdap::changes_in_place(r, &desired, attr_str(attributes, "duration"));
    (!in_place).then(|| {
        "its roles or duration cannot change in place: a new relationship (approved by the customer) replaces it, and it keeps access until then".to_string()
    })
}

/// "expires in 5 days (2026-12-13) without auto-extend", within [`EXPIRY_NOTICE_DAYS`] of the
/// end, judged at the time the relationships were read.
fn expiry_note(r: &LiveRelationship, read_at: Option<&str>) -> Option<String> {
    if r.auto_extends() {
        return None;
    }
    let end: jiff::Timestamp = r.end_date_time.as_deref()?.parse().ok()?;
    let now: jiff::Timestamp = read_at?.parse().ok()?;
    let hours = end.duration_since(now).as_hours();
    let days = (hours + 23).div_euclid(24).max(0);
    (days <= EXPIRY_NOTICE_DAYS).then(|| {
        format!(
            "{}{days} day{} ({}) without auto-extend",
            Finding::Expiring.prefix(),
            if days == 1 { "" } else { "s" },
            day(&end.to_string())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::Finding;

    #[test]
    fn every_note_names_its_finding() {
        for f in Finding::ALL {
            assert_eq!(Finding::of_note(&format!("{}x", f.prefix())), Some(f));
        }
        assert_eq!(
            Finding::of_note("expires in 5 days (2026-12-13) without auto-extend"),
            Some(Finding::Expiring)
        );
        assert_eq!(
            Finding::of_note(
                "expired on 2026-12-01 (Graph is removing its access): a new relationship is needed"
            ),
            Some(Finding::Expired)
        );
        assert_eq!(
            Finding::of_note("created, not yet locked for approval"),
            None
        );
        assert_eq!(
            Finding::of_note("replaces relationship r, which ends once this one is active"),
            None
        );
    }
}
