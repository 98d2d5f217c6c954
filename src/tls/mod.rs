//! TLS with rustls and one crypto provider, ring, everywhere (receivers, ClickHouse client, tests).
//!
//! Receivers: [`ServerTls`] holds the live `rustls::ServerConfig` of each receiver behind an atomic
//! swap. Every handshake takes the config current at that moment ([`Acceptor`]), so a reload
//! ([`ServerTls::reload`], run by [`spawn_reloader`] on a timer and on SIGHUP) changes what new
//! connections get while open connections keep the config they were made with: nothing is dropped.
//! The whole config is swapped, not only the certificate, so the client CA file of mTLS is reloaded
//! too. Only TLS 1.3 and 1.2 are offered. With `client_ca_file`, a client certificate signed by one
//! of its CAs is required.

pub mod client;
mod conn;
mod reload;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub(crate) use conn::incoming;
pub use conn::{Acceptor, Conn, PLAINTEXT_ANSWER};
pub use reload::spawn_reloader;

use crate::config::TlsConfig;
use crate::telemetry::Stats;

/// Config key of the certificate chain.
pub const CERT_KEY: &str = "receivers.tls.cert_file";
/// Config key of the private key.
pub const KEY_KEY: &str = "receivers.tls.key_file";
/// Config key of the client CA bundle (mTLS).
pub const CLIENT_CA_KEY: &str = "receivers.tls.client_ca_file";

/// TLS versions offered, server and client side: 1.3 and 1.2 (the minimum).
pub(crate) const VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The one crypto provider.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS file or setting that cannot be used; names the config key at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{key}{}: {reason}", path.as_ref().map(|p| format!(" = {}", p.display())).unwrap_or_default())]
pub struct TlsError {
    /// The config key, e.g. `receivers.tls.cert_file`.
    pub key: &'static str,
    /// The file, when one is involved.
    pub path: Option<PathBuf>,
    /// What is wrong.
    pub reason: String,
}

impl TlsError {
    fn new(key: &'static str, path: Option<&Path>, reason: impl Into<String>) -> Self {
        TlsError { key, path: path.map(Path::to_owned), reason: reason.into() }
    }
}

/// Which receiver a server config is for; they differ in the ALPN protocols offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC: HTTP/2 only (gRPC clients insist on ALPN `h2`).
    Grpc,
    /// OTLP/HTTP: HTTP/2 or HTTP/1.1.
    Http,
}

impl Protocol {
    fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Protocol::Grpc => vec![b"h2".to_vec()],
            Protocol::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// The three files as last read, compared byte for byte to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pem {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// Where the files are.
#[derive(Debug, Clone)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

impl Files {
    /// The configured files, or `None` when TLS is off; refuses a certificate without a key and the
    /// reverse, and a client CA without either.
    fn of(cfg: &TlsConfig) -> Result<Option<Files>, TlsError> {
        match (&cfg.cert_file, &cfg.key_file) {
            (Some(cert), Some(key)) => {
                Ok(Some(Files { cert: cert.clone(), key: key.clone(), client_ca: cfg.client_ca_file.clone() }))
            }
            (Some(_), None) => Err(TlsError::new(KEY_KEY, None, format!("must be set when {CERT_KEY} is"))),
            (None, Some(_)) => Err(TlsError::new(CERT_KEY, None, format!("must be set when {KEY_KEY} is"))),
            (None, None) if cfg.client_ca_file.is_some() => {
                Err(TlsError::new(CLIENT_CA_KEY, None, format!("needs {CERT_KEY} and {KEY_KEY} (mTLS is TLS first)")))
            }
            (None, None) => Ok(None),
        }
    }

    fn read(&self) -> Result<Pem, TlsError> {
        Ok(Pem {
            cert: read(CERT_KEY, &self.cert)?,
            key: read(KEY_KEY, &self.key)?,
            client_ca: self.client_ca.as_deref().map(|p| read(CLIENT_CA_KEY, p)).transpose()?,
        })
    }

    /// Both receivers' configs from `pem`, checked: parsable PEM, a key that fits the certificate, a
    /// usable CA bundle.
    fn build(&self, pem: &Pem) -> Result<[Arc<ServerConfig>; 2], TlsError> {
        let chain = certificates(CERT_KEY, &self.cert, &pem.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|e| {
            TlsError::new(KEY_KEY, Some(&self.key), format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"))
        })?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(|e| TlsError::new(CERT_KEY, None, format!("TLS versions: {e}")))?;
        let builder = match (&self.client_ca, &pem.client_ca) {
            (Some(path), Some(bytes)) => {
                let roots = root_store(CLIENT_CA_KEY, path, bytes)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .map_err(|e| TlsError::new(CLIENT_CA_KEY, Some(path), e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            let reason = format!("key and certificate ({CERT_KEY}) do not form a usable pair: {e}");
            TlsError::new(KEY_KEY, Some(&self.key), reason)
        })?;
        Ok([Protocol::Grpc, Protocol::Http].map(|p| {
            let mut c = config.clone();
            c.alpn_protocols = p.alpn();
            Arc::new(c)
        }))
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::new(key, Some(path), format!("cannot read: {e}")))
}

/// Every `CERTIFICATE` block of a PEM file; at least one.
pub(crate) fn certificates(
    key: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(key, Some(path), format!("not a valid PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::new(key, Some(path), "no PEM CERTIFICATE block found"));
    }
    Ok(certs)
}

/// A root store of every certificate in a PEM CA bundle.
pub(crate) fn root_store(key: &'static str, path: &Path, bytes: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(key, path, bytes)? {
        roots.add(cert).map_err(|e| TlsError::new(key, Some(path), format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// Checks a receivers' TLS config as start-up would (files readable, PEM parsable, key fits).
pub fn check(cfg: &TlsConfig) -> Result<(), TlsError> {
    if let Some(files) = Files::of(cfg)? {
        files.build(&files.read()?)?;
    }
    Ok(())
}

/// The live TLS configuration of both receivers. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls(Arc<Shared>);

struct Shared {
    files: Files,
    /// gRPC's and HTTP's configs, indexed like [`Protocol`].
    configs: [ArcSwap<ServerConfig>; 2],
    handshake_timeout: std::time::Duration,
    /// The files as last read, whether they loaded or not (a broken file is reported once).
    last: Mutex<Pem>,
    stats: Arc<Stats>,
}

impl ServerTls {
    /// Loads the configured files; `None` when TLS is off.
    pub fn load(cfg: &TlsConfig, stats: Arc<Stats>) -> Result<Option<ServerTls>, TlsError> {
        let Some(files) = Files::of(cfg)? else { return Ok(None) };
        let pem = files.read()?;
        let [grpc, http] = files.build(&pem)?;
        Ok(Some(ServerTls(Arc::new(Shared {
            files,
            configs: [ArcSwap::new(grpc), ArcSwap::new(http)],
            handshake_timeout: cfg.handshake_timeout,
            last: Mutex::new(pem),
            stats,
        }))))
    }

    /// Whether client certificates are required.
    pub fn mutual(&self) -> bool {
        self.0.files.client_ca.is_some()
    }

    /// Handshakes for `protocol`'s listener, each with the config current when it starts.
    pub fn acceptor(&self, protocol: Protocol) -> Acceptor {
        Acceptor::new(self.clone(), protocol)
    }

    fn current(&self, protocol: Protocol) -> Arc<ServerConfig> {
        self.0.configs[protocol as usize].load_full()
    }

    /// Re-reads the files; if their contents changed and they load, new connections get them.
    /// `Ok(false)`: unchanged (or changed to what already failed). On an error the previous
    /// configuration stays in use.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let pem = self.0.files.read()?;
        {
            let mut last = self.0.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last == pem {
                return Ok(false);
            }
            *last = pem.clone();
        }
        let [grpc, http] = self.0.files.build(&pem)?;
        self.0.configs[Protocol::Grpc as usize].store(grpc);
        self.0.configs[Protocol::Http as usize].store(http);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
