//! Problems found in manifests, as plain data: a stable code, a severity, where, and what to do.
//!
//! The core never prints; it returns diagnostics and the CLI renders them (text via miette, or
//! JSON). Codes are stable so CI scripts and docs can refer to them.

use serde::Serialize;

use crate::source::{Loc, SourceSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $slug:literal;)*) => {
        /// Stable diagnostic codes; the number never changes meaning once released.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable code, e.g. `TF203`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            /// A short kebab-case name, e.g. `unknown-field`.
            pub fn slug(self) -> &'static str {
                match self { $(Code::$variant => $slug),* }
            }
        }
    };
}

codes! {
    ReadFailed = "TF100", "read-failed";
    NotUtf8 = "TF101", "not-utf8";
    FileTooLarge = "TF102", "file-too-large";
    YamlSyntax = "TF103", "yaml-syntax";
    YamlLimit = "TF104", "yaml-limit";
    NoManifests = "TF105", "no-manifests";
    NotAMapping = "TF200", "not-a-mapping";
    MissingKind = "TF201", "missing-kind";
    UnknownKind = "TF202", "unknown-kind";
    UnknownField = "TF203", "unknown-field";
    MissingField = "TF204", "missing-field";
    WrongType = "TF205", "wrong-type";
    InvalidName = "TF206", "invalid-name";
    UnsupportedApiVersion = "TF207", "unsupported-api-version";
    InvalidValue = "TF208", "invalid-value";
    InvalidGuid = "TF300", "invalid-guid";
    InvalidEmail = "TF301", "invalid-email";
    InvalidUrl = "TF302", "invalid-url";
    UnknownRole = "TF303", "unknown-role";
    InvalidSelector = "TF304", "invalid-selector";
    InvalidLabel = "TF305", "invalid-label";
    InvalidScope = "TF306", "invalid-scope";
    DuplicateName = "TF400", "duplicate-name";
    UnknownTenant = "TF401", "unknown-tenant";
    UnknownGuest = "TF402", "unknown-guest";
    ImplicitTenantCollision = "TF403", "implicit-tenant-collision";
    GuestNotInTenant = "TF404", "guest-not-in-tenant";
    TenantNotMapped = "TF405", "tenant-not-mapped";
    DuplicateMicrosoftTenantId = "TF406", "duplicate-microsoft-tenant-id";
    DuplicateEmail = "TF407", "duplicate-email";
    FormerNameConflict = "TF408", "former-name-conflict";
    UnknownOrganization = "TF409", "unknown-organization";
    OrganizationNotInTenant = "TF410", "organization-not-in-tenant";
    UnroutedUsers = "TF411", "unrouted-users";
    DuplicateSync = "TF412", "duplicate-sync";
    RouteNeverMatches = "TF413", "route-never-matches";
    DuplicatePolicy = "TF414", "duplicate-policy";
    AutoExtendGlobalAdministrator = "TF415", "auto-extend-global-administrator";
    RoleNotInRelationship = "TF416", "role-not-in-relationship";
    DuplicateDisplayName = "TF417", "duplicate-display-name";
    SelectorMatchesNothing = "TF500", "selector-matches-nothing";
    DuplicateRole = "TF501", "duplicate-role";
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A place a diagnostic points at, with what to say there.
#[derive(Clone, Debug)]
pub struct Label {
    pub loc: Loc,
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// The first label is the primary location (file:line:column); others give context.
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, loc: Loc, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, loc, message)
    }

    pub fn warning(code: Code, loc: Loc, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, loc, message)
    }

    fn new(severity: Severity, code: Code, loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            labels: vec![Label {
                loc,
                message: String::new(),
            }],
            help: None,
        }
    }

    /// Text shown under the primary location (defaults to nothing: the message says it).
    pub fn with_label(mut self, message: impl Into<String>) -> Self {
        self.labels[0].message = message.into();
        self
    }

    pub fn with_secondary(mut self, loc: Loc, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            loc,
            message: message.into(),
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn primary(&self) -> Loc {
        self.labels[0].loc
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Orders diagnostics by file, then position, then code, so output is stable run to run.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| (d.primary().file, d.primary().offset, d.code));
}

/// A diagnostic with its locations resolved to paths, lines and columns: the JSON output form.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvedDiagnostic {
    pub severity: Severity,
    pub code: Code,
    pub name: &'static str,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The offending text at the primary location.
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<ResolvedLabel>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResolvedLabel {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn resolve(&self, sources: &SourceSet) -> ResolvedDiagnostic {
        let primary = self.primary();
        let file = sources.file(primary.file);
        let (line, column) = file.line_col(primary.offset);
        ResolvedDiagnostic {
            severity: self.severity,
            code: self.code,
            name: self.code.slug(),
            message: self.message.clone(),
            file: file.path.clone(),
            line,
            column,
            text: file.slice(primary).to_string(),
            help: self.help.clone(),
            related: self.labels[1..]
                .iter()
                .map(|l| {
                    let f = sources.file(l.loc.file);
                    let (line, column) = f.line_col(l.loc.offset);
                    ResolvedLabel {
                        file: f.path.clone(),
                        line,
                        column,
                        message: l.message.clone(),
                    }
                })
                .collect(),
        }
    }
}

/// Up to three candidates close to `input` (case-insensitive), best first, for "did you mean".
pub fn nearest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let needle = input.to_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&needle, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// "did you mean `a`, `b`?" or nothing.
pub fn did_you_mean(suggestions: &[&str]) -> Option<String> {
    if suggestions.is_empty() {
        return None;
    }
    let list: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
    Some(format!("did you mean {}?", list.join(" or ")))
}
