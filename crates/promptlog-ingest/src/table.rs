//! The tables rows are written to, named once. Each row type names its table ([`TableRow`]), so a
//! row can only be sent to the table whose columns it has.

use crate::rows::{LlmCallRow, LogRow, SpanRow};

/// The tables the pipeline writes request-derived rows to (and the signals they count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `otel_traces`.
    Traces,
    /// `otel_logs`.
    Logs,
    /// `llm_calls`.
    LlmCalls,
}

impl Table {
    /// All tables, in a fixed order.
    pub const ALL: [Table; 3] = [Table::Traces, Table::Logs, Table::LlmCalls];

    /// The ClickHouse table name.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Traces => "otel_traces",
            Table::Logs => "otel_logs",
            Table::LlmCalls => "llm_calls",
        }
    }

    /// The signal label used in stats (`traces`, `logs`, `llm_calls`).
    pub const fn signal(self) -> &'static str {
        match self {
            Table::Traces => "traces",
            Table::Logs => "logs",
            Table::LlmCalls => "llm_calls",
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
}

impl TableRow for SpanRow {
    const TABLE: Table = Table::Traces;
}

impl TableRow for LogRow {
    const TABLE: Table = Table::Logs;
}

impl TableRow for LlmCallRow {
    const TABLE: Table = Table::LlmCalls;
}

/// `collector_stats`, the table of [`CollectorStatsRow`](crate::rows::CollectorStatsRow)s (written by
/// the collector's self-telemetry, not derived from requests).
pub const COLLECTOR_STATS_TABLE: &str = "collector_stats";

/// The lookup table kept next to `otel_traces` by a materialized view (exporter layout).
pub const TRACE_ID_TS_TABLE: &str = "otel_traces_trace_id_ts";
