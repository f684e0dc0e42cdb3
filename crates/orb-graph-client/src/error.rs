//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong talking to Microsoft Graph or the identity platform.
///
/// Messages are lowercase, carry Graph's error `code` and `request-id` where known, and
/// never contain a secret, token, assertion or request/response body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The identity platform rejected the client credentials (`invalid_client`): wrong
    /// secret, unknown or expired certificate, wrong client id.
    #[error(
        "token request rejected: invalid client credentials (codes {error_codes:?}, trace id {trace_id:?})"
    )]
    InvalidClient {
        /// `error_codes` (AADSTS numbers) of the token response.
        error_codes: Vec<u32>,
        /// `trace_id` of the token response, for Microsoft support.
        trace_id: Option<String>,
    },
    /// The application permissions were never granted admin consent in this tenant.
    #[error(
        "token request rejected: admin consent missing (codes {error_codes:?}, trace id {trace_id:?})"
    )]
    ConsentMissing {
        /// `error_codes` of the token response.
        error_codes: Vec<u32>,
        /// `trace_id` of the token response.
        trace_id: Option<String>,
    },
    /// Any other token endpoint error (`invalid_scope`, `unauthorized_client`, unknown tenant…).
    #[error("token request rejected: {error} (codes {error_codes:?}, trace id {trace_id:?})")]
    TokenRejected {
        /// The OAuth `error` value.
        error: String,
        /// `error_codes` of the token response.
        error_codes: Vec<u32>,
        /// `trace_id` of the token response.
        trace_id: Option<String>,
    },
    /// The configured credential cannot be used (unreadable PEM, not an RSA key, no certificate).
    #[error("unusable credential: {0}")]
    Credential(String),
    /// Graph answered 401 even with a freshly acquired token.
    #[error("graph rejected the access token (code {code}, request id {request_id:?})")]
    Unauthorized {
        /// Graph's error code.
        code: String,
        /// Graph's `request-id`.
        request_id: Option<String>,
    },
    /// The mailbox is outside the app's reach: an application access policy or RBAC for
    /// Applications scope excludes it (Graph answers 403 `ErrorAccessDenied` on a mailbox
    /// call). Also what a missing Calendars permission looks like on a mailbox call.
    #[error("access to mailbox {mailbox} denied (code {code}, request id {request_id:?})")]
    MailboxAccessDenied {
        /// The mailbox the call addressed.
        mailbox: String,
        /// Graph's error code.
        code: String,
        /// Graph's `request-id`.
        request_id: Option<String>,
    },
    /// Any other 403: typically the application permission is not granted.
    #[error("forbidden (code {code}, request id {request_id:?})")]
    Forbidden {
        /// Graph's error code.
        code: String,
        /// Graph's `request-id`.
        request_id: Option<String>,
    },
    /// The addressed item does not exist (404, e.g. `ErrorItemNotFound`).
    #[error("not found (code {code}, request id {request_id:?})")]
    NotFound {
        /// Graph's error code.
        code: String,
        /// Graph's `request-id`.
        request_id: Option<String>,
    },
    /// A subscription expiry beyond the service maximum: "Subscription expiration can
    /// only be N minutes in the future". Retry with an expiry under `max_minutes`.
    #[error(
        "subscription expiration too far in the future: at most {max_minutes} minutes (request id {request_id:?})"
    )]
    ExpirationTooFar {
        /// The maximum Graph named.
        max_minutes: u32,
        /// Graph's `request-id`.
        request_id: Option<String>,
    },
    /// The delta token expired or the service reset the sync state (`410 Gone`,
    /// `syncStateNotFound`, `resyncRequired`): drop the token and run a full round.
    #[error("delta sync state lost, full resync needed (code {code}, request id {request_id:?})")]
    ResyncRequired {
        /// Graph's error code (or `Gone`).
        code: String,
        /// Graph's `request-id`.
        request_id: Option<String>,
    },
    /// Still throttled (429/503/504) after the retry budget was spent.
    #[error(
        "throttled with status {status} after {attempts} attempts (retry after {retry_after:?})"
    )]
    Throttled {
        /// The last HTTP status.
        status: u16,
        /// The last `Retry-After`, if Graph sent one.
        retry_after: Option<Duration>,
        /// How many attempts were made.
        attempts: u32,
    },
    /// Any other Graph error response.
    #[error("graph error {status} (code {code}, request id {request_id:?})")]
    Graph {
        /// HTTP status.
        status: u16,
        /// Graph's error code (`unknown` when the body was not Graph's error JSON).
        code: String,
        /// Graph's `request-id`.
        request_id: Option<String>,
    },
    /// The request did not complete within the configured timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed (DNS, TCP, TLS, reset).
    #[error("transport failure")]
    Transport(#[source] reqwest::Error),
    /// Graph's answer could not be understood.
    #[error("unexpected response to {operation}: {detail}")]
    InvalidResponse {
        /// The operation's name.
        operation: &'static str,
        /// What was wrong (never the body itself).
        detail: String,
    },
    /// The caller asked for something this client refuses to send.
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// `sendMail` without a configured sender mailbox.
    #[error("mail is disabled: no sender mailbox is configured")]
    MailDisabled,
}

impl Error {
    /// Whether the same call may succeed later without any change on orb's side.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Throttled { .. } | Error::Timeout(_) | Error::Transport(_) => true,
            Error::Graph { status, .. } => *status >= 500,
            Error::TokenRejected { error, .. } => error == "temporarily_unavailable",
            _ => false,
        }
    }

    /// Graph's `request-id` for this failure, when there is one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Unauthorized { request_id, .. }
            | Error::MailboxAccessDenied { request_id, .. }
            | Error::Forbidden { request_id, .. }
            | Error::NotFound { request_id, .. }
            | Error::ExpirationTooFar { request_id, .. }
            | Error::ResyncRequired { request_id, .. }
            | Error::Graph { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability() {
        assert!(
            Error::Throttled {
                status: 429,
                retry_after: None,
                attempts: 3
            }
            .is_retryable()
        );
        assert!(
            Error::Graph {
                status: 500,
                code: "x".into(),
                request_id: None
            }
            .is_retryable()
        );
        assert!(
            !Error::NotFound {
                code: "ErrorItemNotFound".into(),
                request_id: None
            }
            .is_retryable()
        );
        assert!(
            !Error::InvalidClient {
                error_codes: vec![7000215],
                trace_id: None
            }
            .is_retryable()
        );
    }
}
