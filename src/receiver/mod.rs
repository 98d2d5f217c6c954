//! OTLP receivers. Both transports share [`Receiver`]: normalise (on a blocking thread, since it is
//! CPU work), store the request in the spool and hand its rows to the pipeline, and turn the outcome
//! into `partial_success` or an error.
//!
//! A request is answered with success only once it is fsynced in the spool; if it cannot be stored
//! (spool full, disk error, shutting down) the whole request is refused as retryable
//! (UNAVAILABLE / 503 + Retry-After), so nothing acknowledged is ever dropped.

pub mod budget;
pub mod grpc;
pub mod http;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::normalize::{self, Limits};
use crate::pipeline::record::{self, Signal};
use crate::pipeline::{Ingest, IngestError, Submission};
use crate::telemetry::Table;

/// Seconds a client is asked to wait before retrying when the spool is full.
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
    /// The request could not be stored (spool full or failing, or shutting down); the client should
    /// retry after [`RETRY_AFTER`].
    #[error(transparent)]
    Unavailable(IngestError),
    /// Requests being decoded already hold the whole memory budget; retry after [`RETRY_AFTER`].
    #[error("the collector is decoding too much data at once (memory budget {budget} bytes); retry later")]
    Overloaded { budget: usize },
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

/// The result of an accepted request: how many records were refused, and why (or warnings).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Records not stored.
    pub rejected: u64,
    /// Explanation for the client; empty when everything was stored as sent.
    pub message: String,
}

impl Outcome {
    /// Whether the response needs a `partial_success` (rejections, or warnings such as truncation).
    pub fn is_partial(&self) -> bool {
        self.rejected > 0 || !self.message.is_empty()
    }
}

/// What both transports share.
#[derive(Clone)]
pub struct Receiver {
    ingest: Ingest,
    limits: Limits,
    /// Largest accepted body after decompression.
    pub max_request_bytes: usize,
    /// Memory for requests being decoded and normalised.
    pub budget: budget::MemoryBudget,
}

impl Receiver {
    /// A receiver feeding `ingest`.
    pub fn new(ingest: Ingest, limits: Limits, max_request_bytes: usize, max_inflight_bytes: usize) -> Self {
        Self { ingest, limits, max_request_bytes, budget: budget::MemoryBudget::new(max_inflight_bytes) }
    }

    /// Normalises, stores and submits a trace export request. `protobuf` is the request's body as
    /// received, when it came as protobuf: it is spooled as is instead of being encoded again.
    pub async fn traces(
        &self,
        req: ExportTraceServiceRequest,
        protobuf: Option<Vec<u8>>,
    ) -> Result<Outcome, ReceiveError> {
        let limits = self.limits;
        let received = now_ns();
        let (batch, record) = blocking(move || {
            let batch = normalize::normalize_traces(&req, limits);
            // Nothing valid, nothing to keep: such a request is answered without touching the spool.
            let record = (!batch.spans.is_empty()).then(|| match protobuf {
                Some(body) => record::from_protobuf(Signal::Traces, received, &body),
                None => record::from_message(Signal::Traces, received, &req),
            });
            (batch, record)
        })
        .await;
        self.ingest.count_rejected(Table::Traces, batch.report.rejected);
        let outcome = Outcome {
            rejected: batch.report.rejected,
            message: batch.report.message("spans", limits.max_attribute_value_bytes),
        };
        if let Some(record) = record {
            self.submit(record, Submission::from_traces(batch), Table::Traces).await?;
        }
        Ok(outcome)
    }

    /// Normalises, stores and submits a logs export request (`protobuf`: as for [`Receiver::traces`]).
    pub async fn logs(
        &self,
        req: ExportLogsServiceRequest,
        protobuf: Option<Vec<u8>>,
    ) -> Result<Outcome, ReceiveError> {
        let limits = self.limits;
        // Stored with the request: replaying it must stamp time-less records with the same time.
        let received = now_ns();
        let (batch, record) = blocking(move || {
            let batch = normalize::normalize_logs(&req, limits, received);
            let record = (!batch.logs.is_empty()).then(|| match protobuf {
                Some(body) => record::from_protobuf(Signal::Logs, received, &body),
                None => record::from_message(Signal::Logs, received, &req),
            });
            (batch, record)
        })
        .await;
        self.ingest.count_rejected(Table::Logs, batch.report.rejected);
        let outcome = Outcome {
            rejected: batch.report.rejected,
            message: batch.report.message("log records", limits.max_attribute_value_bytes),
        };
        if let Some(record) = record {
            self.submit(record, Submission::from_logs(batch), Table::Logs).await?;
        }
        Ok(outcome)
    }

    async fn submit(&self, record: Bytes, submission: Submission, table: Table) -> Result<(), ReceiveError> {
        let n = (submission.spans.len() + submission.logs.len()) as u64;
        self.ingest.submit(record, submission).await.inspect_err(|_| self.ingest.count_rejected(table, n))?;
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
