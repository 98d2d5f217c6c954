//! Fault tests: nothing acknowledged is lost, nothing is stored twice.
//!
//! The collector runs as its own process (the real binary) against a chDB ClickHouse server process
//! the test owns; a sender pushes thousands of LLM spans over OTLP/HTTP protobuf while ClickHouse is
//! stopped, slowed, or the collector is SIGKILLed, SIGTERMed or its spool fills up. Afterwards
//! `otel_traces` and `llm_calls` must hold exactly the acknowledged spans: every acknowledged span id,
//! no span id twice, and nothing else except spans whose request outcome the client could not know
//! (the connection broke mid-request), which may or may not be there.
//!
//! Bounded: every wait has a deadline and everything listens on 127.0.0.1. The tests run one at a
//! time and alone in the test binary (`promptlog_testkit::gate::exclusive`: no collector stack of
//! another suite runs meanwhile), since they start and kill processes on a shared, small machine.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;
use promptlog_otlp::{embeddings_span, now_ns, resource, traces_request};
use promptlog_testkit::{ChServer, Sql, free_port, log_tail};
use prost::Message;
use serde_json::Value;

pub(crate) const SPANS_PER_REQUEST: u64 = 50;
/// Longest a test waits for the collector to write everything it acknowledged.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest one sender may run (it retries refused requests).
const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// The last lines of a log file, for failure messages.
pub(crate) fn tail(path: &Path) -> String {
    log_tail(path, 30)
}

/// A chDB ClickHouse server the test owns, with its data in `dir/chdb` and its log in `dir/chdb.log`:
/// stopped and restarted on the same port and data directory, where the collector expects it.
pub(crate) fn clickhouse(dir: &Path) -> ChServer {
    ChServer::start_in(&dir.join("chdb"), Some(&dir.join("chdb.log")))
}

/// SQL on `database` of `ch`.
pub(crate) fn sql(ch: &ChServer, database: &str) -> Sql {
    Sql::new(ch.url(), database).with_timeout(Duration::from_secs(30))
}

/// `count()`, `uniqExact(SpanId)` and the set of `SpanId`s of `table`.
pub(crate) async fn span_ids(ch: &ChServer, database: &str, table: &str) -> (u64, u64, HashSet<String>) {
    let sql = sql(ch, database);
    let counts = sql.text(&format!("SELECT count(), uniqExact(SpanId) FROM {table}"), None).await;
    let mut it = counts.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    let (count, uniq) = (it.next().unwrap(), it.next().unwrap());
    let ids = sql.text(&format!("SELECT SpanId FROM {table}"), None).await;
    (count, uniq, ids.lines().map(str::to_owned).collect())
}

/// `count()` of `table`, `None` while ClickHouse does not answer.
pub(crate) async fn count(ch: &ChServer, database: &str, table: &str) -> Option<u64> {
    let sql = Sql::new(ch.url(), database).with_timeout(Duration::from_secs(10));
    sql.try_text(&format!("SELECT count() FROM {table}"), None).await.ok()?.trim().parse().ok()
}

/// The collector binary, restartable on the same ports and data directory.
pub(crate) struct Collector {
    child: Option<Child>,
    http: SocketAddr,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) log: PathBuf,
    data_dir: PathBuf,
}

impl Collector {
    pub(crate) async fn start(ch: &ChServer, database: &str, dir: &Path, extra_env: &[(&str, &str)]) -> Collector {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let data_dir = dir.join("collector");
        let mut env: Vec<(String, String)> = [
            ("PROMPTLOG_CLICKHOUSE_URL", ch.url().to_owned()),
            ("PROMPTLOG_CLICKHOUSE_DATABASE", database.to_owned()),
            ("PROMPTLOG_OTLP_GRPC_ENDPOINT", format!("127.0.0.1:{}", free_port())),
            ("PROMPTLOG_OTLP_HTTP_ENDPOINT", http.to_string()),
            ("PROMPTLOG_DATA_DIR", data_dir.display().to_string()),
            ("PROMPTLOG_BATCH_MAX_DELAY", "200ms".to_owned()),
            ("PROMPTLOG_JOIN_WINDOW", "1s".to_owned()),
            ("PROMPTLOG_LOG", "info".to_owned()),
            // Collectors run side by side: none opens the explorer's fixed default port.
            ("PROMPTLOG_UI_ENABLED", "false".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut c = Collector { child: None, http, env, log: dir.join("collector.log"), data_dir };
        c.restart().await;
        c
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The OTLP/HTTP address.
    pub(crate) fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// Starts the collector (again) and waits until `/health` answers.
    pub(crate) async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_promptlog"))
            .arg("serve")
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start promptlog");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.health().await.is_none() {
            assert!(Instant::now() < deadline, "collector not serving after 60 s:\n{}", tail(&self.log));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn health(&self) -> Option<Value> {
        let resp = reqwest::Client::new()
            .get(format!("{}/health", self.url()))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// SIGKILL: no flush, no spool close.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; returns how long the collector took to exit, and whether it exited with success.
    async fn terminate(&mut self, limit: Duration) -> (Duration, bool) {
        let mut child = self.child.take().expect("collector running");
        let started = Instant::now();
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (started.elapsed(), status.success());
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("collector still running {limit:?} after SIGTERM:\n{}", tail(&self.log));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn dead_letters(&self) -> usize {
        std::fs::read_dir(self.data_dir.join("dead-letter")).map(|d| d.count()).unwrap_or(0)
    }

    /// Waits until the collector has written everything it acknowledged: its spool is empty and the
    /// tables hold at least the acknowledged spans.
    pub(crate) async fn wait_drained(&self, ch: &ChServer, database: &str, ledger: &Ledger) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let want = ledger.acked.len() as u64;
        loop {
            let spool_empty = self.health().await.is_some_and(|h| {
                h["spool"]["records"].as_u64() == Some(0) && h["spool"]["backlog"].as_u64() == Some(0)
            });
            let traces = count(ch, database, "otel_traces").await.unwrap_or(0);
            let calls = count(ch, database, "llm_calls").await.unwrap_or(0);
            if spool_empty && traces >= want && calls >= want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not drained after {DRAIN_TIMEOUT:?}: {traces} spans, {calls} calls of {want}; health {:?}\n{}",
                self.health().await,
                tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the client knows about the spans it sent.
#[derive(Default)]
pub(crate) struct Ledger {
    /// Span ids (hex) of requests answered 200.
    pub(crate) acked: HashSet<String>,
    /// Span ids of requests whose connection broke mid-request: stored or not, the client cannot know.
    pub(crate) unknown: HashSet<String>,
    /// 503 answers (each carried Retry-After).
    pub(crate) refused: u64,
}

/// One request of [`SPANS_PER_REQUEST`] embeddings spans (released to `llm_calls` at once: they do not
/// wait for content) with ids unique to `(tag, request)`.
fn request(tag: u32, request: u32) -> (Vec<u8>, Vec<String>) {
    let start = now_ns();
    let spans: Vec<Span> = (0..SPANS_PER_REQUEST)
        .map(|k| {
            let mut s = embeddings_span(start + k, 3, 12);
            let id = (u64::from(tag) << 40) | (u64::from(request) << 16) | k;
            s.span_id = id.to_be_bytes().to_vec();
            s.trace_id = [tag.to_be_bytes().as_slice(), &request.to_be_bytes(), &[7; 8]].concat();
            s
        })
        .collect();
    let ids = spans.iter().map(|s| const_hex::encode(&s.span_id)).collect();
    (traces_request(resource("fault-test", "test"), spans).encode_to_vec(), ids)
}

/// Sends `requests` requests one after another, `pace` apart, to `url`; retries refused requests
/// (503 + Retry-After) and requests that never reached the collector (connection refused) with the same
/// spans, and records the outcome of each in the ledger.
async fn send(url: String, tag: u32, requests: u32, pace: Duration, ledger: Arc<Mutex<Ledger>>) {
    send_via(reqwest::Client::new(), url, tag, requests, pace, ledger).await;
}

/// [`send`] with `client` (e.g. one that opens a connection per request, for a load balancer).
pub(crate) async fn send_via(
    client: reqwest::Client,
    url: String,
    tag: u32,
    requests: u32,
    pace: Duration,
    ledger: Arc<Mutex<Ledger>>,
) {
    let deadline = Instant::now() + SEND_TIMEOUT;
    for r in 0..requests {
        let (body, ids) = request(tag, r);
        loop {
            assert!(Instant::now() < deadline, "sender still retrying after {SEND_TIMEOUT:?}");
            let sent = client
                .post(format!("{url}/v1/traces"))
                .header("content-type", "application/x-protobuf")
                .body(body.clone())
                .timeout(Duration::from_secs(20))
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status() == 200 => {
                    ledger.lock().unwrap().acked.extend(ids);
                    break;
                }
                Ok(resp) if resp.status() == 503 => {
                    assert!(resp.headers().contains_key("retry-after"), "503 without Retry-After");
                    ledger.lock().unwrap().refused += 1;
                }
                Ok(resp) => panic!("unexpected status {} for request {r}", resp.status()),
                // Never reached the collector (it is restarting): safe to send the same spans again.
                Err(e) if e.is_connect() => {}
                // Broke mid-request: the request may have been stored. Resending would be at-least-once
                // (a possible duplicate by the client's own doing), so this sender moves on instead.
                Err(_) => {
                    ledger.lock().unwrap().unknown.extend(ids);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(pace).await;
    }
}

/// The tables hold exactly the acknowledged spans.
pub(crate) async fn assert_exact(ch: &ChServer, collector: &Collector, database: &str, ledger: &Ledger, what: &str) {
    for table in ["otel_traces", "llm_calls"] {
        let (count, uniq, ids) = span_ids(ch, database, table).await;
        assert_eq!(count, uniq, "{what}: {table} has {} duplicate rows", count - uniq);
        let missing: Vec<_> = ledger.acked.difference(&ids).take(5).collect();
        assert!(missing.is_empty(), "{what}: {table} lost acknowledged spans, e.g. {missing:?}");
        let extra: Vec<_> =
            ids.iter().filter(|id| !ledger.acked.contains(*id) && !ledger.unknown.contains(*id)).collect();
        assert!(extra.is_empty(), "{what}: {table} has spans never sent: {:?}", &extra[..extra.len().min(5)]);
        if ledger.unknown.is_empty() {
            assert_eq!(count, ledger.acked.len() as u64, "{what}: {table}");
        }
        println!(
            "{what}: {table}: {count} rows = {} acknowledged + {} of {} unknown-outcome spans; {} refusals",
            ledger.acked.len(),
            count - ledger.acked.len() as u64,
            ledger.unknown.len(),
            ledger.refused
        );
    }
    assert_eq!(collector.dead_letters(), 0, "{what}: nothing may be dead-lettered");
}

pub(crate) fn database(name: &str) -> String {
    format!("faults_{name}_{}", const_hex::encode(promptlog_otlp::random_bytes::<4>()))
}

/// Runs `fault` while a sender pushes `requests` requests, then checks exactness.
async fn scenario<F, Fut>(name: &str, round: u32, requests: u32, extra_env: &[(&str, &str)], fault: F) -> Value
where
    F: FnOnce(Arc<tokio::sync::Mutex<Option<Collector>>>, Arc<tokio::sync::Mutex<ChServer>>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let db = database(name);
    let ch = clickhouse(dir.path());
    let collector = Collector::start(&ch, &db, dir.path(), extra_env).await;
    let url = collector.url();
    let (ch, collector) = (Arc::new(tokio::sync::Mutex::new(ch)), Arc::new(tokio::sync::Mutex::new(Some(collector))));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let sender = tokio::spawn(send(url, round + 1, requests, Duration::from_millis(40), ledger.clone()));
    fault(collector.clone(), ch.clone()).await;
    sender.await.expect("sender");
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let (ch, collector) = (ch.lock().await, collector.lock().await);
    let collector = collector.as_ref().expect("collector running at the end");
    collector.wait_drained(&ch, &db, &ledger).await;
    let what = format!("{name} round {round}");
    assert_exact(&ch, collector, &db, &ledger, &what).await;
    let health = collector.health().await.unwrap_or_default();
    println!("{what}: health {health}");
    health
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_stopped_mid_stream_then_restarted() {
    let _alone = promptlog_testkit::gate::exclusive().await;
    for round in 0..2 {
        scenario("ch_down", round, 60, &[], |_, ch| async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            ch.lock().await.kill();
            // The sender keeps going: the collector accepts into its spool meanwhile.
            tokio::time::sleep(Duration::from_secs(4)).await;
            ch.lock().await.restart();
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_inserts_and_insert_timeouts() {
    let _alone = promptlog_testkit::gate::exclusive().await;
    // A tiny in-memory queue sends most requests through the on-disk backlog; inserts slower than the
    // insert timeout are retried with the same deduplication token while the first attempt still lands.
    let env = [("PROMPTLOG_QUEUE_CAPACITY", "2"), ("PROMPTLOG_INSERT_TIMEOUT", "1s")];
    for round in 0..2 {
        let health = scenario("slow", round, 60, &env, |_, ch| async move {
            ch.lock().await.set_insert_delay(400).await;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            ch.lock().await.set_insert_delay(1500).await;
            tokio::time::sleep(Duration::from_millis(2500)).await;
            ch.lock().await.set_insert_delay(300).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            ch.lock().await.set_insert_delay(0).await;
        })
        .await;
        assert!(health["spool"]["backlogged"].as_u64() > Some(0), "the on-disk backlog was exercised");
        assert!(health["tables"]["otel_traces"]["retried"].as_u64() > Some(0), "timed-out inserts were retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_bytes_bound_sends_the_excess_through_the_spool() {
    let _alone = promptlog_testkit::gate::exclusive().await;
    // A 1-byte memory queue holds one request at a time (a request bigger than the whole budget takes
    // all of it): while inserts are slow, the others (not waiting for room: `queue_wait` 0) wait in
    // the spool only, and every acknowledged span is still stored exactly once (`scenario` checks).
    let env = [("PROMPTLOG_MAX_QUEUED_BYTES", "1"), ("PROMPTLOG_QUEUE_WAIT", "0s")];
    let health = scenario("queued_bytes", 0, 40, &env, |_, ch| async move {
        ch.lock().await.set_insert_delay(500).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ch.lock().await.set_insert_delay(0).await;
    })
    .await;
    assert!(health["spool"]["backlogged"].as_u64() > Some(0), "the byte bound sent requests to the backlog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_sigkilled_mid_stream_and_restarted() {
    let _alone = promptlog_testkit::gate::exclusive().await;
    for round in 0..2 {
        scenario("sigkill", round, 60, &[], |collector, _| async move {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let mut guard = collector.lock().await;
            let c = guard.as_mut().unwrap();
            c.kill();
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.restart().await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_refuses_with_retry_after_then_drains() {
    let _alone = promptlog_testkit::gate::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let db = database("full");
    let mut ch = clickhouse(dir.path());
    // About 15 requests fit.
    let collector = Collector::start(&ch, &db, dir.path(), &[("PROMPTLOG_SPOOL_MAX_BYTES", "200000")]).await;
    ch.kill();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let sender = tokio::spawn(send(collector.url(), 9, 40, Duration::ZERO, ledger.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while ledger.lock().unwrap().refused == 0 {
        assert!(Instant::now() < deadline, "the spool never filled up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // `/health` shows the outage and the full spool (its gauges lag by up to a quarter second).
    loop {
        let health = collector.health().await.unwrap();
        let spool_bytes = health["spool"]["bytes"].as_u64().unwrap();
        assert!(spool_bytes <= 200_000, "{health}");
        if health["status"] == "degraded" && spool_bytes > 150_000 {
            break;
        }
        assert!(Instant::now() < deadline, "health never showed the outage and the full spool: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ch.restart();
    sender.await.unwrap();
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert_eq!(ledger.acked.len() as u64, 40 * SPANS_PER_REQUEST, "every request accepted in the end");
    collector.wait_drained(&ch, &db, &ledger).await;
    assert_exact(&ch, &collector, &db, &ledger, "spool full").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_clickhouse_is_down_exits_in_time_and_keeps_everything() {
    let _alone = promptlog_testkit::gate::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let db = database("sigterm");
    let mut ch = clickhouse(dir.path());
    ch.kill();
    // Started while ClickHouse is down: degraded, but accepting into the spool.
    let shutdown_timeout = Duration::from_secs(3);
    let mut collector = Collector::start(&ch, &db, dir.path(), &[("PROMPTLOG_SHUTDOWN_TIMEOUT", "3s")]).await;
    assert_eq!(collector.health().await.unwrap()["status"], "degraded");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    send(collector.url(), 11, 20, Duration::ZERO, ledger.clone()).await;
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert_eq!(ledger.acked.len() as u64, 20 * SPANS_PER_REQUEST);
    let (took, success) = collector.terminate(shutdown_timeout * 3).await;
    println!("SIGTERM with ClickHouse down: exited in {took:?}");
    assert!(success, "exit status after SIGTERM:\n{}", tail(&collector.log));
    assert!(took < shutdown_timeout + Duration::from_secs(2), "took {took:?}");

    ch.restart();
    collector.restart().await;
    collector.wait_drained(&ch, &db, &ledger).await;
    assert_exact(&ch, &collector, &db, &ledger, "sigterm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_keys_match_what_clickhouse_computes() {
    use promptlog_ingest::rows::{Keyed, LlmCallRow, LogRow, SpanRow};
    let _alone = promptlog_testkit::gate::exclusive().await;
    let store = crate::support::stack::migrated_store("faults_keys").await;
    let ts = now_ns() as i64;
    let log = |i: i64, body: &str| LogRow {
        timestamp: ts + i,
        trace_id: "t".into(),
        span_id: format!("s{i}"),
        body: body.into(),
        ..LogRow::default()
    };
    let stored = [log(1, "hello"), log(2, "ünïcødé ✓"), log(3, "")];
    store.insert("otel_logs", &stored, "keys-logs").await.unwrap();
    let span =
        |i: i64| SpanRow { timestamp: ts + i, trace_id: "t".into(), span_id: format!("s{i}"), ..SpanRow::default() };
    store.insert("otel_traces", &[span(1)], "keys-spans").await.unwrap();
    let call = LlmCallRow { timestamp: ts, trace_id: "t".into(), span_id: "c".into(), ..LlmCallRow::default() };
    store.insert("llm_calls", std::slice::from_ref(&call), "keys-calls").await.unwrap();

    // The same ids and body under another project's key are another row.
    let other_project = LogRow { project_id: "other".into(), ..log(1, "hello") };
    let probe =
        [log(1, "hello"), log(2, "ünïcødé ✓"), log(3, ""), log(1, "other body"), log(4, "hello"), other_project];
    let found = store.existing_keys("otel_logs", &probe.iter().collect::<Vec<_>>()).await.unwrap();
    let want: HashSet<_> = stored.iter().map(Keyed::key).collect();
    assert_eq!(found, want, "same time, ids and body hash: stored; anything else: not");
    let other_span = SpanRow { project_id: "other".into(), ..span(1) };
    let found = store.existing_keys("otel_traces", &[&span(1), &span(2), &other_span]).await.unwrap();
    assert_eq!(found, HashSet::from([span(1).key()]));
    let other = LlmCallRow { span_id: "d".into(), ..call.clone() };
    let found = store.existing_keys("llm_calls", &[&call, &other]).await.unwrap();
    assert_eq!(found, HashSet::from([call.key()]));
}
