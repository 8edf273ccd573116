//! The Entra built-in directory roles, embedded from `data/entra_builtin_roles.tsv`.
//!
//! Template ids are the same in every tenant, so manifests may name a role by display name
//! (case-insensitive) or by template id and both resolve without a Graph call.
//!
//! `data/entra_privileged_roles.tsv` lists the roles Microsoft labels PRIVILEGED (Graph v1.0
//! has no such flag): drift reports anyone holding one of them that no manifest declares.

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("../data/entra_builtin_roles.tsv");
const PRIVILEGED: &str = include_str!("../data/entra_privileged_roles.tsv");

/// Template ids (lowercase) of the roles Microsoft labels PRIVILEGED.
fn privileged_ids() -> &'static std::collections::HashSet<String> {
    static IDS: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    IDS.get_or_init(|| {
        PRIVILEGED
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once('\t'))
            .map(|(id, _)| id.trim().to_lowercase())
            .filter(|id| !id.is_empty())
            .collect()
    })
}

/// Whether the role with this template id is privileged (case-insensitive).
pub fn is_privileged(template_id: &str) -> bool {
    privileged_ids().contains(&template_id.trim().to_lowercase())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinRole {
    pub name: &'static str,
    pub template_id: &'static str,
}

/// Lookup of built-in roles by lowercase name and by template id.
pub struct RoleCatalog {
    roles: Vec<BuiltinRole>,
    by_name: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl RoleCatalog {
    /// The embedded table, parsed once per process.
    pub fn builtin() -> &'static RoleCatalog {
        static CATALOG: OnceLock<RoleCatalog> = OnceLock::new();
        CATALOG.get_or_init(|| RoleCatalog::parse(TABLE))
    }

    fn parse(table: &'static str) -> RoleCatalog {
        let roles: Vec<BuiltinRole> = table
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_once('\t'))
            .map(|(name, id)| BuiltinRole {
                name: name.trim(),
                template_id: id.trim(),
            })
            .collect();
        let by_name = roles
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.to_lowercase(), i))
            .collect();
        let by_id = roles
            .iter()
            .enumerate()
            .map(|(i, r)| (r.template_id.to_lowercase(), i))
            .collect();
        RoleCatalog {
            roles,
            by_name,
            by_id,
        }
    }

    pub fn all(&self) -> &[BuiltinRole] {
        &self.roles
    }

    /// By display name, ignoring case and surrounding spaces.
    pub fn by_name(&self, name: &str) -> Option<&BuiltinRole> {
        self.by_name
            .get(&name.trim().to_lowercase())
            .map(|&i| &self.roles[i])
    }

    pub fn by_template_id(&self, id: &str) -> Option<&BuiltinRole> {
        self.by_id.get(&id.to_lowercase()).map(|&i| &self.roles[i])
    }

    /// A template id's built-in role name, or the id as it is when unknown: how roles are
    /// shown to people (plans, drift, GDAP, a person's roles).
    pub fn name_or_id<'a>(&'a self, id: &'a str) -> &'a str {
        self.by_template_id(id).map_or(id, |r| r.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_is_complete_and_unique() {
        let catalog = RoleCatalog::builtin();
        assert_eq!(catalog.all().len(), 123);
        assert_eq!(catalog.by_name.len(), 123, "duplicate role names");
        assert_eq!(catalog.by_id.len(), 123, "duplicate template ids");
        for role in catalog.all() {
            crate::manifest::format::check_guid(role.template_id).unwrap();
        }
    }

    #[test]
    fn privileged_roles_are_builtin_roles() {
        let catalog = RoleCatalog::builtin();
        assert_eq!(privileged_ids().len(), 29);
        for line in PRIVILEGED.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let (id, name) = line.split_once('\t').unwrap();
            assert_eq!(
                catalog.by_template_id(id).map(|r| r.name),
                Some(name.trim())
            );
        }
        let global_admin = catalog.by_name("Global Administrator").unwrap();
        assert!(is_privileged(&global_admin.template_id.to_uppercase()));
        let billing = catalog.by_name("Billing Administrator").unwrap();
        assert!(!is_privileged(billing.template_id));
    }

    #[test]
    fn looks_up_by_name_and_id() {
        let catalog = RoleCatalog::builtin();
        let helpdesk = catalog.by_name("helpdesk administrator").unwrap();
        assert_eq!(helpdesk.name, "Helpdesk Administrator");
        assert_eq!(
            catalog.by_template_id(&helpdesk.template_id.to_uppercase()),
            Some(helpdesk)
        );
        assert!(catalog.by_name("Helpdesk Admin").is_none());
    }
}
