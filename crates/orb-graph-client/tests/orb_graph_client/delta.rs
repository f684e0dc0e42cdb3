//! calendarView delta: paged rounds, changes and removals, and typed resync.

use orb_emulators::graph::{Fault, GraphEmulatorConfig};
use orb_graph_client::{DeltaCursor, DeltaItem, Error, EventPatch, GraphConfig};

use super::support::*;

fn changed_ids(items: &[DeltaItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            DeltaItem::Changed(e) => Some(e.id.to_string()),
            DeltaItem::Removed { .. } => None,
        })
        .collect()
}

fn removed_ids(items: &[DeltaItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            DeltaItem::Removed { id, .. } => Some(id.to_string()),
            DeltaItem::Changed(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn delta_rounds_report_creates_updates_and_removals() {
    let world = World::start_with(GraphEmulatorConfig {
        events_page_size: 2,
        ..GraphEmulatorConfig::default()
    })
    .await;
    let client = world.client();
    let room = mailbox(ROOM_A);
    let mut ids = Vec::new();
    for hour in [8, 10, 12, 14, 16] {
        let ev = client
            .create_event(
                &mailbox(ALICE),
                &meeting(hour, Some(ROOM_A), &format!("d-{hour}")),
            )
            .await
            .unwrap();
        ids.push(ev);
    }
    let (start, end) = day_window();
    let first = client
        .calendar_view_delta(&room, &DeltaCursor::Start { start, end })
        .await
        .unwrap();
    assert_eq!(changed_ids(&first.items).len(), 5);
    let pages = world
        .audit()
        .iter()
        .filter(|r| r.operation == "calendar_view_delta")
        .count();
    assert_eq!(pages, 3, "five items at two per page");

    // Nothing changed: an empty round.
    let quiet = client
        .calendar_view_delta(&room, &DeltaCursor::Link(first.delta_link.clone()))
        .await
        .unwrap();
    assert!(quiet.items.is_empty());

    // One update, one cancellation (the room's copy lingers as cancelled: an update),
    // one deletion of the room's own copy.
    client
        .update_event(
            &mailbox(ALICE),
            &ids[0].id,
            &EventPatch {
                when: Some(orb_graph_client::When::Timed {
                    start: ts("2030-03-05T08:00:00Z"),
                    end: ts("2030-03-05T09:00:00Z"),
                }),
                ..EventPatch::default()
            },
        )
        .await
        .unwrap();
    client
        .cancel_event(&mailbox(ALICE), &ids[1].id, None)
        .await
        .unwrap();
    let room_copy = client
        .find_events_by_ical_uid(&room, ids[2].ical_uid.as_ref().unwrap())
        .await
        .unwrap()
        .remove(0);
    client.delete_event(&room, &room_copy.id).await.unwrap();

    let second = client
        .calendar_view_delta(&room, &DeltaCursor::Link(quiet.delta_link.clone()))
        .await
        .unwrap();
    assert_eq!(changed_ids(&second.items).len(), 2);
    assert_eq!(removed_ids(&second.items), [room_copy.id.to_string()]);
    let cancelled = second
        .items
        .iter()
        .any(|i| matches!(i, DeltaItem::Changed(e) if e.is_cancelled));
    assert!(cancelled);
}

#[tokio::test]
async fn an_expired_delta_token_is_resync_required() {
    for gone in [true, false] {
        let world = World::start().await;
        let client = world.client();
        let room = mailbox(ROOM_A);
        client
            .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "x"))
            .await
            .unwrap();
        let (start, end) = day_window();
        let round = client
            .calendar_view_delta(&room, &DeltaCursor::Start { start, end })
            .await
            .unwrap();
        world.emulator.inject(Fault::ExpireDeltaTokens { gone });
        let err = client
            .calendar_view_delta(&room, &DeltaCursor::Link(round.delta_link))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ResyncRequired { .. }), "{err:?}");
        // The full resync: a new chain sees everything again.
        let again = client
            .calendar_view_delta(&room, &DeltaCursor::Start { start, end })
            .await
            .unwrap();
        assert_eq!(changed_ids(&again.items).len(), 1);
    }
}

#[tokio::test]
async fn delta_links_to_another_host_are_refused() {
    let world = World::start().await;
    let client = world.client();
    let err = client
        .calendar_view_delta(
            &mailbox(ROOM_A),
            &DeltaCursor::Link(
                "https://attacker.example.com/v1.0/users/x/calendarView/delta?$deltatoken=1".into(),
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
    assert!(world.emulator.requests().is_empty());
}

#[tokio::test]
async fn the_delta_page_size_preference_is_sent() {
    let world = World::start().await;
    let mut config: GraphConfig = world.config();
    config.delta_page_size = Some(1);
    let client = world.client_with(
        config,
        orb_graph_client::Credential::Secret(orb_graph_client::Secret::new(SECRET)),
    );
    for hour in [8, 10] {
        client
            .create_event(
                &mailbox(ALICE),
                &meeting(hour, Some(ROOM_A), &format!("s-{hour}")),
            )
            .await
            .unwrap();
    }
    let (start, end) = day_window();
    let round = client
        .calendar_view_delta(&mailbox(ROOM_A), &DeltaCursor::Start { start, end })
        .await
        .unwrap();
    assert_eq!(round.items.len(), 2);
    let delta_requests: Vec<_> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/delta"))
        .collect();
    assert_eq!(delta_requests.len(), 2);
    assert!(
        delta_requests[0]
            .prefer
            .iter()
            .any(|p| p == "odata.maxpagesize=1")
    );
}
