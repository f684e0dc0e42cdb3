//! The shared test world: an emulator seeded with a branch, rooms and people, and a
//! client pointed at it with tiny backoffs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Time;
use orb_emulators::topdesk::{
    BranchSeed, LocationSeed, PersonSeed, ServiceWindow, TopdeskConfig, TopdeskEmulator,
};
use orb_topdesk_client::{
    AuditRecord, Config, ExternalLinkId, ExternalLinkType, LocationId, NewReservation,
    NewReservationStatus, PersonId, RetryPolicy, TopdeskClient,
};

pub(crate) const LINK_TYPE: u32 = 4711;

pub(crate) struct Harness {
    pub(crate) emu: TopdeskEmulator,
    pub(crate) client: TopdeskClient,
    pub(crate) audit: Arc<Mutex<Vec<AuditRecord>>>,
    pub(crate) branch: String,
    pub(crate) room_a: String,
    pub(crate) room_b: String,
    /// Open 08:00–18:00 UTC on weekdays.
    pub(crate) room_windowed: String,
    pub(crate) eva: String,
}

pub(crate) fn ts(text: &str) -> Timestamp {
    orb_topdesk_client::time::parse_timestamp(text).expect("valid timestamp in test")
}

pub(crate) fn config_for(emu: &TopdeskEmulator) -> Config {
    let (login, password) = emu.operator_credentials();
    let mut config = Config::new(
        emu.base_url(),
        login,
        password,
        ExternalLinkType::new(LINK_TYPE).unwrap(),
    );
    config.timeout = Duration::from_secs(10);
    config.retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        max_retry_after: Duration::from_secs(1),
    };
    config
}

impl Harness {
    pub(crate) async fn start() -> Self {
        Self::start_with(TopdeskConfig::default()).await
    }

    pub(crate) async fn start_with(config: TopdeskConfig) -> Self {
        let emu = TopdeskEmulator::start(config)
            .await
            .expect("emulator starts");
        let branch = emu.add_branch(BranchSeed {
            name: "HQ".into(),
            time_zone: Some("Europe/Amsterdam".into()),
        });
        let room = |name: &str, number: &str, window: Option<ServiceWindow>| LocationSeed {
            name: name.into(),
            room_number: Some(number.into()),
            branch_id: Some(branch.clone()),
            capacity: Some(8),
            reservable: true,
            service_window: window,
            block_time_minutes: 0,
            optional_text1: Some(format!("room-{number}@example.com")),
            archived: false,
        };
        let room_a = emu.add_location(room("Room 2.14", "2.14", None));
        let room_b = emu.add_location(room("Room 2.15", "2.15", None));
        let window = ServiceWindow {
            opens: Time::constant(8, 0, 0, 0),
            closes: Time::constant(18, 0, 0, 0),
            weekdays_only: true,
        };
        let room_windowed = emu.add_location(room("Board room", "0.01", Some(window)));
        let eva = emu.add_person(PersonSeed {
            first_name: "Eva".into(),
            sur_name: "Jansen".into(),
            email: Some("eva.jansen@example.com".into()),
            branch_id: Some(branch.clone()),
            network_login_name: Some("ejansen".into()),
            ..PersonSeed::default()
        });
        let audit = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&audit);
        let hook = move |r: &AuditRecord| sink.lock().unwrap().push(r.clone());
        let client =
            TopdeskClient::new(config_for(&emu), Some(Arc::new(hook))).expect("client builds");
        Self {
            emu,
            client,
            audit,
            branch,
            room_a,
            room_b,
            room_windowed,
            eva,
        }
    }

    /// A one-hour meeting in room A for Eva, with an external link.
    pub(crate) fn meeting(&self, start: &str, end: &str, link: &str) -> NewReservation {
        NewReservation {
            requester: PersonId::new(self.eva.clone()),
            start: ts(start),
            end: ts(end),
            locations: vec![LocationId::new(self.room_a.clone())],
            brief_description: Some("Team sync".into()),
            notes: Some("agenda".into()),
            number_of_persons: Some(4),
            status: NewReservationStatus::Planned,
            external_link_id: Some(ExternalLinkId::new(link)),
        }
    }

    /// Every exchange so far conforms to the published schemas.
    pub(crate) fn assert_schemas(&self) {
        super::schema::spec().assert_conforms(&self.emu.exchanges());
    }

    pub(crate) fn requests_to(&self, method: &str, path_prefix: &str) -> usize {
        self.emu
            .exchanges()
            .iter()
            .filter(|e| e.method.as_str() == method && e.path.starts_with(path_prefix))
            .count()
    }
}
