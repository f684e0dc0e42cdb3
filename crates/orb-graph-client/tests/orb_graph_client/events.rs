//! Events: create with a room, the room's copy, read, find, update, cancel, delete,
//! series, paging and the Prefer headers.

use jiff::civil::{Weekday, date};
use orb_emulators::graph::RoomOptions;
use orb_graph_client::{
    AttendeeType, Error, EventKind, EventPatch, NewAttendee, OrbMatchId, Recurrence,
    RecurrencePattern, RecurrenceRange, ResponseType, RoomBooking, RoomMailbox, When,
};

use super::support::*;

#[tokio::test]
async fn a_meeting_books_the_room_which_keeps_a_copy_with_the_same_ical_uid() {
    let world = World::start().await;
    let client = world.client();
    let created = client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "m-1"))
        .await
        .unwrap();
    assert_eq!(
        created.orb_match_id.as_ref().map(OrbMatchId::as_str),
        Some("m-1")
    );
    assert_eq!(created.transaction_id.as_deref(), Some("tx-m-1"));
    assert!(created.is_organizer);
    let room_loc = created.location.clone().unwrap();
    assert_eq!(room_loc.email.as_deref(), Some(ROOM_A));
    let uid = created.ical_uid.clone().unwrap();

    // The room accepted: the organizer's copy shows it.
    let organizer_copy = client
        .get_event(&mailbox(ALICE), &created.id)
        .await
        .unwrap();
    let room = organizer_copy
        .attendees
        .iter()
        .find(|a| a.kind == AttendeeType::Resource)
        .unwrap();
    assert_eq!(room.response, ResponseType::Accepted);

    // The room's copy: same iCalUId, subject replaced by the organizer's name, no
    // extended property, not the organizer.
    let copies = client
        .find_events_by_ical_uid(&mailbox(ROOM_A), &uid)
        .await
        .unwrap();
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    assert_ne!(copy.id, created.id);
    assert!(!copy.is_organizer);
    assert_eq!(copy.subject.as_deref(), Some("Alice Example"));
    assert_eq!(copy.orb_match_id, None);
    assert_eq!(copy.when, created.when);
    assert_eq!(
        copy.organizer.as_ref().map(|o| o.address.as_str()),
        Some(ALICE)
    );

    // Every request asked for immutable ids and UTC.
    for r in world.emulator.requests() {
        assert!(
            r.prefer.iter().any(|p| p == "IdType=\"ImmutableId\""),
            "{r:?}"
        );
        assert!(
            r.prefer.iter().any(|p| p == "outlook.timezone=\"UTC\""),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn room_processing_options_shape_the_copy_subject() {
    let world = World::start().await;
    world.emulator.set_room_options(
        ROOM_B,
        RoomOptions {
            delete_subject: false,
            add_organizer_to_subject: false,
            ..RoomOptions::default()
        },
    );
    let client = world.client();
    let ev = client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_B), "m-2"))
        .await
        .unwrap();
    let copy = &client
        .find_events_by_ical_uid(&mailbox(ROOM_B), ev.ical_uid.as_ref().unwrap())
        .await
        .unwrap()[0];
    assert_eq!(copy.subject.as_deref(), Some("Planning m-2"));
}

#[tokio::test]
async fn a_busy_room_declines() {
    let world = World::start().await;
    let client = world.client();
    client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "first"))
        .await
        .unwrap();
    let second = client
        .create_event(&mailbox(BOB), &meeting(9, Some(ROOM_A), "second"))
        .await
        .unwrap();
    let second = client.get_event(&mailbox(BOB), &second.id).await.unwrap();
    let room = second
        .attendees
        .iter()
        .find(|a| a.kind == AttendeeType::Resource)
        .unwrap();
    assert_eq!(room.response, ResponseType::Declined);
    let (start, end) = day_window();
    let room_view = client
        .calendar_view(&mailbox(ROOM_A), start, end)
        .await
        .unwrap();
    assert_eq!(room_view.len(), 1);
}

#[tokio::test]
async fn find_by_match_id_and_transaction_id_make_creates_idempotent() {
    let world = World::start().await;
    let client = world.client();
    let first = client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "m-3"))
        .await
        .unwrap();
    // A retried create with the same transactionId yields the same event.
    let again = client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "m-3"))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    let found = client
        .find_events_by_match_id(&mailbox(ALICE), &OrbMatchId::new("M-3").unwrap())
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "value comparison is case-insensitive");
    assert_eq!(found[0].id, first.id);
    let none = client
        .find_events_by_match_id(&mailbox(ALICE), &OrbMatchId::new("m-404").unwrap())
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn updates_and_room_changes_propagate_to_the_rooms() {
    let world = World::start().await;
    let client = world.client();
    let ev = client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "m-4"))
        .await
        .unwrap();
    let uid = ev.ical_uid.clone().unwrap();
    let later = When::Timed {
        start: ts("2030-03-04T14:00:00Z"),
        end: ts("2030-03-04T15:30:00Z"),
    };
    let updated = client
        .update_event(
            &mailbox(ALICE),
            &ev.id,
            &EventPatch {
                when: Some(later.clone()),
                subject: Some("Renamed".into()),
                ..EventPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.when, later);
    assert_eq!(updated.subject.as_deref(), Some("Renamed"));
    let copy = &client
        .find_events_by_ical_uid(&mailbox(ROOM_A), &uid)
        .await
        .unwrap()[0];
    assert_eq!(copy.when, later);

    // Move the meeting to room B: A's copy is cancelled, B gets one.
    client
        .update_event(
            &mailbox(ALICE),
            &ev.id,
            &EventPatch {
                room: Some(Some(RoomBooking {
                    mailbox: RoomMailbox::new(ROOM_B).unwrap(),
                    display_name: "Room B".into(),
                })),
                attendees: Some(vec![NewAttendee {
                    address: BOB.into(),
                    name: None,
                    kind: AttendeeType::Required,
                }]),
                ..EventPatch::default()
            },
        )
        .await
        .unwrap();
    let a = &client
        .find_events_by_ical_uid(&mailbox(ROOM_A), &uid)
        .await
        .unwrap()[0];
    assert!(a.is_cancelled);
    let b = &client
        .find_events_by_ical_uid(&mailbox(ROOM_B), &uid)
        .await
        .unwrap()[0];
    assert!(!b.is_cancelled);
    // Bob, a person, got a copy awaiting his answer.
    let bob = &client
        .find_events_by_ical_uid(&mailbox(BOB), &uid)
        .await
        .unwrap()[0];
    assert_eq!(bob.response, Some(ResponseType::NotResponded));

    // A room change without the attendee list is refused before anything is sent.
    let err = client
        .update_event(
            &mailbox(ALICE),
            &ev.id,
            &EventPatch {
                room: Some(None),
                ..EventPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}

#[tokio::test]
async fn cancel_with_comment_and_delete() {
    let world = World::start().await;
    let client = world.client();
    let ev = client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "m-5"))
        .await
        .unwrap();
    let uid = ev.ical_uid.clone().unwrap();
    // Only the organizer may cancel.
    let copy = client
        .find_events_by_ical_uid(&mailbox(ROOM_A), &uid)
        .await
        .unwrap()[0]
        .clone();
    let err = client
        .cancel_event(&mailbox(ROOM_A), &copy.id, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Graph { status: 400, .. }), "{err:?}");
    client
        .cancel_event(
            &mailbox(ALICE),
            &ev.id,
            Some("TOPdesk reservation cancelled"),
        )
        .await
        .unwrap();
    let err = client.get_event(&mailbox(ALICE), &ev.id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { ref code, .. } if code == "ErrorItemNotFound"));
    let copy = client.get_event(&mailbox(ROOM_A), &copy.id).await.unwrap();
    assert!(copy.is_cancelled);

    // Delete by the organizer also cancels; a room that removes cancelled meetings
    // drops its copy.
    world.emulator.set_room_options(
        ROOM_B,
        RoomOptions {
            remove_canceled_meetings: true,
            ..RoomOptions::default()
        },
    );
    let ev = client
        .create_event(&mailbox(ALICE), &meeting(11, Some(ROOM_B), "m-6"))
        .await
        .unwrap();
    client.delete_event(&mailbox(ALICE), &ev.id).await.unwrap();
    let left = client
        .find_events_by_ical_uid(&mailbox(ROOM_B), ev.ical_uid.as_ref().unwrap())
        .await
        .unwrap();
    assert!(left.is_empty());
}

fn weekly_series(match_id: &str) -> orb_graph_client::NewEvent {
    let mut m = meeting(9, Some(ROOM_A), match_id);
    m.recurrence = Some(Recurrence {
        pattern: RecurrencePattern::Weekly {
            interval: 1,
            days: vec![Weekday::Monday],
            first_day_of_week: Weekday::Monday,
        },
        range: RecurrenceRange::Numbered {
            start: date(2030, 3, 4),
            count: 4,
        },
        time_zone: None,
    });
    m
}

#[tokio::test]
async fn series_expand_with_exceptions_cancellations_and_a_moved_occurrence() {
    let world = World::start().await;
    let client = world.client();
    let master = client
        .create_event(&mailbox(ALICE), &weekly_series("series-1"))
        .await
        .unwrap();
    assert_eq!(master.kind, EventKind::SeriesMaster);
    assert!(master.recurrence.is_some());
    let (start, end) = day_window();
    let instances = client
        .instances(&mailbox(ALICE), &master.id, start, end)
        .await
        .unwrap();
    assert_eq!(instances.len(), 4);
    assert!(instances.iter().all(|i| i.kind == EventKind::Occurrence
        && i.series_master_id.as_ref() == Some(&master.id)
        && i.original_start.is_some()));
    let uids: std::collections::BTreeSet<_> =
        instances.iter().map(|i| i.ical_uid.clone()).collect();
    assert_eq!(uids.len(), 4, "each occurrence has its own iCalUId");

    // Second occurrence: one hour later (an exception).
    client
        .update_event(
            &mailbox(ALICE),
            &instances[1].id,
            &EventPatch {
                when: Some(When::Timed {
                    start: ts("2030-03-11T10:00:00Z"),
                    end: ts("2030-03-11T11:00:00Z"),
                }),
                ..EventPatch::default()
            },
        )
        .await
        .unwrap();
    // Third occurrence: cancelled.
    client
        .cancel_event(&mailbox(ALICE), &instances[2].id, None)
        .await
        .unwrap();
    // Fourth occurrence: moved to room B.
    client
        .update_event(
            &mailbox(ALICE),
            &instances[3].id,
            &EventPatch {
                room: Some(Some(RoomBooking {
                    mailbox: RoomMailbox::new(ROOM_B).unwrap(),
                    display_name: "Room B".into(),
                })),
                attendees: Some(vec![]),
                ..EventPatch::default()
            },
        )
        .await
        .unwrap();

    let view = client
        .calendar_view(&mailbox(ALICE), start, end)
        .await
        .unwrap();
    let kinds: Vec<EventKind> = view.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Occurrence,
            EventKind::Exception,
            EventKind::Exception
        ]
    );
    assert_eq!(
        view[1].when,
        When::Timed {
            start: ts("2030-03-11T10:00:00Z"),
            end: ts("2030-03-11T11:00:00Z")
        }
    );

    // Room A: first occurrence and the moved-in-time exception; not the cancelled or
    // the one moved to room B.
    let room_a = client
        .calendar_view(&mailbox(ROOM_A), start, end)
        .await
        .unwrap();
    let a_starts: Vec<When> = room_a.iter().map(|e| e.when.clone()).collect();
    assert_eq!(a_starts, [view[0].when.clone(), view[1].when.clone()]);
    // Room B holds the moved occurrence, correlated by the occurrence's iCalUId.
    let room_b = client
        .calendar_view(&mailbox(ROOM_B), start, end)
        .await
        .unwrap();
    assert_eq!(room_b.len(), 1);
    assert_eq!(room_b[0].ical_uid, view[2].ical_uid);
    assert_eq!(room_b[0].when, view[2].when);
}

#[tokio::test]
async fn calendar_view_follows_next_links() {
    let world = World::start().await;
    let client = world.client();
    for i in 0..12u8 {
        let mut m = meeting(8, None, &format!("p-{i}"));
        m.when = When::Timed {
            start: ts(&format!("2030-03-{:02}T08:00:00Z", i + 2)),
            end: ts(&format!("2030-03-{:02}T09:00:00Z", i + 2)),
        };
        client.create_event(&mailbox(ALICE), &m).await.unwrap();
    }
    let (start, end) = day_window();
    let all = client
        .calendar_view(&mailbox(ALICE), start, end)
        .await
        .unwrap();
    assert_eq!(all.len(), 12);
    let pages = world
        .audit()
        .iter()
        .filter(|r| r.operation == "calendar_view")
        .count();
    assert_eq!(pages, 2, "Graph's default page size is 10");
}

#[tokio::test]
async fn all_day_events_round_trip() {
    let world = World::start().await;
    let client = world.client();
    let mut m = meeting(9, Some(ROOM_A), "all-day");
    m.when = When::AllDay {
        start: date(2030, 3, 5),
        end: date(2030, 3, 6),
    };
    let ev = client.create_event(&mailbox(ALICE), &m).await.unwrap();
    assert_eq!(ev.when, m.when);
}

#[tokio::test]
async fn unknown_events_and_mailboxes_are_typed() {
    let world = World::start().await;
    let client = world.client();
    let missing = orb_graph_client::GraphEventId::new("AAMk-missing").unwrap();
    assert!(matches!(
        client.get_event(&mailbox(ALICE), &missing).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        client.get_event(&mailbox("ghost@example.com"), &missing).await,
        Err(Error::NotFound { ref code, .. }) if code == "ErrorInvalidUser"
    ));
}

#[tokio::test]
async fn a_room_declines_and_the_organizer_sees_it() {
    let world = World::start().await;
    let client = world.client();
    let ev = client
        .create_event(&mailbox(ALICE), &meeting(13, Some(ROOM_A), "m-decline"))
        .await
        .unwrap();
    let uid = ev.ical_uid.clone().unwrap();
    let copy = client
        .find_events_by_ical_uid(&mailbox(ROOM_A), &uid)
        .await
        .unwrap()[0]
        .clone();
    // The organizer cannot decline their own meeting.
    let err = client
        .decline_event(&mailbox(ALICE), &ev.id, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Graph { status: 400, .. }), "{err:?}");

    client
        .decline_event(
            &mailbox(ROOM_A),
            &copy.id,
            Some("TOPdesk: room double-booked"),
        )
        .await
        .unwrap();
    // The room's copy leaves its calendar; the organizer's copy shows the answer.
    assert!(
        client
            .find_events_by_ical_uid(&mailbox(ROOM_A), &uid)
            .await
            .unwrap()
            .is_empty()
    );
    let organizer = client.get_event(&mailbox(ALICE), &ev.id).await.unwrap();
    let room = organizer
        .attendees
        .iter()
        .find(|a| a.email.address.eq_ignore_ascii_case(ROOM_A))
        .unwrap();
    assert_eq!(room.response, ResponseType::Declined);
    assert!(
        world
            .emulator
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/decline")),
        "the decline went over the wire"
    );
}
