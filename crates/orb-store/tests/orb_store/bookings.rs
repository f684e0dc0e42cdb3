//! Bookings and their secondary indexes.

use orb_store::{Error, GraphEventId, IcalUid, MatchId};

use super::common::{booking, fresh, full_booking, open, ts};

#[test]
fn every_orb_field_round_trips_and_survives_reopen() {
    let (dir, store) = fresh();
    let b = full_booking("m1");
    store.save_booking(&b).unwrap();
    assert_eq!(store.booking(&"m1".into()).unwrap(), Some(b.clone()));
    drop(store);
    let store = open(&dir.path().join("db"));
    assert_eq!(store.booking(&"m1".into()).unwrap(), Some(b));
    assert_eq!(store.booking(&"nope".into()).unwrap(), None);
    store.verify_integrity().unwrap();
}

#[test]
fn every_index_finds_the_booking() {
    let (_dir, store) = fresh();
    let b = full_booking("m1");
    store.save_booking(&b).unwrap();
    let one = Some(b.clone());
    assert_eq!(store.booking_by_room_event(&"re-m1".into()).unwrap(), one);
    assert_eq!(store.booking_by_topdesk_id(&"td-m1".into()).unwrap(), one);
    assert_eq!(
        store.booking_by_topdesk_number(&"R-m1".into()).unwrap(),
        one
    );
    let v = vec![b.clone()];
    assert_eq!(
        store.bookings_by_organizer_event(&"oe-m1".into()).unwrap(),
        v
    );
    assert_eq!(store.bookings_by_ical_uid(&"ical-m1".into()).unwrap(), v);
    assert_eq!(
        store
            .bookings_by_ical_occurrence(&"ical-m1".into(), Some(ts(3600)))
            .unwrap(),
        v
    );
    assert!(
        store
            .bookings_by_ical_occurrence(&"ical-m1".into(), Some(ts(1)))
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .bookings_by_ical_occurrence(&"ical-m1".into(), None)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .bookings_in_room(&"room-1@example.com".into())
            .unwrap(),
        v
    );
    assert_eq!(store.series_occurrences(&"master".into()).unwrap(), v);
    assert_eq!(store.bookings_by_correlation(&"corr-1".into()).unwrap(), v);
    // Prefix safety: a value that is a textual prefix of another never matches.
    assert!(
        store
            .booking_by_room_event(&"re-m".into())
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .bookings_by_ical_uid(&"ical-m".into())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn updating_moves_index_entries() {
    let (_dir, store) = fresh();
    let mut b = full_booking("m1");
    store.save_booking(&b).unwrap();
    b.room_event_id = Some("re-new".into());
    b.topdesk_reservation_id = None;
    b.room = "room-2@example.com".into();
    b.correlation_id = "corr-2".into();
    b.complexity_index += 1;
    store.save_booking(&b).unwrap();
    assert!(
        store
            .booking_by_room_event(&"re-m1".into())
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.booking_by_room_event(&"re-new".into()).unwrap(),
        Some(b.clone())
    );
    assert!(
        store
            .booking_by_topdesk_id(&"td-m1".into())
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .bookings_in_room(&"room-1@example.com".into())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .bookings_in_room(&"room-2@example.com".into())
            .unwrap(),
        vec![b.clone()]
    );
    assert!(
        store
            .bookings_by_correlation(&"corr-1".into())
            .unwrap()
            .is_empty()
    );
    store.verify_integrity().unwrap();
}

#[test]
fn unique_ids_conflict_and_nothing_is_written() {
    let (_dir, store) = fresh();
    store.save_booking(&full_booking("a")).unwrap();
    let mut b = full_booking("b");
    b.topdesk_reservation_number = Some("R-a".into());
    let err = store.save_booking(&b).unwrap_err();
    assert!(
        matches!(&err, Error::IndexConflict { index: "topdesk reservation number", holder } if holder == "a"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "topdesk reservation number is already used by booking a"
    );
    assert!(store.booking(&"b".into()).unwrap().is_none());
    assert!(
        store
            .booking_by_room_event(&"re-b".into())
            .unwrap()
            .is_none()
    );
    store.verify_integrity().unwrap();
    // Non-unique ids may be shared (a multi-room meeting has one organizer event).
    let mut c = full_booking("c");
    c.organizer_event_id = Some("oe-a".into());
    c.ical_uid = Some("ical-a".into());
    store.save_booking(&c).unwrap();
    let ids: Vec<MatchId> = store
        .bookings_by_organizer_event(&GraphEventId::new("oe-a"))
        .unwrap()
        .into_iter()
        .map(|b| b.match_id)
        .collect();
    assert_eq!(ids, vec![MatchId::new("a"), MatchId::new("c")]);
    assert_eq!(
        store
            .bookings_by_ical_uid(&IcalUid::new("ical-a"))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn delete_removes_record_and_indexes_and_is_idempotent() {
    let (_dir, store) = fresh();
    store.save_booking(&full_booking("m1")).unwrap();
    store.save_booking(&booking("m2")).unwrap();
    assert_eq!(store.booking_count(), 2);
    store.delete_booking(&"m1".into()).unwrap();
    store.delete_booking(&"m1".into()).unwrap();
    assert!(store.booking(&"m1".into()).unwrap().is_none());
    assert!(
        store
            .booking_by_topdesk_id(&"td-m1".into())
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .series_occurrences(&"master".into())
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.booking_count(), 1);
    // The unique id is free again.
    let mut b = booking("m3");
    b.topdesk_reservation_id = Some("td-m1".into());
    store.save_booking(&b).unwrap();
    store.verify_integrity().unwrap();
}

#[test]
fn bookings_iterate_in_match_id_order() {
    let (_dir, store) = fresh();
    for id in ["c", "a", "b"] {
        store.save_booking(&booking(id)).unwrap();
    }
    let ids: Vec<String> = store
        .bookings()
        .map(|b| b.unwrap().match_id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn series_with_an_occurrence_moved_to_another_room() {
    // R17: a series where one occurrence is booked in another room.
    let (_dir, store) = fresh();
    let mut master = booking("series");
    master.appointment_type = orb_store::AppointmentType::Recurring;
    master.ical_uid = Some("uid".into());
    store.save_booking(&master).unwrap();
    for (i, room) in [
        "room-1@example.com",
        "room-2@example.com",
        "room-1@example.com",
    ]
    .iter()
    .enumerate()
    {
        let mut o = booking(&format!("occ-{i}"));
        o.appointment_type = orb_store::AppointmentType::Occurrence;
        o.room = (*room).into();
        o.ical_uid = Some("uid".into());
        o.occurrence_start = Some(ts(86_400 * i as i64));
        o.series_master = Some("series".into());
        store.save_booking(&o).unwrap();
    }
    assert_eq!(store.series_occurrences(&"series".into()).unwrap().len(), 3);
    assert_eq!(store.bookings_by_ical_uid(&"uid".into()).unwrap().len(), 4);
    let moved = store
        .bookings_by_ical_occurrence(&"uid".into(), Some(ts(86_400)))
        .unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].room.as_str(), "room-2@example.com");
    assert_eq!(
        store
            .bookings_by_ical_occurrence(&"uid".into(), None)
            .unwrap()[0]
            .match_id,
        MatchId::new("series")
    );
    assert_eq!(
        store
            .bookings_in_room(&"room-1@example.com".into())
            .unwrap()
            .len(),
        3
    );
}
