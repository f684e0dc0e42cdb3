//! The whole-service harness: the real daemon (webhook, loop, store) against the Graph
//! and TOPdesk emulators, all on loopback in this process.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orb_emulators::graph::{
    AppRegistration, GraphEmulator, GraphEmulatorConfig, RoomOptions, RoomSeed, roles,
};
use orb_emulators::topdesk::{ReservationSnapshot, TopdeskConfig, TopdeskEmulator};
use orb_service::Config;
use orb_service::runtime::{Control, Daemon, Options};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub(super) const CLIENT_ID: &str = "3f1c2b7a-0d4e-4a6b-9c8d-7e6f5a4b3c2d";
pub(super) const SECRET: &str = "e2e-client-secret";
pub(super) const ROOM: &str = "room-2.14@example.com";
pub(super) const ALICE: &str = "alice@example.com";
pub(super) const BOB: &str = "bob@example.com";

/// How long a condition may take before the test fails.
pub(super) const PATIENCE: Duration = Duration::from_secs(20);

pub(super) struct World {
    pub(super) graph: Arc<GraphEmulator>,
    pub(super) topdesk: TopdeskEmulator,
    pub(super) daemon: Option<Daemon>,
    /// The managed room's TOPdesk location id.
    pub(super) location: String,
    /// `(e-mail, TOPdesk person id)`.
    pub(super) people: Vec<(String, String)>,
    config: Config,
    options: Options,
    _dir: tempfile::TempDir,
}

impl World {
    /// Emulators seeded, the daemon running and subscribed.
    pub(super) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// As [`World::start`], with the daemon's options adjusted first.
    pub(super) async fn start_with(adjust: impl FnOnce(&mut Options)) -> Self {
        Self::start_configured("", adjust).await
    }

    /// As [`World::start_with`], with `sync` as the configuration's `[sync]` body.
    pub(super) async fn start_configured(sync: &str, adjust: impl FnOnce(&mut Options)) -> Self {
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
        let seed = topdesk.seed_example();
        let location = seed
            .rooms
            .iter()
            .find(|(mailbox, _)| mailbox == ROOM)
            .unwrap()
            .1
            .clone();
        let (login, password) = topdesk.operator_credentials();

        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = format!(
            r#"
[service]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "{dir}"

[graph]
tenant_id = "{tenant}"
client_id = "{CLIENT_ID}"
client_secret = "secret:graph-client-secret"
login_url = "{login}"
api_url = "{api}"

[topdesk]
url = "{topdesk}"
username = "{login_name}"
application_password = "secret:topdesk-app-password"
poll_interval = "5s"
default_requester_email = "facilities@example.com"

[sync]
{sync}

[[rooms]]
mailbox = "{ROOM}"
topdesk_location_id = "{location}"
"#,
            dir = dir.path().display(),
            tenant = graph.tenant_id(),
            login = graph.login_url(),
            api = graph.api_url(),
            topdesk = topdesk.base_url(),
            login_name = login,
        );
        let config = Config::from_toml_str(&text).unwrap();
        let opened = orb_service::state::open(&config).unwrap();
        orb_service::state::set_secret(&opened.store, "graph-client-secret", SECRET.as_bytes())
            .unwrap();
        orb_service::state::set_secret(&opened.store, "topdesk-app-password", password.as_bytes())
            .unwrap();

        let clock_graph = Arc::clone(&graph);
        let mut options = Options {
            // The emulator's clock, so that tests can move time for both at once.
            clock: Arc::new(move || clock_graph.now()),
            tick: Duration::from_millis(200),
            hot_poll_interval: Some(Duration::from_millis(300)),
            drain: Duration::from_secs(5),
            ..Options::default()
        };
        adjust(&mut options);
        let daemon = Daemon::start_on(config.clone(), opened.store, listener, options.clone())
            .await
            .unwrap();
        let world = Self {
            graph,
            topdesk,
            daemon: Some(daemon),
            location,
            people: seed.people,
            config: config.clone(),
            options: options.clone(),
            _dir: dir,
        };
        let g = Arc::clone(&world.graph);
        eventually("the room's subscription", || {
            let g = Arc::clone(&g);
            async move { g.subscriptions().len() == 1 }
        })
        .await;
        // …and orb has recorded it, so that its notifications are not refused as unknown.
        until("orb recorded the subscription", || {
            world
                .daemon()
                .store()
                .subscriptions()
                .is_ok_and(|s| s.len() == 1)
        })
        .await;
        world
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    pub(super) fn person(&self, email: &str) -> String {
        self.people
            .iter()
            .find(|(e, _)| e == email)
            .unwrap()
            .1
            .clone()
    }

    /// The reservations on the managed room.
    pub(super) fn reservations(&self) -> Vec<ReservationSnapshot> {
        self.topdesk
            .reservations()
            .into_iter()
            .filter(|r| r.location_ids.contains(&self.location))
            .collect()
    }

    /// Waits until exactly one reservation on the room satisfies `check`, and returns it.
    pub(super) async fn reservation_where(
        &self,
        what: &str,
        check: impl Fn(&ReservationSnapshot) -> bool,
    ) -> ReservationSnapshot {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let found: Vec<_> = self.reservations().into_iter().filter(&check).collect();
            if found.len() == 1 {
                return found.into_iter().next().unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; reservations: {:#?}\naudit:\n{}",
                self.reservations(),
                self.audit()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until an event in `mailbox` satisfies `check`, and returns it.
    pub(super) async fn event_where(
        &self,
        what: &str,
        mailbox: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(e) = self.graph.events(mailbox).into_iter().find(&check) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; events: {:#?}\naudit:\n{}",
                self.graph.events(mailbox),
                self.audit()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Alice books the room in Outlook; returns the organizer's event id.
    pub(super) fn book_in_outlook(&self, subject: &str, start: Timestamp, minutes: i64) -> String {
        self.graph
            .create_event_as(ALICE, meeting(subject, start, minutes))
            .unwrap()
    }

    /// An operator books the room in TOPdesk for `requester`; returns the id.
    pub(super) fn book_in_topdesk(
        &self,
        requester: &str,
        subject: &str,
        start: Timestamp,
        minutes: i64,
    ) -> String {
        self.topdesk
            .create_reservation(json!({
                "requester": {"id": self.person(requester)},
                "briefDescription": subject,
                "plannedStartDate": utc(start),
                "plannedEndDate": utc(start + SignedDuration::from_mins(minutes)),
                "reservedFacilities": [{"location": {"id": self.location}}],
            }))
            .unwrap()
    }

    /// A TOPdesk client acting as an operator in TOPdesk's own UI.
    pub(super) fn topdesk_operator(&self) -> orb_topdesk_client::TopdeskClient {
        let (login, password) = self.topdesk.operator_credentials();
        orb_topdesk_client::TopdeskClient::new(
            orb_topdesk_client::Config::new(
                self.topdesk.base_url(),
                login,
                password,
                orb_topdesk_client::ExternalLinkType::new(4711).unwrap(),
            ),
            None,
        )
        .unwrap()
    }

    /// The audit trail, one line per record, for failure messages.
    pub(super) fn audit(&self) -> String {
        self.daemon()
            .store()
            .audit_since(Timestamp::UNIX_EPOCH, 100_000)
            .unwrap()
            .iter()
            .map(|a| {
                format!(
                    "{} {} {} {} {:?}",
                    a.entry.actor,
                    a.entry.action,
                    a.entry.outcome,
                    a.entry.correlation_id,
                    a.entry.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(super) fn control(&self, request: Control) {
        self.daemon().control(request);
    }

    /// Stops the daemon gracefully and starts a new one on the same data and port, as
    /// after a restart of the process.
    pub(super) async fn restart(&mut self) {
        let addr = self.stop_daemon().await;
        self.start_daemon(addr).await;
    }

    /// Stops the daemon gracefully; returns the address it listened on.
    pub(super) async fn stop_daemon(&mut self) -> std::net::SocketAddr {
        let old = self.daemon.take().unwrap();
        let addr = old.local_addr();
        old.shutdown().await.unwrap();
        addr
    }

    /// Starts a daemon on the same data, listening on `addr` again.
    pub(super) async fn start_daemon(&mut self, addr: std::net::SocketAddr) {
        let opened = orb_service::state::open(&self.config).unwrap();
        let listener = TcpListener::bind(addr).await.unwrap();
        self.daemon = Some(
            Daemon::start_on(
                self.config.clone(),
                opened.store,
                listener,
                self.options.clone(),
            )
            .await
            .unwrap(),
        );
    }

    pub(super) async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await.unwrap();
        }
    }
}

/// A meeting in Alice's calendar with the room invited.
pub(super) fn meeting(subject: &str, start: Timestamp, minutes: i64) -> Value {
    json!({
        "subject": subject,
        "start": {"dateTime": local(start), "timeZone": "UTC"},
        "end": {"dateTime": local(start + SignedDuration::from_mins(minutes)), "timeZone": "UTC"},
        "location": {"displayName": "Room 2.14", "locationEmailAddress": ROOM},
        "attendees": [
            {"type": "resource", "emailAddress": {"address": ROOM, "name": "Room 2.14"}},
            {"type": "required", "emailAddress": {"address": BOB, "name": "Bob Baker"}},
        ],
    })
}

/// A whole hour `days` days from now.
pub(super) fn in_days(days: i64) -> Timestamp {
    let t = Timestamp::now() + SignedDuration::from_hours(24 * days);
    Timestamp::from_second(t.as_second() - t.as_second().rem_euclid(3600)).unwrap()
}

pub(super) fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn local(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Polls `condition` until it holds; fails the test after [`PATIENCE`].
pub(super) async fn eventually<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls a synchronous condition (see [`eventually`]).
pub(super) async fn until(what: &str, condition: impl Fn() -> bool) {
    eventually(what, || std::future::ready(condition())).await;
}
