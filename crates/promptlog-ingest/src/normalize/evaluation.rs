//! OTel GenAI evaluations arriving as OTLP: log records and span events named
//! `gen_ai.evaluation.result` become `scores` rows (in addition to their log row or span row).
//!
//! Target: the call with `gen_ai.response.id` when the record names one, else the span the record
//! belongs to (a span event's own span; a log record's trace context), else its trace. A record
//! without any of them, or without `gen_ai.evaluation.name`, stays a plain log row / event.
//! The score id is derived from the record (trace, span, name, time, response id), so the same
//! evaluation exported twice is one score.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::attrs::{Attrs, to_attr_map};
use crate::rows::{AttrMap, ScoreRow};
use crate::scores::proto::ScoreSource;
use crate::scores::{parse_source, source_name};

/// The event name of an evaluation result.
pub const EVALUATION_EVENT: &str = "gen_ai.evaluation.result";
/// `gen_ai.evaluation.name`.
pub const NAME: &str = "gen_ai.evaluation.name";
/// `gen_ai.evaluation.score.value`.
pub const SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
/// `gen_ai.evaluation.score.label`.
pub const SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
/// `gen_ai.evaluation.explanation`.
pub const EXPLANATION: &str = "gen_ai.evaluation.explanation";
/// `gen_ai.response.id`.
pub const RESPONSE_ID: &str = "gen_ai.response.id";
/// Who evaluated (`llm`, `code`, `annotator`, `end_user`): not in the conventions yet; promptlog's
/// own spelling, defaulting to `llm` (evaluators are mostly LLM judges).
pub const SOURCE: &str = "gen_ai.evaluation.source";
/// Attributes that become columns (the rest go to `Metadata`).
const COLUMNS: [&str; 6] = [NAME, SCORE_VALUE, SCORE_LABEL, EXPLANATION, RESPONSE_ID, SOURCE];

/// The score of an evaluation record with `attributes`, at `time_ns`, in span `trace_id`/`span_id`
/// (hex, empty when none), received at `received_ns`.
pub(super) fn score(
    attributes: &[KeyValue],
    trace_id: &str,
    span_id: &str,
    time_ns: i64,
    received_ns: i64,
    max_value: usize,
) -> Option<ScoreRow> {
    let a = Attrs(attributes);
    let name = a.str(NAME)?;
    let response_id = a.str(RESPONSE_ID).unwrap_or_default();
    let target_kind = match () {
        _ if !response_id.is_empty() => "response",
        _ if !trace_id.is_empty() && !span_id.is_empty() => "span",
        _ if !trace_id.is_empty() => "trace",
        _ => return None,
    };
    let value = a.f64(SCORE_VALUE);
    let label = a.str(SCORE_LABEL).unwrap_or_default();
    let comment = a.str(EXPLANATION).unwrap_or_default();
    let data_type = match () {
        _ if value.is_some() => "numeric",
        _ if !label.is_empty() => "categorical",
        _ => "text",
    };
    let source = a.str(SOURCE).and_then(|s| parse_source(&s).ok()).unwrap_or(ScoreSource::Llm);
    let rest: Vec<KeyValue> = attributes.iter().filter(|kv| !COLUMNS.contains(&kv.key.as_str())).cloned().collect();
    let mut metadata = AttrMap::new();
    // Truncations are counted once, for the record's own log or span row, which holds the same values.
    to_attr_map(&rest, max_value, &mut metadata);
    let key = [trace_id, span_id, &name, &time_ns.to_string(), &response_id].join("\u{0}");
    Some(ScoreRow {
        score_id: format!("otel-{:016x}", twox_hash::XxHash64::oneshot(0, key.as_bytes())),
        version: u64::try_from(received_ns).unwrap_or(0),
        timestamp: time_ns,
        target_kind: target_kind.to_owned(),
        trace_id: trace_id.to_owned(),
        span_id: span_id.to_owned(),
        response_id,
        name,
        data_type: data_type.to_owned(),
        value,
        label,
        comment,
        source: source_name(source).to_owned(),
        metadata,
        ..ScoreRow::default()
    })
}
