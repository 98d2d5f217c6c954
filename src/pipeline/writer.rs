//! One writer task per table. For each batch:
//! 1. rows of replayed spool records that ClickHouse already holds are dropped (written before a
//!    crash whose ack was not persisted yet);
//! 2. the rest is inserted, retrying transient failures with capped, jittered exponential backoff and
//!    the same deduplication token, so an attempt that reached the server is stored once;
//! 3. a batch ClickHouse refuses for good goes to the dead-letter directory, with the reason;
//! 4. once written or dead-lettered, the batch's rows are counted off their spool records, which are
//!    acked when nothing of them is left.
//!
//! A batch is never retried without a pause, and cancellation (the shutdown deadline) interrupts both
//! pauses and attempts: the batch is then not acked and stays in the spool.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use clickhouse::{Row, RowWrite};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use promptlog_ingest::rows::Keyed;
use promptlog_ingest::{KeyRing, Table};

use super::Sourced;
use super::acks::{AckTracker, tally};
use super::lanes::LaneRow;
use crate::storage::clickhouse::{Retry, Store, StoreError, retry};
use crate::telemetry::Stats;

/// What every writer shares.
#[derive(Clone)]
pub(super) struct WriterCtx {
    store: Store,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    dead_letter_dir: PathBuf,
    /// Dead-letter files are sealed with these when encryption at rest is on.
    keys: Option<KeyRing>,
    acks: Arc<AckTracker>,
    /// Distinguishes this process's dedup tokens from any other run's.
    run_id: u64,
    seq: Arc<AtomicU64>,
}

impl WriterCtx {
    pub(super) fn new(
        store: Store,
        stats: Arc<Stats>,
        cancel: CancellationToken,
        data_dir: PathBuf,
        keys: Option<KeyRing>,
        acks: Arc<AckTracker>,
    ) -> Self {
        let run_id = RandomState::new().hash_one(SystemTime::now());
        let dead_letter_dir = data_dir.join("dead-letter");
        Self { store, stats, cancel, dead_letter_dir, keys, acks, run_id, seq: Arc::new(AtomicU64::new(0)) }
    }

    /// Sleeps the backoff for `attempt`; false when cancelled meanwhile.
    async fn pause(&self, attempt: u32) -> bool {
        let jitter = (RandomState::new().hash_one(attempt) % 1000) as f64 / 1000.0;
        tokio::select! {
            _ = tokio::time::sleep(retry::backoff(attempt, jitter)) => true,
            _ = self.cancel.cancelled() => false,
        }
    }
}

/// Spawns the writer of `T`'s table and returns the sender that feeds it.
pub(super) fn spawn<T: LaneRow>(
    tasks: &mut JoinSet<()>,
    ctx: &WriterCtx,
    queue: usize,
) -> mpsc::Sender<Vec<Sourced<T>>> {
    let table = T::TABLE;
    let (tx, mut rx) = mpsc::channel::<Vec<Sourced<T>>>(queue);
    let ctx = ctx.clone();
    tasks.spawn(async move {
        while let Some(batch) = rx.recv().await {
            write_batch(&ctx, table, batch).await;
        }
    });
    tx
}

/// How a batch ended.
enum Outcome {
    /// In ClickHouse.
    Written,
    /// Refused for good and saved in the dead-letter directory.
    DeadLettered,
    /// Not written (shutdown deadline, or the dead-letter file could not be written): left in the spool.
    Abandoned,
}

async fn write_batch<T>(ctx: &WriterCtx, table: Table, batch: Vec<Sourced<T>>)
where
    T: RowWrite + for<'a> Row<Value<'a> = T> + Serialize + Keyed,
{
    let done = tally(batch.iter().map(|r| r.source));
    let Some(rows) = skip_stored(ctx, table, batch).await else { return };
    let outcome = if rows.is_empty() { Outcome::Written } else { insert(ctx, table, &rows).await };
    match outcome {
        Outcome::Written | Outcome::DeadLettered => ctx.acks.written(&done),
        Outcome::Abandoned => {}
    }
}

/// Drops rows of replayed records that are already stored; `None` when cancelled.
async fn skip_stored<T: Keyed>(ctx: &WriterCtx, table: Table, batch: Vec<Sourced<T>>) -> Option<Vec<T>> {
    if !batch.iter().any(|r| r.source.replayed) {
        return Some(batch.into_iter().map(|r| r.row).collect());
    }
    let replayed: Vec<&T> = batch.iter().filter(|r| r.source.replayed).map(|r| &r.row).collect();
    let mut attempt = 0;
    let stored = loop {
        attempt += 1;
        let result = tokio::select! {
            result = ctx.store.existing_keys(table.name(), &replayed) => result,
            _ = ctx.cancel.cancelled() => return None,
        };
        match result {
            Ok(keys) => break keys,
            Err(e) if e.retry() == Retry::Permanent => {
                // Inserting may duplicate rows; not inserting could lose them. Duplication is the lesser harm.
                tracing::error!(table = table.name(), error = %e, "Cannot check which replayed rows are stored; inserting them all.");
                break HashSet::new();
            }
            Err(e) => {
                tracing::warn!(table = table.name(), attempt, error = %e, "Cannot check which replayed rows are stored yet; retrying.");
                if !ctx.pause(attempt).await {
                    return None;
                }
            }
        }
    };
    let before = batch.len();
    let rows: Vec<T> =
        batch.into_iter().filter(|r| !(r.source.replayed && stored.contains(&r.row.key()))).map(|r| r.row).collect();
    let skipped = (before - rows.len()) as u64;
    if skipped > 0 {
        tracing::info!(table = table.name(), skipped, "Skipped replayed rows that were already stored.");
        let counters = ctx.stats.table(table);
        counters.replay_skipped.fetch_add(skipped, Relaxed);
        counters.queued.fetch_sub(skipped, Relaxed);
    }
    Some(rows)
}

/// Inserts `rows`, retrying until written, refused for good, or cancelled.
async fn insert<T>(ctx: &WriterCtx, table: Table, rows: &[T]) -> Outcome
where
    T: RowWrite + for<'a> Row<Value<'a> = T> + Serialize,
{
    let counters = ctx.stats.table(table);
    let token = format!("{:016x}-{}-{}", ctx.run_id, table.name(), ctx.seq.fetch_add(1, Relaxed));
    let n = rows.len() as u64;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let started = std::time::Instant::now();
        let result = tokio::select! {
            result = ctx.store.insert(table.name(), rows, &token) => result,
            _ = ctx.cancel.cancelled() => return abandon(table, n),
        };
        ctx.stats.set_clickhouse_up(result.is_ok());
        let err = match result {
            Ok(()) => {
                counters.written.fetch_add(n, Relaxed);
                counters.queued.fetch_sub(n, Relaxed);
                counters.last_batch_micros.store(started.elapsed().as_micros() as u64, Relaxed);
                return Outcome::Written;
            }
            Err(err) => err,
        };
        if err.retry() == Retry::Permanent {
            tracing::error!(table = table.name(), rows = n, error = %err, "ClickHouse refused the batch; moving it to the dead-letter directory.");
            if let Err(e) = dead_letter(ctx, table, rows, &err) {
                tracing::error!(table = table.name(), error = %e, "Could not write the dead-letter file; the batch stays in the spool.");
                return Outcome::Abandoned;
            }
            counters.dead_lettered.fetch_add(n, Relaxed);
            counters.queued.fetch_sub(n, Relaxed);
            return Outcome::DeadLettered;
        }
        counters.retried.fetch_add(1, Relaxed);
        tracing::warn!(table = table.name(), rows = n, attempt, error = %err, "Insert failed; retrying.");
        if !ctx.pause(attempt).await {
            return abandon(table, n);
        }
    }
}

fn abandon(table: Table, rows: u64) -> Outcome {
    tracing::warn!(
        table = table.name(),
        rows,
        "Shutdown deadline reached before the batch was written; it stays in the spool."
    );
    Outcome::Abandoned
}

/// Writes the batch as JSON lines, preceded by a line saying why, to `dead-letter/<table>-<ms>-<n>.jsonl`
/// (sealed, `.jsonl.sealed`, when encryption at rest is on) and fsyncs it: the batch's spool records
/// are acked once this returns `Ok`.
fn dead_letter<T: Serialize>(ctx: &WriterCtx, table: Table, rows: &[T], err: &StoreError) -> std::io::Result<()> {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let stem = format!("{}-{ms}-{}", table.name(), ctx.seq.fetch_add(1, Relaxed));
    let mut jsonl = Vec::new();
    serde_json::to_writer(&mut jsonl, &serde_json::json!({"table": table.name(), "reason": err.to_string()}))?;
    jsonl.push(b'\n');
    for row in rows {
        serde_json::to_writer(&mut jsonl, row)?;
        jsonl.push(b'\n');
    }
    crate::dead_letter::write(&ctx.dead_letter_dir, &stem, jsonl, ctx.keys.as_ref()).map(drop)
}
