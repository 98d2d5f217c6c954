//! Test harness: a real ClickHouse engine (the shared chDB-backed server of `promptlog-testkit`, or the
//! server named by `PROMPTLOG_TEST_CLICKHOUSE_URL`) and an in-process collector on port 0.

use std::path::Path;
use std::time::{Duration, Instant};

use promptlog::config::Config;
use promptlog::storage::clickhouse::{Store, schema};
use promptlog_testkit::gate::{self, Shared};
use promptlog_testkit::{Row, Sql, shared_clickhouse_url};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::support::sdk;

fn unique_database() -> String {
    let bytes = promptlog_otlp::random_bytes::<6>();
    format!("test_{}", const_hex::encode(bytes))
}

/// The join window of [`test_config`].
pub const TEST_JOIN_WINDOW: Duration = Duration::from_secs(2);

/// A test collector config: fast batches, a short join window (calls are held for it, so rows appear
/// after it; duplicate merging stays on as in production), the given ClickHouse and database.
pub fn test_config(url: &str, database: &str, data_dir: &Path) -> Config {
    let mut c = Config::default();
    c.clickhouse.url = url.to_owned();
    c.clickhouse.database = database.to_owned();
    c.receivers.grpc_endpoint = "127.0.0.1:0".into();
    c.receivers.http_endpoint = "127.0.0.1:0".into();
    c.pipeline.batch_max_delay = Duration::from_millis(200);
    c.pipeline.join_window = TEST_JOIN_WINDOW;
    c.data_dir = data_dir.to_owned();
    // The explorer's own listener only where a suite asks for it (`explorer_ui`).
    c.ui.enabled = false;
    c
}

/// A store on the shared ClickHouse, in a fresh database (`{prefix}_<random>`) with every migration
/// applied: for tests that write rows directly, without a collector.
pub async fn migrated_store(prefix: &str) -> Store {
    let db = format!("{prefix}_{}", const_hex::encode(promptlog_otlp::random_bytes::<4>()));
    let store = Store::new(&test_config(&shared_clickhouse_url(), &db, Path::new(".")).clickhouse);
    schema::migrate(&store).await.unwrap();
    store
}

/// ClickHouse + a running collector writing to a fresh database.
pub struct Stack {
    pub config: Config,
    pub grpc_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    /// The explorer's address, when the config has `ui.enabled`.
    pub ui_addr: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
    sql: Sql,
    /// The fault suite, which needs the machine to itself, waits while any stack runs.
    _shared: Shared,
}

impl Stack {
    /// Starts a stack with the default test config.
    pub async fn start() -> Stack {
        Self::start_with(|_| {}).await
    }

    /// Starts a stack after letting `tweak` adjust the config.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Stack {
        let shared = gate::shared().await;
        let url = shared_clickhouse_url();
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(&url, &unique_database(), data.path());
        tweak(&mut config);
        schema::migrate(&Store::new(&config.clickhouse)).await.expect("migrations");
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ui = match config.ui.enabled {
            true => Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
            false => None,
        };
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let ui_addr = ui.as_ref().map(|l| l.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let listeners = promptlog::Listeners { grpc, http, ui };
        tokio::spawn({
            let (config, shutdown) = (config.clone(), shutdown.clone());
            async move { promptlog::serve(config, listeners, shutdown).await.expect("serve") }
        });
        let sql = Sql::new(&url, &config.clickhouse.database);
        Stack { config, grpc_addr, http_addr, ui_addr, shutdown, _data: data, sql, _shared: shared }
    }

    pub fn otlp_http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The explorer's base URL (the config must have `ui.enabled`).
    pub fn ui_url(&self) -> String {
        format!("http://{}", self.ui_addr.expect("the stack serves the explorer (ui.enabled)"))
    }

    pub fn otlp_grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// SQL on the stack's database.
    pub fn sql(&self) -> &Sql {
        &self.sql
    }

    /// Runs `sql` and returns its rows (JSONEachRow).
    pub async fn query_json(&self, sql: &str) -> Vec<Row> {
        self.sql.rows(sql).await
    }

    /// Runs a statement.
    pub async fn exec(&self, sql: &str) {
        self.sql.exec(sql).await;
    }

    /// Runs `sql` every 200 ms until `done` accepts its rows or `within` passes; returns the last rows
    /// (rows are held for the join window before they are written, so a fixed sleep would be a guess).
    pub async fn poll(&self, sql: &str, within: Duration, done: impl Fn(&[Row]) -> bool) -> Vec<Row> {
        let started = Instant::now();
        loop {
            let rows = self.query_json(sql).await;
            if done(&rows) || started.elapsed() > within {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `SELECT count() FROM table`.
    pub async fn count(&self, table: &str) -> u64 {
        self.sql.count(table).await
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
        let reply = sdk::post_otlp(&self.otlp_http_url(), path, content_type, body, gzip).await;
        (reply.status, reply.content_type, reply.body)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
