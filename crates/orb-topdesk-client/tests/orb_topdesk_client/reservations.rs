//! Reservations: create, read, list with paging, update, reschedule, rooms, cancel,
//! reject, series.

use jiff::civil::date;
use orb_emulators::topdesk::{DoubleBooking, TopdeskConfig};
use orb_topdesk_client::{
    CancelOutcome, Error, ExternalLinkId, ExternalLinkType, Fiql, LocationId, NewReservationStatus,
    ReservationNumber, ReservationQuery, ReservationRef, ReservationStatus, ReservationUpdate,
    SeriesDates,
};
use serde_json::json;

use super::support::{Harness, LINK_TYPE, ts};

fn room_filter(room: &str) -> Fiql {
    Fiql::eq("reservedFacilities.location.id", room).and(Fiql::eq("archived", false))
}

#[tokio::test]
async fn create_truncates_and_reads_back_by_id_and_number() {
    let h = Harness::start().await;
    let mut new = h.meeting("2026-05-04T09:00:42Z", "2026-05-04T10:00:59.9Z", "ical-1");
    let subject: String = "Überlange Besprechung ".repeat(10);
    new.brief_description = Some(subject.clone());
    let created = h.client.create_reservation(&new).await.unwrap();

    assert_eq!(created.planned_start, Some(ts("2026-05-04T09:00:00Z")));
    assert_eq!(created.planned_end, Some(ts("2026-05-04T10:00:00Z")));
    let brief = created.brief_description.clone().unwrap();
    assert_eq!(brief.chars().count(), 100);
    assert!(subject.starts_with(&brief));
    assert_eq!(created.status, Some(ReservationStatus::Planned));
    assert_eq!(created.requester.as_ref().unwrap().id.as_str(), h.eva);
    assert_eq!(
        created
            .location_ids()
            .map(LocationId::as_str)
            .collect::<Vec<_>>(),
        vec![h.room_a.as_str()]
    );
    let link = created
        .external_link(ExternalLinkType::new(LINK_TYPE).unwrap())
        .unwrap();
    assert_eq!(link.id, ExternalLinkId::new("ical-1"));
    assert!(created.modification_date.is_some());

    let by_id = h
        .client
        .reservation(&ReservationRef::from(&created.id))
        .await
        .unwrap();
    let number = created.number.clone().unwrap();
    assert!(
        number.as_str().contains(' '),
        "numbers contain a space and must be encoded"
    );
    let by_number = h
        .client
        .reservation(&ReservationRef::from(&number))
        .await
        .unwrap();
    assert_eq!(by_id, created);
    assert_eq!(by_number, created);

    let snapshot = h.emu.reservation(created.id.as_str()).unwrap();
    assert_eq!(
        snapshot.external_link,
        Some(("ical-1".into(), "4711".into()))
    );
    h.assert_schemas();
}

#[tokio::test]
async fn unknown_reservation_is_not_found() {
    let h = Harness::start().await;
    let err = h
        .client
        .reservation(&ReservationNumber::new("R0000 0000").into())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    h.assert_schemas();
}

#[tokio::test]
async fn keyset_paging_dedupes_equal_start_times_at_page_boundaries() {
    let h = Harness::start_with(TopdeskConfig {
        double_booking: DoubleBooking::MarkConflicting,
        ..Default::default()
    })
    .await;
    // Seven reservations; four share 10:00, so a page of three ends inside that group.
    let starts = [
        "09:00", "10:00", "10:00", "10:00", "10:00", "11:00", "12:00",
    ];
    let mut ids = Vec::new();
    for (i, s) in starts.iter().enumerate() {
        let new = h.meeting(
            &format!("2026-05-04T{s}:00Z"),
            &format!("2026-05-04T{}:30:00Z", &s[..2]),
            &format!("ical-{i}"),
        );
        ids.push(h.client.create_reservation(&new).await.unwrap().id);
    }
    let query = ReservationQuery::new(room_filter(&h.room_a))
        .with_fields(["status", "externalLinks"])
        .with_page_size(3);
    let listed = h.client.list_reservations(&query).await.unwrap();

    let got: Vec<_> = listed.iter().map(|r| r.id.clone()).collect();
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no duplicates");
    assert_eq!(got.len(), ids.len(), "nothing lost");
    let starts: Vec<_> = listed.iter().map(|r| r.planned_start.unwrap()).collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "ordered by plannedStartDate"
    );
    assert!(
        listed.iter().all(|r| r.brief_description.is_none()),
        "$fields respected"
    );
    assert!(listed.iter().all(|r| r.external_links.len() == 1));

    let pages = h
        .emu
        .exchanges()
        .into_iter()
        .filter(|e| e.path == "/reservations" && e.method == "GET")
        .collect::<Vec<_>>();
    assert!(pages.len() >= 3, "paged: {}", pages.len());
    assert!(pages.iter().any(|e| e.status == 206));
    let continuation = pages[1]
        .query
        .iter()
        .find(|(k, _)| k == "query")
        .unwrap()
        .1
        .clone();
    assert!(
        continuation.contains("plannedStartDate=ge="),
        "{continuation}"
    );
    h.assert_schemas();
}

#[tokio::test]
async fn paging_widens_the_page_when_one_instant_fills_it() {
    let h = Harness::start_with(TopdeskConfig {
        double_booking: DoubleBooking::MarkConflicting,
        ..Default::default()
    })
    .await;
    for i in 0..5 {
        let new = h.meeting(
            "2026-05-04T10:00:00Z",
            "2026-05-04T11:00:00Z",
            &format!("same-{i}"),
        );
        h.client.create_reservation(&new).await.unwrap();
    }
    let listed = h
        .client
        .list_reservations(&ReservationQuery::new(room_filter(&h.room_a)).with_page_size(2))
        .await
        .unwrap();
    assert_eq!(listed.len(), 5);
    let tops: Vec<String> = h
        .emu
        .exchanges()
        .into_iter()
        .filter(|e| e.path == "/reservations" && e.method == "GET")
        .map(|e| e.query.iter().find(|(k, _)| k == "$top").unwrap().1.clone())
        .collect();
    assert_eq!(tops.first().map(String::as_str), Some("2"));
    assert!(
        tops.iter().any(|t| t.parse::<u32>().unwrap() > 2),
        "{tops:?}"
    );
    // The conflicting ones are visible as such.
    assert!(
        listed
            .iter()
            .filter(|r| r.status == Some(ReservationStatus::ConflictingPlanned))
            .count()
            == 4
    );
    h.assert_schemas();
}

#[tokio::test]
async fn list_filters_by_external_link_and_window() {
    let h = Harness::start().await;
    h.client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "a"))
        .await
        .unwrap();
    h.client
        .create_reservation(&h.meeting("2026-05-05T09:00:00Z", "2026-05-05T10:00:00Z", "b"))
        .await
        .unwrap();
    let by_link = Fiql::eq("externalLinks.id", "b")
        .and(Fiql::eq("externalLinks.type", LINK_TYPE.to_string()));
    let found = h
        .client
        .list_reservations(&ReservationQuery::new(by_link))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let window = Fiql::ge("plannedEndDate", ts("2026-05-04T00:00:00+00:00"))
        .and(Fiql::lt("plannedStartDate", ts("2026-05-05T00:00:00+0000")));
    assert_eq!(
        h.client
            .list_reservations(&ReservationQuery::new(window))
            .await
            .unwrap()
            .len(),
        1
    );
    let status = Fiql::is_in("status", ["planned", "request"]);
    assert_eq!(
        h.client
            .list_reservations(&ReservationQuery::new(status))
            .await
            .unwrap()
            .len(),
        2
    );
    // Filtering on a field TOPdesk does not list is a 400, not an empty result.
    let err = h
        .client
        .list_reservations(&ReservationQuery::new(Fiql::ge(
            "modificationDate",
            ts("2026-01-01T00:00:00Z"),
        )))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
    h.assert_schemas();
}

#[tokio::test]
async fn patch_updates_fields_and_external_link_is_write_once() {
    let h = Harness::start().await;
    let created = h
        .client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "x"))
        .await
        .unwrap();
    let id = ReservationRef::from(&created.id);
    let update = ReservationUpdate {
        brief_description: Some("Renamed".into()),
        notes: Some("new notes".into()),
        number_of_persons: Some(9),
        ..Default::default()
    };
    let updated = h.client.update_reservation(&id, &update).await.unwrap();
    assert_eq!(updated.brief_description.as_deref(), Some("Renamed"));
    assert_eq!(updated.number_of_persons, Some(9));
    assert!(updated.modification_date > created.modification_date);

    let rewrite = ReservationUpdate {
        external_link_id: Some(ExternalLinkId::new("other")),
        ..Default::default()
    };
    let err = h
        .client
        .update_reservation(&id, &rewrite)
        .await
        .unwrap_err();
    assert!(err.has_error_code("externalLinkAlreadySet"), "{err:?}");

    // Adopting a reservation made in TOPdesk: set the link once.
    let native = h
        .emu
        .create_reservation(json!({"requester": {"id": h.eva}, "plannedStartDate": "2026-05-06T09:00:00Z",
            "plannedEndDate": "2026-05-06T10:00:00Z", "reservedFacilities": [{"location": {"id": h.room_b}}]}))
        .unwrap();
    let adopted = h
        .client
        .update_reservation(
            &ReservationRef::Id(native.as_str().into()),
            &ReservationUpdate {
                external_link_id: Some(ExternalLinkId::new("adopted")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(adopted.external_links.len(), 1);
    h.assert_schemas();
}

#[tokio::test]
async fn reschedule_respects_service_windows() {
    let h = Harness::start().await;
    let mut new = h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "w");
    new.locations = vec![LocationId::new(h.room_windowed.clone())];
    let created = h.client.create_reservation(&new).await.unwrap();
    let id = ReservationRef::from(&created.id);

    let moved = h
        .client
        .reschedule(&id, ts("2026-05-04T11:15:30Z"), ts("2026-05-04T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(moved.planned_start, Some(ts("2026-05-04T11:15:00Z")));

    let err = h
        .client
        .reschedule(&id, ts("2026-05-04T19:00:00Z"), ts("2026-05-04T20:00:00Z"))
        .await
        .unwrap_err();
    assert!(err.has_error_code("outsideServiceWindow"), "{err:?}");
    assert!(!err.is_retryable());
    let weekend = h
        .client
        .reschedule(&id, ts("2026-05-09T09:00:00Z"), ts("2026-05-09T10:00:00Z"))
        .await
        .unwrap_err();
    assert!(weekend.has_error_code("outsideServiceWindow"));

    let mut outside = h.meeting("2026-05-04T06:00:00Z", "2026-05-04T07:00:00Z", "early");
    outside.locations = vec![LocationId::new(h.room_windowed.clone())];
    let err = h.client.create_reservation(&outside).await.unwrap_err();
    assert!(err.has_error_code("outsideServiceWindow"));
    assert_eq!(
        h.emu.reservation(created.id.as_str()).unwrap().start,
        ts("2026-05-04T11:15:00Z")
    );
    h.assert_schemas();
}

#[tokio::test]
async fn double_booking_is_rejected_or_marked_conflicting() {
    let h = Harness::start().await;
    h.client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "first"))
        .await
        .unwrap();
    let clash = h.meeting("2026-05-04T09:30:00Z", "2026-05-04T10:30:00Z", "second");
    let err = h.client.create_reservation(&clash).await.unwrap_err();
    assert!(err.has_error_code("reservationConflict"), "{err:?}");
    // Back to back is not a conflict.
    h.client
        .create_reservation(&h.meeting("2026-05-04T10:00:00Z", "2026-05-04T11:00:00Z", "third"))
        .await
        .unwrap();

    h.emu.set_double_booking(DoubleBooking::MarkConflicting);
    let created = h.client.create_reservation(&clash).await.unwrap();
    assert_eq!(created.status, Some(ReservationStatus::ConflictingPlanned));
    h.assert_schemas();
}

#[tokio::test]
async fn rooms_move_add_and_remove() {
    let h = Harness::start().await;
    let created = h
        .client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "m"))
        .await
        .unwrap();
    let id = ReservationRef::from(&created.id);
    let (a, b) = (
        LocationId::new(h.room_a.clone()),
        LocationId::new(h.room_b.clone()),
    );

    let moved = h.client.move_facility(&id, &a, &b).await.unwrap();
    assert_eq!(
        moved.location_ids().cloned().collect::<Vec<_>>(),
        vec![b.clone()]
    );
    let added = h
        .client
        .add_facilities(&id, std::slice::from_ref(&a))
        .await
        .unwrap();
    assert_eq!(added.location_ids().count(), 2);
    let removed = h
        .client
        .remove_facilities(&id, std::slice::from_ref(&b))
        .await
        .unwrap();
    assert_eq!(
        removed.location_ids().cloned().collect::<Vec<_>>(),
        vec![a.clone()]
    );
    let err = h
        .client
        .remove_facilities(&id, std::slice::from_ref(&a))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected { .. }),
        "the last room cannot go: {err:?}"
    );
    h.assert_schemas();
}

#[tokio::test]
async fn cancel_uses_the_cached_reason_and_is_idempotent() {
    let h = Harness::start().await;
    let reason = h.emu.add_cancellation_reason("Cancelled in Outlook");
    let first = h
        .client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "c1"))
        .await
        .unwrap();
    let second = h
        .client
        .create_reservation(&h.meeting("2026-05-04T11:00:00Z", "2026-05-04T12:00:00Z", "c2"))
        .await
        .unwrap();

    assert_eq!(
        h.client
            .cancel_reservation(&first.id.clone().into())
            .await
            .unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        h.client
            .cancel_reservation(&second.id.clone().into())
            .await
            .unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        h.client
            .cancel_reservation(&first.id.clone().into())
            .await
            .unwrap(),
        CancelOutcome::AlreadyStopped
    );
    assert_eq!(
        h.emu.reservation(first.id.as_str()).unwrap().status,
        "cancelled"
    );
    assert_eq!(
        h.requests_to("GET", "/reservationCancellationReasons"),
        1,
        "reason list cached"
    );
    let cancel = h
        .emu
        .exchanges()
        .into_iter()
        .find(|e| e.path.ends_with("/cancel"))
        .unwrap();
    assert_eq!(cancel.request_body, Some(json!({"id": reason})));
    assert_eq!(cancel.status, 204);
    h.assert_schemas();
}

#[tokio::test]
async fn cancel_without_reason_fails_unless_topdesk_has_a_default() {
    let h = Harness::start().await;
    let created = h
        .client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "nr"))
        .await
        .unwrap();
    let id = ReservationRef::from(&created.id);
    let err = h.client.cancel_reservation(&id).await.unwrap_err();
    assert!(err.has_error_code("reasonRequired"), "{err:?}");
    assert_eq!(
        h.emu.reservation(created.id.as_str()).unwrap().status,
        "planned"
    );

    h.emu.set_default_cancellation_reason(Some("Default"));
    assert_eq!(
        h.client.cancel_reservation(&id).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let cancels: Vec<_> = h
        .emu
        .exchanges()
        .into_iter()
        .filter(|e| e.path.ends_with("/cancel"))
        .collect();
    assert!(
        cancels.iter().all(|e| e.request_body.is_none()),
        "no body when no reason exists"
    );
    h.assert_schemas();
}

#[tokio::test]
async fn requests_are_rejected_not_cancelled() {
    let h = Harness::start().await;
    h.emu.add_cancellation_reason("Cancelled");
    h.emu.add_rejection_reason("Declined in Outlook");
    let mut new = h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "req");
    new.status = NewReservationStatus::Request;
    let created = h.client.create_reservation(&new).await.unwrap();
    assert_eq!(created.status, Some(ReservationStatus::Request));

    let err = h
        .client
        .cancel_with_reason(&created.id.clone().into(), None)
        .await
        .unwrap_err();
    assert!(err.has_error_code("invalidStatusTransition"), "{err:?}");
    assert_eq!(
        h.client
            .cancel_reservation(&created.id.clone().into())
            .await
            .unwrap(),
        CancelOutcome::Rejected
    );
    assert_eq!(
        h.emu.reservation(created.id.as_str()).unwrap().status,
        "rejectedRequest"
    );
    h.assert_schemas();
}

#[tokio::test]
async fn issued_facilities_block_cancel_and_reschedule() {
    let h = Harness::start().await;
    h.emu.add_cancellation_reason("Cancelled");
    let created = h
        .client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "iss"))
        .await
        .unwrap();
    assert!(h.emu.issue_facilities(created.id.as_str()));
    let id = ReservationRef::from(&created.id);
    assert!(
        h.client
            .cancel_reservation(&id)
            .await
            .unwrap_err()
            .has_error_code("facilityIssued")
    );
    let err = h
        .client
        .reschedule(&id, ts("2026-05-04T11:00:00Z"), ts("2026-05-04T12:00:00Z"))
        .await
        .unwrap_err();
    assert!(err.has_error_code("facilityIssued"));
    let read = h.client.reservation(&id).await.unwrap();
    assert!(read.facilities[0].issued_at.is_some());
    h.assert_schemas();
}

#[tokio::test]
async fn series_make_recurrent_add_and_replace_dates() {
    let h = Harness::start().await;
    let created = h
        .client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "series"))
        .await
        .unwrap();
    let id = ReservationRef::from(&created.id);
    let dates = |ds: &[(i16, i8, i8)]| SeriesDates {
        dates: ds.iter().map(|(y, m, d)| date(*y, *m, *d)).collect(),
        allow_conflicts: false,
    };

    let series = h
        .client
        .make_recurrent(&id, &dates(&[(2026, 5, 11), (2026, 5, 18)]))
        .await
        .unwrap();
    assert_eq!(series.len(), 3);
    let series_id = series[0].series.clone().unwrap();
    assert!(series.iter().all(|o| o.series.as_ref() == Some(&series_id)));
    assert_eq!(series[1].planned_start, Some(ts("2026-05-11T09:00:00Z")));

    let more = h
        .client
        .add_occurrences(&id, &dates(&[(2026, 5, 25), (2026, 5, 18)]))
        .await
        .unwrap();
    assert_eq!(more.len(), 4, "existing dates are ignored");
    let replaced = h
        .client
        .set_occurrences(&id, &dates(&[(2026, 5, 25)]))
        .await
        .unwrap();
    assert_eq!(replaced.len(), 2, "later dates not listed are deleted");

    // Room changes on an occurrence of a series are refused.
    let a = LocationId::new(h.room_a.clone());
    let err = h
        .client
        .move_facility(&id, &a, &LocationId::new(h.room_b.clone()))
        .await
        .unwrap_err();
    assert!(err.has_error_code("seriesOccurrence"), "{err:?}");

    // A date that collides with another booking needs allowConflicts.
    h.client
        .create_reservation(&h.meeting("2026-06-01T09:30:00Z", "2026-06-01T10:30:00Z", "blocker"))
        .await
        .unwrap();
    let err = h
        .client
        .add_occurrences(&id, &dates(&[(2026, 6, 1)]))
        .await
        .unwrap_err();
    assert!(err.has_error_code("reservationConflict"));
    let mut allowed = dates(&[(2026, 6, 1)]);
    allowed.allow_conflicts = true;
    let with_conflict = h.client.add_occurrences(&id, &allowed).await.unwrap();
    assert!(
        with_conflict
            .iter()
            .any(|o| o.status == Some(ReservationStatus::ConflictingPlanned))
    );
    h.assert_schemas();
}

#[tokio::test]
async fn invalid_requests_never_reach_topdesk() {
    let h = Harness::start().await;
    let mut empty = h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "e");
    empty.locations.clear();
    assert!(matches!(
        h.client.create_reservation(&empty).await.unwrap_err(),
        Error::InvalidRequest(_)
    ));
    let backwards = h.meeting("2026-05-04T10:00:00Z", "2026-05-04T10:00:30Z", "b");
    assert!(matches!(
        h.client.create_reservation(&backwards).await.unwrap_err(),
        Error::InvalidRequest(_)
    ));
    assert_eq!(h.emu.request_count(), 0);
}
