//! The `llm_calls_1m` / `llm_calls_1h` rollups behind the dashboards: which panels must read them,
//! that the materialized views hold exactly what the raw rows give, and that the rollup panels show
//! what the same aggregation over the raw rows shows (minute buckets, as the rollup panels filter).

use serde_json::Value as Json;

use super::{QueryCtx, VarValue, Vars, json_str, render_dashboard_sql};
use crate::support::stack::Stack;

/// Panels that list rows or need columns the rollups do not have (finish reasons, error types and
/// messages, content search): they read `llm_calls`. Every other `llm_calls` panel of these
/// dashboards aggregates over time and must read `$rollup`.
pub const RAW_PANELS: &[(&str, &[&str])] = &[
    ("promptlog-overview", &["Finish reasons", "Slowest calls", "Failing calls"]),
    ("promptlog-errors", &["Error types", "Errors/s by error type", "Top error messages", "Recent errors"]),
    ("promptlog-prompts", &["Matching calls", "Matching calls over time by status", "Calls"]),
];

/// Problems with where the panels of `dash` read from.
pub fn check_sources(dash: &Json) -> Vec<String> {
    let uid = dash["uid"].as_str().unwrap();
    let Some((_, raw)) = RAW_PANELS.iter().find(|(u, _)| *u == uid) else { return Vec::new() };
    let mut problems = Vec::new();
    let mut rollup_panels = 0;
    for p in dash["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        for t in p["targets"].as_array().unwrap() {
            let sql = t["rawSql"].as_str().unwrap();
            let (reads_raw, reads_rollup) = (sql.contains("FROM llm_calls\n"), sql.contains("FROM $rollup\n"));
            // The apps' own OTLP metrics are already aggregates: no rollup of llm_calls applies.
            let reads_metrics = sql.contains("FROM otel_metrics_");
            if reads_metrics {
                if reads_raw || reads_rollup {
                    problems.push(format!("{uid} / {title}: mixes OTLP metrics with llm_calls"));
                }
            } else if raw.contains(&title) {
                if !reads_raw || reads_rollup {
                    problems.push(format!("{uid} / {title}: lists rows, should read llm_calls"));
                }
            } else if !reads_rollup || reads_raw {
                problems.push(format!("{uid} / {title}: aggregates over time, should read $rollup"));
            } else {
                rollup_panels += 1;
            }
        }
    }
    if rollup_panels == 0 {
        problems.push(format!("{uid}: no panel reads a rollup"));
    }
    problems
}

const KEYS: &str = "ProjectId, ServiceName, Environment, Operation, Provider, RequestModel, UserId, PromptName, \
                    PromptVersion, StatusCode";

/// Each rollup table, merged per bucket and key, equals the raw counted rows aggregated the same way.
pub async fn check_tables(stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, bucket) in [("llm_calls_1m", "toStartOfMinute"), ("llm_calls_1h", "toStartOfHour")] {
        let raw = stack
            .query_json(&format!(
                "SELECT toString({bucket}(Timestamp)) AS t, {KEYS}, count() AS calls, countIf(StatusCode = 'Error') AS errors, \
                 sum(InputTokens) AS i, sum(OutputTokens) AS o, sum(TotalTokens) AS tt, sum(CacheReadInputTokens) AS cr, \
                 sum(CacheWriteInputTokens) AS cw, sum(ReasoningOutputTokens) AS r, round(sum(ifNull(CostUsd, 0)), 9) AS cost, \
                 countIf(CostUsd IS NOT NULL) AS priced, countIf(TimeToFirstToken IS NOT NULL) AS ttft_calls, \
                 toString(max(Timestamp)) AS last, toString(quantiles(0.5, 0.95, 0.99)(Duration)) AS dq, \
                 toString(quantiles(0.5, 0.95, 0.99)(TimeToFirstToken)) AS tq \
                 FROM llm_calls WHERE NOT IsRollup GROUP BY t, {KEYS} ORDER BY t, {KEYS}"
            ))
            .await;
        let rolled = stack
            .query_json(&format!(
                "SELECT toString(Timestamp) AS t, {KEYS}, sum(Calls) AS calls, sum(Errors) AS errors, \
                 sum(InputTokens) AS i, sum(OutputTokens) AS o, sum(TotalTokens) AS tt, sum(CacheReadInputTokens) AS cr, \
                 sum(CacheWriteInputTokens) AS cw, sum(ReasoningOutputTokens) AS r, round(sum(CostUsd), 9) AS cost, \
                 sum(CostCalls) AS priced, sum(TtftCalls) AS ttft_calls, toString(max(LastSeen)) AS last, \
                 toString(quantilesMerge(0.5, 0.95, 0.99)(Duration)) AS dq, \
                 toString(if(sum(TtftCalls) = 0, [nan, nan, nan], quantilesIfMerge(0.5, 0.95, 0.99)(TimeToFirstToken))) AS tq \
                 FROM {table} GROUP BY t, {KEYS} ORDER BY t, {KEYS}"
            ))
            .await;
        let prompted = raw.iter().filter(|r| !json_str(&r["PromptName"]).is_empty()).count();
        if raw.len() < 10 || prompted == 0 {
            problems.push(format!(
                "{table}: too little seeded data to compare ({} groups, {prompted} with a prompt)",
                raw.len()
            ));
        }
        if raw != rolled {
            let diff = raw.iter().zip(&rolled).find(|(a, b)| a != b);
            problems.push(format!(
                "{table}: {} raw groups vs {} rollup groups; first difference {diff:?}",
                raw.len(),
                rolled.len()
            ));
        }
    }
    problems
}

/// Raw-row equivalents of rollup panels (same columns; `$__timeFilter` on the row's minute, as the
/// rollup panels filter on the bucket start; time series at the rollup step, 60 s).
const RAW_EQUIVALENTS: &[(&str, &str, &str)] = &[
    ("promptlog-overview", "Calls", "count() AS calls"),
    ("promptlog-overview", "Error rate", "countIf(StatusCode = 'Error') / greatest(count(), 1) AS error_rate"),
    ("promptlog-overview", "p95 latency", "quantile(0.95)(Duration) / 1e6 AS p95_ms"),
    ("promptlog-overview", "Tokens", "sum(InputTokens) AS input_tokens, sum(OutputTokens) AS output_tokens"),
    ("promptlog-overview", "Cost", "coalesce(sum(CostUsd), 0) AS cost_usd"),
    (
        "promptlog-overview",
        "p95 time to first token",
        "quantile(0.95)(TimeToFirstToken) AS p95_ttft_s WHERE TimeToFirstToken IS NOT NULL",
    ),
    (
        "promptlog-overview",
        "Calls/s by service",
        "T, ServiceName AS service, count() / 60 AS calls_per_s GROUP BY time, service",
    ),
    (
        "promptlog-overview",
        "p95 latency by model",
        "T, RequestModel AS model, quantile(0.95)(Duration) / 1e6 AS p95_ms GROUP BY time, model",
    ),
    (
        "promptlog-overview",
        "Time to first token p50 / p95 by model",
        "T, RequestModel AS model, quantile(0.5)(TimeToFirstToken) AS p50, quantile(0.95)(TimeToFirstToken) AS p95 \
         WHERE TimeToFirstToken IS NOT NULL GROUP BY time, model",
    ),
    (
        "promptlog-overview",
        "Cost (USD/hour) by model",
        "T, RequestModel AS model, coalesce(sum(CostUsd), 0) * 3600 / 60 AS usd_per_hour GROUP BY time, model",
    ),
    (
        "promptlog-overview",
        "Top users",
        "UserId AS user, count() AS calls, countIf(StatusCode = 'Error') AS errors, sum(InputTokens) AS input_tokens, \
         sum(OutputTokens) AS output_tokens, round(coalesce(sum(CostUsd), 0), 4) AS cost_usd, \
         round(quantile(0.95)(Duration) / 1e6) AS p95_ms, max(Timestamp) AS last_seen WHERE UserId != '' GROUP BY user",
    ),
    (
        "promptlog-overview",
        "Cost by project",
        "ProjectId AS project, round(coalesce(sum(CostUsd), 0), 6) AS cost_usd GROUP BY project",
    ),
    (
        "promptlog-prompts",
        "Prompt versions",
        "PromptName AS prompt, PromptVersion AS version, count() AS calls, \
         round(countIf(StatusCode = 'Error') / count(), 4) AS error_rate, round(quantile(0.5)(Duration) / 1e6) AS p50_ms, \
         round(quantile(0.95)(Duration) / 1e6) AS p95_ms, round(coalesce(sum(CostUsd), 0), 6) AS cost_usd, \
         round(coalesce(sum(CostUsd), 0) / count(), 8) AS cost_per_call_usd, sum(InputTokens) AS input_tokens, \
         sum(OutputTokens) AS output_tokens, max(Timestamp) AS last_seen WHERE PromptName != '' GROUP BY prompt, version",
    ),
    (
        "promptlog-errors",
        "Errors/s by service",
        "T, ServiceName AS service, count() / 60 AS errors_per_s WHERE StatusCode = 'Error' GROUP BY time, service",
    ),
];

/// The reference query: `spec` is `select [WHERE cond] [GROUP BY …]`, `T` the minute time column.
fn raw_sql(spec: &str) -> String {
    let (head, group) = spec.split_once(" GROUP BY ").map_or((spec, None), |(h, g)| (h, Some(g)));
    let (select, cond) = head.split_once(" WHERE ").map_or((head, None), |(s, c)| (s, Some(c)));
    let select = select.replacen("T, ", "toStartOfInterval(toDateTime(Timestamp), INTERVAL 60 second) AS time, ", 1);
    let mut sql =
        format!("SELECT {select} FROM llm_calls WHERE $__timeFilter(toStartOfMinute(Timestamp)) AND NOT IsRollup");
    if let Some(c) = cond {
        sql += &format!(" AND {c}");
    }
    if let Some(g) = group {
        sql += &format!(" GROUP BY {g}");
    }
    sql
}

/// Rows as sorted strings, floats to 9 significant digits (sums in another order differ in the last bit).
fn canonical(rows: &[serde_json::Map<String, Json>]) -> Vec<String> {
    let cell = |v: &Json| match v {
        Json::Number(n) if n.is_f64() => format!("{:.9e}", n.as_f64().unwrap()),
        other => json_str(other),
    };
    let mut out: Vec<String> =
        rows.iter().map(|r| r.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect::<Vec<_>>().join(" ")).collect();
    out.sort();
    out
}

/// Each panel of [`RAW_EQUIVALENTS`], run on the rollup with every variable at All, equals its raw query.
pub async fn check_panels(stack: &Stack, dashboards: &[(String, Json)], now_ms: i64) -> Vec<String> {
    let mut vars = Vars::default();
    for name in ["project", "service", "environment", "model", "user", "operation", "prompt", "status"] {
        vars.values.insert(name.to_owned(), VarValue::All);
    }
    vars.values.insert("search".into(), VarValue::Single(String::new()));
    vars.values.insert("rollup".into(), VarValue::Single("llm_calls_1m".into()));
    vars.values.insert("rollup_s".into(), VarValue::Single("60".into()));
    let ctx = QueryCtx::for_panel(6 * 3600, now_ms, 1000, 1);
    let mut problems = Vec::new();
    for (uid, title, spec) in RAW_EQUIVALENTS {
        let dash = &dashboards.iter().find(|(_, d)| d["uid"] == *uid).unwrap().1;
        let panel = dash["panels"].as_array().unwrap().iter().find(|p| p["title"] == *title);
        let Some(panel) = panel else {
            problems.push(format!("{uid} / {title}: no such panel"));
            continue;
        };
        let sql = render_dashboard_sql(panel["targets"][0]["rawSql"].as_str().unwrap(), &vars, ctx);
        let rolled = canonical(&stack.query_json(&sql).await);
        let raw = canonical(&stack.query_json(&render_dashboard_sql(&raw_sql(spec), &vars, ctx)).await);
        if rolled.is_empty() || rolled != raw {
            problems.push(format!("{uid} / {title}: rollup {rolled:?}\n  vs raw {raw:?}"));
        }
    }
    problems
}

/// The `rollup` / `rollup_s` variables pick the hour table for ranges over 3 days, else the minute table.
pub async fn check_table_choice(stack: &Stack, dash: &Json, now_ms: i64) -> Vec<String> {
    let var = |name: &str| {
        dash["templating"]["list"].as_array().unwrap().iter().find(|v| v["name"] == name).map(|v| v["query"].clone())
    };
    let mut problems = Vec::new();
    for (range_s, table, step) in
        [(6 * 3600, "llm_calls_1m", "60"), (3 * 86400, "llm_calls_1m", "60"), (7 * 86400, "llm_calls_1h", "3600")]
    {
        let ctx = QueryCtx::last(range_s, now_ms, 60_000);
        for (name, want) in [("rollup", table), ("rollup_s", step)] {
            let Some(Json::String(q)) = var(name) else {
                problems.push(format!("{}: no {name} variable", dash["uid"]));
                continue;
            };
            let rows = stack.query_json(&render_dashboard_sql(&q, &Vars::default(), ctx)).await;
            let got: Vec<String> = rows.iter().map(|r| json_str(r.values().next().unwrap())).collect();
            if got != [want] {
                problems.push(format!("{}: {name} over {range_s} s is {got:?}, want {want}", dash["uid"]));
            }
        }
    }
    problems
}

/// The Prompts dashboard's per-version table: every seeded prompt version with its number of calls.
pub fn check_prompt_versions(calls: &[super::seed::Call], rows: &[serde_json::Map<String, Json>]) {
    let mut want: Vec<(String, f64)> = super::seed::PROMPT_VERSIONS
        .iter()
        .flatten()
        .map(|p| {
            let n = calls.iter().filter(|c| c.prompt_id == Some(*p)).count();
            (format!("{} v{}", p.0, p.1), n as f64)
        })
        .collect();
    let mut got: Vec<(String, f64)> = rows
        .iter()
        .map(|r| {
            let name = format!("{} v{}", json_str(&r["prompt"]), json_str(&r["version"]));
            (name, super::json_f64(&r["calls"]).unwrap())
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want, "calls per prompt version");
}
