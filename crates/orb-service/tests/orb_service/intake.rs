//! The intake checks on sealed notifications made exactly as Graph makes them.

use std::sync::OnceLock;
use std::time::SystemTime;

use orb_notification_crypto::jwt::{DEFAULT_LOGIN_URL, Jwks, TokenSigner};
use orb_notification_crypto::{EncryptionKeyPair, GenerateOptions, KeyRing, seal};
use orb_service::intake::{ChangeKind, Intake, KnownSubscription, LifecycleKind, Verified};
use orb_service::metrics::RejectReason;
use serde_json::{Value, json};

const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";

struct Fixture {
    pair: EncryptionKeyPair,
    signer: TokenSigner,
}

fn fx() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        pair: EncryptionKeyPair::generate("cert-1", &GenerateOptions::default(), SystemTime::now())
            .unwrap(),
        signer: TokenSigner::generate("kid-1").unwrap(),
    })
}

fn ring() -> KeyRing {
    let p = &fx().pair;
    let key = orb_notification_crypto::DecryptionKey::from_pem(&p.key().to_pkcs8_pem()).unwrap();
    let pair = EncryptionKeyPair::from_parts(p.id(), p.certificate().clone(), key).unwrap();
    let mut ring = KeyRing::new();
    ring.insert(pair, SystemTime::now());
    ring
}

fn jwks() -> Jwks {
    Jwks::from_json(fx().signer.jwks_json().as_bytes()).unwrap()
}

fn subs(id: &str) -> Option<KnownSubscription> {
    (id == "sub-1").then(|| KnownSubscription {
        id: "sub-1".into(),
        room: "room-1@example.com".into(),
        client_state: "s3cret-state".into(),
    })
}

fn token() -> String {
    fx().signer
        .sign(&TokenSigner::graph_claims_v2(
            DEFAULT_LOGIN_URL,
            CLIENT,
            TENANT,
            SystemTime::now(),
        ))
        .unwrap()
}

fn rich_item(event_id: &str, subject: &str) -> Value {
    let resource =
        json!({"id": event_id, "subject": subject, "iCalUId": "040000008200E00074C5B7101A82E008"});
    let p = &fx().pair;
    json!({
        "subscriptionId": "sub-1", "clientState": "s3cret-state", "changeType": "updated",
        "tenantId": TENANT, "resource": format!("Users/room-1@example.com/Events/{event_id}"),
        "resourceData": {"id": event_id, "@odata.type": "#Microsoft.Graph.Event"},
        "encryptedContent": seal(resource.to_string().as_bytes(), p.certificate(), p.id()).unwrap(),
    })
}

fn body(items: Vec<Value>, tokens: Option<Vec<String>>) -> Vec<u8> {
    let mut b = json!({"value": items});
    if let Some(t) = tokens {
        b["validationTokens"] = json!(t);
    }
    b.to_string().into_bytes()
}

fn intake() -> Intake {
    Intake::new(CLIENT, TENANT, DEFAULT_LOGIN_URL)
}

fn run(body: &[u8]) -> orb_service::intake::IntakeOutcome {
    intake()
        .process(body, subs, &ring(), &jwks(), SystemTime::now())
        .unwrap()
}

#[test]
fn a_genuine_rich_notification_is_verified_and_decrypted() {
    let out = run(&body(
        vec![rich_item("AAMk1", "Budget")],
        Some(vec![token()]),
    ));
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let [
        Verified::Change {
            room,
            kind,
            event_id,
            resource,
            ..
        },
    ] = out.verified.as_slice()
    else {
        panic!("{:?}", out.verified)
    };
    assert_eq!(room, "room-1@example.com");
    assert_eq!(*kind, ChangeKind::Updated);
    assert_eq!(event_id.as_deref(), Some("AAMk1"));
    assert_eq!(resource.as_ref().unwrap()["subject"], "Budget");
}

#[test]
fn each_bad_item_is_rejected_alone_with_its_reason() {
    let mut wrong_state = rich_item("AAMk2", "x");
    wrong_state["clientState"] = json!("guess");
    let mut tampered = rich_item("AAMk3", "x");
    tampered["encryptedContent"]["dataSignature"] =
        json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let mut stranger = rich_item("AAMk4", "x");
    stranger["subscriptionId"] = json!("sub-unknown");
    let mut tenant = rich_item("AAMk5", "x");
    tenant["tenantId"] = json!("another-tenant");
    let mut swapped = rich_item("AAMk6", "x");
    swapped["resourceData"]["id"] = json!("AAMk-other");
    let items = vec![
        rich_item("AAMk1", "ok"),
        wrong_state,
        tampered,
        stranger,
        tenant,
        swapped,
    ];
    let out = run(&body(items, Some(vec![token()])));
    assert_eq!(out.verified.len(), 1);
    let reasons: Vec<(Option<usize>, RejectReason)> =
        out.rejected.iter().map(|r| (r.item, r.reason)).collect();
    assert_eq!(
        reasons,
        [
            (Some(1), RejectReason::ClientState),
            (Some(2), RejectReason::Decrypt),
            (Some(3), RejectReason::UnknownSubscription),
            (Some(4), RejectReason::Tenant),
            (Some(5), RejectReason::Decrypt),
        ]
    );
    for r in &out.rejected {
        assert!(
            !r.detail.contains("s3cret"),
            "no secret in details: {}",
            r.detail
        );
    }
}

#[test]
fn forged_or_missing_tokens_reject_the_whole_post() {
    let impostor = TokenSigner::generate("kid-1").unwrap();
    let forged = impostor
        .sign(&TokenSigner::graph_claims_v2(
            DEFAULT_LOGIN_URL,
            CLIENT,
            TENANT,
            SystemTime::now(),
        ))
        .unwrap();
    for tokens in [
        Some(vec![forged]),
        Some(vec![token(), "x.y.z".to_owned()]),
        None,
    ] {
        let out = run(&body(vec![rich_item("AAMk1", "x")], tokens));
        assert!(out.verified.is_empty());
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(
            (out.rejected[0].item, out.rejected[0].reason),
            (None, RejectReason::Token)
        );
    }
}

#[test]
fn a_token_for_another_tenant_is_refused() {
    let other = "00000000-0000-0000-0000-00000000dead";
    let mut claims =
        TokenSigner::graph_claims_v2(DEFAULT_LOGIN_URL, CLIENT, TENANT, SystemTime::now());
    claims["tid"] = json!(other);
    let t = fx().signer.sign(&claims).unwrap();
    let out = run(&body(vec![rich_item("AAMk1", "x")], Some(vec![t])));
    assert_eq!(out.rejected[0].reason, RejectReason::Token);
}

#[test]
fn an_unknown_signing_key_asks_for_a_jwks_refresh() {
    let rotated = TokenSigner::generate("kid-2").unwrap();
    let t = rotated
        .sign(&TokenSigner::graph_claims_v2(
            DEFAULT_LOGIN_URL,
            CLIENT,
            TENANT,
            SystemTime::now(),
        ))
        .unwrap();
    let b = body(vec![rich_item("AAMk1", "x")], Some(vec![t]));
    let err = intake()
        .process(&b, subs, &ring(), &jwks(), SystemTime::now())
        .unwrap_err();
    assert_eq!(err.kid, "kid-2");
    // After the refresh the same body passes.
    let both = format!(
        "{{\"keys\":[{},{}]}}",
        serde_json::from_str::<Value>(&fx().signer.jwks_json()).unwrap()["keys"][0],
        serde_json::from_str::<Value>(&rotated.jwks_json()).unwrap()["keys"][0]
    );
    let refreshed = Jwks::from_json(both.as_bytes()).unwrap();
    let out = intake()
        .process(&b, subs, &ring(), &refreshed, SystemTime::now())
        .unwrap();
    assert_eq!(out.verified.len(), 1);
}

#[test]
fn lifecycle_events_pass_without_tokens() {
    let items: Vec<Value> = ["reauthorizationRequired", "subscriptionRemoved", "missed"]
        .iter()
        .map(|e| json!({"subscriptionId": "sub-1", "clientState": "s3cret-state", "tenantId": TENANT, "lifecycleEvent": e}))
        .collect();
    let out = run(&body(items, None));
    let kinds: Vec<LifecycleKind> = out
        .verified
        .iter()
        .map(|v| match v {
            Verified::Lifecycle { kind, room, .. } => {
                assert_eq!(room, "room-1@example.com");
                *kind
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            LifecycleKind::ReauthorizationRequired,
            LifecycleKind::SubscriptionRemoved,
            LifecycleKind::Missed
        ]
    );
    // A forged lifecycle event (wrong clientState) is refused like any item.
    let forged = json!({"subscriptionId": "sub-1", "clientState": "nope", "tenantId": TENANT, "lifecycleEvent": "subscriptionRemoved"});
    assert_eq!(
        run(&body(vec![forged], None)).rejected[0].reason,
        RejectReason::ClientState
    );
}

#[test]
fn malformed_bodies_are_rejected_not_fatal() {
    for b in [&b"{not json"[..], b"[]", b"{\"value\": 3}", b""] {
        let out = run(b);
        assert!(out.verified.is_empty());
        assert_eq!(out.rejected[0].reason, RejectReason::Malformed);
    }
}
