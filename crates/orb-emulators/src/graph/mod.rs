//! The Microsoft Graph emulator: the identity platform's token endpoint and JWKS, the
//! v1.0 endpoints orb uses (subscriptions, events, calendarView and its delta, places,
//! sendMail), and Exchange's own behaviour behind them (room copies with the same
//! `iCalUId`, auto-accept or decline, subject rewriting, propagation, series expansion),
//! following `reference/graph.md`. Change notifications are delivered to the
//! subscription's `notificationUrl` after the validation handshake, sealed with the
//! subscription's certificate and accompanied by `validationTokens` signed with the
//! emulator's key; a failed delivery is retried with backoff. Faults (throttling, slow answers, duplicate, reordered or dropped
//! notifications, delta token expiry) are injected on demand through [`GraphEmulator`].
//!
//! Deliberate simplifications: tokens are opaque random strings (Graph's are JWTs that
//! clients must not read anyway); `Prefer: outlook.timezone` other than UTC is ignored
//! (answers are always UTC, Graph's default); failed deliveries are retried a configured
//! number of times, not for four hours; `http://` notification URLs are accepted when
//! they point at loopback (Graph demands https).

mod auth;
mod calendar;
mod notify;
mod server;
mod webhook;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orb_notification_crypto::Certificate;
use orb_notification_crypto::jwt::TokenSigner;
use serde_json::Value;
use tokio::sync::mpsc;

pub use calendar::{ApiError, RoomOptions};
pub use webhook::{HandshakeMode, ReceivedPost, WebhookRecorder};

use calendar::{Calendars, Change, MailboxData, MailboxKind};

/// Application permissions (app roles) as the emulator checks them.
pub mod roles {
    /// Read calendars; needed for event subscriptions.
    pub const CALENDARS_READ: &str = "Calendars.Read";
    /// Read and write calendars.
    pub const CALENDARS_READ_WRITE: &str = "Calendars.ReadWrite";
    /// Read places (rooms, room lists).
    pub const PLACE_READ_ALL: &str = "Place.Read.All";
    /// Send mail as any (policy-permitted) user.
    pub const MAIL_SEND: &str = "Mail.Send";
}

/// Settings of one emulator instance.
#[derive(Clone, Debug)]
pub struct GraphEmulatorConfig {
    /// The tenant the token endpoint serves.
    pub tenant_id: String,
    /// `expires_in` of issued tokens.
    pub token_lifetime: Duration,
    /// How long the validation handshake may take before subscription creation fails.
    pub validation_timeout: Duration,
    /// Timeout of one notification delivery.
    pub delivery_timeout: Duration,
    /// How often a failed delivery (non-2xx or timeout) is retried.
    pub delivery_retries: u32,
    /// The first retry's delay; it doubles on each further retry.
    pub delivery_retry_delay: Duration,
    /// Default page size of event listings (Graph's is 10).
    pub events_page_size: usize,
    /// Default page size of places listings (Graph's is 100).
    pub places_page_size: usize,
    /// Concurrent requests per mailbox before `429 ApplicationThrottled` (Graph: 4).
    pub mailbox_concurrency: usize,
    /// Roots trusted when delivering to `https://` notification URLs (DER).
    pub webhook_root_certificates: Vec<Vec<u8>>,
}

impl Default for GraphEmulatorConfig {
    fn default() -> Self {
        Self {
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            token_lifetime: Duration::from_secs(3599),
            validation_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(10),
            delivery_retries: 2,
            delivery_retry_delay: Duration::from_millis(20),
            events_page_size: 10,
            places_page_size: 100,
            mailbox_concurrency: 4,
            webhook_root_certificates: Vec::new(),
        }
    }
}

/// An app registration with its credentials and consented application permissions.
#[derive(Clone, Debug)]
pub struct AppRegistration {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret, if the app has one.
    pub secret: Option<String>,
    /// Registered certificates (DER) for client assertions.
    pub certificates: Vec<Vec<u8>>,
    /// Granted application permissions (see [`roles`]).
    pub roles: Vec<String>,
    /// Whether an admin consented; without it the token endpoint answers AADSTS65001.
    pub admin_consent: bool,
}

impl AppRegistration {
    /// An app with a client secret and consented `roles`.
    pub fn with_secret(client_id: &str, secret: &str, roles: &[&str]) -> Self {
        Self {
            client_id: client_id.into(),
            secret: Some(secret.into()),
            certificates: Vec::new(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            admin_consent: true,
        }
    }

    /// An app with a registered certificate and consented `roles`.
    pub fn with_certificate(client_id: &str, certificate_der: Vec<u8>, roles: &[&str]) -> Self {
        Self {
            client_id: client_id.into(),
            secret: None,
            certificates: vec![certificate_der],
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            admin_consent: true,
        }
    }
}

/// A room mailbox to create.
#[derive(Clone, Debug)]
pub struct RoomSeed {
    /// SMTP address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Capacity.
    pub capacity: Option<u32>,
    /// Building.
    pub building: Option<String>,
    /// Floor number.
    pub floor: Option<i32>,
    /// The room list (by address) the room belongs to.
    pub room_list: Option<String>,
    /// Calendar processing.
    pub options: RoomOptions,
}

impl RoomSeed {
    /// A room with default processing options.
    pub fn new(email: &str, name: &str) -> Self {
        Self {
            email: email.into(),
            name: name.into(),
            capacity: Some(8),
            building: None,
            floor: None,
            room_list: None,
            options: RoomOptions::default(),
        }
    }
}

/// What [`GraphEmulator::seed_example`] created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExampleTenant {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// People (organizers, a secretary, the mail sender).
    pub people: Vec<String>,
    /// Room mailboxes.
    pub rooms: Vec<String>,
    /// The room list all rooms belong to.
    pub room_list: String,
}

/// Faults injected on demand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next `times` API requests are answered with `status` (429 or 503) and
    /// `Retry-After: retry_after` seconds (no header when `None`).
    Throttle {
        /// 429, 503 or 504.
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
        /// How many requests.
        times: usize,
    },
    /// The next `times` API requests are answered after `delay`.
    Slow {
        /// Added latency.
        delay: Duration,
        /// How many requests.
        times: usize,
    },
    /// The next `times` change notifications are delivered twice.
    DuplicateNotifications {
        /// How many.
        times: usize,
    },
    /// The next `batch` change notifications are held back and delivered in reverse order.
    ReorderNotifications {
        /// How many.
        batch: usize,
    },
    /// The next `times` change notifications are dropped; then a `missed` lifecycle
    /// notification goes to each affected subscription's lifecycle URL.
    DropNotifications {
        /// How many.
        times: usize,
    },
    /// The answers to the next `times` subscription creates are held back for `delay`
    /// *after* the subscription exists, as when Graph's `201` is slow to reach the
    /// client: its notifications (and validation) can arrive before the client knows the
    /// subscription's id.
    LateSubscriptionAnswers {
        /// How long each answer is held back.
        delay: Duration,
        /// How many creates.
        times: usize,
    },
    /// Every delta token issued so far is forgotten. `gone`: the next use gets
    /// `410 Gone` with a `Location` header (service reset); otherwise
    /// `400 SyncStateNotFound` (token evicted).
    ExpireDeltaTokens {
        /// Which answer.
        gone: bool,
    },
}

/// Lifecycle notifications that can be sent on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// `reauthorizationRequired`.
    ReauthorizationRequired,
    /// `subscriptionRemoved` (the subscription is deleted).
    SubscriptionRemoved,
    /// `missed`.
    Missed,
}

impl LifecycleEvent {
    fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::Missed => "missed",
        }
    }
}

/// One API request as the emulator saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Answer status.
    pub status: u16,
    /// The mailbox addressed, for mailbox calls.
    pub mailbox: Option<String>,
    /// The calling app, when authenticated.
    pub client_id: Option<String>,
    /// Every `Prefer` header value.
    pub prefer: Vec<String>,
    /// `client-request-id`.
    pub client_request_id: Option<String>,
}

/// What a notification delivery was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryKind {
    /// The `validationToken` handshake.
    Validation,
    /// A change notification.
    Change,
    /// A lifecycle notification.
    Lifecycle,
}

/// One POST the emulator made to a webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Kind.
    pub kind: DeliveryKind,
    /// Subscription id (empty for handshakes before creation).
    pub subscription_id: String,
    /// Target URL.
    pub url: String,
    /// The webhook's status, `None` on connection failure or timeout.
    pub status: Option<u16>,
    /// The JSON body posted.
    pub body: Vec<u8>,
}

/// A mail accepted by `sendMail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMail {
    /// The sending mailbox (from the URL).
    pub from: String,
    /// The message JSON as posted.
    pub message: Value,
    /// `saveToSentItems`.
    pub save_to_sent_items: bool,
}

pub(crate) struct TokenInfo {
    client_id: String,
    roles: Vec<String>,
    expires_at: Timestamp,
}

pub(crate) struct Subscription {
    id: String,
    app: String,
    resource: String,
    mailbox: String,
    select: Option<Vec<String>>,
    change_types: Vec<String>,
    notification_url: String,
    lifecycle_url: Option<String>,
    expiration: Timestamp,
    client_state: Option<String>,
    rich: Option<(Certificate, String)>,
    creator_id: String,
    reauthorized: usize,
}

pub(crate) enum PageEnd {
    None,
    Delta(String),
}

pub(crate) struct PageState {
    items: Vec<Value>,
    offset: usize,
    size: usize,
    path: String,
    end: PageEnd,
}

pub(crate) struct DeltaState {
    mailbox: String,
    start: Timestamp,
    end: Timestamp,
    seen: BTreeMap<String, String>,
}

#[derive(Default)]
pub(crate) struct NotifyFaults {
    duplicate: usize,
    reorder: usize,
    reorder_buffer: Vec<notify::Job>,
    drop: usize,
    dropped_subscriptions: BTreeSet<String>,
}

pub(crate) struct State {
    cal: Calendars,
    clock_offset: SignedDuration,
    apps: BTreeMap<String, AppRegistration>,
    tokens: HashMap<String, TokenInfo>,
    tokens_issued: usize,
    room_lists: BTreeMap<String, (String, String)>,
    access_policy: HashMap<String, BTreeSet<String>>,
    subscriptions: BTreeMap<String, Subscription>,
    pages: HashMap<String, PageState>,
    deltas: HashMap<String, DeltaState>,
    delta_gone: bool,
    http_faults: VecDeque<Fault>,
    /// `(delay, times)` of [`Fault::LateSubscriptionAnswers`].
    late_subscription_answers: Option<(Duration, usize)>,
    notify_faults: NotifyFaults,
    requests: Vec<RequestRecord>,
    inflight: HashMap<String, usize>,
    max_inflight: HashMap<String, usize>,
    sent_mail: Vec<SentMail>,
    deliveries: Vec<DeliveryRecord>,
}

impl State {
    fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(self.clock_offset)
            .unwrap_or_else(|_| Timestamp::now())
    }

    fn prune_expired(&mut self) {
        let now = self.now();
        self.subscriptions.retain(|_, s| s.expiration > now);
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    signer: TokenSigner,
    config: GraphEmulatorConfig,
    base_url: String,
    jobs: mpsc::UnboundedSender<notify::Job>,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-written in a way
        // that matters for an emulator; keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn api_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }
}

/// A running Graph emulator on `127.0.0.1`. Dropping it stops the server.
pub struct GraphEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for GraphEmulator {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl GraphEmulator {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(config: GraphEmulatorConfig) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let signer = TokenSigner::generate("emulator-signing-key")
            .map_err(|e| io::Error::other(e.to_string()))?;
        let http = notify::http_client(&config).map_err(io::Error::other)?;
        let (jobs, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                cal: Calendars::default(),
                clock_offset: SignedDuration::ZERO,
                apps: BTreeMap::new(),
                tokens: HashMap::new(),
                tokens_issued: 0,
                room_lists: BTreeMap::new(),
                access_policy: HashMap::new(),
                subscriptions: BTreeMap::new(),
                pages: HashMap::new(),
                deltas: HashMap::new(),
                delta_gone: false,
                http_faults: VecDeque::new(),
                late_subscription_answers: None,
                notify_faults: NotifyFaults::default(),
                requests: Vec::new(),
                inflight: HashMap::new(),
                max_inflight: HashMap::new(),
                sent_mail: Vec::new(),
                deliveries: Vec::new(),
            }),
            signer,
            config,
            base_url: format!("http://{addr}"),
            jobs,
            http,
        });
        let server = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        let delivery = tokio::spawn(notify::deliver(rx, Arc::clone(&shared)));
        Ok(Self {
            shared,
            addr,
            tasks: vec![server, delivery],
        })
    }

    /// The Graph API root to configure as `graph.api_url`.
    pub fn api_url(&self) -> String {
        self.shared.api_url()
    }

    /// The login URL to configure as `graph.login_url` (token endpoint and JWKS).
    pub fn login_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The JWKS URL (`{login_url}/common/discovery/v2.0/keys`).
    pub fn jwks_url(&self) -> String {
        format!("{}/common/discovery/v2.0/keys", self.shared.base_url)
    }

    /// The JWKS document, as served.
    pub fn jwks_json(&self) -> String {
        self.shared.signer.jwks_json()
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> String {
        self.shared.config.tenant_id.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers (or replaces) an app registration.
    pub fn register_app(&self, app: AppRegistration) {
        self.shared.lock().apps.insert(app.client_id.clone(), app);
    }

    /// Changes an app's granted roles (tokens issued later carry them).
    pub fn set_roles(&self, client_id: &str, roles: &[&str]) {
        if let Some(app) = self.shared.lock().apps.get_mut(client_id) {
            app.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        }
    }

    /// Restricts an app to `mailboxes` (an application access policy with
    /// `RestrictAccess`); `None` lifts the restriction.
    pub fn set_access_policy(&self, client_id: &str, mailboxes: Option<&[&str]>) {
        let mut st = self.shared.lock();
        match mailboxes {
            Some(list) => {
                st.access_policy.insert(
                    client_id.to_owned(),
                    list.iter().map(|m| m.to_ascii_lowercase()).collect(),
                );
            }
            None => {
                st.access_policy.remove(client_id);
            }
        }
    }

    /// Seeds a small example tenant (for `orb demo` and tests): an app with exactly
    /// orb's four permissions, four people and three rooms in one room list.
    pub fn seed_example(&self) -> ExampleTenant {
        let tenant = ExampleTenant {
            client_id: "0f5a7c1e-6b2d-4e8a-9c3f-1d2e3f4a5b6c".into(),
            client_secret: "demo-client-secret".into(),
            people: vec![
                "alice@contoso.example".into(),
                "bob@contoso.example".into(),
                "carol.secretary@contoso.example".into(),
                "facilities@contoso.example".into(),
            ],
            rooms: vec![
                "room-1.01@contoso.example".into(),
                "room-1.02@contoso.example".into(),
                "room-2.14@contoso.example".into(),
            ],
            room_list: "building-a@contoso.example".into(),
        };
        self.register_app(AppRegistration::with_secret(
            &tenant.client_id,
            &tenant.client_secret,
            &[
                roles::CALENDARS_READ,
                roles::CALENDARS_READ_WRITE,
                roles::PLACE_READ_ALL,
                roles::MAIL_SEND,
            ],
        ));
        for (email, name) in tenant.people.iter().zip([
            "Alice Andersen",
            "Bob Bakker",
            "Carol (secretary)",
            "Facilities",
        ]) {
            self.add_person(email, name);
        }
        self.add_room_list(&tenant.room_list, "Building A");
        for (i, (email, name)) in tenant
            .rooms
            .iter()
            .zip(["Room 1.01", "Room 1.02", "Room 2.14"])
            .enumerate()
        {
            let mut seed = RoomSeed::new(email, name);
            seed.building = Some("Building A".into());
            seed.floor = Some(if i < 2 { 1 } else { 2 });
            seed.capacity = Some([6, 10, 14][i]);
            seed.room_list = Some(tenant.room_list.clone());
            self.add_room(seed);
        }
        tenant
    }

    /// Adds a person's mailbox.
    pub fn add_person(&self, email: &str, name: &str) {
        let mut st = self.shared.lock();
        let email = email.to_ascii_lowercase();
        st.cal.mailboxes.insert(
            email.clone(),
            MailboxData {
                email,
                name: name.into(),
                object_id: uuid::Uuid::new_v4().to_string(),
                place_id: uuid::Uuid::new_v4().to_string(),
                kind: MailboxKind::Person,
                items: BTreeMap::new(),
            },
        );
    }

    /// Adds a room mailbox (and lists it in Places).
    pub fn add_room(&self, room: RoomSeed) {
        let mut st = self.shared.lock();
        let email = room.email.to_ascii_lowercase();
        st.cal.mailboxes.insert(
            email.clone(),
            MailboxData {
                email,
                name: room.name,
                object_id: uuid::Uuid::new_v4().to_string(),
                place_id: uuid::Uuid::new_v4().to_string(),
                kind: MailboxKind::Room {
                    options: room.options,
                    capacity: room.capacity,
                    building: room.building,
                    floor: room.floor,
                    room_list: room.room_list.map(|l| l.to_ascii_lowercase()),
                },
                items: BTreeMap::new(),
            },
        );
    }

    /// Adds a room list.
    pub fn add_room_list(&self, email: &str, name: &str) {
        self.shared.lock().room_lists.insert(
            email.to_ascii_lowercase(),
            (name.to_owned(), uuid::Uuid::new_v4().to_string()),
        );
    }

    /// Changes a room's calendar processing options.
    pub fn set_room_options(&self, email: &str, options: RoomOptions) {
        let mut st = self.shared.lock();
        if let Some(mb) = st.cal.mailboxes.get_mut(&email.to_ascii_lowercase())
            && let MailboxKind::Room { options: o, .. } = &mut mb.kind
        {
            *o = options;
        }
    }

    /// A user creates an event in Outlook (no app token involved). Returns its id.
    pub fn create_event_as(&self, mailbox: &str, event: Value) -> Result<String, ApiError> {
        self.mutate(|cal, now, changes| cal.create(mailbox, &event, now, changes))
    }

    /// A user edits an event (or one occurrence) in Outlook.
    pub fn update_event_as(&self, mailbox: &str, id: &str, patch: Value) -> Result<(), ApiError> {
        self.mutate(|cal, now, changes| cal.update(mailbox, id, &patch, now, changes).map(drop))
    }

    /// The organizer cancels a meeting (or one occurrence) in Outlook.
    pub fn cancel_event_as(&self, mailbox: &str, id: &str) -> Result<(), ApiError> {
        self.mutate(|cal, now, changes| cal.remove(mailbox, id, true, now, changes))
    }

    /// A user deletes an item in Outlook.
    pub fn delete_event_as(&self, mailbox: &str, id: &str) -> Result<(), ApiError> {
        self.mutate(|cal, now, changes| cal.remove(mailbox, id, false, now, changes))
    }

    fn mutate<T>(
        &self,
        f: impl FnOnce(&mut Calendars, Timestamp, &mut Vec<Change>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut st = self.shared.lock();
        let now = st.now();
        let mut changes = Vec::new();
        let out = f(&mut st.cal, now, &mut changes)?;
        notify::changes(&self.shared, &mut st, &changes);
        Ok(out)
    }

    /// The stored items (singles, series masters, copies) of a mailbox as Graph JSON,
    /// every extended property included.
    pub fn events(&self, mailbox: &str) -> Vec<Value> {
        let st = self.shared.lock();
        let Ok(mb) = st.cal.mailbox(mailbox) else {
            return Vec::new();
        };
        mb.items
            .values()
            .map(|i| {
                let mut v = calendar::render(i, None, None);
                v["singleValueExtendedProperties"] = Value::Array(
                    i.ext
                        .iter()
                        .map(|(k, val)| serde_json::json!({"id": k, "value": val}))
                        .collect(),
                );
                v
            })
            .collect()
    }

    /// The expanded calendar of a mailbox in `[start, end)`, as calendarView returns it.
    pub fn calendar_view(&self, mailbox: &str, start: Timestamp, end: Timestamp) -> Vec<Value> {
        let st = self.shared.lock();
        let Ok(view) = st.cal.view(mailbox, start, end) else {
            return Vec::new();
        };
        let Ok(mb) = st.cal.mailbox(mailbox) else {
            return Vec::new();
        };
        view.iter()
            .filter_map(|inst| {
                let item_id = inst.master_id.as_deref().unwrap_or(&inst.id);
                mb.items
                    .get(item_id)
                    .map(|item| calendar::render(item, Some(inst), None))
            })
            .collect()
    }

    /// The active subscriptions as Graph JSON.
    pub fn subscriptions(&self) -> Vec<Value> {
        let mut st = self.shared.lock();
        st.prune_expired();
        st.subscriptions
            .values()
            .map(server::render_subscription)
            .collect()
    }

    /// How often `reauthorize` was called for a subscription.
    pub fn reauthorizations(&self, subscription_id: &str) -> usize {
        self.shared
            .lock()
            .subscriptions
            .get(subscription_id)
            .map_or(0, |s| s.reauthorized)
    }

    /// Sends a lifecycle notification to a subscription's lifecycle URL. Returns false
    /// when the subscription does not exist or has no lifecycle URL.
    /// `SubscriptionRemoved` also deletes the subscription.
    pub fn send_lifecycle(&self, subscription_id: &str, event: LifecycleEvent) -> bool {
        let mut st = self.shared.lock();
        st.prune_expired();
        let sent = notify::lifecycle(&self.shared, &st, subscription_id, event.as_str());
        if sent && event == LifecycleEvent::SubscriptionRemoved {
            st.subscriptions.remove(subscription_id);
        }
        sent
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        let mut st = self.shared.lock();
        match fault {
            Fault::Throttle { .. } | Fault::Slow { .. } => st.http_faults.push_back(fault),
            Fault::DuplicateNotifications { times } => st.notify_faults.duplicate += times,
            Fault::ReorderNotifications { batch } => st.notify_faults.reorder += batch,
            Fault::DropNotifications { times } => st.notify_faults.drop += times,
            Fault::LateSubscriptionAnswers { delay, times } => {
                st.late_subscription_answers = (times > 0).then_some((delay, times));
            }
            Fault::ExpireDeltaTokens { gone } => {
                st.deltas.clear();
                st.pages.retain(|_, p| matches!(p.end, PageEnd::None));
                st.delta_gone = gone;
            }
        }
    }

    /// Moves the emulator's clock forward (subscription and token expiry). Expired
    /// subscriptions are deleted; those expiring within the hour are sent a
    /// `reauthorizationRequired` lifecycle notification, as Graph does near expiry.
    pub fn advance_clock(&self, by: Duration) {
        let mut st = self.shared.lock();
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        st.clock_offset = st.clock_offset.saturating_add(by);
        st.prune_expired();
        let soon = st
            .now()
            .checked_add(SignedDuration::from_hours(1))
            .unwrap_or_else(|_| st.now());
        let expiring: Vec<String> = st
            .subscriptions
            .values()
            .filter(|s| s.expiration <= soon)
            .map(|s| s.id.clone())
            .collect();
        for id in expiring {
            notify::lifecycle(&self.shared, &st, &id, "reauthorizationRequired");
        }
    }

    /// The emulator's current time.
    pub fn now(&self) -> Timestamp {
        self.shared.lock().now()
    }

    /// Invalidates every issued access token (callers get 401 until they fetch anew).
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// How many access tokens were issued.
    pub fn tokens_issued(&self) -> usize {
        self.shared.lock().tokens_issued
    }

    /// Every API request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// The most concurrent requests seen on one mailbox.
    pub fn max_concurrency(&self, mailbox: &str) -> usize {
        self.shared
            .lock()
            .max_inflight
            .get(&mailbox.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Mails accepted by `sendMail`.
    pub fn sent_mail(&self) -> Vec<SentMail> {
        self.shared.lock().sent_mail.clone()
    }

    /// Every webhook POST so far (handshakes, changes, lifecycle).
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.lock().deliveries.clone()
    }

    /// Waits until every notification queued so far has been delivered (or failed).
    pub async fn flush_notifications(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shared.jobs.send(notify::Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
