//! Integration tests of the emulators over real loopback HTTP.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a panic is a failed test"
)]

mod orb_emulators {
    pub(crate) mod graph;
    pub(crate) mod http;
    pub(crate) mod topdesk;
}
