//! The key store: hash lookup, expiry, scopes, the key file format and the request headers.

use std::time::{Duration, SystemTime};

use super::*;
use crate::config::auth::parse_dev_keys;

fn hex(bytes: &[u8]) -> String {
    to_hex(bytes)
}

fn file(entries: &[(&str, &str, &str, &str, Option<&str>)]) -> String {
    let mut text = String::from("keys:\n");
    for (id, project, key, scopes, expires) in entries {
        text.push_str(&format!(
            "  - id: {id}\n    project: {project}\n    sha256: {}\n    scopes: [{scopes}]\n",
            hex(&hash_key(key))
        ));
        if let Some(e) = expires {
            text.push_str(&format!("    expires: {e}\n"));
        }
    }
    text
}

fn store(text: &str) -> KeyStore {
    KeyStore::build("keys.yaml", parse_key_file("keys.yaml", text).unwrap(), &DevKeys::default()).unwrap()
}

fn now() -> SystemTime {
    humantime::parse_rfc3339("2026-12-01T10:00:00Z").unwrap()
}

#[test]
fn a_key_is_found_by_its_hash_and_gives_its_project() {
    let s =
        store(&file(&[("acme-1", "acme", "pl_secret_a", "ingest", None), ("beta-1", "beta", "pl_b", "ingest", None)]));
    assert_eq!(s.len(), 2);
    let id = s.check(Some("pl_secret_a"), Scope::Ingest, now()).unwrap();
    assert_eq!(id, Identity { project: "acme".into(), key_id: "acme-1".into() });
    assert_eq!(s.check(Some("pl_b"), Scope::Ingest, now()).unwrap().project, "beta");
    // The file holds no secret: the hash itself is not a key, nor is a near miss.
    let stored_hash = hex(&hash_key("pl_secret_a"));
    for wrong in [stored_hash.as_str(), "pl_secret_b", "pl_secret_a ", "PL_SECRET_A", ""] {
        assert_eq!(s.check(Some(wrong), Scope::Ingest, now()), Err(Refusal::Unknown), "{wrong:?}");
    }
    assert_eq!(s.check(None, Scope::Ingest, now()), Err(Refusal::Missing));
}

#[test]
fn an_expired_key_is_refused_saying_so_and_a_rotated_key_overlaps() {
    let s = store(&file(&[
        ("acme-old", "acme", "pl_oldsecret", "ingest", Some("2026-12-01T09:59:59Z")),
        ("acme-new", "acme", "new", "ingest", Some("2027-06-30")),
    ]));
    let err = s.check(Some("pl_oldsecret"), Scope::Ingest, now()).unwrap_err();
    assert!(matches!(&err, Refusal::Expired { key_id, .. } if key_id == "acme-old"), "{err:?}");
    assert!(!err.is_forbidden(), "an expired key is a 401");
    let message = err.to_string();
    assert!(message.contains("expired") && message.contains("2026-12-01T09:59:59Z"), "{message}");
    assert!(!message.contains("pl_oldsecret"), "the message names the id, not the key: {message}");
    // Before its expiry the old key works, next to the new one: rotation with overlap.
    let earlier = now() - Duration::from_secs(3600);
    assert_eq!(s.check(Some("pl_oldsecret"), Scope::Ingest, earlier).unwrap().key_id, "acme-old");
    assert_eq!(s.check(Some("new"), Scope::Ingest, now()).unwrap().key_id, "acme-new");
    let at_expiry = humantime::parse_rfc3339("2027-06-30T00:00:00Z").unwrap();
    assert!(matches!(s.check(Some("new"), Scope::Ingest, at_expiry), Err(Refusal::Expired { .. })));
}

#[test]
fn a_key_without_the_scope_is_forbidden() {
    let s = store(&file(&[("reader", "acme", "r", "read", None), ("both", "acme", "b", "ingest, feedback", None)]));
    let err = s.check(Some("r"), Scope::Ingest, now()).unwrap_err();
    assert_eq!(err, Refusal::Scope { key_id: "reader".into(), project: "acme".into(), scope: "ingest" });
    assert!(err.is_forbidden());
    assert!(err.to_string().contains("lacks the \"ingest\" scope"), "{err}");
    assert!(s.check(Some("r"), Scope::Read, now()).is_ok());
    assert!(s.check(Some("b"), Scope::Feedback, now()).is_ok());
    assert!(matches!(s.check(Some("b"), Scope::Read, now()), Err(Refusal::Scope { .. })));
}

#[test]
fn development_keys_have_every_scope_and_never_expire() {
    let dev = parse_dev_keys("project1:key1,project2:key2").unwrap();
    let s = KeyStore::build("", Vec::new(), &dev).unwrap();
    for scope in Scope::ALL {
        assert_eq!(
            s.check(Some("key2"), scope, now()).unwrap(),
            Identity { project: "project2".into(), key_id: "env:project2:2".into() }
        );
    }
    assert_eq!(s.check(Some("key3"), Scope::Ingest, now()), Err(Refusal::Unknown));
    let far = now() + Duration::from_secs(100 * 365 * 86_400);
    assert!(s.check(Some("key1"), Scope::Ingest, far).is_ok());
}

#[test]
fn bad_key_files_fail_loudly_naming_the_entry() {
    let good = hex(&hash_key("k"));
    let entry = |id: &str, project: &str, sha: &str, scopes: &str, extra: &str| {
        format!("keys:\n  - id: {id}\n    project: {project}\n    sha256: {sha}\n    scopes: {scopes}\n{extra}")
    };
    let cases = [
        (entry("a", "acme", "abc", "[ingest]", ""), "64 hex digits"),
        (entry("a", "acme", &"zz".repeat(32), "[ingest]", ""), "64 hex digits"),
        (entry("a", "ac me", &good, "[ingest]", ""), "may only contain"),
        (entry("a", "acme", &good, "[]", ""), "at least one"),
        (entry("a", "acme", &good, "[write]", ""), "unknown variant"),
        (entry("a", "acme", &good, "[ingest]", "    expires: next year\n"), "expires"),
        (entry("a", "acme", &good, "[ingest]", "    secret: k\n"), "unknown field"),
        (entry("", "acme", &good, "[ingest]", ""), "id must be"),
        ("keys:\n  - id: a\n    project: acme\n".to_owned(), "missing field"),
    ];
    for (text, says) in cases {
        let err = parse_key_file("keys.yaml", &text).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(says) && err.contains("keys.yaml"), "{text}\n→ {err}");
    }
    // Duplicates across entries, and between the file and PROMPTLOG_API_KEYS.
    let twice =
        format!("{}{}", entry("a", "acme", &good, "[ingest]", ""), &entry("b", "beta", &good, "[ingest]", "")[6..]);
    let entries = parse_key_file("keys.yaml", &twice).unwrap();
    let err = KeyStore::build("keys.yaml", entries, &DevKeys::default()).unwrap_err().to_string();
    assert!(err.contains("same sha256"), "{err}");
    let same_id = format!(
        "{}{}",
        entry("a", "acme", &good, "[ingest]", ""),
        &entry("a", "acme", &hex(&hash_key("j")), "[ingest]", "")[6..]
    );
    let err = KeyStore::build("keys.yaml", parse_key_file("keys.yaml", &same_id).unwrap(), &DevKeys::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("same id"), "{err}");
    let from_env = parse_dev_keys("acme:k").unwrap();
    let err = KeyStore::build(
        "keys.yaml",
        parse_key_file("keys.yaml", &entry("a", "acme", &good, "[ingest]", "")).unwrap(),
        &from_env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("same sha256"), "{err}");
}

#[test]
fn an_empty_key_file_has_no_keys() {
    assert!(parse_key_file("k", "").unwrap().is_empty());
    assert!(parse_key_file("k", "keys: []\n").unwrap().is_empty());
}

#[test]
fn the_key_comes_from_bearer_or_x_api_key() {
    let p = |auth: Option<&str>, x: Option<&str>| {
        presented_key(auth.map(str::as_bytes), x.map(str::as_bytes)).map(str::to_owned)
    };
    assert_eq!(p(Some("Bearer pl_abc"), None).as_deref(), Some("pl_abc"));
    assert_eq!(p(Some("bearer   pl_abc "), None).as_deref(), Some("pl_abc"));
    assert_eq!(p(None, Some("pl_x")).as_deref(), Some("pl_x"));
    assert_eq!(p(Some("Bearer pl_abc"), Some("pl_x")).as_deref(), Some("pl_abc"));
    // Another scheme is not a key; x-api-key still is.
    assert_eq!(p(Some("Basic dXNlcjpwYXNz"), None), None);
    assert_eq!(p(Some("Basic dXNlcjpwYXNz"), Some("pl_x")).as_deref(), Some("pl_x"));
    assert_eq!(p(Some("Bearer"), None), None);
    assert_eq!(p(Some("Bearer "), Some("")), None);
    assert_eq!(presented_key(Some(b"Bearer \xff\xfe"), None), None);
}

#[test]
fn generated_keys_are_random_and_their_hash_is_what_the_store_looks_up() {
    let (key, hash) = generate_key().unwrap();
    let (other, _) = generate_key().unwrap();
    assert_ne!(key, other);
    assert!(key.starts_with("pl_") && key.len() == 67, "{key}");
    let s = store(&format!("keys:\n  - id: g\n    project: p\n    sha256: {hash}\n    scopes: [ingest]\n"));
    assert_eq!(s.check(Some(&key), Scope::Ingest, now()).unwrap().project, "p");
}

#[test]
fn keygen_entries_load_as_printed_and_bad_arguments_are_refused() {
    let (key, entry) = new_key_entry("acme", None, &[Scope::Ingest, Scope::Read], Some("2027-06-30")).unwrap();
    let entries = parse_key_file("entry", &format!("keys:\n{entry}")).unwrap();
    let s = KeyStore::build("entry", entries, &DevKeys::default()).unwrap();
    let id = s.check(Some(&key), Scope::Read, now()).unwrap();
    assert_eq!(id.project, "acme");
    assert!(id.key_id.starts_with("acme-"), "{}", id.key_id);
    assert!(!entry.contains(&key), "the entry holds the hash, not the key");
    let after = humantime::parse_rfc3339("2027-06-30T00:00:01Z").unwrap();
    assert!(matches!(s.check(Some(&key), Scope::Read, after), Err(Refusal::Expired { .. })));
    let (_, named) = new_key_entry("acme", Some("acme-ci"), &[Scope::Ingest], None).unwrap();
    assert!(named.contains("id: acme-ci\n") && !named.contains("expires"), "{named}");
    assert!(new_key_entry("a b", None, &[Scope::Ingest], None).unwrap_err().contains("may only contain"));
    assert!(new_key_entry("acme", None, &[], None).is_err());
    assert!(new_key_entry("acme", None, &[Scope::Ingest], Some("soon")).unwrap_err().contains("expires"));
    assert!(new_key_entry("acme", Some("has space"), &[Scope::Ingest], None).is_err());
    assert!(Scope::parse("write").is_err() && Scope::parse(" read ") == Ok(Scope::Read));
}
