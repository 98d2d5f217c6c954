//! Property test: random append / ack / reopen sequences against an in-memory
//! model (the list of unacked records in append order).

use bytes::Bytes;
use proptest::prelude::*;

use super::super::RecordId;
use super::{open, opts, pairs, payload, seg_files};

#[derive(Debug, Clone)]
enum Op {
    /// Append a payload of this many bytes (at least 8).
    Append(usize),
    /// Ack the unacked record at this index (modulo the count).
    Ack(usize),
    /// Close and reopen; the replay must equal the model.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (8usize..120).prop_map(Op::Append),
        4 => any::<usize>().prop_map(Op::Ack),
        1 => Just(Op::Reopen),
    ]
}

async fn run(ops: Vec<Op>, segment_bytes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(segment_bytes);
    let (mut spool, replay) = open(dir.path(), o);
    assert!(replay.is_empty());
    let mut live: Vec<(RecordId, Bytes)> = Vec::new();
    let mut last_id: Option<RecordId> = None;
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append(len) => {
                let p = payload(n, len);
                let id = spool.append(p.clone()).await.unwrap();
                assert!(last_id < Some(id), "ids grow, also across reopen: {last_id:?} then {id}");
                last_id = Some(id);
                live.push((id, p));
            }
            Op::Ack(i) if !live.is_empty() => {
                let (id, _) = live.remove(i % live.len());
                spool.ack(id);
                spool.ack(id); // idempotent
            }
            Op::Ack(_) => {}
            Op::Reopen => {
                spool.close().await;
                let (s, replay) = open(dir.path(), o);
                assert_eq!(pairs(&replay), live);
                spool = s;
            }
        }
        assert_eq!(spool.stats().records, live.len() as u64);
    }
    spool.close().await;
    let (spool, replay) = open(dir.path(), o);
    assert_eq!(pairs(&replay), live);
    // Open deletes every segment without live records: what is left on disk is
    // exactly the segments holding unacked records.
    let mut want: Vec<u64> = live.iter().map(|(id, _)| id.segment).collect();
    want.dedup();
    assert_eq!(seg_files(dir.path()), want);
    spool.close().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_append_ack_reopen_matches_model(
        ops in prop::collection::vec(op(), 1..80),
        segment_bytes in 16u64..400,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops, segment_bytes));
    }
}
