//! Throughput probe for the accept path: concurrent OTLP/HTTP protobuf clients send requests of
//! 50 LLM chat spans to a running collector for a fixed time and count the spans acknowledged
//! (HTTP 200, which means fsynced in the spool). Each span carries its prompt and completion
//! (`gen_ai.input.messages` / `gen_ai.output.messages`) with a little PII, an e-mail address and a
//! card number, so that a collector with redaction on has work to do. Prints numbers, asserts
//! nothing.
//!
//! `cargo run --release --example http_ingest_bench -- [--ca-file PEM] [--api-key KEY] [URL] [CLIENTS] [SECONDS]`
//! (defaults: `http://127.0.0.1:4318`, 4 clients, 5 s). `--ca-file` trusts that CA for an
//! `https://` URL; `--api-key` sends `Authorization: Bearer KEY`. Start the collector first, e.g.
//! in release mode against the chDB test server; `scripts/bench-security.sh` does it all, with TLS,
//! keys and redaction off and on.

use std::time::{Duration, Instant};

use promptlog_otlp::{chat_attrs, kv, now_ns, resource, span, traces_request};
use prost::Message;

const SPANS_PER_REQUEST: u64 = 50;

/// A prompt with an e-mail address and a (Luhn-valid) card number, as a v1.37 message list.
const PROMPT: &str = r#"[{"role":"user","parts":[{"type":"text","content":"Please update my account: my e-mail is jane.doe@example.com and my new card is 4111 1111 1111 1111. Thanks!"}]}]"#;
/// The completion, repeating the address.
const COMPLETION: &str = r#"[{"role":"assistant","parts":[{"type":"text","content":"Done: jane.doe@example.com now pays with the card ending 1111."}],"finish_reason":"stop"}]"#;

fn body(client: u64, request: u64) -> Vec<u8> {
    let start = now_ns();
    let spans = (0..SPANS_PER_REQUEST)
        .map(|k| {
            let mut attrs = chat_attrs("openai", "gpt-4o-mini", 42, 12);
            attrs.push(kv("gen_ai.input.messages", PROMPT));
            attrs.push(kv("gen_ai.output.messages", COMPLETION));
            let mut s = span("chat gpt-4o-mini", start + k, 3, attrs);
            // +1: an all-zero span id is invalid.
            s.span_id = ((client << 48) | (request << 8) | (k + 1)).to_be_bytes().to_vec();
            s
        })
        .collect();
    traces_request(resource("bench", "bench"), spans).encode_to_vec()
}

/// The command line: options anywhere, then the positional `URL CLIENTS SECONDS`.
struct Args {
    url: String,
    clients: u64,
    seconds: u64,
    /// `--ca-file`: a PEM CA bundle to trust (for `https://`).
    ca_file: Option<String>,
    /// `--api-key`: sent as `Authorization: Bearer <key>`.
    api_key: Option<String>,
}

impl Args {
    fn parse() -> Args {
        let (mut positional, mut ca_file, mut api_key) = (Vec::new(), None, None);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--ca-file" => ca_file = Some(args.next().expect("--ca-file PEM")),
                "--api-key" => api_key = Some(args.next().expect("--api-key KEY")),
                _ => positional.push(arg),
            }
        }
        let mut positional = positional.into_iter();
        Args {
            url: positional.next().unwrap_or_else(|| "http://127.0.0.1:4318".into()),
            clients: positional.next().map_or(4, |a| a.parse().expect("CLIENTS")),
            seconds: positional.next().map_or(5, |a| a.parse().expect("SECONDS")),
            ca_file,
            api_key,
        }
    }

    /// An HTTP client trusting `--ca-file` if given.
    fn http_client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder();
        if let Some(file) = &self.ca_file {
            let pem = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"));
        }
        builder.build().expect("HTTP client")
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (clients, seconds) = (args.clients, args.seconds);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let url = format!("{}/v1/traces", args.url);
            let http = args.http_client();
            let auth = args.api_key.as_ref().map(|k| format!("Bearer {k}"));
            tokio::spawn(async move {
                let (mut ok, mut refused, mut latency) = (0u64, 0u64, Duration::ZERO);
                let mut r = 0;
                while Instant::now() < deadline {
                    let payload = body(c, r);
                    r += 1;
                    let sent = Instant::now();
                    let mut request = http.post(&url).header("content-type", "application/x-protobuf");
                    if let Some(auth) = &auth {
                        request = request.header("authorization", auth);
                    }
                    let resp = request.body(payload).send().await.expect("collector reachable");
                    latency += sent.elapsed();
                    match resp.status().as_u16() {
                        200 => ok += 1,
                        503 => refused += 1,
                        other => panic!("unexpected status {other}: {:?}", resp.bytes().await.unwrap_or_default()),
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
