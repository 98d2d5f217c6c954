-- Per-minute rollup of llm_calls for the dashboards (filled by llm_calls_1m_mv, next migration): one row per
-- minute and key, over counted calls only (NOT IsRollup: agent/workflow wrappers and DuplicateOf copies are
-- left out). Read with sum() for the counters, max() for LastSeen and quantilesMerge(0.5, 0.95, 0.99) /
-- quantilesIfMerge(0.5, 0.95, 0.99) for the latency / time-to-first-token states; rows of one key are only
-- merged in the background, so always aggregate. Model = RequestModel (what the dashboards' model
-- variable filters on). CostUsd sums the calls that have a cost (NULL counts 0); CostCalls counts them.
CREATE TABLE IF NOT EXISTS {db}.llm_calls_1m (
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
) ENGINE = AggregatingMergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Timestamp, ProjectId, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode)
{ttl}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1{table_settings}
