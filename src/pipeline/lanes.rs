//! One lane per table: its batcher and the writer the batches go to. Generic over the row type, so
//! every table — and any table added later — is batched and handed over by the same code.

use std::time::{Duration, Instant};

use clickhouse::{Row, RowWrite};
use promptlog_ingest::TableRow;
use promptlog_ingest::batch::Batcher;
use promptlog_ingest::rows::{
    ExpHistogramRow, GaugeRow, HistogramRow, Keyed, LlmCallRow, LogRow, MetricRows, ScoreRow, SpanRow, SumRow,
    SummaryRow,
};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Sourced;
use super::acks::Source;
use super::writer::{self, WriterCtx};

/// Batches in flight between the batch loop and each writer.
const WRITER_QUEUE: usize = 2;

/// A row the pipeline can write: it names its table, has a replay identity and encodes as RowBinary.
pub(super) trait LaneRow:
    TableRow + Keyed + RowWrite + for<'a> Row<Value<'a> = Self> + Serialize + Send + Sync + 'static
{
}

impl<T> LaneRow for T where
    T: TableRow + Keyed + RowWrite + for<'a> Row<Value<'a> = T> + Serialize + Send + Sync + 'static
{
}

/// When a lane hands a batch over: at `max_rows` rows, at `max_bytes` estimated heap bytes
/// ([`TableRow::approx_bytes`]), or once its oldest row is `max_delay` old.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchLimits {
    pub(super) max_rows: usize,
    pub(super) max_bytes: usize,
    pub(super) max_delay: Duration,
}

/// One table's batcher and writer.
pub(super) struct Lane<T> {
    batcher: Batcher<Sourced<T>>,
    tx: mpsc::Sender<Vec<Sourced<T>>>,
}

impl<T: TableRow> Lane<T> {
    /// A lane batching into `tx`.
    pub(super) fn new(limits: BatchLimits, tx: mpsc::Sender<Vec<Sourced<T>>>) -> Self {
        let batcher = Batcher::new(limits.max_rows, limits.max_delay)
            .max_bytes(limits.max_bytes, |sourced: &Sourced<T>| sourced.row.approx_bytes());
        Self { batcher, tx }
    }
}

impl<T> Lane<T> {
    /// Adds rows of one spool record; hands over the batches that filled up.
    pub(super) async fn offer(&mut self, source: Source, rows: Vec<T>, now: Instant, cancel: &CancellationToken) {
        self.offer_sourced(rows.into_iter().map(|row| (source, row)), now, cancel).await;
    }

    /// Adds rows, each with its own spool record; hands over the batches that filled up.
    pub(super) async fn offer_sourced(
        &mut self,
        rows: impl IntoIterator<Item = (Source, T)>,
        now: Instant,
        cancel: &CancellationToken,
    ) {
        let full = self.batcher.offer(rows.into_iter().map(|(source, row)| Sourced { source, row }), now);
        send_all(&self.tx, full, cancel).await;
    }

    async fn flush_if_due(&mut self, now: Instant, cancel: &CancellationToken) {
        if self.batcher.should_flush(now) {
            self.flush(cancel).await;
        }
    }

    async fn flush(&mut self, cancel: &CancellationToken) {
        send_all(&self.tx, vec![self.batcher.take()], cancel).await;
    }
}

/// Every table's lane.
pub(super) struct Lanes {
    pub(super) traces: Lane<SpanRow>,
    pub(super) logs: Lane<LogRow>,
    pub(super) calls: Lane<LlmCallRow>,
    pub(super) metrics: MetricLanes,
    pub(super) scores: Lane<ScoreRow>,
}

/// The five metrics tables' lanes (rows go straight in: no join).
pub(super) struct MetricLanes {
    gauge: Lane<GaugeRow>,
    sum: Lane<SumRow>,
    histogram: Lane<HistogramRow>,
    exp_histogram: Lane<ExpHistogramRow>,
    summary: Lane<SummaryRow>,
}

/// Runs `$what` on each of the five metric lanes.
macro_rules! each_metric_lane {
    ($lanes:expr, |$lane:ident| $what:expr) => {{
        let m = &mut $lanes;
        {
            let $lane = &mut m.gauge;
            $what
        }
        {
            let $lane = &mut m.sum;
            $what
        }
        {
            let $lane = &mut m.histogram;
            $what
        }
        {
            let $lane = &mut m.exp_histogram;
            $what
        }
        {
            let $lane = &mut m.summary;
            $what
        }
    }};
}

impl MetricLanes {
    fn start(tasks: &mut JoinSet<()>, ctx: &WriterCtx, limits: BatchLimits) -> Self {
        Self {
            gauge: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
            sum: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
            histogram: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
            exp_histogram: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
            summary: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
        }
    }

    /// Lanes whose writers are gone (for tests of the batch loop that send no metrics).
    #[cfg(test)]
    pub(super) fn unused(limits: BatchLimits) -> Self {
        fn lane<T: TableRow>(limits: BatchLimits) -> Lane<T> {
            Lane::new(limits, mpsc::channel(1).0)
        }
        Self {
            gauge: lane(limits),
            sum: lane(limits),
            histogram: lane(limits),
            exp_histogram: lane(limits),
            summary: lane(limits),
        }
    }

    /// Adds the data points of one spool record, each to its table's lane.
    pub(super) async fn offer(&mut self, source: Source, rows: MetricRows, now: Instant, cancel: &CancellationToken) {
        let MetricRows { gauge, sum, histogram, exp_histogram, summary } = rows;
        self.gauge.offer(source, gauge, now, cancel).await;
        self.sum.offer(source, sum, now, cancel).await;
        self.histogram.offer(source, histogram, now, cancel).await;
        self.exp_histogram.offer(source, exp_histogram, now, cancel).await;
        self.summary.offer(source, summary, now, cancel).await;
    }

    async fn flush_due(&mut self, now: Instant, cancel: &CancellationToken) {
        each_metric_lane!(*self, |lane| lane.flush_if_due(now, cancel).await);
    }

    async fn flush_all(&mut self, cancel: &CancellationToken) {
        each_metric_lane!(*self, |lane| lane.flush(cancel).await);
    }
}

impl Lanes {
    /// Spawns a writer per table.
    pub(super) fn start(tasks: &mut JoinSet<()>, ctx: &WriterCtx, limits: BatchLimits) -> Self {
        Self {
            traces: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
            logs: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
            calls: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
            metrics: MetricLanes::start(tasks, ctx, limits),
            scores: Lane::new(limits, writer::spawn(tasks, ctx, WRITER_QUEUE)),
        }
    }

    /// Hands over every batch whose oldest row has waited its delay.
    pub(super) async fn flush_due(&mut self, now: Instant, cancel: &CancellationToken) {
        self.traces.flush_if_due(now, cancel).await;
        self.logs.flush_if_due(now, cancel).await;
        self.calls.flush_if_due(now, cancel).await;
        self.metrics.flush_due(now, cancel).await;
        self.scores.flush_if_due(now, cancel).await;
    }

    /// Hands over everything buffered (shutdown).
    pub(super) async fn flush_all(&mut self, cancel: &CancellationToken) {
        self.traces.flush(cancel).await;
        self.logs.flush(cancel).await;
        self.calls.flush(cancel).await;
        self.metrics.flush_all(cancel).await;
        self.scores.flush(cancel).await;
    }
}

/// Hands batches to a writer, waiting while it is busy (this is where backpressure starts). A batch
/// not handed over (writer gone, or cancelled) is simply not acked: it stays in the spool.
async fn send_all<T>(tx: &mpsc::Sender<Vec<T>>, batches: Vec<Vec<T>>, cancel: &CancellationToken) {
    for batch in batches.into_iter().filter(|b| !b.is_empty()) {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            sent = tx.send(batch) => if sent.is_err() {
                tracing::error!("Writer stopped before the pipeline; batch left in the spool.");
            },
        }
    }
}
