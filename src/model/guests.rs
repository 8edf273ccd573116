//! Guests: one GuestUser per person (unique name and email), and references to guests by
//! name or email. Pass one checks names and emails against compact keys and spills each
//! guest; pass two resolves its tenants. What role assignments need of a guest (its
//! tenants, whether it had errors, where it was defined) stays in a [`GuestTable`] of about
//! 60 bytes a guest, freed once resolution ends.

use std::collections::HashMap;

use super::resolve::{PendingGuest, PendingTargets, Resolver};
use super::spill::Spill;
use super::unique::{Key, NameLocs, check_unique_key, key};
use super::{DEFAULT_REDIRECT_URL, DesiredModel, Guest, Invitation, TenantSet};
use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::GuestUserDoc;
use crate::source::{Loc, Located};

/// What resolution keeps of a guest.
pub(super) struct GuestEntry {
    pub loc: Loc,
    /// Offset of its pending record in the guest spill.
    pub pending: u64,
    /// Its tenants as positions in [`GuestTable::tenant_names`] (sorted, as names are).
    pub tenants: Box<[u32]>,
    /// Its document or its targets had problems: its role assignments skip follow-on checks.
    pub errors: bool,
}

#[derive(Default)]
pub(super) struct GuestTable {
    pub by_name: HashMap<Key, GuestEntry>,
    /// Email (lowercase) -> the guest's name key and email location.
    pub by_email: HashMap<Key, (Key, Loc)>,
    /// Every tenant name, sorted: guests' tenants are positions in it.
    pub tenant_names: Vec<String>,
    /// Every guest's name and email, gathered on the first unknown reference (suggestions).
    candidates: Option<Vec<String>>,
}

impl GuestTable {
    pub fn set_pending(&mut self, name: &str, offset: u64) {
        if let Some(entry) = self.by_name.get_mut(&key(name)) {
            entry.pending = offset;
        }
    }

    pub fn index_tenants(&mut self, model: &DesiredModel) {
        self.tenant_names = model.tenants.keys().cloned().collect();
    }

    fn tenant_id(&self, name: &str) -> Option<u32> {
        self.tenant_names
            .binary_search_by(|t| t.as_str().cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    pub fn tenants_of(&self, entry: &GuestEntry) -> TenantSet {
        entry
            .tenants
            .iter()
            .map(|&i| self.tenant_names[i as usize].clone())
            .collect()
    }

    pub fn is_invited(&self, entry: &GuestEntry, tenant: &str) -> bool {
        self.tenant_id(tenant)
            .is_some_and(|id| entry.tenants.binary_search(&id).is_ok())
    }
}

/// The pending guest record at `offset` of the guest spill.
fn read_pending(spill: &Spill, offset: u64) -> std::io::Result<PendingGuest> {
    let mut end = offset;
    let mut line = Vec::new();
    // Records are short: read ahead a little until the newline.
    loop {
        let next = (end + 4096).min(spill.len());
        let bytes = spill.read(end, next)?;
        if let Some(newline) = bytes.iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&bytes[..newline]);
            break;
        }
        line.extend_from_slice(&bytes);
        if next == spill.len() {
            break;
        }
        end = next;
    }
    serde_json::from_slice(&line).map_err(std::io::Error::other)
}

impl Resolver {
    /// Pass one: checks the name and email are unique and returns what pass two needs.
    pub(super) fn take_guest(&mut self, doc: &GuestUserDoc, clean: bool) -> Option<PendingGuest> {
        let pending = self.check_guest(doc);
        if !clean && let Some(entry) = self.guests.by_name.get_mut(&key(&doc.name.value)) {
            entry.errors = true;
        }
        pending
    }

    fn check_guest(&mut self, doc: &GuestUserDoc) -> Option<PendingGuest> {
        if !check_unique_key(
            &mut self.diags,
            &mut self.guests.by_name,
            "GuestUser",
            &doc.name,
        ) {
            return None;
        }
        let name_key = key(&doc.name.value);
        let email_key = key(&doc.email.value.to_lowercase());
        if let Some(&(first_key, first_loc)) = self.guests.by_email.get(&email_key) {
            let first = self.guests.by_name[&first_key].pending;
            let first = match read_pending(&self.pending_guests, first) {
                Ok(pending) => pending.guest.name,
                Err(e) => {
                    self.fail(e);
                    return None;
                }
            };
            self.diags.push(
                Diagnostic::error(
                    Code::DuplicateEmail,
                    doc.email.loc,
                    format!(
                        "guests `{first}` and `{}` have the same email {}",
                        doc.name.value, doc.email.value
                    ),
                )
                .with_label("same email as another GuestUser")
                .with_secondary(first_loc, format!("`{first}` uses it here"))
                .with_help("one person is one GuestUser; list all their tenants in one document"),
            );
            // The name stays taken (it was unique), but the guest is not in the model.
            return None;
        }
        self.guests
            .by_email
            .insert(email_key, (name_key, doc.email.loc));
        let invitation = doc.invitation.as_ref();
        Some(PendingGuest {
            guest: Guest {
                name: doc.name.value.clone(),
                email: doc.email.value.clone(),
                display_name: doc
                    .display_name
                    .as_ref()
                    .map_or_else(|| doc.email.value.clone(), |d| d.value.clone()),
                tenants: TenantSet::default(),
                invitation: Invitation {
                    send_email: invitation
                        .and_then(|i| i.send_email.as_ref())
                        .is_none_or(|s| s.value),
                    redirect_url: invitation
                        .and_then(|i| i.redirect_url.as_ref())
                        .map_or_else(|| DEFAULT_REDIRECT_URL.to_string(), |u| u.value.clone()),
                    message: invitation
                        .and_then(|i| i.message.as_ref())
                        .map(|m| m.value.clone()),
                    message_language: invitation
                        .and_then(|i| i.message_language.as_ref())
                        .map(|m| m.value.clone()),
                },
            },
            targets: PendingTargets::of(&doc.tenants),
        })
    }

    /// Pass two: resolves the guest's tenants and stores it.
    pub(super) fn add_guest(&mut self, pending: PendingGuest) -> std::io::Result<()> {
        let PendingGuest { mut guest, targets } = pending;
        let from = format!("guest `{}`", guest.name);
        let (targets, ok) = self.resolve_targets(&targets.into_targets(), &from, true);
        guest.tenants = targets.into_iter().map(|(n, _)| n).collect();
        let ids: Box<[u32]> = guest
            .tenants
            .iter()
            .filter_map(|t| self.guests.tenant_id(t))
            .collect();
        if let Some(entry) = self.guests.by_name.get_mut(&key(&guest.name)) {
            entry.tenants = ids;
            entry.errors |= !ok;
        }
        self.objects.add_guest(guest)
    }

    /// The name of the guest `reference` names (by name or email), or an error diagnostic.
    pub(super) fn resolve_guest(
        &mut self,
        reference: &Located<String>,
        spill: &Spill,
    ) -> std::io::Result<Option<(String, Key)>> {
        let name_key = key(&reference.value);
        if self
            .guests
            .by_name
            .get(&name_key)
            .is_some_and(|e| e.pending != NOT_IN_MODEL)
        {
            return Ok(Some((reference.value.clone(), name_key)));
        }
        if let Some(&(name_key, _)) = self
            .guests
            .by_email
            .get(&key(&reference.value.to_lowercase()))
        {
            let pending = self.guests.by_name[&name_key].pending;
            return Ok(Some((read_pending(spill, pending)?.guest.name, name_key)));
        }
        if self.guests.candidates.is_none() {
            let mut candidates = Vec::new();
            spill.for_each_line(|_, line| {
                let pending: PendingGuest =
                    serde_json::from_slice(line).map_err(std::io::Error::other)?;
                candidates.push(pending.guest.name);
                candidates.push(pending.guest.email);
                Ok(())
            })?;
            self.guests.candidates = Some(candidates);
        }
        let candidates = self.guests.candidates.as_deref().unwrap_or_default();
        let suggestions = nearest(&reference.value, candidates.iter().map(String::as_str));
        self.diags.push(
            Diagnostic::error(
                Code::UnknownGuest,
                reference.loc,
                format!(
                    "role assignment refers to unknown guest `{}`",
                    reference.value
                ),
            )
            .with_label("no GuestUser has this name or email")
            .with_help(did_you_mean(&suggestions).unwrap_or_else(|| {
                "declare the person with `kind: GuestUser`, then refer to its `name` or `email`"
                    .to_string()
            })),
        );
        Ok(None)
    }
}

/// Where each guest name was first defined, for uniqueness checks.
impl NameLocs for HashMap<Key, GuestEntry> {
    fn first(&self, name: Key) -> Option<Loc> {
        self.get(&name).map(|e| e.loc)
    }
    fn insert_first(&mut self, name: Key, loc: Loc) {
        self.insert(
            name,
            GuestEntry {
                loc,
                pending: NOT_IN_MODEL,
                tenants: Box::default(),
                errors: false,
            },
        );
    }
}

/// The `pending` of a guest whose name is taken but which is not in the model (its email
/// was another guest's).
const NOT_IN_MODEL: u64 = u64::MAX;
