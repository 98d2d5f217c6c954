//! The receivers' handle: auth off, refusal counting, and the key file re-read on change.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::*;
use crate::config::auth::parse_dev_keys;

fn entry(id: &str, project: &str, key: &str) -> String {
    let hash: String = keys::hash_key(key).iter().map(|b| format!("{b:02x}")).collect();
    format!("  - id: {id}\n    project: {project}\n    sha256: {hash}\n    scopes: [ingest]\n")
}

fn config(file: Option<&std::path::Path>, dev: &str) -> AuthConfig {
    AuthConfig { keys_file: file.map(Into::into), dev_keys: parse_dev_keys(dev).unwrap(), ..AuthConfig::default() }
}

#[test]
fn with_no_key_configured_everything_is_the_default_project() {
    let stats = Stats::new();
    let auth = Auth::new(&AuthConfig::default(), stats.clone()).unwrap();
    assert!(!auth.enabled());
    assert!(!stats.auth.enabled.load(Relaxed));
    let id = auth.check(None, Scope::Ingest).unwrap();
    assert_eq!(id, Identity { project: "default".into(), key_id: String::new() });
    assert_eq!(auth.check(Some("anything"), Scope::Read).unwrap().project, "default");
}

#[test]
fn refusals_are_counted_by_reason() {
    let stats = Stats::new();
    let auth = Auth::new(&config(None, "acme:k1"), stats.clone()).unwrap();
    assert!(auth.enabled() && stats.auth.enabled.load(Relaxed));
    assert_eq!(auth.check(Some("k1"), Scope::Ingest).unwrap().project, "acme");
    assert_eq!(auth.check(None, Scope::Ingest), Err(Refusal::Missing));
    assert_eq!(auth.check(Some("k2"), Scope::Ingest), Err(Refusal::Unknown));
    assert_eq!(auth.check(Some("k3"), Scope::Ingest), Err(Refusal::Unknown));
    let counts: Vec<u64> = stats.auth.refused.iter().map(|c| c.load(Relaxed)).collect();
    assert_eq!(counts, [1, 2, 0, 0]);
    assert_eq!(stats.auth.keys.load(Relaxed), 1);
}

#[test]
fn an_unreadable_or_invalid_key_file_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = Auth::new(&config(Some(&missing), ""), Stats::new()).unwrap_err().to_string();
    assert!(err.contains("nope.yaml"), "{err}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "keys: [oops").unwrap();
    assert!(Auth::new(&config(Some(&bad), ""), Stats::new()).is_err());
}

#[test]
fn an_empty_key_file_turns_auth_on_and_refuses_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.yaml");
    std::fs::write(&path, "keys: []\n").unwrap();
    let auth = Auth::new(&config(Some(&path), ""), Stats::new()).unwrap();
    assert!(auth.enabled());
    assert_eq!(auth.check(Some("x"), Scope::Ingest), Err(Refusal::Unknown));
}

#[test]
fn the_key_file_is_reloaded_on_change_and_a_broken_file_keeps_the_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.yaml");
    std::fs::write(&path, format!("keys:\n{}", entry("a-1", "acme", "old"))).unwrap();
    let stats = Stats::new();
    let auth = Auth::new(&config(Some(&path), "dev:devkey"), stats.clone()).unwrap();
    assert_eq!(auth.key_count(), 2);
    assert!(!auth.reload().unwrap(), "unchanged file: nothing to do");
    // Rotation: add the new key next to the old one, then remove the old one.
    std::fs::write(&path, format!("keys:\n{}{}", entry("a-1", "acme", "old"), entry("a-2", "acme", "new"))).unwrap();
    assert!(auth.reload().unwrap());
    assert_eq!(auth.check(Some("old"), Scope::Ingest).unwrap().key_id, "a-1");
    assert_eq!(auth.check(Some("new"), Scope::Ingest).unwrap().key_id, "a-2");
    std::fs::write(&path, format!("keys:\n{}", entry("a-2", "acme", "new"))).unwrap();
    assert!(auth.reload().unwrap());
    assert_eq!(auth.check(Some("old"), Scope::Ingest), Err(Refusal::Unknown));
    assert!(auth.check(Some("new"), Scope::Ingest).is_ok());
    assert!(auth.check(Some("devkey"), Scope::Ingest).is_ok(), "development keys survive reloads");
    // A broken edit: refused, counted, and the last good keys stay.
    std::fs::write(&path, "keys:\n  - id: x\n").unwrap();
    assert!(auth.reload().is_err());
    assert!(auth.check(Some("new"), Scope::Ingest).is_ok());
    assert!(!auth.reload().unwrap(), "the same broken bytes are not reported again");
    assert_eq!((stats.auth.reloads.load(Relaxed), stats.auth.reload_errors.load(Relaxed)), (2, 1));
}

#[tokio::test]
async fn the_watcher_picks_up_a_changed_file_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.yaml");
    std::fs::write(&path, format!("keys:\n{}", entry("a-1", "acme", "old"))).unwrap();
    let auth = Auth::new(&config(Some(&path), ""), Stats::new()).unwrap();
    let shutdown = CancellationToken::new();
    let watcher = auth.watch(Duration::from_millis(20), shutdown.clone()).expect("a key file is watched");
    // Replaced the way editors and Kubernetes do: a new file renamed over the old one.
    let tmp = dir.path().join("keys.yaml.tmp");
    std::fs::write(&tmp, format!("keys:\n{}", entry("b-1", "beta", "fresh"))).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while auth.check(Some("fresh"), Scope::Ingest).is_err() {
        assert!(std::time::Instant::now() < deadline, "the new key was not picked up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(auth.check(Some("old"), Scope::Ingest), Err(Refusal::Unknown));
    shutdown.cancel();
    watcher.await.unwrap();
}
