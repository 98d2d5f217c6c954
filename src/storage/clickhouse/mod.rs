//! ClickHouse over HTTP with the official `clickhouse` crate: schema migrations and RowBinary inserts.

pub mod cluster;
pub mod grants;
mod grants_xml;
mod migrate_lock;
pub(crate) mod retry;
pub mod rollups;
pub mod schema;

use std::collections::HashSet;

use clickhouse::{Client, Row, RowWrite};

use crate::config::ClickHouseConfig;
use crate::tls::TlsError;
use promptlog_ingest::rows::{Keyed, RowKey};
pub(crate) use retry::Retry;

/// A golden-file test: `shown` must equal `golden` (the text of `file` in this folder);
/// `PROMPTLOG_UPDATE_GOLDEN=1` rewrites the file instead.
#[cfg(test)]
pub(crate) fn assert_golden(file: &str, golden: &str, shown: &str) {
    if std::env::var_os("PROMPTLOG_UPDATE_GOLDEN").is_some() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/storage/clickhouse").join(file);
        std::fs::write(path, shown).unwrap();
        return;
    }
    assert_eq!(shown, golden, "set PROMPTLOG_UPDATE_GOLDEN=1 to rewrite {file} after a deliberate change");
}

/// Keys per existence query: keeps each query well under ClickHouse's default `max_query_size`
/// (256 KiB) with 32-character trace ids.
const KEYS_PER_LOOKUP: usize = 1000;

/// Why a ClickHouse operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server or network failed; `code` is ClickHouse's exception code when it sent one.
    #[error("clickhouse: {}", describe(source))]
    ClickHouse { code: Option<u32>, source: clickhouse::error::Error },
    /// A migration failed (the message names which).
    #[error("migration {version} ({name}) failed: {source}")]
    Migration { version: u32, name: &'static str, source: Box<StoreError> },
    /// Cluster mode cannot rewrite a migration statement.
    #[error(transparent)]
    ClusterDdl(#[from] cluster::ClusterDdlError),
    /// Another collector holds the migration lock and does not finish.
    #[error("migrations: {0}")]
    MigrationLock(String),
}

/// The error with its causes: hyper's client hides the interesting part (a refused connection, an
/// untrusted certificate) in its sources. An untrusted server certificate gets a hint.
fn describe(e: &clickhouse::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    if text.contains("invalid peer certificate") {
        text.push_str(
            " (the ClickHouse server's certificate is not trusted: set clickhouse.ca_file to the CA that signed it)",
        );
    }
    text
}

impl StoreError {
    /// Whether trying again may succeed.
    pub(crate) fn retry(&self) -> Retry {
        match self {
            StoreError::ClickHouse { code, .. } => retry::classify(*code),
            StoreError::Migration { .. } | StoreError::MigrationLock(_) => Retry::Retryable,
            StoreError::ClusterDdl(_) => Retry::Permanent,
        }
    }
}

impl From<clickhouse::error::Error> for StoreError {
    fn from(source: clickhouse::error::Error) -> Self {
        let code = match &source {
            clickhouse::error::Error::BadResponse(text) => retry::exception_code(text),
            clickhouse::error::Error::SchemaMismatch(_) | clickhouse::error::Error::NotEnoughData => Some(53),
            _ => None,
        };
        StoreError::ClickHouse { code, source }
    }
}

/// A handle on the configured ClickHouse database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    client: Client,
    database: String,
    retention_days: u32,
    storage_policy: String,
    /// Cluster name in cluster mode; empty: one server.
    cluster: String,
    insert_timeout: std::time::Duration,
}

impl Store {
    /// Builds the client (no network I/O yet; reads `ca_file` when set).
    ///
    /// # Panics
    /// If `cfg.ca_file` cannot be used; [`Config::validate`](crate::config::Config::validate)
    /// checks it, and [`Store::try_new`] returns the error instead.
    pub fn new(cfg: &ClickHouseConfig) -> Store {
        Self::try_new(cfg).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the client: TLS for an `https://` URL, trusting `ca_file` instead of the public CAs
    /// when it is set.
    pub fn try_new(cfg: &ClickHouseConfig) -> Result<Store, TlsError> {
        let client = crate::tls::client::client(cfg)?
            .with_url(cfg.url.clone())
            .with_user(cfg.user.clone())
            .with_password(cfg.password.expose())
            .with_database(cfg.database.clone());
        Ok(Store {
            client,
            database: cfg.database.clone(),
            retention_days: cfg.retention_days,
            storage_policy: cfg.storage_policy.clone(),
            cluster: cfg.cluster.clone(),
            insert_timeout: cfg.insert_timeout,
        })
    }

    /// The database holding promptlog's tables.
    pub(crate) fn database(&self) -> &str {
        &self.database
    }

    /// Runs one statement.
    pub(crate) async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        Ok(self.client.query(sql).execute().await?)
    }

    /// Inserts `rows` into `table` in one RowBinary INSERT. `dedup_token` makes a retried batch
    /// count once (ClickHouse insert deduplication). In cluster mode `table` is the `Distributed`
    /// table and the insert is synchronous: it succeeds only once every shard holds its rows, so the
    /// spool record is not released before; the sharding key is a function of the rows, so a retry
    /// sends each shard the same block again and the shard's replicated table drops it by the token.
    pub async fn insert<T>(&self, table: &str, rows: &[T], dedup_token: &str) -> Result<(), StoreError>
    where
        T: RowWrite + for<'a> Row<Value<'a> = T>,
    {
        let mut insert = self
            .client
            .insert::<T>(table)
            .await?
            .with_timeouts(Some(self.insert_timeout), Some(self.insert_timeout))
            .with_setting("insert_deduplication_token", dedup_token);
        if self.cluster().is_some() {
            insert = insert.with_setting(cluster::DISTRIBUTED_SYNC_SETTING, "1");
        }
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    /// Which of `rows` are already stored in `table`, by their [`Keyed`] identity. Used only for rows of
    /// replayed spool records, so its cost (one query per thousand rows) is paid after a crash, not on
    /// the hot path.
    pub async fn existing_keys<T: Keyed>(&self, table: &str, rows: &[&T]) -> Result<HashSet<RowKey>, StoreError> {
        let [project, ts, trace_id, span_id, body_hash] = T::KEY_SQL;
        let key = format!("({project}, {ts}, {trace_id}, {span_id}, {body_hash})");
        let mut found = HashSet::new();
        for chunk in rows.chunks(KEYS_PER_LOOKUP) {
            let (min, max) =
                chunk.iter().map(|r| r.timestamp_ns()).fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
            let keys: Vec<(String, i64, String, String, u64)> = chunk
                .iter()
                .map(|r| {
                    let k = r.key();
                    (k.project, k.ts, k.trace_id, k.span_id, k.body_hash)
                })
                .collect();
            // The Timestamp range lets ClickHouse skip partitions and granules before matching keys.
            let sql = format!(
                "SELECT toString({project}) AS project, {ts} AS ts, {trace_id} AS trace_id, {span_id} AS span_id, {body_hash} AS body_hash \
                 FROM {table} WHERE {time} >= fromUnixTimestamp64Nano(toInt64(?)) \
                 AND {time} <= fromUnixTimestamp64Nano(toInt64(?)) AND {key} IN ?",
                time = T::TIME_COLUMN
            );
            let rows: Vec<RowKey> = self.client.query(&sql).bind(min).bind(max).bind(keys).fetch_all().await?;
            found.extend(rows);
        }
        Ok(found)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn retention_days(&self) -> u32 {
        self.retention_days
    }

    pub(crate) fn storage_policy(&self) -> &str {
        &self.storage_policy
    }

    /// The cluster name in cluster mode.
    pub(crate) fn cluster(&self) -> Option<&str> {
        Some(self.cluster.as_str()).filter(|c| !c.is_empty())
    }

    /// Where a mutation or TTL change of `table` (a public name) goes: the table itself on one
    /// server; its local tables on every node in cluster mode (a `Distributed` table has no parts).
    pub(crate) fn alter_target(&self, table: &str) -> String {
        let db = &self.database;
        match self.cluster() {
            None => format!("`{db}`.`{table}`"),
            Some(c) => format!("`{db}`.`{table}{}` ON CLUSTER `{c}`", cluster::LOCAL_SUFFIX),
        }
    }
}
