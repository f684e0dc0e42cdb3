//! Bookings flowing both ways through the running daemon: create, update, cancel.

use jiff::SignedDuration;
use orb_store::Processor;
use orb_topdesk_client::{ReservationRef, ReservationUpdate};

use super::world::{ALICE, BOB, ROOM, World, eventually, in_days, until};

fn stored(world: &World) -> Vec<orb_store::Booking> {
    world
        .daemon()
        .store()
        .bookings()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outlook_booking_becomes_a_topdesk_reservation_with_the_orb_fields() {
    let world = World::start().await;
    let start = in_days(2);
    world.book_in_outlook("Quarterly planning", start, 60);

    let reservation = world
        .reservation_where("the reservation", |r| r.status == "planned")
        .await;
    assert_eq!(reservation.start, start);
    assert_eq!(reservation.end, start + SignedDuration::from_hours(1));
    assert_eq!(reservation.brief_description, "Quarterly planning");
    assert_eq!(reservation.requester_id, world.person(ALICE));
    let (link, _) = reservation
        .external_link
        .clone()
        .expect("orb's external link");
    assert!(link.starts_with("orb:"), "{link}");

    // The ORB fields are stored, with the ids of both sides.
    until("the booking is stored in sync", || {
        stored(&world).iter().any(|b| {
            b.topdesk_reservation_id.as_ref().map(|t| t.as_str()) == Some(reservation.id.as_str())
                && b.topdesk_status.as_deref() == Some("in sync")
        })
    })
    .await;
    let bookings = stored(&world);
    assert_eq!(bookings.len(), 1);
    let b = &bookings[0];
    assert_eq!(b.room.as_str(), ROOM);
    assert_eq!(b.organizer.as_deref(), Some(ALICE));
    assert_eq!(b.original_organizer.as_deref(), Some(ALICE));
    assert_eq!(b.attendees, vec![BOB.to_owned()]);
    assert_eq!(b.subject.as_deref(), Some("Quarterly planning"));
    assert_eq!((b.start, b.end), (reservation.start, reservation.end));
    assert_eq!(b.processor_created, Processor::Exchange);
    assert!(b.room_event_id.is_some() && b.ical_uid.is_some());
    assert_eq!(
        world
            .daemon()
            .store()
            .booking(&b.match_id)
            .unwrap()
            .as_ref(),
        Some(b)
    );
    // Every call is in the audit trail (written by the audit thread, so waited for),
    // and the decision too.
    let audit = || {
        world
            .daemon()
            .store()
            .audit_since(jiff::Timestamp::UNIX_EPOCH, 10_000)
            .unwrap()
    };
    until("the client calls in the audit trail", || {
        let audit = audit();
        audit.iter().any(|a| a.entry.actor == "topdesk")
            && audit.iter().any(|a| a.entry.actor == "graph")
    })
    .await;
    let audit = audit();
    assert!(
        audit
            .iter()
            .any(|a| a.entry.actor == "executor" && a.entry.action == "create_reservation")
    );
    // Health and metrics over HTTP.
    let base = format!("http://{}", world.daemon().local_addr());
    let health = health(&base).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["subscriptions"]["active"], 1);
    assert_eq!(health["subscriptions"]["expected"], 1);
    let metrics_url = format!("{base}/metrics");
    let metrics = || async {
        reqwest::get(&metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    eventually("the effect is counted", || async {
        metrics()
            .await
            .contains(r#"orb_effects_total{kind="create_reservation",outcome="ok"} 1"#)
    })
    .await;
    let metrics = metrics().await;
    assert!(metrics.contains("orb_subscription_expiry_seconds{room=\"room-2.14@example.com\"}"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topdesk_reservation_becomes_an_event_in_the_requesters_calendar() {
    let world = World::start().await;
    // Within the hot window (36 h) that is polled every poll interval.
    let start = in_days(1);
    let id = world.book_in_topdesk(BOB, "Budget review", start, 30);

    let event = world
        .event_where("Bob's event", BOB, |e| e["subject"] == "Budget review")
        .await;
    assert_eq!(event["isOrganizer"], true);
    let attendees = event["attendees"].as_array().unwrap();
    assert!(
        attendees
            .iter()
            .any(|a| a["emailAddress"]["address"] == ROOM && a["type"] == "resource"),
        "{attendees:?}"
    );
    // The room accepted: its calendar holds the copy.
    world
        .event_where("the room's copy", ROOM, |e| {
            e["iCalUId"] == event["iCalUId"]
        })
        .await;
    until("the booking is stored", || {
        stored(&world).iter().any(|b| {
            b.topdesk_reservation_id.as_ref().map(|t| t.as_str()) == Some(id.as_str())
                && b.organizer_event_id.is_some()
        })
    })
    .await;
    let b = stored(&world).into_iter().next().unwrap();
    assert_eq!(b.processor_created, Processor::Topdesk);
    assert_eq!(b.organizer.as_deref(), Some(BOB));
    // The echo of orb's own event did not make a second reservation.
    assert_eq!(world.reservations().len(), 1);
    assert_eq!(stored(&world).len(), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlook_moves_and_cancels_reach_topdesk() {
    let world = World::start().await;
    let start = in_days(4);
    let id = world.book_in_outlook("Retro", start, 60);
    let r = world
        .reservation_where("the reservation", |r| r.status == "planned")
        .await;

    let later = start + SignedDuration::from_hours(2);
    world
        .graph
        .update_event_as(
            ALICE,
            &id,
            serde_json::json!({
                "start": {"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"},
                "end": {"dateTime": (later + SignedDuration::from_hours(1)).strftime("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"},
            }),
        )
        .unwrap();
    world
        .reservation_where("the moved reservation", |x| {
            x.id == r.id && x.start == later
        })
        .await;

    world.graph.cancel_event_as(ALICE, &id).unwrap();
    world
        .reservation_where("the cancelled reservation", |x| {
            x.id == r.id && x.status == "cancelled"
        })
        .await;
    until("the booking shows the cancellation", || {
        stored(&world)
            .iter()
            .any(|b| b.topdesk_status.as_deref() == Some("cancelled"))
    })
    .await;
    assert_eq!(world.reservations().len(), 1, "no second reservation");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topdesk_moves_and_cancels_reach_outlook() {
    let world = World::start().await;
    let start = in_days(1) - jiff::SignedDuration::from_hours(4);
    let id = world.book_in_topdesk(BOB, "Design review", start, 60);
    let event = world
        .event_where("Bob's event", BOB, |e| e["subject"] == "Design review")
        .await;
    let uid = event["iCalUId"].clone();

    let operator = world.topdesk_operator();
    let reference = ReservationRef::Id(id.as_str().into());
    let later = start + SignedDuration::from_hours(3);
    operator
        .reschedule(&reference, later, later + SignedDuration::from_hours(1))
        .await
        .unwrap();
    operator
        .update_reservation(
            &reference,
            &ReservationUpdate {
                brief_description: Some("Design review (moved)".to_owned()),
                ..ReservationUpdate::default()
            },
        )
        .await
        .unwrap();
    let moved = world
        .event_where("the moved event", BOB, |e| {
            e["iCalUId"] == uid && e["subject"] == "Design review (moved)"
        })
        .await;
    let moved_start = moved["start"]["dateTime"].as_str().unwrap();
    assert!(
        moved_start.starts_with(&later.strftime("%Y-%m-%dT%H:%M:%S").to_string()),
        "{moved_start}"
    );

    operator.cancel_reservation(&reference).await.unwrap();
    world
        .event_where("the cancelled event", ROOM, |e| {
            e["iCalUId"] == uid && e["isCancelled"] == true
        })
        .await;
    until("the booking shows the cancellation", || {
        stored(&world)
            .iter()
            .any(|b| b.exchange_status.as_deref() == Some("cancelled"))
    })
    .await;
    assert_eq!(stored(&world).len(), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_subscription_is_adopted_and_bookings_stay_linked() {
    let mut world = World::start().await;
    let start = in_days(3);
    let id = world.book_in_outlook("Before the restart", start, 60);
    let r = world
        .reservation_where("the reservation", |r| r.status == "planned")
        .await;
    until("the booking is in sync", || {
        stored(&world)
            .iter()
            .any(|b| b.topdesk_status.as_deref() == Some("in sync"))
    })
    .await;
    let subscription = world.graph.subscriptions()[0]["id"].clone();

    world.restart().await;
    // The stored subscription (and its client state) is adopted, not replaced.
    until("the subscription list was read", || {
        world
            .graph
            .requests()
            .iter()
            .filter(|q| q.path.ends_with("/subscriptions") && q.method == "GET")
            .count()
            == 2
    })
    .await;
    let subs = world.graph.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["id"], subscription);

    // A change after the restart reaches the same reservation.
    let later = start + SignedDuration::from_hours(1);
    world
        .graph
        .update_event_as(
            ALICE,
            &id,
            serde_json::json!({
                "start": {"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"},
                "end": {"dateTime": (later + SignedDuration::from_hours(1)).strftime("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"},
            }),
        )
        .unwrap();
    world
        .reservation_where("the moved reservation", |x| {
            x.id == r.id && x.start == later
        })
        .await;
    assert_eq!(
        world.reservations().len(),
        1,
        "no duplicate after the restart"
    );
    assert_eq!(stored(&world).len(), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_made_while_orb_was_down_is_found_on_start() {
    let mut world = World::start().await;
    let addr = world.stop_daemon().await;
    // The webhook is gone: Graph's deliveries fail and are given up.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    world.book_in_outlook("While orb was down", in_days(2), 60);
    world.graph.flush_notifications().await;
    assert!(world.reservations().is_empty());

    world.start_daemon(addr).await;
    world
        .reservation_where("the reservation made after the start", |r| {
            r.brief_description == "While orb was down"
        })
        .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_outside_the_apps_scope_parks_the_booking_and_the_sync_goes_on() {
    let world = World::start().await;
    // An application access policy that leaves Bob's mailbox out (R20).
    world.graph.set_access_policy(
        super::world::CLIENT_ID,
        Some(&[ROOM, ALICE, "facilities@example.com"]),
    );
    let id = world.book_in_topdesk(BOB, "Denied", in_days(1), 30);
    until("the booking is parked", || {
        stored(&world).iter().any(|b| {
            b.topdesk_reservation_id.as_ref().map(|t| t.as_str()) == Some(id.as_str())
                && b.exchange_status.as_deref() == Some("parked")
        })
    })
    .await;
    // Health is recomputed after the loop's next round, not with the record.
    let base = format!("http://{}", world.daemon().local_addr());
    eventually("/healthz reports the parked booking", || async {
        health(&base).await["status"] == "degraded"
    })
    .await;
    let health = health(&base).await;
    assert!(
        health["problems"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p.as_str().is_some_and(|p| p.contains("parked")))),
        "{health}"
    );
    // The rest of the sync is unaffected.
    world.book_in_outlook("Alice is in scope", in_days(2), 30);
    world
        .reservation_where("Alice's reservation", |r| {
            r.brief_description == "Alice is in scope"
        })
        .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_outlook_meeting_becomes_one_reservation_per_occurrence() {
    let world = World::start().await;
    let start = in_days(2);
    let mut body = super::world::meeting("Daily stand-up", start, 15);
    let first = start.strftime("%Y-%m-%d").to_string();
    let last = (start + SignedDuration::from_hours(48))
        .strftime("%Y-%m-%d")
        .to_string();
    body["recurrence"] = serde_json::json!({
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "endDate", "startDate": first, "endDate": last},
    });
    world.graph.create_event_as(ALICE, body).unwrap();
    until("three reservations", || {
        world
            .reservations()
            .iter()
            .filter(|r| r.brief_description == "Daily stand-up" && r.status == "planned")
            .count()
            == 3
    })
    .await;
    let mut starts: Vec<_> = world.reservations().iter().map(|r| r.start).collect();
    starts.sort();
    assert_eq!(
        starts,
        [
            start,
            start + SignedDuration::from_hours(24),
            start + SignedDuration::from_hours(48)
        ]
    );
    until("three occurrence bookings", || {
        stored(&world)
            .iter()
            .filter(|b| b.appointment_type == orb_store::AppointmentType::Occurrence)
            .count()
            == 3
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_only_mode_writes_topdesk_bookings_into_the_room_calendar() {
    let world = World::start_configured(r#"mode = "room-only""#, |_| {}).await;
    world.book_in_topdesk(BOB, "Room only", in_days(1), 30);
    world
        .event_where("the room's event", ROOM, |e| e["subject"] == "Room only")
        .await;
    assert!(
        world
            .graph
            .events(BOB)
            .iter()
            .all(|e| e["subject"] != "Room only"),
        "nothing in the requester's calendar"
    );
    // Its own write coming back through the room's subscription is recognised.
    world.control(orb_service::runtime::Control::ResyncExchange);
    world.graph.flush_notifications().await;
    until("the inbox is drained", || {
        world.daemon().store().pending_inbox().unwrap().is_empty()
    })
    .await;
    assert_eq!(world.reservations().len(), 1);
    assert_eq!(stored(&world).len(), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_carry_subject_no_subject_is_stored_or_carried() {
    let world = World::start_configured("carry_subject = false", |_| {}).await;
    world.book_in_outlook("Secret merger talks", in_days(2), 60);
    let r = world
        .reservation_where("the reservation", |r| r.status == "planned")
        .await;
    assert_ne!(r.brief_description, "Secret merger talks");
    until("the booking is stored", || !stored(&world).is_empty()).await;
    assert!(stored(&world).iter().all(|b| b.subject.is_none()));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_write_in_flight_and_records_its_outcome() {
    let mut world = World::start().await;
    // Every TOPdesk answer takes a while, so the create is still in flight at shutdown.
    world
        .topdesk
        .set_latency(std::time::Duration::from_millis(700));
    world.book_in_outlook("In flight at shutdown", in_days(2), 60);
    until("the create is issued", || {
        stored(&world)
            .iter()
            .any(|b| b.topdesk_status.as_deref() == Some("writing"))
    })
    .await;
    let addr = world.stop_daemon().await;
    // The write finished and its outcome is on disk, read with the daemon stopped.
    assert_eq!(world.reservations().len(), 1);
    {
        let opened = orb_service::state::open(world.config()).unwrap();
        let b = opened.store.bookings().next().unwrap().unwrap();
        assert_eq!(b.topdesk_status.as_deref(), Some("in sync"));
        assert_eq!(
            b.topdesk_reservation_id.map(|t| t.as_str().to_owned()),
            Some(world.reservations()[0].id.clone())
        );
        assert!(opened.store.pending_inbox().unwrap().is_empty());
    }
    world.topdesk.set_latency(std::time::Duration::ZERO);
    world.start_daemon(addr).await;
    world.stop().await;
}

/// `GET {base}/healthz` as JSON.
async fn health(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
