//! How the plan uses the live snapshot beyond the diff: whether a tenant's directory can be
//! planned at all (`readable`), replication windows, and role assignments held by managed
//! guests that tenantform does not own.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, PlanOptions, TenantNotRead, Unmanaged};
use crate::live::{LiveSnapshot, LiveTenant, source};
use crate::outcome::{Cause, Failure};
use crate::resources::ResourceKind;
use crate::state::StateObject;

/// Role assignments in Entra held by guests tenantform manages, that tenantform neither
/// wants nor owns: reported, never deleted.
pub(super) fn unowned_role_assignments(
    actions: &[Action],
    live: Option<&LiveSnapshot>,
) -> Vec<Unmanaged> {
    let Some(live) = live else { return Vec::new() };
    let catalog = crate::roles::RoleCatalog::builtin();
    let mut notes = Vec::new();
    // Owned ids per tenant, gathered in one pass over the actions.
    let mut managed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut owned: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut gdap_owned: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for a in actions {
        let ids = a.live_ids.as_ref();
        match a.kind.as_str() {
            "guest" => {
                if let Some(id) = ids.and_then(|i| i.get("objectId")) {
                    managed
                        .entry(a.tenant.as_str())
                        .or_default()
                        .insert(id.to_lowercase());
                }
            }
            "directory_role" => {
                if let Some(id) = ids.and_then(|i| i.get("assignmentId")) {
                    owned
                        .entry(a.tenant.as_str())
                        .or_default()
                        .insert(id.clone());
                }
            }
            "gdap_relationship" => {
                for key in ["relationshipId", "previousRelationshipId"] {
                    if let Some(id) = ids.and_then(|i| i.get(key)) {
                        gdap_owned
                            .entry(a.tenant.as_str())
                            .or_default()
                            .insert(id.clone());
                    }
                }
            }
            _ => {}
        }
    }
    // GDAP relationships with a tenant that no manifest declares (and state does not
    // record): reported as adoptable, never ended.
    for (tenant, status) in &live.tenants {
        let LiveTenant::Read(dir) = status else {
            continue;
        };
        if !dir.is_read(source::GDAP) {
            continue;
        }
        let owned = gdap_owned.get(tenant.as_str());
        for r in &dir.gdap_relationships {
            if crate::gdap::status::is_ended(&r.status) || owned.is_some_and(|o| o.contains(&r.id))
            {
                continue;
            }
            let roles: Vec<&str> = r.roles.iter().map(|id| catalog.name_or_id(id)).collect();
            notes.push(Unmanaged {
                tenant: tenant.clone(),
                id: r.id.clone(),
                description: format!(
                    "GDAP relationship \"{}\" ({}; {}) is declared by no manifest: declare it as a GdapRelationship with this display name to adopt it (`tenantform export` writes one)",
                    r.display_name,
                    r.status,
                    roles.join(", ")
                ),
            });
        }
    }
    let empty = BTreeSet::new();
    for (tenant, status) in &live.tenants {
        let LiveTenant::Read(dir) = status else {
            continue;
        };
        if !dir.is_read(source::ROLE_ASSIGNMENTS) {
            continue;
        }
        let managed = managed.get(tenant.as_str()).unwrap_or(&empty);
        let owned = owned.get(tenant.as_str()).unwrap_or(&empty);
        for ra in &dir.role_assignments {
            if !managed.contains(&ra.principal_id) || owned.contains(&ra.id) {
                continue;
            }
            let role = catalog
                .by_template_id(&ra.role_definition_id)
                .map_or(ra.role_definition_id.as_str(), |r| r.name);
            let who = dir
                .guest_by_id(&ra.principal_id)
                .and_then(|g| g.mail.clone())
                .unwrap_or_else(|| ra.principal_id.clone());
            notes.push(Unmanaged {
                tenant: tenant.clone(),
                id: ra.id.clone(),
                description: format!(
                    "{who} also holds {role} (scope {}), not managed by tenantform: reported, not changed",
                    ra.directory_scope_id
                ),
            });
        }
    }
    notes
}

/// Tenants (or sources of a tenant) whose Entra objects could not be planned, by (tenant,
/// source name; empty for the whole tenant).
pub(super) type NotRead = BTreeMap<(String, String), TenantNotRead>;

/// The live directory of `tenant` for objects of `kind`, or why they cannot be planned there:
/// the tenant was not read, or a source the kind needs was not (each recorded once, with the
/// kinds it kept from being planned).
pub(super) fn readable<'a>(
    live: Option<&'a LiveSnapshot>,
    offline: bool,
    tenant: &str,
    kind: &ResourceKind,
    not_read: &mut NotRead,
) -> Option<&'a crate::live::LiveDirectory> {
    let mut record = |source: &str, failure: Failure| {
        let entry = not_read
            .entry((tenant.to_string(), source.to_string()))
            .or_insert_with(|| TenantNotRead {
                tenant: tenant.to_string(),
                failure,
                kinds: Vec::new(),
            });
        if !entry.kinds.iter().any(|k| k == kind.name) {
            entry.kinds.push(kind.name.to_string());
        }
    };
    let failure = match live.map(|l| l.tenants.get(tenant)) {
        Some(Some(LiveTenant::Read(dir))) => {
            let sources = kind.sources();
            let mut complete = true;
            for source in sources {
                if let Some(mut failure) = dir.unread(source) {
                    failure.source.get_or_insert_with(|| source.to_string());
                    record(source, failure);
                    complete = false;
                }
            }
            return complete.then_some(dir);
        }
        Some(Some(LiveTenant::Failed(failure))) => failure.clone(),
        Some(None) => Failure::new(Cause::NotRead, "Entra was not read for this tenant"),
        None if offline => Failure::new(
            Cause::NotRead,
            "Entra was not read (--offline): guests and directory roles were not planned",
        ),
        None => Failure::new(
            Cause::NotRead,
            "Entra was not read (no Graph credentials: set AZURE_CLIENT_ID, AZURE_TENANT_ID and a credential, or use --sandbox): guests and directory roles were not planned",
        ),
    };
    record("", failure);
    None
}

/// Recorded so recently that Entra may not show it yet.
pub(super) fn replicating(
    object: &StateObject,
    options: &PlanOptions,
    now: jiff::Timestamp,
) -> bool {
    let Ok(applied) = object.applied_at.parse::<jiff::Timestamp>() else {
        return false;
    };
    // Times in state are rounded to the second, and clocks differ a little between runners:
    // an `appliedAt` slightly ahead of now is still recent.
    let age = now.duration_since(applied);
    options.replication_window_secs > 0
        && age > jiff::SignedDuration::from_secs(-60)
        && age < jiff::SignedDuration::from_secs(options.replication_window_secs as i64)
}

pub(super) fn pending_note(object: &StateObject, options: &PlanOptions) -> String {
    format!(
        "recorded {} and not visible in Entra yet (replication); counted missing {} s after that",
        object.applied_at, options.replication_window_secs
    )
}
