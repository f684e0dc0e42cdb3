//! The one error type of orb-service.

/// What can go wrong while composing or running the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The state store failed.
    #[error("state store: {0}")]
    Store(#[from] orb_store::Error),
    /// A key or certificate could not be used.
    #[error("notification keys: {0}")]
    Crypto(#[from] orb_notification_crypto::Error),
    /// A secret the configuration refers to is missing.
    #[error("secret {0} is not set (use `orb secrets set {0}` or an env: reference)")]
    MissingSecret(String),
    /// An environment variable the configuration refers to is not set.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A Microsoft Graph call failed.
    #[error("graph: {0}")]
    Graph(#[from] orb_graph_client::Error),
    /// A TOPdesk call failed.
    #[error("topdesk: {0}")]
    Topdesk(#[from] orb_topdesk_client::Error),
    /// The JWKS for `validationTokens` could not be fetched or read.
    #[error("jwks: {0}")]
    Jwks(String),
    /// The webhook address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS files could not be used.
    #[error("tls: {0}")]
    Tls(String),
    /// A configured value cannot be used by the running daemon.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// The event loop stopped unexpectedly.
    #[error("event loop ended: {0}")]
    Loop(String),
}

impl Error {
    /// True for failures that may pass when retried (a busy or full disk, say).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Graph(e) => e.is_retryable(),
            Self::Topdesk(e) => e.is_retryable(),
            _ => false,
        }
    }
}
