//! The OData query options the sandbox understands: `$filter` (eq, ne, startswith,
//! `otherMails/any(m:m eq '...')`, and, or, not, parentheses), `$select`, `$top`.

use serde_json::Value;

use super::directory::GraphError;

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Eq(String, Value),
    Ne(String, Value),
    StartsWith(String, String),
    /// `endswith(prop, 'suffix')`: an advanced query.
    EndsWith(String, String),
    /// `collection/any(x: x eq value)`
    AnyEq(String, Value),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

fn invalid(text: &str, why: &str) -> GraphError {
    GraphError::new(
        400,
        "BadRequest",
        format!("Invalid filter clause: {why} in '{text}'"),
    )
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
    Colon,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, GraphError> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(invalid(text, "unterminated string")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-') => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '/' | '.' | '_' | '-'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(invalid(text, &format!("unexpected '{other}'"))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser<'_> {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.pos) {
            Some(Tok::Ident(w)) => Some(w.as_str()),
            _ => None,
        }
    }
    fn expect(&mut self, tok: Tok) -> Result<(), GraphError> {
        if self.tokens.get(self.pos) == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(invalid(self.text, &format!("expected {tok:?}")))
        }
    }
    fn or(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.and()?;
        while self.peek_word() == Some("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.unary()?;
        while self.peek_word() == Some("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Filter, GraphError> {
        if self.peek_word() == Some("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.tokens.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let inner = self.or()?;
            self.expect(Tok::Close)?;
            return Ok(inner);
        }
        let Some(Tok::Ident(word)) = self.tokens.get(self.pos).cloned() else {
            return Err(invalid(self.text, "expected a property"));
        };
        self.pos += 1;
        if word.eq_ignore_ascii_case("startswith") || word.eq_ignore_ascii_case("endswith") {
            self.expect(Tok::Open)?;
            let Some(Tok::Ident(prop)) = self.tokens.get(self.pos).cloned() else {
                return Err(invalid(self.text, "startswith/endswith needs a property"));
            };
            self.pos += 1;
            self.expect(Tok::Comma)?;
            let Some(Tok::Str(text)) = self.tokens.get(self.pos).cloned() else {
                return Err(invalid(self.text, "startswith/endswith needs a string"));
            };
            self.pos += 1;
            self.expect(Tok::Close)?;
            return Ok(if word.eq_ignore_ascii_case("startswith") {
                Filter::StartsWith(prop, text)
            } else {
                Filter::EndsWith(prop, text)
            });
        }
        if let Some(collection) = word.strip_suffix("/any") {
            self.expect(Tok::Open)?;
            let Some(Tok::Ident(var)) = self.tokens.get(self.pos).cloned() else {
                return Err(invalid(self.text, "any() needs a variable"));
            };
            self.pos += 1;
            self.expect(Tok::Colon)?;
            match self.tokens.get(self.pos) {
                Some(Tok::Ident(v)) if *v == var => self.pos += 1,
                _ => return Err(invalid(self.text, "any() compares its variable")),
            }
            if self.peek_word() != Some("eq") {
                return Err(invalid(self.text, "only 'eq' is supported inside any()"));
            }
            self.pos += 1;
            let value = self.literal()?;
            self.expect(Tok::Close)?;
            return Ok(Filter::AnyEq(collection.to_string(), value));
        }
        let op = self.peek_word().map(str::to_string);
        self.pos += 1;
        let value = self.literal()?;
        match op.as_deref() {
            Some("eq") => Ok(Filter::Eq(word, value)),
            Some("ne") => Ok(Filter::Ne(word, value)),
            _ => Err(invalid(
                self.text,
                "only eq and ne comparisons are supported",
            )),
        }
    }
    fn literal(&mut self) -> Result<Value, GraphError> {
        let tok = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Ident(w)) if w == "true" => Ok(Value::Bool(true)),
            Some(Tok::Ident(w)) if w == "false" => Ok(Value::Bool(false)),
            Some(Tok::Ident(w)) if w == "null" => Ok(Value::Null),
            Some(Tok::Ident(w)) if w.parse::<f64>().is_ok() => {
                Ok(serde_json::from_str(&w).unwrap_or(Value::Null))
            }
            _ => Err(invalid(self.text, "expected a literal")),
        }
    }
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, GraphError> {
        let mut parser = Parser {
            text,
            tokens: tokenize(text)?,
            pos: 0,
        };
        let filter = parser.or()?;
        if parser.pos != parser.tokens.len() {
            return Err(invalid(text, "unexpected trailing input"));
        }
        Ok(filter)
    }

    /// The first operator that only advanced queries allow (`ConsistencyLevel: eventual` and
    /// `$count=true`), as Graph names it in its error, if the filter uses one.
    pub fn advanced_operator(&self) -> Option<&'static str> {
        match self {
            Filter::Ne(..) => Some("NotEqualsMatch"),
            Filter::Not(_) => Some("Not"),
            Filter::EndsWith(..) => Some("EndsWith"),
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.advanced_operator().or_else(|| b.advanced_operator())
            }
            Filter::Eq(..) | Filter::StartsWith(..) | Filter::AnyEq(..) => None,
        }
    }

    /// Every property the filter reads, in order.
    pub fn properties(&self) -> Vec<&str> {
        match self {
            Filter::Eq(p, _)
            | Filter::Ne(p, _)
            | Filter::StartsWith(p, _)
            | Filter::EndsWith(p, _)
            | Filter::AnyEq(p, _) => vec![p.as_str()],
            Filter::And(a, b) | Filter::Or(a, b) => {
                let mut all = a.properties();
                all.extend(b.properties());
                all
            }
            Filter::Not(a) => a.properties(),
        }
    }

    /// Evaluates against an object's JSON; string equality ignores case, as Graph's does for
    /// mail and names.
    pub fn matches(&self, object: &Value) -> bool {
        fn same(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::String(x), Value::String(y)) => x.to_lowercase() == y.to_lowercase(),
                _ => a == b,
            }
        }
        // A complex property's member by its path (`customer/tenantId`), as OData reads it.
        fn at<'v>(object: &'v Value, path: &str) -> Option<&'v Value> {
            path.split('/').try_fold(object, |v, key| v.get(key))
        }
        match self {
            Filter::Eq(p, v) => same(at(object, p).unwrap_or(&Value::Null), v),
            Filter::Ne(p, v) => !same(at(object, p).unwrap_or(&Value::Null), v),
            Filter::StartsWith(p, prefix) => at(object, p)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().starts_with(&prefix.to_lowercase())),
            Filter::EndsWith(p, suffix) => at(object, p)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().ends_with(&suffix.to_lowercase())),
            Filter::AnyEq(p, v) => at(object, p)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| same(i, v))),
            Filter::And(a, b) => a.matches(object) && b.matches(object),
            Filter::Or(a, b) => a.matches(object) || b.matches(object),
            Filter::Not(a) => !a.matches(object),
        }
    }
}

/// Keeps only `select` properties (and `@odata` annotations); `None` keeps `default`.
pub fn project(mut object: Value, select: Option<&[String]>, default: Option<&[&str]>) -> Value {
    if let Value::Object(map) = &mut object {
        match (select, default) {
            (Some(fields), _) => {
                map.retain(|k, _| fields.iter().any(|f| f.eq_ignore_ascii_case(k)))
            }
            (None, Some(fields)) => map.retain(|k, _| fields.contains(&k.as_str())),
            (None, None) => {}
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_users_like_graph() {
        let guest = json!({"mail": "Bob@Contoso.com", "userType": "Guest", "otherMails": ["bob@contoso.com", "b@x.example"], "displayName": "Bob O'Neil"});
        let cases = [
            ("mail eq 'bob@contoso.com'", true),
            ("userType eq 'Member'", false),
            ("otherMails/any(m:m eq 'B@X.EXAMPLE')", true),
            (
                "mail eq 'x@y.z' or otherMails/any(x:x eq 'bob@contoso.com')",
                true,
            ),
            (
                "userType eq 'Guest' and (mail eq 'no@x.y' or startswith(displayName,'bob'))",
                true,
            ),
            ("not (userType eq 'Guest')", false),
            ("displayName eq 'Bob O''Neil'", true),
            ("mail ne null", true),
        ];
        for (text, expected) in cases {
            let f = Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(f.matches(&guest), expected, "{text}");
        }
        assert_eq!(Filter::parse("mail gt 'a'").unwrap_err().status, 400);
        assert_eq!(Filter::parse("mail eq 'a").unwrap_err().status, 400);
    }
}
