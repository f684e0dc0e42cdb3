//! Fetching the identity platform's signing keys (JWKS) that `validationTokens` are
//! checked against: `{graph.login_url}/common/discovery/v2.0/keys`.

use std::sync::Arc;
use std::time::Duration;

use orb_notification_crypto::jwt::Jwks;

use crate::Error;

/// Largest JWKS document accepted (Microsoft's is a few kilobytes).
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Fetches JWKS documents over HTTPS (or loopback HTTP) with rustls on aws-lc-rs.
#[derive(Clone, Debug)]
pub struct JwksFetcher {
    url: String,
    http: reqwest::Client,
}

impl JwksFetcher {
    /// A fetcher for `{login_url}/common/discovery/v2.0/keys`.
    pub fn new(login_url: &str) -> Result<Self, Error> {
        let url = format!(
            "{}/common/discovery/v2.0/keys",
            login_url.trim_end_matches('/')
        );
        Ok(Self {
            url,
            http: http_client()?,
        })
    }

    /// The URL fetched.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches and parses the key set.
    pub async fn fetch(&self) -> Result<Jwks, Error> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| Error::Jwks(format!("fetch failed: {e}")))?;
        if !response.status().is_success() {
            return Err(Error::Jwks(format!("status {}", response.status())));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Jwks(format!("read failed: {e}")))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(Error::Jwks("document too large".to_owned()));
        }
        Jwks::from_json(&body).map_err(|e| Error::Jwks(e.to_string()))
    }
}

/// A reqwest client on rustls with the aws-lc-rs provider and the system's roots.
fn http_client() -> Result<reqwest::Client, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate is skipped: the others still work.
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| Error::Jwks(format!("http client: {e}")))
}
