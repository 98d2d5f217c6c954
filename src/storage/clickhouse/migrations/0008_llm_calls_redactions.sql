-- How many PII findings and content-policy changes the collector's redaction step made in the call's
-- span (with its resource and scope) and in the log records joined into it; 0 = nothing redacted.
-- Existing rows read 0.
ALTER TABLE {db}.llm_calls ADD COLUMN IF NOT EXISTS Redactions UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)) AFTER Convention
