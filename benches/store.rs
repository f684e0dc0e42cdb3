//! orb-store: durable inbox append latency (1 and 8 writers, group commit), bookings/s,
//! on-disk size after 100k bookings, reopen time.
//!
//! Besides the criterion groups, a custom measurement prints percentiles and sizes that
//! criterion does not report: `p99 durable inbox append` (target < 5 ms), `on-disk size
//! after 100k bookings` (target < 100 MB) and `reopen` (target < 1 s). Run with
//! `cargo bench -p orb-benches --bench store`.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use orb_store::{Booking, MasterKey, Processor, Store, Timestamp};

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// Set when the bench binary re-invokes itself to time a cold-process reopen.
const REOPEN_VAR: &str = "ORB_STORE_BENCH_REOPEN_DIR";

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "orb-store-bench-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key() -> MasterKey {
    MasterKey::from_bytes([9; 32])
}

fn ts(sec: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + sec).unwrap()
}

/// A realistic booking: every correlation id set, five attendees, a subject.
fn booking(i: u64) -> Booking {
    let mut b = Booking::new(
        format!("orb-{i:016x}").into(),
        format!("room-{}@example.com", i % 50).into(),
        ts(i as i64 * 60),
        ts(i as i64 * 60 + 3600),
        ts(0),
        Processor::Exchange,
        format!("corr-{i}").into(),
    );
    b.organizer = Some(format!("organizer-{}@example.com", i % 997));
    b.original_organizer = b.organizer.clone();
    b.location = Some("Room 2.14; Beamer".into());
    b.attendees = (0..5)
        .map(|a| format!("attendee-{a}@example.com"))
        .collect();
    b.subject = Some(format!("Project meeting {i}"));
    b.organizer_event_id = Some(format!("AAMkAGI2TG93AAA-org-{i:012}").into());
    b.room_event_id = Some(format!("AAMkAGI2TG93AAA-room-{i:012}").into());
    b.ical_uid = Some(format!("040000008200E00074C5B7101A82E008-{i:016}").into());
    b.topdesk_reservation_id = Some(format!("c0ffee00-0000-4000-8000-{i:012}").into());
    b.topdesk_reservation_number = Some(format!("R{i:08}").into());
    b.exchange_fingerprint = Some("CQAAABYAAAAG+Bz0d3+ZQ6rB3xYy0FRoAABUvL0m".into());
    b.topdesk_fingerprint = Some("2026-11-27T10:00:00Z".into());
    b
}

fn body(i: u64) -> Vec<u8> {
    let mut v = format!("{{\"value\":[{{\"subscriptionId\":\"{i}\"").into_bytes();
    v.resize(2048, b'x');
    v
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    total
}

fn report_latencies(label: &str, mut lat: Vec<Duration>, flushes: u64) {
    lat.sort();
    println!(
        "{label}: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms flushes={flushes}",
        lat.len(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
}

/// Overrides `OpenOptions::checkpoint_after_writes` in the checkpoint-policy measurement.
const CHECKPOINT_AFTER_VAR: &str = "ORB_STORE_BENCH_CHECKPOINT_AFTER";
/// `policy`: run only the checkpoint-policy measurement (then exit); `inbox`: only the
/// durable inbox appends; `criterion`: only the criterion benchmarks; `size`: only the
/// 100k-booking size and reopen measurement.
const ONLY_VAR: &str = "ORB_STORE_BENCH_ONLY";

/// The custom measurements against the targets.
fn report() {
    println!("\n== orb-store custom measurements ==");
    let only_policy = std::env::var(ONLY_VAR).is_ok_and(|v| v == "policy");
    if !only_policy {
        // Single writer.
        {
            let dir = TempDir::new();
            let store = Store::open(&dir.0, &key()).unwrap();
            let mut lat = Vec::with_capacity(2000);
            for i in 0..2000 {
                let t = Instant::now();
                store.append_inbox(&body(i), ts(0)).unwrap();
                lat.push(t.elapsed());
            }
            report_latencies(
                "durable inbox append, 1 writer",
                lat,
                store.inbox_flush_count(),
            );
        }
        // Eight concurrent writers.
        {
            let dir = TempDir::new();
            let store = Store::open(&dir.0, &key()).unwrap();
            let started = Instant::now();
            let lat: Vec<Duration> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8u64)
                    .map(|w| {
                        let store = &store;
                        s.spawn(move || {
                            let mut lat = Vec::with_capacity(500);
                            for i in 0..500 {
                                let t = Instant::now();
                                store.append_inbox(&body(w * 1_000_000 + i), ts(0)).unwrap();
                                lat.push(t.elapsed());
                            }
                            lat
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect()
            });
            let n = lat.len();
            report_latencies(
                "durable inbox append, 8 writers",
                lat,
                store.inbox_flush_count(),
            );
            println!(
                "  8 writers: {:.0} durable appends/s, {:.1} commits per flush",
                n as f64 / started.elapsed().as_secs_f64(),
                n as f64 / store.inbox_flush_count() as f64
            );
        }
        if std::env::var(ONLY_VAR).is_ok_and(|v| v == "inbox") {
            return;
        }
        // Eight concurrent durable transaction writers (bookings): group commit must make
        // flushes fewer than commits.
        {
            let dir = TempDir::new();
            let store = Store::open(&dir.0, &key()).unwrap();
            let started = Instant::now();
            let lat: Vec<Duration> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8u64)
                    .map(|w| {
                        let store = &store;
                        s.spawn(move || {
                            let mut lat = Vec::with_capacity(250);
                            for i in 0..250 {
                                let t = Instant::now();
                                let mut tx = store.transaction();
                                tx.save_booking(booking(w * 1_000_000 + i));
                                tx.commit().unwrap();
                                lat.push(t.elapsed());
                            }
                            lat
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect()
            });
            let n = lat.len();
            let flushes = store.flush_count();
            report_latencies("durable booking transaction, 8 writers", lat, flushes);
            println!(
                "  8 transaction writers: {:.0} durable commits/s, {n} commits, {flushes} flushes, {:.1} commits per flush",
                n as f64 / started.elapsed().as_secs_f64(),
                n as f64 / flushes as f64
            );
        }
        // Durable single-booking commits.
        {
            let dir = TempDir::new();
            let store = Store::open(&dir.0, &key()).unwrap();
            let t = Instant::now();
            for i in 0..1000 {
                store.save_booking(&booking(i)).unwrap();
            }
            println!(
                "durable save_booking (1 writer, fsync each): {:.0} bookings/s",
                1000.0 / t.elapsed().as_secs_f64()
            );
        }
        // 100k bookings: throughput, size, reopen.
        {
            let dir = TempDir::new();
            let store = Store::open(&dir.0, &key()).unwrap();
            let t = Instant::now();
            for i in 0..100_000 {
                let mut tx = store.transaction();
                tx.save_booking(booking(i));
                tx.commit_buffered().unwrap();
            }
            store.flush().unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "100k bookings, one transaction each, one flush at the end: {:.1} s, {:.0} bookings/s",
                secs,
                100_000.0 / secs
            );
            let engine_size = store.size_on_disk().unwrap();
            drop(store);
            println!(
                "on-disk size after 100k bookings: {:.1} MB in files ({:.1} MB reported by the engine)",
                dir_size(&dir.0) as f64 / 1e6,
                engine_size as f64 / 1e6
            );
            // A restart is a new process: time the open in a fresh child process, so the
            // measurement excludes this process waiting for the engine's threads to let go.
            // sled replays the log written since the previous open (it snapshots only on
            // recovery), so the first open after a write session is the slow case; opens
            // after that read the snapshot. Measure both, each in a new process.
            for label in ["first open after the write session", "next open"] {
                let out = std::process::Command::new(std::env::current_exe().unwrap())
                    .env(REOPEN_VAR, &dir.0)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
                print!("{label}: {}", String::from_utf8_lossy(&out.stdout));
            }
        }
        if std::env::var(ONLY_VAR).is_ok_and(|v| v == "size") {
            return;
        }
    }
    // The daemon's policy: checkpoint whenever the store says one is due
    // (`OpenOptions::checkpoint_after_writes`, default), so the log a start replays stays
    // bounded. Measures each checkpoint's pause and the first open after the session.
    {
        let dir = TempDir::new();
        let mut opts = orb_store::OpenOptions::default();
        if let Some(n) = std::env::var(CHECKPOINT_AFTER_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
        {
            opts.checkpoint_after_writes = n;
        }
        let store = Store::open_with(&dir.0, &key(), opts.clone()).unwrap();
        let clone = store.clone();
        let mut pauses = Vec::new();
        let t = Instant::now();
        for i in 0..100_000 {
            let mut tx = store.transaction();
            tx.save_booking(booking(i));
            tx.commit_buffered().unwrap();
            if clone.checkpoint_due() {
                let c = Instant::now();
                clone.checkpoint().unwrap();
                pauses.push(c.elapsed());
            }
        }
        // The worst case for the next start: killed just before the next checkpoint
        // was due, so it replays one write short of a full interval.
        let mut i = 100_000;
        while store.writes_since_checkpoint() + 1 < opts.checkpoint_after_writes {
            let mut tx = store.transaction();
            tx.save_booking(booking(i));
            tx.commit_buffered().unwrap();
            i += 1;
        }
        store.flush().unwrap();
        let secs = t.elapsed().as_secs_f64();
        let left = store.writes_since_checkpoint();
        drop((store, clone));
        let n = pauses.len();
        let total: Duration = pauses.iter().sum();
        pauses.sort();
        println!(
            "100k bookings with the daemon's checkpoint policy (a checkpoint every {} writes): \
             {secs:.1} s, {n} checkpoints, \
             pause p50 {:.0} ms, max {:.0} ms, {:.1} s in total; then {left} writes after the last",
            opts.checkpoint_after_writes,
            percentile(&pauses, 0.5).as_secs_f64() * 1e3,
            pauses.last().unwrap().as_secs_f64() * 1e3,
            total.as_secs_f64(),
        );
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env(REOPEN_VAR, &dir.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        print!(
            "first open after the session (daemon's policy, worst case: {left} writes to replay): {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    println!("== end ==\n");
}

fn bench(c: &mut Criterion) {
    // `criterion`: only the criterion benchmarks below, without the custom report.
    if !std::env::var(ONLY_VAR).is_ok_and(|v| v == "criterion") {
        report();
    }
    if std::env::var(ONLY_VAR).is_ok_and(|v| v == "policy" || v == "inbox" || v == "size") {
        return;
    }

    let dir = TempDir::new();
    let store = Store::open(&dir.0, &key()).unwrap();
    let mut g = c.benchmark_group("store");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("inbox_append_durable", |b| {
        b.iter(|| {
            i += 1;
            black_box(store.append_inbox(&body(10_000_000 + i), ts(0)).unwrap())
        })
    });
    g.bench_function("save_booking_durable", |b| {
        b.iter(|| {
            i += 1;
            store.save_booking(black_box(&booking(i))).unwrap()
        })
    });
    g.bench_function("save_booking_buffered", |b| {
        b.iter(|| {
            i += 1;
            let mut tx = store.transaction();
            tx.save_booking(booking(20_000_000 + i));
            tx.commit_buffered().unwrap()
        })
    });
    g.bench_function("booking_by_topdesk_id", |b| {
        // A hit: index lookup, record read and decode.
        let target = booking(30_000_000);
        store.save_booking(&target).unwrap();
        let id = target.topdesk_reservation_id.unwrap();
        b.iter(|| {
            let found = store.booking_by_topdesk_id(&id).unwrap();
            assert!(found.is_some());
            black_box(found)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
/// Cold-process reopen: open, check the count, report.
fn reopen_child(dir: &Path) {
    // The parent's engine threads may still hold the lock for a moment after its last
    // handle was dropped; time only the attempt that gets the lock.
    let mut opts = orb_store::OpenOptions::default();
    opts.lock_timeout = Duration::ZERO;
    let (store, t, opened) = loop {
        let t = Instant::now();
        match Store::open_with(dir, &key(), opts.clone()) {
            Ok(store) => break (store, t, t.elapsed()),
            Err(orb_store::Error::Locked { .. }) => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    assert!(store.booking_count() >= 100_000);
    println!(
        "reopen with 100k+ bookings (new process) {:.0} ms, {:.0} ms incl. counting them",
        opened.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
}

// `criterion_main!` with one addition: the cold-reopen child mode.
fn main() {
    if let Some(dir) = std::env::var_os(REOPEN_VAR) {
        reopen_child(Path::new(&dir));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
