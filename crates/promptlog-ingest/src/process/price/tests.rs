//! The pricing step against the bundled genai-prices data: every expected value below is worked out
//! by hand from the per-million prices in the research note (e.g. gpt-4o: $2.50 in, $1.25 cached,
//! $10 out), never by calling the crate.

use super::*;

/// 2026-11-01T00:00:00Z, in ns: a start time after every price change the cases rely on.
const NOV_2026: i64 = 1_793_491_200_000_000_000;
/// 2025-01-01T00:00:00Z.
const JAN_2025: i64 = 1_735_689_600_000_000_000;

fn call(provider: &str, model: &str, tokens: [u64; 5]) -> LlmCallRow {
    let [input, output, cache_read, cache_write, reasoning] = tokens;
    LlmCallRow {
        timestamp: NOV_2026,
        provider: provider.into(),
        request_model: model.into(),
        response_model: model.into(),
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        cache_read_input_tokens: cache_read,
        cache_write_input_tokens: cache_write,
        reasoning_output_tokens: reasoning,
        ..LlmCallRow::default()
    }
}

fn bundled() -> Pricer {
    Pricer::new(PriceData::bundled(), Vec::new())
}

/// Equal to within 1e-12 relative (the crate adds per-unit terms in f64).
fn assert_usd(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no cost"));
    assert!((got - want).abs() <= want.abs() * 1e-12, "{what}: got {got}, want {want}");
}

#[test]
fn price_table_cases() {
    // (what, row, total, input part, matched entry)
    let m = 1_000_000;
    let cases: Vec<(&str, LlmCallRow, f64, f64, &str)> = vec![
        (
            "gpt-4o dated, 11 in 7 out: (11 x 2.50 + 7 x 10) / 1e6",
            call("openai", "gpt-4o-2024-08-06", [11, 7, 0, 0, 0]),
            0.0000975,
            0.0000275,
            "openai/gpt-4o",
        ),
        (
            "claude sonnet 4: 11 fresh + 5 read + 3 write, 7 out: (11x3 + 5x0.30 + 3x3.75 + 7x15) / 1e6",
            call("anthropic", "claude-sonnet-4-20250514", [19, 7, 5, 3, 0]),
            0.00015075,
            0.00004575,
            "anthropic/claude-sonnet-4-0",
        ),
        (
            "gpt-4o 1M in of which 400k cached, 1M out: 0.6 x 2.50 + 0.4 x 1.25 + 10",
            call("openai", "gpt-4o-2024-08-06", [m, m, 400_000, 0, 0]),
            12.0,
            2.0,
            "openai/gpt-4o",
        ),
        (
            "gpt-4o-2024-05-13 is its own entry at $5 / $15",
            call("openai", "gpt-4o-2024-05-13", [m, m, 0, 0, 0]),
            20.0,
            5.0,
            "openai/gpt-4o-2024-05-13",
        ),
        (
            "claude sonnet 4: 100k fresh + 800k read + 100k write: 0.3 + 0.24 + 0.375, 1M out 15",
            call("anthropic", "claude-sonnet-4-20250514", [m, m, 800_000, 100_000, 0]),
            15.915,
            0.915,
            "anthropic/claude-sonnet-4-0",
        ),
        (
            "claude sonnet 4.5 over 200k input: the whole request at the tier price, 250k x 6 + 1k x 22.50",
            call("anthropic", "claude-sonnet-4-5", [250_000, 1_000, 0, 0, 0]),
            1.5225,
            1.5,
            "anthropic/claude-sonnet-4-5",
        ),
        (
            "o3 reasoning is output: 1k x 2 + 2k x 8",
            call("openai", "o3", [1_000, 2_000, 0, 0, 1_500]),
            0.018,
            0.002,
            "openai/o3",
        ),
        (
            "aws.bedrock maps to genai-prices' aws",
            call("aws.bedrock", "anthropic.claude-sonnet-4-20250514-v1:0", [19, 7, 5, 3, 0]),
            0.00015075,
            0.00004575,
            "aws/",
        ),
        (
            "an unknown provider is retried on the model alone",
            call("my-gateway", "gpt-4o-2024-08-06", [11, 7, 0, 0, 0]),
            0.0000975,
            0.0000275,
            "openai/gpt-4o",
        ),
        (
            "azure.ai.inference maps to azure (which falls back to openai's prices)",
            call("azure.ai.inference", "gpt-4o-2024-08-06", [11, 7, 0, 0, 0]),
            0.0000975,
            0.0000275,
            "",
        ),
    ];
    let pricer = bundled();
    for (what, mut row, total, input, entry) in cases {
        assert!(!pricer.price_row(&mut row), "{what}: unpriced");
        assert_usd(row.cost_usd, total, what);
        assert_usd(row.input_cost_usd, input, what);
        assert_usd(row.output_cost_usd, total - input, what);
        assert_eq!(row.cost_source, source::PRICE_TABLE, "{what}");
        assert!(row.price_model.starts_with(entry), "{what}: matched {}", row.price_model);
    }
}

#[test]
fn the_request_model_is_used_when_the_response_model_is_unknown() {
    let mut row = call("openai", "gpt-4o-2024-08-06", [11, 7, 0, 0, 0]);
    row.response_model = "gpt-4o-made-up-snapshot-xyz".into();
    let mut with_unknown_request = row.clone();
    with_unknown_request.request_model = "also-made-up".into();
    assert!(!bundled().price_row(&mut row));
    assert_usd(row.cost_usd, 0.0000975, "request model");
    // Neither: unpriced, no cost at all (NULL, not 0).
    assert!(bundled().price_row(&mut with_unknown_request));
    assert_eq!(with_unknown_request.cost_source, source::UNPRICED);
    assert_eq!(
        (with_unknown_request.cost_usd, with_unknown_request.input_cost_usd, with_unknown_request.price_model.as_str()),
        (None, None, "")
    );
}

#[test]
fn prices_are_those_in_force_at_the_span_start() {
    // o3 cost $10 / $40 until June 2025, $2 / $8 since.
    let mut old = call("openai", "o3", [1_000, 2_000, 0, 0, 0]);
    old.timestamp = JAN_2025;
    bundled().price_row(&mut old);
    assert_usd(old.cost_usd, (1_000.0 * 10.0 + 2_000.0 * 40.0) / 1e6, "o3 in January 2025");
}

#[test]
fn the_service_tier_the_provider_billed_is_price_context() {
    let m = 1_000_000;
    for key in SERVICE_TIER_ATTRIBUTES {
        let mut flex = call("openai", "o3", [m, m, 0, 0, 0]);
        flex.span_attributes.push((key.into(), "flex".into()));
        bundled().price_row(&mut flex);
        // Flex is half price: $1 / $4.
        assert_usd(flex.cost_usd, 5.0, key);
    }
    let mut default = call("openai", "o3", [m, m, 0, 0, 0]);
    default.span_attributes.push(("openai.response.service_tier".into(), "default".into()));
    bundled().price_row(&mut default);
    assert_usd(default.cost_usd, 10.0, "default tier");
}

#[test]
fn a_client_cost_is_kept_and_marked_client() {
    let mut row = call("openai", "gpt-4o-2024-08-06", [11, 7, 0, 0, 0]);
    row.cost_usd = Some(0.5);
    assert!(!bundled().price_row(&mut row));
    assert_eq!((row.cost_usd, row.cost_source.as_str(), row.input_cost_usd), (Some(0.5), source::CLIENT, None));
    // Pricing again (reprice, a merge) keeps it.
    bundled().price_row(&mut row);
    assert_eq!((row.cost_usd, row.cost_source.as_str()), (Some(0.5), source::CLIENT));
}

#[test]
fn overrides_win_over_the_table_first_match_first() {
    let mut fine_tuned = PriceOverride::new("ft:gpt-4o*:acme:*", 3.75, 15.0);
    fine_tuned.cache_read = Some(1.875);
    let mut negotiated = PriceOverride::new("GPT-4O-2024-08-06", 2.0, 8.0);
    negotiated.provider = Some("openai".into());
    let pricer = Pricer::new(PriceData::bundled(), vec![fine_tuned, negotiated]);

    let mut ft = call("openai", "ft:gpt-4o-2024-08-06:acme:support:AbC123", [1_000, 100, 400, 0, 0]);
    assert!(!pricer.price_row(&mut ft));
    assert_usd(ft.cost_usd, (600.0 * 3.75 + 400.0 * 1.875 + 100.0 * 15.0) / 1e6, "fine-tuned");
    assert_eq!((ft.cost_source.as_str(), ft.price_model.as_str()), (source::OVERRIDE, "ft:gpt-4o*:acme:*"));

    let mut openai = call("openai", "gpt-4o-2024-08-06", [11, 7, 0, 0, 0]);
    pricer.price_row(&mut openai);
    assert_usd(openai.cost_usd, (11.0 * 2.0 + 7.0 * 8.0) / 1e6, "negotiated");
    // The provider condition: another provider's gpt-4o is priced from the table.
    let mut azure = call("azure.ai.openai", "gpt-4o-2024-08-06", [11, 7, 0, 0, 0]);
    pricer.price_row(&mut azure);
    assert_usd(azure.cost_usd, 0.0000975, "not negotiated");
    assert_eq!(azure.cost_source, source::PRICE_TABLE);
}

#[test]
fn globs() {
    let cases = [
        ("gpt-4o*", "GPT-4o-mini", true),
        ("gpt-4o*", "gpt-4", false),
        ("*llama*", "meta/Llama-3-70b", true),
        ("m?del", "model", true),
        ("m?del", "mdel", false),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
        ("*", "", true),
    ];
    for (pattern, text, want) in cases {
        assert_eq!(Glob::new(pattern).matches(text), want, "{pattern} ~ {text}");
    }
}

#[test]
fn rollups_are_not_priced_and_duplicates_are() {
    let mut agent = call("openai", "gpt-4o-2024-08-06", [11, 7, 0, 0, 0]);
    agent.is_rollup = true;
    assert!(!bundled().price_row(&mut agent));
    assert_eq!((agent.cost_usd, agent.cost_source.as_str()), (None, ""));
    let mut copy = agent.clone();
    copy.duplicate_of = "00f067aa0ba902b7".into();
    bundled().price_row(&mut copy);
    assert_usd(copy.cost_usd, 0.0000975, "duplicate copy");
}

#[test]
fn provider_ids() {
    for (ours, theirs) in [
        ("openai", Some("openai")),
        ("aws.bedrock", Some("aws")),
        ("gcp.vertex_ai", Some("google")),
        ("gcp.gemini", Some("google")),
        ("gcp.gen_ai", Some("google")),
        ("azure.ai.inference", Some("azure")),
        ("x_ai", Some("x-ai")),
        ("", None),
    ] {
        assert_eq!(provider_id(ours), theirs, "{ours}");
    }
}

#[test]
fn the_step_counts_unpriced_calls_and_a_new_data_file_is_swapped_in() {
    use crate::request::Signal;
    let pricer = bundled();
    let ctx = RequestContext::new(Signal::Traces, 1);
    let made_up = crate::normalize::NormalizedCall {
        row: call("openai", "made-up-1", [1, 1, 0, 0, 0]),
        content: Default::default(),
        awaits_content: false,
    };
    let mut rows = Submission { calls: vec![made_up.clone(), made_up], ..Submission::default() };
    Processor::rows(&pricer, &ctx, &mut rows);
    let unpriced = pricer.unpriced();
    assert!(unpriced.snapshot().is_empty(), "counted when released, not when priced");
    let mut copy = rows.calls[1].row.clone();
    copy.is_rollup = true;
    let counted: Vec<bool> = [&rows.calls[0].row, &rows.calls[1].row, &copy].map(|r| unpriced.count(r)).into();
    assert_eq!(counted, [true, true, false], "a rollup or duplicate copy is not counted");
    assert_eq!(unpriced.snapshot(), vec![(("openai".into(), "made-up-1".into()), 2)]);

    // A data file that prices `made-up-1` at $1 / $2 (the schema's minimal shape).
    let dir = tempdir();
    let file = dir.join("prices.json");
    std::fs::write(&file, MINIMAL_DATA).unwrap();
    pricer.data().load(&file).unwrap();
    let mut row = call("openai", "made-up-1", [1_000, 1_000, 0, 0, 0]);
    assert!(!pricer.price_row(&mut row));
    assert_usd(row.cost_usd, 0.003, "from the loaded file");
    // A bad file is an error and leaves the data in use.
    std::fs::write(&file, "{not json").unwrap();
    assert!(matches!(pricer.data().load(&file), Err(DataError::Invalid { .. })));
    let mut again = call("openai", "made-up-1", [1_000, 1_000, 0, 0, 0]);
    pricer.price_row(&mut again);
    assert_usd(again.cost_usd, 0.003, "after a bad file");
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("promptlog-price-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A v2 price file with one provider and one model.
pub(crate) const MINIMAL_DATA: &str = include_str!("testdata/minimal.json");

#[test]
fn every_chat_call_of_the_demo_is_priced() {
    use crate::request::{Request, Signal};
    use crate::{Ingestor, Limits};
    let ingestor =
        Ingestor::new(Limits { max_attribute_value_bytes: 1 << 20 }, crate::Processors::new().then(bundled()));
    let (traces, _) = promptlog_otlp::round(0);
    let rows = ingestor.accept(&RequestContext::new(Signal::Traces, 1), Request::Traces(traces), None).submission;
    let chats: Vec<_> = rows.calls.iter().map(|c| &c.row).filter(|r| r.operation == "chat").collect();
    assert!(chats.len() >= 5, "{} chat calls", chats.len());
    for r in chats {
        assert_eq!(r.cost_source, source::PRICE_TABLE, "{} {}", r.span_name, r.response_model);
        assert!(r.cost_usd.is_some_and(|c| c > 0.0), "{}", r.span_name);
        // Priced from the response model (a real snapshot name), not only through the request model.
        let mut response_only =
            LlmCallRow { request_model: String::new(), cost_source: String::new(), cost_usd: None, ..r.clone() };
        assert!(response_only.response_model.ends_with(char::is_numeric), "a dated snapshot: {}", r.response_model);
        assert!(!bundled().price_row(&mut response_only), "{} {}", r.span_name, r.response_model);
    }
}
