//! The configuration file (TOML), exactly the keys of `interfaces.md`.
//!
//! Parsing is strict: an unknown key anywhere is an error naming the key and its line, a
//! missing required key is named, and [`Config::from_toml_str`] then checks the values
//! against each other (TLS files both or neither, plain HTTP only on loopback, exactly one
//! Graph credential, rooms unique, ...) and reports *every* problem at once.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use url::Url;

/// The ORB fields a view can show, by the names `sync.view_exclude` uses.
pub const VIEW_FIELDS: &[&str] = &[
    "appointment_type",
    "organizer",
    "location",
    "room",
    "attendees",
    "subject",
    "start",
    "end",
    "complexity_index",
    "created_at",
    "match_id",
    "correlation_id",
    "processor_created",
    "original_organizer",
    "last_updated_at",
    "last_updated_by",
    "failed_at",
    "failed_processor",
    "failed_count",
    "retry_count",
    "exchange_status",
    "topdesk_status",
];

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[service]`: endpoints and local state.
    pub service: ServiceConfig,
    /// `[graph]`: the app registration and endpoints.
    pub graph: GraphConfig,
    /// `[topdesk]`: the TOPdesk API and operator account.
    pub topdesk: TopdeskConfig,
    /// `[sync]`: behaviour of the sync.
    #[serde(default)]
    pub sync: SyncConfig,
    /// `[[rooms]]`: the managed rooms; orb touches no other mailbox.
    pub rooms: Vec<RoomConfig>,
}

/// `[service]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Address of the webhook and admin endpoints.
    pub listen: SocketAddr,
    /// What Graph calls (`{public_url}/graph/notifications`).
    pub public_url: Url,
    /// Where the state store lives.
    pub data_dir: PathBuf,
    /// TLS certificate chain (PEM); both TLS files or neither.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// TLS private key (PEM).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// CIDR allow-list for notification POSTs; empty = all sources.
    #[serde(default)]
    pub allowed_sources: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed (addition to `interfaces.md`); empty =
    /// the header is ignored and the socket peer address counts.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// CIDR allow-list for `GET /healthz` and `/metrics` (addition to `interfaces.md`);
    /// empty = all sources. Both name rooms and counts, and the port is public.
    #[serde(default)]
    pub monitoring_sources: Vec<IpNet>,
    /// File holding the bearer token for `/admin` and `/api`.
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// Where the master key comes from (`file:PATH` or `env:VAR`); default: a generated
    /// `{data_dir}/master.key`.
    #[serde(default)]
    pub master_key: Option<KeySource>,
    /// Largest accepted notification POST body (addition to `interfaces.md`).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long audit records are kept (addition to `interfaces.md`; at least a day).
    #[serde(default = "default_audit_retention", deserialize_with = "duration")]
    pub audit_retention: Duration,
}

/// `[graph]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret: `secret:NAME` (stored with `orb secrets set`) or `env:VAR`.
    #[serde(default)]
    pub client_secret: Option<SecretRef>,
    /// Certificate credential: `file:PATH` to a PEM holding the key and certificate.
    #[serde(default)]
    pub client_certificate: Option<SecretRef>,
    /// Identity platform origin.
    #[serde(default = "default_login_url")]
    pub login_url: Url,
    /// Graph API base.
    #[serde(default = "default_api_url")]
    pub api_url: Url,
    /// The one mailbox orb may send mail from; absent = no mail, no `Mail.Send`.
    #[serde(default)]
    pub mail_sender: Option<String>,
}

/// `[topdesk]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopdeskConfig {
    /// API base URL, ending in `/tas/api`.
    pub url: Url,
    /// Operator login name.
    pub username: String,
    /// Application password: `secret:NAME` or `env:VAR`.
    pub application_password: SecretRef,
    /// orb's `externalLink` type: a non-zero integer, as a string.
    #[serde(default = "default_external_link_type")]
    pub external_link_type: String,
    /// How often the hot window is polled.
    #[serde(default = "default_poll_interval", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Requester used when an organizer has no TOPdesk person card.
    #[serde(default)]
    pub default_requester_email: Option<String>,
}

/// `[sync]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Where TOPdesk bookings are written in Exchange.
    #[serde(default)]
    pub mode: SyncMode,
    /// How far ahead bookings are synced.
    #[serde(default = "default_horizon_days")]
    pub horizon_days: u32,
    /// `false`: subjects are neither stored nor carried across.
    #[serde(default = "default_true")]
    pub carry_subject: bool,
    /// ORB fields hidden from every view (names in [`VIEW_FIELDS`]).
    #[serde(default)]
    pub view_exclude: Vec<String>,
    /// Who wins when both sides changed the same field before orb carried either over.
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
    /// Deletion safety: a full pass that would cancel more than this share (percent) of
    /// a room's bookings in the window cancels nothing and holds them for an admin.
    #[serde(default = "default_mass_cancel_max_percent")]
    pub mass_cancel_max_percent: u8,
    /// Passes that would cancel fewer bookings than this are never held.
    #[serde(default = "default_mass_cancel_min_bookings")]
    pub mass_cancel_min_bookings: usize,
    /// Delegate rules (R17): who is the TOPdesk requester of a meeting a delegate
    /// (secretary) organizes.
    #[serde(default)]
    pub delegates: Vec<DelegateConfig>,
}

/// `sync.conflict_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// Exchange's value is kept.
    #[default]
    ExchangeWins,
    /// TOPdesk's value is kept.
    TopdeskWins,
    /// The value changed last is kept (Exchange on a tie).
    LatestWins,
}

/// One `[[sync.delegates]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegateConfig {
    /// The delegate's (secretary's) mailbox, as organizer of the meetings it books.
    pub mailbox: String,
    /// Who is the TOPdesk requester of its meetings.
    pub requester: DelegateRequester,
    /// The requester for `requester = "principal"`.
    #[serde(default)]
    pub principal: Option<String>,
}

/// `requester` of a `[[sync.delegates]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DelegateRequester {
    /// The delegate itself.
    Organizer,
    /// The entry's `principal`.
    Principal,
    /// The meeting's first required attendee (the person booked for).
    FirstRequiredAttendee,
}

fn default_mass_cancel_max_percent() -> u8 {
    50
}

fn default_mass_cancel_min_bookings() -> usize {
    5
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            mode: SyncMode::default(),
            horizon_days: default_horizon_days(),
            carry_subject: true,
            view_exclude: Vec::new(),
            conflict_policy: ConflictPolicy::default(),
            mass_cancel_max_percent: default_mass_cancel_max_percent(),
            mass_cancel_min_bookings: default_mass_cancel_min_bookings(),
            delegates: Vec::new(),
        }
    }
}

/// `sync.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// TOPdesk bookings become events in the requester's calendar, the room invited.
    #[default]
    Organizer,
    /// TOPdesk bookings only update the room's calendar (discouraged).
    RoomOnly,
}

/// `[[rooms]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    /// The room mailbox (compared case-insensitively; stored lowercase).
    pub mailbox: String,
    /// The TOPdesk location id of the room.
    pub topdesk_location_id: String,
}

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `secret:NAME`: stored encrypted in the state store.
    Stored(String),
    /// `env:VAR`: an environment variable.
    Env(String),
    /// `file:PATH`: a file.
    File(PathBuf),
}

impl fmt::Debug for SecretRef {
    // Only the reference is shown, never a value: a SecretRef holds none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored(n) => write!(f, "secret:{n}"),
            Self::Env(v) => write!(f, "env:{v}"),
            Self::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (kind, rest) = s.split_once(':').ok_or_else(|| {
            serde::de::Error::custom("expected secret:NAME, env:VAR or file:PATH")
        })?;
        if rest.is_empty() {
            return Err(serde::de::Error::custom(format!(
                "empty name after `{kind}:`"
            )));
        }
        match kind {
            "secret" => Ok(Self::Stored(rest.to_owned())),
            "env" => Ok(Self::Env(rest.to_owned())),
            "file" => Ok(Self::File(PathBuf::from(rest))),
            _ => Err(serde::de::Error::custom(format!(
                "unknown secret source `{kind}:`; expected secret:NAME, env:VAR or file:PATH"
            ))),
        }
    }
}

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `file:PATH`.
    File(PathBuf),
    /// `env:VAR`.
    Env(String),
}

impl<'de> Deserialize<'de> for KeySource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match SecretRef::deserialize(d)? {
            SecretRef::File(p) => Ok(Self::File(p)),
            SecretRef::Env(v) => Ok(Self::Env(v)),
            SecretRef::Stored(_) => Err(serde::de::Error::custom(
                "the master key cannot live in the store it encrypts; use file:PATH or env:VAR",
            )),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, a missing key or a value of the wrong type.
    #[error("{0}")]
    Parse(String),
    /// Values that do not fit together; every problem is listed.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and validates configuration text.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| parse_error(text, &e))?;
        for room in &mut config.rooms {
            room.mailbox = room.mailbox.trim().to_ascii_lowercase();
        }
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The URL Graph posts change notifications to.
    pub fn notification_url(&self) -> String {
        format!(
            "{}/graph/notifications",
            self.service.public_url.as_str().trim_end_matches('/')
        )
    }

    /// The URL Graph posts lifecycle notifications to.
    pub fn lifecycle_url(&self) -> String {
        format!(
            "{}/graph/lifecycle",
            self.service.public_url.as_str().trim_end_matches('/')
        )
    }

    /// The Graph token scope: `{origin of graph.api_url}/.default`.
    pub fn graph_scope(&self) -> String {
        format!(
            "{}/.default",
            self.graph.api_url.origin().ascii_serialization()
        )
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let s = &self.service;
        if s.tls_cert_file.is_some() != s.tls_key_file.is_some() {
            p.push(
                "service.tls_cert_file and service.tls_key_file: give both or neither".to_owned(),
            );
        }
        let tls = s.tls_cert_file.is_some();
        if !tls && !s.listen.ip().is_loopback() {
            p.push(format!(
                "service.listen = {}: without TLS orb only listens on loopback; set tls_cert_file and tls_key_file",
                s.listen
            ));
        }
        match s.public_url.scheme() {
            "https" => {}
            "http" if url_is_loopback(&s.public_url) => {}
            "http" => p.push(
                "service.public_url: http:// is only allowed for loopback testing; Graph requires https".to_owned(),
            ),
            other => p.push(format!("service.public_url: unsupported scheme {other}")),
        }
        if s.max_body_bytes < 1024 {
            p.push("service.max_body_bytes: at least 1024".to_owned());
        }
        if s.audit_retention < Duration::from_secs(24 * 3600) {
            p.push("service.audit_retention: at least 1 day".to_owned());
        }

        let g = &self.graph;
        for (name, value) in [
            ("graph.tenant_id", &g.tenant_id),
            ("graph.client_id", &g.client_id),
        ] {
            if value.trim().is_empty() {
                p.push(format!("{name}: must not be empty"));
            }
        }
        match (&g.client_secret, &g.client_certificate) {
            (None, None) => p.push(
                "graph: one credential is required: client_secret or client_certificate".to_owned(),
            ),
            (Some(_), Some(_)) => p.push(
                "graph: give client_secret or client_certificate, not both".to_owned(),
            ),
            (Some(SecretRef::File(_)), None) => p.push(
                "graph.client_secret: use secret:NAME or env:VAR (a secret in a plain file is not encrypted)".to_owned(),
            ),
            (None, Some(SecretRef::Stored(_) | SecretRef::Env(_))) => {
                p.push("graph.client_certificate: use file:PATH (PEM with key and certificate)".to_owned());
            }
            _ => {}
        }
        if let Some(sender) = &g.mail_sender
            && !looks_like_email(sender)
        {
            p.push(format!(
                "graph.mail_sender: {sender:?} is not an e-mail address"
            ));
        }

        let t = &self.topdesk;
        if !t.url.path().trim_end_matches('/').ends_with("/tas/api") {
            p.push(format!("topdesk.url: {} must end in /tas/api", t.url));
        }
        if t.username.trim().is_empty() {
            p.push("topdesk.username: must not be empty".to_owned());
        }
        if let SecretRef::File(_) = t.application_password {
            p.push("topdesk.application_password: use secret:NAME or env:VAR".to_owned());
        }
        if !matches!(t.external_link_type.parse::<i64>(), Ok(n) if n != 0) {
            p.push(
                "topdesk.external_link_type: must be a non-zero integer (as a string)".to_owned(),
            );
        }
        if t.poll_interval < Duration::from_secs(5) {
            p.push("topdesk.poll_interval: at least 5s".to_owned());
        }
        if let Some(e) = &t.default_requester_email
            && !looks_like_email(e)
        {
            p.push(format!(
                "topdesk.default_requester_email: {e:?} is not an e-mail address"
            ));
        }

        if !(1..=730).contains(&self.sync.horizon_days) {
            p.push("sync.horizon_days: between 1 and 730".to_owned());
        }
        for field in &self.sync.view_exclude {
            if !VIEW_FIELDS.contains(&field.as_str()) {
                p.push(format!(
                    "sync.view_exclude: unknown field {field:?}; known: {}",
                    VIEW_FIELDS.join(", ")
                ));
            }
        }

        if self.sync.mass_cancel_max_percent > 100 {
            p.push("sync.mass_cancel_max_percent: between 0 and 100".to_owned());
        }
        let mut delegates = HashSet::new();
        for d in &self.sync.delegates {
            let mailbox = d.mailbox.trim().to_ascii_lowercase();
            if !looks_like_email(&mailbox) {
                p.push(format!(
                    "sync.delegates: mailbox {:?} is not an e-mail address",
                    d.mailbox
                ));
            }
            if !delegates.insert(mailbox) {
                p.push(format!(
                    "sync.delegates: {} has more than one rule",
                    d.mailbox
                ));
            }
            match (d.requester, &d.principal) {
                (DelegateRequester::Principal, None) => p.push(format!(
                    "sync.delegates: {} has requester = \"principal\" but no principal",
                    d.mailbox
                )),
                (DelegateRequester::Principal, Some(e)) if !looks_like_email(e) => {
                    p.push(format!(
                        "sync.delegates: principal {e:?} of {} is not an e-mail address",
                        d.mailbox
                    ));
                }
                (
                    DelegateRequester::Organizer | DelegateRequester::FirstRequiredAttendee,
                    Some(_),
                ) => {
                    p.push(format!(
                        "sync.delegates: {}: principal is only used with requester = \"principal\"",
                        d.mailbox
                    ));
                }
                _ => {}
            }
        }

        if self.rooms.is_empty() {
            p.push("rooms: at least one [[rooms]] entry is required".to_owned());
        }
        let mut mailboxes = HashSet::new();
        let mut locations = HashSet::new();
        for room in &self.rooms {
            if !looks_like_email(&room.mailbox) {
                p.push(format!(
                    "rooms: mailbox {:?} is not an e-mail address",
                    room.mailbox
                ));
            }
            if !mailboxes.insert(room.mailbox.as_str()) {
                p.push(format!("rooms: mailbox {} is listed twice", room.mailbox));
            }
            if room.topdesk_location_id.trim().is_empty() {
                p.push(format!(
                    "rooms: {} has an empty topdesk_location_id",
                    room.mailbox
                ));
            } else if !locations.insert(room.topdesk_location_id.as_str()) {
                p.push(format!(
                    "rooms: TOPdesk location {} is mapped to two mailboxes",
                    room.topdesk_location_id
                ));
            }
        }
        p
    }
}

/// The message and where it is, but not toml's source excerpt: the offending line may be
/// a secret pasted where a reference belongs, and errors end up in logs.
fn parse_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let place = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        // Name the key (or table) of that line, never its value.
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_text = text[line_start..].lines().next().unwrap_or("").trim();
        let subject = match line_text.split_once('=') {
            Some((key, _)) => format!(" (`{}`)", key.trim()),
            None if line_text.starts_with('[') => format!(" ({line_text})"),
            None => String::new(),
        };
        format!("line {line}, column {column}{subject}: ")
    });
    ConfigError::Parse(format!(
        "{}{}",
        place.unwrap_or_default(),
        e.message().trim_end()
    ))
}

fn url_is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((local, domain))
        if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            && !s.contains(char::is_whitespace))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
}

fn default_audit_retention() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}

fn default_max_body_bytes() -> usize {
    4 * 1024 * 1024
}

fn default_login_url() -> Url {
    // Invariant: a constant, valid URL.
    #[expect(clippy::expect_used, reason = "constant URL")]
    Url::parse("https://login.microsoftonline.com").expect("valid constant URL")
}

fn default_api_url() -> Url {
    #[expect(clippy::expect_used, reason = "constant URL")]
    Url::parse("https://graph.microsoft.com/v1.0").expect("valid constant URL")
}

fn default_external_link_type() -> String {
    "4711".to_owned()
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_horizon_days() -> u32 {
    180
}

fn default_true() -> bool {
    true
}
