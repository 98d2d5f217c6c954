//! The `redaction` section: PII rules, the HMAC key of `hash`, and the content-capture policy per
//! project. Parsed and validated here; [`RedactionConfig::spec`] reads the key file and gives the
//! ingest crate's [`RedactionSpec`], from which `server.rs` builds the processor.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use promptlog_ingest::process::redact::{
    Action, Builtin, ContentPolicy, Detector, HashKey, RedactionSpec, Redactor, Rule, SpecError,
};

use super::ConfigError;

/// Default content-capture policy: keep the content (after PII redaction).
pub const DEFAULT_CONTENT_CAPTURE: &str = "full";
/// Default action of a rule that names none.
pub const DEFAULT_ACTION: &str = "mask";
/// Shortest accepted HMAC key.
pub const MIN_HASH_KEY_BYTES: usize = 16;

/// PII redaction and content capture.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Rules in priority order. Env `PROMPTLOG_REDACT=email,credit_card` (or `all`) adds built-in
    /// detectors with `mask`.
    pub rules: Vec<RuleConfig>,
    /// File holding the HMAC-SHA256 key of `hash` (rules and content policy); required when `hash`
    /// is used (env `PROMPTLOG_REDACT_HASH_KEY_FILE`).
    pub hash_key_file: String,
    /// Content policy of projects not in `projects`: `full`, `truncate:<bytes>`, `hash` or `drop`
    /// (env `PROMPTLOG_CONTENT_CAPTURE`).
    pub content_capture: String,
    /// Content policy per project id (`default` is the project of requests without a key).
    pub projects: BTreeMap<String, String>,
}

/// One rule: a built-in `detector`, or a custom `regex` with a `name`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A built-in detector: email, phone, credit_card, iban, ipv4, ipv6, us_ssn, secret.
    #[serde(default)]
    pub detector: Option<String>,
    /// A custom regex (Rust syntax, no look-around).
    #[serde(default)]
    pub regex: Option<String>,
    /// The name in markers and metrics (required with `regex`; defaults to the detector's name).
    #[serde(default)]
    pub name: Option<String>,
    /// `mask`, `hash` or `drop`.
    #[serde(default = "default_action")]
    pub action: String,
}

fn default_action() -> String {
    DEFAULT_ACTION.to_owned()
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            hash_key_file: String::new(),
            content_capture: DEFAULT_CONTENT_CAPTURE.to_owned(),
            projects: BTreeMap::new(),
        }
    }
}

fn invalid(key: String, value: &str, reason: impl Into<String>) -> ConfigError {
    // Keys are built per rule; leak them once at start-up so errors can keep `&'static str`.
    ConfigError::Invalid { key: Box::leak(key.into_boxed_str()), value: value.to_owned(), reason: reason.into() }
}

impl RedactionConfig {
    /// Whether redaction does anything at all.
    pub fn enabled(&self) -> bool {
        !self.rules.is_empty()
            || self.content_capture != DEFAULT_CONTENT_CAPTURE
            || self.projects.values().any(|p| p != DEFAULT_CONTENT_CAPTURE)
    }

    /// `PROMPTLOG_REDACT`: adds each named built-in detector (or `all`) with `mask`, unless a rule
    /// for it exists already.
    pub fn enable_detectors(&mut self, list: &str) -> Result<(), String> {
        let mut names = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "all" {
                names.extend(Builtin::ALL.map(Builtin::name));
            } else if Builtin::from_name(name).is_some() {
                names.push(Builtin::from_name(name).map(Builtin::name).unwrap_or_default());
            } else {
                return Err(format!("unknown detector `{name}` (expected {} or all)", Builtin::names()));
            }
        }
        for name in names {
            if !self.rules.iter().any(|r| r.detector.as_deref() == Some(name)) {
                self.rules.push(RuleConfig {
                    detector: Some(name.to_owned()),
                    regex: None,
                    name: None,
                    action: DEFAULT_ACTION.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The spec without the key (a placeholder stands in when a key file is configured).
    fn spec_with(&self, hash_key: Option<HashKey>) -> Result<RedactionSpec, ConfigError> {
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let action = Action::from_name(&r.action).ok_or_else(|| {
                invalid(format!("redaction.rules[{i}].action"), &r.action, "expected `mask`, `hash` or `drop`")
            })?;
            let rule = match (&r.detector, &r.regex) {
                (Some(d), None) => {
                    let b = Builtin::from_name(d).ok_or_else(|| {
                        let reason = format!("unknown detector (expected one of {})", Builtin::names());
                        invalid(format!("redaction.rules[{i}].detector"), d, reason)
                    })?;
                    let name = r.name.clone().unwrap_or_else(|| b.name().to_owned());
                    Rule { name, detector: Detector::Builtin(b), action }
                }
                (None, Some(re)) => {
                    let name = r.name.clone().ok_or_else(|| {
                        invalid(format!("redaction.rules[{i}].name"), "", "a custom `regex` rule needs a `name`")
                    })?;
                    Rule { name, detector: Detector::Custom(re.clone()), action }
                }
                _ => {
                    let reason = "expected exactly one of `detector` and `regex`";
                    return Err(invalid(format!("redaction.rules[{i}]"), "", reason));
                }
            };
            rules.push(rule);
        }
        let policy =
            |key: String, value: &str| value.parse::<ContentPolicy>().map_err(|reason| invalid(key, value, reason));
        let content = policy("redaction.content_capture".into(), &self.content_capture)?;
        let mut projects = Vec::new();
        for (project, value) in &self.projects {
            projects.push((project.clone(), policy(format!("redaction.projects.{project}"), value)?));
        }
        let spec = RedactionSpec { rules, hash_key, content, projects };
        // Compiles the regexes and checks names and keys, naming the rule at fault.
        Redactor::new(spec.clone()).map_err(|e| self.spec_error(e))?;
        Ok(spec)
    }

    fn spec_error(&self, e: SpecError) -> ConfigError {
        let index = |name: &str| {
            self.rules.iter().position(|r| r.name.as_deref().or(r.detector.as_deref()) == Some(name)).unwrap_or(0)
        };
        match &e {
            SpecError::Pattern { name, .. } => {
                let i = index(name);
                let value = self.rules[i].regex.clone().unwrap_or_default();
                invalid(format!("redaction.rules[{i}].regex"), &value, e.to_string())
            }
            SpecError::Name(name) => invalid(format!("redaction.rules[{}].name", index(name)), name, e.to_string()),
            SpecError::MissingKey(_) => invalid("redaction.hash_key_file".into(), &self.hash_key_file, e.to_string()),
        }
    }

    /// Checks rules, regexes, policies, and that `hash` has a key file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let placeholder = (!self.hash_key_file.is_empty()).then(|| HashKey::new(vec![0; MIN_HASH_KEY_BYTES]));
        self.spec_with(placeholder).map(|_| ())
    }

    /// The spec, with the key read from `hash_key_file` (surrounding whitespace trimmed).
    pub fn spec(&self) -> Result<RedactionSpec, ConfigError> {
        let key = if self.hash_key_file.is_empty() {
            None
        } else {
            Some(HashKey::new(read_key(Path::new(&self.hash_key_file))?))
        };
        self.spec_with(key)
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let key = bytes.trim_ascii().to_vec();
    if key.len() < MIN_HASH_KEY_BYTES {
        let reason = format!("the key must be at least {MIN_HASH_KEY_BYTES} bytes");
        return Err(invalid("redaction.hash_key_file".into(), &path.display().to_string(), reason));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(yaml: &str) -> Config {
        Config::from_yaml(yaml).unwrap()
    }

    #[test]
    fn rules_parse_and_build() {
        let key = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key.path(), "0123456789abcdef0123\n").unwrap();
        let c = parse(&format!(
            "redaction:\n  hash_key_file: {}\n  content_capture: truncate:2000\n  projects:\n    acme: drop\n  rules:\n    \
             - detector: email\n      action: hash\n    - name: ticket\n      regex: 'TCK-[0-9]{{6}}'\n",
            key.path().display()
        ));
        c.validate().unwrap();
        let spec = c.redaction.spec().unwrap();
        assert_eq!(spec.rules.len(), 2);
        assert_eq!(spec.rules[1].action, Action::Mask);
        assert_eq!(spec.content, ContentPolicy::Truncate(2000));
        assert_eq!(spec.projects, vec![("acme".to_owned(), ContentPolicy::Drop)]);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("redaction:\n  rules:\n    - detector: emial\n", "redaction.rules[0].detector"),
            ("redaction:\n  rules:\n    - name: x\n      regex: 'a(b'\n", "redaction.rules[0].regex"),
            ("redaction:\n  rules:\n    - name: x\n      regex: '(?<=a)b'\n", "redaction.rules[0].regex"),
            ("redaction:\n  rules:\n    - regex: 'ab'\n", "redaction.rules[0].name"),
            ("redaction:\n  rules:\n    - detector: email\n      action: shred\n", "redaction.rules[0].action"),
            ("redaction:\n  rules:\n    - detector: email\n      action: hash\n", "redaction.hash_key_file"),
            ("redaction:\n  content_capture: hash\n", "redaction.hash_key_file"),
            ("redaction:\n  content_capture: trunc\n", "redaction.content_capture"),
            ("redaction:\n  projects:\n    acme: truncate:0\n", "redaction.projects.acme"),
        ];
        for (yaml, key) in cases {
            let err = parse(yaml).validate().unwrap_err().to_string();
            assert!(err.contains(key), "{yaml}: {err}");
        }
    }

    #[test]
    fn env_turns_detectors_on_with_mask() {
        let mut c = Config::default();
        c.apply_env(|v| (v == "PROMPTLOG_REDACT").then(|| "email, credit_card".to_owned())).unwrap();
        let names: Vec<_> = c.redaction.rules.iter().map(|r| (r.detector.clone().unwrap(), r.action.clone())).collect();
        assert_eq!(names, [("email".to_owned(), "mask".to_owned()), ("credit_card".to_owned(), "mask".to_owned())]);
        let mut c = Config::default();
        c.apply_env(|v| (v == "PROMPTLOG_REDACT").then(|| "all".to_owned())).unwrap();
        assert_eq!(c.redaction.rules.len(), Builtin::ALL.len());
        let err = Config::default().apply_env(|v| (v == "PROMPTLOG_REDACT").then(|| "emial".to_owned())).unwrap_err();
        assert!(err.to_string().contains("PROMPTLOG_REDACT"), "{err}");
    }

    #[test]
    fn a_short_or_missing_key_file_is_refused() {
        let key = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key.path(), "short").unwrap();
        let mut c = RedactionConfig { hash_key_file: key.path().display().to_string(), ..RedactionConfig::default() };
        assert!(c.spec().unwrap_err().to_string().contains("redaction.hash_key_file"));
        c.hash_key_file = "/nonexistent/key".into();
        assert!(c.spec().is_err());
    }
}
