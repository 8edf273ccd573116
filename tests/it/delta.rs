//! `GET /users/delta` in the sandbox as Graph documents it (user-delta.md,
//! delta-query-overview.md, delta-query-users.md): a full sync in pages of about 200, then
//! rounds of what changed, `@removed`, `Prefer: return=minimal`, `$deltatoken=latest`, expired
//! and reset tokens; and the transitive-members user cast. Real HTTP against an in-process
//! sandbox, requests written by hand.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tenantform::sandbox::fixture::{Fixture, generated_group_id, generated_user_id};
use tenantform::sandbox::{Faults, SandboxHandle};

use crate::support::sandbox_token;

/// An answer: status, headers (lower-case names), JSON body (`null` when empty).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn ids(&self) -> Vec<String> {
        self.body["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no value: {}", self.body))
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    }
    fn next(&self) -> Option<String> {
        self.body["@odata.nextLink"].as_str().map(str::to_string)
    }
    fn delta(&self) -> Option<String> {
        self.body["@odata.deltaLink"].as_str().map(str::to_string)
    }
    fn item(&self, id: &str) -> Value {
        let items: Vec<&Value> = self.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["id"] == id)
            .collect();
        assert_eq!(items.len(), 1, "{id} once in {}", self.body);
        items[0].clone()
    }
}

/// A sandbox with customer tenants of `users` generated users (with profiles), and a client
/// holding a token for customer 0.
struct Delta {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    sandbox: SandboxHandle,
    tenant: String,
    token: String,
}

impl Delta {
    fn start(tenants: usize, users: usize) -> Delta {
        Delta::load(&Fixture::generated_with_profiles(tenants, users))
    }

    /// A sandbox of `fixture` (customer 0 is its second tenant), as a run of `--sandbox` starts
    /// one from the saved world.
    fn load(fixture: &Fixture) -> Delta {
        let tenant = fixture.tenants[1].id.clone();
        let sandbox = SandboxHandle::start(fixture, Faults::default()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let http = reqwest::Client::new();
        let token = rt.block_on(sandbox_token(&http, &sandbox.token_url(&tenant)));
        Delta {
            rt,
            http,
            sandbox,
            tenant,
            token,
        }
    }

    /// A new token for `tenant` (after its permissions changed, or for another tenant).
    fn token_for(&self, tenant: &str) -> String {
        self.rt
            .block_on(sandbox_token(&self.http, &self.sandbox.token_url(tenant)))
    }

    /// `method` on `url` (absolute, or a path under `/v1.0`) with the token and `headers`.
    fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
        token: &str,
    ) -> Answer {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.sandbox.graph_url())
        };
        self.rt.block_on(async {
            let mut request = self
                .http
                .request(method.parse().unwrap(), url)
                .bearer_auth(token);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap();
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            };
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    fn get(&self, url: &str) -> Answer {
        self.call("GET", url, &[], None, &self.token)
    }

    fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Answer {
        self.call("GET", url, headers, None, &self.token)
    }

    /// A `/_sandbox` control of customer 0: its status.
    fn control(&self, method: &str, path: &str, body: Option<Value>) -> u16 {
        let url = format!(
            "{}/_sandbox/tenants/{}{path}",
            self.sandbox.base_url(),
            self.tenant
        );
        self.rt.block_on(async {
            let mut request = self.http.request(method.parse().unwrap(), url);
            if let Some(body) = body {
                request = request.json(&body);
            }
            request.send().await.unwrap().status().as_u16()
        })
    }

    /// Follows next links from `url` to the delta link: every page, in order.
    fn round(&self, url: &str, headers: &[(&str, &str)]) -> Vec<Answer> {
        let mut pages = Vec::new();
        let mut url = url.to_string();
        loop {
            let page = self.get_with(&url, headers);
            assert_eq!(page.status, 200, "{url}: {}", page.body);
            let next = page.next();
            assert!(
                next.is_some() != page.delta().is_some(),
                "a page has a next link or a delta link: {}",
                page.body
            );
            pages.push(page);
            match next {
                Some(next) => url = next,
                None => return pages,
            }
        }
    }

    /// A full sync from `url`: the delta link it ends with.
    fn sync(&self, url: &str) -> String {
        self.round(url, &[]).last().unwrap().delta().unwrap()
    }
}

fn user(u: usize) -> String {
    generated_user_id(0, u)
}

#[test]
fn the_first_call_pages_the_whole_directory_at_200_and_ends_with_a_delta_link() {
    let d = Delta::start(1, 450);
    // `$top` does not change Graph's page size.
    let pages = d.round("/users/delta?$top=5", &[]);
    let sizes: Vec<usize> = pages.iter().map(|p| p.ids().len()).collect();
    assert_eq!(sizes, [200, 200, 50]);
    let first = &pages[0];
    let next = first.next().unwrap();
    assert!(
        next.starts_with(&format!(
            "{}/v1.0/users/delta?$skiptoken=",
            d.sandbox.base_url()
        )),
        "{next}"
    );
    let delta = pages[2].delta().unwrap();
    assert!(
        delta.starts_with(&format!(
            "{}/v1.0/users/delta?$deltatoken=",
            d.sandbox.base_url()
        )),
        "{delta}"
    );
    assert!(
        first.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#users")
    );
    let ids: Vec<String> = pages.iter().flat_map(Answer::ids).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 450, "every user once");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "in id order, so pages are stable");
    // The default property set: no accountEnabled or department; unset properties left out.
    let one = first.item(&user(0));
    for key in [
        "displayName",
        "givenName",
        "surname",
        "jobTitle",
        "officeLocation",
        "mail",
    ] {
        assert!(one.get(key).is_some(), "{key} in {one}");
    }
    for key in [
        "accountEnabled",
        "department",
        "companyName",
        "preferredLanguage",
    ] {
        assert!(one.get(key).is_none(), "{key} not in {one}");
    }
    // Selected, non-default properties come back (and `id` always).
    let page = d.get("/users/delta?$select=department,accountEnabled");
    let one = page.item(&user(24));
    assert_eq!(
        one,
        json!({"id": user(24), "department": one["department"].clone(), "accountEnabled": false})
    );
    assert!(one["department"].is_string());
}

#[test]
fn each_change_shows_up_exactly_once_in_the_next_round() {
    let d = Delta::start(1, 60);
    // Soft-deleted before the sync: not in it; restored after it: in the next round.
    assert_eq!(
        d.control("DELETE", &format!("/users/{}", user(5)), None),
        204
    );
    let link = d.sync("/users/delta?$select=displayName,department,accountEnabled");

    // A department changed through Graph, an account disabled and a name changed out of band.
    let patched = d.call(
        "PATCH",
        &format!("/users/{}", user(1)),
        &[],
        Some(json!({"department": "Legal", "officeLocation": "Denver"})),
        &d.token,
    );
    assert_eq!(patched.status, 204, "{}", patched.body);
    let body = json!({"accountEnabled": false});
    assert_eq!(
        d.control("PATCH", &format!("/users/{}", user(2)), Some(body)),
        204
    );
    // Soft delete, and a soft delete then purge.
    assert_eq!(
        d.control("DELETE", &format!("/users/{}", user(3)), None),
        204
    );
    assert_eq!(
        d.control("DELETE", &format!("/users/{}", user(4)), None),
        204
    );
    let purged = d.call(
        "DELETE",
        &format!("/directory/deletedItems/{}", user(4)),
        &[],
        None,
        &d.token,
    );
    assert_eq!(purged.status, 204, "{}", purged.body);
    let restored = d.call(
        "POST",
        &format!("/directory/deletedItems/{}/restore", user(5)),
        &[],
        None,
        &d.token,
    );
    assert_eq!(restored.status, 200, "{}", restored.body);
    // A new user, changed twice: still once.
    let new_id = "00000000-0000-4000-c000-000000000001";
    let new_user = json!({"id": new_id, "displayName": "Nia New", "mail": "nia@customer00000.example",
        "profile": {"department": "Sales"}});
    assert_eq!(d.control("POST", "/users", Some(new_user)), 201);
    let body = json!({"department": "IT"});
    assert_eq!(
        d.control("PATCH", &format!("/users/{new_id}"), Some(body)),
        204
    );
    // Not reported: a membership change, and a change to a property not selected.
    let group = generated_group_id(0, 1);
    let member = format!("/groups/{group}/members/{}", user(6));
    assert_eq!(d.control("POST", &member, None), 204);
    let body = json!({"jobTitle": "Chief Everything"});
    assert_eq!(
        d.control("PATCH", &format!("/users/{}", user(7)), Some(body)),
        204
    );

    let round = d.round(&link, &[]);
    assert_eq!(round.len(), 1);
    let page = &round[0];
    let ids: BTreeSet<String> = page.ids().into_iter().collect();
    let expected: BTreeSet<String> = [
        user(1),
        user(2),
        user(3),
        user(4),
        user(5),
        new_id.to_string(),
    ]
    .into_iter()
    .collect();
    assert_eq!(ids, expected, "{}", page.body);
    assert_eq!(page.ids().len(), 6, "each once: {}", page.body);
    let one = page.item(&user(1));
    assert_eq!(one["department"], "Legal");
    assert!(one.get("officeLocation").is_none(), "not selected: {one}");
    assert_eq!(page.item(&user(2))["accountEnabled"], false);
    assert_eq!(
        page.item(&user(3)),
        json!({"id": user(3), "@removed": {"reason": "changed"}})
    );
    assert_eq!(
        page.item(&user(4)),
        json!({"id": user(4), "@removed": {"reason": "deleted"}})
    );
    let back = page.item(&user(5));
    assert!(
        back.get("@removed").is_none() && back["displayName"].is_string(),
        "{back}"
    );
    assert_eq!(page.item(new_id)["department"], "IT");

    // Nothing changed since: one request, an empty page and a new delta link.
    let quiet = d.round(&page.delta().unwrap(), &[]);
    assert_eq!(quiet.len(), 1);
    assert_eq!(quiet[0].body["value"], json!([]));
    assert_ne!(quiet[0].delta().unwrap(), page.delta().unwrap());
}

#[test]
fn prefer_return_minimal_returns_only_the_changed_properties() {
    let d = Delta::start(1, 10);
    let link = d.sync("/users/delta");
    let body = json!({"jobTitle": "Buyer", "mobilePhone": null});
    assert_eq!(
        d.control("PATCH", &format!("/users/{}", user(0)), Some(body)),
        204
    );

    let minimal = d.get_with(&link, &[("Prefer", "return=minimal")]);
    assert_eq!(minimal.status, 200, "{}", minimal.body);
    assert_eq!(
        minimal.item(&user(0)),
        json!({"id": user(0), "jobTitle": "Buyer", "mobilePhone": null})
    );
    assert_eq!(
        minimal.headers.get("preference-applied").unwrap(),
        "return=minimal"
    );
    // The same round without the preference: every selected property that is set.
    let full = d.get(&link);
    let one = full.item(&user(0));
    assert_eq!(one["jobTitle"], "Buyer");
    assert!(
        one["displayName"].is_string() && one["surname"].is_string(),
        "{one}"
    );
    assert_eq!(one["mobilePhone"], Value::Null, "changed to null: {one}");
    assert!(full.headers.get("preference-applied").is_none());
}

#[test]
fn deltatoken_latest_gives_a_link_for_now_without_data() {
    let d = Delta::start(1, 300);
    let now = d.get("/users/delta?$deltatoken=latest&$select=displayName");
    assert_eq!(now.status, 200, "{}", now.body);
    assert_eq!(now.body["value"], json!([]));
    assert!(now.next().is_none());
    let body = json!({"displayName": "Renamed"});
    assert_eq!(
        d.control("PATCH", &format!("/users/{}", user(299)), Some(body)),
        204
    );
    let round = d.get(&now.delta().unwrap());
    assert_eq!(
        round.body["value"],
        json!([{"id": user(299), "displayName": "Renamed"}])
    );
}

#[test]
fn query_options_other_than_select_and_an_id_filter_are_refused() {
    let d = Delta::start(1, 5);
    for (query, code) in [
        ("$expand=manager", "Request_BadRequest"),
        ("$orderby=displayName", "Request_BadRequest"),
        ("$count=true", "Request_BadRequest"),
        ("$search=\"displayName:a\"", "Request_BadRequest"),
        ("$filter=department eq 'IT'", "Request_UnsupportedQuery"),
        (
            "$filter=id eq 'a' and id eq 'b'",
            "Request_UnsupportedQuery",
        ),
    ] {
        let answer = d.get(&format!("/users/delta?{query}"));
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], code, "{query}");
        assert!(answer.body["error"]["message"].is_string());
        assert!(answer.body["error"]["innerError"]["request-id"].is_string());
    }
    let many: Vec<String> = (0..51).map(|i| format!("id eq '{}'", user(i))).collect();
    let answer = d.get(&format!("/users/delta?$filter={}", many.join(" or ")));
    assert_eq!(answer.status, 400, "{}", answer.body);
    // The id filter works, and is carried by the token into the next round.
    let filter = format!("id eq '{}' or id eq '{}'", user(1), user(3));
    let page = d.get(&format!("/users/delta?$filter={filter}"));
    assert_eq!(page.ids(), [user(1), user(3)]);
    for u in [0, 1] {
        let body = json!({"department": "Legal"});
        assert_eq!(
            d.control("PATCH", &format!("/users/{}", user(u)), Some(body)),
            204
        );
    }
    let link = page.delta().unwrap();
    assert_eq!(d.get(&link).ids(), [user(1)]);
    // Query options belong in the first request only.
    let answer = d.get(&format!("{link}&$select=id"));
    assert_eq!(answer.status, 400, "{}", answer.body);
}

#[test]
fn an_expired_token_answers_400_sync_state_not_found() {
    let d = Delta::start(1, 250);
    let first = d.get("/users/delta");
    let next = first.next().unwrap();
    let link = d.sync("/users/delta");
    assert_eq!(d.control("POST", "/delta/expire", None), 204);
    for old in [&next, &link] {
        let answer = d.get(old);
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_eq!(answer.body["error"]["code"], "syncStateNotFound");
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("sync state")
        );
    }
    // A full sync starts over, and its tokens are good.
    let fresh = d.sync("/users/delta");
    assert_eq!(d.get(&fresh).status, 200);
    // A mangled token is refused too.
    assert_eq!(d.get("/users/delta?$deltatoken=nonsense").status, 400);
}

#[test]
fn after_a_reset_an_old_token_answers_410_with_a_location_to_start_over() {
    let d = Delta::start(1, 20);
    let link = d.sync("/users/delta?$select=displayName");
    assert_eq!(d.control("PUT", "/delta/reset", None), 204);
    let gone = d.get(&link);
    assert_eq!(gone.status, 410, "{}", gone.body);
    assert_eq!(gone.body["error"]["code"], "resyncRequired");
    let location = gone.headers.get("location").unwrap().to_str().unwrap();
    assert!(
        location.starts_with(&format!("{}/v1.0/users/delta?", d.sandbox.base_url())),
        "{location}"
    );
    // The Location is a first call again (with the round's $select).
    let again = d.round(location, &[]);
    let page = &again[0];
    assert_eq!(page.ids().len(), 20);
    let keys: BTreeSet<&str> = page.body["value"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["id", "displayName"]));
    assert_eq!(d.get(&page.delta().unwrap()).status, 200);
}

#[test]
fn delta_works_inside_batch_and_in_every_spelling() {
    let d = Delta::start(1, 210);
    let plain = d.get("/users/delta?$select=id").ids();
    for spelling in [
        "delta()",
        "microsoft.graph.delta()",
        "graph.delta()",
        "microsoft.graph.delta",
    ] {
        let answer = d.get(&format!("/users/{spelling}?$select=id"));
        assert_eq!(answer.status, 200, "{spelling}: {}", answer.body);
        assert_eq!(answer.ids(), plain, "{spelling}");
    }
    let batch = d.call(
        "POST",
        "/$batch",
        &[],
        Some(json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users/delta?$select=id"},
            {"id": "2", "method": "GET", "url": "/users/delta()?$deltatoken=latest",
             "headers": {"Prefer": "return=minimal"}},
        ]})),
        &d.token,
    );
    assert_eq!(batch.status, 200, "{}", batch.body);
    let responses = batch.body["responses"].as_array().unwrap();
    let first = responses.iter().find(|r| r["id"] == "1").unwrap();
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(first["body"]["value"].as_array().unwrap().len(), 200);
    let next = first["body"]["@odata.nextLink"].as_str().unwrap();
    // The next link of a batched call works outside it.
    let rest = d.get(next);
    assert_eq!(rest.ids().len(), 10);
    let second = responses.iter().find(|r| r["id"] == "2").unwrap();
    assert_eq!(second["status"], 200, "{second}");
    assert!(second["body"]["@odata.deltaLink"].is_string());
}

#[test]
fn without_a_user_read_permission_delta_is_403() {
    let d = Delta::start(1, 3);
    let body = json!({"permissions": ["Organization.Read.All", "GroupMember.Read.All"]});
    assert_eq!(d.control("PUT", "/permissions", Some(body)), 200);
    let token = d.token_for(&d.tenant);
    let denied = d.call("GET", "/users/delta", &[], None, &token);
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(denied.body["error"]["code"], "Authorization_RequestDenied");
    // Any one of the documented permissions is enough.
    let body = json!({"permissions": ["Directory.Read.All"]});
    assert_eq!(d.control("PUT", "/permissions", Some(body)), 200);
    let token = d.token_for(&d.tenant);
    assert_eq!(d.call("GET", "/users/delta", &[], None, &token).status, 200);
}

#[test]
fn a_token_of_another_tenant_is_refused() {
    let d = Delta::start(2, 5);
    let link = d.sync("/users/delta");
    let other = tenantform::synthetic::synthetic_guid(1);
    let token = d.token_for(&other);
    let answer = d.call("GET", &link, &[], None, &token);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "syncStateNotFound");
    // Its own token works there.
    assert_eq!(d.call("GET", &link, &[], None, &d.token).status, 200);
}

#[test]
fn transitive_members_cast_to_users_needs_an_advanced_query_and_pages() {
    let d = Delta::start(1, 200);
    let all_staff = generated_group_id(0, 0);
    let eventual = [("ConsistencyLevel", "eventual")];
    for cast in ["microsoft.graph.user", "graph.user"] {
        let path = format!(
            "/groups/{all_staff}/transitiveMembers/{cast}?$select=id,department,accountEnabled&$count=true&$top=999"
        );
        let refused = d.get(&path);
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(refused.body["error"]["code"], "Request_UnsupportedQuery");
        let answer = d.get_with(&path, &eventual);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let users = answer.body["value"].as_array().unwrap();
        // Nested: IT directly, Sales and Finance through their groups; never a group itself.
        let departments: BTreeSet<&str> = users
            .iter()
            .map(|u| u["department"].as_str().unwrap())
            .collect();
        assert_eq!(departments, BTreeSet::from(["Finance", "IT", "Sales"]));
        assert!(users.iter().all(|u| u["accountEnabled"].is_boolean()));
        assert_eq!(answer.body["@odata.count"], users.len());
        let ids: BTreeSet<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), users.len(), "each user once");
        assert!(!ids.contains(generated_group_id(0, 1).as_str()));
    }
    // 100 a page by default, pages of $top, with next links.
    let default = d.get_with(
        &format!(
            "/groups/{all_staff}/transitiveMembers/microsoft.graph.user?$select=id&$count=true"
        ),
        &eventual,
    );
    assert_eq!(default.ids().len(), 100, "{}", default.body);
    assert!(default.next().is_some());
    let page = d.get_with(
        &format!("/groups/{all_staff}/transitiveMembers/microsoft.graph.user?$select=id&$count=true&$top=5"),
        &eventual,
    );
    assert_eq!(page.ids().len(), 5);
    assert!(page.next().is_some());
    // A membership change shows at once.
    let new = user(199);
    assert_eq!(
        d.control("POST", &format!("/groups/{all_staff}/members/{new}"), None),
        204
    );
    let answer = d.get_with(
        &format!("/groups/{all_staff}/transitiveMembers/microsoft.graph.user?$select=id&$count=true&$top=999"),
        &eventual,
    );
    assert!(answer.ids().contains(&new));
    assert_eq!(
        d.control(
            "DELETE",
            &format!("/groups/{all_staff}/members/{new}"),
            None
        ),
        204
    );
}

/// The world as `--sandbox` keeps it between runs (the workspace's `close`: the world as a
/// fixture, pretty JSON), then edited as someone in the portal would (`edit_world_tenant`'s
/// way, on customer 0), then loaded by the next run (`Fixture::load` parses the same text).
fn next_run(run: Delta, edit: impl FnOnce(&mut Value)) -> Delta {
    let fixture = run.sandbox.with_world(|w| w.to_fixture());
    let text = serde_json::to_vec_pretty(&fixture).unwrap();
    drop(run);
    let mut world: Value = serde_json::from_slice(&text).unwrap();
    edit(&mut world["tenants"][1]);
    let text = serde_json::to_string_pretty(&world).unwrap();
    Delta::load(&Fixture::parse(&text).unwrap())
}

/// A link of an earlier run, on this run's sandbox (each run's sandbox has its own port).
fn moved(link: &str, d: &Delta) -> String {
    let at = link.find("/v1.0/").unwrap();
    format!("{}{}", d.sandbox.base_url(), &link[at..])
}

fn world_user<'a>(tenant: &'a mut Value, id: &str) -> &'a mut Value {
    tenant["users"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|u| u["id"] == id)
        .unwrap()
}

#[test]
fn a_delta_link_goes_on_in_the_next_run_and_sees_edits_to_the_saved_world() {
    let run1 = Delta::start(1, 20);
    let link = run1.sync("/users/delta?$select=displayName,department");
    let before = world_user_department(&run1, &user(3));
    let run2 = next_run(run1, |tenant| {
        world_user(tenant, &user(3))["profile"]["department"] = json!("Legal");
        let users = tenant["users"].as_array_mut().unwrap();
        users.retain(|u| u["id"] != user(5));
        let moved_out = users.iter().position(|u| u["id"] == user(7)).unwrap();
        let soft = users.remove(moved_out);
        tenant["deletedUsers"] = json!([{"user": soft}]);
    });
    assert_ne!(before.as_deref(), Some("Legal"));
    let pages = run2.round(&moved(&link, &run2), &[]);
    assert_eq!(pages.len(), 1);
    let page = &pages[0];
    assert_eq!(page.ids(), [user(3), user(5), user(7)], "{}", page.body);
    let edited = page.item(&user(3));
    assert_eq!(edited["department"], "Legal");
    assert!(edited.get("@removed").is_none());
    assert_eq!(page.item(&user(5))["@removed"]["reason"], "deleted");
    assert_eq!(page.item(&user(7))["@removed"]["reason"], "changed");
    // Reported once: the round's own delta link, in a third run, has nothing.
    let next = page.delta().unwrap();
    let run3 = next_run(run2, |_| {});
    let page = run3.get(&moved(&next, &run3));
    assert_eq!((page.status, page.ids().len()), (200, 0), "{}", page.body);
}

fn world_user_department(d: &Delta, id: &str) -> Option<String> {
    d.sandbox
        .with_world(|w| w.tenants[1].users[id].profile.department.clone())
}

#[test]
fn a_delta_link_of_one_run_followed_in_the_next_without_edits_is_empty() {
    let run1 = Delta::start(1, 20);
    let link = run1.sync("/users/delta");
    let run2 = next_run(run1, |_| {});
    let page = run2.get(&moved(&link, &run2));
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.ids(), Vec::<String>::new());
    let again = page.delta().expect("a new delta link");
    assert!(page.next().is_none() && again != link);
    // A write through Graph after the link in one run shows in the next, once.
    let patched = run2.call(
        "PATCH",
        &format!("/users/{}", user(2)),
        &[],
        Some(json!({"jobTitle": "Controller"})),
        &run2.token,
    );
    assert_eq!(patched.status, 204, "{}", patched.body);
    let run3 = next_run(run2, |_| {});
    let page = run3.get(&moved(&again, &run3));
    assert_eq!(page.ids(), [user(2)]);
    assert_eq!(page.item(&user(2))["jobTitle"], "Controller");
}

#[test]
fn expired_and_reset_tokens_stay_so_in_the_next_run() {
    let run1 = Delta::start(1, 20);
    let expired = run1.sync("/users/delta");
    assert_eq!(run1.control("POST", "/delta/expire", None), 204);
    let kept = run1.sync("/users/delta");
    let run2 = next_run(run1, |_| {});
    let answer = run2.get(&moved(&expired, &run2));
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "syncStateNotFound");
    assert_eq!(run2.get(&moved(&kept, &run2)).status, 200);
    assert_eq!(run2.control("PUT", "/delta/reset", None), 204);
    let run3 = next_run(run2, |_| {});
    assert_eq!(run3.get(&moved(&kept, &run3)).status, 410);
}
