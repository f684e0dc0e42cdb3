//! The inbox's own append-only log: where a notification body is made durable before
//! the webhook answers 202.
//!
//! Why not a tree of the engine: the webhook's acknowledgement must not wait for the
//! engine. A checkpoint ([`crate::Store::checkpoint`]) closes and reopens the engine for
//! up to a second, and every engine flush also writes whatever bookings, outbox entries
//! and audit records are dirty. With its own files, an append is one `write` plus an
//! `fdatasync` of a small file that concurrent appends share (group commit,
//! [`GroupCommit`]), whatever the engine is doing.
//!
//! Layout: directory `inbox/` inside the store directory holds segment files named
//! after the first sequence number they may hold (`00000000000000000042.log`). Records
//! are appended to the newest segment (the *active* one) until it exceeds its size, then
//! a new segment starts. A record is
//!
//! ```text
//! len u32 LE | crc32 u32 LE | seq u64 BE | received_at i128 BE (ns) | sha256 [32] | sealed body
//! ```
//!
//! where `len` counts the bytes after the crc and the crc covers those bytes. The body is
//! sealed with the store's key (slot `inbox:{seq}`), as it was in the engine's tree.
//!
//! Which entries are done is *not* in the log: marking an entry done writes its done
//! record (hash and times, no body) into the engine's `inbox` tree inside the
//! transaction that saves the outcome, exactly as before. An entry of the log is
//! therefore pending iff the tree has no record for its sequence number. A segment is
//! deleted once every entry in it is done *durably* (after the engine flush that
//! carried the done records), and a done record is pruned from the tree only after the
//! segment holding its body is gone (so an old entry can never come back as pending).
//!
//! Torn writes: a record that fails its length or crc check ends its segment; on open
//! the segment is cut there. An append that fails midway cuts the file back, so a bad
//! record can only ever be the last one written before a crash.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::flush::GroupCommit;
use crate::ids::InboxSeq;

/// Directory of the segments, inside the store directory.
pub(crate) const DIR: &str = "inbox";
const SUFFIX: &str = ".log";
/// Bytes of a record before the sealed body: len, crc, seq, received_at, hash.
const HEADER: usize = 4 + 4 + 8 + 16 + 32;
/// Bytes covered by `len`, before the body.
const FIXED: usize = 8 + 16 + 32;
/// A record longer than this is not something this code wrote (the webhook refuses
/// bodies over a few MiB); reading stops there as at any other bad record.
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// Where a pending entry's body is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    /// First sequence number of the segment (its name).
    pub(crate) segment: u64,
    /// Offset of the record in the segment.
    offset: u64,
    /// Length of the sealed body.
    body_len: usize,
    pub(crate) hash: [u8; 32],
    pub(crate) received_at: Timestamp,
}

/// A pending entry as read back: its sealed body and where it came from.
pub(crate) struct SealedEntry {
    pub(crate) seq: InboxSeq,
    pub(crate) received_at: Timestamp,
    pub(crate) hash: [u8; 32],
    pub(crate) sealed: Vec<u8>,
}

struct Segment {
    file: Arc<File>,
    /// Entries in this segment whose done record is not yet known to be durable.
    live: usize,
    /// Lowest sequence number of a record in it (`u64::MAX` while empty). Usually the
    /// segment's name; lower for records imported by the migration.
    min_seq: u64,
}

struct State {
    /// By first sequence number; the last one is the active segment.
    segments: BTreeMap<u64, Segment>,
    /// Write position in the active segment.
    active_len: u64,
    next_seq: u64,
    /// Entries not yet marked done (as far as this process knows).
    pending: BTreeMap<u64, Pending>,
    /// Marked done in the engine but not yet known to be flushed: `(seq, segment)`.
    done_unflushed: Vec<(u64, u64)>,
    /// Files written since the last sync.
    dirty: Vec<Arc<File>>,
    /// Set when a failed append could not be cut back: nothing more may be appended
    /// after the torn bytes.
    broken: Option<String>,
    /// The next segment, created and filled with zeros ahead of time by
    /// [`InboxLog::maintain`]: `(name, file)`. Its name is a sequence number reserved
    /// for it (never given to an entry), so no other segment can have that name.
    spare: Option<(u64, Arc<File>)>,
    /// A spare is being prepared (outside the lock).
    preparing: bool,
    /// Segments taken out of `segments` whose files are being deleted (outside the
    /// lock), by name → lowest sequence number in them: they still count for
    /// [`InboxLog::retire_idle`]'s floor until the deletion is durable.
    doomed: BTreeMap<u64, u64>,
    /// Spare files that can no longer be used (a segment with a higher name was
    /// started meanwhile); deleted by [`InboxLog::maintain`].
    stale: Vec<u64>,
    /// Deleted segments whose directory sync failed, by name → lowest sequence number:
    /// after a power cut they could be back, so they count for the prune floor until a
    /// directory sync succeeds.
    unsynced: BTreeMap<u64, u64>,
}

pub(crate) struct InboxLog {
    dir: PathBuf,
    segment_bytes: u64,
    state: Mutex<State>,
    group: GroupCommit,
    /// Tests: the next sync fails as a full disk would make it.
    #[cfg(test)]
    fail_next_sync: std::sync::atomic::AtomicBool,
}

impl InboxLog {
    /// Opens the log in `store_dir/inbox`, creating it if needed. `is_done(seq)` says
    /// whether the engine holds a done record for `seq`; `min_next_seq` is one past the
    /// highest sequence number the engine knows of.
    pub(crate) fn open(
        store_dir: &Path,
        segment_bytes: u64,
        min_next_seq: u64,
        mut is_done: impl FnMut(u64) -> Result<bool>,
    ) -> Result<InboxLog> {
        let dir = store_dir.join(DIR);
        fs::create_dir_all(&dir).map_err(|e| open_error(&dir, e))?;
        let mut names: Vec<u64> = Vec::new();
        for item in fs::read_dir(&dir).map_err(|e| open_error(&dir, e))? {
            let item = item.map_err(|e| open_error(&dir, e))?;
            let name = item.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            // Only names this code writes: another spelling of a number ("1.log")
            // would open the same segment twice.
            if segment_path(&dir, first).file_name() != Some(name.as_os_str()) {
                continue;
            }
            names.push(first);
        }
        names.sort_unstable();

        let mut state = State {
            segments: BTreeMap::new(),
            active_len: 0,
            next_seq: min_next_seq.max(1),
            pending: BTreeMap::new(),
            done_unflushed: Vec::new(),
            dirty: Vec::new(),
            broken: None,
            spare: None,
            preparing: false,
            doomed: BTreeMap::new(),
            stale: Vec::new(),
            unsynced: BTreeMap::new(),
        };
        for first in &names {
            let path = segment_path(&dir, *first);
            let mut file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| open_error(&path, e))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|e| open_error(&path, e))?;
            let mut offset = 0usize;
            let mut live = 0;
            let mut min_seq = u64::MAX;
            while let Some(rec) = parse_record(&bytes[offset..]) {
                let seq = rec.seq;
                min_seq = min_seq.min(seq);
                state.next_seq = state.next_seq.max(seq.saturating_add(1));
                if let std::collections::btree_map::Entry::Vacant(slot) = state.pending.entry(seq)
                    && !is_done(seq)?
                {
                    slot.insert(Pending {
                        segment: *first,
                        offset: offset as u64,
                        body_len: rec.body.len(),
                        hash: rec.hash,
                        received_at: rec.received_at,
                    });
                    live += 1;
                }
                offset += rec.total;
            }
            if intact_record_follows(&bytes[offset..]) {
                // Not a torn last write: a record in the middle is damaged and intact
                // (acknowledged) ones follow. Cutting here would drop them silently.
                return Err(Error::Corrupt(format!(
                    "inbox log segment {} is damaged at byte {offset} with intact records after it; move the file aside to start without them",
                    path.display()
                )));
            }
            if bytes[offset..].iter().any(|b| *b != 0) {
                // The torn tail of a write that never completed: never acknowledged.
                // (A tail of zeros is the unused part of a segment made ahead of time.)
                file.set_len(offset as u64)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| open_error(&path, e))?;
            }
            state.next_seq = state.next_seq.max(*first);
            state.active_len = offset as u64;
            state.segments.insert(
                *first,
                Segment {
                    file: Arc::new(file),
                    live,
                    min_seq,
                },
            );
        }
        let log = InboxLog {
            dir,
            segment_bytes: segment_bytes.max(1),
            state: Mutex::new(state),
            group: GroupCommit::new(),
            #[cfg(test)]
            fail_next_sync: std::sync::atomic::AtomicBool::new(false),
        };
        {
            let mut s = log.lock();
            if s.segments.is_empty() {
                let first = s.next_seq;
                log.start_segment(&mut s, first)?;
            }
            // Segments whose every entry is done: nothing to keep them for.
            let active = log.active(&s);
            let dead: Vec<u64> = s
                .segments
                .iter()
                .filter(|(first, seg)| **first != active && seg.live == 0)
                .map(|(first, _)| *first)
                .collect();
            log.remove_segments(&mut s, &dead)?;
        }
        Ok(log)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of `State` is completed before anything that can fail or panic
        // is called, so a poisoned lock holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn active(&self, s: &State) -> u64 {
        s.segments.keys().next_back().copied().unwrap_or(s.next_seq)
    }

    /// Creates segment `first`, makes its directory entry durable and makes it active.
    fn start_segment(&self, s: &mut State, first: u64) -> Result<()> {
        let path = segment_path(&self.dir, first);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::Io)?;
        sync_dir(&self.dir)?;
        s.segments.insert(
            first,
            Segment {
                file: Arc::new(file),
                live: 0,
                min_seq: u64::MAX,
            },
        );
        s.active_len = 0;
        Ok(())
    }

    /// Makes the spare the active segment if there is one (no file creation, no
    /// directory sync, and its blocks exist, so the `fdatasync`s of the appends to it
    /// write no metadata); otherwise starts segment `first`.
    fn rotate(&self, s: &mut State, first: u64) -> Result<()> {
        let active = self.active(s);
        match s.spare.take() {
            Some((name, file)) if name > active => {
                s.segments.insert(
                    name,
                    Segment {
                        file,
                        live: 0,
                        min_seq: u64::MAX,
                    },
                );
                s.active_len = 0;
                Ok(())
            }
            spare => {
                if let Some((name, _)) = spare {
                    s.stale.push(name);
                }
                // Never the active segment's own name: it equals `first` while it holds
                // only records imported by the migration (numbered below its name).
                self.start_segment(s, first.max(active.saturating_add(1)))
            }
        }
    }

    /// Deletes segments (none of them active) and makes the deletion durable. A segment
    /// whose file cannot be deleted stays known (so the done records of its entries are
    /// not pruned) and is tried again next time.
    fn remove_segments(&self, s: &mut State, firsts: &[u64]) -> Result<()> {
        if firsts.is_empty() {
            return Ok(());
        }
        let mut failed = None;
        let mut removed = Vec::new();
        for first in firsts {
            match fs::remove_file(segment_path(&self.dir, *first)) {
                Ok(()) => removed.push(*first),
                Err(e) if e.kind() == io::ErrorKind::NotFound => removed.push(*first),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        for first in &removed {
            if let Some(seg) = s.segments.remove(first) {
                s.unsynced.insert(*first, seg.min_seq.min(*first));
            }
        }
        self.sync_deletions(s)?;
        failed.map_or(Ok(()), |e| Err(Error::Io(e)))
    }

    /// Makes the deletions recorded in `unsynced` durable.
    fn sync_deletions(&self, s: &mut State) -> Result<()> {
        if s.unsynced.is_empty() {
            return Ok(());
        }
        sync_dir(&self.dir)?;
        s.unsynced.clear();
        Ok(())
    }

    /// Writes a record for a new entry (sealed by `seal(seq)`) and returns its sequence
    /// number and the ticket to wait for with [`InboxLog::wait_durable`]. The caller
    /// holds the duplicate map's lock, so no two appends of one body race.
    pub(crate) fn append(
        &self,
        hash: [u8; 32],
        received_at: Timestamp,
        seal: impl FnOnce(InboxSeq) -> Result<Vec<u8>>,
    ) -> Result<(InboxSeq, u64)> {
        let mut s = self.lock();
        if let Some(why) = &s.broken {
            return Err(Error::Io(unusable(why)));
        }
        let seq = s.next_seq;
        let Some(after) = seq.checked_add(1) else {
            return Err(Error::Corrupt(
                "inbox log sequence numbers are exhausted".to_owned(),
            ));
        };
        let sealed = seal(InboxSeq(seq))?;
        if FIXED + sealed.len() > MAX_RECORD {
            // The reader would take it for damage and cut the segment there.
            return Err(Error::Io(io::Error::other(format!(
                "notification body of {} bytes is too large for the inbox log",
                sealed.len()
            ))));
        }
        let record = encode_record(seq, received_at, &hash, &sealed);
        if s.active_len > 0 && s.active_len + record.len() as u64 > self.segment_bytes {
            self.rotate(&mut s, seq)?;
        }
        self.write_record(&mut s, seq, &record, sealed.len(), hash, received_at)?;
        s.next_seq = after;
        drop(s);
        Ok((InboxSeq(seq), self.group.applied()))
    }

    /// Writes `record` (entry `seq`) at the end of the active segment and records it as
    /// pending there. A failed write is cut back and leaves the state as it was; if the
    /// cut fails too, the log refuses further appends.
    fn write_record(
        &self,
        s: &mut State,
        seq: u64,
        record: &[u8],
        body_len: usize,
        hash: [u8; 32],
        received_at: Timestamp,
    ) -> Result<()> {
        let active = self.active(s);
        let Some(file) = s.segments.get(&active).map(|seg| Arc::clone(&seg.file)) else {
            return Err(Error::Corrupt("inbox log has no active segment".to_owned()));
        };
        let offset = s.active_len;
        if let Err(e) = write_all_at(&file, record, offset) {
            if let Err(cut) = file.set_len(offset) {
                s.broken = Some(cut.to_string());
            }
            return Err(Error::Io(e));
        }
        s.active_len = offset + record.len() as u64;
        s.pending.insert(
            seq,
            Pending {
                segment: active,
                offset,
                body_len,
                hash,
                received_at,
            },
        );
        if let Some(seg) = s.segments.get_mut(&active) {
            seg.live += 1;
            seg.min_seq = seg.min_seq.min(seq);
        }
        if !s.dirty.iter().any(|f| Arc::ptr_eq(f, &file)) {
            s.dirty.push(file);
        }
        Ok(())
    }

    /// Returns once the write with `ticket` is on disk; concurrent callers share one
    /// `fdatasync` per file.
    pub(crate) fn wait_durable(&self, ticket: u64) -> Result<()> {
        self.group.wait_durable(ticket, || {
            let files = {
                let mut s = self.lock();
                if let Some(why) = &s.broken {
                    return Err(unusable(why).to_string());
                }
                std::mem::take(&mut s.dirty)
            };
            for f in &files {
                if let Err(e) = self.sync_file(f) {
                    // After a failed fsync the kernel may have dropped the written pages
                    // and marked them clean, so a second fsync could "succeed" with the
                    // data lost (the PostgreSQL "fsyncgate" lesson). Nothing more is
                    // acknowledged until a restart reads back what is really on disk.
                    self.lock().broken = Some(format!("sync failed: {e}"));
                    return Err(e.to_string());
                }
            }
            Ok(())
        })
    }

    fn sync_file(&self, f: &File) -> io::Result<()> {
        #[cfg(test)]
        if self
            .fail_next_sync
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(io::Error::other("injected sync failure"));
        }
        f.sync_data()
    }

    /// Why appends are refused, if they are (a failed write that could not be cut
    /// back, or a failed sync): until a restart.
    pub(crate) fn failure(&self) -> Option<String> {
        self.lock().broken.clone()
    }

    /// A ticket that is durable once everything appended before this call is: for a
    /// duplicate, whose first copy may still be waiting for its sync.
    pub(crate) fn barrier(&self) -> u64 {
        self.group.applied()
    }

    /// Number of fsync rounds so far.
    pub(crate) fn flush_count(&self) -> u64 {
        self.group.flush_count()
    }

    /// The pending entry `seq`, if it is pending.
    pub(crate) fn pending(&self, seq: InboxSeq) -> Option<Pending> {
        self.lock().pending.get(&seq.0).copied()
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Sequence numbers and hashes of the pending entries.
    pub(crate) fn pending_hashes(&self) -> Vec<(InboxSeq, [u8; 32])> {
        self.lock()
            .pending
            .iter()
            .map(|(seq, p)| (InboxSeq(*seq), p.hash))
            .collect()
    }

    /// Reads back every pending entry, in sequence order.
    pub(crate) fn read_pending(&self) -> Result<Vec<SealedEntry>> {
        type Files = BTreeMap<u64, Arc<File>>;
        let (list, files): (Vec<(u64, Pending)>, Files) = {
            let s = self.lock();
            let list: Vec<(u64, Pending)> = s.pending.iter().map(|(q, p)| (*q, *p)).collect();
            let files = s
                .segments
                .iter()
                .map(|(first, seg)| (*first, Arc::clone(&seg.file)))
                .collect();
            (list, files)
        };
        let mut out = Vec::with_capacity(list.len());
        for (seq, p) in list {
            let Some(file) = files.get(&p.segment) else {
                continue;
            };
            out.push(read_entry(file, seq, &p)?);
        }
        Ok(out)
    }

    /// Reads back one pending entry.
    pub(crate) fn read(&self, seq: InboxSeq) -> Result<Option<SealedEntry>> {
        let found = {
            let s = self.lock();
            s.pending.get(&seq.0).and_then(|p| {
                s.segments
                    .get(&p.segment)
                    .map(|seg| (*p, Arc::clone(&seg.file)))
            })
        };
        found
            .map(|(p, file)| read_entry(&file, seq.0, &p))
            .transpose()
    }

    /// The engine has applied done records for `seqs` (not necessarily flushed): they are
    /// no longer pending. Their segments stay until [`InboxLog::take_unflushed`] and
    /// [`InboxLog::flushed`] say the records are on disk.
    pub(crate) fn applied_done(&self, seqs: &[InboxSeq]) {
        let mut s = self.lock();
        for seq in seqs {
            if let Some(p) = s.pending.remove(&seq.0) {
                s.done_unflushed.push((seq.0, p.segment));
            }
        }
    }

    /// Done marks applied so far, to be released by [`InboxLog::flushed`] once a flush
    /// that started after this call has succeeded.
    pub(crate) fn take_unflushed(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.lock().done_unflushed)
    }

    /// Gives marks back after a failed flush.
    pub(crate) fn restore_unflushed(&self, marks: Vec<(u64, u64)>) {
        self.lock().done_unflushed.extend(marks);
    }

    /// The done records of `marks` are on disk: their segments may go (see
    /// [`InboxLog::maintain`]).
    pub(crate) fn flushed(&self, marks: &[(u64, u64)]) {
        let mut s = self.lock();
        for (_, segment) in marks {
            if let Some(seg) = s.segments.get_mut(segment) {
                seg.live = seg.live.saturating_sub(1);
            }
        }
    }

    /// Housekeeping with the file work done outside the lock, so that appends never
    /// wait for it: deletes the segments whose entries are all durably done (and spare
    /// files no longer usable), and makes the next segment ahead of time once the
    /// active one is half full. Called after engine flushes, i.e. never on the append
    /// path; if it never runs, appends start segments themselves.
    pub(crate) fn maintain(&self) -> Result<()> {
        let (dead, stale) = {
            let mut s = self.lock();
            // Deletions whose directory sync failed last time (rare: held under the lock).
            self.sync_deletions(&mut s)?;
            let active = self.active(&s);
            let names: Vec<u64> = s
                .segments
                .iter()
                .filter(|(first, seg)| **first != active && seg.live == 0)
                .map(|(first, _)| *first)
                .collect();
            let mut dead = Vec::with_capacity(names.len());
            for first in names {
                if let Some(seg) = s.segments.remove(&first) {
                    s.doomed.insert(first, seg.min_seq.min(first));
                    dead.push((first, seg));
                }
            }
            (dead, std::mem::take(&mut s.stale))
        };
        let mut outcome = Ok(());
        if !dead.is_empty() || !stale.is_empty() {
            let mut failed = Vec::new();
            for (first, _) in &dead {
                match fs::remove_file(segment_path(&self.dir, *first)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        failed.push(*first);
                        outcome = Err(Error::Io(e));
                    }
                }
            }
            for name in &stale {
                let _ = fs::remove_file(segment_path(&self.dir, *name));
            }
            let synced = sync_dir(&self.dir);
            let mut s = self.lock();
            for (first, seg) in dead {
                let floor = s.doomed.remove(&first).unwrap_or(first);
                if failed.contains(&first) {
                    // Stays known, so its entries' done records are kept; tried again.
                    s.segments.insert(first, seg);
                } else if synced.is_err() {
                    s.unsynced.insert(first, floor);
                }
            }
            if let Err(e) = synced {
                outcome = Err(e);
            }
        }
        self.prepare_spare()?;
        outcome
    }

    /// Creates the next segment, filled with zeros and synced, unless one is ready or
    /// the active segment is less than half full.
    fn prepare_spare(&self) -> Result<()> {
        let name = {
            let mut s = self.lock();
            if s.spare.is_some() || s.preparing || s.active_len < self.segment_bytes / 2 {
                return Ok(());
            }
            // Reserved: no entry gets this number, so no segment started meanwhile
            // can have this name. Above the active segment's name too, which equals
            // `next_seq` while it holds only records imported by the migration.
            let name = s.next_seq.max(self.active(&s).saturating_add(1));
            let Some(after) = name.checked_add(1) else {
                return Ok(());
            };
            s.preparing = true;
            s.next_seq = after;
            name
        };
        let made = self.make_zeroed(name);
        let mut s = self.lock();
        s.preparing = false;
        match made {
            Ok(file) => {
                s.spare = Some((name, Arc::new(file)));
                Ok(())
            }
            Err(e) => {
                // Only a file this call created may be deleted as stale.
                if !matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::AlreadyExists) {
                    s.stale.push(name);
                }
                Err(e)
            }
        }
    }

    fn make_zeroed(&self, name: u64) -> Result<File> {
        let path = segment_path(&self.dir, name);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(Error::Io)?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = self.segment_bytes;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            io::Write::write_all(&mut file, &zeros[..n]).map_err(Error::Io)?;
            left -= n as u64;
        }
        file.sync_all().map_err(Error::Io)?;
        sync_dir(&self.dir)?;
        Ok(file)
    }

    /// If the active segment holds records but none still live, starts a new one and
    /// deletes it, so that its done records may be pruned. Returns the lowest sequence
    /// number any segment may still hold, or its name if lower: done records below it
    /// have no body left, and numbering after a restart cannot go below it.
    pub(crate) fn retire_idle(&self) -> Result<u64> {
        let mut s = self.lock();
        let active = self.active(&s);
        let idle = s.active_len > 0 && s.segments.get(&active).is_some_and(|seg| seg.live == 0);
        if idle && s.done_unflushed.iter().all(|(_, seg)| *seg != active) {
            let first = s.next_seq;
            self.rotate(&mut s, first)?;
            self.remove_segments(&mut s, &[active])?;
        }
        // Not above a segment's name either: after a restart numbering resumes from
        // the highest name (or the highest done record kept), so the done records of
        // numbers given out after the active segment's name (it may be a spare reserved
        // earlier) must stay until that segment goes.
        Ok(s.segments
            .iter()
            .map(|(first, seg)| seg.min_seq.min(*first))
            .chain(s.doomed.values().copied())
            .chain(s.unsynced.values().copied())
            .fold(s.next_seq, u64::min))
    }

    /// Appends records copied from the engine's tree (format 5 kept pending bodies
    /// there, sealed for the same slot) and makes them durable. Used by the migration.
    pub(crate) fn import(
        &self,
        entries: &[(InboxSeq, Timestamp, [u8; 32], Vec<u8>)],
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut last = 0;
        for (seq, received_at, hash, sealed) in entries {
            let mut s = self.lock();
            if s.pending.contains_key(&seq.0) {
                continue;
            }
            if s.next_seq <= seq.0 {
                s.next_seq = seq.0.saturating_add(1);
            }
            let record = encode_record(seq.0, *received_at, hash, sealed);
            self.write_record(&mut s, seq.0, &record, sealed.len(), *hash, *received_at)?;
            drop(s);
            last = self.group.applied();
        }
        if last > 0 {
            self.wait_durable(last)?;
        }
        Ok(())
    }

    /// Total size of the segment files (with the spare made ahead).
    pub(crate) fn size_on_disk(&self) -> u64 {
        let s = self.lock();
        s.segments
            .values()
            .map(|seg| &seg.file)
            .chain(s.spare.as_ref().map(|(_, f)| f))
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// Number of segments holding entries or open for them (without a spare).
    pub(crate) fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }
}

struct Parsed<'a> {
    seq: u64,
    received_at: Timestamp,
    hash: [u8; 32],
    body: &'a [u8],
    /// Bytes of the whole record.
    total: usize,
}

fn encode_record(seq: u64, received_at: Timestamp, hash: &[u8; 32], sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + sealed.len());
    let len = u32::try_from(FIXED + sealed.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&received_at.as_nanosecond().to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(sealed);
    let crc = crc32fast::hash(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Whether, after a bad record at the start of `bytes`, an intact record follows where
/// the bad one's length field says it ends: then the damage is not a torn last write.
fn intact_record_follows(bytes: &[u8]) -> bool {
    let Some(len) = bytes
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
    else {
        return false;
    };
    let len = len as usize;
    if !(FIXED..=MAX_RECORD).contains(&len) {
        return false;
    }
    bytes
        .get(8 + len..)
        .is_some_and(|rest| parse_record(rest).is_some())
}

/// The record at the start of `bytes`, or `None` if there is no complete, intact one.
fn parse_record(bytes: &[u8]) -> Option<Parsed<'_>> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    if !(FIXED..=MAX_RECORD).contains(&len) {
        return None;
    }
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let covered = bytes.get(8..8 + len)?;
    if crc32fast::hash(covered) != crc {
        return None;
    }
    let seq = u64::from_be_bytes(covered[0..8].try_into().ok()?);
    let nanos = i128::from_be_bytes(covered[8..24].try_into().ok()?);
    let received_at = Timestamp::from_nanosecond(nanos).ok()?;
    let hash: [u8; 32] = covered[24..56].try_into().ok()?;
    Some(Parsed {
        seq,
        received_at,
        hash,
        body: &covered[FIXED..],
        total: 8 + len,
    })
}

fn read_entry(file: &File, seq: u64, p: &Pending) -> Result<SealedEntry> {
    let mut buf = vec![0; HEADER + p.body_len];
    read_exact_at(file, &mut buf, p.offset).map_err(Error::Io)?;
    match parse_record(&buf) {
        Some(rec) if rec.seq == seq => Ok(SealedEntry {
            seq: InboxSeq(seq),
            received_at: rec.received_at,
            hash: rec.hash,
            sealed: rec.body.to_vec(),
        }),
        _ => Err(Error::Corrupt(format!(
            "inbox log record {seq} changed on disk after it was written"
        ))),
    }
}

fn unusable(why: &str) -> io::Error {
    io::Error::other(format!(
        "the inbox log is unusable after a failed write ({why}); restart orb"
    ))
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}{SUFFIX}"))
}

fn open_error(path: &Path, source: io::Error) -> Error {
    Error::Open {
        path: path.to_owned(),
        source,
    }
}

/// Makes creations and deletions in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::Io)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt as _;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt as _;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn open(dir: &Path, seg: u64, done: &[u64]) -> InboxLog {
        let done = done.to_vec();
        InboxLog::open(dir, seg, 1, move |s| Ok(done.contains(&s))).unwrap()
    }

    fn append(log: &InboxLog, body: &[u8]) -> InboxSeq {
        let (seq, ticket) = log
            .append([body.first().copied().unwrap_or(0); 32], ts(1), |_| {
                Ok(body.to_vec())
            })
            .unwrap();
        log.wait_durable(ticket).unwrap();
        seq
    }

    fn pending_seqs(log: &InboxLog) -> Vec<u64> {
        log.read_pending()
            .unwrap()
            .iter()
            .map(|e| e.seq.0)
            .collect()
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20, &[]);
        let a = append(&log, b"first body");
        let b = append(&log, b"second body");
        assert_eq!((a.0, b.0), (1, 2));
        drop(log);
        // A crash in the middle of a third write.
        let path = segment_path(&dir.path().join(DIR), 1);
        let full = fs::read(&path).unwrap();
        let partial = encode_record(3, ts(1), &[7; 32], b"third body, never acknowledged");
        let mut torn = full.clone();
        torn.extend_from_slice(&partial[..partial.len() - 5]);
        fs::write(&path, &torn).unwrap();

        let log = open(dir.path(), 1 << 20, &[]);
        assert_eq!(fs::read(&path).unwrap(), full, "the torn record is cut off");
        let pending = log.read_pending().unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[1].sealed, b"second body");
        // The next append reuses the torn record's number: it was never acknowledged.
        assert_eq!(append(&log, b"again").0, 3);
    }

    #[test]
    fn a_flipped_bit_ends_the_segment_there() {
        let rec = encode_record(9, ts(2), &[1; 32], b"body");
        assert_eq!(parse_record(&rec).unwrap().body, b"body");
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x10;
            assert!(parse_record(&bad).is_none_or(|p| p.seq != 9 || p.body != b"body"));
        }
    }

    #[test]
    fn segments_go_once_every_entry_is_durably_done() {
        let dir = tempfile::tempdir().unwrap();
        // Room for two records per segment.
        let log = open(dir.path(), 2 * (HEADER as u64 + 10), &[]);
        let seqs: Vec<InboxSeq> = (0..5).map(|i| append(&log, &[b'a' + i; 10])).collect();
        assert_eq!(log.segment_count(), 3);
        log.applied_done(&seqs[..2]);
        assert_eq!(log.pending_len(), 3);
        assert_eq!(
            log.segment_count(),
            3,
            "not before the done records are flushed"
        );
        let marks = log.take_unflushed();
        log.flushed(&marks);
        log.maintain().unwrap();
        assert_eq!(log.segment_count(), 2);
        // The active segment stays even when idle, until it is retired.
        log.applied_done(&seqs[2..]);
        let marks = log.take_unflushed();
        log.flushed(&marks);
        log.maintain().unwrap();
        assert_eq!(log.segment_count(), 1);
        // The half-full active segment got a spare ahead of time, named 6 (reserved).
        assert_eq!(log.lock().spare.as_ref().map(|(n, _)| *n), Some(6));
        assert_eq!(log.retire_idle().unwrap(), 6);
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.read_pending().unwrap().len(), 0);
        drop(log);
        // Numbering continues after a restart even though no record is left: from the
        // name of the (empty) active segment, no number below it is given again.
        let log = open(dir.path(), 1 << 20, &[]);
        assert_eq!(append(&log, b"next").0, 6);
    }

    #[test]
    fn entries_done_in_the_engine_are_not_pending_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20, &[]);
        for i in 0..4 {
            append(&log, &[i; 3]);
        }
        drop(log);
        let log = open(dir.path(), 1 << 20, &[1, 3]);
        let seqs = pending_seqs(&log);
        assert_eq!(seqs, [2, 4]);
    }

    #[test]
    fn a_failed_flush_keeps_the_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), HEADER as u64 + 4, &[]);
        let a = append(&log, b"aaaa");
        append(&log, b"bbbb");
        log.applied_done(&[a]);
        let marks = log.take_unflushed();
        log.restore_unflushed(marks);
        assert_eq!(log.segment_count(), 2);
        let marks = log.take_unflushed();
        assert_eq!(marks.len(), 1);
        log.flushed(&marks);
        log.maintain().unwrap();
        assert_eq!(log.segment_count(), 1);
    }

    #[test]
    fn a_spare_made_ahead_takes_the_next_records_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let seg = 4 * (HEADER as u64 + 100);
        let log = open(dir.path(), seg, &[]);
        let first: Vec<InboxSeq> = (0..3).map(|i| append(&log, &[b'a' + i; 100])).collect();
        log.maintain().unwrap();
        let spare = log.lock().spare.as_ref().map(|(name, _)| *name);
        assert_eq!(spare, Some(4), "made once the active segment is half full");
        // Its name is reserved: the next entry gets 5, the one after it opens the spare.
        assert_eq!(append(&log, b"dddd").0, 5);
        let sixth = append(&log, &[b'e'; 100]);
        assert_eq!(sixth.0, 6);
        assert!(log.lock().spare.is_none());
        assert_eq!(log.lock().pending[&6].segment, 4);
        let zeroed = fs::metadata(segment_path(&dir.path().join(DIR), 4))
            .unwrap()
            .len();
        assert_eq!(zeroed, seg, "written ahead, not grown by the appends");
        drop(log);

        // The zeros after the last record are not a torn write.
        let log = open(dir.path(), seg, &[]);
        let seqs = pending_seqs(&log);
        assert_eq!(seqs, [1, 2, 3, 5, 6]);
        assert_eq!(
            fs::metadata(segment_path(&dir.path().join(DIR), 4))
                .unwrap()
                .len(),
            seg
        );
        assert_eq!(append(&log, b"after").0, 7);
        log.applied_done(&first);
        let marks = log.take_unflushed();
        log.flushed(&marks);
        log.maintain().unwrap();
        assert_eq!(
            log.lock().segments.len(),
            2,
            "the first segment still holds 5"
        );
    }

    #[test]
    fn a_spare_never_takes_the_name_of_the_segment_the_migration_filled() {
        let dir = tempfile::tempdir().unwrap();
        let seg = 4 * (HEADER as u64 + 100);
        // Format 5's tree knew seqs up to 8: the log starts with segment 9, and the
        // migration copies pending 2..=8 into it (lower numbers than its name).
        let log = InboxLog::open(dir.path(), seg, 9, |_| Ok(false)).unwrap();
        let imported: Vec<_> = (2..=8)
            .map(|i| (InboxSeq(i), ts(1), [i as u8; 32], vec![b'x'; 100]))
            .collect();
        log.import(&imported).unwrap();
        // Engine flushes run the housekeeping (its errors are ignored there).
        let _ = log.maintain();
        let _ = log.maintain();
        let new = append(&log, b"after the migration");
        drop(log);
        let log = open(dir.path(), seg, &[]);
        let seqs = pending_seqs(&log);
        assert_eq!(seqs, [2, 3, 4, 5, 6, 7, 8, new.0]);
    }

    #[test]
    fn the_first_segment_after_the_migration_does_not_overwrite_it() {
        let dir = tempfile::tempdir().unwrap();
        let seg = 4 * (HEADER as u64 + 100);
        let log = InboxLog::open(dir.path(), seg, 9, |_| Ok(false)).unwrap();
        let imported: Vec<_> = (2..=8)
            .map(|i| (InboxSeq(i), ts(1), [i as u8; 32], vec![b'x'; 100]))
            .collect();
        log.import(&imported).unwrap();
        // More than a segment was imported: the next append starts a new one.
        let new = append(&log, b"after the migration");
        drop(log);
        let log = open(dir.path(), seg, &[]);
        let seqs = pending_seqs(&log);
        assert_eq!(seqs, [2, 3, 4, 5, 6, 7, 8, new.0]);
    }

    #[test]
    fn numbers_are_not_given_again_after_an_idle_segment_retires_into_the_spare() {
        let dir = tempfile::tempdir().unwrap();
        let seg = 4 * (HEADER as u64 + 100);
        let log = open(dir.path(), seg, &[]);
        let mut seqs: Vec<InboxSeq> = (0..2).map(|i| append(&log, &[b'a' + i; 100])).collect();
        log.maintain().unwrap();
        assert_eq!(log.lock().spare.as_ref().map(|(n, _)| *n), Some(3));
        // Still room in the active segment: these go there, numbered after the spare.
        seqs.push(append(&log, &[b'x'; 100]));
        let highest = seqs[2].0;
        assert_eq!(highest, 4);
        log.applied_done(&seqs);
        let marks = log.take_unflushed();
        log.flushed(&marks);
        log.maintain().unwrap();
        let floor = log.retire_idle().unwrap();
        drop(log);
        // `prune_inbox` deletes the done records below the floor; the engine's next
        // number after a restart is one past the highest record it kept.
        let min_next = if floor <= highest { highest + 1 } else { 1 };
        let log = InboxLog::open(dir.path(), seg, min_next, |s| Ok(s >= floor)).unwrap();
        for body in [b"after the restart 1", b"after the restart 2"] {
            let next = append(&log, body);
            assert!(!seqs.contains(&next), "{} given again", next.0);
        }
    }

    #[test]
    fn numbers_running_out_give_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(DIR)).unwrap();
        fs::write(segment_path(&dir.path().join(DIR), u64::MAX), b"").unwrap();
        let log = open(dir.path(), 1 << 20, &[]);
        let appended = log.append([1; 32], ts(1), |_| Ok(b"body".to_vec()));
        assert!(appended.is_err());
        log.maintain().unwrap();
    }

    #[test]
    fn a_stray_file_with_a_segment_number_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 2 * (HEADER as u64 + 10), &[]);
        let seqs: Vec<InboxSeq> = (0..5).map(|i| append(&log, &[b'a' + i; 10])).collect();
        drop(log);
        // Not a name this code writes, but it parses as segment 1.
        fs::write(dir.path().join(DIR).join("1.log"), b"").unwrap();
        let log = open(dir.path(), 2 * (HEADER as u64 + 10), &[]);
        let pending: Vec<InboxSeq> = log.read_pending().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(pending, seqs);
        drop(log);
        assert!(segment_path(&dir.path().join(DIR), 1).exists());
    }

    #[test]
    fn a_torn_record_over_zeros_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20, &[]);
        append(&log, b"kept");
        drop(log);
        let path = segment_path(&dir.path().join(DIR), 1);
        let mut bytes = fs::read(&path).unwrap();
        let good = bytes.len();
        let torn = encode_record(2, ts(1), &[2; 32], b"torn body");
        bytes.extend_from_slice(&torn[..20]);
        bytes.extend_from_slice(&[0; 4096]);
        fs::write(&path, &bytes).unwrap();
        let log = open(dir.path(), 1 << 20, &[]);
        assert_eq!(fs::metadata(&path).unwrap().len(), good as u64);
        assert_eq!(log.read_pending().unwrap().len(), 1);
    }

    #[test]
    fn after_a_failed_sync_nothing_more_is_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20, &[]);
        append(&log, b"before");
        log.fail_next_sync
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let (_, ticket) = log
            .append([9; 32], ts(1), |_| Ok(b"lost?".to_vec()))
            .unwrap();
        assert!(log.wait_durable(ticket).is_err());
        assert!(log.failure().is_some_and(|f| f.contains("injected")));
        // A retry of the same sync must not "succeed": the kernel may have dropped
        // the pages. Neither a new append nor a wait for an earlier one is accepted.
        assert!(log.wait_durable(log.barrier()).is_err());
        assert!(
            log.append([8; 32], ts(1), |_| Ok(b"after".to_vec()))
                .is_err()
        );
        drop(log);
        // A restart reads back what is on disk and accepts appends again.
        let log = open(dir.path(), 1 << 20, &[]);
        assert!(log.failure().is_none());
        let pending = log.read_pending().unwrap();
        assert_eq!(pending[0].sealed, b"before");
        append(&log, b"after restart");
    }

    #[test]
    fn deletions_whose_directory_sync_failed_still_hold_the_prune_floor() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), HEADER as u64 + 4, &[]);
        let a = append(&log, b"aaaa");
        append(&log, b"bbbb");
        log.applied_done(&[a]);
        let marks = log.take_unflushed();
        log.flushed(&marks);
        // As if the directory sync after the deletion had failed.
        {
            let mut s = log.lock();
            let seg = s.segments.remove(&a.0).unwrap();
            fs::remove_file(segment_path(&dir.path().join(DIR), a.0)).unwrap();
            s.unsynced.insert(a.0, seg.min_seq);
        }
        assert_eq!(log.retire_idle().unwrap(), a.0, "a's done record must stay");
        log.maintain().unwrap();
        assert!(
            log.lock().unsynced.is_empty(),
            "synced on the next maintenance"
        );
        assert!(log.retire_idle().unwrap() > a.0);
    }

    #[test]
    fn damage_in_the_middle_is_an_error_not_a_silent_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), 1 << 20, &[]);
        for body in [&b"first"[..], b"second", b"third"] {
            append(&log, body);
        }
        drop(log);
        let path = segment_path(&dir.path().join(DIR), 1);
        let mut bytes = fs::read(&path).unwrap();
        // Flip a bit in the body of the second record.
        let second = HEADER + 5;
        bytes[second + HEADER + 2] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let e = InboxLog::open(dir.path(), 1 << 20, 1, |_| Ok(false))
            .err()
            .unwrap();
        assert!(matches!(e, Error::Corrupt(m) if m.contains("damaged")));
        assert_eq!(fs::read(&path).unwrap(), bytes, "nothing cut");
    }
}
