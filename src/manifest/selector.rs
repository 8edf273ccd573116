//! Label selectors, in the Kubernetes syntax MSP engineers already know:
//! `tier=gold`, `tier!=bronze`, `tier in (gold, silver)`, `region notin (eu)`, `managed`,
//! `!legacy`, joined by commas (all must hold). A mapping `{tier: gold}` means equality on
//! every key. An empty selector matches every tenant.

use std::fmt;

use crate::manifest::format::{check_label_key, check_label_value};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    pub fn key(&self) -> &str {
        match self {
            Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::NotExists(k) => k,
        }
    }

    pub fn matches(&self, labels: &crate::model::Labels) -> bool {
        let value = labels.get(self.key()).map(|v| &**v);
        match self {
            Requirement::Equals(_, v) => value == Some(v.as_str()),
            Requirement::NotEquals(_, v) => value != Some(v.as_str()),
            Requirement::In(_, vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(_, vs) => value.is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(_) => value.is_some(),
            Requirement::NotExists(_) => value.is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(", ")),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(", ")),
            Requirement::Exists(k) => write!(f, "{k}"),
            Requirement::NotExists(k) => write!(f, "!{k}"),
        }
    }
}

/// All requirements must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

impl Selector {
    pub fn matches(&self, labels: &crate::model::Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Equality on every key of a mapping.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Selector {
            requirements: labels
                .into_iter()
                .map(|(k, v)| Requirement::Equals(k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Parses the string form; errors carry the byte range in `text` at fault.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        Parser {
            tokens: tokenize(text)?,
            pos: 0,
            end: text.len(),
        }
        .selector()
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(", "))
    }
}

/// What is wrong in a selector and where (byte offsets into the selector text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Not,
    Eq,
    NotEq,
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize, usize)>, SelectorError> {
    let mut tokens = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => Tok::Open,
            b')' => Tok::Close,
            b',' => Tok::Comma,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 1;
                Tok::NotEq
            }
            b'!' => Tok::Not,
            b'=' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
                Tok::Eq
            }
            c if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/') => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'-' | b'_' | b'.' | b'/'))
                {
                    i += 1;
                }
                tokens.push((Tok::Word(text[start..i].to_string()), start, i - start));
                continue;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(SelectorError {
                    offset: i,
                    len: ch.len_utf8(),
                    message: format!("unexpected character '{ch}'"),
                });
            }
        };
        i += 1;
        tokens.push((tok, start, i - start));
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(Tok, usize, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _, _)| t)
    }

    fn error_here(&self, message: impl Into<String>) -> SelectorError {
        let (offset, len) = self
            .tokens
            .get(self.pos)
            .map_or((self.end, 0), |(_, o, l)| (*o, *l));
        SelectorError {
            offset,
            len,
            message: message.into(),
        }
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.tokens.get(self.pos).map(|(t, _, _)| t.clone());
        self.pos += 1;
        tok
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        if self.tokens.is_empty() {
            return Ok(Selector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            match self.peek() {
                None => break,
                Some(Tok::Comma) => {
                    self.pos += 1;
                }
                Some(_) => return Err(self.error_here("expected ',' between requirements")),
            }
        }
        Ok(Selector { requirements })
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Some(Tok::Word(w)) if w != "in" && w != "notin" => {
                let w = w.clone();
                if let Err(e) = check_label_key(&w) {
                    return Err(self.error_here(format!("label key '{w}': {e}")));
                }
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.error_here("expected a label key")),
        }
    }

    fn value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                if let Err(e) = check_label_value(&w) {
                    return Err(self.error_here(format!("label value '{w}': {e}")));
                }
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.error_here("expected a label value")),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Requirement::NotExists(self.key()?));
        }
        let key = self.key()?;
        match self.peek() {
            None | Some(Tok::Comma) => Ok(Requirement::Exists(key)),
            Some(Tok::Eq) => {
                self.pos += 1;
                Ok(Requirement::Equals(key, self.value()?))
            }
            Some(Tok::NotEq) => {
                self.pos += 1;
                Ok(Requirement::NotEquals(key, self.value()?))
            }
            Some(Tok::Word(w)) if w == "in" || w == "notin" => {
                let negate = w == "notin";
                self.pos += 1;
                let values = self.value_set()?;
                Ok(if negate {
                    Requirement::NotIn(key, values)
                } else {
                    Requirement::In(key, values)
                })
            }
            Some(_) => Err(self.error_here("expected '=', '!=', 'in', 'notin' or ','")),
        }
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        if self.peek() != Some(&Tok::Open) {
            return Err(self.error_here("expected '(' to start the set of values"));
        }
        self.pos += 1;
        let mut values = vec![self.value()?];
        loop {
            match self.next() {
                Some(Tok::Comma) => values.push(self.value()?),
                Some(Tok::Close) => break,
                _ => {
                    self.pos -= 1;
                    return Err(self.error_here("expected ',' or ')' in the set of values"));
                }
            }
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> crate::model::Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let gold = labels(&[("tier", "gold"), ("region", "us")]);
        let legacy = labels(&[("tier", "bronze"), ("legacy", "")]);
        let cases = [
            ("tier=gold", true, false),
            ("tier==gold", true, false),
            ("tier!=gold", false, true),
            ("tier in (gold, silver)", true, false),
            ("tier notin (gold)", false, true),
            ("legacy", false, true),
            ("!legacy", true, false),
            ("tier in (gold,bronze), !legacy", true, false),
            ("", true, true),
            ("region notin (eu)", true, true),
        ];
        for (text, on_gold, on_legacy) in cases {
            let s = Selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(s.matches(&gold), on_gold, "{text} on gold");
            assert_eq!(s.matches(&legacy), on_legacy, "{text} on legacy");
        }
    }

    #[test]
    fn round_trips_through_display() {
        let s = Selector::parse("tier in (gold,silver),!legacy,env!=dev").unwrap();
        assert_eq!(s.to_string(), "tier in (gold, silver), !legacy, env!=dev");
        assert_eq!(Selector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn errors_point_at_the_fault() {
        let e = Selector::parse("tier in gold").unwrap_err();
        assert_eq!((e.offset, e.len), (8, 4));
        let e = Selector::parse("tier = ").unwrap_err();
        assert_eq!(e.offset, 7);
        let e = Selector::parse("tier in (a b)").unwrap_err();
        assert_eq!(e.offset, 11);
        let e = Selector::parse("tier @ x").unwrap_err();
        assert_eq!(e.offset, 5);
        let e = Selector::parse("a,,b").unwrap_err();
        assert_eq!(e.offset, 2);
    }
}
