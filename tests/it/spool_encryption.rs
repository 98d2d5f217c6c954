//! Encryption at rest of the spool, end to end with the real binary: with a key file, nothing the
//! collector writes under its data directory holds the plaintext of what it accepted; after a key
//! rotation (old key kept, new key current) a record sealed under the old key is replayed and its
//! rows are stored exactly once. Also: a bad key file refuses the start,
//! `promptlog dead-letter decrypt` reads sealed dead letters back, and a gRPC request is spooled as
//! received.
//!
//! Each test that runs a collector holds `promptlog_testkit::gate::shared`, so the fault suite (which
//! needs the machine to itself) does not run meanwhile.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as AnyValueKind};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use promptlog_otlp::{kv, logs_request, now_ns, random_bytes, resource, span, traces_request};
use promptlog_testkit::{Sql, free_port, gate, shared_clickhouse_url};
use prost::Message;
use serde_json::Value;

/// What must never be found on disk in the clear.
const MARKER: &str = "PLAINTEXT-MARKER-c0ffee-4111111111111111";
const KEY_1: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
const KEY_2: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

fn write_key_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// The collector binary on fixed ports and a fixed data directory.
struct Collector {
    child: Option<Child>,
    http: SocketAddr,
    grpc: SocketAddr,
    log: PathBuf,
}

impl Collector {
    /// Starts `promptlog serve` with `env` and waits until `/health` answers.
    async fn start(env: &[(&str, String)], data_dir: &Path, log: PathBuf) -> Collector {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let logfile = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_promptlog"))
            .arg("serve")
            .env_clear()
            .env("PROMPTLOG_OTLP_HTTP_ENDPOINT", http.to_string())
            .env("PROMPTLOG_OTLP_GRPC_ENDPOINT", grpc.to_string())
            // Collectors run side by side: none opens the explorer's fixed default port.
            .env("PROMPTLOG_UI_ENABLED", "false")
            .env("PROMPTLOG_DATA_DIR", data_dir)
            .env("PROMPTLOG_BATCH_MAX_DELAY", "200ms")
            .env("PROMPTLOG_JOIN_WINDOW", "1s")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logfile)
            .spawn()
            .expect("start promptlog");
        let c = Collector { child: Some(child), http, grpc, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while c.health().await.is_none() {
            assert!(Instant::now() < deadline, "collector not serving after 60 s:\n{}", c.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn health(&self) -> Option<Value> {
        let url = format!("http://{}/health", self.http);
        let resp = reqwest::Client::new().get(url).timeout(Duration::from_secs(5)).send().await.ok()?;
        resp.json().await.ok()
    }

    async fn post(&self, path: &str, body: Vec<u8>) {
        let resp = reqwest::Client::new()
            .post(format!("http://{}{path}", self.http))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .expect("collector reachable");
        assert_eq!(resp.status(), 200, "{path}: {:?}", resp.text().await);
    }

    /// SIGKILL: no flush, no spool close; what was acknowledged is in the spool.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A chat call with its prompt and completion in span attributes, and a log record, all carrying
/// [`MARKER`]; returns the two bodies and the span id (hex).
fn requests() -> (Vec<u8>, Vec<u8>, String) {
    let content = |role: &str| format!(r#"[{{"role":"{role}","parts":[{{"type":"text","content":"{MARKER}"}}]}}]"#);
    let attrs = vec![
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.provider.name", "openai"),
        kv("gen_ai.request.model", "gpt-4o"),
        kv("gen_ai.input.messages", content("user")),
        kv("gen_ai.output.messages", content("assistant")),
        kv("user.id", MARKER),
    ];
    let mut chat = span("chat gpt-4o", now_ns(), 5, attrs);
    chat.span_id = random_bytes::<8>().to_vec();
    let span_id = const_hex::encode(&chat.span_id);
    let traces = traces_request(resource("encrypted-svc", "test"), vec![chat]).encode_to_vec();
    let log = LogRecord {
        time_unix_nano: now_ns(),
        body: Some(AnyValue { value: Some(AnyValueKind::StringValue(format!("user said {MARKER}"))) }),
        ..Default::default()
    };
    let logs = logs_request(resource("encrypted-svc", "test"), vec![log]).encode_to_vec();
    (traces, logs, span_id)
}

/// Every file under `dir` that holds `needle` anywhere in its bytes, and how many files were read.
fn files_containing(dir: &Path, needle: &[u8]) -> (Vec<PathBuf>, usize) {
    let (mut found, mut scanned) = (Vec::new(), 0);
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                scanned += 1;
                let bytes = std::fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    (found, scanned)
}

/// A ClickHouse address nothing listens on: inserts fail, so requests stay in the spool.
fn unreachable_clickhouse() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Accepts the marker requests into the spool of a collector whose ClickHouse is unreachable, then
/// SIGKILLs it. Returns the span id.
async fn spool_marker_requests(env: &[(&str, String)], data_dir: &Path, log: PathBuf) -> String {
    let mut env = env.to_vec();
    env.push(("PROMPTLOG_CLICKHOUSE_URL", unreachable_clickhouse()));
    let mut collector = Collector::start(&env, data_dir, log).await;
    let (traces, logs, span_id) = requests();
    collector.post("/v1/traces", traces).await;
    collector.post("/v1/logs", logs).await;
    wait_spooled(&collector, 2).await;
    collector.kill();
    span_id
}

/// Until `/health` counts `records` in the spool: acknowledged means fsynced there, and the gauge
/// lags by up to a quarter second.
async fn wait_spooled(collector: &Collector, records: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = collector.health().await.unwrap();
        if health["spool"]["records"] == records {
            return;
        }
        assert!(Instant::now() < deadline, "{records} requests wait in the spool: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_request_is_spooled_as_received_not_decoded_and_encoded_again() {
    let _shared = gate::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let env = [("PROMPTLOG_CLICKHOUSE_URL", unreachable_clickhouse())];
    let mut collector = Collector::start(&env, &data_dir, dir.path().join("collector.log")).await;
    let (mut traces, _, _) = requests();
    // A field OTLP does not define (number 1000, bytes): decoding skips it, so it reaches the spool
    // only if the request is kept as it was sent.
    let unknown = b"UNKNOWN-FIELD-MARKER-5eed";
    traces.extend_from_slice(&[0xc2, 0x3e, unknown.len() as u8]); // key (1000 << 3) | 2 as a varint
    traces.extend_from_slice(unknown);
    let url = format!("http://{}", collector.grpc);
    let method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    promptlog_testkit::grpc_raw(&url, method, traces, true).await.expect("the export is accepted");
    wait_spooled(&collector, 1).await;
    collector.kill();
    let (found, scanned) = files_containing(&data_dir, unknown);
    assert!(!found.is_empty(), "the spool ({scanned} files) holds the request as received, unknown field included");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_file_the_marker_is_on_disk_so_the_scan_can_fail() {
    let _shared = gate::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    spool_marker_requests(&[], &data_dir, dir.path().join("collector.log")).await;
    let (found, _) = files_containing(&data_dir, MARKER.as_bytes());
    assert!(!found.is_empty(), "a plaintext spool holds the marker (else the encrypted test proves nothing)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_spool_holds_no_plaintext_and_replays_after_key_rotation_exactly_once() {
    let _shared = gate::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let keys = dir.path().join("keys.yaml");
    let log = dir.path().join("collector.log");
    write_key_file(&keys, &format!("current: 1\nkeys:\n  1: {KEY_1}\n"));
    let key_env = ("PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE", keys.display().to_string());

    // 1. Encryption on, ClickHouse unreachable: the requests are accepted and stay in the spool.
    let span_id = spool_marker_requests(std::slice::from_ref(&key_env), &data_dir, log.clone()).await;
    let (found, scanned) = files_containing(&data_dir, MARKER.as_bytes());
    assert!(scanned > 0, "the data directory holds the spool");
    assert!(found.is_empty(), "plaintext on disk in {found:?}");
    let (found, _) = files_containing(&data_dir, b"encrypted-svc");
    assert!(found.is_empty(), "resource attributes are sealed too: {found:?}");

    // 2. Rotated key file (key 1 kept, key 2 current), ClickHouse reachable: replayed once.
    write_key_file(&keys, &format!("current: 2\nkeys:\n  1: {KEY_1}\n  2: {KEY_2}\n"));
    let url = shared_clickhouse_url();
    let database = format!("spoolcrypt_{}", const_hex::encode(random_bytes::<4>()));
    let env = [key_env, ("PROMPTLOG_CLICKHOUSE_URL", url.clone()), ("PROMPTLOG_CLICKHOUSE_DATABASE", database.clone())];
    let collector = Collector::start(&env, &data_dir, log).await;
    let sql = Sql::new(&url, &database);
    let counts = format!(
        "SELECT (SELECT count() FROM otel_traces WHERE SpanId = '{span_id}'), \
                (SELECT count() FROM llm_calls WHERE SpanId = '{span_id}' AND position(InputMessages, '{MARKER}') > 0), \
                (SELECT count() FROM otel_logs WHERE position(Body, '{MARKER}') > 0)"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = collector.health().await.unwrap_or_default();
        assert_eq!(health["spool"]["unreadable"], 0, "the old record could not be opened: {health}");
        let drained = health["spool"]["records"] == 0 && health["spool"]["backlog"] == 0;
        let stored = sql.try_text(&counts, None).await.unwrap_or_default();
        if drained && stored.split_whitespace().collect::<Vec<_>>() == ["1", "1", "1"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not replayed after 60 s: counts {stored:?}, health {health}\n{}",
            collector.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Exactly once: give a duplicate replay time to land, then count again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = sql.text(&counts, None).await;
    assert_eq!(again.split_whitespace().collect::<Vec<_>>(), ["1", "1", "1"], "stored exactly once");
    assert!(collector.log_text().contains("Spool encryption at rest is on."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_file_refuses_the_start_naming_the_problem() {
    let _shared = gate::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.yaml");
    let cases = [
        (format!("current: 3\nkeys:\n  1: {KEY_1}\n"), "the current key id 3 is not among `keys`"),
        (format!("current: 1\nkeys:\n  1: {}\n", &KEY_1[..40]), "key 1 has 40 characters"),
        ("current: [1\n".to_owned(), "invalid spool encryption key file"),
    ];
    for (text, want) in cases {
        write_key_file(&keys, &text);
        let out = Command::new(env!("CARGO_BIN_EXE_promptlog"))
            .arg("serve")
            .env_clear()
            .env("PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE", &keys)
            .env("PROMPTLOG_DATA_DIR", dir.path().join("data"))
            .env("PROMPTLOG_CLICKHOUSE_URL", unreachable_clickhouse())
            .env("PROMPTLOG_OTLP_HTTP_ENDPOINT", format!("127.0.0.1:{}", free_port()))
            .env("PROMPTLOG_OTLP_GRPC_ENDPOINT", format!("127.0.0.1:{}", free_port()))
            // Collectors run side by side: none opens the explorer's fixed default port.
            .env("PROMPTLOG_UI_ENABLED", "false")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {text:?}");
        assert!(stderr.contains(want) && stderr.contains("keys.yaml"), "{stderr}");
        assert!(!stderr.contains(&KEY_1[..40]), "key material in the message: {stderr}");
        assert!(!dir.path().join("data").exists(), "nothing was written before refusing");
    }
}

#[test]
fn dead_letter_decrypt_prints_a_sealed_file_with_the_key_file() {
    use promptlog_ingest::KeyRing;
    use promptlog_ingest::seal::Purpose;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.yaml");
    write_key_file(&keys, &format!("current: 2\nkeys:\n  1: {KEY_1}\n  2: {KEY_2}\n"));
    let mut key = [0u8; 32];
    const_hex::decode_to_slice(KEY_1, &mut key).unwrap();
    let jsonl = format!("{{\"table\":\"llm_calls\",\"reason\":\"refused\"}}\n{{\"InputText\":\"{MARKER}\"}}\n");
    let sealed = KeyRing::new(1, [(1, key)]).unwrap().seal(Purpose::DeadLetter, jsonl.as_bytes());
    let file = dir.path().join("llm_calls-1-0.jsonl.sealed");
    std::fs::write(&file, &sealed).unwrap();
    let decrypt = |env: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_promptlog"));
        cmd.args(["dead-letter", "decrypt"]).arg(&file).env_clear();
        if let Some(keys) = env {
            cmd.env("PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE", keys);
        }
        cmd.output().unwrap()
    };
    let out = decrypt(Some(&keys));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), jsonl);
    let out = decrypt(None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_clickhouse_refuses_are_dead_lettered_sealed_and_decrypt_back() {
    let _shared = gate::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let keys = dir.path().join("keys.yaml");
    write_key_file(&keys, &format!("current: 1\nkeys:\n  1: {KEY_1}\n"));
    let url = shared_clickhouse_url();
    let database = format!("spoolcrypt_dl_{}", const_hex::encode(random_bytes::<4>()));
    let env = [
        ("PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE", keys.display().to_string()),
        ("PROMPTLOG_CLICKHOUSE_URL", url.clone()),
        ("PROMPTLOG_CLICKHOUSE_DATABASE", database.clone()),
    ];
    let collector = Collector::start(&env, &data_dir, dir.path().join("collector.log")).await;
    // Migrated before serving; without the column every insert into otel_logs is refused for good.
    Sql::new(&url, &database).exec("ALTER TABLE otel_logs DROP COLUMN ScopeVersion").await;
    let (_, logs, _) = requests();
    collector.post("/v1/logs", logs).await;
    let dead_letters = data_dir.join("dead-letter");
    let deadline = Instant::now() + Duration::from_secs(60);
    let file = loop {
        // Dead letters appear under their final name only once complete (written, then renamed).
        let sealed = std::fs::read_dir(&dead_letters).ok().and_then(|d| {
            d.map(|e| e.unwrap().path()).find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        });
        if let Some(file) = sealed {
            break file;
        }
        assert!(Instant::now() < deadline, "nothing dead-lettered after 60 s:\n{}", collector.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(file.to_string_lossy().ends_with(".jsonl.sealed"), "{}", file.display());
    let (found, _) = files_containing(&data_dir, MARKER.as_bytes());
    assert!(found.is_empty(), "plaintext on disk in {found:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_promptlog"))
        .args(["dead-letter", "decrypt"])
        .arg(&file)
        .env_clear()
        .env("PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE", &keys)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let head: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(head["table"], "otel_logs", "{text}");
    assert!(lines.any(|row| row.contains(MARKER)), "the refused row comes back: {text}");
}
