//! Exchange's side of the service: Graph events as engine observations, and the engine's
//! Exchange effects executed through [`GraphClient`].

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use orb_graph_client::{
    AttendeeType, Event, EventKind, EventPatch, GraphClient, Mailbox, NewAttendee, NewEvent,
    RoomBooking, Sensitivity, When,
};
use orb_reconcile::{
    EffectKind, EmailAddress, EventTarget, EventWrite, ExchangeItem, Failure, GraphEventId,
    IcalUid, Observation, OrbMatchId, Outcome, RoomMailbox, SeriesOccurrence,
};

/// The result of executing one effect: what to feed back to the engine, and a label for
/// metrics and the audit trail.
#[derive(Debug)]
pub struct Execution {
    /// The observation that reports the outcome (`None`: nothing to report).
    pub observation: Option<Observation>,
    /// `ok`, `retryable`, `refused`, `denied`, `gone` or `rejected`.
    pub outcome: &'static str,
}

impl Execution {
    /// A successful write.
    pub fn succeeded(effect: orb_reconcile::EffectId, outcome: Outcome) -> Self {
        Self {
            observation: Some(Observation::EffectSucceeded { effect, outcome }),
            outcome: "ok",
        }
    }

    /// A failed write.
    pub fn failed(effect: orb_reconcile::EffectId, failure: Failure) -> Self {
        let outcome = match &failure {
            Failure::Retryable { .. } => "retryable",
            Failure::Refused { .. } => "refused",
            Failure::Denied { .. } => "denied",
            Failure::Gone => "gone",
            Failure::Rejected { .. } => "rejected",
        };
        Self {
            observation: Some(Observation::EffectFailed { effect, failure }),
            outcome,
        }
    }
}

/// A room calendar copy as the engine sees it; `None` for series masters (their
/// occurrences come from the delta round), all-day items without a time and items
/// without an `iCalUId` or organizer.
pub fn to_item(room: &RoomMailbox, e: &Event, now: Timestamp) -> Option<ExchangeItem> {
    if e.kind == EventKind::SeriesMaster {
        return None;
    }
    let (start, end) = match &e.when {
        When::Timed { start, end } => (*start, *end),
        When::AllDay { start, end } => (
            start.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp(),
            end.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp(),
        ),
    };
    let organizer = e
        .organizer
        .as_ref()
        .and_then(|o| EmailAddress::parse(&o.address).ok())?;
    let required_attendees = e
        .attendees
        .iter()
        .filter(|a| a.kind == AttendeeType::Required)
        .filter_map(|a| EmailAddress::parse(&a.email.address).ok())
        .filter(|a| *a != organizer && a.as_str() != room.as_str())
        .collect();
    let series = match (e.kind, &e.series_master_id) {
        (EventKind::Occurrence | EventKind::Exception, Some(master)) => Some(SeriesOccurrence {
            master: GraphEventId::new(master.as_str()).ok()?,
            original_start: e.original_start.unwrap_or(start),
        }),
        _ => None,
    };
    Some(ExchangeItem {
        room: room.clone(),
        event_id: GraphEventId::new(e.id.as_str()).ok()?,
        ical_uid: IcalUid::new(e.ical_uid.as_ref()?.as_str()).ok()?,
        organizer,
        required_attendees,
        subject: e.subject.clone(),
        private: matches!(
            e.sensitivity,
            Sensitivity::Private | Sensitivity::Confidential
        ),
        start,
        end,
        cancelled: e.is_cancelled,
        series,
        orb_match_id: e
            .orb_match_id
            .as_ref()
            .and_then(|m| OrbMatchId::new(m.as_str()).ok()),
        modified_at: e.last_modified.unwrap_or(now),
    })
}

/// Executes one Exchange write effect. Effects of other kinds give `None`.
pub async fn execute(graph: &GraphClient, kind: &EffectKind, now: Timestamp) -> Option<Execution> {
    Some(match kind {
        EffectKind::CreateEvent {
            effect,
            key,
            calendar,
            event,
        } => {
            let mailbox = match Mailbox::new(calendar.as_str()) {
                Ok(m) => m,
                Err(e) => return Some(Execution::failed(effect.clone(), failure(&e))),
            };
            let new = new_event(calendar, event, key.as_str());
            let new = match new {
                Ok(n) => n,
                Err(e) => return Some(Execution::failed(effect.clone(), failure(&e))),
            };
            match graph.create_event(&mailbox, &new).await {
                Ok(created) => match event_outcome(&created, now) {
                    Ok(o) => Execution::succeeded(effect.clone(), o),
                    Err(f) => Execution::failed(effect.clone(), f),
                },
                Err(e) => Execution::failed(effect.clone(), failure(&e)),
            }
        }
        EffectKind::UpdateEvent {
            effect,
            target,
            event,
        } => match update(graph, target, event)
            .await
            .and_then(|updated| event_outcome(&updated, now))
        {
            Ok(o) => Execution::succeeded(effect.clone(), o),
            Err(f) => Execution::failed(effect.clone(), f),
        },
        EffectKind::CancelEvent { effect, target } => match cancel(graph, target).await {
            Ok(()) => Execution::succeeded(effect.clone(), Outcome::Cancelled),
            Err(f) => Execution::failed(effect.clone(), f),
        },
        _ => return None,
    })
}

/// How long a write waits after orb's own credentials were refused (on either side).
pub const CREDENTIALS_RETRY: SignedDuration = SignedDuration::from_mins(5);

/// Graph's error as the engine's failure class.
pub fn failure(e: &orb_graph_client::Error) -> Failure {
    use orb_graph_client::Error as G;
    match e {
        G::Throttled { retry_after, .. } => Failure::Retryable {
            retry_after: retry_after.and_then(|d| SignedDuration::try_from(d).ok()),
        },
        _ if e.is_retryable() => Failure::Retryable { retry_after: None },
        // orb's own credentials or consent, not this booking: every write fails alike
        // until an operator acts, so the booking waits (and `/healthz` names the cause)
        // instead of being parked at once.
        G::InvalidClient { .. }
        | G::ConsentMissing { .. }
        | G::TokenRejected { .. }
        | G::Credential(_)
        | G::Unauthorized { .. }
        | G::Forbidden { .. } => Failure::Retryable {
            retry_after: Some(CREDENTIALS_RETRY),
        },
        G::MailboxAccessDenied { mailbox, .. } => match EmailAddress::parse(mailbox) {
            Ok(mailbox) => Failure::Denied { mailbox },
            Err(_) => Failure::Rejected {
                reason: Arc::from(e.to_string()),
            },
        },
        G::NotFound { .. } => Failure::Gone,
        _ => Failure::Rejected {
            reason: Arc::from(e.to_string()),
        },
    }
}

fn new_event(
    calendar: &EmailAddress,
    event: &EventWrite,
    key: &str,
) -> Result<NewEvent, orb_graph_client::Error> {
    Ok(NewEvent {
        subject: event.subject.as_deref().unwrap_or_default().to_owned(),
        body: None,
        when: When::Timed {
            start: event.start,
            end: event.end,
        },
        room: room_booking(calendar, &event.room)?,
        attendees: attendees(event),
        recurrence: None,
        orb_match_id: orb_graph_client::OrbMatchId::new(event.match_id.as_str())?,
        transaction_id: key.to_owned(),
        sensitivity: None,
    })
}

/// The room to invite, unless the event lives in the room's own calendar (room-only).
fn room_booking(
    calendar: &EmailAddress,
    room: &RoomMailbox,
) -> Result<Option<RoomBooking>, orb_graph_client::Error> {
    if calendar.as_str() == room.as_str() {
        return Ok(None);
    }
    Ok(Some(RoomBooking {
        mailbox: orb_graph_client::RoomMailbox::new(room.as_str())?,
        display_name: room.as_str().to_owned(),
    }))
}

fn attendees(event: &EventWrite) -> Vec<NewAttendee> {
    event
        .attendees
        .iter()
        .map(|a| NewAttendee {
            address: a.as_str().to_owned(),
            name: None,
            kind: AttendeeType::Required,
        })
        .collect()
}

fn event_outcome(e: &Event, now: Timestamp) -> Result<Outcome, Failure> {
    let id = e.id.as_str();
    // Graph always returns an iCalUId; should one be missing, the id still identifies
    // the write.
    let uid = e.ical_uid.as_ref().map_or(id, |u| u.as_str());
    match (GraphEventId::new(id), IcalUid::new(uid)) {
        (Ok(event), Ok(ical_uid)) => Ok(Outcome::Event {
            event,
            ical_uid,
            modified_at: e.last_modified.unwrap_or(now),
        }),
        _ => Err(Failure::Rejected {
            reason: Arc::from("graph returned an event without an id"),
        }),
    }
}

/// The event id and mailbox of a target, looking the event up by `iCalUId` when orb
/// does not know its id in that calendar.
async fn resolve(
    graph: &GraphClient,
    target: &EventTarget,
) -> Result<(Mailbox, orb_graph_client::GraphEventId), Failure> {
    let mailbox = Mailbox::new(target.calendar.as_str()).map_err(|e| failure(&e))?;
    if let Some(id) = &target.event {
        let id = orb_graph_client::GraphEventId::new(id.as_str()).map_err(|e| failure(&e))?;
        return Ok((mailbox, id));
    }
    let uid = target.ical_uid.as_ref().ok_or(Failure::Gone)?;
    let uid = orb_graph_client::IcalUid::new(uid.as_str()).map_err(|e| failure(&e))?;
    let found = graph
        .find_events_by_ical_uid(&mailbox, &uid)
        .await
        .map_err(|e| failure(&e))?;
    let first = found.into_iter().next().ok_or(Failure::Gone)?;
    Ok((mailbox, first.id))
}

async fn update(
    graph: &GraphClient,
    target: &EventTarget,
    event: &EventWrite,
) -> Result<Event, Failure> {
    let (mailbox, id) = resolve(graph, target).await?;
    let patch = EventPatch {
        subject: event.subject.as_deref().map(str::to_owned),
        when: Some(When::Timed {
            start: event.start,
            end: event.end,
        }),
        room: Some(room_booking(&target.calendar, &event.room).map_err(|e| failure(&e))?),
        attendees: Some(attendees(event)),
        ..EventPatch::default()
    };
    graph
        .update_event(&mailbox, &id, &patch)
        .await
        .map_err(|e| failure(&e))
}

async fn cancel(graph: &GraphClient, target: &EventTarget) -> Result<(), Failure> {
    let (mailbox, id) = resolve(graph, target).await?;
    match graph.cancel_event(&mailbox, &id, None).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_retryable() => Err(failure(&e)),
        Err(orb_graph_client::Error::NotFound { .. }) => Ok(()),
        // Not the organizer's copy (or cancel refused): deleting removes it from this
        // calendar, which is what the engine asked for.
        Err(_) => match graph.delete_event(&mailbox, &id).await {
            Ok(()) | Err(orb_graph_client::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failure(&e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: serde_json::Value) -> Event {
        orb_graph_client::wire::parse_event_json(&serde_json::to_vec(&json).unwrap()).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "id": "AAMk-room-copy",
            "iCalUId": "040000008200E00074C5B7101A82E008",
            "type": "singleInstance",
            "subject": "Planning",
            "start": {"dateTime": "2031-01-06T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2031-01-06T10:00:00.0000000", "timeZone": "UTC"},
            "organizer": {"emailAddress": {"address": "Alice@Example.com", "name": "Alice"}},
            "attendees": [
                {"type": "required", "emailAddress": {"address": "alice@example.com"}},
                {"type": "required", "emailAddress": {"address": "bob@example.com"}},
                {"type": "optional", "emailAddress": {"address": "carol@example.com"}},
                {"type": "resource", "emailAddress": {"address": "room@example.com"}},
            ],
            "sensitivity": "private",
            "isCancelled": false,
            "lastModifiedDateTime": "2031-01-01T08:00:00Z",
        })
    }

    #[test]
    fn a_room_copy_maps_to_an_exchange_item() {
        let room = RoomMailbox::parse("room@example.com").unwrap();
        let now = Timestamp::from_second(1_900_000_000).unwrap();
        let item = to_item(&room, &event(base()), now).unwrap();
        assert_eq!(item.organizer.as_str(), "alice@example.com");
        // Neither the organizer, optional attendees nor the room are required attendees.
        assert_eq!(
            item.required_attendees
                .iter()
                .map(EmailAddress::as_str)
                .collect::<Vec<_>>(),
            ["bob@example.com"]
        );
        assert!(item.private);
        assert_eq!(item.start.to_string(), "2031-01-06T09:00:00Z");
        assert_eq!(item.modified_at.to_string(), "2031-01-01T08:00:00Z");
        assert!(item.series.is_none());
    }

    #[test]
    fn series_masters_and_items_without_organizer_are_left_to_the_delta_round() {
        let room = RoomMailbox::parse("room@example.com").unwrap();
        let now = Timestamp::from_second(1_900_000_000).unwrap();
        let mut master = base();
        master["type"] = "seriesMaster".into();
        assert!(to_item(&room, &event(master), now).is_none());
        let mut orphan = base();
        orphan.as_object_mut().unwrap().remove("organizer");
        assert!(to_item(&room, &event(orphan), now).is_none());
        let mut occurrence = base();
        occurrence["type"] = "occurrence".into();
        occurrence["seriesMasterId"] = "AAMk-master".into();
        let item = to_item(&room, &event(occurrence), now).unwrap();
        assert_eq!(item.series.unwrap().master.as_str(), "AAMk-master");
    }

    #[test]
    fn graph_errors_map_to_the_engines_failure_classes() {
        let throttled = orb_graph_client::Error::Throttled {
            status: 429,
            retry_after: Some(std::time::Duration::from_secs(3)),
            attempts: 5,
        };
        assert_eq!(
            failure(&throttled),
            Failure::Retryable {
                retry_after: Some(SignedDuration::from_secs(3))
            }
        );
        let denied = orb_graph_client::Error::MailboxAccessDenied {
            mailbox: "bob@example.com".into(),
            code: "ErrorAccessDenied".into(),
            request_id: None,
        };
        assert!(matches!(failure(&denied), Failure::Denied { .. }));
        let gone = orb_graph_client::Error::NotFound {
            code: "ErrorItemNotFound".into(),
            request_id: None,
        };
        assert_eq!(failure(&gone), Failure::Gone);
        // orb's own credentials: the booking waits, it is not parked.
        let waits = Failure::Retryable {
            retry_after: Some(CREDENTIALS_RETRY),
        };
        let invalid = orb_graph_client::Error::InvalidClient {
            error_codes: vec![7_000_215],
            trace_id: None,
        };
        assert_eq!(failure(&invalid), waits);
        let consent = orb_graph_client::Error::ConsentMissing {
            error_codes: vec![65_001],
            trace_id: None,
        };
        assert_eq!(failure(&consent), waits);
        let unauthorized = orb_graph_client::Error::Unauthorized {
            code: "InvalidAuthenticationToken".into(),
            request_id: None,
        };
        assert_eq!(failure(&unauthorized), waits);
        let bad = orb_graph_client::Error::InvalidInput("no such property".into());
        assert!(matches!(failure(&bad), Failure::Rejected { .. }));
    }
}
