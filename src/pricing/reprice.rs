//! `promptlog reprice`: computes the cost of stored calls again (after the price data or the
//! overrides changed) and writes what changed back with ClickHouse mutations.
//!
//! Why a mutation and not a re-insert: `llm_calls` is a plain MergeTree, so a re-inserted row would be a
//! second copy of the call (every sum would count it twice) until the old one is deleted — which is
//! itself a mutation. `ALTER TABLE … UPDATE` rewrites only the five cost columns of the parts it
//! touches, keeps every other column as it was, and is idempotent: the values are computed by the
//! collector, row by row, with the same [`Pricer`] as at ingest, and sent as literals, so running it
//! twice writes the same values. Rows are read in key order and updated in batches of
//! [`ROWS_PER_MUTATION`] (one mutation per batch, waited for with `mutations_sync = 2`), because each
//! mutation rewrites whole parts: fewer, larger mutations cost less.

use clickhouse::Row;
use serde::Deserialize;

use promptlog_ingest::process::price::{Pricer, source};
use promptlog_ingest::rows::LlmCallRow;
use promptlog_ingest::table::Table;

use crate::storage::clickhouse::{Store, StoreError, rollups};

/// Rows updated by one mutation.
pub const ROWS_PER_MUTATION: usize = 5_000;

/// Why repricing stopped. Batches already written stay written (running it again is safe).
#[derive(Debug, thiserror::Error)]
pub enum RepriceError {
    /// Reading or updating `llm_calls` failed.
    #[error("reprice: {0}")]
    Store(#[from] StoreError),
}

impl From<clickhouse::error::Error> for RepriceError {
    fn from(source: clickhouse::error::Error) -> Self {
        RepriceError::Store(StoreError::from(source))
    }
}

/// What to reprice: calls that started in `[since_ns, until_ns)`.
#[derive(Debug, Clone, Copy)]
pub struct RepriceRange {
    /// First start time included, ns since the epoch.
    pub since_ns: i64,
    /// First start time excluded, ns since the epoch.
    pub until_ns: i64,
}

/// What a run found (and, unless a dry run, wrote).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepriceReport {
    /// Rows read (client-priced rows are not read).
    pub scanned: u64,
    /// Rows whose cost columns change.
    pub changed: u64,
    /// Rows left unpriced.
    pub unpriced: u64,
    /// Sum of `CostUsd` over the changed counted rows before (`NOT IsRollup`).
    pub before_usd: f64,
    /// The same sum after.
    pub after_usd: f64,
    /// Mutations run (0 in a dry run).
    pub mutations: u64,
}

/// The columns pricing reads and writes.
#[derive(Debug, Row, Deserialize)]
struct Stored {
    project_id: String,
    trace_id: String,
    span_id: String,
    ts: i64,
    provider: String,
    request_model: String,
    response_model: String,
    input_tokens: u64,
    output_tokens: u64,
    cache_read: u64,
    cache_write: u64,
    reasoning: u64,
    is_rollup: bool,
    duplicate_of: String,
    cost_usd: Option<f64>,
    input_cost_usd: Option<f64>,
    output_cost_usd: Option<f64>,
    cost_source: String,
    price_model: String,
    tier: String,
    gen_ai_tier: String,
}

impl Stored {
    fn row(&self) -> LlmCallRow {
        LlmCallRow {
            project_id: self.project_id.clone(),
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            timestamp: self.ts,
            provider: self.provider.clone(),
            request_model: self.request_model.clone(),
            response_model: self.response_model.clone(),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_input_tokens: self.cache_read,
            cache_write_input_tokens: self.cache_write,
            reasoning_output_tokens: self.reasoning,
            is_rollup: self.is_rollup,
            duplicate_of: self.duplicate_of.clone(),
            cost_usd: self.cost_usd,
            input_cost_usd: self.input_cost_usd,
            output_cost_usd: self.output_cost_usd,
            cost_source: self.cost_source.clone(),
            price_model: self.price_model.clone(),
            span_attributes: [
                ("openai.response.service_tier", &self.tier),
                ("gen_ai.openai.response.service_tier", &self.gen_ai_tier),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
            ..LlmCallRow::default()
        }
    }

    fn changed(&self, row: &LlmCallRow) -> bool {
        (self.cost_usd, self.input_cost_usd, self.output_cost_usd)
            != (row.cost_usd, row.input_cost_usd, row.output_cost_usd)
            || self.cost_source != row.cost_source
            || self.price_model != row.price_model
    }
}

/// Reprices the calls in `range` with `pricer`; with `dry_run`, only reports.
pub async fn reprice(
    store: &Store,
    pricer: &Pricer,
    range: RepriceRange,
    dry_run: bool,
) -> Result<RepriceReport, RepriceError> {
    let table = Table::LlmCalls.name();
    let sql = format!(
        "SELECT ProjectId AS project_id, TraceId AS trace_id, SpanId AS span_id, \
         toUnixTimestamp64Nano(Timestamp) AS ts, Provider AS provider, RequestModel AS request_model, \
         ResponseModel AS response_model, InputTokens AS input_tokens, OutputTokens AS output_tokens, \
         CacheReadInputTokens AS cache_read, CacheWriteInputTokens AS cache_write, \
         ReasoningOutputTokens AS reasoning, IsRollup AS is_rollup, DuplicateOf AS duplicate_of, \
         CostUsd AS cost_usd, InputCostUsd AS input_cost_usd, OutputCostUsd AS output_cost_usd, \
         toString(CostSource) AS cost_source, toString(PriceModel) AS price_model, \
         SpanAttributes['openai.response.service_tier'] AS tier, \
         SpanAttributes['gen_ai.openai.response.service_tier'] AS gen_ai_tier \
         FROM {table} WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64(?)) \
         AND Timestamp < fromUnixTimestamp64Nano(toInt64(?)) AND CostSource != 'client' \
         ORDER BY ProjectId, TraceId, SpanId"
    );
    let mut cursor = store.client().query(&sql).bind(range.since_ns).bind(range.until_ns).fetch::<Stored>()?;
    let mut report = RepriceReport::default();
    let mut batch: Vec<LlmCallRow> = Vec::new();
    while let Some(stored) = cursor.next().await? {
        report.scanned += 1;
        let mut row = stored.row();
        pricer.price_row(&mut row);
        if row.cost_source == source::UNPRICED {
            report.unpriced += 1;
        }
        if !stored.changed(&row) {
            continue;
        }
        report.changed += 1;
        if !row.is_rollup {
            report.before_usd += stored.cost_usd.unwrap_or(0.0);
            report.after_usd += row.cost_usd.unwrap_or(0.0);
        }
        batch.push(row);
        if batch.len() == ROWS_PER_MUTATION && !dry_run {
            update(store, range, &batch).await?;
            report.mutations += 1;
            batch.clear();
        }
    }
    if !batch.is_empty() && !dry_run {
        update(store, range, &batch).await?;
        report.mutations += 1;
    }
    // The materialized views saw the old costs: aggregate the range's rollup buckets again.
    if report.mutations > 0 {
        rollups::rebuild(store, range.since_ns, range.until_ns).await?;
    }
    Ok(report)
}

/// One mutation setting the cost columns of `rows` (by key) to their values.
async fn update(store: &Store, range: RepriceRange, rows: &[LlmCallRow]) -> Result<(), RepriceError> {
    // In cluster mode the mutation runs on the local tables of every node.
    let table = store.alter_target(Table::LlmCalls.name());
    let keys: Vec<(&str, &str, &str)> =
        rows.iter().map(|r| (r.project_id.as_str(), r.trace_id.as_str(), r.span_id.as_str())).collect();
    let costs = |f: fn(&LlmCallRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    let texts = |f: fn(&LlmCallRow) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    // `?` binds are sent as SQL literals, escaped by the client.
    let at = "indexOf(?, (ProjectId, TraceId, SpanId))";
    let sql = format!(
        "ALTER TABLE {table} UPDATE \
         InputCostUsd = arrayElement(CAST(? AS Array(Nullable(Float64))), {at}), \
         OutputCostUsd = arrayElement(CAST(? AS Array(Nullable(Float64))), {at}), \
         CostUsd = arrayElement(CAST(? AS Array(Nullable(Float64))), {at}), \
         CostSource = arrayElement(CAST(? AS Array(String)), {at}), \
         PriceModel = arrayElement(CAST(? AS Array(String)), {at}) \
         WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64(?)) AND Timestamp < fromUnixTimestamp64Nano(toInt64(?)) \
         AND (ProjectId, TraceId, SpanId) IN ?"
    );
    store
        .client()
        .query(&sql)
        // Wait until the mutation is done on every replica, so a finished run means updated rows.
        .with_setting("mutations_sync", "2")
        .bind(costs(|r| r.input_cost_usd))
        .bind(&keys)
        .bind(costs(|r| r.output_cost_usd))
        .bind(&keys)
        .bind(costs(|r| r.cost_usd))
        .bind(&keys)
        .bind(texts(|r| &r.cost_source))
        .bind(&keys)
        .bind(texts(|r| &r.price_model))
        .bind(&keys)
        .bind(range.since_ns)
        .bind(range.until_ns)
        .bind(&keys)
        .execute()
        .await?;
    Ok(())
}

/// A `--since`/`--until` value: an RFC 3339 time (`2026-11-30T00:00:00Z`) or a duration before `now_ns`
/// (`24h`, `7d`); ns since the epoch.
pub fn parse_time(text: &str, now_ns: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        let ns = at.duration_since(std::time::UNIX_EPOCH).map_err(|_| format!("{text:?} is before 1970"))?.as_nanos();
        return i64::try_from(ns).map_err(|_| format!("{text:?} is too far in the future"));
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now_ns.saturating_sub(i64::try_from(ago.as_nanos()).unwrap_or(i64::MAX))),
        Err(_) => Err(format!("{text:?} is neither an RFC 3339 time (2026-11-30T00:00:00Z) nor a duration (24h, 7d)")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn since_and_until_take_times_and_durations() {
        const NOW: i64 = 1_764_547_200_000_000_000; // 2025-12-01T00:00:00Z
        assert_eq!(parse_time("2025-11-30T00:00:00Z", NOW), Ok(NOW - 86_400_000_000_000));
        assert_eq!(parse_time("24h", NOW), Ok(NOW - 86_400_000_000_000));
        assert_eq!(parse_time(" 90m ", NOW), Ok(NOW - 5_400_000_000_000));
        assert!(parse_time("yesterday", NOW).unwrap_err().contains("neither"));
    }
}
