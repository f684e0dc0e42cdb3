//! The engine state slot (format 4): written with its booking, sealed, gone with it.

use orb_store::{Error, MatchId, Store};

use super::common::{booking, bytes_on_disk, fresh, full_booking, key, open};

#[test]
fn an_engine_state_is_saved_and_read_back_with_its_booking() {
    let (dir, store) = fresh();
    let mut tx = store.transaction();
    tx.save_booking_with_engine_state(full_booking("m1"), b"engine working memory 1")
        .unwrap();
    tx.save_booking(booking("m2"));
    tx.commit().unwrap();
    assert_eq!(
        store.engine_state(&MatchId::new("m1")).unwrap().as_deref(),
        Some(&b"engine working memory 1"[..])
    );
    assert_eq!(store.engine_state(&MatchId::new("m2")).unwrap(), None);
    assert_eq!(store.engine_state(&MatchId::new("absent")).unwrap(), None);
    store.verify_integrity().unwrap();
    drop(store);
    let store = open(&dir.path().join("db"));
    assert_eq!(
        store.engine_state(&MatchId::new("m1")).unwrap().as_deref(),
        Some(&b"engine working memory 1"[..])
    );
    assert!(
        !bytes_on_disk(dir.path(), b"engine working memory"),
        "engine states are sealed on disk"
    );
}

#[test]
fn saving_the_record_without_a_state_drops_the_old_state() {
    let (_dir, store) = fresh();
    let mut tx = store.transaction();
    tx.save_booking_with_engine_state(booking("m1"), b"v1")
        .unwrap();
    tx.commit().unwrap();
    let mut tx = store.transaction();
    tx.save_booking_with_engine_state(booking("m1"), b"v2")
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(
        store.engine_state(&MatchId::new("m1")).unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    // A writer that does not know the engine (an admin tool) saves the record alone:
    // the state of the previous record must not outlive it.
    store.save_booking(&booking("m1")).unwrap();
    assert_eq!(store.engine_state(&MatchId::new("m1")).unwrap(), None);
    store.verify_integrity().unwrap();
}

#[test]
fn deleting_a_booking_deletes_its_state() {
    let (_dir, store) = fresh();
    let mut tx = store.transaction();
    tx.save_booking_with_engine_state(booking("m1"), b"state")
        .unwrap();
    tx.commit().unwrap();
    store.delete_booking(&MatchId::new("m1")).unwrap();
    assert_eq!(store.engine_state(&MatchId::new("m1")).unwrap(), None);
    store.verify_integrity().unwrap();
}

#[test]
fn a_failed_transaction_writes_no_state() {
    let (_dir, store) = fresh();
    let mut a = booking("m1");
    a.room_event_id = Some("re-1".into());
    store.save_booking(&a).unwrap();
    // m2 claims m1's unique room event id: the whole commit fails.
    let mut b = booking("m2");
    b.room_event_id = Some("re-1".into());
    let mut tx = store.transaction();
    tx.save_booking_with_engine_state(b, b"state of m2")
        .unwrap();
    let err = tx.commit().unwrap_err();
    assert!(matches!(err, Error::IndexConflict { .. }), "{err:?}");
    assert_eq!(store.engine_state(&MatchId::new("m2")).unwrap(), None);
    store.verify_integrity().unwrap();
}

#[test]
fn a_state_under_another_master_key_is_refused() {
    let (dir, store) = fresh();
    let mut tx = store.transaction();
    tx.save_booking_with_engine_state(booking("m1"), b"state")
        .unwrap();
    tx.commit().unwrap();
    drop(store);
    // The key check refuses a wrong key before any state is read.
    let wrong = orb_store::MasterKey::from_bytes([7; 32]);
    assert!(matches!(
        Store::open(dir.path().join("db"), &wrong),
        Err(Error::WrongMasterKey)
    ));
    let store = Store::open(dir.path().join("db"), &key()).unwrap();
    assert!(store.engine_state(&MatchId::new("m1")).unwrap().is_some());
}
