//! The inbox of raw notification bodies.

use orb_store::{OpenOptions, Store};

use super::common::{fresh, key, open, ts};

#[test]
fn append_replay_done_and_duplicates() {
    let (dir, store) = fresh();
    let a = store.append_inbox(b"{\"value\":[1]}", ts(0)).unwrap();
    let b = store.append_inbox(b"{\"value\":[2]}", ts(1)).unwrap();
    assert!(!a.duplicate && !b.duplicate);
    assert!(a.seq < b.seq);
    let dup = store.append_inbox(b"{\"value\":[1]}", ts(2)).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.seq, a.seq);
    assert_eq!(store.inbox_len(), 2);
    drop(store);

    // Replay after restart: both pending, in arrival order, bodies intact.
    let store = open(&dir.path().join("db"));
    let pending = store.pending_inbox().unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].seq, a.seq);
    assert_eq!(pending[0].body, b"{\"value\":[1]}");
    assert_eq!(pending[0].received_at, ts(0));
    assert!(pending[0].done_at.is_none());

    store.mark_inbox_done(a.seq, ts(5)).unwrap();
    store.mark_inbox_done(a.seq, ts(6)).unwrap();
    assert_eq!(
        store.inbox_entry(a.seq).unwrap().unwrap().done_at,
        Some(ts(5))
    );
    let pending = store.pending_inbox().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].seq, b.seq);
    // Still a duplicate while the done entry is retained.
    assert!(
        store
            .append_inbox(b"{\"value\":[1]}", ts(7))
            .unwrap()
            .duplicate
    );
    store.verify_integrity().unwrap();
}

#[test]
fn prune_removes_only_old_done_entries() {
    let (_dir, store) = fresh();
    let a = store.append_inbox(b"a", ts(0)).unwrap();
    let b = store.append_inbox(b"b", ts(0)).unwrap();
    let c = store.append_inbox(b"c", ts(0)).unwrap();
    store.mark_inbox_done(a.seq, ts(10)).unwrap();
    store.mark_inbox_done(b.seq, ts(20)).unwrap();
    // `a`'s body is still in the log segment that holds pending `c`: its done record
    // must stay, or `a` would come back as pending after a restart.
    assert_eq!(store.prune_inbox(ts(15)).unwrap(), 0);
    assert_eq!(store.pending_inbox().unwrap()[0].seq, c.seq);
    store.mark_inbox_done(c.seq, ts(30)).unwrap();
    assert_eq!(store.prune_inbox(ts(15)).unwrap(), 1);
    assert!(store.inbox_entry(a.seq).unwrap().is_none());
    assert!(store.inbox_entry(b.seq).unwrap().is_some());
    assert!(store.pending_inbox().unwrap().is_empty());
    // After pruning, the same body is new again; the others are still known.
    assert!(!store.append_inbox(b"a", ts(30)).unwrap().duplicate);
    assert!(store.append_inbox(b"b", ts(30)).unwrap().duplicate);
    store.verify_integrity().unwrap();
}

#[test]
fn log_segments_are_deleted_once_their_entries_are_done_and_survive_a_restart_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = OpenOptions::default();
    opts.inbox_segment_bytes = 4096;
    let body = |i: usize| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(1000)).into_bytes();
    let seqs: Vec<_> = {
        let store = Store::open_with(dir.path().join("db"), &key(), opts.clone()).unwrap();
        let seqs: Vec<_> = (0..40)
            .map(|i| store.append_inbox(&body(i), ts(0)).unwrap().seq)
            .collect();
        let (_, segments) = store.inbox_log_size();
        assert!(segments >= 10, "{segments} segments");
        // The first 30 done: their segments go, except one shared with pending entries.
        let mut tx = store.transaction();
        for seq in &seqs[..30] {
            tx.mark_inbox_done(*seq, ts(1));
        }
        tx.commit().unwrap();
        let (_, left) = store.inbox_log_size();
        assert!(left <= 4, "{left} of {segments} segments left");
        seqs
    };
    let store = Store::open_with(dir.path().join("db"), &key(), opts).unwrap();
    let pending = store.pending_inbox().unwrap();
    assert_eq!(
        pending.iter().map(|e| e.seq).collect::<Vec<_>>(),
        seqs[30..]
    );
    for (e, i) in pending.iter().zip(30..) {
        assert_eq!(e.body, body(i));
    }
    assert_eq!(store.inbox_len(), 40);
    assert!(store.append_inbox(&body(3), ts(2)).unwrap().duplicate);
    let next = store.append_inbox(b"new", ts(2)).unwrap();
    assert!(next.seq > seqs[39], "numbering continues");
    store.verify_integrity().unwrap();
}

#[test]
fn concurrent_appends_of_the_same_body_store_it_once() {
    let (_dir, store) = fresh();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| store.append_inbox(b"same body", ts(0)).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| !r.duplicate).count(), 1);
    assert!(results.iter().all(|r| r.seq == results[0].seq));
    assert_eq!(store.inbox_len(), 1);
    store.verify_integrity().unwrap();
}

#[test]
fn pending_replay_skips_done_entries_and_survives_reopen() {
    let (dir, store) = fresh();
    let mut seqs = Vec::new();
    for i in 0..500u32 {
        seqs.push(
            store
                .append_inbox(format!("{{\"n\":{i}}}").as_bytes(), ts(0))
                .unwrap()
                .seq,
        );
    }
    // Mark all but every 50th done, some in one transaction, some alone.
    let mut tx = store.transaction();
    for (i, seq) in seqs.iter().enumerate().take(250) {
        if i % 50 != 0 {
            tx.mark_inbox_done(*seq, ts(1));
        }
    }
    tx.commit().unwrap();
    for (i, seq) in seqs.iter().enumerate().skip(250) {
        if i % 50 != 0 {
            store.mark_inbox_done(*seq, ts(1)).unwrap();
        }
    }
    let expected: Vec<_> = seqs.iter().step_by(50).copied().collect();
    let pending: Vec<_> = store
        .pending_inbox()
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(pending, expected);
    assert_eq!(store.pending_inbox_len(), 10);
    assert_eq!(
        store.inbox_len(),
        500,
        "done entries stay for duplicate detection"
    );
    // Marking an entry done twice changes nothing.
    store.mark_inbox_done(seqs[1], ts(2)).unwrap();
    assert_eq!(store.pending_inbox_len(), 10);
    drop(store);
    let store = open(&dir.path().join("db"));
    let again: Vec<_> = store
        .pending_inbox()
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(again, expected);
    assert_eq!(store.pending_inbox_len(), 10);
    assert_eq!(store.pending_inbox().unwrap()[1].body, b"{\"n\":50}");
}

#[test]
fn a_done_entry_keeps_only_its_hash_and_still_catches_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = open(&path);
    let body = b"{\"value\":[\"a fairly long notification body\"]}";
    let seq = store.append_inbox(body, ts(0)).unwrap().seq;
    assert_eq!(store.inbox_entry(seq).unwrap().unwrap().body, body);
    store.mark_inbox_done(seq, ts(1)).unwrap();
    let done = store.inbox_entry(seq).unwrap().unwrap();
    assert_eq!(done.done_at, Some(ts(1)));
    assert!(done.body.is_empty(), "the body goes once processed");
    drop(store);
    // The duplicate map is rebuilt from the hash-only record.
    let store = open(&path);
    let again = store.append_inbox(body, ts(2)).unwrap();
    assert!(again.duplicate);
    assert_eq!(again.seq, seq);
    assert!(store.pending_inbox().unwrap().is_empty());
    store.verify_integrity().unwrap();
}
