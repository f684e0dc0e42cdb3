//! The orb daemon's composition layer: configuration (the TOML contract of
//! `interfaces.md`, validated strictly) and, as it grows, the webhook server, subscription
//! manager, pollers and the executor that run the engine's plans.
//!
//! It owns no wire format and no on-disk format — those belong to the client crates and
//! `orb-store` — and no sync decision, which belongs to `orb-reconcile`.

pub mod admin;
pub mod admin_client;
pub mod api;
mod audit_writer;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
mod error;
pub mod exchange;
pub mod intake;
pub mod jwks;
pub mod metrics;
pub mod persist;
pub mod runtime;
pub mod state;
pub mod subscriptions;
pub mod sync;
pub mod topdesk;
pub mod view;
pub mod webhook;

pub use config::{Config, ConfigError};
pub use error::Error;
