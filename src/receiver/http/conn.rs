//! The OTLP/HTTP connection loop, with read timeouts against slow clients.
//!
//! `axum::serve` is not used because axum 0.8 exposes no connection options, and hyper only
//! enforces its header-read timeout when given a timer, which `axum::serve` does not set. Without
//! one, a client that sends its request head a byte at a time (slow loris) holds a task and a file
//! descriptor for as long as it likes, and graceful shutdown waits for it forever. Here:
//!
//! - HTTP/1 request heads must arrive within [`Timeouts::header_read`] (hyper closes the connection
//!   otherwise). The same timer closes keep-alive connections idle for that long; clients reconnect.
//! - Request bodies must arrive within [`Timeouts::body_read`] of the request head, or the handler's
//!   read fails and the client gets a 400 that says so.
//! - With TLS, the handshake must complete within `receivers.tls.handshake_timeout` (see
//!   [`crate::tls::Acceptor`]); it runs before hyper sees the connection, so it does not hold up
//!   accepting others.

use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use futures::{Stream, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::tls::Acceptor;

/// Default time a client has to send a complete HTTP/1 request head (OTLP clients send it at once).
/// Also the keep-alive idle timeout, so not shorter: hyper's own default, long enough that pooled
/// exporter connections (5 s export interval by default) are rarely closed under a client.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a client has to send a request body once its head has arrived: enough for a
/// 64 MiB body at about 1 MiB/s.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Read deadlines of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Deadline for a complete HTTP/1 request head, counted from when the server starts waiting
    /// for it (so it is also the keep-alive idle timeout).
    pub header_read: Duration,
    /// Deadline for the whole request body, counted from when the handler is called.
    pub body_read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { header_read: HEADER_READ_TIMEOUT, body_read: BODY_READ_TIMEOUT }
    }
}

/// Why reading a request body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// The client did not finish sending the body in time.
    #[error("request body not received within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The connection failed while reading.
    #[error(transparent)]
    Read(#[from] axum::Error),
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then waits for in-flight requests
/// (each bounded by the timeouts above).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) -> io::Result<()> {
    serve_with_tls(listener, app, timeouts, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is set.
pub async fn serve_with_tls(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    tls: Option<Acceptor>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let app = app.layer(middleware::from_fn_with_state(timeouts.body_read, body_deadline));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
    let graceful = GracefulShutdown::new();
    // Never ends nor fails: accept errors are retried and failed handshakes skipped inside.
    let mut incoming = Box::pin(crate::tls::incoming(listener, tls));
    loop {
        let stream = tokio::select! {
            Some(Ok(stream)) = incoming.next() => stream,
            _ = shutdown.cancelled() => break,
        };
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // Timeouts and clients hanging up land here; neither is the collector's problem.
                tracing::debug!(error = %e, "HTTP connection ended with an error.");
            }
        });
    }
    drop(incoming); // closes the listener
    graceful.shutdown().await;
    Ok(())
}

/// Middleware: makes the request body fail once `limit` has passed since the request arrived.
async fn body_deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let deadline = Instant::now() + limit;
    next.run(request.map(|body| Body::from_stream(with_deadline(body, deadline, limit)))).await
}

/// The body's chunks until `deadline`, then a [`BodyReadError::Timeout`] instead of the next chunk.
fn with_deadline(
    body: Body,
    deadline: Instant,
    limit: Duration,
) -> impl Stream<Item = Result<Bytes, BodyReadError>> + Send + 'static {
    futures::stream::unfold(Some(body.into_data_stream()), move |state| async move {
        let mut chunks = state?;
        match tokio::time::timeout_at(deadline, chunks.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(chunks))),
            Ok(Some(Err(e))) => Some((Err(BodyReadError::Read(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(BodyReadError::Timeout(limit)), None)),
        }
    })
}
