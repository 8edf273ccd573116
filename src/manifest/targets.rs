//! Which tenants a GuestUser or RoleAssignment applies to: a list of names or a label selector.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::manifest::decode::Cx;
use crate::manifest::selector::Selector;
use crate::manifest::yaml::{Node, Value};
use crate::manifest::{decode_reference, format};
use crate::source::{Loc, Located};

/// Either a list of tenant names or `{selector: ...}`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TenantTargets {
    /// Tenant names (the `name` of Tenant documents or of implicit tenants).
    Names(Vec<Located<String>>),
    /// Every mapped tenant whose labels match.
    Selector {
        #[schemars(with = "SelectorSchema")]
        selector: Located<Selector>,
    },
}

/// Schema shape of a selector: Kubernetes selector syntax or a mapping of required labels.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum SelectorSchema {
    /// e.g. `tier in (gold, silver), !legacy`
    Expression(String),
    /// e.g. `{tier: gold}`: every key must have that value.
    MatchLabels(BTreeMap<String, String>),
}

impl Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// From the string form (`Serialize`'s), for values kept on disk while resolving.
impl<'de> serde::Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Selector::parse(&text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl TenantTargets {
    pub fn decode(cx: &mut Cx, node: &Node) -> Option<TenantTargets> {
        match &node.value {
            Value::Seq(items) => Some(TenantTargets::Names(
                items
                    .iter()
                    .filter_map(|item| decode_reference(cx, item, "each entry of `tenants`"))
                    .collect(),
            )),
            Value::Map(_) => {
                let fields = cx.fields(node, "`tenants`", &["selector"])?;
                let selector = fields.required(cx, "selector")?;
                decode_selector(cx, selector).map(|selector| TenantTargets::Selector { selector })
            }
            _ => {
                cx.wrong_type(
                    node,
                    "`tenants`",
                    "a list of tenant names or {selector: ...}",
                );
                None
            }
        }
    }
}

fn decode_selector(cx: &mut Cx, node: &Node) -> Option<Located<Selector>> {
    let loc = cx.loc(node);
    match &node.value {
        Value::Map(_) => {
            let labels = cx.string_map(node, "`selector`")?;
            let mut ok = true;
            for (key, value) in &labels {
                if let Err(reason) = format::check_label_key(&key.value) {
                    ok = false;
                    cx.report(
                        Diagnostic::error(
                            Code::InvalidSelector,
                            key.loc,
                            format!("invalid label key `{}` in selector: {reason}", key.value),
                        )
                        .with_label("invalid label key"),
                    );
                }
                if let Err(reason) = format::check_label_value(&value.value) {
                    ok = false;
                    cx.report(
                        Diagnostic::error(
                            Code::InvalidSelector,
                            value.loc,
                            format!(
                                "invalid label value `{}` in selector: {reason}",
                                value.value
                            ),
                        )
                        .with_label("invalid label value"),
                    );
                }
            }
            ok.then(|| {
                Located::new(
                    Selector::from_labels(
                        labels
                            .iter()
                            .map(|(k, v)| (k.value.as_str(), v.value.as_str())),
                    ),
                    loc,
                )
            })
        }
        _ => {
            let text = cx.string(node, "`selector`")?;
            match Selector::parse(&text.value) {
                Ok(selector) => Some(Located::new(selector, loc)),
                Err(err) => {
                    let raw = cx.file.slice(loc);
                    let inner = if raw == text.value {
                        Some(0)
                    } else if (raw.starts_with('"') || raw.starts_with('\''))
                        && raw[1..].starts_with(&text.value)
                    {
                        Some(1)
                    } else {
                        None
                    };
                    let at = match inner {
                        Some(shift) => Loc {
                            file: loc.file,
                            offset: loc.offset + (shift + err.offset) as u32,
                            len: err.len.max(1) as u32,
                        },
                        None => loc,
                    };
                    cx.report(
                        Diagnostic::error(Code::InvalidSelector, at, format!("invalid selector: {}", err.message))
                            .with_label(err.message.clone())
                            .with_help("selectors look like `tier=gold`, `tier in (gold, silver)`, `!legacy`, joined by commas; or a mapping {tier: gold}"),
                    );
                    None
                }
            }
        }
    }
}
