//! JSON helpers: TOPdesk's date-time forms and `$fields` projection.

use jiff::Timestamp;
use serde_json::{Map, Value};

/// Parses an ISO 8601 date-time with `Z`, `+00:00` or `+0000`.
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let n = text.len();
    if n > 5 && text.is_char_boundary(n - 5) {
        let (head, tail) = text.split_at(n - 5);
        let b = tail.as_bytes();
        if (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit) {
            return format!("{head}{}:{}", &tail[..3], &tail[3..]).parse().ok();
        }
    }
    None
}

/// UTC with `Z`, milliseconds only when present.
pub(crate) fn format_time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
        .replace(".000Z", "Z")
}

/// RFC 7232 IMF-fixdate, for `Last-Modified`.
pub(crate) fn imf_fixdate(ts: Timestamp) -> String {
    ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Truncates to the whole minute.
pub(crate) fn truncate_minute(ts: Timestamp) -> Timestamp {
    let s = ts.as_second();
    Timestamp::from_second(s - s.rem_euclid(60)).unwrap_or(ts)
}

/// Keeps only the dotted `fields` of `value` (arrays are projected element-wise).
/// `None` keeps everything.
pub(crate) fn project(value: &Value, fields: Option<&[String]>) -> Value {
    let Some(fields) = fields else {
        return value.clone();
    };
    let paths: Vec<Vec<&str>> = fields.iter().map(|f| f.split('.').collect()).collect();
    project_paths(value, &paths)
}

fn project_paths(value: &Value, paths: &[Vec<&str>]) -> Value {
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| project_paths(i, paths)).collect())
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                let mut whole = false;
                let mut sub: Vec<Vec<&str>> = Vec::new();
                for p in paths {
                    if p.first() == Some(&key.as_str()) {
                        if p.len() == 1 {
                            whole = true;
                        } else {
                            sub.push(p[1..].to_vec());
                        }
                    }
                }
                if whole {
                    out.insert(key.clone(), child.clone());
                } else if !sub.is_empty() {
                    out.insert(key.clone(), project_paths(child, &sub));
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Splits a comma list, trimming blanks.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projection_keeps_dotted_paths() {
        let v = json!({"id": "1", "status": "planned",
                       "reservedFacilities": [{"id": "f", "location": {"id": "l", "name": "n"}}]});
        let fields = vec!["id".to_owned(), "reservedFacilities.location.id".to_owned()];
        assert_eq!(
            project(&v, Some(&fields)),
            json!({"id": "1", "reservedFacilities": [{"location": {"id": "l"}}]})
        );
    }

    #[test]
    fn time_forms() {
        let z = parse_time("2026-05-04T08:00:00Z").unwrap();
        assert_eq!(parse_time("2026-05-04T08:00:00+0000"), Some(z));
        assert_eq!(format_time(z), "2026-05-04T08:00:00Z");
        assert_eq!(imf_fixdate(z), "Mon, 04 May 2026 08:00:00 GMT");
    }
}
