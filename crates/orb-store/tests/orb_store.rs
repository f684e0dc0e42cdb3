//! Integration tests of orb-store (one test binary, submodules by topic).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "tests: a panic is a failed test; child processes report over stdout"
)]

mod orb_store {
    mod audit;
    mod bookings;
    mod child;
    mod common;
    mod crash;
    mod cursors;
    mod engine_state;
    mod faults;
    mod format;
    mod inbox;
    mod outbox;
    mod properties;
    mod secrets;
    mod subscriptions;
    mod transactions;
}
