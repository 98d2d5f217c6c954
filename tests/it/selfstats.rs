//! Self-telemetry end to end: `GET /metrics` after real traffic, and `collector_stats` rows with
//! correct deltas, both from a writer run at a short interval and from the collector's own writer.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use promptlog::selfstats;
use promptlog::storage::clickhouse::Store;
use promptlog::telemetry::Stats;
use promptlog_ingest::Table;
use promptlog_testkit::cell;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::support::stack::Stack;

/// Spans sent by the end-to-end test.
const SPANS: u64 = 12;

/// The value of one sample in a Prometheus exposition.
fn sample(text: &str, series: &str) -> f64 {
    let line = text.lines().find(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == series));
    line.and_then(|l| l.rsplit_once(' ')?.1.parse().ok()).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_writer_stores_deltas_and_gauges() {
    let stack = Stack::start().await;
    let stats = Stats::new();
    let shutdown = CancellationToken::new();
    let store = Store::new(&stack.config.clickhouse);
    let writer = selfstats::spawn_writer(store, stats.clone(), Duration::from_millis(300), shutdown.clone());

    let traces = stats.table(Table::Traces);
    traces.received.fetch_add(5, Relaxed);
    traces.queued.fetch_add(5, Relaxed);
    let sum_sql = "SELECT sum(Received) AS received, sum(Written) AS written \
                   FROM collector_stats WHERE Signal = 'traces'";
    let rows = stack.poll(sum_sql, Duration::from_secs(20), |r| cell::<f64>(&r[0], "received") == 5.0).await;
    assert_eq!(cell::<f64>(&rows[0], "received"), 5.0);

    traces.received.fetch_add(3, Relaxed);
    traces.written.fetch_add(8, Relaxed);
    traces.queued.fetch_sub(5, Relaxed);
    traces.last_batch_micros.store(2_500, Relaxed);
    let rows = stack.poll(sum_sql, Duration::from_secs(20), |r| cell::<f64>(&r[0], "written") == 8.0).await;
    assert_eq!((cell::<f64>(&rows[0], "received"), cell::<f64>(&rows[0], "written")), (8.0, 8.0));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), writer).await.expect("writer stops on shutdown").unwrap();

    // Per row: counters are deltas (5, then 3; zero rows in between), gauges are current values.
    let rows = stack
        .query_json(
            "SELECT Instance, Received, Written, QueueDepth, BatchLatencyMs FROM collector_stats \
             WHERE Signal = 'traces' AND Received > 0 ORDER BY Timestamp",
        )
        .await;
    let deltas: Vec<_> = rows.iter().map(|r| cell::<f64>(r, "Received")).collect();
    assert_eq!(deltas, [5.0, 3.0]);
    assert_eq!((cell::<f64>(&rows[0], "QueueDepth"), cell::<f64>(&rows[1], "QueueDepth")), (5.0, 0.0));
    assert_eq!(cell::<f64>(&rows[1], "BatchLatencyMs"), 2.5);
    assert_eq!(rows[0]["Instance"], selfstats::instance_name().as_str());
    let signals = stack.query_json("SELECT DISTINCT Signal AS s FROM collector_stats ORDER BY s").await;
    let signals: Vec<_> = signals.iter().map(|r| r["s"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        signals,
        [
            "llm_calls",
            "logs",
            "metrics_exponential_histogram",
            "metrics_gauge",
            "metrics_histogram",
            "metrics_sum",
            "metrics_summary",
            "scores",
            "traces"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_reports_its_traffic_in_metrics_and_collector_stats() {
    let stack = Stack::start().await;
    let spans =
        (0..SPANS).map(|i| promptlog_otlp::span(&format!("stats-{i}"), promptlog_otlp::now_ns(), 3, vec![])).collect();
    let body = promptlog_otlp::traces_request(promptlog_otlp::resource("selfstats", "test"), spans).encode_to_vec();
    let (status, _, _) = stack.post_otlp("/v1/traces", "application/x-protobuf", body, false).await;
    assert_eq!(status, 200);
    stack.wait_for_count("otel_traces", SPANS).await;

    let metrics_url = format!("{}/metrics", stack.otlp_http_url());
    let started = Instant::now();
    let text = loop {
        let response = reqwest::get(&metrics_url).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type, selfstats::PROMETHEUS_CONTENT_TYPE);
        let text = response.text().await.unwrap();
        // The written counter moves right after the insert returns, which may trail the rows.
        if sample(&text, r#"promptlog_rows_written_total{table="otel_traces"}"#) == SPANS as f64
            || started.elapsed() > Duration::from_secs(10)
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sample(&text, r#"promptlog_rows_received_total{table="otel_traces"}"#), SPANS as f64);
    assert_eq!(sample(&text, r#"promptlog_rows_written_total{table="otel_traces"}"#), SPANS as f64);
    assert_eq!(sample(&text, r#"promptlog_rows_queued{table="otel_traces"}"#), 0.0);
    assert_eq!(sample(&text, "promptlog_clickhouse_up"), 1.0);
    assert!(sample(&text, r#"promptlog_last_batch_seconds{table="otel_traces"}"#) > 0.0);
    for spool_gauge in ["promptlog_spool_bytes", "promptlog_spool_records", "promptlog_spool_oldest_age_seconds"] {
        assert!(sample(&text, spool_gauge) >= 0.0);
    }

    // The collector's own writer runs every STATS_INTERVAL; two intervals cover the write landing
    // just after a row was taken.
    let sql = "SELECT sum(Received) AS received, sum(Written) AS written FROM collector_stats WHERE Signal = 'traces'";
    let within = 2 * selfstats::STATS_INTERVAL + Duration::from_secs(5);
    let rows = stack.poll(sql, within, |r| cell::<f64>(&r[0], "written") == SPANS as f64).await;
    println!("[selfstats] collector_stats caught up after {:?}", started.elapsed());
    assert_eq!((cell::<f64>(&rows[0], "received"), cell::<f64>(&rows[0], "written")), (SPANS as f64, SPANS as f64));
}

/// The join gauges show the calls held for the join window (duplicate merging holds every call), with
/// their estimated bytes, and fall to zero once the calls are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_calls_and_their_bytes_are_gauged() {
    const CALLS: u64 = 3;
    // Long enough that the first poll surely falls inside it on a loaded machine.
    let window = Duration::from_secs(8);
    let stack = Stack::start_with(|c| c.pipeline.join_window = window).await;
    let chat = |i: u64| {
        let attrs = vec![
            promptlog_otlp::kv("gen_ai.operation.name", "chat"),
            promptlog_otlp::kv("gen_ai.provider.name", "openai"),
            promptlog_otlp::kv("gen_ai.request.model", "gpt-4o"),
            promptlog_otlp::kv(
                "gen_ai.input.messages",
                format!(r#"[{{"role":"user","parts":[{{"type":"text","content":"held {i}"}}]}}]"#),
            ),
        ];
        promptlog_otlp::span(&format!("chat gpt-4o {i}"), promptlog_otlp::now_ns(), 5, attrs)
    };
    let body = promptlog_otlp::traces_request(promptlog_otlp::resource("held", "test"), (0..CALLS).map(chat).collect())
        .encode_to_vec();
    let sent = Instant::now();
    let (status, _, _) = stack.post_otlp("/v1/traces", "application/x-protobuf", body, false).await;
    assert_eq!(status, 200);
    let metrics_url = format!("{}/metrics", stack.otlp_http_url());
    let scrape = || async { reqwest::get(&metrics_url).await.unwrap().text().await.unwrap() };
    let held = loop {
        let text = scrape().await;
        if sample(&text, "promptlog_join_held") == CALLS as f64 || sent.elapsed() > window {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sample(&held, "promptlog_join_held"), CALLS as f64, "calls held during the window");
    assert!(sample(&held, "promptlog_join_held_bytes") > 1000.0, "held bytes counted");
    stack.wait_for_count("llm_calls", CALLS).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let text = scrape().await;
        if sample(&text, "promptlog_join_held") == 0.0 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (sample(&after, "promptlog_join_held"), sample(&after, "promptlog_join_held_bytes")),
        (0.0, 0.0),
        "nothing held once written"
    );
}
