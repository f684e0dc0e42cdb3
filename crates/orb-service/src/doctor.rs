//! `orb doctor`: checks a configuration against the world before (or while) the daemon
//! runs, and says in one line per check what is fine, what is doubtful and what stops
//! orb from working.
//!
//! The checks, in order: the state store opens; every secret reference resolves; a Graph
//! token can be acquired; Graph permissions, probed with harmless reads (rooms list →
//! `Place.Read.All`, subscriptions list → `Calendars.Read`, one day of calendarView on
//! each managed room → `Calendars.Read` on that mailbox and mailbox scoping); every
//! configured room exists in Graph's Places; TOPdesk accepts the credentials and every
//! configured `topdesk_location_id` is a reservable location; the notification-encryption
//! certificate ring has a current, valid certificate; the TLS files, if configured,
//! are usable; `{public_url}/healthz` answers.
//!
//! Nothing here writes to Graph or TOPdesk. The store is opened as `orb run` opens it (so
//! a first run creates it and its master key, as `orb secrets set` would); the calls the
//! checks make are audited like every other call. The daemon holds the store's lock, so
//! run the doctor while the daemon is stopped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orb_graph_client::{GraphClient, Mailbox};
use orb_store::{KeyState, Store};
use orb_topdesk_client::{Fiql, LocationQuery, TopdeskClient};

use crate::config::{Config, SecretRef};
use crate::runtime::{self, Clock, Options};
use crate::{Error, state, subscriptions};

/// A certificate expiring within this period is a warning.
pub const EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(14 * 24);

/// How a check came out.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works now, but needs attention (or could not be verified and may be fine).
    Warn,
    /// orb cannot work like this.
    Fail,
}

impl Status {
    /// `ok`, `warn` or `fail`: the word `orb doctor` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that `{:<4}` lines the details up.
        f.pad(self.as_str())
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// What was checked, e.g. `graph token` or `room room-2.14@example.com (graph)`.
    pub name: String,
    /// How it came out.
    pub status: Status,
    /// Why, in plain words (never a secret).
    pub detail: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<4} {}: {}", self.status, self.name, self.detail)
    }
}

/// Every check's result, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether any check failed (`orb doctor` then exits 1).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The check called `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The worst status of the checks whose name starts with `prefix`.
    pub fn worst(&self, prefix: &str) -> Option<Status> {
        self.checks
            .iter()
            .filter(|c| c.name.starts_with(prefix))
            .map(|c| c.status)
            .max()
    }

    fn push(&mut self, name: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            status,
            detail: detail.into(),
        });
    }
}

/// Settings of a doctor run.
#[derive(Clone)]
pub struct DoctorOptions {
    /// The time source (certificate validity).
    pub clock: Clock,
    /// The longest a single probe may take.
    pub probe_timeout: Duration,
    /// The timeout of the `{public_url}/healthz` request.
    pub health_timeout: Duration,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(Timestamp::now),
            probe_timeout: Duration::from_secs(30),
            health_timeout: Duration::from_secs(3),
        }
    }
}

impl std::fmt::Debug for DoctorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoctorOptions")
            .field("probe_timeout", &self.probe_timeout)
            .field("health_timeout", &self.health_timeout)
            .finish_non_exhaustive()
    }
}

/// Opens the state store as `orb run` does and runs every check. A configuration that
/// loaded is the first `ok`.
pub async fn run(config: &Config, options: &DoctorOptions) -> Report {
    let mut report = Report::default();
    report_config(config, &mut report);
    match state::open(config) {
        Ok(opened) => {
            let detail = if opened.created_master_key {
                format!(
                    "created with a new master key at {}/master.key (set service.master_key to keep it elsewhere)",
                    config.service.data_dir.display()
                )
            } else {
                format!("{} opened", state::store_path(config).display())
            };
            report.push(
                "state store",
                if opened.created_master_key {
                    Status::Warn
                } else {
                    Status::Ok
                },
                detail,
            );
            checks(config, &Arc::new(opened.store), options, &mut report).await;
        }
        Err(e) => {
            let hint = match &e {
                Error::Store(orb_store::Error::Locked { .. }) => {
                    " (is `orb run` running? stop it: the doctor needs the store for secrets and certificates)"
                }
                _ => "",
            };
            report.push("state store", Status::Fail, format!("{e}{hint}"));
        }
    }
    report
}

/// Runs every check but the configuration and store ones against an open store.
pub async fn run_with_store(
    config: &Config,
    store: &Arc<Store>,
    options: &DoctorOptions,
) -> Report {
    let mut report = Report::default();
    report_config(config, &mut report);
    checks(config, store, options, &mut report).await;
    report
}

fn report_config(config: &Config, report: &mut Report) {
    report.push(
        "config",
        Status::Ok,
        format!(
            "{} room(s), sync mode {}, horizon {} days{}",
            config.rooms.len(),
            match config.sync.mode {
                crate::config::SyncMode::Organizer => "organizer",
                crate::config::SyncMode::RoomOnly => "room-only",
            },
            config.sync.horizon_days,
            if config.graph.mail_sender.is_some() {
                ", mail enabled"
            } else {
                ""
            }
        ),
    );
}

async fn checks(config: &Config, store: &Arc<Store>, options: &DoctorOptions, report: &mut Report) {
    let secrets_ok = check_secrets(config, store, report);
    let runtime_options = Options {
        clock: Arc::clone(&options.clock),
        ..Options::default()
    };
    let audit = crate::audit_writer::AuditWriter::direct(Arc::clone(store));
    if secrets_ok.graph {
        match runtime::graph_client(config, store, &audit, &runtime_options) {
            Ok(graph) => check_graph(config, &graph, options, report).await,
            Err(e) => report.push("graph token", Status::Fail, format!("no client: {e}")),
        }
    }
    if secrets_ok.topdesk {
        match runtime::topdesk_client(config, store, &audit, &runtime_options) {
            Ok(topdesk) => check_topdesk(config, &topdesk, options, report).await,
            Err(e) => report.push(
                "topdesk credentials",
                Status::Fail,
                format!("no client: {e}"),
            ),
        }
    }
    check_certificates(config, store, (options.clock)(), report);
    check_public_url(config, options, report).await;
}

/// Which credentials resolved.
struct Resolved {
    graph: bool,
    topdesk: bool,
}

fn check_secrets(config: &Config, store: &Store, report: &mut Report) -> Resolved {
    let mut one = |name: &str, reference: &SecretRef| -> bool {
        let check = format!("secret {name}");
        match state::resolve_secret(store, reference) {
            Ok(v) if v.expose().is_empty() => {
                report.push(check, Status::Fail, format!("{reference:?} is empty"));
                false
            }
            Ok(_) => {
                report.push(check, Status::Ok, format!("{reference:?} resolves"));
                true
            }
            Err(e) => {
                report.push(check, Status::Fail, e.to_string());
                false
            }
        }
    };
    let graph = match (
        &config.graph.client_secret,
        &config.graph.client_certificate,
    ) {
        (Some(r), _) => one("graph.client_secret", r),
        (None, Some(r)) => one("graph.client_certificate", r),
        (None, None) => false,
    };
    let topdesk = one(
        "topdesk.application_password",
        &config.topdesk.application_password,
    );
    if let Some(path) = &config.service.admin_token_file {
        let check = "secret service.admin_token_file";
        match std::fs::read(path) {
            Ok(t) if t.iter().all(u8::is_ascii_whitespace) => {
                report.push(check, Status::Fail, format!("{} is empty", path.display()));
            }
            Ok(_) => report.push(check, Status::Ok, format!("{} readable", path.display())),
            Err(e) => report.push(check, Status::Fail, format!("{}: {e}", path.display())),
        }
    }
    Resolved { graph, topdesk }
}

async fn probe<T, E>(
    options: &DoctorOptions,
    call: impl Future<Output = Result<T, E>>,
) -> Result<Result<T, E>, String> {
    tokio::time::timeout(options.probe_timeout, call)
        .await
        .map_err(|_| format!("no answer within {:?}", options.probe_timeout))
}

async fn check_graph(
    config: &Config,
    graph: &GraphClient,
    options: &DoctorOptions,
    report: &mut Report,
) {
    use orb_graph_client::Error as G;
    match probe(options, graph.check_token()).await {
        Ok(Ok(lifetime)) => report.push(
            "graph token",
            Status::Ok,
            format!(
                "token acquired for client {} (valid {} s)",
                config.graph.client_id,
                lifetime.as_secs()
            ),
        ),
        Ok(Err(e)) => {
            let why = match &e {
                G::InvalidClient { .. } => format!(
                    "{e}: the client secret is wrong or expired, or the certificate is not registered on app {}",
                    config.graph.client_id
                ),
                G::ConsentMissing { .. } => {
                    format!(
                        "{e}: an administrator must grant admin consent (see `orb permissions`)"
                    )
                }
                G::TokenRejected { .. } => format!(
                    "{e}: check graph.tenant_id {} and graph.client_id {}",
                    config.graph.tenant_id, config.graph.client_id
                ),
                G::Transport(_) | G::Timeout(_) => {
                    format!("{e}: cannot reach {}", config.graph.login_url)
                }
                _ => e.to_string(),
            };
            report.push("graph token", Status::Fail, why);
            // Every further Graph probe would fail the same way.
            return;
        }
        Err(why) => {
            report.push("graph token", Status::Fail, why);
            return;
        }
    }

    // Place.Read.All: the rooms list, which the room mapping check needs too.
    let rooms = match probe(options, graph.rooms()).await {
        Ok(Ok(rooms)) => {
            report.push(
                "graph Place.Read.All",
                Status::Ok,
                format!("{} room(s) listed", rooms.len()),
            );
            Some(rooms)
        }
        Ok(Err(e)) => {
            let why = match &e {
                G::Forbidden { .. } => {
                    format!("{e}: Place.Read.All is not granted (needed to check the room mapping)")
                }
                _ => e.to_string(),
            };
            report.push("graph Place.Read.All", Status::Fail, why);
            None
        }
        Err(why) => {
            report.push("graph Place.Read.All", Status::Fail, why);
            None
        }
    };

    // Calendars.Read, not mailbox-scoped: the subscriptions list. When it works, an
    // ErrorAccessDenied on a mailbox below can only be mailbox scoping.
    let calendars_read = match probe(options, graph.list_subscriptions()).await {
        Ok(Ok(subs)) => {
            let url = config.notification_url();
            let ours = config
                .rooms
                .iter()
                .filter(|r| {
                    Mailbox::new(&r.mailbox)
                        .is_ok_and(|mb| subs.iter().any(|s| subscriptions::is_ours(s, &mb, &url)))
                })
                .count();
            report.push(
                "graph subscriptions",
                Status::Ok,
                format!(
                    "listed {} subscription(s) of this app; {ours} of {} room(s) subscribed at {url}",
                    subs.len(),
                    config.rooms.len()
                ),
            );
            true
        }
        Ok(Err(e)) => {
            let why = match &e {
                G::Forbidden { .. } | G::MailboxAccessDenied { .. } => {
                    format!("{e}: Calendars.Read is not granted (subscriptions need it)")
                }
                _ => e.to_string(),
            };
            report.push("graph subscriptions", Status::Fail, why);
            false
        }
        Err(why) => {
            report.push("graph subscriptions", Status::Fail, why);
            false
        }
    };

    let listed: Option<HashMap<String, &orb_graph_client::Room>> = rooms.as_ref().map(|rooms| {
        rooms
            .iter()
            .map(|r| (r.mailbox.as_str().to_ascii_lowercase(), r))
            .collect()
    });
    let now = (options.clock)();
    for room in &config.rooms {
        if let Some(listed) = &listed {
            let name = format!("room {} (graph)", room.mailbox);
            match listed.get(&room.mailbox) {
                Some(r) => report.push(
                    name,
                    Status::Ok,
                    format!("a room in Places: {:?}", r.display_name),
                ),
                None => report.push(
                    name,
                    Status::Fail,
                    "not a room in Graph's Places: check the address, or that it is a room mailbox (Set-Mailbox -Type Room)",
                ),
            }
        }
        let name = format!("calendar {}", room.mailbox);
        let Ok(mailbox) = Mailbox::new(&room.mailbox) else {
            report.push(name, Status::Fail, "not a valid mailbox address");
            continue;
        };
        let end = now
            .checked_add(SignedDuration::from_hours(24))
            .unwrap_or(now);
        match probe(options, graph.calendar_view(&mailbox, now, end)).await {
            Ok(Ok(events)) => report.push(
                name,
                Status::Ok,
                format!(
                    "Calendars.Read works ({} item(s) in the next day)",
                    events.len()
                ),
            ),
            Ok(Err(e)) => {
                let why = match &e {
                    G::MailboxAccessDenied { .. } if calendars_read => format!(
                        "{e}: the mailbox is outside the app's reach — an application access policy (New-ApplicationAccessPolicy) or an RBAC for Applications management scope excludes it; add the room to the policy's mail-enabled security group or the scope (check with Test-ApplicationAccessPolicy / Test-ServicePrincipalAuthorization)"
                    ),
                    G::MailboxAccessDenied { .. } => format!(
                        "{e}: Calendars.Read is not granted, or an application access policy / RBAC for Applications scope excludes this mailbox"
                    ),
                    G::NotFound { .. } => format!("{e}: no such mailbox"),
                    _ => e.to_string(),
                };
                report.push(name, Status::Fail, why);
            }
            Err(why) => report.push(name, Status::Fail, why),
        }
    }
}

async fn check_topdesk(
    config: &Config,
    topdesk: &TopdeskClient,
    options: &DoctorOptions,
    report: &mut Report,
) {
    use orb_topdesk_client::Error as T;
    let reservable = match probe(options, topdesk.reservable_locations(&[])).await {
        Ok(Ok(locations)) => {
            report.push(
                "topdesk credentials",
                Status::Ok,
                format!(
                    "{} accepted the login of {}; {} reservable location(s)",
                    config.topdesk.url,
                    config.topdesk.username,
                    locations.len()
                ),
            );
            locations
        }
        Ok(Err(e)) => {
            let why = match &e {
                T::CredentialsRejected { .. } => format!(
                    "{e}: renew the application password of {} and store it again (`orb secrets set`)",
                    config.topdesk.username
                ),
                T::Forbidden { .. } => format!(
                    "{e}: the operator {} needs read and write access to Reservations",
                    config.topdesk.username
                ),
                T::Transport(_) | T::Timeout => format!("{e}: cannot reach {}", config.topdesk.url),
                _ => e.to_string(),
            };
            report.push("topdesk credentials", Status::Fail, why);
            return;
        }
        Err(why) => {
            report.push("topdesk credentials", Status::Fail, why);
            return;
        }
    };
    for room in &config.rooms {
        let name = format!("room {} (topdesk)", room.mailbox);
        let id = room.topdesk_location_id.as_str();
        if let Some(l) = reservable.iter().find(|l| l.id.as_str() == id) {
            report.push(
                name,
                Status::Ok,
                format!(
                    "location {id} is reservable ({})",
                    l.name.as_deref().unwrap_or("no name")
                ),
            );
            continue;
        }
        // Not reservable: tell an unknown id from a room that is not open for booking.
        let query = LocationQuery {
            filter: Some(Fiql::eq("id", id.to_owned())),
            ..LocationQuery::default()
        };
        let why = match probe(options, topdesk.locations(&query)).await {
            Ok(Ok(found)) if found.iter().any(|l| l.id.as_str() == id) => format!(
                "location {id} exists but is not reservable (enable reservations on the location card)"
            ),
            _ => format!("unknown TOPdesk location {id} (or archived): check topdesk_location_id"),
        };
        report.push(name, Status::Fail, why);
    }
}

fn check_certificates(config: &Config, store: &Store, now: Timestamp, report: &mut Report) {
    let name = "encryption certificate";
    match store.encryption_keys() {
        Ok(keys) => {
            let live: Vec<_> = keys
                .iter()
                .filter(|k| k.state != KeyState::Retired)
                .collect();
            let current = live
                .iter()
                .filter(|k| k.state == KeyState::Current && k.expires_at > now)
                .max_by_key(|k| k.created_at);
            match current {
                _ if live.is_empty() => report.push(
                    name,
                    Status::Warn,
                    "none yet: `orb run` creates one on its first start (or run `orb certs rotate`)",
                ),
                None => report.push(
                    name,
                    Status::Fail,
                    "no current certificate is valid any more: run `orb certs rotate`",
                ),
                Some(k) => {
                    let left = k.expires_at.duration_since(now);
                    let detail = format!(
                        "{} valid until {} ({} day(s) left)",
                        k.id,
                        k.expires_at,
                        left.as_hours() / 24
                    );
                    if left <= EXPIRY_WARNING {
                        report.push(
                            name,
                            Status::Warn,
                            format!("{detail}; the daemon rotates it, or run `orb certs rotate`"),
                        );
                    } else {
                        report.push(name, Status::Ok, detail);
                    }
                }
            }
            if let Err(e) = state::load_ring(store) {
                report.push("encryption keys", Status::Fail, format!("unusable: {e}"));
            }
        }
        Err(e) => report.push(name, Status::Fail, e.to_string()),
    }

    let (Some(cert), Some(_)) = (&config.service.tls_cert_file, &config.service.tls_key_file)
    else {
        return;
    };
    let name = "tls certificate";
    // The file first, so that its problems are named as such (an empty chain would
    // otherwise surface as rustls's "peer sent no certificates").
    let not_after = match tls_not_after(cert) {
        Ok(t) => t,
        Err(why) => {
            report.push(name, Status::Fail, format!("{}: {why}", cert.display()));
            return;
        }
    };
    if let Err(e) = runtime::tls_acceptor(config) {
        report.push(name, Status::Fail, e.to_string());
        return;
    }
    let left = not_after.duration_since(now);
    let detail = format!("{} valid until {not_after}", cert.display());
    if not_after <= now {
        report.push(name, Status::Fail, format!("{detail}: expired"));
    } else if left <= EXPIRY_WARNING {
        report.push(
            name,
            Status::Warn,
            format!("{detail}: expires within {} day(s)", left.as_hours() / 24),
        );
    } else {
        report.push(name, Status::Ok, detail);
    }
}

/// The end of the validity of the first certificate in a PEM chain.
fn tls_not_after(path: &std::path::Path) -> Result<Timestamp, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let first = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no certificate in the file")?
        .map_err(|e| e.to_string())?;
    let (_, cert) = x509_parser::parse_x509_certificate(first.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Timestamp::from_second(cert.validity().not_after.timestamp()).map_err(|e| e.to_string())
}

async fn check_public_url(config: &Config, options: &DoctorOptions, report: &mut Report) {
    let name = "public url";
    let url = format!(
        "{}/healthz",
        config.service.public_url.as_str().trim_end_matches('/')
    );
    let client = match health_client(options.health_timeout) {
        Ok(c) => c,
        Err(e) => {
            report.push(name, Status::Warn, format!("cannot check {url}: {e}"));
            return;
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => {
            let status = r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "unknown".to_owned());
            report.push(
                name,
                if status == "ok" {
                    Status::Ok
                } else {
                    Status::Warn
                },
                format!("{url} answered: {status}"),
            );
        }
        Ok(r) => report.push(
            name,
            Status::Warn,
            format!("{url} answered {} (is orb behind this address?)", r.status()),
        ),
        Err(e) => report.push(
            name,
            Status::Warn,
            format!(
                "{url} is unreachable ({}): fine if `orb run` is not running; otherwise Graph cannot reach orb either",
                if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "connection failed".to_owned()
                } else {
                    e.to_string()
                }
            ),
        ),
    }
}

/// A short-timeout client on rustls (aws-lc-rs) with the system's roots.
fn health_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate is skipped: the others still work.
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())
}
