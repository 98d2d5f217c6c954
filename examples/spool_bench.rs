//! Throughput probe for the spool: concurrent tasks append 1 KiB records with
//! fsync on, for 2 seconds per phase, and acks each record right away (the
//! steady state of a collector that keeps up). Prints numbers, asserts nothing.
//!
//! `cargo run --release --example spool_bench [-- DIR]` (DIR defaults to a
//! temporary directory; pass one on the disk the collector will use).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use promptlog_spool::{Spool, SpoolOptions};

const RECORD_BYTES: usize = 1024;
const PHASE: Duration = Duration::from_secs(2);

async fn phase(spool: &Spool, tasks: usize) {
    let before = spool.stats();
    let start = Instant::now();
    let deadline = start + PHASE;
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let spool = spool.clone();
            tokio::spawn(async move {
                let payload = Bytes::from(vec![b'x'; RECORD_BYTES]);
                while Instant::now() < deadline {
                    let id = spool.append(payload.clone()).await.expect("append");
                    spool.ack(id);
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    let after = spool.stats();
    let appends = after.appends - before.appends;
    let fsyncs = after.fsyncs - before.fsyncs;
    println!(
        "{tasks:>3} tasks: {:>9.0} appends/s ({:.1} MiB/s), {appends} appends, {fsyncs} fsyncs, {:.1} appends per fsync",
        appends as f64 / secs,
        appends as f64 * RECORD_BYTES as f64 / secs / (1024.0 * 1024.0),
        appends as f64 / fsyncs.max(1) as f64,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tmp;
    let dir: PathBuf = match std::env::args_os().nth(1) {
        Some(d) => d.into(),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    let (spool, replay) = Spool::open(&dir, SpoolOptions::default()).expect("open");
    for r in replay {
        spool.ack(r.id);
    }
    println!("spool bench: {RECORD_BYTES} B records, fsync on, {PHASE:?} per phase, dir {}", dir.display());
    for tasks in [1, 4, 64] {
        phase(&spool, tasks).await;
    }
    spool.close().await;
}
