//! The Prometheus exposition and the `collector_stats` rows, from known counters.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// Parsed exposition: family name → type, and (family, labels) → value.
#[derive(Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    helps: BTreeSet<String>,
    samples: BTreeMap<(String, String), f64>,
}

/// A strict parser for the subset of the format that [`render`] produces.
fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a name and text");
            assert!(!help.is_empty(), "{name}: empty HELP");
            assert!(e.helps.insert(name.to_owned()), "{name}: HELP twice");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a name and type");
            assert!(["counter", "gauge"].contains(&kind), "{name}: type {kind}");
            assert!(e.types.insert(name.to_owned(), kind.to_owned()).is_none(), "{name}: TYPE twice");
        } else {
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').expect("labels closed")),
                None => (series, ""),
            };
            assert!(e.types.contains_key(name), "{name}: sample before its TYPE");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name {name}");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}: bad value"));
            assert!(e.samples.insert((name.to_owned(), labels.to_owned()), value).is_none(), "{line}: twice");
        }
    }
    e
}

#[test]
fn exposition_parses_and_has_every_family() {
    let stats = Stats::new();
    let traces = stats.table(Table::Traces);
    traces.received.fetch_add(7, Relaxed);
    traces.written.fetch_add(5, Relaxed);
    traces.queued.fetch_add(2, Relaxed);
    traces.last_batch_micros.store(1_500, Relaxed);
    stats.table(Table::LlmCalls).dead_lettered.fetch_add(u64::MAX - 1, Relaxed);
    stats.refused_busy.fetch_add(3, Relaxed);
    stats.set_clickhouse_up(false);
    stats.spool.bytes.store(1 << 20, Relaxed);
    stats.spool.oldest_age_ms.store(2_250, Relaxed);
    stats.auth.refused[2].fetch_add(4, Relaxed);
    stats.auth.keys.store(3, Relaxed);

    let text = render(&stats);
    assert!(text.ends_with('\n'));
    let e = parse(&text);
    assert_eq!(e.types.len(), TABLE_METRICS.len() + singles(&stats).len() + 1 + auth_singles(&stats).len());
    assert_eq!(e.helps.len(), e.types.len());
    for metric in TABLE_METRICS {
        assert_eq!(e.types[metric.name], metric.kind.as_str());
        for table in Table::ALL {
            let label = format!("table=\"{}\"", table.name());
            assert!(e.samples.contains_key(&(metric.name.to_owned(), label)), "{} {}", metric.name, table.name());
        }
    }
    let get = |name: &str, labels: &str| e.samples[&(name.to_owned(), labels.to_owned())];
    assert_eq!(get("promptlog_rows_received_total", r#"table="otel_traces""#), 7.0);
    assert_eq!(get("promptlog_rows_written_total", r#"table="otel_traces""#), 5.0);
    assert_eq!(get("promptlog_rows_queued", r#"table="otel_traces""#), 2.0);
    assert_eq!(get("promptlog_last_batch_seconds", r#"table="otel_traces""#), 0.0015);
    assert_eq!(get("promptlog_rows_received_total", r#"table="otel_logs""#), 0.0);
    assert_eq!(get("promptlog_requests_refused_busy_total", ""), 3.0);
    assert_eq!(get("promptlog_clickhouse_up", ""), 0.0);
    assert_eq!(get("promptlog_spool_bytes", ""), 1_048_576.0);
    assert_eq!(get("promptlog_spool_oldest_age_seconds", ""), 2.25);
    assert_eq!(get("promptlog_spool_records", ""), 0.0);
    assert_eq!(get(AUTH_REFUSED, r#"reason="expired""#), 4.0);
    assert_eq!(get(AUTH_REFUSED, r#"reason="missing""#), 0.0);
    assert_eq!(get("promptlog_auth_keys", ""), 3.0);
    assert_eq!(get("promptlog_auth_enabled", ""), 0.0);
    // Counters are printed exactly, not through f64.
    assert!(text.contains(&format!("promptlog_rows_dead_lettered_total{{table=\"llm_calls\"}} {}", u64::MAX - 1)));
    for (name, kind) in &e.types {
        assert_eq!(name.ends_with("_total"), kind == "counter", "{name} is a {kind}");
    }
}

#[test]
fn redactions_are_exposed_per_detector_when_on() {
    use promptlog_ingest::process::redact::{Action, Builtin, RedactionSpec, Redactor, Rule};
    let stats = Stats::new();
    assert!(!render(&stats).contains("promptlog_redactions_total"), "absent while redaction is off");
    let rules = vec![Rule::builtin(Builtin::Email, Action::Mask), Rule::builtin(Builtin::Iban, Action::Mask)];
    let redactor = Redactor::new(RedactionSpec { rules, ..RedactionSpec::default() }).unwrap();
    stats.set_redaction_counters(redactor.counters());
    let mut request = promptlog_ingest::Request::Traces(promptlog_otlp::traces_request(
        promptlog_otlp::resource("svc", "test"),
        vec![promptlog_otlp::span("s", 1, 1, vec![promptlog_otlp::kv("note", "a@b.io and c@d.io")])],
    ));
    let ctx = promptlog_ingest::RequestContext::new(promptlog_ingest::Signal::Traces, 1);
    assert!(promptlog_ingest::Processor::request(&redactor, &ctx, &mut request));
    let e = parse(&render(&stats));
    assert_eq!(e.types["promptlog_redactions_total"], "counter");
    assert_eq!(e.samples[&("promptlog_redactions_total".into(), r#"detector="email""#.into())], 2.0);
    assert_eq!(e.samples[&("promptlog_redactions_total".into(), r#"detector="iban""#.into())], 0.0);
    assert_eq!(e.samples[&("promptlog_content_policy_applied_total".into(), String::new())], 0.0);
}

#[test]
fn rows_carry_deltas_and_current_gauges() {
    let snap = |received, written, queued, last_batch_ms| TableSnapshot {
        received,
        written,
        queued,
        last_batch_ms,
        ..TableSnapshot::default()
    };
    let zero = snap(0, 0, 0, 0.0);
    let previous =
        [snap(10, 8, 2, 1.0), zero, snap(4, 4, 0, 2.0), zero, snap(1, 1, 0, 0.0), zero, zero, zero, snap(1, 1, 0, 0.0)];
    let current = [
        snap(15, 14, 1, 3.5),
        snap(2, 0, 2, 0.0),
        snap(4, 4, 0, 2.0),
        zero,
        snap(4, 3, 1, 0.5),
        zero,
        zero,
        zero,
        snap(3, 3, 0, 0.5),
    ];
    let rows = stats_rows("host-a", 1_700_000_000_123, &previous, &current, 4096);
    let signals: Vec<_> = rows.iter().map(|r| r.signal.as_str()).collect();
    assert_eq!(
        signals,
        [
            "traces",
            "logs",
            "llm_calls",
            "metrics_gauge",
            "metrics_sum",
            "metrics_histogram",
            "metrics_exponential_histogram",
            "metrics_summary",
            "scores"
        ]
    );
    assert_eq!((rows[8].received, rows[8].written), (2, 2));
    assert_eq!((rows[4].received, rows[4].written, rows[4].queue_depth), (3, 2, 1));
    assert_eq!((rows[0].received, rows[0].written, rows[0].queue_depth), (5, 6, 1));
    assert_eq!(rows[0].batch_latency_ms, 3.5);
    assert_eq!((rows[1].received, rows[1].written, rows[1].queue_depth), (2, 0, 2));
    assert_eq!((rows[2].received, rows[2].written), (0, 0));
    assert!(rows.iter().all(|r| r.instance == "host-a" && r.timestamp == 1_700_000_000_123));
    assert!(rows.iter().all(|r| r.spool_bytes == 4096));
}

#[test]
fn instance_is_never_empty() {
    assert!(!instance_name().is_empty());
}
