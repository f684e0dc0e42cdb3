//! The HTTP side: routing, authentication and authorization, faults, paging, and the
//! handlers of every endpoint.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::calendar::{self, ApiError, Change, MailboxKind};
use super::{
    Fault, PageEnd, PageState, RequestRecord, SentMail, Shared, State, Subscription, auth, notify,
    roles,
};

type Answer = Response<Full<Bytes>>;

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What the router learned about a request before running it.
struct Call {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    prefer: Vec<String>,
    client_request_id: Option<String>,
    body: Vec<u8>,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn seg(&self, i: usize) -> Option<&str> {
        self.segments.get(i).map(String::as_str)
    }

    fn is(&self, i: usize, literal: &str) -> bool {
        self.seg(i).is_some_and(|s| s.eq_ignore_ascii_case(literal))
    }

    fn json(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body)
            .map_err(|_| ApiError::new(400, "BadRequest", "Unable to read JSON request payload."))
    }

    fn page_size(&self, default: usize) -> usize {
        let preferred = self.prefer.iter().find_map(|p| {
            p.split(',')
                .find_map(|part| part.trim().strip_prefix("odata.maxpagesize="))
                .and_then(|n| n.trim().parse::<usize>().ok())
        });
        let top = self.param("$top").and_then(|t| t.parse::<usize>().ok());
        preferred.or(top).unwrap_or(default).clamp(1, 1000)
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Answer {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let client_request_id = header("client-request-id");
    let prefer: Vec<String> = req
        .headers()
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();

    // The identity platform.
    if method == Method::POST && segments.len() == 4 && segments[1..] == ["oauth2", "v2.0", "token"]
    {
        let (status, body) = auth::token(&shared, &segments[0], &body);
        return json_answer(status, &body, None);
    }
    if method == Method::GET
        && (segments == ["common", "discovery", "v2.0", "keys"]
            || segments == ["common", "discovery", "keys"])
    {
        return Response::builder()
            .status(200)
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(shared.signer.jwks_json())))
            .unwrap_or_default();
    }
    if segments.first().map(String::as_str) != Some("v1.0") {
        return error_answer(
            &ApiError::new(404, "BadRequest", "Resource not found for the segment."),
            None,
        );
    }
    let call = Call {
        method,
        segments: segments[1..].to_vec(),
        query: parse_query(&raw_query),
        prefer,
        client_request_id,
        body,
    };
    let mailbox = if call.is(0, "users") {
        call.seg(1).map(str::to_ascii_lowercase)
    } else {
        None
    };

    // Concurrency per mailbox is counted over the whole exchange, injected latency included.
    let _inflight = mailbox.as_ref().map(|m| Inflight::enter(&shared, m));
    let over_limit = mailbox.as_ref().is_some_and(|m| {
        shared.lock().inflight.get(m).copied().unwrap_or(0) > shared.config.mailbox_concurrency
    });

    let fault = {
        let mut st = shared.lock();
        let fault = st.http_faults.pop_front();
        match fault {
            Some(Fault::Slow { delay, times }) if times > 1 => {
                st.http_faults.push_front(Fault::Slow {
                    delay,
                    times: times - 1,
                });
                Some(Fault::Slow { delay, times: 1 })
            }
            Some(Fault::Throttle {
                status,
                retry_after,
                times,
            }) if times > 1 => {
                st.http_faults.push_front(Fault::Throttle {
                    status,
                    retry_after,
                    times: times - 1,
                });
                Some(Fault::Throttle {
                    status,
                    retry_after,
                    times: 1,
                })
            }
            other => other,
        }
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let (answer, client_id) = match fault {
        Some(Fault::Throttle {
            status,
            retry_after,
            ..
        }) => {
            let code = if status == 429 {
                "TooManyRequests"
            } else {
                "serviceNotAvailable"
            };
            let mut answer = error_answer(
                &ApiError::new(
                    status,
                    code,
                    "Too many requests. Retry after the interval in Retry-After.",
                ),
                Some(&request_id),
            );
            if let Some(secs) = retry_after
                && let Ok(v) = hyper::header::HeaderValue::from_str(&secs.to_string())
            {
                answer.headers_mut().insert("Retry-After", v);
            }
            (answer, None)
        }
        other => {
            if let Some(Fault::Slow { delay, .. }) = other {
                tokio::time::sleep(delay).await;
            }
            if over_limit {
                let mut answer = error_answer(
                    &ApiError::new(
                        429,
                        "ApplicationThrottled",
                        "Application is over its MailboxConcurrency limit.",
                    ),
                    Some(&request_id),
                );
                answer
                    .headers_mut()
                    .insert("Retry-After", hyper::header::HeaderValue::from_static("1"));
                (answer, None)
            } else {
                match auth::bearer(&shared, authorization.as_deref()) {
                    Err(body) => (json_answer(401, &body, Some(&request_id)), None),
                    Ok((client_id, roles)) => {
                        let answer = match route(&shared, &call, &client_id, &roles).await {
                            Ok(answer) => answer,
                            Err(e) => error_answer(&e, Some(&request_id)),
                        };
                        (answer, Some(client_id))
                    }
                }
            }
        }
    };
    let creates_subscription = call.method == Method::POST
        && call.is(0, "subscriptions")
        && call.segments.len() == 1
        && answer.status().is_success();
    if creates_subscription {
        let late = {
            let mut st = shared.lock();
            match st.late_subscription_answers.take() {
                Some((delay, times)) => {
                    if times > 1 {
                        st.late_subscription_answers = Some((delay, times - 1));
                    }
                    Some(delay)
                }
                None => None,
            }
        };
        if let Some(delay) = late {
            tokio::time::sleep(delay).await;
        }
    }
    let mut answer = answer;
    if let Ok(v) = hyper::header::HeaderValue::from_str(&request_id) {
        answer.headers_mut().insert("request-id", v);
    }
    if let Some(c) = &call.client_request_id
        && let Ok(v) = hyper::header::HeaderValue::from_str(c)
    {
        answer.headers_mut().insert("client-request-id", v);
    }
    shared.lock().requests.push(RequestRecord {
        method: call.method.to_string(),
        path: format!("/v1.0/{}", call.segments.join("/")),
        status: answer.status().as_u16(),
        mailbox,
        client_id,
        prefer: call.prefer.clone(),
        client_request_id: call.client_request_id.clone(),
    });
    answer
}

struct Inflight {
    shared: Arc<Shared>,
    mailbox: String,
}

impl Inflight {
    fn enter(shared: &Arc<Shared>, mailbox: &str) -> Self {
        let mut st = shared.lock();
        let n = st.inflight.entry(mailbox.to_owned()).or_insert(0);
        *n += 1;
        let now = *n;
        let max = st.max_inflight.entry(mailbox.to_owned()).or_insert(0);
        *max = (*max).max(now);
        Self {
            shared: Arc::clone(shared),
            mailbox: mailbox.to_owned(),
        }
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.inflight.get_mut(&self.mailbox) {
            *n = n.saturating_sub(1);
        }
    }
}

fn require(roles: &[String], any_of: &[&str], mailbox_call: bool) -> Result<(), ApiError> {
    if roles.iter().any(|r| any_of.contains(&r.as_str())) {
        return Ok(());
    }
    Err(if mailbox_call {
        ApiError::new(
            403,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        )
    } else {
        ApiError::new(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    })
}

fn check_policy(st: &State, client_id: &str, mailbox: &str) -> Result<(), ApiError> {
    match st.access_policy.get(client_id) {
        Some(allowed) if !allowed.contains(&mailbox.to_ascii_lowercase()) => Err(ApiError::new(
            403,
            "ErrorAccessDenied",
            "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
        )),
        _ => Ok(()),
    }
}

const READ: &[&str] = &[roles::CALENDARS_READ, roles::CALENDARS_READ_WRITE];
const WRITE: &[&str] = &[roles::CALENDARS_READ_WRITE];

async fn route(
    shared: &Arc<Shared>,
    call: &Call,
    client_id: &str,
    roles: &[String],
) -> Result<Answer, ApiError> {
    let m = &call.method;
    let n = call.segments.len();
    if call.is(0, "subscriptions") {
        require(roles, READ, false)?;
        return match (m.clone(), n) {
            (Method::POST, 1) => create_subscription(shared, call, client_id).await,
            (Method::GET, 1) => {
                let mut st = shared.lock();
                st.prune_expired();
                let items: Vec<Value> = st
                    .subscriptions
                    .values()
                    .filter(|s| s.app == client_id)
                    .map(render_subscription)
                    .collect();
                Ok(ok_json(200, &json!({"value": items})))
            }
            (Method::GET, 2) => {
                let mut st = shared.lock();
                let sub = owned_subscription(&mut st, call.seg(1).unwrap_or(""), client_id)?;
                Ok(ok_json(200, &render_subscription(sub)))
            }
            (Method::PATCH, 2) => renew_subscription(shared, call, client_id),
            (Method::DELETE, 2) => {
                let mut st = shared.lock();
                let id = call.seg(1).unwrap_or("").to_owned();
                owned_subscription(&mut st, &id, client_id)?;
                st.subscriptions.remove(&id);
                Ok(empty(204))
            }
            (Method::POST, 3) if call.is(2, "reauthorize") => {
                let mut st = shared.lock();
                let id = call.seg(1).unwrap_or("").to_owned();
                owned_subscription(&mut st, &id, client_id)?;
                if let Some(s) = st.subscriptions.get_mut(&id) {
                    s.reauthorized += 1;
                }
                Ok(empty(204))
            }
            _ => Err(ApiError::new(405, "BadRequest", "Unsupported method.")),
        };
    }
    if call.is(0, "places") {
        require(roles, &[roles::PLACE_READ_ALL], false)?;
        return places(shared, call);
    }
    if call.is(0, "users") && n >= 3 {
        let mailbox = call.seg(1).unwrap_or("").to_ascii_lowercase();
        {
            let st = shared.lock();
            st.cal.mailbox(&mailbox)?;
            if call.is(2, "sendMail") {
                require(roles, &[roles::MAIL_SEND], true)?;
            } else if *m == Method::GET {
                require(roles, READ, true)?;
            } else {
                require(roles, WRITE, true)?;
            }
            check_policy(&st, client_id, &mailbox)?;
        }
        return users(shared, call, &mailbox);
    }
    Err(ApiError::new(
        400,
        "BadRequest",
        "Resource not found for the segment.",
    ))
}

fn users(shared: &Arc<Shared>, call: &Call, mailbox: &str) -> Result<Answer, ApiError> {
    let n = call.segments.len();
    let mut st = shared.lock();
    let now = st.now();
    let mut changes: Vec<Change> = Vec::new();
    let ext = expand_filter(call.param("$expand"));
    let answer = match (call.method.clone(), n) {
        (Method::POST, 3) if call.is(2, "sendMail") => {
            let body = call.json()?;
            let message = body.get("message").cloned().unwrap_or(Value::Null);
            let recipients = message
                .get("toRecipients")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if recipients == 0 {
                return Err(ApiError::new(
                    400,
                    "ErrorInvalidRecipients",
                    "At least one recipient is not valid.",
                ));
            }
            let save = match body.get("saveToSentItems") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
                _ => true,
            };
            st.sent_mail.push(SentMail {
                from: mailbox.to_owned(),
                message,
                save_to_sent_items: save,
            });
            empty(202)
        }
        (Method::POST, 3) if call.is(2, "events") => {
            let body = call.json()?;
            let id = st.cal.create(mailbox, &body, now, &mut changes)?;
            let v = render_stored(&st, mailbox, &id, ext.as_deref())?;
            ok_json(201, &v)
        }
        (Method::GET, 3) if call.is(2, "events") => {
            if let Some(answer) = continue_page(shared, &mut st, call)? {
                return Ok(answer);
            }
            let filter = call.param("$filter").map(parse_filter).transpose()?;
            let mb = st.cal.mailbox(mailbox)?;
            let items: Vec<Value> = mb
                .items
                .values()
                .filter(|i| match &filter {
                    None => true,
                    Some(Filter::IcalUid(uid)) => i.ical_uid == *uid,
                    Some(Filter::Ext { id, value }) => {
                        i.ext.get(id).is_some_and(|v| v.eq_ignore_ascii_case(value))
                    }
                })
                .map(|i| calendar::render(i, None, ext.as_deref()))
                .collect();
            let size = call.page_size(shared.config.events_page_size);
            page(
                shared,
                &mut st,
                items,
                size,
                &format!("/users/{mailbox}/events"),
                PageEnd::None,
            )
        }
        (Method::GET, 4) if call.is(2, "events") => {
            let id = call.seg(3).unwrap_or("");
            let (item_id, occ) = st.cal.resolve(mailbox, id)?;
            let v = match occ {
                None => render_stored(&st, mailbox, &item_id, ext.as_deref())?,
                Some(occ) => {
                    let mb = st.cal.mailbox(mailbox)?;
                    let item = mb.items.get(&item_id).ok_or_else(ApiError::not_found)?;
                    let ts = Timestamp::from_second(occ).map_err(|_| ApiError::not_found())?;
                    let inst = calendar::expand(
                        item,
                        ts,
                        ts.checked_add(jiff::SignedDuration::from_hours(24 * 400))
                            .unwrap_or(ts),
                    )
                    .into_iter()
                    .find(|i| i.id == id)
                    .ok_or_else(ApiError::not_found)?;
                    calendar::render(item, Some(&inst), ext.as_deref())
                }
            };
            ok_json(200, &v)
        }
        (Method::PATCH, 4) if call.is(2, "events") => {
            let body = call.json()?;
            let id = call.seg(3).unwrap_or("").to_owned();
            st.cal.update(mailbox, &id, &body, now, &mut changes)?;
            let (item_id, occ) = st.cal.resolve(mailbox, &id)?;
            let v = match occ {
                None => render_stored(&st, mailbox, &item_id, ext.as_deref())?,
                Some(_) => {
                    let mb = st.cal.mailbox(mailbox)?;
                    let item = mb.items.get(&item_id).ok_or_else(ApiError::not_found)?;
                    calendar::expand(item, Timestamp::MIN, Timestamp::MAX)
                        .into_iter()
                        .find(|i| i.id == id)
                        .map(|inst| calendar::render(item, Some(&inst), ext.as_deref()))
                        .ok_or_else(ApiError::not_found)?
                }
            };
            ok_json(200, &v)
        }
        (Method::DELETE, 4) if call.is(2, "events") => {
            st.cal
                .remove(mailbox, call.seg(3).unwrap_or(""), false, now, &mut changes)?;
            empty(204)
        }
        (Method::POST, 5) if call.is(2, "events") && call.is(4, "cancel") => {
            call.json()?;
            st.cal
                .remove(mailbox, call.seg(3).unwrap_or(""), true, now, &mut changes)?;
            empty(202)
        }
        (Method::POST, 5) if call.is(2, "events") && call.is(4, "decline") => {
            call.json()?;
            st.cal
                .decline(mailbox, call.seg(3).unwrap_or(""), now, &mut changes)?;
            empty(202)
        }
        (Method::GET, 5) if call.is(2, "events") && call.is(4, "instances") => {
            if let Some(answer) = continue_page(shared, &mut st, call)? {
                return Ok(answer);
            }
            let (start, end) = window(call)?;
            let id = call.seg(3).unwrap_or("");
            let instances = st.cal.instances(mailbox, id, start, end)?;
            let mb = st.cal.mailbox(mailbox)?;
            let item = mb.items.get(id).ok_or_else(ApiError::not_found)?;
            let items: Vec<Value> = instances
                .iter()
                .map(|i| calendar::render(item, Some(i), None))
                .collect();
            let size = call.page_size(shared.config.events_page_size);
            page(
                shared,
                &mut st,
                items,
                size,
                &format!("/users/{mailbox}/events/{id}/instances"),
                PageEnd::None,
            )
        }
        (Method::GET, 3) if call.is(2, "calendarView") => {
            if let Some(answer) = continue_page(shared, &mut st, call)? {
                return Ok(answer);
            }
            let (start, end) = window(call)?;
            let items = view_json(&st, mailbox, start, end)?
                .into_iter()
                .map(|(_, _, v)| v)
                .collect();
            let size = call.page_size(shared.config.events_page_size);
            page(
                shared,
                &mut st,
                items,
                size,
                &format!("/users/{mailbox}/calendarView"),
                PageEnd::None,
            )
        }
        (Method::GET, 4) if call.is(2, "calendarView") && call.is(3, "delta") => {
            delta(shared, &mut st, call, mailbox)?
        }
        _ => {
            return Err(ApiError::new(
                400,
                "BadRequest",
                "Unsupported segment or method.",
            ));
        }
    };
    notify::changes(shared, &mut st, &changes);
    Ok(answer)
}

fn delta(
    shared: &Arc<Shared>,
    st: &mut State,
    call: &Call,
    mailbox: &str,
) -> Result<Answer, ApiError> {
    if let Some(answer) = continue_page(shared, st, call)? {
        return Ok(answer);
    }
    let path = format!("/users/{mailbox}/calendarView/delta");
    let (start, end, seen) = match call.param("$deltatoken") {
        Some(token) => match st.deltas.get(token) {
            Some(d) if d.mailbox == mailbox => (d.start, d.end, d.seen.clone()),
            _ => {
                return Err(if st.delta_gone {
                    ApiError::new(
                        410,
                        "resyncRequired",
                        "The delta token is no longer valid; a full resync is required.",
                    )
                } else {
                    ApiError::new(
                        400,
                        "SyncStateNotFound",
                        "The sync state generation was not found.",
                    )
                });
            }
        },
        None => {
            let (start, end) = window(call)?;
            (start, end, Default::default())
        }
    };
    let current = view_json(st, mailbox, start, end)?;
    let mut items = Vec::new();
    let mut now_seen = std::collections::BTreeMap::new();
    for (id, etag, v) in current {
        if seen.get(&id) != Some(&etag) {
            items.push(v);
        }
        now_seen.insert(id, etag);
    }
    for id in seen.keys() {
        if !now_seen.contains_key(id) {
            items.push(json!({"@odata.type": "#microsoft.graph.event", "id": id, "@removed": {"reason": "deleted"}}));
        }
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    st.deltas.insert(
        token.clone(),
        super::DeltaState {
            mailbox: mailbox.to_owned(),
            start,
            end,
            seen: now_seen,
        },
    );
    let size = call.page_size(shared.config.events_page_size);
    Ok(page(shared, st, items, size, &path, PageEnd::Delta(token)))
}

/// Expanded entries of a mailbox as (id, etag, JSON).
fn view_json(
    st: &State,
    mailbox: &str,
    start: Timestamp,
    end: Timestamp,
) -> Result<Vec<(String, String, Value)>, ApiError> {
    let view = st.cal.view(mailbox, start, end)?;
    let mb = st.cal.mailbox(mailbox)?;
    Ok(view
        .iter()
        .filter_map(|inst| {
            let item_id = inst.master_id.as_deref().unwrap_or(&inst.id);
            let item = mb.items.get(item_id)?;
            // The etag of an entry covers the master's own state (cancellation, subject).
            let etag = format!("{}:{}", inst.etag, item.version);
            Some((
                inst.id.clone(),
                etag,
                calendar::render(item, Some(inst), None),
            ))
        })
        .collect())
}

fn places(shared: &Arc<Shared>, call: &Call) -> Result<Answer, ApiError> {
    let mut st = shared.lock();
    if let Some(answer) = continue_page(shared, &mut st, call)? {
        return Ok(answer);
    }
    let room_json = |mb: &super::MailboxData| -> Option<Value> {
        let MailboxKind::Room {
            capacity,
            building,
            floor,
            ..
        } = &mb.kind
        else {
            return None;
        };
        Some(json!({
            "@odata.type": "#microsoft.graph.room",
            "id": mb.place_id,
            "emailAddress": mb.email,
            "displayName": mb.name,
            "nickname": mb.name,
            "capacity": capacity,
            "building": building,
            "floorNumber": floor,
            "bookingType": "standard",
            "isWheelChairAccessible": false,
            "tags": [],
        }))
    };
    let size = call.page_size(shared.config.places_page_size);
    let n = call.segments.len();
    if call.method != Method::GET {
        return Err(ApiError::new(405, "BadRequest", "Unsupported method."));
    }
    if n == 2 && call.is(1, "microsoft.graph.room") {
        let items: Vec<Value> = st.cal.mailboxes.values().filter_map(room_json).collect();
        return Ok(page(
            shared,
            &mut st,
            items,
            size,
            "/places/microsoft.graph.room",
            PageEnd::None,
        ));
    }
    if n == 2 && call.is(1, "microsoft.graph.roomlist") {
        let items: Vec<Value> = st
            .room_lists
            .iter()
            .map(|(email, (name, id))| json!({"@odata.type": "#microsoft.graph.roomList", "id": id, "emailAddress": email, "displayName": name}))
            .collect();
        return Ok(page(
            shared,
            &mut st,
            items,
            size,
            "/places/microsoft.graph.roomlist",
            PageEnd::None,
        ));
    }
    if n == 4 && call.is(2, "microsoft.graph.roomlist") && call.is(3, "rooms") {
        let list = call.seg(1).unwrap_or("").to_ascii_lowercase();
        if !st.room_lists.contains_key(&list) {
            return Err(ApiError::new(
                404,
                "ErrorItemNotFound",
                "The room list was not found.",
            ));
        }
        let items: Vec<Value> = st
            .cal
            .mailboxes
            .values()
            .filter(
                |mb| matches!(&mb.kind, MailboxKind::Room { room_list: Some(l), .. } if *l == list),
            )
            .filter_map(room_json)
            .collect();
        let path = format!("/places/{list}/microsoft.graph.roomlist/rooms");
        return Ok(page(shared, &mut st, items, size, &path, PageEnd::None));
    }
    if n == 2 {
        let key = call.seg(1).unwrap_or("").to_ascii_lowercase();
        if let Some(v) = st
            .cal
            .mailboxes
            .values()
            .find(|mb| mb.email == key || mb.place_id == key)
            .and_then(room_json)
        {
            return Ok(ok_json(200, &v));
        }
        if let Some((email, (name, id))) = st
            .room_lists
            .iter()
            .find(|(e, (_, id))| **e == key || *id == key)
        {
            return Ok(ok_json(
                200,
                &json!({"@odata.type": "#microsoft.graph.roomList", "id": id, "emailAddress": email, "displayName": name}),
            ));
        }
        return Err(ApiError::new(
            404,
            "ErrorItemNotFound",
            "The place was not found.",
        ));
    }
    Err(ApiError::new(400, "BadRequest", "Unsupported segment."))
}

async fn create_subscription(
    shared: &Arc<Shared>,
    call: &Call,
    client_id: &str,
) -> Result<Answer, ApiError> {
    let body = call.json()?;
    let field = |n: &str| body.get(n).and_then(Value::as_str).map(str::to_owned);
    let invalid = |m: &str| ApiError::new(400, "InvalidRequest", m);
    let change_types: Vec<String> = field("changeType")
        .ok_or_else(|| invalid("changeType is required."))?
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    if change_types.is_empty()
        || change_types
            .iter()
            .any(|c| !matches!(c.as_str(), "created" | "updated" | "deleted"))
    {
        return Err(invalid(
            "changeType must be a combination of created, updated and deleted.",
        ));
    }
    let notification_url =
        field("notificationUrl").ok_or_else(|| invalid("notificationUrl is required."))?;
    check_webhook_url(&notification_url)?;
    let lifecycle_url = field("lifecycleNotificationUrl");
    if let Some(u) = &lifecycle_url {
        check_webhook_url(u)?;
    }
    let resource = field("resource").ok_or_else(|| invalid("resource is required."))?;
    let (mailbox, select) = parse_resource(&resource)?;
    let client_state = field("clientState");
    if client_state
        .as_ref()
        .is_some_and(|c| c.chars().count() > 128)
    {
        return Err(invalid("clientState must be at most 128 characters."));
    }
    let rich = body
        .get("includeResourceData")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let rich = if rich {
        let cert_b64 = field("encryptionCertificate").ok_or_else(|| {
            invalid("encryptionCertificate is required when includeResourceData is true.")
        })?;
        let cert_id = field("encryptionCertificateId").ok_or_else(|| {
            invalid("encryptionCertificateId is required when includeResourceData is true.")
        })?;
        if cert_id.is_empty() || cert_id.chars().count() > 128 {
            return Err(invalid(
                "encryptionCertificateId must be 1 to 128 characters.",
            ));
        }
        if select.is_none() {
            return Err(invalid(
                "Rich notifications on events require $select in the resource.",
            ));
        }
        Some((parse_certificate(&cert_b64)?, cert_id))
    } else {
        None
    };
    let expiration_requested =
        field("expirationDateTime").ok_or_else(|| invalid("expirationDateTime is required."))?;
    let id = uuid::Uuid::new_v4().to_string();
    {
        let mut st = shared.lock();
        st.prune_expired();
        st.cal.mailbox(&mailbox).map_err(|_| {
            ApiError::new(
                404,
                "ResourceNotFound",
                "The resource mailbox was not found.",
            )
        })?;
        check_policy(&st, client_id, &mailbox)?;
        let _ = expiration(&st, &expiration_requested, rich.is_some())?;
        if let Some(existing) = st.subscriptions.values().find(|s| {
            s.app == client_id
                && s.resource.eq_ignore_ascii_case(&resource)
                && s.change_types == change_types
        }) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Subscription Id {} already exists for the requested combination",
                    existing.id
                ),
            ));
        }
    }
    // The handshake runs without the lock: the webhook may take its time.
    let mut urls = vec![notification_url.clone()];
    urls.extend(lifecycle_url.iter().cloned());
    for url in urls {
        if !notify::validate(shared, &url).await {
            return Err(ApiError::new(
                400,
                "InvalidRequest",
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
            ));
        }
    }
    let mut st = shared.lock();
    let expiration = expiration(&st, &expiration_requested, rich.is_some())?;
    let sub = Subscription {
        id: id.clone(),
        app: client_id.to_owned(),
        resource,
        mailbox,
        select,
        change_types,
        notification_url,
        lifecycle_url,
        expiration,
        client_state,
        rich,
        creator_id: uuid::Uuid::new_v4().to_string(),
        reauthorized: 0,
    };
    let v = render_subscription(&sub);
    st.subscriptions.insert(id, sub);
    Ok(ok_json(201, &v))
}

fn renew_subscription(
    shared: &Arc<Shared>,
    call: &Call,
    client_id: &str,
) -> Result<Answer, ApiError> {
    let body = call.json()?;
    let mut st = shared.lock();
    let id = call.seg(1).unwrap_or("").to_owned();
    let rich = owned_subscription(&mut st, &id, client_id)?.rich.is_some();
    let new_expiration = match body.get("expirationDateTime").and_then(Value::as_str) {
        Some(e) => Some(expiration(&st, e, rich)?),
        None => None,
    };
    let new_cert = match (
        body.get("encryptionCertificate").and_then(Value::as_str),
        body.get("encryptionCertificateId").and_then(Value::as_str),
    ) {
        (Some(c), Some(cid)) if !cid.is_empty() && cid.chars().count() <= 128 => {
            Some((parse_certificate(c)?, cid.to_owned()))
        }
        (None, None) => None,
        _ => {
            return Err(ApiError::new(
                400,
                "InvalidRequest",
                "encryptionCertificate and encryptionCertificateId go together.",
            ));
        }
    };
    let sub = st
        .subscriptions
        .get_mut(&id)
        .ok_or_else(ApiError::not_found)?;
    if let Some(e) = new_expiration {
        sub.expiration = e;
    }
    if let Some(c) = new_cert {
        if sub.rich.is_none() {
            return Err(ApiError::new(
                400,
                "InvalidRequest",
                "The subscription does not include resource data.",
            ));
        }
        sub.rich = Some(c);
    }
    let v = render_subscription(sub);
    Ok(ok_json(200, &v))
}

fn owned_subscription<'a>(
    st: &'a mut State,
    id: &str,
    client_id: &str,
) -> Result<&'a Subscription, ApiError> {
    st.prune_expired();
    match st.subscriptions.get(id) {
        Some(s) if s.app == client_id => Ok(s),
        _ => Err(ApiError::new(
            404,
            "ResourceNotFound",
            format!("The object '{id}' doesn't exist."),
        )),
    }
}

/// Applies Graph's rules: under 45 minutes is raised to 45; over the maximum (1,440
/// minutes rich, 10,080 basic) is refused.
fn expiration(st: &State, requested: &str, rich: bool) -> Result<Timestamp, ApiError> {
    let now = st.now();
    let at = parse_instant(requested).ok_or_else(|| {
        ApiError::new(
            400,
            "InvalidRequest",
            "expirationDateTime is not a valid date-time.",
        )
    })?;
    let max_minutes: i64 = if rich { 1440 } else { 10080 };
    let minutes_ahead = (at.as_second() - now.as_second()) / 60;
    if at.as_second() - now.as_second() > max_minutes * 60 {
        return Err(ApiError::new(
            400,
            "ExtensionError",
            format!("Subscription expiration can only be {max_minutes} minutes in the future."),
        ));
    }
    if minutes_ahead < 45 {
        return Ok(now
            .checked_add(jiff::SignedDuration::from_mins(45))
            .unwrap_or(now));
    }
    Ok(at)
}

fn parse_certificate(b64: &str) -> Result<orb_notification_crypto::Certificate, ApiError> {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| {
            ApiError::new(
                400,
                "InvalidRequest",
                "encryptionCertificate is not base64.",
            )
        })?;
    orb_notification_crypto::Certificate::from_der(&der).map_err(|_| {
        ApiError::new(
            400,
            "InvalidRequest",
            "encryptionCertificate is not a usable RSA certificate.",
        )
    })
}

fn check_webhook_url(url: &str) -> Result<(), ApiError> {
    let parsed = url::Url::parse(url)
        .map_err(|_| ApiError::new(400, "InvalidRequest", "The notification URL is not valid."))?;
    let loopback = matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(parsed.host(), Some(url::Host::Domain("localhost")));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ApiError::new(
            400,
            "InvalidRequest",
            "The notification URL must be https.",
        )),
    }
}

/// `/users/{id}/events[?$select=…]` → (mailbox, selected properties).
fn parse_resource(resource: &str) -> Result<(String, Option<Vec<String>>), ApiError> {
    let bad = || {
        ApiError::new(
            400,
            "InvalidRequest",
            "Unsupported resource; expected /users/{id}/events.",
        )
    };
    let (path, query) = resource.split_once('?').unwrap_or((resource, ""));
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let [users, mailbox, events] = parts[..] else {
        return Err(bad());
    };
    if !users.eq_ignore_ascii_case("users") || !events.eq_ignore_ascii_case("events") {
        return Err(bad());
    }
    let select = parse_query(query)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$select"))
        .map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        });
    Ok((percent_decode(mailbox).to_ascii_lowercase(), select))
}

pub(crate) fn render_subscription(s: &Subscription) -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.app,
        "changeType": s.change_types.join(","),
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": format!("{}Z", calendar::fmt_utc(s.expiration)),
        "creatorId": s.creator_id,
        "includeResourceData": s.rich.is_some(),
        "latestSupportedTlsVersion": "v1_2",
        "encryptionCertificateId": s.rich.as_ref().map(|r| r.1.clone()),
        "notificationUrlAppId": null,
        "notificationContentType": null,
    })
}

fn render_stored(
    st: &State,
    mailbox: &str,
    id: &str,
    ext: Option<&str>,
) -> Result<Value, ApiError> {
    let mb = st.cal.mailbox(mailbox)?;
    let item = mb.items.get(id).ok_or_else(ApiError::not_found)?;
    Ok(calendar::render(item, None, ext))
}

fn window(call: &Call) -> Result<(Timestamp, Timestamp), ApiError> {
    let get = |name: &str| {
        call.param(name).and_then(parse_instant).ok_or_else(|| {
            ApiError::new(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            )
        })
    };
    let (start, end) = (get("startDateTime")?, get("endDateTime")?);
    if end <= start {
        return Err(ApiError::new(
            400,
            "ErrorInvalidParameter",
            "EndDateTime must be after StartDateTime.",
        ));
    }
    Ok((start, end))
}

/// ISO 8601 with an offset or `Z`, or offset-less meaning UTC (Graph's rule for
/// calendarView parameters).
fn parse_instant(s: &str) -> Option<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

enum Filter {
    IcalUid(String),
    Ext { id: String, value: String },
}

fn parse_filter(f: &str) -> Result<Filter, ApiError> {
    let strings = quoted(f);
    let lower = f.to_ascii_lowercase();
    if lower.trim_start().starts_with("icaluid eq") && strings.len() == 1 {
        return Ok(Filter::IcalUid(strings[0].clone()));
    }
    if lower.starts_with("singlevalueextendedproperties/any(")
        && strings.len() == 2
        && lower.contains("ep/value eq")
    {
        return Ok(Filter::Ext {
            id: strings[0].clone(),
            value: strings[1].clone(),
        });
    }
    Err(ApiError::new(
        400,
        "ErrorInvalidUrlQueryFilter",
        "The filter expression is not supported.",
    ))
}

/// `singleValueExtendedProperties($filter=id eq '…')` → the property id.
fn expand_filter(expand: Option<&str>) -> Option<String> {
    let e = expand?;
    if !e
        .to_ascii_lowercase()
        .starts_with("singlevalueextendedproperties(")
    {
        return None;
    }
    quoted(e).into_iter().next()
}

/// The single-quoted OData string literals of an expression (`''` is a quote).
fn quoted(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut lit = String::new();
        loop {
            match chars.next() {
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                    lit.push('\'');
                }
                Some('\'') | None => break,
                Some(ch) => lit.push(ch),
            }
        }
        out.push(lit);
    }
    out
}

fn continue_page(
    shared: &Arc<Shared>,
    st: &mut State,
    call: &Call,
) -> Result<Option<Answer>, ApiError> {
    let Some(key) = call.param("$skiptoken") else {
        return Ok(None);
    };
    let state = st.pages.remove(key).ok_or_else(|| {
        if st.delta_gone {
            ApiError::new(
                410,
                "resyncRequired",
                "The paging state is no longer valid.",
            )
        } else {
            ApiError::new(400, "SyncStateNotFound", "The paging state was not found.")
        }
    })?;
    Ok(Some(emit_page(shared, st, state)))
}

fn page(
    shared: &Arc<Shared>,
    st: &mut State,
    items: Vec<Value>,
    size: usize,
    path: &str,
    end: PageEnd,
) -> Answer {
    emit_page(
        shared,
        st,
        PageState {
            items,
            offset: 0,
            size,
            path: path.to_owned(),
            end,
        },
    )
}

fn emit_page(shared: &Arc<Shared>, st: &mut State, mut state: PageState) -> Answer {
    let stop = (state.offset + state.size).min(state.items.len());
    let value: Vec<Value> = state.items[state.offset..stop].to_vec();
    let mut body = json!({"value": value});
    let base = format!("{}{}", shared.api_url(), state.path);
    if stop < state.items.len() {
        let key = uuid::Uuid::new_v4().simple().to_string();
        body["@odata.nextLink"] = json!(format!("{base}?$skiptoken={key}"));
        state.offset = stop;
        st.pages.insert(key, state);
    } else if let PageEnd::Delta(token) = &state.end {
        body["@odata.deltaLink"] = json!(format!("{base}?$deltatoken={token}"));
    }
    ok_json(200, &body)
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn ok_json(status: u16, v: &Value) -> Answer {
    json_answer(status, v, None)
}

fn json_answer(status: u16, v: &Value, request_id: Option<&str>) -> Answer {
    let mut b = Response::builder()
        .status(status)
        .header("Content-Type", "application/json; odata.metadata=minimal");
    if let Some(r) = request_id {
        b = b.header("request-id", r);
    }
    b.body(Full::new(Bytes::from(v.to_string())))
        .unwrap_or_default()
}

fn empty(status: u16) -> Answer {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

fn error_answer(e: &ApiError, request_id: Option<&str>) -> Answer {
    let rid = request_id
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let body = json!({"error": {
        "code": e.code,
        "message": e.message,
        "innerError": {"date": Timestamp::now().to_string(), "request-id": rid, "client-request-id": rid},
    }});
    json_answer(e.status, &body, Some(&rid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_literals_unescape() {
        assert_eq!(quoted("a eq 'x''y' and b eq 'z'"), ["x'y", "z"]);
        assert!(matches!(parse_filter("iCalUId eq 'U1'"), Ok(Filter::IcalUid(u)) if u == "U1"));
        assert!(parse_filter("subject eq 'x'").is_err());
    }

    #[test]
    fn resources_parse() {
        let (m, s) =
            parse_resource("/users/Room@X.com/events?$select=subject,start").unwrap_or_default();
        assert_eq!(m, "room@x.com");
        assert_eq!(s, Some(vec!["subject".to_owned(), "start".to_owned()]));
        assert!(parse_resource("/users/x/messages").is_err());
        assert_eq!(percent_decode("a%20b%27"), "a b'");
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }
}
