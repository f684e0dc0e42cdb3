//! `orb secrets set`, `orb certs rotate`, `orb certs list` against a real data dir.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("orb.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[service]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
data_dir = "{}"
[graph]
tenant_id = "t"
client_id = "c"
client_secret = "secret:graph-client-secret"
[topdesk]
url = "http://127.0.0.1:9000/tas/api"
username = "op"
application_password = "secret:topdesk-app-password"
[[rooms]]
mailbox = "room-1@example.com"
topdesk_location_id = "loc-1"
"#,
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn orb(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // orb may refuse its arguments and exit before reading stdin (a closed pipe then is
    // expected, not a failure); what matters is its exit code and output.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn secrets_are_stored_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let cfg = config.to_str().unwrap();
    let out = orb(
        &["secrets", "set", "graph-client-secret", "--config", cfg],
        b"correct horse battery\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("master.key"),
        "first use warns about the generated key: {err}"
    );
    assert!(err.contains("secret:graph-client-secret"));
    assert!(!err.contains("horse"));
    assert!(dir.path().join("data/master.key").exists());

    // Empty input and bad names are refused.
    assert_eq!(
        orb(&["secrets", "set", "x", "--config", cfg], b"\n")
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        orb(&["secrets", "set", "a b", "--config", cfg], b"v")
            .status
            .code(),
        Some(2)
    );
    // A broken configuration is a clear error, exit 2.
    let out = orb(
        &["secrets", "set", "x", "--config", "/nonexistent.toml"],
        b"v",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .starts_with("orb: cannot read /nonexistent.toml")
    );
}

#[test]
fn certs_rotate_then_list() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let cfg = config.to_str().unwrap();
    let out = orb(&["certs", "list", "--config", cfg], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("no certificates yet")
    );

    for _ in 0..2 {
        let out = orb(
            &["certs", "rotate", "--config", cfg, "--validity", "30d"],
            b"",
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = orb(&["certs", "list", "--config", cfg], b"");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains(" previous "), "{text}");
    assert!(lines[1].contains(" current "), "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.split_whitespace().nth(2).unwrap().len() == 40),
        "thumbprints: {text}"
    );
    assert!(!text.contains("PRIVATE KEY"));

    let out = orb(&["certs", "rotate", "--config", cfg, "--bits", "1024"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn permissions_lists_exactly_what_is_needed() {
    let names = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("(application permission"))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let out = orb(&["permissions"], b"");
    assert_eq!(out.status.code(), Some(0));
    let all = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        names(&all),
        [
            "Calendars.Read",
            "Calendars.ReadWrite",
            "Place.Read.All",
            "Mail.Send"
        ]
    );
    assert!(all.contains("/users/{sender}/sendMail"));

    // A configuration without mail_sender needs no Mail.Send at all.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let out = orb(&["permissions", "--config", config.to_str().unwrap()], b"");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        names(&text),
        ["Calendars.Read", "Calendars.ReadWrite", "Place.Read.All"]
    );
    assert!(!text.contains("Mail.Send"));
}
