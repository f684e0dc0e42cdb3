//! Forged and tampered notifications reach the running daemon's webhook: each is
//! acknowledged (the inbox is durable), then rejected by the inbox worker, counted by
//! reason, audited, and changes nothing on either side.

use std::time::SystemTime;

use orb_emulators::graph::DeliveryKind;
use orb_notification_crypto::jwt::TokenSigner;
use orb_service::metrics::RejectReason;
use serde_json::Value;

use super::world::{CLIENT_ID, World, in_days, until};

/// A change notification the emulator really delivered to orb, as JSON.
async fn delivered(world: &World) -> Value {
    world.book_in_outlook("Genuine", in_days(6), 30);
    world
        .reservation_where("the genuine booking", |r| r.status == "planned")
        .await;
    let body = world
        .graph
        .deliveries()
        .into_iter()
        .find(|d| d.kind == DeliveryKind::Change && d.status == Some(202))
        .expect("a delivered change notification")
        .body;
    serde_json::from_slice(&body).unwrap()
}

/// Posts `body` to orb's notification endpoint and waits until it was rejected for
/// `reason`; then checks that nothing changed.
async fn rejected(world: &World, body: &Value, reason: RejectReason) {
    let metrics = world.daemon().metrics();
    let before = metrics.rejected_count(reason);
    let reservations = world.topdesk.reservations();
    let bookings = world.daemon().store().booking_count();
    let url = format!("http://{}/graph/notifications", world.daemon().local_addr());
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "acknowledged before any check");
    until(&format!("a rejection for {}", reason.as_str()), || {
        metrics.rejected_count(reason) > before
    })
    .await;
    until("the inbox is drained", || {
        world.daemon().store().pending_inbox().unwrap().is_empty()
    })
    .await;
    assert_eq!(world.topdesk.reservations(), reservations);
    assert_eq!(world.daemon().store().booking_count(), bookings);
    let audited = world
        .daemon()
        .store()
        .audit_since(jiff::Timestamp::UNIX_EPOCH, 100_000)
        .unwrap()
        .into_iter()
        .any(|a| a.entry.outcome == format!("rejected: {}", reason.as_str()));
    assert!(audited, "the rejection is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_state_is_rejected() {
    let world = World::start().await;
    let mut body = delivered(&world).await;
    body["value"][0]["clientState"] = Value::from("guessed-client-state");
    // A genuine resource id, so only the client state gives the forgery away.
    rejected(&world, &body, RejectReason::ClientState).await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_encrypted_data_is_rejected() {
    let world = World::start().await;
    let mut body = delivered(&world).await;
    let data = body["value"][0]["encryptedContent"]["data"]
        .as_str()
        .unwrap()
        .to_owned();
    // Flip one base64 character in the middle of the ciphertext: the HMAC no longer
    // matches, and nothing is decrypted.
    let mid = data.len() / 2;
    let flipped = if &data[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &data[..mid], &data[mid + 1..]);
    body["value"][0]["encryptedContent"]["data"] = Value::from(tampered);
    rejected(&world, &body, RejectReason::Decrypt).await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_validation_tokens_are_rejected() {
    let world = World::start().await;
    let genuine = delivered(&world).await;

    // Signed with the right key id but the wrong key.
    let impostor = TokenSigner::generate("emulator-signing-key").unwrap();
    let claims = TokenSigner::graph_claims_v2(
        &world.graph.login_url(),
        CLIENT_ID,
        &world.graph.tenant_id(),
        SystemTime::now(),
    );
    let mut body = genuine.clone();
    body["validationTokens"] = serde_json::json!([impostor.sign(&claims).unwrap()]);
    body["value"][0]["subscriptionExpirationDateTime"] = Value::from("2099-01-01T00:00:00Z");
    rejected(&world, &body, RejectReason::Token).await;

    // Signed by a key Microsoft never published: orb refreshes the JWKS once, then
    // refuses.
    let stranger = TokenSigner::generate("unknown-key").unwrap();
    let mut body = genuine.clone();
    body["validationTokens"] = serde_json::json!([stranger.sign(&claims).unwrap()]);
    rejected(&world, &body, RejectReason::Token).await;

    // Another unknown key id right after: rejected too (without fetching the keys again
    // within a minute, so forged key ids cannot make orb fetch in a loop).
    let other = TokenSigner::generate("another-unknown-key").unwrap();
    let mut body = genuine.clone();
    body["validationTokens"] = serde_json::json!([other.sign(&claims).unwrap()]);
    body["value"][0]["changeType"] = Value::from("updated");
    rejected(&world, &body, RejectReason::Token).await;

    // No tokens at all on encrypted content.
    let mut body = genuine;
    body.as_object_mut().unwrap().remove("validationTokens");
    rejected(&world, &body, RejectReason::Token).await;
    assert_eq!(
        world.daemon().metrics().rejected_count(RejectReason::Token),
        4
    );
    world.stop().await;
}
