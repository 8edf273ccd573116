//! `GdapRelationship` documents resolved per tenant (issue 17): names unique, targets
//! resolved (a relationship is with a Microsoft tenant, so named tenants must be mapped; a
//! selector that matches nothing is a warning), display names made per tenant (`{tenant}`
//! replaced), at most 50 characters and unique across every relationship the manifests
//! declare, as Graph keeps them unique across the partner's relationships.

use std::collections::HashMap;

use super::resolve::Resolver;
use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::GdapRelationshipDoc;
use crate::source::Loc;

impl Resolver {
    /// Puts each tenant's relationships in the model; every tenant is known by now.
    pub(super) fn finish_gdap(&mut self, docs: Vec<(GdapRelationshipDoc, bool)>) {
        let mut names: HashMap<super::unique::Key, Loc> = HashMap::new();
        // Display names (any case), with where the first one came from and for which tenant.
        let mut display_names: HashMap<String, (Loc, String)> = HashMap::new();
        for (doc, clean) in docs {
            if !super::unique::check_unique(
                &mut self.diags,
                &mut names,
                "GdapRelationship",
                &doc.name,
            ) {
                continue;
            }
            let (tenants, _) = self.resolve_targets(&doc.tenants, "GDAP relationship", true);
            let at = doc.display_name.loc;
            for (tenant, _) in tenants {
                let display_name = doc.display_name_for(&tenant);
                if let Err(reason) = crate::gdap::check_display_name(&display_name) {
                    // Without `{tenant}` the decoder reported it already.
                    if doc.display_name.value.contains("{tenant}") {
                        self.diags.push(
                            Diagnostic::error(
                                Code::InvalidValue,
                                at,
                                format!(
                                    "invalid GDAP `displayName` for tenant `{tenant}` (`{display_name}`): {reason}"
                                ),
                            )
                            .with_label("too long for Graph once `{tenant}` is replaced"),
                        );
                    }
                    continue;
                }
                let key = display_name.trim().to_lowercase();
                if let Some((first, first_tenant)) = display_names.get(&key) {
                    let mut d = Diagnostic::error(
                        Code::DuplicateDisplayName,
                        at,
                        format!(
                            "GDAP display name `{display_name}` (tenant `{tenant}`) is already used for tenant `{first_tenant}`"
                        ),
                    )
                    .with_label("used twice")
                    .with_secondary(*first, "first used here")
                    .with_help(
                        "Graph keeps a partner's relationship names unique: put `{tenant}` in `displayName` when it targets several tenants",
                    );
                    if *first == at {
                        d = Diagnostic::error(
                            Code::DuplicateDisplayName,
                            at,
                            format!(
                                "GDAP display name `{display_name}` is the same for tenants `{first_tenant}` and `{tenant}`"
                            ),
                        )
                        .with_label("one name for several tenants")
                        .with_help("put `{tenant}` in `displayName`: Graph keeps a partner's relationship names unique");
                    }
                    self.diags.push(d);
                    continue;
                }
                display_names.insert(key, (at, tenant.clone()));
                // A relationship with a problem is reported, never planned half-read.
                if clean {
                    self.model
                        .gdap_relationships
                        .entry(tenant.clone())
                        .or_default()
                        .push(doc.to_relationship(&tenant));
                }
            }
        }
    }
}
