//! The ack log: which records were delivered, so a restart does not replay them.
//!
//! File `acks.log` = one header then fixed-size entries, all little-endian:
//! - header (20 bytes): `b"PLSPACK1"`, `u64 segment_floor`, `u32 crc32(previous 16 bytes)`
//! - entry (20 bytes): `u64 segment`, `u64 offset`, `u32 crc32(previous 16 bytes)`
//!
//! Entries are appended by the writer thread (one `write` per batch) and fsynced
//! lazily, at most [`ACK_SYNC_INTERVAL`] after being written: the log is allowed
//! to lag, since a lost ack only causes a replay, and downstream writes are
//! idempotent. A torn or damaged entry ends the log on load; every later ack is
//! treated as missing for the same reason.
//!
//! The log is rewritten ("compacted") to `acks.log.tmp` + fsync + rename + dir
//! fsync at every open and when it has grown well past the number of acks that
//! still matter (acks of deleted segments are dropped). `segment_floor` records
//! the next segment id at rewrite time, so segment ids keep growing across
//! restarts even when every segment was deleted.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{RecordId, Syncer};

/// File name of the ack log inside the spool directory.
pub const ACK_LOG_FILE: &str = "acks.log";
const TMP_FILE: &str = "acks.log.tmp";
const MAGIC: &[u8; 8] = b"PLSPACK1";
const HEADER_BYTES: usize = 20;
const ENTRY_BYTES: usize = 20;

/// How long a written ack may stay un-fsynced. Bounds the replay window after a
/// power loss without paying a second fsync for every append batch.
pub const ACK_SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// Rewrite once the file holds this many entries beyond twice the live ones;
/// keeps compaction amortised O(1) per ack.
const REWRITE_SLACK_ENTRIES: u64 = 4096;

fn encode16(a: &[u8; 8], b: u64) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..8].copy_from_slice(a);
    out[8..16].copy_from_slice(&b.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn encode_entry(id: RecordId) -> [u8; 20] {
    encode16(&id.segment.to_le_bytes(), id.offset)
}

fn decode16(raw: &[u8]) -> Option<(u64, u64)> {
    let crc = u32::from_le_bytes(raw[16..20].try_into().ok()?);
    if crc32fast::hash(&raw[..16]) != crc {
        return None;
    }
    let a = u64::from_le_bytes(raw[..8].try_into().ok()?);
    let b = u64::from_le_bytes(raw[8..16].try_into().ok()?);
    Some((a, b))
}

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct LoadedAcks {
    /// Lowest segment id that may be created from now on.
    pub floor: u64,
    /// Acked offsets by segment.
    pub acked: HashMap<u64, HashSet<u64>>,
    /// Highest segment id mentioned by any entry; new ids must exceed it so a
    /// stale ack can never match a record of a reused id.
    pub max_segment: Option<u64>,
}

/// Reads `acks.log`. A missing file is an empty log; a bad header or entry ends
/// the log there (with a warning), because losing acks only causes replays.
/// I/O errors are returned: the disk is failing and opening should stop.
pub fn load(dir: &Path) -> io::Result<LoadedAcks> {
    let path = dir.join(ACK_LOG_FILE);
    let buf = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LoadedAcks::default()),
        Err(e) => return Err(e),
    };
    let mut out = LoadedAcks::default();
    let header = buf.get(..HEADER_BYTES).filter(|h| &h[..8] == MAGIC).and_then(decode16);
    let Some((_, floor)) = header else {
        tracing::warn!(path = %path.display(), "spool: ack log header unreadable; ignoring it, unacked-looking records will be replayed");
        return Ok(out);
    };
    out.floor = floor;
    let body = &buf[HEADER_BYTES..];
    for (i, raw) in body.chunks(ENTRY_BYTES).enumerate() {
        let entry = (raw.len() == ENTRY_BYTES).then(|| decode16(raw)).flatten();
        let Some((segment, offset)) = entry else {
            tracing::warn!(
                path = %path.display(),
                entry = i,
                dropped_bytes = body.len() - i * ENTRY_BYTES,
                "spool: ack log ends in a torn or damaged entry; later acks are ignored (their records will be replayed)"
            );
            break;
        };
        out.acked.entry(segment).or_default().insert(offset);
        out.max_segment = out.max_segment.max(Some(segment));
    }
    Ok(out)
}

/// Append handle on `acks.log`, owned by the writer thread.
pub struct AckLog {
    dir: PathBuf,
    file: File,
    /// Length of the valid prefix; a failed append truncates back to it.
    len: u64,
    /// Entries in the file (including those of already-deleted segments).
    entries: u64,
    unsynced: bool,
    last_sync: Instant,
    /// An append failed: some acks are only in memory. The next compaction
    /// writes them from the in-memory state.
    needs_rewrite: bool,
}

impl AckLog {
    /// Atomically replaces `acks.log` with a header carrying `floor` plus one
    /// entry per id, durable (when fsync is on) before it returns.
    pub fn rewrite(
        dir: &Path,
        floor: u64,
        acked: impl IntoIterator<Item = RecordId>,
        syncer: &Syncer,
    ) -> io::Result<AckLog> {
        let mut buf = encode16(MAGIC, floor).to_vec();
        let mut entries = 0u64;
        for id in acked {
            buf.extend_from_slice(&encode_entry(id));
            entries += 1;
        }
        let tmp = dir.join(TMP_FILE);
        let path = dir.join(ACK_LOG_FILE);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            syncer.file(&f)?;
        }
        fs::rename(&tmp, &path)?;
        syncer.dir(dir)?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(AckLog {
            dir: dir.to_path_buf(),
            file,
            len: buf.len() as u64,
            entries,
            unsynced: false,
            last_sync: Instant::now(),
            needs_rewrite: false,
        })
    }

    /// Writes the entries (no fsync; see [`AckLog::sync_if_due`]). On error the
    /// file is cut back to its last good length so no torn entry hides later
    /// ones, and a rewrite is requested.
    pub fn append(&mut self, ids: &[RecordId]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(ids.len() * ENTRY_BYTES);
        for &id in ids {
            buf.extend_from_slice(&encode_entry(id));
        }
        match self.file.write_all(&buf) {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.entries += ids.len() as u64;
                self.unsynced = true;
                Ok(())
            }
            Err(e) => {
                self.needs_rewrite = true;
                if let Err(t) = self.file.set_len(self.len) {
                    tracing::warn!(error = %t, dir = %self.dir.display(), "spool: could not truncate ack log after failed write");
                }
                Err(e)
            }
        }
    }

    /// Fsyncs written entries when `force` or when [`ACK_SYNC_INTERVAL`] has
    /// passed since the last sync. A failed sync is retried one interval later.
    pub fn sync_if_due(&mut self, syncer: &Syncer, force: bool) -> io::Result<()> {
        if !self.unsynced || !(force || self.last_sync.elapsed() >= ACK_SYNC_INTERVAL) {
            return Ok(());
        }
        self.last_sync = Instant::now();
        syncer.file(&self.file)?;
        self.unsynced = false;
        Ok(())
    }

    /// When the writer must wake up to fsync pending acks, if any are pending.
    pub fn sync_deadline(&self) -> Option<Instant> {
        self.unsynced.then(|| self.last_sync + ACK_SYNC_INTERVAL)
    }

    /// Whether a compaction is due given `live` acks still relevant in memory.
    pub fn should_rewrite(&self, live: u64) -> bool {
        self.needs_rewrite || self.entries > 2 * live + REWRITE_SLACK_ENTRIES
    }

    /// A rewrite was attempted and failed: keep asking for one.
    pub fn mark_needs_rewrite(&mut self) {
        self.needs_rewrite = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_then_load_round_trips_and_stops_at_torn_entry() {
        let dir = tempfile::tempdir().unwrap();
        let syncer = Syncer::new(false);
        let ids = [RecordId { segment: 3, offset: 0 }, RecordId { segment: 4, offset: 40 }];
        let mut log = AckLog::rewrite(dir.path(), 9, ids, &syncer).unwrap();
        log.append(&[RecordId { segment: 5, offset: 8 }]).unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.floor, 9);
        assert_eq!(loaded.max_segment, Some(5));
        assert!(loaded.acked[&4].contains(&40));

        // A half-written entry at the end is ignored; earlier ones survive.
        let mut f = OpenOptions::new().append(true).open(dir.path().join(ACK_LOG_FILE)).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.acked.values().map(HashSet::len).sum::<usize>(), 3);
    }

    #[test]
    fn missing_or_garbage_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().acked.is_empty());
        fs::write(dir.path().join(ACK_LOG_FILE), b"not an ack log at all").unwrap();
        let loaded = load(dir.path()).unwrap();
        assert!(loaded.acked.is_empty());
        assert_eq!(loaded.floor, 0);
    }
}
