//! A restart keeps the engine's working state: each booking is restored exactly as the
//! engine left it (stored beside its ORB record), and a write in flight when orb stopped
//! is resumed — neither lost nor duplicated.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orb_emulators::topdesk::Fault;
use orb_reconcile::Booking;
use orb_service::persist;
use orb_service::runtime::{Control, Options, engine_config};

use super::world::{ALICE, World, in_days, until};

fn stored(world: &World) -> Vec<orb_store::Booking> {
    world
        .daemon()
        .store()
        .bookings()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The engine's booking as the running daemon stored it.
fn engine_booking(world: &World, record: &orb_store::Booking) -> Booking {
    let bytes = world
        .daemon()
        .store()
        .engine_state(&record.match_id)
        .unwrap()
        .expect("an engine state beside the record");
    persist::from_engine_state(&bytes, record).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_an_in_flight_create_resumes_it_without_a_duplicate() {
    let mut world = World::start_with(|o| o.drain = Duration::from_millis(200)).await;
    // A first booking makes Alice's TOPdesk person known, so the next create is issued
    // at once when her next meeting is seen.
    world.book_in_outlook("Warm-up", in_days(1), 30);
    world
        .reservation_where("the warm-up reservation", |r| {
            r.brief_description == "Warm-up"
        })
        .await;
    until("the warm-up is in sync", || {
        stored(&world)
            .iter()
            .all(|b| b.topdesk_status.as_deref() == Some("in sync"))
    })
    .await;

    // TOPdesk now answers every reservation read with 503 and `Retry-After: 30`: the
    // next create's idempotency lookup waits to be retried when orb stops (the drain
    // gives up on it), so the create never reaches TOPdesk in this run.
    world.topdesk.inject_fault(Fault {
        method: Some(http::Method::GET),
        path_prefix: Some("/reservations".to_owned()),
        status: 503,
        retry_after: Some("30".to_owned()),
        times: 10_000,
    });
    world.book_in_outlook("In flight at the restart", in_days(2), 60);
    let in_flight = |b: &orb_store::Booking| {
        b.subject.as_deref() == Some("In flight at the restart")
            && b.topdesk_status.as_deref() == Some("writing")
    };
    until("the create is in flight", || {
        stored(&world).iter().any(in_flight)
    })
    .await;
    let record = stored(&world).into_iter().find(in_flight).unwrap();
    let before = engine_booking(&world, &record);
    let flight = before
        .topdesk
        .in_flight
        .clone()
        .expect("the create is in flight in the engine state");
    let addr = world.stop_daemon().await;
    assert!(
        !world
            .reservations()
            .iter()
            .any(|r| r.brief_description == "In flight at the restart"),
        "the create never reached TOPdesk"
    );

    // The restored state is the one the engine left, the write still in flight and due.
    {
        let opened = orb_service::state::open(world.config()).unwrap();
        let engine = engine_config(world.config(), &Options::default());
        let now = Timestamp::now();
        let state = persist::load_state(&opened.store, &engine, now).unwrap();
        let restored = state
            .bookings()
            .find(|b| b.match_id == before.match_id)
            .unwrap()
            .clone();
        let resumed = restored.topdesk.in_flight.clone().unwrap();
        assert_eq!(resumed.effect, flight.effect, "the very same effect");
        assert_eq!(resumed.seq, flight.seq);
        assert!(
            resumed.since <= now - engine.in_flight_timeout,
            "due at once"
        );
        let mut expected = before.clone();
        if let Some(f) = expected.topdesk.in_flight.as_mut() {
            f.since = resumed.since;
        }
        assert_eq!(restored, expected, "restored exactly");
        assert_eq!(state.bookings().count(), 2);
    }

    world.topdesk.clear_faults();
    world.start_daemon(addr).await;
    let r = world
        .reservation_where("the resumed reservation", |r| {
            r.brief_description == "In flight at the restart"
        })
        .await;
    until("the booking is in sync and linked", || {
        stored(&world).iter().any(|b| {
            b.match_id == record.match_id
                && b.topdesk_status.as_deref() == Some("in sync")
                && b.topdesk_reservation_id.as_ref().map(|t| t.as_str()) == Some(r.id.as_str())
        })
    })
    .await;
    let after = engine_booking(
        &world,
        &stored(&world)
            .into_iter()
            .find(|b| b.match_id == record.match_id)
            .unwrap(),
    );
    assert!(after.topdesk.in_flight.is_none());
    assert!(
        after.next_seq > flight.seq,
        "no effect id reused for another write"
    );

    // Several polls and an Exchange round later, still one reservation per booking.
    world.control(Control::ResyncExchange);
    let polls = world.topdesk.request_count();
    until("more TOPdesk polls", || {
        world.topdesk.request_count() >= polls + 6
    })
    .await;
    assert_eq!(world.reservations().len(), 2, "{:#?}", world.reservations());
    assert_eq!(stored(&world).len(), 2);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_without_an_engine_state_is_rebuilt_from_its_orb_fields() {
    let mut world = World::start().await;
    let start = in_days(2);
    let id = world.book_in_outlook("Saved by an older orb", start, 60);
    let r = world
        .reservation_where("the reservation", |r| {
            r.brief_description == "Saved by an older orb"
        })
        .await;
    until("the booking is in sync", || {
        stored(&world)
            .iter()
            .any(|b| b.topdesk_status.as_deref() == Some("in sync"))
    })
    .await;
    let addr = world.stop_daemon().await;
    {
        // As a format-3 store (or a tool that saves records alone) leaves it.
        let opened = orb_service::state::open(world.config()).unwrap();
        let record = opened.store.bookings().next().unwrap().unwrap();
        opened.store.save_booking(&record).unwrap();
        assert!(
            opened
                .store
                .engine_state(&record.match_id)
                .unwrap()
                .is_none()
        );
    }
    world.start_daemon(addr).await;
    // The sync goes on from the rebuilt booking and stores a full engine state again.
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
    until("the record has an engine state again", || {
        let record = stored(&world).into_iter().next().unwrap();
        record.start == later
            && world
                .daemon()
                .store()
                .engine_state(&record.match_id)
                .unwrap()
                .is_some()
    })
    .await;
    assert_eq!(world.reservations().len(), 1);
    assert_eq!(stored(&world).len(), 1);
    world.stop().await;
}
