//! App-only tokens: OAuth 2.0 client credentials with a client secret or a certificate
//! client assertion, and the cache that refreshes them ahead of expiry.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use http::{Request, Response, header};
use jiff::Timestamp;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::Error;
use crate::wire::{check_secure, encode_query_value};

/// How long before `expires_in` a cached token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// A secret string (client secret) that never appears in `Debug` output.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The signature scheme of the client assertion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AssertionStyle {
    /// RSA-PSS SHA-256 with an `x5t#S256` header (the current documentation).
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 SHA-256 with an `x5t` (SHA-1) header (older tenants and libraries).
    Rs256,
}

/// A certificate credential: the app's private key and the certificate registered on
/// the app registration.
pub struct ClientCertificate {
    key: RsaKeyPair,
    certificate_der: Vec<u8>,
    style: AssertionStyle,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.x5t_s256())
            .field("style", &self.style)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// Reads a PEM text holding a private key (`PRIVATE KEY` PKCS#8 or `RSA PRIVATE
    /// KEY` PKCS#1) and a `CERTIFICATE`, in any order.
    pub fn from_pem(pem_text: &str, style: AssertionStyle) -> Result<Self, Error> {
        let blocks = pem::parse_many(pem_text)
            .map_err(|_| Error::Credential("client certificate file is not PEM".into()))?;
        let mut key = None;
        let mut certificate_der = None;
        for block in &blocks {
            match block.tag() {
                "PRIVATE KEY" => {
                    key = Some(RsaKeyPair::from_pkcs8(block.contents()).map_err(|_| {
                        Error::Credential("private key is not a usable RSA PKCS#8 key".into())
                    })?);
                }
                "RSA PRIVATE KEY" => {
                    key = Some(RsaKeyPair::from_der(block.contents()).map_err(|_| {
                        Error::Credential("private key is not a usable RSA PKCS#1 key".into())
                    })?);
                }
                "CERTIFICATE" if certificate_der.is_none() => {
                    certificate_der = Some(block.contents().to_vec());
                }
                _ => {}
            }
        }
        Ok(Self {
            key: key.ok_or_else(|| Error::Credential("no private key in the PEM".into()))?,
            certificate_der: certificate_der
                .ok_or_else(|| Error::Credential("no certificate in the PEM".into()))?,
            style,
        })
    }

    /// base64url(SHA-256(DER certificate)).
    pub fn x5t_s256(&self) -> String {
        B64URL.encode(digest::digest(&digest::SHA256, &self.certificate_der))
    }

    /// base64url(SHA-1(DER certificate)).
    pub fn x5t(&self) -> String {
        B64URL.encode(digest::digest(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.certificate_der,
        ))
    }

    /// The assertion style.
    pub fn style(&self) -> AssertionStyle {
        self.style
    }
}

/// How the app proves its identity.
#[derive(Debug)]
pub enum Credential {
    /// A client secret.
    Secret(Secret),
    /// A certificate (client assertion).
    Certificate(ClientCertificate),
}

/// An access token; opaque to orb, never shown in `Debug` output.
#[derive(Clone)]
pub struct AccessToken {
    secret: Zeroizing<String>,
    /// `expires_in` as the token endpoint reported it.
    pub expires_in: Duration,
}

impl AccessToken {
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.secret.as_str())
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Where and as whom tokens are requested.
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    /// `{login_url}/{tenant}/oauth2/v2.0/token`.
    pub token_url: String,
    /// The application (client) id.
    pub client_id: String,
    /// `{graph origin}/.default`.
    pub scope: String,
}

impl TokenEndpoint {
    /// Builds the endpoint for a login URL and tenant.
    pub fn new(
        login_url: &str,
        tenant_id: &str,
        client_id: &str,
        scope: String,
    ) -> Result<Self, Error> {
        if tenant_id.is_empty() || tenant_id.contains(['/', '?', '#']) {
            return Err(Error::InvalidInput("tenant id".into()));
        }
        let token_url = format!(
            "{}/{tenant_id}/oauth2/v2.0/token",
            login_url.trim_end_matches('/')
        );
        let parsed = url::Url::parse(&token_url)
            .map_err(|e| Error::InvalidInput(format!("login url: {e}")))?;
        check_secure(&parsed)?;
        Ok(Self {
            token_url,
            client_id: client_id.to_owned(),
            scope,
        })
    }
}

/// Builds the signed client assertion JWT (valid 10 minutes from `now`).
pub fn build_client_assertion(
    certificate: &ClientCertificate,
    endpoint: &TokenEndpoint,
    now: Timestamp,
    jti: &str,
) -> Result<String, Error> {
    let header = match certificate.style {
        AssertionStyle::Ps256 => {
            serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": certificate.x5t_s256()})
        }
        AssertionStyle::Rs256 => {
            serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": certificate.x5t()})
        }
    };
    let nbf = now.as_second();
    let claims = serde_json::json!({
        "aud": endpoint.token_url,
        "iss": endpoint.client_id,
        "sub": endpoint.client_id,
        "jti": jti,
        "nbf": nbf,
        "iat": nbf,
        "exp": nbf + 600,
    });
    let input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let mut signature = vec![0u8; certificate.key.public_modulus_len()];
    let alg = match certificate.style {
        AssertionStyle::Ps256 => &RSA_PSS_SHA256,
        AssertionStyle::Rs256 => &RSA_PKCS1_SHA256,
    };
    certificate
        .key
        .sign(alg, &SystemRandom::new(), input.as_bytes(), &mut signature)
        .map_err(|_| Error::Credential("signing the client assertion failed".into()))?;
    Ok(format!("{input}.{}", B64URL.encode(signature)))
}

/// Builds the `POST {tenant}/oauth2/v2.0/token` request. The body holds the secret or
/// assertion: it is never logged.
pub fn build_token_request(
    endpoint: &TokenEndpoint,
    credential: &Credential,
    now: Timestamp,
    jti: &str,
) -> Result<Request<Vec<u8>>, Error> {
    let mut form = vec![
        ("client_id", endpoint.client_id.clone()),
        ("scope", endpoint.scope.clone()),
        ("grant_type", "client_credentials".to_owned()),
    ];
    match credential {
        Credential::Secret(secret) => form.push(("client_secret", secret.expose().to_owned())),
        Credential::Certificate(cert) => {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            form.push((
                "client_assertion",
                build_client_assertion(cert, endpoint, now, jti)?,
            ));
        }
    }
    let body = Zeroizing::new(
        form.iter()
            .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
            .collect::<Vec<_>>()
            .join("&"),
    );
    Request::builder()
        .method(http::Method::POST)
        .uri(&endpoint.token_url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(body.as_bytes().to_vec())
        .map_err(|e| Error::InvalidInput(format!("token request: {e}")))
}

/// Parses the token endpoint's answer: a token, or a typed error (`invalid_client`,
/// consent missing, others).
pub fn parse_token_response(response: &Response<Vec<u8>>) -> Result<AccessToken, Error> {
    if response.status().is_success() {
        let dto: TokenDto =
            serde_json::from_slice(response.body()).map_err(|_| Error::InvalidResponse {
                operation: "token",
                detail: "token response is not the expected JSON".into(),
            })?;
        if !dto.token_type.eq_ignore_ascii_case("bearer") || dto.access_token.is_empty() {
            return Err(Error::InvalidResponse {
                operation: "token",
                detail: "not a bearer token".into(),
            });
        }
        return Ok(AccessToken {
            secret: Zeroizing::new(dto.access_token),
            expires_in: Duration::from_secs(dto.expires_in.as_secs()),
        });
    }
    let dto: TokenErrorDto = serde_json::from_slice(response.body()).unwrap_or_default();
    let error = dto
        .error
        .unwrap_or_else(|| format!("http_{}", response.status().as_u16()));
    let codes = dto.error_codes.unwrap_or_default();
    // AADSTS65001: consent not granted; 650051/650052/500011: the app or resource
    // principal is missing in the tenant (no admin consent ever given).
    if codes
        .iter()
        .any(|c| matches!(c, 65001 | 650051 | 650052 | 500011))
    {
        return Err(Error::ConsentMissing {
            error_codes: codes,
            trace_id: dto.trace_id,
        });
    }
    if error == "invalid_client" {
        return Err(Error::InvalidClient {
            error_codes: codes,
            trace_id: dto.trace_id,
        });
    }
    if response.status().is_server_error() {
        return Err(Error::TokenRejected {
            error: "temporarily_unavailable".into(),
            error_codes: codes,
            trace_id: dto.trace_id,
        });
    }
    Err(Error::TokenRejected {
        error,
        error_codes: codes,
        trace_id: dto.trace_id,
    })
}

#[derive(Deserialize)]
struct TokenDto {
    token_type: String,
    access_token: String,
    expires_in: ExpiresIn,
}

/// `expires_in` arrives as a number, and from some endpoints as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Number(u64),
    Text(String),
}

impl ExpiresIn {
    fn as_secs(&self) -> u64 {
        match self {
            ExpiresIn::Number(n) => *n,
            ExpiresIn::Text(s) => s.trim().parse().unwrap_or(0),
        }
    }
}

#[derive(Deserialize, Default)]
struct TokenErrorDto {
    error: Option<String>,
    error_codes: Option<Vec<u32>>,
    trace_id: Option<String>,
}

/// A cached token with the instant it must be replaced.
#[derive(Debug)]
pub(crate) struct CachedToken {
    pub(crate) token: AccessToken,
    pub(crate) refresh_at: tokio::time::Instant,
}

impl CachedToken {
    pub(crate) fn new(token: AccessToken, obtained: tokio::time::Instant) -> Self {
        let refresh_at = obtained + token.expires_in.saturating_sub(REFRESH_MARGIN);
        Self { token, refresh_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> TokenEndpoint {
        TokenEndpoint::new(
            "https://login.microsoftonline.com",
            "tenant-1",
            "client-1",
            "https://graph.microsoft.com/.default".into(),
        )
        .unwrap()
    }

    #[test]
    fn secret_form_is_urlencoded_and_debug_is_redacted() {
        let cred = Credential::Secret(Secret::new("s3cr+t&x"));
        assert!(!format!("{cred:?}").contains("s3cr"));
        let req = build_token_request(&endpoint(), &cred, Timestamp::UNIX_EPOCH, "j").unwrap();
        let body = String::from_utf8(req.body().clone()).unwrap();
        assert!(body.contains("client_secret=s3cr%2Bt%26x"));
        assert!(body.contains("grant_type=client_credentials"));
        assert!(body.contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"));
        assert_eq!(
            req.uri().to_string(),
            "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token"
        );
    }

    #[test]
    fn token_errors_are_typed() {
        let resp = |status: u16, body: &str| {
            Response::builder()
                .status(status)
                .body(body.as_bytes().to_vec())
                .unwrap()
        };
        assert!(matches!(
            parse_token_response(&resp(
                401,
                r#"{"error":"invalid_client","error_codes":[7000215],"trace_id":"t"}"#
            )),
            Err(Error::InvalidClient { .. })
        ));
        assert!(matches!(
            parse_token_response(&resp(
                400,
                r#"{"error":"invalid_grant","error_codes":[65001]}"#
            )),
            Err(Error::ConsentMissing { .. })
        ));
        assert!(matches!(
            parse_token_response(&resp(400, r#"{"error":"invalid_scope","error_codes":[70011]}"#)),
            Err(Error::TokenRejected { ref error, .. }) if error == "invalid_scope"
        ));
        assert!(matches!(parse_token_response(&resp(503, "")), Err(e) if e.is_retryable()));
        let ok = parse_token_response(&resp(
            200,
            r#"{"token_type":"Bearer","expires_in":"3599","access_token":"eyJ.x.y"}"#,
        ))
        .unwrap();
        assert_eq!(ok.expires_in, Duration::from_secs(3599));
        assert!(!format!("{ok:?}").contains("eyJ"));
    }

    #[test]
    fn refresh_happens_five_minutes_early() {
        let now = tokio::time::Instant::now();
        let t = CachedToken::new(
            AccessToken {
                secret: Zeroizing::new("x".into()),
                expires_in: Duration::from_secs(3600),
            },
            now,
        );
        assert_eq!(t.refresh_at - now, Duration::from_secs(3300));
    }
}
