//! orb's own credentials refused: the whole sync stops, so bookings wait instead of
//! being parked one by one, `/healthz` names the cause, and everything converges once an
//! operator has fixed the credential.

use std::time::Duration;

use super::world::{World, eventually, in_days, until};

async fn health(world: &World) -> serde_json::Value {
    let url = format!("http://{}/healthz", world.daemon().local_addr());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn problems(health: &serde_json::Value) -> Vec<String> {
    health["problems"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_topdesk_password_holds_bookings_until_it_is_renewed() {
    let world = World::start().await;
    let (_, password) = world.topdesk.operator_credentials();
    // The application password expires (TOPdesk answers 401 to everything).
    world.topdesk.expire_credentials();
    world.book_in_outlook("During the outage", in_days(2), 60);

    let store = world.daemon().store();
    until("the booking is recorded", || {
        store.bookings().filter_map(Result::ok).count() == 1
    })
    .await;
    eventually("/healthz names the TOPdesk failure", || async {
        let h = health(&world).await;
        h["status"] == "degraded"
            && problems(&h)
                .iter()
                .any(|p| p.starts_with("TOPdesk poll failing") && p.contains("credentials"))
    })
    .await;
    // Not parked: it waits for its retry.
    assert!(
        store
            .bookings()
            .filter_map(Result::ok)
            .all(|b| b.topdesk_status.as_deref() != Some("parked")),
    );
    assert!(world.reservations().is_empty());

    // An operator sets a new password (the daemon's secret is the same string here);
    // the next poll succeeds, and the refused call (the organizer's person lookup) is
    // issued again once it counts as stale, ten minutes later.
    world.topdesk.set_operator_password(&password);
    eventually("/healthz is ok again", || async {
        health(&world).await["status"] == "ok"
    })
    .await;
    world.graph.advance_clock(Duration::from_secs(11 * 60));
    world
        .reservation_where("the reservation after the outage", |r| {
            r.brief_description == "During the outage"
        })
        .await;
    until("the booking is synced", || {
        store
            .bookings()
            .filter_map(Result::ok)
            .any(|b| b.topdesk_status.as_deref() == Some("in sync"))
    })
    .await;
    assert_eq!(world.reservations().len(), 1);
    world.stop().await;
}
