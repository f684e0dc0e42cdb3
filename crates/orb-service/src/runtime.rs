//! The running daemon: one event loop.
//!
//! Every source — the webhook's inbox signal, timers, the Graph delta rounds, the
//! TOPdesk poller, effect results, subscription calls, JWKS fetches and shutdown —
//! becomes one `Event`. A synchronous handler decides (intake checks, engine plans,
//! what to call next) and commits the plan's bookings together with the inbox done-mark,
//! the outbox entries and the audit records in one store transaction; only then are
//! the plan's effects executed, each as a task in the loop's own [`JoinSet`] whose
//! result comes back as another event. Nothing else spawns work and no state is shared
//! with the tasks: they get cloned clients and inputs, and return values.
//!
//! On shutdown the webhook stops accepting and drains its connections, the loop stops
//! taking new work, waits (bounded) for the calls in flight and records their outcomes,
//! then flushes the store. Notifications acknowledged but not yet processed stay in the
//! durable inbox and are processed on the next start.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orb_graph_client::{
    AssertionStyle, ClientCertificate, Credential, GraphClient, GraphConfig, Mail, Mailbox, Secret,
    SubscriptionEncryption,
};
use orb_notification_crypto::jwt::Jwks;
use orb_notification_crypto::{GenerateOptions, KeyRing};
use orb_reconcile::{
    Effect, EffectId, EffectKind, EmailAddress, Engine, Observation, Plan, Removal, RoomMailbox,
    Rooms, State, TopdeskLocationId, Window,
};
use orb_store::{AuditEntry, InboxSeq, NewEffect, OutboxId, Store};
use orb_topdesk_client::{ExternalLinkType, TopdeskClient};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::audit_writer::AuditWriter;
use crate::config::{Config, SecretRef, SyncMode};
use crate::exchange::{self, Execution};
use crate::intake::{ChangeKind, Intake, KnownSubscription, LifecycleKind, Verified};
use crate::jwks::JwksFetcher;
use crate::metrics::Metrics;
use crate::subscriptions::{self, Managed, REAUTHORIZE_QUIET, Target};
use crate::sync::{self, ExchangeRound};
use crate::webhook::{Health, SourcePolicy, SubscriptionHealth, Webhook};
use crate::{Error, persist, state, topdesk};

/// Where the daemon reads the time: the wall clock in production, a controllable one in
/// tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How often each room's delta chain is restarted with a full listing of the window.
pub const FULL_LISTING_EVERY: SignedDuration = SignedDuration::from_hours(24);

/// Refreshes of the JWKS caused by unknown key ids are at least this far apart.
pub const JWKS_MIN_REFRESH: SignedDuration = SignedDuration::from_mins(1);

/// The JWKS is fetched again after this long (Microsoft rolls its keys now and then).
pub const JWKS_MAX_AGE: SignedDuration = SignedDuration::from_hours(24);

/// The hot TOPdesk window polled every `topdesk.poll_interval`.
pub const HOT_WINDOW: SignedDuration = SignedDuration::from_hours(36);

/// How long a processed inbox entry is kept so that a re-delivery of the same POST is
/// recognised (Graph retries a delivery for up to 4 hours).
pub const INBOX_RETENTION: SignedDuration = SignedDuration::from_hours(24);

/// How often old inbox entries and audit records are pruned.
pub const PRUNE_EVERY: SignedDuration = SignedDuration::from_hours(1);

/// Runtime settings that are not part of the configuration file.
#[derive(Clone)]
pub struct Options {
    /// Plan and log, but never write to Exchange or TOPdesk (pilots, B5).
    pub dry_run: bool,
    /// The time source.
    pub clock: Clock,
    /// How often due retries, renewals and stale writes are looked at.
    pub tick: Duration,
    /// Overrides `topdesk.poll_interval` (the hot window), e.g. for tests below the
    /// configuration's 5 s minimum.
    pub hot_poll_interval: Option<Duration>,
    /// How often the whole TOPdesk horizon is polled (the hot window follows
    /// `topdesk.poll_interval`).
    pub full_poll_interval: Duration,
    /// How often each room's delta round runs besides the on-demand ones.
    pub exchange_interval: Duration,
    /// Lifetime requested for subscriptions (capped at
    /// [`subscriptions::MAX_LIFETIME`]).
    pub subscription_lifetime: Duration,
    /// How long shutdown waits for calls in flight and open connections.
    pub drain: Duration,
    /// The engine's retry schedule; `None` keeps the engine's default.
    pub retry: Option<orb_reconcile::RetryPolicy>,
    /// A new notification-encryption certificate is made after this long (or when the
    /// current one expires within a fortnight); subscriptions move to it at once.
    pub certificate_rotation: Duration,
    /// How long a superseded certificate keeps decrypting after no subscription uses it
    /// (notifications sealed before the move may still be on their way).
    pub certificate_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dry_run: false,
            clock: Arc::new(Timestamp::now),
            tick: Duration::from_secs(5),
            hot_poll_interval: None,
            full_poll_interval: Duration::from_secs(15 * 60),
            exchange_interval: Duration::from_secs(15 * 60),
            subscription_lifetime: subscriptions::MAX_LIFETIME,
            drain: Duration::from_secs(10),
            retry: None,
            certificate_rotation: Duration::from_secs(30 * 24 * 3600),
            certificate_grace: Duration::from_secs(24 * 3600),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("dry_run", &self.dry_run)
            .field("tick", &self.tick)
            .field("full_poll_interval", &self.full_poll_interval)
            .field("exchange_interval", &self.exchange_interval)
            .field("subscription_lifetime", &self.subscription_lifetime)
            .finish_non_exhaustive()
    }
}

/// Requests an operator (or a test) can send to the running loop.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Run a delta round for every room now.
    ResyncExchange,
    /// Poll TOPdesk now (`full`: the whole horizon, otherwise the hot window).
    PollTopdesk {
        /// Whole horizon or hot window.
        full: bool,
    },
    /// Handle a timer tick now (due retries, renewals).
    Tick,
    /// An admin retries a parked, conflicting or held booking (by ORB match id).
    RetryBooking {
        /// The booking's match id.
        match_id: String,
    },
    /// Make a new notification-encryption certificate now and move every subscription
    /// to it (the previous key keeps decrypting until unused).
    RotateCertificate {
        /// RSA key size of the new certificate.
        key_bits: orb_notification_crypto::KeyBits,
        /// How long the new certificate is valid.
        validity: Duration,
    },
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    store: Arc<Store>,
    control: mpsc::UnboundedSender<Control>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), Error>>,
}

impl Daemon {
    /// Binds `service.listen` and starts the daemon.
    pub async fn start(config: Config, store: Store, options: Options) -> Result<Self, Error> {
        let addr = config.service.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        Self::start_on(config, store, listener, options).await
    }

    /// Starts the daemon on an already bound listener (tests bind port 0 first so that
    /// `public_url` can name the port).
    pub async fn start_on(
        config: Config,
        store: Store,
        listener: TcpListener,
        options: Options,
    ) -> Result<Self, Error> {
        // Only aws-lc-rs may provide TLS; a second install (tests) is harmless.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: config.service.listen,
            source,
        })?;
        let store = Arc::new(store);
        let metrics = Arc::new(Metrics::new());
        let now = (options.clock)();

        let audit = AuditWriter::start(Arc::clone(&store))
            .map_err(|e| Error::Invalid(format!("cannot start the audit writer thread: {e}")))?;
        let graph = graph_client(&config, &store, &audit, &options)?;
        let topdesk = topdesk_client(&config, &store, &audit, &options)?;
        let engine = Engine::new(engine_config(&config, &options));
        let loaded = persist::load_state(&store, engine.config(), now)?;

        let mut ring = state::load_ring(&store)?;
        if ring.current(state::to_system(now)).is_none() {
            let id = state::rotate(&store, &GenerateOptions::default(), now)?;
            tracing::info!(certificate = %id, "created a notification-encryption certificate");
            ring = state::load_ring(&store)?;
        }

        let managed_rooms: HashSet<String> =
            config.rooms.iter().map(|r| r.mailbox.clone()).collect();
        let mut subs = BTreeMap::new();
        for record in store.subscriptions()? {
            if managed_rooms.contains(record.room.as_str())
                && let Some(m) = Managed::from_record(&record, now)
            {
                subs.insert(m.room.clone(), m);
            }
        }

        let fetcher = JwksFetcher::new(config.graph.login_url.as_str())?;
        let jwks = match fetcher.fetch().await {
            Ok(j) => Some(j),
            Err(e) => {
                tracing::warn!(error = %e, url = fetcher.url(), "JWKS not available yet");
                None
            }
        };

        let health = Arc::new(Mutex::new(HealthView {
            active: 0,
            expected: config.rooms.len(),
            problems: Vec::new(),
        }));
        let inbox_signal = Arc::new(Notify::new());
        let (control, control_rx) = mpsc::unbounded_channel();
        let api = crate::api::Api::from_config(&config, Arc::clone(&store), control.clone())?;
        let health_fn = health_fn(Arc::clone(&health), Arc::clone(&store));
        let admin = api.as_ref().map(|api| {
            Arc::new(crate::admin::Admin::new(
                Arc::clone(api),
                Arc::clone(&metrics),
                Arc::clone(&health_fn),
                Arc::clone(&options.clock),
                &config,
            ))
        });
        let webhook = Arc::new(Webhook {
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
            sources: SourcePolicy {
                allowed: config.service.allowed_sources.clone(),
                trusted_proxies: config.service.trusted_proxies.clone(),
                monitoring: config.service.monitoring_sources.clone(),
            },
            max_body_bytes: config.service.max_body_bytes,
            inbox_signal: Arc::clone(&inbox_signal),
            health: health_fn,
            api,
            admin,
        });
        let tls = tls_acceptor(&config)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::webhook::serve(
            listener,
            tls,
            webhook,
            shutdown_rx.clone(),
            options.drain,
        ));

        let rooms = config
            .rooms
            .iter()
            .filter_map(|r| RoomMailbox::parse(&r.mailbox).ok())
            .collect();
        let runtime = Runtime {
            intake: Intake::new(
                &config.graph.client_id,
                &config.graph.tenant_id,
                config.graph.login_url.as_str(),
            ),
            target_urls: (config.notification_url(), config.lifecycle_url()),
            config,
            options,
            engine,
            state: loaded,
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
            graph,
            topdesk,
            audit,
            ring,
            jwks,
            fetcher,
            jwks_fetching: false,
            jwks_refreshed_at: None,
            jwks_fetched_at: now,
            pruned_at: now,
            subs,
            sub_busy: HashSet::new(),
            sub_attempted: HashMap::new(),
            pending_client_states: HashMap::new(),
            listed: false,
            rooms,
            exchange_busy: HashSet::new(),
            listed_at: HashMap::new(),
            exchange_again: HashMap::new(),
            topdesk_busy: false,
            topdesk_again: None,
            topdesk_failing: None,
            exchange_failing: BTreeMap::new(),
            exchange_seen: HashMap::new(),
            topdesk_seen: 0,
            timers: BTreeSet::new(),
            outbox: HashMap::new(),
            tasks: JoinSet::new(),
            health,
            stopping: false,
        };
        let task = tokio::spawn(runtime.run(inbox_signal, control_rx, shutdown_rx, server));
        Ok(Self {
            addr,
            metrics,
            store,
            control,
            shutdown,
            task,
        })
    }

    /// The address the webhook listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The state store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Sends a request to the loop (ignored once it stopped).
    pub fn control(&self, request: Control) {
        let _ = self.control.send(request);
    }

    /// A handle that stops the daemon when set to `true` (e.g. from a signal handler).
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }

    /// Stops accepting, finishes the calls in flight, flushes the store.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.shutdown.send(true);
        self.wait().await
    }

    /// Waits until the daemon stops (after [`Daemon::shutdown_handle`] was used).
    pub async fn wait(self) -> Result<(), Error> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(Error::Loop(e.to_string())),
        }
    }
}

/// The events the loop handles: a closed set.
enum Event {
    /// The webhook appended to the inbox.
    Inbox,
    /// The periodic tick.
    Tick,
    /// Time to poll TOPdesk (`full` or hot window).
    PollTopdesk { full: bool },
    /// Time for every room's delta round.
    ResyncExchange,
    /// Rotate the encryption certificate now.
    Rotate(GenerateOptions),
    /// An admin retry of one booking.
    AdminRetry(String),
    /// A JWKS fetch ended.
    Jwks(Result<Jwks, Error>),
    /// A delta round ended (`writes`: the room's observations when it was asked for).
    Round {
        room: RoomMailbox,
        result: Result<ExchangeRound, orb_graph_client::Error>,
        writes: u64,
    },
    /// A TOPdesk poll ended (`writes`: TOPdesk observations when it was asked for).
    Polled {
        result: Result<Vec<Observation>, orb_topdesk_client::Error>,
        full: bool,
        writes: u64,
    },
    /// An effect was executed.
    Executed {
        effect: Box<Effect>,
        execution: Execution,
    },
    /// Graph's subscription list at start.
    Listed(Result<Vec<orb_graph_client::Subscription>, orb_graph_client::Error>),
    /// A subscription was created or renewed.
    Subscribed {
        room: String,
        result: Result<Managed, orb_graph_client::Error>,
        renewal: bool,
    },
    /// A reauthorization ended.
    Reauthorized {
        room: String,
        result: Result<(), orb_graph_client::Error>,
    },
    /// A task without a result for the loop ended (mail, deletes).
    Done,
}

/// What `/healthz` shows besides the inbox depth.
struct HealthView {
    active: usize,
    expected: usize,
    problems: Vec<String>,
}

/// Writes that go into the same transaction as a decision's bookings.
#[derive(Default)]
struct Commit {
    inbox_done: Option<InboxSeq>,
    completed: Vec<OutboxId>,
    audits: Vec<AuditEntry>,
    delta_link: Option<(RoomMailbox, String)>,
}

struct Runtime {
    config: Config,
    options: Options,
    engine: Engine,
    state: State,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    graph: GraphClient,
    topdesk: TopdeskClient,
    /// Where the clients' audit records go (written by a thread of its own).
    audit: Arc<AuditWriter>,
    intake: Intake,
    ring: KeyRing,
    jwks: Option<Jwks>,
    fetcher: JwksFetcher,
    jwks_fetching: bool,
    /// When an unknown signing key last made orb refresh the JWKS: at most one such
    /// refresh per [`JWKS_MIN_REFRESH`], so forged key ids cannot make orb fetch in a
    /// loop; a key still unknown after a recent refresh is rejected.
    jwks_refreshed_at: Option<Timestamp>,
    /// When the JWKS was last fetched (it is refreshed every [`JWKS_MAX_AGE`]).
    jwks_fetched_at: Timestamp,
    /// When old inbox entries and audit records were last pruned.
    pruned_at: Timestamp,
    /// Managed subscriptions by room.
    subs: BTreeMap<String, Managed>,
    /// Rooms with a subscription call in flight.
    sub_busy: HashSet<String>,
    /// When a room's subscription was last attempted (failed creates wait a minute).
    sub_attempted: HashMap<String, Timestamp>,
    /// The client state of a create whose answer was lost (timeout, transport, 5xx):
    /// the next attempt sends the same one, so a 409 can adopt what it created.
    pending_client_states: HashMap<String, String>,
    /// Whether Graph's list was seen (creates wait for it, to adopt first).
    listed: bool,
    target_urls: (String, String),
    rooms: Vec<RoomMailbox>,
    exchange_busy: HashSet<RoomMailbox>,
    /// When each room was last listed in full.
    listed_at: HashMap<RoomMailbox, Timestamp>,
    /// Rounds asked for while one ran; `true` = a full listing.
    exchange_again: HashMap<RoomMailbox, bool>,
    topdesk_busy: bool,
    topdesk_again: Option<bool>,
    /// Why the last TOPdesk poll failed (`None` once a poll succeeds): shown by
    /// `/healthz`, since an expired application password stops the whole sync.
    topdesk_failing: Option<String>,
    /// Why the last delta round of a room failed, by room (removed once one succeeds).
    exchange_failing: BTreeMap<String, String>,
    /// What each room's calendar was last seen to hold changed this often (a
    /// notification, or the outcome of orb's own write): a full listing during which it
    /// changed may predate the change (see [`without_absences`]).
    exchange_seen: HashMap<RoomMailbox, u64>,
    /// The same for TOPdesk, which only orb's own writes (and the polls) report.
    topdesk_seen: u64,
    /// Due instants of the engine's `ScheduleRetry` effects.
    timers: BTreeSet<Timestamp>,
    /// Outbox entries of write effects in flight.
    outbox: HashMap<EffectId, OutboxId>,
    tasks: JoinSet<Event>,
    health: Arc<Mutex<HealthView>>,
    stopping: bool,
}

impl Runtime {
    async fn run(
        mut self,
        inbox_signal: Arc<Notify>,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut shutdown: watch::Receiver<bool>,
        server: JoinHandle<()>,
    ) -> Result<(), Error> {
        self.complete_stale_outbox()?;
        self.spawn_list();
        let mut tick = interval(self.options.tick);
        let mut hot = interval(
            self.options
                .hot_poll_interval
                .unwrap_or(self.config.topdesk.poll_interval),
        );
        let mut full = interval(self.options.full_poll_interval);
        let mut exchange = interval(self.options.exchange_interval);
        // A body appended while orb was down is waiting.
        inbox_signal.notify_one();
        // The first full poll also covers the hot window.
        hot.reset();
        let result = loop {
            let next_timer = self.next_timer();
            let event = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break Ok(()),
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => match joined {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::error!(error = %e, "a task failed");
                        continue;
                    }
                },
                () = inbox_signal.notified() => Event::Inbox,
                Some(request) = control.recv() => match request {
                    Control::ResyncExchange => Event::ResyncExchange,
                    Control::PollTopdesk { full } => Event::PollTopdesk { full },
                    Control::Tick => Event::Tick,
                    Control::RotateCertificate { key_bits, validity } => {
                        Event::Rotate(GenerateOptions {
                            key_bits,
                            validity,
                            ..GenerateOptions::default()
                        })
                    }
                    Control::RetryBooking { match_id } => Event::AdminRetry(match_id),
                },
                _ = tick.tick() => Event::Tick,
                () = tokio::time::sleep(next_timer) => Event::Tick,
                _ = full.tick() => Event::PollTopdesk { full: true },
                _ = hot.tick() => Event::PollTopdesk { full: false },
                _ = exchange.tick() => Event::ResyncExchange,
            };
            if let Err(e) = self.handle(event).and_then(|()| self.checkpoint_if_due()) {
                break Err(e);
            }
        };
        self.stopping = true;
        let _ = server.await;
        let drain = self.options.drain;
        let finished = tokio::time::timeout(drain, async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Ok(event) = joined
                    && let Err(e) = self.handle(event)
                {
                    tracing::error!(error = %e, "while finishing in-flight work");
                }
            }
        })
        .await;
        if finished.is_err() {
            tracing::warn!("calls still in flight after the drain period; abandoned");
            self.tasks.abort_all();
        }
        // The clients' audit records still queued, then everything to disk.
        self.audit.close();
        self.store.flush()?;
        tracing::info!("stopped");
        result
    }

    fn now(&self) -> Timestamp {
        (self.options.clock)()
    }

    fn next_timer(&self) -> Duration {
        let now = self.now();
        match self.timers.first() {
            Some(at) if *at > now => Duration::try_from(at.duration_since(now))
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(1)),
            Some(_) => Duration::ZERO,
            // No timer: an hour, well beyond the tick.
            None => Duration::from_secs(3600),
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), Error> {
        match event {
            Event::Inbox => self.process_inbox(),
            Event::Tick => self.tick(),
            Event::Rotate(options) => self.rotate(&options),
            Event::AdminRetry(match_id) => match orb_reconcile::OrbMatchId::new(&match_id) {
                Ok(match_id) => self.decide(
                    vec![Observation::AdminRetry { match_id }],
                    Commit::default(),
                ),
                Err(_) => Ok(()),
            },
            Event::PollTopdesk { full } => {
                self.request_poll(full);
                Ok(())
            }
            Event::ResyncExchange => {
                let now = self.now();
                for room in self.rooms.clone() {
                    // A delta chain covers the window fixed when it started; a daily full
                    // listing moves the window along.
                    let stale = self
                        .listed_at
                        .get(&room)
                        .is_none_or(|at| now.duration_since(*at) > FULL_LISTING_EVERY);
                    self.request_round(&room, stale);
                }
                Ok(())
            }
            Event::Jwks(result) => {
                self.jwks_fetching = false;
                match result {
                    Ok(jwks) => self.jwks = Some(jwks),
                    Err(e) => tracing::warn!(error = %e, "JWKS refresh failed"),
                }
                self.process_inbox()
            }
            Event::Round {
                room,
                result,
                writes,
            } => self.round_done(room, result, writes),
            Event::Polled {
                result,
                full,
                writes,
            } => self.polled(result, full, writes),
            Event::Executed { effect, execution } => self.executed(*effect, execution),
            Event::Listed(result) => self.listed(result),
            Event::Subscribed {
                room,
                result,
                renewal,
            } => self.subscribed(room, result, renewal),
            Event::Reauthorized { room, result } => {
                self.sub_busy.remove(&room);
                match result {
                    Ok(()) => {
                        let now = self.now();
                        if let Some(m) = self.subs.get_mut(&room) {
                            m.touched_at = now;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %room, "reauthorization failed; renewing");
                        self.renew(&room);
                    }
                }
                Ok(())
            }
            Event::Done => Ok(()),
        }
    }

    // ---- inbox -----------------------------------------------------------------------

    fn process_inbox(&mut self) -> Result<(), Error> {
        if self.jwks_fetching {
            return Ok(());
        }
        for entry in self.store.pending_inbox()? {
            let now = self.now();
            let by_id: HashMap<&str, &Managed> =
                self.subs.values().map(|m| (m.id.as_str(), m)).collect();
            let lookup = |id: &str| {
                by_id.get(id).map(|m| KnownSubscription {
                    id: m.id.clone(),
                    room: m.room.clone(),
                    client_state: m.client_state.clone(),
                })
            };
            let empty;
            let jwks = match &self.jwks {
                Some(j) => j,
                None => {
                    empty = Jwks::from_json(br#"{"keys":[]}"#)
                        .map_err(|e| Error::Jwks(e.to_string()))?;
                    &empty
                }
            };
            let outcome = match self.intake.process(
                &entry.body,
                lookup,
                &self.ring,
                jwks,
                state::to_system(now),
            ) {
                Ok(outcome) => outcome,
                Err(need) => {
                    let recent = self
                        .jwks_refreshed_at
                        .is_some_and(|at| now.duration_since(at) < JWKS_MIN_REFRESH);
                    if !recent {
                        // Refresh once, then judge this body (and those after it) again.
                        tracing::info!(kid = %need.kid, "unknown signing key; refreshing the JWKS");
                        self.jwks_refreshed_at = Some(now);
                        self.spawn_jwks();
                        return Ok(());
                    }
                    crate::intake::IntakeOutcome {
                        verified: Vec::new(),
                        rejected: vec![crate::intake::Rejection {
                            item: None,
                            reason: crate::metrics::RejectReason::Token,
                            detail: "validation token signed by an unknown key".to_owned(),
                        }],
                    }
                }
            };
            // Graph can deliver a new subscription's first notifications before its
            // `201` has reached orb: while a create is in flight, a body naming an
            // unknown subscription waits (with those after it) for the create's answer
            // instead of being rejected; `subscribed` processes the inbox again.
            if self.creating_subscription()
                && outcome
                    .rejected
                    .iter()
                    .any(|r| r.reason == crate::metrics::RejectReason::UnknownSubscription)
            {
                tracing::debug!(
                    seq = entry.seq.0,
                    "notification for an unknown subscription while one is being created; held"
                );
                return Ok(());
            }
            let correlation = format!("inbox-{}", entry.seq.0);
            let mut commit = Commit {
                inbox_done: Some(entry.seq),
                ..Commit::default()
            };
            for rejection in &outcome.rejected {
                self.metrics.rejected(rejection.reason);
                tracing::warn!(
                    reason = rejection.reason.as_str(),
                    item = ?rejection.item,
                    detail = %rejection.detail,
                    "notification rejected"
                );
                let mut audit = AuditEntry::new(
                    now,
                    correlation.as_str().into(),
                    None,
                    "webhook",
                    "verify notification",
                    format!("rejected: {}", rejection.reason.as_str()),
                );
                audit.detail = Some(rejection.detail.clone());
                commit.audits.push(audit);
            }
            let mut observations = Vec::new();
            for verified in outcome.verified {
                match verified {
                    Verified::Change {
                        room,
                        kind,
                        event_id,
                        resource,
                        ..
                    } => self.change(&room, kind, event_id, resource, now, &mut observations),
                    Verified::Lifecycle { room, kind, .. } => self.lifecycle(&room, kind),
                }
            }
            self.decide(observations, commit)?;
        }
        Ok(())
    }

    /// sled replays the log written since its last snapshot at the next start; a
    /// checkpoint rewrites the snapshot (a pause of about that replay, the store's
    /// clones wait). Checked after every event: taken when one is due and the inbox is
    /// empty (a quiet moment), or when it is overdue, so sustained load (which starves
    /// the tick) cannot put it off and the next start's replay stays bounded.
    fn checkpoint_if_due(&self) -> Result<(), Error> {
        let quiet = self.store.pending_inbox_len() == 0;
        if !((self.store.checkpoint_due() && quiet) || self.store.checkpoint_overdue()) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let writes = self.store.writes_since_checkpoint();
        self.store.checkpoint()?;
        tracing::info!(
            writes,
            pause_ms = started.elapsed().as_millis(),
            "store checkpoint"
        );
        Ok(())
    }

    fn change(
        &mut self,
        room: &str,
        kind: ChangeKind,
        event_id: Option<String>,
        resource: Option<serde_json::Value>,
        now: Timestamp,
        out: &mut Vec<Observation>,
    ) {
        let Ok(room) = RoomMailbox::parse(room) else {
            return;
        };
        self.saw_exchange(&room);
        if kind == ChangeKind::Deleted {
            if let Some(id) = event_id.and_then(|id| orb_reconcile::GraphEventId::new(id).ok()) {
                out.push(Observation::ExchangeRemoved {
                    room,
                    event_id: id,
                    reason: Removal::Deleted,
                });
            }
            return;
        }
        let event = resource
            .and_then(|v| serde_json::to_vec(&v).ok())
            .and_then(|bytes| orb_graph_client::wire::parse_event_json(&bytes).ok());
        match event {
            Some(e) => match exchange::to_item(&room, &e, now) {
                Some(item) => out.push(Observation::ExchangeChanged(item)),
                // A series master (or an item the engine cannot take): let the delta
                // round expand and report it.
                None => self.request_round(&room, false),
            },
            // A basic notification or an unreadable payload: read the room instead.
            None => self.request_round(&room, false),
        }
    }

    fn lifecycle(&mut self, room: &str, kind: LifecycleKind) {
        tracing::info!(%room, ?kind, "lifecycle notification");
        let now = self.now();
        match kind {
            LifecycleKind::ReauthorizationRequired => {
                let Some(m) = self.subs.get(room) else {
                    return;
                };
                if now.duration_since(m.touched_at) < REAUTHORIZE_QUIET
                    || self.sub_busy.contains(room)
                {
                    return;
                }
                if m.renewal_due(now) {
                    self.renew(room);
                } else {
                    let id = m.id.clone();
                    let graph = self.graph.clone();
                    let room = room.to_owned();
                    self.sub_busy.insert(room.clone());
                    self.tasks.spawn(async move {
                        let result = subscriptions::reauthorize(&graph, &id).await;
                        Event::Reauthorized { room, result }
                    });
                }
            }
            LifecycleKind::SubscriptionRemoved => {
                if let Some(m) = self.subs.remove(room)
                    && let Err(e) = self.store.delete_subscription(&m.id.as_str().into())
                {
                    tracing::warn!(error = %e, "could not forget a removed subscription");
                }
                self.sub_attempted.remove(room);
                self.ensure_subscriptions();
                if let Ok(r) = RoomMailbox::parse(room) {
                    self.request_round(&r, true);
                }
            }
            LifecycleKind::Missed => {
                if let Ok(r) = RoomMailbox::parse(room) {
                    self.request_round(&r, false);
                }
            }
        }
    }

    fn spawn_jwks(&mut self) {
        if self.jwks_fetching {
            return;
        }
        self.jwks_fetching = true;
        self.jwks_fetched_at = self.now();
        let fetcher = self.fetcher.clone();
        self.tasks
            .spawn(async move { Event::Jwks(fetcher.fetch().await) });
    }

    // ---- deciding and executing ------------------------------------------------------

    /// Plans each observation in turn, commits every plan's bookings with `commit` in
    /// one transaction, then executes the effects.
    fn decide(&mut self, observations: Vec<Observation>, mut commit: Commit) -> Result<(), Error> {
        let now = self.now();
        let mut plans: Vec<Plan> = Vec::with_capacity(observations.len());
        for observation in &observations {
            let plan = self.engine.plan(&self.state, observation, now);
            self.state.apply(&plan);
            if !plan.is_empty() || !plan.notes.is_empty() {
                if self.options.dry_run {
                    tracing::info!(plan = %plan, "dry run: plan not executed");
                } else {
                    tracing::debug!(plan = %plan, "plan");
                }
            }
            plans.push(plan);
        }
        let mut enqueued = Vec::new();
        let result = self.commit(&plans, &mut commit, &mut enqueued, now);
        if let Err(e) = result {
            tracing::error!(error = %e, "storing the plans failed; recording progress only");
            enqueued.clear();
            let mut tx = self.store.transaction();
            if let Some(seq) = commit.inbox_done {
                tx.mark_inbox_done(seq, now);
            }
            for id in &commit.completed {
                tx.complete_effect(*id);
            }
            tx.commit()?;
        }
        self.outbox.extend(enqueued);
        for plan in plans {
            for effect in plan.effects {
                self.dispatch(effect, now);
            }
        }
        self.update_gauges();
        Ok(())
    }

    fn commit(
        &self,
        plans: &[Plan],
        commit: &mut Commit,
        enqueued: &mut Vec<(EffectId, OutboxId)>,
        now: Timestamp,
    ) -> Result<(), Error> {
        let mut tx = self.store.transaction();
        for plan in plans {
            for b in &plan.bookings {
                let record = persist::to_record(b, self.config.sync.carry_subject);
                // The engine's own view goes with the record (restored exactly on start).
                match persist::engine_state(b) {
                    Some(state) => {
                        tx.save_booking_with_engine_state(record, &state)?;
                    }
                    None => {
                        tx.save_booking(record);
                    }
                }
            }
            for effect in &plan.effects {
                let Some(id) = effect_id(&effect.kind) else {
                    continue;
                };
                if self.options.dry_run {
                    continue;
                }
                let outbox = tx.enqueue(
                    NewEffect::new(
                        effect
                            .match_id
                            .as_ref()
                            .map(|m| orb_store::MatchId::new(m.as_str())),
                        effect.correlation.as_str().into(),
                        label(&effect.kind),
                        // The effect as data (JSON), for the admin view and investigations.
                        serde_json::to_vec(effect)
                            .unwrap_or_else(|_| effect.to_string().into_bytes()),
                        now,
                    ),
                    now,
                )?;
                enqueued.push((id.clone(), outbox));
            }
            if !plan.is_empty() {
                let mut audit = AuditEntry::new(
                    now,
                    plan.correlation.as_str().into(),
                    None,
                    "engine",
                    "decide",
                    if self.options.dry_run {
                        "dry run"
                    } else {
                        "planned"
                    },
                );
                audit.detail = Some(format!(
                    "{} booking(s), {} effect(s)",
                    plan.bookings.len(),
                    plan.effects.len()
                ));
                tx.audit(audit)?;
            }
        }
        for audit in commit.audits.drain(..) {
            tx.audit(audit)?;
        }
        for id in &commit.completed {
            tx.complete_effect(*id);
        }
        if let Some(seq) = commit.inbox_done {
            tx.mark_inbox_done(seq, now);
        }
        if let Some((room, link)) = commit.delta_link.take() {
            tx.set_delta_link(room.as_str().into(), link);
        }
        if tx.is_empty() {
            return Ok(());
        }
        tx.commit()?;
        Ok(())
    }

    fn dispatch(&mut self, effect: Effect, now: Timestamp) {
        match &effect.kind {
            EffectKind::ScheduleRetry { at, attempt } => {
                tracing::debug!(%at, attempt, "retry scheduled");
                self.timers.insert(*at);
            }
            EffectKind::Park { reason } => {
                tracing::warn!(match_id = ?effect.match_id, ?reason, "booking parked");
            }
            EffectKind::HoldRemovals {
                room,
                side,
                held,
                total,
            } => {
                tracing::warn!(%room, %side, held, total, "mass cancellation held for an admin");
            }
            EffectKind::DeclineEvent {
                room,
                room_copy,
                reason,
            } => {
                tracing::warn!(%room, %reason, "TOPdesk refused the booking; the room declines");
                if self.options.dry_run || self.stopping {
                    return;
                }
                let graph = self.graph.with_correlation_id(effect.correlation.as_str());
                let (Ok(mailbox), Ok(copy)) = (
                    orb_graph_client::Mailbox::new(room.as_str()),
                    orb_graph_client::GraphEventId::new(room_copy.as_str()),
                ) else {
                    tracing::warn!(%room, "cannot address the room copy to decline it");
                    return;
                };
                let comment = format!("TOPdesk: {reason}");
                self.tasks.spawn(async move {
                    if let Err(e) = graph.decline_event(&mailbox, &copy, Some(&comment)).await {
                        tracing::warn!(error = %e, "declining the room copy failed");
                    }
                    Event::Done
                });
            }
            EffectKind::NotifyUser { to, reason } => {
                if self.options.dry_run || self.stopping {
                    return;
                }
                let graph = self.graph.with_correlation_id(effect.correlation.as_str());
                let mail = Mail {
                    to: vec![to.as_str().to_owned()],
                    subject: "Your room booking needs attention".to_owned(),
                    body: reason.to_string(),
                    save_to_sent_items: false,
                };
                self.tasks.spawn(async move {
                    if let Err(e) = graph.send_mail(&mail).await {
                        tracing::warn!(error = %e, "mail to the organizer failed");
                    }
                    Event::Done
                });
            }
            _ => {
                let write = effect_id(&effect.kind).is_some();
                if (write && self.options.dry_run) || self.stopping {
                    return;
                }
                let graph = self.graph.with_correlation_id(effect.correlation.as_str());
                let topdesk = self
                    .topdesk
                    .with_correlation_id(effect.correlation.as_str());
                self.tasks.spawn(async move {
                    let execution =
                        match exchange::execute(&graph, &effect.kind, now).await {
                            Some(x) => x,
                            None => topdesk::execute(&topdesk, &effect.kind).await.unwrap_or(
                                Execution {
                                    observation: None,
                                    outcome: "skipped",
                                },
                            ),
                        };
                    Event::Executed {
                        effect: Box::new(effect),
                        execution,
                    }
                });
            }
        }
    }

    fn executed(&mut self, effect: Effect, execution: Execution) -> Result<(), Error> {
        let kind = label(&effect.kind);
        self.metrics.effect(kind, execution.outcome);
        match &effect.kind {
            EffectKind::CreateEvent { event, .. } | EffectKind::UpdateEvent { event, .. } => {
                for room in std::iter::once(&event.room).chain(&event.replaces_room) {
                    self.saw_exchange(room);
                }
            }
            // The room is not named: any room's listing may predate it.
            EffectKind::CancelEvent { .. } => {
                for room in self.rooms.clone() {
                    self.saw_exchange(&room);
                }
            }
            EffectKind::CreateReservation { .. }
            | EffectKind::UpdateReservation { .. }
            | EffectKind::CancelReservation { .. } => self.topdesk_seen += 1,
            _ => {}
        }
        let now = self.now();
        let mut commit = Commit::default();
        if let Some(id) = effect_id(&effect.kind)
            && let Some(outbox) = self.outbox.remove(id)
        {
            commit.completed.push(outbox);
        }
        commit.audits.push(AuditEntry::new(
            now,
            effect.correlation.as_str().into(),
            effect
                .match_id
                .as_ref()
                .map(|m| orb_store::MatchId::new(m.as_str())),
            "executor",
            kind,
            execution.outcome,
        ));
        // The rendered effect names people and, when subjects are carried, the subject:
        // keep it out of the default log level (privacy, R15).
        tracing::info!(
            kind,
            match_id = ?effect.match_id,
            correlation = %effect.correlation,
            outcome = execution.outcome,
            "effect executed"
        );
        tracing::debug!(effect = %effect, "effect details");
        self.decide(execution.observation.into_iter().collect(), commit)
    }

    // ---- timers and pollers ----------------------------------------------------------

    fn tick(&mut self) -> Result<(), Error> {
        let now = self.now();
        while self.timers.first().is_some_and(|at| *at <= now) {
            self.timers.pop_first();
        }
        self.certificates()?;
        let age = now.duration_since(self.jwks_fetched_at);
        if age > JWKS_MAX_AGE || (self.jwks.is_none() && age > JWKS_MIN_REFRESH) {
            self.spawn_jwks();
        }
        self.ensure_subscriptions();
        let due: Vec<String> = self
            .subs
            .values()
            .filter(|m| m.renewal_due(now))
            .map(|m| m.room.clone())
            .collect();
        for room in due {
            self.renew(&room);
        }
        self.prune(now);
        self.update_gauges();
        self.decide(vec![Observation::Tick], Commit::default())
    }

    /// Drops processed inbox entries past [`INBOX_RETENTION`] and audit records past
    /// `service.audit_retention`, at most every [`PRUNE_EVERY`]: the data dir stays
    /// bounded.
    fn prune(&mut self, now: Timestamp) {
        if now.duration_since(self.pruned_at) < PRUNE_EVERY {
            return;
        }
        self.pruned_at = now;
        let (Ok(inbox_before), Ok(audit_before)) = (
            now.checked_sub(INBOX_RETENTION),
            SignedDuration::try_from(self.config.service.audit_retention)
                .ok()
                .and_then(|keep| now.checked_sub(keep).ok())
                .ok_or(()),
        ) else {
            return;
        };
        match self.store.prune_inbox(inbox_before) {
            Ok(n) if n > 0 => tracing::debug!(pruned = n, "old inbox entries pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning the inbox failed"),
        }
        match self.store.prune_audit(audit_before) {
            Ok(n) if n > 0 => tracing::debug!(pruned = n, "old audit records pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
        }
    }

    /// Rotates the certificate when due and retires superseded ones no subscription uses.
    fn certificates(&mut self) -> Result<(), Error> {
        let now = self.now();
        let system = state::to_system(now);
        if self.ring.needs_rotation(
            system,
            self.options.certificate_rotation,
            Duration::from_secs(14 * 24 * 3600),
        ) {
            return self.rotate(&GenerateOptions::default());
        }
        let in_use: HashSet<&str> = self
            .subs
            .values()
            .map(|m| m.certificate_id.as_str())
            .collect();
        let retired =
            state::retire_unused(&self.store, &in_use, now, self.options.certificate_grace)?;
        if !retired.is_empty() {
            tracing::info!(?retired, "retired unused encryption certificates");
            self.ring = state::load_ring(&self.store)?;
        }
        Ok(())
    }

    /// Makes a new current certificate and renews every subscription onto it.
    fn rotate(&mut self, options: &GenerateOptions) -> Result<(), Error> {
        let now = self.now();
        let id = state::rotate(&self.store, options, now)?;
        self.ring = state::load_ring(&self.store)?;
        tracing::info!(certificate = %id, "rotated the notification-encryption certificate");
        let rooms: Vec<String> = self.subs.keys().cloned().collect();
        for room in rooms {
            self.renew(&room);
        }
        Ok(())
    }

    /// Something new about `room`'s calendar was decided on.
    fn saw_exchange(&mut self, room: &RoomMailbox) {
        *self.exchange_seen.entry(room.clone()).or_insert(0) += 1;
    }

    fn request_round(&mut self, room: &RoomMailbox, full: bool) {
        if self.stopping {
            return;
        }
        if self.exchange_busy.contains(room) {
            let again = self.exchange_again.entry(room.clone()).or_insert(false);
            *again |= full;
            return;
        }
        let link = if full {
            None
        } else {
            match self.store.delta_link(&room.as_str().into()) {
                Ok(link) => link,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the delta link failed");
                    None
                }
            }
        };
        let now = self.now();
        let window = sync::window(now, self.config.sync.horizon_days);
        self.exchange_busy.insert(room.clone());
        let graph = self.graph.clone();
        let room = room.clone();
        let writes = self.exchange_seen.get(&room).copied().unwrap_or(0);
        self.tasks.spawn(async move {
            let result = sync::exchange_round(&graph, room.clone(), link, window, now).await;
            Event::Round {
                room,
                result,
                writes,
            }
        });
    }

    fn round_done(
        &mut self,
        room: RoomMailbox,
        result: Result<ExchangeRound, orb_graph_client::Error>,
        writes: u64,
    ) -> Result<(), Error> {
        self.exchange_busy.remove(&room);
        let mut again = self.exchange_again.remove(&room);
        if result.is_ok() && self.exchange_failing.remove(room.as_str()).is_some() {
            tracing::info!(%room, "delta sync succeeds again");
        }
        match result {
            Ok(round) => {
                let seen = self.exchange_seen.get(&room).copied().unwrap_or(0);
                let raced = round.full && writes != seen;
                tracing::debug!(%room, full = round.full, raced, items = round.observations.len(), "delta round");
                let observations = if raced {
                    // Listed again at once, until a listing saw nothing change under it.
                    again = Some(true);
                    without_absences(round.observations)
                } else {
                    if round.full {
                        self.listed_at.insert(room.clone(), self.now());
                    }
                    round.observations
                };
                let commit = Commit {
                    delta_link: Some((room.clone(), round.delta_link)),
                    ..Commit::default()
                };
                self.decide(observations, commit)?;
            }
            Err(e) => {
                tracing::warn!(error = %e, %room, "delta round failed");
                self.exchange_failing
                    .insert(room.as_str().to_owned(), e.to_string());
            }
        }
        if let Some(full) = again {
            self.request_round(&room, full);
        }
        Ok(())
    }

    fn request_poll(&mut self, full: bool) {
        if self.stopping {
            return;
        }
        if self.topdesk_busy {
            self.topdesk_again = Some(self.topdesk_again.unwrap_or(false) | full);
            return;
        }
        let now = self.now();
        let window = if full {
            sync::window(now, self.config.sync.horizon_days)
        } else {
            let w = sync::window(now, self.config.sync.horizon_days);
            Window {
                start: w.start,
                end: now.checked_add(HOT_WINDOW).unwrap_or(w.end).min(w.end),
            }
        };
        self.topdesk_busy = true;
        let client = self.topdesk.clone();
        let rooms = self.engine.config().rooms.clone();
        let writes = self.topdesk_seen;
        self.tasks.spawn(async move {
            let result = topdesk::poll(&client, &rooms, window, now).await;
            Event::Polled {
                result,
                full,
                writes,
            }
        });
    }

    fn polled(
        &mut self,
        result: Result<Vec<Observation>, orb_topdesk_client::Error>,
        full: bool,
        writes: u64,
    ) -> Result<(), Error> {
        self.topdesk_busy = false;
        if result.is_ok() && self.topdesk_failing.take().is_some() {
            tracing::info!("TOPdesk poll succeeds again");
        }
        match result {
            Ok(observations) if writes != self.topdesk_seen => {
                // Polled again at once, until a poll saw nothing change under it.
                self.topdesk_again = Some(self.topdesk_again.unwrap_or(false) | full);
                self.decide(without_absences(observations), Commit::default())?;
            }
            Ok(observations) => self.decide(observations, Commit::default())?,
            Err(e) => {
                tracing::warn!(error = %e, "TOPdesk poll failed");
                self.topdesk_failing = Some(e.to_string());
            }
        }
        if let Some(full) = self.topdesk_again.take() {
            self.request_poll(full);
        }
        Ok(())
    }

    // ---- subscriptions ---------------------------------------------------------------

    fn spawn_list(&mut self) {
        let graph = self.graph.clone();
        self.tasks
            .spawn(async move { Event::Listed(graph.list_subscriptions().await) });
    }

    fn listed(
        &mut self,
        result: Result<Vec<orb_graph_client::Subscription>, orb_graph_client::Error>,
    ) -> Result<(), Error> {
        self.listed = true;
        let listed = match result {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing subscriptions failed; creating new ones");
                Vec::new()
            }
        };
        let url = self.target_urls.0.clone();
        let mut keep = HashSet::new();
        for sub in &listed {
            let known = self
                .subs
                .values()
                .find(|m| m.id == sub.id.as_str())
                .cloned();
            match known {
                Some(mut m) => {
                    let room_ok = Mailbox::new(&m.room)
                        .map(|mb| subscriptions::is_ours(sub, &mb, &url))
                        .unwrap_or(false);
                    if room_ok {
                        tracing::info!(room = %m.room, id = %m.id, "adopted subscription");
                        m.expires_at = sub.expiration;
                        keep.insert(m.room.clone());
                        self.subs.insert(m.room.clone(), m);
                    }
                }
                None if sub.notification_url == url => {
                    // Ours, but its client state is lost: it cannot be verified.
                    let graph = self.graph.clone();
                    let id = sub.id.as_str().to_owned();
                    self.tasks.spawn(async move {
                        if let Err(e) = subscriptions::delete(&graph, &id).await {
                            tracing::warn!(error = %e, %id, "could not delete a stale subscription");
                        }
                        Event::Done
                    });
                }
                None => {}
            }
        }
        // Stored subscriptions Graph no longer has are gone.
        let gone: Vec<Managed> = self
            .subs
            .values()
            .filter(|m| !keep.contains(&m.room))
            .cloned()
            .collect();
        for m in gone {
            self.subs.remove(&m.room);
            self.store.delete_subscription(&m.id.as_str().into())?;
        }
        self.ensure_subscriptions();
        // Whatever happened while orb did not listen.
        for room in self.rooms.clone() {
            self.request_round(&room, false);
        }
        Ok(())
    }

    fn target(&self) -> Option<Target> {
        let now = state::to_system(self.now());
        let (id, cert) = self.ring.current(now)?;
        Some(Target {
            notification_url: self.target_urls.0.clone(),
            lifecycle_url: self.target_urls.1.clone(),
            encryption: SubscriptionEncryption {
                certificate_base64_der: cert.to_base64_der(),
                certificate_id: id.to_owned(),
            },
            lifetime: self.options.subscription_lifetime,
        })
    }

    /// Creates the subscription of every room that has none (failed attempts wait a
    /// minute).
    fn ensure_subscriptions(&mut self) {
        if !self.listed || self.stopping {
            return;
        }
        let Some(target) = self.target() else {
            tracing::error!("no valid encryption certificate; cannot subscribe");
            return;
        };
        let now = self.now();
        for room in self.config.rooms.iter().map(|r| r.mailbox.clone()) {
            if self.subs.contains_key(&room) || self.sub_busy.contains(&room) {
                continue;
            }
            if self
                .sub_attempted
                .get(&room)
                .is_some_and(|at| now.duration_since(*at) < SignedDuration::from_mins(1))
            {
                continue;
            }
            self.sub_attempted.insert(room.clone(), now);
            self.sub_busy.insert(room.clone());
            let graph = self.graph.clone();
            let target = target.clone();
            let retried = self.pending_client_states.contains_key(&room);
            let client_state = self
                .pending_client_states
                .entry(room.clone())
                .or_insert_with(subscriptions::new_client_state)
                .clone();
            self.tasks.spawn(async move {
                let result =
                    subscriptions::create_with(&graph, &room, &target, now, &client_state, retried)
                        .await;
                Event::Subscribed {
                    room,
                    result,
                    renewal: false,
                }
            });
        }
    }

    /// True while a subscription create is in flight (its client state is known, its id
    /// not yet).
    fn creating_subscription(&self) -> bool {
        self.pending_client_states
            .keys()
            .any(|room| self.sub_busy.contains(room))
    }

    fn renew(&mut self, room: &str) {
        if self.sub_busy.contains(room) || self.stopping {
            return;
        }
        let (Some(m), Some(target)) = (self.subs.get(room).cloned(), self.target()) else {
            return;
        };
        let now = self.now();
        let graph = self.graph.clone();
        let room = room.to_owned();
        self.sub_busy.insert(room.clone());
        self.tasks.spawn(async move {
            let result = subscriptions::renew(&graph, &m, &target, now).await;
            Event::Subscribed {
                room,
                result,
                renewal: true,
            }
        });
    }

    fn subscribed(
        &mut self,
        room: String,
        result: Result<Managed, orb_graph_client::Error>,
        renewal: bool,
    ) -> Result<(), Error> {
        self.sub_busy.remove(&room);
        // Only a create whose outcome is unknown keeps its client state for the next try.
        if !renewal && result.as_ref().map_or_else(|e| !e.is_retryable(), |_| true) {
            self.pending_client_states.remove(&room);
        }
        match result {
            Ok(m) => {
                tracing::info!(%room, id = %m.id, expires = %m.expires_at, renewal, "subscription ready");
                let mut tx = self.store.transaction();
                tx.put_subscription(&m.to_record())?;
                tx.commit()?;
                self.subs.insert(room, m);
            }
            Err(orb_graph_client::Error::NotFound { .. }) if renewal => {
                tracing::warn!(%room, "subscription vanished; creating a new one");
                if let Some(m) = self.subs.remove(&room) {
                    self.store.delete_subscription(&m.id.as_str().into())?;
                }
                self.sub_attempted.remove(&room);
                self.ensure_subscriptions();
                if let Ok(r) = RoomMailbox::parse(&room) {
                    self.request_round(&r, true);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, %room, renewal, "subscription call failed");
            }
        }
        self.update_gauges();
        if !renewal {
            // Notifications held for this create are judged now that its id is known
            // (or, if it failed, rejected as before).
            self.process_inbox()?;
        }
        Ok(())
    }

    // ---- bookkeeping -----------------------------------------------------------------

    fn update_gauges(&self) {
        let now = self.now();
        for m in self.subs.values() {
            self.metrics
                .set_subscription_expiry(&m.room, m.expires_at.duration_since(now).as_secs());
        }
        let parked = self
            .state
            .bookings()
            .filter(|b| matches!(b.status, orb_reconcile::BookingStatus::Parked { .. }))
            .count();
        let depth = self.outbox.len();
        self.metrics.set_queue(
            u64::try_from(depth).unwrap_or(u64::MAX),
            u64::try_from(parked).unwrap_or(u64::MAX),
        );
        let active = self.subs.values().filter(|m| m.expires_at > now).count();
        let mut problems: Vec<String> = self
            .config
            .rooms
            .iter()
            .filter(|r| {
                self.subs
                    .get(&r.mailbox)
                    .is_none_or(|m| m.expires_at <= now)
            })
            .map(|r| format!("no active subscription for {}", r.mailbox))
            .collect();
        if parked > 0 {
            problems.push(format!("{parked} booking(s) parked"));
        }
        if let Some(e) = &self.topdesk_failing {
            problems.push(format!("TOPdesk poll failing: {e}"));
        }
        for (room, e) in &self.exchange_failing {
            problems.push(format!("delta sync of {room} failing: {e}"));
        }
        if let Ok(mut h) = self.health.lock() {
            h.active = active;
            h.problems = problems;
        }
    }

    /// Outbox entries left by an earlier run are closed on start: the writes they stand
    /// for are resumed by the engine itself (its restored state has them in flight and
    /// issues them again, each enqueued afresh), or re-planned from both sides' state
    /// for bookings rebuilt from their records.
    fn complete_stale_outbox(&self) -> Result<(), Error> {
        let stale = self.store.effects()?;
        if stale.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.transaction();
        for e in &stale {
            tx.complete_effect(e.id);
        }
        tx.commit()?;
        tracing::info!(
            count = stale.len(),
            "closed outbox entries of the previous run"
        );
        Ok(())
    }
}

/// A full listing (Exchange) or poll (TOPdesk) during which orb learnt something new
/// about that side (a notification, the outcome of one of its own writes) may have been
/// read before the change: an item created meanwhile is then missing from it, and the
/// engine would take the absence for a deletion and cancel the booking on the other
/// side. Such a listing reports what it shows item by item instead, and says nothing
/// about what it does not show; the caller lists again.
fn without_absences(observations: Vec<Observation>) -> Vec<Observation> {
    let mut out = Vec::with_capacity(observations.len());
    for observation in observations {
        match observation {
            Observation::ExchangePass { items, .. } => {
                out.extend(items.into_iter().map(Observation::ExchangeChanged));
            }
            Observation::TopdeskPass { items, .. } => {
                out.extend(items.into_iter().map(Observation::TopdeskChanged));
            }
            other => out.push(other),
        }
    }
    out
}

/// The write effect's id, for effects that have one.
fn effect_id(kind: &EffectKind) -> Option<&EffectId> {
    match kind {
        EffectKind::CreateReservation { effect, .. }
        | EffectKind::UpdateReservation { effect, .. }
        | EffectKind::CancelReservation { effect, .. }
        | EffectKind::CreateEvent { effect, .. }
        | EffectKind::UpdateEvent { effect, .. }
        | EffectKind::CancelEvent { effect, .. } => Some(effect),
        _ => None,
    }
}

/// The `kind` label of `orb_effects_total` and the outbox.
pub fn label(kind: &EffectKind) -> &'static str {
    match kind {
        EffectKind::LookUpPerson { .. } => "look_up_person",
        EffectKind::CreateReservation { .. } => "create_reservation",
        EffectKind::UpdateReservation { .. } => "update_reservation",
        EffectKind::CancelReservation { .. } => "cancel_reservation",
        EffectKind::CreateEvent { .. } => "create_event",
        EffectKind::UpdateEvent { .. } => "update_event",
        EffectKind::CancelEvent { .. } => "cancel_event",
        EffectKind::DeclineEvent { .. } => "decline_event",
        EffectKind::NotifyUser { .. } => "notify_user",
        EffectKind::ScheduleRetry { .. } => "schedule_retry",
        EffectKind::Park { .. } => "park",
        EffectKind::HoldRemovals { .. } => "hold_removals",
    }
}

fn interval(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(period.max(Duration::from_millis(10)));
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

fn health_fn(view: Arc<Mutex<HealthView>>, store: Arc<Store>) -> crate::webhook::HealthFn {
    Arc::new(move || {
        let (active, expected, mut problems) = match view.lock() {
            Ok(h) => (h.active, h.expected, h.problems.clone()),
            Err(_) => (0, 0, vec!["health state unavailable".to_owned()]),
        };
        if let Some(why) = store.inbox_failure() {
            // Every notification is answered 503 (Graph retries for hours): restart.
            problems.push(format!("inbox refuses notifications ({why}); restart orb"));
        }
        Health {
            status: if problems.is_empty() {
                "ok"
            } else {
                "degraded"
            },
            subscriptions: SubscriptionHealth { active, expected },
            inbox_pending: store.pending_inbox_len(),
            problems,
        }
    })
}

/// The engine's configuration from the file's `[sync]`, `[topdesk]` and `[[rooms]]`.
pub fn engine_config(config: &Config, options: &Options) -> orb_reconcile::Config {
    let rooms = Rooms::new(config.rooms.iter().filter_map(|r| {
        Some((
            RoomMailbox::parse(&r.mailbox).ok()?,
            TopdeskLocationId::new(&r.topdesk_location_id).ok()?,
        ))
    }));
    let mut c = orb_reconcile::Config::new(rooms);
    c.mode = match config.sync.mode {
        SyncMode::Organizer => orb_reconcile::SyncMode::Organizer,
        SyncMode::RoomOnly => orb_reconcile::SyncMode::RoomOnly,
    };
    c.carry_subject = config.sync.carry_subject;
    c.conflict_policy = match config.sync.conflict_policy {
        crate::config::ConflictPolicy::ExchangeWins => orb_reconcile::ConflictPolicy::ExchangeWins,
        crate::config::ConflictPolicy::TopdeskWins => orb_reconcile::ConflictPolicy::TopdeskWins,
        crate::config::ConflictPolicy::LatestWins => orb_reconcile::ConflictPolicy::LatestWins,
    };
    c.mass_cancel = orb_reconcile::MassCancelGuard {
        max_share_percent: config.sync.mass_cancel_max_percent,
        min_bookings: config.sync.mass_cancel_min_bookings,
    };
    // Validated on load: every mailbox and principal parses.
    c.delegates = config
        .sync
        .delegates
        .iter()
        .filter_map(|d| {
            let rule = match d.requester {
                crate::config::DelegateRequester::Organizer => {
                    orb_reconcile::DelegateRule::Organizer
                }
                crate::config::DelegateRequester::FirstRequiredAttendee => {
                    orb_reconcile::DelegateRule::FirstRequiredAttendee
                }
                crate::config::DelegateRequester::Principal => {
                    orb_reconcile::DelegateRule::Principal(
                        EmailAddress::parse(d.principal.as_deref()?).ok()?,
                    )
                }
            };
            Some((EmailAddress::parse(d.mailbox.trim()).ok()?, rule))
        })
        .collect();
    c.default_requester = config
        .topdesk
        .default_requester_email
        .as_deref()
        .and_then(|e| EmailAddress::parse(e).ok());
    c.mail_enabled = config.graph.mail_sender.is_some();
    c.horizon = SignedDuration::from_hours(24 * i64::from(config.sync.horizon_days));
    if let Some(retry) = options.retry {
        c.retry = retry;
    }
    c
}

pub(crate) fn graph_client(
    config: &Config,
    store: &Arc<Store>,
    audit: &Arc<AuditWriter>,
    options: &Options,
) -> Result<GraphClient, Error> {
    let g = &config.graph;
    let credential = match (&g.client_secret, &g.client_certificate) {
        (Some(secret), _) => {
            let value = state::resolve_secret(store, secret)?;
            let text = String::from_utf8(value.expose().to_vec())
                .map_err(|_| Error::Invalid("graph.client_secret is not text".to_owned()))?;
            Credential::Secret(Secret::new(text))
        }
        (None, Some(cert)) => {
            let value = state::resolve_secret(store, cert)?;
            let text = std::str::from_utf8(value.expose())
                .map_err(|_| Error::Invalid("graph.client_certificate is not PEM".to_owned()))?;
            Credential::Certificate(ClientCertificate::from_pem(
                text,
                AssertionStyle::default(),
            )?)
        }
        (None, None) => {
            return Err(Error::Invalid("no graph credential configured".to_owned()));
        }
    };
    let mut gc = GraphConfig::new(g.tenant_id.clone(), g.client_id.clone());
    gc.login_url = g.login_url.as_str().trim_end_matches('/').to_owned();
    gc.api_url = g.api_url.as_str().trim_end_matches('/').to_owned();
    gc.mail_sender = g.mail_sender.as_deref().map(Mailbox::new).transpose()?;
    let sink_audit = Arc::clone(audit);
    let clock = Arc::clone(&options.clock);
    let sink = move |r: &orb_graph_client::AuditRecord| {
        let mut entry = AuditEntry::new(
            clock(),
            r.correlation_id.as_str().into(),
            None,
            "graph",
            format!("{} {}", r.method, r.path_template),
            r.status
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
        );
        entry.detail = r.mailbox.clone();
        sink_audit.record(entry);
    };
    Ok(GraphClient::new(gc, credential, Some(Arc::new(sink)))?)
}

pub(crate) fn topdesk_client(
    config: &Config,
    store: &Arc<Store>,
    audit: &Arc<AuditWriter>,
    options: &Options,
) -> Result<TopdeskClient, Error> {
    let t = &config.topdesk;
    let password = secret_text(
        store,
        &t.application_password,
        "topdesk.application_password",
    )?;
    let link_type = t
        .external_link_type
        .parse::<u32>()
        .ok()
        .and_then(ExternalLinkType::new)
        .ok_or_else(|| {
            Error::Invalid("topdesk.external_link_type must be a non-zero integer".to_owned())
        })?;
    let tc = orb_topdesk_client::Config::new(
        t.url.as_str().trim_end_matches('/'),
        t.username.clone(),
        password,
        link_type,
    );
    let sink_audit = Arc::clone(audit);
    let clock = Arc::clone(&options.clock);
    let sink = move |r: &orb_topdesk_client::AuditRecord| {
        let entry = AuditEntry::new(
            clock(),
            r.correlation_id.as_str().into(),
            None,
            "topdesk",
            format!("{} {}", r.method, r.path_template),
            r.status
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
        );
        sink_audit.record(entry);
    };
    Ok(TopdeskClient::new(tc, Some(Arc::new(sink)))?)
}

fn secret_text(store: &Store, reference: &SecretRef, what: &str) -> Result<String, Error> {
    let value = state::resolve_secret(store, reference)?;
    String::from_utf8(value.expose().to_vec())
        .map_err(|_| Error::Invalid(format!("{what} is not text")))
}

pub(crate) fn tls_acceptor(config: &Config) -> Result<Option<tokio_rustls::TlsAcceptor>, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.service.tls_cert_file, &config.service.tls_key_file)
    else {
        return Ok(None);
    };
    let tls_err =
        |path: &Path, e: &dyn std::fmt::Display| Error::Tls(format!("{}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_err(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, &e))?;
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| Error::Tls(e.to_string()))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))))
}
