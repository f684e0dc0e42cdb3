//! Child-process side of the crash and fault tests: the test binary re-invokes itself
//! with `ORB_STORE_CHILD` set and runs only `child_process_entry`, which then acts as
//! the requested workload and reports progress on stdout. Without the variable it does
//! nothing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use orb_store::{AuditEntry, Booking, MasterKey, NewEffect, Store};

use super::common::{booking, key, ts};

const MODE_VAR: &str = "ORB_STORE_CHILD";
const DIR_VAR: &str = "ORB_STORE_CHILD_DIR";
pub(crate) const KEY_VAR: &str = "ORB_STORE_CHILD_KEY";

/// A command running this test binary as a child in `mode` on `dir`, optionally under a
/// wrapper (e.g. `setpriv …` or `sh -c '…; exec "$@"' sh`).
pub(crate) fn command(mode: &str, dir: &Path, wrapper: &[&str]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args([
        "--exact",
        "orb_store::child::child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(MODE_VAR, mode)
    .env(DIR_VAR, dir)
    .env(KEY_VAR, key().to_base64().as_str())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var(MODE_VAR) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_VAR).unwrap());
    // libtest has printed "test … … " without a newline; start report lines afresh.
    say("");
    match mode.as_str() {
        "crash" => crash_workload(&dir),
        "fill" => fill_workload(&dir),
        "open" => open_workload(&dir),
        other => panic!("unknown child mode {other}"),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

// ----- crash workload -----

pub(crate) const WRITERS: usize = 2;

pub(crate) fn counter_id(w: usize) -> String {
    format!("counter-{w}")
}

pub(crate) fn booking_id(w: usize, i: u32) -> String {
    format!("b{w}-{i}")
}

pub(crate) fn body(w: usize, i: u32) -> String {
    format!("w{w}-{i}")
}

/// Two writers, each running transaction after transaction forever (until killed).
/// Transaction `i` of writer `w`, after durably appending the inbox body `w{w}-{i}`:
/// saves booking `b{w}-{i}`, re-indexes booking `i-1` (room event id `re…` → `re2…`),
/// completes the effect of `i-1`, enqueues an effect for `i`, appends an audit record,
/// bumps `counter-{w}` to `i+1` and marks the inbox entry done. `ack w i` is printed
/// only after the durable commit returned.
fn crash_workload(dir: &Path) {
    let key = MasterKey::load(&format!("env:{KEY_VAR}")).unwrap();
    let store = Store::open(dir, &key).unwrap();
    say("ready");
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let store = &store;
            s.spawn(move || {
                let mut i = store
                    .booking(&counter_id(w).into())
                    .unwrap()
                    .map_or(0, |b| b.complexity_index);
                loop {
                    crash_step(store, w, i);
                    say(&format!("ack {w} {i}"));
                    i += 1;
                }
            });
        }
    });
}

fn crash_step(store: &Store, w: usize, i: u32) {
    let now = ts(i64::from(i));
    // After a crash between append and commit this is a duplicate: replay the entry.
    let seq = store.append_inbox(body(w, i).as_bytes(), now).unwrap().seq;
    let mut tx = store.transaction();
    let mut b = booking(&booking_id(w, i));
    b.room = format!("room-{w}@example.com").into();
    b.room_event_id = Some(format!("re{w}-{i}").into());
    b.topdesk_reservation_id = Some(format!("td{w}-{i}").into());
    b.correlation_id = format!("c{w}-{i}").into();
    b.complexity_index = i;
    tx.save_booking(b);
    if let Some(prev_i) = i.checked_sub(1) {
        let prev_id = booking_id(w, prev_i).into();
        let mut prev = store.booking(&prev_id).unwrap().unwrap();
        prev.room_event_id = Some(format!("re2{w}-{prev_i}").into());
        tx.save_booking(prev);
        for e in store.effects_for_booking(&prev_id).unwrap() {
            tx.complete_effect(e.id);
        }
    }
    let mut counter = booking(&counter_id(w));
    counter.complexity_index = i + 1;
    tx.save_booking(counter);
    tx.enqueue(
        NewEffect::new(
            Some(booking_id(w, i).into()),
            format!("c{w}-{i}").into(),
            "create_reservation",
            body(w, i).into_bytes(),
            now,
        ),
        now,
    )
    .unwrap();
    tx.audit(AuditEntry::new(
        now,
        format!("c{w}-{i}").into(),
        Some(booking_id(w, i).into()),
        "engine",
        "decide",
        "planned",
    ))
    .unwrap();
    tx.mark_inbox_done(seq, now);
    tx.commit().unwrap();
}

// ----- disk-full workload -----

/// A booking with ~4 KiB of attendees, to fill the disk quickly.
pub(crate) fn bulky(i: u32) -> Booking {
    let mut b = booking(&format!("fill-{i}"));
    b.attendees = (0..100)
        .map(|a| format!("attendee-{a}-of-{i}@example.com"))
        .collect();
    b.topdesk_reservation_id = Some(format!("td-fill-{i}").into());
    b
}

/// Writes bulky bookings and inbox entries durably until a write fails (the file size
/// limit set by the parent), then reports the error and tries once more.
fn fill_workload(dir: &Path) {
    let store = match Store::open(dir, &key()) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("error {e} | {e:?}"));
            return;
        }
    };
    say("ready");
    for i in 0.. {
        let outcome = store.save_booking(&bulky(i)).and_then(|()| {
            store
                .append_inbox(format!("fill-{i}").as_bytes(), ts(0))
                .map(drop)
        });
        match outcome {
            Ok(()) => say(&format!("ack {i}")),
            Err(e) => {
                say(&format!("error {e} | {e:?}"));
                let again = store.save_booking(&bulky(i + 1));
                say(&format!("again {}", again.is_ok()));
                break;
            }
        }
    }
}

// ----- open workload -----

fn open_workload(dir: &Path) {
    match Store::open(dir, &key()) {
        Ok(_) => say("opened"),
        Err(e) => say(&format!("error {e} | {e:?}")),
    }
}
