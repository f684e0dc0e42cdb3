//! Graph answers a subscription create with 409 when the app already has one on the
//! room's resource: orb resolves the conflict at once instead of retrying blindly.

use jiff::{SignedDuration, Timestamp};
use orb_emulators::graph::WebhookRecorder;
use orb_graph_client::{
    Credential, GraphClient, GraphConfig, Mailbox, NewSubscription, Secret, SubscriptionId,
};
use orb_service::subscriptions;

use super::world::{CLIENT_ID, ROOM, SECRET, World, in_days, until};

/// The app itself, as another deployment (or an old `public_url`) would use it.
fn app(world: &World) -> GraphClient {
    let mut config = GraphConfig::new(world.graph.tenant_id(), CLIENT_ID);
    config.login_url = world.graph.login_url();
    config.api_url = world.graph.api_url();
    GraphClient::new(config, Credential::Secret(Secret::new(SECRET)), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_in_the_way_is_replaced_at_once() {
    let mut world = World::start().await;
    let addr = world.stop_daemon().await;

    // While orb is down its subscription disappears, and one of the same app on the same
    // resource appears at another URL: orb cannot know its client state.
    let graph = app(&world);
    let ours = world.graph.subscriptions()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    graph
        .delete_subscription(&SubscriptionId::new(ours.as_str()).unwrap())
        .await
        .unwrap();
    let elsewhere = WebhookRecorder::start().await.unwrap();
    let foreign = graph
        .create_subscription(&NewSubscription {
            change_type: "created,updated,deleted".to_owned(),
            notification_url: elsewhere.url("/graph/notifications"),
            lifecycle_notification_url: None,
            resource: subscriptions::resource(&Mailbox::new(ROOM).unwrap()),
            expiration: Timestamp::now() + SignedDuration::from_hours(12),
            client_state: "someone-elses-state".to_owned(),
            encryption: None,
        })
        .await
        .unwrap();

    world.start_daemon(addr).await;
    let url = world.config().notification_url();
    let g = std::sync::Arc::clone(&world.graph);
    until(
        "orb's subscription replaced the one in the way",
        move || {
            let subs = g.subscriptions();
            subs.len() == 1 && subs[0]["notificationUrl"] == url.as_str()
        },
    )
    .await;
    assert_ne!(
        world.graph.subscriptions()[0]["id"].as_str(),
        Some(foreign.id.as_str())
    );
    // Graph's 409 was answered right away, not a minute later.
    let conflicts = world
        .graph
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/subscriptions") && r.status == 409)
        .count();
    assert_eq!(conflicts, 1);

    // Notifications of the new subscription verify: a booking flows.
    world.book_in_outlook("After the conflict", in_days(2), 60);
    world
        .reservation_where("the reservation", |r| {
            r.brief_description == "After the conflict"
        })
        .await;
    world.stop().await;
}
