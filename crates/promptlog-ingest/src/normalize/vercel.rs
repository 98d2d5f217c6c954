//! Vercel AI SDK ≤ v6 (`ai.*` spans). The outer `ai.generateText` / `ai.streamText` / `ai.embed…`
//! spans repeat the usage of their inner `.doGenerate` / `.doStream` / `.doEmbed` provider calls, so
//! they are marked `IsRollup`. v7 emits the official conventions and needs nothing here.

use serde_json::{Value as Json, json};

use super::attrs::{Attrs, value_to_string};
use super::call::{fill_if_empty, fill_if_zero, fill_total, normalize_provider};
use super::messages::{Content, any_as_messages, messages_from_json, parse_json_string, text_message};
use crate::rows::LlmCallRow;

/// `ai.operationId` → (operation, is_rollup); `None` when it is not an AI SDK operation.
pub fn operation(operation_id: &str) -> Option<(&'static str, bool)> {
    let (base, inner) = match operation_id.split_once(".do") {
        Some((base, _)) => (base, true),
        None => (operation_id, false),
    };
    let op = match base {
        "ai.generateText" | "ai.streamText" | "ai.generateObject" | "ai.streamObject" => "chat",
        "ai.embed" | "ai.embedMany" => "embeddings",
        "ai.toolCall" => return Some(("execute_tool", false)),
        _ => return None,
    };
    Some((op, !inner))
}

/// Fills the row and content from `ai.*` attributes.
pub fn fill(row: &mut LlmCallRow, content: &mut Content, a: Attrs<'_>) {
    if let Some((op, rollup)) = a.str_ref("ai.operationId").and_then(operation) {
        fill_if_empty(&mut row.operation, Some(op.to_owned()));
        row.is_rollup |= rollup;
    }
    fill_if_empty(&mut row.request_model, a.str("ai.model.id"));
    fill_if_empty(&mut row.response_model, a.str("ai.response.model"));
    if let Some(raw) = a.str_ref("ai.model.provider") {
        // `openai.chat`, `anthropic.messages`, `openai.embedding`: the provider, then the API. The
        // inner spans copy it verbatim into `gen_ai.system`, which the official pass has already read.
        if row.provider.is_empty() || row.provider == normalize_provider(raw) {
            row.provider = normalize_provider(raw.split('.').next().unwrap_or(raw));
        }
    }
    fill_if_empty(&mut row.response_id, a.str("ai.response.id"));
    if row.finish_reasons.is_empty()
        && let Some(reason) = a.str("ai.response.finishReason")
    {
        row.finish_reasons = vec![reason];
    }
    for kv in a.0 {
        if let Some(setting) = kv.key.strip_prefix("ai.settings.")
            && !setting.contains('.')
            && let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref())
        {
            // `max_output_tokens` → `max_tokens`, `max_retries` (client policy) dropped: params.rs.
            let short = snake_case(setting);
            if !row.request_params.iter().any(|(k, _)| *k == short) {
                row.request_params.push((short, value_to_string(v)));
            }
        }
    }
    fill_usage(row, a);
    if row.time_to_first_token.is_none() {
        row.time_to_first_token =
            a.f64("ai.response.msToFirstChunk").or_else(|| a.f64("ai.stream.msToFirstChunk")).map(|ms| ms / 1000.0);
    }
    fill_content(content, a);
}

fn fill_usage(row: &mut LlmCallRow, a: Attrs<'_>) {
    // Embeddings (`ai.embed`, `ai.embedMany` and their `.doEmbed`) report only `ai.usage.tokens`.
    fill_if_zero(
        &mut row.input_tokens,
        a.first_u64(&["ai.usage.inputTokens", "ai.usage.promptTokens", "ai.usage.tokens"]),
    );
    fill_if_zero(&mut row.output_tokens, a.first_u64(&["ai.usage.outputTokens", "ai.usage.completionTokens"]));
    // v6 records both the flat (deprecated) keys and the `…TokenDetails.*` ones.
    fill_if_zero(
        &mut row.reasoning_output_tokens,
        a.first_u64(&["ai.usage.reasoningTokens", "ai.usage.outputTokenDetails.reasoningTokens"]),
    );
    fill_if_zero(
        &mut row.cache_read_input_tokens,
        a.first_u64(&["ai.usage.cachedInputTokens", "ai.usage.inputTokenDetails.cacheReadTokens"]),
    );
    fill_if_zero(&mut row.cache_write_input_tokens, a.first_u64(&["ai.usage.inputTokenDetails.cacheWriteTokens"]));
    fill_total(row, a.u64("ai.usage.totalTokens"));
}

fn fill_content(content: &mut Content, a: Attrs<'_>) {
    if content.input.is_empty() {
        if let Some(messages) = a.json("ai.prompt.messages") {
            content.input = messages_from_json(messages).into();
        } else if let Some(prompt) = a.json("ai.prompt") {
            // Outer spans: {system?, prompt?, messages?}.
            if let Some(system) = prompt.get("system").and_then(Json::as_str) {
                content.input.push(text_message("system", system));
            }
            match (prompt.get("messages"), prompt.get("prompt")) {
                (Some(messages), _) => content.input.extend(messages_from_json(messages.clone())),
                (None, Some(p)) => content.input.extend(any_as_messages(p.clone(), "user")),
                (None, None) => {}
            }
        } else if let Some(args) = a.json("ai.toolCall.args") {
            content.input = any_as_messages(args, "user").into();
        } else if let Some(values) = embedding_inputs(a) {
            content.input = values.iter().map(|v| text_message("user", v)).collect();
        }
        content.input.iter_mut().for_each(unwrap_tool_outputs);
    }
    if content.output.is_empty() {
        let mut parts = Vec::new();
        if let Some(text) = a.str("ai.response.text").or_else(|| a.str("ai.response.object")) {
            parts.push(json!({"type": "text", "content": text}));
        }
        if let Some(Json::Array(calls)) = a.json("ai.response.toolCalls") {
            for c in calls {
                let args =
                    c.get("args").or_else(|| c.get("input")).cloned().map(parse_json_string).unwrap_or(Json::Null);
                parts.push(json!({"type": "tool_call", "id": c.get("toolCallId"), "name": c.get("toolName"), "arguments": args}));
            }
        }
        if let Some(result) = a.json("ai.toolCall.result") {
            content.output = any_as_messages(result, "tool").into();
        } else if !parts.is_empty() {
            content.output = vec![json!({"role": "assistant", "parts": parts})].into();
        }
    }
    if content.tools.is_none()
        && let Some(Json::Array(tools)) = a.json("ai.prompt.tools")
    {
        let tools = tools.into_iter().map(|t| {
            let mut t = parse_json_string(t);
            // v5+ spell the JSON schema `inputSchema` (v4: `parameters`, as gen_ai.tool.definitions does).
            if let Some(obj) = t.as_object_mut()
                && !obj.contains_key("parameters")
                && let Some(schema) = obj.remove("inputSchema")
            {
                obj.insert("parameters".to_owned(), schema);
            }
            t
        });
        content.tools = Some(Json::Array(tools.collect()));
    }
}

/// `ai.values` (embedMany: an array of JSON-encoded values) or `ai.value` (embed: one JSON-encoded value),
/// as texts.
fn embedding_inputs(a: Attrs<'_>) -> Option<Vec<String>> {
    let decode = |raw: String| match serde_json::from_str::<Json>(&raw) {
        Ok(Json::String(s)) => s,
        _ => raw,
    };
    let values = match a.str_list("ai.values") {
        Some(list) => list,
        None => vec![a.str("ai.value")?],
    };
    let values: Vec<String> = values.into_iter().map(decode).collect();
    (!values.is_empty()).then_some(values)
}

/// v5+ tool results are `{type: "text" | "json" | "error-text" | "error-json", value}` (v4: the raw
/// result): keep the value as the part's `response`.
fn unwrap_tool_outputs(message: &mut Json) {
    let Some(Json::Array(parts)) = message.get_mut("parts") else { return };
    for part in parts {
        if part.get("type").and_then(Json::as_str) != Some("tool_call_response") {
            continue;
        }
        let Some(Json::Object(output)) = part.get_mut("response") else { continue };
        let typed =
            matches!(output.get("type").and_then(Json::as_str), Some("text" | "json" | "error-text" | "error-json"));
        if typed
            && output.len() == 2
            && let Some(value) = output.remove("value")
        {
            part["response"] = value;
        }
    }
}

fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids() {
        assert_eq!(operation("ai.generateText"), Some(("chat", true)));
        assert_eq!(operation("ai.generateText.doGenerate"), Some(("chat", false)));
        assert_eq!(operation("ai.streamText.doStream"), Some(("chat", false)));
        assert_eq!(operation("ai.embedMany.doEmbed"), Some(("embeddings", false)));
        assert_eq!(operation("ai.toolCall"), Some(("execute_tool", false)));
        assert_eq!(operation("other"), None);
        assert_eq!(snake_case("topP"), "top_p");
    }
}
