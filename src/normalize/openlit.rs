//! OpenLIT: official attributes plus `gen_ai.server.time_to_first_token`, `gen_ai.usage.cost` and
//! OpenAI-style usage details (`gen_ai.usage.prompt_tokens_details.*`).

use super::attrs::Attrs;
use crate::rows::LlmCallRow;

/// Fills what the official attributes left empty.
pub fn fill(row: &mut LlmCallRow, a: Attrs<'_>) {
    if row.time_to_first_token.is_none() {
        row.time_to_first_token = a.f64("gen_ai.server.time_to_first_token");
    }
    let set = |field: &mut u64, keys: &[&str]| {
        if *field == 0 {
            *field = keys.iter().find_map(|k| a.u64(k)).unwrap_or(0);
        }
    };
    set(&mut row.cache_read_input_tokens, &["gen_ai.usage.prompt_tokens_details.cached_tokens"]);
    set(&mut row.cache_write_input_tokens, &["gen_ai.usage.prompt_tokens_details.cache_creation_tokens"]);
    set(
        &mut row.reasoning_output_tokens,
        &["gen_ai.usage.completion_tokens_details.reasoning_tokens", "gen_ai.usage.reasoning_tokens"],
    );
    if row.total_tokens == 0 {
        row.total_tokens = a.u64("gen_ai.usage.total_tokens").unwrap_or(row.input_tokens + row.output_tokens);
    }
}
