//! TLS and API keys together, as an organisation runs the collector: real Python OTel exporters
//! (gRPC and HTTP/protobuf) configured only through `OTEL_EXPORTER_OTLP_CERTIFICATE` (a CA made in
//! the test with rcgen) and `OTEL_EXPORTER_OTLP_HEADERS` (the key), plus endpoint, protocol and
//! service name. The good key's rows arrive with its `ProjectId`; no key, a wrong, an expired and a
//! read-only key are refused over TLS (counted by reason, so the refusal is the key's, not the
//! handshake's) and nothing of them is stored.
//!
//! Needs `.venv` (chDB server) and `.venvs/otel-latest` (`scripts/setup.sh`).

use std::time::Duration;

use futures::future::join_all;
use promptlog_testkit::cell;

use crate::support::keys::{self, BETA, BETA_EXPIRED, BETA_INGEST, BETA_READ_ONLY, WRONG};
use crate::support::stack::Stack;
use crate::support::tls::{Ca, client_config, metric, otel_env, python_export, serve_tls, write};

/// `OTEL_EXPORTER_OTLP_HEADERS` carrying `key` as a bearer token.
fn bearer(key: &str) -> String {
    format!("authorization=Bearer%20{key}")
}

/// `ServiceName` and `ProjectId` of every row of `table`, in service order.
async fn services_and_projects(stack: &Stack, table: &str) -> Vec<(String, String)> {
    let rows = stack.query_json(&format!("SELECT ServiceName, ProjectId FROM {table} ORDER BY ServiceName")).await;
    rows.iter().map(|r| (cell(r, "ServiceName"), cell(r, "ProjectId"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exporters_over_tls_with_keys_store_only_the_good_key_rows_under_its_project() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("promptlog secure CA");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let key_file = keys::write_key_file(dir.path());
    let stack = Stack::start_with(|c| {
        serve_tls(c, dir.path(), &ca, None);
        keys::require_keys(c, &key_file);
    })
    .await;
    let refused = [
        (None, "missing"),
        (Some(bearer(WRONG)), "unknown"),
        (Some(bearer(BETA_EXPIRED)), "expired"),
        (Some(bearer(BETA_READ_ONLY)), "scope"),
    ];
    for (protocol, addr) in [("grpc", stack.grpc_addr), ("http/protobuf", stack.http_addr)] {
        let p = protocol.replace('/', "-");
        let env = |service: String, headers: Option<&String>| {
            let mut env = otel_env(protocol, addr, &service, &ca_file);
            env.extend(headers.map(|h| ("OTEL_EXPORTER_OTLP_HEADERS", h.clone())));
            env
        };
        let (ok, out) = python_export(&env(format!("secure-{p}"), Some(&bearer(BETA_INGEST)))).await;
        assert!(ok, "{protocol} over TLS with a valid key failed:\n{out}");
        // The refused exporters at once: a refusal is final (not retried), so each returns quickly.
        let envs: Vec<_> =
            refused.iter().map(|(headers, why)| env(format!("refused-{why}-{p}"), headers.as_ref())).collect();
        for ((_, why), (ok, out)) in refused.iter().zip(join_all(envs.iter().map(|e| python_export(e))).await) {
            assert!(!ok, "{protocol} over TLS with key `{why}` was accepted:\n{out}");
        }
    }
    // Each refusal was the key's, made after the handshake: one per protocol and reason.
    let tls = client_config(&ca.pem, None, &[b"http/1.1"]);
    for (_, why) in &refused {
        let series = format!("promptlog_requests_refused_auth_total{{reason=\"{why}\"}}");
        assert_eq!(metric(stack.http_addr, tls.clone(), &series).await, 2, "{series}");
    }
    // The good key's rows, one per protocol, under its project; nothing else, even a while later.
    let good = ["secure-grpc", "secure-http-protobuf"].map(|s| (s.to_owned(), BETA.to_owned()));
    for table in ["otel_traces", "llm_calls"] {
        stack.wait_for_count(table, 2).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    for table in ["otel_traces", "llm_calls"] {
        assert_eq!(services_and_projects(&stack, table).await, good, "{table}");
        let received = format!("promptlog_rows_received_total{{table=\"{table}\"}}");
        assert_eq!(metric(stack.http_addr, tls.clone(), &received).await, 2, "{received}");
    }
    assert_eq!(stack.count("otel_logs").await, 0, "otel_logs");
}
