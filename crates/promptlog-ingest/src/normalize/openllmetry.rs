//! OpenLLMetry (Traceloop): ≥ 0.55 is mostly the official attributes plus `gen_ai.is_streaming`,
//! `gen_ai.user`, `gen_ai.usage.total_tokens`; ≤ 0.54 used `llm.request.type`, flat
//! `gen_ai.prompt.{i}.*` / `gen_ai.completion.{i}.*`, `llm.request.functions.{i}.*` and `llm.*`
//! settings. Identity comes from `traceloop.association.properties.*` (see `identity.rs`).

use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value as Json, json};

use super::attrs::{Attrs, value_to_string};
use super::call::{delay_to_event, fill_if_empty, fill_if_zero};
use super::flat::unflatten;
use super::messages::{Content, parse_json_string, to_otel_message};
use crate::rows::LlmCallRow;

/// Instrumentation scopes of OpenLLMetry packages whose spans carry only the official attributes (no
/// `llm.request.type`, no `traceloop.*` keys unless traceloop-sdk is used): recorded
/// `opentelemetry-instrumentation-anthropic` 0.62.4 (`anthropic.chat` spans, `gen_ai.is_streaming`).
/// Not to be confused with the official `opentelemetry.instrumentation.genai.anthropic`.
pub const SCOPES: &[&str] = &["opentelemetry.instrumentation.anthropic"];

/// `llm.request.type` → operation.
pub fn operation(request_type: &str) -> &'static str {
    match request_type {
        "completion" => "text_completion",
        "embedding" => "embeddings",
        "rerank" => "rerank",
        _ => "chat",
    }
}

/// Older setting names → short names.
const LEGACY_PARAMS: &[(&str, &str)] = &[
    ("llm.frequency_penalty", "frequency_penalty"),
    ("llm.presence_penalty", "presence_penalty"),
    ("llm.top_k", "top_k"),
    ("llm.chat.stop_sequences", "stop_sequences"),
    ("gen_ai.is_streaming", "stream"),
    ("llm.is_streaming", "stream"),
    ("gen_ai.user", "user"),
    ("llm.user", "user"),
    ("gen_ai.request.reasoning_effort", "reasoning_effort"),
];

/// Fills the row and content from OpenLLMetry attributes.
pub fn fill(row: &mut LlmCallRow, content: &mut Content, span: &Span, a: Attrs<'_>) {
    if let Some(t) = a.str_ref("llm.request.type") {
        fill_if_empty(&mut row.operation, Some(operation(t).to_owned()));
    }
    for (key, short) in LEGACY_PARAMS {
        if let Some(v) = a.get(key)
            && !row.request_params.iter().any(|(k, _)| k == short)
        {
            row.request_params.push(((*short).to_owned(), value_to_string(v)));
        }
    }
    fill_if_zero(&mut row.reasoning_output_tokens, a.u64("llm.usage.reasoning_tokens"));
    if let Some(total) = a.u64("llm.usage.total_tokens") {
        row.total_tokens = total;
    }
    if row.finish_reasons.is_empty()
        && let Some(Json::Array(completions)) = unflatten(a.0, "gen_ai.completion")
    {
        row.finish_reasons =
            completions.iter().filter_map(|c| c.get("finish_reason")?.as_str().map(str::to_owned)).collect();
    }
    if row.time_to_first_token.is_none() {
        // Streaming: the first `*.content.completion.chunk` span event marks the first token.
        row.time_to_first_token = delay_to_event(span, |name| name.ends_with("content.completion.chunk"));
    }
    fill_content(content, a);
}

fn fill_content(content: &mut Content, a: Attrs<'_>) {
    if content.input.is_empty()
        && let Some(Json::Array(prompts)) = unflatten(a.0, "gen_ai.prompt")
    {
        content.input = prompts.into_iter().map(to_otel_message).collect();
    }
    if content.output.is_empty()
        && let Some(Json::Array(completions)) = unflatten(a.0, "gen_ai.completion")
    {
        content.output = completions
            .into_iter()
            .map(|mut c| {
                if let Some(obj) = c.as_object_mut() {
                    obj.entry("role").or_insert_with(|| json!("assistant"));
                }
                to_otel_message(c)
            })
            .collect();
    }
    if content.tools.is_none() {
        let defs = unflatten(a.0, "llm.request.functions").or_else(|| unflatten(a.0, "gen_ai.tool.definitions"));
        if let Some(Json::Array(defs)) = defs {
            let defs = defs.into_iter().map(|mut d| {
                if let Some(obj) = d.as_object_mut() {
                    obj.entry("type").or_insert_with(|| json!("function"));
                    if let Some(parameters) = obj.remove("parameters") {
                        obj.insert("parameters".into(), parse_json_string(parameters));
                    }
                }
                d
            });
            content.tools = Some(Json::Array(defs.collect()));
        }
    }
}
