//! Housekeeping of the running daemon: processed inbox entries do not pile up.

use std::time::Duration;

use super::world::{World, in_days, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_inbox_entries_are_pruned_after_a_day() {
    let world = World::start().await;
    world.book_in_outlook("Kept for a day", in_days(2), 30);
    world
        .reservation_where("the reservation", |r| {
            r.brief_description == "Kept for a day"
        })
        .await;
    let store = world.daemon().store();
    until("the notification is processed", || {
        store.inbox_len() > 0 && store.pending_inbox_len() == 0
    })
    .await;

    // Within the retention nothing is dropped (a re-delivery must still be recognised)…
    world.graph.advance_clock(Duration::from_secs(2 * 3600));
    world.book_in_outlook("Second", in_days(3), 30);
    world
        .reservation_where("the second reservation", |r| {
            r.brief_description == "Second"
        })
        .await;
    until("the second notification is processed", || {
        store.pending_inbox_len() == 0
    })
    .await;
    let kept = store.inbox_len();
    assert!(kept >= 2, "{kept} inbox entries");

    // …after it, processed entries go at the next hourly housekeeping.
    world.graph.advance_clock(Duration::from_secs(25 * 3600));
    until("processed inbox entries are pruned", || {
        store.inbox_len() < kept
    })
    .await;
    assert_eq!(store.pending_inbox_len(), 0);
    world.stop().await;
}
