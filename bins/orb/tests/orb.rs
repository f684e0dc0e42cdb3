//! Tests of the `orb` binary, run as a subprocess exactly as an operator would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test, which is the point"
)]

mod orb {
    mod bookings;
    mod crash;
    mod demo;
    mod doctor;
    mod notification_decrypt;
    mod state_commands;
}
