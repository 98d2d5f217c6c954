//! The async-openai glue on synthetic requests, responses and stream chunks (the e2e suite runs it
//! against a server: `tests/it/instrument.rs`).

use super::*;

#[test]
fn provider_and_server_come_from_the_base_url() {
    assert_eq!(provider_of("https://api.openai.com/v1"), "openai");
    assert_eq!(provider_of("https://my-res.openai.azure.com/openai/deployments/x"), "azure.ai.openai");
    assert_eq!(provider_of("https://api.groq.com/openai/v1"), "groq");
    assert_eq!(provider_of("http://127.0.0.1:8080/v1"), "openai");
    assert_eq!(server_of("https://api.openai.com/v1"), Some(("api.openai.com".into(), 443)));
    assert_eq!(server_of("http://127.0.0.1:8080/v1"), Some(("127.0.0.1".into(), 8080)));
    assert_eq!(server_of("http://[::1]:9/v1"), Some(("::1".into(), 9)));
    assert_eq!(server_of("not a url"), None);
}

#[test]
fn f32_parameters_keep_their_decimal_value() {
    assert_eq!(f32_to_f64(0.2), 0.2);
    assert_eq!(f32_to_f64(0.37), 0.37);
}

#[test]
fn request_messages_map_to_parts() {
    let tool = serde_json::json!({"role": "tool", "tool_call_id": "c1", "content": "-3 C"});
    assert_eq!(
        serde_json::to_value(input_message(&tool)).unwrap(),
        serde_json::json!({"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "-3 C"}]})
    );
    let asst = serde_json::json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]});
    let m = input_message(&asst);
    assert_eq!(
        m.parts,
        [Part::ToolCall {
            id: Some("c1".into()),
            name: "get_weather".into(),
            arguments: serde_json::json!({"city": "Oslo"})
        }]
    );
}

fn chunk(v: serde_json::Value) -> CreateChatCompletionStreamResponse {
    let mut base = serde_json::json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-2024-08-06", "service_tier": "default", "system_fingerprint": "fp_s"});
    base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

#[test]
fn streamed_chunks_add_up_to_text_tool_calls_finish_reasons_and_usage() {
    let mut acc = Accumulated::default();
    for c in [
        serde_json::json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
        serde_json::json!({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
        serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":"}}]}}]}),
        serde_json::json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
            "function": {"arguments": "\"Oslo\"}"}}]}, "finish_reason": "tool_calls"}]}),
        serde_json::json!({"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 8}, "completion_tokens_details": {"reasoning_tokens": 3}}}),
    ] {
        acc.add(&chunk(c));
    }
    let r = acc.response();
    assert_eq!((r.id.as_deref(), r.model.as_deref()), (Some("chatcmpl-s"), Some("gpt-4o-2024-08-06")));
    assert_eq!(r.finish_reasons, ["tool_calls"]);
    assert_eq!(
        r.output[0].parts,
        [
            Part::text("Hello"),
            Part::ToolCall {
                id: Some("c1".into()),
                name: "get_weather".into(),
                arguments: serde_json::json!({"city": "Oslo"})
            }
        ]
    );
    assert_eq!(r.usage, Usage::openai(20, 9, 8, 3));
    let extras: Vec<String> = r.attributes.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect();
    assert_eq!(extras, ["openai.response.service_tier=default", "openai.response.system_fingerprint=fp_s"]);
}

#[test]
fn a_response_maps_choices_usage_and_extras() {
    let resp: CreateChatCompletionResponse = serde_json::from_value(serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi."}}],
        "usage": {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43}
    }))
    .unwrap();
    let r = response_of(&resp);
    assert_eq!(r.finish_reasons, ["stop"]);
    assert_eq!(r.output, [Message::assistant("Hi.").with_finish_reason("stop")]);
    // No details: cached and reasoning stay unknown rather than zero.
    assert_eq!(
        r.usage,
        Usage { cache_read_input_tokens: None, reasoning_output_tokens: None, ..Usage::openai(31, 12, 0, 0) }
    );
    assert!(r.attributes.is_empty());
}

/// What a stream test reads: the exporter, and the provider, which must outlive the span (a dropped
/// provider shuts down and exports nothing more).
type Exported = (opentelemetry_sdk::trace::InMemorySpanExporter, opentelemetry_sdk::trace::SdkTracerProvider);

/// An instrumented stream over `chunks` on an in-memory exporter.
fn stream_over(chunks: Vec<serde_json::Value>) -> (InstrumentedStream, Exported) {
    let spans = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let tp = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
    let call = Instrument::new(&tp, None, crate::Capture::default()).chat("openai", "gpt-4o").stream(true).start();
    let items: Vec<Result<CreateChatCompletionStreamResponse, OpenAIError>> =
        chunks.into_iter().map(|c| Ok(chunk(c))).collect();
    let inner: ChatCompletionResponseStream = Box::pin(futures::stream::iter(items));
    (InstrumentedStream { inner, call: Some(call), include_usage: true, acc: Accumulated::default() }, (spans, tp))
}

fn attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<opentelemetry::Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
}

#[tokio::test]
async fn a_stream_ends_its_span_on_the_usage_chunk() {
    use futures::StreamExt as _;
    let (mut stream, (spans, _tp)) = stream_over(vec![
        serde_json::json!({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]}),
        serde_json::json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}),
    ]);
    assert!(stream.next().await.is_some());
    assert!(spans.get_finished_spans().unwrap().is_empty(), "ended before the usage chunk");
    assert!(stream.next().await.is_some());
    let s = spans.get_finished_spans().unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(attribute(&s[0], attr::USAGE_OUTPUT_TOKENS), Some(opentelemetry::Value::I64(2)));
    assert!(attribute(&s[0], attr::RESPONSE_TIME_TO_FIRST_CHUNK).is_some());
    assert_eq!(attribute(&s[0], attr::ERROR_TYPE), None);
}

#[tokio::test]
async fn a_stream_dropped_early_ends_as_an_error() {
    use futures::StreamExt as _;
    let (mut stream, (spans, _tp)) =
        stream_over(vec![serde_json::json!({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})]);
    assert!(stream.next().await.is_some());
    drop(stream);
    let s = spans.get_finished_spans().unwrap();
    assert_eq!(attribute(&s[0], attr::ERROR_TYPE), Some(opentelemetry::Value::from(attr::ERROR_TYPE_OTHER)));
    assert!(attribute(&s[0], attr::RESPONSE_TIME_TO_FIRST_CHUNK).is_some());
}
