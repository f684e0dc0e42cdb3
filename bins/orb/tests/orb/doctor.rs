//! `orb doctor` as an operator runs it: against the emulators, with `env:` secrets.

use std::process::{Command, Output};

use orb_emulators::graph::{AppRegistration, GraphEmulator, GraphEmulatorConfig, RoomSeed, roles};
use orb_emulators::topdesk::{TopdeskConfig, TopdeskEmulator};

const CLIENT_ID: &str = "5d1e0c9b-8a7f-4e6d-9c5b-4a3f2e1d0c9b";
const ROOM: &str = "room-2.14@example.com";

fn doctor(config: &std::path::Path, graph_secret: &str, topdesk_password: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orb"))
        .args(["doctor", "--config"])
        .arg(config)
        .env("ORB_TEST_GRAPH_SECRET", graph_secret)
        .env("ORB_TEST_TOPDESK_PASSWORD", topdesk_password)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_worst_check() {
    let graph = GraphEmulator::start(GraphEmulatorConfig::default())
        .await
        .unwrap();
    graph.register_app(AppRegistration::with_secret(
        CLIENT_ID,
        "right",
        &[
            roles::CALENDARS_READ,
            roles::CALENDARS_READ_WRITE,
            roles::PLACE_READ_ALL,
        ],
    ));
    graph.add_room(RoomSeed::new(ROOM, "Room 2.14"));
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
    let config = dir.path().join("orb.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[service]
listen = "127.0.0.1:9"
public_url = "http://127.0.0.1:9"
data_dir = "{data}"

[graph]
tenant_id = "{tenant}"
client_id = "{CLIENT_ID}"
client_secret = "env:ORB_TEST_GRAPH_SECRET"
login_url = "{login_url}"
api_url = "{api}"

[topdesk]
url = "{url}"
username = "{login}"
application_password = "env:ORB_TEST_TOPDESK_PASSWORD"

[[rooms]]
mailbox = "{ROOM}"
topdesk_location_id = "{location}"
"#,
            data = dir.path().join("data").display(),
            tenant = graph.tenant_id(),
            login_url = graph.login_url(),
            api = graph.api_url(),
            url = topdesk.base_url(),
        ),
    )
    .unwrap();

    let good = tokio::task::spawn_blocking({
        let config = config.clone();
        let password = password.clone();
        move || doctor(&config, "right", &password)
    })
    .await
    .unwrap();
    let out = String::from_utf8(good.stdout).unwrap();
    assert_eq!(good.status.code(), Some(0), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("ok   graph token:")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("warn public url:")),
        "{out}"
    );
    assert!(
        out.lines()
            .all(|l| l.starts_with("ok ") || l.starts_with("warn ")),
        "{out}"
    );

    let bad = tokio::task::spawn_blocking({
        let config = config.clone();
        move || doctor(&config, "s3cret-7f2a", &password)
    })
    .await
    .unwrap();
    let out = String::from_utf8(bad.stdout).unwrap();
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("fail graph token:")),
        "{out}"
    );
    assert!(!out.contains("s3cret-7f2a"), "the secret leaked: {out}");

    std::fs::write(&config, "[service]\nlisten = 1\n").unwrap();
    let unusable = doctor(&config, "right", "x");
    assert_eq!(unusable.status.code(), Some(2));
    let out = String::from_utf8(unusable.stdout).unwrap();
    assert!(out.starts_with("fail config:"), "{out}");
}
