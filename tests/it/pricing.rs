//! Cost at ingest end to end, against a live collector: calls priced from the bundled genai-prices
//! data (the issue's two expected values), a client-sent cost kept, an override, an unpriced call
//! counted in `/metrics`; then a `pricing.data_file` changed under a running collector (new calls get
//! the new prices, a broken file is ignored) and `reprice` bringing the stored rows up to date with a
//! ClickHouse mutation. Expected values are worked out by hand from the per-million prices.

use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use promptlog::config::pricing::OverrideConfig;
use promptlog::pricing::reprice::{RepriceRange, reprice};
use promptlog::storage::clickhouse::Store;
use promptlog_ingest::rows::LlmCallRow;
use promptlog_otlp::{kv, kv_f64, kv_i64, now_ns, resource, span, traces_request};
use promptlog_testkit::{LLM_CALL_COLUMNS, llm_call};
use prost::Message;

use crate::support::stack::Stack;

const WAIT: Duration = Duration::from_secs(60);

/// A chat span's attributes: provider, response model, the four token counts.
fn chat(provider: &str, model: &str, [input, output, read, write]: [i64; 4]) -> Vec<KeyValue> {
    vec![
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.provider.name", provider),
        kv("gen_ai.request.model", model),
        kv("gen_ai.response.model", model),
        kv_i64("gen_ai.usage.input_tokens", input),
        kv_i64("gen_ai.usage.output_tokens", output),
        kv_i64("gen_ai.usage.cache_read.input_tokens", read),
        kv_i64("gen_ai.usage.cache_creation.input_tokens", write),
    ]
}

/// Sends one span per `(name, attributes)`.
async fn send(stack: &Stack, calls: Vec<(&str, Vec<KeyValue>)>) {
    let now = now_ns();
    let spans = calls.into_iter().map(|(name, attrs)| span(name, now - 1_000_000_000, 100, attrs)).collect();
    let body = traces_request(resource("pricing-it", "test"), spans).encode_to_vec();
    let (status, _, reply) = stack.post_otlp("/v1/traces", "application/x-protobuf", body, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
}

/// Waits until `span` is stored and `done` accepts it (calls are held for the join window first).
async fn call_row(stack: &Stack, span: &str, done: impl Fn(&LlmCallRow) -> bool) -> LlmCallRow {
    let deadline = Instant::now() + WAIT;
    loop {
        let rows =
            stack.query_json(&format!("SELECT {LLM_CALL_COLUMNS} FROM llm_calls WHERE SpanName = '{span}'")).await;
        if let Some(row) = rows.into_iter().next().map(|r| llm_call(r).unwrap())
            && done(&row)
        {
            return row;
        }
        assert!(Instant::now() < deadline, "no matching row for {span} after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn metrics(stack: &Stack) -> String {
    reqwest::get(format!("{}/metrics", stack.otlp_http_url())).await.unwrap().text().await.unwrap()
}

/// Waits until `/metrics` has `line`.
async fn wait_for_metric(stack: &Stack, line: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = metrics(stack).await;
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no `{line}` in /metrics after {WAIT:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_usd(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no cost"));
    assert!((got - want).abs() <= want * 1e-12, "{what}: got {got}, want {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_priced_client_costs_kept_overrides_applied_and_unpriced_counted() {
    let stack = Stack::start_with(|c| {
        c.pricing.overrides = vec![OverrideConfig {
            model: "acme-llama-*".into(),
            provider: None,
            input: 0.5,
            output: 1.5,
            cache_read: None,
            cache_write: None,
        }];
    })
    .await;
    let mut client_cost = chat("openai", "gpt-4o-2024-08-06", [11, 7, 0, 0]);
    client_cost.push(kv_f64("gen_ai.usage.cost", 0.25));
    let mut unpriced_copy = chat("openai", "made-up-model-7", [3, 4, 0, 0]);
    unpriced_copy.push(kv("gen_ai.response.id", "chatcmpl-pricing-it-unpriced"));
    send(
        &stack,
        vec![
            ("gpt-4o", chat("openai", "gpt-4o-2024-08-06", [11, 7, 0, 0])),
            // 11 fresh + 5 read + 3 written = 19 input tokens, semconv style.
            ("sonnet", chat("anthropic", "claude-sonnet-4-20250514", [19, 7, 5, 3])),
            ("client", client_cost),
            ("override", chat("vllm", "acme-llama-3-70b", [1_000, 200, 0, 0])),
            ("unpriced", unpriced_copy.clone()),
            // A second recording of the same call (same response id): counted once in /metrics.
            ("unpriced-copy", unpriced_copy),
        ],
    )
    .await;

    let gpt = call_row(&stack, "gpt-4o", |_| true).await;
    assert_usd(gpt.cost_usd, 0.0000975, "gpt-4o: (11 x 2.50 + 7 x 10) / 1e6");
    assert_usd(gpt.input_cost_usd, 0.0000275, "gpt-4o input");
    assert_usd(gpt.output_cost_usd, 0.00007, "gpt-4o output");
    assert_eq!((gpt.cost_source.as_str(), gpt.price_model.as_str()), ("price_table", "openai/gpt-4o"));

    let sonnet = call_row(&stack, "sonnet", |_| true).await;
    assert_eq!((sonnet.input_tokens, sonnet.cache_read_input_tokens, sonnet.cache_write_input_tokens), (19, 5, 3));
    assert_usd(sonnet.cost_usd, 0.00015075, "sonnet: (11 x 3 + 5 x 0.30 + 3 x 3.75 + 7 x 15) / 1e6");
    assert_eq!(sonnet.price_model, "anthropic/claude-sonnet-4-0");

    let client = call_row(&stack, "client", |_| true).await;
    assert_eq!((client.cost_usd, client.cost_source.as_str(), client.input_cost_usd), (Some(0.25), "client", None));

    let over = call_row(&stack, "override", |_| true).await;
    assert_usd(over.cost_usd, (1_000.0 * 0.5 + 200.0 * 1.5) / 1e6, "override");
    assert_eq!((over.cost_source.as_str(), over.price_model.as_str()), ("override", "acme-llama-*"));

    let unpriced = call_row(&stack, "unpriced", |_| true).await;
    assert_eq!((unpriced.cost_usd, unpriced.cost_source.as_str()), (None, "unpriced"));
    let copy = call_row(&stack, "unpriced-copy", |_| true).await;
    assert_eq!(u8::from(unpriced.is_rollup) + u8::from(copy.is_rollup), 1, "one of the two copies counts the call");
    wait_for_metric(&stack, "promptlog_llm_calls_unpriced_total{provider=\"openai\",model=\"made-up-model-7\"} 1")
        .await;
}

/// A v2 price file pricing `house-model` at `input` / `output` USD per million tokens.
fn price_file(path: &Path, input: &str, output: &str) {
    let json = format!(
        r#"[{{"id":"house","name":"House","api_pattern":"https://house\\.example","models":[{{"id":"house-model","match":{{"equals":"house-model"}},"prices":{{"input_mtok":{input},"output_mtok":{output}}}}}]}}]"#
    );
    std::fs::write(path, json).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_data_file_is_reloaded_and_reprice_updates_stored_rows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prices.json");
    price_file(&file, "1", "2");
    let stack = Stack::start_with(|c| {
        c.pricing.data_file = Some(file.clone());
        c.pricing.reload_interval = Duration::from_millis(200);
    })
    .await;
    send(&stack, vec![("before", chat("house", "house-model", [1_000, 1_000, 0, 0]))]).await;
    let before = call_row(&stack, "before", |_| true).await;
    assert_usd(before.cost_usd, 0.003, "1k x 1 + 1k x 2");

    // Newer prices: picked up without a restart.
    price_file(&file, "10.5", "20.25");
    wait_for_metric(&stack, "promptlog_pricing_reloads_total 1").await;
    // A broken file is logged and counted; the new prices stay in use.
    std::fs::write(&file, "{ not json").unwrap();
    wait_for_metric(&stack, "promptlog_pricing_reload_errors_total 1").await;
    send(&stack, vec![("after", chat("house", "house-model", [1_000, 1_000, 0, 0]))]).await;
    let after = call_row(&stack, "after", |_| true).await;
    assert_usd(after.cost_usd, 0.03075, "1k x 10.5 + 1k x 20.25");

    // The stored "before" row still has the old price; reprice with the new data.
    price_file(&file, "10.5", "20.25");
    let pricer = stack.config.pricing.pricer().unwrap();
    let store = Store::new(&stack.config.clickhouse);
    let range = RepriceRange { since_ns: before.timestamp, until_ns: (now_ns() + 1) as i64 };
    let dry = reprice(&store, &pricer, range, true).await.unwrap();
    assert_eq!((dry.scanned, dry.changed, dry.mutations), (2, 1, 0));
    assert_usd(Some(dry.before_usd), 0.003, "dry run, before");
    assert_usd(Some(dry.after_usd), 0.03075, "dry run, after");
    assert_usd(call_row(&stack, "before", |_| true).await.cost_usd, 0.003, "a dry run changes nothing");
    let done = reprice(&store, &pricer, range, false).await.unwrap();
    assert_eq!((done.changed, done.mutations), (1, 1));
    let repriced = call_row(&stack, "before", |r| r.cost_usd != before.cost_usd).await;
    assert_usd(repriced.cost_usd, 0.03075, "repriced");
    assert_usd(repriced.input_cost_usd, 0.0105, "repriced input");
    assert_eq!((repriced.cost_source.as_str(), repriced.price_model.as_str()), ("price_table", "house/house-model"));
    // The dashboards' rollups follow: their cost sums equal the repriced rows again.
    for table in ["llm_calls_1m", "llm_calls_1h"] {
        let sql = format!(
            "SELECT round((SELECT sum(CostUsd) FROM {table}), 9) = round((SELECT sum(CostUsd) FROM llm_calls \
             WHERE NOT IsRollup), 9), round((SELECT sum(CostUsd) FROM {table}), 9), (SELECT sum(Calls) FROM {table})"
        );
        assert_eq!(stack.sql().text(&sql, None).await.trim(), "1\t0.0615\t2", "{table} after reprice");
    }
    // Idempotent: a second run finds nothing to change.
    let again = reprice(&store, &pricer, range, false).await.unwrap();
    assert_eq!((again.changed, again.mutations), (0, 0));
}
