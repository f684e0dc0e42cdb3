//! Client credentials: secret and certificate assertions, caching, single flight,
//! early refresh, typed failures, and tokens never reaching the audit trail.

use std::time::Duration;

use orb_emulators::graph::{AppRegistration, GraphEmulatorConfig};
use orb_graph_client::{AssertionStyle, ClientCertificate, Credential, Error, Secret};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_fetched_once_and_shared_by_concurrent_callers() {
    let world = World::start().await;
    let client = world.client();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.rooms().await })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    client.rooms().await.unwrap();
    assert_eq!(world.emulator.tokens_issued(), 1);
    let token_calls = world
        .audit()
        .iter()
        .filter(|r| r.operation == "acquire_token")
        .count();
    assert_eq!(token_calls, 1);
}

#[tokio::test]
async fn tokens_are_refreshed_five_minutes_before_expiry() {
    // A token living less than the refresh margin is replaced on every call.
    let world = World::start_with(GraphEmulatorConfig {
        token_lifetime: Duration::from_secs(120),
        ..GraphEmulatorConfig::default()
    })
    .await;
    let client = world.client();
    client.rooms().await.unwrap();
    client.rooms().await.unwrap();
    client.rooms().await.unwrap();
    assert_eq!(world.emulator.tokens_issued(), 3);
}

#[tokio::test]
async fn a_revoked_token_is_replaced_transparently_after_401() {
    let world = World::start().await;
    let client = world.client();
    client.rooms().await.unwrap();
    world.emulator.revoke_tokens();
    client.rooms().await.unwrap();
    assert_eq!(world.emulator.tokens_issued(), 2);
    let statuses: Vec<Option<u16>> = world
        .audit()
        .iter()
        .filter(|r| r.operation == "list_rooms")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(200), Some(401), Some(200)]);
}

#[tokio::test]
async fn a_token_expiring_on_the_server_clock_is_replaced() {
    let world = World::start().await;
    let client = world.client();
    client.rooms().await.unwrap();
    world.emulator.advance_clock(Duration::from_secs(2 * 3600));
    client.rooms().await.unwrap();
    assert_eq!(world.emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client() {
    let world = World::start().await;
    let client = world.client_with(world.config(), Credential::Secret(Secret::new("wrong")));
    let err = client.rooms().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidClient { ref error_codes, .. } if error_codes == &[7000215]),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("wrong"));
}

#[tokio::test]
async fn missing_admin_consent_is_its_own_error() {
    let world = World::start().await;
    let mut app = AppRegistration::with_secret(CLIENT_ID, SECRET, ALL_ROLES);
    app.admin_consent = false;
    world.emulator.register_app(app);
    let err = world.client().rooms().await.unwrap_err();
    assert!(matches!(err, Error::ConsentMissing { .. }), "{err:?}");
}

#[tokio::test]
async fn certificate_assertions_ps256_and_rs256_are_accepted() {
    let world = World::start().await;
    let (pem, der) = certificate_pair();
    world
        .emulator
        .register_app(AppRegistration::with_certificate(CLIENT_ID, der, ALL_ROLES));
    for style in [AssertionStyle::Ps256, AssertionStyle::Rs256] {
        let cert = ClientCertificate::from_pem(&pem, style).unwrap();
        assert!(!format!("{cert:?}").contains("PRIVATE"));
        let client = world.client_with(world.config(), Credential::Certificate(cert));
        assert_eq!(client.rooms().await.unwrap().len(), 2);
    }
    assert_eq!(world.emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn an_assertion_from_an_unregistered_certificate_is_rejected() {
    let world = World::start().await;
    let (_, registered) = certificate_pair();
    let (other_pem, _) = certificate_pair();
    world
        .emulator
        .register_app(AppRegistration::with_certificate(
            CLIENT_ID, registered, ALL_ROLES,
        ));
    let cert = ClientCertificate::from_pem(&other_pem, AssertionStyle::Ps256).unwrap();
    let err = world
        .client_with(world.config(), Credential::Certificate(cert))
        .rooms()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidClient { ref error_codes, .. } if error_codes == &[700027]),
        "{err:?}"
    );
}

#[tokio::test]
async fn unusable_pem_is_a_credential_error() {
    assert!(matches!(
        ClientCertificate::from_pem("not pem", AssertionStyle::Ps256),
        Err(Error::Credential(_))
    ));
    let (pem, _) = certificate_pair();
    let key_only: String = pem
        .split("-----BEGIN CERTIFICATE-----")
        .next()
        .unwrap()
        .to_owned();
    assert!(matches!(
        ClientCertificate::from_pem(&key_only, AssertionStyle::Ps256),
        Err(Error::Credential(_))
    ));
}

#[tokio::test]
async fn the_audit_trail_has_templates_and_correlation_ids_but_no_secrets() {
    let world = World::start().await;
    let client = world.client().with_correlation_id("corr-42");
    client
        .calendar_view(&mailbox(ROOM_A), day_window().0, day_window().1)
        .await
        .unwrap();
    let audit = world.audit();
    let view = audit
        .iter()
        .find(|r| r.operation == "calendar_view")
        .unwrap();
    assert_eq!(view.path_template, "/users/{mailbox}/calendarView");
    assert_eq!(view.method, "GET");
    assert_eq!(view.mailbox.as_deref(), Some(ROOM_A));
    assert_eq!(view.status, Some(200));
    assert_eq!(view.correlation_id, "corr-42");
    assert!(view.request_id.is_some());
    let rendered = format!("{audit:?}");
    assert!(
        !rendered.contains(SECRET) && !rendered.contains("emu."),
        "{rendered}"
    );
    // Graph saw the correlation id as client-request-id.
    assert!(
        world
            .emulator
            .requests()
            .iter()
            .any(|r| r.client_request_id.as_deref() == Some("corr-42"))
    );
}
