//! Every way a notification item can be wrong, each with its own error.

use aes::Aes256;
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, Mac};
use orb_notification_crypto::{EncryptedContent, Error, KeyRing, decrypt_with, seal};
use sha2::Sha256;

use super::common::{clone_pair, pair_2048};

const PLAIN: &[u8] = br#"{"id":"AAMk","subject":"Quarterly review"}"#;

fn sealed() -> EncryptedContent {
    let pair = pair_2048(0);
    seal(PLAIN, pair.certificate(), pair.id()).unwrap()
}

fn decrypt(content: &EncryptedContent) -> Result<Vec<u8>, Error> {
    let pair = pair_2048(0);
    decrypt_with(content, pair.key(), Some(pair.certificate()))
}

fn flip_bit(b64: &str, byte: usize) -> String {
    let mut raw = B64.decode(b64).unwrap();
    raw[byte] ^= 0x01;
    B64.encode(raw)
}

/// Builds an item from raw parts: the given symmetric key and ciphertext, correctly
/// signed and wrapped, so that only what the test breaks is broken.
fn assemble(sym: &[u8], ciphertext: &[u8]) -> EncryptedContent {
    let pair = pair_2048(0);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(sym).unwrap();
    mac.update(ciphertext);
    let x509 = x509_parser::parse_x509_certificate(pair.certificate().der())
        .unwrap()
        .1;
    let public = PublicEncryptingKey::from_der(x509.public_key().raw).unwrap();
    let public = OaepPublicEncryptingKey::new(public).unwrap();
    let mut wrapped = vec![0u8; public.ciphertext_size()];
    let n = public
        .encrypt(&OAEP_SHA1_MGF1SHA1, sym, &mut wrapped, None)
        .unwrap()
        .len();
    wrapped.truncate(n);
    EncryptedContent {
        data: B64.encode(ciphertext),
        data_key: B64.encode(wrapped),
        data_signature: B64.encode(mac.finalize().into_bytes()),
        encryption_certificate_id: pair.id().to_owned(),
        encryption_certificate_thumbprint: pair.certificate().thumbprint_hex(),
    }
}

#[test]
fn untouched_item_decrypts() {
    assert_eq!(decrypt(&sealed()).unwrap(), PLAIN);
}

#[test]
fn flipped_ciphertext_bit_is_a_signature_mismatch() {
    let mut c = sealed();
    c.data = flip_bit(&c.data, 5);
    assert!(matches!(decrypt(&c), Err(Error::SignatureMismatch)));
}

#[test]
fn flipped_signature_bit_is_a_signature_mismatch() {
    let mut c = sealed();
    c.data_signature = flip_bit(&c.data_signature, 31);
    assert!(matches!(decrypt(&c), Err(Error::SignatureMismatch)));
}

#[test]
fn truncated_signature_is_a_signature_mismatch() {
    let mut c = sealed();
    let raw = B64.decode(&c.data_signature).unwrap();
    c.data_signature = B64.encode(&raw[..16]);
    assert!(matches!(decrypt(&c), Err(Error::SignatureMismatch)));
}

#[test]
fn data_key_for_another_key_cannot_be_unwrapped() {
    let other = pair_2048(1);
    let c = seal(PLAIN, other.certificate(), pair_2048(0).id()).unwrap();
    // Our key, registered without a certificate, so the thumbprint is not what stops it.
    let err = decrypt_with(&c, pair_2048(0).key(), None).unwrap_err();
    assert!(matches!(err, Error::KeyUnwrap), "{err}");
}

#[test]
fn flipped_data_key_bit_cannot_be_unwrapped() {
    let mut c = sealed();
    c.data_key = flip_bit(&c.data_key, 100);
    assert!(matches!(decrypt(&c), Err(Error::KeyUnwrap)));
}

#[test]
fn short_data_key_is_rejected_before_rsa() {
    let mut c = sealed();
    c.data_key = B64.encode([1u8; 16]);
    assert!(matches!(decrypt(&c), Err(Error::KeyUnwrap)));
}

#[test]
fn wrapped_key_of_wrong_length_is_rejected() {
    let c = assemble(&[7u8; 16], &[0u8; 32]);
    assert!(matches!(decrypt(&c), Err(Error::KeyLength(16))));
}

#[test]
fn bad_padding_under_a_valid_hmac() {
    let sym = [42u8; 32];
    // Two blocks whose plaintext ends in 0x00: never valid PKCS#7.
    let mut blocks = [0u8; 32];
    let len = blocks.len();
    let ct = cbc::Encryptor::<Aes256>::new_from_slices(&sym, &sym[..16])
        .unwrap()
        .encrypt_padded_mut::<NoPadding>(&mut blocks, len)
        .unwrap()
        .to_vec();
    let c = assemble(&sym, &ct);
    assert!(matches!(decrypt(&c), Err(Error::InvalidPadding)));
}

#[test]
fn unknown_certificate_id() {
    let mut ring = KeyRing::new();
    ring.insert(clone_pair(pair_2048(0)), std::time::SystemTime::now());
    let mut c = sealed();
    c.encryption_certificate_id = "someone-else".to_owned();
    let err = ring.decrypt(&c).unwrap_err();
    assert!(matches!(&err, Error::UnknownCertificateId { id } if id == "someone-else"));
    assert_eq!(err.to_string(), "unknown certificate id \"someone-else\"");
}

#[test]
fn thumbprint_mismatch() {
    let mut c = sealed();
    c.encryption_certificate_thumbprint = pair_2048(1).certificate().thumbprint_hex();
    assert!(matches!(decrypt(&c), Err(Error::ThumbprintMismatch { .. })));
}

#[test]
fn invalid_base64_in_each_field() {
    for field in ["data", "dataKey", "dataSignature"] {
        let mut c = sealed();
        let target = match field {
            "data" => &mut c.data,
            "dataKey" => &mut c.data_key,
            _ => &mut c.data_signature,
        };
        target.insert(4, '*');
        match decrypt(&c) {
            Err(Error::InvalidBase64 { field: f }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn ciphertext_not_a_multiple_of_16() {
    let mut c = sealed();
    let mut raw = B64.decode(&c.data).unwrap();
    raw.push(0);
    c.data = B64.encode(raw);
    assert!(matches!(decrypt(&c), Err(Error::CiphertextLength(n)) if n % 16 == 1));
}

#[test]
fn empty_data() {
    let mut c = sealed();
    c.data = String::new();
    assert!(matches!(decrypt(&c), Err(Error::EmptyData)));
}

#[test]
fn errors_never_carry_content() {
    let mut c = sealed();
    c.data_signature = flip_bit(&c.data_signature, 0);
    let err = decrypt(&c).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("Quarterly") && !text.contains(&c.data_key[..20]),
        "{text}"
    );
    assert!(err.is_tampering());
}
