//! Typed rows, one struct per ClickHouse table.
//!
//! These structs are the single source of truth for each table's column list: the writer inserts them
//! with `clickhouse::Row` (derived with the `clickhouse` feature), whose column names come from the
//! field names below, and the ClickHouse client checks them against the table's schema on every
//! insert. Each row type names its table through [`TableRow`](crate::table::TableRow).

use serde::{Deserialize, Serialize};

mod metrics;
mod scores;
pub use metrics::{ExpHistogramRow, GaugeRow, HistogramRow, MetricHead, MetricRows, SumRow, SummaryRow};
pub use scores::ScoreRow;

/// A ClickHouse `Map(LowCardinality(String), String)`, kept as an ordered list of pairs: it preserves
/// the order the client sent and costs no hashing on the hot path.
pub type AttrMap = Vec<(String, String)>;

/// An [`AttrMap`] shared by every row of one resource (its attributes), so a 500-span request
/// holds them once rather than once per row; serialised exactly like the map itself.
pub type SharedAttrMap = std::sync::Arc<AttrMap>;

/// One span in `otel_traces` (OpenTelemetry Collector ClickHouse exporter layout).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
#[serde(rename_all = "PascalCase")]
pub struct SpanRow {
    /// The project of the API key the row arrived with (`default` when auth is off); never taken
    /// from the data itself.
    pub project_id: String,
    /// Span start, nanoseconds since the Unix epoch (`DateTime64(9)`).
    pub timestamp: i64,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub trace_state: String,
    pub span_name: String,
    pub span_kind: String,
    pub service_name: String,
    pub resource_attributes: SharedAttrMap,
    pub scope_name: String,
    pub scope_version: String,
    pub span_attributes: AttrMap,
    /// End minus start, nanoseconds.
    pub duration: u64,
    pub status_code: String,
    pub status_message: String,
    #[serde(rename = "Events.Timestamp")]
    pub events_timestamp: Vec<i64>,
    #[serde(rename = "Events.Name")]
    pub events_name: Vec<String>,
    #[serde(rename = "Events.Attributes")]
    pub events_attributes: Vec<AttrMap>,
    #[serde(rename = "Links.TraceId")]
    pub links_trace_id: Vec<String>,
    #[serde(rename = "Links.SpanId")]
    pub links_span_id: Vec<String>,
    #[serde(rename = "Links.TraceState")]
    pub links_trace_state: Vec<String>,
    #[serde(rename = "Links.Attributes")]
    pub links_attributes: Vec<AttrMap>,
}

/// One log record in `otel_logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
#[serde(rename_all = "PascalCase")]
pub struct LogRow {
    /// The project of the API key the row arrived with (`default` when auth is off); never taken
    /// from the data itself.
    pub project_id: String,
    /// Record time, or the observed time when the record has none (ns since the epoch).
    pub timestamp: i64,
    pub trace_id: String,
    pub span_id: String,
    pub trace_flags: u8,
    pub severity_text: String,
    pub severity_number: u8,
    pub service_name: String,
    /// The body: a string as is, anything structured as JSON.
    pub body: String,
    pub resource_schema_url: String,
    pub resource_attributes: SharedAttrMap,
    pub scope_schema_url: String,
    pub scope_name: String,
    pub scope_version: String,
    pub scope_attributes: AttrMap,
    pub log_attributes: AttrMap,
    /// `LogRecord.event_name`, or the `event.name` attribute when the field is empty.
    pub event_name: String,
}

/// One LLM operation in `llm_calls`, whatever convention it arrived in.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
#[serde(rename_all = "PascalCase")]
pub struct LlmCallRow {
    /// The project of the API key the row arrived with (`default` when auth is off); never taken
    /// from the data itself.
    pub project_id: String,
    /// Span start, ns since the epoch.
    pub timestamp: i64,
    /// Span duration, ns.
    pub duration: u64,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub span_name: String,
    pub service_name: String,
    /// `deployment.environment.name` (or the older `deployment.environment`).
    pub environment: String,
    pub scope_name: String,
    /// `gen_ai.operation.name` or its equivalent: chat, text_completion, embeddings, execute_tool, ...
    pub operation: String,
    /// Provider in the current registry spelling (`openai`, `azure.ai.openai`, `aws.bedrock`, ...).
    pub provider: String,
    pub request_model: String,
    pub response_model: String,
    /// Every request setting under its short name (`temperature`, `max_tokens`, `seed`, ...).
    pub request_params: AttrMap,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_write_input_tokens: u64,
    pub reasoning_output_tokens: u64,
    pub cost_usd: Option<f64>,
    /// True for outer spans (agent, workflow, SDK wrapper) whose usage repeats their inner calls';
    /// sum tokens and cost over `NOT IsRollup` rows.
    pub is_rollup: bool,
    pub finish_reasons: Vec<String>,
    pub response_id: String,
    /// `Ok`, `Error` or `Unset`.
    pub status_code: String,
    pub error_type: String,
    pub error_message: String,
    pub session_id: String,
    pub user_id: String,
    pub tags: Vec<String>,
    pub metadata: AttrMap,
    /// JSON array of parts (OTel `gen_ai.system_instructions` shape), or empty.
    pub system_instructions: String,
    /// JSON array of OTel chat messages (role + parts), or empty.
    pub input_messages: String,
    /// JSON array of OTel output messages (role + parts + finish_reason), or empty.
    pub output_messages: String,
    /// JSON array of tool definitions, or empty.
    pub tool_definitions: String,
    /// Text parts of the non-system input messages, joined with newlines.
    pub input_text: String,
    /// Text parts of the output messages, joined with newlines.
    pub output_text: String,
    /// Seconds from request to first streamed token, when reported.
    pub time_to_first_token: Option<f64>,
    /// Which encoding the call came from (see `normalize::Convention`).
    pub convention: String,
    /// Redactions made in the call's span and in the log records joined into it (see
    /// `process::redact`); 0 when nothing was redacted.
    pub redactions: u64,
    /// Hex span id of the row that counts this call, when this row is a second recording of it (see
    /// `join`); such rows are `is_rollup`. Empty otherwise.
    pub duplicate_of: String,
    /// USD for the input side (fresh input, cache reads and writes), when priced (see `process::price`).
    pub input_cost_usd: Option<f64>,
    /// USD for the output side (reasoning included), when priced.
    pub output_cost_usd: Option<f64>,
    /// Where `CostUsd` comes from: `client`, `price_table`, `override` or `unpriced`; empty on rollup
    /// rows without a client cost.
    pub cost_source: String,
    /// The price entry that matched (`provider/model` of the price data, or the override's pattern).
    pub price_model: String,
    /// The managed prompt the call used (OpenLLMetry `traceloop.prompt.key`, Langfuse
    /// `langfuse.observation.prompt.name`, GenAI `gen_ai.prompt.name`, ...; see `normalize::prompt`).
    pub prompt_name: String,
    /// Its version, as the application spells it.
    pub prompt_version: String,
    /// The template text, when sent.
    pub prompt_template: String,
    /// The values the template was filled with.
    pub prompt_variables: AttrMap,
    pub span_attributes: AttrMap,
    pub resource_attributes: SharedAttrMap,
}

/// The identity of a stored row: what decides whether a row from a replayed spool record is already in
/// ClickHouse (written before a crash, but its ack not yet persisted). Parts a table does not use are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct RowKey {
    /// `ProjectId`: rows of another project with the same ids are not this row.
    pub project: String,
    /// `Timestamp` in ns (logs only: a log record has no id of its own).
    pub ts: i64,
    pub trace_id: String,
    pub span_id: String,
    /// `xxHash64(Body)` (logs only).
    pub body_hash: u64,
}

/// A row type with a replay identity. The SQL and the Rust side of each key are written once, here,
/// side by side; a test checks them against the server.
pub trait Keyed {
    /// The SQL computing each [`RowKey`] field from this table's columns, in field order.
    const KEY_SQL: [&'static str; 5];
    /// This row's key: equal to what [`Keyed::KEY_SQL`] computes for it once stored.
    fn key(&self) -> RowKey;
    /// The column [`Keyed::timestamp_ns`] is read from (`Timestamp`; `TimeUnix` in metrics tables).
    const TIME_COLUMN: &'static str = "Timestamp";
    /// The row's time column (ns), to restrict the lookup to the partitions it can be in.
    fn timestamp_ns(&self) -> i64;
}

/// Spans and calls: `(ProjectId, TraceId, SpanId)`.
const SPAN_KEY_SQL: [&str; 5] = ["ProjectId", "toInt64(0)", "TraceId", "SpanId", "toUInt64(0)"];

impl RowKey {
    /// The key of a span-identified row (spans and calls): project, trace id and span id.
    fn span(project: &str, trace_id: &str, span_id: &str) -> RowKey {
        RowKey {
            project: project.to_owned(),
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            ..RowKey::default()
        }
    }
}

impl Keyed for SpanRow {
    const KEY_SQL: [&'static str; 5] = SPAN_KEY_SQL;
    fn key(&self) -> RowKey {
        RowKey::span(&self.project_id, &self.trace_id, &self.span_id)
    }
    fn timestamp_ns(&self) -> i64 {
        self.timestamp
    }
}

impl Keyed for LlmCallRow {
    const KEY_SQL: [&'static str; 5] = SPAN_KEY_SQL;
    fn key(&self) -> RowKey {
        RowKey::span(&self.project_id, &self.trace_id, &self.span_id)
    }
    fn timestamp_ns(&self) -> i64 {
        self.timestamp
    }
}

/// Log records: `(ProjectId, Timestamp, TraceId, SpanId, xxHash64(Body))`. xxHash64 rather than cityHash64 because
/// it is what a maintained Rust crate computes bit-for-bit like ClickHouse does.
impl Keyed for LogRow {
    const KEY_SQL: [&'static str; 5] =
        ["ProjectId", "toUnixTimestamp64Nano(Timestamp)", "TraceId", "SpanId", "xxHash64(Body)"];
    fn key(&self) -> RowKey {
        RowKey {
            project: self.project_id.clone(),
            ts: self.timestamp,
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            body_hash: twox_hash::XxHash64::oneshot(0, self.body.as_bytes()),
        }
    }
    fn timestamp_ns(&self) -> i64 {
        self.timestamp
    }
}

/// One self-telemetry row in `collector_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
#[serde(rename_all = "PascalCase")]
pub struct CollectorStatsRow {
    /// Milliseconds since the epoch (`DateTime64(3)`).
    pub timestamp: i64,
    pub instance: String,
    pub signal: String,
    pub received: u64,
    pub written: u64,
    pub rejected: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub queue_depth: u64,
    pub spool_bytes: u64,
    pub batch_latency_ms: f64,
}
