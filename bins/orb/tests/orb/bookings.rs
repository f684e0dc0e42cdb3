//! `orb bookings list / show / retry` as an operator runs them: against a real daemon
//! (in this process) with both emulators, through the daemon's admin API.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use orb_emulators::graph::{
    AppRegistration, GraphEmulator, GraphEmulatorConfig, RoomOptions, RoomSeed, roles,
};
use orb_emulators::topdesk::{TopdeskConfig, TopdeskEmulator};
use orb_service::Config;
use orb_service::runtime::{Daemon, Options};
use orb_store::Timestamp;
use serde_json::json;
use tokio::net::TcpListener;

const CLIENT_ID: &str = "7a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d";
const SECRET: &str = "bookings-cli-secret";
const ROOM: &str = "room-2.14@example.com";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const TOKEN: &str = "cli-admin-token-71c2";
const SUBJECT: &str = "Acquisition of Globex, board only";

struct Setup {
    daemon: Daemon,
    _graph: Arc<GraphEmulator>,
    _topdesk: TopdeskEmulator,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

/// Both emulators, a daemon with the admin API and `[sync]` hiding attendees and
/// subjects, and Alice's meeting (Bob invited) synced.
async fn start() -> Setup {
    let graph = Arc::new(
        GraphEmulator::start(GraphEmulatorConfig::default())
            .await
            .unwrap(),
    );
    graph.register_app(AppRegistration::with_secret(
        CLIENT_ID,
        SECRET,
        &[
            roles::CALENDARS_READ,
            roles::CALENDARS_READ_WRITE,
            roles::PLACE_READ_ALL,
        ],
    ));
    for (email, name) in [
        (ALICE, "Alice Adams"),
        (BOB, "Bob Baker"),
        ("facilities@example.com", "Facilities"),
    ] {
        graph.add_person(email, name);
    }
    let mut room = RoomSeed::new(ROOM, "Room 2.14");
    room.options = RoomOptions {
        delete_subject: false,
        add_organizer_to_subject: false,
        ..RoomOptions::default()
    };
    graph.add_room(room);
    let topdesk = TopdeskEmulator::start(TopdeskConfig::default())
        .await
        .unwrap();
    let location = topdesk
        .seed_example()
        .rooms
        .into_iter()
        .find(|(m, _)| m == ROOM)
        .unwrap()
        .1;
    let (login, password) = topdesk.operator_credentials();

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = format!(
        r#"
[service]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "{data}"
admin_token_file = "{token}"

[graph]
tenant_id = "{tenant}"
client_id = "{CLIENT_ID}"
client_secret = "secret:graph-client-secret"
login_url = "{login_url}"
api_url = "{api_url}"

[topdesk]
url = "{topdesk_url}"
username = "{login}"
application_password = "secret:topdesk-app-password"
poll_interval = "5s"
default_requester_email = "facilities@example.com"

[sync]
view_exclude = ["attendees", "subject"]

[[rooms]]
mailbox = "{ROOM}"
topdesk_location_id = "{location}"
"#,
        data = dir.path().join("data").display(),
        token = token_file.display(),
        tenant = graph.tenant_id(),
        login_url = graph.login_url(),
        api_url = graph.api_url(),
        topdesk_url = topdesk.base_url(),
    );
    let config_file = dir.path().join("orb.toml");
    std::fs::write(&config_file, &text).unwrap();
    let config = Config::from_toml_str(&text).unwrap();
    let opened = orb_service::state::open(&config).unwrap();
    orb_service::state::set_secret(&opened.store, "graph-client-secret", SECRET.as_bytes())
        .unwrap();
    orb_service::state::set_secret(&opened.store, "topdesk-app-password", password.as_bytes())
        .unwrap();
    let clock = Arc::clone(&graph);
    let options = Options {
        clock: Arc::new(move || clock.now()),
        tick: Duration::from_millis(200),
        hot_poll_interval: Some(Duration::from_millis(300)),
        drain: Duration::from_secs(5),
        ..Options::default()
    };
    let daemon = Daemon::start_on(config, opened.store, listener, options)
        .await
        .unwrap();
    until(|| graph.subscriptions().len() == 1).await;

    let now = Timestamp::now().as_second();
    let start = now + 2 * 86_400 - now.rem_euclid(3600);
    let at = |s: i64| {
        Timestamp::from_second(s)
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    graph
        .create_event_as(
            ALICE,
            json!({
                "subject": SUBJECT,
                "start": {"dateTime": at(start), "timeZone": "UTC"},
                "end": {"dateTime": at(start + 3600), "timeZone": "UTC"},
                "location": {"displayName": "Room 2.14", "locationEmailAddress": ROOM},
                "attendees": [
                    {"type": "resource", "emailAddress": {"address": ROOM, "name": "Room 2.14"}},
                    {"type": "required", "emailAddress": {"address": BOB, "name": "Bob Baker"}},
                ],
            }),
        )
        .unwrap();
    let store = Arc::clone(daemon.store());
    until(|| {
        store.bookings().filter_map(Result::ok).any(|b| {
            b.exchange_status.as_deref() == Some("in sync")
                && b.topdesk_status.as_deref() == Some("in sync")
        })
    })
    .await;
    Setup {
        daemon,
        _graph: graph,
        _topdesk: topdesk,
        config: config_file,
        _dir: dir,
    }
}

async fn until(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs `orb ARGS` off the runtime's threads (the daemon keeps serving meanwhile).
async fn orb(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_orb"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The raw body of `GET path` with the admin token (HTTP/1.0, no client library).
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.0 200"), "{response}");
        response
    })
    .await
    .unwrap()
}

fn config_arg(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_excluded_field_appears_in_no_output_of_the_view() {
    let setup = start().await;
    let config = config_arg(&setup.config);
    let booking = setup.daemon.store().bookings().next().unwrap().unwrap();
    // The store keeps what the view hides.
    assert_eq!(booking.subject.as_deref(), Some(SUBJECT));
    assert!(booking.attendees.iter().any(|a| a == BOB));
    let id = booking.match_id.as_str().to_owned();

    let list = orb(&["bookings", "list", "--config", &config]).await;
    let (list_out, list_err) = text(&list);
    assert_eq!(list.status.code(), Some(0), "{list_out}\n{list_err}");
    assert!(list_out.contains(&id), "{list_out}");
    assert!(
        list_out.contains(ROOM) && list_out.contains(ALICE),
        "{list_out}"
    );
    assert!(list_out.contains("in-sync"), "{list_out}");
    assert!(list_out.contains("1 of 1 booking(s)"), "{list_out}");

    let show = orb(&["bookings", "show", &id, "--config", &config]).await;
    let (show_out, show_err) = text(&show);
    assert_eq!(show.status.code(), Some(0), "{show_out}\n{show_err}");
    for part in [
        "agenda:",
        "system:",
        "status:",
        "audit trail",
        "correlation_id",
    ] {
        assert!(show_out.contains(part), "{part}:\n{show_out}");
    }
    assert!(
        !show_out.contains("attendees") && !show_out.contains("subject"),
        "{show_out}"
    );

    let addr = setup.daemon.local_addr();
    let json_list = raw_get(addr, "/api/bookings").await;
    let json_detail = raw_get(addr, &format!("/api/bookings/{id}")).await;
    assert!(json_list.contains(&id) && json_detail.contains("\"audit\""));

    for (what, output) in [
        ("JSON list", &json_list),
        ("JSON detail", &json_detail),
        ("CLI list", &list_out),
        ("CLI show", &show_out),
    ] {
        let lower = output.to_ascii_lowercase();
        for needle in [BOB, "bob%40example.com", "globex", "board only"] {
            assert!(!lower.contains(needle), "{what} shows {needle}:\n{output}");
        }
    }

    // Filters from the command line; a bad one is a usage error.
    let parked = orb(&[
        "bookings", "list", "--status", "parked", "--config", &config,
    ])
    .await;
    assert_eq!(parked.status.code(), Some(0));
    assert!(
        text(&parked).0.contains("0 of 0 booking(s)"),
        "{}",
        text(&parked).0
    );
    let searched = orb(&["bookings", "list", "--search", "ALICE", "--config", &config]).await;
    assert!(text(&searched).0.contains("1 of 1 booking(s)"));
    let bad = orb(&[
        "bookings", "list", "--status", "sideways", "--config", &config,
    ])
    .await;
    assert_eq!(bad.status.code(), Some(2), "{:?}", text(&bad));

    // A retry of a booking in sync is refused (409), an unknown id is not found.
    let retry = orb(&["bookings", "retry", &id, "--config", &config]).await;
    let (_, retry_err) = text(&retry);
    assert_eq!(retry.status.code(), Some(1), "{retry_err}");
    assert!(retry_err.contains("409"), "{retry_err}");
    let unknown = orb(&["bookings", "show", "no-such-id", "--config", &config]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown).1.contains("no booking no-such-id"),
        "{:?}",
        text(&unknown)
    );

    setup.daemon.shutdown().await.unwrap();
}

#[test]
fn the_commands_say_when_the_daemon_is_unreachable_or_unconfigured() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let write = |name: &str, token_line: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                r#"
[service]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "{data}"
{token_line}

[graph]
tenant_id = "t"
client_id = "c"
client_secret = "secret:graph-client-secret"

[topdesk]
url = "https://example.topdesk.net/tas/api"
username = "orb"
application_password = "secret:topdesk-app-password"

[[rooms]]
mailbox = "{ROOM}"
topdesk_location_id = "loc-1"
"#,
                data = dir.path().join("data").display(),
            ),
        )
        .unwrap();
        path
    };
    let with_token = write(
        "orb.toml",
        &format!("admin_token_file = \"{}\"", token_file.display()),
    );
    let without_token = write("no-token.toml", "");
    let run = |args: &[&str], config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_orb"))
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    };
    let down = run(&["bookings", "list"], &with_token);
    assert_eq!(down.status.code(), Some(1));
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(err.contains("not reachable"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    let unconfigured = run(&["bookings", "show", "x-1"], &without_token);
    assert_eq!(unconfigured.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unconfigured.stderr).contains("admin_token_file"),
        "{:?}",
        unconfigured
    );
    let missing = run(
        &["bookings", "retry", "x-1"],
        &dir.path().join("absent.toml"),
    );
    assert_eq!(missing.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_listed_and_rotated_through_a_running_daemon() {
    let setup = start().await;
    let cfg = config_arg(&setup.config);
    let before = setup.daemon.store().encryption_keys().unwrap();
    assert_eq!(before.len(), 1);

    // The daemon holds the store; the commands go through its admin API.
    let out = orb(&["certs", "list", "--config", &cfg]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(&before[0].id), "{stdout}");
    assert!(stdout.contains("current"), "{stdout}");
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");

    let out = orb(&["certs", "rotate", "--config", &cfg, "--validity", "30d"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let keys = setup.daemon.store().encryption_keys().unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let new = keys.iter().find(|k| k.id != before[0].id).unwrap();
    assert!(stdout.starts_with(&new.id), "{stdout}");
    assert_eq!(new.state, orb_store::KeyState::Current);
    let days = new.expires_at.duration_since(new.created_at).as_hours() / 24;
    assert!((29..=30).contains(&days), "{days}");
    // The daemon moves its subscription onto the new certificate.
    let graph = Arc::clone(&setup._graph);
    let id = new.id.clone();
    until(move || {
        graph
            .subscriptions()
            .iter()
            .all(|s| s["encryptionCertificateId"] == id.as_str())
    })
    .await;

    let out = orb(&["certs", "rotate", "--config", &cfg, "--validity", "36h"]).await;
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    setup.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_runs_its_checks_in_the_running_daemon() {
    let setup = start().await;
    let cfg = config_arg(&setup.config);
    let out = orb(&["doctor", "--config", &cfg]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("ok   daemon:"), "{stdout}");
    for name in [
        "ok   config",
        "ok   graph token",
        "ok   topdesk credentials",
        "ok   encryption certificate",
        "ok   public url",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(name)),
            "{name}:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains(SECRET) && !stdout.contains(TOKEN),
        "{stdout}"
    );
    setup.daemon.shutdown().await.unwrap();
}
