//! Tenants and organizations: explicit tenants, implicit ones (an Organization without
//! `tenant:`), references to tenants, and tenant targets (names or label selectors).

use super::resolve::Resolver;
use super::unique::{check_unique, key};
use super::{Organization, Tenant};
use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::{OrganizationDoc, TenantDoc, TenantTargets};
use crate::source::{Loc, Located};

impl Resolver {
    pub(super) fn add_tenant(&mut self, doc: &TenantDoc) {
        if !check_unique(&mut self.diags, &mut self.tenant_locs, "Tenant", &doc.name) {
            return;
        }
        let name = doc.name.value.clone();
        // Exactly as large as it needs to be: every tenant's labels are kept for the run.
        let mut labels = super::Labels::with_capacity(doc.labels.len());
        for (k, v) in &doc.labels {
            labels.insert(self.label_text(&k.value), self.label_text(&v.value));
        }
        self.new_tenants.insert(
            name.clone(),
            Tenant {
                display_name: doc
                    .display_name
                    .as_ref()
                    .map_or_else(|| name.clone(), |d| d.value.clone()),
                microsoft_tenant_id: doc
                    .microsoft_tenant_id
                    .as_ref()
                    .map(|id| id.value.to_lowercase()),
                labels,
                implicit: false,
                former_names: doc.former_names.iter().map(|n| n.value.clone()).collect(),
                name,
            },
        );
        if !doc.former_names.is_empty() {
            self.former_names
                .push(("Tenant", doc.name.value.clone(), doc.former_names.clone()));
        }
    }

    /// `text`, shared with every other label key or value that says the same.
    fn label_text(&mut self, text: &str) -> super::LabelText {
        if let Some(shared) = self.label_texts.get(text) {
            return shared.clone();
        }
        let shared: super::LabelText = text.into();
        self.label_texts.insert(shared.clone());
        shared
    }

    pub(super) fn add_implicit_tenant(&mut self, org: &OrganizationDoc) {
        if org.tenant.is_some() || self.org_locs.contains_key(&key(&org.name.value)) {
            return;
        }
        if let Some(&explicit) = self.tenant_locs.get(&key(&org.name.value)) {
            self.diags.push(
                Diagnostic::error(
                    Code::ImplicitTenantCollision,
                    org.name.loc,
                    format!(
                        "organization `{}` has no `tenant`, so it would get an implicit tenant `{}`, but a Tenant of that name already exists",
                        org.name.value, org.name.value
                    ),
                )
                .with_label("implicit tenant collides")
                .with_secondary(explicit, "explicit Tenant defined here")
                .with_help(format!(
                    "add `tenant: {}` to put the organization under the existing tenant, or rename one of them",
                    org.name.value
                )),
            );
            return;
        }
        // Remember the org's name location now so a duplicate org does not create two tenants.
        self.org_locs.insert(key(&org.name.value), org.name.loc);
        self.tenant_locs.insert(key(&org.name.value), org.name.loc);
        let display_name = org
            .display_name
            .as_ref()
            .map_or_else(|| org.name.value.clone(), |d| d.value.clone());
        self.new_tenants.insert(
            org.name.value.clone(),
            Tenant {
                name: org.name.value.clone(),
                display_name,
                microsoft_tenant_id: None,
                labels: super::Labels::new(),
                implicit: true,
                former_names: Vec::new(),
            },
        );
    }

    pub(super) fn add_organization(&mut self, org: &OrganizationDoc) {
        let is_first = match self.org_locs.get(&key(&org.name.value)) {
            // Implicit-tenant pass already registered this exact document.
            Some(loc) if *loc == org.name.loc => true,
            _ => check_unique(
                &mut self.diags,
                &mut self.org_locs,
                "Organization",
                &org.name,
            ),
        };
        if !is_first {
            return;
        }
        let tenant = match &org.tenant {
            None => {
                if !self
                    .model
                    .tenants
                    .get(&org.name.value)
                    .is_some_and(|t| t.implicit)
                {
                    return; // collision already reported
                }
                org.name.value.clone()
            }
            Some(reference) => {
                if !self.check_tenant_exists(reference, "organization") {
                    return;
                }
                reference.value.clone()
            }
        };
        self.organization_keys
            .insert(super::unique::key(&org.name.value));
        self.note_organization_for_syncs(&org.name.value, &tenant);
        let stored = self.objects.add_organization(Organization {
            name: org.name.value.clone(),
            display_name: org
                .display_name
                .as_ref()
                .map_or_else(|| org.name.value.clone(), |d| d.value.clone()),
            tenant,
            former_names: org.former_names.iter().map(|n| n.value.clone()).collect(),
        });
        if let Err(e) = stored {
            self.fail(e);
        }
        if !org.former_names.is_empty() {
            self.former_names.push((
                "Organization",
                org.name.value.clone(),
                org.former_names.clone(),
            ));
        }
    }

    pub(super) fn check_tenant_exists(&mut self, reference: &Located<String>, from: &str) -> bool {
        if self.model.tenants.contains_key(&reference.value) {
            return true;
        }
        let suggestions = nearest(
            &reference.value,
            self.model.tenants.keys().map(String::as_str),
        );
        self.diags.push(
            Diagnostic::error(
                Code::UnknownTenant,
                reference.loc,
                format!("{from} refers to unknown tenant `{}`", reference.value),
            )
            .with_label("no Tenant (or implicit tenant) has this name")
            .with_help(did_you_mean(&suggestions).unwrap_or_else(|| {
                "declare it with `kind: Tenant` or refer to an existing tenant's `name`".to_string()
            })),
        );
        false
    }

    /// Resolves targets to tenant names with the location that selected each. Tenants that need
    /// Entra (`need_mapped`) must have a `microsoftTenantId`; selectors skip those that do not.
    pub(super) fn resolve_targets(
        &mut self,
        targets: &TenantTargets,
        from: &str,
        need_mapped: bool,
    ) -> (Vec<(String, Loc)>, bool) {
        let mut out: Vec<(String, Loc)> = Vec::new();
        let mut ok = true;
        match targets {
            TenantTargets::Names(names) => {
                for name in names {
                    if !self.check_tenant_exists(name, from) {
                        ok = false;
                        continue;
                    }
                    if need_mapped
                        && self.model.tenants[&name.value]
                            .microsoft_tenant_id
                            .is_none()
                    {
                        ok = false;
                        let mut d = Diagnostic::error(
                            Code::TenantNotMapped,
                            name.loc,
                            format!("{from} targets tenant `{}`, which has no `microsoftTenantId`", name.value),
                        )
                        .with_label("not mapped to a Microsoft tenant")
                        .with_help("add `microsoftTenantId: <GUID>` to the Tenant, or remove it from this list");
                        if let Some(&loc) = self.tenant_locs.get(&key(&name.value)) {
                            d = d.with_secondary(loc, "tenant defined here");
                        }
                        self.diags.push(d);
                        continue;
                    }
                    if !out.iter().any(|(n, _)| *n == name.value) {
                        out.push((name.value.clone(), name.loc));
                    }
                }
            }
            TenantTargets::Selector { selector } => {
                for tenant in self.model.tenants.values() {
                    if (!need_mapped || tenant.microsoft_tenant_id.is_some())
                        && selector.value.matches(&tenant.labels)
                    {
                        out.push((tenant.name.clone(), selector.loc));
                    }
                }
                if out.is_empty() {
                    let mapped = if need_mapped { "mapped " } else { "" };
                    self.diags.push(
                        Diagnostic::warning(
                            Code::SelectorMatchesNothing,
                            selector.loc,
                            format!("{from}: selector `{}` matches no {mapped}tenant", selector.value),
                        )
                        .with_label("matches nothing")
                        .with_help("check the label keys and values on your Tenant documents; run with --strict to make this an error"),
                    );
                }
            }
        }
        (out, ok)
    }
}
