//! The audit records of client calls, written off the async workers.
//!
//! Every Graph and TOPdesk call is audited from inside the client, i.e. from the effect
//! task that made the call, on a tokio worker thread. Writing the record there would
//! block that worker whenever the store waits (an engine flush, a checkpoint of up to a
//! second), and with two workers two such calls stall the webhook's connections too:
//! under load, acknowledgements waited for checkpoints. So the clients hand records to
//! [`AuditWriter::record`], which queues them for a thread of its own; the thread
//! writes whatever has queued up in one buffered transaction (one engine write for
//! many records, which also keeps the store's checkpoints rare).
//!
//! Durability is what it was: buffered, persisted by the loop's next durable commit or
//! the final flush. [`AuditWriter::close`] writes what is queued and stops the thread;
//! the daemon calls it before its final flush. A record that finds the queue full or
//! closed is written directly.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use orb_store::{AuditEntry, Store};

/// Records queued before [`AuditWriter::record`] writes directly: about a minute of
/// client calls at full load.
const QUEUE: usize = 65_536;
/// Records per transaction at most.
const BATCH: usize = 1_024;

enum Msg {
    Entry(AuditEntry),
    Close,
}

/// Writes client-call audit records (see the module docs).
pub(crate) struct AuditWriter {
    store: Arc<Store>,
    queue: Option<SyncSender<Msg>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// A writer with its own thread, for the daemon.
    pub(crate) fn start(store: Arc<Store>) -> std::io::Result<Arc<Self>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let thread_store = Arc::clone(&store);
        let thread = std::thread::Builder::new()
            .name("orb-audit".to_owned())
            .spawn(move || drain(&thread_store, &rx))?;
        Ok(Arc::new(Self {
            store,
            queue: Some(tx),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// A writer that writes each record at once, on the caller's thread (one-off
    /// commands such as `orb doctor`).
    pub(crate) fn direct(store: Arc<Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            queue: None,
            thread: Mutex::new(None),
        })
    }

    /// Queues a record; never waits for the store unless the queue is full or closed.
    pub(crate) fn record(&self, entry: AuditEntry) {
        let entry = match &self.queue {
            Some(queue) => match queue.try_send(Msg::Entry(entry)) {
                Ok(()) => return,
                Err(
                    TrySendError::Full(Msg::Entry(e)) | TrySendError::Disconnected(Msg::Entry(e)),
                ) => e,
                Err(TrySendError::Full(Msg::Close) | TrySendError::Disconnected(Msg::Close)) => {
                    return;
                }
            },
            None => entry,
        };
        write(&self.store, vec![entry]);
    }

    /// Writes everything queued so far and stops the thread (blocking). Later records
    /// are written directly.
    pub(crate) fn close(&self) {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(thread) = thread else {
            return;
        };
        if let Some(queue) = &self.queue {
            let _ = queue.send(Msg::Close);
        }
        if thread.join().is_err() {
            tracing::error!("the audit writer thread panicked");
        }
    }
}

fn drain(store: &Store, rx: &Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut closing = false;
        match first {
            Msg::Entry(e) => batch.push(e),
            Msg::Close => closing = true,
        }
        while !closing && batch.len() < BATCH {
            match rx.try_recv() {
                Ok(Msg::Entry(e)) => batch.push(e),
                Ok(Msg::Close) => closing = true,
                Err(_) => break,
            }
        }
        write(store, batch);
        if closing {
            return;
        }
    }
}

fn write(store: &Store, batch: Vec<AuditEntry>) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    let mut tx = store.transaction();
    let mut written = Ok(());
    for entry in batch {
        if let Err(e) = tx.audit(entry) {
            written = Err(e);
            break;
        }
    }
    if let Err(e) = written.and_then(|()| tx.commit_buffered()) {
        tracing::warn!(error = %e, records = n, "audit records not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let key = orb_store::MasterKey::from_bytes([7; 32]);
        let store = Store::open(dir.path().join("db"), &key).unwrap();
        (dir, Arc::new(store))
    }

    fn entry(i: u32) -> AuditEntry {
        AuditEntry::new(
            orb_store::Timestamp::from_second(1_800_000_000 + i64::from(i)).unwrap(),
            format!("c-{i}").as_str().into(),
            None,
            "topdesk",
            "GET /reservations",
            "200",
        )
    }

    #[test]
    fn queued_records_are_all_written_by_close_in_order() {
        let (_dir, store) = store();
        let writer = AuditWriter::start(Arc::clone(&store)).unwrap();
        for i in 0..3_000 {
            writer.record(entry(i));
        }
        writer.close();
        assert_eq!(store.audit_len(), 3_000);
        let first = store.audit_by_correlation(&"c-0".into()).unwrap();
        let last = store.audit_by_correlation(&"c-2999".into()).unwrap();
        assert!(
            first[0].id < last[0].id,
            "ids follow the order of the calls"
        );
        // After close, records are still written (directly).
        writer.record(entry(5_000));
        assert_eq!(store.audit_len(), 3_001);
    }

    #[test]
    fn a_direct_writer_writes_at_once() {
        let (_dir, store) = store();
        let writer = AuditWriter::direct(Arc::clone(&store));
        writer.record(entry(1));
        assert_eq!(store.audit_len(), 1);
        writer.close();
    }
}
