//! Newtypes for the identifiers Graph hands out, so that they cannot be swapped.

use std::fmt;

use crate::Error;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id as received from Graph (or stored earlier). Empty ids are refused.
            pub fn new(id: impl Into<String>) -> Result<Self, Error> {
                let id = id.into();
                if id.is_empty() {
                    return Err(Error::InvalidInput(concat!("empty ", stringify!($name)).into()));
                }
                Ok(Self(id))
            }

            /// The id as Graph spells it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// An event id (immutable id: every request sends `Prefer: IdType="ImmutableId"`).
    /// Case-sensitive; valid only within its mailbox.
    GraphEventId
);
opaque_id!(
    /// An event's `iCalUId`: shared by the organizer's copy and every attendee's (and
    /// room's) copy; different for each occurrence of a series.
    IcalUid
);
opaque_id!(
    /// A Graph subscription id.
    SubscriptionId
);
opaque_id!(
    /// orb's own key for a booking, stamped on events as the `OrbMatchId` extended property.
    OrbMatchId
);

/// A mailbox address (user or room), the key Graph accepts in `/users/{id}`.
///
/// SMTP addresses are compared case-insensitively, so the address is kept in lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox(String);

impl Mailbox {
    /// Parses an SMTP address (`local@domain`, no whitespace, no path characters).
    pub fn new(address: &str) -> Result<Self, Error> {
        let address = address.trim();
        let valid = match address.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !address
                        .chars()
                        .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '\\' | '\''))
            }
            None => false,
        };
        if !valid {
            return Err(Error::InvalidInput(format!(
                "not a mailbox address: {address:?}"
            )));
        }
        Ok(Self(address.to_ascii_lowercase()))
    }

    /// The address, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room mailbox: the key orb uses for rooms everywhere (Places `room.id` is mutable).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomMailbox(Mailbox);

impl RoomMailbox {
    /// Parses a room's SMTP address.
    pub fn new(address: &str) -> Result<Self, Error> {
        Mailbox::new(address).map(Self)
    }

    /// The room as a plain mailbox (for calls that take any mailbox).
    pub fn mailbox(&self) -> &Mailbox {
        &self.0
    }

    /// The address, lowercase.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl From<RoomMailbox> for Mailbox {
    fn from(room: RoomMailbox) -> Self {
        room.0
    }
}

impl fmt::Display for RoomMailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_are_lowercased_and_checked() {
        assert_eq!(
            Mailbox::new(" Room-2.14@Example.com ")
                .map(|m| m.to_string())
                .ok(),
            Some("room-2.14@example.com".to_owned())
        );
        for bad in [
            "", "nobody", "@x", "a@", "a@b@c", "a b@c", "a/../b@c", "a'@c",
        ] {
            assert!(Mailbox::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_refuse_empty() {
        assert!(GraphEventId::new("").is_err());
        assert_eq!(
            IcalUid::new("u").map(|u| u.to_string()).ok(),
            Some("u".into())
        );
    }
}
