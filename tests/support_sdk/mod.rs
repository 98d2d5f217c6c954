//! Helpers shared by `e2e_sdk.rs` and `bad_input.rs`: reading ClickHouse JSONEachRow cells, sending
//! hand-built OTLP requests over each transport, and a raw-bytes gRPC client for undecodable bodies.
#![allow(dead_code)] // Each test binary uses a different subset of this module.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use serde_json::{Map, Value as Json};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// One row of a `query_json` answer.
pub type Row = Map<String, Json>;

/// A UInt64/Int64 cell: ClickHouse quotes 64-bit integers in JSON by default.
pub fn cell_u64(row: &Row, col: &str) -> u64 {
    match row.get(col) {
        Some(Json::String(s)) => s.parse().unwrap_or_else(|e| panic!("{col} = {s:?} is not an integer: {e}")),
        Some(Json::Number(n)) => n.as_u64().unwrap_or_else(|| panic!("{col} = {n} is not a u64")),
        other => panic!("{col}: expected an integer, got {other:?}"),
    }
}

/// A String cell.
pub fn cell_str<'a>(row: &'a Row, col: &str) -> &'a str {
    row.get(col).and_then(Json::as_str).unwrap_or_else(|| panic!("{col}: expected a string, got {:?}", row.get(col)))
}

/// A Nullable(Float64) cell.
pub fn cell_f64_opt(row: &Row, col: &str) -> Option<f64> {
    match row.get(col) {
        None | Some(Json::Null) => None,
        Some(Json::Number(n)) => n.as_f64(),
        Some(Json::String(s)) => Some(s.parse().unwrap_or_else(|e| panic!("{col} = {s:?}: {e}"))),
        other => panic!("{col}: expected a float or null, got {other:?}"),
    }
}

/// An Array(String) cell.
pub fn cell_strs(row: &Row, col: &str) -> Vec<String> {
    row.get(col)
        .and_then(Json::as_array)
        .unwrap_or_else(|| panic!("{col}: expected an array, got {:?}", row.get(col)))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("{col}: non-string item {v:?}")).to_owned())
        .collect()
}

/// A Map(String, String) cell.
pub fn cell_map(row: &Row, col: &str) -> BTreeMap<String, String> {
    map_of(row.get(col).unwrap_or_else(|| panic!("{col} missing")), col)
}

/// A JSON object of strings as a map.
pub fn map_of(v: &Json, what: &str) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap_or_else(|| panic!("{what}: expected a map, got {v:?}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_else(|| panic!("{what}.{k}: non-string {v:?}")).to_owned()))
        .collect()
}

/// An Array(Map(String, String)) cell.
pub fn cell_maps(row: &Row, col: &str) -> Vec<BTreeMap<String, String>> {
    row.get(col)
        .and_then(Json::as_array)
        .unwrap_or_else(|| panic!("{col}: expected an array, got {:?}", row.get(col)))
        .iter()
        .map(|m| map_of(m, col))
        .collect()
}

/// A String cell holding JSON (`None` when empty).
pub fn cell_json(row: &Row, col: &str) -> Result<Option<Json>, String> {
    let s = cell_str(row, col);
    if s.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(s).map(Some).map_err(|e| format!("{col} is not JSON ({e}): {s:?}"))
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, Message, serde::Deserialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    #[serde(default)]
    pub code: i32,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub message: String,
}

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

/// An HTTP response: status, content type, body.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// POSTs `body` to `{base}{path}` with the given headers.
pub async fn post(base: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> HttpReply {
    let client = reqwest::Client::new();
    let mut req = client.post(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body).send().await.expect("collector reachable over HTTP");
    let status = resp.status().as_u16();
    let content_type =
        resp.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
    HttpReply { status, content_type, body: resp.bytes().await.expect("read body").to_vec() }
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

/// A gRPC codec that sends raw bytes as the request message and returns the raw response bytes, to
/// send bodies no protobuf encoder would produce.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

#[derive(Debug, Clone, Default)]
pub struct RawEncoder;

#[derive(Debug, Clone, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// gRPC method paths of the OTLP services.
pub const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
pub const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Calls `method` with `body` as the raw request message; `gzip` compresses it on the wire.
pub async fn grpc_raw(url: &str, method: &'static str, body: Vec<u8>, gzip: bool) -> Result<Vec<u8>, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("collector reachable over gRPC");
    let mut grpc = tonic::client::Grpc::new(channel);
    if gzip {
        grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    grpc.ready().await.expect("gRPC channel ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(body), path, RawCodec).await.map(tonic::Response::into_inner)
}
