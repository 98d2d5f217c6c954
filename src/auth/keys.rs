//! The key store: API keys by the SHA-256 of their plaintext, each with an id, a project, scopes and
//! an optional expiry. Built from the key file (which holds only hashes) and the development keys
//! of `PROMPTLOG_API_KEYS` (plaintext, hashed here on load).
//!
//! A presented key is hashed and looked up by its hash, then the stored hash is compared to the
//! computed one with `subtle`'s constant-time equality. Timing can then reveal at most something
//! about a SHA-256 digest, which says nothing usable about any key (preimage resistance); this is how
//! Langfuse and Helicone store keys too. Plain SHA-256 (no slow KDF) is enough because keys are 256
//! random bits, not passwords.

use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::auth::{DevKeys, check_project_id};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send OTLP (`/v1/traces`, `/v1/logs`, `/v1/metrics`, the gRPC services).
    Ingest,
    /// Send feedback and scores on stored calls (reserved for the feedback API).
    Feedback,
    /// Read stored data (reserved for the query API).
    Read,
}

impl Scope {
    /// Every scope (what development keys get).
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Feedback, Scope::Read];

    /// The scope named `name`.
    pub fn parse(name: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|s| s.name() == name.trim())
            .ok_or_else(|| format!("unknown scope {name:?}; expected ingest, feedback or read"))
    }

    /// Its name in the key file and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Feedback => "feedback",
            Scope::Read => "read",
        }
    }
}

/// A SHA-256 digest of a key's plaintext.
pub type KeyHash = [u8; 32];

/// The SHA-256 of `key`.
pub fn hash_key(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// One key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// Names the key in logs, metrics and the spool (never the secret).
    pub id: String,
    /// The project every row sent with the key belongs to.
    pub project: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it stops working, if ever.
    pub expires: Option<SystemTime>,
}

/// Who a request is: the project and key it was authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The key's project.
    pub project: String,
    /// The key's id (empty when auth is off).
    pub key_id: String,
}

/// Why a request was refused. `Missing`, `Unknown` and `Expired` are UNAUTHENTICATED / 401; `Scope`
/// is PERMISSION_DENIED / 403. Messages name the key's id at most, never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization: Bearer` and no `x-api-key`.
    #[error("missing API key: send `Authorization: Bearer <key>` (or `x-api-key: <key>`)")]
    Missing,
    /// A key that matches none configured.
    #[error("unknown API key")]
    Unknown,
    /// A configured key past its expiry.
    #[error("API key {key_id:?} expired at {at}; use a newer key of the project")]
    Expired { key_id: String, at: String },
    /// A valid key without the scope the endpoint needs.
    #[error("API key {key_id:?} of project {project:?} lacks the {scope:?} scope")]
    Scope { key_id: String, project: String, scope: &'static str },
}

impl Refusal {
    /// Every reason label, in [`Refusal::index`] order.
    pub const REASONS: [&'static str; 4] = ["missing", "unknown", "expired", "scope"];

    /// Position of its reason in [`Refusal::REASONS`].
    pub fn index(&self) -> usize {
        match self {
            Refusal::Missing => 0,
            Refusal::Unknown => 1,
            Refusal::Expired { .. } => 2,
            Refusal::Scope { .. } => 3,
        }
    }

    /// Whether it is a 403 (authenticated, not allowed) rather than a 401.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Refusal::Scope { .. })
    }
}

/// A key file or development key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Unreadable.
    #[error("cannot read the key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// Not valid YAML for the schema (unknown field, wrong type, ...).
    #[error("invalid key file {path}: {source}")]
    Parse { path: String, source: serde_yaml_ng::Error },
    /// An entry that parses but is unusable.
    #[error("key file {path}, key {index} ({id:?}): {reason}")]
    Entry { path: String, index: usize, id: String, reason: String },
}

/// The key file: `keys:` followed by entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: Vec<FileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    id: String,
    project: String,
    /// Hex SHA-256 of the key (what `promptlog keygen` prints).
    sha256: String,
    scopes: Vec<Scope>,
    /// RFC 3339 (`2027-06-30T00:00:00Z`) or a date (`2027-06-30`, midnight UTC).
    #[serde(default)]
    expires: Option<String>,
}

/// Parses an expiry: RFC 3339, or a bare date meaning midnight UTC.
pub fn parse_expiry(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_owned() };
    humantime::parse_rfc3339_weak(&full)
        .map_err(|e| format!("expires {text:?}: {e} (expected e.g. 2027-06-30T00:00:00Z)"))
}

fn parse_hash(hex: &str) -> Result<KeyHash, String> {
    let hex = hex.trim();
    let bad = || "sha256 must be 64 hex digits (the output of `promptlog keygen`)".to_owned();
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Parses the text of a key file named `path` (for messages).
pub fn parse_key_file(path: &str, text: &str) -> Result<Vec<(KeyHash, KeyEntry)>, KeyFileError> {
    let file: KeyFile = if text.trim().is_empty() {
        KeyFile { keys: Vec::new() }
    } else {
        serde_yaml_ng::from_str(text).map_err(|source| KeyFileError::Parse { path: path.to_owned(), source })?
    };
    let mut out = Vec::with_capacity(file.keys.len());
    for (i, e) in file.keys.into_iter().enumerate() {
        let err =
            |reason: String| KeyFileError::Entry { path: path.to_owned(), index: i + 1, id: e.id.clone(), reason };
        check_key_id(&e.id).map_err(err)?;
        check_project_id(&e.project).map_err(err)?;
        let hash = parse_hash(&e.sha256).map_err(err)?;
        if e.scopes.is_empty() {
            return Err(err("scopes must list at least one of ingest, feedback, read".into()));
        }
        let expires = e.expires.as_deref().map(parse_expiry).transpose().map_err(err)?;
        out.push((hash, KeyEntry { id: e.id.clone(), project: e.project.clone(), scopes: e.scopes.clone(), expires }));
    }
    Ok(out)
}

/// Key ids: 1 to 128 printable ASCII characters without spaces.
fn check_key_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err("id must be 1 to 128 printable characters without spaces".into());
    }
    Ok(())
}

/// Every usable key, by hash.
#[derive(Default)]
pub struct KeyStore {
    by_hash: HashMap<KeyHash, KeyEntry>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_hash.values().map(|e| (&e.id, &e.project))).finish()
    }
}

impl KeyStore {
    /// The store of `file` entries plus `dev` keys (ids `env:<project>:<n>`, every scope, no
    /// expiry). Ids and hashes must be unique across both.
    pub fn build(path: &str, file: Vec<(KeyHash, KeyEntry)>, dev: &DevKeys) -> Result<KeyStore, KeyFileError> {
        let dev = dev.0.iter().enumerate().map(|(i, (project, key))| {
            let entry = KeyEntry {
                id: format!("env:{project}:{}", i + 1),
                project: project.clone(),
                scopes: Scope::ALL.to_vec(),
                expires: None,
            };
            (hash_key(key), entry)
        });
        let mut store = KeyStore::default();
        for (index, (hash, entry)) in file.into_iter().chain(dev).enumerate() {
            let err = |reason: &str| KeyFileError::Entry {
                path: path.to_owned(),
                index: index + 1,
                id: entry.id.clone(),
                reason: reason.to_owned(),
            };
            if store.by_hash.values().any(|e| e.id == entry.id) {
                return Err(err("another key has the same id"));
            }
            if store.by_hash.contains_key(&hash) {
                return Err(err("another key has the same sha256 (the same secret)"));
            }
            store.by_hash.insert(hash, entry);
        }
        Ok(store)
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Authenticates `presented` for `scope` at `now`.
    pub fn check(&self, presented: Option<&str>, scope: Scope, now: SystemTime) -> Result<Identity, Refusal> {
        let presented = presented.ok_or(Refusal::Missing)?;
        let hash = hash_key(presented);
        let (stored, entry) = self.by_hash.get_key_value(&hash).ok_or(Refusal::Unknown)?;
        if !bool::from(stored.ct_eq(&hash)) {
            return Err(Refusal::Unknown);
        }
        if let Some(expires) = entry.expires
            && now >= expires
        {
            return Err(Refusal::Expired {
                key_id: entry.id.clone(),
                at: humantime::format_rfc3339_seconds(expires).to_string(),
            });
        }
        if !entry.scopes.contains(&scope) {
            return Err(Refusal::Scope {
                key_id: entry.id.clone(),
                project: entry.project.clone(),
                scope: scope.name(),
            });
        }
        Ok(Identity { project: entry.project.clone(), key_id: entry.id.clone() })
    }
}

/// The key a request presents: the token of `Authorization: Bearer <key>` (scheme case-insensitive),
/// else `x-api-key`. Values that are not visible ASCII count as absent.
pub fn presented_key<'a>(authorization: Option<&'a [u8]>, x_api_key: Option<&'a [u8]>) -> Option<&'a str> {
    let text = |v: &'a [u8]| std::str::from_utf8(v).ok().map(str::trim).filter(|s| !s.is_empty());
    let bearer = authorization.and_then(text).and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
    });
    bearer.or_else(|| x_api_key.and_then(text))
}

/// A new random key: `pl_` and 64 hex digits (256 bits from the OS), and the hex SHA-256 to put in
/// the key file.
pub fn generate_key() -> Result<(String, String), getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    let key = format!("pl_{}", to_hex(&secret));
    let hash = to_hex(&hash_key(&key));
    Ok((key, hash))
}

/// A new key and its key-file entry, as `promptlog keygen` prints them. `id` defaults to
/// `<project>-<date>-<4 hex>`.
pub fn new_key_entry(
    project: &str,
    id: Option<&str>,
    scopes: &[Scope],
    expires: Option<&str>,
) -> Result<(String, String), String> {
    check_project_id(project)?;
    if scopes.is_empty() {
        return Err("give at least one scope".into());
    }
    if let Some(e) = expires {
        parse_expiry(e)?;
    }
    let (key, hash) = generate_key().map_err(|e| format!("no randomness from the OS: {e}"))?;
    let id = match id {
        Some(id) => id.to_owned(),
        None => {
            let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            format!("{project}-{}-{}", date[..10].replace('-', ""), &hash[..4])
        }
    };
    check_key_id(&id)?;
    let names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
    let mut entry =
        format!("  - id: {id}\n    project: {project}\n    sha256: {hash}\n    scopes: [{}]\n", names.join(", "));
    if let Some(e) = expires {
        entry.push_str(&format!("    expires: {}\n", e.trim()));
    }
    // The entry must load exactly as printed.
    parse_key_file("entry", &format!("keys:\n{entry}")).map_err(|e| e.to_string())?;
    Ok((key, entry))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
