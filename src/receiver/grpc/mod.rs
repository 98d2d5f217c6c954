//! OTLP/gRPC: `TraceService`, `LogsService` and `MetricsService`, one generic export path for all
//! three that keeps each request's bytes for the spool ([`raw`]), and promptlog's own
//! `FeedbackService` ([`feedback`]). gzip and zstd request compression are accepted.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
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

// The export services, spooling each request as received.
mod raw;
use raw::{ExportServer, Raw};

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
    async fn export_grpc<R: ExportRequest>(&self, request: Request<Raw<R>>) -> Result<Response<R::Response>, Status> {
        // Set by `Authenticate`, which every service is wrapped in; absent would be a wiring bug.
        let Some(identity) = request.extensions().get::<Identity>().cloned() else {
            return Err(Status::unauthenticated("no API key checked"));
        };
        let Raw { message, body } = request.into_inner();
        // The codec has decoded it already; reserve what it costs while it is normalised and spooled.
        let _reservation = self.budget.try_reserve(body.len())?;
        // Spooled as received, unless a processor (redaction, project stamping) changed it.
        Ok(Response::new(self.export(&identity, message, Some(body)).await?))
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
    let authenticated = |scope| Authenticate(receiver.auth.clone(), scope);
    macro_rules! export {
        ($request:ty) => {
            otlp_status::OtlpStatus(InterceptedService::new(
                ExportServer::<$request>::new(receiver.clone(), limit),
                authenticated(Scope::Ingest),
            ))
        };
    }
    let feedback = FeedbackServiceServer::new(receiver.clone())
        .max_decoding_message_size(limit)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip);
    tonic::transport::Server::builder()
        .add_service(export!(ExportTraceServiceRequest))
        .add_service(export!(ExportLogsServiceRequest))
        .add_service(export!(ExportMetricsServiceRequest))
        .add_service(otlp_status::OtlpStatus(InterceptedService::new(feedback, authenticated(Scope::Feedback))))
        .serve_with_incoming_shutdown(crate::tls::incoming(listener, tls), shutdown.cancelled_owned())
        .await
}
