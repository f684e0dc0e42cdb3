//! A virtual clock, an in-memory Exchange and an in-memory TOPdesk that apply the
//! engine's effects and report back what they did, the way Graph notifications, TOPdesk
//! polls and effect outcomes reach the real service.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use orb_reconcile::{
    Config, Effect, EffectKind, EmailAddress, Engine, EventTarget, ExchangeItem, Failure,
    GraphEventId, IcalUid, Observation, Outcome, Removal, RoomMailbox, Rooms, SeriesOccurrence,
    State, TopdeskItem, TopdeskLocationId, TopdeskPersonId, TopdeskReservationId, TopdeskSeriesId,
    Window,
};

pub(crate) fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

pub(crate) fn email(name: &str) -> EmailAddress {
    EmailAddress::parse(&format!("{name}@example.com")).unwrap()
}

pub(crate) fn room(name: &str) -> RoomMailbox {
    RoomMailbox::parse(&format!("room-{name}@example.com")).unwrap()
}

pub(crate) fn location(name: &str) -> TopdeskLocationId {
    TopdeskLocationId::new(format!("loc-{name}")).unwrap()
}

/// Rooms a and b managed; room z exists in Exchange but is not managed.
pub(crate) fn config() -> Config {
    let mut config = Config::new(Rooms::new([
        (room("a"), location("a")),
        (room("b"), location("b")),
    ]));
    config.default_requester = Some(email("facilities"));
    config
}

/// The instant every world starts at.
pub(crate) const START: &str = "2026-03-02T08:00:00Z";

/// A meeting in Exchange with its (single) room copy.
#[derive(Clone, Debug)]
pub(crate) struct Meeting {
    pub(crate) uid: IcalUid,
    pub(crate) event: GraphEventId,
    pub(crate) calendar: EmailAddress,
    pub(crate) organizer: EmailAddress,
    pub(crate) room: RoomMailbox,
    pub(crate) copy: GraphEventId,
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    pub(crate) subject: Option<String>,
    pub(crate) attendees: Vec<EmailAddress>,
    pub(crate) private: bool,
    pub(crate) cancelled: bool,
    pub(crate) modified: Timestamp,
    pub(crate) txn: Option<String>,
    pub(crate) series: Option<SeriesOccurrence>,
    /// The room declined and its calendar no longer holds the copy.
    pub(crate) declined: bool,
}

/// A TOPdesk reservation.
#[derive(Clone, Debug)]
pub(crate) struct Reservation {
    pub(crate) id: TopdeskReservationId,
    pub(crate) location: TopdeskLocationId,
    pub(crate) requester: Option<TopdeskPersonId>,
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    pub(crate) subject: Option<String>,
    pub(crate) cancelled: bool,
    pub(crate) external_link: Option<String>,
    pub(crate) series: Option<TopdeskSeriesId>,
    pub(crate) modified: Timestamp,
    /// Status `conflictingPlanned`, with the reason the service would report.
    pub(crate) conflicting: Option<String>,
}

pub(crate) struct World {
    pub(crate) engine: Engine,
    pub(crate) state: State,
    pub(crate) now: Timestamp,
    pub(crate) meetings: Vec<Meeting>,
    pub(crate) reservations: Vec<Reservation>,
    pub(crate) persons: BTreeMap<EmailAddress, TopdeskPersonId>,
    pub(crate) inbox: VecDeque<Observation>,
    pub(crate) timers: BTreeSet<Timestamp>,
    pub(crate) trace: String,
    /// One entry per write effect: `true` fails it as retryable.
    pub(crate) failures: VecDeque<bool>,
    /// The next TOPdesk create or update is refused with this reason.
    pub(crate) refuse_next: Option<String>,
    /// The next TOPdesk create or update is accepted but marks the reservation
    /// conflicting with this reason (double booking configured to be allowed).
    pub(crate) conflict_next: Option<String>,
    /// Calendars the application may not write (RBAC).
    pub(crate) denied: BTreeSet<EmailAddress>,
    /// Exchange's default room processing (`RemoveCanceledMeetings = false`): a
    /// cancelled meeting's room copy lingers with `isCancelled: true` and is reported as
    /// changed, not removed.
    pub(crate) linger_cancelled: bool,
    /// Exchange's default resource processing: a meeting the room declines is removed
    /// from the room's calendar (reported as deleted), while it stays in the organizer's.
    pub(crate) decline_removes_copy: bool,
    /// `iCalUId`s and reservation ids users cancelled or moved out of the managed rooms:
    /// the only bookings orb may cancel.
    pub(crate) user_dropped: BTreeSet<String>,
    pub(crate) tracing: bool,
    pub(crate) trace_bookings: bool,
    next_id: u32,
}

impl World {
    pub(crate) fn new(config: Config) -> Self {
        let persons = ["ann", "bob", "sec", "facilities"]
            .into_iter()
            .map(|name| {
                (
                    email(name),
                    TopdeskPersonId::new(format!("p-{name}")).unwrap(),
                )
            })
            .collect();
        Self {
            engine: Engine::new(config),
            state: State::new(),
            now: ts(START),
            meetings: Vec::new(),
            reservations: Vec::new(),
            persons,
            inbox: VecDeque::new(),
            timers: BTreeSet::new(),
            trace: String::new(),
            failures: VecDeque::new(),
            refuse_next: None,
            conflict_next: None,
            denied: BTreeSet::new(),
            linger_cancelled: false,
            decline_removes_copy: false,
            user_dropped: BTreeSet::new(),
            tracing: true,
            trace_bookings: false,
            next_id: 0,
        }
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn tick_clock(&mut self) -> Timestamp {
        self.now += SignedDuration::from_secs(1);
        self.now
    }

    // ----- the engine ---------------------------------------------------------------

    /// Plans one observation, applies the plan, executes its effects (outcomes and
    /// notifications go to the inbox) and returns the rendered plan.
    pub(crate) fn observe(&mut self, observation: &Observation) -> String {
        let plan = self.engine.plan(&self.state, observation, self.now);
        self.state.apply(&plan);
        let text = plan.to_string();
        if self.tracing {
            let _ = writeln!(self.trace, "-- {}", describe(observation));
            for line in text.lines() {
                if self.trace_bookings
                    || !(line.starts_with("booking ") || line.starts_with("person "))
                {
                    self.trace.push_str(line);
                    self.trace.push('\n');
                }
            }
        }
        for effect in &plan.effects {
            self.execute(effect);
        }
        text
    }

    /// Delivers the oldest inbox entry.
    pub(crate) fn deliver(&mut self) -> bool {
        let Some(observation) = self.inbox.pop_front() else {
            return false;
        };
        self.tick_clock();
        self.observe(&observation);
        true
    }

    /// Delivers everything, firing timers on the virtual clock, until nothing is left.
    /// Panics if the system does not come to rest.
    pub(crate) fn settle(&mut self) {
        for _ in 0..20_000 {
            if self.deliver() {
                continue;
            }
            let Some(at) = self.timers.pop_first() else {
                return;
            };
            self.now = self.now.max(at);
            self.observe(&Observation::Tick);
        }
        panic!("world did not settle:\n{}", self.trace_tail());
    }

    pub(crate) fn trace_tail(&self) -> String {
        let lines: Vec<&str> = self.trace.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }

    /// Takes the trace recorded so far.
    pub(crate) fn take_trace(&mut self) -> String {
        std::mem::take(&mut self.trace)
    }

    // ----- executing effects ----------------------------------------------------------

    fn execute(&mut self, effect: &Effect) {
        let write = match &effect.kind {
            EffectKind::CreateReservation { effect, .. }
            | EffectKind::UpdateReservation { effect, .. }
            | EffectKind::CancelReservation { effect, .. }
            | EffectKind::CreateEvent { effect, .. }
            | EffectKind::UpdateEvent { effect, .. }
            | EffectKind::CancelEvent { effect, .. } => Some(effect.clone()),
            _ => None,
        };
        if let Some(id) = &write
            && self.failures.pop_front() == Some(true)
        {
            self.inbox.push_back(Observation::EffectFailed {
                effect: id.clone(),
                failure: Failure::Retryable { retry_after: None },
            });
            return;
        }
        let now = self.tick_clock();
        let result = match &effect.kind {
            EffectKind::LookUpPerson { email } => {
                self.inbox.push_back(Observation::PersonResolved {
                    email: email.clone(),
                    person: self.persons.get(email).cloned(),
                });
                return;
            }
            EffectKind::ScheduleRetry { at, .. } => {
                self.timers.insert(*at);
                return;
            }
            EffectKind::CreateReservation {
                key, reservation, ..
            } => {
                if let Some(reason) = self.refuse_next.take() {
                    Err(Failure::Refused {
                        reason: reason.into(),
                    })
                } else if let Some(r) = self
                    .reservations
                    .iter()
                    .find(|r| r.external_link.as_deref() == Some(key.as_str()))
                {
                    Ok(Outcome::Reservation {
                        id: r.id.clone(),
                        modified_at: r.modified,
                    })
                } else {
                    let id = TopdeskReservationId::new(format!("res-{}", self.id())).unwrap();
                    self.reservations.push(Reservation {
                        id: id.clone(),
                        location: reservation.location.clone(),
                        requester: reservation.requester.clone(),
                        start: reservation.start,
                        end: reservation.end,
                        subject: Some(reservation.subject.to_string()),
                        cancelled: false,
                        external_link: Some(key.to_string()),
                        series: None,
                        modified: now,
                        conflicting: self.conflict_next.take(),
                    });
                    self.notify_reservation(&id);
                    Ok(Outcome::Reservation {
                        id,
                        modified_at: now,
                    })
                }
            }
            EffectKind::UpdateReservation {
                id, reservation, ..
            } => {
                if let Some(reason) = self.refuse_next.take() {
                    Err(Failure::Refused {
                        reason: reason.into(),
                    })
                } else {
                    match self.reservations.iter_mut().find(|r| &r.id == id) {
                        Some(r) if !r.cancelled => {
                            r.location = reservation.location.clone();
                            r.requester = reservation.requester.clone();
                            r.start = reservation.start;
                            r.end = reservation.end;
                            r.subject = Some(reservation.subject.to_string());
                            r.modified = now;
                            // TOPdesk judges the overlap again on every write.
                            r.conflicting = self.conflict_next.take();
                            self.notify_reservation(id);
                            Ok(Outcome::Reservation {
                                id: id.clone(),
                                modified_at: now,
                            })
                        }
                        _ => Err(Failure::Gone),
                    }
                }
            }
            EffectKind::CancelReservation { id, .. } => {
                match self.reservations.iter_mut().find(|r| &r.id == id) {
                    Some(r) if !r.cancelled => {
                        r.cancelled = true;
                        r.modified = now;
                        self.notify_reservation(id);
                        Ok(Outcome::Cancelled)
                    }
                    _ => Err(Failure::Gone),
                }
            }
            EffectKind::CreateEvent {
                key,
                calendar,
                event,
                ..
            } => {
                if self.denied.contains(calendar) {
                    Err(Failure::Denied {
                        mailbox: calendar.clone(),
                    })
                } else if let Some(m) = self
                    .meetings
                    .iter()
                    .find(|m| m.txn.as_deref() == Some(key.as_str()))
                {
                    Ok(Outcome::Event {
                        event: m.event.clone(),
                        ical_uid: m.uid.clone(),
                        modified_at: m.modified,
                    })
                } else {
                    let n = self.id();
                    let in_room = calendar.as_str() == event.room.as_str();
                    let event_id = GraphEventId::new(format!("ev-{n}")).unwrap();
                    let meeting = Meeting {
                        uid: IcalUid::new(format!("uid-{n}")).unwrap(),
                        event: event_id.clone(),
                        calendar: calendar.clone(),
                        organizer: calendar.clone(),
                        room: event.room.clone(),
                        copy: if in_room {
                            event_id
                        } else {
                            GraphEventId::new(format!("copy-{n}")).unwrap()
                        },
                        start: event.start,
                        end: event.end,
                        subject: event.subject.as_deref().map(str::to_owned),
                        attendees: event.attendees.to_vec(),
                        private: false,
                        cancelled: false,
                        modified: now,
                        txn: Some(key.to_string()),
                        series: None,
                        declined: false,
                    };
                    let outcome = Outcome::Event {
                        event: meeting.event.clone(),
                        ical_uid: meeting.uid.clone(),
                        modified_at: now,
                    };
                    self.meetings.push(meeting);
                    self.notify_meeting(self.meetings.len() - 1, None);
                    Ok(outcome)
                }
            }
            EffectKind::UpdateEvent { target, event, .. } => match self.find_meeting(target) {
                Some(i) => {
                    let n = self.id();
                    let m = &mut self.meetings[i];
                    let old = (m.room != event.room).then(|| (m.room.clone(), m.copy.clone()));
                    if old.is_some() {
                        m.room = event.room.clone();
                        m.copy = GraphEventId::new(format!("copy-{n}")).unwrap();
                    }
                    // The room processes the updated request again.
                    m.declined = false;
                    m.start = event.start;
                    m.end = event.end;
                    m.attendees = event.attendees.to_vec();
                    if let Some(subject) = &event.subject {
                        m.subject = Some(subject.to_string());
                    }
                    m.modified = now;
                    let outcome = Outcome::Event {
                        // Graph answers with the event that was written: the room's own
                        // copy in room-only mode.
                        event: target.event.clone().unwrap_or_else(|| m.event.clone()),
                        ical_uid: m.uid.clone(),
                        modified_at: now,
                    };
                    self.notify_meeting(i, old);
                    Ok(outcome)
                }
                None => Err(Failure::Gone),
            },
            EffectKind::CancelEvent { target, .. } => match self.find_meeting(target) {
                Some(i) => {
                    self.meetings[i].cancelled = true;
                    self.meetings[i].modified = now;
                    self.notify_meeting(i, None);
                    Ok(Outcome::Cancelled)
                }
                None => Err(Failure::Gone),
            },
            EffectKind::DeclineEvent {
                room, room_copy, ..
            } => {
                let declined = self
                    .meetings
                    .iter_mut()
                    .find(|m| &m.room == room && &m.copy == room_copy && !m.cancelled);
                if self.decline_removes_copy
                    && let Some(m) = declined
                    && !m.declined
                {
                    m.declined = true;
                    self.inbox.push_back(Observation::ExchangeRemoved {
                        room: room.clone(),
                        event_id: room_copy.clone(),
                        reason: Removal::Deleted,
                    });
                }
                return;
            }
            EffectKind::NotifyUser { .. }
            | EffectKind::Park { .. }
            | EffectKind::HoldRemovals { .. } => return,
        };
        let Some(id) = write else { return };
        // The service reports a conflicting status in a write response after its outcome.
        let conflict = match &result {
            Ok(Outcome::Reservation { id, .. }) => self.conflict_of(id),
            _ => None,
        };
        self.inbox.push_back(match result {
            Ok(outcome) => Observation::EffectSucceeded {
                effect: id,
                outcome,
            },
            Err(failure) => Observation::EffectFailed {
                effect: id,
                failure,
            },
        });
        self.inbox.extend(conflict);
    }

    /// `TopdeskConflicting` for a live reservation TOPdesk marks conflicting.
    fn conflict_of(&self, id: &TopdeskReservationId) -> Option<Observation> {
        let r = self.reservations.iter().find(|r| &r.id == id)?;
        let reason = r.conflicting.as_deref().filter(|_| !r.cancelled)?;
        Some(Observation::TopdeskConflicting {
            id: r.id.clone(),
            reason: reason.into(),
        })
    }

    fn find_meeting(&self, target: &EventTarget) -> Option<usize> {
        self.meetings.iter().position(|m| {
            let in_calendar = m.calendar == target.calendar
                && (target.event.as_ref() == Some(&m.event)
                    || (target.event.is_none() && target.ical_uid.as_ref() == Some(&m.uid)));
            // Room-only mode writes the room's own copy.
            let room_copy = target.calendar.as_str() == m.room.as_str()
                && (target.event.as_ref() == Some(&m.copy)
                    || (target.event.is_none() && target.ical_uid.as_ref() == Some(&m.uid)));
            !m.cancelled && (in_calendar || room_copy)
        })
    }

    // ----- notifications ---------------------------------------------------------------

    pub(crate) fn copy_item(&self, m: &Meeting) -> ExchangeItem {
        ExchangeItem {
            room: m.room.clone(),
            event_id: m.copy.clone(),
            ical_uid: m.uid.clone(),
            organizer: m.organizer.clone(),
            required_attendees: m.attendees.clone(),
            subject: m.subject.clone(),
            private: m.private,
            start: m.start,
            end: m.end,
            cancelled: m.cancelled,
            series: m.series.clone(),
            orb_match_id: None,
            modified_at: m.modified,
        }
    }

    /// Queues the room-mailbox notifications for meeting `i`; `moved_from` is the room
    /// and copy it had before a room change.
    fn notify_meeting(&mut self, i: usize, moved_from: Option<(RoomMailbox, GraphEventId)>) {
        let m = self.meetings[i].clone();
        if let Some((room, copy)) = moved_from {
            self.inbox.push_back(Observation::ExchangeRemoved {
                room,
                event_id: copy,
                reason: Removal::Deleted,
            });
        }
        if m.cancelled && !self.linger_cancelled {
            self.inbox.push_back(Observation::ExchangeRemoved {
                room: m.room.clone(),
                event_id: m.copy.clone(),
                reason: Removal::Deleted,
            });
        } else {
            let item = self.copy_item(&m);
            self.inbox.push_back(Observation::ExchangeChanged(item));
        }
    }

    pub(crate) fn reservation_item(&self, r: &Reservation) -> TopdeskItem {
        TopdeskItem {
            id: r.id.clone(),
            location: r.location.clone(),
            requester_email: r.requester.as_ref().and_then(|p| {
                self.persons
                    .iter()
                    .find(|(_, id)| *id == p)
                    .map(|(e, _)| e.clone())
            }),
            subject: r.subject.clone(),
            start: r.start,
            end: r.end,
            cancelled: r.cancelled,
            external_link: r.external_link.clone(),
            series: r.series.clone(),
            conflicting: r.conflicting.is_some() && !r.cancelled,
            modified_at: r.modified,
        }
    }

    fn notify_reservation(&mut self, id: &TopdeskReservationId) {
        let r = self.reservations.iter().find(|r| &r.id == id).cloned();
        if let Some(r) = r {
            let item = self.reservation_item(&r);
            self.inbox.push_back(Observation::TopdeskChanged(item));
            // A poll showing a conflicting status reports it after the item.
            let conflict = self.conflict_of(&r.id);
            self.inbox.extend(conflict);
        }
    }

    // ----- users acting on either side ---------------------------------------------------

    /// A user books `room` in Outlook; returns the meeting index.
    pub(crate) fn user_books_exchange(
        &mut self,
        organizer: &str,
        room_name: &str,
        start: &str,
        minutes: i64,
        subject: &str,
    ) -> usize {
        let now = self.tick_clock();
        let n = self.id();
        let start = ts(start);
        self.meetings.push(Meeting {
            uid: IcalUid::new(format!("uid-{n}")).unwrap(),
            event: GraphEventId::new(format!("ev-{n}")).unwrap(),
            calendar: email(organizer),
            organizer: email(organizer),
            room: room(room_name),
            copy: GraphEventId::new(format!("copy-{n}")).unwrap(),
            start,
            end: start + SignedDuration::from_mins(minutes),
            subject: Some(subject.to_owned()),
            attendees: Vec::new(),
            private: false,
            cancelled: false,
            modified: now,
            txn: None,
            series: None,
            declined: false,
        });
        let i = self.meetings.len() - 1;
        self.notify_meeting(i, None);
        i
    }

    /// A user edits meeting `i` in Outlook.
    pub(crate) fn user_edits_exchange(&mut self, i: usize, edit: impl FnOnce(&mut Meeting)) {
        let now = self.tick_clock();
        let n = self.id();
        let m = &mut self.meetings[i];
        let before = m.room.clone();
        let before_copy = m.copy.clone();
        edit(m);
        m.modified = now;
        m.declined = false;
        // Each room's copy is a booking of its own: a room change in Outlook ends the
        // booking of the room left (and the next room's copy is a new one).
        if m.cancelled || m.room != before {
            self.user_dropped.insert(m.uid.to_string());
        }
        let moved = (m.room != before).then(|| {
            m.copy = GraphEventId::new(format!("copy-{n}")).unwrap();
            (before, before_copy)
        });
        self.notify_meeting(i, moved);
    }

    /// A user books in TOPdesk; returns the reservation index.
    pub(crate) fn user_books_topdesk(
        &mut self,
        requester: &str,
        room_name: &str,
        start: &str,
        minutes: i64,
        subject: &str,
    ) -> usize {
        let now = self.tick_clock();
        let n = self.id();
        let start = ts(start);
        let id = TopdeskReservationId::new(format!("res-{n}")).unwrap();
        self.reservations.push(Reservation {
            id: id.clone(),
            location: location(room_name),
            requester: self.persons.get(&email(requester)).cloned(),
            start,
            end: start + SignedDuration::from_mins(minutes),
            subject: Some(subject.to_owned()),
            cancelled: false,
            external_link: None,
            series: None,
            modified: now,
            conflicting: None,
        });
        self.notify_reservation(&id);
        self.reservations.len() - 1
    }

    /// A user edits reservation `i` in TOPdesk.
    pub(crate) fn user_edits_topdesk(&mut self, i: usize, edit: impl FnOnce(&mut Reservation)) {
        let now = self.tick_clock();
        let r = &mut self.reservations[i];
        edit(r);
        r.modified = now;
        let id = r.id.clone();
        if r.cancelled || self.engine.config().rooms.room(&r.location).is_none() {
            self.user_dropped.insert(id.to_string());
        }
        self.notify_reservation(&id);
    }

    /// TOPdesk marks reservation `i` conflicting (another booking now overlaps it); the
    /// next poll reports the item and its conflicting status.
    pub(crate) fn topdesk_marks_conflicting(&mut self, i: usize, reason: &str) {
        self.tick_clock();
        let r = &mut self.reservations[i];
        r.conflicting = Some(reason.to_owned());
        let id = r.id.clone();
        self.notify_reservation(&id);
    }

    /// TOPdesk no longer marks reservation `i` conflicting (the overlapping booking went
    /// away); the next poll reports the item without the mark.
    pub(crate) fn topdesk_clears_conflict(&mut self, i: usize) {
        self.tick_clock();
        let r = &mut self.reservations[i];
        r.conflicting = None;
        let id = r.id.clone();
        self.notify_reservation(&id);
    }

    /// Full passes of every managed room and of TOPdesk over a wide window.
    pub(crate) fn full_pass(&mut self) {
        let window = Window {
            start: ts("2026-01-01T00:00:00Z"),
            end: ts("2027-01-01T00:00:00Z"),
        };
        let rooms: Vec<RoomMailbox> = self.engine.config().rooms.mailboxes().cloned().collect();
        for r in rooms {
            let items = self
                .meetings
                .iter()
                .filter(|m| m.room == r && !m.declined && (!m.cancelled || self.linger_cancelled))
                .map(|m| self.copy_item(m))
                .collect();
            self.inbox.push_back(Observation::ExchangePass {
                room: r,
                window,
                items,
            });
        }
        let items = self
            .reservations
            .iter()
            .filter(|r| !r.cancelled)
            .map(|r| self.reservation_item(r))
            .collect();
        self.inbox
            .push_back(Observation::TopdeskPass { window, items });
        let conflicts: Vec<Observation> = self
            .reservations
            .iter()
            .filter_map(|r| self.conflict_of(&r.id))
            .collect();
        self.inbox.extend(conflicts);
    }

    // ----- checks ----------------------------------------------------------------------

    /// Live bookings of managed rooms on each side as sorted `(room, start, end)` rows.
    pub(crate) fn sides(&self) -> (Vec<String>, Vec<String>) {
        let config = self.engine.config();
        // Subjects are compared where they are carried; withheld ones read as "-".
        let subject = |text: Option<&str>, private: bool| match text {
            Some(t) if config.carry_subject && !private && t != config.neutral_subject => {
                t.to_owned()
            }
            _ => "-".to_owned(),
        };
        let mut exchange: Vec<String> = self
            .meetings
            .iter()
            .filter(|m| !m.cancelled && config.rooms.is_managed(&m.room))
            .map(|m| {
                format!(
                    "{} {} {} {}",
                    m.room,
                    m.start,
                    m.end,
                    subject(m.subject.as_deref(), m.private)
                )
            })
            .collect();
        let mut topdesk: Vec<String> = self
            .reservations
            .iter()
            .filter(|r| !r.cancelled && config.rooms.room(&r.location).is_some())
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    config.rooms.room(&r.location).unwrap(),
                    r.start,
                    r.end,
                    subject(r.subject.as_deref(), false)
                )
            })
            .collect();
        exchange.sort();
        topdesk.sort();
        (exchange, topdesk)
    }

    /// Both sides hold the same bookings, each once, and orb knows each once.
    pub(crate) fn assert_agree(&self) {
        let (exchange, topdesk) = self.sides();
        assert_eq!(exchange, topdesk, "sides disagree\n{}", self.trace_tail());
        let live = self
            .state
            .bookings()
            .filter(|b| !b.desired.cancelled)
            .count();
        assert_eq!(
            live,
            exchange.len(),
            "live bookings vs items\n{}",
            self.trace_tail()
        );
        let mut uids: Vec<&IcalUid> = self
            .meetings
            .iter()
            .filter(|m| !m.cancelled)
            .map(|m| &m.uid)
            .collect();
        uids.sort();
        let n = uids.len();
        uids.dedup();
        assert_eq!(n, uids.len(), "duplicate meeting");
    }

    /// Every booking orb cancelled was cancelled (or moved out of the managed rooms) by a
    /// user on one side: orb never takes its own writes for a user's cancellation —
    /// bookings that share a meeting included (a room copy of orb's own new event is
    /// never a second booking, so none is ever cancelled as a duplicate).
    pub(crate) fn assert_cancelled_only_by_users(&self) {
        let keys = |b: &orb_reconcile::Booking| -> Vec<String> {
            let x = &b.exchange;
            let t = &b.topdesk;
            x.ical_uid
                .iter()
                .chain(x.retired.iter().filter_map(|r| r.ical_uid.as_ref()))
                .map(ToString::to_string)
                .chain(
                    t.reservation
                        .iter()
                        .chain(&t.retired)
                        .map(ToString::to_string),
                )
                .collect()
        };
        for b in self.state.bookings().filter(|b| b.desired.cancelled) {
            let keys = keys(b);
            assert!(
                keys.iter().any(|k| self.user_dropped.contains(k)),
                "{} was cancelled but no user cancelled it ({keys:?})\n{}",
                b.match_id,
                self.trace_tail()
            );
        }
    }

    /// Nothing is pending: a tick far in the future and a full pass plan no effect.
    pub(crate) fn assert_quiet(&mut self) {
        assert!(self.inbox.is_empty() && self.timers.is_empty());
        self.now += SignedDuration::from_hours(1);
        let plan = self.engine.plan(&self.state, &Observation::Tick, self.now);
        assert!(plan.effects.is_empty(), "tick still acts:\n{plan}");
        self.full_pass();
        while let Some(observation) = self.inbox.pop_front() {
            let plan = self.engine.plan(&self.state, &observation, self.now);
            assert!(plan.effects.is_empty(), "full pass still acts:\n{plan}");
            self.state.apply(&plan);
        }
    }

    /// The one-line summary of the booking whose desired room and start match.
    pub(crate) fn booking_line(&self, room_name: &str, start: &str) -> String {
        self.state
            .bookings()
            .filter(|b| b.desired.room == room(room_name) && b.desired.start == ts(start))
            .map(|b| format!("{b}\n"))
            .collect()
    }
}

/// One line naming an observation in the trace.
pub(crate) fn describe(observation: &Observation) -> String {
    match observation {
        Observation::ExchangeChanged(i) => format!("exchange changed {} in {}", i.event_id, i.room),
        Observation::ExchangeRemoved { room, event_id, .. } => {
            format!("exchange removed {event_id} in {room}")
        }
        Observation::ExchangeSeries { master, room, .. } => {
            format!("exchange series {master} in {room}")
        }
        Observation::ExchangePass { room, .. } => format!("exchange pass {room}"),
        Observation::TopdeskChanged(i) => format!("topdesk changed {}", i.id),
        Observation::TopdeskRemoved { id, .. } => format!("topdesk removed {id}"),
        Observation::TopdeskConflicting { id, reason } => {
            format!("topdesk conflicting {id}: {reason}")
        }
        Observation::TopdeskPass { .. } => "topdesk pass".to_owned(),
        Observation::PersonResolved { email, .. } => format!("person resolved {email}"),
        Observation::EffectSucceeded { effect, .. } => {
            format!("succeeded #{} on {}", effect.seq, effect.side)
        }
        Observation::EffectFailed { effect, failure } => {
            format!("failed #{} on {}: {failure:?}", effect.seq, effect.side)
        }
        Observation::Tick => "tick".to_owned(),
        Observation::AdminRetry { match_id } => format!("admin retry {match_id}"),
        Observation::AdminConfirmRemoval { match_id } => format!("admin confirm {match_id}"),
    }
}
