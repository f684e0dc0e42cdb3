//! A Graph emulator with people, rooms and an app, plus a client configured for it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use orb_emulators::graph::{AppRegistration, GraphEmulator, GraphEmulatorConfig, RoomSeed, roles};
use orb_graph_client::{
    AuditRecord, Credential, GraphClient, GraphConfig, Mailbox, NewEvent, OrbMatchId, RetryPolicy,
    RoomBooking, RoomMailbox, Secret, When,
};
use orb_notification_crypto::{EncryptionKeyPair, GenerateOptions};

pub(crate) const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub(crate) const SECRET: &str = "correct horse battery staple";
pub(crate) const ALICE: &str = "alice@example.com";
pub(crate) const BOB: &str = "bob@example.com";
pub(crate) const ROOM_A: &str = "room-a@example.com";
pub(crate) const ROOM_B: &str = "room-b@example.com";
pub(crate) const FACILITIES: &str = "facilities@example.com";

pub(crate) const ALL_ROLES: &[&str] = &[
    roles::CALENDARS_READ,
    roles::CALENDARS_READ_WRITE,
    roles::PLACE_READ_ALL,
    roles::MAIL_SEND,
];

pub(crate) struct World {
    pub(crate) emulator: GraphEmulator,
    pub(crate) audit: Arc<Mutex<Vec<AuditRecord>>>,
}

impl World {
    pub(crate) async fn start() -> Self {
        Self::start_with(GraphEmulatorConfig::default()).await
    }

    pub(crate) async fn start_with(config: GraphEmulatorConfig) -> Self {
        let emulator = GraphEmulator::start(config).await.unwrap();
        emulator.register_app(AppRegistration::with_secret(CLIENT_ID, SECRET, ALL_ROLES));
        emulator.add_person(ALICE, "Alice Example");
        emulator.add_person(BOB, "Bob Example");
        emulator.add_person(FACILITIES, "Facilities");
        emulator.add_room_list("building-1@example.com", "Building 1");
        let mut a = RoomSeed::new(ROOM_A, "Room A");
        a.room_list = Some("building-1@example.com".into());
        emulator.add_room(a);
        emulator.add_room(RoomSeed::new(ROOM_B, "Room B"));
        Self {
            emulator,
            audit: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub(crate) fn config(&self) -> GraphConfig {
        let mut config = GraphConfig::new(self.emulator.tenant_id(), CLIENT_ID);
        config.login_url = self.emulator.login_url();
        config.api_url = self.emulator.api_url();
        config.mail_sender = Some(Mailbox::new(FACILITIES).unwrap());
        config.timeout = Duration::from_secs(10);
        config.retry = RetryPolicy {
            max_attempts: 4,
            max_total_wait: Duration::from_secs(5),
            base_backoff: Duration::from_millis(1),
        };
        config
    }

    pub(crate) fn client(&self) -> GraphClient {
        self.client_with(self.config(), Credential::Secret(Secret::new(SECRET)))
    }

    pub(crate) fn client_with(&self, config: GraphConfig, credential: Credential) -> GraphClient {
        let audit = Arc::clone(&self.audit);
        GraphClient::new(
            config,
            credential,
            Some(Arc::new(move |r: &AuditRecord| {
                audit.lock().unwrap().push(r.clone())
            })),
        )
        .unwrap()
    }

    pub(crate) fn audit(&self) -> Vec<AuditRecord> {
        self.audit.lock().unwrap().clone()
    }
}

pub(crate) fn mailbox(address: &str) -> Mailbox {
    Mailbox::new(address).unwrap()
}

pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A one-hour meeting on 2030-03-04 (a Monday) starting at `hour`, booking `room`.
pub(crate) fn meeting(hour: u8, room: Option<&str>, match_id: &str) -> NewEvent {
    NewEvent {
        subject: format!("Planning {match_id}"),
        body: Some("agenda".into()),
        when: When::Timed {
            start: ts(&format!("2030-03-04T{hour:02}:00:00Z")),
            end: ts(&format!("2030-03-04T{:02}:00:00Z", hour + 1)),
        },
        room: room.map(|r| RoomBooking {
            mailbox: RoomMailbox::new(r).unwrap(),
            display_name: "Room".into(),
        }),
        attendees: vec![],
        recurrence: None,
        orb_match_id: OrbMatchId::new(match_id).unwrap(),
        transaction_id: format!("tx-{match_id}"),
        sensitivity: None,
    }
}

pub(crate) fn day_window() -> (Timestamp, Timestamp) {
    (ts("2030-03-01T00:00:00Z"), ts("2030-04-01T00:00:00Z"))
}

/// A fresh certificate credential (key + self-signed certificate).
pub(crate) fn certificate_pair() -> (String, Vec<u8>) {
    let pair = EncryptionKeyPair::generate(
        "app-credential",
        &GenerateOptions::default(),
        SystemTime::now(),
    )
    .unwrap();
    let pem = format!(
        "{}\n{}",
        pair.key().to_pkcs8_pem().as_str(),
        pair.certificate().to_pem()
    );
    (pem, pair.certificate().der().to_vec())
}
