//! The official OpenTelemetry GenAI semantic conventions (v1.26 → v1.41 and the in-flight renames):
//! span attributes, v1.26–1.27 content span events, and content log records of v1.28+.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value as Json;

use super::attrs::{Attrs, body_to_json, value_to_json_parsing_strings, value_to_string};
use super::call::{Convention, normalize_provider};
use super::messages::{Content, Messages, message_from_event_body, messages_from_json, output_from_choice_body};
use crate::rows::LlmCallRow;

/// Name of the v1.37+ log record carrying a whole call's content.
pub const DETAILS_EVENT: &str = "gen_ai.client.inference.operation.details";

/// True when the span carries the official GenAI attributes that identify an LLM operation.
pub fn is_genai_span(a: Attrs<'_>) -> bool {
    a.get("gen_ai.operation.name").is_some()
        || ((a.get("gen_ai.provider.name").is_some() || a.get("gen_ai.system").is_some())
            && a.get("gen_ai.request.model").is_some())
}

/// Request parameters that older conventions spelled differently, mapped to their short names.
const RENAMED_PARAMS: &[(&str, &str)] = &[
    ("gen_ai.openai.request.seed", "seed"),
    ("gen_ai.openai.request.response_format", "response_format"),
    ("gen_ai.openai.request.service_tier", "service_tier"),
    ("openai.request.service_tier", "service_tier"),
    ("gen_ai.output.type", "output_type"),
];

/// Fills every non-content column the official conventions define.
pub fn fill_row(row: &mut LlmCallRow, a: Attrs<'_>) {
    row.operation = a.str("gen_ai.operation.name").unwrap_or_default();
    row.provider = a
        .str("gen_ai.provider.name")
        .or_else(|| a.str("gen_ai.system"))
        .map(|p| normalize_provider(&p))
        .unwrap_or_default();
    row.request_model = a.str("gen_ai.request.model").unwrap_or_default();
    row.response_model = a.str("gen_ai.response.model").unwrap_or_default();
    row.response_id = a.str("gen_ai.response.id").unwrap_or_default();
    row.finish_reasons = a.str_list("gen_ai.response.finish_reasons").unwrap_or_default();
    fill_usage(row, a);
    row.time_to_first_token = a.f64("gen_ai.response.time_to_first_chunk");
    row.cost_usd = a.f64("gen_ai.usage.cost");
    fill_params(row, a);
}

fn fill_usage(row: &mut LlmCallRow, a: Attrs<'_>) {
    row.input_tokens = a.first_u64(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"]).unwrap_or(0);
    row.output_tokens = a.first_u64(&["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"]).unwrap_or(0);
    row.cache_read_input_tokens =
        a.first_u64(&["gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens"]).unwrap_or(0);
    row.cache_write_input_tokens = a
        .first_u64(&[
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_write.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
        ])
        .unwrap_or(0);
    row.reasoning_output_tokens =
        a.first_u64(&["gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"]).unwrap_or(0);
    row.total_tokens = a.u64("gen_ai.usage.total_tokens").unwrap_or(row.input_tokens + row.output_tokens);
}

/// Every `gen_ai.request.*` setting (except the model) under its short name, plus renamed ones.
fn fill_params(row: &mut LlmCallRow, a: Attrs<'_>) {
    for kv in a.0 {
        let Some(value) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else { continue };
        let short = match kv.key.strip_prefix("gen_ai.request.") {
            Some("model") => continue,
            Some(rest) => rest.replace('.', "_"),
            None => match RENAMED_PARAMS.iter().find(|(k, _)| *k == kv.key) {
                Some((_, short)) => (*short).to_owned(),
                None => continue,
            },
        };
        if row.request_params.iter().any(|(k, _)| *k == short) {
            continue;
        }
        row.request_params.push((short, value_to_string(value)));
    }
}

/// Content carried by the span itself: v1.37+ attributes, else v1.26–1.27 span events.
pub fn span_content(span: &Span, a: Attrs<'_>) -> Option<(Content, Convention)> {
    let content = content_from_attrs(a);
    if !content.is_empty() {
        return Some((content, Convention::OtelGenAiAttributes));
    }
    let mut content = Content::default();
    for event in &span.events {
        let ea = Attrs(&event.attributes);
        match event.name.as_str() {
            "gen_ai.content.prompt" => {
                if let Some(v) = ea.json("gen_ai.prompt") {
                    content.input = messages_from_json(v).into();
                }
            }
            "gen_ai.content.completion" => {
                if let Some(v) = ea.json("gen_ai.completion") {
                    content.output = messages_from_json(v).into_iter().map(as_assistant).collect();
                }
            }
            _ => {}
        }
    }
    (!content.is_empty()).then_some((content, Convention::OtelGenAiSpanEvents))
}

/// A bare string completion is the assistant speaking, not the user.
fn as_assistant(mut message: Json) -> Json {
    if let Some(obj) = message.as_object_mut()
        && obj.get("role").and_then(Json::as_str) == Some("user")
    {
        obj.insert("role".into(), Json::String("assistant".into()));
    }
    message
}

/// `gen_ai.input.messages` and friends, as JSON strings or structured values.
fn content_from_attrs(a: Attrs<'_>) -> Content {
    Content {
        system: a.json("gen_ai.system_instructions").filter(|v| !v.is_null()).map(|v| match v {
            Json::String(s) => serde_json::json!([{"type": "text", "content": s}]),
            other => other,
        }),
        input: messages_attr(a, "gen_ai.input.messages"),
        output: messages_attr(a, "gen_ai.output.messages"),
        tools: a.json("gen_ai.tool.definitions").filter(|v| !v.is_null()),
        expected_outputs: 0,
        redactions: 0,
    }
}

/// The messages of a `gen_ai.input.messages` / `gen_ai.output.messages` attribute; a JSON string
/// already in the OTel shape is kept with its text (see [`Messages`]).
fn messages_attr(a: Attrs<'_>, key: &str) -> Messages {
    let Some(value) = a.get(key) else { return Messages::default() };
    let json = value_to_json_parsing_strings(value);
    match value {
        Value::StringValue(text) => Messages::parsed(json, text),
        _ => messages_from_json(json).into(),
    }
}

/// Content carried by one log record, if it is a GenAI content event.
pub fn log_content(log: &LogRecord, event_name: &str) -> Option<(Content, Convention)> {
    let body = || body_to_json(log.body.as_ref());
    let role = match event_name {
        DETAILS_EVENT => {
            let content = content_from_attrs(Attrs(&log.attributes));
            return (!content.is_empty()).then_some((content, Convention::OtelGenAiDetailsEvent));
        }
        "gen_ai.choice" => {
            let content = Content { output: vec![output_from_choice_body(body())].into(), ..Content::default() };
            return Some((content, Convention::OtelGenAiMessageEvents));
        }
        "gen_ai.system.message" => "system",
        "gen_ai.user.message" => "user",
        "gen_ai.assistant.message" => "assistant",
        "gen_ai.tool.message" => "tool",
        _ => return None,
    };
    let content = Content { input: vec![message_from_event_body(role, body())].into(), ..Content::default() };
    Some((content, Convention::OtelGenAiMessageEvents))
}
