//! Synthetic LLM traffic for the dashboard and alert tests: OTLP spans with the official GenAI
//! attributes, timestamps relative to now, and a few services shaped to trip (or not trip) each rule.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

pub const MIN: u64 = 60_000_000_000;
pub const SEC: u64 = 1_000_000_000;

pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// One LLM call to send as a span.
#[derive(Clone, Debug)]
pub struct Call {
    pub service: &'static str,
    pub env: &'static str,
    pub provider: &'static str,
    pub model: &'static str,
    pub user: String,
    pub session: String,
    /// Nanoseconds before now that the call started.
    pub ago_ns: u64,
    pub duration_ns: u64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub ttft_s: Option<f64>,
    pub cost_usd: Option<f64>,
    pub error: Option<&'static str>,
    pub prompt: String,
    pub completion: String,
    /// Managed prompt (`gen_ai.prompt.name`) and its version (`llm.prompt_template.version`).
    pub prompt_id: Option<(&'static str, &'static str)>,
}

impl Call {
    pub fn new(service: &'static str, env: &'static str, model: &'static str, ago_ns: u64) -> Call {
        Call {
            service,
            env,
            provider: if model.starts_with("claude") { "anthropic" } else { "openai" },
            model,
            user: "user-1".into(),
            session: String::new(),
            ago_ns,
            duration_ns: 1_200_000_000,
            input_tokens: 120,
            output_tokens: 40,
            ttft_s: Some(0.3),
            cost_usd: Some(0.001),
            error: None,
            prompt: format!("What does {service} need to know?"),
            completion: "Here is the answer.".into(),
            prompt_id: None,
        }
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, Value::StringValue(v.to_owned()))
}

fn span(c: &Call, n: u64, now: u64) -> Span {
    let start = now - c.ago_ns;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(n + 1).to_be_bytes());
    trace_id[8..].copy_from_slice(&start.to_be_bytes());
    let msg = |role: &str, text: &str| {
        serde_json::json!([{"role": role, "parts": [{"type": "text", "content": text}]}]).to_string()
    };
    let mut attributes = vec![
        s("gen_ai.operation.name", "chat"),
        s("gen_ai.provider.name", c.provider),
        s("gen_ai.request.model", c.model),
        s("gen_ai.response.model", c.model),
        kv("gen_ai.request.temperature", Value::DoubleValue(0.2)),
        kv("gen_ai.usage.input_tokens", Value::IntValue(c.input_tokens)),
        kv("gen_ai.usage.output_tokens", Value::IntValue(c.output_tokens)),
        kv(
            "gen_ai.response.finish_reasons",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::StringValue(if c.error.is_some() { "error" } else { "stop" }.into())),
                }],
            }),
        ),
        s("user.id", &c.user),
        s("gen_ai.input.messages", &msg("user", &c.prompt)),
        s("gen_ai.output.messages", &msg("assistant", &c.completion)),
    ];
    if !c.session.is_empty() {
        attributes.push(s("gen_ai.conversation.id", &c.session));
    }
    if let Some(t) = c.ttft_s {
        attributes.push(kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(t)));
    }
    if let Some(cost) = c.cost_usd {
        attributes.push(kv("gen_ai.usage.cost", Value::DoubleValue(cost)));
    }
    if let Some(e) = c.error {
        attributes.push(s("error.type", e));
    }
    if let Some((name, version)) = c.prompt_id {
        attributes.push(s("gen_ai.prompt.name", name));
        attributes.push(s("llm.prompt_template.version", version));
    }
    Span {
        trace_id: trace_id.to_vec(),
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: format!("chat {}", c.model),
        kind: 3, // CLIENT
        start_time_unix_nano: start,
        end_time_unix_nano: start + c.duration_ns,
        attributes,
        status: Some(Status {
            code: if c.error.is_some() { 2 } else { 1 },
            message: c.error.map(|e| format!("{e}: provider said no")).unwrap_or_default(),
        }),
        ..Default::default()
    }
}

/// OTLP requests (protobuf bodies) carrying `calls`, one ResourceSpans per (service, environment).
pub fn requests(calls: &[Call], chunk: usize) -> Vec<Vec<u8>> {
    let now = now_ns();
    calls
        .chunks(chunk)
        .enumerate()
        .map(|(ci, part)| {
            let mut by_resource: BTreeMap<(&str, &str), Vec<Span>> = BTreeMap::new();
            for (i, c) in part.iter().enumerate() {
                by_resource.entry((c.service, c.env)).or_default().push(span(c, (ci * chunk + i) as u64, now));
            }
            let resource_spans = by_resource
                .into_iter()
                .map(|((service, env), spans)| ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![s("service.name", service), s("deployment.environment.name", env)],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                    ..Default::default()
                })
                .collect();
            ExportTraceServiceRequest { resource_spans }.encode_to_vec()
        })
        .collect()
}

/// The managed prompts of the background traffic, by call number % 4 (one call in four has none).
pub const PROMPT_VERSIONS: [Option<(&str, &str)>; 4] =
    [Some(("support-answer", "1")), Some(("support-answer", "2")), Some(("summarise", "3")), None];

fn repeat(n: u64, f: impl Fn(u64) -> Call) -> Vec<Call> {
    (0..n).map(f).collect()
}

/// Background traffic over the last 6 hours (two services, two models, users and sessions), plus
/// one service per alert rule that must fire and neighbours that must stay quiet.
pub fn scenario() -> Vec<Call> {
    let mut calls = Vec::new();
    let models = ["gpt-4o", "claude-sonnet-4"];
    // Background: 240 calls, one every 85 s over the last 5 h 40 min (clear of the 6 h range's start,
    // which the rollup panels round up to a whole minute), on chat-api / rag-worker in prod / staging.
    calls.extend(repeat(240, |i| {
        let (service, env) = if i % 3 == 0 { ("rag-worker", "staging") } else { ("chat-api", "prod") };
        let mut c = Call::new(service, env, models[(i % 2) as usize], 30 * SEC + i * 85 * SEC);
        c.user = format!("user-{}", i % 8);
        c.session = format!("sess-{}", i % 10);
        c.duration_ns = (800 + (i % 7) * 300) * 1_000_000;
        c.input_tokens = 100 + (i as i64 % 50) * 10;
        c.output_tokens = 20 + (i as i64 % 30) * 5;
        c.ttft_s = Some(0.2 + (i % 5) as f64 * 0.05);
        c.prompt = if i % 40 == 7 {
            format!("Tell me about the purple elephant #{i}")
        } else {
            format!("Question {i}: what's new?")
        };
        c.completion = format!("Answer {i}.");
        if i % 25 == 3 {
            c.error = Some("RateLimitError");
        }
        c.prompt_id = PROMPT_VERSIONS[(i % 4) as usize];
        c
    }));
    // Error rate: svc-errors fails half of 30 recent calls; svc-few fails all of 5 (below min calls).
    calls.extend(repeat(30, |i| {
        let mut c = Call::new("svc-errors", "prod", "gpt-4o", (i + 1) * 15 * SEC);
        c.error = (i % 2 == 0).then_some("RateLimitError");
        c
    }));
    calls.extend(repeat(5, |i| {
        let mut c = Call::new("svc-few", "prod", "gpt-4o", (i + 1) * 60 * SEC);
        c.error = Some("APIConnectionError");
        c
    }));
    // p95 latency: svc-slow answers in 40 s.
    calls.extend(repeat(25, |i| {
        let mut c = Call::new("svc-slow", "prod", "claude-sonnet-4", (i + 1) * 18 * SEC);
        c.duration_ns = 40 * SEC;
        c
    }));
    // Healthy neighbour: recent calls (1 error in 30, fast), steady over the last 75 min and the
    // previous day, with a stable time to first token.
    calls.extend(repeat(30, |i| {
        let mut c = Call::new("svc-healthy", "prod", "gpt-4o", (i + 1) * 15 * SEC);
        c.error = (i == 4).then_some("RateLimitError");
        c
    }));
    calls.extend(repeat(12, |i| Call::new("svc-healthy", "prod", "gpt-4o", 20 * MIN + i * 4 * MIN)));
    calls.extend(repeat(30, |i| Call::new("svc-healthy", "prod", "gpt-4o", 2 * 60 * MIN + i * 30 * MIN)));
    // Silence: svc-gone was busy 70..20 min ago and silent since; svc-rare made only 2 calls.
    calls.extend(repeat(20, |i| Call::new("svc-gone", "prod", "gpt-4o", 20 * MIN + i * 150 * SEC)));
    calls.extend(repeat(2, |i| Call::new("svc-rare", "prod", "gpt-4o", 40 * MIN + i * MIN)));
    // Time to first token: svc-ttft took 0.2 s over the previous day and 1.0 s in the last 10 min.
    calls.extend(repeat(30, |i| {
        let mut c = Call::new("svc-ttft", "prod", "gpt-4o", 2 * 60 * MIN + i * 30 * MIN);
        c.ttft_s = Some(0.2);
        c
    }));
    calls.extend(repeat(25, |i| {
        let mut c = Call::new("svc-ttft", "prod", "gpt-4o", (i + 1) * 20 * SEC);
        c.ttft_s = Some(1.0);
        c
    }));
    // Cost: environment "burn" (user-spender) spends 30 USD in the last hour and nothing a week ago;
    // the others spend cents.
    calls.extend(repeat(10, |i| {
        let mut c = Call::new("svc-burn", "burn", "gpt-4o", (i + 1) * 4 * MIN);
        c.cost_usd = Some(3.0);
        c.user = "user-spender".into();
        c
    }));
    // svc-steady (user-steady) spends 5 USD in the last hour, as in the same hour a week ago.
    for week_ago in [0, 7 * 24 * 60 * MIN] {
        calls.extend(repeat(5, |i| {
            let mut c = Call::new("svc-steady", "prod", "gpt-4o", week_ago + (i + 1) * 10 * MIN);
            c.cost_usd = Some(1.0);
            c.user = "user-steady".into();
            c
        }));
    }
    calls
}

/// Collector self-telemetry: a reports now and dead-lettered 3 rows 2 min ago; b is healthy; c stopped
/// reporting 10 min ago.
pub async fn collector_stats(stack: &crate::support::stack::Stack) {
    for (instance, first, dead) in [("grafana-test-a", 0, 3), ("grafana-test-b", 0, 0), ("grafana-test-c", 60, 0)] {
        stack
            .exec(&format!(
                "INSERT INTO collector_stats (Timestamp, Instance, Signal, Received, Written, Rejected, Retried, \
                 DeadLettered, QueueDepth, SpoolBytes, BatchLatencyMs) \
                 SELECT now64(3) - toIntervalMillisecond((number + {first}) * 10000), '{instance}', sig, 100, 97, 1, 2, \
                 if(number = 12 AND sig = 'llm_calls', {dead}, 0), number % 7, 4096 * (number % 5), 5.5 + number % 3 \
                 FROM numbers(300) ARRAY JOIN ['traces', 'logs', 'llm_calls'] AS sig"
            ))
            .await;
    }
}
