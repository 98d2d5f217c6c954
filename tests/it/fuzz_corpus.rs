//! The `otlp_decode` fuzz target on stable Rust: its body runs over the seed corpus in
//! `fuzz/corpus/otlp_decode/` and over deterministic mutations of it, within a time budget. This is
//! not coverage-guided like `cargo fuzz`, but it runs in every `cargo test` and needs no nightly.
//!
//! `PROMPTLOG_FUZZ_SECONDS` sets the budget (default [`DEFAULT_SECONDS`]); `scripts/fuzz.sh` uses it
//! when cargo-fuzz is unavailable. Regenerate the seeds with
//! `cargo test --test it fuzz_corpus::write_seed_corpus -- --ignored`.

#[path = "../../fuzz/src/lib.rs"]
mod otlp_fuzz;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use otlp_fuzz::Input;
use prost::Message;

/// Budget of the mutation loop in a normal `cargo test`.
const DEFAULT_SECONDS: u64 = 5;
/// Environment variable overriding [`DEFAULT_SECONDS`].
const SECONDS_VAR: &str = "PROMPTLOG_FUZZ_SECONDS";
/// Fixed seed: a failing mutation reproduces on the next run.
const RNG_SEED: u64 = 0x0715_f022;

fn corpus_dir() -> PathBuf {
    promptlog_testkit::repo_root().join("fuzz/corpus/otlp_decode")
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes libFuzzer's own mutators like to write: boundaries of varints, lengths and UTF-8.
const INTERESTING: &[u8] = &[0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0xc0, 0x0a, 0x12, b'"', b'{', b'[', b'\\'];

/// One to four random edits of `seed`.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        if data.is_empty() {
            data.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(data.len());
        match rng.below(7) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => data.insert(at, rng.next() as u8),
            3 => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            4 => {
                let end = (at + 1 + rng.below(32)).min(data.len());
                let copy = data[at..end].to_vec();
                let to = rng.below(data.len());
                data.splice(to..to, copy);
            }
            5 => data.truncate(at.max(1)),
            // Re-read the same body as another kind (protobuf as JSON, traces as logs, ...).
            _ => data[0] = rng.next() as u8,
        }
    }
    data
}

fn seeds() -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths: Vec<_> = std::fs::read_dir(corpus_dir()).expect("seed corpus").map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn corpus_and_its_mutations_never_panic() {
    let seeds = seeds();
    assert!(seeds.len() >= 4, "expected the seed corpus in {}", corpus_dir().display());
    for (path, seed) in &seeds {
        otlp_fuzz::run(seed);
        // Every seed is a valid request: it must decode, or it seeds nothing useful.
        let (kind, body) = (Input::from_selector(seed[0]), &seed[1..]);
        let decodes = match kind {
            Input::TracesProtobuf => otlp_fuzz_decode::traces_pb(body),
            Input::TracesJson => otlp_fuzz_decode::traces_json(body),
            Input::LogsProtobuf => otlp_fuzz_decode::logs_pb(body),
            Input::LogsJson => otlp_fuzz_decode::logs_json(body),
        };
        assert!(decodes, "{} does not decode as {kind:?}", path.display());
    }

    let seconds = std::env::var(SECONDS_VAR).map_or(DEFAULT_SECONDS, |v| v.parse().expect("PROMPTLOG_FUZZ_SECONDS"));
    let budget = Duration::from_secs(seconds);
    let mut rng = Rng(RNG_SEED);
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget {
        for (_, seed) in &seeds {
            let input = mutate(seed, &mut rng);
            otlp_fuzz::run(&input);
            runs += 1;
        }
    }
    println!("[fuzz_corpus] {runs} mutated inputs in {:?} ({} seeds)", started.elapsed(), seeds.len());
}

/// Whether a seed body decodes (the fuzz body ignores decode errors, which would hide a bad seed).
mod otlp_fuzz_decode {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    pub fn traces_pb(body: &[u8]) -> bool {
        ExportTraceServiceRequest::decode(body).is_ok()
    }
    pub fn traces_json(body: &[u8]) -> bool {
        serde_json::from_slice::<ExportTraceServiceRequest>(body).is_ok()
    }
    pub fn logs_pb(body: &[u8]) -> bool {
        ExportLogsServiceRequest::decode(body).is_ok()
    }
    pub fn logs_json(body: &[u8]) -> bool {
        serde_json::from_slice::<ExportLogsServiceRequest>(body).is_ok()
    }
}

/// Writes the seed corpus: one demo round in each encoding, plus small edge cases.
#[test]
#[ignore = "regenerates fuzz/corpus/otlp_decode; run by hand"]
fn write_seed_corpus() {
    let (traces, logs) = promptlog_otlp::round(0);
    let empty_traces = promptlog_otlp::traces_request(promptlog_otlp::resource("fuzz", "seed"), vec![]);
    let seeds: [(&str, Vec<u8>); 6] = [
        ("traces-demo.pb", Input::TracesProtobuf.encode(&traces.encode_to_vec())),
        ("traces-demo.json", Input::TracesJson.encode(&serde_json::to_vec(&traces).unwrap())),
        ("logs-demo.pb", Input::LogsProtobuf.encode(&logs.encode_to_vec())),
        ("logs-demo.json", Input::LogsJson.encode(&serde_json::to_vec(&logs).unwrap())),
        ("traces-empty.pb", Input::TracesProtobuf.encode(&empty_traces.encode_to_vec())),
        ("traces-empty.json", Input::TracesJson.encode(&serde_json::to_vec(&empty_traces).unwrap())),
    ];
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
