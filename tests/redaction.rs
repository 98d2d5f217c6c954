//! PII redaction end to end: the recorded requests of every convention the normalisers know,
//! rewritten so prompts, completions, system instructions, span, log and resource attributes carry an
//! e-mail address, a valid card number, an IBAN and an `sk-…` key (plus a card number failing Luhn),
//! sent to a collector with every detector on. None of the original strings may appear in any
//! column of `otel_traces`, `otel_logs` or `llm_calls`, nor in any file under the collector's data
//! directory; the markers must, and the invalid card number is left alone. The same after the
//! collector is SIGKILLed with everything still in its spool and replays it on restart.

mod common;
mod redaction_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Stack;
use promptlog_ingest::Table;
use redaction_support::{BAD_CARD, Fixture, PLAIN_PROMPT, check_table, expected, fixtures, scan_dir};
use serde_json::{Map, Value};

const TRACES_TABLE: &str = Table::Traces.name();
const LOGS_TABLE: &str = Table::Logs.name();
const LLM_CALLS_TABLE: &str = Table::LlmCalls.name();

/// One at a time: the SIGKILL test runs processes on a small shared machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(60);

async fn post(client: &reqwest::Client, base: &str, f: &Fixture) {
    let resp = client
        .post(format!("{base}{}", f.path()))
        .header("content-type", "application/x-protobuf")
        .body(f.body.clone())
        .send()
        .await
        .expect("collector reachable");
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    assert!(status.is_success(), "{}: {status} {}", f.name, String::from_utf8_lossy(&body));
}

/// Runs `sql` against `database`, rows as JSON objects.
async fn query(url: &str, database: &str, sql: &str) -> Vec<Map<String, Value>> {
    let resp = reqwest::Client::new()
        .post(url)
        .query(&[("database", database), ("default_format", "JSONEachRow")])
        .body(sql.to_owned())
        .send()
        .await
        .expect("ClickHouse reachable");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{sql}: {status} {text}");
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn count(url: &str, database: &str, table: &str) -> u64 {
    let rows = query(url, database, &format!("SELECT count() AS n FROM {table}")).await;
    rows.first().and_then(|r| r["n"].as_str().and_then(|s| s.parse().ok()).or(r["n"].as_u64())).unwrap_or(0)
}

/// Waits until every table holds its expected rows.
async fn wait_for_rows(url: &str, database: &str, want: [(&str, u64); 3]) {
    let deadline = Instant::now() + WAIT;
    for (table, n) in want {
        loop {
            let c = count(url, database, table).await;
            if c >= n {
                break;
            }
            assert!(Instant::now() < deadline, "{table}: {c} of {n} rows after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Every check on the stored rows; returns the failures.
async fn check_tables(url: &str, database: &str, plain_calls: u64) -> Vec<String> {
    let mut bad = Vec::new();
    for table in [TRACES_TABLE, LOGS_TABLE, LLM_CALLS_TABLE] {
        bad.extend(check_table(table, &query(url, database, &format!("SELECT * FROM {table}")).await));
    }
    // The content columns are redacted too (the plain scenario's prompt is in every convention
    // that carries content), and the row says so.
    let sql = format!(
        "SELECT Convention, InputText, Redactions FROM {LLM_CALLS_TABLE} WHERE InputText LIKE '%{PLAIN_PROMPT}%'"
    );
    let rows = query(url, database, &sql).await;
    if rows.len() as u64 != plain_calls {
        bad.push(format!("{} plain-scenario calls with content, want {plain_calls}", rows.len()));
    }
    for r in &rows {
        let text = r["InputText"].as_str().unwrap_or_default();
        if !text.contains("[REDACTED:email]") || !text.contains(BAD_CARD) {
            bad.push(format!("{}: InputText {text:?}", r["Convention"]));
        }
    }
    let n = |r: &Map<String, Value>| r["Redactions"].as_str().and_then(|s| s.parse().ok()).or(r["Redactions"].as_u64());
    let all = query(url, database, &format!("SELECT Convention, Redactions FROM {LLM_CALLS_TABLE}")).await;
    // Each span carries the PII attribute (4 findings) and its resource the e-mail address (1).
    for r in all.iter().filter(|r| n(r).unwrap_or(0) < 5) {
        bad.push(format!("{}: Redactions {:?}, want at least 5", r["Convention"], r["Redactions"]));
    }
    // Calls whose content came from log records also count those records' redactions.
    for r in rows
        .iter()
        .filter(|r| r["Convention"].as_str().is_some_and(|c| c.ends_with("_events") || c.ends_with("_event")))
    {
        if n(r).unwrap_or(0) < 9 {
            bad.push(format!(
                "{}: Redactions {:?} do not include the joined log records'",
                r["Convention"], r["Redactions"]
            ));
        }
    }
    bad
}

fn check_files(dir: &Path, expect_markers: bool) -> Vec<String> {
    let (mut bad, markers) = scan_dir(dir);
    if expect_markers && !markers {
        bad.push(format!("no redaction marker in any file under {} (is the spool there?)", dir.display()));
    }
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_of_every_convention_reaches_no_table_and_no_file() {
    let _serial = SERIAL.lock().await;
    let fixtures = fixtures();
    let (spans, logs, calls, plain) = expected(&fixtures);
    let mut stack = Stack::start_with(|c| {
        c.redaction.enable_detectors("all").unwrap();
        c.pipeline.join_window = Duration::from_secs(1);
        c.clickhouse.retention_days = 0;
    })
    .await;
    let client = reqwest::Client::new();
    for f in &fixtures {
        post(&client, &stack.otlp_http_url(), f).await;
    }
    let mut bad = check_files(&stack.config.data_dir, false);
    let url = stack.clickhouse_url.clone();
    wait_for_rows(&url, stack.database(), [(TRACES_TABLE, spans), (LOGS_TABLE, logs), (LLM_CALLS_TABLE, calls)]).await;
    bad.extend(check_tables(&url, stack.database(), plain).await);
    let metrics = client.get(format!("{}/metrics", stack.otlp_http_url())).send().await.unwrap().text().await.unwrap();
    for detector in ["email", "credit_card", "iban", "secret"] {
        let line =
            metrics.lines().find(|l| l.starts_with(&format!("promptlog_redactions_total{{detector=\"{detector}\"}}")));
        if line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) == 0 {
            bad.push(format!("/metrics: no redactions counted for {detector}: {line:?}"));
        }
    }
    stack.stop().await;
    bad.extend(check_files(&stack.config.data_dir, false));
    assert!(bad.is_empty(), "{} problems:\n{}", bad.len(), bad.join("\n"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The collector binary with redaction on, pointed at `clickhouse`.
fn spawn_collector(clickhouse: &str, database: &str, http: &str, data_dir: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_promptlog"))
        .arg("serve")
        .env_clear()
        .envs([
            ("PROMPTLOG_CLICKHOUSE_URL", clickhouse),
            ("PROMPTLOG_CLICKHOUSE_DATABASE", database),
            ("PROMPTLOG_OTLP_GRPC_ENDPOINT", &format!("127.0.0.1:{}", free_port())),
            ("PROMPTLOG_OTLP_HTTP_ENDPOINT", http),
            ("PROMPTLOG_DATA_DIR", &data_dir.display().to_string()),
            ("PROMPTLOG_BATCH_MAX_DELAY", "200ms"),
            ("PROMPTLOG_JOIN_WINDOW", "1s"),
            ("PROMPTLOG_RETENTION_DAYS", "0"),
            ("PROMPTLOG_REDACT", "all"),
            ("PROMPTLOG_LOG", "info"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start promptlog")
}

async fn wait_healthy(http: &str, log: &Path) {
    let deadline = Instant::now() + WAIT;
    while reqwest::get(format!("http://{http}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "collector not up:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_stays_out_after_sigkill_and_replay() {
    let _serial = SERIAL.lock().await;
    let fixtures = fixtures();
    let (spans, logs, calls, plain) = expected(&fixtures);
    let url = common::shared_clickhouse_url();
    let database = format!("test_redact_{}", const_hex::encode(promptlog_otlp::random_bytes::<4>()));
    let tmp = tempfile::tempdir().unwrap();
    let (data_dir, log) = (tmp.path().join("collector"), tmp.path().join("collector.log"));
    let http = format!("127.0.0.1:{}", free_port());
    // ClickHouse unreachable: everything accepted stays in the spool.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut collector = spawn_collector(&nowhere, &database, &http, &data_dir, &log);
    wait_healthy(&http, &log).await;
    let client = reqwest::Client::new();
    for f in &fixtures {
        post(&client, &format!("http://{http}"), f).await;
    }
    collector.kill().unwrap();
    collector.wait().unwrap();
    // The spool holds every request, redacted.
    let mut bad = check_files(&data_dir, true);

    let mut collector = spawn_collector(&url, &database, &http, &data_dir, &log);
    wait_healthy(&http, &log).await;
    wait_for_rows(&url, &database, [(TRACES_TABLE, spans), (LOGS_TABLE, logs), (LLM_CALLS_TABLE, calls)]).await;
    bad.extend(check_tables(&url, &database, plain).await);
    bad.extend(check_files(&data_dir, false));
    collector.kill().unwrap();
    collector.wait().unwrap();
    assert!(
        bad.is_empty(),
        "{} problems:\n{}\n{}",
        bad.len(),
        bad.join("\n"),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
