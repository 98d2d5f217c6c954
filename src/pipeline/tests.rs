//! The batch loop's timing — join window and batch delay — under tokio's paused clock: the timer
//! lives in the loop, so these run in virtual time, without sleeping.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use promptlog_ingest::join::Joiner;
use promptlog_ingest::{Ingestor, Limits, Processors, Request, RequestContext, Submission};
use promptlog_otlp::{kv, kv_i64, logs_request, resource, span, span_log, traces_request};
use promptlog_spool::{Spool, SpoolOptions};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::acks::{AckTracker, Source};
use super::lanes::{BatchLimits, Lane, Lanes};
use super::{BatchLoop, Queued, Sourced, TICK};
use crate::telemetry::Stats;

const WINDOW: Duration = Duration::from_secs(10);
const DELAY: Duration = Duration::from_secs(1);
const LIMITS: BatchLimits = BatchLimits { max_rows: 1000, max_bytes: usize::MAX, max_delay: DELAY };
const START_NS: u64 = 1_700_000_000_000_000_000;

/// A batch loop whose lanes end in channels the test reads, instead of ClickHouse writers.
struct Harness {
    tx: mpsc::Sender<Queued>,
    spans: mpsc::Receiver<Vec<Sourced<promptlog_ingest::rows::SpanRow>>>,
    calls: mpsc::Receiver<Vec<Sourced<promptlog_ingest::rows::LlmCallRow>>>,
    spool: Spool,
    source: Source,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), SpoolOptions { fsync: false, ..SpoolOptions::default() }).unwrap();
    let id = spool.append(Bytes::from_static(b"record")).await.unwrap();
    let (spans_tx, spans) = mpsc::channel(8);
    let (logs_tx, _logs) = mpsc::channel(8);
    let (calls_tx, calls) = mpsc::channel(8);
    let lanes = Lanes {
        traces: Lane::new(LIMITS, spans_tx),
        logs: Lane::new(LIMITS, logs_tx),
        calls: Lane::new(LIMITS, calls_tx),
        metrics: super::lanes::MetricLanes::unused(LIMITS),
        scores: Lane::new(LIMITS, mpsc::channel(1).0),
    };
    let (tx, rx) = mpsc::channel(8);
    let batch_loop = BatchLoop {
        rx,
        lanes,
        joiner: Joiner::with_tags(WINDOW, 100),
        acks: Arc::new(AckTracker::new(spool.clone())),
        stats: Stats::new(),
        cancel: CancellationToken::new(),
    };
    tokio::spawn(batch_loop.run());
    Harness { tx, spans, calls, spool, source: Source { id, replayed: false }, _dir: dir }
}

/// A chat span whose content comes in log records (so its call waits for them).
fn chat_span() -> opentelemetry_proto::tonic::trace::v1::Span {
    let attrs = vec![kv("gen_ai.operation.name", "chat"), kv_i64("gen_ai.usage.input_tokens", 3)];
    span("chat m", START_NS, 5, attrs)
}

fn rows(request: Request) -> Submission {
    let ingestor = Ingestor::new(Limits { max_attribute_value_bytes: 1024 }, Processors::new());
    ingestor.accept(&RequestContext::new(request.signal(), 1), request, None).submission
}

fn assert_between(elapsed: Duration, low: Duration, what: &str) {
    // The loop looks at ages on its tick, so a deadline is met within one tick (plus one of slack).
    assert!(
        elapsed >= low && elapsed <= low + 2 * TICK,
        "{what} after {elapsed:?}, expected {low:?} + at most 2 ticks"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_the_join_window_for_content_and_rows_wait_the_batch_delay() {
    let mut h = harness().await;
    let spans = rows(Request::Traces(traces_request(resource("svc", "test"), vec![chat_span()])));
    assert!(spans.calls[0].awaits_content, "the call has no content of its own");
    let start = Instant::now();
    h.tx.send(Queued { submission: spans, source: h.source, room: None }).await.unwrap();

    let batch = h.spans.recv().await.unwrap();
    assert_between(start.elapsed(), DELAY, "the span batch was written");
    assert_eq!(batch.len(), 1);

    let early = tokio::time::timeout(WINDOW - DELAY - TICK, h.calls.recv()).await;
    assert!(early.is_err(), "a call awaiting content is held for the join window");
    let calls = h.calls.recv().await.unwrap();
    assert_between(start.elapsed(), WINDOW + DELAY, "the call batch was written");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].row.input_messages.is_empty(), "released without the content that never came");
    assert_eq!(calls[0].source, h.source);
    h.spool.close().await;
}

#[tokio::test(start_paused = true)]
async fn content_arriving_in_the_window_releases_the_call_at_once() {
    let mut h = harness().await;
    let span = chat_span();
    let start = Instant::now();
    let spans = rows(Request::Traces(traces_request(resource("svc", "test"), vec![span.clone()])));
    h.tx.send(Queued { submission: spans, source: h.source, room: None }).await.unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = |name: &str, attrs| -> LogRecord { span_log(&span, name, attrs, None) };
    let details = vec![
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.input.messages", r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#),
        kv(
            "gen_ai.output.messages",
            r#"[{"role":"assistant","parts":[{"type":"text","content":"hello"}],"finish_reason":"stop"}]"#,
        ),
    ];
    let logs = rows(Request::Logs(logs_request(
        resource("svc", "test"),
        vec![log("gen_ai.client.inference.operation.details", details)],
    )));
    assert_eq!(logs.fragments.len(), 1);
    h.tx.send(Queued { submission: logs, source: h.source, room: None }).await.unwrap();

    let calls = h.calls.recv().await.unwrap();
    assert_between(start.elapsed(), Duration::from_secs(3) + DELAY, "the joined call was written");
    assert!(calls[0].row.input_text.contains("hi") && calls[0].row.output_text.contains("hello"));
    h.spool.close().await;
}
