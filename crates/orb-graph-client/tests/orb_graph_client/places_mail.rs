//! Places (paged), room lists, one room; sendMail from the configured sender only.

use orb_emulators::graph::{GraphEmulatorConfig, RoomSeed};
use orb_graph_client::{BookingType, Error, Mail, RoomMailbox};

use super::support::*;

#[tokio::test]
async fn rooms_are_listed_across_pages_and_keyed_by_mailbox() {
    let world = World::start_with(GraphEmulatorConfig {
        places_page_size: 2,
        ..GraphEmulatorConfig::default()
    })
    .await;
    for i in 0..3 {
        world.emulator.add_room(RoomSeed::new(
            &format!("Extra-{i}@Example.com"),
            &format!("Extra {i}"),
        ));
    }
    let client = world.client();
    let rooms = client.rooms().await.unwrap();
    assert_eq!(rooms.len(), 5);
    assert!(
        rooms
            .iter()
            .any(|r| r.mailbox.as_str() == "extra-1@example.com")
    );
    assert!(
        rooms
            .iter()
            .all(|r| r.booking_type == BookingType::Standard)
    );
    let pages = world
        .audit()
        .iter()
        .filter(|r| r.operation == "list_rooms")
        .count();
    assert_eq!(pages, 3);

    let lists = client.room_lists().await.unwrap();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].email, "building-1@example.com");
    let in_list = client.rooms_in_list(&lists[0].email).await.unwrap();
    assert_eq!(in_list.len(), 1);
    assert_eq!(in_list[0].mailbox.as_str(), ROOM_A);

    let one = client
        .room(&RoomMailbox::new(ROOM_B).unwrap())
        .await
        .unwrap();
    assert_eq!(one.display_name, "Room B");
    assert_eq!(one.capacity, Some(8));
    assert!(matches!(
        client
            .room(&RoomMailbox::new("nowhere@example.com").unwrap())
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn mail_goes_out_from_the_configured_sender_only() {
    let world = World::start().await;
    let client = world.client();
    let mail = Mail {
        to: vec![ALICE.into()],
        subject: "Your booking".into(),
        body: "TOPdesk refused the booking.".into(),
        save_to_sent_items: false,
    };
    client.send_mail(&mail).await.unwrap();
    let sent = world.emulator.sent_mail();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from, FACILITIES);
    assert!(!sent[0].save_to_sent_items);
    assert_eq!(
        sent[0].message["toRecipients"][0]["emailAddress"]["address"],
        ALICE
    );

    let mut config = world.config();
    config.mail_sender = None;
    let silent = world.client_with(
        config,
        orb_graph_client::Credential::Secret(orb_graph_client::Secret::new(SECRET)),
    );
    assert!(matches!(
        silent.send_mail(&mail).await,
        Err(Error::MailDisabled)
    ));
    assert!(matches!(
        client.send_mail(&Mail { to: vec![], ..mail }).await,
        Err(Error::InvalidInput(_))
    ));
}
