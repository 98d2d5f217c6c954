//! The body of the `otlp_decode` fuzz target: the receivers' decode step followed by the
//! normaliser, on arbitrary bytes. Shared with `tests/it/fuzz_corpus.rs` (through `#[path]`), which
//! runs it over the seed corpus and mutations of it on stable Rust in every `cargo test`.
//!
//! Input layout: the first byte selects what the rest is ([`Input`]); the rest is the body.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use promptlog_ingest::normalize::normalize;
use promptlog_ingest::{Limits, Request};
use prost::Message;

/// Small, so that truncation runs on most inputs rather than only on huge ones.
pub const LIMITS: Limits = Limits { max_attribute_value_bytes: 64 };
/// "Now" for log records that carry no time (fixed: runs must be reproducible).
const NOW_NS: i64 = 1_700_000_000_000_000_000;

/// What the body of an input is, chosen by its first byte modulo 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `ExportTraceServiceRequest`, protobuf.
    TracesProtobuf = 0,
    /// `ExportTraceServiceRequest`, OTLP/JSON.
    TracesJson = 1,
    /// `ExportLogsServiceRequest`, protobuf.
    LogsProtobuf = 2,
    /// `ExportLogsServiceRequest`, OTLP/JSON.
    LogsJson = 3,
}

impl Input {
    /// Every kind, in selector order.
    pub const ALL: [Input; 4] = [Input::TracesProtobuf, Input::TracesJson, Input::LogsProtobuf, Input::LogsJson];

    /// The kind an input's first byte selects.
    pub fn from_selector(byte: u8) -> Input {
        Input::ALL[usize::from(byte % 4)]
    }

    /// `body` prefixed with this kind's selector byte: a fuzz input.
    pub fn encode(self, body: &[u8]) -> Vec<u8> {
        [&[self as u8], body].concat()
    }
}

/// Decodes `data` as the receivers do and normalises what decodes. Panics only on a bug: a panic
/// inside the normaliser, or rows and rejections not adding up to the records sent.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    match Input::from_selector(selector) {
        Input::TracesProtobuf => ExportTraceServiceRequest::decode(body).ok().into_iter().for_each(traces),
        Input::TracesJson => serde_json::from_slice(body).ok().into_iter().for_each(traces),
        Input::LogsProtobuf => ExportLogsServiceRequest::decode(body).ok().into_iter().for_each(logs),
        Input::LogsJson => serde_json::from_slice(body).ok().into_iter().for_each(logs),
    }
}

fn traces(request: ExportTraceServiceRequest) {
    let sent: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    let (batch, report) = normalize(&Request::Traces(request), LIMITS, NOW_NS);
    assert_eq!(batch.spans.len() as u64 + report.rejected, sent as u64, "every span stored or rejected");
    assert!(batch.calls.len() <= batch.spans.len(), "an LLM call without its span");
    let _ = report.message("spans", LIMITS.max_attribute_value_bytes);
}

fn logs(request: ExportLogsServiceRequest) {
    let sent: usize = request.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum();
    let (batch, report) = normalize(&Request::Logs(request), LIMITS, NOW_NS);
    assert_eq!(batch.logs.len() as u64 + report.rejected, sent as u64, "every record stored or rejected");
    let _ = report.message("log records", LIMITS.max_attribute_value_bytes);
}
