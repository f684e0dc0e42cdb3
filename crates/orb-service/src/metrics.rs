//! Prometheus metrics under the stable names of `interfaces.md`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Why a notification (or a whole POST) was rejected: the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The sender's address is outside `service.allowed_sources`.
    Source,
    /// The body exceeded `service.max_body_bytes`.
    TooLarge,
    /// The body is not a notification collection.
    Malformed,
    /// A `validationTokens` JWT failed validation.
    Token,
    /// No subscription with this id.
    UnknownSubscription,
    /// `clientState` does not match the subscription's.
    ClientState,
    /// `tenantId` is not the configured tenant.
    Tenant,
    /// `encryptedContent` failed verification or decryption.
    Decrypt,
}

impl RejectReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::Token => "validation_token",
            Self::UnknownSubscription => "unknown_subscription",
            Self::ClientState => "client_state",
            Self::Tenant => "tenant",
            Self::Decrypt => "decrypt",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EffectLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoomLabel {
    room: String,
}

/// All of orb's metrics, shareable across tasks.
pub struct Metrics {
    registry: Mutex<Registry>,
    received: Counter,
    rejected: Family<ReasonLabel, Counter>,
    ack_seconds: Histogram,
    effects: Family<EffectLabels, Counter>,
    outbox_depth: Gauge,
    parked: Gauge,
    subscription_expiry: Family<RoomLabel, Gauge>,
    admin_login_failures: Counter,
    /// Unix seconds of the last notification POST (0: none since start).
    last_notification: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let received = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        // 0.25 ms … ~4 s: acks must stay far below Graph's 3 s limit.
        let ack_seconds = Histogram::new([
            0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0,
        ]);
        let effects = Family::<EffectLabels, Counter>::default();
        let outbox_depth = Gauge::default();
        let parked = Gauge::default();
        let subscription_expiry = Family::<RoomLabel, Gauge>::default();
        let admin_login_failures = Counter::default();
        registry.register(
            "orb_notifications_received",
            "Notification POSTs received on the webhook",
            received.clone(),
        );
        registry.register(
            "orb_notifications_rejected",
            "Notifications rejected, by reason",
            rejected.clone(),
        );
        registry.register(
            "orb_webhook_ack_seconds",
            "Time from request to acknowledgement (after the durable inbox append)",
            ack_seconds.clone(),
        );
        registry.register(
            "orb_effects",
            "Effects executed, by kind and outcome",
            effects.clone(),
        );
        registry.register(
            "orb_outbox_depth",
            "Effects waiting in the outbox",
            outbox_depth.clone(),
        );
        registry.register(
            "orb_parked_bookings",
            "Bookings parked for an admin",
            parked.clone(),
        );
        registry.register(
            "orb_subscription_expiry_seconds",
            "Seconds until each room's subscription expires",
            subscription_expiry.clone(),
        );
        registry.register(
            "orb_admin_login_failures",
            "Failed logins on the admin page (wrong token)",
            admin_login_failures.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            received,
            rejected,
            ack_seconds,
            effects,
            outbox_depth,
            parked,
            subscription_expiry,
            admin_login_failures,
            last_notification: AtomicI64::new(0),
        }
    }

    /// A notification POST arrived.
    pub fn received(&self) {
        self.received.inc();
        self.last_notification
            .store(jiff::Timestamp::now().as_second(), Ordering::Relaxed);
    }

    /// When the last notification POST arrived (wall clock); `None` since start.
    pub fn last_notification(&self) -> Option<jiff::Timestamp> {
        match self.last_notification.load(Ordering::Relaxed) {
            0 => None,
            s => jiff::Timestamp::from_second(s).ok(),
        }
    }

    /// A login on the admin page failed.
    pub fn admin_login_failed(&self) {
        self.admin_login_failures.inc();
    }

    /// Failed admin-page logins so far.
    pub fn admin_login_failures(&self) -> u64 {
        self.admin_login_failures.get()
    }

    /// The outbox depth last set by [`Metrics::set_queue`].
    pub fn outbox_depth(&self) -> i64 {
        self.outbox_depth.get()
    }

    /// The parked count last set by [`Metrics::set_queue`].
    pub fn parked(&self) -> i64 {
        self.parked.get()
    }

    /// Something was rejected.
    pub fn rejected(&self, reason: RejectReason) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// How many rejections for `reason` so far.
    pub fn rejected_count(&self, reason: RejectReason) -> u64 {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .get()
    }

    /// How many POSTs were received so far.
    pub fn received_count(&self) -> u64 {
        self.received.get()
    }

    /// Records one acknowledgement latency.
    pub fn ack(&self, seconds: f64) {
        self.ack_seconds.observe(seconds);
    }

    /// Records one executed effect.
    pub fn effect(&self, kind: &str, outcome: &str) {
        self.effects
            .get_or_create(&EffectLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Sets the outbox depth and the parked count.
    pub fn set_queue(&self, outbox_depth: u64, parked: u64) {
        self.outbox_depth
            .set(i64::try_from(outbox_depth).unwrap_or(i64::MAX));
        self.parked.set(i64::try_from(parked).unwrap_or(i64::MAX));
    }

    /// Sets the seconds until `room`'s subscription expires.
    pub fn set_subscription_expiry(&self, room: &str, seconds: i64) {
        self.subscription_expiry
            .get_or_create(&RoomLabel {
                room: room.to_owned(),
            })
            .set(seconds);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = match self.registry.lock() {
            Ok(r) => r,
            // A panic elsewhere while holding the lock leaves the registry itself intact.
            Err(poisoned) => poisoned.into_inner(),
        };
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
