//! The recording API against the SDK's in-memory exporters: what reaches an exporter is what the
//! collector would receive.

use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::{Array, Value};
use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::attributes as attr;
use crate::{Capture, CaptureMode, Instrument, Message, Part, Response, Usage};

struct Rig {
    spans: InMemorySpanExporter,
    logs: InMemoryLogExporter,
    tp: SdkTracerProvider,
    instrument: Instrument,
}

fn rig(mode: CaptureMode) -> Rig {
    let spans = InMemorySpanExporter::default();
    let logs = InMemoryLogExporter::default();
    let tp = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
    let lp = SdkLoggerProvider::builder().with_simple_exporter(logs.clone()).build();
    let instrument = Instrument::new(&tp, Some(&lp), Capture::with_mode(mode));
    Rig { spans, logs, tp, instrument }
}

fn value<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn only_span(r: &Rig) -> SpanData {
    let mut spans = r.spans.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    spans.remove(0)
}

fn plain_call(r: &Rig) -> crate::CallRef {
    let call = r
        .instrument
        .chat("openai", "gpt-4o")
        .server("api.openai.com", 443)
        .temperature(0.2)
        .max_tokens(50)
        .stop_sequences(["END"])
        .seed(7)
        .conversation_id("sess-1")
        .user_id("user-1")
        .tags(["checkout"])
        .input_messages(vec![Message::system("Be terse."), Message::user("Hello")])
        .start();
    call.finish(Response {
        id: Some("chatcmpl-1".into()),
        model: Some("gpt-4o-2024-08-06".into()),
        finish_reasons: vec!["stop".into()],
        output: vec![Message::assistant("Hi.").with_finish_reason("stop")],
        usage: Usage::openai(11, 7, 3, 2),
        ..Response::default()
    })
}

#[test]
fn a_chat_call_is_a_client_span_with_typed_convention_attributes() {
    let r = rig(CaptureMode::None);
    plain_call(&r);
    let s = only_span(&r);
    assert_eq!(s.name, "chat gpt-4o");
    assert_eq!(s.span_kind, SpanKind::Client);
    assert_eq!(s.status, Status::Unset);
    assert_eq!(s.instrumentation_scope.name(), attr::SCOPE_NAME);
    assert_eq!(s.instrumentation_scope.schema_url(), Some(attr::SCHEMA_URL));
    assert_eq!(value(&s, attr::OPERATION_NAME), Some(&Value::from("chat")));
    assert_eq!(value(&s, attr::PROVIDER_NAME), Some(&Value::from("openai")));
    assert_eq!(value(&s, attr::REQUEST_MODEL), Some(&Value::from("gpt-4o")));
    assert_eq!(value(&s, attr::REQUEST_TEMPERATURE), Some(&Value::F64(0.2)));
    assert_eq!(value(&s, attr::REQUEST_MAX_TOKENS), Some(&Value::I64(50)));
    assert_eq!(value(&s, attr::REQUEST_SEED), Some(&Value::I64(7)));
    assert_eq!(value(&s, attr::SERVER_PORT), Some(&Value::I64(443)));
    assert_eq!(value(&s, attr::REQUEST_STOP_SEQUENCES), Some(&Value::Array(Array::String(vec!["END".into()]))));
    assert_eq!(value(&s, attr::RESPONSE_FINISH_REASONS), Some(&Value::Array(Array::String(vec!["stop".into()]))));
    assert_eq!(value(&s, attr::RESPONSE_ID), Some(&Value::from("chatcmpl-1")));
    assert_eq!(value(&s, attr::RESPONSE_MODEL), Some(&Value::from("gpt-4o-2024-08-06")));
    assert_eq!(value(&s, attr::USAGE_INPUT_TOKENS), Some(&Value::I64(11)));
    assert_eq!(value(&s, attr::USAGE_OUTPUT_TOKENS), Some(&Value::I64(7)));
    assert_eq!(value(&s, attr::USAGE_CACHE_READ_INPUT_TOKENS), Some(&Value::I64(3)));
    assert_eq!(value(&s, attr::USAGE_REASONING_OUTPUT_TOKENS), Some(&Value::I64(2)));
    assert_eq!(value(&s, attr::CONVERSATION_ID), Some(&Value::from("sess-1")));
    assert_eq!(value(&s, attr::USER_ID), Some(&Value::from("user-1")));
    assert_eq!(value(&s, attr::TAGS), Some(&Value::Array(Array::String(vec!["checkout".into()]))));
    // Not streamed: no stream flag, no time to first chunk.
    assert_eq!(value(&s, attr::REQUEST_STREAM), None);
    assert_eq!(value(&s, attr::RESPONSE_TIME_TO_FIRST_CHUNK), None);
}

#[test]
fn other_operations_name_their_spans_by_the_conventions() {
    let r = rig(CaptureMode::None);
    r.instrument.embeddings("openai", "text-embedding-3-small").start().finish(Response::default());
    r.instrument.text_completion("openai", "gpt-3.5-turbo-instruct").start().finish(Response::default());
    r.instrument.execute_tool("get_weather").tool_call_id("c1").start().finish(Response::default());
    let spans = r.spans.get_finished_spans().unwrap();
    let names: Vec<(&str, SpanKind)> = spans.iter().map(|s| (&*s.name, s.span_kind.clone())).collect();
    assert_eq!(
        names,
        [
            ("embeddings text-embedding-3-small", SpanKind::Client),
            ("text_completion gpt-3.5-turbo-instruct", SpanKind::Client),
            ("execute_tool get_weather", SpanKind::Internal),
        ]
    );
    assert_eq!(value(&spans[2], attr::TOOL_NAME), Some(&Value::from("get_weather")));
    assert_eq!(value(&spans[2], attr::OPERATION_NAME), Some(&Value::from("execute_tool")));
}

#[test]
fn a_call_nests_under_the_entered_tracing_span() {
    let r = rig(CaptureMode::None);
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(r.tp.tracer("app")));
    tracing::subscriber::with_default(subscriber, || {
        let app = tracing::info_span!("handle_request");
        let _entered = app.enter();
        r.instrument.chat("openai", "gpt-4o").start().finish(Response::default());
    });
    let spans = r.spans.get_finished_spans().unwrap();
    let app = spans.iter().find(|s| s.name == "handle_request").expect("the tracing span is exported");
    let call = spans.iter().find(|s| s.name == "chat gpt-4o").unwrap();
    assert_eq!(call.parent_span_id, app.span_context.span_id());
    assert_eq!(call.span_context.trace_id(), app.span_context.trace_id());
}

#[test]
fn content_is_captured_only_where_the_mode_says() {
    for mode in [CaptureMode::None, CaptureMode::SpanOnly, CaptureMode::EventOnly, CaptureMode::SpanAndEvent] {
        let r = rig(mode);
        plain_call(&r);
        let s = only_span(&r);
        let on_span = value(&s, attr::INPUT_MESSAGES).is_some();
        assert_eq!(on_span, mode.on_span(), "{mode:?}");
        assert_eq!(value(&s, attr::OUTPUT_MESSAGES).is_some(), mode.on_span(), "{mode:?}");
        if on_span {
            let Some(Value::String(json)) = value(&s, attr::INPUT_MESSAGES) else { panic!("not a string") };
            let json: serde_json::Value = serde_json::from_str(json.as_str()).unwrap();
            assert_eq!(
                json[0],
                serde_json::json!({"role": "system", "parts": [{"type": "text", "content": "Be terse."}]})
            );
            assert_eq!(json[1]["parts"][0]["content"], "Hello");
        }
        let logs = r.logs.get_emitted_logs().unwrap();
        let details: Vec<_> =
            logs.iter().filter(|l| l.record.event_name() == Some(attr::EVENT_INFERENCE_DETAILS)).collect();
        assert_eq!(details.len(), usize::from(mode.on_event()), "{mode:?}");
        if let Some(d) = details.first() {
            let tc = d.record.trace_context().unwrap();
            assert_eq!(tc.span_id, s.span_context.span_id());
            let input = d.record.attributes_iter().find(|(k, _)| k.as_str() == attr::INPUT_MESSAGES).unwrap();
            // Structured on events, as the conventions require.
            assert!(matches!(input.1, opentelemetry::logs::AnyValue::ListAny(_)), "{:?}", input.1);
        }
    }
}

#[test]
fn content_over_the_byte_cap_is_cut_and_marked() {
    let spans = InMemorySpanExporter::default();
    let tp = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
    let capture = Capture { mode: CaptureMode::SpanOnly, max_bytes: 8 };
    let i = Instrument::new(&tp, None, capture);
    i.chat("openai", "m").input_messages(vec![Message::user("0123456789abcdef")]).start().finish(Response::default());
    let s = spans.get_finished_spans().unwrap().remove(0);
    let Some(Value::String(json)) = value(&s, attr::INPUT_MESSAGES) else { panic!() };
    let json: serde_json::Value = serde_json::from_str(json.as_str()).unwrap();
    assert_eq!(json[0]["parts"][0]["content"], "01234567");
    assert_eq!(value(&s, attr::CONTENT_TRUNCATED), Some(&Value::Bool(true)));
}

#[test]
fn system_instructions_are_parts_json() {
    let r = rig(CaptureMode::SpanOnly);
    r.instrument.chat("anthropic", "claude").system_instructions(vec![Part::text("Be kind.")]).start();
    let s = only_span(&r);
    let Some(Value::String(json)) = value(&s, attr::SYSTEM_INSTRUCTIONS) else { panic!() };
    assert_eq!(json.as_str(), r#"[{"type":"text","content":"Be kind."}]"#);
}

#[test]
fn failures_and_dropped_calls_are_errors() {
    let r = rig(CaptureMode::None);
    r.instrument.chat("openai", "gpt-4o").start().fail("RateLimitError", "429 slow down");
    {
        let _abandoned = r.instrument.chat("openai", "gpt-4o").start();
    }
    let spans = r.spans.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!(value(&spans[0], attr::ERROR_TYPE), Some(&Value::from("RateLimitError")));
    assert_eq!(spans[0].status, Status::error("429 slow down"));
    assert_eq!(value(&spans[1], attr::ERROR_TYPE), Some(&Value::from(attr::ERROR_TYPE_OTHER)));
    assert!(matches!(spans[1].status, Status::Error { .. }));
}

#[test]
fn time_to_first_chunk_is_recorded_once_and_in_seconds() {
    let r = rig(CaptureMode::None);
    let mut call = r.instrument.chat("openai", "gpt-4o").stream(true).start();
    std::thread::sleep(std::time::Duration::from_millis(30));
    call.first_chunk();
    std::thread::sleep(std::time::Duration::from_millis(30));
    call.first_chunk();
    call.finish(Response::default());
    let s = only_span(&r);
    assert_eq!(value(&s, attr::REQUEST_STREAM), Some(&Value::Bool(true)));
    let ttft = s.attributes.iter().filter(|kv| kv.key.as_str() == attr::RESPONSE_TIME_TO_FIRST_CHUNK).count();
    assert_eq!(ttft, 1);
    let Some(Value::F64(secs)) = value(&s, attr::RESPONSE_TIME_TO_FIRST_CHUNK) else { panic!() };
    assert!((0.03..0.06).contains(secs), "{secs}");
}

#[test]
fn an_evaluation_event_is_parented_to_its_call() {
    let r = rig(CaptureMode::None);
    let call = plain_call(&r);
    r.instrument
        .evaluation("Relevance")
        .score(4.0)
        .label("relevant")
        .explanation("on topic")
        .for_call(&call)
        .emit()
        .unwrap();
    let s = only_span(&r);
    let logs = r.logs.get_emitted_logs().unwrap();
    assert_eq!(logs.len(), 1);
    let rec = &logs[0].record;
    assert_eq!(rec.event_name(), Some(attr::EVENT_EVALUATION_RESULT));
    let tc = rec.trace_context().unwrap();
    assert_eq!((tc.trace_id, tc.span_id), (s.span_context.trace_id(), s.span_context.span_id()));
    let a: std::collections::HashMap<&str, String> =
        rec.attributes_iter().map(|(k, v)| (k.as_str(), format!("{v:?}"))).collect();
    assert_eq!(a[attr::EVALUATION_NAME], r#"String(Owned("Relevance"))"#);
    assert_eq!(a[attr::EVALUATION_SCORE_VALUE], "Double(4.0)");
    assert_eq!(a[attr::EVALUATION_SCORE_LABEL], r#"String(Owned("relevant"))"#);
    assert_eq!(a[attr::RESPONSE_ID], r#"String(Owned("chatcmpl-1"))"#);
    assert!(a.contains_key(attr::EVALUATION_EXPLANATION));
}

#[test]
fn an_empty_evaluation_or_one_without_a_logger_is_refused() {
    let r = rig(CaptureMode::None);
    assert!(matches!(r.instrument.evaluation("x").emit(), Err(crate::Error::EmptyEvaluation(_))));
    let no_logs = Instrument::new(&r.tp, None, Capture::default());
    assert!(matches!(no_logs.evaluation("x").score(1.0).emit(), Err(crate::Error::NoLogger)));
}
