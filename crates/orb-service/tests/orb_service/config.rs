//! The configuration contract of `interfaces.md`: the documented example parses, every
//! default holds, and every mistake is named.

use std::time::Duration;

use orb_service::config::{Config, ConfigError, SecretRef, SyncMode};

/// The example of `interfaces.md`, with loopback-valid TLS files.
const EXAMPLE: &str = r#"
[service]
listen = "0.0.0.0:8443"
public_url = "https://orb.example.com"
data_dir = "/var/lib/orb"
tls_cert_file = "/etc/orb/tls.pem"
tls_key_file = "/etc/orb/tls.key"
allowed_sources = ["52.96.0.0/14"]
admin_token_file = "/etc/orb/admin.token"
master_key = "file:/etc/orb/master.key"

[graph]
tenant_id = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = "secret:graph-client-secret"
login_url = "https://login.microsoftonline.com"
api_url = "https://graph.microsoft.com/v1.0"
mail_sender = "facilities@example.com"

[topdesk]
url = "https://example.topdesk.net/tas/api"
username = "orb-operator"
application_password = "secret:topdesk-app-password"
external_link_type = "4711"
poll_interval = "60s"
default_requester_email = "facilities@example.com"

[sync]
mode = "organizer"
horizon_days = 180
carry_subject = true
view_exclude = ["attendees"]

[[rooms]]
mailbox = "room-2.14@example.com"
topdesk_location_id = "c0ffee00-0000-0000-0000-000000000001"
"#;

pub(super) const MINIMAL: &str = r#"
[service]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
data_dir = "/tmp/orb"

[graph]
tenant_id = "t"
client_id = "c"
client_secret = "env:ORB_GRAPH_SECRET"

[topdesk]
url = "http://127.0.0.1:9000/tas/api"
username = "op"
application_password = "env:ORB_TOPDESK_PASSWORD"

[[rooms]]
mailbox = "Room-1@Example.com"
topdesk_location_id = "loc-1"
"#;

fn invalid(text: &str) -> Vec<String> {
    match Config::from_toml_str(text) {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn parse_error(text: &str) -> String {
    match Config::from_toml_str(text) {
        Err(ConfigError::Parse(msg)) => msg,
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn the_documented_example_parses() {
    let c = Config::from_toml_str(EXAMPLE).unwrap();
    assert_eq!(c.service.listen.port(), 8443);
    assert_eq!(c.service.allowed_sources.len(), 1);
    assert_eq!(
        c.graph.client_secret,
        Some(SecretRef::Stored("graph-client-secret".into()))
    );
    assert_eq!(c.topdesk.poll_interval, Duration::from_secs(60));
    assert_eq!(c.sync.view_exclude, ["attendees"]);
    assert_eq!(
        c.notification_url(),
        "https://orb.example.com/graph/notifications"
    );
    assert_eq!(c.lifecycle_url(), "https://orb.example.com/graph/lifecycle");
    assert_eq!(c.graph_scope(), "https://graph.microsoft.com/.default");
}

#[test]
fn defaults_are_documented_values() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(
        c.graph.login_url.as_str(),
        "https://login.microsoftonline.com/"
    );
    assert_eq!(c.graph.api_url.as_str(), "https://graph.microsoft.com/v1.0");
    assert_eq!(c.topdesk.external_link_type, "4711");
    assert_eq!(c.topdesk.poll_interval, Duration::from_secs(60));
    assert_eq!(c.sync.mode, SyncMode::Organizer);
    assert_eq!(c.sync.horizon_days, 180);
    assert!(c.sync.carry_subject);
    assert!(c.sync.view_exclude.is_empty());
    assert!(c.service.allowed_sources.is_empty());
    assert!(c.graph.mail_sender.is_none());
    assert_eq!(
        c.rooms[0].mailbox, "room-1@example.com",
        "mailboxes are lowercased"
    );
}

#[test]
fn unknown_keys_are_named_with_their_place() {
    let msg = parse_error(
        &MINIMAL
            .replace("[sync]", "")
            .replace("[[rooms]]", "[sync]\ncary_subject = false\n\n[[rooms]]"),
    );
    assert!(msg.contains("cary_subject"), "{msg}");
    assert!(msg.contains("line"), "{msg}");
    let msg = parse_error(&format!("{MINIMAL}\n[extra]\na = 1\n"));
    assert!(msg.contains("extra"), "{msg}");
}

#[test]
fn missing_required_keys_are_named() {
    let msg = parse_error(&MINIMAL.replace("username = \"op\"\n", ""));
    assert!(msg.contains("username"), "{msg}");
    let msg = parse_error(&MINIMAL.replace("data_dir = \"/tmp/orb\"\n", ""));
    assert!(msg.contains("data_dir"), "{msg}");
    let msg = parse_error(MINIMAL.split("[[rooms]]").next().unwrap());
    assert!(msg.contains("rooms"), "{msg}");
}

#[test]
fn wrong_value_types_are_parse_errors() {
    let msg = parse_error(&MINIMAL.replace(
        "\"127.0.0.1:8080\"\npublic_url",
        "\"not an address\"\npublic_url",
    ));
    assert!(msg.contains("listen"), "{msg}");
    let msg = parse_error(&format!("{MINIMAL}\n[sync]\nmode = \"sideways\"\n"));
    assert!(msg.contains("sideways") || msg.contains("mode"), "{msg}");
    let msg = parse_error(&MINIMAL.replace(
        "application_password = \"env:ORB_TOPDESK_PASSWORD\"",
        "application_password = \"hunter2\"",
    ));
    assert!(msg.contains("secret:NAME"), "{msg}");
    assert!(
        !msg.contains("hunter2"),
        "a literal secret is never echoed: {msg}"
    );
    let msg = parse_error(&MINIMAL.replace(
        "username = \"op\"",
        "username = \"op\"\npoll_interval = \"soon\"",
    ));
    assert!(msg.contains("poll_interval"), "{msg}");
}

#[test]
fn every_inconsistency_is_listed_at_once() {
    let text = MINIMAL
        .replace(
            "listen = \"127.0.0.1:8080\"",
            "listen = \"0.0.0.0:8080\"\ntls_key_file = \"k.pem\"",
        )
        .replace(
            "public_url = \"http://127.0.0.1:8080\"",
            "public_url = \"http://orb.example.com\"",
        )
        .replace(
            "url = \"http://127.0.0.1:9000/tas/api\"",
            "url = \"http://127.0.0.1:9000/api\"",
        );
    let p = invalid(&text);
    assert!(p.iter().any(|s| s.contains("both or neither")), "{p:?}");
    assert!(
        p.iter().any(|s| s.contains("only listens on loopback")),
        "{p:?}"
    );
    assert!(p.iter().any(|s| s.contains("public_url")), "{p:?}");
    assert!(p.iter().any(|s| s.contains("/tas/api")), "{p:?}");
    assert_eq!(p.len(), 4, "{p:?}");
}

#[test]
fn graph_needs_exactly_one_credential() {
    let none = MINIMAL.replace("client_secret = \"env:ORB_GRAPH_SECRET\"\n", "");
    assert!(invalid(&none)[0].contains("one credential is required"));
    let both = MINIMAL.replace(
        "client_secret = \"env:ORB_GRAPH_SECRET\"",
        "client_secret = \"env:ORB_GRAPH_SECRET\"\nclient_certificate = \"file:/etc/orb/app.pem\"",
    );
    assert!(invalid(&both)[0].contains("not both"));
    let cert = MINIMAL.replace(
        "client_secret = \"env:ORB_GRAPH_SECRET\"",
        "client_certificate = \"file:/etc/orb/app.pem\"",
    );
    assert!(Config::from_toml_str(&cert).is_ok());
}

#[test]
fn rooms_are_unique_and_view_fields_known() {
    let text = format!(
        "{MINIMAL}\n[[rooms]]\nmailbox = \"room-1@example.com\"\ntopdesk_location_id = \"loc-1\"\n\n[sync]\nview_exclude = [\"shoe_size\"]\n"
    );
    let p = invalid(&text);
    assert!(p.iter().any(|s| s.contains("listed twice")), "{p:?}");
    assert!(
        p.iter().any(|s| s.contains("mapped to two mailboxes")),
        "{p:?}"
    );
    assert!(p.iter().any(|s| s.contains("shoe_size")), "{p:?}");
}

#[test]
fn the_master_key_cannot_be_a_stored_secret() {
    let msg = parse_error(&MINIMAL.replace(
        "data_dir = \"/tmp/orb\"",
        "data_dir = \"/tmp/orb\"\nmaster_key = \"secret:mk\"",
    ));
    assert!(msg.contains("master key"), "{msg}");
}

#[test]
fn load_reports_unreadable_files() {
    let err = Config::load(std::path::Path::new("/nonexistent/orb.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read /nonexistent/orb.toml"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orb.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    assert_eq!(Config::load(&path).unwrap().rooms.len(), 1);
}

#[test]
fn monitoring_sources_take_a_cidr_list() {
    let text = EXAMPLE.replace(
        "allowed_sources = [\"52.96.0.0/14\"]",
        "allowed_sources = [\"52.96.0.0/14\"]\nmonitoring_sources = [\"10.0.0.0/8\", \"fd00::/8\"]",
    );
    let c = Config::from_toml_str(&text).unwrap();
    assert_eq!(c.service.monitoring_sources.len(), 2);
    let bad = EXAMPLE.replace(
        "allowed_sources = [\"52.96.0.0/14\"]",
        "monitoring_sources = [\"10.0.0.0/33\"]",
    );
    assert!(Config::from_toml_str(&bad).is_err());
    assert!(
        Config::from_toml_str(EXAMPLE)
            .unwrap()
            .service
            .monitoring_sources
            .is_empty()
    );
}
