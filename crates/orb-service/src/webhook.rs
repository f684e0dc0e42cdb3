//! The HTTP front door: Graph's webhook endpoints, `/healthz`, `/metrics`, the admin
//! API under `/api/` ([`crate::api`]) and the admin page under `/admin/`
//! ([`crate::admin`]).
//!
//! A notification POST is acknowledged **only after** its body is durably in the store's
//! inbox (group-committed `fsync`), and answered 202; if the append fails the answer is
//! 503, so Graph retries. Nothing else happens before the ack: token validation,
//! `clientState`, decryption and the sync itself run in the inbox worker, after the
//! response — as Graph's docs ask ("respond first, validate after").

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use orb_store::{Store, Timestamp};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::metrics::{Metrics, RejectReason};

/// Who may POST notifications, and who may read `/healthz` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct SourcePolicy {
    /// Allowed source networks for notifications; empty = everyone.
    pub allowed: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Allowed source networks for `/healthz` and `/metrics`; empty = everyone.
    pub monitoring: Vec<IpNet>,
}

impl SourcePolicy {
    /// The client address: the socket peer, or — when the peer is a trusted proxy — the
    /// right-most `X-Forwarded-For` address that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for hop in text.split(',').rev() {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) if self.is_trusted(ip) => client = ip,
                    Ok(ip) => return ip,
                    // An unparsable hop: stop believing the chain at this point.
                    Err(_) => return client,
                }
            }
        }
        client
    }

    /// Whether `ip` may post.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Whether `ip` may read `/healthz` and `/metrics`.
    pub fn allows_monitoring(&self, ip: IpAddr) -> bool {
        self.monitoring.is_empty() || self.monitoring.iter().any(|net| net.contains(&ip))
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// What `/healthz` reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// Subscriptions active versus expected (one per managed room).
    pub subscriptions: SubscriptionHealth,
    /// Notification bodies waiting in the inbox.
    pub inbox_pending: usize,
    /// Why the status is `degraded`.
    pub problems: Vec<String>,
}

/// Subscription counts in [`Health`].
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct SubscriptionHealth {
    /// Active subscriptions.
    pub active: usize,
    /// Managed rooms.
    pub expected: usize,
}

/// Computes the current health; provided by whoever runs the service.
pub type HealthFn = Arc<dyn Fn() -> Health + Send + Sync>;

/// Everything the handlers need.
pub struct Webhook {
    /// The state store (inbox).
    pub store: Arc<Store>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Source allow-list.
    pub sources: SourcePolicy,
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// Woken after each durable append.
    pub inbox_signal: Arc<Notify>,
    /// `/healthz`.
    pub health: HealthFn,
    /// The admin JSON API under `/api/`; `None` = disabled (every `/api/` path is 404).
    pub api: Option<Arc<crate::api::Api>>,
    /// The admin page under `/admin`; `None` = disabled (every `/admin` path is 404).
    pub admin: Option<Arc<crate::admin::Admin>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("sources", &self.sources)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// Longest `validationToken` echoed back (Graph's are a few hundred characters).
const MAX_VALIDATION_TOKEN: usize = 4096;

/// Serves HTTP on `listener` (TLS when `tls` is given) until `shutdown` turns true, then
/// stops accepting and gives open connections up to `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    webhook: Arc<Webhook>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let webhook = Arc::clone(&webhook);
        let service = service_fn(move |req| {
            let webhook = Arc::clone(&webhook);
            async move { Ok::<_, Infallible>(handle(req, peer, &webhook).await) }
        });
        let builder = hyper::server::conn::http1::Builder::new();
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match acceptor.accept(stream).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; closing");
    }
}

/// Routes one request.
pub async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    webhook: &Webhook,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::POST, "/graph/notifications" | "/graph/lifecycle") => {
            notification(req, peer, webhook).await
        }
        (_, "/graph/notifications" | "/graph/lifecycle") => method_not_allowed("POST"),
        (&Method::GET, "/healthz" | "/metrics")
            if !webhook
                .sources
                .allows_monitoring(webhook.sources.client_ip(peer.ip(), req.headers())) =>
        {
            respond(StatusCode::FORBIDDEN, "text/plain", "forbidden\n")
        }
        (&Method::GET, "/healthz") => {
            let body = serde_json::to_vec(&(webhook.health)()).unwrap_or_default();
            respond(StatusCode::OK, "application/json", body)
        }
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            webhook.metrics.encode(),
        ),
        (_, "/healthz" | "/metrics") => method_not_allowed("GET"),
        (_, p) if p == "/api" || p.starts_with("/api/") => match &webhook.api {
            Some(api) => {
                let client = webhook.sources.client_ip(peer.ip(), req.headers());
                api.handle(req, client).await
            }
            None => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        },
        (_, p) if p == crate::admin::PREFIX || p.starts_with("/admin/") => match &webhook.admin {
            Some(admin) => {
                let client = webhook.sources.client_ip(peer.ip(), req.headers());
                admin.handle(req, client).await
            }
            None => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        },
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

async fn notification(
    req: Request<Incoming>,
    peer: SocketAddr,
    webhook: &Webhook,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let client = webhook.sources.client_ip(peer.ip(), req.headers());
    if !webhook.sources.allows(client) {
        webhook.metrics.rejected(RejectReason::Source);
        tracing::warn!(%client, "notification from a source outside the allow-list");
        return respond(StatusCode::FORBIDDEN, "text/plain", "forbidden\n");
    }

    if let Some(token) = validation_token(req.uri().query()) {
        // The subscription handshake: echo the decoded token, as plain text, at once.
        if token.len() > MAX_VALIDATION_TOKEN {
            return respond(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "validation token too long\n",
            );
        }
        return respond(StatusCode::OK, "text/plain", token);
    }

    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > webhook.max_body_bytes) {
        webhook.metrics.rejected(RejectReason::TooLarge);
        return respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain",
            "body too large\n",
        );
    }
    let body = match Limited::new(req.into_body(), webhook.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            // Either the limit (a lying or absent Content-Length) or a broken connection.
            if e.is::<http_body_util::LengthLimitError>() {
                webhook.metrics.rejected(RejectReason::TooLarge);
                return respond(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "text/plain",
                    "body too large\n",
                );
            }
            return respond(StatusCode::BAD_REQUEST, "text/plain", "incomplete body\n");
        }
    };
    webhook.metrics.received();

    let store = Arc::clone(&webhook.store);
    let appended =
        tokio::task::spawn_blocking(move || store.append_inbox(&body, Timestamp::now())).await;
    let response = match appended {
        Ok(Ok(append)) => {
            if !append.duplicate {
                webhook.inbox_signal.notify_one();
            }
            respond(StatusCode::ACCEPTED, "text/plain", "")
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "inbox append failed; answering 503 so Graph retries");
            respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "try again later\n",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "inbox append task failed; answering 503");
            respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "try again later\n",
            )
        }
    };
    webhook.metrics.ack(started.elapsed().as_secs_f64());
    response
}

/// The URL-decoded `validationToken` query parameter, if present.
fn validation_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "validationToken")
        .map(|(_, v)| v.into_owned())
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain",
        "method not allowed\n",
    );
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], trusted: &[&str]) -> SourcePolicy {
        SourcePolicy {
            allowed: allowed.iter().map(|s| s.parse().unwrap()).collect(),
            trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
            monitoring: Vec::new(),
        }
    }

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_only_believed_from_trusted_proxies() {
        let p = policy(&["52.96.0.0/14"], &["10.0.0.0/8"]);
        let graph: IpAddr = "52.96.1.2".parse().unwrap();
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        let attacker: IpAddr = "203.0.113.9".parse().unwrap();
        // Untrusted peer: its own address counts, whatever it claims.
        assert_eq!(p.client_ip(attacker, &xff("52.96.1.2")), attacker);
        // Trusted proxy: the right-most untrusted hop counts.
        assert_eq!(p.client_ip(proxy, &xff("203.0.113.9, 52.96.1.2")), graph);
        assert_eq!(p.client_ip(proxy, &xff("52.96.1.2, 10.2.2.2")), graph);
        // A spoofed left-most entry does not help the attacker.
        assert_eq!(p.client_ip(proxy, &xff("52.96.1.2, 203.0.113.9")), attacker);
        assert!(p.allows(graph) && !p.allows(attacker));
        // Garbage in the chain: fall back to the last address believed.
        assert_eq!(p.client_ip(proxy, &xff("junk")), proxy);
    }

    #[test]
    fn empty_allow_list_allows_everyone() {
        assert!(policy(&[], &[]).allows("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn validation_tokens_are_url_decoded() {
        assert_eq!(
            validation_token(Some("validationToken=Validation%3a+Testing%20client")).as_deref(),
            Some("Validation: Testing client")
        );
        assert_eq!(validation_token(Some("other=1")), None);
        assert_eq!(validation_token(None), None);
    }
}
