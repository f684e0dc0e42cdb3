//! One snapshot per behaviour: the world's trace (every plan rendered as text, headed by
//! the observation that caused it) or a single plan.

use expect_test::{Expect, expect};
use jiff::SignedDuration;
use orb_reconcile::{
    ConflictPolicy, DelegateRule, Engine, GraphEventId, Jitter, Observation, Removal, RetryPolicy,
    SeriesOccurrence, SideStatus, State, SyncMode, TopdeskSeriesId, Window,
};

use crate::world::{World, config, email, location, room, ts};

/// Settles the world, checks the snapshot, agreement and quiescence.
fn check(w: &mut World, expected: Expect) {
    w.settle();
    expected.assert_eq(&w.take_trace());
    w.assert_agree();
    w.assert_quiet();
}

/// A world with one settled Outlook booking of ann in room a.
fn with_exchange_booking() -> (World, usize) {
    let mut w = World::new(config());
    let i = w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    w.settle();
    w.take_trace();
    (w, i)
}

/// A world with one settled TOPdesk booking of bob in room a.
fn with_topdesk_booking() -> (World, usize) {
    let mut w = World::new(config());
    let i = w.user_books_topdesk("bob", "a", "2026-03-04T13:00:00Z", 30, "Intake");
    w.settle();
    w.take_trace();
    (w, i)
}

// ----- Exchange -> TOPdesk --------------------------------------------------------------

#[test]
fn exchange_booking_creates_reservation() {
    let mut w = World::new(config());
    w.trace_bookings = true;
    w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        effect look up person ann@example.com
        person ann@example.com: pending
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0 awaiting=ann@example.com
        -- person resolved ann@example.com
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        person ann@example.com: found p-ann
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        -- succeeded #1 on topdesk
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
    "#]],
    );
}

#[test]
fn exchange_reschedule_and_subject_update_reservation() {
    let (mut w, i) = with_exchange_booking();
    w.user_edits_exchange(i, |m| {
        m.start = ts("2026-03-03T10:00:00Z");
        m.end = ts("2026-03-03T11:30:00Z");
        m.subject = Some("Planning (moved)".into());
    });
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: time,subject
        effect #2 update reservation res-2 [loc-a 2026-03-03T10:00:00Z..2026-03-03T11:30:00Z requester=p-ann(ann@example.com) subject="Planning (moved)"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
    expect![[r#"
        x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T10:00:00Z..2026-03-03T11:30:00Z by ann@example.com "Planning (moved)" | cx=1 by=exchange orig=ann@example.com fail=0 retry=0
    "#]].assert_eq(&w.booking_line("a", "2026-03-03T10:00:00Z"));
}

#[test]
fn exchange_attendee_change_is_stored_not_written() {
    let (mut w, i) = with_exchange_booking();
    w.user_edits_exchange(i, |m| m.attendees = vec![email("bob")]);
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: attendees
    "#]],
    );
}

#[test]
fn exchange_cancel_cancels_reservation() {
    let (mut w, i) = with_exchange_booking();
    w.user_edits_exchange(i, |m| m.cancelled = true);
    check(
        &mut w,
        expect![[r#"
        -- exchange removed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: cancelled
        effect #2 cancel reservation res-2
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
}

#[test]
fn exchange_room_change_cancels_old_and_creates_new() {
    let (mut w, i) = with_exchange_booking();
    w.user_edits_exchange(i, |m| m.room = room("b"));
    check(
        &mut w,
        expect![[r#"
        -- exchange removed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: cancelled
        effect #2 cancel reservation res-2
        -- exchange changed copy-3 in room-b@example.com
        note new x-8526043eefe06494cc0f from exchange
        effect #1 create reservation key=orb:x-8526043eefe06494cc0f:t0 [loc-b 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #2 on topdesk
        -- topdesk changed res-4
        note echo x-8526043eefe06494cc0f on topdesk
        -- succeeded #1 on topdesk
    "#]],
    );
}

#[test]
fn exchange_move_to_unmanaged_room_cancels() {
    let (mut w, i) = with_exchange_booking();
    w.user_edits_exchange(i, |m| m.room = room("z"));
    check(
        &mut w,
        expect![[r#"
        -- exchange removed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: cancelled
        effect #2 cancel reservation res-2
        -- exchange changed copy-3 in room-z@example.com
        note ignored: room is not managed
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
}

#[test]
fn unknown_organizer_falls_back_to_default_requester() {
    let mut w = World::new(config());
    w.user_books_exchange("carol", "a", "2026-03-03T09:00:00Z", 60, "Visit");
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        effect look up person carol@example.com
        -- person resolved carol@example.com
        effect look up person facilities@example.com
        -- person resolved facilities@example.com
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-facilities(facilities@example.com) subject="Visit"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #1 on topdesk
    "#]],
    );
}

#[test]
fn without_any_person_the_booking_is_still_written() {
    let mut cfg = config();
    cfg.default_requester = None;
    let mut w = World::new(cfg);
    w.user_books_exchange("carol", "b", "2026-03-03T09:00:00Z", 60, "Visit");
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-b@example.com
        note new x-8526043eefe06494cc0f from exchange
        effect look up person carol@example.com
        -- person resolved carol@example.com
        effect #1 create reservation key=orb:x-8526043eefe06494cc0f:t0 [loc-b 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=none(carol@example.com) subject="Visit"]
        -- topdesk changed res-2
        note echo x-8526043eefe06494cc0f on topdesk
        -- succeeded #1 on topdesk
    "#]],
    );
}

#[test]
fn unmanaged_room_and_horizon_are_ignored() {
    let mut w = World::new(config());
    w.user_books_exchange("ann", "z", "2026-03-03T09:00:00Z", 60, "Elsewhere");
    w.user_books_exchange("ann", "a", "2027-03-03T09:00:00Z", 60, "Far away");
    w.user_books_exchange("ann", "a", "2026-03-01T09:00:00Z", 60, "Yesterday");
    w.settle();
    expect![[r#"
        -- exchange changed copy-1 in room-z@example.com
        note ignored: room is not managed
        -- exchange changed copy-2 in room-a@example.com
        note ignored: booking lies beyond the horizon
        -- exchange changed copy-3 in room-a@example.com
        note ignored: booking lies in the past
    "#]]
    .assert_eq(&w.take_trace());
    assert_eq!(w.state.bookings().count(), 0);
}

// ----- TOPdesk -> Exchange --------------------------------------------------------------

#[test]
fn topdesk_booking_creates_event_in_requester_calendar() {
    let mut w = World::new(config());
    w.trace_bookings = true;
    w.user_books_topdesk("bob", "a", "2026-03-04T13:00:00Z", 30, "Intake");
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note new t-b524f07bc3b84e584769 from topdesk
            effect look up person bob@example.com
            effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            person bob@example.com: pending
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0 awaiting=bob@example.com
            -- person resolved bob@example.com
            person bob@example.com: found p-bob
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0
            -- exchange changed copy-2 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0
            -- succeeded #1 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0
        "#]],
    );
}

#[test]
fn topdesk_booking_in_room_only_mode_writes_room_calendar() {
    let mut cfg = config();
    cfg.mode = SyncMode::RoomOnly;
    let mut w = World::new(cfg);
    let i = w.user_books_topdesk("bob", "a", "2026-03-04T13:00:00Z", 30, "Intake");
    w.settle();
    w.user_edits_topdesk(i, |r| r.requester = w_person("ann"));
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note new t-b524f07bc3b84e584769 from topdesk
            effect look up person bob@example.com
            effect #1 create event in room-a@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- person resolved bob@example.com
            -- exchange changed ev-2 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #1 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: organizer
            effect look up person ann@example.com
            -- person resolved ann@example.com
        "#]],
    );
}

fn w_person(name: &str) -> Option<orb_reconcile::TopdeskPersonId> {
    Some(orb_reconcile::TopdeskPersonId::new(format!("p-{name}")).unwrap())
}

#[test]
fn topdesk_reschedule_and_room_move_update_the_event() {
    let (mut w, i) = with_topdesk_booking();
    w.user_edits_topdesk(i, |r| {
        r.location = location("b");
        r.start = ts("2026-03-04T14:00:00Z");
        r.end = ts("2026-03-04T15:00:00Z");
    });
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: room,time
            effect #2 update event ev-2 in bob@example.com [room-b@example.com 2026-03-04T14:00:00Z..2026-03-04T15:00:00Z replaces=room-a@example.com subject="Intake"]
            -- exchange removed copy-2 in room-a@example.com
            note ignored: copy orb stopped following (echo of a move)
            -- exchange changed copy-3 in room-b@example.com
            note echo t-b524f07bc3b84e584769 on exchange
            -- succeeded #2 on exchange
        "#]],
    );
}

#[test]
fn topdesk_cancel_cancels_the_event() {
    let (mut w, i) = with_topdesk_booking();
    w.user_edits_topdesk(i, |r| r.cancelled = true);
    check(
        &mut w,
        expect![[r#"
        -- topdesk changed res-1
        note changed t-b524f07bc3b84e584769 on topdesk: cancelled
        effect #2 cancel event ev-2 in bob@example.com
        -- exchange removed copy-2 in room-a@example.com
        note echo t-b524f07bc3b84e584769 on exchange
        -- succeeded #2 on exchange
    "#]],
    );
}

#[test]
fn topdesk_organizer_change_moves_the_event_to_the_new_calendar() {
    let (mut w, i) = with_topdesk_booking();
    w.trace_bookings = true;
    w.user_edits_topdesk(i, |r| r.requester = w_person("ann"));
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: organizer
            effect look up person ann@example.com
            effect #2 cancel event ev-2 in bob@example.com
            person ann@example.com: pending
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by ann@example.com "Intake" | cx=1 by=topdesk orig=bob@example.com fail=0 retry=0 awaiting=ann@example.com
            -- person resolved ann@example.com
            person ann@example.com: found p-ann
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by ann@example.com "Intake" | cx=1 by=topdesk orig=bob@example.com fail=0 retry=0
            -- exchange removed copy-2 in room-a@example.com
            note ignored: copy of an event orb replaced (echo of a relocation)
            -- succeeded #2 on exchange
            effect #3 create event in ann@example.com txn=orb:t-b524f07bc3b84e584769:x1 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by ann@example.com "Intake" | cx=1 by=topdesk orig=bob@example.com fail=0 retry=0
            -- exchange changed copy-3 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by ann@example.com "Intake" | cx=1 by=topdesk orig=bob@example.com fail=0 retry=0
            -- succeeded #3 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by ann@example.com "Intake" | cx=1 by=topdesk orig=bob@example.com fail=0 retry=0
        "#]],
    );
    let live: Vec<String> = w
        .meetings
        .iter()
        .map(|m| format!("{} {} cancelled={}", m.uid, m.calendar, m.cancelled))
        .collect();
    expect![[r#"
        uid-2 bob@example.com cancelled=true
        uid-3 ann@example.com cancelled=false"#]]
    .assert_eq(&live.join("\n"));
}

/// Exchange's room mailbox keeps the old copy with `isCancelled: true` and reports it as
/// changed. That report reaches orb before the outcome of orb's own cancel call: it is the
/// echo of the relocation, not a user's cancellation.
#[test]
fn topdesk_organizer_change_survives_the_old_copys_cancellation_arriving_first() {
    let (mut w, i) = with_topdesk_booking();
    w.linger_cancelled = true;
    w.user_edits_topdesk(i, |r| r.requester = w_person("ann"));
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: organizer
            effect look up person ann@example.com
            effect #2 cancel event ev-2 in bob@example.com
            -- person resolved ann@example.com
            -- exchange changed copy-2 in room-a@example.com
            note ignored: copy of an event orb replaced (echo of a relocation)
            -- succeeded #2 on exchange
            effect #3 create event in ann@example.com txn=orb:t-b524f07bc3b84e584769:x1 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- exchange changed copy-3 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #3 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
        "#]],
    );
    assert!(w.reservations.iter().all(|r| !r.cancelled));
    let b = w.state.bookings().next().unwrap();
    assert_eq!(b.desired.organizer, email("ann"));
    assert_eq!(b.meta.original_organizer, email("bob"));
}

/// Every order of what follows a relocation — the person lookup, the old copy's
/// cancellation, its later deletion, a duplicate of either, and the outcome of orb's
/// cancel call — ends with the meeting in the new organizer's calendar and the
/// reservation kept.
#[test]
fn topdesk_organizer_change_converges_in_every_order() {
    fn permutations(items: Vec<usize>) -> Vec<Vec<usize>> {
        if items.len() <= 1 {
            return vec![items];
        }
        let mut all = Vec::new();
        for (k, first) in items.iter().enumerate() {
            let mut rest = items.clone();
            rest.remove(k);
            for mut tail in permutations(rest) {
                tail.insert(0, *first);
                all.push(tail);
            }
        }
        all
    }
    let mut orders = 0;
    for order in permutations(vec![0, 1, 2, 3, 4]) {
        let (mut w, i) = with_topdesk_booking();
        w.linger_cancelled = true;
        w.user_edits_topdesk(i, |r| r.requester = w_person("ann"));
        w.deliver();
        // Queued now: the person lookup, the old copy's cancellation, the cancel's outcome.
        let mut queued: Vec<Observation> = w.inbox.drain(..).collect();
        assert_eq!(queued.len(), 3, "{}", w.trace_tail());
        let Observation::ExchangeChanged(cancelled) = queued[1].clone() else {
            panic!("expected the old copy's cancellation: {:?}", queued[1]);
        };
        assert!(cancelled.cancelled);
        // Exchange later removes the lingering copy, and notifications come twice.
        queued.push(Observation::ExchangeRemoved {
            room: cancelled.room.clone(),
            event_id: cancelled.event_id.clone(),
            reason: Removal::Deleted,
        });
        queued.push(Observation::ExchangeChanged(cancelled));
        for k in order {
            w.inbox.push_front(queued[k].clone());
            w.deliver();
        }
        w.settle();
        w.assert_agree();
        w.assert_quiet();
        assert!(
            w.reservations.iter().all(|r| !r.cancelled),
            "{}",
            w.trace_tail()
        );
        let live: Vec<&str> = w
            .meetings
            .iter()
            .filter(|m| !m.cancelled)
            .map(|m| m.calendar.as_str())
            .collect();
        assert_eq!(live, ["ann@example.com"], "{}", w.trace_tail());
        let b = w.state.bookings().next().unwrap();
        assert_eq!(b.desired.organizer, email("ann"));
        assert_eq!(b.meta.original_organizer, email("bob"));
        orders += 1;
    }
    assert_eq!(orders, 120);
}

/// orb's cancel of the old organizer's event times out although Exchange did it: the old
/// copy's cancellation still reads as orb's own, and the repeated cancel finds it gone.
#[test]
fn a_relocation_cancel_that_timed_out_but_happened_is_not_a_user_cancellation() {
    let (mut w, i) = with_topdesk_booking();
    w.linger_cancelled = true;
    w.failures = [true].into();
    w.user_edits_topdesk(i, |r| r.requester = w_person("ann"));
    w.deliver();
    // Exchange acted before the call timed out: Bob's event is gone, the room's copy
    // reports its cancellation after orb recorded the failure.
    let old = w.meetings.iter().position(|m| !m.cancelled).unwrap();
    while w.deliver() {}
    w.user_edits_exchange(old, |m| m.cancelled = true);
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: organizer
            effect look up person ann@example.com
            effect #2 cancel event ev-2 in bob@example.com
            -- person resolved ann@example.com
            -- failed #2 on exchange: Retryable { retry_after: None }
            effect retry at 2026-03-02T08:00:56.82Z after attempt 1
            -- exchange changed copy-2 in room-a@example.com
            note ignored: copy of an event orb replaced (echo of a relocation)
            -- tick
            effect #3 cancel event ev-2 in bob@example.com
            -- failed #3 on exchange: Gone
            effect #4 create event in ann@example.com txn=orb:t-b524f07bc3b84e584769:x1 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- exchange changed copy-4 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #4 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
        "#]],
    );
    assert!(w.reservations.iter().all(|r| !r.cancelled));
    let live: Vec<&str> = w
        .meetings
        .iter()
        .filter(|m| !m.cancelled)
        .map(|m| m.calendar.as_str())
        .collect();
    assert_eq!(live, ["ann@example.com"]);
}

/// The old organizer's cancel failed (perhaps after Exchange acted) and TOPdesk hands
/// the booking back before the retry: orb cannot know whether Bob's meeting still exists,
/// so the relocation completes — the meeting is made anew in Bob's calendar — rather than
/// following an event orb may have deleted itself. Bob's later edits flow as usual.
#[test]
fn a_relocation_whose_cancel_failed_completes_when_the_organizer_changes_back() {
    let (mut w, i) = with_topdesk_booking();
    w.failures = [true].into();
    w.user_edits_topdesk(i, |r| r.requester = w_person("ann"));
    while w.deliver() {}
    w.user_edits_topdesk(i, |r| r.requester = w_person("bob"));
    w.settle();
    // Bob renames his meeting in Outlook: TOPdesk follows.
    let old = w.meetings.iter().rposition(|m| !m.cancelled).unwrap();
    w.user_edits_exchange(old, |m| m.subject = Some("Intake (moved)".into()));
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: organizer
            effect look up person ann@example.com
            effect #2 cancel event ev-2 in bob@example.com
            -- person resolved ann@example.com
            -- failed #2 on exchange: Retryable { retry_after: None }
            effect retry at 2026-03-02T08:00:56.82Z after attempt 1
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: organizer
            -- tick
            effect #3 cancel event ev-2 in bob@example.com
            -- exchange removed copy-2 in room-a@example.com
            note ignored: copy of an event orb replaced (echo of a relocation)
            -- succeeded #3 on exchange
            effect #4 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x1 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- exchange changed copy-3 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #4 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
            -- exchange changed copy-3 in room-a@example.com
            note changed t-b524f07bc3b84e584769 on exchange: subject
            effect #5 update reservation res-1 [loc-a 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z requester=p-bob(bob@example.com) subject="Intake (moved)"]
            -- topdesk changed res-1
            note echo t-b524f07bc3b84e584769 on topdesk
            -- succeeded #5 on topdesk
        "#]],
    );
    let live: Vec<&str> = w
        .meetings
        .iter()
        .filter(|m| !m.cancelled)
        .map(|m| m.calendar.as_str())
        .collect();
    assert_eq!(live, ["bob@example.com"]);
    assert!(!w.reservations[i].cancelled);
    assert_eq!(w.reservations[i].subject.as_deref(), Some("Intake (moved)"));
}

/// A reservation made in an unmanaged room and moved to a managed one: the poll results
/// arrive in reverse order. The late one is stale, not a move out of the managed rooms.
#[test]
fn a_late_report_from_an_unmanaged_location_is_not_a_move_out() {
    let mut w = World::new(config());
    let i = w.user_books_topdesk("bob", "z", "2026-03-04T13:00:00Z", 30, "Intake");
    w.user_edits_topdesk(i, |r| r.location = location("a"));
    w.inbox.swap(0, 1);
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note new t-b524f07bc3b84e584769 from topdesk
            effect look up person bob@example.com
            effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- topdesk changed res-1
            note stale t-b524f07bc3b84e584769 on topdesk
            -- person resolved bob@example.com
            -- exchange changed copy-2 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #1 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
        "#]],
    );
    assert!(!w.reservations[i].cancelled);
}

/// orb's create failed and, before the retry, TOPdesk hands the booking to another
/// requester. The create is repeated where it was first issued (its idempotency key
/// deduplicates there), so its room copy shows that organizer and is recognised as orb's
/// own; the relocation follows its outcome. No second reservation is made.
#[test]
fn a_create_repeated_in_the_previous_calendar_is_recognised_as_orbs_own() {
    let mut w = World::new(config());
    w.failures = [true].into();
    let i = w.user_books_topdesk("bob", "a", "2026-03-04T13:00:00Z", 30, "Intake");
    while w.deliver() {}
    w.user_edits_topdesk(i, |r| r.requester = w_person("ann"));
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note new t-b524f07bc3b84e584769 from topdesk
            effect look up person bob@example.com
            effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- person resolved bob@example.com
            -- failed #1 on exchange: Retryable { retry_after: None }
            effect retry at 2026-03-02T08:00:49.82Z after attempt 1
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: organizer
            -- tick
            effect look up person ann@example.com
            effect #2 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- person resolved ann@example.com
            -- exchange changed copy-2 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #2 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
            effect #3 cancel event ev-2 in bob@example.com
            -- exchange removed copy-2 in room-a@example.com
            note ignored: copy of an event orb replaced (echo of a relocation)
            -- succeeded #3 on exchange
            effect #4 create event in ann@example.com txn=orb:t-b524f07bc3b84e584769:x1 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- exchange changed copy-3 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #4 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
        "#]],
    );
    assert_eq!(w.reservations.len(), 1);
    let live: Vec<&str> = w
        .meetings
        .iter()
        .filter(|m| !m.cancelled)
        .map(|m| m.calendar.as_str())
        .collect();
    assert_eq!(live, ["ann@example.com"]);
}

#[test]
fn topdesk_series_becomes_linked_single_events() {
    let mut w = World::new(config());
    for day in ["2026-03-09", "2026-03-16"] {
        let i = w.user_books_topdesk("bob", "b", &format!("{day}T08:00:00Z"), 60, "Weekly");
        w.inbox.pop_back();
        w.reservations[i].series = Some(TopdeskSeriesId::new("ser-1").unwrap());
        w.user_edits_topdesk(i, |_| {});
    }
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note new t-b524f07bc3b84e584769 from topdesk
            effect look up person bob@example.com
            effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-b@example.com 2026-03-09T08:00:00Z..2026-03-09T09:00:00Z subject="Weekly" series=ser-1]
            -- topdesk changed res-2
            note new t-b528707bc3bb5daf4717 from topdesk
            effect #1 create event in bob@example.com txn=orb:t-b528707bc3bb5daf4717:x0 [room-b@example.com 2026-03-16T08:00:00Z..2026-03-16T09:00:00Z subject="Weekly" series=ser-1]
            -- person resolved bob@example.com
            -- exchange changed copy-3 in room-b@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #1 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
            -- exchange changed copy-4 in room-b@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #1 on exchange
            note echo t-b528707bc3bb5daf4717 on exchange
        "#]],
    );
}

// ----- recurring series from Exchange's expansion ------------------------------------------

/// Ann's weekly series in room a: four occurrences, each its own room copy.
fn weekly_series(w: &mut World) -> Vec<usize> {
    let starts = [
        "2026-03-09T09:00:00Z",
        "2026-03-16T09:00:00Z",
        "2026-03-23T09:00:00Z",
        "2026-03-30T09:00:00Z",
    ];
    starts
        .iter()
        .map(|start| {
            let i = w.user_books_exchange("ann", "a", start, 60, "Weekly");
            w.inbox.pop_back();
            w.meetings[i].series = Some(SeriesOccurrence {
                master: GraphEventId::new("master-1").unwrap(),
                original_start: ts(start),
            });
            i
        })
        .collect()
}

fn series_listing(w: &World, room_name: &str) -> Observation {
    Observation::ExchangeSeries {
        room: room(room_name),
        master: GraphEventId::new("master-1").unwrap(),
        window: Window {
            start: ts("2026-03-01T00:00:00Z"),
            end: ts("2026-04-01T00:00:00Z"),
        },
        occurrences: w
            .meetings
            .iter()
            .filter(|m| m.room == room(room_name) && m.series.is_some())
            .map(|m| w.copy_item(m))
            .collect(),
    }
}

#[test]
fn series_occurrences_map_to_reservations_with_exceptions_cancellations_and_moves() {
    let mut w = World::new(config());
    let occ = weekly_series(&mut w);
    let listing = series_listing(&w, "a");
    w.inbox.push_back(listing);
    w.settle();
    expect![[r#"
        -- exchange series master-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        note new x-38b35c8949a981185325 from exchange
        note new x-38b01c8949a6de815309 from exchange
        note new x-38ac9c8949a3cf2a535b from exchange
        effect look up person ann@example.com
        -- person resolved ann@example.com
        effect #1 create reservation key=orb:x-38ac9c8949a3cf2a535b:t0 [loc-a 2026-03-30T09:00:00Z..2026-03-30T10:00:00Z requester=p-ann(ann@example.com) subject="Weekly"]
        effect #1 create reservation key=orb:x-38b01c8949a6de815309:t0 [loc-a 2026-03-23T09:00:00Z..2026-03-23T10:00:00Z requester=p-ann(ann@example.com) subject="Weekly"]
        effect #1 create reservation key=orb:x-38b35c8949a981185325:t0 [loc-a 2026-03-16T09:00:00Z..2026-03-16T10:00:00Z requester=p-ann(ann@example.com) subject="Weekly"]
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-09T09:00:00Z..2026-03-09T10:00:00Z requester=p-ann(ann@example.com) subject="Weekly"]
        -- topdesk changed res-5
        note echo x-38ac9c8949a3cf2a535b on topdesk
        -- succeeded #1 on topdesk
        -- topdesk changed res-6
        note echo x-38b01c8949a6de815309 on topdesk
        -- succeeded #1 on topdesk
        -- topdesk changed res-7
        note echo x-38b35c8949a981185325 on topdesk
        -- succeeded #1 on topdesk
        -- topdesk changed res-8
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #1 on topdesk
    "#]].assert_eq(&w.take_trace());
    w.assert_agree();

    // Exception: the second occurrence moves an hour later. Cancelled: the third.
    // Moved: the fourth goes to room b (gone from room a's expansion, new in room b).
    for (i, edit) in [(occ[1], 0), (occ[2], 1), (occ[3], 2)] {
        let now = w.now + SignedDuration::from_secs(1);
        let m = &mut w.meetings[i];
        m.modified = now;
        match edit {
            0 => {
                m.start = ts("2026-03-16T10:00:00Z");
                m.end = ts("2026-03-16T11:00:00Z");
            }
            1 => m.cancelled = true,
            _ => {
                m.room = room("b");
                m.copy = GraphEventId::new("copy-moved").unwrap();
                m.series = None;
            }
        }
    }
    let listing = series_listing(&w, "a");
    let plan = w.observe(&listing);
    expect![[r#"
        note echo x-38b6dc8949ac906f52d3 on exchange
        note changed x-38b35c8949a981185325 on exchange: time
        note changed x-38b01c8949a6de815309 on exchange: cancelled
        note changed x-38ac9c8949a3cf2a535b on exchange: cancelled
        effect #2 update reservation res-7 [loc-a 2026-03-16T10:00:00Z..2026-03-16T11:00:00Z requester=p-ann(ann@example.com) subject="Weekly"]
        effect #2 cancel reservation res-6
        effect #2 cancel reservation res-5
        booking x-38ac9c8949a3cf2a535b active: room-a@example.com 2026-03-30T09:00:00Z..2026-03-30T10:00:00Z by ann@example.com "Weekly" CANCELLED | cx=1 by=exchange orig=ann@example.com fail=0 retry=0
        booking x-38b01c8949a6de815309 active: room-a@example.com 2026-03-23T09:00:00Z..2026-03-23T10:00:00Z by ann@example.com "Weekly" CANCELLED | cx=1 by=exchange orig=ann@example.com fail=0 retry=0
        booking x-38b35c8949a981185325 active: room-a@example.com 2026-03-16T10:00:00Z..2026-03-16T11:00:00Z by ann@example.com "Weekly" | cx=1 by=exchange orig=ann@example.com fail=0 retry=0
    "#]].assert_eq(&plan);
    let moved = w.copy_item(&w.meetings[occ[3]].clone());
    w.inbox.push_back(Observation::ExchangeChanged(moved));
    w.take_trace();
    w.settle();
    w.meetings[occ[2]].cancelled = true;
    w.assert_agree();
    w.assert_quiet();
}

#[test]
fn deleting_a_series_master_cancels_its_occurrences() {
    let mut w = World::new(config());
    let occ = weekly_series(&mut w);
    let listing = series_listing(&w, "a");
    w.inbox.push_back(listing);
    w.settle();
    w.take_trace();
    for i in occ {
        w.meetings[i].cancelled = true;
    }
    w.inbox.push_back(Observation::ExchangeRemoved {
        room: room("a"),
        event_id: GraphEventId::new("master-1").unwrap(),
        reason: Removal::Deleted,
    });
    check(
        &mut w,
        expect![[r#"
        -- exchange removed master-1 in room-a@example.com
        note changed x-38ac9c8949a3cf2a535b on exchange: cancelled
        note changed x-38b01c8949a6de815309 on exchange: cancelled
        note changed x-38b35c8949a981185325 on exchange: cancelled
        note changed x-38b6dc8949ac906f52d3 on exchange: cancelled
        effect #2 cancel reservation res-5
        effect #2 cancel reservation res-6
        effect #2 cancel reservation res-7
        effect #2 cancel reservation res-8
        -- topdesk changed res-5
        note echo x-38ac9c8949a3cf2a535b on topdesk
        -- succeeded #2 on topdesk
        -- topdesk changed res-6
        note echo x-38b01c8949a6de815309 on topdesk
        -- succeeded #2 on topdesk
        -- topdesk changed res-7
        note echo x-38b35c8949a981185325 on topdesk
        -- succeeded #2 on topdesk
        -- topdesk changed res-8
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
}

// ----- delegates ---------------------------------------------------------------------------

#[test]
fn delegate_rules_choose_the_requester() {
    let mut cfg = config();
    cfg.delegates
        .insert(email("sec"), DelegateRule::FirstRequiredAttendee);
    cfg.delegates
        .insert(email("ann"), DelegateRule::Principal(email("bob")));
    let mut w = World::new(cfg);
    let i = w.user_books_exchange("sec", "a", "2026-03-05T09:00:00Z", 60, "Board");
    w.meetings[i].attendees = vec![email("bob"), email("ann")];
    w.user_edits_exchange(i, |_| {});
    w.user_books_exchange("ann", "b", "2026-03-05T11:00:00Z", 60, "Lunch");
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        effect look up person sec@example.com
        -- exchange changed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: attendees
        effect look up person bob@example.com
        -- exchange changed copy-3 in room-b@example.com
        note new x-852cc43eefe61682cbd7 from exchange
        -- person resolved sec@example.com
        -- person resolved bob@example.com
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-05T09:00:00Z..2026-03-05T10:00:00Z requester=p-bob(bob@example.com) subject="Board"]
        effect #1 create reservation key=orb:x-852cc43eefe61682cbd7:t0 [loc-b 2026-03-05T11:00:00Z..2026-03-05T12:00:00Z requester=p-bob(bob@example.com) subject="Lunch"]
        -- topdesk changed res-4
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #1 on topdesk
        -- topdesk changed res-5
        note echo x-852cc43eefe61682cbd7 on topdesk
        -- succeeded #1 on topdesk
    "#]],
    );
}

// ----- privacy -----------------------------------------------------------------------------

#[test]
fn subjects_are_not_carried_when_disabled() {
    let mut cfg = config();
    cfg.carry_subject = false;
    let mut w = World::new(cfg);
    w.trace_bookings = true;
    w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Secret merger");
    w.user_books_topdesk("bob", "b", "2026-03-03T09:00:00Z", 60, "Also secret");
    check(
        &mut w,
        expect![[r#"
            -- exchange changed copy-1 in room-a@example.com
            note new x-38b6dc8949ac906f52d3 from exchange
            effect look up person ann@example.com
            person ann@example.com: pending
            booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com (no subject) | cx=0 by=exchange orig=ann@example.com fail=0 retry=0 awaiting=ann@example.com
            -- topdesk changed res-2
            note new t-b528707bc3bb5daf4717 from topdesk
            effect look up person bob@example.com
            effect #1 create event in bob@example.com txn=orb:t-b528707bc3bb5daf4717:x0 [room-b@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z subject="Reserved"]
            person bob@example.com: pending
            booking t-b528707bc3bb5daf4717 active: room-b@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by bob@example.com (no subject) | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0 awaiting=bob@example.com
            -- person resolved ann@example.com
            effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Reserved"]
            person ann@example.com: found p-ann
            booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com (no subject) | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
            -- person resolved bob@example.com
            person bob@example.com: found p-bob
            booking t-b528707bc3bb5daf4717 active: room-b@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by bob@example.com (no subject) | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0
            -- exchange changed copy-3 in room-b@example.com
            note ignored: awaiting the outcome of orb's own create
            booking t-b528707bc3bb5daf4717 active: room-b@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by bob@example.com (no subject) | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0
            -- succeeded #1 on exchange
            note echo t-b528707bc3bb5daf4717 on exchange
            booking t-b528707bc3bb5daf4717 active: room-b@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by bob@example.com (no subject) | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0
            -- topdesk changed res-4
            note echo x-38b6dc8949ac906f52d3 on topdesk
            booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com (no subject) | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
            -- succeeded #1 on topdesk
            booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com (no subject) | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        "#]],
    );
}

#[test]
fn private_items_get_a_neutral_subject_and_keep_their_own() {
    let mut w = World::new(config());
    let i = w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Doctor");
    w.meetings[i].private = true;
    w.inbox.pop_back();
    w.user_edits_exchange(i, |_| {});
    w.settle();
    // TOPdesk reschedules it: Exchange's update leaves the private subject alone.
    w.user_edits_topdesk(0, |r| {
        r.start = ts("2026-03-03T10:00:00Z");
        r.end = ts("2026-03-03T11:00:00Z");
    });
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        effect look up person ann@example.com
        -- person resolved ann@example.com
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Reserved"]
        -- topdesk changed res-3
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #1 on topdesk
        -- topdesk changed res-3
        note changed x-38b6dc8949ac906f52d3 on topdesk: time
        effect #2 update event uid uid-1 in ann@example.com [room-a@example.com 2026-03-03T10:00:00Z..2026-03-03T11:00:00Z subject=unchanged]
        -- exchange changed copy-1 in room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        -- succeeded #2 on exchange
    "#]],
    );
    assert_eq!(w.meetings[i].subject.as_deref(), Some("Doctor"));
}

// ----- echo suppression and idempotency --------------------------------------------------

#[test]
fn replayed_and_stale_notifications_change_nothing() {
    let (mut w, i) = with_exchange_booking();
    let old = w.copy_item(&w.meetings[i].clone());
    w.user_edits_exchange(i, |m| m.subject = Some("Renamed".into()));
    w.settle();
    w.take_trace();
    let current = w.copy_item(&w.meetings[i].clone());
    let replay = w.observe(&Observation::ExchangeChanged(current));
    let stale = w.observe(&Observation::ExchangeChanged(old));
    expect![[r#"
        note echo x-38b6dc8949ac906f52d3 on exchange
        --
        note stale x-38b6dc8949ac906f52d3 on exchange
    "#]]
    .assert_eq(&format!("{replay}--\n{stale}"));
    w.settle();
    w.assert_agree();
}

#[test]
fn a_reissued_create_returns_the_existing_item() {
    let mut w = World::new(config());
    w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    // Deliver the notification and the person lookup, then lose the create's outcome
    // and the reservation's notification.
    w.deliver();
    w.deliver();
    w.inbox.clear();
    w.now += SignedDuration::from_mins(11);
    w.observe(&Observation::Tick);
    check(
        &mut w,
        expect![[r#"
            -- exchange changed copy-1 in room-a@example.com
            note new x-38b6dc8949ac906f52d3 from exchange
            effect look up person ann@example.com
            -- person resolved ann@example.com
            effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
            -- tick
            effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
            -- succeeded #1 on topdesk
        "#]],
    );
    assert_eq!(w.reservations.len(), 1);
}

// ----- conflicts -----------------------------------------------------------------------------

fn concurrent_edit(policy: ConflictPolicy) -> String {
    let mut cfg = config();
    cfg.conflict_policy = policy;
    let mut w = World::new(cfg);
    let i = w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    w.settle();
    w.take_trace();
    // Both sides move the same booking before orb hears of either; TOPdesk also renames.
    w.user_edits_topdesk(0, |r| {
        r.start = ts("2026-03-03T14:00:00Z");
        r.end = ts("2026-03-03T15:00:00Z");
        r.subject = Some("Planning (TOPdesk)".into());
    });
    w.user_edits_exchange(i, |m| {
        m.start = ts("2026-03-03T11:00:00Z");
        m.end = ts("2026-03-03T12:00:00Z");
    });
    w.settle();
    w.assert_agree();
    w.assert_quiet();
    let m = w.meetings[i].clone();
    format!(
        "{}final {}..{} {:?}\n",
        w.take_trace(),
        m.start,
        m.end,
        m.subject
    )
}

#[test]
fn concurrent_edits_exchange_wins() {
    expect![[r#"
        -- topdesk changed res-2
        note changed x-38b6dc8949ac906f52d3 on topdesk: time,subject
        effect #2 update event uid uid-1 in ann@example.com [room-a@example.com 2026-03-03T14:00:00Z..2026-03-03T15:00:00Z subject="Planning (TOPdesk)"]
        -- exchange changed copy-1 in room-a@example.com
        note conflict x-38b6dc8949ac906f52d3 on time: exchange wins
        note changed x-38b6dc8949ac906f52d3 on exchange: time
        effect #3 update reservation res-2 [loc-a 2026-03-03T11:00:00Z..2026-03-03T12:00:00Z requester=p-ann(ann@example.com) subject="Planning (TOPdesk)"]
        -- exchange changed copy-1 in room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        -- succeeded #2 on exchange
        effect #4 update event ev-1 in ann@example.com [room-a@example.com 2026-03-03T11:00:00Z..2026-03-03T12:00:00Z subject="Planning (TOPdesk)"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #3 on topdesk
        -- exchange changed copy-1 in room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        -- succeeded #4 on exchange
        final 2026-03-03T11:00:00Z..2026-03-03T12:00:00Z Some("Planning (TOPdesk)")
    "#]].assert_eq(&concurrent_edit(ConflictPolicy::ExchangeWins));
}

#[test]
fn concurrent_edits_topdesk_wins() {
    expect![[r#"
        -- topdesk changed res-2
        note changed x-38b6dc8949ac906f52d3 on topdesk: time,subject
        effect #2 update event uid uid-1 in ann@example.com [room-a@example.com 2026-03-03T14:00:00Z..2026-03-03T15:00:00Z subject="Planning (TOPdesk)"]
        -- exchange changed copy-1 in room-a@example.com
        note conflict x-38b6dc8949ac906f52d3 on time: topdesk wins
        -- exchange changed copy-1 in room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        -- succeeded #2 on exchange
        final 2026-03-03T14:00:00Z..2026-03-03T15:00:00Z Some("Planning (TOPdesk)")
    "#]].assert_eq(&concurrent_edit(ConflictPolicy::TopdeskWins));
}

#[test]
fn concurrent_edits_latest_wins() {
    expect![[r#"
        -- topdesk changed res-2
        note changed x-38b6dc8949ac906f52d3 on topdesk: time,subject
        effect #2 update event uid uid-1 in ann@example.com [room-a@example.com 2026-03-03T14:00:00Z..2026-03-03T15:00:00Z subject="Planning (TOPdesk)"]
        -- exchange changed copy-1 in room-a@example.com
        note conflict x-38b6dc8949ac906f52d3 on time: exchange wins
        note changed x-38b6dc8949ac906f52d3 on exchange: time
        effect #3 update reservation res-2 [loc-a 2026-03-03T11:00:00Z..2026-03-03T12:00:00Z requester=p-ann(ann@example.com) subject="Planning (TOPdesk)"]
        -- exchange changed copy-1 in room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        -- succeeded #2 on exchange
        effect #4 update event ev-1 in ann@example.com [room-a@example.com 2026-03-03T11:00:00Z..2026-03-03T12:00:00Z subject="Planning (TOPdesk)"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #3 on topdesk
        -- exchange changed copy-1 in room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        -- succeeded #4 on exchange
        final 2026-03-03T11:00:00Z..2026-03-03T12:00:00Z Some("Planning (TOPdesk)")
    "#]].assert_eq(&concurrent_edit(ConflictPolicy::LatestWins));
}

/// One Outlook booking of ann in room a under `policy`, settled, trace taken.
fn outlook_booking_under(policy: ConflictPolicy) -> (World, usize) {
    let mut cfg = config();
    cfg.conflict_policy = policy;
    let mut w = World::new(cfg);
    let i = w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    w.settle();
    w.take_trace();
    (w, i)
}

const POLICIES: [ConflictPolicy; 3] = [
    ConflictPolicy::ExchangeWins,
    ConflictPolicy::TopdeskWins,
    ConflictPolicy::LatestWins,
];

/// TOPdesk alone reschedules and moves a reservation orb made from an Outlook meeting.
/// Nothing was changed concurrently in Outlook, so there is no conflict to resolve: under
/// every policy the organizer's meeting follows (by its iCalUId, as orb did not create
/// it), moving from room a to room b.
#[test]
fn a_topdesk_change_of_an_outlook_booking_updates_the_organizers_meeting_under_every_policy() {
    let mut traces = Vec::new();
    for policy in POLICIES {
        let (mut w, _) = outlook_booking_under(policy);
        w.user_edits_topdesk(0, |r| {
            r.location = location("b");
            r.start = ts("2026-03-03T14:00:00Z");
            r.end = ts("2026-03-03T15:00:00Z");
        });
        w.settle();
        traces.push(w.take_trace());
        w.assert_agree();
        w.assert_quiet();
        let m = &w.meetings[0];
        assert_eq!(
            (m.room.clone(), m.start),
            (room("b"), ts("2026-03-03T14:00:00Z"))
        );
        assert_eq!(m.calendar, email("ann"));
        assert_eq!(w.reservations.len(), 1);
    }
    assert!(traces.iter().all(|t| *t == traces[0]));
    expect![[r#"
        -- topdesk changed res-2
        note changed x-38b6dc8949ac906f52d3 on topdesk: room,time
        effect #2 update event uid uid-1 in ann@example.com [room-b@example.com 2026-03-03T14:00:00Z..2026-03-03T15:00:00Z replaces=room-a@example.com subject="Planning"]
        -- exchange removed copy-1 in room-a@example.com
        note ignored: copy orb stopped following (echo of a move)
        -- exchange changed copy-3 in room-b@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        -- succeeded #2 on exchange
    "#]].assert_eq(&traces[0]);
}

/// TOPdesk moves the reservation to room b at 14:00 while ann moves the meeting to 11:00
/// in Outlook, before orb hears of either. The room was changed on one side only and is
/// merged whatever the policy; the time was changed on both, and the policy decides:
/// Exchange wins puts the reservation back to Outlook's time, TOPdesk wins updates the
/// organizer's meeting to TOPdesk's, latest wins takes the later edit, whichever side's
/// report reaches orb first.
#[test]
fn concurrent_edits_of_an_outlook_booking_follow_the_policy() {
    let mut out = String::new();
    let runs = POLICIES
        .map(|policy| (policy, false))
        .into_iter()
        .chain([(ConflictPolicy::LatestWins, true)]);
    for (policy, topdesk_later) in runs {
        let (mut w, i) = outlook_booking_under(policy);
        let topdesk_edit = |w: &mut World| {
            w.user_edits_topdesk(0, |r| {
                r.location = location("b");
                r.start = ts("2026-03-03T14:00:00Z");
                r.end = ts("2026-03-03T15:00:00Z");
            });
        };
        if !topdesk_later {
            topdesk_edit(&mut w);
        }
        w.user_edits_exchange(i, |m| {
            m.start = ts("2026-03-03T11:00:00Z");
            m.end = ts("2026-03-03T12:00:00Z");
        });
        if topdesk_later {
            // TOPdesk's edit is the later one, but orb hears of it first.
            topdesk_edit(&mut w);
            w.inbox.rotate_left(1);
        }
        w.settle();
        w.assert_agree();
        w.assert_quiet();
        let m = &w.meetings[i];
        let r = &w.reservations[0];
        assert_eq!((m.start, m.end), (r.start, r.end));
        assert_eq!(w.reservations.len(), 1);
        let later = if topdesk_later {
            " (TOPdesk later)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{policy:?}{later}: meeting {} {}..{} in {}; reservation {} {}\n",
            m.room, m.start, m.end, m.calendar, r.location, r.start
        ));
    }
    expect![[r#"
        ExchangeWins: meeting room-b@example.com 2026-03-03T11:00:00Z..2026-03-03T12:00:00Z in ann@example.com; reservation loc-b 2026-03-03T11:00:00Z
        TopdeskWins: meeting room-b@example.com 2026-03-03T14:00:00Z..2026-03-03T15:00:00Z in ann@example.com; reservation loc-b 2026-03-03T14:00:00Z
        LatestWins: meeting room-b@example.com 2026-03-03T11:00:00Z..2026-03-03T12:00:00Z in ann@example.com; reservation loc-b 2026-03-03T11:00:00Z
        LatestWins (TOPdesk later): meeting room-b@example.com 2026-03-03T14:00:00Z..2026-03-03T15:00:00Z in ann@example.com; reservation loc-b 2026-03-03T14:00:00Z
    "#]].assert_eq(&out);
}

#[test]
fn topdesk_refusal_declines_notifies_and_stays_visible() {
    let mut cfg = config();
    cfg.mail_enabled = true;
    let mut w = World::new(cfg);
    w.trace_bookings = true;
    w.refuse_next = Some("room is already reserved".into());
    let i = w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    w.settle();
    // The organizer picks another time: the booking is tried again.
    w.user_edits_exchange(i, |m| {
        m.start = ts("2026-03-03T15:00:00Z");
        m.end = ts("2026-03-03T16:00:00Z");
    });
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        effect look up person ann@example.com
        person ann@example.com: pending
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0 awaiting=ann@example.com
        -- person resolved ann@example.com
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        person ann@example.com: found p-ann
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        -- failed #1 on topdesk: Refused { reason: "room is already reserved" }
        effect decline copy-1 in room-a@example.com: room is already reserved
        effect mail ann@example.com: room is already reserved
        booking x-38b6dc8949ac906f52d3 conflict(topdesk: room is already reserved): room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=1 retry=0
        -- exchange changed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: time
        effect #2 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T15:00:00Z..2026-03-03T16:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T15:00:00Z..2026-03-03T16:00:00Z by ann@example.com "Planning" | cx=1 by=exchange orig=ann@example.com fail=1 retry=0
        -- topdesk changed res-3
        note echo x-38b6dc8949ac906f52d3 on topdesk
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T15:00:00Z..2026-03-03T16:00:00Z by ann@example.com "Planning" | cx=1 by=exchange orig=ann@example.com fail=1 retry=0
        -- succeeded #2 on topdesk
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T15:00:00Z..2026-03-03T16:00:00Z by ann@example.com "Planning" | cx=1 by=exchange orig=ann@example.com fail=1 retry=0
    "#]],
    );
}

/// A world where ann's Outlook booking was accepted by TOPdesk as conflicting, settled,
/// with the trace taken.
fn with_conflicting_exchange_booking() -> (World, usize) {
    let mut cfg = config();
    cfg.mail_enabled = true;
    let mut w = World::new(cfg);
    w.conflict_next = Some("room is double-booked".into());
    let i = w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    w.settle();
    w.take_trace();
    (w, i)
}

#[test]
fn topdesk_conflicting_reservation_declines_notifies_and_stays_visible() {
    let mut cfg = config();
    cfg.mail_enabled = true;
    let mut w = World::new(cfg);
    w.trace_bookings = true;
    // TOPdesk accepts the create but marks the reservation conflictingPlanned: the poll
    // and the write response both report it.
    w.conflict_next = Some("room is double-booked".into());
    w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        effect look up person ann@example.com
        person ann@example.com: pending
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0 awaiting=ann@example.com
        -- person resolved ann@example.com
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        person ann@example.com: found p-ann
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        -- topdesk conflicting res-2: room is double-booked
        effect decline copy-1 in room-a@example.com: room is double-booked
        effect mail ann@example.com: room is double-booked
        booking x-38b6dc8949ac906f52d3 conflict(topdesk: room is double-booked): room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=1 retry=0
        -- succeeded #1 on topdesk
        booking x-38b6dc8949ac906f52d3 conflict(topdesk: room is double-booked): room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=1 retry=0
        -- topdesk conflicting res-2: room is double-booked
        note ignored: conflict already known
    "#]],
    );
    // The reservation stays linked; polls keep reporting the conflict and plan nothing.
    let id = w.reservations[0].id.clone();
    let plan = w.observe(&Observation::TopdeskConflicting {
        id,
        reason: "room is double-booked".into(),
    });
    expect![[r#"
        note ignored: conflict already known
    "#]]
    .assert_eq(&plan);
    expect![[r#"
        x-38b6dc8949ac906f52d3 conflict(topdesk: room is double-booked): room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=1 retry=0
    "#]].assert_eq(&w.booking_line("a", "2026-03-03T09:00:00Z"));
    let b = w.state.bookings().next().unwrap();
    assert_eq!(b.topdesk.status, SideStatus::Refused);
    assert_eq!(b.topdesk.reservation.as_ref(), Some(&w.reservations[0].id));
}

#[test]
fn a_conflicting_write_response_alone_declines_and_notifies() {
    let mut cfg = config();
    cfg.mail_enabled = true;
    let mut w = World::new(cfg);
    w.conflict_next = Some("room is double-booked".into());
    w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    w.deliver(); // the room copy: look up the person
    w.deliver(); // the person: create the reservation
    // No poll ran yet: only the create's response reports the reservation, conflicting.
    w.inbox
        .retain(|o| !matches!(o, Observation::TopdeskChanged(_)));
    w.inbox.pop_front();
    let queued: Vec<String> = w.inbox.iter().map(crate::world::describe).collect();
    assert_eq!(
        queued,
        [
            "succeeded #1 on topdesk",
            "topdesk conflicting res-2: room is double-booked"
        ]
    );
    w.take_trace();
    w.trace_bookings = true;
    check(
        &mut w,
        expect![[r#"
        -- succeeded #1 on topdesk
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        -- topdesk conflicting res-2: room is double-booked
        effect decline copy-1 in room-a@example.com: room is double-booked
        effect mail ann@example.com: room is double-booked
        booking x-38b6dc8949ac906f52d3 conflict(topdesk: room is double-booked): room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=1 retry=0
    "#]],
    );
}

#[test]
fn topdesk_conflicting_without_mail_only_declines() {
    let mut w = World::new(config());
    w.conflict_next = Some("room is double-booked".into());
    w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        effect look up person ann@example.com
        -- person resolved ann@example.com
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- topdesk conflicting res-2: room is double-booked
        effect decline copy-1 in room-a@example.com: room is double-booked
        -- succeeded #1 on topdesk
        -- topdesk conflicting res-2: room is double-booked
        note ignored: conflict already known
    "#]],
    );
}

#[test]
fn topdesk_conflict_marked_later_by_a_poll_is_told_once() {
    let (mut w, _) = with_exchange_booking();
    w.topdesk_marks_conflicting(0, "room is double-booked");
    w.topdesk_marks_conflicting(0, "room is double-booked");
    check(
        &mut w,
        expect![[r#"
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- topdesk conflicting res-2: room is double-booked
        effect decline copy-1 in room-a@example.com: room is double-booked
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- topdesk conflicting res-2: room is double-booked
        note ignored: conflict already known
    "#]],
    );
}

#[test]
fn a_conflicting_topdesk_booking_is_declined_in_exchange() {
    let (mut w, i) = with_topdesk_booking();
    w.topdesk_marks_conflicting(i, "room is double-booked");
    check(
        &mut w,
        expect![[r#"
        -- topdesk changed res-1
        note echo t-b524f07bc3b84e584769 on topdesk
        -- topdesk conflicting res-1: room is double-booked
        effect decline copy-2 in room-a@example.com: room is double-booked
    "#]],
    );
    expect![[r#"
        t-b524f07bc3b84e584769 conflict(topdesk: room is double-booked): room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=1 retry=0
    "#]].assert_eq(&w.booking_line("a", "2026-03-04T13:00:00Z"));
}

#[test]
fn a_change_after_a_topdesk_conflict_updates_the_kept_reservation() {
    let (mut w, i) = with_conflicting_exchange_booking();
    // The organizer picks another time, which TOPdesk accepts without conflict.
    w.user_edits_exchange(i, |m| {
        m.start = ts("2026-03-03T15:00:00Z");
        m.end = ts("2026-03-03T16:00:00Z");
    });
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: time
        effect #2 update reservation res-2 [loc-a 2026-03-03T15:00:00Z..2026-03-03T16:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
    expect![[r#"
        x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T15:00:00Z..2026-03-03T16:00:00Z by ann@example.com "Planning" | cx=1 by=exchange orig=ann@example.com fail=1 retry=0
    "#]].assert_eq(&w.booking_line("a", "2026-03-03T15:00:00Z"));
}

#[test]
fn a_change_that_still_conflicts_is_told_again() {
    let (mut w, i) = with_conflicting_exchange_booking();
    w.conflict_next = Some("room is still double-booked".into());
    w.user_edits_exchange(i, |m| m.subject = Some("Planning (new)".into()));
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: subject
        effect #2 update reservation res-2 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning (new)"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- topdesk conflicting res-2: room is still double-booked
        effect decline copy-1 in room-a@example.com: room is still double-booked
        effect mail ann@example.com: room is still double-booked
        -- succeeded #2 on topdesk
        -- topdesk conflicting res-2: room is still double-booked
        note ignored: conflict already known
    "#]],
    );
}

#[test]
fn cancelling_a_conflicting_booking_cancels_its_reservation() {
    let (mut w, i) = with_conflicting_exchange_booking();
    w.user_edits_exchange(i, |m| m.cancelled = true);
    check(
        &mut w,
        expect![[r#"
        -- exchange removed copy-1 in room-a@example.com
        note changed x-38b6dc8949ac906f52d3 on exchange: cancelled
        effect #2 cancel reservation res-2
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
}

/// The overlapping booking goes away and TOPdesk shows the reservation as planned
/// again: the booking is active again without any change on either side, and nothing is
/// written (the reservation already holds it).
#[test]
fn a_conflict_topdesk_no_longer_marks_clears_the_booking() {
    let (mut w, _) = with_conflicting_exchange_booking();
    w.trace_bookings = true;
    w.topdesk_clears_conflict(0);
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-2
            note echo x-38b6dc8949ac906f52d3 on topdesk
            note conflict cleared x-38b6dc8949ac906f52d3: TOPdesk no longer marks the reservation conflicting
            booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=1 retry=0
        "#]],
    );
    // A later poll that still shows it unmarked changes nothing; a new mark is told anew.
    w.full_pass();
    w.settle();
    w.topdesk_marks_conflicting(0, "room is double-booked again");
    check(
        &mut w,
        expect![[r#"
            -- exchange pass room-a@example.com
            note echo x-38b6dc8949ac906f52d3 on exchange
            -- exchange pass room-b@example.com
            -- topdesk pass
            note echo x-38b6dc8949ac906f52d3 on topdesk
            -- topdesk changed res-2
            note echo x-38b6dc8949ac906f52d3 on topdesk
            -- topdesk conflicting res-2: room is double-booked again
            effect decline copy-1 in room-a@example.com: room is double-booked again
            effect mail ann@example.com: room is double-booked again
            booking x-38b6dc8949ac906f52d3 conflict(topdesk: room is double-booked again): room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=2 retry=0
        "#]],
    );
}

/// A stale poll result from before TOPdesk marked the reservation does not clear the mark.
#[test]
fn a_stale_unmarked_poll_result_keeps_the_conflict() {
    let (mut w, _) = with_conflicting_exchange_booking();
    let before = w.reservation_item(&w.reservations[0]);
    let mut stale = before.clone();
    stale.conflicting = false;
    stale.modified_at = before.modified_at - SignedDuration::from_secs(1);
    w.observe(&Observation::TopdeskChanged(stale));
    expect![[r#"
        -- topdesk changed res-2
        note stale x-38b6dc8949ac906f52d3 on topdesk
    "#]]
    .assert_eq(&w.take_trace());
    assert!(
        w.booking_line("a", "2026-03-03T09:00:00Z")
            .contains("conflict(")
    );
}

/// TOPdesk refused ann's booking because bob's meeting held the room; bob cancels in
/// Outlook. The refused booking is tried again without anyone touching it, and converges.
#[test]
fn a_refused_booking_is_tried_again_when_the_room_is_freed() {
    let mut cfg = config();
    cfg.mail_enabled = true;
    let mut w = World::new(cfg);
    let bob = w.user_books_exchange("bob", "a", "2026-03-03T09:00:00Z", 60, "Budget");
    w.settle();
    w.refuse_next = Some("room is already reserved".into());
    w.user_books_exchange("ann", "a", "2026-03-03T09:30:00Z", 60, "Planning");
    w.settle();
    w.take_trace();
    w.user_edits_exchange(bob, |m| m.cancelled = true);
    check(
        &mut w,
        expect![[r#"
            -- exchange removed copy-1 in room-a@example.com
            note changed x-38b6dc8949ac906f52d3 on exchange: cancelled
            note conflict cleared x-38b01c8949a6de815309: another booking left the refused time: trying again
            effect #2 cancel reservation res-2
            effect #2 create reservation key=orb:x-38b01c8949a6de815309:t0 [loc-a 2026-03-03T09:30:00Z..2026-03-03T10:30:00Z requester=p-ann(ann@example.com) subject="Planning"]
            -- topdesk changed res-2
            note echo x-38b6dc8949ac906f52d3 on topdesk
            -- succeeded #2 on topdesk
            -- topdesk changed res-5
            note echo x-38b01c8949a6de815309 on topdesk
            -- succeeded #2 on topdesk
        "#]],
    );
    expect![[r#"
        x-38b01c8949a6de815309 active: room-a@example.com 2026-03-03T09:30:00Z..2026-03-03T10:30:00Z by ann@example.com "Planning" | cx=0 by=exchange orig=ann@example.com fail=1 retry=0
    "#]].assert_eq(&w.booking_line("a", "2026-03-03T09:30:00Z"));
}

/// The freed time does not help (TOPdesk refuses again): the organizer is told again, and
/// the booking stays visible as conflicting. A slot elsewhere retries nothing.
#[test]
fn a_refused_booking_still_refused_after_the_room_is_freed_is_told_again() {
    let mut cfg = config();
    cfg.mail_enabled = true;
    let mut w = World::new(cfg);
    let bob = w.user_books_exchange("bob", "a", "2026-03-03T09:00:00Z", 60, "Budget");
    let carol = w.user_books_exchange("carol", "a", "2026-03-03T14:00:00Z", 60, "Review");
    w.settle();
    w.refuse_next = Some("outside opening hours".into());
    w.user_books_exchange("ann", "a", "2026-03-03T09:30:00Z", 60, "Planning");
    w.settle();
    w.take_trace();
    // Carol's meeting never overlapped: nothing is retried.
    w.user_edits_exchange(carol, |m| m.cancelled = true);
    w.settle();
    w.refuse_next = Some("outside opening hours".into());
    w.user_edits_exchange(bob, |m| m.cancelled = true);
    w.settle();
    expect![[r#"
            -- exchange removed copy-2 in room-a@example.com
            note changed x-38b35c8949a981185325 on exchange: cancelled
            effect #2 cancel reservation res-4
            -- topdesk changed res-4
            note echo x-38b35c8949a981185325 on topdesk
            -- succeeded #2 on topdesk
            -- exchange removed copy-1 in room-a@example.com
            note changed x-38b6dc8949ac906f52d3 on exchange: cancelled
            note conflict cleared x-38a91c8949a0bfd3533f: another booking left the refused time: trying again
            effect #2 cancel reservation res-3
            effect #2 create reservation key=orb:x-38a91c8949a0bfd3533f:t0 [loc-a 2026-03-03T09:30:00Z..2026-03-03T10:30:00Z requester=p-ann(ann@example.com) subject="Planning"]
            -- topdesk changed res-3
            note echo x-38b6dc8949ac906f52d3 on topdesk
            -- succeeded #2 on topdesk
            -- failed #2 on topdesk: Refused { reason: "outside opening hours" }
            effect decline copy-5 in room-a@example.com: outside opening hours
            effect mail ann@example.com: outside opening hours
        "#]]
    .assert_eq(&w.take_trace());
    assert!(
        w.booking_line("a", "2026-03-03T09:30:00Z")
            .contains("conflict(")
    );
    w.assert_quiet();
}

#[test]
fn topdesk_conflicting_on_an_unknown_reservation_is_ignored() {
    let engine = Engine::new(config());
    let observation = Observation::TopdeskConflicting {
        id: orb_reconcile::TopdeskReservationId::new("res-404").unwrap(),
        reason: "room is double-booked".into(),
    };
    // The service may persist observations (durable inbox): the variant round-trips.
    let json = serde_json::to_string(&observation).unwrap();
    let observation: Observation = serde_json::from_str(&json).unwrap();
    let plan = engine.plan(&State::new(), &observation, ts(crate::world::START));
    assert!(plan.is_empty());
    expect![[r#"
        {"TopdeskConflicting":{"id":"res-404","reason":"room is double-booked"}}
        note ignored: conflict on a reservation orb does not know
    "#]]
    .assert_eq(&format!("{json}\n{plan}"));
}

// ----- deletion safety ------------------------------------------------------------------------

#[test]
fn leaving_the_window_is_not_a_cancellation() {
    let (mut w, i) = with_exchange_booking();
    let copy = w.meetings[i].copy.clone();
    let plan = w.observe(&Observation::ExchangeRemoved {
        room: room("a"),
        event_id: copy,
        reason: Removal::LeftWindow,
    });
    expect![[r#"
        note ignored: left the window: not a cancellation
    "#]]
    .assert_eq(&plan);
}

#[test]
fn a_pass_missing_most_bookings_is_held_for_an_admin() {
    let mut w = World::new(config());
    for h in 8..14 {
        w.user_books_exchange("ann", "a", &format!("2026-03-03T{h:02}:00:00Z"), 30, "Slot");
    }
    w.settle();
    w.take_trace();
    // A broken listing shows only one of six bookings.
    let items = vec![w.copy_item(&w.meetings[0].clone())];
    let pass = Observation::ExchangePass {
        room: room("a"),
        window: Window {
            start: ts("2026-03-01T00:00:00Z"),
            end: ts("2026-04-01T00:00:00Z"),
        },
        items,
    };
    let plan = w.observe(&pass);
    expect![[r#"
        note echo x-38b6dc8949ac906f52d3 on exchange
        effect hold 5 of 6 removals in room-a@example.com seen on exchange
        booking x-38a5dc89499e1d3c5391 held-removal(exchange): room-a@example.com 2026-03-03T13:00:00Z..2026-03-03T13:30:00Z by ann@example.com "Slot" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        booking x-38a91c8949a0bfd3533f held-removal(exchange): room-a@example.com 2026-03-03T12:00:00Z..2026-03-03T12:30:00Z by ann@example.com "Slot" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        booking x-38ac9c8949a3cf2a535b held-removal(exchange): room-a@example.com 2026-03-03T11:00:00Z..2026-03-03T11:30:00Z by ann@example.com "Slot" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        booking x-38b01c8949a6de815309 held-removal(exchange): room-a@example.com 2026-03-03T10:00:00Z..2026-03-03T10:30:00Z by ann@example.com "Slot" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
        booking x-38b35c8949a981185325 held-removal(exchange): room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T09:30:00Z by ann@example.com "Slot" | cx=0 by=exchange orig=ann@example.com fail=0 retry=0
    "#]].assert_eq(&plan);
    // The admin confirms one removal; it is cancelled in TOPdesk.
    let held = w
        .state
        .bookings()
        .find(|b| matches!(b.status, orb_reconcile::BookingStatus::HeldRemoval { .. }))
        .map(|b| b.match_id.clone())
        .unwrap();
    w.observe(&Observation::AdminConfirmRemoval { match_id: held });
    w.settle();
    // A complete pass shows the others alive: their hold is released.
    w.full_pass();
    w.settle();
    assert!(
        w.state
            .bookings()
            .all(|b| b.status == orb_reconcile::BookingStatus::Active)
    );
    // The confirmed removal is final: orb cancels the meeting in Exchange too.
    assert!(w.meetings[5].cancelled);
    w.assert_agree();
    expect![[r#"
        -- exchange pass room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        effect hold 5 of 6 removals in room-a@example.com seen on exchange
        -- admin confirm x-38a5dc89499e1d3c5391
        note changed x-38a5dc89499e1d3c5391 on exchange: cancelled
        effect #2 cancel reservation res-7
        -- topdesk changed res-7
        note echo x-38a5dc89499e1d3c5391 on topdesk
        -- succeeded #2 on topdesk
        -- exchange pass room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        note echo x-38b35c8949a981185325 on exchange
        note echo x-38b01c8949a6de815309 on exchange
        note echo x-38ac9c8949a3cf2a535b on exchange
        note echo x-38a91c8949a0bfd3533f on exchange
        note ignored: booking is cancelled: cancellation is final
        effect #3 cancel event uid uid-6 in ann@example.com
        -- exchange pass room-b@example.com
        -- topdesk pass
        note echo x-38a91c8949a0bfd3533f on topdesk
        note echo x-38ac9c8949a3cf2a535b on topdesk
        note echo x-38b01c8949a6de815309 on topdesk
        note echo x-38b35c8949a981185325 on topdesk
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- exchange removed copy-6 in room-a@example.com
        note echo x-38a5dc89499e1d3c5391 on exchange
        -- succeeded #3 on exchange
    "#]]
    .assert_eq(&w.take_trace());
}

#[test]
fn a_pass_missing_few_bookings_cancels_them() {
    let mut w = World::new(config());
    for h in 8..14 {
        w.user_books_exchange("ann", "a", &format!("2026-03-03T{h:02}:00:00Z"), 30, "Slot");
    }
    w.settle();
    w.take_trace();
    // The notification for one deletion was lost; the pass finds it.
    w.meetings[2].cancelled = true;
    w.full_pass();
    check(
        &mut w,
        expect![[r#"
        -- exchange pass room-a@example.com
        note echo x-38b6dc8949ac906f52d3 on exchange
        note echo x-38b35c8949a981185325 on exchange
        note echo x-38ac9c8949a3cf2a535b on exchange
        note echo x-38a91c8949a0bfd3533f on exchange
        note echo x-38a5dc89499e1d3c5391 on exchange
        note changed x-38b01c8949a6de815309 on exchange: cancelled
        effect #2 cancel reservation res-10
        -- exchange pass room-b@example.com
        -- topdesk pass
        note echo x-38a5dc89499e1d3c5391 on topdesk
        note echo x-38a91c8949a0bfd3533f on topdesk
        note echo x-38ac9c8949a3cf2a535b on topdesk
        note echo x-38b01c8949a6de815309 on topdesk
        note echo x-38b35c8949a981185325 on topdesk
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- topdesk changed res-10
        note echo x-38b01c8949a6de815309 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
}

// ----- failures, backoff, parking ---------------------------------------------------------------

#[test]
fn failures_back_off_then_park_and_admin_retry_resumes() {
    let mut cfg = config();
    cfg.retry = RetryPolicy {
        base: SignedDuration::from_secs(30),
        max: SignedDuration::from_mins(10),
        max_attempts: 4,
        jitter: Jitter::None,
    };
    let mut w = World::new(cfg);
    w.trace_bookings = true;
    w.failures = [true, true, true, true].into();
    w.user_books_topdesk("bob", "a", "2026-03-04T13:00:00Z", 30, "Intake");
    w.settle();
    let id = w.state.bookings().next().unwrap().match_id.clone();
    w.observe(&Observation::AdminRetry { match_id: id });
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note new t-b524f07bc3b84e584769 from topdesk
            effect look up person bob@example.com
            effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            person bob@example.com: pending
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0 awaiting=bob@example.com
            -- person resolved bob@example.com
            person bob@example.com: found p-bob
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=0 retry=0
            -- failed #1 on exchange: Retryable { retry_after: None }
            effect retry at 2026-03-02T08:00:35Z after attempt 1
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=1 retry=0 retry_at=2026-03-02T08:00:35Z
            -- tick
            effect #2 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=1 retry=1
            -- failed #2 on exchange: Retryable { retry_after: None }
            effect retry at 2026-03-02T08:01:36Z after attempt 2
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=2 retry=1 retry_at=2026-03-02T08:01:36Z
            -- tick
            effect #3 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=2 retry=2
            -- failed #3 on exchange: Retryable { retry_after: None }
            effect retry at 2026-03-02T08:03:37Z after attempt 3
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=3 retry=2 retry_at=2026-03-02T08:03:37Z
            -- tick
            effect #4 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=3 retry=3
            -- failed #4 on exchange: Retryable { retry_after: None }
            effect park: retry limit on exchange
            booking t-b524f07bc3b84e584769 parked(retry limit on exchange): room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=4 retry=3
            -- admin retry t-b524f07bc3b84e584769
            effect #5 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=4 retry=4
            -- exchange changed copy-2 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=4 retry=4
            -- succeeded #5 on exchange
            note echo t-b524f07bc3b84e584769 on exchange
            booking t-b524f07bc3b84e584769 active: room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z by bob@example.com "Intake" | cx=0 by=topdesk orig=bob@example.com fail=4 retry=4
        "#]],
    );
}

#[test]
fn denied_mailbox_parks_the_booking() {
    let mut w = World::new(config());
    w.denied.insert(email("bob"));
    w.user_books_topdesk("bob", "a", "2026-03-04T13:00:00Z", 30, "Intake");
    w.settle();
    expect![[r#"
        -- topdesk changed res-1
        note new t-b524f07bc3b84e584769 from topdesk
        effect look up person bob@example.com
        effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- person resolved bob@example.com
        -- failed #1 on exchange: Denied { mailbox: EmailAddress("bob@example.com") }
        effect park: mailbox bob@example.com denied
    "#]].assert_eq(&w.take_trace());
}

#[test]
fn every_effect_carries_the_plan_correlation_id() {
    let (mut w, i) = with_exchange_booking();
    w.user_edits_exchange(i, |m| m.cancelled = true);
    let observation = w.inbox.pop_front().unwrap();
    let engine: &Engine = &w.engine;
    let state: &State = &w.state;
    let plan = engine.plan(state, &observation, w.now);
    assert!(!plan.effects.is_empty());
    assert!(
        plan.effects
            .iter()
            .all(|e| e.correlation == plan.correlation)
    );
    assert!(
        plan.bookings
            .iter()
            .all(|b| b.meta.correlation == plan.correlation)
    );
    // Deterministic: the same inputs plan the same.
    assert_eq!(
        plan.to_string(),
        engine.plan(state, &observation, w.now).to_string()
    );
}

// ----- restart --------------------------------------------------------------------------------

#[test]
fn bookings_survive_a_restart_through_their_stored_form() {
    let mut w = World::new(config());
    let i = w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    w.user_books_topdesk("bob", "b", "2026-03-04T13:00:00Z", 30, "Intake");
    w.settle();
    // Stop with a write in flight: the restarted engine must finish it.
    w.user_edits_exchange(i, |m| m.subject = Some("Renamed".into()));
    w.deliver();
    let stored: Vec<String> = w
        .state
        .bookings()
        .map(|b| serde_json::to_string(b).unwrap())
        .collect();
    let persons: Vec<(orb_reconcile::EmailAddress, orb_reconcile::PersonEntry)> = ["ann", "bob"]
        .iter()
        .filter_map(|n| w.state.person(&email(n)).map(|p| (email(n), p.clone())))
        .collect();
    let bookings = stored
        .iter()
        .map(|json| serde_json::from_str::<orb_reconcile::Booking>(json).unwrap());
    let restored = State::from_parts(bookings, persons);
    let before: Vec<_> = w.state.bookings().cloned().collect();
    let after: Vec<_> = restored.bookings().cloned().collect();
    assert_eq!(before, after);
    w.state = restored;
    w.settle();
    w.assert_agree();
    w.assert_quiet();
    assert!(
        w.reservations
            .iter()
            .any(|r| r.subject.as_deref() == Some("Renamed"))
    );
}

/// A booking stored before retired copies recorded their event and whether orb replaced
/// them still loads (as a copy left by a room move); one stored mid-relocation now keeps
/// recognising the old copy after a restart.
#[test]
fn retired_copies_stored_by_an_older_version_still_load() {
    let (mut w, i) = with_topdesk_booking();
    w.linger_cancelled = true;
    w.user_edits_topdesk(i, |r| r.requester = w_person("ann"));
    w.deliver();
    let b = w.state.bookings().next().unwrap().clone();
    let retired = &b.exchange.retired;
    assert_eq!(retired.len(), 1);
    assert!(retired[0].superseded);
    assert_eq!(retired[0].event.as_ref().map(|e| e.as_str()), Some("ev-2"));
    // Round trip.
    let json = serde_json::to_value(&b).unwrap();
    let back: orb_reconcile::Booking = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, b);
    // The older form: without the two fields.
    let mut old = json;
    let copy = old["exchange"]["retired"][0].as_object_mut().unwrap();
    copy.remove("event");
    copy.remove("superseded");
    let back: orb_reconcile::Booking = serde_json::from_value(old).unwrap();
    assert!(!back.exchange.retired[0].superseded);
    assert_eq!(back.exchange.retired[0].event, None);
    assert_eq!(back.exchange.retired[0].room_copy, retired[0].room_copy);
    // Restarted mid-relocation from the current form: the old copy's cancellation is
    // still orb's own.
    let stored = serde_json::to_string(&b).unwrap();
    w.state = State::from_parts([serde_json::from_str(&stored).unwrap()], []);
    w.settle();
    w.assert_agree();
    w.assert_quiet();
    assert!(!w.reservations[i].cancelled);
}

// ----- more recovery paths --------------------------------------------------------------------

#[test]
fn a_topdesk_pass_finds_a_lost_cancellation() {
    let (mut w, i) = with_topdesk_booking();
    // The reservation is deleted in TOPdesk and the poll that would have seen it is lost.
    w.reservations[i].cancelled = true;
    w.full_pass();
    check(
        &mut w,
        expect![[r#"
        -- exchange pass room-a@example.com
        note echo t-b524f07bc3b84e584769 on exchange
        -- exchange pass room-b@example.com
        -- topdesk pass
        note changed t-b524f07bc3b84e584769 on topdesk: cancelled
        effect #2 cancel event ev-2 in bob@example.com
        -- exchange removed copy-2 in room-a@example.com
        note echo t-b524f07bc3b84e584769 on exchange
        -- succeeded #2 on exchange
    "#]],
    );
}

#[test]
fn retry_after_is_honoured_when_longer_than_the_backoff() {
    let (mut w, i) = with_exchange_booking();
    w.user_edits_exchange(i, |m| m.subject = Some("Renamed".into()));
    w.deliver();
    let Some(Observation::EffectSucceeded { effect, .. }) = w.inbox.pop_back() else {
        panic!("expected the update's outcome last");
    };
    w.inbox.clear();
    let plan = w.observe(&Observation::EffectFailed {
        effect,
        failure: orb_reconcile::Failure::Retryable {
            retry_after: Some(SignedDuration::from_mins(15)),
        },
    });
    expect![[r#"
        effect retry at 2026-03-02T08:15:10Z after attempt 1
        booking x-38b6dc8949ac906f52d3 active: room-a@example.com 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z by ann@example.com "Renamed" | cx=1 by=exchange orig=ann@example.com fail=1 retry=0 retry_at=2026-03-02T08:15:10Z
    "#]].assert_eq(&plan);
}

#[test]
fn an_unanswered_person_lookup_is_asked_again() {
    let mut w = World::new(config());
    w.user_books_exchange("ann", "a", "2026-03-03T09:00:00Z", 60, "Planning");
    w.deliver();
    // The lookup's answer is lost.
    w.inbox.clear();
    w.now += SignedDuration::from_mins(11);
    w.observe(&Observation::Tick);
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note new x-38b6dc8949ac906f52d3 from exchange
        effect look up person ann@example.com
        -- tick
        effect look up person ann@example.com
        -- person resolved ann@example.com
        effect #1 create reservation key=orb:x-38b6dc8949ac906f52d3:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        -- topdesk changed res-2
        note echo x-38b6dc8949ac906f52d3 on topdesk
        -- succeeded #1 on topdesk
    "#]],
    );
}

#[test]
fn an_update_finding_the_item_gone_cancels_the_booking() {
    let (mut w, i) = with_topdesk_booking();
    // The meeting vanished in Exchange without a notification; TOPdesk then reschedules.
    let m = w
        .meetings
        .iter_mut()
        .find(|m| !m.cancelled)
        .map(|m| {
            m.cancelled = true;
            m.uid.clone()
        })
        .unwrap();
    assert_eq!(m.as_str(), "uid-2");
    w.user_edits_topdesk(i, |r| {
        r.start = ts("2026-03-04T15:00:00Z");
        r.end = ts("2026-03-04T16:00:00Z");
    });
    check(
        &mut w,
        expect![[r#"
        -- topdesk changed res-1
        note changed t-b524f07bc3b84e584769 on topdesk: time
        effect #2 update event ev-2 in bob@example.com [room-a@example.com 2026-03-04T15:00:00Z..2026-03-04T16:00:00Z subject="Intake"]
        -- failed #2 on exchange: Gone
        note changed t-b524f07bc3b84e584769 on exchange: cancelled
        effect #3 cancel reservation res-1
        -- topdesk changed res-1
        note echo t-b524f07bc3b84e584769 on topdesk
        -- succeeded #3 on topdesk
    "#]],
    );
}

#[test]
fn a_room_move_that_failed_is_written_back_when_topdesk_moves_back() {
    let (mut w, i) = with_topdesk_booking();
    w.failures = [true].into();
    w.user_edits_topdesk(i, |r| r.location = location("b"));
    w.deliver();
    w.deliver();
    // TOPdesk moves it back before the retry. The failed move may have happened all the
    // same (a timeout after Exchange acted), so orb writes room a again rather than trust
    // that the meeting never left it; the old copy is current again once seen there.
    w.user_edits_topdesk(i, |r| r.location = location("a"));
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: room
            effect #2 update event ev-2 in bob@example.com [room-b@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z replaces=room-a@example.com subject="Intake"]
            -- failed #2 on exchange: Retryable { retry_after: None }
            effect retry at 2026-03-02T08:00:54.82Z after attempt 1
            -- topdesk changed res-1
            note changed t-b524f07bc3b84e584769 on topdesk: room
            -- tick
            effect #3 update event ev-2 in bob@example.com [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z replaces=room-b@example.com subject="Intake"]
            -- exchange changed copy-2 in room-a@example.com
            note echo t-b524f07bc3b84e584769 on exchange
            -- succeeded #3 on exchange
        "#]],
    );
}

#[test]
fn pruned_bookings_do_not_come_back() {
    let (mut w, i) = with_exchange_booking();
    w.now = ts("2026-03-04T00:00:00Z");
    let pruned = w.state.prune(w.now);
    assert_eq!(pruned.len(), 1);
    assert_eq!(w.state.bookings().count(), 0);
    // A late notification of the finished meeting is not a new booking.
    w.user_edits_exchange(i, |m| m.subject = Some("Minutes".into()));
    w.settle();
    expect![[r#"
        -- exchange changed copy-1 in room-a@example.com
        note ignored: booking lies in the past
    "#]]
    .assert_eq(&w.take_trace());
    assert_eq!(w.state.bookings().count(), 0);
}

/// Ann moves her meeting to room b and back to room a in Outlook. Each room's copy is a
/// booking of its own: the first ended when the meeting left room a and stays ended, and
/// the copy of the room invited again is a new booking — orb never cancels the meeting.
#[test]
fn a_meeting_that_leaves_a_room_and_comes_back_is_booked_again() {
    let (mut w, i) = with_exchange_booking();
    w.user_edits_exchange(i, |m| m.room = room("b"));
    w.settle();
    w.take_trace();
    w.user_edits_exchange(i, |m| m.room = room("a"));
    check(
        &mut w,
        expect![[r#"
        -- exchange removed copy-3 in room-b@example.com
        note changed x-8526043eefe06494cc0f on exchange: cancelled
        effect #2 cancel reservation res-4
        -- exchange changed copy-5 in room-a@example.com
        note new x-c3ec72af0826e251065b from exchange
        effect #1 create reservation key=orb:x-c3ec72af0826e251065b:t0 [loc-a 2026-03-03T09:00:00Z..2026-03-03T10:00:00Z requester=p-ann(ann@example.com) subject="Planning"]
        -- topdesk changed res-4
        note echo x-8526043eefe06494cc0f on topdesk
        -- succeeded #2 on topdesk
        -- topdesk changed res-6
        note echo x-c3ec72af0826e251065b on topdesk
        -- succeeded #1 on topdesk
    "#]],
    );
    assert!(!w.meetings[i].cancelled);
}

/// A reservation moved to a room orb does not manage and back: the booking ended when it
/// left (the meeting was cancelled in Exchange), and it is a booking again when it comes
/// back — orb never cancels the user's reservation.
#[test]
fn a_reservation_that_leaves_the_managed_rooms_and_comes_back_is_booked_again() {
    let (mut w, i) = with_topdesk_booking();
    w.user_edits_topdesk(i, |r| r.location = location("z"));
    w.settle();
    w.take_trace();
    w.user_edits_topdesk(i, |r| r.location = location("a"));
    check(
        &mut w,
        expect![[r#"
            -- topdesk changed res-1
            note new t-fb6ae66d2bd7d8d46f35 from topdesk
            effect #1 create event in bob@example.com txn=orb:t-fb6ae66d2bd7d8d46f35:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
            -- exchange changed copy-3 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #1 on exchange
            note echo t-fb6ae66d2bd7d8d46f35 on exchange
        "#]],
    );
    assert!(!w.reservations[i].cancelled);
    assert_eq!(w.meetings.iter().filter(|m| !m.cancelled).count(), 1);
}

// ----- orb's own new event: its room copy before the create's outcome ---------------------------

/// Delivers the newest inbox entry first.
fn deliver_newest(w: &mut World) {
    if let Some(observation) = w.inbox.pop_back() {
        w.inbox.push_front(observation);
        w.deliver();
    }
}

/// A TOPdesk booking of bob whose event orb has just created in bob's calendar: the
/// room copy's notification and the create's outcome are still on their way.
fn with_event_being_created() -> (World, usize) {
    let mut w = World::new(config());
    let i = w.user_books_topdesk("bob", "a", "2026-03-04T13:00:00Z", 30, "Intake");
    // The reservation, then the person lookup: the create is issued.
    w.deliver();
    w.deliver();
    assert_eq!(w.meetings.len(), 1, "{}", w.trace_tail());
    (w, i)
}

/// Bob edits orb's new event before orb has recorded the create: the room copy shows
/// Bob's time, not what orb wrote, and arrives before the create's outcome. It is orb's
/// event all the same — no second booking, no second reservation; Bob's edit reaches
/// TOPdesk.
#[test]
fn a_user_edit_of_orbs_new_event_before_its_outcome_is_no_second_booking() {
    let (mut w, i) = with_event_being_created();
    w.take_trace();
    // The first notification of the copy is lost; Bob's edit is reported first.
    w.inbox.pop_front();
    w.user_edits_exchange(0, |m| {
        m.start = ts("2026-03-04T14:00:00Z");
        m.end = ts("2026-03-04T15:00:00Z");
    });
    deliver_newest(&mut w);
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-2 in room-a@example.com
        note ignored: awaiting the outcome of orb's own create
        -- succeeded #1 on exchange
        note changed t-b524f07bc3b84e584769 on exchange: time
        effect #2 update reservation res-1 [loc-a 2026-03-04T14:00:00Z..2026-03-04T15:00:00Z requester=p-bob(bob@example.com) subject="Intake"]
        -- topdesk changed res-1
        note echo t-b524f07bc3b84e584769 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
    assert_eq!(w.reservations.len(), 1, "{}", w.trace_tail());
    assert_eq!(w.reservations[i].start, ts("2026-03-04T14:00:00Z"));
    assert_eq!(w.state.bookings().count(), 1);
    w.assert_cancelled_only_by_users();
}

/// The create's outcome does not come in time and orb issues it again; Exchange made the
/// event the first time, the repeated call fails. The failure arrives first, then the
/// room copy, then the first call's success: one event, one reservation, one booking.
#[test]
fn a_repeated_create_whose_repeat_failed_is_one_booking() {
    let (mut w, i) = with_event_being_created();
    w.take_trace();
    w.now += w.engine.config().in_flight_timeout;
    w.failures = [true].into();
    w.observe(&Observation::Tick);
    // inbox: copy, success (first call), failure (repeat).
    deliver_newest(&mut w);
    check(
        &mut w,
        expect![[r#"
        -- tick
        effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- failed #1 on exchange: Retryable { retry_after: None }
        effect retry at 2026-03-02T08:10:50.82Z after attempt 1
        -- exchange changed copy-2 in room-a@example.com
        note ignored: awaiting the outcome of orb's own create
        -- succeeded #1 on exchange
        note ignored: outcome of a superseded effect
        -- tick
        effect #2 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- succeeded #2 on exchange
        note echo t-b524f07bc3b84e584769 on exchange
    "#]],
    );
    assert_eq!(w.reservations.len(), 1, "{}", w.trace_tail());
    assert!(!w.reservations[i].cancelled);
    assert_eq!(w.meetings.len(), 1);
    assert_eq!(w.state.bookings().count(), 1);
    w.assert_cancelled_only_by_users();
}

/// As above, with Bob editing the event while the repeated create is pending.
#[test]
fn a_repeated_create_and_a_user_edit_are_one_booking() {
    let (mut w, i) = with_event_being_created();
    w.take_trace();
    w.now += w.engine.config().in_flight_timeout;
    w.failures = [true].into();
    w.observe(&Observation::Tick);
    deliver_newest(&mut w);
    w.user_edits_exchange(0, |m| m.subject = Some("Intake (moved)".to_owned()));
    deliver_newest(&mut w);
    check(
        &mut w,
        expect![[r#"
        -- tick
        effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- failed #1 on exchange: Retryable { retry_after: None }
        effect retry at 2026-03-02T08:10:50.82Z after attempt 1
        -- exchange changed copy-2 in room-a@example.com
        note ignored: awaiting the outcome of orb's own create
        -- exchange changed copy-2 in room-a@example.com
        note ignored: awaiting the outcome of orb's own create
        -- succeeded #1 on exchange
        note ignored: outcome of a superseded effect
        -- tick
        effect #2 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- succeeded #2 on exchange
        note changed t-b524f07bc3b84e584769 on exchange: subject
        effect #3 update reservation res-1 [loc-a 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z requester=p-bob(bob@example.com) subject="Intake (moved)"]
        -- topdesk changed res-1
        note echo t-b524f07bc3b84e584769 on topdesk
        -- succeeded #3 on topdesk
    "#]],
    );
    assert_eq!(w.reservations.len(), 1, "{}", w.trace_tail());
    assert_eq!(w.reservations[i].subject.as_deref(), Some("Intake (moved)"));
    assert_eq!(w.state.bookings().count(), 1);
    w.assert_cancelled_only_by_users();
}

/// The create's outcome is lost to a failed repeat and TOPdesk moves the reservation to
/// room b meanwhile. The repeated create sends what the first one wrote (Exchange answers
/// with the event the first call made, still in room a), and the move follows as an
/// update: one event, in room b, one reservation, nothing cancelled.
#[test]
fn a_repeated_create_sends_what_the_first_one_wrote() {
    let (mut w, i) = with_event_being_created();
    w.take_trace();
    w.now += w.engine.config().in_flight_timeout;
    w.failures = [true].into();
    w.observe(&Observation::Tick);
    deliver_newest(&mut w);
    w.user_edits_topdesk(i, |r| r.location = location("b"));
    deliver_newest(&mut w);
    check(
        &mut w,
        expect![[r#"
        -- tick
        effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- failed #1 on exchange: Retryable { retry_after: None }
        effect retry at 2026-03-02T08:10:50.82Z after attempt 1
        -- topdesk changed res-1
        note changed t-b524f07bc3b84e584769 on topdesk: room
        -- exchange changed copy-2 in room-a@example.com
        note ignored: awaiting the outcome of orb's own create
        -- succeeded #1 on exchange
        note ignored: outcome of a superseded effect
        -- tick
        effect #2 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- succeeded #2 on exchange
        note echo t-b524f07bc3b84e584769 on exchange
        effect #3 update event ev-2 in bob@example.com [room-b@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z replaces=room-a@example.com subject="Intake"]
        -- exchange removed copy-2 in room-a@example.com
        note ignored: copy orb stopped following (echo of a move)
        -- exchange changed copy-3 in room-b@example.com
        note echo t-b524f07bc3b84e584769 on exchange
        -- succeeded #3 on exchange
    "#]],
    );
    assert_eq!(w.reservations.len(), 1, "{}", w.trace_tail());
    assert_eq!(w.meetings.len(), 1);
    assert_eq!(w.meetings[0].room, room("b"));
    assert_eq!(w.state.bookings().count(), 1);
    w.assert_cancelled_only_by_users();
}

/// Bob edits the meeting in Outlook while orb's move to room b (a TOPdesk change) is in
/// flight and then fails: the copy in room a is still the meeting's, Bob's edit is a
/// concurrent edit of the same booking, not a new booking of room a that orb's retried
/// move would then cancel.
#[test]
fn a_user_edit_while_orbs_room_move_is_in_flight_is_no_second_booking() {
    let (mut w, i) = with_topdesk_booking();
    w.failures = [true].into();
    w.user_edits_topdesk(i, |r| r.location = location("b"));
    w.deliver();
    w.user_edits_exchange(0, |m| m.subject = Some("Intake, part 2".to_owned()));
    deliver_newest(&mut w);
    check(
        &mut w,
        expect![[r#"
        -- topdesk changed res-1
        note changed t-b524f07bc3b84e584769 on topdesk: room
        effect #2 update event ev-2 in bob@example.com [room-b@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z replaces=room-a@example.com subject="Intake"]
        -- exchange changed copy-2 in room-a@example.com
        note changed t-b524f07bc3b84e584769 on exchange: subject
        effect #3 update reservation res-1 [loc-b 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z requester=p-bob(bob@example.com) subject="Intake, part 2"]
        -- failed #2 on exchange: Retryable { retry_after: None }
        effect retry at 2026-03-02T08:00:57.82Z after attempt 1
        -- topdesk changed res-1
        note echo t-b524f07bc3b84e584769 on topdesk
        -- succeeded #3 on topdesk
        -- tick
        effect #4 update event ev-2 in bob@example.com [room-b@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z replaces=room-a@example.com subject="Intake, part 2"]
        -- exchange removed copy-2 in room-a@example.com
        note ignored: copy orb stopped following (echo of a move)
        -- exchange changed copy-4 in room-b@example.com
        note echo t-b524f07bc3b84e584769 on exchange
        -- succeeded #4 on exchange
    "#]],
    );
    assert_eq!(w.reservations.len(), 1, "{}", w.trace_tail());
    assert!(!w.reservations[i].cancelled);
    assert_eq!(w.meetings[0].room, room("b"));
    assert_eq!(w.state.bookings().count(), 1);
    w.assert_cancelled_only_by_users();
}

/// While orb's create is in flight, Bob books an identical meeting in Outlook and its
/// copy arrives first: it looks exactly like what orb wrote. Both copies wait for the
/// create's outcome instead of being linked by content; its `iCalUId` settles which copy
/// is orb's, and Bob's meeting becomes a booking of its own.
#[test]
fn an_identical_meeting_waits_with_orbs_own_copy_for_the_creates_outcome() {
    let (mut w, i) = with_event_being_created();
    w.take_trace();
    w.user_books_exchange("bob", "a", "2026-03-04T13:00:00Z", 30, "Intake");
    deliver_newest(&mut w);
    w.deliver();
    w.settle();
    w.full_pass();
    check(
        &mut w,
        expect![[r#"
            -- exchange changed copy-3 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- exchange changed copy-2 in room-a@example.com
            note ignored: awaiting the outcome of orb's own create
            -- succeeded #1 on exchange
            note new x-38b01c8949a6de815309 from exchange
            note echo t-b524f07bc3b84e584769 on exchange
            effect #1 create reservation key=orb:x-38b01c8949a6de815309:t0 [loc-a 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z requester=p-bob(bob@example.com) subject="Intake"]
            -- topdesk changed res-4
            note echo x-38b01c8949a6de815309 on topdesk
            -- succeeded #1 on topdesk
            -- exchange pass room-a@example.com
            note echo t-b524f07bc3b84e584769 on exchange
            note echo x-38b01c8949a6de815309 on exchange
            -- exchange pass room-b@example.com
            -- topdesk pass
            note echo t-b524f07bc3b84e584769 on topdesk
            note echo x-38b01c8949a6de815309 on topdesk
        "#]],
    );
    assert_eq!(w.reservations.len(), 2, "{}", w.trace_tail());
    assert!(!w.reservations[i].cancelled);
    assert_eq!(w.state.bookings().count(), 2);
    w.assert_cancelled_only_by_users();
}

// ----- declines ---------------------------------------------------------------------------------

/// TOPdesk marks Bob's own TOPdesk booking conflicting: the room declines the meeting orb
/// made for it, and with Exchange's default settings the declined meeting leaves the
/// room's calendar. That removal is orb's own decline coming back, not Bob cancelling:
/// the reservation stays (conflicting, for TOPdesk to resolve), and a full pass that no
/// longer lists the copy cancels nothing either.
#[test]
fn the_removal_of_a_copy_orb_declined_is_no_cancellation() {
    let (mut w, i) = with_topdesk_booking();
    w.decline_removes_copy = true;
    w.topdesk_marks_conflicting(i, "room is double-booked");
    w.settle();
    w.full_pass();
    check(
        &mut w,
        expect![[r#"
        -- topdesk changed res-1
        note echo t-b524f07bc3b84e584769 on topdesk
        -- topdesk conflicting res-1: room is double-booked
        effect decline copy-2 in room-a@example.com: room is double-booked
        -- exchange removed copy-2 in room-a@example.com
        note ignored: copy the room declined for orb (echo of a decline)
        -- exchange pass room-a@example.com
        -- exchange pass room-b@example.com
        -- topdesk pass
        note echo t-b524f07bc3b84e584769 on topdesk
        -- topdesk conflicting res-1: room is double-booked
        note ignored: conflict already known
    "#]],
    );
    assert!(!w.reservations[i].cancelled, "{}", w.trace_tail());
    assert!(w.meetings.iter().all(|m| !m.cancelled));
    w.assert_cancelled_only_by_users();
}

/// The fields added for held copies, repeated creates and declines round-trip, and a
/// booking stored without them (an older version) still loads; restarted while a copy is
/// held, orb still makes one booking of it.
#[test]
fn held_copies_stored_by_an_older_version_still_load() {
    let (mut w, _) = with_event_being_created();
    w.inbox.pop_front();
    w.user_edits_exchange(0, |m| m.subject = Some("Intake (edited)".to_owned()));
    deliver_newest(&mut w);
    let b = w.state.bookings().next().unwrap().clone();
    assert_eq!(b.exchange.held.len(), 1);
    assert!(b.exchange.unconfirmed_create.is_some());
    let json = serde_json::to_value(&b).unwrap();
    let back: orb_reconcile::Booking = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, b);
    let mut old = json;
    let x = old["exchange"].as_object_mut().unwrap();
    for field in ["held", "unconfirmed_create", "declined"] {
        assert!(x.remove(field).is_some(), "{field}");
    }
    let back: orb_reconcile::Booking = serde_json::from_value(old).unwrap();
    assert!(back.exchange.held.is_empty());
    assert_eq!(back.exchange.unconfirmed_create, None);
    assert_eq!(back.exchange.declined, None);
    let stored = serde_json::to_string(&b).unwrap();
    w.state = State::from_parts([serde_json::from_str(&stored).unwrap()], []);
    w.settle();
    w.assert_agree();
    w.assert_quiet();
    assert_eq!(w.reservations.len(), 1);
    assert_eq!(w.state.bookings().count(), 1);
    w.assert_cancelled_only_by_users();
}

/// As above, but the service could read orb's match-id property on the room copy: the
/// copy belongs to the booking at once, Bob's edit flows before the create's outcome.
#[test]
fn a_copy_showing_orbs_match_id_belongs_to_its_booking_at_once() {
    let (mut w, i) = with_event_being_created();
    w.take_trace();
    w.inbox.pop_front();
    w.user_edits_exchange(0, |m| {
        m.start = ts("2026-03-04T14:00:00Z");
        m.end = ts("2026-03-04T15:00:00Z");
    });
    let match_id = w.state.bookings().next().unwrap().match_id.clone();
    let Some(Observation::ExchangeChanged(mut item)) = w.inbox.pop_back() else {
        panic!("no copy reported");
    };
    item.orb_match_id = Some(match_id);
    w.inbox.push_front(Observation::ExchangeChanged(item));
    check(
        &mut w,
        expect![[r#"
        -- exchange changed copy-2 in room-a@example.com
        note changed t-b524f07bc3b84e584769 on exchange: time
        effect #2 update reservation res-1 [loc-a 2026-03-04T14:00:00Z..2026-03-04T15:00:00Z requester=p-bob(bob@example.com) subject="Intake"]
        -- succeeded #1 on exchange
        -- topdesk changed res-1
        note echo t-b524f07bc3b84e584769 on topdesk
        -- succeeded #2 on topdesk
    "#]],
    );
    assert_eq!(w.reservations.len(), 1, "{}", w.trace_tail());
    assert_eq!(w.reservations[i].start, ts("2026-03-04T14:00:00Z"));
    assert_eq!(w.state.bookings().count(), 1);
    w.assert_cancelled_only_by_users();
}

/// Bob cancels his TOPdesk reservation while orb's create waits for its retry (the first
/// call made the event, the repeat failed). orb cannot cancel an event it cannot name:
/// it repeats the create as first sent, which finds the event, and cancels that. The
/// event's copy, held meanwhile, never becomes a booking of its own (which would book
/// the room again in TOPdesk).
#[test]
fn a_booking_cancelled_while_its_create_is_unconfirmed_cancels_orbs_event() {
    let (mut w, i) = with_event_being_created();
    w.take_trace();
    w.now += w.engine.config().in_flight_timeout;
    w.failures = [true].into();
    w.observe(&Observation::Tick);
    deliver_newest(&mut w);
    w.user_edits_topdesk(i, |r| r.cancelled = true);
    deliver_newest(&mut w);
    check(
        &mut w,
        expect![[r#"
        -- tick
        effect #1 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- failed #1 on exchange: Retryable { retry_after: None }
        effect retry at 2026-03-02T08:10:50.82Z after attempt 1
        -- topdesk changed res-1
        note changed t-b524f07bc3b84e584769 on topdesk: cancelled
        -- exchange changed copy-2 in room-a@example.com
        note ignored: awaiting the outcome of orb's own create
        -- succeeded #1 on exchange
        note ignored: outcome of a superseded effect
        -- tick
        effect #2 create event in bob@example.com txn=orb:t-b524f07bc3b84e584769:x0 [room-a@example.com 2026-03-04T13:00:00Z..2026-03-04T13:30:00Z subject="Intake"]
        -- succeeded #2 on exchange
        note echo t-b524f07bc3b84e584769 on exchange
        effect #3 cancel event ev-2 in bob@example.com
        -- exchange removed copy-2 in room-a@example.com
        note echo t-b524f07bc3b84e584769 on exchange
        -- succeeded #3 on exchange
    "#]],
    );
    assert_eq!(w.reservations.len(), 1, "{}", w.trace_tail());
    assert!(w.meetings.iter().all(|m| m.cancelled), "{}", w.trace_tail());
    assert_eq!(w.state.bookings().count(), 1);
    w.assert_cancelled_only_by_users();
}
