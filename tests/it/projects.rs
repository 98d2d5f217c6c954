//! The project on every row, around the key check: with auth off every row is `default`; migration
//! 0007 keeps rows written before it readable (as `default`); a per-project query uses the
//! `idx_project_id` skip index (`EXPLAIN indexes = 1`) instead of reading other projects' granules; and
//! a spooled request replayed by a restarted collector keeps the project of the key it came with; and
//! every dashboard has a project variable that every query on a project table uses (the queries run,
//! per project, in `grafana::dashboards_and_alerts_on_seeded_data`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use promptlog::config::Config;
use promptlog::config::auth::parse_dev_keys;
use promptlog::storage::clickhouse::{Store, schema};
use promptlog_otlp::{kv, now_ns, resource, span, traces_request};
use promptlog_testkit::{Sql, cell, free_port, gate, shared_clickhouse_url};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::grafana::dashboards;
use crate::support::sdk;
use crate::support::stack::{Stack, test_config};

/// The tables with a `ProjectId` column.
const TABLES: [&str; 3] = ["otel_traces", "otel_logs", "llm_calls"];

fn unique_database(prefix: &str) -> String {
    format!("{prefix}_{}", const_hex::encode(promptlog_otlp::random_bytes::<6>()))
}

fn chat_request(service: &str) -> ExportTraceServiceRequest {
    let attrs = vec![kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", "m")];
    traces_request(resource(service, "test"), vec![span("chat m", now_ns(), 5, attrs)])
}

async fn post_traces(http: SocketAddr, service: &str, headers: &[(&str, &str)]) -> sdk::HttpReply {
    let mut all = vec![("content-type", sdk::Enc::Proto.content_type())];
    all.extend_from_slice(headers);
    sdk::post(&format!("http://{http}"), "/v1/traces", &all, sdk::Enc::Proto.encode(&chat_request(service))).await
}

async fn health(http: SocketAddr) -> Value {
    reqwest::get(format!("http://{http}/health")).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_off_every_request_is_the_default_project() {
    let stack = Stack::start().await;
    let h = health(stack.http_addr).await;
    assert_eq!((h["auth"].as_str(), h["api_keys"].as_u64()), (Some("off"), Some(0)), "{h}");
    let reply = post_traces(stack.http_addr, "auth-off", &[("authorization", "Bearer whatever")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(post_traces(stack.http_addr, "auth-off", &[]).await.status, 200);
    stack.wait_for_count("llm_calls", 2).await;
    for table in TABLES.iter().filter(|t| **t != "otel_logs") {
        let rows = stack.query_json(&format!("SELECT DISTINCT ProjectId FROM {table}")).await;
        assert_eq!(rows.len(), 1, "{table}: {rows:?}");
        assert_eq!(cell::<String>(&rows[0], "ProjectId"), "default", "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_0007_keeps_existing_rows_readable_as_default() {
    let _shared = gate::shared().await;
    let url = shared_clickhouse_url();
    let database = unique_database("test_upgrade");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(&test_config(&url, &database, dir.path()).clickhouse);
    schema::migrate_to(&store, 6).await.expect("migrations 1-6");
    let sql = Sql::new(&url, &database);
    for table in TABLES {
        sql.exec(&format!("INSERT INTO {table} (Timestamp, ServiceName, TraceId) VALUES (now64(9), 'before', 't')"))
            .await;
        let columns = sql.rows(&format!("SELECT name FROM system.columns WHERE database = '{database}' AND table = '{table}' AND name = 'ProjectId'")).await;
        assert!(columns.is_empty(), "{table} has ProjectId before 0007");
    }
    assert_eq!(schema::migrate_to(&store, 7).await.unwrap(), [7]);
    // Later migrations (e.g. 0008) apply on top; then nothing is left to apply.
    schema::migrate(&store).await.unwrap();
    assert_eq!(schema::migrate(&store).await.unwrap(), Vec::<u32>::new(), "applied once");
    for table in TABLES {
        let rows = sql.rows(&format!("SELECT ProjectId, ServiceName, TraceId FROM {table}")).await;
        assert_eq!(rows.len(), 1, "{table}");
        assert_eq!(cell::<String>(&rows[0], "ProjectId"), "default", "{table}");
        assert_eq!(cell::<String>(&rows[0], "ServiceName"), "before", "{table}");
        // The new column comes first; the old ones are untouched.
        let first = sql.rows(&format!("SELECT name FROM system.columns WHERE database = '{database}' AND table = '{table}' ORDER BY position LIMIT 2")).await;
        let names: Vec<String> = first.iter().map(|r| cell(r, "name")).collect();
        assert_eq!(names, ["ProjectId", "Timestamp"], "{table}");
    }
    sql.exec(&format!("DROP DATABASE `{database}`")).await;
}

/// `Granules: selected/total` of the `idx_project_id` step of an `EXPLAIN indexes = 1` plan.
fn skip_index_granules(plan: &str) -> Option<(u64, u64)> {
    let mut lines = plan.lines().skip_while(|l| !l.contains("Name: idx_project_id"));
    lines.next()?;
    let granules = lines.find(|l| l.contains("Granules:"))?;
    let (selected, total) = granules.split_once("Granules:")?.1.trim().split_once('/')?;
    Some((selected.trim().parse().ok()?, total.trim().parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_project_query_skips_the_granules_of_other_projects() {
    let stack = Stack::start().await;
    for table in TABLES {
        // One part: 40 000 rows of a big project, then 100 of a small one (sorted by service).
        stack
            .exec(&format!(
                "INSERT INTO {table} (ProjectId, Timestamp, ServiceName) SELECT if(number < 40000, 'big', 'small'), \
                 now64(9), if(number < 40000, 'svc-big', 'svc-small') FROM numbers(40100)"
            ))
            .await;
        let query = format!("SELECT count() AS n FROM {table} WHERE ProjectId = 'small'");
        let plan = stack.sql().text(&format!("EXPLAIN indexes = 1 {query}"), None).await;
        let (selected, total) =
            skip_index_granules(&plan).unwrap_or_else(|| panic!("{table}: idx_project_id not used:\n{plan}"));
        assert!(total >= 4 && selected == 1, "{table}: the index kept {selected} of {total} granules:\n{plan}");
        // ClickHouse refuses to run it at all if the index could not be used.
        let rows = stack.query_json(&format!("{query} SETTINGS force_data_skipping_indices = 'idx_project_id'")).await;
        assert_eq!(cell::<u64>(&rows[0], "n"), 100, "{table}");
    }
}

/// A collector on `config` (port 0), until the returned token is cancelled.
async fn collector(config: Config) -> (SocketAddr, CancellationToken, JoinHandle<()>) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            promptlog::serve(config, promptlog::Listeners { grpc, http, ui: None }, shutdown).await.expect("serve")
        }
    });
    (addr, shutdown, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_replayed_after_a_restart_keeps_the_project_of_its_key() {
    let _shared = gate::shared().await;
    let url = shared_clickhouse_url();
    let database = unique_database("test_replay_project");
    let data = tempfile::tempdir().unwrap();
    // First run: keys on, ClickHouse unreachable, so the accepted requests stay in the spool.
    let mut first = test_config(&format!("http://127.0.0.1:{}", free_port()), &database, data.path());
    first.auth.dev_keys = parse_dev_keys("acme:pl_replay_acme,beta:pl_replay_beta").unwrap();
    first.pipeline.shutdown_timeout = Duration::from_secs(1);
    let (http, shutdown, task) = collector(first).await;
    for (key, service) in [("pl_replay_acme", "replay-acme"), ("pl_replay_beta", "replay-beta")] {
        let reply = post_traces(http, service, &[("authorization", &format!("Bearer {key}"))]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!(post_traces(http, "replay-nokey", &[]).await.status, 401);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), task).await.expect("stopped").unwrap();
    // Second run: auth off (the project must come from the spool record, not from this run's keys).
    let second = test_config(&url, &database, data.path());
    let (http, shutdown, task) = collector(second).await;
    let sql = Sql::new(&url, &database);
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = sql
            .try_rows_with("SELECT ServiceName, ProjectId FROM llm_calls ORDER BY ServiceName", &[])
            .await
            .unwrap_or_default();
        if rows.len() >= 2 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let got: Vec<(String, String)> = rows.iter().map(|r| (cell(r, "ServiceName"), cell(r, "ProjectId"))).collect();
    let want = [("replay-acme", "acme"), ("replay-beta", "beta")].map(|(s, p)| (s.to_owned(), p.to_owned()));
    assert_eq!(got, want);
    let traces = sql.rows("SELECT DISTINCT ProjectId FROM otel_traces ORDER BY ProjectId").await;
    let traces: Vec<String> = traces.iter().map(|r| cell(r, "ProjectId")).collect();
    assert_eq!(traces, ["acme", "beta"]);
    assert!(health(http).await["spool"]["replayed"].as_u64().unwrap() >= 2);
    shutdown.cancel();
    task.await.unwrap();
    sql.exec(&format!("DROP DATABASE `{database}`")).await;
}

/// The filter every query on a project table carries (with `All`, `$__conditionalAll` makes it `1=1`).
const PROJECT_FILTER: &str = "$__conditionalAll(ProjectId IN (${project:singlequote}), $project)";

/// How many times `sql` reads a project table (`FROM <table>`, or `FROM $rollup`: the llm_calls rollup the
/// hidden `rollup` variable names).
fn project_table_reads(sql: &str) -> usize {
    // The metrics tables (otel_metrics_*), the rollups and `scores` carry ProjectId too.
    let project_table = |rest: &str| {
        let rest = rest.trim_start();
        TABLES.iter().chain(&["$rollup", "scores "]).any(|t| rest.starts_with(t)) || rest.starts_with("otel_metrics_")
    };
    sql.split("FROM").skip(1).filter(|rest| project_table(rest)).count()
}

#[test]
fn every_dashboard_has_a_project_variable_and_every_project_table_query_uses_it() {
    let mut problems = Vec::new();
    let mut collector_wide = 0;
    for (file, dash) in dashboards() {
        let vars = dash["templating"]["list"].as_array().unwrap();
        match vars.iter().find(|v| v["name"] == "project") {
            Some(v) => {
                let ok = v["type"] == "query"
                    && v["includeAll"] == true
                    && v["multi"] == true
                    && v["current"]["value"][0] == "$__all"
                    && (v["query"].as_str().unwrap().contains("DISTINCT ProjectId FROM llm_calls")
                        || (file == "metrics.json"
                            && v["query"]
                                .as_str()
                                .unwrap()
                                .contains("DISTINCT ProjectId FROM otel_metrics_histogram")));
                if !ok {
                    problems.push(format!("{file}: the project variable is not a multi-value query with All"));
                }
            }
            None => problems.push(format!("{file}: no project variable")),
        }
        let mut queries: Vec<(String, &str)> = Vec::new();
        for p in dash["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
            for t in p["targets"].as_array().unwrap() {
                queries.push((format!("panel {}", p["title"]), t["rawSql"].as_str().unwrap()));
            }
        }
        // `rollup` / `rollup_s` only pick a table name and step from the time range; they read no table.
        let reads_data = |v: &&Value| !matches!(v["name"].as_str(), Some("project" | "rollup" | "rollup_s"));
        for v in vars.iter().filter(|v| v["type"] == "query").filter(reads_data) {
            queries.push((format!("variable {}", v["name"]), v["query"].as_str().unwrap()));
        }
        for (what, sql) in queries {
            let reads = project_table_reads(sql);
            if reads == 0 {
                // collector_stats: the collector's own counters, not any project's data.
                assert!(sql.contains("FROM collector_stats"), "{file} {what} reads no known table");
                collector_wide += 1;
            } else if sql.matches(PROJECT_FILTER).count() != reads {
                problems.push(format!("{file} {what}: {reads} project-table reads, not all filtered on $project"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // 12 panels and the instance variable.
    assert_eq!(collector_wide, 13, "only the collector dashboard's collector_stats queries are project-wide");
}
