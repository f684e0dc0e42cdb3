//! TOPdesk accepts a booking but marks the room double-booked: the room declines the
//! meeting in Exchange, and the booking stays visible as conflicting — never dropped
//! silently.

use orb_emulators::graph::RoomOptions;
use orb_emulators::topdesk::DoubleBooking;

use super::world::{ALICE, BOB, ROOM, World, in_days, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_topdesk_marks_conflicting_is_declined_by_the_room() {
    let world = World::start().await;
    // Exchange lets the room hold both meetings; TOPdesk accepts the second one but
    // marks it `conflictingPlanned`.
    world.graph.set_room_options(
        ROOM,
        RoomOptions {
            delete_subject: false,
            add_organizer_to_subject: false,
            allow_conflicts: true,
            ..RoomOptions::default()
        },
    );
    world
        .topdesk
        .set_double_booking(DoubleBooking::MarkConflicting);

    let start = in_days(1);
    let first = world.book_in_topdesk(BOB, "Budget review", start, 60);
    world
        .event_where("Bob's meeting in Exchange", BOB, |e| {
            e["subject"] == "Budget review"
        })
        .await;

    let alice_event = world.book_in_outlook("Team sync", start, 60);
    let conflicting = world
        .reservation_where("Alice's reservation, marked conflicting", |r| {
            r.brief_description == "Team sync" && r.status == "conflictingPlanned"
        })
        .await;
    assert_ne!(conflicting.id, first);

    // The room declines Alice's meeting: its copy leaves the room calendar and Alice
    // sees the room's answer.
    world
        .event_where("the room declined in Alice's calendar", ALICE, |e| {
            e["id"] == alice_event.as_str()
                && e["attendees"].as_array().is_some_and(|list| {
                    list.iter().any(|a| {
                        a["emailAddress"]["address"]
                            .as_str()
                            .is_some_and(|m| m.eq_ignore_ascii_case(ROOM))
                            && a["status"]["response"] == "declined"
                    })
                })
        })
        .await;
    assert!(
        world
            .graph
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/decline")),
        "orb declined through Graph"
    );

    // Bob's booking is untouched; Alice's is never silently dropped: it is recorded
    // as refused by TOPdesk, and its reservation does not linger as a live booking.
    assert!(
        world
            .reservations()
            .iter()
            .any(|r| r.id == first && r.status == "planned")
    );
    until("Alice's booking is visible as refused or cancelled", || {
        world
            .daemon()
            .store()
            .bookings()
            .filter_map(Result::ok)
            .any(|b| {
                b.subject.as_deref() == Some("Team sync")
                    && matches!(b.topdesk_status.as_deref(), Some("refused" | "cancelled"))
            })
    })
    .await;
    world.stop().await;
}
