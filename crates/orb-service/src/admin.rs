//! The admin page under `/admin/`: the booking view as server-rendered HTML (askama
//! templates, auto-escaped), with filters, paging and sorting, a detail page per booking
//! with its audit trail, a Retry button for failed and parked bookings, and a health
//! panel. No JavaScript.
//!
//! It renders the one view model ([`crate::view`]) through the admin API's
//! [`crate::view::ViewPolicy`], so `sync.view_exclude` and `carry_subject` hold here as
//! in the JSON API and the command line, and a retry takes the API's own path (the one
//! behind `POST /api/bookings/{id}/retry`). It exists only where the API does (a configured
//! `service.admin_token_file`); otherwise every `/admin` path is 404.
//!
//! Security: a login form takes the admin token (compared by digest in constant time);
//! failed logins go through the API's per-source limiter and audit path and count in
//! `orb_admin_login_failures_total`. A login starts a server-side session: the cookie
//! holds only a random id (244 bits from the OS CSPRNG via UUID v4), marked
//! `HttpOnly; Secure; SameSite=Strict; Path=/admin`, and the table keeps only its SHA-256.
//! Every POST form carries the session's CSRF token, compared in constant time
//! (`subtle`); a POST a browser marks as cross-site (`Sec-Fetch-Site`) is refused as
//! well. Every answer carries a strict `Content-Security-Policy`, `nosniff`,
//! `no-referrer` and `no-store`. No token, secret or key is ever rendered.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use jiff::Timestamp;
use orb_store::KeyState;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::{Api, RetryRefused};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::runtime::Clock;
use crate::view::{self, BookingDetail, BookingState, Page, Query, Sort};
use crate::webhook::HealthFn;

/// The path prefix of the admin page.
pub const PREFIX: &str = "/admin";

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "orb_admin_session";

/// How long a session lasts after login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The `Content-Security-Policy` of every admin answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Sessions kept at most; beyond, the one closest to expiry is dropped.
const MAX_SESSIONS: usize = 1_000;

/// Largest form body read.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// The page sizes offered.
const PAGE_SIZES: &[usize] = &[25, 50, 100, 200];

const STYLESHEET: &str = include_str!("../static/admin.css");

/// The admin page's state: the API it shares limiter, policy and retry path with,
/// metrics and health for the health panel, the loop's clock and the session table.
pub struct Admin {
    api: Arc<Api>,
    metrics: Arc<Metrics>,
    health: HealthFn,
    clock: Clock,
    rooms: Vec<String>,
    /// SHA-256 of the session id → session.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Admin {
    // No session id, CSRF token or token digest is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("rooms", &self.rooms)
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// A request's valid session.
struct Active {
    key: [u8; 32],
    csrf: String,
}

impl Admin {
    /// The admin page next to `api`, for the rooms of `config`.
    pub fn new(
        api: Arc<Api>,
        metrics: Arc<Metrics>,
        health: HealthFn,
        clock: Clock,
        config: &Config,
    ) -> Self {
        Self {
            api,
            metrics,
            health,
            clock,
            rooms: config.rooms.iter().map(|r| r.mailbox.clone()).collect(),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Open sessions (expired ones included until they are next pruned).
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Answers one request under `/admin` from `client`.
    pub async fn handle<B>(&self, req: Request<B>, client: IpAddr) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_owned();
        let rest = path.strip_prefix(PREFIX).unwrap_or_default();
        let method = req.method().clone();
        if method == Method::POST && cross_site(req.headers()) {
            return self.message(
                StatusCode::FORBIDDEN,
                None,
                "Refused",
                "This form was sent from another site.",
            );
        }
        match (&method, rest) {
            (&Method::GET, "") => return redirect("/admin/"),
            (&Method::GET, "/static/admin.css") => {
                return respond(StatusCode::OK, "text/css; charset=utf-8", STYLESHEET);
            }
            (&Method::GET, "/login") => {
                if self.session(req.headers()).is_some() {
                    return redirect("/admin/");
                }
                return self.login_page(StatusCode::OK, None);
            }
            (&Method::POST, "/login") => return self.login(req, client).await,
            (_, "/login") => return method_not_allowed("GET, POST"),
            (_, "/static/admin.css") => return method_not_allowed("GET"),
            _ => {}
        }
        let Some(session) = self.session(req.headers()) else {
            return redirect("/admin/login");
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match (&method, segments.as_slice()) {
            (&Method::GET, []) if rest == "/" => self.list(req.uri().query(), &session).await,
            (&Method::POST, ["logout"]) => self.logout(req, &session).await,
            (_, ["logout"]) => method_not_allowed("POST"),
            (&Method::GET, ["bookings", id]) => {
                self.detail(&crate::api::decode(id), req.uri().query(), &session)
                    .await
            }
            (&Method::POST, ["bookings", id, "retry"]) => {
                let id = crate::api::decode(id);
                self.retry(req, &id, &session).await
            }
            (_, ["bookings", _, "retry"]) => method_not_allowed("POST"),
            _ => self.message(
                StatusCode::NOT_FOUND,
                Some(&session),
                "Not found",
                "There is no such page.",
            ),
        }
    }

    // ---- login and sessions ----------------------------------------------------------

    async fn login<B>(&self, req: Request<B>, client: IpAddr) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(wait) = self.api.limited(client) {
            tracing::warn!(%client, "admin page: too many failed attempts; refused");
            let mut r = self.login_page(
                StatusCode::TOO_MANY_REQUESTS,
                Some(format!(
                    "Too many failed attempts. Try again in {} s.",
                    wait.as_secs().max(1)
                )),
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            return r;
        }
        let form = match read_form(req).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        let token = field(&form, "token").unwrap_or_default();
        if token.trim().is_empty() || !self.api.token_matches(token.as_bytes()) {
            self.metrics.admin_login_failed();
            self.api.refuse(client, "admin-page", "/admin/login").await;
            return self.login_page(
                StatusCode::UNAUTHORIZED,
                Some("That is not the admin token.".to_owned()),
            );
        }
        let id = random_token();
        let session = Session {
            csrf: random_token(),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        self.insert_session(digest(&id), session);
        tracing::info!(%client, "admin page: logged in");
        let mut r = redirect("/admin/");
        if let Ok(cookie) = HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path={PREFIX}; Max-Age={}",
            SESSION_LIFETIME.as_secs()
        )) {
            r.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        r
    }

    async fn logout<B>(&self, req: Request<B>, session: &Active) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let form = match read_form(req).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        if !csrf_ok(session, &form) {
            return self.csrf_refused(session);
        }
        self.sessions().remove(&session.key);
        let mut r = redirect("/admin/login");
        r.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "orb_admin_session=; HttpOnly; Secure; SameSite=Strict; Path=/admin; Max-Age=0",
            ),
        );
        r
    }

    /// The request's live session, if its cookie names one.
    fn session(&self, headers: &HeaderMap) -> Option<Active> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let key = digest(&id);
        let mut sessions = self.sessions();
        let session = sessions.get(&key)?.clone();
        if session.expires <= Instant::now() {
            sessions.remove(&key);
            return None;
        }
        Some(Active {
            key,
            csrf: session.csrf,
        })
    }

    /// The session table. A panic elsewhere while holding the lock leaves the map itself
    /// intact, so a poisoned lock is used as it is.
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert_session(&self, key: [u8; 32], session: Session) {
        let now = Instant::now();
        let mut sessions = self.sessions();
        sessions.retain(|_, s| s.expires > now);
        while sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k)
            else {
                break;
            };
            sessions.remove(&oldest);
        }
        sessions.insert(key, session);
    }

    // ---- pages -----------------------------------------------------------------------

    async fn list(&self, raw: Option<&str>, session: &Active) -> Response<Full<Bytes>> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let form = FilterForm::of(&pairs);
        let policy = self.api.policy().clone();
        let store = Arc::clone(self.api.store());
        let parsed = Query::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let (status, query, page, error) = match parsed {
            Ok(query) => {
                let q = query.clone();
                match tokio::task::spawn_blocking(move || policy.list_store(&store, &q)).await {
                    Ok(Ok(page)) => (StatusCode::OK, query, Some(page), None),
                    Ok(Err(e)) => (StatusCode::BAD_REQUEST, query, None, Some(e.0)),
                    Err(e) => {
                        tracing::error!(error = %e, "admin page: listing failed");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            query,
                            None,
                            Some("The bookings could not be listed.".to_owned()),
                        )
                    }
                }
            }
            Err(e) => (StatusCode::BAD_REQUEST, Query::default(), None, Some(e.0)),
        };
        let health = self.health_panel().await;
        let policy = self.api.policy();
        let columns: Vec<Column> = view::MANAGEMENT_FIELDS
            .iter()
            .filter(|f| policy.shows(f))
            .map(|f| Column::new(f, &query))
            .collect();
        let rows = page
            .as_ref()
            .map(|p| {
                p.items
                    .iter()
                    .map(|b| Row {
                        href: booking_href(&b.id),
                        id: b.id.clone(),
                        state: b.state.as_str(),
                        state_class: state_class(b.state),
                        cells: columns
                            .iter()
                            .map(|c| Cell::compact(c.name, b.field(c.name)))
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let template = ListPage {
            chrome: Chrome::new("Bookings", Some(session)),
            health,
            filter: form,
            show_room_filter: policy.shows("room"),
            rooms: self.rooms.clone(),
            states: BookingState::ALL.iter().map(|s| s.as_str()).collect(),
            page_sizes: PAGE_SIZES.to_vec(),
            columns,
            rows,
            summary: page
                .as_ref()
                .map(|p| summary(p, &query))
                .unwrap_or_default(),
            paging: page
                .as_ref()
                .map(|p| Paging::of(p, &query))
                .unwrap_or_default(),
            filtered: query_is_filtered(&query),
            error,
        };
        render(status, &template)
    }

    async fn detail(&self, id: &str, raw: Option<&str>, session: &Active) -> Response<Full<Bytes>> {
        let policy = self.api.policy().clone();
        let store = Arc::clone(self.api.store());
        let owned = id.to_owned();
        let detail =
            match tokio::task::spawn_blocking(move || policy.detail_store(&store, &owned)).await {
                Ok(Ok(Some(d))) => d,
                Ok(Ok(None)) => {
                    return self.message(
                        StatusCode::NOT_FOUND,
                        Some(session),
                        "No such booking",
                        "orb keeps no booking with this id.",
                    );
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "admin page: reading a booking failed");
                    return self.message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Some(session),
                        "Unavailable",
                        "The store could not be read.",
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "admin page: reading a booking failed");
                    return self.message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Some(session),
                        "Unavailable",
                        "The store could not be read.",
                    );
                }
            };
        // Only known notices are shown: nothing from the URL is echoed.
        let notice = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .find(|(k, _)| k == "notice")
            .and_then(|(_, v)| match v.as_ref() {
                "retry" => Some(
                    "Retry requested. The booking updates here once the sync loop has \
                     handled it; reload to see its state.",
                ),
                _ => None,
            });
        render(StatusCode::OK, &DetailPage::of(&detail, session, notice))
    }

    async fn retry<B>(&self, req: Request<B>, id: &str, session: &Active) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let form = match read_form(req).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        if !csrf_ok(session, &form) {
            return self.csrf_refused(session);
        }
        match self.api.request_retry(id).await {
            Ok(_) => redirect(&format!("{}?notice=retry", booking_href(id))),
            Err(refused) => {
                let title = match refused {
                    RetryRefused::NotFound => "No such booking",
                    RetryRefused::NotRetryable(_) => "Not retried",
                    RetryRefused::Store | RetryRefused::Stopped => "Unavailable",
                };
                self.message(refused.status(), Some(session), title, &refused.to_string())
            }
        }
    }

    async fn health_panel(&self) -> HealthPanel {
        let health = (self.health)();
        let now = (self.clock)();
        let store = Arc::clone(self.api.store());
        let rooms = self.rooms.clone();
        let read = tokio::task::spawn_blocking(move || {
            let subs = store.subscriptions().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "admin page: subscriptions unreadable");
                Vec::new()
            });
            let keys = store.encryption_keys().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "admin page: certificates unreadable");
                Vec::new()
            });
            // Only the public facts leave this closure: never a private key.
            let keys: Vec<(String, KeyState, Timestamp)> = keys
                .into_iter()
                .filter(|k| k.state != KeyState::Retired)
                .map(|k| (k.id, k.state, k.expires_at))
                .collect();
            let mut rows = Vec::new();
            for room in &rooms {
                let mut found: Vec<_> = subs.iter().filter(|s| s.room.as_str() == room).collect();
                found.sort_by_key(|s| std::cmp::Reverse(s.expires_at));
                if found.is_empty() {
                    rows.push(SubscriptionRow {
                        room: room.clone(),
                        state: "none".to_owned(),
                        expires: "-".to_owned(),
                        class: "bad",
                    });
                }
                for s in found {
                    let left = s.expires_at.duration_since(now).as_secs();
                    rows.push(SubscriptionRow {
                        room: room.clone(),
                        state: format!("{:?}", s.state).to_lowercase(),
                        expires: if left > 0 {
                            format!("{left} s ({})", approx(left))
                        } else {
                            "expired".to_owned()
                        },
                        class: if left <= 0 {
                            "bad"
                        } else if left < 3600 {
                            "warn"
                        } else {
                            "ok"
                        },
                    });
                }
            }
            (rows, keys)
        })
        .await;
        let (subscriptions, keys) = read.unwrap_or_default();
        let certificates = keys
            .into_iter()
            .map(|(id, state, expires_at)| {
                let left = expires_at.duration_since(now).as_secs();
                CertificateRow {
                    id,
                    state: match state {
                        KeyState::Current => "current",
                        KeyState::Previous => "previous",
                        KeyState::Retired => "retired",
                    },
                    expires: format!("{} ({})", view::time(expires_at), in_or_ago(left)),
                    class: if left <= 0 {
                        "bad"
                    } else if left < 14 * 86_400 {
                        "warn"
                    } else {
                        "ok"
                    },
                }
            })
            .collect();
        let wall = Timestamp::now();
        HealthPanel {
            ok: health.status == "ok",
            status: health.status,
            problems: health.problems,
            active: health.subscriptions.active,
            expected: health.subscriptions.expected,
            subscriptions,
            last_notification: self.metrics.last_notification().map_or_else(
                || "none since start".to_owned(),
                |t| {
                    format!(
                        "{} ({})",
                        view::time(t),
                        in_or_ago(t.duration_since(wall).as_secs())
                    )
                },
            ),
            outbox_depth: self.metrics.outbox_depth(),
            parked: self.metrics.parked(),
            inbox_pending: health.inbox_pending,
            certificates,
        }
    }

    fn login_page(&self, status: StatusCode, error: Option<String>) -> Response<Full<Bytes>> {
        render(
            status,
            &LoginPage {
                chrome: Chrome::new("Sign in", None),
                error,
            },
        )
    }

    fn csrf_refused(&self, session: &Active) -> Response<Full<Bytes>> {
        tracing::warn!("admin page: a form without a valid CSRF token was refused");
        self.message(
            StatusCode::FORBIDDEN,
            Some(session),
            "Refused",
            "The form was stale or not sent from this page. Reload the page and try again.",
        )
    }

    fn message(
        &self,
        status: StatusCode,
        session: Option<&Active>,
        title: &str,
        text: &str,
    ) -> Response<Full<Bytes>> {
        render(
            status,
            &MessagePage {
                chrome: Chrome::new(title, session),
                heading: title.to_owned(),
                text: text.to_owned(),
            },
        )
    }
}

// ---- templates ---------------------------------------------------------------------

/// What the frame of every page needs.
struct Chrome {
    title: String,
    /// The session's CSRF token (for the logout form), when signed in.
    csrf: Option<String>,
}

impl Chrome {
    fn new(title: &str, session: Option<&Active>) -> Self {
        Self {
            title: title.to_owned(),
            csrf: session.map(|s| s.csrf.clone()),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    chrome: Chrome,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage {
    chrome: Chrome,
    heading: String,
    text: String,
}

#[derive(Template)]
#[template(path = "admin/list.html")]
struct ListPage {
    chrome: Chrome,
    health: HealthPanel,
    filter: FilterForm,
    show_room_filter: bool,
    rooms: Vec<String>,
    states: Vec<&'static str>,
    page_sizes: Vec<usize>,
    columns: Vec<Column>,
    rows: Vec<Row>,
    summary: String,
    paging: Paging,
    filtered: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/detail.html")]
struct DetailPage {
    chrome: Chrome,
    id: String,
    state: &'static str,
    state_class: &'static str,
    private: bool,
    groups: Vec<FieldGroup>,
    audit: Vec<AuditRow>,
    retryable: bool,
    retry_action: String,
    notice: Option<&'static str>,
}

impl DetailPage {
    fn of(d: &BookingDetail, session: &Active, notice: Option<&'static str>) -> Self {
        let b = &d.booking;
        let group = |title: &'static str, group: &view::Group| FieldGroup {
            title,
            fields: group
                .iter()
                .map(|(name, value)| {
                    let cell = Cell::of(name, Some(value));
                    DetailField {
                        label: label(name),
                        name: name.to_owned(),
                        text: cell.text,
                        badge: cell.badge,
                    }
                })
                .collect(),
        };
        Self {
            chrome: Chrome::new("Booking", Some(session)),
            id: b.id.clone(),
            state: b.state.as_str(),
            state_class: state_class(b.state),
            private: b.private,
            groups: vec![
                group("Agenda", &b.agenda),
                group("System", &b.system),
                group("Status", &b.status),
            ],
            audit: d
                .audit
                .iter()
                .rev()
                .map(|a| AuditRow {
                    at: view::time(a.at),
                    actor: a.actor.clone(),
                    action: a.action.clone(),
                    outcome: a.outcome.clone(),
                    detail: a.detail.clone().unwrap_or_default(),
                })
                .collect(),
            retryable: b.state.retryable(),
            retry_action: format!("{}/retry", booking_href(&b.id)),
            notice,
        }
    }
}

struct HealthPanel {
    status: &'static str,
    ok: bool,
    problems: Vec<String>,
    active: usize,
    expected: usize,
    subscriptions: Vec<SubscriptionRow>,
    last_notification: String,
    outbox_depth: i64,
    parked: i64,
    inbox_pending: usize,
    certificates: Vec<CertificateRow>,
}

struct SubscriptionRow {
    room: String,
    state: String,
    expires: String,
    class: &'static str,
}

struct CertificateRow {
    id: String,
    state: &'static str,
    expires: String,
    class: &'static str,
}

/// The filter form's values as the user entered them.
#[derive(Default)]
struct FilterForm {
    room: String,
    status: String,
    from: String,
    to: String,
    search: String,
    sort: String,
    limit: String,
}

impl FilterForm {
    fn of(pairs: &[(String, String)]) -> Self {
        let get = |name: &str| field(pairs, name).unwrap_or_default().to_owned();
        Self {
            room: get("room"),
            status: get("status"),
            from: get("from"),
            to: get("to"),
            search: get("search"),
            sort: get("sort"),
            limit: get("limit"),
        }
    }
}

struct Column {
    name: &'static str,
    label: &'static str,
    /// A link that sorts by this column, for sortable ones.
    sort_href: Option<String>,
    sorted: bool,
}

impl Column {
    fn new(name: &'static str, query: &Query) -> Self {
        let sort = match name {
            "start" => Some(Sort::Start),
            "last_updated_at" => Some(Sort::Updated),
            "failed_count" => Some(Sort::Failures),
            "room" => Some(Sort::Room),
            "organizer" => Some(Sort::Organizer),
            _ => None,
        };
        Self {
            name,
            label: label(name),
            sort_href: sort.map(|sort| {
                list_href(&Query {
                    sort,
                    offset: None,
                    cursor: None,
                    ..query.clone()
                })
            }),
            sorted: sort == Some(query.sort),
        }
    }
}

struct Row {
    id: String,
    href: String,
    state: &'static str,
    state_class: &'static str,
    cells: Vec<Cell>,
}

struct Cell {
    text: String,
    /// A status word shown as a badge of this class.
    badge: Option<&'static str>,
}

impl Cell {
    /// A field as the detail page shows it (times to the second).
    fn of(name: &str, value: Option<&Value>) -> Self {
        let text = value.map(view::text).unwrap_or_default();
        Self::with_text(name, text)
    }

    /// A field as the list shows it: times to the minute (bookings are minute-granular;
    /// the detail page has the seconds), to keep the table narrow.
    fn compact(name: &str, value: Option<&Value>) -> Self {
        let text = match value {
            Some(Value::String(s)) => match s.parse::<Timestamp>() {
                Ok(t) => t.strftime("%Y-%m-%d %H:%M").to_string(),
                Err(_) => s.clone(),
            },
            Some(v) => view::text(v),
            None => String::new(),
        };
        Self::with_text(name, text)
    }

    fn with_text(name: &str, text: String) -> Self {
        let badge = matches!(name, "exchange_status" | "topdesk_status")
            .then(|| status_class(&text))
            .flatten();
        Self { text, badge }
    }
}

struct FieldGroup {
    title: &'static str,
    fields: Vec<DetailField>,
}

struct DetailField {
    label: &'static str,
    name: String,
    text: String,
    badge: Option<&'static str>,
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    outcome: String,
    detail: String,
}

#[derive(Default)]
struct Paging {
    first: Option<String>,
    previous: Option<String>,
    next: Option<String>,
}

impl Paging {
    /// Offset paging while it is cheap (up to [`view::MAX_OFFSET`]), the view model's
    /// cursor beyond, so that any page of 100k bookings stays one store scan.
    fn of(page: &Page, query: &Query) -> Self {
        let limit = query
            .limit
            .unwrap_or(view::DEFAULT_LIMIT)
            .clamp(1, view::MAX_LIMIT);
        let offset = query.offset.unwrap_or(0);
        let at_start = offset == 0 && query.cursor.is_none();
        let first = (!at_start).then(|| {
            list_href(&Query {
                offset: None,
                cursor: None,
                ..query.clone()
            })
        });
        let previous = (query.cursor.is_none() && offset > 0).then(|| {
            list_href(&Query {
                offset: Some(offset.saturating_sub(limit)).filter(|o| *o > 0),
                ..query.clone()
            })
        });
        let next = page.next_cursor.as_ref().map(|cursor| {
            let next_offset = offset + limit;
            if query.cursor.is_none() && next_offset <= view::MAX_OFFSET {
                list_href(&Query {
                    offset: Some(next_offset),
                    ..query.clone()
                })
            } else {
                list_href(&Query {
                    offset: None,
                    cursor: Some(cursor.clone()),
                    ..query.clone()
                })
            }
        });
        Self {
            first,
            previous,
            next,
        }
    }
}

fn summary(page: &Page, query: &Query) -> String {
    let total = thousands(page.total);
    if page.items.is_empty() {
        return format!("0 of {total} bookings");
    }
    if query.cursor.is_some() {
        return format!(
            "{} more of {total} bookings · times in UTC",
            page.items.len()
        );
    }
    let from = query.offset.unwrap_or(0) + 1;
    let to = from + page.items.len() - 1;
    format!(
        "{}–{} of {total} bookings · times in UTC",
        thousands(from),
        thousands(to)
    )
}

fn query_is_filtered(q: &Query) -> bool {
    q.room.is_some()
        || q.status.is_some()
        || q.from.is_some()
        || q.to.is_some()
        || q.search.is_some()
}

fn render(status: StatusCode, template: &impl Template) -> Response<Full<Bytes>> {
    match template.render() {
        Ok(html) => respond(status, "text/html; charset=utf-8", html),
        Err(e) => {
            tracing::error!(error = %e, "admin page: rendering failed");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "internal error\n",
            )
        }
    }
}

// ---- helpers -----------------------------------------------------------------------

/// A new random token: 64 hex digits from two v4 UUIDs (244 random bits from the
/// operating system's CSPRNG, which `uuid` reads through `getrandom`).
fn random_token() -> String {
    let mut out = String::with_capacity(64);
    for _ in 0..2 {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn csrf_ok(session: &Active, form: &[(String, String)]) -> bool {
    field(form, "csrf").is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// A browser's own statement that a POST comes from another site (`Sec-Fetch-Site`).
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads an `application/x-www-form-urlencoded` body of at most [`MAX_FORM_BYTES`].
async fn read_form<B>(req: Request<B>) -> Result<Vec<(String, String)>, Response<Full<Bytes>>>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain; charset=utf-8",
            "form too large\n",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(body) => Ok(url::form_urlencoded::parse(&body.to_bytes())
            .into_owned()
            .collect()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(respond(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            "incomplete body\n",
        )),
    }
}

/// The list page's URL for `query`.
fn list_href(query: &Query) -> String {
    let pairs = query.to_pairs();
    if pairs.is_empty() {
        return "/admin/".to_owned();
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        s.append_pair(k, v);
    }
    format!("/admin/?{}", s.finish())
}

/// The detail page's URL of booking `id`.
fn booking_href(id: &str) -> String {
    let mut out = String::from("/admin/bookings/");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn label(field: &str) -> &'static str {
    match field {
        "appointment_type" => "Type",
        "organizer" => "Organizer",
        "location" => "Location",
        "room" => "Room",
        "attendees" => "Attendees",
        "subject" => "Subject",
        "start" => "Start",
        "end" => "End",
        "complexity_index" => "Complexity index",
        "created_at" => "Created",
        "match_id" => "Match id",
        "correlation_id" => "Correlation id",
        "processor_created" => "Created by",
        "original_organizer" => "Original organizer",
        "last_updated_at" => "Last updated",
        "last_updated_by" => "Last updated by",
        "failed_at" => "Failed at",
        "failed_processor" => "Failed processor",
        "failed_count" => "Failures",
        "retry_count" => "Retries",
        "exchange_status" => "Exchange",
        "topdesk_status" => "TOPdesk",
        _ => "Field",
    }
}

fn state_class(state: BookingState) -> &'static str {
    match state {
        BookingState::InSync => "ok",
        BookingState::Pending => "info",
        BookingState::Failed | BookingState::Parked => "bad",
        BookingState::Conflicting | BookingState::HeldRemoval => "warn",
        _ => "muted",
    }
}

/// The badge class of a side's status word (none for an unknown side).
fn status_class(word: &str) -> Option<&'static str> {
    Some(match word {
        "-" | "" => return None,
        "in sync" => "ok",
        "parked" | "failed" => "bad",
        "refused" | "held removal" => "warn",
        w if w == crate::persist::CANCELLED => "muted",
        _ => "info",
    })
}

/// `in 3 d 4 h` or `5 min ago`.
fn in_or_ago(seconds: i64) -> String {
    if seconds >= 0 {
        format!("in {}", approx(seconds))
    } else {
        format!("{} ago", approx(seconds.saturating_neg()))
    }
}

fn approx(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn redirect(location: &str) -> Response<Full<Bytes>> {
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(value) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, value);
    }
    r
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain; charset=utf-8",
        "method not allowed\n",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// An answer with the admin page's security headers.
fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; orb_admin_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("orb_admin_session="),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_token());
    }

    #[test]
    fn booking_links_encode_the_id() {
        assert_eq!(booking_href("m-1.a_b"), "/admin/bookings/m-1.a_b");
        assert_eq!(booking_href("a/b c"), "/admin/bookings/a%2Fb%20c");
        assert_eq!(crate::api::decode("a%2Fb%20c"), "a/b c");
    }

    #[test]
    fn list_links_keep_the_filters() {
        let q = Query::from_pairs([("status", "parked"), ("search", "a&b")]).unwrap();
        assert_eq!(list_href(&q), "/admin/?status=parked&search=a%26b");
        assert_eq!(list_href(&Query::default()), "/admin/");
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(approx(59), "59 s");
        assert_eq!(approx(3 * 86_400 + 4 * 3_600), "3 d 4 h");
        assert_eq!(in_or_ago(-120), "2 min ago");
    }

    #[test]
    fn paging_uses_offsets_while_cheap_and_the_cursor_beyond() {
        let page = |next: Option<&str>| Page {
            items: Vec::new(),
            total: 100_000,
            next_cursor: next.map(str::to_owned),
        };
        // First page: no way back, next by offset.
        let p = Paging::of(&page(Some("c1")), &Query::default());
        assert_eq!((p.first, p.previous), (None, None));
        assert_eq!(p.next.as_deref(), Some("/admin/?offset=50"));
        // Deep in the offsets: back by offset, and past the limit on by cursor.
        let deep = Query {
            limit: Some(100),
            offset: Some(view::MAX_OFFSET - 50),
            ..Query::default()
        };
        let p = Paging::of(&page(Some("c2")), &deep);
        assert_eq!(p.first.as_deref(), Some("/admin/?limit=100"));
        assert_eq!(p.previous.as_deref(), Some("/admin/?limit=100&offset=9850"));
        assert_eq!(p.next.as_deref(), Some("/admin/?limit=100&cursor=c2"));
        // On a cursor page: forward only, plus the first page; the last page has no next.
        let on = Query {
            cursor: Some("c2".to_owned()),
            ..Query::default()
        };
        let p = Paging::of(&page(None), &on);
        assert_eq!(p.first.as_deref(), Some("/admin/"));
        assert_eq!((p.previous, p.next), (None, None));
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
    }
}
