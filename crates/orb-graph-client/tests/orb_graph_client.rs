//! Integration tests of the Graph client against the Graph emulator over loopback HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a panic is a failed test"
)]

mod orb_graph_client {
    pub(crate) mod delta;
    pub(crate) mod events;
    pub(crate) mod faults;
    pub(crate) mod places_mail;
    pub(crate) mod subscriptions;
    pub(crate) mod support;
    pub(crate) mod tokens;
}
