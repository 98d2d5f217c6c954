//! One generic checker of `llm_calls` rows against the `expect` object of a provider scenario file
//! (`tests/clients/scenarios-anthropic.json`, `scenarios-google.json`), shared by the `real_providers`
//! suites (recorded fixtures replayed in process, and the clients run live into a collector).
//!
//! `expect` holds the exact normalised values of one call (GenAI semconv meaning: `input_tokens`
//! includes cache reads and writes; `output_tokens` includes reasoning/thinking tokens). What an
//! instrumentation does not record is listed in its [`Capability`]: such a field must be *absent* from
//! its row (empty, 0, no TTFT) — nothing is invented. What it records differently from the truth (a
//! mapped finish reason, an exception class as error type, a bug) is listed as a recorded value.
//!
//! A folder may hold two instrumentations of one call (the anthropic SDK traces itself, and an
//! instrumentation records the call again). The call must then be **exactly one counted row**
//! (`IsRollup = false`) holding, per field, what either recording has (the join's duplicate-call merge);
//! where the two record different values, either is accepted. While more than one counted row
//! exists for a call that is a mismatch, and each row is also checked against the capability of the
//! instrumentation that made it (by scope), so everything else is verified meanwhile.

use std::collections::BTreeSet;

use promptlog_ingest::rows::LlmCallRow;
use serde_json::Value;

/// What one instrumentation records, in the field names of [`FIELDS`]. A name may be prefixed with a
/// scenario (`stream.completion`) or with `ok.` (every scenario that succeeds); the most specific wins.
#[derive(Debug, Clone, Copy)]
pub struct Capability {
    /// Short label, used in mismatch messages.
    pub label: &'static str,
    /// Scope name of its LLM spans (how a row is attributed to it).
    pub scope: &'static str,
    /// The `Convention` column its rows carry.
    pub convention: &'static str,
    /// Fields it does not record: its row must not have them.
    pub missing: &'static [&'static str],
    /// Fields it records with another value than the truth: (field, recorded value).
    pub recorded: &'static [(&'static str, &'static str)],
}

/// Every checked field besides `params.<name>` (one per key of `expect.params`).
pub const FIELDS: &[&str] = &[
    "provider",
    "operation",
    "status",
    "request_model",
    "response_model",
    "response_id",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_output_tokens",
    "system",
    "prompt",
    "completion",
    "finish_reasons",
    "error_type",
    "ttft",
];

/// The value of `field` for scenario `name` as `cap` records it; `None` when it does not record it.
fn recorded_value(cap: &Capability, name: &str, ok: bool, field: &str, truth: &str) -> Option<String> {
    let keys = [format!("{name}.{field}"), if ok { format!("ok.{field}") } else { String::new() }, field.to_owned()];
    for key in keys.iter().filter(|k| !k.is_empty()) {
        if cap.missing.contains(&key.as_str()) {
            return None;
        }
        if let Some((_, v)) = cap.recorded.iter().find(|(k, _)| k == key) {
            return Some((*v).to_owned());
        }
    }
    Some(truth.to_owned())
}

/// The value an absent field has in a row.
fn absent(field: &str) -> &'static str {
    match field {
        "input_tokens"
        | "output_tokens"
        | "cache_read_input_tokens"
        | "cache_creation_input_tokens"
        | "reasoning_output_tokens" => "0",
        "finish_reasons" => "[]",
        _ => "",
    }
}

/// `expect.<field>` rendered as the row renders it.
fn truth(expect: &Value, field: &str) -> String {
    let v = match field.strip_prefix("params.") {
        Some(p) => &expect["params"][p],
        None => &expect[field],
    };
    match (field, v) {
        ("ttft", Value::Bool(b)) => if *b { "present" } else { "" }.to_owned(),
        ("finish_reasons", v) => v.to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Null) => absent(field).to_owned(),
        (_, other) => other.to_string(),
    }
}

/// Text of a JSON array of parts (`[{"type":"text","content":…}]`), joined with newlines.
fn parts_text(json: &str) -> String {
    let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(json) else { return json.to_owned() };
    parts.iter().filter_map(|p| p.get("content").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
}

fn param<'a>(row: &'a LlmCallRow, key: &str) -> &'a str {
    row.request_params.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
}

/// `field` of `row`, rendered like [`truth`].
pub fn row_value(row: &LlmCallRow, field: &str) -> String {
    if let Some(p) = field.strip_prefix("params.") {
        return param(row, p).to_owned();
    }
    match field {
        "provider" => row.provider.clone(),
        "operation" => row.operation.clone(),
        "status" => row.status_code.clone(),
        "request_model" => row.request_model.clone(),
        "response_model" => row.response_model.clone(),
        "response_id" => row.response_id.clone(),
        "input_tokens" => row.input_tokens.to_string(),
        "output_tokens" => row.output_tokens.to_string(),
        "cache_read_input_tokens" => row.cache_read_input_tokens.to_string(),
        "cache_creation_input_tokens" => row.cache_write_input_tokens.to_string(),
        "reasoning_output_tokens" => row.reasoning_output_tokens.to_string(),
        "system" => parts_text(&row.system_instructions),
        "prompt" => row.input_text.clone(),
        "completion" => row.output_text.clone(),
        "finish_reasons" => serde_json::to_string(&row.finish_reasons).unwrap(),
        "error_type" => row.error_type.clone(),
        "ttft" => match row.time_to_first_token {
            None => String::new(),
            Some(t) if t > 0.0 && t < 10.0 => "present".to_owned(),
            Some(t) => format!("out of range: {t}"),
        },
        other => panic!("unknown field {other}"),
    }
}

/// Every field of scenario `name`: [`FIELDS`] and `params.<key>` for each expected parameter.
fn fields_of(expect: &Value) -> Vec<String> {
    let mut out: Vec<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
    if let Some(params) = expect["params"].as_object() {
        out.extend(params.keys().map(|k| format!("params.{k}")));
    }
    out
}

/// The values `row` may have for scenario `name` when recorded by `caps` (one or two instrumentations,
/// merged): per field, the set of acceptable values.
fn acceptable(caps: &[Capability], name: &str, expect: &Value) -> Vec<(String, BTreeSet<String>)> {
    let ok = expect["status"] != "Error";
    fields_of(expect)
        .into_iter()
        .map(|field| {
            let t = truth(expect, &field);
            let mut values: BTreeSet<String> =
                caps.iter().filter_map(|c| recorded_value(c, name, ok, &field, &t)).collect();
            // A field recorded by nobody is absent; one recorded by some copy is that copy's value.
            if values.is_empty() {
                values.insert(absent(&field).to_owned());
            }
            // Token counts of a merged row are the true ones whenever a copy has them (the join takes
            // them from the innermost copy, the SDK's own, over an outer layer's miscount).
            if caps.len() > 1 && field.ends_with("_tokens") && values.contains(&t) {
                values = BTreeSet::from([t.clone()]);
            }
            (field, values)
        })
        .collect()
}

/// Checks one row against scenario `name` as recorded by `caps`; returns the mismatches.
pub fn check_row(row: &LlmCallRow, name: &str, caps: &[Capability], sc: &Value) -> Vec<String> {
    let expect = &sc["scenarios"][name]["expect"];
    let label: Vec<&str> = caps.iter().map(|c| c.label).collect();
    let mut bad = Vec::new();
    for (field, values) in acceptable(caps, name, expect) {
        let got = row_value(row, &field);
        if !values.contains(&got) {
            bad.push(format!("{name}.{field} ({}): got {got:?}, want {:?}", label.join("+"), values));
        }
    }
    // Parameters the scenario does not expect must not be there (no noise keys, canonical names only).
    let want: BTreeSet<&str> = expect["params"].as_object().map(|p| p.keys().map(String::as_str).collect()).unwrap();
    for (k, v) in &row.request_params {
        if !want.contains(k.as_str()) {
            bad.push(format!("{name}.params ({}): unexpected {k}={v:?}", label.join("+")));
        }
    }
    if !caps.iter().any(|c| c.convention == row.convention) {
        bad.push(format!("{name}.convention ({}): got {:?}", label.join("+"), row.convention));
    }
    bad.extend(check_cost(row, name, &sc["scenarios"][name]["price_usd_per_mtok"]));
    bad
}

/// The row's cost against the scenario's per-million prices (written in the scenario file from the
/// bundled genai-prices data), for the row's own token counts (checked above): fresh input, cache
/// reads, cache writes and output each at their price. A scenario without prices (a made-up model)
/// must be `unpriced`.
fn check_cost(row: &LlmCallRow, name: &str, price: &Value) -> Vec<String> {
    if price.is_null() {
        return match (row.cost_source.as_str(), row.cost_usd) {
            ("unpriced", None) => Vec::new(),
            (source, cost) => vec![format!("{name}.cost: got {cost:?} {source:?}, want unpriced")],
        };
    }
    let p = |k: &str| price[k].as_f64().unwrap();
    let (read, write) = (row.cache_read_input_tokens, row.cache_write_input_tokens);
    let fresh = row.input_tokens - read - write;
    let want = (fresh as f64 * p("input")
        + read as f64 * p("cache_read")
        + write as f64 * p("cache_write")
        + row.output_tokens as f64 * p("output"))
        / 1e6;
    let mut bad = Vec::new();
    if row.cost_source != "price_table" || !row.cost_usd.is_some_and(|c| (c - want).abs() <= want * 1e-12) {
        bad.push(format!("{name}.cost: got {:?} {:?}, want {want} price_table", row.cost_usd, row.cost_source));
    }
    let entry = price["_entry"].as_str().unwrap();
    if row.price_model != entry {
        bad.push(format!("{name}.price_model: got {:?}, want {entry:?}", row.price_model));
    }
    bad
}

/// Which scenario a row is (by response id, else by request model — unique per scenario).
pub fn scenario_of<'a>(row: &LlmCallRow, sc: &'a Value) -> Option<&'a str> {
    let scenarios = sc["scenarios"].as_object().unwrap();
    scenarios
        .iter()
        .find(|(_, s)| !row.response_id.is_empty() && s["expect"]["response_id"] == row.response_id.as_str())
        .or_else(|| scenarios.iter().find(|(_, s)| s["request"]["model"] == row.request_model.as_str()))
        .map(|(n, _)| n.as_str())
}

/// Checks all rows of one run (one folder) recorded by `caps`: exactly one counted row per scenario of
/// `run_order`, with the merged values; every row attributed to one of `caps` by its scope.
pub fn check_run(rows: &[LlmCallRow], caps: &[Capability], sc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    for row in rows {
        if !caps.iter().any(|c| c.scope == row.scope_name) {
            bad.push(format!(
                "row of span {:?} has scope {:?}, no instrumentation of this run",
                row.span_name, row.scope_name
            ));
        }
    }
    for name in sc["run_order"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()) {
        let of: Vec<&LlmCallRow> = rows.iter().filter(|r| scenario_of(r, sc) == Some(name)).collect();
        let counted: Vec<&&LlmCallRow> = of.iter().filter(|r| !r.is_rollup).collect();
        match counted.as_slice() {
            [row] => {
                bad.extend(check_row(row, name, caps, sc));
                // Every other copy is stored as recorded, marked as a duplicate of the counted row.
                let copies: Vec<&&LlmCallRow> = of.iter().filter(|r| r.span_id != row.span_id).collect();
                if copies.len() != caps.len() - 1 {
                    bad.push(format!("{name}: {} other copies, want {}", copies.len(), caps.len() - 1));
                }
                for copy in copies {
                    if !copy.is_rollup || copy.duplicate_of != row.span_id {
                        bad.push(format!(
                            "{name}: copy {:?} is not marked DuplicateOf {}",
                            copy.span_name, row.span_id
                        ));
                    }
                }
            }
            [] => bad.push(format!("{name}: no counted llm_calls row ({} rows in all)", of.len())),
            many => {
                bad.push(format!(
                    "{name}: {} counted rows for one call (spans {:?}), want exactly 1",
                    many.len(),
                    many.iter().map(|r| (&r.span_name, &r.scope_name)).collect::<Vec<_>>()
                ));
                // Not merged: say how each copy differs from what its own instrumentation records.
                for row in many {
                    let own: Vec<Capability> = caps.iter().filter(|c| c.scope == row.scope_name).copied().collect();
                    bad.extend(check_row(row, name, &own, sc));
                }
            }
        }
    }
    let known = rows.iter().filter(|r| scenario_of(r, sc).is_some()).count();
    if known != rows.len() {
        bad.push(format!("{} rows of no scenario", rows.len() - known));
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Capability = Capability {
        label: "t",
        scope: "s",
        convention: "c",
        missing: &["ttft", "stream.completion"],
        recorded: &[("finish_reasons", "[\"stop\"]"), ("ok.status", "Unset")],
    };

    #[test]
    fn most_specific_capability_entry_wins() {
        assert_eq!(recorded_value(&CAP, "stream", true, "completion", "x"), None);
        assert_eq!(recorded_value(&CAP, "plain", true, "completion", "x").as_deref(), Some("x"));
        assert_eq!(recorded_value(&CAP, "plain", true, "status", "Ok").as_deref(), Some("Unset"));
        assert_eq!(recorded_value(&CAP, "error", false, "status", "Error").as_deref(), Some("Error"));
        assert_eq!(recorded_value(&CAP, "plain", true, "ttft", "present"), None);
    }

    #[test]
    fn a_wrong_value_fails_and_a_missing_field_must_be_absent() {
        let sc = serde_json::json!({"run_order": ["plain"], "scenarios": {"plain": {"request": {"model": "m"}, "expect": {
            "provider": "p", "operation": "chat", "status": "Ok", "request_model": "m", "response_model": "",
            "response_id": "", "input_tokens": 3, "output_tokens": 0, "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0, "params": {"max_tokens": "7"}, "system": "", "prompt": "",
            "completion": "", "finish_reasons": ["end"], "error_type": "", "ttft": true}}}});
        let mut row = LlmCallRow {
            provider: "p".into(),
            operation: "chat".into(),
            status_code: "Unset".into(),
            request_model: "m".into(),
            input_tokens: 3,
            request_params: vec![("max_tokens".into(), "7".into())],
            finish_reasons: vec!["stop".into()],
            convention: "c".into(),
            scope_name: "s".into(),
            // Model "m" has no price.
            cost_source: "unpriced".into(),
            ..LlmCallRow::default()
        };
        assert_eq!(check_run(std::slice::from_ref(&row), &[CAP], &sc), Vec::<String>::new());
        row.input_tokens = 4;
        row.time_to_first_token = Some(0.1);
        row.request_params.push(("stop_sequences".into(), "null".into()));
        let bad = check_run(&[row], &[CAP], &sc);
        assert_eq!(bad.len(), 3, "{bad:?}");
    }
}
