//! The identity platform side: `POST /{tenant}/oauth2/v2.0/token` (client secret or
//! certificate assertion, PS256 + `x5t#S256` or RS256 + `x5t`) and bearer checks.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{AppRegistration, Shared, TokenInfo};

/// A token endpoint answer: status and JSON body.
pub(crate) type TokenAnswer = (u16, Value);

fn oauth_error(status: u16, error: &str, code: u32, description: &str) -> TokenAnswer {
    (
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": Timestamp::now().to_string(),
            "trace_id": uuid::Uuid::new_v4().to_string(),
            "correlation_id": uuid::Uuid::new_v4().to_string(),
        }),
    )
}

/// Handles a token request for `tenant` with a form-encoded body.
pub(crate) fn token(shared: &Shared, tenant: &str, body: &[u8]) -> TokenAnswer {
    if tenant != shared.config.tenant_id {
        return oauth_error(400, "invalid_request", 90002, "Tenant not found.");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    let Some(client_id) = field("client_id") else {
        return oauth_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the client_id parameter.",
        );
    };
    let scope = field("scope").unwrap_or_default();
    let accepted_scopes = [
        format!("{}/.default", shared.base_url),
        "https://graph.microsoft.com/.default".to_owned(),
    ];
    if !accepted_scopes.iter().any(|s| s == scope) {
        return oauth_error(
            400,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let mut st = shared.lock();
    let Some(app) = st.apps.get(client_id).cloned() else {
        return oauth_error(
            400,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    };
    if let Some(secret) = field("client_secret") {
        if app.secret.as_deref() != Some(secret) {
            return oauth_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
    } else if let Some(assertion) = field("client_assertion") {
        if field("client_assertion_type")
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return oauth_error(
                400,
                "invalid_request",
                50027,
                "Invalid client_assertion_type.",
            );
        }
        let audience = format!("{}/{tenant}/oauth2/v2.0/token", shared.base_url);
        if let Err(reason) = verify_assertion(&app, assertion, &audience) {
            return oauth_error(401, "invalid_client", 700027, reason);
        }
    } else {
        return oauth_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain client_assertion or client_secret.",
        );
    }
    if !app.admin_consent {
        return oauth_error(
            400,
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application.",
        );
    }
    let token = format!(
        "emu.{}.{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let lifetime = shared.config.token_lifetime;
    let expires_at = st
        .now()
        .checked_add(jiff::SignedDuration::try_from(lifetime).unwrap_or(jiff::SignedDuration::ZERO))
        .unwrap_or_else(|_| st.now());
    st.tokens.insert(
        token.clone(),
        TokenInfo {
            client_id: client_id.to_owned(),
            roles: app.roles.clone(),
            expires_at,
        },
    );
    st.tokens_issued += 1;
    (
        200,
        json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "ext_expires_in": lifetime.as_secs(), "access_token": token}),
    )
}

fn verify_assertion(
    app: &AppRegistration,
    assertion: &str,
    audience: &str,
) -> Result<(), &'static str> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("The client assertion is not a JWT.");
    };
    let decode = |p: &str| {
        B64URL
            .decode(p)
            .map_err(|_| "The client assertion is not base64url.")
    };
    let header: Value =
        serde_json::from_slice(&decode(h)?).map_err(|_| "Malformed assertion header.")?;
    let claims: Value =
        serde_json::from_slice(&decode(c)?).map_err(|_| "Malformed assertion claims.")?;
    let signature = decode(s)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let (thumb_field, digest_alg, verify_alg): (
        _,
        _,
        &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
    ) = match alg {
        "PS256" => ("x5t#S256", &digest::SHA256, &RSA_PSS_2048_8192_SHA256),
        "RS256" => (
            "x5t",
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            &RSA_PKCS1_2048_8192_SHA256,
        ),
        _ => return Err("Unsupported client assertion algorithm."),
    };
    let thumb = header
        .get(thumb_field)
        .and_then(Value::as_str)
        .ok_or("Client assertion contains no certificate thumbprint.")?;
    let certificate = app
        .certificates
        .iter()
        .find(|der| B64URL.encode(digest::digest(digest_alg, der)) == thumb)
        .ok_or("Client assertion contains an invalid signature: the key was not found.")?;
    let (_, cert) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|_| "The registered certificate is unreadable.")?;
    let public_key = cert.public_key().subject_public_key.data.to_vec();
    let signed = format!("{h}.{c}");
    UnparsedPublicKey::new(verify_alg, &public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "Client assertion failed signature validation.")?;
    let claim = |n: &str| claims.get(n).and_then(Value::as_str);
    if claim("aud") != Some(audience) {
        return Err("The audience claim is not the token endpoint.");
    }
    if claim("iss") != Some(app.client_id.as_str()) || claim("sub") != Some(app.client_id.as_str())
    {
        return Err("The iss and sub claims must be the client id.");
    }
    if claim("jti").is_none() {
        return Err("The jti claim is required.");
    }
    // The assertion is checked against the real clock: it is the client's clock that
    // signed it, not the emulator's (possibly advanced) one.
    let now = Timestamp::now().as_second();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims
        .get("nbf")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MAX);
    if exp <= now {
        return Err("The client assertion has expired.");
    }
    if nbf > now + 300 {
        return Err("The client assertion is not yet valid.");
    }
    Ok(())
}

/// Who a bearer token belongs to; `Err` with Graph's 401 body otherwise.
pub(crate) fn bearer(
    shared: &Shared,
    authorization: Option<&str>,
) -> Result<(String, Vec<String>), Value> {
    let unauthorized = |message: &str| json!({"error": {"code": "InvalidAuthenticationToken", "message": message}});
    let token = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let st = shared.lock();
    let info = st
        .tokens
        .get(token)
        .ok_or_else(|| unauthorized("Access token validation failure. Invalid audience."))?;
    if info.expires_at <= st.now() {
        return Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    Ok((info.client_id.clone(), info.roles.clone()))
}
