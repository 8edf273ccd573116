//! `EndUserSync` documents resolved per tenant: targets, organizations the routes name (each
//! must be one of that tenant's), a default organization for users no route takes, one sync
//! per tenant, and the rules turned into [`crate::end_users::SyncRules`].
//!
//! Organizations are not kept in memory (a large fleet has many): the targets are resolved
//! before organizations are added, and only what the syncs need of them is noted as each is
//! added (the tenant of every organization a sync names, and each synced tenant's count).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::resolve::Resolver;
use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::end_users::{
    Condition, ContactField, GroupRef, Pattern, Route, SyncRules, TenantSync, UserProperty,
    UserRule,
};
use crate::manifest::{EndUserSyncDoc, UserRuleDoc};
use crate::source::{Loc, Located};

/// Syncs between pass one and the end of pass two.
#[derive(Default)]
pub(super) struct PendingSyncs {
    docs: Vec<EndUserSyncDoc>,
    /// Each doc's tenants (with the location that selected each), once resolved.
    targets: Vec<Vec<(String, Loc)>>,
    /// The tenant of each organization a sync names (`None`: not seen yet).
    named: HashMap<String, Option<String>>,
    /// Per synced tenant: its organizations' names.
    tenant_organizations: HashMap<String, Vec<String>>,
}

impl PendingSyncs {
    pub(super) fn take(&mut self, doc: EndUserSyncDoc) {
        self.docs.push(doc);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

impl Resolver {
    /// Resolves each sync's targets (every tenant is known by now) and what it will need to
    /// know of organizations as they are added.
    pub(super) fn resolve_sync_targets(&mut self) {
        let docs = std::mem::take(&mut self.syncs.docs);
        let mut targets = Vec::with_capacity(docs.len());
        for doc in &docs {
            let (tenants, _) = self.resolve_targets(&doc.tenants, "end-user sync", true);
            for (tenant, _) in &tenants {
                self.syncs
                    .tenant_organizations
                    .entry(tenant.clone())
                    .or_default();
            }
            targets.push(tenants);
            let names = doc
                .routes
                .iter()
                .map(|r| &r.organization)
                .chain(&doc.default_organization);
            for name in names {
                self.syncs.named.insert(name.value.clone(), None);
            }
        }
        self.syncs.docs = docs;
        self.syncs.targets = targets;
    }

    /// Notes an organization added under `tenant`, where a sync needs it.
    pub(super) fn note_organization_for_syncs(&mut self, name: &str, tenant: &str) {
        if let Some(entry) = self.syncs.named.get_mut(name) {
            *entry = Some(tenant.to_string());
        }
        if let Some(names) = self.syncs.tenant_organizations.get_mut(tenant) {
            names.push(name.to_string());
        }
    }

    /// Checks every sync against the organizations and puts one per tenant in the model.
    pub(super) fn finish_syncs(&mut self) {
        let docs = std::mem::take(&mut self.syncs.docs);
        let targets = std::mem::take(&mut self.syncs.targets);
        let mut names: HashMap<super::unique::Key, Loc> = HashMap::new();
        let mut claimed: BTreeMap<String, Loc> = BTreeMap::new();
        for (doc, tenants) in docs.into_iter().zip(targets) {
            if !super::unique::check_unique(&mut self.diags, &mut names, "EndUserSync", &doc.name) {
                continue;
            }
            let rules = Arc::new(rules_of(&doc));
            for (tenant, at) in tenants {
                if let Some(first) = claimed.get(&tenant) {
                    self.diags.push(
                        Diagnostic::error(
                            Code::DuplicateSync,
                            at,
                            format!("tenant `{tenant}` already has an end-user sync"),
                        )
                        .with_label("second sync for this tenant")
                        .with_secondary(*first, "the first one targets it here")
                        .with_help("a tenant's users are synced by one EndUserSync: merge the rules, or narrow `tenants`"),
                    );
                    continue;
                }
                claimed.insert(tenant.clone(), at);
                if let Some(sync) = self.tenant_sync(&doc, &tenant, &rules) {
                    self.model.end_user_syncs.insert(tenant, sync);
                }
            }
        }
    }

    /// `doc` for one of its tenants: each organization it names must be that tenant's, and a
    /// user no route takes must have somewhere to go.
    fn tenant_sync(
        &mut self,
        doc: &EndUserSyncDoc,
        tenant: &str,
        rules: &Arc<SyncRules>,
    ) -> Option<TenantSync> {
        let mut ok = true;
        let named = doc
            .routes
            .iter()
            .map(|r| &r.organization)
            .chain(&doc.default_organization);
        for name in named {
            ok &= self.check_organization_of(name, tenant);
        }
        let organizations = self
            .syncs
            .tenant_organizations
            .get(tenant)
            .cloned()
            .unwrap_or_default();
        let count = organizations.len();
        let catch_all = doc.routes.iter().any(|r| r.when.is_empty());
        let default_organization = match &doc.default_organization {
            Some(name) => Some(name.value.clone()),
            None if count == 1 => organizations.into_iter().next(),
            None if catch_all => None,
            None => {
                let (message, help) = if count == 0 {
                    (
                        format!("tenant `{tenant}` has no organization for its end users"),
                        format!("declare an Organization with `tenant: {tenant}`"),
                    )
                } else {
                    (
                        format!(
                            "tenant `{tenant}` has {count} organizations and users no route matches have none to go to"
                        ),
                        "add `defaultOrganization:`, or a last route without conditions"
                            .to_string(),
                    )
                };
                self.diags.push(
                    Diagnostic::error(Code::UnroutedUsers, doc.name.loc, message)
                        .with_label("no default organization")
                        .with_help(help),
                );
                ok = false;
                None
            }
        };
        ok.then(|| TenantSync {
            rules: Arc::clone(rules),
            default_organization,
        })
    }

    fn check_organization_of(&mut self, name: &Located<String>, tenant: &str) -> bool {
        match self.syncs.named.get(&name.value) {
            Some(Some(t)) if t == tenant => true,
            Some(Some(other)) => {
                let other = other.clone();
                self.diags.push(
                    Diagnostic::error(
                        Code::OrganizationNotInTenant,
                        name.loc,
                        format!(
                            "organization `{}` belongs to tenant `{other}`, not to `{tenant}` whose users this routes",
                            name.value
                        ),
                    )
                    .with_label("another tenant's organization")
                    .with_help("route a tenant's users to its own organizations; a selector's routes must name organizations every selected tenant has"),
                );
                false
            }
            _ => {
                let known = self.syncs.tenant_organizations.get(tenant);
                let known = known
                    .iter()
                    .flat_map(|names| names.iter().map(String::as_str));
                let help = did_you_mean(&nearest(&name.value, known)).unwrap_or_else(|| {
                    format!("declare it with `kind: Organization` and `tenant: {tenant}`")
                });
                self.diags.push(
                    Diagnostic::error(
                        Code::UnknownOrganization,
                        name.loc,
                        format!("unknown organization `{}`", name.value),
                    )
                    .with_label("no Organization has this name")
                    .with_help(help),
                );
                false
            }
        }
    }
}

/// The rules a document declares, with the defaults it leaves out.
fn rules_of(doc: &EndUserSyncDoc) -> SyncRules {
    let include = match &doc.include {
        Some(rules) => rules.iter().map(rule_of).collect(),
        None => vec![UserRule {
            conditions: vec![Condition::UserType(vec!["Member".into()])],
        }],
    };
    let mut fields = ContactField::defaults();
    for (field, sources) in doc.fields.iter().flatten() {
        let Some(field) = ContactField::parse(&field.value) else {
            continue;
        };
        fields.retain(|(f, _)| *f != field);
        if let Some(sources) = sources {
            let sources: Vec<UserProperty> = sources
                .iter()
                .filter_map(|s| UserProperty::parse(&s.value))
                .collect();
            fields.push((field, sources));
        }
    }
    fields.sort_by_key(|(f, _)| *f);
    let mut group_sources = std::collections::BTreeMap::new();
    let rule_docs = doc
        .include
        .iter()
        .flatten()
        .chain(&doc.exclude)
        .chain(doc.routes.iter().map(|r| &r.when));
    for rule in rule_docs {
        for (group, at) in rule.group.iter().zip(&rule.group_at) {
            group_sources
                .entry(GroupRef::parse(&group.value))
                .or_insert_with(|| at.clone());
        }
    }
    SyncRules {
        group_sources,
        name: doc.name.value.clone(),
        include,
        exclude: doc.exclude.iter().map(rule_of).collect(),
        keep_disabled: doc
            .disabled_users
            .as_ref()
            .is_some_and(|d| d.value == "keep"),
        routes: doc
            .routes
            .iter()
            .map(|r| Route {
                rule: rule_of(&r.when),
                organization: r.organization.value.clone(),
            })
            .collect(),
        fields,
    }
}

fn rule_of(doc: &UserRuleDoc) -> UserRule {
    let patterns = |values: &[Located<String>]| -> Vec<Pattern> {
        values.iter().map(|v| Pattern::new(&v.value)).collect()
    };
    let mut conditions = Vec::new();
    if !doc.user_type.is_empty() {
        conditions.push(Condition::UserType(
            doc.user_type
                .iter()
                .map(|t| {
                    if t.value.eq_ignore_ascii_case("guest") {
                        "Guest".to_string()
                    } else {
                        "Member".to_string()
                    }
                })
                .collect(),
        ));
    }
    if let Some(enabled) = &doc.account_enabled {
        conditions.push(Condition::AccountEnabled(enabled.value));
    }
    for (property, values) in [
        (UserProperty::Department, &doc.department),
        (UserProperty::OfficeLocation, &doc.office_location),
        (UserProperty::CompanyName, &doc.company_name),
        (UserProperty::JobTitle, &doc.job_title),
    ] {
        if !values.is_empty() {
            conditions.push(Condition::Property(property, patterns(values)));
        }
    }
    if !doc.domain.is_empty() {
        conditions.push(Condition::Domain(patterns(&doc.domain)));
    }
    if !doc.group.is_empty() {
        conditions.push(Condition::Group(
            doc.group
                .iter()
                .map(|g| GroupRef::parse(&g.value))
                .collect(),
        ));
    }
    UserRule { conditions }
}
