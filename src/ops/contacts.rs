//! Contacts as stored: the MSP-side records an `EndUserSync` keeps from each customer's Entra
//! users, listed a tenant at a time (a fleet can hold half a million of them, so one tenant's
//! worth is all that is ever in memory).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::diagnostic::{did_you_mean, nearest};
use crate::plan::contacts::{CONTACT, contact_text};
use crate::state::{Partition, StateError, StateObject, StateStore, partition_of};

/// Which contacts by their archive status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusFilter {
    /// Only contacts in use (the default: archived ones are history).
    #[default]
    Active,
    Archived,
    All,
}

impl StatusFilter {
    fn admits(self, archived: bool) -> bool {
        match self {
            StatusFilter::Active => !archived,
            StatusFilter::Archived => archived,
            StatusFilter::All => true,
        }
    }
}

/// What to list; empty name lists mean every tenant, every organization.
#[derive(Clone, Debug, Default)]
pub struct ContactQuery {
    pub tenants: Vec<String>,
    pub organizations: Vec<String>,
    pub status: StatusFilter,
}

/// One contact, flat, as every output shows it (`None` where the contact has no value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactRow {
    pub tenant: String,
    pub organization: Option<String>,
    /// The Entra user's object id (what the contact is keyed by).
    pub user_id: String,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office: Option<String>,
    pub company: Option<String>,
    pub user_principal_name: Option<String>,
    /// `active` or `archived`.
    pub status: &'static str,
    pub archived_at: Option<String>,
    pub archived_reason: Option<String>,
    /// The MSP record's id.
    pub record_id: Option<String>,
    /// The licences the user holds, as last read (`sync --licences-every`), `; `-separated;
    /// `None` when they were never read for the tenant.
    pub licences: Option<String>,
}

impl ContactRow {
    pub fn is_archived(&self) -> bool {
        self.status == "archived"
    }

    /// The order listings use: organization, name (ignoring case first), user id.
    fn sort_key(&self) -> (&str, String, &str, &str) {
        let name = self.name.as_deref().unwrap_or("");
        (
            self.organization.as_deref().unwrap_or(""),
            name.to_lowercase(),
            name,
            &self.user_id,
        )
    }
}

/// A stored contact as a row; `tenant` is the partition it was read from.
pub fn contact_row(tenant: &str, address: &str, object: &StateObject) -> ContactRow {
    let text =
        |field: &str| Some(contact_text(object, field).to_string()).filter(|s| !s.is_empty());
    let entra = object.attributes.get("entra");
    let entra_text = |field: &str| {
        entra
            .and_then(|e| e.get(field))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let archived = object.attributes.get("archived").filter(|v| !v.is_null());
    let archived_text = |field: &str| {
        archived
            .and_then(|a| a.get(field))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    // The address ends with the user id; `entra.id` is the same when present.
    let user_id = entra_text("id").unwrap_or_else(|| {
        address
            .strip_prefix(&format!("{CONTACT}.{tenant}."))
            .unwrap_or(address)
            .to_string()
    });
    ContactRow {
        tenant: tenant.to_string(),
        organization: text("organization"),
        user_id,
        name: text("name"),
        first_name: text("firstName"),
        last_name: text("lastName"),
        email: text("email"),
        phone: text("phone"),
        mobile: text("mobile"),
        job_title: text("jobTitle"),
        department: text("department"),
        office: text("office"),
        company: text("company"),
        user_principal_name: entra_text("userPrincipalName"),
        status: if archived.is_some() {
            "archived"
        } else {
            "active"
        },
        archived_at: archived_text("at"),
        archived_reason: archived_text("reason"),
        record_id: object.ids.get("record").cloned(),
        licences: None,
    }
}

/// The rows of one tenant's stored objects that `query` selects (contacts only), sorted.
pub fn tenant_rows<'a>(
    tenant: &str,
    objects: impl IntoIterator<Item = (&'a String, &'a StateObject)>,
    query: &ContactQuery,
) -> Vec<ContactRow> {
    let mut rows: Vec<ContactRow> = objects
        .into_iter()
        .filter(|(_, o)| o.kind == CONTACT)
        .map(|(address, object)| contact_row(tenant, address, object))
        .filter(|row| query.status.admits(row.is_archived()))
        .filter(|row| {
            query.organizations.is_empty()
                || row
                    .organization
                    .as_ref()
                    .is_some_and(|o| query.organizations.contains(o))
        })
        .collect();
    rows.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    rows
}

/// The organization of each active contact of `tenant`, by the Entra user id it is keyed by:
/// what licence counts per organization join on. One tenant's contacts at a time.
pub fn organizations_by_user(
    store: &dyn StateStore,
    tenant: &str,
) -> Result<std::collections::HashMap<String, String>, StateError> {
    let prefix = format!("{CONTACT}.");
    let state =
        store.load_partition_only(&Partition::tenant(tenant)?, &|a| a.starts_with(&prefix))?;
    Ok(
        tenant_rows(tenant, &state.objects, &ContactQuery::default())
            .into_iter()
            .filter_map(|row| Some((row.user_id.to_ascii_lowercase(), row.organization?)))
            .collect(),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("--tenant {name}: no tenant of that name in state{}", hint(suggestion))]
    UnknownTenant {
        name: String,
        suggestion: Option<String>,
    },
    #[error(
        "--organization {name}: no organization of that name in state{}",
        hint(suggestion)
    )]
    UnknownOrganization {
        name: String,
        suggestion: Option<String>,
    },
    #[error(transparent)]
    State(#[from] StateError),
    /// Writing the listing failed (a closed pipe, a full disk).
    #[error("cannot write the listing: {0}")]
    Output(#[source] std::io::Error),
}

fn hint(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default()
}

/// How many contacts were listed, from how many tenants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub contacts: usize,
    pub tenants: usize,
}

/// Tenant and organization names the catalog knows (names only: a large fleet's catalog is
/// streamed, never held).
#[derive(Default)]
struct Names {
    tenants: BTreeSet<String>,
    organizations: BTreeSet<String>,
}

impl Names {
    fn note(&mut self, address: &str, object: &StateObject) {
        match object.kind.as_str() {
            "tenant" => {
                if let Some(name) = address.strip_prefix("tenant.") {
                    self.tenants.insert(name.to_string());
                }
            }
            "organization" => {
                if let Some(name) = address.strip_prefix("organization.") {
                    self.organizations.insert(name.to_string());
                }
            }
            _ => {}
        }
    }

    fn check(&self, query: &ContactQuery) -> Result<(), ContactsError> {
        let suggest = |name: &str, known: &BTreeSet<String>| {
            did_you_mean(&nearest(name, known.iter().map(String::as_str)))
        };
        for name in &query.tenants {
            if !self.tenants.contains(name) {
                return Err(ContactsError::UnknownTenant {
                    name: name.clone(),
                    suggestion: suggest(name, &self.tenants),
                });
            }
        }
        for name in &query.organizations {
            if !self.organizations.contains(name) {
                return Err(ContactsError::UnknownOrganization {
                    name: name.clone(),
                    suggestion: suggest(name, &self.organizations),
                });
            }
        }
        Ok(())
    }
}

/// Lists the contacts `query` selects, tenant by tenant in name order: `each` gets every
/// tenant's rows (sorted, never empty) before the next tenant is read. Unknown tenant or
/// organization names are refused before anything is listed.
///
/// Each tenant's partition is read on its own, unless reading one partition means reading the
/// whole fleet (a single-file state not upgraded yet, or an interrupted whole-fleet apply to
/// replay): then the whole state is read once, as `plan` does.
pub fn list_contacts(
    store: &dyn StateStore,
    query: &ContactQuery,
    each: &mut dyn FnMut(&[ContactRow]) -> std::io::Result<()>,
) -> Result<Listed, ContactsError> {
    let mut listed = Listed::default();
    let mut emit = |rows: Vec<ContactRow>| -> Result<(), ContactsError> {
        if rows.is_empty() {
            return Ok(());
        }
        listed.contacts += rows.len();
        listed.tenants += 1;
        each(&rows).map_err(ContactsError::Output)
    };
    let mut names = Names::default();
    if store.partition_reads_whole_fleet()? {
        let whole = store.load()?;
        let mut by_tenant: std::collections::BTreeMap<String, Vec<(&String, &StateObject)>> =
            Default::default();
        for (address, object) in &whole.objects {
            names.note(address, object);
            if let Partition::Tenant(tenant) = partition_of(address, object) {
                names.tenants.insert(tenant.clone());
                by_tenant.entry(tenant).or_default().push((address, object));
            }
        }
        names.check(query)?;
        for (tenant, objects) in by_tenant {
            if selected(query, &tenant) {
                emit(with_licences(
                    store,
                    &tenant,
                    tenant_rows(&tenant, objects, query),
                )?)?;
            }
        }
        return Ok(listed);
    }
    store.load_partition_each(&Partition::Catalog, &mut |address, object| {
        names.note(&address, &object);
        Ok(())
    })?;
    let tenants = store.list_tenants()?;
    names.tenants.extend(tenants.iter().cloned());
    names.check(query)?;
    for tenant in tenants.iter().filter(|t| selected(query, t)) {
        let mut contacts: Vec<(String, StateObject)> = Vec::new();
        store.load_partition_each(&Partition::tenant(tenant)?, &mut |address, object| {
            if object.kind == CONTACT {
                contacts.push((address, object));
            }
            Ok(())
        })?;
        emit(with_licences(
            store,
            tenant,
            tenant_rows(tenant, contacts.iter().map(|(a, o)| (a, o)), query),
        )?)?;
    }
    Ok(listed)
}

/// Each row with the licences its user holds, from the tenant's licence holdings as last read
/// (`sync --licences-every`); rows stay without when they were never read.
fn with_licences(
    store: &dyn StateStore,
    tenant: &str,
    mut rows: Vec<ContactRow>,
) -> Result<Vec<ContactRow>, StateError> {
    if rows.is_empty() {
        return Ok(rows);
    }
    let Some(holdings) =
        store.read_observation(tenant, crate::ops::licence_holdings::LICENCE_HOLDINGS)?
    else {
        return Ok(rows);
    };
    for row in &mut rows {
        row.licences =
            Some(crate::licences::held_by(&holdings, &row.user_id.to_ascii_lowercase()).join("; "));
    }
    Ok(rows)
}

fn selected(query: &ContactQuery, tenant: &str) -> bool {
    query.tenants.is_empty() || query.tenants.iter().any(|t| t == tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Attributes, Source};
    use serde_json::json;

    fn contact(attributes: Value, record: &str) -> StateObject {
        let attributes: Attributes = attributes
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        StateObject {
            kind: CONTACT.into(),
            ids: [("record".to_string(), record.to_string())]
                .into_iter()
                .collect(),
            attributes,
            source: Source {
                digest: "sha256:00".into(),
                commit: None,
            },
            applied_at: "2026-11-20T09:00:00Z".into(),
        }
    }

    #[test]
    fn a_stored_contact_becomes_a_flat_row() {
        let object = contact(
            json!({
                "tenant": "foggy-it", "organization": "foggy-boston", "name": "Ada Lovelace",
                "email": "ada@foggyit.example", "phone": "+1 617 555 0101",
                "entra": {"id": "u1", "userPrincipalName": "ada@foggyit.example"},
                "archived": {"at": "2026-11-30T12:00:00Z", "reason": "user deleted in Entra"}
            }),
            "c1",
        );
        let row = contact_row("foggy-it", "contact.foggy-it.u1", &object);
        assert_eq!(row.user_id, "u1");
        assert_eq!(row.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(row.first_name, None);
        assert_eq!(
            row.user_principal_name.as_deref(),
            Some("ada@foggyit.example")
        );
        assert_eq!(row.status, "archived");
        assert_eq!(row.archived_at.as_deref(), Some("2026-11-30T12:00:00Z"));
        assert_eq!(
            row.archived_reason.as_deref(),
            Some("user deleted in Entra")
        );
        assert_eq!(row.record_id.as_deref(), Some("c1"));
    }

    #[test]
    fn rows_are_contacts_only_filtered_and_sorted_by_organization_name_and_id() {
        let objects: std::collections::BTreeMap<String, StateObject> = [
            (
                "contact.t.3",
                json!({"organization": "b", "name": "ada", "entra": {"id": "3"}}),
            ),
            (
                "contact.t.2",
                json!({"organization": "a", "name": "Zed", "entra": {"id": "2"}}),
            ),
            (
                "contact.t.1",
                json!({"organization": "a", "name": "bob", "entra": {"id": "1"}}),
            ),
            (
                "contact.t.4",
                json!({"organization": "a", "name": "Al", "archived": {"at": "x", "reason": "y"}}),
            ),
        ]
        .into_iter()
        .map(|(a, v)| (a.to_string(), contact(v, "r")))
        .chain([(
            "user_sync.t".to_string(),
            StateObject {
                kind: "user_sync".into(),
                ..contact(json!({}), "r")
            },
        )])
        .collect();
        let ids = |query: &ContactQuery| -> Vec<String> {
            tenant_rows("t", &objects, query)
                .into_iter()
                .map(|r| r.user_id)
                .collect()
        };
        assert_eq!(ids(&ContactQuery::default()), ["1", "2", "3"]);
        let all = ContactQuery {
            status: StatusFilter::All,
            ..Default::default()
        };
        assert_eq!(ids(&all), ["4", "1", "2", "3"]);
        let archived = ContactQuery {
            status: StatusFilter::Archived,
            ..Default::default()
        };
        assert_eq!(ids(&archived), ["4"]);
        let org_b = ContactQuery {
            organizations: vec!["b".into()],
            ..Default::default()
        };
        assert_eq!(ids(&org_b), ["3"]);
    }
}
