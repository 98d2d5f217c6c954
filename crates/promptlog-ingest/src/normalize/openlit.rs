//! OpenLIT: official attributes plus `gen_ai.server.time_to_first_token`, `gen_ai.usage.cost` and
//! OpenAI-style usage details (`gen_ai.usage.prompt_tokens_details.*`).

use super::attrs::Attrs;
use super::call::{fill_if_zero, fill_total};
use crate::rows::LlmCallRow;

/// Fills what the official attributes left empty.
pub fn fill(row: &mut LlmCallRow, a: Attrs<'_>) {
    if row.time_to_first_token.is_none() {
        row.time_to_first_token = a.f64("gen_ai.server.time_to_first_token");
    }
    fill_if_zero(&mut row.cache_read_input_tokens, a.u64("gen_ai.usage.prompt_tokens_details.cached_tokens"));
    fill_if_zero(&mut row.cache_write_input_tokens, a.u64("gen_ai.usage.prompt_tokens_details.cache_creation_tokens"));
    fill_if_zero(
        &mut row.reasoning_output_tokens,
        a.first_u64(&["gen_ai.usage.completion_tokens_details.reasoning_tokens", "gen_ai.usage.reasoning_tokens"]),
    );
    fill_total(row, a.u64("gen_ai.usage.total_tokens"));
}
