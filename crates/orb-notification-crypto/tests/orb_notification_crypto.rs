//! Integration tests of orb-notification-crypto (one test binary, submodules by topic).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test, which is the point"
)]

mod orb_notification_crypto {
    mod common;
    mod jwt;
    mod known_answer;
    mod negative;
    mod properties;
    mod ring;
}
