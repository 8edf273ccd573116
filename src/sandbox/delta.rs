//! `GET /users/delta`: a full sync in pages, then rounds of what changed, from the
//! directory's change log (`changes`).
//!
//! Sources (microsoft-graph-docs-contrib): `api-reference/v1.0/api/user-delta.md` (query
//! options, `Prefer: return=minimal`, which properties come back), `concepts/delta-query-overview.md`
//! (state tokens, `$deltaToken=latest`, `@removed`, 410 with a Location header, tokens of
//! directory objects last seven days then `syncStateNotFound`, `$top`/`$orderby`/`$expand` not
//! supported for users, changes to unselected properties not reported, `/delta` short for
//! `/microsoft.graph.delta`), `concepts/delta-query-users.md` (`@removed` reasons, restored
//! users come back whole, no `$select` tracks every property), `concepts/errors.md` (the
//! `syncStateNotFound` and `resyncRequired` codes and their descriptions). GRAPH.md, "Users for
//! end-user sync": about 200 per page, 400 on expiry, max 50 ids in the filter.
//!
//! Tokens are base64url JSON (opaque to clients, as Graph's are): the tenant, kind, the
//! sequence the round reports changes after (none in a full sync), the snapshot the round is
//! up to, the last id served, the `$select` and id filter, issue time, serial and epoch.

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::changes::Removal;
use super::directory::{DEFAULT_USER_PROPERTIES, Directory, GraphError, USER_PROPERTIES};
use super::graph::{Call, Reply};
use super::odata::Filter;

/// Users per page. Graph's page size for users/delta is about 200 and `$top` does not change
/// it (GRAPH.md; delta-query-overview.md: "`$top` is not supported" for users).
pub const DELTA_PAGE_SIZE: usize = 200;

/// Ids a `$filter` may name (user-delta.md: "There is a limit of 50 filtered objects").
pub const MAX_FILTER_IDS: usize = 50;

/// How long a state token lives: seven days for directory objects (delta-query-overview.md,
/// "Token duration").
pub const TOKEN_LIFETIME_SECONDS: u64 = 7 * 24 * 3600;

/// `delta`, `delta()`, `microsoft.graph.delta()` and `graph.delta()`: `/delta` is short for
/// the qualified `/microsoft.graph.delta` the SDKs send (delta-query-users.md), the alias
/// `graph` may stand for the namespace and a function may be called with its parentheses
/// (OData URL conventions 4.01, "Addressing Operations").
pub fn is_delta(segment: &str) -> bool {
    let name = segment.strip_suffix("()").unwrap_or(segment);
    matches!(name, "delta" | "microsoft.graph.delta" | "graph.delta")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    /// Tenant the token was issued in.
    t: String,
    /// `s`: a next link's skip token; `d`: a delta link's delta token.
    k: char,
    /// Changes after this sequence (`None`: the full sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<u64>,
    /// The snapshot the round is up to; in a delta token, what the next round starts after.
    s: u64,
    /// The last id served in this round (pages are in id order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sel: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<String>>,
    /// Issued at (Unix seconds).
    iat: u64,
    /// Serial of the token in its directory (for the expire control).
    n: u64,
    /// The directory's delta epoch when issued (for the reset control).
    e: u64,
}

fn encode(state: &State) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(state).expect("state serializes"))
}

fn decode(token: &str) -> Option<State> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An expired token: concepts/errors.md ("syncStateNotFound: The sync state generation is not
/// found. The delta token is expired and data must be synchronized again."); 400 per GRAPH.md
/// (the overview says "40X-series"). The live message is *unconfirmed*: Graph has been seen
/// sending "The sync state generation is not found; generation=...".
fn sync_state_not_found() -> GraphError {
    GraphError::new(
        400,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

fn bad_token(which: &str) -> GraphError {
    // *Unconfirmed* wording: Graph's answer to a token it cannot read.
    GraphError::bad_request(format!("Invalid {which} value."))
}

fn unsupported(message: impl Into<String>) -> GraphError {
    GraphError::new(400, "Request_UnsupportedQuery", message)
}

/// The ids of `id eq '...'` clauses joined by `or`, the only filter users/delta takes
/// (user-delta.md); anything else is refused.
fn filter_ids(text: &str) -> Result<Vec<String>, GraphError> {
    fn collect(f: &Filter, out: &mut Vec<String>) -> bool {
        match f {
            Filter::Eq(p, Value::String(id)) if p.eq_ignore_ascii_case("id") => {
                out.push(id.to_lowercase());
                true
            }
            Filter::Or(a, b) => collect(a, out) && collect(b, out),
            _ => false,
        }
    }
    let filter = Filter::parse(text)?;
    let mut ids = Vec::new();
    if !collect(&filter, &mut ids) {
        // *Unconfirmed* wording.
        return Err(unsupported(
            "Unsupported query filter for delta: only 'id eq' clauses joined by 'or' are supported.",
        ));
    }
    ids.sort();
    ids.dedup();
    if ids.len() > MAX_FILTER_IDS {
        return Err(unsupported(format!(
            "The delta filter names {} objects; at most {MAX_FILTER_IDS} are supported.",
            ids.len()
        )));
    }
    Ok(ids)
}

/// The query of one delta call.
#[derive(Default)]
struct DeltaQuery {
    skip: Option<String>,
    delta: Option<String>,
    select: Option<Vec<String>>,
    filter: Option<String>,
}

fn parse_query(query: &str) -> Result<DeltaQuery, GraphError> {
    let mut q = DeltaQuery::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.to_lowercase().as_str() {
            "$skiptoken" => q.skip = Some(value.into_owned()),
            "$deltatoken" => q.delta = Some(value.into_owned()),
            "$select" => q.select = Some(super::graph::select_list(&value)),
            "$filter" => q.filter = Some(value.into_owned()),
            // Ignored: the page size is Graph's (GRAPH.md).
            "$top" => {}
            other if other.starts_with('$') => {
                // delta-query-overview.md: `$expand`, `$orderby` (and `$top`) are not
                // supported for users; user-delta.md documents only `$select` and `$filter`.
                return Err(GraphError::bad_request(format!(
                    "Query option '{other}' is not supported for this request."
                )));
            }
            _ => {}
        }
    }
    Ok(q)
}

/// The highest sequence a round may claim to be complete up to: below the creation of any
/// user not replicated yet (it is not served now, so the next round must still report it).
fn safe_snapshot(dir: &Directory, replication: Duration) -> u64 {
    if replication.is_zero() {
        return dir.changes.seq;
    }
    dir.users
        .values()
        .filter(|u| !u.visible(replication))
        .map(|u| dir.changes.created_at(&u.id).saturating_sub(1))
        .min()
        .unwrap_or(dir.changes.seq)
        .min(dir.changes.seq)
}

/// A user as the delta round reports it: selected properties (`id` always); in the default
/// representation every selected property that is set, or changed (even to null) in the
/// round; with `minimal`, only those changed in the round (user-delta.md, "Default" and
/// "Alternative: return only the changed properties").
fn user_entry(
    dir: &Directory,
    id: &str,
    select: Option<&[String]>,
    since: Option<u64>,
    minimal: bool,
) -> Option<Value> {
    let user = dir.users.get(id)?;
    let changes = dir.changes.user(id);
    let changed = |p: &str| since.is_some_and(|n| changes.is_some_and(|c| c.changed_after(p, n)));
    let selected = |p: &str| match select {
        Some(fields) => fields.iter().any(|f| f.eq_ignore_ascii_case(p)),
        None => DEFAULT_USER_PROPERTIES.contains(&p),
    };
    let mut out = serde_json::Map::new();
    out.insert("id".into(), Value::String(user.id.clone()));
    for &key in USER_PROPERTIES {
        if key == "id" || !selected(key) {
            continue;
        }
        let value = user.property(key);
        let unset = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        let keep = if minimal {
            changed(key)
        } else {
            !unset || changed(key)
        };
        if keep {
            out.insert(key.into(), value);
        }
    }
    Some(Value::Object(out))
}

enum Item {
    User,
    Removed(Removal),
}

/// Serves `GET /users/delta` (any spelling `is_delta` accepts).
pub fn users_delta(
    dir: &mut Directory,
    call: &Call,
    replication: Duration,
) -> Result<Reply, GraphError> {
    let q = parse_query(call.query)?;
    let base = call.base_url;
    if q.skip.is_some() && q.delta.is_some() {
        return Err(GraphError::bad_request(
            "A request may carry either $skiptoken or $deltatoken, not both.",
        ));
    }
    let token = match (&q.skip, &q.delta) {
        (Some(t), _) => Some(('s', t.as_str())),
        (None, Some(t)) if !t.is_empty() && !t.eq_ignore_ascii_case("latest") => {
            Some(('d', t.as_str()))
        }
        _ => None,
    };
    let now = unix_now();
    let (since, snapshot, after, select, ids) = match token {
        Some((kind, text)) => {
            // Query options belong in the first request; the token carries them
            // (user-delta.md, "Query parameters"; delta-query-overview.md: "Delta queries with
            // both $select and $skipToken will not be supported"). Refused rather than
            // ignored, so nothing relies on them. The wording is *unconfirmed*.
            if q.select.is_some() || q.filter.is_some() {
                return Err(GraphError::bad_request(
                    "Query options must be specified in the initial delta request; the state token carries them.",
                ));
            }
            let which = if kind == 's' {
                "$skiptoken"
            } else {
                "$deltatoken"
            };
            let state = decode(text)
                .filter(|s| s.k == kind)
                .ok_or_else(|| bad_token(which))?;
            // A token from another tenant has no sync state here: the closest documented
            // answer is "not found", which sends the client back to a full sync.
            if state.t != dir.id {
                return Err(sync_state_not_found());
            }
            if state.e != dir.changes.epoch {
                let mut reply = Reply::error(&GraphError::new(
                    410,
                    "resyncRequired",
                    "The delta token is no longer valid, and the app must reset the sync state.",
                ));
                reply
                    .headers
                    .push(("Location".into(), restart_link(base, &state)));
                return Ok(reply);
            }
            if state.n <= dir.changes.expired_through
                || now.saturating_sub(state.iat) > TOKEN_LIFETIME_SECONDS
            {
                return Err(sync_state_not_found());
            }
            if kind == 'd' {
                // A new round: changes after the last round's snapshot.
                let snapshot = safe_snapshot(dir, replication);
                (Some(state.s), snapshot, None, state.sel, state.ids)
            } else {
                (state.f, state.s, state.a, state.sel, state.ids)
            }
        }
        None => {
            let ids = q.filter.as_deref().map(filter_ids).transpose()?;
            let snapshot = safe_snapshot(dir, replication);
            if q.delta
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("latest"))
            {
                // "Sync from now" (delta-query-overview.md): no data, a delta link for now.
                let link = issue(dir, base, 'd', None, snapshot, None, &q.select, &ids, now);
                return Ok(Reply::json(
                    200,
                    json!({
                        "@odata.context": format!("{base}/v1.0/$metadata#users"),
                        "@odata.deltaLink": link,
                        "value": [],
                    }),
                ));
            }
            (None, snapshot, None, q.select, ids)
        }
    };

    let wanted = |id: &str| {
        ids.as_ref()
            .is_none_or(|ids| ids.binary_search(&id.to_string()).is_ok())
    };
    let later = |id: &str| after.as_deref().is_none_or(|a| id > a);
    let mut items: Vec<(String, Item)> = match since {
        // The full sync: every user (replicated, and there when the round began).
        None => dir
            .users
            .values()
            .filter(|u| u.visible(replication) && dir.changes.created_at(&u.id) <= snapshot)
            .filter(|u| wanted(&u.id) && later(&u.id))
            .map(|u| (u.id.clone(), Item::User))
            .collect(),
        // A round: users with a change to a tracked property, and users removed.
        Some(n) => {
            let mut items: Vec<(String, Item)> = dir
                .changes
                .changed_since(n)
                .filter(|(_, c)| c.any_changed_after(select.as_deref(), n))
                .filter(|(id, _)| {
                    dir.users
                        .get(id.as_str())
                        .is_some_and(|u| u.visible(replication))
                })
                .filter(|(id, _)| wanted(id) && later(id))
                .map(|(id, _)| (id.clone(), Item::User))
                .collect();
            items.extend(
                dir.changes
                    .removed_since(n)
                    .filter(|(id, _)| !dir.users.contains_key(id.as_str()))
                    .filter(|(id, _)| wanted(id) && later(id))
                    .map(|(id, how)| (id.clone(), Item::Removed(how))),
            );
            items
        }
    };
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let more = items.len() > DELTA_PAGE_SIZE;
    items.truncate(DELTA_PAGE_SIZE);
    // `Prefer: return=minimal` shapes only the answers to a delta link's round (user-delta.md).
    let minimal = call.prefer_minimal && since.is_some();
    let value: Vec<Value> = items
        .iter()
        .filter_map(|(id, item)| match item {
            Item::User => user_entry(dir, id, select.as_deref(), since, minimal),
            Item::Removed(how) => Some(json!({"id": id, "@removed": {"reason": how.reason()}})),
        })
        .collect();
    let last = items.last().map(|(id, _)| id.clone());
    // `Value::Array`, not `json!`: the macro would copy every user once more.
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#users"),
    });
    body["value"] = Value::Array(value);
    if more {
        let link = issue(dir, base, 's', since, snapshot, last, &select, &ids, now);
        body["@odata.nextLink"] = json!(link);
    } else {
        let link = issue(dir, base, 'd', None, snapshot, None, &select, &ids, now);
        body["@odata.deltaLink"] = json!(link);
    }
    let mut reply = Reply::json(200, body);
    if minimal {
        // OData 4.01 Part 1, "Preference-Applied": a service names the preferences it honoured.
        reply
            .headers
            .push(("Preference-Applied".into(), "return=minimal".into()));
    }
    Ok(reply)
}

/// A next link (`kind` `s`) or delta link (`d`) carrying the round's state.
#[allow(clippy::too_many_arguments)]
fn issue(
    dir: &mut Directory,
    base: &str,
    kind: char,
    since: Option<u64>,
    snapshot: u64,
    after: Option<String>,
    select: &Option<Vec<String>>,
    ids: &Option<Vec<String>>,
    now: u64,
) -> String {
    dir.changes.issued += 1;
    let state = State {
        t: dir.id.clone(),
        k: kind,
        f: since,
        s: snapshot,
        a: after,
        sel: select.clone(),
        ids: ids.clone(),
        iat: now,
        n: dir.changes.issued,
        e: dir.changes.epoch,
    };
    let param = if kind == 's' {
        "$skiptoken"
    } else {
        "$deltatoken"
    };
    format!("{base}/v1.0/users/delta?{param}={}", encode(&state))
}

/// Where a client restarts after 410: "a request URL with an empty `$deltaToken` (same as the
/// initial query)" (delta-query-overview.md, "Synchronization reset"), with the round's own
/// `$select` and filter.
fn restart_link(base: &str, state: &State) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(select) = &state.sel {
        query.append_pair("$select", &select.join(","));
    }
    if let Some(ids) = &state.ids {
        let clauses: Vec<String> = ids.iter().map(|id| format!("id eq '{id}'")).collect();
        query.append_pair("$filter", &clauses.join(" or "));
    }
    query.append_pair("$deltatoken", "");
    format!("{base}/v1.0/users/delta?{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_function_is_delta() {
        for s in [
            "delta",
            "delta()",
            "microsoft.graph.delta",
            "microsoft.graph.delta()",
            "graph.delta()",
        ] {
            assert!(is_delta(s), "{s}");
        }
        for s in ["Delta", "deltas", "delta(", "microsoft.delta()"] {
            assert!(!is_delta(s), "{s}");
        }
    }

    #[test]
    fn the_filter_takes_only_ids_joined_by_or_and_at_most_fifty() {
        assert_eq!(
            filter_ids("id eq 'B' or id eq 'a'").unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        for refused in [
            "id eq 'a' and id eq 'b'",
            "displayName eq 'a'",
            "id ne 'a'",
            "startswith(id,'a')",
        ] {
            let e = filter_ids(refused).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (400, "Request_UnsupportedQuery"),
                "{refused}"
            );
        }
        let fifty: Vec<String> = (0..50).map(|i| format!("id eq '{i}'")).collect();
        assert_eq!(filter_ids(&fifty.join(" or ")).unwrap().len(), 50);
        let more: Vec<String> = (0..51).map(|i| format!("id eq '{i}'")).collect();
        assert_eq!(filter_ids(&more.join(" or ")).unwrap_err().status, 400);
    }

    #[test]
    fn a_token_round_trips_and_a_forged_one_does_not_decode() {
        let state = State {
            t: "t".into(),
            k: 'd',
            f: None,
            s: 7,
            a: Some("x".into()),
            sel: Some(vec!["id".into()]),
            ids: None,
            iat: 1,
            n: 2,
            e: 0,
        };
        assert_eq!(decode(&encode(&state)), Some(state));
        assert_eq!(decode("not a token"), None);
    }
}
