//! One writer task per table: inserts each batch, retrying transient failures with capped backoff and
//! the same deduplication token (so a retry that reached the server is stored once), and moving
//! permanently refused batches to the dead-letter directory.

use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use clickhouse::{Row, RowWrite};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::storage::clickhouse::{Retry, Store, StoreError, retry};
use crate::telemetry::{Stats, Table};

/// What every writer shares.
#[derive(Clone)]
pub(super) struct WriterCtx {
    store: Store,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    dead_letter_dir: PathBuf,
    /// Distinguishes this process's dedup tokens from any other run's.
    run_id: u64,
    seq: Arc<AtomicU64>,
}

impl WriterCtx {
    pub(super) fn new(store: Store, stats: Arc<Stats>, cancel: CancellationToken, data_dir: PathBuf) -> Self {
        let run_id = RandomState::new().hash_one(SystemTime::now());
        let dead_letter_dir = data_dir.join("dead-letter");
        Self { store, stats, cancel, dead_letter_dir, run_id, seq: Arc::new(AtomicU64::new(0)) }
    }
}

/// Spawns the writer of `table` and returns the sender that feeds it.
pub(super) fn spawn<T>(tasks: &mut JoinSet<()>, ctx: &WriterCtx, table: Table, queue: usize) -> mpsc::Sender<Vec<T>>
where
    T: RowWrite + for<'a> Row<Value<'a> = T> + Serialize + Send + Sync + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<T>>(queue);
    let ctx = ctx.clone();
    tasks.spawn(async move {
        while let Some(batch) = rx.recv().await {
            write_batch(&ctx, table, batch).await;
        }
    });
    tx
}

async fn write_batch<T>(ctx: &WriterCtx, table: Table, rows: Vec<T>)
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
        let result = ctx.store.insert(table.name(), &rows, &token).await;
        ctx.stats.set_clickhouse_up(result.is_ok());
        let err = match result {
            Ok(()) => {
                counters.written.fetch_add(n, Relaxed);
                counters.queued.fetch_sub(n, Relaxed);
                counters.last_batch_micros.store(started.elapsed().as_micros() as u64, Relaxed);
                return;
            }
            Err(err) => err,
        };
        if err.retry() == Retry::Permanent {
            tracing::error!(table = table.name(), rows = n, error = %err, "ClickHouse refused the batch; moving it to the dead-letter directory.");
            dead_letter(ctx, table, &rows, &err);
            counters.dead_lettered.fetch_add(n, Relaxed);
            counters.queued.fetch_sub(n, Relaxed);
            return;
        }
        counters.retried.fetch_add(1, Relaxed);
        let jitter = (RandomState::new().hash_one(attempt) % 1000) as f64 / 1000.0;
        let delay = retry::backoff(attempt, jitter);
        tracing::warn!(table = table.name(), rows = n, attempt, ?delay, error = %err, "Insert failed; retrying.");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = ctx.cancel.cancelled() => {
                tracing::error!(table = table.name(), rows = n, "Shutdown deadline reached while ClickHouse was failing; batch not written.");
                return;
            }
        }
    }
}

/// Appends the batch as JSON lines, preceded by a line saying why, to `dead-letter/<table>-<ms>.jsonl`.
fn dead_letter<T: Serialize>(ctx: &WriterCtx, table: Table, rows: &[T], err: &StoreError) {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let path = ctx.dead_letter_dir.join(format!("{}-{ms}.jsonl", table.name()));
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&ctx.dead_letter_dir)?;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        serde_json::to_writer(&mut file, &serde_json::json!({"table": table.name(), "reason": err.to_string()}))?;
        file.write_all(b"\n")?;
        for row in rows {
            serde_json::to_writer(&mut file, row)?;
            file.write_all(b"\n")?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = result {
        tracing::error!(path = %path.display(), error = %e, "Could not write the dead-letter file; batch lost.");
    }
}
