//! Delta links and TOPdesk watermarks.

use super::common::{fresh, open, ts};

#[test]
fn delta_links_and_watermarks_persist() {
    let (dir, store) = fresh();
    let room = "room-1@example.com".into();
    assert!(store.delta_link(&room).unwrap().is_none());
    store
        .set_delta_link(&room, "https://graph/delta?$deltatoken=abc")
        .unwrap();
    store
        .set_delta_link(&"room-2@example.com".into(), "other")
        .unwrap();
    store.set_watermark("reservations", ts(5)).unwrap();
    assert!(store.watermark("persons").unwrap().is_none());
    drop(store);
    let store = open(&dir.path().join("db"));
    assert_eq!(
        store.delta_link(&room).unwrap().as_deref(),
        Some("https://graph/delta?$deltatoken=abc")
    );
    assert_eq!(store.watermark("reservations").unwrap(), Some(ts(5)));
    store.clear_delta_link(&room).unwrap();
    assert!(store.delta_link(&room).unwrap().is_none());
    assert_eq!(
        store
            .delta_link(&"room-2@example.com".into())
            .unwrap()
            .as_deref(),
        Some("other")
    );
}
