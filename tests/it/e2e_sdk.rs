//! End to end with the real Rust OpenTelemetry SDK: spans from an `SdkTracerProvider` and GenAI content
//! log records from an `SdkLoggerProvider`, exported by `opentelemetry-otlp` over gRPC (gzip), OTLP/HTTP
//! protobuf and OTLP/HTTP JSON into a running collector, then read back from ClickHouse.
//!
//! Table-driven: [`CASES`] lists one builder per official encoding (plus legacy spellings, errors and a
//! plain HTTP span); each builder emits its telemetry and returns the exact values expected in
//! `otel_traces`, `otel_logs` and `llm_calls`. Every case runs over every transport against one stack.
//!
//! The Rust SDK cannot put structured (kvlist / array-of-object) values on span attributes:
//! `opentelemetry::Value` only has scalars and homogeneous scalar arrays. So the "structured span
//! attributes" encoding is sent as a hand-built OTLP request over the same transport
//! ([`structured_span_attributes`]), and structured content through the SDK goes through the log path
//! ([`details_event_before_span`]).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, Key, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Compression, LogExporter, Protocol, SpanExporter, WithExportConfig, WithTonicConfig};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span as ProtoSpan, span::SpanKind as ProtoKind};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use promptlog_ingest::rows::LlmCallRow;
use promptlog_otlp::{json_to_any, kv, kv_i64, kv_value, random_bytes, traces_request};
use promptlog_testkit::{LLM_CALL_COLUMNS, Row, cell, json_text, llm_call};
use serde_json::{Value as Json, json};

use crate::support::sdk::{self, Enc};
use crate::support::stack::Stack;

const SCOPE: &str = "promptlog-e2e";
const ENVIRONMENT: &str = "staging";
const JOIN_WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Grpc,
    HttpProto,
    HttpJson,
}

const TRANSPORTS: [Transport; 3] = [Transport::Grpc, Transport::HttpProto, Transport::HttpJson];

impl Transport {
    fn service(self) -> &'static str {
        match self {
            Transport::Grpc => "e2e-grpc",
            Transport::HttpProto => "e2e-http-proto",
            Transport::HttpJson => "e2e-http-json",
        }
    }
}

/// One transport's SDK pipeline plus what raw sends need.
struct Sdk {
    transport: Transport,
    tracer_provider: SdkTracerProvider,
    logger_provider: SdkLoggerProvider,
    tracer: SdkTracer,
    logger: SdkLogger,
    grpc_url: String,
    http_url: String,
    rt: tokio::runtime::Handle,
}

impl Sdk {
    /// Builds the exporters and providers; must run inside the runtime (tonic and reqwest need it).
    /// Simple processors export synchronously on `end()` / `emit()`, so send order is emit order.
    fn new(transport: Transport, grpc_url: &str, http_url: &str) -> Sdk {
        let (spans, logs) = match transport {
            Transport::Grpc => (
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(grpc_url)
                    .with_compression(Compression::Gzip)
                    .build()
                    .expect("gRPC span exporter"),
                LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(grpc_url)
                    .with_compression(Compression::Gzip)
                    .build()
                    .expect("gRPC log exporter"),
            ),
            Transport::HttpProto | Transport::HttpJson => {
                crate::support::sdk::install_ring_provider();
                let protocol =
                    if transport == Transport::HttpProto { Protocol::HttpBinary } else { Protocol::HttpJson };
                (
                    SpanExporter::builder()
                        .with_http()
                        .with_protocol(protocol)
                        .with_endpoint(format!("{http_url}/v1/traces"))
                        .build()
                        .expect("HTTP span exporter"),
                    LogExporter::builder()
                        .with_http()
                        .with_protocol(protocol)
                        .with_endpoint(format!("{http_url}/v1/logs"))
                        .build()
                        .expect("HTTP log exporter"),
                )
            }
        };
        let resource = Resource::builder()
            .with_service_name(transport.service())
            .with_attribute(KeyValue::new("deployment.environment.name", ENVIRONMENT))
            .build();
        let tracer_provider =
            SdkTracerProvider::builder().with_simple_exporter(spans).with_resource(resource.clone()).build();
        let logger_provider = SdkLoggerProvider::builder().with_simple_exporter(logs).with_resource(resource).build();
        let tracer = tracer_provider.tracer(SCOPE);
        let logger = logger_provider.logger(SCOPE);
        Sdk {
            transport,
            tracer_provider,
            logger_provider,
            tracer,
            logger,
            grpc_url: grpc_url.to_owned(),
            http_url: http_url.to_owned(),
            rt: tokio::runtime::Handle::current(),
        }
    }

    fn start_span(&self, name: &'static str, kind: SpanKind, start: SystemTime, attrs: Vec<KeyValue>) -> SdkSpan {
        self.tracer.span_builder(name).with_kind(kind).with_start_time(start).with_attributes(attrs).start(&self.tracer)
    }

    /// Emits one log record tied to `sc`. The event name goes in the `event_name` field, or (when
    /// `name_in_attribute`) in the `event.name` attribute as JS instrumentations do.
    fn emit_log(
        &self,
        sc: &SpanContext,
        event: &'static str,
        name_in_attribute: bool,
        body: Option<Json>,
        attrs: &[(&str, Json)],
        at: SystemTime,
    ) {
        let mut record = self.logger.create_log_record();
        if name_in_attribute {
            record.add_attribute("event.name", event);
        } else {
            record.set_event_name(event);
        }
        record.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        record.set_timestamp(at);
        record.set_observed_timestamp(at);
        record.set_severity_number(Severity::Info);
        record.set_severity_text("INFO");
        if let Some(body) = body {
            record.set_body(sdk_any(&body));
        }
        for (k, v) in attrs {
            record.add_attribute(Key::new(k.to_string()), sdk_any(v));
        }
        self.logger.emit(record);
    }

    fn shutdown(&self) {
        self.tracer_provider.force_flush().expect("flush spans");
        self.logger_provider.force_flush().expect("flush logs");
        self.tracer_provider.shutdown().expect("shut down tracer provider");
        self.logger_provider.shutdown().expect("shut down logger provider");
    }
}

type SdkSpan = opentelemetry_sdk::trace::Span;

/// JSON → SDK log AnyValue (objects become maps, arrays lists).
fn sdk_any(v: &Json) -> AnyValue {
    match v {
        Json::Null => panic!("null has no AnyValue"),
        Json::Bool(b) => AnyValue::Boolean(*b),
        Json::Number(n) => n.as_i64().map(AnyValue::Int).unwrap_or_else(|| AnyValue::Double(n.as_f64().unwrap())),
        Json::String(s) => AnyValue::String(s.clone().into()),
        Json::Array(items) => AnyValue::ListAny(Box::new(items.iter().map(sdk_any).collect())),
        Json::Object(m) => {
            AnyValue::Map(Box::new(m.iter().map(|(k, v)| (Key::new(k.clone()), sdk_any(v))).collect::<HashMap<_, _>>()))
        }
    }
}

fn strs(key: &'static str, values: &[&'static str]) -> KeyValue {
    KeyValue::new(key, Value::Array(Array::String(values.iter().map(|s| StringValue::from(*s)).collect())))
}

fn ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn hex_ids(sc: &SpanContext) -> (String, String) {
    (format!("{:032x}", sc.trace_id()), format!("{:016x}", sc.span_id()))
}

// ---------------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------------

/// Expected `llm_calls` columns (ids, service, environment, scope, times come from [`Emitted`]).
#[derive(Debug, Clone, Default)]
struct CallExpect {
    operation: &'static str,
    provider: &'static str,
    request_model: &'static str,
    response_model: &'static str,
    params: Vec<(&'static str, &'static str)>,
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    cache_read: u64,
    cache_write: u64,
    reasoning: u64,
    finish_reasons: Vec<&'static str>,
    response_id: &'static str,
    status_code: &'static str,
    error_type: &'static str,
    error_message: &'static str,
    session_id: &'static str,
    user_id: &'static str,
    system: Option<Json>,
    input: Option<Json>,
    output: Option<Json>,
    tools: Option<Json>,
    input_text: &'static str,
    output_text: &'static str,
    ttft: Option<f64>,
    convention: &'static str,
}

/// An event or link attribute map.
type Attrs = BTreeMap<String, String>;

fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Expected `otel_traces` columns beyond ids and times.
#[derive(Debug, Clone)]
struct SpanExpect {
    name: &'static str,
    kind: &'static str,
    status_code: &'static str,
    status_message: &'static str,
    parent_span_id: String,
    /// Span attributes that must be present with these values (the SDK adds none of its own).
    attributes: Vec<(&'static str, String)>,
    events: Vec<(&'static str, Attrs)>,
    /// (trace id, span id, attributes)
    links: Vec<(String, String, Attrs)>,
}

impl SpanExpect {
    fn new(name: &'static str, kind: &'static str, status_code: &'static str) -> Self {
        SpanExpect {
            name,
            kind,
            status_code,
            status_message: "",
            parent_span_id: String::new(),
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
        }
    }
}

/// What one case sent and what must come out.
struct Emitted {
    trace_id: String,
    span_id: String,
    start_ns: u64,
    duration_ns: u64,
    span: SpanExpect,
    /// `None`: the span must NOT be in `llm_calls`.
    call: Option<CallExpect>,
    /// Event names of the `otel_logs` rows carrying this span's ids, in any order.
    logs: Vec<&'static str>,
}

struct Case {
    name: &'static str,
    emit: fn(&Sdk, SystemTime) -> Emitted,
}

const CASES: &[Case] = &[
    Case { name: "v1.37 JSON-string span attributes", emit: json_string_span_attributes },
    Case { name: "v1.37 structured span attributes (raw OTLP)", emit: structured_span_attributes },
    Case { name: "v1.37 operation.details log record, before the span", emit: details_event_before_span },
    Case { name: "v1.37 operation.details log record, after the span", emit: details_event_after_span },
    Case { name: "v1.28 per-message log records (event_name), after the span", emit: message_events_after_span },
    Case {
        name: "v1.28 per-message log records (event.name attribute), before the span",
        emit: message_events_attr_name_before_span,
    },
    Case { name: "v1.26 content span events", emit: content_span_events },
    Case { name: "legacy attribute spellings, no content", emit: legacy_spellings },
    Case { name: "cache/reasoning tokens, TTFT, error status", emit: usage_and_error },
    Case { name: "error.type without status, message from exception event", emit: error_type_with_exception_event },
    Case { name: "plain HTTP span (not an LLM call)", emit: plain_http_span },
];

/// Cases the collector gets wrong today (see the test using them); kept apart so the matrix above
/// stays a regression test.
const JOIN_CASES: &[Case] =
    &[Case { name: "v1.28 two gen_ai.choice records (choice.count=2), after the span", emit: two_choices_after_span }];

// ---------------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------------

const DURATION: Duration = Duration::from_nanos(850_123_457);

fn weather_tool() -> Json {
    json!([{
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }])
}

fn json_string_span_attributes(sdk: &Sdk, start: SystemTime) -> Emitted {
    let system = json!([{"type": "text", "content": "You are a helpful bot"}]);
    let input = json!([
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny, 21C"}]},
        {"role": "user", "parts": [{"type": "text", "content": "And tell me a joke about OpenTelemetry"}]}
    ]);
    let output = json!([{"role": "assistant", "parts": [{"type": "text", "content": "It is sunny. Why did the span cross the road?"}], "finish_reason": "stop"}]);
    let mut span = sdk.start_span(
        "chat gpt-4o",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o"),
            KeyValue::new("gen_ai.request.temperature", 0.7),
            KeyValue::new("gen_ai.request.max_tokens", 256),
            KeyValue::new("gen_ai.request.top_p", 0.9),
            KeyValue::new("gen_ai.request.seed", 42),
            KeyValue::new("gen_ai.request.frequency_penalty", 0.5),
            strs("gen_ai.request.stop_sequences", &["END", "STOP"]),
            KeyValue::new("gen_ai.response.model", "gpt-4o-2024-08-06"),
            KeyValue::new("gen_ai.response.id", "chatcmpl-json-attrs"),
            strs("gen_ai.response.finish_reasons", &["stop"]),
            KeyValue::new("gen_ai.usage.input_tokens", 52),
            KeyValue::new("gen_ai.usage.output_tokens", 47),
            KeyValue::new("gen_ai.conversation.id", "conv-42"),
            KeyValue::new("user.id", "alice"),
            KeyValue::new("server.address", "api.openai.com"),
            KeyValue::new("gen_ai.system_instructions", system.to_string()),
            KeyValue::new("gen_ai.input.messages", input.to_string()),
            KeyValue::new("gen_ai.output.messages", output.to_string()),
            KeyValue::new("gen_ai.tool.definitions", weather_tool().to_string()),
        ],
    );
    span.set_status(Status::Ok);
    let (trace_id, span_id) = hex_ids(span.span_context());
    span.end_with_timestamp(start + DURATION);
    let mut span_expect = SpanExpect::new("chat gpt-4o", "Client", "Ok");
    span_expect.attributes = vec![
        ("gen_ai.request.temperature", "0.7".into()),
        ("gen_ai.request.max_tokens", "256".into()),
        ("gen_ai.request.stop_sequences", r#"["END","STOP"]"#.into()),
        ("gen_ai.input.messages", input.to_string()),
    ];
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: span_expect,
        call: Some(CallExpect {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o",
            response_model: "gpt-4o-2024-08-06",
            params: vec![
                ("temperature", "0.7"),
                ("max_tokens", "256"),
                ("top_p", "0.9"),
                ("seed", "42"),
                ("frequency_penalty", "0.5"),
                ("stop_sequences", r#"["END","STOP"]"#),
            ],
            input_tokens: 52,
            output_tokens: 47,
            total_tokens: 99,
            finish_reasons: vec!["stop"],
            response_id: "chatcmpl-json-attrs",
            status_code: "Ok",
            session_id: "conv-42",
            user_id: "alice",
            system: Some(system),
            input: Some(input),
            output: Some(output),
            tools: Some(weather_tool()),
            input_text: "Weather in Paris?\nAnd tell me a joke about OpenTelemetry",
            output_text: "It is sunny. Why did the span cross the road?",
            convention: "otel_genai_attributes",
            ..CallExpect::default()
        }),
        logs: vec![],
    }
}

/// Structured (array / kvlist) span attributes: the Rust SDK cannot produce them, so this case builds
/// the OTLP request by hand and sends it over the same transport with a plain client.
fn structured_span_attributes(sdk: &Sdk, start: SystemTime) -> Emitted {
    let system = json!([{"type": "text", "content": "Answer with one sentence."}]);
    let input = json!([
        {"role": "user", "parts": [
            {"type": "text", "content": "What is in this picture?"},
            {"type": "uri", "modality": "image", "mime_type": "image/png", "uri": "https://example.com/cat.png"}
        ]}
    ]);
    let output = json!([{"role": "assistant", "parts": [
        {"type": "reasoning", "content": "It looks feline."},
        {"type": "text", "content": "A cat on a sofa."}
    ], "finish_reason": "length"}]);
    let trace_id = random_bytes::<16>().to_vec();
    let span_id = random_bytes::<8>().to_vec();
    let duration = 1_234_567_891u64;
    let span = ProtoSpan {
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        name: "generate_content gemini-2.5-flash".into(),
        kind: ProtoKind::Client as i32,
        start_time_unix_nano: ns(start),
        end_time_unix_nano: ns(start) + duration,
        attributes: vec![
            kv("gen_ai.operation.name", "generate_content"),
            kv("gen_ai.provider.name", "gcp.gemini"),
            kv("gen_ai.request.model", "gemini-2.5-flash"),
            kv_value("gen_ai.request.top_k", json_to_any(&json!(40.0))),
            kv_i64("gen_ai.request.max_tokens", 64),
            kv("gen_ai.response.model", "gemini-2.5-flash-001"),
            kv_i64("gen_ai.usage.input_tokens", 1290),
            kv_i64("gen_ai.usage.output_tokens", 64),
            kv_i64("gen_ai.usage.reasoning.output_tokens", 20),
            kv("gen_ai.conversation.id", "conv-structured"),
            kv_value("gen_ai.system_instructions", json_to_any(&system)),
            kv_value("gen_ai.input.messages", json_to_any(&input)),
            kv_value("gen_ai.output.messages", json_to_any(&output)),
            kv_value("gen_ai.tool.definitions", json_to_any(&weather_tool())),
        ],
        ..ProtoSpan::default()
    };
    let mut req = traces_request(promptlog_otlp::resource(sdk.transport.service(), ENVIRONMENT), vec![span]);
    req.resource_spans[0].scope_spans[0] = ScopeSpans {
        scope: Some(InstrumentationScope { name: SCOPE.into(), ..InstrumentationScope::default() }),
        ..req.resource_spans[0].scope_spans[0].clone()
    };
    let partial = sdk.rt.block_on(async {
        match sdk.transport {
            Transport::Grpc => sdk::grpc_traces(&sdk.grpc_url, req).await.expect("gRPC export").partial_success,
            Transport::HttpProto => sdk::http_traces(&sdk.http_url, Enc::Proto, &req).await.partial_success,
            Transport::HttpJson => sdk::http_traces(&sdk.http_url, Enc::Json, &req).await.partial_success,
        }
    });
    assert!(
        partial.as_ref().is_none_or(|p| p.rejected_spans == 0 && p.error_message.is_empty()),
        "{:?}: unexpected partial success {partial:?}",
        sdk.transport
    );
    Emitted {
        trace_id: const_hex::encode(&trace_id),
        span_id: const_hex::encode(&span_id),
        start_ns: ns(start),
        duration_ns: duration,
        span: SpanExpect::new("generate_content gemini-2.5-flash", "Client", "Unset"),
        call: Some(CallExpect {
            operation: "generate_content",
            provider: "gcp.gemini",
            request_model: "gemini-2.5-flash",
            response_model: "gemini-2.5-flash-001",
            params: vec![("top_k", "40"), ("max_tokens", "64")],
            input_tokens: 1290,
            output_tokens: 64,
            total_tokens: 1354,
            reasoning: 20,
            // No gen_ai.response.finish_reasons: derived from the output messages.
            finish_reasons: vec!["length"],
            status_code: "Unset",
            session_id: "conv-structured",
            system: Some(system),
            input: Some(input),
            output: Some(output),
            tools: Some(weather_tool()),
            input_text: "What is in this picture?",
            output_text: "A cat on a sofa.",
            convention: "otel_genai_attributes",
            ..CallExpect::default()
        }),
        logs: vec![],
    }
}

fn details_event_before_span(sdk: &Sdk, start: SystemTime) -> Emitted {
    let system = json!([{"type": "text", "content": "You triage support tickets."}]);
    let input = json!([
        {"role": "user", "parts": [{"type": "text", "content": "Summarise ticket #4411."}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "toolu_1", "name": "get_ticket", "arguments": {"id": 4411, "full": true}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "toolu_1", "response": {"title": "Cannot log in", "priority": 2}}]}
    ]);
    let output = json!([{"role": "assistant", "parts": [{"type": "text", "content": "Customer cannot log in since the update."}], "finish_reason": "end_turn"}]);
    let tools = json!([{"type": "function", "name": "get_ticket", "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}}}]);
    let mut span = sdk.start_span(
        "chat claude-sonnet-4-5",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "anthropic"),
            KeyValue::new("gen_ai.request.model", "claude-sonnet-4-5"),
            KeyValue::new("gen_ai.request.max_tokens", 1024),
            KeyValue::new("gen_ai.request.temperature", 0.0),
            KeyValue::new("gen_ai.response.model", "claude-sonnet-4-5-20250929"),
            KeyValue::new("gen_ai.response.id", "msg_01XyZ"),
            strs("gen_ai.response.finish_reasons", &["end_turn"]),
            KeyValue::new("gen_ai.usage.input_tokens", 180),
            KeyValue::new("gen_ai.usage.output_tokens", 30),
            KeyValue::new("gen_ai.usage.cache_read.input_tokens", 64),
            KeyValue::new("gen_ai.usage.cache_creation.input_tokens", 16),
            KeyValue::new("user.id", "carol"),
        ],
    );
    let sc = span.span_context().clone();
    // Emitted (and exported) while the span is still open: the content reaches the collector first.
    sdk.emit_log(
        &sc,
        "gen_ai.client.inference.operation.details",
        false,
        None,
        &[
            ("gen_ai.operation.name", json!("chat")),
            ("gen_ai.request.model", json!("claude-sonnet-4-5")),
            ("gen_ai.system_instructions", system.clone()),
            ("gen_ai.input.messages", input.clone()),
            ("gen_ai.output.messages", output.clone()),
            ("gen_ai.tool.definitions", tools.clone()),
        ],
        start + Duration::from_millis(500),
    );
    span.set_status(Status::Ok);
    span.end_with_timestamp(start + DURATION);
    let (trace_id, span_id) = hex_ids(&sc);
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: SpanExpect::new("chat claude-sonnet-4-5", "Client", "Ok"),
        call: Some(CallExpect {
            operation: "chat",
            provider: "anthropic",
            request_model: "claude-sonnet-4-5",
            response_model: "claude-sonnet-4-5-20250929",
            params: vec![("max_tokens", "1024"), ("temperature", "0")],
            input_tokens: 180,
            output_tokens: 30,
            total_tokens: 210,
            cache_read: 64,
            cache_write: 16,
            finish_reasons: vec!["end_turn"],
            response_id: "msg_01XyZ",
            status_code: "Ok",
            user_id: "carol",
            system: Some(system),
            input: Some(input),
            output: Some(output),
            tools: Some(tools),
            input_text: "Summarise ticket #4411.",
            output_text: "Customer cannot log in since the update.",
            convention: "otel_genai_details_event",
            ..CallExpect::default()
        }),
        logs: vec!["gen_ai.client.inference.operation.details"],
    }
}

fn details_event_after_span(sdk: &Sdk, start: SystemTime) -> Emitted {
    let input = json!([{"role": "user", "parts": [{"type": "text", "content": "Name two colours."}]}]);
    let output = json!([
        {"role": "assistant", "parts": [{"type": "text", "content": "Red and blue."}], "finish_reason": "stop"},
        {"role": "assistant", "parts": [{"type": "text", "content": "Green and"}], "finish_reason": "length"}
    ]);
    let mut span = sdk.start_span(
        "chat amazon.nova-pro-v1:0",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "aws.bedrock"),
            KeyValue::new("gen_ai.request.model", "amazon.nova-pro-v1:0"),
            KeyValue::new("gen_ai.request.choice.count", 2),
            strs("gen_ai.response.finish_reasons", &["stop", "length"]),
            KeyValue::new("gen_ai.usage.input_tokens", 12),
            KeyValue::new("gen_ai.usage.output_tokens", 9),
        ],
    );
    let sc = span.span_context().clone();
    span.end_with_timestamp(start + DURATION);
    sdk.emit_log(
        &sc,
        "gen_ai.client.inference.operation.details",
        false,
        None,
        &[("gen_ai.input.messages", input.clone()), ("gen_ai.output.messages", output.clone())],
        start + DURATION,
    );
    let (trace_id, span_id) = hex_ids(&sc);
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: SpanExpect::new("chat amazon.nova-pro-v1:0", "Client", "Unset"),
        call: Some(CallExpect {
            operation: "chat",
            provider: "aws.bedrock",
            request_model: "amazon.nova-pro-v1:0",
            params: vec![("choice_count", "2")],
            input_tokens: 12,
            output_tokens: 9,
            total_tokens: 21,
            finish_reasons: vec!["stop", "length"],
            status_code: "Unset",
            input: Some(input),
            output: Some(output),
            input_text: "Name two colours.",
            output_text: "Red and blue.\nGreen and",
            convention: "otel_genai_details_event",
            ..CallExpect::default()
        }),
        logs: vec!["gen_ai.client.inference.operation.details"],
    }
}

/// n=2 with the span exported before its log records (what a batch processor may well do): both
/// `gen_ai.choice` records belong to the call.
fn two_choices_after_span(sdk: &Sdk, start: SystemTime) -> Emitted {
    let mut span = sdk.start_span(
        "chat gpt-4.1",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.system", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4.1"),
            KeyValue::new("gen_ai.request.choice.count", 2),
            KeyValue::new("gen_ai.usage.input_tokens", 6),
            KeyValue::new("gen_ai.usage.output_tokens", 4),
        ],
    );
    let sc = span.span_context().clone();
    span.end_with_timestamp(start + DURATION);
    let at = start + DURATION;
    let sys = [("gen_ai.system", json!("openai"))];
    sdk.emit_log(&sc, "gen_ai.user.message", false, Some(json!({"content": "Say hi"})), &sys, at);
    for (index, text) in [(0, "Hi"), (1, "Hello")] {
        let body = json!({"index": index, "finish_reason": "stop", "message": {"content": text}});
        sdk.emit_log(&sc, "gen_ai.choice", false, Some(body), &sys, at);
    }
    let (trace_id, span_id) = hex_ids(&sc);
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: SpanExpect::new("chat gpt-4.1", "Client", "Unset"),
        call: Some(CallExpect {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4.1",
            params: vec![("choice_count", "2")],
            input_tokens: 6,
            output_tokens: 4,
            total_tokens: 10,
            finish_reasons: vec!["stop", "stop"],
            status_code: "Unset",
            input: Some(json!([{"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}])),
            output: Some(json!([
                {"role": "assistant", "parts": [{"type": "text", "content": "Hi"}], "finish_reason": "stop"},
                {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}
            ])),
            input_text: "Say hi",
            output_text: "Hi\nHello",
            convention: "otel_genai_message_events",
            ..CallExpect::default()
        }),
        logs: vec!["gen_ai.user.message", "gen_ai.choice", "gen_ai.choice"],
    }
}

fn message_events_after_span(sdk: &Sdk, start: SystemTime) -> Emitted {
    let mut span = sdk.start_span(
        "chat gpt-4o-mini",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.system", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
            KeyValue::new("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
            KeyValue::new("gen_ai.response.id", "chatcmpl-events"),
            KeyValue::new("gen_ai.usage.input_tokens", 25),
            KeyValue::new("gen_ai.usage.output_tokens", 8),
            KeyValue::new("gen_ai.conversation.id", "conv-events"),
        ],
    );
    let sc = span.span_context().clone();
    span.end_with_timestamp(start + DURATION);
    // The v1.28–1.36 instrumentations emit these after the response; the span has already been sent.
    let at = start + DURATION;
    let sys = [("gen_ai.system", json!("openai"))];
    sdk.emit_log(&sc, "gen_ai.system.message", false, Some(json!({"content": "You answer in French."})), &sys, at);
    sdk.emit_log(&sc, "gen_ai.user.message", false, Some(json!({"content": "What's the weather in Paris?"})), &sys, at);
    sdk.emit_log(
        &sc,
        "gen_ai.assistant.message",
        false,
        Some(json!({"tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})),
        &sys,
        at,
    );
    sdk.emit_log(&sc, "gen_ai.tool.message", false, Some(json!({"content": "sunny, 21C", "id": "call_9"})), &sys, at);
    sdk.emit_log(
        &sc,
        "gen_ai.choice",
        false,
        Some(json!({"index": 0, "finish_reason": "stop", "message": {"content": "Il fait beau à Paris."}})),
        &sys,
        at,
    );
    let (trace_id, span_id) = hex_ids(&sc);
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: SpanExpect::new("chat gpt-4o-mini", "Client", "Unset"),
        call: Some(CallExpect {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-4o-mini",
            response_model: "gpt-4o-mini-2024-07-18",
            input_tokens: 25,
            output_tokens: 8,
            total_tokens: 33,
            finish_reasons: vec!["stop"],
            response_id: "chatcmpl-events",
            status_code: "Unset",
            session_id: "conv-events",
            system: Some(json!([{"type": "text", "content": "You answer in French."}])),
            input: Some(json!([
                {"role": "system", "parts": [{"type": "text", "content": "You answer in French."}]},
                {"role": "user", "parts": [{"type": "text", "content": "What's the weather in Paris?"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_9", "name": "get_weather", "arguments": {"city": "Paris"}}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_9", "response": "sunny, 21C"}]}
            ])),
            output: Some(
                json!([{"role": "assistant", "parts": [{"type": "text", "content": "Il fait beau à Paris."}], "finish_reason": "stop"}]),
            ),
            input_text: "What's the weather in Paris?",
            output_text: "Il fait beau à Paris.",
            convention: "otel_genai_message_events",
            ..CallExpect::default()
        }),
        logs: vec![
            "gen_ai.system.message",
            "gen_ai.user.message",
            "gen_ai.assistant.message",
            "gen_ai.tool.message",
            "gen_ai.choice",
        ],
    }
}

fn message_events_attr_name_before_span(sdk: &Sdk, start: SystemTime) -> Emitted {
    let mut span = sdk.start_span(
        "chat mistral-large-latest",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.system", "MistralAI"),
            KeyValue::new("gen_ai.request.model", "mistral-large-latest"),
            KeyValue::new("gen_ai.request.presence_penalty", 0.25),
            KeyValue::new("gen_ai.usage.input_tokens", 40),
            KeyValue::new("gen_ai.usage.output_tokens", 4),
        ],
    );
    let sc = span.span_context().clone();
    let at = start + Duration::from_millis(100);
    let sys = [("gen_ai.system", json!("mistral_ai"))];
    sdk.emit_log(&sc, "gen_ai.system.message", true, Some(json!({"content": "Be concise."})), &sys, at);
    sdk.emit_log(
        &sc,
        "gen_ai.user.message",
        true,
        Some(json!({"content": [
            {"type": "text", "text": "Describe this image"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]})),
        &sys,
        at,
    );
    sdk.emit_log(
        &sc,
        "gen_ai.choice",
        true,
        Some(json!({"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "A cat"}})),
        &sys,
        at,
    );
    span.end_with_timestamp(start + DURATION);
    let (trace_id, span_id) = hex_ids(&sc);
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: SpanExpect::new("chat mistral-large-latest", "Client", "Unset"),
        call: Some(CallExpect {
            operation: "chat",
            provider: "mistral_ai",
            request_model: "mistral-large-latest",
            params: vec![("presence_penalty", "0.25")],
            input_tokens: 40,
            output_tokens: 4,
            total_tokens: 44,
            finish_reasons: vec!["length"],
            status_code: "Unset",
            system: Some(json!([{"type": "text", "content": "Be concise."}])),
            input: Some(json!([
                {"role": "system", "parts": [{"type": "text", "content": "Be concise."}]},
                {"role": "user", "parts": [
                    {"type": "text", "content": "Describe this image"},
                    {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"}
                ]}
            ])),
            output: Some(
                json!([{"role": "assistant", "parts": [{"type": "text", "content": "A cat"}], "finish_reason": "length"}]),
            ),
            input_text: "Describe this image",
            output_text: "A cat",
            convention: "otel_genai_message_events",
            ..CallExpect::default()
        }),
        logs: vec!["gen_ai.system.message", "gen_ai.user.message", "gen_ai.choice"],
    }
}

fn content_span_events(sdk: &Sdk, start: SystemTime) -> Emitted {
    let prompt = r#"[{"role":"system","content":"You are terse."},{"role":"user","content":"Ping?"}]"#;
    let completion = r#"[{"role":"assistant","content":"Pong."}]"#;
    let mut span = sdk.start_span(
        "chat gpt-3.5-turbo",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.system", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-3.5-turbo"),
            KeyValue::new("gen_ai.usage.prompt_tokens", 10),
            KeyValue::new("gen_ai.usage.completion_tokens", 5),
            strs("gen_ai.response.finish_reasons", &["stop"]),
        ],
    );
    let t1 = start + Duration::from_millis(1);
    let t2 = start + Duration::from_millis(800);
    span.add_event_with_timestamp("gen_ai.content.prompt", t1, vec![KeyValue::new("gen_ai.prompt", prompt)]);
    span.add_event_with_timestamp(
        "gen_ai.content.completion",
        t2,
        vec![KeyValue::new("gen_ai.completion", completion)],
    );
    let (trace_id, span_id) = hex_ids(span.span_context());
    span.end_with_timestamp(start + DURATION);
    let mut span_expect = SpanExpect::new("chat gpt-3.5-turbo", "Client", "Unset");
    span_expect.events = vec![
        ("gen_ai.content.prompt", attrs(&[("gen_ai.prompt", prompt)])),
        ("gen_ai.content.completion", attrs(&[("gen_ai.completion", completion)])),
    ];
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: span_expect,
        call: Some(CallExpect {
            operation: "chat",
            provider: "openai",
            request_model: "gpt-3.5-turbo",
            input_tokens: 10,
            output_tokens: 5,
            total_tokens: 15,
            finish_reasons: vec!["stop"],
            status_code: "Unset",
            system: Some(json!([{"type": "text", "content": "You are terse."}])),
            input: Some(json!([
                {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
                {"role": "user", "parts": [{"type": "text", "content": "Ping?"}]}
            ])),
            output: Some(json!([{"role": "assistant", "parts": [{"type": "text", "content": "Pong."}]}])),
            input_text: "Ping?",
            output_text: "Pong.",
            convention: "otel_genai_span_events",
            ..CallExpect::default()
        }),
        logs: vec![],
    }
}

fn legacy_spellings(sdk: &Sdk, start: SystemTime) -> Emitted {
    let mut span = sdk.start_span(
        "chat gpt-4",
        SpanKind::Client,
        start,
        vec![
            // No gen_ai.operation.name (pre-1.27): defaults to chat; the call then waits for content
            // for the join window and is released without any.
            KeyValue::new("gen_ai.system", "az.ai.openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4"),
            KeyValue::new("gen_ai.request.temperature", 1.0),
            KeyValue::new("gen_ai.openai.request.seed", 7),
            KeyValue::new("gen_ai.openai.request.response_format", "json_object"),
            KeyValue::new("gen_ai.usage.prompt_tokens", 100),
            KeyValue::new("gen_ai.usage.completion_tokens", 20),
            KeyValue::new("gen_ai.usage.cache_read_input_tokens", 30),
            KeyValue::new("gen_ai.usage.cache_creation_input_tokens", 5),
            KeyValue::new("gen_ai.usage.reasoning_tokens", 12),
            KeyValue::new("session.id", "sess-legacy"),
            KeyValue::new("enduser.id", "bob"),
        ],
    );
    let (trace_id, span_id) = hex_ids(span.span_context());
    span.end_with_timestamp(start + DURATION);
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: SpanExpect::new("chat gpt-4", "Client", "Unset"),
        call: Some(CallExpect {
            operation: "chat",
            provider: "azure.ai.openai",
            request_model: "gpt-4",
            params: vec![("temperature", "1"), ("seed", "7"), ("response_format", "json_object")],
            input_tokens: 100,
            output_tokens: 20,
            total_tokens: 120,
            cache_read: 30,
            cache_write: 5,
            reasoning: 12,
            status_code: "Unset",
            session_id: "sess-legacy",
            user_id: "bob",
            convention: "otel_genai",
            ..CallExpect::default()
        }),
        logs: vec![],
    }
}

fn usage_and_error(sdk: &Sdk, start: SystemTime) -> Emitted {
    let input = json!([{"role": "user", "parts": [{"type": "text", "content": "Prove Fermat's last theorem."}]}]);
    let mut span = sdk.start_span(
        "chat o3-mini",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", "o3-mini"),
            KeyValue::new("gen_ai.request.stream", true),
            KeyValue::new("gen_ai.request.max_tokens", 4096),
            KeyValue::new("gen_ai.response.model", "o3-mini-2025-01-31"),
            KeyValue::new("gen_ai.usage.input_tokens", 1200),
            KeyValue::new("gen_ai.usage.output_tokens", 300),
            KeyValue::new("gen_ai.usage.cache_read.input_tokens", 1000),
            KeyValue::new("gen_ai.usage.cache_creation.input_tokens", 100),
            KeyValue::new("gen_ai.usage.reasoning.output_tokens", 256),
            KeyValue::new("gen_ai.response.time_to_first_chunk", 0.412),
            KeyValue::new("error.type", "RateLimitError"),
            KeyValue::new("gen_ai.input.messages", input.to_string()),
        ],
    );
    span.set_status(Status::error("Rate limit reached for o3-mini"));
    let (trace_id, span_id) = hex_ids(span.span_context());
    span.end_with_timestamp(start + DURATION);
    let mut span_expect = SpanExpect::new("chat o3-mini", "Client", "Error");
    span_expect.status_message = "Rate limit reached for o3-mini";
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: span_expect,
        call: Some(CallExpect {
            operation: "chat",
            provider: "openai",
            request_model: "o3-mini",
            response_model: "o3-mini-2025-01-31",
            params: vec![("stream", "true"), ("max_tokens", "4096")],
            input_tokens: 1200,
            output_tokens: 300,
            total_tokens: 1500,
            cache_read: 1000,
            cache_write: 100,
            reasoning: 256,
            status_code: "Error",
            error_type: "RateLimitError",
            error_message: "Rate limit reached for o3-mini",
            input: Some(input),
            input_text: "Prove Fermat's last theorem.",
            ttft: Some(0.412),
            convention: "otel_genai_attributes",
            ..CallExpect::default()
        }),
        logs: vec![],
    }
}

fn error_type_with_exception_event(sdk: &Sdk, start: SystemTime) -> Emitted {
    let mut span = sdk.start_span(
        "embeddings grok-embed",
        SpanKind::Client,
        start,
        vec![
            KeyValue::new("gen_ai.operation.name", "embeddings"),
            KeyValue::new("gen_ai.provider.name", "xai"),
            KeyValue::new("gen_ai.request.model", "grok-embed"),
            strs("gen_ai.request.encoding_formats", &["float"]),
            KeyValue::new("gen_ai.usage.input_tokens", 9),
            KeyValue::new("error.type", "timeout"),
        ],
    );
    let at = start + Duration::from_millis(300);
    span.add_event_with_timestamp(
        "exception",
        at,
        vec![
            KeyValue::new("exception.type", "TimeoutError"),
            KeyValue::new("exception.message", "Request timed out after 30s"),
        ],
    );
    let (trace_id, span_id) = hex_ids(span.span_context());
    span.end_with_timestamp(start + DURATION);
    let mut span_expect = SpanExpect::new("embeddings grok-embed", "Client", "Unset");
    span_expect.events = vec![(
        "exception",
        attrs(&[("exception.type", "TimeoutError"), ("exception.message", "Request timed out after 30s")]),
    )];
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: span_expect,
        call: Some(CallExpect {
            operation: "embeddings",
            provider: "x_ai",
            request_model: "grok-embed",
            params: vec![("encoding_formats", r#"["float"]"#)],
            input_tokens: 9,
            total_tokens: 9,
            // error.type forces Error (the raw span stays Unset); the message comes from the event.
            status_code: "Error",
            error_type: "timeout",
            error_message: "Request timed out after 30s",
            convention: "otel_genai",
            ..CallExpect::default()
        }),
        logs: vec![],
    }
}

fn plain_http_span(sdk: &Sdk, start: SystemTime) -> Emitted {
    let parent = SpanContext::new(
        TraceId::from_bytes(random_bytes::<16>()),
        SpanId::from_bytes(random_bytes::<8>()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let linked = SpanContext::new(
        TraceId::from_bytes(random_bytes::<16>()),
        SpanId::from_bytes(random_bytes::<8>()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = Context::new().with_remote_span_context(parent.clone());
    let mut span = sdk
        .tracer
        .span_builder("GET /x")
        .with_kind(SpanKind::Server)
        .with_start_time(start)
        .with_attributes(vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.path", "/x"),
            KeyValue::new("http.response.status_code", 200),
        ])
        .with_links(vec![Link::new(linked.clone(), vec![KeyValue::new("link.reason", "retry-of")], 0)])
        .start_with_context(&sdk.tracer, &cx);
    span.add_event_with_timestamp(
        "cache.miss",
        start + Duration::from_millis(2),
        vec![KeyValue::new("cache.key", "x")],
    );
    span.set_status(Status::Ok);
    let (trace_id, span_id) = hex_ids(span.span_context());
    assert_eq!(trace_id, hex_ids(&parent).0, "child span shares its parent's trace");
    span.end_with_timestamp(start + DURATION);
    let mut span_expect = SpanExpect::new("GET /x", "Server", "Ok");
    span_expect.parent_span_id = hex_ids(&parent).1;
    span_expect.attributes = vec![
        ("http.request.method", "GET".into()),
        ("url.path", "/x".into()),
        ("http.response.status_code", "200".into()),
    ];
    span_expect.events = vec![("cache.miss", attrs(&[("cache.key", "x")]))];
    let (link_trace, link_span) = hex_ids(&linked);
    span_expect.links = vec![(link_trace, link_span, attrs(&[("link.reason", "retry-of")]))];
    Emitted {
        trace_id,
        span_id,
        start_ns: ns(start),
        duration_ns: DURATION.as_nanos() as u64,
        span: span_expect,
        call: None,
        logs: vec![],
    }
}

// ---------------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------------

/// Collects mismatches instead of stopping at the first, so one run reports every wrong column.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    fn json(&mut self, what: &str, col: &str, text: &str, want: &Option<Json>) {
        match json_text(col, text) {
            Ok(got) => self.eq(&format!("{what} {col}"), got, want.clone()),
            Err(e) => self.0.push(format!("{what}: {e}")),
        }
    }
}

const TRACE_COLUMNS: &str = "TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, ScopeName, StatusCode, \
    StatusMessage, Duration, toUnixTimestamp64Nano(Timestamp) AS StartNs, SpanAttributes, \
    `Events.Name` AS EventNames, `Events.Attributes` AS EventAttributes, `Links.TraceId` AS LinkTraceIds, \
    `Links.SpanId` AS LinkSpanIds, `Links.Attributes` AS LinkAttributes";

fn by_span_id(rows: Vec<Row>) -> HashMap<String, Vec<Row>> {
    let mut out: HashMap<String, Vec<Row>> = HashMap::new();
    for row in rows {
        out.entry(cell::<String>(&row, "SpanId")).or_default().push(row);
    }
    out
}

/// `llm_calls` rows by span id; a row that does not read back as an [`LlmCallRow`] is a mismatch.
fn calls_by_span_id(m: &mut Mismatches, rows: Vec<Row>) -> HashMap<String, Vec<LlmCallRow>> {
    let mut out: HashMap<String, Vec<LlmCallRow>> = HashMap::new();
    for (i, row) in rows.into_iter().enumerate() {
        match llm_call(row) {
            Ok(call) => out.entry(call.span_id.clone()).or_default().push(call),
            Err(e) => m.0.push(format!("llm_calls row {i}: {e}")),
        }
    }
    out
}

fn check_span(m: &mut Mismatches, what: &str, service: &str, e: &Emitted, row: &Row) {
    let s = &e.span;
    m.eq(&format!("{what} otel_traces.TraceId"), cell::<&str>(row, "TraceId"), e.trace_id.as_str());
    m.eq(&format!("{what} otel_traces.ParentSpanId"), cell::<&str>(row, "ParentSpanId"), s.parent_span_id.as_str());
    m.eq(&format!("{what} otel_traces.SpanName"), cell::<&str>(row, "SpanName"), s.name);
    m.eq(&format!("{what} otel_traces.SpanKind"), cell::<&str>(row, "SpanKind"), s.kind);
    m.eq(&format!("{what} otel_traces.ServiceName"), cell::<&str>(row, "ServiceName"), service);
    m.eq(&format!("{what} otel_traces.ScopeName"), cell::<&str>(row, "ScopeName"), SCOPE);
    m.eq(&format!("{what} otel_traces.StatusCode"), cell::<&str>(row, "StatusCode"), s.status_code);
    m.eq(&format!("{what} otel_traces.StatusMessage"), cell::<&str>(row, "StatusMessage"), s.status_message);
    m.eq(&format!("{what} otel_traces.Duration"), cell::<u64>(row, "Duration"), e.duration_ns);
    m.eq(&format!("{what} otel_traces.Timestamp"), cell::<u64>(row, "StartNs"), e.start_ns);
    let span_attrs = cell::<Attrs>(row, "SpanAttributes");
    for (k, v) in &s.attributes {
        m.eq(&format!("{what} otel_traces.SpanAttributes[{k}]"), span_attrs.get(*k), Some(v));
    }
    let event_names = cell::<Vec<String>>(row, "EventNames");
    m.eq(
        &format!("{what} otel_traces.Events.Name"),
        event_names.iter().map(String::as_str).collect::<Vec<_>>(),
        s.events.iter().map(|(n, _)| *n).collect(),
    );
    m.eq(
        &format!("{what} otel_traces.Events.Attributes"),
        cell::<Vec<Attrs>>(row, "EventAttributes"),
        s.events.iter().map(|(_, a)| a.clone()).collect(),
    );
    m.eq(
        &format!("{what} otel_traces.Links.TraceId"),
        cell::<Vec<String>>(row, "LinkTraceIds"),
        s.links.iter().map(|l| l.0.clone()).collect(),
    );
    m.eq(
        &format!("{what} otel_traces.Links.SpanId"),
        cell::<Vec<String>>(row, "LinkSpanIds"),
        s.links.iter().map(|l| l.1.clone()).collect(),
    );
    m.eq(
        &format!("{what} otel_traces.Links.Attributes"),
        cell::<Vec<Attrs>>(row, "LinkAttributes"),
        s.links.iter().map(|l| l.2.clone()).collect(),
    );
}

fn check_call(m: &mut Mismatches, what: &str, service: &str, e: &Emitted, c: &CallExpect, row: &LlmCallRow) {
    let w = |col: &str| format!("{what} llm_calls.{col}");
    m.eq(&w("TraceId"), row.trace_id.as_str(), e.trace_id.as_str());
    m.eq(&w("ParentSpanId"), row.parent_span_id.as_str(), e.span.parent_span_id.as_str());
    m.eq(&w("SpanName"), row.span_name.as_str(), e.span.name);
    m.eq(&w("ServiceName"), row.service_name.as_str(), service);
    m.eq(&w("Environment"), row.environment.as_str(), ENVIRONMENT);
    m.eq(&w("ScopeName"), row.scope_name.as_str(), SCOPE);
    m.eq(&w("Duration"), row.duration, e.duration_ns);
    m.eq(&w("Timestamp"), row.timestamp, e.start_ns as i64);
    m.eq(&w("Operation"), row.operation.as_str(), c.operation);
    m.eq(&w("Provider"), row.provider.as_str(), c.provider);
    m.eq(&w("RequestModel"), row.request_model.as_str(), c.request_model);
    m.eq(&w("ResponseModel"), row.response_model.as_str(), c.response_model);
    let params: BTreeMap<String, String> = c.params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    m.eq(&w("RequestParams"), row.request_params.iter().cloned().collect(), params);
    m.eq(&w("InputTokens"), row.input_tokens, c.input_tokens);
    m.eq(&w("OutputTokens"), row.output_tokens, c.output_tokens);
    m.eq(&w("TotalTokens"), row.total_tokens, c.total_tokens);
    m.eq(&w("CacheReadInputTokens"), row.cache_read_input_tokens, c.cache_read);
    m.eq(&w("CacheWriteInputTokens"), row.cache_write_input_tokens, c.cache_write);
    m.eq(&w("ReasoningOutputTokens"), row.reasoning_output_tokens, c.reasoning);
    m.eq(&w("FinishReasons"), row.finish_reasons.clone(), c.finish_reasons.iter().map(|s| s.to_string()).collect());
    m.eq(&w("ResponseId"), row.response_id.as_str(), c.response_id);
    m.eq(&w("StatusCode"), row.status_code.as_str(), c.status_code);
    m.eq(&w("ErrorType"), row.error_type.as_str(), c.error_type);
    m.eq(&w("ErrorMessage"), row.error_message.as_str(), c.error_message);
    m.eq(&w("SessionId"), row.session_id.as_str(), c.session_id);
    m.eq(&w("UserId"), row.user_id.as_str(), c.user_id);
    m.json(what, "SystemInstructions", &row.system_instructions, &c.system);
    m.json(what, "InputMessages", &row.input_messages, &c.input);
    m.json(what, "OutputMessages", &row.output_messages, &c.output);
    m.json(what, "ToolDefinitions", &row.tool_definitions, &c.tools);
    m.eq(&w("InputText"), row.input_text.as_str(), c.input_text);
    m.eq(&w("OutputText"), row.output_text.as_str(), c.output_text);
    m.eq(&w("TimeToFirstToken"), row.time_to_first_token, c.ttft);
    m.eq(&w("Convention"), row.convention.as_str(), c.convention);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_telemetry_in_every_encoding_over_every_transport() {
    run_matrix(CASES).await;
}

/// The span reaches the collector before its `gen_ai.choice` records (the SDK's span and log
/// processors export independently, so this order is common): every choice must end up in the call,
/// not only the first (the call must not be released as soon as it has one input and one output).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_choice_joins_when_the_span_comes_first() {
    run_matrix(JOIN_CASES).await;
}

/// Emits every case over every transport through one collector, then checks every table.
async fn run_matrix(cases: &'static [Case]) {
    let stack = Stack::start_with(|cfg| cfg.pipeline.join_window = JOIN_WINDOW).await;
    let (grpc_url, http_url) = (stack.otlp_grpc_url(), stack.otlp_http_url());
    let base = SystemTime::now() - Duration::from_secs(600);

    let mut sent: Vec<(Transport, &'static str, Emitted)> = Vec::new();
    for (ti, transport) in TRANSPORTS.into_iter().enumerate() {
        let (g, h) = (grpc_url.clone(), http_url.clone());
        let emitted = tokio::task::spawn_blocking(move || {
            let sdk = Sdk::new(transport, &g, &h);
            let out: Vec<(&'static str, Emitted)> = cases
                .iter()
                .enumerate()
                .map(|(ci, case)| {
                    let start = base + Duration::from_secs((ti * cases.len() + ci) as u64);
                    (case.name, (case.emit)(&sdk, start))
                })
                .collect();
            sdk.shutdown();
            out
        })
        .await
        .expect("SDK emission");
        sent.extend(emitted.into_iter().map(|(name, e)| (transport, name, e)));
    }

    let n_spans = sent.len() as u64;
    let n_calls = sent.iter().filter(|(_, _, e)| e.call.is_some()).count() as u64;
    let n_logs = sent.iter().map(|(_, _, e)| e.logs.len()).sum::<usize>() as u64;
    assert!(n_calls > 0, "the cases include LLM calls");
    stack.wait_for_count("otel_traces", n_spans).await;
    stack.wait_for_count("otel_logs", n_logs).await;
    stack.wait_for_count("llm_calls", n_calls).await;
    // Anything still held (or wrongly duplicated) would show up within another window.
    tokio::time::sleep(JOIN_WINDOW + Duration::from_secs(1)).await;
    assert_eq!(stack.count("otel_traces").await, n_spans, "otel_traces holds exactly the spans sent");
    assert_eq!(stack.count("otel_logs").await, n_logs, "otel_logs holds exactly the log records sent");
    assert_eq!(stack.count("llm_calls").await, n_calls, "llm_calls holds one row per LLM span, none for others");

    let mut m = Mismatches::default();
    let traces = by_span_id(stack.query_json(&format!("SELECT {TRACE_COLUMNS} FROM otel_traces")).await);
    let calls = calls_by_span_id(&mut m, stack.query_json(&format!("SELECT {LLM_CALL_COLUMNS} FROM llm_calls")).await);
    let logs = by_span_id(stack.query_json("SELECT TraceId, SpanId, EventName FROM otel_logs").await);

    for (transport, name, e) in &sent {
        let what = format!("[{transport:?} / {name}]");
        let service = transport.service();
        match traces.get(&e.span_id).map(Vec::as_slice) {
            Some([row]) => check_span(&mut m, &what, service, e, row),
            other => m.0.push(format!("{what}: expected one otel_traces row, got {}", other.map_or(0, <[Row]>::len))),
        }
        match (&e.call, calls.get(&e.span_id).map(Vec::as_slice)) {
            (Some(c), Some([row])) => check_call(&mut m, &what, service, e, c, row),
            (None, None) => {}
            (Some(_), other) => {
                m.0.push(format!("{what}: expected one llm_calls row, got {}", other.map_or(0, <[LlmCallRow]>::len)))
            }
            (None, Some(rows)) => m.0.push(format!("{what}: not an LLM call, but {} llm_calls rows", rows.len())),
        }
        let mut got_logs: Vec<String> = logs
            .get(&e.span_id)
            .into_iter()
            .flatten()
            .inspect(|row| {
                m.eq(&format!("{what} otel_logs.TraceId"), cell::<&str>(row, "TraceId"), e.trace_id.as_str())
            })
            .map(|row| cell::<String>(row, "EventName"))
            .collect();
        got_logs.sort();
        let mut want_logs: Vec<String> = e.logs.iter().map(|s| s.to_string()).collect();
        want_logs.sort();
        m.eq(&format!("{what} otel_logs.EventName"), got_logs, want_logs);
    }
    assert!(m.0.is_empty(), "{} mismatches:\n{}", m.0.len(), m.0.join("\n"));
}
