//! Cluster mode (`clickhouse.cluster`): the single-server migrations, rewritten statement by statement
//! for a sharded, replicated ClickHouse cluster.
//!
//! Layout, for every table `T` a migration creates:
//! - `T_local` on every node, `ON CLUSTER`, with the `Replicated` form of the table's engine; its Keeper
//!   path `/clickhouse/tables/{shard}/{database}/{table}` holds the database and table (the server
//!   expands the macros at creation), the replica name is the `{replica}` macro. Its
//!   `non_replicated_deduplication_window` becomes `replicated_deduplication_window`, so a batch retried
//!   with its `insert_deduplication_token` is dropped by whichever replica it reaches.
//! - `T` itself becomes `Distributed(cluster, db, T_local, key)`: collectors, Grafana, the replay checks
//!   and `reprice` keep using the public names unchanged. The sharding key is `cityHash64(TraceId)` for
//!   plain `MergeTree` tables with a `TraceId` column (a trace's spans, logs and calls share a shard, so
//!   the trace view can read one shard and `otel_traces_trace_id_ts`, filled per shard by its view,
//!   holds a trace's whole time range), else `cityHash64` of the table's `ORDER BY` columns: the rows a
//!   Replacing/Aggregating/… engine merges (one sorting key) then share a shard, so `FINAL` through the
//!   `Distributed` table sees each key once. Never `rand()`: a retried batch must reach the same shards
//!   to be deduplicated there.
//! - Materialized views read and write the local tables (`FROM T_local`, `TO R_local`): each shard
//!   aggregates the rows it stores; readers always aggregate across shards anyway.
//! - `ALTER` and `TRUNCATE` go to the local tables `ON CLUSTER` (a `Distributed` table has no data);
//!   an `ALTER` changing columns is followed by `CREATE OR REPLACE` of the `Distributed` table, so its
//!   structure follows the local table's. `INSERT … SELECT` (backfills) runs through the `Distributed`
//!   tables, synchronously.
//! - The migrations table and the migration lock are replicated to every node (no shard in their Keeper
//!   path; replica `{shard}-{replica}`), under their own names, with no `Distributed` table.
//!
//! Why a rewriter of the migration SQL rather than a structured schema: the migrations are reviewed SQL
//! files, and a new one (any number after 0020) must work in both modes without a second description.
//! The rewriter is not a SQL parser: it recognises the few statement forms the migrations use, finds
//! table references by the rendered `` `db`.name `` form every migration uses (`{db}.name`), and
//! refuses any other statement with [`ClusterDdlError`], so a migration it cannot rewrite fails the unit
//! tests instead of producing wrong cluster DDL.

use std::collections::BTreeMap;

use super::grants::quote_string;
use super::schema::{MIGRATIONS, render, statements};

/// Suffix of the local (replicated) table under each public (`Distributed`) name.
pub const LOCAL_SUFFIX: &str = "_local";
/// Synchronous distributed inserts (alias of `distributed_foreground_insert`, known to every
/// supported server): an insert returns once every shard has its part.
pub const DISTRIBUTED_SYNC_SETTING: &str = "insert_distributed_sync";
/// Keeper path of sharded local tables (macros expanded by the server at creation).
const SHARDED_PATH: &str = "/clickhouse/tables/{shard}/{database}/{table}";
/// Keeper path of tables replicated to every node (one replica per node).
const EVERYWHERE_PATH: &str = "/clickhouse/tables/{database}/{table}";
/// The deduplication window setting of plain MergeTree tables, and its replicated counterpart.
const DEDUP_WINDOW: (&str, &str) = ("non_replicated_deduplication_window", "replicated_deduplication_window");

/// A migration statement cluster mode cannot rewrite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterDdlError {
    /// Not one of the statement forms the rewriter knows.
    #[error(
        "cluster mode cannot rewrite this statement (supported: CREATE TABLE IF NOT EXISTS, CREATE \
         MATERIALIZED VIEW IF NOT EXISTS … TO, ALTER TABLE, TRUNCATE TABLE IF EXISTS, INSERT INTO): {0}"
    )]
    Unsupported(String),
    /// A table statement the rewriter cannot read (no engine, no ORDER BY, an unknown table).
    #[error("cluster mode: {0}")]
    Table(String),
}

/// How a table is replicated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Local tables sharded across the cluster, a `Distributed` table in front.
    Sharded,
    /// One replica on every node, no `Distributed` table (the migrations table and its lock).
    Everywhere,
}

/// The rewriter for one database and cluster, knowing every table the migrations create.
pub(crate) struct ClusterDdl {
    db: String,
    cluster: String,
    /// Public table name → sharding key.
    tables: BTreeMap<String, String>,
}

impl ClusterDdl {
    /// Reads every table the migrations create (name and sharding key).
    pub(crate) fn new(db: &str, cluster: &str) -> Result<ClusterDdl, ClusterDdlError> {
        let mut ddl = ClusterDdl { db: db.to_owned(), cluster: cluster.to_owned(), tables: BTreeMap::new() };
        for m in MIGRATIONS {
            for s in statements(&render(m.sql, db, 0, "")) {
                let code = code(&s);
                if let Some(rest) = code.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                    let (name, body) = ddl.table_ref(rest)?;
                    let key = sharding_key(body).map_err(|e| ClusterDdlError::Table(format!("{name}: {e}")))?;
                    ddl.tables.insert(name.to_owned(), key);
                }
            }
        }
        Ok(ddl)
    }

    /// `` `db` `` as the migrations render it.
    fn db_prefix(&self) -> String {
        format!("`{}`.", self.db)
    }

    fn on_cluster(&self) -> String {
        format!("ON CLUSTER `{}`", self.cluster)
    }

    /// Splits `` `db`.name rest`` into `name` and the rest.
    fn table_ref<'s>(&self, s: &'s str) -> Result<(&'s str, &'s str), ClusterDdlError> {
        let prefix = self.db_prefix();
        let after = s
            .strip_prefix(prefix.as_str())
            .ok_or_else(|| ClusterDdlError::Table(format!("expected a `{{db}}.table` reference: {}", head(s))))?;
        let end = after.find(|c: char| !is_ident_char(c)).unwrap_or(after.len());
        Ok((&after[..end], &after[end..]))
    }

    /// Every `` `db`.name `` of a created table in `s` replaced by its local table.
    fn localize(&self, s: &str) -> String {
        let prefix = self.db_prefix();
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find(prefix.as_str()) {
            let (before, from) = rest.split_at(at + prefix.len());
            out.push_str(before);
            let end = from.find(|c: char| !is_ident_char(c)).unwrap_or(from.len());
            out.push_str(&from[..end]);
            if self.tables.contains_key(&from[..end]) {
                out.push_str(LOCAL_SUFFIX);
            }
            rest = &from[end..];
        }
        out.push_str(rest);
        out
    }

    /// The `Distributed` table `name` in front of its local table (`OR REPLACE`: after an ALTER).
    fn distributed(&self, name: &str, key: &str, replace: bool) -> String {
        let create = if replace { "CREATE OR REPLACE TABLE" } else { "CREATE TABLE IF NOT EXISTS" };
        format!(
            "{create} `{db}`.{name} {on} AS `{db}`.{name}{LOCAL_SUFFIX} ENGINE = Distributed({}, {}, {}, {key})",
            quote_string(&self.cluster),
            quote_string(&self.db),
            quote_string(&format!("{name}{LOCAL_SUFFIX}")),
            db = self.db,
            on = self.on_cluster(),
        )
    }

    /// `CREATE TABLE IF NOT EXISTS` of a table placed as given: the replicated table (named `T_local`
    /// when sharded) and, when sharded, its `Distributed` table.
    pub(crate) fn create_table(&self, statement: &str, placement: Placement) -> Result<Vec<String>, ClusterDdlError> {
        let code = code(statement);
        let rest = code.strip_prefix("CREATE TABLE IF NOT EXISTS ").ok_or_else(|| unsupported(&code))?;
        let (name, body) = self.table_ref(rest)?;
        let (local, path, replica) = match placement {
            Placement::Sharded => (format!("{name}{LOCAL_SUFFIX}"), SHARDED_PATH, "{replica}"),
            Placement::Everywhere => (name.to_owned(), EVERYWHERE_PATH, "{shard}-{replica}"),
        };
        let table_error = |e: String| ClusterDdlError::Table(format!("{name}: {e}"));
        let key = sharding_key(body).map_err(table_error)?;
        let body = replicated_engine(body, path, replica).map_err(table_error)?;
        let body = body.replace(DEDUP_WINDOW.0, DEDUP_WINDOW.1);
        let mut out = vec![format!("CREATE TABLE IF NOT EXISTS `{}`.{local} {}{body}", self.db, self.on_cluster())];
        if placement == Placement::Sharded {
            out.push(self.distributed(name, &key, false));
        }
        Ok(out)
    }

    /// `CREATE DATABASE IF NOT EXISTS` on every node.
    pub(crate) fn create_database(&self) -> String {
        format!("CREATE DATABASE IF NOT EXISTS `{}` {}", self.db, self.on_cluster())
    }

    /// Where an `ALTER` of the public table `name` goes.
    pub(crate) fn alter_target(&self, name: &str) -> String {
        format!("`{}`.`{name}{LOCAL_SUFFIX}` {}", self.db, self.on_cluster())
    }

    /// The cluster statements of one single-server migration statement.
    pub(crate) fn rewrite(&self, statement: &str) -> Result<Vec<String>, ClusterDdlError> {
        let code = code(statement);
        if code.starts_with("CREATE TABLE IF NOT EXISTS ") {
            return self.create_table(&code, Placement::Sharded);
        }
        if let Some(rest) = code.strip_prefix("CREATE MATERIALIZED VIEW IF NOT EXISTS ") {
            let (view, body) = self.table_ref(rest)?;
            if !body.trim_start().starts_with("TO ") {
                return Err(ClusterDdlError::Table(format!("{view}: a materialized view needs `TO {{db}}.table`")));
            }
            let body = self.localize(body);
            return Ok(vec![format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS `{}`.{view} {}{body}",
                self.db,
                self.on_cluster()
            )]);
        }
        if let Some(rest) = code.strip_prefix("ALTER TABLE ") {
            let (name, commands) = self.known(rest)?;
            let mut out = vec![format!("ALTER TABLE {}{commands}", self.alter_target(name))];
            if commands.contains(" COLUMN ") {
                out.push(self.distributed(name, &self.tables[name], true));
            }
            return Ok(out);
        }
        if let Some(rest) = code.strip_prefix("TRUNCATE TABLE IF EXISTS ") {
            let (name, tail) = self.known(rest)?;
            return Ok(vec![format!("TRUNCATE TABLE IF EXISTS {}{tail}", self.alter_target(name))]);
        }
        if let Some(rest) = code.strip_prefix("INSERT INTO ") {
            let (name, select) = self.known(rest)?;
            return Ok(vec![format!(
                "INSERT INTO `{}`.{name} SETTINGS {DISTRIBUTED_SYNC_SETTING} = 1{select}",
                self.db
            )]);
        }
        Err(unsupported(&code))
    }

    /// A reference to a table the migrations create.
    fn known<'s>(&self, s: &'s str) -> Result<(&'s str, &'s str), ClusterDdlError> {
        let (name, rest) = self.table_ref(s)?;
        if self.tables.contains_key(name) {
            Ok((name, rest))
        } else {
            Err(ClusterDdlError::Table(format!("{name} is not a table the migrations create")))
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn unsupported(code: &str) -> ClusterDdlError {
    ClusterDdlError::Unsupported(head(code))
}

/// The first line of a statement, for error messages.
fn head(s: &str) -> String {
    s.lines().next().unwrap_or_default().chars().take(120).collect()
}

/// The statement without its comment lines.
fn code(statement: &str) -> String {
    let lines: Vec<&str> = statement.lines().filter(|l| !l.trim_start().starts_with("--")).collect();
    lines.join("\n").trim().to_owned()
}

/// The index of the `)` closing the `(` at `open`, skipping quoted strings.
fn closing_paren(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i < open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '`' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `s` split at the commas outside parentheses and quotes.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start, mut quote) = (Vec::new(), 0i32, 0, None);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '`' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out
}

/// The sharding key of a table from the text after its name: see the module docs.
fn sharding_key(body: &str) -> Result<String, String> {
    let open = body.find('(').ok_or("no column list")?;
    let close = closing_paren(body, open).ok_or("unbalanced column list")?;
    let has_trace_id = split_top_level(&body[open + 1..close])
        .iter()
        .any(|item| item.split_whitespace().next().map(|n| n.trim_matches('`')) == Some("TraceId"));
    // Replacing/Collapsing/Summing/Aggregating engines merge the rows of one sorting key: those rows
    // must share a shard, so only a plain MergeTree may shard by something else (the trace).
    let plain = body[close..].split("ENGINE = ").nth(1).is_some_and(|e| {
        let name = e.split(|c: char| !is_ident_char(c)).next().unwrap_or_default();
        name == "MergeTree"
    });
    if has_trace_id && plain {
        return Ok("cityHash64(TraceId)".to_owned());
    }
    let at = body[close..].find("ORDER BY ").ok_or("no ORDER BY")? + close + "ORDER BY ".len();
    let order = &body[at..];
    let columns = if order.starts_with('(') {
        &order[1..closing_paren(order, 0).ok_or("unbalanced ORDER BY")?]
    } else {
        order.lines().next().unwrap_or_default().trim()
    };
    let columns: Vec<&str> = split_top_level(columns);
    Ok(format!("cityHash64({})", columns.join(", ")))
}

/// The table body with `ENGINE = XMergeTree[(args)]` replaced by its replicated form.
fn replicated_engine(body: &str, path: &str, replica: &str) -> Result<String, String> {
    const ENGINE: &str = "ENGINE = ";
    let at = body.find(ENGINE).ok_or("no ENGINE")? + ENGINE.len();
    let rest = &body[at..];
    let name_end = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
    let name = &rest[..name_end];
    if !name.ends_with("MergeTree") || name.starts_with("Replicated") {
        return Err(format!("engine {name}: expected a non-replicated *MergeTree engine"));
    }
    let (args, end) = if rest[name_end..].starts_with('(') {
        let close = closing_paren(rest, name_end).ok_or("unbalanced engine arguments")?;
        (rest[name_end + 1..close].trim(), close + 1)
    } else {
        ("", name_end)
    };
    let mut params = vec![quote_string(path), quote_string(replica)];
    params.extend((!args.is_empty()).then(|| args.to_owned()));
    Ok(format!("{}Replicated{name}({}){}", &body[..at], params.join(", "), &rest[end..]))
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
