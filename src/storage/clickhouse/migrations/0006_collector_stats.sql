-- promptlog's own telemetry: one row per signal every stats interval per collector instance.
-- Counters are deltas since the previous row; QueueDepth/SpoolBytes/BatchLatencyMs are gauges.
CREATE TABLE IF NOT EXISTS {db}.collector_stats (
    Timestamp DateTime64(3) CODEC(Delta(8), ZSTD(1)),
    Instance LowCardinality(String),
    Signal LowCardinality(String),
    Received UInt64,
    Written UInt64,
    Rejected UInt64,
    Retried UInt64,
    DeadLettered UInt64,
    QueueDepth UInt64,
    SpoolBytes UInt64,
    BatchLatencyMs Float64
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (Instance, Signal, Timestamp)
{ttl}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1{table_settings}
