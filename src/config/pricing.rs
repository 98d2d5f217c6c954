//! The `pricing` section: cost at ingest (see the README's "Cost"). Parsed and validated here;
//! [`PricingConfig::pricer`] loads the data file and gives the ingest crate's
//! [`Pricer`](promptlog_ingest::process::price::Pricer), from which `server.rs` builds the processor.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use promptlog_ingest::process::price::{DataError, Glob, PriceData, PriceOverride, Pricer};

use super::ConfigError;

/// Pricing is on unless turned off.
pub const DEFAULT_PRICING_ENABLED: bool = true;
/// How often `data_file` is checked for changes (its modification time).
pub const DEFAULT_PRICING_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// Cost at ingest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    /// Price every call without a client cost (env `PROMPTLOG_PRICING_ENABLED`).
    pub enabled: bool,
    /// A genai-prices v2 JSON (`prices/new_data/v2/data.json` of pydantic/genai-prices) used instead
    /// of the data bundled in the binary; re-read when its modification time changes. A bad file
    /// refuses the start; on reload it is logged and the data in use is kept
    /// (env `PROMPTLOG_PRICING_DATA_FILE`).
    pub data_file: Option<PathBuf>,
    /// How often `data_file` is checked for changes (env `PROMPTLOG_PRICING_RELOAD_INTERVAL`).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Prices that win over the data, first match wins: fine-tuned, self-hosted or negotiated models.
    pub overrides: Vec<OverrideConfig>,
}

/// One override: USD per million tokens for the models matching `model`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    /// Case-insensitive glob on the response model, then the request model: `*` any run of
    /// characters, `?` one character (e.g. `ft:gpt-4o-mini:acme:*`).
    pub model: String,
    /// Only calls of this `Provider` (registry spelling, e.g. `openai`); any provider when unset.
    #[serde(default)]
    pub provider: Option<String>,
    /// USD per million fresh (uncached) input tokens.
    pub input: f64,
    /// USD per million output tokens (reasoning included).
    pub output: f64,
    /// USD per million cache-read tokens; the `input` price when unset.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// USD per million cache-write tokens; the `input` price when unset.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_PRICING_ENABLED,
            data_file: None,
            reload_interval: DEFAULT_PRICING_RELOAD_INTERVAL,
            overrides: Vec::new(),
        }
    }
}

impl From<DataError> for ConfigError {
    fn from(e: DataError) -> Self {
        let value = match &e {
            DataError::Read { path, .. } | DataError::Invalid { path, .. } => path.display().to_string(),
        };
        ConfigError::Invalid { key: "pricing.data_file", value, reason: e.to_string() }
    }
}

impl PricingConfig {
    /// Checks what serde cannot: prices are finite and not negative, patterns not empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.reload_interval.is_zero() {
            return Err(invalid("pricing.reload_interval", "0s", "must be greater than 0"));
        }
        for o in &self.overrides {
            if o.model.trim().is_empty() {
                return Err(invalid("pricing.overrides.model", &o.model, "must not be empty"));
            }
            let prices = [Some(o.input), Some(o.output), o.cache_read, o.cache_write];
            if prices.into_iter().flatten().any(|p| !p.is_finite() || p < 0.0) {
                return Err(invalid("pricing.overrides", &o.model, "prices must be finite and not negative"));
            }
        }
        Ok(())
    }

    /// The pricing step: the data file read and checked now (a bad file refuses the start), or the
    /// bundled data; the overrides in order.
    pub fn pricer(&self) -> Result<Pricer, ConfigError> {
        let data = match &self.data_file {
            Some(path) => PriceData::from_file(path)?,
            None => PriceData::bundled(),
        };
        let overrides = self
            .overrides
            .iter()
            .map(|o| PriceOverride {
                pattern: o.model.clone(),
                model: Glob::new(&o.model),
                provider: o.provider.clone(),
                input: o.input,
                output: o.output,
                cache_read: o.cache_read,
                cache_write: o.cache_write,
            })
            .collect();
        Ok(Pricer::new(data, overrides))
    }
}

fn invalid(key: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid { key, value: value.into(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn overrides_parse_and_price() {
        let yaml = "pricing:\n  overrides:\n    - model: 'ft:*:acme:*'\n      provider: openai\n      input: 1.5\n      output: 6\n      cache_read: 0.75\n";
        let config = Config::from_yaml(yaml).unwrap();
        config.validate().unwrap();
        let o = &config.pricing.overrides[0];
        assert_eq!((o.model.as_str(), o.provider.as_deref(), o.cache_write), ("ft:*:acme:*", Some("openai"), None));
        let pricer = config.pricing.pricer().unwrap();
        let mut row = promptlog_ingest::rows::LlmCallRow {
            provider: "openai".into(),
            response_model: "ft:gpt-4o-mini:acme:x1".into(),
            input_tokens: 2_000,
            cache_read_input_tokens: 1_000,
            output_tokens: 100,
            ..Default::default()
        };
        pricer.price_row(&mut row);
        assert_eq!(row.cost_source, "override");
        let want = (1_000.0 * 1.5 + 1_000.0 * 0.75 + 100.0 * 6.0) / 1e6;
        assert!((row.cost_usd.unwrap() - want).abs() < 1e-15);
    }

    #[test]
    fn unknown_keys_bad_prices_and_bad_files_are_refused() {
        let err = Config::from_yaml(
            "pricing:\n  overrides:\n    - model: x\n      input: 1\n      output: 1\n      cached: 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cached"), "{err}");
        let negative =
            Config::from_yaml("pricing:\n  overrides:\n    - model: x\n      input: -1\n      output: 1\n").unwrap();
        assert!(negative.validate().unwrap_err().to_string().contains("pricing.overrides"));

        let dir = std::env::temp_dir().join(format!("promptlog-pricing-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("prices.json");
        std::fs::write(&bad, "[{\"id\": 1}]").unwrap();
        for file in [bad.clone(), dir.join("missing.json")] {
            let config = PricingConfig { data_file: Some(file.clone()), ..PricingConfig::default() };
            let err = config.pricer().unwrap_err().to_string();
            assert!(err.contains("pricing.data_file") && err.contains(&file.display().to_string()), "{err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn env_overrides() {
        let mut c = Config::default();
        let vars = [
            ("PROMPTLOG_PRICING_ENABLED", "false"),
            ("PROMPTLOG_PRICING_DATA_FILE", "/etc/promptlog/prices.json"),
            ("PROMPTLOG_PRICING_RELOAD_INTERVAL", "5s"),
        ];
        c.apply_env(|v| vars.iter().find(|(k, _)| *k == v).map(|(_, x)| x.to_string())).unwrap();
        assert!(!c.pricing.enabled);
        assert_eq!(c.pricing.data_file.as_deref(), Some(std::path::Path::new("/etc/promptlog/prices.json")));
        assert_eq!(c.pricing.reload_interval, Duration::from_secs(5));
        let err = c.apply_env(|v| (v == "PROMPTLOG_PRICING_ENABLED").then(|| "maybe".into())).unwrap_err();
        assert!(err.to_string().contains("PROMPTLOG_PRICING_ENABLED"), "{err}");
    }
}
