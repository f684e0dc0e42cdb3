//! `orb demo`: the Graph and TOPdesk emulators and a real orb daemon in this process, the
//! showcase scenarios run against them, and a summary of the bookings on both sides.
//!
//! Everything binds `127.0.0.1:0`, the state lives in a temporary directory and nothing is
//! configured by the user. [`run`] is what the binary calls; [`DemoWorld`] is the same
//! setting for tests, which run one [`Scenario`] at a time on a fresh world and add their
//! own checks through its handles.
//!
//! Each scenario acts the way a user or an operator would (an Outlook edit through the
//! Graph emulator's in-process handle, a TOPdesk operator through the TOPdesk REST API)
//! and then waits for the other side to converge: conditions are polled every
//! [`POLL`] for at most the world's patience, never slept on. Progress is reported as
//! [`Progress`] values; this module prints nothing (the binary does).
//!
//! Available with the `demo` feature only, so the daemon library itself does not carry
//! the emulators.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use orb_emulators::graph::{
    AppRegistration, DeliveryKind, GraphEmulator, GraphEmulatorConfig, RoomOptions, RoomSeed, roles,
};
use orb_emulators::topdesk::{PersonSeed, ReservationSnapshot, TopdeskConfig, TopdeskEmulator};
use orb_reconcile::{Jitter, RetryPolicy};
use orb_topdesk_client::{ExternalLinkType, ReservationRef, TopdeskClient};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::Config;
use crate::metrics::RejectReason;
use crate::runtime::{Daemon, Options};
use crate::{Error, state};

/// How often a condition is checked while waiting for convergence.
pub const POLL: Duration = Duration::from_millis(25);

/// How long one step may take to converge unless told otherwise.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(15);

/// Alice, who books rooms in Outlook.
pub const ALICE: &str = "alice@example.com";
/// Bob, a colleague; the facilities desk books for him in TOPdesk.
pub const BOB: &str = "bob@example.com";
/// Carol, a secretary who books on behalf of Martin.
pub const CAROL: &str = "carol@example.com";
/// Martin, a manager.
pub const MARTIN: &str = "martin@example.com";
/// The facilities mailbox: TOPdesk's default requester and the mail sender.
pub const FACILITIES: &str = "facilities@example.com";
/// Room 2.14.
pub const ROOM_2_14: &str = "room-2.14@example.com";
/// Room 2.15.
pub const ROOM_2_15: &str = "room-2.15@example.com";
/// The board room (open 07:00–19:00 UTC on weekdays in TOPdesk; its Exchange calendar
/// processing deletes subjects from the room's copy).
pub const BOARD_ROOM: &str = "room-0.01@example.com";

const CLIENT_ID: &str = "0f5a7c1e-6b2d-4e8a-9c3f-1d2e3f4a5b6c";
const CLIENT_SECRET: &str = "demo-client-secret";

/// How [`run`] is bounded.
#[derive(Clone, Copy, Debug)]
pub struct DemoOptions {
    /// The whole run, start to summary; scenarios not begun in time are skipped and the
    /// run fails.
    pub budget: Duration,
    /// How long a single step may take to converge.
    pub patience: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(60),
            patience: DEFAULT_PATIENCE,
        }
    }
}

/// The showcase scenarios, in the order the demo runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scenario {
    /// A booking made in Outlook appears in TOPdesk.
    OutlookToTopdesk,
    /// A TOPdesk reservation appears in the requester's (organizer's) calendar.
    TopdeskToOutlook,
    /// A meeting moves to another time, then to another room.
    TimeChangeAndRoomMove,
    /// Cancelled in Outlook, cancelled in TOPdesk; each reaches the other side.
    Cancellation,
    /// A weekly series whose occurrences two to four move to another room.
    WeeklySeries,
    /// A secretary books on behalf of a manager.
    OnBehalfOf,
    /// A private meeting: its subject reaches neither TOPdesk nor orb's record.
    PrivateMeeting,
    /// A tampered notification is acknowledged, rejected and changes nothing.
    TamperedNotification,
}

impl Scenario {
    /// Every scenario, in demo order.
    pub const ALL: [Scenario; 8] = [
        Scenario::OutlookToTopdesk,
        Scenario::TopdeskToOutlook,
        Scenario::TimeChangeAndRoomMove,
        Scenario::Cancellation,
        Scenario::WeeklySeries,
        Scenario::OnBehalfOf,
        Scenario::PrivateMeeting,
        Scenario::TamperedNotification,
    ];

    /// One line saying what the scenario shows.
    pub fn title(self) -> &'static str {
        match self {
            Scenario::OutlookToTopdesk => "A booking made in Outlook appears in TOPdesk",
            Scenario::TopdeskToOutlook => {
                "A TOPdesk reservation appears in the organizer's calendar"
            }
            Scenario::TimeChangeAndRoomMove => "A time change, then a room move",
            Scenario::Cancellation => "Cancellations, from either side",
            Scenario::WeeklySeries => {
                "A weekly series where three occurrences move to another room"
            }
            Scenario::OnBehalfOf => "A secretary books on behalf of a manager",
            Scenario::PrivateMeeting => "A private meeting: the subject stays hidden",
            Scenario::TamperedNotification => "A tampered notification is rejected",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// What the demo reports as it goes; the binary prints each as it arrives.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Progress {
    /// Emulators and daemon are up and orb subscribed to every room.
    Ready {
        /// The Graph emulator's API root.
        graph: String,
        /// The TOPdesk emulator's API root.
        topdesk: String,
        /// orb's webhook and admin endpoint.
        webhook: String,
        /// The managed rooms (display names).
        rooms: Vec<String>,
        /// How long start-up took.
        elapsed: Duration,
    },
    /// A scenario begins.
    Started {
        /// 1-based position.
        index: usize,
        /// How many scenarios run.
        total: usize,
        /// Which.
        scenario: Scenario,
    },
    /// Something a user, an operator or an attacker does.
    Action(String),
    /// Something observed on a side after waiting for it.
    Observed {
        /// What was seen.
        text: String,
        /// Since the scenario began.
        elapsed: Duration,
    },
    /// A scenario ended.
    Finished(ScenarioResult),
    /// A scenario was not run because the time budget was spent.
    Skipped(Scenario),
}

/// How one scenario ended.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// Which.
    pub scenario: Scenario,
    /// `Err` says which convergence did not happen (or which action was refused).
    pub outcome: Result<(), String>,
    /// How long it took.
    pub elapsed: Duration,
}

impl ScenarioResult {
    /// Whether every step converged.
    pub fn converged(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// The result of [`run`].
#[derive(Clone, Debug)]
pub struct Report {
    /// One per scenario that ran, in order.
    pub results: Vec<ScenarioResult>,
    /// Scenarios not run because the budget was spent.
    pub skipped: Vec<Scenario>,
    /// The bookings on both sides at the end.
    pub summary: Summary,
    /// The whole run.
    pub elapsed: Duration,
}

impl Report {
    /// True when every scenario ran and converged.
    pub fn all_converged(&self) -> bool {
        self.skipped.is_empty() && self.results.iter().all(ScenarioResult::converged)
    }
}

/// Runs the whole demo: starts the world, runs every [`Scenario`] in order within
/// `options.budget`, reports progress through `progress`, and stops the daemon.
pub async fn run(
    options: DemoOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Report, Error> {
    let began = Instant::now();
    // Keep a little of the budget for the summary and the daemon's shutdown.
    let reserve = Duration::from_secs(2).min(options.budget / 10);
    let deadline = began + options.budget.saturating_sub(reserve);
    let world = DemoWorld::start_until(options.patience, Some(deadline)).await?;
    progress(Progress::Ready {
        graph: world.graph.api_url(),
        topdesk: world.topdesk.base_url(),
        webhook: format!("http://{}", world.daemon().local_addr()),
        rooms: world.rooms.iter().map(|r| r.name.clone()).collect(),
        elapsed: began.elapsed(),
    });
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    let total = Scenario::ALL.len();
    for (i, scenario) in Scenario::ALL.into_iter().enumerate() {
        if Instant::now() >= deadline {
            progress(Progress::Skipped(scenario));
            skipped.push(scenario);
            continue;
        }
        progress(Progress::Started {
            index: i + 1,
            total,
            scenario,
        });
        let result = world.run_scenario(scenario, progress).await;
        progress(Progress::Finished(result.clone()));
        results.push(result);
    }
    let summary = world.summary();
    world.stop().await?;
    Ok(Report {
        results,
        skipped,
        summary,
        elapsed: began.elapsed(),
    })
}

/// A managed room of the demo tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoRoom {
    /// The room mailbox.
    pub mailbox: String,
    /// The display name.
    pub name: String,
    /// The TOPdesk location id it maps to.
    pub location_id: String,
}

/// A person of the demo tenant, known to both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoPerson {
    /// E-mail address (mailbox and TOPdesk person card).
    pub email: String,
    /// Display name.
    pub name: String,
    /// The TOPdesk person id.
    pub person_id: String,
}

/// Both emulators seeded with one tenant, and a running daemon subscribed to its three
/// rooms (organizer mode, subjects carried, mail to organizers enabled).
pub struct DemoWorld {
    graph: Arc<GraphEmulator>,
    topdesk: TopdeskEmulator,
    daemon: Option<Daemon>,
    operator: TopdeskClient,
    rooms: Vec<DemoRoom>,
    people: Vec<DemoPerson>,
    patience: Duration,
    deadline: Option<Instant>,
    // Dropped last: the store lives in it.
    _dir: tempfile::TempDir,
}

impl fmt::Debug for DemoWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoWorld")
            .field("graph", &self.graph.api_url())
            .field("topdesk", &self.topdesk.base_url())
            .field("rooms", &self.rooms)
            .finish_non_exhaustive()
    }
}

impl DemoWorld {
    /// Seeds both emulators, starts the daemon and waits (within `patience`) until it
    /// subscribed to every room.
    pub async fn start(patience: Duration) -> Result<Self, Error> {
        Self::start_until(patience, None).await
    }

    async fn start_until(patience: Duration, deadline: Option<Instant>) -> Result<Self, Error> {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let listen_err = |source| Error::Listen {
            addr: loopback,
            source,
        };
        let graph = Arc::new(
            GraphEmulator::start(GraphEmulatorConfig::default())
                .await
                .map_err(listen_err)?,
        );
        let topdesk = TopdeskEmulator::start(TopdeskConfig::default())
            .await
            .map_err(listen_err)?;
        // The demo never reads the request log; long runs should not grow it.
        topdesk.set_recording(false);
        let (rooms, people) = seed(&graph, &topdesk);

        let dir = tempfile::tempdir().map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })?;
        let listener = TcpListener::bind(loopback).await.map_err(listen_err)?;
        let port = listener.local_addr().map_err(listen_err)?.port();
        let (login, password) = topdesk.operator_credentials();
        let config = Config::from_toml_str(&config_text(
            port,
            dir.path(),
            &graph,
            &topdesk.base_url(),
            &login,
            &rooms,
        ))?;
        let opened = state::open(&config)?;
        state::set_secret(
            &opened.store,
            "graph-client-secret",
            CLIENT_SECRET.as_bytes(),
        )?;
        state::set_secret(&opened.store, "topdesk-app-password", password.as_bytes())?;

        let clock_source = Arc::clone(&graph);
        let options = Options {
            // The emulator's clock, so both sides and orb agree on "now".
            clock: Arc::new(move || clock_source.now()),
            tick: Duration::from_millis(200),
            hot_poll_interval: Some(Duration::from_millis(250)),
            full_poll_interval: Duration::from_secs(2),
            drain: Duration::from_secs(2),
            retry: Some(RetryPolicy {
                base: SignedDuration::from_millis(200),
                max: SignedDuration::from_secs(2),
                max_attempts: 8,
                jitter: Jitter::None,
            }),
            ..Options::default()
        };
        let daemon = Daemon::start_on(config, opened.store, listener, options).await?;

        let link_type = ExternalLinkType::new(4711)
            .ok_or_else(|| Error::Invalid("external link type".to_owned()))?;
        let operator = TopdeskClient::new(
            orb_topdesk_client::Config::new(topdesk.base_url(), login, password, link_type),
            None,
        )?;
        let mut world = Self {
            graph,
            topdesk,
            daemon: Some(daemon),
            operator,
            rooms,
            people,
            patience,
            // Start-up is bounded by the patience alone (and the caller's own bound): a
            // spent budget skips scenarios, it does not make the start fail.
            deadline: None,
            _dir: dir,
        };
        let expected = world.rooms.len();
        world
            .until("orb's subscriptions to every room", |w| {
                // Graph has them, and orb has recorded them: a notification that arrives
                // before orb records its subscription would be refused as unknown.
                let recorded = w.daemon().store().subscriptions().map_or(0, |s| s.len());
                (w.graph.subscriptions().len() == expected && recorded == expected).then_some(())
            })
            .await
            .map_err(Error::Loop)?;
        world.deadline = deadline;
        Ok(world)
    }

    /// The Graph emulator.
    pub fn graph(&self) -> &GraphEmulator {
        &self.graph
    }

    /// The TOPdesk emulator.
    pub fn topdesk(&self) -> &TopdeskEmulator {
        &self.topdesk
    }

    /// A TOPdesk REST client acting as an operator in TOPdesk's own UI.
    pub fn operator(&self) -> &TopdeskClient {
        &self.operator
    }

    /// The running daemon.
    ///
    /// # Panics
    ///
    /// Never: the daemon is only taken by [`DemoWorld::stop`], which consumes the world.
    pub fn daemon(&self) -> &Daemon {
        #[expect(
            clippy::expect_used,
            reason = "the daemon is only taken by stop(), which consumes the world"
        )]
        let daemon = self.daemon.as_ref().expect("the daemon runs until stop()");
        daemon
    }

    /// The managed rooms.
    pub fn rooms(&self) -> &[DemoRoom] {
        &self.rooms
    }

    /// The people.
    pub fn people(&self) -> &[DemoPerson] {
        &self.people
    }

    /// The room with this mailbox.
    pub fn room(&self, mailbox: &str) -> Option<&DemoRoom> {
        self.rooms.iter().find(|r| r.mailbox == mailbox)
    }

    /// The person with this address.
    pub fn person(&self, email: &str) -> Option<&DemoPerson> {
        self.people.iter().find(|p| p.email == email)
    }

    /// orb's booking records.
    pub fn bookings(&self) -> Vec<orb_store::Booking> {
        self.daemon()
            .store()
            .bookings()
            .filter_map(Result::ok)
            .collect()
    }

    /// Whether orb has nothing left to do: no notification waiting in the inbox, no
    /// write in flight, and every booking settled on both sides (in sync, cancelled,
    /// refused, failed, parked or held), not still looking up a person or writing.
    pub fn settled(&self) -> bool {
        let store = self.daemon().store();
        let busy = |status: &Option<String>| {
            matches!(status.as_deref(), None | Some("unknown" | "writing"))
        };
        store.pending_inbox().is_ok_and(|p| p.is_empty())
            && store.effects().is_ok_and(|e| e.is_empty())
            && self
                .bookings()
                .iter()
                .all(|b| !busy(&b.exchange_status) && !busy(&b.topdesk_status))
    }

    /// The one TOPdesk reservation that satisfies `check`, if exactly one does.
    pub fn reservation(
        &self,
        check: impl Fn(&ReservationSnapshot) -> bool,
    ) -> Option<ReservationSnapshot> {
        let mut found = self.topdesk.reservations().into_iter().filter(check);
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// A whole hour, `days` days after today (UTC) at `hour`:00.
    pub fn slot(&self, days: i64, hour: i8) -> Timestamp {
        slot(self.graph.now(), days, hour)
    }

    /// Polls `check` every [`POLL`] until it gives a value, for at most the world's
    /// patience (and never past the run's deadline).
    pub async fn until<T>(
        &self,
        what: &str,
        check: impl Fn(&Self) -> Option<T>,
    ) -> Result<T, String> {
        let began = Instant::now();
        let mut limit = began + self.patience;
        if let Some(deadline) = self.deadline {
            limit = limit.min(deadline);
        }
        loop {
            if let Some(value) = check(self) {
                return Ok(value);
            }
            if Instant::now() >= limit {
                return Err(format!(
                    "timed out after {:.1} s waiting for {what}",
                    began.elapsed().as_secs_f64()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs one scenario on this world, reporting its steps (not its start or end)
    /// through `progress`.
    pub async fn run_scenario(
        &self,
        scenario: Scenario,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> ScenarioResult {
        let began = Instant::now();
        let mut n = Narrator { progress, began };
        let outcome = match scenario {
            Scenario::OutlookToTopdesk => self.outlook_to_topdesk(&mut n).await,
            Scenario::TopdeskToOutlook => self.topdesk_to_outlook(&mut n).await,
            Scenario::TimeChangeAndRoomMove => self.time_change_and_room_move(&mut n).await,
            Scenario::Cancellation => self.cancellation(&mut n).await,
            Scenario::WeeklySeries => self.weekly_series(&mut n).await,
            Scenario::OnBehalfOf => self.on_behalf_of(&mut n).await,
            Scenario::PrivateMeeting => self.private_meeting(&mut n).await,
            Scenario::TamperedNotification => self.tampered_notification(&mut n).await,
        };
        ScenarioResult {
            scenario,
            outcome,
            elapsed: began.elapsed(),
        }
    }

    /// The bookings on both sides now: one row per orb booking, with the live state of
    /// the room's calendar and of the TOPdesk reservation, plus rows for anything on
    /// either side that orb does not link.
    pub fn summary(&self) -> Summary {
        let mut bookings = self.bookings();
        bookings.sort_by_key(|b| (b.start, b.room.as_str().to_owned()));
        let reservations = self.topdesk.reservations();
        let mut linked_reservations = std::collections::HashSet::new();
        let mut linked_events = std::collections::HashSet::new();
        let mut rows = Vec::new();
        for b in &bookings {
            let room = self.room_name(b.room.as_str());
            let outlook = match &b.room_event_id {
                Some(id) => {
                    linked_events.insert(id.as_str().to_owned());
                    self.room_entry_state(b.room.as_str(), id.as_str(), b.start, b.end)
                }
                None => "—".to_owned(),
            };
            let topdesk = match &b.topdesk_reservation_id {
                Some(id) => {
                    linked_reservations.insert(id.as_str().to_owned());
                    reservations
                        .iter()
                        .find(|r| r.id == id.as_str())
                        .map_or_else(
                            || "missing".to_owned(),
                            |r| format!("{} {}", r.number, r.status),
                        )
                }
                None => "—".to_owned(),
            };
            rows.push(SummaryRow {
                when: when(b.start, b.end),
                room,
                subject: b
                    .subject
                    .clone()
                    .unwrap_or_else(|| "(not stored)".to_owned()),
                organizer: b.organizer.clone().unwrap_or_default(),
                outlook,
                topdesk,
            });
        }
        for r in reservations
            .iter()
            .filter(|r| !linked_reservations.contains(&r.id))
        {
            rows.push(SummaryRow {
                when: when(r.start, r.end),
                room: r
                    .location_ids
                    .iter()
                    .filter_map(|l| self.rooms.iter().find(|x| &x.location_id == l))
                    .map(|x| x.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                subject: r.brief_description.clone(),
                organizer: self
                    .people
                    .iter()
                    .find(|p| p.person_id == r.requester_id)
                    .map(|p| p.email.clone())
                    .unwrap_or_default(),
                outlook: "not linked by orb".to_owned(),
                topdesk: format!("{} {}", r.number, r.status),
            });
        }
        let now = self.graph.now();
        for room in &self.rooms {
            for e in self.graph.calendar_view(
                &room.mailbox,
                now - SignedDuration::from_hours(24),
                now + SignedDuration::from_hours(24 * 180),
            ) {
                let id = e["id"].as_str().unwrap_or_default();
                if linked_events.contains(id) || e["isCancelled"] == true {
                    continue;
                }
                let (Some(start), Some(end)) = (event_time(&e["start"]), event_time(&e["end"]))
                else {
                    continue;
                };
                rows.push(SummaryRow {
                    when: when(start, end),
                    room: room.name.clone(),
                    subject: e["subject"].as_str().unwrap_or_default().to_owned(),
                    organizer: e["organizer"]["emailAddress"]["address"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    outlook: "booked".to_owned(),
                    topdesk: "not linked by orb".to_owned(),
                });
            }
        }
        let active_reservations = reservations
            .iter()
            .filter(|r| !matches!(r.status.as_str(), "cancelled" | "rejectedRequest"))
            .count();
        Summary {
            rows,
            reservations: reservations.len(),
            active_reservations,
            bookings: bookings.len(),
        }
    }

    /// Stops the daemon (finishing its calls in flight) and the emulators.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await?;
        }
        Ok(())
    }

    // ---- the scenarios ----------------------------------------------------------------

    async fn outlook_to_topdesk(&self, n: &mut Narrator<'_>) -> Result<(), String> {
        let room = self.demo_room(ROOM_2_14)?;
        let (subject, start, end) = ("Quarterly planning", self.slot(2, 9), self.slot(2, 10));
        n.act(format!(
            "Alice books {} in Outlook: “{subject}”, {}, Bob invited",
            room.name,
            when(start, end)
        ));
        self.book_in_outlook(ALICE, subject, room, start, end, &[BOB], None)?;
        let r = self
            .until(&format!("a TOPdesk reservation “{subject}”"), |w| {
                w.reservation(|r| {
                    r.brief_description == subject
                        && r.location_ids.contains(&room.location_id)
                        && r.status == "planned"
                })
            })
            .await?;
        self.expect_requester(&r, ALICE)?;
        if (r.start, r.end) != (start, end) {
            return Err(format!(
                "reservation {} is at {}, not {}",
                r.number,
                when(r.start, r.end),
                when(start, end)
            ));
        }
        n.saw(format!(
            "TOPdesk: reservation {} on {}, {}, requester {}, {}",
            r.number,
            room.name,
            when(r.start, r.end),
            self.person_name(ALICE),
            r.status
        ));
        let b = self
            .until("orb's record of the booking, in sync", |w| {
                w.booking_for(&r.id)
                    .filter(|b| b.topdesk_status.as_deref() == Some("in sync"))
            })
            .await?;
        n.saw(format!(
            "orb: booking {} links the room's event and reservation {} (organizer {}, created by {:?})",
            short(b.match_id.as_str()),
            r.number,
            b.organizer.as_deref().unwrap_or("?"),
            b.processor_created
        ));
        Ok(())
    }

    async fn topdesk_to_outlook(&self, n: &mut Narrator<'_>) -> Result<(), String> {
        let room = self.demo_room(ROOM_2_14)?;
        let (subject, start, end) = (
            "Budget review",
            self.slot(1, 10),
            self.slot(1, 10) + SignedDuration::from_mins(30),
        );
        n.act(format!(
            "The facilities desk books {} in TOPdesk for Bob: “{subject}”, {}",
            room.name,
            when(start, end)
        ));
        let id = self.book_in_topdesk(BOB, subject, room, start, end)?;
        let event = self
            .until(&format!("“{subject}” in Bob's calendar"), |w| {
                w.event_in(BOB, |e| {
                    e["subject"] == subject && e["isOrganizer"] == true && invites(e, &room.mailbox)
                })
            })
            .await?;
        n.saw(format!(
            "Outlook: “{subject}” in Bob's calendar, organizer Bob, {} invited as the room",
            room.name
        ));
        let uid = event["iCalUId"].clone();
        self.until(&format!("{}'s copy of the meeting", room.name), |w| {
            w.event_in(&room.mailbox, |e| {
                e["iCalUId"] == uid && e["isCancelled"] == false
            })
        })
        .await?;
        n.saw(format!(
            "{} accepted: the meeting is in the room's calendar",
            room.name
        ));
        self.until("orb's record linking both sides", |w| {
            w.booking_for(&id)
                .filter(|b| b.organizer_event_id.is_some() && b.room_event_id.is_some())
        })
        .await?;
        let count = self
            .topdesk
            .reservations()
            .iter()
            .filter(|r| r.brief_description == subject)
            .count();
        if count != 1 {
            return Err(format!(
                "{count} TOPdesk reservations “{subject}”: orb's own event came back as a new booking"
            ));
        }
        n.saw("orb: the echo of its own event made no second reservation".to_owned());
        Ok(())
    }

    async fn time_change_and_room_move(&self, n: &mut Narrator<'_>) -> Result<(), String> {
        let from = self.demo_room(ROOM_2_14)?;
        let to = self.demo_room(ROOM_2_15)?;
        let (subject, start, end) = ("Design review", self.slot(3, 9), self.slot(3, 10));
        n.act(format!(
            "Alice books {} in Outlook: “{subject}”, {}",
            from.name,
            when(start, end)
        ));
        let id = self.book_in_outlook(ALICE, subject, from, start, end, &[BOB], None)?;
        let first = self
            .until(&format!("a TOPdesk reservation “{subject}”"), |w| {
                w.reservation(|r| {
                    r.brief_description == subject
                        && r.location_ids.contains(&from.location_id)
                        && r.status == "planned"
                })
            })
            .await?;
        n.saw(format!(
            "TOPdesk: reservation {} on {}, {}",
            first.number,
            from.name,
            when(first.start, first.end)
        ));

        let (later, later_end) = (self.slot(3, 11), self.slot(3, 12));
        n.act(format!(
            "Alice moves it in Outlook to {}",
            when(later, later_end)
        ));
        self.graph
            .update_event_as(
                ALICE,
                &id,
                json!({"start": graph_time(later), "end": graph_time(later_end)}),
            )
            .map_err(|e| format!("Outlook refused the change: {}", e.message))?;
        self.until("the reservation at the new time", |w| {
            w.topdesk
                .reservation(&first.id)
                .filter(|r| r.start == later && r.end == later_end && r.status == "planned")
        })
        .await?;
        n.saw(format!(
            "TOPdesk: reservation {} now {}",
            first.number,
            when(later, later_end)
        ));

        n.act(format!(
            "Alice swaps {} for {} in the meeting",
            from.name, to.name
        ));
        self.graph
            .update_event_as(
                ALICE,
                &id,
                json!({
                    "location": location(to),
                    "attendees": attendees(to, &[BOB]),
                }),
            )
            .map_err(|e| format!("Outlook refused the room change: {}", e.message))?;
        let moved = self
            .until(&format!("“{subject}” on {} only", to.name), |w| {
                let reservations = w.topdesk.reservations();
                let active = |r: &&ReservationSnapshot| {
                    r.brief_description == subject
                        && !matches!(r.status.as_str(), "cancelled" | "rejectedRequest")
                };
                let mut live = reservations.iter().filter(active);
                let only = live.next()?;
                (live.next().is_none()
                    && only.location_ids == [to.location_id.clone()]
                    && only.start == later
                    && only.status == "planned")
                    .then(|| only.clone())
            })
            .await?;
        if moved.id == first.id {
            n.saw(format!(
                "TOPdesk: reservation {} moved to {}",
                moved.number, to.name
            ));
        } else {
            let old = self
                .topdesk
                .reservation(&first.id)
                .map_or_else(|| "gone".to_owned(), |r| r.status);
            n.saw(format!(
                "TOPdesk: {} on {} {old}, {} on {} planned",
                first.number, from.name, moved.number, to.name
            ));
        }
        Ok(())
    }

    async fn cancellation(&self, n: &mut Narrator<'_>) -> Result<(), String> {
        let a = self.demo_room(ROOM_2_14)?;
        let b = self.demo_room(ROOM_2_15)?;
        let (subject, start, end) = ("Retrospective", self.slot(4, 9), self.slot(4, 10));
        n.act(format!(
            "Alice books {} in Outlook: “{subject}”, {}",
            a.name,
            when(start, end)
        ));
        let id = self.book_in_outlook(ALICE, subject, a, start, end, &[BOB], None)?;
        let r = self
            .until(&format!("a TOPdesk reservation “{subject}”"), |w| {
                w.reservation(|r| r.brief_description == subject && r.status == "planned")
            })
            .await?;
        n.saw(format!("TOPdesk: reservation {} planned", r.number));
        n.act("Alice cancels the meeting in Outlook".to_owned());
        self.graph
            .cancel_event_as(ALICE, &id)
            .map_err(|e| format!("Outlook refused the cancellation: {}", e.message))?;
        self.until("the reservation to be cancelled", |w| {
            w.topdesk
                .reservation(&r.id)
                .filter(|x| x.status == "cancelled")
        })
        .await?;
        n.saw(format!("TOPdesk: reservation {} cancelled", r.number));

        let (subject, start, end) = ("Vendor call", self.slot(1, 11), self.slot(1, 12));
        n.act(format!(
            "The facilities desk books {} in TOPdesk for Bob: “{subject}”, {}",
            b.name,
            when(start, end)
        ));
        let id = self.book_in_topdesk(BOB, subject, b, start, end)?;
        let event = self
            .until(&format!("“{subject}” in Bob's calendar"), |w| {
                w.event_in(BOB, |e| e["subject"] == subject && invites(e, &b.mailbox))
            })
            .await?;
        let uid = event["iCalUId"].clone();
        n.saw(format!("Outlook: “{subject}” in Bob's calendar"));
        n.act("The facilities desk cancels the reservation in TOPdesk".to_owned());
        self.operator
            .cancel_reservation(&ReservationRef::Id(id.as_str().into()))
            .await
            .map_err(|e| format!("TOPdesk refused the cancellation: {e}"))?;
        self.until(&format!("the meeting cancelled in {}", b.name), |w| {
            w.event_in(&b.mailbox, |e| {
                e["iCalUId"] == uid && e["isCancelled"] == true
            })
        })
        .await?;
        self.until("the meeting gone from Bob's calendar", |w| {
            w.event_in(BOB, |e| e["iCalUId"] == uid && e["isCancelled"] == false)
                .is_none()
                .then_some(())
        })
        .await?;
        n.saw(format!(
            "Outlook: the meeting is cancelled: gone from Bob's calendar, cancelled in {}",
            b.name
        ));
        Ok(())
    }

    async fn weekly_series(&self, n: &mut Narrator<'_>) -> Result<(), String> {
        let a = self.demo_room(ROOM_2_14)?;
        let b = self.demo_room(ROOM_2_15)?;
        let subject = "Team weekly";
        let first = self.slot(5, 14);
        let week = SignedDuration::from_hours(24 * 7);
        let starts: Vec<Timestamp> = (0..5).map(|i| first + week * i).collect();
        let weekday = first
            .to_zoned(TimeZone::UTC)
            .strftime("%A")
            .to_string()
            .to_ascii_lowercase();
        n.act(format!(
            "Alice creates a weekly series in Outlook: “{subject}”, 5 × {} 14:00–15:00 UTC from {}, in {}",
            capitalised(&weekday),
            day(first),
            a.name
        ));
        let mut body = meeting(
            subject,
            a,
            first,
            first + SignedDuration::from_hours(1),
            &[BOB],
        );
        body["recurrence"] = json!({
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [weekday]},
            "range": {
                "type": "numbered",
                "startDate": first.strftime("%Y-%m-%d").to_string(),
                "numberOfOccurrences": 5,
            },
        });
        self.graph
            .create_event_as(ALICE, body)
            .map_err(|e| format!("Outlook refused the series: {}", e.message))?;
        self.until("five planned reservations, one per occurrence", |w| {
            let on_a = w.planned(subject, &a.location_id);
            (on_a == starts).then_some(())
        })
        .await?;
        n.saw(format!(
            "TOPdesk: 5 reservations on {}, one per occurrence",
            a.name
        ));

        let occurrences = self.graph.calendar_view(
            ALICE,
            first - SignedDuration::from_hours(1),
            starts[4] + SignedDuration::from_hours(2),
        );
        let moved: Vec<Timestamp> = starts[1..4].to_vec();
        n.act(format!(
            "Alice moves occurrences 2–4 ({}) to {}",
            moved.iter().map(|t| day(*t)).collect::<Vec<_>>().join(", "),
            b.name
        ));
        for start in &moved {
            let id = occurrences
                .iter()
                .find(|e| e["subject"] == subject && event_time(&e["start"]) == Some(*start))
                .and_then(|e| e["id"].as_str())
                .ok_or_else(|| format!("no occurrence at {} in Alice's calendar", day(*start)))?;
            self.graph
                .update_event_as(
                    ALICE,
                    id,
                    json!({"location": location(b), "attendees": attendees(b, &[BOB])}),
                )
                .map_err(|e| format!("Outlook refused moving an occurrence: {}", e.message))?;
        }
        let stay = vec![starts[0], starts[4]];
        self.until(
            &format!("occurrences 2–4 on {} and 1 and 5 on {}", b.name, a.name),
            |w| {
                (w.planned(subject, &b.location_id) == moved
                    && w.planned(subject, &a.location_id) == stay)
                    .then_some(())
            },
        )
        .await?;
        let cancelled = self
            .topdesk
            .reservations()
            .iter()
            .filter(|r| {
                r.brief_description == subject
                    && r.location_ids.contains(&a.location_id)
                    && r.status == "cancelled"
            })
            .count();
        n.saw(format!(
            "TOPdesk: occurrences 2–4 planned on {}, 1 and 5 stay on {} ({cancelled} reservations on {} cancelled)",
            b.name, a.name, a.name
        ));
        Ok(())
    }

    async fn on_behalf_of(&self, n: &mut Narrator<'_>) -> Result<(), String> {
        let room = self.demo_room(ROOM_2_15)?;
        let (subject, start, end) = ("Board preparation", self.slot(2, 13), self.slot(2, 14));
        n.act(format!(
            "Carol (secretary) books {} for Martin (manager) with her delegate access: “{subject}”, {}; Exchange puts the meeting in Martin's calendar, Martin organizes",
            room.name,
            when(start, end)
        ));
        self.book_in_outlook(MARTIN, subject, room, start, end, &[CAROL], None)?;
        let r = self
            .until(&format!("a TOPdesk reservation “{subject}”"), |w| {
                w.reservation(|r| r.brief_description == subject && r.status == "planned")
            })
            .await?;
        self.expect_requester(&r, MARTIN)?;
        n.saw(format!(
            "TOPdesk: reservation {} requested by {}, not by Carol",
            r.number,
            self.person_name(MARTIN)
        ));
        Ok(())
    }

    async fn private_meeting(&self, n: &mut Narrator<'_>) -> Result<(), String> {
        let room = self.demo_room(BOARD_ROOM)?;
        let secret = "Salary review";
        // The board room is open on weekdays only (TOPdesk service window).
        let mut days = 2;
        while is_weekend(self.slot(days, 15)) {
            days += 1;
        }
        let (start, end) = (self.slot(days, 15), self.slot(days, 16));
        n.act(format!(
            "Alice books the {} for a private meeting “{secret}”, {}",
            room.name,
            when(start, end)
        ));
        self.book_in_outlook(ALICE, secret, room, start, end, &[BOB], Some("private"))?;
        let r = self
            .until("the TOPdesk reservation of the private meeting", |w| {
                w.reservation(|r| {
                    r.location_ids.contains(&room.location_id)
                        && r.start == start
                        && r.status == "planned"
                })
            })
            .await?;
        if r.brief_description.contains(secret) {
            return Err(format!(
                "the private subject reached TOPdesk: “{}”",
                r.brief_description
            ));
        }
        n.saw(format!(
            "TOPdesk: reservation {} on the {} reads “{}”",
            r.number, room.name, r.brief_description
        ));
        let b = self
            .until("orb's record of the private meeting", |w| {
                w.booking_for(&r.id)
            })
            .await?;
        if b.subject.is_some() {
            return Err("orb stored the private meeting's subject".to_owned());
        }
        n.saw(format!(
            "orb: its record of the booking holds no subject; the room's copy carried none (the {}'s calendar processing deletes subjects, and Exchange clears the private flag on room copies)",
            room.name
        ));
        Ok(())
    }

    async fn tampered_notification(&self, n: &mut Narrator<'_>) -> Result<(), String> {
        let genuine = match self.last_delivered_change() {
            Some(body) => body,
            None => {
                let room = self.demo_room(ROOM_2_14)?;
                let (start, end) = (self.slot(6, 9), self.slot(6, 10));
                self.book_in_outlook(ALICE, "Genuine", room, start, end, &[], None)?;
                self.until("a genuine notification delivered to orb", |w| {
                    w.last_delivered_change()
                })
                .await?
            }
        };
        let mut body: Value = serde_json::from_slice(&genuine)
            .map_err(|e| format!("the delivered notification is not JSON: {e}"))?;
        let data = body["value"][0]["encryptedContent"]["data"]
            .as_str()
            .ok_or("the delivered notification carries no encrypted content")?
            .to_owned();
        // One base64 character in the middle of the ciphertext: the HMAC no longer matches.
        let mid = data.len() / 2;
        let flipped = if data.get(mid..=mid) == Some("A") {
            "B"
        } else {
            "A"
        };
        let tampered = format!(
            "{}{flipped}{}",
            data.get(..mid).unwrap_or_default(),
            data.get(mid + 1..).unwrap_or_default()
        );
        body["value"][0]["encryptedContent"]["data"] = Value::from(tampered);

        self.until("orb to finish earlier work", |w| w.settled().then_some(()))
            .await?;
        let metrics = self.daemon().metrics();
        let rejected_before = metrics.rejected_count(RejectReason::Decrypt);
        let reservations_before = self.topdesk.reservations();
        let bookings_before = self.daemon().store().booking_count();
        n.act(
            "An attacker replays a genuine notification with one character of its encrypted data changed"
                .to_owned(),
        );
        let url = format!("http://{}/graph/notifications", self.daemon().local_addr());
        let status = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .send()
            .await
            .map_err(|e| format!("posting to orb's webhook failed: {e}"))?
            .status();
        if status != reqwest::StatusCode::ACCEPTED {
            return Err(format!("orb answered {status}, not 202"));
        }
        self.until("the rejection", |w| {
            (w.daemon().metrics().rejected_count(RejectReason::Decrypt) > rejected_before
                && w.settled())
            .then_some(())
        })
        .await?;
        if self.topdesk.reservations() != reservations_before
            || self.daemon().store().booking_count() != bookings_before
        {
            return Err("the tampered notification changed a booking".to_owned());
        }
        n.saw(
            "orb: acknowledged (202, into the durable inbox), then rejected: HMAC mismatch, nothing decrypted; counted as orb_notifications_rejected_total{reason=\"decrypt\"} and audited; no booking changed"
                .to_owned(),
        );
        Ok(())
    }

    // ---- helpers -----------------------------------------------------------------------

    fn demo_room(&self, mailbox: &str) -> Result<&DemoRoom, String> {
        self.room(mailbox)
            .ok_or_else(|| format!("{mailbox} is not a demo room"))
    }

    fn room_name(&self, mailbox: &str) -> String {
        self.room(mailbox)
            .map_or_else(|| mailbox.to_owned(), |r| r.name.clone())
    }

    fn person_name(&self, email: &str) -> String {
        self.person(email)
            .map_or_else(|| email.to_owned(), |p| p.name.clone())
    }

    fn expect_requester(&self, r: &ReservationSnapshot, email: &str) -> Result<(), String> {
        let wanted = self
            .person(email)
            .ok_or_else(|| format!("{email} has no TOPdesk person card"))?;
        if r.requester_id == wanted.person_id {
            return Ok(());
        }
        let actual = self
            .people
            .iter()
            .find(|p| p.person_id == r.requester_id)
            .map_or(r.requester_id.as_str(), |p| p.email.as_str());
        Err(format!(
            "reservation {} is requested by {actual}, not {email}",
            r.number
        ))
    }

    /// A user books in Outlook; returns the organizer's event id.
    #[expect(
        clippy::too_many_arguments,
        reason = "one meeting's fields, spelled out"
    )]
    fn book_in_outlook(
        &self,
        organizer: &str,
        subject: &str,
        room: &DemoRoom,
        start: Timestamp,
        end: Timestamp,
        invitees: &[&str],
        sensitivity: Option<&str>,
    ) -> Result<String, String> {
        let mut body = meeting(subject, room, start, end, invitees);
        if let Some(s) = sensitivity {
            body["sensitivity"] = Value::from(s);
        }
        self.graph
            .create_event_as(organizer, body)
            .map_err(|e| format!("Outlook refused the booking: {}", e.message))
    }

    /// An operator books in TOPdesk; returns the reservation id.
    fn book_in_topdesk(
        &self,
        requester: &str,
        subject: &str,
        room: &DemoRoom,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<String, String> {
        let person = self
            .person(requester)
            .ok_or_else(|| format!("{requester} has no TOPdesk person card"))?;
        self.topdesk
            .create_reservation(json!({
                "requester": {"id": person.person_id},
                "briefDescription": subject,
                "plannedStartDate": utc(start),
                "plannedEndDate": utc(end),
                "reservedFacilities": [{"location": {"id": room.location_id}}],
            }))
            .map_err(|e| format!("TOPdesk refused the reservation: {e}"))
    }

    fn event_in(&self, mailbox: &str, check: impl Fn(&Value) -> bool) -> Option<Value> {
        self.graph.events(mailbox).into_iter().find(check)
    }

    fn booking_for(&self, reservation_id: &str) -> Option<orb_store::Booking> {
        self.bookings()
            .into_iter()
            .find(|b| b.topdesk_reservation_id.as_ref().map(|t| t.as_str()) == Some(reservation_id))
    }

    /// Sorted starts of the planned reservations with `subject` on `location`.
    fn planned(&self, subject: &str, location: &str) -> Vec<Timestamp> {
        let mut starts: Vec<Timestamp> = self
            .topdesk
            .reservations()
            .iter()
            .filter(|r| {
                r.brief_description == subject
                    && r.status == "planned"
                    && r.location_ids.iter().any(|l| l == location)
            })
            .map(|r| r.start)
            .collect();
        starts.sort();
        starts
    }

    fn last_delivered_change(&self) -> Option<Vec<u8>> {
        self.graph
            .deliveries()
            .into_iter()
            .rev()
            .find(|d| d.kind == DeliveryKind::Change && d.status == Some(202))
            .map(|d| d.body)
    }

    /// The state of a room-calendar entry as the room sees it now.
    fn room_entry_state(&self, room: &str, id: &str, start: Timestamp, end: Timestamp) -> String {
        if let Some(e) = self.graph.events(room).into_iter().find(|e| e["id"] == id) {
            return if e["isCancelled"] == true {
                "cancelled".to_owned()
            } else {
                "booked".to_owned()
            };
        }
        let view = self.graph.calendar_view(
            room,
            start - SignedDuration::from_hours(1),
            end + SignedDuration::from_hours(1),
        );
        match view.into_iter().find(|e| e["id"] == id) {
            Some(e) if e["isCancelled"] == true => "cancelled".to_owned(),
            Some(_) => "booked".to_owned(),
            None => "removed".to_owned(),
        }
    }
}

/// The bookings on both sides at one moment.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// One row per booking (and per unlinked item on either side).
    pub rows: Vec<SummaryRow>,
    /// TOPdesk reservations on the managed rooms, in any status.
    pub reservations: usize,
    /// Those not cancelled or rejected.
    pub active_reservations: usize,
    /// orb's booking records.
    pub bookings: usize,
}

/// One line of the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// Start and end (UTC).
    pub when: String,
    /// The room's display name.
    pub room: String,
    /// The subject orb keeps (or "(not stored)").
    pub subject: String,
    /// The organizer's address.
    pub organizer: String,
    /// The room calendar's entry: booked, cancelled or removed.
    pub outlook: String,
    /// The TOPdesk reservation: number and status.
    pub topdesk: String,
}

impl fmt::Display for Summary {
    /// A plain-text table, one booking per line, then the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = SummaryRow {
            when: "When (UTC)".to_owned(),
            room: "Room".to_owned(),
            subject: "Subject".to_owned(),
            organizer: "Organizer".to_owned(),
            outlook: "Outlook (room)".to_owned(),
            topdesk: "TOPdesk".to_owned(),
        };
        let cells = |r: &SummaryRow| {
            [
                r.when.clone(),
                r.room.clone(),
                r.subject.clone(),
                r.organizer.clone(),
                r.outlook.clone(),
                r.topdesk.clone(),
            ]
        };
        let mut widths = [0usize; 6];
        for row in std::iter::once(&header).chain(&self.rows) {
            for (w, c) in widths.iter_mut().zip(cells(row)) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, row: &SummaryRow| -> fmt::Result {
            let mut text = String::new();
            for (w, c) in widths.iter().zip(cells(row)) {
                text.push_str(&c);
                text.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
            writeln!(f, "  {}", text.trim_end())
        };
        line(f, &header)?;
        let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        writeln!(f, "  {}", "─".repeat(rule))?;
        for row in &self.rows {
            line(f, row)?;
        }
        write!(
            f,
            "  {} bookings in orb; {} TOPdesk reservations ({} active)",
            self.bookings, self.reservations, self.active_reservations
        )
    }
}

/// Reports a scenario's steps with the time since it began.
struct Narrator<'a> {
    progress: &'a mut (dyn FnMut(Progress) + Send),
    began: Instant,
}

impl Narrator<'_> {
    fn act(&mut self, text: String) {
        (self.progress)(Progress::Action(text));
    }

    fn saw(&mut self, text: String) {
        (self.progress)(Progress::Observed {
            text,
            elapsed: self.began.elapsed(),
        });
    }
}

/// Seeds the example tenants of both emulators so that they describe the same
/// organisation: TOPdesk's example rooms and people, mirrored in Exchange, plus a
/// secretary and a manager.
fn seed(graph: &GraphEmulator, topdesk: &TopdeskEmulator) -> (Vec<DemoRoom>, Vec<DemoPerson>) {
    graph.register_app(AppRegistration::with_secret(
        CLIENT_ID,
        CLIENT_SECRET,
        &[
            roles::CALENDARS_READ,
            roles::CALENDARS_READ_WRITE,
            roles::PLACE_READ_ALL,
            roles::MAIL_SEND,
        ],
    ));
    let example = topdesk.seed_example();
    let mut people = Vec::new();
    for (email, name) in [
        (FACILITIES, "Facilities desk"),
        (ALICE, "Alice Adams"),
        (BOB, "Bob Baker"),
    ] {
        if let Some((_, id)) = example.people.iter().find(|(e, _)| e == email) {
            people.push(DemoPerson {
                email: email.to_owned(),
                name: name.to_owned(),
                person_id: id.clone(),
            });
        }
    }
    for (email, first, sur) in [(CAROL, "Carol", "Clarke"), (MARTIN, "Martin", "Manager")] {
        let person_id = topdesk.add_person(PersonSeed {
            first_name: first.to_owned(),
            sur_name: sur.to_owned(),
            email: Some(email.to_owned()),
            branch_id: Some(example.branch_id.clone()),
            ..PersonSeed::default()
        });
        people.push(DemoPerson {
            email: email.to_owned(),
            name: format!("{first} {sur}"),
            person_id,
        });
    }
    for p in &people {
        graph.add_person(&p.email, &p.name);
    }
    let mut rooms = Vec::new();
    for (mailbox, name) in [
        (ROOM_2_14, "Room 2.14"),
        (ROOM_2_15, "Room 2.15"),
        (BOARD_ROOM, "Board room"),
    ] {
        let Some((_, location_id)) = example.rooms.iter().find(|(m, _)| m == mailbox) else {
            continue;
        };
        let mut seed = RoomSeed::new(mailbox, name);
        seed.options = RoomOptions {
            // Rooms orb syncs keep their subjects (Set-CalendarProcessing -DeleteSubject
            // $false -AddOrganizerToSubject $false); the board room keeps Exchange's
            // default of deleting them.
            delete_subject: mailbox == BOARD_ROOM,
            add_organizer_to_subject: false,
            ..RoomOptions::default()
        };
        graph.add_room(seed);
        rooms.push(DemoRoom {
            mailbox: mailbox.to_owned(),
            name: name.to_owned(),
            location_id: location_id.clone(),
        });
    }
    (rooms, people)
}

fn config_text(
    port: u16,
    dir: &std::path::Path,
    graph: &GraphEmulator,
    topdesk: &str,
    login: &str,
    rooms: &[DemoRoom],
) -> String {
    let mut text = format!(
        r#"
[service]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = '{dir}'

[graph]
tenant_id = "{tenant}"
client_id = "{CLIENT_ID}"
client_secret = "secret:graph-client-secret"
login_url = "{login_url}"
api_url = "{api_url}"
mail_sender = "{FACILITIES}"

[topdesk]
url = "{topdesk}"
username = "{login}"
application_password = "secret:topdesk-app-password"
poll_interval = "5s"
default_requester_email = "{FACILITIES}"
"#,
        dir = dir.display(),
        tenant = graph.tenant_id(),
        login_url = graph.login_url(),
        api_url = graph.api_url(),
    );
    for room in rooms {
        text.push_str(&format!(
            "\n[[rooms]]\nmailbox = \"{}\"\ntopdesk_location_id = \"{}\"\n",
            room.mailbox, room.location_id
        ));
    }
    text
}

/// A meeting with `room` invited as the resource and `invitees` as required attendees.
fn meeting(
    subject: &str,
    room: &DemoRoom,
    start: Timestamp,
    end: Timestamp,
    invitees: &[&str],
) -> Value {
    json!({
        "subject": subject,
        "start": graph_time(start),
        "end": graph_time(end),
        "location": location(room),
        "attendees": attendees(room, invitees),
    })
}

fn location(room: &DemoRoom) -> Value {
    json!({"displayName": room.name, "locationEmailAddress": room.mailbox})
}

fn attendees(room: &DemoRoom, invitees: &[&str]) -> Value {
    let mut list = vec![
        json!({"type": "resource", "emailAddress": {"address": room.mailbox, "name": room.name}}),
    ];
    list.extend(
        invitees
            .iter()
            .map(|a| json!({"type": "required", "emailAddress": {"address": a}})),
    );
    Value::Array(list)
}

/// Whether an event invites `room` as its resource.
fn invites(event: &Value, room: &str) -> bool {
    event["attendees"].as_array().is_some_and(|list| {
        list.iter()
            .any(|a| a["type"] == "resource" && a["emailAddress"]["address"] == room)
    })
}

/// Graph's `dateTimeTimeZone` in UTC.
fn graph_time(t: Timestamp) -> Value {
    json!({"dateTime": t.strftime("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"})
}

/// Reads a `dateTimeTimeZone` the emulator wrote (always UTC).
fn event_time(v: &Value) -> Option<Timestamp> {
    let text = v["dateTime"].as_str()?;
    let civil: jiff::civil::DateTime = text.get(..19)?.parse().ok()?;
    civil.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `days` days after `now`'s UTC date, at `hour`:00 UTC.
fn slot(now: Timestamp, days: i64, hour: i8) -> Timestamp {
    let date = now.to_zoned(TimeZone::UTC).date();
    date.checked_add(jiff::Span::new().days(days))
        .ok()
        .and_then(|d| d.at(hour, 0, 0, 0).to_zoned(TimeZone::UTC).ok())
        .map_or(now, |z| z.timestamp())
}

fn is_weekend(t: Timestamp) -> bool {
    matches!(
        t.to_zoned(TimeZone::UTC).weekday(),
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    )
}

/// "Tue 01 Dec 09:00–10:00".
fn when(start: Timestamp, end: Timestamp) -> String {
    let s = start.to_zoned(TimeZone::UTC);
    let e = end.to_zoned(TimeZone::UTC);
    if s.date() == e.date() {
        format!(
            "{} {}–{}",
            s.strftime("%a %d %b"),
            s.strftime("%H:%M"),
            e.strftime("%H:%M")
        )
    } else {
        format!(
            "{}–{}",
            s.strftime("%a %d %b %H:%M"),
            e.strftime("%a %d %b %H:%M")
        )
    }
}

fn day(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC).strftime("%a %d %b").to_string()
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// The first eight characters of a match id, enough to tell bookings apart.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_whole_hours_on_later_days() {
        let now: Timestamp = "2026-11-27T17:44:02Z".parse().unwrap();
        assert_eq!(
            slot(now, 1, 9),
            "2026-11-28T09:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(is_weekend(slot(now, 1, 9)));
        assert!(!is_weekend(slot(now, 3, 9)));
    }

    #[test]
    fn graph_times_round_trip() {
        let t: Timestamp = "2026-12-01T09:30:00Z".parse().unwrap();
        let mut v = graph_time(t);
        v["dateTime"] = Value::from("2026-12-01T09:30:00.0000000");
        assert_eq!(event_time(&v), Some(t));
        assert_eq!(
            when(t, t + SignedDuration::from_mins(30)),
            "Tue 01 Dec 09:30–10:00"
        );
    }

    #[test]
    fn the_summary_is_a_table_with_totals() {
        let summary = Summary {
            rows: vec![SummaryRow {
                when: "Tue 01 Dec 09:00–10:00".to_owned(),
                room: "Room 2.14".to_owned(),
                subject: "Quarterly planning".to_owned(),
                organizer: ALICE.to_owned(),
                outlook: "booked".to_owned(),
                topdesk: "2611 001 planned".to_owned(),
            }],
            reservations: 1,
            active_reservations: 1,
            bookings: 1,
        };
        let text = summary.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].contains("When (UTC)") && lines[0].contains("TOPdesk"));
        assert!(lines[2].contains("Quarterly planning") && lines[2].ends_with("2611 001 planned"));
        assert_eq!(
            lines[3],
            "  1 bookings in orb; 1 TOPdesk reservations (1 active)"
        );
        // Columns line up.
        let column = |line: &str, needle: &str| line[..line.find(needle).unwrap()].chars().count();
        assert_eq!(column(lines[0], "Room"), column(lines[2], "Room 2.14"));
    }
}
