//! From a raw inbox body to verified changes: the checks Graph's docs prescribe, in their
//! order, for each POST and each item (reference/graph.md §3.4, §4):
//!
//! 1. the body is a notification collection;
//! 2. every `validationTokens` JWT is valid (signature by `kid` from the JWKS, lifetime,
//!    issuer for our tenant, audience = our client id, caller = Graph change tracking) —
//!    a collection with encrypted items but no tokens is refused;
//! 3. per item: the subscription is known, `clientState` matches (constant time), the
//!    tenant is ours, then the `encryptedContent` is verified and decrypted and its `id`
//!    cross-checked with `resourceData.id`.
//!
//! A failed token rejects the whole POST; a failed item rejects only that item. This module
//! is synchronous and does no I/O: subscriptions, the key ring, the JWKS and `now` are
//! passed in; an unknown signing key is reported so the caller can refresh the JWKS once.

use std::time::SystemTime;

use orb_notification_crypto::jwt::{Jwks, TokenError, TokenValidator};
use orb_notification_crypto::{
    ChangeNotification, KeyRing, NotificationCollection, client_state_eq,
};
use serde_json::Value;

use crate::metrics::RejectReason;

/// A subscription as the intake needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownSubscription {
    /// Graph's subscription id.
    pub id: String,
    /// The room mailbox it watches.
    pub room: String,
    /// The secret every notification must echo.
    pub client_state: String,
}

/// What kind of change Graph reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// `created`.
    Created,
    /// `updated`.
    Updated,
    /// `deleted`.
    Deleted,
}

/// A lifecycle event for a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleKind {
    /// `reauthorizationRequired`: reauthorize or renew.
    ReauthorizationRequired,
    /// `subscriptionRemoved`: recreate, then resync.
    SubscriptionRemoved,
    /// `missed`: resync with delta.
    Missed,
}

/// One item that passed every check.
#[derive(Clone, Debug, PartialEq)]
pub enum Verified {
    /// A change to an event in a managed room's calendar.
    Change {
        /// The subscription it came through.
        subscription_id: String,
        /// The room mailbox (from the subscription, never from the payload).
        room: String,
        /// Created, updated or deleted.
        kind: ChangeKind,
        /// The event id (`resourceData.id`), when given.
        event_id: Option<String>,
        /// The decrypted event resource (rich notifications), or `None` (basic ones:
        /// fetch or delta-sync the room).
        resource: Option<Value>,
    },
    /// A lifecycle event.
    Lifecycle {
        /// The subscription concerned.
        subscription_id: String,
        /// Its room.
        room: String,
        /// What happened.
        kind: LifecycleKind,
    },
}

/// One item that failed a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the item in the collection (`None`: the whole POST).
    pub item: Option<usize>,
    /// The metric reason.
    pub reason: RejectReason,
    /// Plain-words detail for the log and audit (no secrets, no content).
    pub detail: String,
}

/// The outcome of one inbox body.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IntakeOutcome {
    /// Items that passed, in order.
    pub verified: Vec<Verified>,
    /// Items (or the whole POST) that failed.
    pub rejected: Vec<Rejection>,
}

/// The body could not be judged yet: a token names a signing key the JWKS lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksRefreshNeeded {
    /// The unknown `kid`.
    pub kid: String,
}

/// Checks bodies for one app registration and tenant.
#[derive(Debug, Clone)]
pub struct Intake {
    tenant_id: String,
    validator: TokenValidator,
}

impl Intake {
    /// An intake for `client_id` in `tenant_id`, with `login_url` as the v2 token issuer.
    pub fn new(client_id: &str, tenant_id: &str, login_url: &str) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            validator: TokenValidator::new(client_id, tenant_id, login_url),
        }
    }

    /// Judges one POST body. `subscription` looks a subscription up by id.
    pub fn process(
        &self,
        body: &[u8],
        subscription: impl Fn(&str) -> Option<KnownSubscription>,
        ring: &KeyRing,
        jwks: &Jwks,
        now: SystemTime,
    ) -> Result<IntakeOutcome, JwksRefreshNeeded> {
        let mut out = IntakeOutcome::default();
        let collection = match NotificationCollection::from_json(body) {
            Ok(c) => c,
            Err(e) => {
                out.rejected
                    .push(whole(RejectReason::Malformed, e.to_string()));
                return Ok(out);
            }
        };

        let has_encrypted = collection
            .value
            .iter()
            .any(|i| i.encrypted_content_raw.is_some());
        match &collection.validation_tokens {
            Some(tokens) if !tokens.is_empty() => {
                for token in tokens {
                    match self.validator.validate(token, jwks, now) {
                        Ok(verified) => {
                            if verified
                                .tenant_id
                                .as_deref()
                                .is_some_and(|t| t != self.tenant_id)
                            {
                                out.rejected.push(whole(
                                    RejectReason::Token,
                                    "token for another tenant".to_owned(),
                                ));
                                return Ok(out);
                            }
                        }
                        Err(TokenError::UnknownKeyId(kid)) => {
                            return Err(JwksRefreshNeeded { kid });
                        }
                        Err(e) => {
                            out.rejected.push(whole(RejectReason::Token, e.to_string()));
                            return Ok(out);
                        }
                    }
                }
            }
            _ if has_encrypted => {
                out.rejected.push(whole(
                    RejectReason::Token,
                    "encrypted notifications without validationTokens".to_owned(),
                ));
                return Ok(out);
            }
            _ => {}
        }

        for (index, item) in collection.value.iter().enumerate() {
            match self.item(item, &subscription, ring) {
                Ok(v) => out.verified.push(v),
                Err((reason, detail)) => out.rejected.push(Rejection {
                    item: Some(index),
                    reason,
                    detail,
                }),
            }
        }
        Ok(out)
    }

    fn item(
        &self,
        item: &ChangeNotification,
        subscription: &impl Fn(&str) -> Option<KnownSubscription>,
        ring: &KeyRing,
    ) -> Result<Verified, (RejectReason, String)> {
        let id = item.subscription_id.as_deref().unwrap_or_default();
        let sub = subscription(id).ok_or_else(|| {
            (
                RejectReason::UnknownSubscription,
                format!("unknown subscription {id:?}"),
            )
        })?;
        let state = item.client_state.as_deref().unwrap_or_default();
        if !client_state_eq(state, &sub.client_state) {
            return Err((
                RejectReason::ClientState,
                format!("clientState mismatch for subscription {id}"),
            ));
        }
        if item.tenant_id.as_deref() != Some(self.tenant_id.as_str()) {
            return Err((
                RejectReason::Tenant,
                "notification for another tenant".to_owned(),
            ));
        }

        if let Some(event) = &item.lifecycle_event {
            let kind = match event.as_str() {
                "reauthorizationRequired" => LifecycleKind::ReauthorizationRequired,
                "subscriptionRemoved" => LifecycleKind::SubscriptionRemoved,
                "missed" => LifecycleKind::Missed,
                other => {
                    return Err((
                        RejectReason::Malformed,
                        format!("unknown lifecycle event {other:?}"),
                    ));
                }
            };
            return Ok(Verified::Lifecycle {
                subscription_id: sub.id,
                room: sub.room,
                kind,
            });
        }

        let kind = match item.change_type.as_deref() {
            Some("created") => ChangeKind::Created,
            Some("updated") => ChangeKind::Updated,
            Some("deleted") => ChangeKind::Deleted,
            other => {
                return Err((
                    RejectReason::Malformed,
                    format!("unknown changeType {other:?}"),
                ));
            }
        };
        let event_id = item
            .resource_data
            .as_ref()
            .and_then(|d| d.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let resource = match item.encrypted_content() {
            None => None,
            Some(Err(e)) => return Err((RejectReason::Decrypt, e.to_string())),
            Some(Ok(content)) => {
                let plain = ring
                    .decrypt(&content)
                    .map_err(|e| (RejectReason::Decrypt, e.to_string()))?;
                let value: Value = serde_json::from_slice(&plain).map_err(|e| {
                    (
                        RejectReason::Decrypt,
                        format!("decrypted content is not JSON: {e}"),
                    )
                })?;
                let inner_id = value.get("id").and_then(Value::as_str);
                if let (Some(outer), Some(inner)) = (event_id.as_deref(), inner_id)
                    && outer != inner
                {
                    return Err((
                        RejectReason::Decrypt,
                        "decrypted id differs from resourceData.id".to_owned(),
                    ));
                }
                Some(value)
            }
        };
        Ok(Verified::Change {
            subscription_id: sub.id,
            room: sub.room,
            kind,
            event_id,
            resource,
        })
    }
}

fn whole(reason: RejectReason, detail: String) -> Rejection {
    Rejection {
        item: None,
        reason,
        detail,
    }
}
