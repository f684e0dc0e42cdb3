//! Credentials, permissions, retries, timeouts and the audit hook.

use std::time::Duration;

use orb_emulators::topdesk::Fault;
use orb_topdesk_client::{Error, ReservationQuery, ReservationRef, TopdeskClient};

use super::support::{Harness, config_for};

fn everything() -> ReservationQuery {
    ReservationQuery {
        filter: None,
        fields: None,
        page_size: 100,
    }
}

#[tokio::test]
async fn expired_credentials_are_a_typed_error_and_not_retried() {
    let h = Harness::start().await;
    h.emu.expire_credentials();
    let err = h.client.list_reservations(&everything()).await.unwrap_err();
    assert!(matches!(err, Error::CredentialsRejected { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let err = h
        .client
        .person_by_email("eva.jansen@example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CredentialsRejected { ref details } if details.0[0].message.is_some()),
        "{err:?}"
    );
    assert_eq!(h.emu.request_count(), 2);
    assert!(!err.to_string().contains(&h.emu.operator_credentials().1));

    h.emu.set_operator_password("rotated");
    let mut config = config_for(&h.emu);
    config.application_password = "rotated".into();
    let fresh = TopdeskClient::new(config, None).unwrap();
    fresh.list_reservations(&everything()).await.unwrap();
    h.assert_schemas();
}

#[tokio::test]
async fn person_accounts_may_not_list_reservations() {
    let h = Harness::start().await;
    h.emu.add_person_account("ssp-user", "pw");
    let mut config = config_for(&h.emu);
    config.login_name = "ssp-user".into();
    config.application_password = "pw".into();
    let client = TopdeskClient::new(config, None).unwrap();
    let err = client.list_reservations(&everything()).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    h.assert_schemas();
}

#[tokio::test]
async fn retries_injected_503s_with_one_correlation_id() {
    let h = Harness::start().await;
    h.emu.inject_fault(Fault {
        retry_after: Some("0".into()),
        ..Fault::status(503, 2)
    });
    let created = h
        .client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "r"))
        .await
        .unwrap();
    assert_eq!(h.emu.reservations().len(), 1);
    let statuses: Vec<u16> = h.emu.exchanges().iter().map(|e| e.status).collect();
    assert_eq!(statuses, vec![503, 503, 201]);
    let audit = h.audit.lock().unwrap().clone();
    assert_eq!(audit.len(), 3);
    assert!(
        audit
            .iter()
            .all(|a| a.correlation_id == audit[0].correlation_id)
    );
    assert_eq!(
        audit.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        audit
            .iter()
            .all(|a| a.path_template == "/reservations" && a.method == "POST")
    );

    h.audit.lock().unwrap().clear();
    h.client
        .reservation(&ReservationRef::from(&created.id))
        .await
        .unwrap();
    let get = h.audit.lock().unwrap()[0].clone();
    assert_eq!(
        get.path_template, "/reservations/{identifier}",
        "templates, never ids"
    );
    assert_ne!(get.correlation_id, audit[0].correlation_id);

    h.audit.lock().unwrap().clear();
    let traced = h.client.with_correlation_id("booking-42");
    traced.list_reservations(&everything()).await.unwrap();
    traced.branches().await.unwrap();
    let records = h.audit.lock().unwrap().clone();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.correlation_id == "booking-42"));
    assert_eq!(records[0].operation, "list_reservations");
    h.assert_schemas();
}

#[tokio::test]
async fn gives_up_after_the_last_attempt_with_a_retryable_error() {
    let h = Harness::start().await;
    h.emu.inject_fault(Fault {
        retry_after: Some("0".into()),
        ..Fault::status(429, 10)
    });
    let err = h.client.list_reservations(&everything()).await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { retry_after: Some(d), .. } if d == Duration::ZERO),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(h.emu.request_count(), 4);
    h.assert_schemas();
}

#[tokio::test]
async fn a_long_retry_after_is_handed_to_the_caller() {
    let h = Harness::start().await;
    h.emu.inject_fault(Fault {
        retry_after: Some("120".into()),
        ..Fault::status(503, 1)
    });
    let err = h.client.branches().await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(120)),
        "{err:?}"
    );
    assert_eq!(h.emu.request_count(), 1);
}

#[tokio::test]
async fn other_client_errors_are_never_retried() {
    let h = Harness::start().await;
    for status in [400u16, 403, 404, 409, 500] {
        h.emu.clear_log();
        h.emu.inject_fault(Fault::status(status, 5));
        let err = h.client.branches().await.unwrap_err();
        assert_eq!(h.emu.request_count(), 1, "status {status}: {err:?}");
        h.emu.clear_faults();
    }
}

#[tokio::test]
async fn gateway_errors_are_retried_for_reads_but_not_for_creates() {
    let h = Harness::start().await;
    h.emu.inject_fault(Fault::status(502, 1));
    h.client.branches().await.unwrap();
    assert_eq!(h.emu.request_count(), 2);

    h.emu.clear_log();
    h.emu.inject_fault(Fault {
        method: Some(http::Method::POST),
        ..Fault::status(504, 1)
    });
    let err = h
        .client
        .create_reservation(&h.meeting("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z", "g"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(
        h.emu.request_count(),
        1,
        "a create that may have happened is not repeated"
    );
}

#[tokio::test]
async fn slow_answers_time_out() {
    let h = Harness::start().await;
    h.emu.set_latency(Duration::from_secs(5));
    let mut config = config_for(&h.emu);
    config.timeout = Duration::from_millis(150);
    config.retry.max_attempts = 1;
    let client = TopdeskClient::new(config, None).unwrap();
    let err = client.branches().await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn unreachable_topdesk_is_a_transport_error() {
    let h = Harness::start().await;
    let mut config = config_for(&h.emu);
    // Nothing listens on port 1; a freed ephemeral port could be reused by a parallel test.
    config.base_url = "http://127.0.0.1:1/tas/api".into();
    config.retry.max_attempts = 2;
    let client = TopdeskClient::new(config, None).unwrap();
    let err = client.branches().await.unwrap_err();
    assert!(
        matches!(err, Error::Transport(_) | Error::Timeout),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("application-password"));
}

#[test]
fn configuration_is_checked() {
    let base = |url: &str| {
        let mut c = orb_topdesk_client::Config::new(
            url,
            "op",
            "pw",
            orb_topdesk_client::ExternalLinkType::new(1).unwrap(),
        );
        c.retry.max_attempts = 1;
        TopdeskClient::new(c, None)
    };
    assert!(matches!(
        base("https://example.topdesk.net").unwrap_err(),
        Error::InvalidConfig(_)
    ));
    assert!(base("https://example.topdesk.net/tas/api").is_ok());
}
