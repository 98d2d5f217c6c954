//! OTLP metrics → `otel_metrics_*` rows, one per data point, in the exporter's layout. A metric is
//! one record of the generic walk; each of its data points is validated on its own, so an invalid
//! point is rejected (counted in `partial_success.rejected_data_points`) while the valid points of
//! the same metric and request are stored.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint, exemplar,
    metric::Data, number_data_point,
};

use super::attrs::{hex_id, to_attr_map};
use super::raw::ResourceCtx;
use crate::rows::{AttrMap, ExpHistogramRow, GaugeRow, HistogramRow, MetricHead, MetricRows, SumRow, SummaryRow};

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point stands for a gap, it has no value.
const NO_RECORDED_VALUE: u32 = 1;
/// The scales the OTLP specification allows for exponential histograms.
const SCALES: std::ops::RangeInclusive<i32> = -10..=20;

/// Why one data point was rejected (reported in `partial_success`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointError {
    /// `time_unix_nano` missing.
    #[error("time_unix_nano is 0 (it is required)")]
    MissingTime,
    /// A timestamp beyond what DateTime64(9) can hold.
    #[error("{0} = {1} is out of range (after year 2262)")]
    TimeOutOfRange(&'static str, u64),
    /// The window ends before it starts.
    #[error("start_time_unix_nano {start} is after time_unix_nano {time}")]
    StartAfterTime { start: u64, time: u64 },
    /// A gauge or sum point without `as_double`/`as_int` (and not flagged as having none).
    #[error("number data point has no value (and no FLAG_NO_RECORDED_VALUE)")]
    NoValue,
    /// Histogram buckets that do not match their bounds.
    #[error("bucket_counts has {buckets} entries for {bounds} explicit_bounds (expected {} or none)", bounds + 1)]
    Buckets { buckets: usize, bounds: usize },
    /// Bounds not strictly increasing (or NaN).
    #[error("explicit_bounds must be strictly increasing, got {0:?}")]
    BoundsOrder(Vec<f64>),
    /// `count` not equal to what the buckets hold.
    #[error("count {count} differs from the {buckets} observations in the buckets")]
    Count { count: u64, buckets: u64 },
    /// Exponential histogram scale outside [-10, 20].
    #[error("scale {0} is outside [-10, 20]")]
    Scale(i32),
    /// A summary quantile outside [0, 1].
    #[error("quantile {0} is outside [0, 1]")]
    Quantile(f64),
}

/// Converts a nanosecond timestamp to DateTime64(9) ticks.
fn ticks(field: &'static str, ns: u64) -> Result<i64, PointError> {
    i64::try_from(ns).map_err(|_| PointError::TimeOutOfRange(field, ns))
}

/// Checks and converts a point's window: (start, time), start 0 when absent.
fn window(start: u64, time: u64) -> Result<(i64, i64), PointError> {
    if time == 0 {
        return Err(PointError::MissingTime);
    }
    let (s, t) = (ticks("start_time_unix_nano", start)?, ticks("time_unix_nano", time)?);
    if start > time {
        return Err(PointError::StartAfterTime { start, time });
    }
    Ok((s, t))
}

/// How many data points a metric holds (what rejecting it whole counts).
pub fn points(metric: &Metric) -> u64 {
    (match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(e)) => e.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }) as u64
}

/// What every row of one metric shares, and how to fill it for a point.
pub struct MetricCtx<'a> {
    pub res: &'a ResourceCtx,
    pub scope: Option<&'a InstrumentationScope>,
    pub scope_schema_url: &'a str,
    pub max_value: usize,
}

/// The rows of one metric's valid points; each invalid point's reason goes to `reject`.
pub fn add_rows(
    metric: &Metric,
    at: &MetricCtx<'_>,
    out: &mut MetricRows,
    truncated: &mut usize,
    reject: &mut dyn FnMut(PointError),
) {
    macro_rules! each {
        ($points:expr, $row:ident, $vec:expr) => {
            for p in $points {
                match $row(metric, at, p, truncated) {
                    Ok(row) => $vec.push(row),
                    Err(e) => reject(e),
                }
            }
        };
    }
    match &metric.data {
        Some(Data::Gauge(g)) => each!(&g.data_points, gauge_row, out.gauge),
        Some(Data::Sum(s)) => {
            let row = |m: &Metric, at: &MetricCtx<'_>, p: &NumberDataPoint, t: &mut usize| {
                number_point(m, at, p, t).map(|(h, n)| SumRow {
                    value: n.value,
                    flags: n.flags,
                    exemplars_filtered_attributes: n.exemplars.0,
                    exemplars_time_unix: n.exemplars.1,
                    exemplars_value: n.exemplars.2,
                    exemplars_span_id: n.exemplars.3,
                    exemplars_trace_id: n.exemplars.4,
                    aggregation_temporality: s.aggregation_temporality,
                    is_monotonic: s.is_monotonic,
                    ..SumRow::from_head(h)
                })
            };
            each!(&s.data_points, row, out.sum)
        }
        Some(Data::Histogram(h)) => {
            let temporality = h.aggregation_temporality;
            let row = |m: &Metric, at: &MetricCtx<'_>, p: &HistogramDataPoint, t: &mut usize| {
                histogram_row(m, at, p, t).map(|r| HistogramRow { aggregation_temporality: temporality, ..r })
            };
            each!(&h.data_points, row, out.histogram)
        }
        Some(Data::ExponentialHistogram(e)) => {
            let temporality = e.aggregation_temporality;
            let row = |m: &Metric, at: &MetricCtx<'_>, p: &ExponentialHistogramDataPoint, t: &mut usize| {
                exp_histogram_row(m, at, p, t).map(|r| ExpHistogramRow { aggregation_temporality: temporality, ..r })
            };
            each!(&e.data_points, row, out.exp_histogram)
        }
        Some(Data::Summary(s)) => each!(&s.data_points, summary_row, out.summary),
        None => {}
    }
}

/// The columns every metric row shares.
fn head(metric: &Metric, at: &MetricCtx<'_>, attributes: &[KeyValue], window: (i64, i64), t: &mut usize) -> MetricHead {
    let mut row = MetricHead {
        resource_attributes: at.res.attributes.to_vec(),
        resource_schema_url: at.res.schema_url.clone(),
        scope_name: at.scope.map(|s| s.name.clone()).unwrap_or_default(),
        scope_version: at.scope.map(|s| s.version.clone()).unwrap_or_default(),
        scope_dropped_attr_count: at.scope.map_or(0, |s| s.dropped_attributes_count),
        scope_schema_url: at.scope_schema_url.to_owned(),
        service_name: at.res.service_name.clone(),
        metric_name: metric.name.clone(),
        metric_description: metric.description.clone(),
        metric_unit: metric.unit.clone(),
        start_time_unix: window.0,
        time_unix: window.1,
        ..MetricHead::default()
    };
    if let Some(scope) = at.scope {
        *t += to_attr_map(&scope.attributes, at.max_value, &mut row.scope_attributes);
    }
    *t += to_attr_map(attributes, at.max_value, &mut row.attributes);
    row
}

/// The five exemplar columns.
type ExemplarCols = (Vec<AttrMap>, Vec<i64>, Vec<f64>, Vec<String>, Vec<String>);

fn exemplars(list: &[Exemplar], max_value: usize, t: &mut usize) -> ExemplarCols {
    let mut cols = ExemplarCols::default();
    for e in list {
        let mut attrs = AttrMap::new();
        *t += to_attr_map(&e.filtered_attributes, max_value, &mut attrs);
        cols.0.push(attrs);
        cols.1.push(i64::try_from(e.time_unix_nano).unwrap_or(i64::MAX));
        cols.2.push(match e.value {
            Some(exemplar::Value::AsDouble(v)) => v,
            Some(exemplar::Value::AsInt(v)) => v as f64,
            None => 0.0,
        });
        cols.3.push(hex_id(&e.span_id));
        cols.4.push(hex_id(&e.trace_id));
    }
    cols
}

/// A gauge or sum point's own columns.
struct Number {
    value: f64,
    flags: u32,
    exemplars: ExemplarCols,
}

fn number_point(
    metric: &Metric,
    at: &MetricCtx<'_>,
    p: &NumberDataPoint,
    t: &mut usize,
) -> Result<(MetricHead, Number), PointError> {
    let w = window(p.start_time_unix_nano, p.time_unix_nano)?;
    let value = match p.value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        None if p.flags & NO_RECORDED_VALUE != 0 => 0.0,
        None => return Err(PointError::NoValue),
    };
    let h = head(metric, at, &p.attributes, w, t);
    Ok((h, Number { value, flags: p.flags, exemplars: exemplars(&p.exemplars, at.max_value, t) }))
}

fn gauge_row(metric: &Metric, at: &MetricCtx<'_>, p: &NumberDataPoint, t: &mut usize) -> Result<GaugeRow, PointError> {
    let (h, n) = number_point(metric, at, p, t)?;
    Ok(GaugeRow {
        value: n.value,
        flags: n.flags,
        exemplars_filtered_attributes: n.exemplars.0,
        exemplars_time_unix: n.exemplars.1,
        exemplars_value: n.exemplars.2,
        exemplars_span_id: n.exemplars.3,
        exemplars_trace_id: n.exemplars.4,
        ..GaugeRow::from_head(h)
    })
}

fn histogram_row(
    metric: &Metric,
    at: &MetricCtx<'_>,
    p: &HistogramDataPoint,
    t: &mut usize,
) -> Result<HistogramRow, PointError> {
    let w = window(p.start_time_unix_nano, p.time_unix_nano)?;
    let (buckets, bounds) = (p.bucket_counts.len(), p.explicit_bounds.len());
    if buckets != 0 && buckets != bounds + 1 {
        return Err(PointError::Buckets { buckets, bounds });
    }
    if !p.explicit_bounds.windows(2).all(|w| w[0] < w[1]) || p.explicit_bounds.iter().any(|b| b.is_nan()) {
        return Err(PointError::BoundsOrder(p.explicit_bounds.clone()));
    }
    let in_buckets = p.bucket_counts.iter().fold(0u64, |a, b| a.saturating_add(*b));
    if buckets != 0 && in_buckets != p.count {
        return Err(PointError::Count { count: p.count, buckets: in_buckets });
    }
    let h = head(metric, at, &p.attributes, w, t);
    let (fa, time, val, span, trace) = exemplars(&p.exemplars, at.max_value, t);
    Ok(HistogramRow {
        count: p.count,
        sum: p.sum.unwrap_or(0.0),
        bucket_counts: p.bucket_counts.clone(),
        explicit_bounds: p.explicit_bounds.clone(),
        exemplars_filtered_attributes: fa,
        exemplars_time_unix: time,
        exemplars_value: val,
        exemplars_span_id: span,
        exemplars_trace_id: trace,
        flags: p.flags,
        min: p.min.unwrap_or(0.0),
        max: p.max.unwrap_or(0.0),
        ..HistogramRow::from_head(h)
    })
}

fn exp_histogram_row(
    metric: &Metric,
    at: &MetricCtx<'_>,
    p: &ExponentialHistogramDataPoint,
    t: &mut usize,
) -> Result<ExpHistogramRow, PointError> {
    let w = window(p.start_time_unix_nano, p.time_unix_nano)?;
    if !SCALES.contains(&p.scale) {
        return Err(PointError::Scale(p.scale));
    }
    let (pos, neg) = (p.positive.clone().unwrap_or_default(), p.negative.clone().unwrap_or_default());
    let in_buckets = pos.bucket_counts.iter().chain(&neg.bucket_counts).fold(p.zero_count, |a, b| a.saturating_add(*b));
    if in_buckets != p.count {
        return Err(PointError::Count { count: p.count, buckets: in_buckets });
    }
    let h = head(metric, at, &p.attributes, w, t);
    let (fa, time, val, span, trace) = exemplars(&p.exemplars, at.max_value, t);
    Ok(ExpHistogramRow {
        count: p.count,
        sum: p.sum.unwrap_or(0.0),
        scale: p.scale,
        zero_count: p.zero_count,
        positive_offset: pos.offset,
        positive_bucket_counts: pos.bucket_counts,
        negative_offset: neg.offset,
        negative_bucket_counts: neg.bucket_counts,
        exemplars_filtered_attributes: fa,
        exemplars_time_unix: time,
        exemplars_value: val,
        exemplars_span_id: span,
        exemplars_trace_id: trace,
        flags: p.flags,
        min: p.min.unwrap_or(0.0),
        max: p.max.unwrap_or(0.0),
        ..ExpHistogramRow::from_head(h)
    })
}

fn summary_row(
    metric: &Metric,
    at: &MetricCtx<'_>,
    p: &SummaryDataPoint,
    t: &mut usize,
) -> Result<SummaryRow, PointError> {
    let w = window(p.start_time_unix_nano, p.time_unix_nano)?;
    if let Some(q) = p.quantile_values.iter().find(|q| !(0.0..=1.0).contains(&q.quantile)) {
        return Err(PointError::Quantile(q.quantile));
    }
    let h = head(metric, at, &p.attributes, w, t);
    Ok(SummaryRow {
        count: p.count,
        sum: p.sum,
        value_at_quantiles_quantile: p.quantile_values.iter().map(|q| q.quantile).collect(),
        value_at_quantiles_value: p.quantile_values.iter().map(|q| q.value).collect(),
        flags: p.flags,
        ..SummaryRow::from_head(h)
    })
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
