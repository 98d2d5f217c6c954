//! TLS on both receivers and to ClickHouse, with certificates made in the test (rcgen, ring):
//! real Python OTLP exporters configured only through the standard `OTEL_EXPORTER_OTLP_*`
//! variables; mTLS (right CA, other CA, no certificate); a certificate and a client CA swapped on
//! disk (timer and SIGHUP) used without a restart while an open connection keeps working; TLS 1.2
//! as the minimum; plaintext and silent
//! clients against the TLS ports; `https://` ClickHouse with and without `clickhouse.ca_file`.
//!
//! Needs `.venv` (chDB server) and `.venvs/otel-latest` (`scripts/setup.sh`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use promptlog::config::Config;
use promptlog::storage::clickhouse::{Store, schema};
use promptlog_otlp::{kv, kv_i64, now_ns, resource, span, traces_request};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::stack::Stack;
use crate::support::tls::*;

const H2: &[&[u8]] = &[b"h2"];
const HTTP1: &[&[u8]] = &[b"http/1.1"];
const ROWS_WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exporters_configured_only_by_env_send_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("promptlog test CA");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let stack = tls_stack(dir.path(), &ca, None, |_| {}).await;
    for (protocol, addr) in [("grpc", stack.grpc_addr), ("http/protobuf", stack.http_addr)] {
        let service = format!("tls-{}", protocol.replace('/', "-"));
        let (ok, out) = python_export(&otel_env(protocol, addr, &service, &ca_file)).await;
        assert!(ok, "{protocol} export over TLS failed:\n{out}");
        assert_eq!(llm_rows(&stack, &service, ROWS_WAIT).await, 1, "{protocol}: the call's row");
    }
    // The same exporters without the CA do not trust the collector, and nothing is stored.
    let untrusted = |protocol: &str, addr| {
        let mut env = otel_env(protocol, addr, &format!("untrusted-{}", protocol.replace('/', "-")), &ca_file);
        env.retain(|(k, _)| *k != "OTEL_EXPORTER_OTLP_CERTIFICATE");
        env
    };
    let (grpc_env, http_env) = (untrusted("grpc", stack.grpc_addr), untrusted("http/protobuf", stack.http_addr));
    let (grpc, http) = tokio::join!(python_export(&grpc_env), python_export(&http_env));
    for (protocol, (ok, out)) in [("grpc", grpc), ("http/protobuf", http)] {
        assert!(!ok, "{protocol} export succeeded without trusting the collector's CA:\n{out}");
    }
    for service in ["untrusted-grpc", "untrusted-http-protobuf"] {
        assert_eq!(llm_rows(&stack, service, Duration::from_millis(500)).await, 0, "{service} stored rows");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requires_a_client_certificate_from_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, client_ca, other_ca) = (Ca::new("server CA"), Ca::new("client CA"), Ca::new("other CA"));
    let ca_file = write(dir.path(), "ca.pem", &server_ca.pem);
    let stack = tls_stack(dir.path(), &server_ca, Some(&client_ca), |_| {}).await;
    let (good_cert, good_key) = client_ca.client("app").write(dir.path(), "good");
    let (bad_cert, bad_key) = other_ca.client("intruder").write(dir.path(), "bad");
    let with_identity = |protocol: &str, addr, service: &str, cert: &PathBuf, key: &PathBuf| {
        let mut env = otel_env(protocol, addr, service, &ca_file);
        env.push(("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert.display().to_string()));
        env.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", key.display().to_string()));
        env
    };
    for (protocol, addr) in [("grpc", stack.grpc_addr), ("http/protobuf", stack.http_addr)] {
        let p = protocol.replace('/', "-");
        // The three clients at once: the refused ones retry until their timeout.
        let good_env = with_identity(protocol, addr, &format!("mtls-{p}"), &good_cert, &good_key);
        let other_env = with_identity(protocol, addr, &format!("other-{p}"), &bad_cert, &bad_key);
        let none_env = otel_env(protocol, addr, &format!("none-{p}"), &ca_file);
        let (good, other, none) =
            tokio::join!(python_export(&good_env), python_export(&other_env), python_export(&none_env));
        assert!(good.0, "{protocol} with a certificate of the client CA failed:\n{}", good.1);
        assert_eq!(llm_rows(&stack, &format!("mtls-{p}"), ROWS_WAIT).await, 1);
        assert!(!other.0, "{protocol} with a certificate of another CA was accepted:\n{}", other.1);
        assert!(!none.0, "{protocol} without a client certificate was accepted:\n{}", none.1);
    }
    for p in ["grpc", "http-protobuf"] {
        for service in [format!("other-{p}"), format!("none-{p}")] {
            assert_eq!(llm_rows(&stack, &service, Duration::from_millis(200)).await, 0, "{service} stored rows");
        }
    }
    // The same at the handshake, from Rust, on both ports.
    let good = client_ca.client("rust");
    let bad = other_ca.client("rust");
    for (addr, alpn) in [(stack.grpc_addr, H2), (stack.http_addr, HTTP1)] {
        assert!(!refused(addr, client_config(&server_ca.pem, Some(&good), alpn)).await, "{addr}: right CA refused");
        assert!(refused(addr, client_config(&server_ca.pem, Some(&bad), alpn)).await, "{addr}: other CA accepted");
        assert!(refused(addr, client_config(&server_ca.pem, None, alpn)).await, "{addr}: no certificate accepted");
    }
    let config = client_config(&server_ca.pem, Some(&good), HTTP1);
    assert_eq!(KeptAlive::open(stack.http_addr, config.clone()).await.get("/health").await.0, 200);
    let failures = metric(stack.http_addr, config, "promptlog_tls_handshake_failures_total").await;
    assert!(failures >= 4, "handshake failures counted: {failures}");
}

/// Waits until new connections to `addr` are given `want`.
async fn wait_presented(
    addr: SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
    want: &Leaf,
    wait: Duration,
) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if presented(addr, config.clone()).await == want.der() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_swapped_on_disk_is_served_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("rotation CA");
    let stack = tls_stack(dir.path(), &ca, None, |t| t.reload_interval = Duration::from_millis(200)).await;
    let (http1, h2) = (client_config(&ca.pem, None, HTTP1), client_config(&ca.pem, None, H2));
    let mut open = KeptAlive::open(stack.http_addr, http1.clone()).await;
    assert_eq!(open.get("/health").await.0, 200);
    let first = open.presented.clone();
    assert_eq!(presented(stack.grpc_addr, h2.clone()).await, first);

    let next = ca.server("promptlog rotated");
    assert_ne!(next.der(), first);
    // Written in place, certificate first: a poll may see the new certificate with the old key,
    // which must not disturb anything.
    next.write(dir.path(), "server");
    assert!(wait_presented(stack.http_addr, http1.clone(), &next, Duration::from_secs(10)).await, "HTTP port");
    assert!(wait_presented(stack.grpc_addr, h2.clone(), &next, Duration::from_secs(2)).await, "gRPC port");
    // The connection opened before the swap was not dropped.
    assert_eq!(open.get("/health").await.0, 200, "the open connection broke");
    assert!(metric(stack.http_addr, http1.clone(), "promptlog_tls_reloads_total").await >= 1);

    // A broken file is not loaded: the last good certificate stays.
    std::fs::write(dir.path().join("server.crt"), "garbage").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(stack.http_addr, http1.clone(), "promptlog_tls_reload_failures_total").await == 0 {
        assert!(Instant::now() < deadline, "the broken certificate file was not noticed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(presented(stack.http_addr, http1.clone()).await, next.der());
    assert_eq!(open.get("/health").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("SIGHUP CA");
    let stack = tls_stack(dir.path(), &ca, None, |t| t.reload_interval = Duration::ZERO).await;
    let config = client_config(&ca.pem, None, HTTP1);
    // A served handshake means the reloader (and its SIGHUP handler) is installed.
    let first = presented(stack.http_addr, config.clone()).await;
    let next = ca.server("promptlog after SIGHUP");
    next.write(dir.path(), "server");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(presented(stack.http_addr, config.clone()).await, first, "reloaded without a timer or signal");
    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(wait_presented(stack.http_addr, config, &next, Duration::from_secs(5)).await, "SIGHUP did not reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_swapped_on_disk_applies_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, old_clients, new_clients) =
        (Ca::new("server CA"), Ca::new("old client CA"), Ca::new("new client CA"));
    let stack =
        tls_stack(dir.path(), &server_ca, Some(&old_clients), |t| t.reload_interval = Duration::from_millis(200)).await;
    let (old_id, new_id) = (old_clients.client("old app"), new_clients.client("new app"));
    let mut open = KeptAlive::open(stack.http_addr, client_config(&server_ca.pem, Some(&old_id), HTTP1)).await;
    assert_eq!(open.get("/health").await.0, 200);
    assert!(refused(stack.http_addr, client_config(&server_ca.pem, Some(&new_id), HTTP1)).await);
    write(dir.path(), "client-ca.pem", &new_clients.pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused(stack.http_addr, client_config(&server_ca.pem, Some(&new_id), HTTP1)).await {
        assert!(Instant::now() < deadline, "the new client CA was not loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (addr, alpn) in [(stack.http_addr, HTTP1), (stack.grpc_addr, H2)] {
        assert!(
            refused(addr, client_config(&server_ca.pem, Some(&old_id), alpn)).await,
            "{addr}: old CA still trusted"
        );
        assert!(!refused(addr, client_config(&server_ca.pem, Some(&new_id), alpn)).await, "{addr}: new CA refused");
    }
    // Authenticated before the swap, the open connection carries on.
    assert_eq!(open.get("/health").await.0, 200);
}

/// Reads until the server closes; `None` if it is still open after `wait`.
async fn read_until_closed(tcp: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    match tokio::time::timeout(wait, tcp.read_to_end(&mut got)).await {
        Ok(_) => Some(got),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_silent_clients_are_closed_and_the_collector_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("plaintext CA");
    let stack = tls_stack(dir.path(), &ca, None, |t| t.handshake_timeout = Duration::from_millis(500)).await;
    // OTLP/HTTP: a plaintext request gets a 400 that says why, then the connection is closed.
    let mut tcp = TcpStream::connect(stack.http_addr).await.unwrap();
    let request =
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 2\r\n\r\n{}";
    tcp.write_all(request).await.unwrap();
    let answer = read_until_closed(&mut tcp, Duration::from_secs(5)).await.expect("plaintext connection left open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 ") && answer.contains("https://"), "{answer}");
    let response = reqwest::get(format!("http://{}/health", stack.http_addr)).await.expect("plaintext /health");
    assert_eq!(response.status(), 400);
    assert_eq!(response.text().await.unwrap(), promptlog::tls::PLAINTEXT_ANSWER);
    // OTLP/gRPC: a plaintext HTTP/2 client is closed without an HTTP answer.
    let mut tcp = TcpStream::connect(stack.grpc_addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let answer =
        read_until_closed(&mut tcp, Duration::from_secs(5)).await.expect("plaintext gRPC connection left open");
    assert!(answer.first().is_none_or(|b| *b == 0x15), "gRPC port answered plaintext with {answer:02x?}");
    // A client that never sends a ClientHello is closed after the handshake timeout.
    let mut silent = TcpStream::connect(stack.http_addr).await.unwrap();
    let started = Instant::now();
    read_until_closed(&mut silent, Duration::from_secs(5)).await.expect("silent connection left open");
    assert!(started.elapsed() >= Duration::from_millis(400), "closed before the timeout");
    // Still serving TLS, on both ports; the failures were counted.
    let config = client_config(&ca.pem, None, HTTP1);
    assert_eq!(KeptAlive::open(stack.http_addr, config.clone()).await.get("/health").await.0, 200);
    assert!(!refused(stack.grpc_addr, client_config(&ca.pem, None, H2)).await);
    assert!(metric(stack.http_addr, config.clone(), "promptlog_tls_handshake_failures_total").await >= 3);
    assert!(metric(stack.http_addr, config, "promptlog_tls_handshake_timeouts_total").await >= 1);
}

/// A TLS 1.1 ClientHello (no `supported_versions` extension), as an old client sends it.
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend([7u8; 32]); // random
    hello.push(0); // no session id
    hello.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    hello.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0, (hello.len() >> 8) as u8, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, (handshake.len() >> 8) as u8, handshake.len() as u8];
    record.extend(handshake);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_is_the_minimum_and_1_3_is_preferred() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("versions CA");
    let stack = tls_stack(dir.path(), &ca, None, |_| {}).await;
    for addr in [stack.http_addr, stack.grpc_addr] {
        let tls = connect(addr, client_config(&ca.pem, None, H2)).await.unwrap();
        assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
        let tls = connect(addr, tls12_only(&ca.pem)).await.expect("a TLS 1.2 client is served");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&tls11_client_hello()).await.unwrap();
        let answer = read_until_closed(&mut tcp, Duration::from_secs(5)).await.expect("TLS 1.1 client left open");
        // At most an alert record (0x15), never a ServerHello (a handshake record, 0x16).
        assert!(answer.first().is_none_or(|b| *b == 0x15), "TLS 1.1 answered with {answer:02x?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_over_https_needs_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("private ClickHouse CA");
    let (cert, key) = ca.server("chdb").write(dir.path(), "chdb");
    let ca_file = write(dir.path(), "ch-ca.pem", &ca.pem);
    let server = TlsChServer::start(&cert, &key);
    assert!(server.url.starts_with("https://"), "{}", server.url);

    // Without the CA: a clear error naming the certificate problem and the key that fixes it.
    let mut untrusted = Config::default().clickhouse;
    untrusted.url = server.url.clone();
    let err = schema::migrate(&Store::new(&untrusted)).await.expect_err("untrusted server accepted").to_string();
    assert!(err.contains("invalid peer certificate") && err.contains("clickhouse.ca_file"), "{err}");

    // With it: migrations, then a span through the collector into the table.
    let stack = Stack::start_with(|c| {
        c.clickhouse.url = server.url.clone();
        c.clickhouse.ca_file = Some(ca_file.clone());
    })
    .await;
    stack.config.validate().expect("https + ca_file validates");
    let attrs = vec![
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.provider.name", "openai"),
        kv("gen_ai.request.model", "gpt-4o-mini"),
        kv_i64("gen_ai.usage.input_tokens", 3),
    ];
    let body = traces_request(resource("ch-over-tls", "test"), vec![span("chat gpt-4o-mini", now_ns(), 5, attrs)]);
    let (status, _, answer) =
        stack.post_otlp("/v1/traces", "application/x-protobuf", body.encode_to_vec(), false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let deadline = Instant::now() + ROWS_WAIT;
    loop {
        let count = https
            .post(&server.url)
            .query(&[("database", stack.config.clickhouse.database.as_str())])
            .body("SELECT count() FROM llm_calls WHERE ServiceName = 'ch-over-tls'")
            .send()
            .await
            .expect("https query")
            .text()
            .await
            .unwrap();
        if count.trim() == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "no row in ClickHouse over https (count {count:?})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
