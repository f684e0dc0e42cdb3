//! `orb certs list|rotate` and `orb secrets set`: commands on the local state store.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use orb_notification_crypto::{GenerateOptions, KeyBits};
use orb_service::{Config, state};
use orb_store::{KeyState, Timestamp};

/// The operation failed.
const FAILED: u8 = 1;
/// Usage error or unusable configuration.
const UNUSABLE: u8 = 2;

fn open(config: &Path) -> Result<(Config, state::OpenedState), ExitCode> {
    let config = Config::load(config).map_err(|e| {
        eprintln!("orb: {e}");
        ExitCode::from(UNUSABLE)
    })?;
    let opened = state::open(&config).map_err(|e| {
        eprintln!("orb: {e}");
        ExitCode::from(FAILED)
    })?;
    if opened.created_master_key {
        eprintln!(
            "orb: warning: created {}/master.key beside the data it protects; set service.master_key to keep it elsewhere",
            config.service.data_dir.display()
        );
    }
    Ok((config, opened))
}

pub(crate) fn certs_list(config: &Path) -> ExitCode {
    let (_, opened) = match open(config) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut keys = match opened.store.encryption_keys() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("orb: {e}");
            return ExitCode::from(FAILED);
        }
    };
    keys.sort_by_key(|k| k.created_at);
    if keys.is_empty() {
        println!(
            "no certificates yet (`orb certs rotate` creates one; `orb run` does on first start)"
        );
    }
    for k in keys {
        let state = match k.state {
            KeyState::Current => "current",
            KeyState::Previous => "previous",
            KeyState::Retired => "retired",
        };
        let thumbprint = orb_notification_crypto::Certificate::from_pem(&k.certificate_pem)
            .map_or_else(|_| "unreadable".to_owned(), |c| c.thumbprint_hex());
        println!(
            "{}  {state:<8}  {thumbprint}  created {}  expires {}",
            k.id, k.created_at, k.expires_at
        );
    }
    ExitCode::SUCCESS
}

pub(crate) fn certs_rotate(config: &Path, bits: u32, validity: Duration) -> ExitCode {
    let Some(key_bits) = KeyBits::from_bits(bits) else {
        eprintln!("orb: --bits must be 2048, 3072 or 4096");
        return ExitCode::from(UNUSABLE);
    };
    let (_, opened) = match open(config) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let options = GenerateOptions {
        key_bits,
        validity,
        ..GenerateOptions::default()
    };
    match state::rotate(&opened.store, &options, Timestamp::now()) {
        Ok(id) => {
            println!("{id}  current  (subscriptions move to it at their next renewal)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orb: {e}");
            ExitCode::from(FAILED)
        }
    }
}

pub(crate) fn secrets_set(config: &Path, name: &str) -> ExitCode {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        eprintln!("orb: secret names use letters, digits, '-', '_' and '.'");
        return ExitCode::from(UNUSABLE);
    }
    let mut value = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut value) {
        eprintln!("orb: cannot read the secret from standard input: {e}");
        return ExitCode::from(UNUSABLE);
    }
    if value.iter().all(u8::is_ascii_whitespace) {
        eprintln!("orb: empty secret on standard input; nothing stored");
        return ExitCode::from(UNUSABLE);
    }
    let (_, opened) = match open(config) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let result = state::set_secret(&opened.store, name, &value);
    zeroize::Zeroize::zeroize(&mut value);
    match result {
        Ok(()) => {
            eprintln!("orb: stored secret {name:?} (encrypted); refer to it as \"secret:{name}\"");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orb: {e}");
            ExitCode::from(FAILED)
        }
    }
}
