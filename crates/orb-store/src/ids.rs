//! Newtypes for the identifiers orb correlates, so they cannot be swapped.

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value as received from its source.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// orb's own key for a booking (the ORB match id).
    MatchId
);
string_id!(
    /// Links records to the processing run that produced them.
    CorrelationId
);
string_id!(
    /// The e-mail address of a managed room mailbox.
    RoomMailbox
);
string_id!(
    /// A Microsoft Graph event id (organizer's or room's copy).
    GraphEventId
);
string_id!(
    /// The `iCalUId` shared by all copies of one meeting.
    IcalUid
);
string_id!(
    /// A TOPdesk reservation's id (UUID).
    TopdeskReservationId
);
string_id!(
    /// A TOPdesk reservation's human-readable number.
    TopdeskReservationNumber
);
string_id!(
    /// A Graph subscription id.
    SubscriptionId
);
string_id!(
    /// A fingerprint of one side's last seen version of a booking (e.g. a hash or the
    /// change key), used to recognise orb's own writes coming back.
    Fingerprint
);

/// Sequence number of an inbox entry; increasing in arrival order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InboxSeq(pub u64);

/// Id of an outbox entry (a planned effect).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutboxId(pub u64);

/// Id of an audit record; increasing in append order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AuditId(pub u64);

impl std::fmt::Display for InboxSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for OutboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for AuditId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
