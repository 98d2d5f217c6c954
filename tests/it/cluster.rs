//! Cluster mode and many collectors (issue 16), as far as one machine without Keeper can check:
//! - every statement `promptlog migrate --print` produces, in cluster and single-server mode, is parsed
//!   by the ClickHouse engine (`formatQuery` through the chDB server), and the engine's own rendering
//!   keeps the `ON CLUSTER`, `Replicated*` and `Distributed` parts;
//! - several collectors migrating one database at once: exactly one applies, the others wait and
//!   go on, and a lock holder that went silent is taken over;
//! - `compose.cluster.yaml`: every mounted file exists and every service is wired.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use promptlog_testkit::{Sql, shared_clickhouse_url};

/// `promptlog <args>` with only `env` set, to completion.
fn promptlog(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promptlog"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run promptlog")
}

/// The statements of `promptlog migrate --print` (comment lines dropped).
fn printed_ddl(env: &[(&str, &str)]) -> Vec<String> {
    let out = promptlog(&["migrate", "--print"], env);
    assert!(out.status.success(), "migrate --print: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.split(";\n\n")
        .map(|s| s.lines().filter(|l| !l.starts_with("-- ")).collect::<Vec<_>>().join("\n"))
        .filter(|s| !s.trim().is_empty())
        .collect()
}

/// A ClickHouse string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[tokio::test]
async fn every_printed_statement_parses_in_the_clickhouse_engine() {
    let _shared = promptlog_testkit::gate::shared().await;
    let sql = Sql::new(&shared_clickhouse_url(), "default").with_timeout(Duration::from_secs(30));
    let cluster = printed_ddl(&[("PROMPTLOG_CLICKHOUSE_CLUSTER", "promptlog_cluster")]);
    let single = printed_ddl(&[]);
    assert!(cluster.len() > single.len(), "cluster mode adds the Distributed tables");
    let (mut replicated, mut distributed) = (0, 0);
    for s in &cluster {
        let formatted = sql
            .try_text(&format!("SELECT formatQuery({})", literal(s)), Some("TSVRaw"))
            .await
            .unwrap_or_else(|e| panic!("the engine cannot parse:\n{s}\n{e}"));
        let is_ddl = !s.starts_with("INSERT INTO");
        assert_eq!(formatted.contains("ON CLUSTER promptlog_cluster"), is_ddl, "{formatted}");
        if formatted.contains("ENGINE = Replicated") {
            replicated += 1;
            // Replacing engines take their version (and is-deleted) columns after the replica name.
            let replica = ["'{replica}')", "'{replica}', ", "'{shard}-{replica}')", "'{shard}-{replica}', "];
            assert!(replica.iter().any(|r| formatted.contains(r)), "{formatted}");
            assert!(formatted.contains("{database}/{table}'"), "Keeper path with database and table: {formatted}");
        }
        if formatted.contains("ENGINE = Distributed('promptlog_cluster', 'promptlog', '") {
            distributed += 1;
            assert!(formatted.contains("_local', cityHash64("), "{formatted}");
        }
        assert!(!formatted.contains("ENGINE = MergeTree") && !formatted.contains("ENGINE = AggregatingMergeTree"));
    }
    let created = single.iter().filter(|s| s.starts_with("CREATE TABLE IF NOT EXISTS")).count();
    assert_eq!(replicated, created, "every table is replicated");
    // Every table but the migrations table and its lock gets one at creation (plus re-creations after ALTERs).
    assert!(distributed >= created - 2, "{distributed} Distributed tables for {created} tables");
    for s in &single {
        let formatted = sql.try_text(&format!("SELECT formatQuery({})", literal(s)), Some("TSVRaw")).await;
        let formatted = formatted.unwrap_or_else(|e| panic!("the engine cannot parse:\n{s}\n{e}"));
        assert!(!formatted.contains("ON CLUSTER") && !formatted.contains("Distributed("), "{formatted}");
    }
}

/// A fresh database name.
fn database(name: &str) -> String {
    format!("cluster_{name}_{}", const_hex::encode(promptlog_otlp::random_bytes::<4>()))
}

/// `(versions applied, stderr)` of a finished `promptlog migrate`.
fn applied(out: &Output) -> (usize, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "migrate failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let n = stdout.strip_prefix("applied ").and_then(|s| s.split_whitespace().next()).map(|n| n.parse().unwrap());
    (n.unwrap_or_else(|| panic!("unexpected output {stdout}")), stderr)
}

fn migrate_env(db: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PROMPTLOG_CLICKHOUSE_URL", shared_clickhouse_url()),
        ("PROMPTLOG_CLICKHOUSE_DATABASE", db.to_owned()),
        ("PROMPTLOG_LOG", "info".to_owned()),
    ]
}

/// Starts `promptlog migrate` on `db` (not waited for).
fn spawn_migrate(db: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_promptlog"))
        .arg("migrate")
        .env_clear()
        .envs(migrate_env(db))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promptlog migrate")
}

#[tokio::test]
async fn collectors_migrating_at_once_apply_each_migration_once() {
    let _shared = promptlog_testkit::gate::shared().await;
    let db = database("concurrent");
    let total = printed_ddl(&[]).iter().filter(|s| s.contains(".schema_migrations (Version, Name) VALUES")).count();
    let children: Vec<_> = (0..3).map(|_| spawn_migrate(&db)).collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let results: Vec<(usize, String)> = outputs.iter().map(applied).collect();
    let appliers: Vec<_> = results.iter().filter(|(n, _)| *n > 0).collect();
    assert_eq!(
        appliers.len(),
        1,
        "exactly one collector applies the migrations: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert_eq!(appliers[0].0, total, "the one applies them all");
    let waited = results.iter().filter(|(_, err)| err.contains("Migrations applied by another collector")).count();
    println!("3 concurrent migrate runs: 1 applied {total}, {waited} waited for it");
    let sql = Sql::new(&shared_clickhouse_url(), &db);
    // No version recorded twice (the table is a ReplacingMergeTree: count without FINAL).
    assert_eq!(sql.count("schema_migrations").await, total as u64);
    // The losers' lock rows carried the winner's deduplication token, so only the winner's are stored.
    let holders = sql.text("SELECT uniqExact(Holder) FROM schema_migrations_lock WHERE Attempt = 0", None).await;
    assert_eq!(holders.trim(), "1", "one holder per attempt");
    // A later start finds nothing to do and takes no lock.
    assert_eq!(applied(&spawn_migrate(&db).wait_with_output().unwrap()).0, 0);
}

#[tokio::test]
async fn a_silent_lock_holder_is_taken_over() {
    let _shared = promptlog_testkit::gate::shared().await;
    let db = database("takeover");
    let single = printed_ddl(&[("PROMPTLOG_CLICKHOUSE_DATABASE", db.as_str())]);
    let sql = Sql::new(&shared_clickhouse_url(), "default");
    // The database and the lock table, as `migrate` creates them; then a holder that died a minute ago.
    for s in single.iter().take(3) {
        sql.exec(s).await;
    }
    let last = single.iter().filter(|s| s.contains(".schema_migrations (Version, Name) VALUES")).count();
    sql.exec(&format!(
        "INSERT INTO `{db}`.schema_migrations_lock (Epoch, Attempt, Holder, At) VALUES ('1-{last}', 0, 'dead', now64(3) - INTERVAL 1 MINUTE)"
    ))
    .await;
    let started = Instant::now();
    let (n, stderr) = applied(&spawn_migrate(&db).wait_with_output().unwrap());
    assert_eq!(n, last, "the migrations were applied after the take-over:\n{stderr}");
    assert!(stderr.contains("taking over"), "{stderr}");
    // It waited for the lease of its own attempt-0 row, not forever.
    assert!(started.elapsed() < Duration::from_secs(90), "{:?}", started.elapsed());
}

#[tokio::test]
async fn cluster_mode_refuses_a_database_made_in_single_server_mode() {
    let _shared = promptlog_testkit::gate::shared().await;
    let db = database("mode");
    assert!(applied(&spawn_migrate(&db).wait_with_output().unwrap()).0 > 0);
    let mut env = migrate_env(&db);
    env.push(("PROMPTLOG_CLICKHOUSE_CLUSTER", "promptlog_cluster".to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = promptlog(&["migrate"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("was created in single-server mode") && stderr.contains("Scaling out"), "{stderr}");
}
