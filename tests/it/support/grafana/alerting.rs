//! Grafana server-side expressions (SSE) as the alert rules here use them: a ClickHouse "Table"
//! result becomes a number set (`pkg/expr/converter.go`: exactly one numeric column, string columns
//! become labels), then Math / Threshold / Reduce (`pkg/expr/mathexp`), then the condition decides:
//! empty -> NoData, non-zero -> Alerting.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use serde_yaml_ng::Value as Yaml;

use super::{DATASOURCE_UID, FieldKind, QueryCtx, columns, expand_macros, json_f64, json_str, now_ms};

pub type Labels = BTreeMap<String, String>;

/// One number of a number set; `None` is a null value.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub labels: Labels,
    pub value: Option<f64>,
}

/// Converts query rows to a number set, enforcing what Grafana's `isNumberTable` requires.
pub fn number_set(columns: &[(String, FieldKind)], rows: &[Map<String, Json>]) -> Result<Vec<Item>, String> {
    let numeric: Vec<_> = columns.iter().filter(|(_, k)| *k == FieldKind::Number).collect();
    let others: Vec<_> = columns.iter().filter(|(_, k)| !matches!(k, FieldKind::Number | FieldKind::String)).collect();
    if numeric.len() != 1 || !others.is_empty() {
        return Err(format!("not a number table (one numeric column, the rest strings): {columns:?}"));
    }
    let value_col = &numeric[0].0;
    Ok(rows
        .iter()
        .map(|row| Item {
            labels: columns
                .iter()
                .filter(|(_, k)| *k == FieldKind::String)
                .map(|(name, _)| (name.clone(), json_str(&row[name])))
                .collect(),
            value: json_f64(&row[value_col]),
        })
        .collect())
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Var(String),
    Num(f64),
    Op(String),
    LParen,
    RParen,
}

fn lex(expr: &str) -> Vec<Tok> {
    let cs: Vec<char> = expr.chars().collect();
    let (mut i, mut out) = (0, Vec::new());
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '$' {
            let braced = cs.get(i + 1) == Some(&'{');
            let start = if braced { i + 2 } else { i + 1 };
            let mut j = start;
            while j < cs.len() && (cs[j].is_ascii_alphanumeric() || cs[j] == '_' || (braced && cs[j] != '}')) {
                j += 1;
            }
            out.push(Tok::Var(cs[start..j].iter().collect()));
            i = if braced { j + 1 } else { j };
        } else if c.is_ascii_digit() || c == '.' {
            let mut j = i;
            while j < cs.len() && (cs[j].is_ascii_digit() || cs[j] == '.' || cs[j] == 'e') {
                j += 1;
            }
            out.push(Tok::Num(cs[i..j].iter().collect::<String>().parse().expect("number")));
            i = j;
        } else if c == '(' || c == ')' {
            out.push(if c == '(' { Tok::LParen } else { Tok::RParen });
            i += 1;
        } else {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let op = ["&&", "||", ">=", "<=", "==", "!="].iter().find(|o| **o == two).map(|o| o.to_string());
            let op = op.unwrap_or_else(|| c.to_string());
            assert!(
                ["&&", "||", ">=", "<=", "==", "!=", ">", "<", "+", "-", "*", "/", "%"].contains(&op.as_str()),
                "math: unsupported token {op:?} in {expr:?}"
            );
            i += op.len();
            out.push(Tok::Op(op));
        }
    }
    out
}

fn precedence(op: &str) -> u8 {
    match op {
        "||" => 1,
        "&&" => 2,
        "==" | "!=" | ">" | "<" | ">=" | "<=" => 3,
        "+" | "-" => 4,
        _ => 5,
    }
}

#[derive(Clone, Debug)]
enum Val {
    Scalar(Option<f64>),
    Set(Vec<Item>),
}

fn binop(op: &str, a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let t = |x: bool| Some(f64::from(u8::from(x)));
    match op {
        "+" => Some(a + b),
        "-" => Some(a - b),
        "*" => Some(a * b),
        "/" => Some(a / b),
        "%" => Some(a % b),
        ">" => t(a > b),
        "<" => t(a < b),
        ">=" => t(a >= b),
        "<=" => t(a <= b),
        "==" => t(a == b),
        "!=" => t(a != b),
        "&&" => t(a != 0.0 && b != 0.0),
        "||" => t(a != 0.0 || b != 0.0),
        _ => unreachable!(),
    }
}

fn contains(a: &Labels, b: &Labels) -> bool {
    b.iter().all(|(k, v)| a.get(k) == Some(v))
}

/// `mathexp.union`: pairs items whose labels are equal, where one side has none, or one contains the other.
fn union(a: &[Item], b: &[Item]) -> Vec<(Labels, Option<f64>, Option<f64>)> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let labels = if x.labels == y.labels || x.labels.is_empty() || y.labels.is_empty() {
                if x.labels.is_empty() { y.labels.clone() } else { x.labels.clone() }
            } else if x.labels.len() == y.labels.len() {
                continue;
            } else if contains(&x.labels, &y.labels) {
                x.labels.clone()
            } else if contains(&y.labels, &x.labels) {
                y.labels.clone()
            } else {
                continue;
            };
            out.push((labels, x.value, y.value));
        }
    }
    if out.is_empty() && a.len() == 1 && b.len() == 1 {
        out.push((Labels::new(), a[0].value, b[0].value));
    }
    out
}

fn apply(op: &str, a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(binop(op, x, y)),
        (Val::Set(xs), Val::Scalar(y)) => {
            Val::Set(xs.into_iter().map(|i| Item { value: binop(op, i.value, y), labels: i.labels }).collect())
        }
        (Val::Scalar(x), Val::Set(ys)) => {
            Val::Set(ys.into_iter().map(|i| Item { value: binop(op, x, i.value), labels: i.labels }).collect())
        }
        (Val::Set(xs), Val::Set(ys)) => Val::Set(
            union(&xs, &ys).into_iter().map(|(labels, x, y)| Item { labels, value: binop(op, x, y) }).collect(),
        ),
    }
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    vars: &'a BTreeMap<String, Vec<Item>>,
}

impl Parser<'_> {
    fn primary(&mut self) -> Val {
        let tok = self.toks.get(self.pos).cloned().expect("math: unexpected end");
        self.pos += 1;
        match tok {
            Tok::Num(n) => Val::Scalar(Some(n)),
            Tok::Var(v) => Val::Set(self.vars.get(&v).unwrap_or_else(|| panic!("math: unknown ${v}")).clone()),
            Tok::LParen => {
                let v = self.expr(0);
                assert_eq!(self.toks.get(self.pos), Some(&Tok::RParen), "math: missing )");
                self.pos += 1;
                v
            }
            Tok::Op(o) if o == "-" => apply("*", Val::Scalar(Some(-1.0)), self.primary()),
            other => panic!("math: unexpected {other:?}"),
        }
    }

    fn expr(&mut self, min_prec: u8) -> Val {
        let mut lhs = self.primary();
        while let Some(Tok::Op(op)) = self.toks.get(self.pos).cloned() {
            let p = precedence(&op);
            if p < min_prec {
                break;
            }
            self.pos += 1;
            let rhs = self.expr(p + 1);
            lhs = apply(&op, lhs, rhs);
        }
        lhs
    }
}

/// A Math expression such as `$A > $B` over the results computed so far.
pub fn math(expr: &str, results: &BTreeMap<String, Vec<Item>>) -> Vec<Item> {
    let mut p = Parser { toks: lex(expr), pos: 0, vars: results };
    let v = p.expr(0);
    assert_eq!(p.pos, p.toks.len(), "math: trailing tokens in {expr:?}");
    match v {
        Val::Set(items) => items,
        Val::Scalar(value) => vec![Item { labels: Labels::new(), value }],
    }
}

/// A Threshold expression's evaluator (`gt`, `lt`, `within_range`, `outside_range`, ...).
pub fn threshold(input: &[Item], kind: &str, params: &[f64]) -> Vec<Item> {
    let p = |i: usize| *params.get(i).unwrap_or_else(|| panic!("threshold {kind} needs parameter {i}"));
    input
        .iter()
        .map(|i| Item {
            labels: i.labels.clone(),
            value: i.value.map(|v| {
                let hit = match kind {
                    "gt" => v > p(0),
                    "lt" => v < p(0),
                    "gte" => v >= p(0),
                    "lte" => v <= p(0),
                    "eq" => v == p(0),
                    "ne" => v != p(0),
                    "within_range" => v > p(0).min(p(1)) && v < p(0).max(p(1)),
                    "outside_range" => v < p(0).min(p(1)) || v > p(0).max(p(1)),
                    other => panic!("threshold type {other:?} is not emulated"),
                };
                f64::from(u8::from(hit))
            }),
        })
        .collect()
}

/// Reduce over a number set: numbers are already single values, so it passes them through (with
/// `dropNN` removing nulls/NaN and `replaceNN` substituting them), as `pkg/expr/commands.go` does.
pub fn reduce(input: &[Item], mode: Option<&str>, replace_with: Option<f64>) -> Vec<Item> {
    input
        .iter()
        .filter_map(|i| {
            let bad = i.value.is_none_or(f64::is_nan);
            match (bad, mode) {
                (true, Some("dropNN")) => None,
                (true, Some("replaceNN")) => Some(Item { labels: i.labels.clone(), value: replace_with }),
                _ => Some(i.clone()),
            }
        })
        .collect()
}

/// Alert state of each instance of the condition's result: `None` = the rule is in NoData.
pub fn firing_instances(condition: &[Item]) -> Option<Vec<(Labels, bool)>> {
    if condition.is_empty() {
        return None;
    }
    Some(condition.iter().map(|i| (i.labels.clone(), i.value.is_some_and(|v| v != 0.0 && !v.is_nan()))).collect())
}

/// Runs `sql` with ClickHouse settings as the datasource would send them (URL parameters), or, when
/// the server refuses SQL_* custom settings (no custom_settings_prefixes, e.g. the chDB test server),
/// substitutes the values where the SQL reads them.
async fn query_with_settings(
    stack: &crate::support::stack::Stack,
    sql: &str,
    settings: &BTreeMap<&str, &str>,
) -> Vec<Map<String, Json>> {
    if settings.is_empty() {
        return stack.query_json(sql).await;
    }
    let params: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, *v)).collect();
    if let Ok(rows) = stack.sql().try_rows_with(sql, &params).await {
        return rows;
    }
    let mut emulated = sql.to_owned();
    for (k, v) in settings {
        emulated = emulated.replace(&format!("getSettingOrDefault('{k}', '')"), &format!("'{v}'"));
    }
    stack.query_json(&emulated).await
}

/// Evaluates one rule as Grafana's scheduler would right now: None = NoData.
pub async fn evaluate_rule(
    stack: &crate::support::stack::Stack,
    rule: &Yaml,
    settings: &BTreeMap<&str, &str>,
) -> Option<Vec<(Labels, bool)>> {
    let now = now_ms();
    let mut results: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for q in rule["data"].as_sequence().unwrap() {
        let (refid, model) = (q["refId"].as_str().unwrap().to_owned(), &q["model"]);
        let items = if q["datasourceUid"].as_str() == Some(DATASOURCE_UID) {
            let range = &q["relativeTimeRange"];
            let (from, to) = (range["from"].as_i64().unwrap(), range["to"].as_i64().unwrap_or(0));
            let ctx = QueryCtx {
                from_ms: now - from * 1000,
                to_ms: now - to * 1000,
                interval_ms: model["intervalMs"].as_i64().unwrap_or(1000),
            };
            let sql = expand_macros(model["rawSql"].as_str().unwrap(), ctx);
            let cols = columns(stack, &sql).await;
            let rows = query_with_settings(stack, &sql, settings).await;
            number_set(&cols, &rows).unwrap_or_else(|e| panic!("{:?}/{refid}: {e}", rule["uid"].as_str()))
        } else {
            let input = |key: &str| results[model[key].as_str().unwrap().trim_start_matches('$')].clone();
            match model["type"].as_str().unwrap() {
                "math" => math(model["expression"].as_str().unwrap(), &results),
                "threshold" => {
                    let ev = &model["conditions"][0]["evaluator"];
                    let params: Vec<f64> =
                        ev["params"].as_sequence().unwrap().iter().map(|p| p.as_f64().unwrap()).collect();
                    threshold(&input("expression"), ev["type"].as_str().unwrap(), &params)
                }
                "reduce" => reduce(
                    &input("expression"),
                    model["settings"]["mode"].as_str(),
                    model["settings"]["replaceWithValue"].as_f64(),
                ),
                other => panic!("expression type {other} is not emulated"),
            }
        };
        results.insert(refid, items);
    }
    firing_instances(&results[rule["condition"].as_str().unwrap()])
}

/// The spend rules around their limits on the seeded data: just under user-steady's 24 h spend (5 USD)
/// the per-user limit fires for it too; a ratio of 1 (this hour = the same hour last week) does not trip
/// the anomaly rule for svc-steady, just under it does.
pub async fn check_spend_limits(stack: &crate::support::stack::Stack, rules: &[Yaml]) {
    let fires = |state: &Option<Vec<(Labels, bool)>>, key: &str, value: &str| {
        state.iter().flatten().any(|(l, firing)| *firing && l.get(key).map(String::as_str) == Some(value))
    };
    let eval = |uid: &'static str, setting: &'static str, value: &'static str| {
        let rule = rules.iter().find(|r| r["uid"].as_str() == Some(uid)).unwrap().clone();
        async move { evaluate_rule(stack, &rule, &BTreeMap::from([(setting, value)])).await }
    };
    let state = eval("promptlog-user-spend-24h", "SQL_promptlog_user_spend_24h_usd_max", "4.99").await;
    assert!(fires(&state, "user", "user-steady"), "a 4.99 USD limit fires for user-steady: {state:?}");
    let state = eval("promptlog-user-spend-24h", "SQL_promptlog_user_spend_24h_usd_max", "5.01").await;
    assert!(!fires(&state, "user", "user-steady"), "a 5.01 USD limit does not: {state:?}");
    let state = eval("promptlog-cost-anomaly", "SQL_promptlog_cost_anomaly_ratio_max", "1").await;
    assert!(!fires(&state, "service", "svc-steady"), "svc-steady spends as last week: {state:?}");
    let state = eval("promptlog-cost-anomaly", "SQL_promptlog_cost_anomaly_ratio_max", "0.99").await;
    assert!(fires(&state, "service", "svc-steady"), "ratio 1 > 0.99: {state:?}");
}
