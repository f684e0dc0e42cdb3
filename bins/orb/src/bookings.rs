//! `orb bookings list / show ID / retry ID --config FILE`: the booking view through the
//! running daemon's admin API (so the configured exclusions apply exactly as in the API).
//!
//! Exit 0: done; 1: the call failed (daemon unreachable, token refused, no such booking,
//! retry refused); 2: unusable configuration or arguments.

use std::path::Path;
use std::process::ExitCode;

use orb_service::Config;
use orb_service::admin_client::{AdminClient, ClientError};
use orb_service::view::{self, Query};

/// The operation failed.
const FAILED: u8 = 1;
/// Usage error or unusable configuration.
const UNUSABLE: u8 = 2;

/// The filters of `orb bookings list`, as given on the command line.
#[derive(Debug, Default)]
pub(crate) struct ListArgs {
    pub(crate) room: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) search: Option<String>,
    pub(crate) sort: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) cursor: Option<String>,
}

pub(crate) fn list(config: &Path, args: &ListArgs) -> ExitCode {
    let limit = args.limit.map(|n| n.to_string());
    let pairs = [
        ("room", args.room.as_deref()),
        ("status", args.status.as_deref()),
        ("from", args.from.as_deref()),
        ("to", args.to.as_deref()),
        ("search", args.search.as_deref()),
        ("sort", args.sort.as_deref()),
        ("limit", limit.as_deref()),
        ("cursor", args.cursor.as_deref()),
    ];
    let query = match Query::from_pairs(pairs.iter().filter_map(|(k, v)| Some((*k, (*v)?)))) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("orb: {e}");
            return ExitCode::from(UNUSABLE);
        }
    };
    call(config, |client| async move {
        let page = client.list(&query).await?;
        print!("{}", view::render_table(&page));
        Ok(())
    })
}

pub(crate) fn show(config: &Path, id: &str) -> ExitCode {
    call(config, |client| async move {
        let detail = client.show(id).await?;
        print!("{}", view::render_detail(&detail));
        Ok(())
    })
}

pub(crate) fn retry(config: &Path, id: &str) -> ExitCode {
    call(config, |client| async move {
        let accepted = client.retry(id).await?;
        println!(
            "retry of booking {} accepted (it was {}); `orb bookings show {}` follows it",
            accepted.id, accepted.was, accepted.id
        );
        Ok(())
    })
}

/// Loads the configuration, builds the client, runs `f` and maps the outcome to an exit
/// code.
fn call<F, Fut>(config: &Path, f: F) -> ExitCode
where
    F: FnOnce(AdminClient) -> Fut,
    Fut: Future<Output = Result<(), ClientError>>,
{
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orb: {e}");
            return ExitCode::from(UNUSABLE);
        }
    };
    let client = match AdminClient::from_config(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orb: {e}");
            return ExitCode::from(if e.is_usage() { UNUSABLE } else { FAILED });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orb: cannot start the runtime: {e}");
            return ExitCode::from(FAILED);
        }
    };
    match runtime.block_on(f(client)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orb: {e}");
            ExitCode::from(if e.is_usage() { UNUSABLE } else { FAILED })
        }
    }
}
