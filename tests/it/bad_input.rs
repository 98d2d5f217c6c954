//! Bad input over OTLP/HTTP (raw reqwest) and OTLP/gRPC (tonic clients): each gets the status the OTLP
//! spec asks for and a message that says what is wrong; the valid parts of a request are stored; and
//! the collector keeps serving afterwards.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use promptlog_otlp::{kv, kv_i64, logs_request, now_ns, resource, span, traces_request};
use promptlog_testkit::{LOGS_EXPORT, RpcStatus, TRACES_EXPORT, cell, grpc_raw};
use prost::Message;
use tonic::Code;

use crate::support::sdk::{self, Enc, HttpReply, post};
use crate::support::stack::Stack;

const JOIN_WINDOW: Duration = Duration::from_secs(2);
const SERVICE: &str = "bad-input";
const MIB: usize = 1024 * 1024;

async fn stack() -> Stack {
    Stack::start_with(|cfg| cfg.pipeline.join_window = JOIN_WINDOW).await
}

/// An embeddings span: an LLM call that never waits for content, so it lands in `llm_calls` at once.
fn llm_span(name: &str) -> Span {
    span(
        name,
        now_ns() - 5_000_000_000,
        40,
        vec![
            kv("gen_ai.operation.name", "embeddings"),
            kv("gen_ai.provider.name", "openai"),
            kv("gen_ai.request.model", "text-embedding-3-small"),
            kv_i64("gen_ai.usage.input_tokens", 7),
        ],
    )
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    traces_request(resource(SERVICE, "test"), spans)
}

fn logs(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    logs_request(resource(SERVICE, "test"), records)
}

fn log_for(span: &Span, event: &str) -> LogRecord {
    promptlog_otlp::span_log(span, event, vec![kv("k", "v")], None)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn hex(bytes: &[u8]) -> String {
    const_hex::encode(bytes)
}

/// Asserts an OTLP/HTTP error: the status, a `google.rpc.Status` body in `enc` whose message contains
/// every one of `needles`.
fn assert_http_error(what: &str, reply: &HttpReply, status: u16, enc: Enc, needles: &[&str]) {
    assert_eq!(reply.status, status, "{what}: status (body {:?})", reply.text());
    assert_eq!(reply.content_type, enc.content_type(), "{what}: the error is in the request's encoding");
    let st: RpcStatus = match enc {
        Enc::Proto => RpcStatus::decode(reply.body.as_slice())
            .unwrap_or_else(|e| panic!("{what}: body is not a protobuf google.rpc.Status ({e}): {:?}", reply.body)),
        Enc::Json => serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("{what}: body is not a JSON google.rpc.Status ({e}): {}", reply.text())),
    };
    for needle in needles {
        assert!(st.message.contains(needle), "{what}: message {:?} should mention {needle:?}", st.message);
    }
}

/// The collector still answers `/health` with `{"status": "ok"}`.
async fn assert_healthy(stack: &Stack, after: &str) {
    let resp = reqwest::get(format!("{}/health", stack.otlp_http_url()))
        .await
        .unwrap_or_else(|e| panic!("collector unreachable after {after}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "/health after {after}");
    let body: serde_json::Value = resp.json().await.expect("/health answers JSON");
    assert_eq!(body["status"], "ok", "/health after {after}: {body}");
}

/// Sends one valid span over HTTP protobuf, HTTP JSON and gRPC and waits until all three are stored.
async fn assert_still_serving(stack: &Stack) {
    let spans: Vec<Span> = ["final-proto", "final-json", "final-grpc"].map(llm_span).into();
    for (s, enc) in spans.iter().zip([Some(Enc::Proto), Some(Enc::Json), None]) {
        let req = traces(vec![s.clone()]);
        let resp = match enc {
            Some(enc) => sdk::http_traces(&stack.otlp_http_url(), enc, &req).await,
            None => sdk::grpc_traces(&stack.otlp_grpc_url(), req).await.expect("valid gRPC export"),
        };
        assert_no_partial(&resp, "final valid request");
    }
    let ids = spans.iter().map(|s| format!("'{}'", hex(&s.span_id))).collect::<Vec<_>>().join(",");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = stack.query_json(&format!("SELECT count() AS n FROM otel_traces WHERE SpanId IN ({ids})")).await;
        let n = cell::<u64>(&rows[0], "n");
        if n == 3 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the final valid spans were not stored ({n} of 3)");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_no_partial(resp: &ExportTraceServiceResponse, what: &str) {
    assert!(
        resp.partial_success.as_ref().is_none_or(|p| p.rejected_spans == 0 && p.error_message.is_empty()),
        "{what}: unexpected partial success {:?}",
        resp.partial_success
    );
}

fn assert_no_partial_logs(resp: &ExportLogsServiceResponse, what: &str) {
    assert!(
        resp.partial_success.as_ref().is_none_or(|p| p.rejected_log_records == 0 && p.error_message.is_empty()),
        "{what}: unexpected partial success {:?}",
        resp.partial_success
    );
}

/// The HTTP and gRPC transports for requests that decode.
#[derive(Debug, Clone, Copy)]
enum Via {
    Http(Enc),
    Grpc,
}

const VIAS: [Via; 3] = [Via::Http(Enc::Proto), Via::Http(Enc::Json), Via::Grpc];

async fn send_traces(stack: &Stack, via: Via, req: ExportTraceServiceRequest) -> ExportTraceServiceResponse {
    match via {
        Via::Http(enc) => sdk::http_traces(&stack.otlp_http_url(), enc, &req).await,
        Via::Grpc => sdk::grpc_traces(&stack.otlp_grpc_url(), req).await.expect("gRPC export accepted"),
    }
}

async fn send_logs(stack: &Stack, via: Via, req: ExportLogsServiceRequest) -> ExportLogsServiceResponse {
    match via {
        Via::Http(enc) => sdk::http_logs(&stack.otlp_http_url(), enc, &req).await,
        Via::Grpc => sdk::grpc_logs(&stack.otlp_grpc_url(), req).await.expect("gRPC export accepted"),
    }
}

/// SpanIds present in `table` among `ids`.
async fn stored_span_ids(stack: &Stack, table: &str, ids: &[String]) -> Vec<String> {
    let list = ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(",");
    let mut got: Vec<String> = stack
        .query_json(&format!("SELECT SpanId FROM {table} WHERE SpanId IN ({list})"))
        .await
        .iter()
        .map(|r| cell::<String>(r, "SpanId"))
        .collect();
    got.sort();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_undecodable_and_unsupported_requests_get_4xx_with_a_status() {
    let stack = stack().await;
    let base = stack.otlp_http_url();
    let valid = traces(vec![llm_span("never-sent")]).encode_to_vec();
    let truncated = valid[..valid.len() - 1].to_vec();
    assert!(ExportTraceServiceRequest::decode(truncated.as_slice()).is_err(), "test premise: truncation breaks it");
    let valid_logs = logs(vec![log_for(&llm_span("x"), "e")]).encode_to_vec();
    let truncated_logs = valid_logs[..valid_logs.len() - 1].to_vec();
    assert!(ExportLogsServiceRequest::decode(truncated_logs.as_slice()).is_err(), "test premise");

    let proto = [("content-type", "application/x-protobuf")];
    let json = [("content-type", "application/json")];
    /// (name, path, headers, body, expected status, response encoding, message needles)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, Enc, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        ("truncated protobuf traces", "/v1/traces", proto.to_vec(), truncated.clone(), 400, Enc::Proto, vec!["cannot decode traces"]),
        ("truncated protobuf logs", "/v1/logs", proto.to_vec(), truncated_logs, 400, Enc::Proto, vec!["cannot decode logs"]),
        ("garbage protobuf", "/v1/traces", proto.to_vec(), vec![0xff; 64], 400, Enc::Proto, vec!["cannot decode traces"]),
        ("invalid JSON traces", "/v1/traces", json.to_vec(), b"{\"resourceSpans\": [".to_vec(), 400, Enc::Json, vec!["cannot decode traces"]),
        ("invalid JSON logs", "/v1/logs", json.to_vec(), b"not json at all".to_vec(), 400, Enc::Json, vec!["cannot decode logs"]),
        (
            "JSON of the wrong shape",
            "/v1/traces",
            json.to_vec(),
            br#"{"resourceSpans": "nope"}"#.to_vec(),
            400,
            Enc::Json,
            vec!["cannot decode traces"],
        ),
        (
            "JSON with a non-hex trace id",
            "/v1/traces",
            json.to_vec(),
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708","name":"x","startTimeUnixNano":"1"}]}]}]}"#.to_vec(),
            400,
            Enc::Json,
            vec!["cannot decode traces"],
        ),
        (
            "protobuf labelled JSON",
            "/v1/traces",
            json.to_vec(),
            valid.clone(),
            400,
            Enc::Json,
            vec!["cannot decode traces"],
        ),
        ("wrong content type", "/v1/traces", vec![("content-type", "text/plain")], valid.clone(), 415, Enc::Proto, vec!["unsupported content type", "text/plain"]),
        ("no content type", "/v1/logs", vec![], valid_logs.clone(), 415, Enc::Proto, vec!["unsupported content type"]),
        (
            "unsupported content encoding",
            "/v1/traces",
            vec![("content-type", "application/json"), ("content-encoding", "br")],
            b"{}".to_vec(),
            415,
            Enc::Json,
            vec!["unsupported content encoding", "br"],
        ),
        (
            "gzip header on a plain body",
            "/v1/traces",
            vec![("content-type", "application/x-protobuf"), ("content-encoding", "gzip")],
            valid.clone(),
            400,
            Enc::Proto,
            vec!["cannot decode gzip body"],
        ),
        (
            "gzip of a truncated body",
            "/v1/traces",
            vec![("content-type", "application/x-protobuf"), ("content-encoding", "gzip")],
            gzip(&truncated),
            400,
            Enc::Proto,
            vec!["cannot decode traces"],
        ),
    ];
    for (what, path, headers, body, status, enc, needles) in cases {
        let reply = post(&base, path, &headers, body).await;
        assert_http_error(what, &reply, status, enc, &needles);
        assert_healthy(&stack, what).await;
    }

    let client = reqwest::Client::new();
    let get = client.get(format!("{base}/v1/traces")).send().await.expect("GET /v1/traces");
    assert_eq!(get.status().as_u16(), 405, "GET on an export path");
    assert_healthy(&stack, "GET /v1/traces").await;
    let unknown = post(&base, "/v1/nope", &proto, valid.clone()).await;
    assert_eq!(unknown.status, 404, "unknown path");
    let unknown_get = client.get(format!("{base}/definitely/not/here")).send().await.expect("GET unknown");
    assert_eq!(unknown_get.status().as_u16(), 404, "unknown GET path");
    let health = client.get(format!("{base}/health")).send().await.expect("GET /health");
    assert_eq!(health.status().as_u16(), 200);
    assert!(health.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "/health is JSON");
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok", "/health: {body}");

    // Nothing from the refused requests was stored; a valid request still goes through.
    assert_still_serving(&stack).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.count("otel_traces").await, 3, "only the final valid spans are stored");
    assert_eq!(stack.count("otel_logs").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_undecodable_requests_are_invalid_argument() {
    let stack = stack().await;
    let url = stack.otlp_grpc_url();
    let valid = traces(vec![llm_span("never-sent")]).encode_to_vec();
    let truncated = valid[..valid.len() - 1].to_vec();
    assert!(ExportTraceServiceRequest::decode(truncated.as_slice()).is_err(), "test premise");
    let cases: Vec<(&str, &'static str, Vec<u8>, bool)> = vec![
        ("truncated protobuf traces", TRACES_EXPORT, truncated.clone(), false),
        ("truncated protobuf traces, gzip", TRACES_EXPORT, truncated, true),
        ("garbage protobuf logs", LOGS_EXPORT, vec![0xff; 64], false),
    ];
    for (what, method, body, gz) in cases {
        let err = grpc_raw(&url, method, body, gz).await.expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert!(!err.message().is_empty(), "{what}: the status says what is wrong");
        assert_healthy(&stack, what).await;
    }
    // The raw client works when given a valid body (so the failures above are about the bodies).
    let ok = grpc_raw(&url, TRACES_EXPORT, Vec::new(), false).await;
    let ok = ok.expect("an empty request is valid");
    assert!(ExportTraceServiceResponse::decode(ok.as_slice()).is_ok());
    assert_still_serving(&stack).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.count("otel_traces").await, 3, "only the final valid spans are stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_records_are_rejected_and_valid_ones_kept() {
    let stack = stack().await;
    let mut valid_ids = Vec::new();
    let mut invalid_ids = Vec::new();
    let mut valid_logs = 0;

    for via in VIAS {
        // One valid span and one ending before it starts.
        let good = llm_span(&format!("ok end-before-start {via:?}"));
        let mut bad = llm_span("chat ends-before-it-starts");
        bad.end_time_unix_nano = bad.start_time_unix_nano - 1;
        let (good_id, bad_id) = (hex(&good.span_id), hex(&bad.span_id));
        let resp = send_traces(&stack, via, traces(vec![good, bad])).await;
        let p = resp.partial_success.unwrap_or_else(|| panic!("{via:?}: partial_success missing"));
        assert_eq!(p.rejected_spans, 1, "{via:?}: {p:?}");
        for needle in ["chat ends-before-it-starts", &bad_id, "end_time_unix_nano", "before start_time_unix_nano"] {
            assert!(p.error_message.contains(needle), "{via:?}: {:?} should mention {needle:?}", p.error_message);
        }
        valid_ids.push(good_id);
        invalid_ids.push(bad_id);

        // Bad ids: every one named in the message.
        let good = llm_span(&format!("ok ids {via:?}"));
        let mut bads = Vec::new();
        type Mutation = fn(&mut Span);
        let mutations: [(Mutation, &str); 5] = [
            (|s| s.trace_id.truncate(15), "trace_id must be 16 non-zero bytes, got 15 bytes"),
            (|s| s.trace_id = vec![0; 16], "trace_id must be 16 non-zero bytes, got 16 bytes"),
            (|s| s.span_id.push(9), "span_id must be 8 non-zero bytes, got 9 bytes"),
            (|s| s.span_id = vec![0; 8], "span_id must be 8 non-zero bytes, got 8 bytes"),
            (|s| s.parent_span_id = vec![1, 2, 3], "parent_span_id must be empty or 8 bytes, got 3 bytes"),
        ];
        for (mutate, _) in &mutations {
            let mut s = llm_span("bad ids");
            mutate(&mut s);
            if s.span_id.len() == 8 && s.span_id.iter().any(|b| *b != 0) {
                invalid_ids.push(hex(&s.span_id));
            }
            bads.push(s);
        }
        valid_ids.push(hex(&good.span_id));
        let resp = send_traces(&stack, via, traces([vec![good], bads].concat())).await;
        let p = resp.partial_success.unwrap_or_else(|| panic!("{via:?}: partial_success missing"));
        assert_eq!(p.rejected_spans, mutations.len() as i64, "{via:?}: {p:?}");
        for (_, needle) in &mutations {
            assert!(p.error_message.contains(needle), "{via:?}: {:?} should mention {needle:?}", p.error_message);
        }

        // Start 0, and times beyond what DateTime64(9) holds.
        let good = llm_span(&format!("ok times {via:?}"));
        let mut zero = llm_span("start zero");
        zero.start_time_unix_nano = 0;
        let mut max_start = llm_span("start max");
        max_start.start_time_unix_nano = u64::MAX;
        max_start.end_time_unix_nano = u64::MAX;
        let mut max_end = llm_span("end max");
        max_end.end_time_unix_nano = u64::MAX;
        invalid_ids.extend([&zero, &max_start, &max_end].map(|s| hex(&s.span_id)));
        valid_ids.push(hex(&good.span_id));
        let resp = send_traces(&stack, via, traces(vec![good, zero, max_start, max_end])).await;
        let p = resp.partial_success.unwrap_or_else(|| panic!("{via:?}: partial_success missing"));
        assert_eq!(p.rejected_spans, 3, "{via:?}: {p:?}");
        for needle in [
            "start_time_unix_nano is 0",
            "start_time_unix_nano = 18446744073709551615 is out of range",
            "end_time_unix_nano = 18446744073709551615 is out of range",
        ] {
            assert!(p.error_message.contains(needle), "{via:?}: {:?} should mention {needle:?}", p.error_message);
        }

        // Log records: bad id lengths and an impossible time are rejected; the valid one is kept.
        let owner = llm_span("log owner");
        let good_log = log_for(&owner, "app.valid");
        let mut short_trace = log_for(&owner, "app.bad");
        short_trace.trace_id.truncate(5);
        let mut long_span = log_for(&owner, "app.bad");
        long_span.span_id = vec![7; 3];
        let mut max_time = log_for(&owner, "app.bad");
        max_time.time_unix_nano = u64::MAX;
        let resp = send_logs(&stack, via, logs(vec![good_log, short_trace, long_span, max_time])).await;
        let p = resp.partial_success.unwrap_or_else(|| panic!("{via:?}: logs partial_success missing"));
        assert_eq!(p.rejected_log_records, 3, "{via:?}: {p:?}");
        for needle in [
            "trace_id must be 16 non-zero bytes, got 5 bytes",
            "span_id must be 8 non-zero bytes, got 3 bytes",
            "time_unix_nano = 18446744073709551615 is out of range",
        ] {
            assert!(p.error_message.contains(needle), "{via:?}: {:?} should mention {needle:?}", p.error_message);
        }
        valid_logs += 1;
        assert_healthy(&stack, &format!("invalid records over {via:?}")).await;
    }

    let n = valid_ids.len() as u64;
    stack.wait_for_count("otel_traces", n).await;
    stack.wait_for_count("llm_calls", n).await;
    stack.wait_for_count("otel_logs", valid_logs).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut want = valid_ids.clone();
    want.sort();
    assert_eq!(stored_span_ids(&stack, "otel_traces", &valid_ids).await, want, "valid spans in otel_traces");
    assert_eq!(stored_span_ids(&stack, "llm_calls", &valid_ids).await, want, "valid spans in llm_calls");
    assert_eq!(
        stored_span_ids(&stack, "otel_traces", &invalid_ids).await,
        Vec::<String>::new(),
        "no rejected span stored"
    );
    assert_eq!(stack.count("otel_traces").await, n, "nothing else in otel_traces");
    assert_eq!(stack.count("llm_calls").await, n, "nothing else in llm_calls");
    let events = stack.query_json("SELECT EventName FROM otel_logs").await;
    assert_eq!(events.len() as u64, valid_logs);
    assert!(events.iter().all(|r| cell::<&str>(r, "EventName") == "app.valid"), "only valid log records: {events:?}");
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_values_are_truncated_with_a_marker_and_reported() {
    let stack = Stack::start_with(|cfg| {
        cfg.pipeline.join_window = JOIN_WINDOW;
        cfg.receivers.max_attribute_value_bytes = MIB;
    })
    .await;
    let huge = "x".repeat(3 * MIB);
    let mut ids = Vec::new();
    for via in VIAS {
        let mut s = llm_span(&format!("long attribute {via:?}"));
        s.attributes.push(kv("app.blob", huge.clone()));
        ids.push(hex(&s.span_id));
        let mut record = log_for(&s, "app.long_body");
        record.body = Some(opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(huge.clone())),
        });
        let resp = send_traces(&stack, via, traces(vec![s])).await;
        let p = resp.partial_success.unwrap_or_else(|| panic!("{via:?}: truncation must be reported"));
        assert_eq!(p.rejected_spans, 0, "{via:?}: truncated spans are still stored: {p:?}");
        for needle in ["truncated", &MIB.to_string()] {
            assert!(p.error_message.contains(needle), "{via:?}: {:?} should mention {needle:?}", p.error_message);
        }
        let resp = send_logs(&stack, via, logs(vec![record])).await;
        let p = resp.partial_success.unwrap_or_else(|| panic!("{via:?}: log body truncation must be reported"));
        assert_eq!(p.rejected_log_records, 0, "{via:?}: {p:?}");
        assert!(p.error_message.contains("truncated"), "{via:?}: {:?}", p.error_message);
    }
    stack.wait_for_count("otel_traces", 3).await;
    stack.wait_for_count("llm_calls", 3).await;
    stack.wait_for_count("otel_logs", 3).await;

    let marker = format!("…[truncated {} bytes]", 2 * MIB);
    // repeat() is capped at 10^6 repetitions, hence four characters at a time.
    let want = format!("concat(repeat('xxxx', {}), '{marker}')", MIB / 4);
    for table in ["otel_traces", "llm_calls"] {
        let rows = stack
            .query_json(&format!(
                "SELECT SpanId, length(SpanAttributes['app.blob']) AS len, SpanAttributes['app.blob'] = {want} AS exact \
                 FROM {table}"
            ))
            .await;
        assert_eq!(rows.len(), 3, "{table}: {rows:?}");
        for row in &rows {
            assert!(ids.contains(&cell::<String>(row, "SpanId")));
            assert_eq!(cell::<u64>(row, "len"), (MIB + marker.len()) as u64, "{table}: truncated length");
            assert_eq!(cell::<u64>(row, "exact"), 1, "{table}: value is the first 1 MiB plus the marker");
        }
    }
    let rows = stack.query_json(&format!("SELECT length(Body) AS len, Body = {want} AS exact FROM otel_logs")).await;
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(cell::<u64>(row, "len"), (MIB + marker.len()) as u64, "otel_logs.Body truncated length");
        assert_eq!(cell::<u64>(row, "exact"), 1, "otel_logs.Body is the first 1 MiB plus the marker");
    }
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_cap_are_refused() {
    const CAP: usize = 64 * 1024;
    let stack = Stack::start_with(|cfg| {
        cfg.pipeline.join_window = JOIN_WINDOW;
        cfg.receivers.max_request_bytes = CAP;
    })
    .await;
    let base = stack.otlp_http_url();
    let big = |name: &str, n: usize| {
        let mut s = llm_span(name);
        s.attributes.push(kv("app.blob", "a".repeat(n)));
        traces(vec![s])
    };
    let plain = big("plain", 100 * 1024);
    let bomb = big("bomb", 8 * MIB);
    let bomb_gz = gzip(&bomb.encode_to_vec());
    assert!(bomb_gz.len() < CAP / 4, "test premise: the bomb is small compressed ({} bytes)", bomb_gz.len());
    let big_logs = {
        let mut r = log_for(&llm_span("x"), "app.big");
        r.attributes.push(kv("app.blob", "a".repeat(100 * 1024)));
        logs(vec![r])
    };
    let needle = format!("exceeds the limit of {CAP} bytes");
    /// (name, path, headers, body, response encoding)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>, Enc);
    let cases: Vec<Case> = vec![
        (
            "plain protobuf",
            "/v1/traces",
            vec![("content-type", "application/x-protobuf")],
            plain.encode_to_vec(),
            Enc::Proto,
        ),
        ("plain JSON", "/v1/traces", vec![("content-type", "application/json")], Enc::Json.encode(&plain), Enc::Json),
        (
            "plain protobuf logs",
            "/v1/logs",
            vec![("content-type", "application/x-protobuf")],
            big_logs.encode_to_vec(),
            Enc::Proto,
        ),
        (
            "gzip bomb",
            "/v1/traces",
            vec![("content-type", "application/x-protobuf"), ("content-encoding", "gzip")],
            bomb_gz.clone(),
            Enc::Proto,
        ),
        (
            "gzip bomb, JSON",
            "/v1/traces",
            vec![("content-type", "application/json"), ("content-encoding", "gzip")],
            gzip(&Enc::Json.encode(&bomb)),
            Enc::Json,
        ),
    ];
    for (what, path, headers, body, enc) in cases {
        let reply = post(&base, path, &headers, body).await;
        assert_http_error(what, &reply, 413, enc, &[&needle]);
        assert_healthy(&stack, what).await;
    }

    let url = stack.otlp_grpc_url();
    let err = sdk::grpc_traces(&url, plain.clone()).await.expect_err("oversized gRPC request");
    assert_eq!(err.code(), Code::ResourceExhausted, "oversized gRPC request (OTLP: non-retryable): {err:?}");
    assert_healthy(&stack, "oversized gRPC request").await;
    let mut client = TraceServiceClient::connect(url.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let err = client.export(bomb.clone()).await.expect_err("gzip bomb over gRPC");
    assert_eq!(err.code(), Code::ResourceExhausted, "gzip bomb over gRPC: {err:?}");
    assert_healthy(&stack, "gRPC gzip bomb").await;
    // Just under the cap is fine, compressed or not.
    let small = big("small", 1024);
    let resp = client.export(small).await.expect("small gzip gRPC request").into_inner();
    assert_no_partial(&resp, "small gzip gRPC request");

    assert_still_serving(&stack).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.count("otel_traces").await, 4, "only the small and final spans are stored");
    assert_eq!(stack.count("otel_logs").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_requests_succeed_and_store_nothing() {
    let stack = stack().await;
    let base = stack.otlp_http_url();
    for (path, ct, body) in [
        ("/v1/traces", "application/x-protobuf", Vec::new()),
        ("/v1/logs", "application/x-protobuf", Vec::new()),
        ("/v1/traces", "application/json", b"{}".to_vec()),
        ("/v1/logs", "application/json", br#"{"resourceLogs": []}"#.to_vec()),
        ("/v1/traces", "application/json", br#"{"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}"#.to_vec()),
    ] {
        let reply = post(&base, path, &[("content-type", ct)], body).await;
        assert_eq!(reply.status, 200, "empty {path} {ct}: {}", reply.text());
        assert_eq!(reply.content_type, ct, "empty {path}: answered in the request's encoding");
        let enc = if ct == "application/json" { Enc::Json } else { Enc::Proto };
        if path == "/v1/traces" {
            assert_no_partial(&enc.decode(&reply.body), "empty traces");
        } else {
            assert_no_partial_logs(&enc.decode(&reply.body), "empty logs");
        }
    }
    let resp = sdk::grpc_traces(&stack.otlp_grpc_url(), ExportTraceServiceRequest::default()).await.unwrap();
    assert_no_partial(&resp, "empty gRPC traces");
    let resp = sdk::grpc_logs(&stack.otlp_grpc_url(), ExportLogsServiceRequest::default()).await.unwrap();
    assert_no_partial_logs(&resp, "empty gRPC logs");
    // A resource with no spans at all is empty too.
    let resp = sdk::grpc_traces(&stack.otlp_grpc_url(), traces(vec![])).await.unwrap();
    assert_no_partial(&resp, "resource without spans");

    // Requests are processed in order, so once the marker is stored anything earlier would be too.
    assert_still_serving(&stack).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.count("otel_traces").await, 3, "only the final valid spans are stored");
    assert_eq!(stack.count("otel_logs").await, 0, "no log rows from empty requests");
    // Calls are held for the join window before they are written.
    stack.wait_for_count("llm_calls", 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.count("llm_calls").await, 3, "only the final valid calls are stored");
}
