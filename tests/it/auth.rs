//! API keys end to end: real Python OTel exporters (gRPC and HTTP/protobuf), configured only through
//! the `OTEL_EXPORTER_OTLP_*` environment (the key in `OTEL_EXPORTER_OTLP_HEADERS`), against a collector
//! with a key file and `PROMPTLOG_API_KEYS` keys. Accepted rows carry the key's `ProjectId` whatever the
//! data claims; refused requests (no key, a wrong, an expired, a read-only key) store nothing, are
//! counted by reason in `/metrics`, and get `google.rpc.Status` bodies (HTTP) or UNAUTHENTICATED /
//! PERMISSION_DENIED (gRPC). A key added to the key file works without a restart.
//!
//! Needs `.venvs/otel-latest` (`scripts/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use promptlog::config::auth::parse_dev_keys;
use promptlog_otlp::{kv, now_ns, resource, span, traces_request};
use promptlog_testkit::{RpcStatus, cell, repo_root};
use prost::Message;
use serde_json::Value;
use tempfile::TempDir;

use crate::support::keys::{self, BETA_EXPIRED, BETA_INGEST, BETA_READ_ONLY, WRONG, entry, key_file_text};
use crate::support::sdk;
use crate::support::stack::Stack;

/// A key added to the key file during a test.
const BETA_NEW: &str = "pl_test_beta_new_0123456789abcdef";
/// A development key (`PROMPTLOG_API_KEYS`), every scope.
const ACME_DEV: &str = "pl_test_acme_dev";

/// The project the clients' data claims, which must never become a `ProjectId`.
const CLAIMED: &str = "claimed-by-client";

/// A collector requiring keys: the key file of [`keys`] (re-read every 100 ms) and `acme:` [`ACME_DEV`].
async fn keyed_stack() -> (Stack, TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = keys::write_key_file(dir.path());
    let stack = Stack::start_with(|c| {
        keys::require_keys(c, &file);
        c.auth.dev_keys = parse_dev_keys(&format!("acme:{ACME_DEV}")).unwrap();
    })
    .await;
    (stack, dir, file)
}

/// What the Python exporters reported for their trace and log exports.
#[derive(Debug)]
struct Reported {
    traces: Vec<String>,
    logs: Vec<String>,
}

/// Runs `tests/clients/auth_client.py` against `stack` over `protocol` (`grpc` or `http/protobuf`) with
/// `OTEL_EXPORTER_OTLP_HEADERS` = `headers` (none when `None`) and service name `service`.
async fn python_client(stack: &Stack, protocol: &str, headers: Option<&str>, service: &str) -> Reported {
    let python = repo_root().join(".venvs/otel-latest/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh", python.display());
    let endpoint = if protocol == "grpc" { stack.otlp_grpc_url() } else { stack.otlp_http_url() };
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(repo_root().join("tests/clients/auth_client.py"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_EXPORTER_OTLP_INSECURE", "true")
        .env("OTEL_SERVICE_NAME", service)
        .env("OTEL_RESOURCE_ATTRIBUTES", format!("promptlog.project_id={CLAIMED}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(h) = headers {
        cmd.env("OTEL_EXPORTER_OTLP_HEADERS", h);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("auth_client.py finished within 60 s")
        .expect("run auth_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "auth_client.py ({protocol}, {service}) failed: {}\n{stderr}", out.status);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no output from auth_client.py\n{stderr}"));
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}\n{stderr}"));
    let list = |k: &str| v[k].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    Reported { traces: list("traces"), logs: list("logs") }
}

/// The value of one sample of `/metrics`.
async fn metric(stack: &Stack, series: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", stack.otlp_http_url())).await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == series));
    line.and_then(|l| l.rsplit_once(' ')?.1.parse().ok()).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

async fn health(stack: &Stack) -> Value {
    reqwest::get(format!("{}/health", stack.otlp_http_url())).await.unwrap().json().await.unwrap()
}

/// Rows of `service` in each table, once there are at least `want` in each (or after 20 s).
async fn rows_of(stack: &Stack, service: &str, want: usize) -> [Vec<promptlog_testkit::Row>; 3] {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut got = Vec::new();
        for (table, attrs) in
            [("otel_traces", "SpanAttributes"), ("otel_logs", "LogAttributes"), ("llm_calls", "SpanAttributes")]
        {
            let sql = format!(
                "SELECT ProjectId, ResourceAttributes['promptlog.project_id'] AS ResClaim, \
                 {attrs}['promptlog.project_id'] AS Claim FROM {table} WHERE ServiceName = '{service}'"
            );
            got.push(stack.query_json(&sql).await);
        }
        if got.iter().all(|r| r.len() >= want) || Instant::now() > deadline {
            return got.try_into().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exporters_store_rows_under_the_key_project_only() {
    let (stack, _dir, _file) = keyed_stack().await;
    let runs = [
        ("grpc", format!("authorization=Bearer%20{BETA_INGEST}"), "beta"),
        ("http/protobuf", format!("authorization=Bearer%20{BETA_INGEST}"), "beta"),
        ("grpc", format!("x-api-key={ACME_DEV}"), "acme"),
        ("http/protobuf", format!("x-api-key={ACME_DEV}"), "acme"),
    ];
    for (i, (protocol, headers, project)) in runs.iter().enumerate() {
        let service = format!("auth-ok-{i}");
        let reported = python_client(&stack, protocol, Some(headers), &service).await;
        assert_eq!(
            (reported.traces.as_slice(), reported.logs.as_slice()),
            (&["SUCCESS".to_owned()][..], &["SUCCESS".to_owned()][..]),
            "{protocol} {headers}"
        );
        let tables = rows_of(&stack, &service, 1).await;
        for (table, rows) in ["otel_traces", "otel_logs", "llm_calls"].iter().zip(&tables) {
            assert_eq!(rows.len(), 1, "{table} of {service} ({protocol}): {rows:?}");
            let row = &rows[0];
            assert_eq!(cell::<String>(row, "ProjectId"), *project, "{table} ({protocol})");
            // The client's claim is kept as the ordinary attribute it is, and changed nothing.
            assert_eq!(cell::<String>(row, "ResClaim"), CLAIMED, "{table}");
            assert_eq!(cell::<String>(row, "Claim"), CLAIMED, "{table}");
        }
    }
    let h = health(&stack).await;
    assert_eq!((h["auth"].as_str(), h["api_keys"].as_u64()), (Some("on"), Some(4)), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exporters_without_a_valid_key_are_refused_counted_and_store_nothing() {
    let (stack, _dir, _file) = keyed_stack().await;
    let cases = [
        (None, "missing"),
        (Some(format!("authorization=Bearer%20{WRONG}")), "unknown"),
        (Some(format!("authorization=Bearer%20{BETA_EXPIRED}")), "expired"),
        (Some(format!("authorization=Bearer%20{BETA_READ_ONLY}")), "scope"),
    ];
    for protocol in ["grpc", "http/protobuf"] {
        for (i, (headers, reason)) in cases.iter().enumerate() {
            let reported = python_client(&stack, protocol, headers.as_deref(), &format!("auth-refused-{i}")).await;
            let failed = vec!["FAILURE".to_owned()];
            assert_eq!((&reported.traces, &reported.logs), (&failed, &failed), "{protocol}, {reason}: {reported:?}");
        }
    }
    // One trace and one log export per run, two protocols, none retried (not retryable codes).
    for (_, reason) in &cases {
        let series = format!("promptlog_requests_refused_auth_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&stack, &series).await, 4.0, "{series}");
    }
    // Nothing reached the pipeline: no row, nothing received, nothing spooled.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for table in ["otel_traces", "otel_logs", "llm_calls"] {
        assert_eq!(stack.count(table).await, 0, "{table}");
        assert_eq!(metric(&stack, &format!("promptlog_rows_received_total{{table=\"{table}\"}}")).await, 0.0);
    }
    assert_eq!(metric(&stack, "promptlog_spool_records").await, 0.0);
    assert_eq!(health(&stack).await["spool"]["replayed"].as_u64(), Some(0));
}

fn chat_request(service: &str) -> ExportTraceServiceRequest {
    let attrs = vec![kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", "m")];
    traces_request(resource(service, "test"), vec![span("chat m", now_ns(), 5, attrs)])
}

/// POSTs a trace request with `headers` in `enc`.
async fn post_traces(stack: &Stack, enc: sdk::Enc, headers: &[(&str, &str)]) -> sdk::HttpReply {
    let mut all = vec![("content-type", enc.content_type())];
    all.extend_from_slice(headers);
    sdk::post(&stack.otlp_http_url(), "/v1/traces", &all, enc.encode(&chat_request("auth-raw"))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refusals_are_rpc_status_in_the_request_encoding() {
    let (stack, _dir, _file) = keyed_stack().await;
    let bearer = |k: &str| format!("Bearer {k}");
    let (wrong, expired, read_only) = (bearer(WRONG), bearer(BETA_EXPIRED), bearer(BETA_READ_ONLY));
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, i32, &'a str);
    let cases: [Case; 5] = [
        (&[], 401, 16, "missing API key"),
        (&[("authorization", &wrong)], 401, 16, "unknown API key"),
        (&[("authorization", &expired)], 401, 16, "expired"),
        (&[("x-api-key", BETA_EXPIRED)], 401, 16, "expired"),
        (&[("authorization", &read_only)], 403, 7, "lacks the \"ingest\" scope"),
    ];
    for enc in [sdk::Enc::Proto, sdk::Enc::Json] {
        for (headers, status, code, says) in cases {
            let reply = post_traces(&stack, enc, headers).await;
            assert_eq!(reply.status, status, "{enc:?} {headers:?}: {}", reply.text());
            assert!(reply.content_type.starts_with(enc.content_type()), "{enc:?}: {}", reply.content_type);
            let rpc: RpcStatus = match enc {
                sdk::Enc::Proto => RpcStatus::decode(reply.body.as_slice()).expect("a google.rpc.Status"),
                sdk::Enc::Json => serde_json::from_slice(&reply.body).expect("a JSON google.rpc.Status"),
            };
            assert_eq!(rpc.code, code, "{enc:?} {headers:?}");
            assert!(rpc.message.contains(says), "{enc:?} {headers:?}: {}", rpc.message);
            for key in [WRONG, BETA_EXPIRED, BETA_READ_ONLY] {
                assert!(!rpc.message.contains(key), "the message echoes the key: {}", rpc.message);
            }
        }
    }
    // 401 says how to authenticate; the key id of an expired key is named, the key never.
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/metrics", stack.otlp_http_url()))
        .header("content-type", "application/x-protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401, "metrics need a key too");
    assert_eq!(reply.headers()["www-authenticate"], "Bearer");
    assert!(post_traces(&stack, sdk::Enc::Json, &[("authorization", &bearer(BETA_INGEST))]).await.status == 200);
    assert_eq!(stack.wait_for_count("otel_traces", 1).await, 1);
    // Health and metrics need no key.
    assert_eq!(health(&stack).await["auth"], "on");
    assert_eq!(metric(&stack, "promptlog_auth_enabled").await, 1.0);
}

async fn grpc_export(stack: &Stack, metadata: &[(&'static str, String)]) -> Result<(), tonic::Status> {
    let mut client = TraceServiceClient::connect(stack.otlp_grpc_url()).await.unwrap();
    let mut request = tonic::Request::new(chat_request("auth-grpc"));
    for (k, v) in metadata {
        request.metadata_mut().insert(*k, v.parse().unwrap());
    }
    client.export(request).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refusals_are_unauthenticated_and_permission_denied() {
    let (stack, _dir, _file) = keyed_stack().await;
    let bearer = |k: &str| format!("Bearer {k}");
    let cases = [
        (vec![], tonic::Code::Unauthenticated, "missing API key"),
        (vec![("authorization", bearer(WRONG))], tonic::Code::Unauthenticated, "unknown API key"),
        (vec![("authorization", bearer(BETA_EXPIRED))], tonic::Code::Unauthenticated, "expired"),
        (vec![("authorization", bearer(BETA_READ_ONLY))], tonic::Code::PermissionDenied, "lacks"),
        (vec![("authorization", "Basic YTpi".to_owned())], tonic::Code::Unauthenticated, "missing API key"),
    ];
    for (metadata, code, says) in cases {
        let status = grpc_export(&stack, &metadata).await.expect_err("refused");
        assert_eq!(status.code(), code, "{metadata:?}: {status:?}");
        assert!(status.message().contains(says), "{metadata:?}: {}", status.message());
    }
    grpc_export(&stack, &[("authorization", bearer(BETA_INGEST))]).await.unwrap();
    grpc_export(&stack, &[("x-api-key", ACME_DEV.to_owned())]).await.unwrap();
    stack.wait_for_count("otel_traces", 2).await;
    let projects = stack.query_json("SELECT ProjectId FROM otel_traces ORDER BY ProjectId").await;
    let projects: Vec<String> = projects.iter().map(|r| cell(r, "ProjectId")).collect();
    assert_eq!(projects, ["acme", "beta"]);
}

/// Waits until a request with `key` gets `status`.
async fn wait_for_status(stack: &Stack, key: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let auth = format!("Bearer {key}");
    loop {
        let got = post_traces(stack, sdk::Enc::Proto, &[("authorization", &auth)]).await.status;
        if got == status {
            return;
        }
        assert!(Instant::now() < deadline, "a request with {key} still gets {got}, not {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn replace_file(file: &Path, text: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_through_the_key_file_without_a_restart() {
    let (stack, _dir, file) = keyed_stack().await;
    wait_for_status(&stack, BETA_NEW, 401).await;
    // Overlap: the new key is added next to the old one; both work.
    replace_file(&file, &key_file_text(&entry("beta-2", BETA_NEW, "ingest", None)));
    wait_for_status(&stack, BETA_NEW, 200).await;
    wait_for_status(&stack, BETA_INGEST, 200).await;
    // Then the old one is removed.
    replace_file(&file, &format!("keys:\n{}", entry("beta-2", BETA_NEW, "ingest", None)));
    wait_for_status(&stack, BETA_INGEST, 401).await;
    wait_for_status(&stack, BETA_NEW, 200).await;
    // A broken edit keeps the last good keys, and is counted.
    replace_file(&file, "keys:\n  - id: half-written\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&stack, "promptlog_auth_key_reload_errors_total").await < 1.0 {
        assert!(Instant::now() < deadline, "the broken key file was not noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_status(&stack, BETA_NEW, 200).await;
    assert!(metric(&stack, "promptlog_auth_key_reloads_total").await >= 2.0);
}
