//! The seam: live and replayed requests go through the same steps and give the same rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use promptlog_otlp::{kv, kv_i64, logs_request, resource, span, traces_request};
use prost::Message;

use super::*;

const LIMITS: Limits = Limits { max_attribute_value_bytes: 1024 };

/// Marks what it sees, at both points, and counts its calls: a stand-in for project stamping and
/// redaction that shows whether a step ran, and with which context.
#[derive(Default)]
struct Marker {
    requests: AtomicUsize,
    rows: AtomicUsize,
}

struct MarkerStep(Arc<Marker>);

impl Processor for MarkerStep {
    fn name(&self) -> &'static str {
        "marker"
    }

    fn request(&self, ctx: &RequestContext, request: &mut Request) -> bool {
        self.0.requests.fetch_add(1, Relaxed);
        let Request::Traces(r) = request else { return false };
        // Idempotent, as request steps must be: replaying the stored output changes nothing.
        let mut changed = false;
        for s in r.resource_spans.iter_mut().flat_map(|rs| &mut rs.scope_spans).flat_map(|ss| &mut ss.spans) {
            if !s.attributes.iter().any(|a| a.key == "marked.by") {
                s.attributes.push(kv("marked.by", ctx.key_id()));
                changed = true;
            }
        }
        changed
    }

    fn rows(&self, ctx: &RequestContext, rows: &mut Submission) {
        self.0.rows.fetch_add(1, Relaxed);
        for call in &mut rows.calls {
            call.row.metadata.push(("project".into(), ctx.project_id().into()));
        }
    }
}

fn chat_request() -> Request {
    let attrs = vec![
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.request.model", "gpt-4o"),
        kv_i64("gen_ai.usage.input_tokens", 11),
    ];
    Request::Traces(traces_request(
        resource("svc", "test"),
        vec![span("chat gpt-4o", 1_700_000_000_000_000_000, 5, attrs)],
    ))
}

fn protobuf(request: &Request) -> Vec<u8> {
    let mut body = Vec::new();
    request.encode_raw(&mut body);
    body
}

#[test]
fn live_and_replayed_requests_run_the_same_processors_and_give_the_same_rows() {
    let marker = Arc::new(Marker::default());
    let ingestor = Ingestor::new(LIMITS, Processors::new().then(MarkerStep(marker.clone())));
    let ctx = RequestContext::new(Signal::Traces, 42).with_identity("proj-a", "key-1").unwrap();
    let request = chat_request();
    let live = ingestor.accept(&ctx, request.clone(), Some(protobuf(&request)));
    assert_eq!((marker.requests.load(Relaxed), marker.rows.load(Relaxed)), (1, 1));
    let call = &live.submission.calls[0].row;
    assert!(
        call.span_attributes.contains(&("marked.by".into(), "key-1".into())),
        "request step ran before normalising"
    );
    assert!(call.metadata.contains(&("project".into(), "proj-a".into())), "row step ran with the request's context");

    let record = live.record.expect("a valid request is spooled");
    let (stored_ctx, stored) = record::decode(&record).unwrap();
    assert_eq!(stored_ctx, ctx, "the context survives the spool");
    let Request::Traces(stored) = stored else { panic!("wrong signal") };
    assert!(stored.encode_to_vec().windows(9).any(|w| w == b"marked.by"), "the spool holds the processed request");

    let replayed = ingestor.replay(&record).unwrap();
    assert_eq!((marker.requests.load(Relaxed), marker.rows.load(Relaxed)), (2, 2), "replay runs every step too");
    assert_eq!(replayed, live.submission, "replay gives exactly the live rows");
}

#[test]
fn an_unchanged_protobuf_body_is_spooled_as_received() {
    let ingestor = Ingestor::new(LIMITS, Processors::new());
    let request = chat_request();
    let body = protobuf(&request);
    let ctx = RequestContext::new(Signal::Traces, 1);
    let record = ingestor.accept(&ctx, request, Some(body.clone())).record.unwrap();
    assert!(record.ends_with(&body));
    assert_eq!(record, record::encode(&ctx, &body));
}

#[test]
fn a_request_with_nothing_valid_is_not_spooled_and_is_reported() {
    let ingestor = Ingestor::new(LIMITS, Processors::new());
    let mut bad = span("bad", 1, 1, vec![]);
    bad.trace_id = vec![0; 16];
    let request = Request::Traces(traces_request(resource("svc", "test"), vec![bad]));
    let accepted = ingestor.accept(&RequestContext::new(Signal::Traces, 1), request, None);
    assert!(accepted.record.is_none());
    assert_eq!(accepted.report.rejected, 1);
    assert!(accepted.message(Signal::Traces, LIMITS).contains("rejected 1 of the spans"));
}

#[test]
fn a_version_1_log_record_replays_with_its_receive_time() {
    // Written by promptlog before the versioned header: [signal][received_ns LE][body].
    let log = LogRecord { body: Some(AnyValue { value: Some(Value::StringValue("hi".into())) }), ..Default::default() };
    let req = logs_request(resource("svc", "test"), vec![log]);
    let mut v1 = vec![Signal::Logs as u8];
    v1.extend_from_slice(&123_456_789i64.to_le_bytes());
    v1.extend_from_slice(&req.encode_to_vec());
    let rows = Ingestor::new(LIMITS, Processors::new()).replay(&v1).unwrap();
    assert_eq!(rows.logs.len(), 1);
    assert_eq!(rows.logs[0].timestamp, 123_456_789, "a record without time gets the receive time");
}
