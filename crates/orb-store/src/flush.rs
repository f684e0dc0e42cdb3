//! Group commit: concurrent durable committers share one `fsync`.
//!
//! Every committer first applies its write to the engine (in memory), then takes a
//! ticket `n` (the count of applied writes, taken under the lock *after* the write).
//! It returns once `flushed >= n`. If no flush is running, the committer becomes the
//! leader: it records `target = applied`, flushes without holding the lock, then
//! publishes `flushed = target` and wakes everyone. Writers that arrived during the
//! flush wait for it to finish and then elect the next leader, which covers all of them
//! with a single flush. Since a ticket is taken after its write was applied, any flush
//! whose target covers the ticket started after that write and therefore persists it.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

#[derive(Default)]
struct State {
    applied: u64,
    flushed: u64,
    flushing: bool,
    /// `(target, message)` of the last failed flush: tickets up to `target` that were not
    /// already flushed are failed.
    failed: Option<(u64, String)>,
    /// Number of flushes performed (for tests and metrics).
    flush_count: u64,
}

pub(crate) struct GroupCommit {
    state: Mutex<State>,
    cv: Condvar,
}

impl GroupCommit {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave `State` inconsistent (each
        // update is a plain field store), so a poisoned lock is safe to reuse.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a write that has been applied and returns its ticket.
    pub(crate) fn applied(&self) -> u64 {
        let mut s = self.lock();
        s.applied += 1;
        s.applied
    }

    /// Blocks until the write with `ticket` is on disk, flushing with `flush` when this
    /// caller is elected leader.
    pub(crate) fn wait_durable(
        &self,
        ticket: u64,
        flush: impl Fn() -> std::result::Result<(), String>,
    ) -> Result<()> {
        let mut s = self.lock();
        loop {
            if s.flushed >= ticket {
                return Ok(());
            }
            if let Some((target, msg)) = &s.failed
                && *target >= ticket
            {
                return Err(Error::Flush(msg.clone()));
            }
            if !s.flushing {
                s.flushing = true;
                let target = s.applied;
                drop(s);
                let outcome = flush();
                s = self.lock();
                s.flushing = false;
                s.flush_count += 1;
                match outcome {
                    Ok(()) => s.flushed = s.flushed.max(target),
                    Err(msg) => s.failed = Some((target, msg)),
                }
                self.cv.notify_all();
                continue;
            }
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub(crate) fn flush_count(&self) -> u64 {
        self.lock().flush_count
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn single_writer_flushes_once_per_commit() {
        let g = GroupCommit::new();
        for _ in 0..3 {
            let t = g.applied();
            g.wait_durable(t, || Ok(())).unwrap();
        }
        assert_eq!(g.flush_count(), 3);
    }

    #[test]
    fn already_flushed_ticket_returns_without_flushing() {
        let g = GroupCommit::new();
        let t1 = g.applied();
        let t2 = g.applied();
        g.wait_durable(t2, || Ok(())).unwrap();
        g.wait_durable(t1, || panic!("must not flush again"))
            .unwrap();
        assert_eq!(g.flush_count(), 1);
    }

    #[test]
    fn failed_flush_fails_covered_tickets_then_recovers() {
        let g = GroupCommit::new();
        let t1 = g.applied();
        let e = g.wait_durable(t1, || Err("disk full".into())).unwrap_err();
        assert!(matches!(e, Error::Flush(m) if m == "disk full"));
        let t2 = g.applied();
        g.wait_durable(t2, || Ok(())).unwrap();
    }

    #[test]
    fn concurrent_writers_share_flushes() {
        let g = Arc::new(GroupCommit::new());
        let flushes = Arc::new(AtomicU64::new(0));
        // The first flush blocks until all writers have applied their writes, so the
        // second flush must cover every remaining writer at once.
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (g, flushes, barrier) = (g.clone(), flushes.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let t = g.applied();
                    barrier.wait();
                    g.wait_durable(t, || {
                        flushes.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(flushes.load(Ordering::SeqCst), 1, "one flush covers all 8");
    }
}
