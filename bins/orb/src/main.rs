//! `orb`: keeps meeting-room bookings in sync between Exchange Online and TOPdesk.
//!
//! This binary is thin: it parses arguments, calls library crates and maps their errors
//! to exit codes. Everything it prints goes through this crate; the libraries only log.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command line is the one place that talks to the terminal"
)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bookings;
mod demo;
mod doctor;
mod malloc;
mod notification;
mod run;
mod state;

/// Keeps meeting-room bookings in sync between Exchange Online (Microsoft Graph) and
/// TOPdesk Reservations.
#[derive(Debug, Parser)]
#[command(name = "orb", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts the Graph and TOPdesk emulators and a real orb service in this process
    /// (loopback only, temporary data, no configuration), runs the showcase scenarios and
    /// prints what happened, then the bookings on both sides. Exit 0 only when every
    /// scenario converged within the time bound.
    Demo {
        /// Bound on the whole run, in seconds; exceeding it fails the demo.
        #[arg(long, value_name = "N", default_value_t = 60)]
        seconds: u64,
    },
    /// Runs the daemon until SIGINT or SIGTERM (then stops accepting, finishes the work in
    /// flight and flushes the store).
    Run {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Plan and log, but write nothing to Exchange or TOPdesk (pilots).
        #[arg(long)]
        dry_run: bool,
    },
    /// Checks the configuration, secrets, Graph token and permissions, the room mapping
    /// (Graph rooms ↔ TOPdesk locations), certificates and the public URL; one line per
    /// check (`ok` / `warn` / `fail` + why). Exit 1 on any fail, 2 for an unusable file.
    Doctor {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Work with Graph change notifications.
    Notification {
        #[command(subcommand)]
        command: NotificationCommand,
    },
    /// Prints the Graph application permissions orb needs, each with the calls that need
    /// it and why.
    Permissions {
        /// Print exactly what this configuration needs (Mail.Send only with
        /// `graph.mail_sender`); without it, everything orb can use.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show or rotate the notification-encryption certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Store secrets (Graph client secret, TOPdesk application password) encrypted.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// The booking view (the configured field exclusions apply), through the running
    /// daemon's admin API at `service.listen` with the token of
    /// `service.admin_token_file`. Exit 1 when the call fails (e.g. the daemon is not
    /// running), 2 for an unusable configuration or argument.
    Bookings {
        #[command(subcommand)]
        command: BookingsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BookingsCommand {
    /// Lists bookings as a table of the management fields, earliest start first.
    List {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Only this room (mailbox).
        #[arg(long, value_name = "MAILBOX")]
        room: Option<String>,
        /// Only bookings in this state: in-sync, pending, failed, parked, conflicting,
        /// held-removal, cancelled.
        #[arg(long, value_name = "STATE")]
        status: Option<String>,
        /// Only bookings starting at or after this (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Only bookings starting before this (RFC 3339, or YYYY-MM-DD: that day included).
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Free text over organizer and room.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// Order: `start` (earliest first), `updated` (newest first), `failures` (most
        /// first), `room` or `organizer` (by address, then start).
        #[arg(long, value_name = "ORDER")]
        sort: Option<String>,
        /// Bookings per page (at most 500).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Continue after a previous page (the `--cursor` it printed).
        #[arg(long, value_name = "CURSOR")]
        cursor: Option<String>,
    },
    /// Shows one booking: every visible ORB field in its group (agenda, system, status)
    /// and its audit trail.
    Show {
        /// The booking's id (its ORB match id, as `list` prints it).
        id: String,
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Asks the daemon to retry a failed or parked booking.
    Retry {
        /// The booking's id.
        id: String,
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Lists the certificates in the ring: id, state, thumbprint, validity.
    List {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Generates a new certificate and makes it current. Subscriptions move to it at
    /// their next renewal; the previous key keeps decrypting until no subscription uses it.
    Rotate {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// RSA key size: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        /// Validity period (humantime, e.g. `90d`).
        #[arg(long, default_value = "90d")]
        validity: humantime::Duration,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Reads a secret from standard input and stores it encrypted under NAME; refer to it
    /// in the configuration as `secret:NAME`.
    Set {
        /// The secret's name, e.g. `graph-client-secret`.
        name: String,
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum NotificationCommand {
    /// Decrypts a Graph change-notification collection (JSON as Graph POSTs it).
    ///
    /// For each item that carries `encryptedContent`, in order, prints the decrypted
    /// resource as one compact JSON line on stdout. Exit 0: every encrypted item decrypted
    /// and verified; 1: at least one item failed (one line per failure on stderr, the
    /// others are still printed); 2: unusable input.
    Decrypt {
        /// A private key (PEM, PKCS#8 or PKCS#1): `CERT_ID=PEM_FILE` serves that
        /// `encryptionCertificateId`; a bare `PEM_FILE` serves any id. Repeatable.
        #[arg(long = "key", value_name = "[CERT_ID=]PEM_FILE")]
        keys: Vec<String>,
        /// The notification collection (JSON).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's own convention: 0 for --help/--version, 2 for usage errors.
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match cli.command {
        Command::Demo { seconds } => demo::demo(seconds),
        Command::Run { config, dry_run } => {
            malloc::tune_for_daemon();
            run::run(&config, dry_run)
        }
        Command::Doctor { config } => doctor::doctor(&config),
        Command::Notification {
            command: NotificationCommand::Decrypt { keys, file },
        } => notification::decrypt_command(&keys, &file),
        Command::Permissions { config } => permissions(config.as_deref()),
        Command::Certs {
            command: CertsCommand::List { config },
        } => state::certs_list(&config),
        Command::Certs {
            command:
                CertsCommand::Rotate {
                    config,
                    bits,
                    validity,
                },
        } => state::certs_rotate(&config, bits, validity.into()),
        Command::Secrets {
            command: SecretsCommand::Set { name, config },
        } => state::secrets_set(&config, &name),
        Command::Bookings {
            command:
                BookingsCommand::List {
                    config,
                    room,
                    status,
                    from,
                    to,
                    search,
                    sort,
                    limit,
                    cursor,
                },
        } => bookings::list(
            &config,
            &bookings::ListArgs {
                room,
                status,
                from,
                to,
                search,
                sort,
                limit,
                cursor,
            },
        ),
        Command::Bookings {
            command: BookingsCommand::Show { id, config },
        } => bookings::show(&config, &id),
        Command::Bookings {
            command: BookingsCommand::Retry { id, config },
        } => bookings::retry(&config, &id),
    }
}

fn permissions(config: Option<&std::path::Path>) -> ExitCode {
    let mail_enabled = match config {
        None => true,
        Some(path) => match orb_service::Config::load(path) {
            Ok(c) => c.graph.mail_sender.is_some(),
            Err(e) => {
                eprintln!("orb: {e}");
                return ExitCode::from(2);
            }
        },
    };
    println!("Microsoft Graph application permissions (admin consent required):\n");
    print!("{}", orb_graph_client::render_permissions(mail_enabled));
    if config.is_none() {
        println!(
            "\nMail.Send is needed only when graph.mail_sender is set, and only for that mailbox."
        );
    }
    ExitCode::SUCCESS
}
