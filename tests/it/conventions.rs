//! Table-driven tests of every convention normaliser on payloads recorded from the real
//! instrumentation packages (`tests/fixtures/otlp/`, see its README): decode → normalise → join,
//! then compare each LLM call with the exact values of `tests/clients/scenarios.json`.
//! The capability table (`support::conventions::TABLE`, shared with the `real_clients` suite) is the
//! README's coverage table.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use promptlog_ingest::join::Joiner;
use promptlog_ingest::process::Processor;
use promptlog_ingest::process::price::{PriceData, Pricer};
use promptlog_ingest::rows::LlmCallRow;
use promptlog_ingest::{Ingestor, Limits, Processors, Request, RequestContext, Signal};
use promptlog_testkit::repo_root;
use serde_json::Value;

use crate::support::conventions::{TABLE, check, check_duplicates, check_rollups, scenario_of, split_rollups};

fn scenarios() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_root().join("tests/clients/scenarios.json")).unwrap()).unwrap()
}

/// Replays one fixture folder through the normaliser and the join, in arrival order.
pub fn calls_of(folder: &Path) -> Vec<LlmCallRow> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
        .collect();
    files.sort_by_key(|p| p.file_name().unwrap().to_str().unwrap().split('-').nth(1).unwrap().to_owned());
    // With the pricing step, and the merge hook pricing merged calls again, as the collector runs them.
    let pricer = Pricer::new(PriceData::bundled(), Vec::new());
    let ingestor = Ingestor::new(Limits { max_attribute_value_bytes: 1 << 20 }, Processors::new().then(pricer.clone()));
    let mut joiner = Joiner::new(Duration::from_secs(10), 10_000)
        .merging_duplicates(true)
        .on_merged(Box::new(move |row| pricer.merged(row)));
    let now = Instant::now();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        let signal = match name.split('-').next() {
            Some("traces") => Signal::Traces,
            Some("logs") => Signal::Logs,
            _ => continue,
        };
        // Through the collector's own seam, as a live protobuf request.
        let request = Request::decode(signal, &bytes).unwrap();
        let accepted = ingestor.accept(&RequestContext::new(signal, 1), request, Some(bytes));
        assert_eq!(accepted.report.rejected, 0, "{name}: {}", accepted.report.message("records", 0));
        accepted.submission.calls.into_iter().for_each(|c| joiner.add_call(c, now));
        accepted.submission.fragments.into_iter().for_each(|f| joiner.add_content(f, now));
        joiner.add_span_links(&accepted.submission.spans);
    }
    joiner.drain();
    joiner.take_ready()
}

#[test]
fn every_recorded_convention_normalises_exactly() {
    let sc = scenarios();
    let mut failures = Vec::new();
    for (folder, convention, carries) in TABLE {
        // Rollup rows (outer spans repeating their calls' usage) are checked apart from the calls.
        let (rows, rollups, duplicates) =
            split_rollups(calls_of(&repo_root().join("tests/fixtures/otlp").join(folder)));
        failures.extend(check_rollups(&rollups, &rows, *carries, &sc).into_iter().map(|b| format!("{folder}/{b}")));
        failures
            .extend(check_duplicates(&duplicates, &rows, *carries, &sc).into_iter().map(|b| format!("{folder}/{b}")));
        let mut seen: Vec<&str> = rows.iter().map(|r| scenario_of(r, &sc)).collect();
        seen.sort();
        let mut want = vec!["error", "plain", "stream", "tool", "tool_result"];
        if carries.embeddings_span {
            want.push("embed");
        }
        want.sort();
        if seen != want {
            failures.push(format!("{folder}: scenarios {seen:?}, want {want:?}"));
        }
        for row in &rows {
            let name = scenario_of(row, &sc);
            if name != "embed" && row.convention != *convention {
                failures.push(format!("{folder}/{name}: convention {}", row.convention));
            }
            failures.extend(check(row, name, *carries, &sc).into_iter().map(|b| format!("{folder}/{b}")));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
