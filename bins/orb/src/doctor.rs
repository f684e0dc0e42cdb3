//! `orb doctor --config FILE`: one line per check (`ok` / `warn` / `fail` + why).
//!
//! Exit 0: nothing failed (warnings allowed); 1: at least one check failed; 2: the
//! configuration file is unusable.

use std::path::Path;
use std::process::ExitCode;

use orb_service::Config;
use orb_service::admin_client::{AdminClient, ClientError};
use orb_service::doctor::{self, DoctorOptions};

/// At least one check failed.
const FAILED: u8 = 1;
/// Usage error or unusable configuration.
const UNUSABLE: u8 = 2;

pub(crate) fn doctor(config: &Path) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            println!("fail config: {e}");
            return ExitCode::from(UNUSABLE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orb: cannot start the runtime: {e}");
            return ExitCode::from(FAILED);
        }
    };
    // A running daemon holds the store: ask it to run the checks (with its store and
    // its running configuration) when its admin API answers.
    let through_daemon = config.service.admin_token_file.is_some().then(|| {
        let client = AdminClient::from_config(&config).ok()?;
        match runtime.block_on(client.doctor()) {
            Ok(report) => Some(Ok(report)),
            Err(ClientError::Unreachable { .. }) => None,
            Err(e) => Some(Err(e)),
        }
    });
    let report = match through_daemon.flatten() {
        Some(Ok(report)) => {
            println!(
                "ok   daemon: the running orb ran these checks with its store and the configuration it was started with"
            );
            report
        }
        Some(Err(e)) => {
            println!("fail daemon: the running orb could not run the checks: {e}");
            return ExitCode::from(FAILED);
        }
        None => runtime.block_on(doctor::run(&config, &DoctorOptions::default())),
    };
    for check in &report.checks {
        println!("{check}");
    }
    if report.failed() {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
