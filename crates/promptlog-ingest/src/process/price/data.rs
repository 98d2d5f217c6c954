//! The price data in use: the crate's bundled snapshot, or a newer genai-prices v2 JSON file, swapped
//! in atomically (readers never wait; a call is priced with one snapshot from start to end).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use genai_prices::Calculator;

/// A price file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read price data file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not genai-prices v2 data.
    #[error("invalid price data file {path}: {source}")]
    Invalid { path: PathBuf, source: genai_prices::Error },
}

/// Shared, swappable price data; clones share it. `None` inside means the bundled snapshot.
#[derive(Debug, Clone, Default)]
pub struct PriceData(Arc<ArcSwapOption<Calculator>>);

impl PriceData {
    /// The data bundled with genai-prices (decoded now, to keep that off the first call).
    pub fn bundled() -> Self {
        let _ = Calculator::bundled();
        Self::default()
    }

    /// The data of a v2 JSON file.
    pub fn from_file(path: &Path) -> Result<Self, DataError> {
        let data = Self::default();
        data.load(path)?;
        Ok(data)
    }

    /// Reads `path` and, when it is valid, swaps it in; on error the data in use is kept.
    pub fn load(&self, path: &Path) -> Result<(), DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Read { path: path.into(), source })?;
        let calculator =
            Calculator::from_json(bytes).map_err(|source| DataError::Invalid { path: path.into(), source })?;
        self.0.store(Some(Arc::new(calculator)));
        Ok(())
    }

    /// The calculator to price one call with.
    pub(super) fn current(&self) -> Current {
        Current(self.0.load_full())
    }
}

/// One snapshot of the data.
pub(super) struct Current(Option<Arc<Calculator>>);

impl std::ops::Deref for Current {
    type Target = Calculator;
    fn deref(&self) -> &Calculator {
        self.0.as_deref().unwrap_or_else(|| Calculator::bundled())
    }
}
