//! Integration tests of orb-service.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test, which is the point"
)]

mod orb_service {
    mod admin;
    mod browser;
    mod config;
    mod conflicts;
    mod credentials;
    mod demo;
    mod doctor;
    mod dry_run;
    mod e2e;
    mod faults;
    mod intake;
    mod lifecycle;
    mod maintenance;
    mod restart;
    mod scenarios;
    mod security;
    mod state;
    mod subscription_conflict;
    mod sync_config;
    mod view;
    mod webhook;
    mod world;
}
