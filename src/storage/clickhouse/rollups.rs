//! Rebuilding rollup buckets after `llm_calls` rows changed in place (`promptlog reprice`): a mutation
//! of `llm_calls` does not reach the materialized views, so every minute / hour bucket the range touches
//! is deleted and aggregated again from the stored calls, with the view's own `SELECT` (read from its
//! migration, so the aggregation is written once).

use super::schema::{MIGRATIONS, ROLLUP_TABLES, render, statements};
use super::{Store, StoreError};

/// (rollup table, bucket function, bucket unit, the migration creating its view).
const ROLLUPS: [(&str, &str, &str, &str); 2] = [
    (ROLLUP_TABLES[0], "toStartOfMinute", "MINUTE", "0013_llm_calls_1m_mv"),
    (ROLLUP_TABLES[1], "toStartOfHour", "HOUR", "0015_llm_calls_1h_mv"),
];

/// Where the views' `SELECT` filters counted calls; the bucket range is added to it.
const COUNTED_ONLY: &str = "WHERE NOT c.IsRollup";

/// The statements that rebuild every bucket holding a call that started in `[since_ns, until_ns)`:
/// per rollup table, a `DELETE` of those buckets and an `INSERT … SELECT` aggregating them again.
/// `alter` names where the deletion of a rollup table goes ([`Store::alter_target`]); the
/// aggregation inserts through the public name (the `Distributed` table in cluster mode).
pub(crate) fn rebuild_statements(
    db: &str,
    alter: impl Fn(&str) -> String,
    since_ns: i64,
    until_ns: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    for (table, bucket, unit, migration) in ROLLUPS {
        let sql = MIGRATIONS.iter().find(|m| m.name == migration).expect("rollup view migration").sql;
        let view = statements(&render(sql, db, 0, "")).into_iter().next().expect("CREATE MATERIALIZED VIEW");
        let select = &view[view.find("AS SELECT").expect("the view's SELECT") + 3..];
        let at = |ns: i64| format!("{bucket}(fromUnixTimestamp64Nano(toInt64({ns})))");
        let (lo, hi) = (at(since_ns), format!("{} + INTERVAL 1 {unit}", at(until_ns.saturating_sub(1))));
        assert!(select.contains(COUNTED_ONLY), "{migration}: the view's SELECT filters counted calls");
        let ranged =
            select.replacen(COUNTED_ONLY, &format!("{COUNTED_ONLY} AND c.Timestamp >= {lo} AND c.Timestamp < {hi}"), 1);
        out.push(format!("ALTER TABLE {} DELETE WHERE Timestamp >= {lo} AND Timestamp < {hi}", alter(table)));
        out.push(format!("INSERT INTO `{db}`.`{table}` {ranged}"));
    }
    out
}

/// Rebuilds the rollup buckets of `[since_ns, until_ns)`, waiting for each deletion to finish. Exact
/// when no collector writes calls into those buckets meanwhile (a call inserted between the deletion
/// and the aggregation would be counted twice): reprice ranges that have ended.
pub async fn rebuild(store: &Store, since_ns: i64, until_ns: i64) -> Result<(), StoreError> {
    for sql in rebuild_statements(store.database(), |t| store.alter_target(t), since_ns, until_ns) {
        let mut query = store.client().query(&sql).with_setting("mutations_sync", "2");
        if store.cluster().is_some() {
            query = query.with_setting(super::cluster::DISTRIBUTED_SYNC_SETTING, "1");
        }
        query.execute().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rollup_is_rebuilt_from_its_views_select_over_whole_buckets() {
        let sql = rebuild_statements("db", |t| format!("`db`.`{t}`"), 1_000, 2_000);
        assert_eq!(sql.len(), 4);
        assert!(sql[0].starts_with("ALTER TABLE `db`.`llm_calls_1m` DELETE WHERE Timestamp >= toStartOfMinute("));
        assert!(sql[1].starts_with("INSERT INTO `db`.`llm_calls_1m` SELECT"), "{}", sql[1]);
        assert!(sql[1].contains("FROM `db`.llm_calls AS c"), "{}", sql[1]);
        assert!(sql[1].contains(
            "WHERE NOT c.IsRollup AND c.Timestamp >= toStartOfMinute(fromUnixTimestamp64Nano(toInt64(1000))) \
             AND c.Timestamp < toStartOfMinute(fromUnixTimestamp64Nano(toInt64(1999))) + INTERVAL 1 MINUTE"
        ));
        assert!(sql[1].contains("GROUP BY Timestamp"), "{}", sql[1]);
        assert!(sql[3].contains("toStartOfHour(c.Timestamp) AS Timestamp"), "{}", sql[3]);
        assert!(sql[3].contains("+ INTERVAL 1 HOUR"), "{}", sql[3]);
    }
}
