//! Least privilege in ClickHouse: the roles, users, settings profile and row policies that
//! `promptlog grants` creates, as idempotent SQL run by an admin.
//!
//! - `access.writer_role` → the collector's user (`clickhouse.user`): INSERT and SELECT on the
//!   promptlog database, plus CREATE DATABASE / TABLE / VIEW and ALTER when the collector applies the
//!   migrations itself (`access.writer_can_migrate`), with `CLUSTER` in cluster mode (`ON CLUSTER`
//!   DDL). Nothing else on other databases, no DROP, no access management.
//! - `access.reader_role` → Grafana's user: SELECT on the promptlog database under the settings
//!   profile `access.reader_profile` (`readonly = 2`, so the plugin may still set
//!   `max_execution_time` and the `SQL_promptlog_*` thresholds, with `max_execution_time` and
//!   `max_memory_usage` bounded by constraints).
//! - `access.project_reader_role` → each `access.project_readers` user: SELECT on the tables with a
//!   `ProjectId` column only, and a RESTRICTIVE row policy `ProjectId = '<project>'` per table; a
//!   PERMISSIVE `USING 1 TO ALL` policy on the same tables keeps every other user (writer, Grafana,
//!   admins) seeing all rows whatever `users_without_row_policies_can_read_rows` says.
//!
//! Every name is checked to be a plain identifier by the config validation and back-quoted here;
//! passwords and project ids are SQL string literals with `\` and `'` escaped. Each statement is
//! safe to run again: roles and users are created if missing, passwords, default roles, grants
//! (`WITH REPLACE OPTION`), the profile and the policies (`OR REPLACE`) are rewritten to match.

use promptlog_ingest::Table;

pub use super::grants_xml::users_xml;
use super::{Store, StoreError};
use crate::config::{Config, is_identifier};

/// Privileges of the writer role when it applies the migrations ...
pub const WRITER_MIGRATE_PRIVILEGES: &str = "SELECT, INSERT, ALTER, CREATE DATABASE, CREATE TABLE, CREATE VIEW";
/// ... and when it does not.
pub const WRITER_PRIVILEGES: &str = "SELECT, INSERT";

/// Row policy giving every user all rows of a project table (see the module docs).
pub const ALL_ROWS_POLICY: &str = "promptlog_all_rows";
/// Prefix of the per-project-user row policies.
pub const PROJECT_POLICY_PREFIX: &str = "promptlog_project_";

/// One statement, and how it is shown: passwords replaced by `[HIDDEN]` (as ClickHouse's own
/// query log does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// What is sent to ClickHouse.
    pub sql: String,
    /// What `--print` and the logs show.
    pub shown: String,
}

impl Statement {
    fn plain(sql: String) -> Statement {
        Statement { shown: sql.clone(), sql }
    }
}

/// Why the grants cannot be generated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantsError {
    /// The collector would keep an admin or shared account.
    #[error(
        "clickhouse.user is {0:?}: give the collector a dedicated user (e.g. promptlog_collector); \
         `promptlog grants` connects as the admin given by --admin-user"
    )]
    WriterIsAdmin(String),
    /// Two accounts share a name.
    #[error("user {0:?} is configured for two accounts (clickhouse.user, access.reader_user, access.project_readers)")]
    DuplicateUser(String),
    /// A user without password.
    #[error("{0} has no password; set {1}")]
    MissingPassword(String, &'static str),
    /// A name that is not an identifier (validated config cannot have one).
    #[error("{0:?} is not a plain identifier")]
    BadIdentifier(String),
}

/// Back-quotes an identifier that [`is_identifier`] accepted.
fn ident(name: &str) -> Result<String, GrantsError> {
    if is_identifier(name) { Ok(format!("`{name}`")) } else { Err(GrantsError::BadIdentifier(name.to_owned())) }
}

/// A ClickHouse string literal: `\` and `'` escaped, so no value can end the literal.
pub fn quote_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The three statements that create (or update) a user with exactly `role`.
fn user_statements(user: &str, password: &str, role: &str) -> Result<Vec<Statement>, GrantsError> {
    let (user, role) = (ident(user)?, ident(role)?);
    let auth = |pw: &str| format!("IDENTIFIED WITH sha256_password BY {pw}");
    let secret = |sql: &str| Statement {
        sql: sql.replace("{auth}", &auth(&quote_string(password))),
        shown: sql.replace("{auth}", &auth("'[HIDDEN]'")),
    };
    Ok(vec![
        secret(&format!("CREATE USER IF NOT EXISTS {user} {{auth}}")),
        Statement::plain(format!("GRANT {role} TO {user} WITH REPLACE OPTION")),
        secret(&format!("ALTER USER {user} {{auth}} DEFAULT ROLE {role}")),
    ])
}

/// The writer role's privileges on the promptlog database.
pub fn writer_privileges(config: &Config) -> &'static str {
    if config.access.writer_can_migrate { WRITER_MIGRATE_PRIVILEGES } else { WRITER_PRIVILEGES }
}

/// In cluster mode, a migrating writer's extra grant: `ON CLUSTER` DDL needs the `CLUSTER` privilege.
pub(crate) fn cluster_grant(config: &Config) -> Option<&'static str> {
    (config.access.writer_can_migrate && !config.clickhouse.cluster.is_empty()).then_some("GRANT CLUSTER ON *.*")
}

/// The row condition of a project reader.
pub fn project_filter(project: &str) -> String {
    format!("ProjectId = {}", quote_string(project))
}

/// Refuses an admin or shared collector account, duplicate users and missing passwords.
pub(crate) fn check_accounts(config: &Config) -> Result<(), GrantsError> {
    let (a, ch) = (&config.access, &config.clickhouse);

    if ch.user.is_empty() || ch.user == "default" {
        return Err(GrantsError::WriterIsAdmin(ch.user.clone()));
    }
    let mut users = vec![ch.user.as_str()];
    for u in std::iter::once(a.reader_user.as_str())
        .filter(|u| !u.is_empty())
        .chain(a.project_readers.iter().map(|p| p.user.as_str()))
    {
        if users.contains(&u) {
            return Err(GrantsError::DuplicateUser(u.to_owned()));
        }
        users.push(u);
    }
    if ch.password.expose().is_empty() {
        return Err(GrantsError::MissingPassword(
            format!("clickhouse.user {:?}", ch.user),
            "PROMPTLOG_CLICKHOUSE_PASSWORD",
        ));
    }
    if !a.reader_user.is_empty() && a.reader_password.expose().is_empty() {
        return Err(GrantsError::MissingPassword(
            format!("access.reader_user {:?}", a.reader_user),
            "PROMPTLOG_CLICKHOUSE_READER_PASSWORD",
        ));
    }
    if let Some(p) = a.project_readers.iter().find(|p| p.password.expose().is_empty()) {
        return Err(GrantsError::MissingPassword(format!("project reader {:?}", p.user), "its password"));
    }
    Ok(())
}

/// Every statement for `config`, in the order they must run.
pub fn statements(config: &Config) -> Result<Vec<Statement>, GrantsError> {
    let a = &config.access;
    let ch = &config.clickhouse;
    let db = ident(&ch.database)?;
    let (writer, reader, project_reader) =
        (ident(&a.writer_role)?, ident(&a.reader_role)?, ident(&a.project_reader_role)?);
    check_accounts(config)?;

    let mut out: Vec<Statement> = [&writer, &reader, &project_reader]
        .iter()
        .map(|r| Statement::plain(format!("CREATE ROLE IF NOT EXISTS {r}")))
        .collect();
    let writer_privileges = if a.writer_can_migrate {
        "SELECT, INSERT, ALTER, CREATE DATABASE, CREATE TABLE, CREATE VIEW"
    } else {
        "SELECT, INSERT"
    };
    out.push(Statement::plain(format!("GRANT {writer_privileges} ON {db}.* TO {writer} WITH REPLACE OPTION")));
    if let Some(grant) = cluster_grant(config) {
        // Added to the grant above (a second REPLACE would drop it).
        out.push(Statement::plain(format!("{grant} TO {writer}")));
    }
    out.push(Statement::plain(format!("GRANT SELECT ON {db}.* TO {reader} WITH REPLACE OPTION")));
    let project_tables: Vec<String> = project_reader_tables().map(|t| format!("SELECT ON {db}.`{t}`")).collect();
    out.push(Statement::plain(format!("GRANT {} TO {project_reader} WITH REPLACE OPTION", project_tables.join(", "))));
    let (time, memory) = (a.reader_max_execution_time_s, a.reader_max_memory_usage);
    out.push(Statement::plain(format!(
        "CREATE SETTINGS PROFILE OR REPLACE {} SETTINGS readonly = 2 CONST, \
         max_execution_time = {time} MIN 1 MAX {time}, max_memory_usage = {memory} MIN 1 MAX {memory} \
         TO {reader}, {project_reader}",
        ident(&a.reader_profile)?
    )));

    out.extend(user_statements(&ch.user, ch.password.expose(), &a.writer_role)?);
    if !a.reader_user.is_empty() {
        out.extend(user_statements(&a.reader_user, a.reader_password.expose(), &a.reader_role)?);
    }
    for p in &a.project_readers {
        out.extend(user_statements(&p.user, p.password.expose(), &a.project_reader_role)?);
    }
    if !a.project_readers.is_empty() {
        for t in project_reader_tables() {
            let table = format!("{db}.`{t}`");
            out.push(Statement::plain(format!(
                "CREATE ROW POLICY OR REPLACE `{ALL_ROWS_POLICY}` ON {table} AS PERMISSIVE FOR SELECT USING 1 TO ALL"
            )));
            for p in &a.project_readers {
                out.push(Statement::plain(format!(
                    "CREATE ROW POLICY OR REPLACE `{PROJECT_POLICY_PREFIX}{}` ON {table} AS RESTRICTIVE FOR SELECT \
                     USING {} TO {}",
                    p.user,
                    project_filter(&p.project),
                    ident(&p.user)?
                )));
            }
        }
    }
    Ok(out)
}

/// The tables a project reader may read, each behind its project row policy: the signal tables and the
/// `llm_calls` rollups the dashboards read.
pub(crate) fn project_reader_tables() -> impl Iterator<Item = &'static str> {
    Table::ALL.iter().map(|t| t.name()).chain(super::schema::ROLLUP_TABLES)
}

/// Runs `statements` in order on `admin` (a store connected as a user allowed to manage access).
pub async fn apply(admin: &Store, statements: &[Statement]) -> Result<(), StoreError> {
    for s in statements {
        tracing::debug!(sql = %s.shown, "grants");
        admin.execute(&s.sql).await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "grants_tests.rs"]
mod tests;
