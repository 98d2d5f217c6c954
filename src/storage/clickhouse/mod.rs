//! ClickHouse over HTTP with the official `clickhouse` crate: schema migrations and RowBinary inserts.

pub mod retry;
pub mod schema;

use clickhouse::{Client, Row, RowWrite};

use crate::config::ClickHouseConfig;
pub use retry::Retry;

/// Why a ClickHouse operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server or network failed; `code` is ClickHouse's exception code when it sent one.
    #[error("clickhouse: {source}")]
    ClickHouse { code: Option<u32>, source: clickhouse::error::Error },
    /// A migration failed (the message names which).
    #[error("migration {version} ({name}) failed: {source}")]
    Migration { version: u32, name: &'static str, source: Box<StoreError> },
}

impl StoreError {
    /// Whether trying again may succeed.
    pub fn retry(&self) -> Retry {
        match self {
            StoreError::ClickHouse { code, .. } => retry::classify(*code),
            StoreError::Migration { .. } => Retry::Retryable,
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
    insert_timeout: std::time::Duration,
}

impl Store {
    /// Builds the client (no I/O yet).
    pub fn new(cfg: &ClickHouseConfig) -> Store {
        let client = Client::default()
            .with_url(cfg.url.clone())
            .with_user(cfg.user.clone())
            .with_password(cfg.password.clone())
            .with_database(cfg.database.clone());
        Store {
            client,
            database: cfg.database.clone(),
            retention_days: cfg.retention_days,
            insert_timeout: cfg.insert_timeout,
        }
    }

    /// The database holding promptlog's tables.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs one statement.
    pub async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        Ok(self.client.query(sql).execute().await?)
    }

    /// Checks that the server answers (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        // The database may not exist yet, so do not select it.
        let client = self.client.clone().with_database("default");
        client.query("SELECT 1").fetch_one::<u8>().await?;
        Ok(())
    }

    /// Inserts `rows` into `table` in one RowBinary INSERT. `dedup_token` makes a retried batch
    /// count once (ClickHouse insert deduplication).
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
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn retention_days(&self) -> u32 {
        self.retention_days
    }
}
