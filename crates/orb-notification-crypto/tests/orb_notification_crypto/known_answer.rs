//! Microsoft's own encrypted notification (msgraph-sdk-dotnet-core test vector).

use std::time::SystemTime;

use orb_notification_crypto::{
    Certificate, DecryptionKey, EncryptionKeyPair, KeyRing, NotificationCollection, decrypt_with,
};

use super::common::read_fixture;

fn vector_content() -> orb_notification_crypto::EncryptedContent {
    let collection =
        NotificationCollection::from_json(read_fixture("notification-collection.json").as_bytes())
            .unwrap();
    collection.value[0].encrypted_content().unwrap().unwrap()
}

#[test]
fn decrypts_microsofts_vector_with_pkcs8_key() {
    let key = DecryptionKey::from_pem(&read_fixture("private-key.pkcs8.pem")).unwrap();
    assert_eq!(key.bits(), 4096);
    let cert = Certificate::from_pem(&read_fixture("certificate.pem")).unwrap();
    let plain = decrypt_with(&vector_content(), &key, Some(&cert)).unwrap();
    assert_eq!(plain, read_fixture("expected-plaintext.json").as_bytes());
}

#[test]
fn decrypts_microsofts_vector_with_pkcs1_key() {
    let key = DecryptionKey::from_pem(&read_fixture("private-key.pkcs1.pem")).unwrap();
    let plain = decrypt_with(&vector_content(), &key, None).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(json["etag"], "1625126194597");
    assert_eq!(json["body"]["content"], "Hello World");
}

#[test]
fn thumbprint_is_uppercase_sha1_of_der() {
    let cert = Certificate::from_pem(&read_fixture("certificate.pem")).unwrap();
    assert_eq!(
        cert.thumbprint_hex(),
        "4B95353E086AD37196606ACF834A14532F03E6DB"
    );
    assert_eq!(cert.bits(), 4096);
    assert_eq!(
        vector_content().encryption_certificate_thumbprint,
        cert.thumbprint_hex()
    );
}

#[test]
fn ring_with_vector_certificate_decrypts_by_id() {
    let key = DecryptionKey::from_pem(&read_fixture("private-key.pkcs8.pem")).unwrap();
    let cert = Certificate::from_pem(&read_fixture("certificate.pem")).unwrap();
    let pair = EncryptionKeyPair::from_parts("custom-id-for-testing", cert, key).unwrap();
    let mut ring = KeyRing::new();
    ring.insert(pair, SystemTime::now());
    let plain = ring.decrypt(&vector_content()).unwrap();
    assert_eq!(plain, read_fixture("expected-plaintext.json").as_bytes());
}

#[test]
fn certificate_must_match_key() {
    let key = DecryptionKey::from_pem(&read_fixture("private-key.pkcs8.pem")).unwrap();
    let other = super::common::pair_2048(0);
    let err = EncryptionKeyPair::from_parts("x", other.certificate().clone(), key).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}
