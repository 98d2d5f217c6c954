-- Cost at ingest (see the README's "Cost"): the input and output parts of CostUsd, where CostUsd comes
-- from (client = sent by the client and kept; price_table = genai-prices data; override = a configured
-- price; unpriced = no price found, CostUsd NULL) and the price entry that matched. Existing rows read
-- NULL and '' (`promptlog reprice` fills them).
ALTER TABLE {db}.llm_calls
    ADD COLUMN IF NOT EXISTS InputCostUsd Nullable(Float64) CODEC(ZSTD(1)) AFTER DuplicateOf,
    ADD COLUMN IF NOT EXISTS OutputCostUsd Nullable(Float64) CODEC(ZSTD(1)) AFTER InputCostUsd,
    ADD COLUMN IF NOT EXISTS CostSource LowCardinality(String) DEFAULT '' AFTER OutputCostUsd,
    ADD COLUMN IF NOT EXISTS PriceModel LowCardinality(String) DEFAULT '' AFTER CostSource
