//! What enters the seam: a decoded OTLP export request of one signal, and the context the collector
//! knows about it (when it arrived, for which project, under which API key).

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::scores::ScoreBatch;
use crate::table::Table;

/// Which OTLP signal a request carries. The discriminant is the tag stored in spool records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `ExportTraceServiceRequest`.
    Traces = 1,
    /// `ExportLogsServiceRequest`.
    Logs = 2,
    /// `ExportMetricsServiceRequest`.
    Metrics = 3,
    /// Feedback scores and deletes ([`ScoreBatch`], from `promptlog.feedback.v1`).
    Scores = 4,
}

impl Signal {
    /// The signal of a stored tag.
    pub fn from_tag(tag: u8) -> Option<Signal> {
        match tag {
            1 => Some(Signal::Traces),
            2 => Some(Signal::Logs),
            3 => Some(Signal::Metrics),
            4 => Some(Signal::Scores),
            _ => None,
        }
    }

    /// The signal's name in OTLP paths and messages (`traces`, `logs`, `metrics`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Scores => "scores",
        }
    }

    /// The table the signal's rejected records are counted against: the one its raw records go to
    /// (for metrics, which spread over five tables by type, `otel_metrics_gauge`: a rejected data
    /// point's type is not always known).
    pub fn table(self) -> Table {
        match self {
            Signal::Traces => Table::Traces,
            Signal::Logs => Table::Logs,
            Signal::Metrics => Table::MetricsGauge,
            Signal::Scores => Table::Scores,
        }
    }

    /// What one record of the signal is called in messages to clients ("spans", "log records").
    pub fn records_noun(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "log records",
            Signal::Metrics => "data points",
            Signal::Scores => "scores",
        }
    }
}

/// A decoded OTLP export request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Spans.
    Traces(ExportTraceServiceRequest),
    /// Log records.
    Logs(ExportLogsServiceRequest),
    /// Metrics (their data points).
    Metrics(ExportMetricsServiceRequest),
    /// Feedback scores and deletes.
    Scores(ScoreBatch),
}

impl Request {
    /// The request's signal.
    pub fn signal(&self) -> Signal {
        match self {
            Request::Traces(_) => Signal::Traces,
            Request::Logs(_) => Signal::Logs,
            Request::Metrics(_) => Signal::Metrics,
            Request::Scores(_) => Signal::Scores,
        }
    }

    /// Decodes a protobuf body of `signal`.
    pub fn decode(signal: Signal, body: &[u8]) -> Result<Request, prost::DecodeError> {
        Ok(match signal {
            Signal::Traces => Request::Traces(ExportTraceServiceRequest::decode(body)?),
            Signal::Logs => Request::Logs(ExportLogsServiceRequest::decode(body)?),
            Signal::Metrics => Request::Metrics(ExportMetricsServiceRequest::decode(body)?),
            Signal::Scores => Request::Scores(ScoreBatch::decode(body)?),
        })
    }

    /// Protobuf-encoded length.
    pub fn encoded_len(&self) -> usize {
        match self {
            Request::Traces(r) => r.encoded_len(),
            Request::Logs(r) => r.encoded_len(),
            Request::Metrics(r) => r.encoded_len(),
            Request::Scores(r) => r.encoded_len(),
        }
    }

    /// Appends the protobuf encoding to `buf`.
    pub fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        match self {
            Request::Traces(r) => r.encode_raw(buf),
            Request::Logs(r) => r.encode_raw(buf),
            Request::Metrics(r) => r.encode_raw(buf),
            Request::Scores(r) => r.encode_raw(buf),
        }
    }
}

/// An OTLP `Export*ServiceRequest` message type: what the receivers are generic over, so every
/// signal shares one receive path.
pub trait ExportRequest: Message + Default + serde::de::DeserializeOwned + Send + 'static {
    /// The signal it carries.
    const SIGNAL: Signal;
    /// The matching `Export*ServiceResponse`.
    type Response: Message + serde::Serialize + Default + Send + 'static;
    /// Wraps the message.
    fn into_request(self) -> Request;
    /// The response: success, or `partial_success` with the count of rejected records and why.
    fn response(partial: Option<(u64, String)>) -> Self::Response;
}

impl ExportRequest for ExportTraceServiceRequest {
    const SIGNAL: Signal = Signal::Traces;
    type Response = ExportTraceServiceResponse;
    fn into_request(self) -> Request {
        Request::Traces(self)
    }
    fn response(partial: Option<(u64, String)>) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message,
            }),
        }
    }
}

impl ExportRequest for ExportLogsServiceRequest {
    const SIGNAL: Signal = Signal::Logs;
    type Response = ExportLogsServiceResponse;
    fn into_request(self) -> Request {
        Request::Logs(self)
    }
    fn response(partial: Option<(u64, String)>) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message,
            }),
        }
    }
}

impl ExportRequest for ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;
    type Response = ExportMetricsServiceResponse;
    fn into_request(self) -> Request {
        Request::Metrics(self)
    }
    fn response(partial: Option<(u64, String)>) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message,
            }),
        }
    }
}

/// The project of requests that carry no project: every request while auth is off, and spool records
/// written before projects existed.
pub const DEFAULT_PROJECT: &str = "default";

/// Longest project or key id a record can carry.
pub const MAX_CONTEXT_ID_BYTES: usize = 255;

/// Everything the collector knows about a request besides its body. Stored in the spool record's
/// header, so a replayed request is processed with exactly the context it arrived with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The request's signal.
    pub signal: Signal,
    /// When the collector received it, ns since the epoch: log records without a time get it.
    pub received_ns: i64,
    project_id: String,
    key_id: String,
    /// Bit flags for processing decisions that must survive a restart (none defined yet).
    pub flags: u32,
}

/// A project or key id longer than [`MAX_CONTEXT_ID_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} of {len} bytes is longer than the {MAX_CONTEXT_ID_BYTES} bytes a spool record can hold")]
pub struct ContextIdTooLong {
    /// Which id.
    pub what: &'static str,
    /// Its length.
    pub len: usize,
}

impl RequestContext {
    /// A context with no project and no key (its rows go to [`DEFAULT_PROJECT`]).
    pub fn new(signal: Signal, received_ns: i64) -> Self {
        Self { signal, received_ns, project_id: String::new(), key_id: String::new(), flags: 0 }
    }

    /// Sets the project and the key the request was authenticated with.
    pub fn with_identity(mut self, project_id: &str, key_id: &str) -> Result<Self, ContextIdTooLong> {
        for (what, id) in [("project id", project_id), ("key id", key_id)] {
            if id.len() > MAX_CONTEXT_ID_BYTES {
                return Err(ContextIdTooLong { what, len: id.len() });
            }
        }
        self.project_id = project_id.to_owned();
        self.key_id = key_id.to_owned();
        Ok(self)
    }

    /// The project, empty when none was assigned.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The project its rows belong to: the assigned one, else [`DEFAULT_PROJECT`].
    pub fn row_project(&self) -> &str {
        if self.project_id.is_empty() { DEFAULT_PROJECT } else { &self.project_id }
    }

    /// The key id, empty when none was used.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}
