use prost::Message;

use crate::rows::Keyed;

use super::proto::{SpanTarget, score::Target};
use super::*;
use crate::request::{Request, RequestContext, Signal};
use crate::{Ingestor, Limits, Processors};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const SPAN: &str = "b7ad6b7169203331";

fn score(target: Target, data_type: ScoreDataType, value: Option<f64>, label: &str) -> Score {
    Score {
        id: "s-1".into(),
        target: Some(target),
        name: "user_rating".into(),
        data_type: data_type as i32,
        value,
        label: label.into(),
        ..Default::default()
    }
}

fn span_target() -> Target {
    Target::Span(SpanTarget { trace_id: TRACE.to_uppercase(), span_id: SPAN.into() })
}

#[test]
fn each_rule_has_a_clear_message() {
    let cases: Vec<(Score, &str)> = vec![
        (Score { target: None, ..score(span_target(), ScoreDataType::Numeric, Some(1.0), "") }, "no target"),
        (
            score(
                Target::Span(SpanTarget { trace_id: "abc".into(), span_id: SPAN.into() }),
                ScoreDataType::Numeric,
                Some(1.0),
                "",
            ),
            "span target trace_id must be 32 hex digits, got \"abc\"",
        ),
        (
            score(
                Target::Span(SpanTarget { trace_id: TRACE.into(), span_id: "zz".into() }),
                ScoreDataType::Numeric,
                Some(1.0),
                "",
            ),
            "span target span_id must be 16 hex digits",
        ),
        (score(Target::TraceId("0".repeat(32)), ScoreDataType::Numeric, Some(1.0), ""), "all zeros"),
        (score(Target::SessionId(String::new()), ScoreDataType::Numeric, Some(1.0), ""), "session_id is empty"),
        (score(span_target(), ScoreDataType::Numeric, None, ""), "numeric score needs a value"),
        (score(span_target(), ScoreDataType::Boolean, Some(3.0), ""), "boolean value must be 0 or 1, got 3"),
        (score(span_target(), ScoreDataType::Categorical, None, ""), "categorical score needs a label"),
        (score(span_target(), ScoreDataType::Numeric, Some(f64::NAN), ""), "finite"),
        (score(span_target(), ScoreDataType::Unspecified, None, ""), "data_type is unspecified"),
        (Score { name: " ".into(), ..score(span_target(), ScoreDataType::Numeric, Some(1.0), "") }, "name is empty"),
        (
            Score { id: "x".repeat(129), ..score(span_target(), ScoreDataType::Numeric, Some(1.0), "") },
            "longer than 128",
        ),
    ];
    for (s, want) in cases {
        let got = validate(&s).expect_err(want);
        assert!(got.contains(want), "{got:?} should say {want:?}");
    }
    for ok in [
        score(span_target(), ScoreDataType::Boolean, Some(0.0), ""),
        score(Target::TraceId(TRACE.into()), ScoreDataType::Numeric, Some(0.25), ""),
        score(Target::SessionId("sess-1".into()), ScoreDataType::Categorical, None, "relevant"),
        score(Target::ResponseId("chatcmpl-1".into()), ScoreDataType::Unspecified, Some(4.0), ""),
    ] {
        validate(&ok).unwrap();
    }
}

#[test]
fn rows_are_the_same_on_replay_and_valid_scores_are_kept() {
    let mut bad = score(span_target(), ScoreDataType::Boolean, Some(2.0), "");
    bad.id = "s-bad".into();
    let mut good = score(span_target(), ScoreDataType::Boolean, Some(1.0), "");
    good.metadata = [("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())].into();
    let batch = ScoreBatch { scores: vec![bad, good], deleted: vec!["old".into()] };
    let ingestor = Ingestor::new(Limits { max_attribute_value_bytes: 1024 }, Processors::new());
    let ctx = RequestContext::new(Signal::Scores, 1_700_000_000_000_000_000);
    let live = ingestor.accept(&ctx, Request::Scores(batch.clone()), None);
    assert_eq!(live.report.rejected, 1);
    assert!(
        live.message(Signal::Scores, ingestor.limits())
            .contains("score 0 (\"user_rating\"): boolean value must be 0 or 1")
    );
    let rows = &live.submission.scores;
    assert_eq!(rows.len(), 2);
    let kept = &rows[0];
    assert_eq!((kept.score_id.as_str(), kept.target_kind.as_str()), ("s-1", "span"));
    assert_eq!((kept.trace_id.as_str(), kept.span_id.as_str()), (TRACE, SPAN), "ids are lower-cased");
    assert_eq!((kept.data_type.as_str(), kept.value), ("boolean", Some(1.0)));
    assert_eq!(kept.timestamp, ctx.received_ns, "no time given: the receive time");
    assert_eq!(kept.version, ctx.received_ns as u64);
    assert_eq!(kept.metadata, vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
    assert_eq!((rows[1].score_id.as_str(), rows[1].is_deleted), ("old", 1));
    let replayed = ingestor.replay(&live.record.expect("spooled")).unwrap();
    assert_eq!(&replayed.scores, rows);
    assert_ne!(rows[0].key(), rows[1].key());
}

#[test]
fn the_spooled_batch_reads_a_submit_request() {
    let request =
        proto::SubmitScoresRequest { scores: vec![score(span_target(), ScoreDataType::Numeric, Some(1.0), "")] };
    let batch = ScoreBatch::decode(request.encode_to_vec().as_slice()).unwrap();
    assert_eq!(batch.scores, request.scores);
    assert!(batch.deleted.is_empty());
}

#[test]
fn names_round_trip() {
    for t in [ScoreDataType::Numeric, ScoreDataType::Boolean, ScoreDataType::Categorical, ScoreDataType::Text] {
        assert_eq!(parse_data_type(data_type_name(t)).unwrap(), t);
    }
    for s in [ScoreSource::EndUser, ScoreSource::Annotator, ScoreSource::Llm, ScoreSource::Code] {
        assert_eq!(parse_source(source_name(s)).unwrap(), s);
    }
    assert!(parse_source("robot").unwrap_err().contains("expected end_user"));
}
