//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
///
/// Messages are lowercase, carry no secret, key or payload, and name the path or record
/// kind involved so an operator can act on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database directory could not be opened or created (permissions, missing
    /// parent, disk full, another process holding the lock).
    #[error("cannot open the state store at {path}")]
    Open {
        /// The directory that was opened.
        path: PathBuf,
        /// What the storage engine reported.
        #[source]
        source: std::io::Error,
    },
    /// Another process (or a handle of this process that is still closing) holds the
    /// store's lock.
    #[error("the state store at {path} is in use by another process")]
    Locked {
        /// The directory that was opened.
        path: PathBuf,
    },
    /// The operation needs the only handle to the store, but clones of it exist.
    #[error("the state store handle is shared; close the other handles first")]
    InUse,
    /// Reopening the engine during [`crate::Store::checkpoint`] failed; every later
    /// operation fails with this error (what was committed before is on disk).
    #[error("the state store is closed after a failed checkpoint")]
    Closed,
    /// A read or write failed in the storage engine (I/O error, disk full, read-only
    /// file system). Data that was durably committed before is unaffected.
    #[error("state store i/o failed")]
    Io(#[source] std::io::Error),
    /// The storage engine reported corruption or an internal bug.
    #[error("state store is corrupt or inconsistent: {0}")]
    Corrupt(String),
    /// The store was written by a newer orb whose format this build does not know.
    #[error(
        "state store format version {found} is newer than the supported version {supported}; upgrade orb"
    )]
    UnsupportedFormat {
        /// Version found on disk.
        found: u32,
        /// Newest version this build understands.
        supported: u32,
    },
    /// The master key does not match the key the store was created with.
    #[error("the master key does not match this state store (wrong key file or variable?)")]
    WrongMasterKey,
    /// The master key could not be loaded or has the wrong shape.
    #[error("invalid master key: {0}")]
    MasterKey(String),
    /// Reading or writing the master key file failed.
    #[error("cannot access master key file {path}")]
    MasterKeyFile {
        /// The key file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An encrypted record failed its integrity check (tampered, truncated, or moved to
    /// another slot).
    #[error("encrypted {kind} record failed its integrity check")]
    Tampered {
        /// The kind of record ("secret", "encryption key", "subscription").
        kind: &'static str,
    },
    /// A record could not be decoded.
    #[error("cannot decode stored {kind} record")]
    Decode {
        /// The kind of record.
        kind: &'static str,
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A record could not be encoded.
    #[error("cannot encode {kind} record")]
    Encode {
        /// The kind of record.
        kind: &'static str,
        /// The encoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A unique correlation id is already held by another booking.
    #[error("{index} is already used by booking {holder}")]
    IndexConflict {
        /// Which index ("room event id", "topdesk reservation id", …).
        index: &'static str,
        /// The match id of the booking that holds the value.
        holder: String,
    },
    /// The referenced record does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// The kind of record.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// A durable commit could not be flushed to disk; the write may or may not survive a
    /// crash and must be treated as not acknowledged.
    #[error("flushing the state store to disk failed: {0}")]
    Flush(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
}

impl Error {
    /// Whether retrying the same operation later may succeed (I/O and flush failures),
    /// as opposed to errors that need an operator or a code change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Io(_) | Error::Flush(_))
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an engine error. Deliberately not a `From` impl: that would put a sled type in
/// the public API.
pub(crate) fn from_sled(e: sled::Error) -> Error {
    match e {
        sled::Error::Io(io) => Error::Io(io),
        sled::Error::Corruption { at, .. } => {
            Error::Corrupt(format!("storage engine found corruption at {at:?}"))
        }
        sled::Error::ReportableBug(s) => Error::Corrupt(format!("storage engine bug: {s}")),
        sled::Error::Unsupported(s) => Error::Corrupt(format!("unsupported operation: {s}")),
        sled::Error::CollectionNotFound(_) => {
            Error::Corrupt("storage engine collection missing".to_owned())
        }
    }
}

/// `.db()?` converts engine results at the call site (see [`from_sled`]).
pub(crate) trait SledResultExt<T> {
    fn db(self) -> Result<T>;
}

impl<T> SledResultExt<T> for std::result::Result<T, sled::Error> {
    fn db(self) -> Result<T> {
        self.map_err(from_sled)
    }
}
