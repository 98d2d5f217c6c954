CREATE DATABASE IF NOT EXISTS `promptlog` ON CLUSTER `promptlog_cluster`;

CREATE TABLE IF NOT EXISTS `promptlog`.schema_migrations ON CLUSTER `promptlog_cluster` (Version UInt32, Name String, AppliedAt DateTime64(3) DEFAULT now64(3)) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/{table}', '{shard}-{replica}') ORDER BY Version;

CREATE TABLE IF NOT EXISTS `promptlog`.schema_migrations_lock ON CLUSTER `promptlog_cluster` (Epoch String, Attempt UInt32, Holder String, At DateTime64(3) DEFAULT now64(3)) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{database}/{table}', '{shard}-{replica}') ORDER BY (Epoch, Attempt, At) SETTINGS replicated_deduplication_window = 1000;

-- migration 0001_otel_traces
CREATE TABLE IF NOT EXISTS `promptlog`.otel_traces_local ON CLUSTER `promptlog_cluster` (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.otel_traces ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_traces_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_traces_local', cityHash64(TraceId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (1, '0001_otel_traces');

-- migration 0002_otel_traces_trace_id_ts
CREATE TABLE IF NOT EXISTS `promptlog`.otel_traces_trace_id_ts_local ON CLUSTER `promptlog_cluster` (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
TTL toDateTime(Start) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS `promptlog`.otel_traces_trace_id_ts ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_traces_trace_id_ts_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_traces_trace_id_ts_local', cityHash64(TraceId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (2, '0002_otel_traces_trace_id_ts');

-- migration 0003_otel_traces_trace_id_ts_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS `promptlog`.otel_traces_trace_id_ts_mv ON CLUSTER `promptlog_cluster`
TO `promptlog`.otel_traces_trace_id_ts_local
AS SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM `promptlog`.otel_traces_local
WHERE TraceId != ''
GROUP BY TraceId;

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (3, '0003_otel_traces_trace_id_ts_mv');

-- migration 0004_otel_logs
CREATE TABLE IF NOT EXISTS `promptlog`.otel_logs_local ON CLUSTER `promptlog_cluster` (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.otel_logs ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_logs_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_logs_local', cityHash64(TraceId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (4, '0004_otel_logs');

-- migration 0005_llm_calls
CREATE TABLE IF NOT EXISTS `promptlog`.llm_calls_local ON CLUSTER `promptlog_cluster` (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    ResponseModel LowCardinality(String) CODEC(ZSTD(1)),
    RequestParams Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    InputTokens UInt64 CODEC(T64, ZSTD(1)),
    OutputTokens UInt64 CODEC(T64, ZSTD(1)),
    TotalTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheReadInputTokens UInt64 CODEC(T64, ZSTD(1)),
    CacheWriteInputTokens UInt64 CODEC(T64, ZSTD(1)),
    ReasoningOutputTokens UInt64 CODEC(T64, ZSTD(1)),
    CostUsd Nullable(Float64) CODEC(ZSTD(1)),
    IsRollup Bool CODEC(ZSTD(1)),
    FinishReasons Array(LowCardinality(String)) CODEC(ZSTD(1)),
    ResponseId String CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    ErrorType LowCardinality(String) CODEC(ZSTD(1)),
    ErrorMessage String CODEC(ZSTD(1)),
    SessionId String CODEC(ZSTD(1)),
    UserId String CODEC(ZSTD(1)),
    Tags Array(String) CODEC(ZSTD(1)),
    Metadata Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    SystemInstructions String CODEC(ZSTD(3)),
    InputMessages String CODEC(ZSTD(3)),
    OutputMessages String CODEC(ZSTD(3)),
    ToolDefinitions String CODEC(ZSTD(3)),
    InputText String CODEC(ZSTD(3)),
    OutputText String CODEC(ZSTD(3)),
    TimeToFirstToken Nullable(Float64) CODEC(ZSTD(1)),
    Convention LowCardinality(String) CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id SessionId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_user_id UserId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_request_model RequestModel TYPE set(256) GRANULARITY 4,
    INDEX idx_response_model ResponseModel TYPE set(256) GRANULARITY 4,
    INDEX idx_status StatusCode TYPE set(3) GRANULARITY 4,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_input_text lower(InputText) TYPE ngrambf_v1(4, 65536, 2, 0) GRANULARITY 4,
    INDEX idx_output_text lower(OutputText) TYPE ngrambf_v1(4, 65536, 2, 0) GRANULARITY 4
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, toDateTime(Timestamp))
ORDER BY (ServiceName, toDateTime(Timestamp), Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (5, '0005_llm_calls');

-- migration 0006_collector_stats
CREATE TABLE IF NOT EXISTS `promptlog`.collector_stats_local ON CLUSTER `promptlog_cluster` (
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
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (Instance, Signal, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS `promptlog`.collector_stats ON CLUSTER `promptlog_cluster` AS `promptlog`.collector_stats_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'collector_stats_local', cityHash64(Instance, Signal, Timestamp));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (6, '0006_collector_stats');

-- migration 0007_project_id
ALTER TABLE `promptlog`.`otel_traces_local` ON CLUSTER `promptlog_cluster`
    ADD COLUMN IF NOT EXISTS ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)) FIRST,
    ADD INDEX IF NOT EXISTS idx_project_id ProjectId TYPE set(256) GRANULARITY 1;

CREATE OR REPLACE TABLE `promptlog`.otel_traces ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_traces_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_traces_local', cityHash64(TraceId));

ALTER TABLE `promptlog`.`otel_traces_local` ON CLUSTER `promptlog_cluster` MATERIALIZE INDEX idx_project_id;

ALTER TABLE `promptlog`.`otel_logs_local` ON CLUSTER `promptlog_cluster`
    ADD COLUMN IF NOT EXISTS ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)) FIRST,
    ADD INDEX IF NOT EXISTS idx_project_id ProjectId TYPE set(256) GRANULARITY 1;

CREATE OR REPLACE TABLE `promptlog`.otel_logs ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_logs_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_logs_local', cityHash64(TraceId));

ALTER TABLE `promptlog`.`otel_logs_local` ON CLUSTER `promptlog_cluster` MATERIALIZE INDEX idx_project_id;

ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster`
    ADD COLUMN IF NOT EXISTS ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)) FIRST,
    ADD INDEX IF NOT EXISTS idx_project_id ProjectId TYPE set(256) GRANULARITY 1;

CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster` MATERIALIZE INDEX idx_project_id;

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (7, '0007_project_id');

-- migration 0008_llm_calls_redactions
ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster` ADD COLUMN IF NOT EXISTS Redactions UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)) AFTER Convention;

CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (8, '0008_llm_calls_redactions');

-- migration 0009_llm_calls_duplicate_of
ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster` ADD COLUMN IF NOT EXISTS DuplicateOf String DEFAULT '' CODEC(ZSTD(1)) AFTER Redactions;

CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (9, '0009_llm_calls_duplicate_of');

-- migration 0010_llm_calls_cost
ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster`
    ADD COLUMN IF NOT EXISTS InputCostUsd Nullable(Float64) CODEC(ZSTD(1)) AFTER DuplicateOf,
    ADD COLUMN IF NOT EXISTS OutputCostUsd Nullable(Float64) CODEC(ZSTD(1)) AFTER InputCostUsd,
    ADD COLUMN IF NOT EXISTS CostSource LowCardinality(String) DEFAULT '' AFTER OutputCostUsd,
    ADD COLUMN IF NOT EXISTS PriceModel LowCardinality(String) DEFAULT '' AFTER CostSource;

CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (10, '0010_llm_calls_cost');

-- migration 0011_llm_calls_prompt
ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster` ADD COLUMN IF NOT EXISTS PromptName LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)) AFTER PriceModel;

CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster` ADD COLUMN IF NOT EXISTS PromptVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)) AFTER PromptName;

CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster` ADD COLUMN IF NOT EXISTS PromptTemplate String DEFAULT '' CODEC(ZSTD(3)) AFTER PromptVersion;

CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster` ADD COLUMN IF NOT EXISTS PromptVariables Map(LowCardinality(String), String) CODEC(ZSTD(1)) AFTER PromptTemplate;

CREATE OR REPLACE TABLE `promptlog`.llm_calls ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_local', cityHash64(TraceId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (11, '0011_llm_calls_prompt');

-- migration 0012_llm_calls_1m
CREATE TABLE IF NOT EXISTS `promptlog`.llm_calls_1m_local ON CLUSTER `promptlog_cluster` (
    Timestamp DateTime CODEC(Delta(4), ZSTD(1)),
    ProjectId LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    UserId String CODEC(ZSTD(1)),
    PromptName LowCardinality(String) CODEC(ZSTD(1)),
    PromptVersion LowCardinality(String) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    Calls SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    Errors SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    InputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    OutputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    TotalTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    CacheReadInputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    CacheWriteInputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    ReasoningOutputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    CostUsd SimpleAggregateFunction(sum, Float64) CODEC(ZSTD(1)),
    CostCalls SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    TtftCalls SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    LastSeen SimpleAggregateFunction(max, DateTime64(9)) CODEC(ZSTD(1)),
    Duration AggregateFunction(quantiles(0.5, 0.95, 0.99), UInt64) CODEC(ZSTD(1)),
    TimeToFirstToken AggregateFunction(quantilesIf(0.5, 0.95, 0.99), Float64, UInt8) CODEC(ZSTD(1))
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Timestamp, ProjectId, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS `promptlog`.llm_calls_1m ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_1m_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_1m_local', cityHash64(ServiceName, Timestamp, ProjectId, Environment, Operation, Provider, RequestModel, UserId, PromptName, PromptVersion, StatusCode));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (12, '0012_llm_calls_1m');

-- migration 0013_llm_calls_1m_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS `promptlog`.llm_calls_1m_mv ON CLUSTER `promptlog_cluster`
TO `promptlog`.llm_calls_1m_local
AS SELECT
    toStartOfMinute(c.Timestamp) AS Timestamp,
    c.ProjectId AS ProjectId, c.ServiceName AS ServiceName, c.Environment AS Environment, c.Operation AS Operation,
    c.Provider AS Provider, c.RequestModel AS RequestModel, c.UserId AS UserId, c.PromptName AS PromptName,
    c.PromptVersion AS PromptVersion, c.StatusCode AS StatusCode,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(c.StatusCode = 'Error')) AS Errors,
    sum(c.InputTokens) AS InputTokens,
    sum(c.OutputTokens) AS OutputTokens,
    sum(c.TotalTokens) AS TotalTokens,
    sum(c.CacheReadInputTokens) AS CacheReadInputTokens,
    sum(c.CacheWriteInputTokens) AS CacheWriteInputTokens,
    sum(c.ReasoningOutputTokens) AS ReasoningOutputTokens,
    toFloat64(sum(ifNull(c.CostUsd, 0))) AS CostUsd,
    toUInt64(countIf(c.CostUsd IS NOT NULL)) AS CostCalls,
    toUInt64(countIf(c.TimeToFirstToken IS NOT NULL)) AS TtftCalls,
    max(c.Timestamp) AS LastSeen,
    quantilesState(0.5, 0.95, 0.99)(c.Duration) AS Duration,
    quantilesStateIf(0.5, 0.95, 0.99)(ifNull(c.TimeToFirstToken, 0), c.TimeToFirstToken IS NOT NULL) AS TimeToFirstToken
FROM `promptlog`.llm_calls_local AS c
WHERE NOT c.IsRollup
GROUP BY Timestamp, ProjectId, ServiceName, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode;

TRUNCATE TABLE IF EXISTS `promptlog`.`llm_calls_1m_local` ON CLUSTER `promptlog_cluster`;

INSERT INTO `promptlog`.llm_calls_1m SETTINGS insert_distributed_sync = 1
SELECT
    toStartOfMinute(c.Timestamp) AS Timestamp,
    c.ProjectId AS ProjectId, c.ServiceName AS ServiceName, c.Environment AS Environment, c.Operation AS Operation,
    c.Provider AS Provider, c.RequestModel AS RequestModel, c.UserId AS UserId, c.PromptName AS PromptName,
    c.PromptVersion AS PromptVersion, c.StatusCode AS StatusCode,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(c.StatusCode = 'Error')) AS Errors,
    sum(c.InputTokens) AS InputTokens,
    sum(c.OutputTokens) AS OutputTokens,
    sum(c.TotalTokens) AS TotalTokens,
    sum(c.CacheReadInputTokens) AS CacheReadInputTokens,
    sum(c.CacheWriteInputTokens) AS CacheWriteInputTokens,
    sum(c.ReasoningOutputTokens) AS ReasoningOutputTokens,
    toFloat64(sum(ifNull(c.CostUsd, 0))) AS CostUsd,
    toUInt64(countIf(c.CostUsd IS NOT NULL)) AS CostCalls,
    toUInt64(countIf(c.TimeToFirstToken IS NOT NULL)) AS TtftCalls,
    max(c.Timestamp) AS LastSeen,
    quantilesState(0.5, 0.95, 0.99)(c.Duration) AS Duration,
    quantilesStateIf(0.5, 0.95, 0.99)(ifNull(c.TimeToFirstToken, 0), c.TimeToFirstToken IS NOT NULL) AS TimeToFirstToken
FROM `promptlog`.llm_calls AS c
WHERE NOT c.IsRollup
GROUP BY Timestamp, ProjectId, ServiceName, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode;

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (13, '0013_llm_calls_1m_mv');

-- migration 0014_llm_calls_1h
CREATE TABLE IF NOT EXISTS `promptlog`.llm_calls_1h_local ON CLUSTER `promptlog_cluster` (
    Timestamp DateTime CODEC(Delta(4), ZSTD(1)),
    ProjectId LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    UserId String CODEC(ZSTD(1)),
    PromptName LowCardinality(String) CODEC(ZSTD(1)),
    PromptVersion LowCardinality(String) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    Calls SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    Errors SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    InputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    OutputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    TotalTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    CacheReadInputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    CacheWriteInputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    ReasoningOutputTokens SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    CostUsd SimpleAggregateFunction(sum, Float64) CODEC(ZSTD(1)),
    CostCalls SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    TtftCalls SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    LastSeen SimpleAggregateFunction(max, DateTime64(9)) CODEC(ZSTD(1)),
    Duration AggregateFunction(quantiles(0.5, 0.95, 0.99), UInt64) CODEC(ZSTD(1)),
    TimeToFirstToken AggregateFunction(quantilesIf(0.5, 0.95, 0.99), Float64, UInt8) CODEC(ZSTD(1))
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Timestamp, ProjectId, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS `promptlog`.llm_calls_1h ON CLUSTER `promptlog_cluster` AS `promptlog`.llm_calls_1h_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'llm_calls_1h_local', cityHash64(ServiceName, Timestamp, ProjectId, Environment, Operation, Provider, RequestModel, UserId, PromptName, PromptVersion, StatusCode));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (14, '0014_llm_calls_1h');

-- migration 0015_llm_calls_1h_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS `promptlog`.llm_calls_1h_mv ON CLUSTER `promptlog_cluster`
TO `promptlog`.llm_calls_1h_local
AS SELECT
    toStartOfHour(c.Timestamp) AS Timestamp,
    c.ProjectId AS ProjectId, c.ServiceName AS ServiceName, c.Environment AS Environment, c.Operation AS Operation,
    c.Provider AS Provider, c.RequestModel AS RequestModel, c.UserId AS UserId, c.PromptName AS PromptName,
    c.PromptVersion AS PromptVersion, c.StatusCode AS StatusCode,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(c.StatusCode = 'Error')) AS Errors,
    sum(c.InputTokens) AS InputTokens,
    sum(c.OutputTokens) AS OutputTokens,
    sum(c.TotalTokens) AS TotalTokens,
    sum(c.CacheReadInputTokens) AS CacheReadInputTokens,
    sum(c.CacheWriteInputTokens) AS CacheWriteInputTokens,
    sum(c.ReasoningOutputTokens) AS ReasoningOutputTokens,
    toFloat64(sum(ifNull(c.CostUsd, 0))) AS CostUsd,
    toUInt64(countIf(c.CostUsd IS NOT NULL)) AS CostCalls,
    toUInt64(countIf(c.TimeToFirstToken IS NOT NULL)) AS TtftCalls,
    max(c.Timestamp) AS LastSeen,
    quantilesState(0.5, 0.95, 0.99)(c.Duration) AS Duration,
    quantilesStateIf(0.5, 0.95, 0.99)(ifNull(c.TimeToFirstToken, 0), c.TimeToFirstToken IS NOT NULL) AS TimeToFirstToken
FROM `promptlog`.llm_calls_local AS c
WHERE NOT c.IsRollup
GROUP BY Timestamp, ProjectId, ServiceName, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode;

TRUNCATE TABLE IF EXISTS `promptlog`.`llm_calls_1h_local` ON CLUSTER `promptlog_cluster`;

INSERT INTO `promptlog`.llm_calls_1h SETTINGS insert_distributed_sync = 1
SELECT
    toStartOfHour(c.Timestamp) AS Timestamp,
    c.ProjectId AS ProjectId, c.ServiceName AS ServiceName, c.Environment AS Environment, c.Operation AS Operation,
    c.Provider AS Provider, c.RequestModel AS RequestModel, c.UserId AS UserId, c.PromptName AS PromptName,
    c.PromptVersion AS PromptVersion, c.StatusCode AS StatusCode,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(c.StatusCode = 'Error')) AS Errors,
    sum(c.InputTokens) AS InputTokens,
    sum(c.OutputTokens) AS OutputTokens,
    sum(c.TotalTokens) AS TotalTokens,
    sum(c.CacheReadInputTokens) AS CacheReadInputTokens,
    sum(c.CacheWriteInputTokens) AS CacheWriteInputTokens,
    sum(c.ReasoningOutputTokens) AS ReasoningOutputTokens,
    toFloat64(sum(ifNull(c.CostUsd, 0))) AS CostUsd,
    toUInt64(countIf(c.CostUsd IS NOT NULL)) AS CostCalls,
    toUInt64(countIf(c.TimeToFirstToken IS NOT NULL)) AS TtftCalls,
    max(c.Timestamp) AS LastSeen,
    quantilesState(0.5, 0.95, 0.99)(c.Duration) AS Duration,
    quantilesStateIf(0.5, 0.95, 0.99)(ifNull(c.TimeToFirstToken, 0), c.TimeToFirstToken IS NOT NULL) AS TimeToFirstToken
FROM `promptlog`.llm_calls AS c
WHERE NOT c.IsRollup
GROUP BY Timestamp, ProjectId, ServiceName, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode;

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (15, '0015_llm_calls_1h_mv');

-- migration 0016_otel_metrics_gauge
CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_gauge_local ON CLUSTER `promptlog_cluster` (
    ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName String CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    Value Float64 CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix DateTime64(9),
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(TimeUnix)
ORDER BY (ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_gauge ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_metrics_gauge_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_metrics_gauge_local', cityHash64(ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix)));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (16, '0016_otel_metrics_gauge');

-- migration 0017_otel_metrics_sum
CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_sum_local ON CLUSTER `promptlog_cluster` (
    ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName String CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    Value Float64 CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix DateTime64(9),
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    IsMonotonic Boolean CODEC(Delta, ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(TimeUnix)
ORDER BY (ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_sum ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_metrics_sum_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_metrics_sum_local', cityHash64(ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix)));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (17, '0017_otel_metrics_sum');

-- migration 0018_otel_metrics_histogram
CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_histogram_local ON CLUSTER `promptlog_cluster` (
    ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName String CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    BucketCounts Array(UInt64) CODEC(ZSTD(1)),
    ExplicitBounds Array(Float64) CODEC(ZSTD(1)),
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix DateTime64(9),
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
    Min Float64 CODEC(ZSTD(1)),
    Max Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(TimeUnix)
ORDER BY (ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_histogram ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_metrics_histogram_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_metrics_histogram_local', cityHash64(ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix)));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (18, '0018_otel_metrics_histogram');

-- migration 0019_otel_metrics_exponential_histogram
CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_exponential_histogram_local ON CLUSTER `promptlog_cluster` (
    ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName String CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    Scale Int32 CODEC(ZSTD(1)),
    ZeroCount UInt64 CODEC(ZSTD(1)),
    PositiveOffset Int32 CODEC(ZSTD(1)),
    PositiveBucketCounts Array(UInt64) CODEC(ZSTD(1)),
    NegativeOffset Int32 CODEC(ZSTD(1)),
    NegativeBucketCounts Array(UInt64) CODEC(ZSTD(1)),
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix DateTime64(9),
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
    Min Float64 CODEC(ZSTD(1)),
    Max Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(TimeUnix)
ORDER BY (ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_exponential_histogram ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_metrics_exponential_histogram_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_metrics_exponential_histogram_local', cityHash64(ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix)));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (19, '0019_otel_metrics_exponential_histogram');

-- migration 0020_otel_metrics_summary
CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_summary_local ON CLUSTER `promptlog_cluster` (
    ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName String CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    StartTimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    ValueAtQuantiles Nested (
        Quantile Float64,
        Value Float64
    ) CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(TimeUnix)
ORDER BY (ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
TTL toDateTime(TimeUnix) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.otel_metrics_summary ON CLUSTER `promptlog_cluster` AS `promptlog`.otel_metrics_summary_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'otel_metrics_summary_local', cityHash64(ProjectId, ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix)));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (20, '0020_otel_metrics_summary');

-- migration 0021_scores
CREATE TABLE IF NOT EXISTS `promptlog`.scores_local ON CLUSTER `promptlog_cluster` (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', Version, IsDeleted)
ORDER BY (ProjectId, ScoreId)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS `promptlog`.scores ON CLUSTER `promptlog_cluster` AS `promptlog`.scores_local ENGINE = Distributed('promptlog_cluster', 'promptlog', 'scores_local', cityHash64(ProjectId, ScoreId));

INSERT INTO `promptlog`.schema_migrations (Version, Name) VALUES (21, '0021_scores');

ALTER TABLE `promptlog`.`otel_traces_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(Timestamp) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`otel_traces_trace_id_ts_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(Start) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`otel_logs_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(Timestamp) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`llm_calls_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(Timestamp) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`collector_stats_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(Timestamp) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`llm_calls_1m_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(Timestamp) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`llm_calls_1h_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(Timestamp) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`otel_metrics_gauge_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(TimeUnix) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`otel_metrics_sum_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(TimeUnix) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`otel_metrics_histogram_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(TimeUnix) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`otel_metrics_exponential_histogram_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(TimeUnix) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`otel_metrics_summary_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(TimeUnix) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `promptlog`.`scores_local` ON CLUSTER `promptlog_cluster` MODIFY TTL toDateTime(Timestamp) + toIntervalDay(30) SETTINGS materialize_ttl_after_modify = 0;

