//! A real ClickHouse engine for the tests: the chDB-backed HTTP server of `tests/chdb_server/`, and a
//! small SQL-over-HTTP client for any ClickHouse HTTP endpoint.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::rows::{Row, cell};
use crate::{log_tail, python, repo_root};

/// Environment variable pointing the tests at a real ClickHouse instead of the chDB server.
pub const EXTERNAL_URL_VAR: &str = "PROMPTLOG_TEST_CLICKHOUSE_URL";

/// Longest a chDB server may take to say it serves.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A chDB-backed ClickHouse HTTP server owned by the caller (stopped on drop). It can be killed and
/// restarted on the same port and data directory, where a collector expects it.
pub struct ChServer {
    child: Option<Child>,
    url: String,
    port: u16,
    data_dir: PathBuf,
    log: Option<PathBuf>,
    /// `--users-xml FILE --as-user NAME`: the one account the server serves.
    account: Option<(PathBuf, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl ChServer {
    /// Starts a server on a free port with a fresh data directory; its log goes to this process's stderr.
    pub fn start() -> ChServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = Self::start_in(&tmp.path().join("chdb"), None);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on a free port with its data in `data_dir` (kept across restarts); its log is
    /// appended to `log`, or goes to this process's stderr.
    pub fn start_in(data_dir: &Path, log: Option<&Path>) -> ChServer {
        let mut s = ChServer {
            child: None,
            url: String::new(),
            port: 0,
            data_dir: data_dir.to_owned(),
            log: log.map(Path::to_owned),
            account: None,
            _tmp: None,
        };
        s.restart();
        s
    }

    /// Starts a server on `data_dir` that serves only `user` of `users_xml`, with its grants,
    /// profile and row policies (see tests/chdb_server/README.md: one account per server process).
    pub fn start_as(data_dir: &Path, users_xml: &Path, user: &str) -> ChServer {
        let mut s = ChServer {
            child: None,
            url: String::new(),
            port: 0,
            data_dir: data_dir.to_owned(),
            log: None,
            account: Some((users_xml.to_owned(), user.to_owned())),
            _tmp: None,
        };
        s.restart();
        s
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The end of the server's log file (empty when it logs to stderr).
    pub fn log_tail(&self) -> String {
        self.log.as_deref().map(|l| log_tail(l, 30)).unwrap_or_default()
    }

    /// Starts the server (again; after the first start on the same port and data directory) and
    /// returns once it serves.
    pub fn restart(&mut self) {
        let stderr = match &self.log {
            Some(log) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap()),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(python());
        command
            .arg(repo_root().join("tests/chdb_server/server.py"))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--data-dir"])
            .arg(&self.data_dir)
            .args(["--parent-pid", &std::process::id().to_string()]);
        if let Some((users_xml, user)) = &self.account {
            command.arg("--users-xml").arg(users_xml).args(["--as-user", user]);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(stderr).spawn().expect("start the chDB test server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line.expect("read READY line"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chDB server not READY in {READY_TIMEOUT:?}; log:\n{}", self.log_tail());
            }
        };
        let url = line.trim().strip_prefix("READY ").unwrap_or_else(|| {
            panic!("chDB server said {line:?}; log:\n{}", self.log_tail());
        });
        if self.port != 0 {
            assert_eq!(url, self.url, "chDB server log:\n{}", self.log_tail());
        } else {
            self.port = url.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("READY line has a port");
            self.url = url.to_owned();
        }
        self.child = Some(child);
    }

    /// Stops the server (SIGKILL, as in a crash) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sets the server's injected delay before every INSERT (its `/__control/delay` endpoint).
    pub async fn set_insert_delay(&self, ms: u64) {
        let url = format!("{}/__control/delay?ms={ms}", self.url);
        let resp = reqwest::Client::new().post(url).send().await.expect("chDB control endpoint");
        assert!(resp.status().is_success());
    }
}

impl Drop for ChServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The ClickHouse all tests of this process share: external, or one chDB server started on first use.
pub fn shared_clickhouse_url() -> String {
    static SHARED: OnceLock<String> = OnceLock::new();
    SHARED
        .get_or_init(|| match std::env::var(EXTERNAL_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let server = ChServer::start();
                let url = server.url().to_owned();
                // Lives until the test process exits; the server's parent-pid watchdog then stops it.
                std::mem::forget(server);
                url
            }
        })
        .clone()
}

/// SQL over ClickHouse's HTTP interface, in one database.
#[derive(Clone)]
pub struct Sql {
    http: reqwest::Client,
    url: String,
    database: String,
    timeout: Option<Duration>,
}

impl Sql {
    pub fn new(url: &str, database: &str) -> Sql {
        Sql { http: reqwest::Client::new(), url: url.to_owned(), database: database.to_owned(), timeout: None }
    }

    /// Every request gives up after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Sql {
        self.timeout = Some(timeout);
        self
    }

    /// Runs `sql` (answering in `format`, or the server's default); the answer, or why there is none
    /// (unreachable, timed out, or refused with its status and message).
    pub async fn try_text(&self, sql: &str, format: Option<&str>) -> Result<String, String> {
        self.try_text_with(sql, format, &[]).await
    }

    /// [`Sql::try_text`] with ClickHouse settings as URL parameters.
    pub async fn try_text_with(
        &self,
        sql: &str,
        format: Option<&str>,
        settings: &[(&str, &str)],
    ) -> Result<String, String> {
        let mut params = vec![("database", self.database.as_str())];
        if let Some(f) = format {
            params.push(("default_format", f));
        }
        params.extend_from_slice(settings);
        let mut req = self.http.post(&self.url).query(&params).body(sql.to_owned());
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        let resp = req.send().await.map_err(|e| format!("ClickHouse unreachable: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() { Ok(text) } else { Err(format!("ClickHouse refused {sql}\n{status}: {text}")) }
    }

    /// [`Sql::try_text`], panicking unless ClickHouse answers with success.
    pub async fn text(&self, sql: &str, format: Option<&str>) -> String {
        self.try_text(sql, format).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `sql` with ClickHouse settings as URL parameters; its rows (JSONEachRow), or why there are none.
    pub async fn try_rows_with(&self, sql: &str, settings: &[(&str, &str)]) -> Result<Vec<Row>, String> {
        self.try_text_with(sql, Some("JSONEachRow"), settings).await.map(|text| parse_rows(&text))
    }

    /// Runs `sql` and returns its rows (JSONEachRow).
    pub async fn rows(&self, sql: &str) -> Vec<Row> {
        parse_rows(&self.text(sql, Some("JSONEachRow")).await)
    }

    /// Runs a statement.
    pub async fn exec(&self, sql: &str) {
        self.text(sql, None).await;
    }

    /// `SELECT count() FROM table`.
    pub async fn count(&self, table: &str) -> u64 {
        let rows = self.rows(&format!("SELECT count() AS n FROM {table}")).await;
        cell(&rows[0], "n")
    }
}

/// The rows of a `JSONEachRow` answer.
fn parse_rows(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON row {l:?}: {e}")))
        .collect()
}
