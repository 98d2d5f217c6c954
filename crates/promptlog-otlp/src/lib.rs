//! OTLP request builders and sample LLM traffic in every official GenAI encoding. Pure: no I/O.
//!
//! One place for both so that `promptlog demo` (which sends [`round`] over gRPC), the benchmarks and
//! the tests build their OTLP the same way; the collector itself does not depend on this crate
//! except for the demo command.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// A string attribute.
pub fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    kv_value(key, Value::StringValue(value.into()))
}

/// An integer attribute.
pub fn kv_i64(key: &str, value: i64) -> KeyValue {
    kv_value(key, Value::IntValue(value))
}

/// A double attribute.
pub fn kv_f64(key: &str, value: f64) -> KeyValue {
    kv_value(key, Value::DoubleValue(value))
}

/// A string-array attribute.
pub fn kv_strs(key: &str, values: &[&str]) -> KeyValue {
    let values = values.iter().map(|v| AnyValue { value: Some(Value::StringValue((*v).into())) }).collect();
    kv_value(key, Value::ArrayValue(ArrayValue { values }))
}

/// An attribute with any value.
pub fn kv_value(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

/// Converts JSON into a structured AnyValue (objects become kvlists).
pub fn json_to_any(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::StringValue(String::new()),
        J::Bool(b) => Value::BoolValue(*b),
        J::Number(n) => {
            n.as_i64().map(Value::IntValue).unwrap_or_else(|| Value::DoubleValue(n.as_f64().unwrap_or(0.0)))
        }
        J::String(s) => Value::StringValue(s.clone()),
        J::Array(items) => Value::ArrayValue(ArrayValue {
            values: items.iter().map(|v| AnyValue { value: Some(json_to_any(v)) }).collect(),
        }),
        J::Object(map) => {
            Value::KvlistValue(KeyValueList { values: map.iter().map(|(k, v)| kv_value(k, json_to_any(v))).collect() })
        }
    }
}

/// A resource with `service.name` and `deployment.environment.name`.
pub fn resource(service: &str, environment: &str) -> Resource {
    Resource {
        attributes: vec![kv("service.name", service), kv("deployment.environment.name", environment)],
        ..Resource::default()
    }
}

/// Wraps spans of one service into a request.
pub fn traces_request(resource: Resource, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
}

/// Wraps log records of one service into a request.
pub fn logs_request(resource: Resource, log_records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs { log_records, ..ScopeLogs::default() }],
            ..ResourceLogs::default()
        }],
    }
}

/// Wraps metrics of one service into a request.
pub fn metrics_request(
    resource: Resource,
    metrics: Vec<opentelemetry_proto::tonic::metrics::v1::Metric>,
) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
    use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
    opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics { metrics, ..ScopeMetrics::default() }],
            ..ResourceMetrics::default()
        }],
    }
}

/// A client span with fresh random-ish ids, starting `start_ns` and lasting `duration_ms`.
pub fn span(name: &str, start_ns: u64, duration_ms: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: random_bytes::<16>().to_vec(),
        span_id: random_bytes::<8>().to_vec(),
        name: name.into(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + duration_ms * 1_000_000,
        attributes,
        ..Span::default()
    }
}

/// A log record belonging to `span`, with the event name in the `event_name` field.
pub fn span_log(span: &Span, event_name: &str, attributes: Vec<KeyValue>, body: Option<Value>) -> LogRecord {
    LogRecord {
        time_unix_nano: span.end_time_unix_nano,
        observed_time_unix_nano: span.end_time_unix_nano,
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        event_name: event_name.into(),
        attributes,
        body: body.map(|v| AnyValue { value: Some(v) }),
        ..LogRecord::default()
    }
}

/// Non-cryptographic random bytes (ids for demo and test spans).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use std::hash::{BuildHasher, RandomState};
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let r = RandomState::new().hash_one(SystemTime::now()).to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    out[0] |= 1; // never all-zero
    out
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
}

/// An OpenAI `text-embedding-3-small` embeddings span (released to `llm_calls` at once: embeddings
/// never wait for content), used by the demo, the fault tests and the ingest benchmark.
pub fn embeddings_span(start_ns: u64, duration_ms: u64, input_tokens: i64) -> Span {
    span(
        "embeddings text-embedding-3-small",
        start_ns,
        duration_ms,
        vec![
            kv("gen_ai.operation.name", "embeddings"),
            kv("gen_ai.provider.name", "openai"),
            kv("gen_ai.request.model", "text-embedding-3-small"),
            kv_i64("gen_ai.usage.input_tokens", input_tokens),
        ],
    )
}

/// The dated snapshot a provider answers for a model alias (real names, so the demo's calls are
/// priced from the response model as real ones are); other models as they are.
pub fn snapshot(model: &str) -> String {
    let dated = match model {
        "gpt-4o" => "gpt-4o-2024-08-06",
        "gpt-4o-mini" => "gpt-4o-mini-2024-07-18",
        "gpt-3.5-turbo" => "gpt-3.5-turbo-0125",
        "claude-sonnet-4" => "claude-sonnet-4-20250514",
        other => other,
    };
    dated.to_owned()
}

/// The metadata attributes of a chat call (`gen_ai.*`: provider, models, response id, request
/// parameters, token usage, finish reason), without content.
pub fn chat_attrs(provider: &str, model: &str, input: u64, output: u64) -> Vec<KeyValue> {
    vec![
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.provider.name", provider),
        kv("gen_ai.request.model", model),
        kv("gen_ai.response.model", snapshot(model)),
        kv("gen_ai.response.id", format!("chatcmpl-{}", const_hex::encode(random_bytes::<6>()))),
        kv_f64("gen_ai.request.temperature", 0.2),
        kv_i64("gen_ai.request.max_tokens", 256),
        kv_i64("gen_ai.usage.input_tokens", input as i64),
        kv_i64("gen_ai.usage.output_tokens", output as i64),
        kv_strs("gen_ai.response.finish_reasons", &["stop"]),
    ]
}

/// One demo round: one call per encoding, an error, an embeddings call and a plain HTTP span.
pub fn round(i: u32) -> (ExportTraceServiceRequest, ExportLogsServiceRequest) {
    let users = ["alice", "bob", "carol"];
    let user = users[i as usize % users.len()];
    let session = format!("session-{}", i % 4);
    let now = now_ns();
    let mut spans = Vec::new();
    let mut logs = Vec::new();

    // v1.37+: content as JSON-string span attributes.
    let mut a = chat_attrs("openai", "gpt-4o", 42, 12);
    a.push(kv("gen_ai.system_instructions", r#"[{"type":"text","content":"You are a terse assistant."}]"#));
    a.push(kv(
        "gen_ai.input.messages",
        r#"[{"role":"user","parts":[{"type":"text","content":"What is OpenTelemetry?"}]}]"#,
    ));
    a.push(kv("gen_ai.output.messages", r#"[{"role":"assistant","parts":[{"type":"text","content":"A standard for telemetry."}],"finish_reason":"stop"}]"#));
    a.push(kv("gen_ai.conversation.id", session.clone()));
    a.push(kv("user.id", user));
    a.push(kv_f64("gen_ai.response.time_to_first_chunk", 0.21));
    spans.push(span("chat gpt-4o", now - 3_000_000_000, 850, a));

    // v1.37+: content in a gen_ai.client.inference.operation.details log record.
    let s = span("chat claude-sonnet-4", now - 2_500_000_000, 1200, chat_attrs("anthropic", "claude-sonnet-4", 80, 30));
    let input = serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": "Summarise this ticket."}]}]);
    let output = serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": "Customer cannot log in."}], "finish_reason": "stop"}]);
    logs.push(span_log(
        &s,
        "gen_ai.client.inference.operation.details",
        vec![
            kv_value("gen_ai.input.messages", json_to_any(&input)),
            kv_value("gen_ai.output.messages", json_to_any(&output)),
        ],
        None,
    ));
    spans.push(s);

    // v1.28–1.36: per-message log records.
    let mut a = chat_attrs("openai", "gpt-4o-mini", 25, 8);
    a[1] = kv("gen_ai.system", "openai");
    let s = span("chat gpt-4o-mini", now - 2_000_000_000, 400, a);
    let body = |j: serde_json::Value| Some(json_to_any(&j));
    logs.push(span_log(
        &s,
        "gen_ai.system.message",
        vec![kv("gen_ai.system", "openai")],
        body(serde_json::json!({"content": "Answer in French."})),
    ));
    logs.push(span_log(
        &s,
        "gen_ai.user.message",
        vec![kv("gen_ai.system", "openai")],
        body(serde_json::json!({"content": "Hello!"})),
    ));
    logs.push(span_log(
        &s,
        "gen_ai.choice",
        vec![kv("gen_ai.system", "openai")],
        body(serde_json::json!({"index": 0, "finish_reason": "stop", "message": {"content": "Bonjour !"}})),
    ));
    spans.push(s);

    // v1.26–1.27: content span events.
    let mut s = span("chat gpt-3.5-turbo", now - 1_500_000_000, 300, chat_attrs("openai", "gpt-3.5-turbo", 10, 5));
    for (name, key, text) in [
        ("gen_ai.content.prompt", "gen_ai.prompt", r#"[{"role":"user","content":"Ping?"}]"#),
        ("gen_ai.content.completion", "gen_ai.completion", r#"[{"role":"assistant","content":"Pong."}]"#),
    ] {
        s.events.push(Event {
            time_unix_nano: s.start_time_unix_nano,
            name: name.into(),
            attributes: vec![kv(key, text)],
            ..Event::default()
        });
    }
    spans.push(s);

    // A failed call.
    let mut a = chat_attrs("openai", "gpt-4o", 30, 0);
    a.push(kv("error.type", "RateLimitError"));
    let mut s = span("chat gpt-4o", now - 1_000_000_000, 90, a);
    s.status = Some(Status { code: StatusCode::Error as i32, message: "Rate limit reached for gpt-4o".into() });
    spans.push(s);

    // Embeddings and a non-LLM span.
    spans.push(embeddings_span(now - 800_000_000, 60, 9));
    spans.push(span("GET /api/tickets", now - 3_100_000_000, 3200, vec![kv("http.request.method", "GET")]));

    let res = resource(if i.is_multiple_of(2) { "support-bot" } else { "search-api" }, "demo");
    (traces_request(res.clone(), spans), logs_request(res, logs))
}
