//! Subscription lifecycle and recovery: `missed`, expired delta tokens,
//! `subscriptionRemoved`, `reauthorizationRequired` and renewal at ~60 % of the lifetime.

use std::time::Duration;

use orb_emulators::graph::{DeliveryKind, Fault, LifecycleEvent};
use orb_service::runtime::Control;

use super::world::{World, in_days, until};

fn delta_rounds(world: &World) -> usize {
    world
        .graph
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/calendarView/delta"))
        .count()
}

fn subscription(world: &World) -> (String, String) {
    let subs = world.graph.subscriptions();
    assert_eq!(subs.len(), 1, "{subs:#?}");
    (
        subs[0]["id"].as_str().unwrap().to_owned(),
        subs[0]["expirationDateTime"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_notifications_are_recovered_by_a_delta_round() {
    let world = World::start().await;
    until("the first delta round", || delta_rounds(&world) >= 1).await;
    let rounds = delta_rounds(&world);
    world.graph.inject(Fault::DropNotifications { times: 1 });
    world.book_in_outlook("Dropped", in_days(2), 60);
    let r = world
        .reservation_where("the recovered reservation", |r| r.status == "planned")
        .await;
    assert_eq!(r.brief_description, "Dropped");
    assert!(
        world
            .graph
            .deliveries()
            .iter()
            .any(|d| d.kind == DeliveryKind::Lifecycle && d.status == Some(202)),
        "the `missed` lifecycle notification was delivered"
    );
    assert!(delta_rounds(&world) > rounds, "recovered through delta");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_token_falls_back_to_a_full_listing() {
    let world = World::start().await;
    until("the first delta round", || delta_rounds(&world) >= 1).await;
    world.graph.inject(Fault::ExpireDeltaTokens { gone: false });
    world.graph.inject(Fault::DropNotifications { times: 1 });
    world.book_in_outlook("After expiry", in_days(2), 60);
    world
        .reservation_where("the recovered reservation", |r| {
            r.brief_description == "After expiry"
        })
        .await;
    assert!(
        world
            .graph
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/calendarView/delta") && r.status == 400),
        "the expired token was refused, then the window listed"
    );
    // An explicit resync after recovery changes nothing: no duplicate.
    // Count before asking: the round may finish before the next line runs.
    let rounds = delta_rounds(&world);
    world.control(Control::ResyncExchange);
    until("one more delta round", || delta_rounds(&world) > rounds).await;
    assert_eq!(world.reservations().len(), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_subscription_is_recreated_and_the_room_resynced() {
    let world = World::start().await;
    let (old, _) = subscription(&world);
    assert!(
        world
            .graph
            .send_lifecycle(&old, LifecycleEvent::SubscriptionRemoved)
    );
    until("a new subscription", || {
        let subs = world.graph.subscriptions();
        subs.len() == 1 && subs[0]["id"] != old.as_str()
    })
    .await;
    let (new, _) = subscription(&world);
    until("the store holds only the new subscription", || {
        let stored = world.daemon().store().subscriptions().unwrap();
        stored.len() == 1 && stored[0].id.as_str() == new
    })
    .await;
    // Notifications flow through the new subscription.
    world.book_in_outlook("Through the new subscription", in_days(2), 30);
    world
        .reservation_where("the reservation", |r| r.status == "planned")
        .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_that_outrun_their_subscriptions_answer_are_held_not_rejected() {
    let world = World::start().await;
    let (old, _) = subscription(&world);
    // Graph's 201 for the next create reaches orb five seconds after the subscription
    // exists; its first notification gets there first.
    world.graph.inject(Fault::LateSubscriptionAnswers {
        delay: Duration::from_secs(5),
        times: 1,
    });
    assert!(
        world
            .graph
            .send_lifecycle(&old, LifecycleEvent::SubscriptionRemoved)
    );
    until("the new subscription exists in Graph", || {
        let subs = world.graph.subscriptions();
        subs.len() == 1 && subs[0]["id"] != old.as_str()
    })
    .await;
    let (new, _) = subscription(&world);
    world.book_in_outlook("Before the answer", in_days(2), 30);
    world.graph.flush_notifications().await;
    let delivered = world
        .graph
        .deliveries()
        .into_iter()
        .filter(|d| d.kind == DeliveryKind::Change && d.subscription_id == new)
        .count();
    assert!(delivered >= 1, "the notification was delivered");
    let known = |id: &str| {
        world
            .daemon()
            .store()
            .subscriptions()
            .unwrap()
            .iter()
            .any(|s| s.id.as_str() == id)
    };
    assert!(
        !known(&new),
        "the notification must arrive before orb knows the subscription"
    );

    until("orb records the new subscription", || known(&new)).await;
    world
        .reservation_where("the reservation", |r| {
            r.brief_description == "Before the answer"
        })
        .await;
    until("the held notification is processed", || {
        world.daemon().store().pending_inbox_len() == 0
    })
    .await;
    let metrics = world.daemon().metrics().encode();
    assert!(
        !metrics.contains(r#"reason="unknown_subscription""#),
        "{metrics}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthorization_required_is_answered_with_a_reauthorize() {
    let world = World::start().await;
    let (id, _) = subscription(&world);
    // Past the ten quiet minutes after the subscription was created.
    world.graph.advance_clock(Duration::from_secs(15 * 60));
    assert!(
        world
            .graph
            .send_lifecycle(&id, LifecycleEvent::ReauthorizationRequired)
    );
    until("the reauthorization", || {
        world.graph.reauthorizations(&id) == 1
    })
    .await;
    // A second request within ten minutes is not answered again.
    assert!(
        world
            .graph
            .send_lifecycle(&id, LifecycleEvent::ReauthorizationRequired)
    );
    world.graph.flush_notifications().await;
    until("the inbox is drained", || {
        world.daemon().store().pending_inbox().unwrap().is_empty()
    })
    .await;
    assert_eq!(world.graph.reauthorizations(&id), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_renewed_at_sixty_percent_of_their_lifetime() {
    let world = World::start().await;
    let (id, expiry) = subscription(&world);
    // Lifetime ~1,430 minutes: 15 hours is past 60 %.
    world.graph.advance_clock(Duration::from_secs(15 * 3600));
    world.control(Control::Tick);
    until("the renewal", || {
        let (now_id, now_expiry) = subscription(&world);
        now_id == id && now_expiry > expiry
    })
    .await;
    until("the store holds the new expiry", || {
        let stored = world.daemon().store().subscriptions().unwrap();
        stored.len() == 1 && stored[0].expires_at > world.graph.now()
    })
    .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_certificate_rotation_notifications_for_the_old_one_still_decrypt() {
    let world = World::start().await;
    world.book_in_outlook("Sealed for the old certificate", in_days(2), 30);
    world
        .reservation_where("the first reservation", |r| r.status == "planned")
        .await;
    let old_body = world
        .graph
        .deliveries()
        .into_iter()
        .find(|d| d.kind == DeliveryKind::Change && d.status == Some(202))
        .unwrap()
        .body;
    let old_cert = world.graph.subscriptions()[0]["encryptionCertificateId"].clone();

    world.control(Control::RotateCertificate {
        key_bits: orb_notification_crypto::KeyBits::Rsa2048,
        validity: Duration::from_secs(90 * 24 * 3600),
    });
    until("the subscription moved to the new certificate", || {
        let subs = world.graph.subscriptions();
        subs.len() == 1 && subs[0]["encryptionCertificateId"] != old_cert
    })
    .await;
    let keys = world.daemon().store().encryption_keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .any(|k| k.id == old_cert.as_str().unwrap() && k.state == orb_store::KeyState::Previous)
    );

    // A notification sealed for the old certificate arrives late (Graph retried it).
    let mut late = old_body;
    late.push(b'\n');
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/graph/notifications",
            world.daemon().local_addr()
        ))
        .header("content-type", "application/json")
        .body(late)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    until("the inbox is drained", || {
        world.daemon().store().pending_inbox().unwrap().is_empty()
    })
    .await;
    let metrics = world.daemon().metrics();
    {
        use orb_service::metrics::RejectReason as R;
        for reason in [
            R::Decrypt,
            R::Token,
            R::ClientState,
            R::UnknownSubscription,
            R::Malformed,
        ] {
            assert_eq!(metrics.rejected_count(reason), 0, "{}", reason.as_str());
        }
    }

    // New notifications are sealed for the new certificate and still flow.
    world.book_in_outlook("Sealed for the new certificate", in_days(3), 30);
    world
        .reservation_where("the second reservation", |r| {
            r.brief_description == "Sealed for the new certificate"
        })
        .await;
    assert_eq!(world.reservations().len(), 2);
    world.stop().await;
}
