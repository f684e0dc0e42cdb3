//! `orb run --config FILE`: the daemon, until SIGINT or SIGTERM.
//!
//! Logs go to stderr, one line per event (`time level target: message key=value…`),
//! through a small built-in subscriber; `ORB_LOG=debug|info|warn|error` sets the level
//! (default `info`), `ORB_LOG_FORMAT=json` makes each line one JSON object.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use orb_service::runtime::{Daemon, Options};
use orb_service::{Config, state};
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata, Subscriber};

/// The daemon failed while running.
const FAILED: u8 = 1;
/// Usage error or unusable configuration.
const UNUSABLE: u8 = 2;

pub(crate) fn run(config: &Path, dry_run: bool) -> ExitCode {
    let level = match std::env::var("ORB_LOG").as_deref() {
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        Ok("warn") => Level::WARN,
        Ok("error") => Level::ERROR,
        _ => Level::INFO,
    };
    let _ = tracing::subscriber::set_global_default(StderrLog {
        level,
        json: std::env::var("ORB_LOG_FORMAT").as_deref() == Ok("json"),
        next_span: AtomicU64::new(1),
    });
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orb: {e}");
            return ExitCode::from(UNUSABLE);
        }
    };
    let opened = match state::open(&config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("orb: {e}");
            return ExitCode::from(FAILED);
        }
    };
    if opened.created_master_key {
        eprintln!(
            "orb: warning: created {}/master.key beside the data it protects; set service.master_key to keep it elsewhere",
            config.service.data_dir.display()
        );
    }
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
    let options = Options {
        dry_run,
        ..Options::default()
    };
    let result = runtime.block_on(async move {
        let daemon = Daemon::start(config, opened.store, options).await?;
        tracing::info!(addr = %daemon.local_addr(), dry_run, "orb is running");
        let stop = daemon.shutdown_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: finishing in-flight work");
            let _ = stop.send(true);
        });
        daemon.wait().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orb: {e}");
            ExitCode::from(FAILED)
        }
    }
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A minimal subscriber: events at or above `level`, one line each on stderr. Spans are
/// accepted but not shown.
struct StderrLog {
    level: Level,
    json: bool,
    next_span: AtomicU64,
}

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.level
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed).max(1))
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if self.json {
            let mut fields = JsonLine(serde_json::Map::new());
            event.record(&mut fields);
            let mut object = fields.0;
            object.insert(
                "time".into(),
                orb_store::Timestamp::now().to_string().into(),
            );
            object.insert("level".into(), meta.level().as_str().into());
            object.insert("target".into(), meta.target().into());
            eprintln!("{}", serde_json::Value::Object(object));
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        eprintln!(
            "{} {:>5} {}: {}{}",
            orb_store::Timestamp::now(),
            meta.level(),
            meta.target(),
            line.message,
            line.fields
        );
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// The fields of one event as a JSON object.
struct JsonLine(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonLine {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}
