//! The pricing families of `/metrics`: unpriced calls by provider and model (a bounded label set,
//! see `promptlog_ingest::process::price::Unpriced`) and price data reloads.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::{Kind, header};
use crate::telemetry::Stats;

/// Unpriced LLM calls, by provider and model.
pub(super) const UNPRICED: &str = "promptlog_llm_calls_unpriced_total";

/// Renders the pricing families, when pricing is on.
pub(super) fn render(out: &mut String, stats: &Stats) {
    let Some(unpriced) = stats.unpriced() else { return };
    header(
        out,
        UNPRICED,
        Kind::Counter,
        "LLM calls no price was found for (CostSource = unpriced), by provider and model; past 100 series, `other`.",
    );
    for ((provider, model), n) in unpriced.snapshot() {
        let _ = writeln!(out, "{UNPRICED}{{provider=\"{}\",model=\"{}\"}} {n}", escape(&provider), escape(&model));
    }
    for (name, help, value) in [
        ("promptlog_pricing_reloads_total", "Times a changed pricing.data_file was loaded.", &stats.pricing.reloads),
        (
            "promptlog_pricing_reload_errors_total",
            "Times a changed pricing.data_file could not be loaded (the data in use stayed).",
            &stats.pricing.reload_errors,
        ),
    ] {
        header(out, name, Kind::Counter, help);
        let _ = writeln!(out, "{name} {}", value.load(Relaxed));
    }
}

/// A label value in the exposition format: backslash, double quote and newline escaped.
pub(super) fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use promptlog_ingest::process::price::{MAX_UNPRICED_SERIES, Unpriced};

    use super::*;

    #[test]
    fn unpriced_calls_are_labelled_escaped_and_bounded() {
        let stats = Stats::new();
        let unpriced = Arc::new(Unpriced::default());
        stats.set_unpriced(unpriced.clone());
        unpriced.add("openai", "my-\"model\"");
        unpriced.add("openai", "my-\"model\"");
        for i in 0..MAX_UNPRICED_SERIES + 5 {
            unpriced.add("acme", &format!("m{i}"));
        }
        let mut out = String::new();
        render(&mut out, &stats);
        assert!(out.contains(&format!("{UNPRICED}{{provider=\"openai\",model=\"my-\\\"model\\\"\"}} 2\n")), "{out}");
        let series = out.lines().filter(|l| l.starts_with(&format!("{UNPRICED}{{"))).count();
        assert_eq!(series, MAX_UNPRICED_SERIES + 1, "{out}");
        // 1 openai series + 99 acme ones fit; the remaining 6 acme models are folded.
        assert!(out.contains(&format!("{UNPRICED}{{provider=\"other\",model=\"other\"}} 6\n")), "{out}");
    }
}
