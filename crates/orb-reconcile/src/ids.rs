//! Newtypes for every identifier the engine handles, so that a Graph event id can never
//! be passed where a TOPdesk reservation id is expected.

use std::fmt;
use std::sync::Arc;

use crate::Error;

/// Declares an opaque, cheaply clonable string id.
macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(
            feature = "serde",
            derive(serde::Serialize, serde::Deserialize),
            serde(try_from = "String", into = "String")
        )]
        pub struct $name(Arc<str>);

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(text: String) -> Result<Self, Error> {
                Self::from_text(&text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }

        impl $name {
            fn from_text(text: &str) -> Result<Self, Error> {
                Self::new(text)
            }

            /// Wraps an id as the other side (or orb) issued it. Ids are opaque: only
            /// emptiness is rejected.
            pub fn new(id: impl AsRef<str>) -> Result<Self, Error> {
                let id = id.as_ref();
                if id.is_empty() {
                    return Err(Error::EmptyId { kind: stringify!($name) });
                }
                Ok(Self(Arc::from(id)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Declares a normalised (trimmed, lower-case) e-mail address type.
macro_rules! mail_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(
            feature = "serde",
            derive(serde::Serialize, serde::Deserialize),
            serde(try_from = "String", into = "String")
        )]
        pub struct $name(Arc<str>);

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(text: String) -> Result<Self, Error> {
                Self::from_text(&text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }

        impl $name {
            fn from_text(text: &str) -> Result<Self, Error> {
                Self::parse(text)
            }

            /// Parses an SMTP address: trimmed, lower-cased, exactly one `@` with text on
            /// both sides. Exchange and TOPdesk disagree on case; orb compares lower case.
            pub fn parse(address: &str) -> Result<Self, Error> {
                let address = address.trim();
                let mut parts = address.split('@');
                let valid = matches!(
                    (parts.next(), parts.next(), parts.next()),
                    (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
                ) && !address.chars().any(char::is_whitespace);
                if !valid {
                    return Err(Error::InvalidEmail { kind: stringify!($name) });
                }
                Ok(Self(Arc::from(address.to_ascii_lowercase())))
            }

            /// The address as text (lower case).
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

mail_id!(
    /// The SMTP address of a managed room mailbox (`room-2.14@example.com`).
    RoomMailbox
);
mail_id!(
    /// A person's SMTP address: organizer, attendee, TOPdesk requester, mail recipient.
    EmailAddress
);

impl RoomMailbox {
    /// The room mailbox as a plain address (a room is also a mailbox that can organize
    /// events written in room-only mode).
    pub fn to_email(&self) -> EmailAddress {
        EmailAddress(self.0.clone())
    }
}

opaque_id!(
    /// A Microsoft Graph event id (of a room copy or of the organizer's event).
    GraphEventId
);
opaque_id!(
    /// The `iCalUId` shared by all calendar copies of one meeting or one occurrence.
    IcalUid
);
opaque_id!(
    /// A TOPdesk reservation id.
    TopdeskReservationId
);
opaque_id!(
    /// A TOPdesk person id (the requester of a reservation).
    TopdeskPersonId
);
opaque_id!(
    /// A TOPdesk location id (a room on the TOPdesk side).
    TopdeskLocationId
);
opaque_id!(
    /// Groups TOPdesk reservations that form one series.
    TopdeskSeriesId
);
opaque_id!(
    /// orb's own key of a booking. Derived deterministically from the item that first
    /// reached orb, so a replayed observation lands on the same booking.
    OrbMatchId
);
opaque_id!(
    /// Links every effect to the processing run that decided it (logs, audit trail).
    CorrelationId
);
opaque_id!(
    /// Deterministic key carried by every create: Graph `transactionId`, TOPdesk
    /// `externalLink`. A retried or replayed create carries the same key, so the far side
    /// returns the existing item instead of making a second one.
    IdempotencyKey
);

impl OrbMatchId {
    /// The match id of a booking first seen as the room copy `ical_uid` in `room`.
    pub fn for_exchange(room: &RoomMailbox, ical_uid: &IcalUid) -> Self {
        Self(Arc::from(format!(
            "x-{}",
            digest(&[room.as_str(), ical_uid.as_str()])
        )))
    }

    /// The match id of a booking first seen as room copy `event_id`, used when
    /// [`OrbMatchId::for_exchange`] is taken by a booking that moved away from the room.
    pub fn for_exchange_copy(
        room: &RoomMailbox,
        ical_uid: &IcalUid,
        event_id: &GraphEventId,
    ) -> Self {
        Self(Arc::from(format!(
            "x-{}",
            digest(&[room.as_str(), ical_uid.as_str(), event_id.as_str()])
        )))
    }

    /// The match id of a booking first seen as TOPdesk reservation `id`.
    pub fn for_topdesk(id: &TopdeskReservationId) -> Self {
        Self(Arc::from(format!("t-{}", digest(&[id.as_str()]))))
    }

    /// The match id of a booking made from reservation `id` when it came back to a
    /// managed room (as of `since`), used when [`OrbMatchId::for_topdesk`] is taken by the
    /// booking that ended when the reservation left.
    pub fn for_topdesk_return(id: &TopdeskReservationId, since: &str) -> Self {
        Self(Arc::from(format!("t-{}", digest(&[id.as_str(), since]))))
    }
}

impl IdempotencyKey {
    /// Prefix of every key orb writes; lets the engine recognise its own creates.
    pub const PREFIX: &'static str = "orb";

    /// The key of the `generation`-th create of `match_id` on one side. A booking that
    /// must be re-created (organizer changed, item vanished) gets a new generation.
    pub fn derive(match_id: &OrbMatchId, side: crate::Side, generation: u32) -> Self {
        let side = match side {
            crate::Side::Exchange => "x",
            crate::Side::Topdesk => "t",
        };
        Self(Arc::from(format!(
            "{}:{}:{side}{generation}",
            Self::PREFIX,
            match_id.as_str()
        )))
    }

    /// The match id inside a key orb wrote, or `None` for any other text (a foreign
    /// `externalLink`, a user-made transaction id).
    pub fn match_id(text: &str) -> Option<OrbMatchId> {
        let rest = text.strip_prefix(Self::PREFIX)?.strip_prefix(':')?;
        let (id, _) = rest.rsplit_once(':')?;
        OrbMatchId::new(id).ok()
    }
}

impl CorrelationId {
    /// A correlation id derived from the parts that identify one processing step.
    pub fn derive(parts: &[&str]) -> Self {
        Self(Arc::from(format!("c-{}", digest(parts))))
    }
}

/// Incremental form of [`digest`]: feeds text and numbers without formatting them first.
pub(crate) struct Digest(u64, u64);

impl Digest {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142)
    }

    fn byte(&mut self, byte: u8) {
        self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
        self.1 = (self.1 ^ u64::from(byte.rotate_left(3))).wrapping_mul(Self::PRIME);
    }

    /// Feeds text followed by a separator.
    pub(crate) fn text(mut self, text: &str) -> Self {
        for byte in text.bytes() {
            self.byte(byte);
        }
        self.byte(0x1f);
        self
    }

    /// Feeds a number (two 64-bit words, one multiply each: this runs on every plan).
    pub(crate) fn number(mut self, number: i128) -> Self {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "splitting into words"
        )]
        for word in [number as u64, (number >> 64) as u64] {
            self.0 = (self.0 ^ word).wrapping_mul(Self::PRIME).rotate_left(29);
            self.1 = (self.1 ^ word.rotate_left(32))
                .wrapping_mul(Self::PRIME)
                .rotate_left(31);
        }
        self
    }

    /// The correlation id of everything fed.
    pub(crate) fn correlation(self) -> CorrelationId {
        CorrelationId(Arc::from(format!("c-{:016x}{:04x}", self.0, self.1 >> 48)))
    }
}

/// A stable 80-bit digest (two FNV-1a lanes) rendered as 20 hex digits. Not a security
/// measure: it only has to be deterministic across processes and releases, and 80 bits
/// keep collisions out of reach for any tenant's number of bookings.
pub(crate) fn digest(parts: &[&str]) -> String {
    let (a, b) = digest_pair(parts);
    format!("{a:016x}{:04x}", b >> 48)
}

/// The two 64-bit lanes behind [`digest`]; also seeds deterministic jitter.
pub(crate) fn digest_pair(parts: &[&str]) -> (u64, u64) {
    let d = parts.iter().fold(Digest::new(), |d, part| d.text(part));
    (d.0, d.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        let a = EmailAddress::parse("  Ann.Smith@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "ann.smith@example.com");
        assert!(EmailAddress::parse("nobody").is_err());
        assert!(EmailAddress::parse("a@b@c").is_err());
        assert!(EmailAddress::parse("@b").is_err());
        assert!(RoomMailbox::parse("a b@c").is_err());
    }

    #[test]
    fn idempotency_keys_round_trip_their_match_id() {
        let m = OrbMatchId::for_topdesk(&TopdeskReservationId::new("r1").unwrap());
        let k = IdempotencyKey::derive(&m, crate::Side::Exchange, 2);
        assert_eq!(IdempotencyKey::match_id(k.as_str()), Some(m));
        assert_eq!(IdempotencyKey::match_id("foreign"), None);
        assert!(TopdeskReservationId::new("").is_err());
    }
}
