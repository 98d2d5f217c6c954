use super::*;
use crate::config::{ProjectReader, Secret};

/// A config with every kind of account, and values that try to break out of their quoting.
fn config() -> Config {
    let mut c = Config::default();
    c.clickhouse.user = "promptlog_collector".into();
    c.clickhouse.password = "w'; DROP USER admin; --".into();
    c.access.reader_password = Secret("gr\\af'ana".into());
    c.access.project_readers = vec![
        ProjectReader { project: "acme".into(), user: "grafana_acme".into(), password: Secret("a".into()) },
        ProjectReader { project: "o'brien\\".into(), user: "grafana_obrien".into(), password: Secret("b".into()) },
    ];
    c.validate().unwrap();
    c
}

const GOLDEN: &str = include_str!("grants.golden.sql");

#[test]
fn generated_sql_matches_the_golden_file() {
    let shown: String = statements(&config()).unwrap().iter().map(|s| format!("{};\n", s.shown)).collect();
    crate::storage::clickhouse::assert_golden("grants.golden.sql", GOLDEN, &shown);
}

#[test]
fn passwords_are_escaped_in_sql_and_hidden_when_shown() {
    let all = statements(&config()).unwrap();
    let sql: String = all.iter().map(|s| s.sql.as_str()).collect::<Vec<_>>().join("\n");
    assert!(sql.contains(r"BY 'w\'; DROP USER admin; --'"), "{sql}");
    assert!(sql.contains(r"BY 'gr\\af\'ana'"), "{sql}");
    assert!(sql.contains(r"ProjectId = 'o\'brien\\'"), "{sql}");
    for s in &all {
        assert!(!s.shown.contains("DROP USER admin") && !s.shown.contains("af\\'ana"), "{}", s.shown);
    }
}

#[test]
fn quote_string_cannot_be_escaped_from() {
    assert_eq!(quote_string("plain"), "'plain'");
    assert_eq!(quote_string(r"a'b\c"), r"'a\'b\\c'");
    assert_eq!(quote_string(r"\'"), r"'\\\''");
}

#[test]
fn refuses_admin_shared_and_passwordless_accounts() {
    let mut c = config();
    c.clickhouse.user = "default".into();
    assert!(matches!(statements(&c), Err(GrantsError::WriterIsAdmin(_))));
    let mut c = config();
    c.access.reader_user = c.clickhouse.user.clone();
    assert!(matches!(statements(&c), Err(GrantsError::DuplicateUser(_))));
    let mut c = config();
    c.access.reader_password = Secret::default();
    assert!(matches!(statements(&c), Err(GrantsError::MissingPassword(..))));
    let mut c = config();
    c.clickhouse.password = Default::default();
    assert!(matches!(statements(&c), Err(GrantsError::MissingPassword(..))));
}

#[test]
fn writer_without_migrations_gets_insert_and_select_only() {
    let mut c = config();
    c.access.writer_can_migrate = false;
    let all = statements(&c).unwrap();
    let grant = all.iter().find(|s| s.sql.contains("TO `promptlog_writer` WITH REPLACE")).unwrap();
    assert_eq!(grant.sql, "GRANT SELECT, INSERT ON `promptlog`.* TO `promptlog_writer` WITH REPLACE OPTION");
}

#[test]
fn no_row_policies_without_project_readers() {
    let mut c = config();
    c.access.project_readers.clear();
    assert!(statements(&c).unwrap().iter().all(|s| !s.sql.contains("ROW POLICY")));
    c.access.reader_user.clear();
    assert!(statements(&c).unwrap().iter().all(|s| !s.sql.contains("promptlog_grafana")));
}

#[test]
fn a_migrating_writer_gets_the_cluster_privilege_in_cluster_mode_only() {
    let mut c = config();
    let cluster_grant = "GRANT CLUSTER ON *.* TO `promptlog_writer`";
    assert!(!statements(&c).unwrap().iter().any(|s| s.sql == cluster_grant));
    assert!(!users_xml(&c).unwrap().contains("GRANT CLUSTER"));
    c.clickhouse.cluster = "promptlog_cluster".into();
    let all = statements(&c).unwrap();
    let at = all.iter().position(|s| s.sql == cluster_grant).expect("the CLUSTER grant");
    assert!(
        all[at - 1].sql.starts_with("GRANT SELECT, INSERT, ALTER") && all[at - 1].sql.ends_with("WITH REPLACE OPTION")
    );
    assert!(users_xml(&c).unwrap().contains("<query>GRANT CLUSTER ON *.*</query>"));
    c.access.writer_can_migrate = false;
    assert!(!statements(&c).unwrap().iter().any(|s| s.sql == cluster_grant));
}
