//! The outbox of planned effects.

use orb_store::{Error, NewEffect, OutboxState};

use super::common::{fresh, open, ts};

fn effect(booking: &str, kind: &str, at: i64) -> NewEffect {
    NewEffect::new(
        Some(booking.into()),
        "corr-1".into(),
        kind,
        format!("{{\"kind\":\"{kind}\"}}").into_bytes(),
        ts(at),
    )
}

#[test]
fn due_effects_come_earliest_first_and_respect_now_and_limit() {
    let (dir, store) = fresh();
    let late = store
        .enqueue(effect("m1", "update_event", 20), ts(0))
        .unwrap();
    let early = store
        .enqueue(effect("m1", "create_reservation", 10), ts(0))
        .unwrap();
    let other = store
        .enqueue(effect("m2", "create_event", 15), ts(0))
        .unwrap();
    assert!(store.due_effects(ts(5), 10).unwrap().is_empty());
    let ids = |v: Vec<orb_store::OutboxEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.due_effects(ts(15), 10).unwrap()),
        vec![early, other]
    );
    assert_eq!(
        ids(store.due_effects(ts(100), 2).unwrap()),
        vec![early, other]
    );
    assert_eq!(store.next_due_at().unwrap(), Some(ts(10)));
    drop(store);
    let store = open(&dir.path().join("db"));
    let e = store.effect(late).unwrap().unwrap();
    assert_eq!(e.kind, "update_event");
    assert_eq!(e.payload, b"{\"kind\":\"update_event\"}");
    assert_eq!(e.attempts, 0);
    assert_eq!(e.state, OutboxState::Pending);
    assert_eq!(e.created_at, ts(0));
    assert_eq!(store.effects_for_booking(&"m1".into()).unwrap().len(), 2);
    store.complete_effect(early).unwrap();
    store.complete_effect(early).unwrap();
    assert!(store.effect(early).unwrap().is_none());
    assert_eq!(store.outbox_depth().unwrap().pending, 2);
    store.verify_integrity().unwrap();
}

#[test]
fn failures_reschedule_then_park_and_admin_retry_revives() {
    let (_dir, store) = fresh();
    let id = store
        .enqueue(effect("m1", "create_event", 0), ts(0))
        .unwrap();
    assert_eq!(
        store
            .effect_failed(id, "503 service unavailable", ts(60), 3)
            .unwrap(),
        OutboxState::Pending
    );
    assert!(store.due_effects(ts(59), 10).unwrap().is_empty());
    assert_eq!(store.due_effects(ts(60), 10).unwrap().len(), 1);
    store.effect_failed(id, "503", ts(120), 3).unwrap();
    assert_eq!(
        store
            .effect_failed(id, "403 mailbox denied", ts(240), 3)
            .unwrap(),
        OutboxState::Parked
    );
    let e = store.effect(id).unwrap().unwrap();
    assert_eq!(e.attempts, 3);
    assert_eq!(e.last_error.as_deref(), Some("403 mailbox denied"));
    assert!(store.due_effects(ts(10_000), 10).unwrap().is_empty());
    assert_eq!(store.parked_effects().unwrap().len(), 1);
    let depth = store.outbox_depth().unwrap();
    assert_eq!((depth.pending, depth.parked), (0, 1));
    store.verify_integrity().unwrap();

    assert_eq!(store.retry_booking(&"m1".into(), ts(500)).unwrap(), 1);
    let e = store.effect(id).unwrap().unwrap();
    assert_eq!((e.attempts, e.state), (0, OutboxState::Pending));
    assert_eq!(store.due_effects(ts(500), 10).unwrap()[0].id, id);
    store.effect_failed(id, "x", ts(600), 1).unwrap();
    store.retry_effect(id, ts(700)).unwrap();
    assert_eq!(store.next_due_at().unwrap(), Some(ts(700)));
    store.verify_integrity().unwrap();
}

#[test]
fn failing_an_unknown_entry_is_not_found() {
    let (_dir, store) = fresh();
    let err = store
        .effect_failed(orb_store::OutboxId(999), "x", ts(1), 3)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: "outbox entry",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "outbox entry 999 not found");
    assert!(store.retry_effect(orb_store::OutboxId(999), ts(1)).is_err());
}
