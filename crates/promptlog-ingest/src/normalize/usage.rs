//! Provider-specific token-count rules, applied to every call after the convention readers: the stored
//! counts have the GenAI semantic-conventions meaning whatever the recording meant —
//! `InputTokens` **includes** cache reads and writes, `OutputTokens` **includes** reasoning (thinking)
//! tokens. A count is only changed when the recording itself proves it was meant otherwise; nothing is
//! guessed.
//!
//! | rule | provider | detected by | fix |
//! | --- | --- | --- | --- |
//! | exclusive input | `anthropic` | `input < cache_read + cache_write` (an inclusive count can never be smaller than its cached parts: Anthropic's own `usage.input_tokens` counts only the uncached tokens) | `input += cache_read + cache_write` |
//! | output without thoughts | `gcp.gemini`, `gcp.vertex_ai`, `gcp.gen_ai` | a recorded total (`gen_ai.usage.total_tokens` or `llm.token_count.total`) with `reasoning > 0` and `input + output + reasoning == total` (Gemini's `candidatesTokenCount` leaves out `thoughtsTokenCount`, its `totalTokenCount` does not) | `output += reasoning` |
//!
//! In both cases a total that was computed from the exclusive counts (`input + output` before the fix)
//! is recomputed. None of the recordings of `tests/fixtures/otlp/anthropic-*` / `google-genai-*` needs
//! either rule (the anthropic SDK 2.15, OpenLLMetry 0.62.4, OpenInference 3.1.0, the official
//! genai-anthropic 1.3b0 and google-genai 1.3b0 instrumentations all record the inclusive counts); they
//! guard against recordings that pass the provider's counts through (older instrumentations, hand-made
//! spans). Which spelling of the cache attributes is read is `otel_genai.rs`'s
//! (`gen_ai.usage.cache_read.input_tokens` / `cache_read_input_tokens`, `cache_creation.input_tokens` /
//! `cache_write.input_tokens` / `cache_creation_input_tokens`) and `openinference.rs`'s
//! (`llm.token_count.prompt_details.cache_read|cache_write`).

use super::attrs::Attrs;
use crate::rows::LlmCallRow;

/// Providers whose output count is Gemini's (candidates, without thoughts).
const GEMINI_PROVIDERS: &[&str] = &["gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai"];

/// Applies every rule of the module table to `row` (its `provider` already normalised).
pub fn fix(row: &mut LlmCallRow, a: Attrs<'_>) {
    let before = (row.input_tokens, row.output_tokens);
    let recorded_total = a.first_u64(&["gen_ai.usage.total_tokens", "llm.token_count.total"]);
    if row.provider == "anthropic" {
        let cached = row.cache_read_input_tokens + row.cache_write_input_tokens;
        if row.input_tokens < cached {
            row.input_tokens += cached;
        }
    }
    if GEMINI_PROVIDERS.contains(&row.provider.as_str())
        && row.reasoning_output_tokens > 0
        && recorded_total == Some(row.input_tokens + row.output_tokens + row.reasoning_output_tokens)
    {
        row.output_tokens += row.reasoning_output_tokens;
    }
    if (row.input_tokens, row.output_tokens) != before && row.total_tokens == before.0 + before.1 {
        row.total_tokens = row.input_tokens + row.output_tokens;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptlog_otlp::kv_i64;

    /// (provider, [input, output, cache read, cache write, reasoning, total column], total attribute)
    /// → (input, output, total).
    type Case = (&'static str, [u64; 6], Option<i64>, [u64; 3]);

    #[test]
    #[rustfmt::skip]
    fn rules() {
        let cases: &[Case] = &[
            // Anthropic exclusive (19 uncached + 1800 read + 240 written) → inclusive.
            ("anthropic", [19, 29, 1800, 240, 0, 48], None, [2059, 29, 2088]),
            // Already inclusive: unchanged (also when it equals the cached sum exactly).
            ("anthropic", [2059, 29, 1800, 240, 0, 2088], None, [2059, 29, 2088]),
            ("anthropic", [2040, 29, 1800, 240, 0, 2069], None, [2040, 29, 2069]),
            // A recorded total that is not input + output is left alone.
            ("anthropic", [19, 29, 1800, 240, 0, 5000], Some(5000), [2059, 29, 5000]),
            // Not Anthropic: never changed.
            ("openai", [19, 29, 1800, 0, 0, 48], None, [19, 29, 48]),
            // Gemini candidates without thoughts (total = 97 + 41 + 200) → output 241.
            ("gcp.gemini", [97, 41, 0, 0, 200, 338], Some(338), [97, 241, 338]),
            ("gcp.vertex_ai", [97, 41, 0, 0, 200, 138], Some(338), [97, 241, 338]),
            // Output already with thoughts (total = 97 + 241): unchanged.
            ("gcp.gemini", [97, 241, 0, 0, 200, 338], Some(338), [97, 241, 338]),
            // No recorded total: no proof, unchanged.
            ("gcp.gemini", [97, 41, 0, 0, 200, 138], None, [97, 41, 138]),
            // No thoughts: unchanged.
            ("gcp.gemini", [97, 41, 0, 0, 0, 138], Some(138), [97, 41, 138]),
        ];
        for (provider, [input, output, read, write, reasoning, total], attr, want) in cases {
            let mut row = LlmCallRow {
                provider: (*provider).to_owned(),
                input_tokens: *input,
                output_tokens: *output,
                cache_read_input_tokens: *read,
                cache_write_input_tokens: *write,
                reasoning_output_tokens: *reasoning,
                total_tokens: *total,
                ..LlmCallRow::default()
            };
            let attrs: Vec<_> = attr.iter().map(|t| kv_i64("gen_ai.usage.total_tokens", *t)).collect();
            fix(&mut row, Attrs(&attrs));
            assert_eq!([row.input_tokens, row.output_tokens, row.total_tokens], *want, "{provider} {input} {output}");
        }
    }
}
