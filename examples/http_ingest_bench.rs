//! Throughput probe for the accept path: concurrent OTLP/HTTP protobuf clients send requests of
//! 50 LLM spans to a running collector for a fixed time and count the spans acknowledged (HTTP 200,
//! which means fsynced in the spool). Prints numbers, asserts nothing.
//!
//! `cargo run --release --example http_ingest_bench -- [URL] [CLIENTS] [SECONDS]`
//! (defaults: `http://127.0.0.1:4318`, 4 clients, 5 s). Start the collector first, e.g. in release
//! mode against the chDB test server; see the README's delivery section for the full command.

use std::time::{Duration, Instant};

use promptlog_otlp::{embeddings_span, now_ns, resource, traces_request};
use prost::Message;

const SPANS_PER_REQUEST: u64 = 50;

fn body(client: u64, request: u64) -> Vec<u8> {
    let start = now_ns();
    let spans = (0..SPANS_PER_REQUEST)
        .map(|k| {
            let mut s = embeddings_span(start + k, 3, 12);
            // +1: an all-zero span id is invalid.
            s.span_id = ((client << 48) | (request << 8) | (k + 1)).to_be_bytes().to_vec();
            s
        })
        .collect();
    traces_request(resource("bench", "bench"), spans).encode_to_vec()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:4318".into());
    let clients: u64 = args.next().map_or(4, |a| a.parse().expect("CLIENTS"));
    let seconds: u64 = args.next().map_or(5, |a| a.parse().expect("SECONDS"));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let url = format!("{url}/v1/traces");
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let (mut ok, mut refused, mut latency) = (0u64, 0u64, Duration::ZERO);
                let mut r = 0;
                while Instant::now() < deadline {
                    let payload = body(c, r);
                    r += 1;
                    let sent = Instant::now();
                    let resp = http
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(payload)
                        .send()
                        .await
                        .expect("collector reachable");
                    latency += sent.elapsed();
                    match resp.status().as_u16() {
                        200 => ok += 1,
                        503 => refused += 1,
                        other => panic!("unexpected status {other}"),
                    }
                }
                (ok, refused, latency)
            })
        })
        .collect();
    let (mut ok, mut refused, mut latency) = (0, 0, Duration::ZERO);
    for t in tasks {
        let (o, r, l) = t.await.expect("client task");
        (ok, refused, latency) = (ok + o, refused + r, latency + l);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{clients} clients, {SPANS_PER_REQUEST} spans/request, {secs:.1} s: {:.0} spans/s acknowledged \
         ({ok} requests OK, {refused} refused with 503), mean latency {:.1} ms",
        (ok * SPANS_PER_REQUEST) as f64 / secs,
        latency.as_secs_f64() * 1000.0 / (ok + refused).max(1) as f64,
    );
}
