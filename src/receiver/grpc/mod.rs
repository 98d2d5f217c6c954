//! OTLP/gRPC: `TraceService`, `LogsService` and `MetricsService`, one generic export path for all
//! three, and promptlog's own `FeedbackService` ([`feedback`]). gzip and zstd request compression are
//! accepted.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use promptlog_ingest::ExportRequest;
use promptlog_proto::feedback::v1::feedback_service_server::FeedbackServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::{RETRY_AFTER, ReceiveError, Receiver};
use crate::auth::{Auth, Identity, Scope, presented_key};

// OTLP's status codes for tonic's own decode errors (oversized → RESOURCE_EXHAUSTED, not the
// retryable OUT_OF_RANGE; undecodable → INVALID_ARGUMENT, not INTERNAL).
mod otlp_status;

mod feedback;

impl From<ReceiveError> for Status {
    fn from(e: ReceiveError) -> Self {
        match e {
            ReceiveError::Decode { .. } | ReceiveError::ContentType(_) | ReceiveError::ContentEncoding(_) => {
                Status::invalid_argument(e.to_string())
            }
            ReceiveError::TooLarge { .. } => Status::resource_exhausted(e.to_string()),
            ReceiveError::Unavailable(_) | ReceiveError::Overloaded { .. } => {
                Status::unavailable(format!("{e}; retry after {} s", RETRY_AFTER.as_secs()))
            }
            ReceiveError::Auth(r) if r.is_forbidden() => Status::permission_denied(r.to_string()),
            ReceiveError::Auth(r) => Status::unauthenticated(r.to_string()),
        }
    }
}

/// Checks the `authorization` (or `x-api-key`) metadata of every call for the service's scope
/// before its message is decoded, and hands the [`Identity`] to the handler in the request's
/// extensions.
#[derive(Clone)]
struct Authenticate(Auth, Scope);

impl tonic::service::Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata();
        let key = presented_key(
            metadata.get("authorization").map(|v| v.as_bytes()),
            metadata.get("x-api-key").map(|v| v.as_bytes()),
        );
        let identity = self.0.check(key, self.1).map_err(ReceiveError::Auth)?;
        request.extensions_mut().insert(identity);
        Ok(request)
    }
}

impl Receiver {
    /// The one gRPC export path, for every signal.
    async fn export_grpc<R: ExportRequest>(&self, request: Request<R>) -> Result<Response<R::Response>, Status> {
        // Set by `Authenticate`, which every service is wrapped in; absent would be a wiring bug.
        let Some(identity) = request.extensions().get::<Identity>().cloned() else {
            return Err(Status::unauthenticated("no API key checked"));
        };
        // tonic has decoded it already; reserve what it costs while it is normalised and spooled.
        let _reservation = self.budget.try_reserve(request.get_ref().encoded_len())?;
        // Spooled as `encode_to_vec()` of the decoded request: tonic does not expose the raw bytes.
        Ok(Response::new(self.export(&identity, request.into_inner(), None).await?))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.export_grpc(request).await
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.export_grpc(request).await
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.export_grpc(request).await
    }
}

/// Serves OTLP/gRPC on `listener` (over TLS when `tls` is set: tonic's own TLS can neither reload
/// nor set a minimum version, so connections come from [`crate::tls::incoming`]) until `shutdown`
/// is cancelled, then finishes in-flight calls.
pub(crate) async fn serve(
    listener: TcpListener,
    receiver: Receiver,
    tls: Option<crate::tls::Acceptor>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let limit = receiver.max_request_bytes;
    macro_rules! service {
        ($server:ident) => {
            service!($server, Scope::Ingest)
        };
        ($server:ident, $scope:expr) => {
            otlp_status::OtlpStatus(InterceptedService::new(
                $server::new(receiver.clone())
                    .max_decoding_message_size(limit)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .send_compressed(CompressionEncoding::Gzip),
                Authenticate(receiver.auth.clone(), $scope),
            ))
        };
    }
    tonic::transport::Server::builder()
        .add_service(service!(TraceServiceServer))
        .add_service(service!(LogsServiceServer))
        .add_service(service!(MetricsServiceServer))
        .add_service(service!(FeedbackServiceServer, Scope::Feedback))
        .serve_with_incoming_shutdown(crate::tls::incoming(listener, tls), shutdown.cancelled_owned())
        .await
}
