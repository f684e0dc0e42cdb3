//! Newtypes for TOPdesk identifiers, so a person id can never be passed where a
//! location id is expected.

use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier as TOPdesk writes it.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The identifier as TOPdesk writes it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    /// The UUID of a reservation (`ReservationDto.id`).
    TopdeskReservationId
);
string_id!(
    /// The human-readable reservation number (`ReservationDto.number`); usable wherever
    /// TOPdesk accepts an `{identifier}`.
    ReservationNumber
);
string_id!(
    /// The UUID of a person card (requesters, participants).
    PersonId
);
string_id!(
    /// The UUID of a location card (a room).
    LocationId
);
string_id!(
    /// The UUID of a branch (a site or building).
    BranchId
);
string_id!(
    /// The UUID of a recurring reservation series (`ReservationDto.series.id`).
    SeriesId
);
string_id!(
    /// The UUID of a search-list entry such as a cancellation or rejection reason.
    SearchlistId
);
string_id!(
    /// The foreign id stored in a reservation's external link (at most 450 characters).
    ExternalLinkId
);

/// Either a reservation's UUID or its number: TOPdesk accepts both in every
/// `/reservations/{identifier}` path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReservationRef {
    /// By UUID.
    Id(TopdeskReservationId),
    /// By reservation number.
    Number(ReservationNumber),
}

impl ReservationRef {
    /// The path segment TOPdesk expects.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(id) => id.as_str(),
            Self::Number(number) => number.as_str(),
        }
    }
}

impl From<&TopdeskReservationId> for ReservationRef {
    fn from(id: &TopdeskReservationId) -> Self {
        Self::Id(id.clone())
    }
}

impl From<TopdeskReservationId> for ReservationRef {
    fn from(id: TopdeskReservationId) -> Self {
        Self::Id(id)
    }
}

impl From<&ReservationNumber> for ReservationRef {
    fn from(number: &ReservationNumber) -> Self {
        Self::Number(number.clone())
    }
}

impl From<ReservationNumber> for ReservationRef {
    fn from(number: ReservationNumber) -> Self {
        Self::Number(number)
    }
}

/// The external-link type that marks reservations as ours: "a non-zero integer
/// formatted as string", one per integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExternalLinkType(u32);

impl ExternalLinkType {
    /// Returns `None` for zero, which TOPdesk does not accept as a link type.
    pub fn new(value: u32) -> Option<Self> {
        (value != 0).then_some(Self(value))
    }

    /// The numeric value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ExternalLinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for ExternalLinkType {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value: u32 = s.trim().parse()?;
        // A zero type is rejected the same way as a non-number, via a failing parse.
        match Self::new(value) {
            Some(t) => Ok(t),
            None => "".parse::<u32>().map(Self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_type_rejects_zero_and_garbage() {
        assert!("0".parse::<ExternalLinkType>().is_err());
        assert!("x".parse::<ExternalLinkType>().is_err());
        assert_eq!("4711".parse::<ExternalLinkType>().unwrap().get(), 4711);
    }

    #[test]
    fn reservation_ref_uses_id_or_number() {
        let by_id = ReservationRef::from(TopdeskReservationId::new("abc"));
        let by_number = ReservationRef::from(ReservationNumber::new("R2605 0001"));
        assert_eq!(by_id.as_str(), "abc");
        assert_eq!(by_number.as_str(), "R2605 0001");
    }
}
