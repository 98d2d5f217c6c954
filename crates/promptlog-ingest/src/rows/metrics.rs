//! Rows of the five OTLP metrics tables, column-compatible with the OpenTelemetry Collector ClickHouse
//! exporter (`otel_metrics_gauge`, `_sum`, `_histogram`, `_exponential_histogram`, `_summary`), with
//! `ProjectId` first like every other table. One data point is one row.
//!
//! Replay identity of a data point ([`Keyed`]): `(ProjectId, TimeUnix, MetricName, ServiceName,
//! xxHash64(StartTimeUnix, Attributes, ResourceAttributes, ScopeName))`. A data point has no id of its
//! own; what makes it distinct is its series (metric name and attribute set, under one resource and
//! scope) and its time window (`StartTimeUnix`, `TimeUnix`). Two points of the same series and window
//! would be the same observation sent twice, so treating them as one loses nothing a query could
//! tell apart. Values are deliberately not part of the key: a replayed record carries the same values.

use serde::Serialize;

use super::{AttrMap, Keyed, RowKey};

/// The SQL of one attribute map in the key hash: `k\x1fv` pairs joined by `\x1e`, in stored order
/// (a ClickHouse `Map` keeps the order it was inserted in).
macro_rules! attrs_sql {
    ($col:literal) => {
        concat!(
            "arrayStringConcat(arrayMap((k, v) -> concat(k, '\\x1f', v), mapKeys(",
            $col,
            "), mapValues(",
            $col,
            ")), '\\x1e')"
        )
    };
}

/// The key of every metrics table (see the module documentation).
const METRIC_KEY_SQL: [&str; 5] = [
    "ProjectId",
    "toUnixTimestamp64Nano(TimeUnix)",
    "MetricName",
    "ServiceName",
    concat!(
        "xxHash64(concat(toString(toUnixTimestamp64Nano(StartTimeUnix)), '\\x1d', ",
        attrs_sql!("Attributes"),
        ", '\\x1d', ",
        attrs_sql!("ResourceAttributes"),
        ", '\\x1d', ScopeName))"
    ),
];

fn attrs_key(out: &mut String, attrs: &AttrMap) {
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push('\u{1e}');
        }
        out.push_str(k);
        out.push('\u{1f}');
        out.push_str(v);
    }
}

/// What every metric row starts with: resource, scope, metric and series, and the time window
/// (the normaliser builds it once per point, [`metric_row`]'s `from_head` makes the row of it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricHead {
    pub project_id: String,
    pub resource_attributes: AttrMap,
    pub resource_schema_url: String,
    pub scope_name: String,
    pub scope_version: String,
    pub scope_attributes: AttrMap,
    pub scope_dropped_attr_count: u32,
    pub scope_schema_url: String,
    pub service_name: String,
    pub metric_name: String,
    pub metric_description: String,
    pub metric_unit: String,
    pub attributes: AttrMap,
    pub start_time_unix: i64,
    pub time_unix: i64,
}

/// A metric row type: [`MetricHead`]'s columns, then its own.
macro_rules! metric_row {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        #[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
        #[serde(rename_all = "PascalCase")]
        pub struct $name {
            /// The project of the API key the row arrived with (`default` when auth is off).
            pub project_id: String,
            pub resource_attributes: AttrMap,
            pub resource_schema_url: String,
            pub scope_name: String,
            pub scope_version: String,
            pub scope_attributes: AttrMap,
            pub scope_dropped_attr_count: u32,
            pub scope_schema_url: String,
            pub service_name: String,
            pub metric_name: String,
            pub metric_description: String,
            pub metric_unit: String,
            /// The data point's attributes (its series).
            pub attributes: AttrMap,
            /// `start_time_unix_nano` (0 when the point has none: gauges), ns.
            pub start_time_unix: i64,
            /// `time_unix_nano`, ns.
            pub time_unix: i64,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl $name {
            /// A row with `head`'s columns, its own zero.
            pub fn from_head(head: MetricHead) -> Self {
                Self {
                    project_id: head.project_id,
                    resource_attributes: head.resource_attributes,
                    resource_schema_url: head.resource_schema_url,
                    scope_name: head.scope_name,
                    scope_version: head.scope_version,
                    scope_attributes: head.scope_attributes,
                    scope_dropped_attr_count: head.scope_dropped_attr_count,
                    scope_schema_url: head.scope_schema_url,
                    service_name: head.service_name,
                    metric_name: head.metric_name,
                    metric_description: head.metric_description,
                    metric_unit: head.metric_unit,
                    attributes: head.attributes,
                    start_time_unix: head.start_time_unix,
                    time_unix: head.time_unix,
                    ..Self::default()
                }
            }
        }

        impl Keyed for $name {
            const KEY_SQL: [&'static str; 5] = METRIC_KEY_SQL;
            const TIME_COLUMN: &'static str = "TimeUnix";
            fn key(&self) -> RowKey {
                let mut text = self.start_time_unix.to_string();
                text.push('\u{1d}');
                attrs_key(&mut text, &self.attributes);
                text.push('\u{1d}');
                attrs_key(&mut text, &self.resource_attributes);
                text.push('\u{1d}');
                text.push_str(&self.scope_name);
                RowKey {
                    project: self.project_id.clone(),
                    ts: self.time_unix,
                    trace_id: self.metric_name.clone(),
                    span_id: self.service_name.clone(),
                    body_hash: twox_hash::XxHash64::oneshot(0, text.as_bytes()),
                }
            }
            fn timestamp_ns(&self) -> i64 {
                self.time_unix
            }
        }
    };
}

metric_row!(
    /// One gauge data point in `otel_metrics_gauge`.
    GaugeRow {
        value: f64,
        flags: u32,
        #[serde(rename = "Exemplars.FilteredAttributes")]
        exemplars_filtered_attributes: Vec<AttrMap>,
        #[serde(rename = "Exemplars.TimeUnix")]
        exemplars_time_unix: Vec<i64>,
        #[serde(rename = "Exemplars.Value")]
        exemplars_value: Vec<f64>,
        #[serde(rename = "Exemplars.SpanId")]
        exemplars_span_id: Vec<String>,
        #[serde(rename = "Exemplars.TraceId")]
        exemplars_trace_id: Vec<String>,
    }
);

metric_row!(
    /// One sum data point in `otel_metrics_sum`.
    SumRow {
        value: f64,
        flags: u32,
        #[serde(rename = "Exemplars.FilteredAttributes")]
        exemplars_filtered_attributes: Vec<AttrMap>,
        #[serde(rename = "Exemplars.TimeUnix")]
        exemplars_time_unix: Vec<i64>,
        #[serde(rename = "Exemplars.Value")]
        exemplars_value: Vec<f64>,
        #[serde(rename = "Exemplars.SpanId")]
        exemplars_span_id: Vec<String>,
        #[serde(rename = "Exemplars.TraceId")]
        exemplars_trace_id: Vec<String>,
        /// OTLP `AggregationTemporality`: 1 delta, 2 cumulative.
        aggregation_temporality: i32,
        is_monotonic: bool,
    }
);

metric_row!(
    /// One histogram data point in `otel_metrics_histogram`.
    HistogramRow {
        count: u64,
        sum: f64,
        bucket_counts: Vec<u64>,
        explicit_bounds: Vec<f64>,
        #[serde(rename = "Exemplars.FilteredAttributes")]
        exemplars_filtered_attributes: Vec<AttrMap>,
        #[serde(rename = "Exemplars.TimeUnix")]
        exemplars_time_unix: Vec<i64>,
        #[serde(rename = "Exemplars.Value")]
        exemplars_value: Vec<f64>,
        #[serde(rename = "Exemplars.SpanId")]
        exemplars_span_id: Vec<String>,
        #[serde(rename = "Exemplars.TraceId")]
        exemplars_trace_id: Vec<String>,
        flags: u32,
        /// 0 when the point does not report it (as the exporter writes it).
        min: f64,
        max: f64,
        aggregation_temporality: i32,
    }
);

metric_row!(
    /// One exponential histogram data point in `otel_metrics_exponential_histogram`.
    ExpHistogramRow {
        count: u64,
        sum: f64,
        scale: i32,
        zero_count: u64,
        positive_offset: i32,
        positive_bucket_counts: Vec<u64>,
        negative_offset: i32,
        negative_bucket_counts: Vec<u64>,
        #[serde(rename = "Exemplars.FilteredAttributes")]
        exemplars_filtered_attributes: Vec<AttrMap>,
        #[serde(rename = "Exemplars.TimeUnix")]
        exemplars_time_unix: Vec<i64>,
        #[serde(rename = "Exemplars.Value")]
        exemplars_value: Vec<f64>,
        #[serde(rename = "Exemplars.SpanId")]
        exemplars_span_id: Vec<String>,
        #[serde(rename = "Exemplars.TraceId")]
        exemplars_trace_id: Vec<String>,
        flags: u32,
        min: f64,
        max: f64,
        aggregation_temporality: i32,
    }
);

metric_row!(
    /// One summary data point in `otel_metrics_summary`.
    SummaryRow {
        count: u64,
        sum: f64,
        #[serde(rename = "ValueAtQuantiles.Quantile")]
        value_at_quantiles_quantile: Vec<f64>,
        #[serde(rename = "ValueAtQuantiles.Value")]
        value_at_quantiles_value: Vec<f64>,
        flags: u32,
    }
);

/// Every metric row made from one request, by table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MetricRows {
    pub gauge: Vec<GaugeRow>,
    pub sum: Vec<SumRow>,
    pub histogram: Vec<HistogramRow>,
    pub exp_histogram: Vec<ExpHistogramRow>,
    pub summary: Vec<SummaryRow>,
}

impl MetricRows {
    /// Data points in all five tables.
    pub fn len(&self) -> usize {
        self.gauge.len() + self.sum.len() + self.histogram.len() + self.exp_histogram.len() + self.summary.len()
    }

    /// No data points at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `ProjectId` on every row.
    pub fn set_project(&mut self, project: &str) {
        fn set(field: &mut String, project: &str) {
            field.clear();
            field.push_str(project);
        }
        self.gauge.iter_mut().for_each(|r| set(&mut r.project_id, project));
        self.sum.iter_mut().for_each(|r| set(&mut r.project_id, project));
        self.histogram.iter_mut().for_each(|r| set(&mut r.project_id, project));
        self.exp_histogram.iter_mut().for_each(|r| set(&mut r.project_id, project));
        self.summary.iter_mut().for_each(|r| set(&mut r.project_id, project));
    }
}
