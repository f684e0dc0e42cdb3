//! Subscriptions: create (with the handshake), list, renew with a new certificate,
//! reauthorize, delete, and the typed expiry limit.

use std::time::{Duration, SystemTime};

use orb_emulators::graph::{HandshakeMode, WebhookRecorder};
use orb_graph_client::{Error, NewSubscription, SubscriptionEncryption, events_resource};
use orb_notification_crypto::{
    EncryptionKeyPair, GenerateOptions, KeyRing, NotificationCollection,
};

use super::support::*;

fn encryption(pair: &EncryptionKeyPair) -> SubscriptionEncryption {
    SubscriptionEncryption {
        certificate_base64_der: pair.certificate().to_base64_der(),
        certificate_id: pair.id().to_owned(),
    }
}

fn new_subscription(
    hook: &WebhookRecorder,
    minutes: i64,
    pair: &EncryptionKeyPair,
) -> NewSubscription {
    NewSubscription {
        change_type: "created,updated,deleted".into(),
        notification_url: hook.url("/graph/notifications"),
        lifecycle_notification_url: Some(hook.url("/graph/lifecycle")),
        resource: events_resource(
            &mailbox(ROOM_A),
            &["subject", "start", "end", "iCalUId", "isCancelled"],
        ),
        expiration: jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .unwrap(),
        client_state: "a-random-client-state".into(),
        encryption: Some(encryption(pair)),
    }
}

#[tokio::test]
async fn the_subscription_lifecycle() {
    let world = World::start().await;
    let client = world.client();
    let hook = WebhookRecorder::start().await.unwrap();
    let now = SystemTime::now();
    let pair = EncryptionKeyPair::generate("cert-1", &GenerateOptions::default(), now).unwrap();

    let sub = client
        .create_subscription(&new_subscription(&hook, 1000, &pair))
        .await
        .unwrap();
    assert!(sub.include_resource_data);
    assert_eq!(sub.encryption_certificate_id.as_deref(), Some("cert-1"));
    assert_eq!(sub.application_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(hook.validations().len(), 2, "both URLs are validated");

    let listed = client.list_subscriptions().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, sub.id);

    // A booking in the room is notified, encrypted for cert-1.
    client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "n-1"))
        .await
        .unwrap();
    world.emulator.flush_notifications().await;
    let posts = hook.posts();
    assert_eq!(posts.len(), 1);
    let mut ring = KeyRing::new();
    ring.insert(pair, now);
    let collection = NotificationCollection::from_json(&posts[0].body).unwrap();
    let item = &collection.value[0];
    let plain = ring
        .decrypt(&item.encrypted_content().unwrap().unwrap())
        .unwrap();
    let event = orb_graph_client::wire::parse_event_json(&plain).unwrap();
    assert_eq!(event.subject.as_deref(), Some("Alice Example"));
    assert!(event.ical_uid.is_some() && !event.is_cancelled);

    // Renew onto a new certificate: later notifications use it.
    let pair2 = EncryptionKeyPair::generate("cert-2", &GenerateOptions::default(), now).unwrap();
    let renewed = client
        .renew_subscription(
            &sub.id,
            jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_mins(1400))
                .unwrap(),
            Some(&encryption(&pair2)),
        )
        .await
        .unwrap();
    assert!(renewed.expiration > sub.expiration);
    assert_eq!(renewed.encryption_certificate_id.as_deref(), Some("cert-2"));
    ring.insert(pair2, now);
    client
        .create_event(&mailbox(BOB), &meeting(13, Some(ROOM_A), "n-2"))
        .await
        .unwrap();
    world.emulator.flush_notifications().await;
    let last = hook.posts().pop().unwrap();
    let collection = NotificationCollection::from_json(&last.body).unwrap();
    let content = collection.value[0].encrypted_content().unwrap().unwrap();
    assert_eq!(content.encryption_certificate_id, "cert-2");
    ring.decrypt(&content).unwrap();

    client.reauthorize_subscription(&sub.id).await.unwrap();
    assert_eq!(world.emulator.reauthorizations(sub.id.as_str()), 1);
    client.delete_subscription(&sub.id).await.unwrap();
    assert!(client.list_subscriptions().await.unwrap().is_empty());
    assert!(matches!(
        client.delete_subscription(&sub.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn an_expiry_beyond_the_rich_maximum_is_a_typed_error() {
    let world = World::start().await;
    let client = world.client();
    let hook = WebhookRecorder::start().await.unwrap();
    let pair =
        EncryptionKeyPair::generate("cert-1", &GenerateOptions::default(), SystemTime::now())
            .unwrap();
    let err = client
        .create_subscription(&new_subscription(&hook, 4230, &pair))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ExpirationTooFar {
                max_minutes: 1440,
                ..
            }
        ),
        "{err:?}"
    );
    // Nothing was validated or created.
    assert!(hook.validations().is_empty());
    assert!(world.emulator.subscriptions().is_empty());
}

#[tokio::test]
async fn a_failed_handshake_fails_the_creation() {
    let world = World::start().await;
    let client = world.client();
    let hook = WebhookRecorder::start().await.unwrap();
    hook.set_mode(HandshakeMode::WrongBody);
    let pair =
        EncryptionKeyPair::generate("cert-1", &GenerateOptions::default(), SystemTime::now())
            .unwrap();
    let err = client
        .create_subscription(&new_subscription(&hook, 60, &pair))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Graph { status: 400, .. }), "{err:?}");
    assert!(world.emulator.subscriptions().is_empty());
}

#[tokio::test]
async fn a_subscription_that_is_not_renewed_expires() {
    let world = World::start().await;
    let client = world.client();
    let hook = WebhookRecorder::start().await.unwrap();
    let pair =
        EncryptionKeyPair::generate("cert-1", &GenerateOptions::default(), SystemTime::now())
            .unwrap();
    let sub = client
        .create_subscription(&new_subscription(&hook, 60, &pair))
        .await
        .unwrap();
    world.emulator.advance_clock(Duration::from_secs(61 * 60));
    assert!(client.list_subscriptions().await.unwrap().is_empty());
    assert!(matches!(
        client
            .renew_subscription(&sub.id, jiff::Timestamp::now(), None)
            .await,
        Err(Error::NotFound { .. })
    ));
    client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "late"))
        .await
        .unwrap();
    world.emulator.flush_notifications().await;
    assert!(hook.posts().is_empty());
}
