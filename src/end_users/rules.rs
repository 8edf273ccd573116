//! Which Entra users become contacts and which organization each goes to, as resolved from an
//! `EndUserSync` document: plain data and pure matching, shared by validation and the plan.

use std::sync::Arc;

use serde::Serialize;

use super::user::{EntraUser, UserProperty};

/// One tenant's end-user sync: the rules (shared by every tenant a document targets) and the
/// organization that gets users no route matches (resolved for this tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSync {
    pub rules: Arc<SyncRules>,
    /// `defaultOrganization`, or the tenant's only organization.
    pub default_organization: Option<String>,
}

impl TenantSync {
    /// The organization `user` is routed to: the first matching route's, else the default.
    pub fn route(&self, user: &EntraUser, groups: &dyn GroupMembership) -> Option<&str> {
        self.rules
            .routes
            .iter()
            .find(|r| r.rule.matches(user, groups))
            .map(|r| r.organization.as_str())
            .or(self.default_organization.as_deref())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRules {
    /// The `EndUserSync` document's name.
    pub name: String,
    /// A user is included when any of these matches (and no exclude rule does).
    pub include: Vec<UserRule>,
    pub exclude: Vec<UserRule>,
    /// Keep contacts of disabled accounts (`disabledUsers: keep`); by default they are
    /// archived ("disabled in Entra").
    pub keep_disabled: bool,
    /// First match wins.
    pub routes: Vec<Route>,
    /// Where each contact field comes from: the first non-empty user property listed.
    pub fields: Vec<(ContactField, Vec<UserProperty>)>,
    /// Where each named group is first written (`path:line:column`): whether a group resolves
    /// is known only when the tenant is read, and the message then points at it. Not part of
    /// what the rules mean (left out of digests).
    #[serde(skip)]
    pub group_sources: std::collections::BTreeMap<GroupRef, String>,
}

impl SyncRules {
    /// The groups the rules name, each once, in the order first named: every run reads their
    /// transitive members (Graph's users/delta does not track membership).
    pub fn groups(&self) -> Vec<&GroupRef> {
        let mut groups: Vec<&GroupRef> = Vec::new();
        let all = self
            .include
            .iter()
            .chain(&self.exclude)
            .chain(self.routes.iter().map(|r| &r.rule));
        for rule in all {
            for condition in &rule.conditions {
                if let Condition::Group(refs) = condition {
                    for g in refs {
                        if !groups.contains(&g) {
                            groups.push(g);
                        }
                    }
                }
            }
        }
        groups
    }

    /// Whether `user` is a contact under these rules, or why not.
    pub fn decide(&self, user: &EntraUser, groups: &dyn GroupMembership) -> Decision {
        if !self.keep_disabled && user.account_enabled == Some(false) {
            return Decision::Excluded(Why::Disabled);
        }
        if let Some((i, _)) = self
            .exclude
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(user, groups))
        {
            return Decision::Excluded(Why::ExcludeRule(i));
        }
        match self.include.iter().position(|r| r.matches(user, groups)) {
            Some(i) => Decision::Included(i),
            None => Decision::Excluded(Why::NoIncludeRule),
        }
    }
}

/// The outcome of the rules for one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Matched the include rule at this position.
    Included(usize),
    Excluded(Why),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Disabled,
    /// Matched the exclude rule at this position.
    ExcludeRule(usize),
    NoIncludeRule,
}

/// Every condition must hold; a condition holds when the user's value matches any of its
/// values. No condition: every user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRule {
    pub conditions: Vec<Condition>,
}

impl UserRule {
    pub fn matches(&self, user: &EntraUser, groups: &dyn GroupMembership) -> bool {
        self.conditions.iter().all(|c| c.holds(user, groups))
    }

    /// The first condition `user` fails, if any.
    pub fn failing(&self, user: &EntraUser, groups: &dyn GroupMembership) -> Option<&Condition> {
        self.conditions.iter().find(|c| !c.holds(user, groups))
    }

    /// `department Finance, officeLocation Boston*`, or `every user`.
    pub fn describe(&self) -> String {
        if self.conditions.is_empty() {
            return "every user".into();
        }
        self.conditions
            .iter()
            .map(Condition::describe)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub rule: UserRule,
    pub organization: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "on", content = "values")]
pub enum Condition {
    /// `Member` or `Guest`.
    UserType(Vec<String>),
    AccountEnabled(bool),
    /// A text property (department, officeLocation, companyName, jobTitle) against patterns.
    Property(UserProperty, Vec<Pattern>),
    /// The domain of the user's mail or user principal name.
    Domain(Vec<Pattern>),
    /// Member of any of these groups, directly or through nested groups.
    Group(Vec<GroupRef>),
}

impl Condition {
    pub fn holds(&self, user: &EntraUser, groups: &dyn GroupMembership) -> bool {
        match self {
            Condition::UserType(types) => types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(user.user_type.as_deref().unwrap_or("Member"))),
            // Graph returns accountEnabled only when selected; the sync always selects it.
            Condition::AccountEnabled(enabled) => user.account_enabled.unwrap_or(true) == *enabled,
            Condition::Property(property, patterns) => {
                let value = user.text(*property).unwrap_or("");
                patterns.iter().any(|p| p.matches(value))
            }
            Condition::Domain(patterns) => user
                .domains()
                .iter()
                .any(|d| patterns.iter().any(|p| p.matches(d))),
            Condition::Group(refs) => refs.iter().any(|g| groups.is_member(g, &user.id)),
        }
    }

    /// What the condition asks for, as a person would write it.
    pub fn describe(&self) -> String {
        let list = |items: Vec<&str>| items.join(" or ");
        match self {
            Condition::UserType(types) => {
                format!(
                    "userType {}",
                    list(types.iter().map(String::as_str).collect())
                )
            }
            Condition::AccountEnabled(enabled) => format!("accountEnabled {enabled}"),
            Condition::Property(property, patterns) => format!(
                "{} {}",
                property.graph_name(),
                list(patterns.iter().map(|p| p.text.as_str()).collect())
            ),
            Condition::Domain(patterns) => format!(
                "domain {}",
                list(patterns.iter().map(|p| p.text.as_str()).collect())
            ),
            Condition::Group(refs) => {
                format!(
                    "group {}",
                    list(refs.iter().map(GroupRef::as_str).collect())
                )
            }
        }
    }

    /// The rule kind for "no longer matches the department rule".
    pub fn name(&self) -> &'static str {
        match self {
            Condition::UserType(_) => "userType",
            Condition::AccountEnabled(_) => "accountEnabled",
            Condition::Property(property, _) => property.graph_name(),
            Condition::Domain(_) => "domain",
            Condition::Group(_) => "group",
        }
    }
}

/// A value or a glob (`Boston*`, `*.example.com`), compared without regard to case, as Entra
/// compares these properties.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Pattern {
    /// As written (for messages); matching uses its lowercase form.
    pub text: String,
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_string(),
        }
    }

    pub fn matches(&self, value: &str) -> bool {
        glob_matches(&self.text.to_lowercase(), &value.to_lowercase())
    }

    /// Matches every value (`*`).
    pub fn is_everything(&self) -> bool {
        !self.text.is_empty() && self.text.chars().all(|c| c == '*')
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_matches(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    if !value.ends_with(last) {
        return false;
    }
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// A group named in a rule: by object id (one request a run) or by display name (looked up
/// first; it must name exactly one group).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupRef {
    Id(String),
    Name(String),
}

impl GroupRef {
    /// An object id when `text` is a GUID (lowercase), else a display name.
    pub fn parse(text: &str) -> GroupRef {
        if crate::manifest::format::check_guid(text).is_ok() {
            GroupRef::Id(text.to_lowercase())
        } else {
            GroupRef::Name(text.to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            GroupRef::Id(s) | GroupRef::Name(s) => s,
        }
    }
}

/// Who is in the groups the rules name (read from Graph each run).
pub trait GroupMembership {
    /// Whether user `user_id` (lowercase) is a member of `group`, directly or transitively.
    fn is_member(&self, group: &GroupRef, user_id: &str) -> bool;
    /// The group's display name, for messages ("left group Sales").
    fn display_name<'a>(&'a self, group: &'a GroupRef) -> &'a str {
        group.as_str()
    }
}

/// Contact fields and where they come from by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ContactField {
    Name,
    FirstName,
    LastName,
    Email,
    Phone,
    Mobile,
    JobTitle,
    Department,
    Office,
    Company,
}

impl ContactField {
    /// Every field with its default source, in the order contacts list them.
    pub const ALL: &'static [(ContactField, &'static [UserProperty])] = &[
        (ContactField::Name, &[UserProperty::DisplayName]),
        (ContactField::FirstName, &[UserProperty::GivenName]),
        (ContactField::LastName, &[UserProperty::Surname]),
        (
            ContactField::Email,
            &[UserProperty::Mail, UserProperty::UserPrincipalName],
        ),
        (ContactField::Phone, &[UserProperty::BusinessPhones]),
        (ContactField::Mobile, &[UserProperty::MobilePhone]),
        (ContactField::JobTitle, &[UserProperty::JobTitle]),
        (ContactField::Department, &[UserProperty::Department]),
        (ContactField::Office, &[UserProperty::OfficeLocation]),
        (ContactField::Company, &[UserProperty::CompanyName]),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactField::Name => "name",
            ContactField::FirstName => "firstName",
            ContactField::LastName => "lastName",
            ContactField::Email => "email",
            ContactField::Phone => "phone",
            ContactField::Mobile => "mobile",
            ContactField::JobTitle => "jobTitle",
            ContactField::Department => "department",
            ContactField::Office => "office",
            ContactField::Company => "company",
        }
    }

    pub fn parse(name: &str) -> Option<ContactField> {
        Self::ALL
            .iter()
            .map(|(f, _)| *f)
            .find(|f| f.as_str() == name)
    }

    /// The default field map (every field from its default properties).
    pub fn defaults() -> Vec<(ContactField, Vec<UserProperty>)> {
        Self::ALL
            .iter()
            .map(|(f, sources)| (*f, sources.to_vec()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_without_regard_to_case() {
        let p = Pattern::new("Boston*");
        assert!(p.matches("boston 1"));
        assert!(p.matches("BOSTON"));
        assert!(!p.matches("New Boston"));
        assert!(Pattern::new("*.example.com").matches("mail.Example.com"));
        assert!(!Pattern::new("*.example.com").matches("example.com"));
        assert!(Pattern::new("a*b*c").matches("aXXbYYc"));
        assert!(!Pattern::new("a*b*c").matches("aXXcYYb"));
        assert!(!Pattern::new("ab*ba").matches("aba"));
        assert!(Pattern::new("Finance").matches("finance"));
        assert!(!Pattern::new("Finance").matches("Finance EU"));
        assert!(Pattern::new("*").is_everything());
    }

    #[test]
    fn a_group_is_an_id_when_it_is_a_guid() {
        assert_eq!(
            GroupRef::parse("0B1C2D3E-0000-4000-8000-000000000001"),
            GroupRef::Id("0b1c2d3e-0000-4000-8000-000000000001".into())
        );
        assert_eq!(GroupRef::parse("Sales"), GroupRef::Name("Sales".into()));
    }
}

#[cfg(test)]
mod condition_tests {
    use super::*;

    /// Membership as a test states it: (group, members).
    struct Members(Vec<(GroupRef, Vec<&'static str>)>);

    impl GroupMembership for Members {
        fn is_member(&self, group: &GroupRef, user_id: &str) -> bool {
            self.0
                .iter()
                .any(|(g, m)| g == group && m.contains(&user_id))
        }
    }

    fn ana() -> EntraUser {
        EntraUser {
            id: "u1".into(),
            display_name: Some("Ana Ortiz".into()),
            mail: Some("ana@Foggy.example".into()),
            user_principal_name: Some("ana@foggy.onmicrosoft.com".into()),
            user_type: Some("Member".into()),
            account_enabled: Some(true),
            department: Some("Finance".into()),
            office_location: Some("Boston 2".into()),
            company_name: Some("Foggy IT".into()),
            job_title: Some("Controller".into()),
            ..EntraUser::default()
        }
    }

    fn rule(conditions: Vec<Condition>) -> UserRule {
        UserRule { conditions }
    }

    fn p(text: &str) -> Vec<Pattern> {
        vec![Pattern::new(text)]
    }

    /// Every condition type, matching and not, alone and combined (all must hold).
    #[test]
    fn every_condition_type_matches_as_declared() {
        let none = Members(Vec::new());
        let sales = GroupRef::Name("Sales".into());
        let in_sales = Members(vec![(sales.clone(), vec!["u1"])]);
        let user = ana();
        let holds =
            |c: Condition, groups: &dyn GroupMembership| rule(vec![c]).matches(&user, groups);
        assert!(holds(Condition::UserType(vec!["member".into()]), &none));
        assert!(!holds(Condition::UserType(vec!["Guest".into()]), &none));
        assert!(holds(Condition::AccountEnabled(true), &none));
        assert!(!holds(Condition::AccountEnabled(false), &none));
        assert!(holds(
            Condition::Property(UserProperty::Department, p("finance")),
            &none
        ));
        assert!(!holds(
            Condition::Property(UserProperty::Department, p("Sales")),
            &none
        ));
        assert!(holds(
            Condition::Property(UserProperty::OfficeLocation, p("Boston*")),
            &none
        ));
        assert!(holds(
            Condition::Property(UserProperty::CompanyName, p("foggy it")),
            &none
        ));
        assert!(holds(
            Condition::Property(UserProperty::JobTitle, p("*troll*")),
            &none
        ));
        // The domain of the mail or of the user principal name, any case.
        assert!(holds(Condition::Domain(p("foggy.example")), &none));
        assert!(holds(Condition::Domain(p("*.onmicrosoft.com")), &none));
        assert!(!holds(Condition::Domain(p("contoso.example")), &none));
        assert!(holds(Condition::Group(vec![sales.clone()]), &in_sales));
        assert!(!holds(Condition::Group(vec![sales.clone()]), &none));
        // Any value of a condition; all conditions of a rule.
        assert!(holds(
            Condition::Property(
                UserProperty::Department,
                vec![Pattern::new("IT"), Pattern::new("Finance")]
            ),
            &none
        ));
        let both = rule(vec![
            Condition::Property(UserProperty::Department, p("Finance")),
            Condition::Group(vec![sales.clone()]),
        ]);
        assert!(both.matches(&user, &in_sales));
        assert!(!both.matches(&user, &none));
        assert_eq!(
            both.failing(&user, &none),
            Some(&Condition::Group(vec![sales]))
        );
        // A property the user does not have matches only a pattern that takes anything.
        let bare = EntraUser {
            id: "u2".into(),
            ..EntraUser::default()
        };
        let office = |text: &str| {
            rule(vec![Condition::Property(
                UserProperty::OfficeLocation,
                p(text),
            )])
        };
        assert!(!office("Boston*").matches(&bare, &none));
        assert!(office("*").matches(&bare, &none));
    }

    /// Disabled first, then exclude rules, then include rules; the position of the rule that
    /// decided is reported.
    #[test]
    fn exclude_wins_over_include_and_disabled_accounts_are_left_out_unless_kept() {
        let none = Members(Vec::new());
        let mut rules = SyncRules {
            group_sources: Default::default(),
            name: "s".into(),
            include: vec![
                rule(vec![Condition::Property(
                    UserProperty::Department,
                    p("Sales"),
                )]),
                rule(vec![Condition::UserType(vec!["Member".into()])]),
            ],
            exclude: vec![rule(vec![Condition::Domain(p("contractors.example"))])],
            keep_disabled: false,
            routes: Vec::new(),
            fields: ContactField::defaults(),
        };
        let mut user = ana();
        assert_eq!(rules.decide(&user, &none), Decision::Included(1));
        user.mail = Some("ana@contractors.example".into());
        assert_eq!(
            rules.decide(&user, &none),
            Decision::Excluded(Why::ExcludeRule(0))
        );
        user.mail = Some("ana@foggy.example".into());
        user.account_enabled = Some(false);
        assert_eq!(
            rules.decide(&user, &none),
            Decision::Excluded(Why::Disabled)
        );
        rules.keep_disabled = true;
        assert_eq!(rules.decide(&user, &none), Decision::Included(1));
        user.user_type = Some("Guest".into());
        assert_eq!(
            rules.decide(&user, &none),
            Decision::Excluded(Why::NoIncludeRule)
        );
    }

    /// First matching route, else the default organization.
    #[test]
    fn the_first_matching_route_wins_then_the_default() {
        let none = Members(Vec::new());
        let sync = TenantSync {
            rules: Arc::new(SyncRules {
                group_sources: Default::default(),
                name: "s".into(),
                include: Vec::new(),
                exclude: Vec::new(),
                keep_disabled: false,
                routes: vec![
                    Route {
                        rule: rule(vec![Condition::Property(
                            UserProperty::OfficeLocation,
                            p("Boston*"),
                        )]),
                        organization: "boston".into(),
                    },
                    Route {
                        rule: rule(vec![Condition::Property(
                            UserProperty::Department,
                            p("Finance"),
                        )]),
                        organization: "finance".into(),
                    },
                ],
                fields: ContactField::defaults(),
            }),
            default_organization: Some("main".into()),
        };
        let mut user = ana();
        assert_eq!(sync.route(&user, &none), Some("boston"));
        user.office_location = Some("Chicago".into());
        assert_eq!(sync.route(&user, &none), Some("finance"));
        user.department = Some("IT".into());
        assert_eq!(sync.route(&user, &none), Some("main"));
    }
}
