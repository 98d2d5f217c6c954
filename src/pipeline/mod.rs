//! From decoded requests to ClickHouse inserts.
//!
//! ```text
//! receivers ──Ingest (bounded queue)──▶ batch loop (join + batchers) ──bounded──▶ one writer per table
//! ```
//! Backpressure: each writer takes one batch at a time; while it retries, the batch loop blocks on
//! its channel, stops reading the ingest queue, the queue fills, and receivers answer
//! UNAVAILABLE / 503 + Retry-After after `enqueue_timeout` instead of buffering without bound.
//!
//! Shutdown: when every [`Ingest`] handle is dropped the batch loop releases held calls, flushes, and
//! closes the writers' channels; writers drain. [`PipelineHandle::shutdown`] bounds that with a deadline.

pub mod batch;
pub mod join;
mod writer;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::PipelineConfig;
use crate::normalize::{ContentFragment, NormalizedCall};
use crate::rows::{LlmCallRow, LogRow, SpanRow};
use crate::storage::clickhouse::Store;
use crate::telemetry::{Stats, Table};
use batch::Batcher;
use join::Joiner;

/// Batches in flight between the batch loop and each writer.
const WRITER_QUEUE: usize = 2;
/// How often the batch loop checks ages and the join window.
const TICK: Duration = Duration::from_millis(100);

/// Rows decoded from one request.
#[derive(Debug, Default)]
pub struct Submission {
    /// `otel_traces` rows.
    pub spans: Vec<SpanRow>,
    /// LLM calls found among the spans.
    pub calls: Vec<NormalizedCall>,
    /// `otel_logs` rows.
    pub logs: Vec<LogRow>,
    /// GenAI content from log records.
    pub fragments: Vec<ContentFragment>,
}

/// Why a submission was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The queue stayed full for the whole enqueue timeout: the client should retry later.
    #[error("the collector is busy writing earlier data; retry later")]
    Busy,
    /// The pipeline has stopped (shutdown).
    #[error("the collector is shutting down")]
    Closed,
}

/// The receivers' handle on the pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Submission>,
    enqueue_timeout: Duration,
    stats: Arc<Stats>,
}

impl Ingest {
    /// Queues a submission, waiting at most the enqueue timeout for space.
    pub async fn submit(&self, submission: Submission) -> Result<(), IngestError> {
        let permit = match tokio::time::timeout(self.enqueue_timeout, self.tx.reserve()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(IngestError::Closed),
            Err(_) => {
                self.stats.refused_busy.fetch_add(1, Relaxed);
                return Err(IngestError::Busy);
            }
        };
        for (table, n) in [(Table::Traces, submission.spans.len()), (Table::Logs, submission.logs.len())] {
            self.stats.table(table).received.fetch_add(n as u64, Relaxed);
            self.stats.table(table).queued.fetch_add(n as u64, Relaxed);
        }
        permit.send(submission);
        Ok(())
    }

    /// Counts records refused before reaching the pipeline (invalid or busy).
    pub fn count_rejected(&self, table: Table, n: u64) {
        self.stats.table(table).rejected.fetch_add(n, Relaxed);
    }
}

/// Running pipeline tasks.
pub struct PipelineHandle {
    tasks: JoinSet<()>,
    cancel: CancellationToken,
}

impl PipelineHandle {
    /// Waits for the pipeline to drain (all [`Ingest`] handles must be dropped first), cancelling
    /// whatever is still running after `deadline`.
    pub async fn shutdown(mut self, deadline: Duration) {
        let stop_at = Instant::now() + deadline;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(stop_at, self.tasks.join_next()).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(?deadline, "Pipeline did not drain before the shutdown deadline; cancelling.");
                    self.cancel.cancel();
                    while self.tasks.join_next().await.is_some() {}
                }
            }
        }
    }
}

/// Starts the batch loop and the writers.
pub fn start(
    cfg: &PipelineConfig,
    store: Store,
    stats: Arc<Stats>,
    data_dir: std::path::PathBuf,
) -> (Ingest, PipelineHandle) {
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let (tx, rx) = mpsc::channel(cfg.queue_capacity);
    let ctx = writer::WriterCtx::new(store, stats.clone(), cancel.clone(), data_dir);
    let writers = Writers {
        traces: writer::spawn::<SpanRow>(&mut tasks, &ctx, Table::Traces, WRITER_QUEUE),
        logs: writer::spawn::<LogRow>(&mut tasks, &ctx, Table::Logs, WRITER_QUEUE),
        calls: writer::spawn::<LlmCallRow>(&mut tasks, &ctx, Table::LlmCalls, WRITER_QUEUE),
    };
    let batch_loop = BatchLoop {
        rx,
        writers,
        traces: Batcher::new(cfg.batch_max_rows, cfg.batch_max_delay),
        logs: Batcher::new(cfg.batch_max_rows, cfg.batch_max_delay),
        calls: Batcher::new(cfg.batch_max_rows, cfg.batch_max_delay),
        joiner: Joiner::new(cfg.join_window, cfg.max_pending_joins),
        stats: stats.clone(),
    };
    tasks.spawn(batch_loop.run(cancel.clone()));
    let ingest = Ingest { tx, enqueue_timeout: cfg.enqueue_timeout, stats };
    (ingest, PipelineHandle { tasks, cancel })
}

struct Writers {
    traces: mpsc::Sender<Vec<SpanRow>>,
    logs: mpsc::Sender<Vec<LogRow>>,
    calls: mpsc::Sender<Vec<LlmCallRow>>,
}

struct BatchLoop {
    rx: mpsc::Receiver<Submission>,
    writers: Writers,
    traces: Batcher<SpanRow>,
    logs: Batcher<LogRow>,
    calls: Batcher<LlmCallRow>,
    joiner: Joiner,
    stats: Arc<Stats>,
}

impl BatchLoop {
    async fn run(mut self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                item = self.rx.recv() => match item {
                    Some(submission) => self.accept(submission).await,
                    None => break,
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
        self.joiner.drain();
        self.move_ready_calls(Instant::now().into_std()).await;
        let (traces, logs, calls) = (self.traces.take(), self.logs.take(), self.calls.take());
        send_all(&self.writers.traces, vec![traces]).await;
        send_all(&self.writers.logs, vec![logs]).await;
        send_all(&self.writers.calls, vec![calls]).await;
    }

    async fn accept(&mut self, s: Submission) {
        let now = Instant::now().into_std();
        for call in s.calls {
            self.joiner.add_call(call, now);
        }
        for fragment in s.fragments {
            self.joiner.add_content(fragment, now);
        }
        let full = self.traces.offer(s.spans, now);
        send_all(&self.writers.traces, full).await;
        let full = self.logs.offer(s.logs, now);
        send_all(&self.writers.logs, full).await;
        self.move_ready_calls(now).await;
    }

    async fn on_tick(&mut self) {
        let now = Instant::now().into_std();
        self.joiner.tick(now);
        self.move_ready_calls(now).await;
        if self.traces.should_flush(now) {
            send_all(&self.writers.traces, vec![self.traces.take()]).await;
        }
        if self.logs.should_flush(now) {
            send_all(&self.writers.logs, vec![self.logs.take()]).await;
        }
        if self.calls.should_flush(now) {
            send_all(&self.writers.calls, vec![self.calls.take()]).await;
        }
    }

    async fn move_ready_calls(&mut self, now: std::time::Instant) {
        let ready = self.joiner.take_ready();
        if ready.is_empty() {
            return;
        }
        let counters = self.stats.table(Table::LlmCalls);
        counters.received.fetch_add(ready.len() as u64, Relaxed);
        counters.queued.fetch_add(ready.len() as u64, Relaxed);
        let full = self.calls.offer(ready, now);
        send_all(&self.writers.calls, full).await;
    }
}

/// Hands batches to a writer, waiting while it is busy (this is where backpressure starts).
async fn send_all<T>(tx: &mpsc::Sender<Vec<T>>, batches: Vec<Vec<T>>) {
    for batch in batches.into_iter().filter(|b| !b.is_empty()) {
        if tx.send(batch).await.is_err() {
            tracing::error!("Writer stopped before the pipeline; batch dropped.");
        }
    }
}
