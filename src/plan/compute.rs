//! `plan()`: the three-way diff of desired model, stored state and live Entra into actions.
//! The steps after the diff (dependencies, ordering, hints, outcomes) live in their own
//! modules; this one decides each object's operation and reason.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::dependencies::block_unmet_dependencies;
use super::diff::{diff, order};
use super::live::{NotRead, pending_note, readable, replicating, unowned_role_assignments};
use super::outcomes::tenant_outcomes;
use super::{
    Action, AttributeChange, Op, Part, Plan, PlanHeader, PlanInput, PlanPart, Reason, StateRef,
    Summary, manifests_digest,
};
use crate::resources::{DesiredObject, KINDS, address, kind};
use crate::state::{Attributes, StateObject};

/// Computes the whole plan: the catalog part (a group of tenants at a time, as a streaming
/// run plans it), then the tenants' part.
pub fn plan(input: &PlanInput) -> Plan {
    let mut plan = Plan::new(header(input));
    for part in super::catalog::plan_catalog(input, super::catalog::TENANTS_PER_GROUP) {
        plan.add_part(part);
    }
    plan.add_part(plan_part(input, Part::Tenants));
    plan
}

/// What a plan document says about where it came from (computed once for a whole plan).
pub fn header(input: &PlanInput) -> PlanHeader {
    PlanHeader {
        id: String::new(),
        manifests_digest: manifests_digest(input.desired),
        state: StateRef {
            lineage: input.state.lineage.clone(),
            serial: input.state.serial,
            partitions: BTreeMap::new(),
        },
        options: input.options.clone(),
    }
}

/// Computes one part of a plan. `Part::Catalog` plans the fleet records (tenants and
/// organizations; `catalog::CatalogPlanner` runs it a group of tenants at a time, and adds
/// the plan-wide hints); `Part::Tenants` plans every other kind, tenant by
/// tenant: given an input narrowed to one tenant (its objects, its state partition with the
/// catalog records that name it, its live read), it is that tenant's part, so a streaming run
/// holds only the tenants in flight.
pub fn plan_part(input: &PlanInput, part: Part) -> PlanPart {
    let in_scope = |tenant: &str| input.options.in_scope(tenant);
    let in_part =
        |k: &crate::resources::ResourceKind| part.covers(k) && input.options.plans_kind(k.name);
    // Without a live snapshot, kinds that live in Entra are not planned: only their tenants
    // are listed as not read (without building their objects). A tenant Entra was asked about
    // and did not answer is not read, whatever it holds; one whose source a kind needs was not
    // read does not plan that kind, whether or not it has objects of it.
    let mut not_read = NotRead::new();
    let planned = |k: &&crate::resources::ResourceKind| input.live.is_some() || k.live.is_none();
    for k in KINDS.iter().filter(|k| in_part(k)) {
        let mut tenants = match (&k.live, &k.synced) {
            (Some(rules), _) => (rules.tenants)(input.desired),
            // Synced kinds need their sources only where a sync is declared.
            (None, Some(synced)) => {
                for tenant in (synced.tenants)(input.desired)
                    .iter()
                    .filter(|t| in_scope(t))
                {
                    readable(input.live, input.options.offline, tenant, k, &mut not_read);
                }
                continue;
            }
            (None, None) => continue,
        };
        // Tenants Entra was asked about for this kind (a tenant read only for its end users
        // was not asked about guests).
        if let Some(live) = input.live {
            tenants.extend(
                live.tenants
                    .iter()
                    .filter(|(_, t)| match t {
                        // GDAP relationships are read in the partner tenant: a customer whose
                        // own read failed says nothing about them.
                        crate::live::LiveTenant::Failed(_) => {
                            k.id != crate::resources::KindId::GdapRelationship
                        }
                        crate::live::LiveTenant::Read(dir) => {
                            k.sources().iter().any(|s| dir.sources.contains_key(*s))
                        }
                    })
                    .map(|(name, _)| name.clone()),
            );
        }
        for tenant in tenants.iter().filter(|t| in_scope(t)) {
            readable(input.live, input.options.offline, tenant, k, &mut not_read);
        }
    }
    let desired: Vec<DesiredObject> = KINDS
        .iter()
        .filter(|k| in_part(k))
        .filter(planned)
        .flat_map(|k| (k.desired)(input.desired))
        .filter(|d| in_scope(&d.tenant))
        .collect();
    // A tenant's rename moves its objects in both parts, so both see the desired tenants.
    let desired_tenant_addresses: Vec<String> = match part {
        Part::Catalog => Vec::new(),
        Part::Tenants => input
            .desired
            .tenants
            .keys()
            .map(|t| address(crate::resources::tenant::KIND.name, t))
            .collect(),
    };
    let desired_addresses: BTreeSet<&str> = desired
        .iter()
        .map(|d| d.address.as_str())
        .chain(desired_tenant_addresses.iter().map(String::as_str))
        .collect();

    // The state as the manifests name it: objects with a former name move to the new address.
    let mut stored: BTreeMap<String, &StateObject> = input
        .state
        .objects
        .iter()
        .filter(|(a, o)| kind(&o.kind).is_none_or(|k| in_scope(&(k.tenant_of)(a, o))))
        .map(|(a, o)| (a.clone(), o))
        .collect();
    let mut moved_from: BTreeMap<String, String> = BTreeMap::new();
    for k in KINDS {
        for (current, formers) in (k.former_names)(input.desired) {
            let new = address(k.name, &current);
            if stored.contains_key(&new) {
                continue; // already renamed: former names are history
            }
            let Some(former) = formers.iter().find(|f| {
                let old = address(k.name, f);
                stored.contains_key(&old) && !desired_addresses.contains(old.as_str())
            }) else {
                continue;
            };
            move_object(&mut stored, &mut moved_from, &address(k.name, former), &new);
            if k.name == "tenant" {
                let addresses: Vec<String> = stored.keys().cloned().collect();
                for old in addresses {
                    let object_kind = kind(&stored[&old].kind);
                    if let Some(new) =
                        object_kind.and_then(|ok| (ok.after_tenant_rename)(&old, former, &current))
                        && !stored.contains_key(&new)
                        && !desired_addresses.contains(old.as_str())
                    {
                        move_object(&mut stored, &mut moved_from, &old, &new);
                    }
                }
            }
        }
    }

    gdap_renames(&desired, &desired_addresses, &mut stored, &mut moved_from);

    // Renames were found over both parts' objects (a tenant's rename moves its objects); each
    // part plans only its own kinds (objects of unknown kinds belong to the catalog part).
    stored.retain(|_, o| {
        kind(&o.kind).map_or(
            part == Part::Catalog && input.options.only_kinds.is_none(),
            in_part,
        )
    });
    // Kinds synced from Entra have a step of their own.
    let synced: BTreeMap<String, &StateObject> = {
        let addresses: Vec<String> = stored
            .iter()
            .filter(|(_, o)| {
                kind(&o.kind).is_some_and(|k| {
                    k.synced.is_some() || k.id == crate::resources::KindId::UserSync
                })
            })
            .map(|(a, _)| a.clone())
            .collect();
        addresses
            .into_iter()
            .filter_map(|a| stored.remove(&a).map(|o| (a, o)))
            .collect()
    };

    let delete_blocked =
        || (!input.options.allow_delete).then(|| "deletes need --allow-delete".to_string());
    let mut actions = Vec::with_capacity(desired.len() + 8);
    for d in &desired {
        let k = kind(d.kind).expect("registered kind");
        let stored_object = stored.remove(&d.address);
        let from = moved_from.get(&d.address).cloned();
        if let Some(rules) = &k.live {
            let Some(dir) = readable(
                input.live,
                input.options.offline,
                &d.tenant,
                k,
                &mut not_read,
            ) else {
                if let (Some(object), Some(from)) = (stored_object, &from) {
                    actions.push(state_only_move(&d.address, from, object, k));
                }
                continue;
            };
            let found = (rules.find)(dir, &d.attributes, stored_object);
            let pick = |a: &Attributes| -> Attributes {
                rules
                    .compared
                    .iter()
                    .filter_map(|c| a.get(*c).map(|v| ((*c).to_string(), v.clone())))
                    .collect()
            };
            let base = Action {
                address: d.address.clone(),
                kind: d.kind.to_string(),
                tenant: d.tenant.clone(),
                op: Op::NoOp,
                reason: None,
                moved_from: from.clone(),
                changes: Vec::new(),
                before: stored_object.map(|o| o.attributes.clone()),
                after: Some(d.attributes.clone()),
                blocked: None,
                warnings: Vec::new(),
                live_ids: found.as_ref().map(|l| l.ids.clone()),
                note: found.as_ref().and_then(|l| l.note.clone()),
            };
            // A create an interrupted apply started: what Entra has now is ours.
            let interrupted =
                stored_object.is_some_and(|o| o.ids.contains_key(crate::state::PENDING_ID));
            let action = match (stored_object, found) {
                (Some(_), Some(_)) if interrupted => Action {
                    op: Op::Adopt,
                    reason: Some(Reason::Recovered),
                    ..base
                },
                (Some(_), None) if interrupted => Action {
                    op: Op::Create,
                    reason: Some(Reason::NewInManifests),
                    changes: diff(&Attributes::new(), &d.attributes),
                    ..base
                },
                (None, None) => Action { op: Op::Create, reason: Some(Reason::NewInManifests), changes: diff(&Attributes::new(), &d.attributes), ..base },
                (None, Some(_)) => Action {
                    op: Op::Adopt,
                    reason: Some(Reason::ExistsInEntra),
                    blocked: (!input.options.adopt).then(|| "exists in Entra but is not owned: pass --adopt to manage it (it is never invited or created twice)".to_string()),
                    ..base
                },
                (Some(object), None) if replicating(object, &input.options, input.now) => Action {
                    after: None,
                    before: None,
                    reason: Some(Reason::PendingReplication),
                    note: Some(pending_note(object, &input.options)),
                    ..base
                },
                (Some(_), None) => Action { op: Op::Create, reason: Some(Reason::MissingInEntra), changes: diff(&Attributes::new(), &d.attributes), ..base },
                (Some(object), Some(live)) => {
                    let wanted = pick(&d.attributes);
                    let mut changes = diff(&live.attributes, &wanted);
                    let resend = input.options.resend_invitations && live.pending_invitation;
                    if resend {
                        changes.push(AttributeChange {
                            path: "invitation".into(),
                            before: Some(Value::String("PendingAcceptance".into())),
                            after: Some(Value::String("resent".into())),
                        });
                    }
                    if changes.is_empty() && from.is_none() {
                        Action { after: None, before: None, ..base }
                    } else {
                        let reason = if from.is_some() {
                            Reason::RenamedInManifests
                        } else if resend && changes.len() == 1 {
                            Reason::ResendRequested
                        } else if pick(&object.attributes) == wanted {
                            Reason::DriftedInEntra
                        } else {
                            Reason::ChangedInManifests
                        };
                        Action { op: Op::Update, reason: Some(reason), changes, ..base }
                    }
                }
            };
            actions.push(action);
            continue;
        }
        let action = match stored_object {
            None => Action {
                address: d.address.clone(),
                kind: d.kind.to_string(),
                tenant: d.tenant.clone(),
                op: Op::Create,
                reason: Some(Reason::NewInManifests),
                moved_from: None,
                changes: diff(&Attributes::new(), &d.attributes),
                before: None,
                after: Some(d.attributes.clone()),
                blocked: None,
                warnings: Vec::new(),
                live_ids: None,
                note: None,
            },
            Some(object) => {
                let changes = diff(&object.attributes, &d.attributes);
                let (op, reason) = match (changes.is_empty(), &from) {
                    (true, None) => (Op::NoOp, None),
                    (_, Some(_)) => (Op::Update, Some(Reason::RenamedInManifests)),
                    (false, None) => (Op::Update, Some(Reason::ChangedInManifests)),
                };
                let warnings = if op == Op::Update {
                    (k.update_warnings)(&d.address, &object.attributes, &d.attributes)
                } else {
                    Vec::new()
                };
                Action {
                    address: d.address.clone(),
                    kind: d.kind.to_string(),
                    tenant: d.tenant.clone(),
                    op,
                    reason,
                    moved_from: from,
                    changes,
                    before: (op != Op::NoOp).then(|| object.attributes.clone()),
                    after: (op != Op::NoOp).then(|| d.attributes.clone()),
                    blocked: None,
                    warnings,
                    live_ids: None,
                    note: None,
                }
            }
        };
        actions.push(action);
    }
    for (addr, object) in stored {
        let k = kind(&object.kind);
        let tenant = k.map_or_else(String::new, |k| (k.tenant_of)(&addr, object));
        let mut live_ids = None;
        let mut reason = Reason::RemovedFromManifests;
        if let Some((k, rules)) = k.and_then(|k| k.live.as_ref().map(|r| (k, r))) {
            // Never delete what cannot be seen: unreadable tenants (or sources) keep their
            // objects.
            let Some(dir) = readable(input.live, input.options.offline, &tenant, k, &mut not_read)
            else {
                if let Some(from) = moved_from.get(&addr) {
                    actions.push(state_only_move(&addr, from, object, k));
                }
                continue;
            };
            match (rules.find)(dir, &object.attributes, Some(object)) {
                Some(live) => live_ids = Some(live.ids),
                None => reason = Reason::MissingInEntra,
            }
        }
        // Never end a GDAP relationship another address of this plan keeps.
        let kept_by = kept_relationship(&actions, &object.kind, live_ids.as_ref());
        actions.push(Action {
            changes: diff(&object.attributes, &Attributes::new()),
            address: addr,
            kind: object.kind.clone(),
            tenant,
            op: Op::Delete,
            reason: Some(reason),
            moved_from: None,
            before: Some(object.attributes.clone()),
            after: None,
            blocked: kept_by
                .map(|other| {
                    format!(
                        "its relationship is also {other}'s: ending it would end that one; remove it from state (`tenantform state rm`) instead"
                    )
                })
                .or_else(delete_blocked),
            warnings: Vec::new(),
            live_ids,
            note: None,
        });
    }
    let contacts_planned = input.options.plans_kind(super::contacts::CONTACT);
    let positions = match part {
        Part::Tenants if contacts_planned => {
            plan_synced(input, &synced, &moved_from, &mut not_read, &mut actions)
        }
        _ => Vec::new(),
    };
    if input.options.import_only {
        for a in &mut actions {
            let in_entra = kind(&a.kind).is_some_and(|k| k.live.is_some());
            if in_entra
                && matches!(a.op, Op::Create | Op::Update | Op::Delete)
                && a.blocked.is_none()
            {
                a.blocked =
                    Some("import changes nothing in Entra: run `tenantform apply` for this".into());
            }
        }
    }
    block_unmet_dependencies(&mut actions, input.state);
    order(&mut actions);
    let unmanaged = match part {
        Part::Catalog => Vec::new(),
        Part::Tenants => unowned_role_assignments(&actions, input.live),
    };
    let warnings = unmanaged
        .iter()
        .map(|u| format!("{}: {}", u.tenant, u.description))
        .collect();
    let summary = Summary::of(&actions);
    let tenants = tenant_outcomes(input, &actions, &not_read);
    PlanPart {
        part,
        positions,
        actions,
        warnings,
        not_read: not_read.into_values().collect(),
        unmanaged,
        tenants,
        summary,
    }
}

/// Contacts, tenant by tenant: where a sync is declared and its users were read, or where
/// contacts are stored and no sync is declared any more (they are archived). Returns the sync
/// positions to record with the actions.
fn plan_synced(
    input: &PlanInput,
    synced: &BTreeMap<String, &StateObject>,
    moved_from: &BTreeMap<String, String>,
    not_read: &mut NotRead,
    actions: &mut Vec<Action>,
) -> Vec<super::SyncPositionUpdate> {
    use super::contacts::{CONTACT, ContactOptions, USER_SYNC, plan_tenant_contacts};
    let contact_kind = kind(CONTACT).expect("registered kind");
    let mut by_tenant: BTreeMap<String, BTreeMap<String, &StateObject>> = BTreeMap::new();
    let mut previous: BTreeMap<String, crate::end_users::SyncPosition> = BTreeMap::new();
    for (addr, object) in synced {
        let k = kind(&object.kind).expect("synced kinds are registered");
        let tenant = (k.tenant_of)(addr, object);
        if object.kind == USER_SYNC {
            if let Some(p) = crate::end_users::SyncPosition::from_attributes(&object.attributes) {
                previous.insert(tenant, p);
            }
        } else {
            by_tenant
                .entry(tenant)
                .or_default()
                .insert(addr.clone(), *object);
        }
    }
    let tenants: BTreeSet<String> = input
        .desired
        .end_user_syncs
        .keys()
        .filter(|t| input.options.in_scope(t))
        .cloned()
        .chain(by_tenant.keys().cloned())
        .collect();
    let options = ContactOptions {
        allow_mass_removal: input.options.allow_mass_removal,
        now: input
            .now
            .round(jiff::Unit::Second)
            .unwrap_or(input.now)
            .to_string(),
    };
    let empty = BTreeMap::new();
    let mut positions = Vec::new();
    for tenant in tenants {
        let stored = by_tenant.get(&tenant).unwrap_or(&empty);
        let sync = input.desired.end_user_syncs.get(&tenant);
        let read = match sync {
            // Never archive what could not be seen: a tenant whose users were not read keeps
            // its contacts as they are (moved with a renamed tenant, nothing else).
            Some(_) => match readable(
                input.live,
                input.options.offline,
                &tenant,
                contact_kind,
                not_read,
            )
            .and_then(|dir| dir.users.as_deref())
            {
                Some(read) => Some(read),
                None => {
                    for (addr, object) in stored {
                        if let Some(from) = moved_from.get(addr) {
                            actions.push(state_only_move(addr, from, object, contact_kind));
                        }
                    }
                    continue;
                }
            },
            None => None,
        };
        let planned = plan_tenant_contacts(
            &tenant,
            sync,
            read,
            stored,
            moved_from,
            previous.get(&tenant),
            &options,
        );
        actions.extend(planned.actions);
        if let Some(position) = planned.position {
            positions.push(super::SyncPositionUpdate { tenant, position });
        }
    }
    positions
}

/// An object of a kind that cannot be planned in this run (Entra, or its source, not read)
/// whose tenant was renamed: it moves in state with its tenant, unchanged and not compared, so
/// it is never left behind under the old name (later plans no longer see the rename). Moving
/// changes nothing in Entra: the Microsoft tenant and the object are the same.
fn state_only_move(
    address: &str,
    from: &str,
    object: &StateObject,
    k: &crate::resources::ResourceKind,
) -> Action {
    let old_tenant = (k.tenant_of)(from, object);
    let new_tenant = crate::resources::split_address(address)
        .and_then(|(_, key)| key.split('.').next())
        .unwrap_or(&old_tenant)
        .to_string();
    let mut moved = object.clone();
    (k.rename_tenant_reference)(&mut moved, &old_tenant, &new_tenant);
    Action {
        address: address.to_string(),
        kind: object.kind.clone(),
        tenant: new_tenant,
        op: Op::Update,
        reason: Some(Reason::RenamedInManifests),
        moved_from: Some(from.to_string()),
        changes: diff(&object.attributes, &moved.attributes),
        before: Some(object.attributes.clone()),
        after: Some(moved.attributes),
        blocked: None,
        warnings: Vec::new(),
        live_ids: None,
        note: Some(
            "moved in state with its tenant; Entra was not read, so it is not compared".into(),
        ),
    }
}

/// The address of a planned, not deleted, GDAP relationship with the same relationship id.
fn kept_relationship(
    actions: &[Action],
    kind: &str,
    live_ids: Option<&crate::state::Ids>,
) -> Option<String> {
    if kind != crate::resources::gdap_relationship::KIND.name {
        return None;
    }
    // A delete ends its relationship and the one it replaced: neither may be one another
    // planned address keeps (as its relationship or the one it replaces).
    let both = |ids: &crate::state::Ids| -> Vec<String> {
        ["relationshipId", "previousRelationshipId"]
            .iter()
            .filter_map(|k| ids.get(*k).filter(|id| !id.is_empty()).cloned())
            .collect()
    };
    let ended = both(live_ids?);
    actions
        .iter()
        .find(|a| {
            a.kind == kind
                && a.op != Op::Delete
                && a.live_ids
                    .as_ref()
                    .is_some_and(|i| both(i).iter().any(|id| ended.contains(id)))
        })
        .map(|a| a.address.clone())
}

/// A `GdapRelationship` document renamed (its `name`, not its display name): the stored
/// relationship of the same tenant with the same display name, whose address no manifest
/// declares any more, is the same relationship, so its state moves to the new address.
/// Planned as an adopt at the new address and a delete at the old one, `--allow-delete`
/// would terminate the very relationship just adopted.
fn gdap_renames(
    desired: &[DesiredObject],
    desired_addresses: &BTreeSet<&str>,
    stored: &mut BTreeMap<String, &StateObject>,
    moved_from: &mut BTreeMap<String, String>,
) {
    let gdap = crate::resources::gdap_relationship::KIND;
    let display_name = |attributes: &Attributes| {
        crate::resources::attr_str(attributes, "displayName")
            .trim()
            .to_lowercase()
    };
    for d in desired.iter().filter(|d| d.kind == gdap.name) {
        if stored.contains_key(&d.address) {
            continue;
        }
        let name = display_name(&d.attributes);
        let old = stored
            .iter()
            .find(|(a, o)| {
                o.kind == gdap.name
                    && !desired_addresses.contains(a.as_str())
                    && (gdap.tenant_of)(a, o) == d.tenant
                    && display_name(&o.attributes) == name
            })
            .map(|(a, _)| a.clone());
        if let Some(old) = old {
            move_object(stored, moved_from, &old, &d.address);
        }
    }
}

pub(super) fn move_object(
    stored: &mut BTreeMap<String, &StateObject>,
    moved_from: &mut BTreeMap<String, String>,
    old: &str,
    new: &str,
) {
    if let Some(object) = stored.remove(old) {
        stored.insert(new.to_string(), object);
        moved_from.insert(new.to_string(), old.to_string());
    }
}
