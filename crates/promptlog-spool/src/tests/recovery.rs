//! Recovery tests: torn tails and damaged sealed segments.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::super::format::{frame_header, segment_path};
use super::super::{DEFAULT_SEGMENT_BYTES, RecordId, Spool, SpoolError};
use super::{append_all, open, opts, pairs, payload};

/// Appends 3 records, damages the tail of the last segment with `tail`, reopens.
async fn torn_tail_case(tail: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<Bytes> = (0..3).map(|i| payload(i, 30)).collect();
    let (spool, _) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    let ids = append_all(&spool, &items).await;
    spool.close().await;
    let seg = segment_path(dir.path(), ids[0].segment);
    let good_len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new().append(true).open(&seg).unwrap().write_all(tail).unwrap();

    let (spool, replay) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    let mut expected: Vec<_> = ids.iter().copied().zip(items).collect();
    assert_eq!(pairs(&replay), expected);
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len, "tail truncated");
    assert_eq!(spool.stats().recovered_truncated_bytes, tail.len() as u64);
    let p = payload(3, 30);
    expected.push((spool.append(p.clone()).await.unwrap(), p));
    spool.close().await;

    let (spool, replay) = open(dir.path(), opts(DEFAULT_SEGMENT_BYTES));
    assert_eq!(pairs(&replay), expected);
    assert_eq!(spool.stats().recovered_truncated_bytes, 0);
    spool.close().await;
}

#[tokio::test]
async fn torn_tail_garbage_is_truncated() {
    torn_tail_case(&[0xde, 0xad, 0xbe, 0xef].repeat(8)).await;
}

#[tokio::test]
async fn torn_tail_partial_record_is_truncated() {
    let full = payload(99, 100);
    let mut tail = frame_header(&full).to_vec();
    tail.extend_from_slice(&full[..10]);
    torn_tail_case(&tail).await;
}

#[tokio::test]
async fn torn_tail_zero_fill_is_truncated() {
    torn_tail_case(&[0; 64]).await;
}

/// Three segments of three 38-byte frames each; returns (ids, items).
async fn three_sealed_segments(dir: &Path) -> (Vec<RecordId>, Vec<Bytes>) {
    let items: Vec<Bytes> = (0..9).map(|i| payload(i, 30)).collect();
    let (spool, _) = open(dir, opts(120));
    let ids = append_all(&spool, &items).await;
    spool.close().await;
    assert_eq!(ids[1], RecordId { segment: ids[0].segment, offset: 38 });
    (ids, items)
}

fn poke(path: &PathBuf, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    OpenOptions::new().write(true).open(path).unwrap().write_all_at(bytes, offset).unwrap();
}

#[tokio::test]
async fn crc_damage_in_sealed_segment_skips_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, items) = three_sealed_segments(dir.path()).await;
    poke(&segment_path(dir.path(), ids[1].segment), 38 + 8 + 3, b"X");

    let (spool, replay) = open(dir.path(), opts(120));
    let expected: Vec<_> = ids.iter().copied().zip(items).filter(|(id, _)| *id != ids[1]).collect();
    assert_eq!(pairs(&replay), expected, "records after the damaged one are kept");
    assert_eq!(spool.stats().recovered_skipped_records, 1);
    spool.close().await;
}

#[tokio::test]
async fn length_damage_in_sealed_segment_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, _) = three_sealed_segments(dir.path()).await;
    let path = segment_path(dir.path(), ids[1].segment);
    poke(&path, 38, &20u32.to_le_bytes());
    match Spool::open(dir.path(), opts(120)) {
        Err(SpoolError::Corrupt { path: p, offset, reason }) => {
            assert_eq!((p, offset), (path, 38));
            assert!(!reason.is_empty());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Nothing was modified: the operator can still inspect the file.
    assert_eq!(fs::metadata(segment_path(dir.path(), ids[1].segment)).unwrap().len(), 114);
}
