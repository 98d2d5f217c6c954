//! Sending hand-built OTLP requests over each transport in each encoding (`e2e_sdk`, `bad_input`),
//! and the one OTLP/HTTP client of the suites (also behind `Stack::post_otlp` and `hostile`). Row
//! readers, `google.rpc.Status` and raw-bytes gRPC are in `promptlog-testkit`.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;

/// OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    Proto,
    Json,
}

impl Enc {
    pub fn content_type(self) -> &'static str {
        match self {
            Enc::Proto => "application/x-protobuf",
            Enc::Json => "application/json",
        }
    }

    /// Encodes an OTLP message in this encoding.
    pub fn encode<M: Message + serde::Serialize>(self, m: &M) -> Vec<u8> {
        match self {
            Enc::Proto => m.encode_to_vec(),
            Enc::Json => serde_json::to_vec(m).expect("serialize OTLP/JSON"),
        }
    }

    /// Decodes a response body in this encoding.
    pub fn decode<M: Message + Default + serde::de::DeserializeOwned>(self, body: &[u8]) -> M {
        match self {
            Enc::Proto => M::decode(body).unwrap_or_else(|e| panic!("response is not protobuf ({e}): {body:?}")),
            Enc::Json => serde_json::from_slice(body)
                .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", String::from_utf8_lossy(body))),
        }
    }
}

/// An HTTP response: status, content type, body, and how long it took to arrive in full.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl HttpReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Longest one HTTP request may take (hostile bodies included) before the test fails.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// Installs ring as rustls' process-wide crypto provider (if none is). The OTel HTTP exporters'
/// reqwest is built with `rustls-no-provider` once `promptlog-instrument` is in the same build
/// (cargo unifies reqwest's features), and then refuses to build a client without one.
pub fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// POSTs `body` to `{base}{path}` with the given headers.
pub async fn post(base: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> HttpReply {
    let mut req = reqwest::Client::new().post(format!("{base}{path}")).timeout(HTTP_TIMEOUT);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let started = Instant::now();
    let resp = req.body(body).send().await.expect("collector reachable over HTTP");
    let status = resp.status().as_u16();
    let content_type =
        resp.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
    let body = resp.bytes().await.expect("read body").to_vec();
    HttpReply { status, content_type, body, elapsed: started.elapsed() }
}

/// POSTs an OTLP/HTTP `body` of `content_type`, gzip-encoded (and so declared) when `gzip`.
pub async fn post_otlp(base: &str, path: &str, content_type: &str, body: Vec<u8>, gzip: bool) -> HttpReply {
    let mut headers = vec![("content-type", content_type)];
    if gzip {
        headers.push(("content-encoding", "gzip"));
    }
    post(base, path, &headers, body).await
}

/// Sends a trace request over OTLP/HTTP in `enc`; panics unless 200; returns the decoded response.
pub async fn http_traces(base: &str, enc: Enc, req: &ExportTraceServiceRequest) -> ExportTraceServiceResponse {
    let reply = post(base, "/v1/traces", &[("content-type", enc.content_type())], enc.encode(req)).await;
    assert_eq!(reply.status, 200, "POST /v1/traces ({enc:?}) answered {}: {}", reply.status, reply.text());
    enc.decode(&reply.body)
}

/// Sends a logs request over OTLP/HTTP in `enc`; panics unless 200; returns the decoded response.
pub async fn http_logs(base: &str, enc: Enc, req: &ExportLogsServiceRequest) -> ExportLogsServiceResponse {
    let reply = post(base, "/v1/logs", &[("content-type", enc.content_type())], enc.encode(req)).await;
    assert_eq!(reply.status, 200, "POST /v1/logs ({enc:?}) answered {}: {}", reply.status, reply.text());
    enc.decode(&reply.body)
}

/// Sends a trace request over OTLP/gRPC.
pub async fn grpc_traces(
    url: &str,
    req: ExportTraceServiceRequest,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    let mut client = TraceServiceClient::connect(url.to_owned()).await.expect("collector reachable over gRPC");
    client.export(req).await.map(tonic::Response::into_inner)
}

/// Sends a logs request over OTLP/gRPC.
pub async fn grpc_logs(url: &str, req: ExportLogsServiceRequest) -> Result<ExportLogsServiceResponse, tonic::Status> {
    let mut client = LogsServiceClient::connect(url.to_owned()).await.expect("collector reachable over gRPC");
    client.export(req).await.map(tonic::Response::into_inner)
}
