//! GDAP (granular delegated admin privileges) rules as plain data, shared by the manifest
//! checks, the planner and the sandbox so all three agree on them.
//!
//! Sources (Microsoft Learn, v1.0): tenantrelationship-post-delegatedadminrelationships.md
//! (displayName "unique across *all* delegated admin relationships of the partner", at most
//! 50 characters; duration "between `P1D` and `P2Y` inclusive"; autoExtendDuration `P0D`,
//! `PT0S` or `P180D`, default `PT0S`), delegatedadminrelationship.md (statuses;
//! `endDateTime = activatedDateTime + duration`), and GRAPH.md "GDAP details" (no auto-extend
//! with Global Administrator; the customer approves at the admin center URL below).

/// Global Administrator's template id (`data/entra_builtin_roles.tsv`).
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// The longest display name Graph accepts.
pub const MAX_DISPLAY_NAME: usize = 50;

/// Bounds of `duration`, in days (P1D..P2Y; two years count as 730 days, see
/// [`duration_days`]).
pub const MIN_DAYS: i64 = 1;
pub const MAX_DAYS: i64 = 730;

/// The only auto-extension Graph offers; `PT0S` and `P0D` mean none.
pub const AUTO_EXTEND_DAYS: i64 = 180;

/// Where the customer's admin approves a relationship (GRAPH.md, "GDAP details").
pub fn approval_url(relationship_id: &str) -> String {
    format!(
        "https://admin.microsoft.com/AdminPortal/Home#/partners/invitation/granularAdminRelationships/{relationship_id}"
    )
}

/// An ISO 8601 duration as a whole number of days: `P730D`, `P2Y`, `P1Y6M`, `P8W`. Years and
/// months are counted from 2001-01-01 (no leap day within two years of it), so `P2Y` is 730
/// days wherever it is read and the result never depends on the clock. A time part is refused
/// unless it is zero (`PT0S`), since Graph's durations here are whole days.
pub fn duration_days(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if !text.starts_with('P') {
        return Err(format!(
            "'{text}' is not an ISO 8601 duration (like P730D or P2Y)"
        ));
    }
    let span: jiff::Span = text
        .parse()
        .map_err(|_| format!("'{text}' is not an ISO 8601 duration (like P730D or P2Y)"))?;
    if span.is_negative() {
        return Err(format!("'{text}' is negative"));
    }
    let time_part = span.get_hours() != 0
        || span.get_minutes() != 0
        || span.get_seconds() != 0
        || span.get_milliseconds() != 0
        || span.get_microseconds() != 0
        || span.get_nanoseconds() != 0;
    if time_part {
        return Err(format!("'{text}' has a time part; use whole days (P30D)"));
    }
    let anchor = jiff::civil::date(2001, 1, 1);
    let end = anchor
        .checked_add(span)
        .map_err(|_| format!("'{text}' is out of range"))?;
    Ok(anchor.until(end).map_err(|e| e.to_string())?.get_days() as i64)
}

/// A relationship's duration: `Ok(days)` within P1D..P2Y.
pub fn check_duration(text: &str) -> Result<i64, String> {
    let days = duration_days(text)?;
    if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
        return Err(format!(
            "duration {text} is {days} days; it must be between P1D and P2Y (730 days)"
        ));
    }
    Ok(days)
}

/// An auto-extension: `Ok(true)` for P180D, `Ok(false)` for none (`PT0S`, `P0D`).
pub fn check_auto_extend(text: &str) -> Result<bool, String> {
    match text.trim() {
        "PT0S" | "P0D" => Ok(false),
        "P180D" => Ok(true),
        other => Err(format!(
            "autoExtendDuration '{other}' is not one of PT0S, P0D, P180D"
        )),
    }
}

/// A display name Graph accepts: not blank, at most 50 characters.
pub fn check_display_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the display name is empty".into());
    }
    let n = name.chars().count();
    if n > MAX_DISPLAY_NAME {
        return Err(format!(
            "the display name has {n} characters; Graph accepts at most {MAX_DISPLAY_NAME}"
        ));
    }
    Ok(())
}

/// Whether these role template ids include Global Administrator.
pub fn has_global_administrator<'a>(roles: impl IntoIterator<Item = &'a str>) -> bool {
    roles
        .into_iter()
        .any(|r| r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR))
}

/// Whether `live` can become a relationship with `desired_roles` and `desired_duration` without
/// a new one: anything while `created`; otherwise the same length and the same roles, or the
/// same without Global Administrator while `active` (delegatedadminrelationship-update.md:
/// updates only while created, "remove the Microsoft Entra Global Administrator role when the
/// status property is active"; GRAPH.md, "GDAP, corrections"); nothing once ended. The
/// planner's note and apply both decide with it.
pub fn changes_in_place(
    live: &LiveRelationship,
    desired_roles: &[String],
    desired_duration: &str,
) -> bool {
    if status::is_ended(&live.status) {
        return false;
    }
    if live.status == status::CREATED {
        return true;
    }
    let set = |roles: &mut dyn Iterator<Item = &String>| {
        roles
            .map(|r| r.to_lowercase())
            .collect::<std::collections::BTreeSet<String>>()
    };
    let live_roles = set(&mut live.roles.iter());
    let desired = set(&mut desired_roles.iter());
    let without_ga = set(&mut live
        .roles
        .iter()
        .filter(|r| !r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR)));
    let roles = live_roles == desired
        || (live.status == status::ACTIVE
            && without_ga.len() < live_roles.len()
            && without_ga == desired);
    let same_length = duration_days(&live.duration).ok() == duration_days(desired_duration).ok();
    roles && same_length
}

/// Relationship statuses (delegatedadminrelationship.md, "delegatedAdminRelationshipStatus
/// values").
pub mod status {
    pub const CREATED: &str = "created";
    pub const APPROVAL_PENDING: &str = "approvalPending";
    pub const APPROVED: &str = "approved";
    pub const ACTIVATING: &str = "activating";
    pub const ACTIVE: &str = "active";
    pub const EXPIRING: &str = "expiring";
    pub const EXPIRED: &str = "expired";
    pub const TERMINATION_REQUESTED: &str = "terminationRequested";
    pub const TERMINATING: &str = "terminating";
    pub const TERMINATED: &str = "terminated";

    /// Statuses a relationship never leaves: a new relationship is needed. `expiring` is one:
    /// Learn's "delegatedAdminRelationshipStatus values" (delegatedadminrelationship.md) says
    /// "The relationship has passed its expiration date" (`expired`: "The system completes
    /// the deprovisioning"), so it is past its end and being deprovisioned, as `terminating`
    /// is after a termination; a relationship still within its duration reads `active`.
    pub fn is_ended(status: &str) -> bool {
        matches!(
            status,
            EXPIRED | TERMINATION_REQUESTED | TERMINATING | TERMINATED | EXPIRING
        )
    }
}

/// A relationship the manifests declare for one customer tenant (`kind: GdapRelationship`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredRelationship {
    /// The document's stable name.
    pub name: String,
    /// The customer tenant's stable name.
    pub tenant: String,
    /// `{tenant}` already replaced.
    pub display_name: String,
    /// Lowercase template ids, as declared, each once.
    pub roles: Vec<String>,
    pub duration: String,
    pub auto_extend: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_assignments: Vec<DesiredAssignment>,
}

/// A partner security group and the roles of its relationship it gets.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredAssignment {
    /// Lowercase object id.
    pub group_id: String,
    pub roles: Vec<String>,
}

impl DesiredRelationship {
    /// `autoExtendDuration` as Graph spells it.
    pub fn auto_extend_duration(&self) -> &'static str {
        if self.auto_extend { "P180D" } else { "PT0S" }
    }
}

/// A relationship as Graph shows it (delegatedadminrelationship.md), the planner's live
/// input; roles are lowercase template ids in Graph's order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRelationship {
    pub id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_display_name: Option<String>,
    pub roles: Vec<String>,
    pub duration: String,
    pub auto_extend_duration: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    /// `@odata.etag`: what an update or delete sends as `If-Match`.
    #[serde(default)]
    pub etag: String,
    /// Read only for active relationships (Graph manages them only then).
    #[serde(default)]
    pub access_assignments: Vec<LiveAccessAssignment>,
}

/// An access assignment as Graph shows it (delegatedadminaccessassignment.md).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveAccessAssignment {
    pub id: String,
    /// The partner security group (`accessContainer.accessContainerId`), lowercase.
    pub group_id: String,
    pub roles: Vec<String>,
    /// pending, active, deleting, deleted, error.
    pub status: String,
    #[serde(default)]
    pub etag: String,
}

fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn unified_roles(v: &serde_json::Value) -> Option<Vec<String>> {
    v["accessDetails"]["unifiedRoles"]
        .as_array()?
        .iter()
        .map(|r| r["roleDefinitionId"].as_str().map(str::to_lowercase))
        .collect()
}

impl LiveRelationship {
    /// From Graph's JSON; `None` when an identifying field is missing.
    pub fn from_graph(v: &serde_json::Value) -> Option<LiveRelationship> {
        Some(LiveRelationship {
            id: text(v, "id")?,
            display_name: text(v, "displayName")?,
            customer_tenant_id: text(&v["customer"], "tenantId").map(|t| t.to_lowercase()),
            customer_display_name: text(&v["customer"], "displayName"),
            roles: unified_roles(v)?,
            duration: text(v, "duration").unwrap_or_default(),
            auto_extend_duration: text(v, "autoExtendDuration").unwrap_or_else(|| "PT0S".into()),
            status: text(v, "status")?,
            activated_date_time: text(v, "activatedDateTime"),
            end_date_time: text(v, "endDateTime"),
            etag: text(v, "@odata.etag").unwrap_or_default(),
            access_assignments: Vec::new(),
        })
    }

    /// Whether it auto-extends (P180D).
    pub fn auto_extends(&self) -> bool {
        check_auto_extend(&self.auto_extend_duration) == Ok(true)
    }

    /// The access assignments that still give access or are on their way to (not deleted
    /// or being deleted).
    pub fn current_assignments(&self) -> impl Iterator<Item = &LiveAccessAssignment> {
        self.access_assignments
            .iter()
            .filter(|a| !matches!(a.status.as_str(), "deleted" | "deleting"))
    }
}

impl LiveAccessAssignment {
    pub fn from_graph(v: &serde_json::Value) -> Option<LiveAccessAssignment> {
        let container = &v["accessContainer"];
        Some(LiveAccessAssignment {
            id: text(v, "id")?,
            group_id: text(container, "accessContainerId")?.to_lowercase(),
            roles: unified_roles(v)?,
            status: text(v, "status")?,
            etag: text(v, "@odata.etag").unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_count_whole_days_and_two_years_are_730() {
        assert_eq!(duration_days("P730D"), Ok(730));
        assert_eq!(duration_days("P2Y"), Ok(730));
        assert_eq!(duration_days("P1Y"), Ok(365));
        assert_eq!(duration_days("P8W"), Ok(56));
        assert_eq!(duration_days("P1D"), Ok(1));
        assert_eq!(duration_days("PT0S"), Ok(0));
        assert!(duration_days("PT24H").is_err(), "a time part");
        assert!(
            duration_days("730 days").is_err(),
            "jiff's friendly format is not ISO"
        );
        assert!(duration_days("P").is_err());
        assert!(duration_days("-P1D").is_err());
    }

    #[test]
    fn durations_must_be_between_one_day_and_two_years() {
        assert_eq!(check_duration("P2Y"), Ok(730));
        assert!(check_duration("P731D").is_err());
        assert!(check_duration("P0D").is_err());
        assert!(check_duration("P3Y").is_err());
        assert_eq!(check_duration("P90D"), Ok(90));
    }

    #[test]
    fn auto_extension_is_none_or_180_days() {
        assert_eq!(check_auto_extend("PT0S"), Ok(false));
        assert_eq!(check_auto_extend("P0D"), Ok(false));
        assert_eq!(check_auto_extend("P180D"), Ok(true));
        assert!(check_auto_extend("P90D").is_err());
    }

    #[test]
    fn display_names_are_at_most_50_characters() {
        assert!(check_display_name(&"x".repeat(50)).is_ok());
        assert!(
            check_display_name(&"é".repeat(50)).is_ok(),
            "characters, not bytes"
        );
        assert!(check_display_name(&"x".repeat(51)).is_err());
        assert!(check_display_name("  ").is_err());
    }

    #[test]
    fn expiring_is_past_the_end_date_so_ended_while_pending_statuses_are_not() {
        assert!(status::is_ended(status::EXPIRING));
        assert!(status::is_ended(status::EXPIRED));
        assert!(status::is_ended(status::TERMINATING));
        for s in [
            status::CREATED,
            status::APPROVAL_PENDING,
            status::APPROVED,
            status::ACTIVATING,
            status::ACTIVE,
        ] {
            assert!(!status::is_ended(s), "{s}");
        }
    }

    fn relationship(status: &str, roles: &[&str], duration: &str) -> LiveRelationship {
        LiveRelationship {
            id: "r".into(),
            display_name: "R".into(),
            customer_tenant_id: None,
            customer_display_name: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            duration: duration.into(),
            auto_extend_duration: "PT0S".into(),
            status: status.into(),
            activated_date_time: None,
            end_date_time: None,
            etag: String::new(),
            access_assignments: Vec::new(),
        }
    }

    #[test]
    fn what_changes_in_place_is_decided_once() {
        const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
        const USERS: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
        let helpdesk = vec![HELPDESK.to_string()];
        let with_ga = [GLOBAL_ADMINISTRATOR, HELPDESK];
        // Active: Global Administrator goes in place; another role or length does not.
        assert!(changes_in_place(
            &relationship("active", &with_ga, "P730D"),
            &helpdesk,
            "P2Y"
        ));
        assert!(!changes_in_place(
            &relationship("active", &[HELPDESK], "P730D"),
            &[HELPDESK.to_string(), USERS.to_string()],
            "P730D"
        ));
        assert!(!changes_in_place(
            &relationship("active", &[HELPDESK], "P730D"),
            &helpdesk,
            "P90D"
        ));
        // Pending approval: nothing can change, not even removing Global Administrator.
        assert!(!changes_in_place(
            &relationship("approvalPending", &with_ga, "P730D"),
            &helpdesk,
            "P730D"
        ));
        assert!(changes_in_place(
            &relationship("approvalPending", &[HELPDESK], "P730D"),
            &helpdesk,
            "P730D"
        ));
        // Created: anything; ended: nothing.
        assert!(changes_in_place(
            &relationship("created", &[USERS], "P90D"),
            &helpdesk,
            "P730D"
        ));
        assert!(!changes_in_place(
            &relationship("expired", &[HELPDESK], "P730D"),
            &helpdesk,
            "P730D"
        ));
    }

    #[test]
    fn the_approval_url_names_the_relationship() {
        assert_eq!(
            approval_url("abc-123"),
            "https://admin.microsoft.com/AdminPortal/Home#/partners/invitation/granularAdminRelationships/abc-123"
        );
    }
}
