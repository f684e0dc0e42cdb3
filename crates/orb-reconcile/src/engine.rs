//! The decisions: how each observation changes bookings and which effects follow.
//!
//! The engine is level-triggered. Each booking holds the agreed content (`desired`) and,
//! per side, the side's last known view (`base`). An observation is merged into
//! `desired` field by field against the side's `base` (three-way merge, so edits of
//! different fields on both sides both survive); afterwards [`Run::drive`] compares each
//! side's `base` with the projection of `desired` for that side and issues at most one
//! write per side. Echoes of orb's own writes compare equal to `base` or to the write in
//! flight and change nothing, which is what makes the system quiescent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;

use crate::config::{Config, ConflictPolicy, DelegateRule, SyncMode};
use crate::effect::{
    Effect, EffectId, EffectKind, EventTarget, EventWrite, Note, Plan, ReservationWrite,
};
use crate::ids::{
    CorrelationId, Digest, EmailAddress, GraphEventId, IdempotencyKey, OrbMatchId, RoomMailbox,
    TopdeskPersonId, TopdeskReservationId, digest_pair,
};
use crate::model::{
    Appointment, Booking, BookingStatus, Bookkeeping, Content, ExchangeLink, Fields, InFlight, Op,
    ParkReason, RetiredCopy, Side, SideStatus, TopdeskLink,
};
use crate::observation::{
    ExchangeItem, Failure, Observation, Outcome, Removal, TopdeskItem, Window,
};
use crate::state::{PersonEntry, State};

/// The sync engine: configuration plus the pure decision function [`Engine::plan`].
#[derive(Clone, Debug)]
pub struct Engine {
    config: Config,
}

impl Engine {
    /// An engine deciding under `config`.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Decides what `observation` means at `now`, given `state`. Pure: the same inputs
    /// give the same plan. The correlation id is derived from the observation and `now`;
    /// use [`Engine::plan_with_correlation`] to pass the service's own.
    pub fn plan(&self, state: &State, observation: &Observation, now: Timestamp) -> Plan {
        let correlation = observation_digest(observation)
            .number(now.as_nanosecond())
            .correlation();
        self.plan_with_correlation(state, observation, now, correlation)
    }

    /// [`Engine::plan`] with a correlation id chosen by the caller.
    pub fn plan_with_correlation(
        &self,
        state: &State,
        observation: &Observation,
        now: Timestamp,
        correlation: CorrelationId,
    ) -> Plan {
        let mut run = Run {
            cfg: &self.config,
            state,
            now,
            plan: Plan {
                correlation,
                effects: Vec::new(),
                bookings: Vec::new(),
                persons: Default::default(),
                notes: Vec::new(),
            },
            overlay: BTreeMap::new(),
            freed: Vec::new(),
        };
        run.observe(observation);
        run.release_held();
        run.retry_freed_slots();
        let mut plan = run.plan;
        plan.bookings = run.overlay.into_values().map(|b| *b).collect();
        plan
    }
}

/// The parts that identify an observation, the seed of its correlation id. Hashed, not
/// formatted: this runs on every plan.
fn observation_digest(observation: &Observation) -> Digest {
    let d = Digest::new();
    match observation {
        Observation::ExchangeChanged(item) => d
            .text("xc")
            .text(item.event_id.as_str())
            .number(item.modified_at.as_nanosecond()),
        Observation::ExchangeRemoved { event_id, .. } => d.text("xr").text(event_id.as_str()),
        Observation::ExchangeSeries { master, .. } => d.text("xs").text(master.as_str()),
        Observation::ExchangePass { room, .. } => d.text("xp").text(room.as_str()),
        Observation::TopdeskChanged(item) => d
            .text("tc")
            .text(item.id.as_str())
            .number(item.modified_at.as_nanosecond()),
        Observation::TopdeskRemoved { id, .. } => d.text("tr").text(id.as_str()),
        Observation::TopdeskConflicting { id, .. } => d.text("tf").text(id.as_str()),
        Observation::TopdeskPass { .. } => d.text("tp"),
        Observation::PersonResolved { email, .. } => d.text("pr").text(email.as_str()),
        Observation::EffectSucceeded { effect, .. } | Observation::EffectFailed { effect, .. } => d
            .text("ef")
            .text(effect.match_id.as_str())
            .text(match effect.side {
                Side::Exchange => "x",
                Side::Topdesk => "t",
            })
            .number(i128::from(effect.seq)),
        Observation::Tick => d.text("tick"),
        Observation::AdminRetry { match_id } => d.text("ar").text(match_id.as_str()),
        Observation::AdminConfirmRemoval { match_id } => d.text("ac").text(match_id.as_str()),
    }
}

/// How the TOPdesk requester of a booking resolves against the person cache.
enum Requester {
    /// Write with this requester.
    Ready(EmailAddress, Option<TopdeskPersonId>),
    /// Look this address up first.
    LookUp(EmailAddress),
    /// A lookup of this address is already under way.
    Wait(EmailAddress),
}

/// One planning run: the inputs and the plan being built. Bookings are taken out of the
/// state (or the plan's overlay), changed, and put back into the plan.
struct Run<'a> {
    cfg: &'a Config,
    state: &'a State,
    now: Timestamp,
    plan: Plan,
    /// Bookings changed in this run, boxed because a booking is large and moves often.
    overlay: BTreeMap<OrbMatchId, Box<Booking>>,
    /// Slots bookings left in this run (cancelled, rescheduled, moved to another room),
    /// with the booking that left each.
    freed: Vec<(OrbMatchId, Content)>,
}

impl Run<'_> {
    fn observe(&mut self, observation: &Observation) {
        match observation {
            Observation::ExchangeChanged(item) => {
                self.exchange_item(item);
            }
            Observation::ExchangeRemoved {
                room,
                event_id,
                reason,
            } => self.exchange_removed(room, event_id, *reason),
            Observation::ExchangeSeries {
                room,
                master,
                window,
                occurrences,
            } => self.exchange_listing(room, Some(master), window, occurrences),
            Observation::ExchangePass {
                room,
                window,
                items,
            } => self.exchange_listing(room, None, window, items),
            Observation::TopdeskChanged(item) => {
                self.topdesk_item(item);
            }
            Observation::TopdeskRemoved { id, reason } => self.topdesk_removed(id, *reason),
            Observation::TopdeskConflicting { id, reason } => self.topdesk_conflicting(id, reason),
            Observation::TopdeskPass { window, items } => self.topdesk_pass(window, items),
            Observation::PersonResolved { email, person } => self.person_resolved(email, person),
            Observation::EffectSucceeded { effect, outcome } => self.succeeded(effect, outcome),
            Observation::EffectFailed { effect, failure } => self.failed(effect, failure),
            Observation::Tick => self.tick(),
            Observation::AdminRetry { match_id } => self.admin_retry(match_id),
            Observation::AdminConfirmRemoval { match_id } => self.admin_confirm(match_id),
        }
    }

    // ----- booking access -------------------------------------------------------------

    fn booking(&self, id: &OrbMatchId) -> Option<&Booking> {
        self.overlay
            .get(id)
            .map(|b| &**b)
            .or_else(|| self.state.booking(id))
    }

    fn take(&mut self, id: &OrbMatchId) -> Option<Box<Booking>> {
        self.overlay
            .remove(id)
            .or_else(|| self.state.booking(id).map(|b| Box::new(b.clone())))
    }

    fn put(&mut self, booking: impl Into<Box<Booking>>) {
        let mut booking = booking.into();
        if self.state.booking(&booking.match_id) == Some(&*booking) {
            // Unchanged: nothing to store.
            return;
        }
        booking.meta.correlation = self.plan.correlation.clone();
        self.overlay.insert(booking.match_id.clone(), booking);
    }

    fn note(&mut self, note: Note) {
        self.plan.notes.push(note);
    }

    fn emit(&mut self, match_id: Option<&OrbMatchId>, kind: EffectKind) {
        self.plan.effects.push(Effect {
            correlation: self.plan.correlation.clone(),
            match_id: match_id.cloned(),
            kind,
        });
    }

    fn person(&self, email: &EmailAddress) -> Option<&PersonEntry> {
        self.plan
            .persons
            .get(email)
            .or_else(|| self.state.person(email))
    }

    /// Every booking id known to the state or created in this run, in order.
    fn all_ids(&self) -> BTreeSet<OrbMatchId> {
        self.state
            .bookings()
            .map(|b| b.match_id.clone())
            .chain(self.overlay.keys().cloned())
            .collect()
    }

    // ----- Exchange observations ------------------------------------------------------

    /// Handles one room copy; returns the booking it belongs to, if any.
    fn exchange_item(&mut self, item: &ExchangeItem) -> Option<OrbMatchId> {
        if !self.cfg.rooms.is_managed(&item.room) {
            self.note(Note::Ignored {
                reason: "room is not managed",
            });
            return None;
        }
        let content = self.ingest_exchange(item);
        let id = match self.find_exchange(item) {
            Some(id) => id,
            None => {
                // A copy that may be orb's own new event waits for the create's outcome,
                // whose iCalUId tells: content proves nothing (a user may have edited the
                // event already, or booked an identical meeting), and a copy made a
                // booking of its own would duplicate orb's event.
                let owner = self
                    .own_creates_pending(&content)
                    .into_iter()
                    .next()
                    .or_else(|| self.own_create_unconfirmed(item));
                match owner {
                    Some(owner) => {
                        self.hold(&owner, item);
                        return None;
                    }
                    None => return self.new_exchange_booking(item, content),
                }
            }
        };
        let mut b = self.take(&id)?;
        if b.exchange.retired.iter().any(|r| relocation_echo(r, item)) {
            // orb deletes that event itself (relocation to another calendar): whatever
            // the room reports of its copy — updated, cancelled — and whenever, before or
            // after the outcome of orb's cancel call, it is the echo of that deletion.
            // Not `seen` either: a pass must still miss the booking's current copy.
            // A copy of the same meeting under a new id is not that copy: the room was
            // invited again, a user's act (looked at below as any copy that comes back).
            self.put(b);
            self.note(Note::Ignored {
                reason: "copy of an event orb replaced (echo of a relocation)",
            });
            return None;
        }
        let x = &b.exchange;
        let current = x.room_copy.as_ref() == Some(&item.event_id)
            || (x.room.as_ref() == Some(&item.room) && x.ical_uid.as_ref() == Some(&item.ical_uid));
        let linkable = x.room_copy.is_none()
            && (x.ical_uid.is_none() || x.ical_uid.as_ref() == Some(&item.ical_uid))
            && !x.retired.iter().any(|r| retired_matches(r, item));
        if !current && !linkable {
            // A copy orb stopped following shows up again: an echo of orb's own move
            // unless a user changed it after orb let go (then it is a booking again).
            // A key that is neither current nor retired was linked by content to the
            // wrong create (identical meetings); it is a booking of its own.
            let retired = x.retired.iter().find(|r| retired_matches(r, item));
            let revived = retired.is_none_or(|r| !item.cancelled && item.modified_at > r.at);
            // Made before orb moved the meeting to another room, reported late: a user's
            // edit of the same meeting, concurrent with the change orb is carrying over.
            // Its other fields count as Exchange's (the conflict policy decides fields
            // both sides changed). The room it shows is the one before the move, which
            // the Exchange side's view still holds — or has passed, and then the report
            // is stale.
            // So is an edit made while orb's move is still in flight: the move has not
            // happened (or not been confirmed) yet, the copy is still the meeting's.
            let moving = |r: &RetiredCopy| {
                // orb is moving the meeting away from the copy's room and no write has
                // confirmed it yet (the Exchange view still shows that room).
                let unconfirmed = !r.superseded
                    && x.room.as_ref() != Some(&r.room)
                    && x.base.as_ref().is_some_and(|c| c.room == r.room);
                unconfirmed
                    || x.in_flight
                        .as_ref()
                        .is_some_and(|f| f.undo.as_ref() == Some(r))
            };
            // And so is a report older than orb's latest view of the meeting (the move
            // was seen done, this edit was made before it happened).
            let older = x.modified_at.is_some_and(|seen| item.modified_at < seen);
            let late_edit = retired.is_some_and(|r| {
                !item.cancelled && (item.modified_at <= r.at || older || moving(r))
            }) && x.ical_uid.as_ref() == Some(&item.ical_uid);
            if late_edit {
                self.merge(&mut b, Side::Exchange, content, Some(item.modified_at));
                self.drive(&mut b);
                self.put(b);
                return Some(id);
            }
            self.put(b);
            if revived {
                return self.new_exchange_booking(item, content);
            }
            self.note(Note::Ignored {
                reason: "copy orb stopped following (echo of a move)",
            });
            return Some(id);
        }
        let x = &b.exchange;
        let reinvited = b.desired.cancelled
            && b.meta.last_updated_by == Side::Exchange
            && !item.cancelled
            && x.room_copy.as_ref() != Some(&item.event_id)
            && x.modified_at.is_none_or(|seen| item.modified_at > seen);
        if reinvited {
            // The meeting left this room (or its booking was cancelled) and the room is
            // invited again: a new copy, newer than anything orb saw. The ended booking
            // stays final — driving it would cancel the user's meeting — and the new copy
            // is a booking of its own.
            self.put(b);
            return self.new_exchange_booking(item, content);
        }
        let x = &b.exchange;
        let stale_retired = x.room_copy.as_ref() != Some(&item.event_id)
            && x.retired.iter().any(|r| retired_matches(r, item))
            && x.modified_at.is_some_and(|seen| item.modified_at < seen);
        if stale_retired {
            // A late report of a copy a move of orb's replaced (the meeting came back to
            // its room since): older than what orb knows, and its removal is on its way.
            // Following it again would read that removal as a cancellation.
            self.put(b);
            self.note(Note::Ignored {
                reason: "copy orb stopped following (echo of a move)",
            });
            return Some(id);
        }
        let x = &mut b.exchange;
        if x.declined.as_ref() != Some(&item.event_id) {
            // Another copy: the room holds the meeting again.
            x.declined = None;
        }
        x.room = Some(item.room.clone());
        x.room_copy = Some(item.event_id.clone());
        x.ical_uid = Some(item.ical_uid.clone());
        b.private = item.private;
        release_hold(&mut b, Side::Exchange, item.cancelled);
        self.merge(&mut b, Side::Exchange, content, Some(item.modified_at));
        self.drive(&mut b);
        self.put(b);
        Some(id)
    }

    fn ingest_exchange(&self, item: &ExchangeItem) -> Content {
        let subject = if item.private {
            None
        } else {
            self.carried_subject(item.subject.as_deref())
        };
        Content {
            room: item.room.clone(),
            start: item.start,
            end: item.end,
            subject,
            organizer: item.organizer.clone(),
            attendees: Arc::from(item.required_attendees.as_slice()),
            cancelled: item.cancelled,
        }
    }

    fn carried_subject(&self, subject: Option<&str>) -> Option<Arc<str>> {
        let subject = subject?.trim();
        // Our own stand-in coming back is "no subject", not a user's subject.
        (self.cfg.carry_subject && !subject.is_empty() && subject != self.cfg.neutral_subject)
            .then(|| Arc::from(subject))
    }

    fn find_exchange(&self, item: &ExchangeItem) -> Option<OrbMatchId> {
        // Index keys are never removed, so a hit in the state is final; the plan's own
        // bookings only need a scan for keys added in this run.
        if let Some(id) = self
            .state
            .by_room_copy(&item.event_id)
            .or_else(|| self.state.by_uid(&item.room, &item.ical_uid))
        {
            return Some(id.clone());
        }
        let current = |b: &Booking| {
            let x = &b.exchange;
            x.room_copy.as_ref() == Some(&item.event_id)
                || (x.room.as_ref() == Some(&item.room)
                    && x.ical_uid.as_ref() == Some(&item.ical_uid))
        };
        // Live bookings first, as in the state's index.
        let in_plan = self
            .overlay
            .values()
            .find(|b| !b.desired.cancelled && current(b))
            .or_else(|| self.overlay.values().find(|b| current(b)))
            .or_else(|| {
                self.overlay
                    .values()
                    .find(|b| b.exchange.retired.iter().any(|r| retired_matches(r, item)))
            });
        if let Some(b) = in_plan {
            return Some(b.match_id.clone());
        }
        // orb's extended property, when the service could read it on the room copy.
        if let Some(id) = &item.orb_match_id
            && self.booking(id).is_some()
        {
            return Some(id.clone());
        }
        None
    }

    /// Bookings awaiting their own event ([`Booking::awaits_own_event`]) whose create
    /// wrote exactly `content`: the first candidates to hold a copy for (the room copy's
    /// notification may beat the create's HTTP response).
    fn own_creates_pending(&self, content: &Content) -> Vec<OrbMatchId> {
        let mut ids: Vec<OrbMatchId> = self
            .overlay
            .keys()
            .chain(self.state.pending_exchange_creates())
            .filter(|id| {
                self.booking(id).is_some_and(|b| {
                    let x = &b.exchange;
                    // What the event holds: what the first create wrote (a repeat sends
                    // the same), also while a failed create waits for its retry.
                    let written = x.unconfirmed_create.as_ref().or_else(|| {
                        x.in_flight
                            .as_ref()
                            .filter(|f| f.op == Op::Create)
                            .and_then(|f| f.target.as_ref())
                    });
                    x.ical_uid.is_none() && b.awaits_own_event() && written == Some(content)
                })
            })
            .cloned()
            .collect();
        ids.dedup();
        ids
    }

    /// A booking whose Exchange event orb created but does not know yet
    /// ([`Booking::awaits_own_event`]) and whose room copy `item` may be: same room, and
    /// the organizer is the calendar orb wrote to (orb's event shows its owner as
    /// organizer; a user's edit does not change that). orb creates single events only.
    fn own_create_unconfirmed(&self, item: &ExchangeItem) -> Option<OrbMatchId> {
        if item.series.is_some() {
            return None;
        }
        let mut ids: Vec<&OrbMatchId> = self
            .overlay
            .keys()
            .chain(self.state.pending_exchange_creates())
            .collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .find(|id| {
                self.booking(id).is_some_and(|b| {
                    b.awaits_own_event()
                        && b.exchange.room.as_ref() == Some(&item.room)
                        && b.exchange.calendar.as_ref() == Some(&item.organizer)
                })
            })
            .cloned()
    }

    /// Keeps a room copy on the booking whose create may have made it, until that
    /// create's outcome decides (see [`crate::ExchangeLink::held`]). A later report of
    /// the same copy replaces an older one.
    fn hold(&mut self, owner: &OrbMatchId, item: &ExchangeItem) {
        if let Some(mut b) = self.take(owner) {
            let held = &mut b.exchange.held;
            match held.iter_mut().find(|h| h.event_id == item.event_id) {
                Some(h) => {
                    if item.modified_at >= h.modified_at {
                        *h = item.clone();
                    }
                }
                None => held.push(item.clone()),
            }
            self.put(b);
        }
        self.note(Note::Ignored {
            reason: "awaiting the outcome of orb's own create",
        });
    }

    /// Once a booking knows its own event (or no longer waits for a create), the copies
    /// held for it are looked at again: the one with its `iCalUId` links to it, others
    /// are whatever they are. Runs after each observation; only bookings changed in this
    /// run can have stopped waiting. (An outcome links its copy before driving on, see
    /// [`Run::succeeded`].)
    fn release_held(&mut self) {
        let done = |b: &Booking| !b.exchange.held.is_empty() && !b.awaits_own_event();
        while let Some(id) = self
            .overlay
            .values()
            .find(|b| done(b))
            .map(|b| b.match_id.clone())
        {
            let Some(mut b) = self.take(&id) else { return };
            let held = std::mem::take(&mut b.exchange.held);
            self.put(b);
            self.replay_held(&held);
        }
    }

    fn replay_held(&mut self, held: &[ExchangeItem]) {
        for item in held {
            if item.cancelled {
                // Removed while held: a removal of a copy orb follows is a cancellation;
                // one of a copy orb never followed is nothing.
                let known = self.find_exchange(item).is_some();
                if known {
                    self.exchange_removed(&item.room, &item.event_id, Removal::Deleted);
                }
            } else {
                self.exchange_item(item);
            }
        }
    }

    fn new_exchange_booking(
        &mut self,
        item: &ExchangeItem,
        content: Content,
    ) -> Option<OrbMatchId> {
        if item.cancelled {
            self.note(Note::Ignored {
                reason: "cancelled item orb never knew",
            });
            return None;
        }
        if !self.within_horizon(&content) {
            return None;
        }
        let mut match_id = OrbMatchId::for_exchange(&item.room, &item.ical_uid);
        if self.booking(&match_id).is_some() {
            // The key belongs to a booking that moved away; this copy is a new booking.
            match_id = OrbMatchId::for_exchange_copy(&item.room, &item.ical_uid, &item.event_id);
        }
        let calendar = match self.cfg.mode {
            SyncMode::Organizer => item.organizer.clone(),
            SyncMode::RoomOnly => item.room.to_email(),
        };
        let appointment = match &item.series {
            Some(s) => Appointment::ExchangeOccurrence {
                master: s.master.clone(),
                original_start: s.original_start,
            },
            None => Appointment::Single,
        };
        let mut b = Booking {
            match_id: match_id.clone(),
            desired: content.clone(),
            private: item.private,
            appointment,
            exchange: ExchangeLink {
                room: Some(item.room.clone()),
                room_copy: Some(item.event_id.clone()),
                ical_uid: Some(item.ical_uid.clone()),
                event: None,
                calendar: Some(calendar),
                orb_created: false,
                generation: 0,
                base: Some(content.clone()),
                modified_at: Some(item.modified_at),
                in_flight: None,
                attempts: 0,
                retired: Vec::new(),
                held: Vec::new(),
                unconfirmed_create: None,
                declined: None,
                status: SideStatus::InSync,
            },
            topdesk: empty_topdesk_link(),
            status: BookingStatus::Active,
            meta: self.new_meta(Side::Exchange, &content.organizer),
            next_seq: 1,
            retry_at: None,
            awaiting_person: None,
        };
        self.note(Note::NewBooking {
            match_id: match_id.clone(),
            side: Side::Exchange,
        });
        self.drive(&mut b);
        self.put(b);
        Some(match_id)
    }

    fn within_horizon(&mut self, content: &Content) -> bool {
        if content.end <= self.now {
            self.note(Note::Ignored {
                reason: "booking lies in the past",
            });
            return false;
        }
        if content.start > self.now + self.cfg.horizon {
            self.note(Note::Ignored {
                reason: "booking lies beyond the horizon",
            });
            return false;
        }
        true
    }

    fn new_meta(&self, side: Side, organizer: &EmailAddress) -> Bookkeeping {
        Bookkeeping {
            complexity_index: 0,
            created_at: self.now,
            processor_created: side,
            original_organizer: organizer.clone(),
            last_updated_at: self.now,
            last_updated_by: side,
            failed_at: None,
            failed_by: None,
            failed_count: 0,
            retry_count: 0,
            conflicts: 0,
            correlation: self.plan.correlation.clone(),
        }
    }

    fn exchange_removed(&mut self, room: &RoomMailbox, event_id: &GraphEventId, reason: Removal) {
        if reason == Removal::LeftWindow {
            self.note(Note::Ignored {
                reason: "left the window: not a cancellation",
            });
            return;
        }
        // A series master: every occurrence of it in this room is gone.
        let mut occurrences: BTreeSet<OrbMatchId> =
            self.state.by_master(event_id).cloned().collect();
        occurrences.extend(
            self.overlay
                .values()
                .filter(|b| matches!(&b.appointment, Appointment::ExchangeOccurrence { master, .. } if master == event_id))
                .map(|b| b.match_id.clone()),
        );
        if !occurrences.is_empty() {
            for id in occurrences {
                if let Some(mut b) = self.take(&id) {
                    if b.exchange.room.as_ref() == Some(room) {
                        self.side_deleted(&mut b, Side::Exchange);
                        self.drive(&mut b);
                    }
                    self.put(b);
                }
            }
            return;
        }
        let found = self
            .overlay
            .values()
            .find(|b| {
                b.exchange.room_copy.as_ref() == Some(event_id)
                    || b.exchange.retired.iter().any(|r| {
                        r.room_copy.as_ref() == Some(event_id) || r.event.as_ref() == Some(event_id)
                    })
            })
            .map(|b| b.match_id.clone())
            .or_else(|| self.state.by_room_copy(event_id).cloned());
        let Some(id) = found else {
            self.held_removed(room, event_id);
            return;
        };
        let Some(mut b) = self.take(&id) else { return };
        if b.exchange.room_copy.as_ref() == Some(event_id)
            && b.exchange.declined.as_ref() == Some(event_id)
        {
            self.note(Note::Ignored {
                reason: "copy the room declined for orb (echo of a decline)",
            });
        } else if b.exchange.room_copy.as_ref() == Some(event_id) {
            self.side_deleted(&mut b, Side::Exchange);
            self.drive(&mut b);
        } else if b.exchange.retired.iter().any(|r| {
            r.superseded
                && (r.room_copy.as_ref() == Some(event_id) || r.event.as_ref() == Some(event_id))
        }) {
            self.note(Note::Ignored {
                reason: "copy of an event orb replaced (echo of a relocation)",
            });
        } else {
            self.note(Note::Ignored {
                reason: "copy orb stopped following (echo of a move)",
            });
        }
        self.put(b);
    }

    /// A copy orb does not follow is gone: if it is held for a create's outcome, it is
    /// remembered as removed (the outcome may show it was orb's event, which a user then
    /// deleted).
    fn held_removed(&mut self, room: &RoomMailbox, event_id: &GraphEventId) {
        let owner = self
            .overlay
            .keys()
            .chain(self.state.pending_exchange_creates())
            .find(|id| {
                self.booking(id)
                    .is_some_and(|b| b.exchange.held.iter().any(|h| &h.event_id == event_id))
            })
            .cloned();
        let Some(mut b) = owner.and_then(|id| self.take(&id)) else {
            self.note(Note::Ignored {
                reason: "removal of an item orb does not know",
            });
            return;
        };
        for h in &mut b.exchange.held {
            if &h.event_id == event_id && &h.room == room {
                h.cancelled = true;
            }
        }
        self.put(b);
        self.note(Note::Ignored {
            reason: "awaiting the outcome of orb's own create",
        });
    }

    /// A side's item is gone: that is a cancellation seen on that side.
    fn side_deleted(&mut self, b: &mut Booking, side: Side) {
        self.side_deleted_at(b, side, None);
    }

    /// [`Run::side_deleted`] for an item that reports when it changed: an older report
    /// than the side's last known view is stale, not a cancellation.
    fn side_deleted_at(&mut self, b: &mut Booking, side: Side, modified_at: Option<Timestamp>) {
        let link_base = match side {
            Side::Exchange => b.exchange.base.clone(),
            Side::Topdesk => b.topdesk.base.clone(),
        };
        let mut gone = link_base.unwrap_or_else(|| self.projection(b, side));
        gone.cancelled = true;
        self.merge(b, side, gone, modified_at);
    }

    fn exchange_listing(
        &mut self,
        room: &RoomMailbox,
        master: Option<&GraphEventId>,
        window: &Window,
        items: &[ExchangeItem],
    ) {
        let mut seen = BTreeSet::new();
        for item in items.iter().filter(|i| &i.room == room) {
            if let Some(id) = self.exchange_item(item) {
                seen.insert(id);
            }
        }
        let in_scope = |b: &Booking| {
            b.exchange.room.as_ref() == Some(room)
                && match master {
                    Some(m) => {
                        matches!(&b.appointment, Appointment::ExchangeOccurrence { master, .. } if master == m)
                    }
                    None => true,
                }
        };
        let candidates: Vec<OrbMatchId> = match master {
            // Only the series' own occurrences can be missing from its expansion.
            Some(m) => {
                let known: Vec<OrbMatchId> = self.state.by_master(m).cloned().collect();
                let new = self
                    .overlay
                    .keys()
                    .filter(|id| self.state.booking(id).is_none())
                    .cloned();
                known.iter().cloned().chain(new).collect()
            }
            None => self.all_ids().into_iter().collect(),
        };
        let (live, missing) = self.missing(Side::Exchange, window, &seen, candidates, in_scope);
        // An explicit series expansion is Exchange's own word on that series; the guard
        // protects against incomplete whole-calendar passes.
        self.remove_missing(Side::Exchange, room, master.is_none(), live, missing);
    }

    /// Bookings of one side in scope and window: how many are live, and which live ones
    /// a listing did not show.
    fn missing(
        &self,
        side: Side,
        window: &Window,
        seen: &BTreeSet<OrbMatchId>,
        candidates: Vec<OrbMatchId>,
        in_scope: impl Fn(&Booking) -> bool,
    ) -> (usize, Vec<OrbMatchId>) {
        let mut live = 0;
        let mut missing = Vec::new();
        for id in candidates {
            let Some(b) = self.booking(&id) else { continue };
            let (base, in_flight) = match side {
                Side::Exchange => (&b.exchange.base, &b.exchange.in_flight),
                Side::Topdesk => (&b.topdesk.base, &b.topdesk.in_flight),
            };
            let Some(base) = base else { continue };
            if base.cancelled || b.desired.cancelled || !window.contains(base.start) || !in_scope(b)
            {
                continue;
            }
            live += 1;
            // A copy the room declined for orb may have left the room's calendar.
            let declined = side == Side::Exchange
                && b.exchange.declined.is_some()
                && b.exchange.declined == b.exchange.room_copy;
            // A write in flight may not be visible to the listing yet.
            if !seen.contains(&id) && in_flight.is_none() && !declined {
                missing.push(id);
            }
        }
        (live, missing)
    }

    fn remove_missing(
        &mut self,
        side: Side,
        room: &RoomMailbox,
        guarded: bool,
        live: usize,
        missing: Vec<OrbMatchId>,
    ) {
        if missing.is_empty() {
            return;
        }
        let guard = self.cfg.mass_cancel;
        let held = guarded
            && missing.len() >= guard.min_bookings
            && missing.len() * 100 > usize::from(guard.max_share_percent) * live;
        if held {
            self.emit(
                None,
                EffectKind::HoldRemovals {
                    room: room.clone(),
                    side,
                    held: missing.len(),
                    total: live,
                },
            );
        }
        for id in missing {
            let Some(mut b) = self.take(&id) else {
                continue;
            };
            if held {
                b.status = BookingStatus::HeldRemoval { side };
            } else {
                self.side_deleted(&mut b, side);
                self.drive(&mut b);
            }
            self.put(b);
        }
    }

    // ----- TOPdesk observations -------------------------------------------------------

    fn topdesk_item(&mut self, item: &TopdeskItem) -> Option<OrbMatchId> {
        let holds = |b: &Booking| {
            b.topdesk.reservation.as_ref() == Some(&item.id) || b.topdesk.retired.contains(&item.id)
        };
        // Live bookings first, as in the state's index.
        let found = self
            .overlay
            .values()
            .find(|b| !b.desired.cancelled && holds(b))
            .or_else(|| self.overlay.values().find(|b| holds(b)))
            .map(|b| b.match_id.clone())
            .or_else(|| self.state.by_reservation(&item.id).cloned())
            .or_else(|| {
                let id = IdempotencyKey::match_id(item.external_link.as_deref()?)?;
                self.booking(&id).map(|b| b.match_id.clone())
            });
        let Some(id) = found else {
            return self.new_topdesk_booking(item);
        };
        let mut b = self.take(&id)?;
        match &b.topdesk.reservation {
            Some(current) if current == &item.id => {}
            None if !b.topdesk.retired.contains(&item.id) => {
                b.topdesk.reservation = Some(item.id.clone());
            }
            _ => {
                self.put(b);
                self.note(Note::Ignored {
                    reason: "reservation orb stopped following",
                });
                return Some(id);
            }
        }
        let t = &b.topdesk;
        // Ended by TOPdesk itself (not by orb's cancel of a change from Exchange, which
        // records no modification time, so a late report could look newer).
        let returned = b.desired.cancelled
            && b.meta.last_updated_by == Side::Topdesk
            && !item.cancelled
            && t.in_flight.is_none()
            && t.base.as_ref().is_some_and(|c| c.cancelled)
            && t.modified_at.is_none_or(|seen| item.modified_at > seen)
            && self.cfg.rooms.room(&item.location).is_some();
        if returned {
            // The booking ended when the reservation left the managed rooms (TOPdesk
            // never cancelled it); now it is back. The ended booking stays final —
            // driving it would cancel the user's reservation — and the reservation is a
            // booking of its own again.
            self.put(b);
            return self.new_topdesk_booking(item);
        }
        release_hold(&mut b, Side::Topdesk, item.cancelled);
        // A reservation without a requester e-mail shows no requester change.
        let fallback = self.projection(&b, Side::Topdesk).organizer;
        match self.ingest_topdesk(item, Some(&fallback)) {
            Some(content) => {
                self.merge(&mut b, Side::Topdesk, content, Some(item.modified_at));
                self.clear_mark(&mut b, item);
            }
            // Moved to a location orb does not manage: for orb the room is no longer
            // booked. A late report from before the reservation came to a managed room
            // is stale, not a move out.
            None => self.side_deleted_at(&mut b, Side::Topdesk, Some(item.modified_at)),
        }
        self.drive(&mut b);
        self.put(b);
        Some(id)
    }

    fn ingest_topdesk(
        &self,
        item: &TopdeskItem,
        fallback: Option<&EmailAddress>,
    ) -> Option<Content> {
        let room = self.cfg.rooms.room(&item.location)?.clone();
        let organizer = item
            .requester_email
            .clone()
            .or_else(|| fallback.cloned())
            .or_else(|| self.cfg.default_requester.clone())
            .unwrap_or_else(|| room.to_email());
        Some(Content {
            start: item.start,
            end: item.end,
            subject: self.carried_subject(item.subject.as_deref()),
            organizer,
            attendees: Arc::from([]),
            cancelled: item.cancelled,
            room,
        })
    }

    fn new_topdesk_booking(&mut self, item: &TopdeskItem) -> Option<OrbMatchId> {
        let Some(content) = self.ingest_topdesk(item, None) else {
            self.note(Note::Ignored {
                reason: "location is not managed",
            });
            return None;
        };
        if item.cancelled {
            self.note(Note::Ignored {
                reason: "cancelled item orb never knew",
            });
            return None;
        }
        if !self.within_horizon(&content) {
            return None;
        }
        let mut match_id = OrbMatchId::for_topdesk(&item.id);
        if self.booking(&match_id).is_some() {
            // The key belongs to the booking that ended when the reservation left the
            // managed rooms.
            match_id = OrbMatchId::for_topdesk_return(&item.id, &item.modified_at.to_string());
        }
        let appointment = match &item.series {
            Some(series) => Appointment::TopdeskSeries(series.clone()),
            None => Appointment::Single,
        };
        let mut b = Booking {
            match_id: match_id.clone(),
            desired: content.clone(),
            private: false,
            appointment,
            exchange: ExchangeLink {
                room: None,
                room_copy: None,
                ical_uid: None,
                event: None,
                calendar: None,
                orb_created: true,
                generation: 0,
                base: None,
                modified_at: None,
                in_flight: None,
                attempts: 0,
                retired: Vec::new(),
                held: Vec::new(),
                unconfirmed_create: None,
                declined: None,
                status: SideStatus::Unknown,
            },
            topdesk: TopdeskLink {
                reservation: Some(item.id.clone()),
                base: Some(content.clone()),
                modified_at: Some(item.modified_at),
                status: SideStatus::InSync,
                ..empty_topdesk_link()
            },
            status: BookingStatus::Active,
            meta: self.new_meta(Side::Topdesk, &content.organizer),
            next_seq: 1,
            retry_at: None,
            awaiting_person: None,
        };
        self.note(Note::NewBooking {
            match_id: match_id.clone(),
            side: Side::Topdesk,
        });
        self.drive(&mut b);
        self.put(b);
        Some(match_id)
    }

    fn topdesk_removed(&mut self, id: &TopdeskReservationId, reason: Removal) {
        if reason == Removal::LeftWindow {
            self.note(Note::Ignored {
                reason: "left the window: not a cancellation",
            });
            return;
        }
        let found = self
            .overlay
            .values()
            .find(|b| b.topdesk.reservation.as_ref() == Some(id))
            .map(|b| b.match_id.clone())
            .or_else(|| self.state.by_reservation(id).cloned());
        let Some(mut b) = found.and_then(|m| self.take(&m)) else {
            self.note(Note::Ignored {
                reason: "removal of an item orb does not know",
            });
            return;
        };
        if b.topdesk.reservation.as_ref() == Some(id) {
            self.side_deleted(&mut b, Side::Topdesk);
            self.drive(&mut b);
        } else {
            self.note(Note::Ignored {
                reason: "reservation orb stopped following",
            });
        }
        self.put(b);
    }

    /// TOPdesk accepted the reservation but marks it conflicting. Handled like a
    /// refusal: the Exchange side is told, the booking shows the conflict and is not
    /// written to TOPdesk again until one side changes it (`Run::merge` then makes it
    /// active again) or TOPdesk lists it unmarked (`Run::clear_mark`). Unlike a refusal the reservation exists and stays linked, so that
    /// later change updates (or cancels) it instead of creating another one.
    fn topdesk_conflicting(&mut self, id: &TopdeskReservationId, reason: &Arc<str>) {
        let found = self
            .overlay
            .values()
            .find(|b| b.topdesk.reservation.as_ref() == Some(id) || b.topdesk.retired.contains(id))
            .map(|b| b.match_id.clone())
            .or_else(|| self.state.by_reservation(id).cloned());
        let Some(mut b) = found.and_then(|m| self.take(&m)) else {
            self.note(Note::Ignored {
                reason: "conflict on a reservation orb does not know",
            });
            return;
        };
        let ignored = if b.topdesk.reservation.as_ref() != Some(id) {
            Some("reservation orb stopped following")
        } else if b.desired.cancelled {
            Some("booking is cancelled: cancellation is final")
        } else {
            match &b.status {
                // Already told: repeated polls must not decline or mail again.
                BookingStatus::Conflict {
                    side: Side::Topdesk,
                    ..
                } => Some("conflict already known"),
                // An admin decides first; after an admin retry the next poll that still
                // shows the conflict is acted on.
                BookingStatus::Parked { .. } | BookingStatus::HeldRemoval { .. } => {
                    Some("booking awaits an admin")
                }
                BookingStatus::Active
                | BookingStatus::Conflict {
                    side: Side::Exchange,
                    ..
                } => None,
            }
        };
        if let Some(why) = ignored {
            self.put(b);
            self.note(Note::Ignored { reason: why });
            return;
        }
        // Counted like a refusal: the ORB failure fields show when TOPdesk objected.
        b.meta.failed_count += 1;
        b.meta.failed_at = Some(self.now);
        b.meta.failed_by = Some(Side::Topdesk);
        b.topdesk.status = SideStatus::Refused;
        b.status = BookingStatus::Conflict {
            side: Side::Topdesk,
            reason: reason.clone(),
        };
        self.tell_refused(&mut b, Side::Topdesk, reason);
        self.put(b);
    }

    /// TOPdesk lists the reservation holding what orb wrote, no longer marked conflicting
    /// (the other booking went away, or TOPdesk re-judged it): the conflict is over.
    /// A refused write is not cleared here — the reservation still shows the old content,
    /// which TOPdesk never objected to; [`Run::retry_freed_slots`] tries those again.
    fn clear_mark(&mut self, b: &mut Booking, item: &TopdeskItem) {
        let marked = matches!(
            b.status,
            BookingStatus::Conflict {
                side: Side::Topdesk,
                ..
            }
        );
        let t = &b.topdesk;
        let latest = t.modified_at.is_none_or(|seen| item.modified_at >= seen);
        if !marked
            || item.conflicting
            || item.cancelled
            || !latest
            || t.in_flight.is_some()
            || t.base.as_ref() != Some(&self.projection(b, Side::Topdesk))
        {
            return;
        }
        b.status = BookingStatus::Active;
        b.topdesk.status = SideStatus::InSync;
        self.note(Note::ConflictCleared {
            match_id: b.match_id.clone(),
            why: "TOPdesk no longer marks the reservation conflicting",
        });
    }

    /// Bookings of a room TOPdesk refused at a time another booking has now left
    /// (cancelled, rescheduled, moved to another room) are tried again: the reason for the
    /// refusal may be gone. A refusal that still holds is told again.
    fn retry_freed_slots(&mut self) {
        if self.freed.is_empty() {
            return;
        }
        let freed = std::mem::take(&mut self.freed);
        let refused = |b: &Booking| {
            matches!(
                b.status,
                BookingStatus::Conflict {
                    side: Side::Topdesk,
                    ..
                }
            )
        };
        let candidates: BTreeSet<OrbMatchId> = self
            .state
            .topdesk_conflicts()
            .cloned()
            .chain(
                self.overlay
                    .values()
                    .filter(|b| refused(b))
                    .map(|b| b.match_id.clone()),
            )
            .collect();
        for id in candidates {
            let Some(b) = self.booking(&id) else { continue };
            let d = &b.desired;
            let overlaps = freed.iter().any(|(by, slot)| {
                *by != id
                    && !slot.cancelled
                    && slot.room == d.room
                    && slot.start < d.end
                    && d.start < slot.end
            });
            // Only a write TOPdesk refused is re-attempted; a reservation TOPdesk holds
            // but marks conflicting clears when a poll shows it unmarked.
            let behind = b.topdesk.reservation.is_none()
                || b.topdesk.base.as_ref() != Some(&self.projection(b, Side::Topdesk));
            if !refused(b) || d.cancelled || b.topdesk.in_flight.is_some() || !overlaps || !behind {
                continue;
            }
            let Some(mut b) = self.take(&id) else {
                continue;
            };
            b.status = BookingStatus::Active;
            self.note(Note::ConflictCleared {
                match_id: id,
                why: "another booking left the refused time: trying again",
            });
            self.drive(&mut b);
            self.put(b);
        }
    }

    fn topdesk_pass(&mut self, window: &Window, items: &[TopdeskItem]) {
        let mut seen = BTreeSet::new();
        for item in items {
            if let Some(id) = self.topdesk_item(item) {
                seen.insert(id);
            }
        }
        let rooms: Vec<RoomMailbox> = self.cfg.rooms.mailboxes().cloned().collect();
        let all: Vec<OrbMatchId> = self.all_ids().into_iter().collect();
        for room in rooms {
            let (live, missing) = self.missing(Side::Topdesk, window, &seen, all.clone(), |b| {
                b.topdesk.base.as_ref().is_some_and(|c| c.room == room)
                    && b.topdesk.reservation.is_some()
            });
            self.remove_missing(Side::Topdesk, &room, true, live, missing);
        }
    }

    // ----- merging --------------------------------------------------------------------

    /// Merges what `side` now shows into the booking (three-way, against the side's
    /// previous view), applying the conflict policy where both sides moved a field.
    fn merge(
        &mut self,
        b: &mut Booking,
        side: Side,
        observed: Content,
        modified_at: Option<Timestamp>,
    ) {
        let id = b.match_id.clone();
        let other_modified = match side {
            Side::Exchange => b.topdesk.modified_at,
            Side::Topdesk => b.exchange.modified_at,
        };
        let target = self.projection(b, side);
        let link = match side {
            Side::Exchange => (
                &mut b.exchange.base,
                &mut b.exchange.modified_at,
                &b.exchange.in_flight,
            ),
            Side::Topdesk => (
                &mut b.topdesk.base,
                &mut b.topdesk.modified_at,
                &b.topdesk.in_flight,
            ),
        };
        let (base, seen_at, in_flight) = link;
        if let (Some(seen), Some(at)) = (*seen_at, modified_at)
            && at < seen
        {
            self.note(Note::Stale { match_id: id, side });
            return;
        }
        if modified_at.is_some() {
            *seen_at = modified_at;
        }
        let echo_of_write = in_flight
            .as_ref()
            .is_some_and(|f| f.target.as_ref() == Some(&observed));
        if base.as_ref() == Some(&observed) || echo_of_write {
            *base = Some(observed);
            self.note(Note::Echo { match_id: id, side });
            return;
        }
        // Without a previous view, the side was made from orb's projection.
        let previous = base
            .replace(observed.clone())
            .unwrap_or_else(|| target.clone());
        if b.desired.cancelled {
            if observed.cancelled {
                self.note(Note::Echo { match_id: id, side });
            } else {
                self.note(Note::Ignored {
                    reason: "booking is cancelled: cancellation is final",
                });
            }
            return;
        }
        let mut changed = Fields::diff(&previous, &observed);
        // Fields a side does not represent never flow from it.
        match side {
            Side::Topdesk => changed.remove(Fields::ATTENDEES),
            Side::Exchange => {
                if b.exchange.orb_created && self.cfg.mode == SyncMode::RoomOnly {
                    changed.remove(Fields::ORGANIZER);
                }
            }
        }
        let behind = Fields::diff(&previous, &target);
        let mut conflicts = Fields::empty();
        for field in Fields::ALL {
            if changed.contains(field)
                && behind.contains(field)
                && Fields::diff(&target, &observed).contains(field)
                && field != Fields::CANCELLED
            {
                conflicts.insert(field);
            }
        }
        let wins = match self.cfg.conflict_policy {
            ConflictPolicy::ExchangeWins => side == Side::Exchange,
            ConflictPolicy::TopdeskWins => side == Side::Topdesk,
            ConflictPolicy::LatestWins => match (modified_at, other_modified) {
                (Some(mine), Some(theirs)) => {
                    mine > theirs || (mine == theirs && side == Side::Exchange)
                }
                _ => true,
            },
        };
        let mut applied = Fields::empty();
        for field in Fields::ALL {
            if changed.contains(field) && (wins || !conflicts.contains(field)) {
                applied.insert(field);
            }
        }
        let leaves = [Fields::ROOM, Fields::TIME, Fields::CANCELLED];
        let refusals = self.state.topdesk_conflicts().next().is_some();
        if refusals && leaves.iter().any(|f| applied.contains(*f)) {
            // The old slot may be what TOPdesk refused another booking for. (A booking
            // refused within this very run cannot have been refused for it.)
            self.freed.push((id.clone(), b.desired.clone()));
        }
        for field in Fields::ALL {
            if !applied.contains(field) {
                continue;
            }
            let d = &mut b.desired;
            match field {
                Fields::ROOM => d.room = observed.room.clone(),
                Fields::TIME => {
                    d.start = observed.start;
                    d.end = observed.end;
                }
                Fields::SUBJECT => d.subject = observed.subject.clone(),
                Fields::ORGANIZER => d.organizer = observed.organizer.clone(),
                Fields::ATTENDEES => d.attendees = observed.attendees.clone(),
                _ => d.cancelled = observed.cancelled,
            }
        }
        if !conflicts.is_empty() {
            b.meta.conflicts += 1;
            self.note(Note::Conflict {
                match_id: id.clone(),
                fields: conflicts,
                winner: if wins { side } else { side.other() },
            });
        }
        if applied.is_empty() {
            return;
        }
        b.meta.complexity_index += 1;
        b.meta.last_updated_at = self.now;
        b.meta.last_updated_by = side;
        if matches!(b.status, BookingStatus::Conflict { .. }) {
            // A new change is a new attempt at a booking the far side refused.
            b.status = BookingStatus::Active;
        }
        self.note(Note::Changed {
            match_id: id,
            side,
            fields: applied,
        });
    }

    /// What `side` shows when it agrees with `desired`.
    fn projection(&self, b: &Booking, side: Side) -> Content {
        let mut c = b.desired.clone();
        match side {
            Side::Exchange => {
                // Room-only mode writes the room's own calendar and cannot change who
                // organizes a meeting: orb's own events show the room, a user's meeting
                // its organizer (a requester changed in TOPdesk moves nothing in
                // Exchange).
                if self.cfg.mode == SyncMode::RoomOnly {
                    if b.exchange.orb_created {
                        c.organizer = c.room.to_email();
                    } else if let Some(seen) = &b.exchange.base {
                        c.organizer = seen.organizer.clone();
                    }
                }
            }
            Side::Topdesk => {
                c.attendees = Arc::from([]);
                c.organizer = match self.requester(b) {
                    Requester::Ready(email, _)
                    | Requester::LookUp(email)
                    | Requester::Wait(email) => email,
                };
            }
        }
        c
    }

    /// The TOPdesk requester: the delegate rule's choice, else the default requester,
    /// else the choice without a person (the booking is never dropped).
    fn requester(&self, b: &Booking) -> Requester {
        let d = &b.desired;
        let wanted = match self.cfg.delegates.get(&d.organizer) {
            None | Some(DelegateRule::Organizer) => &d.organizer,
            Some(DelegateRule::Principal(principal)) => principal,
            Some(DelegateRule::FirstRequiredAttendee) => {
                d.attendees.first().unwrap_or(&d.organizer)
            }
        };
        let candidates = std::iter::once(wanted).chain(
            self.cfg
                .default_requester
                .as_ref()
                .filter(|default| *default != wanted),
        );
        for email in candidates {
            match self.person(email) {
                Some(PersonEntry::Found(person)) => {
                    return Requester::Ready(email.clone(), Some(person.clone()));
                }
                Some(PersonEntry::NotFound) => {}
                Some(PersonEntry::Pending(since))
                    if self.now < *since + self.cfg.in_flight_timeout =>
                {
                    return Requester::Wait(email.clone());
                }
                Some(PersonEntry::Pending(_)) | None => return Requester::LookUp(email.clone()),
            }
        }
        Requester::Ready(wanted.clone(), None)
    }

    // ----- driving writes -------------------------------------------------------------

    /// Issues the writes that bring each side to the desired content.
    fn drive(&mut self, b: &mut Booking) {
        let refused = match &b.status {
            BookingStatus::Active => None,
            BookingStatus::Conflict { side, .. } => Some(*side),
            BookingStatus::Parked { .. } | BookingStatus::HeldRemoval { .. } => return,
        };
        if let Some(at) = b.retry_at {
            if at > self.now {
                return;
            }
            b.retry_at = None;
            b.meta.retry_count += 1;
        }
        for side in [Side::Topdesk, Side::Exchange] {
            if refused != Some(side) {
                self.drive_side(b, side);
            }
        }
    }

    fn drive_side(&mut self, b: &mut Booking, side: Side) {
        let in_flight = match side {
            Side::Exchange => &mut b.exchange.in_flight,
            Side::Topdesk => &mut b.topdesk.in_flight,
        };
        if let Some(f) = in_flight {
            if self.now >= f.since + self.cfg.in_flight_timeout {
                // The outcome never came: execute the very same effect again (same id,
                // same idempotency key, same content), so whichever execution answers
                // is accepted and describes what the side holds.
                f.since = self.now;
                let effect = (*f.effect).clone();
                let match_id = b.match_id.clone();
                self.emit(Some(&match_id), effect);
            }
            return;
        }
        match side {
            Side::Topdesk => self.drive_topdesk(b),
            Side::Exchange => self.drive_exchange(b),
        }
    }

    /// Issues a write: records it as in flight on `side` and emits it.
    fn issue(
        &mut self,
        b: &mut Booking,
        side: Side,
        op: Op,
        target: Option<Content>,
        build: impl FnOnce(EffectId) -> EffectKind,
    ) {
        let seq = b.next_seq;
        b.next_seq += 1;
        let effect = build(EffectId {
            match_id: b.match_id.clone(),
            side,
            seq,
        });
        self.emit(Some(&b.match_id), effect.clone());
        let flight = Some(InFlight {
            seq,
            op,
            target,
            since: self.now,
            effect: Box::new(effect),
            undo: None,
        });
        match side {
            Side::Exchange => {
                b.exchange.in_flight = flight;
                b.exchange.status = SideStatus::Writing;
            }
            Side::Topdesk => {
                b.topdesk.in_flight = flight;
                b.topdesk.status = SideStatus::Writing;
            }
        }
    }

    fn drive_topdesk(&mut self, b: &mut Booking) {
        let exists = b.topdesk.reservation.is_some();
        let base_cancelled = b.topdesk.base.as_ref().is_some_and(|c| c.cancelled);
        if b.desired.cancelled {
            if let (Some(id), false) = (b.topdesk.reservation.clone(), base_cancelled) {
                self.issue(b, Side::Topdesk, Op::Cancel, None, |effect| {
                    EffectKind::CancelReservation { effect, id }
                });
            }
            return;
        }
        let (email, person) = match self.requester(b) {
            Requester::Ready(email, person) => (email, person),
            Requester::LookUp(email) => {
                self.plan
                    .persons
                    .insert(email.clone(), PersonEntry::Pending(self.now));
                self.emit(
                    None,
                    EffectKind::LookUpPerson {
                        email: email.clone(),
                    },
                );
                b.awaiting_person = Some(email);
                return;
            }
            Requester::Wait(email) => {
                b.awaiting_person = Some(email);
                return;
            }
        };
        b.awaiting_person = None;
        let target = self.projection(b, Side::Topdesk);
        if exists && b.topdesk.base.as_ref() == Some(&target) {
            b.topdesk.status = SideStatus::InSync;
            return;
        }
        let Some(location) = self.cfg.rooms.location(&target.room).cloned() else {
            // Unreachable in practice: desired rooms come from managed rooms only.
            return;
        };
        let reservation = ReservationWrite {
            location,
            room: target.room.clone(),
            requester: person.clone(),
            requester_email: email,
            start: target.start,
            end: target.end,
            subject: target
                .subject
                .clone()
                .unwrap_or_else(|| Arc::from(self.cfg.neutral_subject.as_str())),
        };
        b.topdesk.requester = person;
        let match_id = b.match_id.clone();
        match b.topdesk.reservation.clone() {
            Some(id) => {
                self.issue(b, Side::Topdesk, Op::Update, Some(target), |effect| {
                    EffectKind::UpdateReservation {
                        effect,
                        id,
                        reservation,
                    }
                });
            }
            None => {
                let key = IdempotencyKey::derive(&match_id, Side::Topdesk, b.topdesk.generation);
                self.issue(b, Side::Topdesk, Op::Create, Some(target), |effect| {
                    EffectKind::CreateReservation {
                        effect,
                        key,
                        reservation,
                    }
                });
            }
        }
    }

    /// The calendar the Exchange event belongs in.
    fn wanted_calendar(&self, b: &Booking) -> EmailAddress {
        match self.cfg.mode {
            SyncMode::Organizer => b.desired.organizer.clone(),
            // Room-only writes the room's own calendar; a room move is a relocation.
            SyncMode::RoomOnly => b.desired.room.to_email(),
        }
    }

    fn exchange_target(&self, b: &Booking) -> EventTarget {
        let x = &b.exchange;
        let calendar = x
            .calendar
            .clone()
            .unwrap_or_else(|| self.wanted_calendar(b));
        // A room copy's id changes whenever the room leaves and rejoins the meeting, so
        // a copy orb did not create is addressed by its iCalUId in the room calendar.
        EventTarget {
            event: x
                .event
                .clone()
                .filter(|_| x.orb_created || !in_room_calendar(x)),
            ical_uid: x.ical_uid.clone(),
            calendar,
        }
    }

    fn drive_exchange(&mut self, b: &mut Booking) {
        let x = &b.exchange;
        let exists = x.base.is_some() || x.event.is_some() || x.room_copy.is_some();
        let base_cancelled = x.base.as_ref().is_some_and(|c| c.cancelled);
        let match_id = b.match_id.clone();
        let unconfirmed =
            !exists && b.exchange.orb_created && b.exchange.unconfirmed_create.is_some();
        if b.desired.cancelled && !unconfirmed {
            if exists && !base_cancelled {
                let target = self.exchange_target(b);
                self.issue(b, Side::Exchange, Op::Cancel, None, |effect| {
                    EffectKind::CancelEvent { effect, target }
                });
            }
            return;
        }
        // Cancelled while a create's outcome is unknown: the event may exist. The create
        // is repeated as first sent (its idempotency key finds the event if it was made)
        // so that its outcome names the event, which is then cancelled.

        let mut calendar = self.wanted_calendar(b);
        if !exists
            && b.exchange.orb_created
            && let Some(previous) = &b.exchange.calendar
        {
            // A create was issued before and its outcome never came: repeat it in
            // the same calendar (that is where its transactionId deduplicates); a
            // changed organizer is handled by relocating once it is known.
            calendar = previous.clone();
        }
        let moved = b.exchange.calendar.as_ref().is_some_and(|c| c != &calendar);
        if exists && (moved || relocation_pending(&b.exchange)) {
            // Organizer changed: leave the old organizer's calendar first; the create in
            // the new one follows when the cancel succeeded. The old event is superseded
            // from this moment, so its copy's echoes (removal, cancellation, update) are
            // recognised whichever arrives first: they or the cancel's outcome.
            let target = self.exchange_target(b);
            let undo = self.retire_copy(b, true);
            self.issue(b, Side::Exchange, Op::Relocate, None, |effect| {
                EffectKind::CancelEvent { effect, target }
            });
            set_undo(b, undo);
            return;
        }
        let mut target = self.projection(b, Side::Exchange);
        if !exists && let Some(earlier) = &b.exchange.unconfirmed_create {
            // A create whose outcome never came is repeated unchanged: the event the
            // first call may have made holds that content, and it is what Exchange
            // answers with; later changes follow as updates once the event is known.
            target = earlier.clone();
        } else if !exists && self.cfg.mode == SyncMode::Organizer && target.organizer != calendar {
            // A create repeated in the previous organizer's calendar: the event shows that
            // organizer, so its room copy is recognised as orb's own; the relocation to
            // the new organizer follows its outcome.
            target.organizer = calendar.clone();
        }
        // A move that failed transiently may have happened: until a write confirms the
        // room, the meeting is written even if the Exchange view already shows the target.
        if exists
            && b.exchange.base.as_ref() == Some(&target)
            && b.exchange.room.as_ref() == Some(&target.room)
        {
            b.exchange.status = SideStatus::InSync;
            return;
        }
        let series = match &b.appointment {
            Appointment::TopdeskSeries(series) => Some(series.clone()),
            _ => None,
        };
        let mut event = EventWrite {
            room: target.room.clone(),
            replaces_room: None,
            attendees: target.attendees.clone(),
            start: target.start,
            end: target.end,
            subject: target.subject.clone(),
            match_id: match_id.clone(),
            series,
        };
        if exists {
            let event_target = self.exchange_target(b);
            let mut undo = None;
            if b.exchange.room.as_ref() != Some(&target.room) {
                // Room moved: the copy in the old room goes away, one in the new room
                // appears under the same iCalUId.
                event.replaces_room.clone_from(&b.exchange.room);
                undo = self.retire_copy(b, false);
                b.exchange.room = Some(target.room.clone());
            } else if let Some(seen) = b.exchange.base.as_ref().map(|c| &c.room)
                && b.exchange.room_copy.is_none()
                && seen != &target.room
            {
                // A move that failed transiently (and may have happened): the old room's
                // copy stays retired; the room is left again.
                event.replaces_room = Some(seen.clone());
            }
            self.issue(b, Side::Exchange, Op::Update, Some(target), |effect| {
                EffectKind::UpdateEvent {
                    effect,
                    target: event_target,
                    event,
                }
            });
            set_undo(b, undo);
        } else {
            event.subject = Some(
                target
                    .subject
                    .clone()
                    .unwrap_or_else(|| Arc::from(self.cfg.neutral_subject.as_str())),
            );
            let key = IdempotencyKey::derive(&match_id, Side::Exchange, b.exchange.generation);
            b.exchange.calendar = Some(calendar.clone());
            b.exchange.orb_created = true;
            b.exchange.room = Some(target.room.clone());
            b.exchange.unconfirmed_create = Some(target.clone());
            self.issue(b, Side::Exchange, Op::Create, Some(target), |effect| {
                EffectKind::CreateEvent {
                    effect,
                    key,
                    calendar,
                    event,
                }
            });
        }
    }

    /// Stops following the current room copy; its later echoes are recognised.
    /// `superseded`: orb deletes the whole event (relocation), so the copy is never
    /// followed again.
    fn retire_copy(&mut self, b: &mut Booking, superseded: bool) -> Option<RetiredCopy> {
        let x = &mut b.exchange;
        let room = x.room.clone()?;
        if superseded
            && x.room_copy.is_none()
            && let Some(earlier) = x
                .retired
                .iter()
                .find(|r| r.superseded && r.room == room && r.ical_uid == x.ical_uid)
        {
            // A relocation issued again after a retryable failure: the copy is already
            // retired (kept so, since the failed cancel may have happened after all).
            return Some(earlier.clone());
        }
        let retired = RetiredCopy {
            room,
            ical_uid: x.ical_uid.clone(),
            room_copy: x.room_copy.take(),
            event: x.event.clone(),
            superseded,
            at: self.now,
        };
        x.retired.push(retired.clone());
        Some(retired)
    }

    // ----- outcomes -------------------------------------------------------------------

    fn in_flight_for(&mut self, effect: &EffectId) -> Option<(Box<Booking>, InFlight)> {
        let Some(mut b) = self.take(&effect.match_id) else {
            self.note(Note::Ignored {
                reason: "outcome for an unknown booking",
            });
            return None;
        };
        let slot = match effect.side {
            Side::Exchange => &mut b.exchange.in_flight,
            Side::Topdesk => &mut b.topdesk.in_flight,
        };
        match slot.take_if(|f| f.seq == effect.seq) {
            Some(flight) => Some((b, flight)),
            None => {
                // Duplicate or superseded outcome. Only put the booking back if it was
                // already part of the plan, so an ignored outcome plans nothing.
                if self.state.booking(&effect.match_id) != Some(&b) {
                    self.put(b);
                }
                self.note(Note::Ignored {
                    reason: "outcome of a superseded effect",
                });
                None
            }
        }
    }

    fn succeeded(&mut self, effect: &EffectId, outcome: &Outcome) {
        let Some((mut b, flight)) = self.in_flight_for(effect) else {
            return;
        };
        match effect.side {
            Side::Topdesk => {
                // TOPdesk may accept a write yet mark the reservation conflicting, and the
                // mark may arrive before this outcome: the conflict stays visible.
                let conflicting = matches!(
                    b.status,
                    BookingStatus::Conflict {
                        side: Side::Topdesk,
                        ..
                    }
                );
                let t = &mut b.topdesk;
                t.attempts = 0;
                t.status = if conflicting {
                    SideStatus::Refused
                } else {
                    SideStatus::InSync
                };
                match outcome {
                    Outcome::Reservation { id, modified_at } => {
                        if t.reservation.is_none() {
                            t.reservation = Some(id.clone());
                        }
                        if t.modified_at.is_none_or(|seen| *modified_at >= seen) {
                            t.base = flight.target;
                            t.modified_at = Some(*modified_at);
                        }
                    }
                    Outcome::Cancelled | Outcome::Event { .. } => {
                        mark_cancelled(&mut t.base, &b.desired);
                    }
                }
            }
            Side::Exchange => {
                let x = &mut b.exchange;
                x.attempts = 0;
                x.status = SideStatus::InSync;
                match (flight.op, outcome) {
                    (Op::Relocate, _) => {
                        x.room_copy = None;
                        x.event = None;
                        x.calendar = None;
                        x.ical_uid = None;
                        x.room = None;
                        x.base = None;
                        x.modified_at = None;
                        x.orb_created = true;
                        x.generation += 1;
                        x.unconfirmed_create = None;
                    }
                    (
                        _,
                        Outcome::Event {
                            event,
                            ical_uid,
                            modified_at,
                        },
                    ) => {
                        if x.ical_uid.as_ref().is_some_and(|linked| linked != ical_uid) {
                            // The copy linked by content belonged to someone else's
                            // identical meeting; the right copy is found by its iCalUId.
                            // What was seen of that copy says nothing of orb's event.
                            x.room_copy = None;
                            x.modified_at = None;
                        }
                        if x.orb_created || !in_room_calendar(x) {
                            x.event = Some(event.clone());
                        }
                        x.ical_uid = Some(ical_uid.clone());
                        x.unconfirmed_create = None;
                        if x.modified_at.is_none_or(|seen| *modified_at >= seen) {
                            x.base = flight.target;
                            x.modified_at = Some(*modified_at);
                        }
                    }
                    (_, Outcome::Cancelled | Outcome::Reservation { .. }) => {
                        mark_cancelled(&mut x.base, &b.desired);
                    }
                }
            }
        }
        if !b.exchange.held.is_empty() && !b.awaits_own_event() {
            // The event is known now: its copy, held meanwhile, is linked before the
            // booking is driven on, so a move that follows retires that very copy.
            let held = std::mem::take(&mut b.exchange.held);
            self.put(b);
            self.replay_held(&held);
            let Some(again) = self.take(&effect.match_id) else {
                return;
            };
            b = again;
        }
        self.drive(&mut b);
        self.put(b);
    }

    fn failed(&mut self, effect: &EffectId, failure: &Failure) {
        let Some((mut b, flight)) = self.in_flight_for(effect) else {
            return;
        };
        let side = effect.side;
        let match_id = b.match_id.clone();
        // A relocation's cancel that failed transiently may have happened all the same
        // (a timeout after Exchange acted): the old copy stays retired and the cancel is
        // issued again (see `relocation_pending`).
        // So may a room move's update (an earlier execution of a re-issued effect may have
        // moved the meeting): the old copy stays retired and the move is issued again.
        let maybe_done = matches!(failure, Failure::Retryable { .. })
            && (flight.op == Op::Relocate || (flight.op == Op::Update && flight.undo.is_some()));
        if let (Some(undo), false) = (&flight.undo, matches!(failure, Failure::Gone) || maybe_done)
        {
            // The move did not happen: follow the copy in the old room again.
            let x = &mut b.exchange;
            x.retired.retain(|r| r != undo);
            x.room = Some(undo.room.clone());
            x.room_copy.clone_from(&undo.room_copy);
        }
        if let Failure::Gone = failure {
            match flight.op {
                // Already gone is what a cancel wanted.
                Op::Cancel | Op::Relocate => {
                    self.put(b);
                    self.succeeded_after_gone(effect, flight);
                    return;
                }
                Op::Update => {
                    self.side_deleted(&mut b, side);
                    self.drive(&mut b);
                    self.put(b);
                    return;
                }
                // A create cannot miss its item; treat as transient.
                Op::Create => {}
            }
        }
        let not_made = matches!(
            failure,
            Failure::Refused { .. } | Failure::Denied { .. } | Failure::Rejected { .. }
        );
        if side == Side::Exchange && flight.op == Op::Create && not_made {
            // Refused for good: no event was made, a later create may write anew.
            b.exchange.unconfirmed_create = None;
        }
        b.meta.failed_count += 1;
        b.meta.failed_at = Some(self.now);
        b.meta.failed_by = Some(side);
        let (attempts, status) = match side {
            Side::Exchange => (&mut b.exchange.attempts, &mut b.exchange.status),
            Side::Topdesk => (&mut b.topdesk.attempts, &mut b.topdesk.status),
        };
        *attempts += 1;
        *status = SideStatus::Failed;
        let attempt = *attempts;
        match failure {
            Failure::Retryable { retry_after } => {
                if attempt >= self.cfg.retry.max_attempts {
                    self.park(&mut b, ParkReason::RetryLimit { side });
                } else {
                    let (seed, _) = digest_pair(&[match_id.as_str()]);
                    let delay = self.cfg.retry.delay(attempt, seed);
                    let delay = retry_after.map_or(delay, |after| delay.max(after));
                    let at = self.now + delay;
                    b.retry_at = Some(at);
                    self.emit(Some(&match_id), EffectKind::ScheduleRetry { at, attempt });
                }
            }
            Failure::Gone => {
                let at = self.now + self.cfg.retry.delay(attempt, 0);
                b.retry_at = Some(at);
                self.emit(Some(&match_id), EffectKind::ScheduleRetry { at, attempt });
            }
            Failure::Refused { reason } => {
                *status = SideStatus::Refused;
                b.status = BookingStatus::Conflict {
                    side,
                    reason: reason.clone(),
                };
                self.tell_refused(&mut b, side, reason);
            }
            Failure::Denied { mailbox } => {
                self.park(
                    &mut b,
                    ParkReason::MailboxDenied {
                        mailbox: mailbox.clone(),
                    },
                );
            }
            Failure::Rejected { reason } => {
                self.park(
                    &mut b,
                    ParkReason::Rejected {
                        side,
                        reason: reason.clone(),
                    },
                );
            }
        }
        self.put(b);
    }

    /// Tells the Exchange side that `side` refused the booking (or marked it
    /// conflicting): the room declines its copy when TOPdesk is the refusing side, and
    /// the organizer is mailed when mail is enabled.
    fn tell_refused(&mut self, b: &mut Booking, side: Side, reason: &Arc<str>) {
        if side == Side::Topdesk
            && let (Some(room), Some(copy)) =
                (b.exchange.room.clone(), b.exchange.room_copy.clone())
        {
            if b.exchange.orb_created {
                // orb made the meeting (a TOPdesk booking): with Exchange's default
                // settings the declined meeting leaves the room's calendar, and that must
                // not read as its organizer cancelling. (A meeting made in Outlook keeps
                // the old reading: its copy leaving the room ends the booking.)
                b.exchange.declined = Some(copy.clone());
            }
            self.emit(
                Some(&b.match_id),
                EffectKind::DeclineEvent {
                    room,
                    room_copy: copy,
                    reason: reason.clone(),
                },
            );
        }
        if self.cfg.mail_enabled {
            self.emit(
                Some(&b.match_id),
                EffectKind::NotifyUser {
                    to: b.desired.organizer.clone(),
                    reason: reason.clone(),
                },
            );
        }
    }

    fn succeeded_after_gone(&mut self, effect: &EffectId, flight: InFlight) {
        // Put the flight back and run the ordinary success path.
        if let Some(mut b) = self.take(&effect.match_id) {
            match effect.side {
                Side::Exchange => b.exchange.in_flight = Some(flight),
                Side::Topdesk => b.topdesk.in_flight = Some(flight),
            }
            self.put(b);
            self.succeeded(effect, &Outcome::Cancelled);
        }
    }

    fn park(&mut self, b: &mut Booking, reason: ParkReason) {
        b.status = BookingStatus::Parked {
            reason: reason.clone(),
        };
        b.retry_at = None;
        self.emit(Some(&b.match_id), EffectKind::Park { reason });
    }

    // ----- persons, time, admin -------------------------------------------------------

    fn person_resolved(&mut self, email: &EmailAddress, person: &Option<TopdeskPersonId>) {
        let entry = match person {
            Some(p) => PersonEntry::Found(p.clone()),
            None => PersonEntry::NotFound,
        };
        if self.person(email) == Some(&entry) {
            self.note(Note::Ignored {
                reason: "person already known",
            });
            return;
        }
        self.plan.persons.insert(email.clone(), entry);
        for id in self.all_ids() {
            let waiting = self
                .booking(&id)
                .is_some_and(|b| b.awaiting_person.as_ref() == Some(email));
            if waiting && let Some(mut b) = self.take(&id) {
                self.drive(&mut b);
                self.put(b);
            }
        }
    }

    fn tick(&mut self) {
        let now = self.now;
        let timeout = self.cfg.in_flight_timeout;
        let stale = |f: &Option<InFlight>| f.as_ref().is_some_and(|f| now >= f.since + timeout);
        for id in self.all_ids() {
            let due = self.booking(&id).is_some_and(|b| {
                b.retry_at.is_some_and(|at| at <= now)
                    || stale(&b.exchange.in_flight)
                    || stale(&b.topdesk.in_flight)
                    || b.awaiting_person.as_ref().is_some_and(|email| {
                        matches!(self.person(email), Some(PersonEntry::Pending(since)) if now >= *since + timeout)
                    })
            });
            if due && let Some(mut b) = self.take(&id) {
                self.drive(&mut b);
                self.put(b);
            }
        }
    }

    fn admin_retry(&mut self, match_id: &OrbMatchId) {
        let Some(mut b) = self.take(match_id) else {
            self.note(Note::Ignored {
                reason: "admin retry of an unknown booking",
            });
            return;
        };
        b.status = BookingStatus::Active;
        b.exchange.attempts = 0;
        b.topdesk.attempts = 0;
        b.retry_at = None;
        b.meta.retry_count += 1;
        self.drive(&mut b);
        self.put(b);
    }

    fn admin_confirm(&mut self, match_id: &OrbMatchId) {
        let Some(mut b) = self.take(match_id) else {
            self.note(Note::Ignored {
                reason: "admin confirmation for an unknown booking",
            });
            return;
        };
        if let BookingStatus::HeldRemoval { side } = b.status {
            b.status = BookingStatus::Active;
            self.side_deleted(&mut b, side);
            self.drive(&mut b);
        } else {
            self.note(Note::Ignored {
                reason: "no removal is held for this booking",
            });
        }
        self.put(b);
    }
}

fn retired_matches(retired: &RetiredCopy, item: &ExchangeItem) -> bool {
    retired.room_copy.as_ref() == Some(&item.event_id)
        || retired.event.as_ref() == Some(&item.event_id)
        || (retired.room == item.room && retired.ical_uid.as_ref() == Some(&item.ical_uid))
}

/// `item` is the room copy of an event orb deleted itself (relocation): the retired
/// copy's own id, or the event orb wrote. Only when the copy's id never became known does
/// its room and `iCalUId` tell; a copy of that meeting under another id is a new copy
/// (the organizer invited the room again), not orb's echo.
fn relocation_echo(retired: &RetiredCopy, item: &ExchangeItem) -> bool {
    retired.superseded
        && match &retired.room_copy {
            Some(copy) => copy == &item.event_id || retired.event.as_ref() == Some(&item.event_id),
            None => retired_matches(retired, item),
        }
}

/// A relocation whose cancel failed transiently keeps the old copy retired until the
/// cancel is issued again — also when by then the booking belongs in that calendar again
/// (the organizer changed back): the failed cancel may have deleted the event after all,
/// so following it again could mistake orb's own deletion for a user's. The relocation
/// completes instead (a cancel of an event already gone counts as done) and the event is
/// created anew where it belongs.
fn relocation_pending(x: &ExchangeLink) -> bool {
    x.room_copy.is_none()
        && x.ical_uid.is_some()
        && x.retired
            .iter()
            .any(|r| r.superseded && x.room.as_ref() == Some(&r.room) && r.ical_uid == x.ical_uid)
}

/// The side's item is cancelled: its view becomes cancelled, whatever was known of it.
fn mark_cancelled(base: &mut Option<Content>, desired: &Content) {
    base.get_or_insert_with(|| desired.clone()).cancelled = true;
}

fn empty_topdesk_link() -> TopdeskLink {
    TopdeskLink {
        reservation: None,
        retired: Vec::new(),
        requester: None,
        generation: 0,
        base: None,
        modified_at: None,
        in_flight: None,
        attempts: 0,
        status: SideStatus::Unknown,
    }
}

/// Remembers on the write just issued which copy it retired, to restore it on failure.
fn set_undo(b: &mut Booking, undo: Option<RetiredCopy>) {
    if let Some(flight) = b.exchange.in_flight.as_mut() {
        flight.undo = undo;
    }
}

/// Whether orb writes this booking in the room's own calendar (room-only mode).
fn in_room_calendar(x: &ExchangeLink) -> bool {
    match (&x.calendar, &x.room) {
        (Some(calendar), Some(room)) => calendar.as_str() == room.as_str(),
        _ => false,
    }
}

/// A booking held as missing from a pass is seen alive again on that side: the pass was
/// wrong, nothing is left for an admin to decide.
fn release_hold(b: &mut Booking, side: Side, cancelled: bool) {
    if !cancelled && b.status == (BookingStatus::HeldRemoval { side }) {
        b.status = BookingStatus::Active;
    }
}
