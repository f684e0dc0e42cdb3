//! Crash test: a child process runs transactions in a loop and is killed with SIGKILL at
//! random moments; after every kill the store must reopen with every acknowledged
//! transaction visible, no partial transaction visible, and inbox/outbox consistent.

use std::io::{BufRead as _, BufReader};
use std::time::Instant;

use orb_store::{MatchId, Store};

use super::child::{self, WRITERS, body, booking_id, counter_id};
use super::common::key;

/// Number of SIGKILLs.
const KILLS: usize = 60;

/// A small deterministic generator (xorshift64*), seeded per run so a failure can be
/// reproduced with `ORB_STORE_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_and_shows_no_partial_transaction() {
    let seed = std::env::var("ORB_STORE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("crash test seed {seed} (set ORB_STORE_CRASH_SEED to reproduce)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let started = Instant::now();
    // Highest acknowledged transaction per writer, over all rounds.
    let mut acked: [Option<u32>; WRITERS] = [None; WRITERS];
    let mut total_acks = 0usize;
    for round in 0..KILLS {
        // 0 kills during start-up/recovery; otherwise after that many acks.
        let target = rng.next() % 16;
        let mut c = child::command("crash", &db, &[]).spawn().unwrap();
        let stdout = c.stdout.take().unwrap();
        let mut seen = 0;
        if target > 0 {
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                if let Some(rest) = line.strip_prefix("ack ") {
                    let (w, i) = rest.split_once(' ').unwrap();
                    let (w, i): (usize, u32) = (w.parse().unwrap(), i.parse().unwrap());
                    acked[w] = Some(acked[w].map_or(i, |a| a.max(i)));
                    seen += 1;
                    total_acks += 1;
                    if seen >= target {
                        break;
                    }
                }
            }
        }
        c.kill().unwrap(); // SIGKILL
        let status = c.wait().unwrap();
        if seen < target {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
            panic!("round {round}: child ended early ({status}): {err}");
        }
        verify(&db, &acked, round);
    }
    eprintln!(
        "crash test: {KILLS} kills, {total_acks} acknowledged transactions, {:?}",
        started.elapsed()
    );
    assert!(total_acks > KILLS, "the child made progress");
}

fn verify(db: &std::path::Path, acked: &[Option<u32>; WRITERS], round: usize) {
    let store = Store::open(db, &key()).unwrap();
    store
        .verify_integrity()
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
    for (w, acked) in acked.iter().enumerate() {
        let n = store
            .booking(&counter_id(w).into())
            .unwrap()
            .map_or(0, |b| b.complexity_index);
        if let Some(a) = acked {
            assert!(
                n > *a,
                "round {round}: writer {w} acked {a} but only {n} visible"
            );
        }
        for i in n.saturating_sub(3)..n {
            check_committed(&store, w, i, n, round);
        }
        // Spot-check older transactions too (all of them every 10th round).
        if round % 10 == 9 {
            for i in 0..n {
                check_committed(&store, w, i, n, round);
            }
        }
        // Transaction n never committed: none of its parts may be visible.
        let id: MatchId = booking_id(w, n).into();
        assert!(
            store.booking(&id).unwrap().is_none(),
            "round {round}: partial {id}"
        );
        assert!(store.audit_by_booking(&id).unwrap().is_empty());
        assert!(store.effects_for_booking(&id).unwrap().is_empty());
    }
    // Inbox: entries of committed transactions are done; only the entry of the one
    // in-flight transaction per writer may be pending; nothing beyond it exists.
    for e in store.pending_inbox().unwrap() {
        let text = String::from_utf8(e.body).unwrap();
        let (w, i) = text[1..].split_once('-').unwrap();
        let (w, i): (usize, u32) = (w.parse().unwrap(), i.parse().unwrap());
        let n = store
            .booking(&counter_id(w).into())
            .unwrap()
            .map_or(0, |b| b.complexity_index);
        assert_eq!(
            i, n,
            "round {round}: pending inbox entry {text} of a committed or future transaction"
        );
        assert_eq!(text, body(w, i));
    }
}

fn check_committed(store: &Store, w: usize, i: u32, n: u32, round: usize) {
    let id: MatchId = booking_id(w, i).into();
    let b = store
        .booking(&id)
        .unwrap()
        .unwrap_or_else(|| panic!("round {round}: committed booking {id} missing"));
    assert_eq!(b.complexity_index, i);
    let re_now = if i + 1 < n {
        format!("re2{w}-{i}")
    } else {
        format!("re{w}-{i}")
    };
    assert_eq!(
        b.room_event_id.as_ref().map(|r| r.as_str()),
        Some(re_now.as_str())
    );
    assert_eq!(
        store
            .booking_by_room_event(&re_now.as_str().into())
            .unwrap()
            .as_ref(),
        Some(&b)
    );
    if i + 1 < n {
        assert!(
            store
                .booking_by_room_event(&format!("re{w}-{i}").into())
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(
        store
            .booking_by_topdesk_id(&format!("td{w}-{i}").into())
            .unwrap()
            .as_ref(),
        Some(&b)
    );
    let effects = store.effects_for_booking(&id).unwrap();
    if i + 1 < n {
        assert!(
            effects.is_empty(),
            "round {round}: effect of {id} not completed"
        );
    } else {
        assert_eq!(effects.len(), 1, "round {round}: effect of {id}");
        assert_eq!(effects[0].payload, body(w, i).into_bytes());
    }
    assert_eq!(
        store
            .audit_by_correlation(&format!("c{w}-{i}").into())
            .unwrap()
            .len(),
        1
    );
}
