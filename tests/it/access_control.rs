//! The accounts of `promptlog grants`, enforced by the real ClickHouse engine (chDB).
//!
//! chDB cannot run the SQL form (no writable access storage, no `EXECUTE AS`; see
//! tests/it/privilege.rs and tests/chdb_server/README.md), but it enforces a users.xml: the same
//! accounts from `grants::users_xml` (same privileges, profile and row conditions as the SQL), one
//! account per server process (`server.py --users-xml F --as-user NAME`, which also checks the HTTP
//! user and password). An admin server prepares the data first, on the same data directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use promptlog::config::{Config, ProjectReader, Secret};
use promptlog::storage::clickhouse::{Store, grants, schema};
use prost::Message;

const DB: &str = "promptlog_acl";
const WRITER: (&str, &str) = ("promptlog_collector", "writer-secret");
const GRAFANA: (&str, &str) = ("promptlog_grafana", "grafana-secret");
const ACME: (&str, &str) = ("grafana_acme", "acme-secret");

struct Server {
    url: String,
    child: Child,
}

impl Server {
    /// A chDB server on `data_dir`, as the admin (`account` None) or as one users.xml account.
    fn start(data_dir: &Path, account: Option<(&Path, &str)>) -> Server {
        let mut cmd = Command::new(promptlog_testkit::python());
        cmd.arg(promptlog_testkit::repo_root().join("tests/chdb_server/server.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(["--parent-pid", &std::process::id().to_string()]);
        if let Some((users_xml, user)) = account {
            cmd.arg("--users-xml").arg(users_xml).args(["--as-user", user]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("chDB server said {line:?}")).to_owned();
        Server { url, child }
    }

    /// Runs `sql` as `user` (Basic auth, as curl and Grafana's HTTP mode send it) with `settings`.
    async fn run(&self, user: (&str, &str), sql: &str, settings: &[(&str, &str)]) -> (u16, String) {
        let mut params = vec![("database", DB), ("default_format", "TSV")];
        params.extend_from_slice(settings);
        let resp = reqwest::Client::new()
            .post(&self.url)
            .basic_auth(user.0, Some(user.1))
            .query(&params)
            .body(sql.to_owned())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn ok(&self, user: (&str, &str), sql: &str, settings: &[(&str, &str)]) -> String {
        let (status, body) = self.run(user, sql, settings).await;
        assert_eq!(status, 200, "{} could not run {sql}: {body}", user.0);
        body
    }

    /// Asserts `sql` fails for `user` with ClickHouse error `code`.
    async fn refused(&self, user: (&str, &str), sql: &str, settings: &[(&str, &str)], code: &str) {
        let (status, body) = self.run(user, sql, settings).await;
        assert_ne!(status, 200, "{} could run {sql}", user.0);
        assert!(body.contains(code), "{} running {sql}: expected {code}, got {status}: {body}", user.0);
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(url: &str) -> Config {
    let mut c = Config::default();
    c.clickhouse.url = url.into();
    c.clickhouse.database = DB.into();
    c.clickhouse.user = WRITER.0.into();
    c.clickhouse.password = WRITER.1.into();
    c.access.reader_user = GRAFANA.0.into();
    c.access.reader_password = Secret(GRAFANA.1.into());
    c.access.project_readers = vec![
        ProjectReader { project: "acme".into(), user: ACME.0.into(), password: Secret(ACME.1.into()) },
        ProjectReader { project: "beta".into(), user: "grafana_beta".into(), password: Secret("beta-secret".into()) },
    ];
    c.validate().unwrap();
    c
}

/// The plugin's settings on every query (`queryTimeout` of grafana/provisioning is 60 s).
const PLUGIN: &[(&str, &str)] = &[("max_execution_time", "60")];

/// A dashboard-style query (the Overview "calls per model" shape, macros expanded).
const DASHBOARD_SQL: &str = "SELECT toStartOfInterval(toDateTime(Timestamp), INTERVAL 60 second) AS time, \
     RequestModel, count() AS calls FROM llm_calls WHERE Timestamp >= now() - INTERVAL 6 HOUR \
     GROUP BY time, RequestModel ORDER BY time";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_reader_cannot_write_and_project_readers_see_only_their_rows() {
    let _shared = promptlog_testkit::gate::shared().await; // not while the fault suite runs
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Admin: the collector's schema, a ProjectId column (migration 0007 of the auth work; IF NOT
    // EXISTS keeps this harmless once it is merged), and rows of two projects.
    let admin = Server::start(&data, None);
    let mut c = config(&admin.url);
    c.clickhouse.user = "default".into();
    schema::migrate(&Store::new(&c.clickhouse)).await.unwrap();
    for t in ["llm_calls", "otel_traces", "otel_logs"] {
        let sql =
            format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS ProjectId LowCardinality(String) DEFAULT 'default'");
        admin.ok(("default", ""), &sql, &[]).await;
    }
    let rows = "('acme', 'gpt-4o'), ('acme', 'gpt-4o'), ('beta', 'claude'), ('beta', 'claude'), ('beta', 'o3')";
    let insert =
        format!("INSERT INTO llm_calls (Timestamp, ProjectId, RequestModel) SELECT now64(9), * FROM values({rows})");
    admin.ok(("default", ""), &insert, &[]).await;
    admin.stop();
    let users_xml = tmp.path().join("users.xml");
    std::fs::write(&users_xml, grants::users_xml(&config("http://unused")).unwrap()).unwrap();

    // Grafana's reader.
    let s = Server::start(&data, Some((&users_xml, GRAFANA.0)));
    s.refused((GRAFANA.0, "wrong"), "SELECT 1", &[], "AUTHENTICATION_FAILED").await;
    s.refused((WRITER.0, WRITER.1), "SELECT 1", &[], "AUTHENTICATION_FAILED").await;
    assert_eq!(s.ok(GRAFANA, "SELECT count() FROM llm_calls", PLUGIN).await, "5\n");
    let dashboard = s.ok(GRAFANA, DASHBOARD_SQL, PLUGIN).await;
    assert_eq!(dashboard.lines().count(), 3, "{dashboard}");
    let schema_browse =
        s.ok(GRAFANA, "SELECT name FROM system.tables WHERE database = currentDatabase()", PLUGIN).await;
    assert!(schema_browse.contains("llm_calls"), "{schema_browse}");
    s.refused(GRAFANA, "INSERT INTO llm_calls (ProjectId) VALUES ('acme')", PLUGIN, "ACCESS_DENIED").await;
    s.refused(GRAFANA, "ALTER TABLE llm_calls ADD COLUMN Evil String", PLUGIN, "ACCESS_DENIED").await;
    s.refused(GRAFANA, "ALTER TABLE llm_calls DELETE WHERE 1", PLUGIN, "ACCESS_DENIED").await;
    s.refused(GRAFANA, "CREATE TABLE t (a Int8) ENGINE = Memory", PLUGIN, "ACCESS_DENIED").await;
    s.refused(GRAFANA, "DROP TABLE llm_calls", PLUGIN, "ACCESS_DENIED").await;
    // readonly = 2 lets the plugin set max_execution_time, within the profile's bounds only.
    s.refused(GRAFANA, "SELECT 1", &[("max_execution_time", "100000")], "SETTING_CONSTRAINT_VIOLATION").await;
    s.refused(GRAFANA, "SELECT 1", &[("max_memory_usage", "0")], "SETTING_CONSTRAINT_VIOLATION").await;
    assert_eq!(s.ok(GRAFANA, "SELECT getSetting('readonly')", PLUGIN).await, "2\n");
    s.stop();

    // A per-project reader: its rows only, its tables only.
    let s = Server::start(&data, Some((&users_xml, ACME.0)));
    assert_eq!(s.ok(ACME, "SELECT DISTINCT ProjectId FROM llm_calls", PLUGIN).await, "acme\n");
    assert_eq!(s.ok(ACME, "SELECT count() FROM llm_calls WHERE ProjectId = 'beta'", PLUGIN).await, "0\n");
    assert_eq!(s.ok(ACME, DASHBOARD_SQL, PLUGIN).await.lines().count(), 1);
    s.refused(ACME, "SELECT * FROM otel_traces_trace_id_ts", PLUGIN, "ACCESS_DENIED").await;
    s.refused(ACME, "SELECT * FROM collector_stats", PLUGIN, "ACCESS_DENIED").await;
    s.refused(ACME, "INSERT INTO llm_calls (ProjectId) VALUES ('acme')", PLUGIN, "ACCESS_DENIED").await;
    s.stop();

    // The collector's writer: the real collector migrates and inserts as it; nothing beyond that.
    let s = Server::start(&data, Some((&users_xml, WRITER.0)));
    let stack = crate::support::stack::Stack::start_with(|cfg| {
        cfg.clickhouse = config(&s.url).clickhouse;
    })
    .await;
    let span = promptlog_otlp::span(
        "chat gpt-4o",
        promptlog_otlp::now_ns(),
        3,
        vec![promptlog_otlp::kv("gen_ai.system", "openai")],
    );
    let body = promptlog_otlp::traces_request(promptlog_otlp::resource("acl", "test"), vec![span]).encode_to_vec();
    assert_eq!(stack.post_otlp("/v1/traces", "application/x-protobuf", body, false).await.0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.ok(WRITER, "SELECT count() FROM otel_traces", &[]).await != "1\n" {
        assert!(std::time::Instant::now() < deadline, "the collector's span never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(stack);
    assert_eq!(s.ok(WRITER, "SELECT count() FROM llm_calls", &[]).await, "5\n", "the writer sees every project");
    s.refused(WRITER, "DROP TABLE llm_calls", &[], "ACCESS_DENIED").await;
    s.refused(WRITER, "CREATE TABLE default.t (a Int8) ENGINE = Memory", &[], "ACCESS_DENIED").await;
    s.refused(WRITER, "CREATE USER intruder", &[], "ACCESS_DENIED").await;
    s.stop();
}
