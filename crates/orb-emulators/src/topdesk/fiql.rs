//! FIQL as the emulator understands it: `;` (AND) binds tighter than `,` (OR),
//! parentheses group, values are bare or quoted with `'` or `"` (backslash escapes),
//! `=in=(…)`/`=out=(…)` take lists. Evaluation works on a JSON document by dotted path;
//! arrays fan out (any element may match). String comparisons ignore case — TOPdesk
//! does not document its collation, and orb must not depend on it either way.

use serde_json::Value;

use super::json::parse_time;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Cmp {
        field: String,
        op: String,
        values: Vec<String>,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Parses a query; the error text says where it went wrong.
pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let expr = p.or()?;
    if p.pos != p.chars.len() {
        return Err(format!("unexpected character at position {}", p.pos));
    }
    Ok(expr)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(',') {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.primary()?];
        while self.peek() == Some(';') {
            self.pos += 1;
            parts.push(self.primary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn primary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some('(') {
            self.pos += 1;
            let inner = self.or()?;
            if self.peek() != Some(')') {
                return Err("missing closing parenthesis".into());
            }
            self.pos += 1;
            return Ok(inner);
        }
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '.' || c == '_') {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(format!("expected a field name at position {start}"));
        }
        let field: String = self.chars[start..self.pos].iter().collect();
        let op = self.operator()?;
        let values = if matches!(op.as_str(), "=in=" | "=out=") {
            if self.peek() != Some('(') {
                return Err("=in= and =out= need a parenthesised list".into());
            }
            self.pos += 1;
            let mut values = vec![self.value()?];
            while self.peek() == Some(',') {
                self.pos += 1;
                values.push(self.value()?);
            }
            if self.peek() != Some(')') {
                return Err("missing closing parenthesis in list".into());
            }
            self.pos += 1;
            values
        } else {
            vec![self.value()?]
        };
        Ok(Expr::Cmp { field, op, values })
    }

    fn operator(&mut self) -> Result<String, String> {
        let rest: String = self.chars[self.pos..].iter().take(6).collect();
        for op in ["==", "!="] {
            if rest.starts_with(op) {
                self.pos += 2;
                return Ok(op.to_owned());
            }
        }
        if rest.starts_with('=') {
            let end = self.chars[self.pos + 1..]
                .iter()
                .position(|c| *c == '=')
                .map(|i| self.pos + 1 + i);
            if let Some(end) = end {
                let op: String = self.chars[self.pos..=end].iter().collect();
                if matches!(
                    op.as_str(),
                    "=gt=" | "=ge=" | "=lt=" | "=le=" | "=sw=" | "=in=" | "=out="
                ) {
                    self.pos = end + 1;
                    return Ok(op);
                }
                return Err(format!("unknown operator {op}"));
            }
        }
        Err(format!("expected an operator at position {}", self.pos))
    }

    fn value(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => return Err("unterminated quoted value".into()),
                        Some('\\') => {
                            self.pos += 1;
                            match self.peek() {
                                Some(c) => out.push(c),
                                None => return Err("dangling escape".into()),
                            }
                            self.pos += 1;
                        }
                        Some(c) if c == q => {
                            self.pos += 1;
                            return Ok(out);
                        }
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if !matches!(c, ';' | ',' | ')' | '(' | '"' | '\''))
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(format!("expected a value at position {start}"));
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
        }
    }
}

impl Expr {
    /// Every field the expression names.
    pub(crate) fn fields(&self) -> Vec<&str> {
        match self {
            Self::Cmp { field, .. } => vec![field.as_str()],
            Self::And(parts) | Self::Or(parts) => parts.iter().flat_map(Self::fields).collect(),
        }
    }

    /// Does `doc` satisfy the expression?
    pub(crate) fn matches(&self, doc: &Value) -> bool {
        match self {
            Self::And(parts) => parts.iter().all(|p| p.matches(doc)),
            Self::Or(parts) => parts.iter().any(|p| p.matches(doc)),
            Self::Cmp { field, op, values } => {
                let mut found = Vec::new();
                collect(doc, &field.split('.').collect::<Vec<_>>(), &mut found);
                match op.as_str() {
                    "!=" => !found
                        .iter()
                        .any(|v| compare(v, &values[0]) == Some(std::cmp::Ordering::Equal)),
                    "=out=" => !found.iter().any(|v| {
                        values
                            .iter()
                            .any(|x| compare(v, x) == Some(std::cmp::Ordering::Equal))
                    }),
                    _ => found.iter().any(|v| test(v, op, values)),
                }
            }
        }
    }
}

fn collect<'a>(doc: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match doc {
        Value::Array(items) => {
            for item in items {
                collect(item, path, out);
            }
        }
        Value::Object(map) => match path.split_first() {
            None => {}
            Some((head, rest)) => {
                if let Some(next) = map.get(*head) {
                    if rest.is_empty() {
                        match next {
                            Value::Array(items) => out.extend(items.iter()),
                            other => out.push(other),
                        }
                    } else {
                        collect(next, rest, out);
                    }
                }
            }
        },
        _ => {}
    }
}

fn test(value: &Value, op: &str, wanted: &[String]) -> bool {
    use std::cmp::Ordering::*;
    match op {
        "==" => compare(value, &wanted[0]) == Some(Equal),
        "=in=" => wanted.iter().any(|w| compare(value, w) == Some(Equal)),
        "=gt=" => compare(value, &wanted[0]) == Some(Greater),
        "=ge=" => matches!(compare(value, &wanted[0]), Some(Greater | Equal)),
        "=lt=" => compare(value, &wanted[0]) == Some(Less),
        "=le=" => matches!(compare(value, &wanted[0]), Some(Less | Equal)),
        "=sw=" => value
            .as_str()
            .is_some_and(|s| s.to_lowercase().starts_with(&wanted[0].to_lowercase())),
        _ => false,
    }
}

fn compare(value: &Value, wanted: &str) -> Option<std::cmp::Ordering> {
    match value {
        Value::Bool(b) => wanted.parse::<bool>().ok().map(|w| b.cmp(&w)),
        Value::Number(n) => {
            let have = n.as_f64()?;
            let want = wanted.parse::<f64>().ok()?;
            have.partial_cmp(&want)
        }
        Value::String(s) => {
            if let (Some(a), Some(b)) = (parse_time(s), parse_time(wanted)) {
                return Some(a.cmp(&b));
            }
            Some(s.to_lowercase().cmp(&wanted.to_lowercase()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn precedence_quotes_and_lists() {
        let e = parse(r#"a==1;(b=="x y",b=='z\'q');c=in=(p,q)"#).unwrap();
        assert_eq!(e.fields(), vec!["a", "b", "b", "c"]);
        assert!(e.matches(&json!({"a": 1, "b": "z'q", "c": "q"})));
        assert!(!e.matches(&json!({"a": 1, "b": "nope", "c": "q"})));
    }

    #[test]
    fn dates_arrays_and_case() {
        let doc = json!({"plannedStartDate": "2026-05-04T08:00:00Z",
                         "reservedFacilities": [{"location": {"id": "A"}}, {"location": {"id": "B"}}],
                         "email": "Eva@Corp.nl"});
        assert!(
            parse("plannedStartDate=ge=2026-05-04T10:00:00+02:00")
                .unwrap()
                .matches(&doc)
        );
        assert!(
            parse("reservedFacilities.location.id==\"b\"")
                .unwrap()
                .matches(&doc)
        );
        assert!(parse("email==\"eva@corp.nl\"").unwrap().matches(&doc));
        assert!(!parse("email!=\"eva@corp.nl\"").unwrap().matches(&doc));
    }

    #[test]
    fn arbitrary_queries_never_panic() {
        let alphabet: Vec<char> = "ab.=!;,()'\"\\gtlsinou0129-:TZé ".chars().collect();
        let doc = json!({"a": "x", "b": [1, {"c": true}], "d": "2026-05-04T08:00:00Z"});
        let mut state = 7u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            for _ in 0..(state >> 60) + 1 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push(alphabet[((state >> 33) % alphabet.len() as u64) as usize]);
            }
            if let Ok(expr) = parse(&text) {
                let _ = expr.matches(&doc);
                let _ = expr.fields();
            }
        }
    }

    #[test]
    fn malformed_queries_are_errors() {
        for bad in ["", "a", "a==", "a=xx=1", "(a==1", "a==\"x", "a=in=1", ";"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
