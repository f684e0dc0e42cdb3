//! `orb certs list|rotate` and `orb secrets set`: the state store, or the running daemon's admin API
//! while it holds the store.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use orb_notification_crypto::{GenerateOptions, KeyBits};
use orb_service::admin_client::{AdminClient, ClientError};
use orb_service::state::CertificateView;
use orb_service::{Config, state};
use orb_store::Timestamp;

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
        if matches!(
            e,
            orb_service::Error::Store(orb_store::Error::Locked { .. })
        ) {
            eprintln!(
                "orb: a running orb holds the store: stop it, or set service.admin_token_file so that `orb certs` goes through the daemon"
            );
        }
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

/// A running daemon to manage the certificates through: its client, a runtime to drive
/// it, and the certificate list it answered with.
struct Daemon {
    runtime: tokio::runtime::Runtime,
    client: AdminClient,
    certificates: Vec<CertificateView>,
}

/// Asks the running daemon for its certificates when its admin API is configured.
/// `Ok(None)`: no daemon to ask (not configured, or not running), so the local store is
/// used; `Err`: the daemon answered but refused.
fn daemon(config_path: &Path) -> Result<Option<Daemon>, ClientError> {
    let Ok(config) = Config::load(config_path) else {
        return Ok(None);
    };
    if config.service.admin_token_file.is_none() {
        return Ok(None);
    }
    let Ok(client) = AdminClient::from_config(&config) else {
        return Ok(None);
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Ok(None);
    };
    match runtime.block_on(client.certificates()) {
        Ok(certificates) => Ok(Some(Daemon {
            runtime,
            client,
            certificates,
        })),
        Err(ClientError::Unreachable { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The exit of a call through the daemon that failed.
fn refused(e: &ClientError) -> ExitCode {
    eprintln!("orb: {e}");
    ExitCode::from(if e.is_usage() { UNUSABLE } else { FAILED })
}

pub(crate) fn certs_list(config: &Path) -> ExitCode {
    match daemon(config) {
        Ok(Some(d)) => {
            print!("{}", state::render_certificates(&d.certificates));
            return ExitCode::SUCCESS;
        }
        Ok(None) => {}
        Err(e) => return refused(&e),
    }
    let (_, opened) = match open(config) {
        Ok(o) => o,
        Err(code) => return code,
    };
    match state::certificates(&opened.store) {
        Ok(list) => {
            print!("{}", state::render_certificates(&list));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orb: {e}");
            ExitCode::from(FAILED)
        }
    }
}

/// How long `orb certs rotate` waits for a running daemon to show the new certificate
/// (a 4096-bit key takes seconds to generate on a slow machine).
const ROTATE_PATIENCE: Duration = Duration::from_secs(120);

/// Has the daemon rotate and waits until it shows a new current certificate.
async fn rotate_through(
    client: &AdminClient,
    before: &HashSet<String>,
    bits: u32,
    days: u64,
) -> Result<String, ClientError> {
    client.rotate_certificate(bits, days).await?;
    let deadline = tokio::time::Instant::now() + ROTATE_PATIENCE;
    loop {
        let list = client.certificates().await?;
        if let Some(new) = list
            .into_iter()
            .find(|c| c.state == "current" && !before.contains(&c.id))
        {
            return Ok(new.id);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClientError::Protocol(
                "the daemon accepted the rotation but shows no new certificate yet; check its log"
                    .to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) fn certs_rotate(config: &Path, bits: u32, validity: Duration) -> ExitCode {
    let Some(key_bits) = KeyBits::from_bits(bits) else {
        eprintln!("orb: --bits must be 2048, 3072 or 4096");
        return ExitCode::from(UNUSABLE);
    };
    let days = validity.as_secs() / (24 * 3600);
    match daemon(config) {
        Ok(Some(d)) => {
            if !(1..=3650).contains(&days) || !validity.as_secs().is_multiple_of(24 * 3600) {
                eprintln!("orb: --validity must be whole days (1 to 3650) for a running daemon");
                return ExitCode::from(UNUSABLE);
            }
            let before: HashSet<String> = d.certificates.into_iter().map(|c| c.id).collect();
            return match d
                .runtime
                .block_on(rotate_through(&d.client, &before, bits, days))
            {
                Ok(id) => {
                    println!(
                        "{id}  current  (the running daemon renews its subscriptions onto it now)"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => refused(&e),
            };
        }
        Ok(None) => {}
        Err(e) => return refused(&e),
    }
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
