//! Contacts: one tenant's end users planned from its sync rules, what Entra reported and the
//! contacts in state. Contacts are MSP-side records keyed by the user's object id: created
//! for users the rules include, updated (with the changed fields, and a move between
//! organizations explained), archived with the reason when a user leaves (kept, never
//! dropped), restored when one comes back. A run that would archive many of a tenant's
//! contacts at once is held back (the mass-removal guard).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::diff::diff;
use super::{Action, AttributeChange, Op, Reason};
use crate::end_users::{
    Condition, ContactField, Decision, EntraUser, GroupMembership, ReadGroups, StoredGroup,
    StoredGroups, SyncPosition, TenantSync, Why, group_key, rules_digest,
};
use crate::live::LiveUsers;
use crate::resources::{address, attr_str};
use crate::state::{Attributes, StateObject};

/// The contact kind's name (addresses `contact.<tenant>.<user id>`).
pub const CONTACT: &str = "contact";
/// The kind of a tenant's sync position (`user_sync.<tenant>`).
pub const USER_SYNC: &str = "user_sync";
/// A contact's attribute holding its user as read (routed again from it without a read).
const ENTRA: &str = "entra";

/// The mass-removal guard: a run may archive at most this share of a tenant's active contacts
/// (percent) unless it archives fewer than [`MASS_REMOVAL_MIN`].
pub const MASS_REMOVAL_PERCENT: usize = 10;
pub const MASS_REMOVAL_MIN: usize = 5;

/// What planning one tenant's contacts needs besides the rules and the read.
pub struct ContactOptions {
    pub allow_mass_removal: bool,
    /// RFC 3339 time of the plan (when archives say they happened).
    pub now: String,
}

/// One tenant's contact actions, and the position to record once they are applied (none
/// while anything is held back: a delta link must not move past changes not carried out).
pub struct TenantContacts {
    pub actions: Vec<Action>,
    pub position: Option<SyncPosition>,
}

/// Plans `tenant`'s contacts. `stored` are its contacts in state (addresses as the manifests
/// name them now, with the address each had before a tenant rename in `moved_from`); `read`
/// is this run's read, needed whenever `sync` is declared; `previous` the stored position.
pub fn plan_tenant_contacts(
    tenant: &str,
    sync: Option<&TenantSync>,
    read: Option<&LiveUsers>,
    stored: &BTreeMap<String, &StateObject>,
    moved_from: &BTreeMap<String, String>,
    previous: Option<&SyncPosition>,
    options: &ContactOptions,
) -> TenantContacts {
    // By user id: what state has.
    let mut contacts: BTreeMap<String, (&str, &StateObject)> = BTreeMap::new();
    for (addr, object) in stored {
        if let Some(id) = object.attributes.get(ENTRA).and_then(|e| e["id"].as_str()) {
            contacts.insert(id.to_string(), (addr.as_str(), *object));
        }
    }
    let mut actions = Vec::new();
    let (Some(sync), Some(read)) = (sync, read) else {
        // No sync declared any more: every active contact is archived (held back by the
        // guard like any other mass removal).
        for (addr, object) in contacts.values() {
            if !is_archived(object) {
                actions.push(archive(
                    tenant,
                    addr,
                    object,
                    None,
                    "end-user sync removed from manifests",
                    moved_from,
                    &options.now,
                ));
            }
        }
        guard(&mut actions, &contacts, options);
        return TenantContacts {
            actions,
            position: None,
        };
    };
    let groups = ReadGroups(&read.groups);
    let empty = BTreeMap::new();
    let before_groups = StoredGroups(previous.map_or(&empty, |p| &p.groups));
    let changed: BTreeMap<&str, &EntraUser> =
        read.users.iter().map(|u| (u.id.as_str(), u)).collect();
    let removed: BTreeMap<&str, bool> = read
        .removed
        .iter()
        .map(|r| (r.id.as_str(), r.soft))
        .collect();

    // A contact whose user Entra reported nothing about, whose membership of the named groups
    // is as it was, under the routes and field map it was made with, cannot change: it is not
    // worked out again (what a quiet hourly run of a large tenant mostly holds).
    let routing = routing_digest(sync);
    let same_routing = previous.is_some_and(|p| p.routing_digest == routing);
    let named = sync.rules.groups();
    let unchanged = |id: &str| {
        same_routing
            && read.complete.is_none()
            && !changed.contains_key(id)
            && !removed.contains_key(id)
            && named
                .iter()
                .all(|g| groups.is_member(g, id) == before_groups.is_member(g, id))
    };

    // Every user whose contact may change: those read, and those with a contact.
    let ids: BTreeSet<&str> = changed
        .keys()
        .copied()
        .chain(contacts.keys().map(String::as_str))
        .collect();
    for id in ids {
        let contact = contacts.get(id);
        if let Some((addr, object)) = contact
            && unchanged(id)
        {
            if !is_archived(object) {
                actions.push(no_op(tenant, addr));
            }
            continue;
        }
        let kept =
            contact.and_then(|(_, o)| o.attributes.get(ENTRA).and_then(EntraUser::from_value));
        let user = match changed.get(id) {
            Some(user) => Some(std::borrow::Cow::Borrowed(*user)),
            // Removed, or not in a whole read: gone from Entra.
            None if removed.contains_key(id) || read.complete.is_some() => None,
            // An archived contact whose user Entra reported nothing new about stays archived
            // (what it kept may be a deleted user's; a user who comes back is reported).
            None if contact.is_some_and(|(_, o)| is_archived(o)) => continue,
            None => kept.clone().map(std::borrow::Cow::Owned),
        };
        let Some(user) = user else {
            let Some((addr, object)) = contact else {
                continue;
            };
            if !is_archived(object) {
                let reason = match removed.get(id) {
                    Some(true) => "deleted in Entra (restorable for 30 days)",
                    Some(false) => "deleted in Entra",
                    None => "no longer in Entra",
                };
                actions.push(archive(
                    tenant,
                    addr,
                    object,
                    None,
                    reason,
                    moved_from,
                    &options.now,
                ));
            }
            continue;
        };
        match sync.rules.decide(&user, &groups) {
            Decision::Included(rule) => {
                let organization = sync.route(&user, &groups).map(str::to_string);
                let desired = contact_attributes(tenant, sync, &user, organization.as_deref());
                let addr = address(CONTACT, &format!("{tenant}.{}", user.id));
                match contact {
                    None => actions.push(Action {
                        changes: created_fields(&desired),
                        note: Some(format!(
                            "matches include rule {} ({})",
                            rule + 1,
                            sync.rules.include[rule].describe()
                        )),
                        ..action(
                            tenant,
                            &addr,
                            Op::Create,
                            Reason::SyncedFromEntra,
                            None,
                            Some(desired),
                        )
                    }),
                    Some((addr, object)) => {
                        let from = moved_from.get(*addr).cloned();
                        let changes = diff(&object.attributes, &desired);
                        if changes.is_empty() && from.is_none() {
                            actions.push(no_op(tenant, addr));
                            continue;
                        }
                        let was_archived = is_archived(object);
                        let entra_changed = kept.as_ref() != Some(&user)
                            || sync.rules.groups().iter().any(|g| {
                                groups.is_member(g, &user.id)
                                    != before_groups.is_member(g, &user.id)
                            });
                        let reason = if from.is_some() {
                            Reason::RenamedInManifests
                        } else if was_archived {
                            Reason::SyncedFromEntra
                        } else if entra_changed {
                            Reason::DriftedInEntra
                        } else {
                            Reason::ChangedInManifests
                        };
                        let mut notes = Vec::new();
                        if was_archived {
                            notes.push(format!(
                                "restored: matches include rule {} ({}) again",
                                rule + 1,
                                sync.rules.include[rule].describe()
                            ));
                        }
                        let before_org = attr_str(&object.attributes, "organization");
                        if let Some(org) = &organization
                            && before_org != org
                            && !before_org.is_empty()
                        {
                            notes.push(format!(
                                "moves from organization {before_org} to {org}{}",
                                route_reason(sync, &user, &groups)
                            ));
                        }
                        actions.push(Action {
                            changes,
                            moved_from: from,
                            note: (!notes.is_empty()).then(|| notes.join("; ")),
                            ..action(
                                tenant,
                                addr,
                                Op::Update,
                                reason,
                                Some(object.attributes.clone()),
                                Some(desired),
                            )
                        });
                    }
                }
            }
            Decision::Excluded(why) => {
                let Some((addr, object)) = contact else {
                    continue;
                };
                if is_archived(object) {
                    continue;
                }
                let reason = match why {
                    Why::Disabled => "disabled in Entra".to_string(),
                    Why::ExcludeRule(i) => format!(
                        "matches exclude rule {} ({})",
                        i + 1,
                        sync.rules.exclude[i].describe()
                    ),
                    Why::NoIncludeRule => {
                        left_include_rules(sync, kept.as_ref(), &user, &groups, &before_groups)
                    }
                };
                actions.push(archive(
                    tenant,
                    addr,
                    object,
                    Some(&user),
                    &reason,
                    moved_from,
                    &options.now,
                ));
            }
        }
    }
    let held_back = guard(&mut actions, &contacts, options);
    // A quiet read (nothing changed, the same members) keeps the stored position: its link
    // still answers "nothing since", and an hourly sync then writes nothing. It is renewed
    // once a day, well inside the 7 days a delta link lasts.
    let quiet = quiet_read(previous, read, sync, &options.now);
    let position = (!held_back && !quiet).then(|| SyncPosition {
        delta_link: read.delta_link.clone(),
        rules_digest: rules_digest(&sync.rules),
        routing_digest: routing,
        read_at: options.now.clone(),
        groups: read
            .groups
            .iter()
            .map(|g| {
                (
                    group_key(&g.reference),
                    StoredGroup {
                        id: g.id.clone(),
                        display_name: g.display_name.clone(),
                        members: g.members.clone(),
                    },
                )
            })
            .collect(),
    });
    TenantContacts { actions, position }
}

/// A read that can change no contact and keeps the stored position: a delta with nothing in
/// it, the named groups' members as they were, the rules, routes and field map the position
/// was read and its contacts made with, and a position less than a day old (renewed daily,
/// well inside the 7 days a delta link lasts). Such a tenant's contacts need not even be
/// loaded.
pub fn quiet_read(
    previous: Option<&SyncPosition>,
    read: &LiveUsers,
    sync: &TenantSync,
    now: &str,
) -> bool {
    read.complete.is_none()
        && read.users.is_empty()
        && read.removed.is_empty()
        && previous.is_some_and(|p| {
            p.rules_digest == rules_digest(&sync.rules)
                && p.routing_digest == routing_digest(sync)
                && read.groups.len() == p.groups.len()
                && read.groups.iter().all(|g| {
                    p.groups
                        .get(&group_key(&g.reference))
                        .is_some_and(|s| s.members == g.members && s.id == g.id)
                })
                && younger_than_a_day(&p.read_at, now)
        })
}

/// What decides where a kept user goes and what its contact shows: the routes, the field map
/// and the default organization. When it changes, every contact is worked out again.
fn routing_digest(sync: &TenantSync) -> String {
    use sha2::Digest;
    let routing = serde_json::json!({
        "routes": sync.rules.routes,
        "fields": sync.rules.fields,
        "default": sync.default_organization,
    });
    let bytes = serde_json::to_vec(&routing).expect("routes serialize");
    sha2::Sha256::digest(&bytes)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `then` is less than a day before `now` (RFC 3339 times; unreadable: no).
fn younger_than_a_day(then: &str, now: &str) -> bool {
    match (
        then.parse::<jiff::Timestamp>(),
        now.parse::<jiff::Timestamp>(),
    ) {
        (Ok(then), Ok(now)) => now.duration_since(then) < jiff::SignedDuration::from_hours(24),
        _ => false,
    }
}

/// Why a contact that matched an include rule no longer does: the first condition of the
/// rule it matched before that it fails now.
fn left_include_rules(
    sync: &TenantSync,
    before: Option<&EntraUser>,
    now: &EntraUser,
    groups: &dyn GroupMembership,
    before_groups: &dyn GroupMembership,
) -> String {
    let matched_before = before.and_then(|b| {
        sync.rules
            .include
            .iter()
            .find(|r| r.matches(b, before_groups))
    });
    let Some(rule) = matched_before else {
        return "matches no include rule".into();
    };
    match rule.failing(now, groups) {
        Some(Condition::Group(refs)) => {
            let names: Vec<&str> = refs.iter().map(|g| groups.display_name(g)).collect();
            format!("left group {}", names.join(" or "))
        }
        Some(condition) => {
            let value = match condition {
                Condition::Property(p, _) => now.text(*p).unwrap_or("").to_string(),
                Condition::UserType(_) => now.user_type.clone().unwrap_or_default(),
                Condition::AccountEnabled(_) => now
                    .account_enabled
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                Condition::Domain(_) => now.domains().join(", "),
                Condition::Group(_) => String::new(),
            };
            format!(
                "no longer matches the {} rule ({}): now {}",
                condition.name(),
                condition.describe(),
                if value.is_empty() {
                    "empty".into()
                } else {
                    format!("'{value}'")
                }
            )
        }
        None => "matches no include rule".into(),
    }
}

/// ": officeLocation Boston*" (the route that sent it), or " (default organization)".
fn route_reason(sync: &TenantSync, user: &EntraUser, groups: &dyn GroupMembership) -> String {
    match sync
        .rules
        .routes
        .iter()
        .find(|r| r.rule.matches(user, groups))
    {
        Some(route) => format!(" (route: {})", route.rule.describe()),
        None => " (no route matches: default organization)".into(),
    }
}

/// Holds back every archive of the tenant when there are too many (returns whether it did).
fn guard(
    actions: &mut [Action],
    contacts: &BTreeMap<String, (&str, &StateObject)>,
    options: &ContactOptions,
) -> bool {
    let archives = actions.iter().filter(|a| a.op == Op::Archive).count();
    let active = contacts.values().filter(|(_, o)| !is_archived(o)).count();
    let too_many = archives >= MASS_REMOVAL_MIN && archives * 100 > active * MASS_REMOVAL_PERCENT;
    if !too_many || options.allow_mass_removal {
        return false;
    }
    let why = format!(
        "mass removal: this run would archive {archives} of {active} contacts ({}%; the guard holds back more than {MASS_REMOVAL_PERCENT}% when at least {MASS_REMOVAL_MIN}): check the rules and Entra, then pass --allow-mass-removal if it is intended",
        archives * 100 / active.max(1)
    );
    for a in actions.iter_mut().filter(|a| a.op == Op::Archive) {
        a.blocked = Some(why.clone());
    }
    true
}

fn is_archived(object: &StateObject) -> bool {
    object
        .attributes
        .get("archived")
        .is_some_and(|v| !v.is_null())
}

/// The contact's attributes for `user`: its tenant and organization, each contact field the
/// map gives a value, and the user as read (kept so later runs can route it again without
/// reading it).
fn contact_attributes(
    tenant: &str,
    sync: &TenantSync,
    user: &EntraUser,
    organization: Option<&str>,
) -> Attributes {
    let mut attributes = Vec::with_capacity(sync.rules.fields.len() + 3);
    attributes.push(("tenant".to_string(), json!(tenant)));
    if let Some(org) = organization {
        attributes.push(("organization".into(), json!(org)));
    }
    for (field, sources) in &sync.rules.fields {
        if let Some(value) = sources.iter().find_map(|p| user.text(*p)) {
            attributes.push((field.as_str().into(), json!(value)));
        }
    }
    attributes.push((ENTRA.into(), user.to_value()));
    // Collected, not inserted one by one: the map sorts once (keeping a key's last value,
    // as inserting does) where inserting out of order shifts the entries each time.
    attributes.into_iter().collect()
}

fn archive(
    tenant: &str,
    addr: &str,
    object: &StateObject,
    user: Option<&EntraUser>,
    reason: &str,
    moved_from: &BTreeMap<String, String>,
    now: &str,
) -> Action {
    let mut after = object.attributes.clone();
    if let Some(user) = user {
        after.insert(ENTRA.into(), user.to_value());
    }
    after.insert("archived".into(), json!({"at": now, "reason": reason}));
    Action {
        changes: diff(&object.attributes, &after),
        moved_from: moved_from.get(addr).cloned(),
        note: Some(reason.to_string()),
        ..action(
            tenant,
            addr,
            Op::Archive,
            Reason::LeftSyncRules,
            Some(object.attributes.clone()),
            Some(after),
        )
    }
}

/// What a new contact shows: its fields, not the user as read (`entra`), which repeats
/// them and is bookkeeping for later runs; a change to it shows on an update
/// (`entra.userPrincipalName`), where it may be the only change.
fn created_fields(desired: &Attributes) -> Vec<AttributeChange> {
    desired
        .iter()
        .filter(|(key, value)| key.as_str() != ENTRA && !value.is_null())
        .map(|(key, value)| AttributeChange {
            path: key.clone(),
            before: None,
            after: Some(value.clone()),
        })
        .collect()
}

/// An unchanged contact.
fn no_op(tenant: &str, addr: &str) -> Action {
    action(tenant, addr, Op::NoOp, Reason::SyncedFromEntra, None, None)
}

fn action(
    tenant: &str,
    addr: &str,
    op: Op,
    reason: Reason,
    before: Option<Attributes>,
    after: Option<Attributes>,
) -> Action {
    Action {
        address: addr.to_string(),
        kind: CONTACT.into(),
        tenant: tenant.to_string(),
        op,
        reason: (op != Op::NoOp).then_some(reason),
        moved_from: None,
        changes: Vec::new(),
        before,
        after,
        blocked: None,
        warnings: Vec::new(),
        live_ids: None,
        note: None,
    }
}

/// The contact fields a contact shows, in order (for listings).
pub fn contact_fields() -> impl Iterator<Item = &'static str> {
    ContactField::ALL.iter().map(|(f, _)| f.as_str())
}

/// A stored contact's text field ("" when absent).
pub fn contact_text<'a>(object: &'a StateObject, field: &str) -> &'a str {
    object
        .attributes
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
}
