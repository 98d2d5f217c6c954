//! Langfuse SDK attributes (`langfuse.observation.*`): model, usage and cost details, completion
//! start time, input and output. Identity keys are read in `identity.rs`.

use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value as Json;

use super::attrs::Attrs;
use super::call::{fill_if_empty, fill_if_zero, fill_total};
use super::messages::{Content, any_as_messages};
use crate::rows::LlmCallRow;

/// Fills what other conventions left empty.
pub fn fill(row: &mut LlmCallRow, content: &mut Content, span: &Span, a: Attrs<'_>) {
    fill_if_empty(&mut row.response_model, a.str("langfuse.observation.model.name"));
    fill_if_empty(&mut row.request_model, a.str("langfuse.observation.model.name"));
    if let Some(Json::Object(usage)) = a.json("langfuse.observation.usage_details") {
        let get = |keys: &[&str]| keys.iter().find_map(|k| usage.get(*k)?.as_u64());
        fill_if_zero(&mut row.input_tokens, get(&["input", "prompt_tokens", "input_tokens"]));
        fill_if_zero(&mut row.output_tokens, get(&["output", "completion_tokens", "output_tokens"]));
        fill_if_zero(&mut row.cache_read_input_tokens, get(&["input_cached_tokens", "cache_read_input_tokens"]));
        fill_total(row, get(&["total"]));
    }
    if row.cost_usd.is_none()
        && let Some(Json::Object(cost)) = a.json("langfuse.observation.cost_details")
    {
        row.cost_usd = cost.get("total").and_then(Json::as_f64);
    }
    if row.time_to_first_token.is_none()
        && let Some(start) = a.str_ref("langfuse.observation.completion_start_time")
        && let Ok(t) = humantime::parse_rfc3339_weak(start.trim_matches('"'))
        && let Ok(since_epoch) = t.duration_since(std::time::UNIX_EPOCH)
    {
        let delta = (since_epoch.as_nanos() as u64).checked_sub(span.start_time_unix_nano);
        row.time_to_first_token = delta.map(|d| d as f64 / 1e9);
    }
    if content.input.is_empty()
        && let Some(input) = a.json("langfuse.observation.input")
    {
        content.input = any_as_messages(input.get("messages").cloned().unwrap_or(input), "user").into();
    }
    if content.output.is_empty()
        && let Some(output) = a.json("langfuse.observation.output")
    {
        content.output = any_as_messages(output, "assistant").into();
    }
}
