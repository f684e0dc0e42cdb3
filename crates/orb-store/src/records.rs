//! The non-booking records: subscriptions, encryption keys, inbox, outbox, audit.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::codec::{opt_ts, ts};
use crate::ids::{
    AuditId, CorrelationId, InboxSeq, MatchId, OutboxId, RoomMailbox, SubscriptionId,
};

/// Secret bytes (a secret's plaintext, a private key, a `clientState`): zeroized on
/// drop, never printed, compared in constant time.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret bytes. Callers must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time comparison with `other` (e.g. a notification's `clientState`
    /// against the stored one).
    pub fn matches(&self, other: &[u8]) -> bool {
        self.0.as_slice().ct_eq(other).into()
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for SecretBytes {}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl From<&str> for SecretBytes {
    fn from(value: &str) -> Self {
        Self(value.as_bytes().to_vec())
    }
}

/// Lifecycle state of a Graph subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SubscriptionState {
    /// Requested, not yet confirmed by Graph.
    Pending,
    /// Confirmed and receiving notifications.
    Active,
    /// Graph asked for reauthorization or renewal is due.
    NeedsRenewal,
    /// Removed by Graph (lifecycle `subscriptionRemoved`) or expired.
    Removed,
    /// Creating or renewing failed (e.g. the mailbox is denied by scoping).
    Failed,
}

/// One Graph change-notification subscription (one per managed room).
///
/// The `client_state` is encrypted at rest under the master key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// Graph's subscription id.
    pub id: SubscriptionId,
    /// The room mailbox subscribed to.
    pub room: RoomMailbox,
    /// The random `clientState` every notification must carry.
    pub client_state: SecretBytes,
    /// Id of the encryption certificate given to Graph for rich notifications.
    pub certificate_id: String,
    /// When the subscription expires.
    pub expires_at: Timestamp,
    /// Lifecycle state.
    pub state: SubscriptionState,
}

impl Subscription {
    /// A subscription record.
    pub fn new(
        id: SubscriptionId,
        room: RoomMailbox,
        client_state: SecretBytes,
        certificate_id: impl Into<String>,
        expires_at: Timestamp,
        state: SubscriptionState,
    ) -> Self {
        Self {
            id,
            room,
            client_state,
            certificate_id: certificate_id.into(),
            expires_at,
            state,
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("room", &self.room)
            .field("client_state", &self.client_state)
            .field("certificate_id", &self.certificate_id)
            .field("expires_at", &self.expires_at)
            .field("state", &self.state)
            .finish()
    }
}

/// On-disk shape of a subscription: the client state is sealed separately.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSubscription {
    pub(crate) id: SubscriptionId,
    pub(crate) room: RoomMailbox,
    pub(crate) sealed_client_state: Vec<u8>,
    pub(crate) certificate_id: String,
    #[serde(with = "ts")]
    pub(crate) expires_at: Timestamp,
    pub(crate) state: SubscriptionState,
}

/// Role of a notification-encryption key in the rotation ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyState {
    /// Given to Graph for new subscriptions.
    Current,
    /// Superseded but still accepted for notifications encrypted before the rotation.
    Previous,
    /// No longer accepted; kept only until deleted.
    Retired,
}

/// A notification-encryption certificate with its private key. Stored wholly encrypted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EncryptionKey {
    /// The certificate id given to Graph (`encryptionCertificateId`).
    pub id: String,
    /// The public certificate, PEM.
    pub certificate_pem: String,
    /// The private key, PEM (PKCS#8).
    pub private_key_pem: SecretBytes,
    /// When the key was created.
    #[serde(with = "ts")]
    pub created_at: Timestamp,
    /// When the certificate expires.
    #[serde(with = "ts")]
    pub expires_at: Timestamp,
    /// Its role in the ring.
    pub state: KeyState,
}

impl EncryptionKey {
    /// An encryption key record.
    pub fn new(
        id: impl Into<String>,
        certificate_pem: impl Into<String>,
        private_key_pem: SecretBytes,
        created_at: Timestamp,
        expires_at: Timestamp,
        state: KeyState,
    ) -> Self {
        Self {
            id: id.into(),
            certificate_pem: certificate_pem.into(),
            private_key_pem,
            created_at,
            expires_at,
            state,
        }
    }
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .field("private_key_pem", &self.private_key_pem)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Result of appending a notification body to the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxAppend {
    /// The entry's sequence number (the earlier entry's, for a duplicate).
    pub seq: InboxSeq,
    /// `true` when an identical body (same SHA-256) is already in the inbox; nothing was
    /// written.
    pub duplicate: bool,
}

/// A raw notification POST body kept in the inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InboxEntry {
    /// Arrival order.
    pub seq: InboxSeq,
    /// When it was received.
    #[serde(with = "ts")]
    pub received_at: Timestamp,
    /// The body exactly as POSTed (still encrypted if Graph encrypted it) while the
    /// entry is pending; empty once it is done (format 5 keeps only the hash then).
    pub body: Vec<u8>,
    /// SHA-256 of the body.
    pub hash: [u8; 32],
    /// When processing finished; `None` while pending.
    #[serde(with = "opt_ts")]
    pub done_at: Option<Timestamp>,
}

/// State of an outbox entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutboxState {
    /// Waiting for its next attempt.
    Pending,
    /// Failed too often; waits for an admin retry.
    Parked,
}

/// A planned effect to enqueue (see [`crate::Transaction::enqueue`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewEffect {
    /// The booking the effect belongs to, if any.
    pub booking: Option<MatchId>,
    /// Correlation id of the run that planned it.
    pub correlation_id: CorrelationId,
    /// Short label for metrics and the admin view (e.g. `create_reservation`).
    pub kind: String,
    /// The serialized effect; opaque to the store.
    pub payload: Vec<u8>,
    /// Earliest time of the first attempt.
    pub not_before: Timestamp,
}

impl NewEffect {
    /// A new effect.
    pub fn new(
        booking: Option<MatchId>,
        correlation_id: CorrelationId,
        kind: impl Into<String>,
        payload: Vec<u8>,
        not_before: Timestamp,
    ) -> Self {
        Self {
            booking,
            correlation_id,
            kind: kind.into(),
            payload,
            not_before,
        }
    }
}

/// A planned effect in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// Its id.
    pub id: OutboxId,
    /// The booking it belongs to, if any.
    pub booking: Option<MatchId>,
    /// Correlation id of the run that planned it.
    pub correlation_id: CorrelationId,
    /// Short label (see [`NewEffect::kind`]).
    pub kind: String,
    /// The serialized effect.
    pub payload: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it may be attempted next.
    #[serde(with = "ts")]
    pub next_attempt_at: Timestamp,
    /// The last failure, as reported by the executor (must not contain secrets).
    pub last_error: Option<String>,
    /// Pending or parked.
    pub state: OutboxState,
    /// When it was enqueued.
    #[serde(with = "ts")]
    pub created_at: Timestamp,
}

/// An audit record to append (see [`crate::Transaction::audit`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When it happened.
    #[serde(with = "ts")]
    pub at: Timestamp,
    /// Correlation id of the run.
    pub correlation_id: CorrelationId,
    /// The booking concerned, if any.
    pub booking: Option<MatchId>,
    /// Who acted: `graph`, `topdesk`, `engine`, `admin`, …
    pub actor: String,
    /// What was done, e.g. `POST /users/{room}/events` or `decide`.
    pub action: String,
    /// The outcome, e.g. `201`, `429 retry-after 3s`, `skipped`.
    pub outcome: String,
    /// Optional free text (must not contain secrets or payloads).
    pub detail: Option<String>,
}

impl AuditEntry {
    /// A new audit entry.
    pub fn new(
        at: Timestamp,
        correlation_id: CorrelationId,
        booking: Option<MatchId>,
        actor: impl Into<String>,
        action: impl Into<String>,
        outcome: impl Into<String>,
    ) -> Self {
        Self {
            at,
            correlation_id,
            booking,
            actor: actor.into(),
            action: action.into(),
            outcome: outcome.into(),
            detail: None,
        }
    }
}

/// An audit record as stored, with its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Append order.
    pub id: AuditId,
    /// The entry.
    pub entry: AuditEntry,
}
