-- Which managed prompt a call used, from every convention that says so (see the ingest crate's
-- `normalize/prompt.rs`): name, version, the template text and the variables it was filled with.
-- Empty when the application did not say. Existing rows read '' / {}.
ALTER TABLE {db}.llm_calls ADD COLUMN IF NOT EXISTS PromptName LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)) AFTER PriceModel;
ALTER TABLE {db}.llm_calls ADD COLUMN IF NOT EXISTS PromptVersion LowCardinality(String) DEFAULT '' CODEC(ZSTD(1)) AFTER PromptName;
ALTER TABLE {db}.llm_calls ADD COLUMN IF NOT EXISTS PromptTemplate String DEFAULT '' CODEC(ZSTD(3)) AFTER PromptVersion;
ALTER TABLE {db}.llm_calls ADD COLUMN IF NOT EXISTS PromptVariables Map(LowCardinality(String), String) CODEC(ZSTD(1)) AFTER PromptTemplate
