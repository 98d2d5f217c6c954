//! Spool tests. Crash (SIGKILL) and model-based tests live in submodules.

mod crash;
mod model;
mod recovery;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::acklog::ACK_LOG_FILE;
use super::format::{frame_len, parse_segment_file_name, segment_path};
use super::*;

/// Fault injection and pacing for tests; compiled only under `cfg(test)`.
#[derive(Default)]
pub(super) struct Hooks {
    paused: AtomicBool,
    fail_writes: AtomicU32,
    fail_syncs: AtomicU32,
}

/// Decrements `n` if positive; true when a fault should fire.
fn take(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
}

impl Hooks {
    /// Holds the writer after it received a message, so a test can queue many.
    pub(super) fn wait_while_paused(&self) {
        while self.paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Simulates ENOSPC in the middle of a frame: some bytes reach the file.
    pub(super) fn maybe_fail_write(&self, w: &mut impl Write) -> io::Result<()> {
        if take(&self.fail_writes) {
            w.write_all(b"\x40\0\0\0torn")?;
            w.flush()?;
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected: no space left on device"));
        }
        Ok(())
    }

    /// Simulates a failing fsync (after the data was written).
    pub(super) fn maybe_fail_sync(&self) -> io::Result<()> {
        if take(&self.fail_syncs) {
            return Err(io::Error::other("injected: fsync failed"));
        }
        Ok(())
    }
}

fn opts(segment_bytes: u64) -> SpoolOptions {
    SpoolOptions { max_bytes: DEFAULT_MAX_BYTES, segment_bytes, fsync: false }
}

/// Deterministic payload of `len` (>= 8) bytes tagged with `i`.
fn payload(i: usize, len: usize) -> Bytes {
    let mut v = format!("{i:08}").into_bytes();
    v.resize(len.max(8), b'a' + (i % 26) as u8);
    Bytes::from(v)
}

fn open(dir: &Path, o: SpoolOptions) -> (Spool, Vec<Replayed>) {
    Spool::open(dir, o).expect("open spool")
}

fn seg_files(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> =
        fs::read_dir(dir).unwrap().filter_map(|e| parse_segment_file_name(e.unwrap().file_name().to_str()?)).collect();
    v.sort_unstable();
    v
}

/// Acks are applied by the writer thread asynchronously; wait (bounded) for
/// their effect. This waits for an event, it does not assert on timing.
async fn wait_for(spool: &Spool, what: &str, pred: impl Fn(&SpoolStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred(&spool.stats()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", spool.stats());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn append_all(spool: &Spool, items: &[Bytes]) -> Vec<RecordId> {
    let mut ids = Vec::new();
    for p in items {
        ids.push(spool.append(p.clone()).await.expect("append"));
    }
    ids
}

fn pairs(r: &[Replayed]) -> Vec<(RecordId, Bytes)> {
    r.iter().map(|r| (r.id, r.payload.clone())).collect()
}

#[tokio::test]
async fn round_trip_across_restart_preserves_order() {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<Bytes> = (0..50).map(|i| payload(i, 8 + i * 7 % 90)).collect();
    let (spool, replay) = open(dir.path(), opts(200));
    assert!(replay.is_empty());
    let ids = append_all(&spool, &items).await;
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids follow append order");
    assert!(seg_files(dir.path()).len() > 5, "small segments rolled");
    spool.close().await;

    let expected: Vec<_> = ids.iter().copied().zip(items.iter().cloned()).collect();
    for _ in 0..2 {
        let (spool, replay) = open(dir.path(), opts(200));
        assert_eq!(pairs(&replay), expected);
        assert_eq!(spool.stats().records, 50);
        spool.close().await;
    }
}

#[tokio::test]
async fn acked_records_are_not_replayed_and_full_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<Bytes> = (0..40).map(|i| payload(i, 56)).collect(); // 64-byte frames
    let (spool, _) = open(dir.path(), opts(256)); // 4 frames per segment
    let ids = append_all(&spool, &items).await;
    let first_segment = ids[0].segment;
    let mut expected = Vec::new();
    for (i, (id, p)) in ids.iter().zip(&items).enumerate() {
        if i < 20 || i % 2 == 1 {
            spool.ack(*id);
        } else {
            expected.push((*id, p.clone()));
        }
    }
    wait_for(&spool, "5 segments deleted", |s| s.segments == 5).await;
    assert!(!seg_files(dir.path()).contains(&first_segment));
    assert_eq!(spool.stats().records, expected.len() as u64);
    assert_eq!(spool.stats().bytes, 5 * 256);
    spool.close().await;

    let (spool, replay) = open(dir.path(), opts(256));
    assert_eq!(pairs(&replay), expected);
    spool.close().await;
}

#[tokio::test]
async fn lagging_ack_log_replays_only_the_lost_acks() {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<Bytes> = (0..10).map(|i| payload(i, 40)).collect();
    let (spool, _) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    let ids = append_all(&spool, &items).await;
    for id in &ids[..6] {
        spool.ack(*id);
    }
    spool.close().await;

    // Simulate a crash that lost the last two acks and tore a third write.
    let log = dir.path().join(ACK_LOG_FILE);
    let len = fs::metadata(&log).unwrap().len();
    OpenOptions::new().write(true).open(&log).unwrap().set_len(len - 40).unwrap();
    OpenOptions::new().append(true).open(&log).unwrap().write_all(&[7; 7]).unwrap();

    let (spool, replay) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    let expected: Vec<_> = ids.iter().copied().zip(items).skip(4).collect();
    assert_eq!(pairs(&replay), expected, "records 4,5 (acks lost) and 6..9 (never acked)");
    spool.close().await;
}

#[tokio::test]
async fn segment_ids_are_never_reused_after_everything_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts(128));
    let ids = append_all(&spool, &(0..5).map(|i| payload(i, 50)).collect::<Vec<_>>()).await;
    for id in &ids {
        spool.ack(*id);
    }
    wait_for(&spool, "all segments deleted", |s| s.segments == 0 && s.bytes == 0).await;
    assert!(seg_files(dir.path()).is_empty());
    spool.close().await;

    let (spool, replay) = open(dir.path(), opts(128));
    assert!(replay.is_empty());
    let new = spool.append(payload(9, 50)).await.unwrap();
    assert!(new.segment > ids.last().unwrap().segment, "{new} must be after {:?}", ids.last());
    spool.close().await;
}

#[tokio::test]
async fn full_refuses_then_accepts_after_acks_free_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions { max_bytes: 400, ..opts(200) }; // frames of 100 bytes
    let (spool, _) = open(dir.path(), o);
    let ids = append_all(&spool, &(0..4).map(|i| payload(i, 92)).collect::<Vec<_>>()).await;
    match spool.append(payload(4, 92)).await {
        Err(SpoolError::Full { used: 400, max: 400 }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    spool.ack(ids[0]);
    spool.ack(ids[1]);
    wait_for(&spool, "first segment deleted", |s| s.bytes == 200).await;
    spool.append(payload(4, 92)).await.expect("space freed");
    spool.close().await;
}

#[tokio::test]
async fn full_clears_when_the_only_active_segment_is_fully_acked() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions { max_bytes: 400, ..opts(DEFAULT_SEGMENT_BYTES) };
    let (spool, _) = open(dir.path(), o);
    let ids = append_all(&spool, &(0..4).map(|i| payload(i, 92)).collect::<Vec<_>>()).await;
    assert!(matches!(spool.append(payload(4, 92)).await, Err(SpoolError::Full { .. })));
    for id in ids {
        spool.ack(id);
    }
    wait_for(&spool, "active segment retired", |s| s.bytes == 0).await;
    spool.append(payload(4, 92)).await.expect("space freed");
    spool.close().await;
}

/// 1,000 appends queued while the writer is held, then released: they must
/// share fsyncs. The writer is held only so the count does not depend on how
/// fast this machine's fsync is; the assertion is on counts alone.
#[tokio::test(flavor = "current_thread")]
async fn group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions { fsync: true, ..opts(DEFAULT_SEGMENT_BYTES) };
    let (spool, _) = open(dir.path(), o);
    let hooks = &spool.inner.shared.hooks;
    hooks.paused.store(true, Ordering::SeqCst);
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let s = spool.clone();
            tokio::spawn(async move { s.append(payload(i, 100)).await })
        })
        .collect();
    // Each task reserves and enqueues in its first poll (no await in between).
    let total = 1000 * frame_len(100);
    while spool.inner.shared.lock().reserved < total {
        tokio::task::yield_now().await;
    }
    hooks.paused.store(false, Ordering::SeqCst);
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().expect("append"));
    }
    ids.sort_unstable();
    ids.dedup();
    let s = spool.stats();
    println!("group commit: {} appends, {} fsyncs", s.appends, s.fsyncs);
    assert_eq!((ids.len(), s.appends), (1000, 1000));
    assert!(s.fsyncs < s.appends / 4, "{s:?}");
    spool.close().await;
}

async fn append_ok(spool: &Spool, i: usize, expected: &mut Vec<(RecordId, Bytes)>) {
    let p = payload(i, 50);
    expected.push((spool.append(p.clone()).await.unwrap(), p));
}

#[tokio::test]
async fn write_and_fsync_errors_fail_appends_and_leave_spool_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    let hooks = &spool.inner.shared.hooks;
    let mut expected = Vec::new();
    append_ok(&spool, 1, &mut expected).await;
    append_ok(&spool, 2, &mut expected).await;
    let seg = segment_path(dir.path(), expected[0].0.segment);
    let good = fs::metadata(&seg).unwrap().len();

    hooks.fail_writes.store(1, Ordering::SeqCst);
    let err = spool.append(payload(100, 50)).await.unwrap_err();
    assert!(matches!(&err, SpoolError::Io(e) if e.kind() == io::ErrorKind::StorageFull), "{err:?}");
    assert_eq!(fs::metadata(&seg).unwrap().len(), good, "partial frame cut off");
    append_ok(&spool, 3, &mut expected).await;

    hooks.fail_syncs.store(1, Ordering::SeqCst);
    assert!(matches!(spool.append(payload(101, 50)).await, Err(SpoolError::Io(_))));
    append_ok(&spool, 4, &mut expected).await;
    let s = spool.stats();
    assert_eq!((s.records, s.appends), (4, 4));
    assert_eq!(s.bytes, fs::metadata(&seg).unwrap().len());
    assert_eq!(spool.inner.shared.lock().reserved, 0);
    spool.close().await;

    let (spool, replay) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    assert_eq!(pairs(&replay), expected);
    assert_eq!(spool.stats().recovered_truncated_bytes, 0, "no garbage was left behind");
    spool.close().await;
}

#[tokio::test]
async fn record_size_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    assert!(matches!(spool.append(Bytes::new()).await, Err(SpoolError::RecordSize { len: 0, .. })));
    // vec! of zeros is calloc'ed: no 256 MiB memset.
    let huge = Bytes::from(vec![0u8; MAX_RECORD_BYTES as usize + 1]);
    assert!(matches!(spool.append(huge).await, Err(SpoolError::RecordSize { .. })));
    spool.close().await;
}

#[tokio::test]
async fn close_refuses_appends_releases_lock_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    assert!(matches!(Spool::open(dir.path(), opts(1024)), Err(SpoolError::Locked { .. })));
    let id = spool.append(payload(1, 20)).await.unwrap();
    spool.close().await;
    spool.close().await; // idempotent
    assert!(matches!(spool.append(payload(2, 20)).await, Err(SpoolError::Closed)));
    spool.ack(id); // after close: ignored by the log, replayed next time
    let (spool, replay) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    assert_eq!(replay.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
    spool.close().await;
}

#[tokio::test]
async fn dropped_append_future_is_acked_automatically() {
    use std::future::Future;
    use std::task::{Context, Waker};
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    spool.inner.shared.hooks.paused.store(true, Ordering::SeqCst);
    {
        let mut fut = std::pin::pin!(spool.append(payload(1, 20)));
        let poll = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(poll.is_pending(), "enqueued, waiting for the writer");
    } // dropped: the caller gave up (client disconnected)
    spool.inner.shared.hooks.paused.store(false, Ordering::SeqCst);
    let kept = spool.append(payload(2, 20)).await.unwrap();
    let s = spool.stats();
    assert_eq!((s.appends, s.records), (2, 1));
    spool.close().await;
    let (spool, replay) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    assert_eq!(replay.iter().map(|r| r.id).collect::<Vec<_>>(), vec![kept]);
    spool.close().await;
}

#[tokio::test]
async fn stats_track_age_segments_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    assert_eq!(spool.stats().oldest_unacked_age, None);
    let a = spool.append(payload(1, 92)).await.unwrap();
    let b = spool.append(payload(2, 92)).await.unwrap();
    let s = spool.stats();
    assert_eq!((s.bytes, s.records, s.segments), (200, 2, 1));
    assert!(s.oldest_unacked_age.is_some());
    spool.ack(a);
    assert_eq!(spool.stats().records, 1);
    spool.close().await;
    let (spool, replay) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    assert_eq!(replay.len(), 1);
    assert!(spool.stats().oldest_unacked_age.is_some(), "from the file mtime");
    spool.ack(b);
    assert_eq!(spool.stats().oldest_unacked_age, None);
    spool.close().await;
}

#[tokio::test]
async fn dropping_every_handle_stops_the_writer_and_keeps_acks() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    let a = spool.append(payload(1, 20)).await.unwrap();
    let b = spool.append(payload(2, 20)).await.unwrap();
    spool.ack(a);
    drop(spool); // no close(): the writer notices, flushes the ack and exits
    let deadline = Instant::now() + Duration::from_secs(10);
    let (spool, replay) = loop {
        match Spool::open(dir.path(), opts(DEFAULT_SEGMENT_BYTES)) {
            Ok(r) => break r,
            Err(SpoolError::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("reopen: {e}"),
        }
    };
    assert_eq!(replay.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b]);
    spool.close().await;
}

#[tokio::test]
async fn read_returns_unacked_payloads_and_refuses_acked_or_damaged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<Bytes> = (0..12).map(|i| payload(i, 40 + i * 13)).collect();
    let (spool, _) = open(dir.path(), opts(300)); // several segments
    let ids = append_all(&spool, &items).await;
    for (id, p) in ids.iter().zip(&items) {
        assert_eq!(&spool.read(*id).unwrap(), p, "{id}");
    }
    spool.ack(ids[0]);
    assert!(matches!(spool.read(ids[0]), Err(SpoolError::Unknown(id)) if id == ids[0]));
    let never = RecordId { segment: ids[11].segment, offset: ids[11].offset + 1 };
    assert!(matches!(spool.read(never), Err(SpoolError::Unknown(_))));

    // Flip one payload byte on disk: the checksum catches it.
    let victim = ids[5];
    let seg = segment_path(dir.path(), victim.segment);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[(victim.offset + 8) as usize] ^= 0x55;
    fs::write(&seg, &bytes).unwrap();
    assert!(matches!(spool.read(victim), Err(SpoolError::Corrupt { offset, .. }) if offset == victim.offset));
    assert_eq!(spool.read(ids[6]).unwrap(), items[6], "neighbours are unaffected");
    spool.close().await;

    // Replayed ids can be read back the same way after a restart.
    fs::write(&seg, {
        bytes[(victim.offset + 8) as usize] ^= 0x55;
        &bytes
    })
    .unwrap();
    let (spool, replay) = open(dir.path(), opts(300));
    assert_eq!(replay.len(), 11);
    for r in &replay {
        assert_eq!(spool.read(r.id).unwrap(), r.payload);
    }
    spool.close().await;
}
