//! Multi-key atomic writes: one [`Transaction`] becomes one engine transaction over all
//! trees, so a booking, its index entries, outbox entries, audit records, cursors and
//! inbox marks land together or not at all.

use jiff::Timestamp;
use sled::Tree;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionalTree,
};

use crate::booking::{Booking, IndexEntry, index_entries};
use crate::codec::{decode, encode, time_id_key};
use crate::error::{Error, Result, from_sled};
use crate::ids::{AuditId, InboxSeq, MatchId, OutboxId, RoomMailbox, SubscriptionId};
use crate::records::{
    AuditEntry, AuditRecord, EncryptionKey, InboxEntry, NewEffect, OutboxEntry, OutboxState,
    SecretBytes, StoredSubscription, Subscription,
};
use crate::store::{CURRENT_FORMAT, Store, aad, audit_idx_key, cursor_key};

/// A set of writes applied atomically by [`Transaction::commit`].
///
/// Nothing is visible to readers until the commit; if the process dies before or during
/// the commit, none of it is visible after restart. Ids for outbox entries and audit
/// records are allocated when they are added.
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction<'s> {
    store: &'s Store,
    ops: Vec<Op>,
}

/// The done record of a pending inbox entry: what the tree keeps once its body in the
/// inbox log may go.
pub(crate) struct InboxDone {
    pub(crate) seq: InboxSeq,
    received_at: Timestamp,
    hash: [u8; 32],
    at: Timestamp,
}

pub(crate) enum Op {
    /// The booking and the sealed engine state written with it (`None` removes any).
    SaveBooking(Box<Booking>, Option<Vec<u8>>),
    DeleteBooking(MatchId),
    Enqueue(Box<OutboxEntry>),
    CompleteEffect(OutboxId),
    EffectFailed {
        id: OutboxId,
        error: String,
        next_attempt_at: Timestamp,
        max_attempts: u32,
    },
    RetryEffect {
        id: OutboxId,
        now: Timestamp,
    },
    Audit(Box<AuditRecord>),
    InboxDone(InboxDone),
    SetDeltaLink(RoomMailbox, Option<String>),
    SetWatermark(String, Timestamp),
    PutSubscription(Box<StoredSubscription>),
    DeleteSubscription(SubscriptionId),
    PutSealed {
        tree: usize,
        key: Vec<u8>,
        sealed: Vec<u8>,
    },
    Delete {
        tree: usize,
        key: Vec<u8>,
    },
}

impl<'s> Transaction<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self {
            store,
            ops: Vec::new(),
        }
    }

    /// Inserts or replaces a booking and brings every secondary index in line with it.
    /// Fails the whole commit with [`Error::IndexConflict`] if a unique id (room event
    /// id, TOPdesk reservation id or number) is held by another booking.
    pub fn save_booking(&mut self, booking: Booking) -> &mut Self {
        self.ops.push(Op::SaveBooking(Box::new(booking), None));
        self
    }

    /// [`Transaction::save_booking`] together with the sync engine's working state of
    /// the booking: opaque bytes, sealed under the master key, readable with
    /// [`Store::engine_state`]. The state belongs to this version of the record: saving
    /// the booking again without one (`save_booking`) removes it, so a stored engine
    /// state is never older than its record.
    pub fn save_booking_with_engine_state(
        &mut self,
        booking: Booking,
        engine_state: &[u8],
    ) -> Result<&mut Self> {
        let sealed = self
            .store
            .sealer()
            .seal(&aad::engine_state(&booking.match_id), engine_state)?;
        self.ops
            .push(Op::SaveBooking(Box::new(booking), Some(sealed)));
        Ok(self)
    }

    /// Deletes a booking, its index entries and its engine state (no-op when absent).
    /// Its outbox entries and audit records are kept.
    pub fn delete_booking(&mut self, id: MatchId) -> &mut Self {
        self.ops.push(Op::DeleteBooking(id));
        self
    }

    /// Adds a planned effect to the outbox; returns its id.
    pub fn enqueue(&mut self, effect: NewEffect, now: Timestamp) -> Result<OutboxId> {
        let id = OutboxId(self.store.generate_id()?);
        self.ops.push(Op::Enqueue(Box::new(OutboxEntry {
            id,
            booking: effect.booking,
            correlation_id: effect.correlation_id,
            kind: effect.kind,
            payload: effect.payload,
            attempts: 0,
            next_attempt_at: effect.not_before,
            last_error: None,
            state: OutboxState::Pending,
            created_at: now,
        })));
        Ok(id)
    }

    /// Removes an executed effect from the outbox (no-op when absent, so replays are
    /// harmless).
    pub fn complete_effect(&mut self, id: OutboxId) -> &mut Self {
        self.ops.push(Op::CompleteEffect(id));
        self
    }

    /// Records a failed attempt: increments the attempt count, stores `error`, and either
    /// reschedules at `next_attempt_at` or parks the entry once `attempts >= max_attempts`.
    pub fn effect_failed(
        &mut self,
        id: OutboxId,
        error: impl Into<String>,
        next_attempt_at: Timestamp,
        max_attempts: u32,
    ) -> &mut Self {
        self.ops.push(Op::EffectFailed {
            id,
            error: error.into(),
            next_attempt_at,
            max_attempts,
        });
        self
    }

    /// Admin retry: makes a (parked or pending) entry due at `now` with its attempt count
    /// reset. The last error is kept for the record.
    pub fn retry_effect(&mut self, id: OutboxId, now: Timestamp) -> &mut Self {
        self.ops.push(Op::RetryEffect { id, now });
        self
    }

    /// Appends an audit record; returns its id.
    pub fn audit(&mut self, entry: AuditEntry) -> Result<AuditId> {
        let id = AuditId(self.store.generate_id()?);
        self.ops
            .push(Op::Audit(Box::new(AuditRecord { id, entry })));
        Ok(id)
    }

    /// Marks an inbox entry as processed (no-op when absent or already done).
    pub fn mark_inbox_done(&mut self, seq: InboxSeq, at: Timestamp) -> &mut Self {
        if let Some(p) = self.store.inbox_pending_entry(seq) {
            self.ops.push(Op::InboxDone(InboxDone {
                seq,
                received_at: p.received_at,
                hash: p.hash,
                at,
            }));
        }
        self
    }

    /// Stores the Graph delta link of a room.
    pub fn set_delta_link(&mut self, room: RoomMailbox, link: impl Into<String>) -> &mut Self {
        self.ops.push(Op::SetDeltaLink(room, Some(link.into())));
        self
    }

    /// Forgets the delta link of a room (e.g. after Graph answered 410 Gone).
    pub fn clear_delta_link(&mut self, room: RoomMailbox) -> &mut Self {
        self.ops.push(Op::SetDeltaLink(room, None));
        self
    }

    /// Stores a TOPdesk poll watermark under `name`.
    pub fn set_watermark(&mut self, name: impl Into<String>, at: Timestamp) -> &mut Self {
        self.ops.push(Op::SetWatermark(name.into(), at));
        self
    }

    /// Inserts or replaces a subscription (its client state is sealed).
    pub fn put_subscription(&mut self, sub: &Subscription) -> Result<&mut Self> {
        let sealed_client_state = self
            .store
            .sealer()
            .seal(&aad::client_state(&sub.id), sub.client_state.expose())?;
        self.ops
            .push(Op::PutSubscription(Box::new(StoredSubscription {
                id: sub.id.clone(),
                room: sub.room.clone(),
                sealed_client_state,
                certificate_id: sub.certificate_id.clone(),
                expires_at: sub.expires_at,
                state: sub.state,
            })));
        Ok(self)
    }

    /// Deletes a subscription (no-op when absent).
    pub fn delete_subscription(&mut self, id: SubscriptionId) -> &mut Self {
        self.ops.push(Op::DeleteSubscription(id));
        self
    }

    /// Stores a secret, sealed under the master key.
    pub fn set_secret(&mut self, name: &str, value: &SecretBytes) -> Result<&mut Self> {
        let sealed = self
            .store
            .sealer()
            .seal(&aad::secret(name), value.expose())?;
        self.ops.push(Op::PutSealed {
            tree: T_SECRETS,
            key: name.as_bytes().to_vec(),
            sealed,
        });
        Ok(self)
    }

    /// Deletes a secret (no-op when absent).
    pub fn delete_secret(&mut self, name: &str) -> &mut Self {
        self.ops.push(Op::Delete {
            tree: T_SECRETS,
            key: name.as_bytes().to_vec(),
        });
        self
    }

    /// Stores a notification-encryption key, wholly sealed under the master key.
    pub fn put_encryption_key(&mut self, key: &EncryptionKey) -> Result<&mut Self> {
        let plain = zeroize::Zeroizing::new(encode("encryption key", key)?);
        let sealed = self
            .store
            .sealer()
            .seal(&aad::encryption_key(&key.id), &plain)?;
        self.ops.push(Op::PutSealed {
            tree: T_KEYS,
            key: key.id.as_bytes().to_vec(),
            sealed,
        });
        Ok(self)
    }

    /// Deletes a notification-encryption key (no-op when absent).
    pub fn delete_encryption_key(&mut self, id: &str) -> &mut Self {
        self.ops.push(Op::Delete {
            tree: T_KEYS,
            key: id.as_bytes().to_vec(),
        });
        self
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies all writes atomically and returns once they are on disk (fsync'ed).
    /// Concurrent committers share one flush (group commit).
    pub fn commit(self) -> Result<()> {
        self.store.apply(&self.ops)?;
        self.store.durable()
    }

    /// Applies all writes atomically without waiting for the disk: a crash may lose
    /// them (all together, never partially). The next durable commit, or the engine's
    /// periodic flush, persists them.
    pub fn commit_buffered(self) -> Result<()> {
        self.store.apply(&self.ops)
    }
}

// Tree positions in the transaction view; must match `Trees::all`.
pub(crate) const T_META: usize = 0;
pub(crate) const T_BOOKINGS: usize = 1;
pub(crate) const T_BOOKING_IDX: usize = 2;
pub(crate) const T_SUBSCRIPTIONS: usize = 3;
pub(crate) const T_SECRETS: usize = 4;
pub(crate) const T_KEYS: usize = 5;
pub(crate) const T_CURSORS: usize = 6;
pub(crate) const T_INBOX: usize = 7;
pub(crate) const T_OUTBOX: usize = 8;
pub(crate) const T_OUTBOX_DUE: usize = 9;
pub(crate) const T_AUDIT: usize = 10;
pub(crate) const T_AUDIT_IDX: usize = 11;
pub(crate) const T_ENGINE_STATE: usize = 12;

/// Names of the trees on disk, indexed by the `T_*` constants.
pub(crate) const TREE_NAMES: [&str; 13] = [
    "meta",
    "bookings",
    "booking_idx",
    "subscriptions",
    "secrets",
    "encryption_keys",
    "cursors",
    "inbox",
    "outbox",
    "outbox_due",
    "audit",
    "audit_idx",
    "engine_state",
];

type TxResult<T> = ConflictableTransactionResult<T, Error>;

fn abort<T>(e: Error) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn enc<T: serde::Serialize>(kind: &'static str, v: &T) -> TxResult<Vec<u8>> {
    encode(kind, v).or_else(abort)
}

fn dec<T: serde::de::DeserializeOwned>(kind: &'static str, b: &[u8]) -> TxResult<T> {
    decode(kind, b).or_else(abort)
}

/// Runs `ops` as one engine transaction over all trees.
pub(crate) fn apply_ops(trees: &[&Tree], ops: &[Op]) -> Result<()> {
    use sled::Transactional as _;
    let outcome = trees.transaction(|v: &Vec<TransactionalTree>| {
        for op in ops {
            apply_op(v, op)?;
        }
        Ok(())
    });
    outcome.map_err(|e| match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => from_sled(e),
    })
}

fn apply_op(v: &[TransactionalTree], op: &Op) -> TxResult<()> {
    match op {
        Op::SaveBooking(b, engine_state) => {
            save_booking(v, b)?;
            let key = b.match_id.as_str().as_bytes();
            match engine_state {
                Some(sealed) => v[T_ENGINE_STATE].insert(key, sealed.as_slice())?,
                None => v[T_ENGINE_STATE].remove(key)?,
            };
            Ok(())
        }
        Op::DeleteBooking(id) => delete_booking(v, id),
        Op::Enqueue(e) => put_effect(v, e),
        Op::CompleteEffect(id) => {
            if let Some(old) = v[T_OUTBOX].remove(&id.0.to_be_bytes())? {
                let old: OutboxEntry = dec("outbox", &old)?;
                v[T_OUTBOX_DUE].remove(&time_id_key(old.next_attempt_at, id.0))?;
            }
            Ok(())
        }
        Op::EffectFailed {
            id,
            error,
            next_attempt_at,
            max_attempts,
        } => {
            let mut e = load_effect(v, *id)?;
            unschedule(v, &e)?;
            e.attempts = e.attempts.saturating_add(1);
            e.last_error = Some(error.clone());
            e.next_attempt_at = *next_attempt_at;
            if e.attempts >= *max_attempts {
                e.state = OutboxState::Parked;
            }
            put_effect(v, &e)
        }
        Op::RetryEffect { id, now } => {
            let mut e = load_effect(v, *id)?;
            unschedule(v, &e)?;
            e.attempts = 0;
            e.state = OutboxState::Pending;
            e.next_attempt_at = *now;
            put_effect(v, &e)
        }
        Op::Audit(r) => {
            let key = time_id_key(r.entry.at, r.id.0);
            v[T_AUDIT].insert(&key, enc("audit", r.as_ref())?)?;
            v[T_AUDIT_IDX].insert(
                audit_idx_key(b'c', r.entry.correlation_id.as_str(), r.id),
                &key,
            )?;
            if let Some(b) = &r.entry.booking {
                v[T_AUDIT_IDX].insert(audit_idx_key(b'b', b.as_str(), r.id), &key)?;
            }
            Ok(())
        }
        Op::InboxDone(done) => {
            let key = done.seq.0.to_be_bytes();
            // Present already if two transactions marked it: the first one counts.
            if v[T_INBOX].get(key)?.is_none() {
                // Format 6: the body stays in the inbox log until its segment goes; the
                // tree keeps the hash for duplicate detection until pruned.
                let e = InboxEntry {
                    seq: done.seq,
                    received_at: done.received_at,
                    body: Vec::new(),
                    hash: done.hash,
                    done_at: Some(done.at),
                };
                v[T_INBOX].insert(&key, enc("inbox", &e)?)?;
            }
            Ok(())
        }
        Op::SetDeltaLink(room, link) => {
            let key = cursor_key(b'd', room.as_str());
            match link {
                Some(l) => v[T_CURSORS].insert(key, l.as_bytes())?,
                None => v[T_CURSORS].remove(key)?,
            };
            Ok(())
        }
        Op::SetWatermark(name, at) => {
            v[T_CURSORS].insert(cursor_key(b'w', name), &at.as_nanosecond().to_be_bytes())?;
            Ok(())
        }
        Op::PutSubscription(s) => {
            v[T_SUBSCRIPTIONS]
                .insert(s.id.as_str().as_bytes(), enc("subscription", s.as_ref())?)?;
            Ok(())
        }
        Op::DeleteSubscription(id) => {
            v[T_SUBSCRIPTIONS].remove(id.as_str().as_bytes())?;
            Ok(())
        }
        Op::PutSealed { tree, key, sealed } => {
            v[*tree].insert(key.as_slice(), sealed.as_slice())?;
            Ok(())
        }
        Op::Delete { tree, key } => {
            v[*tree].remove(key.as_slice())?;
            Ok(())
        }
    }
}

fn save_booking(v: &[TransactionalTree], b: &Booking) -> TxResult<()> {
    let id = b.match_id.as_str().as_bytes();
    let old_entries = match v[T_BOOKINGS].get(id)? {
        Some(bytes) => index_entries(&dec::<Booking>("booking", &bytes)?, CURRENT_FORMAT),
        None => Vec::new(),
    };
    let new_entries = index_entries(b, CURRENT_FORMAT);
    for e in old_entries.iter().filter(|e| !new_entries.contains(e)) {
        v[T_BOOKING_IDX].remove(e.key.as_slice())?;
    }
    for IndexEntry { key, unique } in &new_entries {
        if let Some(index) = unique
            && let Some(holder) = v[T_BOOKING_IDX].get(key.as_slice())?
            && holder.as_ref() != id
        {
            return abort(Error::IndexConflict {
                index,
                holder: String::from_utf8_lossy(&holder).into_owned(),
            });
        }
        v[T_BOOKING_IDX].insert(key.as_slice(), id)?;
    }
    v[T_BOOKINGS].insert(id, enc("booking", b)?)?;
    Ok(())
}

fn delete_booking(v: &[TransactionalTree], id: &MatchId) -> TxResult<()> {
    if let Some(bytes) = v[T_BOOKINGS].remove(id.as_str().as_bytes())? {
        let old: Booking = dec("booking", &bytes)?;
        for e in index_entries(&old, CURRENT_FORMAT) {
            v[T_BOOKING_IDX].remove(e.key)?;
        }
    }
    v[T_ENGINE_STATE].remove(id.as_str().as_bytes())?;
    Ok(())
}

fn load_effect(v: &[TransactionalTree], id: OutboxId) -> TxResult<OutboxEntry> {
    match v[T_OUTBOX].get(id.0.to_be_bytes())? {
        Some(bytes) => dec("outbox", &bytes),
        None => abort(Error::NotFound {
            kind: "outbox entry",
            id: id.to_string(),
        }),
    }
}

fn unschedule(v: &[TransactionalTree], e: &OutboxEntry) -> TxResult<()> {
    v[T_OUTBOX_DUE].remove(&time_id_key(e.next_attempt_at, e.id.0))?;
    Ok(())
}

fn put_effect(v: &[TransactionalTree], e: &OutboxEntry) -> TxResult<()> {
    v[T_OUTBOX].insert(&e.id.0.to_be_bytes(), enc("outbox", e)?)?;
    if e.state == OutboxState::Pending {
        v[T_OUTBOX_DUE].insert(&time_id_key(e.next_attempt_at, e.id.0), &[])?;
    }
    Ok(())
}
