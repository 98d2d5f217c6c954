-- A second recording of a call already recorded by another instrumentation (an SDK's own tracing and an
-- OTel instrumentation, a framework and the provider instrumentation under it): the hex span id of the
-- row that counts the call. Such rows are stored with IsRollup = true, so every `NOT IsRollup` sum counts
-- the call once; the counted row carries the merged values of both. Empty = not a duplicate.
-- Existing rows read ''.
ALTER TABLE {db}.llm_calls ADD COLUMN IF NOT EXISTS DuplicateOf String DEFAULT '' CODEC(ZSTD(1)) AFTER Redactions
