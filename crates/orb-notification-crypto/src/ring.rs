//! The key ring: every notification key orb may still receive items for.
//!
//! Rotation (Graph docs, "rotation"): a new certificate serves all new subscriptions and
//! is moved onto existing ones at their next renewal, but Graph may keep encrypting with
//! the previous certificate for a while. So old keys stay in the ring until no
//! subscription uses them *and* a grace period has passed since they were last in use.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::Error;
use crate::content::{EncryptedContent, decrypt_with};
use crate::keys::{Certificate, DecryptionKey, EncryptionKeyPair};

/// A set of decryption keys, each under its `encryptionCertificateId`.
#[derive(Debug, Default)]
pub struct KeyRing {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// `None`: a key that serves any certificate id (the CLI's bare `--key FILE`).
    id: Option<String>,
    key: DecryptionKey,
    certificate: Option<Certificate>,
    added_at: SystemTime,
    unused_since: Option<SystemTime>,
}

/// A certificate in the ring, as shown by `orb certs list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingCertificate {
    /// The `encryptionCertificateId`.
    pub id: String,
    /// Uppercase hex SHA-1 thumbprint.
    pub thumbprint: String,
    /// End of validity.
    pub not_after: SystemTime,
    /// When it joined the ring.
    pub added_at: SystemTime,
    /// Since when no subscription uses it, if so.
    pub unused_since: Option<SystemTime>,
    /// Whether new subscriptions get this certificate.
    pub current: bool,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a certificate and its key, replacing any entry with the same id. The most
    /// recently added certificate becomes current.
    pub fn insert(&mut self, pair: EncryptionKeyPair, now: SystemTime) {
        let (id, certificate, key) = pair.into_parts();
        self.entries
            .retain(|e| e.id.as_deref() != Some(id.as_str()));
        self.entries.push(Entry {
            id: Some(id),
            key,
            certificate: Some(certificate),
            added_at: now,
            unused_since: None,
        });
    }

    /// Adds a bare private key without a certificate. With `id = None` the key serves
    /// every certificate id that has no entry of its own; no thumbprint can be checked.
    pub fn insert_key(&mut self, id: Option<String>, key: DecryptionKey, now: SystemTime) {
        self.entries.retain(|e| e.id != id);
        self.entries.push(Entry {
            id,
            key,
            certificate: None,
            added_at: now,
            unused_since: None,
        });
    }

    /// Decrypts one item with the key registered for its certificate id.
    pub fn decrypt(&self, content: &EncryptedContent) -> Result<Vec<u8>, Error> {
        let id = content.encryption_certificate_id.as_str();
        let entry = self
            .entries
            .iter()
            .find(|e| e.id.as_deref() == Some(id))
            .or_else(|| self.entries.iter().find(|e| e.id.is_none()))
            .ok_or_else(|| Error::UnknownCertificateId { id: id.to_owned() })?;
        decrypt_with(content, &entry.key, entry.certificate.as_ref())
    }

    /// The certificate new subscriptions should use: the most recently added one that is
    /// valid at `now`.
    pub fn current(&self, now: SystemTime) -> Option<(&str, &Certificate)> {
        self.entries
            .iter()
            .rev()
            .find_map(|e| match (&e.id, &e.certificate) {
                (Some(id), Some(cert)) if cert.check_valid_at(now).is_ok() => {
                    Some((id.as_str(), cert))
                }
                _ => None,
            })
    }

    /// Whether a new certificate should be generated: there is no current one, it was
    /// added more than `rotate_every` ago, or it expires within `renew_before`.
    pub fn needs_rotation(
        &self,
        now: SystemTime,
        rotate_every: Duration,
        renew_before: Duration,
    ) -> bool {
        let Some((id, cert)) = self.current(now) else {
            return true;
        };
        let added = self
            .entries
            .iter()
            .find(|e| e.id.as_deref() == Some(id))
            .map_or(now, |e| e.added_at);
        now.duration_since(added).unwrap_or_default() >= rotate_every
            || cert.not_after().duration_since(now).unwrap_or_default() <= renew_before
    }

    /// Retires keys: an entry whose id is not in `in_use` is marked unused from `now` on
    /// (once), and dropped when it has been unused for longer than `grace`. The current
    /// certificate and bare keys are never dropped. Returns the dropped ids.
    pub fn retire_unused(
        &mut self,
        in_use: &HashSet<&str>,
        now: SystemTime,
        grace: Duration,
    ) -> Vec<String> {
        let current = self.current(now).map(|(id, _)| id.to_owned());
        let mut dropped = Vec::new();
        self.entries.retain_mut(|e| {
            let Some(id) = e.id.as_deref() else {
                return true;
            };
            if in_use.contains(id) || current.as_deref() == Some(id) {
                e.unused_since = None;
                return true;
            }
            let since = *e.unused_since.get_or_insert(now);
            if now.duration_since(since).unwrap_or_default() > grace {
                dropped.push(id.to_owned());
                false
            } else {
                true
            }
        });
        dropped
    }

    /// The certificates in the ring, oldest first.
    pub fn certificates(&self, now: SystemTime) -> Vec<RingCertificate> {
        let current = self.current(now).map(|(id, _)| id.to_owned());
        self.entries
            .iter()
            .filter_map(|e| {
                let (id, cert) = (e.id.as_ref()?, e.certificate.as_ref()?);
                Some(RingCertificate {
                    id: id.clone(),
                    thumbprint: cert.thumbprint_hex(),
                    not_after: cert.not_after(),
                    added_at: e.added_at,
                    unused_since: e.unused_since,
                    current: current.as_deref() == Some(id.as_str()),
                })
            })
            .collect()
    }

    /// Number of keys in the ring.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
