//! The expectation table and the row checker shared by the `conventions` suite (recorded fixtures, replayed
//! through the normaliser in process) and the `real_clients` suite (the same instrumentations run live
//! against a collector, rows read back from ClickHouse): one capability table, one set of checks.

use promptlog_ingest::rows::LlmCallRow;
use serde_json::Value;

/// What a convention carries (and so what must be exact in its rows).
#[derive(Clone, Copy, Default)]
pub struct Carries {
    pub content: bool,
    pub cache_tokens: bool,
    pub reasoning_tokens: bool,
    pub seed: bool,
    pub stop: bool,
    pub tool_definitions: bool,
    pub identity: bool,
    pub ttft: bool,
    pub embeddings_span: bool,
    /// Request parameters and prompt recorded on failed calls too.
    pub error_details: bool,
    /// Not a capability but a shape: every call is wrapped in an outer span (Vercel AI SDK
    /// `ai.generateText` around `ai.generateText.doGenerate`, …) that repeats its usage and is stored
    /// as an `IsRollup` row; those rows are checked by [`check_rollups`], not [`check`].
    pub rollup_spans: bool,
    /// Also a shape: every chat call is recorded by a second layer as well (LangChain over the OpenAI
    /// instrumentation); the copies are stored as `DuplicateOf` rows and checked by
    /// [`check_duplicates`], and the counted row has the merged values.
    pub duplicate_copies: bool,
    /// Sends its own cost (`gen_ai.usage.cost`): kept as `CostSource = client`, not priced.
    pub client_cost: bool,
}

const ALL: Carries = Carries {
    client_cost: false,
    content: true,
    cache_tokens: true,
    reasoning_tokens: true,
    seed: true,
    stop: true,
    tool_definitions: true,
    identity: true,
    ttft: true,
    embeddings_span: true,
    error_details: true,
    rollup_spans: false,
    duplicate_copies: false,
};

/// (fixture folder, expected Convention column, what it carries).
#[rustfmt::skip]
pub const TABLE: &[(&str, &str, Carries)] = &[
    ("otel-latest-span_only", "otel_genai_attributes", Carries { cache_tokens: false, reasoning_tokens: false, tool_definitions: false, ttft: false, ..ALL }),
    ("otel-latest-event_only", "otel_genai_details_event", Carries { cache_tokens: false, reasoning_tokens: false, tool_definitions: false, ttft: false, ..ALL }),
    ("otel-latest-span_and_event", "otel_genai_attributes", Carries { cache_tokens: false, reasoning_tokens: false, tool_definitions: false, ttft: false, ..ALL }),
    ("otel-legacy-content", "otel_genai_message_events", Carries { cache_tokens: false, reasoning_tokens: false, stop: false, tool_definitions: false, ttft: false, embeddings_span: false, ..ALL }),
    ("otel-legacy-no_content", "otel_genai_message_events", Carries { content: false, cache_tokens: false, reasoning_tokens: false, stop: false, tool_definitions: false, ttft: false, embeddings_span: false, ..ALL }),
    ("openinference-default", "openinference", ALL),
    ("openinference-genai_semconv", "openinference", ALL),
    ("openllmetry-attributes", "openllmetry", Carries { seed: false, stop: false, ..ALL }),
    // Events mode: content in per-message log records, no tool definitions; the streamed completion's
    // log record is attached to the parent span (an OpenLLMetry bug) and joined from there.
    ("openllmetry-events", "otel_genai_message_events", Carries { seed: false, stop: false, tool_definitions: false, ..ALL }),
    ("openlit", "openlit", Carries { client_cost: true, reasoning_tokens: false, tool_definitions: false, error_details: false, ..ALL }),
    ("logfire-v2", "logfire", Carries { cache_tokens: false, reasoning_tokens: false, ttft: false, ..ALL }),
    ("logfire-v1", "logfire", Carries { cache_tokens: false, reasoning_tokens: false, ttft: false, ..ALL }),
    // ai 6 `experimental_telemetry` (INTERNAL `ai.*` spans, no `gen_ai.operation.name`); OpenAI's `user`
    // field is not recorded. Outer `ai.generateText` / `ai.streamText` / `ai.embedMany` spans: rollups.
    ("vercel-ai-v6", "vercel_ai", Carries { rollup_spans: true, ..ALL }),
    // langchain-openai 1.x through an LCEL chain, OpenInference's LangChain instrumentation: the LLM span
    // (ChatOpenAI) is the call, CHAIN/PROMPT spans are not. No TTFT event; embeddings make no span.
    ("langchain-openinference", "openinference", Carries { ttft: false, embeddings_span: false, ..ALL }),
    // The same + OpenInference's openai instrumentation underneath: every chat call is recorded twice (the
    // ChatOpenAI span and the openai ChatCompletion span, siblings under the app span, time-nested, see
    // tests/clients/double-instrumentation.md). Expected: exactly one counted row per call, with the TTFT of the openai copy.
    ("langchain-openinference-double", "openinference", Carries { duplicate_copies: true, ..ALL }),
    // @opentelemetry/instrumentation-openai 0.21.0 (Node): gen_ai.* span attributes + content as log events
    // (`event.name` attribute, like otel-legacy). No seed, cache/reasoning tokens, tool definitions, TTFT;
    // no identity mechanism of its own.
    ("otel-js-openai", "otel_genai_message_events", Carries { cache_tokens: false, reasoning_tokens: false, seed: false, tool_definitions: false, identity: false, ttft: false, ..ALL }),
];

/// Splits rows into (calls, rollups, duplicates): `IsRollup` rows repeat the usage of the calls they wrap
/// and are matched to scenarios separately, by [`check_rollups`]; `DuplicateOf` rows are second
/// recordings of a call, checked by [`check_duplicates`].
pub fn split_rollups(rows: Vec<LlmCallRow>) -> (Vec<LlmCallRow>, Vec<LlmCallRow>, Vec<LlmCallRow>) {
    let (duplicates, rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| !r.duplicate_of.is_empty());
    let (calls, rollups) = rows.into_iter().partition(|r| !r.is_rollup);
    (calls, rollups, duplicates)
}

/// Checks the duplicate rows of one run: none unless the convention records calls twice; otherwise
/// exactly one per chat call, pointing at it, in its trace, marked `IsRollup`.
pub fn check_duplicates(duplicates: &[LlmCallRow], calls: &[LlmCallRow], carries: Carries, sc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    if !carries.duplicate_copies {
        for d in duplicates {
            bad.push(format!("unexpected DuplicateOf row: span {:?} {} of {}", d.span_name, d.span_id, d.duplicate_of));
        }
        return bad;
    }
    for call in calls.iter().filter(|c| c.operation == "chat") {
        let name = try_scenario_of(call, sc).unwrap_or("?");
        let copies: Vec<&LlmCallRow> = duplicates.iter().filter(|d| d.duplicate_of == call.span_id).collect();
        let [copy] = copies.as_slice() else {
            bad.push(format!("{name}: {} DuplicateOf rows for call span {:?}, want 1", copies.len(), call.span_name));
            continue;
        };
        if !copy.is_rollup || copy.trace_id != call.trace_id || copy.scope_name == call.scope_name {
            bad.push(format!(
                "{name}: duplicate {:?} not an IsRollup copy by another layer in the call's trace",
                copy.span_name
            ));
        }
    }
    let counted = calls.iter().filter(|c| c.operation == "chat").count();
    if duplicates.len() != counted {
        bad.push(format!("{} DuplicateOf rows for {counted} chat calls", duplicates.len()));
    }
    bad
}

/// Checks the `IsRollup` rows of one run against its calls: none unless the convention has rollup
/// spans; otherwise exactly one per call, of the same scenario and operation, being the call's parent
/// span, and carrying the same usage (which is why they must never be summed).
pub fn check_rollups(rollups: &[LlmCallRow], calls: &[LlmCallRow], carries: Carries, sc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    if !carries.rollup_spans {
        for r in rollups {
            bad.push(format!("unexpected IsRollup row: span {:?} {}", r.span_name, r.span_id));
        }
        return bad;
    }
    if rollups.len() != calls.len() {
        bad.push(format!("{} IsRollup rows for {} calls, want one per call", rollups.len(), calls.len()));
    }
    for call in calls {
        let name = try_scenario_of(call, sc).unwrap_or("?");
        let parents: Vec<&LlmCallRow> =
            rollups.iter().filter(|r| r.trace_id == call.trace_id && r.span_id == call.parent_span_id).collect();
        let [parent] = parents.as_slice() else {
            bad.push(format!(
                "{name}: call span {:?} has {} IsRollup parent rows, want 1",
                call.span_name,
                parents.len()
            ));
            continue;
        };
        let mut expect = |what: &str, ok: bool, got: &dyn std::fmt::Debug| {
            if !ok {
                bad.push(format!("{name}.rollup.{what}: got {got:?}"));
            }
        };
        expect("scenario", try_scenario_of(parent, sc) == Some(name), &parent.span_name);
        expect("is_rollup", parent.is_rollup, &parent.is_rollup);
        expect("operation", parent.operation == call.operation, &parent.operation);
        expect("convention", parent.convention == call.convention, &parent.convention);
        expect("request_model", parent.request_model == call.request_model, &parent.request_model);
        expect("status", (parent.status_code == "Error") == (call.status_code == "Error"), &parent.status_code);
        expect(
            "usage",
            (parent.input_tokens, parent.output_tokens) == (call.input_tokens, call.output_tokens),
            &(parent.input_tokens, parent.output_tokens),
        );
        expect(
            "identity",
            (&parent.session_id, &parent.user_id) == (&call.session_id, &call.user_id),
            &(&parent.session_id, &parent.user_id),
        );
    }
    bad
}

/// Which scenario a row belongs to (`None` when nothing identifies it).
pub fn try_scenario_of<'a>(row: &LlmCallRow, sc: &'a Value) -> Option<&'a str> {
    if row.operation == "embeddings" {
        return Some("embed");
    }
    if row.request_model == sc["failing_model"].as_str().unwrap() {
        return Some("error");
    }
    for (name, s) in sc["scenarios"].as_object().unwrap() {
        if s["response"]["id"].as_str() == Some(row.response_id.as_str()) {
            return Some(name);
        }
    }
    // No response id recorded (some streaming paths): the request's max_tokens is unique per scenario.
    let max = row.request_params.iter().find(|(k, _)| k == "max_tokens").map(|(_, v)| v.as_str()).unwrap_or("");
    for (name, s) in sc["scenarios"].as_object().unwrap() {
        // (A row without max_tokens must not match the embeddings scenario, which has none either.)
        if max.parse::<u64>().ok().is_some_and(|m| Some(m) == s["request"]["max_tokens"].as_u64()) {
            return Some(name);
        }
    }
    None
}

/// Which scenario a row belongs to; panics when nothing identifies it.
pub fn scenario_of<'a>(row: &LlmCallRow, sc: &'a Value) -> &'a str {
    try_scenario_of(row, sc).unwrap_or_else(|| panic!("no scenario for row {row:#?}"))
}

fn param<'a>(row: &'a LlmCallRow, key: &str) -> Option<&'a str> {
    row.request_params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn f(v: &Value) -> String {
    promptlog_ingest::normalize::format_f64(v.as_f64().unwrap())
}

/// The cost a scenario's call must have: worked out from the per-million prices written in the
/// scenario (from the bundled genai-prices data), for `[input (cache reads included), cache reads,
/// output]` tokens; a scenario without prices (a made-up model) must be `unpriced`.
pub fn check_cost(
    row: &LlmCallRow,
    name: &str,
    carries: Carries,
    price: &Value,
    [input, cached, output]: [u64; 3],
) -> Vec<String> {
    let mut bad = Vec::new();
    if carries.client_cost && name != "error" {
        // The client's figure, exactly as it sent it.
        let sent = row.span_attributes.iter().find(|(k, _)| k == "gen_ai.usage.cost").and_then(|(_, v)| v.parse().ok());
        if row.cost_source != "client" || sent.is_none() || row.cost_usd != sent {
            bad.push(format!("{name}.cost: got {:?} {:?}, want the client's {sent:?}", row.cost_usd, row.cost_source));
        }
        return bad;
    }
    if price.is_null() {
        if (row.cost_source.as_str(), row.cost_usd) != ("unpriced", None) {
            bad.push(format!("{name}.cost: got {:?} {:?}, want unpriced", row.cost_source, row.cost_usd));
        }
        return bad;
    }
    let p = |k: &str| price[k].as_f64().unwrap();
    let want =
        ((input - cached) as f64 * p("input") + cached as f64 * p("cache_read") + output as f64 * p("output")) / 1e6;
    let ok = row.cost_usd.is_some_and(|c| (c - want).abs() <= want * 1e-12);
    if !ok || row.cost_source != "price_table" {
        bad.push(format!("{name}.cost: got {:?} {:?}, want {want} price_table", row.cost_usd, row.cost_source));
    }
    let entry = price["_entry"].as_str().unwrap().split(' ').next().unwrap();
    if row.price_model != entry {
        bad.push(format!("{name}.price_model: got {:?}, want {entry:?}", row.price_model));
    }
    bad
}

/// Checks one row against its scenario; returns the list of mismatches.
pub fn check(row: &LlmCallRow, name: &str, carries: Carries, sc: &Value) -> Vec<String> {
    let s = &sc["scenarios"][name];
    let (req, resp) = (&s["request"], &s["response"]);
    let mut bad = Vec::new();
    let mut expect = |what: &str, ok: bool, got: &dyn std::fmt::Debug| {
        if !ok {
            bad.push(format!("{name}.{what}: got {got:?}"));
        }
    };
    expect("provider", row.provider == "openai", &row.provider);
    expect("request_model", row.request_model == req["model"].as_str().unwrap(), &row.request_model);
    if name == "error" {
        expect("status", row.status_code == "Error", &row.status_code);
        expect(
            "error_type",
            !row.error_type.is_empty() || !row.error_message.is_empty(),
            &(&row.error_type, &row.error_message),
        );
    } else {
        expect("status", row.status_code != "Error", &row.status_code);
        let usage = &resp["usage"];
        expect("input_tokens", row.input_tokens == usage["prompt_tokens"].as_u64().unwrap(), &row.input_tokens);
    }
    if name == "embed" {
        expect("operation", row.operation == "embeddings", &row.operation);
        let prompt = resp["usage"]["prompt_tokens"].as_u64().unwrap();
        bad.extend(check_cost(row, name, carries, &s["price_usd_per_mtok"], [prompt, 0, 0]));
        return bad;
    }
    expect("operation", row.operation == "chat", &row.operation);
    if name == "error" && !carries.error_details {
        return bad;
    }
    expect("temperature", param(row, "temperature") == Some(&f(&req["temperature"])), &param(row, "temperature"));
    expect("max_tokens", param(row, "max_tokens") == Some(&req["max_tokens"].to_string()), &param(row, "max_tokens"));
    expect("top_p", param(row, "top_p") == Some(&f(&req["top_p"])), &param(row, "top_p"));
    if carries.seed {
        expect("seed", param(row, "seed") == Some(&req["seed"].to_string()), &param(row, "seed"));
    }
    if carries.stop && req["stop"].is_array() {
        let stop: Option<Value> = param(row, "stop_sequences").and_then(|s| serde_json::from_str(s).ok());
        expect("stop_sequences", stop.as_ref() == Some(&req["stop"]), &param(row, "stop_sequences"));
    }
    if carries.identity {
        let id = &sc["identity"];
        expect("session", row.session_id == id["session_id"].as_str().unwrap(), &row.session_id);
        expect("user", row.user_id == id["user_id"].as_str().unwrap(), &row.user_id);
    }
    if carries.content {
        expect("system", row.system_instructions.contains(req["system"].as_str().unwrap()), &row.system_instructions);
        expect("prompt", row.input_text.contains(req["user"].as_str().unwrap()), &row.input_text);
    }
    if name == "error" {
        bad.extend(check_cost(row, name, carries, &s["price_usd_per_mtok"], [0, 0, 0]));
        return bad;
    }
    let usage = &resp["usage"];
    // What the row is priced from: the usage the instrumentation carries.
    let cached = if carries.cache_tokens { usage["cached_tokens"].as_u64().unwrap() } else { 0 };
    let tokens = [usage["prompt_tokens"].as_u64().unwrap(), cached, usage["completion_tokens"].as_u64().unwrap()];
    let cost = check_cost(row, name, carries, &s["price_usd_per_mtok"], tokens);
    // The worked figure, stated literally in the scenario (not derived from the price table above).
    if let Some(want) = s["expected_cost_usd"].as_f64().filter(|_| !carries.client_cost) {
        expect("expected_cost_usd", row.cost_usd.is_some_and(|c| (c - want).abs() < 1e-12), &row.cost_usd);
    }
    expect(
        "response_model",
        row.response_model == resp["model"].as_str().unwrap() || name == "stream",
        &row.response_model,
    );
    expect("output_tokens", row.output_tokens == usage["completion_tokens"].as_u64().unwrap(), &row.output_tokens);
    if carries.cache_tokens {
        expect(
            "cache_read",
            row.cache_read_input_tokens == usage["cached_tokens"].as_u64().unwrap(),
            &row.cache_read_input_tokens,
        );
    }
    if carries.reasoning_tokens && name != "stream" {
        expect(
            "reasoning",
            row.reasoning_output_tokens == usage["reasoning_tokens"].as_u64().unwrap(),
            &row.reasoning_output_tokens,
        );
    }
    if carries.content {
        match resp["content"].as_str() {
            Some(text) => expect("completion", row.output_text == text, &row.output_text),
            None => expect(
                "tool_call",
                row.output_messages.contains("\"tool_call\"") && row.output_messages.contains("get_weather"),
                &row.output_messages,
            ),
        }
    }
    if carries.tool_definitions && (name == "tool" || name == "tool_result") {
        expect("tool_definitions", row.tool_definitions.contains("get_weather"), &row.tool_definitions);
    }
    if carries.ttft && name == "stream" {
        expect("ttft", row.time_to_first_token.is_some_and(|t| t > 0.0 && t < 10.0), &row.time_to_first_token);
    }
    bad.extend(cost);
    bad
}
