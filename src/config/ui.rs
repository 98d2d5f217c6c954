//! The `ui` section: the built-in call explorer served by `promptlog serve` on its own admin
//! listener (see [`crate::ui`]).

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;

/// The explorer is on unless turned off.
pub const DEFAULT_UI_ENABLED: bool = true;
/// Loopback only by default: the explorer shows prompts and completions, so exposing it on a
/// network is a decision (with API keys on, its JSON endpoints need a `read`-scope key).
pub const DEFAULT_UI_ENDPOINT: &str = "127.0.0.1:4319";
/// Grafana of the compose stack (`compose.yaml` publishes it on port 3000).
pub const DEFAULT_UI_GRAFANA_URL: &str = "http://localhost:3000";

/// The built-in explorer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the explorer (env `PROMPTLOG_UI_ENABLED`); `false`: no listener is opened.
    pub enabled: bool,
    /// Listen address of the explorer (env `PROMPTLOG_UI_ENDPOINT`).
    pub endpoint: String,
    /// Base URL of the Grafana the call page links traces to (env `PROMPTLOG_UI_GRAFANA_URL`);
    /// empty: no Grafana link.
    pub grafana_url: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: DEFAULT_UI_ENABLED,
            endpoint: DEFAULT_UI_ENDPOINT.into(),
            grafana_url: DEFAULT_UI_GRAFANA_URL.into(),
        }
    }
}

impl UiConfig {
    /// Checks the address and the Grafana URL's scheme (when the explorer is on).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            key,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if !self.enabled {
            return Ok(());
        }
        self.endpoint
            .parse::<SocketAddr>()
            .map_err(|_| invalid("ui.endpoint", &self.endpoint, "expected host:port, e.g. 127.0.0.1:4319"))?;
        let url = &self.grafana_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("ui.grafana_url", url, "expected an http:// or https:// URL, or empty for none"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_naming_the_key_unless_the_explorer_is_off() {
        let bad_endpoint = UiConfig { endpoint: "localhost".into(), ..UiConfig::default() };
        assert!(bad_endpoint.validate().unwrap_err().to_string().contains("ui.endpoint"));
        let bad_url = UiConfig { grafana_url: "javascript:alert(1)".into(), ..UiConfig::default() };
        assert!(bad_url.validate().unwrap_err().to_string().contains("ui.grafana_url"));
        let off = UiConfig { enabled: false, ..bad_endpoint };
        off.validate().unwrap();
        UiConfig::default().validate().unwrap();
        UiConfig { grafana_url: String::new(), ..UiConfig::default() }.validate().unwrap();
    }
}
