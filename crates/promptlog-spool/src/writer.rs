//! The writer thread: the only code that writes segments and the ack log.
//!
//! One plain OS thread (fsync blocks, and must not stall a tokio worker) loops:
//! wait for a message, drain whatever else is queued (bounded), write all the
//! appends segment by segment with one fsync per segment touched, complete the
//! waiters, write the batch's acks, and delete fully acked segments.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::acklog::AckLog;
use super::format::{frame_header, frame_len, segment_path};
use super::{RecordId, SegMeta, Shared, SpoolError};

/// Messages from [`super::Spool`] handles to the writer.
pub enum Msg {
    /// Store a record; bytes are already reserved in `State::reserved`.
    Append { payload: Bytes, reply: oneshot::Sender<Result<RecordId, SpoolError>> },
    /// Persist an ack (already applied to the in-memory state).
    Ack(RecordId),
    /// Finish queued work and stop.
    Close(oneshot::Sender<()>),
}

/// Batch bounds: keep latency and memory per batch bounded under a flood while
/// still sharing one fsync between many appends.
const MAX_BATCH_RECORDS: usize = 4096;
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;
/// Write buffer; frames larger than this go straight to the file.
const WRITE_BUF_BYTES: usize = 256 * 1024;

struct Pending {
    payload: Bytes,
    reply: oneshot::Sender<Result<RecordId, SpoolError>>,
}

/// The segment being appended to.
struct Active {
    id: u64,
    file: File,
    /// Length of the valid, synced prefix: where the next frame goes.
    len: u64,
    /// A failed write could not be truncated away yet: retry before writing.
    dirty: bool,
}

/// Owns segment creation and the active segment.
struct Segments {
    dir: PathBuf,
    segment_bytes: u64,
    next_id: u64,
    active: Option<Active>,
}

impl Segments {
    /// The active segment, ready to take a frame of `frame` bytes: rolls to a new
    /// segment when the frame would not fit (unless the segment is empty).
    fn ready(&mut self, frame: u64, shared: &Shared) -> io::Result<&mut Active> {
        if let Some(a) = self.active.as_mut()
            && a.dirty
        {
            // Garbage from a failed write is still past `len`. It must be cut
            // off before this file gets more frames *or is sealed*: a sealed
            // segment with a garbage tail would look corrupt at recovery.
            a.file.set_len(a.len)?;
            a.dirty = false;
        }
        let a = match self.active.take() {
            Some(a) if a.len == 0 || a.len + frame <= self.segment_bytes => a,
            other => {
                if let Some(sealed) = other {
                    // Every chunk was fsynced before it was acknowledged, so
                    // sealing needs no I/O: just stop appending to it.
                    let mut st = shared.lock();
                    if st.active == Some(sealed.id) {
                        st.active = None;
                    }
                }
                self.create(shared)?
            }
        };
        Ok(self.active.insert(a))
    }

    fn create(&mut self, shared: &Shared) -> io::Result<Active> {
        // Consume the id even if creation fails: ids are never reused.
        let id = self.next_id;
        self.next_id += 1;
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        // The directory entry must be durable before any acknowledged record
        // lives in this file.
        if let Err(e) = shared.syncer.dir(&self.dir) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        let mut st = shared.lock();
        st.segments.insert(id, SegMeta::default());
        st.active = Some(id);
        Ok(Active { id, file, len: 0, dirty: false })
    }
}

/// State owned by the writer thread.
pub struct Writer {
    shared: Arc<Shared>,
    rx: Receiver<Msg>,
    segs: Segments,
    acklog: AckLog,
    /// Held for the writer's lifetime: releasing it lets another open proceed.
    lock: File,
}

impl Writer {
    pub fn new(
        dir: &Path,
        segment_bytes: u64,
        next_segment: u64,
        shared: Arc<Shared>,
        rx: Receiver<Msg>,
        acklog: AckLog,
        lock: File,
    ) -> Self {
        Writer {
            shared,
            rx,
            segs: Segments { dir: dir.to_path_buf(), segment_bytes, next_id: next_segment, active: None },
            acklog,
            lock,
        }
    }

    /// Thread body. Returns when closed or when every handle is dropped.
    pub fn run(mut self) {
        let mut closers = Vec::new();
        while let Some(first) = self.next_message() {
            #[cfg(test)]
            self.shared.hooks.wait_while_paused();
            let mut appends = Vec::new();
            let mut acks = Vec::new();
            let mut bytes = 0usize;
            let mut msg = Some(first);
            while let Some(m) = msg.take() {
                match m {
                    Msg::Append { payload, reply } => {
                        bytes += payload.len();
                        appends.push(Pending { payload, reply });
                    }
                    Msg::Ack(id) => acks.push(id),
                    Msg::Close(done) => {
                        closers.push(done);
                        break;
                    }
                }
                if appends.len() < MAX_BATCH_RECORDS && bytes < MAX_BATCH_BYTES {
                    msg = self.rx.try_recv().ok();
                }
            }
            self.write_appends(appends, &mut acks);
            self.write_acks(&acks);
            self.reclaim();
            if !closers.is_empty() {
                break;
            }
        }
        self.shutdown(closers);
    }

    /// Blocks for the next message, waking up to fsync pending acks on time.
    /// `None` once every handle is gone.
    fn next_message(&mut self) -> Option<Msg> {
        loop {
            let Some(deadline) = self.acklog.sync_deadline() else {
                return self.rx.recv().ok();
            };
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Timeout) => self.sync_acks(false),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Writes the batch in chunks (one chunk = consecutive frames that fit in
    /// one segment), one fsync per chunk, then completes the chunk's waiters.
    fn write_appends(&mut self, batch: Vec<Pending>, acks: &mut Vec<RecordId>) {
        let segment_bytes = self.segs.segment_bytes;
        let mut rest = batch.into_iter().peekable();
        while let Some(first) = rest.next() {
            let first_frame = frame_len(first.payload.len());
            let active = match self.segs.ready(first_frame, &self.shared) {
                Ok(a) => a,
                Err(e) => {
                    fail(&self.shared, vec![first], &e);
                    continue;
                }
            };
            let start = active.len;
            let mut end = start + first_frame;
            let mut chunk = vec![first];
            while let Some(p) = rest.next_if(|p| end + frame_len(p.payload.len()) <= segment_bytes) {
                end += frame_len(p.payload.len());
                chunk.push(p);
            }
            match write_chunk(&mut active.file, start, &chunk, &self.shared) {
                Ok(()) => {
                    active.len = end;
                    let segment = active.id;
                    complete(&self.shared, segment, start, end, chunk, acks);
                }
                Err(e) => {
                    tracing::error!(error = %e, segment = active.id, offset = start, records = chunk.len(), "spool: append write failed; refusing these records");
                    // Cut the partial frames off so the next chunk starts at a
                    // clean boundary (and recovery never sees them as records).
                    if let Err(t) = active.file.set_len(start) {
                        tracing::error!(error = %t, "spool: truncate after failed write failed; will retry before next write");
                        active.dirty = true;
                    }
                    fail(&self.shared, chunk, &e);
                }
            }
        }
    }

    fn write_acks(&mut self, acks: &[RecordId]) {
        if !acks.is_empty()
            && let Err(e) = self.acklog.append(acks)
        {
            // Acks stay in memory; the forced rewrite in `reclaim` persists them.
            tracing::warn!(error = %e, "spool: ack log write failed; acks will be rewritten later");
        }
        self.sync_acks(false);
    }

    fn sync_acks(&mut self, force: bool) {
        if let Err(e) = self.acklog.sync_if_due(&self.shared.syncer, force) {
            tracing::warn!(error = %e, "spool: ack log fsync failed; acks may be replayed after a crash");
        }
    }

    /// Deletes segments whose records are all acked, then compacts the ack log
    /// when it is due.
    fn reclaim(&mut self) {
        let shared = &self.shared;
        let (removed, retired_active) = {
            let mut st = shared.lock();
            let segment_bytes = self.segs.segment_bytes;
            let pressure = st.bytes + st.reserved >= shared.max_bytes / 2;
            // A fully acked active segment is retired too when it is big or the
            // spool is half full; otherwise `Full` could persist with nothing
            // left to deliver. Not always, to avoid a create+delete per request
            // at low traffic.
            let retire_active = st.active.is_some_and(|id| {
                st.segments
                    .get(&id)
                    .is_some_and(|m| m.live.is_empty() && m.len > 0 && (m.len >= segment_bytes / 4 || pressure))
            });
            let active = st.active;
            let ids: Vec<u64> = st
                .segments
                .iter()
                .filter(|&(&id, m)| m.live.is_empty() && (Some(id) != active || retire_active))
                .map(|(&id, _)| id)
                .collect();
            if retire_active {
                st.active = None;
            }
            let mut removed = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(m) = st.segments.remove(&id) {
                    st.bytes -= m.len;
                    st.acked_entries -= m.acked.len() as u64;
                    removed.push((id, m));
                }
            }
            (removed, retire_active)
        };
        if retired_active {
            self.segs.active = None;
        }
        let mut deleted_any = false;
        for (id, meta) in removed {
            let path = segment_path(&self.segs.dir, id);
            match fs::remove_file(&path) {
                Ok(()) => deleted_any = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => deleted_any = true,
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "spool: could not delete acked segment; will retry");
                    let mut st = shared.lock();
                    st.bytes += meta.len;
                    st.acked_entries += meta.acked.len() as u64;
                    st.segments.insert(id, meta);
                }
            }
        }
        if deleted_any && let Err(e) = shared.syncer.dir(&self.segs.dir) {
            // Deleted segments might come back after a crash; keep their acks in
            // the log (skip compaction) so they would not be replayed.
            tracing::warn!(error = %e, "spool: directory fsync after delete failed");
            return;
        }
        let (live_acks, floor) = (shared.lock().acked_entries, self.segs.next_id);
        if !self.acklog.should_rewrite(live_acks) {
            return;
        }
        let acked: Vec<RecordId> = {
            let st = shared.lock();
            st.segments
                .iter()
                .flat_map(|(&segment, m)| m.acked.iter().map(move |&offset| RecordId { segment, offset }))
                .collect()
        };
        match AckLog::rewrite(&self.segs.dir, floor, acked, &shared.syncer) {
            Ok(log) => self.acklog = log,
            Err(e) => {
                tracing::warn!(error = %e, "spool: ack log compaction failed; will retry");
                self.acklog.mark_needs_rewrite();
            }
        }
    }

    /// Refuses anything still queued, persists acks, closes files (releasing the
    /// directory lock) and only then reports completion to `close()` callers.
    fn shutdown(mut self, mut closers: Vec<oneshot::Sender<()>>) {
        self.shared.lock().closed = true;
        let mut acks = Vec::new();
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Msg::Append { payload, reply } => {
                    self.shared.lock().reserved -= frame_len(payload.len());
                    let _ = reply.send(Err(SpoolError::Closed));
                }
                Msg::Ack(id) => acks.push(id),
                Msg::Close(done) => closers.push(done),
            }
        }
        self.write_acks(&acks);
        self.sync_acks(true);
        let Writer { segs, acklog, lock, .. } = self;
        drop((segs, acklog));
        // Explicit unlock: a flock belongs to the open file description, which a
        // concurrently forked child (between fork and exec) may still share, so
        // merely closing our descriptor would not release it at once.
        if let Err(e) = lock.unlock() {
            tracing::warn!(error = %e, "spool: could not release directory lock");
        }
        drop(lock);
        for done in closers {
            let _ = done.send(());
        }
    }
}

/// Writes the chunk's frames at `start` and fsyncs them.
fn write_chunk(file: &mut File, start: u64, chunk: &[Pending], shared: &Shared) -> io::Result<()> {
    file.seek(SeekFrom::Start(start))?;
    let mut w = BufWriter::with_capacity(WRITE_BUF_BYTES, &*file);
    for p in chunk {
        #[cfg(test)]
        shared.hooks.maybe_fail_write(&mut w)?;
        w.write_all(&frame_header(&p.payload))?;
        w.write_all(&p.payload)?;
    }
    w.flush()?;
    drop(w);
    #[cfg(test)]
    shared.hooks.maybe_fail_sync()?;
    shared.syncer.file(file)
}

/// Registers a written chunk and answers its waiters.
fn complete(shared: &Shared, segment: u64, start: u64, end: u64, chunk: Vec<Pending>, acks: &mut Vec<RecordId>) {
    let now = Instant::now();
    let mut ids = Vec::with_capacity(chunk.len());
    {
        let mut st = shared.lock();
        let meta = st.segments.entry(segment).or_default();
        let mut offset = start;
        for p in &chunk {
            meta.live.insert(offset, now);
            ids.push(RecordId { segment, offset });
            offset += frame_len(p.payload.len());
        }
        meta.len = end;
        st.bytes += end - start;
        st.reserved -= end - start;
        st.records += chunk.len() as u64;
    }
    shared.appends.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
    for (p, id) in chunk.into_iter().zip(ids) {
        if p.reply.send(Ok(id)).is_err() && shared.lock().mark_acked(id) {
            // The append future was dropped: nobody knows this id, and the client
            // never got an answer (so it will retry). Retire the record instead of
            // letting it pin its segment until the next restart.
            acks.push(id);
        }
    }
}

/// Releases the chunk's reservations and fails its waiters with a copy of `e`.
fn fail(shared: &Shared, chunk: Vec<Pending>, e: &io::Error) {
    let reserved: u64 = chunk.iter().map(|p| frame_len(p.payload.len())).sum();
    shared.lock().reserved -= reserved;
    for p in chunk {
        let copy = io::Error::new(e.kind(), e.to_string());
        let _ = p.reply.send(Err(SpoolError::Io(copy)));
    }
}
