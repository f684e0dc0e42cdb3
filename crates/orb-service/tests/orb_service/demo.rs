//! Every scenario of `orb demo`, each on a fresh demo world (both emulators and the real
//! daemon in this process), plus checks the demo itself does not make: after the
//! scenario converged, another full round of both sides changes nothing and duplicates
//! nothing. The whole demo runs once more as a subprocess in `bins/orb/tests/orb/demo.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use orb_service::demo::{
    self, ALICE, BOB, DemoOptions, DemoWorld, MARTIN, Progress, ROOM_2_14, ROOM_2_15, Scenario,
};
use orb_service::metrics::RejectReason;
use orb_service::runtime::Control;

/// How long one step may take before the test fails (generous: CI runs tests in
/// parallel on two cores).
const PATIENCE: Duration = Duration::from_secs(30);

/// `(id, status, start, rooms)` of every reservation, to compare before and after.
fn reservations(world: &DemoWorld) -> Vec<(String, String, jiff::Timestamp, Vec<String>)> {
    world
        .topdesk()
        .reservations()
        .into_iter()
        .map(|r| (r.id, r.status, r.start, r.location_ids))
        .collect()
}

/// Reservations by status.
fn statuses(world: &DemoWorld) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in world.topdesk().reservations() {
        *out.entry(r.status).or_default() += 1;
    }
    out
}

fn delta_rounds(world: &DemoWorld) -> usize {
    world
        .graph()
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/calendarView/delta"))
        .count()
}

/// Both sides, the webhook deliveries and orb's audit trail, for failure messages.
fn diagnosis(world: &DemoWorld) -> String {
    let deliveries: Vec<String> = world
        .graph()
        .deliveries()
        .iter()
        .map(|d| format!("{:?} {:?} {}", d.kind, d.status, d.subscription_id))
        .collect();
    let audit: Vec<String> = world
        .daemon()
        .store()
        .audit_since(jiff::Timestamp::UNIX_EPOCH, 100_000)
        .unwrap()
        .iter()
        .filter(|a| a.entry.action != "GET /reservations")
        .map(|a| {
            format!(
                "{} {} {} {} {:?}",
                a.entry.actor,
                a.entry.action,
                a.entry.outcome,
                a.entry.correlation_id,
                a.entry.detail
            )
        })
        .collect();
    format!(
        "bookings:\n{}\n{:#?}\ninbox pending: {}\ndeliveries:\n{}\naudit:\n{}",
        world.summary(),
        world.bookings(),
        world
            .daemon()
            .store()
            .pending_inbox()
            .map(|p| p.len())
            .unwrap_or(0),
        deliveries.join("\n"),
        audit.join("\n")
    )
}

/// Polls `check` within the world's patience; fails the test with both sides' state.
async fn wait<T>(world: &DemoWorld, what: &str, check: impl Fn(&DemoWorld) -> Option<T>) -> T {
    match world.until(what, check).await {
        Ok(value) => value,
        Err(e) => panic!("{e}\n{}", diagnosis(world)),
    }
}

/// Runs `scenario` on a fresh world, asserts it converged, then makes both sides report
/// everything again and asserts that nothing changed; returns the world for more checks.
async fn converged(scenario: Scenario) -> DemoWorld {
    let world = DemoWorld::start(PATIENCE).await.unwrap();
    let mut steps = Vec::new();
    let result = world
        .run_scenario(scenario, &mut |p: Progress| steps.push(p))
        .await;
    assert!(
        result.converged(),
        "{scenario}: {:?}\nsteps: {steps:#?}\n{}",
        result.outcome,
        diagnosis(&world)
    );
    assert!(
        steps.iter().any(|s| matches!(s, Progress::Observed { .. })),
        "the scenario reports what it saw"
    );

    wait(&world, "orb to finish the scenario's work", |w| {
        w.settled().then_some(())
    })
    .await;
    let before = reservations(&world);
    let bookings = world.bookings().len();
    let rounds = delta_rounds(&world);
    world.daemon().control(Control::PollTopdesk { full: true });
    world.daemon().control(Control::ResyncExchange);
    wait(&world, "a delta round of every room", |w| {
        (delta_rounds(w) >= rounds + w.rooms().len()).then_some(())
    })
    .await;
    world.graph().flush_notifications().await;
    wait(&world, "orb to settle again", |w| w.settled().then_some(())).await;
    assert_eq!(reservations(&world), before, "a full round changed TOPdesk");
    assert_eq!(
        world.bookings().len(),
        bookings,
        "a full round made a booking"
    );
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_an_outlook_booking_appears_in_topdesk() {
    let world = converged(Scenario::OutlookToTopdesk).await;
    assert_eq!(statuses(&world), BTreeMap::from([("planned".into(), 1)]));
    let b = &world.bookings()[0];
    assert_eq!(b.organizer.as_deref(), Some(ALICE));
    assert_eq!(b.room.as_str(), ROOM_2_14);
    assert_eq!(b.subject.as_deref(), Some("Quarterly planning"));
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_a_topdesk_reservation_appears_in_the_organizers_calendar() {
    let world = converged(Scenario::TopdeskToOutlook).await;
    assert_eq!(statuses(&world), BTreeMap::from([("planned".into(), 1)]));
    let in_bob = world
        .graph()
        .events(BOB)
        .into_iter()
        .filter(|e| e["subject"] == "Budget review")
        .count();
    assert_eq!(in_bob, 1, "one event in Bob's calendar");
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_a_time_change_and_a_room_move() {
    let world = converged(Scenario::TimeChangeAndRoomMove).await;
    let live: Vec<_> = world
        .topdesk()
        .reservations()
        .into_iter()
        .filter(|r| r.status == "planned")
        .collect();
    assert_eq!(live.len(), 1, "{live:#?}");
    let room = world.room(ROOM_2_15).unwrap();
    assert_eq!(
        live[0].location_ids,
        std::slice::from_ref(&room.location_id)
    );
    assert_eq!(live[0].start, world.slot(3, 11));
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_cancellations_from_either_side() {
    let world = converged(Scenario::Cancellation).await;
    assert_eq!(statuses(&world), BTreeMap::from([("cancelled".into(), 2)]));
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_a_weekly_series_with_three_occurrences_moved() {
    let world = converged(Scenario::WeeklySeries).await;
    // Five occurrences planned (two in 2.14, three in 2.15), three cancelled in 2.14.
    assert_eq!(
        statuses(&world),
        BTreeMap::from([("cancelled".into(), 3), ("planned".into(), 5)])
    );
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_a_secretary_books_on_behalf_of_a_manager() {
    let world = converged(Scenario::OnBehalfOf).await;
    let b = &world.bookings()[0];
    assert_eq!(b.organizer.as_deref(), Some(MARTIN));
    assert_eq!(
        world.topdesk().reservations()[0].requester_id,
        world.person(MARTIN).unwrap().person_id
    );
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_a_private_meeting_keeps_its_subject_hidden() {
    let world = converged(Scenario::PrivateMeeting).await;
    let r = &world.topdesk().reservations()[0];
    assert_eq!(r.brief_description, "Reserved");
    assert!(world.bookings().iter().all(|b| b.subject.is_none()));
    // Nowhere in orb's audit trail either.
    let audit = world
        .daemon()
        .store()
        .audit_since(jiff::Timestamp::UNIX_EPOCH, 100_000)
        .unwrap();
    assert!(
        audit
            .iter()
            .all(|a| !format!("{:?}", a.entry).contains("Salary")),
        "the subject is in the audit trail"
    );
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_a_tampered_notification_is_rejected() {
    let world = converged(Scenario::TamperedNotification).await;
    let metrics = world.daemon().metrics();
    assert_eq!(metrics.rejected_count(RejectReason::Decrypt), 1);
    let audited = world
        .daemon()
        .store()
        .audit_since(jiff::Timestamp::UNIX_EPOCH, 100_000)
        .unwrap()
        .into_iter()
        .any(|a| a.entry.outcome == "rejected: decrypt");
    assert!(audited, "the rejection is audited");
    // The genuine booking it was copied from is untouched.
    assert_eq!(statuses(&world), BTreeMap::from([("planned".into(), 1)]));
    world.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_demo_converges_and_reports_both_sides() {
    let mut seen = Vec::new();
    let report = demo::run(
        DemoOptions {
            budget: Duration::from_secs(120),
            patience: PATIENCE,
        },
        &mut |p: Progress| seen.push(p),
    )
    .await
    .unwrap();
    assert!(
        report.all_converged(),
        "{:#?}\n{}",
        report.results,
        report.summary
    );
    assert_eq!(report.results.len(), Scenario::ALL.len());
    assert!(matches!(seen.first(), Some(Progress::Ready { .. })));
    let finished = seen
        .iter()
        .filter(|p| matches!(p, Progress::Finished(_)))
        .count();
    assert_eq!(finished, Scenario::ALL.len());
    // Every booking orb keeps is linked on both sides, and nothing is left unlinked.
    let summary = &report.summary;
    assert_eq!(summary.bookings, summary.rows.len(), "\n{summary}");
    assert!(
        summary
            .rows
            .iter()
            .all(|r| r.outlook != "not linked by orb" && r.topdesk != "not linked by orb"),
        "\n{summary}"
    );
    assert_eq!(summary.reservations, summary.bookings, "\n{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_fails_the_demo_instead_of_hanging() {
    let report = demo::run(
        DemoOptions {
            budget: Duration::from_millis(1),
            patience: PATIENCE,
        },
        &mut |_: Progress| {},
    )
    .await
    .unwrap();
    assert!(!report.all_converged());
    assert_eq!(report.skipped.len(), Scenario::ALL.len());
}
