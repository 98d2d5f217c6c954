//! Every `PROMPTLOG_*` environment override, in one table, and the parsers they share. A bad value
//! fails loudly, naming the variable.

use std::path::PathBuf;
use std::time::Duration;

use super::{Config, ConfigError, LogFormat};

/// One supported environment override: the variable and how it applies to the config.
struct EnvOverride {
    var: &'static str,
    apply: fn(&mut Config, &str) -> Result<(), String>,
}

/// Every `PROMPTLOG_*` variable the collector reads, in one table.
const ENV_OVERRIDES: &[EnvOverride] = &[
    EnvOverride { var: "PROMPTLOG_CLICKHOUSE_URL", apply: |c, v| set_string(&mut c.clickhouse.url, v) },
    EnvOverride { var: "PROMPTLOG_CLICKHOUSE_CA_FILE", apply: |c, v| set_path(&mut c.clickhouse.ca_file, v) },
    EnvOverride { var: "PROMPTLOG_CLICKHOUSE_DATABASE", apply: |c, v| set_string(&mut c.clickhouse.database, v) },
    EnvOverride { var: "PROMPTLOG_CLICKHOUSE_USER", apply: |c, v| set_string(&mut c.clickhouse.user, v) },
    EnvOverride { var: "PROMPTLOG_CLICKHOUSE_PASSWORD", apply: |c, v| set_string(&mut c.clickhouse.password.0, v) },
    EnvOverride {
        var: "PROMPTLOG_CLICKHOUSE_STORAGE_POLICY",
        apply: |c, v| set_string(&mut c.clickhouse.storage_policy, v),
    },
    EnvOverride { var: "PROMPTLOG_CLICKHOUSE_CLUSTER", apply: |c, v| set_string(&mut c.clickhouse.cluster, v.trim()) },
    EnvOverride { var: "PROMPTLOG_CLICKHOUSE_READER_USER", apply: |c, v| set_string(&mut c.access.reader_user, v) },
    EnvOverride {
        var: "PROMPTLOG_CLICKHOUSE_READER_PASSWORD",
        apply: |c, v| set_string(&mut c.access.reader_password.0, v),
    },
    EnvOverride {
        var: "PROMPTLOG_PROJECT_READERS",
        apply: |c, v| {
            c.access.project_readers = super::access::parse_project_readers(v)?;
            Ok(())
        },
    },
    EnvOverride { var: "PROMPTLOG_RETENTION_DAYS", apply: |c, v| set_parsed(&mut c.clickhouse.retention_days, v) },
    EnvOverride { var: "PROMPTLOG_INSERT_TIMEOUT", apply: |c, v| set_duration(&mut c.clickhouse.insert_timeout, v) },
    EnvOverride { var: "PROMPTLOG_OTLP_GRPC_ENDPOINT", apply: |c, v| set_string(&mut c.receivers.grpc_endpoint, v) },
    EnvOverride { var: "PROMPTLOG_OTLP_HTTP_ENDPOINT", apply: |c, v| set_string(&mut c.receivers.http_endpoint, v) },
    EnvOverride { var: "PROMPTLOG_MAX_REQUEST_BYTES", apply: |c, v| set_parsed(&mut c.receivers.max_request_bytes, v) },
    EnvOverride {
        var: "PROMPTLOG_MAX_INFLIGHT_BYTES",
        apply: |c, v| set_parsed(&mut c.receivers.max_inflight_bytes, v),
    },
    EnvOverride { var: "PROMPTLOG_TLS_CERT_FILE", apply: |c, v| set_path(&mut c.receivers.tls.cert_file, v) },
    EnvOverride { var: "PROMPTLOG_TLS_KEY_FILE", apply: |c, v| set_path(&mut c.receivers.tls.key_file, v) },
    EnvOverride { var: "PROMPTLOG_TLS_CLIENT_CA_FILE", apply: |c, v| set_path(&mut c.receivers.tls.client_ca_file, v) },
    EnvOverride { var: "PROMPTLOG_DATA_DIR", apply: |c, v| set_parsed(&mut c.data_dir, v) },
    EnvOverride { var: "PROMPTLOG_JOIN_WINDOW", apply: |c, v| set_duration(&mut c.pipeline.join_window, v) },
    EnvOverride {
        var: "PROMPTLOG_MERGE_DUPLICATE_CALLS",
        apply: |c, v| set_parsed(&mut c.pipeline.merge_duplicate_calls, v),
    },
    EnvOverride { var: "PROMPTLOG_BATCH_MAX_DELAY", apply: |c, v| set_duration(&mut c.pipeline.batch_max_delay, v) },
    EnvOverride { var: "PROMPTLOG_QUEUE_CAPACITY", apply: |c, v| set_parsed(&mut c.pipeline.queue_capacity, v) },
    EnvOverride {
        var: "PROMPTLOG_MAX_PENDING_JOIN_BYTES",
        apply: |c, v| set_parsed(&mut c.pipeline.max_pending_join_bytes, v),
    },
    EnvOverride { var: "PROMPTLOG_BATCH_MAX_ROWS", apply: |c, v| set_parsed(&mut c.pipeline.batch_max_rows, v) },
    EnvOverride { var: "PROMPTLOG_BATCH_MAX_BYTES", apply: |c, v| set_parsed(&mut c.pipeline.batch_max_bytes, v) },
    EnvOverride { var: "PROMPTLOG_QUEUE_WAIT", apply: |c, v| set_duration(&mut c.pipeline.queue_wait, v) },
    EnvOverride { var: "PROMPTLOG_MAX_QUEUED_BYTES", apply: |c, v| set_parsed(&mut c.pipeline.max_queued_bytes, v) },
    EnvOverride { var: "PROMPTLOG_SHUTDOWN_TIMEOUT", apply: |c, v| set_duration(&mut c.pipeline.shutdown_timeout, v) },
    EnvOverride { var: "PROMPTLOG_SPOOL_MAX_BYTES", apply: |c, v| set_parsed(&mut c.spool.max_bytes, v) },
    EnvOverride { var: "PROMPTLOG_REDACT", apply: |c, v| c.redaction.enable_detectors(v) },
    EnvOverride { var: "PROMPTLOG_REDACT_HASH_KEY_FILE", apply: |c, v| set_string(&mut c.redaction.hash_key_file, v) },
    EnvOverride {
        var: "PROMPTLOG_CONTENT_CAPTURE",
        apply: |c, v| set_string(&mut c.redaction.content_capture, v.trim()),
    },
    EnvOverride { var: "PROMPTLOG_AUTH_KEYS_FILE", apply: |c, v| set_path(&mut c.auth.keys_file, v) },
    EnvOverride { var: "PROMPTLOG_AUTH_RELOAD_INTERVAL", apply: |c, v| set_duration(&mut c.auth.reload_interval, v) },
    EnvOverride {
        var: SECRET_API_KEYS_VAR,
        apply: |c, v| {
            c.auth.dev_keys = super::auth::parse_dev_keys(v)?;
            Ok(())
        },
    },
    EnvOverride {
        var: "PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE",
        apply: |c, v| {
            c.spool.encryption_key_file = (!v.trim().is_empty()).then(|| v.trim().into());
            Ok(())
        },
    },
    EnvOverride { var: "PROMPTLOG_PRICING_ENABLED", apply: |c, v| set_parsed(&mut c.pricing.enabled, v) },
    EnvOverride { var: "PROMPTLOG_PRICING_DATA_FILE", apply: |c, v| set_path(&mut c.pricing.data_file, v) },
    EnvOverride {
        var: "PROMPTLOG_PRICING_RELOAD_INTERVAL",
        apply: |c, v| set_duration(&mut c.pricing.reload_interval, v),
    },
    EnvOverride { var: "PROMPTLOG_UI_ENABLED", apply: |c, v| set_parsed(&mut c.ui.enabled, v) },
    EnvOverride { var: "PROMPTLOG_UI_ENDPOINT", apply: |c, v| set_string(&mut c.ui.endpoint, v.trim()) },
    EnvOverride { var: "PROMPTLOG_UI_GRAFANA_URL", apply: |c, v| set_string(&mut c.ui.grafana_url, v.trim()) },
    EnvOverride { var: "PROMPTLOG_LOG", apply: |c, v| set_string(&mut c.log.level, v) },
    EnvOverride {
        var: "PROMPTLOG_LOG_FORMAT",
        apply: |c, v| {
            c.log.format = match v {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err("expected `text` or `json`".into()),
            };
            Ok(())
        },
    },
];

/// Plaintext development keys: its value is never echoed in an error.
const SECRET_API_KEYS_VAR: &str = "PROMPTLOG_API_KEYS";

fn set_string(field: &mut String, value: &str) -> Result<(), String> {
    *field = value.to_owned();
    Ok(())
}

/// An optional file; an empty value unsets it (so `VAR=` in compose files means "none").
fn set_path(field: &mut Option<PathBuf>, value: &str) -> Result<(), String> {
    *field = Some(value.trim()).filter(|v| !v.is_empty()).map(PathBuf::from);
    Ok(())
}

fn set_parsed<T: std::str::FromStr>(field: &mut T, value: &str) -> Result<(), String>
where
    T::Err: std::fmt::Display,
{
    *field = value.trim().parse().map_err(|e: T::Err| e.to_string())?;
    Ok(())
}

fn set_duration(field: &mut Duration, value: &str) -> Result<(), String> {
    *field = humantime::parse_duration(value.trim()).map_err(|e| format!("{e} (expected e.g. `10s`, `500ms`)"))?;
    Ok(())
}

/// Applies every set override in table order, failing on the first unparsable value.
pub(super) fn apply(config: &mut Config, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for o in ENV_OVERRIDES {
        if let Some(value) = lookup(o.var) {
            (o.apply)(config, &value).map_err(|reason| {
                // Never echo a password back in an error message.
                let value = if o.var.contains("PASSWORD")
                    || o.var == "PROMPTLOG_PROJECT_READERS"
                    || o.var == SECRET_API_KEYS_VAR
                {
                    "[hidden]".to_owned()
                } else {
                    value
                };
                ConfigError::Env { var: o.var, value, reason }
            })?;
        }
    }
    Ok(())
}
