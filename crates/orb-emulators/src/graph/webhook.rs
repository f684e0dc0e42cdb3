//! A minimal webhook receiver for tests and the demo: answers Graph's validation
//! handshake (or deliberately fails it) and records every notification POST.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// How the recorder answers the `validationToken` handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeMode {
    /// 200, `text/plain`, the decoded token (what orb must do).
    Echo,
    /// 200 `text/plain` with a different body.
    WrongBody,
    /// 403.
    Refuse,
    /// Echo, but only after `delay` (to miss a short deadline).
    Delay(Duration),
}

/// One POST the recorder received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedPost {
    /// Request path.
    pub path: String,
    /// The decoded `validationToken`, for handshakes.
    pub validation_token: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

struct Inner {
    mode: HandshakeMode,
    status: u16,
    posts: Vec<ReceivedPost>,
}

/// A loopback webhook endpoint on `127.0.0.1:0`. Dropping it stops the server.
pub struct WebhookRecorder {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookRecorder {
    /// Starts the recorder (echoing handshakes, answering notifications with 202).
    pub async fn start() -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner {
            mode: HandshakeMode::Echo,
            status: 202,
            posts: Vec::new(),
        }));
        let shared = Arc::clone(&inner);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, inner, task })
    }

    /// The URL of `path` on this recorder (e.g. `/graph/notifications`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes how handshakes are answered.
    pub fn set_mode(&self, mode: HandshakeMode) {
        lock(&self.inner).mode = mode;
    }

    /// Changes the status notifications are answered with.
    pub fn set_status(&self, status: u16) {
        lock(&self.inner).status = status;
    }

    /// Notification POSTs (not handshakes), in arrival order.
    pub fn posts(&self) -> Vec<ReceivedPost> {
        lock(&self.inner)
            .posts
            .iter()
            .filter(|p| p.validation_token.is_none())
            .cloned()
            .collect()
    }

    /// Handshake POSTs, in arrival order.
    pub fn validations(&self) -> Vec<ReceivedPost> {
        lock(&self.inner)
            .posts
            .iter()
            .filter(|p| p.validation_token.is_some())
            .cloned()
            .collect()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        lock(&self.inner).posts.clear();
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn handle(inner: &Mutex<Inner>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let token = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "validationToken")
            .map(|(_, v)| v.into_owned())
    });
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let (mode, status) = {
        let mut st = lock(inner);
        st.posts.push(ReceivedPost {
            path,
            validation_token: token.clone(),
            body,
        });
        (st.mode.clone(), st.status)
    };
    let plain = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header("Content-Type", "text/plain")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    match token {
        Some(token) => match mode {
            HandshakeMode::Echo => plain(200, token),
            HandshakeMode::WrongBody => plain(200, "not the token".into()),
            HandshakeMode::Refuse => plain(403, String::new()),
            HandshakeMode::Delay(d) => {
                tokio::time::sleep(d).await;
                plain(200, token)
            }
        },
        None => Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default(),
    }
}
