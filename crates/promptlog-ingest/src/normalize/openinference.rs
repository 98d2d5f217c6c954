//! OpenInference (Arize Phoenix): `openinference.span.kind`, `llm.*` attributes, flattened
//! `llm.input_messages.{i}.message.*`, `input.value` / `output.value`, `llm.token_count.*`.
//! Fills only what the official attributes (read first) left empty.

use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value as Json, json};

use super::attrs::{Attrs, format_f64};
use super::call::{delay_to_event, fill_if_empty, fill_if_zero, fill_total, normalize_provider};
use super::flat::unflatten;
use super::messages::{Content, any_as_messages, messages_from_json, parse_json_string, to_otel_message};
use crate::rows::LlmCallRow;

/// Maps `openinference.span.kind` to an operation; `None` for kinds that are not LLM operations
/// (CHAIN, GUARDRAIL, EVALUATOR, PROMPT: glue spans that would only clutter `llm_calls`).
pub fn operation(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "LLM" => "chat",
        "EMBEDDING" => "embeddings",
        "TOOL" => "execute_tool",
        "AGENT" => "invoke_agent",
        "RETRIEVER" => "retrieval",
        "RERANKER" => "rerank",
        _ => return None,
    })
}

/// Invocation parameters that are not settings (they are the request itself).
const NOT_PARAMS: &[&str] = &["model", "messages", "tools", "functions", "input", "prompt"];

/// Fills the row and content from OpenInference attributes.
pub fn fill(row: &mut LlmCallRow, content: &mut Content, span: &Span, a: Attrs<'_>) {
    if let Some(op) = a.str_ref("openinference.span.kind").and_then(operation) {
        fill_if_empty(&mut row.operation, Some(op.to_owned()));
    }
    let provider = a.str("llm.provider").or_else(|| a.str("llm.system")).map(|p| normalize_provider(&p));
    fill_if_empty(&mut row.provider, provider);
    // Embedding spans use `embedding.*` where LLM spans use `llm.*`.
    let params: Option<serde_json::Map<String, Json>> = a
        .str_ref("llm.invocation_parameters")
        .or_else(|| a.str_ref("embedding.invocation_parameters"))
        .and_then(|s| serde_json::from_str(s).ok());
    let requested = params.as_ref().and_then(|p| p.get("model")).and_then(Json::as_str).map(str::to_owned);
    // The invocation parameters hold what was asked for; OpenInference's GenAI mode writes the
    // response model into `gen_ai.request.model`, so they override it.
    match requested.or_else(|| a.str("llm.request.model_name")) {
        Some(model) => row.request_model = model,
        None => {
            fill_if_empty(&mut row.request_model, a.str("llm.model_name").or_else(|| a.str("embedding.model_name")))
        }
    }
    // `llm.model_name` is the response model only where the span does not tell the two apart: spans that
    // carry `llm.request.model_name` (openinference-instrumentation-anthropic 3.x) put the *request* model
    // there on a failed call, which has no response model.
    let response_model = match a.get("llm.request.model_name") {
        Some(_) => a.str("llm.response.model_name"),
        None => a.str("llm.response.model_name").or_else(|| a.str("llm.model_name")),
    };
    fill_if_empty(&mut row.response_model, response_model.or_else(|| a.str("embedding.model_name")));
    for (key, value) in params.iter().flatten().filter(|(k, _)| !NOT_PARAMS.contains(&k.as_str())) {
        // Renames (`stop`, `n`, `max_completion_tokens`, …) are params.rs's.
        if !row.request_params.iter().any(|(k, _)| k == key) {
            row.request_params.push((key.clone(), json_param(value)));
        }
    }
    fill_usage(row, a);
    if row.cost_usd.is_none() {
        row.cost_usd = a.f64("llm.cost.total");
    }
    if row.finish_reasons.is_empty()
        && let Some(reason) = a.str("llm.finish_reason")
    {
        row.finish_reasons = vec![reason];
    }
    if row.time_to_first_token.is_none() {
        // Streaming: OpenInference records a `First Token Stream Event` span event.
        row.time_to_first_token = delay_to_event(span, |name| name == "First Token Stream Event");
    }
    fill_content(content, a);
    super::oi_output::fill(row, a);
}

/// A parameter value as a string: strings bare, numbers shortest, everything else JSON.
pub fn json_param(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.as_f64().filter(|_| n.is_f64()).map(format_f64).unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
}

fn fill_usage(row: &mut LlmCallRow, a: Attrs<'_>) {
    fill_if_zero(&mut row.input_tokens, a.u64("llm.token_count.prompt"));
    fill_if_zero(&mut row.output_tokens, a.u64("llm.token_count.completion"));
    fill_if_zero(&mut row.cache_read_input_tokens, a.u64("llm.token_count.prompt_details.cache_read"));
    fill_if_zero(&mut row.cache_write_input_tokens, a.u64("llm.token_count.prompt_details.cache_write"));
    fill_if_zero(&mut row.reasoning_output_tokens, a.u64("llm.token_count.completion_details.reasoning"));
    fill_total(row, a.u64("llm.token_count.total"));
}

fn fill_content(content: &mut Content, a: Attrs<'_>) {
    if content.input.is_empty() {
        content.input = indexed_messages(a, "llm.input_messages").into();
    }
    if content.output.is_empty() {
        content.output = indexed_messages(a, "llm.output_messages").into();
    }
    // Completions API spans carry prompts and choices instead of messages.
    if content.input.is_empty()
        && let Some(Json::Array(prompts)) = unflatten(a.0, "llm.prompts")
    {
        content.input = prompts
            .iter()
            .filter_map(|p| p.pointer("/prompt/text"))
            .map(|t| json!({"role": "user", "content": t}))
            .map(to_otel_message)
            .collect();
    }
    if content.tools.is_none()
        && let Some(Json::Array(tools)) = unflatten(a.0, "llm.tools")
    {
        let defs: Vec<Json> =
            tools.iter().filter_map(|t| t.pointer("/tool/json_schema")).cloned().map(parse_json_string).collect();
        content.tools = (!defs.is_empty()).then_some(Json::Array(defs));
    }
    if content.input.is_empty()
        && let Some(Json::Array(embeddings)) = unflatten(a.0, "embedding.embeddings")
    {
        let texts = embeddings.iter().filter_map(|e| e.pointer("/embedding/text")?.as_str());
        content.input = texts.map(|t| json!({"role": "user", "content": t})).map(to_otel_message).collect();
    }
    // Last resort: the raw input/output values (tool, retriever and agent spans).
    if content.input.is_empty()
        && let Some(v) = a.json("input.value")
    {
        content.input = match v.get("messages") {
            Some(messages) => messages_from_json(messages.clone()).into(),
            None => any_as_messages(v, "user").into(),
        };
    }
    if content.output.is_empty()
        && let Some(v) = a.json("output.value")
        && v.get("choices").is_none()
    {
        content.output = any_as_messages(v, "assistant").into();
    }
}

/// `prefix.{i}.message.{role, content, contents, tool_calls, tool_call_id, name}` → OTel messages.
fn indexed_messages(a: Attrs<'_>, prefix: &str) -> Vec<Json> {
    let Some(Json::Array(items)) = unflatten(a.0, prefix) else { return Vec::new() };
    items.into_iter().filter_map(|item| item.get("message").cloned()).map(openai_shape).map(to_otel_message).collect()
}

/// OpenInference's message object → the OpenAI shape `to_otel_message` understands.
fn openai_shape(m: Json) -> Json {
    let mut out = serde_json::Map::new();
    for key in ["role", "content", "tool_call_id", "name"] {
        if let Some(v) = m.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(Json::Array(contents)) = m.get("contents") {
        let parts: Vec<Json> = contents
            .iter()
            .filter_map(|c| c.get("message_content"))
            .map(|c| match c.get("type").and_then(Json::as_str) {
                Some("image") => json!({"type": "image_url", "image_url": {"url": c.pointer("/image/image/url")}}),
                _ => json!({"type": "text", "text": c.get("text")}),
            })
            .collect();
        out.insert("content".into(), Json::Array(parts));
    }
    if let Some(Json::Array(calls)) = m.get("tool_calls") {
        let calls: Vec<Json> = calls
            .iter()
            .filter_map(|c| c.get("tool_call"))
            .map(|c| json!({"id": c.get("id"), "function": {"name": c.pointer("/function/name"), "arguments": c.pointer("/function/arguments")}}))
            .collect();
        out.insert("tool_calls".into(), Json::Array(calls));
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptlog_otlp::kv;

    #[test]
    fn response_model_needs_a_response_where_request_and_response_are_told_apart() {
        // (attributes, response model)
        let cases: &[(&[(&str, &str)], &str)] = &[
            // openinference-instrumentation-openai: only llm.model_name, the response model.
            (&[("llm.model_name", "gpt-4o-2024-08-06")], "gpt-4o-2024-08-06"),
            // openinference-instrumentation-anthropic 3.x, success: both told apart.
            (
                &[
                    ("llm.request.model_name", "claude-sonnet-4-5"),
                    ("llm.response.model_name", "claude-sonnet-4-5-x"),
                    ("llm.model_name", "claude-sonnet-4-5-x"),
                ],
                "claude-sonnet-4-5-x",
            ),
            // … and a failed call: llm.model_name is the request model, there is no response model.
            (&[("llm.request.model_name", "claude-x"), ("llm.model_name", "claude-x")], ""),
        ];
        for (pairs, want) in cases {
            let attrs: Vec<_> = pairs.iter().map(|(k, v)| kv(k, *v)).collect();
            let mut row = LlmCallRow::default();
            fill(&mut row, &mut Content::default(), &Span::default(), Attrs(&attrs));
            assert_eq!(row.response_model, *want, "{pairs:?}");
        }
    }
}
