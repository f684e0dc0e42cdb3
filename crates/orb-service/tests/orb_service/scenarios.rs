//! The scenario suite beyond the demo (issue 8), on the demo's world: three rooms, five
//! people, mail to organizers enabled, the real daemon against both emulators.
//!
//! Scenarios of the suite that live elsewhere, not repeated here:
//! - room-only mode: `e2e::room_only_mode_writes_topdesk_bookings_into_the_room_calendar`;
//! - a notification lost and recovered by delta:
//!   `lifecycle::missed_notifications_are_recovered_by_a_delta_round`;
//! - delta token expiry (`400 SyncStateNotFound`):
//!   `lifecycle::an_expired_delta_token_falls_back_to_a_full_listing` (the `410 Gone`
//!   variant is below);
//! - mailbox denied by an access policy, reported while the other mailboxes sync on:
//!   `e2e::a_mailbox_outside_the_apps_scope_parks_the_booking_and_the_sync_goes_on`;
//! - the demo's own scenarios: `demo`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orb_emulators::graph::{Fault, RoomOptions};
use orb_emulators::topdesk::ReservationSnapshot;
use orb_service::demo::{ALICE, BOB, DemoRoom, DemoWorld, FACILITIES, ROOM_2_14};
use orb_service::runtime::Control;
use orb_topdesk_client::{PersonId, ReservationRef, ReservationUpdate};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

fn graph_time(t: Timestamp) -> Value {
    json!({"dateTime": t.strftime("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"})
}

fn meeting(subject: &str, room: &DemoRoom, start: Timestamp, end: Timestamp) -> Value {
    json!({
        "subject": subject,
        "start": graph_time(start),
        "end": graph_time(end),
        "location": {"displayName": room.name, "locationEmailAddress": room.mailbox},
        "attendees": [
            {"type": "resource", "emailAddress": {"address": room.mailbox, "name": room.name}},
            {"type": "required", "emailAddress": {"address": BOB}},
        ],
    })
}

fn with_subject(world: &DemoWorld, subject: &str) -> Vec<ReservationSnapshot> {
    world
        .topdesk()
        .reservations()
        .into_iter()
        .filter(|r| r.brief_description == subject)
        .collect()
}

async fn settle(world: &DemoWorld) {
    world.graph().flush_notifications().await;
    wait(world, "orb to settle", |w| w.settled().then_some(())).await;
}

fn delta_requests(world: &DemoWorld) -> Vec<u16> {
    world
        .graph()
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/calendarView/delta"))
        .map(|r| r.status)
        .collect()
}

/// Polls `check` within the world's patience; fails the test with a diagnosis.
async fn wait<T>(world: &DemoWorld, what: &str, check: impl Fn(&DemoWorld) -> Option<T>) -> T {
    match world.until(what, check).await {
        Ok(value) => value,
        Err(e) => panic!("{e}\n{}", diagnosis(world)),
    }
}

/// Both sides and orb's records, for failure messages.
fn diagnosis(world: &DemoWorld) -> String {
    let audit = world
        .daemon()
        .store()
        .audit_since(Timestamp::UNIX_EPOCH, 100_000)
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {} {:?}",
                a.entry.actor,
                a.entry.action,
                a.entry.outcome,
                a.entry.correlation_id,
                a.entry.detail
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "reservations: {:#?}\nbookings: {:#?}\nsummary:\n{}\naudit:\n{audit}",
        world.topdesk().reservations(),
        world.bookings(),
        world.summary()
    )
}

fn active_event(world: &DemoWorld, mailbox: &str, subject: &str) -> Option<Value> {
    world
        .graph()
        .events(mailbox)
        .into_iter()
        .find(|e| e["subject"] == subject && e["isCancelled"] == false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_change_in_topdesk_moves_the_meeting_to_the_new_organizers_calendar() {
    let world = DemoWorld::start(PATIENCE).await.unwrap();
    let room = world.room(ROOM_2_14).unwrap().clone();
    let (start, end) = (world.slot(1, 9), world.slot(1, 10));
    let id = world
        .topdesk()
        .create_reservation(json!({
            "requester": {"id": world.person(BOB).unwrap().person_id},
            "briefDescription": "Handover",
            "plannedStartDate": start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "plannedEndDate": end.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "reservedFacilities": [{"location": {"id": room.location_id}}],
        }))
        .unwrap();
    wait(&world, "Bob's meeting", |w| {
        active_event(w, BOB, "Handover")
    })
    .await;
    settle(&world).await;

    // The facilities desk hands the booking to Alice.
    world
        .operator()
        .update_reservation(
            &ReservationRef::Id(id.as_str().into()),
            &ReservationUpdate {
                requester: Some(PersonId::new(
                    world.person(ALICE).unwrap().person_id.clone(),
                )),
                ..ReservationUpdate::default()
            },
        )
        .await
        .unwrap();
    let moved = wait(&world, "the meeting in Alice's calendar", |w| {
        active_event(w, ALICE, "Handover").filter(|e| e["isOrganizer"] == true)
    })
    .await;
    assert!(
        moved["attendees"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["type"] == "resource" && a["emailAddress"]["address"] == ROOM_2_14),
        "the room is invited: {moved:#}"
    );
    wait(&world, "the meeting gone from Bob's calendar", |w| {
        active_event(w, BOB, "Handover").is_none().then_some(())
    })
    .await;
    // The room holds Alice's meeting only.
    wait(&world, "the room's calendar to follow", |w| {
        let live: Vec<Value> = w
            .graph()
            .events(ROOM_2_14)
            .into_iter()
            .filter(|e| e["isCancelled"] == false)
            .collect();
        (live.len() == 1 && live[0]["iCalUId"] == moved["iCalUId"]).then_some(())
    })
    .await;
    settle(&world).await;
    let reservations = with_subject(&world, "Handover");
    assert_eq!(reservations.len(), 1, "{reservations:#?}");
    assert_eq!(reservations[0].status, "planned");
    assert_eq!(
        reservations[0].requester_id,
        world.person(ALICE).unwrap().person_id
    );
    let bookings = world.bookings();
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0].organizer.as_deref(), Some(ALICE));
    assert_eq!(bookings[0].original_organizer.as_deref(), Some(BOB));
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_notifications_make_one_reservation() {
    let world = DemoWorld::start(PATIENCE).await.unwrap();
    let room = world.room(ROOM_2_14).unwrap().clone();
    world
        .graph()
        .inject(Fault::DuplicateNotifications { times: 4 });
    let (start, end) = (world.slot(2, 9), world.slot(2, 10));
    let id = world
        .graph()
        .create_event_as(ALICE, meeting("Twice told", &room, start, end))
        .unwrap();
    wait(&world, "the reservation", |w| {
        w.reservation(|r| r.brief_description == "Twice told")
    })
    .await;
    let later = world.slot(2, 11);
    world
        .graph()
        .update_event_as(
            ALICE,
            &id,
            json!({"start": graph_time(later), "end": graph_time(later + SignedDuration::from_hours(1))}),
        )
        .unwrap();
    wait(&world, "the moved reservation", |w| {
        w.reservation(|r| r.brief_description == "Twice told" && r.start == later)
    })
    .await;
    settle(&world).await;

    let changes: Vec<Vec<u8>> = world
        .graph()
        .deliveries()
        .into_iter()
        .filter(|d| d.kind == orb_emulators::graph::DeliveryKind::Change)
        .map(|d| d.body)
        .collect();
    let distinct: std::collections::BTreeSet<&Vec<u8>> = changes.iter().collect();
    assert!(
        distinct.len() < changes.len(),
        "the emulator delivered duplicates"
    );
    let reservations = with_subject(&world, "Twice told");
    assert_eq!(reservations.len(), 1, "{reservations:#?}");
    assert_eq!(reservations[0].start, later);
    assert_eq!(world.bookings().len(), 1);
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_notifications_converge_on_the_latest_version() {
    let world = DemoWorld::start(PATIENCE).await.unwrap();
    let room = world.room(ROOM_2_14).unwrap().clone();
    // The creation and the move of the room's copy are delivered in reverse order.
    world
        .graph()
        .inject(Fault::ReorderNotifications { batch: 2 });
    let (start, end) = (world.slot(2, 9), world.slot(2, 10));
    let id = world
        .graph()
        .create_event_as(ALICE, meeting("Reordered", &room, start, end))
        .unwrap();
    // The move is made in a later second than the creation. orb tells versions apart by
    // `lastModifiedDateTime`, which Graph writes to 100 ns but the emulator to the whole
    // second: two versions within one second look equally new, and the one delivered
    // last would win until the next delta round.
    world.graph().advance_clock(Duration::from_secs(2));
    let later = world.slot(2, 13);
    world
        .graph()
        .update_event_as(
            ALICE,
            &id,
            json!({"start": graph_time(later), "end": graph_time(later + SignedDuration::from_hours(1))}),
        )
        .unwrap();
    wait(&world, "the reservation at the latest time", |w| {
        w.reservation(|r| {
            r.brief_description == "Reordered" && r.start == later && r.status == "planned"
        })
    })
    .await;
    settle(&world).await;
    let order: Vec<String> = world
        .graph()
        .deliveries()
        .into_iter()
        .filter(|d| d.kind == orb_emulators::graph::DeliveryKind::Change)
        .map(|d| {
            let body: Value = serde_json::from_slice(&d.body).unwrap();
            body["value"][0]["changeType"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(order, ["updated", "created"], "delivered in reverse");
    // The older version, delivered last, did not move it back.
    let reservations = with_subject(&world, "Reordered");
    assert_eq!(reservations.len(), 1, "{reservations:#?}");
    assert_eq!(reservations[0].start, later);
    assert_eq!(world.bookings().len(), 1);
    assert_eq!(world.bookings()[0].start, later);
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_token_answered_with_410_gone_falls_back_to_a_full_listing() {
    let world = DemoWorld::start(PATIENCE).await.unwrap();
    let room = world.room(ROOM_2_14).unwrap().clone();
    wait(&world, "a first delta round of every room", |w| {
        (delta_requests(w).len() >= w.rooms().len()).then_some(())
    })
    .await;
    // Exchange's sync state is reset and the next notification is lost.
    world
        .graph()
        .inject(Fault::ExpireDeltaTokens { gone: true });
    world.graph().inject(Fault::DropNotifications { times: 1 });
    let (start, end) = (world.slot(2, 9), world.slot(2, 10));
    world
        .graph()
        .create_event_as(ALICE, meeting("After a reset", &room, start, end))
        .unwrap();
    wait(&world, "the recovered reservation", |w| {
        w.reservation(|r| r.brief_description == "After a reset" && r.status == "planned")
    })
    .await;
    // The dropped delivery need not be this meeting's (seen once in eight loaded runs:
    // the booking arrived by notification before the `missed` lifecycle notification's
    // delta round had run), so the 410 is waited for, not assumed at this point.
    wait(&world, "the reset token refused with 410", |w| {
        delta_requests(w).contains(&410).then_some(())
    })
    .await;
    // Another round of every room changes nothing.
    let rounds = delta_requests(&world).len();
    world.daemon().control(Control::ResyncExchange);
    wait(&world, "another round of every room", |w| {
        (delta_requests(w).len() >= rounds + w.rooms().len()).then_some(())
    })
    .await;
    settle(&world).await;
    assert_eq!(with_subject(&world, "After a reset").len(), 1);
    assert_eq!(world.bookings().len(), 1);
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_booking_topdesk_refuses_is_declined_and_mailed_to_the_organizer() {
    let world = DemoWorld::start(PATIENCE).await.unwrap();
    let room = world.room(ROOM_2_14).unwrap().clone();
    // Exchange lets the room hold overlapping meetings; TOPdesk (by default) refuses a
    // double booking.
    world.graph().set_room_options(
        ROOM_2_14,
        RoomOptions {
            delete_subject: false,
            add_organizer_to_subject: false,
            allow_conflicts: true,
            ..RoomOptions::default()
        },
    );
    let (start, end) = (world.slot(1, 9), world.slot(1, 10));
    world
        .topdesk()
        .create_reservation(json!({
            "requester": {"id": world.person(BOB).unwrap().person_id},
            "briefDescription": "Already booked",
            "plannedStartDate": start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "plannedEndDate": end.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "reservedFacilities": [{"location": {"id": room.location_id}}],
        }))
        .unwrap();
    wait(&world, "Bob's meeting", |w| {
        active_event(w, BOB, "Already booked")
    })
    .await;

    let half_past = start + SignedDuration::from_mins(30);
    world
        .graph()
        .create_event_as(
            ALICE,
            meeting(
                "Clash",
                &room,
                half_past,
                half_past + SignedDuration::from_hours(1),
            ),
        )
        .unwrap();
    let mail = wait(&world, "a mail to Alice", |w| {
        w.graph().sent_mail().into_iter().find(|m| {
            m.message["toRecipients"]
                .as_array()
                .is_some_and(|to| to.iter().any(|r| r["emailAddress"]["address"] == ALICE))
        })
    })
    .await;
    assert_eq!(
        mail.from, FACILITIES,
        "sent from the configured mailbox only"
    );
    assert!(
        !mail.message["body"]["content"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "the mail says why: {:#}",
        mail.message
    );
    // The booking stays visible in orb as refused, and TOPdesk holds only Bob's.
    wait(&world, "orb's record of the refused booking", |w| {
        w.bookings()
            .into_iter()
            .find(|b| b.subject.as_deref() == Some("Clash") && b.topdesk_reservation_id.is_none())
    })
    .await;
    // And in Outlook the room declines: Alice sees its answer on her meeting.
    wait(&world, "the room's decline in Alice's calendar", |w| {
        active_event(w, ALICE, "Clash").filter(|e| {
            e["attendees"].as_array().is_some_and(|list| {
                list.iter().any(|a| {
                    a["emailAddress"]["address"] == ROOM_2_14
                        && a["status"]["response"] == "declined"
                })
            })
        })
    })
    .await;
    settle(&world).await;
    assert!(with_subject(&world, "Clash").is_empty());
    assert_eq!(with_subject(&world, "Already booked").len(), 1);
    assert_eq!(
        world.graph().sent_mail().len(),
        1,
        "one mail, not one per retry"
    );
    world.stop().await.unwrap();
}
