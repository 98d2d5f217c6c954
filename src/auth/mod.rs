//! API keys and projects: who may send, and which project their rows belong to.
//!
//! [`Auth`] is the receivers' view: [`Auth::check`] turns the key a request presents into an
//! [`Identity`] (project + key id, which go into the request's context, hence the spool record and
//! every row) or a [`Refusal`], counted by reason. Keys come from the key file (hashes only; re-read
//! when it changes, see [`Auth::watch`]) and from `PROMPTLOG_API_KEYS` (development).
//!
//! With neither configured, auth is off: every request is [`Identity`] `default` with no key id.

pub mod keys;

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use promptlog_ingest::request::DEFAULT_PROJECT;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::AuthConfig;
use crate::config::auth::DevKeys;
use crate::telemetry::Stats;
pub use keys::{Identity, KeyFileError, KeyStore, Refusal, Scope, presented_key};

/// The receivers' handle on the keys. Cheap to clone.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

struct Inner {
    /// False when no key is configured at all.
    enabled: bool,
    keys: RwLock<Arc<KeyStore>>,
    file: Option<PathBuf>,
    dev: DevKeys,
    /// The key file's bytes as last read (whether they parsed or not), to reload only on change.
    last_read: Mutex<Option<Vec<u8>>>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("enabled", &self.0.enabled).field("file", &self.0.file).finish()
    }
}

impl Auth {
    /// Loads the configured keys; a key file that cannot be read or parsed is an error (at start-up
    /// there are no previous keys to fall back on).
    pub fn new(config: &AuthConfig, stats: Arc<Stats>) -> Result<Auth, KeyFileError> {
        let enabled = config.keys_file.is_some() || !config.dev_keys.0.is_empty();
        let auth = Auth(Arc::new(Inner {
            enabled,
            keys: RwLock::new(Arc::new(KeyStore::default())),
            file: config.keys_file.clone(),
            dev: config.dev_keys.clone(),
            last_read: Mutex::new(None),
            stats,
        }));
        auth.0.stats.auth.enabled.store(enabled, Relaxed);
        auth.load(true)?;
        Ok(auth)
    }

    /// Whether keys are required.
    pub fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Keys currently loaded.
    pub fn key_count(&self) -> usize {
        self.current().len()
    }

    fn current(&self) -> Arc<KeyStore> {
        self.0.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Authenticates `presented` (see [`presented_key`]) for `scope`; a refusal is counted by
    /// reason. Auth off: always project `default`.
    pub fn check(&self, presented: Option<&str>, scope: Scope) -> Result<Identity, Refusal> {
        if !self.0.enabled {
            return Ok(Identity { project: DEFAULT_PROJECT.to_owned(), key_id: String::new() });
        }
        let result = self.current().check(presented, scope, SystemTime::now());
        if let Err(refusal) = &result {
            self.0.stats.auth.refused[refusal.index()].fetch_add(1, Relaxed);
            tracing::debug!(reason = Refusal::REASONS[refusal.index()], %refusal, "Refused a request.");
        }
        result
    }

    /// Re-reads the key file if its contents changed; returns whether new keys are in use. On an
    /// error the previous keys stay in use.
    pub fn reload(&self) -> Result<bool, KeyFileError> {
        let result = self.load(false);
        match &result {
            Ok(true) => self.0.stats.auth.reloads.fetch_add(1, Relaxed),
            Err(_) => self.0.stats.auth.reload_errors.fetch_add(1, Relaxed),
            Ok(false) => 0,
        };
        result
    }

    fn load(&self, initial: bool) -> Result<bool, KeyFileError> {
        let path_text = self.0.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let text = match &self.0.file {
            Some(path) => {
                let bytes =
                    std::fs::read(path).map_err(|source| KeyFileError::Read { path: path_text.clone(), source })?;
                let mut last = self.0.last_read.lock().unwrap_or_else(PoisonError::into_inner);
                if !initial && last.as_deref() == Some(bytes.as_slice()) {
                    return Ok(false);
                }
                *last = Some(bytes.clone());
                String::from_utf8(bytes).map_err(|e| KeyFileError::Read {
                    path: path_text.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?
            }
            None if !initial => return Ok(false),
            None => String::new(),
        };
        let entries = keys::parse_key_file(&path_text, &text)?;
        let store = KeyStore::build(&path_text, entries, &self.0.dev)?;
        self.0.stats.auth.keys.store(store.len() as u64, Relaxed);
        if self.0.enabled && store.is_empty() {
            tracing::warn!(file = %path_text, "Auth is on but no API key is configured: every request is refused.");
        }
        *self.0.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(store);
        Ok(true)
    }

    /// Checks the key file every `interval` and swaps in its keys when it changed, until `shutdown`.
    /// A file that fails to load is logged (once per change) and the previous keys stay in use.
    pub fn watch(&self, interval: Duration, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        self.0.file.as_ref()?;
        let auth = self.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                let reloaded = auth.clone();
                match crate::runtime::blocking(move || reloaded.reload()).await {
                    Ok(true) => tracing::info!(keys = auth.key_count(), "Reloaded the API key file."),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "Cannot reload the API key file; keeping the previous keys."),
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests;
