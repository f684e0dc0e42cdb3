//! The webhook load proof (issue 8): the real `orb run` binary under a stream of sealed
//! rich notifications at fixed rates, on loopback.
//!
//! usage: load-webhook [--orb PATH] [--seconds N] [--rates 100,500,1000] [--events N]
//!                     [--drain-seconds N]
//!
//! What it does, in order:
//!
//! 1. starts the Graph and TOPdesk emulators in this process (127.0.0.1), registers orb's
//!    app, seeds the people and one room, and creates `--events` meetings (Alice
//!    organizes, the room is invited, one hour each, back to back) before orb starts;
//! 2. prepares orb's data dir the way an operator would (`orb secrets set`, `orb certs
//!    rotate`, through the same library calls), writes an `orb.toml` and starts
//!    `orb run --config …` as a subprocess; waits until its subscription is active and
//!    every meeting is a TOPdesk reservation (orb's start-up delta round);
//! 3. creates one more meeting and lets the emulator deliver its notification for real,
//!    to take from it an emulator-signed `validationTokens` entry (valid for an hour; the
//!    emulator has no API that signs one on demand) and the room's object id; from then
//!    on the emulator's own deliveries are switched off (`Fault::DropNotifications`), so
//!    that orb hears only this tool;
//! 4. per rate, for `--seconds`: open loop on a precomputed schedule, POSTs of 1–10
//!    items (uniform, a fixed seed) so that items arrive at the rate on average. Each
//!    item first changes a meeting's subject in the emulator (as Alice would in
//!    Outlook), then reads the room's copy back from the emulator (`calendar_view`),
//!    keeps the subscription's `$select`ed properties and seals them with the
//!    subscription's certificate, exactly as the emulator's `notify.rs` builds a rich
//!    notification (subscription id, `clientState`, tenant, resource, `resourceData`).
//!    Every POST runs in its own task; its ack latency is measured client-side, from
//!    just before the request to the response head.
//! 5. after the schedule: waits for the acks, then for orb's inbox to drain
//!    (`/healthz`), then for every meeting's latest subject to be in TOPdesk; reads
//!    `/metrics` and `VmHWM` of the orb process.
//!
//! A rate is *items* (notifications) per second, as Graph counts them; a POST is one
//! notification collection. The time to the TOPdesk write of an item is TOPdesk's
//! `modificationDate` of the first reservation state that shows that version of the
//! subject or a later one, minus the moment the item's POST was sent; TOPdesk is
//! polled every 10 ms, so an item overtaken by a later version of the same meeting
//! within one poll is attributed the later write (an over-estimate of at most ~10 ms).
//!
//! Everything stays on loopback, is bounded in count and time and stops by itself;
//! the orb process is stopped with SIGTERM (SIGKILL after 20 s).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool that prints its report"
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use orb_emulators::graph::{
    AppRegistration, DeliveryKind, Fault, GraphEmulator, GraphEmulatorConfig, RoomOptions,
    RoomSeed, roles,
};
use orb_emulators::topdesk::{TopdeskConfig, TopdeskEmulator};
use orb_notification_crypto::{Certificate, GenerateOptions, seal};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `(meeting, version)` of each item of a POST.
type Items = Vec<(usize, u64)>;

/// Per meeting, the `(version, modificationDate)` states TOPdesk showed, in order.
type Seen = Arc<Mutex<Vec<Vec<(u64, Timestamp)>>>>;

const CLIENT_ID: &str = "3f1c2b7a-0d4e-4a6b-9c8d-7e6f5a4b3c2d";
const SECRET: &str = "load-client-secret";
const ROOM: &str = "room-2.14@example.com";
const ALICE: &str = "alice@example.com";
/// How often TOPdesk's reservations are read while a phase runs.
const TOPDESK_POLL: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("load-webhook: {e}");
            eprintln!("{}", Args::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load-webhook: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // The POSTs run on a runtime of their own (one thread): the emulators and the
    // TOPdesk watcher on the main runtime must not delay a POST or the reading of its
    // answer, or their queueing would be counted as orb's ack latency.
    let poster = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("load-webhook-poster")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load-webhook: cannot start the poster runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args, poster.handle().clone())) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load-webhook: {e}");
            ExitCode::from(1)
        }
    }
}

/// Command-line options.
#[derive(Debug)]
struct Args {
    /// The `orb` binary to run.
    orb: PathBuf,
    /// Length of each phase.
    seconds: u64,
    /// Items per second, one phase each.
    rates: Vec<u32>,
    /// Meetings that notifications describe (round robin).
    events: usize,
    /// How long to wait for the inbox to drain and TOPdesk to converge after a phase.
    drain: Duration,
    /// Print this many slowest POSTs of each phase (with their send time) to stderr.
    slowest: usize,
    /// Copy orb's log here at the end.
    keep_log: Option<PathBuf>,
}

impl Args {
    const USAGE: &str = "usage: load-webhook [--orb PATH] [--seconds N] [--rates 100,500,1000] [--events N] [--drain-seconds N] [--slowest N] [--keep-log PATH]";

    fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, BoxError> {
        let mut args = Args {
            orb: PathBuf::from("target/release/orb"),
            seconds: 30,
            rates: vec![100, 500, 1000],
            events: 300,
            drain: Duration::from_secs(180),
            slowest: 0,
            keep_log: None,
        };
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--orb" => args.orb = PathBuf::from(value()?),
                "--seconds" => args.seconds = value()?.parse()?,
                "--rates" => {
                    args.rates = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?;
                }
                "--events" => args.events = value()?.parse()?,
                "--drain-seconds" => args.drain = Duration::from_secs(value()?.parse()?),
                "--slowest" => args.slowest = value()?.parse()?,
                "--keep-log" => args.keep_log = Some(PathBuf::from(value()?)),
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        if args.seconds == 0 || args.events < 10 || args.rates.contains(&0) {
            return Err("--seconds and rates must be positive, --events at least 10".into());
        }
        Ok(args)
    }
}

async fn run(args: Args, poster: tokio::runtime::Handle) -> Result<String, BoxError> {
    // reqwest is built without a bundled TLS provider; plain http needs none, but the
    // builder wants one installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let started = Instant::now();
    let world = World::start(&args, poster).await?;
    eprintln!(
        "load-webhook: ready after {:.1} s (orb pid {}, {} meetings in TOPdesk)",
        started.elapsed().as_secs_f64(),
        world.orb_pid,
        args.events
    );
    let (baseline_hwm, baseline_rss) = memory(world.orb_pid)?;
    let mut results = Vec::new();
    let mut generator = Generator::new(&world, args.events);
    for &rate in &args.rates {
        let result = phase(&world, &mut generator, rate, &args).await;
        match result {
            Ok(r) => {
                eprintln!("load-webhook: {}", r.row());
                results.push(r);
            }
            Err(e) => {
                eprintln!("load-webhook: phase {rate}/s failed: {e}");
                break;
            }
        }
    }
    let stopped = world.stop(args.keep_log.as_deref());
    let mut out = String::new();
    out.push_str(&table(&results));
    out.push_str(&format!(
        "\norb's RSS once ready ({} meetings synced, before any load): {:.1} MB (peak {:.1} MB)\n",
        args.events,
        baseline_rss as f64 / 1024.0,
        baseline_hwm as f64 / 1024.0
    ));
    out.push_str(&format!(
        "orb stopped cleanly: {}; machine: {} cores, load average at the end {}\n",
        match &stopped {
            Ok(s) => s.clone(),
            Err(e) => format!("no ({e})"),
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    ));
    if results.len() != args.rates.len() {
        return Err(format!("not every phase completed\n{out}").into());
    }
    Ok(out)
}

/// Both emulators, the orb process and what is needed to notify it.
struct World {
    graph: Arc<GraphEmulator>,
    topdesk: Arc<TopdeskEmulator>,
    location: String,
    orb: Mutex<Child>,
    orb_pid: u32,
    /// `http://127.0.0.1:PORT`.
    base: String,
    http: reqwest::Client,
    /// The runtime the POSTs run on, and their own client (so that its connections
    /// live on that runtime too).
    poster: tokio::runtime::Handle,
    post_http: reqwest::Client,
    /// The subscription as the emulator's inspection API shows it.
    subscription: Value,
    /// orb's current notification-encryption certificate and its id.
    certificate: (Certificate, String),
    /// An emulator-signed `validationTokens` entry.
    token: String,
    /// `Users/{room object id}/Events/`.
    resource_prefix: String,
    /// Per meeting: Alice's event id and its start.
    meetings: Vec<(String, Timestamp)>,
    /// Holds `orb.toml`, orb's data dir and its log; removed on drop.
    dir: tempfile::TempDir,
}

impl World {
    async fn start(args: &Args, poster: tokio::runtime::Handle) -> Result<Self, BoxError> {
        let graph = Arc::new(GraphEmulator::start(GraphEmulatorConfig::default()).await?);
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
            ("facilities@example.com", "Facilities"),
        ] {
            graph.add_person(email, name);
        }
        let mut room = RoomSeed::new(ROOM, "Room 2.14");
        // Subjects reach the room's copy unchanged, so they can carry a version.
        room.options = RoomOptions {
            delete_subject: false,
            add_organizer_to_subject: false,
            ..RoomOptions::default()
        };
        graph.add_room(room);
        let topdesk = Arc::new(TopdeskEmulator::start(TopdeskConfig::default()).await?);
        let seed = topdesk.seed_example();
        let location = seed
            .rooms
            .iter()
            .find(|(mailbox, _)| mailbox == ROOM)
            .map(|(_, id)| id.clone())
            .ok_or("the TOPdesk seed has no Room 2.14")?;
        let (login, password) = topdesk.operator_credentials();

        // The meetings, before orb starts: its start-up delta round finds them.
        let first = next_hour(Timestamp::now() + SignedDuration::from_hours(24));
        let mut meetings = Vec::with_capacity(args.events);
        for i in 0..args.events {
            let start = first + SignedDuration::from_hours(i as i64);
            let id = graph
                .create_event_as(ALICE, meeting(&subject(i, 0), start))
                .map_err(|e| format!("creating meeting {i}: {e:?}"))?;
            meetings.push((id, start));
        }

        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let text = format!(
            r#"[service]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "{data}"

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
poll_interval = "5s"
default_requester_email = "facilities@example.com"

[[rooms]]
mailbox = "{ROOM}"
topdesk_location_id = "{location}"
"#,
            data = dir.path().join("data").display(),
            tenant = graph.tenant_id(),
            login_url = graph.login_url(),
            api = graph.api_url(),
            topdesk = topdesk.base_url(),
        );
        let config_path = dir.path().join("orb.toml");
        std::fs::write(&config_path, &text)?;
        let certificate = prepare_data_dir(&text, &password)?;

        let log = std::fs::File::create(dir.path().join("orb.log"))?;
        let child = Command::new(&args.orb)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", args.orb.display()))?;
        let orb_pid = child.id();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut world = World {
            graph,
            topdesk,
            location,
            orb: Mutex::new(child),
            orb_pid,
            base,
            http,
            poster,
            post_http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            subscription: Value::Null,
            certificate,
            token: String::new(),
            resource_prefix: String::new(),
            meetings,
            dir,
        };
        world.wait_ready(args).await?;
        Ok(world)
    }

    /// Waits for the subscription and the reservations, then takes a real delivery's
    /// validation token and switches the emulator's own deliveries off.
    async fn wait_ready(&mut self, args: &Args) -> Result<(), BoxError> {
        let graph = Arc::clone(&self.graph);
        self.subscription = wait_for("orb's subscription", Duration::from_secs(60), || {
            self.check_alive()?;
            Ok(graph.subscriptions().into_iter().next())
        })
        .await?;
        let cert_id = self.subscription["encryptionCertificateId"].as_str();
        if cert_id != Some(self.certificate.1.as_str()) {
            return Err(format!(
                "the subscription uses certificate {cert_id:?}, not the prepared {}",
                self.certificate.1
            )
            .into());
        }
        wait_for(
            "every meeting as a TOPdesk reservation",
            Duration::from_secs(300),
            || {
                self.check_alive()?;
                let n = self
                    .room_reservations()
                    .iter()
                    .filter(|s| s.is_some())
                    .count();
                Ok((n >= args.events).then_some(()))
            },
        )
        .await?;

        // One real notification from the emulator, for its signed token.
        let probe_start =
            self.meetings[args.events - 1].1 + SignedDuration::from_hours(args.events as i64);
        self.graph
            .create_event_as(ALICE, meeting("Load probe", probe_start))
            .map_err(|e| format!("creating the probe meeting: {e:?}"))?;
        self.graph.flush_notifications().await;
        let delivery = self
            .graph
            .deliveries()
            .into_iter()
            .rev()
            .find(|d| d.kind == DeliveryKind::Change && d.status == Some(202))
            .ok_or("the emulator delivered no change notification that orb acknowledged")?;
        let body: Value = serde_json::from_slice(&delivery.body)?;
        self.token = body["validationTokens"][0]
            .as_str()
            .ok_or("the delivered notification has no validationTokens")?
            .to_owned();
        let resource = body["value"][0]["resource"]
            .as_str()
            .ok_or("the delivered notification has no resource")?;
        let cut = resource
            .rfind("/Events/")
            .ok_or("unexpected resource path")?;
        self.resource_prefix = resource[..cut + "/Events/".len()].to_owned();
        // From now on orb hears only this tool (no `missed` follows while the count lasts).
        self.graph
            .inject(Fault::DropNotifications { times: 1 << 40 });
        let topdesk = Arc::clone(&self.topdesk);
        let location = self.location.clone();
        wait_for(
            "the probe meeting in TOPdesk",
            Duration::from_secs(60),
            || {
                Ok(topdesk
                    .reservations()
                    .iter()
                    .any(|r| {
                        r.location_ids.contains(&location) && r.brief_description == "Load probe"
                    })
                    .then_some(()))
            },
        )
        .await?;
        self.wait_drained(Duration::from_secs(60)).await?;
        Ok(())
    }

    /// Per reservation on the room: `(meeting, version)` when the subject is one of ours.
    fn room_reservations(&self) -> Vec<Option<(usize, u64)>> {
        self.topdesk
            .reservations()
            .into_iter()
            .filter(|r| r.location_ids.contains(&self.location))
            .map(|r| parse_subject(&r.brief_description))
            .collect()
    }

    fn check_alive(&self) -> Result<(), BoxError> {
        let mut child = self.orb.lock().map_err(|_| "orb handle poisoned")?;
        match child.try_wait()? {
            Some(status) => Err(format!("orb exited: {status} (see its log)").into()),
            None => Ok(()),
        }
    }

    /// `/healthz`'s `inbox_pending`.
    async fn inbox_pending(&self) -> Result<u64, BoxError> {
        let health: Value = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await?
            .json()
            .await?;
        health["inbox_pending"]
            .as_u64()
            .ok_or_else(|| "no inbox_pending in /healthz".into())
    }

    /// Polls `/healthz` until the inbox is empty; returns when that was seen.
    async fn wait_drained(&self, limit: Duration) -> Result<Instant, BoxError> {
        let deadline = Instant::now() + limit;
        loop {
            self.check_alive()?;
            if self.inbox_pending().await? == 0 {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                return Err("the inbox did not drain in time".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `/metrics` as name (with labels) → value.
    async fn metrics(&self) -> Result<HashMap<String, f64>, BoxError> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect())
    }

    /// SIGTERM, then waits up to 20 s (SIGKILL after that). Describes how orb ended.
    fn stop(self, keep_log: Option<&std::path::Path>) -> Result<String, BoxError> {
        let outcome = self.stop_orb();
        if let Some(to) = keep_log {
            std::fs::copy(self.dir.path().join("orb.log"), to)?;
        }
        outcome
    }

    fn stop_orb(&self) -> Result<String, BoxError> {
        let mut child = self.orb.lock().map_err(|_| "orb handle poisoned")?;
        // std has no SIGTERM and unsafe code is forbidden: ask kill(1).
        Command::new("kill")
            .arg("-TERM")
            .arg(self.orb_pid.to_string())
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(format!("{status}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill()?;
        Ok("no (SIGKILL after 20 s)".into())
    }
}

/// What the daemon would do on first use: the master key, both secrets and the first
/// notification-encryption certificate (as `orb secrets set` and `orb certs rotate`).
/// Returns the certificate orb will subscribe with.
fn prepare_data_dir(
    config_text: &str,
    topdesk_password: &str,
) -> Result<(Certificate, String), BoxError> {
    let config = orb_service::Config::from_toml_str(config_text)?;
    let opened = orb_service::state::open(&config)?;
    let store = opened.store;
    orb_service::state::set_secret(&store, "graph-client-secret", SECRET.as_bytes())?;
    orb_service::state::set_secret(&store, "topdesk-app-password", topdesk_password.as_bytes())?;
    let id = orb_service::state::rotate(&store, &GenerateOptions::default(), Timestamp::now())?;
    let ring = orb_service::state::load_ring(&store)?;
    let (current, certificate) = ring
        .current(std::time::SystemTime::now())
        .ok_or("no current certificate after rotation")?;
    if current != id {
        return Err("the rotated certificate is not current".into());
    }
    Ok((certificate.clone(), id))
    // The store is dropped here, releasing its lock before orb opens it.
}

/// Builds notification items: changes a meeting in the emulator, then seals the room's
/// copy as Graph would.
struct Generator {
    /// Next meeting, round robin.
    next: usize,
    /// Per meeting, the latest version posted.
    versions: Vec<u64>,
    /// The subscription's `$select`.
    select: Vec<String>,
    /// Seed of the batch sizes (xorshift64).
    rng: u64,
}

impl Generator {
    fn new(world: &World, events: usize) -> Self {
        let resource = world.subscription["resource"].as_str().unwrap_or_default();
        let select = resource
            .split_once("$select=")
            .map(|(_, s)| s.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        Self {
            next: 0,
            versions: vec![0; events],
            select,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// A batch size, uniform in 1..=10.
    fn batch_size(&mut self) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 10) as usize + 1
    }

    /// One POST body of `n` items; returns it with `(meeting, version)` per item.
    fn body(&mut self, world: &World, n: usize) -> Result<(Vec<u8>, Items), BoxError> {
        let sub = &world.subscription;
        let mut items = Vec::with_capacity(n);
        let mut value = Vec::with_capacity(n);
        for _ in 0..n {
            let m = self.next;
            self.next = (self.next + 1) % self.versions.len();
            self.versions[m] += 1;
            let version = self.versions[m];
            let (organizer_id, start) = &world.meetings[m];
            world
                .graph
                .update_event_as(ALICE, organizer_id, json!({"subject": subject(m, version)}))
                .map_err(|e| format!("updating meeting {m}: {e:?}"))?;
            // The room's copy, as the emulator renders it (a narrow window inside the
            // meeting, which is the only one overlapping it).
            let probe = *start + SignedDuration::from_mins(10);
            let copy = world
                .graph
                .calendar_view(ROOM, probe, probe + SignedDuration::from_mins(1))
                .into_iter()
                .next()
                .ok_or_else(|| format!("meeting {m} has no copy in the room"))?;
            let id = copy["id"].as_str().unwrap_or_default().to_owned();
            let resource = format!("{}{id}", world.resource_prefix);
            let mut selected = serde_json::Map::new();
            for key in ["@odata.etag", "id"] {
                selected.insert(key.to_owned(), copy[key].clone());
            }
            selected.insert("@odata.type".into(), json!("#Microsoft.Graph.Event"));
            selected.insert("@odata.id".into(), json!(resource));
            for field in &self.select {
                if let Some((k, v)) = copy
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)))
                {
                    selected.insert(k.clone(), v.clone());
                }
            }
            let plaintext = Value::Object(selected).to_string();
            let (certificate, certificate_id) = &world.certificate;
            let sealed = seal(plaintext.as_bytes(), certificate, certificate_id)?;
            value.push(json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "subscriptionId": sub["id"],
                "subscriptionExpirationDateTime": sub["expirationDateTime"],
                "changeType": "updated",
                "tenantId": world.graph.tenant_id(),
                "clientState": sub["clientState"],
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": copy["@odata.etag"],
                    "id": id,
                },
                "encryptedContent": sealed,
            }));
            items.push((m, version));
        }
        let body = json!({"value": value, "validationTokens": [world.token]});
        Ok((serde_json::to_vec(&body)?, items))
    }
}

/// One POST as the client saw it.
struct Post {
    items: Items,
    /// When it was sent (wall clock, to compare with TOPdesk's `modificationDate`).
    sent_at: Timestamp,
    /// Time to the response head, or `None` on a transport error.
    ack: Option<Duration>,
    status: Option<u16>,
}

/// The results of one rate.
struct PhaseResult {
    rate: u32,
    posts: usize,
    items: usize,
    /// Items per second actually sent over the phase.
    sent_rate: f64,
    ack_p50: Duration,
    ack_p99: Duration,
    ack_max: Duration,
    /// orb's `orb_webhook_ack_seconds` histogram: bucket bounds of p50 and p99.
    server_ack: (String, String),
    /// POSTs not answered 202 (errors included).
    not_acked: usize,
    /// Items per second from the phase's start until the inbox was empty.
    processed_rate: f64,
    /// From the last POST's ack to the empty inbox.
    drain_after: Duration,
    write_p50: Duration,
    write_p99: Duration,
    /// `orb_notifications_received_total` during the phase, against 202s.
    received: f64,
    rejected: f64,
    /// Items whose version (or a later one) never reached TOPdesk.
    unwritten: usize,
    /// Reservations on the room beyond one per meeting (the probe included).
    duplicates: usize,
    /// Meetings without a reservation.
    missing: usize,
    vm_hwm_kib: u64,
    vm_rss_kib: u64,
    /// Bytes under orb's `data_dir` at the end of the phase.
    store_bytes: u64,
    load: String,
}

impl PhaseResult {
    fn lost(&self) -> bool {
        self.not_acked > 0
            || self.received != self.posts as f64
            || self.rejected > 0.0
            || self.unwritten > 0
            || self.duplicates != 0
            || self.missing != 0
    }

    fn row(&self) -> String {
        let lost = if self.lost() {
            format!(
                "**{} not acked, {} received of {} POSTs, {} rejected, {} items never written, {} duplicate and {} missing reservations**",
                self.not_acked,
                self.received,
                self.posts,
                self.rejected,
                self.unwritten,
                self.duplicates,
                self.missing
            )
        } else {
            format!("0 ({} received = {} acked)", self.received, self.posts)
        };
        format!(
            "| {} | {:.0} | {} / {} | {} | {} | {} | {} / {} | {:.0} | {:.1} s | {} | {} | {lost} | {:.1} MB (at the end {:.1} MB) | {:.0} MB | {} |",
            self.rate,
            self.sent_rate,
            self.posts,
            self.items,
            ms(self.ack_p50),
            ms(self.ack_p99),
            ms(self.ack_max),
            self.server_ack.0,
            self.server_ack.1,
            self.processed_rate,
            self.drain_after.as_secs_f64(),
            ms(self.write_p50),
            ms(self.write_p99),
            self.vm_hwm_kib as f64 / 1024.0,
            self.vm_rss_kib as f64 / 1024.0,
            self.store_bytes as f64 / 1e6,
            self.load,
        )
    }
}

fn table(results: &[PhaseResult]) -> String {
    let mut s = String::from(
        "| rate (items/s) | sent (items/s) | POSTs / items | ack p50 | ack p99 | ack max | orb's ack histogram p50 / p99 | processed (items/s) | inbox empty after last ack | to TOPdesk write p50 | p99 | lost | orb peak RSS (VmHWM) | data dir on disk | load avg (1 min) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        s.push_str(&r.row());
        s.push('\n');
    }
    s
}

async fn phase(
    world: &World,
    generator: &mut Generator,
    rate: u32,
    args: &Args,
) -> Result<PhaseResult, BoxError> {
    world.check_alive()?;
    let before = world.metrics().await?;
    let versions_before = generator.versions.clone();
    let load = loadavg();

    // TOPdesk watcher: per meeting, (version, modificationDate) in the order seen.
    let seen: Seen = Arc::new(Mutex::new(vec![Vec::new(); generator.versions.len()]));
    let stop_watch = Arc::new(tokio::sync::Notify::new());
    let watcher = {
        let topdesk = Arc::clone(&world.topdesk);
        let location = world.location.clone();
        let seen = Arc::clone(&seen);
        let stop = Arc::clone(&stop_watch);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TOPDESK_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.notified() => break,
                }
                let snapshot = topdesk.reservations();
                let Ok(mut seen) = seen.lock() else { break };
                for r in snapshot {
                    if !r.location_ids.contains(&location) {
                        continue;
                    }
                    if let Some((m, v)) = parse_subject(&r.brief_description)
                        && let Some(list) = seen.get_mut(m)
                        && list.last().is_none_or(|(last, _)| *last < v)
                    {
                        list.push((v, r.modification_date));
                    }
                }
            }
        })
    };

    // The schedule: POST k goes out when the items before it are due at `rate`.
    let phase_len = Duration::from_secs(args.seconds);
    let start = tokio::time::Instant::now();
    let started = Instant::now();
    let mut due_items = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let at = Duration::from_secs_f64(due_items as f64 / f64::from(rate));
        if at >= phase_len {
            break;
        }
        tokio::time::sleep_until(start + at).await;
        let n = generator.batch_size();
        due_items += n;
        let (body, items) = generator.body(world, n)?;
        let http = world.post_http.clone();
        let url = format!("{}/graph/notifications", world.base);
        tasks.spawn_on(
            async move {
                let sent_at = Timestamp::now();
                let t0 = Instant::now();
                let answer = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ack = t0.elapsed();
                let (ack, status) = match answer {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        (Some(ack), Some(status))
                    }
                    Err(_) => (None, None),
                };
                (
                    Post {
                        items,
                        sent_at,
                        ack,
                        status,
                    },
                    Instant::now(),
                )
            },
            &world.poster,
        );
    }
    let send_time = started.elapsed();
    let mut posts = Vec::new();
    let mut last_ack = started;
    while let Some(done) = tasks.join_next().await {
        let (post, at) = done?;
        last_ack = last_ack.max(at);
        posts.push(post);
    }
    if args.slowest > 0 {
        let phase_start = posts.iter().map(|p| p.sent_at).min();
        let mut by_ack: Vec<&Post> = posts.iter().filter(|p| p.ack.is_some()).collect();
        by_ack.sort_by_key(|p| std::cmp::Reverse(p.ack));
        for p in by_ack.iter().take(args.slowest) {
            let offset = phase_start.map_or(0.0, |s| p.sent_at.duration_since(s).as_secs_f64());
            eprintln!(
                "load-webhook: slow POST sent at +{offset:.3} s ({}): ack {:.1} ms",
                p.sent_at,
                p.ack.unwrap_or_default().as_secs_f64() * 1e3
            );
        }
    }
    let drained_at = world.wait_drained(args.drain).await?;
    let drain_after = drained_at.saturating_duration_since(last_ack);

    // Every meeting's last version must reach TOPdesk.
    // Only meetings this phase changed are looked for.
    let targets: Vec<u64> = generator
        .versions
        .iter()
        .zip(&versions_before)
        .map(|(now, before)| if now > before { *now } else { 0 })
        .collect();
    let deadline = Instant::now() + args.drain;
    loop {
        let done = {
            let seen = seen.lock().map_err(|_| "watcher poisoned")?;
            seen.iter()
                .zip(&targets)
                .all(|(list, target)| *target == 0 || list.last().is_some_and(|(v, _)| v >= target))
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_watch.notify_one();
    watcher.await?;
    let after = world.metrics().await?;
    let (vm_hwm_kib, vm_rss_kib) = memory(world.orb_pid)?;

    let items: usize = posts.iter().map(|p| p.items.len()).sum();
    let mut acks: Vec<Duration> = posts
        .iter()
        .filter(|p| p.status == Some(202))
        .filter_map(|p| p.ack)
        .collect();
    acks.sort();
    let not_acked = posts.iter().filter(|p| p.status != Some(202)).count();
    let seen = seen.lock().map_err(|_| "watcher poisoned")?;
    let mut writes = Vec::with_capacity(items);
    let mut unwritten = 0;
    for post in &posts {
        for (m, v) in &post.items {
            match seen[*m].iter().find(|(version, _)| version >= v) {
                Some((_, at)) => {
                    let d = at.duration_since(post.sent_at);
                    writes.push(Duration::try_from(d).unwrap_or_default());
                }
                None => unwritten += 1,
            }
        }
    }
    writes.sort();
    // One reservation per meeting, no more, no fewer (the probe has no number).
    let mut per_meeting = vec![0usize; world.meetings.len()];
    let mut others = 0usize;
    for parsed in world.room_reservations() {
        match parsed.and_then(|(m, _)| per_meeting.get_mut(m)) {
            Some(count) => *count += 1,
            None => others += 1,
        }
    }
    let duplicates = per_meeting
        .iter()
        .map(|c| c.saturating_sub(1))
        .sum::<usize>()
        + others.saturating_sub(1);
    let missing = per_meeting.iter().filter(|c| **c == 0).count();
    let metric = |m: &HashMap<String, f64>, name: &str| m.get(name).copied().unwrap_or(0.0);
    let rejected = |m: &HashMap<String, f64>| {
        m.iter()
            .filter(|(k, _)| k.starts_with("orb_notifications_rejected_total"))
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    let processing = drained_at.saturating_duration_since(started);
    Ok(PhaseResult {
        rate,
        posts: posts.len(),
        items,
        sent_rate: items as f64 / send_time.as_secs_f64().max(1e-9),
        ack_p50: percentile(&acks, 50.0),
        ack_p99: percentile(&acks, 99.0),
        ack_max: acks.last().copied().unwrap_or_default(),
        server_ack: (
            server_ack_quantile(&before, &after, 0.5),
            server_ack_quantile(&before, &after, 0.99),
        ),
        not_acked,
        processed_rate: items as f64 / processing.as_secs_f64().max(1e-9),
        drain_after,
        write_p50: percentile(&writes, 50.0),
        write_p99: percentile(&writes, 99.0),
        received: metric(&after, "orb_notifications_received_total")
            - metric(&before, "orb_notifications_received_total"),
        rejected: rejected(&after) - rejected(&before),
        unwritten,
        duplicates,
        missing,
        vm_hwm_kib,
        vm_rss_kib,
        store_bytes: dir_size(&world.dir.path().join("data")),
        load,
    })
}

/// orb's own view of its acks: the upper bound of the `orb_webhook_ack_seconds` bucket
/// holding quantile `q`, over the POSTs between two scrapes of `/metrics`.
fn server_ack_quantile(
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    q: f64,
) -> String {
    let prefix = "orb_webhook_ack_seconds_bucket{le=\"";
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(prefix)?.strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v - before.get(k).copied().unwrap_or(0.0)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some(&(_, total)) = buckets.last() else {
        return "?".into();
    };
    match buckets.iter().find(|(_, count)| *count >= q * total) {
        Some((le, _)) if le.is_finite() => format!("≤ {} ms", le * 1000.0),
        Some(_) => "> 3000 ms".into(),
        None => "?".into(),
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in KiB.
fn memory(pid: u32) -> Result<(u64, u64), BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

/// The total size of the files under `dir` (0 for what cannot be read).
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => dir_size(&e.path()),
                Ok(_) => e.metadata().map_or(0, |m| m.len()),
                Err(_) => 0,
            })
            .sum()
    })
}

/// The 1-minute load average.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Polls `check` every 50 ms until it yields a value or `limit` passes.
async fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<Option<T>, BoxError>,
) -> Result<T, BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The subject that carries a meeting's number and version.
fn subject(meeting: usize, version: u64) -> String {
    format!("Load m{meeting:05} v{version}")
}

/// The inverse of [`subject`], wherever it sits in a longer text.
fn parse_subject(text: &str) -> Option<(usize, u64)> {
    let rest = &text[text.find("Load m")? + "Load m".len()..];
    let (meeting, rest) = rest.split_once(" v")?;
    let version: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((meeting.parse().ok()?, version.parse().ok()?))
}

/// A meeting in Alice's calendar with the room invited, one hour long.
fn meeting(subject: &str, start: Timestamp) -> Value {
    let local = |t: Timestamp| t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    json!({
        "subject": subject,
        "start": {"dateTime": local(start), "timeZone": "UTC"},
        "end": {"dateTime": local(start + SignedDuration::from_hours(1)), "timeZone": "UTC"},
        "location": {"displayName": "Room 2.14", "locationEmailAddress": ROOM},
        "attendees": [
            {"type": "resource", "emailAddress": {"address": ROOM, "name": "Room 2.14"}},
        ],
    })
}

/// The whole hour at or after `t`.
fn next_hour(t: Timestamp) -> Timestamp {
    let s = t.as_second();
    Timestamp::from_second(s + (3600 - s.rem_euclid(3600)) % 3600).unwrap_or(t)
}
