-- Fills llm_calls_1m from every insert into llm_calls, then backfills it from the rows already stored.
-- The backfill (TRUNCATE + INSERT … SELECT over all of llm_calls) makes the migration idempotent and
-- exact as long as nothing writes llm_calls meanwhile: the collector migrates before it accepts data;
-- with several collectors on one database, start one first (see README, Tables). It reads every stored
-- call once, so on a large existing table the first start after the upgrade takes as long as that scan.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.llm_calls_1m_mv
TO {db}.llm_calls_1m
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
FROM {db}.llm_calls AS c
WHERE NOT c.IsRollup
GROUP BY Timestamp, ProjectId, ServiceName, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode;
TRUNCATE TABLE IF EXISTS {db}.llm_calls_1m;
INSERT INTO {db}.llm_calls_1m
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
FROM {db}.llm_calls AS c
WHERE NOT c.IsRollup
GROUP BY Timestamp, ProjectId, ServiceName, Environment, Operation, Provider, RequestModel, UserId, PromptName,
    PromptVersion, StatusCode
