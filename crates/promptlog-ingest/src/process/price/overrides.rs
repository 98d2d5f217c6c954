//! Configured prices for models the data lacks or prices differently (fine-tuned, self-hosted,
//! negotiated): a case-insensitive glob on the model name (`*` any run of characters, `?` one), and
//! optionally the provider, with USD prices per million tokens.

use crate::rows::LlmCallRow;

use super::{Priced, source};

/// A case-insensitive glob: `*` matches any run of characters, `?` exactly one; nothing else is special.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob(Vec<char>);

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Self {
        Self(pattern.to_lowercase().chars().collect())
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.to_lowercase().chars().collect();
        let (p, t) = (&self.0, &text);
        // Iterative matching with one backtrack point (the last `*`): linear in practice.
        let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some(pi);
                mark = ti;
                pi += 1;
            } else if let Some(s) = star {
                pi = s + 1;
                mark += 1;
                ti = mark;
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

/// One override: prices per million tokens for the models matching `model`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceOverride {
    /// The pattern as configured (stored in `PriceModel`).
    pub pattern: String,
    /// The compiled pattern.
    pub model: Glob,
    /// Only calls of this provider (`Provider` as stored), when set.
    pub provider: Option<String>,
    /// USD per million fresh input tokens.
    pub input: f64,
    /// USD per million output tokens (reasoning included).
    pub output: f64,
    /// USD per million cache-read tokens; the input price when unset.
    pub cache_read: Option<f64>,
    /// USD per million cache-write tokens; the input price when unset.
    pub cache_write: Option<f64>,
}

impl PriceOverride {
    /// An override for `pattern` at `input`/`output` USD per million tokens, any provider, cache
    /// tokens at the input price.
    pub fn new(pattern: &str, input: f64, output: f64) -> Self {
        Self {
            pattern: pattern.into(),
            model: Glob::new(pattern),
            provider: None,
            input,
            output,
            cache_read: None,
            cache_write: None,
        }
    }

    /// Whether it applies to a call of `provider` with `model`.
    pub fn matches(&self, provider: &str, model: &str) -> bool {
        self.provider.as_deref().is_none_or(|p| p.eq_ignore_ascii_case(provider)) && self.model.matches(model)
    }

    /// The call's cost at these prices.
    pub(super) fn price(&self, row: &LlmCallRow) -> Priced {
        let (read, write) = (row.cache_read_input_tokens, row.cache_write_input_tokens);
        let fresh = row.input_tokens.saturating_sub(read + write);
        let input = (fresh as f64 * self.input
            + read as f64 * self.cache_read.unwrap_or(self.input)
            + write as f64 * self.cache_write.unwrap_or(self.input))
            / 1e6;
        let output = row.output_tokens as f64 * self.output / 1e6;
        Priced { input, output, total: input + output, model: self.pattern.clone(), source: source::OVERRIDE }
    }
}
