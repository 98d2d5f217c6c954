//! OTLP requests → typed rows. Pure functions: no I/O, no clocks except the `now` passed in.
//!
//! - [`normalize_traces`]: every valid span becomes an `otel_traces` row; spans that are LLM operations
//!   in a known convention also become a [`NormalizedCall`].
//! - [`normalize_logs`]: every valid record becomes an `otel_logs` row; GenAI content events also
//!   become a [`ContentFragment`] that the pipeline joins into its span's call.
//!
//! Invalid records are skipped and counted in the [`Report`], which becomes OTLP `partial_success`.

pub mod attrs;
pub mod call;
mod detect;
pub mod flat;
mod identity;
mod langfuse;
mod logfire;
pub mod messages;
mod openinference;
mod openlit;
mod openllmetry;
pub mod otel_genai;
pub mod raw;
mod vercel;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::Span;

use attrs::{Attrs, hex_id};
pub use call::{Convention, NormalizedCall};
pub use messages::Content;
use raw::ResourceCtx;

use crate::rows::{AttrMap, LogRow, SpanRow};

/// How many distinct problem descriptions a report keeps (the count is always exact).
const MAX_REPORTED_MESSAGES: usize = 5;

/// Limits applied while normalising.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longer attribute values and bodies are truncated.
    pub max_attribute_value_bytes: usize,
}

/// What was wrong with a request: rejected records and truncated values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// Records not stored.
    pub rejected: u64,
    /// Attribute values shortened to the limit (records still stored).
    pub truncated: u64,
    messages: Vec<String>,
}

impl Report {
    fn reject(&mut self, what: impl FnOnce() -> String) {
        self.rejected += 1;
        if self.messages.len() < MAX_REPORTED_MESSAGES {
            self.messages.push(what());
        }
    }

    /// The `partial_success.error_message`, empty when all went well.
    pub fn message(&self, kind: &str, limit: usize) -> String {
        let mut parts = Vec::new();
        if self.rejected > 0 {
            let more = self.rejected.saturating_sub(self.messages.len() as u64);
            let suffix = if more > 0 { format!("; and {more} more") } else { String::new() };
            parts.push(format!("rejected {} of the {kind}: {}{suffix}", self.rejected, self.messages.join("; ")));
        }
        if self.truncated > 0 {
            // Content columns of llm_calls keep the full text (bounded by the request size cap).
            parts.push(format!(
                "truncated {} attribute value(s) longer than {limit} bytes in the stored attributes",
                self.truncated
            ));
        }
        parts.join(". ")
    }
}

/// Rows made from one trace export request.
#[derive(Debug, Default)]
pub struct TracesBatch {
    /// `otel_traces` rows.
    pub spans: Vec<SpanRow>,
    /// LLM calls found among the spans.
    pub calls: Vec<NormalizedCall>,
    /// Rejections and truncations.
    pub report: Report,
}

/// GenAI content from a log record, keyed by the span it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentFragment {
    /// Hex trace id of the span.
    pub trace_id: String,
    /// Hex span id of the span.
    pub span_id: String,
    /// The content it carries.
    pub content: Content,
    /// The encoding it arrived in.
    pub convention: Convention,
}

/// Rows made from one logs export request.
#[derive(Debug, Default)]
pub struct LogsBatch {
    /// `otel_logs` rows.
    pub logs: Vec<LogRow>,
    /// GenAI content for the join.
    pub fragments: Vec<ContentFragment>,
    /// Rejections and truncations.
    pub report: Report,
}

/// Normalises a trace export request.
pub fn normalize_traces(req: &ExportTraceServiceRequest, limits: Limits) -> TracesBatch {
    let mut out = TracesBatch::default();
    let max = limits.max_attribute_value_bytes;
    let mut truncated = 0usize;
    for rs in &req.resource_spans {
        let res = ResourceCtx::new(rs.resource.as_ref(), &rs.schema_url, max, &mut truncated);
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref();
            out.spans.reserve(ss.spans.len());
            for span in &ss.spans {
                if let Err(e) = raw::validate_span(span) {
                    out.report.reject(|| format!("span {:?} ({}): {e}", span.name, hex_id(&span.span_id)));
                    continue;
                }
                let row = raw::span_row(span, &res, scope, max, &mut truncated);
                if let Some(call) = llm_call_from_span(span, &res, scope, &row.span_attributes) {
                    out.calls.push(call);
                }
                out.spans.push(row);
            }
        }
    }
    out.report.truncated = truncated as u64;
    out
}

/// Builds the LLM call of a validated span, if it is one in a known convention.
///
/// Precedence: the official OTel GenAI attributes are read first; the span's own convention
/// (detected from what it carries, see `detect.rs`) then fills what they left empty; Langfuse keys
/// and identity (session, user, tags, metadata) are read last, in their own precedence order.
pub fn llm_call_from_span(
    span: &Span,
    res: &ResourceCtx,
    scope: Option<&InstrumentationScope>,
    span_attributes: &AttrMap,
) -> Option<NormalizedCall> {
    let a = Attrs(&span.attributes);
    if logfire::is_placeholder(span, a) {
        return None;
    }
    let family = detect::family(a, scope)?;
    let mut row = call::base_row(span, res, scope, span_attributes);
    otel_genai::fill_row(&mut row, a);
    let (mut content, otel_convention) =
        otel_genai::span_content(span, a).unwrap_or((Content::default(), Convention::OtelGenAi));
    match family {
        Convention::OpenInference => openinference::fill(&mut row, &mut content, span, a),
        Convention::OpenLlmetry => openllmetry::fill(&mut row, &mut content, span, a),
        Convention::OpenLit => openlit::fill(&mut row, a),
        Convention::Logfire => logfire::fill(&mut row, &mut content, a),
        Convention::VercelAi => vercel::fill(&mut row, &mut content, a),
        _ => {}
    }
    langfuse::fill(&mut row, &mut content, span, a);
    identity::fill(&mut row, a);
    if row.operation.is_empty() {
        row.operation = "chat".to_owned();
    }
    row.is_rollup |= call::is_rollup(&row.operation);
    let convention = if family == Convention::OtelGenAi { otel_convention } else { family };
    row.convention = convention.as_str().to_owned();
    let awaits_content = content.is_empty() && call::is_inference(&row.operation);
    content.expected_outputs = requested_choices(&row);
    Some(NormalizedCall { row, content, awaits_content })
}

/// How many choices the request asked for (`choice_count` from `gen_ai.request.choice.count`, or
/// OpenAI's `n` from invocation parameters), capped so a hostile value cannot stall the join.
fn requested_choices(row: &crate::rows::LlmCallRow) -> usize {
    let n = row.request_params.iter().find(|(k, _)| k == "choice_count" || k == "n");
    n.and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(1).clamp(1, 128)
}

/// Normalises a logs export request; `now_ns` timestamps records that carry no time at all.
pub fn normalize_logs(req: &ExportLogsServiceRequest, limits: Limits, now_ns: i64) -> LogsBatch {
    let mut out = LogsBatch::default();
    let max = limits.max_attribute_value_bytes;
    let mut truncated = 0usize;
    for rl in &req.resource_logs {
        let res = ResourceCtx::new(rl.resource.as_ref(), &rl.schema_url, max, &mut truncated);
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref();
            out.logs.reserve(sl.log_records.len());
            for log in &sl.log_records {
                if let Err(e) = raw::validate_log(log) {
                    out.report.reject(|| format!("log record: {e}"));
                    continue;
                }
                let row = raw::log_row(log, &res, scope, &sl.schema_url, now_ns, max, &mut truncated);
                if !row.trace_id.is_empty()
                    && !row.span_id.is_empty()
                    && let Some((content, convention)) = otel_genai::log_content(log, &row.event_name)
                {
                    out.fragments.push(ContentFragment {
                        trace_id: row.trace_id.clone(),
                        span_id: row.span_id.clone(),
                        content,
                        convention,
                    });
                }
                out.logs.push(row);
            }
        }
    }
    out.report.truncated = truncated as u64;
    out
}

#[cfg(test)]
mod tests;
