//! Property test: after any sequence of transactions, every index entry points at a
//! record that points back, the store equals a simple model, and no unique id is shared.

use std::collections::{BTreeMap, HashMap};

use orb_store::{Booking, Error, MatchId, Store};
use proptest::prelude::*;

use super::common::{booking, key, ts};

#[derive(Clone, Debug)]
enum Op {
    Save {
        id: u8,
        room: u8,
        room_event: Option<u8>,
        topdesk_id: Option<u8>,
        topdesk_number: Option<u8>,
        organizer_event: Option<u8>,
        ical: Option<(u8, Option<u8>)>,
        series: Option<u8>,
        corr: u8,
    },
    Delete {
        id: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let small = || proptest::option::of(0u8..4);
    prop_oneof![
        3 => (
            (0u8..6, 0u8..3, small(), small(), small()),
            (small(), proptest::option::of((0u8..3, proptest::option::of(0u8..3))), proptest::option::of(0u8..6), 0u8..3),
        )
            .prop_map(|((id, room, room_event, topdesk_id, topdesk_number), (organizer_event, ical, series, corr))| Op::Save {
                id, room, room_event, topdesk_id, topdesk_number, organizer_event, ical, series, corr,
            }),
        1 => (0u8..6).prop_map(|id| Op::Delete { id }),
    ]
}

fn build(op: &Op) -> Option<Booking> {
    let Op::Save {
        id,
        room,
        room_event,
        topdesk_id,
        topdesk_number,
        organizer_event,
        ical,
        series,
        corr,
    } = op
    else {
        return None;
    };
    let mut b = booking(&format!("m{id}"));
    b.room = format!("room-{room}@example.com").into();
    b.room_event_id = room_event.map(|v| format!("re{v}").into());
    b.topdesk_reservation_id = topdesk_id.map(|v| format!("td{v}").into());
    b.topdesk_reservation_number = topdesk_number.map(|v| format!("R{v}").into());
    b.organizer_event_id = organizer_event.map(|v| format!("oe{v}").into());
    if let Some((uid, occ)) = ical {
        b.ical_uid = Some(format!("uid{uid}").into());
        b.occurrence_start = occ.map(|o| ts(i64::from(o) * 3600));
    }
    b.series_master = series.map(|s| format!("m{s}").into());
    b.correlation_id = format!("c{corr}").into();
    Some(b)
}

/// Applies a transaction to the model, or returns `None` if any of its saves finds a
/// unique id held by another booking (the store checks op by op, like this).
fn model_apply(
    model: &BTreeMap<MatchId, Booking>,
    ops: &[Op],
) -> Option<BTreeMap<MatchId, Booking>> {
    let mut m = model.clone();
    for op in ops {
        match op {
            Op::Delete { id } => {
                m.remove(&MatchId::new(format!("m{id}")));
            }
            save => {
                let b = build(save)?;
                m.insert(b.match_id.clone(), b);
                if !unique_ids_distinct(&m) {
                    return None;
                }
            }
        }
    }
    Some(m)
}

fn unique_ids_distinct(m: &BTreeMap<MatchId, Booking>) -> bool {
    let mut seen = HashMap::new();
    for b in m.values() {
        let keys = [
            b.room_event_id.as_ref().map(|v| format!("re:{v}")),
            b.topdesk_reservation_id.as_ref().map(|v| format!("td:{v}")),
            b.topdesk_reservation_number
                .as_ref()
                .map(|v| format!("no:{v}")),
        ];
        for k in keys.into_iter().flatten() {
            if seen.insert(k, b.match_id.clone()).is_some() {
                return false;
            }
        }
    }
    true
}

fn check(store: &Store, model: &BTreeMap<MatchId, Booking>) {
    store.verify_integrity().unwrap();
    let stored: BTreeMap<MatchId, Booking> = store
        .bookings()
        .map(|b| {
            let b = b.unwrap();
            (b.match_id.clone(), b)
        })
        .collect();
    assert_eq!(&stored, model);
    for b in model.values() {
        if let Some(v) = &b.room_event_id {
            assert_eq!(store.booking_by_room_event(v).unwrap().as_ref(), Some(b));
        }
        if let Some(v) = &b.topdesk_reservation_id {
            assert_eq!(store.booking_by_topdesk_id(v).unwrap().as_ref(), Some(b));
        }
        if let Some(v) = &b.topdesk_reservation_number {
            assert_eq!(
                store.booking_by_topdesk_number(v).unwrap().as_ref(),
                Some(b)
            );
        }
        if let Some(v) = &b.organizer_event_id {
            assert!(store.bookings_by_organizer_event(v).unwrap().contains(b));
        }
        if let Some(v) = &b.ical_uid {
            assert!(
                store
                    .bookings_by_ical_occurrence(v, b.occurrence_start)
                    .unwrap()
                    .contains(b)
            );
        }
        assert!(store.bookings_in_room(&b.room).unwrap().contains(b));
        assert!(
            store
                .bookings_by_correlation(&b.correlation_id)
                .unwrap()
                .contains(b)
        );
        if let Some(m) = &b.series_master {
            assert!(store.series_occurrences(m).unwrap().contains(b));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn indexes_stay_consistent_with_records(txs in proptest::collection::vec(proptest::collection::vec(op(), 1..4), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &key()).unwrap();
        let mut model = BTreeMap::new();
        for ops in &txs {
            let mut tx = store.transaction();
            for op in ops {
                match build(op) {
                    Some(b) => { tx.save_booking(b); }
                    None => if let Op::Delete { id } = op { tx.delete_booking(format!("m{id}").into()); },
                }
            }
            let outcome = tx.commit_buffered();
            match model_apply(&model, ops) {
                Some(next) => {
                    prop_assert!(outcome.is_ok(), "{outcome:?}");
                    model = next;
                }
                None => prop_assert!(matches!(outcome, Err(Error::IndexConflict { .. })), "{outcome:?}"),
            }
            check(&store, &model);
        }
    }
}
