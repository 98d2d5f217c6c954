//! What "content" is (the prompt, completion, system-instruction and tool-call attributes and log
//! records of every convention the normalisers read — listed here once), and the per-project
//! content-capture policy applied to it.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message;
use serde_json::Value as Json;

use super::text::HashKey;
use crate::normalize::otel_genai::DETAILS_EVENT;

/// Attribute keys (span, span event and log record) whose whole value is content.
pub const CONTENT_KEYS: &[&str] = &[
    // OTel GenAI ≥ 1.37 (span attributes and the inference details event), legacy span events.
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    // OpenInference (also the last resort for tool, retriever and agent spans).
    "input.value",
    "output.value",
    // Vercel AI SDK.
    "ai.prompt",
    "ai.prompt.messages",
    "ai.response.text",
    "ai.response.object",
    "ai.response.toolCalls",
    "ai.toolCall.args",
    "ai.toolCall.result",
    "ai.value",
    "ai.values",
    "ai.result.text",
    "ai.result.object",
    "ai.result.toolCalls",
    // Logfire / Pydantic AI.
    "events",
    "pydantic_ai.all_messages",
    "final_result",
    // Langfuse.
    "langfuse.observation.input",
    "langfuse.observation.output",
    "langfuse.trace.input",
    "langfuse.trace.output",
    // Traceloop workflow/task spans.
    "traceloop.entity.input",
    "traceloop.entity.output",
    // Prompt templates and the values filled into them (`PromptTemplate`, `PromptVariables`; the prompt's
    // name and version are metadata and stay).
    "llm.prompt_template.template",
    "llm.prompt_template.variables",
    "traceloop.prompt.template",
    "traceloop.prompt.template_variables",
];

/// Prefixes under which every attribute is content (one attribute per template variable: Traceloop).
pub const CONTENT_PREFIXES: &[&str] = &["traceloop.prompt.template_variables."];

/// Flattened, indexed content (`<prefix><i>.….<suffix>`): OpenLLMetry ≤ 0.54 and OpenInference.
/// Other keys under these prefixes (`role`, `finish_reason`, tool names) are metadata and stay.
pub const INDEXED_CONTENT: &[(&str, &[&str])] = &[
    ("gen_ai.prompt.", &["content", "arguments"]),
    ("gen_ai.completion.", &["content", "arguments", "refusal"]),
    ("llm.input_messages.", &["content", "text", "arguments"]),
    ("llm.output_messages.", &["content", "text", "arguments"]),
    ("llm.prompts.", &["text"]),
    ("llm.choices.", &["text"]),
    ("embedding.embeddings.", &["text"]),
];

/// JSON attributes with content in some fields and metadata or usage in the others (Logfire).
pub const CONTENT_FIELDS: &[(&str, &[&str])] =
    &[("request_data", &["messages", "input", "instructions", "prompt"]), ("response_data", &["message", "output"])];

/// Log record events whose body is content.
pub const CONTENT_EVENTS: &[&str] = &[
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
    DETAILS_EVENT,
];

/// Whether the attribute `key` holds content.
pub fn is_content_key(key: &str) -> bool {
    CONTENT_KEYS.contains(&key)
        || CONTENT_PREFIXES.iter().any(|p| key.starts_with(p))
        || INDEXED_CONTENT.iter().any(|(prefix, suffixes)| {
            key.strip_prefix(prefix).is_some_and(|rest| {
                rest.starts_with(|c: char| c.is_ascii_digit())
                    && suffixes.iter().any(|s| rest.rsplit('.').next() == Some(s))
            })
        })
}

/// The content fields of a JSON attribute with mixed content and metadata, if `key` is one.
pub fn content_fields(key: &str) -> Option<&'static [&'static str]> {
    CONTENT_FIELDS.iter().find(|(k, _)| *k == key).map(|(_, fields)| *fields)
}

/// How much of the content a project keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentPolicy {
    /// Everything (after PII redaction).
    #[default]
    Full,
    /// At most this many bytes per text: per value, or per string of a JSON document or structured
    /// value (cut at a UTF-8 boundary; JSON stays valid).
    Truncate(usize),
    /// The text replaced by `[content:<HMAC>]`, so equal prompts stay joinable.
    Hash,
    /// The text removed; the record, its metadata and usage stay.
    Drop,
}

impl std::str::FromStr for ContentPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "full" => Ok(ContentPolicy::Full),
            "hash" => Ok(ContentPolicy::Hash),
            "drop" => Ok(ContentPolicy::Drop),
            other => match other.strip_prefix("truncate:").map(|n| n.trim().parse::<usize>()) {
                Some(Ok(n)) if n > 0 => Ok(ContentPolicy::Truncate(n)),
                _ => Err("expected `full`, `truncate:<bytes>` (bytes > 0), `hash` or `drop`".to_owned()),
            },
        }
    }
}

impl std::fmt::Display for ContentPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContentPolicy::Full => f.write_str("full"),
            ContentPolicy::Truncate(n) => write!(f, "truncate:{n}"),
            ContentPolicy::Hash => f.write_str("hash"),
            ContentPolicy::Drop => f.write_str("drop"),
        }
    }
}

/// What applying a policy to a value asks of its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Left as it was.
    Kept,
    /// Changed in place.
    Changed,
    /// Remove the value.
    Remove,
}

/// The name in content hash markers.
const CONTENT_MARKER: &str = "content";

fn is_content_marker(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == CONTENT_MARKER.len() + 19
        && s.starts_with("[content:")
        && s.ends_with(']')
        && b[9..25].iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Applies `policy` to a content value.
pub fn apply(policy: ContentPolicy, value: &mut AnyValue, key: Option<&HashKey>) -> Applied {
    match policy {
        ContentPolicy::Full => Applied::Kept,
        ContentPolicy::Drop => Applied::Remove,
        ContentPolicy::Hash => {
            let bytes = match &value.value {
                Some(any_value::Value::StringValue(s)) if is_content_marker(s) => return Applied::Kept,
                Some(any_value::Value::StringValue(s)) => s.as_bytes().to_vec(),
                None => return Applied::Kept,
                Some(_) => value.encode_to_vec(),
            };
            let Some(key) = key else { return Applied::Remove };
            value.value = Some(any_value::Value::StringValue(key.marker(CONTENT_MARKER, &bytes)));
            Applied::Changed
        }
        ContentPolicy::Truncate(max) => {
            if truncate_any(value, max) {
                Applied::Changed
            } else {
                Applied::Kept
            }
        }
    }
}

/// Applies `policy` to the content `fields` of a JSON object attribute (other fields are kept).
pub fn apply_fields(policy: ContentPolicy, value: &mut AnyValue, fields: &[&str], key: Option<&HashKey>) -> Applied {
    let Some(any_value::Value::StringValue(text)) = &value.value else { return Applied::Kept };
    let Ok(Json::Object(mut obj)) = serde_json::from_str::<Json>(text) else { return Applied::Kept };
    let mut changed = false;
    for field in fields {
        let Some(v) = obj.get_mut(*field) else { continue };
        match policy {
            ContentPolicy::Full => {}
            ContentPolicy::Drop => {
                obj.remove(*field);
                changed = true;
            }
            ContentPolicy::Hash => {
                if !v.as_str().is_some_and(is_content_marker) {
                    let marker = match key {
                        Some(key) => key.marker(CONTENT_MARKER, v.to_string().as_bytes()),
                        None => String::new(),
                    };
                    *v = Json::String(marker);
                    changed = true;
                }
            }
            ContentPolicy::Truncate(max) => changed |= truncate_json(v, max),
        }
    }
    if !changed {
        return Applied::Kept;
    }
    value.value = Some(any_value::Value::StringValue(Json::Object(obj).to_string()));
    Applied::Changed
}

/// Cuts `s` to at most `max` bytes at a char boundary; true if it was longer.
pub fn truncate_str(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// Truncates every string in `v` (each string of a JSON document, each leaf of a structured value)
/// to `max` bytes, so structure and short metadata values (`role`, `type`) survive.
fn truncate_any(v: &mut AnyValue, max: usize) -> bool {
    match &mut v.value {
        Some(any_value::Value::StringValue(s)) => {
            if super::text::looks_like_json(s)
                && let Ok(mut json) = serde_json::from_str::<Json>(s)
            {
                if truncate_json(&mut json, max) {
                    *s = json.to_string();
                    return true;
                }
                return false;
            }
            truncate_str(s, max)
        }
        Some(any_value::Value::ArrayValue(a)) => a.values.iter_mut().fold(false, |c, v| truncate_any(v, max) | c),
        Some(any_value::Value::KvlistValue(l)) => {
            l.values.iter_mut().filter_map(|kv| kv.value.as_mut()).fold(false, |c, v| truncate_any(v, max) | c)
        }
        _ => false,
    }
}

fn truncate_json(v: &mut Json, max: usize) -> bool {
    match v {
        Json::String(s) => truncate_str(s, max),
        Json::Array(items) => items.iter_mut().fold(false, |c, v| truncate_json(v, max) | c),
        Json::Object(obj) => obj.values_mut().fold(false, |c, v| truncate_json(v, max) | c),
        _ => false,
    }
}
