//! promptlog's ingest core: pure and synchronous (no runtime, no sockets, no ClickHouse client).
//!
//! # Layout
//! - [`request`]: the decoded OTLP request of one [`Signal`] and its [`RequestContext`].
//! - [`record`]: the versioned spool record (context + body), written and read back here.
//! - [`seal`]: encryption at rest of spool records and dead-letter files (AEAD, key ids, rotation).
//! - [`process`]: the processor stage, the steps every request goes through (the project stamp first).
//! - [`normalize`]: OTLP → typed rows, one file per GenAI convention (and `metrics.rs` for data points).
//! - [`join`]: merges log-borne content into its span's LLM call, whichever arrives first.
//! - [`batch`]: the synchronous batcher (rows in, full or old batches out; no timer).
//! - [`scores`]: feedback scores (`promptlog.feedback.v1`): spooled batch, validation, rows.
//! - [`rows`] and [`table`]: every table's row struct, and the table each belongs to.
//!
//! # The seam
//! [`Ingestor::accept`] (live requests) and [`Ingestor::replay`] (spool records read back by the
//! backlog or after a restart) both turn a request into rows through one private function, so a
//! processor added to [`Processors`] runs on both paths, in the same order, with the same context.
//! With a [`KeyRing`] ([`Ingestor::sealing_with`]), the record `accept` returns is sealed and `replay`
//! opens it; records written before encryption was turned on are still read as they are.

pub mod batch;
pub mod join;
pub mod normalize;
pub mod process;
pub mod record;
pub mod request;
pub mod rows;
pub mod scores;
pub mod seal;
pub mod table;

use bytes::Bytes;

pub use normalize::{ContentFragment, Limits, NormalizedCall, Report};
pub use process::{Processor, Processors};
pub use record::RecordError;
pub use request::{ExportRequest, Request, RequestContext, Signal};
pub use seal::{KeyRing, SealError};
pub use table::{Table, TableRow};

use rows::{LogRow, MetricRows, ScoreRow, SpanRow};

/// Rows made from one request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Submission {
    /// `otel_traces` rows.
    pub spans: Vec<SpanRow>,
    /// LLM calls found among the spans (the join turns them into `llm_calls` rows).
    pub calls: Vec<NormalizedCall>,
    /// `otel_logs` rows.
    pub logs: Vec<LogRow>,
    /// GenAI content from log records, for the join.
    pub fragments: Vec<ContentFragment>,
    /// `otel_metrics_*` rows, one per data point (they never go through the join).
    pub metrics: MetricRows,
    /// `scores` rows: submitted scores, delete tombstones, and OTLP `gen_ai.evaluation.result`
    /// records (those come in addition to their span or log row).
    pub scores: Vec<ScoreRow>,
}

impl Submission {
    /// Rows that go to ClickHouse: spans, log records, calls (content fragments merge into calls)
    /// and metric data points.
    pub fn rows(&self) -> u64 {
        (self.spans.len() + self.logs.len() + self.calls.len() + self.metrics.len() + self.scores.len()) as u64
    }

    /// Raw records (spans, log records, data points or scores) of the request's own signal; an OTLP
    /// evaluation record counts once more, as its score.
    pub fn records(&self) -> u64 {
        (self.spans.len() + self.logs.len() + self.metrics.len() + self.scores.len()) as u64
    }

    /// Raw rows per table, for counting.
    pub fn per_table(&self) -> [(Table, u64); 8] {
        let m = &self.metrics;
        [
            (Table::Traces, self.spans.len() as u64),
            (Table::Logs, self.logs.len() as u64),
            (Table::MetricsGauge, m.gauge.len() as u64),
            (Table::MetricsSum, m.sum.len() as u64),
            (Table::MetricsHistogram, m.histogram.len() as u64),
            (Table::MetricsExpHistogram, m.exp_histogram.len() as u64),
            (Table::MetricsSummary, m.summary.len() as u64),
            (Table::Scores, self.scores.len() as u64),
        ]
    }
}

/// A live request after the seam: the rows, the spool record to store (none when nothing of the
/// request is valid), and the report for the client's `partial_success`.
#[derive(Debug)]
pub struct Accepted {
    /// What to append to the spool before acknowledging.
    pub record: Option<Bytes>,
    /// The rows, for the pipeline.
    pub submission: Submission,
    /// Rejected and truncated records.
    pub report: Report,
}

impl Accepted {
    /// The `partial_success` message for the client, empty when everything was stored as sent.
    pub fn message(&self, signal: Signal, limits: Limits) -> String {
        self.report.message(signal.records_noun(), limits.max_attribute_value_bytes)
    }
}

/// The seam: limits and processors, applied identically to live and replayed requests, and the
/// keys spool records are sealed with, if any.
#[derive(Debug)]
pub struct Ingestor {
    limits: Limits,
    processors: Processors,
    keys: Option<KeyRing>,
}

impl Ingestor {
    /// An ingestor normalising under `limits` and running `processors` in order; spool records are
    /// plaintext unless [`Ingestor::sealing_with`] gives it keys.
    pub fn new(limits: Limits, processors: Processors) -> Self {
        Self { limits, processors, keys: None }
    }

    /// Seals every spool record it makes under `keys`' current key, and opens sealed records under
    /// any of them (encryption at rest).
    pub fn sealing_with(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The keys records are sealed with, when encryption at rest is on (dead letters use them too).
    pub fn keys(&self) -> Option<&KeyRing> {
        self.keys.as_ref()
    }

    /// The normalisation limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A live request. `protobuf` is its body as received, when it came as protobuf: it is spooled
    /// as is unless a processor changed the request. CPU-bound: call it on a blocking thread.
    pub fn accept(&self, ctx: &RequestContext, mut request: Request, protobuf: Option<Vec<u8>>) -> Accepted {
        let (changed, submission, report) = self.rows(ctx, &mut request);
        // Nothing valid, nothing to keep: such a request is answered without touching the spool.
        let record = (submission.records() > 0).then(|| {
            let plain = match protobuf {
                Some(body) if !changed => record::encode(ctx, &body),
                _ => record::encode_request(ctx, &request),
            };
            match &self.keys {
                Some(keys) => keys.seal(seal::Purpose::SpoolRecord, &plain),
                None => plain,
            }
        });
        Accepted { record, submission, report }
    }

    /// A spool record read back: the same rows [`Ingestor::accept`] made from it. CPU-bound. A sealed
    /// record is opened first; one this ingestor has no key for is an error (never a panic).
    pub fn replay(&self, record: &[u8]) -> Result<Submission, RecordError> {
        let (ctx, mut request) = if seal::is_sealed(record) {
            let plain = match &self.keys {
                Some(keys) => keys.open(seal::Purpose::SpoolRecord, record)?,
                None => {
                    let id = seal::envelope_key(seal::Purpose::SpoolRecord, record)?;
                    return Err(SealError::NoKeys(id).into());
                }
            };
            record::decode(&plain)?
        } else {
            record::decode(record)?
        };
        Ok(self.rows(&ctx, &mut request).1)
    }

    /// Runs the processors' [`Processor::merged`] on a call the join merged duplicates into.
    pub fn merged(&self, row: &mut rows::LlmCallRow) {
        self.processors.merged(row);
    }

    /// The one path from a request to rows: request processors, normalisation, row processors.
    fn rows(&self, ctx: &RequestContext, request: &mut Request) -> (bool, Submission, Report) {
        let changed = self.processors.request(ctx, request);
        let (mut submission, report) = normalize::normalize(request, self.limits, ctx.received_ns);
        self.processors.rows(ctx, &mut submission);
        (changed, submission, report)
    }
}

#[cfg(test)]
mod seal_tests;
#[cfg(test)]
mod tests;
