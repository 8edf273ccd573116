//! YAML text -> a tree of [`Node`]s that keep their byte spans.
//!
//! serde-saphyr does the parsing (with input budgets against alias bombs and deep nesting); we
//! deserialize into a generic spanned tree rather than straight into typed structs so one pass
//! can report every problem in a document, not only the first one serde would stop at.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{FileId, Loc, SourceFile};

/// Documents per file, nodes and alias replays: generous for hand-written and generated fleets,
/// small enough that a "billion laughs" file fails in milliseconds.
pub const MAX_DOCUMENTS_PER_FILE: usize = 100_000;
const MAX_NODES_PER_FILE: usize = 4_000_000;
const MAX_ALIAS_REPLAYED_EVENTS: usize = 100_000;
const MAX_DEPTH: usize = 32;

/// A YAML value with the byte range it was written at.
#[derive(Clone, Debug)]
pub struct Node {
    pub value: Value,
    /// Byte offset and length in the file's text.
    pub offset: u32,
    pub len: u32,
}

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What the value is, for "expected a string, found a list" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn loc(&self, file: FileId) -> Loc {
        Loc {
            file,
            offset: self.offset,
            len: self.len,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned: Spanned<Value> = Spanned::deserialize(deserializer)?;
        let span = spanned.referenced.span();
        Ok(Node {
            value: spanned.value,
            offset: span.byte_offset().unwrap_or(0) as u32,
            len: span.byte_len().unwrap_or(0) as u32,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

fn options() -> serde_saphyr::Options {
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = MAX_ALIAS_REPLAYED_EVENTS;
    alias_limits.max_replay_stack_depth = 16;
    let mut options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: MAX_DOCUMENTS_PER_FILE,
            max_nodes: MAX_NODES_PER_FILE,
            max_events: MAX_NODES_PER_FILE * 2,
            max_depth: MAX_DEPTH,
        },
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    options.alias_limits = alias_limits;
    options
}

/// Parses every document of one file. A YAML error fails the whole file: after a syntax error
/// the rest of the file cannot be trusted.
pub fn parse_documents(file_id: FileId, file: &SourceFile) -> Result<Vec<Node>, Diagnostic> {
    serde_saphyr::from_str_multiple_with_options::<Node, Vec<Node>>(&file.text, options()).map_err(
        |err| {
            let (offset, len) = err
                .location()
                .map(|l| {
                    let span = l.span();
                    match (span.byte_offset(), span.byte_len()) {
                        (Some(o), Some(n)) => (o as usize, n as usize),
                        _ => (byte_offset_of(&file.text, l.line(), l.column()), 1),
                    }
                })
                .unwrap_or((0, 0));
            let mut root = &err;
            while let serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } = root {
                root = error;
            }
            let is_limit = matches!(
                root,
                serde_saphyr::Error::Budget { .. }
                    | serde_saphyr::Error::AliasReplayLimitExceeded { .. }
                    | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
                    | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
            );
            let message = clean_message(&err.to_string());
            let loc = Loc::new(file_id, offset.min(file.text.len()), len);
            if is_limit {
                Diagnostic::error(Code::YamlLimit, loc, format!("YAML too large or too deeply aliased: {message}"))
                    .with_help("tenantform limits aliases, nesting and size per file so a malicious or broken file cannot exhaust memory; write the values out or split the file")
            } else {
                Diagnostic::error(Code::YamlSyntax, loc, format!("invalid YAML: {message}"))
                    .with_help("fix the YAML syntax at this position; a YAML-aware editor with the schema line shows it as you type")
            }
        },
    )
}

/// serde-saphyr prefixes "error: line L column C: "; we report the location ourselves.
fn clean_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let stripped = first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .map(|(_, msg)| msg)
        .unwrap_or(first);
    stripped.to_string()
}

/// Byte offset of a 1-based line and character column, for errors reported without one.
fn byte_offset_of(text: &str, line: u64, column: u64) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            return offset
                + l.char_indices()
                    .nth(column.saturating_sub(1) as usize)
                    .map_or(l.len(), |(b, _)| b);
        }
        offset += l.len();
    }
    text.len()
}
