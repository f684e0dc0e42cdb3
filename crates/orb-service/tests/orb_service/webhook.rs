//! The webhook over real loopback HTTP: handshake, durable 202, limits, allow-list,
//! health and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orb_service::metrics::{Metrics, RejectReason};
use orb_service::webhook::{Health, SourcePolicy, SubscriptionHealth, Webhook, serve};
use orb_store::{MasterKey, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

struct Running {
    addr: SocketAddr,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    signal: Arc<Notify>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(sources: SourcePolicy, max_body_bytes: usize) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path().join("state"), &MasterKey::generate().unwrap()).unwrap());
    let metrics = Arc::new(Metrics::new());
    let signal = Arc::new(Notify::new());
    let health_store = Arc::clone(&store);
    let webhook = Arc::new(Webhook {
        store: Arc::clone(&store),
        metrics: Arc::clone(&metrics),
        sources,
        max_body_bytes,
        inbox_signal: Arc::clone(&signal),
        health: Arc::new(move || Health {
            status: "degraded",
            subscriptions: SubscriptionHealth {
                active: 0,
                expected: 1,
            },
            inbox_pending: health_store.pending_inbox().map_or(0, |p| p.len()),
            problems: vec!["no active subscription for room-1@example.com".to_owned()],
        }),
        api: None,
        admin: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let server = tokio::spawn(serve(
        listener,
        None,
        webhook,
        stop_rx,
        Duration::from_secs(5),
    ));
    Running {
        addr,
        store,
        metrics,
        signal,
        stop,
        server,
        _dir: dir,
    }
}

/// A minimal HTTP/1.1 exchange (Connection: close), returning status, headers and body.
async fn exchange(addr: SocketAddr, request: String, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

async fn post(addr: SocketAddr, path: &str, body: &[u8], extra: &str) -> (u16, String, Vec<u8>) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: orb\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    exchange(addr, req, body).await
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    get_with(addr, path, "").await
}

async fn get_with(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: orb\r\nConnection: close\r\n{extra}\r\n"),
        b"",
    )
    .await
}

#[tokio::test]
async fn validation_handshake_echoes_the_decoded_token_as_plain_text() {
    let orb = start(SourcePolicy::default(), 1 << 20).await;
    for path in ["/graph/notifications", "/graph/lifecycle"] {
        let (status, head, body) = post(
            orb.addr,
            &format!("{path}?validationToken=Validation%3A%20Testing%20client+application"),
            b"",
            "",
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain"),
            "{head}"
        );
        assert_eq!(body, b"Validation: Testing client application");
    }
    assert_eq!(orb.store.inbox_len(), 0, "a handshake stores nothing");
}

#[tokio::test]
async fn a_notification_is_on_disk_before_the_202() {
    let orb = start(SourcePolicy::default(), 1 << 20).await;
    let notified = orb.signal.notified();
    let body = br#"{"value":[{"subscriptionId":"s1","changeType":"created"}]}"#;
    let (status, _, _) = post(orb.addr, "/graph/notifications", body, "").await;
    assert_eq!(status, 202);
    // The worker is woken, and the body is already durable in the inbox.
    tokio::time::timeout(Duration::from_secs(5), notified)
        .await
        .unwrap();
    let pending = orb.store.pending_inbox().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body, body);
    // The same body again is recognised as a duplicate, still acknowledged.
    let (status, _, _) = post(orb.addr, "/graph/notifications", body, "").await;
    assert_eq!(status, 202);
    assert_eq!(orb.store.pending_inbox().unwrap().len(), 1);
    assert_eq!(orb.metrics.received_count(), 2);
    // A malformed body is still acknowledged (validated after the ack) and kept.
    let (status, _, _) = post(orb.addr, "/graph/lifecycle", b"{not json", "").await;
    assert_eq!(status, 202);
    assert_eq!(orb.store.pending_inbox().unwrap().len(), 2);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_without_storing() {
    let orb = start(SourcePolicy::default(), 1024).await;
    let big = vec![b' '; 2048];
    let (status, _, _) = post(orb.addr, "/graph/notifications", &big, "").await;
    assert_eq!(status, 413);
    // A chunked body that lies about nothing but is too long.
    let req = "POST /graph/notifications HTTP/1.1\r\nHost: orb\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_owned();
    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let (status, _, _) = exchange(orb.addr, req, &chunked).await;
    assert_eq!(status, 413);
    assert_eq!(orb.store.inbox_len(), 0);
    assert_eq!(orb.metrics.rejected_count(RejectReason::TooLarge), 2);
}

#[tokio::test]
async fn sources_outside_the_allow_list_are_refused_and_counted() {
    let sources = SourcePolicy {
        allowed: vec!["52.96.0.0/14".parse().unwrap()],
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..SourcePolicy::default()
    };
    let orb = start(sources, 1 << 20).await;
    let (status, _, _) = post(orb.addr, "/graph/notifications", b"{}", "").await;
    assert_eq!(status, 403, "loopback itself is not allowed");
    let (status, _, _) = post(
        orb.addr,
        "/graph/notifications",
        b"{}",
        "X-Forwarded-For: 203.0.113.7\r\n",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post(
        orb.addr,
        "/graph/notifications",
        b"{}",
        "X-Forwarded-For: 52.96.10.1\r\n",
    )
    .await;
    assert_eq!(status, 202, "through the trusted proxy from Graph's range");
    assert_eq!(orb.metrics.rejected_count(RejectReason::Source), 2);
    assert_eq!(orb.store.inbox_len(), 1);
}

#[tokio::test]
async fn health_and_metrics_answer_only_the_monitoring_networks_when_configured() {
    let sources = SourcePolicy {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        monitoring: vec!["10.20.0.0/16".parse().unwrap()],
        ..SourcePolicy::default()
    };
    let orb = start(sources, 1 << 20).await;
    for path in ["/healthz", "/metrics"] {
        let (status, _, body) = get(orb.addr, path).await;
        assert_eq!(status, 403, "{path} from loopback");
        assert!(!String::from_utf8_lossy(&body).contains("room-1"));
        let (status, _, body) = get_with(orb.addr, path, "X-Forwarded-For: 198.51.100.9\r\n").await;
        assert_eq!(status, 403, "{path} from outside through the proxy");
        assert!(!String::from_utf8_lossy(&body).contains("room-1"));
        let (status, _, _) = get_with(orb.addr, path, "X-Forwarded-For: 10.20.3.4\r\n").await;
        assert_eq!(status, 200, "{path} from the monitoring network");
    }
    // Notifications are not affected: their own allow-list is empty.
    let (status, _, _) = post(orb.addr, "/graph/notifications", b"{}", "").await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn health_metrics_and_unknown_paths() {
    let orb = start(SourcePolicy::default(), 1 << 20).await;
    post(orb.addr, "/graph/notifications", b"{\"value\":[]}", "").await;
    let (status, _, body) = get(orb.addr, "/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["subscriptions"]["expected"], 1);
    assert_eq!(health["inbox_pending"], 1);
    assert!(health["problems"][0].as_str().unwrap().contains("room-1"));

    let (status, _, body) = get(orb.addr, "/metrics").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for name in [
        "orb_notifications_received_total 1",
        "orb_webhook_ack_seconds_count 1",
        "orb_outbox_depth",
        "orb_parked_bookings",
    ] {
        assert!(text.contains(name), "{name} missing in:\n{text}");
    }

    assert_eq!(get(orb.addr, "/nope").await.0, 404);
    let (status, head, _) = get(orb.addr, "/graph/notifications").await;
    assert_eq!(status, 405);
    assert!(head.to_ascii_lowercase().contains("allow: post"));
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let orb = start(SourcePolicy::default(), 1 << 20).await;
    orb.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), orb.server)
        .await
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(orb.addr).await.is_err());
}
