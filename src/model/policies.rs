//! `TenantPolicy` documents resolved per tenant: names unique, targets resolved (named tenants
//! must be mapped to a Microsoft tenant, since a policy is checked live; a selector that
//! matches nothing is a warning), and one policy per tenant.

use std::collections::{BTreeMap, HashMap};

use super::resolve::Resolver;
use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::TenantPolicyDoc;
use crate::source::Loc;

impl Resolver {
    /// Puts each tenant's policy in the model; every tenant is known by now.
    pub(super) fn finish_policies(&mut self, docs: Vec<TenantPolicyDoc>, clean: Vec<bool>) {
        let mut names: HashMap<super::unique::Key, Loc> = HashMap::new();
        let mut claimed: BTreeMap<String, Loc> = BTreeMap::new();
        for (doc, clean) in docs.into_iter().zip(clean) {
            if !super::unique::check_unique(&mut self.diags, &mut names, "TenantPolicy", &doc.name)
            {
                continue;
            }
            let (tenants, _) = self.resolve_targets(&doc.tenants, "tenant policy", true);
            let policy = doc.to_policy();
            for (tenant, at) in tenants {
                if let Some(first) = claimed.get(&tenant) {
                    self.diags.push(
                        Diagnostic::error(
                            Code::DuplicatePolicy,
                            at,
                            format!("tenant `{tenant}` already has a tenant policy"),
                        )
                        .with_label("second policy for this tenant")
                        .with_secondary(*first, "the first one names it here")
                        .with_help("a tenant is held to one TenantPolicy: merge the expectations, or narrow `tenants`"),
                    );
                    continue;
                }
                claimed.insert(tenant.clone(), at);
                // A policy with a problem is reported, never checked half-read.
                if clean {
                    self.model.tenant_policies.insert(tenant, policy.clone());
                }
            }
        }
    }
}
