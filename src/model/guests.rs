//! Guests: one GuestUser per person (unique name and email), and references to guests by
//! name or email.

use super::resolve::Resolver;
use super::unique::check_unique;
use super::{DEFAULT_REDIRECT_URL, Guest, Invitation};
use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::GuestUserDoc;
use crate::source::Located;

impl Resolver {
    pub(super) fn add_guest(&mut self, doc: &GuestUserDoc) {
        if !check_unique(
            &mut self.diags,
            &mut self.guest_locs,
            "GuestUser",
            &doc.name,
        ) {
            return;
        }
        let email_key = doc.email.value.to_lowercase();
        if let Some((first, first_loc)) = self.guest_by_email.get(&email_key) {
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
                .with_secondary(*first_loc, format!("`{first}` uses it here"))
                .with_help("one person is one GuestUser; list all their tenants in one document"),
            );
            return;
        }
        self.guest_by_email
            .insert(email_key, (doc.name.value.clone(), doc.email.loc));
        let from = format!("guest `{}`", doc.name.value);
        let (targets, ok) = self.resolve_targets(&doc.tenants, &from, true);
        if !ok {
            self.guests_with_errors.insert(doc.name.value.clone());
        }
        let invitation = doc.invitation.as_ref();
        self.model.guests.insert(
            doc.name.value.clone(),
            Guest {
                name: doc.name.value.clone(),
                email: doc.email.value.clone(),
                display_name: doc
                    .display_name
                    .as_ref()
                    .map_or_else(|| doc.email.value.clone(), |d| d.value.clone()),
                tenants: targets.into_iter().map(|(n, _)| n).collect(),
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
        );
    }

    pub(super) fn resolve_guest(&mut self, reference: &Located<String>) -> Option<String> {
        if self.model.guests.contains_key(&reference.value) {
            return Some(reference.value.clone());
        }
        if let Some((name, _)) = self.guest_by_email.get(&reference.value.to_lowercase()) {
            return Some(name.clone());
        }
        let candidates: Vec<&str> = self
            .model
            .guests
            .values()
            .flat_map(|g| [g.name.as_str(), g.email.as_str()])
            .collect();
        let suggestions = nearest(&reference.value, candidates);
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
        None
    }
}
