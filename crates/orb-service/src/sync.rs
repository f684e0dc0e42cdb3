//! Recovery reads of Exchange: `calendarView/delta` per room over the window
//! now − 1 day … now + horizon. A round with a stored delta link reports each change; a
//! round without one (first start, expired token, `missed`, `subscriptionRemoved`) lists
//! the whole window and reports it as one full pass, so bookings that vanished while orb
//! was not listening are cancelled too — subject to the engine's mass-cancel guard.
//!
//! The TOPdesk counterpart is [`crate::topdesk::poll`].

use jiff::{SignedDuration, Timestamp};
use orb_graph_client::{DeltaCursor, DeltaItem, GraphClient, Mailbox};
use orb_reconcile::{GraphEventId, Observation, Removal, RoomMailbox, Window};

use crate::exchange;

/// The result of one delta round of one room.
#[derive(Debug)]
pub struct ExchangeRound {
    /// The room.
    pub room: RoomMailbox,
    /// What the round saw, in order.
    pub observations: Vec<Observation>,
    /// The delta link to store for the next round.
    pub delta_link: String,
    /// Whether this was a full listing (no or an expired delta link).
    pub full: bool,
}

/// The sync window at `now`: one day back, `horizon` ahead.
pub fn window(now: Timestamp, horizon_days: u32) -> Window {
    let start = now
        .checked_sub(SignedDuration::from_hours(24))
        .unwrap_or(now);
    let end = now
        .checked_add(SignedDuration::from_hours(24 * i64::from(horizon_days)))
        .unwrap_or(now);
    Window { start, end }
}

/// Runs one delta round for `room`, continuing from `link` when given.
pub async fn exchange_round(
    graph: &GraphClient,
    room: RoomMailbox,
    link: Option<String>,
    window: Window,
    now: Timestamp,
) -> Result<ExchangeRound, orb_graph_client::Error> {
    let mailbox = Mailbox::new(room.as_str())?;
    if let Some(link) = link {
        match graph
            .calendar_view_delta(&mailbox, &DeltaCursor::Link(link))
            .await
        {
            Ok(round) => {
                let observations = round
                    .items
                    .iter()
                    .filter_map(|item| match item {
                        DeltaItem::Changed(e) => {
                            exchange::to_item(&room, e, now).map(Observation::ExchangeChanged)
                        }
                        DeltaItem::Removed { id, reason } => Some(Observation::ExchangeRemoved {
                            room: room.clone(),
                            event_id: GraphEventId::new(id.as_str()).ok()?,
                            reason: if reason == "deleted" {
                                Removal::Deleted
                            } else {
                                Removal::LeftWindow
                            },
                        }),
                    })
                    .collect();
                return Ok(ExchangeRound {
                    room,
                    observations,
                    delta_link: round.delta_link,
                    full: false,
                });
            }
            Err(orb_graph_client::Error::ResyncRequired { code, .. }) => {
                tracing::info!(%room, %code, "delta token expired; listing the whole window");
            }
            Err(e) => return Err(e),
        }
    }
    let round = graph
        .calendar_view_delta(
            &mailbox,
            &DeltaCursor::Start {
                start: window.start,
                end: window.end,
            },
        )
        .await?;
    let items = round
        .items
        .iter()
        .filter_map(|item| match item {
            DeltaItem::Changed(e) => exchange::to_item(&room, e, now),
            DeltaItem::Removed { .. } => None,
        })
        .collect();
    Ok(ExchangeRound {
        observations: vec![Observation::ExchangePass {
            room: room.clone(),
            window,
            items,
        }],
        room,
        delta_link: round.delta_link,
        full: true,
    })
}
