//! What Grafana and the ClickHouse plugin do to a query before ClickHouse sees it, re-implemented for
//! the tests: dashboard template variables (frontend `templateSrv.replace` with the plugin's default
//! multi-value format), `$__conditionalAll` (frontend, `CHDatasource.applyConditionalAll`), and the
//! backend macros (`pkg/macros/macros.go`). Plus the plugin's ClickHouse-type -> field-type mapping.

pub mod alerting;
pub mod rollups;
pub mod seed;
pub mod seed_metrics;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as Json;

pub const DATASOURCE_UID: &str = "promptlog-clickhouse";

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn grafana_dir() -> PathBuf {
    promptlog_testkit::repo_root().join("grafana")
}

pub fn read_yaml(rel: &str) -> serde_yaml_ng::Value {
    let path = grafana_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// Every dashboard JSON under grafana/dashboards, sorted by file name.
pub fn dashboards() -> Vec<(String, Json)> {
    let dir = grafana_dir().join("dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect()
}

/// A dashboard variable's current value.
#[derive(Clone, Debug)]
pub enum VarValue {
    /// Textbox / single-value variable.
    Single(String),
    /// Multi-value selection (Grafana keeps an array even for one selected value).
    Multi(Vec<String>),
    /// "All" without a custom all value: `$__all`, expanded to every option.
    All,
}

/// Variable values plus the options of each query/custom variable (what "All" expands to).
#[derive(Clone, Debug, Default)]
pub struct Vars {
    pub values: BTreeMap<String, VarValue>,
    pub options: BTreeMap<String, Vec<String>>,
}

impl Vars {
    /// `current.value.toString()` as the plugin's `applyConditionalAll` sees it.
    fn current_string(&self, name: &str) -> Option<String> {
        Some(match self.values.get(name)? {
            VarValue::Single(s) => s.clone(),
            VarValue::Multi(v) => v.join(","),
            VarValue::All => "$__all".to_owned(),
        })
    }

    fn resolved(&self, name: &str) -> Option<Result<String, Vec<String>>> {
        Some(match self.values.get(name)? {
            VarValue::Single(s) => Ok(s.clone()),
            VarValue::Multi(v) => Err(v.clone()),
            VarValue::All => Err(self.options.get(name).cloned().unwrap_or_default()),
        })
    }
}

/// Arguments of a macro call whose `(` is at `open`: split on commas at depth 1, like the plugin's
/// `getMacroArgs` (which counts parentheses and ignores quotes). Returns the args and the index after `)`.
pub fn macro_args(q: &str, open: usize) -> Option<(Vec<String>, usize)> {
    let (mut depth, mut last, mut args) = (0i32, open + 1, Vec::new());
    for (i, c) in q[open..].char_indices().map(|(i, c)| (i + open, c)) {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 1 => {
                args.push(q[last..i].to_owned());
                last = i + 1;
            }
            _ => {}
        }
        if c == ')' && depth == 0 {
            args.push(q[last..i].to_owned());
            return Some((args, i + 1));
        }
    }
    None
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `$__conditionalAll(condition, $var)`: `1=1` when `$var` is All or empty, else the condition.
pub fn apply_conditional_all(mut q: String, vars: &Vars) -> String {
    const MACRO: &str = "$__conditionalAll(";
    while let Some(idx) = q.rfind(MACRO) {
        let (args, end) = macro_args(&q, idx + MACRO.len() - 1).expect("unbalanced $__conditionalAll");
        assert_eq!(args.len(), 2, "$__conditionalAll takes 2 arguments: {}", &q[idx..end]);
        let var = args[1].trim().trim_start_matches('$').trim_start_matches('{').trim_end_matches('}');
        assert!(var.chars().all(is_word), "second $__conditionalAll argument must be a bare variable: {}", args[1]);
        let cur = vars.current_string(var).unwrap_or_else(|| panic!("unknown variable ${var} in $__conditionalAll"));
        let phrase = if cur.is_empty() || cur == "$__all" { "1=1".to_owned() } else { args[0].clone() };
        q.replace_range(idx..end, &phrase);
    }
    q
}

fn quote(v: &str, escaped_quote: &str) -> String {
    format!("'{}'", v.replace('\'', escaped_quote))
}

/// One Grafana variable format applied to a value (`Err` = multi-value).
fn format_value(v: Result<String, Vec<String>>, fmt: Option<&str>) -> String {
    let each = |vs: &[String], f: &dyn Fn(&str) -> String| vs.iter().map(|s| f(s)).collect::<Vec<_>>().join(",");
    match (v, fmt) {
        (Ok(s), Some("singlequote")) => quote(&s, "\\'"),
        (Ok(s), Some("sqlstring")) => quote(&s, "''"),
        (Ok(s), Some("doublequote")) => format!("\"{}\"", s.replace('"', "\\\"")),
        (Ok(s), None | Some("raw" | "csv" | "text")) => s,
        (Err(vs), Some("singlequote")) => each(&vs, &|s| quote(s, "\\'")),
        (Err(vs), Some("sqlstring")) => each(&vs, &|s| quote(s, "''")),
        (Err(vs), Some("doublequote")) => each(&vs, &|s| format!("\"{}\"", s.replace('"', "\\\""))),
        (Err(vs), Some("raw" | "csv" | "text")) => vs.join(","),
        // No format: the ClickHouse plugin's `format()` quotes arrays: 'a','b'.
        (Err(vs), None) => format!("'{}'", vs.join("','")),
        (_, Some(other)) => panic!("variable format {other:?} is not emulated"),
    }
}

/// `templateSrv.replace`: `$var`, `${var}`, `${var:format}`, `[[var]]`, `[[var:format]]`.
/// Names that are not variables (such as `$__timeFilter`) are left alone, as Grafana does.
pub fn replace_variables(q: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(q.len());
    let mut rest = q;
    loop {
        let next = rest.find(['$', '[']);
        let Some(i) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (name, fmt, len) = if let Some(body) = tail.strip_prefix("${") {
            let end = body.find('}').expect("unterminated ${");
            let inner = &body[..end];
            let (name, fmt) = inner.split_once(':').map_or((inner, None), |(n, f)| (n, Some(f)));
            (name.split('.').next().unwrap(), fmt, end + 3)
        } else if let Some(body) = tail.strip_prefix("[[") {
            match body.find("]]") {
                Some(end) => {
                    let inner = &body[..end];
                    let (name, fmt) = inner.split_once(':').map_or((inner, None), |(n, f)| (n, Some(f)));
                    (name, fmt, end + 4)
                }
                None => ("", None, 1),
            }
        } else if let Some(body) = tail.strip_prefix('$') {
            let n = body.chars().take_while(|c| is_word(*c)).count();
            (&body[..n], None, 1 + n)
        } else {
            ("", None, 1)
        };
        match (!name.is_empty()).then(|| vars.resolved(name)).flatten() {
            Some(v) => out.push_str(&format_value(v, fmt)),
            None => out.push_str(&tail[..len.max(1)]),
        }
        rest = &tail[len.max(1)..];
    }
}

/// The time range and interval a backend query is run with.
#[derive(Clone, Copy, Debug)]
pub struct QueryCtx {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
}

impl QueryCtx {
    pub fn last(range_s: i64, now_ms: i64, interval_ms: i64) -> QueryCtx {
        QueryCtx { from_ms: now_ms - range_s * 1000, to_ms: now_ms, interval_ms }
    }

    /// The interval Grafana picks for a panel: range / max data points, rounded like
    /// `rangeutil.roundInterval`, never below the panel's min interval.
    pub fn for_panel(range_s: i64, now_ms: i64, max_data_points: i64, min_interval_ms: i64) -> QueryCtx {
        let raw = range_s * 1000 / max_data_points;
        QueryCtx::last(range_s, now_ms, round_interval(raw).max(min_interval_ms))
    }
}

pub fn round_interval(ms: i64) -> i64 {
    const STEPS: &[(i64, i64)] = &[
        (10, 1),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (150_000, 120_000),
        (450_000, 300_000),
        (900_000, 600_000),
        (1_350_000, 900_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
        (16_200_000, 10_800_000),
        (32_400_000, 21_600_000),
        (86_400_000, 43_200_000),
    ];
    STEPS.iter().find(|(limit, _)| ms < *limit).map_or(86_400_000, |(_, v)| *v)
}

fn parse_duration_ms(s: &str) -> i64 {
    let s = s.trim().trim_matches(['\'', '"']);
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().unwrap_or_else(|_| panic!("bad duration {s:?}"));
    n * match unit {
        "ms" => 1,
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => panic!("bad duration unit {other:?}"),
    }
}

fn date(ms: i64) -> String {
    // Civil date from days since the epoch (Howard Hinnant's algorithm), for $__dateFilter.
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("toDate('{y:04}-{m:02}-{d:02}')")
}

/// The plugin backend's macros, expanded exactly as `pkg/macros/macros.go` prints them.
pub fn expand_macros(q: &str, ctx: QueryCtx) -> String {
    let dt = |ms: i64| format!("toDateTime({})", ms.div_euclid(1000));
    let dt64 = |ms: i64| format!("fromUnixTimestamp64Milli({ms})");
    let interval_s = (ctx.interval_ms / 1000).max(1);
    let mut out = String::new();
    let mut rest = q;
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 3..];
        let name: String = tail.chars().take_while(|c| is_word(*c)).collect();
        let mut consumed = 3 + name.len();
        let mut args = Vec::new();
        if tail[name.len()..].starts_with('(') {
            let (a, end) = macro_args(&rest[i..], consumed).expect("unbalanced macro");
            args = a.into_iter().map(|s| s.trim().to_owned()).collect();
            consumed = end;
        }
        let arg = |n: usize| args.get(n).unwrap_or_else(|| panic!("$__{name} needs argument {n}")).clone();
        let (f, t) = (ctx.from_ms, ctx.to_ms);
        out.push_str(&match name.as_str() {
            "timeFilter" => format!("{0} >= {1} AND {0} <= {2}", arg(0), dt(f), dt(t)),
            "timeFilter_ms" => format!("{0} >= {1} AND {0} <= {2}", arg(0), dt64(f), dt64(t)),
            "dateFilter" => format!("{0} >= {1} AND {0} <= {2}", arg(0), date(f), date(t)),
            "dateTimeFilter" | "dt" => format!(
                "({0} >= {2} AND {0} <= {3}) AND ({1} >= {4} AND {1} <= {5})",
                arg(0),
                arg(1),
                date(f),
                date(t),
                dt(f),
                dt(t)
            ),
            "timeFrom" => format!("{} >= {}", arg(0), dt(f)),
            "timeTo" => format!("{} <= {}", arg(0), dt(t)),
            "fromTime" => dt(f),
            "toTime" => dt(t),
            "fromTime_ms" => dt64(f),
            "toTime_ms" => dt64(t),
            "interval_s" => interval_s.to_string(),
            "timeInterval" => format!("toStartOfInterval(toDateTime({}), INTERVAL {interval_s} second)", arg(0)),
            "timeInterval_ms" => {
                format!(
                    "toStartOfInterval(toDateTime64({}, 3), INTERVAL {} millisecond)",
                    arg(0),
                    ctx.interval_ms.max(1)
                )
            }
            "timeGroup" => {
                format!(
                    "toStartOfInterval(toDateTime({}), INTERVAL {} second)",
                    arg(0),
                    parse_duration_ms(&arg(1)) / 1000
                )
            }
            other => panic!("macro $__{other} is not expanded by the plugin backend (or not emulated here)"),
        });
        rest = &rest[i + consumed..];
    }
    out.push_str(rest);
    out
}

/// Frontend then backend: what ClickHouse receives for a dashboard query.
pub fn render_dashboard_sql(raw: &str, vars: &Vars, ctx: QueryCtx) -> String {
    let q = apply_conditional_all(raw.to_owned(), vars);
    expand_macros(&replace_variables(&q, vars), ctx)
}

/// Grafana field type the plugin produces for a ClickHouse column type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Time,
    Number,
    String,
    Bool,
    Other,
}

pub fn field_kind(ch_type: &str) -> FieldKind {
    let mut t = ch_type.trim();
    for wrapper in ["Nullable(", "LowCardinality(", "Nullable("] {
        if let Some(inner) = t.strip_prefix(wrapper) {
            t = &inner[..inner.len() - 1];
        }
    }
    let numeric = ["UInt", "Int", "Float", "Decimal"].iter().any(|p| t.starts_with(p));
    match t {
        _ if t.starts_with("DateTime") || t == "Date" || t == "Date32" => FieldKind::Time,
        _ if numeric => FieldKind::Number,
        "String" | "UUID" => FieldKind::String,
        _ if t.starts_with("FixedString") || t.starts_with("Enum") => FieldKind::String,
        "Bool" => FieldKind::Bool,
        _ => FieldKind::Other,
    }
}

/// A JSONEachRow cell as a number (64-bit integers arrive quoted).
pub fn json_f64(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.parse().ok(),
        Json::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

pub fn json_str(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Decodes %XX escapes (the Explore URLs in data links are percent-encoded JSON).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("bad %XX escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

/// Columns of a query (DESCRIBE) with the Grafana field type the plugin gives them.
pub async fn columns(stack: &crate::support::stack::Stack, sql: &str) -> Vec<(String, FieldKind)> {
    let rows = stack.query_json(&format!("DESCRIBE ({sql})")).await;
    rows.iter().map(|r| (json_str(&r["name"]), field_kind(&json_str(&r["type"])))).collect()
}
