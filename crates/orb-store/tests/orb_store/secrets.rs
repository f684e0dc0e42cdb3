//! Secrets, encryption keys and the master key.

use orb_store::{EncryptionKey, Error, KeyState, MasterKey, SecretBytes, Store};

use super::common::{bytes_on_disk, fresh, key, open, ts};

const PLAINTEXT: &[u8] = b"graph-client-secret-value-7f3a9c";

#[test]
fn secrets_round_trip_and_are_never_plaintext_on_disk() {
    let (dir, store) = fresh();
    store
        .set_secret("graph-client-secret", &SecretBytes::new(PLAINTEXT))
        .unwrap();
    store
        .set_secret("topdesk-app-password", &"pw-123456".into())
        .unwrap();
    assert_eq!(
        store
            .secret("graph-client-secret")
            .unwrap()
            .unwrap()
            .expose(),
        PLAINTEXT
    );
    assert_eq!(
        store.secret_names().unwrap(),
        ["graph-client-secret", "topdesk-app-password"]
    );
    assert!(store.secret("missing").unwrap().is_none());
    store.delete_secret("topdesk-app-password").unwrap();
    assert!(store.secret("topdesk-app-password").unwrap().is_none());
    drop(store);
    assert!(!bytes_on_disk(dir.path(), PLAINTEXT));
    let store = open(&dir.path().join("db"));
    assert_eq!(
        store
            .secret("graph-client-secret")
            .unwrap()
            .unwrap()
            .expose(),
        PLAINTEXT
    );
    assert_eq!(
        format!("{:?}", store.secret("graph-client-secret").unwrap()),
        "Some(SecretBytes(<redacted>))"
    );
}

#[test]
fn wrong_master_key_is_a_clear_error() {
    let (dir, store) = fresh();
    store.set_secret("s", &"v".into()).unwrap();
    drop(store);
    let err = Store::open(dir.path().join("db"), &MasterKey::from_bytes([1; 32])).unwrap_err();
    assert!(matches!(err, Error::WrongMasterKey), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the master key does not match this state store (wrong key file or variable?)"
    );
    // The right key still works: the failed open changed nothing.
    assert!(open(&dir.path().join("db")).secret("s").unwrap().is_some());
}

#[test]
fn encryption_key_ring_round_trips_encrypted() {
    let (dir, store) = fresh();
    let private = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";
    let current = EncryptionKey::new(
        "cert-2",
        "-----BEGIN CERTIFICATE-----\nB\n",
        SecretBytes::new(private.to_vec()),
        ts(0),
        ts(86_400 * 90),
        KeyState::Current,
    );
    let previous = EncryptionKey::new(
        "cert-1",
        "-----BEGIN CERTIFICATE-----\nA\n",
        SecretBytes::new(b"old".to_vec()),
        ts(-86_400),
        ts(86_400),
        KeyState::Previous,
    );
    store.put_encryption_key(&current).unwrap();
    store.put_encryption_key(&previous).unwrap();
    assert_eq!(
        store.encryption_key("cert-2").unwrap(),
        Some(current.clone())
    );
    assert_eq!(
        store.encryption_keys().unwrap(),
        vec![previous, current.clone()]
    );
    store.delete_encryption_key("cert-1").unwrap();
    assert_eq!(store.encryption_keys().unwrap(), vec![current.clone()]);
    assert!(!format!("{current:?}").contains("PRIVATE"));
    drop(store);
    assert!(!bytes_on_disk(
        dir.path(),
        b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    ));
}

#[test]
fn master_key_file_is_created_0600_and_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, created) = MasterKey::load_or_create(dir.path()).unwrap();
    assert!(created);
    let path = dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (k2, created) = MasterKey::load_or_create(dir.path()).unwrap();
    assert!(!created);
    assert_eq!(k1.to_base64(), k2.to_base64());
    let k3 = MasterKey::load(&format!("file:{}", path.display())).unwrap();
    assert_eq!(k1.to_base64(), k3.to_base64());
    // Never overwrites an existing key.
    let err = MasterKey::create_file(&path).unwrap_err();
    assert!(matches!(err, Error::MasterKeyFile { .. }), "{err:?}");
    // A store opened with the file's key reopens with the loaded key.
    let db = dir.path().join("db");
    Store::open(&db, &k1)
        .unwrap()
        .set_secret("x", &"y".into())
        .unwrap();
    assert!(
        Store::open(&db, &k3)
            .unwrap()
            .secret("x")
            .unwrap()
            .is_some()
    );
}

#[test]
fn bad_master_key_sources_are_clear_errors_without_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    std::fs::write(&path, "c2hvcnQ=\n").unwrap();
    let err = MasterKey::load(&format!("file:{}", path.display())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid master key: expected 32 bytes after base64 decoding, found 5"
    );
    let err = MasterKey::load("file:/nonexistent/orb/master.key").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot access master key file /nonexistent/orb/master.key"
    );
    let err = MasterKey::load("env:ORB_STORE_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
    assert!(
        err.to_string()
            .contains("ORB_STORE_TEST_SURELY_UNSET_VARIABLE")
    );
    assert!(MasterKey::load("literal-key").is_err());
    let _ = key();
}
