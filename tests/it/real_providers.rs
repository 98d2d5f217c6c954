//! Real-client suites of the other providers: the `anthropic` SDK 2.x (which traces itself) alone and
//! with each Anthropic instrumentation, and `google-genai` with the official instrumentation — pinned
//! venvs (`tests/clients/setup.sh`), the real SDKs against the stdlib fake servers
//! (`tests/clients/fake_anthropic.py`, `fake_gemini.py`), scenario files as the single source of truth
//! (`scenarios-anthropic.json`, `scenarios-google.json`: requests, native responses, the exact
//! normalised values under `expect`).
//!
//! Two tests on one capability table ([`FOLDERS`], checked by `support::expect`):
//! * the recorded fixtures (`tests/fixtures/otlp/anthropic-*`, `google-genai-*`) replayed in process
//!   through the normaliser and the join;
//! * every client run live over OTLP/gRPC and OTLP/HTTP into an in-process collector backed by
//!   ClickHouse, the `llm_calls` rows read back; every raw span (both copies of a doubly recorded call,
//!   the app spans) must be in `otel_traces`, the app spans never in `llm_calls`.
//!
//! Where two instrumentations record one call (the SDK's own span and the instrumentation's), the
//! expectation is exactly one counted row with the values of both (the join's duplicate-call merge).
//! Knob: `PROMPTLOG_REAL_PROVIDERS_ONLY` (comma list of substrings of `<folder>/<protocol>`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use promptlog_testkit::{LLM_CALL_COLUMNS, llm_call, repo_root, try_cell};
use serde_json::Value;

use crate::conventions::calls_of;
use crate::real_clients::{JOIN_WINDOW, PROTOCOLS, fake_server_url, run_process, say, sql_str, wait_rows};
use crate::support::expect::{Capability, check_run, scenario_of};
use crate::support::stack::Stack;

/// One provider: its scenario file, fake server and client script.
struct Provider {
    scenarios: &'static str,
    fake: &'static str,
    script: &'static str,
}

const ANTHROPIC: Provider =
    Provider { scenarios: "scenarios-anthropic.json", fake: "fake_anthropic.py", script: "anthropic_client.py" };

const GOOGLE: Provider =
    Provider { scenarios: "scenarios-google.json", fake: "fake_gemini.py", script: "google_genai_client.py" };

/// One fixture folder = one client run: its venv, `--mode`, provider, and the instrumentations that
/// record each call (two where the SDK traces itself under an instrumentation).
struct Folder {
    folder: &'static str,
    venv: &'static str,
    mode: &'static str,
    provider: &'static Provider,
    caps: &'static [Capability],
}

/// The anthropic SDK's own span in content mode (`open_telemetry={"traces":{"content_mode":"content"}}`):
/// a stream read raw (`create(stream=True)`, no stream helper) has no output content; the finish
/// reason is `anthropic.message.stop_reason` (the normaliser files it, `normalize/anthropic_sdk.rs`).
const SDK_CONTENT: Capability = Capability {
    label: "anthropic-sdk",
    scope: "com.anthropic.sdk.python",
    convention: "otel_genai_attributes",
    missing: &["stream.completion"],
    recorded: &[],
};

/// The SDK's span with its default `content_mode=metadata_only`: no content, and so no stop sequences.
const SDK_METADATA: Capability = Capability {
    label: "anthropic-sdk(metadata_only)",
    scope: "com.anthropic.sdk.python",
    convention: "otel_genai",
    missing: &["system", "prompt", "completion", "params.stop_sequences"],
    recorded: &[],
};

/// Traceloop `opentelemetry-instrumentation-anthropic` 0.62.4: no stop sequences, no TTFT; finish
/// reason mapped to `stop`; error type = exception class; **bug**: the streamed output count adds
/// message_start's placeholder `output_tokens: 1` to message_delta's count (53 → 54).
const OPENLLMETRY: Capability = Capability {
    label: "openllmetry",
    scope: "opentelemetry.instrumentation.anthropic",
    convention: "openllmetry",
    missing: &["params.stop_sequences", "ttft"],
    recorded: &[
        ("ok.finish_reasons", "[\"stop\"]"),
        ("stream.output_tokens", "54"),
        ("error.error_type", "OverloadedError"),
    ],
};

/// OpenInference `openinference-instrumentation-anthropic` 3.1.0: no response id (only inside
/// `output.value`), no TTFT; error type from the exception event.
const OPENINFERENCE: Capability = Capability {
    label: "openinference",
    scope: "openinference.instrumentation.anthropic",
    convention: "openinference",
    missing: &["response_id", "ttft"],
    recorded: &[("error.error_type", "anthropic.OverloadedError")],
};

/// The official `opentelemetry-instrumentation-genai-anthropic` 1.3b0 (`span_only` content): status
/// left UNSET on success, finish reason mapped to `stop`, error type = qualified exception class.
const OTEL_ANTHROPIC: Capability = Capability {
    label: "otel-genai-anthropic",
    scope: "opentelemetry.instrumentation.genai.anthropic",
    convention: "otel_genai_attributes",
    missing: &[],
    recorded: &[
        ("ok.status", "Unset"),
        ("ok.finish_reasons", "[\"stop\"]"),
        ("error.error_type", "anthropic.OverloadedError"),
    ],
};

/// The official `opentelemetry-instrumentation-google-genai` 1.3b0 on google-genai 3.6.1 (it declares
/// `google-genai < 3` and instruments nothing on 3.x unless `skip_dep_check=True`; the client passes it).
/// `gen_ai.provider.name=gemini` (the deprecated spelling; normalised to `gcp.gemini`), status UNSET on
/// success, finish reason `stop` (Gemini: `STOP`), error type = the HTTP status code (`503`). Its output
/// count already includes the thoughts (candidates + thoughts), its input the cached tokens.
const OTEL_GOOGLE: Capability = Capability {
    label: "otel-google-genai",
    scope: "opentelemetry.instrumentation.google_genai",
    convention: "otel_genai_attributes",
    missing: &[],
    recorded: &[("ok.status", "Unset"), ("ok.finish_reasons", "[\"stop\"]"), ("error.error_type", "503")],
};

/// Every folder of the suite (= `PROVIDER_RUNS` of `tests/clients/record_all.sh`).
#[rustfmt::skip]
const FOLDERS: &[Folder] = &[
    Folder { folder: "anthropic-sdk", venv: "anthropic-sdk", mode: "sdk", provider: &ANTHROPIC, caps: &[SDK_CONTENT] },
    Folder { folder: "anthropic-sdk_metadata", venv: "anthropic-sdk", mode: "sdk_metadata", provider: &ANTHROPIC, caps: &[SDK_METADATA] },
    Folder { folder: "anthropic-openllmetry", venv: "anthropic-openllmetry", mode: "openllmetry", provider: &ANTHROPIC, caps: &[SDK_METADATA, OPENLLMETRY] },
    Folder { folder: "anthropic-openinference", venv: "anthropic-openinference", mode: "openinference", provider: &ANTHROPIC, caps: &[SDK_METADATA, OPENINFERENCE] },
    Folder { folder: "anthropic-otel", venv: "anthropic-otel", mode: "otel", provider: &ANTHROPIC, caps: &[SDK_METADATA, OTEL_ANTHROPIC] },
    Folder { folder: "google-genai-span_only", venv: "google-genai", mode: "span_only", provider: &GOOGLE, caps: &[OTEL_GOOGLE] },
];

/// Whether a fixture folder belongs to this suite (the `real_clients` suite owns the others).
pub(crate) fn is_provider_folder(name: &str) -> bool {
    name.starts_with("anthropic-") || name.starts_with("google-genai")
}

fn scenarios(p: &Provider) -> Value {
    let path = repo_root().join("tests/clients").join(p.scenarios);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn fixture(folder: &str) -> PathBuf {
    repo_root().join("tests/fixtures/otlp").join(folder)
}

#[test]
fn the_table_lists_every_provider_fixture_folder() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo_root().join("tests/fixtures/otlp"))
        .unwrap()
        .filter_map(|e| e.ok().filter(|e| e.path().is_dir()).and_then(|e| e.file_name().into_string().ok()))
        .filter(|f| is_provider_folder(f))
        .collect();
    let tabled: BTreeSet<String> = FOLDERS.iter().map(|f| f.folder.to_owned()).collect();
    assert_eq!(tabled, on_disk);
}

#[test]
fn every_recorded_provider_fixture_normalises_exactly() {
    let mut failures = Vec::new();
    for f in FOLDERS {
        let sc = scenarios(f.provider);
        let rows = calls_of(&fixture(f.folder));
        failures.extend(check_run(&rows, f.caps, &sc).into_iter().map(|b| format!("{}: {b}", f.folder)));
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// One live run: a folder over one protocol.
struct Run<'a> {
    f: &'a Folder,
    protocol: &'static str,
}

impl Run<'_> {
    fn label(&self) -> String {
        format!("{}/{}", self.f.folder, self.protocol)
    }

    fn service(&self) -> String {
        format!("rp-{}-{}", self.f.folder, self.protocol)
    }

    fn python(&self) -> PathBuf {
        repo_root().join(".venvs").join(self.f.venv).join("bin/python")
    }
}

fn fake_url(p: &Provider) -> String {
    static ANTHROPIC_URL: OnceLock<String> = OnceLock::new();
    static GEMINI_URL: OnceLock<String> = OnceLock::new();
    let cell = if p.fake == "fake_anthropic.py" { &ANTHROPIC_URL } else { &GEMINI_URL };
    fake_server_url(cell, p.fake)
}

/// Every check of one live run, prefixed with its label.
async fn check_live(stack: &Stack, run: &Run<'_>, failure: Option<&String>, sc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    if let Some(why) = failure {
        bad.push(format!("client: {why}"));
    }
    let service = sql_str(&run.service());
    let json = stack
        .query_json(&format!(
            "SELECT {LLM_CALL_COLUMNS} FROM llm_calls WHERE ServiceName = {service} ORDER BY Timestamp FORMAT JSONEachRow"
        ))
        .await;
    let mut rows = Vec::new();
    for (i, j) in json.into_iter().enumerate() {
        match llm_call(j) {
            Ok(r) => rows.push(r),
            Err(e) => bad.push(format!("llm_calls row {i}: {e}")),
        }
    }
    bad.extend(check_run(&rows, run.f.caps, sc));

    // Raw spans: every LLM span of every instrumentation and every app span is kept in otel_traces.
    let spans = stack
        .query_json(&format!("SELECT SpanId, SpanName, ScopeName FROM otel_traces WHERE ServiceName = {service}"))
        .await;
    let s = |m: &promptlog_testkit::Row, k: &str| try_cell::<String>(m, k).unwrap_or_default();
    let calls = sc["run_order"].as_array().unwrap().len();
    let row_spans: BTreeSet<String> = rows.iter().map(|r| r.span_id.clone()).collect();
    let app: Vec<_> = spans.iter().filter(|m| s(m, "SpanName").starts_with("scenario ")).collect();
    if app.len() != calls {
        bad.push(format!("otel_traces holds {} app spans, want {calls}", app.len()));
    }
    if let Some(m) = app.iter().find(|m| row_spans.contains(&s(m, "SpanId"))) {
        bad.push(format!("app span {:?} is an llm_calls row", s(m, "SpanName")));
    }
    for cap in run.f.caps {
        let n = spans.iter().filter(|m| s(m, "ScopeName") == cap.scope).count();
        if n != calls {
            bad.push(format!("otel_traces holds {n} spans of {}, want {calls}", cap.scope));
        }
    }
    for row in &rows {
        if !spans.iter().any(|m| s(m, "SpanId") == row.span_id) {
            bad.push(format!(
                "{:?}: llm_calls row of span {} is not in otel_traces",
                scenario_of(row, sc),
                row.span_id
            ));
        }
    }
    bad.into_iter().map(|b| format!("{}: {b}", run.label())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_client_lands_exactly_over_grpc_and_http() {
    let started = Instant::now();
    let only: Vec<String> = std::env::var("PROMPTLOG_REAL_PROVIDERS_ONLY")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let runs: Vec<Run> = FOLDERS
        .iter()
        .flat_map(|f| PROTOCOLS.map(|protocol| Run { f, protocol }))
        .filter(|r| only.is_empty() || only.iter().any(|o| r.label().contains(o.as_str())))
        .collect();
    assert!(!runs.is_empty(), "PROMPTLOG_REAL_PROVIDERS_ONLY matches no run");
    let missing: BTreeSet<String> =
        runs.iter().map(Run::python).filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
    assert!(missing.is_empty(), "missing client venvs {missing:?}: run tests/clients/setup.sh (or scripts/setup.sh)");
    let stack = Stack::start_with(|cfg| cfg.pipeline.join_window = JOIN_WINDOW).await;

    // One client at a time (each is a few seconds); each run then waits for at least one row per call.
    let mut outcomes = Vec::new();
    for run in &runs {
        let sc = scenarios(run.f.provider);
        let endpoint = if run.protocol == "grpc" { stack.otlp_grpc_url() } else { stack.otlp_http_url() };
        let script = repo_root().join("tests/clients").join(run.f.provider.script);
        let args: Vec<String> = vec![
            script.display().to_string(),
            "--otlp-endpoint".into(),
            endpoint,
            "--protocol".into(),
            run.protocol.into(),
            "--base-url".into(),
            fake_url(run.f.provider),
            "--scenario".into(),
            "all".into(),
            "--mode".into(),
            run.f.mode.into(),
            "--service-name".into(),
            run.service(),
        ];
        let calls = sc["run_order"].as_array().unwrap().len();
        let client = run_process(&run.python(), &args, calls).await;
        let (n, after) = wait_rows(&stack, &run.service(), calls as u64, client.ended).await;
        say(&format!(
            "real_providers: {:<34} client {:>4.1} s {} ({}/{} calls ok); rows {n} {:.1} s after exit",
            run.label(),
            client.elapsed.as_secs_f64(),
            if client.failure.is_some() { "FAILED" } else { "exit 0" },
            client.ok_calls,
            client.calls,
            after.as_secs_f64()
        ));
        outcomes.push((client.ended, client.failure, sc));
    }
    // A second copy of a call is released within the join window of the last export.
    let last_exit = outcomes.iter().map(|o| o.0).max().unwrap();
    tokio::time::sleep_until((last_exit + JOIN_WINDOW + Duration::from_secs(2)).into()).await;

    let mut failures = Vec::new();
    for (run, (_, failure, sc)) in runs.iter().zip(&outcomes) {
        failures.extend(check_live(&stack, run, failure.as_ref(), sc).await);
    }
    say(&format!("real_providers: {} runs, total {:.1} s", runs.len(), started.elapsed().as_secs_f64()));
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
