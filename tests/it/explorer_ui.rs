//! The built-in explorer in a real headless browser (Debian's chromium over CDP) against a real
//! collector + ClickHouse (chDB) stack, with traffic sent over OTLP: list, filters, search,
//! keyboard navigation, a call page, its session, a thumbs-down stored in `scores`; a hostile
//! prompt shown as text and never run; and, over plain HTTP, the security headers and the key
//! requirements ([`http`]). Screenshots go to `<target>/explorer-screenshots/<test>/` (printed);
//! `PROMPTLOG_UPDATE_SCREENSHOT=1` also copies the list view to `examples/explorer.png`.

use std::path::Path;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::Span;
use promptlog_otlp::{chat_attrs, kv, kv_f64, now_ns, resource, span, traces_request};
use serde_json::json;

use crate::support::browser::{Chromium, click_then, eval, screenshot, screenshot_dir, wait_until};
use crate::support::keys::{self, BETA, BETA_INGEST, BETA_READ_ONLY};
use crate::support::sdk;
use crate::support::stack::Stack;

/// Over plain HTTP: the security headers, keys and scopes, the `Host` check.
mod http;

/// Grafana base URL the explorer links traces to in these tests.
const GRAFANA: &str = "http://grafana.test:3000";
/// The session of the multi-turn conversation.
const SESSION: &str = "trip-42";
/// The conversation's service.
const TRAVEL: &str = "travel-agent";
/// The comment sent with the thumbs-down.
const COMMENT: &str = "Wrong hotel: it is full in May";

/// A v1.37 chat span with its content as JSON-string attributes.
fn chat(
    model: &str,
    at_ns: u64,
    ms: u64,
    tokens: (u64, u64),
    system: &str,
    input: serde_json::Value,
    output: serde_json::Value,
) -> Span {
    let mut a = chat_attrs("openai", model, tokens.0, tokens.1);
    if !system.is_empty() {
        a.push(kv("gen_ai.system_instructions", json!([{"type": "text", "content": system}]).to_string()));
    }
    a.push(kv("gen_ai.input.messages", input.to_string()));
    a.push(kv("gen_ai.output.messages", output.to_string()));
    a.push(kv_f64("gen_ai.response.time_to_first_chunk", 0.12));
    span(&format!("chat {model}"), at_ns, ms, a)
}

fn user(text: &str) -> serde_json::Value {
    json!({"role": "user", "parts": [{"type": "text", "content": text}]})
}

fn assistant(text: &str) -> serde_json::Value {
    json!({"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"})
}

/// The three turns of [`SESSION`] (a tool call, its result, a follow-up), oldest first, `step_ns`
/// apart from `start_ns`.
fn conversation(start_ns: u64, step_ns: u64) -> Vec<Span> {
    let system = "You are a travel assistant. Use the tools.";
    let ask = user("Find me a hotel in Lisbon for May 3.");
    let call = json!({"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "find_hotels",
        "arguments": {"city": "Lisbon", "date": "2026-05-03"}}], "finish_reason": "tool_calls"});
    let result = json!({"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
        "response": [{"name": "Hotel Lisboa Plaza", "price_eur": 180}]}]});
    let answer = assistant("Hotel Lisboa Plaza has a room for 180 EUR a night.");
    let turns = [
        (json!([ask]), json!([call]), (60, 18), 900),
        (json!([ask, call, result]), json!([answer]), (140, 22), 1300),
        (
            json!([ask, call, result, answer, user("Is breakfast included?")]),
            json!([assistant("Yes, breakfast is included.")]),
            (180, 9),
            700,
        ),
    ];
    turns
        .into_iter()
        .enumerate()
        .map(|(i, (input, output, tokens, ms))| {
            let mut s = chat("gpt-4o", start_ns + i as u64 * step_ns, ms, tokens, system, input, output);
            s.attributes.push(kv("gen_ai.conversation.id", SESSION));
            s.attributes.push(kv("user.id", "dana"));
            s
        })
        .collect()
}

/// The rendered text of the element with id `id`.
async fn inner_text(page: &chromiumoxide::Page, id: &str) -> String {
    eval(page, &format!("document.getElementById('{id}').innerText")).await.as_str().unwrap_or("").to_owned()
}

/// Waits until `llm_calls` holds `n` rows (calls are held for the join window first).
async fn wait_for_calls(stack: &Stack, n: u64) {
    stack.wait_for_count("llm_calls", n).await;
}

async fn start_stack(tweak: impl FnOnce(&mut promptlog::config::Config)) -> Stack {
    Stack::start_with(|c| {
        c.ui.enabled = true;
        c.ui.grafana_url = GRAFANA.into();
        tweak(c);
    })
    .await
}

/// A key of [`BETA`] with both the `read` and the `feedback` scope.
const BETA_READ_FEEDBACK: &str = "pl_test_beta_read_feedback_0123456789abcdef";

/// A stack requiring the keys of [`keys::key_file_text`] plus [`BETA_READ_FEEDBACK`] (file in `dir`).
async fn start_stack_with_keys(dir: &Path) -> Stack {
    let file = dir.join("keys.yaml");
    let extra = keys::entry("beta-ui", BETA_READ_FEEDBACK, "read, feedback", None);
    std::fs::write(&file, keys::key_file_text(&extra)).unwrap();
    start_stack(|c| keys::require_keys(c, &file)).await
}

/// Sends one call of project [`BETA`] over OTLP/HTTP with its ingest key, waits until it is stored
/// and returns its trace and span ids.
async fn send_beta_call(stack: &Stack) -> (String, String) {
    let s = chat(
        "gpt-4o",
        now_ns() - 1_000_000_000,
        200,
        (5, 2),
        "",
        json!([user("beta's question")]),
        json!([assistant("ok")]),
    );
    let ids = (const_hex::encode(&s.trace_id), const_hex::encode(&s.span_id));
    let body = sdk::Enc::Proto.encode(&traces_request(resource("beta-svc", "prod"), vec![s]));
    let auth = format!("Bearer {BETA_INGEST}");
    let headers = [("content-type", "application/x-protobuf"), ("authorization", auth.as_str())];
    let reply = sdk::post(&stack.otlp_http_url(), "/v1/traces", &headers, body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    wait_for_calls(stack, 1).await;
    ids
}

/// `scores FINAL` rows matching `condition`, once there are any (20 s at most).
async fn stored_scores(stack: &Stack, columns: &str, condition: &str) -> Vec<promptlog_testkit::Row> {
    let sql = format!("SELECT {columns} FROM scores FINAL WHERE {condition} FORMAT JSONEachRow");
    stack.poll(&sql, Duration::from_secs(20), |rows| !rows.is_empty()).await
}

/// The span id of the first row of the last page of `n` rows collected in `paged`.
fn spans_first(paged: &[String], n: usize) -> &str {
    &paged[paged.len() - n]
}

/// True once the call page says its thumbs-down was stored.
const THUMBS_DOWN_SAVED: &str =
    "document.getElementById('feedback-status').textContent.startsWith('Thumbs down saved')";

/// Rows of the call list as the browser shows them: `[service, model, status, prompt]`.
const ROWS_JS: &str = "Array.from(document.querySelectorAll('tr.call-row')).map(r => \
    [r.cells[1].textContent, r.cells[2].textContent, r.cells[6].textContent, r.cells[7].textContent])";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_lists_filters_searches_opens_a_call_and_its_session_and_stores_a_thumbs_down() {
    let stack = start_stack(|_| {}).await;
    // Demo-like traffic over gRPC (3 rounds of 6 calls: every content encoding, an error, an
    // embeddings call), then the conversation over OTLP/HTTP.
    for i in 0..3 {
        let (traces, logs) = promptlog_otlp::round(i);
        sdk::grpc_logs(&stack.otlp_grpc_url(), logs).await.unwrap();
        sdk::grpc_traces(&stack.otlp_grpc_url(), traces).await.unwrap();
    }
    // Started after the demo's calls, so the list (and its screenshot) starts with the conversation.
    let turns = conversation(now_ns() - 600_000_000, 200_000_000);
    let (trace_2, span_2) = (const_hex::encode(&turns[1].trace_id), const_hex::encode(&turns[1].span_id));
    sdk::http_traces(&stack.otlp_http_url(), sdk::Enc::Proto, &traces_request(resource(TRAVEL, "demo"), turns)).await;
    wait_for_calls(&stack, 21).await;

    let shots = screenshot_dir("explorer_lists_filters_searches");
    let chromium = Chromium::launch().await;
    let page = chromium.open(&stack.ui_url()).await;

    // The list: every call of the last 24 h, newest first.
    wait_until(&page, "document.querySelectorAll('tr.call-row').length === 21", "all 21 calls listed").await;
    let times =
        eval(&page, "Array.from(document.querySelectorAll('tr.call-row td:first-child')).map(td => td.textContent)")
            .await;
    let times: Vec<String> = serde_json::from_value(times).unwrap();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let rows: Vec<[String; 4]> = serde_json::from_value(eval(&page, ROWS_JS).await).unwrap();
    assert_eq!(rows.iter().filter(|r| r[2] == "Error").count(), 3, "the demo's failed calls: {rows:?}");
    assert!(rows.iter().any(|r| r[0] == "support-bot" && r[3].starts_with("What is OpenTelemetry?")), "{rows:?}");
    let list_png = screenshot(&page, &shots, "01-list", false).await;
    if std::env::var_os("PROMPTLOG_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&list_png, Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/explorer.png")).unwrap();
    }

    // Paging: 21 calls in pages of 8, each call once, in the same order as the single page.
    let all_spans = "Array.from(document.querySelectorAll('tr.call-row')).map(r => r.dataset.spanId)";
    let single: Vec<String> = serde_json::from_value(eval(&page, all_spans).await).unwrap();
    page.evaluate("location.hash = '#/?since=24h&limit=8'").await.unwrap();
    let mut paged: Vec<String> = Vec::new();
    for (n, more) in [(8, true), (8, true), (5, false)] {
        let cond = format!(
            "document.querySelectorAll('tr.call-row').length === {n} && !document.getElementById('list-status').textContent.startsWith('Loading')"
        );
        wait_until(&page, &cond, "a page").await;
        let spans: Vec<String> = serde_json::from_value(eval(&page, all_spans).await).unwrap();
        assert!(spans.iter().all(|s| !paged.contains(s)), "a call repeated across pages");
        paged.extend(spans);
        assert_eq!(eval(&page, "Boolean(document.getElementById('older'))").await, json!(more));
        if more {
            // The next page has replaced this one once its first row is another call.
            let first = "document.querySelector('tr.call-row')";
            let replaced = format!("{first} && {first}.dataset.spanId !== '{}'", spans_first(&paged, n));
            click_then(&page, "#older", &replaced, "the next page").await;
        }
    }
    assert_eq!(paged, single);
    click_then(
        &page,
        "#newest",
        "document.querySelectorAll('tr.call-row').length === 8 && !location.hash.includes('cursor=')",
        "back to the newest page",
    )
    .await;
    page.evaluate("location.hash = '#/'").await.unwrap();
    wait_until(&page, "document.querySelectorAll('tr.call-row').length === 21", "all 21 calls listed again").await;

    // A filter: the model field.
    let model = page.find_element("#filter-model").await.unwrap();
    model.click().await.unwrap().type_str("claude-sonnet-4").await.unwrap().press_key("Enter").await.unwrap();
    wait_until(
        &page,
        "location.hash.includes('model=claude-sonnet-4') && document.querySelectorAll('tr.call-row').length === 3 \
        && !document.getElementById('list-status').textContent.startsWith('Loading')",
        "3 claude calls",
    )
    .await;
    let rows: Vec<[String; 4]> = serde_json::from_value(eval(&page, ROWS_JS).await).unwrap();
    // The list shows the response model (the dated snapshot the provider answered).
    assert!(
        rows.iter().all(|r| r[1].starts_with("claude-sonnet-4") && r[3].starts_with("Summarise this ticket.")),
        "{rows:?}"
    );
    screenshot(&page, &shots, "02-filter-model", false).await;

    // `/` focuses the search; a word of the completion and of later prompts finds those turns only.
    page.find_element("#filters-clear").await.unwrap().click().await.unwrap();
    wait_until(
        &page,
        "location.hash === '#/' && document.querySelectorAll('tr.call-row').length === 21",
        "filters cleared",
    )
    .await;
    let body = page.find_element("body").await.unwrap();
    body.press_key("/").await.unwrap();
    wait_until(&page, "document.activeElement && document.activeElement.id === 'search'", "`/` focuses the search")
        .await;
    body.type_str("lisboa").await.unwrap();
    body.press_key("Enter").await.unwrap();
    wait_until(
        &page,
        "location.hash.includes('q=lisboa') && document.querySelectorAll('tr.call-row').length === 2",
        "2 matches",
    )
    .await;
    let rows: Vec<[String; 4]> = serde_json::from_value(eval(&page, ROWS_JS).await).unwrap();
    assert!(rows.iter().all(|r| r[0] == TRAVEL), "{rows:?}");
    screenshot(&page, &shots, "03-search", false).await;

    // Keyboard: the newest match has the focus; `j` moves to the next (turn 2), Enter opens it.
    wait_until(&page, "document.activeElement.classList.contains('call-row')", "first row focused").await;
    body.press_key("j").await.unwrap();
    wait_until(&page, &format!("document.activeElement.dataset.spanId === '{span_2}'"), "j moves to turn 2").await;
    body.press_key("Enter").await.unwrap();
    wait_until(&page, "document.getElementById('messages') && document.getElementById('usage-table')", "the call page")
        .await;
    assert_eq!(eval(&page, "location.hash").await, json!(format!("#/call/{trace_2}/{span_2}")));
    let system = inner_text(&page, "system").await;
    assert!(system.contains("You are a travel assistant. Use the tools."), "{system}");
    let messages = inner_text(&page, "messages").await;
    for expected in [
        "USER",
        "Find me a hotel in Lisbon for May 3.",
        "ASSISTANT",
        "find_hotels",
        "\"city\": \"Lisbon\"",
        "TOOL",
        "Hotel Lisboa Plaza",
    ] {
        assert!(messages.contains(expected), "messages lack {expected:?}:\n{messages}");
    }
    let roles =
        eval(&page, "Array.from(document.querySelectorAll('#messages .message .role')).map(e => e.textContent)").await;
    assert_eq!(roles, json!(["user", "assistant", "tool"]));
    assert!(inner_text(&page, "completion").await.contains("Hotel Lisboa Plaza has a room for 180 EUR a night."));
    let usage = inner_text(&page, "usage").await;
    for expected in ["140", "22", "162", "120 ms", "stop"] {
        assert!(usage.contains(expected), "usage lacks {expected:?}:\n{usage}");
    }
    assert!(inner_text(&page, "params").await.contains("temperature"), "{}", inner_text(&page, "params").await);
    let identity = inner_text(&page, "identity").await;
    for expected in [TRAVEL, "demo", "dana", SESSION, &trace_2, &span_2, "default"] {
        assert!(identity.contains(expected), "identity lacks {expected:?}:\n{identity}");
    }
    assert!(inner_text(&page, "span-attributes").await.contains("gen_ai.request.model"));
    assert!(inner_text(&page, "resource-attributes").await.contains("service.name"));
    let grafana = eval(&page, "document.getElementById('grafana-link').href").await;
    let grafana = grafana.as_str().unwrap();
    assert!(grafana.starts_with(&format!("{GRAFANA}/explore?")) && grafana.contains(&trace_2), "{grafana}");
    assert!(inner_text(&page, "scores").await.contains("No score yet"));

    // Thumbs down with a comment: acknowledged in the page, then stored in `scores` for this span.
    page.find_element("#feedback-comment").await.unwrap().click().await.unwrap().type_str(COMMENT).await.unwrap();
    click_then(&page, "#thumbs-down", THUMBS_DOWN_SAVED, "saved").await;
    screenshot(&page, &shots, "04-call", true).await;
    let columns = "Name, Value, Comment, Source, DataType, ProjectId, TargetKind";
    let stored = stored_scores(&stack, columns, &format!("TraceId = '{trace_2}' AND SpanId = '{span_2}'")).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let s = &stored[0];
    assert_eq!(
        (s["Name"].as_str(), s["Value"].as_f64(), s["Comment"].as_str(), s["Source"].as_str()),
        (Some("user_rating"), Some(0.0), Some(COMMENT), Some("end_user"))
    );
    assert_eq!(
        (s["DataType"].as_str(), s["ProjectId"].as_str(), s["TargetKind"].as_str()),
        (Some("boolean"), Some("default"), Some("span"))
    );
    // Reloaded, the call page lists the score.
    page.reload().await.unwrap();
    wait_until(
        &page,
        "document.querySelectorAll('#scores-table .score-row').length === 1",
        "the score on the call page",
    )
    .await;
    assert!(inner_text(&page, "scores").await.contains(COMMENT));

    // Its session: three turns in order, each with its cost and latency, and the totals.
    page.find_element("#session-link").await.unwrap().click().await.unwrap();
    wait_until(&page, "document.querySelectorAll('#turns .turn').length === 3", "three turns").await;
    let turns = eval(&page, "Array.from(document.querySelectorAll('#turns .turn')).map(t => t.innerText)").await;
    let turns: Vec<String> = serde_json::from_value(turns).unwrap();
    assert!(
        turns[0].starts_with("Turn 1")
            && turns[0].contains("Find me a hotel in Lisbon")
            && turns[0].contains("find_hotels"),
        "{turns:?}"
    );
    for (turn, latency) in turns.iter().zip(["900 ms", "1300 ms", "700 ms"]) {
        assert!(turn.contains(latency), "per-turn latency {latency}: {turn}");
    }
    assert!(
        turns[2].contains("Is breakfast included?") && turns[2].contains("Yes, breakfast is included."),
        "{turns:?}"
    );
    assert!(turns.iter().all(|t| t.contains('$')), "per-turn cost: {turns:?}");
    let totals = inner_text(&page, "session-totals").await;
    assert!(totals.contains("3 calls") && totals.contains("380 in / 49 out") && totals.contains("2900 ms"), "{totals}");
    screenshot(&page, &shots, "05-session", true).await;
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_shows_a_hostile_prompt_as_text_and_runs_none_of_it() {
    let stack = start_stack(|_| {}).await;
    let payload = "<script>document.title='pwned';window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">\
                   <b id=injected>bold?</b>";
    let system = "</pre><script>window.__pwned=3</script>";
    let mut s = chat(
        "gpt-4o",
        now_ns() - 5_000_000_000,
        300,
        (12, 3),
        system,
        json!([user(payload)]),
        json!([assistant("<iframe src=\"javascript:window.__pwned=4\"></iframe>")]),
    );
    s.attributes.push(kv("gen_ai.conversation.id", "<svg onload=window.__pwned=5>"));
    s.attributes.push(kv("user.id", "\"><script>window.__pwned=6</script>"));
    let (trace, span_id) = (const_hex::encode(&s.trace_id), const_hex::encode(&s.span_id));
    sdk::http_traces(&stack.otlp_http_url(), sdk::Enc::Json, &traces_request(resource("<b>svc</b>", "demo"), vec![s]))
        .await;
    wait_for_calls(&stack, 1).await;

    let shots = screenshot_dir("explorer_hostile_prompt");
    let chromium = Chromium::launch().await;
    let page = chromium.open(&stack.ui_url()).await;
    wait_until(&page, "document.querySelectorAll('tr.call-row').length === 1", "the call listed").await;
    let prompt = eval(&page, "document.querySelector('tr.call-row td.prompt').textContent").await;
    assert!(prompt.as_str().unwrap().starts_with("<script>document.title='pwned'"), "{prompt}");
    page.find_element("tr.call-row").await.unwrap().click().await.unwrap();
    wait_until(&page, "document.getElementById('messages')", "the call page").await;
    assert_eq!(eval(&page, "location.hash").await, json!(format!("#/call/{trace}/{span_id}")));
    // Give any injected handler (an image error, an iframe load) time to have fired.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(eval(&page, "typeof window.__pwned").await, json!("undefined"), "injected code ran");
    let title = eval(&page, "document.title").await;
    assert!(title.as_str().unwrap().ends_with("promptlog explorer"), "{title}");
    let injected =
        eval(&page, "document.querySelectorAll('#view img, #view iframe, #view svg, #view script, #injected').length")
            .await;
    assert_eq!(injected, json!(0), "markup from the data became elements");
    let messages = eval(&page, "document.getElementById('messages').textContent").await;
    assert!(messages.as_str().unwrap().contains(payload), "the prompt is not shown literally: {messages}");
    let system_text = eval(&page, "document.getElementById('system').textContent").await;
    assert!(system_text.as_str().unwrap().contains(system), "{system_text}");
    let identity = eval(&page, "document.getElementById('identity').textContent").await;
    assert!(identity.as_str().unwrap().contains("\"><script>window.__pwned=6</script>"), "{identity}");
    screenshot(&page, &shots, "hostile-call", true).await;
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_on_the_page_asks_for_a_key_keeps_it_in_the_tab_and_rates_as_its_project() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack_with_keys(dir.path()).await;
    let (trace, span_id) = send_beta_call(&stack).await;
    let shots = screenshot_dir("explorer_with_keys");
    let chromium = Chromium::launch().await;
    let page = chromium.open(&stack.ui_url()).await;
    let login = |key: &'static str| {
        let page = &page;
        async move {
            wait_until(page, "!document.getElementById('login').hidden", "the key form").await;
            let field = page.find_element("#login-key").await.unwrap();
            field.click().await.unwrap().type_str(key).await.unwrap().press_key("Enter").await.unwrap();
        }
    };
    // An ingest-only key is sent back to the form with the reason.
    login(BETA_INGEST).await;
    wait_until(&page, "document.getElementById('login-error').textContent.includes('lacks the \"read\" scope')", "403")
        .await;
    screenshot(&page, &shots, "01-wrong-scope", false).await;
    // A read-only key reads (its project's call), and is kept in this tab only.
    let field = page.find_element("#login-key").await.unwrap();
    field.click().await.unwrap().type_str(BETA_READ_ONLY).await.unwrap().press_key("Enter").await.unwrap();
    wait_until(&page, "document.querySelectorAll('tr.call-row').length === 1", "beta's call").await;
    assert_eq!(eval(&page, "sessionStorage.getItem('promptlog.key')").await, json!(BETA_READ_ONLY));
    page.find_element("tr.call-row").await.unwrap().click().await.unwrap();
    wait_until(&page, "document.getElementById('identity')", "the call page").await;
    assert!(inner_text(&page, "identity").await.contains(BETA));
    // ... but cannot rate: the page says why, nothing is stored.
    click_then(
        &page,
        "#thumbs-down",
        "document.getElementById('feedback-status').textContent.includes('lacks the \"feedback\" scope')",
        "403",
    )
    .await;
    screenshot(&page, &shots, "02-read-only-cannot-rate", false).await;
    // Forget the key, use one with both scopes: the thumbs-down is stored under `beta`.
    page.find_element("#logout").await.unwrap().click().await.unwrap();
    login(BETA_READ_FEEDBACK).await;
    page.evaluate(format!("location.hash = '#/call/{trace}/{span_id}'")).await.unwrap();
    wait_until(&page, "document.getElementById('thumbs-down')", "the call page").await;
    click_then(&page, "#thumbs-down", THUMBS_DOWN_SAVED, "saved").await;
    let stored = stored_scores(&stack, "ProjectId, Value, Author", &format!("SpanId = '{span_id}'")).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        (stored[0]["ProjectId"].as_str(), stored[0]["Value"].as_f64(), stored[0]["Author"].as_str()),
        (Some(BETA), Some(0.0), Some("beta-ui"))
    );
    chromium.close().await;
}
