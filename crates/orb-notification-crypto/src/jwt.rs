//! `validationTokens`: the JWTs with which Graph proves it sent a rich notification.
//!
//! Checks (Graph docs, "validating the authenticity of notifications"): RS256 signature by
//! a key of the identity platform's JWKS, chosen by `kid`; `exp`/`nbf` with a small skew;
//! issuer `https://sts.windows.net/{tenant}/` (v1) or `{login_url}/{tenant}/v2.0` (v2);
//! `aud` = our client id; the caller — `appid` (v1) or `azp` (v2) — is Microsoft Graph
//! Change Tracking. Fetching the JWKS is the caller's job; this module only decides.
//!
//! [`TokenSigner`] is the issuing side, for the Graph emulator and tests.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// The app id of Microsoft Graph Change Tracking, the only legitimate caller.
pub const GRAPH_CHANGE_TRACKING_APP_ID: &str = "0bf30f3b-4a52-48df-9a82-234910c4a086";

/// Microsoft's public-cloud login origin.
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";

/// Why a validation token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url parts with JSON header and claims.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than RS256 (`none` and HMAC included).
    #[error("algorithm {0:?} is not allowed")]
    DisallowedAlgorithm(String),
    /// The header has no `kid`.
    #[error("token has no key id")]
    MissingKeyId,
    /// No key with this `kid` in the JWKS: refresh the JWKS once, then reject.
    #[error("unknown signing key {0:?}")]
    UnknownKeyId(String),
    /// The signature does not verify with the named key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past (beyond the allowed skew) or missing.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed skew).
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` is not our client id.
    #[error("wrong audience")]
    WrongAudience,
    /// `iss` is neither accepted issuer form for our tenant.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `azp` (v2) or `appid` (v1) is not Microsoft Graph Change Tracking.
    #[error("token was not issued to Microsoft Graph change tracking")]
    WrongCaller,
    /// The JWKS document could not be read.
    #[error("invalid JWKS document")]
    InvalidJwks,
}

/// A parsed JWKS document (the identity platform's signing keys).
#[derive(Debug, Clone)]
pub struct Jwks(JwkSet);

impl Jwks {
    /// Parses `{"keys": [...]}`.
    pub fn from_json(body: &[u8]) -> Result<Self, TokenError> {
        serde_json::from_slice(body)
            .map(Self)
            .map_err(|_| TokenError::InvalidJwks)
    }

    /// Whether a key with this id is present.
    pub fn contains(&self, kid: &str) -> bool {
        self.0.find(kid).is_some()
    }
}

/// The claims orb uses from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `tid`, the tenant the token was issued for, when present.
    pub tenant_id: Option<String>,
    /// `1.0` or `2.0`.
    pub version: String,
}

/// Checks validation tokens for one app registration in one tenant.
#[derive(Debug, Clone)]
pub struct TokenValidator {
    client_id: String,
    issuers: [String; 2],
    leeway: Duration,
}

impl TokenValidator {
    /// A validator for `client_id` in `tenant_id`, with `login_url` as the v2 issuer origin
    /// (use [`DEFAULT_LOGIN_URL`] unless an emulator or a sovereign cloud overrides it).
    pub fn new(client_id: &str, tenant_id: &str, login_url: &str) -> Self {
        let login_url = login_url.trim_end_matches('/');
        Self {
            client_id: client_id.to_owned(),
            issuers: [
                format!("https://sts.windows.net/{tenant_id}/"),
                format!("{login_url}/{tenant_id}/v2.0"),
            ],
            leeway: Duration::from_secs(300),
        }
    }

    /// Changes the allowed clock skew (default five minutes).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Validates one token at `now`.
    pub fn validate(
        &self,
        token: &str,
        jwks: &Jwks,
        now: SystemTime,
    ) -> Result<VerifiedToken, TokenError> {
        let header = peek_header(token)?;
        if header.alg != "RS256" {
            return Err(TokenError::DisallowedAlgorithm(header.alg));
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let jwk = jwks
            .0
            .find(&kid)
            .ok_or_else(|| TokenError::UnknownKeyId(kid.clone()))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| TokenError::InvalidJwks)?;

        // jsonwebtoken checks the signature only; claims are checked below against the
        // caller's `now`, so this module never reads the clock.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed,
            })?
            .claims;

        let now = unix_seconds(now);
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp.saturating_add(leeway) >= now => {}
            _ => return Err(TokenError::Expired),
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
            && nbf.saturating_sub(leeway) > now
        {
            return Err(TokenError::NotYetValid);
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.client_id,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&self.client_id)),
            _ => false,
        };
        if !aud_ok {
            return Err(TokenError::WrongAudience);
        }
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if !self.issuers.iter().any(|i| i == iss) {
            return Err(TokenError::WrongIssuer);
        }
        let version = claims
            .get("ver")
            .and_then(Value::as_str)
            .unwrap_or(if iss == self.issuers[0] { "1.0" } else { "2.0" })
            .to_owned();
        let caller_claim = if version == "1.0" { "appid" } else { "azp" };
        if claims.get(caller_claim).and_then(Value::as_str) != Some(GRAPH_CHANGE_TRACKING_APP_ID) {
            return Err(TokenError::WrongCaller);
        }
        Ok(VerifiedToken {
            tenant_id: claims.get("tid").and_then(Value::as_str).map(str::to_owned),
            version,
        })
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn peek_header(token: &str) -> Result<RawHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = B64URL.decode(header).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The issuing side: an RS256 signing key with a `kid`, publishing its JWKS. For the
/// Graph emulator and tests; orb itself never issues tokens.
pub struct TokenSigner {
    kid: String,
    key: aws_lc_rs::signature::RsaKeyPair,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Generates a fresh 2,048-bit signing key under `kid`.
    pub fn generate(kid: impl Into<String>) -> Result<Self, crate::Error> {
        let key = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| crate::Error::Primitive)?;
        Ok(Self {
            kid: kid.into(),
            key,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document (`{"keys":[{kty,use,kid,alg,n,e}]}`) publishing the public key.
    pub fn jwks_json(&self) -> String {
        use aws_lc_rs::signature::KeyPair;
        let public = self.key.public_key();
        let n = B64URL.encode(public.modulus().big_endian_without_leading_zero());
        let e = B64URL.encode(public.exponent().big_endian_without_leading_zero());
        serde_json::json!({
            "keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": n, "e": e}]
        })
        .to_string()
    }

    /// Signs `claims` as an RS256 JWT. `alg` in the header can be overridden to build
    /// hostile tokens in tests (the signature is RS256 regardless).
    pub fn sign(&self, claims: &Value) -> Result<String, crate::Error> {
        self.sign_with_header(
            &serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }

    /// Signs with an explicit header (tests use this for `alg: none` and friends).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> Result<String, crate::Error> {
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| crate::Error::Primitive)?;
        Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
    }

    /// Claims of a v2 token as Graph issues them for (`client_id`, `tenant_id`), valid
    /// from `now` for one hour.
    pub fn graph_claims_v2(
        login_url: &str,
        client_id: &str,
        tenant_id: &str,
        now: SystemTime,
    ) -> Value {
        let now = unix_seconds(now);
        serde_json::json!({
            "aud": client_id,
            "iss": format!("{}/{tenant_id}/v2.0", login_url.trim_end_matches('/')),
            "iat": now, "nbf": now, "exp": now + 3600,
            "azp": GRAPH_CHANGE_TRACKING_APP_ID, "azpacr": "2",
            "tid": tenant_id, "ver": "2.0",
        })
    }
}
