//! Domain types: what other crates see of Graph (the wire DTOs stay private in `wire`).

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};

use crate::ids::{GraphEventId, IcalUid, Mailbox, OrbMatchId, RoomMailbox, SubscriptionId};

/// When an event takes place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// A timed event, both instants in UTC.
    Timed {
        /// Start instant.
        start: Timestamp,
        /// End instant (after `start`).
        end: Timestamp,
    },
    /// An all-day event: whole days, `end` exclusive (a one-day event on 2 March has
    /// `start` 2 March and `end` 3 March).
    AllDay {
        /// First day.
        start: Date,
        /// Day after the last day.
        end: Date,
    },
}

/// An e-mail address with an optional display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAddress {
    /// The SMTP address as Graph reported it.
    pub address: String,
    /// The display name, when known.
    pub name: Option<String>,
}

/// An attendee's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttendeeType {
    /// A required person.
    Required,
    /// An optional person.
    Optional,
    /// A resource (room or equipment).
    Resource,
}

/// A response to a meeting request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    /// No response yet.
    None,
    /// The calendar owner is the organizer.
    Organizer,
    /// Tentatively accepted.
    TentativelyAccepted,
    /// Accepted.
    Accepted,
    /// Declined.
    Declined,
    /// Did not respond.
    NotResponded,
}

/// An attendee of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attendee {
    /// Who.
    pub email: EmailAddress,
    /// Role.
    pub kind: AttendeeType,
    /// Their response.
    pub response: ResponseType,
}

/// An event's location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Display name.
    pub display_name: String,
    /// The room's SMTP address, for rooms.
    pub email: Option<String>,
}

/// An event's place in a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Not recurring.
    SingleInstance,
    /// An unmodified occurrence of a series.
    Occurrence,
    /// A modified occurrence of a series.
    Exception,
    /// The series master (carries the recurrence).
    SeriesMaster,
}

/// `sensitivity` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sensitivity {
    /// Normal.
    Normal,
    /// Personal.
    Personal,
    /// Private: orb processes it but never exposes its content.
    Private,
    /// Confidential.
    Confidential,
}

/// Which days a week index refers to in relative monthly/yearly patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeekIndex {
    /// First.
    First,
    /// Second.
    Second,
    /// Third.
    Third,
    /// Fourth.
    Fourth,
    /// Last.
    Last,
}

/// A recurrence pattern (`recurrencePattern`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecurrencePattern {
    /// Every `interval` days.
    Daily {
        /// Interval.
        interval: u32,
    },
    /// Every `interval` weeks on `days`.
    Weekly {
        /// Interval.
        interval: u32,
        /// Days of the week.
        days: Vec<Weekday>,
        /// First day of the week (Graph's default: Sunday).
        first_day_of_week: Weekday,
    },
    /// Every `interval` months on a day of the month.
    AbsoluteMonthly {
        /// Interval.
        interval: u32,
        /// Day of month 1–31.
        day_of_month: u8,
    },
    /// Every `interval` months on the `index`th `days`.
    RelativeMonthly {
        /// Interval.
        interval: u32,
        /// Days of the week.
        days: Vec<Weekday>,
        /// Which one.
        index: WeekIndex,
    },
    /// Every `interval` years on a date.
    AbsoluteYearly {
        /// Interval.
        interval: u32,
        /// Day of month.
        day_of_month: u8,
        /// Month 1–12.
        month: u8,
    },
    /// Every `interval` years on the `index`th `days` of `month`.
    RelativeYearly {
        /// Interval.
        interval: u32,
        /// Days of the week.
        days: Vec<Weekday>,
        /// Which one.
        index: WeekIndex,
        /// Month 1–12.
        month: u8,
    },
}

/// How long a series runs (`recurrenceRange`). `start` must be the date of the
/// master's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecurrenceRange {
    /// Until `end` (inclusive).
    EndDate {
        /// First date.
        start: Date,
        /// Last date.
        end: Date,
    },
    /// For ever.
    NoEnd {
        /// First date.
        start: Date,
    },
    /// `count` occurrences.
    Numbered {
        /// First date.
        start: Date,
        /// Number of occurrences (> 0).
        count: u32,
    },
}

/// A `patternedRecurrence`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recurrence {
    /// The pattern.
    pub pattern: RecurrencePattern,
    /// The range.
    pub range: RecurrenceRange,
    /// `recurrenceTimeZone`, when set.
    pub time_zone: Option<String>,
}

/// An event as read from a calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Immutable id within its mailbox.
    pub id: GraphEventId,
    /// Shared across the copies in different calendars; per occurrence.
    pub ical_uid: Option<IcalUid>,
    /// Place in a series.
    pub kind: EventKind,
    /// The series master, for occurrences and exceptions.
    pub series_master_id: Option<GraphEventId>,
    /// The slot of an occurrence/exception in its pattern.
    pub original_start: Option<Timestamp>,
    /// Subject (rooms often rewrite or delete it).
    pub subject: Option<String>,
    /// Plain-text or HTML body content, when selected.
    pub body: Option<String>,
    /// When.
    pub when: When,
    /// The organizer.
    pub organizer: Option<EmailAddress>,
    /// Whether the calendar owner organizes it.
    pub is_organizer: bool,
    /// Attendees with their responses.
    pub attendees: Vec<Attendee>,
    /// The primary location.
    pub location: Option<Location>,
    /// All locations.
    pub locations: Vec<Location>,
    /// Cancelled by the organizer.
    pub is_cancelled: bool,
    /// Sensitivity.
    pub sensitivity: Sensitivity,
    /// `showAs`, as Graph spells it.
    pub show_as: Option<String>,
    /// The calendar owner's own response.
    pub response: Option<ResponseType>,
    /// Recurrence, on series masters.
    pub recurrence: Option<Recurrence>,
    /// orb's `OrbMatchId` extended property, when expanded and present.
    pub orb_match_id: Option<OrbMatchId>,
    /// The create `transactionId`, when set.
    pub transaction_id: Option<String>,
    /// Version tag of the item.
    pub change_key: Option<String>,
    /// Creation time.
    pub created: Option<Timestamp>,
    /// Last modification time.
    pub last_modified: Option<Timestamp>,
}

/// A new attendee to invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAttendee {
    /// SMTP address.
    pub address: String,
    /// Display name.
    pub name: Option<String>,
    /// Role.
    pub kind: AttendeeType,
}

/// A room to book on an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomBooking {
    /// The room mailbox.
    pub mailbox: RoomMailbox,
    /// The room's display name.
    pub display_name: String,
}

/// A meeting to create in an organizer's calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: Option<String>,
    /// When.
    pub when: When,
    /// The room: invited as a `resource` attendee and set as `location` with
    /// `locationEmailAddress`.
    pub room: Option<RoomBooking>,
    /// Other attendees.
    pub attendees: Vec<NewAttendee>,
    /// Recurrence (creates a series).
    pub recurrence: Option<Recurrence>,
    /// orb's key, stamped as the `OrbMatchId` extended property.
    pub orb_match_id: OrbMatchId,
    /// Idempotency key of this logical create (same value on every retry).
    pub transaction_id: String,
    /// Sensitivity (default normal).
    pub sensitivity: Option<Sensitivity>,
}

/// A partial update (`PATCH`). `None` fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventPatch {
    /// New subject.
    pub subject: Option<String>,
    /// New plain-text body.
    pub body: Option<String>,
    /// New time.
    pub when: Option<When>,
    /// New room (`Some(None)` removes the location). Needs `attendees`: Graph replaces
    /// the whole attendee list, so the room is appended to it as a `resource`.
    pub room: Option<Option<RoomBooking>>,
    /// The complete new attendee list (without the room).
    pub attendees: Option<Vec<NewAttendee>>,
    /// New recurrence (series masters only).
    pub recurrence: Option<Recurrence>,
    /// Set or change the `OrbMatchId` extended property.
    pub orb_match_id: Option<OrbMatchId>,
}

/// An encryption certificate for rich notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionEncryption {
    /// Base64 DER of the public certificate.
    pub certificate_base64_der: String,
    /// orb's id for it (≤ 128 chars), echoed in each notification.
    pub certificate_id: String,
}

/// A subscription to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSubscription {
    /// `created,updated,deleted` or a subset.
    pub change_type: String,
    /// Where Graph POSTs notifications.
    pub notification_url: String,
    /// Where Graph POSTs lifecycle notifications (settable only at creation).
    pub lifecycle_notification_url: Option<String>,
    /// The resource, e.g. from [`events_resource`].
    pub resource: String,
    /// Requested expiry.
    pub expiration: Timestamp,
    /// Secret echoed in every notification (≤ 128 chars).
    pub client_state: String,
    /// `Some` for rich notifications (`includeResourceData: true`).
    pub encryption: Option<SubscriptionEncryption>,
}

/// A subscription as Graph reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Id.
    pub id: SubscriptionId,
    /// Resource path.
    pub resource: String,
    /// Change types.
    pub change_type: String,
    /// Notification URL.
    pub notification_url: String,
    /// Lifecycle notification URL.
    pub lifecycle_notification_url: Option<String>,
    /// Expiry.
    pub expiration: Timestamp,
    /// Whether resource data is included (rich).
    pub include_resource_data: bool,
    /// The encryption certificate id, for rich subscriptions.
    pub encryption_certificate_id: Option<String>,
    /// The owning application id.
    pub application_id: Option<String>,
}

/// The event properties orb selects in its rich subscriptions: everything the sync
/// needs, nothing more (the body is never selected).
pub const NOTIFICATION_SELECT: &[&str] = &[
    "subject",
    "start",
    "end",
    "isAllDay",
    "iCalUId",
    "type",
    "seriesMasterId",
    "originalStart",
    "organizer",
    "isOrganizer",
    "attendees",
    "location",
    "locations",
    "isCancelled",
    "sensitivity",
    "showAs",
    "recurrence",
    "responseStatus",
    "changeKey",
    "lastModifiedDateTime",
];

/// The subscription resource for a mailbox's events with `$select` (rich notifications
/// require `$select`; only the selected properties are encrypted into the payload).
pub fn events_resource(mailbox: &Mailbox, select: &[&str]) -> String {
    if select.is_empty() {
        format!("/users/{mailbox}/events")
    } else {
        format!("/users/{mailbox}/events?$select={}", select.join(","))
    }
}

/// What a delta round reports for one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaItem {
    /// Created or updated (occurrences and exceptions expanded).
    Changed(Box<Event>),
    /// Deleted, cancelled away, or moved out of the window.
    Removed {
        /// The item's id.
        id: GraphEventId,
        /// `@removed.reason` (`deleted` or `changed`).
        reason: String,
    },
}

/// One page of a delta round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaPage {
    /// The items of this page.
    pub items: Vec<DeltaItem>,
    /// Where to go next.
    pub next: DeltaNext,
}

/// Continuation of a delta round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaNext {
    /// More pages in this round: GET this link verbatim.
    NextLink(String),
    /// Round complete: store this link for the next round.
    DeltaLink(String),
}

/// Where a delta request starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaCursor {
    /// A new token chain over a fixed window.
    Start {
        /// Window start.
        start: Timestamp,
        /// Window end.
        end: Timestamp,
    },
    /// A `@odata.nextLink` or `@odata.deltaLink` from an earlier page.
    Link(String),
}

/// A complete delta round (all pages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaRound {
    /// All items, in the order Graph sent them (replays possible).
    pub items: Vec<DeltaItem>,
    /// The link to store for the next round.
    pub delta_link: String,
}

/// `bookingType` of a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookingType {
    /// Reservable.
    Standard,
    /// First-come-first-served, not reservable.
    Reserved,
    /// Unknown.
    Unknown,
}

/// A room from the Places API, keyed by its mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// The room mailbox (the stable key; `id` is mutable).
    pub mailbox: RoomMailbox,
    /// Display name.
    pub display_name: String,
    /// Places id (mutable; informational).
    pub id: Option<String>,
    /// Capacity.
    pub capacity: Option<u32>,
    /// Building.
    pub building: Option<String>,
    /// Floor number.
    pub floor_number: Option<i32>,
    /// Booking type.
    pub booking_type: BookingType,
}

/// A room list from the Places API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomList {
    /// The room list's address (rooms of a list are listed by address, not id).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Places id.
    pub id: Option<String>,
}

/// A plain-text mail sent from the configured sender mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// Recipients.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Keep a copy in the sender's Sent Items.
    pub save_to_sent_items: bool,
}
