//! The OTLP export services with a codec that keeps the request's bytes as received, so a gRPC
//! request is spooled as sent, like an HTTP protobuf body, instead of decoded and encoded again.
//!
//! tonic's generated `TraceServiceServer` (and its logs and metrics twins) fix their codec to
//! `ProstCodec`, which hands the handler only the decoded message. [`ExportServer`] is the same
//! service, generic over the signal, with [`RawCodec`]: its decoder copies the message's bytes out
//! of tonic's buffer once (as the HTTP receiver holds its body) and decodes them with prost, and the
//! handler gets both ([`Raw`]).

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use bytes::Buf;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, logs_service_server};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, metrics_service_server};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, trace_service_server};
use promptlog_ingest::ExportRequest;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};
use tonic_prost::ProstEncoder;

use crate::receiver::Receiver;

/// An OTLP export request type served over gRPC: its service's full name.
pub(super) trait GrpcExport: ExportRequest {
    /// `package.Service`, as in the request path `/package.Service/Export`.
    const SERVICE: &'static str;
}

// The names the generated servers answer to.
impl GrpcExport for ExportTraceServiceRequest {
    const SERVICE: &'static str = trace_service_server::SERVICE_NAME;
}

impl GrpcExport for ExportLogsServiceRequest {
    const SERVICE: &'static str = logs_service_server::SERVICE_NAME;
}

impl GrpcExport for ExportMetricsServiceRequest {
    const SERVICE: &'static str = metrics_service_server::SERVICE_NAME;
}

/// A decoded request with the bytes it was decoded from (after decompression).
pub(super) struct Raw<R> {
    pub(super) message: R,
    pub(super) body: Vec<u8>,
}

/// Decodes into [`Raw`]; encodes responses as prost does.
struct RawCodec<R>(PhantomData<R>);

impl<R: ExportRequest> Codec for RawCodec<R> {
    type Encode = R::Response;
    type Decode = Raw<R>;
    type Encoder = ProstEncoder<R::Response>;
    type Decoder = RawDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder(PhantomData)
    }
}

struct RawDecoder<R>(PhantomData<R>);

impl<R: ExportRequest> Decoder for RawDecoder<R> {
    type Item = Raw<R>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Raw<R>>, Status> {
        let mut body = vec![0; src.remaining()];
        src.copy_to_slice(&mut body);
        // INVALID_ARGUMENT, as OTLP asks for data that can never be accepted (prost's own decoder
        // says INTERNAL).
        let message = R::decode(body.as_slice())
            .map_err(|e| Status::invalid_argument(format!("cannot decode the OTLP request: {e}")))?;
        Ok(Some(Raw { message, body }))
    }
}

/// The export service of signal `R`, answering `/R::SERVICE/Export` (every other path is
/// UNIMPLEMENTED, as in a generated server).
pub(super) struct ExportServer<R> {
    receiver: Receiver,
    max_decoding_message_size: usize,
    accept: EnabledCompressionEncodings,
    send: EnabledCompressionEncodings,
    signal: PhantomData<fn() -> R>,
}

impl<R> Clone for ExportServer<R> {
    fn clone(&self) -> Self {
        Self { receiver: self.receiver.clone(), signal: PhantomData, ..*self }
    }
}

impl<R> ExportServer<R> {
    /// Accepts gzip and zstd requests up to `max_decoding_message_size` decompressed; answers gzip
    /// to clients that accept it.
    pub(super) fn new(receiver: Receiver, max_decoding_message_size: usize) -> Self {
        let mut accept = EnabledCompressionEncodings::default();
        accept.enable(CompressionEncoding::Gzip);
        accept.enable(CompressionEncoding::Zstd);
        let mut send = EnabledCompressionEncodings::default();
        send.enable(CompressionEncoding::Gzip);
        Self { receiver, max_decoding_message_size, accept, send, signal: PhantomData }
    }
}

impl<R: GrpcExport> NamedService for ExportServer<R> {
    const NAME: &'static str = R::SERVICE;
}

impl<R, B> Service<http::Request<B>> for ExportServer<R>
where
    R: GrpcExport,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let export = request.uri().path().strip_prefix('/').and_then(|p| p.strip_prefix(R::SERVICE)) == Some("/Export");
        if !export {
            return Box::pin(async { Ok(Status::new(Code::Unimplemented, "no such method").into_http()) });
        }
        let this = self.clone();
        Box::pin(async move {
            let mut grpc = Grpc::new(RawCodec::<R>(PhantomData))
                .apply_compression_config(this.accept, this.send)
                .apply_max_message_size_config(Some(this.max_decoding_message_size), None);
            Ok(grpc.unary(Export::<R>(this.receiver, PhantomData), request).await)
        })
    }
}

/// The handler, as tonic's unary path wants it.
struct Export<R>(Receiver, PhantomData<fn() -> R>);

impl<R: GrpcExport> UnaryService<Raw<R>> for Export<R> {
    type Response = R::Response;
    type Future = BoxFuture<tonic::Response<R::Response>, Status>;

    fn call(&mut self, request: tonic::Request<Raw<R>>) -> Self::Future {
        let receiver = self.0.clone();
        Box::pin(async move { receiver.export_grpc(request).await })
    }
}
