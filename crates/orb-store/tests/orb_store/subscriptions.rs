//! Subscriptions.

use orb_store::{SecretBytes, Subscription, SubscriptionState};

use super::common::{bytes_on_disk, fresh, open, ts};

fn sub(id: &str, room: &str, state: SubscriptionState) -> Subscription {
    Subscription::new(
        id.into(),
        room.into(),
        SecretBytes::new(format!("client-state-of-{id}-9d8e7f").into_bytes()),
        "cert-1",
        ts(3 * 86_400),
        state,
    )
}

#[test]
fn subscriptions_round_trip_with_sealed_client_state() {
    let (dir, store) = fresh();
    let a = sub("sub-a", "room-1@example.com", SubscriptionState::Active);
    let b = sub("sub-b", "room-2@example.com", SubscriptionState::Pending);
    store.put_subscription(&a).unwrap();
    store.put_subscription(&b).unwrap();
    assert_eq!(
        store.subscription(&"sub-a".into()).unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.subscriptions().unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(
        store
            .subscriptions_for_room(&"room-2@example.com".into())
            .unwrap(),
        vec![b.clone()]
    );
    let mut renewed = a.clone();
    renewed.expires_at = ts(6 * 86_400);
    renewed.state = SubscriptionState::NeedsRenewal;
    store.put_subscription(&renewed).unwrap();
    store.delete_subscription(&"sub-b".into()).unwrap();
    assert!(!format!("{renewed:?}").contains("client-state-of"));
    drop(store);
    assert!(!bytes_on_disk(dir.path(), b"client-state-of-sub-a"));
    let store = open(&dir.path().join("db"));
    assert_eq!(store.subscriptions().unwrap(), vec![renewed]);
    assert!(store.subscription(&"sub-b".into()).unwrap().is_none());
}

#[test]
fn client_state_comparison() {
    let s = sub("sub-a", "room-1@example.com", SubscriptionState::Active);
    assert!(s.client_state.matches(b"client-state-of-sub-a-9d8e7f"));
    assert!(!s.client_state.matches(b"client-state-of-sub-a-9d8e7"));
    assert!(!s.client_state.matches(b""));
}
