//! Throughput of orb-reconcile's `plan`: a single-booking update (target ≥ 500,000
//! decisions/s on one core) and a change of a 52-occurrence series (target < 100 µs).
//!
//! States are built by driving the engine itself to rest with synthetic outcomes, so the
//! measured plan runs against exactly what the service would hold.

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use orb_reconcile::{
    Config, EffectKind, EmailAddress, Engine, ExchangeItem, GraphEventId, IcalUid, Observation,
    Outcome, RoomMailbox, Rooms, SeriesOccurrence, State, TopdeskLocationId, TopdeskPersonId,
    TopdeskReservationId, Window,
};

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

fn parse<T, E>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(_) => panic!("invalid benchmark fixture"),
    }
}

struct Fixture {
    engine: Engine,
    state: State,
    now: Timestamp,
    next: u64,
}

impl Fixture {
    fn new(rooms: usize) -> Self {
        let rooms = Rooms::new((0..rooms).map(|i| {
            (
                parse(RoomMailbox::parse(&format!("room-{i}@example.com"))),
                parse(TopdeskLocationId::new(format!("loc-{i}"))),
            )
        }));
        let mut config = Config::new(rooms);
        // A year ahead, so a weekly series of 52 occurrences lies within the horizon.
        config.horizon = SignedDuration::from_hours(24 * 400);
        Self {
            engine: Engine::new(config),
            state: State::new(),
            now: ts("2026-03-01T08:00:00Z"),
            next: 0,
        }
    }

    /// Plans, applies and answers every effect with success until nothing is left.
    fn drive(&mut self, first: Observation) {
        let mut queue = VecDeque::from([first]);
        while let Some(observation) = queue.pop_front() {
            let plan = self.engine.plan(&self.state, &observation, self.now);
            self.state.apply(&plan);
            for effect in plan.effects {
                self.next += 1;
                let n = self.next;
                match effect.kind {
                    EffectKind::LookUpPerson { email } => {
                        queue.push_back(Observation::PersonResolved {
                            person: Some(parse(TopdeskPersonId::new(format!("p-{email}")))),
                            email,
                        });
                    }
                    EffectKind::CreateReservation { effect, .. }
                    | EffectKind::UpdateReservation { effect, .. } => {
                        queue.push_back(Observation::EffectSucceeded {
                            effect,
                            outcome: Outcome::Reservation {
                                id: parse(TopdeskReservationId::new(format!("res-{n}"))),
                                modified_at: self.now,
                            },
                        });
                    }
                    _ => {}
                }
            }
        }
    }
}

fn item(
    room: &RoomMailbox,
    n: usize,
    start: Timestamp,
    master: Option<&GraphEventId>,
) -> ExchangeItem {
    ExchangeItem {
        room: room.clone(),
        event_id: parse(GraphEventId::new(format!("copy-{n}"))),
        ical_uid: parse(IcalUid::new(format!("uid-{n}"))),
        organizer: parse(EmailAddress::parse(&format!(
            "person-{}@example.com",
            n % 50
        ))),
        required_attendees: vec![parse(EmailAddress::parse("guest@example.com"))],
        subject: Some("Weekly planning".to_owned()),
        private: false,
        start,
        end: start + SignedDuration::from_mins(60),
        cancelled: false,
        series: master.map(|master| SeriesOccurrence {
            master: master.clone(),
            original_start: start,
        }),
        orb_match_id: None,
        modified_at: ts("2026-03-01T08:00:00Z"),
    }
}

fn single_update(c: &mut Criterion) {
    // 1,000 settled bookings over 20 rooms; one of them is rescheduled in Outlook.
    let mut fx = Fixture::new(20);
    let base = ts("2026-03-02T08:00:00Z");
    let mut items = Vec::new();
    for n in 0..1000 {
        let room = parse(RoomMailbox::parse(&format!("room-{}@example.com", n % 20)));
        let it = item(
            &room,
            n,
            base + SignedDuration::from_hours((n / 20) as i64),
            None,
        );
        fx.drive(Observation::ExchangeChanged(it.clone()));
        items.push(it);
    }
    let mut changed = items[500].clone();
    changed.start += SignedDuration::from_mins(30);
    changed.end += SignedDuration::from_mins(30);
    changed.modified_at = fx.now + SignedDuration::from_secs(1);
    let observation = Observation::ExchangeChanged(changed);
    let plan = fx.engine.plan(&fx.state, &observation, fx.now);
    assert_eq!(plan.effects.len(), 1, "{plan}");

    let mut group = c.benchmark_group("reconcile");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_booking_update", |b| {
        b.iter(|| {
            black_box(
                fx.engine
                    .plan(black_box(&fx.state), black_box(&observation), fx.now),
            )
        });
    });
    group.finish();
}

fn series_change(c: &mut Criterion) {
    // A settled weekly series of 52 occurrences; the organizer moves the whole series an
    // hour later, and Exchange's expansion reports all 52 occurrences changed.
    let mut fx = Fixture::new(20);
    let room = parse(RoomMailbox::parse("room-3@example.com"));
    let master = parse(GraphEventId::new("master-1"));
    let base = ts("2026-03-02T09:00:00Z");
    let window = Window {
        start: base - SignedDuration::from_hours(24),
        end: base + SignedDuration::from_hours(24 * 7 * 53),
    };
    let occurrences: Vec<ExchangeItem> = (0..52)
        .map(|n| {
            item(
                &room,
                n,
                base + SignedDuration::from_hours(24 * 7 * n as i64),
                Some(&master),
            )
        })
        .collect();
    fx.drive(Observation::ExchangeSeries {
        room: room.clone(),
        master: master.clone(),
        window,
        occurrences: occurrences.clone(),
    });
    let moved = occurrences
        .into_iter()
        .map(|mut it| {
            it.start += SignedDuration::from_hours(1);
            it.end += SignedDuration::from_hours(1);
            it.modified_at = fx.now + SignedDuration::from_secs(1);
            it
        })
        .collect();
    let observation = Observation::ExchangeSeries {
        room,
        master,
        window,
        occurrences: moved,
    };
    let plan = fx.engine.plan(&fx.state, &observation, fx.now);
    assert_eq!(plan.effects.len(), 52, "{plan}");

    let mut group = c.benchmark_group("reconcile");
    group.throughput(Throughput::Elements(52));
    group.bench_function("series_52_change", |b| {
        b.iter(|| {
            black_box(
                fx.engine
                    .plan(black_box(&fx.state), black_box(&observation), fx.now),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, single_update, series_change);
criterion_main!(benches);
