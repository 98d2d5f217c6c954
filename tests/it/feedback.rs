//! The feedback API end to end: scores over gRPC (`promptlog.feedback.v1.FeedbackService`) and HTTP
//! (`POST /v1/scores`, `DELETE /v1/scores/{id}`) for a call made by the real official openai-v2
//! instrumentation (`tests/clients/feedback_app.py` in `.venvs/otel-latest`, against
//! `tests/clients/fake_openai.py`), and that app's own OTel `gen_ai.evaluation.result` log records,
//! all read back joined to the call with the README's join; idempotent resubmission, delete,
//! per-score errors next to kept scores, and the `feedback` scope.

use std::time::{Duration, Instant};

use promptlog_proto::feedback::v1::feedback_service_client::FeedbackServiceClient;
use promptlog_proto::feedback::v1::{
    DeleteScoreRequest, Score, ScoreDataType, ScoreSource, SpanTarget, SubmitScoresRequest, score::Target,
};
use promptlog_testkit::{Row, repo_root};
use serde_json::{Value, json};

use crate::real_clients::{fake_server_url, sql_str};
use crate::support::keys::{BETA, BETA_INGEST, entry, key_file_text, require_keys};
use crate::support::stack::Stack;

/// A key of project `beta` with the `feedback` scope only.
const BETA_FEEDBACK: &str = "pl_test_beta_feedback_0123456789abcdef";

/// The README's "a call with its scores" query: every call row offers one key per target kind, every
/// live score (FINAL: latest version, tombstones dropped) the key of its own target.
const CALL_SCORES: &str = "SELECT c.TraceId AS trace_id, c.SpanId AS span_id, s.ScoreId AS id, s.Name AS name, \
     s.TargetKind AS kind, s.Value AS value, s.Label AS label, s.Comment AS comment, s.Source AS source \
     FROM (SELECT *, arrayJoin([concat('span:', TraceId, ':', SpanId), concat('response:', ResponseId), \
     concat('trace:', TraceId), concat('session:', SessionId)]) AS ScoreKey FROM llm_calls WHERE NOT IsRollup) AS c \
     INNER JOIN (SELECT *, multiIf(TargetKind = 'span', concat('span:', TraceId, ':', SpanId), \
     TargetKind = 'response', concat('response:', ResponseId), TargetKind = 'trace', concat('trace:', TraceId), \
     concat('session:', SessionId)) AS ScoreKey FROM scores FINAL) AS s \
     ON c.ProjectId = s.ProjectId AND c.ScoreKey = s.ScoreKey";

/// The ids the app printed: the LLM call's span and its response id.
struct Call {
    trace_id: String,
    span_id: String,
    response_id: String,
}

async fn run_app(stack: &Stack) -> Call {
    let python = repo_root().join(".venvs/otel-latest/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh", python.display());
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let base_url = fake_server_url(&URL, "fake_openai.py");
    let out = tokio::process::Command::new(&python)
        .arg(repo_root().join("tests/clients/feedback_app.py"))
        .args(["--otlp-endpoint", &stack.otlp_http_url(), "--protocol", "http", "--openai-base-url", &base_url])
        .args(["--service-name", "feedback-app"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(repo_root())
        .output()
        .await
        .expect("run feedback_app.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "feedback_app.py: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().find_map(|l| l.strip_prefix("CALL ")).expect("a CALL line");
    let ids: Value = serde_json::from_str(line).unwrap();
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    Call { trace_id: s("trace_id"), span_id: s("span_id"), response_id: s("response_id") }
}

/// Polls `sql` until `done` holds for its rows (rows are held for the join window before they are
/// written, so a fixed sleep would be a guess); fails after 30 s with the last rows.
async fn wait_until(stack: &Stack, sql: &str, done: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    let rows = stack.poll(sql, Duration::from_secs(30), &done).await;
    assert!(done(&rows), "gave up waiting on {sql}: last rows {rows:?}");
    rows
}

fn score(id: &str, target: Target, name: &str, data_type: ScoreDataType, value: Option<f64>) -> Score {
    Score {
        id: id.into(),
        target: Some(target),
        name: name.into(),
        data_type: data_type as i32,
        value,
        source: ScoreSource::EndUser as i32,
        ..Default::default()
    }
}

async fn post_scores(stack: &Stack, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{}/v1/scores", stack.otlp_http_url())).json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let reply = req.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

fn by_id(rows: &[Row], id: &str) -> Option<Row> {
    rows.iter().find(|r| r["id"] == id).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_for_a_real_openai_v2_call_land_joined_over_grpc_http_and_otel_events() {
    let stack = Stack::start().await;
    let call = run_app(&stack).await;
    let call_sql = format!("SELECT SpanId FROM llm_calls WHERE ResponseId = {}", sql_str(&call.response_id));
    wait_until(&stack, &call_sql, |r| r.len() == 1).await;

    // The app's own gen_ai.evaluation.result log records: one in the call's span, one by response id.
    let joined = wait_until(&stack, CALL_SCORES, |r| r.len() >= 2).await;
    let relevance = joined.iter().find(|r| r["name"] == "relevance").expect("relevance joined");
    assert_eq!(
        (relevance["kind"].as_str(), relevance["span_id"].as_str()),
        (Some("span"), Some(call.span_id.as_str()))
    );
    assert_eq!((relevance["value"].as_f64(), relevance["label"].as_str()), (Some(0.25), Some("irrelevant")));
    assert_eq!(relevance["comment"], "The answer ignores the question.");
    assert_eq!(relevance["source"], "llm");
    let toxicity = joined.iter().find(|r| r["name"] == "toxicity").expect("toxicity joined by response id");
    assert_eq!((toxicity["kind"].as_str(), toxicity["source"].as_str()), (Some("response"), Some("code")));

    // gRPC: a span, a trace and a session target, and one invalid score that must not stop the others.
    let mut grpc = FeedbackServiceClient::connect(stack.otlp_grpc_url()).await.unwrap();
    let span = Target::Span(SpanTarget { trace_id: call.trace_id.to_uppercase(), span_id: call.span_id.clone() });
    let request = SubmitScoresRequest {
        scores: vec![
            score("g-span", span, "user_rating", ScoreDataType::Boolean, Some(1.0)),
            score("g-trace", Target::TraceId(call.trace_id.clone()), "helpfulness", ScoreDataType::Numeric, Some(4.0)),
            Score {
                label: "resolved".into(),
                ..score("g-session", Target::SessionId("sess-42".into()), "outcome", ScoreDataType::Categorical, None)
            },
            score("g-bad", Target::TraceId(call.trace_id.clone()), "user_rating", ScoreDataType::Boolean, Some(3.0)),
            score("", Target::ResponseId(call.response_id.clone()), "stars", ScoreDataType::Numeric, Some(5.0)),
        ],
    };
    let reply = grpc.submit_scores(request).await.unwrap().into_inner();
    assert_eq!(reply.rejected_scores, 1);
    assert_eq!(reply.errors.len(), 1);
    assert_eq!((reply.errors[0].index, reply.errors[0].id.as_str()), (3, "g-bad"));
    assert!(reply.errors[0].message.contains("boolean value must be 0 or 1, got 3"), "{}", reply.errors[0].message);
    let ids: Vec<(u32, &str)> = reply.accepted.iter().map(|a| (a.index, a.id.as_str())).collect();
    assert_eq!(&ids[..3], &[(0, "g-span"), (1, "g-trace"), (2, "g-session")]);
    let assigned = reply.accepted[3].id.clone();
    assert_eq!((reply.accepted[3].index, assigned.len()), (4, 32), "a collector-assigned id");

    // HTTP JSON: a response-id thumbs-down with a comment, and a score whose span id is malformed.
    let (status, body) = post_scores(
        &stack,
        None,
        &json!({"scores": [
            {"id": "h-resp", "response_id": call.response_id, "name": "user_rating", "data_type": "boolean",
             "value": false, "source": "end_user", "comment": "wrong answer", "author": "user-7",
             "metadata": {"ui": "thumbs"}},
            {"trace_id": call.trace_id, "span_id": "xyz", "name": "user_rating", "value": 1},
            {"name": "user_rating", "value": 1, "session_id": "s", "response_id": "r"},
            {"name": "user_rating", "value": "high", "session_id": "s"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], json!([{"index": 0, "id": "h-resp"}]));
    assert_eq!(body["rejected_scores"], 3);
    let messages: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(
        messages[0].starts_with("score 1 (\"user_rating\"): span target span_id must be 16 hex digits"),
        "{messages:?}"
    );
    assert!(messages[1].contains("more than one target"), "{messages:?}");
    assert!(messages[2].contains("score 3"), "{messages:?}");

    // A single score object, and nothing valid at all: 400 with the reason.
    let (status, body) = post_scores(&stack, None, &json!({"name": "user_rating", "value": 1})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("no target"), "{body}");

    let joined = wait_until(&stack, CALL_SCORES, |r| {
        ["g-span", "g-trace", "h-resp", assigned.as_str()].iter().all(|id| by_id(r, id).is_some())
    })
    .await;
    let thumbs_down = by_id(&joined, "h-resp").unwrap();
    assert_eq!((thumbs_down["value"].as_f64(), thumbs_down["comment"].as_str()), (Some(0.0), Some("wrong answer")));
    assert_eq!(by_id(&joined, "g-span").unwrap()["span_id"], call.span_id.as_str());
    assert!(by_id(&joined, "g-bad").is_none());
    let session =
        wait_until(&stack, "SELECT Label AS label FROM scores FINAL WHERE ScoreId = 'g-session'", |r| r.len() == 1)
            .await;
    assert_eq!(session[0]["label"], "resolved");

    // Resubmitting an id replaces the score (HTTP this time); deleting removes it; neither duplicates.
    let (status, _) = post_scores(
        &stack,
        None,
        &json!({"id": "g-span", "trace_id": call.trace_id, "span_id": call.span_id, "name": "user_rating",
                "data_type": "boolean", "value": 0, "source": "end_user"}),
    )
    .await;
    assert_eq!(status, 200);
    grpc.delete_score(DeleteScoreRequest { id: "h-resp".into() }).await.unwrap();
    let reply =
        reqwest::Client::new().delete(format!("{}/v1/scores/g-trace", stack.otlp_http_url())).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let live =
        "SELECT ScoreId AS id, Value AS value FROM scores FINAL WHERE ScoreId IN ('g-span', 'h-resp', 'g-trace')";
    let rows = wait_until(&stack, live, |r| r.len() == 1 && r[0]["value"].as_f64() == Some(0.0)).await;
    assert_eq!(rows[0]["id"], "g-span");
    let joined = stack.query_json(CALL_SCORES).await;
    assert_eq!(joined.iter().filter(|r| r["id"] == "g-span").count(), 1, "{joined:?}");
    assert!(by_id(&joined, "h-resp").is_none() && by_id(&joined, "g-trace").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_key_with_the_feedback_scope_may_send_scores_and_they_get_its_project() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.yaml");
    std::fs::write(&file, key_file_text(&entry("beta-fb", BETA_FEEDBACK, "feedback", None))).unwrap();
    let stack = Stack::start_with(|c| require_keys(c, &file)).await;
    let one = json!({"id": "k1", "trace_id": "0af7651916cd43dd8448eb211c80319c", "name": "user_rating", "value": 1});

    assert_eq!(post_scores(&stack, None, &one).await.0, 401);
    assert_eq!(post_scores(&stack, Some(BETA_INGEST), &one).await.0, 403);
    let delete = reqwest::Client::new()
        .delete(format!("{}/v1/scores/k1", stack.otlp_http_url()))
        .bearer_auth(BETA_INGEST)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status().as_u16(), 403);

    let mut grpc = FeedbackServiceClient::connect(stack.otlp_grpc_url()).await.unwrap();
    let request = || SubmitScoresRequest {
        scores: vec![score("k2", Target::SessionId("s".into()), "user_rating", ScoreDataType::Numeric, Some(1.0))],
    };
    assert_eq!(grpc.submit_scores(request()).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    let with_key = |key: &str| {
        let mut r = tonic::Request::new(request());
        r.metadata_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
        r
    };
    assert_eq!(grpc.submit_scores(with_key(BETA_INGEST)).await.unwrap_err().code(), tonic::Code::PermissionDenied);

    assert_eq!(post_scores(&stack, Some(BETA_FEEDBACK), &one).await.0, 200);
    grpc.submit_scores(with_key(BETA_FEEDBACK)).await.unwrap();
    let rows = wait_until(
        &stack,
        "SELECT ScoreId AS id, ProjectId AS project, KeyId AS key FROM scores FINAL ORDER BY id",
        |r| r.len() == 2,
    )
    .await;
    for row in &rows {
        assert_eq!((row["project"].as_str(), row["key"].as_str()), (Some(BETA), Some("beta-fb")), "{row:?}");
    }
    assert_eq!(stack.count("scores").await, 2, "refused requests stored nothing");
}

/// Sends 3 requests of 5 scores (every other one without an id) and collects the acknowledged ids.
async fn submit_batches(url: &str, tag: &str, acknowledged: &mut std::collections::BTreeSet<String>) {
    for request in 0..3 {
        let scores: Vec<Value> = (0..5)
            .map(|i| {
                let id = if i % 2 == 0 { format!("{tag}-{request}-{i}") } else { String::new() };
                json!({"id": id, "session_id": format!("sess-{request}"), "name": "user_rating", "value": i})
            })
            .collect();
        let reply = reqwest::Client::new()
            .post(format!("{url}/v1/scores"))
            .json(&json!({ "scores": scores }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200);
        let body: Value = reply.json().await.unwrap();
        for a in body["accepted"].as_array().unwrap() {
            assert!(acknowledged.insert(a["id"].as_str().unwrap().to_owned()), "ids are unique: {body}");
        }
    }
}

/// The collector is SIGKILLed after answering (the scores are in the spool, acknowledged) and before
/// writing (batches wait a minute): the restart writes every acknowledged score, once. Then it is killed
/// again and its acks are lost: the replay finds every score already stored and writes none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_scores_survive_a_sigkill_before_the_write_exactly_once() {
    use crate::faults::{Collector, DRAIN_TIMEOUT, clickhouse, count, database, tail};
    let _alone = promptlog_testkit::gate::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let ch = clickhouse(dir.path());
    let db = database("scores_kill");
    let mut collector = Collector::start(&ch, &db, dir.path(), &[("PROMPTLOG_BATCH_MAX_DELAY", "10m")]).await;
    let mut acknowledged = std::collections::BTreeSet::new();
    submit_batches(&collector.url(), "kill", &mut acknowledged).await;
    assert_eq!(acknowledged.len(), 15);
    collector.kill();
    assert_eq!(count(&ch, &db, "scores").await, Some(0), "killed before any write");

    // The extra setting comes after the default one, and the last one wins: drop it.
    collector.env.retain(|(k, v)| !(k == "PROMPTLOG_BATCH_MAX_DELAY" && v == "10m"));
    collector.restart().await;
    let sql = promptlog_testkit::Sql::new(ch.url(), &db);
    let stored_ids = || async {
        let rows = sql.rows("SELECT ScoreId AS id FROM scores ORDER BY id").await;
        rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while stored_ids().await.len() < 15 {
        if Instant::now() > deadline {
            let health = collector.health().await.unwrap_or_default();
            panic!("scores not written after the restart: {health}\n{}", tail(&collector.log));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let want: Vec<String> = acknowledged.iter().cloned().collect();
    assert_eq!(stored_ids().await, want, "every acknowledged score, once (raw rows, no FINAL)");

    // Written live, then killed with the acks lost: the restart replays these records.
    submit_batches(&collector.url(), "acks", &mut acknowledged).await;
    let want: Vec<String> = acknowledged.iter().cloned().collect();
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while stored_ids().await.len() < 30 {
        assert!(Instant::now() < deadline, "second scores not written:\n{}", tail(&collector.log));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    collector.kill();
    let data_dir = collector.env.iter().find(|(k, _)| k == "PROMPTLOG_DATA_DIR").unwrap().1.clone();
    let acks = std::path::Path::new(&data_dir).join("spool").join("acks.log");
    std::fs::remove_file(&acks).unwrap_or_else(|e| panic!("{}: {e}", acks.display()));
    collector.restart().await;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let health = collector.health().await.unwrap_or_default();
        let skipped = health["tables"]["scores"]["replay_skipped"].as_u64().unwrap_or(0);
        if health["spool"]["records"].as_u64() == Some(0) && skipped >= 15 {
            assert_eq!(skipped, 15, "every replayed score was found stored");
            break;
        }
        assert!(Instant::now() < deadline, "replay not done: {health}\n{}", tail(&collector.log));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stored_ids().await, want, "the replay wrote none twice");
}

/// The score key the writer computes in Rust equals what ClickHouse computes from the stored columns:
/// the same id and version is stored, a later version or a tombstone of it is not, nor another project's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_replay_keys_match_what_clickhouse_computes() {
    use std::collections::HashSet;

    use promptlog_ingest::rows::{Keyed, ScoreRow};
    let store = crate::support::stack::migrated_store("score_keys").await;
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let row = |id: &str, version: u64| ScoreRow {
        project_id: "default".into(),
        score_id: id.into(),
        version,
        timestamp: t,
        name: "user_rating".into(),
        ..ScoreRow::default()
    };
    let tombstone = ScoreRow { project_id: "default".into(), ..promptlog_ingest::scores::tombstone("b", t) };
    let stored = vec![row("a", 1), row("ünï ✓", 2), tombstone];
    store.insert("scores", &stored, "keys-scores").await.unwrap();
    let later = row("a", 2);
    let tombstone_of_a = ScoreRow { is_deleted: 1, ..row("a", 1) };
    let other = ScoreRow { project_id: "other".into(), ..row("a", 1) };
    let probe: Vec<&ScoreRow> = stored.iter().chain([&later, &tombstone_of_a, &other]).collect();
    let found = store.existing_keys("scores", &probe).await.unwrap();
    let want: HashSet<_> = stored.iter().map(Keyed::key).collect();
    assert_eq!(found, want);
}
