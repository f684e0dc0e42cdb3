//! Shared helpers.

use std::path::Path;

use jiff::Timestamp;
use orb_store::{Booking, MasterKey, Processor, Store};

/// A fixed master key for tests.
pub(crate) fn key() -> MasterKey {
    MasterKey::from_bytes([42; 32])
}

/// Seconds since the epoch (around 2027 to look realistic).
pub(crate) fn ts(sec: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + sec).unwrap()
}

pub(crate) fn open(dir: &Path) -> Store {
    Store::open(dir, &key()).unwrap()
}

/// A fresh store in a temporary directory (the directory lives as long as the guard).
pub(crate) fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db"));
    (dir, store)
}

/// A booking with only the required fields.
pub(crate) fn booking(id: &str) -> Booking {
    Booking::new(
        id.into(),
        "room-1@example.com".into(),
        ts(3600),
        ts(7200),
        ts(0),
        Processor::Exchange,
        "corr-1".into(),
    )
}

/// A booking with every field set.
pub(crate) fn full_booking(id: &str) -> Booking {
    let mut b = booking(id);
    b.original_organizer = Some("alice@example.com".into());
    b.appointment_type = orb_store::AppointmentType::Occurrence;
    b.organizer = Some("bob@example.com".into());
    b.location = Some("Room 1; Beamer".into());
    b.attendees = vec!["carol@example.com".into(), "dave@example.com".into()];
    b.subject = Some("Quarterly review".into());
    b.private = true;
    b.complexity_index = 3;
    b.last_updated_at = ts(10);
    b.last_updated_by = Some(Processor::Topdesk);
    b.failed_at = Some(ts(11));
    b.failed_processor = Some(Processor::Exchange);
    b.failed_count = 2;
    b.retry_count = 1;
    b.exchange_status = Some("updated".into());
    b.topdesk_status = Some("refused: room closed".into());
    b.organizer_event_id = Some(format!("oe-{id}").into());
    b.room_event_id = Some(format!("re-{id}").into());
    b.ical_uid = Some(format!("ical-{id}").into());
    b.occurrence_start = Some(ts(3600));
    b.topdesk_reservation_id = Some(format!("td-{id}").into());
    b.topdesk_reservation_number = Some(format!("R-{id}").into());
    b.series_master = Some("master".into());
    b.exchange_fingerprint = Some("ck-1".into());
    b.topdesk_fingerprint = Some("mod-2".into());
    b
}

/// Whether `needle` occurs in any file below `dir`.
pub(crate) fn bytes_on_disk(dir: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                return true;
            }
        }
    }
    false
}
