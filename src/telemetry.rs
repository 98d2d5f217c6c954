//! promptlog's own counters and gauges, one set per table, plus ClickHouse reachability. Lock-free
//! atomics: every request touches them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// The tables rows are written to (and the signals they count).
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
    pub fn name(self) -> &'static str {
        match self {
            Table::Traces => "otel_traces",
            Table::Logs => "otel_logs",
            Table::LlmCalls => "llm_calls",
        }
    }

    /// The signal label used in stats (`traces`, `logs`, `llm_calls`).
    pub fn signal(self) -> &'static str {
        match self {
            Table::Traces => "traces",
            Table::Logs => "logs",
            Table::LlmCalls => "llm_calls",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one table.
#[derive(Debug, Default)]
pub struct TableCounters {
    /// Rows accepted from clients (or produced by the join, for `llm_calls`).
    pub received: AtomicU64,
    /// Rows written to ClickHouse.
    pub written: AtomicU64,
    /// Records refused (invalid, or refused for backpressure).
    pub rejected: AtomicU64,
    /// Insert attempts retried.
    pub retried: AtomicU64,
    /// Rows given up on and written to the dead-letter directory.
    pub dead_lettered: AtomicU64,
    /// Rows buffered in the pipeline, not yet written.
    pub queued: AtomicU64,
    /// Duration of the last successful insert, microseconds.
    pub last_batch_micros: AtomicU64,
}

/// Everything the collector reports about itself.
#[derive(Debug, Default)]
pub struct Stats {
    tables: [TableCounters; 3],
    /// Requests refused because the pipeline was full.
    pub refused_busy: AtomicU64,
    /// False after an insert failed, true again after one succeeds.
    clickhouse_down: AtomicBool,
}

/// A point-in-time copy of one table's counters.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct TableSnapshot {
    pub received: u64,
    pub written: u64,
    pub rejected: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub queued: u64,
    pub last_batch_ms: f64,
}

impl Stats {
    /// A fresh, shared set of counters.
    pub fn new() -> Arc<Stats> {
        Arc::new(Stats::default())
    }

    /// The counters of `table`.
    pub fn table(&self, table: Table) -> &TableCounters {
        &self.tables[table.index()]
    }

    /// Records the outcome of an insert attempt for reachability reporting.
    pub fn set_clickhouse_up(&self, up: bool) {
        self.clickhouse_down.store(!up, Relaxed);
    }

    /// Whether the last insert attempt succeeded.
    pub fn clickhouse_up(&self) -> bool {
        !self.clickhouse_down.load(Relaxed)
    }

    /// Copies one table's counters.
    pub fn snapshot(&self, table: Table) -> TableSnapshot {
        let c = self.table(table);
        TableSnapshot {
            received: c.received.load(Relaxed),
            written: c.written.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            retried: c.retried.load(Relaxed),
            dead_lettered: c.dead_lettered.load(Relaxed),
            queued: c.queued.load(Relaxed),
            last_batch_ms: c.last_batch_micros.load(Relaxed) as f64 / 1000.0,
        }
    }
}
