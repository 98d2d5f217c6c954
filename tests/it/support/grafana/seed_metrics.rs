//! GenAI client metrics for the metrics dashboard, sent through the collector (so the rows are
//! exactly what it writes): cumulative and delta token usage, operation duration and time to first
//! token histograms. The expected panel values are derived in the comments.

use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, metric::Data,
};
use promptlog_otlp::{kv, metrics_request, resource};
use prost::Message;

/// Input tokens in the range: the cumulative gpt-4o series ends at 160, the delta claude point adds 30.
pub const INPUT_TOKENS: f64 = 190.0;
/// Output tokens: the cumulative gpt-4o series ends at 70.
pub const OUTPUT_TOKENS: f64 = 70.0;
/// Duration observations.
pub const OPERATIONS: f64 = 4.0;
/// p50 / p95 of the duration buckets [0,2,1,1,0] over bounds [0.5,1,2,4]: 0.5 + 0.5 × 2/2 and 2 + 2 × 0.8/1.
pub const DURATION_P50_P95: (f64, f64) = (1.0, 3.6);
/// p50 / p95 of the TTFT buckets [1,1,0,0] over [0.1,0.25,0.5]: 0.1 × 1/1 and 0.1 + 0.15 × 0.9/1.
pub const TTFT_P50_P95: (f64, f64) = (0.1, 0.235);

fn point(
    attrs: &[(&str, &str)],
    start: u64,
    time: u64,
    sum: f64,
    counts: &[u64],
    bounds: &[f64],
) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attrs.iter().map(|(k, v)| kv(k, *v)).collect(),
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

fn histogram(name: &str, temporality: AggregationTemporality, points: Vec<HistogramDataPoint>) -> Metric {
    let h = Histogram { data_points: points, aggregation_temporality: temporality as i32 };
    Metric { name: name.into(), unit: "s".into(), data: Some(Data::Histogram(h)), ..Default::default() }
}

/// The OTLP/protobuf body of `/v1/metrics`, times relative to `now_ns`.
pub fn request(now_ns: u64) -> Vec<u8> {
    let min = 60_000_000_000u64;
    let (start, t1, t2) = (now_ns - 30 * min, now_ns - 20 * min, now_ns - 10 * min);
    let tb = [1.0, 4.0, 16.0, 64.0, 256.0];
    let input = [("gen_ai.token.type", "input"), ("gen_ai.request.model", "gpt-4o")];
    let output = [("gen_ai.token.type", "output"), ("gen_ai.request.model", "gpt-4o")];
    let claude = [("gen_ai.token.type", "input"), ("gen_ai.request.model", "claude-sonnet-4")];
    let gpt = [("gen_ai.request.model", "gpt-4o")];
    let metrics = vec![
        histogram(
            "gen_ai.client.token.usage",
            AggregationTemporality::Cumulative,
            vec![
                point(&input, start, t1, 100.0, &[0, 0, 0, 2, 0, 0], &tb),
                point(&input, start, t2, 160.0, &[0, 0, 0, 3, 0, 0], &tb),
                point(&output, start, t1, 40.0, &[0, 0, 1, 1, 0, 0], &tb),
                point(&output, start, t2, 70.0, &[0, 0, 2, 1, 0, 0], &tb),
            ],
        ),
        histogram(
            "gen_ai.client.token.usage",
            AggregationTemporality::Delta,
            vec![point(&claude, t1, t2, 30.0, &[0, 0, 0, 1, 0, 0], &tb)],
        ),
        histogram(
            "gen_ai.client.operation.duration",
            AggregationTemporality::Delta,
            vec![point(&gpt, t1, t2, 6.0, &[0, 2, 1, 1, 0], &[0.5, 1.0, 2.0, 4.0])],
        ),
        histogram(
            "gen_ai.server.time_to_first_token",
            AggregationTemporality::Delta,
            vec![point(&gpt, t1, t2, 0.3, &[1, 1, 0, 0], &[0.1, 0.25, 0.5])],
        ),
    ];
    metrics_request(resource("chat-api", "prod"), metrics).encode_to_vec()
}
