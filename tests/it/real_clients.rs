//! Live real-client suite: every instrumentation of the fixtures matrix (`tests/fixtures/otlp/README.md`)
//! is run for real — its pinned venv, the real `openai` client, `tests/clients/fake_openai.py` as the
//! model — exporting over OTLP/gRPC and OTLP/HTTP into an in-process collector backed by ClickHouse.
//! The `llm_calls` rows are read back and validated by the same capability table and checker as the
//! recorded fixtures (`support::conventions`, shared with the `conventions` suite), and the traces' non-LLM
//! spans (app spans, OpenLIT's httpx `POST`, the request-only span of a Logfire stream, LangChain's chain and
//! prompt spans) must be in
//! `otel_traces` but not in `llm_calls`.
//!
//! Needs `.venvs/<venv>` and, for the Node client (Vercel AI SDK), `node` on PATH plus
//! `tests/clients/node/node_modules` (`scripts/setup.sh`, or `tests/clients/setup.sh node`); a missing one
//! fails the test. Every mismatch of every run is collected and reported at once. Knobs:
//! `PROMPTLOG_REAL_CLIENTS_JOBS` (clients run at once, default 2), `PROMPTLOG_REAL_CLIENTS_ONLY` (comma
//! list of substrings of `<folder>/<protocol>`).

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use promptlog_testkit::{LLM_CALL_COLUMNS, Row, llm_call, python, repo_root, try_cell};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::support::conventions::{
    Carries, TABLE, check, check_duplicates, check_rollups, split_rollups, try_scenario_of,
};
use crate::support::stack::Stack;

pub(crate) const JOIN_WINDOW: Duration = Duration::from_secs(3);
/// Longest one client may run (it is killed after that).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest the rows of one run may take to appear after its client exits.
const ROWS_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_JOBS: usize = 2;
pub(crate) const PROTOCOLS: [&str; 2] = ["grpc", "http"];

/// (fixture folder, venv, script, `--mode`): the matrix of `tests/clients/record_all.sh`. Venv [`NODE`] runs
/// `node tests/clients/node/<script>` instead of a Python venv.
const MATRIX: &[(&str, &str, &str, Option<&str>)] = &[
    ("otel-latest-span_only", "otel-latest", "otel_latest.py", Some("span_only")),
    ("otel-latest-event_only", "otel-latest", "otel_latest.py", Some("event_only")),
    ("otel-latest-span_and_event", "otel-latest", "otel_latest.py", Some("span_and_event")),
    ("otel-legacy-content", "otel-legacy", "otel_legacy.py", Some("content")),
    ("otel-legacy-no_content", "otel-legacy", "otel_legacy.py", Some("no_content")),
    ("openinference-default", "openinference", "openinference_client.py", Some("default")),
    ("openinference-genai_semconv", "openinference", "openinference_client.py", Some("genai_semconv")),
    ("openllmetry-attributes", "openllmetry", "openllmetry_client.py", Some("attributes")),
    ("openllmetry-events", "openllmetry", "openllmetry_client.py", Some("events")),
    ("openlit", "openlit", "openlit_client.py", None),
    ("logfire-v2", "logfire", "logfire_client.py", Some("v2")),
    ("logfire-v1", "logfire", "logfire_client.py", Some("v1")),
    ("vercel-ai-v6", NODE, "vercel_ai.mjs", None),
    ("langchain-openinference", "langchain", "langchain_client.py", Some("default")),
    ("langchain-openinference-double", "langchain", "langchain_client.py", Some("double")),
    ("otel-js-openai", NODE, "otel_openai.mjs", None),
];

/// The pseudo-venv of the Node client (`tests/clients/node`, deps installed by `tests/clients/setup.sh node`).
const NODE: &str = "node";

/// One client run: a matrix cell over one protocol.
struct Run {
    folder: &'static str,
    venv: &'static str,
    script: &'static str,
    mode: Option<&'static str>,
    protocol: &'static str,
    convention: &'static str,
    carries: Carries,
}

impl Run {
    fn label(&self) -> String {
        format!("{}/{}", self.folder, self.protocol)
    }

    /// Unique per run, so its rows can be told apart.
    fn service(&self) -> String {
        format!("rc-{}-{}", self.folder, self.protocol)
    }

    /// 5 chat calls, plus the embeddings call where the instrumentation makes a span for it; twice that
    /// where every call is wrapped in a rollup span (Vercel AI SDK).
    fn expected_rows(&self) -> u64 {
        let calls = 5 + u64::from(self.carries.embeddings_span);
        let rollups = if self.carries.rollup_spans { calls } else { 0 };
        let copies = if self.carries.duplicate_copies { 5 } else { 0 };
        calls + rollups + copies
    }

    /// The interpreter and the script it runs.
    fn command(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        let clients = repo_root().join("tests/clients");
        if self.venv == NODE {
            (std::path::PathBuf::from("node"), clients.join("node").join(self.script))
        } else {
            (repo_root().join(".venvs").join(self.venv).join("bin/python"), clients.join(self.script))
        }
    }

    /// What must exist before the client can run (its venv's python, or the Node client's installed deps).
    fn prerequisite(&self) -> std::path::PathBuf {
        if self.venv == NODE {
            repo_root().join("tests/clients/node/node_modules/.promptlog-stamp")
        } else {
            self.command().0
        }
    }
}

/// Every run, in matrix order; checks the matrix against the capability table and the fixture folders.
fn runs() -> Vec<Run> {
    let table: HashMap<&str, (&str, Carries)> = TABLE.iter().map(|(f, c, k)| (*f, (*c, *k))).collect();
    let matrix: BTreeSet<&str> = MATRIX.iter().map(|m| m.0).collect();
    let tabled: BTreeSet<&str> = table.keys().copied().collect();
    assert_eq!(matrix, tabled, "MATRIX and support::conventions::TABLE list different folders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo_root().join("tests/fixtures/otlp"))
        .unwrap()
        .filter_map(|e| e.ok().filter(|e| e.path().is_dir()).and_then(|e| e.file_name().into_string().ok()))
        // The other providers' folders are the `real_providers` suite's.
        .filter(|f| !crate::real_providers::is_provider_folder(f))
        .collect();
    assert_eq!(
        matrix.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
        on_disk,
        "MATRIX and tests/fixtures/otlp/ list different folders"
    );
    let only: Vec<String> = std::env::var("PROMPTLOG_REAL_CLIENTS_ONLY")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let mut runs = Vec::new();
    for &(folder, venv, script, mode) in MATRIX {
        for protocol in PROTOCOLS {
            let (convention, carries) = table[folder];
            let run = Run { folder, venv, script, mode, protocol, convention, carries };
            if only.is_empty() || only.iter().any(|o| run.label().contains(o.as_str())) {
                runs.push(run);
            }
        }
    }
    assert!(!runs.is_empty(), "PROMPTLOG_REAL_CLIENTS_ONLY matches no run");
    runs
}

/// The fake OpenAI server of this test binary (started on first use; its `--parent-pid` watchdog and
/// stdin EOF stop it when the binary exits).
fn fake_openai_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    fake_server_url(&URL, "fake_openai.py")
}

/// The fake server `tests/clients/<script>` of this test binary, started on first use (`cell` per server).
pub(crate) fn fake_server_url(cell: &'static OnceLock<String>, script: &str) -> String {
    fake_server_url_with(cell, script, &[])
}

/// [`fake_server_url`] with more arguments for the server (`--scenarios FILE`, say).
pub(crate) fn fake_server_url_with(cell: &'static OnceLock<String>, script: &str, extra: &[&str]) -> String {
    cell.get_or_init(|| {
        let mut child = std::process::Command::new(python())
            .arg(repo_root().join("tests/clients").join(script))
            .args(["--port", "0", "--parent-pid", &std::process::id().to_string()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start tests/clients/{script}: {e}"));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("read the fake server's READY line");
        let url = line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("{script} said {line:?}")).to_owned();
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        // Lives (stdin held open) until the binary exits.
        std::mem::forget(child);
        url
    })
    .clone()
}

/// Writes straight to stderr (not captured by the test harness): progress and timings always show.
pub(crate) fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// What one client process did.
pub(crate) struct ClientOutcome {
    pub(crate) elapsed: Duration,
    pub(crate) ended: Instant,
    /// `RESULT` lines with `"ok": true`, and all of them.
    pub(crate) ok_calls: usize,
    pub(crate) calls: usize,
    /// Why the run failed, if it did (exit status, timeout), with the end of its output.
    pub(crate) failure: Option<String>,
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n    ")
}

async fn run_client(run: &Run, stack: &Stack, base_url: &str, want_calls: usize) -> ClientOutcome {
    let endpoint = if run.protocol == "grpc" { stack.otlp_grpc_url() } else { stack.otlp_http_url() };
    let (program, script) = run.command();
    let mut args: Vec<String> = vec![script.display().to_string()];
    args.extend(
        ["--otlp-endpoint", &endpoint, "--protocol", run.protocol, "--openai-base-url", base_url].map(String::from),
    );
    args.extend(["--scenario".to_owned(), "all".to_owned(), "--service-name".to_owned(), run.service()]);
    if let Some(mode) = run.mode {
        args.extend(["--mode".to_owned(), mode.to_owned()]);
    }
    run_process(&program, &args, want_calls).await
}

/// Runs one client process (`program args…`, from the repository root, stdin closed) for at most
/// [`CLIENT_TIMEOUT`]; it must exit 0 after printing `want_calls` `RESULT` lines.
pub(crate) async fn run_process(program: &std::path::Path, args: &[String], want_calls: usize) -> ClientOutcome {
    let start = Instant::now();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    // The clients configure their SDKs themselves; nothing from the caller's environment may redirect them.
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str()
            && [
                "OTEL_",
                "LOGFIRE_",
                "TRACELOOP_",
                "OPENAI_",
                "OPENINFERENCE_",
                "OPENLIT_",
                "NODE_OPTIONS",
                "ANTHROPIC_",
                "GOOGLE_",
                "GEMINI_",
            ]
            .iter()
            .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(repo_root()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let failed = |why: String| ClientOutcome {
        elapsed: start.elapsed(),
        ended: Instant::now(),
        ok_calls: 0,
        calls: 0,
        failure: Some(why),
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start {}: {e}", program.display())),
    };
    let read = |mut pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf).await;
            buf
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let status = match tokio::time::timeout(CLIENT_TIMEOUT, child.wait()).await {
        Ok(status) => Some(status),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let elapsed = start.elapsed();
    let ended = Instant::now();
    let grab = |h: tokio::task::JoinHandle<Vec<u8>>| async move {
        tokio::time::timeout(Duration::from_secs(5), h).await.ok().and_then(Result::ok).unwrap_or_default()
    };
    let (out, err) = (grab(stdout).await, grab(stderr).await);
    let results: Vec<Value> = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ok_calls = results.iter().filter(|r| r["ok"] == Value::Bool(true)).count();
    let failure = match status {
        None => Some(format!("client timed out after {} s and was killed", CLIENT_TIMEOUT.as_secs())),
        Some(Err(e)) => Some(format!("waiting for the client failed: {e}")),
        Some(Ok(s)) if !s.success() => Some(format!("client exited with {s}")),
        Some(Ok(_)) if results.len() != want_calls => {
            Some(format!("client exited 0 but reported {} calls, want {want_calls}", results.len()))
        }
        Some(Ok(_)) => None,
    }
    .map(|why| {
        let bad: Vec<String> = results.iter().filter(|r| r["ok"] != Value::Bool(true)).map(|r| r.to_string()).collect();
        format!("{why}; calls not ok: {bad:?}\n    stdout: {}\n    stderr: {}", tail(&out, 10), tail(&err, 25))
    });
    ClientOutcome { elapsed, ended, ok_calls, calls: results.len(), failure }
}

pub(crate) fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

async fn count_rows(stack: &Stack, service: &str) -> u64 {
    let rows =
        stack.query_json(&format!("SELECT count() AS n FROM llm_calls WHERE ServiceName = {}", sql_str(service))).await;
    rows.first().and_then(|r| try_cell(r, "n").ok()).unwrap_or(0)
}

/// Waits until `llm_calls` holds `want` rows for the run's service; returns the count and when it got there.
pub(crate) async fn wait_rows(stack: &Stack, service: &str, want: u64, since: Instant) -> (u64, Duration) {
    let deadline = since + ROWS_TIMEOUT;
    loop {
        let n = count_rows(stack, service).await;
        if n >= want || Instant::now() > deadline {
            return (n, since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What kind of non-LLM span a span name is, if it is one these clients make.
fn non_llm_kind(name: &str, sc: &Value) -> Option<&'static str> {
    let scenario_names = || sc["run_order"].as_array().unwrap().iter().map(|n| n.as_str().unwrap());
    if name == "scenario {scenario}"
        || scenario_names().any(|n| name == format!("scenario {n}") || name == format!("scenario_{n}.workflow"))
    {
        Some("app")
    } else if name == "POST" {
        Some("httpx")
    } else if name == "RunnableSequence" || name == "ChatPromptTemplate" {
        // OpenInference's LangChain CHAIN (the LCEL chain) and PROMPT spans: glue, not calls.
        Some("langchain")
    } else {
        None
    }
}

/// Every check of one run; returns its mismatches, each prefixed with the run's label.
async fn check_run(stack: &Stack, run: &Run, client: &ClientOutcome, sc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    if let Some(why) = &client.failure {
        bad.push(format!("client: {why}"));
    }
    let service = sql_str(&run.service());
    let json = stack
        .query_json(&format!(
            "SELECT {LLM_CALL_COLUMNS} FROM llm_calls WHERE ServiceName = {service} ORDER BY Timestamp \
             FORMAT JSONEachRow"
        ))
        .await;
    let mut rows = Vec::new();
    for (i, j) in json.into_iter().enumerate() {
        match llm_call(j) {
            Ok(r) => rows.push(r),
            Err(e) => bad.push(format!("llm_calls row {i}: {e}")),
        }
    }
    if rows.len() as u64 != run.expected_rows() {
        bad.push(format!("{} llm_calls rows, want {}", rows.len(), run.expected_rows()));
    }
    // Rollup rows (outer spans repeating their calls' usage) are checked apart from the calls.
    let (rows, rollups, duplicates) = split_rollups(rows);
    bad.extend(check_rollups(&rollups, &rows, run.carries, sc));
    bad.extend(check_duplicates(&duplicates, &rows, run.carries, sc));

    // The same checks as the conventions suite, on the stored rows.
    let mut seen = Vec::new();
    for row in &rows {
        let Some(name) = try_scenario_of(row, sc) else {
            bad.push(format!(
                "row of no scenario: span {:?} {} model {:?} response id {:?} params {:?}",
                row.span_name, row.span_id, row.request_model, row.response_id, row.request_params
            ));
            continue;
        };
        seen.push(name);
        if name != "embed" && row.convention != run.convention {
            bad.push(format!("{name}: convention {}, want {}", row.convention, run.convention));
        }
        bad.extend(check(row, name, run.carries, sc));
    }
    seen.sort();
    let mut want = vec!["error", "plain", "stream", "tool", "tool_result"];
    if run.carries.embeddings_span {
        want.push("embed");
    }
    want.sort();
    if seen != want {
        bad.push(format!("scenarios {seen:?}, want {want:?}"));
    }

    // Non-LLM spans: stored as spans, never as calls; every call is a stored span under an app span.
    let spans = stack
        .query_json(&format!(
            "SELECT TraceId, SpanId, ParentSpanId, SpanName, ScopeName FROM otel_traces WHERE ServiceName = {service}"
        ))
        .await;
    let s = |m: &Row, k: &str| try_cell::<String>(m, k).unwrap_or_default();
    let calls: BTreeSet<(String, String)> =
        rows.iter().chain(&rollups).chain(&duplicates).map(|r| (r.trace_id.clone(), r.span_id.clone())).collect();
    let stored: BTreeSet<(String, String)> = spans.iter().map(|m| (s(m, "TraceId"), s(m, "SpanId"))).collect();
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    let mut app_spans = BTreeSet::new();
    let mut chain_spans = BTreeSet::new();
    let logfire = run.folder.starts_with("logfire");
    let mut logfire_request_traces = Vec::new();
    for m in &spans {
        let (name, id) = (s(m, "SpanName"), (s(m, "TraceId"), s(m, "SpanId")));
        match (non_llm_kind(&name, sc), calls.contains(&id)) {
            (Some(kind), true) => bad.push(format!("non-LLM {kind} span {name:?} is an llm_calls row")),
            (Some(kind), false) => {
                *kinds.entry(kind).or_default() += 1;
                match kind {
                    "app" => app_spans.insert(id),
                    "langchain" => chain_spans.insert(id),
                    _ => false,
                };
            }
            (None, true) => {}
            // A Logfire stream makes two spans: the request-only CLIENT span, which ends before the
            // stream does, and the `streaming response …` log-span with the response and usage; the
            // normaliser keeps the latter as the call (src/normalize/logfire.rs, `is_placeholder`).
            (None, false) if logfire && name.starts_with("Chat Completion with ") => {
                *kinds.entry("logfire_stream_request").or_default() += 1;
                logfire_request_traces.push(id.0);
            }
            (None, false) => bad.push(format!(
                "span {name:?} (scope {:?}) is neither an llm_calls row nor a known non-LLM span",
                s(m, "ScopeName")
            )),
        }
    }
    let stream_trace = rows.iter().find(|r| try_scenario_of(r, sc) == Some("stream")).map(|r| r.trace_id.clone());
    if logfire_request_traces.iter().any(|t| Some(t) != stream_trace.as_ref()) {
        bad.push(format!(
            "Logfire request-only spans kept out of llm_calls outside the stream's trace: {logfire_request_traces:?}"
        ));
    }
    let want_kinds = [
        ("app", 6),
        ("httpx", if run.folder == "openlit" { 6 } else { 0 }),
        ("logfire_stream_request", usize::from(logfire)),
        // A chain and a prompt span per chat call.
        ("langchain", if run.folder.starts_with("langchain") { 10 } else { 0 }),
    ];
    for (kind, n) in want_kinds {
        let got = kinds.get(kind).copied().unwrap_or(0);
        if got != n {
            bad.push(format!("otel_traces holds {got} non-LLM {kind} spans, want {n}"));
        }
    }
    for row in rows.iter().chain(&rollups) {
        let name = try_scenario_of(row, sc).unwrap_or("?");
        if !stored.contains(&(row.trace_id.clone(), row.span_id.clone())) {
            bad.push(format!("{name}: llm_calls row of span {} is not in otel_traces", row.span_id));
        }
        // A call wrapped in a rollup span hangs under the app span through it (checked by check_rollups).
        let wrapped = rollups.iter().any(|r| r.trace_id == row.trace_id && r.span_id == row.parent_span_id);
        let parent = (row.trace_id.clone(), row.parent_span_id.clone());
        // A LangChain LLM span hangs under its chain span (whose parent is the app span).
        if !wrapped && !app_spans.contains(&parent) && !chain_spans.contains(&parent) {
            bad.push(format!("{name}: parent span {:?} is not the scenario's app span", row.parent_span_id));
        }
        if row.service_name != run.service() {
            bad.push(format!("{name}: ServiceName {:?}", row.service_name));
        }
    }
    bad.into_iter().map(|b| format!("{}: {b}", run.label())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_client_lands_exactly_over_grpc_and_http() {
    let started = Instant::now();
    let sc: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("tests/clients/scenarios.json")).unwrap())
            .unwrap();
    let runs = runs();
    let missing: BTreeSet<String> =
        runs.iter().filter(|r| !r.prerequisite().exists()).map(|r| r.prerequisite().display().to_string()).collect();
    assert!(
        missing.is_empty(),
        "missing client environments {missing:?}: run scripts/setup.sh (builds every .venvs/<name> and \
         tests/clients/node/node_modules via tests/clients/setup.sh)"
    );
    let jobs = std::env::var("PROMPTLOG_REAL_CLIENTS_JOBS").ok().and_then(|j| j.parse().ok()).unwrap_or(DEFAULT_JOBS);
    let base_url = fake_openai_url();
    let stack = Stack::start_with(|cfg| cfg.pipeline.join_window = JOIN_WINDOW).await;
    say(&format!(
        "real_clients: {} runs, {jobs} at a time; fake OpenAI {base_url}; collector grpc {} http {}; setup {:.1} s",
        runs.len(),
        stack.otlp_grpc_url(),
        stack.otlp_http_url(),
        started.elapsed().as_secs_f64()
    ));

    // Clients: at most `jobs` at once; each run then waits for its rows without holding a slot.
    let slots = Semaphore::new(jobs.max(1));
    let want_calls = sc["run_order"].as_array().unwrap().len();
    let outcomes = futures::future::join_all(runs.iter().map(|run| {
        let (stack, slots, base_url) = (&stack, &slots, &base_url);
        async move {
            let client = {
                let _slot = slots.acquire().await.unwrap();
                run_client(run, stack, base_url, want_calls).await
            };
            let (n, after) = wait_rows(stack, &run.service(), run.expected_rows(), client.ended).await;
            say(&format!(
                "real_clients: {:<36} client {:>5.1} s {} ({}/{} calls ok); rows {n}/{} {:.1} s after exit",
                run.label(),
                client.elapsed.as_secs_f64(),
                if client.failure.is_some() { "FAILED" } else { "exit 0" },
                client.ok_calls,
                client.calls,
                run.expected_rows(),
                after.as_secs_f64()
            ));
            client
        }
    }))
    .await;

    // Anything beyond the expected rows (a non-LLM span turned into a call, a duplicate) would be released
    // within the join window of the last export: let that pass before reading.
    let last_exit = outcomes.iter().map(|o| o.ended).max().unwrap();
    tokio::time::sleep_until((last_exit + JOIN_WINDOW + Duration::from_secs(2)).into()).await;

    let mut failures = Vec::new();
    for (run, client) in runs.iter().zip(&outcomes) {
        failures.extend(check_run(&stack, run, client, &sc).await);
    }
    let failed_runs: BTreeSet<String> = runs
        .iter()
        .filter(|r| failures.iter().any(|f| f.starts_with(&format!("{}: ", r.label()))))
        .map(Run::label)
        .collect();
    say(&format!(
        "real_clients: {} runs, {} with mismatches, total {:.1} s",
        runs.len(),
        failed_runs.len(),
        started.elapsed().as_secs_f64()
    ));
    assert!(
        failures.is_empty(),
        "{} mismatches in {} of {} runs ({failed_runs:?}):\n{}",
        failures.len(),
        failed_runs.len(),
        runs.len(),
        failures.join("\n")
    );
}
