//! Encryption at rest: the master key and the record sealer.
//!
//! A sealed record is `0x01 ‖ iv(16) ‖ AES-256-CBC-PKCS#7(plaintext) ‖ tag(32)` with
//! `tag = HMAC-SHA256(mac_key, 0x01 ‖ lp(aad) ‖ iv ‖ ciphertext)` (encrypt-then-MAC; the
//! tag is checked in constant time before anything is decrypted). `aad` names the slot
//! (e.g. `secret:graph-client-secret`), so a sealed value moved to another slot fails the
//! check. The encryption and MAC keys are derived from the 32-byte master key with
//! HMAC-SHA256 under distinct labels; the IV is fresh random bytes per record.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::codec::push_len_prefixed;
use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;
type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

const SEAL_VERSION: u8 = 1;
const IV_LEN: usize = 16;
const TAG_LEN: usize = 32;

/// The 32-byte key that encrypts secrets, encryption keys and client states at rest.
///
/// Zeroized on drop; its `Debug` prints nothing of the key.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        random_fill(k.as_mut())?;
        Ok(Self(k))
    }

    /// Parses the base64 form (surrounding whitespace ignored); must decode to exactly
    /// 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self> {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| Error::MasterKey("not valid base64".to_owned()))?,
        );
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            Error::MasterKey(format!(
                "expected 32 bytes after base64 decoding, found {}",
                decoded.len()
            ))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// The base64 form, as written to a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.as_ref()))
    }

    /// Loads the key from a configuration value: `file:PATH` (a file holding the base64
    /// key) or `env:VAR` (an environment variable holding it).
    pub fn load(source: &str) -> Result<Self> {
        if let Some(path) = source.strip_prefix("file:") {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                Error::MasterKeyFile {
                    path: PathBuf::from(path),
                    source,
                }
            })?);
            Self::from_base64(&text)
        } else if let Some(var) = source.strip_prefix("env:") {
            let text = Zeroizing::new(std::env::var(var).map_err(|_| {
                Error::MasterKey(format!(
                    "environment variable {var} is not set or not unicode"
                ))
            })?);
            Self::from_base64(&text)
        } else {
            Err(Error::MasterKey(
                "source must start with `file:` or `env:`".to_owned(),
            ))
        }
    }

    /// Creates a new random key file at `path` with mode 0600 (owner read/write only).
    /// Fails if the file already exists, so an existing key is never overwritten.
    pub fn create_file(path: &Path) -> Result<Self> {
        let key = Self::generate()?;
        let io = |source| Error::MasterKeyFile {
            path: path.to_owned(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(io)?;
        let mut text = key.to_base64();
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the new directory entry durable too; failure here is not fatal for
            // correctness of the key itself, but report it like any other I/O error.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(key)
    }

    /// Loads `{data_dir}/master.key`, creating it (mode 0600) when absent. Returns the key
    /// and whether it was created, so the caller can warn that the key sits beside the
    /// data it protects.
    pub fn load_or_create(data_dir: &Path) -> Result<(Self, bool)> {
        let path = data_dir.join("master.key");
        match Self::create_file(&path) {
            Ok(key) => Ok((key, true)),
            Err(Error::MasterKeyFile { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                let source = format!("file:{}", path.display());
                Ok((Self::load(&source)?, false))
            }
            Err(e) => Err(e),
        }
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Derived keys that seal and open records.
pub(crate) struct Sealer {
    enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

impl Sealer {
    pub(crate) fn new(master: &MasterKey) -> Self {
        Self {
            enc: derive(master, b"orb-store/v1/encryption"),
            mac: derive(master, b"orb-store/v1/authentication"),
        }
    }

    pub(crate) fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut iv = [0u8; IV_LEN];
        random_fill(&mut iv)?;
        let ct = Aes256CbcEnc::new(self.enc.as_ref().into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut out = Vec::with_capacity(1 + IV_LEN + ct.len() + TAG_LEN);
        out.push(SEAL_VERSION);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        let tag = self.tag(aad, &out);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    pub(crate) fn open(
        &self,
        kind: &'static str,
        aad: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let tampered = || Error::Tampered { kind };
        if sealed.len() < 1 + IV_LEN + 16 + TAG_LEN || sealed[0] != SEAL_VERSION {
            return Err(tampered());
        }
        let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let mut mac = self.mac_for(aad);
        mac.update(body);
        // verify_slice compares in constant time.
        mac.verify_slice(tag).map_err(|_| tampered())?;
        let iv: [u8; IV_LEN] = body[1..1 + IV_LEN].try_into().map_err(|_| tampered())?;
        let ct = &body[1 + IV_LEN..];
        Aes256CbcDec::new(self.enc.as_ref().into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map(Zeroizing::new)
            .map_err(|_| tampered())
    }

    fn mac_for(&self, aad: &str) -> HmacSha256 {
        // HMAC accepts keys of any length; 32 bytes never fails.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.mac.as_ref())
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
        let mut framed = Vec::with_capacity(4 + aad.len());
        push_len_prefixed(&mut framed, aad.as_bytes());
        mac.update(&framed);
        mac
    }

    fn tag(&self, aad: &str, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac_for(aad);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

fn derive(master: &MasterKey, label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master.0.as_ref())
        .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
    mac.update(label);
    let mut out = mac.finalize().into_bytes();
    let key = Zeroizing::new(out.into());
    out.zeroize();
    key
}

pub(crate) fn random_fill(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| Error::Random)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&MasterKey::from_bytes([7; 32]))
    }

    #[test]
    fn seal_open_round_trip_with_fresh_iv() {
        let s = sealer();
        let a = s.seal("secret:x", b"hunter2").unwrap();
        let b = s.seal("secret:x", b"hunter2").unwrap();
        assert_ne!(a, b, "fresh iv per record");
        assert_eq!(
            s.open("secret", "secret:x", &a).unwrap().as_slice(),
            b"hunter2"
        );
        assert!(!a.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn tampering_wrong_slot_and_wrong_key_are_rejected() {
        let s = sealer();
        let mut a = s.seal("secret:x", b"hunter2").unwrap();
        assert!(matches!(
            s.open("secret", "secret:y", &a),
            Err(Error::Tampered { kind: "secret" })
        ));
        let other = Sealer::new(&MasterKey::from_bytes([8; 32]));
        assert!(other.open("secret", "secret:x", &a).is_err());
        a[20] ^= 1;
        assert!(s.open("secret", "secret:x", &a).is_err());
        assert!(s.open("secret", "secret:x", &a[..10]).is_err());
    }

    #[test]
    fn master_key_base64_and_debug() {
        let k = MasterKey::generate().unwrap();
        let k2 = MasterKey::from_base64(&format!(" {}\n", k.to_base64().as_str())).unwrap();
        assert_eq!(k.0.as_ref(), k2.0.as_ref());
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
        let err = MasterKey::from_base64("AAAA").unwrap_err().to_string();
        assert!(err.contains("expected 32 bytes"), "{err}");
        assert!(MasterKey::from_base64("***").is_err());
        assert!(MasterKey::load("plain").is_err());
    }
}
