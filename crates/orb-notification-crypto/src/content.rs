//! One item's `encryptedContent`: decrypt (orb's side) and seal (Graph's side).
//!
//! The scheme, verified against Microsoft's own test vector
//! (`fixtures/graph-test-vector/`): a fresh 32-byte key per item, wrapped with RSA-OAEP
//! (SHA-1, MGF1-SHA-1) for the subscription's certificate; `data` = AES-256-CBC with
//! IV = key\[0..16\] and PKCS#7 padding; `dataSignature` = HMAC-SHA256(key, ciphertext).

use aes::Aes256;
use aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;
use crate::keys::{Certificate, DecryptionKey};

/// The `encryptedContent` object of a rich change notification, as Graph sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptedContent {
    /// Base64 AES-256-CBC ciphertext of the resource JSON.
    pub data: String,
    /// Base64 RSA-OAEP-wrapped symmetric key.
    pub data_key: String,
    /// Base64 HMAC-SHA256 of the ciphertext bytes.
    pub data_signature: String,
    /// Our label for the certificate the key was wrapped for.
    pub encryption_certificate_id: String,
    /// Uppercase hex SHA-1 of that certificate's DER.
    #[serde(default)]
    pub encryption_certificate_thumbprint: String,
}

/// Decrypts one item with a given private key.
///
/// `certificate`, when known, is checked against the item's thumbprint first. The order
/// of the remaining checks is deliberate: all base64 and length checks happen before the
/// (expensive) RSA operation, so garbage costs nothing; the HMAC is verified, in constant
/// time, before any byte is decrypted; the symmetric key is zeroized on return.
pub fn decrypt_with(
    content: &EncryptedContent,
    key: &DecryptionKey,
    certificate: Option<&Certificate>,
) -> Result<Vec<u8>, Error> {
    if let Some(cert) = certificate
        && !thumbprint_matches(
            &content.encryption_certificate_thumbprint,
            cert.thumbprint(),
        )
    {
        return Err(Error::ThumbprintMismatch {
            id: content.encryption_certificate_id.clone(),
        });
    }
    let wrapped = decode(&content.data_key, "dataKey")?;
    let signature = decode(&content.data_signature, "dataSignature")?;
    let mut data = decode(&content.data, "data")?;
    if data.is_empty() {
        return Err(Error::EmptyData);
    }
    if data.len() % 16 != 0 {
        return Err(Error::CiphertextLength(data.len()));
    }

    let sym = key.unwrap_data_key(&wrapped)?;

    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&sym[..]).map_err(|_| Error::Primitive)?;
    mac.update(&data);
    // `verify_slice` compares in constant time (and fails on a wrong length).
    mac.verify_slice(&signature)
        .map_err(|_| Error::SignatureMismatch)?;

    let (aes_key, iv) = (&sym[..], &sym[..16]);
    let plain_len = cbc::Decryptor::<Aes256>::new_from_slices(aes_key, iv)
        .map_err(|_| Error::Primitive)?
        .decrypt_padded_mut::<Pkcs7>(&mut data)
        .map_err(|_| Error::InvalidPadding)?
        .len();
    data.truncate(plain_len);
    Ok(data)
}

/// Graph's side of the scheme: encrypts `plaintext` for `certificate` with a fresh
/// random key. Used by the Graph emulator, tests and benchmarks.
pub fn seal(
    plaintext: &[u8],
    certificate: &Certificate,
    certificate_id: &str,
) -> Result<EncryptedContent, Error> {
    let mut sym = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut sym[..]).map_err(|_| Error::Primitive)?;
    let ciphertext = cbc::Encryptor::<Aes256>::new_from_slices(&sym[..], &sym[..16])
        .map_err(|_| Error::Primitive)?
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&sym[..]).map_err(|_| Error::Primitive)?;
    mac.update(&ciphertext);
    let signature = mac.finalize().into_bytes();

    let public = certificate.oaep_public_key()?;
    let mut wrapped = vec![0u8; public.ciphertext_size()];
    let wrapped_len = public
        .encrypt(&OAEP_SHA1_MGF1SHA1, &sym[..], &mut wrapped, None)
        .map_err(|_| Error::Primitive)?
        .len();
    wrapped.truncate(wrapped_len);

    Ok(EncryptedContent {
        data: B64.encode(&ciphertext),
        data_key: B64.encode(&wrapped),
        data_signature: B64.encode(signature),
        encryption_certificate_id: certificate_id.to_owned(),
        encryption_certificate_thumbprint: certificate.thumbprint_hex(),
    })
}

fn decode(field: &str, name: &'static str) -> Result<Vec<u8>, Error> {
    B64.decode(field.as_bytes())
        .map_err(|_| Error::InvalidBase64 { field: name })
}

/// An absent thumbprint is accepted (the HMAC and the key binding are what protect the
/// item); a present one must be the hex SHA-1 of the registered certificate.
fn thumbprint_matches(hex: &str, expected: &[u8; 20]) -> bool {
    if hex.is_empty() {
        return true;
    }
    let hex = hex.as_bytes();
    if hex.len() != 40 {
        return false;
    }
    hex.chunks_exact(2).zip(expected).all(|(pair, byte)| {
        match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(hi), Some(lo)) => (hi << 4 | lo) == *byte,
            _ => false,
        }
    })
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_compare_case_insensitively_and_exactly() {
        let expected = [0xAB; 20];
        assert!(thumbprint_matches(&"AB".repeat(20), &expected));
        assert!(thumbprint_matches(&"ab".repeat(20), &expected));
        assert!(thumbprint_matches("", &expected));
        assert!(!thumbprint_matches(&"AB".repeat(19), &expected));
        assert!(!thumbprint_matches(
            &format!("{}AC", "AB".repeat(19)),
            &expected
        ));
        assert!(!thumbprint_matches(&"ZZ".repeat(20), &expected));
    }
}
