//! What an operator decides: sync mode, privacy, conflict policy, room mapping, delegate
//! rules, deletion safety and the retry schedule.

use std::collections::BTreeMap;

use jiff::SignedDuration;

use crate::backoff::RetryPolicy;
use crate::ids::{EmailAddress, RoomMailbox, TopdeskLocationId};

/// The engine's configuration. [`Config::new`] gives the documented defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where bookings that start in TOPdesk are written in Exchange.
    pub mode: SyncMode,
    /// `false`: subjects are neither stored nor carried across (R15).
    pub carry_subject: bool,
    /// Text written instead of a subject that is withheld (private items, or
    /// `carry_subject = false`). Reading this text back counts as "no subject".
    pub neutral_subject: String,
    /// Who wins when both sides changed the same field concurrently.
    pub conflict_policy: ConflictPolicy,
    /// The managed rooms: only bookings of these rooms are ever touched (R7).
    pub rooms: Rooms,
    /// TOPdesk requester used when no person matches the wanted e-mail address.
    pub default_requester: Option<EmailAddress>,
    /// Delegate rules keyed by the delegate's (secretary's) mailbox.
    pub delegates: BTreeMap<EmailAddress, DelegateRule>,
    /// Deletion safety for full passes.
    pub mass_cancel: MassCancelGuard,
    /// Retry schedule and parking.
    pub retry: RetryPolicy,
    /// Whether mail to users is enabled (R19); refusals then notify the organizer.
    pub mail_enabled: bool,
    /// Bookings starting later than `now + horizon` are not taken on.
    pub horizon: SignedDuration,
    /// An effect whose outcome has not arrived after this long is issued again on the
    /// next tick; creates are idempotent, so re-issuing is safe.
    pub in_flight_timeout: SignedDuration,
}

impl Config {
    /// Defaults: organizer mode, subjects carried, `"Reserved"` as neutral subject,
    /// Exchange wins conflicts, no default requester, no delegates, mass-cancel guard at
    /// 50 % of at least 5 bookings, [`RetryPolicy::default`], mail disabled, horizon 180
    /// days, in-flight
    /// timeout 10 minutes.
    pub fn new(rooms: Rooms) -> Self {
        Self {
            mode: SyncMode::Organizer,
            carry_subject: true,
            neutral_subject: "Reserved".to_owned(),
            conflict_policy: ConflictPolicy::ExchangeWins,
            rooms,
            default_requester: None,
            delegates: BTreeMap::new(),
            mass_cancel: MassCancelGuard::default(),
            retry: RetryPolicy::default(),
            mail_enabled: false,
            horizon: SignedDuration::from_hours(180 * 24),
            in_flight_timeout: SignedDuration::from_mins(10),
        }
    }
}

/// Where a booking made in TOPdesk appears in Exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// In the requester's calendar, with the room invited as resource attendee.
    Organizer,
    /// Only in the room's own calendar (R16, discouraged): organizer changes in TOPdesk
    /// then move nothing in Exchange.
    RoomOnly,
}

/// Deterministic resolution of concurrent edits of the same field on both sides (both
/// changed it before orb carried either over). Edits of different fields are merged, and
/// a field changed on one side only flows to the other, whatever the policy (a TOPdesk
/// reschedule of an Outlook meeting updates the organizer's meeting under every policy).
/// A cancellation always wins: a deleted item cannot be updated, and cancellation is
/// final. See the crate documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Exchange's value is kept.
    ExchangeWins,
    /// TOPdesk's value is kept.
    TopdeskWins,
    /// The value with the later modification time is kept; on a tie Exchange wins.
    LatestWins,
}

/// How a booking made by a delegate (secretary) is requested in TOPdesk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DelegateRule {
    /// The organizer (the delegate) is the requester.
    Organizer,
    /// A fixed principal is the requester.
    Principal(EmailAddress),
    /// The first required attendee is the requester (the person booked for).
    FirstRequiredAttendee,
}

/// Deletion safety: a full pass that would cancel more than `max_share_percent` of a
/// room's bookings in the window, and at least `min_bookings` of them, cancels nothing
/// and holds the bookings for an admin instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassCancelGuard {
    /// Largest share (0–100) a pass may cancel on its own.
    pub max_share_percent: u8,
    /// Passes that would cancel fewer bookings than this are never held.
    pub min_bookings: usize,
}

impl Default for MassCancelGuard {
    fn default() -> Self {
        Self {
            max_share_percent: 50,
            min_bookings: 5,
        }
    }
}

/// The mapping between managed room mailboxes and TOPdesk locations (one to one).
#[derive(Clone, Debug, Default)]
pub struct Rooms {
    by_mailbox: BTreeMap<RoomMailbox, TopdeskLocationId>,
    by_location: BTreeMap<TopdeskLocationId, RoomMailbox>,
}

impl Rooms {
    /// Builds the mapping; a later pair replaces an earlier one with the same mailbox or
    /// location, so the mapping stays one to one.
    pub fn new(pairs: impl IntoIterator<Item = (RoomMailbox, TopdeskLocationId)>) -> Self {
        let mut rooms = Self::default();
        for (mailbox, location) in pairs {
            if let Some(old) = rooms.by_mailbox.insert(mailbox.clone(), location.clone()) {
                rooms.by_location.remove(&old);
            }
            if let Some(old) = rooms.by_location.insert(location, mailbox) {
                rooms.by_mailbox.remove(&old);
            }
        }
        rooms
    }

    /// The TOPdesk location of a managed room.
    pub fn location(&self, room: &RoomMailbox) -> Option<&TopdeskLocationId> {
        self.by_mailbox.get(room)
    }

    /// The managed room of a TOPdesk location.
    pub fn room(&self, location: &TopdeskLocationId) -> Option<&RoomMailbox> {
        self.by_location.get(location)
    }

    /// Whether orb manages this room.
    pub fn is_managed(&self, room: &RoomMailbox) -> bool {
        self.by_mailbox.contains_key(room)
    }

    /// All managed rooms, in address order.
    pub fn mailboxes(&self) -> impl Iterator<Item = &RoomMailbox> {
        self.by_mailbox.keys()
    }
}
