//! PII redaction end to end: the recorded requests of every convention the normalisers know,
//! rewritten so prompts, completions, system instructions, span, log and resource attributes carry an
//! e-mail address, a valid card number, an IBAN and an `sk-…` key (plus a card number failing Luhn),
//! sent to a collector with every detector on. None of the original strings may appear in any
//! column of `otel_traces`, `otel_logs` or `llm_calls`, nor in any file under the collector's data
//! directory; the markers must, and the invalid card number is left alone. The same after the
//! collector is SIGKILLed with everything still in its spool and replays it on restart.
//!
//! Each test holds `promptlog_testkit::gate::shared` while it runs a collector (the in-process one
//! through its `Stack`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use promptlog_ingest::Table;
use promptlog_testkit::{Row, Sql, free_port, gate, shared_clickhouse_url};

use crate::support::redaction::{
    BAD_CARD, EMAIL, Fixture, PLAIN_PROMPT, check_table, content_texts, expected, fixtures, pii_text, scan_dir,
};
use crate::support::stack::Stack;

const TRACES_TABLE: &str = Table::Traces.name();
const LOGS_TABLE: &str = Table::Logs.name();
const LLM_CALLS_TABLE: &str = Table::LlmCalls.name();

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

/// Posts every fixture, in order, to the collector at `base`.
async fn post_all(client: &reqwest::Client, base: &str, fixtures: &[Fixture]) {
    for f in fixtures {
        post(client, base, f).await;
    }
}

/// An in-process collector with a short join window and no TTL, configured further by `redaction`.
async fn stack_with(redaction: impl FnOnce(&mut promptlog::config::Config)) -> Stack {
    Stack::start_with(|c| {
        redaction(c);
        c.pipeline.join_window = Duration::from_secs(1);
        c.clickhouse.retention_days = 0;
    })
    .await
}

/// Waits until every table holds its expected rows.
async fn wait_for_rows(sql: &Sql, want: &[(&str, u64)]) {
    let deadline = Instant::now() + WAIT;
    for &(table, n) in want {
        loop {
            let c = sql.count(table).await;
            if c >= n {
                break;
            }
            assert!(Instant::now() < deadline, "{table}: {c} of {n} rows after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Every check on the stored rows; returns the failures.
async fn check_tables(sql: &Sql, plain_calls: u64) -> Vec<String> {
    let mut bad = Vec::new();
    for table in [TRACES_TABLE, LOGS_TABLE, LLM_CALLS_TABLE] {
        bad.extend(check_table(table, &sql.rows(&format!("SELECT * FROM {table}")).await));
    }
    // The content columns are redacted too (the plain scenario's prompt is in every convention
    // that carries content), and the row says so.
    let query = format!(
        "SELECT Convention, InputText, Redactions FROM {LLM_CALLS_TABLE} WHERE InputText LIKE '%{PLAIN_PROMPT}%'"
    );
    let rows = sql.rows(&query).await;
    if rows.len() as u64 != plain_calls {
        bad.push(format!("{} plain-scenario calls with content, want {plain_calls}", rows.len()));
    }
    for r in &rows {
        let text = r["InputText"].as_str().unwrap_or_default();
        if !text.contains("[REDACTED:email]") || !text.contains(BAD_CARD) {
            bad.push(format!("{}: InputText {text:?}", r["Convention"]));
        }
    }
    let n = |r: &Row| r["Redactions"].as_str().and_then(|s| s.parse().ok()).or(r["Redactions"].as_u64());
    let all = sql.rows(&format!("SELECT Convention, Redactions FROM {LLM_CALLS_TABLE}")).await;
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
    let fixtures = fixtures();
    let (spans, logs, calls, plain) = expected(&fixtures);
    let stack = stack_with(|c| c.redaction.enable_detectors("all").unwrap()).await;
    let client = reqwest::Client::new();
    post_all(&client, &stack.otlp_http_url(), &fixtures).await;
    // A feedback score whose free text carries the same PII.
    let score = serde_json::json!({
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "name": "user_rating", "data_type": "categorical",
        "label": "bad", "source": "end_user", "comment": pii_text(), "author": EMAIL,
        "metadata": {"contact": pii_text()},
    });
    let resp = client.post(format!("{}/v1/scores", stack.otlp_http_url())).json(&score).send().await.unwrap();
    assert!(resp.status().is_success(), "score refused: {}", resp.text().await.unwrap());
    let mut bad = check_files(&stack.config.data_dir, false);
    wait_for_rows(stack.sql(), &[(TRACES_TABLE, spans), (LOGS_TABLE, logs), (LLM_CALLS_TABLE, calls)]).await;
    bad.extend(check_tables(stack.sql(), plain).await);
    let scores = Table::Scores.name();
    wait_for_rows(stack.sql(), &[(scores, 1)]).await;
    bad.extend(check_table(scores, &stack.sql().rows(&format!("SELECT * FROM {scores}")).await));
    let metrics = client.get(format!("{}/metrics", stack.otlp_http_url())).send().await.unwrap().text().await.unwrap();
    for detector in ["email", "credit_card", "iban", "secret"] {
        let line =
            metrics.lines().find(|l| l.starts_with(&format!("promptlog_redactions_total{{detector=\"{detector}\"}}")));
        if line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) == 0 {
            bad.push(format!("/metrics: no redactions counted for {detector}: {line:?}"));
        }
    }
    bad.extend(check_files(&stack.config.data_dir, false));
    assert!(bad.is_empty(), "{} problems:\n{}", bad.len(), bad.join("\n"));
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
            // Collectors run side by side: none opens the explorer's fixed default port.
            ("PROMPTLOG_UI_ENABLED", "false"),
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
    let _shared = gate::shared().await;
    let fixtures = fixtures();
    let (spans, logs, calls, plain) = expected(&fixtures);
    let url = shared_clickhouse_url();
    let database = format!("test_redact_{}", const_hex::encode(promptlog_otlp::random_bytes::<4>()));
    let tmp = tempfile::tempdir().unwrap();
    let (data_dir, log) = (tmp.path().join("collector"), tmp.path().join("collector.log"));
    let http = format!("127.0.0.1:{}", free_port());
    // ClickHouse unreachable: everything accepted stays in the spool.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut collector = spawn_collector(&nowhere, &database, &http, &data_dir, &log);
    wait_healthy(&http, &log).await;
    post_all(&reqwest::Client::new(), &format!("http://{http}"), &fixtures).await;
    collector.kill().unwrap();
    collector.wait().unwrap();
    // The spool holds every request, redacted.
    let mut bad = check_files(&data_dir, true);

    let mut collector = spawn_collector(&url, &database, &http, &data_dir, &log);
    wait_healthy(&http, &log).await;
    let sql = Sql::new(&url, &database);
    wait_for_rows(&sql, &[(TRACES_TABLE, spans), (LOGS_TABLE, logs), (LLM_CALLS_TABLE, calls)]).await;
    bad.extend(check_tables(&sql, plain).await);
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

/// `content_capture: drop` for the default project: no prompt, system instruction or completion of
/// any convention is stored anywhere (which checks the list of content keys against every
/// normaliser), while every call is still there with its model and token usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_drop_removes_the_text_of_every_convention_and_keeps_usage() {
    let fixtures = fixtures();
    let (spans, logs, calls, _) = expected(&fixtures);
    let stack = stack_with(|c| {
        c.redaction.projects.insert("default".into(), "drop".into());
    })
    .await;
    let client = reqwest::Client::new();
    post_all(&client, &stack.otlp_http_url(), &fixtures).await;
    wait_for_rows(stack.sql(), &[(TRACES_TABLE, spans), (LOGS_TABLE, logs), (LLM_CALLS_TABLE, calls)]).await;
    let mut bad = Vec::new();
    // A prefix of each text: the stored form may be cut or escaped differently after it.
    let texts: Vec<String> = content_texts().iter().map(|t| t.chars().take(24).collect()).collect();
    for table in [TRACES_TABLE, LOGS_TABLE, LLM_CALLS_TABLE] {
        for row in stack.sql().rows(&format!("SELECT * FROM {table}")).await {
            let text = serde_json::to_string(&row).unwrap();
            for t in texts.iter().filter(|t| text.contains(t.as_str())) {
                bad.push(format!("{table}: {t:?} kept in {}", &text[..text.len().min(400)]));
            }
        }
    }
    let sql = format!(
        "SELECT count() AS n, countIf(InputTokens > 0) AS with_usage, countIf(RequestModel != '') AS with_model \
         FROM {LLM_CALLS_TABLE}"
    );
    let row = &stack.sql().rows(&sql).await[0];
    let n = |c: &str| row[c].as_str().and_then(|s| s.parse::<u64>().ok()).or(row[c].as_u64()).unwrap_or(0);
    if n("with_model") != calls || n("with_usage") * 2 < calls {
        bad.push(format!("metadata lost: {row:?} of {calls} calls"));
    }
    bad.truncate(30);
    assert!(bad.is_empty(), "{} problems:\n{}", bad.len(), bad.join("\n"));
}
