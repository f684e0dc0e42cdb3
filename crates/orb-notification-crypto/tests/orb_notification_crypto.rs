//! Integration tests of orb-notification-crypto (one test binary, submodules by topic).

mod orb_notification_crypto {
    mod common;
    mod jwt;
    mod known_answer;
    mod negative;
    mod properties;
    mod ring;
}
