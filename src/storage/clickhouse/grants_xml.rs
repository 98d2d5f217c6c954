//! The same accounts as [`super::grants::statements`], as a ClickHouse users.xml snippet (for
//! `users.d/`), for servers whose accounts are managed in files rather than SQL, and for engines
//! without writable access storage (chDB, which the tests use to enforce these accounts).
//!
//! XML has no roles: each user carries its role's privileges (`<grants>`), the reader profile, and
//! for a project reader a `<databases>` row filter per project table. Passwords are stored as
//! `password_sha256_hex`. Users not named here see every row (ClickHouse's default
//! `users_without_row_policies_can_read_rows`).

use sha2::{Digest, Sha256};

use super::grants::{
    GrantsError, check_accounts, cluster_grant, project_filter, project_reader_tables, writer_privileges,
};
use crate::config::Config;

/// Escapes text for an XML element body.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn sha256_hex(password: &str) -> String {
    Sha256::digest(password.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// One `<user>` element. `name` and `profile` are validated identifiers.
fn user(out: &mut String, name: &str, password: &str, profile: Option<&str>, grants: &[String], filters: &str) {
    out.push_str(&format!("        <{name}>\n"));
    out.push_str(&format!("            <password_sha256_hex>{}</password_sha256_hex>\n", sha256_hex(password)));
    out.push_str("            <networks><ip>::/0</ip></networks>\n");
    if let Some(p) = profile {
        out.push_str(&format!("            <profile>{p}</profile>\n"));
    }
    out.push_str("            <grants>\n");
    for g in grants {
        out.push_str(&format!("                <query>{}</query>\n", xml(g)));
    }
    out.push_str("            </grants>\n");
    out.push_str(filters);
    out.push_str(&format!("        </{name}>\n"));
}

/// The users.xml snippet for `config` (same checks as the SQL form).
pub fn users_xml(config: &Config) -> Result<String, GrantsError> {
    check_accounts(config)?;
    let (a, ch) = (&config.access, &config.clickhouse);
    let db = &ch.database;
    let (time, memory) = (a.reader_max_execution_time_s, a.reader_max_memory_usage);
    let profile = &a.reader_profile;
    let mut out =
        String::from("<!-- promptlog accounts, written by promptlog grants (option users-xml). -->\n<clickhouse>\n");
    out.push_str(&format!(
        "    <profiles>\n        <{profile}>\n            <readonly>2</readonly>\n            \
         <max_execution_time>{time}</max_execution_time>\n            <max_memory_usage>{memory}</max_memory_usage>\n            \
         <constraints>\n                <readonly><const/></readonly>\n                \
         <max_execution_time><min>1</min><max>{time}</max></max_execution_time>\n                \
         <max_memory_usage><min>1</min><max>{memory}</max></max_memory_usage>\n            </constraints>\n        \
         </{profile}>\n    </profiles>\n    <users>\n"
    ));
    user(
        &mut out,
        &ch.user,
        ch.password.expose(),
        None,
        &[Some(format!("GRANT {} ON `{db}`.*", writer_privileges(config))), cluster_grant(config).map(str::to_owned)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        "",
    );
    if !a.reader_user.is_empty() {
        let grants = [format!("GRANT SELECT ON `{db}`.*")];
        user(&mut out, &a.reader_user, a.reader_password.expose(), Some(profile), &grants, "");
    }
    for p in &a.project_readers {
        let grants: Vec<String> = project_reader_tables().map(|t| format!("GRANT SELECT ON `{db}`.`{t}`")).collect();
        let mut filters = format!("            <databases>\n                <{db}>\n");
        for t in project_reader_tables() {
            let filter = xml(&project_filter(&p.project));
            filters.push_str(&format!("                    <{t}><filter>{filter}</filter></{t}>\n"));
        }
        filters.push_str(&format!("                </{db}>\n            </databases>\n"));
        user(&mut out, &p.user, p.password.expose(), Some(profile), &grants, &filters);
    }
    out.push_str("    </users>\n</clickhouse>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProjectReader, Secret};

    #[test]
    fn escapes_and_hashes() {
        let mut c = Config::default();
        c.clickhouse.user = "promptlog_collector".into();
        c.clickhouse.password = "pw".into();
        c.access.reader_password = Secret("r".into());
        c.access.project_readers =
            vec![ProjectReader { project: "a<b>&'c".into(), user: "grafana_a".into(), password: Secret("p".into()) }];
        let x = users_xml(&c).unwrap();
        assert!(x.contains(r"<filter>ProjectId = 'a&lt;b&gt;&amp;\'c'</filter>"), "{x}");
        // sha256("pw")
        assert!(x.contains("30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"), "{x}");
        assert!(!x.contains(">pw<") && !x.contains(">r<"));
        assert!(x.contains(
            "<query>GRANT SELECT, INSERT, ALTER, CREATE DATABASE, CREATE TABLE, CREATE VIEW ON `promptlog`.*</query>"
        ));
        c.clickhouse.user = "default".into();
        assert!(users_xml(&c).is_err());
    }

    /// The XML (what the engine tests enforce) grants each user exactly what the SQL grants its role,
    /// and filters rows with the SQL policies' condition.
    #[test]
    fn xml_accounts_match_the_sql_roles() {
        let mut c = Config::default();
        c.clickhouse.user = "promptlog_collector".into();
        c.clickhouse.password = "pw".into();
        c.access.reader_password = Secret("r".into());
        c.access.project_readers =
            vec![ProjectReader { project: "acme".into(), user: "grafana_acme".into(), password: Secret("p".into()) }];
        let sql = super::super::grants::statements(&c).unwrap();
        let xml = users_xml(&c).unwrap();
        let user_block = |user: &str| {
            let start = xml.find(&format!("<{user}>")).unwrap();
            xml[start..xml.find(&format!("</{user}>")).unwrap()].to_owned()
        };
        for (user, role) in [
            ("promptlog_collector", "promptlog_writer"),
            ("promptlog_grafana", "promptlog_reader"),
            ("grafana_acme", "promptlog_project_reader"),
        ] {
            let grant = sql
                .iter()
                .find(|s| s.sql.starts_with("GRANT ") && s.sql.ends_with(&format!("TO `{role}` WITH REPLACE OPTION")))
                .unwrap();
            let privileges = grant.sql.trim_start_matches("GRANT ").split(" TO ").next().unwrap();
            let block = user_block(user);
            let xml_privileges: Vec<&str> = block
                .lines()
                .filter_map(|l| l.trim().strip_prefix("<query>GRANT ")?.strip_suffix("</query>"))
                .collect();
            assert_eq!(xml_privileges.join(", "), privileges, "{user}");
            assert_eq!(block.contains("<profile>promptlog_reader_profile</profile>"), role != "promptlog_writer");
        }
        let policy = sql.iter().find(|s| s.sql.contains("RESTRICTIVE")).unwrap();
        let condition = policy.sql.split(" USING ").nth(1).unwrap().split(" TO ").next().unwrap();
        assert!(user_block("grafana_acme").contains(&format!("<filter>{condition}</filter>")));
        let profile = sql.iter().find(|s| s.sql.contains("SETTINGS PROFILE")).unwrap();
        assert!(profile.sql.contains("readonly = 2 CONST, max_execution_time = 300 MIN 1 MAX 300"));
        assert!(
            xml.contains("<readonly>2</readonly>") && xml.contains("<max_execution_time><min>1</min><max>300</max>")
        );
    }
}
