//! The TOPdesk emulator: the Reservations 2.0.0 and Supporting Files 2.7.11 endpoints
//! orb uses, served on loopback, with TOPdesk's rules (required fields, status
//! transitions, service windows, double booking, write-once external links, cancel
//! reasons, 206 keyset paging, persons v2 paging with `next`), plus fault and latency
//! injection and an in-process control API ([`TopdeskEmulator`]).
//!
//! The error codes the emulator writes are its own choice: the published specs fix the
//! error body shape but list no codes. They are exported in [`codes`].

mod fiql;
mod json;
mod routes;
mod state;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Time;
use serde_json::Value;

use crate::loopback::LoopbackServer;
use state::Store;

/// The `errorCode`s this emulator writes in `{"errors":[…]}` bodies.
pub mod codes {
    /// A required field is missing.
    pub const FIELD_REQUIRED: &str = "fieldRequired";
    /// A field has a wrong type, format or range.
    pub const INVALID_VALUE: &str = "invalidValue";
    /// The body names a field the endpoint does not accept.
    pub const UNKNOWN_FIELD: &str = "unknownField";
    /// A query parameter is malformed or names an unfilterable field.
    pub const INVALID_QUERY: &str = "invalidQueryParameter";
    /// A referenced person, location or reason does not exist (or is archived).
    pub const NOT_FOUND: &str = "referenceNotFound";
    /// The reservation lies outside a facility's service window.
    pub const OUTSIDE_SERVICE_WINDOW: &str = "outsideServiceWindow";
    /// The facility is already booked (double booking configured to fail).
    pub const CONFLICT: &str = "reservationConflict";
    /// The reservation already has an external link.
    pub const EXTERNAL_LINK_SET: &str = "externalLinkAlreadySet";
    /// Cancel or reject without a reason while no default reason is configured.
    pub const REASON_REQUIRED: &str = "reasonRequired";
    /// The action is not allowed in the reservation's current status.
    pub const INVALID_STATUS: &str = "invalidStatusTransition";
    /// A facility was issued: cancel, reschedule and room changes are blocked.
    pub const FACILITY_ISSUED: &str = "facilityIssued";
    /// Room changes on an occurrence of a series are not allowed.
    pub const SERIES_OCCURRENCE: &str = "seriesOccurrence";
    /// A field that has its own endpoint (status, dates, facilities) was PATCHed.
    pub const NOT_UPDATABLE: &str = "fieldNotUpdatable";
}

/// What happens when a new or moved reservation overlaps an active one in the same room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DoubleBooking {
    /// 400 with [`codes::CONFLICT`].
    #[default]
    Reject,
    /// Accepted, with status `conflictingPlanned` / `conflictingRequest`.
    MarkConflicting,
}

/// Which persons API versions the emulated TOPdesk speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PersonsApi {
    /// v2 with the vendor media type, and v1 for `Accept: application/json`.
    #[default]
    V2,
    /// An older release: the v2 media type gets 406.
    V1Only,
}

/// Opening hours of a room, in UTC, on the given weekdays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceWindow {
    /// Opening time (UTC).
    pub opens: Time,
    /// Closing time (UTC).
    pub closes: Time,
    /// Closed on Saturday and Sunday.
    pub weekdays_only: bool,
}

/// Emulator settings; all can be changed later through the handle.
#[derive(Clone, Debug)]
pub struct TopdeskConfig {
    /// The operator's login name.
    pub operator_login: String,
    /// The operator's application password.
    pub operator_password: String,
    /// Double-booking behaviour.
    pub double_booking: DoubleBooking,
    /// Persons API versions.
    pub persons_api: PersonsApi,
    /// Name of the default cancellation reason (body optional on cancel), if any.
    pub default_cancellation_reason: Option<String>,
    /// Name of the default rejection reason (body optional on reject), if any.
    pub default_rejection_reason: Option<String>,
}

impl Default for TopdeskConfig {
    fn default() -> Self {
        Self {
            operator_login: "orb-operator".into(),
            operator_password: "application-password".into(),
            double_booking: DoubleBooking::Reject,
            persons_api: PersonsApi::V2,
            default_cancellation_reason: None,
            default_rejection_reason: None,
        }
    }
}

/// A branch to seed.
#[derive(Clone, Debug, Default)]
pub struct BranchSeed {
    /// Name.
    pub name: String,
    /// IANA time zone.
    pub time_zone: Option<String>,
}

/// A location (room) to seed.
#[derive(Clone, Debug, Default)]
pub struct LocationSeed {
    /// Name.
    pub name: String,
    /// Room number.
    pub room_number: Option<String>,
    /// Branch id.
    pub branch_id: Option<String>,
    /// Capacity.
    pub capacity: Option<i64>,
    /// Reservable (appears in `/reservableLocations`).
    pub reservable: bool,
    /// Opening hours; `None` = always open.
    pub service_window: Option<ServiceWindow>,
    /// Set-up/clean-up minutes around each booking.
    pub block_time_minutes: i64,
    /// `optionalFields1.text1` (e.g. the room mailbox).
    pub optional_text1: Option<String>,
    /// Archived locations are hidden unless a query asks for them.
    pub archived: bool,
}

/// A person to seed.
#[derive(Clone, Debug, Default)]
pub struct PersonSeed {
    /// First name.
    pub first_name: String,
    /// Surname.
    pub sur_name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Archived card.
    pub archived: bool,
    /// Network login name.
    pub network_login_name: Option<String>,
    /// Employee number.
    pub employee_number: Option<String>,
    /// Branch id.
    pub branch_id: Option<String>,
}

/// What [`TopdeskEmulator::seed_example`] created.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExampleSeed {
    /// The branch ("HQ", Europe/Amsterdam).
    pub branch_id: String,
    /// `(room mailbox, location id)` for each reservable room; the mailbox is also in
    /// the room's `optionalFields1.text1`.
    pub rooms: Vec<(String, String)>,
    /// `(e-mail, person id)` for each active person, the default requester first.
    pub people: Vec<(String, String)>,
    /// The id of the one cancellation reason.
    pub cancellation_reason_id: String,
}

/// A reservation as the emulator holds it, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReservationSnapshot {
    /// UUID.
    pub id: String,
    /// Reservation number.
    pub number: String,
    /// Status as TOPdesk writes it.
    pub status: String,
    /// Archived.
    pub archived: bool,
    /// Subject.
    pub brief_description: String,
    /// Requester person id.
    pub requester_id: String,
    /// Planned start.
    pub start: Timestamp,
    /// Planned end.
    pub end: Timestamp,
    /// Reserved location ids.
    pub location_ids: Vec<String>,
    /// Series id.
    pub series_id: Option<String>,
    /// External link `(id, type)`.
    pub external_link: Option<(String, String)>,
    /// Last modification.
    pub modification_date: Timestamp,
}

/// An injected failure: the next `times` requests matching `method` and `path_prefix`
/// (relative to `/tas/api`) get `status` (with `Retry-After` when set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Only this method (`None` = any).
    pub method: Option<http::Method>,
    /// Only paths starting with this (e.g. `/reservations`; `None` = any).
    pub path_prefix: Option<String>,
    /// The status to answer with.
    pub status: u16,
    /// A `Retry-After` value to send.
    pub retry_after: Option<String>,
    /// How many requests to fail.
    pub times: u32,
}

impl Fault {
    /// `times` answers of `status` to any request.
    pub fn status(status: u16, times: u32) -> Self {
        Self {
            method: None,
            path_prefix: None,
            status,
            retry_after: None,
            times,
        }
    }
}

/// One request/response pair, recorded for inspection and schema checks.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Exchange {
    /// HTTP method.
    pub method: http::Method,
    /// Path below `/tas/api`, percent-decoded (e.g. `/reservations/abc/cancel`).
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The request body as JSON (`None` when empty or not JSON).
    pub request_body: Option<Value>,
    /// True when the request had a non-empty body that was not JSON.
    pub request_body_invalid: bool,
    /// The response status.
    pub status: u16,
    /// The response `Content-Type`.
    pub content_type: Option<String>,
    /// The response body as JSON (`None` when empty).
    pub response_body: Option<Value>,
}

impl Exchange {
    /// An exchange with no query, headers or bodies (for testing code that inspects
    /// recorded exchanges).
    pub fn new(method: http::Method, path: impl Into<String>, status: u16) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            accept: None,
            request_body: None,
            request_body_invalid: false,
            status,
            content_type: None,
            response_body: None,
        }
    }
}

pub(crate) struct Shared {
    store: Mutex<Store>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock would be an emulator bug; keep serving anyway.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running TOPdesk emulator. Dropping it stops the server.
pub struct TopdeskEmulator {
    shared: Arc<Shared>,
    server: LoopbackServer,
}

impl std::fmt::Debug for TopdeskEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopdeskEmulator")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl TopdeskEmulator {
    /// Starts an empty emulator on `127.0.0.1:0`.
    pub async fn start(config: TopdeskConfig) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(config)),
        });
        let for_server = Arc::clone(&shared);
        let server =
            LoopbackServer::start(move |req| routes::handle(Arc::clone(&for_server), req)).await?;
        shared.lock().origin = server.origin();
        Ok(Self { shared, server })
    }

    /// The bound address (always on 127.0.0.1).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT/tas/api`.
    pub fn base_url(&self) -> String {
        format!("{}/tas/api", self.server.origin())
    }

    /// The operator's `(login, application password)`.
    pub fn operator_credentials(&self) -> (String, String) {
        let store = self.shared.lock();
        (
            store.config.operator_login.clone(),
            store.config.operator_password.clone(),
        )
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }

    // ---- seeding -------------------------------------------------------------------

    /// Adds a branch; returns its id.
    pub fn add_branch(&self, seed: BranchSeed) -> String {
        self.shared.lock().add_branch(seed)
    }

    /// Adds a location; returns its id.
    pub fn add_location(&self, seed: LocationSeed) -> String {
        self.shared.lock().add_location(seed)
    }

    /// Adds a person card; returns its id.
    pub fn add_person(&self, seed: PersonSeed) -> String {
        self.shared.lock().add_person(seed)
    }

    /// Adds an active cancellation reason; returns its id.
    pub fn add_cancellation_reason(&self, name: &str) -> String {
        self.shared.lock().add_reason(true, name)
    }

    /// Adds an active rejection reason; returns its id.
    pub fn add_rejection_reason(&self, name: &str) -> String {
        self.shared.lock().add_reason(false, name)
    }

    /// Adds a person (SSP) account: valid credentials, but not an operator.
    pub fn add_person_account(&self, login: &str, password: &str) {
        self.shared
            .lock()
            .person_accounts
            .push((login.to_owned(), password.to_owned()));
    }

    /// Creates a reservation as if an operator made it in TOPdesk itself (same rules
    /// as `POST /reservations`); `body` is a `CreateReservationDto`. Returns the id or
    /// the error body.
    pub fn create_reservation(&self, body: Value) -> Result<String, Value> {
        self.shared.lock().create_direct(body)
    }

    /// Seeds a small, realistic tenant for demos and end-to-end tests: one branch,
    /// three rooms (one with opening hours 07:00–19:00 UTC on weekdays and 15 minutes of
    /// block time), a default requester and two colleagues, and a cancellation reason.
    pub fn seed_example(&self) -> ExampleSeed {
        let mut store = self.shared.lock();
        let branch_id = store.add_branch(BranchSeed {
            name: "HQ".into(),
            time_zone: Some("Europe/Amsterdam".into()),
        });
        let mut rooms = Vec::new();
        for (number, name, windowed) in [
            ("2.14", "Room 2.14", false),
            ("2.15", "Room 2.15", false),
            ("0.01", "Board room", true),
        ] {
            let mailbox = format!("room-{number}@example.com");
            let id = store.add_location(LocationSeed {
                name: name.into(),
                room_number: Some(number.into()),
                branch_id: Some(branch_id.clone()),
                capacity: Some(if windowed { 16 } else { 8 }),
                reservable: true,
                service_window: windowed.then_some(ServiceWindow {
                    opens: Time::constant(7, 0, 0, 0),
                    closes: Time::constant(19, 0, 0, 0),
                    weekdays_only: true,
                }),
                block_time_minutes: if windowed { 15 } else { 0 },
                optional_text1: Some(mailbox.clone()),
                archived: false,
            });
            rooms.push((mailbox, id));
        }
        let mut people = Vec::new();
        for (first, sur, email) in [
            ("Desk", "Facilities", "facilities@example.com"),
            ("Alice", "Adams", "alice@example.com"),
            ("Bob", "Baker", "bob@example.com"),
        ] {
            let id = store.add_person(PersonSeed {
                first_name: first.into(),
                sur_name: sur.into(),
                email: Some(email.into()),
                branch_id: Some(branch_id.clone()),
                ..PersonSeed::default()
            });
            people.push((email.to_owned(), id));
        }
        let cancellation_reason_id = store.add_reason(true, "Cancelled in Outlook");
        ExampleSeed {
            branch_id,
            rooms,
            people,
            cancellation_reason_id,
        }
    }

    // ---- control -------------------------------------------------------------------

    /// Turns recording of [`Exchange`]s on (the default) or off, e.g. for benchmarks
    /// and long demos where the log would only grow.
    pub fn set_recording(&self, on: bool) {
        self.shared.lock().recording = on;
    }

    /// Makes the operator's application password invalid (as on expiry).
    pub fn expire_credentials(&self) {
        self.shared.lock().credentials_expired = true;
    }

    /// Replaces the operator password (and un-expires it).
    pub fn set_operator_password(&self, password: &str) {
        let mut store = self.shared.lock();
        store.config.operator_password = password.to_owned();
        store.credentials_expired = false;
    }

    /// Changes the double-booking behaviour.
    pub fn set_double_booking(&self, mode: DoubleBooking) {
        self.shared.lock().config.double_booking = mode;
    }

    /// Changes the persons API versions.
    pub fn set_persons_api(&self, api: PersonsApi) {
        self.shared.lock().config.persons_api = api;
    }

    /// Sets (or clears) the default cancellation reason by name.
    pub fn set_default_cancellation_reason(&self, name: Option<&str>) {
        self.shared.lock().config.default_cancellation_reason = name.map(str::to_owned);
    }

    /// Sets (or clears) the default rejection reason by name.
    pub fn set_default_rejection_reason(&self, name: Option<&str>) {
        self.shared.lock().config.default_rejection_reason = name.map(str::to_owned);
    }

    /// Marks every facility of a reservation as issued.
    pub fn issue_facilities(&self, reservation_id: &str) -> bool {
        self.shared.lock().issue(reservation_id)
    }

    /// Archives a reservation.
    pub fn archive_reservation(&self, reservation_id: &str) -> bool {
        self.shared.lock().archive(reservation_id)
    }

    /// Queues a fault.
    pub fn inject_fault(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Caps persons v2 pages at `cap` items whatever `pageSize` asks (TOPdesk treats
    /// `pageSize` as a maximum), so clients must follow `next`.
    pub fn set_persons_page_cap(&self, cap: Option<usize>) {
        self.shared.lock().persons_page_cap = cap;
    }

    /// Delays every answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    // ---- inspection ----------------------------------------------------------------

    /// Every reservation, in creation order.
    pub fn reservations(&self) -> Vec<ReservationSnapshot> {
        self.shared.lock().snapshots()
    }

    /// One reservation by id or number.
    pub fn reservation(&self, identifier: &str) -> Option<ReservationSnapshot> {
        self.shared
            .lock()
            .snapshots()
            .into_iter()
            .find(|r| r.id == identifier || r.number == identifier)
    }

    /// The reservation exactly as `GET /reservations/{id}` renders it.
    pub fn reservation_json(&self, identifier: &str) -> Option<Value> {
        let store = self.shared.lock();
        store
            .find(identifier)
            .map(|i| store.render_reservation(&store.reservations[i]))
    }

    /// Every exchange since start (or the last [`Self::clear_log`]).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.lock().log.clone()
    }

    /// Forgets the recorded exchanges.
    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }

    /// How many requests were received since start (or the last clear).
    pub fn request_count(&self) -> usize {
        self.shared.lock().log.len()
    }
}
