//! `[sync]` settings that shape the engine's decisions: delegate rules, the conflict
//! policy and the mass-cancellation guard reach the engine as configured.

use orb_reconcile::{ConflictPolicy, DelegateRule, EmailAddress};
use orb_service::Config;
use orb_service::runtime::{Options, engine_config};

use super::world::{ALICE, BOB, World, in_days};

use super::config::MINIMAL as BASE;

fn with_sync(sync: &str) -> Result<Config, orb_service::config::ConfigError> {
    Config::from_toml_str(&format!("{BASE}\n[sync]\n{sync}"))
}

fn email(e: &str) -> EmailAddress {
    EmailAddress::parse(e).unwrap()
}

#[test]
fn delegate_rules_conflict_policy_and_guard_reach_the_engine() {
    let config = with_sync(
        r#"
conflict_policy = "latest-wins"
mass_cancel_max_percent = 20
mass_cancel_min_bookings = 3

[[sync.delegates]]
mailbox = "Carol@Example.com"
requester = "first-required-attendee"

[[sync.delegates]]
mailbox = "desk@example.com"
requester = "principal"
principal = "facilities@example.com"

[[sync.delegates]]
mailbox = "assistant@example.com"
requester = "organizer"
"#,
    )
    .unwrap();
    let engine = engine_config(&config, &Options::default());
    assert_eq!(engine.conflict_policy, ConflictPolicy::LatestWins);
    assert_eq!(engine.mass_cancel.max_share_percent, 20);
    assert_eq!(engine.mass_cancel.min_bookings, 3);
    assert_eq!(
        engine.delegates.get(&email("carol@example.com")),
        Some(&DelegateRule::FirstRequiredAttendee)
    );
    assert_eq!(
        engine.delegates.get(&email("desk@example.com")),
        Some(&DelegateRule::Principal(email("facilities@example.com")))
    );
    assert_eq!(
        engine.delegates.get(&email("assistant@example.com")),
        Some(&DelegateRule::Organizer)
    );
}

#[test]
fn the_defaults_are_exchange_wins_and_half_of_five() {
    let engine = engine_config(&with_sync("").unwrap(), &Options::default());
    assert_eq!(engine.conflict_policy, ConflictPolicy::ExchangeWins);
    assert_eq!(engine.mass_cancel.max_share_percent, 50);
    assert_eq!(engine.mass_cancel.min_bookings, 5);
    assert!(engine.delegates.is_empty());
}

#[test]
fn bad_sync_settings_are_named() {
    let problems = |sync: &str| match with_sync(sync) {
        Err(orb_service::config::ConfigError::Invalid(p)) => p.join("\n"),
        Err(other) => other.to_string(),
        Ok(_) => panic!("accepted: {sync}"),
    };
    assert!(problems("conflict_policy = \"orb-wins\"").contains("conflict_policy"));
    assert!(problems("mass_cancel_max_percent = 120").contains("between 0 and 100"));
    let missing =
        problems("[[sync.delegates]]\nmailbox = \"a@example.com\"\nrequester = \"principal\"");
    assert!(missing.contains("no principal"), "{missing}");
    let stray = problems(
        "[[sync.delegates]]\nmailbox = \"a@example.com\"\nrequester = \"organizer\"\nprincipal = \"b@example.com\"",
    );
    assert!(stray.contains("only used with"), "{stray}");
    let twice = problems(
        "[[sync.delegates]]\nmailbox = \"a@example.com\"\nrequester = \"organizer\"\n[[sync.delegates]]\nmailbox = \"A@example.com\"\nrequester = \"first-required-attendee\"",
    );
    assert!(twice.contains("more than one rule"), "{twice}");
    let bad =
        problems("[[sync.delegates]]\nmailbox = \"not-an-address\"\nrequester = \"organizer\"");
    assert!(bad.contains("not an e-mail address"), "{bad}");
    let unknown = problems("[[sync.delegates]]\nmailbox = \"a@example.com\"\nrequester = \"boss\"");
    assert!(unknown.contains("requester"), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegates_meeting_is_requested_for_the_person_it_was_booked_for() {
    // Alice books for Bob (her meeting invites Bob as the required attendee).
    let world = World::start_configured(
        &format!(
            "[[sync.delegates]]\nmailbox = \"{ALICE}\"\nrequester = \"first-required-attendee\"\n"
        ),
        |_| {},
    )
    .await;
    world.book_in_outlook("Booked by Alice for Bob", in_days(2), 30);
    let reservation = world
        .reservation_where("the reservation", |r| {
            r.brief_description == "Booked by Alice for Bob"
        })
        .await;
    assert_eq!(reservation.requester_id, world.person(BOB));
    world.stop().await;
}

#[test]
fn audit_retention_defaults_to_ninety_days_and_is_at_least_a_day() {
    let base = with_sync("").unwrap();
    assert_eq!(
        base.service.audit_retention,
        std::time::Duration::from_secs(90 * 24 * 3600)
    );
    let text = BASE.replace(
        "data_dir = \"/tmp/orb\"",
        "data_dir = \"/tmp/orb\"\naudit_retention = \"30d\"",
    );
    let config = Config::from_toml_str(&text).unwrap();
    assert_eq!(
        config.service.audit_retention,
        std::time::Duration::from_secs(30 * 24 * 3600)
    );
    let short = BASE.replace(
        "data_dir = \"/tmp/orb\"",
        "data_dir = \"/tmp/orb\"\naudit_retention = \"2h\"",
    );
    match Config::from_toml_str(&short) {
        Err(orb_service::config::ConfigError::Invalid(p)) => {
            assert!(p.iter().any(|p| p.contains("audit_retention")), "{p:?}");
        }
        other => panic!("{other:?}"),
    }
}
