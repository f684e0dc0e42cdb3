//! orb's durable state: every booking orb manages (the ORB fields plus the ids that
//! correlate Exchange and TOPdesk), the Graph subscriptions, the encrypted secrets and
//! notification-encryption keys, the delta/poll cursors, the inbox of raw notifications,
//! the outbox of planned effects, the audit log, and beside each booking the sync
//! engine's working state as opaque bytes. It offers atomic multi-key
//! transactions and a durable commit with group commit, on an embedded
//! [sled](https://docs.rs/sled/0.34) database that it owns and hides.
//!
//! It never exposes a sled type, never decides anything about a booking (that is
//! orb-reconcile's job), performs no network I/O, spawns no async task and reads no
//! clock: callers pass `now`. It never writes a secret, private key or client state to
//! disk unencrypted and never puts one in an error message.
//!
//! # On-disk format (version 6)
//!
//! One sled database directory holds these trees (names are part of the format), and its
//! subdirectory `inbox/` the inbox log (see below):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `format_version` / `key_check` | `u32` BE / sealed constant |
//! | `bookings` | match id (UTF-8) | postcard [`Booking`] |
//! | `booking_idx` | unique: `kind ‖ lp(value)`; multi: `kind ‖ parts ‖ lp(match id)` | match id |
//! | `subscriptions` | subscription id | postcard, `clientState` sealed |
//! | `secrets` | name | sealed bytes |
//! | `encryption_keys` | certificate id | sealed postcard [`EncryptionKey`] |
//! | `cursors` | `d ‖ room` / `w ‖ name` | delta link UTF-8 / `i128` BE nanoseconds |
//! | `inbox` | seq `u64` BE | postcard [`InboxEntry`] of a *done* entry: hash and times, empty `body` |
//! | `outbox` | id `u64` BE | postcard [`OutboxEntry`] |
//! | `outbox_due` | `time ‖ id` | empty (present while pending) |
//! | `audit` | `time ‖ id` | postcard [`AuditRecord`] |
//! | `audit_idx` | `c ‖ lp(correlation id) ‖ id` / `b ‖ lp(match id) ‖ id` | audit key |
//! | `engine_state` | match id (UTF-8) | sealed opaque bytes (the engine's view of the booking) |
//!
//! `lp(x)` is `x` with a `u32` BE length prefix; `time` is a sortable `u64` BE of
//! microseconds since the epoch (sign bit flipped). Booking index kinds: 1 room event id,
//! 2 TOPdesk reservation id, 3 TOPdesk reservation number (these three unique), 10
//! organizer event id, 11 `iCalUId` (+ occurrence start), 12 room, 13 series master,
//! 14 correlation id (added in format 2). Records are
//! [postcard](https://docs.rs/postcard/1) 1.x (a stable, documented wire format) of
//! the public structs, field by field in declaration order, timestamps as `i128`
//! nanoseconds; so **any change to a stored struct needs a new format version and a
//! migration** in `Store::open`. Sealed values are
//! `0x01 ‖ iv ‖ AES-256-CBC(plaintext) ‖ HMAC-SHA256` (see [`MasterKey`]).
//!
//! An `engine_state` entry is written only together with its booking record
//! ([`Transaction::save_booking_with_engine_state`]) and removed whenever the record is
//! saved without one or deleted, so it always belongs to the current record. Its bytes
//! are the caller's (orb-service stores orb-reconcile's booking); the store only seals
//! them, because they may hold subjects and attendees.
//!
//! Every write is one sled transaction over all trees ([`Transaction`]), so a record
//! and its index entries, outbox entries, audit records and inbox done marks are never
//! seen apart. [`Transaction::commit`] returns after `fsync`; concurrent commits share
//! one flush.
//!
//! The inbox append is not an engine write: the body of a pending entry lives in the
//! inbox log, append-only segment files of CRC-checked records
//! (`len u32 LE | crc32 u32 LE | seq u64 BE | received_at i128 BE | sha256 | sealed body`)
//! named after their first sequence number. [`Store::append_inbox`] writes one record
//! and shares an `fdatasync` with concurrent appends, so the webhook's acknowledgement
//! never waits for the engine's flush or a [`Store::checkpoint`]. An entry is pending
//! while the `inbox` tree has no done record for it; marking it done writes that record
//! in the caller's transaction. A segment is deleted once all its entries are done
//! durably, and a done record is pruned only after its segment is gone. A torn last
//! record (a crash mid-append, never acknowledged) is cut off on open. The
//! duplicate-detection map is rebuilt in memory on open from both.
//!
//! sled itself stores the trees as zstd-compressed pages (`use_compression(true)`); that
//! setting is part of the format too, since sled refuses to reopen a store with a
//! different one. sled writes its recovery snapshot only when it opens a store, so an
//! open replays the log written since the previous open (seconds after 100k bookings).
//! [`Store::checkpoint`] closes and reopens the engine behind an internal lock (every
//! operation holds a read guard, the checkpoint the write guard), so a running service
//! rewrites the snapshot without giving up its handles; [`Store::checkpoint_due`] says
//! when enough writes have accumulated ([`OpenOptions::checkpoint_after_writes`]) and
//! [`Store::checkpoint_overdue`] when a caller waiting for a quiet moment must not wait
//! any longer.
//!
//! Format history: 1 = first format (no correlation-id booking index); 2 = adds that
//! index; 3 = inbox bodies sealed (they carry Graph's `clientState`); 4 = the
//! `engine_state` tree (migration: the tree is created empty, so format-3 bookings have
//! no engine state and their reader falls back to the record); 5 = a done inbox
//! entry keeps no body, only its hash for duplicate detection until it is pruned
//! (migration: the bodies of done entries are dropped in one transaction with the
//! version bump); 6 = current: pending inbox bodies live in the inbox log, the tree keeps
//! only done records (migration: pending entries are copied, still sealed, to the log
//! and made durable, then deleted from the tree in one transaction with the version
//! bump; a crash in between leaves both, and the copy is recognised by its sequence
//! number).
//! Opening a store whose version is newer than [`CURRENT_FORMAT`] fails with
//! [`Error::UnsupportedFormat`] before anything is written.

mod booking;
mod codec;
mod crypto;
mod error;
mod flush;
mod ids;
mod inbox_log;
mod records;
mod store;
mod txn;

pub use booking::{AppointmentType, Booking, Processor};
pub use crypto::MasterKey;
pub use error::{Error, Result};
pub use ids::{
    AuditId, CorrelationId, Fingerprint, GraphEventId, IcalUid, InboxSeq, MatchId, OutboxId,
    RoomMailbox, SubscriptionId, TopdeskReservationId, TopdeskReservationNumber,
};
pub use records::{
    AuditEntry, AuditRecord, EncryptionKey, InboxAppend, InboxEntry, KeyState, NewEffect,
    OutboxEntry, OutboxState, SecretBytes, Subscription, SubscriptionState,
};
pub use store::{CURRENT_FORMAT, OpenOptions, OutboxDepth, Store};
pub use txn::Transaction;

/// The timestamp type of every time in this API (re-exported so callers need no direct
/// jiff dependency).
pub use jiff::Timestamp;
