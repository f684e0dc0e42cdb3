//! The one error type of this crate.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// One entry of a TOPdesk error body. Both published shapes map onto it:
/// `{"errors":[{"errorCode","appliesTo","errorMessage"}]}` and `[{"message"}]`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ApiErrorDetail {
    /// The stable code to branch on (absent in the older `[{"message"}]` shape).
    pub error_code: Option<String>,
    /// The fields or parameters the error applies to.
    pub applies_to: Vec<String>,
    /// Human-readable text; informative only, it "can change without notice".
    pub message: Option<String>,
}

/// The error codes of a list of details, for messages and matching.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ApiErrors(pub Vec<ApiErrorDetail>);

impl ApiErrors {
    /// True when any entry carries this `errorCode`.
    pub fn has_code(&self, code: &str) -> bool {
        self.0.iter().any(|d| d.error_code.as_deref() == Some(code))
    }

    /// The `errorCode`s, in order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|d| d.error_code.as_deref())
    }
}

impl fmt::Display for ApiErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<&str> = self.codes().collect();
        if codes.is_empty() {
            f.write_str("no error code")
        } else {
            f.write_str(&codes.join(", "))
        }
    }
}

/// Everything that can go wrong talking to TOPdesk.
///
/// Messages never contain credentials or request bodies; server text is kept in the
/// structured [`ApiErrorDetail`]s, not in `Display`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 401: the login name or application password was rejected, or the password
    /// expired or was revoked. Needs an operator; retrying does not help.
    #[error("topdesk rejected the credentials (application password wrong, expired or revoked)")]
    CredentialsRejected {
        /// The error body, if TOPdesk sent one.
        details: ApiErrors,
    },
    /// 403: the account lacks the permission (or is not an operator).
    #[error("topdesk denied permission ({details})")]
    Forbidden {
        /// The error body, if any.
        details: ApiErrors,
    },
    /// 404: no such entity (or a base URL without `/tas/api`).
    #[error("topdesk has no such entity")]
    NotFound {
        /// The error body, if any.
        details: ApiErrors,
    },
    /// 406: the requested media type (API version) is not supported by this TOPdesk.
    #[error("topdesk does not support the requested api version (406)")]
    NotAcceptable,
    /// 400 or another 4xx: TOPdesk refused the request; branch on the `errorCode`s.
    #[error("topdesk rejected the request with status {status} ({details})")]
    Rejected {
        /// The HTTP status.
        status: StatusCode,
        /// The parsed error body.
        details: ApiErrors,
    },
    /// 429/502/503/504 still failing after every retry.
    #[error("topdesk is unavailable or throttling (status {status})")]
    Unavailable {
        /// The last HTTP status.
        status: StatusCode,
        /// The last `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// Another 5xx.
    #[error("topdesk failed with status {status}")]
    Server {
        /// The HTTP status.
        status: StatusCode,
    },
    /// The request did not complete within the configured timeout.
    #[error("topdesk did not answer within the timeout")]
    Timeout,
    /// The connection failed (DNS, TCP, TLS, I/O).
    #[error("could not reach topdesk")]
    Transport(#[source] reqwest::Error),
    /// TOPdesk answered with a body or header this client cannot understand.
    #[error("topdesk sent an unexpected response: {what}")]
    InvalidResponse {
        /// What was wrong.
        what: &'static str,
        /// The JSON error, if that was the cause.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The configuration cannot work (e.g. a base URL not ending in `/tas/api`).
    #[error("invalid topdesk configuration: {0}")]
    InvalidConfig(&'static str),
    /// A caller-supplied value cannot be sent (e.g. an empty list of dates).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Keyset paging made no progress even at the largest page size.
    #[error(
        "topdesk paging made no progress: more than {top} reservations start at the same instant"
    )]
    PagingStalled {
        /// The page size that was not enough.
        top: u32,
    },
    /// A reservation in this status can be neither cancelled nor rejected.
    #[error("a reservation with status {status} cannot be cancelled")]
    NotCancellable {
        /// The status as TOPdesk wrote it.
        status: String,
    },
}

impl Error {
    /// True when the same call may succeed later without anyone changing anything:
    /// throttling, unavailability, timeouts, connection failures and 5xx.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::Server { .. } | Self::Timeout | Self::Transport(_)
        )
    }

    /// The `errorCode`s TOPdesk sent, if any.
    pub fn error_codes(&self) -> Vec<&str> {
        match self {
            Self::CredentialsRejected { details }
            | Self::Forbidden { details }
            | Self::NotFound { details }
            | Self::Rejected { details, .. } => details.codes().collect(),
            _ => Vec::new(),
        }
    }

    /// True when TOPdesk sent this `errorCode`.
    pub fn has_error_code(&self, code: &str) -> bool {
        self.error_codes().contains(&code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        assert!(Error::Timeout.is_retryable());
        assert!(
            Error::Server {
                status: StatusCode::INTERNAL_SERVER_ERROR
            }
            .is_retryable()
        );
        assert!(
            Error::Unavailable {
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_after: None
            }
            .is_retryable()
        );
        assert!(
            !Error::CredentialsRejected {
                details: ApiErrors::default()
            }
            .is_retryable()
        );
        assert!(
            !Error::Rejected {
                status: StatusCode::BAD_REQUEST,
                details: ApiErrors::default()
            }
            .is_retryable()
        );
        assert!(!Error::NotAcceptable.is_retryable());
    }

    #[test]
    fn messages_are_lowercase_without_period() {
        let e = Error::Rejected {
            status: StatusCode::BAD_REQUEST,
            details: ApiErrors(vec![ApiErrorDetail {
                error_code: Some("x".into()),
                ..Default::default()
            }]),
        };
        let text = e.to_string();
        assert!(text.starts_with("topdesk rejected"));
        assert!(!text.ends_with('.'));
        assert!(e.has_error_code("x"));
    }
}
