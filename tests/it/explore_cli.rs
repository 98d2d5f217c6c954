//! The read side against the chDB-backed ClickHouse, with calls sent through a real collector:
//! the query layer (`promptlog::explore`) directly, and the `promptlog calls / show / session /
//! tail / export` commands run as subprocesses of the built binary; helpers in
//! `support/explore.rs`.

use promptlog::explore::{CallFilter, Reader, Status};
use promptlog_testkit::cell;

use crate::support::explore::{Call, Cli, post_spans, send, send_with_key};
use crate::support::stack::Stack;

fn ids(page: &[promptlog::explore::CallSummary]) -> Vec<String> {
    page.iter().map(|c| c.span_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_layer_filters_pages_and_reads_calls_and_sessions() {
    let stack = Stack::start().await;
    let calls = vec![
        Call { session: "s-1", question: "Where is my order 50%_off?".into(), ago_s: 50, ..Default::default() },
        Call { session: "s-1", question: "And the invoice?".into(), ago_s: 40, ..Default::default() },
        Call {
            service: "support",
            environment: "staging",
            model: "claude-sonnet-4",
            user: "bob",
            ago_s: 30,
            ..Default::default()
        },
        Call {
            error: true,
            prompt: ("greeter", "3"),
            answer: "Quota exceeded".into(),
            ago_s: 20,
            ..Default::default()
        },
    ];
    let sent = send(&stack, &calls).await;
    let reader = Reader::new(&stack.config).unwrap();
    let list = |f: CallFilter| {
        let reader = reader.clone();
        async move { ids(&reader.calls(&f).await.unwrap().calls) }
    };
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(list(CallFilter::default()).await, newest_first);
    assert_eq!(list(CallFilter { service: Some("support".into()), ..Default::default() }).await, [sent[2].clone()]);
    assert_eq!(list(CallFilter { status: Some(Status::Error), ..Default::default() }).await, [sent[3].clone()]);
    assert_eq!(list(CallFilter { search: Some("50%_OFF".into()), ..Default::default() }).await, [sent[0].clone()]);
    assert_eq!(list(CallFilter { search: Some("50%_ON".into()), ..Default::default() }).await, Vec::<String>::new());

    // Paging newest first with a cursor: every call once, in order, whatever the page size.
    let mut paged = Vec::new();
    let mut filter = CallFilter { limit: Some(3), ..Default::default() };
    loop {
        let page = reader.calls(&filter).await.unwrap();
        paged.extend(ids(&page.calls));
        match page.next_cursor {
            Some(next) => filter.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);
    let restricted = reader.for_project("other");
    assert!(restricted.calls(&CallFilter::default()).await.unwrap().calls.is_empty());
    let refused = restricted.calls(&CallFilter { project: Some("default".into()), ..Default::default() }).await;
    assert!(matches!(refused, Err(promptlog::explore::ExploreError::ProjectNotAllowed { .. })), "{refused:?}");

    let detail = reader.call(&sent[0], None).await.unwrap().expect("call 0");
    assert_eq!(detail.system_prompt, "Be brief.");
    assert_eq!(detail.input_messages[0].text, "Where is my order 50%_off?");
    let session = reader.session("s-1").await.unwrap().expect("session");
    assert_eq!(session.turns.len(), 2);
    assert_eq!(session.turns[1].user_text, "And the invoice?");
}

/// Span ids `a` in any order equal `b`.
fn same_set(mut a: Vec<String>, b: &[&String]) -> bool {
    let mut b: Vec<String> = b.iter().map(|s| s.to_string()).collect();
    a.sort();
    b.sort();
    a == b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_takes_every_filter_and_both_formats() {
    let stack = Stack::start().await;
    let calls = vec![
        Call {
            session: "s-1",
            question: "evil \u{1b}]0;owned\u{7}\u{1b}[2J title".into(),
            ago_s: 50,
            ..Default::default()
        },
        Call {
            service: "support",
            environment: "staging",
            model: "claude-sonnet-4",
            user: "bob",
            ago_s: 40,
            ..Default::default()
        },
        Call { error: true, prompt: ("greeter", "3"), ago_s: 30, ..Default::default() },
        Call { prompt: ("greeter", "4"), question: "a needle in the haystack".into(), ago_s: 20, ..Default::default() },
        Call { answer: "the completion has a NEEDLE too".into(), ago_s: 10, ..Default::default() },
        Call { ago_s: 3 * 3600, ..Default::default() },
    ];
    let s = send(&stack, &calls).await;
    // An embeddings call: another operation.
    let emb = promptlog_otlp::embeddings_span(promptlog_otlp::now_ns() - 5_000_000_000, 30, 7);
    let emb_id = const_hex::encode(&emb.span_id);
    post_spans(&stack, "shop", "prod", vec![emb], None).await;
    stack.wait_for_count("llm_calls", 7).await;
    let cli = Cli::new(&stack, "");

    let all = cli.spans(&[]).await;
    assert_eq!(all, [&emb_id, &s[4], &s[3], &s[2], &s[1], &s[0], &s[5]].map(String::clone), "newest first");
    let cases: Vec<(Vec<&str>, Vec<&String>)> = vec![
        (vec!["--since", "1h"], vec![&emb_id, &s[4], &s[3], &s[2], &s[1], &s[0]]),
        (vec!["--until", "1h"], vec![&s[5]]),
        (vec!["--service", "support"], vec![&s[1]]),
        (vec!["--environment", "staging"], vec![&s[1]]),
        (vec!["--model", "claude-sonnet-4"], vec![&s[1]]),
        (vec!["--user", "bob"], vec![&s[1]]),
        (vec!["--session", "s-1"], vec![&s[0]]),
        (vec!["--status", "error"], vec![&s[2]]),
        (vec!["--prompt", "greeter"], vec![&s[2], &s[3]]),
        (vec!["--prompt", "greeter", "--prompt-version", "4"], vec![&s[3]]),
        (vec!["--search", "needle"], vec![&s[3], &s[4]]),
        (vec!["--operation", "embeddings"], vec![&emb_id]),
        (vec!["--project", "default", "--service", "support"], vec![&s[1]]),
        (vec!["--project", "elsewhere"], vec![]),
        (vec!["--since", "1h", "--service", "shop", "--status", "unset", "--search", "needle"], vec![&s[3], &s[4]]),
    ];
    for (args, want) in cases {
        let got = cli.spans(&args).await;
        assert!(same_set(got.clone(), &want), "{args:?}: got {got:?}, want {want:?}");
    }

    // Paging: --limit and the printed cursor.
    let page: serde_json::Value =
        serde_json::from_str(&cli.ok(&["calls", "--format", "json", "--limit", "4"]).await).unwrap();
    let cursor = page["next_cursor"].as_str().expect("a next cursor").to_owned();
    let rest = cli.spans(&["--limit", "4", "--cursor", &cursor]).await;
    assert_eq!(rest, [s[1].clone(), s[0].clone(), s[5].clone()]);

    // The table: a header, every call, stored control characters never reach the terminal.
    let table = cli.ok(&["calls", "--format", "table"]).await;
    assert!(table.starts_with("TIME (UTC)") && table.contains("PROMPT"), "{table}");
    for id in all.iter() {
        assert!(table.contains(id.as_str()), "{id} missing from\n{table}");
    }
    assert!(table.contains("evil") && !table.contains('\u{1b}') && !table.contains('\u{7}'), "{table:?}");
    assert_eq!(table.lines().count(), 1 + all.len());

    // Bad input: a clear message and a non-zero exit code.
    assert!(cli.fails(&["calls", "--status", "broken"], 2).await.contains("not ok, error or unset"));
    assert!(cli.fails(&["calls", "--since", "yesterday"], 2).await.contains("--since"));
    assert!(cli.fails(&["calls", "--cursor", "1-x'-y"], 2).await.contains("invalid cursor"));
    assert!(cli.fails(&["calls", "--format", "xml"], 2).await.contains("xml"));
}

async fn post_scores(stack: &Stack, body: &serde_json::Value) {
    let url = format!("{}/v1/scores", stack.otlp_http_url());
    let reply = reqwest::Client::new().post(url).json(body).send().await.unwrap();
    let status = reply.status().as_u16();
    assert_eq!(status, 200, "{}", reply.text().await.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_and_session_print_the_conversation_with_tools_and_scores() {
    let stack = Stack::start().await;
    let calls = vec![
        Call {
            session: "conv-7",
            question: "Weather in Paris?".into(),
            answer: "18C and sunny.".into(),
            tool: true,
            ago_s: 30,
            ..Default::default()
        },
        Call {
            session: "conv-7",
            user: "alice",
            question: "And tomorrow?".into(),
            answer: "Rain.".into(),
            error: true,
            ago_s: 20,
            ..Default::default()
        },
    ];
    let s = send(&stack, &calls).await;
    let cli = Cli::new(&stack, "");
    let listed: serde_json::Value = serde_json::from_str(&cli.ok(&["calls", "--format", "json"]).await).unwrap();
    let trace = listed["calls"][1]["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(listed["calls"][1]["span_id"], s[0].as_str());
    post_scores(
        &stack,
        &serde_json::json!({"scores": [
            {"id": "thumb-1", "trace_id": trace, "span_id": s[0], "name": "thumbs", "data_type": "boolean",
             "value": false, "source": "end_user", "comment": "too vague", "author": "alice"},
            {"id": "sess-1", "session_id": "conv-7", "name": "resolved", "data_type": "categorical",
             "label": "yes", "source": "annotator"}
        ]}),
    )
    .await;
    stack.poll("SELECT ScoreId FROM scores FINAL", std::time::Duration::from_secs(30), |r| r.len() == 2).await;

    let text = cli.ok(&["show", &s[0]]).await;
    for part in [
        "── system ──\nBe brief.",
        "── user ──\nWeather in Paris?",
        "[tool call weather id=call-1] {\"city\":\"Paris\"}",
        "[tool result id=call-1] 18C and sunny",
        "═══ completion ═══\n── assistant, finish: stop ──\n18C and sunny.",
        "thumbs on span: 0 — too vague (end_user, alice)",
        "resolved on session:  yes",
        "session     conv-7",
        "gen_ai.request.temperature=0.2",
        "service.name=shop",
    ] {
        assert!(text.contains(part), "{part:?} missing from\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["show", &s[0], "--format", "json", "--trace", &trace]).await).unwrap();
    assert_eq!(json["input_messages"][1]["tool_calls"][0]["arguments"]["city"], "Paris");
    assert_eq!(json["output_messages"][0]["text"], "18C and sunny.");
    assert_eq!(json["usage"]["input_tokens"], 10);
    assert_eq!(json["parameters"]["max_tokens"], "256");
    assert_eq!(json["identity"]["session"], "conv-7");
    assert_eq!(json["scores"].as_array().unwrap().len(), 2, "{}", json["scores"]);
    let err: serde_json::Value = serde_json::from_str(&cli.ok(&["show", &s[1], "--format", "json"]).await).unwrap();
    assert_eq!(
        (err["summary"]["status"].as_str(), err["error_message"].as_str()),
        (Some("Error"), Some("rate limited"))
    );

    let text = cli.ok(&["session", "conv-7"]).await;
    let first = text.find("#1 ").expect("turn 1");
    let second = text.find("#2 ").expect("turn 2");
    assert!(first < second && text[first..second].contains("user: Weather in Paris?"), "{text}");
    assert!(text[second..].contains("user: And tomorrow?") && text[second..].contains("error: rate limited"), "{text}");
    assert!(text.starts_with("session conv-7: 2 turn(s), 1 error(s), users alice, 20 in / 10 out tokens"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["session", "conv-7", "--format", "json"]).await).unwrap();
    assert_eq!(json["turns"][0]["call"]["span_id"], s[0].as_str());
    assert_eq!(json["turns"][1]["completion"], "Rain.");
    assert_eq!(json["turns"][1]["output_messages"][0]["finish_reason"], "stop");
    assert_eq!(json["totals"]["calls"], 2);
    assert!((json["totals"]["latency_ms"].as_f64().unwrap() - 240.0).abs() < 1e-6, "{}", json["totals"]);
    assert_eq!(json["scores"].as_array().unwrap().len(), 2);

    assert!(cli.fails(&["show", "00000000deadbeef"], 3).await.contains("no call with span id"));
    assert!(cli.fails(&["session", "no-such-session"], 3).await.contains("no call in session"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_sees_only_its_project() {
    use crate::support::keys::{BETA_INGEST, BETA_READ_ONLY, write_key_file};
    const ACME_KEY: &str = "pl_test_acme_all_0123456789abcdef";
    let keys_dir = tempfile::tempdir().unwrap();
    let key_file = write_key_file(keys_dir.path());
    let stack = Stack::start_with(|c| {
        crate::support::keys::require_keys(c, &key_file);
        c.auth.dev_keys = promptlog::config::auth::parse_dev_keys(&format!("acme:{ACME_KEY}")).unwrap();
    })
    .await;
    let beta = send_with_key(&stack, &[Call { service: "beta-app", ..Default::default() }], Some(BETA_INGEST)).await;
    let acme = send_with_key(&stack, &[Call { service: "acme-app", ..Default::default() }], Some(ACME_KEY)).await;
    let cli = Cli::new(&stack, &format!("auth:\n  keys_file: {}\n", key_file.display()));

    assert!(same_set(cli.spans(&[]).await, &[&beta[0], &acme[0]]), "no key: the config's account sees all");
    assert_eq!(cli.spans(&["--api-key", BETA_READ_ONLY]).await, beta);
    assert!(
        cli.fails(&["calls", "--api-key", BETA_READ_ONLY, "--project", "acme"], 4)
            .await
            .contains("restricted to project \"beta\"")
    );
    assert!(cli.fails(&["calls", "--api-key", BETA_INGEST], 4).await.contains("lacks the \"read\" scope"));
    assert!(cli.fails(&["calls", "--api-key", "pl_nobody"], 4).await.contains("unknown API key"));
    assert!(cli.fails(&["show", &acme[0], "--api-key", BETA_READ_ONLY], 3).await.contains("no call"));
    let out =
        cli.command(&["calls", "--format", "json"]).env("PROMPTLOG_API_KEY", BETA_READ_ONLY).output().await.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&beta[0])
            && !String::from_utf8_lossy(&out.stdout).contains(&acme[0])
    );
}

/// Reads lines from `lines` until one contains `needle` (30 s at most); returns every line read.
async fn read_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    needle: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no line with {needle} within 30 s; got {seen:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("tail ended before {needle}; got {seen:?}"));
        let done = line.contains(needle);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("running").to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_each_new_call_once_until_ctrl_c() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let stack = Stack::start().await;
    let old = send(&stack, &[Call { ago_s: 5, ..Default::default() }]).await;
    let cli = Cli::new(&stack, "");
    let mut child = cli
        .command(&["tail", "--interval", "200ms", "--service", "shop"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(30), stderr.next_line()).await;
    assert!(matches!(&ready, Ok(Ok(Some(l))) if l.contains("waiting for new calls")), "{ready:?}");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();

    // A call sent after the tail started (it started before: it still lands after), another
    // service's call (filtered out), then one more.
    let first = send(&stack, &[Call { ago_s: 1, question: "first new".into(), ..Default::default() }]).await;
    let other = send(&stack, &[Call { service: "billing", ago_s: 1, ..Default::default() }]).await;
    let mut lines = read_until(&mut stdout, &first[0]).await;
    let second = send(&stack, &[Call { ago_s: 0, question: "second new".into(), ..Default::default() }]).await;
    lines.extend(read_until(&mut stdout, &second[0]).await);
    let count = |id: &str| lines.iter().filter(|l| l.contains(id)).count();
    assert_eq!((count(&first[0]), count(&second[0])), (1, 1), "{lines:?}");
    assert_eq!((count(&old[0]), count(&other[0])), (0, 0), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("first new") && l.contains("gpt-4o")), "{lines:?}");

    interrupt(&child);
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "Ctrl-C ends tail with success: {status}");
}

/// Parses the export summary line: (rows, bytes, chunks, largest chunk, writes, peak buffered).
fn export_summary(stderr: &str) -> (u64, u64, u64, u64, u64, u64) {
    let line = stderr.lines().find(|l| l.starts_with("exported ")).unwrap_or_else(|| panic!("no summary: {stderr}"));
    let n: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    (n[0], n[1], n[2], n[3], n[4], n[5])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_jsonl_csv_and_parquet_that_clickhouse_reads_back() {
    const CALLS: usize = 1500;
    let stack = Stack::start().await;
    for batch in 0..3 {
        let spans = (0..CALLS / 3)
            .map(|i| {
                Call {
                    question: format!("question {batch}-{i}: {}", "lorem ipsum ".repeat(20)),
                    ago_s: 30 + i as u64,
                    ..Default::default()
                }
                .span()
            })
            .collect();
        post_spans(&stack, "shop", "prod", spans, None).await;
    }
    post_spans(&stack, "other", "prod", vec![Call::default().span()], None).await;
    stack.wait_for_count("llm_calls", CALLS as u64 + 1).await;
    let cli = Cli::new(&stack, "");
    let dir = cli.dir.path();
    let path = |name: &str| dir.join(name).display().to_string();

    // JSON lines through a 128 KiB buffer: many times more rows than fit in it, received in chunks
    // and written as the buffer fills, never held whole.
    const BUFFER: u64 = 128 * 1024;
    let buffer = BUFFER.to_string();
    let jsonl = path("calls.jsonl");
    let args =
        ["export", "--since", "7d", "--service", "shop", "--format", "jsonl", "-o", &jsonl, "--buffer-bytes", &buffer];
    let out = cli.run(&args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (rows, bytes, chunks, largest, writes, peak) = export_summary(&stderr);
    let text = std::fs::read_to_string(dir.join("calls.jsonl")).unwrap();
    assert_eq!((rows, bytes), (CALLS as u64, text.len() as u64), "{stderr}");
    assert!(bytes > 10 * BUFFER && largest < bytes / 10 && chunks > 10, "{stderr}");
    assert!(peak > 0 && peak <= BUFFER && writes >= bytes / (BUFFER + largest), "{stderr}");
    let spans: std::collections::HashSet<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["SpanId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(spans.len(), CALLS);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["ServiceName"].as_str(), first["InputTokens"].as_u64()),
        (Some("shop"), Some(10)),
        "numbers stay numbers"
    );

    // CSV and Parquet, read back by ClickHouse itself.
    cli.ok(&["export", "--service", "shop", "--format", "csv", "-o", &path("calls.csv")]).await;
    cli.ok(&["export", "--service", "shop", "--format", "parquet", "-o", &path("calls.parquet")]).await;
    let stored = stack
        .query_json("SELECT count() AS n, sum(InputTokens) AS tokens, uniqExact(SpanId) AS spans, max(Timestamp) AS last FROM llm_calls WHERE ServiceName = 'shop'")
        .await;
    for (file, format) in [("calls.parquet", "Parquet"), ("calls.csv", "CSVWithNames")] {
        let sql = format!(
            "SELECT count() AS n, sum(InputTokens) AS tokens, uniqExact(SpanId) AS spans, max(Timestamp) AS last FROM file('{}', {format})",
            path(file)
        );
        assert_eq!(stack.query_json(&sql).await, stored, "{file}");
    }
    // Text, maps and arrays survive the round trip.
    let columns = "SpanId, InputText, SpanAttributes['gen_ai.request.model'] AS model, FinishReasons";
    let sql = format!("SELECT {columns} FROM file('{}', Parquet) ORDER BY SpanId", path("calls.parquet"));
    let from_file = stack.query_json(&sql).await;
    let stored =
        stack.query_json(&format!("SELECT {columns} FROM llm_calls WHERE ServiceName = 'shop' ORDER BY SpanId")).await;
    assert_eq!(from_file.len(), CALLS);
    assert_eq!(from_file, stored);
    assert!(from_file[0]["InputText"].as_str().unwrap().contains(": lorem ipsum"), "{:?}", from_file[0]);

    // The README's pandas example reads each file, and queries ClickHouse over plain HTTP.
    let stored_tokens = cell::<u64>(
        &stack.query_json("SELECT sum(InputTokens) AS t FROM llm_calls WHERE ServiceName = 'shop'").await[0],
        "t",
    );
    for file in ["calls.parquet", "calls.jsonl", "calls.csv"] {
        let out = tokio::process::Command::new(promptlog_testkit::python())
            .arg(promptlog_testkit::repo_root().join("examples/pandas_analysis.py"))
            .arg(path(file))
            .args([
                "--clickhouse",
                &stack.config.clickhouse.url,
                "--database",
                &stack.config.clickhouse.database,
                "--service",
                "shop",
            ])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["export"], summary["clickhouse"], "{file}");
        assert_eq!(summary["export"]["calls"], CALLS, "{file}");
        assert_eq!(summary["export"]["input_tokens"], stored_tokens, "{file}");
        assert_eq!(summary["export"]["per_model"]["gpt-4o"]["calls"], CALLS, "{file}");
    }

    // A limit, and a filter, apply to exports too.
    let out = cli.run(&["export", "--service", "other", "--format", "jsonl", "-o", &path("other.jsonl")]).await;
    assert_eq!(export_summary(&String::from_utf8_lossy(&out.stderr)).0, 1);
    assert_eq!(std::fs::read_to_string(dir.join("other.jsonl")).unwrap().lines().count(), 1);
    cli.ok(&["export", "--format", "jsonl", "--limit", "7", "-o", &path("seven.jsonl")]).await;
    assert_eq!(std::fs::read_to_string(dir.join("seven.jsonl")).unwrap().lines().count(), 7);
    assert!(crate::support::explore::files_in(dir, ".partial").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_interrupted_export_leaves_no_file() {
    use crate::support::explore::{BadProxy, files_in};
    let stack = Stack::start().await;
    let spans =
        (0..600).map(|i| Call { question: format!("q{i} {}", "x".repeat(300)), ..Default::default() }.span()).collect();
    post_spans(&stack, "shop", "prod", spans, None).await;
    stack.wait_for_count("llm_calls", 600).await;
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("calls.jsonl");
    let target_s = target.display().to_string();
    let args = ["export", "--format", "jsonl", "-o", target_s.as_str(), "--buffer-bytes", "1024"];
    let leftovers = || files_in(out_dir.path(), "calls");

    // The connection cut mid-body: an error, no file, and an existing file of that name untouched.
    let cut = BadProxy::start(&stack.config.clickhouse.url, Some(16 * 1024)).await;
    let via = |url: &str| {
        let mut cli = Cli::new(&stack, "");
        let yaml = std::fs::read_to_string(&cli.config).unwrap().replace(&stack.config.clickhouse.url, url);
        cli.config = cli.dir.path().join("via.yaml");
        std::fs::write(&cli.config, yaml).unwrap();
        cli
    };
    let cli = via(&cut.url);
    let stderr = cli.fails(&args, 1).await;
    assert!(stderr.contains("error: reading from ClickHouse"), "{stderr}");
    assert!(leftovers().is_empty(), "{:?}", leftovers());
    std::fs::write(&target, "previous export").unwrap();
    cli.fails(&args, 1).await;
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "previous export");
    assert_eq!(leftovers(), std::slice::from_ref(&target));
    std::fs::remove_file(&target).unwrap();

    // Ctrl-C while ClickHouse is still answering: exit 130 and the partial file is gone.
    let stall = BadProxy::start(&stack.config.clickhouse.url, None).await;
    let cli = via(&stall.url);
    let mut child = cli.command(&args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while files_in(out_dir.path(), ".partial").is_empty() {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "no partial file appeared");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    interrupt(&child);
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(leftovers().is_empty(), "{:?}", leftovers());

    // The same export straight to ClickHouse works (the failures above were the proxies').
    Cli::new(&stack, "").ok(&args).await;
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_read_as_the_reader_accounts_and_a_read_key_uses_its_projects_account() {
    use promptlog::config::{Config, ProjectReader, Secret};
    use promptlog::storage::clickhouse::{Store, grants, schema};
    use promptlog_testkit::{ChServer, Sql};
    const DB: &str = "promptlog_explore_acl";
    const ACME_KEY: &str = "pl_test_acme_reader_0123456789abcdef";
    let _shared = promptlog_testkit::gate::shared().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut config = Config::default();
    config.clickhouse.database = DB.into();
    config.clickhouse.user = "promptlog_collector".into();
    config.clickhouse.password = "writer-secret".into();
    config.access.reader_password = Secret("grafana-secret".into());
    let acme =
        ProjectReader { project: "acme".into(), user: "grafana_acme".into(), password: Secret("acme-secret".into()) };
    config.access.project_readers = vec![acme];

    // The admin prepares the data: calls of two projects (by hand: a collector cannot run here, the
    // server serves one account at a time) and a score on an acme call.
    let mut admin = ChServer::start_in(&data, None);
    let mut as_admin = config.clickhouse.clone();
    (as_admin.url, as_admin.user, as_admin.password) = (admin.url().to_owned(), "default".into(), "".into());
    schema::migrate(&Store::new(&as_admin)).await.unwrap();
    let sql = Sql::new(admin.url(), DB);
    sql.exec(
        "INSERT INTO llm_calls (Timestamp, ProjectId, TraceId, SpanId, ServiceName, RequestModel, SessionId, InputText) VALUES \
         (now64(9) - 3, 'acme', 'a1', 'aa01', 'acme-app', 'gpt-4o', 'acme-s', 'acme question 1'), \
         (now64(9) - 2, 'acme', 'a2', 'aa02', 'acme-app', 'gpt-4o', 'acme-s', 'acme question 2'), \
         (now64(9) - 1, 'beta', 'b1', 'bb01', 'beta-app', 'o3', 'beta-s', 'beta question')",
    )
    .await;
    sql.exec(
        "INSERT INTO scores (ProjectId, ScoreId, Version, Timestamp, TargetKind, TraceId, SpanId, Name, Value, Comment) \
         VALUES ('acme', 'sc1', 1, now64(9), 'span', 'a1', 'aa01', 'thumbs', 1, 'great')",
    )
    .await;
    admin.kill();
    let users_xml = tmp.path().join("users.xml");
    let mut for_grants = config.clone();
    for_grants.clickhouse.url = "http://unused".into();
    std::fs::write(&users_xml, grants::users_xml(&for_grants).unwrap()).unwrap();
    let cli_for = |url: &str| {
        Cli::with_yaml(&format!(
            "clickhouse:\n  url: {url}\n  database: {DB}\n  user: promptlog_collector\n  password: writer-secret\n\
             access:\n  reader_password: grafana-secret\n  project_readers:\n    - {{project: acme, user: grafana_acme, password: acme-secret}}\n"
        ))
    };
    let with_key = |cli: &Cli, args: &[&str]| {
        let mut c = cli.command(args);
        c.env("PROMPTLOG_API_KEYS", format!("acme:{ACME_KEY}"));
        c
    };

    // Grafana's read-only account, used when no key is given: every project.
    let server = ChServer::start_as(&data, &users_xml, "promptlog_grafana");
    let cli = cli_for(server.url());
    assert_eq!(cli.spans(&[]).await, ["bb01", "aa02", "aa01"]);
    cli.ok(&["export", "--format", "jsonl", "-o", &cli.dir.path().join("all.jsonl").display().to_string()]).await;
    assert_eq!(std::fs::read_to_string(cli.dir.path().join("all.jsonl")).unwrap().lines().count(), 3);
    drop(server);

    // With acme's read key the commands log in as acme's own user, whose row policies hold.
    let server = ChServer::start_as(&data, &users_xml, "grafana_acme");
    let cli = cli_for(server.url());
    let out = with_key(&cli, &["calls", "--format", "json", "--api-key", ACME_KEY]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let spans: Vec<&str> = page["calls"].as_array().unwrap().iter().map(|c| c["span_id"].as_str().unwrap()).collect();
    assert_eq!(spans, ["aa02", "aa01"]);
    let out = with_key(&cli, &["show", "aa01", "--format", "json", "--api-key", ACME_KEY]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let call: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (call["scores"][0]["name"].as_str(), call["scores"][0]["comment"].as_str()),
        (Some("thumbs"), Some("great"))
    );
    let out = with_key(&cli, &["session", "acme-s", "--api-key", ACME_KEY]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 turn(s)"), "{}", String::from_utf8_lossy(&out.stderr));
    let file = cli.dir.path().join("acme.jsonl").display().to_string();
    let out =
        with_key(&cli, &["export", "--format", "jsonl", "-o", &file, "--api-key", ACME_KEY]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2);
    // Without the key the commands use Grafana's account, which this server does not serve.
    assert!(cli.fails(&["calls"], 1).await.contains("AUTHENTICATION_FAILED"));
}
