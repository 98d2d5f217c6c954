//! TLS to ClickHouse. An `https://` `clickhouse.url` works out of the box: the `clickhouse` crate's
//! own client (features `rustls-tls-ring` + `rustls-tls-webpki-roots`) trusts the public web CAs.
//! With `clickhouse.ca_file` (a private CA), the client gets a connector that trusts only the
//! certificates of that file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{TlsError, VERSIONS, provider, root_store};
use crate::config::ClickHouseConfig;

/// Config key of the ClickHouse CA bundle.
pub const CA_KEY: &str = "clickhouse.ca_file";

/// The same TCP keep-alive as the `clickhouse` crate's default client.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// The same pool idle timeout as the `clickhouse` crate's default client (ClickHouse closes idle
/// HTTP connections after 3 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks `clickhouse.ca_file` as start-up would: readable, PEM certificates, an `https://` URL.
pub fn check(cfg: &ClickHouseConfig) -> Result<(), TlsError> {
    client(cfg).map(drop)
}

/// The ClickHouse client for `cfg` (URL and credentials not set yet).
pub fn client(cfg: &ClickHouseConfig) -> Result<clickhouse::Client, TlsError> {
    let Some(path) = cfg.ca_file.as_deref() else { return Ok(clickhouse::Client::default()) };
    if !cfg.url.starts_with("https://") {
        return Err(TlsError::new(CA_KEY, Some(path), "needs an https:// clickhouse.url"));
    }
    with_ca(path)
}

/// A client trusting only the CA certificates in `path`. (The hyper client's body type is the
/// crate's private `RequestBody`, so it is inferred here, where it is handed over.)
fn with_ca(path: &Path) -> Result<clickhouse::Client, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::new(CA_KEY, Some(path), format!("cannot read: {e}")))?;
    let roots = root_store(CA_KEY, path, &bytes)?;
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::new(CA_KEY, None, format!("TLS versions: {e}")))?
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.set_keepalive(Some(TCP_KEEPALIVE));
    tcp.enforce_http(false);
    let https =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().wrap_connector(tcp);
    let http = HyperClient::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(https);
    Ok(clickhouse::Client::with_http_client(http))
}
