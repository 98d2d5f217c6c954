//! What reads return: a call list row ([`CallSummary`]), a whole call ([`CallDetail`]) with its
//! messages ([`Message`], in the OTel GenAI `role` + `parts` model `llm_calls` stores) and
//! [`Score`]s, and a [`Session`] turn by turn. All `Serialize` (the `--format json` output and the
//! UI's JSON endpoints); every time is both ns since the epoch and RFC 3339 text.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;

use super::filter::Cursor;

/// RFC 3339 UTC text with nanoseconds of `ns` since the epoch.
pub fn rfc3339(ns: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    humantime::format_rfc3339_nanos(at).to_string()
}

/// One row of the call list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    /// Start of the call, ns since the epoch.
    pub timestamp_ns: i64,
    /// The same, RFC 3339.
    pub time: String,
    /// Trace id (hex).
    pub trace_id: String,
    /// Span id (hex); `promptlog show` takes it.
    pub span_id: String,
    /// `ProjectId`.
    pub project: String,
    /// `ServiceName`.
    pub service: String,
    /// `Environment`.
    pub environment: String,
    /// `Operation` (`chat`, ...).
    pub operation: String,
    /// Response model, else the requested one.
    pub model: String,
    /// `Ok`, `Error` or `Unset`.
    pub status: String,
    /// Duration in milliseconds.
    pub latency_ms: f64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
    /// Cost in USD; `None` when unpriced.
    pub cost_usd: Option<f64>,
    /// `SessionId` (may be empty).
    pub session: String,
    /// `UserId` (may be empty).
    pub user: String,
    /// The first [`PROMPT_START_CHARS`] characters of the prompt text.
    pub prompt_start: String,
}

/// Characters of the prompt a [`CallSummary`] carries.
pub const PROMPT_START_CHARS: u32 = 200;

impl CallSummary {
    /// The cursor that continues after this call.
    pub fn cursor(&self) -> Cursor {
        Cursor { timestamp_ns: self.timestamp_ns, trace_id: self.trace_id.clone(), span_id: self.span_id.clone() }
    }
}

/// A page of the newest-first call list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallPage {
    /// The calls, newest first.
    pub calls: Vec<CallSummary>,
    /// Where the next page starts; `None` when this page is the last.
    pub next_cursor: Option<Cursor>,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// Call id (matches the [`ToolResult`]).
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as sent (JSON).
    pub arguments: Json,
}

/// What a tool returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolResult {
    /// The [`ToolCall`] id it answers.
    pub id: String,
    /// The result (JSON).
    pub response: Json,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// Its text parts, joined by newlines.
    pub text: String,
    /// Tool calls in it.
    pub tool_calls: Vec<ToolCall>,
    /// Tool results in it.
    pub tool_results: Vec<ToolResult>,
    /// Why generation stopped (output messages).
    pub finish_reason: Option<String>,
    /// The stored message (every part, including ones not shown above, e.g. images).
    pub raw: Json,
}

fn text_of(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn id_of(part: &Json) -> String {
    part.get("id").map(text_of).unwrap_or_default()
}

impl Message {
    /// Reads one stored message; a message that is not an object becomes a text-only message.
    pub fn from_json(raw: Json) -> Message {
        let role = raw.get("role").and_then(Json::as_str).unwrap_or("").to_owned();
        let finish_reason = raw.get("finish_reason").and_then(Json::as_str).map(str::to_owned);
        let parts = match raw.get("parts") {
            Some(Json::Array(parts)) => parts.clone(),
            _ if raw.is_object() => Vec::new(),
            _ => vec![serde_json::json!({"type": "text", "content": text_of(&raw)})],
        };
        let (texts, tool_calls, tool_results) = split_parts(&parts);
        Message { role, text: texts.join("\n"), tool_calls, tool_results, finish_reason, raw }
    }

    /// Parses a stored JSON array of messages (`InputMessages`, `OutputMessages`); empty or invalid
    /// text gives no messages.
    pub fn parse_list(text: &str) -> Vec<Message> {
        match serde_json::from_str::<Json>(text) {
            Ok(Json::Array(items)) => items.into_iter().map(Message::from_json).collect(),
            _ => Vec::new(),
        }
    }
}

fn split_parts(parts: &[Json]) -> (Vec<String>, Vec<ToolCall>, Vec<ToolResult>) {
    let (mut texts, mut calls, mut results) = (Vec::new(), Vec::new(), Vec::new());
    for part in parts {
        match part.get("type").and_then(Json::as_str) {
            Some("tool_call") => calls.push(ToolCall {
                id: id_of(part),
                name: part.get("name").map(text_of).unwrap_or_default(),
                arguments: part.get("arguments").cloned().unwrap_or(Json::Null),
            }),
            Some("tool_call_response") => results
                .push(ToolResult { id: id_of(part), response: part.get("response").cloned().unwrap_or(Json::Null) }),
            Some("text") | Some("reasoning") | None => {
                if let Some(t) = part.get("content").or_else(|| part.get("text")) {
                    texts.push(text_of(t));
                }
            }
            Some(_) => {}
        }
    }
    (texts, calls, results)
}

/// The system prompt text of `SystemInstructions` (a JSON array of parts, or plain text).
pub fn system_text(stored: &str) -> String {
    match serde_json::from_str::<Json>(stored) {
        Ok(Json::Array(parts)) => split_parts(&parts).0.join("\n"),
        Ok(other) if !stored.is_empty() => text_of(&other),
        _ => stored.to_owned(),
    }
}

/// Token counts of a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
    /// Input tokens read from the provider's cache.
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the provider's cache.
    pub cache_write_input_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_output_tokens: u64,
}

/// The cost of a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Total, USD; `None` when unpriced.
    pub total_usd: Option<f64>,
    /// Input part.
    pub input_usd: Option<f64>,
    /// Output part.
    pub output_usd: Option<f64>,
    /// `client`, `price_table`, `override` or `unpriced`.
    pub source: String,
    /// The price entry that matched.
    pub price_model: String,
}

/// Who and what made the call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Identity {
    /// `ProjectId`.
    pub project: String,
    /// `ServiceName`.
    pub service: String,
    /// `Environment`.
    pub environment: String,
    /// `SessionId`.
    pub session: String,
    /// `UserId`.
    pub user: String,
    /// `Tags`.
    pub tags: Vec<String>,
    /// `Metadata`.
    pub metadata: BTreeMap<String, String>,
}

/// A score or piece of feedback on the call, its response, trace or session (latest version).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Score id.
    pub id: String,
    /// When it was given, ns since the epoch.
    pub timestamp_ns: i64,
    /// The same, RFC 3339.
    pub time: String,
    /// What it targets: `span`, `response`, `trace` or `session`.
    pub target: String,
    /// Score name (`thumbs`, `relevance`, ...).
    pub name: String,
    /// `numeric`, `boolean` or `categorical`.
    pub data_type: String,
    /// Numeric value.
    pub value: Option<f64>,
    /// Label (categorical value).
    pub label: String,
    /// Free-text comment.
    pub comment: String,
    /// `end_user`, `annotator`, `llm`, `code`, ...
    pub source: String,
    /// Who gave it.
    pub author: String,
}

/// Everything stored about one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallDetail {
    /// The list row of the call.
    pub summary: CallSummary,
    /// Parent span id.
    pub parent_span_id: String,
    /// Span name.
    pub span_name: String,
    /// `gen_ai.provider.name`.
    pub provider: String,
    /// Requested model.
    pub request_model: String,
    /// Response model.
    pub response_model: String,
    /// The system prompt text.
    pub system_prompt: String,
    /// Input messages in order.
    pub input_messages: Vec<Message>,
    /// Output messages (one per choice).
    pub output_messages: Vec<Message>,
    /// Tool definitions offered to the model (JSON), if any.
    pub tool_definitions: Option<Json>,
    /// The prompt as text.
    pub input_text: String,
    /// The completion as text.
    pub output_text: String,
    /// Request parameters (`temperature`, `max_tokens`, ...).
    pub parameters: BTreeMap<String, String>,
    /// Token counts.
    pub usage: Usage,
    /// Cost.
    pub cost: Cost,
    /// Time to first token, seconds (streaming calls).
    pub time_to_first_token_s: Option<f64>,
    /// Finish reasons.
    pub finish_reasons: Vec<String>,
    /// Provider response id.
    pub response_id: String,
    /// Error type, empty if none.
    pub error_type: String,
    /// Error message, empty if none.
    pub error_message: String,
    /// Who and what made the call.
    pub identity: Identity,
    /// Managed prompt name / version / template / variables, if the app said.
    pub prompt_name: String,
    /// Managed prompt version.
    pub prompt_version: String,
    /// Managed prompt template.
    pub prompt_template: String,
    /// Variables the template was filled with.
    pub prompt_variables: BTreeMap<String, String>,
    /// The convention the call arrived in.
    pub convention: String,
    /// PII findings and policy changes redaction made.
    pub redactions: u64,
    /// Span id of the row that counts this call, when this row is a second recording of it.
    pub duplicate_of: String,
    /// Span attributes as stored.
    pub span_attributes: BTreeMap<String, String>,
    /// Resource attributes as stored.
    pub resource_attributes: BTreeMap<String, String>,
    /// Scores on this call, its response, trace or session, oldest first.
    pub scores: Vec<Score>,
}

/// One turn of a session: a call and what it added to the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionTurn {
    /// 1-based position in the session.
    pub turn: u32,
    /// The call.
    pub call: CallSummary,
    /// The last user message of its input (what this turn asked), else its whole prompt text.
    pub user_text: String,
    /// The completion text.
    pub completion: String,
    /// The output messages (one per choice), with tool calls a completion may consist of.
    pub output_messages: Vec<Message>,
    /// Error message, empty if none.
    pub error_message: String,
}

/// Totals over a session's turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionTotals {
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub errors: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost, USD, of the priced calls.
    pub cost_usd: f64,
    /// Sum of call latencies, ms.
    pub latency_ms: f64,
    /// From the first call's start to the last call's end, seconds.
    pub duration_s: f64,
}

/// A session, turn by turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    /// The session id.
    pub id: String,
    /// Users seen in it.
    pub users: Vec<String>,
    /// Turns in order.
    pub turns: Vec<SessionTurn>,
    /// Totals.
    pub totals: SessionTotals,
    /// Scores on the session itself or any of its calls.
    pub scores: Vec<Score>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_into_text_tool_calls_and_results() {
        let stored = r#"[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]},
            {"role":"assistant","parts":[{"type":"tool_call","id":"c1","name":"weather","arguments":{"city":"Paris"}}]},
            {"role":"tool","parts":[{"type":"tool_call_response","id":"c1","response":"18C"}]},
            {"role":"assistant","parts":[{"type":"text","content":"18C"},{"type":"uri","uri":"x"}],"finish_reason":"stop"}]"#;
        let m = Message::parse_list(stored);
        assert_eq!(m.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(), ["user", "assistant", "tool", "assistant"]);
        assert_eq!(m[0].text, "Weather in Paris?");
        assert_eq!(m[1].tool_calls[0].name, "weather");
        assert_eq!(m[1].tool_calls[0].arguments["city"], "Paris");
        assert_eq!((m[2].tool_results[0].id.as_str(), &m[2].tool_results[0].response), ("c1", &Json::from("18C")));
        assert_eq!(m[3].finish_reason.as_deref(), Some("stop"));
        assert_eq!(m[3].raw["parts"][1]["type"], "uri");
        assert!(Message::parse_list("").is_empty() && Message::parse_list("{not json").is_empty());
    }

    #[test]
    fn system_prompt_from_parts_or_text() {
        assert_eq!(system_text(r#"[{"type":"text","content":"Be brief."}]"#), "Be brief.");
        assert_eq!(system_text("plain"), "plain");
        assert_eq!(system_text(""), "");
    }

    #[test]
    fn times_are_rfc3339_with_nanoseconds() {
        assert_eq!(rfc3339(1_764_547_200_000_000_001), "2025-12-01T00:00:00.000000001Z");
    }
}
