//! Schema conformance: every exchange recorded by the emulator is matched to its
//! endpoint in `fixtures/topdesk/*.json` and checked (query parameter names, `$fields`,
//! request body, response body). Object schemas are made strict first, so an invented
//! field name fails.

use std::collections::HashMap;
use std::sync::OnceLock;

use orb_emulators::topdesk::Exchange;
use serde_json::{Map, Value, json};

pub(crate) struct Endpoint {
    method: String,
    path: String,
    input: Value,
    output: Value,
}

pub(crate) struct Spec {
    endpoints: Vec<Endpoint>,
    validators: std::sync::Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

pub(crate) fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/topdesk/");
        let mut endpoints = Vec::new();
        for file in [
            "reservations-2.0.0.json",
            "supporting-files-2.7.11-persons-locations-branches.json",
        ] {
            let text = std::fs::read_to_string(format!("{dir}{file}")).expect("fixture readable");
            let doc: Value = serde_json::from_str(&text).expect("fixture is json");
            for e in doc["endpoints"].as_array().expect("endpoints") {
                endpoints.push(Endpoint {
                    method: e["method"].as_str().unwrap().to_owned(),
                    path: e["path"].as_str().unwrap().to_owned(),
                    input: e["input"].clone(),
                    output: e["output"].clone(),
                });
            }
        }
        Spec {
            endpoints,
            validators: std::sync::Mutex::new(HashMap::new()),
        }
    })
}

/// Adds `additionalProperties: false` to every object schema listing `properties`, and
/// percent-encodes spaces in `$ref`s (TOPdesk's definition names contain spaces).
fn strict(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if k == "$ref" {
                    out.insert(
                        k.clone(),
                        json!(v.as_str().unwrap_or_default().replace(' ', "%20")),
                    );
                } else if k == "properties" {
                    // Property names are data here, not schema keywords.
                    let props = v.as_object().map(|p| {
                        p.iter()
                            .map(|(n, s)| (n.clone(), strict(s)))
                            .collect::<Map<_, _>>()
                    });
                    out.insert(
                        k.clone(),
                        props.map(Value::Object).unwrap_or_else(|| v.clone()),
                    );
                } else {
                    out.insert(k.clone(), strict(v));
                }
            }
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                out.insert("additionalProperties".into(), json!(false));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(strict).collect()),
        other => other.clone(),
    }
}

impl Spec {
    fn endpoint(&self, method: &str, path: &str) -> Option<&Endpoint> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.endpoints
            .iter()
            .filter(|e| e.method == method)
            .filter_map(|e| {
                let template: Vec<&str> = e.path.trim_start_matches('/').split('/').collect();
                if template.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (t, s) in template.iter().zip(&segments) {
                    if t.starts_with('{') {
                        continue;
                    }
                    if t != s {
                        return None;
                    }
                    literal += 1;
                }
                Some((literal, e))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, e)| e)
    }

    fn validator(
        &self,
        key: String,
        defs: &Value,
        schema: &Value,
    ) -> std::sync::Arc<jsonschema::Validator> {
        let mut cache = self.validators.lock().unwrap();
        cache
            .entry(key)
            .or_insert_with(|| {
                let mut root = strict(schema);
                if let Value::Object(map) = &mut root {
                    map.insert("$defs".into(), strict(defs));
                }
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&root)
                    .expect("schema compiles");
                std::sync::Arc::new(validator)
            })
            .clone()
    }

    /// Validates `instance` against `schema` (with the endpoint's `$defs`).
    fn validate(&self, key: String, defs: &Value, schema: &Value, instance: &Value) -> Vec<String> {
        let validator = self.validator(key, defs, schema);
        validator
            .iter_errors(instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect()
    }

    /// Every problem with one exchange (empty = conforms).
    pub(crate) fn check(&self, ex: &Exchange) -> Vec<String> {
        let mut problems = Vec::new();
        let method = ex.method.as_str();
        let Some(endpoint) = self.endpoint(method, &ex.path) else {
            return vec![format!("{method} {} is not in the published spec", ex.path)];
        };
        let is_v1_persons = ex.path.starts_with("/persons")
            && !ex.accept.as_deref().unwrap_or("").contains("x.topdesk");
        if is_v1_persons {
            // Persons v1 is documented in supporting-files 1.58.0, which is not a fixture.
            return problems;
        }
        let params: Vec<&str> = endpoint.input["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        for (name, _) in &ex.query {
            if !params.contains(&name.as_str()) {
                problems.push(format!(
                    "{method} {}: query parameter {name} is not in the spec",
                    endpoint.path
                ));
            }
        }
        // Request body.
        let in_defs = &endpoint.input["$defs"];
        let body_schema = &endpoint.input["requestBody"]["content"]["application/json"]["schema"];
        match (&ex.request_body, body_schema.is_null()) {
            (Some(_), true) => problems.push(format!(
                "{method} {}: sends a body the spec does not define",
                endpoint.path
            )),
            (Some(body), false) => {
                let key = format!("in {method} {}", endpoint.path);
                for p in self.validate(key, in_defs, body_schema, body) {
                    problems.push(format!("{method} {} request: {p}", endpoint.path));
                }
            }
            (None, _) => {}
        }
        if ex.request_body_invalid {
            problems.push(format!(
                "{method} {}: request body is not json",
                endpoint.path
            ));
        }
        // Response body.
        let out_defs = &endpoint.output["$defs"];
        let status = ex.status.to_string();
        if (200..300).contains(&ex.status) && endpoint.output[status.as_str()].is_null() {
            problems.push(format!(
                "{method} {}: status {status} is not documented",
                endpoint.path
            ));
        }
        let mut response = &endpoint.output[status.as_str()];
        if ex.status == 206 && response["content"].is_null() {
            response = &endpoint.output["200"];
        }
        let schema = response["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|m| &m["schema"])
            .filter(|s| !s.is_null());
        if let (Some(schema), Some(body)) = (schema, &ex.response_body) {
            let key = format!("out {method} {} {}", endpoint.path, ex.status);
            for p in self.validate(key, out_defs, schema, body) {
                problems.push(format!(
                    "{method} {} response {}: {p}",
                    endpoint.path, ex.status
                ));
            }
            // `$fields` / `fields` must name properties of the returned type.
            for (name, value) in &ex.query {
                let selects =
                    (name == "$fields" || name == "fields") && (200..300).contains(&ex.status);
                let Some(item) = item_schema(schema, out_defs).filter(|_| selects) else {
                    continue;
                };
                for field in value
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty() && *f != "*")
                {
                    if !has_path(item, out_defs, field) {
                        problems.push(format!(
                            "{method} {}: {name} names unknown field {field}",
                            endpoint.path
                        ));
                    }
                }
            }
        }
        problems
    }

    /// Panics with every violation in `exchanges`.
    pub(crate) fn assert_conforms(&self, exchanges: &[Exchange]) {
        let problems: Vec<String> = exchanges.iter().flat_map(|e| self.check(e)).collect();
        assert!(
            problems.is_empty(),
            "schema violations:\n{}",
            problems.join("\n")
        );
    }
}

fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(&defs[r.trim_start_matches("#/$defs/")], defs),
        None => schema,
    }
}

/// The schema of one returned entity: the list item for collections.
fn item_schema<'a>(schema: &'a Value, defs: &'a Value) -> Option<&'a Value> {
    let s = resolve(schema, defs);
    if s["type"] == "array" {
        return Some(resolve(&s["items"], defs));
    }
    for key in ["results", "item"] {
        let list = &s["properties"][key];
        if !list.is_null() {
            return Some(resolve(&list["items"], defs));
        }
    }
    Some(s)
}

fn has_path(schema: &Value, defs: &Value, path: &str) -> bool {
    let mut current = resolve(schema, defs);
    for part in path.split('.') {
        if current["type"] == "array" {
            current = resolve(&current["items"], defs);
        }
        let next = &current["properties"][part];
        if next.is_null() {
            return false;
        }
        current = resolve(next, defs);
    }
    true
}

#[test]
fn invented_fields_fail_the_check() {
    use orb_emulators::topdesk::Exchange;
    let spec = spec();
    let good = json!({"requester": {"id": "6f1c0000-0000-4000-8000-000000000001"},
                      "plannedStartDate": "2026-05-04T08:00:00Z", "plannedEndDate": "2026-05-04T09:00:00Z",
                      "reservedFacilities": [{"location": {"id": "6f1c0000-0000-4000-8000-000000000002"}}]});
    let mut bad = good.clone();
    bad["subject"] = json!("invented");
    let exchange = |body: Value, query: Vec<(String, String)>| {
        let mut ex = recorded(http::Method::POST, "/reservations", 400);
        ex.request_body = Some(body);
        ex.query = query;
        ex
    };
    assert!(spec.check(&exchange(good.clone(), vec![])).is_empty());
    assert!(!spec.check(&exchange(bad, vec![])).is_empty());
    assert!(
        !spec
            .check(&exchange(good, vec![("pageSize".into(), "2".into())]))
            .is_empty()
    );
    let mut list = recorded(http::Method::GET, "/reservations", 200);
    list.query = vec![("$fields".into(), "id,startDate".into())];
    list.response_body = Some(json!({"results": []}));
    assert!(!spec.check(&list).is_empty());
    let mut response = recorded(http::Method::GET, "/reservations", 200);
    response.response_body = Some(
        json!({"results": [{"id": "6f1c0000-0000-4000-8000-000000000001", "startDate": "x"}]}),
    );
    assert!(!spec.check(&response).is_empty(), "invented response field");
    response.response_body = Some(
        json!({"results": [{"id": "6f1c0000-0000-4000-8000-000000000001", "plannedStartDate": "nope"}]}),
    );
    assert!(!spec.check(&response).is_empty(), "formats are checked");
    response.response_body = Some(
        json!({"results": [{"id": "6f1c0000-0000-4000-8000-000000000001",
        "reservedFacilities": [{"location": {"id": "6f1c0000-0000-4000-8000-000000000002", "mailbox": "x"}}]}]}),
    );
    assert!(
        !spec.check(&response).is_empty(),
        "nested definitions with spaces in their names are checked"
    );
    let mut unknown = recorded(http::Method::GET, "/reservations/abc/history", 200);
    unknown.response_body = None;
    assert!(!spec.check(&unknown).is_empty());
    let _ = std::mem::size_of::<Exchange>();
}

/// An exchange as the emulator would record it (for checker self-tests).
fn recorded(method: http::Method, path: &str, status: u16) -> Exchange {
    Exchange::new(method, path, status)
}
