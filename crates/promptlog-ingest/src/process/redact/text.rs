//! Redaction of one string: plain text, or JSON (every string token, and numbers, redacted on their
//! decoded value and re-encoded, so the document stays valid JSON and escapes such as `\n` cannot
//! hide a match or be cut in half).

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::matcher::{Hit, Matcher};

/// How deep JSON documents inside JSON strings are followed.
const MAX_JSON_DEPTH: usize = 4;

/// What a rule does with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Replace the match with `[REDACTED:<name>]`.
    Mask,
    /// Replace the match with `[<name>:<first 16 hex of HMAC-SHA256(key, match)>]`.
    Hash,
    /// Remove the whole attribute (or log body) that contains it.
    Drop,
}

impl Action {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Action::Mask => "mask",
            Action::Hash => "hash",
            Action::Drop => "drop",
        }
    }

    /// The action of a config spelling.
    pub fn from_name(name: &str) -> Option<Action> {
        [Action::Mask, Action::Hash, Action::Drop].into_iter().find(|a| a.name() == name)
    }
}

/// The result of redacting one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing found.
    Unchanged,
    /// The redacted text.
    Changed(String),
    /// A `drop` rule matched: remove the whole value.
    Drop,
}

/// Findings per rule while redacting one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Per rule index.
    pub per_rule: Vec<u64>,
    /// Content values changed by the content-capture policy.
    pub content: u64,
}

impl Tally {
    /// All redactions counted.
    pub fn total(&self) -> u64 {
        self.per_rule.iter().sum::<u64>() + self.content
    }

    fn add(&mut self, rule: usize) {
        if self.per_rule.len() <= rule {
            self.per_rule.resize(rule + 1, 0);
        }
        self.per_rule[rule] += 1;
    }

    /// Adds `other` into `self`.
    pub fn absorb(&mut self, other: &Tally) {
        for (rule, n) in other.per_rule.iter().enumerate() {
            if *n > 0 {
                if self.per_rule.len() <= rule {
                    self.per_rule.resize(rule + 1, 0);
                }
                self.per_rule[rule] += n;
            }
        }
        self.content += other.content;
    }
}

/// The HMAC key for `hash` (the keyed state is computed once and cloned per value).
#[derive(Clone)]
pub struct HashKey(Hmac<Sha256>);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// A key from its bytes.
    pub fn new(key: Vec<u8>) -> Self {
        Self(Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length"))
    }

    /// `[<name>:<first 16 hex digits of HMAC-SHA256(key, value)>]`.
    pub fn marker(&self, name: &str, value: &[u8]) -> String {
        let mut mac = self.0.clone();
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        format!("[{name}:{}]", const_hex::encode(&digest[..8]))
    }
}

/// The matcher plus what each rule does.
#[derive(Debug)]
pub struct Engine {
    pub(crate) matcher: Matcher,
    /// Per rule: (name, action).
    pub(crate) rules: Vec<(String, Action)>,
    pub(crate) key: Option<HashKey>,
}

impl Engine {
    /// Redacts `text` (plain or JSON), counting findings into `tally`.
    pub fn redact(&self, text: &str, tally: &mut Tally) -> Outcome {
        self.redact_at(text, tally, 0)
    }

    fn redact_at(&self, text: &str, tally: &mut Tally, depth: usize) -> Outcome {
        // Escaped text (JSON with `\n`, a Python repr, a log line): `\nDE89…` must not glue the
        // escape's letter to the match, so the letters of escapes are scanned as spaces (same offsets).
        let escaped = text.contains('\\');
        let scan = if escaped { Cow::Owned(blank_escapes(text)) } else { Cow::Borrowed(text) };
        let json_like = depth < MAX_JSON_DEPTH && looks_like_json(text);
        let valid_json = || serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        if json_like && escaped {
            // Decoded strings can differ from the raw text, so they are searched one by one; but
            // when nothing can match in the whole text, nothing can in any of its strings.
            if !self.matcher.may_match(&scan) {
                return Outcome::Unchanged;
            }
            if valid_json() {
                return self.redact_json(text, tally, depth);
            }
        }
        let mut hits = Vec::new();
        if self.matcher.find(&scan, &mut hits) != Some(true) {
            return Outcome::Unchanged;
        }
        // Without escapes a JSON document's strings are in the raw text as they are, so a finding
        // there is one in a string (or a number): redact token by token to keep the JSON valid.
        if json_like && !escaped && valid_json() {
            return self.redact_json(text, tally, depth);
        }
        self.apply(text, &hits, tally)
    }

    /// Replaces `hits` in `text` by their rules' markers.
    fn apply(&self, text: &str, hits: &[Hit], tally: &mut Tally) -> Outcome {
        if hits.is_empty() {
            return Outcome::Unchanged;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for h in hits {
            tally.add(h.rule);
            let (name, action) = &self.rules[h.rule];
            out.push_str(&text[last..h.start]);
            match action {
                Action::Mask => {
                    out.push_str("[REDACTED:");
                    out.push_str(name);
                    out.push(']');
                }
                Action::Hash => match &self.key {
                    Some(key) => out.push_str(&key.marker(name, &text.as_bytes()[h.start..h.end])),
                    // Refused at config time; masking is the safe fallback.
                    None => out.push_str(&format!("[REDACTED:{name}]")),
                },
                Action::Drop => return Outcome::Drop,
            }
            last = h.end;
        }
        out.push_str(&text[last..]);
        Outcome::Changed(out)
    }

    /// Redacts every string token (and number) of a valid JSON document.
    fn redact_json(&self, text: &str, tally: &mut Tally, depth: usize) -> Outcome {
        let b = text.as_bytes();
        let mut out = String::new();
        let mut last = 0;
        let mut i = 0;
        while i < b.len() {
            let (end, token): (usize, Cow<'_, str>) = match b[i] {
                b'"' => {
                    let end = string_end(b, i);
                    let raw = &text[i + 1..end - 1];
                    let token = if raw.contains('\\') {
                        match serde_json::from_str::<String>(&text[i..end]) {
                            Ok(s) => Cow::Owned(s),
                            Err(_) => Cow::Borrowed(raw),
                        }
                    } else {
                        Cow::Borrowed(raw)
                    };
                    (end, token)
                }
                b'-' | b'0'..=b'9' => {
                    let mut end = i + 1;
                    while end < b.len() && matches!(b[end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                        end += 1;
                    }
                    (end, Cow::Borrowed(&text[i..end]))
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            match self.redact_at(&token, tally, depth + 1) {
                Outcome::Unchanged => {}
                Outcome::Changed(new) => {
                    out.push_str(&text[last..i]);
                    out.push_str(&serde_json::to_string(&new).expect("a string serialises"));
                    last = end;
                }
                Outcome::Drop => return Outcome::Drop,
            }
            i = end;
        }
        if last == 0 {
            return Outcome::Unchanged;
        }
        out.push_str(&text[last..]);
        Outcome::Changed(out)
    }
}

/// `text` with the letter of each `\\n`, `\\t`, `\\r` (and `\\"`, `\\'`) escape replaced by a space.
fn blank_escapes(text: &str) -> String {
    let mut b = text.as_bytes().to_vec();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\\' {
            if matches!(b[i + 1], b'n' | b't' | b'r' | b'"' | b'\'') {
                b[i + 1] = b' ';
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    // Only ASCII letters were replaced by ASCII spaces.
    String::from_utf8(b).unwrap_or_else(|_| text.to_owned())
}

/// Whether `text` may be a JSON object or array (validated before it is treated as one).
pub fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// The index just after the closing quote of the JSON string starting at `start` (valid JSON).
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}
