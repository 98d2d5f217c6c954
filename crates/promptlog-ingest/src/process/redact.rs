//! PII redaction and the content-capture policy: a request-level [`Processor`], so it runs on the
//! decoded OTLP request before the spool append (the spool only ever holds redacted data) and again
//! on replay, where it changes nothing (its markers never match again).
//!
//! Every string the collector stores is scanned: span names, status messages, span, event, link,
//! scope and resource attributes (recursively inside arrays and key-value lists), log bodies and log
//! attributes, and metric descriptions, data point attributes and exemplar attributes (metric names
//! and units are identifiers, like attribute keys, and are kept). Each finding is replaced (`mask`, `hash`) or removes its attribute or body (`drop`).
//! Content (see [`content`]) is then reduced by the project's [`ContentPolicy`]. Each record that
//! was redacted gets the int attribute [`REDACTIONS_ATTRIBUTE`] (the sum of its findings and those
//! in its resource and scope), which the normaliser turns into `llm_calls.Redactions`.

pub mod content;
pub mod detectors;
pub mod matcher;
pub mod text;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_walk;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub use content::ContentPolicy;
pub use detectors::Builtin;
pub use matcher::Detector;
pub use text::{Action, HashKey, Outcome, Tally};

use crate::process::Processor;
use crate::request::{Request, RequestContext};
use matcher::Matcher;
use text::Engine;

/// The int attribute counting a record's redactions.
pub const REDACTIONS_ATTRIBUTE: &str = "promptlog.redactions";
/// The project of requests without one (until API keys assign projects).
pub const DEFAULT_PROJECT: &str = "default";

/// One redaction rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The name in markers and metrics (a built-in detector's own name, or the custom rule's).
    pub name: String,
    /// What it finds.
    pub detector: Detector,
    /// What it does with a finding.
    pub action: Action,
}

impl Rule {
    /// A built-in detector with `action`.
    pub fn builtin(detector: Builtin, action: Action) -> Rule {
        Rule { name: detector.name().to_owned(), detector: Detector::Builtin(detector), action }
    }
}

/// Everything the redaction step is built from.
#[derive(Debug, Clone, Default)]
pub struct RedactionSpec {
    /// Rules, in priority order.
    pub rules: Vec<Rule>,
    /// The HMAC key of `hash` (rules and content policy).
    pub hash_key: Option<HashKey>,
    /// The content policy of projects not listed in `projects`.
    pub content: ContentPolicy,
    /// Per-project content policies.
    pub projects: Vec<(String, ContentPolicy)>,
}

/// Why a spec cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A custom regex does not compile.
    #[error("redaction rule `{name}`: invalid regex: {reason}")]
    Pattern { name: String, reason: String },
    /// A rule name that markers cannot carry.
    #[error("redaction rule name `{0}`: expected letters, digits, `_`, `.` or `-`")]
    Name(String),
    /// `hash` without a key.
    #[error("{0} uses `hash` but no redaction hash key is configured")]
    MissingKey(String),
}

/// Redactions counted per rule name, plus content-policy changes, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    names: Vec<String>,
    counts: Vec<AtomicU64>,
    /// Per rule: index into `names`.
    slot: Vec<usize>,
    content: AtomicU64,
}

impl Counters {
    fn new(rules: &[Rule]) -> Counters {
        let mut c = Counters::default();
        for rule in rules {
            let slot = match c.names.iter().position(|n| *n == rule.name) {
                Some(i) => i,
                None => {
                    c.names.push(rule.name.clone());
                    c.counts.push(AtomicU64::new(0));
                    c.names.len() - 1
                }
            };
            c.slot.push(slot);
        }
        c
    }

    fn add(&self, tally: &Tally) {
        for (rule, n) in tally.per_rule.iter().enumerate() {
            if *n > 0 {
                self.counts[self.slot[rule]].fetch_add(*n, Relaxed);
            }
        }
        self.content.fetch_add(tally.content, Relaxed);
    }

    /// `(detector, findings)` for every configured detector, in rule order.
    pub fn per_detector(&self) -> Vec<(&str, u64)> {
        self.names.iter().map(String::as_str).zip(self.counts.iter().map(|c| c.load(Relaxed))).collect()
    }

    /// Content values changed by a content-capture policy.
    pub fn content(&self) -> u64 {
        self.content.load(Relaxed)
    }
}

/// The redaction step.
#[derive(Debug)]
pub struct Redactor {
    engine: Engine,
    spec_content: ContentPolicy,
    projects: Vec<(String, ContentPolicy)>,
    counters: Arc<Counters>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Redactor {
    /// Compiles `spec`.
    pub fn new(spec: RedactionSpec) -> Result<Redactor, SpecError> {
        for rule in &spec.rules {
            if !valid_name(&rule.name) {
                return Err(SpecError::Name(rule.name.clone()));
            }
            if rule.action == Action::Hash && spec.hash_key.is_none() {
                return Err(SpecError::MissingKey(format!("redaction rule `{}`", rule.name)));
            }
        }
        let hashing = std::iter::once(("default", spec.content))
            .chain(spec.projects.iter().map(|(p, c)| (p.as_str(), *c)))
            .find(|(_, c)| *c == ContentPolicy::Hash);
        if let Some((project, _)) = hashing
            && spec.hash_key.is_none()
        {
            return Err(SpecError::MissingKey(format!("the content policy of project `{project}`")));
        }
        let detectors: Vec<Detector> = spec.rules.iter().map(|r| r.detector.clone()).collect();
        let matcher = Matcher::new(&detectors)
            .map_err(|e| SpecError::Pattern { name: spec.rules[e.rule].name.clone(), reason: e.reason })?;
        let counters = Arc::new(Counters::new(&spec.rules));
        let rules = spec.rules.into_iter().map(|r| (r.name, r.action)).collect();
        Ok(Redactor {
            engine: Engine { matcher, rules, key: spec.hash_key },
            spec_content: spec.content,
            projects: spec.projects,
            counters,
        })
    }

    /// The counters, shared with the collector's `/metrics`.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// The content policy of `project` (empty: [`DEFAULT_PROJECT`]).
    pub fn policy(&self, project: &str) -> ContentPolicy {
        let project = if project.is_empty() { DEFAULT_PROJECT } else { project };
        self.projects.iter().find(|(p, _)| p == project).map_or(self.spec_content, |(_, c)| *c)
    }

    /// Redacts one string as the processor would (for tests and benchmarks).
    pub fn redact_str(&self, text: &str, tally: &mut Tally) -> Outcome {
        self.engine.redact(text, tally)
    }

    /// Redacts `request` under the policy of its project; true if anything in it changed (a second
    /// run on the output changes nothing).
    pub fn redact_request(&self, ctx: &RequestContext, request: &mut Request) -> bool {
        let policy = self.policy(ctx.project_id());
        if self.inert(policy) {
            return false;
        }
        let mut walk = walk::Walk::new(&self.engine, policy);
        let changed = match request {
            Request::Traces(r) => walk.traces(r),
            Request::Logs(r) => walk.logs(r),
            Request::Metrics(r) => walk.metrics(r),
            Request::Scores(r) => walk.scores(r),
        };
        self.counters.add(&walk.total);
        changed
    }

    /// Whether any rule or policy is configured at all.
    fn inert(&self, policy: ContentPolicy) -> bool {
        self.engine.rules.is_empty() && policy == ContentPolicy::Full
    }
}

impl Processor for Redactor {
    fn name(&self) -> &'static str {
        "redact"
    }

    fn request(&self, ctx: &RequestContext, request: &mut Request) -> bool {
        // Always "changed" once active: the body as received may hold fields the decoder skipped
        // (unknown field numbers), which were never scanned, so the spool gets the request
        // re-encoded from what was scanned rather than the client's bytes.
        self.redact_request(ctx, request);
        !self.inert(self.policy(ctx.project_id()))
    }
}
