//! Table-driven tests of the official-convention normaliser, built with the demo OTLP builders.

use super::*;
use opentelemetry_proto::tonic::trace::v1::Status;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use promptlog_otlp::{
    chat_attrs, json_to_any, kv, kv_f64, kv_i64, kv_strs, kv_value, logs_request, resource, span, span_log,
    traces_request,
};
use serde_json::json;

const LIMITS: Limits = Limits { max_attribute_value_bytes: 1 << 20 };
const START: u64 = 1_700_000_000_000_000_000;

/// What one request normalised to, as the tests look at it.
struct Batch {
    spans: Vec<crate::rows::SpanRow>,
    calls: Vec<NormalizedCall>,
    logs: Vec<crate::rows::LogRow>,
    fragments: Vec<ContentFragment>,
    report: Report,
}

fn batch_of(request: Request, limits: Limits, now_ns: i64) -> Batch {
    let (s, report) = normalize(&request, limits, now_ns);
    Batch { spans: s.spans, calls: s.calls, logs: s.logs, fragments: s.fragments, report }
}

fn normalize_traces(
    req: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    limits: Limits,
) -> Batch {
    batch_of(Request::Traces(req.clone()), limits, 0)
}

fn normalize_logs(
    req: &opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
    limits: Limits,
    now_ns: i64,
) -> Batch {
    batch_of(Request::Logs(req.clone()), limits, now_ns)
}

fn calls_of(spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>) -> Batch {
    normalize_traces(&traces_request(resource("svc", "prod"), spans), LIMITS)
}

fn one_call(attrs: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>) -> NormalizedCall {
    let mut batch = calls_of(vec![span("chat m", START, 1500, attrs)]);
    assert_eq!(batch.calls.len(), 1, "expected one LLM call");
    batch.calls.remove(0)
}

fn param<'a>(row: &'a crate::rows::LlmCallRow, key: &str) -> Option<&'a str> {
    row.request_params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn attribute_table() {
    // (attributes, check) pairs: each row is one convention detail.
    type Check = fn(&crate::rows::LlmCallRow);
    let cases: Vec<(Vec<_>, Check)> = vec![
        (
            vec![
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.provider.name", "openai"),
                kv("gen_ai.request.model", "gpt-4o"),
            ],
            |r| {
                assert_eq!(
                    (r.operation.as_str(), r.provider.as_str(), r.request_model.as_str()),
                    ("chat", "openai", "gpt-4o")
                );
                assert_eq!((r.service_name.as_str(), r.environment.as_str()), ("svc", "prod"));
                assert_eq!(r.duration, 1_500_000_000);
                assert_eq!(r.timestamp, START as i64);
            },
        ),
        (vec![kv("gen_ai.operation.name", "chat"), kv("gen_ai.system", "az.ai.openai")], |r| {
            assert_eq!(r.provider, "azure.ai.openai")
        }),
        (
            vec![
                kv("gen_ai.operation.name", "chat"),
                kv_f64("gen_ai.request.temperature", 0.7),
                kv_i64("gen_ai.request.max_tokens", 100),
                kv_f64("gen_ai.request.top_p", 0.9),
                kv_i64("gen_ai.openai.request.seed", 42),
                kv_strs("gen_ai.request.stop_sequences", &["END"]),
                kv_i64("gen_ai.request.choice.count", 2),
                kv("gen_ai.request.model", "not-a-param"),
            ],
            |r| {
                assert_eq!(param(r, "temperature"), Some("0.7"));
                assert_eq!(param(r, "max_tokens"), Some("100"));
                assert_eq!(param(r, "top_p"), Some("0.9"));
                assert_eq!(param(r, "seed"), Some("42"));
                assert_eq!(param(r, "stop_sequences"), Some(r#"["END"]"#));
                assert_eq!(param(r, "choice_count"), Some("2"));
                assert_eq!(param(r, "model"), None);
            },
        ),
        (
            vec![
                kv("gen_ai.operation.name", "chat"),
                kv_i64("gen_ai.usage.input_tokens", 100),
                kv_i64("gen_ai.usage.output_tokens", 20),
                kv_i64("gen_ai.usage.cache_read.input_tokens", 60),
                kv_i64("gen_ai.usage.cache_creation.input_tokens", 5),
                kv_i64("gen_ai.usage.reasoning.output_tokens", 7),
            ],
            |r| {
                assert_eq!((r.input_tokens, r.output_tokens, r.total_tokens), (100, 20, 120));
                assert_eq!(
                    (r.cache_read_input_tokens, r.cache_write_input_tokens, r.reasoning_output_tokens),
                    (60, 5, 7)
                );
            },
        ),
        (
            // Pre-1.30 names and the in-flight cache_write rename.
            vec![
                kv("gen_ai.operation.name", "chat"),
                kv_i64("gen_ai.usage.prompt_tokens", 11),
                kv_i64("gen_ai.usage.completion_tokens", 3),
                kv_i64("gen_ai.usage.cache_write.input_tokens", 4),
            ],
            |r| {
                assert_eq!(
                    (r.input_tokens, r.output_tokens, r.total_tokens, r.cache_write_input_tokens),
                    (11, 3, 14, 4)
                )
            },
        ),
        (
            vec![
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.response.model", "gpt-4o-2024-08-06"),
                kv("gen_ai.response.id", "chatcmpl-1"),
                kv_strs("gen_ai.response.finish_reasons", &["stop", "length"]),
                kv_f64("gen_ai.response.time_to_first_chunk", 0.25),
                kv("gen_ai.conversation.id", "conv-9"),
                kv("user.id", "u-1"),
            ],
            |r| {
                assert_eq!((r.response_model.as_str(), r.response_id.as_str()), ("gpt-4o-2024-08-06", "chatcmpl-1"));
                assert_eq!(r.finish_reasons, vec!["stop", "length"]);
                assert_eq!(r.time_to_first_token, Some(0.25));
                assert_eq!((r.session_id.as_str(), r.user_id.as_str()), ("conv-9", "u-1"));
            },
        ),
        (
            // Finish reasons as a JSON string (Logfire) and identity from session.id / enduser.id.
            vec![
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.response.finish_reasons", r#"["stop"]"#),
                kv("session.id", "s-2"),
                kv("enduser.id", "e-2"),
            ],
            |r| {
                assert_eq!(r.finish_reasons, vec!["stop"]);
                assert_eq!((r.session_id.as_str(), r.user_id.as_str()), ("s-2", "e-2"));
            },
        ),
        (vec![kv("gen_ai.operation.name", "chat"), kv("error.type", "RateLimitError")], |r| {
            assert_eq!((r.status_code.as_str(), r.error_type.as_str()), ("Error", "RateLimitError"))
        }),
        (vec![kv("gen_ai.operation.name", "embeddings"), kv_i64("gen_ai.usage.input_tokens", 9)], |r| {
            assert_eq!((r.operation.as_str(), r.input_tokens, r.output_tokens), ("embeddings", 9, 0))
        }),
    ];
    for (attrs, check) in cases {
        check(&one_call(attrs).finish());
    }
}

#[test]
fn non_llm_spans_and_unrelated_gen_ai_keys_make_no_call() {
    let batch = calls_of(vec![
        span("GET /", START, 10, vec![kv("http.request.method", "GET")]),
        span("x", START, 10, vec![kv("gen_ai.agent.name", "a")]),
    ]);
    assert_eq!(batch.spans.len(), 2);
    assert!(batch.calls.is_empty());
}

#[test]
fn error_message_comes_from_status_or_exception_event() {
    let mut s = span("chat m", START, 10, vec![kv("gen_ai.operation.name", "chat")]);
    s.status = Some(Status { code: StatusCode::Error as i32, message: String::new() });
    s.events.push(Event {
        name: "exception".into(),
        attributes: vec![kv("exception.type", "RateLimitError"), kv("exception.message", "quota exceeded")],
        ..Event::default()
    });
    let row = calls_of(vec![s]).calls.remove(0).finish();
    assert_eq!((row.status_code.as_str(), row.error_message.as_str()), ("Error", "quota exceeded"));
    assert_eq!(row.error_type, "RateLimitError", "error.type absent: taken from the exception event");
}

/// Each content encoding on the span itself, as (attributes, events) → expected rendering.
#[test]
fn span_content_encodings() {
    let input = json!([{"role": "system", "parts": [{"type": "text", "content": "sys"}]}, {"role": "user", "parts": [{"type": "text", "content": "hi"}]}]);
    let output =
        json!([{"role": "assistant", "parts": [{"type": "text", "content": "hello"}], "finish_reason": "stop"}]);
    let base = || vec![kv("gen_ai.operation.name", "chat")];
    let mut json_strings = base();
    json_strings.push(kv("gen_ai.input.messages", input.to_string()));
    json_strings.push(kv("gen_ai.output.messages", output.to_string()));
    let mut structured = base();
    structured.push(kv_value("gen_ai.input.messages", json_to_any(&input)));
    structured.push(kv_value("gen_ai.output.messages", json_to_any(&output)));
    for attrs in [json_strings, structured] {
        let call = one_call(attrs);
        assert!(!call.awaits_content);
        let row = call.finish();
        assert_eq!(row.convention, "otel_genai_attributes");
        assert_eq!((row.input_text.as_str(), row.output_text.as_str()), ("hi", "hello"));
        assert_eq!(row.system_instructions, r#"[{"content":"sys","type":"text"}]"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&row.output_messages).unwrap(), output);
        assert_eq!(row.finish_reasons, vec!["stop"]);
    }
    // v1.26–1.27 span events with OpenAI-shaped JSON.
    let mut s = span("chat m", START, 10, base());
    for (name, key, text) in [
        ("gen_ai.content.prompt", "gen_ai.prompt", r#"[{"role":"user","content":"q"}]"#),
        ("gen_ai.content.completion", "gen_ai.completion", r#"[{"role":"assistant","content":"a"}]"#),
    ] {
        s.events.push(Event { name: name.into(), attributes: vec![kv(key, text)], ..Event::default() });
    }
    let row = calls_of(vec![s]).calls.remove(0).finish();
    assert_eq!(
        (row.convention.as_str(), row.input_text.as_str(), row.output_text.as_str()),
        ("otel_genai_span_events", "q", "a")
    );
}

#[test]
fn inference_without_content_awaits_logs_but_embeddings_do_not() {
    assert!(one_call(vec![kv("gen_ai.operation.name", "chat")]).awaits_content);
    assert!(!one_call(vec![kv("gen_ai.operation.name", "embeddings")]).awaits_content);
}

#[test]
fn log_records_become_fragments() {
    let s = span("chat m", START, 10, vec![]);
    let body = |j: serde_json::Value| Some(json_to_any(&j));
    let mut by_attr = span_log(&s, "", vec![kv("event.name", "gen_ai.user.message")], body(json!({"content": "hi"})));
    by_attr.event_name.clear();
    let records = vec![
        span_log(&s, "gen_ai.system.message", vec![], body(json!({"content": "sys"}))),
        by_attr,
        span_log(
            &s,
            "gen_ai.choice",
            vec![],
            body(json!({"index": 0, "finish_reason": "stop", "message": {"content": "yo"}})),
        ),
        span_log(
            &s,
            "gen_ai.client.inference.operation.details",
            vec![kv_value(
                "gen_ai.input.messages",
                json_to_any(&json!([{"role": "user", "parts": [{"type": "text", "content": "d"}]}])),
            )],
            None,
        ),
        span_log(&s, "some.other.event", vec![], body(json!({"content": "ignored"}))),
    ];
    let batch = normalize_logs(&logs_request(resource("svc", ""), records), LIMITS, 1);
    assert_eq!(batch.logs.len(), 5, "every record is kept in otel_logs");
    assert_eq!(batch.logs[1].event_name, "gen_ai.user.message");
    let conventions: Vec<_> = batch.fragments.iter().map(|f| f.convention).collect();
    assert_eq!(
        conventions,
        vec![
            Convention::OtelGenAiMessageEvents,
            Convention::OtelGenAiMessageEvents,
            Convention::OtelGenAiMessageEvents,
            Convention::OtelGenAiDetailsEvent,
        ]
    );
    assert_eq!(batch.fragments[2].content.output[0]["finish_reason"], "stop");
    assert_eq!(batch.fragments[0].span_id, const_hex::encode(&s.span_id));
}

#[test]
fn invalid_records_are_reported_and_valid_ones_kept() {
    let good = span("chat m", START, 10, vec![kv("gen_ai.operation.name", "chat")]);
    let mut bad = span("bad", START, 10, vec![]);
    bad.end_time_unix_nano = START - 1;
    let batch = calls_of(vec![good, bad]);
    assert_eq!((batch.spans.len(), batch.calls.len(), batch.report.rejected), (1, 1, 1));
    let message = batch.report.message("spans", 10);
    assert!(
        message.contains("rejected 1 of the spans") && message.contains("before start_time_unix_nano"),
        "{message}"
    );
}

#[test]
fn long_values_are_truncated_and_reported() {
    let limits = Limits { max_attribute_value_bytes: 8 };
    let batch = normalize_traces(
        &traces_request(resource("svc", ""), vec![span("s", START, 1, vec![kv("k", "0123456789abc")])]),
        limits,
    );
    assert_eq!(batch.report.truncated, 1);
    assert_eq!(batch.spans[0].span_attributes[0].1, "01234567…[truncated 5 bytes]");
    assert!(batch.report.message("spans", 8).contains("truncated"));
}

#[test]
fn vercel_ai_sdk_spans() {
    let prompt = json!([
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {"role": "assistant", "content": [{"type": "tool-call", "toolCallId": "c1", "toolName": "weather", "args": {"city": "Oslo"}}]},
        {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "c1", "toolName": "weather", "result": "sunny"}]},
    ]);
    let inner = vec![
        kv("ai.operationId", "ai.generateText.doGenerate"),
        kv("ai.model.id", "gpt-4o"),
        kv("ai.model.provider", "openai.chat"),
        kv("ai.prompt.messages", prompt.to_string()),
        kv("ai.response.text", "Sunny in Oslo."),
        kv("ai.response.finishReason", "stop"),
        kv_i64("ai.usage.promptTokens", 30),
        kv_i64("ai.usage.completionTokens", 6),
        kv_i64("ai.settings.maxTokens", 100),
        kv_f64("ai.settings.temperature", 0.5),
        kv_f64("ai.response.msToFirstChunk", 250.0),
        kv("ai.telemetry.metadata.sessionId", "s-v"),
        kv("ai.telemetry.metadata.userId", "u-v"),
        kv("ai.telemetry.metadata.tenant", "acme"),
    ];
    let row = one_call(inner).finish();
    assert_eq!((row.convention.as_str(), row.operation.as_str(), row.is_rollup), ("vercel_ai", "chat", false));
    assert_eq!((row.provider.as_str(), row.request_model.as_str()), ("openai", "gpt-4o"));
    assert_eq!((row.input_tokens, row.output_tokens, row.total_tokens), (30, 6, 36));
    assert_eq!((param(&row, "max_tokens"), param(&row, "temperature")), (Some("100"), Some("0.5")));
    assert_eq!(row.time_to_first_token, Some(0.25));
    assert_eq!((row.session_id.as_str(), row.user_id.as_str()), ("s-v", "u-v"));
    assert_eq!(row.metadata, vec![("tenant".to_owned(), "acme".to_owned())]);
    assert_eq!(row.system_instructions, r#"[{"content":"be brief","type":"text"}]"#);
    assert_eq!((row.input_text.as_str(), row.output_text.as_str()), ("weather?", "Sunny in Oslo."));
    let input: serde_json::Value = serde_json::from_str(&row.input_messages).unwrap();
    assert_eq!(
        input[2]["parts"][0],
        json!({"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}})
    );
    assert_eq!(input[3]["parts"][0], json!({"type": "tool_call_response", "id": "c1", "response": "sunny"}));
    assert_eq!(row.finish_reasons, vec!["stop"]);
    // The outer span repeats the inner call's usage: a rollup.
    let outer = one_call(vec![kv("ai.operationId", "ai.generateText"), kv_i64("ai.usage.promptTokens", 30)]).finish();
    assert!(outer.is_rollup);
}

/// Shapes recorded from the real `ai` 6.0 SDK (tests/fixtures/otlp/vercel-ai-v6): `gen_ai.system` mirrors
/// `ai.model.provider` (`openai.chat`), v5+ tool-result outputs and tool schemas, embeddings usage.
#[test]
fn vercel_ai_sdk_v6_recorded_shapes() {
    let prompt = json!([
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {"role": "assistant", "content": [{"type": "tool-call", "toolCallId": "c1", "toolName": "weather", "input": {"city": "Oslo"}}]},
        {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "c1", "toolName": "weather", "output": {"type": "text", "value": "{\"t\":-3}"}}]},
        {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "c2", "toolName": "weather", "output": {"type": "json", "value": {"t": 4}}}]},
    ]);
    let tool = json!({"type": "function", "name": "weather", "inputSchema": {"type": "object"}}).to_string();
    let row = one_call(vec![
        kv("ai.operationId", "ai.generateText.doGenerate"),
        kv("ai.model.provider", "openai.chat"),
        kv("gen_ai.system", "openai.chat"),
        kv("ai.model.id", "gpt-4.1-mini"),
        kv("ai.prompt.messages", prompt.to_string()),
        kv_strs("ai.prompt.tools", &[&tool]),
        kv("ai.response.toolCalls", r#"[{"toolCallId":"c3","toolName":"weather","input":"{\"city\":\"Oslo\"}"}]"#),
        kv_i64("ai.usage.inputTokens", 347),
        kv_i64("ai.usage.outputTokens", 29),
        kv_i64("ai.usage.inputTokenDetails.cacheReadTokens", 256),
        kv_i64("ai.usage.outputTokenDetails.reasoningTokens", 13),
        kv_i64("ai.settings.maxOutputTokens", 555),
        kv_i64("ai.settings.maxRetries", 0),
    ])
    .finish();
    assert_eq!(row.provider, "openai");
    assert_eq!((row.cache_read_input_tokens, row.reasoning_output_tokens), (256, 13));
    assert_eq!((param(&row, "max_tokens"), param(&row, "max_retries")), (Some("555"), None));
    let input: serde_json::Value = serde_json::from_str(&row.input_messages).unwrap();
    assert_eq!(input[1]["parts"][0]["arguments"], json!({"city": "Oslo"}));
    assert_eq!(input[2]["parts"][0], json!({"type": "tool_call_response", "id": "c1", "response": "{\"t\":-3}"}));
    assert_eq!(input[3]["parts"][0]["response"], json!({"t": 4}));
    let output: serde_json::Value = serde_json::from_str(&row.output_messages).unwrap();
    assert_eq!(
        output[0]["parts"][0],
        json!({"type": "tool_call", "id": "c3", "name": "weather", "arguments": {"city": "Oslo"}})
    );
    let tools: serde_json::Value = serde_json::from_str(&row.tool_definitions).unwrap();
    assert_eq!(tools, json!([{"type": "function", "name": "weather", "parameters": {"type": "object"}}]));

    let embed = one_call(vec![
        kv("ai.operationId", "ai.embedMany.doEmbed"),
        kv("ai.model.provider", "openai.embedding"),
        kv("ai.model.id", "text-embedding-3-small"),
        kv_strs("ai.values", &[r#""first input""#, r#""second input""#]),
        kv_i64("ai.usage.tokens", 23),
    ])
    .finish();
    assert_eq!((embed.operation.as_str(), embed.provider.as_str(), embed.is_rollup), ("embeddings", "openai", false));
    assert_eq!((embed.input_tokens, embed.total_tokens), (23, 23));
    assert_eq!(embed.input_text, "first input\nsecond input");
}

#[test]
fn langfuse_attributes_take_precedence_for_identity() {
    let row = one_call(vec![
        kv("gen_ai.operation.name", "chat"),
        kv("session.id", "otel-session"),
        kv("langfuse.session.id", "lf-session"),
        kv("langfuse.user.id", "lf-user"),
        kv("user.id", "otel-user"),
        kv_strs("langfuse.trace.tags", &["a", "b"]),
        kv("langfuse.trace.metadata.team", "search"),
        kv("langfuse.observation.usage_details", r#"{"input": 12, "output": 3}"#),
        kv("langfuse.observation.cost_details", r#"{"total": 0.002}"#),
        kv("langfuse.observation.model.name", "claude-3-5"),
    ])
    .finish();
    assert_eq!((row.session_id.as_str(), row.user_id.as_str()), ("lf-session", "lf-user"));
    assert_eq!(row.tags, vec!["a", "b"]);
    assert_eq!(row.metadata, vec![("team".to_owned(), "search".to_owned())]);
    assert_eq!((row.input_tokens, row.output_tokens, row.cost_usd), (12, 3, Some(0.002)));
    assert_eq!(row.response_model, "claude-3-5");
}

#[test]
fn pydantic_ai_v1_events_attribute_and_rollups() {
    let events = json!([
        {"event.name": "gen_ai.system.message", "content": "sys", "role": "system"},
        {"event.name": "gen_ai.user.message", "content": "hello", "role": "user"},
        {"event.name": "gen_ai.choice", "index": 0, "message": {"role": "assistant", "content": "hi!"}, "finish_reason": "stop"},
    ]);
    let mut s = span(
        "chat gpt-4o",
        START,
        10,
        vec![kv("gen_ai.operation.name", "chat"), kv("gen_ai.system", "openai"), kv("events", events.to_string())],
    );
    let scope = opentelemetry_proto::tonic::common::v1::InstrumentationScope {
        name: "pydantic-ai".into(),
        ..Default::default()
    };
    s.name = "chat gpt-4o".into();
    let mut req = traces_request(resource("svc", ""), vec![s]);
    req.resource_spans[0].scope_spans[0].scope = Some(scope);
    let row = normalize_traces(&req, LIMITS).calls.remove(0).finish();
    assert_eq!(row.convention, "logfire");
    assert_eq!((row.input_text.as_str(), row.output_text.as_str()), ("hello", "hi!"));
    assert_eq!(row.system_instructions, r#"[{"content":"sys","type":"text"}]"#);
    let agent =
        one_call(vec![kv("gen_ai.operation.name", "invoke_agent"), kv_i64("gen_ai.usage.input_tokens", 5)]).finish();
    assert!(agent.is_rollup);
}

#[test]
fn openinference_chain_spans_are_not_calls_and_logfire_pending_spans_are_skipped() {
    let batch = calls_of(vec![
        span("chain", START, 10, vec![kv("openinference.span.kind", "CHAIN"), kv("input.value", "x")]),
        span("p", START, 10, vec![kv("logfire.span_type", "pending_span"), kv("gen_ai.operation.name", "chat")]),
        span(
            "tool",
            START,
            10,
            vec![
                kv("openinference.span.kind", "TOOL"),
                kv("input.value", r#"{"city":"Oslo"}"#),
                kv("output.value", "sunny"),
            ],
        ),
    ]);
    assert_eq!(batch.calls.len(), 1);
    let row = batch.calls.into_iter().next().unwrap().finish();
    assert_eq!((row.operation.as_str(), row.output_text.as_str()), ("execute_tool", "sunny"));
    assert_eq!(row.input_text, r#"{"city":"Oslo"}"#);
}

#[test]
fn a_call_is_complete_only_with_every_requested_choice() {
    let call = one_call(vec![kv("gen_ai.operation.name", "chat"), kv_i64("gen_ai.request.choice.count", 2)]);
    assert_eq!(call.content.expected_outputs, 2);
    let mut content = call.content.clone();
    content.input.push(messages::text_message("user", "q"));
    content.output.push(messages::text_message("assistant", "a1"));
    assert!(!content.is_complete(), "one of two choices");
    content.output.push(messages::text_message("assistant", "a2"));
    assert!(content.is_complete());
    let single = one_call(vec![kv("gen_ai.operation.name", "chat")]);
    assert_eq!(single.content.expected_outputs, 1);
}

#[test]
fn content_is_stored_once_per_table() {
    let mut attrs = chat_attrs("openai", "gpt-4o", 3, 2);
    let input = r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#;
    attrs.push(kv("gen_ai.input.messages", input));
    attrs.push(kv("gen_ai.output.messages", r#"[{"role":"assistant","parts":[{"type":"text","content":"yo"}]}]"#));
    // OpenLLMetry's indexed prompt attributes are content too; an ordinary attribute is not.
    attrs.push(kv("gen_ai.prompt.0.content", "hi"));
    attrs.push(kv("app.feature", "greeting"));
    let mut batch = calls_of(vec![span("chat gpt-4o", START, 10, attrs)]);
    let (call, raw) = (&batch.calls.remove(0).finish(), &batch.spans[0]);
    let keys = |a: &crate::rows::AttrMap| a.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    // The raw span keeps everything as sent; the call row has the content in its own columns only.
    for key in ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt.0.content", "app.feature"] {
        assert!(keys(&raw.span_attributes).contains(&key.to_owned()), "otel_traces lost {key}");
    }
    assert!(call.input_messages.contains("hi") && call.output_messages.contains("yo"));
    assert_eq!(
        keys(&call.span_attributes).iter().filter(|k| k.contains("messages") || k.contains("prompt")).count(),
        0,
        "{:?}",
        keys(&call.span_attributes)
    );
    assert!(keys(&call.span_attributes).contains(&"app.feature".to_owned()));
}
