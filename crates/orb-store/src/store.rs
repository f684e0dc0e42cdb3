//! The [`Store`] handle: opening, format versioning, reads and single-purpose writes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use jiff::Timestamp;
use sha2::{Digest as _, Sha256};
use sled::Tree;

use crate::booking::{Booking, ical_prefix, index_entries, kind, multi_prefix, unique_key};
use crate::codec::{decode, encode, push_len_prefixed, time_id_key, u64_from_key};
use crate::crypto::{MasterKey, Sealer};
use crate::error::{Error, Result, SledResultExt as _, from_sled};
use crate::flush::GroupCommit;
use crate::ids::{
    AuditId, CorrelationId, GraphEventId, IcalUid, InboxSeq, MatchId, OutboxId, RoomMailbox,
    SubscriptionId, TopdeskReservationId, TopdeskReservationNumber,
};
use crate::inbox_log::InboxLog;
use crate::records::{
    AuditEntry, AuditRecord, EncryptionKey, InboxAppend, InboxEntry, NewEffect, OutboxEntry,
    OutboxState, SecretBytes, StoredSubscription, Subscription,
};
use crate::txn::{
    Op, T_AUDIT, T_AUDIT_IDX, T_BOOKING_IDX, T_BOOKINGS, T_CURSORS, T_ENGINE_STATE, T_INBOX,
    T_KEYS, T_META, T_OUTBOX, T_OUTBOX_DUE, T_SECRETS, T_SUBSCRIPTIONS, TREE_NAMES, Transaction,
    apply_ops,
};

/// The format this build writes (see the crate docs for the history); older formats are
/// migrated on open.
pub const CURRENT_FORMAT: u32 = 6;

const FORMAT_KEY: &[u8] = b"format_version";
const KEY_CHECK_KEY: &[u8] = b"key_check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"orb-store master key check";
/// How many records one pruning or migration transaction touches.
const CHUNK: usize = 1000;
/// See [`OpenOptions::checkpoint_after_writes`].
/// Measured (`benches/store.rs`, 2-core VM under load): replaying a booking transaction
/// costs 90–150 µs on top of the 0.05–0.3 s a 100k-booking store takes to open, so even
/// an overdue checkpoint (twice this, see [`Store::checkpoint_overdue`]) keeps the next
/// start's replay well under 1 s; 5,000 came too close to the target.
const DEFAULT_CHECKPOINT_AFTER_WRITES: u64 = 1_500;
/// See [`OpenOptions::inbox_segment_bytes`].
const DEFAULT_INBOX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// Slot names bound into sealed records (see [`crate::crypto`]).
pub(crate) mod aad {
    use crate::ids::SubscriptionId;

    pub(crate) const KEY_CHECK: &str = "key-check";

    pub(crate) fn secret(name: &str) -> String {
        format!("secret:{name}")
    }

    pub(crate) fn encryption_key(id: &str) -> String {
        format!("encryption-key:{id}")
    }

    pub(crate) fn client_state(id: &SubscriptionId) -> String {
        format!("client-state:{id}")
    }

    pub(crate) fn inbox(seq: crate::ids::InboxSeq) -> String {
        format!("inbox:{seq}")
    }

    pub(crate) fn engine_state(id: &crate::ids::MatchId) -> String {
        format!("engine-state:{id}")
    }
}

/// Options for [`Store::open_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Page cache size in bytes (default 64 MiB).
    pub cache_capacity: u64,
    /// How long to wait for the store's lock (default 10 s). The engine releases the lock
    /// only when its background threads have finished, shortly after the last handle is
    /// dropped, so reopening in the same process needs a brief grace period; another
    /// process holding the store still fails after this time.
    pub lock_timeout: std::time::Duration,
    /// After how many transactions since the engine last wrote its recovery snapshot
    /// [`Store::checkpoint_due`] says yes (default 1,500;
    /// [`Store::checkpoint_overdue`] at twice that).
    /// The next start replays the log written since that snapshot, so this bounds the
    /// replay; each checkpoint pauses the store for about that replay (see the README).
    pub checkpoint_after_writes: u64,
    /// Size after which the inbox log starts a new segment file (default 4 MiB). A
    /// segment is deleted once every entry in it is done.
    pub inbox_segment_bytes: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 64 * 1024 * 1024,
            lock_timeout: std::time::Duration::from_secs(10),
            checkpoint_after_writes: DEFAULT_CHECKPOINT_AFTER_WRITES,
            inbox_segment_bytes: DEFAULT_INBOX_SEGMENT_BYTES,
        }
    }
}

/// Outbox depth by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxDepth {
    /// Entries waiting for an attempt.
    pub pending: usize,
    /// Entries parked after too many failures.
    pub parked: usize,
}

/// orb's durable state. Cheap to clone; all clones share one database. `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The engine handle. Every operation holds a read guard while it touches the
    /// engine; [`Store::checkpoint`] takes the write guard to close and reopen it. `None`
    /// only if reopening failed (every operation then fails with [`Error::Closed`]).
    ///
    /// A thread must never take a second read guard while it holds one: std's lock
    /// queues new readers behind a waiting writer, so that would deadlock against a
    /// checkpoint. Each method therefore takes one guard ([`Store::engine`]) and calls no
    /// other method that takes one while holding it.
    engine: RwLock<Option<Engine>>,
    /// Transactions since the engine last wrote its recovery snapshot, i.e. since it
    /// was opened.
    writes_since_snapshot: AtomicU64,
    sealer: Sealer,
    group: GroupCommit,
    /// SHA-256 of every retained inbox body → its sequence number, for duplicate
    /// detection. Rebuilt on open from the inbox tree (done entries) and the inbox log
    /// (pending ones).
    inbox_hashes: Mutex<HashMap<[u8; 32], InboxSeq>>,
    /// Pending inbox entries: their bodies, outside the engine (see
    /// [`crate::inbox_log`]).
    inbox: InboxLog,
    path: PathBuf,
    opts: OpenOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in directory `path` with default options.
    ///
    /// Writes the format version into a new store, migrates older formats, refuses newer
    /// ones ([`Error::UnsupportedFormat`]) and checks `master` against the key the store
    /// was created with ([`Error::WrongMasterKey`]).
    pub fn open(path: impl AsRef<Path>, master: &MasterKey) -> Result<Self> {
        Self::open_with(path, master, OpenOptions::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(
        path: impl AsRef<Path>,
        master: &MasterKey,
        opts: OpenOptions,
    ) -> Result<Self> {
        Self::open_sealed(path.as_ref().to_owned(), Sealer::new(master), opts)
    }

    /// Rewrites the engine's recovery snapshot, so that the next start replays nothing
    /// written before this call; the store stays usable through every clone.
    ///
    /// sled 0.34 writes that snapshot only while opening, so every start replays the log
    /// written since the last open (tens of µs per write, seconds after 100k bookings).
    /// This flushes, closes the engine and opens it again behind an internal lock:
    /// operations on any clone wait for the pause (about the replay of the writes since
    /// the previous snapshot, see [`OpenOptions::checkpoint_after_writes`]) and then
    /// continue on the new engine. Call it at a quiet moment when
    /// [`Store::checkpoint_due`] says so, and at a clean shutdown.
    ///
    /// If reopening fails, the error is returned and every later operation fails with
    /// [`Error::Closed`]; whatever was committed before is on disk.
    pub fn checkpoint(&self) -> Result<()> {
        let mut slot = self.inner.engine.write().unwrap_or_else(|p| p.into_inner());
        let Some(engine) = slot.take() else {
            return Err(Error::Closed);
        };
        if let Err(e) = self.flush_engine(&engine) {
            *slot = Some(engine);
            return Err(e);
        }
        let writes = self.inner.writes_since_snapshot.load(Ordering::Relaxed);
        drop(engine);
        *slot = Some(Engine::open(&self.inner.path, &self.inner.opts)?);
        // Writes wait for the guard, so none happened since the load above.
        self.inner
            .writes_since_snapshot
            .fetch_sub(writes, Ordering::Relaxed);
        Ok(())
    }

    /// Whether enough writes have accumulated since the engine's last recovery snapshot
    /// that a [`Store::checkpoint`] is due ([`OpenOptions::checkpoint_after_writes`]).
    pub fn checkpoint_due(&self) -> bool {
        self.writes_since_checkpoint() >= self.inner.opts.checkpoint_after_writes
    }

    /// Whether twice [`OpenOptions::checkpoint_after_writes`] have accumulated: a caller
    /// that waits for a quiet moment should not wait any longer (the next start's replay
    /// is bounded by this).
    pub fn checkpoint_overdue(&self) -> bool {
        self.writes_since_checkpoint() >= self.inner.opts.checkpoint_after_writes.saturating_mul(2)
    }

    /// Transactions since the engine last wrote its recovery snapshot: what the next
    /// start would replay.
    pub fn writes_since_checkpoint(&self) -> u64 {
        self.inner.writes_since_snapshot.load(Ordering::Relaxed)
    }

    fn open_sealed(path: PathBuf, sealer: Sealer, opts: OpenOptions) -> Result<Self> {
        let engine = Engine::open(&path, &opts)?;
        check_format_and_key(&engine, &sealer)?;
        let inbox = open_inbox_log(&engine, &path, &opts)?;
        migrate_5_to_6(&engine, &inbox)?;
        let store = Store {
            inner: Arc::new(Inner {
                engine: RwLock::new(Some(engine)),
                writes_since_snapshot: AtomicU64::new(0),
                sealer,
                group: GroupCommit::new(),
                inbox_hashes: Mutex::new(HashMap::new()),
                inbox,
                path,
                opts,
            }),
        };
        store.load_inbox_hashes()?;
        Ok(store)
    }

    /// Opens a pending entry read back from the inbox log (its body is sealed).
    fn unseal_inbox(&self, e: crate::inbox_log::SealedEntry) -> Result<InboxEntry> {
        let body = self
            .sealer()
            .open("inbox entry", &aad::inbox(e.seq), &e.sealed)?
            .to_vec();
        Ok(InboxEntry {
            seq: e.seq,
            received_at: e.received_at,
            body,
            hash: e.hash,
            done_at: None,
        })
    }

    /// The format version on disk (after any migration: [`CURRENT_FORMAT`]).
    pub fn format_version(&self) -> Result<u32> {
        let v = self
            .engine()?
            .tree(T_META)
            .get(FORMAT_KEY)
            .db()?
            .ok_or_else(|| Error::Corrupt("format version missing".to_owned()))?;
        Ok(u32::from_be_bytes(v.as_ref().try_into().map_err(|_| {
            Error::Corrupt("format version record has the wrong length".to_owned())
        })?))
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.engine()?.db.size_on_disk().db()? + self.inner.inbox.size_on_disk())
    }

    /// How many flushes durable commits have performed so far (group commit makes this
    /// smaller than the number of durable commits under concurrency).
    pub fn flush_count(&self) -> u64 {
        self.inner.group.flush_count()
    }

    /// How many syncs durable inbox appends have performed so far (concurrent appends
    /// share one, like commits).
    pub fn inbox_flush_count(&self) -> u64 {
        self.inner.inbox.flush_count()
    }

    /// Flushes everything written so far (including buffered commits) to disk.
    pub fn flush(&self) -> Result<()> {
        self.durable()
    }

    /// Starts a multi-key atomic write.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction::new(self)
    }

    // ----- bookings -----

    /// Saves a booking with its indexes, durably. See [`Transaction::save_booking`].
    pub fn save_booking(&self, booking: &Booking) -> Result<()> {
        let mut tx = self.transaction();
        tx.save_booking(booking.clone());
        tx.commit()
    }

    /// Deletes a booking and its index entries, durably (no-op when absent).
    pub fn delete_booking(&self, id: &MatchId) -> Result<()> {
        let mut tx = self.transaction();
        tx.delete_booking(id.clone());
        tx.commit()
    }

    /// The booking with this match id.
    pub fn booking(&self, id: &MatchId) -> Result<Option<Booking>> {
        self.engine()?
            .tree(T_BOOKINGS)
            .get(id.as_str().as_bytes())
            .db()?
            .map(|v| decode("booking", &v))
            .transpose()
    }

    /// All bookings in match-id order.
    ///
    /// Reads in batches, each under its own short read guard, so the caller may use the
    /// store (and a checkpoint may run) between items.
    pub fn bookings(&self) -> impl Iterator<Item = Result<Booking>> + '_ {
        Paged {
            store: self,
            tree: T_BOOKINGS,
            after: None,
            batch: std::collections::VecDeque::new(),
            done: false,
        }
        .map(|item| decode("booking", &item?))
    }

    /// The sync engine's working state saved with the booking's current record
    /// ([`Transaction::save_booking_with_engine_state`]); `None` when the record was
    /// saved without one (or before format 4).
    pub fn engine_state(&self, id: &MatchId) -> Result<Option<Vec<u8>>> {
        self.engine()?
            .tree(T_ENGINE_STATE)
            .get(id.as_str().as_bytes())
            .db()?
            .map(|sealed| {
                self.sealer()
                    .open("engine state", &aad::engine_state(id), &sealed)
                    .map(|plain| plain.to_vec())
            })
            .transpose()
    }

    /// Number of bookings.
    /// (0 once the store is closed after a failed [`Store::checkpoint`]).
    pub fn booking_count(&self) -> usize {
        self.engine().map_or(0, |e| e.tree(T_BOOKINGS).len())
    }

    /// The booking whose room-calendar event has this id.
    pub fn booking_by_room_event(&self, id: &GraphEventId) -> Result<Option<Booking>> {
        self.unique_lookup(unique_key(kind::ROOM_EVENT, id.as_str()))
    }

    /// The booking with this TOPdesk reservation id.
    pub fn booking_by_topdesk_id(&self, id: &TopdeskReservationId) -> Result<Option<Booking>> {
        self.unique_lookup(unique_key(kind::TOPDESK_ID, id.as_str()))
    }

    /// The booking with this TOPdesk reservation number.
    pub fn booking_by_topdesk_number(
        &self,
        number: &TopdeskReservationNumber,
    ) -> Result<Option<Booking>> {
        self.unique_lookup(unique_key(kind::TOPDESK_NUMBER, number.as_str()))
    }

    /// Bookings whose organizer-calendar event has this id (several for a multi-room
    /// meeting).
    pub fn bookings_by_organizer_event(&self, id: &GraphEventId) -> Result<Vec<Booking>> {
        self.multi_lookup(multi_prefix(kind::ORGANIZER_EVENT, id.as_str()))
    }

    /// Bookings with this `iCalUId` (all occurrences and rooms of a series).
    pub fn bookings_by_ical_uid(&self, uid: &IcalUid) -> Result<Vec<Booking>> {
        self.multi_lookup(ical_prefix(uid, None))
    }

    /// Bookings with this `iCalUId` and occurrence start (`None`: non-occurrence
    /// bookings such as the series master or a single meeting).
    pub fn bookings_by_ical_occurrence(
        &self,
        uid: &IcalUid,
        occurrence_start: Option<Timestamp>,
    ) -> Result<Vec<Booking>> {
        self.multi_lookup(ical_prefix(uid, Some(occurrence_start)))
    }

    /// Bookings of one room.
    pub fn bookings_in_room(&self, room: &RoomMailbox) -> Result<Vec<Booking>> {
        self.multi_lookup(multi_prefix(kind::ROOM, room.as_str()))
    }

    /// The occurrence bookings linked to a series master.
    pub fn series_occurrences(&self, master: &MatchId) -> Result<Vec<Booking>> {
        self.multi_lookup(multi_prefix(kind::SERIES_MASTER, master.as_str()))
    }

    /// Bookings last touched by the run with this correlation id.
    pub fn bookings_by_correlation(&self, id: &CorrelationId) -> Result<Vec<Booking>> {
        self.multi_lookup(multi_prefix(kind::CORRELATION, id.as_str()))
    }

    fn unique_lookup(&self, key: Vec<u8>) -> Result<Option<Booking>> {
        let e = self.engine()?;
        match e.tree(T_BOOKING_IDX).get(key).db()? {
            Some(id) => e
                .tree(T_BOOKINGS)
                .get(id)
                .db()?
                .map(|v| decode("booking", &v))
                .transpose(),
            None => Ok(None),
        }
    }

    fn multi_lookup(&self, prefix: Vec<u8>) -> Result<Vec<Booking>> {
        let e = self.engine()?;
        let mut out = Vec::new();
        for item in e.tree(T_BOOKING_IDX).scan_prefix(prefix) {
            let (_, id) = item.db()?;
            // Index and record are written in one transaction, so the record exists; a
            // missing one would be reported by `verify_integrity`, not here.
            if let Some(v) = e.tree(T_BOOKINGS).get(id).db()? {
                out.push(decode("booking", &v)?);
            }
        }
        Ok(out)
    }

    // ----- subscriptions -----

    /// Inserts or replaces a subscription, durably.
    pub fn put_subscription(&self, sub: &Subscription) -> Result<()> {
        let mut tx = self.transaction();
        tx.put_subscription(sub)?;
        tx.commit()
    }

    /// Deletes a subscription, durably (no-op when absent).
    pub fn delete_subscription(&self, id: &SubscriptionId) -> Result<()> {
        let mut tx = self.transaction();
        tx.delete_subscription(id.clone());
        tx.commit()
    }

    /// The subscription with this id.
    pub fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        self.engine()?
            .tree(T_SUBSCRIPTIONS)
            .get(id.as_str().as_bytes())
            .db()?
            .map(|v| self.open_subscription(&v))
            .transpose()
    }

    /// All subscriptions in id order.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>> {
        self.engine()?
            .tree(T_SUBSCRIPTIONS)
            .iter()
            .map(|item| self.open_subscription(&item.db()?.1))
            .collect()
    }

    /// The subscriptions for one room (normally at most one).
    pub fn subscriptions_for_room(&self, room: &RoomMailbox) -> Result<Vec<Subscription>> {
        Ok(self
            .subscriptions()?
            .into_iter()
            .filter(|s| &s.room == room)
            .collect())
    }

    fn open_subscription(&self, bytes: &[u8]) -> Result<Subscription> {
        let s: StoredSubscription = decode("subscription", bytes)?;
        let client_state = self.sealer().open(
            "subscription",
            &aad::client_state(&s.id),
            &s.sealed_client_state,
        )?;
        Ok(Subscription {
            id: s.id,
            room: s.room,
            client_state: SecretBytes::new(client_state.to_vec()),
            certificate_id: s.certificate_id,
            expires_at: s.expires_at,
            state: s.state,
        })
    }

    // ----- secrets and encryption keys -----

    /// Stores a secret encrypted under the master key, durably.
    pub fn set_secret(&self, name: &str, value: &SecretBytes) -> Result<()> {
        let mut tx = self.transaction();
        tx.set_secret(name, value)?;
        tx.commit()
    }

    /// Decrypts a stored secret.
    pub fn secret(&self, name: &str) -> Result<Option<SecretBytes>> {
        let sealed = self.engine()?.tree(T_SECRETS).get(name.as_bytes()).db()?;
        match sealed {
            Some(sealed) => {
                let plain = self.sealer().open("secret", &aad::secret(name), &sealed)?;
                Ok(Some(SecretBytes::new(plain.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// Names of the stored secrets.
    pub fn secret_names(&self) -> Result<Vec<String>> {
        self.engine()?
            .tree(T_SECRETS)
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k.db()?).into_owned()))
            .collect()
    }

    /// Deletes a secret, durably (no-op when absent).
    pub fn delete_secret(&self, name: &str) -> Result<()> {
        let mut tx = self.transaction();
        tx.delete_secret(name);
        tx.commit()
    }

    /// Stores a notification-encryption key encrypted under the master key, durably.
    pub fn put_encryption_key(&self, key: &EncryptionKey) -> Result<()> {
        let mut tx = self.transaction();
        tx.put_encryption_key(key)?;
        tx.commit()
    }

    /// Decrypts one notification-encryption key.
    pub fn encryption_key(&self, id: &str) -> Result<Option<EncryptionKey>> {
        self.engine()?
            .tree(T_KEYS)
            .get(id.as_bytes())
            .db()?
            .map(|sealed| self.open_key(id, &sealed))
            .transpose()
    }

    /// All notification-encryption keys (the ring), in id order.
    pub fn encryption_keys(&self) -> Result<Vec<EncryptionKey>> {
        self.engine()?
            .tree(T_KEYS)
            .iter()
            .map(|item| {
                let (k, sealed) = item.db()?;
                self.open_key(&String::from_utf8_lossy(&k), &sealed)
            })
            .collect()
    }

    /// Deletes a notification-encryption key, durably (no-op when absent).
    pub fn delete_encryption_key(&self, id: &str) -> Result<()> {
        let mut tx = self.transaction();
        tx.delete_encryption_key(id);
        tx.commit()
    }

    fn open_key(&self, id: &str, sealed: &[u8]) -> Result<EncryptionKey> {
        let plain = self
            .sealer()
            .open("encryption key", &aad::encryption_key(id), sealed)?;
        decode("encryption key", &plain)
    }

    // ----- cursors -----

    /// Stores the Graph delta link of a room, durably.
    pub fn set_delta_link(&self, room: &RoomMailbox, link: &str) -> Result<()> {
        let mut tx = self.transaction();
        tx.set_delta_link(room.clone(), link);
        tx.commit()
    }

    /// Forgets the delta link of a room, durably.
    pub fn clear_delta_link(&self, room: &RoomMailbox) -> Result<()> {
        let mut tx = self.transaction();
        tx.clear_delta_link(room.clone());
        tx.commit()
    }

    /// The Graph delta link of a room.
    pub fn delta_link(&self, room: &RoomMailbox) -> Result<Option<String>> {
        Ok(self
            .engine()?
            .tree(T_CURSORS)
            .get(cursor_key(b'd', room.as_str()))
            .db()?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stores a TOPdesk poll watermark, durably.
    pub fn set_watermark(&self, name: &str, at: Timestamp) -> Result<()> {
        let mut tx = self.transaction();
        tx.set_watermark(name, at);
        tx.commit()
    }

    /// A TOPdesk poll watermark.
    pub fn watermark(&self, name: &str) -> Result<Option<Timestamp>> {
        let v = self
            .engine()?
            .tree(T_CURSORS)
            .get(cursor_key(b'w', name))
            .db()?;
        match v {
            Some(v) => {
                let n = i128::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                    Error::Corrupt("watermark record has the wrong length".to_owned())
                })?);
                Timestamp::from_nanosecond(n)
                    .map(Some)
                    .map_err(|_| Error::Corrupt("watermark out of range".to_owned()))
            }
            None => Ok(None),
        }
    }

    // ----- inbox -----

    /// Appends a raw notification body and returns once it is on disk, so the webhook
    /// may answer 202. A body identical to one still in the inbox (same SHA-256) is not
    /// stored again: the earlier entry's sequence number is returned with
    /// `duplicate = true`.
    ///
    /// The body goes to the inbox log (see the crate docs), not to the engine: one
    /// `write` and an `fdatasync` that concurrent appends share, which never waits for a
    /// [`Store::checkpoint`] or an engine flush. The duplicate map lives in memory and is
    /// rebuilt on open.
    pub fn append_inbox(&self, body: &[u8], now: Timestamp) -> Result<InboxAppend> {
        let hash: [u8; 32] = Sha256::digest(body).into();
        let (outcome, ticket) = {
            let mut hashes = self.inbox_hashes();
            if let Some(seq) = hashes.get(&hash) {
                // The first copy may still be waiting for its sync: wait for it too.
                let outcome = InboxAppend {
                    seq: *seq,
                    duplicate: true,
                };
                (outcome, self.inner.inbox.barrier())
            } else {
                let (seq, ticket) = self.inner.inbox.append(hash, now, |seq| {
                    // Sealed: the body carries the subscription's clientState.
                    self.sealer().seal(&aad::inbox(seq), body)
                })?;
                hashes.insert(hash, seq);
                let outcome = InboxAppend {
                    seq,
                    duplicate: false,
                };
                (outcome, ticket)
            }
        };
        self.inner.inbox.wait_durable(ticket)?;
        Ok(outcome)
    }

    /// Marks an inbox entry processed, durably. Usually done inside the transaction
    /// that saves the outcome ([`Transaction::mark_inbox_done`]).
    pub fn mark_inbox_done(&self, seq: InboxSeq, at: Timestamp) -> Result<()> {
        let mut tx = self.transaction();
        tx.mark_inbox_done(seq, at);
        tx.commit()
    }

    /// Entries not yet marked done, in arrival order: what to replay on start-up. Costs
    /// O(pending entries), however many done ones the inbox still keeps.
    pub fn pending_inbox(&self) -> Result<Vec<InboxEntry>> {
        self.inner
            .inbox
            .read_pending()?
            .into_iter()
            .map(|e| self.unseal_inbox(e))
            .collect()
    }

    /// Number of entries not yet marked done (cheap: no reading).
    pub fn pending_inbox_len(&self) -> usize {
        self.inner.inbox.pending_len()
    }

    /// One inbox entry: with its body while pending, without once done.
    pub fn inbox_entry(&self, seq: InboxSeq) -> Result<Option<InboxEntry>> {
        // The log first: an entry leaves it only after its done record is in the tree.
        if let Some(e) = self.inner.inbox.read(seq)? {
            return self.unseal_inbox(e).map(Some);
        }
        let bytes = self.engine()?.tree(T_INBOX).get(seq.0.to_be_bytes()).db()?;
        bytes.map(|v| decode("inbox", &v)).transpose()
    }

    /// Number of inbox entries (pending and done).
    pub fn inbox_len(&self) -> usize {
        self.inner.inbox.pending_len() + self.engine().map_or(0, |e| e.tree(T_INBOX).len())
    }

    /// Deletes entries that were marked done before `before` (and with them their
    /// duplicate-detection hashes); returns how many. Durable.
    ///
    /// An entry's done record outlives its body in the inbox log: it goes only once the
    /// log segment that held the body is deleted (segments go when all their entries
    /// are done; an idle active segment is retired here), so a done entry can never
    /// come back as pending after a restart.
    pub fn prune_inbox(&self, before: Timestamp) -> Result<usize> {
        let floor = self.inner.inbox.retire_idle()?;
        let mut victims = Vec::new();
        for item in self.engine()?.tree(T_INBOX).iter() {
            let (k, v) = item.db()?;
            let e: InboxEntry = decode("inbox", &v)?;
            if e.seq.0 < floor && e.done_at.is_some_and(|d| d < before) {
                victims.push((k, e.hash));
            }
        }
        for chunk in victims.chunks(CHUNK) {
            let ops: Vec<Op> = chunk
                .iter()
                .map(|(k, _)| Op::Delete {
                    tree: T_INBOX,
                    key: k.to_vec(),
                })
                .collect();
            self.apply(&ops)?;
            let mut hashes = self.inbox_hashes();
            for (_, h) in chunk {
                hashes.remove(h);
            }
        }
        self.durable()?;
        Ok(victims.len())
    }

    /// Why the inbox refuses appends, if it does: after a write that could not be cut
    /// back or a failed `fdatasync` (whose data the kernel may have dropped), nothing
    /// more is acknowledged until the store is reopened and reads back what is on disk.
    pub fn inbox_failure(&self) -> Option<String> {
        self.inner.inbox.failure()
    }

    /// Size of the inbox log's files and their number (for tests and metrics).
    pub fn inbox_log_size(&self) -> (u64, usize) {
        (
            self.inner.inbox.size_on_disk(),
            self.inner.inbox.segment_count(),
        )
    }

    // ----- outbox -----

    /// Enqueues one effect, durably. Usually done inside the transaction that saves the
    /// booking ([`Transaction::enqueue`]).
    pub fn enqueue(&self, effect: NewEffect, now: Timestamp) -> Result<OutboxId> {
        let mut tx = self.transaction();
        let id = tx.enqueue(effect, now)?;
        tx.commit()?;
        Ok(id)
    }

    /// Pending entries due at `now` (next attempt ≤ now), earliest first, at most `limit`.
    pub fn due_effects(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>> {
        let end = time_id_key(now, u64::MAX);
        let e = self.engine()?;
        let mut out = Vec::new();
        for item in e.tree(T_OUTBOX_DUE).range(..=end.as_slice()).keys() {
            if out.len() >= limit {
                break;
            }
            let key = item.db()?;
            let id = key
                .get(8..)
                .and_then(u64_from_key)
                .ok_or_else(|| Error::Corrupt("malformed outbox schedule key".to_owned()))?;
            if let Some(v) = e.tree(T_OUTBOX).get(id.to_be_bytes()).db()? {
                out.push(decode("outbox", &v)?);
            }
        }
        Ok(out)
    }

    /// When the earliest pending entry becomes due (for the executor's timer).
    pub fn next_due_at(&self) -> Result<Option<Timestamp>> {
        let first = self.engine()?.tree(T_OUTBOX_DUE).first().db()?;
        match first {
            Some((k, _)) => {
                let id = k
                    .get(8..)
                    .and_then(u64_from_key)
                    .ok_or_else(|| Error::Corrupt("malformed outbox schedule key".to_owned()))?;
                Ok(self.effect(OutboxId(id))?.map(|e| e.next_attempt_at))
            }
            None => Ok(None),
        }
    }

    /// One outbox entry.
    pub fn effect(&self, id: OutboxId) -> Result<Option<OutboxEntry>> {
        self.engine()?
            .tree(T_OUTBOX)
            .get(id.0.to_be_bytes())
            .db()?
            .map(|v| decode("outbox", &v))
            .transpose()
    }

    /// All outbox entries in id (enqueue) order.
    pub fn effects(&self) -> Result<Vec<OutboxEntry>> {
        self.engine()?
            .tree(T_OUTBOX)
            .iter()
            .map(|item| decode("outbox", &item.db()?.1))
            .collect()
    }

    /// Outbox entries of one booking, in enqueue order.
    pub fn effects_for_booking(&self, id: &MatchId) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .effects()?
            .into_iter()
            .filter(|e| e.booking.as_ref() == Some(id))
            .collect())
    }

    /// Parked entries, in enqueue order.
    pub fn parked_effects(&self) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .effects()?
            .into_iter()
            .filter(|e| e.state == OutboxState::Parked)
            .collect())
    }

    /// Outbox depth by state.
    pub fn outbox_depth(&self) -> Result<OutboxDepth> {
        let e = self.engine()?;
        let total = e.tree(T_OUTBOX).len();
        let pending = e.tree(T_OUTBOX_DUE).len();
        Ok(OutboxDepth {
            pending,
            parked: total.saturating_sub(pending),
        })
    }

    /// Removes an executed effect, durably (no-op when absent).
    pub fn complete_effect(&self, id: OutboxId) -> Result<()> {
        let mut tx = self.transaction();
        tx.complete_effect(id);
        tx.commit()
    }

    /// Records a failed attempt, durably; returns the entry's new state (parked once
    /// `attempts >= max_attempts`). See [`Transaction::effect_failed`].
    pub fn effect_failed(
        &self,
        id: OutboxId,
        error: &str,
        next_attempt_at: Timestamp,
        max_attempts: u32,
    ) -> Result<OutboxState> {
        let mut tx = self.transaction();
        tx.effect_failed(id, error, next_attempt_at, max_attempts);
        tx.commit()?;
        self.effect(id)?.map(|e| e.state).ok_or(Error::NotFound {
            kind: "outbox entry",
            id: id.to_string(),
        })
    }

    /// Admin retry of one entry, durably. See [`Transaction::retry_effect`].
    pub fn retry_effect(&self, id: OutboxId, now: Timestamp) -> Result<()> {
        let mut tx = self.transaction();
        tx.retry_effect(id, now);
        tx.commit()
    }

    /// Admin retry of every parked entry of a booking, durably; returns how many.
    pub fn retry_booking(&self, id: &MatchId, now: Timestamp) -> Result<usize> {
        let parked: Vec<_> = self
            .effects_for_booking(id)?
            .into_iter()
            .filter(|e| e.state == OutboxState::Parked)
            .collect();
        let mut tx = self.transaction();
        for e in &parked {
            tx.retry_effect(e.id, now);
        }
        tx.commit()?;
        Ok(parked.len())
    }

    // ----- audit -----

    /// Appends one audit record, durably. Usually done inside the transaction that
    /// records the outcome ([`Transaction::audit`]).
    pub fn append_audit(&self, entry: AuditEntry) -> Result<AuditId> {
        let mut tx = self.transaction();
        let id = tx.audit(entry)?;
        tx.commit()?;
        Ok(id)
    }

    /// Audit records of one correlation id, in append order.
    pub fn audit_by_correlation(&self, id: &CorrelationId) -> Result<Vec<AuditRecord>> {
        self.audit_lookup(b'c', id.as_str())
    }

    /// Audit records of one booking, in append order.
    pub fn audit_by_booking(&self, id: &MatchId) -> Result<Vec<AuditRecord>> {
        self.audit_lookup(b'b', id.as_str())
    }

    /// Audit records with `at >= since`, oldest first, at most `limit`.
    pub fn audit_since(&self, since: Timestamp, limit: usize) -> Result<Vec<AuditRecord>> {
        self.engine()?
            .tree(T_AUDIT)
            .range(time_id_key(since, 0).as_slice()..)
            .values()
            .take(limit)
            .map(|v| decode("audit", &v.db()?))
            .collect()
    }

    /// Number of audit records.
    pub fn audit_len(&self) -> usize {
        self.engine().map_or(0, |e| e.tree(T_AUDIT).len())
    }

    /// Retention: deletes audit records with `at < before` together with their index
    /// entries; returns how many. Durable.
    pub fn prune_audit(&self, before: Timestamp) -> Result<usize> {
        let end = time_id_key(before, 0);
        let mut removed = 0;
        loop {
            let mut ops = Vec::new();
            for item in self
                .engine()?
                .tree(T_AUDIT)
                .range(..end.as_slice())
                .take(CHUNK)
            {
                let (k, v) = item.db()?;
                let r: AuditRecord = decode("audit", &v)?;
                ops.push(Op::Delete {
                    tree: T_AUDIT_IDX,
                    key: audit_idx_key(b'c', r.entry.correlation_id.as_str(), r.id),
                });
                if let Some(b) = &r.entry.booking {
                    ops.push(Op::Delete {
                        tree: T_AUDIT_IDX,
                        key: audit_idx_key(b'b', b.as_str(), r.id),
                    });
                }
                ops.push(Op::Delete {
                    tree: T_AUDIT,
                    key: k.to_vec(),
                });
                removed += 1;
            }
            if ops.is_empty() {
                break;
            }
            self.apply(&ops)?;
        }
        self.durable()?;
        Ok(removed)
    }

    fn audit_lookup(&self, tag: u8, value: &str) -> Result<Vec<AuditRecord>> {
        let mut prefix = vec![tag];
        push_len_prefixed(&mut prefix, value.as_bytes());
        let e = self.engine()?;
        let mut out = Vec::new();
        for item in e.tree(T_AUDIT_IDX).scan_prefix(prefix) {
            let (_, key) = item.db()?;
            if let Some(v) = e.tree(T_AUDIT).get(key).db()? {
                out.push(decode("audit", &v)?);
            }
        }
        Ok(out)
    }

    // ----- integrity -----

    /// Checks every cross-reference: each booking index entry points at a booking whose
    /// own index entries include it and vice versa; inbox pending marks and hashes,
    /// outbox schedule and audit index entries point at matching records. Returns
    /// [`Error::Corrupt`] describing the first problem. Reads the whole store.
    pub fn verify_integrity(&self) -> Result<()> {
        let corrupt = |m: String| Err(Error::Corrupt(m));
        // A copy, taken before the engine guard: `append_inbox` takes the map's lock
        // first and the guard second, so holding both here the other way round could
        // deadlock against it and a waiting checkpoint.
        let hashes = self.inbox_hashes().clone();
        let e = self.engine()?;
        let mut expected = HashSet::new();
        for item in e.tree(T_BOOKINGS).iter() {
            let (k, v) = item.db()?;
            let b: Booking = decode("booking", &v)?;
            if b.match_id.as_str().as_bytes() != k.as_ref() {
                return corrupt(format!("booking stored under the wrong key {}", b.match_id));
            }
            for entry in index_entries(&b, CURRENT_FORMAT) {
                match e.tree(T_BOOKING_IDX).get(&entry.key).db()? {
                    Some(holder) if holder == k => {}
                    _ => return corrupt(format!("index entry missing for booking {}", b.match_id)),
                }
                expected.insert(entry.key);
            }
        }
        for item in e.tree(T_BOOKING_IDX).iter() {
            let (k, holder) = item.db()?;
            if !expected.contains(k.as_ref()) {
                return corrupt(format!(
                    "stale index entry pointing at {}",
                    String::from_utf8_lossy(&holder)
                ));
            }
        }
        {
            for item in e.tree(T_INBOX).iter() {
                let (k, v) = item.db()?;
                let entry: InboxEntry = decode("inbox", &v)?;
                if k.as_ref() != entry.seq.0.to_be_bytes() {
                    return corrupt(format!(
                        "inbox entry {} stored under the wrong key",
                        entry.seq
                    ));
                }
                if entry.done_at.is_none() || !entry.body.is_empty() {
                    return corrupt(format!(
                        "inbox entry {} in the tree is not a done record",
                        entry.seq
                    ));
                }
                if hashes.get(&entry.hash) != Some(&entry.seq) {
                    return corrupt(format!("inbox entry {} has no duplicate hash", entry.seq));
                }
            }
            let pending = self.inner.inbox.pending_hashes();
            for (seq, hash) in &pending {
                if hashes.get(hash) != Some(seq) {
                    return corrupt(format!("pending inbox entry {seq} has no duplicate hash"));
                }
                if e.tree(T_INBOX).contains_key(seq.0.to_be_bytes()).db()? {
                    return corrupt(format!("pending inbox entry {seq} also has a done record"));
                }
            }
            if hashes.len() != e.tree(T_INBOX).len() + pending.len() {
                return corrupt("inbox hash count differs from entry count".to_owned());
            }
        }
        let mut pending = 0;
        for item in e.tree(T_OUTBOX).iter() {
            let (_, v) = item.db()?;
            let entry: OutboxEntry = decode("outbox", &v)?;
            let scheduled = e
                .tree(T_OUTBOX_DUE)
                .contains_key(time_id_key(entry.next_attempt_at, entry.id.0))
                .db()?;
            if scheduled != (entry.state == OutboxState::Pending) {
                return corrupt(format!(
                    "outbox entry {} has an inconsistent schedule",
                    entry.id
                ));
            }
            pending += usize::from(scheduled);
        }
        if pending != e.tree(T_OUTBOX_DUE).len() {
            return corrupt("outbox schedule has entries without a record".to_owned());
        }
        for item in e.tree(T_AUDIT_IDX).iter() {
            let (_, key) = item.db()?;
            if !e.tree(T_AUDIT).contains_key(key).db()? {
                return corrupt("audit index entry without a record".to_owned());
            }
        }
        for key in e.tree(T_ENGINE_STATE).iter().keys() {
            if !e.tree(T_BOOKINGS).contains_key(key.db()?).db()? {
                return corrupt("engine state without a booking".to_owned());
            }
        }
        Ok(())
    }

    // ----- internals -----

    fn inbox_hashes(&self) -> MutexGuard<'_, HashMap<[u8; 32], InboxSeq>> {
        // The map is only ever updated after the matching tree write succeeded; a panic
        // elsewhere cannot leave it half-updated, so a poisoned lock is safe to reuse.
        self.inner
            .inbox_hashes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn load_inbox_hashes(&self) -> Result<()> {
        let mut hashes = HashMap::new();
        for item in self.engine()?.tree(T_INBOX).iter().values() {
            let e: InboxEntry = decode("inbox", &item.db()?)?;
            hashes.insert(e.hash, e.seq);
        }
        for (seq, hash) in self.inner.inbox.pending_hashes() {
            hashes.insert(hash, seq);
        }
        *self.inbox_hashes() = hashes;
        Ok(())
    }

    /// A read guard on the engine (see [`Inner::engine`]: never two in one thread).
    fn engine(&self) -> Result<EngineRef<'_>> {
        let guard = self.inner.engine.read().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(Error::Closed);
        }
        Ok(EngineRef(guard))
    }

    /// A pending inbox entry's hash and arrival time (for its done record).
    pub(crate) fn inbox_pending_entry(&self, seq: InboxSeq) -> Option<crate::inbox_log::Pending> {
        self.inner.inbox.pending(seq)
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    pub(crate) fn generate_id(&self) -> Result<u64> {
        self.engine()?.db.generate_id().db()
    }

    pub(crate) fn apply(&self, ops: &[Op]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        {
            let e = self.engine()?;
            let trees: Vec<&Tree> = e.trees.iter().collect();
            apply_ops(&trees, ops)?;
        }
        self.inner
            .writes_since_snapshot
            .fetch_add(1, Ordering::Relaxed);
        let done: Vec<InboxSeq> = ops
            .iter()
            .filter_map(|op| match op {
                Op::InboxDone(done) => Some(done.seq),
                _ => None,
            })
            .collect();
        if !done.is_empty() {
            self.inner.inbox.applied_done(&done);
        }
        Ok(())
    }

    /// Returns once everything applied before the call is on disk (group commit).
    pub(crate) fn durable(&self) -> Result<()> {
        let ticket = self.inner.group.applied();
        self.inner.group.wait_durable(ticket, || {
            let engine = self.engine().map_err(|e| e.to_string())?;
            self.flush_engine(&engine).map_err(|e| match e {
                // The OS error text ("No space left on device") is what an operator
                // needs; it never contains data.
                Error::Io(io) => io.to_string(),
                other => other.to_string(),
            })
        })
    }

    /// Flushes the engine; then the inbox log may delete the segments whose entries'
    /// done records that flush carried.
    fn flush_engine(&self, engine: &Engine) -> Result<()> {
        let marks = self.inner.inbox.take_unflushed();
        if let Err(e) = engine.db.flush() {
            self.inner.inbox.restore_unflushed(marks);
            return Err(from_sled(e));
        }
        self.inner.inbox.flushed(&marks);
        // The done records are safe; a segment file that cannot be deleted now stays
        // known and is tried again next time, and without a spare segment the next
        // append starts one itself: neither is this flush's failure.
        let _ = self.inner.inbox.maintain();
        Ok(())
    }
}

/// The sled database and its trees, opened together and dropped together.
pub(crate) struct Engine {
    db: sled::Db,
    trees: Vec<Tree>,
}

impl Engine {
    fn open(path: &Path, opts: &OpenOptions) -> Result<Self> {
        let open_err = |e: sled::Error| match e {
            sled::Error::Io(source) => Error::Open {
                path: path.to_owned(),
                source,
            },
            other => from_sled(other),
        };
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(opts.cache_capacity)
            // Part of the on-disk format: sled refuses to reopen a store with a different
            // setting. zstd-compressed pages cut the size of 100k bookings about tenfold
            // (≈ 940 MB → ≈ 80 MB) at the cost of write throughput (see the README).
            .use_compression(true);
        let db = open_retrying_lock(&config, opts.lock_timeout).map_err(|e| match e {
            LockOrOther::Locked => Error::Locked {
                path: path.to_owned(),
            },
            LockOrOther::Other(e) => open_err(e),
        })?;
        let trees = TREE_NAMES
            .iter()
            .map(|n| db.open_tree(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(open_err)?;
        Ok(Self { db, trees })
    }

    fn tree(&self, i: usize) -> &Tree {
        &self.trees[i]
    }
}

/// A read guard on the engine; see [`Inner::engine`] for the one-guard-per-thread rule.
pub(crate) struct EngineRef<'a>(RwLockReadGuard<'a, Option<Engine>>);

impl std::ops::Deref for EngineRef<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        match &*self.0 {
            Some(e) => e,
            // `Store::engine` hands out an `EngineRef` only after checking `Some`, and
            // the slot cannot change while the read guard is held.
            None => unreachable!("engine guard without an engine"),
        }
    }
}

/// Checks the format version and the master key at open, migrating older formats. Runs
/// before the store is shared, on the engine directly.
fn check_format_and_key(e: &Engine, sealer: &Sealer) -> Result<()> {
    let meta = e.tree(T_META);
    let found = match meta.get(FORMAT_KEY).db()? {
        Some(v) => Some(u32::from_be_bytes(v.as_ref().try_into().map_err(|_| {
            Error::Corrupt("format version record has the wrong length".to_owned())
        })?)),
        None => None,
    };
    match found {
        Some(v) if v > CURRENT_FORMAT => {
            return Err(Error::UnsupportedFormat {
                found: v,
                supported: CURRENT_FORMAT,
            });
        }
        Some(0) => return Err(Error::Corrupt("format version 0 is invalid".to_owned())),
        _ => {}
    }
    // Check the key before migrating so a wrong key never rewrites anything.
    match meta.get(KEY_CHECK_KEY).db()? {
        Some(sealed) => {
            sealer
                .open("key check", aad::KEY_CHECK, &sealed)
                .map_err(|_| Error::WrongMasterKey)?;
        }
        None => {
            let sealed = sealer.seal(aad::KEY_CHECK, KEY_CHECK_PLAINTEXT)?;
            meta.insert(KEY_CHECK_KEY, sealed).db()?;
        }
    }
    match found {
        None => {
            if e.tree(T_BOOKINGS).first().db()?.is_some() {
                return Err(Error::Corrupt(
                    "bookings exist but the format version is missing".to_owned(),
                ));
            }
            meta.insert(FORMAT_KEY, &CURRENT_FORMAT.to_be_bytes())
                .db()?;
        }
        Some(1) => {
            migrate_1_to_2(e)?;
            migrate_2_to_3(e, sealer)?;
            migrate_3_to_4(e)?;
            migrate_4_to_5(e)?;
        }
        Some(2) => {
            migrate_2_to_3(e, sealer)?;
            migrate_3_to_4(e)?;
            migrate_4_to_5(e)?;
        }
        Some(3) => {
            migrate_3_to_4(e)?;
            migrate_4_to_5(e)?;
        }
        Some(4) => migrate_4_to_5(e)?,
        Some(_) => {}
    }
    e.db.flush().db()?;
    Ok(())
}

/// Format 1 → 2: adds the correlation-id index entry of every booking. Idempotent, so a
/// crash midway simply repeats it on the next open; the version is bumped last.
fn migrate_1_to_2(e: &Engine) -> Result<()> {
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for item in e.tree(T_BOOKINGS).iter() {
        let (k, v) = item.db()?;
        let b: Booking = decode("booking", &v)?;
        let mut key = multi_prefix(kind::CORRELATION, b.correlation_id.as_str());
        push_len_prefixed(&mut key, &k);
        batch.insert(key, k);
        n += 1;
        if n % CHUNK == 0 {
            e.tree(T_BOOKING_IDX)
                .apply_batch(std::mem::take(&mut batch))
                .db()?;
        }
    }
    e.tree(T_BOOKING_IDX).apply_batch(batch).db()?;
    e.db.flush().db()?;
    e.tree(T_META)
        .insert(FORMAT_KEY, &2u32.to_be_bytes())
        .db()?;
    Ok(())
}

/// Format 2 → 3: inbox bodies are sealed under the master key (they carry Graph's
/// `clientState`). One transaction over the inbox and the version record, so a crash
/// leaves either format 2 untouched or format 3 complete — never a body sealed twice.
fn migrate_2_to_3(e: &Engine, sealer: &Sealer) -> Result<()> {
    let mut sealed = Vec::new();
    for item in e.tree(T_INBOX).iter() {
        let (k, v) = item.db()?;
        let mut entry: InboxEntry = decode("inbox", &v)?;
        entry.body = sealer.seal(&aad::inbox(entry.seq), &entry.body)?;
        sealed.push((k, encode("inbox", &entry)?));
    }
    rewrite_inbox_with_version(e, &sealed, &[], 3)
}

/// Puts `puts` into and removes `removes` from the inbox tree and records format
/// `version`, in one transaction, then flushes: a migration step is either not done or
/// done completely.
fn rewrite_inbox_with_version(
    e: &Engine,
    puts: &[(sled::IVec, Vec<u8>)],
    removes: &[sled::IVec],
    version: u32,
) -> Result<()> {
    use sled::Transactional as _;
    (e.tree(T_INBOX), e.tree(T_META))
        .transaction(|(inbox, meta)| {
            for (k, v) in puts {
                inbox.insert(k, v.as_slice())?;
            }
            for k in removes {
                inbox.remove(k)?;
            }
            meta.insert(FORMAT_KEY, &version.to_be_bytes())?;
            Ok::<_, sled::transaction::ConflictableTransactionError<Error>>(())
        })
        .map_err(|e| match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => from_sled(e),
        })?;
    e.db.flush().db()?;
    Ok(())
}

/// Format 3 → 4: adds the `engine_state` tree (opened, empty, with the others).
/// Format-3 bookings simply have no engine state; orb rebuilds it from the record.
/// Anything already in the tree (a crash between a newer write and the version bump
/// cannot produce any: only format 4 writes it) is left alone.
fn migrate_3_to_4(e: &Engine) -> Result<()> {
    e.db.flush().db()?;
    e.tree(T_META)
        .insert(FORMAT_KEY, &4u32.to_be_bytes())
        .db()?;
    Ok(())
}

/// Format 4 → 5: a done inbox entry keeps no body (only its hash, for duplicate
/// detection until pruned). One transaction over the inbox and the version record, like
/// 2 → 3.
fn migrate_4_to_5(e: &Engine) -> Result<()> {
    let mut stripped = Vec::new();
    for item in e.tree(T_INBOX).iter() {
        let (k, v) = item.db()?;
        let mut entry: InboxEntry = decode("inbox", &v)?;
        if entry.done_at.is_some() && !entry.body.is_empty() {
            entry.body = Vec::new();
            stripped.push((k, encode("inbox", &entry)?));
        }
    }
    rewrite_inbox_with_version(e, &stripped, &[], 5)
}

/// Opens the inbox log beside the engine's files. An entry of the log is done iff the
/// tree holds a done record for it; sequence numbers continue after every one the tree
/// knows.
fn open_inbox_log(e: &Engine, path: &Path, opts: &OpenOptions) -> Result<InboxLog> {
    let inbox = e.tree(T_INBOX);
    let next = match inbox.last().db()? {
        Some((k, _)) => u64_from_key(&k)
            .ok_or_else(|| Error::Corrupt("inbox key has the wrong length".to_owned()))?
            .saturating_add(1),
        None => 1,
    };
    crate::inbox_log::InboxLog::open(path, opts.inbox_segment_bytes, next, |seq| {
        match inbox.get(seq.to_be_bytes()).db()? {
            Some(v) => Ok(decode::<InboxEntry>("inbox", &v)?.done_at.is_some()),
            None => Ok(false),
        }
    })
}

/// Format 5 → 6: pending inbox entries move from the tree to the inbox log (their bodies
/// are sealed for the same slot, so the sealed bytes are copied as they are); the tree
/// keeps only done records. Crash-safe: the log copy is durable before the tree entries
/// are deleted together with the version bump, and a repeated import of an entry the
/// log already holds is skipped.
fn migrate_5_to_6(e: &Engine, log: &InboxLog) -> Result<()> {
    let version = match e.tree(T_META).get(FORMAT_KEY).db()? {
        Some(v) => u32::from_be_bytes(v.as_ref().try_into().map_err(|_| {
            Error::Corrupt("format version record has the wrong length".to_owned())
        })?),
        None => return Err(Error::Corrupt("format version missing".to_owned())),
    };
    if version != 5 {
        return Ok(());
    }
    let mut moved = Vec::new();
    let mut keys = Vec::new();
    for item in e.tree(T_INBOX).iter() {
        let (k, v) = item.db()?;
        let entry: InboxEntry = decode("inbox", &v)?;
        if entry.done_at.is_none() {
            moved.push((entry.seq, entry.received_at, entry.hash, entry.body));
            keys.push(k);
        }
    }
    log.import(&moved)?;
    rewrite_inbox_with_version(e, &[], &keys, 6)
}

/// Values of one tree in key order, read [`PAGE`] at a time, each page under its own
/// read guard (so no guard is held while the caller works on an item).
struct Paged<'s> {
    store: &'s Store,
    tree: usize,
    after: Option<sled::IVec>,
    batch: std::collections::VecDeque<Result<sled::IVec>>,
    done: bool,
}

/// Records read per guard by [`Paged`].
const PAGE: usize = 256;

impl Iterator for Paged<'_> {
    type Item = Result<sled::IVec>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.batch.is_empty() && !self.done {
            self.fill();
        }
        self.batch.pop_front()
    }
}

impl Paged<'_> {
    fn fill(&mut self) {
        let e = match self.store.engine() {
            Ok(e) => e,
            Err(err) => {
                self.done = true;
                self.batch.push_back(Err(err));
                return;
            }
        };
        let tree = e.tree(self.tree);
        let items = match self.after.take() {
            Some(k) => tree.range((
                std::ops::Bound::Excluded(k),
                std::ops::Bound::<sled::IVec>::Unbounded,
            )),
            None => tree.iter(),
        };
        for item in items {
            match item.db() {
                Ok((k, v)) => {
                    self.after = Some(k);
                    self.batch.push_back(Ok(v));
                    if self.batch.len() == PAGE {
                        return;
                    }
                }
                Err(err) => {
                    self.batch.push_back(Err(err));
                    break;
                }
            }
        }
        self.done = true;
    }
}

enum LockOrOther {
    Locked,
    Other(sled::Error),
}

fn open_retrying_lock(
    config: &sled::Config,
    timeout: std::time::Duration,
) -> std::result::Result<sled::Db, LockOrOther> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            // sled reports a held lock only as a custom I/O error with this text.
            Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                if std::time::Instant::now() >= deadline {
                    return Err(LockOrOther::Locked);
                }
                // Back off: this waits for another party to release the lock, there is no
                // notification to wait on instead.
                std::thread::sleep(pause);
                // Capped low: a checkpoint's reopen may wait here for the engine it just closed.
                pause = (pause * 2).min(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(LockOrOther::Other(e)),
        }
    }
}

/// Key of a cursor: `tag ‖ name` (`d` = delta link per room, `w` = watermark).
pub(crate) fn cursor_key(tag: u8, name: &str) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(name.as_bytes());
    k
}

/// Key of an audit index entry: `tag ‖ lp(value) ‖ id` (`c` = correlation, `b` =
/// booking); its value is the audit record's key.
pub(crate) fn audit_idx_key(tag: u8, value: &str, id: AuditId) -> Vec<u8> {
    let mut k = vec![tag];
    push_len_prefixed(&mut k, value.as_bytes());
    k.extend_from_slice(&id.0.to_be_bytes());
    k
}
