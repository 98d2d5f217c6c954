//! The multi-pattern matcher: every built-in rule's patterns in one `regex_automata::meta::Regex`
//! (each match carries the `PatternID` that names its rule), gated by a literal prefilter
//! (`aho-corasick` over the detectors' required literals, plus digit and colon counts), and the
//! custom rules in a second one (which gets the meta engine's own literal prefilter). Candidates go
//! through their detector's validator; a rejected candidate resumes the search one character later,
//! so it cannot hide a valid finding that overlaps it.
//!
//! Markers written by earlier runs (`[REDACTED:x]`, `[x:0123456789abcdef]`) are cut out of the text
//! before searching: no rule, custom ones included, can match inside them, which is what makes the
//! processor idempotent on replay.

use aho_corasick::AhoCorasick;
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};

use super::detectors::Builtin;

/// A finding: `text[start..end]` matched rule `rule` (index into the configured rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    pub rule: usize,
}

/// What a rule detects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detector {
    /// A built-in detector.
    Builtin(Builtin),
    /// A custom regex (Rust `regex` syntax, no look-around); every match is a finding.
    Custom(String),
}

/// The regex of a marker this processor writes.
pub const MARKER_PATTERN: &str = r"\[REDACTED:[A-Za-z0-9_.\-]+\]|\[[A-Za-z0-9_.\-]+:[0-9a-f]{16}\]";

/// A custom pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: invalid regex: {reason}")]
pub struct PatternError {
    /// Index of the rule.
    pub rule: usize,
    /// The compiler's message.
    pub reason: String,
}

/// Compiled rules.
#[derive(Debug)]
pub struct Matcher {
    builtin: Option<Regex>,
    /// Per builtin pattern id: (rule, detector).
    builtin_rules: Vec<(usize, Builtin)>,
    prefilter: Option<AhoCorasick>,
    /// Fewest digits any digit-gated enabled detector needs (`usize::MAX`: none).
    min_digits: usize,
    /// Fewest colons the colon-gated detector needs (`usize::MAX`: none).
    min_colons: usize,
    custom: Option<Regex>,
    /// Per custom pattern id: the rule.
    custom_rules: Vec<usize>,
    markers: Regex,
}

impl Matcher {
    /// Compiles `detectors` (one per rule, in rule order: earlier rules win at equal start).
    pub fn new(detectors: &[Detector]) -> Result<Matcher, PatternError> {
        let mut builtin_patterns = Vec::new();
        let mut builtin_rules = Vec::new();
        let mut literals: Vec<&str> = Vec::new();
        let (mut min_digits, mut min_colons) = (usize::MAX, usize::MAX);
        let mut custom_patterns = Vec::new();
        let mut custom_rules = Vec::new();
        for (rule, detector) in detectors.iter().enumerate() {
            match detector {
                Detector::Builtin(b) => {
                    for p in b.patterns() {
                        builtin_patterns.push(*p);
                        builtin_rules.push((rule, *b));
                    }
                    literals.extend(b.literals());
                    min_digits = min_digits.min(b.digits().unwrap_or(usize::MAX));
                    min_colons = min_colons.min(b.colons().unwrap_or(usize::MAX));
                }
                Detector::Custom(p) => {
                    // Checked alone first, so the error names the rule.
                    Regex::new(p).map_err(|e| PatternError { rule, reason: e.to_string() })?;
                    custom_patterns.push(p.as_str());
                    custom_rules.push(rule);
                }
            }
        }
        let builtin = (!builtin_patterns.is_empty()).then(|| {
            Regex::builder()
                .syntax(syntax::Config::new().unicode(false).utf8(false))
                .configure(Regex::config().match_kind(MatchKind::LeftmostFirst))
                .build_many(&builtin_patterns)
                .expect("built-in patterns compile")
        });
        let custom = if custom_patterns.is_empty() {
            None
        } else {
            let built =
                Regex::new_many(&custom_patterns).map_err(|e| PatternError { rule: 0, reason: e.to_string() })?;
            Some(built)
        };
        let prefilter = (!literals.is_empty()).then(|| AhoCorasick::new(&literals).expect("literals compile"));
        Ok(Matcher {
            builtin,
            builtin_rules,
            prefilter,
            min_digits,
            min_colons,
            custom,
            custom_rules,
            markers: Regex::new(MARKER_PATTERN).expect("marker pattern compiles"),
        })
    }

    /// Whether the built-in regex could match `text` at all (the prefilter).
    fn builtin_may_match(&self, text: &str) -> bool {
        if self.builtin.is_none() {
            return false;
        }
        if self.prefilter.as_ref().is_some_and(|ac| ac.is_match(text)) {
            return true;
        }
        if self.min_digits == usize::MAX && self.min_colons == usize::MAX {
            return false;
        }
        let (mut digits, mut colons) = (0usize, 0usize);
        for &c in text.as_bytes() {
            digits += usize::from(c.is_ascii_digit());
            colons += usize::from(c == b':');
            if digits >= self.min_digits || colons >= self.min_colons {
                return true;
            }
        }
        false
    }

    /// Appends the findings in `text`, in order, without overlaps; true if there are any.
    pub fn find(&self, text: &str, hits: &mut Vec<Hit>) -> bool {
        let builtin = self.builtin_may_match(text);
        if !builtin && self.custom.is_none() {
            return false;
        }
        let first = hits.len();
        let mut scan = |s: usize, e: usize| {
            if s >= e {
                return;
            }
            if builtin && let Some(re) = &self.builtin {
                search(re, text, s, e, hits, |pid, start, end| {
                    let (rule, detector) = self.builtin_rules[pid];
                    detector.validate(text, start, end).map(|end| (rule, end))
                });
            }
            if let Some(re) = &self.custom {
                search(re, text, s, e, hits, |pid, _, end| Some((self.custom_rules[pid], end)));
            }
        };
        // The text between the markers of earlier runs.
        let mut at = 0;
        if text.as_bytes().contains(&b'[') {
            for m in self.markers.find_iter(text) {
                scan(at, m.start());
                at = m.end();
            }
        }
        scan(at, text.len());
        let found = &mut hits[first..];
        if self.custom.is_some() && builtin {
            found.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end), h.rule));
            let mut kept_end = 0;
            let mut keep = Vec::with_capacity(found.len());
            for h in found.iter() {
                if h.start >= kept_end {
                    keep.push(*h);
                    kept_end = h.end;
                }
            }
            hits.truncate(first);
            hits.extend(keep);
        }
        hits.len() > first
    }
}

/// Searches `re` over `text[s..e]`, validating each candidate; a rejected one resumes one character on.
fn search(
    re: &Regex,
    text: &str,
    s: usize,
    e: usize,
    hits: &mut Vec<Hit>,
    validate: impl Fn(usize, usize, usize) -> Option<(usize, usize)>,
) {
    let mut at = s;
    while at < e {
        let Some(m) = re.search(&Input::new(text).span(at..e)) else { break };
        match (!m.is_empty()).then(|| validate(m.pattern().as_usize(), m.start(), m.end())).flatten() {
            Some((rule, end)) if end > m.start() => {
                hits.push(Hit { start: m.start(), end, rule });
                at = end;
            }
            _ => at = next_boundary(text, m.start() + 1),
        }
    }
}

/// The first char boundary at or after `i`.
fn next_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}
