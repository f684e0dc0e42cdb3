//! Multi-key transactions and group commit.

use std::sync::Arc;

use orb_store::{AuditEntry, Error, NewEffect, OpenOptions, Store};

use super::common::{booking, fresh, full_booking, key, open, ts};

#[test]
fn one_transaction_writes_record_indexes_outbox_audit_inbox_and_cursor() {
    let (dir, store) = fresh();
    let seq = store.append_inbox(b"notification", ts(0)).unwrap().seq;
    let mut tx = store.transaction();
    tx.save_booking(full_booking("m1"));
    let effect = tx
        .enqueue(
            NewEffect::new(
                Some("m1".into()),
                "c1".into(),
                "create_reservation",
                vec![1, 2],
                ts(0),
            ),
            ts(0),
        )
        .unwrap();
    tx.audit(AuditEntry::new(
        ts(0),
        "c1".into(),
        Some("m1".into()),
        "engine",
        "decide",
        "planned",
    ))
    .unwrap();
    tx.mark_inbox_done(seq, ts(1));
    tx.set_delta_link("room-1@example.com".into(), "delta-1");
    tx.set_watermark("reservations", ts(1));
    assert!(!tx.is_empty());
    tx.commit().unwrap();
    drop(store);
    let store = open(&dir.path().join("db"));
    assert!(
        store
            .booking_by_topdesk_id(&"td-m1".into())
            .unwrap()
            .is_some()
    );
    assert_eq!(store.effect(effect).unwrap().unwrap().payload, vec![1, 2]);
    assert_eq!(store.audit_by_booking(&"m1".into()).unwrap().len(), 1);
    assert!(store.pending_inbox().unwrap().is_empty());
    assert_eq!(
        store
            .delta_link(&"room-1@example.com".into())
            .unwrap()
            .as_deref(),
        Some("delta-1")
    );
    store.verify_integrity().unwrap();
}

#[test]
fn a_failing_operation_aborts_the_whole_transaction() {
    let (_dir, store) = fresh();
    store.save_booking(&full_booking("a")).unwrap();
    let seq = store.append_inbox(b"n", ts(0)).unwrap().seq;
    let mut tx = store.transaction();
    tx.save_booking(booking("new"));
    let effect = tx
        .enqueue(NewEffect::new(None, "c".into(), "k", vec![], ts(0)), ts(0))
        .unwrap();
    tx.mark_inbox_done(seq, ts(1));
    tx.delete_booking("a".into());
    let mut clash = full_booking("b");
    clash.room_event_id = Some("re-x".into());
    clash.topdesk_reservation_id = Some("td-a".into());
    // "a" was deleted earlier in this transaction, so td-a is free: this succeeds...
    tx.save_booking(clash);
    // ...but this one clashes with "b" saved just before, in the same transaction.
    let mut clash2 = booking("c");
    clash2.room_event_id = Some("re-x".into());
    tx.save_booking(clash2);
    let err = tx.commit().unwrap_err();
    assert!(matches!(err, Error::IndexConflict { .. }), "{err:?}");
    // Nothing of it is visible.
    assert!(store.booking(&"new".into()).unwrap().is_none());
    assert!(store.booking(&"a".into()).unwrap().is_some());
    assert!(store.booking(&"b".into()).unwrap().is_none());
    assert!(store.effect(effect).unwrap().is_none());
    assert_eq!(store.pending_inbox().unwrap().len(), 1);
    store.verify_integrity().unwrap();
}

#[test]
fn buffered_commit_is_visible_at_once_and_durable_after_flush() {
    let (dir, store) = fresh();
    let mut tx = store.transaction();
    tx.save_booking(booking("m1"));
    tx.commit_buffered().unwrap();
    assert!(store.booking(&"m1".into()).unwrap().is_some());
    store.flush().unwrap();
    drop(store);
    assert!(
        open(&dir.path().join("db"))
            .booking(&"m1".into())
            .unwrap()
            .is_some()
    );
}

#[test]
fn concurrent_durable_commits_share_flushes() {
    let (_dir, store) = fresh();
    let store = Arc::new(store);
    let per_thread = 40;
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    store
                        .append_inbox(format!("{t}-{i}").as_bytes(), ts(0))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.inbox_len(), 8 * per_thread);
    let flushes = store.flush_count();
    // Each commit needs a flush covering it; with 8 writers they overlap, so strictly
    // fewer flushes than commits happen. (Exact numbers depend on scheduling.)
    assert!(
        flushes < 8 * per_thread as u64,
        "{flushes} flushes for {} commits",
        8 * per_thread
    );
    store.verify_integrity().unwrap();
}

#[test]
fn a_second_open_of_a_store_in_use_is_a_clear_error() {
    let (dir, store) = fresh();
    let mut opts = orb_store::OpenOptions::default();
    opts.lock_timeout = std::time::Duration::from_millis(50);
    let path = dir.path().join("db");
    let err = orb_store::Store::open_with(&path, &super::common::key(), opts).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the state store at {} is in use by another process",
            path.display()
        )
    );
    drop(store);
}

#[test]
fn checkpoint_reopens_with_everything_intact() {
    let (_dir, store) = fresh();
    store.save_booking(&full_booking("m1")).unwrap();
    let seq = store.append_inbox(b"pending", ts(0)).unwrap().seq;
    store.set_secret("s", &"v".into()).unwrap();
    let clone = store.clone();
    // Through a clone, while the original handle stays alive and usable.
    clone.checkpoint().unwrap();
    assert_eq!(store.writes_since_checkpoint(), 0);
    for s in [&store, &clone] {
        assert!(s.booking_by_topdesk_id(&"td-m1".into()).unwrap().is_some());
        assert_eq!(s.pending_inbox().unwrap()[0].seq, seq);
        assert!(s.append_inbox(b"pending", ts(1)).unwrap().duplicate);
        assert_eq!(s.secret("s").unwrap().unwrap().expose(), b"v");
        s.verify_integrity().unwrap();
    }
    store.save_booking(&full_booking("m2")).unwrap();
    assert_eq!(clone.booking_count(), 2);
}

#[test]
fn checkpoint_is_due_after_the_configured_number_of_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = OpenOptions::default();
    opts.checkpoint_after_writes = 3;
    let store = Store::open_with(dir.path().join("db"), &key(), opts).unwrap();
    assert!(!store.checkpoint_due());
    store.save_booking(&booking("a")).unwrap();
    // Inbox appends go to the inbox log, not the engine: the restart replays none.
    store.append_inbox(b"one", ts(0)).unwrap();
    store.append_inbox(b"two", ts(0)).unwrap();
    assert_eq!(store.writes_since_checkpoint(), 1);
    store
        .mark_inbox_done(orb_store::InboxSeq(1), ts(1))
        .unwrap();
    assert_eq!(store.writes_since_checkpoint(), 2);
    assert!(!store.checkpoint_due());
    let mut tx = store.transaction();
    tx.set_watermark("w", ts(1));
    tx.commit_buffered().unwrap();
    assert!(store.checkpoint_due());
    assert!(!store.checkpoint_overdue());
    for i in 0..3 {
        store.save_booking(&booking(&format!("more {i}"))).unwrap();
    }
    assert!(store.checkpoint_overdue(), "twice the interval");
    store.checkpoint().unwrap();
    assert!(!store.checkpoint_due());
    assert!(!store.checkpoint_overdue());
    assert_eq!(store.writes_since_checkpoint(), 0);
}

/// Writers on four clones, readers iterating, and checkpoints in between: nothing
/// committed is lost, nothing waits forever, and a reopen finds every booking.
#[test]
fn writes_through_clones_survive_concurrent_checkpoints_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open(&path);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = store.clone();
                s.spawn(move || {
                    for i in 0..300 {
                        let mut b = full_booking(&format!("w{w}-{i}"));
                        b.topdesk_reservation_id = Some(format!("td-w{w}-{i}").into());
                        b.topdesk_reservation_number = Some(format!("n-w{w}-{i}").into());
                        b.room_event_id = Some(format!("re-w{w}-{i}").into());
                        let mut tx = store.transaction();
                        tx.save_booking(b);
                        tx.mark_inbox_done(
                            store
                                .append_inbox(format!("body {w} {i}").as_bytes(), ts(i))
                                .unwrap()
                                .seq,
                            ts(i),
                        );
                        if i % 2 == 0 {
                            tx.commit().unwrap();
                        } else {
                            tx.commit_buffered().unwrap();
                        }
                    }
                })
            })
            .collect();
        let reader = {
            let store = store.clone();
            let stop = &stop;
            s.spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // The iterator holds no guard between pages, so a lookup per item
                    // cannot deadlock against a waiting checkpoint.
                    for b in store.bookings().take(50) {
                        let b = b.unwrap();
                        assert!(store.booking(&b.match_id).unwrap().is_some());
                    }
                    store.pending_inbox().unwrap();
                }
            })
        };
        let checkpointer = {
            let store = store.clone();
            let stop = &stop;
            s.spawn(move || {
                let mut n = 0;
                loop {
                    let stopped = stop.load(std::sync::atomic::Ordering::Relaxed);
                    if stopped && n > 0 {
                        break;
                    }
                    if stopped || store.writes_since_checkpoint() >= 200 {
                        store.checkpoint().unwrap();
                        n += 1;
                    }
                    std::thread::yield_now();
                }
                n
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
        assert!(checkpointer.join().unwrap() > 0);
    });
    store.flush().unwrap();
    assert_eq!(store.booking_count(), 1200);
    assert_eq!(store.pending_inbox_len(), 0);
    store.verify_integrity().unwrap();
    drop(store);
    let store = open(&path);
    assert_eq!(store.booking_count(), 1200);
    assert_eq!(store.bookings().count(), 1200);
    assert_eq!(store.inbox_len(), 1200);
    assert!(store.pending_inbox().unwrap().is_empty());
    store.verify_integrity().unwrap();
}
