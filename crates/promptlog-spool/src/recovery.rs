//! [`recover`]: turns a spool directory back into in-memory state at open.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::acklog::{self, AckLog};
use super::format::{self, segment_path};
use super::{RecordId, Replayed, SegMeta, SpoolError, State, Syncer};

/// Lock file name; see [`lock_dir`].
const LOCK_FILE: &str = "spool.lock";

/// Everything [`super::Spool::open`] needs to start the writer.
pub struct Recovered {
    pub lock: File,
    pub state: State,
    pub replay: Vec<Replayed>,
    pub next_segment: u64,
    pub acklog: AckLog,
    pub skipped: u64,
    pub truncated: u64,
}

/// Two writers on one directory would interleave frames and delete each other's
/// segments, so the directory is locked (advisory `flock`, released by the
/// kernel even on SIGKILL).
fn lock_dir(dir: &Path) -> Result<File, SpoolError> {
    let f = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(TryLockError::WouldBlock) => Err(SpoolError::Locked { dir: dir.to_path_buf() }),
        Err(TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Segment ids present in `dir`, ascending.
fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(format::parse_segment_file_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Scans every segment (see [`format::scan`] for the corruption policy), applies
/// the ack log, deletes segments with nothing left to replay, and rewrites a
/// compacted ack log. Every later segment will be a new file: the previous
/// run's last segment is sealed from now on.
pub fn recover(dir: &Path, syncer: &Syncer) -> Result<Recovered, SpoolError> {
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        // A brand-new directory's own entry must be durable too, or a power loss
        // could take every acknowledged record with it.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            syncer.dir(parent)?;
        }
    }
    let lock = lock_dir(dir)?;
    let acks = acklog::load(dir)?;
    let ids = list_segments(dir)?;
    let last = ids.last().copied();

    let mut state = State::default();
    let mut replay = Vec::new();
    let (mut skipped, mut truncated) = (0u64, 0u64);
    let mut deleted_any = false;
    let (now_i, now_s) = (Instant::now(), SystemTime::now());

    for id in ids {
        let path = segment_path(dir, id);
        let buf = fs::read(&path)?;
        // Append times are not stored on disk; the file's mtime is the time of
        // its last write, a lower bound on the age of each of its records.
        let age = fs::metadata(&path)?.modified().ok().and_then(|m| now_s.duration_since(m).ok()).unwrap_or_default();
        let born = now_i.checked_sub(age).unwrap_or(now_i);
        let is_last = Some(id) == last;

        let scan = format::scan(&buf, is_last, syncer.enabled).map_err(|c| SpoolError::Corrupt {
            path: path.clone(),
            offset: c.offset,
            reason: c.error.reason(),
        })?;
        for offset in &scan.skipped {
            tracing::error!(path = %path.display(), offset, "spool: record with bad checksum skipped at recovery; its payload is lost");
        }
        skipped += scan.skipped.len() as u64;

        let mut len = buf.len() as u64;
        if let Some(to) = scan.truncate_to {
            if is_last {
                tracing::warn!(path = %path.display(), offset = to, dropped_bytes = len - to, "spool: truncating torn tail (appends that never completed)");
            } else {
                tracing::error!(path = %path.display(), offset = to, dropped_bytes = len - to, "spool: sealed segment has an unreadable tail (zero-filled, or torn while fsync was off); truncating");
            }
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(to)?;
            syncer.file(&f)?;
            truncated += len - to;
            len = to;
        }

        let acked_here = acks.acked.get(&id);
        let mut meta = SegMeta { len, ..SegMeta::default() };
        for r in &scan.records {
            if acked_here.is_some_and(|s| s.contains(&r.offset)) {
                meta.acked.push(r.offset);
            } else {
                meta.live.insert(r.offset, born);
                replay.push(Replayed {
                    id: RecordId { segment: id, offset: r.offset },
                    // Copied so one unacked record does not keep a whole segment
                    // image alive.
                    payload: Bytes::copy_from_slice(r.payload(&buf)),
                });
            }
        }
        if meta.live.is_empty() {
            fs::remove_file(&path)?;
            deleted_any = true;
            continue;
        }
        state.bytes += meta.len;
        state.records += meta.live.len() as u64;
        state.acked_entries += meta.acked.len() as u64;
        state.segments.insert(id, meta);
    }
    if deleted_any {
        // Make the deletions durable before the rewrite below drops their acks;
        // otherwise a crash could resurrect a segment without its acks.
        syncer.dir(dir)?;
    }

    let next_segment = acks.floor.max(last.map_or(0, |l| l + 1)).max(acks.max_segment.map_or(0, |m| m + 1));
    let acked_ids =
        state.segments.iter().flat_map(|(&segment, m)| m.acked.iter().map(move |&offset| RecordId { segment, offset }));
    let acklog = AckLog::rewrite(dir, next_segment, acked_ids, syncer)?;
    if skipped > 0 || truncated > 0 || !replay.is_empty() {
        tracing::info!(
            dir = %dir.display(),
            replayed = replay.len(),
            skipped,
            truncated_bytes = truncated,
            "spool recovered"
        );
    }
    Ok(Recovered { lock, state, replay, next_segment, acklog, skipped, truncated })
}
