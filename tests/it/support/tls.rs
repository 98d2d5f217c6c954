//! Support of the `tls` suite: a throw-away PKI made with rcgen, raw rustls clients that report
//! what the server presented, the env-configured Python exporter, and the chDB server over HTTPS.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use promptlog::config::{Config, TlsConfig};
use promptlog_testkit::{python, repo_root};

use crate::support::stack::Stack;

/// A certificate authority of the test.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM.
    pub pem: String,
}

/// A certificate signed by a [`Ca`], and its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { issuer: Issuer::new(params, key), pem }
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self, name: &str) -> Leaf {
        self.leaf(name, vec!["localhost".into(), "127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate.
    pub fn client(&self, name: &str) -> Leaf {
        self.leaf(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, name: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages.push(KeyUsagePurpose::DigitalSignature);
        params.extended_key_usages.push(usage);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

impl Leaf {
    /// The leaf certificate, DER: what a server presenting it sends first.
    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap()
    }

    /// Writes `<name>.crt` and `<name>.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// Writes `pem` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// Makes `config`'s receivers serve TLS with a fresh server certificate of `ca` (`server.crt` and
/// `server.key` in `dir`), requiring client certificates of `client_ca` (`client-ca.pem`) if given.
pub fn serve_tls(config: &mut Config, dir: &Path, ca: &Ca, client_ca: Option<&Ca>) {
    let (cert, key) = ca.server("promptlog").write(dir, "server");
    let client_ca = client_ca.map(|c| write(dir, "client-ca.pem", &c.pem));
    config.receivers.tls = TlsConfig {
        cert_file: Some(cert),
        key_file: Some(key),
        client_ca_file: client_ca,
        ..config.receivers.tls.clone()
    };
}

/// A collector serving TLS as [`serve_tls`] sets it up, after letting `tweak` adjust its TLS config.
pub async fn tls_stack(dir: &Path, ca: &Ca, client_ca: Option<&Ca>, tweak: impl FnOnce(&mut TlsConfig)) -> Stack {
    Stack::start_with(|c| {
        serve_tls(c, dir, ca, client_ca);
        tweak(&mut c.receivers.tls);
    })
    .await
}

/// A rustls client config trusting `ca`, presenting `identity` if given, offering `alpn`.
pub fn client_config(ca: &str, identity: Option<&Leaf>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => {
            let chain = vec![leaf.der()];
            let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A client that speaks TLS 1.2 only.
pub fn tls12_only(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to `addr` (server name 127.0.0.1).
pub async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}

/// The leaf certificate the server at `addr` presents now (a fresh connection).
pub async fn presented(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> CertificateDer<'static> {
    let tls = connect(addr, config).await.expect("TLS handshake");
    tls.get_ref().1.peer_certificates().expect("server certificate")[0].clone().into_owned()
}

/// Whether the server refuses the connection: the handshake fails, or the first read after
/// sending a request fails or ends (with TLS 1.3 a client learns of a rejected client certificate
/// only then). A connection that answers, or stays open for 3 s, is not refused.
pub async fn refused(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> bool {
    let Ok(mut tls) = connect(addr, config).await else { return true };
    if tls.write_all(b"GET /health HTTP/1.1\r\nHost: promptlog\r\n\r\n").await.is_err() {
        return true;
    }
    let mut buf = [0u8; 256];
    match tokio::time::timeout(Duration::from_secs(3), tls.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// An HTTP/1.1 connection over TLS that stays open across requests.
pub struct KeptAlive {
    sender: hyper::client::conn::http1::SendRequest<axum::body::Body>,
    /// The certificate the server presented when it was opened.
    pub presented: CertificateDer<'static>,
}

impl KeptAlive {
    pub async fn open(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> KeptAlive {
        let tls = connect(addr, config).await.expect("TLS handshake");
        let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        KeptAlive { sender, presented }
    }

    /// `GET path` on this connection: status and body.
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let request = hyper::Request::get(path).header("host", "promptlog").body(axum::body::Body::empty()).unwrap();
        let response = self.sender.send_request(request).await.expect("request on the open connection");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// The value of a Prometheus counter on the collector's `/metrics`, over TLS.
pub async fn metric(addr: SocketAddr, config: Arc<rustls::ClientConfig>, name: &str) -> u64 {
    let (status, text) = KeptAlive::open(addr, config).await.get("/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// Variables that change which CAs Python's HTTP stacks and gRPC trust.
const TRUST_STORE_VARS: [&str; 5] =
    ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"];

/// Runs `tests/clients/tls_client.py` (one GenAI span) with only `env` configuring the exporter;
/// true if its export succeeded.
pub async fn python_export(env: &[(&str, String)]) -> (bool, String) {
    let venv_python = repo_root().join(".venvs/otel-latest/bin/python");
    assert!(venv_python.exists(), "{} is missing: run scripts/setup.sh", venv_python.display());
    let mut cmd = tokio::process::Command::new(venv_python);
    cmd.arg(repo_root().join("tests/clients/tls_client.py"));
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("OTEL_")) {
            cmd.env_remove(key);
        }
    }
    // Trust stores from the caller's environment: `requests` lets REQUESTS_CA_BUNDLE and
    // CURL_CA_BUNDLE override the exporter's `OTEL_EXPORTER_OTLP_CERTIFICATE` (see collector-config/SECURITY.md).
    for var in TRUST_STORE_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("client ran over 60 s").unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let ok = out.status.success() && text.contains(r#"RESULT {"ok": true"#);
    (ok, text)
}

/// The exporter environment for `protocol` (`grpc` or `http/protobuf`) against `addr` over TLS.
pub fn otel_env(protocol: &str, addr: SocketAddr, service: &str, ca_file: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("https://{addr}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file.display().to_string()),
        ("OTEL_SERVICE_NAME", service.into()),
        // Refused exports retry until this (seconds); successful ones take well under it, even on
        // a loaded machine.
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10".into()),
    ]
}

/// `llm_calls` rows of `service`, waiting up to `wait` for at least one.
pub async fn llm_rows(stack: &Stack, service: &str, wait: Duration) -> u64 {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let rows =
            stack.query_json(&format!("SELECT count() AS n FROM llm_calls WHERE ServiceName = '{service}'")).await;
        let n = rows[0]["n"].as_str().and_then(|s| s.parse().ok()).or_else(|| rows[0]["n"].as_u64()).unwrap();
        if n > 0 || std::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chDB test server serving HTTPS with `cert`/`key` (stopped on drop).
pub struct TlsChServer {
    pub url: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl TlsChServer {
    pub fn start(cert: &Path, key: &Path) -> TlsChServer {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/chdb_server/server.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data.path())
            .args(["--parent-pid", &std::process::id().to_string()])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the chDB test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("chDB server said {line:?}")).to_owned();
        TlsChServer { url, child, _data: data }
    }
}

impl Drop for TlsChServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
