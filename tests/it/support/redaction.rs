//! Support for the `redaction` suite: the recorded fixtures of every convention rewritten to carry PII
//! (in prompts, completions, system instructions, span, log and resource attributes), what they
//! must produce, and scans of tables and files for the original strings.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use promptlog_ingest::join::Joiner;
use promptlog_ingest::{Ingestor, Limits, Processors, Request, RequestContext, Signal};
use promptlog_otlp::kv;

pub const EMAIL: &str = "jane.doe@example.com";
pub const CARD: &str = "4111 1111 1111 1111";
pub const IBAN: &str = "DE89 3704 0044 0532 0130 00";
pub const API_KEY: &str = "sk-proj-AbCdEf1234567890GhIjKlMn";
/// Fails the Luhn check: must be left alone.
pub const BAD_CARD: &str = "4111 1111 1111 1112";
/// The strings that must appear nowhere.
pub const PII: [&str; 4] = [EMAIL, CARD, IBAN, API_KEY];
/// The markers that must appear instead.
pub const MARKERS: [&str; 4] = ["[REDACTED:email]", "[REDACTED:credit_card]", "[REDACTED:iban]", "[REDACTED:secret]"];
/// The plain scenario's prompt, to find its calls.
pub const PLAIN_PROMPT: &str = "Icelandic flag";

/// One sentence with every PII string and the invalid card number (nothing JSON would escape).
pub fn pii_text() -> String {
    format!("contact {EMAIL}, card {CARD}, iban {IBAN}, key {API_KEY}; not a card: {BAD_CARD}")
}

fn root() -> PathBuf {
    promptlog_testkit::repo_root()
}

/// One recorded request, rewritten.
pub struct Fixture {
    pub name: String,
    pub signal: Signal,
    pub body: Vec<u8>,
}

impl Fixture {
    pub fn path(&self) -> &'static str {
        match self.signal {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
            Signal::Scores => "/v1/scores",
        }
    }
}

/// The texts of `scenarios.json` that reach prompts, system instructions and completions, each
/// followed by the PII sentence.
fn replacements() -> Vec<(String, String)> {
    content_texts().into_iter().map(|t| (t.clone(), format!("{t} {}", pii_text()))).collect()
}

/// The scenario files of the recorded fixtures (OpenAI, and the `real_providers` suites').
const SCENARIO_FILES: [&str; 3] = ["scenarios.json", "scenarios-anthropic.json", "scenarios-google.json"];

/// Fixture folders whose recordings carry no content at all (the anthropic SDK's default
/// `metadata_only` mode), so the rewrite cannot put PII in.
const NO_CONTENT_FOLDERS: [&str; 1] = ["anthropic-sdk_metadata"];

/// The prompts, system instructions and completions of every scenario file, longest first.
pub fn content_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for file in SCENARIO_FILES {
        let path = root().join("tests/clients").join(file);
        let sc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        texts.extend(scenario_texts(&sc));
    }
    // Longest first, so a text containing another is replaced whole.
    texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
    texts.dedup();
    texts
}

fn scenario_texts(sc: &serde_json::Value) -> Vec<String> {
    let mut texts = Vec::new();
    for s in sc["scenarios"].as_object().unwrap().values() {
        for t in [&s["request"]["user"], &s["request"]["system"], &s["response"]["content"]] {
            if let Some(t) = t.as_str() {
                texts.push(t.to_owned());
            }
        }
        if let Some(last) = s["response"]["chunks"].as_array().and_then(|c| c.last()).and_then(|c| c.as_str()) {
            texts.push(last.to_owned());
        }
    }
    texts
}

fn rewrite_str(s: &mut String, replacements: &[(String, String)]) {
    for (from, to) in replacements {
        if s.contains(from.as_str()) {
            *s = s.replace(from.as_str(), to);
        }
    }
}

fn rewrite_any(v: &mut AnyValue, r: &[(String, String)]) {
    match &mut v.value {
        Some(Value::StringValue(s)) => rewrite_str(s, r),
        Some(Value::ArrayValue(a)) => a.values.iter_mut().for_each(|v| rewrite_any(v, r)),
        Some(Value::KvlistValue(l)) => {
            l.values.iter_mut().filter_map(|kv| kv.value.as_mut()).for_each(|v| rewrite_any(v, r))
        }
        _ => {}
    }
}

fn rewrite_attrs(attrs: &mut Vec<KeyValue>, r: &[(String, String)], note: bool) {
    attrs.iter_mut().filter_map(|kv| kv.value.as_mut()).for_each(|v| rewrite_any(v, r));
    if note {
        attrs.push(kv("app.customer_note", pii_text()));
    }
}

/// Puts PII in every prompt, completion and system instruction, a PII attribute on every span and
/// log record, and the e-mail address in every resource.
fn rewrite(request: &mut Request, r: &[(String, String)]) {
    match request {
        Request::Traces(t) => {
            for rs in &mut t.resource_spans {
                if let Some(res) = &mut rs.resource {
                    res.attributes.push(kv("app.owner", EMAIL));
                }
                for span in rs.scope_spans.iter_mut().flat_map(|ss| &mut ss.spans) {
                    rewrite_attrs(&mut span.attributes, r, true);
                    span.events.iter_mut().for_each(|e| rewrite_attrs(&mut e.attributes, r, false));
                }
            }
        }
        Request::Logs(l) => {
            for rl in &mut l.resource_logs {
                if let Some(res) = &mut rl.resource {
                    res.attributes.push(kv("app.owner", EMAIL));
                }
                for log in rl.scope_logs.iter_mut().flat_map(|sl| &mut sl.log_records) {
                    rewrite_attrs(&mut log.attributes, r, true);
                    if let Some(body) = &mut log.body {
                        rewrite_any(body, r);
                    }
                }
            }
        }
        // No recorded fixture carries metrics or scores.
        Request::Metrics(_) | Request::Scores(_) => {}
    }
}

/// Every recorded request of every convention, in arrival order per folder, rewritten with PII.
pub fn fixtures() -> Vec<Fixture> {
    let r = replacements();
    let base = root().join("tests/fixtures/otlp");
    let mut folders: Vec<PathBuf> =
        std::fs::read_dir(&base).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    folders.sort();
    let mut out = Vec::new();
    for folder in folders {
        let folder_name = folder.file_name().unwrap().to_str().unwrap().to_owned();
        let mut with_pii = 0;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pb"))
            .collect();
        files.sort_by_key(|p| p.file_name().unwrap().to_str().unwrap().split('-').nth(1).unwrap().to_owned());
        for file in files {
            let name = format!(
                "{}/{}",
                folder.file_name().unwrap().to_str().unwrap(),
                file.file_name().unwrap().to_str().unwrap()
            );
            let signal = match file.file_name().unwrap().to_str().unwrap().split('-').next() {
                Some("traces") => Signal::Traces,
                Some("logs") => Signal::Logs,
                _ => continue,
            };
            let mut request = Request::decode(signal, &std::fs::read(&file).unwrap()).unwrap();
            rewrite(&mut request, &r);
            let mut body = Vec::new();
            request.encode_raw(&mut body);
            with_pii += usize::from(contains(&body, EMAIL));
            out.push(Fixture { name, signal, body });
        }
        // A file may carry no content (google-genai's details events in `span_only` mode), a folder must.
        assert!(
            with_pii > 0 || NO_CONTENT_FOLDERS.contains(&folder_name.as_str()),
            "{folder_name}: the rewrite put no PII in"
        );
    }
    assert!(out.len() >= 13, "fixtures missing: {}", out.len());
    out
}

/// What the fixtures must produce without redaction: (spans, log records, calls, calls whose
/// prompt is the plain scenario's).
pub fn expected(fixtures: &[Fixture]) -> (u64, u64, u64, u64) {
    let ingestor = Ingestor::new(Limits { max_attribute_value_bytes: 1 << 20 }, Processors::new());
    let mut joiner = Joiner::new(Duration::from_secs(10), 10_000);
    let now = Instant::now();
    let (mut spans, mut logs) = (0, 0);
    for f in fixtures {
        let request = Request::decode(f.signal, &f.body).unwrap();
        let accepted = ingestor.accept(&RequestContext::new(f.signal, 1), request, None);
        spans += accepted.submission.spans.len() as u64;
        logs += accepted.submission.logs.len() as u64;
        accepted.submission.calls.into_iter().for_each(|c| joiner.add_call(c, now));
        accepted.submission.fragments.into_iter().for_each(|c| joiner.add_content(c, now));
    }
    joiner.drain();
    let calls = joiner.take_ready();
    let plain = calls.iter().filter(|c| c.input_text.contains(PLAIN_PROMPT)).count() as u64;
    assert!(calls.iter().filter(|c| c.input_text.contains(PLAIN_PROMPT)).all(|c| c.input_text.contains(EMAIL)));
    (spans, logs, calls.len() as u64, plain)
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

/// `(file, string)` for every PII string found in the bytes of any file under `dir`, and whether
/// any file holds a redaction marker.
pub fn scan_dir(dir: &Path) -> (Vec<String>, bool) {
    let mut found = Vec::new();
    let mut markers = false;
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for pii in PII {
            if contains(&bytes, pii) {
                found.push(format!("{} holds {pii:?}", file.display()));
            }
        }
        markers |= MARKERS.iter().any(|m| contains(&bytes, m));
    }
    (found, markers)
}

/// Checks one table's rows (every column, as JSON text): no PII, every marker, and the invalid card.
pub fn check_table(table: &str, rows: &[promptlog_testkit::Row]) -> Vec<String> {
    let mut bad = Vec::new();
    if rows.is_empty() {
        bad.push(format!("{table}: no rows"));
    }
    let text: String = rows.iter().map(|r| serde_json::to_string(r).unwrap()).collect::<Vec<_>>().join("\n");
    for pii in PII {
        let n = text.matches(pii).count();
        if n > 0 {
            let row = rows.iter().map(|r| serde_json::to_string(r).unwrap()).find(|r| r.contains(pii)).unwrap();
            bad.push(format!("{table}: {pii:?} found {n} time(s), e.g. in {}", &row[..row.len().min(600)]));
        }
    }
    for marker in MARKERS {
        if !text.contains(marker) {
            bad.push(format!("{table}: marker {marker} missing"));
        }
    }
    if !text.contains(BAD_CARD) {
        bad.push(format!("{table}: the invalid card number {BAD_CARD:?} was not left alone"));
    }
    bad
}
