//! The thin async transport: authentication, timeouts, retries, the audit hook, and
//! the multi-request flows (paging, person lookup, cancel) built from [`crate::wire`].

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use jiff::Timestamp;
use tokio::sync::Mutex;

use crate::error::Error;
use crate::ids::{BranchId, ExternalLinkType, LocationId, ReservationRef, SearchlistId};
use crate::model::{
    Branch, CancelOutcome, Location, LocationQuery, NamedRef, NewReservation, Person, PersonLookup,
    ReservableLocation, Reservation, ReservationQuery, ReservationStatus, ReservationUpdate,
    SeriesDates, SeriesOccurrence,
};
use crate::wire::{self, MAX_TOP, NotIdempotent, PathTemplate, SeriesOperation, TopdeskUrl};

/// How to reach TOPdesk. `Debug` never prints the application password.
#[derive(Clone)]
pub struct Config {
    /// The API root, ending in `/tas/api`.
    pub base_url: String,
    /// The operator's login name.
    pub login_name: String,
    /// The operator's application password.
    pub application_password: String,
    /// Our external-link type.
    pub external_link_type: ExternalLinkType,
    /// Per-request timeout (connect + answer).
    pub timeout: Duration,
    /// Retry policy for 429/502/503/504.
    pub retry: RetryPolicy,
    /// Prefer this cancellation reason (by name); otherwise the first active one.
    pub cancellation_reason_name: Option<String>,
}

impl Config {
    /// A configuration with default timeout (30 s) and retry policy.
    pub fn new(
        base_url: impl Into<String>,
        login_name: impl Into<String>,
        application_password: impl Into<String>,
        external_link_type: ExternalLinkType,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            login_name: login_name.into(),
            application_password: application_password.into(),
            external_link_type,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            cancellation_reason_name: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("login_name", &self.login_name)
            .field("application_password", &"<redacted>")
            .field("external_link_type", &self.external_link_type)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("cancellation_reason_name", &self.cancellation_reason_name)
            .finish()
    }
}

/// Exponential backoff with jitter for 429/502/503/504.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The first backoff; doubled on every retry.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the error is returned with
    /// the value so the caller can schedule the retry itself.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempts count from 1), or `None` when no
    /// retry should happen. `jitter` is a random value in `0.0..1.0`.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        if let Some(wait) = retry_after {
            return (wait <= self.max_retry_after).then_some(wait);
        }
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_backoff);
        // "Equal jitter": half fixed, half random, so retries spread but never collapse to 0.
        let half = capped / 2;
        Some(half + half.mul_f64(jitter.clamp(0.0, 1.0)))
    }
}

/// One HTTP exchange as the audit trail sees it: never a body, a query string or a
/// credential. The same shape as the Graph client's record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// The client operation (`create_reservation`, `person_by_email`, …).
    pub operation: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// The path template, e.g. `/reservations/{identifier}/cancel`.
    pub path_template: &'static str,
    /// The status, or `None` when no answer came (timeout, connection failure).
    pub status: Option<u16>,
    /// Time from sending to the answer (or failure).
    pub duration: Duration,
    /// Shared by every request of one operation (pages, retries, follow-ups), or the
    /// caller's id from [`TopdeskClient::with_correlation_id`].
    pub correlation_id: String,
    /// 1 for the first try, 2 for the first retry, …
    pub attempt: u32,
}

/// Receives an [`AuditRecord`] for every HTTP exchange. Any `Fn(&AuditRecord)` works.
pub trait AuditSink: Send + Sync {
    /// Called once per HTTP exchange, after it ends.
    fn record(&self, record: &AuditRecord);
}

impl<F: Fn(&AuditRecord) + Send + Sync> AuditSink for F {
    fn record(&self, record: &AuditRecord) {
        self(record)
    }
}

/// The TOPdesk client. Cheap to clone; clones share the connection pool and the
/// cached cancellation and rejection reasons.
#[derive(Clone)]
pub struct TopdeskClient {
    inner: Arc<Inner>,
    correlation_id: Option<Arc<str>>,
}

struct Inner {
    http: reqwest::Client,
    base: TopdeskUrl,
    authorization: HeaderValue,
    link_type: ExternalLinkType,
    retry: RetryPolicy,
    audit: Option<Arc<dyn AuditSink>>,
    cancellation_reason_name: Option<String>,
    /// `None` = not fetched yet; `Some(None)` = TOPdesk has no active reason.
    cancellation_reason: Mutex<Option<Option<SearchlistId>>>,
    /// The same for rejection reasons.
    rejection_reason: Mutex<Option<Option<SearchlistId>>>,
    /// Set after a 406 on persons v2: this TOPdesk only speaks v1.
    persons_v1: AtomicBool,
}

impl fmt::Debug for TopdeskClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopdeskClient")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// Which operation a request belongs to, for the audit trail.
struct Ctx {
    operation: &'static str,
    correlation_id: String,
}

/// The most `next` links followed in one person lookup: a guard against loops.
const MAX_PERSON_PAGES: usize = 20;
/// The most pages one reservation listing may take: a guard against a server that
/// answers 206 forever.
const MAX_RESERVATION_PAGES: usize = 10_000;

impl TopdeskClient {
    /// Builds a client (TLS through rustls with the aws-lc-rs provider and the
    /// platform's root certificates).
    pub fn new(config: Config, audit: Option<Arc<dyn AuditSink>>) -> Result<Self, Error> {
        let base = TopdeskUrl::parse(&config.base_url)?;
        if config.login_name.is_empty() || config.application_password.is_empty() {
            return Err(Error::InvalidConfig(
                "login name and application password are required",
            ));
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            config.login_name, config.application_password
        ));
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| Error::InvalidConfig("credentials cannot be sent in a header"))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config()?)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| Error::InvalidConfig("http client could not be built"))?;
        let inner = Inner {
            http,
            base,
            authorization,
            link_type: config.external_link_type,
            retry: config.retry,
            audit,
            cancellation_reason_name: config.cancellation_reason_name,
            cancellation_reason: Mutex::new(None),
            rejection_reason: Mutex::new(None),
            persons_v1: AtomicBool::new(false),
        };
        Ok(Self {
            inner: Arc::new(inner),
            correlation_id: None,
        })
    }

    /// A handle whose calls carry `correlation_id` in their audit records (instead of
    /// a fresh id per operation).
    pub fn with_correlation_id(&self, correlation_id: impl Into<String>) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            correlation_id: Some(correlation_id.into().into()),
        }
    }

    /// The validated API root.
    pub fn base_url(&self) -> &TopdeskUrl {
        &self.inner.base
    }

    /// Our external-link type.
    pub fn external_link_type(&self) -> ExternalLinkType {
        self.inner.link_type
    }

    fn ctx(&self, operation: &'static str) -> Ctx {
        let correlation_id = match &self.correlation_id {
            Some(id) => id.to_string(),
            None => format!("td-{:016x}", random_u64()),
        };
        Ctx {
            operation,
            correlation_id,
        }
    }

    // -----------------------------------------------------------------------------
    // Reservations
    // -----------------------------------------------------------------------------

    /// Lists every reservation matching `query`, following 206 answers with keyset
    /// paging on `plannedStartDate` and dropping the duplicates at page boundaries.
    pub async fn list_reservations(
        &self,
        query: &ReservationQuery,
    ) -> Result<Vec<Reservation>, Error> {
        let cid = self.ctx("list_reservations");
        let mut top = query.page_size.clamp(1, MAX_TOP);
        let mut after: Option<Timestamp> = None;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for _ in 0..MAX_RESERVATION_PAGES {
            let req = wire::build_list_reservations(&self.inner.base, query, after, top)?;
            let page =
                wire::parse_reservation_page(&self.send(req, &cid).await?, Timestamp::now())?;
            let mut fresh = 0usize;
            let first = page.reservations.first().and_then(|r| r.planned_start);
            let last = page
                .reservations
                .iter()
                .filter_map(|r| r.planned_start)
                .max();
            for r in page.reservations {
                if seen.insert(r.id.clone()) {
                    out.push(r);
                    fresh += 1;
                }
            }
            if !page.more {
                return Ok(out);
            }
            let Some(last) = last else {
                return Err(Error::InvalidResponse {
                    what: "206 page without plannedStartDate",
                    source: None,
                });
            };
            // A page that is one single start instant (or brought nothing new) cannot
            // advance the keyset: widen the page instead.
            if fresh == 0 || first == Some(last) {
                if top >= MAX_TOP {
                    return Err(Error::PagingStalled { top });
                }
                top = top.saturating_mul(2).min(MAX_TOP);
            }
            after = Some(last);
        }
        Err(Error::InvalidResponse {
            what: "reservation paging did not end",
            source: None,
        })
    }

    /// One reservation by id or number.
    pub async fn reservation(&self, reference: &ReservationRef) -> Result<Reservation, Error> {
        let cid = self.ctx("reservation");
        let req = wire::build_get_reservation(&self.inner.base, reference)?;
        wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Creates a reservation with our external link.
    pub async fn create_reservation(&self, new: &NewReservation) -> Result<Reservation, Error> {
        let cid = self.ctx("create_reservation");
        let req = wire::build_create_reservation(
            &self.inner.base,
            new,
            self.inner.link_type,
            Timestamp::now(),
        )?;
        wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// PATCHes descriptive fields.
    pub async fn update_reservation(
        &self,
        reference: &ReservationRef,
        update: &ReservationUpdate,
    ) -> Result<Reservation, Error> {
        let cid = self.ctx("update_reservation");
        let req = wire::build_update_reservation(
            &self.inner.base,
            reference,
            update,
            self.inner.link_type,
            Timestamp::now(),
        )?;
        wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Moves the reservation to new times.
    pub async fn reschedule(
        &self,
        reference: &ReservationRef,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Reservation, Error> {
        let cid = self.ctx("reschedule");
        let req = wire::build_reschedule(&self.inner.base, reference, start, end)?;
        wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Swaps one reserved room for another.
    pub async fn move_facility(
        &self,
        reference: &ReservationRef,
        from: &LocationId,
        to: &LocationId,
    ) -> Result<Reservation, Error> {
        let cid = self.ctx("move_facility");
        let req = wire::build_move_facility(&self.inner.base, reference, from, to)?;
        wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Adds rooms.
    pub async fn add_facilities(
        &self,
        reference: &ReservationRef,
        locations: &[LocationId],
    ) -> Result<Reservation, Error> {
        let cid = self.ctx("add_facilities");
        let req = wire::build_add_facilities(&self.inner.base, reference, locations)?;
        wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Removes rooms.
    pub async fn remove_facilities(
        &self,
        reference: &ReservationRef,
        locations: &[LocationId],
    ) -> Result<Reservation, Error> {
        let cid = self.ctx("remove_facilities");
        let req = wire::build_remove_facilities(&self.inner.base, reference, locations)?;
        wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Stops a reservation the right way for its status: a `request` is rejected (with
    /// the first active rejection reason, or none when TOPdesk has none),
    /// a planned (or conflicting planned) one is cancelled with the cached
    /// cancellation reason (or none, when TOPdesk has none and relies on its default),
    /// an already cancelled or rejected one is left alone.
    pub async fn cancel_reservation(
        &self,
        reference: &ReservationRef,
    ) -> Result<CancelOutcome, Error> {
        let cid = self.ctx("cancel_reservation");
        let req = wire::build_get_reservation_status(&self.inner.base, reference)?;
        let current = wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())?;
        let status = current
            .status
            .unwrap_or(ReservationStatus::Other(String::new()));
        match status {
            ReservationStatus::Request | ReservationStatus::ConflictingRequest => {
                let reason = self.rejection_reason(&cid).await?;
                let req = wire::build_reject(&self.inner.base, reference, reason.as_ref())?;
                wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())?;
                Ok(CancelOutcome::Rejected)
            }
            ReservationStatus::Planned | ReservationStatus::ConflictingPlanned => {
                let reason = self.cancellation_reason(&cid).await?;
                let req = wire::build_cancel(&self.inner.base, reference, reason.as_ref())?;
                wire::parse_cancel(&self.send(req, &cid).await?, Timestamp::now())?;
                Ok(CancelOutcome::Cancelled)
            }
            ReservationStatus::Cancelled | ReservationStatus::RejectedRequest => {
                Ok(CancelOutcome::AlreadyStopped)
            }
            other => Err(Error::NotCancellable {
                status: other.as_wire().to_owned(),
            }),
        }
    }

    /// Cancels with an explicit reason, or without a body (TOPdesk's default reason).
    pub async fn cancel_with_reason(
        &self,
        reference: &ReservationRef,
        reason: Option<&SearchlistId>,
    ) -> Result<(), Error> {
        let cid = self.ctx("cancel_with_reason");
        let req = wire::build_cancel(&self.inner.base, reference, reason)?;
        wire::parse_cancel(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Rejects a request, with an optional rejection reason.
    pub async fn reject_reservation(
        &self,
        reference: &ReservationRef,
        reason: Option<&SearchlistId>,
    ) -> Result<Reservation, Error> {
        let cid = self.ctx("reject_reservation");
        let req = wire::build_reject(&self.inner.base, reference, reason)?;
        wire::parse_reservation(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// The active cancellation reasons.
    pub async fn cancellation_reasons(&self) -> Result<Vec<NamedRef>, Error> {
        let cid = self.ctx("cancellation_reasons");
        let req = wire::build_cancellation_reasons(&self.inner.base)?;
        wire::parse_searchlist(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// The active rejection reasons.
    pub async fn rejection_reasons(&self) -> Result<Vec<NamedRef>, Error> {
        let cid = self.ctx("rejection_reasons");
        let req = wire::build_rejection_reasons(&self.inner.base)?;
        wire::parse_searchlist(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Forgets the cached cancellation and rejection reasons (e.g. after TOPdesk
    /// refused one).
    pub async fn forget_cached_reasons(&self) {
        *self.inner.cancellation_reason.lock().await = None;
        *self.inner.rejection_reason.lock().await = None;
    }

    async fn rejection_reason(&self, cid: &Ctx) -> Result<Option<SearchlistId>, Error> {
        let mut cached = self.inner.rejection_reason.lock().await;
        if let Some(reason) = cached.as_ref() {
            return Ok(reason.clone());
        }
        let req = wire::build_rejection_reasons(&self.inner.base)?;
        let reasons = wire::parse_searchlist(&self.send(req, cid).await?, Timestamp::now())?;
        let chosen = reasons.first().map(|r| r.id.clone());
        *cached = Some(chosen.clone());
        Ok(chosen)
    }

    async fn cancellation_reason(&self, cid: &Ctx) -> Result<Option<SearchlistId>, Error> {
        let mut cached = self.inner.cancellation_reason.lock().await;
        if let Some(reason) = cached.as_ref() {
            return Ok(reason.clone());
        }
        let req = wire::build_cancellation_reasons(&self.inner.base)?;
        let reasons = wire::parse_searchlist(&self.send(req, cid).await?, Timestamp::now())?;
        let preferred = self
            .inner
            .cancellation_reason_name
            .as_deref()
            .and_then(|name| reasons.iter().find(|r| r.name.as_deref() == Some(name)));
        let chosen = preferred.or(reasons.first()).map(|r| r.id.clone());
        *cached = Some(chosen.clone());
        Ok(chosen)
    }

    /// Turns a single reservation into a "specific dates" series.
    pub async fn make_recurrent(
        &self,
        reference: &ReservationRef,
        dates: &SeriesDates,
    ) -> Result<Vec<SeriesOccurrence>, Error> {
        self.series(reference, SeriesOperation::MakeRecurrent, dates)
            .await
    }

    /// Adds dates to a series.
    pub async fn add_occurrences(
        &self,
        reference: &ReservationRef,
        dates: &SeriesDates,
    ) -> Result<Vec<SeriesOccurrence>, Error> {
        self.series(reference, SeriesOperation::AddOccurrences, dates)
            .await
    }

    /// Replaces the dates after `reference` (later occurrences not listed are deleted).
    pub async fn set_occurrences(
        &self,
        reference: &ReservationRef,
        dates: &SeriesDates,
    ) -> Result<Vec<SeriesOccurrence>, Error> {
        self.series(reference, SeriesOperation::SetOccurrences, dates)
            .await
    }

    async fn series(
        &self,
        reference: &ReservationRef,
        operation: SeriesOperation,
        dates: &SeriesDates,
    ) -> Result<Vec<SeriesOccurrence>, Error> {
        let cid = self.ctx(match operation {
            SeriesOperation::MakeRecurrent => "make_recurrent",
            SeriesOperation::AddOccurrences => "add_occurrences",
            SeriesOperation::SetOccurrences => "set_occurrences",
        });
        let req = wire::build_series_dates(&self.inner.base, reference, operation, dates)?;
        wire::parse_series(&self.send(req, &cid).await?, Timestamp::now())
    }

    // -----------------------------------------------------------------------------
    // Rooms, branches, persons
    // -----------------------------------------------------------------------------

    /// The reservable rooms, optionally of some branches only.
    pub async fn reservable_locations(
        &self,
        branches: &[BranchId],
    ) -> Result<Vec<ReservableLocation>, Error> {
        let cid = self.ctx("reservable_locations");
        let req = wire::build_reservable_locations(&self.inner.base, branches, MAX_TOP)?;
        wire::parse_reservable_locations(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Location cards, optionally with their optional-field tabs (where a room mailbox
    /// may be kept).
    pub async fn locations(&self, query: &LocationQuery) -> Result<Vec<Location>, Error> {
        let cid = self.ctx("locations");
        let req = wire::build_locations(&self.inner.base, query)?;
        wire::parse_locations(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Branches with their time zones.
    pub async fn branches(&self) -> Result<Vec<Branch>, Error> {
        let cid = self.ctx("branches");
        let req = wire::build_branches(&self.inner.base, None)?;
        wire::parse_branches(&self.send(req, &cid).await?, Timestamp::now())
    }

    /// Finds the active person card with this e-mail address (compared without regard
    /// to case), through persons v2, or v1 when this TOPdesk answers v2 with 406.
    pub async fn person_by_email(&self, email: &str) -> Result<PersonLookup, Error> {
        let cid = self.ctx("person_by_email");
        let wanted = email.trim().to_lowercase();
        let mut matches: Vec<Person> = Vec::new();
        let keep = |persons: Vec<Person>, matches: &mut Vec<Person>| {
            for p in persons {
                let same =
                    p.email.as_deref().map(|e| e.trim().to_lowercase()) == Some(wanted.clone());
                if same && !p.archived && !matches.iter().any(|m| m.id == p.id) {
                    matches.push(p);
                }
            }
        };
        if !self.inner.persons_v1.load(Ordering::Relaxed) {
            let mut req = wire::build_find_person_v2(&self.inner.base, email)?;
            let mut pages = 0;
            loop {
                pages += 1;
                let response = self.send(req, &cid).await?;
                if response.status() == StatusCode::NOT_ACCEPTABLE && pages == 1 {
                    tracing::info!(
                        "topdesk answered persons v2 with 406; falling back to persons v1"
                    );
                    self.inner.persons_v1.store(true, Ordering::Relaxed);
                    break;
                }
                let page = wire::parse_persons_v2(&response, Timestamp::now())?;
                keep(page.persons, &mut matches);
                match page.next {
                    Some(next) if matches.len() < 2 && pages < MAX_PERSON_PAGES => {
                        req = wire::build_persons_next(&self.inner.base.resolve_next(&next)?)?;
                    }
                    _ => return Ok(lookup_result(matches)),
                }
            }
        }
        let mut start = 0u32;
        for _ in 0..MAX_PERSON_PAGES {
            let req = wire::build_find_person_v1(&self.inner.base, email, start)?;
            let page = wire::parse_persons_v1(&self.send(req, &cid).await?, Timestamp::now())?;
            let count = u32::try_from(page.persons.len()).unwrap_or(u32::MAX);
            keep(page.persons, &mut matches);
            if !page.more || matches.len() >= 2 || count == 0 {
                break;
            }
            start = start.saturating_add(count);
        }
        Ok(lookup_result(matches))
    }

    // -----------------------------------------------------------------------------
    // Transport
    // -----------------------------------------------------------------------------

    /// Sends one request with authentication, retrying 429/502/503/504 with backoff.
    /// Returns the final response whatever its status; `parse_*` turns it into a value
    /// or an error.
    async fn send(&self, req: Request<Vec<u8>>, ctx: &Ctx) -> Result<Response<Vec<u8>>, Error> {
        let template = req
            .extensions()
            .get::<PathTemplate>()
            .map_or("(unknown)", |t| t.0);
        let idempotent = req.extensions().get::<NotIdempotent>().is_none();
        let (parts, body) = req.into_parts();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut builder = self
                .inner
                .http
                .request(parts.method.clone(), parts.uri.to_string())
                .headers(parts.headers.clone())
                .header(AUTHORIZATION, self.inner.authorization.clone());
            if !body.is_empty() {
                builder = builder.body(body.clone());
            }
            let started = Instant::now();
            let result = builder.send().await;
            let outcome = match result {
                Ok(response) => read_response(response).await,
                Err(e) => Err(e),
            };
            let elapsed = started.elapsed();
            match outcome {
                Ok(response) => {
                    let status = response.status();
                    self.audit(ctx, &parts.method, template, Some(status), elapsed, attempt);
                    let retryable = match status.as_u16() {
                        429 | 503 => true,
                        502 | 504 => idempotent,
                        _ => false,
                    };
                    if retryable {
                        let hint = wire::retry_after(response.headers(), Timestamp::now());
                        if let Some(delay) = self.inner.retry.delay(attempt, hint, jitter()) {
                            tracing::debug!(%status, attempt, ?delay, template, "topdesk busy; retrying");
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                    }
                    if status == StatusCode::UNAUTHORIZED {
                        tracing::warn!(template, "topdesk rejected the credentials");
                    }
                    return Ok(response);
                }
                Err(e) => {
                    self.audit(ctx, &parts.method, template, None, elapsed, attempt);
                    let may_retry = e.is_connect()
                        || (e.is_timeout() && idempotent && parts.method == Method::GET);
                    let delay = if may_retry {
                        self.inner.retry.delay(attempt, None, jitter())
                    } else {
                        None
                    };
                    if let Some(delay) = delay {
                        tracing::debug!(attempt, ?delay, template, "topdesk unreachable; retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(if e.is_timeout() {
                        Error::Timeout
                    } else {
                        Error::Transport(e)
                    });
                }
            }
        }
    }

    fn audit(
        &self,
        ctx: &Ctx,
        method: &Method,
        path_template: &'static str,
        status: Option<StatusCode>,
        duration: Duration,
        attempt: u32,
    ) {
        let record = AuditRecord {
            operation: ctx.operation,
            method: static_method(method),
            path_template,
            status: status.map(|s| s.as_u16()),
            duration,
            correlation_id: ctx.correlation_id.clone(),
            attempt,
        };
        tracing::info!(
            target: "orb::audit::topdesk",
            operation = record.operation,
            method = record.method,
            path = record.path_template,
            status = record.status,
            duration_ms = u64::try_from(record.duration.as_millis()).unwrap_or(u64::MAX),
            correlation_id = %record.correlation_id,
            attempt = record.attempt,
            "topdesk call"
        );
        if let Some(sink) = &self.inner.audit {
            sink.record(&record);
        }
    }
}

/// The methods this client sends, as `'static` names for audit records.
fn static_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

fn lookup_result(mut matches: Vec<Person>) -> PersonLookup {
    match matches.len() {
        0 => PersonLookup::NotFound,
        1 => PersonLookup::Found(matches.remove(0)),
        _ => PersonLookup::Ambiguous(matches),
    }
}

async fn read_response(response: reqwest::Response) -> Result<Response<Vec<u8>>, reqwest::Error> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

fn random_u64() -> u64 {
    // RandomState is seeded from the OS per instance: enough for jitter and ids.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn tls_config() -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A single unparsable system certificate must not disable TLS altogether.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::warn!(
            "no usable system root certificates: https connections to topdesk will fail"
        );
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::InvalidConfig("tls protocol versions unavailable"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(10),
        };
        assert_eq!(policy.delay(1, None, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(policy.delay(2, None, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(policy.delay(3, None, 1.0), Some(Duration::from_millis(300)));
        assert_eq!(policy.delay(2, None, 0.0), Some(Duration::from_millis(100)));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3)), 0.5),
            Some(Duration::from_secs(3))
        );
        assert_eq!(policy.delay(1, Some(Duration::from_secs(11)), 0.5), None);
        assert_eq!(policy.delay(5, None, 0.5), None);
    }

    #[test]
    fn config_debug_redacts_password() {
        let cfg = Config::new(
            "https://x/tas/api",
            "op",
            "s3cret",
            ExternalLinkType::new(1).unwrap(),
        );
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
