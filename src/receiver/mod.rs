//! OTLP receivers, and the feedback API (`scores`) beside them. Both transports decode a request, reserve its memory, and hand it to
//! [`Ingest::accept`](crate::pipeline::Ingest::accept) through one generic path per transport
//! ([`Receiver::export`]), whatever the signal; the outcome becomes `partial_success` or an error.
//!
//! A request is answered with success only once it is fsynced in the spool; if it cannot be stored
//! (spool full, disk error, shutting down) the whole request is refused as retryable
//! (UNAVAILABLE / 503 + Retry-After), so nothing acknowledged is ever dropped.

pub(crate) mod budget;
pub(crate) mod grpc;
pub mod http;
mod scores;

use std::time::Duration;

use promptlog_ingest::{ExportRequest, RequestContext};

use crate::auth::{Auth, Identity, Refusal};
use crate::pipeline::{Ingest, IngestError, Outcome};
use crate::runtime::now_ns;

/// Seconds a client is asked to wait before retrying when the spool is full.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Why a request was refused as a whole. One conversion to each transport's status lives in
/// `grpc/mod.rs` and `http/mod.rs`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReceiveError {
    /// The body is not a valid OTLP message in its declared encoding (not retryable).
    #[error("cannot decode {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    /// The body (or its decompressed form) exceeds the configured cap (not retryable).
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// `Content-Type` is neither protobuf nor JSON.
    #[error("unsupported content type {0:?}; use application/x-protobuf or application/json")]
    ContentType(String),
    /// `Content-Encoding` other than gzip or identity.
    #[error("unsupported content encoding {0:?}; use gzip or none")]
    ContentEncoding(String),
    /// The request could not be stored (spool full or failing, or shutting down); the client should
    /// retry after [`RETRY_AFTER`].
    #[error(transparent)]
    Unavailable(IngestError),
    /// Requests being decoded already hold the whole memory budget; retry after [`RETRY_AFTER`].
    #[error("the collector is decoding too much data at once (memory budget {budget} bytes); retry later")]
    Overloaded { budget: usize },
    /// No usable API key (UNAUTHENTICATED / 401) or one without the scope (PERMISSION_DENIED / 403).
    /// Checked before the body is decoded; nothing of the request is spooled or stored.
    #[error(transparent)]
    Auth(#[from] Refusal),
}

impl From<IngestError> for ReceiveError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::TooLarge { max, .. } => {
                ReceiveError::TooLarge { limit: usize::try_from(max).unwrap_or(usize::MAX) }
            }
            other => ReceiveError::Unavailable(other),
        }
    }
}

/// What both transports share.
#[derive(Clone)]
pub(crate) struct Receiver {
    ingest: Ingest,
    /// Who may send, and as which project.
    pub(crate) auth: Auth,
    /// Largest accepted body after decompression.
    max_request_bytes: usize,
    /// Memory for requests being decoded and normalised.
    budget: budget::MemoryBudget,
}

impl Receiver {
    /// A receiver feeding `ingest`.
    pub(crate) fn new(ingest: Ingest, auth: Auth, max_request_bytes: usize, max_inflight_bytes: usize) -> Self {
        Self { ingest, auth, max_request_bytes, budget: budget::MemoryBudget::new(max_inflight_bytes) }
    }

    /// Accepts a decoded export request of any signal, sent by `identity`, and builds its response.
    /// `protobuf` is the request's body as received, when it came as protobuf: it is spooled as is.
    pub(crate) async fn export<R: ExportRequest>(
        &self,
        identity: &Identity,
        request: R,
        protobuf: Option<Vec<u8>>,
    ) -> Result<R::Response, ReceiveError> {
        // Stored with the request: replaying it must stamp time-less log records with the same time,
        // and its rows with the same project. Ids are checked when keys load, so this cannot fail.
        let ctx = RequestContext::new(R::SIGNAL, now_ns())
            .with_identity(&identity.project, &identity.key_id)
            .map_err(|e| ReceiveError::Decode { what: "API key identity", detail: e.to_string() })?;
        let outcome: Outcome = self.ingest.accept(ctx, request.into_request(), protobuf).await?;
        Ok(R::response(outcome.partial()))
    }
}
