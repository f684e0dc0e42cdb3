//! TOPdesk's side of the service: reservations as engine observations, the window poll,
//! and the engine's TOPdesk effects (and person lookups) executed through
//! [`TopdeskClient`].

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orb_reconcile::{
    EffectKind, EmailAddress, Failure, Observation, Outcome, ReservationWrite, Rooms, TopdeskItem,
    TopdeskLocationId, TopdeskPersonId, TopdeskReservationId, TopdeskSeriesId, Window,
};
use orb_topdesk_client::{
    ExternalLinkId, ExternalLinkType, Fiql, LocationId, NewReservation, NewReservationStatus,
    PersonId, PersonLookup, Reservation, ReservationQuery, ReservationRef, ReservationStatus,
    ReservationUpdate, TopdeskClient,
};

use crate::exchange::Execution;

/// How often a failed person lookup is tried before it is given up (the engine issues
/// it again when the booking changes).
const LOOKUP_ATTEMPTS: u32 = 4;

/// A reservation as the engine sees it; `None` when it reserves no managed room or has
/// no planned times.
pub fn to_item(
    r: &Reservation,
    rooms: &Rooms,
    link_type: ExternalLinkType,
    now: Timestamp,
) -> Option<TopdeskItem> {
    let location = r
        .location_ids()
        .filter_map(|id| TopdeskLocationId::new(id.as_str()).ok())
        .find(|id| rooms.room(id).is_some())?;
    let cancelled = match &r.status {
        Some(status) => !status.is_active(),
        None => false,
    } || r.archived == Some(true);
    Some(TopdeskItem {
        id: TopdeskReservationId::new(r.id.as_str()).ok()?,
        location,
        requester_email: r
            .requester
            .as_ref()
            .and_then(|p| p.email.as_deref())
            .and_then(|e| EmailAddress::parse(e).ok()),
        subject: r.brief_description.clone(),
        start: r.planned_start?,
        end: r.planned_end?,
        cancelled,
        external_link: r.external_link(link_type).map(|l| l.id.as_str().to_owned()),
        series: r
            .series
            .as_ref()
            .and_then(|s| TopdeskSeriesId::new(s.as_str()).ok()),
        conflicting: is_conflicting(r),
        modified_at: r.modification_date.unwrap_or(now),
    })
}

/// Lists every reservation starting in `window` and reports it as one full pass over
/// the managed rooms, followed by one `TopdeskConflicting` for each listed reservation
/// TOPdesk accepted but marks as overlapping another booking (`conflicting*`): the engine
/// needs the pass first to know the reservation, and repeats are harmless.
pub async fn poll(
    client: &TopdeskClient,
    rooms: &Rooms,
    window: Window,
    now: Timestamp,
) -> Result<Vec<Observation>, orb_topdesk_client::Error> {
    let filter =
        Fiql::ge("plannedStartDate", window.start).and(Fiql::lt("plannedStartDate", window.end));
    let listed = client
        .list_reservations(&ReservationQuery::new(filter))
        .await?;
    let link_type = client.external_link_type();
    let mut conflicting = Vec::new();
    let mut items = Vec::new();
    for r in &listed {
        let Some(item) = to_item(r, rooms, link_type, now).filter(|i| window.contains(i.start))
        else {
            continue;
        };
        if is_conflicting(r) {
            conflicting.push(Observation::TopdeskConflicting {
                id: item.id.clone(),
                reason: Arc::from("TOPdesk marks the room as double-booked for this time"),
            });
        }
        items.push(item);
    }
    let mut observations = vec![Observation::TopdeskPass { window, items }];
    observations.extend(conflicting);
    Ok(observations)
}

/// Whether TOPdesk accepted the reservation but marks it as overlapping another booking.
pub fn is_conflicting(r: &Reservation) -> bool {
    matches!(
        r.status,
        Some(ReservationStatus::ConflictingPlanned | ReservationStatus::ConflictingRequest)
    )
}

/// Executes one TOPdesk effect or person lookup. Effects of other kinds give `None`.
pub async fn execute(client: &TopdeskClient, kind: &EffectKind) -> Option<Execution> {
    Some(match kind {
        EffectKind::LookUpPerson { email } => look_up(client, email).await,
        EffectKind::CreateReservation {
            effect,
            key,
            reservation,
        } => match create(client, key.as_str(), reservation).await {
            Ok(o) => Execution::succeeded(effect.clone(), o),
            Err(f) => Execution::failed(effect.clone(), f),
        },
        EffectKind::UpdateReservation {
            effect,
            id,
            reservation,
        } => match update(client, id, reservation).await {
            Ok(o) => Execution::succeeded(effect.clone(), o),
            Err(f) => Execution::failed(effect.clone(), f),
        },
        EffectKind::CancelReservation { effect, id } => {
            let reference = ReservationRef::Id(id.as_str().into());
            match client.cancel_reservation(&reference).await {
                Ok(_) | Err(orb_topdesk_client::Error::NotFound { .. }) => {
                    Execution::succeeded(effect.clone(), Outcome::Cancelled)
                }
                Err(e) => Execution::failed(effect.clone(), failure(&e)),
            }
        }
        _ => return None,
    })
}

/// TOPdesk's error as the engine's failure class.
pub fn failure(e: &orb_topdesk_client::Error) -> Failure {
    use orb_topdesk_client::Error as T;
    match e {
        T::Unavailable { retry_after, .. } => Failure::Retryable {
            retry_after: retry_after.and_then(|d| SignedDuration::try_from(d).ok()),
        },
        _ if e.is_retryable() => Failure::Retryable { retry_after: None },
        // orb's operator account, not this booking: an expired application password or a
        // withdrawn permission fails every write until an operator acts, so the booking
        // waits (and `/healthz` names the cause) instead of being parked at once.
        T::CredentialsRejected { .. } | T::Forbidden { .. } => Failure::Retryable {
            retry_after: Some(crate::exchange::CREDENTIALS_RETRY),
        },
        T::NotFound { .. } => Failure::Gone,
        // A 4xx on a booking write is TOPdesk refusing the booking (room taken, outside
        // opening hours, ...): a conflict for the organizer, not a retry.
        T::Rejected { .. } | T::NotCancellable { .. } => Failure::Refused {
            reason: Arc::from(e.to_string()),
        },
        _ => Failure::Rejected {
            reason: Arc::from(e.to_string()),
        },
    }
}

async fn look_up(client: &TopdeskClient, email: &EmailAddress) -> Execution {
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=LOOKUP_ATTEMPTS {
        match client.person_by_email(email.as_str()).await {
            Ok(found) => {
                let person = match found {
                    PersonLookup::Found(p) => TopdeskPersonId::new(p.id.as_str()).ok(),
                    PersonLookup::NotFound => None,
                    PersonLookup::Ambiguous(_) => {
                        tracing::warn!(%email, "several TOPdesk persons share this address");
                        None
                    }
                };
                return Execution {
                    observation: Some(Observation::PersonResolved {
                        email: email.clone(),
                        person,
                    }),
                    outcome: "ok",
                };
            }
            Err(e) if e.is_retryable() && attempt < LOOKUP_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "person lookup failed; trying again");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
            Err(e) => {
                tracing::warn!(error = %e, %email, "person lookup failed");
                return Execution {
                    observation: None,
                    outcome: if e.is_retryable() {
                        "retryable"
                    } else {
                        "rejected"
                    },
                };
            }
        }
    }
    Execution {
        observation: None,
        outcome: "retryable",
    }
}

async fn create(
    client: &TopdeskClient,
    key: &str,
    w: &ReservationWrite,
) -> Result<Outcome, Failure> {
    // Idempotency: a create retried after a lost answer (or a crash) finds its own
    // reservation by the external link instead of making a second one.
    let link_type = client.external_link_type();
    let existing = client
        .list_reservations(&ReservationQuery::new(
            Fiql::eq("externalLinks.id", key)
                .and(Fiql::eq("externalLinks.type", link_type.to_string())),
        ))
        .await
        .map_err(|e| failure(&e))?;
    if let Some(found) = existing.into_iter().next() {
        return outcome(&found);
    }
    let requester = w.requester.as_ref().ok_or_else(|| Failure::Rejected {
        reason: Arc::from(format!("no TOPdesk person for {}", w.requester_email)),
    })?;
    let new = NewReservation {
        requester: PersonId::new(requester.as_str()),
        start: w.start,
        end: w.end,
        locations: vec![LocationId::new(w.location.as_str())],
        brief_description: Some(w.subject.to_string()),
        notes: None,
        number_of_persons: None,
        status: NewReservationStatus::Planned,
        external_link_id: Some(ExternalLinkId::new(key)),
    };
    let created = client
        .create_reservation(&new)
        .await
        .map_err(|e| failure(&e))?;
    outcome(&created)
}

async fn update(
    client: &TopdeskClient,
    id: &TopdeskReservationId,
    w: &ReservationWrite,
) -> Result<Outcome, Failure> {
    let reference = ReservationRef::Id(id.as_str().into());
    let mut current = client
        .reservation(&reference)
        .await
        .map_err(|e| failure(&e))?;
    if matches!(
        current.status,
        Some(ReservationStatus::Cancelled | ReservationStatus::RejectedRequest)
    ) {
        return Err(Failure::Gone);
    }
    if current.planned_start != Some(w.start) || current.planned_end != Some(w.end) {
        current = client
            .reschedule(&reference, w.start, w.end)
            .await
            .map_err(|e| failure(&e))?;
    }
    let wanted = LocationId::new(w.location.as_str());
    if !current.location_ids().any(|l| *l == wanted) {
        let from = current.location_ids().next().cloned();
        current = match from {
            Some(from) => client.move_facility(&reference, &from, &wanted).await,
            None => {
                client
                    .add_facilities(&reference, std::slice::from_ref(&wanted))
                    .await
            }
        }
        .map_err(|e| failure(&e))?;
    }
    let mut patch = ReservationUpdate::default();
    if current.brief_description.as_deref() != Some(&*w.subject) {
        patch.brief_description = Some(w.subject.to_string());
    }
    if let Some(requester) = &w.requester
        && current.requester.as_ref().map(|p| p.id.as_str()) != Some(requester.as_str())
    {
        patch.requester = Some(PersonId::new(requester.as_str()));
    }
    if patch != ReservationUpdate::default() {
        current = client
            .update_reservation(&reference, &patch)
            .await
            .map_err(|e| failure(&e))?;
    }
    outcome(&current)
}

fn outcome(r: &Reservation) -> Result<Outcome, Failure> {
    let id = TopdeskReservationId::new(r.id.as_str()).map_err(|_| Failure::Rejected {
        reason: Arc::from("topdesk returned a reservation without an id"),
    })?;
    Ok(Outcome::Reservation {
        id,
        modified_at: r.modification_date.unwrap_or(Timestamp::UNIX_EPOCH),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orb_reconcile::RoomMailbox;
    use orb_topdesk_client::{
        ExternalLink, PersonRef, ReservedFacility, ReservedLocation, TopdeskReservationId as Id,
    };

    fn rooms() -> Rooms {
        Rooms::new([(
            RoomMailbox::parse("room@example.com").unwrap(),
            TopdeskLocationId::new("loc-1").unwrap(),
        )])
    }

    fn reservation(location: &str, status: ReservationStatus) -> Reservation {
        let t = Timestamp::from_second(1_900_000_000).unwrap();
        Reservation {
            id: Id::new("r-1"),
            number: None,
            status: Some(status),
            archived: Some(false),
            brief_description: Some("Budget".into()),
            notes: None,
            requester: Some(PersonRef {
                id: PersonId::new("p-1"),
                name: None,
                email: Some("Bob@Example.com".into()),
            }),
            number_of_persons: None,
            planned_start: Some(t),
            planned_end: Some(t + SignedDuration::from_hours(1)),
            facilities: vec![ReservedFacility {
                id: None,
                location: Some(ReservedLocation {
                    id: LocationId::new(location),
                    name: None,
                    room_number: None,
                    branch: None,
                }),
                start_block: None,
                end_block: None,
                issued_at: None,
            }],
            series: None,
            external_links: vec![ExternalLink {
                id: ExternalLinkId::new("orb:x-1:t0"),
                link_type: "4711".into(),
                date: None,
            }],
            modification_date: Some(t),
        }
    }

    #[test]
    fn a_reservation_on_a_managed_room_maps_to_a_topdesk_item() {
        let link = ExternalLinkType::new(4711).unwrap();
        let now = Timestamp::UNIX_EPOCH;
        let item = to_item(
            &reservation("loc-1", ReservationStatus::Planned),
            &rooms(),
            link,
            now,
        )
        .unwrap();
        assert_eq!(item.location.as_str(), "loc-1");
        assert_eq!(item.requester_email.unwrap().as_str(), "bob@example.com");
        assert_eq!(item.external_link.as_deref(), Some("orb:x-1:t0"));
        assert!(!item.cancelled);
        let cancelled = to_item(
            &reservation("loc-1", ReservationStatus::Cancelled),
            &rooms(),
            link,
            now,
        )
        .unwrap();
        assert!(cancelled.cancelled);
        // Another integration's link type is not orb's.
        let other = ExternalLinkType::new(1).unwrap();
        let foreign = to_item(
            &reservation("loc-1", ReservationStatus::Planned),
            &rooms(),
            other,
            now,
        )
        .unwrap();
        assert!(foreign.external_link.is_none());
    }

    #[test]
    fn reservations_of_unmanaged_rooms_are_not_seen() {
        let link = ExternalLinkType::new(4711).unwrap();
        assert!(
            to_item(
                &reservation("elsewhere", ReservationStatus::Planned),
                &rooms(),
                link,
                Timestamp::UNIX_EPOCH
            )
            .is_none()
        );
    }

    #[test]
    fn credential_failures_wait_and_refusals_are_conflicts() {
        use orb_topdesk_client::{ApiErrors, Error as T};
        let waits = Failure::Retryable {
            retry_after: Some(crate::exchange::CREDENTIALS_RETRY),
        };
        let expired = T::CredentialsRejected {
            details: ApiErrors::default(),
        };
        assert_eq!(failure(&expired), waits);
        let forbidden = T::Forbidden {
            details: ApiErrors::default(),
        };
        assert_eq!(failure(&forbidden), waits);
        let refused = T::Rejected {
            status: http::StatusCode::BAD_REQUEST,
            details: ApiErrors::default(),
        };
        assert!(matches!(failure(&refused), Failure::Refused { .. }));
        let gone = T::NotFound {
            details: ApiErrors::default(),
        };
        assert_eq!(failure(&gone), Failure::Gone);
    }
}
