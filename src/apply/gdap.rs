//! Carrying out GDAP relationship actions in the partner tenant (issue 17).
//!
//! Crash-safe and convergent: a create first looks for a relationship with the display name
//! (Graph keeps them unique), so a re-run after a crash between the create and the state
//! record adopts it instead of making a second; every step reads the relationship again and
//! does only what its status still needs (lock a `created` one; once `active`, make the
//! access assignments match; end a replaced one once its successor is active). A change
//! Graph cannot make in place (a role other than Global Administrator, the display name or
//! duration of a locked relationship, a terminated or expired one) is a replacement: a new
//! relationship with a new unique name, locked for the customer's approval, recorded with
//! the old one's id, which is terminated once the new one is active.

use serde_json::{Value, json};

use super::entra::{EntraExecutor, failed, failed_because};
use super::{ApplyError, Executed};
use crate::gdap::{LiveRelationship, status};
use crate::graph::GraphClient;
use crate::graph::gdap::{self, NewRelationship};
use crate::outcome::Cause;
use crate::plan::{Action, Op};
use crate::resources::attr_str;
use crate::state::{Attributes, Ids, StateObject};

fn roles_of(attributes: &Attributes, key: &str) -> Vec<String> {
    attributes
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The desired access assignments: (group id, roles).
fn assignments_of(attributes: &Attributes) -> Vec<(String, Vec<String>)> {
    attributes
        .get("accessAssignments")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|a| {
                    (
                        a["group"].as_str().unwrap_or_default().to_lowercase(),
                        a["roles"]
                            .as_array()
                            .map(|r| {
                                r.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_lowercase)
                                    .collect()
                            })
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The customer tenant the manifests give the relationship, lowercase.
fn customer_of(attributes: &Attributes) -> String {
    attr_str(attributes, "customerTenantId")
        .trim()
        .to_lowercase()
}

/// Whether a relationship Graph has is with this customer: display names are unique across
/// the partner, so a name found may be another customer's, never to be adopted.
fn with_customer(r: &LiveRelationship, customer: &str) -> bool {
    r.customer_tenant_id
        .as_deref()
        .unwrap_or_default()
        .eq_ignore_ascii_case(customer)
}

/// `base` cut so that `suffix` fits in Graph's 50 characters, then `suffix`: a replacement's
/// display name.
fn with_suffix(base: &str, suffix: &str) -> String {
    let keep = crate::gdap::MAX_DISPLAY_NAME.saturating_sub(suffix.chars().count());
    let head: String = base.chars().take(keep).collect();
    format!("{}{suffix}", head.trim_end())
}

/// Whether `name` is one [`GdapExecutor::replace`] makes from `base`: `base` itself, or `base`
/// with a day (` 2026-12-08`) and perhaps a number (`-2` to `-9`), ignoring case. Exactly
/// that, never a name merely starting with `base` ("Helpdesk Tier2" is another relationship).
fn is_replacement_name(name: &str, base: &str) -> bool {
    if name.eq_ignore_ascii_case(base) {
        return true;
    }
    let Some((_, suffix)) = name.rsplit_once(' ') else {
        return false;
    };
    let (day, number) = if suffix.len() > 10 && suffix.is_char_boundary(10) {
        suffix.split_at(10)
    } else {
        (suffix, "")
    };
    let day_ok = day.parse::<jiff::civil::Date>().is_ok() && day.len() == 10;
    let number_ok = number.is_empty()
        || number
            .strip_prefix('-')
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (2..=9).contains(&n));
    day_ok && number_ok && name.eq_ignore_ascii_case(&with_suffix(base, &format!(" {suffix}")))
}

/// "relationship X with customer Y": for a name held by another customer's relationship.
fn held_by(r: &LiveRelationship) -> String {
    format!(
        "relationship {} with customer {}",
        r.id,
        r.customer_tenant_id.as_deref().unwrap_or("(none)")
    )
}

fn ids(relationship: &LiveRelationship, previous: Option<&str>) -> Ids {
    // Never "replaces itself" (a replacement that vanished leaves only the old one).
    let previous = previous.filter(|p| *p != relationship.id);
    let mut ids: Ids = [
        ("relationshipId".to_string(), relationship.id.clone()),
        ("displayName".to_string(), relationship.display_name.clone()),
    ]
    .into_iter()
    .collect();
    ids.insert(
        "previousRelationshipId".into(),
        previous.unwrap_or_default().to_string(),
    );
    ids
}

/// Whether `live` cannot become what `after` asks without a new relationship (the planner's
/// note uses the same rule: [`crate::gdap::changes_in_place`]).
fn needs_replacement(live: &LiveRelationship, after: &Attributes) -> bool {
    !crate::gdap::changes_in_place(live, &roles_of(after, "roles"), attr_str(after, "duration"))
}

impl EntraExecutor<'_> {
    fn partner(&self, action: &Action) -> Result<String, ApplyError> {
        self.partner_tenant.map(str::to_string).ok_or_else(|| {
            failed_because(
                action,
                Cause::NotRead,
                "GDAP relationships live in the partner tenant: set AZURE_TENANT_ID to the MSP's own tenant",
            )
        })
    }

    pub(super) async fn gdap_relationship(
        &self,
        action: &Action,
        stored: Option<&StateObject>,
    ) -> Result<Executed, ApplyError> {
        let partner = self.partner(action)?;
        let client = self.client;
        let id_of = |key: &str| {
            action
                .live_ids
                .as_ref()
                .and_then(|i| i.get(key).cloned())
                .or_else(|| stored.and_then(|s| s.ids.get(key).cloned()))
                .filter(|id| !id.is_empty())
        };
        // Only the relationships this action is about are read (by id, or by name), never
        // the partner's whole list: an apply creating many relationships stays linear.
        let partner_id = partner.as_str();
        let read = move |id: Option<String>| async move {
            match id {
                Some(id) => gdap::read_one(client, partner_id, &id)
                    .await
                    .map_err(|e| failed(action, e)),
                None => Ok(None),
            }
        };
        // A relationship made or matched by name must be this customer's: with no customer
        // tenant id (a tenant without microsoftTenantId) nothing could tell them apart.
        if matches!(action.op, Op::Create | Op::Update | Op::Adopt)
            && action
                .after
                .as_ref()
                .is_some_and(|after| customer_of(after).is_empty())
        {
            return Err(failed_because(
                action,
                Cause::NotRead,
                "the tenant has no microsoftTenantId: a GDAP relationship is made with a customer tenant",
            ));
        }
        let current = read(id_of("relationshipId")).await?;
        // The recorded or planned id is trusted only for this customer's relationship: never
        // write to, adopt or end another customer's (a state file edited by hand, an id reused).
        let customer = action
            .after
            .as_ref()
            .or(action.before.as_ref())
            .map(customer_of)
            .unwrap_or_default();
        if let Some(other) = current
            .as_ref()
            .filter(|c| !customer.is_empty() && !with_customer(c, &customer))
        {
            return Err(failed_because(
                action,
                Cause::GraphError,
                format!(
                    "the recorded relationship is {}, not this customer's ({customer}): nothing changed; `state rm` the address and plan again",
                    held_by(other)
                ),
            ));
        }
        match action.op {
            Op::Create => {
                let after = action.after.as_ref().expect("create has attributes");
                let name = attr_str(after, "displayName").trim();
                let customer = customer_of(after);
                // Convergent: a relationship with this name and customer is this one (Graph
                // keeps names unique), made by an earlier run that died before recording it.
                // One with another customer is not ours: adopting it would change (and with
                // --allow-delete end) another customer's access.
                let (mine, theirs): (Vec<LiveRelationship>, Vec<LiveRelationship>) =
                    gdap::with_name(client, &partner, name)
                        .await
                        .map_err(|e| failed(action, e))?
                        .into_iter()
                        .filter(|r| {
                            r.display_name.eq_ignore_ascii_case(name)
                                && !status::is_ended(&r.status)
                        })
                        .partition(|r| with_customer(r, &customer));
                let relationship = match (mine.into_iter().next(), theirs.first()) {
                    (Some(r), _) => r,
                    (None, Some(other)) => {
                        return Err(failed_because(
                            action,
                            Cause::GraphError,
                            format!(
                                "the display name `{name}` is already used by {} (names are unique across the partner's relationships): give this relationship another displayName",
                                held_by(other)
                            ),
                        ));
                    }
                    (None, None) => self.create(action, client, &partner, after, name).await?,
                };
                let relationship = self.lock(action, client, &partner, relationship).await?;
                Ok(Executed {
                    ids: ids(&relationship, None),
                    external: true,
                })
            }
            Op::Update | Op::Adopt => {
                let after = action.after.as_ref().expect("update has attributes");
                let live = match current {
                    Some(live) => Some(live),
                    None => {
                        let name = attr_str(after, "displayName").trim();
                        let customer = customer_of(after);
                        match gdap::with_name(client, &partner, name)
                            .await
                            .map_err(|e| failed(action, e))?
                            .into_iter()
                            .find(|r| {
                                r.display_name.eq_ignore_ascii_case(name)
                                    && with_customer(r, &customer)
                            }) {
                            Some(found) => read(Some(found.id)).await?,
                            None => None,
                        }
                    }
                };
                let Some(live) = live else {
                    return Err(failed_because(
                        action,
                        Cause::GraphError,
                        "the relationship is no longer among the partner's relationships: plan again",
                    ));
                };
                if action.op == Op::Adopt {
                    // Recovered: an apply that died after creating it; finish what it started
                    // (lock it for approval). Adopting (`--adopt`, import) writes nothing.
                    let recovered = action.reason == Some(crate::plan::Reason::Recovered);
                    let live = if recovered {
                        self.lock(action, client, &partner, live).await?
                    } else {
                        live
                    };
                    return Ok(Executed {
                        ids: ids(&live, None),
                        external: recovered,
                    });
                }
                // Never the live one itself (a replacement that vanished leaves the old one).
                let previous = id_of("previousRelationshipId").filter(|p| *p != live.id);
                if needs_replacement(&live, after) {
                    // The relationship still in force stays recorded until its successor is
                    // active: the one being replaced when it is, else the one it replaced
                    // (a replacement that expired unapproved).
                    // A replacement still waiting for approval is replaced again: the one
                    // in force is still the original it was to replace.
                    let keep = if live.status == status::ACTIVE {
                        Some(live.id.clone())
                    } else if status::is_ended(&live.status) {
                        previous.clone()
                    } else {
                        previous.clone().or_else(|| Some(live.id.clone()))
                    };
                    return self
                        .replace(action, client, &partner, &live, keep.as_deref(), after)
                        .await;
                }
                let live = self
                    .update_in_place(action, client, &partner, live, after)
                    .await?;
                // A replacement that is active now ends the relationship it replaces.
                let mut still_previous = previous.clone();
                if live.status == status::ACTIVE {
                    if let Some(old) = read(previous.clone())
                        .await?
                        .filter(|old| old.id != live.id && !status::is_ended(&old.status))
                    {
                        gdap::request(client, &partner, &old.id, "terminate")
                            .await
                            .map_err(|e| failed(action, e))?;
                    }
                    still_previous = None;
                }
                Ok(Executed {
                    ids: ids(&live, still_previous.as_deref()),
                    external: true,
                })
            }
            Op::Delete => {
                let ended = current.as_ref().map(|c| c.id.clone());
                if let Some(live) = current {
                    match live.status.as_str() {
                        status::CREATED => gdap::delete(client, &partner, &live.id, &live.etag)
                            .await
                            .map_err(|e| failed(action, e))?,
                        s if status::is_ended(s) => {}
                        _ => gdap::request(client, &partner, &live.id, "terminate")
                            .await
                            .map_err(|e| failed(action, e))?,
                    }
                }
                // The replaced one too, if it is still there (and not the one just ended).
                if let Some(old) =
                    read(id_of("previousRelationshipId").filter(|p| Some(p) != ended.as_ref()))
                        .await?
                        .filter(|r| !status::is_ended(&r.status))
                {
                    gdap::request(client, &partner, &old.id, "terminate")
                        .await
                        .map_err(|e| failed(action, e))?;
                }
                Ok(Executed {
                    ids: Ids::new(),
                    external: true,
                })
            }
            Op::Archive | Op::NoOp => Ok(Executed::default()),
        }
    }

    async fn create(
        &self,
        action: &Action,
        client: &GraphClient,
        partner: &str,
        after: &Attributes,
        name: &str,
    ) -> Result<LiveRelationship, ApplyError> {
        let new = NewRelationship {
            display_name: name.to_string(),
            customer_tenant_id: attr_str(after, "customerTenantId").to_string(),
            customer_display_name: attr_str(after, "customerDisplayName").to_string(),
            roles: roles_of(after, "roles"),
            duration: attr_str(after, "duration").to_string(),
            auto_extend_duration: attr_str(after, "autoExtendDuration").to_string(),
        };
        gdap::create(client, partner, &new)
            .await
            .map_err(|e| failed(action, e))
    }

    /// Locks a `created` relationship for the customer's approval.
    async fn lock(
        &self,
        action: &Action,
        client: &GraphClient,
        partner: &str,
        relationship: LiveRelationship,
    ) -> Result<LiveRelationship, ApplyError> {
        if relationship.status != status::CREATED {
            return Ok(relationship);
        }
        gdap::request(client, partner, &relationship.id, "lockForApproval")
            .await
            .map_err(|e| failed(action, e))?;
        gdap::get(client, partner, &relationship.id)
            .await
            .map_err(|e| failed(action, e))
    }

    /// A new relationship for what Graph cannot change in place: the desired display name
    /// when it is free, else the name with the day (unique), locked for approval; `previous`
    /// (the one still in force) is recorded and ended once the new one is active.
    async fn replace(
        &self,
        action: &Action,
        client: &GraphClient,
        partner: &str,
        old: &LiveRelationship,
        previous: Option<&str>,
        after: &Attributes,
    ) -> Result<Executed, ApplyError> {
        let base = attr_str(after, "displayName").trim().to_string();
        let customer = customer_of(after);
        // A replacement an earlier run made and died before recording, whatever day it was
        // named on: the customer's relationship, not ended, neither the old one nor the one
        // in force, with the desired roles and a name made from the desired one.
        let desired_roles = sorted(roles_of(after, "roles"));
        let earlier = gdap::for_customer(client, partner, &customer)
            .await
            .map_err(|e| failed(action, e))?
            .into_iter()
            .find(|r| {
                r.id != old.id
                    && Some(r.id.as_str()) != previous
                    && with_customer(r, &customer)
                    && !status::is_ended(&r.status)
                    && sorted(r.roles.clone()) == desired_roles
                    && is_replacement_name(&r.display_name, &base)
            });
        if let Some(made) = earlier {
            let made = self.lock(action, client, partner, made).await?;
            return Ok(Executed {
                ids: ids(&made, previous),
                external: true,
            });
        }
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string();
        // The desired name when it is free, else the name with the day (and a number): each
        // looked up by name.
        let candidates = std::iter::once(base.clone()).chain((1..=9).map(|n| {
            let suffix = if n == 1 {
                format!(" {today}")
            } else {
                format!(" {today}-{n}")
            };
            with_suffix(&base, &suffix)
        }));
        for name in candidates {
            let taken = gdap::with_name(client, partner, &name)
                .await
                .map_err(|e| failed(action, e))?
                .into_iter()
                .any(|r| r.display_name.eq_ignore_ascii_case(&name));
            // Taken (by the old one, one that ended, or another customer's: names are unique
            // across the partner): the next candidate.
            if taken {
                continue;
            }
            let made = self.create(action, client, partner, after, &name).await?;
            let made = self.lock(action, client, partner, made).await?;
            return Ok(Executed {
                ids: ids(&made, previous),
                external: true,
            });
        }
        Err(failed_because(
            action,
            Cause::GraphError,
            format!("no free display name for a new relationship from `{base}`"),
        ))
    }

    /// What the relationship's status allows now: a `created` one is edited and locked; an
    /// active one loses Global Administrator, changes its auto-extension and gets its access
    /// assignments made to match; a pending one waits for the customer.
    async fn update_in_place(
        &self,
        action: &Action,
        client: &GraphClient,
        partner: &str,
        live: LiveRelationship,
        after: &Attributes,
    ) -> Result<LiveRelationship, ApplyError> {
        let desired_roles = roles_of(after, "roles");
        let auto_extend = attr_str(after, "autoExtendDuration");
        let live_auto_extend = if live.auto_extends() { "P180D" } else { "PT0S" };
        match live.status.as_str() {
            status::CREATED => {
                let mut patch = serde_json::Map::new();
                let name = attr_str(after, "displayName").trim();
                if !live.display_name.eq_ignore_ascii_case(name) {
                    patch.insert("displayName".into(), json!(name));
                }
                if live.duration != attr_str(after, "duration") {
                    patch.insert("duration".into(), json!(attr_str(after, "duration")));
                }
                if sorted(live.roles.clone()) != sorted(desired_roles.clone()) {
                    patch.insert(
                        "accessDetails".into(),
                        gdap::roles_patch(&desired_roles)["accessDetails"].clone(),
                    );
                }
                if live_auto_extend != auto_extend {
                    patch.insert("autoExtendDuration".into(), json!(auto_extend));
                }
                let live = if patch.is_empty() {
                    live
                } else {
                    gdap::update(client, partner, &live.id, &live.etag, &Value::Object(patch))
                        .await
                        .map_err(|e| failed(action, e))?
                };
                self.lock(action, client, partner, live).await
            }
            status::ACTIVE => {
                self.match_assignments(action, client, partner, &live, after)
                    .await?;
                let mut live = live;
                if sorted(live.roles.clone()) != sorted(desired_roles.clone()) {
                    // Removing Global Administrator: the etag may have moved with the
                    // assignments, so read it again.
                    let fresh = gdap::get(client, partner, &live.id)
                        .await
                        .map_err(|e| failed(action, e))?;
                    live = gdap::update(
                        client,
                        partner,
                        &live.id,
                        &fresh.etag,
                        &gdap::roles_patch(&desired_roles),
                    )
                    .await
                    .map_err(|e| failed(action, e))?;
                }
                if live_auto_extend != auto_extend {
                    let fresh = gdap::get(client, partner, &live.id)
                        .await
                        .map_err(|e| failed(action, e))?;
                    // Removing Global Administrator is a long-running operation (202): until
                    // it ends Graph refuses auto-extension, so say that rather than its refusal.
                    if auto_extend == "P180D"
                        && crate::gdap::has_global_administrator(
                            fresh.roles.iter().map(String::as_str),
                        )
                    {
                        return Err(failed_because(
                            action,
                            Cause::GraphError,
                            "Global Administrator is still being removed (Graph's long-running operation): auto-extension can be set once it has ended; apply again later",
                        ));
                    }
                    live = gdap::update(
                        client,
                        partner,
                        &live.id,
                        &fresh.etag,
                        &json!({"autoExtendDuration": auto_extend}),
                    )
                    .await
                    .map_err(|e| failed(action, e))?;
                }
                Ok(live)
            }
            // Approval pending: nothing the partner can do until the customer acts.
            _ => Ok(live),
        }
    }

    /// Makes an active relationship's access assignments what `after` lists: creates the
    /// missing, updates roles that differ, recreates ones in error, removes the others.
    async fn match_assignments(
        &self,
        action: &Action,
        client: &GraphClient,
        partner: &str,
        live: &LiveRelationship,
        after: &Attributes,
    ) -> Result<(), ApplyError> {
        let desired = assignments_of(after);
        for (group, roles) in &desired {
            let existing = live.current_assignments().find(|a| a.group_id == *group);
            match existing {
                Some(a) if a.status == "error" => {
                    gdap::delete_assignment(client, partner, &live.id, &a.id, &a.etag)
                        .await
                        .map_err(|e| failed(action, e))?;
                    gdap::create_assignment(client, partner, &live.id, group, roles)
                        .await
                        .map_err(|e| failed(action, e))?;
                }
                Some(a) if sorted(a.roles.clone()) != sorted(roles.clone()) => {
                    gdap::update_assignment(client, partner, &live.id, &a.id, &a.etag, roles)
                        .await
                        .map_err(|e| failed(action, e))?;
                }
                Some(_) => {}
                None => {
                    gdap::create_assignment(client, partner, &live.id, group, roles)
                        .await
                        .map_err(|e| failed(action, e))?;
                }
            }
        }
        for a in live.current_assignments() {
            if !desired.iter().any(|(g, _)| *g == a.group_id) {
                gdap::delete_assignment(client, partner, &live.id, &a.id, &a.etag)
                    .await
                    .map_err(|e| failed(action, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_replace_makes_count_as_an_earlier_replacement() {
        let base = "Contoso Helpdesk";
        for name in [
            "Contoso Helpdesk",
            "contoso helpdesk 2026-12-08",
            "Contoso Helpdesk 2026-12-08-2",
            "Contoso Helpdesk 2026-12-08-9",
        ] {
            assert!(is_replacement_name(name, base), "{name}");
        }
        for name in [
            "Contoso Helpdesk Tier2",
            "Contoso Helpdesk 2026-12-08-10",
            "Contoso Helpdesk 2026-13-08",
            "Contoso Helpdesk 2026-12-08-1",
            "Contoso Helpdesk EU 2026-12-08",
            "Contoso",
        ] {
            assert!(!is_replacement_name(name, base), "{name}");
        }
        // A long name is cut to fit the day, as replace names it.
        let long = "A very long relationship display name of fifty ch";
        assert_eq!(long.chars().count(), 49);
        let made = with_suffix(long, " 2026-12-08");
        assert!(
            made.chars().count() <= crate::gdap::MAX_DISPLAY_NAME,
            "{made}"
        );
        assert!(is_replacement_name(&made, long), "{made}");
    }
}
