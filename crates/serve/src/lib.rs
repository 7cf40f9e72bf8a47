#![doc = include_str!("../README.md")]

mod body;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tower_service::Service;

pub use body::{BodyTimeout, DeadlineBody, MIN_BODY_RATE};
pub use tls::TlsConfig;

/// Why a server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A certificate or key file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable, or rustls refused the pair.
    #[error("{path}: {message}")]
    Tls {
        /// The file.
        path: String,
        /// What was wrong with it.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a client may take. The clock of `header` starts whenever the server waits for a
/// request — on a new connection (after the TLS handshake, which has the same limit) and on
/// a kept-alive connection after each response — so it is also the idle timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The TLS handshake, and the request line and headers of each request (also the idle
    /// time allowed between requests on a kept-alive connection).
    pub header: Duration,
    /// The whole request body, from the end of its headers.
    pub body: Duration,
}

/// Headers (and the TLS handshake, and idle keep-alive) within 30 s.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// A request body within 120 s of its headers (an 80 MiB block at ~0.7 MB/s).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(120);

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header: HEADER_TIMEOUT,
            body: BODY_TIMEOUT,
        }
    }
}

/// How [`serve`] serves.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Header, body and idle limits.
    pub timeouts: Timeouts,
    /// HTTPS with this certificate and key; plain HTTP without.
    pub tls: Option<TlsConfig>,
}

/// How long in-flight connections may finish after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` over HTTP/1.1 (over TLS with `options.tls`) until `shutdown`
/// resolves, then lets open connections finish for up to 10 s. Every request carries the
/// client's `ConnectInfo<SocketAddr>` and a body that fails once `timeouts.body` has passed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let tls = options.tls.map(|t| t.acceptor());
    let timeouts = options.timeouts;
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, peer, app, timeouts, watcher).await,
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(timeouts.header, acceptor.accept(stream)).await
                    else {
                        // A failed or too slow handshake: nothing to answer.
                        return;
                    };
                    connection(stream, peer, app, timeouts, watcher).await
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}

async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    watcher: Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut app = app.clone();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let req = hyper::Request::from_parts(parts, DeadlineBody::new(body, timeouts.body));
        app.call(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, %peer, "connection ended");
    }
}
