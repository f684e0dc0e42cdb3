//! The engine's bookings as orb-store records and back.
//!
//! orb-store keeps the ORB fields (R13) plus the ids that correlate both sides, and next
//! to each record, in the same transaction, the engine's whole booking (each side's last
//! seen content, the write in flight, generations, retries) as an opaque, sealed
//! [`engine_state`]. On start the engine's [`State`] is restored from those exactly.
//! A write that was in flight when the previous run stopped is resumed: its `since` is
//! moved back by the in-flight timeout, so the first tick has the engine issue the very
//! same effect again (same effect id, same idempotency key), and creates find what an
//! earlier execution made instead of duplicating it.
//!
//! A record without an engine state (written before format 4, saved by a tool that
//! does not know the engine, or one whose state this build cannot read) is rebuilt from
//! its ORB fields instead, with both sides' last seen content set to the stored agreed
//! content and nothing in flight; the first delta round and TOPdesk poll then observe
//! both sides again, and any difference flows through the engine as an ordinary change.

use std::sync::Arc;

use jiff::Timestamp;
use orb_reconcile::{
    Appointment, Booking, BookingStatus, Bookkeeping, Content, CorrelationId, EmailAddress,
    ExchangeLink, GraphEventId, IcalUid, OrbMatchId, PersonEntry, RoomMailbox, Side, SideStatus,
    State, SyncMode, TopdeskLink, TopdeskReservationId,
};
use orb_store::{AppointmentType, MatchId, Processor, Store};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The status text stored for a cancelled booking, on both processors.
pub const CANCELLED: &str = "cancelled";

/// The store record of an engine booking, with every ORB field. With `carry_subject`
/// false the subject is never stored (R15); a private item's subject never is either.
pub fn to_record(b: &Booking, carry_subject: bool) -> orb_store::Booking {
    let d = &b.desired;
    let m = &b.meta;
    let mut r = orb_store::Booking::new(
        MatchId::new(b.match_id.as_str()),
        orb_store::RoomMailbox::new(d.room.as_str()),
        d.start,
        d.end,
        m.created_at,
        processor(m.processor_created),
        orb_store::CorrelationId::new(m.correlation.as_str()),
    );
    r.original_organizer = Some(m.original_organizer.as_str().to_owned());
    r.appointment_type = match &b.appointment {
        Appointment::Single => AppointmentType::Single,
        Appointment::ExchangeOccurrence { .. } | Appointment::TopdeskSeries(_) => {
            AppointmentType::Occurrence
        }
    };
    if let Appointment::ExchangeOccurrence { original_start, .. } = &b.appointment {
        r.occurrence_start = Some(*original_start);
    }
    r.organizer = Some(d.organizer.as_str().to_owned());
    r.location = Some(d.room.as_str().to_owned());
    r.attendees = d.attendees.iter().map(|a| a.as_str().to_owned()).collect();
    r.subject = if carry_subject && !b.private {
        d.subject.as_deref().map(str::to_owned)
    } else {
        None
    };
    r.private = b.private;
    r.complexity_index = m.complexity_index;
    r.last_updated_at = m.last_updated_at;
    r.last_updated_by = Some(processor(m.last_updated_by));
    r.failed_at = m.failed_at;
    r.failed_processor = m.failed_by.map(processor);
    r.failed_count = m.failed_count;
    r.retry_count = m.retry_count;
    r.exchange_status = Some(status_text(b, Side::Exchange));
    r.topdesk_status = Some(status_text(b, Side::Topdesk));
    r.organizer_event_id = b
        .exchange
        .event
        .as_ref()
        .map(|e| orb_store::GraphEventId::new(e.as_str()));
    r.room_event_id = b
        .exchange
        .room_copy
        .as_ref()
        .map(|e| orb_store::GraphEventId::new(e.as_str()));
    r.ical_uid = b
        .exchange
        .ical_uid
        .as_ref()
        .map(|u| orb_store::IcalUid::new(u.as_str()));
    r.topdesk_reservation_id = b
        .topdesk
        .reservation
        .as_ref()
        .map(|t| orb_store::TopdeskReservationId::new(t.as_str()));
    r
}

/// Rebuilds an engine booking from its record (see the module docs for what is lost).
/// `None` when the record holds values the engine cannot accept (an invalid address).
pub fn from_record(r: &orb_store::Booking, mode: SyncMode) -> Option<Booking> {
    let room = RoomMailbox::parse(r.room.as_str()).ok()?;
    let organizer = r
        .organizer
        .as_deref()
        .or(r.original_organizer.as_deref())
        .and_then(|o| EmailAddress::parse(o).ok())
        .unwrap_or_else(|| room.to_email());
    let attendees: Arc<[EmailAddress]> = r
        .attendees
        .iter()
        .filter_map(|a| EmailAddress::parse(a).ok())
        .collect();
    let cancelled = r.exchange_status.as_deref() == Some(CANCELLED)
        || r.topdesk_status.as_deref() == Some(CANCELLED);
    let desired = Content {
        room: room.clone(),
        start: r.start,
        end: r.end,
        subject: r.subject.as_deref().map(Arc::from),
        organizer: organizer.clone(),
        attendees,
        cancelled,
    };
    let room_copy = r
        .room_event_id
        .as_ref()
        .and_then(|e| GraphEventId::new(e.as_str()).ok());
    let ical_uid = r
        .ical_uid
        .as_ref()
        .and_then(|u| IcalUid::new(u.as_str()).ok());
    let event = r
        .organizer_event_id
        .as_ref()
        .and_then(|e| GraphEventId::new(e.as_str()).ok());
    let reservation = r
        .topdesk_reservation_id
        .as_ref()
        .and_then(|t| TopdeskReservationId::new(t.as_str()).ok());
    let processor_created = side(r.processor_created);
    let exchange_known = room_copy.is_some() || ical_uid.is_some() || event.is_some();
    let orb_created = processor_created == Side::Topdesk;
    let calendar = match mode {
        SyncMode::Organizer => Some(organizer.clone()),
        SyncMode::RoomOnly => Some(room.to_email()),
    };
    let appointment = match (r.appointment_type, r.occurrence_start) {
        (AppointmentType::Occurrence, Some(original_start)) => {
            // The master id is not stored; a later delta round re-links the occurrence.
            match room_copy.clone() {
                Some(master) => Appointment::ExchangeOccurrence {
                    master,
                    original_start,
                },
                None => Appointment::Single,
            }
        }
        _ => Appointment::Single,
    };
    let match_id = OrbMatchId::new(r.match_id.as_str()).ok()?;
    Some(Booking {
        match_id,
        private: r.private,
        appointment,
        exchange: ExchangeLink {
            room: exchange_known.then(|| room.clone()),
            room_copy,
            ical_uid,
            event,
            calendar: (exchange_known || orb_created)
                .then_some(calendar)
                .flatten(),
            orb_created,
            generation: 0,
            base: exchange_known.then(|| desired.clone()),
            modified_at: None,
            in_flight: None,
            attempts: 0,
            retired: Vec::new(),
            held: Vec::new(),
            unconfirmed_create: None,
            declined: None,
            status: if exchange_known {
                SideStatus::InSync
            } else {
                SideStatus::Unknown
            },
        },
        topdesk: TopdeskLink {
            base: reservation.as_ref().map(|_| desired.clone()),
            reservation,
            retired: Vec::new(),
            requester: None,
            generation: 0,
            modified_at: None,
            in_flight: None,
            attempts: 0,
            status: SideStatus::InSync,
        },
        status: BookingStatus::Active,
        meta: Bookkeeping {
            complexity_index: r.complexity_index,
            created_at: r.created_at,
            processor_created,
            original_organizer: r
                .original_organizer
                .as_deref()
                .and_then(|o| EmailAddress::parse(o).ok())
                .unwrap_or(organizer),
            last_updated_at: r.last_updated_at,
            last_updated_by: r.last_updated_by.map_or(processor_created, side),
            failed_at: r.failed_at,
            failed_by: r.failed_processor.map(side),
            failed_count: r.failed_count,
            retry_count: r.retry_count,
            conflicts: 0,
            correlation: CorrelationId::new(r.correlation_id.as_str())
                .unwrap_or_else(|_| CorrelationId::derive(&["restored", r.match_id.as_str()])),
        },
        next_seq: 1,
        retry_at: None,
        awaiting_person: None,
        desired,
    })
}

/// The version of the [`engine_state`] envelope; another version is not read (the
/// record is rebuilt from its ORB fields instead).
pub const ENGINE_STATE_VERSION: u32 = 1;

#[derive(Serialize)]
struct EngineStateOut<'a> {
    version: u32,
    booking: &'a Booking,
}

#[derive(Deserialize)]
struct EngineStateIn {
    version: u32,
    booking: Booking,
}

/// The engine's booking as the opaque bytes stored beside its record (JSON in a
/// versioned envelope: a field orb-reconcile adds later as an `Option` still reads).
/// `None` if it cannot be serialized; the record alone is stored then.
pub fn engine_state(b: &Booking) -> Option<Vec<u8>> {
    serde_json::to_vec(&EngineStateOut {
        version: ENGINE_STATE_VERSION,
        booking: b,
    })
    .ok()
}

/// The engine's booking from stored bytes, if they are this build's envelope and belong
/// to `record`.
pub fn from_engine_state(bytes: &[u8], record: &orb_store::Booking) -> Option<Booking> {
    let state: EngineStateIn = serde_json::from_slice(bytes).ok()?;
    (state.version == ENGINE_STATE_VERSION
        && state.booking.match_id.as_str() == record.match_id.as_str())
    .then_some(state.booking)
}

/// The engine state from every stored booking: exactly as the engine left it where an
/// engine state was stored, else rebuilt from the ORB fields (see the module docs).
/// Writes in flight are made due at `now` (they are resumed by the first tick), and so
/// are the person lookups restored bookings wait for (the person cache is not stored:
/// each is looked up again). Records the engine cannot read are skipped with a warning.
pub fn load_state(
    store: &Store,
    config: &orb_reconcile::Config,
    now: Timestamp,
) -> Result<State, Error> {
    let mut bookings = Vec::new();
    let mut lookups = Vec::new();
    let (mut restored, mut rebuilt) = (0usize, 0usize);
    let due = now.checked_sub(config.in_flight_timeout).unwrap_or(now);
    for record in store.bookings() {
        let record = record?;
        let state = match store.engine_state(&record.match_id) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(match_id = %record.match_id, error = %e, "engine state unreadable; rebuilding from the record");
                None
            }
        };
        if let Some(mut b) = state.and_then(|bytes| from_engine_state(&bytes, &record)) {
            for flight in [&mut b.exchange.in_flight, &mut b.topdesk.in_flight]
                .into_iter()
                .flatten()
            {
                // Its execution died with the previous run: issue it again at once.
                flight.since = flight.since.min(due);
            }
            if let Some(email) = &b.awaiting_person {
                lookups.push((email.clone(), PersonEntry::Pending(due)));
            }
            restored += 1;
            bookings.push(b);
            continue;
        }
        match from_record(&record, config.mode) {
            Some(b) => {
                rebuilt += 1;
                bookings.push(b);
            }
            None => {
                tracing::warn!(match_id = %record.match_id, "stored booking skipped: unreadable")
            }
        }
    }
    tracing::info!(restored, rebuilt, "engine state loaded");
    Ok(State::from_parts(bookings, lookups))
}

/// How a side stands, as the ORB status fields show it.
pub fn status_text(b: &Booking, side: Side) -> String {
    if b.desired.cancelled {
        return CANCELLED.to_owned();
    }
    match &b.status {
        BookingStatus::Parked { .. } => return "parked".to_owned(),
        BookingStatus::Conflict { side: s, .. } if *s == side => return "refused".to_owned(),
        BookingStatus::HeldRemoval { .. } => return "held removal".to_owned(),
        _ => {}
    }
    let status = match side {
        Side::Exchange => b.exchange.status,
        Side::Topdesk => b.topdesk.status,
    };
    match status {
        SideStatus::Unknown => "unknown",
        SideStatus::InSync => "in sync",
        SideStatus::Writing => "writing",
        SideStatus::Failed => "failed",
        SideStatus::Refused => "refused",
    }
    .to_owned()
}

fn processor(side: Side) -> Processor {
    match side {
        Side::Exchange => Processor::Exchange,
        Side::Topdesk => Processor::Topdesk,
    }
}

fn side(p: Processor) -> Side {
    match p {
        Processor::Exchange => Side::Exchange,
        Processor::Topdesk => Side::Topdesk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    #[test]
    fn record_round_trip_keeps_the_agreed_content_and_ids() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        let room = RoomMailbox::parse("room-2.14@example.com").unwrap();
        let alice = EmailAddress::parse("alice@example.com").unwrap();
        let desired = Content {
            room: room.clone(),
            start: t,
            end: t + jiff::SignedDuration::from_hours(1),
            subject: Some(Arc::from("Planning")),
            organizer: alice.clone(),
            attendees: Arc::from(vec![EmailAddress::parse("bob@example.com").unwrap()]),
            cancelled: false,
        };
        let r = orb_store::Booking::new(
            MatchId::new("x-1"),
            orb_store::RoomMailbox::new(room.as_str()),
            desired.start,
            desired.end,
            t,
            Processor::Exchange,
            orb_store::CorrelationId::new("c-1"),
        );
        let mut r = r;
        r.organizer = Some(alice.as_str().to_owned());
        r.attendees = vec!["bob@example.com".to_owned()];
        r.subject = Some("Planning".to_owned());
        r.room_event_id = Some(orb_store::GraphEventId::new("ev-1"));
        r.ical_uid = Some(orb_store::IcalUid::new("uid-1"));
        r.topdesk_reservation_id = Some(orb_store::TopdeskReservationId::new("res-1"));
        let b = from_record(&r, SyncMode::Organizer).unwrap();
        assert_eq!(b.desired, desired);
        assert_eq!(b.exchange.base.as_ref(), Some(&desired));
        assert_eq!(b.topdesk.reservation.as_ref().unwrap().as_str(), "res-1");
        let again = to_record(&b, true);
        assert_eq!(again.room_event_id, r.room_event_id);
        assert_eq!(again.topdesk_reservation_id, r.topdesk_reservation_id);
        assert_eq!(again.subject.as_deref(), Some("Planning"));
        assert_eq!(to_record(&b, false).subject, None);
    }

    #[test]
    fn the_engine_state_round_trips_and_belongs_to_its_record() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        let mut r = orb_store::Booking::new(
            MatchId::new("x-1"),
            orb_store::RoomMailbox::new("room-2.14@example.com"),
            t,
            t + jiff::SignedDuration::from_hours(1),
            t,
            Processor::Topdesk,
            orb_store::CorrelationId::new("c-1"),
        );
        r.organizer = Some("alice@example.com".to_owned());
        let mut b = from_record(&r, SyncMode::Organizer).unwrap();
        b.exchange.generation = 7;
        b.next_seq = 12;
        let bytes = engine_state(&b).unwrap();
        assert_eq!(from_engine_state(&bytes, &r), Some(b.clone()));
        // Another record's state, or another envelope version, is not taken.
        let mut other = r.clone();
        other.match_id = MatchId::new("x-2");
        assert_eq!(from_engine_state(&bytes, &other), None);
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["version"] = serde_json::json!(ENGINE_STATE_VERSION + 1);
        assert_eq!(
            from_engine_state(&serde_json::to_vec(&v).unwrap(), &r),
            None
        );
        assert_eq!(from_engine_state(b"not json", &r), None);
    }
}
