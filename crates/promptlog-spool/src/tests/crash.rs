//! Crash test: a child process (this test binary, re-executed) appends records
//! and prints each acknowledged id; the parent SIGKILLs it mid-stream, reopens
//! the spool and checks that every printed, unacked id is replayed intact.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::super::{DEFAULT_MAX_BYTES, RecordId, Spool, SpoolOptions};
use super::{payload, seg_files};

const CHILD_ENV: &str = "PROMPTLOG_SPOOL_CRASH_CHILD_DIR";
const ROUND_ENV: &str = "PROMPTLOG_SPOOL_CRASH_ROUND";
/// Kill the child once it has acknowledged this many appends.
const KILL_AFTER: usize = 2000;
/// Kill/restart cycles on the same directory: later rounds recover segments
/// left by earlier kills (torn tails included) while appending new ones.
const ROUNDS: usize = 3;

fn child_opts() -> SpoolOptions {
    SpoolOptions { max_bytes: DEFAULT_MAX_BYTES, segment_bytes: 16 * 1024, fsync: true }
}

fn child_payload(seq: usize) -> bytes::Bytes {
    payload(seq, 100 + seq * 37 % 900)
}

/// libtest name of [`crash_child`]: `module_path!()` minus the crate name, so
/// this keeps working wherever the module is mounted.
fn child_test_name() -> String {
    let path = module_path!();
    let without_crate = path.split_once("::").map_or(path, |(_, rest)| rest);
    format!("{without_crate}::crash_child")
}

/// Body of the child process; a no-op test unless the parent set [`CHILD_ENV`].
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let round: usize = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        // Replayed records are deliberately never acked: the parent checks that
        // they survive every later kill too.
        let (spool, _replayed) = Spool::open(Path::new(&dir), child_opts()).unwrap();
        // Bounded so an orphaned child (parent died) stops by itself.
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..4usize)
            .map(|t| {
                let spool = spool.clone();
                tokio::spawn(async move {
                    let mut i = 0;
                    while Instant::now() < deadline {
                        let seq = round * 100_000_000 + t * 1_000_000 + i;
                        let id = spool.append(child_payload(seq)).await.unwrap();
                        // Printed only after append returned: this id was acknowledged.
                        println!("APPENDED {} {} {seq}", id.segment, id.offset);
                        // Most records are acked so segments get deleted and
                        // the ack log compacted while the kill can land.
                        if !seq.is_multiple_of(50) {
                            // Announced before the ack: once `ack` is called the ack log may hold it at
                            // any moment, so a kill between the two must not make the parent expect
                            // this record to replay.
                            println!("ACKED {} {}", id.segment, id.offset);
                            spool.ack(id);
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn parse_id(seg: &str, off: &str) -> Option<RecordId> {
    Some(RecordId { segment: seg.parse().ok()?, offset: off.parse().ok()? })
}

/// One child run: returns (acknowledged id → seq, acked ids) as printed.
fn run_child(dir: &Path, round: usize) -> (BTreeMap<RecordId, usize>, BTreeSet<RecordId>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &child_test_name(), "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut appended = BTreeMap::new();
    let mut acked = BTreeSet::new();
    let mut killed = false;
    // Keep reading after the kill: lines already in the pipe were printed
    // (so acknowledged) before the child died.
    for line in stdout.lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["APPENDED", s, o, seq] => {
                if let (Some(id), Ok(seq)) = (parse_id(s, o), seq.parse()) {
                    appended.insert(id, seq);
                }
            }
            ["ACKED", s, o] => acked.extend(parse_id(s, o)),
            _ => {}
        }
        if !killed && appended.len() >= KILL_AFTER {
            child.kill().unwrap(); // SIGKILL: no destructor, no close, no flush
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "child stopped by itself ({status:?}) after {} appends", appended.len());
    (appended, acked)
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    // Acknowledged and never acked, over all rounds so far: must always replay.
    let mut must: BTreeMap<RecordId, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        let (appended, acked) = run_child(dir.path(), round);
        let new_must = appended.iter().filter(|(id, _)| !acked.contains(id)).count();
        must.extend(appended.iter().filter(|(id, _)| !acked.contains(id)).map(|(k, v)| (*k, *v)));
        assert!(new_must >= KILL_AFTER / 50 - 4, "the round exercised unacked records");

        let (spool, replay) = Spool::open(dir.path(), child_opts()).unwrap();
        let replayed: BTreeMap<RecordId, bytes::Bytes> = replay.into_iter().map(|r| (r.id, r.payload)).collect();
        for (id, seq) in &must {
            let got =
                replayed.get(id).unwrap_or_else(|| panic!("round {round}: acknowledged, unacked record {id} lost"));
            assert_eq!(got, &child_payload(*seq), "payload of {id}");
        }
        for (id, seq) in &appended {
            if let Some(got) = replayed.get(id) {
                assert_eq!(got, &child_payload(*seq), "payload of {id}");
            }
        }
        println!(
            "crash round {round}: {} acknowledged appends, {} acked; {} must-replay so far, {} replayed, {} segment files, {} torn bytes truncated",
            appended.len(),
            acked.len(),
            must.len(),
            replayed.len(),
            seg_files(dir.path()).len(),
            spool.stats().recovered_truncated_bytes,
        );
        // Release the directory lock before the next round's child opens it.
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(spool.close());
    }
}
