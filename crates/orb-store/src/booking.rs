//! The booking record (the ORB fields plus correlation data) and its secondary indexes.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::codec::{opt_ts, push_len_prefixed, time_key, ts};
use crate::ids::{
    CorrelationId, Fingerprint, GraphEventId, IcalUid, MatchId, RoomMailbox, TopdeskReservationId,
    TopdeskReservationNumber,
};

/// Which side (or orb itself) did something to a booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Processor {
    /// The Exchange (Microsoft Graph) processor.
    Exchange,
    /// The TOPdesk processor.
    Topdesk,
}

/// The ORB field "appointment type".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppointmentType {
    /// A single, non-recurring meeting.
    Single,
    /// The master of a recurring series.
    Recurring,
    /// One occurrence (possibly an exception) of a recurring series; its
    /// [`Booking::series_master`] points at the master.
    Occurrence,
}

/// Everything orb keeps about one booking: the ORB fields (agenda, system, status) and
/// the ids needed to correlate both sides.
///
/// Construct with [`Booking::new`] and set the public fields. The store maintains one
/// secondary index per correlation id; see [`crate::Store::save_booking`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Booking {
    // --- system ---
    /// ORB match id: orb's own key.
    pub match_id: MatchId,
    /// Correlation id of the processing run that last touched the booking.
    pub correlation_id: CorrelationId,
    /// Which side created the booking.
    pub processor_created: Processor,
    /// The organizer when orb first saw the booking; set once, never changed.
    pub original_organizer: Option<String>,

    // --- agenda ---
    /// Single, recurring series master, or occurrence.
    pub appointment_type: AppointmentType,
    /// Organizer e-mail address.
    pub organizer: Option<String>,
    /// Location text (all resources; informational).
    pub location: Option<String>,
    /// The managed room (its mailbox address).
    pub room: RoomMailbox,
    /// Attendee e-mail addresses.
    pub attendees: Vec<String>,
    /// Subject; `None` when subjects are excluded by configuration or the item is private.
    pub subject: Option<String>,
    /// Whether the Outlook item is private (locked): processed, content never exposed.
    pub private: bool,
    /// Start (UTC).
    #[serde(with = "ts")]
    pub start: Timestamp,
    /// End (UTC).
    #[serde(with = "ts")]
    pub end: Timestamp,
    /// Complexity index: how often the booking changed.
    pub complexity_index: u32,
    /// When the booking first reached orb.
    #[serde(with = "ts")]
    pub created_at: Timestamp,

    // --- status ---
    /// When the booking was last updated.
    #[serde(with = "ts")]
    pub last_updated_at: Timestamp,
    /// Which processor last updated it.
    pub last_updated_by: Option<Processor>,
    /// When processing last failed.
    #[serde(with = "opt_ts")]
    pub failed_at: Option<Timestamp>,
    /// Which processor failed.
    pub failed_processor: Option<Processor>,
    /// How many times processing failed.
    pub failed_count: u32,
    /// How many times processing was retried.
    pub retry_count: u32,
    /// Last status reported by the Exchange processor.
    pub exchange_status: Option<String>,
    /// Last status reported by the TOPdesk processor.
    pub topdesk_status: Option<String>,

    // --- correlation ---
    /// Event id in the organizer's calendar.
    pub organizer_event_id: Option<GraphEventId>,
    /// Event id in the room mailbox's calendar (unique among bookings).
    pub room_event_id: Option<GraphEventId>,
    /// The meeting's `iCalUId`.
    pub ical_uid: Option<IcalUid>,
    /// For occurrences: the original start of the occurrence within its series.
    #[serde(with = "opt_ts")]
    pub occurrence_start: Option<Timestamp>,
    /// The TOPdesk reservation id (unique among bookings).
    pub topdesk_reservation_id: Option<TopdeskReservationId>,
    /// The TOPdesk reservation number (unique among bookings).
    pub topdesk_reservation_number: Option<TopdeskReservationNumber>,
    /// For occurrences: the booking of the series master.
    pub series_master: Option<MatchId>,
    /// Fingerprint of the Exchange side as last seen or written by orb.
    pub exchange_fingerprint: Option<Fingerprint>,
    /// Fingerprint of the TOPdesk side as last seen or written by orb.
    pub topdesk_fingerprint: Option<Fingerprint>,
}

impl Booking {
    /// A new single booking with the required fields; everything else empty or zero,
    /// `last_updated_at` = `created_at`.
    pub fn new(
        match_id: MatchId,
        room: RoomMailbox,
        start: Timestamp,
        end: Timestamp,
        created_at: Timestamp,
        processor_created: Processor,
        correlation_id: CorrelationId,
    ) -> Self {
        Self {
            match_id,
            correlation_id,
            processor_created,
            original_organizer: None,
            appointment_type: AppointmentType::Single,
            organizer: None,
            location: None,
            room,
            attendees: Vec::new(),
            subject: None,
            private: false,
            start,
            end,
            complexity_index: 0,
            created_at,
            last_updated_at: created_at,
            last_updated_by: None,
            failed_at: None,
            failed_processor: None,
            failed_count: 0,
            retry_count: 0,
            exchange_status: None,
            topdesk_status: None,
            organizer_event_id: None,
            room_event_id: None,
            ical_uid: None,
            occurrence_start: None,
            topdesk_reservation_id: None,
            topdesk_reservation_number: None,
            series_master: None,
            exchange_fingerprint: None,
            topdesk_fingerprint: None,
        }
    }
}

/// Index kinds, the first byte of every key in the index tree. Values are part of the
/// on-disk format: never renumber.
pub(crate) mod kind {
    pub(crate) const ROOM_EVENT: u8 = 1;
    pub(crate) const TOPDESK_ID: u8 = 2;
    pub(crate) const TOPDESK_NUMBER: u8 = 3;
    pub(crate) const ORGANIZER_EVENT: u8 = 10;
    pub(crate) const ICAL: u8 = 11;
    pub(crate) const ROOM: u8 = 12;
    pub(crate) const SERIES_MASTER: u8 = 13;
    /// Added in format 2.
    pub(crate) const CORRELATION: u8 = 14;
}

/// One entry a booking contributes to the index tree. The entry's value is always the
/// booking's match id.
///
/// Unique entries have key `kind ‖ lp(value)`; multi entries have key
/// `kind ‖ value parts ‖ lp(match id)` so several bookings can share a value and a
/// prefix scan over `kind ‖ value parts` finds them all (`lp` = `u32` BE length prefix).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IndexEntry {
    pub(crate) key: Vec<u8>,
    /// `Some(name)` for unique indexes (used in the conflict error).
    pub(crate) unique: Option<&'static str>,
}

pub(crate) fn unique_key(kind: u8, value: &str) -> Vec<u8> {
    let mut k = vec![kind];
    push_len_prefixed(&mut k, value.as_bytes());
    k
}

pub(crate) fn multi_prefix(kind: u8, value: &str) -> Vec<u8> {
    unique_key(kind, value)
}

pub(crate) fn ical_prefix(uid: &IcalUid, occurrence: Option<Option<Timestamp>>) -> Vec<u8> {
    let mut k = multi_prefix(kind::ICAL, uid.as_str());
    match occurrence {
        None => {}
        Some(None) => k.push(0),
        Some(Some(t)) => {
            k.push(1);
            k.extend_from_slice(&time_key(t));
        }
    }
    k
}

fn multi(prefix: Vec<u8>, id: &MatchId) -> IndexEntry {
    let mut key = prefix;
    push_len_prefixed(&mut key, id.as_str().as_bytes());
    IndexEntry { key, unique: None }
}

/// The index entries of `b` under the given format version.
pub(crate) fn index_entries(b: &Booking, format: u32) -> Vec<IndexEntry> {
    let id = &b.match_id;
    let mut out = Vec::with_capacity(8);
    if let Some(v) = &b.room_event_id {
        out.push(IndexEntry {
            key: unique_key(kind::ROOM_EVENT, v.as_str()),
            unique: Some("room event id"),
        });
    }
    if let Some(v) = &b.topdesk_reservation_id {
        out.push(IndexEntry {
            key: unique_key(kind::TOPDESK_ID, v.as_str()),
            unique: Some("topdesk reservation id"),
        });
    }
    if let Some(v) = &b.topdesk_reservation_number {
        out.push(IndexEntry {
            key: unique_key(kind::TOPDESK_NUMBER, v.as_str()),
            unique: Some("topdesk reservation number"),
        });
    }
    if let Some(v) = &b.organizer_event_id {
        out.push(multi(multi_prefix(kind::ORGANIZER_EVENT, v.as_str()), id));
    }
    if let Some(v) = &b.ical_uid {
        out.push(multi(ical_prefix(v, Some(b.occurrence_start)), id));
    }
    out.push(multi(multi_prefix(kind::ROOM, b.room.as_str()), id));
    if let Some(v) = &b.series_master {
        out.push(multi(multi_prefix(kind::SERIES_MASTER, v.as_str()), id));
    }
    if format >= 2 {
        out.push(multi(
            multi_prefix(kind::CORRELATION, b.correlation_id.as_str()),
            id,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Booking {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        Booking::new(
            "m1".into(),
            "room@x".into(),
            t,
            t,
            t,
            Processor::Exchange,
            "c1".into(),
        )
    }

    #[test]
    fn minimal_booking_has_room_and_correlation_entries() {
        let e = index_entries(&sample(), 2);
        assert_eq!(e.len(), 2);
        assert_eq!(index_entries(&sample(), 1).len(), 1);
    }

    #[test]
    fn ical_prefix_nests() {
        let uid = IcalUid::new("u");
        let t = Timestamp::from_second(5).unwrap();
        let all = ical_prefix(&uid, None);
        assert!(ical_prefix(&uid, Some(Some(t))).starts_with(&all));
        assert!(ical_prefix(&uid, Some(None)).starts_with(&all));
        // a longer uid sharing a textual prefix never matches
        assert!(!ical_prefix(&IcalUid::new("uu"), None).starts_with(&all));
    }

    #[test]
    fn all_fields_produce_entries() {
        let mut b = sample();
        b.room_event_id = Some("re".into());
        b.organizer_event_id = Some("oe".into());
        b.ical_uid = Some("ic".into());
        b.topdesk_reservation_id = Some("td".into());
        b.topdesk_reservation_number = Some("R1".into());
        b.series_master = Some("m0".into());
        let e = index_entries(&b, 2);
        assert_eq!(e.len(), 8);
        assert_eq!(e.iter().filter(|e| e.unique.is_some()).count(), 3);
    }
}
