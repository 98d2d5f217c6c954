//! From accepted requests to ClickHouse inserts, and back to the spool as acks.
//!
//! ```text
//! receiver: 0. room in the queue (waits ≤ queue_wait), normalise, then
//!            1. spool.append (fsynced) ──▶ 2. answer the client
//! receiver ──┤
//!            3. try_send ──Queued (bounded)──▶ batch loop (join + batchers) ──bounded──▶ writer per table
//!               └─ queue full or no room: id ──▶ backlog ──drainer: spool.read + normalise──┘ │
//!                                                                    AckTracker ◀── rows written
//!                                                                        └──▶ spool.ack (record done)
//! ```
//! Delivery: a request is acknowledged to its client only once it is in the spool, and it leaves the
//! spool only once every row made from it is in ClickHouse (or a dead-letter file). In between, the
//! in-memory queue holds at most `queue_capacity` requests of at most `max_queued_bytes` together. A
//! live request waits up to `queue_wait` for that room before it is normalised (so it is not
//! normalised twice); beyond that only spool ids wait (the backlog), so a slow or absent ClickHouse
//! fills the disk spool, not memory, and clients are refused (UNAVAILABLE / 503 + Retry-After) only
//! when the spool reaches its cap.
//!
//! Records found in the spool at start-up go through the backlog marked `replayed`; the writers skip
//! their rows that ClickHouse already holds (see [`crate::rows::Keyed`]).
//!
//! Shutdown ([`PipelineHandle::shutdown`]): the drainer stops; once every [`Ingest`] handle is dropped
//! the batch loop releases held calls, flushes, and closes the writers' channels; writers drain until
//! the deadline, then are cancelled; the spool is closed. Anything unwritten stays in the spool.

mod acks;
mod backlog;
mod lanes;
#[cfg(test)]
mod tests;
mod writer;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use promptlog_ingest::join::Joiner;
use promptlog_ingest::{Ingestor, Request, RequestContext, Submission, Table};
use promptlog_spool::{RecordId, Spool, SpoolError};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::receiver::budget::{MemoryBudget, Reservation};
use crate::runtime::blocking;
use crate::storage::clickhouse::Store;
use crate::telemetry::Stats;
use acks::{AckTracker, Source};
use backlog::{Backlog, Drainer};
use lanes::Lanes;

/// How often the batch loop checks ages and the join window.
const TICK: Duration = Duration::from_millis(100);
/// How often the spool gauges in [`Stats`] are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_millis(250);

/// The result of an accepted request: how many records were refused, and why (or warnings).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// Records not stored.
    pub(crate) rejected: u64,
    /// Explanation for the client; empty when everything was stored as sent.
    pub(crate) message: String,
}

impl Outcome {
    /// The `partial_success` (count and message), when there were rejections or warnings such as
    /// truncation.
    pub(crate) fn partial(self) -> Option<(u64, String)> {
        (self.rejected > 0 || !self.message.is_empty()).then_some((self.rejected, self.message))
    }
}

/// A submission on its way through the pipeline, with the spool record it came from.
pub(crate) struct Queued {
    submission: Submission,
    source: Source,
    /// Its share of `pipeline.max_queued_bytes`, given back once the batch loop has taken its rows.
    room: Option<Reservation>,
}

/// A row and the spool record it came from.
pub(crate) struct Sourced<T> {
    source: Source,
    row: T,
}

/// Why a request was not accepted. Nothing of it was stored or acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum IngestError {
    /// The spool is at its size cap (ClickHouse down or slower than clients): retry later.
    #[error("the collector's spool is full ({used} of {max} bytes) while ClickHouse catches up; retry later")]
    SpoolFull { used: u64, max: u64 },
    /// The spool could not be written (disk full or failing): retry later.
    #[error("the collector cannot write its spool ({0}); retry later")]
    SpoolIo(#[source] Arc<SpoolError>),
    /// The request is larger than the spool could ever hold; retrying cannot help.
    #[error("request of {len} bytes cannot fit in the collector's spool (at most {max} bytes)")]
    TooLarge { len: u64, max: u64 },
    /// The collector is shutting down: retry (against this or another instance).
    #[error("the collector is shutting down")]
    Closed,
}

/// The receivers' handle on the pipeline. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Ingest {
    /// The seam, shared with the backlog drainer: live and replayed requests go through it alike.
    ingestor: Arc<Ingestor>,
    tx: mpsc::Sender<Queued>,
    spool: Spool,
    /// Largest record the spool can ever take: a bigger one would be refused as `Full` forever.
    max_record: u64,
    backlog: Arc<Backlog>,
    /// `pipeline.max_queued_bytes`, shared with the drainer.
    queued: MemoryBudget,
    /// `pipeline.queue_wait`.
    queue_wait: Duration,
    stats: Arc<Stats>,
}

impl Ingest {
    /// Runs a live request through the seam (on a blocking thread: it is CPU work), stores what it
    /// made of it and hands the rows on (see [`Ingest::submit`]). `protobuf`: the body as received.
    pub(crate) async fn accept(
        &self,
        ctx: RequestContext,
        request: Request,
        protobuf: Option<Vec<u8>>,
    ) -> Result<Outcome, IngestError> {
        // Room in the queue first, before the CPU work: a request normalised when there is no room
        // would be normalised again when read back from the spool. Waited for `queue_wait` at most.
        let size = protobuf.as_ref().map_or_else(|| request.encoded_len(), Vec::len);
        let room = tokio::time::timeout(self.queue_wait, self.queued.take(size)).await.ok();
        let (signal, ingestor) = (ctx.signal, self.ingestor.clone());
        let accepted = blocking(move || ingestor.accept(&ctx, request, protobuf)).await;
        let table = signal.table();
        self.count_rejected(table, accepted.report.rejected);
        let outcome =
            Outcome { rejected: accepted.report.rejected, message: accepted.message(signal, self.ingestor.limits()) };
        if let Some(record) = accepted.record {
            let records = accepted.submission.records();
            let submitted = self.submit(record, accepted.submission, room).await;
            submitted.inspect_err(|_| self.count_rejected(table, records))?;
        }
        Ok(outcome)
    }

    /// Stores `record` durably in the spool (returns once it is fsynced), then hands `submission`, the
    /// rows made from it, to the pipeline in `room`, or without room to the backlog. `Ok` means the
    /// client may be told its data was accepted.
    async fn submit(
        &self,
        record: bytes::Bytes,
        submission: Submission,
        room: Option<Reservation>,
    ) -> Result<(), IngestError> {
        let len = record.len() as u64;
        if promptlog_spool::frame_len(record.len()) > self.max_record {
            return Err(IngestError::TooLarge { len, max: self.max_record });
        }
        let id = self.spool.append(record).await.map_err(|e| self.refused(e, len))?;
        for (table, n) in submission.per_table() {
            self.stats.table(table).received.fetch_add(n, Relaxed);
        }
        let source = Source { id, replayed: false };
        // No room in memory (`pipeline.max_queued_bytes`): only its id waits, as when the queue is full.
        let Some(room) = room else {
            self.to_backlog(source);
            return Ok(());
        };
        match self.tx.try_send(Queued { submission, source, room: Some(room) }) {
            Ok(()) => {}
            // Durable already: keep only the id, and read the record back when there is room.
            Err(mpsc::error::TrySendError::Full(queued)) => self.to_backlog(queued.source),
            // Shutting down: the record stays in the spool and is written after the next start.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
        Ok(())
    }

    /// Keeps only the id of a durable record, read back from the spool when there is room.
    fn to_backlog(&self, source: Source) {
        self.stats.spool.backlogged.fetch_add(1, Relaxed);
        self.backlog.push(source);
    }

    fn refused(&self, e: SpoolError, len: u64) -> IngestError {
        match e {
            SpoolError::Full { used, max } => {
                self.stats.refused_busy.fetch_add(1, Relaxed);
                IngestError::SpoolFull { used, max }
            }
            SpoolError::Closed => IngestError::Closed,
            SpoolError::RecordSize { max, .. } => IngestError::TooLarge { len, max },
            other => {
                self.stats.refused_spool_io.fetch_add(1, Relaxed);
                tracing::error!(error = %other, "Cannot write the spool; refusing the request.");
                IngestError::SpoolIo(Arc::new(other))
            }
        }
    }

    /// Counts records refused before reaching the pipeline (invalid or refused).
    pub(crate) fn count_rejected(&self, table: Table, n: u64) {
        self.stats.table(table).rejected.fetch_add(n, Relaxed);
    }
}

/// What [`start`] needs besides the configuration.
pub(crate) struct Parts {
    /// Where rows go.
    pub store: Store,
    /// Counters.
    pub stats: Arc<Stats>,
    /// The open spool.
    pub spool: Spool,
    /// Ids of the records [`Spool::open`] found unacked, oldest first.
    pub replay: Vec<RecordId>,
    /// The seam, with its processors.
    pub ingestor: Ingestor,
}

/// Running pipeline tasks.
pub(crate) struct PipelineHandle {
    /// Batch loop and writers.
    tasks: JoinSet<()>,
    /// Drainer and gauges.
    intake: JoinSet<()>,
    stop_intake: CancellationToken,
    cancel: CancellationToken,
    spool: Spool,
}

impl PipelineHandle {
    /// Stops reading the backlog, waits until `stop_at` for the pipeline to drain (all [`Ingest`]
    /// handles must be dropped first), cancels whatever still runs, and closes the spool. Requests not
    /// written by then stay in the spool.
    pub(crate) async fn shutdown(mut self, stop_at: Instant) {
        self.stop_intake.cancel();
        while self.intake.join_next().await.is_some() {}
        while !self.tasks.is_empty() {
            if tokio::time::timeout_at(stop_at, self.tasks.join_next()).await.is_err() {
                tracing::warn!("Pipeline did not drain before the shutdown deadline; the rest stays in the spool.");
                self.cancel.cancel();
                while self.tasks.join_next().await.is_some() {}
            }
        }
        self.spool.close().await;
        let left = self.spool.stats();
        tracing::info!(records = left.records, bytes = left.bytes, "Spool closed.");
    }
}

/// Starts the batch loop, the writers and the backlog drainer; queues `parts.replay` for delivery.
pub(crate) fn start(config: &Config, parts: Parts) -> (Ingest, PipelineHandle) {
    let cfg = &config.pipeline;
    let Parts { store, stats, spool, replay, ingestor } = parts;
    let ingestor = Arc::new(ingestor);
    let cancel = CancellationToken::new();
    let stop_intake = CancellationToken::new();
    let acks = Arc::new(AckTracker::new(spool.clone()));
    let mut tasks = JoinSet::new();
    let (tx, rx) = mpsc::channel(cfg.queue_capacity);
    let keys = ingestor.keys().cloned();
    let ctx = writer::WriterCtx::new(store, stats.clone(), cancel.clone(), config.data_dir.clone(), keys, acks.clone());
    let batch_loop = BatchLoop {
        rx,
        lanes: Lanes::start(
            &mut tasks,
            &ctx,
            lanes::BatchLimits {
                max_rows: cfg.batch_max_rows,
                max_bytes: cfg.batch_max_bytes,
                max_delay: cfg.batch_max_delay,
            },
        ),
        joiner: Joiner::with_tags(cfg.join_window, cfg.max_pending_joins)
            .max_held_bytes(cfg.max_pending_join_bytes)
            .merging_duplicates(cfg.merge_duplicate_calls)
            .on_merged({
                // A merged call is priced again from its merged counts, by the same processors.
                let ingestor = ingestor.clone();
                Box::new(move |row| ingestor.merged(row))
            }),
        acks,
        stats: stats.clone(),
        cancel: cancel.clone(),
    };
    tasks.spawn(batch_loop.run());

    let backlog = Arc::new(Backlog::default());
    let queued = MemoryBudget::new(cfg.max_queued_bytes);
    if !replay.is_empty() {
        tracing::info!(records = replay.len(), "Replaying requests left in the spool by the previous run.");
        stats.spool.replayed.fetch_add(replay.len() as u64, Relaxed);
    }
    for id in replay {
        backlog.push(Source { id, replayed: true });
    }
    let drainer = Drainer {
        backlog: backlog.clone(),
        spool: spool.clone(),
        tx: tx.clone(),
        queued: queued.clone(),
        ingestor: ingestor.clone(),
        stats: stats.clone(),
    };
    let mut intake = JoinSet::new();
    intake.spawn(drainer.run(stop_intake.clone()));
    intake.spawn(update_gauges(spool.clone(), backlog.clone(), stats.clone(), stop_intake.clone()));

    let max_record = config.spool.max_bytes;
    let queue_wait = cfg.queue_wait;
    let ingest = Ingest { ingestor, tx, spool: spool.clone(), max_record, backlog, queued, queue_wait, stats };
    (ingest, PipelineHandle { tasks, intake, stop_intake, cancel, spool })
}

/// Copies spool and backlog figures into [`Stats`] for `/health` and metrics.
async fn update_gauges(spool: Spool, backlog: Arc<Backlog>, stats: Arc<Stats>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(GAUGE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => stats.spool.update(&spool.stats(), backlog.len() as u64),
        }
    }
}

struct BatchLoop {
    rx: mpsc::Receiver<Queued>,
    lanes: Lanes,
    joiner: Joiner<Source>,
    acks: Arc<AckTracker>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
}

impl BatchLoop {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return,
                item = self.rx.recv() => match item {
                    Some(queued) => self.accept(queued).await,
                    None => break,
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
        self.joiner.drain();
        self.move_ready_calls(Instant::now().into_std()).await;
        self.lanes.flush_all(&self.cancel).await;
    }

    async fn accept(&mut self, queued: Queued) {
        // `_room` is given back when this returns: its rows are in the lanes and the joiner by then.
        let Queued { submission: s, source, room: _room } = queued;
        // Before any row can reach a writer, so no ack can come early.
        self.acks.register(source.id, s.rows());
        for (table, n) in s.per_table() {
            self.stats.table(table).queued.fetch_add(n, Relaxed);
        }
        let now = Instant::now().into_std();
        for call in s.calls {
            self.joiner.add_tagged_call(call, source, now);
        }
        for fragment in s.fragments {
            self.joiner.add_content(fragment, now);
        }
        self.joiner.add_span_links(&s.spans);
        self.lanes.traces.offer(source, s.spans, now, &self.cancel).await;
        self.lanes.logs.offer(source, s.logs, now, &self.cancel).await;
        self.lanes.metrics.offer(source, s.metrics, now, &self.cancel).await;
        self.lanes.scores.offer(source, s.scores, now, &self.cancel).await;
        self.move_ready_calls(now).await;
    }

    async fn on_tick(&mut self) {
        let now = Instant::now().into_std();
        self.joiner.tick(now);
        self.move_ready_calls(now).await;
        self.lanes.flush_due(now, &self.cancel).await;
    }

    async fn move_ready_calls(&mut self, now: std::time::Instant) {
        self.stats.join_held.store(self.joiner.pending() as u64, Relaxed);
        self.stats.join_held_bytes.store(self.joiner.held_bytes() as u64, Relaxed);
        let ready = self.joiner.take_tagged();
        if ready.is_empty() {
            return;
        }
        let counters = self.stats.table(Table::LlmCalls);
        counters.received.fetch_add(ready.len() as u64, Relaxed);
        counters.queued.fetch_add(ready.len() as u64, Relaxed);
        // Unpriced calls are counted here, once per counted call (copies and rollups are not).
        if let Some(unpriced) = self.stats.unpriced() {
            ready.iter().for_each(|(_, row)| {
                unpriced.count(row);
            });
        }
        self.lanes.calls.offer_sourced(ready, now, &self.cancel).await;
    }
}
