//! What the engine is told: changes seen on either side, full passes, outcomes of
//! effects, timer ticks and admin actions. The service maps client DTOs onto these.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::effect::EffectId;
use crate::ids::{
    EmailAddress, GraphEventId, IcalUid, OrbMatchId, RoomMailbox, TopdeskLocationId,
    TopdeskPersonId, TopdeskReservationId, TopdeskSeriesId,
};

/// One input to [`crate::Engine::plan`].
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug)]
pub enum Observation {
    /// A room calendar copy appeared or changed (notification or delta item).
    ExchangeChanged(ExchangeItem),
    /// A room calendar copy is gone (notification `deleted`, or delta `@removed`).
    ExchangeRemoved {
        /// The room calendar.
        room: RoomMailbox,
        /// The copy's id (or a series master's id: then every occurrence is gone).
        event_id: GraphEventId,
        /// Deleted, or only outside the delta window.
        reason: Removal,
    },
    /// Exchange's own expansion of one series in one room within a window
    /// (`instances`/`calendarView`): occurrences of the series in this room that are not
    /// listed were removed or moved to another room.
    ExchangeSeries {
        /// The room calendar.
        room: RoomMailbox,
        /// The series master's id in the room calendar.
        master: GraphEventId,
        /// The expanded window.
        window: Window,
        /// Every occurrence in the window, cancelled ones included.
        occurrences: Vec<ExchangeItem>,
    },
    /// A full listing of one room calendar within a window (delta resync). Bookings of
    /// the room in the window that are not listed were deleted, subject to the
    /// mass-cancel guard.
    ExchangePass {
        /// The room calendar.
        room: RoomMailbox,
        /// The listed window.
        window: Window,
        /// Every item in the window.
        items: Vec<ExchangeItem>,
    },
    /// A TOPdesk reservation appeared or changed (poll result).
    TopdeskChanged(TopdeskItem),
    /// A TOPdesk reservation is gone.
    TopdeskRemoved {
        /// The reservation.
        id: TopdeskReservationId,
        /// Deleted, or only outside the polled window.
        reason: Removal,
    },
    /// TOPdesk shows this reservation as conflicting (status `conflictingPlanned` or
    /// `conflictingRequest`): it exists, but overlaps another booking of the room. The
    /// Exchange side is told (the room declines, the organizer is mailed if mail is
    /// enabled) and the booking becomes [`crate::BookingStatus::Conflict`] on TOPdesk,
    /// keeping its reservation; a later change on either side tries again, and a
    /// [`TopdeskItem`] of the reservation without [`TopdeskItem::conflicting`] ends the
    /// conflict.
    ///
    /// Report it whenever a poll or a write response shows a conflicting status, after
    /// the [`Observation::TopdeskChanged`], [`Observation::TopdeskPass`] or
    /// [`Observation::EffectSucceeded`] carrying the same reservation (so orb knows its
    /// id). Repeating it is harmless: a booking already in conflict plans nothing.
    TopdeskConflicting {
        /// The reservation.
        id: TopdeskReservationId,
        /// Why, for the organizer (e.g. "room is double-booked").
        reason: Arc<str>,
    },
    /// A full TOPdesk poll of all managed locations within a window.
    TopdeskPass {
        /// The polled window.
        window: Window,
        /// Every reservation in the window.
        items: Vec<TopdeskItem>,
    },
    /// Outcome of [`crate::EffectKind::LookUpPerson`].
    PersonResolved {
        /// The address looked up.
        email: EmailAddress,
        /// The TOPdesk person, if one has this address.
        person: Option<TopdeskPersonId>,
    },
    /// A write effect succeeded.
    EffectSucceeded {
        /// The effect.
        effect: EffectId,
        /// What the side returned.
        outcome: Outcome,
    },
    /// A write effect failed.
    EffectFailed {
        /// The effect.
        effect: EffectId,
        /// How.
        failure: Failure,
    },
    /// Time passed: due retries and stale in-flight writes are issued again.
    Tick,
    /// An admin asks to retry a parked, conflicting or held booking.
    AdminRetry {
        /// The booking.
        match_id: OrbMatchId,
    },
    /// An admin confirms a removal held by the mass-cancel guard.
    AdminConfirmRemoval {
        /// The booking.
        match_id: OrbMatchId,
    },
}

/// Why an item is no longer listed.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// It was deleted or cancelled.
    Deleted,
    /// It only left the window being watched: not a cancellation.
    LeftWindow,
}

/// A half-open time window `[start, end)`.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First instant inside.
    pub start: Timestamp,
    /// First instant after.
    pub end: Timestamp,
}

impl Window {
    /// Whether a booking starting at `at` lies inside.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }
}

/// A room calendar copy as Graph reports it, already mapped to domain types.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeItem {
    /// The room calendar holding the copy.
    pub room: RoomMailbox,
    /// The copy's id in the room calendar.
    pub event_id: GraphEventId,
    /// `iCalUId` (distinct per occurrence).
    pub ical_uid: IcalUid,
    /// The organizer.
    pub organizer: EmailAddress,
    /// Required attendees in Graph's order, without rooms and the organizer.
    pub required_attendees: Vec<EmailAddress>,
    /// The subject as Graph reports it.
    pub subject: Option<String>,
    /// Sensitivity private or confidential.
    pub private: bool,
    /// Start (UTC).
    pub start: Timestamp,
    /// End (UTC).
    pub end: Timestamp,
    /// `isCancelled`.
    pub cancelled: bool,
    /// Set for occurrences and exceptions of a series.
    pub series: Option<SeriesOccurrence>,
    /// orb's match-id extended property, when the service could read it.
    pub orb_match_id: Option<OrbMatchId>,
    /// `lastModifiedDateTime`.
    pub modified_at: Timestamp,
}

/// Series membership of an occurrence.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesOccurrence {
    /// The series master's id in the room calendar.
    pub master: GraphEventId,
    /// `originalStart` of the occurrence.
    pub original_start: Timestamp,
}

/// A TOPdesk reservation, already mapped to domain types.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopdeskItem {
    /// The reservation.
    pub id: TopdeskReservationId,
    /// The reserved location.
    pub location: TopdeskLocationId,
    /// The requester's e-mail address, if the person has one.
    pub requester_email: Option<EmailAddress>,
    /// The description.
    pub subject: Option<String>,
    /// Planned start (UTC).
    pub start: Timestamp,
    /// Planned end (UTC).
    pub end: Timestamp,
    /// Status cancelled (or rejected).
    pub cancelled: bool,
    /// The `externalLink` id, if any.
    pub external_link: Option<String>,
    /// The series the reservation belongs to, if any.
    pub series: Option<TopdeskSeriesId>,
    /// TOPdesk marks it conflicting (`conflictingPlanned`/`conflictingRequest`). The mark
    /// itself is reported with [`Observation::TopdeskConflicting`]; an item without it
    /// tells that a conflict orb knew of is over.
    #[cfg_attr(feature = "serde", serde(default))]
    pub conflicting: bool,
    /// `modificationDate`.
    pub modified_at: Timestamp,
}

/// What a side returned for a successful write.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A TOPdesk reservation was created or updated.
    Reservation {
        /// Its id.
        id: TopdeskReservationId,
        /// Its `modificationDate` after the write.
        modified_at: Timestamp,
    },
    /// A Graph event was created or updated.
    Event {
        /// The written event's id.
        event: GraphEventId,
        /// Its `iCalUId`.
        ical_uid: IcalUid,
        /// Its `lastModifiedDateTime` after the write.
        modified_at: Timestamp,
    },
    /// The item was cancelled (or was already gone).
    Cancelled,
}

/// How a write failed, as the client classified it.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Transient (5xx, 429, timeout): retried with backoff, never sooner than
    /// `retry_after`.
    Retryable {
        /// The side's `Retry-After`, if it sent one.
        retry_after: Option<SignedDuration>,
    },
    /// The side refused the booking (TOPdesk: room taken, outside opening hours).
    Refused {
        /// Its reason.
        reason: Arc<str>,
    },
    /// The mailbox is out of the application's access scope (R20).
    Denied {
        /// The mailbox.
        mailbox: EmailAddress,
    },
    /// The item no longer exists on the side (404): counts as deleted there.
    Gone,
    /// Any other permanent rejection (4xx): parked.
    Rejected {
        /// Its reason.
        reason: Arc<str>,
    },
}
