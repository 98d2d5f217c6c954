//! What OpenInference records only inside its `output.value` JSON, read after `openinference.rs`:
//!
//! - the provider response id: the openai instrumentation's `output.value` is the OpenAI response
//!   (`{"id": "chatcmpl-…", "object": "chat.completion" | "chat.completion.chunk", …}`); the LangChain
//!   instrumentation's is LangChain's `LLMResult` (`llm_output.id`, or the generation's
//!   `message.kwargs.response_metadata.id`; a streamed LangChain call has none anywhere);
//! - for LangChain runs, the response model (`llm.model_name` holds the *request* model on a stream)
//!   and whether the call streamed: the generation is a `ChatGenerationChunk` exactly when it did,
//!   while the invocation parameters say `"stream": false` for `.stream()` without `streaming=True`;
//! - LangChain's span status message is `repr(exception)` followed by the whole Python traceback: the
//!   error message keeps the part before it.

use serde_json::Value as Json;

use super::attrs::Attrs;
use super::call::fill_if_empty;
use crate::rows::LlmCallRow;

const TRACEBACK: &str = "Traceback (most recent call last):";

/// Fills the row from an OpenInference LLM span's `output.value`.
pub fn fill(row: &mut LlmCallRow, a: Attrs<'_>) {
    if let Some(cut) = row.error_message.find(TRACEBACK) {
        let head = row.error_message[..cut].trim_end().to_owned();
        if !head.is_empty() {
            row.error_message = head;
        }
    }
    if a.str_ref("openinference.span.kind") != Some("LLM") {
        return;
    }
    let Some(out) = a.json("output.value") else { return };
    let s = |v: Option<&Json>| v.and_then(Json::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    if s(out.get("object")).is_some_and(|o| o.starts_with("chat.completion")) {
        fill_if_empty(&mut row.response_id, s(out.get("id")));
        return;
    }
    if s(out.get("type")).as_deref() != Some("LLMResult") {
        return;
    }
    let Some(generation) = out.pointer("/generations/0/0") else { return };
    let meta = generation.pointer("/message/kwargs/response_metadata");
    let id = s(out.pointer("/llm_output/id")).or_else(|| s(meta.and_then(|m| m.get("id"))));
    fill_if_empty(&mut row.response_id, id);
    let model = s(meta.and_then(|m| m.get("model_name")))
        .or_else(|| s(generation.pointer("/generation_info/model_name")))
        .or_else(|| s(out.pointer("/llm_output/model_name")));
    if let Some(model) = model {
        row.response_model = model;
    }
    let streamed = match s(generation.get("type")).as_deref() {
        Some("ChatGenerationChunk" | "GenerationChunk") => "true",
        Some("ChatGeneration" | "Generation") => "false",
        _ => return,
    };
    match row.request_params.iter_mut().find(|(k, _)| k == "stream") {
        Some((_, v)) => *v = streamed.to_owned(),
        None => row.request_params.push(("stream".to_owned(), streamed.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptlog_otlp::kv;

    fn filled(output: &Json, error_message: &str) -> LlmCallRow {
        let attrs = vec![kv("openinference.span.kind", "LLM"), kv("output.value", output.to_string())];
        let mut row = LlmCallRow {
            response_model: "gpt-4o".into(),
            error_message: error_message.into(),
            request_params: vec![("stream".into(), "false".into()), ("seed".into(), "1".into())],
            ..LlmCallRow::default()
        };
        fill(&mut row, Attrs(&attrs));
        row
    }

    #[test]
    fn output_value_table() {
        use serde_json::json;
        let meta = |id: &str| json!({"model_name": "gpt-4o-2024-08-06", "id": id});
        // (output.value, error message in, response id, response model, stream param, error message out)
        #[rustfmt::skip]
        let cases: Vec<(Json, &str, &str, &str, &str, &str)> = vec![
            // openai instrumentation: the OpenAI response itself.
            (json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "m"}), "", "chatcmpl-1", "gpt-4o", "false", ""),
            (json!({"id": "chatcmpl-2", "object": "chat.completion.chunk"}), "", "chatcmpl-2", "gpt-4o", "false", ""),
            // LangChain invoke(): llm_output.id, the model from response_metadata, stream stays false.
            (json!({"type": "LLMResult", "llm_output": {"id": "chatcmpl-3"}, "generations": [[{"type": "ChatGeneration",
                    "message": {"kwargs": {"response_metadata": meta("chatcmpl-3")}}}]]}),
             "", "chatcmpl-3", "gpt-4o-2024-08-06", "false", ""),
            // LangChain .stream(): no id anywhere, the response model from generation_info, stream made true.
            (json!({"type": "LLMResult", "llm_output": null, "generations": [[{"type": "ChatGenerationChunk",
                    "generation_info": {"model_name": "gpt-4o-2024-08-06"},
                    "message": {"kwargs": {"response_metadata": {"finish_reason": "stop"}}}}]]}),
             "", "", "gpt-4o-2024-08-06", "true", ""),
            // LangChain error: the traceback after the repr goes.
            (json!({"type": "LLMResult", "generations": [[{"type": "ChatGeneration", "message": {"kwargs": {}}}]]}),
             "Err('400 - no')Traceback (most recent call last):\n  File \"x.py\"", "", "gpt-4o", "false", "Err('400 - no')"),
            // Anything else is left alone.
            (json!({"answer": 42}), "plain error", "", "gpt-4o", "false", "plain error"),
        ];
        for (i, (out, err, id, model, stream, err_out)) in cases.iter().enumerate() {
            let row = filled(out, err);
            assert_eq!(row.response_id, *id, "case {i}");
            assert_eq!(row.response_model, *model, "case {i}");
            assert_eq!(row.request_params[0], ("stream".to_owned(), (*stream).to_owned()), "case {i}");
            assert_eq!(row.request_params[1].0, "seed", "case {i}");
            assert_eq!(row.error_message, *err_out, "case {i}");
        }
    }
}
