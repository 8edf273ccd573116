//! Typed decoding of [`Node`] trees that reports every problem instead of stopping at the first.

use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::manifest::yaml::{Node, Value};
use crate::source::{FileId, Loc, Located, SourceFile};

/// Decoding context for one file: where we are and where problems go.
pub struct Cx<'a> {
    pub file_id: FileId,
    pub file: &'a SourceFile,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl Cx<'_> {
    pub fn loc(&self, node: &Node) -> Loc {
        node.loc(self.file_id)
    }

    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// Reports "expected X, found Y" at `node`.
    pub fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        let loc = self.loc(node);
        self.report(
            Diagnostic::error(
                Code::WrongType,
                loc,
                format!("{what} must be {expected}, found {}", node.value.describe()),
            )
            .with_label(format!("expected {expected}")),
        );
    }

    /// A string value. Plain scalars YAML would read as numbers or booleans (`tier: 1`) are
    /// taken as written, which is what a person means in a string field.
    pub fn string(&mut self, node: &Node, what: &str) -> Option<Located<String>> {
        let loc = self.loc(node);
        match &node.value {
            Value::String(s) => Some(Located::new(s.clone(), loc)),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                Some(Located::new(self.file.slice(loc).trim().to_string(), loc))
            }
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    /// A non-empty string value.
    pub fn non_empty_string(&mut self, node: &Node, what: &str) -> Option<Located<String>> {
        let s = self.string(node, what)?;
        if s.value.trim().is_empty() {
            self.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    s.loc,
                    format!("{what} must not be empty"),
                )
                .with_label("empty"),
            );
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<Located<bool>> {
        match node.value {
            Value::Bool(b) => Some(Located::new(b, self.loc(node))),
            _ => {
                self.wrong_type(node, what, "true or false");
                None
            }
        }
    }

    /// A list of strings; a single string is not silently promoted (it is usually a mistake).
    pub fn string_list(&mut self, node: &Node, what: &str) -> Option<Vec<Located<String>>> {
        match &node.value {
            Value::Seq(items) => Some(
                items
                    .iter()
                    .filter_map(|item| {
                        self.non_empty_string(item, &format!("each entry of {what}"))
                    })
                    .collect(),
            ),
            _ => {
                self.wrong_type(node, what, "a list");
                None
            }
        }
    }

    /// A mapping of strings to strings, with duplicate keys left to the YAML layer.
    pub fn string_map(
        &mut self,
        node: &Node,
        what: &str,
    ) -> Option<Vec<(Located<String>, Located<String>)>> {
        match &node.value {
            Value::Map(entries) => Some(
                entries
                    .iter()
                    .filter_map(|(k, v)| {
                        let key = self.string(k, &format!("a key of {what}"))?;
                        let value = self.string(v, &format!("the value of `{}`", key.value))?;
                        Some((key, value))
                    })
                    .collect(),
            ),
            Value::Null => Some(Vec::new()),
            _ => {
                self.wrong_type(node, what, "a mapping");
                None
            }
        }
    }

    /// Opens a mapping whose keys must come from `allowed`, reporting every unknown key.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        self.mapping_fields(node, what, allowed, false)
    }

    /// Like [`Cx::fields`] for a whole document, whose `kind` was read already.
    pub fn document_fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        self.mapping_fields(node, what, allowed, true)
    }

    fn mapping_fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &'static [&'static str],
        is_document: bool,
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, what, "a mapping");
            return None;
        };
        let mut known = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Value::String(name) = &key.value else {
                self.wrong_type(key, &format!("a field name in {what}"), "a string");
                continue;
            };
            if allowed.contains(&name.as_str()) {
                known.push((name.as_str(), key, value));
            } else if !(is_document && name == "kind") {
                let suggestions = nearest(name, allowed.iter().copied());
                let mut diagnostic = Diagnostic::error(
                    Code::UnknownField,
                    self.loc(key),
                    format!("unknown field `{name}` in {what}"),
                )
                .with_label("unknown field");
                diagnostic =
                    diagnostic.with_help(did_you_mean(&suggestions).unwrap_or_else(|| {
                        format!("the fields of {what} are: {}", allowed.join(", "))
                    }));
                self.report(diagnostic);
            }
        }
        Some(Fields {
            node,
            what: what.to_string(),
            entries: known,
        })
    }
}

/// The known fields of one mapping.
pub struct Fields<'n> {
    node: &'n Node,
    what: String,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| *v)
    }

    /// The location of the mapping itself, for problems about the whole object.
    pub fn loc(&self, cx: &Cx) -> Loc {
        cx.loc(self.node)
    }

    /// A field that must be present; reports where the mapping starts when it is not.
    pub fn required(&self, cx: &mut Cx, name: &str) -> Option<&'n Node> {
        let found = self.get(name);
        if found.is_none() {
            let loc = self.loc(cx);
            cx.report(
                Diagnostic::error(
                    Code::MissingField,
                    loc,
                    format!("missing required field `{name}` in {}", self.what),
                )
                .with_label(format!("`{name}` is missing here"))
                .with_help(format!("add `{name}:` to this {}", self.what)),
            );
        }
        found
    }
}
