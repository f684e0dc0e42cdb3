//! The admin JSON API on the webhook's server: `GET /api/bookings` (filters and paging
//! of [`Query`]), `GET /api/bookings/{id}` (the booking with its audit trail) and
//! `POST /api/bookings/{id}/retry` (an admin retry of a failed or parked booking, R18,
//! handed to the running loop as [`Control::RetryBooking`]).
//!
//! Every answer is built from the one view model ([`crate::view`]), so the configured
//! exclusions hold here exactly as everywhere else. Access needs the bearer token of
//! `service.admin_token_file`. Without one the API does not exist (404): it is never
//! open. Only the token's SHA-256 is kept, and a presented token is compared by its
//! digest in constant time (`subtle`). Failed attempts are counted, logged and audited
//! with the source address but never the token, and limited per source address by a token
//! bucket: a source that used up its bucket gets 429 until it refills, whatever it
//! presents.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use orb_store::{AuditEntry, MatchId, Store, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use crate::Error;
use crate::config::Config;
use crate::runtime::Control;
use crate::view::{BookingState, Query, ViewPolicy};

/// The path prefix of the bookings API.
pub const BOOKINGS: &str = "/api/bookings";

/// The notification-encryption certificates: `GET` lists them, `POST …/rotate` makes a
/// new current one in the running daemon (`orb certs list/rotate` while it runs).
pub const CERTIFICATES: &str = "/api/certificates";

/// `GET`: the running daemon runs `orb doctor`'s checks with its own store and
/// configuration (`orb doctor` while the daemon holds the store).
pub const DOCTOR: &str = "/api/doctor";

/// Failed attempts a source may make in a burst.
pub const FAILED_BURST: u32 = 10;

/// How often a source regains one failed attempt.
pub const FAILED_REFILL: Duration = Duration::from_secs(6);

/// The correlation id of the audit records of failed attempts.
pub const AUDIT_RUN: &str = "admin-api-auth";

/// Sources tracked at most; beyond, full buckets are forgotten first.
const MAX_SOURCES: usize = 10_000;

/// The API's state: the store, the view policy, the token's digest, the loop's control
/// channel and the failed-attempt limiter.
pub struct Api {
    store: Arc<Store>,
    policy: ViewPolicy,
    token_digest: [u8; 32],
    control: mpsc::UnboundedSender<Control>,
    limiter: Mutex<HashMap<IpAddr, Bucket>>,
    failed: AtomicU64,
    /// The running configuration, for [`DOCTOR`] (`None`: not offered).
    config: Option<Arc<Config>>,
}

impl std::fmt::Debug for Api {
    // Neither the token nor its digest is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("policy", &self.policy)
            .field("failed_attempts", &self.failed_attempts())
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API with this token (leading and trailing whitespace ignored).
    pub fn new(
        store: Arc<Store>,
        policy: ViewPolicy,
        token: &[u8],
        control: mpsc::UnboundedSender<Control>,
    ) -> Self {
        Self {
            store,
            policy,
            token_digest: Sha256::digest(token.trim_ascii()).into(),
            control,
            limiter: Mutex::new(HashMap::new()),
            failed: AtomicU64::new(0),
            config: None,
        }
    }

    /// The API of a configuration: `None` (disabled) without `service.admin_token_file`;
    /// an error when that file cannot be read or holds no token.
    pub fn from_config(
        config: &Config,
        store: Arc<Store>,
        control: mpsc::UnboundedSender<Control>,
    ) -> Result<Option<Arc<Self>>, Error> {
        let Some(path) = &config.service.admin_token_file else {
            tracing::info!("no service.admin_token_file: the admin API is disabled");
            return Ok(None);
        };
        let token = read_token(path)?;
        let mut api = Self::new(
            store,
            ViewPolicy::from_config(&config.sync),
            &token,
            control,
        );
        api.config = Some(Arc::new(config.clone()));
        Ok(Some(Arc::new(api)))
    }

    /// Failed authentication attempts since start.
    pub fn failed_attempts(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Answers one request under `/api/` from `client`.
    pub async fn handle<B>(&self, req: Request<B>, client: IpAddr) -> Response<Full<Bytes>> {
        if let Some(wait) = self.limited(client) {
            tracing::warn!(%client, "admin API: too many failed attempts; refused");
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many failed attempts");
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(wait.as_secs().max(1)),
            );
            return r;
        }
        if !self.authorized(req.headers()) {
            self.refuse(client, "admin-api", req.uri().path()).await;
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"orb\""),
            );
            return r;
        }
        let path = req.uri().path();
        if path.trim_end_matches('/') == DOCTOR {
            return match *req.method() {
                Method::GET => self.doctor().await,
                _ => method_not_allowed("GET"),
            };
        }
        if let Some(rest) = path.strip_prefix(CERTIFICATES) {
            return match (req.method(), rest.trim_end_matches('/')) {
                (&Method::GET, "") => self.certificates().await,
                (_, "") => method_not_allowed("GET"),
                (&Method::POST, "/rotate") => self.rotate(req.uri().query()).await,
                (_, "/rotate") => method_not_allowed("POST"),
                _ => error(StatusCode::NOT_FOUND, "not found"),
            };
        }
        let Some(rest) = path.strip_prefix(BOOKINGS) else {
            return error(StatusCode::NOT_FOUND, "not found");
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match (req.method(), segments.as_slice()) {
            (&Method::GET, []) => self.list(req.uri().query()).await,
            (_, []) => method_not_allowed("GET"),
            (&Method::GET, [id]) => self.detail(&decode(id)).await,
            (_, [_]) => method_not_allowed("GET"),
            (&Method::POST, [id, "retry"]) => self.retry(&decode(id)).await,
            (_, [_, "retry"]) => method_not_allowed("POST"),
            _ => error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    async fn list(&self, query: Option<&str>) -> Response<Full<Bytes>> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let query = match Query::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Ok(q) => q,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.0),
        };
        let store = Arc::clone(&self.store);
        let policy = self.policy.clone();
        match tokio::task::spawn_blocking(move || policy.list_store(&store, &query)).await {
            Ok(Ok(page)) => json(StatusCode::OK, &page),
            Ok(Err(e)) => error(StatusCode::BAD_REQUEST, &e.0),
            Err(e) => {
                tracing::error!(error = %e, "admin API: listing failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, "listing failed")
            }
        }
    }

    async fn detail(&self, id: &str) -> Response<Full<Bytes>> {
        let store = Arc::clone(&self.store);
        let policy = self.policy.clone();
        let id = id.to_owned();
        match tokio::task::spawn_blocking(move || policy.detail_store(&store, &id)).await {
            Ok(Ok(Some(detail))) => json(StatusCode::OK, &detail),
            Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no such booking"),
            Ok(Err(e)) => unreadable("a booking", &e),
            Err(e) => unreadable("a booking", &e),
        }
    }

    async fn doctor(&self) -> Response<Full<Bytes>> {
        let Some(config) = &self.config else {
            return error(StatusCode::NOT_FOUND, "not found");
        };
        tracing::info!("admin API: doctor checks requested");
        let report = crate::doctor::run_with_store(
            config,
            &self.store,
            &crate::doctor::DoctorOptions::default(),
        )
        .await;
        json(StatusCode::OK, &report)
    }

    async fn certificates(&self) -> Response<Full<Bytes>> {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || crate::state::certificates(&store)).await {
            Ok(Ok(list)) => json(StatusCode::OK, &list),
            Ok(Err(e)) => unreadable("the certificates", &e),
            Err(e) => unreadable("the certificates", &e),
        }
    }

    /// `POST /api/certificates/rotate?bits=N&validity_days=D` (both optional: 2048 bits,
    /// 90 days): hands the rotation to the running loop, which renews every
    /// subscription onto the new certificate.
    async fn rotate(&self, query: Option<&str>) -> Response<Full<Bytes>> {
        let mut key_bits = orb_notification_crypto::KeyBits::default();
        let mut days: u64 = 90;
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "bits" => {
                    match v
                        .parse::<u32>()
                        .ok()
                        .and_then(orb_notification_crypto::KeyBits::from_bits)
                    {
                        Some(bits) => key_bits = bits,
                        None => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                "bits must be 2048, 3072 or 4096",
                            );
                        }
                    }
                }
                "validity_days" => match v.parse::<u64>() {
                    Ok(d) if (1..=3650).contains(&d) => days = d,
                    _ => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "validity_days must be between 1 and 3650",
                        );
                    }
                },
                other => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("unknown parameter {other:?}"),
                    );
                }
            }
        }
        let request = Control::RotateCertificate {
            key_bits,
            validity: Duration::from_secs(days * 24 * 3600),
        };
        if self.control.send(request).is_err() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
        }
        let entry = AuditEntry::new(
            Timestamp::now(),
            "admin-certificates".into(),
            None,
            "admin",
            "rotate certificate",
            "requested",
        );
        let store = Arc::clone(&self.store);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.append_audit(entry)).await {
            tracing::warn!(error = %e, "admin API: the rotation request was not audited");
        }
        tracing::info!("admin certificate rotation requested");
        json(StatusCode::ACCEPTED, &serde_json::json!({"accepted": true}))
    }

    async fn retry(&self, id: &str) -> Response<Full<Bytes>> {
        match self.request_retry(id).await {
            Ok(was) => json(
                StatusCode::ACCEPTED,
                &RetryAccepted {
                    id: id.to_owned(),
                    accepted: true,
                    was,
                },
            ),
            Err(refused) => error(refused.status(), &refused.to_string()),
        }
    }

    /// The one retry path (JSON API and admin page): checks that the booking is failed
    /// or parked, hands it to the running loop and audits the request in the booking's
    /// processing run. Returns the state it was in.
    pub(crate) async fn request_retry(&self, id: &str) -> Result<BookingState, RetryRefused> {
        let booking = match self.store.booking(&MatchId::new(id)) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(RetryRefused::NotFound),
            Err(e) => {
                tracing::error!(error = %e, "admin API: reading a booking failed");
                return Err(RetryRefused::Store);
            }
        };
        let state = BookingState::of(&booking);
        if !state.retryable() {
            return Err(RetryRefused::NotRetryable(state));
        }
        if self
            .control
            .send(Control::RetryBooking {
                match_id: id.to_owned(),
            })
            .is_err()
        {
            return Err(RetryRefused::Stopped);
        }
        // The request itself goes into the audit trail of the booking's processing run.
        let mut entry = AuditEntry::new(
            Timestamp::now(),
            booking.correlation_id.clone(),
            Some(booking.match_id.clone()),
            "admin",
            "retry",
            "requested",
        );
        entry.detail = Some(format!("was {state}"));
        let store = Arc::clone(&self.store);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.append_audit(entry)).await {
            tracing::warn!(error = %e, "admin API: the retry request was not audited");
        }
        tracing::info!(match_id = id, "admin retry requested");
        Ok(state)
    }

    /// Records one failed authentication from `client` (`actor`: `admin-api` or
    /// `admin-page`): counted, taken from the source's bucket, logged and audited with
    /// the source address — never with what was presented.
    pub(crate) async fn refuse(&self, client: IpAddr, actor: &'static str, path: &str) {
        let count = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        self.take(client);
        tracing::warn!(%client, path, actor, failed_attempts = count, "admin: missing or wrong token");
        // Audited too (the limiter bounds how many records one source can cause).
        let mut entry = AuditEntry::new(
            Timestamp::now(),
            orb_store::CorrelationId::new(AUDIT_RUN),
            None,
            actor,
            "authenticate",
            "refused",
        );
        entry.detail = Some(format!("from {client}"));
        let store = Arc::clone(&self.store);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.append_audit(entry)).await {
            tracing::warn!(error = %e, "admin: a failed attempt was not audited");
        }
    }

    /// Whether `token` (surrounding whitespace ignored) is the admin token, compared by
    /// digest in constant time.
    pub(crate) fn token_matches(&self, token: &[u8]) -> bool {
        // Digests have one length, so nothing about the token's length leaks either.
        let presented: [u8; 32] = Sha256::digest(token.trim_ascii()).into();
        bool::from(presented.ct_eq(&self.token_digest))
    }

    /// The store the views read.
    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The view policy (`sync.view_exclude`, `carry_subject`).
    pub(crate) fn policy(&self) -> &ViewPolicy {
        &self.policy
    }

    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let bytes = value.as_bytes();
        let Some(token) = bytes
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
            .and_then(|_| bytes.get(7..))
        else {
            return false;
        };
        self.token_matches(token)
    }

    /// `Some(wait)` when `client` has no failed attempt left.
    pub(crate) fn limited(&self, client: IpAddr) -> Option<Duration> {
        let mut buckets = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.get_mut(&client)?;
        bucket.refill(Instant::now());
        (bucket.tokens < 1.0).then(|| {
            let missing = 1.0 - bucket.tokens;
            FAILED_REFILL.mul_f64(missing)
        })
    }

    fn take(&self, client: IpAddr) {
        let now = Instant::now();
        let mut buckets = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&client) {
            buckets.retain(|_, b| {
                b.refill(now);
                b.tokens < f64::from(FAILED_BURST)
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: f64::from(FAILED_BURST),
            at: now,
        });
        bucket.refill(now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
    }
}

/// The answer to an accepted retry.
#[derive(Debug, Serialize)]
struct RetryAccepted {
    id: String,
    accepted: bool,
    was: BookingState,
}

/// Why a retry was not handed to the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RetryRefused {
    #[error("no such booking")]
    NotFound,
    #[error("the booking is {0}; only failed or parked bookings are retried")]
    NotRetryable(BookingState),
    #[error("the store could not be read")]
    Store,
    #[error("the sync loop has stopped")]
    Stopped,
}

impl RetryRefused {
    /// The HTTP status that says it.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::NotRetryable(_) => StatusCode::CONFLICT,
            Self::Store => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Failed attempts left to one source.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let gained = now.duration_since(self.at).as_secs_f64() / FAILED_REFILL.as_secs_f64();
        self.tokens = (self.tokens + gained).min(f64::from(FAILED_BURST));
        self.at = now;
    }
}

/// Reads the admin token file; an empty file is refused.
pub fn read_token(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    let token = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let trimmed = token.trim_ascii();
    if trimmed.is_empty() {
        return Err(Error::Invalid(format!(
            "service.admin_token_file {} holds no token",
            path.display()
        )));
    }
    Ok(trimmed.to_vec())
}

/// Percent-decodes one path segment.
pub(crate) fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => respond(status, "application/json", body),
        Err(e) => {
            tracing::error!(error = %e, "admin API: answer not serializable");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/json",
                b"{\"error\":\"internal error\"}".to_vec(),
            )
        }
    }
}

/// A 500 for a store read that failed (`what` names it in the log; the cause is not sent).
fn unreadable(what: &str, cause: &dyn std::fmt::Display) -> Response<Full<Bytes>> {
    tracing::error!(error = %cause, "admin API: reading {what} failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the store could not be read",
    )
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message }))
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(decode("x-1%2F2"), "x-1/2");
        assert_eq!(decode("plain"), "plain");
        assert_eq!(decode("bad%zz%"), "bad%zz%");
    }

    #[test]
    fn a_bucket_refills_over_time() {
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: 0.0,
            at: t0,
        };
        b.refill(t0 + FAILED_REFILL * 3);
        assert!((b.tokens - 3.0).abs() < 1e-6);
        b.refill(t0 + FAILED_REFILL * 100);
        assert!((b.tokens - f64::from(FAILED_BURST)).abs() < 1e-6);
    }
}
