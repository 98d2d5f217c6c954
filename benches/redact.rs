//! Prints the cost of the PII redaction step per span (one thread), on a typical ~1.5 KB GenAI chat
//! span with content, with every built-in detector on: `cargo bench --bench redact`. Figures only;
//! nothing is asserted (machines are shared and noisy).

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;
use promptlog_ingest::process::redact::{Action, Builtin, ContentPolicy, HashKey, RedactionSpec, Redactor, Rule};
use promptlog_ingest::{Request, RequestContext, Signal};
use promptlog_otlp::{chat_attrs, kv, kv_i64, now_ns, resource, span, traces_request};
use prost::Message;

/// Same allocator as the binary, so the figures match production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPANS_PER_REQUEST: usize = 200;
const RUN_FOR: Duration = Duration::from_secs(3);

const CLEAN_USER: &str = "Summarise the attached support ticket in two sentences, please. The customer writes that \
    since the release on Tuesday the login page keeps spinning, that clearing the cache did not help, and that \
    three colleagues in the same office see the same thing in every browser they tried.";
const PII_USER: &str = "Summarise the attached support ticket in two sentences, please. The customer, reachable at \
    jane.doe@example.com or +1 415 555 2671, paid with 4111 1111 1111 1111 and wants the refund on \
    DE89 3704 0044 0532 0130 00; she pasted her key sk-proj-AbCdEf1234567890GhIjKlMn by mistake.";

fn chat_span(user: &str) -> Span {
    let input = serde_json::json!([
        {"role": "system", "parts": [{"type": "text", "content": "You are a helpful assistant for the support team.\nAnswer briefly and politely."}]},
        {"role": "user", "parts": [{"type": "text", "content": user}]},
    ]);
    let output = serde_json::json!([{"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text",
        "content": "The customer cannot log in since Tuesday's release; the page keeps loading.\nSupport should check the session service and reply within a day."}]}]);
    let mut attrs = chat_attrs("openai", "gpt-4o", 420, 64);
    attrs.extend([
        kv("gen_ai.input.messages", input.to_string()),
        kv("gen_ai.output.messages", output.to_string()),
        kv("server.address", "api.openai.com"),
        kv_i64("server.port", 443),
        kv("user.id", "u-1042"),
        kv("gen_ai.conversation.id", "conv-7f3a9c2e"),
    ]);
    span("chat gpt-4o", now_ns(), 800, attrs)
}

fn all_detectors(action: Action) -> RedactionSpec {
    RedactionSpec {
        rules: Builtin::ALL.iter().map(|b| Rule::builtin(*b, action)).collect(),
        hash_key: Some(HashKey::new(b"bench-key-0123456789".to_vec())),
        ..RedactionSpec::default()
    }
}

/// µs per span of `step` on requests of `SPANS_PER_REQUEST` copies of `span` (the clone is timed
/// apart and subtracted).
fn measure(name: &str, span: &Span, spec: RedactionSpec) {
    let step = Redactor::new(spec).expect("spec");
    let request = Request::Traces(traces_request(resource("bench", "bench"), vec![span.clone(); SPANS_PER_REQUEST]));
    let ctx = RequestContext::new(Signal::Traces, 0);
    let (mut rounds, mut cloning, mut total) = (0u32, Duration::ZERO, Duration::ZERO);
    let mut changed = false;
    let start = Instant::now();
    while start.elapsed() < RUN_FOR {
        let t = Instant::now();
        let mut r = request.clone();
        cloning += t.elapsed();
        let t = Instant::now();
        changed = step.redact_request(&ctx, &mut r);
        total += t.elapsed();
        std::hint::black_box(&r);
        rounds += 1;
    }
    let spans = f64::from(rounds) * SPANS_PER_REQUEST as f64;
    let per_span = total.as_secs_f64() * 1e6 / spans;
    println!(
        "{name:<40} {per_span:>6.2} µs/span  ({:.0} spans/s/core; clone {:.2} µs/span not counted; changed: {changed})",
        1e6 / per_span,
        cloning.as_secs_f64() * 1e6 / spans,
    );
}

fn main() {
    let clean = chat_span(CLEAN_USER);
    let pii = chat_span(PII_USER);
    println!("span sizes: {} bytes without PII, {} bytes with PII (protobuf)", clean.encoded_len(), pii.encoded_len());
    measure("all detectors, mask, no matches", &clean, all_detectors(Action::Mask));
    measure("all detectors, mask, 5 matches per message", &pii, all_detectors(Action::Mask));
    measure("all detectors, hash, 5 matches per message", &pii, all_detectors(Action::Hash));
    let policy = |content| RedactionSpec { content, ..all_detectors(Action::Mask) };
    measure("all detectors + content truncate:200", &pii, policy(ContentPolicy::Truncate(200)));
    measure("content drop only", &pii, RedactionSpec { content: ContentPolicy::Drop, ..RedactionSpec::default() });
    per_string();
}

/// Per-string figures: what the prefilter saves on strings without findings.
fn per_string() {
    let r = Redactor::new(all_detectors(Action::Mask)).unwrap();
    let input = serde_json::json!([
        {"role": "system", "parts": [{"type": "text", "content": "You are a helpful assistant for the support team.\nAnswer briefly and politely."}]},
        {"role": "user", "parts": [{"type": "text", "content": CLEAN_USER}]},
    ]).to_string();
    let no_nl = input.replace("\\n", " ");
    for (name, s) in [
        ("json with \\n", input.as_str()),
        ("json without escapes", no_nl.as_str()),
        ("plain text", CLEAN_USER),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("chat", "chat"),
    ] {
        let n = 20000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(r.redact_str(std::hint::black_box(s), &mut Default::default()));
        }
        println!("one string: {name:<26} {:>6.2} µs ({} bytes)", t.elapsed().as_secs_f64() * 1e6 / n as f64, s.len());
    }
}
