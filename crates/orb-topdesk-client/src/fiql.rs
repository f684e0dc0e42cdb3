//! A small FIQL builder for TOPdesk `query` parameters.
//!
//! `;` is AND and binds tighter than `,` (OR); a group is parenthesised whenever it
//! sits inside a group of the other kind. Strings are always double-quoted with `"`
//! and `\` escaped, date-times are written in UTC with `Z` (an unencoded `+` would read
//! as a space), booleans and numbers go bare.

use std::fmt;

use jiff::Timestamp;

use crate::time::format_timestamp;

/// A value on the right-hand side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum FiqlValue {
    /// A string; always quoted.
    Text(String),
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// An instant, written in UTC with `Z`.
    Time(Timestamp),
}

impl FiqlValue {
    fn render(&self, out: &mut String) {
        match self {
            Self::Text(text) => {
                out.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Int(i) => out.push_str(&i.to_string()),
            Self::Time(ts) => out.push_str(&format_timestamp(*ts)),
        }
    }
}

impl From<&str> for FiqlValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for FiqlValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<bool> for FiqlValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for FiqlValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<Timestamp> for FiqlValue {
    fn from(value: Timestamp) -> Self {
        Self::Time(value)
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FiqlOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `=gt=`
    Gt,
    /// `=ge=`
    Ge,
    /// `=lt=`
    Lt,
    /// `=le=`
    Le,
    /// `=sw=` (starts with)
    StartsWith,
}

impl FiqlOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Gt => "=gt=",
            Self::Ge => "=ge=",
            Self::Lt => "=lt=",
            Self::Le => "=le=",
            Self::StartsWith => "=sw=",
        }
    }
}

/// A FIQL filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Fiql {
    /// `field<op>value`
    Compare {
        /// Dotted field path, e.g. `reservedFacilities.location.id`.
        field: String,
        /// The operator.
        op: FiqlOp,
        /// The value.
        value: FiqlValue,
    },
    /// `field=in=(a,b,…)`
    In {
        /// Dotted field path.
        field: String,
        /// The accepted values.
        values: Vec<FiqlValue>,
    },
    /// Every part must hold (`;`).
    And(Vec<Fiql>),
    /// At least one part must hold (`,`).
    Or(Vec<Fiql>),
}

impl Fiql {
    /// `field<op>value`.
    pub fn compare(field: impl Into<String>, op: FiqlOp, value: impl Into<FiqlValue>) -> Self {
        Self::Compare {
            field: field.into(),
            op,
            value: value.into(),
        }
    }

    /// `field==value`.
    pub fn eq(field: impl Into<String>, value: impl Into<FiqlValue>) -> Self {
        Self::compare(field, FiqlOp::Eq, value)
    }

    /// `field=ge=value`.
    pub fn ge(field: impl Into<String>, value: impl Into<FiqlValue>) -> Self {
        Self::compare(field, FiqlOp::Ge, value)
    }

    /// `field=lt=value`.
    pub fn lt(field: impl Into<String>, value: impl Into<FiqlValue>) -> Self {
        Self::compare(field, FiqlOp::Lt, value)
    }

    /// `field=in=(values…)`.
    pub fn is_in<V: Into<FiqlValue>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Self::In {
            field: field.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `self;other`, flattening nested ANDs.
    pub fn and(self, other: Fiql) -> Self {
        let mut parts = match self {
            Self::And(parts) => parts,
            single => vec![single],
        };
        match other {
            Self::And(more) => parts.extend(more),
            single => parts.push(single),
        }
        Self::And(parts)
    }

    /// `self,other`, flattening nested ORs.
    pub fn or(self, other: Fiql) -> Self {
        let mut parts = match self {
            Self::Or(parts) => parts,
            single => vec![single],
        };
        match other {
            Self::Or(more) => parts.extend(more),
            single => parts.push(single),
        }
        Self::Or(parts)
    }

    fn render(&self, out: &mut String) {
        match self {
            Self::Compare { field, op, value } => {
                out.push_str(field);
                out.push_str(op.as_str());
                value.render(out);
            }
            Self::In { field, values } => {
                out.push_str(field);
                out.push_str("=in=(");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    value.render(out);
                }
                out.push(')');
            }
            Self::And(parts) => {
                Self::render_group(parts, ';', out, |p| matches!(p, Self::Or(v) if v.len() > 1))
            }
            Self::Or(parts) => Self::render_group(
                parts,
                ',',
                out,
                |p| matches!(p, Self::And(v) if v.len() > 1),
            ),
        }
    }

    fn render_group(
        parts: &[Fiql],
        sep: char,
        out: &mut String,
        needs_parens: impl Fn(&Fiql) -> bool,
    ) {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push(sep);
            }
            // AND binds tighter than OR, so only an OR inside an AND strictly needs
            // brackets; an AND inside an OR gets them too, for readability.
            if needs_parens(part) {
                out.push('(');
                part.render(out);
                out.push(')');
            } else {
                part.render(out);
            }
        }
    }
}

impl fmt::Display for Fiql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.render(&mut out);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_timestamp;

    #[test]
    fn quotes_strings_and_escapes() {
        let q = Fiql::eq("briefDescription", r#"say "hi" \ bye"#);
        assert_eq!(q.to_string(), r#"briefDescription=="say \"hi\" \\ bye""#);
    }

    #[test]
    fn groups_or_inside_and() {
        let window = Fiql::ge(
            "plannedEndDate",
            parse_timestamp("2026-05-01T00:00:00+02:00").unwrap(),
        )
        .and(Fiql::lt(
            "plannedStartDate",
            parse_timestamp("2026-08-01T00:00:00Z").unwrap(),
        ));
        let rooms = Fiql::eq("reservedFacilities.location.id", "a")
            .or(Fiql::eq("reservedFacilities.location.id", "b"));
        let q = window.and(rooms).and(Fiql::eq("archived", false));
        assert_eq!(
            q.to_string(),
            "plannedEndDate=ge=2026-04-30T22:00:00Z;plannedStartDate=lt=2026-08-01T00:00:00Z;\
             (reservedFacilities.location.id==\"a\",reservedFacilities.location.id==\"b\");archived==false"
        );
    }

    #[test]
    fn groups_and_inside_or_and_in_lists() {
        let q = Fiql::eq("a", 1i64)
            .and(Fiql::eq("b", true))
            .or(Fiql::is_in("status", ["planned", "request"]));
        assert_eq!(
            q.to_string(),
            "(a==1;b==true),status=in=(\"planned\",\"request\")"
        );
    }
}
