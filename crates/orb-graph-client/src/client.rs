//! The thin async transport: tokens, retries, per-mailbox concurrency, timeouts and the
//! audit hook around the pure `wire` functions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use jiff::Timestamp;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::Error;
use crate::ids::{GraphEventId, IcalUid, Mailbox, OrbMatchId, RoomMailbox, SubscriptionId};
use crate::model::{
    DeltaCursor, DeltaItem, DeltaNext, DeltaPage, DeltaRound, Event, EventPatch, Mail, NewEvent,
    NewSubscription, Room, RoomList, Subscription, SubscriptionEncryption,
};
use crate::permissions::Operation;
use crate::token::{AccessToken, CachedToken, Credential, TokenEndpoint};
use crate::wire::{self, ApiBase, Page};

/// Microsoft's public-cloud login URL.
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";
/// Microsoft Graph v1.0.
pub const DEFAULT_API_URL: &str = "https://graph.microsoft.com/v1.0";
/// Outlook allows 4 concurrent requests per app per mailbox.
pub const MAILBOX_CONCURRENCY: usize = 4;
/// Upper bound on pages followed in one listing (a guard against a looping server).
const MAX_PAGES: usize = 10_000;

/// Parses one page of a listing.
type PageParser<T> = fn(&Response<Vec<u8>>) -> Result<Page<T>, Error>;

/// How throttled calls (429, 503, 504) are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// The most time spent waiting across all retries of one call.
    pub max_total_wait: Duration,
    /// Backoff when Graph sends no `Retry-After`, doubled on each retry.
    pub base_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_total_wait: Duration::from_secs(120),
            base_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `attempts_made + 1`, or `None` when the budget is
    /// spent. `Retry-After` is honoured as given; without it the backoff doubles.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        waited: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempts_made >= self.max_attempts {
            return None;
        }
        let delay = retry_after.unwrap_or_else(|| {
            self.base_backoff
                .saturating_mul(1u32 << attempts_made.saturating_sub(1).min(16))
        });
        (waited.saturating_add(delay) <= self.max_total_wait).then_some(delay)
    }
}

/// Connection settings of the client.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Login URL (default: public cloud; overridable for emulators and sovereign clouds).
    pub login_url: String,
    /// Graph API root.
    pub api_url: String,
    /// The only mailbox `send_mail` sends from; `None` disables mail.
    pub mail_sender: Option<Mailbox>,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
    /// Throttling retries.
    pub retry: RetryPolicy,
    /// Concurrent requests per mailbox (Graph's limit is 4).
    pub max_concurrent_per_mailbox: usize,
    /// `Prefer: odata.maxpagesize` for delta rounds.
    pub delta_page_size: Option<u32>,
    /// Extra trusted roots (DER), e.g. an emulator's self-signed certificate.
    pub extra_root_certificates: Vec<Vec<u8>>,
}

impl GraphConfig {
    /// Defaults for the public cloud.
    pub fn new(tenant_id: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            login_url: DEFAULT_LOGIN_URL.into(),
            api_url: DEFAULT_API_URL.into(),
            mail_sender: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_concurrent_per_mailbox: MAILBOX_CONCURRENCY,
            delta_page_size: None,
            extra_root_certificates: Vec::new(),
        }
    }
}

/// One call as the audit trail sees it: never a body, a token or a query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Operation name (`create_event`, …, or `acquire_token`).
    pub operation: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// Path with placeholders.
    pub path_template: &'static str,
    /// The addressed mailbox, for mailbox calls.
    pub mailbox: Option<String>,
    /// HTTP status, `None` when no response arrived (timeout, connection failure).
    pub status: Option<u16>,
    /// How long the exchange took.
    pub duration: Duration,
    /// The correlation id sent as `client-request-id`.
    pub correlation_id: String,
    /// Graph's `request-id`, when returned.
    pub request_id: Option<String>,
    /// 1 for the first attempt, more for retries.
    pub attempt: u32,
}

/// Receives every call the client makes (R8).
pub trait AuditSink: Send + Sync {
    /// Called once per HTTP exchange, after it ends.
    fn record(&self, record: &AuditRecord);
}

impl<F: Fn(&AuditRecord) + Send + Sync> AuditSink for F {
    fn record(&self, record: &AuditRecord) {
        self(record)
    }
}

/// The app-only Graph client. Cheap to clone; clones share the token cache and the
/// per-mailbox limits.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
    correlation_id: Option<Arc<str>>,
}

struct Inner {
    config: GraphConfig,
    api: ApiBase,
    endpoint: TokenEndpoint,
    credential: Credential,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    mailboxes: Mutex<HashMap<Mailbox, Arc<Semaphore>>>,
    audit: Option<Arc<dyn AuditSink>>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("api_url", &self.inner.config.api_url)
            .field("client_id", &self.inner.config.client_id)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// Builds a client. No request is made until the first call.
    pub fn new(
        config: GraphConfig,
        credential: Credential,
        audit: Option<Arc<dyn AuditSink>>,
    ) -> Result<Self, Error> {
        let api = ApiBase::new(&config.api_url)?;
        let endpoint = TokenEndpoint::new(
            &config.login_url,
            &config.tenant_id,
            &config.client_id,
            api.scope(),
        )?;
        let http = http_client(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                api,
                endpoint,
                credential,
                http,
                token: tokio::sync::Mutex::new(None),
                mailboxes: Mutex::new(HashMap::new()),
                audit,
            }),
            correlation_id: None,
        })
    }

    /// A handle whose calls carry `correlation_id` (as `client-request-id` and in the
    /// audit records).
    pub fn with_correlation_id(&self, correlation_id: impl Into<String>) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            correlation_id: Some(correlation_id.into().into()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GraphConfig {
        &self.inner.config
    }

    /// Acquires (or reuses) an access token: `orb doctor`'s credential check.
    pub async fn check_token(&self) -> Result<Duration, Error> {
        let token = self.token().await?;
        Ok(token.expires_in)
    }

    // ---- subscriptions --------------------------------------------------------------

    /// Creates a subscription (Graph validates the notification URLs first).
    pub async fn create_subscription(&self, new: &NewSubscription) -> Result<Subscription, Error> {
        let r = self
            .execute(Operation::CreateSubscription, None, || {
                wire::build_create_subscription(&self.inner.api, new)
            })
            .await?;
        wire::parse_subscription(&r)
    }

    /// Renews a subscription, optionally moving it to a new encryption certificate.
    pub async fn renew_subscription(
        &self,
        id: &SubscriptionId,
        expiration: Timestamp,
        encryption: Option<&SubscriptionEncryption>,
    ) -> Result<Subscription, Error> {
        let r = self
            .execute(Operation::RenewSubscription, None, || {
                wire::build_renew_subscription(&self.inner.api, id, expiration, encryption)
            })
            .await?;
        wire::parse_subscription(&r)
    }

    /// Reauthorizes a subscription (answer to `reauthorizationRequired`).
    pub async fn reauthorize_subscription(&self, id: &SubscriptionId) -> Result<(), Error> {
        self.execute(Operation::ReauthorizeSubscription, None, || {
            wire::build_reauthorize_subscription(&self.inner.api, id)
        })
        .await
        .map(drop)
    }

    /// Deletes a subscription.
    pub async fn delete_subscription(&self, id: &SubscriptionId) -> Result<(), Error> {
        self.execute(Operation::DeleteSubscription, None, || {
            wire::build_delete_subscription(&self.inner.api, id)
        })
        .await
        .map(drop)
    }

    /// Lists the app's subscriptions (all pages).
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, Error> {
        self.collect(
            Operation::ListSubscriptions,
            None,
            wire::parse_subscriptions_page,
            || wire::build_list_subscriptions(&self.inner.api),
        )
        .await
    }

    // ---- events -----------------------------------------------------------------------

    /// Creates a meeting in `organizer`'s calendar.
    pub async fn create_event(
        &self,
        organizer: &Mailbox,
        event: &NewEvent,
    ) -> Result<Event, Error> {
        let r = self
            .execute(Operation::CreateEvent, Some(organizer), || {
                wire::build_create_event(&self.inner.api, organizer, event)
            })
            .await?;
        wire::parse_event(&r)
    }

    /// Reads one event (with `OrbMatchId` expanded).
    pub async fn get_event(&self, mailbox: &Mailbox, id: &GraphEventId) -> Result<Event, Error> {
        let r = self
            .execute(Operation::GetEvent, Some(mailbox), || {
                wire::build_get_event(&self.inner.api, mailbox, id)
            })
            .await?;
        wire::parse_event(&r)
    }

    /// Updates an event.
    pub async fn update_event(
        &self,
        mailbox: &Mailbox,
        id: &GraphEventId,
        patch: &EventPatch,
    ) -> Result<Event, Error> {
        let r = self
            .execute(Operation::UpdateEvent, Some(mailbox), || {
                wire::build_update_event(&self.inner.api, mailbox, id, patch)
            })
            .await?;
        wire::parse_event(&r)
    }

    /// Cancels a meeting (organizer only), telling attendees with `comment`.
    pub async fn cancel_event(
        &self,
        mailbox: &Mailbox,
        id: &GraphEventId,
        comment: Option<&str>,
    ) -> Result<(), Error> {
        self.execute(Operation::CancelEvent, Some(mailbox), || {
            wire::build_cancel_event(&self.inner.api, mailbox, id, comment)
        })
        .await
        .map(drop)
    }

    /// Declines a meeting as the attendee `mailbox` (orb uses it for the room when TOPdesk
    /// refuses the booking), telling the organizer with `comment`.
    pub async fn decline_event(
        &self,
        mailbox: &Mailbox,
        id: &GraphEventId,
        comment: Option<&str>,
    ) -> Result<(), Error> {
        self.execute(Operation::DeclineEvent, Some(mailbox), || {
            wire::build_decline_event(&self.inner.api, mailbox, id, comment)
        })
        .await
        .map(drop)
    }

    /// Deletes an event.
    pub async fn delete_event(&self, mailbox: &Mailbox, id: &GraphEventId) -> Result<(), Error> {
        self.execute(Operation::DeleteEvent, Some(mailbox), || {
            wire::build_delete_event(&self.inner.api, mailbox, id)
        })
        .await
        .map(drop)
    }

    /// Finds events (singles and masters) carrying `OrbMatchId = match_id`.
    pub async fn find_events_by_match_id(
        &self,
        mailbox: &Mailbox,
        match_id: &OrbMatchId,
    ) -> Result<Vec<Event>, Error> {
        self.collect(
            Operation::FindEventsByMatchId,
            Some(mailbox),
            wire::parse_events_page,
            || wire::build_find_events_by_match_id(&self.inner.api, mailbox, match_id),
        )
        .await
    }

    /// Finds events (singles and masters) with this `iCalUId`.
    pub async fn find_events_by_ical_uid(
        &self,
        mailbox: &Mailbox,
        ical_uid: &IcalUid,
    ) -> Result<Vec<Event>, Error> {
        self.collect(
            Operation::FindEventsByIcalUid,
            Some(mailbox),
            wire::parse_events_page,
            || wire::build_find_events_by_ical_uid(&self.inner.api, mailbox, ical_uid),
        )
        .await
    }

    /// Occurrences and exceptions of a series in a window (all pages).
    pub async fn instances(
        &self,
        mailbox: &Mailbox,
        master: &GraphEventId,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Event>, Error> {
        self.collect(
            Operation::ListInstances,
            Some(mailbox),
            wire::parse_events_page,
            || wire::build_list_instances(&self.inner.api, mailbox, master, start, end),
        )
        .await
    }

    /// The expanded calendar of a mailbox in a window (all pages).
    pub async fn calendar_view(
        &self,
        mailbox: &Mailbox,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Event>, Error> {
        self.collect(
            Operation::CalendarView,
            Some(mailbox),
            wire::parse_events_page,
            || wire::build_calendar_view(&self.inner.api, mailbox, start, end),
        )
        .await
    }

    /// One page of a calendarView delta round. [`Error::ResyncRequired`] means: drop the
    /// stored link and start a new chain.
    pub async fn calendar_view_delta_page(
        &self,
        mailbox: &Mailbox,
        cursor: &DeltaCursor,
    ) -> Result<DeltaPage, Error> {
        let r = self
            .execute(Operation::CalendarViewDelta, Some(mailbox), || {
                wire::build_calendar_view_delta(
                    &self.inner.api,
                    mailbox,
                    cursor,
                    self.inner.config.delta_page_size,
                )
            })
            .await?;
        wire::parse_delta_page(&r)
    }

    /// A complete delta round: follows `@odata.nextLink` until the `@odata.deltaLink`.
    pub async fn calendar_view_delta(
        &self,
        mailbox: &Mailbox,
        cursor: &DeltaCursor,
    ) -> Result<DeltaRound, Error> {
        let mut items: Vec<DeltaItem> = Vec::new();
        let mut cursor = cursor.clone();
        for _ in 0..MAX_PAGES {
            let page = self.calendar_view_delta_page(mailbox, &cursor).await?;
            items.extend(page.items);
            match page.next {
                DeltaNext::NextLink(link) => cursor = DeltaCursor::Link(link),
                DeltaNext::DeltaLink(delta_link) => return Ok(DeltaRound { items, delta_link }),
            }
        }
        Err(Error::InvalidResponse {
            operation: "calendar_view_delta",
            detail: "too many pages".into(),
        })
    }

    // ---- places -----------------------------------------------------------------------

    /// All rooms of the tenant (all pages).
    pub async fn rooms(&self) -> Result<Vec<Room>, Error> {
        self.collect(Operation::ListRooms, None, wire::parse_rooms_page, || {
            wire::build_list_rooms(&self.inner.api)
        })
        .await
    }

    /// All room lists.
    pub async fn room_lists(&self) -> Result<Vec<RoomList>, Error> {
        self.collect(
            Operation::ListRoomLists,
            None,
            wire::parse_room_lists_page,
            || wire::build_list_room_lists(&self.inner.api),
        )
        .await
    }

    /// The rooms of one room list (addressed by the list's e-mail address).
    pub async fn rooms_in_list(&self, list_email: &str) -> Result<Vec<Room>, Error> {
        self.collect(
            Operation::ListRoomsInList,
            None,
            wire::parse_rooms_page,
            || wire::build_list_rooms_in_list(&self.inner.api, list_email),
        )
        .await
    }

    /// One room by its e-mail address.
    pub async fn room(&self, room: &RoomMailbox) -> Result<Room, Error> {
        let r = self
            .execute(Operation::GetRoom, None, || {
                wire::build_get_room(&self.inner.api, room)
            })
            .await?;
        wire::parse_room(&r)
    }

    // ---- mail -------------------------------------------------------------------------

    /// Sends a mail from the configured sender mailbox (and from no other).
    pub async fn send_mail(&self, mail: &Mail) -> Result<(), Error> {
        let sender = self
            .inner
            .config
            .mail_sender
            .clone()
            .ok_or(Error::MailDisabled)?;
        self.execute(Operation::SendMail, Some(&sender), || {
            wire::build_send_mail(&self.inner.api, &sender, mail)
        })
        .await
        .map(drop)
    }

    // ---- transport --------------------------------------------------------------------

    async fn collect<T>(
        &self,
        op: Operation,
        mailbox: Option<&Mailbox>,
        parse: PageParser<T>,
        first: impl Fn() -> Result<Request<Vec<u8>>, Error>,
    ) -> Result<Vec<T>, Error> {
        let mut items = Vec::new();
        let mut page = parse(&self.execute(op, mailbox, &first).await?)?;
        for _ in 0..MAX_PAGES {
            items.append(&mut page.items);
            let Some(link) = page.next_link.take() else {
                return Ok(items);
            };
            let r = self
                .execute(op, mailbox, || {
                    wire::build_follow_link(&self.inner.api, &link)
                })
                .await?;
            page = parse(&r)?;
        }
        Err(Error::InvalidResponse {
            operation: op.name(),
            detail: "too many pages".into(),
        })
    }

    /// Sends one call: token, per-mailbox permit, timeout, audit, throttling retries,
    /// one retry with a fresh token after a 401. Non-2xx answers become typed errors.
    async fn execute(
        &self,
        op: Operation,
        mailbox: Option<&Mailbox>,
        build: impl Fn() -> Result<Request<Vec<u8>>, Error>,
    ) -> Result<Response<Vec<u8>>, Error> {
        let correlation_id = self
            .correlation_id
            .as_deref()
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let policy = &self.inner.config.retry;
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        let mut refreshed_after_401 = false;
        loop {
            attempts += 1;
            let token = self.token().await?;
            let mut request = build()?;
            request.headers_mut().insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&token.bearer()).map_err(|_| Error::InvalidResponse {
                    operation: "token",
                    detail: "access token is not a valid header value".into(),
                })?,
            );
            let response = {
                let _permit = match mailbox {
                    Some(m) => Some(self.permit(m).await?),
                    None => None,
                };
                self.send(
                    request,
                    op.name(),
                    method_name(&op.method()),
                    op.path_template(),
                    mailbox,
                    &correlation_id,
                    attempts,
                )
                .await?
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == http::StatusCode::UNAUTHORIZED && !refreshed_after_401 {
                refreshed_after_401 = true;
                self.invalidate(&token).await;
                continue;
            }
            if wire::is_throttling(status) {
                let retry_after = wire::parse_retry_after(response.headers(), Timestamp::now());
                match policy.next_delay(attempts, waited, retry_after) {
                    Some(delay) => {
                        tracing::debug!(
                            operation = op.name(),
                            status = status.as_u16(),
                            ?delay,
                            "graph throttled; retrying"
                        );
                        waited += delay;
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    None => {
                        return Err(Error::Throttled {
                            status: status.as_u16(),
                            retry_after,
                            attempts,
                        });
                    }
                }
            }
            return Err(wire::parse_error(&response, op, mailbox));
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "private plumbing; the audit record needs each of them"
    )]
    async fn send(
        &self,
        mut request: Request<Vec<u8>>,
        operation: &'static str,
        method: &'static str,
        path_template: &'static str,
        mailbox: Option<&Mailbox>,
        correlation_id: &str,
        attempt: u32,
    ) -> Result<Response<Vec<u8>>, Error> {
        if let Ok(v) = HeaderValue::from_str(correlation_id) {
            request.headers_mut().insert("client-request-id", v);
        }
        let timeout = self.inner.config.timeout;
        let started = Instant::now();
        let outcome = tokio::time::timeout(timeout, self.exchange(request)).await;
        let result = match outcome {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(timeout)),
        };
        let (status, request_id) = match &result {
            Ok(r) => (
                Some(r.status().as_u16()),
                r.headers()
                    .get("request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Err(_) => (None, None),
        };
        let record = AuditRecord {
            operation,
            method,
            path_template,
            mailbox: mailbox.map(|m| m.to_string()),
            status,
            duration: started.elapsed(),
            correlation_id: correlation_id.to_owned(),
            request_id,
            attempt,
        };
        tracing::info!(
            target: "orb::audit::graph",
            operation = record.operation,
            method = record.method,
            path = record.path_template,
            mailbox = record.mailbox.as_deref(),
            status = record.status,
            duration_ms = u64::try_from(record.duration.as_millis()).unwrap_or(u64::MAX),
            correlation_id = %record.correlation_id,
            attempt = record.attempt,
            "graph call"
        );
        if let Some(sink) = &self.inner.audit {
            sink.record(&record);
        }
        result
    }

    async fn exchange(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, Error> {
        let timeout = self.inner.config.timeout;
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                Error::Timeout(timeout)
            } else {
                Error::Transport(e)
            }
        };
        let request = reqwest::Request::try_from(request).map_err(transport)?;
        let response = self.inner.http.execute(request).await.map_err(transport)?;
        let mut builder = Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response.bytes().await.map_err(transport)?;
        builder
            .body(body.to_vec())
            .map_err(|e| Error::InvalidResponse {
                operation: "http",
                detail: e.to_string(),
            })
    }

    async fn permit(&self, mailbox: &Mailbox) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        let semaphore = {
            let mut map = self
                .inner
                .mailboxes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(map.entry(mailbox.clone()).or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.inner.config.max_concurrent_per_mailbox.max(1),
                ))
            }))
        };
        semaphore
            .acquire_owned()
            .await
            .map_err(|_| Error::InvalidInput("mailbox limiter closed".into()))
    }

    /// The cached token, or a new one. The async mutex makes the refresh single-flight:
    /// concurrent callers wait for the one request in flight and then share its token.
    async fn token(&self) -> Result<AccessToken, Error> {
        let mut cache = self.inner.token.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let token = self.fetch_token().await?;
        *cache = Some(CachedToken::new(token.clone(), Instant::now()));
        Ok(token)
    }

    async fn invalidate(&self, used: &AccessToken) {
        let mut cache = self.inner.token.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.bearer() == used.bearer())
        {
            *cache = None;
        }
    }

    async fn fetch_token(&self) -> Result<AccessToken, Error> {
        let correlation_id = self
            .correlation_id
            .as_deref()
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let policy = &self.inner.config.retry;
        let mut attempts = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempts += 1;
            let request = crate::token::build_token_request(
                &self.inner.endpoint,
                &self.inner.credential,
                Timestamp::now(),
                &uuid::Uuid::new_v4().to_string(),
            )?;
            let response = self
                .send(
                    request,
                    "acquire_token",
                    "POST",
                    "/{tenant}/oauth2/v2.0/token",
                    None,
                    &correlation_id,
                    attempts,
                )
                .await?;
            if wire::is_throttling(response.status()) {
                let retry_after = wire::parse_retry_after(response.headers(), Timestamp::now());
                if let Some(delay) = policy.next_delay(attempts, waited, retry_after) {
                    waited += delay;
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return crate::token::parse_token_response(&response);
        }
    }
}

fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::POST => "POST",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::PUT => "PUT",
        _ => "GET",
    }
}

fn http_client(config: &GraphConfig) -> Result<reqwest::Client, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate is skipped, not fatal: the others still work.
        let _ = roots.add(cert);
    }
    if roots.is_empty() && config.extra_root_certificates.is_empty() {
        tracing::warn!("no trusted root certificates loaded: https calls to Graph will fail");
    }
    for der in &config.extra_root_certificates {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| Error::Credential(format!("extra root certificate: {e}")))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Credential(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .build()
        .map_err(Error::Transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_budget_honours_retry_after_and_bounds() {
        let p = RetryPolicy {
            max_attempts: 3,
            max_total_wait: Duration::from_secs(10),
            base_backoff: Duration::from_secs(1),
        };
        assert_eq!(
            p.next_delay(1, Duration::ZERO, Some(Duration::from_secs(4))),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            p.next_delay(1, Duration::ZERO, None),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            p.next_delay(2, Duration::from_secs(1), None),
            Some(Duration::from_secs(2))
        );
        // Attempts spent.
        assert_eq!(p.next_delay(3, Duration::ZERO, None), None);
        // Waiting would exceed the budget: give up now instead of sleeping.
        assert_eq!(
            p.next_delay(1, Duration::from_secs(8), Some(Duration::from_secs(3))),
            None
        );
    }
}
