//! Cost at ingest: a row step that prices every non-rollup LLM call from the `genai-prices` data
//! (Pydantic's price database, bundled in the crate; a newer v2 JSON can be swapped in at run time),
//! or from the configured overrides. A row step, so live and replayed calls are priced alike; the
//! join prices a call again after merging its duplicates into it (their token counts may differ).
//!
//! Precedence: a cost the client sent (`CostSource = client`) is kept; then the first override whose
//! pattern matches (`override`); then the price table (`price_table`); otherwise `unpriced`, counted
//! per provider and model in [`Unpriced`] when the join releases the call.
//!
//! Token rule: `InputTokens` includes cache reads and writes and `OutputTokens` includes reasoning
//! (GenAI semconv, see `normalize::usage`). genai-prices wants the same inclusive shape: it prices
//! `input_tokens − cache_read_tokens − cache_write_tokens` at the input price, so the counts are
//! passed as they are stored. Cache writes are priced at the 5-minute write price (`cache_write_mtok`;
//! the 1-hour price needs a count the conventions do not carry).

mod data;
mod overrides;
mod unpriced;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use genai_prices::{ErrorKind, PriceRequest, Usage, UsageKey};

pub use data::{DataError, PriceData};
pub use overrides::{Glob, PriceOverride};
pub use unpriced::{MAX_UNPRICED_SERIES, OTHER, Unpriced};

use crate::Submission;
use crate::process::Processor;
use crate::request::RequestContext;
use crate::rows::LlmCallRow;

/// `CostSource` values.
pub mod source {
    /// The client sent the cost (kept as sent).
    pub const CLIENT: &str = "client";
    /// Priced from the genai-prices data.
    pub const PRICE_TABLE: &str = "price_table";
    /// Priced by a configured override.
    pub const OVERRIDE: &str = "override";
    /// No price found (the model or provider is not in the data).
    pub const UNPRICED: &str = "unpriced";
}

/// The span attributes carrying the service tier the provider billed (price context).
const SERVICE_TIER_ATTRIBUTES: [&str; 2] = ["openai.response.service_tier", "gen_ai.openai.response.service_tier"];

/// Our provider registry values that genai-prices does not resolve as they are, and the provider id
/// to use instead (the research note's table). Anything else is passed as is.
const PROVIDER_ALIASES: [(&str, &str); 6] = [
    ("aws.bedrock", "aws"),
    ("gcp.gemini", "google"),
    ("gcp.vertex_ai", "google"),
    ("gcp.gen_ai", "google"),
    ("azure.ai.inference", "azure"),
    ("x_ai", "x-ai"),
];

/// The genai-prices provider id for a `Provider` value; `None` when the row has none.
pub fn provider_id(provider: &str) -> Option<&str> {
    if provider.is_empty() {
        return None;
    }
    let mapped = PROVIDER_ALIASES.iter().find(|(ours, _)| *ours == provider).map(|(_, theirs)| *theirs);
    Some(mapped.unwrap_or(provider))
}

/// The cost of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    /// USD for the input side (fresh input, cache reads and writes).
    pub input: f64,
    /// USD for the output side (reasoning included).
    pub output: f64,
    /// `input + output`, or the total the price data computes.
    pub total: f64,
    /// The entry that matched: `provider/model` for the price table, the pattern for an override.
    pub model: String,
    /// [`source::PRICE_TABLE`] or [`source::OVERRIDE`].
    pub source: &'static str,
}

/// The pricing step: shared price data, overrides and the unpriced counter.
#[derive(Debug, Clone)]
pub struct Pricer {
    data: PriceData,
    overrides: Arc<[PriceOverride]>,
    unpriced: Arc<Unpriced>,
}

impl Pricer {
    /// Prices with `data` (see [`PriceData::bundled`]) after `overrides`, in order.
    pub fn new(data: PriceData, overrides: Vec<PriceOverride>) -> Self {
        Self { data, overrides: overrides.into(), unpriced: Arc::new(Unpriced::default()) }
    }

    /// The price data, to swap in a newer file.
    pub fn data(&self) -> &PriceData {
        &self.data
    }

    /// The unpriced-call counter, for `/metrics`. The pipeline counts each call once, when the join
    /// releases it (so the copies of a duplicated call, and calls priced again after a merge, are not
    /// counted twice); see [`Unpriced::count`].
    pub fn unpriced(&self) -> Arc<Unpriced> {
        self.unpriced.clone()
    }

    /// The cost of a call from its provider, models, token counts, start time and service tier;
    /// `None` when nothing prices it. Ignores the cost the row already carries.
    pub fn quote(&self, row: &LlmCallRow) -> Option<Priced> {
        let models = [row.response_model.as_str(), row.request_model.as_str()];
        let models = models.iter().copied().filter(|m| !m.is_empty());
        for model in models.clone() {
            if let Some(o) = self.overrides.iter().find(|o| o.matches(&row.provider, model)) {
                return Some(o.price(row));
            }
        }
        let usage = usage(row);
        let at = UNIX_EPOCH + Duration::from_nanos(u64::try_from(row.timestamp).unwrap_or(0));
        let tier = SERVICE_TIER_ATTRIBUTES
            .iter()
            .find_map(|k| row.span_attributes.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()));
        let calculator = self.data.current();
        let price = |model: &str, provider: Option<&str>| {
            let mut request = PriceRequest::new(model, &usage).with_timestamp(at);
            if let Some(p) = provider {
                request = request.with_provider_id(p);
            }
            if let Some(tier) = tier.filter(|t| !t.is_empty()) {
                request = request.with_price_context("service_tier", tier);
            }
            calculator.calculate(&request)
        };
        for model in models {
            // An unknown provider id: retry on the model alone (the data's own model matching).
            let result = match price(model, provider_id(&row.provider)) {
                Err(e) if e.kind() == ErrorKind::ProviderNotFound => price(model, None),
                other => other,
            };
            match result {
                Ok(p) => {
                    return Some(Priced {
                        input: p.input_price,
                        output: p.output_price,
                        total: p.total_price,
                        model: format!("{}/{}", p.provider_id, p.model_id),
                        source: source::PRICE_TABLE,
                    });
                }
                Err(e) if e.kind() == ErrorKind::ModelNotFound || e.kind() == ErrorKind::ProviderNotFound => {}
                // Inconsistent usage (or data): no other model name would price it.
                Err(_) => return None,
            }
        }
        None
    }

    /// Fills the cost columns of one call (see the module documentation); returns whether it is
    /// unpriced. Rollup rows are not priced (their usage repeats their inner calls'), but a cost
    /// their client sent is still marked `client`. Idempotent: pricing a priced row again gives the
    /// same values (and a `client` row stays as it is).
    pub fn price_row(&self, row: &mut LlmCallRow) -> bool {
        if row.cost_source == source::CLIENT || (row.cost_source.is_empty() && row.cost_usd.is_some()) {
            row.cost_source = source::CLIENT.into();
            return false;
        }
        if row.is_rollup && row.duplicate_of.is_empty() {
            return false;
        }
        match self.quote(row) {
            Some(p) => {
                row.input_cost_usd = Some(p.input);
                row.output_cost_usd = Some(p.output);
                row.cost_usd = Some(p.total);
                row.price_model = p.model;
                row.cost_source = p.source.into();
                false
            }
            None => {
                (row.input_cost_usd, row.output_cost_usd, row.cost_usd) = (None, None, None);
                row.price_model.clear();
                row.cost_source = source::UNPRICED.into();
                true
            }
        }
    }
}

/// The stored counts in genai-prices' shape (inclusive, like ours).
fn usage(row: &LlmCallRow) -> Usage {
    let mut usage = Usage::new();
    let counts = [
        (UsageKey::INPUT_TOKENS, row.input_tokens),
        (UsageKey::OUTPUT_TOKENS, row.output_tokens),
        (UsageKey::CACHE_READ_TOKENS, row.cache_read_input_tokens),
        (UsageKey::CACHE_WRITE_TOKENS, row.cache_write_input_tokens),
        (UsageKey::OUTPUT_REASONING_TOKENS, row.reasoning_output_tokens),
    ];
    for (key, n) in counts {
        if n > 0 {
            usage.insert(key, n as f64);
        }
    }
    usage
}

impl Processor for Pricer {
    fn name(&self) -> &'static str {
        "pricing"
    }

    fn rows(&self, _ctx: &RequestContext, rows: &mut Submission) {
        for call in &mut rows.calls {
            self.price_row(&mut call.row);
        }
    }

    fn merged(&self, row: &mut LlmCallRow) {
        // Counted once already, when the copy was priced on arrival.
        self.price_row(row);
    }
}
