//! One call recorded twice: finding the other recordings of a held call, choosing the one that counts,
//! and merging the others' values into it.
//!
//! Two LLM operation spans of one project describe the same call when
//! - both carry a provider response id (`ResponseId`, whatever attribute it came from) and it is the
//!   same, in the same trace, or in unrelated traces of the same service with overlapping times: the
//!   `anthropic` SDK's own span and OpenLLMetry's may share nothing else (different ids always mean
//!   different calls; the same id replayed later by a cache is another call); or, when at most one
//!   has a response id,
//! - they are in the same trace, with the same operation and provider, recorded by different
//!   instrumentation scopes (or services: a gateway in the app's trace) and not for different request
//!   models, and nested:
//!   - one is an ancestor of the other (through held calls and the links of the trace's other spans,
//!     see [`Index::add_link`]) and their times overlap — OpenInference's or the official Anthropic
//!     instrumentation's span around the SDK's own; or
//!   - one's time contains the other's, and the inner one's parent is the outer one or an ancestor
//!     of it — a layer that does not make its span current, so the layer under it parents on what was
//!     current before: LangChain's `ChatOpenAI` span and the OpenAI instrumentation's `ChatCompletion`,
//!     OpenLLMetry's `anthropic.chat` and the SDK's span, siblings under the app's span.
//!
//! Rollup spans (agents, workflows, SDK wrappers) are never duplicates: they already do not count.
//!
//! The counted row ([`survivor`]) is the outermost recording: the earliest start, then the longest
//! duration, then the lowest span id. That choice depends only on the recordings, never on their
//! arrival order, so a replay after a crash picks the same row. The others are stored as they were
//! recorded with `IsRollup = true` and `DuplicateOf` = the counted span id ([`merge`] says why, and
//! which values the counted row takes from them).

use std::sync::Arc;

use crate::normalize::NormalizedCall;
use crate::rows::LlmCallRow;

/// Longest parent chain followed when testing ancestry (real traces are far shallower; a loop in
/// hostile parent links must end).
const MAX_DEPTH: usize = 64;

/// (project, trace id, span id) of a held call, shared: the pending map, the time queue and the
/// index each hold the key, and a shared key is one allocation instead of three strings apiece.
pub(super) type Key = Arc<(String, String, String)>;

/// The join's maps hash with foldhash (seeded per process) rather than SipHash: the keys are ids,
/// hashed several times per call, and SipHash was a visible share of the profile.
pub(super) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// See [`HashMap`].
pub(super) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Where the held calls are, by response id and by trace.
#[derive(Default)]
pub(super) struct Index {
    by_response: HashMap<(String, String), Vec<Key>>,
    /// Trace id → the held calls of that trace and the parent links of its other spans.
    by_trace: HashMap<String, TraceSpans>,
}

#[derive(Default)]
struct TraceSpans {
    /// Held calls with a provider response id: only the same id can make another call their
    /// duplicate, and `by_response` finds those, so a call with an id never scans these.
    answered: HashSet<Key>,
    /// Held calls without one, which any call of the trace may duplicate. Sets, so that a trace with
    /// thousands of calls (an agent loop) costs O(1) per call, not a scan of the trace.
    unanswered: HashSet<Key>,
    /// Span id → (project, parent span id) of spans that are not held calls.
    links: HashMap<String, (String, String)>,
}

impl Index {
    /// Notes a call now held under `key`.
    pub(super) fn insert(&mut self, key: &Key, row: &LlmCallRow) {
        if !row.response_id.is_empty() {
            self.by_response.entry((key.0.clone(), row.response_id.clone())).or_default().push(key.clone());
        }
        let trace = self.by_trace.entry(key.1.clone()).or_default();
        if row.response_id.is_empty() { &mut trace.unanswered } else { &mut trace.answered }.insert(key.clone());
    }

    /// Forgets a call no longer held.
    pub(super) fn remove(&mut self, key: &Key, row: &LlmCallRow) {
        let rkey = (key.0.clone(), row.response_id.clone());
        if let Some(keys) = self.by_response.get_mut(&rkey) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_response.remove(&rkey);
            }
        }
        if let Some(trace) = self.by_trace.get_mut(&key.1) {
            if row.response_id.is_empty() { &mut trace.unanswered } else { &mut trace.answered }.remove(key);
            if trace.answered.is_empty() && trace.unanswered.is_empty() {
                self.by_trace.remove(&key.1);
            }
        }
    }

    /// Whether calls of `trace` are held (only then are its other spans' links worth keeping).
    pub(super) fn holds_trace(&self, trace: &str) -> bool {
        self.by_trace.contains_key(trace)
    }

    /// Records that `span` (not an LLM call) is a child of `parent`, so ancestry can pass through it
    /// (an HTTP client span between a framework's call span and the provider instrumentation's).
    /// Kept only while calls of the trace are held.
    pub(super) fn add_link(&mut self, project: &str, trace: &str, span: &str, parent: &str) {
        if let Some(t) = self.by_trace.get_mut(trace)
            && !parent.is_empty()
        {
            t.links.insert(span.to_owned(), (project.to_owned(), parent.to_owned()));
        }
    }

    /// Every held call that records the same call as `start`, `start` included, following the
    /// relation transitively (three layers recording one call are one group).
    pub(super) fn group<C>(
        &self,
        start: &Key,
        calls: &HashMap<Key, C>,
        row_of: impl Fn(&C) -> Option<&LlmCallRow>,
    ) -> Vec<Key> {
        let mut group = vec![start.clone()];
        let mut i = 0;
        while i < group.len() {
            let Some(a) = calls.get(&group[i]).and_then(&row_of) else {
                i += 1;
                continue;
            };
            let by_response = self.by_response.get(&(group[i].0.clone(), a.response_id.clone()));
            let trace = self.by_trace.get(&group[i].1);
            let unanswered = trace.map(|t| &t.unanswered);
            // A call with a response id duplicates only calls with the same id or with none.
            let answered = trace.filter(|_| a.response_id.is_empty()).map(|t| &t.answered);
            let candidates = by_response.into_iter().flatten().chain(unanswered.into_iter().flatten());
            let candidates = candidates.chain(answered.into_iter().flatten());
            let mut found = Vec::new();
            for key in candidates {
                if group.contains(key) || found.contains(key) {
                    continue;
                }
                if let Some(b) = calls.get(key).and_then(&row_of)
                    && self.same_call(a, b, calls, &row_of)
                {
                    found.push(key.clone());
                }
            }
            // In key order, not set order: the merge then never depends on hashing.
            found.sort();
            group.extend(found);
            i += 1;
        }
        group
    }

    /// The relation of the module documentation.
    fn same_call<C>(
        &self,
        a: &LlmCallRow,
        b: &LlmCallRow,
        calls: &HashMap<Key, C>,
        row_of: &impl Fn(&C) -> Option<&LlmCallRow>,
    ) -> bool {
        if a.is_rollup || b.is_rollup || a.project_id != b.project_id {
            return false;
        }
        if !a.response_id.is_empty() && !b.response_id.is_empty() {
            // The same response replayed later (a response cache, a mock server) is another call: the
            // copies of one call record one exchange, so in another trace they must also overlap in
            // time and come from the same service.
            return a.response_id == b.response_id
                && (a.trace_id == b.trace_id || (a.service_name == b.service_name && overlap(a, b)));
        }
        if !structurally_compatible(a, b) {
            return false;
        }
        let walk = |from: &str, to: &str| self.reaches(a, from, to, calls, row_of);
        (overlap(a, b) && (walk(&b.parent_span_id, &a.span_id) || walk(&a.parent_span_id, &b.span_id)))
            || (encloses(a, b) && walk(&a.span_id, &b.parent_span_id))
            || (encloses(b, a) && walk(&b.span_id, &a.parent_span_id))
    }

    /// Whether going up the parent chain of the trace of `row` from span `from` (itself included)
    /// reaches span `to`, through held calls and linked spans.
    fn reaches<C>(
        &self,
        row: &LlmCallRow,
        from: &str,
        to: &str,
        calls: &HashMap<Key, C>,
        row_of: &impl Fn(&C) -> Option<&LlmCallRow>,
    ) -> bool {
        let links = self.by_trace.get(&row.trace_id).map(|t| &t.links);
        let mut span = from.to_owned();
        for _ in 0..MAX_DEPTH {
            if span.is_empty() || to.is_empty() {
                return false;
            }
            if span == to {
                return true;
            }
            let key = (row.project_id.clone(), row.trace_id.clone(), span);
            span = match calls.get(&key).and_then(row_of) {
                Some(call) => call.parent_span_id.clone(),
                None => match links.and_then(|l| l.get(&key.2)) {
                    Some((project, up)) if *project == row.project_id => up.clone(),
                    _ => return false,
                },
            };
        }
        false
    }
}

/// Whether two spans without a shared response id may be two layers' recordings of one call: same
/// trace, operation and provider, recorded by different instrumentation scopes or services (two spans
/// of one instrumentation in one service are two calls — parallel requests, retries), and not for
/// different request models. Token counts are no evidence: one layer may count Anthropic's input
/// without the cache reads.
fn structurally_compatible(a: &LlmCallRow, b: &LlmCallRow) -> bool {
    let differ = |x: &str, y: &str| !x.is_empty() && !y.is_empty() && x != y;
    a.trace_id == b.trace_id
        && a.operation == b.operation
        && a.provider == b.provider
        && (a.scope_name != b.scope_name || a.service_name != b.service_name)
        && !differ(&a.request_model, &b.request_model)
}

/// Whether `a`'s time span contains `b`'s.
fn encloses(a: &LlmCallRow, b: &LlmCallRow) -> bool {
    a.timestamp <= b.timestamp && end(b) <= end(a)
}

fn end(row: &LlmCallRow) -> i64 {
    row.timestamp.saturating_add(row.duration.min(i64::MAX as u64) as i64)
}

fn overlap(a: &LlmCallRow, b: &LlmCallRow) -> bool {
    a.timestamp <= end(b) && b.timestamp <= end(a)
}

/// Index of the recording that counts: the outermost (earliest start, then longest, then lowest span
/// id), so it covers the call as the application saw it, whatever order the copies arrived in.
pub(super) fn survivor<'a>(calls: impl Iterator<Item = &'a NormalizedCall>) -> usize {
    let rank = |c: &'a NormalizedCall| (c.row.timestamp, std::cmp::Reverse(c.row.duration), c.row.span_id.as_str());
    calls.enumerate().min_by_key(|(_, c)| rank(c)).map_or(0, |(i, _)| i)
}

/// Merges the other recordings of a call into the counted one, and marks them as its duplicates.
///
/// Precedence: the counted recording's own value wins when it has one; an empty, zero or absent
/// value is taken from the other recordings (models, response id, provider, identity, environment,
/// finish reasons, cost, time to first token, error type and message; each content part — system
/// prompt, input, output, tools — separately; request parameters and metadata key by key; tags
/// united). A failed status wins over a successful one: if either layer saw the call fail, it failed.
///
/// Token counts are the exception: they come from the **innermost** recording that has each count
/// (the latest start, then the shortest) — the layer closest to the provider, which reads the
/// provider's usage as sent (an outer instrumentation may add a placeholder count from a stream's
/// first event, as OpenLLMetry's Anthropic instrumentation does); a count it lacks comes from the next
/// layer out. The total is then at least input + output.
///
/// Why the other copies are stored at all, rather than merged away: each spool record's rows are
/// counted and acked one by one, and a stored duplicate row keeps that exact; it also shows what each
/// instrumentation recorded. `IsRollup` keeps them out of every sum.
pub(super) fn merge(counted: &mut NormalizedCall, others: &mut [&mut NormalizedCall]) {
    let usage = usage_inner_first(counted, others);
    for other in others.iter_mut() {
        absorb(counted, other);
    }
    let r = &mut counted.row;
    [
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.cache_read_input_tokens,
        r.cache_write_input_tokens,
        r.reasoning_output_tokens,
    ] = usage;
    r.total_tokens = r.total_tokens.max(r.input_tokens + r.output_tokens);
}

/// The six token counts, each from the innermost recording that has it.
fn usage_inner_first(counted: &NormalizedCall, others: &[&mut NormalizedCall]) -> [u64; 6] {
    let mut rows: Vec<&LlmCallRow> = others.iter().map(|c| &c.row).chain([&counted.row]).collect();
    rows.sort_by_key(|r| (std::cmp::Reverse(r.timestamp), r.duration, r.span_id.clone()));
    let first = |count: fn(&LlmCallRow) -> u64| rows.iter().map(|r| count(r)).find(|&n| n != 0).unwrap_or(0);
    [
        first(|r| r.input_tokens),
        first(|r| r.output_tokens),
        first(|r| r.total_tokens),
        first(|r| r.cache_read_input_tokens),
        first(|r| r.cache_write_input_tokens),
        first(|r| r.reasoning_output_tokens),
    ]
}

/// Takes what `other` knows and `into` lacks (token counts aside), and marks `other` as its duplicate.
fn absorb(into: &mut NormalizedCall, other: &mut NormalizedCall) {
    let (r, x) = (&mut into.row, &other.row);
    for (field, value) in [
        (&mut r.provider, &x.provider),
        (&mut r.request_model, &x.request_model),
        (&mut r.response_model, &x.response_model),
        (&mut r.response_id, &x.response_id),
        (&mut r.error_type, &x.error_type),
        (&mut r.error_message, &x.error_message),
        (&mut r.session_id, &x.session_id),
        (&mut r.user_id, &x.user_id),
        (&mut r.environment, &x.environment),
    ] {
        if field.is_empty() {
            field.clone_from(value);
        }
    }
    if x.status_code == "Error" || (r.status_code == "Unset" && !x.status_code.is_empty()) {
        r.status_code.clone_from(&x.status_code);
    }
    add_missing(&mut r.request_params, &x.request_params);
    add_missing(&mut r.metadata, &x.metadata);
    for tag in &x.tags {
        if !r.tags.contains(tag) {
            r.tags.push(tag.clone());
        }
    }
    if r.finish_reasons.is_empty() {
        r.finish_reasons.clone_from(&x.finish_reasons);
    }
    // The cost columns move together: a client's cost wins over a computed one (which the merge hook
    // computes again from the merged counts).
    if (r.cost_usd.is_none() && x.cost_usd.is_some()) || (r.cost_source != "client" && x.cost_source == "client") {
        r.cost_usd = x.cost_usd;
        r.input_cost_usd = x.input_cost_usd;
        r.output_cost_usd = x.output_cost_usd;
        r.cost_source.clone_from(&x.cost_source);
        r.price_model.clone_from(&x.price_model);
    }
    r.time_to_first_token = r.time_to_first_token.or(x.time_to_first_token);
    merge_content(into, other);
    other.row.is_rollup = true;
    other.row.duplicate_of.clone_from(&into.row.span_id);
}

/// Content part by part: the counted copy keeps what it has and takes the parts it lacks (with their
/// redaction count, so `Redactions` still says how much of its content was redacted).
fn merge_content(into: &mut NormalizedCall, other: &NormalizedCall) {
    let (c, o) = (&mut into.content, &other.content);
    let mut took = false;
    if c.system.is_none() && o.system.is_some() {
        c.system.clone_from(&o.system);
        took = true;
    }
    if c.input.is_empty() && !o.input.is_empty() {
        c.input.clone_from(&o.input);
        took = true;
    }
    if c.output.is_empty() && !o.output.is_empty() {
        c.output.clone_from(&o.output);
        took = true;
    }
    if c.tools.is_none() && o.tools.is_some() {
        c.tools.clone_from(&o.tools);
        took = true;
    }
    if took {
        c.redactions += o.redactions;
    }
}

fn add_missing(into: &mut Vec<(String, String)>, from: &[(String, String)]) {
    for (k, v) in from {
        if !into.iter().any(|(have, _)| have == k) {
            into.push((k.clone(), v.clone()));
        }
    }
}
