//! The TOPdesk emulator's rules, exercised on the wire.

use std::time::{Duration, Instant};

use orb_emulators::topdesk::{
    BranchSeed, Fault, LocationSeed, PersonSeed, PersonsApi, TopdeskConfig, TopdeskEmulator, codes,
};
use serde_json::{Value, json};

use super::http::{Answer, basic, call};

struct World {
    emu: TopdeskEmulator,
    auth: String,
    room: String,
    person: String,
}

impl World {
    async fn start() -> Self {
        let emu = TopdeskEmulator::start(TopdeskConfig::default())
            .await
            .unwrap();
        let branch = emu.add_branch(BranchSeed {
            name: "HQ".into(),
            time_zone: Some("Europe/Amsterdam".into()),
        });
        let room = emu.add_location(LocationSeed {
            name: "Room 1".into(),
            branch_id: Some(branch),
            reservable: true,
            block_time_minutes: 15,
            ..LocationSeed::default()
        });
        let person = emu.add_person(PersonSeed {
            first_name: "Eva".into(),
            sur_name: "Jansen".into(),
            email: Some("eva@example.com".into()),
            ..PersonSeed::default()
        });
        let (login, password) = emu.operator_credentials();
        Self {
            auth: basic(&login, &password),
            emu,
            room,
            person,
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| b.to_string());
        let headers = [
            ("authorization", self.auth.as_str()),
            ("accept", "application/json"),
        ];
        call(
            self.emu.addr(),
            method,
            &format!("/tas/api{path}"),
            &headers,
            body.as_deref(),
        )
        .await
    }

    fn booking(&self, start: &str, end: &str) -> Value {
        json!({"requester": {"id": self.person}, "plannedStartDate": start, "plannedEndDate": end,
               "reservedFacilities": [{"location": {"id": self.room}}]})
    }
}

fn codes_of(answer: &Answer) -> Vec<String> {
    answer.json()["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|x| x["errorCode"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn requires_basic_auth_and_an_operator() {
    let w = World::start().await;
    let anonymous = call(w.emu.addr(), "GET", "/tas/api/reservations", &[], None).await;
    assert_eq!(anonymous.status, 401);
    let wrong = call(
        w.emu.addr(),
        "GET",
        "/tas/api/reservations",
        &[("authorization", &basic("orb-operator", "nope"))],
        None,
    )
    .await;
    assert_eq!(wrong.status, 401);
    let persons = call(w.emu.addr(), "GET", "/tas/api/persons", &[], None).await;
    assert_eq!(persons.status, 401);
    assert!(
        persons.json()[0]["message"].is_string(),
        "supporting-files error shape"
    );

    w.emu.add_person_account("ssp", "pw");
    let person = call(
        w.emu.addr(),
        "GET",
        "/tas/api/reservations",
        &[("authorization", &basic("ssp", "pw"))],
        None,
    )
    .await;
    assert_eq!(
        person.status, 403,
        "GET /reservations is for operators only"
    );
    assert_eq!(w.send("GET", "/reservations", None).await.status, 200);

    w.emu.expire_credentials();
    assert_eq!(w.send("GET", "/reservations", None).await.status, 401);
}

#[tokio::test]
async fn unknown_paths_and_delete() {
    let w = World::start().await;
    let no_prefix = call(
        w.emu.addr(),
        "GET",
        "/reservations",
        &[("authorization", &w.auth)],
        None,
    )
    .await;
    assert_eq!(
        no_prefix.status, 404,
        "a base URL without /tas/api is a 404"
    );
    let id = w
        .emu
        .create_reservation(w.booking("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z"))
        .unwrap();
    assert_eq!(
        w.send("DELETE", &format!("/reservations/{id}"), None)
            .await
            .status,
        405
    );
    assert_eq!(w.emu.reservations().len(), 1);
}

#[tokio::test]
async fn create_validates_required_and_unknown_fields() {
    let w = World::start().await;
    let missing = w
        .send(
            "POST",
            "/reservations",
            Some(json!({"plannedStartDate": "2026-05-04T09:00:00Z"})),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(codes_of(&missing), vec![codes::FIELD_REQUIRED]);
    assert!(missing.json()["errors"][0]["appliesTo"].is_array());
    assert!(missing.json()["errors"][0]["errorMessage"].is_string());

    let mut invented = w.booking("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z");
    invented["subject"] = json!("x");
    assert_eq!(
        codes_of(&w.send("POST", "/reservations", Some(invented)).await),
        vec![codes::UNKNOWN_FIELD]
    );

    let mut long = w.booking("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z");
    long["briefDescription"] = json!("x".repeat(101));
    assert_eq!(
        codes_of(&w.send("POST", "/reservations", Some(long)).await),
        vec![codes::INVALID_VALUE]
    );

    let mut zero_type = w.booking("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z");
    zero_type["externalLink"] = json!({"id": "x", "type": "0"});
    assert_eq!(
        codes_of(&w.send("POST", "/reservations", Some(zero_type)).await),
        vec![codes::INVALID_VALUE]
    );

    let bare_date = w.booking("2026-05-04", "2026-05-04T10:00:00Z");
    assert_eq!(
        codes_of(&w.send("POST", "/reservations", Some(bare_date)).await),
        vec![codes::INVALID_VALUE]
    );
    let garbage = call(
        w.emu.addr(),
        "POST",
        "/tas/api/reservations",
        &[("authorization", &w.auth)],
        Some("{not json"),
    )
    .await;
    assert_eq!(garbage.status, 400);
    assert!(w.emu.reservations().is_empty());
}

#[tokio::test]
async fn create_returns_location_last_modified_and_block_times() {
    let w = World::start().await;
    let created = w
        .send(
            "POST",
            "/reservations",
            Some(w.booking("2026-05-04T09:00:59+0000", "2026-05-04T10:00:00+00:00")),
        )
        .await;
    assert_eq!(created.status, 201);
    let body = created.json();
    let id = body["id"].as_str().unwrap();
    assert!(
        created
            .header("location")
            .unwrap()
            .ends_with(&format!("/tas/api/reservations/{id}"))
    );
    assert!(created.header("last-modified").unwrap().ends_with("GMT"));
    assert_eq!(body["plannedStartDate"], "2026-05-04T09:00:00Z");
    assert_eq!(
        body["reservedFacilities"][0]["startDateBlock"],
        "2026-05-04T08:45:00Z"
    );
    assert_eq!(
        body["reservedFacilities"][0]["endDateBlock"],
        "2026-05-04T10:15:00Z"
    );
    // Block time counts for conflicts: 10:10 overlaps the clean-up time.
    let clash = w
        .send(
            "POST",
            "/reservations",
            Some(w.booking("2026-05-04T10:10:00Z", "2026-05-04T11:00:00Z")),
        )
        .await;
    assert_eq!(codes_of(&clash), vec![codes::CONFLICT]);
}

#[tokio::test]
async fn modification_date_moves_on_every_change() {
    let w = World::start().await;
    w.emu.add_cancellation_reason("Other");
    let id = w
        .emu
        .create_reservation(w.booking("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z"))
        .unwrap();
    let mut last = w.emu.reservation(&id).unwrap().modification_date;
    let steps: Vec<(&str, String, Option<Value>)> = vec![
        (
            "PATCH",
            format!("/reservations/{id}"),
            Some(json!({"notes": "n"})),
        ),
        (
            "POST",
            format!("/reservations/{id}/reschedule"),
            Some(
                json!({"plannedStartDate": "2026-05-04T11:00:00Z", "plannedEndDate": "2026-05-04T12:00:00Z"}),
            ),
        ),
        (
            "POST",
            format!("/reservations/{id}/cancel"),
            Some(json!({"name": "Other"})),
        ),
    ];
    for (method, path, body) in steps {
        let answer = w.send(method, &path, body).await;
        assert!(answer.status < 300, "{method} {path}: {}", answer.status);
        let now = w.emu.reservation(&id).unwrap().modification_date;
        assert!(now > last, "{method} {path}");
        last = now;
    }
    let again = w
        .send(
            "POST",
            &format!("/reservations/{id}/cancel"),
            Some(json!({"name": "Other"})),
        )
        .await;
    assert_eq!(
        codes_of(&again),
        vec![codes::INVALID_STATUS],
        "cancel only planned or conflictingPlanned"
    );
}

#[tokio::test]
async fn patch_refuses_fields_with_their_own_endpoint() {
    let w = World::start().await;
    let id = w
        .emu
        .create_reservation(w.booking("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z"))
        .unwrap();
    let answer = w
        .send(
            "PATCH",
            &format!("/reservations/{id}"),
            Some(json!({"status": "cancelled"})),
        )
        .await;
    assert_eq!(codes_of(&answer), vec![codes::NOT_UPDATABLE]);
}

#[tokio::test]
async fn list_pages_with_206_and_checks_fiql() {
    let w = World::start().await;
    for hour in 8..13 {
        w.emu
            .create_reservation(w.booking(
                &format!("2026-05-04T{hour:02}:30:00Z"),
                &format!("2026-05-04T{hour:02}:45:00Z"),
            ))
            .unwrap();
    }
    let page = w
        .send(
            "GET",
            "/reservations?%24top=2&%24fields=id%2CplannedStartDate",
            None,
        )
        .await;
    assert_eq!(page.status, 206);
    let results = page.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0].as_object().unwrap().len(),
        2,
        "$fields projection"
    );
    let last = page.json()["results"][1]["plannedStartDate"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = w
        .send(
            "GET",
            &format!("/reservations?%24top=10&query=plannedStartDate%3Dgt%3D{last}"),
            None,
        )
        .await;
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["results"].as_array().unwrap().len(), 3);

    for bad in [
        "%24top=10001",
        "query=startDate%3D%3D1",
        "query=status%3D%3D",
        "query=modificationDate%3Dge%3D2026-01-01T00%3A00%3A00Z",
    ] {
        let answer = w.send("GET", &format!("/reservations?{bad}"), None).await;
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(codes_of(&answer), vec![codes::INVALID_QUERY], "{bad}");
    }
}

#[tokio::test]
async fn persons_v2_pages_with_next_and_v1_answers_204() {
    let w = World::start().await;
    for i in 0..5 {
        w.emu.add_person(PersonSeed {
            first_name: format!("P{i}"),
            sur_name: "Same".into(),
            email: Some("same@example.com".into()),
            archived: i == 0,
            ..PersonSeed::default()
        });
    }
    let v2 = [
        ("authorization", w.auth.as_str()),
        ("accept", "application/x.topdesk-collection-person-v2+json"),
    ];
    let first = call(
        w.emu.addr(),
        "GET",
        "/tas/api/persons?pageSize=2&query=email%3D%3D%22same%40example.com%22&fields=id,email",
        &v2,
        None,
    )
    .await;
    assert_eq!(first.status, 206);
    assert_eq!(
        first.header("content-type"),
        Some("application/x.topdesk-collection-person-v2+json")
    );
    let next = first.json()["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/tas/api/persons?pageStart=2"));
    let second = call(w.emu.addr(), "GET", &next, &v2, None).await;
    assert_eq!(second.status, 206);
    let third = call(
        w.emu.addr(),
        "GET",
        second.json()["next"].as_str().unwrap(),
        &v2,
        None,
    )
    .await;
    assert_eq!(third.status, 200);
    assert!(third.json().get("next").is_none());
    assert_eq!(
        third.json()["size"],
        1,
        "five cards, archived included without archived==false"
    );

    let v1 = [
        ("authorization", w.auth.as_str()),
        ("accept", "application/json"),
    ];
    let none = call(
        w.emu.addr(),
        "GET",
        "/tas/api/persons?query=email%3D%3D%22x%40example.com%22",
        &v1,
        None,
    )
    .await;
    assert_eq!(none.status, 204);
    let v1_all = call(
        w.emu.addr(),
        "GET",
        "/tas/api/persons?page_size=100",
        &v1,
        None,
    )
    .await;
    assert_eq!(
        v1_all.json().as_array().unwrap().len(),
        5,
        "v1 without a query: active persons only"
    );

    w.emu.set_persons_api(PersonsApi::V1Only);
    assert_eq!(
        call(w.emu.addr(), "GET", "/tas/api/persons", &v2, None)
            .await
            .status,
        406
    );
}

#[tokio::test]
async fn faults_and_latency_are_injected() {
    let w = World::start().await;
    w.emu.inject_fault(Fault {
        method: Some(http::Method::GET),
        path_prefix: Some("/branches".into()),
        status: 503,
        retry_after: Some("3".into()),
        times: 2,
    });
    let a = w.send("GET", "/branches", None).await;
    assert_eq!((a.status, a.header("retry-after")), (503, Some("3")));
    assert_eq!(
        w.send("GET", "/reservations", None).await.status,
        200,
        "other paths unaffected"
    );
    assert_eq!(w.send("GET", "/branches", None).await.status, 503);
    assert_eq!(
        w.send("GET", "/branches", None).await.status,
        200,
        "fault used up"
    );

    w.emu.set_latency(Duration::from_millis(50));
    let started = Instant::now();
    assert_eq!(w.send("GET", "/branches", None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(w.emu.exchanges().len(), 5);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let w = World::start().await;
    let addr = w.emu.addr();
    w.emu.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn example_tenant_is_bookable() {
    let emu = TopdeskEmulator::start(TopdeskConfig::default())
        .await
        .unwrap();
    let seed = emu.seed_example();
    assert_eq!(seed.rooms.len(), 3);
    let (_, requester) = &seed.people[0];
    let (_, room) = &seed.rooms[0];
    let id = emu
        .create_reservation(json!({"requester": {"id": requester}, "plannedStartDate": "2026-05-04T09:00:00Z",
            "plannedEndDate": "2026-05-04T10:00:00Z", "reservedFacilities": [{"location": {"id": room}}]}))
        .unwrap();
    assert_eq!(emu.reservation(&id).unwrap().status, "planned");
    let json = emu.reservation_json(&id).unwrap();
    assert_eq!(
        json["reservedFacilities"][0]["location"]["id"],
        room.as_str()
    );

    emu.set_recording(false);
    let (login, password) = emu.operator_credentials();
    let answer = call(
        emu.addr(),
        "GET",
        "/tas/api/reservations",
        &[("authorization", &basic(&login, &password))],
        None,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(emu.request_count(), 0);
}
