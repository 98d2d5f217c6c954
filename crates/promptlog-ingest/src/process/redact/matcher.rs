//! The multi-pattern matcher. The built-in rules' patterns are compiled into a few
//! `regex_automata::meta::Regex`es, one per kind of prefilter evidence (literal-gated: email and
//! secrets; IPv6; digit-gated: cards, IBANs, SSNs, phones, IPv4), each match carrying the `PatternID`
//! that names its rule. One pass over the text computes the prefilter (`aho-corasick` over the
//! detectors' required literals, plus digit, dot and hex-colon counts); only the groups whose
//! evidence is there run, and most strings (model names, ids, plain prose) run none. Custom rules
//! share one more regex, which gets the meta engine's own literal prefilter. Candidates go through
//! their detector's validator; a rejected candidate resumes the search one character later, so it
//! cannot hide a valid finding that overlaps it.
//!
//! Markers written by earlier runs (`[REDACTED:x]`, `[x:0123456789abcdef]`) are cut out of the text
//! before searching: no rule, custom ones included, can match inside them, which is what makes the
//! processor idempotent on replay.

use aho_corasick::AhoCorasick;
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};

use super::detectors::{Builtin, Gate};

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
    /// Built-in groups, then (last) the custom group.
    groups: Vec<Group>,
    prefilter: Option<AhoCorasick>,
    /// Per prefilter literal: the bit of its group.
    literal_group: Vec<u32>,
    markers: Regex,
}

/// One regex over several rules.
#[derive(Debug)]
struct Group {
    regex: Regex,
    /// Per pattern id: (rule, its built-in detector; `None` for custom rules).
    rules: Vec<(usize, Option<Builtin>)>,
    /// The gates of its detectors (empty: always searched).
    gates: Vec<Gate>,
}

/// A group being built: its patterns, their rules, its detectors' gates.
type GroupParts<'a> = (Vec<&'a str>, Vec<(usize, Option<Builtin>)>, Vec<Gate>);

/// What one pass over a text found for the prefilter.
struct Evidence {
    literal_groups: u32,
    digits: usize,
    dots: usize,
    hex_colons: usize,
}

impl Evidence {
    fn opens(&self, bit: u32, gate: &Gate) -> bool {
        self.literal_groups & bit != 0
            || (self.digits >= gate.digits && self.dots >= gate.dots)
            || self.hex_colons >= gate.hex_colons
    }
}

impl Matcher {
    /// Compiles `detectors` (one per rule, in rule order: earlier rules win at equal start).
    pub fn new(detectors: &[Detector]) -> Result<Matcher, PatternError> {
        let mut builtin: Vec<GroupParts<'_>> = vec![Default::default(); 3];
        let mut literals: Vec<&str> = Vec::new();
        let mut literal_group = Vec::new();
        let (mut custom_patterns, mut custom_rules) = (Vec::new(), Vec::new());
        for (rule, detector) in detectors.iter().enumerate() {
            match detector {
                Detector::Builtin(b) => {
                    let group = &mut builtin[b.group()];
                    for p in b.patterns() {
                        group.0.push(*p);
                        group.1.push((rule, Some(*b)));
                    }
                    let gate = b.gate();
                    group.2.push(gate);
                    literals.extend(gate.literals);
                    literal_group.extend(gate.literals.iter().map(|_| 1u32 << b.group()));
                }
                Detector::Custom(p) => {
                    // Checked alone first, so the error names the rule.
                    Regex::new(p).map_err(|e| PatternError { rule, reason: e.to_string() })?;
                    custom_patterns.push(p.as_str());
                    custom_rules.push((rule, None));
                }
            }
        }
        let mut groups = Vec::new();
        for (patterns, rules, gates) in builtin.into_iter().filter(|g| !g.0.is_empty()) {
            let regex = Regex::builder()
                .syntax(syntax::Config::new().unicode(false).utf8(false))
                .configure(Regex::config().match_kind(MatchKind::LeftmostFirst))
                .build_many(&patterns)
                .expect("built-in patterns compile");
            groups.push(Group { regex, rules, gates });
        }
        if !custom_patterns.is_empty() {
            let regex =
                Regex::new_many(&custom_patterns).map_err(|e| PatternError { rule: 0, reason: e.to_string() })?;
            groups.push(Group { regex, rules: custom_rules, gates: Vec::new() });
        }
        let prefilter = (!literals.is_empty()).then(|| AhoCorasick::new(&literals).expect("literals compile"));
        Ok(Matcher { groups, prefilter, literal_group, markers: Regex::new(MARKER_PATTERN).expect("marker pattern") })
    }

    fn evidence(&self, text: &str) -> Evidence {
        let mut e = Evidence { literal_groups: 0, digits: 0, dots: 0, hex_colons: 0 };
        if let Some(ac) = &self.prefilter {
            for m in ac.find_iter(text) {
                e.literal_groups |= self.literal_group[m.pattern().as_usize()];
            }
        }
        // Separate simple loops: each vectorises.
        let b = text.as_bytes();
        e.digits = b.iter().filter(|c| c.is_ascii_digit()).count();
        e.dots = b.iter().filter(|&&c| c == b'.').count();
        if b.contains(&b':') {
            let hex = |c: u8| c.is_ascii_hexdigit();
            e.hex_colons = b.windows(3).filter(|w| w[1] == b':' && hex(w[0]) && hex(w[2])).count();
        }
        e
    }

    /// Which groups may match `text` (bit per group), from one pass over it.
    fn open_groups(&self, text: &str) -> u32 {
        if self.groups.is_empty() {
            return 0;
        }
        let e = self.evidence(text);
        let mut open = 0;
        for (i, g) in self.groups.iter().enumerate() {
            let bit = g.rules.first().and_then(|(_, b)| *b).map_or(0, |b| 1u32 << b.group());
            if g.gates.is_empty() || g.gates.iter().any(|gate| e.opens(bit, gate)) {
                open |= 1 << i;
            }
        }
        open
    }

    /// Whether the prefilter lets any rule search `text` (false: nothing can match in it, nor in
    /// any part of it).
    pub fn may_match(&self, text: &str) -> bool {
        self.open_groups(text) != 0
    }

    /// Appends the findings in `text`, in order, without overlaps: `None` when the prefilter rules
    /// out any match in `text` (and so in any part of it), else whether there are findings.
    pub fn find(&self, text: &str, hits: &mut Vec<Hit>) -> Option<bool> {
        let open = self.open_groups(text);
        if open == 0 {
            return None;
        }
        let first = hits.len();
        let mut scan = |s: usize, e: usize| {
            if s >= e {
                return;
            }
            for (_, g) in self.groups.iter().enumerate().filter(|(i, _)| open & (1 << i) != 0) {
                search(&g.regex, text, s, e, hits, |pid, start, end| {
                    let (rule, detector) = g.rules[pid];
                    match detector {
                        Some(d) => d.validate(text, start, end).map(|end| (rule, end)),
                        None => Some((rule, end)),
                    }
                });
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
        if open.count_ones() > 1 {
            let found = &mut hits[first..];
            found.sort_by_key(|h| (h.start, h.rule, std::cmp::Reverse(h.end)));
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
        Some(hits.len() > first)
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
