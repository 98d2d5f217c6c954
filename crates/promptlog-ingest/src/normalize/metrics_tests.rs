//! One case per metric type and per rejection rule; values checked exactly.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exemplar, metric::Data, number_data_point,
};
use promptlog_otlp::{kv, kv_i64, resource};

use crate::normalize::{Limits, normalize};
use crate::request::Request;
use crate::rows::{Keyed, MetricRows};

const T0: u64 = 1_700_000_000_000_000_000;
const T1: u64 = T0 + 60_000_000_000;
const LIMITS: Limits = Limits { max_attribute_value_bytes: 1024 };

fn request(metrics: Vec<Metric>) -> Request {
    Request::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource("chat-app", "test")),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "gen_ai".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            }],
            schema_url: String::new(),
        }],
    })
}

fn metric(name: &str, data: Data) -> Metric {
    Metric { name: name.into(), description: "d".into(), unit: "s".into(), data: Some(data), ..Default::default() }
}

fn number(value: number_data_point::Value, attrs: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs.iter().map(|(k, v)| kv(k, *v)).collect(),
        start_time_unix_nano: T0,
        time_unix_nano: T1,
        value: Some(value),
        ..Default::default()
    }
}

fn run(metrics: Vec<Metric>) -> (MetricRows, u64, String) {
    let (s, report) = normalize(&request(metrics), LIMITS, 1);
    (s.metrics, report.rejected, report.message("data points", 1024))
}

#[test]
fn gauge_points_keep_their_series_value_and_exemplars() {
    let mut p = number(number_data_point::Value::AsInt(42), &[("gen_ai.request.model", "gpt-4o")]);
    p.exemplars = vec![Exemplar {
        filtered_attributes: vec![kv("user", "u1")],
        time_unix_nano: T1 - 5,
        value: Some(exemplar::Value::AsDouble(41.5)),
        span_id: vec![2; 8],
        trace_id: vec![1; 16],
    }];
    let (rows, rejected, _) = run(vec![metric("queue.depth", Data::Gauge(Gauge { data_points: vec![p] }))]);
    assert_eq!(rejected, 0);
    let [g] = rows.gauge.as_slice() else { panic!("{rows:?}") };
    assert_eq!(
        (g.metric_name.as_str(), g.metric_unit.as_str(), g.service_name.as_str(), g.value),
        ("queue.depth", "s", "chat-app", 42.0)
    );
    assert_eq!((g.start_time_unix, g.time_unix), (T0 as i64, T1 as i64));
    assert_eq!((g.scope_name.as_str(), g.scope_version.as_str()), ("gen_ai", "1.2"));
    assert_eq!(g.scope_schema_url, "https://opentelemetry.io/schemas/1.30.0");
    assert_eq!(g.attributes, vec![("gen_ai.request.model".to_owned(), "gpt-4o".to_owned())]);
    assert_eq!(g.exemplars_filtered_attributes, vec![vec![("user".to_owned(), "u1".to_owned())]]);
    assert_eq!(g.exemplars_time_unix, vec![(T1 - 5) as i64]);
    assert_eq!(g.exemplars_value, vec![41.5]);
    assert_eq!(g.exemplars_span_id, vec!["0202020202020202"]);
    assert_eq!(g.exemplars_trace_id, vec!["01010101010101010101010101010101"]);
}

#[test]
fn sums_keep_temporality_and_monotonicity() {
    let cases = [
        (AggregationTemporality::Cumulative, true, 7.0),
        (AggregationTemporality::Delta, true, 3.0),
        (AggregationTemporality::Cumulative, false, -2.5),
    ];
    for (temporality, monotonic, value) in cases {
        let sum = Sum {
            data_points: vec![number(number_data_point::Value::AsDouble(value), &[])],
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
        };
        let (rows, _, _) = run(vec![metric("requests", Data::Sum(sum))]);
        let [s] = rows.sum.as_slice() else { panic!("{rows:?}") };
        assert_eq!((s.aggregation_temporality, s.is_monotonic, s.value), (temporality as i32, monotonic, value));
    }
}

fn histogram_point(counts: Vec<u64>, bounds: Vec<f64>, count: u64) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: vec![kv("gen_ai.token.type", "input")],
        start_time_unix_nano: T0,
        time_unix_nano: T1,
        count,
        sum: Some(150.0),
        bucket_counts: counts,
        explicit_bounds: bounds,
        min: Some(10.0),
        max: Some(90.0),
        ..Default::default()
    }
}

fn histogram(points: Vec<HistogramDataPoint>) -> Metric {
    let h = Histogram { data_points: points, aggregation_temporality: AggregationTemporality::Delta as i32 };
    metric("gen_ai.client.token.usage", Data::Histogram(h))
}

#[test]
fn histograms_keep_bounds_buckets_and_extremes() {
    let (rows, rejected, _) = run(vec![histogram(vec![histogram_point(vec![1, 2, 0], vec![16.0, 64.0], 3)])]);
    assert_eq!(rejected, 0);
    let [h] = rows.histogram.as_slice() else { panic!("{rows:?}") };
    assert_eq!((h.count, h.sum, h.min, h.max, h.aggregation_temporality), (3, 150.0, 10.0, 90.0, 1));
    assert_eq!((h.bucket_counts.clone(), h.explicit_bounds.clone()), (vec![1, 2, 0], vec![16.0, 64.0]));
}

#[test]
fn invalid_points_are_rejected_one_by_one_and_valid_ones_kept() {
    type Case = (HistogramDataPoint, &'static str);
    let mut no_time = histogram_point(vec![3], vec![], 3);
    no_time.time_unix_nano = 0;
    let mut backwards = histogram_point(vec![3], vec![], 3);
    backwards.start_time_unix_nano = T1 + 1;
    let mut far = histogram_point(vec![3], vec![], 3);
    far.time_unix_nano = u64::MAX;
    let cases: Vec<Case> = vec![
        (no_time, "time_unix_nano is 0 (it is required)"),
        (backwards, &*format!("start_time_unix_nano {} is after time_unix_nano {T1}", T1 + 1).leak()),
        (far, &*format!("time_unix_nano = {} is out of range (after year 2262)", u64::MAX).leak()),
        (
            histogram_point(vec![1, 2], vec![16.0, 64.0], 3),
            "bucket_counts has 2 entries for 2 explicit_bounds (expected 3 or none)",
        ),
        (
            histogram_point(vec![1, 2, 0], vec![64.0, 16.0], 3),
            "explicit_bounds must be strictly increasing, got [64.0, 16.0]",
        ),
        (histogram_point(vec![1, 2, 0], vec![16.0, 64.0], 4), "count 4 differs from the 3 observations in the buckets"),
    ];
    for (bad, why) in cases {
        let good = histogram_point(vec![1, 2, 0], vec![16.0, 64.0], 3);
        let (rows, rejected, message) = run(vec![histogram(vec![good, bad])]);
        assert_eq!((rows.histogram.len(), rejected), (1, 1), "{why}");
        assert_eq!(
            message,
            format!("rejected 1 of the data points: metric \"gen_ai.client.token.usage\" data point: {why}")
        );
    }
    // No buckets at all is valid (a histogram of count and sum only).
    let (rows, rejected, _) = run(vec![histogram(vec![histogram_point(vec![], vec![], 9)])]);
    assert_eq!((rows.histogram.len(), rejected), (1, 0));
}

#[test]
fn gauge_without_value_and_unnamed_metrics_are_rejected() {
    let mut empty = number(number_data_point::Value::AsInt(1), &[]);
    empty.value = None;
    let mut gap = empty.clone();
    gap.flags = 1;
    let (rows, rejected, message) = run(vec![
        metric("g", Data::Gauge(Gauge { data_points: vec![empty, gap] })),
        metric("", Data::Gauge(Gauge { data_points: vec![number(number_data_point::Value::AsInt(1), &[]); 3] })),
    ]);
    // The flagged gap is stored (Value 0, Flags 1); the unnamed metric's three points are rejected.
    assert_eq!(rows.gauge.iter().map(|g| (g.value, g.flags)).collect::<Vec<_>>(), vec![(0.0, 1)]);
    assert_eq!(rejected, 4);
    assert_eq!(
        message,
        "rejected 4 of the data points: metric \"g\" data point: number data point has no value (and no \
         FLAG_NO_RECORDED_VALUE); metric with an empty name (3 of them)"
    );
}

#[test]
fn exponential_histograms_keep_both_bucket_ranges() {
    let point = |scale: i32, count: u64| ExponentialHistogramDataPoint {
        start_time_unix_nano: T0,
        time_unix_nano: T1,
        count,
        sum: Some(-1.25),
        scale,
        zero_count: 1,
        positive: Some(Buckets { offset: -2, bucket_counts: vec![1, 0, 3] }),
        negative: Some(Buckets { offset: 4, bucket_counts: vec![2] }),
        min: Some(-8.0),
        max: Some(4.0),
        ..Default::default()
    };
    let e = ExponentialHistogram {
        data_points: vec![point(3, 7), point(21, 7), point(3, 6)],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
    };
    let (rows, rejected, message) = run(vec![metric("latency", Data::ExponentialHistogram(e))]);
    let [h] = rows.exp_histogram.as_slice() else { panic!("{rows:?}") };
    assert_eq!((h.count, h.sum, h.scale, h.zero_count), (7, -1.25, 3, 1));
    assert_eq!((h.positive_offset, h.positive_bucket_counts.clone()), (-2, vec![1, 0, 3]));
    assert_eq!((h.negative_offset, h.negative_bucket_counts.clone()), (4, vec![2]));
    assert_eq!((h.min, h.max, h.aggregation_temporality), (-8.0, 4.0, 2));
    assert_eq!(rejected, 2);
    assert!(message.contains("scale 21 is outside [-10, 20]"), "{message}");
    assert!(message.contains("count 6 differs from the 7 observations in the buckets"), "{message}");
}

#[test]
fn summaries_keep_their_quantiles() {
    let point = |q: f64| SummaryDataPoint {
        start_time_unix_nano: T0,
        time_unix_nano: T1,
        count: 10,
        sum: 12.5,
        quantile_values: vec![
            ValueAtQuantile { quantile: 0.5, value: 1.0 },
            ValueAtQuantile { quantile: q, value: 3.0 },
        ],
        ..Default::default()
    };
    let s = Summary { data_points: vec![point(0.99), point(1.5)] };
    let (rows, rejected, message) = run(vec![metric("rpc", Data::Summary(s))]);
    let [r] = rows.summary.as_slice() else { panic!("{rows:?}") };
    assert_eq!((r.count, r.sum), (10, 12.5));
    assert_eq!(
        (r.value_at_quantiles_quantile.clone(), r.value_at_quantiles_value.clone()),
        (vec![0.5, 0.99], vec![1.0, 3.0])
    );
    assert_eq!(rejected, 1);
    assert!(message.ends_with("quantile 1.5 is outside [0, 1]"), "{message}");
}

#[test]
fn replay_keys_tell_series_and_windows_apart_but_not_values() {
    let key = |attrs: &[(&str, &str)], start: u64, value: i64| {
        let mut p = number(number_data_point::Value::AsInt(value), attrs);
        p.start_time_unix_nano = start;
        let (rows, _, _) = run(vec![metric("m", Data::Gauge(Gauge { data_points: vec![p] }))]);
        rows.gauge[0].key()
    };
    let base = key(&[("a", "1")], T0, 5);
    assert_eq!(base, key(&[("a", "1")], T0, 6), "a replayed point is the same point whatever its value");
    assert_ne!(base, key(&[("a", "2")], T0, 5));
    assert_ne!(base, key(&[("a", "1"), ("b", "1")], T0, 5));
    assert_ne!(base, key(&[("a", "1")], T0 + 1, 5));
    assert_eq!((base.ts, base.trace_id.as_str(), base.span_id.as_str()), (T1 as i64, "m", "chat-app"));
}

#[test]
fn an_int_attribute_is_stored_as_its_text() {
    let mut p = number(number_data_point::Value::AsDouble(1.0), &[]);
    p.attributes.push(kv_i64("http.status", 200));
    let (rows, _, _) = run(vec![metric("m", Data::Gauge(Gauge { data_points: vec![p] }))]);
    assert_eq!(rows.gauge[0].attributes, vec![("http.status".to_owned(), "200".to_owned())]);
}
