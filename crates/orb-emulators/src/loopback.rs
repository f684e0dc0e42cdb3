//! A minimal HTTP/1.1 server bound to `127.0.0.1:0`, shared by the emulators.
//!
//! The handler sees the whole request body as [`Bytes`] and returns a complete
//! response; connections are served on their own tasks until the server is shut down
//! (explicitly or by dropping the [`LoopbackServer`]).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The largest request body an emulator accepts (larger ones get 413).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// A running loopback server.
#[derive(Debug)]
pub struct LoopbackServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Binds `127.0.0.1:0` and serves `handler` on every connection.
    pub async fn start<H, F>(handler: H) -> io::Result<Self>
    where
        H: Fn(Request<Bytes>) -> F + Send + Sync + 'static,
        F: Future<Output = Response<Bytes>> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, mut stop) = watch::channel(false);
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let handler = Arc::clone(&handler);
                        let mut stop_conn = stop.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |req: Request<Incoming>| {
                                let handler = Arc::clone(&handler);
                                async move { Ok::<_, Infallible>(serve(handler.as_ref(), req).await) }
                            });
                            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                            tokio::pin!(conn);
                            tokio::select! {
                                result = conn.as_mut() => {
                                    if let Err(e) = result {
                                        tracing::debug!(error = %e, "emulator connection ended with an error");
                                    }
                                }
                                _ = stop_conn.changed() => conn.as_mut().graceful_shutdown(),
                            }
                        });
                    }
                }
            }
        });
        Ok(Self {
            addr,
            shutdown,
            task: Some(task),
        })
    }

    /// The bound address (always on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn serve<H, F>(handler: &H, req: Request<Incoming>) -> Response<Full<Bytes>>
where
    H: Fn(Request<Bytes>) -> F,
    F: Future<Output = Response<Bytes>>,
{
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return response;
        }
    };
    let response = handler(Request::from_parts(parts, bytes)).await;
    response.map(Full::new)
}
