//! What promptlog stores in the spool for each accepted request, and how a stored record becomes rows
//! again (for the backlog and for replay after a restart).
//!
//! Layout: `[u8 signal][i64 LE received_ns][protobuf Export{Trace,Logs}ServiceRequest]`.
//!
//! The receive time is part of the record because normalising logs stamps records that carry no time
//! with it: reading a record back must give the very same rows, or the replay's "already stored?"
//! check (which keys log rows by their `Timestamp`) would miss rows written before a crash.

use bytes::{BufMut, Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::Submission;
use crate::normalize::{self, Limits};

/// Bytes in front of the protobuf body.
pub const HEADER_BYTES: usize = 9;

/// Which export request a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `ExportTraceServiceRequest`.
    Traces = 1,
    /// `ExportLogsServiceRequest`.
    Logs = 2,
}

/// Why a stored record cannot be turned back into rows. It was valid when it was accepted, so this
/// means damage on disk or a record written by an incompatible version: it can never be delivered.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Shorter than the header.
    #[error("spool record of {0} bytes is shorter than its header")]
    Short(usize),
    /// Unknown signal tag.
    #[error("spool record has unknown signal tag {0}")]
    Signal(u8),
    /// The body is not the protobuf message its tag names.
    #[error("spool record body does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

fn header(signal: Signal, received_ns: i64, capacity: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(HEADER_BYTES + capacity);
    buf.put_u8(signal as u8);
    buf.put_i64_le(received_ns);
    buf
}

/// A record from a protobuf body exactly as received (no re-encoding).
pub fn from_protobuf(signal: Signal, received_ns: i64, body: &[u8]) -> Bytes {
    let mut buf = header(signal, received_ns, body.len());
    buf.put_slice(body);
    buf.freeze()
}

/// A record from a decoded request (gRPC and OTLP/JSON): costs one protobuf encode of the request,
/// which the caller runs on a blocking thread together with normalisation.
pub fn from_message(signal: Signal, received_ns: i64, message: &impl Message) -> Bytes {
    let mut buf = header(signal, received_ns, message.encoded_len());
    message.encode_raw(&mut buf);
    buf.freeze()
}

/// Decodes a stored record and normalises it again, exactly as the receiver did when accepting it.
/// CPU-bound: call it on a blocking thread.
pub fn to_submission(record: &[u8], limits: Limits) -> Result<Submission, RecordError> {
    if record.len() < HEADER_BYTES {
        return Err(RecordError::Short(record.len()));
    }
    let (head, body) = record.split_at(HEADER_BYTES);
    let received_ns = i64::from_le_bytes(head[1..HEADER_BYTES].try_into().expect("8-byte slice"));
    match head[0] {
        t if t == Signal::Traces as u8 => {
            let req = ExportTraceServiceRequest::decode(body)?;
            Ok(Submission::from_traces(normalize::normalize_traces(&req, limits)))
        }
        t if t == Signal::Logs as u8 => {
            let req = ExportLogsServiceRequest::decode(body)?;
            Ok(Submission::from_logs(normalize::normalize_logs(&req, limits, received_ns)))
        }
        other => Err(RecordError::Signal(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{kv, logs_request, resource, span, traces_request};

    const LIMITS: Limits = Limits { max_attribute_value_bytes: 1024 };

    #[test]
    fn both_encodings_round_trip_to_the_same_rows() {
        let spans = vec![span("chat m", 1_700_000_000_000_000_000, 5, vec![kv("gen_ai.operation.name", "chat")])];
        let req = traces_request(resource("svc", "test"), spans);
        let direct = Submission::from_traces(normalize::normalize_traces(&req, LIMITS));
        for record in [from_message(Signal::Traces, 7, &req), from_protobuf(Signal::Traces, 7, &req.encode_to_vec())] {
            let again = to_submission(&record, LIMITS).unwrap();
            assert_eq!(again.spans, direct.spans);
            assert_eq!(again.calls.len(), 1);
        }
    }

    #[test]
    fn logs_keep_their_receive_time() {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
        let record = opentelemetry_proto::tonic::logs::v1::LogRecord {
            body: Some(AnyValue { value: Some(Value::StringValue("hi".into())) }),
            ..Default::default()
        };
        let req = logs_request(resource("svc", "test"), vec![record]);
        let stored = from_message(Signal::Logs, 123_456_789, &req);
        let rows = to_submission(&stored, LIMITS).unwrap();
        assert_eq!(rows.logs.len(), 1);
        assert_eq!(rows.logs[0].timestamp, 123_456_789, "a record without time gets the receive time");
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        assert!(matches!(to_submission(b"\x01abc", LIMITS), Err(RecordError::Short(4))));
        assert!(matches!(to_submission(&[9; 12], LIMITS), Err(RecordError::Signal(9))));
        assert!(matches!(to_submission(b"\x01\0\0\0\0\0\0\0\0\xff\xff", LIMITS), Err(RecordError::Decode(_))));
    }
}
