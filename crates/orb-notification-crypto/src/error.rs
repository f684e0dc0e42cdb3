//! The one error type of this crate.

/// Everything that can go wrong while verifying or decrypting a notification, or while
/// handling encryption certificates and keys.
///
/// Messages name the cause in plain words and never carry key material, data keys,
/// ciphertext or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A base64 field of `encryptedContent` could not be decoded.
    #[error("invalid base64 in {field}")]
    InvalidBase64 {
        /// The JSON field name (`data`, `dataKey` or `dataSignature`).
        field: &'static str,
    },
    /// No key is known for the item's `encryptionCertificateId`.
    #[error("unknown certificate id {id:?}")]
    UnknownCertificateId {
        /// The id the item named.
        id: String,
    },
    /// The item's `encryptionCertificateThumbprint` is not the thumbprint of the
    /// certificate registered under its id.
    #[error("certificate thumbprint mismatch for certificate id {id:?}")]
    ThumbprintMismatch {
        /// The certificate id the item named.
        id: String,
    },
    /// RSA-OAEP (SHA-1) could not unwrap `dataKey`: it was made for another key or altered.
    #[error("data key could not be unwrapped (encrypted for another key, or altered)")]
    KeyUnwrap,
    /// The unwrapped data key does not have the 32 bytes AES-256 needs.
    #[error("data key has {0} bytes, expected 32")]
    KeyLength(usize),
    /// HMAC-SHA256 over the ciphertext does not match `dataSignature`.
    #[error("signature (HMAC) mismatch: data altered or signed with another key")]
    SignatureMismatch,
    /// `data` decoded to zero bytes.
    #[error("empty data")]
    EmptyData,
    /// The ciphertext is not a whole number of AES blocks.
    #[error("ciphertext length {0} is not a multiple of 16")]
    CiphertextLength(usize),
    /// The decrypted data does not end in valid PKCS#7 padding.
    #[error("invalid padding")]
    InvalidPadding,
    /// A private key could not be read.
    #[error("invalid private key: {0}")]
    InvalidKey(&'static str),
    /// A certificate could not be read or is not acceptable to Graph.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// A certificate id Graph would not accept (empty, or longer than 128 characters).
    #[error("invalid certificate id: must be 1 to 128 characters")]
    InvalidCertificateId,
    /// Generating a key pair or a certificate failed.
    #[error("certificate generation failed")]
    Generation(#[source] rcgen::Error),
    /// The random number generator or another primitive failed unexpectedly.
    #[error("cryptographic primitive failed")]
    Primitive,
    /// The input is not a Graph change-notification collection.
    #[error("not a notification collection: {0}")]
    NotACollection(#[source] serde_json::Error),
    /// An item's `encryptedContent` lacks a field or has the wrong shape.
    #[error("malformed encryptedContent: {0}")]
    MalformedContent(#[source] serde_json::Error),
    /// The decrypted resource is not JSON.
    #[error("decrypted content is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
}

impl Error {
    /// True when the failure says the notification itself is forged or damaged (as
    /// opposed to orb missing a key it should have): count it as a rejection, never retry.
    pub fn is_tampering(&self) -> bool {
        matches!(
            self,
            Self::InvalidBase64 { .. }
                | Self::ThumbprintMismatch { .. }
                | Self::KeyUnwrap
                | Self::KeyLength(_)
                | Self::SignatureMismatch
                | Self::EmptyData
                | Self::CiphertextLength(_)
                | Self::InvalidPadding
                | Self::MalformedContent(_)
                | Self::NotJson(_)
        )
    }
}
