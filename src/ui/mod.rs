//! The built-in call explorer: a small web app served by `promptlog serve` on its own admin listener
//! (`ui.endpoint`, default `127.0.0.1:4319`).
//!
//! - Static assets ([`assets`]): one HTML page, a stylesheet and a script, hand-written, without
//!   dependencies, embedded in the binary. The script renders every stored value with `textContent`
//!   and DOM APIs only (prompt text is untrusted), and every response carries a strict
//!   Content-Security-Policy that allows only those same-origin files: no inline script, no `eval`, no
//!   third-party origin, no framing.
//! - JSON endpoints ([`api`]) on top of the read-side query layer [`crate::explore`]: the call list
//!   with its filters, one call, one session; and thumbs up / down, which go through the feedback
//!   API's own submit path (spooled, acknowledged once fsynced, stamped with the key's project).
//!
//! With API keys on, the JSON endpoints need a `read`-scope key (reads are restricted to its project)
//! and thumbs a `feedback`-scope key; the page asks for the key once and keeps it in the tab's
//! `sessionStorage`. With auth off, requests are only answered when their `Host` is a loopback name
//! or an IP literal (a page on another site cannot read the explorer through DNS rebinding), and the
//! feedback endpoint only takes `application/json` (which a cross-site form cannot send).

mod api;
mod assets;
mod grafana;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::receiver::Receiver;

/// Every response's Content-Security-Policy: only the explorer's own script, stylesheet and JSON.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// What the explorer's handlers share.
#[derive(Clone)]
pub(crate) struct UiState {
    /// The read side (ClickHouse with the least-privileged reader account configured).
    pub(crate) reader: crate::explore::Reader,
    /// Who may read and rate, and as which project.
    pub(crate) auth: Auth,
    /// The feedback API's submit path.
    pub(crate) receiver: Receiver,
    /// Grafana's base URL for trace links; empty: none.
    pub(crate) grafana_url: String,
}

/// Serves the explorer on `listener` until `shutdown` is cancelled. Uses the receivers' connection
/// loop, so slow clients are bounded the same way.
pub(crate) async fn serve(listener: TcpListener, state: UiState, shutdown: CancellationToken) -> std::io::Result<()> {
    let timeouts = crate::receiver::http::conn::Timeouts::default();
    crate::receiver::http::conn::serve(listener, router(state), timeouts, shutdown).await
}

/// The explorer's routes, with the security headers on every response.
fn router(state: UiState) -> Router {
    let auth = state.auth.clone();
    assets::routes()
        .merge(api::routes(state))
        .layer(middleware::from_fn_with_state(auth, guard))
        .layer(middleware::from_fn(security_headers))
}

/// Refuses requests for a `Host` that is neither a loopback name nor an IP literal while auth is off
/// (with auth on, every read needs a key, which a rebinding page does not have).
async fn guard(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    if !auth.enabled() {
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if !host_is_local_or_literal(host) {
            let message = format!(
                "the explorer answers only requests for a loopback name or an IP address while API keys are off \
                 (Host {host:?}); turn API keys on to serve it under a name"
            );
            return (StatusCode::MISDIRECTED_REQUEST, message).into_response();
        }
    }
    next.run(request).await
}

/// Whether `host` (a `Host` header: name or address, optional port) is `localhost`, a `.localhost`
/// name, or an IPv4 / bracketed IPv6 literal.
fn host_is_local_or_literal(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The headers every explorer response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Prompts must not linger in shared caches; the assets are small and served from memory.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_and_ip_literals_pass_the_host_check() {
        for ok in ["127.0.0.1:4319", "localhost:4319", "LOCALHOST", "app.localhost:80", "[::1]:4319", "10.0.0.7"] {
            assert!(host_is_local_or_literal(ok), "{ok}");
        }
        for refused in
            ["evil.example:4319", "evil.example", "", "[nothing]:1", "localhost.evil.example", "127.0.0.1.nip.io"]
        {
            assert!(!host_is_local_or_literal(refused), "{refused}");
        }
    }
}
