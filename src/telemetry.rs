//! promptlog's own counters and gauges, one set per table, plus ClickHouse reachability and the spool.
//! Lock-free atomics: every request touches them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use promptlog_ingest::Table;
use promptlog_ingest::process::price::Unpriced;
use promptlog_ingest::process::redact::Counters as RedactionCounters;
use promptlog_spool::SpoolStats;

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
    /// Rows of requests replayed from the spool that ClickHouse already held, so were not inserted again.
    pub replay_skipped: AtomicU64,
}

/// Spool gauges (refreshed a few times a second) and counters.
#[derive(Debug, Default)]
pub struct SpoolGauges {
    /// Bytes of spool segment files on disk.
    pub bytes: AtomicU64,
    /// Accepted requests not yet fully written to ClickHouse.
    pub records: AtomicU64,
    /// Age of the oldest of those, milliseconds (0 when none).
    pub oldest_age_ms: AtomicU64,
    /// Of those, requests waiting in the backlog (on disk only) for room in the pipeline.
    pub backlog: AtomicU64,
    /// Requests that found the in-memory queue full, so waited in the backlog (on disk only) and were
    /// read back from the spool later.
    pub backlogged: AtomicU64,
    /// Requests found in the spool at start-up and replayed.
    pub replayed: AtomicU64,
    /// Spooled requests that could not be read back (damaged on disk) and are lost.
    pub unreadable: AtomicU64,
}

impl SpoolGauges {
    /// Copies the spool's figures and the backlog length.
    pub fn update(&self, s: &SpoolStats, backlog: u64) {
        self.bytes.store(s.bytes, Relaxed);
        self.records.store(s.records, Relaxed);
        self.oldest_age_ms.store(s.oldest_unacked_age.map_or(0, |a| a.as_millis() as u64), Relaxed);
        self.backlog.store(backlog, Relaxed);
    }

    /// A point-in-time copy.
    pub fn snapshot(&self) -> SpoolSnapshot {
        SpoolSnapshot {
            bytes: self.bytes.load(Relaxed),
            records: self.records.load(Relaxed),
            oldest_age_s: self.oldest_age_ms.load(Relaxed) as f64 / 1000.0,
            backlog: self.backlog.load(Relaxed),
            backlogged: self.backlogged.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            unreadable: self.unreadable.load(Relaxed),
        }
    }
}

/// A point-in-time copy of the spool gauges.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct SpoolSnapshot {
    pub bytes: u64,
    pub records: u64,
    pub oldest_age_s: f64,
    pub backlog: u64,
    pub backlogged: u64,
    pub replayed: u64,
    pub unreadable: u64,
}

/// API key counters and gauges.
#[derive(Debug, Default)]
pub struct AuthCounters {
    /// Whether keys are required (false: every request is project `default`).
    pub enabled: AtomicBool,
    /// Requests refused, by reason, in `crate::auth::Refusal::REASONS` order.
    pub refused: [AtomicU64; 4],
    /// Keys loaded.
    pub keys: AtomicU64,
    /// Times a changed key file was loaded.
    pub reloads: AtomicU64,
    /// Times a changed key file could not be loaded (the previous keys stayed in use).
    pub reload_errors: AtomicU64,
}

/// TLS on the receivers.
#[derive(Debug, Default)]
pub struct TlsCounters {
    /// Connections closed because the TLS handshake failed (plaintext client, missing or untrusted
    /// client certificate, client not trusting the server's certificate).
    pub handshake_failures: AtomicU64,
    /// Connections closed because the handshake did not complete in time.
    pub handshake_timeouts: AtomicU64,
    /// Certificate/key/CA changes loaded without a restart.
    pub reloads: AtomicU64,
    /// Changed TLS files that could not be loaded (the previous certificate stayed in use).
    pub reload_failures: AtomicU64,
}

/// Everything the collector reports about itself.
#[derive(Debug, Default)]
pub struct Stats {
    tables: [TableCounters; Table::ALL.len()],
    /// Requests refused because the spool was full (UNAVAILABLE / 503).
    pub refused_busy: AtomicU64,
    /// Requests refused because the spool could not be written (disk full or failing).
    pub refused_spool_io: AtomicU64,
    /// Calls and content records held for the join window now.
    pub join_held: AtomicU64,
    /// Their estimated heap bytes (bounded by `pipeline.max_pending_join_bytes`).
    pub join_held_bytes: AtomicU64,
    /// The spool.
    pub spool: SpoolGauges,
    /// TLS handshakes and reloads.
    pub tls: TlsCounters,
    /// API keys.
    pub auth: AuthCounters,
    /// False after an insert failed, true again after one succeeds.
    clickhouse_down: AtomicBool,
    /// The redaction step's counters, when redaction is on.
    redactions: OnceLock<Arc<RedactionCounters>>,
    /// The pricing step's unpriced calls, when pricing is on.
    unpriced: OnceLock<Arc<Unpriced>>,
    /// Price data file reloads.
    pub pricing: PricingCounters,
}

/// Reloads of `pricing.data_file`.
#[derive(Debug, Default)]
pub struct PricingCounters {
    /// Times a changed price data file was loaded.
    pub reloads: AtomicU64,
    /// Times a changed price data file could not be loaded (the data in use stayed).
    pub reload_errors: AtomicU64,
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
    pub replay_skipped: u64,
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

    /// Shares the redaction step's counters with `/metrics` (once, at start-up).
    pub fn set_redaction_counters(&self, counters: Arc<RedactionCounters>) {
        let _ = self.redactions.set(counters);
    }

    /// The redaction step's counters, when redaction is on.
    pub fn redaction_counters(&self) -> Option<&RedactionCounters> {
        self.redactions.get().map(Arc::as_ref)
    }

    /// Shares the pricing step's unpriced-call counter with `/metrics` (once, at start-up).
    pub fn set_unpriced(&self, unpriced: Arc<Unpriced>) {
        let _ = self.unpriced.set(unpriced);
    }

    /// The pricing step's unpriced-call counter, when pricing is on.
    pub fn unpriced(&self) -> Option<&Unpriced> {
        self.unpriced.get().map(Arc::as_ref)
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
            replay_skipped: c.replay_skipped.load(Relaxed),
        }
    }
}
