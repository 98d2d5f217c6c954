//! Start-up checks of the TLS settings: every refusal names the config key at fault.

use std::path::Path;

use rcgen::{CertificateParams, KeyPair};

use super::*;
use crate::config::{ClickHouseConfig, Config};

/// A self-signed certificate and its key, written to `dir`.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
    let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn tls(cert: Option<&Path>, key: Option<&Path>, ca: Option<&Path>) -> TlsConfig {
    TlsConfig {
        cert_file: cert.map(Path::to_owned),
        key_file: key.map(Path::to_owned),
        client_ca_file: ca.map(Path::to_owned),
        ..TlsConfig::default()
    }
}

/// `validate` refuses `cfg`, and the message names `key` (and `needle`).
fn refused(cfg: TlsConfig, key: &str, needle: &str) {
    let mut c = Config::default();
    c.receivers.tls = cfg;
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains(key) && err.contains(needle), "{err}");
}

#[test]
fn a_good_pair_loads_with_and_without_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");
    check(&tls(Some(&cert), Some(&key), None)).unwrap();
    check(&tls(Some(&cert), Some(&key), Some(&cert))).unwrap();
    check(&TlsConfig::default()).unwrap();
}

#[test]
fn half_configured_tls_is_refused_naming_the_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");
    refused(tls(Some(&cert), None, None), KEY_KEY, CERT_KEY);
    refused(tls(None, Some(&key), None), CERT_KEY, KEY_KEY);
    refused(tls(None, None, Some(&cert)), CLIENT_CA_KEY, CERT_KEY);
}

#[test]
fn unreadable_or_unparsable_files_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");
    let (_, other_key) = self_signed(dir.path(), "other");
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM at all\n").unwrap();
    refused(tls(Some(&missing), Some(&key), None), CERT_KEY, "cannot read");
    refused(tls(Some(&cert), Some(&missing), None), KEY_KEY, "cannot read");
    refused(tls(Some(&garbage), Some(&key), None), CERT_KEY, "no PEM CERTIFICATE");
    refused(tls(Some(&cert), Some(&garbage), None), KEY_KEY, "private key");
    refused(tls(Some(&key), Some(&key), None), CERT_KEY, "no PEM CERTIFICATE");
    refused(tls(Some(&cert), Some(&other_key), None), KEY_KEY, "usable pair");
    refused(tls(Some(&cert), Some(&key), Some(&garbage)), CLIENT_CA_KEY, "no PEM CERTIFICATE");
    refused(tls(Some(&cert), Some(&key), Some(&missing)), CLIENT_CA_KEY, "cannot read");
}

#[test]
fn clickhouse_ca_file_is_checked_and_needs_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(dir.path(), "ca");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n").unwrap();
    let ch = |url: &str, ca: &Path| ClickHouseConfig {
        url: url.into(),
        ca_file: Some(ca.to_owned()),
        ..ClickHouseConfig::default()
    };
    client::check(&ch("https://ch:8443", &cert)).unwrap();
    for (cfg, needle) in
        [(ch("http://ch:8123", &cert), "https://"), (ch("https://ch:8443", &garbage), "CA certificate")]
    {
        let c = Config { clickhouse: cfg, ..Config::default() };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains(client::CA_KEY) && err.contains(needle), "{err}");
    }
}

#[test]
fn environment_sets_and_unsets_the_files() {
    let mut c = Config::default();
    let vars = [
        ("PROMPTLOG_TLS_CERT_FILE", "/etc/promptlog/tls.crt"),
        ("PROMPTLOG_TLS_KEY_FILE", "/etc/promptlog/tls.key"),
        ("PROMPTLOG_TLS_CLIENT_CA_FILE", "/etc/promptlog/clients.pem"),
        ("PROMPTLOG_CLICKHOUSE_CA_FILE", "/etc/promptlog/ch-ca.pem"),
    ];
    c.apply_env(|v| vars.iter().find(|(k, _)| *k == v).map(|(_, x)| x.to_string())).unwrap();
    assert_eq!(c.receivers.tls.cert_file.as_deref(), Some(Path::new("/etc/promptlog/tls.crt")));
    assert_eq!(c.receivers.tls.key_file.as_deref(), Some(Path::new("/etc/promptlog/tls.key")));
    assert_eq!(c.receivers.tls.client_ca_file.as_deref(), Some(Path::new("/etc/promptlog/clients.pem")));
    assert_eq!(c.clickhouse.ca_file.as_deref(), Some(Path::new("/etc/promptlog/ch-ca.pem")));
    c.apply_env(|v| (v == "PROMPTLOG_TLS_CLIENT_CA_FILE").then(String::new)).unwrap();
    assert_eq!(c.receivers.tls.client_ca_file, None);
}

#[test]
fn reload_notices_changed_contents_only_and_keeps_serving_on_a_bad_change() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");
    let stats = Stats::new();
    let live = ServerTls::load(&tls(Some(&cert), Some(&key), None), stats).unwrap().unwrap();
    let before = live.current(Protocol::Http);
    assert!(!live.reload().unwrap(), "unchanged files are not reloaded");
    std::fs::write(&key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    assert!(live.reload().unwrap_err().to_string().contains(KEY_KEY));
    assert!(Arc::ptr_eq(&before, &live.current(Protocol::Http)), "a bad change keeps the old config");
    assert!(!live.reload().unwrap(), "the same bad change is reported once");
    self_signed(dir.path(), "server");
    assert!(live.reload().unwrap());
    assert!(!Arc::ptr_eq(&before, &live.current(Protocol::Http)));
    assert_eq!(live.current(Protocol::Grpc).alpn_protocols, vec![b"h2".to_vec()]);
}
