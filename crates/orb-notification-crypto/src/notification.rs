//! The envelope Graph POSTs to the webhook: a `changeNotificationCollection`.
//!
//! Parsed leniently (unknown fields ignored, every field optional) so that one odd item
//! never hides the others; what an item *must* carry is checked where it is used.

use serde::Deserialize;
use serde_json::Value;

use crate::Error;
use crate::content::EncryptedContent;

/// A change-notification collection as Graph POSTs it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationCollection {
    /// The notifications, in the order Graph sent them.
    pub value: Vec<ChangeNotification>,
    /// JWTs proving Graph sent the collection (rich notifications only).
    #[serde(default)]
    pub validation_tokens: Option<Vec<String>>,
}

impl NotificationCollection {
    /// Parses a POST body. Fails if it is not a JSON object with a `value` array of objects.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(body).map_err(Error::NotACollection)
    }
}

/// One item of a collection (`changeNotification`, or a lifecycle notification).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotification {
    /// The subscription this item belongs to.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// The secret the subscription was created with; compare in constant time.
    #[serde(default)]
    pub client_state: Option<String>,
    /// `created`, `updated` or `deleted`.
    #[serde(default)]
    pub change_type: Option<String>,
    /// The resource path, e.g. `Users/{id}/Events/{id}`.
    #[serde(default)]
    pub resource: Option<String>,
    /// The tenant of the resource.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Set on lifecycle notifications: `reauthorizationRequired`, `subscriptionRemoved`, `missed`.
    #[serde(default)]
    pub lifecycle_event: Option<String>,
    /// When the subscription expires.
    #[serde(default)]
    pub subscription_expiration_date_time: Option<String>,
    /// Basic resource data (`id`, `@odata.type`, ...).
    #[serde(default)]
    pub resource_data: Option<Value>,
    /// The encrypted resource, raw; see [`Self::encrypted_content`].
    #[serde(default, rename = "encryptedContent")]
    pub encrypted_content_raw: Option<Value>,
}

impl ChangeNotification {
    /// The item's `encryptedContent`, if it has one, or why it is malformed.
    pub fn encrypted_content(&self) -> Option<Result<EncryptedContent, Error>> {
        self.encrypted_content_raw
            .as_ref()
            .map(|raw| EncryptedContent::deserialize(raw).map_err(Error::MalformedContent))
    }
}
