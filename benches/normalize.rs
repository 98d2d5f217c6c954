//! Prints normalisation throughput (decode, normalise, render content; one thread) for typical requests:
//! `cargo bench --bench normalize`. Figures only; nothing is asserted (machines are shared and noisy).

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use promptlog_ingest::normalize::normalize;
use promptlog_ingest::{Limits, Request};
use promptlog_otlp::{chat_attrs, kv, kv_i64, now_ns, resource, span, traces_request};
use prost::Message;

/// Same allocator as the binary, so the figures match production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPANS_PER_REQUEST: usize = 500;
const RUN_FOR: Duration = Duration::from_secs(3);

fn llm_span(_: usize) -> opentelemetry_proto::tonic::trace::v1::Span {
    let mut attrs = chat_attrs("openai", "gpt-4o", 420, 64);
    attrs.extend([
        kv(
            "gen_ai.input.messages",
            r#"[{"role":"system","parts":[{"type":"text","content":"You are a helpful assistant."}]},{"role":"user","parts":[{"type":"text","content":"Summarise the attached ticket in two sentences please."}]}]"#,
        ),
        kv(
            "gen_ai.output.messages",
            r#"[{"role":"assistant","parts":[{"type":"text","content":"The customer cannot log in since the last release. Support reset the password."}],"finish_reason":"stop"}]"#,
        ),
        kv("server.address", "api.openai.com"),
        kv("user.id", "u-1"),
    ]);
    span("chat gpt-4o", now_ns(), 800, attrs)
}

fn plain_span(_: usize) -> opentelemetry_proto::tonic::trace::v1::Span {
    span(
        "GET /api/tickets",
        now_ns(),
        12,
        vec![
            kv("http.request.method", "GET"),
            kv("http.route", "/api/tickets"),
            kv_i64("http.response.status_code", 200),
            kv("server.address", "tickets.internal"),
            kv("url.path", "/api/tickets/123"),
        ],
    )
}

/// Runs `work` for [`RUN_FOR`] and returns the spans per second and core it processed.
fn rate(mut work: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut spans = 0usize;
    while start.elapsed() < RUN_FOR {
        spans += work();
    }
    spans as f64 / start.elapsed().as_secs_f64()
}

/// Per stage, so a regression shows where it is: protobuf decode, normalisation (rows and parsed
/// content), content rendering (`NormalizedCall::finish`: the message JSON and text columns, measured
/// as normalise + render minus normalise), and all three together.
fn measure(name: &str, make: fn(usize) -> opentelemetry_proto::tonic::trace::v1::Span) {
    let req = traces_request(resource("bench", "bench"), (0..SPANS_PER_REQUEST).map(make).collect());
    let bytes = req.encode_to_vec();
    let limits = Limits { max_attribute_value_bytes: 1 << 20 };
    let decode = rate(|| {
        ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid").resource_spans.len() * SPANS_PER_REQUEST
    });
    let request = Request::Traces(req);
    let normalise = rate(|| normalize(&request, limits, 0).0.spans.len());
    let rendered = |batch: promptlog_ingest::Submission| {
        let spans = batch.spans.len();
        batch.calls.into_iter().map(|c| c.finish()).for_each(drop);
        spans
    };
    let normalise_render = rate(|| rendered(normalize(&request, limits, 0).0));
    let all = rate(|| {
        let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid");
        rendered(normalize(&Request::Traces(decoded), limits, 0).0)
    });
    let us = |rate: f64| 1e6 / rate;
    println!(
        "{name:<16} {all:>9.0} spans/s/core ({:.2} µs/span: decode {:.2}, normalise {:.2}, render {:.2}), \
         {} bytes per {SPANS_PER_REQUEST}-span request",
        us(all),
        us(decode),
        us(normalise),
        us(normalise_render) - us(normalise),
        bytes.len()
    );
}

fn main() {
    measure("LLM chat spans", llm_span);
    measure("non-LLM spans", plain_span);
}
