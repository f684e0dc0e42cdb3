//! The engine's record of a booking: the agreed content, what each side last showed,
//! what is in flight, and the ORB fields (R13).

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;

use crate::ids::{
    CorrelationId, EmailAddress, GraphEventId, IcalUid, OrbMatchId, RoomMailbox, TopdeskPersonId,
    TopdeskReservationId, TopdeskSeriesId,
};
use crate::observation::ExchangeItem;

/// One of the two systems orb keeps in agreement.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Microsoft Exchange Online via Graph.
    Exchange,
    /// TOPdesk Reservations.
    Topdesk,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Self {
        match self {
            Self::Exchange => Self::Topdesk,
            Self::Topdesk => Self::Exchange,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exchange => "exchange",
            Self::Topdesk => "topdesk",
        })
    }
}

/// What a booking is, in the form both sides are compared in. Each side's view of a
/// booking is a `Content` too (its *projection*), so echoes compare equal.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// The booked room.
    pub room: RoomMailbox,
    /// Planned start (UTC).
    pub start: Timestamp,
    /// Planned end (UTC).
    pub end: Timestamp,
    /// The subject; `None` when withheld (private item or `carry_subject = false`).
    pub subject: Option<Arc<str>>,
    /// Exchange organizer; on the TOPdesk side the requester.
    pub organizer: EmailAddress,
    /// Required attendees in Exchange's order (neither the room nor the organizer).
    pub attendees: Arc<[EmailAddress]>,
    /// Cancelled or deleted. Final: a cancelled booking never comes back.
    pub cancelled: bool,
}

/// A set of [`Content`] fields, used to report what changed.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields(u8);

impl Fields {
    /// The room.
    pub const ROOM: Self = Self(1);
    /// Start or end.
    pub const TIME: Self = Self(2);
    /// The subject.
    pub const SUBJECT: Self = Self(4);
    /// Organizer or requester.
    pub const ORGANIZER: Self = Self(8);
    /// Attendees.
    pub const ATTENDEES: Self = Self(16);
    /// Cancellation.
    pub const CANCELLED: Self = Self(32);

    /// Every field, in rendering order.
    pub const ALL: [Self; 6] = [
        Self::ROOM,
        Self::TIME,
        Self::SUBJECT,
        Self::ORGANIZER,
        Self::ATTENDEES,
        Self::CANCELLED,
    ];

    /// No field.
    pub fn empty() -> Self {
        Self(0)
    }

    /// Whether no field is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every field of `other` is set here.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Adds the fields of `other`.
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    /// Removes the fields of `other`.
    pub fn remove(&mut self, other: Self) {
        self.0 &= !other.0;
    }

    /// The fields that differ between two contents.
    pub fn diff(a: &Content, b: &Content) -> Self {
        let mut f = Self::empty();
        if a.room != b.room {
            f.insert(Self::ROOM);
        }
        if a.start != b.start || a.end != b.end {
            f.insert(Self::TIME);
        }
        if a.subject != b.subject {
            f.insert(Self::SUBJECT);
        }
        if a.organizer != b.organizer {
            f.insert(Self::ORGANIZER);
        }
        if a.attendees != b.attendees {
            f.insert(Self::ATTENDEES);
        }
        if a.cancelled != b.cancelled {
            f.insert(Self::CANCELLED);
        }
        f
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Fields, &str); 6] = [
            (Fields::ROOM, "room"),
            (Fields::TIME, "time"),
            (Fields::SUBJECT, "subject"),
            (Fields::ORGANIZER, "organizer"),
            (Fields::ATTENDEES, "attendees"),
            (Fields::CANCELLED, "cancelled"),
        ];
        let mut first = true;
        for (field, name) in NAMES {
            if self.contains(field) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// Single appointment or part of a series (ORB field "appointment type").
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appointment {
    /// A single booking.
    Single,
    /// One occurrence of an Exchange series, as Exchange expanded it.
    ExchangeOccurrence {
        /// The series master's id in the room calendar.
        master: GraphEventId,
        /// Where the occurrence was originally scheduled.
        original_start: Timestamp,
    },
    /// One reservation of a TOPdesk series; becomes a linked single event in Exchange.
    TopdeskSeries(TopdeskSeriesId),
}

/// Where a booking stands.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BookingStatus {
    /// Kept in sync.
    Active,
    /// A side refused the booking (e.g. TOPdesk found the room taken), or TOPdesk
    /// accepted it but marks the reservation conflicting
    /// ([`crate::Observation::TopdeskConflicting`]; the reservation stays linked).
    /// Visible, and not written again until one side changes the booking, TOPdesk lists
    /// the reservation unmarked ([`crate::TopdeskItem::conflicting`]), or another booking
    /// leaves the refused room and time (a refused write is then tried again).
    Conflict {
        /// The side that refused.
        side: Side,
        /// Its reason, as reported.
        reason: Arc<str>,
    },
    /// Given up after failures, or refused permanently; waits for an admin retry.
    Parked {
        /// Why.
        reason: ParkReason,
    },
    /// A full pass wanted to cancel it as part of a mass cancellation; waits for an admin
    /// to confirm the removal or to retry.
    HeldRemoval {
        /// The side whose pass no longer listed the booking.
        side: Side,
    },
}

/// Why a booking was parked.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParkReason {
    /// The retry limit was reached.
    RetryLimit {
        /// The side whose writes kept failing.
        side: Side,
    },
    /// Exchange application access policy (RBAC) denies the mailbox (R20).
    MailboxDenied {
        /// The denied mailbox.
        mailbox: EmailAddress,
    },
    /// A side rejected the write for good.
    Rejected {
        /// The side.
        side: Side,
        /// Its reason, as reported.
        reason: Arc<str>,
    },
}

/// Last status reported by a side's processor (ORB fields).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SideStatus {
    /// Nothing is known yet.
    Unknown,
    /// The side shows what orb wants.
    InSync,
    /// A write is in flight.
    Writing,
    /// The last write failed and will be retried.
    Failed,
    /// The side refused the booking (or, TOPdesk, marks it conflicting).
    Refused,
}

/// The kind of write in flight.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create the item.
    Create,
    /// Update the item.
    Update,
    /// Cancel the item.
    Cancel,
    /// Cancel the Exchange event in the previous organizer's calendar before creating it
    /// in the new organizer's calendar.
    Relocate,
}

/// A write whose outcome has not arrived yet. One per side at most.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// The effect's sequence number within the booking (see [`crate::EffectId`]).
    pub seq: u64,
    /// What it does.
    pub op: Op,
    /// What the side will show once it succeeded (`None` for cancels).
    pub target: Option<Content>,
    /// When it was issued (or last re-issued).
    pub since: Timestamp,
    /// The effect as issued; re-issued unchanged when its outcome does not come.
    pub effect: Box<crate::EffectKind>,
    /// The room copy this write stopped following (room move, relocation); followed
    /// again if the write fails.
    pub undo: Option<RetiredCopy>,
}

/// A room copy orb stopped following (room moved, organizer changed).
///
/// After a room move the meeting itself lives on, so an observation of the old copy is an
/// echo of orb's move unless a user changed it after `at` (then it is a booking again).
/// After a relocation (`superseded`) orb deletes the old event itself: every later
/// observation of the old copy — removal, cancellation or update, before or after the
/// outcome of orb's cancel call — is the echo of that deletion and changes nothing. A
/// copy of the same meeting under a new id (the room invited again) is not the old copy.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredCopy {
    /// The room of the copy.
    pub room: RoomMailbox,
    /// Its `iCalUId`.
    pub ical_uid: Option<IcalUid>,
    /// Its id in the room calendar.
    pub room_copy: Option<GraphEventId>,
    /// The event orb wrote for it (the organizer's event, or the room's own in room-only
    /// mode), when known.
    #[cfg_attr(feature = "serde", serde(default))]
    pub event: Option<GraphEventId>,
    /// orb replaced the whole event (relocation to another calendar) and deletes this
    /// one: it is never followed again, whatever is observed of it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub superseded: bool,
    /// When orb retired it.
    pub at: Timestamp,
}

/// What orb knows of a booking's Exchange side.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeLink {
    /// The room whose calendar copy is followed.
    pub room: Option<RoomMailbox>,
    /// The copy's id in the room calendar.
    pub room_copy: Option<GraphEventId>,
    /// The meeting's `iCalUId`.
    pub ical_uid: Option<IcalUid>,
    /// The event orb writes to (organizer's event, or the room's in room-only mode);
    /// `None` with a known `calendar` means "find it by `iCalUId`".
    pub event: Option<GraphEventId>,
    /// The mailbox holding `event`.
    pub calendar: Option<EmailAddress>,
    /// Whether orb created the Exchange event.
    pub orb_created: bool,
    /// Creates issued so far; part of the idempotency key.
    pub generation: u32,
    /// The side's last known view of the booking.
    pub base: Option<Content>,
    /// Modification time of `base` as Exchange reported it.
    pub modified_at: Option<Timestamp>,
    /// The write in flight.
    pub in_flight: Option<InFlight>,
    /// Failed attempts of the current write.
    pub attempts: u32,
    /// Copies no longer followed.
    pub retired: Vec<RetiredCopy>,
    /// Last status of the Exchange processor.
    pub status: SideStatus,
    /// Room copies reported while orb's create of this booking's event awaited its
    /// outcome, that may be the copy of that very event (a user may have edited it
    /// already, so its content proves nothing; its `iCalUId` comes with the outcome).
    /// They are decided when the outcome arrives: the copy with the event's `iCalUId`
    /// is this booking's, any other is looked at again as any room copy — never made a
    /// booking of its own before, which would duplicate orb's own event.
    #[cfg_attr(feature = "serde", serde(default))]
    pub held: Vec<ExchangeItem>,
    /// What orb's create of the event wrote, while no outcome has told which event it
    /// made. A repeated create sends exactly this again: its idempotency key makes
    /// Exchange answer with the event the first call may have made, which holds this
    /// content, not what changed since (that follows as an update).
    #[cfg_attr(feature = "serde", serde(default))]
    pub unconfirmed_create: Option<Content>,
    /// The room copy orb had the room decline (TOPdesk refused or marks the booking
    /// conflicting). Exchange's default resource processing removes a declined meeting
    /// from the room's calendar: that removal, and a pass no longer listing the copy, is
    /// orb's own decline coming back, not a cancellation.
    #[cfg_attr(feature = "serde", serde(default))]
    pub declined: Option<GraphEventId>,
}

/// What orb knows of a booking's TOPdesk side.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopdeskLink {
    /// The reservation.
    pub reservation: Option<TopdeskReservationId>,
    /// Reservations replaced by a newer one (re-created after it vanished).
    pub retired: Vec<TopdeskReservationId>,
    /// The requester person orb last wrote.
    pub requester: Option<TopdeskPersonId>,
    /// Creates issued so far; part of the idempotency key.
    pub generation: u32,
    /// The side's last known view of the booking.
    pub base: Option<Content>,
    /// Modification time of `base` as TOPdesk reported it.
    pub modified_at: Option<Timestamp>,
    /// The write in flight.
    pub in_flight: Option<InFlight>,
    /// Failed attempts of the current write.
    pub attempts: u32,
    /// Last status of the TOPdesk processor.
    pub status: SideStatus,
}

/// The bookkeeping ORB fields (R13).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bookkeeping {
    /// How often the booking changed (+1 per genuine change on either side).
    pub complexity_index: u32,
    /// When the booking first reached orb.
    pub created_at: Timestamp,
    /// The side where the booking was made.
    pub processor_created: Side,
    /// The organizer when the booking first reached orb; never changes.
    pub original_organizer: EmailAddress,
    /// When a side last changed the booking.
    pub last_updated_at: Timestamp,
    /// Which side last changed the booking.
    pub last_updated_by: Side,
    /// When the last failure happened.
    pub failed_at: Option<Timestamp>,
    /// Which side's write failed last.
    pub failed_by: Option<Side>,
    /// All failures so far.
    pub failed_count: u32,
    /// All retries so far.
    pub retry_count: u32,
    /// Concurrent edits resolved by the conflict policy.
    pub conflicts: u32,
    /// The correlation id of the run that last touched the booking.
    pub correlation: CorrelationId,
}

/// One booking as the engine keeps it. The store persists it; the engine alone changes
/// it, through [`crate::Plan`]s.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booking {
    /// orb's key.
    pub match_id: OrbMatchId,
    /// The agreed content both sides are driven to.
    pub desired: Content,
    /// The item was private (sensitivity private/confidential) when last seen.
    pub private: bool,
    /// Single, Exchange occurrence or TOPdesk series member.
    pub appointment: Appointment,
    /// Exchange side.
    pub exchange: ExchangeLink,
    /// TOPdesk side.
    pub topdesk: TopdeskLink,
    /// Where it stands.
    pub status: BookingStatus,
    /// ORB fields.
    pub meta: Bookkeeping,
    /// Next effect sequence number.
    pub next_seq: u64,
    /// A retry waits until then.
    pub retry_at: Option<Timestamp>,
    /// A TOPdesk write waits for this person lookup.
    pub awaiting_person: Option<EmailAddress>,
}

impl Booking {
    /// orb created (or is creating) this booking's Exchange event and does not know yet
    /// which event Exchange made: no outcome has brought its id or `iCalUId`. A create
    /// in flight counts, and so does one that failed transiently and waits for its retry
    /// (it may have happened all the same; the retry's idempotency key finds it).
    pub(crate) fn awaits_own_event(&self) -> bool {
        let x = &self.exchange;
        let unknown = x.base.is_none() && x.event.is_none() && x.room_copy.is_none();
        let creating = x.in_flight.as_ref().is_some_and(|f| f.op == Op::Create);
        // The retry creates again only while nothing of the event is known.
        // (A cancelled booking repeats it too, to learn which event to cancel.)
        let retrying = x.in_flight.is_none()
            && unknown
            && (!self.desired.cancelled || x.unconfirmed_create.is_some())
            && matches!(
                self.status,
                BookingStatus::Active | BookingStatus::Conflict { .. }
            );
        // A copy linked by its content alone (it looked exactly like what orb wrote) may
        // be someone else's identical meeting: only the outcome tells.
        let unconfirmed = x.unconfirmed_create.is_some()
            || (x.ical_uid.is_none() && x.event.is_none() && unknown);
        x.orb_created && unconfirmed && (creating || retrying)
    }
}
