//! The anthropic Python SDK's own tracing (2.x, scope `com.anthropic.sdk.python`, or
//! `com.anthropic.sdk.python.<platform>` for Bedrock/Vertex/Foundry clients; on by default, through the
//! global or the client's `open_telemetry={"tracer_provider": …}` TracerProvider).
//!
//! One CLIENT span `anthropic.messages.create` per API call (all retries and the reading of the stream),
//! in the OTel GenAI conventions with the in-flight spellings and `anthropic.*` extras. What the official
//! reader (`otel_genai.rs`) already gets right: provider `anthropic`, operation `chat`, models, response
//! id, `gen_ai.usage.input_tokens` (the SDK sums input + cache read + cache write itself, the GenAI
//! meaning), `gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.cache_write.input_tokens` (the
//! semantic-conventions-genai rename of `cache_creation`), `gen_ai.request.max_tokens`,
//! `gen_ai.request.stream`, `gen_ai.request.stop_sequences` (content mode only),
//! `gen_ai.response.time_to_first_chunk` (streams: call start → first `content_block_delta`), content
//! as JSON strings in `content_mode="content"` (default `metadata_only`: none), `error.type` = the API
//! error envelope's type (`overloaded_error`).
//!
//! What this module adds:
//! * **finish reason**: the SDK records no `gen_ai.response.finish_reasons`, only
//!   `anthropic.message.stop_reason` (`end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, …) → filed
//!   as the call's `FinishReasons` (spelled as Anthropic does) when the official attribute is absent.
//!   Detected by the attribute itself, so any platform client's scope works.

use super::attrs::Attrs;
use crate::rows::LlmCallRow;

/// Attribute of the SDK span holding the Message's `stop_reason`.
pub const STOP_REASON: &str = "anthropic.message.stop_reason";

/// Fills what the SDK's span says in its own `anthropic.*` attributes.
pub fn fill(row: &mut LlmCallRow, a: Attrs<'_>) {
    if row.finish_reasons.is_empty()
        && let Some(reason) = a.str(STOP_REASON)
    {
        row.finish_reasons = vec![reason];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptlog_otlp::{kv, kv_strs};

    #[test]
    fn stop_reason_is_the_finish_reason_unless_the_official_attribute_is_there() {
        let cases: &[(Vec<_>, &[&str])] = &[
            (vec![kv(STOP_REASON, "end_turn")], &["end_turn"]),
            (vec![kv(STOP_REASON, "tool_use")], &["tool_use"]),
            (vec![kv(STOP_REASON, "")], &[]),
            (vec![], &[]),
        ];
        for (attrs, want) in cases {
            let mut row = LlmCallRow::default();
            fill(&mut row, Attrs(attrs));
            assert_eq!(row.finish_reasons, *want, "{attrs:?}");
        }
        // Already filled from gen_ai.response.finish_reasons: kept.
        let attrs = vec![kv(STOP_REASON, "end_turn"), kv_strs("gen_ai.response.finish_reasons", &["stop"])];
        let mut row = LlmCallRow { finish_reasons: vec!["stop".into()], ..LlmCallRow::default() };
        fill(&mut row, Attrs(&attrs));
        assert_eq!(row.finish_reasons, ["stop"]);
    }
}
