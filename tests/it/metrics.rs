//! OTLP metrics end to end: the real Rust SDK (`opentelemetry_sdk` metrics + `opentelemetry-otlp`)
//! exports over gRPC (gzip), OTLP/HTTP protobuf and OTLP/HTTP JSON; hand-built requests cover the
//! metric types the SDK does not produce by default (exponential histogram, summary), invalid data
//! points (`partial_success.rejected_data_points`) and gzip over HTTP; a collector killed after
//! writing, whose acks are then lost, replays its spool without storing a point twice.

use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{Compression, MetricExporter, Protocol, WithExportConfig, WithTonicConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint, Summary, SummaryDataPoint,
    metric::Data, number_data_point,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use promptlog_otlp::{kv, metrics_request, resource};

use crate::support::sdk::{self, Enc};
use crate::support::stack::Stack;

const SCOPE: &str = "promptlog-metrics";

#[derive(Debug, Clone, Copy)]
enum Transport {
    Grpc,
    HttpProto,
    HttpJson,
}

/// A meter provider exporting to the stack over `transport`; nothing is exported before `shutdown`
/// (one export, so each series has exactly one point).
fn provider(stack: &Stack, transport: Transport, service: &str) -> SdkMeterProvider {
    crate::support::sdk::install_ring_provider();
    let exporter = match transport {
        Transport::Grpc => MetricExporter::builder()
            .with_tonic()
            .with_endpoint(stack.otlp_grpc_url())
            .with_compression(Compression::Gzip)
            .build(),
        Transport::HttpProto | Transport::HttpJson => MetricExporter::builder()
            .with_http()
            .with_protocol(if matches!(transport, Transport::HttpJson) {
                Protocol::HttpJson
            } else {
                Protocol::HttpBinary
            })
            .with_endpoint(format!("{}/v1/metrics", stack.otlp_http_url()))
            .build(),
    }
    .expect("exporter");
    let reader = PeriodicReader::builder(exporter, opentelemetry_sdk::runtime::Tokio)
        .with_interval(Duration::from_secs(3600))
        .build();
    SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(Resource::builder().with_service_name(service.to_owned()).build())
        .build()
}

/// Records the GenAI client metrics and a few plain instruments.
fn record(p: &SdkMeterProvider) {
    let meter = p.meter(SCOPE);
    let model = KeyValue::new("gen_ai.request.model", "gpt-4o");
    let tokens = meter
        .u64_histogram("gen_ai.client.token.usage")
        .with_unit("{token}")
        .with_boundaries(vec![1.0, 4.0, 16.0, 64.0, 256.0])
        .build();
    tokens.record(11, &[model.clone(), KeyValue::new("gen_ai.token.type", "input")]);
    tokens.record(13, &[model.clone(), KeyValue::new("gen_ai.token.type", "input")]);
    tokens.record(7, &[model.clone(), KeyValue::new("gen_ai.token.type", "output")]);
    let requests = meter.u64_counter("app.requests").build();
    requests.add(3, std::slice::from_ref(&model));
    requests.add(4, std::slice::from_ref(&model));
    let inflight = meter.i64_up_down_counter("app.inflight").build();
    inflight.add(5, &[]);
    inflight.add(-2, &[]);
    meter.f64_gauge("app.temperature").with_unit("Cel").build().record(21.5, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_metrics_are_stored_with_exact_values_over_every_transport() {
    let stack = Stack::start().await;
    let transports = [Transport::Grpc, Transport::HttpProto, Transport::HttpJson];
    for t in transports {
        let service = format!("metrics-{t:?}");
        let p = provider(&stack, t, &service);
        record(&p);
        // Shutdown collects and exports once; it blocks on the reader task, so off the runtime threads.
        tokio::task::spawn_blocking(move || p.shutdown()).await.unwrap().expect("export");
    }
    let n = transports.len() as u64;
    assert_eq!(stack.wait_for_count("otel_metrics_histogram", 2 * n).await, 2 * n);
    assert_eq!(stack.wait_for_count("otel_metrics_sum", 2 * n).await, 2 * n);
    assert_eq!(stack.wait_for_count("otel_metrics_gauge", n).await, n);
    for t in transports {
        let service = format!("metrics-{t:?}");
        let sql = |q: &str| q.replace("{svc}", &service);
        let histograms = stack
            .sql()
            .text(
                &sql("SELECT ProjectId, MetricName, MetricUnit, ScopeName, Attributes['gen_ai.token.type'], \
                      Attributes['gen_ai.request.model'], Count, Sum, BucketCounts, ExplicitBounds, Min, Max, \
                      AggregationTemporality, TimeUnix >= StartTimeUnix FROM otel_metrics_histogram \
                      WHERE ServiceName = '{svc}' ORDER BY Attributes['gen_ai.token.type']"),
                Some("TSV"),
            )
            .await;
        assert_eq!(
            histograms,
            "default\tgen_ai.client.token.usage\t{token}\tpromptlog-metrics\tinput\tgpt-4o\t2\t24\t[0,0,2,0,0,0]\t[1,4,16,64,256]\t11\t13\t2\t1\n\
             default\tgen_ai.client.token.usage\t{token}\tpromptlog-metrics\toutput\tgpt-4o\t1\t7\t[0,0,1,0,0,0]\t[1,4,16,64,256]\t7\t7\t2\t1\n",
            "{t:?}"
        );
        let sums = stack
            .sql()
            .text(
                &sql(
                    "SELECT MetricName, Value, IsMonotonic, AggregationTemporality, Attributes FROM otel_metrics_sum \
                      WHERE ServiceName = '{svc}' ORDER BY MetricName",
                ),
                Some("TSV"),
            )
            .await;
        assert_eq!(
            sums, "app.inflight\t3\tfalse\t2\t{}\napp.requests\t7\ttrue\t2\t{'gen_ai.request.model':'gpt-4o'}\n",
            "{t:?}"
        );
        let gauges = stack
            .sql()
            .text(
                &sql("SELECT MetricName, MetricUnit, Value FROM otel_metrics_gauge WHERE ServiceName = '{svc}'"),
                Some("TSV"),
            )
            .await;
        assert_eq!(gauges, "app.temperature\tCel\t21.5\n", "{t:?}");
    }
}

/// A minute ago, in ns: inside every retention window.
fn t0() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    (now.as_nanos() as u64 - 60_000_000_000) / 1000 * 1000
}

/// A valid gauge point at `t0`, an invalid one (no time), an exponential histogram and a summary.
fn hand_built(service: &str, t0: u64) -> ExportMetricsServiceRequest {
    let point = |time: u64| NumberDataPoint {
        attributes: vec![kv("k", "v")],
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(1.5)),
        ..Default::default()
    };
    let exp = ExponentialHistogramDataPoint {
        start_time_unix_nano: t0,
        time_unix_nano: t0 + 10,
        count: 6,
        sum: Some(3.25),
        scale: 2,
        zero_count: 1,
        positive: Some(Buckets { offset: -1, bucket_counts: vec![2, 1] }),
        negative: Some(Buckets { offset: 3, bucket_counts: vec![2] }),
        min: Some(-9.0),
        max: Some(2.0),
        ..Default::default()
    };
    let summary = SummaryDataPoint {
        start_time_unix_nano: t0,
        time_unix_nano: t0 + 10,
        count: 4,
        sum: 10.0,
        quantile_values: vec![
            ValueAtQuantile { quantile: 0.5, value: 2.0 },
            ValueAtQuantile { quantile: 0.99, value: 4.0 },
        ],
        ..Default::default()
    };
    let metric = |name: &str, data: Data| Metric { name: name.into(), data: Some(data), ..Default::default() };
    metrics_request(
        resource(service, "test"),
        vec![
            metric("g", Data::Gauge(Gauge { data_points: vec![point(t0), point(0)] })),
            metric(
                "e",
                Data::ExponentialHistogram(ExponentialHistogram { data_points: vec![exp], aggregation_temporality: 1 }),
            ),
            metric("s", Data::Summary(Summary { data_points: vec![summary] })),
        ],
    )
}

const REJECTED: &str = "rejected 1 of the data points: metric \"g\" data point: time_unix_nano is 0 (it is required)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_points_are_rejected_in_partial_success_and_the_rest_stored() {
    let stack = Stack::start().await;
    let t0 = t0();
    // gRPC, protobuf.
    let mut client = MetricsServiceClient::connect(stack.otlp_grpc_url()).await.unwrap();
    let reply = client.export(hand_built("partial-grpc", t0)).await.unwrap().into_inner();
    let partial = reply.partial_success.expect("partial success");
    assert_eq!((partial.rejected_data_points, partial.error_message.as_str()), (1, REJECTED));
    // HTTP, JSON, gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &Enc::Json.encode(&hand_built("partial-http", t0))).unwrap();
    let body = gz.finish().unwrap();
    let reply = sdk::post_otlp(&stack.otlp_http_url(), "/v1/metrics", Enc::Json.content_type(), body, true).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply: ExportMetricsServiceResponse = Enc::Json.decode(&reply.body);
    let partial = reply.partial_success.expect("partial success");
    assert_eq!((partial.rejected_data_points, partial.error_message.as_str()), (1, REJECTED));

    assert_eq!(stack.wait_for_count("otel_metrics_gauge", 2).await, 2);
    assert_eq!(stack.wait_for_count("otel_metrics_exponential_histogram", 2).await, 2);
    assert_eq!(stack.wait_for_count("otel_metrics_summary", 2).await, 2);
    for service in ["partial-grpc", "partial-http"] {
        let q = |sql: &str| sql.replace("{svc}", service);
        let st = &stack;
        let text = move |sql: String| async move { st.sql().text(&sql, Some("TSV")).await };
        assert_eq!(
            text(q("SELECT Value, Attributes, toUnixTimestamp64Nano(TimeUnix) FROM otel_metrics_gauge WHERE ServiceName = '{svc}'")).await,
            format!("1.5\t{{'k':'v'}}\t{t0}\n")
        );
        assert_eq!(
            text(q("SELECT Count, Sum, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeOffset, \
                    NegativeBucketCounts, Min, Max, AggregationTemporality FROM otel_metrics_exponential_histogram \
                    WHERE ServiceName = '{svc}'"))
            .await,
            "6\t3.25\t2\t1\t-1\t[2,1]\t3\t[2]\t-9\t2\t1\n"
        );
        assert_eq!(
            text(q("SELECT Count, Sum, ValueAtQuantiles.Quantile, ValueAtQuantiles.Value FROM otel_metrics_summary \
                    WHERE ServiceName = '{svc}'"))
            .await,
            "4\t10\t[0.5,0.99]\t[2,4]\n"
        );
    }
    let rejected: u64 = stack
        .sql()
        .text("SELECT count() FROM otel_metrics_gauge WHERE toUnixTimestamp64Nano(TimeUnix) = 0", None)
        .await
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rejected, 0, "the invalid point is not stored");
}

/// Written, then killed before the acks could matter, then the acks are lost: the restart replays every
/// record, and the "already stored?" check keeps each point once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_after_a_crash_stores_each_point_once() {
    use crate::faults::{Collector, DRAIN_TIMEOUT, clickhouse, count, database, tail};
    use prost::Message;
    let _alone = promptlog_testkit::gate::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let ch = clickhouse(dir.path());
    let db = database("metrics_replay");
    let mut collector = Collector::start(&ch, &db, dir.path(), &[]).await;
    let t0 = t0();
    let tables = [("otel_metrics_gauge", 1), ("otel_metrics_exponential_histogram", 1), ("otel_metrics_summary", 1)];
    for i in 0..3 {
        let reply = reqwest::Client::new()
            .post(format!("{}/v1/metrics", collector.url()))
            .header("content-type", "application/x-protobuf")
            .body(hand_built(&format!("replay-{i}"), t0).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    let wait_for = |table: &'static str, n: u64| {
        let (ch, db, log) = (&ch, &db, collector.log.clone());
        async move {
            let deadline = Instant::now() + DRAIN_TIMEOUT;
            while count(ch, db, table).await < Some(n) {
                assert!(Instant::now() < deadline, "{table} not written:\n{}", tail(&log));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    for (table, per_request) in tables {
        wait_for(table, 3 * per_request).await;
    }
    collector.kill();
    let data_dir = collector.env.iter().find(|(k, _)| k == "PROMPTLOG_DATA_DIR").unwrap().1.clone();
    let acks = std::path::Path::new(&data_dir).join("spool").join("acks.log");
    std::fs::remove_file(&acks).unwrap_or_else(|e| panic!("{}: {e}", acks.display()));
    collector.restart().await;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let skipped = loop {
        let health = collector.health().await.unwrap_or_default();
        let skipped: u64 =
            tables.iter().map(|(t, _)| health["tables"][t]["replay_skipped"].as_u64().unwrap_or(0)).sum();
        if health["spool"]["records"].as_u64() == Some(0) && skipped >= 9 {
            break skipped;
        }
        assert!(Instant::now() < deadline, "replay not done: {health}\n{}", tail(&collector.log));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(skipped, 9, "every replayed point was found stored");
    for (table, per_request) in tables {
        assert_eq!(count(&ch, &db, table).await, Some(3 * per_request), "{table}: each point once");
    }
}

/// The metric key the writer computes in Rust equals what ClickHouse computes from the stored columns,
/// for every table and for attribute maps with unicode, empty values, several keys or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_replay_keys_match_what_clickhouse_computes() {
    use std::collections::HashSet;

    use promptlog_ingest::rows::{ExpHistogramRow, GaugeRow, HistogramRow, Keyed, MetricHead, SumRow, SummaryRow};
    let store = crate::support::stack::migrated_store("metric_keys").await;
    let t = t0() as i64;
    let pairs = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let head = |i: i64, attrs: &[(&str, &str)]| MetricHead {
        project_id: "default".into(),
        service_name: "svc".into(),
        metric_name: "m".into(),
        scope_name: "scope".into(),
        resource_attributes: pairs(&[("service.name", "svc"), ("host", "ünï")]),
        attributes: pairs(attrs),
        start_time_unix: t - 1000,
        time_unix: t + i,
        ..MetricHead::default()
    };
    let heads = [head(1, &[]), head(2, &[("a", "1"), ("b", "")]), head(3, &[("emoji", "✓ 😀"), ("k=v", "x\ty")])];
    let probes =
        [head(1, &[("a", "1")]), head(2, &[("a", "1")]), MetricHead { project_id: "other".into(), ..head(3, &[]) }];
    macro_rules! check {
        ($row:ident, $table:literal) => {{
            let stored: Vec<$row> = heads.iter().cloned().map($row::from_head).collect();
            store.insert($table, &stored, concat!("keys-", $table)).await.unwrap();
            let mut probe: Vec<$row> = probes.iter().cloned().map($row::from_head).collect();
            probe.extend(stored.iter().cloned());
            let found = store.existing_keys($table, &probe.iter().collect::<Vec<_>>()).await.unwrap();
            let want: HashSet<_> = stored.iter().map(Keyed::key).collect();
            assert_eq!(found, want, "{}: stored points found, other series and projects not", $table);
        }};
    }
    check!(GaugeRow, "otel_metrics_gauge");
    check!(SumRow, "otel_metrics_sum");
    check!(HistogramRow, "otel_metrics_histogram");
    check!(ExpHistogramRow, "otel_metrics_exponential_histogram");
    check!(SummaryRow, "otel_metrics_summary");
}
