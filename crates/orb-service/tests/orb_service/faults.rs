//! The sides misbehave for a while: nothing is lost, nothing is duplicated.

use orb_emulators::graph::Fault as GraphFault;
use orb_emulators::topdesk::Fault as TopdeskFault;
use orb_reconcile::{Jitter, RetryPolicy};

use super::world::{BOB, World, in_days, until};

fn fast_retries(o: &mut orb_service::runtime::Options) {
    o.retry = Some(RetryPolicy {
        base: jiff::SignedDuration::from_millis(100),
        max: jiff::SignedDuration::from_secs(1),
        max_attempts: 8,
        jitter: Jitter::None,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topdesk_down_for_a_while_then_back_loses_nothing() {
    let world = World::start_with(fast_retries).await;
    // Every attempt of the first create (the client's own retries included) fails.
    world.topdesk.inject_fault(TopdeskFault {
        method: Some(http::Method::POST),
        path_prefix: Some("/reservations".to_owned()),
        status: 503,
        retry_after: None,
        times: 4,
    });
    world.book_in_outlook("While TOPdesk was down", in_days(2), 60);
    world
        .reservation_where("the reservation after the outage", |r| {
            r.status == "planned"
        })
        .await;
    // The reservation exists once TOPdesk answered; orb counts the outcome when it has
    // handled the answer, a moment later.
    until("orb recorded the successful create", || {
        world
            .daemon()
            .metrics()
            .encode()
            .contains(r#"orb_effects_total{kind="create_reservation",outcome="ok"} 1"#)
    })
    .await;
    let metrics = world.daemon().metrics().encode();
    assert!(
        metrics.contains(r#"orb_effects_total{kind="create_reservation",outcome="retryable"} 1"#),
        "{metrics}"
    );
    // Later polls and rounds find the one reservation and make no second.
    world.control(orb_service::runtime::Control::PollTopdesk { full: true });
    world.control(orb_service::runtime::Control::ResyncExchange);
    until("the booking is in sync", || {
        world
            .daemon()
            .store()
            .bookings()
            .filter_map(Result::ok)
            .any(|b| b.topdesk_status.as_deref() == Some("in sync"))
    })
    .await;
    assert_eq!(world.reservations().len(), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_throttling_storm_delays_but_does_not_duplicate() {
    let world = World::start_with(fast_retries).await;
    world.graph.inject(GraphFault::Throttle {
        status: 429,
        retry_after: Some(1),
        times: 3,
    });
    world.book_in_topdesk(BOB, "Throttled", in_days(1), 30);
    world
        .event_where("Bob's event", BOB, |e| e["subject"] == "Throttled")
        .await;
    // Give any duplicate a chance to show up: one more full round of both sides.
    world.control(orb_service::runtime::Control::PollTopdesk { full: true });
    world.control(orb_service::runtime::Control::ResyncExchange);
    world.graph.flush_notifications().await;
    until("the inbox is drained", || {
        world.daemon().store().pending_inbox().unwrap().is_empty()
    })
    .await;
    let events: Vec<_> = world
        .graph
        .events(BOB)
        .into_iter()
        .filter(|e| e["subject"] == "Throttled")
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(
        world.graph.requests().iter().any(|r| r.status == 429),
        "the storm happened"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_counted_in_the_orb_fields_and_waits_for_its_retry() {
    let world = World::start_with(|o| {
        o.retry = Some(RetryPolicy {
            base: jiff::SignedDuration::from_secs(3600),
            max: jiff::SignedDuration::from_hours(2),
            max_attempts: 8,
            jitter: Jitter::None,
        });
    })
    .await;
    world.topdesk.inject_fault(TopdeskFault {
        method: Some(http::Method::POST),
        path_prefix: Some("/reservations".to_owned()),
        status: 503,
        retry_after: None,
        times: 4,
    });
    world.book_in_outlook("Queued", in_days(2), 60);
    until("the failed create is recorded", || {
        world
            .daemon()
            .store()
            .bookings()
            .filter_map(Result::ok)
            .any(|b| {
                b.failed_count == 1
                    && b.failed_at.is_some()
                    && b.failed_processor == Some(orb_store::Processor::Topdesk)
                    && b.topdesk_status.as_deref() == Some("failed")
            })
    })
    .await;
    assert!(world.reservations().is_empty());
    let metrics = world.daemon().metrics().encode();
    assert!(
        metrics.contains(r#"orb_effects_total{kind="create_reservation",outcome="retryable"} 1"#),
        "{metrics}"
    );
    world.stop().await;
}
