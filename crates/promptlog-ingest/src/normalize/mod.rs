//! OTLP requests → typed rows. Pure functions: no I/O, no clocks except the `now` passed in.
//!
//! One generic walk over every signal's resources → scopes → records ([`normalize`]):
//! - every valid span becomes an `otel_traces` row; spans that are LLM operations in a known
//!   convention also become a [`NormalizedCall`];
//! - every valid log record becomes an `otel_logs` row; GenAI content events also become a
//!   [`ContentFragment`] that the join merges into its span's call;
//! - every valid metric data point becomes a row of its type's `otel_metrics_*` table
//!   (`metrics.rs`); metrics never go through the join.
//!
//! Invalid records (for metrics: data points) are skipped and counted in the [`Report`], which
//! becomes OTLP `partial_success`.

mod anthropic_sdk;
pub(crate) mod attrs;
mod call;
mod detect;
pub mod evaluation;
mod flat;
mod identity;
mod langfuse;
mod logfire;
pub(crate) mod messages;
pub mod metrics;
mod oi_output;
mod openinference;
mod openlit;
mod openllmetry;
pub(crate) mod otel_genai;
pub mod params;
mod prompt;
mod raw;
mod usage;
mod vercel;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

pub use attrs::format_f64;
use attrs::{Attrs, hex_id};
pub use call::{Convention, NormalizedCall};
pub use messages::{Content, Messages};
use raw::ResourceCtx;

use crate::Submission;
use crate::request::Request;
use crate::rows::{AttrMap, LlmCallRow};

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
    /// Rejected records the kept messages describe (a message may cover several).
    described: u64,
}

impl Report {
    pub(crate) fn reject(&mut self, what: impl FnOnce() -> String) {
        self.reject_n(1, what);
    }

    /// `n` records rejected for one reason (a metric rejected whole rejects each of its points).
    fn reject_n(&mut self, n: u64, what: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        if self.messages.len() < MAX_REPORTED_MESSAGES {
            let what = what();
            self.messages.push(if n == 1 { what } else { format!("{what} ({n} of them)") });
            self.described += n;
        }
    }

    /// The `partial_success.error_message`, empty when all went well.
    pub fn message(&self, kind: &str, limit: usize) -> String {
        let mut parts = Vec::new();
        if self.rejected > 0 {
            let more = self.rejected.saturating_sub(self.described);
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

/// GenAI content from a log record, keyed by the span it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentFragment {
    /// The project of the request it came in (set by the project stamp): content joins only a call
    /// of the same project.
    pub project_id: String,
    /// Hex trace id of the span.
    pub trace_id: String,
    /// Hex span id of the span.
    pub span_id: String,
    /// The content it carries.
    pub content: Content,
    /// The encoding it arrived in.
    pub convention: Convention,
}

/// Normalises a request: every valid record becomes a raw row, LLM operation spans also become
/// [`NormalizedCall`]s and GenAI content in log records [`ContentFragment`]s. `received_ns`
/// timestamps log records that carry no time at all.
pub fn normalize(request: &Request, limits: Limits, received_ns: i64) -> (Submission, Report) {
    let mut walk = Walk { limits, now_ns: received_ns, out: Submission::default(), report: Report::default() };
    match request {
        Request::Traces(r) => walk.resources(&r.resource_spans),
        Request::Logs(r) => walk.resources(&r.resource_logs),
        Request::Metrics(r) => walk.resources(&r.resource_metrics),
        Request::Scores(b) => crate::scores::add_rows(b, received_ns, &mut walk.out.scores, &mut walk.report),
    }
    (walk.out, walk.report)
}

/// The shape every OTLP signal shares: resources, each with scopes, each with records.
trait ResourceGroup {
    type Scope: ScopeGroup;
    fn resource(&self) -> Option<&Resource>;
    fn schema_url(&self) -> &str;
    fn scopes(&self) -> &[Self::Scope];
}

/// One scope's records.
trait ScopeGroup {
    type Record: OtlpRecord;
    fn scope(&self) -> Option<&InstrumentationScope>;
    fn schema_url(&self) -> &str;
    fn records(&self) -> &[Self::Record];
}

/// One record type: how it is validated and which rows it becomes.
trait OtlpRecord {
    /// `Err` with the reason shown to the client when the record is not stored.
    fn validate(&self) -> Result<(), String>;
    /// How many OTLP items rejecting it whole rejects (a metric: its data points).
    fn items(&self) -> u64 {
        1
    }
    /// Appends the record's rows.
    fn add_rows(&self, at: &Place<'_>, walk: &mut Walk, truncated: &mut usize);
}

/// Implements the two group traits for one signal's generated protobuf types.
macro_rules! otlp_groups {
    ($resource:ty, $scopes:ident, $scope:ty, $records:ident, $record:ty) => {
        impl ResourceGroup for $resource {
            type Scope = $scope;
            fn resource(&self) -> Option<&Resource> {
                self.resource.as_ref()
            }
            fn schema_url(&self) -> &str {
                &self.schema_url
            }
            fn scopes(&self) -> &[$scope] {
                &self.$scopes
            }
        }
        impl ScopeGroup for $scope {
            type Record = $record;
            fn scope(&self) -> Option<&InstrumentationScope> {
                self.scope.as_ref()
            }
            fn schema_url(&self) -> &str {
                &self.schema_url
            }
            fn records(&self) -> &[$record] {
                &self.$records
            }
        }
    };
}

otlp_groups!(ResourceSpans, scope_spans, ScopeSpans, spans, Span);
otlp_groups!(ResourceLogs, scope_logs, ScopeLogs, log_records, LogRecord);
otlp_groups!(ResourceMetrics, scope_metrics, ScopeMetrics, metrics, Metric);

/// Where a record sits: its resource and scope.
struct Place<'a> {
    res: &'a ResourceCtx,
    scope: Option<&'a InstrumentationScope>,
    scope_schema_url: &'a str,
}

/// The state of one normalisation.
struct Walk {
    limits: Limits,
    now_ns: i64,
    out: Submission,
    report: Report,
}

impl Walk {
    fn resources<G: ResourceGroup>(&mut self, groups: &[G]) {
        let max = self.limits.max_attribute_value_bytes;
        let mut truncated = 0usize;
        for group in groups {
            let res = ResourceCtx::new(group.resource(), group.schema_url(), max, &mut truncated);
            for scope in group.scopes() {
                let at = Place { res: &res, scope: scope.scope(), scope_schema_url: scope.schema_url() };
                for record in scope.records() {
                    match record.validate() {
                        Ok(()) => record.add_rows(&at, self, &mut truncated),
                        Err(why) => self.report.reject_n(record.items(), || why),
                    }
                }
            }
        }
        self.report.truncated += truncated as u64;
    }
}

impl OtlpRecord for Span {
    fn validate(&self) -> Result<(), String> {
        raw::validate_span(self).map_err(|e| format!("span {:?} ({}): {e}", self.name, hex_id(&self.span_id)))
    }

    fn add_rows(&self, at: &Place<'_>, walk: &mut Walk, truncated: &mut usize) {
        let max = walk.limits.max_attribute_value_bytes;
        let row = raw::span_row(self, at.res, at.scope, max, truncated);
        for event in self.events.iter().filter(|e| e.name == evaluation::EVALUATION_EVENT) {
            let time = i64::try_from(event.time_unix_nano).unwrap_or(i64::MAX);
            let at_ns = if time == 0 { row.timestamp } else { time };
            let score = evaluation::score(&event.attributes, &row.trace_id, &row.span_id, at_ns, walk.now_ns, max);
            walk.out.scores.extend(score);
        }
        if let Some(call) = llm_call_from_span(self, at.res, at.scope, &row.span_attributes) {
            walk.out.calls.push(call);
        }
        walk.out.spans.push(row);
    }
}

impl OtlpRecord for LogRecord {
    fn validate(&self) -> Result<(), String> {
        raw::validate_log(self).map_err(|e| format!("log record: {e}"))
    }

    fn add_rows(&self, at: &Place<'_>, walk: &mut Walk, truncated: &mut usize) {
        let max = walk.limits.max_attribute_value_bytes;
        let row = raw::log_row(self, at.res, at.scope, at.scope_schema_url, walk.now_ns, max, truncated);
        if !row.trace_id.is_empty()
            && !row.span_id.is_empty()
            && let Some((mut content, convention)) = otel_genai::log_content(self, &row.event_name)
        {
            content.redactions = Attrs(&self.attributes).u64(crate::process::redact::REDACTIONS_ATTRIBUTE).unwrap_or(0);
            walk.out.fragments.push(ContentFragment {
                project_id: String::new(),
                trace_id: row.trace_id.clone(),
                span_id: row.span_id.clone(),
                content,
                convention,
            });
        }
        if row.event_name == evaluation::EVALUATION_EVENT {
            let score =
                evaluation::score(&self.attributes, &row.trace_id, &row.span_id, row.timestamp, walk.now_ns, max);
            walk.out.scores.extend(score);
        }
        walk.out.logs.push(row);
    }
}

impl OtlpRecord for Metric {
    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("metric with an empty name".to_owned());
        }
        Ok(())
    }

    fn items(&self) -> u64 {
        metrics::points(self)
    }

    fn add_rows(&self, at: &Place<'_>, walk: &mut Walk, truncated: &mut usize) {
        let ctx = metrics::MetricCtx {
            res: at.res,
            scope: at.scope,
            scope_schema_url: at.scope_schema_url,
            max_value: walk.limits.max_attribute_value_bytes,
        };
        let report = &mut walk.report;
        let mut reject = |e: metrics::PointError| report.reject(|| format!("metric {:?} data point: {e}", self.name));
        metrics::add_rows(self, &ctx, &mut walk.out.metrics, truncated, &mut reject);
    }
}

/// Builds the LLM call of a validated span, if it is one in a known convention.
///
/// Precedence: the official OTel GenAI attributes are read first; the span's own convention
/// (detected from what it carries, see `detect.rs`) then fills what they left empty; Langfuse keys
/// and identity (session, user, tags, metadata) are read last, in their own precedence order. Then the
/// anthropic SDK's own `anthropic.*` attributes fill what is still missing (`anthropic_sdk.rs`), and the
/// provider-specific token rules make the counts inclusive (`usage.rs`).
fn llm_call_from_span(
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
    prompt::fill(&mut row, a);
    anthropic_sdk::fill(&mut row, a);
    usage::fix(&mut row, a);
    if row.operation.is_empty() {
        row.operation = "chat".to_owned();
    }
    params::canonicalize(&mut row.request_params);
    row.is_rollup |= call::is_rollup(&row.operation);
    let convention = if family == Convention::OtelGenAi { otel_convention } else { family };
    row.convention = convention.as_str().to_owned();
    let awaits_content = content.is_empty() && call::is_inference(&row.operation);
    content.expected_outputs = requested_choices(&row);
    Some(NormalizedCall { row, content, awaits_content })
}

/// How many choices the request asked for (`choice_count` from `gen_ai.request.choice.count`, or
/// OpenAI's `n` from invocation parameters), capped so a hostile value cannot stall the join.
fn requested_choices(row: &LlmCallRow) -> usize {
    let n = row.request_params.iter().find(|(k, _)| k == "choice_count" || k == "n");
    n.and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(1).clamp(1, 128)
}

#[cfg(test)]
mod tests;
