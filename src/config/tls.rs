//! `receivers.tls`: TLS (and mTLS) on both OTLP receivers. Unset `cert_file` and `key_file`: plaintext.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// How often the certificate, key and client CA files are re-read; they are also re-read on SIGHUP.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Time a client has to complete the TLS handshake after connecting.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS on the OTLP/gRPC and OTLP/HTTP listeners (both share one certificate).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (env `PROMPTLOG_TLS_CERT_FILE`). Needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate (env `PROMPTLOG_TLS_KEY_FILE`).
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates: when set, clients must present a certificate signed by one of them
    /// (mTLS; env `PROMPTLOG_TLS_CLIENT_CA_FILE`).
    pub client_ca_file: Option<PathBuf>,
    /// How often the three files are checked for new contents (0: only on SIGHUP).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Deadline for a client's TLS handshake; slower connections are closed.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            reload_interval: DEFAULT_TLS_RELOAD_INTERVAL,
            handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        }
    }
}

impl TlsConfig {
    /// Whether the receivers serve TLS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some()
    }
}
