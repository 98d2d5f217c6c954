//! The `access` section: the ClickHouse roles, users and row policies `promptlog grants` creates
//! (least privilege for the collector, Grafana and per-project readers). Nothing here is used by
//! `serve`; the collector's own user and password stay in `clickhouse.user` / `clickhouse.password`.

use serde::Deserialize;

use super::ConfigError;

/// Role given to the collector's user (`clickhouse.user`).
pub const DEFAULT_WRITER_ROLE: &str = "promptlog_writer";
/// The writer may create and alter promptlog's tables, because `serve` applies the migrations.
pub const DEFAULT_WRITER_CAN_MIGRATE: bool = true;
/// Read-only role for Grafana: every promptlog table, every project.
pub const DEFAULT_READER_ROLE: &str = "promptlog_reader";
/// Grafana's ClickHouse user (given `reader_role`).
pub const DEFAULT_READER_USER: &str = "promptlog_grafana";
/// Read-only role of the per-project users: only the tables with a `ProjectId` column.
pub const DEFAULT_PROJECT_READER_ROLE: &str = "promptlog_project_reader";
/// Settings profile of both reader roles (`readonly = 2` plus the limits below).
pub const DEFAULT_READER_PROFILE: &str = "promptlog_reader_profile";
/// Longest query a reader may ask for (seconds; the Grafana plugin sets `max_execution_time` on
/// every query from the datasource's `queryTimeout`).
pub const DEFAULT_READER_MAX_EXECUTION_TIME_S: u64 = 300;
/// Most memory one reader query may use (bytes).
pub const DEFAULT_READER_MAX_MEMORY_USAGE: u64 = 10_000_000_000;

/// A password: deserialised from a plain string, never shown by `Debug` (so `check-config` and
/// error messages do not print it).
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "[hidden]" })
    }
}

/// Roles, users and row policies (`promptlog grants`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Role of the collector's user.
    pub writer_role: String,
    /// Whether the writer may CREATE / ALTER promptlog's tables (needed when `serve` migrates);
    /// `false` leaves it INSERT and SELECT only, and `promptlog migrate` must run as an admin.
    pub writer_can_migrate: bool,
    /// Role of the Grafana user: SELECT on every promptlog table, `readonly = 2`.
    pub reader_role: String,
    /// Grafana's user; empty: no reader user is created (env `PROMPTLOG_CLICKHOUSE_READER_USER`).
    pub reader_user: String,
    /// Its password (env `PROMPTLOG_CLICKHOUSE_READER_PASSWORD`).
    pub reader_password: Secret,
    /// Role of the per-project users: SELECT on the tables with a `ProjectId` column.
    pub project_reader_role: String,
    /// Settings profile of both reader roles.
    pub reader_profile: String,
    /// Upper bound of `max_execution_time` for readers, in seconds (also its default).
    pub reader_max_execution_time_s: u64,
    /// Upper bound of `max_memory_usage` for readers, in bytes (also its default).
    pub reader_max_memory_usage: u64,
    /// Users that see one project's rows only (env `PROMPTLOG_PROJECT_READERS`).
    pub project_readers: Vec<ProjectReader>,
}

/// A ClickHouse user restricted, by row policies, to one project's rows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectReader {
    /// The project (the `ProjectId` value the rows carry).
    pub project: String,
    /// The ClickHouse user.
    pub user: String,
    /// Its password.
    pub password: Secret,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            writer_role: DEFAULT_WRITER_ROLE.into(),
            writer_can_migrate: DEFAULT_WRITER_CAN_MIGRATE,
            reader_role: DEFAULT_READER_ROLE.into(),
            reader_user: DEFAULT_READER_USER.into(),
            reader_password: Secret::default(),
            project_reader_role: DEFAULT_PROJECT_READER_ROLE.into(),
            reader_profile: DEFAULT_READER_PROFILE.into(),
            reader_max_execution_time_s: DEFAULT_READER_MAX_EXECUTION_TIME_S,
            reader_max_memory_usage: DEFAULT_READER_MAX_MEMORY_USAGE,
            project_readers: Vec::new(),
        }
    }
}

/// Whether `name` is a plain ClickHouse identifier: ASCII letter or `_`, then letters, digits, `_`,
/// at most 64 bytes. Every role, user and profile name must be one, so none can smuggle SQL even
/// before it is back-quoted.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// Parses `PROMPTLOG_PROJECT_READERS`: `project:user:password,...` (the password is everything after
/// the second `:`, so it may contain `:` but not `,`).
pub(super) fn parse_project_readers(value: &str) -> Result<Vec<ProjectReader>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let mut parts = entry.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(project), Some(user), Some(password)) => {
                    Ok(ProjectReader { project: project.into(), user: user.into(), password: Secret(password.into()) })
                }
                _ => Err(format!("expected project:user:password, got {:?}", entry.split(':').next().unwrap_or(""))),
            }
        })
        .collect()
}

impl AccessConfig {
    /// Names are identifiers, limits positive, project users distinct. Passwords are checked by
    /// `promptlog grants` (they are only needed there).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            key,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        const IDENT: &str = "expected a letter or _, then letters, digits and _ (at most 64)";
        for (key, name) in [
            ("access.writer_role", &self.writer_role),
            ("access.reader_role", &self.reader_role),
            ("access.project_reader_role", &self.project_reader_role),
            ("access.reader_profile", &self.reader_profile),
        ] {
            if !is_identifier(name) {
                return Err(invalid(key, name, IDENT));
            }
        }
        if !self.reader_user.is_empty() && !is_identifier(&self.reader_user) {
            return Err(invalid("access.reader_user", &self.reader_user, IDENT));
        }
        let roles = [&self.writer_role, &self.reader_role, &self.project_reader_role];
        if roles.iter().enumerate().any(|(i, r)| roles[..i].contains(r)) {
            return Err(invalid("access.writer_role", &self.writer_role, "the three roles must differ"));
        }
        if self.reader_max_execution_time_s == 0 {
            return Err(invalid("access.reader_max_execution_time_s", "0", "must be greater than 0"));
        }
        if self.reader_max_memory_usage == 0 {
            return Err(invalid("access.reader_max_memory_usage", "0", "must be greater than 0"));
        }
        let mut users: Vec<&str> = vec![&self.reader_user];
        for p in &self.project_readers {
            if !is_identifier(&p.user) {
                return Err(invalid("access.project_readers[].user", &p.user, IDENT));
            }
            if p.project.is_empty() || p.project.len() > 256 || p.project.chars().any(char::is_control) {
                return Err(invalid("access.project_readers[].project", &p.project, "1-256 printable characters"));
            }
            if users.contains(&p.user.as_str()) {
                return Err(invalid("access.project_readers[].user", &p.user, "each user appears once"));
            }
            users.push(&p.user);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["a", "_x", "promptlog_writer", "A1_b2"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "a`b", "a;DROP", "é", &"a".repeat(65)] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn project_readers_from_env() {
        let r = parse_project_readers("acme:grafana_acme:pa:ss, beta:grafana_beta:x").unwrap();
        assert_eq!(r[0].password.expose(), "pa:ss");
        assert_eq!(
            format!("{:?}", r[0]),
            r#"ProjectReader { project: "acme", user: "grafana_acme", password: [hidden] }"#
        );
        assert_eq!(r[1].project, "beta");
        assert!(parse_project_readers("acme:nopassword").is_err());
        assert!(parse_project_readers("").unwrap().is_empty());
    }

    #[test]
    fn validation_refuses_injection_and_duplicates() {
        let mut a = AccessConfig::default();
        a.validate().unwrap();
        a.writer_role = "w`; DROP TABLE x; --".into();
        assert!(a.validate().unwrap_err().to_string().contains("access.writer_role"));
        let mut a = AccessConfig::default();
        a.reader_role = a.writer_role.clone();
        assert!(a.validate().is_err());
        let p = ProjectReader { project: "acme".into(), user: "u".into(), password: Secret("p".into()) };
        let a = AccessConfig { project_readers: vec![p.clone(), p.clone()], ..Default::default() };
        assert!(a.validate().unwrap_err().to_string().contains("once"));
        let bad = ProjectReader { project: "a\nb".into(), ..p.clone() };
        assert!(AccessConfig { project_readers: vec![bad], ..Default::default() }.validate().is_err());
        let bad = ProjectReader { user: "u-1".into(), ..p };
        assert!(AccessConfig { project_readers: vec![bad], ..Default::default() }.validate().is_err());
    }
}
