use super::*;
use crate::storage::clickhouse::schema::{MIGRATIONS_TABLE, Plan};

const GOLDEN: &str = include_str!("cluster.golden.sql");

fn plan(cluster: Option<&str>) -> Plan {
    Plan::for_settings("promptlog", 30, "", cluster).unwrap()
}

/// The cluster DDL `promptlog migrate --print` shows, as one text.
pub(crate) fn cluster_ddl() -> Vec<String> {
    plan(Some("promptlog_cluster")).all_statements().unwrap()
}

#[test]
fn generated_cluster_ddl_matches_the_golden_file() {
    let shown: String = cluster_ddl().iter().map(|s| format!("{s};\n\n")).collect();
    crate::storage::clickhouse::assert_golden("cluster.golden.sql", GOLDEN, &shown);
}

#[test]
fn single_server_statements_are_the_migrations_unchanged() {
    let plan = plan(None);
    for m in MIGRATIONS {
        assert_eq!(plan.migration(m).unwrap(), statements(&render(m.sql, "promptlog", 30, "")), "{}", m.name);
    }
    assert!(plan.all_statements().unwrap().iter().all(|s| !s.contains("ON CLUSTER") && !s.contains("Replicated")));
}

#[test]
fn every_table_is_replicated_and_sharded_behind_a_distributed_table() {
    let ddl = ClusterDdl::new("promptlog", "c").unwrap();
    assert!(ddl.tables.len() >= 12, "{:?}", ddl.tables.keys());
    let all = plan(Some("c")).all_statements().unwrap();
    for (table, key) in &ddl.tables {
        let local = all
            .iter()
            .find(|s| s.contains(&format!("CREATE TABLE IF NOT EXISTS `promptlog`.{table}_local ON CLUSTER `c` (")))
            .unwrap_or_else(|| panic!("{table}: no local table"));
        assert!(
            local.contains("ENGINE = Replicated")
                && local.contains("MergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"),
            "{local}"
        );
        assert!(!local.contains("non_replicated_deduplication_window"), "{local}");
        let distributed = format!(
            "CREATE TABLE IF NOT EXISTS `promptlog`.{table} ON CLUSTER `c` AS `promptlog`.{table}_local \
             ENGINE = Distributed('c', 'promptlog', '{table}_local', {key})"
        );
        assert!(all.contains(&distributed), "{table}: no {distributed}");
        assert!(!key.contains("rand"), "{table}: a retried batch must reach the same shards");
    }
    assert_eq!(ddl.tables["otel_traces"], "cityHash64(TraceId)");
    assert_eq!(ddl.tables["otel_logs"], "cityHash64(TraceId)");
    assert_eq!(ddl.tables["llm_calls"], "cityHash64(TraceId)");
    assert_eq!(ddl.tables["otel_traces_trace_id_ts"], "cityHash64(TraceId)");
    assert_eq!(ddl.tables["collector_stats"], "cityHash64(Instance, Signal, Timestamp)");
    // The migrations table and the lock: on every node, no Distributed table, no shard in the path.
    for table in [MIGRATIONS_TABLE, super::super::migrate_lock::LOCK_TABLE] {
        let create = all.iter().find(|s| s.contains(&format!("`promptlog`.{table} ON CLUSTER"))).unwrap();
        assert!(create.contains("('/clickhouse/tables/{database}/{table}', '{shard}-{replica}'"), "{create}");
        assert!(!all.iter().any(|s| s.contains(&format!("'{table}_local'"))), "{table}");
    }
}

#[test]
fn views_alters_and_backfills_use_the_right_tables() {
    let all = plan(Some("c")).all_statements().unwrap();
    let views: Vec<_> = all.iter().filter(|s| s.contains("CREATE MATERIALIZED VIEW")).collect();
    assert_eq!(views.len(), 3);
    for v in &views {
        assert!(v.contains(" ON CLUSTER `c`\nTO `promptlog`.") && v.contains("_local\nAS SELECT"), "{v}");
        assert!(
            v.contains("FROM `promptlog`.otel_traces_local") || v.contains("FROM `promptlog`.llm_calls_local AS c"),
            "{v}"
        );
    }
    assert!(all.iter().any(|s| s == "TRUNCATE TABLE IF EXISTS `promptlog`.`llm_calls_1m_local` ON CLUSTER `c`"));
    let backfill = all.iter().find(|s| s.starts_with("INSERT INTO `promptlog`.llm_calls_1h ")).unwrap();
    assert!(backfill.starts_with("INSERT INTO `promptlog`.llm_calls_1h SETTINGS insert_distributed_sync = 1\nSELECT"));
    assert!(backfill.contains("FROM `promptlog`.llm_calls AS c"), "reads every shard: {backfill}");
    // A column change re-creates the Distributed table from the local one; an index change does not.
    let at = all
        .iter()
        .position(|s| {
            s.contains("ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `c` ADD COLUMN IF NOT EXISTS Redactions")
        })
        .unwrap();
    assert!(
        all[at + 1]
            .starts_with("CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `c` AS `promptlog`.llm_calls_local")
    );
    let materialize = all.iter().position(|s| s.contains("MATERIALIZE INDEX idx_project_id")).unwrap();
    assert!(!all[materialize + 1].starts_with("CREATE OR REPLACE"), "{}", all[materialize + 1]);
    // Retention goes to the local tables of every node.
    assert!(all.iter().any(|s| s.starts_with("ALTER TABLE `promptlog`.`otel_traces_local` ON CLUSTER `c` MODIFY TTL")));
}

#[test]
fn a_new_migrations_table_is_rewritten_without_changes_to_the_rewriter() {
    // The shape of a later migration (0021's scores table): a Replacing engine with arguments.
    let ddl = ClusterDdl::new("db", "c").unwrap();
    let sql = "-- Scores.\nCREATE TABLE IF NOT EXISTS `db`.scores (\n    ProjectId LowCardinality(String),\n    \
               ScoreId String,\n    Version UInt64,\n    IsDeleted UInt8,\n    TraceId String,\n    \
               INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1\n) ENGINE = ReplacingMergeTree(Version, IsDeleted)\n\
               ORDER BY (ProjectId, ScoreId)\nSETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000";
    let out = ddl.rewrite(sql).unwrap();
    assert_eq!(out.len(), 2);
    assert!(out[0].contains(
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', Version, IsDeleted)"
    ));
    assert!(out[0].ends_with("replicated_deduplication_window = 10000") && !out[0].contains("non_replicated"));
    // A replacement or tombstone must reach the shard of the row it replaces: sharded by the sorting
    // key, not by TraceId.
    assert!(
        out[1].ends_with("ENGINE = Distributed('c', 'db', 'scores_local', cityHash64(ProjectId, ScoreId))"),
        "{}",
        out[1]
    );
}

#[test]
fn statements_it_cannot_rewrite_are_refused() {
    let ddl = ClusterDdl::new("db", "c").unwrap();
    for sql in [
        "DROP TABLE `db`.llm_calls",
        "CREATE VIEW IF NOT EXISTS `db`.v AS SELECT 1",
        "ALTER TABLE `db`.not_a_table ADD COLUMN x String",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS `db`.v AS SELECT 1 FROM `db`.llm_calls",
        "CREATE TABLE IF NOT EXISTS `db`.t (x String) ENGINE = Memory",
        "CREATE TABLE IF NOT EXISTS other.t (x String) ENGINE = MergeTree ORDER BY x",
    ] {
        assert!(ddl.rewrite(sql).is_err(), "{sql}");
    }
}

#[test]
fn sharding_keys_follow_the_order_by_without_trace_id() {
    assert_eq!(sharding_key("(x String, y UInt8) ENGINE = MergeTree ORDER BY y").unwrap(), "cityHash64(y)");
    assert_eq!(sharding_key("(TraceId String, y UInt8) ENGINE = MergeTree ORDER BY y").unwrap(), "cityHash64(TraceId)");
    let summing = "(TraceId String, y UInt8) ENGINE = SummingMergeTree ORDER BY (y, TraceId)";
    assert_eq!(sharding_key(summing).unwrap(), "cityHash64(y, TraceId)");
    assert_eq!(
        sharding_key("(x String, `Exemplars.TraceId` Array(String)) ENGINE = MergeTree\nORDER BY (x, toDate(t))\n")
            .unwrap(),
        "cityHash64(x, toDate(t))"
    );
    assert_eq!(split_top_level("a, f(b, c), 'x,y'"), ["a", "f(b, c)", "'x,y'"]);
}
