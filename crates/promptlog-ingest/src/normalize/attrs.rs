//! AnyValue and attribute-list helpers shared by every normaliser.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use serde_json::Value as Json;

use crate::rows::AttrMap;

/// Deepest AnyValue nesting converted; deeper levels become a `"…"` marker (hostile input guard).
const MAX_DEPTH: usize = 32;

/// Read-only view of an OTLP attribute list with typed getters. Lookups are linear scans: attribute
/// lists are short, and building a hash map per span would cost more than it saves.
#[derive(Clone, Copy)]
pub struct Attrs<'a>(pub &'a [KeyValue]);

impl<'a> Attrs<'a> {
    /// The raw value of `key`, if present and set.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
    }

    /// The value of `key` as a non-empty string (scalars are formatted).
    pub fn str(&self, key: &str) -> Option<String> {
        self.get(key).map(value_to_string).filter(|s| !s.is_empty())
    }

    /// The value of `key` as a string slice, only when it is a string value.
    pub fn str_ref(&self, key: &str) -> Option<&'a str> {
        match self.get(key)? {
            Value::StringValue(s) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        }
    }

    /// The value of `key` as an unsigned integer (ints, integral doubles and numeric strings).
    pub fn u64(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::IntValue(i) => u64::try_from(*i).ok(),
            Value::DoubleValue(d) if *d >= 0.0 && d.fract() == 0.0 => Some(*d as u64),
            Value::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The first of `keys` that holds an unsigned integer (conventions spell one count many ways).
    pub fn first_u64(&self, keys: &[&str]) -> Option<u64> {
        keys.iter().find_map(|k| self.u64(k))
    }

    /// The value of `key` as a float (doubles, ints and numeric strings).
    pub fn f64(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::DoubleValue(d) => Some(*d),
            Value::IntValue(i) => Some(*i as f64),
            Value::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|f: &f64| f.is_finite())
    }

    /// The value of `key` as a list of strings: a string array, a JSON-array string, or one string.
    pub fn str_list(&self, key: &str) -> Option<Vec<String>> {
        match self.get(key)? {
            Value::ArrayValue(a) => {
                Some(a.values.iter().filter_map(|v| v.value.as_ref()).map(value_to_string).collect())
            }
            Value::StringValue(s) => match serde_json::from_str::<Vec<Json>>(s) {
                Ok(items) => Some(items.iter().map(json_scalar_to_string).collect()),
                Err(_) => Some(vec![s.clone()]),
            },
            other => Some(vec![value_to_string(other)]),
        }
    }

    /// The value of `key` as JSON: structured values converted, strings parsed as JSON when they are.
    pub fn json(&self, key: &str) -> Option<Json> {
        Some(value_to_json_parsing_strings(self.get(key)?))
    }
}

/// A scalar rendered as a string the way the OTel ClickHouse exporter does; arrays and maps as JSON.
pub fn value_to_string(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => format_f64(*d),
        Value::BytesValue(b) => base64_encode(b),
        Value::ArrayValue(_) | Value::KvlistValue(_) => value_to_json(value, 0).to_string(),
        Value::StringValueStrindex(i) => i.to_string(),
    }
}

/// `f64` as the shortest string that reads back the same (`0.7`, `1`, `1e-7`).
pub fn format_f64(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 1e15 { format!("{}", d as i64) } else { format!("{d}") }
}

fn json_scalar_to_string(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Converts an AnyValue to JSON. Strings stay strings.
pub fn value_to_json(value: &Value, depth: usize) -> Json {
    if depth > MAX_DEPTH {
        return Json::String("…".into());
    }
    match value {
        Value::StringValue(s) => Json::String(s.clone()),
        Value::BoolValue(b) => Json::Bool(*b),
        Value::IntValue(i) => Json::from(*i),
        Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map(Json::Number).unwrap_or(Json::Null),
        Value::BytesValue(b) => Json::String(base64_encode(b)),
        Value::ArrayValue(a) => Json::Array(a.values.iter().map(|v| any_to_json(v, depth + 1)).collect()),
        Value::KvlistValue(kvs) => Json::Object(
            kvs.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Json::Null, |v| any_to_json(v, depth + 1))))
                .collect(),
        ),
        Value::StringValueStrindex(i) => Json::from(*i),
    }
}

fn any_to_json(value: &AnyValue, depth: usize) -> Json {
    value.value.as_ref().map_or(Json::Null, |v| value_to_json(v, depth))
}

/// Like [`value_to_json`], but a top-level string holding a JSON array or object is parsed: content
/// attributes arrive either way depending on the SDK.
pub fn value_to_json_parsing_strings(value: &Value) -> Json {
    if let Value::StringValue(s) = value {
        let t = s.trim_start();
        if (t.starts_with('[') || t.starts_with('{'))
            && let Ok(parsed) = serde_json::from_str(s)
        {
            return parsed;
        }
    }
    value_to_json(value, 0)
}

/// Body of a log record as JSON (`None` when empty).
pub fn body_to_json(body: Option<&AnyValue>) -> Option<Json> {
    body.and_then(|b| b.value.as_ref()).map(value_to_json_parsing_strings)
}

/// Converts an attribute list into a map column, truncating values longer than `max_value_bytes`.
/// Returns how many values were truncated.
pub fn to_attr_map(attrs: &[KeyValue], max_value_bytes: usize, out: &mut AttrMap) -> usize {
    let mut truncated = 0;
    out.reserve(attrs.len());
    for kv in attrs {
        let Some(value) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else { continue };
        let mut s = value_to_string(value);
        if truncate_in_place(&mut s, max_value_bytes) {
            truncated += 1;
        }
        out.push((kv.key.clone(), s));
    }
    truncated
}

/// Cuts `s` to at most `max` bytes on a char boundary and appends a marker; true when it did.
pub fn truncate_in_place(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let original = s.len();
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(&format!("…[truncated {} bytes]", original - cut));
    true
}

/// Lowercase hex of an id, or empty for an empty/all-zero id (exporter convention).
pub fn hex_id(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| *b == 0) { String::new() } else { const_hex::encode(bytes) }
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
    }

    #[test]
    fn scalars_render_like_the_exporter() {
        let cases = [
            (Value::StringValue("x".into()), "x"),
            (Value::BoolValue(true), "true"),
            (Value::IntValue(-3), "-3"),
            (Value::DoubleValue(0.7), "0.7"),
            (Value::DoubleValue(2.0), "2"),
            (Value::BytesValue(b"hi!".to_vec()), "aGkh"),
            (Value::BytesValue(b"h".to_vec()), "aA=="),
            (
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue { value: Some(Value::StringValue("stop".into())) }],
                }),
                r#"["stop"]"#,
            ),
            (Value::KvlistValue(KeyValueList { values: vec![kv("a", Value::IntValue(1))] }), r#"{"a":1}"#),
        ];
        for (value, want) in cases {
            assert_eq!(value_to_string(&value), want);
        }
    }

    #[test]
    fn typed_getters_accept_every_encoding() {
        let list = vec![
            kv("i", Value::IntValue(42)),
            kv("s", Value::StringValue("17".into())),
            kv("d", Value::DoubleValue(3.0)),
            kv("neg", Value::IntValue(-1)),
            kv("arr", Value::StringValue(r#"["a","b"]"#.into())),
            kv("one", Value::StringValue("stop".into())),
        ];
        let a = Attrs(&list);
        assert_eq!(a.u64("i"), Some(42));
        assert_eq!(a.u64("s"), Some(17));
        assert_eq!(a.u64("d"), Some(3));
        assert_eq!(a.u64("neg"), None);
        assert_eq!(a.f64("i"), Some(42.0));
        assert_eq!(a.str_list("arr").unwrap(), vec!["a", "b"]);
        assert_eq!(a.str_list("one").unwrap(), vec!["stop"]);
        assert_eq!(a.u64("missing"), None);
    }

    #[test]
    fn truncation_keeps_char_boundaries_and_says_so() {
        let mut s = "ééééé".to_string(); // 10 bytes
        assert!(truncate_in_place(&mut s, 5));
        assert_eq!(s, "éé…[truncated 6 bytes]");
        let mut short = "abc".to_string();
        assert!(!truncate_in_place(&mut short, 5));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut v = Value::StringValue("leaf".into());
        for _ in 0..100 {
            v = Value::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(v) }] });
        }
        let json = value_to_json(&v, 0).to_string();
        assert!(json.contains('…') && !json.contains("leaf"));
    }
}
