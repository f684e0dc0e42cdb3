//! `orb doctor` against both emulators: a good configuration, and one broken thing at a
//! time, each named in the failing line.

use std::sync::Arc;

use orb_emulators::graph::{AppRegistration, GraphEmulator, GraphEmulatorConfig, RoomSeed, roles};
use orb_emulators::topdesk::{TopdeskConfig, TopdeskEmulator};
use orb_service::Config;
use orb_service::doctor::{self, DoctorOptions, Report, Status};
use orb_service::runtime::{Daemon, Options};
use orb_store::Store;
use tokio::net::TcpListener;

use super::world::{ALICE, CLIENT_ID, ROOM, SECRET, until};

struct Setup {
    graph: Arc<GraphEmulator>,
    topdesk: TopdeskEmulator,
    /// `(mailbox, TOPdesk location id)` of TOPdesk's example rooms.
    locations: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Self {
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
        graph.add_person(ALICE, "Alice Adams");
        graph.add_room(RoomSeed::new(ROOM, "Room 2.14"));
        let topdesk = TopdeskEmulator::start(TopdeskConfig::default())
            .await
            .unwrap();
        let locations = topdesk.seed_example().rooms;
        Self {
            graph,
            topdesk,
            locations,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn location(&self, mailbox: &str) -> String {
        self.locations
            .iter()
            .find(|(m, _)| m == mailbox)
            .unwrap()
            .1
            .clone()
    }

    /// A configuration with `rooms` (`(mailbox, location id)`) listening on `port`.
    fn config(&self, port: u16, rooms: &[(&str, &str)]) -> Config {
        let rooms: String = rooms
            .iter()
            .map(|(m, l)| format!("[[rooms]]\nmailbox = \"{m}\"\ntopdesk_location_id = \"{l}\"\n"))
            .collect();
        let (login, _) = self.topdesk.operator_credentials();
        Config::from_toml_str(&format!(
            r#"
[service]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "{dir}"

[graph]
tenant_id = "{tenant}"
client_id = "{CLIENT_ID}"
client_secret = "secret:graph-client-secret"
login_url = "{login_url}"
api_url = "{api}"

[topdesk]
url = "{topdesk}"
username = "{login}"
application_password = "secret:topdesk-app-password"

{rooms}"#,
            dir = self.dir.path().display(),
            tenant = self.graph.tenant_id(),
            login_url = self.graph.login_url(),
            api = self.graph.api_url(),
            topdesk = self.topdesk.base_url(),
        ))
        .unwrap()
    }

    /// The standard configuration: the one managed room, correctly mapped.
    fn good_config(&self, port: u16) -> Config {
        self.config(port, &[(ROOM, &self.location(ROOM))])
    }

    /// Opens the store of `config` and stores both secrets (`graph_secret` for Graph).
    fn store(&self, config: &Config, graph_secret: &str) -> Arc<Store> {
        let opened = orb_service::state::open(config).unwrap();
        let (_, password) = self.topdesk.operator_credentials();
        orb_service::state::set_secret(
            &opened.store,
            "graph-client-secret",
            graph_secret.as_bytes(),
        )
        .unwrap();
        orb_service::state::set_secret(&opened.store, "topdesk-app-password", password.as_bytes())
            .unwrap();
        Arc::new(opened.store)
    }

    /// Runs the doctor on `config` with the right secrets, nothing listening on the
    /// public URL.
    async fn doctor(&self, config: &Config) -> Report {
        let store = self.store(config, SECRET);
        doctor::run_with_store(config, &store, &DoctorOptions::default()).await
    }
}

/// A port nothing listens on.
async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

fn render(report: &Report) -> String {
    report
        .checks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn expect(report: &Report, name: &str, status: Status, words: &[&str]) {
    let check = report
        .check(name)
        .unwrap_or_else(|| panic!("no check {name:?} in\n{}", render(report)));
    assert_eq!(check.status, status, "{name}:\n{}", render(report));
    for w in words {
        assert!(
            check.detail.contains(w),
            "{name}: {w:?} not in {:?}\n{}",
            check.detail,
            render(report)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_configuration_is_all_ok_while_the_daemon_runs() {
    let setup = Setup::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = setup.good_config(listener.local_addr().unwrap().port());
    let store = setup.store(&config, SECRET);
    let store = Arc::try_unwrap(store).unwrap();
    let daemon = Daemon::start_on(config.clone(), store, listener, Options::default())
        .await
        .unwrap();
    let graph = Arc::clone(&setup.graph);
    until("the room's subscription", move || {
        graph.subscriptions().len() == 1
    })
    .await;

    let report = doctor::run_with_store(&config, daemon.store(), &DoctorOptions::default()).await;
    let not_ok: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.status != Status::Ok)
        .collect();
    assert!(not_ok.is_empty(), "{}", render(&report));
    for name in [
        "config",
        "secret graph.client_secret",
        "secret topdesk.application_password",
        "graph token",
        "graph Place.Read.All",
        "graph subscriptions",
        "room room-2.14@example.com (graph)",
        "calendar room-2.14@example.com",
        "topdesk credentials",
        "room room-2.14@example.com (topdesk)",
        "encryption certificate",
        "public url",
    ] {
        assert!(
            report.check(name).is_some(),
            "{name} missing:\n{}",
            render(&report)
        );
    }
    expect(
        &report,
        "graph subscriptions",
        Status::Ok,
        &["1 of 1 room(s)"],
    );
    expect(
        &report,
        "public url",
        Status::Ok,
        &["/healthz answered: ok"],
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_first_start_only_the_missing_daemon_and_certificate_are_warnings() {
    let setup = Setup::start().await;
    let config = setup.good_config(free_port().await);
    drop(setup.store(&config, SECRET));
    // The doctor opens the store itself, as the command does.
    let report = doctor::run(&config, &DoctorOptions::default()).await;
    assert!(!report.failed(), "{}", render(&report));
    expect(&report, "state store", Status::Ok, &["opened"]);
    expect(
        &report,
        "encryption certificate",
        Status::Warn,
        &["none yet"],
    );
    expect(&report, "public url", Status::Warn, &["unreachable"]);
    expect(&report, "graph token", Status::Ok, &[]);
    expect(&report, "topdesk credentials", Status::Ok, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_fails_the_token_check() {
    let setup = Setup::start().await;
    let config = setup.good_config(free_port().await);
    let store = setup.store(&config, "not-the-secret");
    let report = doctor::run_with_store(&config, &store, &DoctorOptions::default()).await;
    assert!(report.failed());
    expect(&report, "secret graph.client_secret", Status::Ok, &[]);
    expect(
        &report,
        "graph token",
        Status::Fail,
        &["invalid client credentials", "client secret is wrong"],
    );
    assert!(
        !render(&report).contains("not-the-secret"),
        "a secret leaked"
    );
    // TOPdesk is still checked.
    expect(&report, "topdesk credentials", Status::Ok, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_named() {
    let setup = Setup::start().await;
    let config = setup.good_config(free_port().await);
    let opened = orb_service::state::open(&config).unwrap();
    let store = Arc::new(opened.store);
    let report = doctor::run_with_store(&config, &store, &DoctorOptions::default()).await;
    expect(
        &report,
        "secret graph.client_secret",
        Status::Fail,
        &["graph-client-secret is not set", "orb secrets set"],
    );
    assert!(report.check("graph token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_unknown_to_graph_fails_the_mapping() {
    let setup = Setup::start().await;
    let other = "room-2.15@example.com";
    let config = setup.config(
        free_port().await,
        &[
            (ROOM, &setup.location(ROOM)),
            (other, &setup.location(other)),
        ],
    );
    let report = setup.doctor(&config).await;
    assert!(report.failed());
    expect(
        &report,
        "room room-2.14@example.com (graph)",
        Status::Ok,
        &["Room 2.14"],
    );
    expect(
        &report,
        "room room-2.15@example.com (graph)",
        Status::Fail,
        &["not a room in Graph's Places"],
    );
    expect(&report, "calendar room-2.15@example.com", Status::Fail, &[]);
    // TOPdesk knows the room.
    expect(
        &report,
        "room room-2.15@example.com (topdesk)",
        Status::Ok,
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_outside_the_access_policy_fails_with_the_policy_named() {
    let setup = Setup::start().await;
    setup.graph.set_access_policy(CLIENT_ID, Some(&[ALICE]));
    let config = setup.good_config(free_port().await);
    let report = setup.doctor(&config).await;
    assert!(report.failed());
    expect(&report, "graph subscriptions", Status::Ok, &[]);
    expect(
        &report,
        "calendar room-2.14@example.com",
        Status::Fail,
        &[
            "ErrorAccessDenied",
            "application access policy",
            "New-ApplicationAccessPolicy",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_graph_permissions_are_named() {
    let setup = Setup::start().await;
    setup
        .graph
        .set_roles(CLIENT_ID, &[roles::CALENDARS_READ_WRITE]);
    let config = setup.good_config(free_port().await);
    let report = setup.doctor(&config).await;
    expect(
        &report,
        "graph Place.Read.All",
        Status::Fail,
        &["Place.Read.All is not granted"],
    );
    expect(&report, "graph subscriptions", Status::Ok, &[]);
    expect(&report, "calendar room-2.14@example.com", Status::Ok, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_topdesk_location_fails_the_mapping() {
    let setup = Setup::start().await;
    let config = setup.config(
        free_port().await,
        &[(ROOM, "0badc0de-0000-4000-8000-000000000000")],
    );
    let report = setup.doctor(&config).await;
    assert!(report.failed());
    expect(&report, "topdesk credentials", Status::Ok, &[]);
    expect(
        &report,
        "room room-2.14@example.com (topdesk)",
        Status::Fail,
        &["unknown TOPdesk location 0badc0de-0000-4000-8000-000000000000"],
    );
    expect(
        &report,
        "room room-2.14@example.com (graph)",
        Status::Ok,
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_topdesk_credentials_fail() {
    let setup = Setup::start().await;
    setup.topdesk.expire_credentials();
    let config = setup.good_config(free_port().await);
    let report = setup.doctor(&config).await;
    assert!(report.failed());
    expect(
        &report,
        "topdesk credentials",
        Status::Fail,
        &["rejected the credentials", "orb secrets set"],
    );
    assert!(
        report
            .check("room room-2.14@example.com (topdesk)")
            .is_none()
    );
    expect(&report, "graph token", Status::Ok, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_near_expiry_warn_and_tls_files_are_checked() {
    let setup = Setup::start().await;
    let config = setup.good_config(free_port().await);
    let store = setup.store(&config, SECRET);
    let now = orb_store::Timestamp::now();
    let short = orb_notification_crypto::GenerateOptions {
        validity: std::time::Duration::from_secs(3 * 24 * 3600),
        ..orb_notification_crypto::GenerateOptions::default()
    };
    orb_service::state::rotate(&store, &short, now).unwrap();
    let report = doctor::run_with_store(&config, &store, &DoctorOptions::default()).await;
    expect(
        &report,
        "encryption certificate",
        Status::Warn,
        &["2 day(s) left", "orb certs rotate"],
    );
    assert!(report.check("tls certificate").is_none());

    // TLS files: a readable certificate and key pair passes, a garbled one fails.
    let pair = orb_notification_crypto::EncryptionKeyPair::generate(
        "tls".to_owned(),
        &orb_notification_crypto::GenerateOptions::default(),
        std::time::SystemTime::now(),
    )
    .unwrap();
    let cert = setup.dir.path().join("tls.crt");
    let key = setup.dir.path().join("tls.key");
    std::fs::write(&cert, pair.certificate().to_pem()).unwrap();
    std::fs::write(&key, pair.key().to_pkcs8_pem().as_bytes()).unwrap();
    let mut with_tls = config.clone();
    with_tls.service.tls_cert_file = Some(cert.clone());
    with_tls.service.tls_key_file = Some(key);
    let report = doctor::run_with_store(&with_tls, &store, &DoctorOptions::default()).await;
    expect(&report, "tls certificate", Status::Ok, &["valid until"]);
    std::fs::write(&cert, "not a certificate").unwrap();
    let report = doctor::run_with_store(&with_tls, &store, &DoctorOptions::default()).await;
    expect(&report, "tls certificate", Status::Fail, &["tls.crt"]);
}
