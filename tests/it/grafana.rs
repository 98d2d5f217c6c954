//! Grafana assets (grafana/**, compose.yaml): provisioning consistency, and every dashboard query,
//! variable query and alert rule run against a real ClickHouse holding data sent through the collector.
//! Grafana itself is not started: the templating, plugin macros and alert expressions it would apply
//! are emulated in `support::grafana`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};
use serde_yaml_ng::Value as Yaml;

use crate::support::grafana::alerting::{self, Labels};
use crate::support::grafana::rollups;
use crate::support::grafana::{
    self, DATASOURCE_UID, FieldKind, QueryCtx, VarValue, Vars, dashboards, json_f64, json_str, read_yaml,
    render_dashboard_sql, seed, seed_metrics,
};
use crate::support::stack::Stack;

const RULE_FILES: &[&str] = &["provisioning/alerting/rules-llm.yaml", "provisioning/alerting/rules-collector.yaml"];

/// The panel each rule links to (dashboardUid/panelId), by title.
const RULE_PANELS: &[(&str, &str)] = &[
    ("promptlog-error-rate", "Error rate by model"),
    ("promptlog-p95-latency", "p95 latency by model"),
    ("promptlog-service-silent", "Calls/s by service"),
    ("promptlog-cost-per-hour", "Cost (USD/hour) by service"),
    ("promptlog-ttft-regression", "Time to first token p50 / p95 by model"),
    ("promptlog-user-spend-24h", "Cost by user (top 10)"),
    ("promptlog-cost-anomaly", "Cost (USD/hour) by service"),
    ("promptlog-collector-dead-letters", "Rejected / retried / dead-lettered per second"),
    ("promptlog-collector-stale", "Instances"),
    ("promptlog-negative-feedback", "Negative end-user ratings"),
];

/// A project besides `default` in the seeded data, and how many calls it has.
const OTHER_PROJECT: &str = "project-b";
const OTHER_PROJECT_CALLS: u64 = 3;

fn rules() -> Vec<(Yaml, Yaml)> {
    let mut out = Vec::new();
    for file in RULE_FILES {
        let doc = read_yaml(file);
        for group in doc["groups"].as_sequence().expect("groups") {
            for rule in group["rules"].as_sequence().expect("rules") {
                out.push((group.clone(), rule.clone()));
            }
        }
    }
    out
}

fn panels(dash: &Json) -> Vec<&Json> {
    dash["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row").collect()
}

/// Every `"datasource"` object anywhere in a JSON document.
fn datasource_refs<'a>(v: &'a Json, out: &mut Vec<&'a Json>) {
    match v {
        Json::Object(m) => {
            if let Some(ds) = m.get("datasource") {
                out.push(ds);
            }
            m.values().for_each(|x| datasource_refs(x, out));
        }
        Json::Array(a) => a.iter().for_each(|x| datasource_refs(x, out)),
        _ => {}
    }
}

/// `${VAR}` references in the values of a provisioning file (comments skipped).
pub(crate) fn env_refs(text: &str) -> BTreeSet<String> {
    let values = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    values.split("${").skip(1).filter_map(|s| s.split_once('}')).map(|(name, _)| name.to_owned()).collect()
}

#[test]
fn provisioning_files_are_consistent() {
    // Datasource: fixed uid, plugin, OTel trace/log tables, thresholds as custom settings.
    let ds_doc = read_yaml("provisioning/datasources/clickhouse.yaml");
    let ds = &ds_doc["datasources"][0];
    assert_eq!(ds["uid"].as_str(), Some(DATASOURCE_UID));
    assert_eq!(ds["type"].as_str(), Some("grafana-clickhouse-datasource"));
    let jd = &ds["jsonData"];
    assert_eq!(jd["traces"]["defaultTable"].as_str(), Some("otel_traces"));
    assert_eq!(jd["traces"]["durationUnit"].as_str(), Some("nanoseconds"));
    assert_eq!(jd["traces"]["traceTimestampTableSuffix"].as_str(), Some("_trace_id_ts"));
    assert_eq!(jd["traces"]["otelEnabled"].as_bool(), Some(true));
    assert_eq!(jd["logs"]["defaultTable"].as_str(), Some("otel_logs"));
    let mut custom = BTreeSet::new();
    for s in jd["customSettings"].as_sequence().unwrap() {
        let (name, value) = (s["setting"].as_str().unwrap(), s["value"].as_str());
        assert!(name.starts_with("SQL_promptlog_"), "{name}: custom settings need the SQL_ prefix");
        assert!(value.is_some_and(|v| v.starts_with("${")), "{name}: the plugin needs a string value from the env");
        custom.insert(name.to_owned());
    }

    // Dashboards: unique uids, datasource refs, unique panel ids, links to existing dashboards.
    let dashes = dashboards();
    assert_eq!(dashes.len(), 7, "seven dashboards");
    let uids: BTreeSet<_> = dashes.iter().map(|(_, d)| d["uid"].as_str().unwrap().to_owned()).collect();
    assert_eq!(uids.len(), dashes.len(), "dashboard uids must be unique");
    let mut panel_ids = BTreeMap::new();
    for (file, d) in &dashes {
        assert_eq!(d["time"]["from"], "now-6h", "{file}: default time range");
        let mut refs = Vec::new();
        datasource_refs(d, &mut refs);
        for r in refs {
            let ok = r["uid"] == DATASOURCE_UID || r["uid"] == "-- Grafana --";
            assert!(ok, "{file}: datasource reference {r} is not {DATASOURCE_UID}");
        }
        let vars: BTreeSet<_> =
            d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        // The GenAI metrics carry no user attribute (the semantic conventions keep series cardinality low).
        let required: &[&str] = if file == "metrics.json" {
            &["service", "environment", "model"]
        } else {
            &["service", "environment", "model", "user"]
        };
        for v in required {
            assert!(vars.contains(v), "{file}: variable {v} missing");
        }
        let ids: Vec<i64> = panels(d).iter().map(|p| p["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "{file}: duplicate panel ids");
        let titles: BTreeMap<i64, String> =
            panels(d).iter().map(|p| (p["id"].as_i64().unwrap(), p["title"].as_str().unwrap().to_owned())).collect();
        panel_ids.insert(d["uid"].as_str().unwrap().to_owned(), titles);
        let text = d.to_string();
        for link in text.split("/d/").skip(1) {
            let uid = link.split('/').next().unwrap();
            assert!(uids.contains(uid), "{file}: link to unknown dashboard {uid}");
        }
    }

    // Dashboard provider.
    let prov = read_yaml("provisioning/dashboards/promptlog.yaml");
    assert_eq!(prov["providers"][0]["folder"].as_str(), Some("promptlog"));
    assert_eq!(prov["providers"][0]["options"]["path"].as_str(), Some("/var/lib/grafana/dashboards"));

    // Rules: uids, folders, intervals, refIds, datasource uids, labels, annotations, settings used.
    let mut rule_uids = BTreeSet::new();
    let mut used_settings = BTreeSet::new();
    for (group, rule) in rules() {
        let uid = rule["uid"].as_str().unwrap().to_owned();
        assert!(rule_uids.insert(uid.clone()), "duplicate rule uid {uid}");
        assert_eq!(group["folder"].as_str(), Some("promptlog"), "{uid}: folder");
        assert_eq!(group["interval"].as_str(), Some("1m"), "{uid}: group interval");
        assert!(rule["for"].as_str().is_some(), "{uid}: `for` missing");
        for k in ["severity", "team"] {
            assert!(rule["labels"][k].as_str().is_some_and(|s| !s.is_empty()), "{uid}: label {k}");
        }
        for k in ["summary", "description", "runbook"] {
            assert!(rule["annotations"][k].as_str().is_some_and(|s| !s.is_empty()), "{uid}: annotation {k}");
        }
        let data = rule["data"].as_sequence().unwrap();
        let refids: BTreeSet<_> = data.iter().map(|q| q["refId"].as_str().unwrap()).collect();
        assert!(refids.contains(rule["condition"].as_str().unwrap()), "{uid}: condition names no refId");
        for q in data {
            let ds = q["datasourceUid"].as_str().unwrap();
            assert!(ds == DATASOURCE_UID || ds == "__expr__", "{uid}: datasource {ds}");
            if ds == DATASOURCE_UID {
                assert_eq!(q["model"]["format"].as_i64(), Some(1), "{uid}: alert queries use Table format");
                let sql = q["model"]["rawSql"].as_str().unwrap();
                assert!(!sql.contains("${"), "{uid}: ${{..}} is not interpolated in rule models");
                for part in sql.split("getSettingOrDefault('").skip(1) {
                    used_settings.insert(part.split('\'').next().unwrap().to_owned());
                }
            } else {
                let e = q["model"]["expression"].as_str().unwrap();
                let named: Vec<String> = if q["model"]["type"] == "math" {
                    e.split('$')
                        .skip(1)
                        .map(|r| r.chars().take_while(|c| c.is_ascii_alphanumeric()).collect())
                        .collect()
                } else {
                    vec![e.to_owned()]
                };
                for name in named {
                    assert!(refids.contains(name.as_str()), "{uid}: expression {e:?} refers to unknown {name}");
                }
            }
        }
        let (dash, panel) = (rule["dashboardUid"].as_str().unwrap(), rule["panelId"].as_i64().unwrap());
        let title = panel_ids
            .get(dash)
            .and_then(|ids| ids.get(&panel))
            .unwrap_or_else(|| panic!("{uid}: no panel {dash}/{panel}"));
        let expected = RULE_PANELS.iter().find(|(u, _)| *u == uid).map(|(_, t)| *t);
        assert_eq!(Some(title.as_str()), expected, "{uid}: links to the wrong panel");
    }
    assert_eq!(used_settings, custom, "settings read by rules vs. settings the datasource sends");

    // Contact points and the notification policy.
    let cps = read_yaml("provisioning/alerting/contact-points.yaml");
    let mut receivers = BTreeSet::new();
    let mut receiver_uids = BTreeSet::new();
    for cp in cps["contactPoints"].as_sequence().unwrap() {
        receivers.insert(cp["name"].as_str().unwrap().to_owned());
        for r in cp["receivers"].as_sequence().unwrap() {
            assert!(receiver_uids.insert(r["uid"].as_str().unwrap().to_owned()), "duplicate contact point uid");
        }
    }
    let pol = read_yaml("provisioning/alerting/policies.yaml");
    let root = &pol["policies"][0];
    let mut names = vec![root["receiver"].as_str().unwrap()];
    let routes = root["routes"].as_sequence().unwrap();
    names.extend(routes.iter().map(|r| r["receiver"].as_str().unwrap()));
    for n in names {
        assert!(receivers.contains(n), "policy routes to unknown contact point {n}");
    }
    let severities: BTreeSet<_> = routes.iter().map(|r| r["object_matchers"][0][2].as_str().unwrap()).collect();
    let rule_severities: BTreeSet<_> =
        rules().iter().map(|(_, r)| r["labels"]["severity"].as_str().unwrap().to_owned()).collect();
    assert!(rule_severities.iter().all(|s| severities.contains(s.as_str())), "every severity is routed");
}

#[test]
fn compose_file_is_valid() {
    let root = promptlog_testkit::repo_root();
    let text = std::fs::read_to_string(root.join("compose.yaml")).unwrap();
    let mut doc: Yaml = serde_yaml_ng::from_str(&text).expect("compose.yaml parses");
    doc.apply_merge().expect("compose.yaml merge keys");
    let services = doc["services"].as_mapping().unwrap();
    for name in ["clickhouse", "grafana", "collector"] {
        let svc = &doc["services"][name];
        assert!(svc.is_mapping(), "service {name}");
        assert!(svc["healthcheck"]["test"].is_sequence(), "{name}: healthcheck");
    }
    assert!(doc["services"]["clickhouse"]["image"].as_str().unwrap().starts_with("clickhouse/clickhouse-server:2"));
    assert!(doc["services"]["grafana"]["image"].as_str().unwrap().starts_with("grafana/grafana:"));
    assert_eq!(doc["services"]["collector"]["build"].as_str(), Some("."));
    let env = &doc["services"]["grafana"]["environment"];
    assert!(env["GF_INSTALL_PLUGINS"].as_str().unwrap().contains("grafana-clickhouse-datasource"));
    assert_eq!(
        doc["services"]["collector"]["environment"]["PROMPTLOG_CLICKHOUSE_URL"].as_str(),
        Some("http://clickhouse:8123")
    );
    for (_, svc) in services {
        for v in svc["volumes"].as_sequence().into_iter().flatten() {
            let spec = v.as_str().unwrap();
            let src = spec.split(':').next().unwrap();
            if src.starts_with("./") || src.starts_with('/') {
                assert!(root.join(src).exists(), "compose mounts {src}, which is not in the repo");
                assert!(spec.ends_with(":ro"), "{spec}: configuration is mounted read-only");
            }
        }
    }
    // Every ${VAR} the provisioning files read is given to the Grafana container (with a default).
    let readme = std::fs::read_to_string(root.join("grafana/README.md")).unwrap();
    for file in ["provisioning/datasources/clickhouse.yaml", "provisioning/alerting/contact-points.yaml"] {
        for var in env_refs(&std::fs::read_to_string(grafana::grafana_dir().join(file)).unwrap()) {
            let val = env[var.as_str()].as_str().unwrap_or_else(|| panic!("grafana env lacks {var} ({file})"));
            // A password has no default: compose requires it (`${VAR:?…}`, see tests/it/privilege.rs).
            let required = var.contains("PASSWORD") && val.contains(":?");
            assert!(required || val.contains(":-") || !val.contains("${"), "{var} has no default in compose.yaml");
            assert!(readme.contains(&var), "grafana/README.md does not document {var}");
        }
    }
}

/// Options of every query/custom variable, computed in order as Grafana does.
async fn resolve_variables(stack: &Stack, dash: &Json, vars: &mut Vars, now: i64, problems: &mut Vec<String>) {
    for v in dash["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap().to_owned();
        let opts: Vec<String> = match v["type"].as_str().unwrap() {
            "query" => {
                let sql =
                    render_dashboard_sql(v["query"].as_str().unwrap(), vars, QueryCtx::last(6 * 3600, now, 60_000));
                let rows = stack.query_json(&sql).await;
                rows.iter().map(|r| json_str(r.values().next().unwrap())).collect()
            }
            "custom" => v["query"].as_str().unwrap().split(',').map(|s| s.trim().to_owned()).collect(),
            _ => continue,
        };
        if opts.is_empty() {
            problems.push(format!("{} variable {name}: no options", dash["uid"]));
        }
        // A single-value query variable nobody set takes its first option, as Grafana does.
        let unset = matches!(vars.values.get(&name), Some(VarValue::Single(s)) if s.is_empty());
        if v["type"] == "query" && v["includeAll"] != true && unset && !opts.is_empty() {
            vars.values.insert(name.clone(), VarValue::Single(opts[0].clone()));
        }
        vars.options.insert(name, opts);
    }
}

/// Runs every panel query of `dash` with `values`; returns the rows of each panel by title.
async fn run_dashboard(
    stack: &Stack,
    dash: &Json,
    values: &BTreeMap<&str, VarValue>,
    require_rows: bool,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Vec<Map<String, Json>>> {
    let now = grafana::now_ms();
    let uid = dash["uid"].as_str().unwrap();
    let mut vars = Vars::default();
    for v in dash["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let default = if v["includeAll"] == true { VarValue::All } else { VarValue::Single(String::new()) };
        vars.values.insert(name.to_owned(), values.get(name).cloned().unwrap_or(default));
    }
    resolve_variables(stack, dash, &mut vars, now, problems).await;
    let mut out = BTreeMap::new();
    for p in panels(dash) {
        let (kind, title) = (p["type"].as_str().unwrap(), p["title"].as_str().unwrap());
        let at = format!("{uid} / {title}");
        for t in p["targets"].as_array().unwrap() {
            let ctx = QueryCtx::for_panel(6 * 3600, now, p["maxDataPoints"].as_i64().unwrap_or(1000), 1);
            let sql = render_dashboard_sql(t["rawSql"].as_str().unwrap(), &vars, ctx);
            let cols = grafana::columns(stack, &sql).await;
            let count = |k| cols.iter().filter(|(_, c)| *c == k).count();
            let shape_ok = match kind {
                "timeseries" => count(FieldKind::Time) == 1 && count(FieldKind::Number) >= 1 && t["format"] == 0,
                "stat" => count(FieldKind::Number) >= 1 && t["format"] == 1,
                "piechart" => count(FieldKind::String) == 1 && count(FieldKind::Number) >= 1,
                "table" => !cols.is_empty() && t["format"] == 1,
                other => panic!("{at}: panel type {other} not checked"),
            };
            if !shape_ok {
                problems.push(format!("{at}: columns {cols:?} do not fit a {kind} panel"));
            }
            let overrides = p["fieldConfig"]["overrides"].as_array().unwrap();
            for o in overrides {
                let col = o["matcher"]["options"].as_str().unwrap();
                if !cols.iter().any(|(c, _)| c == col) {
                    problems.push(format!("{at}: override for missing column {col}"));
                }
            }
            for linked in ["traceID", "session"] {
                let has_link = overrides.iter().any(|o| {
                    o["matcher"]["options"] == linked
                        && o["properties"].as_array().unwrap().iter().any(|p| p["id"] == "links")
                });
                if cols.iter().any(|(c, _)| c == linked) && !has_link {
                    problems.push(format!("{at}: column {linked} has no data link"));
                }
            }
            let rows = stack.query_json(&sql).await;
            if require_rows && rows.is_empty() {
                problems.push(format!("{at}: no rows on seeded data"));
            }
            if kind == "stat" && rows.len() != 1 {
                problems.push(format!("{at}: a stat query returned {} rows", rows.len()));
            }
            if let Some((tcol, _)) = cols.iter().find(|(_, k)| kind == "timeseries" && *k == FieldKind::Time) {
                let times: Vec<String> = rows.iter().map(|r| json_str(&r[tcol])).collect();
                if times.windows(2).any(|w| w[0] > w[1]) {
                    problems.push(format!("{at}: time column not ascending"));
                }
            }
            if out.insert(title.to_owned(), rows).is_some() {
                problems.push(format!("{at}: duplicate panel title"));
            }
        }
    }
    out
}

fn fires_for(state: &Option<Vec<(Labels, bool)>>, key: &str, value: &str) -> bool {
    state.iter().flatten().any(|(l, firing)| *firing && l.get(key).map(String::as_str) == Some(value))
}

/// End-user thumbs, sent through the collector's `/v1/scores` for seeded calls: svc-errors gets 12
/// ratings, 11 of them down (fires the negative-feedback rule); chat-api 12, 2 down (quiet); svc-healthy
/// 3, all down (below the minimum ratings). Plus an LLM relevance score and a session score on sess-3.
async fn seed_scores(stack: &Stack) {
    let calls = stack
        .query_json(
            "SELECT TraceId AS t, SpanId AS s, ServiceName AS service FROM llm_calls WHERE NOT IsRollup \
             AND ServiceName IN ('svc-errors', 'chat-api', 'svc-healthy') ORDER BY Timestamp DESC LIMIT 12 BY service",
        )
        .await;
    let mut scores = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &calls {
        let service = json_str(&c["service"]);
        let n = seen.entry(service.clone()).or_default();
        *n += 1;
        let down = match service.as_str() {
            "svc-errors" => *n <= 11,
            "chat-api" => *n <= 2,
            _ => *n <= 3,
        };
        if service == "svc-healthy" && *n > 3 {
            continue;
        }
        scores.push(serde_json::json!({"trace_id": c["t"], "span_id": c["s"], "name": "user_rating",
            "data_type": "boolean", "value": !down, "source": "end_user", "comment": if down { "wrong" } else { "" }}));
        if *n == 1 {
            scores.push(serde_json::json!({"trace_id": c["t"], "span_id": c["s"], "name": "relevance",
                "value": 0.5, "label": "partial", "source": "llm"}));
        }
    }
    scores.push(serde_json::json!({"session_id": "sess-3", "name": "session_outcome", "data_type": "categorical",
        "label": "resolved", "source": "annotator"}));
    let want = scores.len() as u64;
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/scores", stack.otlp_http_url()))
        .json(&serde_json::json!({ "scores": scores }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let body: Json = reply.json().await.unwrap();
    assert_eq!(body["rejected_scores"], 0, "{body}");
    stack.wait_for_count("scores", want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_on_seeded_data() {
    let stack = Stack::start().await;
    let calls = seed::scenario();
    for body in seed::requests(&calls, 200) {
        let (status, _, resp) = stack.post_otlp("/v1/traces", "application/x-protobuf", body, false).await;
        assert_eq!(status, 200, "collector refused the seed: {}", String::from_utf8_lossy(&resp));
    }
    seed::collector_stats(&stack).await;
    let body = seed_metrics::request(grafana::now_ms() as u64 * 1_000_000);
    let (status, _, resp) = stack.post_otlp("/v1/metrics", "application/x-protobuf", body, false).await;
    assert_eq!(status, 200, "collector refused the metrics seed: {}", String::from_utf8_lossy(&resp));
    stack.wait_for_count("otel_metrics_histogram", 7).await;
    stack.wait_for_count("llm_calls", calls.len() as u64).await;
    seed_scores(&stack).await;

    // Alerts first: their windows are minutes wide and the seed ages while the dashboards run.
    let expect: &[(&str, &str, &str, &[&str])] = &[
        ("promptlog-error-rate", "service", "svc-errors", &["svc-healthy", "svc-few", "svc-slow", "chat-api"]),
        ("promptlog-p95-latency", "service", "svc-slow", &["svc-healthy", "svc-errors", "chat-api"]),
        ("promptlog-service-silent", "service", "svc-gone", &["svc-healthy", "svc-rare", "chat-api", "svc-burn"]),
        ("promptlog-cost-per-hour", "environment", "burn", &["prod", "staging"]),
        ("promptlog-ttft-regression", "service", "svc-ttft", &["svc-healthy", "chat-api"]),
        ("promptlog-user-spend-24h", "user", "user-spender", &["user-1", "user-steady", "user-0"]),
        ("promptlog-cost-anomaly", "service", "svc-burn", &["svc-steady", "chat-api", "svc-healthy"]),
        ("promptlog-collector-dead-letters", "instance", "grafana-test-a", &["grafana-test-b", "grafana-test-c"]),
        ("promptlog-collector-stale", "instance", "grafana-test-c", &["grafana-test-a", "grafana-test-b"]),
        ("promptlog-negative-feedback", "service", "svc-errors", &["chat-api", "svc-healthy"]),
    ];
    let all_rules = rules();
    assert_eq!(all_rules.len(), expect.len(), "every rule has a firing and a quiet case here");
    let none = BTreeMap::new();
    for (uid, key, hot, quiet) in expect {
        let rule = &all_rules.iter().find(|(_, r)| r["uid"].as_str() == Some(uid)).expect(uid).1;
        let state = alerting::evaluate_rule(&stack, rule, &none).await;
        println!("{uid}: {state:?}");
        assert!(fires_for(&state, key, hot), "{uid} should fire for {key}={hot}: {state:?}");
        for q in *quiet {
            assert!(!fires_for(&state, key, q), "{uid} should stay quiet for {key}={q}: {state:?}");
        }
    }
    // Thresholds come from the datasource's custom settings: raising them silences the rules.
    let overrides: &[(&str, &str, &str, &str, &str)] = &[
        ("promptlog-error-rate", "SQL_promptlog_error_rate_max", "0.6", "service", "svc-errors"),
        ("promptlog-error-rate", "SQL_promptlog_min_calls", "40", "service", "svc-errors"),
        ("promptlog-p95-latency", "SQL_promptlog_p95_latency_ms_max", "60000", "service", "svc-slow"),
        ("promptlog-cost-per-hour", "SQL_promptlog_cost_per_hour_usd_max", "50", "environment", "burn"),
        ("promptlog-ttft-regression", "SQL_promptlog_ttft_regression_ratio_max", "8", "service", "svc-ttft"),
        ("promptlog-service-silent", "SQL_promptlog_silence_min_calls", "30", "service", "svc-gone"),
        ("promptlog-user-spend-24h", "SQL_promptlog_user_spend_24h_usd_max", "31", "user", "user-spender"),
        ("promptlog-cost-anomaly", "SQL_promptlog_cost_anomaly_ratio_max", "31", "service", "svc-burn"),
        ("promptlog-cost-anomaly", "SQL_promptlog_cost_anomaly_min_usd", "11", "service", "svc-burn"),
        ("promptlog-negative-feedback", "SQL_promptlog_negative_feedback_share_max", "0.95", "service", "svc-errors"),
        ("promptlog-negative-feedback", "SQL_promptlog_feedback_min_ratings", "13", "service", "svc-errors"),
    ];
    for (uid, setting, value, key, hot) in overrides {
        let rule = &all_rules.iter().find(|(_, r)| r["uid"].as_str() == Some(uid)).unwrap().1;
        let state = alerting::evaluate_rule(&stack, rule, &BTreeMap::from([(*setting, *value)])).await;
        assert!(!fires_for(&state, key, hot), "{uid} with {setting}={value} should not fire: {state:?}");
    }
    // Lowering the budget below the background spend makes prod fire too.
    let rule = &all_rules.iter().find(|(_, r)| r["uid"] == "promptlog-cost-per-hour").unwrap().1;
    let state =
        alerting::evaluate_rule(&stack, rule, &BTreeMap::from([("SQL_promptlog_cost_per_hour_usd_max", "0.0001")]))
            .await;
    assert!(fires_for(&state, "environment", "prod"), "a tiny budget fires for prod: {state:?}");
    alerting::check_spend_limits(&stack, &all_rules.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()).await;

    // A second project (rows written as the collector writes a keyed project's rows), for the
    // dashboards' project variable.
    stack
        .exec(&format!(
            "INSERT INTO llm_calls (ProjectId, Timestamp, ServiceName, Environment, Operation, RequestModel, \
             StatusCode, InputTokens, OutputTokens, UserId) SELECT '{OTHER_PROJECT}', now64(9) - toIntervalSecond(60 * (number + 1)), \
             'svc-project-b', 'prod', 'chat', 'gpt-4o', 'Ok', 10, 20, 'user-b' FROM numbers({OTHER_PROJECT_CALLS})"
        ))
        .await;
    // An agent roll-up span repeating its calls' usage: stored, but in no rollup and no sum.
    stack
        .exec(
            "INSERT INTO llm_calls (Timestamp, ServiceName, Environment, Operation, RequestModel, StatusCode, \
             InputTokens, CostUsd, UserId, IsRollup) VALUES (now64(9) - toIntervalSecond(300), 'chat-api', 'prod', \
             'invoke_agent', 'gpt-4o', 'Ok', 5000, 100, 'user-1', true)",
        )
        .await;

    // Dashboards: every panel and variable with All selected must return rows of the right shape.
    let mut problems = Vec::new();
    let all = BTreeMap::from([("session", VarValue::Single("sess-3".into()))]);
    let mut results = BTreeMap::new();
    for (_, dash) in dashboards() {
        let rows = run_dashboard(&stack, &dash, &all, true, &mut problems).await;
        results.insert(dash["uid"].as_str().unwrap().to_owned(), rows);
    }
    // The Feedback dashboard reads the seeded thumbs exactly: 16 of 27 end-user ratings are down.
    let feedback = &results["promptlog-feedback"];
    let negative = json_f64(&feedback["Negative end-user ratings"][0]["negative_share"]).unwrap();
    assert!((negative - 16.0 / 27.0).abs() < 1e-9, "negative share {negative}");
    let worst = &feedback["Worst-rated calls"][0];
    assert_eq!((json_str(&worst["score"]), json_str(&worst["comment"])), ("user_rating".into(), "wrong".into()));
    let session_scores = &results["promptlog-session"]["Scores in this session"];
    assert!(session_scores.iter().any(|r| json_str(&r["label"]) == "resolved"), "{session_scores:?}");
    // The metrics dashboard reads exactly what was sent.
    let metrics = &results["promptlog-metrics"];
    let one = |panel: &str, col: &str| json_f64(&metrics[panel][0][col]).unwrap();
    assert_eq!(one("Input tokens", "input_tokens"), seed_metrics::INPUT_TOKENS);
    assert_eq!(one("Output tokens", "output_tokens"), seed_metrics::OUTPUT_TOKENS);
    assert_eq!(one("Operations", "operations"), seed_metrics::OPERATIONS);
    // ... and so do the overview's GenAI client metrics panels.
    let tokens: f64 = results["promptlog-overview"]["Client token usage by type and model"]
        .iter()
        .map(|r| json_f64(&r["tokens"]).unwrap())
        .sum();
    assert_eq!(tokens, seed_metrics::INPUT_TOKENS + seed_metrics::OUTPUT_TOKENS, "overview token usage");
    for (uid, panel, (p50, p95)) in [
        ("promptlog-metrics", "Operation duration p50 / p95", seed_metrics::DURATION_P50_P95),
        ("promptlog-metrics", "Time to first token p50 / p95", seed_metrics::TTFT_P50_P95),
        ("promptlog-overview", "Client operation duration p50 / p95", seed_metrics::DURATION_P50_P95),
        ("promptlog-overview", "Client time to first chunk p50 / p95", seed_metrics::TTFT_P50_P95),
    ] {
        let got: Vec<(String, f64)> =
            results[uid][panel].iter().map(|r| (json_str(&r["quantile"]), json_f64(&r["seconds"]).unwrap())).collect();
        let [(q50, v50), (q95, v95)] = got.as_slice() else { panic!("{panel}: {got:?}") };
        assert_eq!((q50.as_str(), q95.as_str()), ("p50", "p95"), "{panel}");
        assert!((v50 - p50).abs() < 1e-9 && (v95 - p95).abs() < 1e-9, "{panel}: {got:?}");
    }

    // ... and with concrete selections (single and multi values, search text with a quote).
    let m = |v: &[&str]| VarValue::Multi(v.iter().map(|s| s.to_string()).collect());
    let picked = BTreeMap::from([
        ("project", m(&["default"])),
        ("service", m(&["chat-api"])),
        ("environment", m(&["prod"])),
        ("model", m(&["gpt-4o", "claude-sonnet-4"])),
        ("user", m(&["user-1", "user-4"])),
        ("status", m(&["Ok", "Error"])),
        ("signal", m(&["llm_calls"])),
        ("search", VarValue::Single("what's new".into())),
        ("session", VarValue::Single("sess-3".into())),
    ]);
    for (_, dash) in dashboards() {
        run_dashboard(&stack, &dash, &picked, false, &mut problems).await;
    }
    // Aggregating panels read the rollups, and show what the raw rows give.
    let now = grafana::now_ms();
    for (_, dash) in dashboards() {
        problems.extend(rollups::check_sources(&dash));
    }
    problems.extend(rollups::check_tables(&stack).await);
    problems.extend(rollups::check_panels(&stack, &dashboards(), now).await);
    let overview = dashboards().into_iter().find(|(_, d)| d["uid"] == "promptlog-overview").unwrap().1;
    problems.extend(rollups::check_table_choice(&stack, &overview, now).await);
    assert!(problems.is_empty(), "dashboard problems:\n{}", problems.join("\n"));
    let ran: usize = results.values().map(BTreeMap::len).sum();
    let total: usize = dashboards().iter().map(|(_, d)| panels(d).len()).sum();
    assert_eq!(ran, total, "every panel ran");
    println!("{ran} panel queries ran with rows, twice (All and concrete selections)");

    // The project variable: one project, several, or All (the default).
    let overview = dashboards().into_iter().find(|(_, d)| d["uid"] == "promptlog-overview").unwrap().1;
    let calls_of = |rows: &BTreeMap<String, Vec<Map<String, Json>>>| json_f64(&rows["Calls"][0]["calls"]).unwrap();
    let all_calls = calls_of(&results["promptlog-overview"]);
    let only = |p: &[&str]| BTreeMap::from([("project", m(p))]);
    let b = run_dashboard(&stack, &overview, &only(&[OTHER_PROJECT]), false, &mut problems).await;
    assert_eq!(calls_of(&b), OTHER_PROJECT_CALLS as f64, "project {OTHER_PROJECT} alone");
    let default = run_dashboard(&stack, &overview, &only(&["default"]), false, &mut problems).await;
    assert_eq!(calls_of(&default) + OTHER_PROJECT_CALLS as f64, all_calls, "All is every project");
    assert!(b["Calls/s by service"].iter().all(|r| json_str(&r["service"]) == "svc-project-b"));
    let both = run_dashboard(&stack, &overview, &only(&["default", OTHER_PROJECT]), false, &mut problems).await;
    assert_eq!(calls_of(&both), all_calls);
    assert!(problems.is_empty(), "dashboard problems:\n{}", problems.join("\n"));

    // Prompt explorer search is case-insensitive over prompt and completion.
    let explorer = dashboards().into_iter().find(|(_, d)| d["uid"] == "promptlog-prompts").unwrap().1;
    let search = |s: &str| BTreeMap::from([("search", VarValue::Single(s.into()))]);
    let hits = run_dashboard(&stack, &explorer, &search("PURPLE Elephant"), false, &mut problems).await;
    assert_eq!(hits["Calls"].len(), 6, "six prompts mention the purple elephant");
    let hits = run_dashboard(&stack, &explorer, &search("answer 17."), false, &mut problems).await;
    assert_eq!(hits["Calls"].len(), 1, "completion text is searched too");

    rollups::check_prompt_versions(&calls, &results["promptlog-prompts"]["Prompt versions"]);

    // Session: every call of sess-3, in order, numbered from 1.
    let conv = &results["promptlog-session"]["Conversation"];
    assert_eq!(conv.len(), 24, "sess-3 has 24 calls");
    let turns: Vec<f64> = conv.iter().map(|r| json_f64(&r["turn"]).unwrap()).collect();
    assert_eq!(turns, (1..=24).map(f64::from).collect::<Vec<_>>());

    let session = dashboards().into_iter().find(|(_, d)| d["uid"] == "promptlog-session").unwrap().1;
    let empty = run_dashboard(&stack, &session, &BTreeMap::new(), false, &mut problems).await;
    assert!(empty["Conversation"].is_empty(), "no session selected: no conversation, not every session-less call");

    // The trace link opens a query that finds the call's spans in otel_traces.
    let overview = dashboards().into_iter().find(|(_, d)| d["uid"] == "promptlog-overview").unwrap().1;
    let link = overview.to_string();
    let url = link.split("\"url\":\"/explore?").nth(1).unwrap().split('"').next().unwrap();
    let panes = grafana::percent_decode(url.split("panes=").nth(1).unwrap());
    let panes: Json = serde_json::from_str(&panes).unwrap();
    let trace_sql = panes["trace"]["queries"][0]["rawSql"].as_str().unwrap();
    let trace_id = json_str(&results["promptlog-overview"]["Slowest calls"][0]["traceID"]);
    let spans = stack.query_json(&trace_sql.replace("${__value.raw}", &trace_id)).await;
    assert_eq!(spans.len(), 1, "the seeded call is one span");
    for col in ["traceID", "spanID", "parentSpanID", "serviceName", "operationName", "startTime", "duration", "tags"] {
        assert!(spans[0].contains_key(col), "trace query lacks {col}");
    }
}
