//! The load generator of `scripts/bench.sh`: concurrent OTLP clients send trace requests to a
//! running collector as fast as it accepts them (or at a fixed rate) and count the spans
//! acknowledged (a success means fsynced in the spool). Prints numbers, asserts nothing.
//!
//! `cargo run --release --example ingest_bench -- [OPTIONS] [URL]`, URL default
//! `http://127.0.0.1:4318` (`--protocol grpc`: the gRPC endpoint, e.g. `http://127.0.0.1:4317`).
//! - `--protocol http|json|grpc`: OTLP/HTTP protobuf (default), OTLP/HTTP JSON, OTLP/gRPC;
//! - `--kind chat|plain`: typical GenAI chat spans of about 1.5 KB (default: a system prompt, a
//!   60-word user message with an e-mail address and a card number, an 80-word answer as
//!   `gen_ai.*.messages` JSON, usage and parameters) or plain HTTP server spans;
//! - `--clients N` (default 2), `--seconds S` (default 10), `--spans N` per request (default 500),
//!   `--requests N`: at most N requests per client (bounds a burst), `--rate SPANS_PER_S` in total;
//! - `--probe CLICKHOUSE_URL DATABASE`: ingest→queryable latency. About every 100 ms one acknowledged
//!   request is a probe; its last span's trace id is polled in ClickHouse until it is visible in
//!   `otel_traces` (and, for chat spans, in `llm_calls`), and the p50/p99 are printed;
//! - `--ca-file PEM` trusts that CA for `https://`; `--api-key KEY` sends `Authorization: Bearer`.
//!
//! The last line is machine-readable: `RESULT key=value …`. Every request has unique trace and span
//! ids (a per-run nonce, the client and the request number), so runs never collide.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use promptlog_otlp::{chat_attrs, kv, kv_i64, now_ns, resource, span, traces_request};
use prost::Message;

/// A system prompt of about 40 words.
const SYSTEM: &str = "You are a careful support assistant for an online shop. Answer in plain English, \
    keep answers short and friendly, never invent order numbers, and ask for the order id when a \
    question is about a specific delivery. Escalate refunds above fifty euros to a human agent.";
/// A user message of about 60 words, with an e-mail address and a (Luhn-valid) card number.
const USER: &str = "Hello, I ordered a pair of running shoes two weeks ago and they still have not \
    arrived. The tracking page has said the parcel is in transit for nine days now. Please update my \
    account too: my e-mail is jane.doe@example.com and my new card is 4111 1111 1111 1111. Can you \
    tell me where the parcel is, whether I can get a refund, and how long it takes?";
/// An answer of about 80 words.
const ANSWER: &str = "I am sorry your shoes are late. Parcels that show in transit for more than \
    seven days are usually held at a regional depot, and they are normally delivered within three \
    more working days. I have noted your new e-mail address and card for jane.doe@example.com. If \
    the parcel has not arrived by Friday, reply with your order id and I will open a claim with the \
    carrier, which starts a full refund of the order. Refunds reach your card within five working \
    days once the claim is approved. Is there anything else I can help with today?";

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Http,
    Json,
    Grpc,
}

/// The command line.
struct Args {
    url: String,
    protocol: Protocol,
    chat: bool,
    clients: u64,
    seconds: u64,
    spans: u64,
    requests: u64,
    rate: Option<f64>,
    probe: Option<(String, String)>,
    ca_file: Option<String>,
    api_key: Option<String>,
}

impl Args {
    fn parse() -> Args {
        let mut a = Args {
            url: "http://127.0.0.1:4318".into(),
            protocol: Protocol::Http,
            chat: true,
            clients: 2,
            seconds: 10,
            spans: 500,
            requests: u64::MAX,
            rate: None,
            probe: None,
            ca_file: None,
            api_key: None,
        };
        let mut args = std::env::args().skip(1);
        let next = |name: &str, args: &mut dyn Iterator<Item = String>| {
            args.next().unwrap_or_else(|| panic!("{name} needs a value"))
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--protocol" => {
                    a.protocol = match next("--protocol", &mut args).as_str() {
                        "http" => Protocol::Http,
                        "json" => Protocol::Json,
                        "grpc" => Protocol::Grpc,
                        other => panic!("--protocol {other}: expected http, json or grpc"),
                    }
                }
                "--kind" => a.chat = next("--kind", &mut args) != "plain",
                "--clients" => a.clients = next("--clients", &mut args).parse().expect("--clients N"),
                "--seconds" => a.seconds = next("--seconds", &mut args).parse().expect("--seconds S"),
                "--spans" => a.spans = next("--spans", &mut args).parse().expect("--spans N"),
                "--requests" => a.requests = next("--requests", &mut args).parse().expect("--requests N"),
                "--rate" => a.rate = Some(next("--rate", &mut args).parse().expect("--rate SPANS_PER_S")),
                "--probe" => a.probe = Some((next("--probe", &mut args), next("--probe", &mut args))),
                "--ca-file" => a.ca_file = Some(next("--ca-file", &mut args)),
                "--api-key" => a.api_key = Some(next("--api-key", &mut args)),
                url if !url.starts_with("--") => a.url = url.to_owned(),
                other => panic!("unknown option {other}"),
            }
        }
        a
    }

    fn http_client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder();
        if let Some(file) = &self.ca_file {
            let pem = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"));
        }
        builder.build().expect("HTTP client")
    }
}

/// The vocabulary of the generated messages: the words of [`USER`] and [`ANSWER`].
struct Content {
    words: Vec<&'static str>,
}

impl Content {
    fn new() -> Content {
        let mut words: Vec<&str> = USER.split_whitespace().chain(ANSWER.split_whitespace()).collect();
        words.sort_unstable();
        words.dedup();
        Content { words }
    }

    /// `n` words drawn from the vocabulary (xorshift from `seed`): every span has its own text, so
    /// ClickHouse compresses it as it would real prompts rather than one message repeated.
    fn text(&self, n: usize, seed: u64) -> String {
        let mut x = seed | 1;
        let mut out = String::with_capacity(n * 7);
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push_str(self.words[(x % self.words.len() as u64) as usize]);
            out.push(' ');
        }
        out.pop();
        out
    }

    /// The v1.37 input and output message lists of one span: the fixed system prompt, a 60-word user
    /// message (with the e-mail address and card number of [`USER`]) and an 80-word answer.
    fn messages(&self, seed: u64) -> (String, String) {
        let text = |role: &str, s: &str| serde_json::json!({"role": role, "parts": [{"type": "text", "content": s}]});
        let user = format!("{} jane.doe@example.com 4111 1111 1111 1111", self.text(54, seed));
        let input = serde_json::json!([text("system", SYSTEM), text("user", &user)]).to_string();
        let mut answer = text("assistant", &self.text(80, seed.rotate_left(32)));
        answer["finish_reason"] = "stop".into();
        (input, serde_json::json!([answer]).to_string())
    }
}

/// The trace id of span `k` of request `n` of `client`.
fn trace_id(nonce: u64, client: u64, n: u64, k: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&nonce.to_be_bytes());
    id[8..].copy_from_slice(&((client << 56) | ((n & 0xff_ffff_ffff) << 16) | (k & 0xffff)).to_be_bytes());
    id
}

/// Request `n` of `client`: `spans` spans, each its own trace, ids unique in this run and across runs.
fn request(args: &Args, content: &Content, nonce: u64, client: u64, n: u64) -> ExportTraceServiceRequest {
    let start = now_ns();
    let spans = (0..args.spans)
        .map(|k| {
            let mut s = if args.chat {
                let mut attrs = chat_attrs("openai", "gpt-4o-mini", 120, 110);
                attrs.push(kv_i64("gen_ai.request.seed", 7));
                let (input, output) = content.messages(nonce ^ (client << 48) ^ (n << 16) ^ k);
                attrs.push(kv("gen_ai.input.messages", input));
                attrs.push(kv("gen_ai.output.messages", output));
                span("chat gpt-4o-mini", start + k, 850, attrs)
            } else {
                let attrs = vec![
                    kv("http.request.method", "GET"),
                    kv("url.path", "/api/orders"),
                    kv("http.route", "/api/orders"),
                    kv_i64("http.response.status_code", 200),
                    kv("server.address", "shop.example.com"),
                    kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) bench"),
                ];
                let mut s = span("GET /api/orders", start + k, 12, attrs);
                s.kind = SpanKind::Server as i32;
                s
            };
            // One call per trace, as when each user request makes one call: trace ids are the run's
            // nonce and (client, request, span); span ids need only be unique and never all-zero.
            s.trace_id = trace_id(nonce, client, n, k).to_vec();
            s.span_id = ((client << 48) | ((n & 0xff_ffff) << 24) | (k + 1)).to_be_bytes().to_vec();
            s
        })
        .collect();
    traces_request(resource("bench", "bench"), spans)
}

/// How one client sends.
enum Sender {
    Http { client: reqwest::Client, url: String, json: bool, auth: Option<String> },
    Grpc { client: TraceServiceClient<tonic::transport::Channel>, auth: Option<String> },
}

/// What became of one request.
enum Outcome {
    Ok,
    /// 503 / UNAVAILABLE / RESOURCE_EXHAUSTED: the collector asked the client to come back later.
    Refused,
}

impl Sender {
    async fn new(args: &Args) -> Sender {
        let auth = args.api_key.as_ref().map(|k| format!("Bearer {k}"));
        match args.protocol {
            Protocol::Grpc => {
                let client = TraceServiceClient::connect(args.url.clone()).await.expect("gRPC endpoint reachable");
                Sender::Grpc { client: client.max_decoding_message_size(64 << 20), auth }
            }
            p => Sender::Http {
                client: args.http_client(),
                url: format!("{}/v1/traces", args.url),
                json: p == Protocol::Json,
                auth,
            },
        }
    }

    async fn send(&mut self, req: ExportTraceServiceRequest) -> Outcome {
        match self {
            Sender::Http { client, url, json, auth } => {
                let (body, ctype) = if *json {
                    (serde_json::to_vec(&req).expect("OTLP JSON"), "application/json")
                } else {
                    (req.encode_to_vec(), "application/x-protobuf")
                };
                let mut r = client.post(url.as_str()).header("content-type", ctype).body(body);
                if let Some(auth) = auth {
                    r = r.header("authorization", auth.as_str());
                }
                let resp = r.send().await.expect("collector reachable");
                match resp.status().as_u16() {
                    200 => Outcome::Ok,
                    429 | 503 => Outcome::Refused,
                    other => panic!("unexpected status {other}: {:?}", resp.bytes().await.unwrap_or_default()),
                }
            }
            Sender::Grpc { client, auth } => {
                let mut r = tonic::Request::new(req);
                if let Some(auth) = auth {
                    r.metadata_mut().insert("authorization", auth.parse().expect("ASCII key"));
                }
                match client.export(r).await {
                    Ok(_) => Outcome::Ok,
                    Err(s) if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::ResourceExhausted) => {
                        Outcome::Refused
                    }
                    Err(s) => panic!("unexpected gRPC status: {s}"),
                }
            }
        }
    }
}

/// An acknowledged probe request: its trace id (hex), when it was sent, when it became visible.
struct Probe {
    trace: String,
    sent: Instant,
    traces_seen: Option<Duration>,
    calls_seen: Option<Duration>,
}

#[derive(Default)]
struct Totals {
    ok: u64,
    refused: u64,
    latency: Duration,
}

async fn client_loop(
    args: Arc<Args>,
    content: Arc<Content>,
    nonce: u64,
    c: u64,
    probes: Arc<Mutex<Vec<Probe>>>,
    last_probe: Arc<Mutex<Instant>>,
) -> Totals {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut sender = Sender::new(&args).await;
    let mut pace = args.rate.map(|rate| {
        let every = Duration::from_secs_f64(args.spans as f64 * args.clients as f64 / rate);
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut t = Totals::default();
    let mut n = 0;
    while Instant::now() < deadline && n < args.requests {
        if let Some(pace) = &mut pace {
            pace.tick().await;
        }
        let req = request(&args, &content, nonce, c, n);
        // The probe waits for the request's last span (rows of one request are written together).
        let trace = const_hex::encode(trace_id(nonce, c, n, args.spans - 1));
        n += 1;
        let sent = Instant::now();
        let outcome = sender.send(req).await;
        t.latency += sent.elapsed();
        match outcome {
            Outcome::Ok => {
                t.ok += 1;
                let mut last = last_probe.lock().expect("probe clock");
                if args.probe.is_some() && last.elapsed() >= Duration::from_millis(100) {
                    *last = Instant::now();
                    let probe = Probe { trace, sent, traces_seen: None, calls_seen: None };
                    probes.lock().expect("probes").push(probe);
                }
            }
            Outcome::Refused => {
                t.refused += 1;
                // What an SDK does: back off, then send again (a new request here).
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    t
}

/// Polls ClickHouse for the probes' traces until every probe is visible in every table it goes to,
/// or 120 s after the load stopped.
async fn poll_probes(ch: String, db: String, chat: bool, probes: Arc<Mutex<Vec<Probe>>>, done: Arc<AtomicBool>) {
    let http = reqwest::Client::new();
    let mut stopped_at = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if done.load(Ordering::Relaxed) && stopped_at.is_none() {
            stopped_at = Some(Instant::now());
        }
        let tables: &[&str] = if chat { &["otel_traces", "llm_calls"] } else { &["otel_traces"] };
        let mut open = false;
        for (i, table) in tables.iter().enumerate() {
            let pending: Vec<String> = {
                let probes = probes.lock().expect("probes");
                let seen = |p: &Probe| if i == 0 { p.traces_seen.is_some() } else { p.calls_seen.is_some() };
                probes.iter().filter(|p| !seen(p)).take(300).map(|p| format!("'{}'", p.trace)).collect()
            };
            if pending.is_empty() {
                continue;
            }
            open = true;
            let sql = format!(
                "SELECT TraceId FROM {table} WHERE TraceId IN ({}) GROUP BY TraceId FORMAT TSV",
                pending.join(",")
            );
            let Ok(resp) = http.post(format!("{ch}/?database={db}")).body(sql).send().await else { continue };
            let Ok(text) = resp.text().await else { continue };
            let now = Instant::now();
            let mut probes = probes.lock().expect("probes");
            for trace in text.lines() {
                for p in probes.iter_mut().filter(|p| p.trace == trace) {
                    let slot = if i == 0 { &mut p.traces_seen } else { &mut p.calls_seen };
                    slot.get_or_insert(now - p.sent);
                }
            }
        }
        let given_up = stopped_at.is_some_and(|t| t.elapsed() > Duration::from_secs(120));
        if (done.load(Ordering::Relaxed) && !open) || given_up {
            return;
        }
    }
}

/// (p50, p99, samples) in milliseconds of the seen latencies; unseen probes count as missing.
fn percentiles(mut seen: Vec<Duration>) -> (f64, f64, usize) {
    seen.sort();
    let at = |q: f64| seen.get(((seen.len() as f64 * q).ceil() as usize).saturating_sub(1));
    let ms = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    (ms(at(0.50)), ms(at(0.99)), seen.len())
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    let content = Arc::new(Content::new());
    let nonce = now_ns();
    let probes = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let poller =
        args.probe.clone().map(|(ch, db)| tokio::spawn(poll_probes(ch, db, args.chat, probes.clone(), done.clone())));
    let last_probe = Arc::new(Mutex::new(Instant::now()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|c| tokio::spawn(client_loop(args.clone(), content.clone(), nonce, c, probes.clone(), last_probe.clone())))
        .collect();
    let mut t = Totals::default();
    for task in tasks {
        let r = task.await.expect("client task");
        (t.ok, t.refused, t.latency) = (t.ok + r.ok, t.refused + r.refused, t.latency + r.latency);
    }
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(poller) = poller {
        poller.await.expect("probe poller");
    }
    let spans = t.ok * args.spans;
    let mean_ms = t.latency.as_secs_f64() * 1000.0 / (t.ok + t.refused).max(1) as f64;
    let probes = std::mem::take(&mut *probes.lock().expect("probes"));
    let (tp50, tp99, tn) = percentiles(probes.iter().filter_map(|p| p.traces_seen).collect());
    let (cp50, cp99, cn) = percentiles(probes.iter().filter_map(|p| p.calls_seen).collect());
    println!(
        "{} clients, {} spans/request, {secs:.1} s: {:.0} spans/s acknowledged ({} requests OK, {} refused), \
         mean request latency {mean_ms:.1} ms; ingest→queryable otel_traces p50 {tp50:.0} ms p99 {tp99:.0} ms \
         ({tn}/{} probes), llm_calls p50 {cp50:.0} ms p99 {cp99:.0} ms ({cn})",
        args.clients,
        args.spans,
        spans as f64 / secs,
        t.ok,
        t.refused,
        probes.len(),
    );
    println!(
        "RESULT spans={spans} requests_ok={} refused={} seconds={secs:.3} spans_per_s={:.0} mean_ms={mean_ms:.2} \
         probes={} traces_p50_ms={tp50:.0} traces_p99_ms={tp99:.0} traces_seen={tn} calls_p50_ms={cp50:.0} \
         calls_p99_ms={cp99:.0} calls_seen={cn}",
        t.ok,
        t.refused,
        spans as f64 / secs,
        probes.len(),
    );
}
