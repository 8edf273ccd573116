//! The live sources a tenant's directory is read from, in one table: each has a name (what
//! kinds declare in `resources::LiveRules::sources`), the permissions its requests need, its
//! request(s) and the parser that puts the answer into its part of the `LiveDirectory`.
//!
//! A source is **required** (a kind needs it: when it fails, that kind is not planned and the
//! tenant fails) or **report-only** (drift reads it: when Graph refuses it, the report says
//! "not checked" and nothing fails). First-round sources go into the tenant's one `$batch`;
//! a follow-up source builds its requests from what the first round found (members of the
//! groups that hold privileged roles), so only tenants that need it pay a second round trip.
//!
//! Adding a source (end-user contacts from `/users`, licences from `subscribedSkus`, Secure
//! Score) is adding an entry to [`SOURCES`] and naming it in the kinds that need it.

use serde_json::Value;

use super::client::BatchRequest;
use super::permissions;
use super::read::{
    MEMBER_FIELDS, add_eligible, eligible_refusal, eligible_request, guests_request, parse_guests,
    parse_role_assignments, roles_request,
};
use crate::live::{LiveDirectory, LivePrincipal, PrincipalKind, source};

/// When a source is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// In the tenant's `$batch`.
    First,
    /// After the first round, from what it found (its own `$batch`, only when needed).
    FollowUp,
}

pub struct Source {
    /// e.g. `roleAssignments` (see `live::source`).
    pub name: &'static str,
    /// The permissions (any one) its requests need, checked against the token before the
    /// read is sent; empty: not checked up front (Graph's answer says).
    pub permissions: &'static [&'static str],
    /// A refusal is "not checked" in reports, never a failed tenant.
    pub report_only: bool,
    pub round: Round,
    /// Its requests; ids start with the source's name. Empty: nothing to read (read).
    pub requests: fn(dir: &LiveDirectory) -> Vec<BatchRequest>,
    /// Puts the items of one answer (every page) into the directory.
    pub parse: fn(dir: &mut LiveDirectory, request_id: &str, items: &[Value]),
    /// For a report-only source: why Graph refused it (status, body), for the report.
    pub refusal: fn(status: u16, body: &Value, error: &super::GraphClientError) -> String,
}

/// Every source, in reading order.
pub const SOURCES: &[Source] = &[
    Source {
        name: source::GUESTS,
        permissions: permissions::USERS_READ,
        report_only: false,
        round: Round::First,
        requests: |_| vec![guests_request(source::GUESTS)],
        parse: |dir, _, items| parse_guests(dir, items),
        refusal: graph_error,
    },
    Source {
        name: source::ROLE_ASSIGNMENTS,
        permissions: permissions::ROLES_READ,
        report_only: false,
        round: Round::First,
        requests: |_| vec![roles_request(source::ROLE_ASSIGNMENTS)],
        parse: |dir, _, items| parse_role_assignments(dir, items),
        refusal: graph_error,
    },
    Source {
        // PIM needs Entra ID P2 and a permission of its own: without them the tenant is still
        // read, and the report says eligible assignments were not checked.
        name: source::ROLE_ELIGIBILITY,
        permissions: &[],
        report_only: true,
        round: Round::First,
        requests: |_| vec![eligible_request(source::ROLE_ELIGIBILITY)],
        parse: |dir, _, items| add_eligible(dir, items),
        refusal: |status, body, _| eligible_refusal(status, body),
    },
    Source {
        // Only a tenant where a group holds a privileged role pays for it.
        name: source::GROUP_MEMBERS,
        permissions: &[],
        report_only: true,
        round: Round::FollowUp,
        requests: group_member_requests,
        parse: parse_group_members,
        refusal: graph_error,
    },
];

/// The source called `name`.
pub fn by_name(name: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.name == name)
}

/// What to read for `kinds`: the sources they need, plus every report-only source (drift's
/// privileged-access check reads them for any tenant), in table order.
pub fn for_kinds<'a>(
    kinds: impl IntoIterator<Item = &'a crate::resources::ResourceKind>,
) -> Vec<&'static Source> {
    let needed: Vec<&str> = kinds
        .into_iter()
        .filter_map(|k| k.live.as_ref())
        .flat_map(|rules| rules.sources.iter().copied())
        .collect();
    SOURCES
        .iter()
        .filter(|s| s.report_only || needed.contains(&s.name))
        .collect()
}

fn graph_error(_: u16, _: &Value, error: &super::GraphClientError) -> String {
    error.to_string()
}

/// `groupMembers/<group id>` for each group that holds a privileged role.
fn group_member_requests(dir: &LiveDirectory) -> Vec<BatchRequest> {
    dir.principals
        .values()
        .filter(|p| p.kind == PrincipalKind::Group)
        .map(|p| members_request(&format!("{}/{}", source::GROUP_MEMBERS, p.id), &p.id))
        .collect()
}

fn parse_group_members(dir: &mut LiveDirectory, request_id: &str, items: &[Value]) {
    let group = request_id
        .strip_prefix(source::GROUP_MEMBERS)
        .and_then(|g| g.strip_prefix('/'))
        .unwrap_or(request_id);
    dir.group_members.insert(
        group.to_string(),
        items.iter().filter_map(LivePrincipal::from_graph).collect(),
    );
}

/// The request that lists a group's transitive members (no cast: no advanced query needed).
pub fn members_request(id: &str, group_id: &str) -> BatchRequest {
    BatchRequest {
        id: id.into(),
        method: "GET".into(),
        url: format!("/groups/{group_id}/transitiveMembers?$select={MEMBER_FIELDS}&$top=999"),
        body: None,
        depends_on: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_needs_known_required_sources() {
        for k in crate::resources::KINDS {
            // GDAP relationships are read once per run in the partner tenant, not in the
            // customer's `$batch` (`ops::plan::with_gdap`).
            for name in k
                .live
                .iter()
                .flat_map(|r| r.sources.iter())
                .filter(|n| **n != crate::live::source::GDAP)
            {
                let s = by_name(name).unwrap_or_else(|| panic!("{}: source {name}", k.name));
                assert!(!s.report_only, "{}: {name} is report-only", k.name);
            }
        }
        let names: Vec<&str> = for_kinds(crate::resources::KINDS)
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "guests",
                "roleAssignments",
                "roleEligibility",
                "groupMembers"
            ]
        );
    }

    #[test]
    fn request_ids_start_with_the_source_name() {
        let mut dir = LiveDirectory::default();
        dir.principals.insert(
            "g1".into(),
            LivePrincipal {
                id: "g1".into(),
                kind: PrincipalKind::Group,
                display_name: None,
                user_principal_name: None,
                mail: None,
            },
        );
        for s in SOURCES {
            for r in (s.requests)(&dir) {
                assert!(r.id.starts_with(s.name), "{}: {}", s.name, r.id);
            }
        }
        parse_group_members(&mut dir, "groupMembers/g1", &[]);
        assert!(dir.group_members.contains_key("g1"));
    }
}
