//! Throttling, retries, access denied, permissions, concurrency and timeouts.

use std::time::Duration;

use orb_emulators::graph::{Fault, roles};
use orb_graph_client::{Credential, Error, Operation, Permission, Secret, required_permissions};

use super::support::*;

#[tokio::test]
async fn throttled_calls_are_retried_honouring_retry_after() {
    let world = World::start().await;
    let client = world.client();
    client.rooms().await.unwrap();
    world.emulator.inject(Fault::Throttle {
        status: 429,
        retry_after: Some(0),
        times: 2,
    });
    world.emulator.inject(Fault::Throttle {
        status: 503,
        retry_after: None,
        times: 1,
    });
    assert_eq!(client.rooms().await.unwrap().len(), 2);
    let statuses: Vec<Option<u16>> = world
        .audit()
        .iter()
        .filter(|r| r.operation == "list_rooms")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [Some(200), Some(429), Some(429), Some(503), Some(200)]
    );
    let attempts: Vec<u32> = world
        .audit()
        .iter()
        .filter(|r| r.operation == "list_rooms")
        .map(|r| r.attempt)
        .collect();
    assert_eq!(attempts, [1, 1, 2, 3, 4]);
}

#[tokio::test]
async fn throttling_beyond_the_budget_is_a_typed_error() {
    let world = World::start().await;
    let client = world.client();
    world.emulator.inject(Fault::Throttle {
        status: 429,
        retry_after: Some(0),
        times: 4,
    });
    let err = client.rooms().await.unwrap_err();
    assert!(
        matches!(err, Error::Throttled { status: 429, attempts: 4, retry_after: Some(d) } if d == Duration::ZERO),
        "{err:?}"
    );
    assert!(err.is_retryable());

    // A Retry-After longer than the remaining budget is not slept through.
    world.emulator.inject(Fault::Throttle {
        status: 503,
        retry_after: Some(3600),
        times: 1,
    });
    let started = std::time::Instant::now();
    let err = client.rooms().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Throttled {
                status: 503,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_mailbox_outside_the_access_policy_is_denied_by_name() {
    let world = World::start().await;
    world
        .emulator
        .set_access_policy(CLIENT_ID, Some(&[ROOM_A, ALICE]));
    let client = world.client();
    let (start, end) = day_window();
    client
        .calendar_view(&mailbox(ROOM_A), start, end)
        .await
        .unwrap();
    let err = client
        .calendar_view(&mailbox(ROOM_B), start, end)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::MailboxAccessDenied { ref mailbox, ref code, ref request_id } if mailbox == ROOM_B && code == "ErrorAccessDenied" && request_id.is_some()),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    // Places are not mailbox-scoped.
    client.rooms().await.unwrap();
}

#[tokio::test]
async fn calls_outside_the_granted_roles_are_forbidden() {
    let world = World::start().await;
    world
        .emulator
        .set_roles(CLIENT_ID, &[roles::CALENDARS_READ, roles::PLACE_READ_ALL]);
    let client = world.client();
    let err = client
        .create_event(&mailbox(ALICE), &meeting(9, Some(ROOM_A), "r"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MailboxAccessDenied { .. }), "{err:?}");
    let err = client
        .send_mail(&orb_graph_client::Mail {
            to: vec![ALICE.into()],
            subject: "s".into(),
            body: "b".into(),
            save_to_sent_items: true,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MailboxAccessDenied { .. }), "{err:?}");
    world
        .emulator
        .set_roles(CLIENT_ID, &[roles::CALENDARS_READ]);
    // Tokens carry the roles granted when they were issued.
    world.emulator.revoke_tokens();
    let err = client.rooms().await.unwrap_err();
    assert!(
        matches!(err, Error::Forbidden { ref code, .. } if code == "Authorization_RequestDenied"),
        "{err:?}"
    );
}

#[tokio::test]
async fn exactly_the_declared_permissions_run_every_operation() {
    // An app granted exactly the four declared permissions can make every call.
    let names: Vec<&str> = required_permissions(true)
        .iter()
        .map(|u| u.permission.name())
        .collect();
    assert_eq!(
        names,
        [
            "Calendars.Read",
            "Calendars.ReadWrite",
            "Place.Read.All",
            "Mail.Send"
        ]
    );
    assert_eq!(names, ALL_ROLES);
    let mail_users: Vec<Operation> = Operation::ALL
        .into_iter()
        .filter(|o| o.permission() == Permission::MailSend)
        .collect();
    assert_eq!(mail_users, [Operation::SendMail]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_four_requests_run_per_mailbox() {
    let world = World::start().await;
    let client = world.client();
    client.rooms().await.unwrap();
    world.emulator.inject(Fault::Slow {
        delay: Duration::from_millis(30),
        times: 12,
    });
    let (start, end) = day_window();
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.calendar_view(&mailbox(ROOM_A), start, end).await })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let max = world.emulator.max_concurrency(ROOM_A);
    assert!((1..=4).contains(&max), "max concurrency {max}");
}

#[tokio::test]
async fn slow_answers_time_out() {
    let world = World::start().await;
    let mut config = world.config();
    // Generous against a loaded machine, far below the injected latency.
    config.timeout = Duration::from_millis(300);
    let client = world.client_with(config, Credential::Secret(Secret::new(SECRET)));
    world.emulator.inject(Fault::Slow {
        delay: Duration::from_secs(3),
        times: 1,
    });
    let err = client.rooms().await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(err.is_retryable());
    let last = world.audit().pop().unwrap();
    assert_eq!(last.status, None);
}
