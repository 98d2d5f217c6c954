//! Accepted connections, plain or TLS, for both receivers' connection loops.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::{Protocol, ServerTls};

/// One accepted connection: TCP, or TLS over TCP once the handshake is done.
pub enum Conn {
    /// A plaintext connection (TLS off).
    Plain(TcpStream),
    /// A connection whose TLS handshake succeeded.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }
}

/// Runs the TLS handshakes of one listener, with the configuration current at each handshake.
#[derive(Clone)]
pub struct Acceptor {
    tls: ServerTls,
    protocol: Protocol,
    timeout: Duration,
}

impl Acceptor {
    pub(super) fn new(tls: ServerTls, protocol: Protocol) -> Self {
        let timeout = tls.0.handshake_timeout;
        Acceptor { tls, protocol, timeout }
    }

    /// The TLS connection, or `None` (logged at debug, counted) when the client fails the handshake
    /// or does not finish it in time: a plaintext client, an unknown or missing client certificate,
    /// a client that does not trust the server's certificate. The TCP connection is then closed.
    pub async fn handshake(&self, mut tcp: TcpStream) -> Option<Conn> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let peer = tcp.peer_addr().ok();
        // A TLS connection starts with a handshake record (0x16); a plaintext HTTP/1 request with
        // its method's capital letters. Such a client gets a 400 saying why, instead of a TLS alert
        // its HTTP parser cannot read.
        if self.protocol == Protocol::Http {
            let mut first = [0u8; 1];
            match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
                Err(_) => return self.timed_out(peer),
                Ok(Err(e)) => return self.failed(peer, &e),
                Ok(Ok(1)) if first[0].is_ascii_uppercase() => {
                    self.failed(peer, &"plaintext HTTP request on the TLS port (answered 400)");
                    refuse_plaintext(&mut tcp).await;
                    return None;
                }
                Ok(Ok(_)) => {}
            }
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.current(self.protocol));
        match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => Some(Conn::Tls(Box::new(stream))),
            Ok(Err(e)) => self.failed(peer, &e),
            Err(_) => self.timed_out(peer),
        }
    }

    /// Counts and logs a failed handshake.
    fn failed(&self, peer: Option<SocketAddr>, error: &dyn std::fmt::Display) -> Option<Conn> {
        self.tls.0.stats.tls.handshake_failures.fetch_add(1, Relaxed);
        tracing::debug!(?peer, protocol = ?self.protocol, error = %error, "TLS handshake failed; connection closed.");
        None
    }

    /// Counts and logs a handshake that did not complete in time.
    fn timed_out(&self, peer: Option<SocketAddr>) -> Option<Conn> {
        self.tls.0.stats.tls.handshake_timeouts.fetch_add(1, Relaxed);
        tracing::debug!(?peer, protocol = ?self.protocol, timeout = ?self.timeout,
            "TLS handshake not completed in time; connection closed.");
        None
    }
}

/// The body of the answer to a plaintext HTTP request on the TLS port.
pub const PLAINTEXT_ANSWER: &str = "This port speaks TLS: send the request to https://, not http://.\n";

/// Answers 400 with [`PLAINTEXT_ANSWER`] and closes, reading what the client sent first (closing a socket
/// with unread data resets the connection, and the client might never see the answer).
async fn refuse_plaintext(tcp: &mut TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match tcp.try_read(&mut sink) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{PLAINTEXT_ANSWER}",
        PLAINTEXT_ANSWER.len()
    );
    if tcp.write_all(answer.as_bytes()).await.is_ok() && tcp.shutdown().await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while drained < 64 * 1024 {
                match tcp.read(&mut sink).await {
                    Ok(n) if n > 0 => drained += n,
                    _ => break,
                }
            }
        })
        .await;
    }
}

/// The connections accepted on `listener`, after their TLS handshake when `tls` is set. Handshakes
/// run concurrently (a slow one holds up no other), inside the stream: dropping the stream closes
/// the listener and abandons unfinished handshakes. Never yields an error (accept errors such as
/// EMFILE are retried after a pause by axum's `Listener`); the `Result` is what tonic wants.
pub(crate) fn incoming(listener: TcpListener, tls: Option<Acceptor>) -> impl Stream<Item = io::Result<Conn>> + Send {
    struct State {
        listener: TcpListener,
        tls: Option<Acceptor>,
        handshakes: FuturesUnordered<BoxFuture<'static, Option<Conn>>>,
    }
    let state = State { listener, tls, handshakes: FuturesUnordered::new() };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            tokio::select! {
                (tcp, _) = axum::serve::Listener::accept(&mut s.listener) => {
                    // OTLP requests are small and latency-sensitive.
                    let _ = tcp.set_nodelay(true);
                    match &s.tls {
                        None => return Some((Ok(Conn::Plain(tcp)), s)),
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            s.handshakes.push(Box::pin(async move { acceptor.handshake(tcp).await }));
                        }
                    }
                }
                Some(done) = s.handshakes.next(), if !s.handshakes.is_empty() => {
                    if let Some(conn) = done {
                        return Some((Ok(conn), s));
                    }
                }
            }
        }
    })
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp().connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
