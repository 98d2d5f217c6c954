//! The join in every arrival order, driven by explicit instants (no runtime, no sleeping).

use super::*;
use crate::normalize::messages::text_message;
use crate::rows::LlmCallRow;

const WINDOW: Duration = Duration::from_secs(10);

fn call(span: &str, awaits: bool, content: Content) -> NormalizedCall {
    let row = LlmCallRow {
        trace_id: "t".into(),
        span_id: span.into(),
        operation: "chat".into(),
        convention: "otel_genai".into(),
        ..LlmCallRow::default()
    };
    NormalizedCall { row, content, awaits_content: awaits }
}

fn input(text: &str) -> Content {
    Content { input: vec![text_message("user", text)].into(), ..Content::default() }
}

fn output(text: &str) -> Content {
    Content { output: vec![text_message("assistant", text)].into(), ..Content::default() }
}

fn fragment(span: &str, content: Content) -> ContentFragment {
    ContentFragment {
        project_id: String::new(),
        trace_id: "t".into(),
        span_id: span.into(),
        content,
        convention: Convention::OtelGenAiMessageEvents,
    }
}

/// One step of a scenario, at `at` seconds.
enum Step {
    Call(&'static str, bool),
    Frag(&'static str, Content),
    Tick,
}

#[test]
fn arrival_orders() {
    use Step::*;
    let t0 = Instant::now();
    // (steps with times, expected (span, input_text, output_text, convention) of released rows)
    type Released = (&'static str, &'static str, &'static str, &'static str);
    type Case = (Vec<(u64, Step)>, Vec<Released>);
    let cases: Vec<Case> = vec![
        // Span first, then input and output logs: released once complete, not before.
        (
            vec![(0, Call("a", true)), (1, Frag("a", input("q"))), (1, Tick), (2, Frag("a", output("r")))],
            vec![("a", "q", "r", "otel_genai_message_events")],
        ),
        // Logs first, then the span: merged at once.
        (
            vec![(0, Frag("a", input("q"))), (0, Frag("a", output("r"))), (3, Call("a", true))],
            vec![("a", "q", "r", "otel_genai_message_events")],
        ),
        // Span with no logs ever: released when the window passes, without content.
        (vec![(0, Call("a", true)), (9, Tick)], vec![]),
        (vec![(0, Call("a", true)), (10, Tick)], vec![("a", "", "", "otel_genai")]),
        // Only half the content arrives: released at the window with what it has.
        (
            vec![(0, Call("a", true)), (1, Frag("a", input("q"))), (10, Tick)],
            vec![("a", "q", "", "otel_genai_message_events")],
        ),
        // Content older than the window is dropped; the span then waits on its own.
        (vec![(0, Frag("a", input("q"))), (11, Tick), (12, Call("a", false))], vec![("a", "", "", "otel_genai")]),
        // A call that does not await content is released immediately, and logs for it later are ignored.
        (vec![(0, Call("a", false)), (1, Frag("a", input("late")))], vec![("a", "", "", "otel_genai")]),
        // Interleaved spans do not mix.
        (
            vec![
                (0, Call("a", true)),
                (0, Call("b", true)),
                (1, Frag("b", input("qb"))),
                (1, Frag("a", input("qa"))),
                (1, Frag("a", output("ra"))),
                (1, Frag("b", output("rb"))),
            ],
            vec![("a", "qa", "ra", "otel_genai_message_events"), ("b", "qb", "rb", "otel_genai_message_events")],
        ),
    ];
    for (i, (steps, want)) in cases.into_iter().enumerate() {
        let mut j = Joiner::new(WINDOW, 100);
        for (at, step) in steps {
            let now = t0 + Duration::from_secs(at);
            match step {
                Call(span, awaits) => j.add_call(call(span, awaits, Content::default()), now),
                Frag(span, content) => j.add_content(fragment(span, content), now),
                Tick => j.tick(now),
            }
            assert_accounting(&j);
        }
        let mut got: Vec<_> =
            j.take_ready().into_iter().map(|r| (r.span_id, r.input_text, r.output_text, r.convention)).collect();
        got.sort();
        let want: Vec<_> =
            want.into_iter().map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())).collect();
        assert_eq!(got, want, "case {i}");
        j.drain();
        assert_eq!(j.held_bytes(), 0, "case {i}: nothing held, nothing counted");
    }
}

/// Each held entry's recorded size is what it measures now, and the running total is their sum.
pub(super) fn assert_accounting<S>(j: &Joiner<S>) {
    for (key, (_, size, p)) in &j.pending {
        assert_eq!(*size, held_bytes(p), "{key:?}: recorded size drifted from what is held");
    }
    let sum: usize = j.pending.values().map(|(_, _, p)| held_bytes(p)).sum();
    assert_eq!(j.held_bytes(), sum, "held bytes drifted from what is held");
}

#[test]
fn memory_is_bounded_by_bytes_as_well() {
    let big = || input(&"x".repeat(10_000));
    let one = held_bytes::<()>(&Pending::Call((), Box::new(call("a", true, big()))));
    let mut j = Joiner::new(WINDOW, 100).max_held_bytes(3 * one);
    let now = Instant::now();
    for span in ["a", "b", "c", "d", "e"] {
        j.add_call(call(span, true, big()), now);
        assert_accounting(&j);
        assert!(j.held_bytes() <= 3 * one, "{} held bytes over the budget {}", j.held_bytes(), 3 * one);
    }
    assert_eq!(j.pending(), 3);
    let released: Vec<_> = j.take_ready().into_iter().map(|r| r.span_id).collect();
    assert_eq!(released, vec!["a", "b"], "the oldest go first");
    // Content fragments count too, and growing a held call by a log record is counted exactly.
    j.add_content(fragment("e", output(&"y".repeat(5_000))), now);
    j.add_content(fragment("orphan", input("q")), now);
    assert_accounting(&j);
    j.drain();
    assert_eq!(j.held_bytes(), 0);
}

#[test]
fn span_content_wins_over_log_content() {
    let mut j = Joiner::new(WINDOW, 100);
    let now = Instant::now();
    j.add_content(fragment("a", input("from log")), now);
    let mut c = call("a", false, input("from span"));
    c.row.convention = "otel_genai_attributes".into();
    j.add_call(c, now);
    let rows = j.take_ready();
    assert_eq!((rows[0].input_text.as_str(), rows[0].convention.as_str()), ("from span", "otel_genai_attributes"));
}

#[test]
fn memory_is_bounded_by_releasing_the_oldest() {
    let mut j = Joiner::new(WINDOW, 3);
    let now = Instant::now();
    for span in ["a", "b", "c", "d", "e"] {
        j.add_call(call(span, true, Content::default()), now);
    }
    assert_eq!(j.pending(), 3);
    let released: Vec<_> = j.take_ready().into_iter().map(|r| r.span_id).collect();
    assert_eq!(released, vec!["a", "b"]);
    j.drain();
    assert_eq!(j.take_ready().len(), 3);
    assert_eq!(j.pending(), 0);
}

#[test]
fn every_call_comes_back_once_with_its_tag() {
    let mut j = Joiner::with_tags(WINDOW, 2);
    let t0 = Instant::now();
    j.add_tagged_call(call("a", true, Content::default()), 1, t0);
    j.add_tagged_call(call("b", false, Content::default()), 2, t0);
    j.add_tagged_call(call("a", true, Content::default()), 3, t0); // same span again: the first is released
    j.add_tagged_call(call("c", true, Content::default()), 4, t0);
    j.add_tagged_call(call("d", true, Content::default()), 5, t0); // over max_pending: oldest released
    j.add_content(fragment("c", input("q")), t0);
    j.add_content(fragment("c", output("r")), t0); // complete: released
    j.tick(t0 + WINDOW);
    j.drain();
    let mut got: Vec<_> = j.take_tagged().into_iter().map(|(tag, r)| (tag, r.span_id)).collect();
    got.sort();
    let want: Vec<_> = [(1, "a"), (2, "b"), (3, "a"), (4, "c"), (5, "d")].map(|(t, s)| (t, s.to_owned())).into();
    assert_eq!(got, want);
}

#[test]
fn a_call_missing_its_output_adopts_output_logged_on_its_parent_span() {
    let t0 = Instant::now();
    // Merging duplicates holds every call for the window: the parent's output, arrived a second before
    // the call, expires before the call is released, and must have been adopted already.
    for (fragment_first, merging) in [(true, false), (false, false), (true, true), (false, true)] {
        let mut j = Joiner::new(WINDOW, 100).merging_duplicates(merging);
        let mut c = call("child", true, Content::default());
        c.row.parent_span_id = "parent".into();
        let parent_output = || fragment("parent", output("streamed answer"));
        if fragment_first {
            j.add_content(parent_output(), t0);
        }
        let t1 = t0 + Duration::from_secs(1);
        j.add_content(fragment("child", input("q")), t1);
        j.add_call(c, t1);
        if !fragment_first {
            j.add_content(parent_output(), t1 + Duration::from_secs(1));
        }
        j.tick(t0 + WINDOW);
        j.tick(t1 + WINDOW);
        let rows = j.take_ready();
        assert_eq!(rows.len(), 1, "fragment first: {fragment_first}, merging: {merging}");
        assert_eq!((rows[0].input_text.as_str(), rows[0].output_text.as_str()), ("q", "streamed answer"));
    }
    // Output-and-input content under the parent belongs to the parent, not the child.
    let mut j = Joiner::new(WINDOW, 100);
    let mut c = call("child", true, input("q"));
    c.row.parent_span_id = "parent".into();
    let mut both = input("parent q");
    both.output = output("parent a").output;
    j.add_content(fragment("parent", both), t0);
    j.add_call(c, t0);
    j.tick(t0 + WINDOW);
    assert_eq!(j.take_ready()[0].output_text, "");
}

#[test]
fn content_never_joins_a_call_of_another_project() {
    let t0 = Instant::now();
    let mut j = Joiner::new(WINDOW, 100);
    let mut theirs = call("a", true, Content::default());
    theirs.row.project_id = "victim".into();
    j.add_call(theirs, t0);
    // Same trace and span ids, sent under another project's key: held apart, never merged.
    let mut injected = fragment("a", input("injected prompt"));
    injected.project_id = "attacker".into();
    j.add_content(injected, t0);
    let mut own = fragment("a", output("real answer"));
    own.project_id = "victim".into();
    j.add_content(own, t0);
    j.tick(t0 + WINDOW);
    let rows = j.take_ready();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].project_id, "victim");
    assert!(!rows[0].input_text.contains("injected"), "{:?}", rows[0].input_text);
    assert_eq!(rows[0].output_text, "real answer");
}
