//! The `auth` section: where API keys come from. The keys themselves (hashes, projects, scopes) are
//! in the key file, parsed by [`crate::auth`]; plaintext development keys come only from the
//! environment (`PROMPTLOG_API_KEYS`), never from a file.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// How often the key file is checked for changes.
pub const DEFAULT_KEYS_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// API keys. With neither a key file nor development keys, auth is off: every request is accepted
/// as project `default` (and a warning is logged at start-up).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// YAML file of hashed keys (see `collector-config/SECURITY.md`), re-read when it changes
    /// (env `PROMPTLOG_AUTH_KEYS_FILE`).
    pub keys_file: Option<PathBuf>,
    /// How often the key file is checked for changes (env `PROMPTLOG_AUTH_RELOAD_INTERVAL`).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Plaintext development keys, all scopes (env `PROMPTLOG_API_KEYS=project1:key1,project2:key2`).
    /// Not settable in the file, so plaintext keys never land in a config file.
    #[serde(skip)]
    pub dev_keys: DevKeys,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { keys_file: None, reload_interval: DEFAULT_KEYS_RELOAD_INTERVAL, dev_keys: DevKeys::default() }
    }
}

/// `(project, plaintext key)` pairs from `PROMPTLOG_API_KEYS`. Its `Debug` hides the keys, so
/// `promptlog check-config` and logs never print them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct DevKeys(pub Vec<(String, String)>);

impl std::fmt::Debug for DevKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(project, _)| format!("{project}:<hidden>"))).finish()
    }
}

/// Longest project id (it is a `LowCardinality(String)` column and a label in dashboards).
pub const MAX_PROJECT_ID_BYTES: usize = 64;

/// Checks a project id: 1 to [`MAX_PROJECT_ID_BYTES`] of letters, digits, `_`, `-` and `.`.
pub fn check_project_id(project: &str) -> Result<(), String> {
    if project.is_empty() || project.len() > MAX_PROJECT_ID_BYTES {
        return Err(format!("project id must be 1 to {MAX_PROJECT_ID_BYTES} characters"));
    }
    if !project.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(format!("project id {project:?} may only contain letters, digits, `_`, `-` and `.`"));
    }
    Ok(())
}

/// Parses `PROMPTLOG_API_KEYS`: comma-separated `project:key` pairs. Every entry must have a valid
/// project and a non-empty key, and a key may appear once; an empty value means no keys.
pub fn parse_dev_keys(value: &str) -> Result<DevKeys, String> {
    let mut keys: Vec<(String, String)> = Vec::new();
    if value.trim().is_empty() {
        return Ok(DevKeys(keys));
    }
    for (i, entry) in value.split(',').enumerate() {
        let n = i + 1;
        let entry = entry.trim();
        let Some((project, key)) = entry.split_once(':') else {
            return Err(format!("entry {n} is not `project:key` (no `:`)"));
        };
        let (project, key) = (project.trim(), key.trim());
        check_project_id(project).map_err(|e| format!("entry {n}: {e}"))?;
        if key.is_empty() {
            return Err(format!("entry {n} (project {project}) has an empty key"));
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("entry {n} (project {project}): the key contains whitespace"));
        }
        if keys.iter().any(|(_, k)| k == key) {
            return Err(format!("entry {n} (project {project}) repeats the key of an earlier entry"));
        }
        keys.push((project.to_owned(), key.to_owned()));
    }
    Ok(DevKeys(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_keys_parse() {
        let keys = parse_dev_keys(" acme:k1 , beta.prod:k-2,acme:k3").unwrap();
        let pairs: Vec<(&str, &str)> = keys.0.iter().map(|(p, k)| (p.as_str(), k.as_str())).collect();
        assert_eq!(pairs, [("acme", "k1"), ("beta.prod", "k-2"), ("acme", "k3")]);
        assert!(parse_dev_keys("").unwrap().0.is_empty());
        // A key may itself contain `:` (only the first one separates the project).
        assert_eq!(parse_dev_keys("p:a:b").unwrap().0[0].1, "a:b");
    }

    #[test]
    fn bad_dev_keys_fail_loudly() {
        for (value, says) in [
            ("acme", "no `:`"),
            ("acme:k1,", "entry 2"),
            (":k1", "1 to 64"),
            ("acme:", "empty key"),
            ("ac me:k1", "may only contain"),
            ("a:k1,b:k1", "repeats the key"),
            ("a:k 1", "whitespace"),
        ] {
            let err = parse_dev_keys(value).unwrap_err();
            assert!(err.contains(says), "{value:?}: {err}");
            assert!(!err.contains("k1"), "the error must not echo a key: {err}");
        }
    }

    #[test]
    fn debug_hides_dev_keys() {
        let keys = parse_dev_keys("acme:supersecret").unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains("acme") && !shown.contains("supersecret"), "{shown}");
    }
}
