//! The seam with encryption at rest: `accept` seals what it spools, `replay` opens it, under any key
//! of the ring, and still reads records written before encryption was turned on.

use promptlog_otlp::{kv, resource, span, traces_request};
use prost::Message;

use super::*;
use crate::seal::{KEY_BYTES, KeyId, Purpose, envelope_key};

const LIMITS: Limits = Limits { max_attribute_value_bytes: 1024 };
const MARKER: &str = "plaintext-marker-5f1c";

fn ring(current: KeyId, ids: &[KeyId]) -> KeyRing {
    KeyRing::new(current, ids.iter().map(|&id| (id, [id as u8; KEY_BYTES]))).unwrap()
}

fn sealing(current: KeyId, ids: &[KeyId]) -> Ingestor {
    Ingestor::new(LIMITS, Processors::new()).sealing_with(ring(current, ids))
}

fn chat(ctx_key: &str) -> (RequestContext, Request, Vec<u8>) {
    let attrs = vec![kv("gen_ai.operation.name", "chat"), kv("gen_ai.prompt", MARKER)];
    let request = Request::Traces(traces_request(
        resource("svc", "test"),
        vec![span("chat gpt-4o", 1_700_000_000_000_000_000, 5, attrs)],
    ));
    let mut body = Vec::new();
    request.encode_raw(&mut body);
    let ctx = RequestContext::new(Signal::Traces, 42).with_identity("proj-secret", ctx_key).unwrap();
    (ctx, request, body)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn accepted_records_are_sealed_and_replay_to_the_live_rows() {
    let ingestor = sealing(1, &[1]);
    let (ctx, request, body) = chat("key-1");
    for protobuf in [Some(body), None] {
        let live = ingestor.accept(&ctx, request.clone(), protobuf);
        let record = live.record.clone().expect("spooled");
        assert_eq!(envelope_key(Purpose::SpoolRecord, &record), Ok(1), "sealed under the current key");
        for plain in [MARKER, "proj-secret", "gpt-4o"] {
            assert!(!contains(&record, plain), "{plain:?} shows through the sealed record");
        }
        assert!(record::decode(&record).is_err(), "a sealed record is not a plain one");
        assert_eq!(ingestor.replay(&record).unwrap(), live.submission);
    }
}

#[test]
fn a_record_sealed_under_key_1_replays_after_rotation_to_key_2() {
    let (ctx, request, body) = chat("key-1");
    let before = sealing(1, &[1]).accept(&ctx, request.clone(), Some(body.clone()));
    let rotated = sealing(2, &[1, 2]);
    assert_eq!(rotated.replay(&before.record.unwrap()).unwrap(), before.submission);
    let after = rotated.accept(&ctx, request, Some(body)).record.unwrap();
    assert_eq!(envelope_key(Purpose::SpoolRecord, &after), Ok(2), "new records use the new current key");
}

#[test]
fn a_record_under_an_unknown_key_or_without_keys_is_an_error() {
    let (ctx, request, body) = chat("key-1");
    let record = sealing(3, &[3]).accept(&ctx, request, Some(body)).record.unwrap();
    let unknown = sealing(1, &[1, 2]).replay(&record).unwrap_err();
    assert!(matches!(unknown, RecordError::Sealed(SealError::UnknownKey(3))), "{unknown}");
    assert!(unknown.to_string().contains("key id 3"), "{unknown}");
    let off = Ingestor::new(LIMITS, Processors::new()).replay(&record).unwrap_err();
    assert!(matches!(off, RecordError::Sealed(SealError::NoKeys(3))), "{off}");
    let mut tampered = record.to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    let err = sealing(3, &[3]).replay(&tampered).unwrap_err();
    assert!(matches!(err, RecordError::Sealed(SealError::Tampered(3))), "{err}");
}

#[test]
fn unsealed_records_written_before_encryption_still_replay() {
    let (ctx, request, body) = chat("key-1");
    let plain = Ingestor::new(LIMITS, Processors::new()).accept(&ctx, request.clone(), Some(body));
    let v2 = plain.record.unwrap();
    assert!(contains(&v2, MARKER), "without keys the record is plaintext");
    let ingestor = sealing(2, &[1, 2]);
    assert_eq!(ingestor.replay(&v2).unwrap(), plain.submission, "version 2, unsealed");
    let Request::Traces(message) = request else { unreachable!() };
    let mut v1 = vec![Signal::Traces as u8];
    v1.extend_from_slice(&42i64.to_le_bytes());
    v1.extend_from_slice(&message.encode_to_vec());
    assert_eq!(ingestor.replay(&v1).unwrap().calls.len(), 1, "version 1, unsealed");
}
