//! Readable text rendering of plans, for snapshot tests, dry-run (shadow) mode and logs.
//! Ids are shown as they are; timestamps in RFC 3339.

use std::fmt::{self, Display, Formatter, Write as _};

use crate::effect::{Effect, EffectKind, EventTarget, EventWrite, Note, Plan, ReservationWrite};
use crate::model::{Booking, BookingStatus, Content, ParkReason};
use crate::state::PersonEntry;

impl Display for Plan {
    /// One line per note, effect, person entry and booking summary.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for note in &self.notes {
            writeln!(f, "note {note}")?;
        }
        for effect in &self.effects {
            writeln!(f, "effect {effect}")?;
        }
        for (email, entry) in &self.persons {
            let entry = match entry {
                PersonEntry::Pending(_) => "pending".to_owned(),
                PersonEntry::Found(id) => format!("found {id}"),
                PersonEntry::NotFound => "not found".to_owned(),
            };
            writeln!(f, "person {email}: {entry}")?;
        }
        for booking in &self.bookings {
            writeln!(f, "booking {booking}")?;
        }
        Ok(())
    }
}

impl Display for Note {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Note::NewBooking { match_id, side } => write!(f, "new {match_id} from {side}"),
            Note::Changed {
                match_id,
                side,
                fields,
            } => write!(f, "changed {match_id} on {side}: {fields}"),
            Note::Conflict {
                match_id,
                fields,
                winner,
            } => write!(f, "conflict {match_id} on {fields}: {winner} wins"),
            Note::Echo { match_id, side } => write!(f, "echo {match_id} on {side}"),
            Note::Stale { match_id, side } => write!(f, "stale {match_id} on {side}"),
            Note::ConflictCleared { match_id, why } => {
                write!(f, "conflict cleared {match_id}: {why}")
            }
            Note::Ignored { reason } => write!(f, "ignored: {reason}"),
        }
    }
}

impl Display for Effect {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            EffectKind::LookUpPerson { email } => write!(f, "look up person {email}"),
            EffectKind::CreateReservation {
                effect,
                key,
                reservation,
            } => write!(
                f,
                "#{} create reservation key={key} {reservation}",
                effect.seq
            ),
            EffectKind::UpdateReservation {
                effect,
                id,
                reservation,
            } => write!(f, "#{} update reservation {id} {reservation}", effect.seq),
            EffectKind::CancelReservation { effect, id } => {
                write!(f, "#{} cancel reservation {id}", effect.seq)
            }
            EffectKind::CreateEvent {
                effect,
                key,
                calendar,
                event,
            } => write!(
                f,
                "#{} create event in {calendar} txn={key} {event}",
                effect.seq
            ),
            EffectKind::UpdateEvent {
                effect,
                target,
                event,
            } => write!(f, "#{} update event {target} {event}", effect.seq),
            EffectKind::CancelEvent { effect, target } => {
                write!(f, "#{} cancel event {target}", effect.seq)
            }
            EffectKind::DeclineEvent {
                room,
                room_copy,
                reason,
            } => write!(f, "decline {room_copy} in {room}: {reason}"),
            EffectKind::NotifyUser { to, reason } => write!(f, "mail {to}: {reason}"),
            EffectKind::ScheduleRetry { at, attempt } => {
                write!(f, "retry at {at} after attempt {attempt}")
            }
            EffectKind::Park { reason } => write!(f, "park: {}", ParkText(reason)),
            EffectKind::HoldRemovals {
                room,
                side,
                held,
                total,
            } => write!(
                f,
                "hold {held} of {total} removals in {room} seen on {side}"
            ),
        }
    }
}

impl Display for ReservationWrite {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let requester = self
            .requester
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string);
        write!(
            f,
            "[{} {}..{} requester={}({}) subject={:?}]",
            self.location, self.start, self.end, requester, self.requester_email, self.subject
        )
    }
}

impl Display for EventWrite {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "[{} {}..{}", self.room, self.start, self.end)?;
        if let Some(old) = &self.replaces_room {
            write!(f, " replaces={old}")?;
        }
        if !self.attendees.is_empty() {
            write!(f, " attendees={}", join(&self.attendees))?;
        }
        match &self.subject {
            Some(subject) => write!(f, " subject={subject:?}")?,
            None => f.write_str(" subject=unchanged")?,
        }
        if let Some(series) = &self.series {
            write!(f, " series={series}")?;
        }
        f.write_str("]")
    }
}

impl Display for EventTarget {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.event, &self.ical_uid) {
            (Some(event), _) => write!(f, "{event} in {}", self.calendar),
            (None, Some(uid)) => write!(f, "uid {uid} in {}", self.calendar),
            (None, None) => write!(f, "? in {}", self.calendar),
        }
    }
}

impl Display for Content {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}..{} by {}",
            self.room, self.start, self.end, self.organizer
        )?;
        if !self.attendees.is_empty() {
            write!(f, " with {}", join(&self.attendees))?;
        }
        match &self.subject {
            Some(subject) => write!(f, " {subject:?}")?,
            None => f.write_str(" (no subject)")?,
        }
        if self.cancelled {
            f.write_str(" CANCELLED")?;
        }
        Ok(())
    }
}

impl Display for Booking {
    /// A one-line summary: id, status, desired content and the ORB counters.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let status = match &self.status {
            BookingStatus::Active => "active".to_owned(),
            BookingStatus::Conflict { side, reason } => format!("conflict({side}: {reason})"),
            BookingStatus::Parked { reason } => format!("parked({})", ParkText(reason)),
            BookingStatus::HeldRemoval { side } => format!("held-removal({side})"),
        };
        let m = &self.meta;
        write!(
            f,
            "{} {status}: {} | cx={} by={} orig={} fail={} retry={}",
            self.match_id,
            self.desired,
            m.complexity_index,
            m.last_updated_by,
            m.original_organizer,
            m.failed_count,
            m.retry_count
        )?;
        if let Some(at) = self.retry_at {
            write!(f, " retry_at={at}")?;
        }
        if let Some(email) = &self.awaiting_person {
            write!(f, " awaiting={email}")?;
        }
        Ok(())
    }
}

struct ParkText<'a>(&'a ParkReason);

impl Display for ParkText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            ParkReason::RetryLimit { side } => write!(f, "retry limit on {side}"),
            ParkReason::MailboxDenied { mailbox } => write!(f, "mailbox {mailbox} denied"),
            ParkReason::Rejected { side, reason } => write!(f, "{side} rejected: {reason}"),
        }
    }
}

fn join<T: Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{item}");
    }
    out
}
