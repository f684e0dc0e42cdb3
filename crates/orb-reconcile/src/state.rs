//! The engine's memory: every booking plus lookup indexes, and the person cache. The
//! store persists bookings and persons; the indexes are rebuilt from them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;

use crate::effect::Plan;
use crate::ids::{
    EmailAddress, GraphEventId, IcalUid, OrbMatchId, RoomMailbox, TopdeskPersonId,
    TopdeskReservationId,
};
use crate::model::{Appointment, Booking, BookingStatus, Side};

/// What orb knows of the TOPdesk person behind an e-mail address.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersonEntry {
    /// A lookup was issued at this instant and has not been answered.
    Pending(Timestamp),
    /// The person.
    Found(TopdeskPersonId),
    /// No TOPdesk person has this address.
    NotFound,
}

/// All bookings and the person cache, with indexes. Changed only by [`State::apply`].
#[derive(Clone, Debug, Default)]
pub struct State {
    bookings: BTreeMap<OrbMatchId, Booking>,
    persons: BTreeMap<EmailAddress, PersonEntry>,
    by_room_copy: HashMap<GraphEventId, OrbMatchId>,
    by_uid: HashMap<(RoomMailbox, IcalUid), OrbMatchId>,
    by_reservation: HashMap<TopdeskReservationId, OrbMatchId>,
    by_master: HashMap<GraphEventId, BTreeSet<OrbMatchId>>,
    /// Bookings whose own Exchange event orb does not know yet
    /// ([`Booking::awaits_own_event`]).
    pending_exchange_creates: BTreeSet<OrbMatchId>,
    /// Bookings TOPdesk refused or marks conflicting: re-attempted when their slot frees.
    topdesk_conflicts: BTreeSet<OrbMatchId>,
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the state from stored bookings and person entries.
    pub fn from_parts(
        bookings: impl IntoIterator<Item = Booking>,
        persons: impl IntoIterator<Item = (EmailAddress, PersonEntry)>,
    ) -> Self {
        let mut state = Self::new();
        for booking in bookings {
            state.upsert(booking);
        }
        state.persons.extend(persons);
        state
    }

    /// Applies a plan's bookings and person entries (effects are the caller's).
    pub fn apply(&mut self, plan: &Plan) {
        for booking in &plan.bookings {
            self.upsert(booking.clone());
        }
        for (email, entry) in &plan.persons {
            self.persons.insert(email.clone(), entry.clone());
        }
    }

    /// Forgets bookings that ended before `ended_before` and have no write in flight,
    /// returning their ids so the store can delete them too. Safe: an observation of an
    /// item that already ended is ignored, so a forgotten booking never comes back.
    pub fn prune(&mut self, ended_before: Timestamp) -> Vec<OrbMatchId> {
        let gone: Vec<OrbMatchId> = self
            .bookings
            .values()
            .filter(|b| {
                b.desired.end < ended_before
                    && b.exchange.in_flight.is_none()
                    && b.topdesk.in_flight.is_none()
            })
            .map(|b| b.match_id.clone())
            .collect();
        if !gone.is_empty() {
            let keep: Vec<Booking> = std::mem::take(&mut self.bookings)
                .into_values()
                .filter(|b| !gone.contains(&b.match_id))
                .collect();
            let persons = std::mem::take(&mut self.persons);
            *self = Self::from_parts(keep, persons);
        }
        gone
    }

    /// One booking.
    pub fn booking(&self, match_id: &OrbMatchId) -> Option<&Booking> {
        self.bookings.get(match_id)
    }

    /// All bookings in match-id order.
    pub fn bookings(&self) -> impl Iterator<Item = &Booking> {
        self.bookings.values()
    }

    /// The person cache entry of an address.
    pub fn person(&self, email: &EmailAddress) -> Option<&PersonEntry> {
        self.persons.get(email)
    }

    pub(crate) fn by_room_copy(&self, id: &GraphEventId) -> Option<&OrbMatchId> {
        self.by_room_copy.get(id)
    }

    pub(crate) fn by_uid(&self, room: &RoomMailbox, uid: &IcalUid) -> Option<&OrbMatchId> {
        // Building the tuple clones two Arcs, which is cheap.
        self.by_uid.get(&(room.clone(), uid.clone()))
    }

    pub(crate) fn by_reservation(&self, id: &TopdeskReservationId) -> Option<&OrbMatchId> {
        self.by_reservation.get(id)
    }

    pub(crate) fn by_master(&self, master: &GraphEventId) -> impl Iterator<Item = &OrbMatchId> {
        self.by_master.get(master).into_iter().flatten()
    }

    pub(crate) fn pending_exchange_creates(&self) -> impl Iterator<Item = &OrbMatchId> {
        self.pending_exchange_creates.iter()
    }

    pub(crate) fn topdesk_conflicts(&self) -> impl Iterator<Item = &OrbMatchId> {
        self.topdesk_conflicts.iter()
    }

    fn upsert(&mut self, booking: Booking) {
        let id = booking.match_id.clone();
        // Keys are only ever added (retired keys stay indexed so echoes of retired items
        // are recognised), so upserting never has to remove an entry, except the
        // pending-create marker.
        let x = &booking.exchange;
        // A cancelled booking never takes a key from another booking: a meeting that
        // left a room and came back belongs to the live booking.
        let claim = |owner: Option<&OrbMatchId>| {
            !booking.desired.cancelled || owner.is_none_or(|owner| *owner == id)
        };
        if let Some(copy) = &x.room_copy
            && claim(self.by_room_copy.get(copy))
        {
            self.by_room_copy.insert(copy.clone(), id.clone());
        }
        if let (Some(room), Some(uid)) = (&x.room, &x.ical_uid) {
            let key = (room.clone(), uid.clone());
            if claim(self.by_uid.get(&key)) {
                self.by_uid.insert(key, id.clone());
            }
        }
        // A retired key never takes an entry away from the booking that now owns it.
        for retired in &x.retired {
            if let Some(copy) = &retired.room_copy {
                self.by_room_copy
                    .entry(copy.clone())
                    .or_insert_with(|| id.clone());
            }
            if let Some(uid) = &retired.ical_uid {
                self.by_uid
                    .entry((retired.room.clone(), uid.clone()))
                    .or_insert_with(|| id.clone());
            }
        }
        let t = &booking.topdesk;
        // As for room copies: a reservation that left the managed rooms and came back
        // belongs to the live booking made of it, not to the one that ended.
        if let Some(reservation) = &t.reservation
            && claim(self.by_reservation.get(reservation))
        {
            self.by_reservation.insert(reservation.clone(), id.clone());
        }
        for reservation in &t.retired {
            self.by_reservation
                .entry(reservation.clone())
                .or_insert_with(|| id.clone());
        }
        if let Appointment::ExchangeOccurrence { master, .. } = &booking.appointment {
            self.by_master
                .entry(master.clone())
                .or_default()
                .insert(id.clone());
        }
        if matches!(
            booking.status,
            BookingStatus::Conflict {
                side: Side::Topdesk,
                ..
            }
        ) {
            self.topdesk_conflicts.insert(id.clone());
        } else {
            self.topdesk_conflicts.remove(&id);
        }
        if booking.awaits_own_event() {
            self.pending_exchange_creates.insert(id.clone());
        } else {
            self.pending_exchange_creates.remove(&id);
        }
        self.bookings.insert(id, booking);
    }
}
