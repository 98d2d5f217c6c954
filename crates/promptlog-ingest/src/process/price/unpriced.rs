//! Unpriced calls by provider and model, for `/metrics`. The label set is bounded: after
//! [`MAX_UNPRICED_SERIES`] distinct pairs, new ones are counted under `other`/`other`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::rows::LlmCallRow;

use super::source;

/// Most distinct (provider, model) series kept.
pub const MAX_UNPRICED_SERIES: usize = 100;
/// The label of the folded series.
pub const OTHER: &str = "other";

/// The counter.
#[derive(Debug, Default)]
pub struct Unpriced(Mutex<BTreeMap<(String, String), u64>>);

impl Unpriced {
    /// Counts `row` if it is a counted (not rollup, not duplicate) unpriced call; returns whether it did.
    pub fn count(&self, row: &LlmCallRow) -> bool {
        if row.is_rollup || row.cost_source != source::UNPRICED {
            return false;
        }
        let model = if row.response_model.is_empty() { &row.request_model } else { &row.response_model };
        self.add(&row.provider, model);
        true
    }

    /// Counts one unpriced call.
    pub fn add(&self, provider: &str, model: &str) {
        let mut series = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (provider.to_owned(), model.to_owned());
        let key = if series.contains_key(&key) || series.len() < MAX_UNPRICED_SERIES {
            key
        } else {
            (OTHER.to_owned(), OTHER.to_owned())
        };
        *series.entry(key).or_default() += 1;
    }

    /// Every series, sorted by provider and model.
    pub fn snapshot(&self) -> Vec<((String, String), u64)> {
        let series = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        series.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}
