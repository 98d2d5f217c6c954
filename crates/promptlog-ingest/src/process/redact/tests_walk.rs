//! The processor on whole OTLP requests: every place a string is stored, drop, content policies,
//! counts, and the seam (live and replay, the spool record).

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use promptlog_otlp::{kv, kv_i64, kv_value, logs_request, resource, span, span_log, traces_request};

use super::*;
use crate::{Ingestor, Limits, Processors, Signal};

const EMAIL: &str = "jane.doe@example.com";
const CARD: &str = "4111 1111 1111 1111";
const BAD_CARD: &str = "4111 1111 1111 1112";
const IBAN: &str = "DE89 3704 0044 0532 0130 00";
const KEY: &str = "sk-proj-AbCdEf1234567890GhIjKlMn";
const PII: [&str; 4] = [EMAIL, CARD, IBAN, KEY];

fn mask_all() -> RedactionSpec {
    RedactionSpec {
        rules: Builtin::ALL.iter().map(|b| Rule::builtin(*b, Action::Mask)).collect(),
        hash_key: Some(HashKey::new(b"k".to_vec())),
        ..RedactionSpec::default()
    }
}

fn text() -> String {
    format!("mail {EMAIL}, card {CARD}, iban {IBAN}, key {KEY}, not a card {BAD_CARD}")
}

fn messages_json() -> String {
    serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": format!("Hi!\n{}", text())}]}])
        .to_string()
}

/// A chat span with PII everywhere a string can be.
fn pii_span() -> Span {
    let mut s = span(
        &format!("chat for {EMAIL}"),
        1_700_000_000_000_000_000,
        5,
        vec![
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.request.model", "gpt-4o"),
            kv_i64("gen_ai.usage.input_tokens", 11),
            kv("gen_ai.input.messages", messages_json()),
            kv("gen_ai.output.messages", messages_json().replace("user", "assistant")),
            kv("app.note", text()),
            kv_value("app.list", Value::ArrayValue(ArrayValue { values: vec![any(&text())] })),
            kv_value("app.map", Value::KvlistValue(KeyValueList { values: vec![kv("inner", text())] })),
        ],
    );
    s.events.push(Event { name: "note".into(), attributes: vec![kv("gen_ai.prompt", text())], ..Event::default() });
    s.links.push(Link { attributes: vec![kv("link.note", text())], ..Link::default() });
    s.status = Some(Status { message: text(), code: 2 });
    s
}

fn any(s: &str) -> AnyValue {
    AnyValue { value: Some(Value::StringValue(s.to_owned())) }
}

fn traces(span: Span) -> Request {
    let mut res = resource("svc", "test");
    res.attributes.push(kv("host.owner", EMAIL));
    Request::Traces(traces_request(res, vec![span]))
}

fn encoded(request: &Request) -> Vec<u8> {
    let mut buf = Vec::new();
    request.encode_raw(&mut buf);
    buf
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn ctx(signal: Signal) -> RequestContext {
    RequestContext::new(signal, 1_700_000_000_000_000_000)
}

fn span_of(request: &Request) -> &Span {
    let Request::Traces(r) = request else { panic!() };
    &r.resource_spans[0].scope_spans[0].spans[0]
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

#[test]
fn every_stored_string_is_redacted_and_a_second_run_changes_nothing() {
    let r = Redactor::new(mask_all()).unwrap();
    let mut request = traces(pii_span());
    assert!(r.redact_request(&ctx(Signal::Traces), &mut request));
    let bytes = encoded(&request);
    for pii in PII {
        assert!(!contains(&bytes, pii), "{pii} left in the request");
    }
    assert!(contains(&bytes, BAD_CARD), "the card number failing Luhn is left alone");
    for marker in ["[REDACTED:email]", "[REDACTED:credit_card]", "[REDACTED:iban]", "[REDACTED:secret]"] {
        assert!(contains(&bytes, marker), "{marker}");
    }
    let s = span_of(&request);
    let messages = attr(&s.attributes, "gen_ai.input.messages").unwrap();
    let Some(Value::StringValue(json)) = &messages.value else { panic!() };
    serde_json::from_str::<serde_json::Value>(json).expect("content is still JSON");
    // 4 per text × 8 places, plus the e-mail in the name and in the resource.
    let Some(Value::IntValue(n)) = attr(&s.attributes, REDACTIONS_ATTRIBUTE).unwrap().value else { panic!() };
    assert_eq!(n, 4 * 8 + 2);
    let counters = r.counters();
    let per: Vec<(&str, u64)> = counters.per_detector().into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(per, vec![("secret", 8), ("email", 10), ("iban", 8), ("credit_card", 8)]);

    let again = request.clone();
    assert!(!r.redact_request(&ctx(Signal::Traces), &mut request), "idempotent");
    assert_eq!(request, again);
}

#[test]
fn log_bodies_and_attributes_are_redacted() {
    let r = Redactor::new(mask_all()).unwrap();
    let s = pii_span();
    let body = Value::KvlistValue(KeyValueList { values: vec![kv("content", text())] });
    let log = span_log(&s, "gen_ai.user.message", vec![kv("note", text())], Some(body));
    let mut request = Request::Logs(logs_request(resource("svc", "test"), vec![log]));
    assert!(r.redact_request(&ctx(Signal::Logs), &mut request));
    let bytes = encoded(&request);
    assert!(PII.iter().all(|p| !contains(&bytes, p)));
    assert!(contains(&bytes, BAD_CARD));
    let Request::Logs(l) = &request else { panic!() };
    let log = &l.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(attr(&log.attributes, REDACTIONS_ATTRIBUTE).unwrap().value, Some(Value::IntValue(8)));
}

#[test]
fn drop_removes_the_attribute_or_body() {
    let spec = RedactionSpec { rules: vec![Rule::builtin(Builtin::Secret, Action::Drop)], ..RedactionSpec::default() };
    let r = Redactor::new(spec).unwrap();
    let mut request = traces(pii_span());
    r.redact_request(&ctx(Signal::Traces), &mut request);
    let s = span_of(&request);
    for key in ["gen_ai.input.messages", "app.note", "app.list", "app.map"] {
        assert!(attr(&s.attributes, key).is_none(), "{key} kept");
    }
    assert!(attr(&s.attributes, "gen_ai.request.model").is_some());
    assert_eq!(s.status.as_ref().unwrap().message, "");

    let log = span_log(&s.clone(), "gen_ai.user.message", vec![], Some(Value::StringValue(text())));
    let mut request = Request::Logs(logs_request(resource("svc", "test"), vec![log]));
    r.redact_request(&ctx(Signal::Logs), &mut request);
    let Request::Logs(l) = &request else { panic!() };
    assert_eq!(l.resource_logs[0].scope_logs[0].log_records[0].body, None);
}

fn policy_spec(default: ContentPolicy, projects: &[(&str, ContentPolicy)]) -> Redactor {
    Redactor::new(RedactionSpec {
        hash_key: Some(HashKey::new(b"k".to_vec())),
        content: default,
        projects: projects.iter().map(|(p, c)| ((*p).to_owned(), *c)).collect(),
        ..RedactionSpec::default()
    })
    .unwrap()
}

fn chat(content: &str) -> Request {
    let attrs = vec![
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.request.model", "gpt-4o"),
        kv_i64("gen_ai.usage.input_tokens", 11),
        kv("gen_ai.system_instructions", content),
        kv("gen_ai.prompt.0.role", "user"),
        kv("gen_ai.prompt.0.content", content),
    ];
    Request::Traces(traces_request(resource("svc", "test"), vec![span("chat", 1, 5, attrs)]))
}

fn str_attr(request: &Request, key: &str) -> Option<String> {
    match attr(&span_of(request).attributes, key)?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

#[test]
fn content_policies_keep_metadata_and_are_idempotent() {
    let c = ctx(Signal::Traces);
    // drop: the text goes, model, usage and the role stay.
    let r = policy_spec(ContentPolicy::Drop, &[]);
    let mut req = chat("secret plans");
    assert!(r.redact_request(&c, &mut req));
    assert_eq!(str_attr(&req, "gen_ai.system_instructions"), None);
    assert_eq!(str_attr(&req, "gen_ai.prompt.0.content"), None);
    assert_eq!(str_attr(&req, "gen_ai.prompt.0.role").as_deref(), Some("user"));
    assert_eq!(str_attr(&req, "gen_ai.request.model").as_deref(), Some("gpt-4o"));
    assert!(attr(&span_of(&req).attributes, "gen_ai.usage.input_tokens").is_some());
    // hash: equal texts give equal markers; a second run keeps them.
    let r = policy_spec(ContentPolicy::Hash, &[]);
    let mut req = chat("secret plans");
    r.redact_request(&c, &mut req);
    let marker = str_attr(&req, "gen_ai.prompt.0.content").unwrap();
    assert!(marker.starts_with("[content:") && marker.len() == 26, "{marker}");
    assert_eq!(str_attr(&req, "gen_ai.system_instructions"), Some(marker.clone()));
    assert!(!r.redact_request(&c, &mut req));
    // truncate: UTF-8 safe, JSON stays JSON.
    let r = policy_spec(ContentPolicy::Truncate(4), &[]);
    let mut req = chat("héllo wörld");
    r.redact_request(&c, &mut req);
    assert_eq!(str_attr(&req, "gen_ai.prompt.0.content").as_deref(), Some("hél"));
    assert!(!r.redact_request(&c, &mut req));
    // In a JSON document each string is cut on its own.
    let mut req = chat(r#"[{"type":"text","content":"héllo wörld"}]"#);
    r.redact_request(&c, &mut req);
    let json: serde_json::Value = serde_json::from_str(&str_attr(&req, "gen_ai.system_instructions").unwrap()).unwrap();
    assert_eq!(json, serde_json::json!([{"type": "text", "content": "hél"}]));
    assert!(!r.redact_request(&c, &mut req));
}

#[test]
fn the_policy_is_per_project_and_an_empty_project_is_default() {
    let r = policy_spec(ContentPolicy::Full, &[("default", ContentPolicy::Drop), ("acme", ContentPolicy::Hash)]);
    assert_eq!(r.policy(""), ContentPolicy::Drop);
    assert_eq!(r.policy("acme"), ContentPolicy::Hash);
    assert_eq!(r.policy("other"), ContentPolicy::Full);
    let mut req = chat("text");
    let acme = ctx(Signal::Traces).with_identity("acme", "k1").unwrap();
    r.redact_request(&acme, &mut req);
    assert!(str_attr(&req, "gen_ai.prompt.0.content").unwrap().starts_with("[content:"));
    let mut req = chat("text");
    assert!(!r.redact_request(&ctx(Signal::Traces).with_identity("other", "k2").unwrap(), &mut req));
}

#[test]
fn the_seam_spools_only_redacted_data_and_counts_redactions_on_the_call() {
    let step = Redactor::new(mask_all()).unwrap();
    let ingestor = Ingestor::new(Limits { max_attribute_value_bytes: 1 << 20 }, Processors::new().then(step));
    let s = pii_span();
    let c = ctx(Signal::Traces);
    let protobuf = encoded(&traces(s.clone()));
    let accepted = ingestor.accept(&c, traces(s.clone()), Some(protobuf));
    let record = accepted.record.expect("spooled");
    assert!(PII.iter().all(|p| !contains(&record, p)), "the spool record holds PII");
    assert_eq!(accepted.submission.calls.len(), 1);
    let call = accepted.submission.calls[0].clone().finish();
    assert_eq!(call.redactions, 34);
    assert!(call.input_text.contains("[REDACTED:email]") && call.input_text.contains(BAD_CARD));
    // Replay gives the same rows.
    let replayed = ingestor.replay(&record).unwrap();
    assert_eq!(replayed, accepted.submission);

    // Bytes the decoder skips (an unknown field) are not spooled as received: they were never scanned.
    let clean_span = span("chat", 1, 5, vec![kv("gen_ai.operation.name", "chat")]);
    let clean = Request::Traces(traces_request(resource("svc", "test"), vec![clean_span]));
    let mut body = encoded(&clean);
    body.extend_from_slice(&[0xC2, 0x3E, EMAIL.len() as u8]); // field 1000, length-delimited
    body.extend_from_slice(EMAIL.as_bytes());
    let decoded = Request::decode(Signal::Traces, &body).unwrap();
    let record = ingestor.accept(&c, decoded, Some(body)).record.unwrap();
    assert!(!contains(&record, EMAIL), "an unknown field reached the spool");

    // Log records joined into the call add their counts.
    let log = span_log(&s, "gen_ai.user.message", vec![], Some(Value::StringValue(text())));
    let logs = Request::Logs(logs_request(resource("svc", "test"), vec![log]));
    let accepted = ingestor.accept(&ctx(Signal::Logs), logs, None);
    assert_eq!(accepted.submission.fragments[0].content.redactions, 4);
}

/// Metric descriptions, data point attributes and exemplar attributes are redacted before the spool;
/// the names that identify a series are kept, and each redacted point carries its count.
#[test]
fn score_comments_labels_authors_and_metadata_are_redacted() {
    use crate::scores::{ScoreBatch, proto::Score};
    let score = Score {
        id: "s1".into(),
        name: "user_rating".into(),
        comment: format!("wrong answer, write to {EMAIL}"),
        label: format!("card {CARD}"),
        author: EMAIL.into(),
        metadata: [("contact".to_owned(), format!("iban {IBAN}")), ("plan".to_owned(), "pro".to_owned())].into(),
        ..Score::default()
    };
    let redactor = Redactor::new(mask_all()).unwrap();
    let ctx = RequestContext::new(Signal::Scores, 1);
    let mut request = Request::Scores(ScoreBatch { scores: vec![score], deleted: vec![] });
    assert!(redactor.redact_request(&ctx, &mut request));
    let bytes = encoded(&request);
    for pii in [EMAIL, CARD, IBAN] {
        assert!(!contains(&bytes, pii), "{pii} left in the spooled score");
    }
    let Request::Scores(b) = &mut request else { panic!() };
    let s = &b.scores[0];
    assert_eq!(s.comment, "wrong answer, write to [REDACTED:email]");
    assert_eq!((s.id.as_str(), s.name.as_str(), s.metadata["plan"].as_str()), ("s1", "user_rating", "pro"));
    let before = b.clone();
    assert!(!redactor.redact_request(&ctx, &mut request), "a second run changes nothing");
    assert_eq!(request, Request::Scores(before));
}

#[test]
fn metric_attributes_are_redacted_and_counted() {
    use opentelemetry_proto::tonic::metrics::v1::{
        Exemplar, Gauge, Metric, NumberDataPoint, metric::Data, number_data_point,
    };
    let point = NumberDataPoint {
        attributes: vec![kv("user", EMAIL), kv("model", "gpt-4o")],
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsInt(1)),
        exemplars: vec![Exemplar { filtered_attributes: vec![kv("card", CARD)], ..Default::default() }],
        ..Default::default()
    };
    let clean = NumberDataPoint { attributes: vec![kv("model", "gpt-4o")], ..point.clone() };
    let clean = NumberDataPoint { exemplars: vec![], ..clean };
    let metric = Metric {
        name: "gen_ai.client.token.usage".into(),
        description: format!("usage of {EMAIL}"),
        data: Some(Data::Gauge(Gauge { data_points: vec![point, clean] })),
        ..Default::default()
    };
    let redactor = Redactor::new(mask_all()).unwrap();
    let ctx = RequestContext::new(Signal::Metrics, 1);
    let mut request = Request::Metrics(promptlog_otlp::metrics_request(resource("svc", "test"), vec![metric]));
    assert!(redactor.redact_request(&ctx, &mut request));
    let Request::Metrics(m) = &request else { panic!() };
    let metric = &m.resource_metrics[0].scope_metrics[0].metrics[0];
    assert_eq!(metric.name, "gen_ai.client.token.usage");
    assert_eq!(metric.description, "usage of [REDACTED:email]");
    let Some(Data::Gauge(g)) = &metric.data else { panic!() };
    // The description's finding counts on every point of the metric, the point's own on it alone.
    assert_eq!(
        g.data_points[0].attributes,
        vec![kv("user", "[REDACTED:email]"), kv("model", "gpt-4o"), kv_i64(REDACTIONS_ATTRIBUTE, 3)]
    );
    assert_eq!(g.data_points[0].exemplars[0].filtered_attributes, vec![kv("card", "[REDACTED:credit_card]")]);
    assert_eq!(g.data_points[1].attributes, vec![kv("model", "gpt-4o"), kv_i64(REDACTIONS_ATTRIBUTE, 1)]);
    // Idempotent: a replay changes nothing more.
    let again = request.clone();
    redactor.redact_request(&ctx, &mut request);
    assert_eq!(request, again);
}
