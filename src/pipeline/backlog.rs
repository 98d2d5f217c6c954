//! The backlog: accepted requests that are in the spool but not in the in-memory pipeline, because the
//! pipeline queue was full when they arrived (ClickHouse slow or down) or because they were found in
//! the spool at start-up. Only their ids are held here, so memory stays small whatever the backlog's
//! length; the spool's size cap is the real limit.
//!
//! One drainer task reads each record back from the spool when the pipeline has room, normalises it
//! again and queues it, oldest first.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use promptlog_ingest::{Ingestor, RecordError, Submission};
use promptlog_spool::{Spool, SpoolError};

use super::Queued;
use super::acks::Source;
use crate::receiver::budget::MemoryBudget;
use crate::runtime::blocking;
use crate::telemetry::Stats;

/// Wait before reading a record again after a disk read failed.
const READ_RETRY: Duration = Duration::from_secs(1);

/// Ids of spooled records waiting for room in the pipeline, oldest first.
#[derive(Default)]
pub(super) struct Backlog {
    queue: Mutex<VecDeque<Source>>,
    added: Notify,
}

impl Backlog {
    /// Poisoning is ignored: every critical section is a single queue operation.
    fn lock(&self) -> MutexGuard<'_, VecDeque<Source>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a record at the end.
    pub(super) fn push(&self, source: Source) {
        self.lock().push_back(source);
        self.added.notify_one();
    }

    /// Puts a record back at the front (its turn is not over).
    fn push_front(&self, source: Source) {
        self.lock().push_front(source);
        self.added.notify_one();
    }

    fn pop(&self) -> Option<Source> {
        self.lock().pop_front()
    }

    /// Records waiting.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// What the drainer needs.
pub(super) struct Drainer {
    pub(super) backlog: Arc<Backlog>,
    pub(super) spool: Spool,
    pub(super) tx: mpsc::Sender<Queued>,
    /// `pipeline.max_queued_bytes`, shared with the live path.
    pub(super) queued: MemoryBudget,
    /// The same seam the live requests went through.
    pub(super) ingestor: Arc<Ingestor>,
    pub(super) stats: Arc<Stats>,
}

impl Drainer {
    /// Feeds backlog records into the pipeline until `stop` is cancelled; records not fed by then stay
    /// in the spool (replayed at the next start).
    pub(super) async fn run(self, stop: CancellationToken) {
        loop {
            let source = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                source = self.next() => source,
            };
            // Wait for room first, so a record is read from disk only when it can be queued at once.
            let permit = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                permit = self.tx.reserve() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            match self.load(source).await {
                Ok((submission, len)) => {
                    let room = tokio::select! {
                        biased;
                        _ = stop.cancelled() => return,
                        room = self.queued.take(len) => room,
                    };
                    permit.send(Queued { submission, source, room: Some(room) })
                }
                Err(Load::Retry(e)) => {
                    tracing::warn!(id = %source.id, error = %e, "Cannot read a spooled request; retrying.");
                    drop(permit);
                    self.backlog.push_front(source);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(READ_RETRY) => {}
                    }
                }
                Err(Load::Gone) => tracing::debug!(id = %source.id, "Backlog record was acked already."),
                Err(Load::Lost(reason)) => {
                    tracing::error!(id = %source.id, %reason, "Spooled request cannot be read back; it is lost.");
                    self.stats.spool.unreadable.fetch_add(1, Relaxed);
                    // Acked so a record that can never be delivered does not pin its segment forever.
                    self.spool.ack(source.id);
                }
            }
        }
    }

    async fn next(&self) -> Source {
        loop {
            let added = self.backlog.added.notified();
            if let Some(source) = self.backlog.pop() {
                return source;
            }
            added.await;
        }
    }

    /// The record's rows, and its length (what it takes of `pipeline.max_queued_bytes`).
    async fn load(&self, source: Source) -> Result<(Submission, usize), Load> {
        let (spool, ingestor) = (self.spool.clone(), self.ingestor.clone());
        blocking(move || {
            let bytes = spool.read(source.id).map_err(Load::from)?;
            let submission = ingestor.replay(&bytes).map_err(|e: RecordError| Load::Lost(Box::new(e)))?;
            Ok((submission, bytes.len()))
        })
        .await
    }
}

/// Why a backlog record could not be loaded.
enum Load {
    /// Transient (an I/O error): try again later.
    Retry(SpoolError),
    /// Acked already: nothing to do.
    Gone,
    /// Never loadable: damaged on disk ([`SpoolError`]), or not a record this version can read
    /// ([`RecordError`]).
    Lost(Box<dyn std::error::Error + Send + Sync>),
}

impl From<SpoolError> for Load {
    fn from(e: SpoolError) -> Self {
        match e {
            SpoolError::Io(_) => Load::Retry(e),
            SpoolError::Unknown(_) => Load::Gone,
            other => Load::Lost(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptlog_ingest::{Limits, Processors, Request, RequestContext, Signal, record};
    use promptlog_otlp::{kv, resource, span, traces_request};
    use promptlog_spool::SpoolOptions;

    #[tokio::test]
    async fn drainer_feeds_records_back_and_retires_unreadable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), SpoolOptions { fsync: false, ..SpoolOptions::default() }).unwrap();
        let spans =
            vec![span("embeddings m", 1_700_000_000_000_000_000, 1, vec![kv("gen_ai.operation.name", "embeddings")])];
        let request = Request::Traces(traces_request(resource("s", "e"), spans));
        let good = record::encode_request(&RequestContext::new(Signal::Traces, 0), &request);
        let good = spool.append(good).await.unwrap();
        let bad = spool.append(bytes::Bytes::from_static(b"\x07not a record")).await.unwrap();
        let backlog = Arc::new(Backlog::default());
        for id in [bad, good] {
            backlog.push(Source { id, replayed: true });
        }
        let (tx, mut rx) = mpsc::channel(1);
        let stats = Stats::new();
        let ingestor = Arc::new(Ingestor::new(Limits { max_attribute_value_bytes: 1024 }, Processors::new()));
        let queued = MemoryBudget::new(1 << 30);
        let drainer =
            Drainer { backlog: backlog.clone(), spool: spool.clone(), tx, queued, ingestor, stats: stats.clone() };
        let stop = CancellationToken::new();
        let task = tokio::spawn(drainer.run(stop.clone()));

        let queued = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert_eq!(queued.source, Source { id: good, replayed: true });
        assert_eq!((queued.submission.spans.len(), queued.submission.calls.len()), (1, 1));
        assert_eq!(stats.spool.unreadable.load(Relaxed), 1);
        assert_eq!(spool.stats().records, 1, "the unreadable record was retired, the good one waits for its rows");
        assert_eq!(backlog.len(), 0);
        stop.cancel();
        task.await.unwrap();
        spool.close().await;
    }

    #[tokio::test]
    async fn sealed_records_open_under_old_keys_and_unknown_keys_are_unreadable_not_panics() {
        use promptlog_ingest::KeyRing;
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), SpoolOptions { fsync: false, ..SpoolOptions::default() }).unwrap();
        let limits = Limits { max_attribute_value_bytes: 1024 };
        let spans =
            vec![span("embeddings m", 1_700_000_000_000_000_000, 1, vec![kv("gen_ai.operation.name", "embeddings")])];
        let request = Request::Traces(traces_request(resource("s", "e"), spans));
        let ctx = RequestContext::new(Signal::Traces, 0);
        let seal_with = |id: u32| {
            let keys = KeyRing::new(id, [(id, [id as u8; 32])]).unwrap();
            Ingestor::new(limits, Processors::new()).sealing_with(keys).accept(&ctx, request.clone(), None).record
        };
        let unknown = spool.append(seal_with(9).unwrap()).await.unwrap();
        let old = spool.append(seal_with(1).unwrap()).await.unwrap();
        let backlog = Arc::new(Backlog::default());
        for id in [unknown, old] {
            backlog.push(Source { id, replayed: true });
        }
        let (tx, mut rx) = mpsc::channel(1);
        let stats = Stats::new();
        // Rotated: key 2 is current, key 1 kept; key 9 was never in this file.
        let keys = KeyRing::new(2, [(1, [1; 32]), (2, [2; 32])]).unwrap();
        let ingestor = Arc::new(Ingestor::new(limits, Processors::new()).sealing_with(keys));
        let queued = MemoryBudget::new(1 << 30);
        let drainer =
            Drainer { backlog: backlog.clone(), spool: spool.clone(), tx, queued, ingestor, stats: stats.clone() };
        let stop = CancellationToken::new();
        let task = tokio::spawn(drainer.run(stop.clone()));

        let queued = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert_eq!(queued.source, Source { id: old, replayed: true }, "the record under the old key is replayed");
        assert_eq!(queued.submission.calls.len(), 1);
        assert_eq!(stats.spool.unreadable.load(Relaxed), 1, "the record under key 9 is counted unreadable");
        assert_eq!(spool.stats().records, 1);
        stop.cancel();
        task.await.unwrap();
        spool.close().await;
    }
}
