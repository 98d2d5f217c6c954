//! Logfire and Pydantic AI: `request_data` / `response_data` JSON (instrument_openai v1), the
//! official attributes (v2 / `latest`), `logfire.tags`, Pydantic AI's `events` and
//! `pydantic_ai.all_messages`. Pending spans are placeholders, and a streamed call is reported by a
//! separate `streaming response …` log-span that carries the response and usage.

use serde_json::Value as Json;

use opentelemetry_proto::tonic::trace::v1::Span;

use super::attrs::Attrs;
use super::call::fill_if_empty;
use super::messages::{Content, any_as_messages, message_from_event_body, messages_from_json, output_from_choice_body};
use super::openinference::json_param;
use super::raw::status_code_name;
use crate::rows::LlmCallRow;

/// Request fields that are not settings.
const NOT_PARAMS: &[&str] = &["model", "messages", "tools", "input", "instructions", "stream_options"];

/// Spans that must not become calls: Logfire's `pending_span` placeholders, and the parent span of a
/// streamed call, which ends before the stream does and carries no response, usage or error (its
/// sibling `streaming response …` log-span is the call).
pub fn is_placeholder(span: &Span, a: Attrs<'_>) -> bool {
    match a.str_ref("logfire.span_type") {
        Some("pending_span") => true,
        Some("span") => {
            let llm_template = a.str_ref("logfire.msg_template").is_some_and(|t| {
                ["Chat Completion", "Responses API", "Completion with"].iter().any(|p| t.starts_with(p))
            });
            let has_result = ["response_data", "gen_ai.output.messages", "gen_ai.usage.input_tokens", "error.type"]
                .iter()
                .any(|k| a.get(k).is_some());
            llm_template && !has_result && status_code_name(span) != "Error"
        }
        _ => false,
    }
}

/// Fills the row and content from Logfire / Pydantic AI attributes.
pub fn fill(row: &mut LlmCallRow, content: &mut Content, a: Attrs<'_>) {
    // The streaming log-span has no duration of its own; its `duration` attribute (seconds) is the call's.
    if row.duration == 0
        && let Some(seconds) = a.f64("duration")
    {
        row.duration = (seconds * 1e9) as u64;
    }
    if let Some(request) = a.json("request_data") {
        fill_if_empty(&mut row.request_model, request.get("model").and_then(Json::as_str).map(str::to_owned));
        if let Some(Json::Object(fields)) = Some(&request) {
            for (key, value) in fields.iter().filter(|(k, _)| !NOT_PARAMS.contains(&k.as_str())) {
                // Renames (`stop`, `max_completion_tokens`, …) are params.rs's.
                if !row.request_params.iter().any(|(k, _)| k == key) {
                    row.request_params.push((key.clone(), json_param(value)));
                }
            }
        }
        if content.input.is_empty()
            && let Some(messages) = request.get("messages").or_else(|| request.get("input"))
        {
            content.input = any_as_messages(messages.clone(), "user").into();
        }
        if content.tools.is_none() {
            content.tools = request.get("tools").cloned();
        }
    }
    if content.output.is_empty()
        && let Some(response) = a.json("response_data")
        && let Some(message) = response.get("message")
    {
        let mut message = message.clone();
        if let Some(obj) = message.as_object_mut() {
            obj.retain(|_, v| !v.is_null());
        }
        content.output = messages_from_json(Json::Array(vec![message])).into();
    }
    fill_pydantic_ai(content, a);
}

/// Pydantic AI v1 puts events in an `events` JSON array; v2+ agent spans have `pydantic_ai.all_messages`.
fn fill_pydantic_ai(content: &mut Content, a: Attrs<'_>) {
    if content.is_empty()
        && let Some(Json::Array(events)) = a.json("events")
    {
        for event in events {
            let name = event.get("event.name").and_then(Json::as_str).unwrap_or_default();
            match name {
                "gen_ai.choice" => content.output.push(output_from_choice_body(Some(event.clone()))),
                "gen_ai.system.message"
                | "gen_ai.user.message"
                | "gen_ai.assistant.message"
                | "gen_ai.tool.message" => {
                    let role = name.trim_start_matches("gen_ai.").trim_end_matches(".message");
                    content.input.push(message_from_event_body(role, Some(event.clone())));
                }
                _ => {}
            }
        }
    }
    if content.input.is_empty()
        && let Some(all) = a.json("pydantic_ai.all_messages")
    {
        content.input = messages_from_json(all).into();
    }
}
