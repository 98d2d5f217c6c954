-- Feedback and evaluation scores (promptlog.feedback.v1, POST /v1/scores, OTLP gen_ai.evaluation.result),
-- one row per score version. Column order = promptlog_ingest::rows::ScoreRow.
-- ReplacingMergeTree(Version, IsDeleted) on (ProjectId, ScoreId): resubmitting an id replaces the score
-- (a later Version), a delete is a tombstone row (IsDeleted = 1), a replayed spool record writes the same
-- Version again. Read with FINAL (or argMax by Version) to see each score once and deleted ones not at all.
-- No time partitioning: a replacement or tombstone must share its parts' partition with the row it replaces
-- so that merges collapse them (scores are few next to spans).
CREATE TABLE IF NOT EXISTS {db}.scores (
    ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)),
    ScoreId String CODEC(ZSTD(1)),
    Version UInt64 CODEC(ZSTD(1)),
    IsDeleted UInt8 CODEC(ZSTD(1)),
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TargetKind LowCardinality(String) CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    SessionId String CODEC(ZSTD(1)),
    ResponseId String CODEC(ZSTD(1)),
    Name LowCardinality(String) CODEC(ZSTD(1)),
    DataType LowCardinality(String) CODEC(ZSTD(1)),
    Value Nullable(Float64) CODEC(ZSTD(1)),
    Label String CODEC(ZSTD(1)),
    Comment String CODEC(ZSTD(3)),
    Source LowCardinality(String) CODEC(ZSTD(1)),
    Author String CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    Metadata Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    KeyId String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id SessionId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_response_id ResponseId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplacingMergeTree(Version, IsDeleted)
ORDER BY (ProjectId, ScoreId)
{ttl}
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000{table_settings}
