//! Rooms: reservable locations, location cards with optional fields, branches.

use orb_emulators::topdesk::LocationSeed;
use orb_topdesk_client::{BranchId, Fiql, LocationQuery};

use super::support::Harness;

#[tokio::test]
async fn reservable_locations_skip_unbookable_and_archived_rooms() {
    let h = Harness::start().await;
    h.emu.add_location(LocationSeed {
        name: "Storage".into(),
        reservable: false,
        ..LocationSeed::default()
    });
    h.emu.add_location(LocationSeed {
        name: "Old room".into(),
        reservable: true,
        archived: true,
        ..LocationSeed::default()
    });
    let rooms = h.client.reservable_locations(&[]).await.unwrap();
    assert_eq!(rooms.len(), 3);
    assert!(
        rooms
            .iter()
            .all(|r| r.branch.as_ref().map(|b| b.id.as_str()) == Some(h.branch.as_str()))
    );
    let in_branch = h
        .client
        .reservable_locations(&[BranchId::new(h.branch.clone())])
        .await
        .unwrap();
    assert_eq!(in_branch.len(), 3);
    let other_branch = h
        .client
        .reservable_locations(&[BranchId::new("00000000-0000-4000-8000-000000000000")])
        .await
        .unwrap();
    assert!(other_branch.is_empty());
    h.assert_schemas();
}

#[tokio::test]
async fn locations_carry_the_room_mailbox_in_optional_fields() {
    let h = Harness::start().await;
    let plain = h.client.locations(&LocationQuery::default()).await.unwrap();
    assert_eq!(plain.len(), 3);
    assert!(plain.iter().all(|l| l.optional_fields1.is_none()));
    assert_eq!(
        plain
            .iter()
            .find(|l| l.id.as_str() == h.room_a)
            .unwrap()
            .reservable,
        Some(true)
    );

    let query = LocationQuery {
        filter: Some(
            Fiql::eq("optionalFields1.text1", "room-2.14@example.com")
                .and(Fiql::eq("archived", false)),
        ),
        with_optional_fields: true,
        page_size: Some(100),
    };
    let found = h.client.locations(&query).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.as_str(), h.room_a);
    let text1 = found[0].optional_fields1.as_ref().unwrap().text[0].as_deref();
    assert_eq!(text1, Some("room-2.14@example.com"));
    h.assert_schemas();
}

#[tokio::test]
async fn branches_have_time_zones() {
    let h = Harness::start().await;
    let branches = h.client.branches().await.unwrap();
    assert_eq!(branches.len(), 1);
    assert_eq!(branches[0].time_zone.as_deref(), Some("Europe/Amsterdam"));
    h.assert_schemas();
}
