//! The spool encryption key file (`spool.encryption_key_file`, env `PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE`).
//!
//! ```yaml
//! # Keys are 32 random bytes as 64 hex digits, e.g. from `openssl rand -hex 32`.
//! current: 2          # the key new spool records and dead-letter files are sealed with
//! keys:
//!   1: "9f0c…64 hex digits…"   # older key: kept so records sealed with it can still be read
//!   2: "4b7e…64 hex digits…"
//! ```
//!
//! Key ids are whole numbers from 0 to 4294967295, stored in every sealed record. A malformed file,
//! a key of the wrong length, a duplicate id or a `current` id without a key refuses the start, and
//! the message names the problem (never a key). A file readable by group or others gets a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use promptlog_ingest::seal::{KEY_BYTES, KeyId, KeyRing};
use serde::Deserialize;

/// The file's schema.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    current: KeyId,
    #[serde(deserialize_with = "unique_ids")]
    keys: BTreeMap<KeyId, String>,
}

/// A map of keys by id in which an id given twice is an error (a plain map would keep the last).
fn unique_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<KeyId, String>, D::Error> {
    struct Ids;
    impl<'de> serde::de::Visitor<'de> for Ids {
        type Value = BTreeMap<KeyId, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map from key ids to hex keys")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut keys = BTreeMap::new();
            while let Some((id, key)) = map.next_entry::<KeyId, String>()? {
                if keys.insert(id, key).is_some() {
                    return Err(serde::de::Error::custom(format!("key id {id} is given twice")));
                }
            }
            Ok(keys)
        }
    }
    d.deserialize_map(Ids)
}

/// Why the key file was refused. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read the spool encryption key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not a valid key file.
    #[error("invalid spool encryption key file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Reads and checks the key file at `path`; warns when group or others may read it.
pub fn load(path: &Path) -> Result<KeyRing, KeyFileError> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyFileError::Read { path: path.to_owned(), source })?,
    );
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if loosely_readable(mode) {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "The spool encryption key file is readable by group or others; restrict it with `chmod 600`."
            );
        }
    }
    parse(&text).map_err(|reason| KeyFileError::Invalid { path: path.to_owned(), reason })
}

/// Whether a file mode lets group or others read (or write) the file.
fn loosely_readable(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// Parses the key file's text into a key ring.
pub fn parse(text: &str) -> Result<KeyRing, String> {
    let file: KeyFile = serde_yaml_ng::from_str(text).map_err(|e| redact_yaml_error(&e))?;
    if file.keys.is_empty() {
        return Err("`keys` holds no key".into());
    }
    let mut keys = Vec::with_capacity(file.keys.len());
    for (id, hex) in &file.keys {
        keys.push((*id, decode_key(*id, hex)?));
    }
    let ids: Vec<String> = file.keys.keys().map(ToString::to_string).collect();
    let ring = KeyRing::new(file.current, keys.iter().map(|(id, key)| (*id, **key)));
    ring.map_err(|_| format!("the current key id {} is not among `keys` (ids: {})", file.current, ids.join(", ")))
}

fn decode_key(id: KeyId, hex: &str) -> Result<zeroize::Zeroizing<[u8; KEY_BYTES]>, String> {
    let hex = hex.trim();
    let want = 2 * KEY_BYTES;
    if hex.len() != want {
        return Err(format!(
            "key {id} has {} characters; a key is {KEY_BYTES} bytes written as {want} hex digits \
             (e.g. from `openssl rand -hex {KEY_BYTES}`)",
            hex.len()
        ));
    }
    let mut key = zeroize::Zeroizing::new([0u8; KEY_BYTES]);
    const_hex::decode_to_slice(hex, key.as_mut_slice())
        .map_err(|_| format!("key {id} is not hexadecimal (expected {want} digits 0-9, a-f)"))?;
    Ok(key)
}

/// serde's messages can quote the offending value, which might be key material: keep only the
/// location and the kind of problem.
fn redact_yaml_error(e: &serde_yaml_ng::Error) -> String {
    let message = e.to_string();
    let mut kept = String::new();
    let mut in_quote = false;
    for c in message.chars() {
        match c {
            '"' if !in_quote => {
                in_quote = true;
                kept.push_str("\"…");
            }
            '"' => {
                in_quote = false;
                kept.push('"');
            }
            _ if in_quote => {}
            _ => kept.push(c),
        }
    }
    format!("{kept} (expected `current: <id>` and `keys: {{<id>: <{} hex digits>, …}}`)", 2 * KEY_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn a_valid_file_gives_the_ring_with_its_current_key() {
        let ring = parse(&format!("current: 2\nkeys:\n  1: {A}\n  2: \"{B}\"\n")).unwrap();
        assert_eq!((ring.current(), ring.ids()), (2, vec![1, 2]));
        // Digits only, or something YAML might read as a number, still work as a key.
        let digits = "1".repeat(64);
        let ring = parse(&format!("current: 7\nkeys: {{7: {digits}, 8: 1e{}}}\n", "0".repeat(62))).unwrap();
        assert_eq!(ring.ids(), [7, 8]);
    }

    #[test]
    fn the_same_key_file_opens_what_it_sealed() {
        use promptlog_ingest::seal::Purpose;
        let text = format!("current: 1\nkeys:\n  1: {A}\n");
        let sealed = parse(&text).unwrap().seal(Purpose::DeadLetter, b"row");
        assert_eq!(parse(&text).unwrap().open(Purpose::DeadLetter, &sealed).unwrap(), b"row");
    }

    #[test]
    fn bad_files_are_refused_naming_the_problem_and_never_the_key() {
        let short = &A[..62];
        let cases = [
            (format!("current: 3\nkeys:\n  1: {A}\n  2: {B}\n"), "current key id 3 is not among `keys` (ids: 1, 2)"),
            (format!("current: 1\nkeys:\n  1: {short}\n"), "key 1 has 62 characters"),
            (format!("current: 1\nkeys:\n  1: {A}ab\n"), "key 1 has 66 characters"),
            (format!("current: 1\nkeys:\n  1: {}zz\n", &A[..62]), "key 1 is not hexadecimal"),
            ("current: 1\nkeys: {}\n".to_owned(), "`keys` holds no key"),
            (format!("keys:\n  1: {A}\n"), "missing field `current`"),
            ("current: 1\n".to_owned(), "missing field `keys`"),
            (format!("current: 1\nkey:\n  1: {A}\n"), "unknown field `key`"),
            (format!("current: 1\nkeys:\n  1: {A}\n  1: {B}\n"), "key id 1 is given twice"),
            (format!("current: {A}\nkeys:\n  1: {A}\n"), "current"),
            (format!("current: 1\nkeys:\n  one: {A}\n"), "keys"),
            ("not: [valid".to_owned(), "expected"),
        ];
        for (text, want) in cases {
            let err = match parse(&text) {
                Ok(ring) => panic!("accepted {text:?}: {ring:?}"),
                Err(err) => err,
            };
            assert!(err.contains(want), "{text:?}: {err}");
            for key in [A, B, &A[..62]] {
                assert!(!err.contains(key), "the message shows key material: {err}");
            }
        }
    }

    #[test]
    fn group_or_other_access_is_flagged() {
        assert!(!loosely_readable(0o100600));
        assert!(!loosely_readable(0o400));
        assert!(loosely_readable(0o640));
        assert!(loosely_readable(0o604));
    }

    #[test]
    fn a_missing_file_is_refused_naming_the_path() {
        let err = load(Path::new("/nonexistent/promptlog-keys.yaml")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/promptlog-keys.yaml"), "{err}");
    }
}
