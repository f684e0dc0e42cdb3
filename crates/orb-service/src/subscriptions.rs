//! The Graph subscriptions: one rich subscription per managed room on
//! `/users/{room}/events?$select=…`, each with its own random `clientState` (kept
//! encrypted in the store), renewed at ~60 % of its lifetime, moved to the current
//! encryption certificate at renewal, adopted on start when Graph still has it.
//!
//! The decisions (what is due, what to adopt) are plain functions over the in-memory
//! [`Managed`] records; the Graph calls are small async functions the runtime spawns.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use orb_graph_client::{
    GraphClient, Mailbox, NOTIFICATION_SELECT, NewSubscription, Subscription,
    SubscriptionEncryption, SubscriptionId, events_resource,
};
use orb_store::{SecretBytes, SubscriptionState};

/// The longest lifetime requested: Graph's maximum for rich Outlook subscriptions is
/// 1,440 minutes; ten minutes of slack keep clock skew from turning a renewal into a 400.
pub const MAX_LIFETIME: Duration = Duration::from_secs(1430 * 60);

/// Reauthorization and renewal are never both sent within this period (issue 7).
pub const REAUTHORIZE_QUIET: SignedDuration = SignedDuration::from_mins(10);

/// A subscription orb manages.
#[derive(Clone, PartialEq, Eq)]
pub struct Managed {
    /// Graph's id.
    pub id: String,
    /// The room it watches (lowercase).
    pub room: String,
    /// The secret each notification must echo.
    pub client_state: String,
    /// The encryption certificate Graph encrypts with.
    pub certificate_id: String,
    /// When it expires.
    pub expires_at: Timestamp,
    /// When it was created, renewed or reauthorized last.
    pub touched_at: Timestamp,
}

impl std::fmt::Debug for Managed {
    // The client state is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("id", &self.id)
            .field("room", &self.room)
            .field("certificate_id", &self.certificate_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Managed {
    /// Whether the renewal is due: 60 % of the span from the last renewal to expiry has
    /// passed.
    pub fn renewal_due(&self, now: Timestamp) -> bool {
        let span = self.expires_at.duration_since(self.touched_at);
        let at = self
            .touched_at
            .checked_add(span.checked_mul(3).unwrap_or(span) / 5)
            .unwrap_or(self.touched_at);
        now >= at
    }

    /// The store record.
    pub fn to_record(&self) -> orb_store::Subscription {
        orb_store::Subscription::new(
            self.id.as_str().into(),
            self.room.as_str().into(),
            SecretBytes::new(self.client_state.as_bytes().to_vec()),
            self.certificate_id.clone(),
            self.expires_at,
            SubscriptionState::Active,
        )
    }

    /// From a store record (`None` when the client state is not text).
    pub fn from_record(r: &orb_store::Subscription, now: Timestamp) -> Option<Self> {
        Some(Self {
            id: r.id.as_str().to_owned(),
            room: r.room.as_str().to_owned(),
            client_state: String::from_utf8(r.client_state.expose().to_vec()).ok()?,
            certificate_id: r.certificate_id.clone(),
            expires_at: r.expires_at,
            touched_at: now,
        })
    }
}

/// A fresh random `clientState`: 96 hex digits from three v4 UUIDs (366 random bits, far
/// above the 32 bytes asked for, within Graph's 128-character limit).
pub fn new_client_state() -> String {
    (0..3)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect()
}

/// The resource path of a room's subscription.
pub fn resource(room: &Mailbox) -> String {
    events_resource(room, NOTIFICATION_SELECT)
}

/// Whether a Graph subscription is orb's for `room` at `notification_url`.
pub fn is_ours(sub: &Subscription, room: &Mailbox, notification_url: &str) -> bool {
    sub.notification_url == notification_url
        && sub
            .resource
            .trim_start_matches('/')
            .eq_ignore_ascii_case(resource(room).trim_start_matches('/'))
}

/// What the runtime needs to create a subscription.
#[derive(Clone, Debug)]
pub struct Target {
    /// `{public_url}/graph/notifications`.
    pub notification_url: String,
    /// `{public_url}/graph/lifecycle`.
    pub lifecycle_url: String,
    /// The current encryption certificate.
    pub encryption: SubscriptionEncryption,
    /// Requested lifetime.
    pub lifetime: Duration,
}

/// Creates the room's subscription with a fresh client state; returns it with the
/// client state it carries. See [`create_with`].
pub async fn create(
    graph: &GraphClient,
    room: &str,
    target: &Target,
    now: Timestamp,
) -> Result<Managed, orb_graph_client::Error> {
    create_with(graph, room, target, now, &new_client_state(), false).await
}

/// Creates the room's subscription carrying `client_state`.
///
/// Graph refuses a second subscription of the app on the same resource and change
/// types with 409. Rather than retrying blindly, the app's subscriptions are listed and
/// the one in the way is dealt with: when it is orb's own (same notification URL) and
/// `retried` says an earlier attempt with this very `client_state` may have created it
/// (its answer was lost), it is adopted; otherwise its client state is unknown to orb —
/// notifications could not be verified — so it is deleted and the create repeated once.
pub async fn create_with(
    graph: &GraphClient,
    room: &str,
    target: &Target,
    now: Timestamp,
    client_state: &str,
    retried: bool,
) -> Result<Managed, orb_graph_client::Error> {
    match post(graph, room, target, now, client_state).await {
        Err(orb_graph_client::Error::Graph { status: 409, .. }) => {}
        other => return other,
    }
    let mailbox = Mailbox::new(room)?;
    let wanted = resource(&mailbox);
    let in_the_way: Vec<Subscription> = graph
        .list_subscriptions()
        .await?
        .into_iter()
        .filter(|s| {
            s.resource
                .trim_start_matches('/')
                .eq_ignore_ascii_case(wanted.trim_start_matches('/'))
        })
        .collect();
    if retried
        && let Some(sub) = in_the_way
            .iter()
            .find(|s| is_ours(s, &mailbox, &target.notification_url))
    {
        tracing::info!(%room, id = %sub.id, "409: adopted the subscription an earlier attempt created");
        return Ok(Managed {
            id: sub.id.as_str().to_owned(),
            room: mailbox.as_str().to_owned(),
            client_state: client_state.to_owned(),
            certificate_id: sub
                .encryption_certificate_id
                .clone()
                .unwrap_or_else(|| target.encryption.certificate_id.clone()),
            expires_at: sub.expiration,
            touched_at: now,
        });
    }
    for sub in &in_the_way {
        tracing::warn!(%room, id = %sub.id, url = %sub.notification_url, "409: replacing a subscription whose client state orb does not hold");
        match graph.delete_subscription(&sub.id).await {
            Ok(()) | Err(orb_graph_client::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    post(graph, room, target, now, client_state).await
}

async fn post(
    graph: &GraphClient,
    room: &str,
    target: &Target,
    now: Timestamp,
    client_state: &str,
) -> Result<Managed, orb_graph_client::Error> {
    let mailbox = Mailbox::new(room)?;
    let client_state = client_state.to_owned();
    let new = NewSubscription {
        change_type: "created,updated,deleted".to_owned(),
        notification_url: target.notification_url.clone(),
        lifecycle_notification_url: Some(target.lifecycle_url.clone()),
        resource: resource(&mailbox),
        expiration: expiry(now, target.lifetime),
        client_state: client_state.clone(),
        encryption: Some(target.encryption.clone()),
    };
    let sub = graph.create_subscription(&new).await?;
    Ok(Managed {
        id: sub.id.as_str().to_owned(),
        room: mailbox.as_str().to_owned(),
        client_state,
        certificate_id: sub
            .encryption_certificate_id
            .unwrap_or_else(|| target.encryption.certificate_id.clone()),
        expires_at: sub.expiration,
        touched_at: now,
    })
}

/// Renews a subscription, moving it to the current certificate when it uses another.
pub async fn renew(
    graph: &GraphClient,
    managed: &Managed,
    target: &Target,
    now: Timestamp,
) -> Result<Managed, orb_graph_client::Error> {
    let id = SubscriptionId::new(managed.id.as_str())?;
    let encryption =
        (managed.certificate_id != target.encryption.certificate_id).then_some(&target.encryption);
    let sub = graph
        .renew_subscription(&id, expiry(now, target.lifetime), encryption)
        .await?;
    Ok(Managed {
        certificate_id: sub
            .encryption_certificate_id
            .unwrap_or_else(|| managed.certificate_id.clone()),
        expires_at: sub.expiration,
        touched_at: now,
        ..managed.clone()
    })
}

/// Reauthorizes a subscription (`reauthorizationRequired`).
pub async fn reauthorize(graph: &GraphClient, id: &str) -> Result<(), orb_graph_client::Error> {
    graph
        .reauthorize_subscription(&SubscriptionId::new(id)?)
        .await
}

/// Deletes a subscription orb can no longer use (its client state is lost).
pub async fn delete(graph: &GraphClient, id: &str) -> Result<(), orb_graph_client::Error> {
    graph.delete_subscription(&SubscriptionId::new(id)?).await
}

fn expiry(now: Timestamp, lifetime: Duration) -> Timestamp {
    let lifetime = SignedDuration::try_from(lifetime.min(MAX_LIFETIME))
        .unwrap_or(SignedDuration::from_mins(1430));
    now.checked_add(lifetime).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_states_are_long_random_and_distinct() {
        let a = new_client_state();
        assert_eq!(a.len(), 96);
        assert_ne!(a, new_client_state());
    }

    #[test]
    fn renewal_is_due_at_sixty_percent() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let m = Managed {
            id: "s".into(),
            room: "r@x".into(),
            client_state: "c".into(),
            certificate_id: "k".into(),
            expires_at: t0 + SignedDuration::from_mins(100),
            touched_at: t0,
        };
        assert!(!m.renewal_due(t0 + SignedDuration::from_mins(59)));
        assert!(m.renewal_due(t0 + SignedDuration::from_mins(60)));
    }
}
