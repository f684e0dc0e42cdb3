//! Shared test helpers.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::SystemTime;

use orb_notification_crypto::{EncryptionKeyPair, GenerateOptions, KeyBits};

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/graph-test-vector")
        .join(name)
}

pub(crate) fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// RSA generation is the slow part of these tests: share one 2048-bit pair per id.
pub(crate) fn pair_2048(which: usize) -> &'static EncryptionKeyPair {
    static PAIRS: [OnceLock<EncryptionKeyPair>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    PAIRS[which].get_or_init(|| generate(&format!("cert-{which}"), KeyBits::Rsa2048))
}

pub(crate) fn generate(id: &str, bits: KeyBits) -> EncryptionKeyPair {
    let options = GenerateOptions {
        key_bits: bits,
        ..GenerateOptions::default()
    };
    EncryptionKeyPair::generate(id, &options, SystemTime::now()).unwrap()
}

/// A fresh copy of a shared pair (the ring takes ownership).
pub(crate) fn clone_pair(pair: &EncryptionKeyPair) -> EncryptionKeyPair {
    let key = orb_notification_crypto::DecryptionKey::from_pem(&pair.key().to_pkcs8_pem()).unwrap();
    EncryptionKeyPair::from_parts(pair.id(), pair.certificate().clone(), key).unwrap()
}
