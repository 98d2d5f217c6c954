//! Joins LLM calls with content that arrives in log records, whichever comes first, and merges the
//! recordings of one call made by two instrumentation layers.
//!
//! Synchronous and clock-free (the caller passes `now`). Rules:
//! - a call that carries content, or can never get any, is released at once;
//! - a call awaiting content is held until its content is complete (input and output) or until the
//!   join window passes, then released with whatever it has;
//! - content for a span not seen yet is held for the join window; if its span arrives in time the
//!   two are merged, otherwise the content is dropped here (it is still stored in `otel_logs`).
//!
//! With duplicate merging on ([`Joiner::merging_duplicates`], the collector's default) every call is
//! held for the join window instead, because a second recording of it may still come (another layer's
//! span, in the same or a later export); when its window passes, it is released together with every
//! held recording of the same call (see [`dedupe`]): one counted row with the merged values, and the
//! others as `IsRollup` rows marked `DuplicateOf`. Rows therefore appear one join window after their
//! span arrives.
//!
//! At most `max_pending` calls plus fragments, of at most `max_bytes` together (an estimate of their
//! heap size, [`Joiner::max_held_bytes`]), are held; beyond either the oldest are released early, so
//! memory stays bounded whatever clients send and however fast.
//!
//! A call may carry a tag `S` that comes back with its row ([`Joiner::with_tags`]; the pipeline tags
//! calls with the spool record to ack once the row is written). Every call added is released exactly
//! once, as one row.

mod dedupe;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::normalize::{Content, ContentFragment, Convention, NormalizedCall};
use crate::rows::{LlmCallRow, SpanRow};

/// (project, trace id, span id): content never joins a call of another project.
use dedupe::{HashMap, Key};

enum Pending<S> {
    Call(S, Box<NormalizedCall>),
    Content(Content, Convention),
}

/// The join state.
pub struct Joiner<S> {
    window: Duration,
    max_pending: usize,
    /// Estimated heap bytes the held entries may take together.
    max_bytes: usize,
    /// Estimated heap bytes of the held entries: the sum of their sizes in `pending`.
    bytes: usize,
    /// Held entries with their deadline and estimated size ([`held_bytes`], kept up to date as log
    /// records add content, so taking an entry subtracts without measuring it again).
    pending: HashMap<Key, (Instant, usize, Pending<S>)>,
    /// Insertion order with deadlines, for expiry; stale entries are skipped lazily.
    order: VecDeque<(Instant, Key)>,
    /// Calls released by the last operation, with their tags, waiting to be taken.
    ready: Vec<(S, LlmCallRow)>,
    /// Hold every call for the window and merge recordings of the same call.
    merge_duplicates: bool,
    /// The held calls by response id and trace, for finding duplicates.
    index: dedupe::Index,
    /// Runs on a call once duplicates were merged into it (the processors' `merged`, e.g. pricing).
    on_merged: Option<MergeHook>,
}

/// What runs on a counted call after its duplicates were merged into it.
pub type MergeHook = Box<dyn Fn(&mut LlmCallRow) + Send + Sync>;

impl Joiner<()> {
    /// A joiner holding calls and content for at most `window`, and at most `max_pending` of them.
    pub fn new(window: Duration, max_pending: usize) -> Self {
        Self::with_tags(window, max_pending)
    }

    /// Accepts a call from a span.
    pub fn add_call(&mut self, call: NormalizedCall, now: Instant) {
        self.add_tagged_call(call, (), now);
    }
}

impl<S> Joiner<S> {
    /// Like [`Joiner::new`], for calls tagged with an `S`.
    pub fn with_tags(window: Duration, max_pending: usize) -> Self {
        Self {
            window,
            max_pending: max_pending.max(1),
            max_bytes: usize::MAX,
            bytes: 0,
            pending: HashMap::default(),
            order: VecDeque::new(),
            ready: Vec::new(),
            merge_duplicates: false,
            index: dedupe::Index::default(),
            on_merged: None,
        }
    }

    /// Turns duplicate merging on or off (off by default; see the module documentation).
    pub fn merging_duplicates(mut self, on: bool) -> Self {
        self.merge_duplicates = on;
        self
    }

    /// Bounds the estimated heap size of what is held (unbounded by default): the oldest entries are
    /// released early beyond it, as beyond `max_pending`.
    pub fn max_held_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }

    /// Runs `hook` on every counted call after merging its duplicates (see [`crate::Ingestor::merged`]).
    pub fn on_merged(mut self, hook: MergeHook) -> Self {
        self.on_merged = Some(hook);
        self
    }

    /// Accepts a call from a span, tagged with `tag`.
    pub fn add_tagged_call(&mut self, mut call: NormalizedCall, tag: S, now: Instant) {
        let key = Arc::new((call.row.project_id.clone(), call.row.trace_id.clone(), call.row.span_id.clone()));
        match self.take(&key) {
            Some((_, Pending::Content(content, convention))) => {
                call.add_log_content(content, convention);
                self.release_or_hold(key, call, tag, now);
            }
            // The same span id twice: release the first as is, keep the newer one.
            Some((_, Pending::Call(old_tag, old))) => {
                self.index.remove(&key, &old.row);
                self.ready.push((old_tag, old.finish()));
                self.release_or_hold(key, call, tag, now);
            }
            None => self.release_or_hold(key, call, tag, now),
        }
    }

    fn release_or_hold(&mut self, key: Key, mut call: NormalizedCall, tag: S, now: Instant) {
        // Now, while output held under the parent is still there (it may expire before this call).
        if call.awaits_content && !call.content.is_complete() {
            self.adopt_parent_output(&mut call);
        }
        if self.merge_duplicates {
            self.index.insert(&key, &call.row);
            self.hold(key, Pending::Call(tag, Box::new(call)), now);
            return;
        }
        if !call.awaits_content || call.content.is_complete() {
            self.ready.push((tag, call.finish()));
        } else {
            self.hold(key, Pending::Call(tag, Box::new(call)), now);
        }
    }

    /// Some SDKs (OpenLLMetry in events mode, when streaming) attach the completion's log record to
    /// the call's *parent* span. A call still missing its output adopts content held under its
    /// parent that carries only output (a parent that is itself a call would hold a call, not content).
    fn adopt_parent_output(&mut self, call: &mut NormalizedCall) {
        if !call.content.output.is_empty() || call.row.parent_span_id.is_empty() {
            return;
        }
        let parent = (call.row.project_id.clone(), call.row.trace_id.clone(), call.row.parent_span_id.clone());
        let output_only = matches!(
            self.pending.get(&parent),
            Some((_, _, Pending::Content(c, _))) if c.input.is_empty() && !c.output.is_empty()
        );
        if output_only && let Some((_, Pending::Content(content, _))) = self.take(&parent) {
            append(&mut call.content, content);
        }
    }

    /// Accepts content from a log record.
    pub fn add_content(&mut self, fragment: ContentFragment, now: Instant) {
        let key = Arc::new((fragment.project_id, fragment.trace_id, fragment.span_id));
        match self.pending.get_mut(&key) {
            // Content of its own, or all it waited for: later log records do not change the call (as
            // when it was released at once; they are stored in `otel_logs`).
            Some((_, _, Pending::Call(_, call))) if !call.awaits_content || call.content.is_complete() => {}
            Some((_, size, Pending::Call(_, call))) => {
                if call.content.is_empty() && !fragment.content.is_empty() {
                    call.row.convention = fragment.convention.as_str().to_owned();
                }
                let added = append(&mut call.content, fragment.content);
                *size += added;
                self.bytes += added;
                if call.content.is_complete()
                    && !self.merge_duplicates
                    && let Some((_, Pending::Call(tag, call))) = self.take(&key)
                {
                    self.ready.push((tag, call.finish()));
                }
            }
            Some((_, size, Pending::Content(content, _))) => {
                let added = append(content, fragment.content);
                *size += added;
                self.bytes += added;
            }
            None => self.hold(key, Pending::Content(fragment.content, fragment.convention), now),
        }
    }

    fn hold(&mut self, key: Key, pending: Pending<S>, now: Instant) {
        let deadline = now + self.window;
        self.order.push_back((deadline, key.clone()));
        let size = held_bytes(&pending);
        self.bytes += size;
        if let Some((_, old, _)) = self.pending.insert(key, (deadline, size, pending)) {
            self.bytes -= old;
        }
        while self.pending.len() > self.max_pending || (self.bytes > self.max_bytes && self.pending.len() > 1) {
            let Some((deadline, key)) = self.order.pop_front() else { break };
            self.expire(deadline, key);
        }
    }

    /// Records that a span that is not an LLM call is a child of `parent`, so that two recordings of
    /// one call with such a span between them (an HTTP client span under a framework's call span) are
    /// still seen as nested. Ignored unless a call of the same trace is held.
    pub fn add_span_link(&mut self, project: &str, trace: &str, span: &str, parent: &str) {
        if self.merge_duplicates && self.index.holds_trace(trace) {
            self.index.add_link(project, trace, span, parent);
        }
    }

    /// [`Joiner::add_span_link`] for every span of a request (after its calls were added).
    pub fn add_span_links<'a>(&mut self, spans: impl IntoIterator<Item = &'a SpanRow>) {
        for span in spans {
            self.add_span_link(&span.project_id, &span.trace_id, &span.span_id, &span.parent_span_id);
        }
    }

    /// Releases everything whose window has passed.
    pub fn tick(&mut self, now: Instant) {
        while let Some((deadline, _)) = self.order.front() {
            if *deadline > now {
                break;
            }
            let (deadline, key) = self.order.pop_front().expect("front exists");
            self.expire(deadline, key);
        }
    }

    /// Releases the entry for `key` if it is still the one queued at `deadline`.
    fn expire(&mut self, deadline: Instant, key: Key) {
        match self.pending.get(&key) {
            Some((d, _, Pending::Call(..))) if *d == deadline => self.release(&key),
            Some((d, _, Pending::Content(..))) if *d == deadline => {
                self.take(&key);
            }
            _ => {}
        }
    }

    /// Releases the held call `key` with every held recording of the same call (only itself unless
    /// merging duplicates): one counted row, the others marked as its duplicates.
    fn release(&mut self, key: &Key) {
        let keys = if self.merge_duplicates {
            self.index.group(key, &self.pending, |(_, _, p)| match p {
                Pending::Call(_, call) => Some(&call.row),
                Pending::Content(..) => None,
            })
        } else {
            vec![key.clone()]
        };
        let mut calls = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some((_, Pending::Call(tag, call))) = self.take(&key) {
                self.index.remove(&key, &call.row);
                calls.push((tag, *call));
            }
        }
        for (_, call) in &mut calls {
            self.adopt_parent_output(call);
        }
        if calls.len() > 1 {
            let (tag, mut counted) = calls.swap_remove(dedupe::survivor(calls.iter().map(|(_, c)| c)));
            dedupe::merge(&mut counted, &mut calls.iter_mut().map(|(_, c)| c).collect::<Vec<_>>());
            let mut row = counted.finish();
            if let Some(hook) = &self.on_merged {
                hook(&mut row);
            }
            self.ready.push((tag, row));
        }
        self.ready.extend(calls.into_iter().map(|(tag, call)| (tag, call.finish())));
    }

    /// Releases every held call (shutdown).
    pub fn drain(&mut self) {
        let calls: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, (_, _, p))| matches!(p, Pending::Call(..)))
            .map(|(k, _)| k.clone())
            .collect();
        for key in calls {
            if matches!(self.pending.get(&key), Some((_, _, Pending::Call(..)))) {
                self.release(&key);
            }
        }
        self.pending.clear();
        self.order.clear();
        self.bytes = 0;
    }

    /// Removes a held entry, and its size from the total.
    fn take(&mut self, key: &(String, String, String)) -> Option<(Instant, Pending<S>)> {
        let (deadline, size, entry) = self.pending.remove(key)?;
        self.bytes -= size;
        Some((deadline, entry))
    }

    /// Takes the calls released so far, with their tags.
    pub fn take_tagged(&mut self) -> Vec<(S, LlmCallRow)> {
        std::mem::take(&mut self.ready)
    }

    /// Takes the calls released so far.
    pub fn take_ready(&mut self) -> Vec<LlmCallRow> {
        self.take_tagged().into_iter().map(|(_, row)| row).collect()
    }

    /// Calls and fragments currently held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Estimated heap bytes of what is held.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }
}

/// Heap bytes an entry takes, estimated: attribute and content text plus per-allocation overhead.
/// Measured once, when the entry is held; [`append`] measures what log records add to it.
fn held_bytes<S>(pending: &Pending<S>) -> usize {
    const ROW: usize = 1024;
    match pending {
        Pending::Call(_, call) => {
            let r = &call.row;
            let attrs = [&r.span_attributes, &r.resource_attributes, &r.request_params, &r.metadata];
            ROW + attrs.iter().map(|a| crate::table::attr_bytes(a)).sum::<usize>() + content_bytes(&call.content)
        }
        Pending::Content(content, _) => ROW + content_bytes(content),
    }
}

/// Heap bytes of parsed content, estimated from its JSON trees (and the message text kept beside
/// them, see [`Messages`](crate::normalize::Messages)).
fn content_bytes(c: &Content) -> usize {
    optional_json_bytes(&c.system)
        + optional_json_bytes(&c.tools)
        + c.input.iter().chain(&c.output).map(json_bytes).sum::<usize>()
        + c.input.text_len()
        + c.output.text_len()
}

/// Heap bytes of one JSON tree, estimated: its text plus a fixed cost per node and per key.
fn json_bytes(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    48 + match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(json_bytes).sum(),
        Value::Object(o) => o.iter().map(|(k, v)| k.len() + 32 + json_bytes(v)).sum(),
        _ => 0,
    }
}

fn optional_json_bytes(v: &Option<serde_json::Value>) -> usize {
    v.as_ref().map_or(0, json_bytes)
}

/// Adds one log record's content to what a span already gathered from earlier records; returns the
/// [`content_bytes`] of what it took (system instructions and tools only when there were none yet;
/// message texts are not kept: extending a list forgets its text).
fn append(into: &mut Content, from: Content) -> usize {
    let mut added = from.input.iter().chain(&from.output).map(json_bytes).sum::<usize>();
    into.redactions += from.redactions;
    if into.system.is_none() {
        added += optional_json_bytes(&from.system);
        into.system = from.system;
    }
    if into.tools.is_none() {
        added += optional_json_bytes(&from.tools);
        into.tools = from.tools;
    }
    into.input.extend(from.input);
    into.output.extend(from.output);
    added
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dedupe;
