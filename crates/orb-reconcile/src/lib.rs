//! orb's sync engine. Decides what must change on each side when a room calendar in
//! Exchange or a reservation in TOPdesk changes: it owns the domain types of a booking
//! (ids as newtypes, the agreed [`Content`], the ORB fields), the matching of items on
//! both sides, echo suppression, conflict resolution, deletion safety, retries and
//! parking. Input is an [`Observation`]; output is a [`Plan`] of [`Effect`]s as data plus
//! the booking records to store.
//!
//! It never performs I/O, reads no clock and spawns no task: callers pass `now`, persist
//! the plan's bookings, execute its effects and feed each outcome back as another
//! observation. It never computes recurrences (occurrences come from Exchange's own
//! expansion), never carries bodies, and never touches a room that is not configured.
//!
//! # The contract with the caller
//!
//! 1. Map what a side reported onto an [`Observation`] (room copies, reservations,
//!    removals, full passes of a window, TOPdesk's conflicting status, person lookups,
//!    effect outcomes, ticks, admin actions) and call [`Engine::plan`] with the current
//!    [`State`] and `now`.
//! 2. Persist `plan.bookings` and `plan.persons` and apply them with [`State::apply`]
//!    atomically with recording the effects to run (a durable outbox): a plan is the
//!    unit of change.
//! 3. Execute every [`Effect`]; answer each write with
//!    [`Observation::EffectSucceeded`] or [`Observation::EffectFailed`] quoting its
//!    [`EffectId`] (followed by [`Observation::TopdeskConflicting`] when TOPdesk's
//!    response shows a conflicting status, as after any poll that shows one; every
//!    [`TopdeskItem`] carries the mark in [`TopdeskItem::conflicting`]), a person
//!    lookup with [`Observation::PersonResolved`], and call again
//!    with [`Observation::Tick`] at every [`EffectKind::ScheduleRetry`] instant. A write
//!    whose outcome never comes is issued again, unchanged, on a tick after
//!    [`Config::in_flight_timeout`]; creates carry an [`IdempotencyKey`], so repeating
//!    any effect is safe.
//! 4. Run full passes ([`Observation::ExchangePass`], [`Observation::TopdeskPass`])
//!    after missed notifications and periodically: they repair anything lost, and the
//!    mass-cancel guard holds suspicious removals for an admin.
//!
//! # Concurrent edits and the conflict policy
//!
//! Each booking remembers what each side last showed, so an observation tells which
//! fields *that side* changed. A field changed on one side only flows to the other,
//! whatever the policy — a TOPdesk reschedule or room move of a meeting booked in
//! Outlook updates the organizer's meeting (found by its `iCalUId`), an Outlook change of
//! a reservation booked in TOPdesk updates the reservation. Fields changed on *both*
//! sides before orb carried either over are decided by [`ConflictPolicy`]:
//! `ExchangeWins` (the default) keeps Outlook's value and puts the reservation back,
//! `TopdeskWins` keeps TOPdesk's and updates the organizer's meeting, `LatestWins` keeps
//! the value with the later modification time (Exchange on a tie), in whichever order the
//! two reports reach orb. A cancellation on either side always wins: it is final.
//! Changes orb carries over never count as edits: they come back as echoes.
//!
//! # Moves and relocations
//!
//! A room move keeps the meeting: the old room's copy is *retired*, its echoes are
//! ignored, and it becomes a booking again only if a user changes it after orb let go.
//! An organizer change in TOPdesk (mode `organizer`) *relocates*: orb deletes the event
//! in the old organizer's calendar and creates it in the new one, keeping the match id
//! and the original organizer (in mode `room-only` a room move relocates, from the old
//! room's calendar to the new one's; a requester change there moves nothing in
//! Exchange, which cannot change who organizes a meeting). The old event is retired as
//! superseded the moment the relocation is planned, so every later report of its room
//! copy — removal, cancellation, update — is orb's own echo, whether or not the outcome
//! of orb's cancel call has arrived. A copy of the meeting under a *new* id in that room
//! is not that copy: the organizer invited the room again, and it is a booking again. A
//! cancel that fails transiently may have happened all the same, so the old event stays
//! retired and the relocation completes on retry, even if the organizer changed back
//! meanwhile (the event is then created anew in that calendar).
//!
//! # orb's own new events
//!
//! A room copy of an event orb is creating can arrive before the create's outcome, after
//! a user already edited the event, or after a repeated create whose first call did
//! what the second one failed to report. A copy showing orb's match-id property
//! ([`ExchangeItem::orb_match_id`]) belongs to that booking at once. Otherwise its content
//! proves nothing, so a copy that may be orb's — same room, organized by the calendar orb
//! wrote to — is *held* on the booking until the outcome brings the event's `iCalUId`: the matching copy is linked (a user's edit then flows as usual), any other
//! copy is looked at again as any room copy. It is never made a booking of its own
//! meanwhile, which would duplicate the reservation. A create whose outcome never came is
//! repeated exactly as first sent (its idempotency key finds the event the first call
//! made); later changes follow as updates. A room move that failed transiently may have
//! happened too: its old copy stays retired and the move is written again.
//!
//! # Conflicts in TOPdesk
//!
//! A refused write or a reservation TOPdesk marks conflicting makes the booking
//! [`BookingStatus::Conflict`]: the room declines the meeting in Exchange and the
//! organizer is mailed (if mail is enabled). It is tried again when one side changes the
//! booking, when another booking leaves an overlapping time in the same room (a refused
//! write), when TOPdesk lists the reservation without its mark ([`TopdeskItem::conflicting`]),
//! or on an admin retry. With Exchange's default settings the declined meeting leaves the
//! room's calendar; for a meeting orb made (a TOPdesk booking) that removal, and a pass
//! no longer listing the copy, is orb's own decline, never a cancellation of the user's
//! reservation.
//!
//! With the `serde` feature, bookings, effects and observations serialize (for the store's
//! records and the outbox).
//!
//! ```
//! use orb_reconcile::{Config, Engine, Observation, Rooms, State};
//!
//! let engine = Engine::new(Config::new(Rooms::default()));
//! let state = State::new();
//! let plan = engine.plan(&state, &Observation::Tick, jiff::Timestamp::UNIX_EPOCH);
//! assert!(plan.is_empty());
//! ```

mod backoff;
mod config;
mod effect;
mod engine;
mod ids;
mod model;
mod observation;
mod render;
mod state;

pub use backoff::{Jitter, RetryPolicy};
pub use config::{Config, ConflictPolicy, DelegateRule, MassCancelGuard, Rooms, SyncMode};
pub use effect::{
    Effect, EffectId, EffectKind, EventTarget, EventWrite, Note, Plan, ReservationWrite,
};
pub use engine::Engine;
pub use ids::{
    CorrelationId, EmailAddress, GraphEventId, IcalUid, IdempotencyKey, OrbMatchId, RoomMailbox,
    TopdeskLocationId, TopdeskPersonId, TopdeskReservationId, TopdeskSeriesId,
};
pub use model::{
    Appointment, Booking, BookingStatus, Bookkeeping, Content, ExchangeLink, Fields, InFlight, Op,
    ParkReason, RetiredCopy, Side, SideStatus, TopdeskLink,
};
pub use observation::{
    ExchangeItem, Failure, Observation, Outcome, Removal, SeriesOccurrence, TopdeskItem, Window,
};
pub use state::{PersonEntry, State};

/// Errors of orb-reconcile: only parsing of domain values can fail; planning cannot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An id was empty.
    #[error("empty {kind}")]
    EmptyId {
        /// The id type.
        kind: &'static str,
    },
    /// Text was not an e-mail address.
    #[error("invalid e-mail address for {kind}")]
    InvalidEmail {
        /// The address type.
        kind: &'static str,
    },
}
