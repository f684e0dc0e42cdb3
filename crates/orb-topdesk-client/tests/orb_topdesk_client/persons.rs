//! Persons: lookup by e-mail over v2 (duplicates, archived cards, case, `next`) and the
//! v1 fallback on 406.

use orb_emulators::topdesk::{PersonSeed, PersonsApi};
use orb_topdesk_client::PersonLookup;

use super::support::Harness;

fn person(first: &str, email: &str, archived: bool) -> PersonSeed {
    PersonSeed {
        first_name: first.into(),
        sur_name: "Tester".into(),
        email: Some(email.into()),
        archived,
        ..PersonSeed::default()
    }
}

#[tokio::test]
async fn finds_one_person_case_insensitively() {
    let h = Harness::start().await;
    match h
        .client
        .person_by_email("  Eva.Jansen@EXAMPLE.com ")
        .await
        .unwrap()
    {
        PersonLookup::Found(p) => {
            assert_eq!(p.id.as_str(), h.eva);
            assert_eq!(p.dynamic_name.as_deref(), Some("Jansen, Eva"));
            assert!(p.branch.is_some());
        }
        other => panic!("{other:?}"),
    }
    let v2 = h
        .emu
        .exchanges()
        .into_iter()
        .find(|e| e.path == "/persons")
        .unwrap();
    assert_eq!(
        v2.accept.as_deref(),
        Some("application/x.topdesk-collection-person-v2+json")
    );
    assert!(v2.query.iter().any(|(k, v)| k == "pageSize" && v == "2"));
    assert!(
        v2.query
            .iter()
            .any(|(k, v)| k == "query" && v.contains("archived==false"))
    );
    assert_eq!(
        h.client
            .person_by_email("nobody@example.com")
            .await
            .unwrap(),
        PersonLookup::NotFound
    );
    h.assert_schemas();
}

#[tokio::test]
async fn duplicate_cards_are_ambiguous() {
    let h = Harness::start().await;
    h.emu
        .add_person(person("Piet", "shared@example.com", false));
    h.emu
        .add_person(person("Paul", "Shared@Example.com", false));
    h.emu.add_person(person("Pim", "shared@example.com", false));
    match h
        .client
        .person_by_email("shared@example.com")
        .await
        .unwrap()
    {
        PersonLookup::Ambiguous(people) => assert_eq!(people.len(), 2),
        other => panic!("{other:?}"),
    }
    h.assert_schemas();
}

#[tokio::test]
async fn archived_cards_are_never_chosen() {
    let h = Harness::start().await;
    h.emu.add_person(person("Old", "mover@example.com", true));
    let active = h.emu.add_person(person("New", "mover@example.com", false));
    match h.client.person_by_email("mover@example.com").await.unwrap() {
        PersonLookup::Found(p) => assert_eq!(p.id.as_str(), active),
        other => panic!("{other:?}"),
    }
    h.emu.add_person(person("Gone", "gone@example.com", true));
    assert_eq!(
        h.client.person_by_email("gone@example.com").await.unwrap(),
        PersonLookup::NotFound
    );
    h.assert_schemas();
}

#[tokio::test]
async fn follows_next_when_pages_are_smaller_than_asked() {
    let h = Harness::start().await;
    h.emu.set_persons_page_cap(Some(1));
    h.emu.add_person(person("A", "twice@example.com", false));
    h.emu.add_person(person("B", "twice@example.com", false));
    match h.client.person_by_email("twice@example.com").await.unwrap() {
        PersonLookup::Ambiguous(people) => assert_eq!(people.len(), 2),
        other => panic!("{other:?}"),
    }
    let pages: Vec<_> = h
        .emu
        .exchanges()
        .into_iter()
        .filter(|e| e.path == "/persons")
        .collect();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].status, 206);
    assert!(
        pages[1]
            .query
            .iter()
            .any(|(k, v)| k == "pageStart" && v == "1")
    );
    h.assert_schemas();
}

#[tokio::test]
async fn falls_back_to_v1_on_406_and_remembers() {
    let h = Harness::start().await;
    h.emu.set_persons_api(PersonsApi::V1Only);
    h.emu.add_person(person("Old", "v1@example.com", true));
    let active = h.emu.add_person(person("New", "v1@example.com", false));
    match h.client.person_by_email("V1@example.com").await.unwrap() {
        PersonLookup::Found(p) => assert_eq!(p.id.as_str(), active),
        other => panic!("{other:?}"),
    }
    h.emu.add_person(person("Twin", "v1@example.com", false));
    assert!(matches!(
        h.client.person_by_email("v1@example.com").await.unwrap(),
        PersonLookup::Ambiguous(_)
    ));
    assert_eq!(
        h.client.person_by_email("none@example.com").await.unwrap(),
        PersonLookup::NotFound
    );
    let statuses: Vec<u16> = h
        .emu
        .exchanges()
        .iter()
        .filter(|e| e.path == "/persons")
        .map(|e| e.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 406).count(),
        1,
        "v2 tried once: {statuses:?}"
    );
    assert!(statuses.contains(&204));
    h.assert_schemas();
}
