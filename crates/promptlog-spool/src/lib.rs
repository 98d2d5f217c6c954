//! Durable on-disk write-ahead queue ("spool") of opaque byte records.
//!
//! The receiver appends each accepted request with [`Spool::append`] and answers
//! the client only once that returns `Ok`; the exporter calls [`Spool::ack`]
//! once the record is delivered downstream. A crash or restart replays, from
//! [`Spool::open`], every record that was appended and not acked.
//!
//! # On-disk layout (one directory per spool)
//! - `seg-<20-digit id>.log`: segments, concatenated frames
//!   `[u32 len LE][u32 crc32(payload) LE][payload]`, `1 <= len <= 256 MiB`.
//!   A [`RecordId`] is `(segment id, byte offset of the frame)`. Segment ids only
//!   grow, also across restarts, so an id is never reused.
//! - `acks.log`: the ack log (see the `acklog` submodule for its format).
//! - `spool.lock`: held with an exclusive advisory lock while the spool is open.
//!
//! # Durability argument
//! 1. `append` returns `Ok(id)` only after the frame was written and (with
//!    `fsync: true`) `fdatasync`ed. A segment file is created and its directory
//!    fsynced before any frame goes into it, so the file cannot vanish. Hence an
//!    acknowledged record survives a process kill and, with fsync, a power loss.
//! 2. Group commit: a single writer thread takes everything queued, writes it in
//!    one pass, fsyncs once and then completes every waiter. No waiter is
//!    completed before the fsync that covers its bytes.
//! 3. On a write or fsync error the affected appends fail with
//!    [`SpoolError::Io`] (the client is refused, so nothing is lost) and the
//!    segment is truncated back to its last good length before the next write.
//! 4. Recovery keeps every frame whose checksum matches; an incomplete tail of
//!    the last segment can only come from appends that never returned `Ok`, so
//!    it is dropped. Other damage is skipped-and-reported when framing proves
//!    the rest readable, and reported as [`SpoolError::Corrupt`] otherwise.
//! 5. Acks are written to `acks.log` by the writer thread after the batch's
//!    appends and fsynced within `ACK_SYNC_INTERVAL` (100 ms). The log may lag:
//!    an ack lost in a crash only causes a replay (downstream is idempotent).
//!    An ack is never recorded for a record that was not acked, so a record that
//!    was never acked is always replayed.
//! 6. A segment is deleted only when every record in it is acked (in memory), so
//!    deleting never loses an unacked record. Stale acks cannot hit a new record:
//!    ids are never reused (the ack log keeps a segment-id floor).
//!
//! # Corruption policy
//! Frames have no sync markers, so recovery cannot safely hunt for the next
//! record. At the first bad frame of a segment (details: `format::scan`):
//! - only the checksum failed and all following bytes parse as valid frames up
//!   to EOF: the damaged record is skipped, logged at `error` and counted in
//!   [`SpoolStats::recovered_skipped_records`]; later records are kept;
//! - otherwise, in the last segment: torn tail, truncated (logged at `warn`,
//!   counted in [`SpoolStats::recovered_truncated_bytes`]);
//! - otherwise, in a sealed segment: truncated only if nothing readable can
//!   follow (all zeros, or — with fsync off — a frame running past EOF); else
//!   [`Spool::open`] fails with [`SpoolError::Corrupt`] naming file and offset.

mod acklog;
mod format;
mod recovery;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

pub use format::{MAX_RECORD_BYTES, frame_len};
use writer::Msg;

/// Default cap on segment bytes on disk: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// Default segment size before rolling to a new file: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Tuning for [`Spool::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Appends are refused with [`SpoolError::Full`] when the segment files plus
    /// in-flight appends would exceed this many bytes (the small ack log is not
    /// counted).
    pub max_bytes: u64,
    /// A segment is sealed and a new one started when the next frame would take
    /// it past this size. A single frame larger than this gets its own segment.
    pub segment_bytes: u64,
    /// `true`: every acknowledged append is fsynced (survives power loss).
    /// `false`: written to the page cache only (survives a process crash, not a
    /// power loss or kernel crash).
    pub fsync: bool,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions { max_bytes: DEFAULT_MAX_BYTES, segment_bytes: DEFAULT_SEGMENT_BYTES, fsync: true }
    }
}

/// Identity of one record: its segment and the byte offset of its frame.
/// Stable across restarts and never reused; ordering is append order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    /// Segment id (the number in `seg-<id>.log`).
    pub segment: u64,
    /// Byte offset of the record's frame inside the segment.
    pub offset: u64,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// A record found unacked by [`Spool::open`]; deliver it, then [`Spool::ack`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The record's id, to pass to [`Spool::ack`].
    pub id: RecordId,
    /// The bytes given to [`Spool::append`].
    pub payload: Bytes,
}

/// Point-in-time counters, from [`Spool::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes of segment files on disk (counted against `max_bytes`).
    pub bytes: u64,
    /// Records appended (or replayed) and not yet acked.
    pub records: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Age of the oldest unacked record; for records from before a restart,
    /// measured from their segment file's mtime.
    pub oldest_unacked_age: Option<Duration>,
    /// Successful appends since open.
    pub appends: u64,
    /// fsync calls since open (segment, ack log and directory).
    pub fsyncs: u64,
    /// Records dropped by recovery at open because their checksum failed.
    pub recovered_skipped_records: u64,
    /// Bytes of torn tail truncated by recovery at open.
    pub recovered_truncated_bytes: u64,
}

/// Errors from the spool. Each variant says what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool is at `max_bytes`. Refuse the request as retryable
    /// (gRPC `UNAVAILABLE` / HTTP 503 with `Retry-After`); space comes back as
    /// acked segments are deleted.
    #[error("spool full: {used} of {max} bytes used")]
    Full {
        /// Bytes in use, including appends in flight.
        used: u64,
        /// The configured `max_bytes`.
        max: u64,
    },
    /// The payload is empty or larger than [`MAX_RECORD_BYTES`]. Not retryable
    /// as is: answer `INVALID_ARGUMENT` / 413 (or split the batch first).
    #[error("record of {len} bytes rejected: must be 1..={max} bytes")]
    RecordSize {
        /// Payload length given.
        len: u64,
        /// [`MAX_RECORD_BYTES`].
        max: u64,
    },
    /// A disk read/write/fsync failed (failing disk, or no space left). The
    /// affected record was not stored: refuse the request as retryable
    /// (`UNAVAILABLE` / 503 with `Retry-After`) and alert. The spool stays
    /// consistent and later appends are tried again normally.
    #[error("spool I/O error: {0}")]
    Io(#[from] io::Error),
    /// The spool was closed (or its writer thread is gone). Refuse as retryable;
    /// this happens during shutdown.
    #[error("spool closed")]
    Closed,
    /// Recovery at open found unreadable data in a sealed segment that may be
    /// followed by readable records, so it will not guess. Operator action:
    /// inspect the file, then move it out of the directory to start without it
    /// (its remaining records are then lost).
    #[error("spool segment {} is corrupt at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged segment file.
        path: PathBuf,
        /// Offset of the first unreadable frame.
        offset: u64,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// [`Spool::read`] was given an id that is not an unacked record of this
    /// spool (acked already, or never appended). A caller bug or a race with
    /// its own ack: there is nothing to deliver.
    #[error("record {0} is not in the spool (acked already, or never appended)")]
    Unknown(RecordId),
    /// Another open spool (this or another process) holds the directory lock.
    /// Configuration error: give each collector instance its own directory.
    #[error("spool directory {} is already in use", dir.display())]
    Locked {
        /// The spool directory.
        dir: PathBuf,
    },
}

/// Handle to an open spool. Cheap to clone; all clones share one writer thread,
/// which stops when [`Spool::close`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens the spool in `dir` (creating it), recovers it and starts the writer
    /// thread. Returns every record not yet acked, in append order; the caller
    /// must deliver and [`ack`](Spool::ack) them like fresh ones.
    ///
    /// Blocking (reads all segments); call it at startup or via
    /// `spawn_blocking`. All unacked payloads are loaded into memory at once.
    pub fn open(dir: &Path, opts: SpoolOptions) -> Result<(Spool, Vec<Replayed>), SpoolError> {
        let syncer = Syncer::new(opts.fsync);
        let rec = recovery::recover(dir, &syncer)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(rec.state),
            max_bytes: opts.max_bytes,
            syncer,
            appends: AtomicU64::new(0),
            recovered_skipped: rec.skipped,
            recovered_truncated: rec.truncated,
            #[cfg(test)]
            hooks: tests::Hooks::default(),
        });
        let (tx, rx) = mpsc::channel();
        let w =
            writer::Writer::new(dir, opts.segment_bytes, rec.next_segment, shared.clone(), rx, rec.acklog, rec.lock);
        std::thread::Builder::new().name("spool-writer".into()).spawn(move || w.run())?;
        let spool = Spool { inner: Arc::new(Inner { tx, shared, dir: dir.to_path_buf() }) };
        Ok((spool, rec.replay))
    }

    /// Appends one record and returns its id once it is durable (written, and
    /// fsynced if `opts.fsync`). Concurrent appends share one fsync.
    ///
    /// Never blocks on a full spool: refuses with [`SpoolError::Full`] at once.
    /// If this future is dropped before completing, the record may still be
    /// written; it is then acked automatically (nobody holds its id and the
    /// client never got an answer), so it does not pin disk space.
    pub async fn append(&self, payload: Bytes) -> Result<RecordId, SpoolError> {
        let len = payload.len() as u64;
        if len == 0 || len > MAX_RECORD_BYTES {
            return Err(SpoolError::RecordSize { len, max: MAX_RECORD_BYTES });
        }
        let frame = format::frame_len(payload.len());
        let shared = &self.inner.shared;
        {
            let mut st = shared.lock();
            if st.closed {
                return Err(SpoolError::Closed);
            }
            let used = st.bytes + st.reserved;
            if used + frame > shared.max_bytes {
                return Err(SpoolError::Full { used, max: shared.max_bytes });
            }
            // Reserved until the writer either stores the frame (then it moves to
            // `bytes`) or fails it (then it is released): keeps the cap exact
            // while appends are in flight.
            st.reserved += frame;
        }
        let (reply, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Append { payload, reply }).is_err() {
            shared.lock().reserved -= frame;
            return Err(SpoolError::Closed);
        }
        rx.await.unwrap_or(Err(SpoolError::Closed))
    }

    /// Marks a record delivered. Idempotent; unknown ids are ignored. The ack is
    /// persisted asynchronously (may lag by ~100 ms: a crash then replays the
    /// record). A segment whose records are all acked is deleted.
    pub fn ack(&self, id: RecordId) {
        if !self.inner.shared.lock().mark_acked(id) {
            tracing::debug!(%id, "spool: ack for unknown or already-acked record ignored");
            return;
        }
        // After close the ack is lost; the record is then replayed at next open.
        let _ = self.inner.tx.send(Msg::Ack(id));
    }

    /// Reads back the payload of an unacked record, verifying its checksum.
    ///
    /// Lets a caller keep only [`RecordId`]s in memory while delivery lags
    /// (a backlog), and fetch each payload when it can be delivered. Blocking
    /// (one `pread` of the frame); call it via `spawn_blocking`.
    ///
    /// Errors: [`SpoolError::Unknown`] when the record is not live (acked or never
    /// appended), [`SpoolError::Corrupt`] when the frame on disk no longer
    /// matches its checksum (the record is lost: ack it so it stops pinning its
    /// segment), [`SpoolError::Io`] when the read fails (retry later).
    pub fn read(&self, id: RecordId) -> Result<Bytes, SpoolError> {
        let frame_end = {
            let st = self.inner.shared.lock();
            let live = st.segments.get(&id.segment).filter(|m| m.live.contains_key(&id.offset));
            match live {
                Some(meta) => meta.len,
                None => return Err(SpoolError::Unknown(id)),
            }
        };
        let path = format::segment_path(&self.inner.dir, id.segment);
        let corrupt = |reason| SpoolError::Corrupt { path: path.clone(), offset: id.offset, reason };
        // The frame was fully written and synced before its id was handed out,
        // and a segment with a live record is never deleted, so it is all there.
        let file = File::open(&path)?;
        let header = read_at(&file, id.offset, format::FRAME_HEADER_BYTES as usize)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > MAX_RECORD_BYTES || id.offset + format::frame_len(len as usize) > frame_end {
            return Err(corrupt(format::FrameError::BadLength.reason()));
        }
        let payload = read_at(&file, id.offset + format::FRAME_HEADER_BYTES, len as usize)?;
        if crc32fast::hash(&payload) != crc {
            return Err(corrupt(format::FrameError::BadCrc.reason()));
        }
        Ok(Bytes::from(payload))
    }

    /// Current counters.
    pub fn stats(&self) -> SpoolStats {
        let shared = &self.inner.shared;
        let st = shared.lock();
        let now = Instant::now();
        // Segments are in id order and records within one in offset (= time)
        // order, so the first live record found is the oldest.
        let oldest =
            st.segments.values().find_map(|m| m.live.values().next()).map(|t| now.saturating_duration_since(*t));
        SpoolStats {
            bytes: st.bytes,
            records: st.records,
            segments: st.segments.len() as u64,
            oldest_unacked_age: oldest,
            appends: shared.appends.load(Ordering::Relaxed),
            fsyncs: shared.syncer.count(),
            recovered_skipped_records: shared.recovered_skipped,
            recovered_truncated_bytes: shared.recovered_truncated,
        }
    }

    /// Stops accepting appends (they return [`SpoolError::Closed`]), lets the
    /// writer finish what was queued before, fsyncs the ack log, releases the
    /// directory lock and stops the writer thread. Idempotent.
    pub async fn close(&self) {
        self.inner.shared.lock().closed = true;
        let (done, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Close(done)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Reads exactly `len` bytes at `offset`. The file handle is the caller's own
/// (opened for this read), so seeking it cannot disturb the writer thread.
fn read_at(mut file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// State shared between handles and the writer thread.
struct Shared {
    state: Mutex<State>,
    max_bytes: u64,
    syncer: Syncer,
    appends: AtomicU64,
    recovered_skipped: u64,
    recovered_truncated: u64,
    #[cfg(test)]
    hooks: tests::Hooks,
}

impl Shared {
    /// Locks the state. A poisoned lock is taken over: every critical section
    /// only does arithmetic and map updates that leave the state valid at each
    /// step, and refusing all appends forever would be worse.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// In-memory index of the spool.
#[derive(Default)]
struct State {
    segments: BTreeMap<u64, SegMeta>,
    /// Segment the writer appends to, if any.
    active: Option<u64>,
    /// Sum of `SegMeta::len`.
    bytes: u64,
    /// Frame bytes of appends accepted but not yet written or failed.
    reserved: u64,
    /// Sum of `live.len()`.
    records: u64,
    /// Sum of `acked.len()`: ack-log entries a compaction would keep.
    acked_entries: u64,
    closed: bool,
}

impl State {
    /// Moves `id` from live to acked; false if it was not live.
    fn mark_acked(&mut self, id: RecordId) -> bool {
        let Some(meta) = self.segments.get_mut(&id.segment) else {
            return false;
        };
        if meta.live.remove(&id.offset).is_none() {
            return false;
        }
        meta.acked.push(id.offset);
        self.records -= 1;
        self.acked_entries += 1;
        true
    }
}

/// One segment file.
#[derive(Default)]
struct SegMeta {
    /// File length in bytes.
    len: u64,
    /// Unacked records: offset → when appended.
    live: BTreeMap<u64, Instant>,
    /// Acked offsets, kept so an ack-log compaction can rewrite them.
    acked: Vec<u64>,
}

/// Issues (and counts) fsyncs, or skips them when fsync is off.
#[derive(Clone)]
struct Syncer {
    enabled: bool,
    count: Arc<AtomicU64>,
}

impl Syncer {
    fn new(enabled: bool) -> Self {
        Syncer { enabled, count: Arc::default() }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// `fdatasync`: enough for appends, since it also persists a grown size.
    fn file(&self, f: &File) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        f.sync_data()
    }

    /// Persists directory entries (created, renamed or removed files).
    fn dir(&self, dir: &Path) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        File::open(dir)?.sync_all()
    }
}
