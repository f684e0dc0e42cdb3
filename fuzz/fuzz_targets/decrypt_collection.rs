//! Fuzzes what the webhook worker does with an untrusted POST body: parse it as a
//! notification collection, then try to decrypt every item's `encryptedContent` — against
//! the key of Microsoft's test vector (id `custom-id-for-testing`, so mutations of the seed
//! corpus reach the HMAC, unwrap and padding checks) and a bare wildcard key.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use orb_notification_crypto::{
    Certificate, DecryptionKey, EncryptionKeyPair, KeyRing, NotificationCollection,
};

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/graph-test-vector/");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}{f}")).expect("fixture");
        let key = DecryptionKey::from_pem(&read("private-key.pkcs8.pem")).expect("key");
        let cert = Certificate::from_pem(&read("certificate.pem")).expect("cert");
        let pair = EncryptionKeyPair::from_parts("custom-id-for-testing", cert, key).expect("pair");
        let wildcard = DecryptionKey::from_pem(&read("private-key.pkcs1.pem")).expect("key");
        let mut ring = KeyRing::new();
        ring.insert(pair, SystemTime::UNIX_EPOCH);
        ring.insert_key(None, wildcard, SystemTime::UNIX_EPOCH);
        ring
    })
}

fuzz_target!(|body: &[u8]| {
    let Ok(collection) = NotificationCollection::from_json(body) else {
        return;
    };
    for item in &collection.value {
        if let Some(Ok(content)) = item.encrypted_content() {
            let _ = ring().decrypt(&content);
        }
    }
});
