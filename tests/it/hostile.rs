//! Hostile input on both OTLP transports. Each case gets a clear answer (HTTP 400/413 with a
//! `google.rpc.Status` body; gRPC INVALID_ARGUMENT / RESOURCE_EXHAUSTED), the collector stays up and
//! keeps serving other clients, and the valid spans of a mixed request are stored.
//!
//! Timings are printed: `cargo test --test it hostile:: -- --nocapture`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use promptlog::receiver::http::conn::{self, Timeouts};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::support::hostile::*;
use crate::support::stack::Stack;

/// Upper bound the suite allows for answering a million-attribute span (debug build).
const MILLION_ATTRIBUTES_BUDGET: Duration = Duration::from_secs(30);

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_messages_are_invalid_argument() {
    let stack = Stack::start().await;
    let valid = traces(vec![valid_span("garbage")]).encode_to_vec();
    let cases: [(&str, Vec<u8>); 5] = [
        ("truncated to half", valid[..valid.len() / 2].to_vec()),
        ("truncated by one byte", valid[..valid.len() - 1].to_vec()),
        ("random bytes", pseudo_random_bytes(7, 4096)),
        ("varint longer than 10 bytes", [vec![0x08], vec![0xff; 11]].concat()),
        ("length past the end", vec![0x0a, 0x7f, 0x0a]),
    ];
    for (case, body) in cases {
        for path in ["/v1/traces", "/v1/logs"] {
            let reply = post(&stack, path, PROTOBUF, body.clone(), false).await;
            let message = reply.assert_error(400, Code::InvalidArgument);
            println!("[hostile] {case} {path}: HTTP {} ({message}) in {:?}", reply.status, reply.elapsed);
        }
        assert_code(case, grpc_raw(&stack, TRACES_EXPORT, body.clone(), false).await, Code::InvalidArgument);
        assert_code(case, grpc_raw(&stack, LOGS_EXPORT, body, false).await, Code::InvalidArgument);
    }
    for (case, body) in [
        ("truncated JSON", r#"{"resourceSpans":[{"scopeSpans":["#),
        ("not JSON", "hello"),
        ("wrong JSON shape", r#"{"resourceSpans":{"spans":1}}"#),
    ] {
        let reply = post(&stack, "/v1/traces", JSON, body.into(), false).await;
        let message = reply.assert_error(400, Code::InvalidArgument);
        println!("[hostile] {case}: HTTP {} ({message})", reply.status);
    }
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bombs_stop_at_the_request_cap() {
    let stack = Stack::start_with(|c| c.receivers.max_request_bytes = SMALL_LIMIT).await;
    // 256 gzip members of 1 MiB of zeros: ~260 KB on the wire, 256 MiB inflated.
    let bomb = gzip(&vec![0u8; 1 << 20]).repeat(256);
    let reply = post(&stack, "/v1/traces", PROTOBUF, bomb.clone(), true).await;
    let message = reply.assert_error(413, Code::ResourceExhausted);
    println!("[hostile] HTTP gzip bomb ({} bytes): {} ({message}) in {:?}", bomb.len(), reply.status, reply.elapsed);
    post(&stack, "/v1/logs", JSON, bomb, true).await.assert_error(413, Code::ResourceExhausted);

    // gRPC: tonic compresses a 4 MiB message to a few KB; the collector inflates only up to the cap.
    let padded =
        promptlog_otlp::span("bomb", promptlog_otlp::now_ns(), 5, vec![promptlog_otlp::kv("pad", "a".repeat(4 << 20))]);
    let started = Instant::now();
    let result = grpc_traces(&stack, traces(vec![padded]), true).await;
    println!("[hostile] gRPC gzip bomb answered in {:?}", started.elapsed());
    assert_code("gRPC gzip bomb", result, Code::ResourceExhausted);
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_resource_exhausted_not_retryable() {
    let stack = Stack::start_with(|c| c.receivers.max_request_bytes = SMALL_LIMIT).await;
    let padded = promptlog_otlp::span(
        "oversized",
        promptlog_otlp::now_ns(),
        5,
        vec![promptlog_otlp::kv("pad", "a".repeat(SMALL_LIMIT + 1024))],
    );
    let request = traces(vec![padded]);
    let reply = post(&stack, "/v1/traces", PROTOBUF, request.encode_to_vec(), false).await;
    reply.assert_error(413, Code::ResourceExhausted);
    let reply = post(&stack, "/v1/traces", JSON, serde_json::to_vec(&request).unwrap(), false).await;
    reply.assert_error(413, Code::ResourceExhausted);
    let reply = post(&stack, "/v1/logs", PROTOBUF, pseudo_random_bytes(3, 8 * SMALL_LIMIT), false).await;
    let message = reply.assert_error(413, Code::ResourceExhausted);
    println!("[hostile] HTTP 8 MiB body: {} ({message}) in {:?}", reply.status, reply.elapsed);

    // tonic's own answer would be OUT_OF_RANGE, which OTLP exporters retry forever.
    assert_code("gRPC oversized trace export", grpc_traces(&stack, request, false).await, Code::ResourceExhausted);
    let oversized = grpc_raw(&stack, LOGS_EXPORT, vec![0; SMALL_LIMIT + 1], false).await;
    assert_code("gRPC oversized logs export", oversized, Code::ResourceExhausted);
    assert_still_serving(&stack).await;
}

/// A trace request whose one span carries a `deep` attribute nested `depth` levels, as protobuf.
fn deep_request_pb(name: &str, depth: usize, nesting: Nesting) -> Vec<u8> {
    let deep = attribute_field(b"deep", &deep_any_value_pb(depth, nesting));
    traces_request_bytes(&[span_with(&valid_span(name), &deep)])
}

/// The same as OTLP/JSON.
fn deep_request_json(name: &str, depth: usize, nesting: Nesting) -> Vec<u8> {
    let mut request = serde_json::to_value(traces(vec![valid_span(name)])).unwrap();
    let placeholder = "\"@deep@\"";
    request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] =
        serde_json::json!([{"key": "deep", "value": "@deep@"}]);
    request.to_string().replace(placeholder, &deep_any_value_json(depth, nesting)).into_bytes()
}

/// The deepest nesting a transport accepts (binary search; acceptance is monotonic in depth).
async fn deepest_accepted(stack: &Stack, nesting: Nesting, json: bool) -> usize {
    let (mut ok, mut refused) = (0, 400);
    while refused - ok > 1 {
        let depth = (ok + refused) / 2;
        let reply = if json {
            post(stack, "/v1/traces", JSON, deep_request_json("probe", depth, nesting), false).await
        } else {
            post(stack, "/v1/traces", PROTOBUF, deep_request_pb("probe", depth, nesting), false).await
        };
        if reply.status == 200 { ok = depth } else { refused = depth }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_is_refused_cleanly_or_stored_bounded() {
    let stack = Stack::start().await;
    for nesting in [Nesting::Array, Nesting::Kvlist] {
        let body = deep_request_pb("deep", 10_000, nesting);
        let reply = post(&stack, "/v1/traces", PROTOBUF, body.clone(), false).await;
        let message = reply.assert_error(400, Code::InvalidArgument);
        println!(
            "[hostile] 10,000 levels of {nesting:?}, protobuf ({} bytes): {message} in {:?}",
            body.len(),
            reply.elapsed
        );
        assert_code("gRPC 10,000 levels", grpc_raw(&stack, TRACES_EXPORT, body, false).await, Code::InvalidArgument);
        let reply = post(&stack, "/v1/traces", JSON, deep_request_json("deep", 10_000, nesting), false).await;
        let message = reply.assert_error(400, Code::InvalidArgument);
        println!("[hostile] 10,000 levels of {nesting:?}, JSON: {message} in {:?}", reply.elapsed);

        let (pb, json) =
            (deepest_accepted(&stack, nesting, false).await, deepest_accepted(&stack, nesting, true).await);
        println!("[hostile] deepest accepted {nesting:?}: protobuf {pb} levels, JSON {json} levels");
        // prost allows 100 nested messages in all (the request envelope takes 5, each array level 2,
        // each kvlist level 3); serde_json 128 nested JSON values (3 and 4 per level).
        let (least_pb, least_json) = match nesting {
            Nesting::Array => (45, 35),
            Nesting::Kvlist => (30, 25),
        };
        assert!(pb >= least_pb && json >= least_json, "{nesting:?}: only {pb} (protobuf) / {json} (JSON) levels");
    }
    // Deeper than the normaliser's 32 levels: stored, cut off with a marker.
    let depth = 35;
    post(&stack, "/v1/traces", PROTOBUF, deep_request_pb("stored-deep", depth, Nesting::Array), false).await;
    let reply = post(&stack, "/v1/traces", JSON, deep_request_json("stored-deep", depth, Nesting::Array), false).await;
    assert_eq!(reply.rejected_spans(), 0);
    assert_eq!(stack.wait_for_count("otel_traces WHERE SpanName = 'stored-deep'", 2).await, 2);
    let rows =
        stack.query_json("SELECT SpanAttributes['deep'] AS v FROM otel_traces WHERE SpanName = 'stored-deep'").await;
    for row in rows {
        let value = row["v"].as_str().unwrap();
        assert!(value.contains('…') && !value.contains("leaf") && value.len() < 200, "{value}");
    }
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_invalid_argument() {
    let stack = Stack::start().await;
    let bad = [b'o', 0xff, 0xfe, b'k'];
    let cases = [
        ("span name", span_with(&valid_span("utf8"), &len_field(5, &bad))),
        ("attribute key", span_with(&valid_span("utf8"), &attribute_field(&bad, &len_field(1, b"v")))),
        ("attribute value", span_with(&valid_span("utf8"), &attribute_field(b"k", &len_field(1, &bad)))),
    ];
    for (case, span) in cases {
        // A valid span in the same message cannot be saved: protobuf decoding is all or nothing.
        let body = traces_request_bytes(&[valid_span("utf8-neighbour").encode_to_vec(), span]);
        let message =
            post(&stack, "/v1/traces", PROTOBUF, body.clone(), false).await.assert_error(400, Code::InvalidArgument);
        println!("[hostile] invalid UTF-8 in {case}: HTTP 400 ({message})");
        assert_code(case, grpc_raw(&stack, TRACES_EXPORT, body, false).await, Code::InvalidArgument);
    }
    let raw_json =
        [br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"o"#.as_slice(), &[0xff], br#""}]}]}]}"#].concat();
    post(&stack, "/v1/traces", JSON, raw_json, false).await.assert_error(400, Code::InvalidArgument);
    let surrogate = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\ud800"}]}]}]}"#;
    post(&stack, "/v1/traces", JSON, surrogate.into(), false).await.assert_error(400, Code::InvalidArgument);
    assert_eq!(stored_span_ids(&stack, "utf8-neighbour").await.len(), 0);
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_attributes_are_answered_in_bounded_time() {
    let stack = Stack::start().await;
    const COUNT: usize = 1_000_000;
    let attributes = many_attributes(COUNT);
    let http_body = traces_request_bytes(&[span_with(&valid_span("million-http"), &attributes)]);
    let reply = post(&stack, "/v1/traces", PROTOBUF, http_body.clone(), false).await;
    println!(
        "[hostile] {COUNT} attributes over HTTP ({} bytes): {} in {:?}",
        http_body.len(),
        reply.status,
        reply.elapsed
    );
    assert_eq!(reply.rejected_spans(), 0);
    assert!(reply.elapsed < MILLION_ATTRIBUTES_BUDGET, "answered after {:?}", reply.elapsed);

    let grpc_body = traces_request_bytes(&[span_with(&valid_span("million-grpc"), &attributes)]);
    let started = Instant::now();
    let result = grpc_raw(&stack, TRACES_EXPORT, grpc_body, false).await;
    println!("[hostile] {COUNT} attributes over gRPC: {:?} in {:?}", result.as_ref().err(), started.elapsed());
    result.expect("gRPC export of a million attributes");
    assert!(started.elapsed() < MILLION_ATTRIBUTES_BUDGET);

    let started = Instant::now();
    let query = "SELECT length(SpanAttributes) AS n FROM otel_traces WHERE SpanName LIKE 'million-%'";
    let stored = loop {
        let rows = stack.query_json(query).await;
        if rows.len() == 2 || started.elapsed() > Duration::from_secs(120) {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("[hostile] both million-attribute spans stored {:?} after the answers", started.elapsed());
    assert_eq!(stored.len(), 2, "million-attribute spans not stored within 120 s");
    for row in stored {
        // The span's own `case` attribute plus the million.
        assert_eq!(promptlog_testkit::cell::<u64>(&row, "n"), COUNT as u64 + 1);
    }
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_id_lengths_are_rejected_and_valid_spans_kept() {
    let stack = Stack::start().await;
    let bad_spans = || {
        [(15, 8, 0), (17, 8, 0), (0, 8, 0), (16, 7, 0), (16, 9, 0), (16, 0, 0), (16, 8, 3)].map(|(t, s, p)| {
            let mut span = valid_span("bad-id");
            (span.trace_id, span.span_id, span.parent_span_id) = (vec![0xab; t], vec![0xcd; s], vec![0xef; p]);
            span
        })
    };
    let mut kept = Vec::new();
    for transport in ["protobuf", "json", "grpc"] {
        let good = valid_span("good-id");
        kept.push(const_hex::encode(&good.span_id));
        let request = traces(bad_spans().into_iter().chain([good]).collect());
        let rejected = match transport {
            "protobuf" => post(&stack, "/v1/traces", PROTOBUF, request.encode_to_vec(), false).await.rejected_spans(),
            "json" => {
                post(&stack, "/v1/traces", JSON, serde_json::to_vec(&request).unwrap(), false).await.rejected_spans()
            }
            _ => grpc_traces(&stack, request, false).await.expect("gRPC partial success"),
        };
        assert_eq!(rejected, 7, "{transport}");
    }
    let not_hex = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708"}]}]}]}"#;
    post(&stack, "/v1/traces", JSON, not_hex.into(), false).await.assert_error(400, Code::InvalidArgument);

    stack.wait_for_count("otel_traces WHERE SpanName = 'good-id'", 3).await;
    kept.sort();
    assert_eq!(stored_span_ids(&stack, "good-id").await, kept);
    assert!(stored_span_ids(&stack, "bad-id").await.is_empty());
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_at_zero_and_u64_max_are_rejected_per_record() {
    let stack = Stack::start().await;
    let bad_spans = || {
        [(0, 5), (promptlog_otlp::now_ns(), u64::MAX), (u64::MAX, u64::MAX)].map(|(start, end)| {
            let mut span = valid_span("bad-time");
            (span.start_time_unix_nano, span.end_time_unix_nano) = (start, end);
            span
        })
    };
    for transport in ["protobuf", "json", "grpc"] {
        let request = traces(bad_spans().into_iter().chain([valid_span("good-time")]).collect());
        let rejected = match transport {
            "protobuf" => post(&stack, "/v1/traces", PROTOBUF, request.encode_to_vec(), false).await.rejected_spans(),
            "json" => {
                post(&stack, "/v1/traces", JSON, serde_json::to_vec(&request).unwrap(), false).await.rejected_spans()
            }
            _ => grpc_traces(&stack, request, false).await.expect("gRPC partial success"),
        };
        assert_eq!(rejected, 3, "{transport}");
    }
    // Logs: no time at all is allowed (the collector stamps it); a time past 2262 is not.
    let span = valid_span("log-times");
    let mut untimed = promptlog_otlp::span_log(&span, "untimed", vec![], None);
    (untimed.time_unix_nano, untimed.observed_time_unix_nano) = (0, 0);
    let mut too_late = promptlog_otlp::span_log(&span, "too-late", vec![], None);
    too_late.time_unix_nano = u64::MAX;
    let logs = promptlog_otlp::logs_request(promptlog_otlp::resource("hostile", "test"), vec![untimed, too_late]);
    let reply = post(&stack, "/v1/logs", PROTOBUF, logs.encode_to_vec(), false).await;
    assert_eq!(reply.status, 200);
    let response = ExportLogsServiceResponse::decode(reply.body.as_slice()).unwrap();
    assert_eq!(response.partial_success.map(|p| p.rejected_log_records), Some(1));

    assert_eq!(stack.wait_for_count("otel_traces WHERE SpanName = 'good-time'", 3).await, 3);
    assert_eq!(stack.wait_for_count("otel_logs WHERE EventName = 'untimed'", 1).await, 1);
    assert!(stored_span_ids(&stack, "bad-time").await.is_empty());
    assert_still_serving(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_unknown_fields_are_ignored_and_enum_names_refused() {
    let stack = Stack::start().await;
    let mut request = serde_json::to_value(traces(vec![valid_span("unknown-fields")])).unwrap();
    request["fromTheFuture"] = serde_json::json!({"nested": [1, 2, 3]});
    request["resourceSpans"][0]["fromTheFuture"] = serde_json::json!("x");
    request["resourceSpans"][0]["scopeSpans"][0]["fromTheFuture"] = serde_json::json!(null);
    let span = &mut request["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    span["fromTheFuture"] = serde_json::json!(42);
    span["attributes"][0]["fromTheFuture"] = serde_json::json!(true);
    // Keys are sorted, so the unknown one comes first inside the AnyValue.
    span["attributes"][0]["value"]["fromTheFuture"] = serde_json::json!({"a": [1, {"b": null}]});
    let reply = post(&stack, "/v1/traces", JSON, request.to_string().into_bytes(), false).await;
    assert_eq!(reply.rejected_spans(), 0);
    assert_eq!(stack.wait_for_count("otel_traces WHERE SpanName = 'unknown-fields'", 1).await, 1);
    let rows =
        stack.query_json("SELECT SpanAttributes['case'] AS v FROM otel_traces WHERE SpanName = 'unknown-fields'");
    assert_eq!(rows.await[0]["v"], "unknown-fields", "the AnyValue around the unknown field survived");

    // OTLP/JSON requires enums as integers.
    let enum_names = [
        ("span kind", "/v1/traces", r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_CLIENT"}]}]}]}"#),
        (
            "status code",
            "/v1/traces",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#,
        ),
        (
            "severity number",
            "/v1/logs",
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_INFO"}]}]}]}"#,
        ),
    ];
    for (case, path, body) in enum_names {
        let message = post(&stack, path, JSON, body.into(), false).await.assert_error(400, Code::InvalidArgument);
        println!("[hostile] enum name for {case}: HTTP 400 ({message})");
    }
    assert_still_serving(&stack).await;
}

/// What a slow client dribbles.
#[derive(Debug, Clone, Copy)]
enum Loris {
    /// A request head that never ends, one byte at a time.
    Head,
    /// A complete head announcing a body, then the body one byte at a time.
    Body,
}

/// Dribbles one byte every `pace` until the server closes the connection or `give_up` passes;
/// returns how long the server kept it open (`None`: still open at `give_up`).
async fn loris(addr: SocketAddr, kind: Loris, pace: Duration, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = b"POST /v1/traces HTTP/1.1\r\nHost: loris\r\nContent-Type: application/x-protobuf\r\n";
    let (prefix, drip): (Vec<u8>, &[u8]) = match kind {
        Loris::Head => (Vec::new(), b"X-Loris: aaaaaaaa\r\n"),
        Loris::Body => ([head.as_slice(), b"Content-Length: 100000\r\n\r\n"].concat(), b"\x0a"),
    };
    stream.write_all(&prefix).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let dribble = async {
        let first: &[u8] = if prefix.is_empty() { head } else { &[] };
        for byte in first.iter().chain(drip.iter().cycle()) {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(pace).await;
        }
    };
    let closed = async {
        let mut buf = [0u8; 1024];
        // Any answer (an error status) or EOF means the server is done with this client.
        let _ = read.read(&mut buf).await;
    };
    tokio::select! {
        _ = closed => Some(started.elapsed()),
        _ = dribble => Some(started.elapsed()),
        _ = tokio::time::sleep(give_up) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_clients_do_not_starve_others() {
    let stack = Stack::start().await;
    let pace = Duration::from_millis(200);
    let give_up = conn::HEADER_READ_TIMEOUT + Duration::from_secs(10);
    let heads: Vec<_> = (0..16).map(|_| tokio::spawn(loris(stack.http_addr, Loris::Head, pace, give_up))).collect();
    let bodies: Vec<_> = (0..16).map(|_| tokio::spawn(loris(stack.http_addr, Loris::Body, pace, give_up))).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let reply =
            post(&stack, "/v1/traces", PROTOBUF, traces(vec![valid_span("beside-loris")]).encode_to_vec(), false).await;
        assert_eq!(reply.rejected_spans(), 0, "request {i}");
        slowest = slowest.max(reply.elapsed);
    }
    println!("[hostile] 10 requests beside 32 slow-loris connections: slowest {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "normal clients slowed to {slowest:?}");
    assert_still_serving(&stack).await;
    for head in heads {
        let held = head.await.unwrap().expect("the server never closed a dribbled request head");
        // The margin covers scheduling on a loaded test machine.
        assert!(held <= conn::HEADER_READ_TIMEOUT + Duration::from_secs(5), "head held for {held:?}");
    }
    println!("[hostile] dribbled request heads closed after about {:?}", conn::HEADER_READ_TIMEOUT);
    for body in bodies {
        body.abort();
    }
    assert_eq!(stack.wait_for_count("otel_traces WHERE SpanName = 'beside-loris'", 10).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeouts_cut_slow_clients_and_do_not_block_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(|body: axum::body::Body| async move {
            match axum::body::to_bytes(body, usize::MAX).await {
                Ok(bytes) => (StatusCode::OK, bytes.len().to_string()),
                Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
            }
        }),
    );
    let timeouts = Timeouts { header_read: Duration::from_secs(1), body_read: Duration::from_secs(1) };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(conn::serve(listener, app, timeouts, shutdown.clone()));
    let pace = Duration::from_millis(100);
    let give_up = Duration::from_secs(10);

    let head = tokio::spawn(loris(addr, Loris::Head, pace, give_up));
    let mut body_loris = TcpStream::connect(addr).await.unwrap();
    body_loris.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc").await.unwrap();
    let ok = reqwest::Client::new().post(format!("http://{addr}/v1/traces")).body("hello").send().await.unwrap();
    assert_eq!((ok.status().as_u16(), ok.text().await.unwrap()), (200, "5".to_owned()));

    let mut answer = String::new();
    let started = Instant::now();
    body_loris.read_to_string(&mut answer).await.unwrap();
    println!("[hostile] stalled body answered after {:?}: {:?}", started.elapsed(), answer.lines().last());
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("request body not received within 1 s"), "{answer}");
    let held = head.await.unwrap().expect("dribbled head not closed");
    assert!(held < Duration::from_secs(3), "dribbled head held for {held:?}");

    // The head timer also runs while a keep-alive connection waits for its next request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    let started = Instant::now();
    assert_eq!(idle.read(&mut buf).await.unwrap(), 0, "idle keep-alive connection closed without a reply");
    let idle_for = started.elapsed();
    assert!(idle_for >= Duration::from_millis(900) && idle_for < Duration::from_secs(3), "closed after {idle_for:?}");

    // Graceful shutdown waits for in-flight requests, and a stalled head is cut off, not waited for.
    let _stalled = tokio::spawn(loris(addr, Loris::Head, pace, give_up));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    shutdown.cancel();
    server.await.unwrap().unwrap();
    println!("[hostile] shutdown with a stalled client took {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(3));
}
