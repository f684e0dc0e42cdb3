//! Integration tests: the client against the TOPdesk emulator, with every exchange
//! checked against TOPdesk's published schemas.

// Helpers outside #[test] functions (harness, schema checker) unwrap too.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a panic is a failed test"
)]

mod orb_topdesk_client {
    pub(crate) mod persons;
    pub(crate) mod reservations;
    pub(crate) mod resilience;
    pub(crate) mod rooms;
    pub(crate) mod schema;
    pub(crate) mod support;
}
