//! OTLP receivers. Both transports share [`Receiver`]: normalise (on a blocking thread, since it is
//! CPU work), submit to the pipeline, and turn the outcome into `partial_success` or an error.

pub mod grpc;
pub mod http;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::normalize::{self, Limits};
use crate::pipeline::{Ingest, IngestError, Submission};
use crate::telemetry::Table;

/// Seconds a client is asked to wait before retrying when the pipeline is full.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Why a request was refused as a whole. One conversion to each transport's status lives in
/// `grpc.rs` and `http.rs`.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
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
    /// The pipeline is full or stopping; the client should retry after [`RETRY_AFTER`].
    #[error(transparent)]
    Unavailable(#[from] IngestError),
}

/// The result of an accepted request: how many records were refused, and why (or warnings).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Records not stored.
    pub rejected: u64,
    /// Explanation for the client; empty when everything was stored as sent.
    pub message: String,
}

/// What both transports share.
#[derive(Clone)]
pub struct Receiver {
    ingest: Ingest,
    limits: Limits,
    /// Largest accepted body after decompression.
    pub max_request_bytes: usize,
}

impl Receiver {
    /// A receiver feeding `ingest`.
    pub fn new(ingest: Ingest, limits: Limits, max_request_bytes: usize) -> Self {
        Self { ingest, limits, max_request_bytes }
    }

    /// Normalises and submits a trace export request.
    pub async fn traces(&self, req: ExportTraceServiceRequest) -> Result<Outcome, ReceiveError> {
        let limits = self.limits;
        let batch = blocking(move || normalize::normalize_traces(&req, limits)).await;
        self.ingest.count_rejected(Table::Traces, batch.report.rejected);
        let outcome = Outcome {
            rejected: batch.report.rejected,
            message: batch.report.message("spans", limits.max_attribute_value_bytes),
        };
        let submission = Submission { spans: batch.spans, calls: batch.calls, ..Submission::default() };
        self.submit(submission, Table::Traces).await?;
        Ok(outcome)
    }

    /// Normalises and submits a logs export request.
    pub async fn logs(&self, req: ExportLogsServiceRequest) -> Result<Outcome, ReceiveError> {
        let limits = self.limits;
        let now = now_ns();
        let batch = blocking(move || normalize::normalize_logs(&req, limits, now)).await;
        self.ingest.count_rejected(Table::Logs, batch.report.rejected);
        let outcome = Outcome {
            rejected: batch.report.rejected,
            message: batch.report.message("log records", limits.max_attribute_value_bytes),
        };
        let submission = Submission { logs: batch.logs, fragments: batch.fragments, ..Submission::default() };
        self.submit(submission, Table::Logs).await?;
        Ok(outcome)
    }

    async fn submit(&self, submission: Submission, table: Table) -> Result<(), ReceiveError> {
        let n = submission.spans.len() + submission.logs.len();
        if n == 0 {
            return Ok(());
        }
        self.ingest.submit(submission).await.inspect_err(|_| self.ingest.count_rejected(table, n as u64))?;
        Ok(())
    }
}

/// Runs CPU-bound work off the async worker threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        // A panic in normalisation is a bug; surface it rather than answer as if nothing happened.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn now_ns() -> i64 {
    let ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    i64::try_from(ns).unwrap_or(i64::MAX)
}
