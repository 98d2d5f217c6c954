//! promptlog's view of itself, in two forms rendered from the same [`Stats`]:
//!
//! - [`render`]: the Prometheus text exposition (format 0.0.4) served at `GET /metrics` on the
//!   OTLP/HTTP listener. Written by hand: a few counters and gauges without histograms do not
//!   justify a metrics crate.
//! - [`spawn_writer`]: a task that inserts one `collector_stats` row per table every
//!   [`STATS_INTERVAL`], for dashboards that read ClickHouse rather than scrape the collector.
//!   Counters in those rows are deltas since the previous stored row, gauges are current values.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

mod pricing;

use crate::storage::clickhouse::Store;
use crate::telemetry::{Stats, TableSnapshot};
use promptlog_ingest::Table;
use promptlog_ingest::rows::CollectorStatsRow;
use promptlog_ingest::table::COLLECTOR_STATS_TABLE;

/// How often the stats writer stores a row per table.
pub const STATS_INTERVAL: Duration = Duration::from_secs(10);
/// `Content-Type` of [`render`]'s output.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Environment variable naming this collector in `collector_stats.Instance` (default: the hostname).
pub const INSTANCE_ENV: &str = "PROMPTLOG_INSTANCE";
/// `Instance` when neither [`INSTANCE_ENV`] nor a hostname is available.
const UNKNOWN_INSTANCE: &str = "unknown";

/// Prometheus metric types used here.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A sample value: integers are printed exactly (an `f64` would round counters above 2^53).
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            // Rust never prints `f64` in exponent form or as `inf`/`NaN` for the values produced
            // here (finite durations), so the output is always a valid Prometheus float.
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// A metric family with one sample per table (`table` label).
struct TableMetric {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: fn(&TableSnapshot) -> Value,
}

/// Every per-table family, in exposition order.
const TABLE_METRICS: &[TableMetric] = &[
    TableMetric {
        name: "promptlog_rows_received_total",
        kind: Kind::Counter,
        help: "Rows accepted from clients (for llm_calls: calls produced by the span/log join).",
        value: |s| Value::Int(s.received),
    },
    TableMetric {
        name: "promptlog_rows_written_total",
        kind: Kind::Counter,
        help: "Rows written to ClickHouse.",
        value: |s| Value::Int(s.written),
    },
    TableMetric {
        name: "promptlog_rows_rejected_total",
        kind: Kind::Counter,
        help: "Records refused: invalid, or refused because the collector was busy.",
        value: |s| Value::Int(s.rejected),
    },
    TableMetric {
        name: "promptlog_insert_retries_total",
        kind: Kind::Counter,
        help: "ClickHouse insert attempts that failed and were retried.",
        value: |s| Value::Int(s.retried),
    },
    TableMetric {
        name: "promptlog_rows_dead_lettered_total",
        kind: Kind::Counter,
        help: "Rows ClickHouse refused permanently, moved to the dead-letter store.",
        value: |s| Value::Int(s.dead_lettered),
    },
    TableMetric {
        name: "promptlog_rows_replay_skipped_total",
        kind: Kind::Counter,
        help: "Rows of requests replayed from the spool that ClickHouse already held, so not inserted again.",
        value: |s| Value::Int(s.replay_skipped),
    },
    TableMetric {
        name: "promptlog_rows_queued",
        kind: Kind::Gauge,
        help: "Rows accepted but not yet written to ClickHouse.",
        value: |s| Value::Int(s.queued),
    },
    TableMetric {
        name: "promptlog_last_batch_seconds",
        kind: Kind::Gauge,
        help: "Duration of the last successful ClickHouse insert.",
        value: |s| Value::Float(s.last_batch_ms / 1000.0),
    },
];

/// Writes the `# HELP` and `# TYPE` lines of a family.
fn header(out: &mut String, name: &str, kind: Kind, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
}

/// A family with a single, unlabelled sample.
struct Single {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: Value,
}

/// Renders `stats` in the Prometheus text exposition format (0.0.4).
pub fn render(stats: &Stats) -> String {
    let snapshots = Table::ALL.map(|t| (t, stats.snapshot(t)));
    let mut out = String::with_capacity(4096);
    for metric in TABLE_METRICS {
        header(&mut out, metric.name, metric.kind, metric.help);
        for (table, snapshot) in &snapshots {
            // Table names are fixed identifiers, so they need no label escaping.
            let _ = writeln!(out, "{}{{table=\"{}\"}} {}", metric.name, table.name(), (metric.value)(snapshot));
        }
    }
    for metric in singles(stats) {
        header(&mut out, metric.name, metric.kind, metric.help);
        let _ = writeln!(out, "{} {}", metric.name, metric.value);
    }
    if let Some(redactions) = stats.redaction_counters() {
        render_redactions(&mut out, redactions);
    }
    render_auth(&mut out, stats);
    pricing::render(&mut out, stats);
    out
}

/// Requests refused for their API key, one sample per reason (`crate::auth::Refusal::REASONS`).
const AUTH_REFUSED: &str = "promptlog_requests_refused_auth_total";

/// The API key families: refusals by reason, then the key store's gauges and reload counters.
fn render_auth(out: &mut String, stats: &Stats) {
    header(
        out,
        AUTH_REFUSED,
        Kind::Counter,
        "Export requests refused for their API key (missing, unknown, expired: 401; scope: 403), by reason.",
    );
    for (reason, count) in crate::auth::Refusal::REASONS.iter().zip(&stats.auth.refused) {
        let _ = writeln!(out, "{AUTH_REFUSED}{{reason=\"{reason}\"}} {}", count.load(Relaxed));
    }
    for metric in auth_singles(stats) {
        header(out, metric.name, metric.kind, metric.help);
        let _ = writeln!(out, "{} {}", metric.name, metric.value);
    }
}

fn auth_singles(stats: &Stats) -> [Single; 4] {
    let a = &stats.auth;
    let single = |name, kind, help, value| Single { name, kind, help, value: Value::Int(value) };
    [
        single(
            "promptlog_auth_enabled",
            Kind::Gauge,
            "1 if API keys are required, 0 if every request is accepted as project default.",
            u64::from(a.enabled.load(Relaxed)),
        ),
        single("promptlog_auth_keys", Kind::Gauge, "API keys loaded.", a.keys.load(Relaxed)),
        single(
            "promptlog_auth_key_reloads_total",
            Kind::Counter,
            "Times a changed API key file was loaded.",
            a.reloads.load(Relaxed),
        ),
        single(
            "promptlog_auth_key_reload_errors_total",
            Kind::Counter,
            "Times a changed API key file could not be loaded (the previous keys stayed in use).",
            a.reload_errors.load(Relaxed),
        ),
    ]
}

/// `promptlog_redactions_total{detector}` and the content-policy counter.
fn render_redactions(out: &mut String, counters: &promptlog_ingest::process::redact::Counters) {
    let name = "promptlog_redactions_total";
    header(out, name, Kind::Counter, "PII findings redacted before the spool, per detector (rule name).");
    for (detector, n) in counters.per_detector() {
        // Rule names are restricted to [A-Za-z0-9_.-] by the config, so they need no escaping.
        let _ = writeln!(out, "{name}{{detector=\"{detector}\"}} {n}");
    }
    let name = "promptlog_content_policy_applied_total";
    header(out, name, Kind::Counter, "Content values truncated, hashed or dropped by the content-capture policy.");
    let _ = writeln!(out, "{name} {}", counters.content());
}

/// The collector-wide families, with their current values.
fn singles(stats: &Stats) -> [Single; 15] {
    let spool = stats.spool.snapshot();
    let counter = |name, help, value| Single { name, kind: Kind::Counter, help, value: Value::Int(value) };
    let gauge = |name, help, value| Single { name, kind: Kind::Gauge, help, value };
    [
        counter(
            "promptlog_requests_refused_busy_total",
            "Export requests refused with UNAVAILABLE / 503 because the spool was full.",
            stats.refused_busy.load(Relaxed),
        ),
        counter(
            "promptlog_requests_refused_spool_io_total",
            "Export requests refused because the spool could not be written (disk full or failing).",
            stats.refused_spool_io.load(Relaxed),
        ),
        gauge(
            "promptlog_clickhouse_up",
            "1 if the last ClickHouse insert succeeded, else 0.",
            Value::Int(u64::from(stats.clickhouse_up())),
        ),
        gauge("promptlog_spool_bytes", "Bytes of spool segment files on disk.", Value::Int(spool.bytes)),
        gauge(
            "promptlog_join_held",
            "LLM calls and content records held in memory for the join window (duplicate merging, log content).",
            Value::Int(stats.join_held.load(Relaxed)),
        ),
        gauge(
            "promptlog_join_held_bytes",
            "Estimated heap bytes of the held calls and records (bounded by pipeline.max_pending_join_bytes).",
            Value::Int(stats.join_held_bytes.load(Relaxed)),
        ),
        gauge(
            "promptlog_spool_records",
            "Accepted requests in the spool not yet fully written to ClickHouse.",
            Value::Int(spool.records),
        ),
        gauge(
            "promptlog_spool_oldest_age_seconds",
            "Age of the oldest request in the spool not yet written (0 when none).",
            Value::Float(spool.oldest_age_s),
        ),
        gauge(
            "promptlog_spool_backlog_records",
            "Spooled requests waiting on disk only for room in the in-memory queue.",
            Value::Int(spool.backlog),
        ),
        counter(
            "promptlog_spool_replayed_total",
            "Requests found in the spool at start-up and replayed.",
            spool.replayed,
        ),
        counter(
            "promptlog_spool_unreadable_total",
            "Spooled requests that could not be read back (damaged on disk) and are lost.",
            spool.unreadable,
        ),
        counter(
            "promptlog_tls_handshake_failures_total",
            "Receiver connections closed because the TLS handshake failed (e.g. plaintext or untrusted client).",
            stats.tls.handshake_failures.load(Relaxed),
        ),
        counter(
            "promptlog_tls_handshake_timeouts_total",
            "Receiver connections closed because the TLS handshake did not complete in time.",
            stats.tls.handshake_timeouts.load(Relaxed),
        ),
        counter(
            "promptlog_tls_reloads_total",
            "Changed TLS certificate, key or client CA files loaded without a restart.",
            stats.tls.reloads.load(Relaxed),
        ),
        counter(
            "promptlog_tls_reload_failures_total",
            "Changed TLS files that could not be loaded (the previous certificate stayed in use).",
            stats.tls.reload_failures.load(Relaxed),
        ),
    ]
}

/// The `Instance` value: [`INSTANCE_ENV`] if set, else the hostname.
pub fn instance_name() -> String {
    let from_env = std::env::var(INSTANCE_ENV).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    from_env.or_else(hostname).unwrap_or_else(|| UNKNOWN_INSTANCE.to_owned())
}

/// The kernel's hostname (Linux), else `$HOSTNAME`; no libc call needed for either.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// One `collector_stats` row per table: counters as deltas from `previous`, gauges from `current`.
/// `spool_bytes` is collector-wide, so every row repeats it (aggregate it with `max`, not `sum`).
pub fn stats_rows(
    instance: &str,
    timestamp_ms: i64,
    previous: &[TableSnapshot; Table::ALL.len()],
    current: &[TableSnapshot; Table::ALL.len()],
    spool_bytes: u64,
) -> Vec<CollectorStatsRow> {
    Table::ALL
        .iter()
        .zip(previous.iter().zip(current))
        .map(|(table, (prev, cur))| CollectorStatsRow {
            timestamp: timestamp_ms,
            instance: instance.to_owned(),
            signal: table.signal().to_owned(),
            // Counters only grow; saturating keeps a bug elsewhere from writing 2^64 - 1.
            received: cur.received.saturating_sub(prev.received),
            written: cur.written.saturating_sub(prev.written),
            rejected: cur.rejected.saturating_sub(prev.rejected),
            retried: cur.retried.saturating_sub(prev.retried),
            dead_lettered: cur.dead_lettered.saturating_sub(prev.dead_lettered),
            queue_depth: cur.queued,
            spool_bytes,
            batch_latency_ms: cur.last_batch_ms,
        })
        .collect()
}

/// Starts the stats writer: every `interval` it inserts one row per table into
/// [`COLLECTOR_STATS_TABLE`] until `shutdown` is cancelled. Failures are logged at debug and skipped: the
/// next row then carries the deltas of the skipped interval too, so sums over the table stay exact.
pub fn spawn_writer(
    store: Store,
    stats: Arc<Stats>,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(run_writer(store, stats, interval, shutdown))
}

async fn run_writer(store: Store, stats: Arc<Stats>, interval: Duration, shutdown: CancellationToken) {
    let instance = instance_name();
    let mut previous = [TableSnapshot::default(); Table::ALL.len()];
    let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
    // After a slow insert, wait a full interval rather than writing a burst of catch-up rows.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let current = Table::ALL.map(|t| stats.snapshot(t));
        let timestamp_ms = now_ms();
        let rows = stats_rows(&instance, timestamp_ms, &previous, &current, stats.spool.bytes.load(Relaxed));
        let token = format!("{COLLECTOR_STATS_TABLE}-{instance}-{timestamp_ms}");
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = store.insert(COLLECTOR_STATS_TABLE, &rows, &token) => result,
        };
        match result {
            Ok(()) => previous = current,
            Err(e) => {
                tracing::debug!(error = %e, "Could not store collector stats; will include them in the next row.")
            }
        }
    }
}

fn now_ms() -> i64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
