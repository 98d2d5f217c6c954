//! OTLP span / log record → raw `otel_traces` / `otel_logs` rows, with the validation that decides
//! whether a record is stored at all.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};

use super::attrs::{Attrs, hex_id, to_attr_map, value_to_string};
use crate::rows::{AttrMap, LogRow, SharedAttrMap, SpanRow};

/// Service name used when the resource has none (the SDK default).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Why one span or log record was rejected (reported in `partial_success`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Trace id is not 16 bytes or is all zero.
    #[error("trace_id must be 16 non-zero bytes, got {0} bytes")]
    TraceId(usize),
    /// Span id is not 8 bytes or is all zero.
    #[error("span_id must be 8 non-zero bytes, got {0} bytes")]
    SpanId(usize),
    /// Parent span id present but not 8 bytes.
    #[error("parent_span_id must be empty or 8 bytes, got {0} bytes")]
    ParentSpanId(usize),
    /// Start time missing.
    #[error("start_time_unix_nano is 0 (it is required)")]
    MissingStart,
    /// A timestamp beyond what DateTime64(9) can hold (year 2262).
    #[error("{0} = {1} is out of range (after year 2262)")]
    TimeOutOfRange(&'static str, u64),
    /// End before start.
    #[error("end_time_unix_nano {end} is before start_time_unix_nano {start}")]
    EndBeforeStart { start: u64, end: u64 },
}

/// Resource-level values shared by every record under one resource.
pub struct ResourceCtx {
    /// `service.name`.
    pub service_name: String,
    /// `deployment.environment.name` / `deployment.environment`.
    pub environment: String,
    /// All resource attributes as a map column, shared by the rows of the resource.
    pub attributes: SharedAttrMap,
    /// Resource schema URL.
    pub schema_url: String,
}

impl ResourceCtx {
    /// Builds the context for one `ResourceSpans`/`ResourceLogs`; counts truncated values into `truncated`.
    pub fn new(resource: Option<&Resource>, schema_url: &str, max_value: usize, truncated: &mut usize) -> Self {
        let attrs: &[KeyValue] = resource.map_or(&[], |r| &r.attributes);
        let a = Attrs(attrs);
        let mut attributes = AttrMap::new();
        *truncated += to_attr_map(attrs, max_value, &mut attributes);
        ResourceCtx {
            service_name: a.str("service.name").unwrap_or_else(|| UNKNOWN_SERVICE.to_owned()),
            environment: a
                .str("deployment.environment.name")
                .or_else(|| a.str("deployment.environment"))
                .unwrap_or_default(),
            attributes: attributes.into(),
            schema_url: schema_url.to_owned(),
        }
    }
}

/// Converts a nanosecond timestamp to DateTime64(9) ticks.
fn ticks(field: &'static str, ns: u64) -> Result<i64, RecordError> {
    i64::try_from(ns).map_err(|_| RecordError::TimeOutOfRange(field, ns))
}

/// Checks the ids and times of a span.
pub fn validate_span(span: &Span) -> Result<(), RecordError> {
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Err(RecordError::TraceId(span.trace_id.len()));
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Err(RecordError::SpanId(span.span_id.len()));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Err(RecordError::ParentSpanId(span.parent_span_id.len()));
    }
    if span.start_time_unix_nano == 0 {
        return Err(RecordError::MissingStart);
    }
    ticks("start_time_unix_nano", span.start_time_unix_nano)?;
    ticks("end_time_unix_nano", span.end_time_unix_nano)?;
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(RecordError::EndBeforeStart { start: span.start_time_unix_nano, end: span.end_time_unix_nano });
    }
    Ok(())
}

/// `SpanKind` in the exporter's pdata spelling.
pub fn span_kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind).unwrap_or(SpanKind::Unspecified) {
        SpanKind::Unspecified => "Unspecified",
        SpanKind::Internal => "Internal",
        SpanKind::Server => "Server",
        SpanKind::Client => "Client",
        SpanKind::Producer => "Producer",
        SpanKind::Consumer => "Consumer",
    }
}

/// Status code in the exporter's pdata spelling (`Unset`, `Ok`, `Error`).
pub fn status_code_name(span: &Span) -> &'static str {
    match span.status.as_ref().map(|s| StatusCode::try_from(s.code).unwrap_or(StatusCode::Unset)) {
        Some(StatusCode::Ok) => "Ok",
        Some(StatusCode::Error) => "Error",
        _ => "Unset",
    }
}

/// Builds the `otel_traces` row of a validated span.
pub fn span_row(
    span: &Span,
    res: &ResourceCtx,
    scope: Option<&InstrumentationScope>,
    max_value: usize,
    truncated: &mut usize,
) -> SpanRow {
    let mut row = SpanRow {
        timestamp: span.start_time_unix_nano as i64,
        trace_id: hex_id(&span.trace_id),
        span_id: hex_id(&span.span_id),
        parent_span_id: hex_id(&span.parent_span_id),
        trace_state: span.trace_state.clone(),
        span_name: span.name.clone(),
        span_kind: span_kind_name(span.kind).to_owned(),
        service_name: res.service_name.clone(),
        resource_attributes: res.attributes.clone(),
        scope_name: scope.map(|s| s.name.clone()).unwrap_or_default(),
        scope_version: scope.map(|s| s.version.clone()).unwrap_or_default(),
        duration: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
        status_code: status_code_name(span).to_owned(),
        status_message: span.status.as_ref().map(|s| s.message.clone()).unwrap_or_default(),
        ..SpanRow::default()
    };
    *truncated += to_attr_map(&span.attributes, max_value, &mut row.span_attributes);
    for event in &span.events {
        row.events_timestamp.push(i64::try_from(event.time_unix_nano).unwrap_or(i64::MAX));
        row.events_name.push(event.name.clone());
        let mut attrs = AttrMap::new();
        *truncated += to_attr_map(&event.attributes, max_value, &mut attrs);
        row.events_attributes.push(attrs);
    }
    for link in &span.links {
        row.links_trace_id.push(hex_id(&link.trace_id));
        row.links_span_id.push(hex_id(&link.span_id));
        row.links_trace_state.push(link.trace_state.clone());
        let mut attrs = AttrMap::new();
        *truncated += to_attr_map(&link.attributes, max_value, &mut attrs);
        row.links_attributes.push(attrs);
    }
    row
}

/// The event name of a log record: the `event_name` field, else the `event.name` attribute.
pub fn event_name(log: &LogRecord) -> String {
    if !log.event_name.is_empty() {
        return log.event_name.clone();
    }
    Attrs(&log.attributes).str("event.name").unwrap_or_default()
}

/// Checks ids (optional on logs, but well-formed when present) and times of a log record.
pub fn validate_log(log: &LogRecord) -> Result<(), RecordError> {
    if !log.trace_id.is_empty() && log.trace_id.len() != 16 {
        return Err(RecordError::TraceId(log.trace_id.len()));
    }
    if !log.span_id.is_empty() && log.span_id.len() != 8 {
        return Err(RecordError::SpanId(log.span_id.len()));
    }
    ticks("time_unix_nano", log.time_unix_nano)?;
    ticks("observed_time_unix_nano", log.observed_time_unix_nano)?;
    Ok(())
}

/// Builds the `otel_logs` row of a validated log record; `now_ns` stands in when it has no time at all.
pub fn log_row(
    log: &LogRecord,
    res: &ResourceCtx,
    scope: Option<&InstrumentationScope>,
    scope_schema_url: &str,
    now_ns: i64,
    max_value: usize,
    truncated: &mut usize,
) -> LogRow {
    let time = if log.time_unix_nano != 0 { log.time_unix_nano } else { log.observed_time_unix_nano };
    let mut body = log.body.as_ref().and_then(|b| b.value.as_ref()).map(value_to_string).unwrap_or_default();
    if super::attrs::truncate_in_place(&mut body, max_value) {
        *truncated += 1;
    }
    let mut row = LogRow {
        timestamp: if time == 0 { now_ns } else { time as i64 },
        trace_id: hex_id(&log.trace_id),
        span_id: hex_id(&log.span_id),
        trace_flags: (log.flags & 0xff) as u8,
        severity_text: log.severity_text.clone(),
        severity_number: u8::try_from(log.severity_number).unwrap_or(0),
        service_name: res.service_name.clone(),
        body,
        resource_schema_url: res.schema_url.clone(),
        resource_attributes: res.attributes.clone(),
        scope_schema_url: scope_schema_url.to_owned(),
        scope_name: scope.map(|s| s.name.clone()).unwrap_or_default(),
        scope_version: scope.map(|s| s.version.clone()).unwrap_or_default(),
        event_name: event_name(log),
        ..LogRow::default()
    };
    if let Some(scope) = scope {
        *truncated += to_attr_map(&scope.attributes, max_value, &mut row.scope_attributes);
    }
    *truncated += to_attr_map(&log.attributes, max_value, &mut row.log_attributes);
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::Status;

    fn span() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "chat gpt-4".into(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_001_500_000_000,
            status: Some(Status { code: StatusCode::Error as i32, message: "boom".into() }),
            ..Span::default()
        }
    }

    #[test]
    fn span_validation_table() {
        type Mutation = fn(&mut Span);
        let cases: Vec<(Mutation, Option<RecordError>)> = vec![
            (|_| {}, None),
            (|s| s.trace_id = vec![1; 15], Some(RecordError::TraceId(15))),
            (|s| s.trace_id = vec![0; 16], Some(RecordError::TraceId(16))),
            (|s| s.span_id = vec![], Some(RecordError::SpanId(0))),
            (|s| s.parent_span_id = vec![1; 3], Some(RecordError::ParentSpanId(3))),
            (|s| s.start_time_unix_nano = 0, Some(RecordError::MissingStart)),
            (|s| s.end_time_unix_nano = u64::MAX, Some(RecordError::TimeOutOfRange("end_time_unix_nano", u64::MAX))),
            (
                |s| s.end_time_unix_nano = s.start_time_unix_nano - 1,
                Some(RecordError::EndBeforeStart { start: 1_700_000_000_000_000_000, end: 1_699_999_999_999_999_999 }),
            ),
        ];
        for (mutate, want) in cases {
            let mut s = span();
            mutate(&mut s);
            assert_eq!(validate_span(&s).err(), want);
        }
    }

    #[test]
    fn span_row_uses_exporter_spellings() {
        let mut truncated = 0;
        let res = ResourceCtx::new(None, "", 1024, &mut truncated);
        let row = span_row(&span(), &res, None, 1024, &mut truncated);
        assert_eq!(row.trace_id, "01010101010101010101010101010101");
        assert_eq!(row.parent_span_id, "");
        assert_eq!(row.span_kind, "Client");
        assert_eq!(row.status_code, "Error");
        assert_eq!(row.duration, 1_500_000_000);
        assert_eq!(row.service_name, UNKNOWN_SERVICE);
    }
}
