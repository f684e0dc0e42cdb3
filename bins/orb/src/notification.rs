//! `orb notification decrypt`.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use orb_notification_crypto::{
    DecryptionKey, EncryptedContent, Error, KeyRing, NotificationCollection,
};

/// Exit code when every encrypted item decrypted.
const OK: u8 = 0;
/// Exit code when at least one item failed.
const ITEM_FAILED: u8 = 1;
/// Exit code for unusable input.
const UNUSABLE: u8 = 2;

pub(crate) fn decrypt_command(key_args: &[String], file: &Path) -> ExitCode {
    let ring = match load_ring(key_args) {
        Ok(ring) => ring,
        Err(message) => {
            eprintln!("orb: {message}");
            return ExitCode::from(UNUSABLE);
        }
    };
    let body = match std::fs::read(file) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("orb: cannot read {}: {e}", file.display());
            return ExitCode::from(UNUSABLE);
        }
    };
    let collection = match NotificationCollection::from_json(&body) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orb: {}: {e}", file.display());
            return ExitCode::from(UNUSABLE);
        }
    };

    let results = decrypt_all(&ring, &collection);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for (index, result) in results {
        match result {
            Ok(line) => {
                if writeln!(out, "{line}").is_err() {
                    // stdout is gone (e.g. a closed pipe): nothing more to say.
                    return ExitCode::from(UNUSABLE);
                }
            }
            Err(e) => {
                failed = true;
                // Keep stdout and stderr in order for a reader watching both.
                let _ = out.flush();
                eprintln!("item {index}: {e}");
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(UNUSABLE);
    }
    ExitCode::from(if failed { ITEM_FAILED } else { OK })
}

fn load_ring(key_args: &[String]) -> Result<KeyRing, String> {
    if key_args.is_empty() {
        return Err(
            "no --key given: pass the private key(s) of the encryption certificate(s)".to_owned(),
        );
    }
    let now = SystemTime::now();
    let mut ring = KeyRing::new();
    for arg in key_args {
        // `CERT_ID=PEM_FILE`, unless the whole argument names an existing file.
        let (id, path) = match arg.split_once('=') {
            Some((id, path)) if !Path::new(arg).exists() => (Some(id.to_owned()), path),
            _ => (None, arg.as_str()),
        };
        let pem =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read key {path}: {e}"))?;
        let key = DecryptionKey::from_pem(&pem).map_err(|e| format!("key {path}: {e}"))?;
        ring.insert_key(id, key, now);
    }
    Ok(ring)
}

/// Decrypts every item that carries `encryptedContent`, spread over the available cores
/// (the RSA unwrap dominates and items are independent), returning results in input order.
fn decrypt_all(
    ring: &KeyRing,
    collection: &NotificationCollection,
) -> Vec<(usize, Result<String, Error>)> {
    let mut items: Vec<(usize, Result<EncryptedContent, Error>)> = collection
        .value
        .iter()
        .enumerate()
        .filter_map(|(index, item)| item.encrypted_content().map(|c| (index, c)))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len().div_ceil(8).max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    let mut parts = Vec::with_capacity(threads);
    while items.len() > chunk {
        let rest = items.split_off(chunk);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);

    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    part.into_iter()
                        .map(|(index, content)| {
                            (index, content.and_then(|c| decrypt_to_json_line(ring, &c)))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(results) => results,
                // Only a bug in a dependency can panic a worker: surface it, never drop items.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Decrypts one item and re-serializes the resource as compact JSON (key order kept).
fn decrypt_to_json_line(ring: &KeyRing, content: &EncryptedContent) -> Result<String, Error> {
    let plain = ring.decrypt(content)?;
    let value: serde_json::Value = serde_json::from_slice(&plain).map_err(Error::NotJson)?;
    Ok(value.to_string())
}
