//! Domain types: what the rest of orb sees of TOPdesk. The wire DTOs stay private in
//! [`crate::wire`].

use jiff::Timestamp;
use jiff::civil::Date;

use crate::fiql::Fiql;
use crate::ids::{
    BranchId, ExternalLinkId, LocationId, PersonId, ReservationNumber, SearchlistId, SeriesId,
    TopdeskReservationId,
};

/// A reservation's status.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReservationStatus {
    /// Awaiting approval.
    Request,
    /// A request that was rejected.
    RejectedRequest,
    /// Confirmed.
    Planned,
    /// Cancelled.
    Cancelled,
    /// Confirmed, but overlapping another booking of the same facility.
    ConflictingPlanned,
    /// A request overlapping another booking of the same facility.
    ConflictingRequest,
    /// A status this client does not know yet, as TOPdesk wrote it.
    Other(String),
}

impl ReservationStatus {
    /// Parses TOPdesk's spelling; unknown values are kept, never rejected.
    pub fn from_wire(text: &str) -> Self {
        match text {
            "request" => Self::Request,
            "rejectedRequest" => Self::RejectedRequest,
            "planned" => Self::Planned,
            "cancelled" => Self::Cancelled,
            "conflictingPlanned" => Self::ConflictingPlanned,
            "conflictingRequest" => Self::ConflictingRequest,
            other => Self::Other(other.to_owned()),
        }
    }

    /// TOPdesk's spelling.
    pub fn as_wire(&self) -> &str {
        match self {
            Self::Request => "request",
            Self::RejectedRequest => "rejectedRequest",
            Self::Planned => "planned",
            Self::Cancelled => "cancelled",
            Self::ConflictingPlanned => "conflictingPlanned",
            Self::ConflictingRequest => "conflictingRequest",
            Self::Other(other) => other,
        }
    }

    /// Still occupying the room: planned, requested or conflicting.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::Request | Self::Planned | Self::ConflictingPlanned | Self::ConflictingRequest
        )
    }
}

/// A reference to a person as embedded in a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRef {
    /// The person's id.
    pub id: PersonId,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// An `{id, name}` pair (search-list entries, branches, room types).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedRef {
    /// The entry's id.
    pub id: SearchlistId,
    /// The entry's name.
    pub name: Option<String>,
}

/// The room part of a reserved facility.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedLocation {
    /// The location (room) id.
    pub id: LocationId,
    /// Room name.
    pub name: Option<String>,
    /// Room number.
    pub room_number: Option<String>,
    /// The branch the room belongs to.
    pub branch: Option<BranchRef>,
}

/// A branch reference (id and name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchRef {
    /// Branch id.
    pub id: BranchId,
    /// Branch name.
    pub name: Option<String>,
}

/// One reserved facility line of a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedFacility {
    /// The line's own id.
    pub id: Option<String>,
    /// The reserved room, when the facility is a location.
    pub location: Option<ReservedLocation>,
    /// Start including set-up block time.
    pub start_block: Option<Timestamp>,
    /// End including clean-up block time.
    pub end_block: Option<Timestamp>,
    /// When the facility was issued (issued facilities block cancel and reschedule).
    pub issued_at: Option<Timestamp>,
}

/// An external link (the foreign-id slot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalLink {
    /// The id in the external system.
    pub id: ExternalLinkId,
    /// The integration's type, as TOPdesk wrote it.
    pub link_type: String,
    /// The date of the synchronisation.
    pub date: Option<Timestamp>,
}

/// A reservation as read from TOPdesk. Fields not requested with `$fields` are `None`
/// or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The reservation's UUID.
    pub id: TopdeskReservationId,
    /// The reservation number.
    pub number: Option<ReservationNumber>,
    /// The status.
    pub status: Option<ReservationStatus>,
    /// Archived reservations are dead.
    pub archived: Option<bool>,
    /// The subject.
    pub brief_description: Option<String>,
    /// Free text.
    pub notes: Option<String>,
    /// The requester (always a person).
    pub requester: Option<PersonRef>,
    /// Number of participants.
    pub number_of_persons: Option<i64>,
    /// Planned start (UTC).
    pub planned_start: Option<Timestamp>,
    /// Planned end (UTC).
    pub planned_end: Option<Timestamp>,
    /// Reserved facilities.
    pub facilities: Vec<ReservedFacility>,
    /// The recurrence series this reservation belongs to.
    pub series: Option<SeriesId>,
    /// External links.
    pub external_links: Vec<ExternalLink>,
    /// Last modification (UTC).
    pub modification_date: Option<Timestamp>,
}

impl Reservation {
    /// The ids of the reserved rooms.
    pub fn location_ids(&self) -> impl Iterator<Item = &LocationId> {
        self.facilities
            .iter()
            .filter_map(|f| f.location.as_ref().map(|l| &l.id))
    }

    /// The external link of the given type, if any.
    pub fn external_link(&self, link_type: crate::ids::ExternalLinkType) -> Option<&ExternalLink> {
        let wanted = link_type.to_string();
        self.external_links.iter().find(|l| l.link_type == wanted)
    }
}

/// One member of a series as returned by the series endpoints (only id, number,
/// status, series and planned dates are filled in by TOPdesk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesOccurrence {
    /// The occurrence's own reservation id.
    pub id: TopdeskReservationId,
    /// Its number.
    pub number: Option<ReservationNumber>,
    /// Its status.
    pub status: Option<ReservationStatus>,
    /// The series id.
    pub series: Option<SeriesId>,
    /// Planned start.
    pub planned_start: Option<Timestamp>,
    /// Planned end.
    pub planned_end: Option<Timestamp>,
}

/// The status to create a reservation with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NewReservationStatus {
    /// Confirmed (TOPdesk's default).
    #[default]
    Planned,
    /// Awaiting approval.
    Request,
}

/// What orb asks TOPdesk to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReservation {
    /// The requester's person id (resolve the e-mail first).
    pub requester: PersonId,
    /// Start; truncated to the minute on the wire.
    pub start: Timestamp,
    /// End; truncated to the minute on the wire.
    pub end: Timestamp,
    /// The rooms to reserve (at least one).
    pub locations: Vec<LocationId>,
    /// Subject; truncated to 100 characters on the wire.
    pub brief_description: Option<String>,
    /// Body text.
    pub notes: Option<String>,
    /// Number of participants (0–99999).
    pub number_of_persons: Option<u32>,
    /// planned or request.
    pub status: NewReservationStatus,
    /// Our foreign id, written as the (write-once) external link with our type.
    pub external_link_id: Option<ExternalLinkId>,
}

/// Which occurrences of a series a PATCH applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Occurrences {
    /// Only the given occurrence.
    #[default]
    Current,
    /// The given occurrence and all later ones.
    Future,
}

/// A PATCH of descriptive fields; `None` leaves a field unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReservationUpdate {
    /// New subject (truncated to 100 characters).
    pub brief_description: Option<String>,
    /// New notes.
    pub notes: Option<String>,
    /// New participant count.
    pub number_of_persons: Option<u32>,
    /// New requester.
    pub requester: Option<PersonId>,
    /// Adopt the reservation: set our external link. TOPdesk refuses to rewrite an
    /// existing link, so set it only once.
    pub external_link_id: Option<ExternalLinkId>,
    /// For series: this occurrence only, or also the later ones.
    pub occurrences: Occurrences,
}

/// How a reservation was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled (planned or conflictingPlanned).
    Cancelled,
    /// Rejected, because it was still a request.
    Rejected,
    /// Already cancelled or rejected: nothing was sent.
    AlreadyStopped,
}

/// A list query: a FIQL filter, optional field selection and page size.
#[derive(Clone, Debug, PartialEq)]
pub struct ReservationQuery {
    /// The filter; `None` lists everything.
    pub filter: Option<Fiql>,
    /// `$fields`; `id`, `plannedStartDate` and `plannedEndDate` are always added
    /// because paging needs them. `None` returns every field.
    pub fields: Option<Vec<String>>,
    /// `$top`, the page size (1–10000).
    pub page_size: u32,
}

impl ReservationQuery {
    /// Everything matching `filter`, all fields, pages of 1000.
    pub fn new(filter: Fiql) -> Self {
        Self {
            filter: Some(filter),
            fields: None,
            page_size: 1000,
        }
    }

    /// Restricts the returned fields.
    pub fn with_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the page size (`$top`).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self
    }
}

/// A reservable room (`/reservableLocations`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservableLocation {
    /// Location id.
    pub id: LocationId,
    /// Name.
    pub name: Option<String>,
    /// Room number.
    pub room_number: Option<String>,
    /// Capacity.
    pub capacity: Option<i64>,
    /// Branch.
    pub branch: Option<BranchRef>,
}

/// The free text fields of one optional-fields tab of a location card.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OptionalTexts {
    /// `text1` … `text5`.
    pub text: [Option<String>; 5],
}

/// A location card (`/locations`), with the fields orb uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Location id.
    pub id: LocationId,
    /// Name.
    pub name: Option<String>,
    /// Room number.
    pub room_number: Option<String>,
    /// Branch.
    pub branch: Option<BranchRef>,
    /// Capacity.
    pub capacity: Option<i64>,
    /// `reservationManagement.reservable`.
    pub reservable: Option<bool>,
    /// `reservationManagement.blockTime` in minutes.
    pub block_time_minutes: Option<i64>,
    /// Optional fields tab 1 (e.g. the room mailbox in `text1`).
    pub optional_fields1: Option<OptionalTexts>,
    /// Optional fields tab 2.
    pub optional_fields2: Option<OptionalTexts>,
    /// Last modification.
    pub modification_date: Option<Timestamp>,
}

/// Which location fields to ask for.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LocationQuery {
    /// FIQL filter (`query`); without one TOPdesk returns only active rooms.
    pub filter: Option<Fiql>,
    /// Also fetch `optionalFields1` and `optionalFields2`.
    pub with_optional_fields: bool,
    /// `pageSize`; TOPdesk's default is unlimited.
    pub page_size: Option<u32>,
}

/// A branch (site) with its time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    /// Branch id.
    pub id: BranchId,
    /// Name.
    pub name: Option<String>,
    /// IANA time zone, e.g. `Europe/Amsterdam`.
    pub time_zone: Option<String>,
}

/// A person card as far as booking needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// Person id.
    pub id: PersonId,
    /// Display name ("Jansen, Eva").
    pub dynamic_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Archived cards should not be used as requesters.
    pub archived: bool,
    /// Network login name (≤20 characters).
    pub network_login_name: Option<String>,
    /// Employee number.
    pub employee_number: Option<String>,
    /// Branch.
    pub branch: Option<BranchRef>,
}

/// The result of looking a person up by e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersonLookup {
    /// No active card has this address.
    NotFound,
    /// Exactly one active card has it.
    Found(Person),
    /// Several active cards share it; which one is meant is a human decision.
    Ambiguous(Vec<Person>),
}

/// The date list of a "specific dates" series operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesDates {
    /// Dates (`yyyy-MM-dd`), unique, after the original; 1–1000 of them.
    pub dates: Vec<Date>,
    /// Create conflicting occurrences instead of failing with 400.
    pub allow_conflicts: bool,
}
