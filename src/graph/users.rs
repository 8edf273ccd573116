//! The end-user sync's read of one tenant: `GET /users/delta` from the stored delta link (or
//! the whole directory on a first sync, when the rules that choose users changed, or when
//! Graph says the link is no longer good), the transitive members of each group the rules
//! name (users/delta tracks no membership, so they are read every run), and the users whose
//! membership changed since the last read, by id.
//!
//! Graph facts (user-delta.md, delta-query-overview.md, delta-query-users.md): query options
//! only on the first call; `$top` is ignored (about 200 users a page); each page but the last
//! has `@odata.nextLink`, the last `@odata.deltaLink`; deleted users come as `@removed`
//! (`changed`: soft-deleted, `deleted`: gone); replays are possible; a link older than 7 days
//! answers 400 `syncStateNotFound`, and `410 Gone` (with a `Location`) asks for a full
//! resync. A no-change run costs one request for the delta and one per named group.

use std::collections::BTreeSet;

use super::GraphClientError;
use super::client::{BatchRequest, GraphClient};
use crate::end_users::{EntraUser, GroupRef, SyncPosition, UserProperty, group_key};
use crate::live::{LiveGroup, LiveUsers, RemovedUser};
use crate::outcome::{Cause, Failure};

/// What one tenant's users read starts from.
#[derive(Clone, Debug)]
pub struct UsersToRead {
    /// The `EndUserSync` document's name (what a message about its groups names).
    pub sync_name: String,
    /// `end_users::rules_digest` of the tenant's rules now.
    pub rules_digest: String,
    /// The groups the rules name.
    pub groups: Vec<GroupRef>,
    /// Where each group is named (`path:line:column`), for a message about one.
    pub group_sources: std::collections::BTreeMap<GroupRef, String>,
    /// The stored position (none before the first apply).
    pub position: Option<SyncPosition>,
}

impl UsersToRead {
    /// "EndUserSync NAME (path:line:column)": who names `group`, for a message about it.
    fn named_by(&self, group: &GroupRef) -> String {
        match self.group_sources.get(group) {
            Some(at) => format!("EndUserSync {} ({at})", self.sync_name),
            None => format!("EndUserSync {}", self.sync_name),
        }
    }
}

/// The permissions the read needs (any one of each): users, and the groups rules name.
pub use super::permissions::{GROUPS_READ, USERS_READ};

/// Reads one tenant's users. `Err` is the source's failure (the tenant's contacts are then
/// not planned: nothing is archived for a read that did not happen).
pub async fn read_users(
    client: &GraphClient,
    tenant_id: &str,
    request: &UsersToRead,
) -> Result<LiveUsers, Failure> {
    let failed = |e: GraphClientError| e.failure().with_source(crate::live::source::USERS);
    let start = match &request.position {
        None => Start::Whole("first sync of this tenant".into()),
        Some(p) if p.rules_digest != request.rules_digest => {
            Start::Whole("the rules that choose users changed: read whole".into())
        }
        Some(p) if p.delta_link.is_empty() => Start::Whole("no delta link stored".into()),
        Some(p) => Start::Link(p.delta_link.clone()),
    };
    let (delta, groups) = tokio::join!(
        read_delta(client, tenant_id, start),
        read_groups(client, tenant_id, request)
    );
    let mut read = delta.map_err(failed)?;
    read.groups = groups?;
    if read.complete.is_none() {
        fetch_membership_changes(client, tenant_id, request, &mut read)
            .await
            .map_err(failed)?;
    }
    Ok(read)
}

enum Start {
    Whole(String),
    Link(String),
}

/// Pages users/delta to its delta link, starting over whole when Graph says the stored link
/// is no longer good.
async fn read_delta(
    client: &GraphClient,
    tenant_id: &str,
    start: Start,
) -> Result<LiveUsers, GraphClientError> {
    let first_url = || format!("/users/delta?$select={}", UserProperty::select());
    let (mut url, mut complete) = match start {
        Start::Whole(why) => (first_url(), Some(why)),
        Start::Link(link) => (link, None),
    };
    let mut read = LiveUsers::default();
    loop {
        check_link(client, &url)?;
        let page: DeltaPage = match client.get_as(tenant_id, &url).await {
            Ok(page) => page,
            Err(e) if complete.is_none() && sync_state_lost(&e) => {
                // The stored link is no longer good: read whole (what was read is dropped:
                // a whole read lists every user).
                complete = Some(format!(
                    "the stored delta link was refused ({}): read whole",
                    e.code().unwrap_or("410 Gone")
                ));
                read = LiveUsers::default();
                url = first_url();
                continue;
            }
            Err(e) => return Err(e),
        };
        for item in page.value {
            match item.removed {
                Some(ref removed) => {
                    if let Some(id) = &item.id.0 {
                        read.removed.push(RemovedUser {
                            id: id.to_lowercase(),
                            soft: removed.reason.0.as_deref() == Some("changed"),
                        });
                    }
                }
                None => read.users.extend(item.into_user()),
            }
        }
        if let Some(next) = page.next_link {
            url = next;
            continue;
        }
        // Kept relative to Graph's base, like a path: the same Graph may be reached at
        // another address next run (a national cloud's configured URL, the sandbox's port).
        let link = page.delta_link.as_deref().unwrap_or_default();
        check_link(client, link)?;
        read.delta_link = link
            .strip_prefix(client.config().graph_url.as_str())
            .unwrap_or(link)
            .to_string();
        break;
    }
    if read.delta_link.is_empty() {
        return Err(GraphClientError::Transport {
            tenant: tenant_id.to_string(),
            method: "GET".into(),
            path: "/users/delta".into(),
            message: "the last page had neither a next nor a delta link".into(),
        });
    }
    // A replay may list a user twice (and a user removed, then restored): the last word
    // counts.
    dedup_last(&mut read);
    read.complete = complete;
    Ok(read)
}

/// A users/delta page, read as [`EntraUser::from_graph`] reads a user (unknown properties
/// ignored, nulls and empty texts absent, values of another type ignored), without a
/// `serde_json::Value` for each of its 200 users.
#[derive(serde::Deserialize)]
struct DeltaPage {
    #[serde(default)]
    value: Vec<GraphUser>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

#[derive(serde::Deserialize)]
struct Removed {
    #[serde(default)]
    reason: Text,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GraphUser {
    id: Text,
    display_name: Text,
    given_name: Text,
    surname: Text,
    mail: Text,
    user_principal_name: Text,
    other_mails: Texts,
    user_type: Text,
    account_enabled: Flag,
    department: Text,
    office_location: Text,
    company_name: Text,
    job_title: Text,
    business_phones: Texts,
    mobile_phone: Text,
    /// A deleted user: only its id and this.
    #[serde(rename = "@removed")]
    removed: Option<Removed>,
}

impl GraphUser {
    /// `None` without an id, as [`EntraUser::from_graph`].
    fn into_user(self) -> Option<EntraUser> {
        Some(EntraUser {
            id: self.id.0?.to_lowercase(),
            display_name: self.display_name.0,
            given_name: self.given_name.0,
            surname: self.surname.0,
            mail: self.mail.0,
            user_principal_name: self.user_principal_name.0,
            other_mails: self.other_mails.0,
            user_type: self.user_type.0,
            account_enabled: self.account_enabled.0,
            department: self.department.0,
            office_location: self.office_location.0,
            company_name: self.company_name.0,
            job_title: self.job_title.0,
            business_phones: self.business_phones.0,
            mobile_phone: self.mobile_phone.0,
        })
    }
}

/// A text property: a non-empty string, else absent (null, empty, or another type).
#[derive(Default)]
struct Text(Option<String>);

/// A list of texts: its non-empty strings (anything else leaves it empty or is skipped).
#[derive(Default)]
struct Texts(Vec<String>);

/// A boolean property: absent unless `true` or `false`.
#[derive(Default)]
struct Flag(Option<bool>);

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(match Lenient::deserialize(d)? {
            Lenient::Text(s) if !s.is_empty() => Some(s),
            _ => None,
        }))
    }
}

impl<'de> serde::Deserialize<'de> for Texts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Texts(match Lenient::deserialize(d)? {
            Lenient::List(items) => items,
            _ => Vec::new(),
        }))
    }
}

impl<'de> serde::Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Flag(match Lenient::deserialize(d)? {
            Lenient::Flag(b) => Some(b),
            _ => None,
        }))
    }
}

/// Any JSON value, kept only as far as a user property can use it.
enum Lenient {
    Text(String),
    /// The non-empty strings of an array.
    List(Vec<String>),
    Flag(bool),
    Other,
}

impl<'de> serde::Deserialize<'de> for Lenient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Lenient;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient::Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Lenient, E> {
                Ok(Lenient::Text(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Lenient, E> {
                Ok(Lenient::Flag(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Lenient, E> {
                Ok(Lenient::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Lenient, E> {
                Ok(Lenient::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Lenient, E> {
                Ok(Lenient::Other)
            }
            fn visit_unit<E>(self) -> Result<Lenient, E> {
                Ok(Lenient::Other)
            }
            fn visit_none<E>(self) -> Result<Lenient, E> {
                Ok(Lenient::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Lenient, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Lenient>()? {
                    if let Lenient::Text(s) = item
                        && !s.is_empty()
                    {
                        items.push(s);
                    }
                }
                Ok(Lenient::List(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Lenient, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Lenient::Other)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Keeps each user's last entry (users and removals as Graph listed them, in order).
fn dedup_last(read: &mut LiveUsers) {
    let mut seen = BTreeSet::new();
    read.users.reverse();
    read.users.retain(|u| seen.insert(u.id.clone()));
    read.users.reverse();
    // A user both listed and removed in one round (a replay, or a restore after a delete) is
    // taken as present: the next round says otherwise if it is gone.
    let present: BTreeSet<&str> = read.users.iter().map(|u| u.id.as_str()).collect();
    let mut removed_seen = BTreeSet::new();
    read.removed
        .retain(|r| !present.contains(r.id.as_str()) && removed_seen.insert(r.id.clone()));
}

/// Graph says to start over: 400 `syncStateNotFound` (a link older than 7 days) or
/// `410 Gone` (`resyncRequired`, `syncStateInvalid`, ...).
fn sync_state_lost(e: &GraphClientError) -> bool {
    match e.status() {
        Some(410) => true,
        Some(400) => matches!(
            e.code(),
            Some("syncStateNotFound" | "syncStateInvalid" | "resyncRequired")
        ),
        _ => false,
    }
}

/// A link from Graph (or state) must point at the Graph this client talks to: a link
/// elsewhere would carry the tenant's token away.
fn check_link(client: &GraphClient, url: &str) -> Result<(), GraphClientError> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Ok(());
    }
    let base = &client.config().graph_url;
    let ok = url
        .strip_prefix(base.as_str())
        .is_some_and(|rest| rest.starts_with('/'));
    if ok {
        Ok(())
    } else {
        Err(GraphClientError::Transport {
            tenant: String::new(),
            method: "GET".into(),
            path: url.chars().take(80).collect(),
            message: format!("refused to follow a link outside {base}"),
        })
    }
}

/// Each named group and its transitive user members. A group by id is one request; by name,
/// the id the last read found is used (one request), else it is looked up first.
async fn read_groups(
    client: &GraphClient,
    tenant_id: &str,
    request: &UsersToRead,
) -> Result<Vec<LiveGroup>, Failure> {
    let failed = |e: GraphClientError| e.failure().with_source(crate::live::source::USERS);
    let mut groups = Vec::with_capacity(request.groups.len());
    for reference in &request.groups {
        let known = request
            .position
            .as_ref()
            .and_then(|p| p.groups.get(&group_key(reference)));
        let (id, mut display_name) = match (reference, known) {
            (GroupRef::Id(id), known) => (
                id.clone(),
                known.map(|k| k.display_name.clone()).unwrap_or_default(),
            ),
            (GroupRef::Name(_), Some(k)) if !k.id.is_empty() => {
                (k.id.clone(), k.display_name.clone())
            }
            (GroupRef::Name(name), _) => {
                find_group(client, tenant_id, name, &request.named_by(reference)).await?
            }
        };
        let members = match group_members(client, tenant_id, &id).await {
            Ok(members) => members,
            // A group found by name last time and gone (or renamed) since: look it up again.
            Err(e) if e.status() == Some(404) && matches!(reference, GroupRef::Name(_)) => {
                let GroupRef::Name(name) = reference else {
                    unreachable!()
                };
                let (id, name) =
                    find_group(client, tenant_id, name, &request.named_by(reference)).await?;
                display_name = name;
                let members = group_members(client, tenant_id, &id)
                    .await
                    .map_err(failed)?;
                groups.push(LiveGroup {
                    reference: reference.clone(),
                    id,
                    display_name,
                    members,
                });
                continue;
            }
            Err(e) if e.status() == Some(404) => {
                return Err(Failure::new(
                    Cause::GraphError,
                    format!(
                        "group {} named by {} does not exist in this tenant",
                        reference.as_str(),
                        request.named_by(reference)
                    ),
                )
                .with_source(crate::live::source::USERS));
            }
            Err(e) => return Err(failed(e)),
        };
        if display_name.is_empty() {
            display_name = match client
                .get(tenant_id, &format!("/groups/{id}?$select=id,displayName"))
                .await
            {
                Ok(v) => v["displayName"].as_str().unwrap_or(&id).to_string(),
                Err(e) => return Err(failed(e)),
            };
        }
        groups.push(LiveGroup {
            reference: reference.clone(),
            id,
            display_name,
            members,
        });
    }
    Ok(groups)
}

/// The one group with this display name.
async fn find_group(
    client: &GraphClient,
    tenant_id: &str,
    name: &str,
    named_by: &str,
) -> Result<(String, String), Failure> {
    let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
    let path = format!(
        "/groups?$filter={}&$select=id,displayName",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    );
    let found = client
        .get_all(tenant_id, &path)
        .await
        .map_err(|e| e.failure().with_source(crate::live::source::USERS))?;
    let not_one = |why: &str| {
        Failure::new(
            Cause::GraphError,
            format!("group `{name}` named by {named_by} {why}: name it by its object id"),
        )
        .with_source(crate::live::source::USERS)
    };
    match found.as_slice() {
        [one] => Ok((
            one["id"].as_str().unwrap_or_default().to_lowercase(),
            one["displayName"].as_str().unwrap_or(name).to_string(),
        )),
        [] => Err(not_one("does not exist in this tenant")),
        more => Err(not_one(&format!(
            "names {} groups in this tenant",
            more.len()
        ))),
    }
}

/// The lowercase ids of a group's transitive user members, sorted. Without the user cast
/// (an advanced query) users are told apart by `@odata.type`.
async fn group_members(
    client: &GraphClient,
    tenant_id: &str,
    id: &str,
) -> Result<Vec<String>, GraphClientError> {
    let items = client
        .get_all(
            tenant_id,
            &format!("/groups/{id}/transitiveMembers?$select=id&$top=999"),
        )
        .await?;
    let mut members: Vec<String> = items
        .iter()
        .filter(|m| m["@odata.type"].as_str() == Some("#microsoft.graph.user"))
        .filter_map(|m| m["id"].as_str())
        .map(str::to_lowercase)
        .collect();
    members.sort_unstable();
    members.dedup();
    Ok(members)
}

/// Users whose membership of a named group changed since the last read and that users/delta
/// did not report (it does not track membership): read by id, twenty to a `$batch`. One not
/// found is gone.
async fn fetch_membership_changes(
    client: &GraphClient,
    tenant_id: &str,
    request: &UsersToRead,
    read: &mut LiveUsers,
) -> Result<(), GraphClientError> {
    let Some(position) = &request.position else {
        return Ok(());
    };
    let mut changed: BTreeSet<String> = BTreeSet::new();
    for group in &read.groups {
        let before: &[String] = position
            .groups
            .get(&group_key(&group.reference))
            .map_or(&[], |g| g.members.as_slice());
        let now: BTreeSet<&String> = group.members.iter().collect();
        let was: BTreeSet<&String> = before.iter().collect();
        changed.extend(now.symmetric_difference(&was).map(|s| (*s).clone()));
    }
    let known: BTreeSet<&str> = read
        .users
        .iter()
        .map(|u| u.id.as_str())
        .chain(read.removed.iter().map(|r| r.id.as_str()))
        .collect();
    changed.retain(|id| !known.contains(id.as_str()));
    if changed.is_empty() {
        return Ok(());
    }
    let select = UserProperty::select();
    let requests: Vec<BatchRequest> = changed
        .iter()
        .map(|id| BatchRequest {
            id: id.clone(),
            method: "GET".into(),
            url: format!("/users/{id}?$select={select}"),
            body: None,
            depends_on: Vec::new(),
        })
        .collect();
    for answer in client.batch(tenant_id, requests).await? {
        match answer.status {
            200..=299 => {
                if let Some(user) = EntraUser::from_graph(&answer.body) {
                    read.users.push(user);
                }
            }
            404 => read.removed.push(RemovedUser {
                id: answer.id.clone(),
                soft: false,
            }),
            _ => return Err(answer.ok(tenant_id).expect_err("not 2xx")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_page_reads_users_as_from_graph_does() {
        let items = serde_json::json!([
            {"id": "AB-CD", "displayName": "Ann", "givenName": "", "surname": null,
             "mail": 7, "otherMails": ["", "a@x.example", 3, null], "accountEnabled": "yes",
             "businessPhones": "not a list", "department": {"nested": [1, {"a": true}]},
             "officeLocation": "Boston 1", "userType": "Member", "unknownProperty": [1, 2],
             "mobilePhone": "+1", "companyName": "Foggy", "jobTitle": "Chief",
             "userPrincipalName": "ann@x.example"},
            {"id": "ef", "accountEnabled": false, "businessPhones": ["+1 617", ""]},
            {"displayName": "no id"},
            {"id": "GONE", "@removed": {"reason": "changed"}},
            {"id": "gone2", "@removed": {"reason": "deleted"}}
        ]);
        let page: DeltaPage = serde_json::from_value(serde_json::json!({
            "value": items,
            "@odata.deltaLink": "/users/delta?$deltatoken=x"
        }))
        .unwrap();
        assert_eq!(
            page.delta_link.as_deref(),
            Some("/users/delta?$deltatoken=x")
        );
        assert!(page.next_link.is_none());
        let mut users = Vec::new();
        let mut removed = Vec::new();
        for item in page.value {
            match &item.removed {
                Some(r) => removed.push((item.id.0.clone().unwrap(), r.reason.0.clone())),
                None => users.extend(item.into_user()),
            }
        }
        let expected: Vec<EntraUser> = items
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i.get("@removed").is_none())
            .filter_map(EntraUser::from_graph)
            .collect();
        assert_eq!(users, expected);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].id, "ab-cd");
        assert_eq!(users[0].other_mails, ["a@x.example"]);
        assert_eq!(users[0].given_name, None);
        assert_eq!(users[0].account_enabled, None);
        assert_eq!(users[1].business_phones, ["+1 617"]);
        assert_eq!(
            removed,
            [
                ("GONE".to_string(), Some("changed".to_string())),
                ("gone2".to_string(), Some("deleted".to_string()))
            ]
        );
    }

    fn user(id: &str, name: &str) -> EntraUser {
        EntraUser {
            id: id.into(),
            display_name: Some(name.into()),
            ..EntraUser::default()
        }
    }

    /// A replay lists a user twice: the last entry counts; a user both listed and removed in
    /// one round is present (the next round says otherwise if it is gone).
    #[test]
    fn replays_keep_each_users_last_entry() {
        let mut read = LiveUsers {
            users: vec![user("a", "old"), user("b", "b"), user("a", "new")],
            removed: vec![
                RemovedUser {
                    id: "b".into(),
                    soft: true,
                },
                RemovedUser {
                    id: "c".into(),
                    soft: false,
                },
                RemovedUser {
                    id: "c".into(),
                    soft: false,
                },
            ],
            ..LiveUsers::default()
        };
        dedup_last(&mut read);
        let names: Vec<(&str, &str)> = read
            .users
            .iter()
            .map(|u| (u.id.as_str(), u.display_name.as_deref().unwrap()))
            .collect();
        assert_eq!(names, [("b", "b"), ("a", "new")]);
        assert_eq!(
            read.removed,
            [RemovedUser {
                id: "c".into(),
                soft: false
            }]
        );
    }

    #[test]
    fn graph_says_start_over_with_these() {
        let api = |status: u16, code: &str| {
            GraphClientError::Api(Box::new(super::super::client::ApiError {
                tenant: "t".into(),
                method: "GET".into(),
                path: "/users/delta".into(),
                status,
                code: code.into(),
                message: String::new(),
                request_id: "none".into(),
                permission: None,
            }))
        };
        assert!(sync_state_lost(&api(410, "resyncRequired")));
        assert!(sync_state_lost(&api(400, "syncStateNotFound")));
        assert!(!sync_state_lost(&api(400, "Request_BadRequest")));
        assert!(!sync_state_lost(&api(403, "Authorization_RequestDenied")));
    }
}
