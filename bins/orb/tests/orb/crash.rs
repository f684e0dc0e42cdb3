//! The crash proof: the real `orb run` is killed with SIGKILL at random moments while
//! bookings change on both sides, restarted each time on the same port and data dir,
//! and in the end both sides agree — every change reflected on the other side, no
//! booking twice on either side, and the durable inbox empty.
//!
//! Both emulators run in this process on loopback; orb is a child process with its own
//! wall clock. The kill moments and the stream of changes come from a seeded RNG; the
//! seed is printed, and `ORB_CRASH_SEED=<seed>` replays the same choices (the timing
//! of a run is the machine's, so a replay is close, not identical).
//!
//! Each booking is only ever changed on the side it was made on (Outlook bookings by
//! their organizer, TOPdesk reservations by an operator), so the expected end state is
//! exactly what the stream did. Slots never overlap and are never reused, so neither
//! TOPdesk's double-booking rule nor the room's auto-decline can refuse a write.
//!
//! How orb catches up after each restart, as designed: Graph retries a delivery to the
//! dead webhook (the emulator's budget is raised to cover a restart), the first delta
//! round after the start reads whatever was still missed, the first TOPdesk poll after
//! the start covers the whole horizon, and writes that were in flight when orb died are
//! issued again with the same idempotency key. TOPdesk reservations lie inside the hot
//! window (36 h) so that the five-second hot poll of the last run sees them as well.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use orb_emulators::graph::{
    AppRegistration, GraphEmulator, GraphEmulatorConfig, RoomOptions, RoomSeed, roles,
};
use orb_emulators::topdesk::{ReservationSnapshot, TopdeskConfig, TopdeskEmulator};
use orb_topdesk_client::{ReservationRef, ReservationUpdate, TopdeskClient};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CLIENT_ID: &str = "8b2f4c6d-1e3a-4f5b-9c7d-0a1b2c3d4e5f";
const GRAPH_SECRET: &str = "crash-proof-client-secret";
const ROOM: &str = "room-2.14@example.com";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const FACILITIES: &str = "facilities@example.com";

/// SIGKILLs during the stream (the issue asks for at least 20).
const KILLS: usize = 22;
/// How long the last run may take to make both sides agree.
const CONVERGENCE: Duration = Duration::from_secs(45);
/// Outlook bookings: half-hour slots from two days ahead (outside the hot window).
const OUTLOOK_SLOTS: i64 = 400;
/// TOPdesk reservations: twenty-minute slots from one to 33 hours ahead (inside the hot
/// window of 36 h).
const TOPDESK_SLOTS: i64 = 96;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_stream_of_changes_loses_and_duplicates_nothing() {
    let began = Instant::now();
    let seed = std::env::var("ORB_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            u64::try_from(nanos.as_nanos() % u128::from(u64::MAX)).unwrap_or(7)
        });
    eprintln!("crash proof: seed {seed} (replay with ORB_CRASH_SEED={seed})");

    let env = Env::start().await;
    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn(stream(
        Arc::clone(&env.graph),
        Arc::clone(&env.topdesk),
        env.people.clone(),
        env.location.clone(),
        Rng::new(seed ^ 0x5eed_0fc4_a05e),
        Arc::clone(&stop),
    ));

    // Kill at random moments: some during start-up (store open, state load, first
    // rounds), most while orb is busy with the stream.
    let mut rng = Rng::new(seed);
    let mut uptimes = Vec::with_capacity(KILLS);
    for run in 0..KILLS {
        let mut orb = env.spawn(run);
        if run == 0 && cfg!(all(target_os = "linux", target_env = "gnu")) {
            // `orb run` restarts itself once with the glibc malloc settings; the
            // environment of the running image shows them.
            let pid = orb.child.id();
            let mut environ = String::new();
            for _ in 0..100 {
                environ = std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                if environ.contains("MALLOC_ARENA_MAX=") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let vars: Vec<&str> = environ.split('\0').collect();
            assert!(
                vars.contains(&"MALLOC_ARENA_MAX=1")
                    && vars.contains(&"MALLOC_MMAP_THRESHOLD_=131072"),
                "orb run did not set the malloc settings"
            );
        }
        let up = if rng.below(4) == 0 {
            rng.range(30, 600)
        } else {
            rng.range(600, 2_500)
        };
        tokio::time::sleep(Duration::from_millis(up)).await;
        if let Some(status) = orb.child.try_wait().unwrap() {
            panic!(
                "seed {seed}: orb exited on its own ({status}) in run {run}\n{}",
                env.log_tail()
            );
        }
        orb.kill();
        uptimes.push(up);
        tokio::time::sleep(Duration::from_millis(rng.range(0, 400))).await;
    }
    stop.store(true, Ordering::SeqCst);
    let Stream {
        bookings,
        ops,
        refused,
    } = stream.await.unwrap();
    let stream_time = began.elapsed();
    assert!(
        refused.is_empty(),
        "seed {seed}: bookings changed behind their owners' backs:\n  {}\n{}",
        refused.join("\n  "),
        env.log_tail()
    );

    // The last run: left alone until both sides agree.
    let mut orb = env.spawn(KILLS);
    let deadline = Instant::now() + CONVERGENCE;
    loop {
        if let Some(status) = orb.child.try_wait().unwrap() {
            panic!(
                "seed {seed}: orb exited on its own ({status}) in the last run\n{}",
                env.log_tail()
            );
        }
        let mut problems = env.disagreements(&bookings);
        match health(env.port).await {
            Some(h) if h["inbox_pending"] == 0 => {}
            Some(h) => problems.push(format!("inbox_pending is {}", h["inbox_pending"])),
            None => problems.push("/healthz does not answer yet".to_owned()),
        }
        if problems.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: no agreement {CONVERGENCE:?} after the last start:\n  {}\n{}",
            problems.join("\n  "),
            env.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converged = began.elapsed();

    // A clean stop, then the store as the next start would see it.
    orb.terminate().await;
    let status = orb.child.try_wait().unwrap().expect("orb stopped");
    assert!(
        status.success(),
        "seed {seed}: orb did not stop cleanly ({status})\n{}",
        env.log_tail()
    );
    let config = orb_service::Config::load(&env.config).unwrap();
    let opened = orb_service::state::open(&config).unwrap();
    let pending = opened.store.pending_inbox().unwrap();
    assert!(
        pending.is_empty(),
        "seed {seed}: {} inbox entries left after the stop",
        pending.len()
    );
    drop(opened);
    assert!(
        env.disagreements(&bookings).is_empty(),
        "seed {seed}: the sides changed after the stop"
    );

    let count = |origin: Origin, cancelled: bool| {
        bookings
            .iter()
            .filter(|b| b.origin == origin && b.cancelled == cancelled)
            .count()
    };
    eprintln!(
        "crash proof: seed {seed}: {KILLS} kills (uptimes {uptimes:?} ms), {ops} changes: \
         {} Outlook bookings ({} cancelled), {} TOPdesk reservations ({} cancelled); \
         stream {stream_time:.1?}, converged at {converged:.1?}, total {:.1?}",
        count(Origin::Outlook, false) + count(Origin::Outlook, true),
        count(Origin::Outlook, true),
        count(Origin::Topdesk, false) + count(Origin::Topdesk, true),
        count(Origin::Topdesk, true),
        began.elapsed()
    );
}

// ---- the stream of changes ---------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Outlook,
    Topdesk,
}

/// One booking as the stream left it: what the other side must show.
#[derive(Clone, Debug)]
struct Booking {
    /// `ol-N` or `td-N`: the first word of every subject it ever had.
    key: String,
    origin: Origin,
    /// The organizer's event id (Outlook) or the reservation id (TOPdesk).
    id: String,
    /// The organizer (Outlook) or the requester (TOPdesk).
    owner: &'static str,
    subject: String,
    start: Timestamp,
    end: Timestamp,
    cancelled: bool,
}

/// Changes on both sides until `stop`, paced at random; returns the bookings and the
/// number of changes made.
async fn stream(
    graph: Arc<GraphEmulator>,
    topdesk: Arc<TopdeskEmulator>,
    people: Vec<(String, String)>,
    location: String,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) -> Stream {
    let (login, password) = topdesk.operator_credentials();
    let operator = TopdeskClient::new(
        orb_topdesk_client::Config::new(
            topdesk.base_url(),
            login,
            password,
            orb_topdesk_client::ExternalLinkType::new(4711).unwrap(),
        ),
        None,
    )
    .unwrap();
    let person = |email: &str| {
        people
            .iter()
            .find(|(e, _)| e == email)
            .map(|(_, id)| id.clone())
            .unwrap()
    };
    let hour = whole_hour(Timestamp::now());
    let outlook_base = hour + SignedDuration::from_hours(48);
    let topdesk_base = hour + SignedDuration::from_hours(1);
    let (mut outlook_slot, mut topdesk_slot) = (0i64, 0i64);
    let mut bookings: Vec<Booking> = Vec::new();
    let mut ops = 0usize;
    // A change the user or operator could not make: someone else (orb) removed or
    // stopped the booking.
    let mut refused: Vec<String> = Vec::new();

    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(rng.range(80, 350))).await;
        let roll = rng.below(100);
        let pick = |rng: &mut Rng, bookings: &[Booking], origin: Origin| {
            let live: Vec<usize> = (0..bookings.len())
                .filter(|&i| bookings[i].origin == origin && !bookings[i].cancelled)
                .collect();
            (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize])
        };
        let topdesk_full = topdesk_slot >= TOPDESK_SLOTS;
        match roll {
            // Alice books the room in Outlook.
            0..28 if outlook_slot < OUTLOOK_SLOTS => {
                let start = outlook_base + SignedDuration::from_mins(30 * outlook_slot);
                outlook_slot += 1;
                let key = format!("ol-{}", bookings.len());
                let end = start + SignedDuration::from_mins(20);
                let id = graph
                    .create_event_as(ALICE, meeting(&key, start, end))
                    .unwrap();
                bookings.push(Booking {
                    key: key.clone(),
                    origin: Origin::Outlook,
                    id,
                    owner: ALICE,
                    subject: key,
                    start,
                    end,
                    cancelled: false,
                });
            }
            // She moves one to another time.
            28..42 if outlook_slot < OUTLOOK_SLOTS => {
                let Some(i) = pick(&mut rng, &bookings, Origin::Outlook) else {
                    continue;
                };
                let start = outlook_base + SignedDuration::from_mins(30 * outlook_slot);
                outlook_slot += 1;
                let b = &mut bookings[i];
                b.start = start;
                b.end = start + SignedDuration::from_mins(20);
                if let Err(e) = graph.update_event_as(
                    ALICE,
                    &b.id,
                    json!({
                        "start": {"dateTime": local(b.start), "timeZone": "UTC"},
                        "end": {"dateTime": local(b.end), "timeZone": "UTC"},
                    }),
                ) {
                    refused.push(format!("{}: Alice cannot move it: {e:?}", b.key));
                }
            }
            // ... renames one ...
            42..50 => {
                let Some(i) = pick(&mut rng, &bookings, Origin::Outlook) else {
                    continue;
                };
                let b = &mut bookings[i];
                b.subject = format!("{} rev {ops}", b.key);
                if let Err(e) = graph.update_event_as(ALICE, &b.id, json!({"subject": b.subject})) {
                    refused.push(format!("{}: Alice cannot rename it: {e:?}", b.key));
                }
            }
            // ... or cancels it.
            50..56 => {
                let Some(i) = pick(&mut rng, &bookings, Origin::Outlook) else {
                    continue;
                };
                let b = &mut bookings[i];
                b.cancelled = true;
                if let Err(e) = graph.cancel_event_as(ALICE, &b.id) {
                    refused.push(format!("{}: Alice cannot cancel it: {e:?}", b.key));
                }
            }
            // An operator books the room in TOPdesk for Alice or Bob.
            56..80 if !topdesk_full => {
                let start = topdesk_base + SignedDuration::from_mins(20 * topdesk_slot);
                topdesk_slot += 1;
                let end = start + SignedDuration::from_mins(15);
                let key = format!("td-{}", bookings.len());
                let owner = if rng.below(2) == 0 { ALICE } else { BOB };
                let id = topdesk
                    .create_reservation(json!({
                        "requester": {"id": person(owner)},
                        "briefDescription": key,
                        "plannedStartDate": utc(start),
                        "plannedEndDate": utc(end),
                        "reservedFacilities": [{"location": {"id": location}}],
                    }))
                    .unwrap();
                bookings.push(Booking {
                    key: key.clone(),
                    origin: Origin::Topdesk,
                    id,
                    owner,
                    subject: key,
                    start,
                    end,
                    cancelled: false,
                });
            }
            // ... moves one ...
            80..90 if !topdesk_full => {
                let Some(i) = pick(&mut rng, &bookings, Origin::Topdesk) else {
                    continue;
                };
                let start = topdesk_base + SignedDuration::from_mins(20 * topdesk_slot);
                topdesk_slot += 1;
                let b = &mut bookings[i];
                b.start = start;
                b.end = start + SignedDuration::from_mins(15);
                if let Err(e) = operator
                    .reschedule(&ReservationRef::Id(b.id.as_str().into()), b.start, b.end)
                    .await
                {
                    refused.push(format!("{}: the operator cannot move it: {e}", b.key));
                }
            }
            // ... renames one ...
            90..95 => {
                let Some(i) = pick(&mut rng, &bookings, Origin::Topdesk) else {
                    continue;
                };
                let b = &mut bookings[i];
                b.subject = format!("{} rev {ops}", b.key);
                if let Err(e) = operator
                    .update_reservation(
                        &ReservationRef::Id(b.id.as_str().into()),
                        &ReservationUpdate {
                            brief_description: Some(b.subject.clone()),
                            ..ReservationUpdate::default()
                        },
                    )
                    .await
                {
                    refused.push(format!("{}: the operator cannot rename it: {e}", b.key));
                }
            }
            // ... or cancels it.
            95..100 => {
                let Some(i) = pick(&mut rng, &bookings, Origin::Topdesk) else {
                    continue;
                };
                let b = &mut bookings[i];
                b.cancelled = true;
                if let Err(e) = operator
                    .cancel_reservation(&ReservationRef::Id(b.id.as_str().into()))
                    .await
                {
                    refused.push(format!("{}: the operator cannot cancel it: {e}", b.key));
                }
            }
            _ => continue,
        }
        ops += 1;
    }
    Stream {
        bookings,
        ops,
        refused,
    }
}

/// What the stream did.
struct Stream {
    bookings: Vec<Booking>,
    ops: usize,
    refused: Vec<String>,
}

// ---- the environment ---------------------------------------------------------------------

struct Env {
    graph: Arc<GraphEmulator>,
    topdesk: Arc<TopdeskEmulator>,
    /// `(e-mail, TOPdesk person id)`.
    people: Vec<(String, String)>,
    /// The room's TOPdesk location id.
    location: String,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    topdesk_password: String,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Self {
        let graph = Arc::new(
            GraphEmulator::start(GraphEmulatorConfig {
                // Graph retries a dead webhook for hours; here long enough to outlast a
                // restart (50 ms doubling six times: about 3 s). What still gets lost is
                // read by the delta round at the next start.
                delivery_retries: 6,
                delivery_retry_delay: Duration::from_millis(50),
                delivery_timeout: Duration::from_secs(5),
                ..GraphEmulatorConfig::default()
            })
            .await
            .unwrap(),
        );
        graph.register_app(AppRegistration::with_secret(
            CLIENT_ID,
            GRAPH_SECRET,
            &[
                roles::CALENDARS_READ,
                roles::CALENDARS_READ_WRITE,
                roles::PLACE_READ_ALL,
            ],
        ));
        for (email, name) in [
            (ALICE, "Alice Adams"),
            (BOB, "Bob Baker"),
            (FACILITIES, "Facilities"),
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

        let topdesk = Arc::new(
            TopdeskEmulator::start(TopdeskConfig::default())
                .await
                .unwrap(),
        );
        // The log of every exchange would only grow.
        topdesk.set_recording(false);
        let seed = topdesk.seed_example();
        let location = seed
            .rooms
            .iter()
            .find(|(mailbox, _)| mailbox == ROOM)
            .unwrap()
            .1
            .clone();
        let (login, topdesk_password) = topdesk.operator_credentials();

        // A free port, the same for every run (Graph's subscription points at it).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("orb.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[service]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "{data}"

[graph]
tenant_id = "{tenant}"
client_id = "{CLIENT_ID}"
client_secret = "env:ORB_CRASH_GRAPH_SECRET"
login_url = "{login_url}"
api_url = "{api}"

[topdesk]
url = "{url}"
username = "{login}"
application_password = "env:ORB_CRASH_TOPDESK_PASSWORD"
poll_interval = "5s"
default_requester_email = "{FACILITIES}"

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
        Self {
            graph,
            topdesk,
            people: seed.people,
            location,
            port,
            config,
            log: dir.path().join("orb.log"),
            topdesk_password,
            _dir: dir,
        }
    }

    /// Starts `orb run`; its stderr is appended to the log.
    fn spawn(&self, run: usize) -> Orb {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        writeln!(log, "==== run {run} ====").unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_orb"))
            .args(["run", "--config"])
            .arg(&self.config)
            // `ORB_CRASH_LOG=debug` shows every plan.
            .env(
                "ORB_LOG",
                std::env::var("ORB_CRASH_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .env_remove("ORB_LOG_FORMAT")
            // orb's own malloc settings (see `bins/orb/src/malloc.rs`), not the caller's.
            .env_remove("MALLOC_ARENA_MAX")
            .env_remove("MALLOC_MMAP_THRESHOLD_")
            .env_remove("ORB_MALLOC_TUNING")
            .env("ORB_CRASH_GRAPH_SECRET", GRAPH_SECRET)
            .env("ORB_CRASH_TOPDESK_PASSWORD", &self.topdesk_password)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Orb { child }
    }

    /// The end of orb's log, for failure messages; the whole log is kept beside the
    /// temporary directory's parent as `orb-crash-<port>.log`.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let kept = std::env::temp_dir().join(format!("orb-crash-{}.log", self.port));
        let _ = std::fs::write(&kept, &text);
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "---- orb's log (last 60 lines; all of it in {}) ----\n{}",
            kept.display(),
            lines[lines.len().saturating_sub(60)..].join("\n")
        )
    }

    /// Everything on either side that differs from what the stream did.
    fn disagreements(&self, bookings: &[Booking]) -> Vec<String> {
        let mut problems = Vec::new();
        let expected: BTreeMap<&str, &Booking> =
            bookings.iter().map(|b| (b.key.as_str(), b)).collect();
        let alice = person_id(&self.people, ALICE);

        // TOPdesk: one reservation per booking, live exactly when the booking is.
        let mut reservations: BTreeMap<String, Vec<ReservationSnapshot>> = BTreeMap::new();
        for r in self.topdesk.reservations() {
            if r.location_ids.contains(&self.location) {
                reservations
                    .entry(key(&r.brief_description).to_owned())
                    .or_default()
                    .push(r);
            }
        }
        for (k, rs) in &reservations {
            let Some(b) = expected.get(k.as_str()) else {
                let rs: Vec<&str> = rs.iter().map(|r| r.brief_description.as_str()).collect();
                problems.push(format!("TOPdesk has reservations no one made: {rs:?}"));
                continue;
            };
            if rs.len() > 1 {
                problems.push(format!("{k}: {} reservations in TOPdesk", rs.len()));
            }
            let live: Vec<_> = rs.iter().filter(|r| live_reservation(r)).collect();
            match (b.cancelled, live.as_slice()) {
                (true, []) | (false, [_]) => {}
                (true, _) => problems.push(format!("{k}: cancelled, still live in TOPdesk")),
                (false, _) => problems.push(format!("{k}: {} live reservations", live.len())),
            }
            if let (false, [r]) = (b.cancelled, live.as_slice())
                && (r.start != b.start || r.end != b.end || r.brief_description != b.subject)
            {
                problems.push(format!(
                    "{k}: TOPdesk shows {:?} {}–{}, wanted {:?} {}–{}",
                    r.brief_description, r.start, r.end, b.subject, b.start, b.end
                ));
            }
            if b.origin == Origin::Outlook && live.iter().any(|r| r.requester_id != alice) {
                problems.push(format!("{k}: requester is not the organizer"));
            }
        }
        for b in bookings {
            if !b.cancelled && !reservations.contains_key(&b.key) {
                problems.push(format!("{}: no reservation in TOPdesk", b.key));
            }
        }

        // Exchange: the room's calendar holds one copy per booking, accepted and in
        // place exactly when the booking is live.
        let mut copies: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for e in self.graph.events(ROOM) {
            copies
                .entry(key(e["subject"].as_str().unwrap_or_default()).to_owned())
                .or_default()
                .push(e);
        }
        for (k, es) in &copies {
            let Some(b) = expected.get(k.as_str()) else {
                let es: Vec<String> = es.iter().map(brief).collect();
                problems.push(format!("the room has events no one made: {es:?}"));
                continue;
            };
            if es.len() > 1 {
                problems.push(format!("{k}: {} copies in the room's calendar", es.len()));
            }
            let live: Vec<_> = es.iter().filter(|e| e["isCancelled"] != true).collect();
            match (b.cancelled, live.as_slice()) {
                (true, []) => {}
                (false, [e]) => {
                    if let Some(p) = differs(e, b) {
                        problems.push(format!("{k}: the room's copy {p}"));
                    }
                }
                (true, _) => problems.push(format!("{k}: cancelled, the room still has it")),
                (false, _) => problems.push(format!("{k}: {} live room copies", live.len())),
            }
        }
        for b in bookings {
            if !b.cancelled && !copies.contains_key(&b.key) {
                problems.push(format!("{}: not in the room's calendar", b.key));
            }
        }

        // The organizers' calendars: exactly one event per live booking, in its owner's
        // calendar (the requester's, for TOPdesk bookings); none anywhere else.
        let mut organized: BTreeMap<String, Vec<(&str, Value)>> = BTreeMap::new();
        for mailbox in [ALICE, BOB, FACILITIES] {
            for e in self.graph.events(mailbox) {
                if e["isOrganizer"] == true {
                    organized
                        .entry(key(e["subject"].as_str().unwrap_or_default()).to_owned())
                        .or_default()
                        .push((mailbox, e));
                }
            }
        }
        for (k, es) in &organized {
            let Some(b) = expected.get(k.as_str()) else {
                let es: Vec<String> = es
                    .iter()
                    .map(|(m, e)| format!("{m}: {}", brief(e)))
                    .collect();
                problems.push(format!("events no one made: {es:?}"));
                continue;
            };
            if es.len() > 1 {
                let owners: Vec<&str> = es.iter().map(|(m, _)| *m).collect();
                problems.push(format!("{k}: {} organizer events ({owners:?})", es.len()));
            }
            let live: Vec<_> = es
                .iter()
                .filter(|(_, e)| e["isCancelled"] != true)
                .collect();
            match (b.cancelled, live.as_slice()) {
                (true, []) => {}
                (false, [(mailbox, e)]) => {
                    if *mailbox != b.owner {
                        problems.push(format!("{k}: in {mailbox}'s calendar, not {}", b.owner));
                    }
                    if let Some(p) = differs(e, b) {
                        problems.push(format!("{k}: the organizer's event {p}"));
                    }
                }
                (true, _) => problems.push(format!("{k}: cancelled, the event is still live")),
                (false, _) => problems.push(format!("{k}: {} live events", live.len())),
            }
        }
        for b in bookings {
            if !b.cancelled && !organized.contains_key(&b.key) {
                problems.push(format!("{}: no event in {}'s calendar", b.key, b.owner));
            }
        }
        problems
    }
}

/// A running `orb run`; killed if the test ends early.
struct Orb {
    child: Child,
}

impl Orb {
    /// SIGKILL, and reap.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    async fn terminate(&mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "orb ignored SIGTERM for 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Orb {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- helpers -----------------------------------------------------------------------------

/// `GET /healthz`, or `None` while orb does not answer.
async fn health(port: u16) -> Option<Value> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200")
            .then(|| serde_json::from_str(body).ok())
            .flatten()
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// The booking key: the subject's first word (after the prefix Exchange gives the
/// room's cancelled copies).
fn key(subject: &str) -> &str {
    let subject = subject.strip_prefix("Canceled: ").unwrap_or(subject);
    subject.split_whitespace().next().unwrap_or_default()
}

/// An event in a failure message.
fn brief(e: &Value) -> String {
    format!(
        "{} {}–{} cancelled={} id={}",
        e["subject"], e["start"]["dateTime"], e["end"]["dateTime"], e["isCancelled"], e["id"]
    )
}

fn live_reservation(r: &ReservationSnapshot) -> bool {
    !r.archived && !matches!(r.status.as_str(), "cancelled" | "rejectedRequest")
}

/// How a Graph event differs from the booking, if it does.
fn differs(e: &Value, b: &Booking) -> Option<String> {
    let at = |side: &str| {
        e[side]["dateTime"]
            .as_str()
            .and_then(|t| format!("{t}Z").parse::<Timestamp>().ok())
    };
    let subject = e["subject"].as_str().unwrap_or_default();
    (at("start") != Some(b.start) || at("end") != Some(b.end) || subject != b.subject).then(|| {
        format!(
            "shows {subject:?} {}–{}, wanted {:?} {}–{}",
            e["start"]["dateTime"], e["end"]["dateTime"], b.subject, b.start, b.end
        )
    })
}

fn person_id(people: &[(String, String)], email: &str) -> String {
    people
        .iter()
        .find(|(e, _)| e == email)
        .map(|(_, id)| id.clone())
        .unwrap()
}

/// A meeting in Alice's calendar with the room and Bob invited.
fn meeting(subject: &str, start: Timestamp, end: Timestamp) -> Value {
    json!({
        "subject": subject,
        "start": {"dateTime": local(start), "timeZone": "UTC"},
        "end": {"dateTime": local(end), "timeZone": "UTC"},
        "location": {"displayName": "Room 2.14", "locationEmailAddress": ROOM},
        "attendees": [
            {"type": "resource", "emailAddress": {"address": ROOM, "name": "Room 2.14"}},
            {"type": "required", "emailAddress": {"address": BOB, "name": "Bob Baker"}},
        ],
    })
}

fn whole_hour(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second() - t.as_second().rem_euclid(3600)).unwrap()
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn local(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// SplitMix64: small, seedable, good enough to pick moments and changes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
}
