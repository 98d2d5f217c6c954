//! Token usage in the conventions' inclusive form, built from each provider's native numbers.
//!
//! The conventions say `gen_ai.usage.input_tokens` includes cache reads and writes and
//! `gen_ai.usage.output_tokens` includes reasoning. Providers disagree on what they report, so the
//! constructors below do the arithmetic once; pricing downstream then never double counts.

/// Token counts of one call, inclusive as the conventions define them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// All output tokens, reasoning included.
    pub output_tokens: Option<u64>,
    /// Input tokens read from the cache (part of `input_tokens`).
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the cache (part of `input_tokens`).
    pub cache_creation_input_tokens: Option<u64>,
    /// Reasoning tokens (part of `output_tokens`).
    pub reasoning_output_tokens: Option<u64>,
}

impl Usage {
    /// Already-inclusive counts (input includes cache, output includes reasoning).
    pub fn new(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage { input_tokens: Some(input_tokens), output_tokens: Some(output_tokens), ..Usage::default() }
    }

    /// OpenAI: `prompt_tokens` already includes `cached_tokens`, `completion_tokens` already includes
    /// `reasoning_tokens`; nothing is added.
    pub fn openai(prompt_tokens: u64, completion_tokens: u64, cached_tokens: u64, reasoning_tokens: u64) -> Usage {
        Usage {
            input_tokens: Some(prompt_tokens),
            output_tokens: Some(completion_tokens),
            cache_read_input_tokens: Some(cached_tokens),
            cache_creation_input_tokens: None,
            reasoning_output_tokens: Some(reasoning_tokens),
        }
    }

    /// Anthropic: `input_tokens` excludes cache reads and writes, so the inclusive input is
    /// `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`. Thinking tokens are
    /// already part of `output_tokens`.
    pub fn anthropic(
        input_tokens: u64,
        output_tokens: u64,
        cache_read_input_tokens: u64,
        cache_creation_input_tokens: u64,
    ) -> Usage {
        Usage {
            input_tokens: Some(input_tokens + cache_read_input_tokens + cache_creation_input_tokens),
            output_tokens: Some(output_tokens),
            cache_read_input_tokens: Some(cache_read_input_tokens),
            cache_creation_input_tokens: Some(cache_creation_input_tokens),
            reasoning_output_tokens: None,
        }
    }

    /// Gemini: `promptTokenCount` includes `cachedContentTokenCount`, but `candidatesTokenCount`
    /// excludes `thoughtsTokenCount`, so the inclusive output is candidates + thoughts.
    pub fn gemini(
        prompt_token_count: u64,
        candidates_token_count: u64,
        thoughts_token_count: u64,
        cached_content_token_count: u64,
    ) -> Usage {
        Usage {
            input_tokens: Some(prompt_token_count),
            output_tokens: Some(candidates_token_count + thoughts_token_count),
            cache_read_input_tokens: Some(cached_content_token_count),
            cache_creation_input_tokens: None,
            reasoning_output_tokens: Some(thoughts_token_count),
        }
    }

    /// Input plus output, when both are known.
    pub fn total_tokens(&self) -> Option<u64> {
        Some(self.input_tokens? + self.output_tokens?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_counts_are_already_inclusive() {
        let u = Usage::openai(1200, 300, 1024, 120);
        assert_eq!((u.input_tokens, u.output_tokens), (Some(1200), Some(300)));
        assert_eq!((u.cache_read_input_tokens, u.reasoning_output_tokens), (Some(1024), Some(120)));
        assert_eq!(u.total_tokens(), Some(1500));
    }

    #[test]
    fn anthropic_input_adds_cache_read_and_write() {
        // The reference case: 5 fresh + 128955 read + 1253 written.
        let u = Usage::anthropic(5, 42, 128_955, 1_253);
        assert_eq!(u.input_tokens, Some(130_213));
        assert_eq!((u.cache_read_input_tokens, u.cache_creation_input_tokens), (Some(128_955), Some(1_253)));
        assert_eq!(u.output_tokens, Some(42));
    }

    #[test]
    fn gemini_output_adds_thoughts() {
        let u = Usage::gemini(800, 200, 956, 512);
        assert_eq!(u.output_tokens, Some(1_156));
        assert_eq!(u.reasoning_output_tokens, Some(956));
        assert_eq!((u.input_tokens, u.cache_read_input_tokens), (Some(800), Some(512)));
    }
}
