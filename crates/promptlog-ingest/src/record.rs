//! The spool record: what promptlog stores for each accepted request, read back by the same seam
//! for the backlog and for replay after a restart.
//!
//! Version 2 (written now):
//! `[0xFF][u8 version = 2][u16 LE header length H][i64 LE received_ns][u8 signal][u32 LE flags]`
//! `[u8 len][project id][u8 len][key id]` — H bytes in all, counted from the start — then the
//! protobuf `Export*ServiceRequest`. A reader skips header bytes it does not know, so a later
//! version can append fields.
//!
//! Version 1 (read only; written before the ingest seam existed): `[u8 signal][i64 LE received_ns]`
//! then the body. Its first byte is a signal tag (1 or 2), never 0xFF, which tells the two apart.
//!
//! With encryption at rest on, the spool holds each record (of version 2) inside a sealed envelope
//! instead, which starts with 0xFE (see [`crate::seal`]); [`crate::Ingestor`] seals and opens them.
//!
//! The receive time is part of the record because normalising logs stamps records that carry no time
//! with it: reading a record back must give the very same rows, or the replay's "already stored?"
//! check (which keys log rows by their `Timestamp`) would miss rows written before a crash.

use bytes::{BufMut, Bytes, BytesMut};

use crate::request::{MAX_CONTEXT_ID_BYTES, Request, RequestContext, Signal};

/// First byte of every record of version 2 or later.
const MARKER: u8 = 0xFF;
/// The version [`encode`] writes.
pub const VERSION: u8 = 2;
/// Fixed part of a version 2 header: marker, version, length, time, signal, flags, two id lengths.
const FIXED_V2: usize = 1 + 1 + 2 + 8 + 1 + 4 + 1 + 1;
/// Largest header [`encode`] writes (the spool's record cap minus this is the largest body).
pub const MAX_HEADER_BYTES: usize = FIXED_V2 + 2 * MAX_CONTEXT_ID_BYTES;
/// Header length of a version 1 record.
const V1_HEADER: usize = 9;

/// Why a stored record cannot be turned back into a request. It was valid when it was accepted, so
/// this means damage on disk or a record written by an incompatible version: it can never be
/// delivered.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Shorter than its header.
    #[error("spool record of {0} bytes is shorter than its header")]
    Short(usize),
    /// Unknown signal tag.
    #[error("spool record has unknown signal tag {0}")]
    Signal(u8),
    /// A format version this build cannot read (written by a newer promptlog).
    #[error("spool record has format version {0}, newer than this promptlog reads ({VERSION})")]
    Version(u8),
    /// An id in the header is not UTF-8.
    #[error("spool record header holds an id that is not UTF-8")]
    Id,
    /// The body is not the protobuf message its tag names.
    #[error("spool record body does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A sealed record that cannot be opened (unknown key id, no keys, or damage).
    #[error("spool record: {0}")]
    Sealed(#[from] crate::seal::SealError),
}

fn header(ctx: &RequestContext, body_len: usize) -> BytesMut {
    let (project, key) = (ctx.project_id().as_bytes(), ctx.key_id().as_bytes());
    let header_len = FIXED_V2 + project.len() + key.len();
    let mut buf = BytesMut::with_capacity(header_len + body_len);
    buf.put_u8(MARKER);
    buf.put_u8(VERSION);
    // At most MAX_HEADER_BYTES (ids are capped by `RequestContext`), far below u16::MAX.
    buf.put_u16_le(header_len as u16);
    buf.put_i64_le(ctx.received_ns);
    buf.put_u8(ctx.signal as u8);
    buf.put_u32_le(ctx.flags);
    for id in [project, key] {
        buf.put_u8(id.len() as u8);
        buf.put_slice(id);
    }
    buf
}

/// A record from a protobuf body exactly as received (no re-encoding).
pub fn encode(ctx: &RequestContext, body: &[u8]) -> Bytes {
    let mut buf = header(ctx, body.len());
    buf.put_slice(body);
    buf.freeze()
}

/// A record from a decoded request (gRPC and OTLP/JSON, or a request a processor changed): costs one
/// protobuf encode, which the caller runs on a blocking thread together with normalisation.
pub fn encode_request(ctx: &RequestContext, request: &Request) -> Bytes {
    let mut buf = header(ctx, request.encoded_len());
    request.encode_raw(&mut buf);
    buf.freeze()
}

/// Reads a record of any supported version back into its context and request.
pub fn decode(record: &[u8]) -> Result<(RequestContext, Request), RecordError> {
    let (ctx, body) = match record.first() {
        Some(&MARKER) => decode_header_v2(record)?,
        Some(_) => decode_header_v1(record)?,
        None => return Err(RecordError::Short(0)),
    };
    let request = Request::decode(ctx.signal, body)?;
    Ok((ctx, request))
}

fn decode_header_v1(record: &[u8]) -> Result<(RequestContext, &[u8]), RecordError> {
    if record.len() < V1_HEADER {
        return Err(RecordError::Short(record.len()));
    }
    let (head, body) = record.split_at(V1_HEADER);
    let signal = Signal::from_tag(head[0]).ok_or(RecordError::Signal(head[0]))?;
    let received_ns = i64::from_le_bytes(head[1..9].try_into().expect("8-byte slice"));
    Ok((RequestContext::new(signal, received_ns), body))
}

fn decode_header_v2(record: &[u8]) -> Result<(RequestContext, &[u8]), RecordError> {
    let short = || RecordError::Short(record.len());
    let version = *record.get(1).ok_or_else(short)?;
    if version > VERSION {
        return Err(RecordError::Version(version));
    }
    let header_len = u16::from_le_bytes(record.get(2..4).ok_or_else(short)?.try_into().expect("2 bytes")) as usize;
    if header_len < FIXED_V2 || record.len() < header_len {
        return Err(short());
    }
    let (head, body) = record.split_at(header_len);
    let received_ns = i64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
    let signal = Signal::from_tag(head[12]).ok_or(RecordError::Signal(head[12]))?;
    let flags = u32::from_le_bytes(head[13..17].try_into().expect("4 bytes"));
    let mut rest = &head[17..];
    let mut ids = [""; 2];
    for id in &mut ids {
        let (&len, tail) = rest.split_first().ok_or_else(short)?;
        let bytes = tail.get(..len as usize).ok_or_else(short)?;
        *id = std::str::from_utf8(bytes).map_err(|_| RecordError::Id)?;
        rest = &tail[len as usize..];
    }
    let mut ctx = RequestContext::new(signal, received_ns).with_identity(ids[0], ids[1]).map_err(|_| short())?;
    ctx.flags = flags;
    Ok((ctx, body))
}

#[cfg(test)]
mod tests {
    use promptlog_otlp::{kv, logs_request, resource, span, traces_request};
    use prost::Message;

    use super::*;

    fn traces() -> Request {
        let spans = vec![span("chat m", 1_700_000_000_000_000_000, 5, vec![kv("gen_ai.operation.name", "chat")])];
        Request::Traces(traces_request(resource("svc", "test"), spans))
    }

    #[test]
    fn both_encodings_round_trip_with_their_context() {
        let request = traces();
        let mut ctx = RequestContext::new(Signal::Traces, 7).with_identity("proj-1", "key-9").unwrap();
        ctx.flags = 0b101;
        let Request::Traces(message) = &request else { unreachable!() };
        for record in [encode_request(&ctx, &request), encode(&ctx, &message.encode_to_vec())] {
            let (back, again) = decode(&record).unwrap();
            assert_eq!(back, ctx);
            assert_eq!(again, request);
        }
    }

    #[test]
    fn version_1_records_are_still_read() {
        // Exactly what promptlog wrote before the versioned header: [signal][received_ns LE][body].
        let req = logs_request(resource("svc", "test"), vec![Default::default()]);
        let mut v1 = vec![Signal::Logs as u8];
        v1.extend_from_slice(&123_456_789i64.to_le_bytes());
        v1.extend_from_slice(&req.encode_to_vec());
        let (ctx, back) = decode(&v1).unwrap();
        assert_eq!(ctx, RequestContext::new(Signal::Logs, 123_456_789));
        assert_eq!(back, Request::Logs(req));
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        assert!(matches!(decode(b""), Err(RecordError::Short(0))));
        assert!(matches!(decode(b"\x01abc"), Err(RecordError::Short(4))));
        assert!(matches!(decode(&[9; 12]), Err(RecordError::Signal(9))));
        assert!(matches!(decode(b"\x01\0\0\0\0\0\0\0\0\xff\xff"), Err(RecordError::Decode(_))));
        assert!(matches!(decode(b"\xff\x03\x20\x00"), Err(RecordError::Version(3))));
        let ctx = RequestContext::new(Signal::Traces, 1).with_identity("p", "k").unwrap();
        let good = encode(&ctx, b"");
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "a record cut to {cut} bytes must not decode");
        }
    }

    #[test]
    fn ids_longer_than_a_record_holds_are_refused() {
        let long = "p".repeat(MAX_CONTEXT_ID_BYTES + 1);
        assert!(RequestContext::new(Signal::Traces, 0).with_identity(&long, "").is_err());
        let max = "k".repeat(MAX_CONTEXT_ID_BYTES);
        let ctx = RequestContext::new(Signal::Traces, 0).with_identity(&max, &max).unwrap();
        assert_eq!(encode(&ctx, b"").len(), MAX_HEADER_BYTES);
    }
}
