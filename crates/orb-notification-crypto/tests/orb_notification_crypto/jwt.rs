//! validationTokens: what is accepted and every reason for rejection.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use orb_notification_crypto::jwt::{
    DEFAULT_LOGIN_URL, GRAPH_CHANGE_TRACKING_APP_ID, Jwks, TokenError, TokenSigner, TokenValidator,
};
use serde_json::{Value, json};

const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "8afd02d6-ebdd-4270-a515-c749898ea5c5";

fn signer() -> &'static TokenSigner {
    static S: OnceLock<TokenSigner> = OnceLock::new();
    S.get_or_init(|| TokenSigner::generate("kid-1").unwrap())
}

fn jwks() -> Jwks {
    Jwks::from_json(signer().jwks_json().as_bytes()).unwrap()
}

fn validator() -> TokenValidator {
    TokenValidator::new(CLIENT, TENANT, DEFAULT_LOGIN_URL)
}

fn v2(now: SystemTime) -> Value {
    TokenSigner::graph_claims_v2(DEFAULT_LOGIN_URL, CLIENT, TENANT, now)
}

fn v1(now: SystemTime) -> Value {
    let t = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "aud": CLIENT, "iss": format!("https://sts.windows.net/{TENANT}/"),
        "iat": t, "nbf": t, "exp": t + 8 * 3600,
        "appid": GRAPH_CHANGE_TRACKING_APP_ID, "appidacr": "2", "tid": TENANT, "ver": "1.0",
    })
}

fn check(
    claims: &Value,
    now: SystemTime,
) -> Result<orb_notification_crypto::jwt::VerifiedToken, TokenError> {
    validator().validate(&signer().sign(claims).unwrap(), &jwks(), now)
}

#[test]
fn valid_v2_token() {
    let now = SystemTime::now();
    let t = check(&v2(now), now).unwrap();
    assert_eq!(t.version, "2.0");
    assert_eq!(t.tenant_id.as_deref(), Some(TENANT));
}

#[test]
fn valid_v1_token() {
    let now = SystemTime::now();
    assert_eq!(check(&v1(now), now).unwrap().version, "1.0");
}

#[test]
fn emulator_login_url_is_the_v2_issuer() {
    let now = SystemTime::now();
    let login = "http://127.0.0.1:40000";
    let claims = TokenSigner::graph_claims_v2(login, CLIENT, TENANT, now);
    let token = signer().sign(&claims).unwrap();
    assert!(
        TokenValidator::new(CLIENT, TENANT, login)
            .validate(&token, &jwks(), now)
            .is_ok()
    );
    assert_eq!(
        validator().validate(&token, &jwks(), now),
        Err(TokenError::WrongIssuer)
    );
}

#[test]
fn wrong_audience() {
    let now = SystemTime::now();
    let mut c = v2(now);
    c["aud"] = json!("someone-else");
    assert_eq!(check(&c, now), Err(TokenError::WrongAudience));
    c["aud"] = json!(["a", CLIENT]);
    assert!(
        check(&c, now).is_ok(),
        "an audience list containing us is fine"
    );
}

#[test]
fn wrong_caller_v2_and_v1() {
    let now = SystemTime::now();
    let mut c = v2(now);
    c["azp"] = json!("00000000-0000-0000-0000-000000000000");
    assert_eq!(check(&c, now), Err(TokenError::WrongCaller));
    let mut c = v1(now);
    c["appid"] = json!("00000000-0000-0000-0000-000000000000");
    assert_eq!(check(&c, now), Err(TokenError::WrongCaller));
    // A v1 token must carry appid; azp alone is not enough.
    let mut c = v1(now);
    c.as_object_mut().unwrap().remove("appid");
    c["azp"] = json!(GRAPH_CHANGE_TRACKING_APP_ID);
    assert_eq!(check(&c, now), Err(TokenError::WrongCaller));
}

#[test]
fn wrong_tenant_is_a_wrong_issuer() {
    let now = SystemTime::now();
    let mut c = v2(now);
    c["iss"] = json!(format!("{DEFAULT_LOGIN_URL}/another-tenant/v2.0"));
    assert_eq!(check(&c, now), Err(TokenError::WrongIssuer));
}

#[test]
fn expired_and_not_yet_valid() {
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    assert_eq!(check(&v2(now), now + 2 * hour), Err(TokenError::Expired));
    assert_eq!(check(&v2(now), now - hour), Err(TokenError::NotYetValid));
    // Within the five-minute skew both ways.
    assert!(check(&v2(now), now + hour + Duration::from_secs(200)).is_ok());
    assert!(check(&v2(now), now - Duration::from_secs(200)).is_ok());
    let mut c = v2(now);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(&c, now), Err(TokenError::Expired), "exp is required");
}

#[test]
fn bad_signature() {
    let now = SystemTime::now();
    let impostor = TokenSigner::generate("kid-1").unwrap();
    let token = impostor.sign(&v2(now)).unwrap();
    assert_eq!(
        validator().validate(&token, &jwks(), now),
        Err(TokenError::BadSignature)
    );
    // Claims swapped under a genuine signature.
    let genuine = signer().sign(&v2(now)).unwrap();
    let forged_claims = impostor.sign(&v1(now)).unwrap();
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged: Vec<&str> = forged_claims.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], forged[1], parts[2]);
    assert_eq!(
        validator().validate(&spliced, &jwks(), now),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn unknown_kid() {
    let now = SystemTime::now();
    let other = TokenSigner::generate("kid-2").unwrap();
    let token = other.sign(&v2(now)).unwrap();
    assert_eq!(
        validator().validate(&token, &jwks(), now),
        Err(TokenError::UnknownKeyId("kid-2".to_owned()))
    );
}

#[test]
fn alg_none_and_hmac_are_refused() {
    let now = SystemTime::now();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        b64.encode(json!({"alg": "none", "kid": "kid-1"}).to_string()),
        b64.encode(v2(now).to_string())
    );
    assert_eq!(
        validator().validate(&unsigned, &jwks(), now),
        Err(TokenError::DisallowedAlgorithm("none".to_owned()))
    );
    let hs = signer()
        .sign_with_header(&json!({"alg": "HS256", "kid": "kid-1"}), &v2(now))
        .unwrap();
    assert_eq!(
        validator().validate(&hs, &jwks(), now),
        Err(TokenError::DisallowedAlgorithm("HS256".to_owned()))
    );
}

#[test]
fn malformed_tokens() {
    let now = SystemTime::now();
    for t in ["", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.sig"] {
        assert!(validator().validate(t, &jwks(), now).is_err(), "{t}");
    }
    assert_eq!(
        Jwks::from_json(b"{nope").unwrap_err(),
        TokenError::InvalidJwks
    );
}
