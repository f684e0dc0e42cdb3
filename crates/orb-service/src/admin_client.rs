//! The client side of the admin API, for `orb bookings list/show/retry`: talks to the
//! running daemon at `service.listen` (its loopback address when it listens on every
//! interface; https when TLS is configured, trusting only the configured certificate)
//! with the bearer token of `service.admin_token_file`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use url::Url;

use crate::api::{BOOKINGS, CERTIFICATES, read_token};
use crate::config::Config;
use crate::state::CertificateView;
use crate::view::{BookingDetail, Page, Query};

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call through the admin API did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration does not allow talking to the API (no token file, unreadable
    /// certificate, ...).
    #[error("{0}")]
    Setup(String),
    /// Nothing answered at the daemon's address.
    #[error("the orb daemon at {url} is not reachable (is `orb run` running?): {cause}")]
    Unreachable {
        /// Where it was looked for.
        url: String,
        /// The transport's reason.
        cause: String,
    },
    /// The daemon refused the token.
    #[error("the daemon refused the admin token (401); check service.admin_token_file")]
    Unauthorized,
    /// Too many failed attempts from this address.
    #[error("too many failed attempts from this address; try again later (429)")]
    RateLimited,
    /// The daemon runs without an admin token: the API is disabled.
    #[error("the daemon's admin API is disabled (it was started without service.admin_token_file)")]
    Disabled,
    /// No booking with this id.
    #[error("no booking {0}")]
    NotFound(String),
    /// The daemon refused the request; its reason.
    #[error("refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// The answer could not be read.
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
}

impl ClientError {
    /// True for problems of the configuration or the arguments (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Setup(_))
    }
}

/// The outcome of an accepted retry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RetryAccepted {
    /// The booking.
    pub id: String,
    /// The state it was in (`failed` or `parked`).
    pub was: String,
}

/// A client of one daemon's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    authorization: http::HeaderValue,
}

impl AdminClient {
    /// The client for the daemon of `config`.
    pub fn from_config(config: &Config) -> Result<Self, ClientError> {
        // Only aws-lc-rs may provide TLS; a second install is harmless.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let s = &config.service;
        let path = s.admin_token_file.as_ref().ok_or_else(|| {
            ClientError::Setup(
                "service.admin_token_file is not set: the admin API needs a token".to_owned(),
            )
        })?;
        let token = read_token(path).map_err(|e| ClientError::Setup(e.to_string()))?;
        let mut authorization = http::HeaderValue::from_bytes(
            &[b"Bearer ".as_slice(), &token].concat(),
        )
        .map_err(|_| {
            ClientError::Setup(format!(
                "{}: the token must be printable text",
                path.display()
            ))
        })?;
        authorization.set_sensitive(true);

        let addr = loopback(s.listen);
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        let base = match &s.tls_cert_file {
            None => format!("http://{addr}"),
            Some(cert) => {
                let pem = std::fs::read(cert)
                    .map_err(|e| ClientError::Setup(format!("{}: {e}", cert.display())))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| ClientError::Setup(format!("{}: {e}", cert.display())))?;
                builder = builder.tls_built_in_root_certs(false);
                for c in certs {
                    builder = builder.add_root_certificate(c);
                }
                // The certificate names the public host: ask for that name, connect to
                // the local address.
                match s.public_url.host() {
                    Some(url::Host::Domain(host)) => {
                        builder = builder.resolve(host, addr);
                        format!("https://{host}:{}", addr.port())
                    }
                    _ => format!("https://{addr}"),
                }
            }
        };
        let base = Url::parse(&base).map_err(|e| ClientError::Setup(format!("{base}: {e}")))?;
        let http = builder
            .build()
            .map_err(|e| ClientError::Setup(format!("http client: {e}")))?;
        Ok(Self {
            http,
            base,
            authorization,
        })
    }

    /// The API's base address.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// One page of bookings.
    pub async fn list(&self, query: &Query) -> Result<Page, ClientError> {
        let mut url = self.url(&[])?;
        url.query_pairs_mut()
            .extend_pairs(query.to_pairs().iter().map(|(k, v)| (*k, v.as_str())));
        let response = self.send(self.http.get(url)).await?;
        match response.status() {
            StatusCode::OK => read_json(response).await,
            StatusCode::NOT_FOUND => Err(ClientError::Disabled),
            _ => Err(refused(response).await),
        }
    }

    /// One booking with its audit trail.
    pub async fn show(&self, id: &str) -> Result<BookingDetail, ClientError> {
        let response = self.send(self.http.get(self.url(&[id])?)).await?;
        match response.status() {
            StatusCode::OK => read_json(response).await,
            StatusCode::NOT_FOUND => Err(not_found(response, id).await),
            _ => Err(refused(response).await),
        }
    }

    /// Asks the daemon to retry a failed or parked booking.
    pub async fn retry(&self, id: &str) -> Result<RetryAccepted, ClientError> {
        let response = self.send(self.http.post(self.url(&[id, "retry"])?)).await?;
        match response.status() {
            StatusCode::ACCEPTED => read_json(response).await,
            StatusCode::NOT_FOUND => Err(not_found(response, id).await),
            _ => Err(refused(response).await),
        }
    }

    /// `orb doctor`'s checks, run by the daemon with its own store and configuration.
    pub async fn doctor(&self) -> Result<crate::doctor::Report, ClientError> {
        let url = self.url_under(crate::api::DOCTOR, &[])?;
        // Every probe may take its own timeout; the checks run one after the other.
        let response = self
            .send(self.http.get(url).timeout(Duration::from_secs(300)))
            .await?;
        match response.status() {
            StatusCode::OK => read_json(response).await,
            StatusCode::NOT_FOUND => Err(ClientError::Disabled),
            _ => Err(refused(response).await),
        }
    }

    /// The daemon's notification-encryption certificates, oldest first.
    pub async fn certificates(&self) -> Result<Vec<CertificateView>, ClientError> {
        let url = self.url_under(CERTIFICATES, &[])?;
        let response = self.send(self.http.get(url)).await?;
        match response.status() {
            StatusCode::OK => read_json(response).await,
            StatusCode::NOT_FOUND => Err(ClientError::Disabled),
            _ => Err(refused(response).await),
        }
    }

    /// Asks the daemon to make a new current certificate (and renew its subscriptions
    /// onto it); the rotation happens in the daemon's loop right after the answer.
    pub async fn rotate_certificate(
        &self,
        bits: u32,
        validity_days: u64,
    ) -> Result<(), ClientError> {
        let mut url = self.url_under(CERTIFICATES, &["rotate"])?;
        url.query_pairs_mut()
            .append_pair("bits", &bits.to_string())
            .append_pair("validity_days", &validity_days.to_string());
        let response = self.send(self.http.post(url)).await?;
        match response.status() {
            StatusCode::ACCEPTED => Ok(()),
            StatusCode::NOT_FOUND => Err(ClientError::Disabled),
            _ => Err(refused(response).await),
        }
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        self.url_under(BOOKINGS, segments)
    }

    fn url_under(&self, prefix: &str, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ClientError::Setup(format!("{}: not a base URL", self.base)))?;
            path.clear();
            path.extend(prefix.trim_start_matches('/').split('/'));
            path.extend(segments);
        }
        Ok(url)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.to_string(),
                cause: error_chain(&e),
            })?;
        match response.status() {
            StatusCode::UNAUTHORIZED => Err(ClientError::Unauthorized),
            StatusCode::TOO_MANY_REQUESTS => Err(ClientError::RateLimited),
            _ => Ok(response),
        }
    }
}

/// The address to reach a daemon listening on `listen`.
fn loopback(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::Protocol(error_chain(&e)))?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

async fn not_found(response: reqwest::Response, id: &str) -> ClientError {
    // The API answers JSON; a bare 404 is the daemon without an API.
    match read_json::<ErrorBody>(response).await {
        Ok(_) => ClientError::NotFound(id.to_owned()),
        Err(_) => ClientError::Disabled,
    }
}

async fn refused(response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    match read_json::<ErrorBody>(response).await {
        Ok(body) => ClientError::Refused {
            status,
            message: body.error,
        },
        Err(_) => ClientError::Refused {
            status,
            message: "no reason given".to_owned(),
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_reached_on_loopback() {
        assert_eq!(
            loopback("0.0.0.0:8443".parse().unwrap()),
            "127.0.0.1:8443".parse().unwrap()
        );
        assert_eq!(
            loopback("[::]:8443".parse().unwrap()),
            "[::1]:8443".parse().unwrap()
        );
        assert_eq!(
            loopback("10.0.0.5:8443".parse().unwrap()),
            "10.0.0.5:8443".parse().unwrap()
        );
    }
}
