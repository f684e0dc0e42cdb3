//! `orb notification decrypt`: output, exit codes 0/1/2, one stderr line per failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::SystemTime;

use orb_notification_crypto::{EncryptionKeyPair, GenerateOptions, seal};
use serde_json::{Value, json};

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/graph-test-vector")
        .join(name)
}

fn orb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orb"))
        .args(args)
        .output()
        .unwrap()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

struct Keys {
    dir: tempfile::TempDir,
    a: EncryptionKeyPair,
    b: EncryptionKeyPair,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let a = EncryptionKeyPair::generate("cert-a", &GenerateOptions::default(), now).unwrap();
        let b = EncryptionKeyPair::generate("cert-b", &GenerateOptions::default(), now).unwrap();
        std::fs::write(dir.path().join("a.pem"), a.key().to_pkcs8_pem().as_bytes()).unwrap();
        std::fs::write(dir.path().join("b.pem"), b.key().to_pkcs8_pem().as_bytes()).unwrap();
        Keys { dir, a, b }
    })
}

fn key_arg(id: &str, file: &str) -> String {
    format!("{id}={}", keys().dir.path().join(file).display())
}

fn write_collection(items: &[Value]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), json!({"value": items}).to_string()).unwrap();
    file
}

fn item(pair: &EncryptionKeyPair, plain: &[u8]) -> Value {
    json!({"subscriptionId": "s", "changeType": "updated",
           "encryptedContent": seal(plain, pair.certificate(), pair.id()).unwrap()})
}

#[test]
fn microsofts_vector_prints_the_resource_as_one_compact_line() {
    let key = format!(
        "custom-id-for-testing={}",
        vector("private-key.pkcs8.pem").display()
    );
    let out = orb(&[
        "notification",
        "decrypt",
        "--key",
        &key,
        vector("notification-collection.json").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(vector("expected-plaintext.json")).unwrap();
    assert_eq!(lines(&out.stdout), [expected]);
    assert!(out.stderr.is_empty());
}

#[test]
fn bare_key_serves_any_id_and_pkcs1_is_accepted() {
    let out = orb(&[
        "notification",
        "decrypt",
        "--key",
        vector("private-key.pkcs1.pem").to_str().unwrap(),
        vector("notification-collection.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lines(&out.stdout).len(), 1);
}

#[test]
fn keys_are_chosen_by_certificate_id_and_order_is_kept() {
    let k = keys();
    let items: Vec<Value> = (0..40)
        .map(|i| {
            let pair = if i % 3 == 0 { &k.a } else { &k.b };
            item(
                pair,
                json!({"n": i, "subject": "Weekly"}).to_string().as_bytes(),
            )
        })
        .collect();
    let file = write_collection(&items);
    let out = orb(&[
        "notification",
        "decrypt",
        "--key",
        &key_arg("cert-a", "a.pem"),
        "--key",
        &key_arg("cert-b", "b.pem"),
        file.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ns: Vec<i64> = lines(&out.stdout)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ns, (0..40).collect::<Vec<_>>());
}

#[test]
fn failed_items_are_reported_one_line_each_and_the_rest_still_printed() {
    let k = keys();
    let mut tampered = item(&k.a, b"{\"ok\":false}");
    let sig = tampered["encryptedContent"]["dataSignature"]
        .as_str()
        .unwrap()
        .to_owned();
    // Change the first base64 digit: the signature stays well-formed but wrong.
    let first = if sig.starts_with('A') { "B" } else { "A" };
    let flipped = format!("{first}{}", &sig[1..]);
    tampered["encryptedContent"]["dataSignature"] = json!(flipped);
    let mut bad_b64 = item(&k.a, b"{}");
    bad_b64["encryptedContent"]["data"] = json!("not*base64");
    let items = vec![
        item(&k.a, b"{\"ok\":1}"),
        tampered,
        json!({"subscriptionId": "s", "lifecycleEvent": "missed"}),
        item(&k.a, b"plain text, not JSON"),
        bad_b64,
        item(&k.b, b"{\"ok\":5}"),
        json!({"encryptedContent": {"data": "AAAA"}}),
        item(&k.a, b"{\"ok\":7}"),
    ];
    let file = write_collection(&items);
    let out = orb(&[
        "notification",
        "decrypt",
        "--key",
        &key_arg("cert-a", "a.pem"),
        file.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out.stdout), ["{\"ok\":1}", "{\"ok\":7}"]);
    let err = lines(&out.stderr);
    assert_eq!(err.len(), 5, "{err:?}");
    assert!(
        err[0].starts_with("item 1: signature (HMAC) mismatch"),
        "{}",
        err[0]
    );
    assert!(
        err[1].starts_with("item 3: decrypted content is not JSON"),
        "{}",
        err[1]
    );
    assert_eq!(err[2], "item 4: invalid base64 in data");
    assert_eq!(err[3], "item 5: unknown certificate id \"cert-b\"");
    assert!(
        err[4].starts_with("item 6: malformed encryptedContent"),
        "{}",
        err[4]
    );
}

#[test]
fn data_key_for_another_key_is_named() {
    let k = keys();
    let file = write_collection(&[item(&k.b, b"{}")]);
    // b's item, but a's key registered under b's id.
    let out = orb(&[
        "notification",
        "decrypt",
        "--key",
        &key_arg("cert-b", "a.pem"),
        file.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // A bare PEM key carries no certificate, so the RSA unwrap is what refuses it.
    assert_eq!(
        lines(&out.stderr),
        ["item 0: data key could not be unwrapped (encrypted for another key, or altered)"]
    );
}

#[test]
fn unusable_input_exits_2() {
    let k = keys();
    let good_key = key_arg("cert-a", "a.pem");
    let coll = write_collection(&[item(&k.a, b"{}")]);
    let not_collection = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_collection.path(), b"[1,2,3]").unwrap();
    let garbage_key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        garbage_key.path(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec![
            "--key".into(),
            good_key.clone(),
            "/nonexistent/collection.json".into(),
        ],
        vec![
            "--key".into(),
            good_key.clone(),
            not_collection.path().display().to_string(),
        ],
        vec![
            "--key".into(),
            "cert-a=/nonexistent/key.pem".into(),
            coll.path().display().to_string(),
        ],
        vec![
            "--key".into(),
            garbage_key.path().display().to_string(),
            coll.path().display().to_string(),
        ],
        vec![coll.path().display().to_string()],
    ];
    for case in cases {
        let mut args = vec!["notification", "decrypt"];
        args.extend(case.iter().map(String::as_str));
        let out = orb(&args);
        assert_eq!(out.status.code(), Some(2), "{case:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn help_on_every_level() {
    for args in [
        &["--help"][..],
        &["notification", "--help"],
        &["notification", "decrypt", "--help"],
    ] {
        let out = orb(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8(out.stdout).unwrap().contains("Usage"));
    }
}
