//! Tools for the hostile-input suite: raw protobuf wire encoding (to build messages prost would
//! refuse to encode, or too slowly), raw-bytes gRPC and HTTP clients that report every outcome, and
//! the "still serving" check run after each case.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
pub use promptlog_testkit::{LOGS_EXPORT, RpcStatus, TRACES_EXPORT};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::sdk;
pub use crate::support::sdk::HttpReply;
use crate::support::stack::Stack;

pub const PROTOBUF: &str = "application/x-protobuf";
pub const JSON: &str = "application/json";
/// A small request cap for the size cases, so that going past it is cheap.
pub const SMALL_LIMIT: usize = 1 << 20;

// ---- protobuf wire format -------------------------------------------------------------------

/// Appends `n` as a base-128 varint.
pub fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A length-delimited field (`tag`, wire type 2) holding `payload`.
pub fn len_field(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    varint(u64::from(tag << 3 | 2), &mut out);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// How a deep AnyValue nests.
#[derive(Debug, Clone, Copy)]
pub enum Nesting {
    /// `arrayValue { values: [ ... ] }`.
    Array,
    /// `kvlistValue { values: [ { key: "k", value: ... } ] }`.
    Kvlist,
}

/// Protobuf bytes of an AnyValue `depth` levels deep around the string `"leaf"`.
pub fn deep_any_value_pb(depth: usize, nesting: Nesting) -> Vec<u8> {
    let mut value = len_field(1, b"leaf"); // AnyValue.string_value
    for _ in 0..depth {
        value = match nesting {
            // AnyValue.array_value(5) → ArrayValue.values(1) → AnyValue
            Nesting::Array => len_field(5, &len_field(1, &value)),
            // AnyValue.kvlist_value(6) → KeyValueList.values(1) → KeyValue { key(1), value(2) }
            Nesting::Kvlist => len_field(6, &len_field(1, &[len_field(1, b"k"), len_field(2, &value)].concat())),
        };
    }
    value
}

/// OTLP/JSON of the same AnyValue.
pub fn deep_any_value_json(depth: usize, nesting: Nesting) -> String {
    let (open, close) = match nesting {
        Nesting::Array => (r#"{"arrayValue":{"values":["#, "]}}"),
        Nesting::Kvlist => (r#"{"kvlistValue":{"values":[{"key":"k","value":"#, "}]}}"),
    };
    format!("{}{}{}", open.repeat(depth), r#"{"stringValue":"leaf"}"#, close.repeat(depth))
}

/// A `Span.attributes` (field 9) entry with an already-encoded AnyValue.
pub fn attribute_field(key: &[u8], any_value: &[u8]) -> Vec<u8> {
    len_field(9, &[len_field(1, key), len_field(2, any_value)].concat())
}

/// `span` encoded, followed by `extra` raw fields (protobuf merges repeated and overrides scalar fields).
pub fn span_with(span: &Span, extra: &[u8]) -> Vec<u8> {
    let mut bytes = span.encode_to_vec();
    bytes.extend_from_slice(extra);
    bytes
}

/// An `ExportTraceServiceRequest` holding already-encoded spans under one resource and scope.
pub fn traces_request_bytes(spans: &[Vec<u8>]) -> Vec<u8> {
    let resource = promptlog_otlp::resource("hostile", "test").encode_to_vec();
    let spans: Vec<u8> = spans.iter().flat_map(|s| len_field(2, s)).collect(); // ScopeSpans.spans
    let resource_spans = [len_field(1, &resource), len_field(2, &spans)].concat();
    len_field(1, &resource_spans) // ExportTraceServiceRequest.resource_spans
}

/// `count` distinct string attributes (`k0 = "v"`, `k1 = "v"`, ...), written straight to the wire.
pub fn many_attributes(count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 16);
    for i in 0..count {
        let key = format!("k{i}");
        let kv = [len_field(1, key.as_bytes()), len_field(2, &len_field(1, b"v"))].concat();
        out.extend_from_slice(&len_field(9, &kv));
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift64*), so a failure reproduces.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

// ---- spans and requests ---------------------------------------------------------------------

/// A valid span named `name`, started a second ago.
pub fn valid_span(name: &str) -> Span {
    promptlog_otlp::span(name, promptlog_otlp::now_ns() - 1_000_000_000, 5, vec![promptlog_otlp::kv("case", name)])
}

/// A trace request with `spans` under the suite's resource.
pub fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    promptlog_otlp::traces_request(promptlog_otlp::resource("hostile", "test"), spans)
}

// ---- clients --------------------------------------------------------------------------------

/// What the hostile cases check in a reply.
impl HttpReply {
    /// The error body, in whichever encoding the collector answered.
    pub fn rpc_status(&self) -> RpcStatus {
        if self.content_type.starts_with(JSON) {
            let v: serde_json::Value = serde_json::from_slice(&self.body).expect("JSON error body");
            RpcStatus { code: v["code"].as_i64().unwrap() as i32, message: v["message"].as_str().unwrap().into() }
        } else {
            RpcStatus::decode(self.body.as_slice()).expect("protobuf error body")
        }
    }

    /// Asserts an error status with the given gRPC code in the body; returns the message.
    pub fn assert_error(&self, status: u16, code: Code) -> String {
        let rpc = self.rpc_status();
        assert_eq!((self.status, Code::from_i32(rpc.code)), (status, code), "unexpected reply: {}", rpc.message);
        rpc.message
    }

    /// Asserts success; returns `partial_success.rejected_spans` (0 when absent).
    pub fn rejected_spans(&self) -> i64 {
        assert_eq!(self.status, 200, "expected success, got {self:?}");
        let response = if self.content_type.starts_with(JSON) {
            serde_json::from_slice::<ExportTraceServiceResponse>(&self.body).expect("JSON response")
        } else {
            ExportTraceServiceResponse::decode(self.body.as_slice()).expect("protobuf response")
        };
        response.partial_success.map_or(0, |p| p.rejected_spans)
    }
}

/// POSTs `body` to `path` and returns whatever came back.
pub async fn post(stack: &Stack, path: &str, content_type: &str, body: Vec<u8>, gzip: bool) -> HttpReply {
    sdk::post_otlp(&stack.otlp_http_url(), path, content_type, body, gzip).await
}

async fn channel(stack: &Stack) -> Channel {
    Channel::from_shared(stack.otlp_grpc_url()).unwrap().connect().await.expect("gRPC connect")
}

/// Sends raw message bytes to a gRPC `method`; gzip-compresses them on the wire when asked.
pub async fn grpc_raw(stack: &Stack, method: &'static str, message: Vec<u8>, gzip: bool) -> Result<Vec<u8>, Status> {
    promptlog_testkit::grpc_raw(&stack.otlp_grpc_url(), method, message, gzip).await
}

/// Sends a trace export with the generated client; returns `rejected_spans` or the error.
pub async fn grpc_traces(stack: &Stack, request: ExportTraceServiceRequest, gzip: bool) -> Result<i64, Status> {
    let mut client = TraceServiceClient::new(channel(stack).await);
    if gzip {
        client = client.send_compressed(CompressionEncoding::Gzip);
    }
    let response = client.export(request).await?.into_inner();
    Ok(response.partial_success.map_or(0, |p| p.rejected_spans))
}

/// Asserts a gRPC error code, printing the message for the record.
pub fn assert_code(case: &str, result: Result<impl std::fmt::Debug, Status>, code: Code) {
    match result {
        Err(status) => {
            println!("[hostile] {case}: gRPC {:?} ({})", status.code(), status.message());
            assert_eq!(status.code(), code, "{case}: {}", status.message());
        }
        Ok(v) => panic!("{case}: expected {code:?}, got success {v:?}"),
    }
}

/// After a hostile case: a valid request over each transport succeeds in full, and `/health` is 200.
pub async fn assert_still_serving(stack: &Stack) {
    let reply = post(stack, "/v1/traces", PROTOBUF, traces(vec![valid_span("still-serving")]).encode_to_vec(), false);
    assert_eq!(reply.await.rejected_spans(), 0);
    let rejected = grpc_traces(stack, traces(vec![valid_span("still-serving")]), false).await;
    assert_eq!(rejected.expect("gRPC export after a hostile case"), 0);
    let health = reqwest::get(format!("{}/health", stack.otlp_http_url())).await.expect("/health answers");
    assert_eq!(health.status().as_u16(), 200);
}

/// Span ids stored in `otel_traces` for spans named `name`.
pub async fn stored_span_ids(stack: &Stack, name: &str) -> Vec<String> {
    let rows =
        stack.query_json(&format!("SELECT SpanId FROM otel_traces WHERE SpanName = '{name}' ORDER BY SpanId")).await;
    rows.iter().map(|r| promptlog_testkit::cell(r, "SpanId")).collect()
}
