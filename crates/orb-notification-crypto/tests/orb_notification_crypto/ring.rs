//! Several certificates at once: round trips per key size, rotation and retirement.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use orb_notification_crypto::{
    Certificate, GenerateOptions, KeyBits, KeyRing, NotificationCollection, seal,
};

use super::common::{clone_pair, generate, pair_2048};

#[test]
fn round_trip_for_each_key_size() {
    let payload = vec![b'x'; 2048];
    for (bits, n) in [
        (KeyBits::Rsa2048, 2048),
        (KeyBits::Rsa3072, 3072),
        (KeyBits::Rsa4096, 4096),
    ] {
        let pair = generate(&format!("rt-{n}"), bits);
        assert_eq!(pair.key().bits(), n);
        assert_eq!(pair.certificate().bits(), n);
        let sealed = seal(&payload, pair.certificate(), pair.id()).unwrap();
        assert_eq!(
            sealed.encryption_certificate_thumbprint,
            pair.certificate().thumbprint_hex()
        );
        let mut ring = KeyRing::new();
        ring.insert(pair, SystemTime::now());
        assert_eq!(ring.decrypt(&sealed).unwrap(), payload, "{n} bits");
    }
}

#[test]
fn collection_with_two_certificate_ids_during_rotation() {
    let now = SystemTime::now();
    let (old, new) = (pair_2048(0), pair_2048(1));
    let items: Vec<_> = [(old, "old event"), (new, "new event"), (old, "late old event")]
        .iter()
        .map(|(pair, subject)| {
            let plain = serde_json::json!({"subject": subject}).to_string();
            let content = seal(plain.as_bytes(), pair.certificate(), pair.id()).unwrap();
            serde_json::json!({"subscriptionId": "s", "changeType": "updated", "encryptedContent": content})
        })
        .collect();
    let body = serde_json::json!({"value": items}).to_string();
    let collection = NotificationCollection::from_json(body.as_bytes()).unwrap();

    let mut ring = KeyRing::new();
    ring.insert(clone_pair(old), now);
    ring.insert(clone_pair(new), now + Duration::from_secs(1));
    assert_eq!(
        ring.current(now + Duration::from_secs(2)).unwrap().0,
        new.id()
    );

    let subjects: Vec<String> = collection
        .value
        .iter()
        .map(|item| {
            let plain = ring
                .decrypt(&item.encrypted_content().unwrap().unwrap())
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&plain).unwrap()["subject"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(subjects, ["old event", "new event", "late old event"]);
}

#[test]
fn old_keys_retire_only_after_unused_for_the_grace_period() {
    let t0 = SystemTime::now();
    let grace = Duration::from_secs(3600);
    let (old, new) = (pair_2048(0), pair_2048(1));
    let mut ring = KeyRing::new();
    ring.insert(clone_pair(old), t0);
    ring.insert(clone_pair(new), t0 + Duration::from_secs(10));

    // A subscription still uses the old certificate: nothing goes.
    let both: HashSet<&str> = [old.id(), new.id()].into();
    assert!(
        ring.retire_unused(&both, t0 + Duration::from_secs(20), grace)
            .is_empty()
    );

    // Renewed onto the new certificate: the old one is unused from now on, but stays.
    let only_new: HashSet<&str> = [new.id()].into();
    let t1 = t0 + Duration::from_secs(100);
    assert!(ring.retire_unused(&only_new, t1, grace).is_empty());
    let late = seal(b"{}", old.certificate(), old.id()).unwrap();
    assert!(ring.retire_unused(&only_new, t1 + grace, grace).is_empty());
    assert_eq!(ring.decrypt(&late).unwrap(), b"{}");

    // Past the grace period it is dropped; the current one never is.
    let dropped = ring.retire_unused(&HashSet::new(), t1 + grace + Duration::from_secs(1), grace);
    assert_eq!(dropped, [old.id().to_owned()]);
    assert_eq!(ring.len(), 1);
    assert!(ring.decrypt(&late).is_err());
}

#[test]
fn rotation_is_due_by_age_or_expiry() {
    let t0 = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let mut ring = KeyRing::new();
    assert!(ring.needs_rotation(t0, 30 * day, 7 * day));
    let options = GenerateOptions {
        validity: 10 * day,
        ..GenerateOptions::default()
    };
    let pair = orb_notification_crypto::EncryptionKeyPair::generate("short", &options, t0).unwrap();
    ring.insert(pair, t0);
    assert!(!ring.needs_rotation(t0 + day, 30 * day, 7 * day));
    assert!(
        ring.needs_rotation(t0 + 4 * day, 30 * day, 7 * day),
        "expires within 7 days"
    );
    assert!(
        ring.needs_rotation(t0 + 2 * day, day, Duration::ZERO),
        "older than a day"
    );
    // Expired: no current certificate at all.
    assert!(ring.current(t0 + 11 * day).is_none());
}

#[test]
fn generated_certificate_is_graph_ready() {
    let t0 = SystemTime::now();
    let pair = pair_2048(2);
    let cert = pair.certificate();
    cert.check_valid_at(t0).unwrap();
    assert!(
        cert.check_valid_at(t0 + Duration::from_secs(91 * 86_400))
            .is_err()
    );
    assert!(cert.check_valid_at(t0 - Duration::from_secs(3600)).is_err());
    // encryptionCertificate is base64 DER that parses back to the same certificate.
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(cert.to_base64_der())
        .unwrap();
    assert_eq!(
        Certificate::from_der(&der).unwrap().thumbprint(),
        cert.thumbprint()
    );
    assert_eq!(
        Certificate::from_pem(&cert.to_pem()).unwrap().thumbprint(),
        cert.thumbprint()
    );
    // The stored key reloads and still decrypts.
    let reloaded =
        orb_notification_crypto::DecryptionKey::from_pem(&pair.key().to_pkcs8_pem()).unwrap();
    let c = seal(b"{\"a\":1}", cert, pair.id()).unwrap();
    assert_eq!(
        orb_notification_crypto::decrypt_with(&c, &reloaded, Some(cert)).unwrap(),
        b"{\"a\":1}"
    );
}

#[test]
fn rejects_certificates_graph_would_reject() {
    assert!(Certificate::from_der(b"not a certificate").is_err());
    assert!(
        Certificate::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .is_err()
    );
    // An EC certificate: Graph requires RSA.
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ec".to_owned()])
        .unwrap()
        .self_signed(&ec)
        .unwrap();
    let err = Certificate::from_der(cert.der()).unwrap_err();
    assert!(err.to_string().contains("not RSA"), "{err}");
}
