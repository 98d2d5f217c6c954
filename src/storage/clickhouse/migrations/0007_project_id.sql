-- The project of every row (issue 9): the API key's project, written by the collector, never taken from
-- client attributes. Rows stored before this migration read as 'default' (the DEFAULT is computed for
-- parts that lack the column, so nothing is rewritten), as do rows an exporter writes without it.
--
-- Placed first in each table. On an existing MergeTree an ALTER cannot put a new column at the front of
-- the sorting key (only append it), and rebuilding the tables would rewrite every row and change the
-- exporter-compatible layout, so ProjectId gets a data-skipping `set` index instead: a per-project query
-- skips every granule that holds none of the project's rows. Rows are sorted by ServiceName first (by
-- time in 5-minute buckets first, for logs), and a project's services are its own, so a granule rarely
-- mixes projects. `set(256)`: exact (no false positives, unlike a bloom filter) while a granule holds at
-- most 256 projects; beyond that the granule is just not skipped. MATERIALIZE INDEX builds it for parts
-- written before (a background mutation).
--
-- One statement per table, each idempotent: a migration interrupted half-way is re-run whole.
ALTER TABLE {db}.otel_traces
    ADD COLUMN IF NOT EXISTS ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)) FIRST,
    ADD INDEX IF NOT EXISTS idx_project_id ProjectId TYPE set(256) GRANULARITY 1;
ALTER TABLE {db}.otel_traces MATERIALIZE INDEX idx_project_id;
ALTER TABLE {db}.otel_logs
    ADD COLUMN IF NOT EXISTS ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)) FIRST,
    ADD INDEX IF NOT EXISTS idx_project_id ProjectId TYPE set(256) GRANULARITY 1;
ALTER TABLE {db}.otel_logs MATERIALIZE INDEX idx_project_id;
ALTER TABLE {db}.llm_calls
    ADD COLUMN IF NOT EXISTS ProjectId LowCardinality(String) DEFAULT 'default' CODEC(ZSTD(1)) FIRST,
    ADD INDEX IF NOT EXISTS idx_project_id ProjectId TYPE set(256) GRANULARITY 1;
ALTER TABLE {db}.llm_calls MATERIALIZE INDEX idx_project_id;
