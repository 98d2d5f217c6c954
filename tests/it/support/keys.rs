//! The API keys of the suites that require them: a key file of project `beta` that holds only the
//! keys' SHA-256 hashes (a normal ingest key, an expired one and a read-only one), and the
//! plaintext keys the clients send.

use std::path::{Path, PathBuf};
use std::time::Duration;

use promptlog::auth::keys::hash_key;
use promptlog::config::Config;

/// The project of every key in [`key_file_text`].
pub const BETA: &str = "beta";
/// A valid key of [`BETA`] with the `ingest` scope.
pub const BETA_INGEST: &str = "pl_test_beta_ingest_0123456789abcdef";
/// A key of [`BETA`] with the `ingest` scope that expired in 2020.
pub const BETA_EXPIRED: &str = "pl_test_beta_expired_0123456789abcdef";
/// A valid key of [`BETA`] with the `read` scope only.
pub const BETA_READ_ONLY: &str = "pl_test_beta_read_0123456789abcdef";
/// A key that is in no key file.
pub const WRONG: &str = "pl_test_nobody_0123456789abcdef";

fn hex_hash(key: &str) -> String {
    hash_key(key).iter().map(|b| format!("{b:02x}")).collect()
}

/// One key-file entry of project [`BETA`]: id, the hash of `key`, `scopes` (comma-separated) and
/// an optional RFC 3339 expiry.
pub fn entry(id: &str, key: &str, scopes: &str, expires: Option<&str>) -> String {
    let mut e = format!("  - id: {id}\n    project: {BETA}\n    sha256: {}\n    scopes: [{scopes}]\n", hex_hash(key));
    if let Some(at) = expires {
        e.push_str(&format!("    expires: {at}\n"));
    }
    e
}

/// The key file: [`BETA_INGEST`], [`BETA_EXPIRED`] and [`BETA_READ_ONLY`], then `extra` entries.
pub fn key_file_text(extra: &str) -> String {
    format!(
        "keys:\n{}{}{}{extra}",
        entry("beta-1", BETA_INGEST, "ingest", None),
        entry("beta-old", BETA_EXPIRED, "ingest", Some("2020-01-01T00:00:00Z")),
        entry("beta-dash", BETA_READ_ONLY, "read", None),
    )
}

/// Writes [`key_file_text`] (no extra entries) to `dir/keys.yaml` and returns its path.
pub fn write_key_file(dir: &Path) -> PathBuf {
    let file = dir.join("keys.yaml");
    std::fs::write(&file, key_file_text("")).unwrap();
    file
}

/// Makes `config` require the keys of `file`, re-read every 100 ms.
pub fn require_keys(config: &mut Config, file: &Path) {
    config.auth.keys_file = Some(file.to_owned());
    config.auth.reload_interval = Duration::from_millis(100);
}
