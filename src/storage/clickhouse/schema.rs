//! Versioned, idempotent migrations. Each is a SQL file in `migrations/`, applied once, in order, and
//! recorded in `<db>.schema_migrations`. A file may hold several statements, each ending with `;` at the
//! end of a line (ClickHouse's HTTP interface takes one statement per request); each must be idempotent,
//! since a migration interrupted half-way is applied again whole. `{db}` is replaced by the database,
//! `{ttl}` / `{ttl_start}` / `{ttl_time_unix}` (metrics tables) by the retention clause, `{table_settings}` (at the end of every table's SETTINGS
//! clause) by `, storage_policy = '…'` when `clickhouse.storage_policy` is set (e.g. the encrypted disk).
//! Retention is re-applied on every run, so changing it in the config takes
//! effect at the next start.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use promptlog_ingest::Table;
use promptlog_ingest::table::{COLLECTOR_STATS_TABLE, TRACE_ID_TS_TABLE};

use super::cluster::{ClusterDdl, ClusterDdlError, Placement};
use super::{Store, StoreError, migrate_lock};

/// One schema change.
pub(crate) struct Migration {
    /// Increasing version number.
    pub version: u32,
    /// Short name (also the file name).
    pub name: &'static str,
    /// The statement, with placeholders.
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration { version: $version, name: $name, sql: include_str!(concat!("migrations/", $name, ".sql")) }
    };
}

/// Every migration, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_otel_traces"),
    migration!(2, "0002_otel_traces_trace_id_ts"),
    migration!(3, "0003_otel_traces_trace_id_ts_mv"),
    migration!(4, "0004_otel_logs"),
    migration!(5, "0005_llm_calls"),
    migration!(6, "0006_collector_stats"),
    migration!(7, "0007_project_id"),
    migration!(8, "0008_llm_calls_redactions"),
    migration!(9, "0009_llm_calls_duplicate_of"),
    migration!(10, "0010_llm_calls_cost"),
    migration!(11, "0011_llm_calls_prompt"),
    migration!(12, "0012_llm_calls_1m"),
    migration!(13, "0013_llm_calls_1m_mv"),
    migration!(14, "0014_llm_calls_1h"),
    migration!(15, "0015_llm_calls_1h_mv"),
    migration!(16, "0016_otel_metrics_gauge"),
    migration!(17, "0017_otel_metrics_sum"),
    migration!(18, "0018_otel_metrics_histogram"),
    migration!(19, "0019_otel_metrics_exponential_histogram"),
    migration!(20, "0020_otel_metrics_summary"),
    migration!(21, "0021_scores"),
];

/// Tables with a retention TTL, and the column expression it applies to.
const TTL_TABLES: &[(&str, &str)] = &[
    (Table::Traces.name(), "toDateTime(Timestamp)"),
    (TRACE_ID_TS_TABLE, "toDateTime(Start)"),
    (Table::Logs.name(), "toDateTime(Timestamp)"),
    (Table::LlmCalls.name(), "toDateTime(Timestamp)"),
    (COLLECTOR_STATS_TABLE, "toDateTime(Timestamp)"),
    (ROLLUP_TABLES[0], "toDateTime(Timestamp)"),
    (ROLLUP_TABLES[1], "toDateTime(Timestamp)"),
    (Table::MetricsGauge.name(), "toDateTime(TimeUnix)"),
    (Table::MetricsSum.name(), "toDateTime(TimeUnix)"),
    (Table::MetricsHistogram.name(), "toDateTime(TimeUnix)"),
    (Table::MetricsExpHistogram.name(), "toDateTime(TimeUnix)"),
    (Table::MetricsSummary.name(), "toDateTime(TimeUnix)"),
    (Table::Scores.name(), "toDateTime(Timestamp)"),
];

/// The `llm_calls` rollups the dashboards read (per minute, per hour; migrations 0012-0015), filled by
/// materialized views. They carry `ProjectId`, so project readers get them with a row policy.
pub const ROLLUP_TABLES: [&str; 2] = ["llm_calls_1m", "llm_calls_1h"];

/// ClickHouse's BAD_ARGUMENTS: `REMOVE TTL` on a table that has none.
const BAD_ARGUMENTS: u32 = 36;
/// ClickHouse's UNKNOWN_TABLE: a table whose migration is not applied yet ([`migrate_to`] an older
/// version).
const UNKNOWN_TABLE: u32 = 60;

#[derive(Row, Serialize, Deserialize)]
struct AppliedRow {
    #[serde(rename = "Version")]
    version: u32,
}

fn ttl_clause(expr: &str, days: u32) -> String {
    if days == 0 { String::new() } else { format!("TTL {expr} + toIntervalDay({days})") }
}

/// The extra table settings for `storage_policy` (empty: none). The policy is a validated identifier.
fn table_settings(storage_policy: &str) -> String {
    if storage_policy.is_empty() { String::new() } else { format!(", storage_policy = '{storage_policy}'") }
}

/// Renders a migration's SQL for `db` with `retention_days` and `storage_policy`.
pub(crate) fn render(sql: &str, db: &str, retention_days: u32, storage_policy: &str) -> String {
    sql.replace("{db}", &format!("`{db}`"))
        .replace("{table_settings}", &table_settings(storage_policy))
        .replace("{ttl_start}", &ttl_clause("toDateTime(Start)", retention_days))
        .replace("{ttl_time_unix}", &ttl_clause("toDateTime(TimeUnix)", retention_days))
        .replace("{ttl}", &ttl_clause("toDateTime(Timestamp)", retention_days))
}

/// The statements of a rendered migration: split at `;` ending a line, comment-only parts dropped.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let code = line.trim_end();
        let comment = code.trim_start().starts_with("--");
        if let Some(head) = code.strip_suffix(';').filter(|_| !comment) {
            current.push_str(head);
            out.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    out.push(current);
    out.retain(|s| s.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--")));
    out
}

/// The migrations table: which versions are applied (replicated to every node in cluster mode).
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// The single-server statements creating the database, the migrations table and the migration lock.
fn bootstrap_single(db: &str, storage_policy: &str) -> [String; 3] {
    let settings = table_settings(storage_policy);
    [
        format!("CREATE DATABASE IF NOT EXISTS `{db}`"),
        format!(
            "CREATE TABLE IF NOT EXISTS `{db}`.{MIGRATIONS_TABLE} (Version UInt32, Name String, \
             AppliedAt DateTime64(3) DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY Version{}",
            settings.replacen(',', " SETTINGS", 1)
        ),
        migrate_lock::create_table(db, &settings),
    ]
}

/// Where and how the migrations are applied: the database, retention, storage policy and, in cluster
/// mode, the rewriter. One source for `migrate` and `migrate --print`.
pub struct Plan {
    db: String,
    retention_days: u32,
    storage_policy: String,
    cluster: Option<ClusterDdl>,
}

impl Plan {
    /// The plan for `store`'s database and settings (cluster mode when `clickhouse.cluster` is set).
    pub fn new(store: &Store) -> Result<Plan, StoreError> {
        Self::for_settings(store.database(), store.retention_days(), store.storage_policy(), store.cluster())
    }

    /// The plan for explicit settings.
    pub fn for_settings(
        db: &str,
        retention_days: u32,
        storage_policy: &str,
        cluster: Option<&str>,
    ) -> Result<Plan, StoreError> {
        let cluster = cluster.map(|c| ClusterDdl::new(db, c)).transpose()?;
        Ok(Plan { db: db.to_owned(), retention_days, storage_policy: storage_policy.to_owned(), cluster })
    }

    /// The statements creating the database, the migrations table and the migration lock.
    pub(crate) fn bootstrap(&self) -> Result<Vec<String>, StoreError> {
        let (mut out, lock) = self.bootstrap_parts()?;
        out.extend(lock);
        Ok(out)
    }

    /// The bootstrap in two parts: the database and the migrations table (every start), and the lock
    /// table (only needed, so only created, when migrations are pending: an up-to-date database is
    /// started exactly as before, also by a writer not allowed to create tables).
    fn bootstrap_parts(&self) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let [database, migrations, lock] = bootstrap_single(&self.db, &self.storage_policy);
        let Some(cluster) = &self.cluster else { return Ok((vec![database, migrations], vec![lock])) };
        let mut first = vec![cluster.create_database()];
        first.extend(cluster.create_table(&migrations, Placement::Everywhere)?);
        Ok((first, cluster.create_table(&lock, Placement::Everywhere)?))
    }

    /// The statements of migration `m`.
    pub(crate) fn migration(&self, m: &Migration) -> Result<Vec<String>, StoreError> {
        let single = statements(&render(m.sql, &self.db, self.retention_days, &self.storage_policy));
        let Some(cluster) = &self.cluster else { return Ok(single) };
        let mut out = Vec::new();
        for s in &single {
            out.extend(cluster.rewrite(s).map_err(|e| StoreError::Migration {
                version: m.version,
                name: m.name,
                source: Box::new(e.into()),
            })?);
        }
        Ok(out)
    }

    /// The statement recording migration `m` as applied.
    pub(crate) fn record(&self, m: &Migration) -> String {
        format!("INSERT INTO `{}`.{MIGRATIONS_TABLE} (Version, Name) VALUES ({}, '{}')", self.db, m.version, m.name)
    }

    /// The retention statements (one per table), with whether "no TTL to remove" is expected.
    pub(crate) fn retention(&self) -> Vec<String> {
        TTL_TABLES
            .iter()
            .map(|(table, expr)| {
                let target = match &self.cluster {
                    None => format!("`{}`.`{table}`", self.db),
                    Some(c) => c.alter_target(table),
                };
                if self.retention_days == 0 {
                    format!("ALTER TABLE {target} REMOVE TTL")
                } else {
                    format!(
                        "ALTER TABLE {target} MODIFY TTL {} SETTINGS materialize_ttl_after_modify = 0",
                        ttl_clause(expr, self.retention_days).trim_start_matches("TTL ")
                    )
                }
            })
            .collect()
    }

    /// Every statement `migrate` would run on an empty database, in order, with a comment line
    /// before each migration's (`promptlog migrate --print`).
    pub fn all_statements(&self) -> Result<Vec<String>, StoreError> {
        let mut out = self.bootstrap()?;
        for m in MIGRATIONS {
            let mut statements = self.migration(m)?;
            if let Some(first) = statements.first_mut() {
                *first = format!("-- migration {}\n{first}", m.name);
            }
            out.extend(statements);
            out.push(self.record(m));
        }
        out.extend(self.retention());
        Ok(out)
    }
}

/// Applies every pending migration and the configured retention; returns the versions applied now.
pub async fn migrate(store: &Store) -> Result<Vec<u32>, StoreError> {
    migrate_to(store, u32::MAX).await
}

/// The versions up to `last` not yet recorded as applied.
async fn pending(admin: &Store, db: &str, last: u32) -> Result<Vec<&'static Migration>, StoreError> {
    let applied: Vec<AppliedRow> =
        admin.client().query(&format!("SELECT Version FROM `{db}`.{MIGRATIONS_TABLE} FINAL")).fetch_all().await?;
    Ok(MIGRATIONS.iter().filter(|m| m.version <= last && !applied.iter().any(|a| a.version == m.version)).collect())
}

/// Like [`migrate`], applying only the migrations up to version `last` (tests start from an older
/// schema this way, to check that a migration keeps existing data readable).
///
/// Safe when several collectors start at once: whichever wins the migration lock ([`migrate_lock`])
/// applies the pending migrations; the others wait until they are recorded, then go on.
pub async fn migrate_to(store: &Store, last: u32) -> Result<Vec<u32>, StoreError> {
    let db = store.database();
    let plan = Plan::new(store)?;
    let admin = Store { client: store.client().clone().with_database("default"), ..store.clone() };
    check_layout(&admin, db, store.cluster().is_some()).await?;
    let (bootstrap, lock_table) = plan.bootstrap_parts()?;
    for statement in bootstrap {
        admin.execute(&statement).await?;
    }
    let mut now_applied = Vec::new();
    let mut todo = pending(&admin, db, last).await?;
    if !todo.is_empty() {
        for statement in lock_table {
            admin.execute(&statement).await?;
        }
        let lock = migrate_lock::Lock::acquire(&admin, db, &todo, || pending(&admin, db, last)).await?;
        if let Some(lock) = lock {
            // A holder before this one may have applied some of them.
            todo = pending(&admin, db, last).await?;
            for m in todo {
                let wrap =
                    |e: StoreError| StoreError::Migration { version: m.version, name: m.name, source: Box::new(e) };
                for statement in plan.migration(m)? {
                    admin.execute(&statement).await.map_err(wrap)?;
                }
                admin.execute(&plan.record(m)).await.map_err(wrap)?;
                tracing::info!(version = m.version, name = m.name, "Applied migration.");
                now_applied.push(m.version);
            }
            lock.release();
        }
    }
    apply_retention(&admin, &plan).await?;
    Ok(now_applied)
}

/// Refuses to migrate a database laid out for the other mode: its migrations are recorded as applied,
/// so nothing would be rewritten. `otel_traces` (migration 0001) tells which mode made it.
async fn check_layout(admin: &Store, db: &str, cluster: bool) -> Result<(), StoreError> {
    let sql = "SELECT engine FROM system.tables WHERE database = ? AND name = ?";
    let first = Table::Traces.name();
    let engine: Option<String> = admin.client().query(sql).bind(db).bind(first).fetch_optional().await?;
    match engine {
        Some(e) if (e == "Distributed") != cluster => Err(StoreError::ClusterDdl(ClusterDdlError::Table(format!(
            "database {db} was created in {} mode ({first} is {e}) but clickhouse.cluster is {}: cluster mode \
             needs a database of its own (README \"Scaling out\")",
            if cluster { "single-server" } else { "cluster" },
            if cluster { "set" } else { "empty" },
        )))),
        _ => Ok(()),
    }
}

/// Sets (or removes) each table's TTL without rewriting existing parts.
async fn apply_retention(admin: &Store, plan: &Plan) -> Result<(), StoreError> {
    for sql in plan.retention() {
        match admin.execute(&sql).await {
            Err(StoreError::ClickHouse { code: Some(BAD_ARGUMENTS), .. }) if plan.retention_days == 0 => {}
            Err(StoreError::ClickHouse { code: Some(UNKNOWN_TABLE), .. }) => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_file_splits_into_its_statements() {
        let sql =
            "-- a comment;\nALTER TABLE t\n    ADD COLUMN c String;\nALTER TABLE t MATERIALIZE INDEX i;\n-- trailing\n";
        assert_eq!(
            statements(sql),
            ["-- a comment;\nALTER TABLE t\n    ADD COLUMN c String", "ALTER TABLE t MATERIALIZE INDEX i"]
        );
        // Single-statement files (0001-0006) are sent as they are.
        for m in &MIGRATIONS[..6] {
            assert_eq!(statements(m.sql), [m.sql.to_owned()], "{}", m.name);
        }
        let project = MIGRATIONS.iter().find(|m| m.version == 7).unwrap();
        assert_eq!(statements(project.sql).len(), 6);
    }

    #[test]
    fn every_table_takes_the_storage_policy() {
        for m in MIGRATIONS.iter().filter(|m| m.sql.contains("ENGINE =")) {
            assert!(
                m.sql.contains("{table_settings}"),
                "{}: its SETTINGS clause must end with {{table_settings}}",
                m.name
            );
            let sql = render(m.sql, "db", 30, "promptlog_encrypted");
            assert!(sql.contains(", storage_policy = 'promptlog_encrypted'"), "{sql}");
            assert!(!render(m.sql, "db", 30, "").contains("storage_policy"), "{}", m.name);
        }
    }
}
