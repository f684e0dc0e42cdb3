//! The booking view (R13, R14, R15, R18): one model for the JSON API, the command line
//! and any page, built from the stored [`orb_store::Booking`] records.
//!
//! [`ViewPolicy`] is the **one place** where `sync.view_exclude` and
//! `sync.carry_subject = false` are applied: an excluded field is absent from a
//! [`BookingView`] (not present with a null value), and so is the subject when subjects
//! are not carried, whatever an older record still holds. A private (locked) Outlook
//! item shows neither subject nor attendees. Filters never look at a field the policy
//! hides (a search cannot be used as an oracle for an excluded value). The audit trail
//! of a detail view (the booking's own records and the other records of the processing
//! runs they belong to, never another booking's) has every hidden value of its booking
//! masked, and every e-mail address the view does not show.
//!
//! Listing scans the store once, keeps only the bookings of the requested page (a
//! bounded heap of at most `offset + limit + 1` records), and pages either by offset or
//! by an opaque cursor (`next_cursor`), which stays cheap however deep the page is.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt::{self, Write as _};

use jiff::{SignedDuration, Timestamp};
use orb_store::{AppointmentType, AuditRecord, Booking, MatchId, Processor, Store};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::config::SyncConfig;

/// The agenda group of the ORB fields, in display order.
pub const AGENDA: &[&str] = &[
    "appointment_type",
    "organizer",
    "location",
    "room",
    "attendees",
    "subject",
    "start",
    "end",
    "complexity_index",
    "created_at",
];

/// The system group of the ORB fields.
pub const SYSTEM: &[&str] = &[
    "match_id",
    "correlation_id",
    "processor_created",
    "original_organizer",
];

/// The status group of the ORB fields.
pub const STATUS: &[&str] = &[
    "last_updated_at",
    "last_updated_by",
    "failed_at",
    "failed_processor",
    "failed_count",
    "retry_count",
    "exchange_status",
    "topdesk_status",
];

/// The fields a list shows by default: those management needs (R14).
pub const MANAGEMENT_FIELDS: &[&str] = &[
    "room",
    "organizer",
    "start",
    "end",
    "appointment_type",
    "exchange_status",
    "topdesk_status",
    "last_updated_at",
    "failed_count",
];

/// The largest page a list returns.
pub const MAX_LIMIT: usize = 500;

/// The page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 50;

/// The largest offset accepted (deeper pages use the cursor).
pub const MAX_OFFSET: usize = 10_000;

/// The newest audit records a detail view shows at most.
pub const MAX_AUDIT: usize = 500;

/// Which fields everyone may see: `sync.view_exclude` and `sync.carry_subject`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewPolicy {
    excluded: BTreeSet<String>,
    carry_subject: bool,
}

impl ViewPolicy {
    /// The policy of a `[sync]` section.
    pub fn from_config(sync: &SyncConfig) -> Self {
        Self::new(&sync.view_exclude, sync.carry_subject)
    }

    /// A policy hiding `excluded` (names of [`crate::config::VIEW_FIELDS`]) and, unless
    /// `carry_subject`, the subject.
    pub fn new(excluded: &[String], carry_subject: bool) -> Self {
        Self {
            excluded: excluded.iter().cloned().collect(),
            carry_subject,
        }
    }

    /// Whether `field` may be shown at all.
    pub fn shows(&self, field: &str) -> bool {
        !self.excluded.contains(field) && (field != "subject" || self.carry_subject)
    }

    /// Whether `field` of this booking may be shown (a private item's content never is).
    fn shows_of(&self, b: &Booking, field: &str) -> bool {
        self.shows(field) && !(b.private && matches!(field, "subject" | "attendees"))
    }

    /// The view of one stored booking.
    pub fn view(&self, b: &Booking) -> BookingView {
        let group = |names: &[&str]| {
            Group(
                names
                    .iter()
                    .filter(|name| self.shows_of(b, name))
                    .map(|name| ((*name).to_owned(), field_value(b, name)))
                    .collect(),
            )
        };
        BookingView {
            id: b.match_id.as_str().to_owned(),
            state: BookingState::of(b),
            private: b.private,
            agenda: group(AGENDA),
            system: group(SYSTEM),
            status: group(STATUS),
        }
    }

    /// The view of one booking with its audit trail (records of its correlation id),
    /// every hidden value of the booking masked in the trail's text.
    pub fn detail(&self, b: &Booking, audit: &[AuditRecord]) -> BookingDetail {
        self.detail_of(b, audit.iter().map(|a| &a.entry))
    }

    fn detail_of<'a>(
        &self,
        b: &Booking,
        audit: impl Iterator<Item = &'a orb_store::AuditEntry>,
    ) -> BookingDetail {
        let hidden = self.hidden_values(b);
        let shown = self.shown_addresses(b);
        let mask = |text: &str| mask_addresses(&mask(text, &hidden), &shown);
        BookingDetail {
            booking: self.view(b),
            audit: audit
                .map(|a| AuditView {
                    at: a.at,
                    actor: mask(&a.actor),
                    action: mask(&a.action),
                    outcome: mask(&a.outcome),
                    detail: a.detail.as_deref().map(mask),
                })
                .collect(),
        }
    }

    /// One page of the bookings matching `query`, from any sequence of records.
    pub fn list(
        &self,
        bookings: impl IntoIterator<Item = Booking>,
        query: &Query,
    ) -> Result<Page, QueryError> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let offset = query.offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(QueryError(format!(
                "offset above {MAX_OFFSET}; page with the cursor instead"
            )));
        }
        let after = query.cursor.as_deref().map(Cursor::parse).transpose()?;
        let keep = offset + limit + 1;
        let search = query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        let room = query.room.as_deref().map(|r| r.trim().to_ascii_lowercase());
        let mut total = 0usize;
        // A max-heap of the `keep` smallest keys seen so far.
        let mut heap: BinaryHeap<Entry> = BinaryHeap::with_capacity(keep + 1);
        for b in bookings {
            if !self.matches(&b, query, room.as_deref(), search.as_deref()) {
                continue;
            }
            total += 1;
            // Compared borrowed: most records never enter the heap.
            let at = self.sort_at(&b, query.sort);
            let text = self.sort_text(&b, query.sort);
            let key = (text, at, b.match_id.as_str());
            if after
                .as_ref()
                .is_some_and(|c| key <= (c.0.text.as_str(), c.0.at, c.0.id.as_str()))
            {
                continue;
            }
            if heap.len() == keep {
                match heap.peek() {
                    Some(top) if key < (top.key.text.as_str(), top.key.at, top.key.id.as_str()) => {
                        heap.pop();
                    }
                    _ => continue,
                }
            }
            let key = Key {
                at,
                text: text.to_owned(),
                id: b.match_id.as_str().to_owned(),
            };
            heap.push(Entry { key, booking: b });
        }
        let mut ordered = heap.into_sorted_vec();
        let more = ordered.len() > offset + limit;
        ordered.truncate(offset + limit);
        let page: Vec<Entry> = ordered.into_iter().skip(offset).collect();
        let next_cursor = more
            .then(|| page.last().map(|e| Cursor(e.key.clone()).to_string()))
            .flatten();
        Ok(Page {
            items: page.iter().map(|e| self.view(&e.booking)).collect(),
            total,
            next_cursor,
        })
    }

    /// [`ViewPolicy::list`] over every booking in the store; a record that cannot be
    /// read is skipped with a warning.
    pub fn list_store(&self, store: &Store, query: &Query) -> Result<Page, QueryError> {
        self.list(
            store.bookings().filter_map(|r| match r {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(error = %e, "stored booking unreadable; left out of the view");
                    None
                }
            }),
            query,
        )
    }

    /// The detail of one booking from the store; `None` when there is none.
    pub fn detail_store(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<BookingDetail>, orb_store::Error> {
        let Some(b) = store.booking(&MatchId::new(id))? else {
            return Ok(None);
        };
        // The booking's own records, and every record of the processing runs they
        // belong to (the Graph and TOPdesk calls carry the run, not the booking); a
        // record of another booking in a shared run is left out.
        let mut audit = store.audit_by_booking(&b.match_id)?;
        let mut runs: BTreeSet<String> = audit
            .iter()
            .map(|a| a.entry.correlation_id.as_str().to_owned())
            .collect();
        runs.insert(b.correlation_id.as_str().to_owned());
        for run in &runs {
            audit.extend(store.audit_by_correlation(&orb_store::CorrelationId::new(run.as_str()))?);
        }
        audit.retain(|a| a.entry.booking.as_ref().is_none_or(|m| *m == b.match_id));
        audit.sort_by_key(|a| a.id.0);
        audit.dedup_by_key(|a| a.id.0);
        if audit.len() > MAX_AUDIT {
            audit.drain(..audit.len() - MAX_AUDIT);
        }
        Ok(Some(self.detail(&b, &audit)))
    }

    fn matches(&self, b: &Booking, q: &Query, room: Option<&str>, search: Option<&str>) -> bool {
        // A filter over a hidden field matches nothing: it must not reveal the value.
        if let Some(room) = room
            && !(self.shows("room") && b.room.as_str().eq_ignore_ascii_case(room))
        {
            return false;
        }
        if let Some(state) = q.status
            && BookingState::of(b) != state
        {
            return false;
        }
        if (q.from.is_some() || q.to.is_some()) && !self.shows("start") {
            return false;
        }
        if q.from.is_some_and(|from| b.start < from) || q.to.is_some_and(|to| b.start >= to) {
            return false;
        }
        if let Some(needle) = search {
            let organizer = self
                .shows("organizer")
                .then_some(b.organizer.as_deref())
                .flatten();
            let room = self.shows("room").then_some(b.room.as_str());
            let hit = [organizer, room]
                .into_iter()
                .flatten()
                .any(|hay| hay.to_lowercase().contains(needle));
            if !hit {
                return false;
            }
        }
        true
    }

    /// The number part of the sort key (after the text part, before the match id); a
    /// hidden sort field falls back to the match id order alone.
    fn sort_at(&self, b: &Booking, sort: Sort) -> i128 {
        match sort {
            Sort::Start if self.shows("start") => b.start.as_nanosecond(),
            Sort::Updated if self.shows("last_updated_at") => -b.last_updated_at.as_nanosecond(),
            Sort::Failures if self.shows("failed_count") => -i128::from(b.failed_count),
            // By address, then by start within it.
            Sort::Room | Sort::Organizer if self.shows("start") => b.start.as_nanosecond(),
            _ => 0,
        }
    }

    /// The text part of the sort key: the room or organizer address (addresses are
    /// stored lowercase); empty for the other sorts, a hidden field or none. The
    /// number part then orders bookings within one address.
    fn sort_text<'b>(&self, b: &'b Booking, sort: Sort) -> &'b str {
        match sort {
            Sort::Room if self.shows("room") => b.room.as_str(),
            Sort::Organizer if self.shows("organizer") => b.organizer.as_deref().unwrap_or(""),
            _ => "",
        }
    }

    /// The e-mail addresses of `b` the view shows (lowercase); any other address in
    /// an audit text is masked, as it may belong to a hidden field or another booking.
    fn shown_addresses(&self, b: &Booking) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |field: &str, values: &mut dyn Iterator<Item = &str>| {
            if self.shows_of(b, field) {
                out.extend(values.map(str::to_ascii_lowercase));
            }
        };
        add("organizer", &mut b.organizer.as_deref().into_iter());
        add(
            "original_organizer",
            &mut b.original_organizer.as_deref().into_iter(),
        );
        add("room", &mut std::iter::once(b.room.as_str()));
        add("location", &mut b.location.as_deref().into_iter());
        add("attendees", &mut b.attendees.iter().map(String::as_str));
        out
    }

    /// The text forms of every value of `b` this policy hides.
    fn hidden_values(&self, b: &Booking) -> Vec<String> {
        let mut out = Vec::new();
        for name in AGENDA.iter().chain(SYSTEM).chain(STATUS) {
            if self.shows_of(b, name) {
                continue;
            }
            match *name {
                "attendees" => out.extend(b.attendees.iter().cloned()),
                "subject" => out.extend(b.subject.clone()),
                "organizer" => out.extend(b.organizer.clone()),
                "original_organizer" => out.extend(b.original_organizer.clone()),
                "location" => out.extend(b.location.clone()),
                "room" => out.push(b.room.as_str().to_owned()),
                // Numbers, times and status words are too short and common to mask in
                // free text; the trail never carries them as values of this booking.
                _ => {}
            }
        }
        out.retain(|v| v.trim().chars().count() >= 3);
        out
    }
}

/// How a booking stands overall, from the two processors' last status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum BookingState {
    /// Both sides agree.
    InSync,
    /// A write is under way or a side is not yet known.
    Pending,
    /// A write failed and is being retried.
    Failed,
    /// Given up after failures or refused for good; waits for an admin retry (R18).
    Parked,
    /// A side refused the booking (e.g. TOPdesk found the room taken).
    Conflicting,
    /// A removal is held by the mass-cancel guard.
    HeldRemoval,
    /// Cancelled.
    Cancelled,
}

impl BookingState {
    /// Every state, for help texts.
    pub const ALL: &[BookingState] = &[
        Self::InSync,
        Self::Pending,
        Self::Failed,
        Self::Parked,
        Self::Conflicting,
        Self::HeldRemoval,
        Self::Cancelled,
    ];

    /// The state of a stored booking. The status words are those
    /// [`crate::persist::status_text`] stores.
    pub fn of(b: &Booking) -> Self {
        let sides = [b.exchange_status.as_deref(), b.topdesk_status.as_deref()];
        let any = |word: &str| sides.contains(&Some(word));
        if any(crate::persist::CANCELLED) {
            Self::Cancelled
        } else if any("parked") {
            Self::Parked
        } else if any("held removal") {
            Self::HeldRemoval
        } else if any("refused") {
            Self::Conflicting
        } else if any("failed") {
            Self::Failed
        } else if sides.iter().all(|s| *s == Some("in sync")) {
            Self::InSync
        } else {
            Self::Pending
        }
    }

    /// Whether an admin retry applies (failed or parked bookings).
    pub fn retryable(self) -> bool {
        matches!(self, Self::Failed | Self::Parked)
    }

    /// The name used in queries and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InSync => "in-sync",
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Parked => "parked",
            Self::Conflicting => "conflicting",
            Self::HeldRemoval => "held-removal",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses [`BookingState::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for BookingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One group of ORB fields, in display order; serialized as a JSON object. A field the
/// policy hides is not in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group(Vec<(String, Value)>);

impl Group {
    /// The value of `field`, if shown.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == field).map(|(_, v)| v)
    }

    /// The shown fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }
}

impl Serialize for Group {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Group;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of ORB fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Group, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Group(out))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// A booking as everyone may see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookingView {
    /// The booking's handle in the API (`/api/bookings/{id}`): its ORB match id, orb's
    /// own key (no personal data). It is always present; excluding `match_id` removes
    /// the field from the system group only.
    pub id: String,
    /// How the booking stands overall (what the status filter and Retry go by). Always
    /// present: it is derived from both processors' status, even when
    /// `exchange_status` and `topdesk_status` are excluded, since facility staff need it
    /// to find and retry failed bookings (R18).
    pub state: BookingState,
    /// A private (locked) Outlook item: its subject and attendees are never shown.
    pub private: bool,
    /// Agenda: type, organizer, location, room, attendees, subject, start/end,
    /// complexity index, creation date.
    pub agenda: Group,
    /// System: match id, correlation id, processor created, original organizer.
    pub system: Group,
    /// Status: last update (when, by whom), failures, retries, each side's last status.
    pub status: Group,
}

impl BookingView {
    /// The value of a shown field from any group.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.agenda
            .get(name)
            .or_else(|| self.system.get(name))
            .or_else(|| self.status.get(name))
    }
}

/// One audit record in a detail view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    /// When.
    pub at: Timestamp,
    /// Who acted (`graph`, `topdesk`, `engine`, `executor`, `admin`, ...).
    pub actor: String,
    /// What was done.
    pub action: String,
    /// The outcome.
    pub outcome: String,
    /// Free text, hidden values masked.
    pub detail: Option<String>,
}

/// A booking with its audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookingDetail {
    /// The booking.
    pub booking: BookingView,
    /// The records of its correlation id, oldest first.
    pub audit: Vec<AuditView>,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The bookings of this page.
    pub items: Vec<BookingView>,
    /// How many bookings match the filters in all.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The order of a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// By start, earliest first.
    #[default]
    Start,
    /// By last update, newest first.
    Updated,
    /// By failure count, most first (the bookings that need attention on top).
    Failures,
    /// By room address, then start.
    Room,
    /// By organizer address (bookings without one first), then start.
    Organizer,
}

impl Sort {
    /// `start`, `updated`, `failures`, `room` or `organizer`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "start" => Some(Self::Start),
            "updated" => Some(Self::Updated),
            "failures" => Some(Self::Failures),
            "room" => Some(Self::Room),
            "organizer" => Some(Self::Organizer),
            _ => None,
        }
    }

    /// The query-parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Updated => "updated",
            Self::Failures => "failures",
            Self::Room => "room",
            Self::Organizer => "organizer",
        }
    }
}

/// Filters, order and page of a list (query parameters of `GET /api/bookings`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Only this room (mailbox, case-insensitive).
    pub room: Option<String>,
    /// Only bookings in this state.
    pub status: Option<BookingState>,
    /// Only bookings starting at or after this.
    pub from: Option<Timestamp>,
    /// Only bookings starting before this.
    pub to: Option<Timestamp>,
    /// Free text over organizer and room (case-insensitive substring).
    pub search: Option<String>,
    /// The order.
    pub sort: Sort,
    /// Page size (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
    pub limit: Option<usize>,
    /// Bookings to skip (at most [`MAX_OFFSET`]).
    pub offset: Option<usize>,
    /// Continue after this cursor (a previous page's `next_cursor`).
    pub cursor: Option<String>,
}

impl Query {
    /// Reads URL query parameters: `room`, `status`, `from`, `to` (RFC 3339 or a
    /// `YYYY-MM-DD` date in UTC; a date in `to` includes that day), `search`, `sort`
    /// (`start` | `updated` | `failures` | `room` | `organizer`), `limit`, `offset`, `cursor`. Unknown parameters are errors.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, QueryError> {
        let mut q = Self::default();
        for (name, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name {
                "room" => q.room = Some(value.to_owned()),
                "status" => {
                    q.status = Some(BookingState::parse(value).ok_or_else(|| {
                        QueryError(format!(
                            "status: unknown {value:?}; known: {}",
                            BookingState::ALL
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?);
                }
                "from" => q.from = Some(parse_time(value, false)?),
                "to" => q.to = Some(parse_time(value, true)?),
                "search" => q.search = Some(value.to_owned()),
                "sort" => {
                    q.sort = Sort::parse(value).ok_or_else(|| {
                        QueryError(format!(
                            "sort: {value:?}; use start, updated, failures, room or organizer"
                        ))
                    })?;
                }
                "limit" => q.limit = Some(number("limit", value)?),
                "offset" => q.offset = Some(number("offset", value)?),
                "cursor" => q.cursor = Some(value.to_owned()),
                other => return Err(QueryError(format!("unknown parameter {other:?}"))),
            }
        }
        Ok(q)
    }

    /// The query as URL query parameters (the inverse of [`Query::from_pairs`]).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(v) = &self.room {
            out.push(("room", v.clone()));
        }
        if let Some(v) = self.status {
            out.push(("status", v.as_str().to_owned()));
        }
        if let Some(v) = self.from {
            out.push(("from", v.to_string()));
        }
        if let Some(v) = self.to {
            out.push(("to", v.to_string()));
        }
        if let Some(v) = &self.search {
            out.push(("search", v.clone()));
        }
        if self.sort != Sort::Start {
            out.push(("sort", self.sort.as_str().to_owned()));
        }
        if let Some(v) = self.limit {
            out.push(("limit", v.to_string()));
        }
        if let Some(v) = self.offset {
            out.push(("offset", v.to_string()));
        }
        if let Some(v) = &self.cursor {
            out.push(("cursor", v.clone()));
        }
        out
    }
}

/// A query that cannot be answered; the message names the parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// Parses a time bound: RFC 3339, or a `YYYY-MM-DD` date (UTC midnight; with
/// `end_of_day`, the midnight after it).
pub fn parse_time(value: &str, end_of_day: bool) -> Result<Timestamp, QueryError> {
    if let Ok(t) = value.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: jiff::civil::Date = value.parse().map_err(|_| {
        QueryError(format!(
            "{value:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"
        ))
    })?;
    let midnight = date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| QueryError(format!("{value:?}: {e}")))?
        .timestamp();
    Ok(if end_of_day {
        midnight
            .checked_add(SignedDuration::from_hours(24))
            .unwrap_or(midnight)
    } else {
        midnight
    })
}

/// A list page as a readable table (the management fields that are shown).
pub fn render_table(page: &Page) -> String {
    let columns: Vec<&str> = std::iter::once("id")
        .chain(std::iter::once("state"))
        .chain(
            MANAGEMENT_FIELDS
                .iter()
                .copied()
                .filter(|f| page.items.iter().any(|b| b.field(f).is_some())),
        )
        .collect();
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|b| {
            columns
                .iter()
                .map(|c| match *c {
                    "id" => b.id.clone(),
                    "state" => b.state.to_string(),
                    f => b.field(f).map(text).unwrap_or_default(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(c.len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (cell, width) in cells.zip(&widths) {
            let _ = write!(l, "{cell:<width$}  ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &mut columns.iter().copied());
    for row in &rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    let _ = writeln!(
        out,
        "{} of {} booking(s){}",
        page.items.len(),
        page.total,
        page.next_cursor
            .as_deref()
            .map(|c| format!("; next page: --cursor {c}"))
            .unwrap_or_default()
    );
    out
}

/// A detail view as readable text: every shown field in its group, then the trail.
pub fn render_detail(d: &BookingDetail) -> String {
    let b = &d.booking;
    let mut out = format!("booking {}  ({})\n", b.id, b.state);
    if b.private {
        out.push_str("private item: subject and attendees are not shown\n");
    }
    for (title, group) in [
        ("agenda", &b.agenda),
        ("system", &b.system),
        ("status", &b.status),
    ] {
        let _ = writeln!(out, "\n{title}:");
        let width = group.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, value) in group.iter() {
            let _ = writeln!(out, "  {name:<width$}  {}", text(value));
        }
    }
    let _ = writeln!(out, "\naudit trail ({} record(s)):", d.audit.len());
    for a in &d.audit {
        let _ = writeln!(
            out,
            "  {}  {:<8}  {}  {}{}",
            time(a.at),
            a.actor,
            a.action,
            a.outcome,
            a.detail
                .as_deref()
                .map(|t| format!("  ({t})"))
                .unwrap_or_default()
        );
    }
    out
}

/// A time as the text output shows it: UTC, to the second.
pub(crate) fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// A field value as plain text (`-` for none), as every output shows it.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => match s.parse::<Timestamp>() {
            Ok(t) => time(t),
            Err(_) => s.clone(),
        },
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn field_value(b: &Booking, name: &str) -> Value {
    match name {
        "appointment_type" => json!(match b.appointment_type {
            AppointmentType::Single => "single",
            AppointmentType::Recurring => "recurring",
            AppointmentType::Occurrence => "occurrence",
        }),
        "organizer" => json!(b.organizer),
        "location" => json!(b.location),
        "room" => json!(b.room.as_str()),
        "attendees" => json!(b.attendees),
        "subject" => json!(b.subject),
        "start" => json!(b.start),
        "end" => json!(b.end),
        "complexity_index" => json!(b.complexity_index),
        "created_at" => json!(b.created_at),
        "match_id" => json!(b.match_id.as_str()),
        "correlation_id" => json!(b.correlation_id.as_str()),
        "processor_created" => json!(processor(b.processor_created)),
        "original_organizer" => json!(b.original_organizer),
        "last_updated_at" => json!(b.last_updated_at),
        "last_updated_by" => json!(b.last_updated_by.map(processor)),
        "failed_at" => json!(b.failed_at),
        "failed_processor" => json!(b.failed_processor.map(processor)),
        "failed_count" => json!(b.failed_count),
        "retry_count" => json!(b.retry_count),
        "exchange_status" => json!(b.exchange_status),
        "topdesk_status" => json!(b.topdesk_status),
        _ => Value::Null,
    }
}

fn processor(p: Processor) -> &'static str {
    match p {
        Processor::Exchange => "exchange",
        Processor::Topdesk => "topdesk",
    }
}

/// `text` with every occurrence of a hidden value (ASCII case-insensitive, also in its
/// URL-encoded form) replaced by `[hidden]`.
fn mask(text: &str, hidden: &[String]) -> String {
    let mut out = text.to_owned();
    for value in hidden {
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        for needle in [value.as_str(), encoded.as_str()] {
            out = replace_ignore_ascii_case(&out, needle, "[hidden]");
        }
    }
    out
}

/// `text` with every e-mail address (also URL-encoded) not in `shown` replaced by
/// `[hidden]`.
fn mask_addresses(text: &str, shown: &[String]) -> String {
    let is_word = |c: char| c.is_alphanumeric() || "._%+-@".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_ascii_lowercase().replace("%40", "@");
        if lower.contains('@') && !shown.contains(&lower) {
            out.push_str("[hidden]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn replace_ignore_ascii_case(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_owned();
    }
    // ASCII lowercasing keeps byte offsets, so positions found in the copy are valid.
    let lower = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(pos) = lower[rest..].find(&needle) {
        let start = rest + pos;
        out.push_str(&text[rest..start]);
        out.push_str(with);
        rest = start + needle.len();
    }
    out.push_str(&text[rest..]);
    out
}

/// Sort key: the (possibly negated) time, then the match id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// Compared first (the field order is the order of `Ord`).
    text: String,
    at: i128,
    id: String,
}

struct Entry {
    key: Key,
    booking: Booking,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

/// The opaque paging cursor: the last key of a page, as `{at}.x{hex of the text}.{match
/// id}` (the text is the address of the sorts by room or organizer, else empty; hex has
/// no dots, an address and a match id may).
struct Cursor(Key);

impl Cursor {
    fn parse(text: &str) -> Result<Self, QueryError> {
        let bad = || QueryError("cursor: not one this server issued".to_owned());
        let (at, rest) = text.split_once('.').ok_or_else(bad)?;
        let at = at.parse().map_err(|_| bad())?;
        let (hex, id) = rest
            .strip_prefix('x')
            .and_then(|r| r.split_once('.'))
            .ok_or_else(bad)?;
        let text = from_hex(hex).ok_or_else(bad)?;
        Ok(Self(Key {
            text,
            at,
            id: id.to_owned(),
        }))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.x", self.0.at)?;
        for b in self.0.text.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ".{}", self.0.id)
    }
}

fn from_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

fn number(name: &str, value: &str) -> Result<usize, QueryError> {
    value
        .parse()
        .map_err(|_| QueryError(format!("{name}: {value:?} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VIEW_FIELDS;
    use orb_store::{CorrelationId, RoomMailbox};

    const SECRET_SUBJECT: &str = "Merger talks with Initech";

    fn at(hour: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + hour * 3600).unwrap()
    }

    fn booking(id: &str, room: &str, organizer: &str, hour: i64) -> Booking {
        let mut b = Booking::new(
            MatchId::new(id),
            RoomMailbox::new(room),
            at(hour),
            at(hour + 1),
            at(0),
            Processor::Exchange,
            CorrelationId::new(format!("c-{id}")),
        );
        b.organizer = Some(organizer.to_owned());
        b.original_organizer = Some(organizer.to_owned());
        b.location = Some(room.to_owned());
        b.attendees = vec!["carol@example.com".to_owned()];
        b.subject = Some(SECRET_SUBJECT.to_owned());
        b.exchange_status = Some("in sync".to_owned());
        b.topdesk_status = Some("in sync".to_owned());
        b.last_updated_at = at(100 - hour);
        b
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.items.iter().map(|b| b.id.as_str()).collect()
    }

    #[test]
    fn the_three_groups_are_exactly_the_configurable_fields() {
        let mut all: Vec<&str> = AGENDA.iter().chain(SYSTEM).chain(STATUS).copied().collect();
        all.sort_unstable();
        let mut known = VIEW_FIELDS.to_vec();
        known.sort_unstable();
        assert_eq!(all, known);
        for f in MANAGEMENT_FIELDS {
            assert!(VIEW_FIELDS.contains(f), "{f}");
        }
    }

    #[test]
    fn everything_is_shown_by_default_in_its_group() {
        let v = ViewPolicy::new(&[], true).view(&booking("m1", "r@x.com", "a@x.com", 1));
        assert_eq!(v.agenda.iter().count(), AGENDA.len());
        assert_eq!(v.system.iter().count(), SYSTEM.len());
        assert_eq!(v.status.iter().count(), STATUS.len());
        assert_eq!(v.field("subject"), Some(&json!(SECRET_SUBJECT)));
        assert_eq!(v.field("failed_at"), Some(&Value::Null), "unknown is null");
        assert_eq!(v.state, BookingState::InSync);
    }

    #[test]
    fn excluded_fields_are_absent_not_null() {
        let policy = ViewPolicy::new(&["attendees".to_owned(), "organizer".to_owned()], true);
        let v = policy.view(&booking("m1", "r@x.com", "alice@x.com", 1));
        assert_eq!(v.field("attendees"), None);
        assert_eq!(v.field("organizer"), None);
        let json = serde_json::to_string(&v).unwrap();
        assert!(!json.contains("\"attendees\""), "{json}");
        assert!(!json.contains("carol@example.com"), "{json}");
        // The original organizer is a separate field, shown unless excluded too.
        assert_eq!(v.field("original_organizer"), Some(&json!("alice@x.com")));
    }

    #[test]
    fn no_carried_subject_means_no_subject_field_even_if_an_old_record_has_one() {
        let v = ViewPolicy::new(&[], false).view(&booking("m1", "r@x.com", "a@x.com", 1));
        assert_eq!(v.field("subject"), None);
        assert!(!serde_json::to_string(&v).unwrap().contains(SECRET_SUBJECT));
    }

    #[test]
    fn private_items_show_neither_subject_nor_attendees() {
        let mut b = booking("m1", "r@x.com", "a@x.com", 1);
        b.private = true;
        let v = ViewPolicy::new(&[], true).view(&b);
        assert!(v.private);
        assert_eq!(v.field("subject"), None);
        assert_eq!(v.field("attendees"), None);
        assert!(v.field("organizer").is_some());
    }

    #[test]
    fn the_audit_trail_masks_hidden_values() {
        let hide = ["organizer", "original_organizer", "subject"].map(str::to_owned);
        let policy = ViewPolicy::new(&hide, true);
        let b = booking("m1", "r@x.com", "Alice@X.com", 1);
        let mut entry = orb_store::AuditEntry::new(
            at(0),
            b.correlation_id.clone(),
            None,
            "graph",
            "GET /users/alice%40x.com/events",
            "200",
        );
        entry.detail = Some(format!("alice@x.com: {SECRET_SUBJECT}"));
        let d = policy.detail_of(&b, std::iter::once(&entry));
        let json = serde_json::to_string(&d).unwrap().to_ascii_lowercase();
        assert!(!json.contains("alice"), "{json}");
        assert!(!json.contains("merger"), "{json}");
        assert_eq!(d.audit[0].detail.as_deref(), Some("[hidden]: [hidden]"));
        // The rendered text holds the same.
        let text = render_detail(&d).to_ascii_lowercase();
        assert!(
            !text.contains("alice") && !text.contains("merger"),
            "{text}"
        );
    }

    #[test]
    fn addresses_in_the_trail_are_masked_unless_shown() {
        let shown = vec!["room-a@x.com".to_owned()];
        assert_eq!(
            mask_addresses("GET /users/room-a%40x.com/events for Eve@Y.org, ok", &shown),
            "GET /users/room-a%40x.com/events for [hidden], ok"
        );
        let p = ViewPolicy::new(&["attendees".to_owned()], true);
        let b = booking("m1", "room-a@x.com", "alice@x.com", 1);
        let entry = orb_store::AuditEntry::new(
            at(0),
            b.correlation_id.clone(),
            None,
            "graph",
            "GET /users/{id}/events",
            "200",
        );
        let mut with_detail = entry.clone();
        with_detail.detail = Some("carol@example.com".to_owned());
        let mut organizer = entry;
        organizer.detail = Some("alice@x.com".to_owned());
        let d = p.detail_of(&b, [&with_detail, &organizer].into_iter());
        assert_eq!(d.audit[0].detail.as_deref(), Some("[hidden]"));
        assert_eq!(d.audit[1].detail.as_deref(), Some("alice@x.com"));
    }

    #[test]
    fn filters_by_room_state_dates_and_text() {
        let mut parked = booking("m2", "room-b@x.com", "bob@x.com", 2);
        parked.exchange_status = Some("parked".to_owned());
        let mut failed = booking("m3", "room-a@x.com", "carl@x.com", 3);
        failed.topdesk_status = Some("failed".to_owned());
        let mut refused = booking("m4", "room-a@x.com", "dora@x.com", 30);
        refused.topdesk_status = Some("refused".to_owned());
        let all = vec![
            booking("m1", "room-a@x.com", "alice@x.com", 1),
            parked,
            failed,
            refused,
        ];
        let p = ViewPolicy::new(&[], true);
        let list = |q: Query| p.list(all.clone(), &q).unwrap();
        assert_eq!(ids(&list(Query::default())), ["m1", "m2", "m3", "m4"]);
        let room = list(Query {
            room: Some("ROOM-A@x.com".into()),
            ..Query::default()
        });
        assert_eq!(ids(&room), ["m1", "m3", "m4"]);
        for (state, id) in [
            (BookingState::Parked, "m2"),
            (BookingState::Failed, "m3"),
            (BookingState::Conflicting, "m4"),
            (BookingState::InSync, "m1"),
        ] {
            let page = list(Query {
                status: Some(state),
                ..Query::default()
            });
            assert_eq!(ids(&page), [id], "{state}");
        }
        let window = list(Query {
            from: Some(at(2)),
            to: Some(at(4)),
            ..Query::default()
        });
        assert_eq!(ids(&window), ["m2", "m3"]);
        let text = list(Query {
            search: Some("BOB".into()),
            ..Query::default()
        });
        assert_eq!(ids(&text), ["m2"]);
        let by_room_text = list(Query {
            search: Some("room-b".into()),
            ..Query::default()
        });
        assert_eq!(ids(&by_room_text), ["m2"]);
    }

    #[test]
    fn filters_never_look_at_hidden_fields() {
        let all = vec![booking("m1", "room-a@x.com", "alice@x.com", 1)];
        let p = ViewPolicy::new(&["organizer".to_owned(), "room".to_owned()], true);
        for q in [
            Query {
                search: Some("alice".into()),
                ..Query::default()
            },
            Query {
                room: Some("room-a@x.com".into()),
                ..Query::default()
            },
        ] {
            assert_eq!(p.list(all.clone(), &q).unwrap().total, 0, "{q:?}");
        }
    }

    #[test]
    fn sorting_by_a_hidden_address_reveals_nothing_in_the_order_or_the_cursor() {
        let all: Vec<Booking> = (0..12)
            .map(|i| {
                let organizer = format!("person{:02}@x.com", 11 - i);
                booking(&format!("m{i:02}"), "r@x.com", &organizer, i)
            })
            .collect();
        let hidden = ViewPolicy::new(&["organizer".to_owned()], true);
        let page = hidden
            .list(
                all.clone(),
                &Query {
                    sort: Sort::Organizer,
                    limit: Some(5),
                    ..Query::default()
                },
            )
            .unwrap();
        // Not by the hidden organizer (which would reverse them), but by start.
        let ids: Vec<&str> = page.items.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["m00", "m01", "m02", "m03", "m04"]);
        let cursor = page.next_cursor.unwrap();
        let hex: String = "person".bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !cursor.contains(&hex) && !cursor.contains("person"),
            "{cursor}"
        );
        // Shown, the organizer orders them.
        let shown = ViewPolicy::new(&[], true);
        let page = shown
            .list(
                all,
                &Query {
                    sort: Sort::Organizer,
                    limit: Some(2),
                    ..Query::default()
                },
            )
            .unwrap();
        let ids: Vec<&str> = page.items.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["m11", "m10"]);
    }

    #[test]
    fn pages_by_offset_and_by_cursor_cover_everything_once() {
        let all: Vec<Booking> = (0..57)
            .map(|i| {
                // Rooms and organizers with dots (they must survive the cursor) and a
                // booking without an organizer.
                let room = format!("room.{}@x.com", i % 4);
                let organizer = format!("a.{}@x.com", i % 6);
                let mut b = booking(&format!("m.{i:03}"), &room, &organizer, (i * 7) % 23);
                if i == 13 {
                    b.organizer = None;
                }
                b.failed_count = u32::try_from(i % 5).unwrap();
                b
            })
            .collect();
        let p = ViewPolicy::new(&[], true);
        for sort in [
            Sort::Start,
            Sort::Updated,
            Sort::Failures,
            Sort::Room,
            Sort::Organizer,
        ] {
            let full = p
                .list(
                    all.clone(),
                    &Query {
                        sort,
                        limit: Some(MAX_LIMIT),
                        ..Query::default()
                    },
                )
                .unwrap();
            assert_eq!(full.items.len(), 57);
            assert_eq!(full.next_cursor, None);
            // Sorted, ties by id.
            let key = |v: &BookingView| match sort {
                Sort::Start => v.field("start").unwrap().as_str().unwrap().to_owned(),
                Sort::Updated => v
                    .field("last_updated_at")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                Sort::Failures => {
                    format!("{:010}", v.field("failed_count").unwrap().as_u64().unwrap())
                }
                // Address, then start.
                Sort::Room | Sort::Organizer => {
                    let name = if sort == Sort::Room {
                        "room"
                    } else {
                        "organizer"
                    };
                    format!(
                        "{} {}",
                        v.field(name).and_then(|f| f.as_str()).unwrap_or(""),
                        v.field("start").unwrap().as_str().unwrap()
                    )
                }
            };
            for pair in full.items.windows(2) {
                let (a, b) = (key(&pair[0]), key(&pair[1]));
                match sort {
                    Sort::Start | Sort::Room | Sort::Organizer => assert!(a <= b, "{a} > {b}"),
                    Sort::Updated | Sort::Failures => assert!(a >= b),
                }
            }
            let mut by_cursor = Vec::new();
            let mut cursor = None;
            loop {
                let page = p
                    .list(
                        all.clone(),
                        &Query {
                            sort,
                            limit: Some(10),
                            cursor: cursor.clone(),
                            ..Query::default()
                        },
                    )
                    .unwrap();
                assert_eq!(page.total, 57);
                by_cursor.extend(page.items.iter().map(|b| b.id.clone()));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let mut by_offset = Vec::new();
            for offset in (0..57).step_by(10) {
                let page = p
                    .list(
                        all.clone(),
                        &Query {
                            sort,
                            limit: Some(10),
                            offset: Some(offset),
                            ..Query::default()
                        },
                    )
                    .unwrap();
                by_offset.extend(page.items.iter().map(|b| b.id.clone()));
            }
            let expected: Vec<String> = full.items.iter().map(|b| b.id.clone()).collect();
            assert_eq!(by_cursor, expected);
            assert_eq!(by_offset, expected);
        }
    }

    #[test]
    fn bad_queries_are_named() {
        for (pairs, word) in [
            (vec![("status", "broken")], "status"),
            (vec![("from", "yesterday")], "yesterday"),
            (vec![("limit", "many")], "limit"),
            (vec![("colour", "red")], "colour"),
        ] {
            let e = Query::from_pairs(pairs).unwrap_err();
            assert!(e.0.contains(word), "{e}");
        }
        let q = Query::from_pairs([("to", "2027-01-15"), ("status", "parked")]).unwrap();
        assert_eq!(q.to, Some("2027-01-16T00:00:00Z".parse().unwrap()));
        let pairs = q.to_pairs();
        let again = Query::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(again, q);
        assert!(
            ViewPolicy::default()
                .list(
                    Vec::new(),
                    &Query {
                        cursor: Some("nonsense".into()),
                        ..Query::default()
                    }
                )
                .is_err()
        );
    }

    #[test]
    fn a_table_shows_the_management_fields_that_are_shown() {
        let p = ViewPolicy::new(&["organizer".to_owned()], true);
        let page = p
            .list(
                vec![booking("m1", "room-a@x.com", "alice@x.com", 1)],
                &Query::default(),
            )
            .unwrap();
        let table = render_table(&page);
        assert!(table.contains("room-a@x.com"), "{table}");
        assert!(!table.contains("alice"), "{table}");
        assert!(!table.contains("organizer"), "{table}");
        assert!(table.contains("1 of 1 booking(s)"), "{table}");
    }
}
