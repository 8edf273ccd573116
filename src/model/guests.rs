//! Guests: one GuestUser per person (unique name and email), and references to guests by
//! name or email. Pass one spills each guest and its keys; pass two checks names and emails
//! a partition of keys at a time ([`Partitions`]), resolves the guests' tenants, and writes
//! what role assignments need of each guest ([`GuestFacts`]) for them to look up the same
//! way. Nothing here holds every guest.

use serde::{Deserialize, Serialize};

use super::keys::{FactsKeys, GuestKeys, Partitions};
use super::resolve::{PendingGuest, PendingTargets, Resolver};
use super::spill::Spill;
use super::unique::{duplicate, key};
use super::{DEFAULT_REDIRECT_URL, DesiredModel, Guest, Invitation, TenantSet};
use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::GuestUserDoc;
use crate::source::{Loc, Located};

/// What a role assignment needs of the guest it names.
#[derive(Serialize, Deserialize)]
pub(super) struct GuestFacts {
    pub name: String,
    /// Its tenants as positions in [`GuestTable::tenant_names`] (sorted, as names are).
    pub tenants: Vec<u32>,
    pub loc: Loc,
    /// Its document or its targets had problems: its role assignments skip follow-on checks.
    pub errors: bool,
}

/// What pass two learns of each guest before resolving it, by its position.
#[derive(Clone, Copy, Default)]
pub(super) struct GuestVerdict {
    /// A later definition of a name: not in the model.
    pub duplicate: bool,
    /// Its email is an earlier guest's: its name is taken, but it is not in the model.
    pub email_taken: bool,
    pub errors: bool,
}

#[derive(Default)]
pub(super) struct GuestTable {
    /// Every tenant name, sorted: guests' tenants are positions in it.
    pub tenant_names: Vec<String>,
    /// Every guest's name and email, gathered on the first unknown reference (suggestions).
    candidates: Option<Vec<String>>,
}

impl GuestTable {
    pub fn index_tenants(&mut self, model: &DesiredModel) {
        self.tenant_names = model.tenants.keys().cloned().collect();
    }

    fn tenant_id(&self, name: &str) -> Option<u32> {
        self.tenant_names
            .binary_search_by(|t| t.as_str().cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    pub fn tenants_of(&self, facts: &GuestFacts) -> TenantSet {
        facts
            .tenants
            .iter()
            .map(|&i| self.tenant_names[i as usize].clone())
            .collect()
    }

    pub fn is_invited(&self, facts: &GuestFacts, tenant: &str) -> bool {
        self.tenant_id(tenant)
            .is_some_and(|id| facts.tenants.binary_search(&id).is_ok())
    }
}

/// The JSON line at `offset` of a spill.
pub(super) fn read_line<T: serde::de::DeserializeOwned>(
    spill: &Spill,
    offset: u64,
) -> std::io::Result<T> {
    let mut end = offset;
    let mut line = Vec::new();
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

/// Pass two's spills of guests: the pending records, their keys, and once resolved, their
/// facts and the facts' keys.
pub(super) struct GuestSpills {
    pub pending: Spill,
    pub keys: Spill,
    pub facts: Spill,
    pub facts_keys: Spill,
}

impl Resolver {
    /// Pass one: everything a guest document says, spilled with its keys.
    pub(super) fn take_guest(&mut self, doc: &GuestUserDoc, clean: bool) {
        let invitation = doc.invitation.as_ref();
        let pending = PendingGuest {
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
            name_loc: doc.name.loc,
            targets: PendingTargets::of(&doc.tenants),
        };
        let line = serde_json::to_vec(&pending).expect("a pending guest serializes");
        let written = self.pending_guests.append(&line).and_then(|offset| {
            self.guest_keys.append_raw(
                &GuestKeys {
                    name: key(&doc.name.value),
                    email: key(&doc.email.value.to_lowercase()),
                    name_loc: doc.name.loc,
                    email_loc: doc.email.loc,
                    pending: offset,
                    clean,
                }
                .encode(),
            )
        });
        if let Err(e) = written {
            self.fail(e);
        }
    }

    /// Pass two, before resolving: which guests are duplicates (by name, then by email among
    /// the rest), one partition of keys at a time, reporting each against the first.
    pub(super) fn judge_guests(
        &mut self,
        spills: &GuestSpills,
    ) -> std::io::Result<Vec<GuestVerdict>> {
        let count = (spills.keys.len() / GuestKeys::SIZE as u64) as usize;
        let mut verdicts = vec![GuestVerdict::default(); count];
        let partitions = Partitions::for_count(count);
        for part in partitions.iter() {
            let mut first: std::collections::HashMap<super::unique::Key, (usize, Loc)> =
                std::collections::HashMap::new();
            spills.keys.for_each_record(GuestKeys::SIZE, |seq, bytes| {
                let g = GuestKeys::decode(bytes);
                if partitions.of(g.name) != part {
                    return Ok(());
                }
                match first.get(&g.name) {
                    Some(&(first_seq, first_loc)) => {
                        let pending: PendingGuest = read_line(&spills.pending, g.pending)?;
                        let name = Located::new(pending.guest.name, g.name_loc);
                        self.diags.push(duplicate("GuestUser", &name, first_loc));
                        verdicts[seq].duplicate = true;
                        if !g.clean {
                            verdicts[first_seq].errors = true;
                        }
                    }
                    None => {
                        first.insert(g.name, (seq, g.name_loc));
                        if !g.clean {
                            verdicts[seq].errors = true;
                        }
                    }
                }
                Ok(())
            })?;
        }
        for part in partitions.iter() {
            let mut first: std::collections::HashMap<super::unique::Key, (Loc, u64)> =
                std::collections::HashMap::new();
            spills.keys.for_each_record(GuestKeys::SIZE, |seq, bytes| {
                let g = GuestKeys::decode(bytes);
                if verdicts[seq].duplicate || partitions.of(g.email) != part {
                    return Ok(());
                }
                let Some(&(first_loc, first_pending)) = first.get(&g.email) else {
                    first.insert(g.email, (g.email_loc, g.pending));
                    return Ok(());
                };
                let earlier: PendingGuest = read_line(&spills.pending, first_pending)?;
                let this: PendingGuest = read_line(&spills.pending, g.pending)?;
                let first_name = earlier.guest.name;
                self.diags.push(
                    Diagnostic::error(
                        Code::DuplicateEmail,
                        g.email_loc,
                        format!(
                            "guests `{first_name}` and `{}` have the same email {}",
                            this.guest.name, this.guest.email
                        ),
                    )
                    .with_label("same email as another GuestUser")
                    .with_secondary(first_loc, format!("`{first_name}` uses it here"))
                    .with_help(
                        "one person is one GuestUser; list all their tenants in one document",
                    ),
                );
                verdicts[seq].email_taken = true;
                Ok(())
            })?;
        }
        Ok(verdicts)
    }

    /// Pass two: resolves a guest's tenants, stores it, and writes its facts.
    pub(super) fn add_guest(
        &mut self,
        pending: PendingGuest,
        verdict: GuestVerdict,
        facts: &mut Spill,
        facts_keys: &mut Spill,
    ) -> std::io::Result<()> {
        let PendingGuest {
            mut guest,
            name_loc,
            targets,
        } = pending;
        let from = format!("guest `{}`", guest.name);
        let (targets, ok) = self.resolve_targets(&targets.into_targets(), &from, true);
        guest.tenants = targets.into_iter().map(|(n, _)| n).collect();
        let line = serde_json::to_vec(&GuestFacts {
            name: guest.name.clone(),
            tenants: guest
                .tenants
                .iter()
                .filter_map(|t| self.guests.tenant_id(t))
                .collect(),
            loc: name_loc,
            errors: verdict.errors || !ok,
        })
        .expect("guest facts serialize");
        let offset = facts.append(&line)?;
        facts_keys.append_raw(
            &FactsKeys {
                name: key(&guest.name),
                email: key(&guest.email.to_lowercase()),
                facts: offset,
            }
            .encode(),
        )?;
        self.objects.add_guest(guest)
    }

    /// "Unknown guest", with the nearest names and emails (read from the guest spill once).
    pub(super) fn unknown_guest(
        &mut self,
        reference: &Located<String>,
        pending: &Spill,
    ) -> std::io::Result<()> {
        if self.guests.candidates.is_none() {
            let mut candidates = Vec::new();
            pending.for_each_line(|_, line| {
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
        Ok(())
    }
}
