//! The Graph emulator on the wire: identity platform, authorization, Exchange's room
//! behaviour, subscriptions, notification delivery and faults.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use orb_emulators::graph::{
    AppRegistration, DeliveryKind, Fault, GraphEmulator, GraphEmulatorConfig, HandshakeMode,
    LifecycleEvent, RoomSeed, WebhookRecorder, roles,
};
use orb_notification_crypto::jwt::{Jwks, TokenValidator};
use orb_notification_crypto::{
    EncryptionKeyPair, GenerateOptions, KeyRing, NotificationCollection,
};
use serde_json::{Value, json};

const APP: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const SECRET: &str = "s3cret";
const ALICE: &str = "alice@contoso.com";
const ROOM: &str = "room-1@contoso.com";
const ROOM2: &str = "room-2@contoso.com";

struct Env {
    emu: GraphEmulator,
    hook: WebhookRecorder,
    http: reqwest::Client,
    token: String,
}

fn http_client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap()
}

async fn env_with(config: GraphEmulatorConfig) -> Env {
    let emu = GraphEmulator::start(config).await.unwrap();
    emu.register_app(AppRegistration::with_secret(
        APP,
        SECRET,
        &[
            roles::CALENDARS_READ,
            roles::CALENDARS_READ_WRITE,
            roles::PLACE_READ_ALL,
        ],
    ));
    emu.add_person(ALICE, "Alice");
    emu.add_room(RoomSeed::new(ROOM, "Room 1"));
    emu.add_room(RoomSeed::new(ROOM2, "Room 2"));
    let hook = WebhookRecorder::start().await.unwrap();
    let http = http_client();
    let mut env = Env {
        emu,
        hook,
        http,
        token: String::new(),
    };
    let (status, body) = env.token_request(&[("client_secret", SECRET)]).await;
    assert_eq!(status, 200, "{body}");
    env.token = body["access_token"].as_str().unwrap().to_owned();
    env
}

async fn env() -> Env {
    env_with(GraphEmulatorConfig::default()).await
}

impl Env {
    async fn token_request(&self, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![
            ("client_id", APP.to_owned()),
            ("scope", format!("{}/.default", self.emu.login_url())),
            ("grant_type", "client_credentials".to_owned()),
        ];
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let body: String = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.emu.login_url(),
                self.emu.tenant_id()
            ))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.emu.api_url())
        };
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, v) = self.call(reqwest::Method::GET, path, None).await;
        (s, v)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, _, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        (s, v)
    }

    async fn subscribe(&self, rich: Option<&EncryptionKeyPair>, minutes: i64) -> (u16, Value) {
        let expiry = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .unwrap();
        let mut body = json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": self.hook.url("/graph/notifications"),
            "lifecycleNotificationUrl": self.hook.url("/graph/lifecycle"),
            "resource": format!("/users/{ROOM}/events?$select=subject,start,end,iCalUId"),
            "expirationDateTime": expiry.to_string(),
            "clientState": "state-123",
        });
        if let Some(pair) = rich {
            body["includeResourceData"] = json!(true);
            body["encryptionCertificate"] = json!(pair.certificate().to_base64_der());
            body["encryptionCertificateId"] = json!(pair.id());
        }
        self.post("/subscriptions", body).await
    }
}

fn meeting(start: &str, end: &str, room: &str) -> Value {
    json!({
        "subject": "Quarterly review",
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
        "location": {"displayName": "Room", "locationEmailAddress": room},
        "attendees": [{"type": "resource", "emailAddress": {"address": room, "name": "Room"}}],
    })
}

fn pair(id: &str) -> EncryptionKeyPair {
    EncryptionKeyPair::generate(id, &GenerateOptions::default(), SystemTime::now()).unwrap()
}

#[tokio::test]
async fn the_token_endpoint_checks_tenant_scope_secret_and_client() {
    let env = env().await;
    assert_eq!(
        env.token_request(&[("client_secret", "nope")]).await.1["error"],
        "invalid_client"
    );
    assert_eq!(env.token_request(&[]).await.1["error"], "invalid_client");
    let (status, body) = env.token_request(&[("client_secret", SECRET)]).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    // Wrong scope.
    let r = env
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            env.emu.login_url(),
            env.emu.tenant_id()
        ))
        .body(format!(
            "client_id={APP}&scope=User.Read&grant_type=client_credentials&client_secret={SECRET}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    // Unknown tenant.
    let r = env
        .http
        .post(format!(
            "{}/other-tenant/oauth2/v2.0/token",
            env.emu.login_url()
        ))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // A bearer the emulator never issued.
    let (status, _, body) = Env {
        token: "forged".into(),
        ..env
    }
    .call(reqwest::Method::GET, "/places/microsoft.graph.room", None)
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
}

#[tokio::test]
async fn roles_and_access_policies_are_enforced() {
    let env = env().await;
    // No Mail.Send role.
    let (status, body) = env
        .post(
            &format!("/users/{ALICE}/sendMail"),
            json!({"message": {"toRecipients": [{"emailAddress": {"address": ALICE}}]}}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "ErrorAccessDenied");
    env.emu.set_access_policy(APP, Some(&[ROOM]));
    assert_eq!(env.get(&format!("/users/{ROOM}/events")).await.0, 200);
    let (status, body) = env.get(&format!("/users/{ALICE}/events")).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "ErrorAccessDenied");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    env.emu.set_access_policy(APP, None);
    assert_eq!(env.get(&format!("/users/{ALICE}/events")).await.0, 200);
}

#[tokio::test]
async fn an_outlook_meeting_gets_a_room_copy_and_a_busy_room_declines() {
    let env = env().await;
    let id = env
        .emu
        .create_event_as(
            ALICE,
            meeting("2031-01-06T09:00:00", "2031-01-06T10:00:00", ROOM),
        )
        .unwrap();
    let org = env.emu.events(ALICE);
    let room = env.emu.events(ROOM);
    assert_eq!(room.len(), 1);
    assert_eq!(room[0]["iCalUId"], org[0]["iCalUId"]);
    assert_eq!(
        room[0]["subject"], "Alice",
        "DeleteSubject + AddOrganizerToSubject"
    );
    assert_eq!(room[0]["body"]["content"], "", "DeleteComments");
    assert_eq!(org[0]["attendees"][0]["status"]["response"], "accepted");
    // A second, overlapping meeting is declined: no copy.
    let other = env
        .emu
        .create_event_as(
            ALICE,
            meeting("2031-01-06T09:30:00", "2031-01-06T10:30:00", ROOM),
        )
        .unwrap();
    assert_eq!(env.emu.events(ROOM).len(), 1);
    let declined = env
        .emu
        .events(ALICE)
        .into_iter()
        .find(|e| e["id"] == other)
        .unwrap();
    assert_eq!(declined["attendees"][0]["status"]["response"], "declined");
    // Cancelling the first leaves a cancelled copy behind.
    env.emu.cancel_event_as(ALICE, &id).unwrap();
    let room = env.emu.events(ROOM);
    assert_eq!(room[0]["isCancelled"], true);
    assert!(
        room[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Canceled:")
    );
}

#[tokio::test]
async fn series_expand_in_calendar_view_instances_and_delta() {
    let env = env().await;
    let mut body = meeting("2031-01-06T09:00:00", "2031-01-06T10:00:00", ROOM);
    body["recurrence"] = json!({
        "pattern": {"type": "daily", "interval": 2},
        "range": {"type": "endDate", "startDate": "2031-01-06", "endDate": "2031-01-12"},
    });
    let master = env.emu.create_event_as(ALICE, body).unwrap();
    let window = "startDateTime=2031-01-01T00:00:00Z&endDateTime=2031-02-01T00:00:00Z";
    let (status, view) = env
        .get(&format!("/users/{ROOM}/calendarView?{window}"))
        .await;
    assert_eq!(status, 200);
    let starts: Vec<&str> = view["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["start"]["dateTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2031-01-06T09:00:00.0000000",
            "2031-01-08T09:00:00.0000000",
            "2031-01-10T09:00:00.0000000",
            "2031-01-12T09:00:00.0000000"
        ]
    );
    let (_, list) = env.get(&format!("/users/{ALICE}/events")).await;
    assert_eq!(list["value"][0]["type"], "seriesMaster");
    let (_, inst) = env
        .get(&format!(
            "/users/{ALICE}/events/{master}/instances?{window}"
        ))
        .await;
    let occ = inst["value"][1]["id"].as_str().unwrap().to_owned();
    assert_eq!(inst["value"][1]["type"], "occurrence");
    assert_eq!(inst["value"][1]["seriesMasterId"], master.as_str());
    // An occurrence cannot cross the day of its neighbour.
    let (status, _, body) = env
        .call(
            reqwest::Method::PATCH,
            &format!("/users/{ALICE}/events/{occ}"),
            Some(
                json!({"start": {"dateTime": "2031-01-06T12:00:00", "timeZone": "UTC"},
                        "end": {"dateTime": "2031-01-06T13:00:00", "timeZone": "UTC"}}),
            ),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "ErrorOccurrenceCrossingBoundary");
    // instances needs its window.
    assert_eq!(
        env.get(&format!("/users/{ALICE}/events/{master}/instances"))
            .await
            .0,
        400
    );

    let (_, first) = env
        .get(&format!("/users/{ROOM}/calendarView/delta?{window}"))
        .await;
    let delta_link = first["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert_eq!(first["value"].as_array().unwrap().len(), 4);
    env.emu.cancel_event_as(ALICE, &occ).unwrap();
    let (_, second) = env.get(&delta_link).await;
    let removed: Vec<&Value> = second["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v.get("@removed").is_some())
        .collect();
    assert_eq!(removed.len(), 1);
    let (_, master_json) = env.get(&format!("/users/{ALICE}/events/{master}")).await;
    assert_eq!(
        master_json["cancelledOccurrences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn rich_notifications_are_sealed_with_client_state_and_signed_validation_tokens() {
    let env = env().await;
    let key = pair("cert-a");
    let (status, sub) = env.subscribe(Some(&key), 600).await;
    assert_eq!(status, 201, "{sub}");
    assert_eq!(env.hook.validations().len(), 2);
    env.emu
        .create_event_as(
            ALICE,
            meeting("2031-01-06T09:00:00", "2031-01-06T10:00:00", ROOM),
        )
        .unwrap();
    env.emu.flush_notifications().await;
    let posts = env.hook.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, "/graph/notifications");
    let collection = NotificationCollection::from_json(&posts[0].body).unwrap();
    let item = &collection.value[0];
    assert_eq!(item.client_state.as_deref(), Some("state-123"));
    assert_eq!(item.subscription_id.as_deref(), sub["id"].as_str());
    assert_eq!(item.change_type.as_deref(), Some("created"));
    assert_eq!(
        item.tenant_id.as_deref(),
        Some(env.emu.tenant_id().as_str())
    );
    assert!(item.resource.as_deref().unwrap().starts_with("Users/"));
    let mut ring = KeyRing::new();
    ring.insert(key, SystemTime::now());
    let plain: Value = serde_json::from_slice(
        &ring
            .decrypt(&item.encrypted_content().unwrap().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(plain["subject"], "Alice");
    assert!(plain.get("iCalUId").is_some());
    assert!(
        plain.get("attendees").is_none(),
        "only $select-ed properties"
    );
    // validationTokens verify against the JWKS served under login_url.
    let jwks_body = env
        .http
        .get(env.emu.jwks_url())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let jwks = Jwks::from_json(&jwks_body).unwrap();
    let validator = TokenValidator::new(APP, &env.emu.tenant_id(), &env.emu.login_url());
    for token in collection.validation_tokens.unwrap() {
        validator
            .validate(&token, &jwks, SystemTime::now())
            .unwrap();
    }
}

#[tokio::test]
async fn basic_subscriptions_carry_no_content_and_lifetimes_follow_graph() {
    let env = env().await;
    // Under 45 minutes is raised to 45.
    let (status, sub) = env.subscribe(None, 5).await;
    assert_eq!(status, 201);
    let expiry: jiff::Timestamp = sub["expirationDateTime"].as_str().unwrap().parse().unwrap();
    assert!(expiry.as_second() - jiff::Timestamp::now().as_second() >= 44 * 60);
    // The same resource and change types again: 409.
    assert_eq!(env.subscribe(None, 60).await.0, 409);
    env.emu
        .create_event_as(
            ALICE,
            meeting("2031-01-06T09:00:00", "2031-01-06T10:00:00", ROOM),
        )
        .unwrap();
    env.emu.flush_notifications().await;
    let body: Value = serde_json::from_slice(&env.hook.posts()[0].body).unwrap();
    assert!(body["value"][0].get("encryptedContent").is_none());
    assert!(body.get("validationTokens").is_none());
    // Basic maximum 10,080 minutes; rich 1,440; rich needs $select.
    let id = sub["id"].as_str().unwrap();
    let far = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_mins(10_100))
        .unwrap();
    let (status, _, body) = env
        .call(
            reqwest::Method::PATCH,
            &format!("/subscriptions/{id}"),
            Some(json!({"expirationDateTime": far.to_string()})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Subscription expiration can only be 10080 minutes in the future."
    );
    let key = pair("c");
    let (status, body) = env
        .post("/subscriptions", json!({
            "changeType": "updated", "notificationUrl": env.hook.url("/n"),
            "resource": format!("/users/{ROOM2}/events"), "expirationDateTime": jiff::Timestamp::now().to_string(),
            "includeResourceData": true, "encryptionCertificate": key.certificate().to_base64_der(), "encryptionCertificateId": "c",
        }))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn handshake_failures_prevent_creation() {
    let env = env_with(GraphEmulatorConfig {
        validation_timeout: Duration::from_millis(100),
        ..GraphEmulatorConfig::default()
    })
    .await;
    for mode in [
        HandshakeMode::Refuse,
        HandshakeMode::WrongBody,
        HandshakeMode::Delay(Duration::from_millis(400)),
    ] {
        env.hook.set_mode(mode.clone());
        let (status, body) = env.subscribe(None, 60).await;
        assert_eq!(status, 400, "{mode:?}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("validation request failed")
        );
    }
    assert!(env.emu.subscriptions().is_empty());
    assert!(
        env.emu
            .deliveries()
            .iter()
            .all(|d| d.kind == DeliveryKind::Validation)
    );
}

#[tokio::test]
async fn lifecycle_notifications_on_demand_and_expiry() {
    let env = env().await;
    let key = pair("cert-l");
    let (_, sub) = env.subscribe(Some(&key), 120).await;
    let id = sub["id"].as_str().unwrap().to_owned();
    assert!(
        env.emu
            .send_lifecycle(&id, LifecycleEvent::ReauthorizationRequired)
    );
    assert!(env.emu.send_lifecycle(&id, LifecycleEvent::Missed));
    env.emu.flush_notifications().await;
    let posts = env.hook.posts();
    let events: Vec<String> = posts
        .iter()
        .map(|p| {
            assert_eq!(p.path, "/graph/lifecycle");
            let v: Value = serde_json::from_slice(&p.body).unwrap();
            assert_eq!(v["value"][0]["clientState"], "state-123");
            assert!(v["value"][0].get("resource").is_none());
            v["value"][0]["lifecycleEvent"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(events, ["reauthorizationRequired", "missed"]);
    assert!(
        env.emu
            .send_lifecycle(&id, LifecycleEvent::SubscriptionRemoved)
    );
    assert!(env.emu.subscriptions().is_empty());
    assert!(!env.emu.send_lifecycle(&id, LifecycleEvent::Missed));

    // Nearing expiry: reauthorizationRequired arrives; past expiry the subscription is gone.
    env.emu.flush_notifications().await;
    env.hook.clear();
    let (_, sub) = env.subscribe(None, 120).await;
    env.emu.advance_clock(Duration::from_secs(61 * 60));
    env.emu.flush_notifications().await;
    let v: Value = serde_json::from_slice(&env.hook.posts()[0].body).unwrap();
    assert_eq!(v["value"][0]["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(env.emu.subscriptions().len(), 1);
    env.emu.advance_clock(Duration::from_secs(3601));
    assert!(env.emu.subscriptions().is_empty());
    assert!(
        !env.emu
            .send_lifecycle(sub["id"].as_str().unwrap(), LifecycleEvent::Missed)
    );
}

#[tokio::test]
async fn delivery_faults_duplicate_reorder_and_drop_with_missed() {
    let env = env().await;
    env.subscribe(None, 120).await;
    let book = |day: u8| {
        env.emu
            .create_event_as(
                ALICE,
                meeting(
                    &format!("2031-01-{day:02}T09:00:00"),
                    &format!("2031-01-{day:02}T10:00:00"),
                    ROOM,
                ),
            )
            .unwrap()
    };
    let ids_of = |posts: &[orb_emulators::graph::ReceivedPost]| -> Vec<String> {
        posts
            .iter()
            .map(|p| {
                let v: Value = serde_json::from_slice(&p.body).unwrap();
                v["value"][0]["resourceData"]["id"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v["value"][0]["lifecycleEvent"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    env.emu.inject(Fault::DuplicateNotifications { times: 1 });
    book(6);
    env.emu.flush_notifications().await;
    let posts = env.hook.posts();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].body, posts[1].body);
    env.hook.clear();

    env.emu.inject(Fault::ReorderNotifications { batch: 2 });
    book(7);
    book(8);
    env.emu.flush_notifications().await;
    let room_ids: Vec<String> = env
        .emu
        .events(ROOM)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let got = ids_of(&env.hook.posts());
    assert_eq!(got.len(), 2);
    assert!(room_ids.contains(&got[0]) && room_ids.contains(&got[1]));
    let created_order: Vec<String> = env
        .emu
        .events(ROOM)
        .iter()
        .filter(|e| e["start"]["dateTime"].as_str().unwrap() > "2031-01-07")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, created_order.into_iter().rev().collect::<Vec<_>>());
    env.hook.clear();

    env.emu.inject(Fault::DropNotifications { times: 2 });
    book(9);
    book(10);
    env.emu.flush_notifications().await;
    assert_eq!(ids_of(&env.hook.posts()), ["missed"]);
}

#[tokio::test]
async fn http_faults_throttle_and_concurrency_limit() {
    let env = env().await;
    env.emu.inject(Fault::Throttle {
        status: 429,
        retry_after: Some(7),
        times: 1,
    });
    let (status, headers, body) = env
        .call(reqwest::Method::GET, "/places/microsoft.graph.room", None)
        .await;
    assert_eq!(status, 429);
    assert_eq!(headers.get("retry-after").unwrap(), "7");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(env.get("/places/microsoft.graph.room").await.0, 200);

    // Six concurrent slow requests on one mailbox: Graph's limit of four answers 429.
    env.emu.inject(Fault::Slow {
        delay: Duration::from_millis(200),
        times: 6,
    });
    let path = format!("/users/{ROOM}/events");
    let calls = (0..6).map(|_| env.get(&path));
    let mut statuses = Vec::new();
    for s in join_all(calls).await {
        statuses.push(s.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(env.emu.max_concurrency(ROOM) > 4);
}

async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in pinned.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff() {
    let env = env().await;
    env.subscribe(None, 120).await;
    env.hook.set_status(503);
    env.emu
        .create_event_as(
            ALICE,
            meeting("2031-01-06T09:00:00", "2031-01-06T10:00:00", ROOM),
        )
        .unwrap();
    env.emu.flush_notifications().await;
    let changes: Vec<Option<u16>> = env
        .emu
        .deliveries()
        .iter()
        .filter(|d| d.kind == DeliveryKind::Change)
        .map(|d| d.status)
        .collect();
    assert_eq!(
        changes,
        [Some(503), Some(503), Some(503)],
        "one attempt and two retries"
    );
    env.hook.set_status(202);
    env.emu
        .create_event_as(
            ALICE,
            meeting("2031-01-07T09:00:00", "2031-01-07T10:00:00", ROOM),
        )
        .unwrap();
    env.emu.flush_notifications().await;
    let last = env.emu.deliveries().pop().unwrap();
    assert_eq!(last.status, Some(202));
}

#[tokio::test]
async fn the_example_tenant_is_usable_with_its_credentials() {
    let emu = GraphEmulator::start(GraphEmulatorConfig::default())
        .await
        .unwrap();
    let tenant = emu.seed_example();
    let env = Env {
        hook: WebhookRecorder::start().await.unwrap(),
        http: http_client(),
        token: String::new(),
        emu,
    };
    let r = env
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", env.emu.login_url(), env.emu.tenant_id()))
        .body(format!(
            "client_id={}&client_secret={}&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
            tenant.client_id, tenant.client_secret
        ))
        .send()
        .await
        .unwrap();
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let env = Env { token, ..env };
    let (status, rooms) = env
        .get(&format!(
            "/places/{}/microsoft.graph.roomlist/rooms",
            tenant.room_list
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(rooms["value"].as_array().unwrap().len(), tenant.rooms.len());
    assert_eq!(
        env.get(&format!("/users/{}/events", tenant.people[0]))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn hostile_requests_get_graph_errors_not_panics() {
    let env = env().await;
    let raw = |method: reqwest::Method, path: String, body: &'static str| {
        let req = env
            .http
            .request(method, format!("{}{path}", env.emu.api_url()))
            .bearer_auth(&env.token)
            .body(body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let events = format!("/users/{ALICE}/events");
    for body in [
        "",
        "{",
        "[]",
        "null",
        "{\"start\":5}",
        "{\"start\":{\"dateTime\":\"x\"},\"end\":{}}",
    ] {
        let status = raw(reqwest::Method::POST, events.clone(), body).await;
        assert_eq!(status, 400, "{body:?}");
    }
    let bad_recurrence = r#"{"start":{"dateTime":"2031-01-06T09:00:00","timeZone":"UTC"},
        "end":{"dateTime":"2031-01-06T10:00:00","timeZone":"UTC"},
        "recurrence":{"pattern":{"type":"weekly","interval":0},"range":{"type":"noEnd","startDate":"2031-01-06"}}}"#;
    assert_eq!(
        raw(reqwest::Method::POST, events.clone(), bad_recurrence).await,
        400
    );
    let bad_zone = r#"{"start":{"dateTime":"2031-01-06T09:00:00","timeZone":"Mars Standard Time"},
        "end":{"dateTime":"2031-01-06T10:00:00","timeZone":"UTC"}}"#;
    assert_eq!(
        raw(reqwest::Method::POST, events.clone(), bad_zone).await,
        400
    );
    for path in [
        format!("/users/{ALICE}/events/nope-occ-12"),
        format!("/users/{ALICE}/events/%FF%00"),
        format!("/users/{ALICE}/calendarView?startDateTime=yesterday&endDateTime=x"),
        format!("/users/{ALICE}/calendarView/delta?$deltatoken=forged"),
        format!("/users/{ALICE}/events?$skiptoken=forged"),
        format!("/users/{ALICE}/events?$filter=subject eq 'x'"),
        "/subscriptions/unknown".to_owned(),
        "/nothing/here".to_owned(),
    ] {
        let status = raw(reqwest::Method::GET, path.clone(), "").await;
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    let status = raw(
        reqwest::Method::POST,
        "/subscriptions".into(),
        r#"{"changeType":"exploded"}"#,
    )
    .await;
    assert_eq!(status, 400);
    // Still serving.
    assert_eq!(env.get("/places/microsoft.graph.room").await.0, 200);
}

#[tokio::test]
async fn series_in_a_windows_zone_keep_local_time_across_daylight_saving() {
    let env = env().await;
    let body = json!({
        "subject": "Weekly",
        "start": {"dateTime": "2031-03-24T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2031-03-24T10:00:00", "timeZone": "W. Europe Standard Time"},
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            "range": {"type": "numbered", "startDate": "2031-03-24", "numberOfOccurrences": 2},
        },
    });
    env.emu.create_event_as(ALICE, body).unwrap();
    let view = env.emu.calendar_view(
        ALICE,
        "2031-03-01T00:00:00Z".parse().unwrap(),
        "2031-05-01T00:00:00Z".parse().unwrap(),
    );
    let starts: Vec<&str> = view
        .iter()
        .map(|e| e["start"]["dateTime"].as_str().unwrap())
        .collect();
    // 09:00 CET is 08:00Z; after the switch on 30 March 09:00 CEST is 07:00Z.
    assert_eq!(
        starts,
        ["2031-03-24T08:00:00.0000000", "2031-03-31T07:00:00.0000000"]
    );
    assert_eq!(view[0]["start"]["timeZone"], "UTC");
    assert_eq!(view[0]["originalStartTimeZone"], "W. Europe Standard Time");
}
