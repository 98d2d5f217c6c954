//! Raw-bytes gRPC: send request bodies no protobuf encoder would produce, and see the raw answer.

use bytes::{Buf, BufMut};
use tonic::Status;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

/// gRPC method of OTLP trace export.
pub const TRACES_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// gRPC method of OTLP logs export.
pub const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// `google.rpc.Status`, the body of OTLP/HTTP error responses (protobuf or JSON).
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    #[serde(default)]
    pub code: i32,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub message: String,
}

/// A gRPC codec that passes raw bytes through in both directions: the request message is sent as
/// given, the response message returned undecoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Calls `method` at `url` with `body` as the raw request message; `gzip` compresses it on the wire.
pub async fn grpc_raw(url: &str, method: &'static str, body: Vec<u8>, gzip: bool) -> Result<Vec<u8>, Status> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("collector reachable over gRPC");
    let mut grpc = tonic::client::Grpc::new(channel);
    if gzip {
        grpc = grpc.send_compressed(CompressionEncoding::Gzip);
    }
    grpc.ready().await.expect("gRPC channel ready");
    grpc.unary(tonic::Request::new(body), PathAndQuery::from_static(method), RawCodec)
        .await
        .map(tonic::Response::into_inner)
}
