//! RSA keys and X.509 certificates for notification encryption.
//!
//! Graph only ever sees the public certificate (`encryptionCertificate`); the private key
//! stays with orb and is used for one operation: unwrapping each item's `dataKey` with
//! RSA-OAEP (SHA-1, MGF1-SHA-1). Private-key operations run on aws-lc-rs (see
//! `docs/decisions/0001-rsa-backend.md`).

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use crate::Error;

/// Longest `encryptionCertificateId` Graph accepts.
pub const MAX_CERTIFICATE_ID_LEN: usize = 128;

/// Smallest RSA modulus Graph accepts for `encryptionCertificate`.
pub const MIN_KEY_BITS: usize = 2048;
/// Largest RSA modulus Graph accepts for `encryptionCertificate`.
pub const MAX_KEY_BITS: usize = 4096;

/// An RSA private key that unwraps notification data keys.
///
/// Holds the PKCS#8 encoding (zeroized on drop) so the key can be persisted, encrypted,
/// by the state store. `Debug` shows the key size only.
pub struct DecryptionKey {
    oaep: OaepPrivateDecryptingKey,
    pkcs8: Zeroizing<Vec<u8>>,
    bits: usize,
}

impl DecryptionKey {
    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
    ///
    /// Other PEM blocks in the same text (a certificate, say) are skipped, so a combined
    /// key+certificate file works too.
    pub fn from_pem(pem_text: &str) -> Result<Self, Error> {
        let blocks = pem::parse_many(pem_text).map_err(|_| Error::InvalidKey("not PEM"))?;
        for block in blocks {
            let tag = block.tag().to_owned();
            let der = Zeroizing::new(block.into_contents());
            match tag.as_str() {
                "PRIVATE KEY" => return Self::from_pkcs8_der(&der),
                "RSA PRIVATE KEY" => return Self::from_pkcs8_der(&pkcs1_to_pkcs8(&der)),
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(Error::InvalidKey("encrypted PEM keys are not supported"));
                }
                _ => {}
            }
        }
        Err(Error::InvalidKey("no PRIVATE KEY or RSA PRIVATE KEY block"))
    }

    /// Reads a DER PKCS#8 RSA private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let key = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|_| Error::InvalidKey("not an RSA PKCS#8 key"))?;
        let bits = key.key_size_bits();
        let oaep = OaepPrivateDecryptingKey::new(key).map_err(|_| Error::Primitive)?;
        Ok(Self {
            oaep,
            pkcs8: Zeroizing::new(der.to_vec()),
            bits,
        })
    }

    /// The RSA modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The key as PKCS#8 PEM, for storage under encryption. Zeroized on drop.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            self.pkcs8.as_slice().to_vec(),
        )))
    }

    /// The public half, for checking that a certificate belongs to this key.
    fn public_der(&self) -> Result<Vec<u8>, Error> {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        let key = PrivateDecryptingKey::from_pkcs8(&self.pkcs8).map_err(|_| Error::Primitive)?;
        let der: PublicKeyX509Der<'static> =
            AsDer::as_der(&key.public_key()).map_err(|_| Error::Primitive)?;
        Ok(der.as_ref().to_vec())
    }

    /// Unwraps one `dataKey`: RSA-OAEP with SHA-1 and MGF1-SHA-1, empty label.
    pub(crate) fn unwrap_data_key(&self, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        if wrapped.len() != self.oaep.key_size_bytes() {
            return Err(Error::KeyUnwrap);
        }
        let mut out = Zeroizing::new(vec![0u8; self.oaep.min_output_size()]);
        let key = self
            .oaep
            .decrypt(&OAEP_SHA1_MGF1SHA1, wrapped, &mut out, None)
            .map_err(|_| Error::KeyUnwrap)?;
        let key: &[u8; 32] = (&*key)
            .try_into()
            .map_err(|_| Error::KeyLength(key.len()))?;
        Ok(Zeroizing::new(*key))
    }
}

impl fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// A public X.509 certificate for notification encryption, parsed and checked.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    thumbprint: [u8; 20],
    not_before: SystemTime,
    not_after: SystemTime,
    bits: usize,
    spki: Vec<u8>,
}

impl Certificate {
    /// Reads the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem_text: &str) -> Result<Self, Error> {
        let blocks = pem::parse_many(pem_text)
            .map_err(|_| Error::InvalidCertificate("not PEM".to_owned()))?;
        let block = blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| Error::InvalidCertificate("no CERTIFICATE block".to_owned()))?;
        Self::from_der(block.contents())
    }

    /// Parses a DER certificate and checks what Graph requires: an RSA key of
    /// 2,048 to 4,096 bits. Validity dates are checked separately ([`Self::check_valid_at`]),
    /// because an expired certificate must still be loadable to decrypt late notifications.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::InvalidCertificate(format!("not an X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::InvalidCertificate(
                "trailing bytes after the certificate".to_owned(),
            ));
        }
        let spki = cert.public_key().raw.to_vec();
        let public = PublicEncryptingKey::from_der(&spki)
            .map_err(|_| Error::InvalidCertificate("public key is not RSA".to_owned()))?;
        let bits = public.key_size_bits();
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(Error::InvalidCertificate(format!(
                "RSA key has {bits} bits; Graph accepts {MIN_KEY_BITS} to {MAX_KEY_BITS}"
            )));
        }
        let validity = cert.validity();
        Ok(Self {
            thumbprint: Sha1::digest(der).into(),
            not_before: asn1_time_to_system(validity.not_before.timestamp()),
            not_after: asn1_time_to_system(validity.not_after.timestamp()),
            bits,
            spki,
            der: der.to_vec(),
        })
    }

    /// Fails unless `now` lies within the certificate's validity period.
    pub fn check_valid_at(&self, now: SystemTime) -> Result<(), Error> {
        if now < self.not_before {
            return Err(Error::InvalidCertificate("not yet valid".to_owned()));
        }
        if now > self.not_after {
            return Err(Error::InvalidCertificate("expired".to_owned()));
        }
        Ok(())
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Standard base64 of the DER certificate: the value of a subscription's
    /// `encryptionCertificate`.
    pub fn to_base64_der(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }

    /// SHA-1 of the DER certificate.
    pub fn thumbprint(&self) -> &[u8; 20] {
        &self.thumbprint
    }

    /// Uppercase hex SHA-1 thumbprint, as in `encryptionCertificateThumbprint`.
    pub fn thumbprint_hex(&self) -> String {
        self.thumbprint.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// RSA modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The RSA-OAEP public key, for sealing.
    pub(crate) fn oaep_public_key(&self) -> Result<OaepPublicEncryptingKey, Error> {
        let public = PublicEncryptingKey::from_der(&self.spki).map_err(|_| Error::Primitive)?;
        OaepPublicEncryptingKey::new(public).map_err(|_| Error::Primitive)
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("thumbprint", &self.thumbprint_hex())
            .field("bits", &self.bits)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// RSA key sizes orb generates (Graph accepts 2,048 to 4,096 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyBits {
    /// 2,048 bits: the default; the fastest unwrap.
    #[default]
    Rsa2048,
    /// 3,072 bits.
    Rsa3072,
    /// 4,096 bits.
    Rsa4096,
}

impl KeyBits {
    /// Maps a bit count from configuration.
    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            2048 => Some(Self::Rsa2048),
            3072 => Some(Self::Rsa3072),
            4096 => Some(Self::Rsa4096),
            _ => None,
        }
    }
}

/// What a newly generated encryption certificate looks like.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// RSA key size.
    pub key_bits: KeyBits,
    /// How long the certificate is valid from its creation.
    pub validity: Duration,
    /// Subject common name (informational: Graph ignores the issuer and subject).
    pub common_name: String,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            key_bits: KeyBits::Rsa2048,
            validity: Duration::from_secs(90 * 24 * 3600),
            common_name: "orb notification encryption".to_owned(),
        }
    }
}

/// A certificate id together with its certificate and private key.
#[derive(Debug)]
pub struct EncryptionKeyPair {
    id: String,
    certificate: Certificate,
    key: DecryptionKey,
}

impl EncryptionKeyPair {
    /// Generates a fresh RSA key and a self-signed certificate valid from `now`.
    pub fn generate(
        id: impl Into<String>,
        options: &GenerateOptions,
        now: SystemTime,
    ) -> Result<Self, Error> {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, RsaKeySize};

        let id = checked_id(id.into())?;
        let size = match options.key_bits {
            KeyBits::Rsa2048 => RsaKeySize::_2048,
            KeyBits::Rsa3072 => RsaKeySize::_3072,
            KeyBits::Rsa4096 => RsaKeySize::_4096,
        };
        let key_pair =
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size).map_err(Error::Generation)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, options.common_name.as_str());
        params.distinguished_name = name;
        // Backdate a little so that a peer with a slightly slow clock accepts it.
        params.not_before =
            system_to_offset(now.checked_sub(Duration::from_secs(300)).unwrap_or(now));
        params.not_after = system_to_offset(now + options.validity);
        let cert = params.self_signed(&key_pair).map_err(Error::Generation)?;
        let key = DecryptionKey::from_pkcs8_der(&Zeroizing::new(key_pair.serialize_der()))?;
        let certificate = Certificate::from_der(cert.der())?;
        Ok(Self {
            id,
            certificate,
            key,
        })
    }

    /// Pairs a stored certificate with its stored key, checking that they belong together.
    pub fn from_parts(
        id: impl Into<String>,
        certificate: Certificate,
        key: DecryptionKey,
    ) -> Result<Self, Error> {
        let id = checked_id(id.into())?;
        if key.public_der()? != certificate.spki {
            return Err(Error::InvalidCertificate(
                "certificate does not belong to the private key".to_owned(),
            ));
        }
        Ok(Self {
            id,
            certificate,
            key,
        })
    }

    /// The `encryptionCertificateId`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The private key.
    pub fn key(&self) -> &DecryptionKey {
        &self.key
    }

    /// Splits into id, certificate and key.
    pub fn into_parts(self) -> (String, Certificate, DecryptionKey) {
        (self.id, self.certificate, self.key)
    }
}

fn checked_id(id: String) -> Result<String, Error> {
    if id.is_empty() || id.chars().count() > MAX_CERTIFICATE_ID_LEN {
        return Err(Error::InvalidCertificateId);
    }
    Ok(id)
}

fn asn1_time_to_system(unix_seconds: i64) -> SystemTime {
    if unix_seconds >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix_seconds.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(unix_seconds.unsigned_abs())
    }
}

fn system_to_offset(t: SystemTime) -> time::OffsetDateTime {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Wraps a PKCS#1 `RSAPrivateKey` in a PKCS#8 `PrivateKeyInfo` (rsaEncryption, NULL
/// parameters), the only form aws-lc-rs reads for decryption keys.
fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Zeroizing<Vec<u8>> {
    // version INTEGER 0, AlgorithmIdentifier { 1.2.840.113549.1.1.1, NULL }
    const PREFIX: [u8; 18] = [
        0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x01, 0x05, 0x00,
    ];
    let mut octets = Zeroizing::new(Vec::with_capacity(pkcs1.len() + 8));
    octets.push(0x04);
    der_len(&mut octets, pkcs1.len());
    octets.extend_from_slice(pkcs1);
    let mut out = Zeroizing::new(Vec::with_capacity(octets.len() + PREFIX.len() + 8));
    out.push(0x30);
    der_len(&mut out, PREFIX.len() + octets.len());
    out.extend_from_slice(&PREFIX);
    out.extend_from_slice(&octets);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_use_the_shortest_form() {
        let mut v = Vec::new();
        der_len(&mut v, 0x7f);
        der_len(&mut v, 0x80);
        der_len(&mut v, 0x1234);
        assert_eq!(v, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn certificate_ids_are_bounded() {
        assert!(checked_id(String::new()).is_err());
        assert!(checked_id("x".repeat(129)).is_err());
        assert!(checked_id("x".repeat(128)).is_ok());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let pair =
            EncryptionKeyPair::generate("dbg", &GenerateOptions::default(), SystemTime::now())
                .unwrap();
        let pem = pair.key().to_pkcs8_pem();
        let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
        let shown = format!("{pair:?}");
        assert!(!shown.contains(&body), "{shown}");
        assert!(shown.contains("bits: 2048"));
    }
}
