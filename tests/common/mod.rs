//! Test harness: a real ClickHouse engine (the chDB-backed server in `tests/chdb_server/`, or the
//! server named by `PROMPTLOG_TEST_CLICKHOUSE_URL`) and an in-process collector on port 0.
#![allow(dead_code)] // Each test binary uses a different subset of this module.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use promptlog::config::Config;
use promptlog::storage::clickhouse::{Store, schema};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Environment variable pointing the tests at a real ClickHouse instead of the chDB server.
pub const EXTERNAL_URL_VAR: &str = "PROMPTLOG_TEST_CLICKHOUSE_URL";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter of the project's venv (made by `scripts/setup.sh`).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PROMPTLOG_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".venv/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh first", p.display());
    p
}

/// A chDB-backed ClickHouse HTTP server owned by the caller (stopped on drop).
pub struct ChServer {
    pub url: String,
    child: Child,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl ChServer {
    /// Starts a server on a free port with a fresh data directory.
    pub fn start() -> ChServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("chdb");
        let mut s = Self::start_in(&dir);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data_dir` (reused across restarts).
    pub fn start_in(data_dir: &Path) -> ChServer {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/chdb_server/server.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the chDB test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read READY line");
        let url = line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("chDB server said {line:?}")).to_owned();
        ChServer { url, child, data_dir: data_dir.to_owned(), _tmp: None }
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The ClickHouse all tests of this binary share: external, or one chDB server started on first use.
pub fn shared_clickhouse_url() -> String {
    static SHARED: OnceLock<String> = OnceLock::new();
    SHARED
        .get_or_init(|| match std::env::var(EXTERNAL_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let server = ChServer::start();
                let url = server.url.clone();
                // Lives until the test binary exits; the server's parent-pid watchdog then stops it.
                std::mem::forget(server);
                url
            }
        })
        .clone()
}

fn unique_database() -> String {
    let bytes = promptlog_otlp::random_bytes::<6>();
    format!("test_{}", const_hex::encode(bytes))
}

/// A test collector config: fast batches, the given ClickHouse and database.
pub fn test_config(url: &str, database: &str, data_dir: &Path) -> Config {
    let mut c = Config::default();
    c.clickhouse.url = url.to_owned();
    c.clickhouse.database = database.to_owned();
    c.receivers.grpc_endpoint = "127.0.0.1:0".into();
    c.receivers.http_endpoint = "127.0.0.1:0".into();
    c.pipeline.batch_max_delay = Duration::from_millis(200);
    c.data_dir = data_dir.to_owned();
    c
}

/// ClickHouse + a running collector writing to a fresh database.
pub struct Stack {
    pub clickhouse_url: String,
    pub config: Config,
    pub grpc_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    _data: tempfile::TempDir,
    http: reqwest::Client,
}

impl Stack {
    /// Starts a stack with the default test config.
    pub async fn start() -> Stack {
        Self::start_with(|_| {}).await
    }

    /// Starts a stack after letting `tweak` adjust the config.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Stack {
        let url = shared_clickhouse_url();
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(&url, &unique_database(), data.path());
        tweak(&mut config);
        schema::migrate(&Store::new(&config.clickhouse)).await.expect("migrations");
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let listeners = promptlog::Listeners { grpc, http };
        let task = tokio::spawn({
            let (config, shutdown) = (config.clone(), shutdown.clone());
            async move { promptlog::serve(config, listeners, shutdown).await.expect("serve") }
        });
        Stack {
            clickhouse_url: url,
            config,
            grpc_addr,
            http_addr,
            shutdown,
            task: Some(task),
            _data: data,
            http: reqwest::Client::new(),
        }
    }

    pub fn database(&self) -> &str {
        &self.config.clickhouse.database
    }

    pub fn otlp_http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn otlp_grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// Stops the collector gracefully (flushing what it holds).
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("collector task");
        }
    }

    async fn post_sql(&self, sql: &str, format: Option<&str>) -> String {
        let mut params = vec![("database", self.database().to_owned())];
        if let Some(f) = format {
            params.push(("default_format", f.to_owned()));
        }
        let resp = self
            .http
            .post(&self.clickhouse_url)
            .query(&params)
            .body(sql.to_owned())
            .send()
            .await
            .expect("ClickHouse reachable");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "ClickHouse refused {sql}\n{status}: {text}");
        text
    }

    /// Runs `sql` and returns its rows (JSONEachRow).
    pub async fn query_json(&self, sql: &str) -> Vec<Map<String, Value>> {
        let text = self.post_sql(sql, Some("JSONEachRow")).await;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON row {l:?}: {e}")))
            .collect()
    }

    /// Runs a statement.
    pub async fn exec(&self, sql: &str) {
        self.post_sql(sql, None).await;
    }

    /// `SELECT count() FROM table`.
    pub async fn count(&self, table: &str) -> u64 {
        let rows = self.query_json(&format!("SELECT count() AS n FROM {table}")).await;
        rows[0]["n"].as_str().map(|s| s.parse().unwrap()).or_else(|| rows[0]["n"].as_u64()).unwrap()
    }

    /// Waits up to 20 s until `table` holds at least `n` rows; returns the count.
    pub async fn wait_for_count(&self, table: &str, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let c = self.count(table).await;
            if c >= n || Instant::now() > deadline {
                assert!(c >= n, "{table}: expected at least {n} rows, found {c} after 20 s");
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POSTs an OTLP/HTTP body; returns status, content type and body.
    pub async fn post_otlp(&self, path: &str, content_type: &str, body: Vec<u8>, gzip: bool) -> (u16, String, Vec<u8>) {
        let mut req = self.http.post(format!("{}{path}", self.otlp_http_url())).header("content-type", content_type);
        if gzip {
            req = req.header("content-encoding", "gzip");
        }
        let resp = req.body(body).send().await.expect("collector reachable");
        let status = resp.status().as_u16();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, ct, resp.bytes().await.unwrap().to_vec())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
