//! The audit log.

use orb_store::AuditEntry;

use super::common::{fresh, open, ts};

fn entry(at: i64, corr: &str, booking: Option<&str>, action: &str) -> AuditEntry {
    AuditEntry::new(
        ts(at),
        corr.into(),
        booking.map(Into::into),
        "graph",
        action,
        "201",
    )
}

#[test]
fn audit_is_queryable_by_correlation_and_booking() {
    let (dir, store) = fresh();
    let a = store
        .append_audit(entry(1, "c1", Some("m1"), "POST /events"))
        .unwrap();
    let b = store
        .append_audit(entry(2, "c1", None, "GET /places"))
        .unwrap();
    let mut e = entry(3, "c2", Some("m1"), "PATCH /reservations/1");
    e.detail = Some("retry 2".into());
    let c = store.append_audit(e.clone()).unwrap();
    assert!(a < b && b < c);
    drop(store);
    let store = open(&dir.path().join("db"));
    let by_corr: Vec<_> = store
        .audit_by_correlation(&"c1".into())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(by_corr, vec![a, b]);
    let by_booking = store.audit_by_booking(&"m1".into()).unwrap();
    assert_eq!(
        by_booking.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![a, c]
    );
    assert_eq!(by_booking[1].entry, e);
    assert_eq!(store.audit_since(ts(2), 10).unwrap().len(), 2);
    assert_eq!(store.audit_since(ts(0), 1).unwrap()[0].id, a);
    assert_eq!(store.audit_len(), 3);
}

#[test]
fn retention_prunes_old_records_and_their_index_entries() {
    let (_dir, store) = fresh();
    for i in 0..2500 {
        let mut tx = store.transaction();
        tx.audit(entry(i, &format!("c{}", i % 3), Some("m1"), "GET"))
            .unwrap();
        tx.commit_buffered().unwrap();
    }
    assert_eq!(store.prune_audit(ts(2000)).unwrap(), 2000);
    assert_eq!(store.audit_len(), 500);
    assert_eq!(store.audit_by_booking(&"m1".into()).unwrap().len(), 500);
    assert!(
        store
            .audit_by_correlation(&"c0".into())
            .unwrap()
            .iter()
            .all(|r| r.entry.at >= ts(2000))
    );
    assert_eq!(store.prune_audit(ts(2000)).unwrap(), 0);
    store.verify_integrity().unwrap();
}
