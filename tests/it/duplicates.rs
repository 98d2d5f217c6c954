//! One call recorded by two layers is one counted row: nested copies in one trace and copies sharing a
//! response id in unrelated traces, each copy in its own request, in both arrival orders, over HTTP and
//! gRPC, into a running collector. The counted row has the merged values, the other copy is stored as
//! recorded with `IsRollup` and `DuplicateOf`, both raw spans are in `otel_traces`, and the
//! dashboards' sums over `NOT IsRollup` equal the calls made. A crash between the two arrivals (the first copy
//! held, unacknowledged) still gives one merged row, with the fault suite's collector process.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, status::StatusCode};
use promptlog_otlp::{kv, kv_f64, kv_i64, kv_strs, now_ns, random_bytes, resource, span, traces_request};
use promptlog_testkit::{LLM_CALL_COLUMNS, llm_call};

use crate::support::sdk::{self, Enc};
use crate::support::stack::{Stack, TEST_JOIN_WINDOW};

/// What the merged row must show: the input count includes the cache reads (the inner copy's).
pub const INPUT_TOKENS: u64 = 512;
pub const CACHE_READ: u64 = 500;
pub const OUTPUT_TOKENS: u64 = 40;
pub const COMPLETION: &str = "Streamed answer from the inner copy.";
pub const PROMPT: &str = "What is promptlog? (outer copy)";

/// The two recordings of one call: the outer one (an instrumentation's span: parameters and prompt, an
/// exclusive input count) and the inner one (the SDK's own span under it, or in another trace: response
/// id and model, full usage with cache reads, the streamed completion, time to first chunk).
pub fn copies(nested: bool) -> (Span, Span) {
    let start = now_ns();
    let response_id = format!("msg_{}", const_hex::encode(random_bytes::<8>()));
    let common = |extra: Vec<_>| {
        let mut attrs = vec![
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.provider.name", "anthropic"),
            kv("gen_ai.request.model", "claude-sonnet-4-5"),
        ];
        attrs.extend(extra);
        attrs
    };
    let mut outer = span(
        "chat claude-sonnet-4-5",
        start,
        120,
        common(vec![
            kv_f64("gen_ai.request.temperature", 0.3),
            kv_i64("gen_ai.request.max_tokens", 300),
            kv_i64("gen_ai.usage.input_tokens", (INPUT_TOKENS - CACHE_READ) as i64),
            kv_i64("gen_ai.usage.output_tokens", OUTPUT_TOKENS as i64),
            kv(
                "gen_ai.input.messages",
                format!(r#"[{{"role":"user","parts":[{{"type":"text","content":"{PROMPT}"}}]}}]"#),
            ),
        ]),
    );
    outer.parent_span_id = random_bytes::<8>().to_vec(); // the app's span
    let mut inner = span(
        "anthropic.messages.create",
        start + 5_000_000,
        100,
        common(vec![
            kv("gen_ai.response.id", response_id.clone()),
            kv("gen_ai.response.model", "claude-sonnet-4-5-20250929"),
            kv_i64("gen_ai.usage.input_tokens", INPUT_TOKENS as i64),
            kv_i64("gen_ai.usage.cache_read.input_tokens", CACHE_READ as i64),
            kv_i64("gen_ai.usage.output_tokens", OUTPUT_TOKENS as i64),
            kv_f64("gen_ai.response.time_to_first_chunk", 0.25),
            kv_strs("gen_ai.response.finish_reasons", &["end_turn"]),
            kv(
                "gen_ai.output.messages",
                format!(
                    r#"[{{"role":"assistant","parts":[{{"type":"text","content":"{COMPLETION}"}}],"finish_reason":"end_turn"}}]"#
                ),
            ),
        ]),
    );
    if nested {
        inner.trace_id.clone_from(&outer.trace_id);
        inner.parent_span_id.clone_from(&outer.span_id);
    } else {
        // Unrelated traces: only the response id links them.
        outer.attributes.push(kv("gen_ai.response.id", response_id));
    }
    (outer, inner)
}

/// One request holding `span` of `service`, recorded by instrumentation scope `scope`.
pub fn request(service: &str, scope: &str, span: Span) -> ExportTraceServiceRequest {
    let mut req = traces_request(resource(service, "test"), vec![span]);
    req.resource_spans[0].scope_spans[0].scope =
        Some(InstrumentationScope { name: scope.into(), ..Default::default() });
    req
}

/// The scopes of the two layers.
pub const OUTER_SCOPE: &str = "opentelemetry.instrumentation.genai.anthropic";
pub const INNER_SCOPE: &str = "com.anthropic.sdk.python";

async fn send(stack: &Stack, grpc: bool, req: ExportTraceServiceRequest) {
    if grpc {
        let reply = sdk::grpc_traces(&stack.otlp_grpc_url(), req).await.expect("gRPC export");
        assert!(reply.partial_success.is_none_or(|p| p.rejected_spans == 0));
    } else {
        let reply = sdk::http_traces(&stack.otlp_http_url(), Enc::Proto, &req).await;
        assert!(reply.partial_success.is_none_or(|p| p.rejected_spans == 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_counted_row_per_call_in_every_arrival_order() {
    let stack = Stack::start().await;
    // (service, outer, inner, outer first, over gRPC)
    let mut runs = Vec::new();
    for nested in [true, false] {
        for outer_first in [true, false] {
            for grpc in [false, true] {
                let (outer, inner) = copies(nested);
                let service = format!("dup-{}-{}-{}", ["rid", "nested"][nested as usize], outer_first, grpc);
                runs.push((service, outer, inner, outer_first, grpc));
            }
        }
    }
    // Control: two sequential calls of one trace are two calls.
    let (a, _) = copies(true);
    let mut b = a.clone();
    b.span_id = random_bytes::<8>().to_vec();
    b.start_time_unix_nano = a.end_time_unix_nano + 1_000_000;
    b.end_time_unix_nano = b.start_time_unix_nano + 50_000_000;
    b.status = Some(Status { code: StatusCode::Error as i32, message: "overloaded".into() });
    for (service, outer, inner, outer_first, grpc) in &runs {
        let (outer, inner) =
            (request(service, OUTER_SCOPE, outer.clone()), request(service, INNER_SCOPE, inner.clone()));
        let (first, second) = if *outer_first { (outer, inner) } else { (inner, outer) };
        send(&stack, *grpc, first).await;
        // The second copy comes in a later export, well within the join window.
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&stack, *grpc, second).await;
    }
    send(&stack, false, request("dup-control", OUTER_SCOPE, a.clone())).await;
    send(&stack, false, request("dup-control", INNER_SCOPE, b.clone())).await;

    let total = runs.len() as u64 * 2 + 2;
    assert_eq!(stack.wait_for_count("llm_calls", total).await, total);
    assert_eq!(stack.wait_for_count("otel_traces", total).await, total, "both raw spans of every call");
    let sql = format!("SELECT {LLM_CALL_COLUMNS} FROM llm_calls ORDER BY ServiceName, IsRollup");
    let rows: Vec<_> = stack.query_json(&sql).await.into_iter().map(|r| llm_call(r).unwrap()).collect();
    for (service, outer, _, outer_first, grpc) in &runs {
        let what = format!("{service} (outer first: {outer_first}, gRPC: {grpc})");
        let mine: Vec<_> = rows.iter().filter(|r| &r.service_name == service).collect();
        let [counted, dup] = mine.as_slice() else { panic!("{what}: {} rows, want 2", mine.len()) };
        assert!(!counted.is_rollup && counted.duplicate_of.is_empty(), "{what}: {counted:#?}");
        assert_eq!(counted.span_id, const_hex::encode(&outer.span_id), "{what}: the outer copy counts");
        assert_eq!((dup.is_rollup, dup.duplicate_of.as_str()), (true, counted.span_id.as_str()), "{what}");
        let mut params: Vec<(&str, &str)> =
            counted.request_params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        params.sort();
        assert_eq!(params, [("max_tokens", "300"), ("temperature", "0.3")], "{what}");
        assert_eq!(
            (counted.input_tokens, counted.cache_read_input_tokens, counted.output_tokens),
            (INPUT_TOKENS, CACHE_READ, OUTPUT_TOKENS),
            "{what}"
        );
        assert_eq!(counted.response_model, "claude-sonnet-4-5-20250929", "{what}");
        assert_eq!((counted.input_text.as_str(), counted.output_text.as_str()), (PROMPT, COMPLETION), "{what}");
        assert_eq!(counted.time_to_first_token, Some(0.25), "{what}");
        assert_eq!(counted.finish_reasons, ["end_turn"], "{what}");
    }
    let control: Vec<_> = rows.iter().filter(|r| r.service_name == "dup-control").collect();
    assert_eq!(control.iter().filter(|r| !r.is_rollup).count(), 2, "sequential calls both count: {control:#?}");

    // What the dashboards sum (`NOT IsRollup`) equals the calls made.
    let sums = stack
        .sql()
        .text("SELECT count(), sum(InputTokens), sum(OutputTokens) FROM llm_calls WHERE NOT IsRollup", None)
        .await;
    let calls = runs.len() as u64 + 2;
    let want = format!(
        "{calls}\t{}\t{}",
        INPUT_TOKENS * runs.len() as u64 + 2 * (INPUT_TOKENS - CACHE_READ),
        OUTPUT_TOKENS * calls
    );
    assert_eq!(sums.trim(), want);
    assert!(TEST_JOIN_WINDOW > Duration::from_millis(300), "the copies arrive within the window");
}

/// A call held in the join stage when the collector is SIGKILLed (so its spool record is not acked) is
/// replayed at the restart and merged with its other copy arriving after the restart, in either order:
/// one counted row with the merged values, the copy marked, each raw span stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_is_merged_with_its_copy_after_a_crash() {
    use crate::faults::{Collector, DRAIN_TIMEOUT, clickhouse, count, database, span_ids, sql, tail};
    use prost::Message;
    let _alone = promptlog_testkit::gate::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let ch = clickhouse(dir.path());
    for outer_first in [true, false] {
        let (db, run_dir) = (database("dup_crash"), dir.path().join(format!("outer-first-{outer_first}")));
        std::fs::create_dir_all(&run_dir).unwrap();
        // A long window: the first copy is still held, unacked, when the collector dies.
        let mut collector = Collector::start(&ch, &db, &run_dir, &[("PROMPTLOG_JOIN_WINDOW", "120s")]).await;
        let (outer, inner) = copies(true);
        let outer_req = request("dup-crash", OUTER_SCOPE, outer.clone());
        let inner_req = request("dup-crash", INNER_SCOPE, inner.clone());
        let (first, second) = if outer_first { (outer_req, inner_req) } else { (inner_req, outer_req) };
        let post = |url: String, req: ExportTraceServiceRequest| {
            let body = req.encode_to_vec();
            async move {
                let reply = reqwest::Client::new()
                    .post(format!("{url}/v1/traces"))
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .expect("collector reachable");
                assert_eq!(reply.status(), 200);
            }
        };
        post(collector.url(), first).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(count(&ch, &db, "llm_calls").await, Some(0), "the first copy is held, not written");
        collector.kill();
        collector.env.push(("PROMPTLOG_JOIN_WINDOW".into(), "5s".into()));
        collector.restart().await;
        post(collector.url(), second).await;

        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while count(&ch, &db, "llm_calls").await < Some(2) {
            assert!(Instant::now() < deadline, "calls not written:\n{}", tail(&collector.log));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let what = format!("outer first: {outer_first}");
        let (spans, uniq, _) = span_ids(&ch, &db, "otel_traces").await;
        assert_eq!((spans, uniq), (2, 2), "{what}: each raw span once");
        let rows = sql(&ch, &db).rows(&format!("SELECT {LLM_CALL_COLUMNS} FROM llm_calls ORDER BY IsRollup")).await;
        let rows: Vec<_> = rows.into_iter().map(|r| llm_call(r).unwrap()).collect();
        let [counted, dup] = rows.as_slice() else { panic!("{what}: {} rows", rows.len()) };
        assert_eq!(counted.span_id, const_hex::encode(&outer.span_id), "{what}");
        assert_eq!(
            (counted.is_rollup, dup.is_rollup, dup.duplicate_of.as_str()),
            (false, true, counted.span_id.as_str())
        );
        assert_eq!(
            (counted.input_tokens, counted.input_text.as_str(), counted.output_text.as_str()),
            (INPUT_TOKENS, PROMPT, COMPLETION),
            "{what}: merged across the crash"
        );
        collector.kill();
    }
}
