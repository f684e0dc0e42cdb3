//! The admin page (`/admin/`) over real HTTP against the daemon and both emulators:
//! login and session cookie, CSRF, security headers, escaping, exclusions, filters and
//! paging, and a retry through the form.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use super::view::{TOKEN, in_sync, stored, world_with_api};
use super::world::{ALICE, BOB, CLIENT_ID, ROOM, World, in_days, until};

pub(super) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A cookie-carrying HTTP client that does not follow redirects.
pub(super) struct Session {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

/// An answer: status, headers, body.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: String,
}

impl Answer {
    pub(super) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Session {
    pub(super) fn new(world: &World) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{}", world.daemon().local_addr()),
            cookie: None,
        }
    }

    /// Signs in with the admin token and keeps the session cookie.
    pub(super) async fn signed_in(world: &World) -> Self {
        let mut s = Self::new(world);
        let answer = s.post("/admin/login", &[("token", TOKEN)]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        s.cookie = Some(session_cookie(&answer.headers).0);
        s
    }

    pub(super) async fn get(&self, path: &str) -> Answer {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("cookie", c);
        }
        answer(r.send().await.unwrap()).await
    }

    pub(super) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut r = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            r = r.header("cookie", c);
        }
        answer(r.send().await.unwrap()).await
    }
}

async fn answer(r: reqwest::Response) -> Answer {
    Answer {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

/// `(name=value, attributes)` of the session cookie set by an answer.
fn session_cookie(headers: &HeaderMap) -> (String, String) {
    let set = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("orb_admin_session="))
        .expect("a session cookie");
    let (pair, attributes) = set.split_once(';').unwrap();
    (pair.trim().to_owned(), attributes.to_owned())
}

/// The value of the first hidden `csrf` field of a page.
pub(super) fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}

fn assert_secure_headers(a: &Answer) {
    assert_eq!(a.header("content-security-policy"), CSP);
    assert_eq!(a.header("x-content-type-options"), "nosniff");
    assert_eq!(a.header("referrer-policy"), "no-referrer");
    assert_eq!(a.header("cache-control"), "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_needs_a_login_and_keeps_only_a_random_id_in_a_strict_cookie() {
    let (world, _token_dir) = world_with_api("").await;
    let anonymous = Session::new(&world);
    for path in ["/admin/", "/admin/bookings/x"] {
        let a = anonymous.get(path).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(a.header(LOCATION.as_str()), "/admin/login", "{path}");
    }
    assert_eq!(anonymous.get("/admin").await.header("location"), "/admin/");
    let login = anonymous.get("/admin/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert_secure_headers(&login);
    assert!(login.body.contains("name=\"token\""), "{}", login.body);
    let css = anonymous.get("/admin/static/admin.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));

    // A wrong token: refused, counted, audited, no cookie.
    let wrong = anonymous
        .post("/admin/login", &[("token", "not-the-token")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(SET_COOKIE).is_none());
    assert!(!wrong.body.contains("not-the-token"));
    assert_eq!(world.daemon().metrics().admin_login_failures(), 1);
    assert!(
        world
            .daemon()
            .metrics()
            .encode()
            .contains("orb_admin_login_failures_total 1"),
        "{}",
        world.daemon().metrics().encode()
    );
    let refused = world
        .daemon()
        .store()
        .audit_by_correlation(&orb_store::CorrelationId::new(orb_service::api::AUDIT_RUN))
        .unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].entry.actor, "admin-page");
    assert_eq!(refused[0].entry.detail.as_deref(), Some("from 127.0.0.1"));

    // The right token: a session cookie with every attribute, holding no token.
    let ok = anonymous.post("/admin/login", &[("token", TOKEN)]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.header("location"), "/admin/");
    let (pair, attributes) = session_cookie(&ok.headers);
    let attributes: Vec<&str> = attributes.split(';').map(str::trim).collect();
    for required in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"] {
        assert!(attributes.contains(&required), "{required}: {attributes:?}");
    }
    let id = pair.strip_prefix("orb_admin_session=").unwrap();
    assert_eq!(id.len(), 64, "{id}");
    assert!(!id.contains(TOKEN) && !pair.contains(TOKEN));

    let mut session = Session::new(&world);
    session.cookie = Some(pair.clone());
    let page = session.get("/admin/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_secure_headers(&page);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(!page.body.contains(TOKEN));
    assert!(!page.body.contains("<script"), "no script at all");
    // Signed in, the login page sends you on.
    assert_eq!(
        session.get("/admin/login").await.status,
        StatusCode::SEE_OTHER
    );

    // A made-up session id is no session.
    let mut forged = Session::new(&world);
    forged.cookie = Some(format!("orb_admin_session={}", "a".repeat(64)));
    assert_eq!(forged.get("/admin/").await.status, StatusCode::SEE_OTHER);

    // Logging out ends the session on the server, whatever the browser keeps.
    let out = session
        .post("/admin/logout", &[("csrf", &csrf(&page.body))])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert!(session_cookie(&out.headers).1.contains("Max-Age=0"));
    assert_eq!(session.get("/admin/").await.status, StatusCode::SEE_OTHER);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_share_the_api_rate_limit() {
    let (world, _token_dir) = world_with_api("").await;
    let s = Session::new(&world);
    let burst = orb_service::api::FAILED_BURST;
    for _ in 0..burst {
        let a = s.post("/admin/login", &[("token", "guess")]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    // The source has used its bucket: even the right token waits, on the page and the API.
    let limited = s.post("/admin/login", &[("token", TOKEN)]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));
    assert!(limited.headers.get(SET_COOKIE).is_none());
    let api = reqwest::Client::new()
        .get(format!(
            "http://{}/api/bookings",
            world.daemon().local_addr()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        world.daemon().metrics().admin_login_failures(),
        u64::from(burst)
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_without_the_sessions_csrf_token_are_refused() {
    let (world, _token_dir) = world_with_api("").await;
    world.book_in_outlook("Planning", in_days(2), 30);
    until("the booking is in sync", || {
        stored(&world).iter().any(in_sync)
    })
    .await;
    let id = stored(&world)[0].match_id.as_str().to_owned();
    let s = Session::signed_in(&world).await;
    let page = s.get("/admin/").await;
    let token = csrf(&page.body);
    let retry = format!("/admin/bookings/{id}/retry");
    for form in [
        vec![],
        vec![("csrf", "0".repeat(64))],
        vec![("csrf", String::new())],
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for path in ["/admin/logout", retry.as_str()] {
            let a = s.post(path, &form).await;
            assert_eq!(
                a.status,
                StatusCode::FORBIDDEN,
                "{path} {form:?}: {}",
                a.body
            );
            assert_secure_headers(&a);
        }
    }
    // Another session's token is no good either.
    let other = Session::signed_in(&world).await;
    let theirs = csrf(&other.get("/admin/").await.body);
    assert_ne!(theirs, token);
    assert_eq!(
        s.post("/admin/logout", &[("csrf", &theirs)]).await.status,
        StatusCode::FORBIDDEN
    );
    // A form a browser marks as sent from another site is refused before anything else.
    let cross = s
        .client
        .post(format!("{}/admin/logout", s.base))
        .header("cookie", s.cookie.clone().unwrap())
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // The session survived all of it; with its token, the in-sync booking is not retried.
    assert_eq!(s.get("/admin/").await.status, StatusCode::OK);
    let a = s.post(&retry, &[("csrf", &token)]).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(
        a.body
            .contains("only failed or parked bookings are retried")
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_text_is_escaped_and_excluded_fields_stay_out_of_the_html() {
    let (world, _token_dir) = world_with_api(r#"view_exclude = ["attendees"]"#).await;
    let script = "<script>alert(1)</script>";
    world.book_in_outlook(script, in_days(2), 30);
    until("the booking is in sync", || {
        stored(&world).iter().any(in_sync)
    })
    .await;
    let id = stored(&world)[0].match_id.as_str().to_owned();
    let s = Session::signed_in(&world).await;
    let list = s.get("/admin/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains(&format!("/admin/bookings/{id}")),
        "{}",
        list.body
    );
    assert!(list.body.contains(ALICE) && list.body.contains(ROOM));
    let detail = s.get(&format!("/admin/bookings/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_secure_headers(&detail);
    assert!(
        detail
            .body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || detail
                .body
                .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        detail.body
    );
    for (name, body) in [("list", &list.body), ("detail", &detail.body)] {
        assert!(!body.contains(script), "{name}: {body}");
        assert!(!body.contains("<script"), "{name}: {body}");
        // Attendees are excluded: Bob appears nowhere, and there is no such field.
        assert!(!body.to_ascii_lowercase().contains(BOB), "{name}: {body}");
        assert!(!body.contains("data-field=\"attendees\""), "{name}");
    }
    // The three groups and the audit trail are on the detail page.
    for part in [
        "Agenda",
        "System",
        "Status",
        "Audit trail",
        "data-field=\"correlation_id\"",
    ] {
        assert!(detail.body.contains(part), "{part}");
    }
    // A booking id that does not exist is a page, not an error.
    let missing = s.get("/admin/bookings/%3Cscript%3E").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!missing.body.contains("<script"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_sorting_and_paging_come_from_the_query() {
    let (world, _token_dir) = world_with_api("").await;
    for (subject, days) in [("One", 1), ("Two", 2), ("Three", 3)] {
        world.book_in_outlook(subject, in_days(days), 30);
    }
    until("three bookings in sync", || {
        stored(&world).iter().filter(|b| in_sync(b)).count() == 3
    })
    .await;
    let s = Session::signed_in(&world).await;
    let rows = |body: &str| body.matches("<tr data-state=").count();

    let all = s.get("/admin/").await;
    assert_eq!(rows(&all.body), 3);
    assert!(all.body.contains("1–3 of 3 bookings"), "{}", all.body);

    let first = s.get("/admin/?limit=1").await;
    assert_eq!(rows(&first.body), 1);
    assert!(first.body.contains("1–1 of 3 bookings"));
    assert!(
        first.body.contains("href=\"/admin/?limit=1&#38;offset=1\""),
        "{}",
        first.body
    );
    let second = s.get("/admin/?limit=1&offset=1").await;
    assert!(second.body.contains("2–2 of 3 bookings"));
    assert!(second.body.contains("id=\"page-previous\""));
    // Sorting by last update is offered and kept in the links.
    let updated = s.get("/admin/?sort=updated&limit=2").await;
    assert_eq!(updated.status, StatusCode::OK);
    assert!(
        updated
            .body
            .contains("sort=updated&#38;limit=2&#38;offset=2"),
        "{}",
        updated.body
    );

    for (query, expected) in [
        ("search=alice", 3),
        ("search=nobody", 0),
        (&format!("room={ROOM}") as &str, 3),
        ("status=in-sync", 3),
        ("status=parked", 0),
        ("from=2000-01-01&to=2000-01-02", 0),
        ("sort=failures", 3),
        ("sort=room", 3),
        ("sort=organizer", 3),
    ] {
        let a = s.get(&format!("/admin/?{query}")).await;
        assert_eq!(a.status, StatusCode::OK, "{query}");
        assert_eq!(rows(&a.body), expected, "{query}");
        if expected == 0 {
            assert!(
                a.body.contains("No booking matches these filters"),
                "{query}"
            );
        }
    }
    // The room and organizer columns sort too, and the Sort field keeps the choice.
    let by_room = s.get("/admin/?sort=room").await;
    assert!(
        by_room.body.contains("<option value=\"room\" selected>"),
        "{}",
        by_room.body
    );
    assert!(
        all.body.contains("href=\"/admin/?sort=organizer\""),
        "{}",
        all.body
    );
    // A bad query is shown as such, not reflected as markup.
    let bad = s.get("/admin/?status=%3Cb%3Ebroken").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"query-error\""));
    assert!(!bad.body.contains("<b>broken"));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_booking_is_retried_through_the_form_and_recovers() {
    let (world, _token_dir) = world_with_api("").await;
    // Bob's mailbox is outside the app's scope: his TOPdesk booking parks (R20).
    world
        .graph
        .set_access_policy(CLIENT_ID, Some(&[ROOM, ALICE, "facilities@example.com"]));
    let reservation = world.book_in_topdesk(BOB, "Denied at first", in_days(1), 30);
    let ours = |b: &orb_store::Booking| {
        b.topdesk_reservation_id.as_ref().map(|t| t.as_str()) == Some(reservation.as_str())
    };
    until("the booking is parked", || {
        stored(&world)
            .iter()
            .any(|b| ours(b) && b.exchange_status.as_deref() == Some("parked"))
    })
    .await;
    let id = stored(&world)
        .into_iter()
        .find(|b| ours(b))
        .unwrap()
        .match_id;
    let s = Session::signed_in(&world).await;
    let list = s.get("/admin/?status=parked").await;
    assert!(list.body.contains(id.as_str()), "{}", list.body);
    let path = format!("/admin/bookings/{}", id.as_str());
    let detail = s.get(&path).await;
    assert!(detail.body.contains("id=\"retry\""), "{}", detail.body);
    assert!(
        detail.body.contains("id=\"booking-state\">parked<"),
        "{}",
        detail.body
    );

    world.graph.set_access_policy(CLIENT_ID, None);
    let done = s
        .post(&format!("{path}/retry"), &[("csrf", &csrf(&detail.body))])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.header("location"), format!("{path}?notice=retry"));
    until("the retried booking is in sync", || {
        stored(&world).iter().any(|b| ours(b) && in_sync(b))
    })
    .await;
    let after = s.get(&format!("{path}?notice=retry")).await;
    assert!(after.body.contains("Retry requested"), "{}", after.body);
    assert!(
        after.body.contains("id=\"booking-state\">in-sync<"),
        "{}",
        after.body
    );
    assert!(!after.body.contains("id=\"retry\""));
    // The request is in the booking's audit trail.
    assert!(after.body.contains("<td>admin</td>"), "{}", after.body);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_token_there_is_no_page() {
    let world = World::start().await;
    let s = Session::new(&world);
    for path in [
        "/admin",
        "/admin/",
        "/admin/login",
        "/admin/static/admin.css",
    ] {
        assert_eq!(s.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        s.post("/admin/login", &[("token", TOKEN)]).await.status,
        StatusCode::NOT_FOUND
    );
    world.stop().await;
}
