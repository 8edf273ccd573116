//! Manifests written from live tenants (onboarding): Tenant, GuestUser, RoleAssignment and
//! GdapRelationship documents formatted like hand-written ones. Pure: live data in, files out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::live::LiveDirectory;
use crate::manifest::format::{check_name, suggest_name};
use crate::roles::RoleCatalog;
use crate::synthetic::GeneratedFile;

/// One tenant as read from Entra.
pub struct ExportedTenant {
    pub microsoft_tenant_id: String,
    pub display_name: String,
    pub directory: LiveDirectory,
}

/// A YAML scalar: plain when that is unambiguous, JSON-quoted (valid YAML) otherwise.
pub fn yaml_str(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || " ._@()/-+".contains(c))
        && !text.starts_with([' ', '-', '@', '.', '/'])
        && !text.ends_with(' ')
        && !matches!(
            text.to_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && text.parse::<f64>().is_err();
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).expect("strings serialize")
    }
}

/// A unique slug for `text`, never one of `taken`.
fn unique_slug(text: &str, fallback: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base = suggest_name(text);
    if check_name(&base).is_err() {
        base = fallback.to_string();
    }
    base.truncate(58);
    let base = base.trim_end_matches('-').to_string();
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// Files sit in `tenants/` and `people/`; the schema is written to `schemas/` beside them.
const SCHEMA_LINE: &str = "# yaml-language-server: $schema=../schemas/manifest.schema.json\n";

/// Files for `tenants`: `tenants/<name>.yaml` (the Tenant) and `people/<guest>.yaml` (each
/// guest once, with every tenant they are in, and their directory roles per tenant).
pub fn manifests(tenants: &[ExportedTenant]) -> Vec<GeneratedFile> {
    let catalog = RoleCatalog::builtin();
    let mut taken_tenants = BTreeSet::new();
    let mut taken_people = BTreeSet::new();
    let mut taken_relationships = BTreeSet::new();
    let mut files = Vec::new();
    // email (lowercase) -> (display name, email as written, [(tenant, [(scope, role)])])
    type Roles = BTreeMap<String, BTreeSet<String>>;
    let mut people: BTreeMap<String, (String, String, BTreeMap<String, Roles>)> = BTreeMap::new();
    let mut sorted: Vec<&ExportedTenant> = tenants.iter().collect();
    sorted.sort_by(|a, b| {
        a.display_name
            .cmp(&b.display_name)
            .then(a.microsoft_tenant_id.cmp(&b.microsoft_tenant_id))
    });
    for t in sorted {
        let name = unique_slug(&t.display_name, "tenant", &mut taken_tenants);
        let mut text = String::from(SCHEMA_LINE);
        let _ = write!(
            text,
            "kind: Tenant\nname: {name}\ndisplayName: {}\nmicrosoftTenantId: {}\n",
            yaml_str(&t.display_name),
            t.microsoft_tenant_id.to_lowercase()
        );
        // Its GDAP relationships (the partner's, still in force), each its own document:
        // applied with `--adopt`, they are recorded as they are and the plan is empty.
        let mut relationships: Vec<&crate::gdap::LiveRelationship> = t
            .directory
            .gdap_relationships
            .iter()
            .filter(|r| !crate::gdap::status::is_ended(&r.status))
            .collect();
        relationships.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        for r in relationships {
            let slug = unique_slug(
                &format!("{name} {}", r.display_name),
                "gdap",
                &mut taken_relationships,
            );
            let role_names = |ids: &[String]| -> String {
                ids.iter()
                    .map(|id| {
                        yaml_str(
                            catalog
                                .by_template_id(id)
                                .map_or(id.as_str(), |role| role.name),
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = write!(
                text,
                "---\nkind: GdapRelationship\nname: {slug}\ntenants: [{name}]\ndisplayName: {}\nroles: [{}]\nduration: {}\nautoExtend: {}\n",
                yaml_str(&r.display_name),
                role_names(&r.roles),
                yaml_str(&r.duration),
                if r.auto_extends() { "P180D" } else { "none" },
            );
            let assignments: Vec<&crate::gdap::LiveAccessAssignment> =
                r.current_assignments().collect();
            if !assignments.is_empty() {
                text.push_str("accessAssignments:\n");
                for a in assignments {
                    let _ = write!(
                        text,
                        "  - group: {}\n    roles: [{}]\n",
                        a.group_id,
                        role_names(&a.roles)
                    );
                }
            }
        }
        files.push(GeneratedFile {
            path: format!("tenants/{name}.yaml"),
            text,
        });
        for guest in &t.directory.guests {
            let Some(email) = guest
                .mail
                .clone()
                .or_else(|| guest.other_mails.first().cloned())
            else {
                continue;
            };
            let entry = people
                .entry(email.to_lowercase())
                .or_insert_with(|| (guest.display_name.clone(), email.clone(), BTreeMap::new()));
            let roles = entry.2.entry(name.clone()).or_default();
            for ra in t
                .directory
                .role_assignments
                .iter()
                .filter(|r| r.principal_id.eq_ignore_ascii_case(&guest.id))
            {
                let role = catalog
                    .by_template_id(&ra.role_definition_id)
                    .map_or_else(|| ra.role_definition_id.clone(), |r| r.name.to_string());
                roles
                    .entry(ra.directory_scope_id.clone())
                    .or_default()
                    .insert(role);
            }
        }
    }
    for (display, email, per_tenant) in people.into_values() {
        let name = unique_slug(&email.replace('@', " at "), "guest", &mut taken_people);
        let mut text = String::from(SCHEMA_LINE);
        let tenants: Vec<&str> = per_tenant.keys().map(String::as_str).collect();
        let _ = write!(
            text,
            "kind: GuestUser\nname: {name}\nemail: {}\ndisplayName: {}\ntenants: [{}]\n",
            yaml_str(&email),
            yaml_str(&display),
            tenants.join(", ")
        );
        for (tenant, scopes) in &per_tenant {
            for (scope, roles) in scopes {
                let suffix = if scope == "/" {
                    String::new()
                } else {
                    format!("-{}", suggest_name(scope.rsplit('/').next().unwrap_or("")))
                };
                let mut ra_name = format!("{name}-{tenant}{suffix}");
                ra_name.truncate(63);
                let ra_name = ra_name.trim_end_matches('-');
                let roles: Vec<String> = roles.iter().map(|r| yaml_str(r)).collect();
                let _ = write!(
                    text,
                    "---\nkind: RoleAssignment\nname: {ra_name}\nprincipal: {{ guest: {name} }}\ndirectoryRoles: [{}]\n{}tenants: [{tenant}]\n",
                    roles.join(", "),
                    if scope == "/" {
                        String::new()
                    } else {
                        format!("scope: {}\n", yaml_str(scope))
                    }
                );
            }
        }
        files.push(GeneratedFile {
            path: format!("people/{name}.yaml"),
            text,
        });
    }
    files.push(GeneratedFile {
        path: "schemas/manifest.schema.json".into(),
        text: crate::schema::manifest_schema_text(),
    });
    files
}

#[cfg(test)]
mod tests {
    use super::yaml_str;

    #[test]
    fn quotes_only_what_yaml_would_misread() {
        assert_eq!(yaml_str("Foggy IT Services"), "Foggy IT Services");
        assert_eq!(yaml_str("dana@msp.example"), "dana@msp.example");
        assert_eq!(yaml_str("yes"), "\"yes\"");
        assert_eq!(yaml_str("1.10"), "\"1.10\"");
        assert_eq!(yaml_str("Ben: old MSP"), "\"Ben: old MSP\"");
        assert_eq!(yaml_str("#hash"), "\"#hash\"");
        assert_eq!(yaml_str("O'Neil & Co"), "\"O'Neil & Co\"");
    }
}
