//! On-disk record framing and the recovery scan of one segment.
//!
//! A segment file is a plain concatenation of frames:
//! `[u32 len LE][u32 crc32(payload) LE][payload; len]`, with `1 <= len <=`
//! [`MAX_RECORD_BYTES`]. There is no file header, no padding and no sync marker,
//! so the only way to find frame `n + 1` is to trust the length field of frame `n`.
//! That fact drives the corruption policy in [`scan`].

use std::path::{Path, PathBuf};

/// Size of the `[len][crc]` header in front of every payload.
pub const FRAME_HEADER_BYTES: u64 = 8;

/// Largest payload one record may carry (256 MiB). Larger requests are refused
/// with [`super::SpoolError::RecordSize`] before anything is written.
pub const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;

const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".log";

/// `seg-<20-digit id>.log`: zero-padded so that a plain directory listing sorts
/// in append order, which makes manual inspection less error-prone.
pub fn segment_file_name(id: u64) -> String {
    format!("{SEGMENT_PREFIX}{id:020}{SEGMENT_SUFFIX}")
}

/// Full path of segment `id` inside `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_file_name(id))
}

/// Inverse of [`segment_file_name`]; `None` for any other file name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Bytes a payload of `payload_len` bytes occupies on disk.
pub fn frame_len(payload_len: usize) -> u64 {
    FRAME_HEADER_BYTES + payload_len as u64
}

/// The 8-byte frame header for `payload`.
pub fn frame_header(payload: &[u8]) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

/// Why a frame could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes remain than the header or the declared length needs.
    Truncated,
    /// Length field is 0 or above [`MAX_RECORD_BYTES`]. Zero is refused on
    /// purpose: a zero-filled region (a typical torn write) would otherwise parse
    /// as an endless run of valid empty records, because crc32("") == 0.
    BadLength,
    /// Framing is plausible but the payload does not match its checksum.
    BadCrc,
}

impl FrameError {
    /// Short human-readable reason, used in logs and [`super::SpoolError::Corrupt`].
    pub fn reason(self) -> &'static str {
        match self {
            FrameError::Truncated => "frame extends past end of file",
            FrameError::BadLength => "invalid length field",
            FrameError::BadCrc => "payload checksum mismatch",
        }
    }
}

/// Parses the frame at `pos`; on success returns its payload length.
/// On `BadCrc` the length is still returned through `Err`'s companion so the
/// caller can try to skip the record (see [`scan`]).
fn parse_frame(buf: &[u8], pos: usize) -> Result<usize, (FrameError, usize)> {
    let rest = &buf[pos..];
    if rest.len() < FRAME_HEADER_BYTES as usize {
        return Err((FrameError::Truncated, 0));
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 || len as u64 > MAX_RECORD_BYTES {
        return Err((FrameError::BadLength, len));
    }
    let Some(payload) = rest.get(8..8 + len) else {
        return Err((FrameError::Truncated, len));
    };
    if crc32fast::hash(payload) != crc {
        return Err((FrameError::BadCrc, len));
    }
    Ok(len)
}

/// A record found by [`scan`]: where its frame starts and how long its payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundRecord {
    /// Offset of the frame header inside the segment (this is `RecordId::offset`).
    pub offset: u64,
    /// Payload length in bytes.
    pub len: u32,
}

impl FoundRecord {
    /// The payload bytes of this record inside the segment buffer.
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let start = self.offset as usize + FRAME_HEADER_BYTES as usize;
        &buf[start..start + self.len as usize]
    }
}

/// Outcome of scanning one segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Every readable record, in file order.
    pub records: Vec<FoundRecord>,
    /// Offsets of frames skipped because their checksum failed while the framing
    /// around them was verified (see [`scan`]). Their payload is lost.
    pub skipped: Vec<u64>,
    /// `Some(len)`: the file must be truncated to `len` (an unreadable tail).
    pub truncate_to: Option<u64>,
}

/// The segment is unreadable past `offset` and readable data may follow, so
/// recovery refuses to guess. Turned into [`super::SpoolError::Corrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCorrupt {
    /// Offset of the first bad frame.
    pub offset: u64,
    /// What was wrong with it.
    pub error: FrameError,
}

/// Parses frames from `pos` to exactly the end of `buf`; `None` if any frame
/// is bad or the last one does not end exactly at EOF.
fn clean_to_eof(buf: &[u8], mut pos: usize) -> Option<Vec<FoundRecord>> {
    let mut out = Vec::new();
    while pos < buf.len() {
        let len = parse_frame(buf, pos).ok()?;
        out.push(FoundRecord { offset: pos as u64, len: len as u32 });
        pos += 8 + len;
    }
    Some(out)
}

/// Scans one segment image. `is_last`: this is the newest segment (the one
/// appends went to when the process stopped). `fsync`: the spool runs with
/// fsync, so a sealed segment was fully flushed before the next one started.
///
/// Policy at the first bad frame (offset `p`):
/// 1. **Skip with report** — the frame's length is plausible, only its checksum
///    failed, and everything after it parses as valid frames ending exactly at
///    EOF. A wrong length field would almost surely make the rest unparseable,
///    so this proves the framing; the one damaged record is dropped and reported,
///    the good records after it are kept. In the last segment this additionally
///    needs at least one valid record after the bad one; otherwise it is just a
///    torn tail (rule 2).
/// 2. **Torn tail, truncate at `p`** — in the last segment, anything else: the
///    tail of a write that never completed (so never acknowledged). In a sealed
///    segment only when nothing readable can follow: the rest is all zeros, or
///    (with `fsync` off, where a power loss can tear any segment) the frame runs
///    past EOF.
/// 3. **Corrupt** — otherwise (sealed segment, e.g. a damaged length field):
///    refuse, because truncating could silently drop acknowledged records that
///    are still readable, and guessing a resync point could replay garbage.
pub fn scan(buf: &[u8], is_last: bool, fsync: bool) -> Result<Scan, ScanCorrupt> {
    let mut out = Scan::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        match parse_frame(buf, pos) {
            Ok(len) => {
                out.records.push(FoundRecord { offset: pos as u64, len: len as u32 });
                pos += 8 + len;
            }
            Err((error, len)) => {
                if error == FrameError::BadCrc
                    && let Some(rest) = clean_to_eof(buf, pos + 8 + len)
                    && (!is_last || !rest.is_empty())
                {
                    out.skipped.push(pos as u64);
                    out.records.extend(rest);
                    return Ok(out);
                }
                let zeros = buf[pos..].iter().all(|&b| b == 0);
                let unsynced_tear = !fsync && error == FrameError::Truncated;
                if is_last || zeros || unsynced_tear {
                    out.truncate_to = Some(pos as u64);
                    return Ok(out);
                }
                return Err(ScanCorrupt { offset: pos as u64, error });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = frame_header(payload).to_vec();
        v.extend_from_slice(payload);
        v
    }

    fn image(payloads: &[&[u8]]) -> Vec<u8> {
        payloads.iter().flat_map(|p| frame(p)).collect()
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(7), "seg-00000000000000000007.log");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("seg-7.log"), None);
        assert_eq!(parse_segment_file_name("acks.log"), None);
    }

    #[test]
    fn clean_image_scans_fully() {
        let buf = image(&[b"a", b"bb", b"ccc"]);
        let s = scan(&buf, false, true).unwrap();
        assert_eq!(s.records.len(), 3);
        assert_eq!(s.records[2].payload(&buf), b"ccc");
        assert_eq!(s.truncate_to, None);
        assert!(s.skipped.is_empty());
    }

    #[test]
    fn zero_tail_is_torn_not_empty_records() {
        let mut buf = image(&[b"a"]);
        let good = buf.len() as u64;
        buf.extend_from_slice(&[0u8; 64]);
        for last in [true, false] {
            let s = scan(&buf, last, true).unwrap();
            assert_eq!(s.records.len(), 1);
            assert_eq!(s.truncate_to, Some(good));
        }
    }

    #[test]
    fn bad_crc_in_middle_is_skipped_in_any_segment() {
        let mut buf = image(&[b"one", b"two", b"three"]);
        buf[8 + 3 + 8] ^= 0xff; // first payload byte of "two"
        for last in [true, false] {
            let s = scan(&buf, last, true).unwrap();
            let got: Vec<_> = s.records.iter().map(|r| r.payload(&buf)).collect();
            assert_eq!(got, vec![&b"one"[..], b"three"]);
            assert_eq!(s.skipped, vec![11]);
        }
    }

    #[test]
    fn bad_length_in_sealed_segment_is_corrupt_but_torn_in_last() {
        let mut buf = image(&[b"one", b"two", b"three"]);
        buf[11] = 5; // length of "two" now plausible but wrong: checksum fails
        assert_eq!(scan(&buf, false, true).unwrap_err().offset, 11);
        assert_eq!(scan(&buf, false, false).unwrap_err().offset, 11);
        assert_eq!(scan(&buf, true, true).unwrap().truncate_to, Some(11));

        buf[11] = 0xee; // length now runs past EOF
        let err = scan(&buf, false, true).unwrap_err();
        assert_eq!(err.error, FrameError::Truncated);
        // Without fsync a sealed segment can be torn by a power loss.
        assert_eq!(scan(&buf, false, false).unwrap().truncate_to, Some(11));
        assert_eq!(scan(&buf, true, true).unwrap().truncate_to, Some(11));
    }

    #[test]
    fn bad_crc_on_final_frame() {
        let mut buf = image(&[b"one", b"two"]);
        let n = buf.len();
        buf[n - 1] ^= 1;
        // Last segment: torn tail. Sealed: skipped (framing ends exactly at EOF).
        assert_eq!(scan(&buf, true, true).unwrap().truncate_to, Some(11));
        let s = scan(&buf, false, true).unwrap();
        assert_eq!(s.skipped, vec![11]);
        assert_eq!(s.truncate_to, None);
    }
}
