//! `kind: EndUserSync`: which of a customer's Entra users become contacts, which organization
//! each goes to, and which user properties fill which contact fields.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::decode::{Cx, Fields};
use crate::manifest::targets::TenantTargets;
use crate::manifest::yaml::{Node, Value};
use crate::manifest::{ManifestKind, decode_name, decode_reference, optional};
use crate::source::{Loc, Located};

/// End users of the targeted tenants, synced as contacts: included by rules, routed to
/// organizations (first matching route wins), fields mapped from user properties.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndUserSyncDoc {
    /// Stable id: lowercase letters, digits and '-', at most 63 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub name: Located<String>,
    /// The tenants whose users are synced (names, or `{selector: ...}` of mapped tenants).
    pub tenants: TenantTargets,
    /// A user is included when any rule matches; default: `[{userType: Member}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<UserRuleDoc>>,
    /// A user matching any of these is left out, whatever `include` says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<UserRuleDoc>,
    /// `archive` (default): a disabled account's contact is archived; `keep`: disabled
    /// accounts are treated like enabled ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<DisabledUsers>")]
    pub disabled_users: Option<Located<String>>,
    /// The first route whose conditions all match decides a user's organization.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteDoc>,
    /// The organization of users no route matches; may be left out when the tenant has one
    /// organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_organization: Option<Located<String>>,
    /// Contact field -> the user property (or list: the first non-empty) it comes from;
    /// `null` leaves the field out. Fields not named keep their defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<crate::end_users::ContactField, Option<PropertyList>>>")]
    pub fields: Option<FieldMapDoc>,
}

/// `fields:` as written: each contact field with its user properties (`None`: left out).
pub type FieldMapDoc = Vec<(Located<String>, Option<Vec<Located<String>>>)>;

#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
enum DisabledUsers {
    Archive,
    Keep,
}

/// One user property, or several (the first non-empty is used).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PropertyList {
    One(String),
    Several(Vec<String>),
}

/// A value, or a list of values of which any may match.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Conditions on a user; all that are given must hold. Texts compare without regard to case,
/// and `*` matches any run of characters (`Boston*`).
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRuleDoc {
    /// `Member` or `Guest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Option<OneOrMany>")]
    pub user_type: Vec<Located<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<Located<bool>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Option<OneOrMany>")]
    pub department: Vec<Located<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Option<OneOrMany>")]
    pub office_location: Vec<Located<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Option<OneOrMany>")]
    pub company_name: Vec<Located<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Option<OneOrMany>")]
    pub job_title: Vec<Located<String>>,
    /// The domain of the user's mail or user principal name (`foggy.example`, `*.foggy.example`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Option<OneOrMany>")]
    pub domain: Vec<Located<String>>,
    /// Member of the group, directly or through nested groups: its object id, or its display
    /// name (which must name exactly one group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Option<OneOrMany>")]
    pub group: Vec<Located<String>>,
    /// Where each of `group` is written (`path:line:column`), for a group found missing only
    /// when the tenant is read.
    #[serde(skip)]
    #[schemars(skip)]
    pub group_at: Vec<String>,
    /// Where the rule is written.
    #[serde(skip)]
    pub loc: Option<Loc>,
}

/// A route: conditions like a rule's, and where matching users go.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteDoc {
    #[serde(flatten)]
    pub when: UserRuleDoc,
    /// The `name` of an Organization of the tenant.
    pub organization: Located<String>,
}

/// A rule's conditions: a route's fields but its `organization` (the last).
const RULE_FIELDS: &[&str] = match ROUTE_FIELDS.split_last() {
    Some((_, conditions)) => conditions,
    None => &[],
};

const ROUTE_FIELDS: &[&str] = &[
    "userType",
    "accountEnabled",
    "department",
    "officeLocation",
    "companyName",
    "jobTitle",
    "domain",
    "group",
    "organization",
];

impl ManifestKind for EndUserSyncDoc {
    const KIND: &'static str = "EndUserSync";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "tenants",
        "include",
        "exclude",
        "disabledUsers",
        "routes",
        "defaultOrganization",
        "fields",
    ];

    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self> {
        let name = decode_name(cx, fields, Self::KIND);
        let tenants = fields
            .required(cx, "tenants")
            .and_then(|n| TenantTargets::decode(cx, n));
        let include = optional(fields, "include", |n| rules(cx, n, "`include`", true));
        let exclude =
            optional(fields, "exclude", |n| rules(cx, n, "`exclude`", false)).unwrap_or_default();
        let disabled_users = optional(fields, "disabledUsers", |n| {
            let value = cx.string(n, "`disabledUsers`")?;
            if !matches!(value.value.as_str(), "archive" | "keep") {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidValue,
                        value.loc,
                        format!(
                            "`disabledUsers` must be `archive` or `keep`, found `{}`",
                            value.value
                        ),
                    )
                    .with_label("not archive or keep"),
                );
                return None;
            }
            Some(value)
        });
        let routes = optional(fields, "routes", |n| decode_routes(cx, n)).unwrap_or_default();
        let default_organization = optional(fields, "defaultOrganization", |n| {
            decode_reference(cx, n, "`defaultOrganization`")
        });
        let field_map = optional(fields, "fields", |n| decode_fields(cx, n));
        Some(EndUserSyncDoc {
            name: name?,
            tenants: tenants?,
            include,
            exclude,
            disabled_users,
            routes,
            default_organization,
            fields: field_map,
        })
    }
}

fn rules(cx: &mut Cx, node: &Node, what: &str, include: bool) -> Option<Vec<UserRuleDoc>> {
    let Value::Seq(items) = &node.value else {
        cx.wrong_type(node, what, "a list of rules");
        return None;
    };
    let before = cx.diags.len();
    let mut rules = Vec::new();
    for item in items {
        let Some(fields) = cx.fields(item, &format!("a rule of {what}"), RULE_FIELDS) else {
            continue;
        };
        let Some(rule) = decode_rule(cx, &fields) else {
            continue;
        };
        if !include && rule.is_empty() {
            cx.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    cx.loc(item),
                    "an exclude rule without conditions would leave out every user",
                )
                .with_label("matches every user")
                .with_help("give it a condition, e.g. `department: HR`, or remove it"),
            );
            continue;
        }
        rules.push(rule);
    }
    if include && rules.is_empty() && cx.diags.len() == before {
        cx.report(
            Diagnostic::error(
                Code::InvalidValue,
                cx.loc(node),
                "`include` has no rule, so no user would ever be a contact",
            )
            .with_label("empty")
            .with_help("leave `include` out to include every member (`userType: Member`)"),
        );
    }
    Some(rules)
}

impl UserRuleDoc {
    /// No condition: matches every user.
    pub fn is_empty(&self) -> bool {
        self.user_type.is_empty()
            && self.account_enabled.is_none()
            && self.department.is_empty()
            && self.office_location.is_empty()
            && self.company_name.is_empty()
            && self.job_title.is_empty()
            && self.domain.is_empty()
            && self.group.is_empty()
    }
}

fn decode_rule(cx: &mut Cx, fields: &Fields) -> Option<UserRuleDoc> {
    let mut rule = UserRuleDoc {
        loc: Some(fields.loc(cx)),
        ..UserRuleDoc::default()
    };
    let mut ok = true;
    let mut values = |cx: &mut Cx, name: &str| -> Vec<Located<String>> {
        match fields.get(name).map(|n| one_or_many(cx, n, name)) {
            Some(Some(v)) => v,
            Some(None) => {
                ok = false;
                Vec::new()
            }
            None => Vec::new(),
        }
    };
    rule.user_type = values(cx, "userType");
    rule.department = values(cx, "department");
    rule.office_location = values(cx, "officeLocation");
    rule.company_name = values(cx, "companyName");
    rule.job_title = values(cx, "jobTitle");
    rule.domain = values(cx, "domain");
    rule.group = values(cx, "group");
    rule.group_at = rule
        .group
        .iter()
        .map(|g| {
            let (line, column) = cx.file.line_col(g.loc.offset);
            format!("{}:{line}:{column}", cx.file.path)
        })
        .collect();
    rule.account_enabled = optional(fields, "accountEnabled", |n| cx.bool(n, "`accountEnabled`"));
    for t in &rule.user_type {
        if !t.value.eq_ignore_ascii_case("Member") && !t.value.eq_ignore_ascii_case("Guest") {
            ok = false;
            cx.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    t.loc,
                    format!(
                        "`userType` is `Member` or `Guest` in Entra, not `{}`",
                        t.value
                    ),
                )
                .with_label("not a user type"),
            );
        }
    }
    for d in &rule.domain {
        if d.value.contains('@') || d.value.contains(char::is_whitespace) {
            ok = false;
            cx.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    d.loc,
                    format!(
                        "`domain` is a domain name such as `foggy.example`, not `{}`",
                        d.value
                    ),
                )
                .with_label("not a domain"),
            );
        }
    }
    ok.then_some(rule)
}

/// A string or a list of strings; an empty list can never match and is refused.
fn one_or_many(cx: &mut Cx, node: &Node, name: &str) -> Option<Vec<Located<String>>> {
    let what = format!("`{name}`");
    match &node.value {
        Value::Seq(items) if items.is_empty() => {
            cx.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    cx.loc(node),
                    format!("{what} is an empty list: the rule could never match"),
                )
                .with_label("empty list"),
            );
            None
        }
        Value::Seq(_) => cx.string_list(node, &what),
        _ => cx.non_empty_string(node, &what).map(|s| vec![s]),
    }
}

fn decode_routes(cx: &mut Cx, node: &Node) -> Option<Vec<RouteDoc>> {
    let Value::Seq(items) = &node.value else {
        cx.wrong_type(node, "`routes`", "a list of routes");
        return None;
    };
    let mut routes: Vec<RouteDoc> = Vec::new();
    // Each kept route's number in the document (1-based), for messages.
    let mut numbers: Vec<usize> = Vec::new();
    for (number, item) in (1..).zip(items) {
        let before = cx.diags.len();
        let Some(fields) = cx.fields(item, "a route", ROUTE_FIELDS) else {
            continue;
        };
        let when = decode_rule(cx, &fields);
        let organization = fields
            .required(cx, "organization")
            .and_then(|n| decode_reference(cx, n, "`organization`"));
        let (Some(when), Some(organization)) = (when, organization) else {
            continue;
        };
        if cx.diags.len() != before {
            continue; // a misspelt condition is not "no condition"
        }
        // A route after one that matches every user, or after one with the same conditions,
        // is never reached.
        // Values compare as matching does: without regard to case.
        let same = |a: &UserRuleDoc, b: &UserRuleDoc| {
            let text = |r: &UserRuleDoc| serde_json::to_string(r).ok().map(|t| t.to_lowercase());
            text(a) == text(b)
        };
        if let Some((i, earlier)) = routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.when.is_empty() || same(&r.when, &when))
        {
            let why = if earlier.when.is_empty() {
                "matches every user"
            } else {
                "has the same conditions"
            };
            let mut diagnostic = Diagnostic::error(
                Code::RouteNeverMatches,
                cx.loc(item),
                format!(
                    "this route can never match: route {} before it {why}",
                    numbers[i]
                ),
            )
            .with_label("never reached");
            if let Some(loc) = earlier.when.loc {
                diagnostic = diagnostic.with_secondary(loc, "this route takes its users");
            }
            cx.report(diagnostic.with_help("reorder the routes or remove this one"));
            continue;
        }
        routes.push(RouteDoc { when, organization });
        numbers.push(number);
    }
    Some(routes)
}

fn decode_fields(cx: &mut Cx, node: &Node) -> Option<FieldMapDoc> {
    let Value::Map(entries) = &node.value else {
        cx.wrong_type(
            node,
            "`fields`",
            "a mapping of contact field to user property",
        );
        return None;
    };
    let fields: Vec<&str> = crate::end_users::ContactField::ALL
        .iter()
        .map(|(f, _)| f.as_str())
        .collect();
    let properties: Vec<&str> = crate::end_users::UserProperty::field_sources()
        .map(|p| p.graph_name())
        .collect();
    let mut out = Vec::new();
    for (key, value) in entries {
        let Some(field) = cx.string(key, "a contact field") else {
            continue;
        };
        if !fields.contains(&field.value.as_str()) {
            let help = did_you_mean(&nearest(&field.value, fields.iter().copied()))
                .unwrap_or_else(|| format!("contact fields are: {}", fields.join(", ")));
            cx.report(
                Diagnostic::error(
                    Code::UnknownField,
                    field.loc,
                    format!("unknown contact field `{}`", field.value),
                )
                .with_label("not a contact field")
                .with_help(help),
            );
            continue;
        }
        if matches!(value.value, Value::Null) {
            out.push((field, None));
            continue;
        }
        let Some(sources) = one_or_many(cx, value, &field.value) else {
            continue;
        };
        let mut ok = true;
        for source in &sources {
            if !properties.contains(&source.value.as_str()) {
                ok = false;
                let help = did_you_mean(&nearest(&source.value, properties.iter().copied()))
                    .unwrap_or_else(|| format!("user properties are: {}", properties.join(", ")));
                cx.report(
                    Diagnostic::error(
                        Code::InvalidValue,
                        source.loc,
                        format!("`{}` is not a user property the sync reads", source.value),
                    )
                    .with_label("unknown user property")
                    .with_help(help),
                );
            }
        }
        if ok {
            out.push((field, Some(sources)));
        }
    }
    Some(out)
}
