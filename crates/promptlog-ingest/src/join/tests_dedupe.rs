//! Duplicate-call merging: which recordings are one call, in every arrival order, which one counts
//! and what it takes from the others.

use super::*;
use crate::normalize::messages::text_message;

const WINDOW: Duration = Duration::from_secs(10);
const MS: i64 = 1_000_000;

/// A chat recording: span `span` of trace `trace` under `parent`, from `start` ms for `len` ms, by an
/// instrumentation scope of its own.
fn rec(trace: &str, span: &str, parent: &str, start: i64, len: i64) -> NormalizedCall {
    let row = LlmCallRow {
        project_id: "p".into(),
        trace_id: trace.into(),
        span_id: span.into(),
        parent_span_id: parent.into(),
        timestamp: start * MS,
        duration: (len * MS) as u64,
        operation: "chat".into(),
        provider: "anthropic".into(),
        request_model: "claude-sonnet-4-5".into(),
        status_code: "Unset".into(),
        scope_name: format!("scope-{span}"),
        ..LlmCallRow::default()
    };
    NormalizedCall { row, content: Content::default(), awaits_content: false }
}

fn with_response(mut c: NormalizedCall, id: &str) -> NormalizedCall {
    c.row.response_id = id.into();
    c
}

fn joiner() -> Joiner<usize> {
    Joiner::with_tags(WINDOW, 100).merging_duplicates(true)
}

/// Feeds `calls` in the order `order` (indices), one second apart, then lets the window pass; returns
/// (tag, span, is_rollup, duplicate_of) of every released row, sorted by tag.
fn run(calls: &[NormalizedCall], order: &[usize]) -> Vec<(usize, String, bool, String)> {
    let t0 = Instant::now();
    let mut j = joiner();
    for (n, &i) in order.iter().enumerate() {
        j.add_tagged_call(calls[i].clone(), i, t0 + Duration::from_secs(n as u64));
        super::tests::assert_accounting(&j);
    }
    assert!(j.take_tagged().is_empty(), "nothing is released before the window passes");
    j.tick(t0 + WINDOW + Duration::from_secs(order.len() as u64));
    let mut got: Vec<_> =
        j.take_tagged().into_iter().map(|(t, r)| (t, r.span_id, r.is_rollup, r.duplicate_of)).collect();
    got.sort();
    assert_eq!(j.pending(), 0);
    assert_eq!(j.held_bytes(), 0);
    got
}

fn orders(n: usize) -> Vec<Vec<usize>> {
    match n {
        2 => vec![vec![0, 1], vec![1, 0]],
        3 => vec![vec![0, 1, 2], vec![0, 2, 1], vec![1, 0, 2], vec![1, 2, 0], vec![2, 0, 1], vec![2, 1, 0]],
        _ => unreachable!(),
    }
}

/// (name, recordings, spans that count; every other recording must be a duplicate of the first span
/// that counts — each case has at most one counted span when any duplicate exists).
fn cases() -> Vec<(&'static str, Vec<NormalizedCall>, Vec<&'static str>)> {
    let mut other_provider = rec("t", "b", "a", 10, 80);
    other_provider.row.provider = "openai".into();
    let mut other_op = rec("t", "b", "a", 10, 80);
    other_op.row.operation = "embeddings".into();
    let mut rollup = rec("t", "a", "app", 0, 100);
    rollup.row.is_rollup = true;
    let mut other_project = with_response(rec("t2", "b", "", 10, 80), "msg_1");
    other_project.row.project_id = "q".into();
    let service = |mut c: NormalizedCall| {
        c.row.service_name = "gateway".into();
        c
    };
    let same_scope = |mut c: NormalizedCall| {
        c.row.scope_name = "one-instrumentation".into();
        c
    };
    let mut other_model = rec("t", "b", "app", 2, 90);
    other_model.row.request_model = "claude-haiku-4-5".into();
    let tokens = |mut c: NormalizedCall, n: u64| {
        c.row.input_tokens = n;
        c
    };
    vec![
        // A layer that does not make its span current: the inner copy is its sibling (OpenLLMetry's
        // Anthropic span and the SDK's, on an error, with no response id on either).
        (
            "enclosed sibling of another scope",
            vec![rec("t", "a", "app", 0, 100), rec("t", "b", "app", 2, 90)],
            vec!["a"],
        ),
        (
            "enclosed sibling of the same scope: parallel calls",
            vec![same_scope(rec("t", "a", "app", 0, 100)), same_scope(rec("t", "b", "app", 2, 90))],
            vec!["a", "b"],
        ),
        (
            "parent and child of the same scope",
            vec![same_scope(rec("t", "a", "app", 0, 100)), same_scope(rec("t", "b", "a", 10, 80))],
            vec!["a", "b"],
        ),
        (
            "enclosed sibling with another request model",
            vec![rec("t", "a", "app", 0, 100), other_model],
            vec!["a", "b"],
        ),
        (
            "nested with an exclusive and an inclusive input count",
            vec![tokens(rec("t", "a", "app", 0, 100), 12), tokens(rec("t", "b", "a", 10, 80), 512)],
            vec!["a"],
        ),
        (
            "nested with different response ids",
            vec![
                with_response(rec("t", "a", "app", 0, 100), "msg_1"),
                with_response(rec("t", "b", "a", 10, 80), "msg_2"),
            ],
            vec!["a", "b"],
        ),
        (
            "nested, one response id",
            vec![rec("t", "a", "app", 0, 100), with_response(rec("t", "b", "a", 10, 80), "msg_2")],
            vec!["a"],
        ),
        ("parent and child", vec![rec("t", "a", "app", 0, 100), rec("t", "b", "a", 10, 80)], vec!["a"]),
        (
            "grandchild through a held call",
            vec![rec("t", "a", "app", 0, 100), rec("t", "b", "a", 5, 90), rec("t", "c", "b", 10, 80)],
            vec!["a"],
        ),
        (
            "same response id, unrelated traces",
            vec![with_response(rec("t1", "a", "", 0, 100), "msg_1"), with_response(rec("t2", "b", "", 3, 90), "msg_1")],
            vec!["a"],
        ),
        (
            "same response id replayed later: a cache hit is another call",
            vec![
                with_response(rec("t1", "a", "", 0, 100), "msg_1"),
                with_response(rec("t2", "b", "", 500, 90), "msg_1"),
            ],
            vec!["a", "b"],
        ),
        (
            "same response id in another service and trace",
            vec![
                with_response(rec("t1", "a", "", 0, 100), "msg_1"),
                service(with_response(rec("t2", "b", "", 3, 90), "msg_1")),
            ],
            vec!["a", "b"],
        ),
        (
            "a gateway in the app's trace, same instrumentation",
            vec![same_scope(rec("t", "a", "app", 0, 100)), service(same_scope(rec("t", "b", "a", 10, 80)))],
            vec!["a"],
        ),
        ("siblings are two calls", vec![rec("t", "a", "app", 0, 100), rec("t", "b", "app", 200, 100)], vec!["a", "b"]),
        (
            "siblings overlapping in time are two calls",
            vec![rec("t", "a", "app", 0, 100), rec("t", "b", "app", 50, 100)],
            vec!["a", "b"],
        ),
        ("other provider", vec![rec("t", "a", "app", 0, 100), other_provider], vec!["a", "b"]),
        ("other operation", vec![rec("t", "a", "app", 0, 100), other_op], vec!["a", "b"]),
        (
            "child after its parent ended",
            vec![rec("t", "a", "app", 0, 100), rec("t", "b", "a", 150, 10)],
            vec!["a", "b"],
        ),
        ("rollup parent", vec![rollup, rec("t", "b", "a", 10, 80)], vec!["b"]),
        (
            "different response ids",
            vec![
                with_response(rec("t1", "a", "", 0, 100), "msg_1"),
                with_response(rec("t2", "b", "", 0, 100), "msg_2"),
            ],
            vec!["a", "b"],
        ),
        (
            "same response id in another project",
            vec![with_response(rec("t1", "a", "", 0, 100), "msg_1"), other_project],
            vec!["a", "b"],
        ),
    ]
}

#[test]
fn duplicates_are_found_in_every_arrival_order() {
    for (name, calls, counted) in cases() {
        for order in orders(calls.len()) {
            let got = run(&calls, &order);
            assert_eq!(got.len(), calls.len(), "{name} {order:?}: every recording is released once");
            let rollup_spans: Vec<&str> =
                calls.iter().filter(|c| c.row.is_rollup).map(|c| c.row.span_id.as_str()).collect();
            for (tag, span, is_rollup, duplicate_of) in &got {
                assert_eq!(span, &calls[*tag].row.span_id, "{name}: tag and row stay together");
                let counts = counted.contains(&span.as_str());
                let want_dup = if counts || rollup_spans.contains(&span.as_str()) { "" } else { counted[0] };
                assert_eq!((*is_rollup, duplicate_of.as_str()), (!counts, want_dup), "{name} {order:?}: span {span}");
            }
        }
    }
}

#[test]
fn ancestry_passes_through_linked_spans_that_are_not_calls() {
    let calls = [rec("t", "a", "app", 0, 100), rec("t", "b", "http", 10, 80)];
    for linked in [true, false] {
        let t0 = Instant::now();
        let mut j = joiner();
        j.add_tagged_call(calls[0].clone(), 0, t0);
        // An HTTP client span between the two recordings, in the same export.
        j.add_span_link("p", "t", "http", "a");
        if !linked {
            j.drain();
        }
        j.add_tagged_call(calls[1].clone(), 1, t0);
        j.tick(t0 + WINDOW);
        j.drain();
        let dups: Vec<String> = j.take_ready().into_iter().map(|r| r.duplicate_of).collect();
        let want = if linked { vec!["", "a"] } else { vec!["", ""] };
        assert_eq!(dups.iter().map(String::as_str).collect::<Vec<_>>(), want, "linked: {linked}");
    }
}

#[test]
fn an_inner_copy_parented_above_the_outer_one_is_its_duplicate() {
    // LangChain's `ChatOpenAI` (under the chain span) and the OpenAI instrumentation's `ChatCompletion`,
    // parented on the app span because LangChain never makes its spans current.
    let calls = [rec("t", "lc", "chain", 0, 100), rec("t", "oai", "app", 3, 95)];
    for order in orders(2) {
        let t0 = Instant::now();
        let mut j = joiner();
        for (n, &i) in order.iter().enumerate() {
            j.add_tagged_call(calls[i].clone(), i, t0);
            if n == 0 {
                j.add_span_link("p", "t", "chain", "app");
            }
        }
        j.drain();
        let mut got: Vec<(usize, String)> = j.take_tagged().into_iter().map(|(t, r)| (t, r.duplicate_of)).collect();
        got.sort();
        assert_eq!(got, [(0, String::new()), (1, "lc".to_owned())], "{order:?}");
    }
}

#[test]
fn the_counted_row_takes_the_richest_value_of_each_field() {
    // The outer (instrumentation) copy has parameters and the prompt, but not the streamed completion;
    // the inner (SDK) copy has the completion, the time to first token, the response id and the full
    // usage (input including cache reads).
    let mut outer = rec("t", "a", "app", 0, 100);
    outer.row.request_params = vec![("temperature".into(), "0.3".into()), ("max_tokens".into(), "100".into())];
    outer.row.input_tokens = 12;
    outer.row.output_tokens = 41; // a placeholder count added by the outer layer: the inner one's wins
    outer.row.reasoning_output_tokens = 7; // only the outer layer has it
    outer.row.session_id = "s1".into();
    outer.row.tags = vec!["x".into()];
    outer.content.input = vec![text_message("user", "question")].into();
    outer.content.redactions = 1;
    let mut inner = rec("t", "b", "a", 10, 80);
    inner.row.request_params = vec![("temperature".into(), "9".into()), ("top_k".into(), "5".into())];
    inner.row.response_id = "msg_1".into();
    inner.row.response_model = "claude-sonnet-4-5-20250929".into();
    inner.row.input_tokens = 512;
    inner.row.output_tokens = 40;
    inner.row.total_tokens = 552;
    inner.row.cache_read_input_tokens = 500;
    inner.row.time_to_first_token = Some(0.25);
    inner.row.status_code = "Ok".into();
    inner.row.tags = vec!["x".into(), "y".into()];
    inner.content.input = vec![text_message("user", "ignored: the counted copy has its own")].into();
    inner.content.output = vec![text_message("assistant", "streamed answer")].into();
    inner.content.redactions = 2;
    for order in orders(2) {
        let t0 = Instant::now();
        let mut j = joiner();
        for &i in &order {
            j.add_tagged_call([&outer, &inner][i].clone(), i, t0);
        }
        j.tick(t0 + WINDOW);
        let rows = j.take_tagged();
        let counted = &rows.iter().find(|(tag, _)| *tag == 0).expect("outer released").1;
        let dup = &rows.iter().find(|(tag, _)| *tag == 1).expect("inner released").1;
        let params: Vec<(&str, &str)> = counted.request_params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(params, [("temperature", "0.3"), ("max_tokens", "100"), ("top_k", "5")], "{order:?}");
        assert_eq!(
            (counted.input_tokens, counted.output_tokens, counted.total_tokens, counted.cache_read_input_tokens),
            (512, 40, 552, 500),
            "the innermost copy's counts"
        );
        assert_eq!(counted.reasoning_output_tokens, 7, "a count the inner copy lacks comes from the outer");
        assert_eq!(
            (counted.response_id.as_str(), counted.response_model.as_str()),
            ("msg_1", "claude-sonnet-4-5-20250929")
        );
        assert_eq!((counted.input_text.as_str(), counted.output_text.as_str()), ("question", "streamed answer"));
        assert_eq!((counted.time_to_first_token, counted.status_code.as_str()), (Some(0.25), "Ok"));
        assert_eq!((counted.session_id.as_str(), counted.tags.clone()), ("s1", vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(counted.redactions, 3, "its own redactions and those of the output it took");
        assert!(!counted.is_rollup && counted.duplicate_of.is_empty());
        // The duplicate is stored as recorded.
        assert_eq!((dup.is_rollup, dup.duplicate_of.as_str(), dup.input_tokens), (true, "a", 512));
        assert_eq!(dup.input_text, "ignored: the counted copy has its own");
    }
}

#[test]
fn a_failure_seen_by_either_copy_fails_the_call() {
    let outer = rec("t", "a", "app", 0, 100);
    let mut inner = rec("t", "b", "a", 10, 80);
    inner.row.status_code = "Error".into();
    inner.row.error_type = "overloaded_error".into();
    let t0 = Instant::now();
    let mut j = joiner();
    j.add_tagged_call(inner, 1, t0);
    j.add_tagged_call(outer, 0, t0);
    j.drain();
    let rows = j.take_tagged();
    let counted = &rows.iter().find(|(tag, _)| *tag == 0).unwrap().1;
    assert_eq!((counted.status_code.as_str(), counted.error_type.as_str()), ("Error", "overloaded_error"));
}

#[test]
fn a_copy_arriving_after_the_window_counts_on_its_own() {
    let t0 = Instant::now();
    let mut j = joiner();
    j.add_tagged_call(rec("t", "a", "app", 0, 100), 0, t0);
    j.tick(t0 + WINDOW);
    j.add_tagged_call(rec("t", "b", "a", 10, 80), 1, t0 + WINDOW);
    j.tick(t0 + WINDOW * 2);
    let dups: Vec<String> = j.take_ready().into_iter().map(|r| r.duplicate_of).collect();
    assert_eq!(dups, ["", ""]);
}

#[test]
fn merging_off_releases_calls_with_content_at_once_and_counts_every_copy() {
    let t0 = Instant::now();
    let mut j = Joiner::with_tags(WINDOW, 100);
    j.add_tagged_call(rec("t", "a", "app", 0, 100), 0, t0);
    j.add_tagged_call(rec("t", "b", "a", 10, 80), 1, t0);
    let rows = j.take_ready();
    assert_eq!(
        rows.iter().map(|r| (r.is_rollup, r.duplicate_of.as_str())).collect::<Vec<_>>(),
        [(false, ""), (false, "")]
    );
}

#[test]
fn held_calls_stay_bounded_and_a_group_is_released_together() {
    let t0 = Instant::now();
    let mut j = Joiner::with_tags(WINDOW, 2).merging_duplicates(true);
    j.add_tagged_call(rec("t", "a", "app", 0, 100), 0, t0);
    j.add_tagged_call(rec("t", "b", "a", 10, 80), 1, t0);
    // Over the limit: the oldest is released early, with its copy.
    j.add_tagged_call(rec("u", "c", "app", 0, 100), 2, t0);
    let early: Vec<(usize, String)> = j.take_tagged().into_iter().map(|(t, r)| (t, r.duplicate_of)).collect();
    assert_eq!(early, [(0, String::new()), (1, "a".to_owned())]);
    assert_eq!(j.pending(), 1);
}

#[test]
fn log_content_does_not_change_a_held_call_that_has_its_own_or_is_complete() {
    // OpenLIT sends the completion on the span and again in an `operation.details` log record.
    let t0 = Instant::now();
    let mut j = joiner();
    let mut own = rec("t", "a", "app", 0, 100);
    own.content.output = vec![text_message("assistant", "answer")].into();
    j.add_tagged_call(own, 0, t0);
    let mut waiting = rec("t", "b", "app", 200, 100);
    waiting.awaits_content = true;
    j.add_tagged_call(waiting, 1, t0);
    let frag = |span: &str, role: &str, text: &str| {
        let mut content = Content::default();
        let message = vec![text_message(role, text)];
        if role == "user" {
            content.input = message.into()
        } else {
            content.output = message.into()
        }
        ContentFragment {
            project_id: "p".into(),
            trace_id: "t".into(),
            span_id: span.into(),
            content,
            convention: Convention::OtelGenAiDetailsEvent,
        }
    };
    j.add_content(frag("a", "assistant", "answer"), t0);
    j.add_content(frag("b", "user", "q"), t0);
    j.add_content(frag("b", "assistant", "r"), t0);
    j.add_content(frag("b", "assistant", "r again"), t0); // after it was complete
    j.drain();
    let mut rows: Vec<_> = j.take_ready().into_iter().map(|r| (r.span_id, r.input_text, r.output_text)).collect();
    rows.sort();
    let want = [("a", "", "answer"), ("b", "q", "r")].map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(rows, want);
}

#[test]
fn a_merged_call_is_priced_again_from_its_merged_counts() {
    use crate::process::Processor;
    use crate::process::price::{PriceData, Pricer, source};
    let pricer = Pricer::new(PriceData::bundled(), Vec::new());
    let hook = pricer.clone();
    let mut j = joiner().on_merged(Box::new(move |row| hook.merged(row)));
    // The outer copy (counted: it starts first) has only a placeholder input count; the inner one
    // the true counts, as OpenLLMetry's Anthropic instrumentation over the official one records them.
    let mut outer = with_response(rec("t", "outer", "", 0, 100), "msg_1");
    let mut inner = with_response(rec("t", "inner", "outer", 10, 80), "msg_1");
    (outer.row.request_model, inner.row.request_model) = ("claude-sonnet-4-20250514".into(), String::new());
    (outer.row.input_tokens, outer.row.output_tokens) = (1, 0);
    (inner.row.input_tokens, inner.row.output_tokens) = (19, 7);
    (inner.row.cache_read_input_tokens, inner.row.cache_write_input_tokens) = (5, 3);
    for c in [&mut outer, &mut inner] {
        pricer.price_row(&mut c.row);
    }
    let t0 = Instant::now();
    j.add_tagged_call(outer, 0, t0);
    j.add_tagged_call(inner, 1, t0);
    j.tick(t0 + WINDOW + Duration::from_secs(1));
    let rows = j.take_tagged();
    let counted = rows.iter().map(|(_, r)| r).find(|r| !r.is_rollup).expect("a counted row");
    assert_eq!((counted.span_id.as_str(), counted.input_tokens), ("outer", 19));
    assert_eq!(counted.cost_source, source::PRICE_TABLE);
    // (11 x 3 + 5 x 0.30 + 3 x 3.75 + 7 x 15) / 1e6, not the placeholder's 1 x 3 / 1e6.
    let cost = counted.cost_usd.expect("priced");
    assert!((cost - 0.00015075).abs() < 1e-15, "{cost}");
}
