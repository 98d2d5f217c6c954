//! Configuration: a YAML file (every key optional, unknown keys refused), then `PROMPTLOG_*` environment
//! overrides, then validation. Defaults live in the named constants below and nowhere else; the
//! documented file `collector-config/promptlog.yaml` is checked against them by a test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod access;
pub mod auth;
mod env;
pub mod keyfile;
pub mod pricing;
pub mod redaction;
mod tls;
pub mod ui;

pub use keyfile::KeyFileError;
pub use pricing::PricingConfig;
pub use redaction::RedactionConfig;
pub use tls::{DEFAULT_TLS_HANDSHAKE_TIMEOUT, DEFAULT_TLS_RELOAD_INTERVAL, TlsConfig};

pub use access::{AccessConfig, ProjectReader, Secret, is_identifier};

pub use auth::AuthConfig;
pub use ui::UiConfig;

/// Default OTLP/gRPC listen address.
pub const DEFAULT_GRPC_ENDPOINT: &str = "0.0.0.0:4317";
/// Default OTLP/HTTP listen address.
pub const DEFAULT_HTTP_ENDPOINT: &str = "0.0.0.0:4318";
/// Largest accepted request body, after decompression (the OTLP spec recommends 64 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
/// Attribute values longer than this are truncated (and the client told so in `partial_success`).
pub const DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024 * 1024;
/// Memory for requests being decoded and normalised at once.
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 1024 * 1024 * 1024;
/// Default ClickHouse HTTP endpoint.
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";
/// Default database holding every promptlog table.
pub const DEFAULT_DATABASE: &str = "promptlog";
/// Default ClickHouse user.
pub const DEFAULT_USER: &str = "default";
/// Rows older than this many days are dropped by ClickHouse TTL; 0 keeps everything.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// Per-insert timeout.
pub const DEFAULT_INSERT_TIMEOUT: Duration = Duration::from_secs(30);
/// A batch is written once it holds this many rows ...
pub const DEFAULT_BATCH_MAX_ROWS: usize = 10_000;
/// ... or once its oldest row has waited this long.
pub const DEFAULT_BATCH_MAX_DELAY: Duration = Duration::from_secs(1);
/// Decoded requests buffered in memory between the receivers and the batcher; beyond it, accepted
/// requests wait in the spool only and are read back from disk when there is room.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
/// Received bytes of the requests queued in memory (their rows take about three times that).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;
/// How long a live request waits for room in that queue before it is normalised; after that it
/// waits in the spool only. Waiting first saves normalising it twice (now, and again when it is read
/// back from the spool), a seventh of the CPU at full speed.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(1);
/// Estimated heap bytes of one batch (chat rows with long prompts reach it before `batch_max_rows`).
pub const DEFAULT_BATCH_MAX_BYTES: usize = 16 * 1024 * 1024;
/// How long shutdown waits for in-flight batches to reach ClickHouse (the rest stays in the spool).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a span and the log records carrying its content wait for each other.
pub const DEFAULT_JOIN_WINDOW: Duration = Duration::from_secs(10);
/// Whether recordings of one call by two instrumentation layers are merged into one counted row.
pub const DEFAULT_MERGE_DUPLICATE_CALLS: bool = true;
/// Most LLM calls (and orphan content records) held for joining at once.
pub const DEFAULT_MAX_PENDING_JOINS: usize = 100_000;
/// Estimated heap bytes the calls and content records held for joining may take together: with
/// duplicate merging every call waits the join window, so at full speed this, not the count, is
/// what bounds the collector's memory (the benchmark's chat load held ≈ 7 KiB of RSS per call).
pub const DEFAULT_MAX_PENDING_JOIN_BYTES: usize = 64 * 1024 * 1024;
/// Default directory for the spool and dead letters.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Spool size cap (segment files); when reached, requests are refused with UNAVAILABLE / 503.
/// The value is the spool module's own default, so it is written once.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = promptlog_spool::DEFAULT_MAX_BYTES;
/// Spool segment file size.
pub const DEFAULT_SPOOL_SEGMENT_BYTES: u64 = promptlog_spool::DEFAULT_SEGMENT_BYTES;
/// fsync every acknowledged request (group commit) so it survives a power loss, not just a crash.
pub const DEFAULT_SPOOL_FSYNC: bool = true;
/// Default `tracing` filter.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// OTLP listeners.
    pub receivers: ReceiverConfig,
    /// Where rows are written.
    pub clickhouse: ClickHouseConfig,
    /// Batching, queueing and the span/log join.
    pub pipeline: PipelineConfig,
    /// The on-disk queue of accepted requests (in `<data_dir>/spool`).
    pub spool: SpoolConfig,
    /// Directory for promptlog's own files (env `PROMPTLOG_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Process log output.
    pub log: LogConfig,
    /// ClickHouse roles, users and row policies created by `promptlog grants`.
    pub access: AccessConfig,
    /// PII redaction and content capture, before the spool.
    pub redaction: RedactionConfig,
    /// API keys and projects.
    pub auth: AuthConfig,
    /// Cost at ingest: price data, overrides.
    pub pricing: PricingConfig,
    /// The built-in call explorer (its own listener).
    pub ui: UiConfig,
}

/// OTLP receivers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverConfig {
    /// OTLP/gRPC address (env `PROMPTLOG_OTLP_GRPC_ENDPOINT`).
    pub grpc_endpoint: String,
    /// OTLP/HTTP address, also serving `/health` (env `PROMPTLOG_OTLP_HTTP_ENDPOINT`).
    pub http_endpoint: String,
    /// Cap on a request body after decompression; larger gets 413 / RESOURCE_EXHAUSTED.
    pub max_request_bytes: usize,
    /// Longer attribute values are truncated with a `…[truncated N bytes]` marker.
    pub max_attribute_value_bytes: usize,
    /// Memory budget for requests being decoded at once (each reserves ~8× its body); beyond it
    /// clients get UNAVAILABLE / 503 + Retry-After (env `PROMPTLOG_MAX_INFLIGHT_BYTES`).
    pub max_inflight_bytes: usize,
    /// TLS on both listeners; off unless `cert_file` and `key_file` are set.
    pub tls: TlsConfig,
}

/// ClickHouse connection and table options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP(S) endpoint (env `PROMPTLOG_CLICKHOUSE_URL`).
    pub url: String,
    /// PEM CA certificates to trust for an `https://` URL instead of the public web CAs, e.g. a
    /// private CA (env `PROMPTLOG_CLICKHOUSE_CA_FILE`).
    pub ca_file: Option<PathBuf>,
    /// Database for all tables, created if missing (env `PROMPTLOG_CLICKHOUSE_DATABASE`).
    pub database: String,
    /// User (env `PROMPTLOG_CLICKHOUSE_USER`).
    pub user: String,
    /// Password (env `PROMPTLOG_CLICKHOUSE_PASSWORD`); never shown by `Debug`.
    pub password: Secret,
    /// Days of data kept (TTL); 0 keeps everything (env `PROMPTLOG_RETENTION_DAYS`).
    pub retention_days: u32,
    /// Timeout of one insert attempt (env `PROMPTLOG_INSERT_TIMEOUT`).
    #[serde(with = "humantime_serde")]
    pub insert_timeout: Duration,
    /// Storage policy of the tables the migrations create, e.g. an encrypted disk's
    /// (`grafana/clickhouse/encrypted-disk.xml`); empty: the server's default. Only applies to tables
    /// created after it is set (env `PROMPTLOG_CLICKHOUSE_STORAGE_POLICY`).
    pub storage_policy: String,
    /// Cluster mode: the name of the ClickHouse cluster (`remote_servers`) the migrations run
    /// `ON CLUSTER` of, with replicated local tables and a `Distributed` table under each public name
    /// (README "Scaling out"); empty: one server (env `PROMPTLOG_CLICKHOUSE_CLUSTER`).
    pub cluster: String,
}

/// Pipeline tuning.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Rows per insert at most (env `PROMPTLOG_BATCH_MAX_ROWS`).
    pub batch_max_rows: usize,
    /// Estimated heap bytes per insert at most: each table's batch is written once its rows reach
    /// it, so long prompts do not make huge batches (env `PROMPTLOG_BATCH_MAX_BYTES`).
    pub batch_max_bytes: usize,
    /// Longest a row waits before its batch is written.
    #[serde(with = "humantime_serde")]
    pub batch_max_delay: Duration,
    /// Requests buffered in memory between receivers and the batcher; more wait in the spool only
    /// (env `PROMPTLOG_QUEUE_CAPACITY`).
    pub queue_capacity: usize,
    /// Most bytes (as received) of the requests in that queue; beyond it, as beyond `queue_capacity`,
    /// requests wait in the spool only (env `PROMPTLOG_MAX_QUEUED_BYTES`).
    pub max_queued_bytes: usize,
    /// How long a live request waits for room under `max_queued_bytes` before it is normalised and
    /// stored; once waited out it is stored and waits in the spool only (env `PROMPTLOG_QUEUE_WAIT`;
    /// `0s`: never wait).
    #[serde(with = "humantime_serde")]
    pub queue_wait: Duration,
    /// How long spans and content log records wait for each other (env `PROMPTLOG_JOIN_WINDOW`).
    #[serde(with = "humantime_serde")]
    pub join_window: Duration,
    /// Most calls and orphan content records held for joining; beyond it the oldest are released.
    pub max_pending_joins: usize,
    /// Most estimated heap bytes those held calls and records take together; beyond it the oldest
    /// are released (written without waiting out the window, so a later duplicate of one of them is
    /// counted again) (env `PROMPTLOG_MAX_PENDING_JOIN_BYTES`).
    pub max_pending_join_bytes: usize,
    /// Merge the recordings of one call made by two layers (an SDK's own tracing and an
    /// instrumentation, a framework and the provider instrumentation under it) into one counted row;
    /// every call then waits the join window before it is written (env
    /// `PROMPTLOG_MERGE_DUPLICATE_CALLS`). `false`: calls with content are written at once and every
    /// recording counts.
    pub merge_duplicate_calls: bool,
    /// How long shutdown waits for in-flight batches (env `PROMPTLOG_SHUTDOWN_TIMEOUT`).
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

/// The spool: every accepted request is stored here (fsynced) before the client is answered, and
/// deleted once its rows are in ClickHouse.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Cap on segment bytes; when reached, requests get UNAVAILABLE / 503 + Retry-After
    /// (env `PROMPTLOG_SPOOL_MAX_BYTES`).
    pub max_bytes: u64,
    /// Segment file size; a segment is deleted once all its requests are written.
    pub segment_bytes: u64,
    /// fsync before acknowledging (survives power loss); `false` survives only a process crash.
    pub fsync: bool,
    /// Key file for encryption at rest of spool records and dead-letter files; none: plaintext
    /// (env `PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE`). Format: [`keyfile`].
    pub encryption_key_file: Option<PathBuf>,
}

/// Process logging.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter such as `info` or `promptlog=debug` (env `PROMPTLOG_LOG`).
    pub level: String,
    /// `text` or `json` (env `PROMPTLOG_LOG_FORMAT`).
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grpc_endpoint: DEFAULT_GRPC_ENDPOINT.into(),
            http_endpoint: DEFAULT_HTTP_ENDPOINT.into(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_attribute_value_bytes: DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            tls: TlsConfig::default(),
        }
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_CLICKHOUSE_URL.into(),
            ca_file: None,
            database: DEFAULT_DATABASE.into(),
            user: DEFAULT_USER.into(),
            password: Secret::default(),
            retention_days: DEFAULT_RETENTION_DAYS,
            insert_timeout: DEFAULT_INSERT_TIMEOUT,
            storage_policy: String::new(),
            cluster: String::new(),
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            batch_max_rows: DEFAULT_BATCH_MAX_ROWS,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_max_delay: DEFAULT_BATCH_MAX_DELAY,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            queue_wait: DEFAULT_QUEUE_WAIT,
            join_window: DEFAULT_JOIN_WINDOW,
            max_pending_joins: DEFAULT_MAX_PENDING_JOINS,
            max_pending_join_bytes: DEFAULT_MAX_PENDING_JOIN_BYTES,
            merge_duplicate_calls: DEFAULT_MERGE_DUPLICATE_CALLS,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            segment_bytes: DEFAULT_SPOOL_SEGMENT_BYTES,
            fsync: DEFAULT_SPOOL_FSYNC,
            encryption_key_file: None,
        }
    }
}

impl SpoolConfig {
    /// The spool's own options.
    pub fn options(&self) -> promptlog_spool::SpoolOptions {
        promptlog_spool::SpoolOptions {
            max_bytes: self.max_bytes,
            segment_bytes: self.segment_bytes,
            fsync: self.fsync,
        }
    }

    /// The encryption keys from `encryption_key_file`, read and checked; `None` when encryption at
    /// rest is off. Called at start-up (and by `check-config`): a bad file refuses the start.
    pub fn encryption_keys(&self) -> Result<Option<promptlog_ingest::KeyRing>, KeyFileError> {
        self.encryption_key_file.as_deref().map(keyfile::load).transpose()
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: DEFAULT_LOG_LEVEL.into(), format: LogFormat::Text }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            receivers: ReceiverConfig::default(),
            clickhouse: ClickHouseConfig::default(),
            pipeline: PipelineConfig::default(),
            spool: SpoolConfig::default(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log: LogConfig::default(),
            access: AccessConfig::default(),
            redaction: RedactionConfig::default(),
            auth: AuthConfig::default(),
            pricing: PricingConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

/// Why a configuration was refused. Every message names the file, key or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid YAML for this schema (unknown key, wrong type, ...).
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: serde_yaml_ng::Error },
    /// An environment override could not be parsed.
    #[error("invalid value {value:?} in environment variable {var}: {reason}")]
    Env { var: &'static str, value: String, reason: String },
    /// A value parsed but is not usable.
    #[error("invalid config value {key} = {value:?}: {reason}")]
    Invalid { key: &'static str, value: String, reason: String },
}

impl From<crate::tls::TlsError> for ConfigError {
    fn from(e: crate::tls::TlsError) -> Self {
        let value = e.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        ConfigError::Invalid { key: e.key, value, reason: e.reason }
    }
}

impl Config {
    /// Loads `path` (or the defaults when `None`), applies the process environment and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|var| std::env::var(var).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a YAML file; every key is optional, unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_yaml(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
    }

    /// Parses YAML text (an empty document gives the defaults).
    pub fn from_yaml(text: &str) -> Result<Config, serde_yaml_ng::Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(text)
    }

    /// Applies every set `PROMPTLOG_*` override, failing on the first unparsable value.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        env::apply(self, lookup)
    }

    /// Checks values serde cannot: addresses, URL scheme, identifiers, non-zero sizes, TLS files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, value: &dyn std::fmt::Display, reason: &str| ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: reason.to_owned(),
        };
        for (key, addr) in [
            ("receivers.grpc_endpoint", &self.receivers.grpc_endpoint),
            ("receivers.http_endpoint", &self.receivers.http_endpoint),
        ] {
            addr.parse::<SocketAddr>().map_err(|_| invalid(key, addr, "expected host:port, e.g. 0.0.0.0:4317"))?;
        }
        let url = &self.clickhouse.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("clickhouse.url", url, "expected an http:// or https:// URL"));
        }
        let db = &self.clickhouse.database;
        if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid("clickhouse.database", db, "expected letters, digits and underscores"));
        }
        let policy = &self.clickhouse.storage_policy;
        if !policy.is_empty() && !is_identifier(policy) {
            return Err(invalid("clickhouse.storage_policy", policy, "expected letters, digits and underscores"));
        }
        let cluster = &self.clickhouse.cluster;
        if !cluster.is_empty() && !is_identifier(cluster) {
            return Err(invalid(
                "clickhouse.cluster",
                cluster,
                "expected a cluster name: letters, digits and underscores",
            ));
        }
        self.access.validate()?;
        let positive = [
            ("receivers.max_request_bytes", self.receivers.max_request_bytes),
            ("receivers.max_attribute_value_bytes", self.receivers.max_attribute_value_bytes),
            ("receivers.max_inflight_bytes", self.receivers.max_inflight_bytes),
            ("pipeline.batch_max_rows", self.pipeline.batch_max_rows),
            ("pipeline.batch_max_bytes", self.pipeline.batch_max_bytes),
            ("pipeline.queue_capacity", self.pipeline.queue_capacity),
            ("pipeline.max_queued_bytes", self.pipeline.max_queued_bytes),
            ("pipeline.max_pending_joins", self.pipeline.max_pending_joins),
            ("pipeline.max_pending_join_bytes", self.pipeline.max_pending_join_bytes),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, &value, "must be greater than 0"));
            }
        }
        for (key, value) in
            [("spool.max_bytes", self.spool.max_bytes), ("spool.segment_bytes", self.spool.segment_bytes)]
        {
            if value == 0 {
                return Err(invalid(key, &value, "must be greater than 0"));
            }
        }
        // Every accepted request becomes one spool record (sealed, when encryption is on), so the
        // record cap bounds the request cap.
        let record_cap = promptlog_spool::MAX_RECORD_BYTES
            - (promptlog_ingest::record::MAX_HEADER_BYTES + promptlog_ingest::seal::OVERHEAD) as u64;
        if self.receivers.max_request_bytes as u64 > record_cap {
            let reason = format!("must be at most {record_cap} (the largest spool record)");
            return Err(invalid("receivers.max_request_bytes", &self.receivers.max_request_bytes, &reason));
        }
        if self.pipeline.batch_max_delay.is_zero() {
            return Err(invalid("pipeline.batch_max_delay", &"0s", "must be greater than 0"));
        }
        if self.log.level.parse::<tracing_subscriber::EnvFilter>().is_err() {
            return Err(invalid("log.level", &self.log.level, "not a valid tracing filter"));
        }
        if self.auth.reload_interval.is_zero() {
            return Err(invalid("auth.reload_interval", &"0s", "must be greater than 0"));
        }
        if let Some(path) = &self.auth.keys_file
            && path.as_os_str().is_empty()
        {
            return Err(invalid("auth.keys_file", &"", "must be a path (leave it out, or null, for none)"));
        }
        // Reads and parses the PEM files, so a bad one stops start-up with the key named.
        crate::tls::check(&self.receivers.tls).map_err(ConfigError::from)?;
        crate::tls::client::check(&self.clickhouse).map_err(ConfigError::from)?;
        self.redaction.validate()?;
        self.pricing.validate()?;
        self.ui.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |var| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
    }

    #[test]
    fn shipped_config_file_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("collector-config/promptlog.yaml");
        let shipped = Config::from_file(&path).unwrap();
        assert_eq!(shipped, Config::default());
    }

    #[test]
    fn unknown_key_is_refused_and_named() {
        let err = Config::from_yaml("clickhouse:\n  urll: http://x\n").unwrap_err().to_string();
        assert!(err.contains("urll"), "{err}");
    }

    #[test]
    fn env_overrides_apply() {
        let mut c = Config::default();
        c.apply_env(env(&[
            ("PROMPTLOG_CLICKHOUSE_URL", "http://ch:8123"),
            ("PROMPTLOG_JOIN_WINDOW", "3s"),
            ("PROMPTLOG_OTLP_GRPC_ENDPOINT", "127.0.0.1:1"),
            ("PROMPTLOG_SPOOL_MAX_BYTES", "65536"),
            ("PROMPTLOG_SHUTDOWN_TIMEOUT", "2s"),
        ]))
        .unwrap();
        assert_eq!(c.spool.max_bytes, 65536);
        c.apply_env(env(&[("PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE", "/etc/promptlog/keys.yaml")])).unwrap();
        assert_eq!(c.spool.encryption_key_file.as_deref(), Some(Path::new("/etc/promptlog/keys.yaml")));
        c.apply_env(env(&[("PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE", "")])).unwrap();
        assert_eq!(c.spool.encryption_key_file, None, "an empty value turns encryption off");
        assert_eq!(c.pipeline.shutdown_timeout, Duration::from_secs(2));
        assert_eq!(c.clickhouse.url, "http://ch:8123");
        assert_eq!(c.pipeline.join_window, Duration::from_secs(3));
        assert_eq!(c.receivers.grpc_endpoint, "127.0.0.1:1");
    }

    #[test]
    fn bad_env_values_fail_loudly_naming_the_variable() {
        for (var, value) in [
            ("PROMPTLOG_JOIN_WINDOW", "ten seconds"),
            ("PROMPTLOG_RETENTION_DAYS", "-1"),
            ("PROMPTLOG_LOG_FORMAT", "xml"),
        ] {
            let err = Config::default().apply_env(env(&[(var, value)])).unwrap_err().to_string();
            assert!(err.contains(var) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        type Mutation = fn(&mut Config);
        let cases: [(Mutation, &str); 6] = [
            (|c| c.receivers.grpc_endpoint = "nope".into(), "receivers.grpc_endpoint"),
            (|c| c.clickhouse.url = "tcp://x".into(), "clickhouse.url"),
            (|c| c.clickhouse.database = "a;drop".into(), "clickhouse.database"),
            (|c| c.pipeline.batch_max_rows = 0, "pipeline.batch_max_rows"),
            (|c| c.spool.max_bytes = 0, "spool.max_bytes"),
            (|c| c.receivers.max_request_bytes = 1 << 30, "receivers.max_request_bytes"),
        ];
        for (mutate, key) in cases {
            let mut c = Config::default();
            mutate(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
