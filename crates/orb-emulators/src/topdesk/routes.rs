//! HTTP: authentication, fault and latency injection, routing, query parameters,
//! recording of every exchange.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response};
use serde_json::{Value, json};

use super::fiql::{self, Expr};
use super::json::{imf_fixdate, project, split_list};
use super::state::{Outcome, Reply, Store};
use super::{Exchange, PersonsApi, Shared, codes};

const PERSON_V2_LIST: &str = "application/x.topdesk-collection-person-v2+json";
const PERSON_V2_ONE: &str = "application/x.topdesk-person-v2+json";
const PREFIX: &str = "/tas/api";

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Bytes>) -> Response<Bytes> {
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut store = shared.lock();
    let method = req.method().clone();
    let raw_path = req.uri().path().to_owned();
    let path = percent_decode(raw_path.strip_prefix(PREFIX).unwrap_or(&raw_path));
    let query = parse_query(req.uri().query().unwrap_or(""));
    let accept = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body_bytes = req.body();
    let request_body: Option<Value> = if body_bytes.is_empty() {
        None
    } else {
        serde_json::from_slice(body_bytes).ok()
    };
    let request_body_invalid = !body_bytes.is_empty() && request_body.is_none();

    let reply = if !raw_path.starts_with(PREFIX) {
        Reply::empty(404)
    } else if let Some(fault) = take_fault(&mut store, &method, &path) {
        fault
    } else {
        let call = Call {
            method: &method,
            path: &path,
            query: &query,
            accept: accept.as_deref(),
            body: request_body.as_ref(),
            body_invalid: request_body_invalid,
        };
        match authenticate(&store, &req, &path) {
            Err(reply) => reply,
            Ok(operator) => route(&mut store, &call, operator).unwrap_or_else(|r| r),
        }
    };

    if store.recording {
        store.log.push(Exchange {
            method,
            path,
            query,
            accept,
            request_body,
            request_body_invalid,
            status: reply.status,
            content_type: reply.body.as_ref().map(|_| reply.content_type.to_owned()),
            response_body: reply.body.clone(),
        });
    }
    drop(store);
    into_response(reply)
}

struct Call<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a [(String, String)],
    accept: Option<&'a str>,
    body: Option<&'a Value>,
    body_invalid: bool,
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn params(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn flag(&self, name: &str) -> Outcome<bool> {
        match self.param(name) {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(Reply::error(
                codes::INVALID_QUERY,
                &[name],
                "must be true or false",
            )),
        }
    }

    fn json_body(&self) -> Outcome<&Value> {
        if self.body_invalid {
            return Err(Reply::error(
                codes::INVALID_VALUE,
                &[],
                "the body is not valid json",
            ));
        }
        self.body
            .ok_or_else(|| Reply::error(codes::FIELD_REQUIRED, &[], "a body is required"))
    }

    fn optional_body(&self) -> Outcome<Option<&Value>> {
        if self.body_invalid {
            return Err(Reply::error(
                codes::INVALID_VALUE,
                &[],
                "the body is not valid json",
            ));
        }
        Ok(self.body)
    }
}

fn into_response(reply: Reply) -> Response<Bytes> {
    let body = reply
        .body
        .as_ref()
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    let mut builder = Response::builder().status(reply.status);
    if reply.body.is_some() {
        builder = builder.header(CONTENT_TYPE, reply.content_type);
    }
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Bytes::from(body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Bytes::new());
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

fn take_fault(store: &mut Store, method: &Method, path: &str) -> Option<Reply> {
    let index = store.faults.iter().position(|f| {
        f.times > 0
            && f.method.as_ref().is_none_or(|m| m == method)
            && f.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
    })?;
    let fault = &mut store.faults[index];
    fault.times -= 1;
    let mut reply = Reply::empty(fault.status);
    if let Some(ra) = &fault.retry_after {
        reply = reply.header("retry-after", ra.clone());
    }
    if fault.times == 0 {
        store.faults.remove(index);
    }
    Some(reply)
}

/// `Ok(true)` for the operator, `Ok(false)` for a person account.
fn authenticate(store: &Store, req: &Request<Bytes>, path: &str) -> Result<bool, Reply> {
    let unauthorized = || unauthorized_body(path);
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("BASIC "))
        .or_else(|| header.strip_prefix("basic "))
        .ok_or_else(unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| unauthorized())?;
    let text = String::from_utf8(decoded).map_err(|_| unauthorized())?;
    let (login, password) = text.split_once(':').ok_or_else(unauthorized)?;
    if login == store.config.operator_login && password == store.config.operator_password {
        return if store.credentials_expired {
            Err(unauthorized())
        } else {
            Ok(true)
        };
    }
    if store
        .person_accounts
        .iter()
        .any(|(l, p)| l == login && p == password)
    {
        return Ok(false);
    }
    Err(unauthorized())
}

/// 401 bodies differ by module, as documented.
fn unauthorized_body(path: &str) -> Reply {
    if path.starts_with("/persons") {
        Reply::message(401, "No authentication token provided")
    } else if path.starts_with("/locations") {
        Reply::json(
            401,
            json!({"errors": [{"errorCode": "unauthorized", "errorMessage": "No authentication token provided"}]}),
        )
    } else if path.starts_with("/branches") {
        Reply::json(
            401,
            json!([{"errors": [{"errorCode": "unauthorized", "errorMessage": "No authentication token provided"}]}]),
        )
    } else {
        Reply::empty(401)
    }
}

fn route(store: &mut Store, call: &Call<'_>, operator: bool) -> Outcome<Reply> {
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    let m = call.method;
    match (m.as_str(), segments.as_slice()) {
        ("GET", ["reservations"]) => {
            if !operator {
                return Ok(Reply::empty(403));
            }
            list_reservations(store, call)
        }
        ("POST", ["reservations"]) => {
            let i = store.create(call.json_body()?)?;
            let r = &store.reservations[i];
            let location = format!("{}{PREFIX}/reservations/{}", store.origin, r.id);
            Ok(Reply::json(201, store.render_reservation(r))
                .header("last-modified", imf_fixdate(r.modified))
                .header("location", location))
        }
        (_, ["reservations", ..]) if !operator => Ok(Reply::empty(403)),
        ("GET", ["reservations", id]) => {
            let i = find(store, id)?;
            let fields = call.param("$fields").map(split_list);
            let r = &store.reservations[i];
            Ok(Reply::json(
                200,
                project(&store.render_reservation(r), fields.as_deref()),
            )
            .header("last-modified", imf_fixdate(r.modified)))
        }
        ("PATCH", ["reservations", id]) => {
            let i = find(store, id)?;
            let future = match call.param("occurrences") {
                None | Some("current") => false,
                Some("future") => true,
                Some(_) => {
                    return Err(Reply::error(
                        codes::INVALID_QUERY,
                        &["occurrences"],
                        "current or future",
                    ));
                }
            };
            store.update(i, call.json_body()?, future)?;
            Ok(reservation_reply(store, i, 200))
        }
        ("POST", ["reservations", id, "reschedule"]) => {
            let i = find(store, id)?;
            store.reschedule(i, call.json_body()?)?;
            Ok(reservation_reply(store, i, 200))
        }
        (
            "POST",
            [
                "reservations",
                id,
                "reservedFacilities",
                action @ ("add" | "move" | "remove"),
            ],
        ) => {
            let i = find(store, id)?;
            store.facilities(i, action, call.json_body()?)?;
            Ok(reservation_reply(store, i, 200))
        }
        ("POST", ["reservations", id, "cancel"]) => {
            let i = find(store, id)?;
            store.cancel(i, call.optional_body()?)?;
            Ok(Reply::empty(204))
        }
        ("POST", ["reservations", id, "reject"]) => {
            let i = find(store, id)?;
            store.reject(i, call.optional_body()?)?;
            Ok(reservation_reply(store, i, 200))
        }
        ("POST", ["reservations", id, "approve"]) => {
            let i = find(store, id)?;
            store.approve(i)?;
            Ok(reservation_reply(store, i, 200))
        }
        ("POST", ["reservations", id, "makeRecurrent", "dates"]) => series(store, call, id, "make"),
        ("POST", ["reservations", id, "occurrences", "dates"]) => series(store, call, id, "add"),
        ("PUT", ["reservations", id, "occurrences", "dates"]) => series(store, call, id, "set"),
        ("GET", ["reservationCancellationReasons"]) => reasons(store, call, true),
        ("GET", ["reservationRejectionReasons"]) => reasons(store, call, false),
        ("GET", ["reservableLocations"]) => reservable_locations(store, call),
        ("GET", ["reservableLocations", id]) => {
            let fields = call.param("$fields").map(split_list);
            match store
                .locations
                .iter()
                .find(|l| l.id == *id && l.seed.reservable && !l.seed.archived)
            {
                Some(l) => Ok(Reply::json(
                    200,
                    project(&store.render_reservable_location(l), fields.as_deref()),
                )),
                None => Ok(Reply::empty(404)),
            }
        }
        ("GET", ["locations"]) => locations(store, call, operator),
        ("GET", ["locations", "id", id]) => match store.locations.iter().find(|l| l.id == *id) {
            Some(l) => Ok(Reply::json(200, store.render_location(l))),
            None => Ok(Reply::message(404, "Entity not found")),
        },
        ("GET", ["branches"]) => branches(store, call, operator),
        ("GET", ["branches", "id", id]) => match store.branches.iter().find(|b| b.id == *id) {
            Some(b) => Ok(Reply::json(200, store.render_branch(b))),
            None => Ok(Reply::message(404, "Entity not found")),
        },
        ("GET", ["persons"]) => {
            if !operator {
                return Ok(Reply::message(
                    401,
                    "Authentication token is not operator token",
                ));
            }
            persons(store, call)
        }
        ("GET", ["persons", id]) => {
            if !operator {
                return Ok(Reply::message(
                    401,
                    "Authentication token is not operator token",
                ));
            }
            if call.accept.is_some_and(|a| a.contains(PERSON_V2_ONE))
                && store.config.persons_api == PersonsApi::V1Only
            {
                return Ok(Reply::empty(406));
            }
            match store.persons.iter().find(|p| p.id == *id) {
                Some(p) => {
                    let fields = person_fields(call.param("fields"))?;
                    let mut reply =
                        Reply::json(200, project(&store.render_person_v2(p), fields.as_deref()));
                    reply.content_type = PERSON_V2_ONE;
                    Ok(reply)
                }
                None => Ok(Reply::message(404, "Entity not found")),
            }
        }
        ("DELETE", _) => Ok(Reply::empty(405)),
        _ => Ok(Reply::empty(404)),
    }
}

fn find(store: &Store, id: &str) -> Outcome<usize> {
    store.find(id).ok_or_else(|| Reply::empty(404))
}

fn reservation_reply(store: &Store, i: usize, status: u16) -> Reply {
    let r = &store.reservations[i];
    Reply::json(status, store.render_reservation(r))
        .header("last-modified", imf_fixdate(r.modified))
}

fn series(store: &mut Store, call: &Call<'_>, id: &str, operation: &str) -> Outcome<Reply> {
    let i = find(store, id)?;
    let allow = call.flag("allowConflicts")?;
    let body = store.series(i, operation, call.json_body()?, allow)?;
    Ok(Reply::json(200, body))
}

/// The FIQL fields `GET /reservations` documents.
fn reservation_field_allowed(field: &str) -> bool {
    const EXACT: [&str; 8] = [
        "status",
        "archived",
        "number",
        "briefDescription",
        "notes",
        "numberOfPersons",
        "plannedStartDate",
        "plannedEndDate",
    ];
    const PERSON: [&str; 5] = [
        "id",
        "email",
        "loginName",
        "networkLoginName",
        "employeeNumber",
    ];
    if EXACT.contains(&field)
        || field.starts_with("optionalFields1.")
        || field.starts_with("optionalFields2.")
    {
        return true;
    }
    let Some((head, tail)) = field.rsplit_once('.') else {
        return false;
    };
    match head {
        "requester" | "reservedForOther" | "participants.persons" => PERSON.contains(&tail),
        "operatorGroup" | "operator" | "processingStatus" => matches!(tail, "id" | "name"),
        "event" | "participants.visitors" => matches!(tail, "id" | "number"),
        "series" => tail == "id",
        "reservedFacilities.location" => matches!(tail, "id" | "roomNumber"),
        "reservedFacilities.object" | "reservedFacilities.asset" => matches!(tail, "id" | "name"),
        "reservedFacilities.reservedServices" => {
            matches!(tail, "id" | "serviceId" | "operatorId" | "supplierId")
        }
        "externalLinks" => matches!(tail, "id" | "type" | "date"),
        _ => false,
    }
}

fn parse_fiql(text: Option<&str>, allowed: impl Fn(&str) -> bool) -> Outcome<Option<Expr>> {
    let Some(text) = text else { return Ok(None) };
    let expr = fiql::parse(text).map_err(|e| Reply::error(codes::INVALID_QUERY, &["query"], &e))?;
    if let Some(bad) = expr.fields().into_iter().find(|f| !allowed(f)) {
        return Err(Reply::error(
            codes::INVALID_QUERY,
            &["query"],
            &format!("cannot filter on {bad}"),
        ));
    }
    Ok(Some(expr))
}

fn top(call: &Call<'_>, default: usize) -> Outcome<usize> {
    match call.param("$top") {
        None => Ok(default),
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err(Reply::error(
                codes::INVALID_QUERY,
                &["$top"],
                "$top must be 1 to 10000",
            )),
        },
    }
}

fn list_reservations(store: &Store, call: &Call<'_>) -> Outcome<Reply> {
    let filter = parse_fiql(call.param("query"), reservation_field_allowed)?;
    let top = top(call, 1000)?;
    let fields = call.param("$fields").map(split_list);
    let matching: Vec<_> = store
        .ordered()
        .into_iter()
        .filter(|r| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&store.filter_doc(r)))
        })
        .collect();
    let more = matching.len() > top;
    let results: Vec<Value> = matching
        .iter()
        .take(top)
        .map(|r| project(&store.render_reservation(r), fields.as_deref()))
        .collect();
    Ok(Reply::json(
        if more { 206 } else { 200 },
        json!({ "results": results }),
    ))
}

fn reasons(store: &Store, call: &Call<'_>, cancellation: bool) -> Outcome<Reply> {
    let archived = match call.param("archived") {
        Some("false") => false,
        Some("true") => true,
        _ => {
            return Err(Reply::error(
                codes::INVALID_QUERY,
                &["archived"],
                "archived must be true or false",
            ));
        }
    };
    let list = if cancellation {
        &store.cancellation_reasons
    } else {
        &store.rejection_reasons
    };
    // The emulator keeps no archived reasons.
    let results: Vec<Value> = if archived {
        Vec::new()
    } else {
        list.iter()
            .map(|r| json!({"id": r.id, "name": r.name}))
            .collect()
    };
    Ok(Reply::json(200, json!({ "results": results })))
}

fn reservable_locations(store: &Store, call: &Call<'_>) -> Outcome<Reply> {
    let top = top(call, 1000)?;
    let branches = call.params("branchId");
    if branches.iter().any(|b| uuid::Uuid::parse_str(b).is_err()) {
        return Err(Reply::error(
            codes::INVALID_QUERY,
            &["branchId"],
            "branchId must be a uuid",
        ));
    }
    let fields = call.param("$fields").map(split_list);
    let results: Vec<Value> = store
        .locations
        .iter()
        .filter(|l| l.seed.reservable && !l.seed.archived)
        .filter(|l| {
            branches.is_empty()
                || l.seed
                    .branch_id
                    .as_deref()
                    .is_some_and(|b| branches.contains(&b))
        })
        .take(top)
        .map(|l| project(&store.render_reservable_location(l), fields.as_deref()))
        .collect();
    Ok(Reply::json(200, json!({ "results": results })))
}

fn locations(store: &Store, call: &Call<'_>, operator: bool) -> Outcome<Reply> {
    if !operator {
        return Ok(Reply::message(403, "No permission to access the entity"));
    }
    let filter = parse_fiql(call.param("query"), |f| {
        let top = f.split('.').next().unwrap_or("");
        matches!(
            top,
            "id" | "name"
                | "roomNumber"
                | "capacity"
                | "specification"
                | "archived"
                | "branch"
                | "reservationManagement"
                | "optionalFields1"
                | "optionalFields2"
                | "modificationDate"
                | "creationDate"
                | "externalLink"
                | "type"
                | "functionalUse"
        )
    })
    .map_err(|_| {
        Reply::json(
            400,
            json!({"errors": [{"errorCode": codes::INVALID_QUERY, "appliesTo": ["query"]}]}),
        )
    })?;
    let fields = call.param("$fields").map(split_list).unwrap_or_else(|| {
        ["id", "name", "roomNumber", "branch"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    });
    let page = match call.param("pageSize") {
        None => usize::MAX,
        Some(p) => p.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Reply::json(
                400,
                json!({"errors": [{"errorCode": codes::INVALID_QUERY, "appliesTo": ["pageSize"]}]}),
            )
        })?,
    };
    let results: Vec<Value> = store
        .locations
        .iter()
        .filter(|l| {
            let mut doc = store.render_location(l);
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("archived".into(), json!(l.seed.archived));
            }
            match &filter {
                // Without a query only active locations come back; with one, both.
                None => !l.seed.archived,
                Some(f) => f.matches(&doc),
            }
        })
        .take(page)
        .map(|l| project(&store.render_location(l), Some(&fields)))
        .collect();
    Ok(Reply::json(200, Value::Array(results)))
}

fn branches(store: &Store, call: &Call<'_>, operator: bool) -> Outcome<Reply> {
    if !operator {
        return Ok(Reply::message(403, "No permission to access the entity"));
    }
    let filter = parse_fiql(call.param("query"), |f| {
        matches!(
            f,
            "id" | "name" | "timeZone" | "archived" | "modificationDate"
        )
    })
    .map_err(|_| {
        Reply::json(
            400,
            json!([{"errors": [{"errorCode": codes::INVALID_QUERY, "appliesTo": ["query"]}]}]),
        )
    })?;
    let fields = call
        .param("$fields")
        .map(split_list)
        .unwrap_or_else(|| vec!["id".to_owned(), "name".to_owned()]);
    let results: Vec<Value> = store
        .branches
        .iter()
        .filter(|b| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&store.render_branch(b)))
        })
        .map(|b| project(&store.render_branch(b), Some(&fields)))
        .collect();
    Ok(Reply::json(200, Value::Array(results)))
}

const PERSON_FIELDS: [&str; 10] = [
    "id",
    "firstName",
    "surName",
    "dynamicName",
    "archived",
    "email",
    "networkLoginName",
    "employeeNumber",
    "branch",
    "modificationDate",
];

fn person_fields(param: Option<&str>) -> Outcome<Option<Vec<String>>> {
    match param {
        None => Ok(Some(vec!["id".to_owned(), "dynamicName".to_owned()])),
        Some("*" | "all") => Ok(None),
        Some(list) => {
            let fields = split_list(list);
            if let Some(bad) = fields
                .iter()
                .find(|f| !PERSON_FIELDS.contains(&f.split('.').next().unwrap_or("")))
            {
                return Err(Reply::message(400, &format!("Unknown field {bad}")));
            }
            Ok(Some(fields))
        }
    }
}

fn persons(store: &Store, call: &Call<'_>) -> Outcome<Reply> {
    let wants_v2 = call.accept.is_some_and(|a| a.contains(PERSON_V2_LIST));
    if wants_v2 && store.config.persons_api == PersonsApi::V1Only {
        return Ok(Reply::empty(406));
    }
    let allowed = |f: &str| {
        let top = f.split('.').next().unwrap_or("");
        PERSON_FIELDS.contains(&top)
            || matches!(
                top,
                "tasLoginName" | "phoneNumber" | "mobileNumber" | "creationDate"
            )
    };
    let filter = parse_fiql(call.param("query"), allowed)
        .map_err(|_| Reply::message(400, "Input parameters malformed"))?;
    let mut matching: Vec<_> = store
        .persons
        .iter()
        .filter(|p| match &filter {
            Some(f) => f.matches(&store.render_person_v2(p)),
            // v1 without a query returns active persons only; v2 returns everybody.
            None => wants_v2 || !p.seed.archived,
        })
        .collect();
    matching.sort_by_key(|p| {
        (
            p.seed.sur_name.to_lowercase(),
            p.seed.first_name.to_lowercase(),
            p.id.clone(),
        )
    });
    let number = |name: &str, default: usize, min: usize, max: usize| -> Outcome<usize> {
        match call.param(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| Reply::message(400, "Input parameters malformed")),
        }
    };
    if wants_v2 {
        let start = number("pageStart", 0, 0, usize::MAX)?;
        let asked = number("pageSize", 50, 1, 5000)?;
        let size = store
            .persons_page_cap
            .map_or(asked, |cap| asked.min(cap.max(1)));
        let fields = person_fields(call.param("fields"))?;
        let page: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(size)
            .map(|p| project(&store.render_person_v2(p), fields.as_deref()))
            .collect();
        let more = matching.len() > start + size;
        let mut body = json!({"item": page, "size": page.len()});
        if more {
            let mut next = format!(
                "{PREFIX}/persons?pageStart={}&pageSize={size}",
                start + size
            );
            for key in ["query", "fields", "sort"] {
                if let Some(v) = call.param(key) {
                    next.push_str(&format!("&{key}={}", percent_encode(v)));
                }
            }
            body["next"] = json!(next);
        }
        let mut reply = Reply::json(if more { 206 } else { 200 }, body);
        reply.content_type = PERSON_V2_LIST;
        return Ok(reply);
    }
    let start = number("start", 0, 0, usize::MAX)?;
    let size = number("page_size", 10, 1, 5000)?;
    let fields = call.param("$fields").map(split_list);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(size)
        .map(|p| project(&store.render_person_v1(p), fields.as_deref()))
        .collect();
    if page.is_empty() {
        return Ok(Reply::empty(204));
    }
    let more = matching.len() > start + size;
    Ok(Reply::json(
        if more { 206 } else { 200 },
        Value::Array(page),
    ))
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_round_trip() {
        let text = "email==\"a b@c.nl\";archived==false";
        assert_eq!(percent_decode(&percent_encode(text)), text);
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn reservation_filter_fields() {
        assert!(reservation_field_allowed("externalLinks.type"));
        assert!(reservation_field_allowed("reservedFacilities.location.id"));
        assert!(!reservation_field_allowed("modificationDate"));
        assert!(!reservation_field_allowed("startDate"));
    }
}
