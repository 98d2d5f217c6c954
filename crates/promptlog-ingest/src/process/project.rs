//! The project on every row. The project comes from the API key the request was authenticated with
//! (the receivers put it in the [`RequestContext`], which the spool record keeps), never from the
//! data: a client attribute claiming a project (`promptlog.project_id`, `project`, ...) is stored as
//! the ordinary attribute it is and changes nothing.
//!
//! A row step, so live and replayed requests are stamped alike: a record replayed after a restart
//! carries its context, hence its project.

use crate::Submission;
use crate::process::Processor;
use crate::request::RequestContext;

/// Sets `ProjectId` on every row (and on content fragments, so the join stays within a project) to
/// the context's project, or [`DEFAULT_PROJECT`](crate::request::DEFAULT_PROJECT) when it has none.
#[derive(Debug, Clone, Copy, Default)]
pub struct StampProject;

impl Processor for StampProject {
    fn name(&self) -> &'static str {
        "project"
    }

    fn rows(&self, ctx: &RequestContext, rows: &mut Submission) {
        let project = ctx.row_project();
        let set = |field: &mut String| {
            field.clear();
            field.push_str(project);
        };
        rows.spans.iter_mut().for_each(|r| set(&mut r.project_id));
        rows.logs.iter_mut().for_each(|r| set(&mut r.project_id));
        rows.calls.iter_mut().for_each(|c| set(&mut c.row.project_id));
        rows.fragments.iter_mut().for_each(|f| set(&mut f.project_id));
        rows.metrics.set_project(project);
        for score in &mut rows.scores {
            set(&mut score.project_id);
            // Who sent it, for audit: the key id is part of the context like the project.
            score.key_id.clear();
            score.key_id.push_str(ctx.key_id());
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use promptlog_otlp::{kv, logs_request, resource, span, traces_request};

    use super::*;
    use crate::request::{DEFAULT_PROJECT, Request, Signal};
    use crate::{Ingestor, Limits, Processors};

    const LIMITS: Limits = Limits { max_attribute_value_bytes: 1024 };

    /// A chat span and a log record whose resource and attributes claim another project.
    fn claiming(signal: Signal) -> Request {
        let mut res = resource("svc", "test");
        res.attributes.push(kv("promptlog.project_id", "someone-else"));
        match signal {
            Signal::Traces => {
                let attrs = vec![kv("gen_ai.operation.name", "chat"), kv("project", "someone-else")];
                Request::Traces(traces_request(res, vec![span("chat m", 1_700_000_000_000_000_000, 5, attrs)]))
            }
            Signal::Logs => {
                let log = LogRecord {
                    attributes: vec![kv("promptlog.project_id", "someone-else")],
                    time_unix_nano: 1_700_000_000_000_000_000,
                    ..Default::default()
                };
                Request::Logs(logs_request(res, vec![log]))
            }
            Signal::Metrics => {
                use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, metric::Data};
                let point = NumberDataPoint {
                    attributes: vec![kv("promptlog.project_id", "someone-else")],
                    time_unix_nano: 1_700_000_000_000_000_000,
                    value: Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(1)),
                    ..Default::default()
                };
                let metric = Metric {
                    name: "m".into(),
                    data: Some(Data::Gauge(Gauge { data_points: vec![point] })),
                    ..Default::default()
                };
                Request::Metrics(promptlog_otlp::metrics_request(res, vec![metric]))
            }
            Signal::Scores => {
                use crate::scores::proto::{Score, score::Target};
                let score = Score {
                    id: "s1".into(),
                    target: Some(Target::SessionId("sess".into())),
                    name: "user_rating".into(),
                    value: Some(1.0),
                    metadata: [("promptlog.project_id".to_owned(), "someone-else".to_owned())].into(),
                    ..Default::default()
                };
                Request::Scores(crate::scores::ScoreBatch { scores: vec![score], deleted: vec![] })
            }
        }
    }

    fn ingestor() -> Ingestor {
        Ingestor::new(LIMITS, Processors::new().then(StampProject))
    }

    #[test]
    fn every_row_gets_the_key_project_and_claims_in_the_data_stay_attributes() {
        for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
            let ctx = RequestContext::new(signal, 1).with_identity("acme", "acme-1").unwrap();
            let rows = ingestor().accept(&ctx, claiming(signal), None).submission;
            assert_eq!(rows.records(), 1);
            let metrics = rows.metrics.gauge.iter().map(|r| &r.project_id);
            for p in
                rows.spans.iter().map(|r| &r.project_id).chain(rows.logs.iter().map(|r| &r.project_id)).chain(metrics)
            {
                assert_eq!(p, "acme");
            }
            for c in &rows.calls {
                assert_eq!(c.row.project_id, "acme");
                assert!(c.row.span_attributes.contains(&("project".into(), "someone-else".into())));
            }
            let resource_attrs = rows
                .spans
                .first()
                .map(|r| &r.resource_attributes[..])
                .or(rows.logs.first().map(|r| &r.resource_attributes[..]))
                .or(rows.metrics.gauge.first().map(|r| &r.resource_attributes[..]));
            assert!(resource_attrs.unwrap().contains(&("promptlog.project_id".into(), "someone-else".into())));
        }
    }

    #[test]
    fn scores_get_the_key_project_and_key_id() {
        let ctx = RequestContext::new(Signal::Scores, 1).with_identity("acme", "acme-1").unwrap();
        let rows = ingestor().accept(&ctx, claiming(Signal::Scores), None).submission;
        assert_eq!(rows.scores.len(), 1);
        assert_eq!((rows.scores[0].project_id.as_str(), rows.scores[0].key_id.as_str()), ("acme", "acme-1"));
        assert!(rows.scores[0].metadata.contains(&("promptlog.project_id".into(), "someone-else".into())));
    }

    #[test]
    fn a_request_without_a_project_is_stamped_default() {
        let ctx = RequestContext::new(Signal::Traces, 1);
        let rows = ingestor().accept(&ctx, claiming(Signal::Traces), None).submission;
        assert_eq!(rows.spans[0].project_id, DEFAULT_PROJECT);
        assert_eq!(rows.calls[0].row.project_id, DEFAULT_PROJECT);
    }

    #[test]
    fn a_spooled_record_replayed_by_a_new_ingestor_keeps_its_project() {
        let ctx = RequestContext::new(Signal::Traces, 1).with_identity("acme", "acme-1").unwrap();
        let live = ingestor().accept(&ctx, claiming(Signal::Traces), None);
        let record = live.record.expect("spooled");
        // A restarted collector: a fresh ingestor, only the record's bytes.
        let replayed = ingestor().replay(&record).unwrap();
        assert_eq!(replayed.spans[0].project_id, "acme");
        assert_eq!(replayed.calls[0].row.project_id, "acme");
        assert_eq!(replayed, live.submission);
    }
}
