//! Least privilege and encryption at rest against the real ClickHouse engine (chDB):
//! - every statement `promptlog grants` generates parses in the engine (chDB cannot run them: it
//!   has no writable access storage and no impersonation, see tests/chdb_server/README.md; a canary
//!   below fails once it can, so these tests can then run the grants for real). The same accounts
//!   in users.xml form are enforced by the engine in tests/it/access_control.rs;
//! - the compose encrypted disk (`grafana/clickhouse/encrypted-disk.xml`) keeps a stored prompt off the disk
//!   in clear, while the same prompt stored without the policy is found by the same scan.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::stack::Stack;
use promptlog::config::{Config, ProjectReader, Secret};
use promptlog::storage::clickhouse::grants;
use prost::Message;

const DISK_KEY_VAR: &str = "PROMPTLOG_CLICKHOUSE_DISK_KEY";

/// POSTs `sql` with `params`; returns (status, body).
async fn post(url: &str, sql: &str, params: &[(&str, &str)]) -> (u16, String) {
    let resp = reqwest::Client::new().post(url).query(params).body(sql.to_owned()).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// `formatQuerySingleLine(sql)` in the engine: Ok(formatted) or Err(ClickHouse's error text).
async fn format_in_engine(url: &str, sql: &str) -> Result<String, String> {
    // Query parameter values are read in TSV-escaped form, so `\` must be doubled to arrive as is.
    let escaped = sql.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n");
    let (status, body) = post(
        url,
        "SELECT formatQuerySingleLine({q:String})",
        &[("param_q", escaped.as_str()), ("default_format", "TSVRaw")],
    )
    .await;
    if status == 200 { Ok(body.trim_end().to_owned()) } else { Err(body) }
}

fn grants_config() -> Config {
    let mut c = Config::default();
    c.clickhouse.user = "promptlog_collector".into();
    c.clickhouse.password = "w'; DROP USER admin; --".into();
    c.access.reader_password = Secret("r\\'".into());
    c.access.project_readers = vec![
        ProjectReader { project: "acme".into(), user: "grafana_acme".into(), password: Secret("a".into()) },
        ProjectReader { project: "o'brien".into(), user: "grafana_obrien".into(), password: Secret("b".into()) },
    ];
    c.validate().unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_generated_grant_statement_parses_in_clickhouse() {
    let url = promptlog_testkit::shared_clickhouse_url();
    // The check can fail: a misspelt privilege or a clause in the wrong place is a syntax error.
    assert!(format_in_engine(&url, "GRANT SELEC ON db.* TO r").await.is_err());
    assert!(format_in_engine(&url, "CREATE ROW POLICY p ON db.t TO u USING 1").await.is_err());
    let statements = grants::statements(&grants_config()).unwrap();
    assert!(statements.len() > 20);
    for s in &statements {
        let formatted = format_in_engine(&url, &s.sql).await.unwrap_or_else(|e| panic!("{}\n{e}", s.shown));
        // One statement of the same kind: no literal was closed early (a password or project id
        // ending the string would leave trailing SQL, which formatQuery refuses or reorders).
        let kind = |q: &str| q.replace('`', "").split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(kind(&formatted), kind(&s.sql), "{formatted}");
        assert!(!formatted.contains("DROP USER admin;") || formatted.contains(r"'w\'; DROP USER admin; --'"));
        // Formatting the formatted statement again is stable: it is a complete statement.
        assert_eq!(format_in_engine(&url, &formatted).await.unwrap(), formatted);
    }
    let policy = statements.iter().find(|s| s.sql.contains("grafana_obrien` ON `promptlog`.`llm_calls`")).unwrap();
    let formatted = format_in_engine(&url, &policy.sql).await.unwrap();
    assert!(formatted.contains(r"USING ProjectId = 'o\'brien'"), "{formatted}");
}

/// Canary: chDB's embedded server has only the read-only `users_xml` access storage and
/// impersonation off (access control is set up only by clickhouse-server's `setupFromMainConfig`).
/// When this fails, chDB can manage users: run `grants::statements` for real and test enforcement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chdb_still_cannot_create_users_or_impersonate() {
    if std::env::var(promptlog_testkit::EXTERNAL_URL_VAR).is_ok_and(|v| !v.is_empty()) {
        return; // a real ClickHouse server can; this is about chDB
    }
    let url = promptlog_testkit::shared_clickhouse_url();
    let (status, body) = post(&url, "CREATE ROLE IF NOT EXISTS promptlog_canary_role", &[]).await;
    assert_ne!(status, 200, "chDB now creates roles: turn the grants tests into enforcement tests");
    assert!(body.contains("ACCESS_DENIED") || body.contains("ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND"), "{body}");
    let (status, body) = post(&url, "EXECUTE AS default SELECT 1", &[]).await;
    assert_ne!(status, 200, "chDB now impersonates: the chDB server can honour the HTTP user");
    assert!(body.contains("IMPERSONATE"), "{body}");
}

/// A chDB server started with a rendered copy of `grafana/clickhouse/encrypted-disk.xml`.
struct EncryptedServer {
    url: String,
    child: Child,
    data_dir: PathBuf,
    disk_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl EncryptedServer {
    fn start() -> EncryptedServer {
        let tmp = tempfile::tempdir().unwrap();
        let (data_dir, disk_dir) = (tmp.path().join("data"), tmp.path().join("disk"));
        let shipped =
            std::fs::read_to_string(promptlog_testkit::repo_root().join("grafana/clickhouse/encrypted-disk.xml"))
                .unwrap();
        let compose_path = "/var/lib/clickhouse/disks/promptlog_plain/";
        assert!(shipped.contains(compose_path) && shipped.contains(&format!("from_env=\"{DISK_KEY_VAR}\"")));
        let config = tmp.path().join("encrypted-disk.xml");
        std::fs::write(&config, shipped.replace(compose_path, &format!("{}/", disk_dir.display()))).unwrap();
        let mut child = Command::new(promptlog_testkit::python())
            .arg(promptlog_testkit::repo_root().join("tests/chdb_server/server.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(&data_dir)
            .arg("--config-file")
            .arg(&config)
            .args(["--parent-pid", &std::process::id().to_string()])
            .env(DISK_KEY_VAR, const_hex::encode(promptlog_otlp::random_bytes::<32>()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("chDB server said {line:?}")).to_owned();
        EncryptedServer { url, child, data_dir, disk_dir, _tmp: tmp }
    }
}

impl Drop for EncryptedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
                found.push(path);
            }
        }
    }
    found
}

/// Sends one span whose prompt attribute is `marker` through `stack` and waits for its row in `sql`.
async fn store_prompt(stack: &Stack, sql: &promptlog_testkit::Sql, marker: &str) {
    let span = promptlog_otlp::span(
        "chat gpt-4o",
        promptlog_otlp::now_ns(),
        3,
        vec![promptlog_otlp::kv("gen_ai.prompt", marker), promptlog_otlp::kv("gen_ai.system", "openai")],
    );
    let body = promptlog_otlp::traces_request(promptlog_otlp::resource("enc", "test"), vec![span]).encode_to_vec();
    let (status, _, _) = stack.post_otlp("/v1/traces", "application/x-protobuf", body, false).await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sql.count("otel_traces").await < 1 {
        assert!(std::time::Instant::now() < deadline, "the span never reached ClickHouse");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_storage_policy_keeps_prompts_off_the_disk_in_clear() {
    let _shared = promptlog_testkit::gate::shared().await; // not while the fault suite runs
    let server = EncryptedServer::start();
    let marker = |kind: &str| format!("prompt-{kind}-{}", const_hex::encode(promptlog_otlp::random_bytes::<12>()));
    let (secret, control) = (marker("encrypted"), marker("plain"));
    for (policy, text) in [("promptlog_encrypted", &secret), ("", &control)] {
        let stack = Stack::start_with(|c| {
            c.clickhouse.url = server.url.clone();
            c.clickhouse.storage_policy = policy.into();
        })
        .await;
        let sql = promptlog_testkit::Sql::new(&server.url, &stack.config.clickhouse.database);
        store_prompt(&stack, &sql, text).await;
        let disks = sql.rows("SELECT DISTINCT disk_name AS d FROM system.parts WHERE database = currentDatabase() AND table = 'otel_traces' AND active").await;
        let expected = if policy.is_empty() { "default" } else { "promptlog_encrypted" };
        assert_eq!(disks.iter().map(|r| r["d"].as_str().unwrap()).collect::<Vec<_>>(), [expected]);
        // Uncompressed copy of the prompt, so only encryption can hide it (ZSTD alone may).
        let settings = if policy.is_empty() { String::new() } else { format!(" SETTINGS storage_policy = '{policy}'") };
        sql.exec(&format!("CREATE TABLE raw (s String CODEC(NONE)) ENGINE = MergeTree ORDER BY tuple(){settings}"))
            .await;
        sql.exec(&format!("INSERT INTO raw VALUES ('{text}')")).await;
        let create = sql.rows("SELECT create_table_query AS q FROM system.tables WHERE database = currentDatabase() AND name = 'llm_calls'").await;
        assert_eq!(
            create[0]["q"].as_str().unwrap().contains("storage_policy = 'promptlog_encrypted'"),
            !policy.is_empty()
        );
        drop(stack);
    }
    for dir in [&server.data_dir, &server.disk_dir] {
        assert!(dir.exists(), "{}", dir.display());
    }
    let scan = |needle: &str| {
        [&server.data_dir, &server.disk_dir]
            .iter()
            .flat_map(|d| files_containing(d, needle.as_bytes()))
            .collect::<Vec<_>>()
    };
    // The scan finds a prompt stored uncompressed without the policy (so it can fail) ...
    assert!(!scan(&control).is_empty(), "the unencrypted control prompt should be visible on disk");
    // ... and not the one stored on the encrypted disk.
    assert_eq!(scan(&secret), Vec::<PathBuf>::new(), "plaintext prompt found on disk");
}

// ---- compose.yaml: accounts, required secrets, bindings, the encrypted disk -------------------

fn compose() -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(promptlog_testkit::repo_root().join("compose.yaml")).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc.apply_merge().unwrap();
    doc
}

fn env_of<'a>(doc: &'a serde_yaml_ng::Value, service: &str, var: &str) -> &'a str {
    doc["services"][service]["environment"][var].as_str().unwrap_or_else(|| panic!("{service} lacks {var}"))
}

/// A compose variable that holds a secret: required in compose files, left empty in `.env.example`.
fn is_secret(var: &str) -> bool {
    (var.contains("PASSWORD") && var != "GF_SMTP_PASSWORD") || var.contains("DISK_KEY") || var.contains("SECRET")
}

/// Checks that `.env.example` documents every `${VAR}` the compose file `compose` reads and ships no
/// secret value; returns the variables.
pub(crate) fn check_env_example(compose: &str) -> std::collections::BTreeSet<String> {
    let root = promptlog_testkit::repo_root();
    let text = std::fs::read_to_string(root.join(compose)).unwrap();
    let example = std::fs::read_to_string(root.join(".env.example")).unwrap();
    let vars: std::collections::BTreeSet<String> = text
        .split("${")
        .skip(1)
        .filter_map(|s| s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next())
        .filter(|v| !v.is_empty() && *v != "VAR")
        .map(str::to_owned)
        .collect();
    for var in &vars {
        let line = example
            .lines()
            .find(|l| l.starts_with(&format!("{var}=")))
            .unwrap_or_else(|| panic!(".env.example lacks {var} (read by {compose})"));
        if is_secret(var) {
            assert_eq!(line, format!("{var}="), "a secret in .env.example must be left empty");
        }
    }
    vars
}

#[test]
fn compose_requires_every_secret_and_ships_none() {
    let doc = compose();
    let services = doc["services"].as_mapping().unwrap();
    let mut secrets = 0;
    for (name, svc) in services {
        for (var, value) in svc["environment"].as_mapping().into_iter().flatten() {
            let (var, value) = (var.as_str().unwrap(), value.as_str().unwrap_or_default());
            if is_secret(var) {
                secrets += 1;
                // `${VAR:?message}`: compose refuses to start while it is unset or empty.
                assert!(value.starts_with("${") && value.contains(":?"), "{name:?}.{var} = {value}: must be required");
            }
        }
    }
    assert!(secrets >= 7, "{secrets}");
    // .env.example documents every variable compose.yaml reads, and ships no secret value.
    let vars = check_env_example("compose.yaml");
    assert!(vars.len() > 25, "{vars:?}");
}

#[test]
fn compose_uses_separate_least_privilege_accounts() {
    let doc = compose();
    let admin = env_of(&doc, "clickhouse", "CLICKHOUSE_USER");
    let collector = env_of(&doc, "collector", "PROMPTLOG_CLICKHOUSE_USER");
    let grafana = env_of(&doc, "grafana", "PROMPTLOG_CLICKHOUSE_READER_USER");
    assert!(admin.contains("PROMPTLOG_CLICKHOUSE_ADMIN_USER"), "{admin}");
    assert!(collector.contains("PROMPTLOG_CLICKHOUSE_USER:-promptlog_collector"), "{collector}");
    assert!(grafana.contains("PROMPTLOG_CLICKHOUSE_READER_USER:-promptlog_grafana"), "{grafana}");
    // Each service holds only its own password.
    let has = |svc: &str, var: &str| doc["services"][svc]["environment"][var].is_string();
    assert!(
        !has("collector", "PROMPTLOG_CLICKHOUSE_ADMIN_PASSWORD")
            && !has("collector", "PROMPTLOG_CLICKHOUSE_READER_PASSWORD")
    );
    assert!(!has("grafana", "PROMPTLOG_CLICKHOUSE_PASSWORD") && !has("grafana", "PROMPTLOG_CLICKHOUSE_ADMIN_PASSWORD"));
    assert!(has("grants", "PROMPTLOG_CLICKHOUSE_ADMIN_PASSWORD") && has("grants", "PROMPTLOG_CLICKHOUSE_PASSWORD"));
    // The datasource logs in as the reader.
    let ds = std::fs::read_to_string(
        promptlog_testkit::repo_root().join("grafana/provisioning/datasources/clickhouse.yaml"),
    )
    .unwrap();
    assert!(ds.contains("username: ${PROMPTLOG_CLICKHOUSE_READER_USER}"));
    assert!(ds.contains("password: ${PROMPTLOG_CLICKHOUSE_READER_PASSWORD}"));
    // `grants` runs once ClickHouse is up; the collector and Grafana wait for it to succeed.
    let grants = &doc["services"]["grants"];
    assert_eq!(grants["command"][0].as_str(), Some("grants"));
    assert_eq!(grants["depends_on"]["clickhouse"]["condition"].as_str(), Some("service_healthy"));
    for svc in ["collector", "grafana"] {
        let cond = doc["services"][svc]["depends_on"]["grants"]["condition"].as_str();
        assert_eq!(cond, Some("service_completed_successfully"), "{svc}");
    }
    // ClickHouse and Grafana are published on localhost unless told otherwise; OTLP on all interfaces.
    for (svc, port) in [("clickhouse", "8123"), ("grafana", "3000")] {
        let ports = doc["services"][svc]["ports"].as_sequence().unwrap();
        for p in ports {
            let p = p.as_str().unwrap();
            assert!(p.starts_with("127.0.0.1:") || p.contains(":-127.0.0.1}:"), "{svc} publishes {p}");
            assert!(p.ends_with(&format!(":{port}:{port}")), "{p}");
        }
    }
    let otlp: Vec<_> =
        doc["services"]["collector"]["ports"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(otlp, ["4317:4317", "4318:4318"]);
}

#[test]
fn compose_clickhouse_stores_tables_on_the_encrypted_disk() {
    let doc = compose();
    let mounts: Vec<&str> =
        doc["services"]["clickhouse"]["volumes"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(
        mounts.contains(
            &"./grafana/clickhouse/encrypted-disk.xml:/etc/clickhouse-server/config.d/promptlog-encrypted-disk.xml:ro"
        ),
        "{mounts:?}"
    );
    let xml =
        std::fs::read_to_string(promptlog_testkit::repo_root().join("grafana/clickhouse/encrypted-disk.xml")).unwrap();
    assert!(xml.contains("<type>encrypted</type>") && xml.contains("<algorithm>AES_256_CTR</algorithm>"));
    assert!(xml.contains(&format!("from_env=\"{DISK_KEY_VAR}\"")), "the key comes from the environment");
    assert!(!xml.contains("<key>") && !xml.contains("<key_hex>"), "no key in the file");
    assert!(env_of(&doc, "clickhouse", DISK_KEY_VAR).contains(":?"));
    let policy = env_of(&doc, "collector", "PROMPTLOG_CLICKHOUSE_STORAGE_POLICY");
    assert!(policy.ends_with("-promptlog_encrypted}"), "{policy}");
    assert!(xml.contains("<policies>\n            <promptlog_encrypted>"), "the policy the collector names exists");
}

// ---- the `promptlog grants` command ---------------------------------------------------------

fn grants_command(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_promptlog"));
    cmd.arg("grants").args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn grants_print_shows_the_sql_without_passwords() {
    let env = [
        ("PROMPTLOG_CLICKHOUSE_USER", "promptlog_collector"),
        ("PROMPTLOG_CLICKHOUSE_PASSWORD", "collector-pw-1"),
        ("PROMPTLOG_CLICKHOUSE_READER_PASSWORD", "reader-pw-2"),
        ("PROMPTLOG_PROJECT_READERS", "acme:grafana_acme:acme-pw-3"),
    ];
    let out = grants_command(&["--print"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("CREATE ROLE IF NOT EXISTS `promptlog_writer`;\n"), "{text}");
    assert!(text.contains("USING ProjectId = 'acme' TO `grafana_acme`;"), "{text}");
    assert_eq!(text.matches("BY '[HIDDEN]'").count(), 6, "{text}");
    let xml = grants_command(&["--users-xml"], &env);
    assert!(xml.status.success());
    let xml = String::from_utf8(xml.stdout).unwrap();
    assert!(xml.contains("<grafana_acme>") && xml.contains("<filter>ProjectId = 'acme'</filter>"), "{xml}");
    for (output, form) in [(&text, "--print"), (&xml, "--users-xml")] {
        for pw in ["collector-pw-1", "reader-pw-2", "acme-pw-3"] {
            assert!(!output.contains(pw), "{form} shows a password");
        }
    }
    // A missing password, a bad name, and the admin as collector are refused, naming what to fix.
    let out = grants_command(&["--print"], &env[..1]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PROMPTLOG_CLICKHOUSE_PASSWORD"));
    let bad = [("PROMPTLOG_PROJECT_READERS", "acme:grafana`;DROP:pw"), env[0], env[1], env[2]];
    let out = grants_command(&["--print"], &bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access.project_readers[].user"));
    let out = grants_command(&["--print"], &[("PROMPTLOG_CLICKHOUSE_PASSWORD", "x")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("dedicated user"), "{out:?}");
}
