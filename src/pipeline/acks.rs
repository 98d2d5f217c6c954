//! Which spool records are fully written: a record is acked in the spool (and its disk space
//! reclaimed) only once every row derived from it is in ClickHouse, or in a dead-letter file.
//!
//! Rows of one record spread over three tables and many batches, and its LLM calls may wait in the
//! joiner for up to the join window, so the tracker counts, per record, the rows not yet written.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use promptlog_spool::{RecordId, Spool};

/// Where a row comes from: the spool record to ack once it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The spool record holding the request.
    pub id: RecordId,
    /// The record was found in the spool at start-up: some of its rows may already be stored (the
    /// crash came between their insert and the ack), so the writer checks before inserting them.
    pub replayed: bool,
}

/// Rows outstanding per record.
pub struct AckTracker {
    spool: Spool,
    outstanding: Mutex<HashMap<RecordId, u64>>,
}

impl AckTracker {
    /// A tracker acking into `spool`.
    pub fn new(spool: Spool) -> Self {
        Self { spool, outstanding: Mutex::new(HashMap::new()) }
    }

    /// Poisoning is ignored: every critical section is a single map update.
    fn lock(&self) -> MutexGuard<'_, HashMap<RecordId, u64>> {
        self.outstanding.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts tracking `rows` rows of `id`; must be called before any of them can be written. A
    /// record with no rows is acked at once.
    pub fn register(&self, id: RecordId, rows: u64) {
        if rows == 0 {
            self.spool.ack(id);
            return;
        }
        *self.lock().entry(id).or_default() += rows;
    }

    /// Counts written (or dead-lettered) rows, as `(record, rows)` pairs; acks every record that has
    /// nothing left.
    pub fn written(&self, done: &[(RecordId, u64)]) {
        let mut complete = Vec::new();
        {
            let mut outstanding = self.lock();
            for &(id, rows) in done {
                let Some(left) = outstanding.get_mut(&id) else {
                    tracing::error!(%id, rows, "Rows written for a spool record that is not tracked; ignoring.");
                    continue;
                };
                *left = left.saturating_sub(rows);
                if *left == 0 {
                    outstanding.remove(&id);
                    complete.push(id);
                }
            }
        }
        for id in complete {
            self.spool.ack(id);
        }
    }

    /// Records with rows still to write.
    #[cfg(test)]
    pub fn pending_records(&self) -> usize {
        self.lock().len()
    }
}

/// Row counts per record of a batch, in order of first appearance (rows of one record are usually
/// adjacent, so this is a short list).
pub fn tally(sources: impl IntoIterator<Item = Source>) -> Vec<(RecordId, u64)> {
    let mut out: Vec<(RecordId, u64)> = Vec::new();
    for source in sources {
        match out.iter_mut().rev().find(|(id, _)| *id == source.id) {
            Some((_, n)) => *n += 1,
            None => out.push((source.id, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptlog_spool::SpoolOptions;

    fn source(offset: u64) -> Source {
        Source { id: RecordId { segment: 1, offset }, replayed: false }
    }

    #[test]
    fn tally_counts_per_record() {
        let t = tally([source(0), source(0), source(8), source(0)]);
        assert_eq!(t, vec![(source(0).id, 3), (source(8).id, 1)]);
    }

    #[tokio::test]
    async fn a_record_is_acked_only_when_all_its_rows_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SpoolOptions { fsync: false, ..SpoolOptions::default() };
        let (spool, _) = Spool::open(dir.path(), opts).unwrap();
        let a = spool.append(bytes::Bytes::from_static(b"a")).await.unwrap();
        let b = spool.append(bytes::Bytes::from_static(b"b")).await.unwrap();
        let acks = AckTracker::new(spool.clone());
        acks.register(a, 3);
        acks.register(b, 1);
        acks.written(&[(a, 2), (b, 1)]);
        assert_eq!(acks.pending_records(), 1);
        assert_eq!(spool.stats().records, 1, "b acked, a still has a row to go");
        assert!(spool.read(a).is_ok());
        acks.written(&[(a, 1)]);
        assert_eq!(spool.stats().records, 0);
        spool.close().await;
        let (spool, replay) = Spool::open(dir.path(), opts).unwrap();
        assert!(replay.is_empty(), "acks persisted at close");
        spool.close().await;
    }
}
