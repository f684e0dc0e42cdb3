//! Local state: master key, secrets and the certificate ring across rotations.

use std::collections::HashSet;
use std::time::Duration;

use orb_notification_crypto::{GenerateOptions, seal};
use orb_service::config::{Config, SecretRef};
use orb_service::state;
use orb_store::Timestamp;

fn config(dir: &std::path::Path) -> Config {
    Config::from_toml_str(&format!(
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
application_password = "env:ORB_TEST_SURELY_UNSET_VARIABLE"
[[rooms]]
mailbox = "room-1@example.com"
topdesk_location_id = "loc-1"
"#,
        dir.display()
    ))
    .unwrap()
}

#[test]
fn first_open_creates_the_master_key_and_reopen_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let opened = state::open(&c).unwrap();
    assert!(opened.created_master_key);
    state::set_secret(&opened.store, "graph-client-secret", b"hunter2\n").unwrap();
    drop(opened);
    let reopened = state::open(&c).unwrap();
    assert!(!reopened.created_master_key);
    let secret =
        state::resolve_secret(&reopened.store, c.graph.client_secret.as_ref().unwrap()).unwrap();
    assert_eq!(
        secret.expose(),
        b"hunter2",
        "the trailing newline is not part of it"
    );
    // Never plaintext on disk.
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(7).any(|w| w == b"hunter2"),
            "{} holds the secret",
            entry.display()
        );
    }
}

#[test]
fn missing_secrets_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let opened = state::open(&c).unwrap();
    let err = state::resolve_secret(
        &opened.store,
        &SecretRef::Stored("graph-client-secret".into()),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("orb secrets set graph-client-secret"),
        "{err}"
    );
    let err = state::resolve_secret(&opened.store, &c.topdesk.application_password).unwrap_err();
    assert!(
        err.to_string().contains("ORB_TEST_SURELY_UNSET_VARIABLE"),
        "{err}"
    );
}

#[test]
fn rotation_keeps_old_keys_decrypting_until_retired() {
    let dir = tempfile::tempdir().unwrap();
    let opened = state::open(&config(dir.path())).unwrap();
    let store = &opened.store;
    let t0 = Timestamp::from_second(1_800_000_000).unwrap();
    let options = GenerateOptions::default();
    let first = state::rotate(store, &options, t0).unwrap();
    let ring = state::load_ring(store).unwrap();
    let (current, cert) = ring.current(state::to_system(t0)).unwrap();
    assert_eq!(current, first);
    let late = seal(b"{\"n\":1}", cert, &first).unwrap();

    let t1 = t0 + jiff::SignedDuration::from_hours(24 * 30);
    let second = state::rotate(store, &options, t1).unwrap();
    assert_ne!(first, second);
    let ring = state::load_ring(store).unwrap();
    assert_eq!(ring.current(state::to_system(t1)).unwrap().0, second);
    assert_eq!(
        ring.decrypt(&late).unwrap(),
        b"{\"n\":1}",
        "the previous key still decrypts"
    );

    // Still in use by a subscription: kept, however old.
    let grace = Duration::from_secs(3600);
    let t2 = t1 + jiff::SignedDuration::from_hours(5);
    let in_use: HashSet<&str> = [first.as_str()].into();
    assert!(
        state::retire_unused(store, &in_use, t2, grace)
            .unwrap()
            .is_empty()
    );
    // Unused but within the grace period: kept.
    let soon = t1 + jiff::SignedDuration::from_mins(30);
    assert!(
        state::retire_unused(store, &HashSet::new(), soon, grace)
            .unwrap()
            .is_empty()
    );
    // Unused and past the grace period: retired, and no longer in the ring.
    assert_eq!(
        state::retire_unused(store, &HashSet::new(), t2, grace).unwrap(),
        std::slice::from_ref(&first)
    );
    let ring = state::load_ring(store).unwrap();
    assert!(ring.decrypt(&late).is_err());
    assert_eq!(ring.len(), 1);
}

#[test]
fn rotations_in_the_same_instant_get_distinct_ids() {
    let dir = tempfile::tempdir().unwrap();
    let opened = state::open(&config(dir.path())).unwrap();
    let t = Timestamp::from_second(1_800_000_000).unwrap();
    let a = state::rotate(&opened.store, &GenerateOptions::default(), t).unwrap();
    let b = state::rotate(&opened.store, &GenerateOptions::default(), t).unwrap();
    assert_ne!(a, b);
    assert_eq!(opened.store.encryption_keys().unwrap().len(), 2);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
