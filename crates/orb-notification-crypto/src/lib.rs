//! Microsoft Graph rich-notification crypto: verifies and decrypts the `encryptedContent`
//! of each change notification (RSA-OAEP-SHA1 key unwrap on aws-lc-rs, HMAC-SHA256 checked
//! in constant time before AES-256-CBC decryption), seals content the way Graph does (for
//! the emulator and benchmarks), manages the ring of encryption certificates across
//! rotations, validates Graph's `validationTokens` (JWT) and compares `clientState`
//! secrets in constant time.
//!
//! It performs no I/O and reads no clock: keys, JWKS documents and `now` are passed in.
//! It never logs, and no `Debug` output or error message carries key material, data keys
//! or decrypted content.
//!
//! ```
//! use std::time::SystemTime;
//! use orb_notification_crypto::{EncryptionKeyPair, GenerateOptions, KeyRing, seal};
//!
//! let now = SystemTime::now();
//! let pair = EncryptionKeyPair::generate("cert-2026-11", &GenerateOptions::default(), now)?;
//! let sealed = seal(br#"{"subject":"Budget"}"#, pair.certificate(), pair.id())?;
//! let mut ring = KeyRing::new();
//! ring.insert(pair, now);
//! assert_eq!(ring.decrypt(&sealed)?, br#"{"subject":"Budget"}"#);
//! # Ok::<(), orb_notification_crypto::Error>(())
//! ```

mod content;
mod error;
pub mod jwt;
mod keys;
mod notification;
mod ring;

pub use content::{EncryptedContent, decrypt_with, seal};
pub use error::Error;
pub use keys::{
    Certificate, DecryptionKey, EncryptionKeyPair, GenerateOptions, KeyBits,
    MAX_CERTIFICATE_ID_LEN, MAX_KEY_BITS, MIN_KEY_BITS,
};
pub use notification::{ChangeNotification, NotificationCollection};
pub use ring::{KeyRing, RingCertificate};

/// Compares a notification's `clientState` with the subscription's in constant time
/// (for equal lengths; the length itself is not secret: orb generates fixed-length states).
pub fn client_state_eq(received: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    received.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_state_comparison() {
        assert!(client_state_eq("abc", "abc"));
        assert!(!client_state_eq("abc", "abd"));
        assert!(!client_state_eq("abc", "abcd"));
        assert!(!client_state_eq("", "a"));
    }
}
