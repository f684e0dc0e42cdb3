//! Format version and migrations.

use orb_store::{CURRENT_FORMAT, Error, Store};

use super::common::{booking, full_booking, key, open};

#[test]
fn a_new_store_records_the_current_format() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.format_version().unwrap(), CURRENT_FORMAT);
    drop(store);
    assert_eq!(open(dir.path()).format_version().unwrap(), CURRENT_FORMAT);
}

/// Opens the store's engine directly (compression is part of the format), waiting for
/// the lock a just-dropped `Store` may still hold while its threads finish.
fn raw(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(path).use_compression(true).open() {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn set_raw_format(path: &std::path::Path, version: u32, drop_correlation_index: bool) {
    let db = raw(path);
    let meta = db.open_tree("meta").unwrap();
    meta.insert("format_version", &version.to_be_bytes())
        .unwrap();
    if drop_correlation_index {
        let idx = db.open_tree("booking_idx").unwrap();
        // Booking index kind 14 (correlation id) did not exist in format 1.
        for k in idx.scan_prefix([14u8]).keys() {
            idx.remove(k.unwrap()).unwrap();
        }
    }
    db.flush().unwrap();
}

#[test]
fn a_newer_format_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).save_booking(&booking("m1")).unwrap();
    set_raw_format(dir.path(), CURRENT_FORMAT + 7, false);
    let err = Store::open(dir.path(), &key()).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedFormat { found, supported } if found == CURRENT_FORMAT + 7 && supported == CURRENT_FORMAT),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "state store format version {} is newer than the supported version {CURRENT_FORMAT}; upgrade orb",
            CURRENT_FORMAT + 7
        )
    );
}

/// A format-1 store (the first format: no correlation-id index) is made by writing
/// bookings, then removing the correlation index entries and stamping version 1 through
/// the raw engine, which is exactly the layout format 1 had.
#[test]
fn migrates_from_the_first_format() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        for i in 0..2500 {
            let mut b = full_booking(&format!("m{i}"));
            b.correlation_id = format!("corr-{}", i % 10).into();
            b.series_master = None;
            let mut tx = store.transaction();
            tx.save_booking(b);
            tx.commit_buffered().unwrap();
        }
        store.flush().unwrap();
    }
    set_raw_format(dir.path(), 1, true);
    {
        let db = raw(dir.path());
        let idx = db.open_tree("booking_idx").unwrap();
        assert_eq!(
            idx.scan_prefix([14u8]).count(),
            0,
            "fixture has no correlation index"
        );
    }
    let store = open(dir.path());
    assert_eq!(store.format_version().unwrap(), CURRENT_FORMAT);
    assert_eq!(
        store
            .bookings_by_correlation(&"corr-3".into())
            .unwrap()
            .len(),
        250
    );
    store.verify_integrity().unwrap();
    assert_eq!(store.booking_count(), 2500);
}

/// Stores of format 5 and older kept pending inbox bodies in the `inbox` tree. Moves the
/// pending entries of a current store's inbox log (layout in `orb_store`'s `inbox_log`
/// module: `len u32 LE | crc u32 | seq u64 BE | received_at i128 BE | sha256 | sealed
/// body`) into the tree, with `body_of(seq, sealed)` as their body, and removes the log.
/// `template` is a done entry of the tree (the record type is non-exhaustive).
fn inbox_log_into_tree(
    dir: &std::path::Path,
    db: &sled::Db,
    template: &orb_store::InboxEntry,
    body_of: impl Fn(u64, &[u8]) -> Vec<u8>,
) {
    let inbox = db.open_tree("inbox").unwrap();
    let log = dir.join("inbox");
    let mut files: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let mut at = 0;
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            if len == 0 {
                // The unused, zero-filled end of a segment made ahead of time.
                break;
            }
            let rec = &bytes[at + 8..at + 8 + len];
            let seq = u64::from_be_bytes(rec[..8].try_into().unwrap());
            let nanos = i128::from_be_bytes(rec[8..24].try_into().unwrap());
            if !inbox.contains_key(seq.to_be_bytes()).unwrap() {
                let mut e = template.clone();
                e.seq = orb_store::InboxSeq(seq);
                e.received_at = orb_store::Timestamp::from_nanosecond(nanos).unwrap();
                e.hash = rec[24..56].try_into().unwrap();
                e.body = body_of(seq, &rec[56..]);
                e.done_at = None;
                inbox
                    .insert(seq.to_be_bytes(), postcard::to_allocvec(&e).unwrap())
                    .unwrap();
            }
            at += 8 + len;
        }
    }
    std::fs::remove_dir_all(&log).unwrap();
}

/// A format-2 store keeps inbox bodies in plain text. Made from a current store by
/// replacing each sealed body with its plain text and stamping version 2.
#[test]
fn migrating_to_format_3_seals_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("{{\"value\":[{{\"clientState\":\"plain-state-{i}\"}}]}}").into_bytes())
        .collect();
    {
        let store = open(dir.path());
        for b in &bodies {
            store
                .append_inbox(b, orb_store::Timestamp::UNIX_EPOCH)
                .unwrap();
        }
        let first = store.pending_inbox().unwrap()[0].seq;
        store
            .mark_inbox_done(first, orb_store::Timestamp::UNIX_EPOCH)
            .unwrap();
    }
    {
        let db = raw(dir.path());
        let inbox = db.open_tree("inbox").unwrap();
        let template: orb_store::InboxEntry =
            postcard::from_bytes(&inbox.first().unwrap().unwrap().1).unwrap();
        let first = template.seq.0;
        inbox_log_into_tree(dir.path(), &db, &template, |seq, sealed| {
            assert!(!contains(sealed, b"plain-state-"), "format 3 seals bodies");
            bodies[(seq - first) as usize].clone()
        });
        for (i, item) in inbox.iter().enumerate() {
            let (k, v) = item.unwrap();
            let mut e: orb_store::InboxEntry = postcard::from_bytes(&v).unwrap();
            e.body = bodies[i].clone();
            inbox.insert(k, postcard::to_allocvec(&e).unwrap()).unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert("format_version", &2u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    {
        let store = open(dir.path());
        assert_eq!(store.format_version().unwrap(), CURRENT_FORMAT);
        let pending = store.pending_inbox().unwrap();
        assert_eq!(pending.len(), 19, "the done entry stays done");
        for (e, b) in pending.iter().zip(&bodies[1..]) {
            assert_eq!(&e.body, b);
        }
        // Duplicate detection still recognises a migrated body.
        assert!(
            store
                .append_inbox(&bodies[5], orb_store::Timestamp::UNIX_EPOCH)
                .unwrap()
                .duplicate
        );
    }
    let db = raw(dir.path());
    for item in db.open_tree("inbox").unwrap().iter() {
        let (_, v) = item.unwrap();
        assert!(!contains(&v, b"plain-state-"), "migrated bodies are sealed");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A format-3 store has no `engine_state` tree. Made from a current store by dropping
/// the tree and stamping version 3.
#[test]
fn migrating_to_format_4_keeps_every_booking_without_an_engine_state() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        for i in 0..50 {
            store.save_booking(&full_booking(&format!("m{i}"))).unwrap();
        }
    }
    {
        let db = raw(dir.path());
        assert!(db.drop_tree("engine_state").unwrap());
        db.open_tree("meta")
            .unwrap()
            .insert("format_version", &3u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    {
        let store = open(dir.path());
        assert_eq!(store.format_version().unwrap(), CURRENT_FORMAT);
        assert_eq!(store.booking_count(), 50);
        assert_eq!(
            store.booking(&"m7".into()).unwrap().unwrap(),
            full_booking("m7")
        );
        assert_eq!(store.engine_state(&"m7".into()).unwrap(), None);
        store.verify_integrity().unwrap();
        // The migrated store takes engine states.
        let mut tx = store.transaction();
        tx.save_booking_with_engine_state(full_booking("m7"), b"state")
            .unwrap();
        tx.commit().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(
        store.engine_state(&"m7".into()).unwrap().as_deref(),
        Some(&b"state"[..])
    );
    store.verify_integrity().unwrap();
}

/// A format-4 store keeps the body of a done inbox entry. Made from a current store by
/// putting the (sealed) bodies back into the done entries and stamping version 4.
#[test]
fn migrating_to_format_5_drops_the_bodies_of_done_inbox_entries() {
    let dir = tempfile::tempdir().unwrap();
    let bodies: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("{{\"value\":[{{\"n\":{i}}}]}}").into_bytes())
        .collect();
    let seqs: Vec<_> = {
        let store = open(dir.path());
        let seqs: Vec<_> = bodies
            .iter()
            .map(|b| {
                store
                    .append_inbox(b, orb_store::Timestamp::UNIX_EPOCH)
                    .unwrap()
                    .seq
            })
            .collect();
        for seq in &seqs[..4] {
            store
                .mark_inbox_done(*seq, orb_store::Timestamp::UNIX_EPOCH)
                .unwrap();
        }
        seqs
    };
    {
        let db = raw(dir.path());
        let inbox = db.open_tree("inbox").unwrap();
        let template: orb_store::InboxEntry =
            postcard::from_bytes(&inbox.first().unwrap().unwrap().1).unwrap();
        inbox_log_into_tree(dir.path(), &db, &template, |_, sealed| sealed.to_vec());
        // Format 5 wrote the done entries without a body; format 4 kept it.
        let sealed: Vec<Vec<u8>> = inbox
            .iter()
            .map(|item| {
                let e: orb_store::InboxEntry = postcard::from_bytes(&item.unwrap().1).unwrap();
                e.body
            })
            .collect();
        assert!(sealed[..4].iter().all(Vec::is_empty));
        assert!(sealed[4..].iter().all(|b| !b.is_empty()));
        for item in inbox.iter().take(4) {
            let (k, v) = item.unwrap();
            let mut e: orb_store::InboxEntry = postcard::from_bytes(&v).unwrap();
            e.body = sealed[9].clone();
            inbox.insert(k, postcard::to_allocvec(&e).unwrap()).unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert("format_version", &4u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    {
        let store = open(dir.path());
        assert_eq!(store.format_version().unwrap(), CURRENT_FORMAT);
        assert_eq!(store.inbox_len(), 10);
        let pending = store.pending_inbox().unwrap();
        assert_eq!(pending.len(), 6);
        for (e, b) in pending.iter().zip(&bodies[4..]) {
            assert_eq!(&e.body, b);
        }
        let done = store.inbox_entry(seqs[0]).unwrap().unwrap();
        assert!(done.done_at.is_some() && done.body.is_empty());
        // Duplicates of done bodies are still recognised.
        let again = store
            .append_inbox(&bodies[2], orb_store::Timestamp::UNIX_EPOCH)
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(again.seq, seqs[2]);
        store.verify_integrity().unwrap();
    }
    let db = raw(dir.path());
    for item in db.open_tree("inbox").unwrap().iter().take(4) {
        let e: orb_store::InboxEntry = postcard::from_bytes(&item.unwrap().1).unwrap();
        assert!(e.body.is_empty(), "the migration drops done bodies");
    }
}

/// Format 6 moves pending bodies from the tree to the inbox log. A crash after the log
/// copy is durable but before the tree entries are deleted leaves both: the next open
/// must neither lose nor double an entry.
#[test]
fn migrating_to_format_6_moves_pending_bodies_to_the_log_even_after_a_crash_midway() {
    for crash_midway in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let bodies: Vec<Vec<u8>> = (0..8)
            .map(|i| format!("{{\"value\":[{{\"m\":{i}}}]}}").into_bytes())
            .collect();
        let seqs: Vec<_> = {
            let store = open(dir.path());
            let seqs: Vec<_> = bodies
                .iter()
                .map(|b| {
                    store
                        .append_inbox(b, orb_store::Timestamp::UNIX_EPOCH)
                        .unwrap()
                        .seq
                })
                .collect();
            store
                .mark_inbox_done(seqs[0], orb_store::Timestamp::UNIX_EPOCH)
                .unwrap();
            seqs
        };
        let saved_log = dir.path().join("saved-log");
        if crash_midway {
            copy_dir(&dir.path().join("inbox"), &saved_log);
        }
        {
            let db = raw(dir.path());
            let inbox = db.open_tree("inbox").unwrap();
            let template: orb_store::InboxEntry =
                postcard::from_bytes(&inbox.first().unwrap().unwrap().1).unwrap();
            inbox_log_into_tree(dir.path(), &db, &template, |_, sealed| sealed.to_vec());
            assert_eq!(inbox.len(), 8);
            db.open_tree("meta")
                .unwrap()
                .insert("format_version", &5u32.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        if crash_midway {
            std::fs::rename(&saved_log, dir.path().join("inbox")).unwrap();
        }
        {
            let store = open(dir.path());
            assert_eq!(store.format_version().unwrap(), CURRENT_FORMAT);
            let pending = store.pending_inbox().unwrap();
            assert_eq!(
                pending.iter().map(|e| e.seq).collect::<Vec<_>>(),
                seqs[1..],
                "crash midway: {crash_midway}"
            );
            for (e, b) in pending.iter().zip(&bodies[1..]) {
                assert_eq!(&e.body, b);
            }
            assert_eq!(store.inbox_len(), 8);
            assert!(
                store
                    .append_inbox(&bodies[0], orb_store::Timestamp::UNIX_EPOCH)
                    .unwrap()
                    .duplicate
            );
            let new = store
                .append_inbox(b"new", orb_store::Timestamp::UNIX_EPOCH)
                .unwrap();
            assert!(new.seq > seqs[7]);
            store.verify_integrity().unwrap();
        }
        let db = raw(dir.path());
        assert_eq!(
            db.open_tree("inbox").unwrap().len(),
            1,
            "the tree keeps only the done record"
        );
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The migration copies every pending body into the log's first segment, however large
/// the backlog. Starting the next segment (on append, or made ahead of time after an
/// engine flush) must not reuse that segment's name: it would overwrite or delete it.
#[test]
fn a_large_backlog_moved_to_the_log_survives_the_segments_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = orb_store::OpenOptions::default();
    opts.inbox_segment_bytes = 4096;
    let at = orb_store::Timestamp::UNIX_EPOCH;
    let body = |i: usize| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(500)).into_bytes();
    let seqs: Vec<_> = {
        let store = Store::open_with(dir.path(), &key(), opts.clone()).unwrap();
        let seqs: Vec<_> = (0..40)
            .map(|i| store.append_inbox(&body(i), at).unwrap().seq)
            .collect();
        store.mark_inbox_done(seqs[0], at).unwrap();
        seqs
    };
    {
        let db = raw(dir.path());
        let inbox = db.open_tree("inbox").unwrap();
        let template: orb_store::InboxEntry =
            postcard::from_bytes(&inbox.first().unwrap().unwrap().1).unwrap();
        inbox_log_into_tree(dir.path(), &db, &template, |_, sealed| sealed.to_vec());
        db.open_tree("meta")
            .unwrap()
            .insert("format_version", &5u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let (done, new) = {
        let store = Store::open_with(dir.path(), &key(), opts.clone()).unwrap();
        assert_eq!(store.format_version().unwrap(), CURRENT_FORMAT);
        // Engine flushes run the log's housekeeping.
        store.mark_inbox_done(seqs[1], at).unwrap();
        store.mark_inbox_done(seqs[2], at).unwrap();
        let new = store.append_inbox(b"after the migration", at).unwrap().seq;
        (seqs[1], new)
    };
    let store = Store::open_with(dir.path(), &key(), opts).unwrap();
    let pending: Vec<_> = store.pending_inbox().unwrap();
    let mut expected: Vec<_> = seqs[3..].to_vec();
    expected.push(new);
    assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), expected);
    for (e, i) in pending.iter().zip(3..40) {
        assert_eq!(e.body, body(i));
    }
    assert!(store.inbox_entry(done).unwrap().unwrap().done_at.is_some());
    store.verify_integrity().unwrap();
}
