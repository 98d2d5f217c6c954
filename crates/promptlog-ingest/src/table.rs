//! The tables rows are written to, named once. Each row type names its table ([`TableRow`]), so a
//! row can only be sent to the table whose columns it has.

use crate::rows::{ExpHistogramRow, GaugeRow, HistogramRow, LlmCallRow, LogRow, ScoreRow, SpanRow, SumRow, SummaryRow};

/// The tables the pipeline writes request-derived rows to (and the signals they count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `otel_traces`.
    Traces,
    /// `otel_logs`.
    Logs,
    /// `llm_calls`.
    LlmCalls,
    /// `otel_metrics_gauge`.
    MetricsGauge,
    /// `otel_metrics_sum`.
    MetricsSum,
    /// `otel_metrics_histogram`.
    MetricsHistogram,
    /// `otel_metrics_exponential_histogram`.
    MetricsExpHistogram,
    /// `otel_metrics_summary`.
    MetricsSummary,
    /// `scores` (feedback API and OTLP `gen_ai.evaluation.result`).
    Scores,
}

impl Table {
    /// All tables, in a fixed order.
    pub const ALL: [Table; 9] = [
        Table::Traces,
        Table::Logs,
        Table::LlmCalls,
        Table::MetricsGauge,
        Table::MetricsSum,
        Table::MetricsHistogram,
        Table::MetricsExpHistogram,
        Table::MetricsSummary,
        Table::Scores,
    ];

    /// The five OTLP metrics tables (one per metric type).
    pub const METRICS: [Table; 5] = [
        Table::MetricsGauge,
        Table::MetricsSum,
        Table::MetricsHistogram,
        Table::MetricsExpHistogram,
        Table::MetricsSummary,
    ];

    /// The ClickHouse table name.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Traces => "otel_traces",
            Table::Logs => "otel_logs",
            Table::LlmCalls => "llm_calls",
            Table::MetricsGauge => "otel_metrics_gauge",
            Table::MetricsSum => "otel_metrics_sum",
            Table::MetricsHistogram => "otel_metrics_histogram",
            Table::MetricsExpHistogram => "otel_metrics_exponential_histogram",
            Table::MetricsSummary => "otel_metrics_summary",
            Table::Scores => "scores",
        }
    }

    /// The signal label used in stats (`traces`, `logs`, `llm_calls`, `metrics_gauge`, ...).
    pub const fn signal(self) -> &'static str {
        match self {
            Table::Traces => "traces",
            Table::Logs => "logs",
            Table::LlmCalls => "llm_calls",
            Table::MetricsGauge => "metrics_gauge",
            Table::MetricsSum => "metrics_sum",
            Table::MetricsHistogram => "metrics_histogram",
            Table::MetricsExpHistogram => "metrics_exponential_histogram",
            Table::MetricsSummary => "metrics_summary",
            Table::Scores => "scores",
        }
    }

    /// Position in [`Table::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A row type and the one table it belongs to, so the pipeline cannot send it elsewhere.
pub trait TableRow {
    /// Its table.
    const TABLE: Table;

    /// Heap bytes the row takes, estimated (its text plus a fixed cost per row and per attribute):
    /// what batches are bounded by besides their row count. Rows without long text use the fixed cost.
    fn approx_bytes(&self) -> usize {
        ROW_BYTES
    }
}

/// The fixed part of [`TableRow::approx_bytes`]: the struct and its small fields.
const ROW_BYTES: usize = 512;

/// Heap bytes of an attribute list: its text plus the two `String`s and the pair per entry.
pub(crate) fn attr_bytes(attrs: &crate::rows::AttrMap) -> usize {
    attrs.iter().map(|(k, v)| k.len() + v.len() + 64).sum()
}

impl TableRow for SpanRow {
    const TABLE: Table = Table::Traces;

    fn approx_bytes(&self) -> usize {
        ROW_BYTES
            + attr_bytes(&self.span_attributes)
            + attr_bytes(&self.resource_attributes)
            + self.events_attributes.iter().chain(&self.links_attributes).map(attr_bytes).sum::<usize>()
            + self.events_name.iter().map(|n| n.len() + 32).sum::<usize>()
            + self.status_message.len()
    }
}

impl TableRow for LogRow {
    const TABLE: Table = Table::Logs;

    fn approx_bytes(&self) -> usize {
        ROW_BYTES
            + self.body.len()
            + attr_bytes(&self.log_attributes)
            + attr_bytes(&self.resource_attributes)
            + attr_bytes(&self.scope_attributes)
    }
}

impl TableRow for LlmCallRow {
    const TABLE: Table = Table::LlmCalls;

    fn approx_bytes(&self) -> usize {
        let text = [
            &self.system_instructions,
            &self.input_messages,
            &self.output_messages,
            &self.tool_definitions,
            &self.input_text,
            &self.output_text,
            &self.prompt_template,
            &self.error_message,
        ];
        let attrs = [&self.span_attributes, &self.resource_attributes, &self.request_params, &self.metadata];
        ROW_BYTES
            + text.iter().map(|t| t.len()).sum::<usize>()
            + attrs.iter().map(|a| attr_bytes(a)).sum::<usize>()
            + attr_bytes(&self.prompt_variables)
    }
}

impl TableRow for GaugeRow {
    const TABLE: Table = Table::MetricsGauge;
}

impl TableRow for SumRow {
    const TABLE: Table = Table::MetricsSum;
}

impl TableRow for HistogramRow {
    const TABLE: Table = Table::MetricsHistogram;
}

impl TableRow for ExpHistogramRow {
    const TABLE: Table = Table::MetricsExpHistogram;
}

impl TableRow for SummaryRow {
    const TABLE: Table = Table::MetricsSummary;
}

impl TableRow for ScoreRow {
    const TABLE: Table = Table::Scores;
}

/// `collector_stats`, the table of [`CollectorStatsRow`](crate::rows::CollectorStatsRow)s (written by
/// the collector's self-telemetry, not derived from requests).
pub const COLLECTOR_STATS_TABLE: &str = "collector_stats";

/// The lookup table kept next to `otel_traces` by a materialized view (exporter layout).
pub const TRACE_ID_TS_TABLE: &str = "otel_traces_trace_id_ts";
