//! Dead-letter files: batches ClickHouse refused for good, kept in `<data_dir>/dead-letter/` as JSON
//! lines (a first line saying which table and why, then one row per line).
//!
//! With encryption at rest on (`spool.encryption_key_file`), a file is written sealed instead, as one
//! envelope (see `promptlog_ingest::seal`) named `*.jsonl.sealed`, so no plaintext row lands on disk.
//! `promptlog dead-letter decrypt FILE…` prints such a file's JSON lines (with the same key file).

use std::io::Write;
use std::path::{Path, PathBuf};

use promptlog_ingest::KeyRing;
use promptlog_ingest::seal::{self, Purpose, SealError};

/// Name ending of a plaintext dead-letter file.
pub const PLAIN_EXTENSION: &str = "jsonl";
/// Name ending of a sealed dead-letter file.
pub const SEALED_EXTENSION: &str = "jsonl.sealed";

/// Writes `jsonl` to `dir/<stem>.jsonl` (or, sealed under `keys`, `dir/<stem>.jsonl.sealed`) and
/// fsyncs the file and the directory: the rows' spool records may be acked once this returns `Ok`.
pub(crate) fn write(dir: &Path, stem: &str, jsonl: Vec<u8>, keys: Option<&KeyRing>) -> std::io::Result<PathBuf> {
    let (bytes, extension) = match keys {
        Some(keys) => (keys.seal(Purpose::DeadLetter, &jsonl).to_vec(), SEALED_EXTENSION),
        None => (jsonl, PLAIN_EXTENSION),
    };
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{stem}.{extension}"));
    // Written under a temporary name and renamed once complete, so a reader (or a crash) never sees
    // a half-written dead-letter file under its final name.
    let partial = dir.join(format!(".{stem}.{extension}.partial"));
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    // The new directory entry must be durable too before the spool forgets the rows.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

/// Why a dead-letter file could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// A plaintext file (written while encryption was off): it can be read as it is.
    #[error("{0} is not sealed: it is plain JSON lines already")]
    NotSealed(PathBuf),
    /// The keys cannot open it.
    #[error("cannot decrypt {path}: {source}")]
    Open { path: PathBuf, source: SealError },
}

/// The JSON lines of the sealed dead-letter file at `path`.
pub fn decrypt(keys: &KeyRing, path: &Path) -> Result<Vec<u8>, DecryptError> {
    let bytes = std::fs::read(path).map_err(|source| DecryptError::Read { path: path.to_owned(), source })?;
    if !seal::is_sealed(&bytes) {
        return Err(DecryptError::NotSealed(path.to_owned()));
    }
    keys.open(Purpose::DeadLetter, &bytes).map_err(|source| DecryptError::Open { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &[u8] = b"dead-letter-marker-77c1";

    fn keys(current: u32) -> KeyRing {
        KeyRing::new(current, [(1, [1; 32]), (2, [2; 32])]).unwrap()
    }

    #[test]
    fn sealed_dead_letters_hold_no_plaintext_and_decrypt_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl =
            [b"{\"table\":\"llm_calls\",\"reason\":\"x\"}\n{\"Input\":\"".as_slice(), MARKER, b"\"}\n"].concat();
        let path = write(dir.path(), "llm_calls-1-0", jsonl.clone(), Some(&keys(1))).unwrap();
        assert!(path.to_string_lossy().ends_with(".jsonl.sealed"), "{}", path.display());
        let on_disk = std::fs::read(&path).unwrap();
        assert!(!on_disk.windows(MARKER.len()).any(|w| w == MARKER), "plaintext on disk");
        assert_eq!(decrypt(&keys(2), &path).unwrap(), jsonl, "an old key in the ring still opens it");
        let other = KeyRing::new(1, [(1, [9; 32])]).unwrap();
        assert!(matches!(decrypt(&other, &path), Err(DecryptError::Open { source: SealError::Tampered(1), .. })));
    }

    #[test]
    fn without_keys_dead_letters_stay_plain_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "otel_logs-1-0", b"{}\n".to_vec(), None).unwrap();
        assert!(path.to_string_lossy().ends_with("otel_logs-1-0.jsonl"));
        assert_eq!(std::fs::read(&path).unwrap(), b"{}\n");
        assert!(matches!(decrypt(&keys(1), &path), Err(DecryptError::NotSealed(_))));
    }
}
