//! What the engine decides: effects as data, and the [`Plan`] that carries them with the
//! booking records to store.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::ids::{
    CorrelationId, EmailAddress, GraphEventId, IcalUid, IdempotencyKey, OrbMatchId, RoomMailbox,
    TopdeskLocationId, TopdeskPersonId, TopdeskReservationId, TopdeskSeriesId,
};
use crate::model::{Booking, Fields, ParkReason, Side};
use crate::state::PersonEntry;

/// The result of one [`crate::Engine::plan`] call. Apply it to the state
/// ([`crate::State::apply`]) atomically with persisting it, then execute the effects
/// and feed each outcome back as an observation.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The run's correlation id (also on every effect).
    pub correlation: CorrelationId,
    /// Effects to execute, in order.
    pub effects: Vec<Effect>,
    /// New versions of the bookings this plan touched, in match-id order.
    pub bookings: Vec<Booking>,
    /// Person-cache entries to store.
    pub persons: BTreeMap<EmailAddress, PersonEntry>,
    /// Why the engine decided what it did, for logs, dry-run and tests.
    pub notes: Vec<Note>,
}

impl Plan {
    /// Nothing to store and nothing to execute.
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty() && self.bookings.is_empty() && self.persons.is_empty()
    }
}

/// One effect for the service to execute.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Links the effect to its processing run (R8 audit trail).
    pub correlation: CorrelationId,
    /// The booking concerned, if one.
    pub match_id: Option<OrbMatchId>,
    /// What to do.
    pub kind: EffectKind,
}

/// Identifies a write effect; its outcome must quote it. Outcomes of superseded effects
/// are ignored.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EffectId {
    /// The booking.
    pub match_id: OrbMatchId,
    /// The side written.
    pub side: Side,
    /// Sequence number within the booking.
    pub seq: u64,
}

/// The effects the engine can ask for.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EffectKind {
    /// Find the TOPdesk person with this e-mail address; answer with
    /// [`crate::Observation::PersonResolved`].
    LookUpPerson {
        /// The address.
        email: EmailAddress,
    },
    /// Create a TOPdesk reservation with `externalLink = key`.
    CreateReservation {
        /// The effect.
        effect: EffectId,
        /// Idempotency key (TOPdesk `externalLink`).
        key: IdempotencyKey,
        /// The reservation.
        reservation: ReservationWrite,
    },
    /// Update a TOPdesk reservation (reschedule, move room, requester, subject).
    UpdateReservation {
        /// The effect.
        effect: EffectId,
        /// The reservation.
        id: TopdeskReservationId,
        /// Its new content.
        reservation: ReservationWrite,
    },
    /// Cancel a TOPdesk reservation.
    CancelReservation {
        /// The effect.
        effect: EffectId,
        /// The reservation.
        id: TopdeskReservationId,
    },
    /// Create a Graph event in `calendar` with `transactionId = key` and orb's match-id
    /// extended property.
    CreateEvent {
        /// The effect.
        effect: EffectId,
        /// Idempotency key (Graph `transactionId`).
        key: IdempotencyKey,
        /// The mailbox whose calendar receives the event.
        calendar: EmailAddress,
        /// The event.
        event: EventWrite,
    },
    /// Update a Graph event.
    UpdateEvent {
        /// The effect.
        effect: EffectId,
        /// The event.
        target: EventTarget,
        /// Its new content.
        event: EventWrite,
    },
    /// Cancel (delete) a Graph event; also used to leave the previous organizer's calendar.
    CancelEvent {
        /// The effect.
        effect: EffectId,
        /// The event.
        target: EventTarget,
    },
    /// The room declines the meeting in Exchange (TOPdesk refused the booking or marks
    /// it conflicting).
    DeclineEvent {
        /// The room.
        room: RoomMailbox,
        /// The room copy.
        room_copy: GraphEventId,
        /// Why, for the organizer.
        reason: Arc<str>,
    },
    /// Mail a user (only when mail is enabled).
    NotifyUser {
        /// The recipient.
        to: EmailAddress,
        /// Why.
        reason: Arc<str>,
    },
    /// Call the engine with [`crate::Observation::Tick`] at (or after) `at`.
    ScheduleRetry {
        /// When the retry is due.
        at: Timestamp,
        /// The failed attempt number (1-based).
        attempt: u32,
    },
    /// The booking was parked; show it to an admin.
    Park {
        /// Why.
        reason: ParkReason,
    },
    /// A full pass would have cancelled too many bookings of one room; they are held for
    /// an admin instead.
    HoldRemovals {
        /// The room.
        room: RoomMailbox,
        /// The side whose pass did not list them.
        side: Side,
        /// How many are held.
        held: usize,
        /// How many live bookings of the room were in the window.
        total: usize,
    },
}

/// A TOPdesk reservation as orb writes it.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationWrite {
    /// The location (room).
    pub location: TopdeskLocationId,
    /// The room mailbox, for logs.
    pub room: RoomMailbox,
    /// The requester person; `None` only if neither the wanted person nor the default
    /// requester exists (the booking is still written).
    pub requester: Option<TopdeskPersonId>,
    /// The requester's address (wanted, or the default requester's).
    pub requester_email: EmailAddress,
    /// Planned start.
    pub start: Timestamp,
    /// Planned end.
    pub end: Timestamp,
    /// Description: the subject, or the neutral text when withheld.
    pub subject: Arc<str>,
}

/// A Graph event as orb writes it. Bodies are never written. Resource attendees other
/// than `room` and `replaces_room` are left as they are (a meeting may book several
/// managed rooms; each is its own booking).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventWrite {
    /// The room invited as resource attendee (room-only mode: the calendar's owner).
    pub room: RoomMailbox,
    /// On a room move, the room to remove from the meeting.
    pub replaces_room: Option<RoomMailbox>,
    /// Required attendees besides the room.
    pub attendees: Arc<[EmailAddress]>,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// New subject; `None` on an update means "leave the subject alone" (withheld).
    pub subject: Option<Arc<str>>,
    /// orb's match id, written as extended property.
    pub match_id: OrbMatchId,
    /// Links single events made from one TOPdesk series.
    pub series: Option<TopdeskSeriesId>,
}

/// Which Graph event to write.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTarget {
    /// The mailbox holding the event.
    pub calendar: EmailAddress,
    /// The event id, when known; otherwise look it up by `ical_uid` in `calendar`.
    pub event: Option<GraphEventId>,
    /// The meeting's `iCalUId`.
    pub ical_uid: Option<IcalUid>,
}

/// Why the engine did (or did not do) something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A new booking was taken on.
    NewBooking {
        /// The booking.
        match_id: OrbMatchId,
        /// Where it was made.
        side: Side,
    },
    /// A side changed fields of a booking.
    Changed {
        /// The booking.
        match_id: OrbMatchId,
        /// The side.
        side: Side,
        /// The fields.
        fields: Fields,
    },
    /// Both sides changed a field concurrently; the policy chose a winner.
    Conflict {
        /// The booking.
        match_id: OrbMatchId,
        /// The fields.
        fields: Fields,
        /// The winner.
        winner: Side,
    },
    /// The observation showed what orb wrote (or already knew): nothing to do.
    Echo {
        /// The booking.
        match_id: OrbMatchId,
        /// The side.
        side: Side,
    },
    /// The observation is older than what orb knows.
    Stale {
        /// The booking.
        match_id: OrbMatchId,
        /// The side.
        side: Side,
    },
    /// TOPdesk no longer objects to a booking it refused or marked conflicting: the
    /// booking is active again (and re-attempted where TOPdesk is behind).
    ConflictCleared {
        /// The booking.
        match_id: OrbMatchId,
        /// What showed it.
        why: &'static str,
    },
    /// The observation was not acted on.
    Ignored {
        /// Why.
        reason: &'static str,
    },
}
