//! The booking view's JSON API against the real daemon and both emulators: list, detail
//! and retry over HTTP, the admin token (absent, wrong, rate-limited) and the configured
//! exclusions holding in every answer.

use std::sync::Arc;
use std::time::Duration;

use orb_service::runtime::{Daemon, Options};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

use super::world::{ALICE, BOB, CLIENT_ID, ROOM, World, in_days, until};

pub(super) const TOKEN: &str = "view-test-admin-token-3b9f";

/// A world whose daemon serves the admin API with [`TOKEN`]: the world's daemon is
/// restarted on the same data and port with `service.admin_token_file` set.
pub(super) async fn world_with_api(sync: &str) -> (World, tempfile::TempDir) {
    let mut world = World::start_configured(sync, |_| {}).await;
    let addr = world.stop_daemon().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut config = world.config().clone();
    config.service.admin_token_file = Some(token_file);
    let opened = orb_service::state::open(&config).unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    let graph = Arc::clone(&world.graph);
    let options = Options {
        clock: Arc::new(move || graph.now()),
        tick: Duration::from_millis(200),
        hot_poll_interval: Some(Duration::from_millis(300)),
        drain: Duration::from_secs(5),
        ..Options::default()
    };
    world.daemon = Some(
        Daemon::start_on(config, opened.store, listener, options)
            .await
            .unwrap(),
    );
    (world, dir)
}

fn base(world: &World) -> String {
    format!("http://{}/api/bookings", world.daemon().local_addr())
}

async fn get(url: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn post(url: &str, token: &str) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

pub(super) fn stored(world: &World) -> Vec<orb_store::Booking> {
    world
        .daemon()
        .store()
        .bookings()
        .map(Result::unwrap)
        .collect()
}

pub(super) fn in_sync(b: &orb_store::Booking) -> bool {
    b.exchange_status.as_deref() == Some("in sync")
        && b.topdesk_status.as_deref() == Some("in sync")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_are_listed_and_shown_without_excluded_fields() {
    let subject = "Takeover of Initech, strictly confidential";
    let (world, token_dir) = world_with_api(r#"view_exclude = ["attendees", "subject"]"#).await;
    world.book_in_outlook(subject, in_days(2), 60);
    until("the booking is in sync", || {
        stored(&world).iter().any(in_sync)
    })
    .await;
    // The store does keep the excluded values: the view is what hides them.
    let record = stored(&world).into_iter().find(in_sync).unwrap();
    assert_eq!(record.subject.as_deref(), Some(subject));
    assert!(record.attendees.iter().any(|a| a == BOB), "{record:?}");

    let (status, list) = get(&base(&world), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let page: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(page["total"], 1, "{page}");
    let item = &page["items"][0];
    assert_eq!(item["id"], record.match_id.as_str());
    assert_eq!(item["state"], "in-sync");
    assert_eq!(item["agenda"]["room"], ROOM);
    assert_eq!(item["agenda"]["organizer"], ALICE);
    assert!(item["agenda"].get("subject").is_none(), "{item}");
    assert!(item["agenda"].get("attendees").is_none(), "{item}");
    for group in ["agenda", "system", "status"] {
        assert!(item[group].is_object(), "{group}: {item}");
    }

    let (status, detail) = get(
        &format!("{}/{}", base(&world), record.match_id.as_str()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let d: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(d["booking"]["id"], record.match_id.as_str());
    assert_eq!(
        d["booking"]["system"]["correlation_id"],
        record.correlation_id.as_str()
    );
    assert!(
        d["audit"].as_array().is_some_and(|a| !a.is_empty()),
        "the audit trail of its run: {d}"
    );

    // The admin page and the command line's output (`orb bookings list` / `show`: the
    // admin client's answers rendered as text) come from the same view model.
    let page = super::admin::Session::signed_in(&world).await;
    let html_list = page.get("/admin/").await.body;
    let html_detail = page
        .get(&format!("/admin/bookings/{}", record.match_id.as_str()))
        .await
        .body;
    assert!(html_list.contains(ALICE), "{html_list}");
    assert!(
        html_detail.contains(record.correlation_id.as_str()),
        "{html_detail}"
    );
    let mut config = world.config().clone();
    config.service.admin_token_file = Some(token_dir.path().join("admin.token"));
    let client = orb_service::admin_client::AdminClient::from_config(&config).unwrap();
    let cli_list = orb_service::view::render_table(
        &client
            .list(&orb_service::view::Query::default())
            .await
            .unwrap(),
    );
    let cli_show =
        orb_service::view::render_detail(&client.show(record.match_id.as_str()).await.unwrap());
    assert!(cli_list.contains(ALICE), "{cli_list}");
    assert!(
        cli_show.contains(record.correlation_id.as_str()),
        "{cli_show}"
    );

    // An excluded value appears in none of the answers (JSON, HTML, text), in any spelling.
    for body in [
        &list,
        &detail,
        &html_list,
        &html_detail,
        &cli_list,
        &cli_show,
    ] {
        let lower = body.to_ascii_lowercase();
        for needle in [BOB, "bob%40example.com", "initech", "confidential"] {
            assert!(!lower.contains(needle), "{needle} in {body}");
        }
    }
    // Filters over the visible fields work; the free text never reaches excluded ones.
    for (query, total) in [
        ("?search=alice", 1),
        ("?search=bob", 0),
        ("?search=initech", 0),
        ("?room=room-2.14@example.com", 1),
        ("?room=other@example.com", 0),
        ("?status=in-sync", 1),
        ("?status=parked", 0),
        ("?sort=updated&limit=1", 1),
    ] {
        let (status, body) = get(&format!("{}{query}", base(&world)), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["total"], total, "{query}: {page}");
    }
    let (status, body) = get(&format!("{}?status=nonsense", base(&world)), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = get(&format!("{}/no-such-booking", base(&world)), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_booking_is_retried_through_the_api_and_recovers() {
    let (world, _token_dir) = world_with_api("").await;
    // Bob's mailbox is outside the app's scope: his TOPdesk booking parks (R20).
    world
        .graph
        .set_access_policy(CLIENT_ID, Some(&[ROOM, ALICE, "facilities@example.com"]));
    let reservation = world.book_in_topdesk(BOB, "Denied at first", in_days(1), 30);
    let parked = |b: &orb_store::Booking| {
        b.topdesk_reservation_id.as_ref().map(|t| t.as_str()) == Some(reservation.as_str())
    };
    until("the booking is parked", || {
        stored(&world)
            .iter()
            .any(|b| parked(b) && b.exchange_status.as_deref() == Some("parked"))
    })
    .await;
    world.book_in_outlook("Alice is in scope", in_days(2), 30);
    until("Alice's booking is in sync", || {
        stored(&world).iter().any(|b| !parked(b) && in_sync(b))
    })
    .await;
    let records = stored(&world);
    let id = records.iter().find(|b| parked(b)).unwrap().match_id.clone();
    let synced = records
        .iter()
        .find(|b| !parked(b))
        .unwrap()
        .match_id
        .clone();

    // The parked one is listed as parked.
    let (_, body) = get(&format!("{}?status=parked", base(&world)), Some(TOKEN)).await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["id"], id.as_str());

    // Retry: unknown → 404, in sync → 409, GET → 405.
    let retry = |id: &str| format!("{}/{id}/retry", base(&world));
    assert_eq!(
        post(&retry("no-such"), TOKEN).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = post(&retry(synced.as_str()), TOKEN).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        get(&retry(id.as_str()), Some(TOKEN)).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // The admin lifts the policy and retries: accepted, and the booking recovers.
    world.graph.set_access_policy(CLIENT_ID, None);
    let (status, body) = post(&retry(id.as_str()), TOKEN).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let accepted: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(accepted["was"], "parked", "{accepted}");
    until("the retried booking is in sync", || {
        stored(&world).iter().any(|b| parked(b) && in_sync(b))
    })
    .await;
    world
        .event_where("the event in Bob's calendar", BOB, |e| {
            e["subject"] == "Denied at first"
        })
        .await;
    let (_, detail) = get(&format!("{}/{}", base(&world), id.as_str()), Some(TOKEN)).await;
    let d: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(d["booking"]["state"], "in-sync", "{d}");
    assert!(
        d["booking"]["status"]["retry_count"].as_u64() >= Some(1),
        "{d}"
    );
    // A second retry of a booking now in sync is refused.
    assert_eq!(
        post(&retry(id.as_str()), TOKEN).await.0,
        StatusCode::CONFLICT
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_token_and_limits_failed_attempts() {
    let (world, _token_dir) = world_with_api("").await;
    let url = base(&world);
    let (status, body) = get(&url, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.contains(TOKEN));
    let wrong = reqwest::Client::new()
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().contains_key("www-authenticate"));
    // The basic scheme, or the token without a scheme, is no bearer token.
    let (status, _) = {
        let r = reqwest::Client::new()
            .get(&url)
            .header("authorization", TOKEN)
            .send()
            .await
            .unwrap();
        (r.status(), ())
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&url, Some(TOKEN)).await.0, StatusCode::OK);

    // Three failures so far; the burst allows ten, then this source gets 429 — even
    // with the right token — while other endpoints are untouched.
    let burst = orb_service::api::FAILED_BURST;
    for _ in 3..burst {
        assert_eq!(get(&url, Some("guess")).await.0, StatusCode::UNAUTHORIZED);
    }
    let limited = reqwest::Client::new()
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        get(&url, Some(TOKEN)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let health = format!("http://{}/healthz", world.daemon().local_addr());
    assert_eq!(get(&health, None).await.0, StatusCode::OK);
    // Every refused attempt is in the audit log, with the source and without a token.
    let refused = world
        .daemon()
        .store()
        .audit_by_correlation(&orb_store::CorrelationId::new(orb_service::api::AUDIT_RUN))
        .unwrap();
    assert_eq!(refused.len(), burst as usize, "{refused:?}");
    for r in &refused {
        assert_eq!(r.entry.action, "authenticate");
        assert_eq!(r.entry.detail.as_deref(), Some("from 127.0.0.1"));
    }
    assert!(!world.audit().contains("guess") && !world.audit().contains(TOKEN));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_token_there_is_no_api() {
    let world = World::start().await;
    let url = base(&world);
    for token in [None, Some(TOKEN), Some("")] {
        assert_eq!(get(&url, token).await.0, StatusCode::NOT_FOUND);
    }
    let (status, _) = post(&format!("{url}/x/retry"), TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_client_reaches_a_tls_daemon_trusting_only_the_configured_certificate() {
    use orb_service::admin_client::{AdminClient, ClientError};
    use orb_service::view::Query;

    let mut world = World::start().await;
    let addr = world.stop_daemon().await;
    let dir = tempfile::tempdir().unwrap();
    let write_pair = |name: &str| {
        let pair = rcgen::generate_simple_self_signed(vec!["orb.test".to_owned()]).unwrap();
        let cert = dir.path().join(format!("{name}.crt"));
        let key = dir.path().join(format!("{name}.key"));
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
        (cert, key)
    };
    let (cert, key) = write_pair("tls");
    let (other_cert, _) = write_pair("other");
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut config = world.config().clone();
    config.service.admin_token_file = Some(token_file);
    config.service.tls_cert_file = Some(cert);
    config.service.tls_key_file = Some(key);
    // The certificate names the public host; the client connects to the listen address.
    config.service.public_url = format!("https://orb.test:{}", addr.port()).parse().unwrap();
    config.service.listen = format!("0.0.0.0:{}", addr.port()).parse().unwrap();
    let opened = orb_service::state::open(&config).unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    let graph = Arc::clone(&world.graph);
    let options = Options {
        clock: Arc::new(move || graph.now()),
        tick: Duration::from_millis(200),
        drain: Duration::from_secs(5),
        ..Options::default()
    };
    world.daemon = Some(
        Daemon::start_on(config.clone(), opened.store, listener, options)
            .await
            .unwrap(),
    );

    let client = AdminClient::from_config(&config).unwrap();
    assert_eq!(client.base_url().scheme(), "https");
    let page = client.list(&Query::default()).await.unwrap();
    assert_eq!(page.total, 0);

    // Another certificate is not trusted, whatever the system trusts.
    let mut distrusting = config.clone();
    distrusting.service.tls_cert_file = Some(other_cert);
    let err = AdminClient::from_config(&distrusting)
        .unwrap()
        .list(&Query::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    world.stop().await;
}
