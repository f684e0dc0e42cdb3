//! Dry-run (shadow) mode: orb listens, decides and records, but writes nothing to
//! Exchange or TOPdesk.

use super::world::{BOB, World, in_days, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_and_records_but_writes_nothing() {
    let world = World::start_with(|o| o.dry_run = true).await;
    world.book_in_outlook("Shadow meeting", in_days(2), 60);
    world.book_in_topdesk(BOB, "Shadow reservation", in_days(1), 30);

    // Both bookings are taken on and visible in orb's own store …
    until("both bookings recorded", || {
        world.daemon().store().booking_count() == 2
    })
    .await;
    until("the dry-run decisions are audited", || {
        world
            .daemon()
            .store()
            .audit_since(jiff::Timestamp::UNIX_EPOCH, 100_000)
            .unwrap()
            .iter()
            .filter(|a| a.entry.actor == "engine" && a.entry.outcome == "dry run")
            .count()
            >= 2
    })
    .await;
    // … a later poll and delta round still change nothing …
    world.control(orb_service::runtime::Control::PollTopdesk { full: true });
    world.control(orb_service::runtime::Control::ResyncExchange);
    world.graph.flush_notifications().await;

    // … and neither side was written to.
    assert_eq!(world.reservations().len(), 1, "only the operator's own");
    assert!(
        world
            .graph
            .events(BOB)
            .iter()
            .all(|e| e["subject"] != "Shadow reservation"),
        "no event for Bob (he only has Alice's invitation)"
    );
    let writes: Vec<_> = world
        .graph
        .requests()
        .into_iter()
        .filter(|r| r.client_id.is_some() && r.path.contains("/events") && r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    assert!(
        world
            .topdesk
            .exchanges()
            .iter()
            .all(|e| e.method == http::Method::GET),
        "orb only read TOPdesk"
    );
    assert!(
        world.daemon().store().effects().unwrap().is_empty(),
        "nothing queued"
    );
    world.stop().await;
}
